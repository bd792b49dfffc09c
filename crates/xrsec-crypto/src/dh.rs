//! Diffie-Hellman for IKEv2: ephemeral key pairs for groups 19, 20, 21 (ECP,
//! RFC 5903) and 31 (Curve25519, RFC 8031), the KE payload's key exchange
//! data, and validation of the peer's value.
//!
//! Randomness is passed in (`rand_core::CryptoRngCore`), because the IKE core
//! is sans-IO and its simulator runs on a seeded RNG; a private value can also
//! be built from a fixed scalar for known-answer tests. Everything the peer
//! sends is checked and refused with a [`DhError`], never a panic: a wrong
//! length, a point not on the curve (which includes the identity, which has
//! no x || y encoding), and for Curve25519 an all-zero shared secret
//! (RFC 8031 2). Private values and shared secrets zeroize on drop and do not
//! print.

use core::fmt;

use rand_core::CryptoRngCore;

use crate::secret::SecretBytes;
use crate::transform::DhGroup;

/// Why a DH computation or import failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DhError {
    /// The peer's key exchange data has the wrong length for the group
    /// (RFC 7296 3.4; the IKE layer answers INVALID_SYNTAX).
    WrongLength {
        /// The group the data was for.
        group: DhGroup,
        /// The length the group needs (x || y for ECP).
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// The peer's ECP public value is not a point on the curve (coordinates
    /// out of range, off the curve, or the point at infinity) (RFC 5903 9,
    /// "the recipient MUST check ... that the point is on the curve").
    NotOnCurve {
        /// The group the data was for.
        group: DhGroup,
    },
    /// The shared secret is all zero: the peer sent a low-order Curve25519
    /// point (RFC 8031 2: "MUST check ... and MUST abort the handshake").
    ZeroSharedSecret,
    /// A private scalar for `from_scalar` has the wrong length, is zero, or
    /// is not below the group order.
    InvalidPrivateScalar {
        /// The group the scalar was for.
        group: DhGroup,
    },
}

impl fmt::Display for DhError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength {
                group,
                expected,
                actual,
            } => write!(
                f,
                "key exchange data for {group} is {actual} bytes, expected {expected}"
            ),
            Self::NotOnCurve { group } => {
                write!(
                    f,
                    "key exchange data for {group} is not a point on the curve"
                )
            }
            Self::ZeroSharedSecret => f.write_str("the DH shared secret is all zero"),
            Self::InvalidPrivateScalar { group } => {
                write!(f, "invalid private scalar for {group}")
            }
        }
    }
}

impl std::error::Error for DhError {}

/// A DH shared secret g^ir: the x coordinate for ECP (RFC 5903 7), the
/// 32-byte X25519 output for Curve25519 (RFC 8031 2). Zeroizes on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedSecret(SecretBytes);

impl SharedSecret {
    /// Wraps bytes computed elsewhere, e.g. a known-answer test's g^ir.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(SecretBytes::new(bytes))
    }

    /// The secret bytes, as fed to SKEYSEED or the Child SA KEYMAT.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a zero-length secret (never produced by [`DhPrivate::agree`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedSecret({} bytes)", self.0.len())
    }
}

// The RustCrypto secret types zeroize on drop (elliptic-curve's SecretKey,
// x25519-dalek's StaticSecret with its "zeroize" feature).
enum PrivateInner {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    P521(p521::SecretKey),
    X25519(x25519_dalek::StaticSecret),
}

/// Our DH private value for one group, with its public KE data.
pub struct DhPrivate {
    group: DhGroup,
    inner: PrivateInner,
    public: Box<[u8]>,
}

/// Uncompressed SEC1 encoding (0x04 || x || y) without its prefix: RFC 5903 7.
fn ke_data_of(point: &[u8]) -> Box<[u8]> {
    point.get(1..).unwrap_or_default().into()
}

impl DhPrivate {
    /// Generates an ephemeral private value with the caller's RNG.
    pub fn generate(group: DhGroup, rng: &mut impl CryptoRngCore) -> Self {
        let inner = match group {
            DhGroup::Ecp256 => PrivateInner::P256(p256::SecretKey::random(rng)),
            DhGroup::Ecp384 => PrivateInner::P384(p384::SecretKey::random(rng)),
            DhGroup::Ecp521 => PrivateInner::P521(p521::SecretKey::random(rng)),
            DhGroup::Curve25519 => {
                PrivateInner::X25519(x25519_dalek::StaticSecret::random_from_rng(rng))
            }
        };
        Self::from_inner(group, inner)
    }

    /// Builds a private value from a fixed scalar, for known-answer tests.
    /// ECP: big-endian, exactly [`DhGroup::scalar_len`] bytes, in 1..n-1.
    /// Curve25519: the 32-byte RFC 7748 scalar (clamped when used).
    pub fn from_scalar(group: DhGroup, scalar: &[u8]) -> Result<Self, DhError> {
        let bad = DhError::InvalidPrivateScalar { group };
        if scalar.len() != group.scalar_len() {
            return Err(bad);
        }
        let inner = match group {
            DhGroup::Ecp256 => PrivateInner::P256(
                p256::SecretKey::from_bytes(p256::FieldBytes::from_slice(scalar))
                    .map_err(|_| bad)?,
            ),
            DhGroup::Ecp384 => PrivateInner::P384(
                p384::SecretKey::from_bytes(p384::FieldBytes::from_slice(scalar))
                    .map_err(|_| bad)?,
            ),
            DhGroup::Ecp521 => PrivateInner::P521(
                p521::SecretKey::from_bytes(p521::FieldBytes::from_slice(scalar))
                    .map_err(|_| bad)?,
            ),
            DhGroup::Curve25519 => {
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(scalar);
                let secret = x25519_dalek::StaticSecret::from(bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                PrivateInner::X25519(secret)
            }
        };
        Ok(Self::from_inner(group, inner))
    }

    fn from_inner(group: DhGroup, inner: PrivateInner) -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let public = match &inner {
            PrivateInner::P256(k) => ke_data_of(k.public_key().to_encoded_point(false).as_bytes()),
            PrivateInner::P384(k) => ke_data_of(k.public_key().to_encoded_point(false).as_bytes()),
            PrivateInner::P521(k) => ke_data_of(k.public_key().to_encoded_point(false).as_bytes()),
            PrivateInner::X25519(k) => x25519_dalek::PublicKey::from(k).as_bytes()[..].into(),
        };
        Self {
            group,
            inner,
            public,
        }
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our KE payload's key exchange data: x || y, each coordinate padded to
    /// the field length (RFC 5903 7), or the 32-byte u-coordinate (RFC 8031 2).
    pub fn public_ke_data(&self) -> &[u8] {
        &self.public
    }

    /// Computes g^ir from the peer's KE data after validating it.
    pub fn agree(&self, peer_ke_data: &[u8]) -> Result<SharedSecret, DhError> {
        let group = self.group;
        let expected = group.ke_data_len();
        if peer_ke_data.len() != expected {
            return Err(DhError::WrongLength {
                group,
                expected,
                actual: peer_ke_data.len(),
            });
        }
        // RFC 5903 9: the peer's point is validated by decoding it: each
        // coordinate must be below p and (x, y) must satisfy the curve
        // equation. The identity has no affine encoding, so it cannot pass.
        let mut sec1 = [0u8; 1 + 132];
        sec1[0] = 0x04;
        sec1[1..=expected].copy_from_slice(peer_ke_data);
        let sec1 = &sec1[..=expected];
        let not_on_curve = DhError::NotOnCurve { group };
        let secret = match &self.inner {
            PrivateInner::P256(k) => {
                let peer = p256::PublicKey::from_sec1_bytes(sec1).map_err(|_| not_on_curve)?;
                let shared = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), peer.as_affine());
                SharedSecret(SecretBytes::new(shared.raw_secret_bytes()))
            }
            PrivateInner::P384(k) => {
                let peer = p384::PublicKey::from_sec1_bytes(sec1).map_err(|_| not_on_curve)?;
                let shared = p384::ecdh::diffie_hellman(k.to_nonzero_scalar(), peer.as_affine());
                SharedSecret(SecretBytes::new(shared.raw_secret_bytes()))
            }
            PrivateInner::P521(k) => {
                let peer = p521::PublicKey::from_sec1_bytes(sec1).map_err(|_| not_on_curve)?;
                let shared = p521::ecdh::diffie_hellman(k.to_nonzero_scalar(), peer.as_affine());
                SharedSecret(SecretBytes::new(shared.raw_secret_bytes()))
            }
            PrivateInner::X25519(k) => {
                let mut u = [0u8; 32];
                u.copy_from_slice(peer_ke_data);
                let shared = k.diffie_hellman(&x25519_dalek::PublicKey::from(u));
                // RFC 8031 2: an all-zero result means a low-order point; the
                // check is constant-time inside x25519-dalek.
                if !shared.was_contributory() {
                    return Err(DhError::ZeroSharedSecret);
                }
                SharedSecret(SecretBytes::new(shared.as_bytes()))
            }
        };
        Ok(secret)
    }
}

impl fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhPrivate")
            .field("group", &self.group)
            .field("private", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn both_ends_agree_in_every_group() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for group in DhGroup::ALL {
            let a = DhPrivate::generate(group, &mut rng);
            let b = DhPrivate::generate(group, &mut rng);
            assert_eq!(a.public_ke_data().len(), group.ke_data_len());
            let ab = a.agree(b.public_ke_data()).unwrap();
            let ba = b.agree(a.public_ke_data()).unwrap();
            assert_eq!(ab, ba);
            assert_eq!(ab.len(), group.shared_secret_len());
        }
    }

    #[test]
    fn same_seed_gives_the_same_key_pair() {
        for group in DhGroup::ALL {
            let a = DhPrivate::generate(group, &mut ChaCha20Rng::seed_from_u64(1));
            let b = DhPrivate::generate(group, &mut ChaCha20Rng::seed_from_u64(1));
            assert_eq!(a.public_ke_data(), b.public_ke_data());
        }
    }

    #[test]
    fn rejects_ke_data_of_the_wrong_length_with_expected_and_actual() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let a = DhPrivate::generate(DhGroup::Ecp384, &mut rng);
        assert_eq!(
            a.agree(&[0u8; 64]).unwrap_err(),
            DhError::WrongLength {
                group: DhGroup::Ecp384,
                expected: 96,
                actual: 64
            }
        );
        assert!(a.agree(&[]).is_err());
    }

    #[test]
    fn rejects_an_all_zero_ecp_point() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for group in [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Ecp521] {
            let a = DhPrivate::generate(group, &mut rng);
            let zeros = vec![0u8; group.ke_data_len()];
            assert_eq!(a.agree(&zeros), Err(DhError::NotOnCurve { group }));
            let ones = vec![0xffu8; group.ke_data_len()];
            assert_eq!(a.agree(&ones), Err(DhError::NotOnCurve { group }));
        }
    }

    #[test]
    fn rejects_an_x25519_point_of_low_order() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let a = DhPrivate::generate(DhGroup::Curve25519, &mut rng);
        assert_eq!(a.agree(&[0u8; 32]), Err(DhError::ZeroSharedSecret));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(a.agree(&one), Err(DhError::ZeroSharedSecret));
    }

    #[test]
    fn from_scalar_refuses_zero_and_wrong_lengths() {
        assert!(DhPrivate::from_scalar(DhGroup::Ecp256, &[0u8; 32]).is_err());
        assert!(DhPrivate::from_scalar(DhGroup::Ecp256, &[1u8; 31]).is_err());
        assert!(DhPrivate::from_scalar(DhGroup::Ecp521, &[0xffu8; 66]).is_err());
        assert!(DhPrivate::from_scalar(DhGroup::Curve25519, &[1u8; 33]).is_err());
    }

    #[test]
    fn debug_of_private_values_and_secrets_shows_no_bytes() {
        let a = DhPrivate::from_scalar(DhGroup::Curve25519, &[0x77; 32]).unwrap();
        let b = DhPrivate::from_scalar(DhGroup::Curve25519, &[0x55; 32]).unwrap();
        let s = a.agree(b.public_ke_data()).unwrap();
        assert!(!format!("{a:?}").contains("77"));
        assert_eq!(format!("{s:?}"), "SharedSecret(32 bytes)");
    }
}
