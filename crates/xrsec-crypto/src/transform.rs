//! IKEv2 transforms by their IANA numbers (RFC 7296 3.3.2 and the IANA
//! "Internet Key Exchange Version 2 (IKEv2) Parameters" registry).
//!
//! These are the identifiers the negotiator builds proposals from and the
//! dataplane builds SAs from. Each knows its IANA number, its key and output
//! lengths and a human name for logs and status output. Only transforms this
//! crate implements can be constructed, so a value of these types is always
//! usable; `from_iana` returns `None` for everything else, which the
//! negotiator treats as "not offered / not acceptable".

use core::fmt;

/// Encryption algorithm identifier (transform type 1), without key size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncrId {
    /// ENCR_AES_CBC (12), RFC 3602. Needs an integrity transform.
    AesCbc,
    /// ENCR_AES_GCM_16 (20), RFC 4106 (ESP) and RFC 5282 (IKE): 16-byte ICV.
    AesGcm16,
}

impl EncrId {
    /// Looks up an IANA transform type 1 number.
    pub fn from_iana(id: u16) -> Option<Self> {
        match id {
            12 => Some(Self::AesCbc),
            20 => Some(Self::AesGcm16),
            _ => None,
        }
    }

    /// The IANA transform ID.
    pub fn iana(self) -> u16 {
        match self {
            Self::AesCbc => 12,
            Self::AesGcm16 => 20,
        }
    }

    /// Whether this is an AEAD cipher (then no integrity transform is used,
    /// RFC 7296 3.3: "an AEAD algorithm ... MUST NOT be combined with an
    /// integrity algorithm").
    pub fn is_aead(self) -> bool {
        matches!(self, Self::AesGcm16)
    }
}

/// An encryption transform with its key size (the Key Length attribute,
/// RFC 7296 3.3.5, which is mandatory for AES).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encr {
    /// AES-CBC with a 128-bit key.
    AesCbc128,
    /// AES-CBC with a 192-bit key.
    AesCbc192,
    /// AES-CBC with a 256-bit key.
    AesCbc256,
    /// AES-GCM with a 16-byte ICV and a 128-bit key.
    AesGcm16_128,
    /// AES-GCM with a 16-byte ICV and a 256-bit key.
    AesGcm16_256,
}

impl Encr {
    /// Every encryption transform this crate implements.
    pub const ALL: [Encr; 5] = [
        Self::AesCbc128,
        Self::AesCbc192,
        Self::AesCbc256,
        Self::AesGcm16_128,
        Self::AesGcm16_256,
    ];

    /// Looks up an IANA transform ID with its Key Length attribute (bits).
    pub fn from_iana(id: u16, key_bits: u16) -> Option<Self> {
        match (EncrId::from_iana(id)?, key_bits) {
            (EncrId::AesCbc, 128) => Some(Self::AesCbc128),
            (EncrId::AesCbc, 192) => Some(Self::AesCbc192),
            (EncrId::AesCbc, 256) => Some(Self::AesCbc256),
            (EncrId::AesGcm16, 128) => Some(Self::AesGcm16_128),
            (EncrId::AesGcm16, 256) => Some(Self::AesGcm16_256),
            _ => None,
        }
    }

    /// The algorithm without key size.
    pub fn id(self) -> EncrId {
        match self {
            Self::AesCbc128 | Self::AesCbc192 | Self::AesCbc256 => EncrId::AesCbc,
            Self::AesGcm16_128 | Self::AesGcm16_256 => EncrId::AesGcm16,
        }
    }

    /// The IANA transform ID.
    pub fn iana(self) -> u16 {
        self.id().iana()
    }

    /// The Key Length attribute value, in bits.
    pub fn key_bits(self) -> u16 {
        match self {
            Self::AesCbc128 | Self::AesGcm16_128 => 128,
            Self::AesCbc192 => 192,
            Self::AesCbc256 | Self::AesGcm16_256 => 256,
        }
    }

    /// Whether this is an AEAD transform.
    pub fn is_aead(self) -> bool {
        self.id().is_aead()
    }

    /// Length of the AES key alone, in bytes.
    pub fn aes_key_len(self) -> usize {
        usize::from(self.key_bits() / 8)
    }

    /// Length of the key material taken from prf+ for this transform: the AES
    /// key, plus the 4-byte salt for GCM (RFC 4106 8.1, RFC 5282 7.1).
    pub fn keymat_len(self) -> usize {
        self.aes_key_len() + if self.is_aead() { GCM_SALT_LEN } else { 0 }
    }

    /// Length of the IV carried in each ESP packet / SK payload: one block for
    /// CBC (RFC 3602 3), 8 bytes for GCM (RFC 4106 3.1, RFC 5282 3).
    pub fn iv_len(self) -> usize {
        if self.is_aead() {
            GCM_EXPLICIT_IV_LEN
        } else {
            AES_BLOCK_LEN
        }
    }

    /// Human name for logs and status output, e.g. "AES-CBC-256".
    pub fn name(self) -> &'static str {
        match self {
            Self::AesCbc128 => "AES-CBC-128",
            Self::AesCbc192 => "AES-CBC-192",
            Self::AesCbc256 => "AES-CBC-256",
            Self::AesGcm16_128 => "AES-GCM-16-128",
            Self::AesGcm16_256 => "AES-GCM-16-256",
        }
    }
}

/// Pseudo-random function (transform type 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PrfId {
    /// PRF_HMAC_SHA1 (2), RFC 2104.
    HmacSha1,
    /// PRF_HMAC_SHA2_256 (5), RFC 4868.
    HmacSha2_256,
    /// PRF_HMAC_SHA2_384 (6), RFC 4868.
    HmacSha2_384,
    /// PRF_HMAC_SHA2_512 (7), RFC 4868.
    HmacSha2_512,
}

impl PrfId {
    /// Every PRF this crate implements.
    pub const ALL: [PrfId; 4] = [
        Self::HmacSha1,
        Self::HmacSha2_256,
        Self::HmacSha2_384,
        Self::HmacSha2_512,
    ];

    /// Looks up an IANA transform type 2 number.
    pub fn from_iana(id: u16) -> Option<Self> {
        match id {
            2 => Some(Self::HmacSha1),
            5 => Some(Self::HmacSha2_256),
            6 => Some(Self::HmacSha2_384),
            7 => Some(Self::HmacSha2_512),
            _ => None,
        }
    }

    /// The IANA transform ID.
    pub fn iana(self) -> u16 {
        match self {
            Self::HmacSha1 => 2,
            Self::HmacSha2_256 => 5,
            Self::HmacSha2_384 => 6,
            Self::HmacSha2_512 => 7,
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        self.hash().output_len()
    }

    /// Preferred key length in bytes: the length of SK_d, SK_pi and SK_pr
    /// (RFC 7296 2.14). For the HMAC PRFs it is the output length (RFC 4868
    /// 2.1.2 for SHA-2; RFC 2104 recommends at least L for SHA-1).
    pub fn preferred_key_len(self) -> usize {
        self.output_len()
    }

    /// Human name for logs and status output, e.g. "PRF-HMAC-SHA-256".
    pub fn name(self) -> &'static str {
        match self {
            Self::HmacSha1 => "PRF-HMAC-SHA1",
            Self::HmacSha2_256 => "PRF-HMAC-SHA-256",
            Self::HmacSha2_384 => "PRF-HMAC-SHA-384",
            Self::HmacSha2_512 => "PRF-HMAC-SHA-512",
        }
    }

    pub(crate) fn hash(self) -> Hash {
        match self {
            Self::HmacSha1 => Hash::Sha1,
            Self::HmacSha2_256 => Hash::Sha256,
            Self::HmacSha2_384 => Hash::Sha384,
            Self::HmacSha2_512 => Hash::Sha512,
        }
    }
}

/// Integrity algorithm (transform type 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IntegId {
    /// AUTH_HMAC_SHA1_96 (2), RFC 2404.
    HmacSha1_96,
    /// AUTH_HMAC_SHA2_256_128 (12), RFC 4868.
    HmacSha2_256_128,
    /// AUTH_HMAC_SHA2_384_192 (13), RFC 4868.
    HmacSha2_384_192,
    /// AUTH_HMAC_SHA2_512_256 (14), RFC 4868.
    HmacSha2_512_256,
}

impl IntegId {
    /// Every integrity transform this crate implements.
    pub const ALL: [IntegId; 4] = [
        Self::HmacSha1_96,
        Self::HmacSha2_256_128,
        Self::HmacSha2_384_192,
        Self::HmacSha2_512_256,
    ];

    /// Looks up an IANA transform type 3 number.
    pub fn from_iana(id: u16) -> Option<Self> {
        match id {
            2 => Some(Self::HmacSha1_96),
            12 => Some(Self::HmacSha2_256_128),
            13 => Some(Self::HmacSha2_384_192),
            14 => Some(Self::HmacSha2_512_256),
            _ => None,
        }
    }

    /// The IANA transform ID.
    pub fn iana(self) -> u16 {
        match self {
            Self::HmacSha1_96 => 2,
            Self::HmacSha2_256_128 => 12,
            Self::HmacSha2_384_192 => 13,
            Self::HmacSha2_512_256 => 14,
        }
    }

    /// Key length in bytes: the hash's output length (RFC 2404 3, RFC 4868 2.1.1).
    pub fn key_len(self) -> usize {
        self.hash().output_len()
    }

    /// Length of the truncated ICV in bytes: half the hash output
    /// (RFC 2404 2: 96 bits; RFC 4868 2.3: 128/192/256 bits).
    pub fn icv_len(self) -> usize {
        match self {
            Self::HmacSha1_96 => 12,
            Self::HmacSha2_256_128 => 16,
            Self::HmacSha2_384_192 => 24,
            Self::HmacSha2_512_256 => 32,
        }
    }

    /// Human name for logs and status output, e.g. "HMAC-SHA-256-128".
    pub fn name(self) -> &'static str {
        match self {
            Self::HmacSha1_96 => "HMAC-SHA1-96",
            Self::HmacSha2_256_128 => "HMAC-SHA-256-128",
            Self::HmacSha2_384_192 => "HMAC-SHA-384-192",
            Self::HmacSha2_512_256 => "HMAC-SHA-512-256",
        }
    }

    pub(crate) fn hash(self) -> Hash {
        match self {
            Self::HmacSha1_96 => Hash::Sha1,
            Self::HmacSha2_256_128 => Hash::Sha256,
            Self::HmacSha2_384_192 => Hash::Sha384,
            Self::HmacSha2_512_256 => Hash::Sha512,
        }
    }
}

/// Diffie-Hellman group (transform type 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DhGroup {
    /// Group 19, 256-bit random ECP group (RFC 5903).
    Ecp256,
    /// Group 20, 384-bit random ECP group (RFC 5903).
    Ecp384,
    /// Group 21, 521-bit random ECP group (RFC 5903).
    Ecp521,
    /// Group 31, Curve25519 (RFC 8031).
    Curve25519,
}

impl DhGroup {
    /// Every group this crate implements.
    pub const ALL: [DhGroup; 4] = [Self::Ecp256, Self::Ecp384, Self::Ecp521, Self::Curve25519];

    /// Looks up an IANA transform type 4 number.
    pub fn from_iana(id: u16) -> Option<Self> {
        match id {
            19 => Some(Self::Ecp256),
            20 => Some(Self::Ecp384),
            21 => Some(Self::Ecp521),
            31 => Some(Self::Curve25519),
            _ => None,
        }
    }

    /// The IANA group number, as carried in the KE payload.
    pub fn iana(self) -> u16 {
        match self {
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Ecp521 => 21,
            Self::Curve25519 => 31,
        }
    }

    /// Length of one field element / private scalar in bytes.
    pub fn scalar_len(self) -> usize {
        match self {
            Self::Ecp256 | Self::Curve25519 => 32,
            Self::Ecp384 => 48,
            Self::Ecp521 => 66,
        }
    }

    /// Length of the KE payload's key exchange data: x || y for ECP
    /// (RFC 5903 7), the 32-byte u-coordinate for Curve25519 (RFC 8031 2).
    pub fn ke_data_len(self) -> usize {
        match self {
            Self::Curve25519 => 32,
            _ => 2 * self.scalar_len(),
        }
    }

    /// Length of the shared secret g^ir: the x coordinate for ECP (RFC 5903
    /// 7), 32 bytes for Curve25519.
    pub fn shared_secret_len(self) -> usize {
        self.scalar_len()
    }

    /// Human name for logs and status output, e.g. "group 20 (ECP-384)".
    pub fn name(self) -> &'static str {
        match self {
            Self::Ecp256 => "group 19 (ECP-256)",
            Self::Ecp384 => "group 20 (ECP-384)",
            Self::Ecp521 => "group 21 (ECP-521)",
            Self::Curve25519 => "group 31 (Curve25519)",
        }
    }
}

macro_rules! display_by_name {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}
display_by_name!(Encr, PrfId, IntegId, DhGroup);

impl fmt::Display for EncrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AesCbc => "AES-CBC",
            Self::AesGcm16 => "AES-GCM-16",
        })
    }
}

/// Why keys could not be installed in a sealer, opener or [`crate::IkeCrypto`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// A key has the wrong length for its transform.
    WrongKeyLength {
        /// Which key: "encryption" or "integrity".
        key: &'static str,
        /// The length the transform needs.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A non-AEAD cipher without an integrity transform, or an AEAD cipher
    /// with one (RFC 7296 3.3).
    IntegrityMismatch,
    /// The operating system's random number generator failed while seeding
    /// the IV generator.
    RandomSource,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongKeyLength {
                key,
                expected,
                actual,
            } => write!(
                f,
                "{key} key is {actual} bytes, the transform needs {expected}"
            ),
            Self::IntegrityMismatch => f.write_str(
                "a non-AEAD cipher needs an integrity transform and an AEAD cipher takes none",
            ),
            Self::RandomSource => f.write_str("the OS random number generator failed"),
        }
    }
}

impl std::error::Error for KeyError {}

/// The hash under an HMAC PRF or integrity transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(crate) fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

pub(crate) const AES_BLOCK_LEN: usize = 16;
pub(crate) const GCM_SALT_LEN: usize = 4;
pub(crate) const GCM_EXPLICIT_IV_LEN: usize = 8;
pub(crate) const GCM_ICV_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transform_round_trips_through_its_iana_number() {
        for e in Encr::ALL {
            assert_eq!(Encr::from_iana(e.iana(), e.key_bits()), Some(e));
        }
        for p in PrfId::ALL {
            assert_eq!(PrfId::from_iana(p.iana()), Some(p));
        }
        for i in IntegId::ALL {
            assert_eq!(IntegId::from_iana(i.iana()), Some(i));
        }
        for g in DhGroup::ALL {
            assert_eq!(DhGroup::from_iana(g.iana()), Some(g));
        }
    }

    #[test]
    fn unknown_numbers_and_key_sizes_are_not_transforms() {
        assert_eq!(EncrId::from_iana(3), None);
        assert_eq!(Encr::from_iana(12, 512), None);
        assert_eq!(Encr::from_iana(20, 192), None);
        assert_eq!(PrfId::from_iana(4), None);
        assert_eq!(IntegId::from_iana(1), None);
        assert_eq!(DhGroup::from_iana(14), None);
    }

    #[test]
    fn lengths_follow_the_rfcs() {
        assert_eq!(Encr::AesGcm16_256.keymat_len(), 36);
        assert_eq!(Encr::AesCbc192.keymat_len(), 24);
        assert_eq!(IntegId::HmacSha2_384_192.key_len(), 48);
        assert_eq!(IntegId::HmacSha2_384_192.icv_len(), 24);
        assert_eq!(DhGroup::Ecp521.ke_data_len(), 132);
        assert_eq!(DhGroup::Curve25519.ke_data_len(), 32);
        assert_eq!(PrfId::HmacSha1.preferred_key_len(), 20);
    }

    #[test]
    fn names_are_the_ones_shown_in_status_output() {
        assert_eq!(Encr::AesCbc256.to_string(), "AES-CBC-256");
        assert_eq!(IntegId::HmacSha2_256_128.to_string(), "HMAC-SHA-256-128");
        assert_eq!(DhGroup::Ecp384.to_string(), "group 20 (ECP-384)");
    }
}
