//! Hash algorithms as IKEv2 names them in SIGNATURE_HASH_ALGORITHMS
//! (RFC 7427 4) and as the signature schemes use them.
//!
//! Each side lists the hashes it can verify with; the signer then picks one
//! the peer listed. [`choose_signature_hash`] makes that pick from our
//! preference order.

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::error::SignatureError;

/// A hash algorithm, numbered as in the IANA "IKEv2 Hash Algorithms"
/// registry (RFC 7427 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA1 (1).
    Sha1,
    /// SHA2-256 (2).
    Sha256,
    /// SHA2-384 (3).
    Sha384,
    /// SHA2-512 (4).
    Sha512,
}

/// What we offer in SIGNATURE_HASH_ALGORITHMS and sign with, best first.
/// SHA-1 is left out: a peer that only has SHA-1 can still use method 1.
pub const DEFAULT_HASH_PREFERENCE: [HashAlgorithm; 3] = [
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha384,
    HashAlgorithm::Sha512,
];

impl HashAlgorithm {
    /// Every hash this crate implements.
    pub const ALL: [HashAlgorithm; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    /// The IANA number (RFC 7427 4).
    pub fn iana(self) -> u16 {
        match self {
            Self::Sha1 => 1,
            Self::Sha256 => 2,
            Self::Sha384 => 3,
            Self::Sha512 => 4,
        }
    }

    /// The hash with IANA number `n`, if this crate implements it.
    pub fn from_iana(n: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.iana() == n)
    }

    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The registry's name, e.g. "SHA2-256".
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA2-256",
            Self::Sha384 => "SHA2-384",
            Self::Sha512 => "SHA2-512",
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

impl std::fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The hash to sign with: the first of `ours` (our preference order) that
/// the peer listed in its SIGNATURE_HASH_ALGORITHMS, or `None` when there is
/// none in common (the caller then falls back to AUTH method 1 for an RSA
/// key, RFC 7427 4).
pub fn choose_signature_hash(
    ours: &[HashAlgorithm],
    peers: &[HashAlgorithm],
) -> Option<HashAlgorithm> {
    ours.iter().copied().find(|h| peers.contains(h))
}

/// The Notification Data of a SIGNATURE_HASH_ALGORITHMS notify: each hash's
/// 16-bit IANA number, big-endian, in the given order (RFC 7427 4).
pub fn encode_hash_algorithms(hashes: &[HashAlgorithm]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.iana().to_be_bytes()).collect()
}

/// The hashes a peer listed in its SIGNATURE_HASH_ALGORITHMS Notification
/// Data, in its order. Numbers this crate does not implement (e.g. 5,
/// "Identity", RFC 8420) are skipped; an odd length is an error.
pub fn parse_hash_algorithms(data: &[u8]) -> Result<Vec<HashAlgorithm>, SignatureError> {
    if data.len() % 2 != 0 {
        return Err(SignatureError::UnsupportedHash(
            "SIGNATURE_HASH_ALGORITHMS data has an odd length",
        ));
    }
    Ok(data
        .chunks_exact(2)
        .filter_map(|c| HashAlgorithm::from_iana(u16::from_be_bytes([c[0], c[1]])))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_numbers_are_those_of_rfc_7427() {
        let numbers: Vec<u16> = HashAlgorithm::ALL.iter().map(|h| h.iana()).collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        assert_eq!(HashAlgorithm::from_iana(0), None);
        assert_eq!(HashAlgorithm::from_iana(3), Some(HashAlgorithm::Sha384));
    }

    #[test]
    fn chooses_our_first_preference_that_the_peer_offers() {
        use HashAlgorithm::*;
        assert_eq!(
            choose_signature_hash(&[Sha512, Sha256], &[Sha1, Sha256, Sha512]),
            Some(Sha512)
        );
        assert_eq!(
            choose_signature_hash(&DEFAULT_HASH_PREFERENCE, &[Sha384, Sha1]),
            Some(Sha384)
        );
        assert_eq!(
            choose_signature_hash(&DEFAULT_HASH_PREFERENCE, &[Sha1]),
            None
        );
        assert_eq!(choose_signature_hash(&[Sha256], &[]), None);
    }

    #[test]
    fn notify_data_round_trips_and_skips_unknown_numbers() {
        let data = encode_hash_algorithms(&DEFAULT_HASH_PREFERENCE);
        assert_eq!(data, [0, 2, 0, 3, 0, 4]);
        // strongSwan sends 1..=5; 5 (Identity) is not a hash we implement.
        let peer = parse_hash_algorithms(&[0, 1, 0, 2, 0, 3, 0, 4, 0, 5]).unwrap();
        assert_eq!(peer, HashAlgorithm::ALL);
        assert!(parse_hash_algorithms(&[0, 2, 0]).is_err());
    }

    #[test]
    fn digests_have_their_declared_length() {
        for h in HashAlgorithm::ALL {
            assert_eq!(h.digest(b"abc").len(), h.output_len());
        }
        // FIPS 180-2 appendix B.1: SHA-256("abc").
        assert_eq!(
            HashAlgorithm::Sha256.digest(b"abc")[..4],
            [0xba, 0x78, 0x16, 0xbf]
        );
    }
}
