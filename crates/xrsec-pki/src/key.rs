//! Private and public keys, and the sign/verify primitive over a byte string.
//!
//! [`PrivateKey`] is opaque: its `Debug` prints the algorithm and size only,
//! and every variant zeroizes its secret on drop (`rsa` and `ecdsa` both
//! implement `ZeroizeOnDrop`). Signing takes the caller's RNG (sans-IO): RSA
//! uses it to blind the private-key operation and for the PSS salt, ECDSA to
//! hedge its RFC 6979 nonce.
//!
//! Accepted sizes: RSA from [`MIN_RSA_BITS`] to [`MAX_RSA_BITS`], ECDSA on
//! P-256 and P-384.

use std::fmt;

use der::asn1::ObjectIdentifier;
use der::Decode;
use p256::ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use rand_core::CryptoRngCore;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use spki::SubjectPublicKeyInfoRef;
use zeroize::ZeroizeOnDrop;

use crate::error::SignatureError;
use crate::hash::HashAlgorithm;
use crate::oid;
use crate::scheme::SignatureScheme;

/// The smallest RSA modulus accepted, for our keys and the peer's (NIST SP
/// 800-131A: 1024-bit RSA is disallowed for signatures).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted (bounds the cost of one verification).
pub const MAX_RSA_BITS: usize = 8192;

/// A key's algorithm and size, for messages and `show` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// ECDSA on NIST P-256 (secp256r1).
    EcdsaP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcdsaP384,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::EcdsaP384 => f.write_str("ECDSA P-384"),
        }
    }
}

impl KeyAlgorithm {
    /// Whether this is an RSA key.
    pub fn is_rsa(&self) -> bool {
        matches!(self, Self::Rsa { .. })
    }
}

/// A public key taken from a certificate or a private key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(PublicInner);

#[derive(Clone, PartialEq, Eq)]
enum PublicInner {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.algorithm())
    }
}

impl PublicKey {
    /// The key from a DER SubjectPublicKeyInfo. The error says why the key
    /// is not usable (algorithm, curve, size).
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<Self, String> {
        let key_bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or("the public key BIT STRING has unused bits")?;
        match spki.algorithm.oid {
            oid::RSA_ENCRYPTION => {
                let pkcs1 = pkcs1::RsaPublicKey::from_der(key_bytes)
                    .map_err(|e| format!("invalid RSA public key: {e}"))?;
                let n = BigUint::from_bytes_be(pkcs1.modulus.as_bytes());
                let e = BigUint::from_bytes_be(pkcs1.public_exponent.as_bytes());
                let bits = n.bits();
                if bits < MIN_RSA_BITS {
                    return Err(format!(
                        "RSA key of {bits} bits is too small (at least {MIN_RSA_BITS} bits are \
                         required)"
                    ));
                }
                let key = RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
                    .map_err(|e| format!("unusable RSA public key: {e}"))?;
                Ok(Self(PublicInner::Rsa(key)))
            }
            oid::EC_PUBLIC_KEY => {
                let curve: ObjectIdentifier = spki
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| "EC public key without a named curve")?;
                match curve {
                    oid::SECP256R1 => p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                        .map(|k| Self(PublicInner::P256(k)))
                        .map_err(|_| "invalid P-256 public key point".to_string()),
                    oid::SECP384R1 => p384::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
                        .map(|k| Self(PublicInner::P384(k)))
                        .map_err(|_| "invalid P-384 public key point".to_string()),
                    other => Err(format!(
                        "unsupported elliptic curve {} (P-256 and P-384 are supported)",
                        oid::describe(&other)
                    )),
                }
            }
            other => Err(format!(
                "unsupported public key algorithm {} (RSA, ECDSA P-256 and P-384 are supported)",
                oid::describe(&other)
            )),
        }
    }

    /// The key's algorithm and size.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.0 {
            PublicInner::Rsa(k) => KeyAlgorithm::Rsa { bits: k.n().bits() },
            PublicInner::P256(_) => KeyAlgorithm::EcdsaP256,
            PublicInner::P384(_) => KeyAlgorithm::EcdsaP384,
        }
    }

    /// Checks `signature` over `message` with `scheme`. A scheme for the
    /// other kind of key is [`SignatureError::KeyMismatch`]; a bad signature
    /// of any shape is [`SignatureError::Invalid`].
    pub fn verify(
        &self,
        scheme: &SignatureScheme,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let digest = scheme.hash().digest(message);
        match (&self.0, *scheme) {
            (PublicInner::Rsa(k), SignatureScheme::RsaPkcs1(h)) => k
                .verify(pkcs1v15(h), &digest, signature)
                .map_err(|_| SignatureError::Invalid),
            (
                PublicInner::Rsa(k),
                SignatureScheme::RsaPss {
                    hash,
                    mgf1_hash,
                    salt_len,
                },
            ) => {
                if mgf1_hash != hash {
                    // The rsa crate runs MGF1 with the message hash.
                    return Err(SignatureError::UnsupportedPssParameters(
                        "the MGF1 hash differs from the message hash",
                    ));
                }
                k.verify(pss(hash, salt_len), &digest, signature)
                    .map_err(|_| SignatureError::Invalid)
            }
            (PublicInner::P256(k), SignatureScheme::Ecdsa(_)) => {
                let sig = p256::ecdsa::DerSignature::from_bytes(signature)
                    .map_err(|_| SignatureError::Invalid)?;
                k.verify_prehash(&digest, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            (PublicInner::P384(k), SignatureScheme::Ecdsa(_)) => {
                let sig = p384::ecdsa::DerSignature::from_bytes(signature)
                    .map_err(|_| SignatureError::Invalid)?;
                k.verify_prehash(&digest, &sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            _ => Err(SignatureError::KeyMismatch {
                scheme: scheme.name(),
                key: self.algorithm().to_string(),
            }),
        }
    }
}

/// A private key for signing AUTH payloads. Loaded with
/// [`load_private_key`](crate::load_private_key) or
/// [`parse_private_key`](crate::parse_private_key).
pub struct PrivateKey(PrivateInner);

enum PrivateInner {
    Rsa(RsaPrivateKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

// Every variant wipes its secret when dropped.
impl ZeroizeOnDrop for PrivateKey {}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.algorithm())
    }
}

/// Why a DER private key was refused, before the loader adds the file name.
pub(crate) enum KeyRefusal {
    TooSmall(usize),
    TooLarge(usize),
    Unsupported(String),
    Invalid(String),
}

impl PrivateKey {
    pub(crate) fn from_rsa(key: RsaPrivateKey) -> Result<Self, KeyRefusal> {
        let bits = key.n().bits();
        if bits < MIN_RSA_BITS {
            return Err(KeyRefusal::TooSmall(bits));
        }
        if bits > MAX_RSA_BITS {
            return Err(KeyRefusal::TooLarge(bits));
        }
        Ok(Self(PrivateInner::Rsa(key)))
    }

    /// A PKCS#1 RSAPrivateKey (`BEGIN RSA PRIVATE KEY`).
    pub(crate) fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyRefusal> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let key = RsaPrivateKey::from_pkcs1_der(der)
            .map_err(|e| KeyRefusal::Invalid(format!("not a PKCS#1 RSA key: {e}")))?;
        Self::from_rsa(key)
    }

    /// A PKCS#8 PrivateKeyInfo (`BEGIN PRIVATE KEY`), RSA or EC.
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyRefusal> {
        let info = pkcs8::PrivateKeyInfo::try_from(der)
            .map_err(|e| KeyRefusal::Invalid(format!("not a PKCS#8 key: {e}")))?;
        match info.algorithm.oid {
            oid::RSA_ENCRYPTION => {
                let key = RsaPrivateKey::try_from(info)
                    .map_err(|e| KeyRefusal::Invalid(format!("invalid RSA key: {e}")))?;
                Self::from_rsa(key)
            }
            oid::EC_PUBLIC_KEY => match info.algorithm.parameters_oid() {
                Ok(oid::SECP256R1) => p256::SecretKey::try_from(info)
                    .map(|k| Self(PrivateInner::P256(k.into())))
                    .map_err(|e| KeyRefusal::Invalid(format!("invalid P-256 key: {e}"))),
                Ok(oid::SECP384R1) => p384::SecretKey::try_from(info)
                    .map(|k| Self(PrivateInner::P384(k.into())))
                    .map_err(|e| KeyRefusal::Invalid(format!("invalid P-384 key: {e}"))),
                Ok(curve) => Err(KeyRefusal::Unsupported(format!(
                    "ECDSA on curve {}",
                    oid::describe(&curve)
                ))),
                Err(_) => Err(KeyRefusal::Invalid("EC key without a named curve".into())),
            },
            other => Err(KeyRefusal::Unsupported(oid::describe(&other))),
        }
    }

    /// A SEC1 ECPrivateKey (`BEGIN EC PRIVATE KEY`, RFC 5915), which must
    /// name its curve.
    pub(crate) fn from_sec1_der(der: &[u8]) -> Result<Self, KeyRefusal> {
        let key = sec1::EcPrivateKey::from_der(der)
            .map_err(|e| KeyRefusal::Invalid(format!("not a SEC1 EC key: {e}")))?;
        let curve = key
            .parameters
            .and_then(|p| p.named_curve())
            .ok_or_else(|| KeyRefusal::Invalid("EC key without a named curve".into()))?;
        match curve {
            oid::SECP256R1 => p256::SecretKey::from_sec1_der(der)
                .map(|k| Self(PrivateInner::P256(k.into())))
                .map_err(|e| KeyRefusal::Invalid(format!("invalid P-256 key: {e}"))),
            oid::SECP384R1 => p384::SecretKey::from_sec1_der(der)
                .map(|k| Self(PrivateInner::P384(k.into())))
                .map_err(|e| KeyRefusal::Invalid(format!("invalid P-384 key: {e}"))),
            other => Err(KeyRefusal::Unsupported(format!(
                "ECDSA on curve {}",
                oid::describe(&other)
            ))),
        }
    }

    /// The key's algorithm and size.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.0 {
            PrivateInner::Rsa(k) => KeyAlgorithm::Rsa { bits: k.n().bits() },
            PrivateInner::P256(_) => KeyAlgorithm::EcdsaP256,
            PrivateInner::P384(_) => KeyAlgorithm::EcdsaP384,
        }
    }

    /// The matching public key (e.g. to check that a certificate belongs to
    /// this key: `cert.public_key()? == &key.public_key()`).
    pub fn public_key(&self) -> PublicKey {
        PublicKey(match &self.0 {
            PrivateInner::Rsa(k) => PublicInner::Rsa(k.to_public_key()),
            PrivateInner::P256(k) => PublicInner::P256(*k.verifying_key()),
            PrivateInner::P384(k) => PublicInner::P384(*k.verifying_key()),
        })
    }

    /// The RFC 7427 scheme this key signs with for `hash`: PKCS#1 v1.5 for
    /// RSA (what strongSwan and Cisco expect by default), ECDSA otherwise.
    pub fn scheme_for(&self, hash: HashAlgorithm) -> SignatureScheme {
        match self.0 {
            PrivateInner::Rsa(_) => SignatureScheme::RsaPkcs1(hash),
            PrivateInner::P256(_) | PrivateInner::P384(_) => SignatureScheme::Ecdsa(hash),
        }
    }

    /// Signs `message` (hashing it with the scheme's hash). ECDSA signatures
    /// are DER Ecdsa-Sig-Values.
    pub fn sign(
        &self,
        scheme: &SignatureScheme,
        message: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, SignatureError> {
        let digest = scheme.hash().digest(message);
        let failed = |e: &dyn fmt::Display| SignatureError::SigningFailed(e.to_string());
        match (&self.0, *scheme) {
            (PrivateInner::Rsa(k), SignatureScheme::RsaPkcs1(h)) => k
                .sign_with_rng(rng, pkcs1v15(h), &digest)
                .map_err(|e| failed(&e)),
            (
                PrivateInner::Rsa(k),
                SignatureScheme::RsaPss {
                    hash,
                    mgf1_hash,
                    salt_len,
                },
            ) => {
                if mgf1_hash != hash {
                    return Err(SignatureError::UnsupportedPssParameters(
                        "the MGF1 hash differs from the message hash",
                    ));
                }
                k.sign_with_rng(rng, pss(hash, salt_len), &digest)
                    .map_err(|e| failed(&e))
            }
            (PrivateInner::P256(k), SignatureScheme::Ecdsa(_)) => {
                let sig: p256::ecdsa::DerSignature = k
                    .sign_prehash_with_rng(rng, &digest)
                    .map_err(|e| failed(&e))?;
                Ok(sig.as_bytes().to_vec())
            }
            (PrivateInner::P384(k), SignatureScheme::Ecdsa(_)) => {
                let sig: p384::ecdsa::DerSignature = k
                    .sign_prehash_with_rng(rng, &digest)
                    .map_err(|e| failed(&e))?;
                Ok(sig.as_bytes().to_vec())
            }
            _ => Err(SignatureError::KeyMismatch {
                scheme: scheme.name(),
                key: self.algorithm().to_string(),
            }),
        }
    }
}

fn pkcs1v15(hash: HashAlgorithm) -> Pkcs1v15Sign {
    match hash {
        HashAlgorithm::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
        HashAlgorithm::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
        HashAlgorithm::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
        HashAlgorithm::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
    }
}

fn pss(hash: HashAlgorithm, salt_len: u8) -> Pss {
    let salt_len = usize::from(salt_len);
    match hash {
        HashAlgorithm::Sha1 => Pss::new_with_salt::<Sha1>(salt_len),
        HashAlgorithm::Sha256 => Pss::new_with_salt::<Sha256>(salt_len),
        HashAlgorithm::Sha384 => Pss::new_with_salt::<Sha384>(salt_len),
        HashAlgorithm::Sha512 => Pss::new_with_salt::<Sha512>(salt_len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn every_private_key_variant_zeroizes_on_drop() {
        assert_zeroize_on_drop::<RsaPrivateKey>();
        assert_zeroize_on_drop::<p256::ecdsa::SigningKey>();
        assert_zeroize_on_drop::<p384::ecdsa::SigningKey>();
        assert_zeroize_on_drop::<PrivateKey>();
    }

    #[test]
    fn ecdsa_keys_sign_and_verify_with_each_sha2_hash() {
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let keys = [
            PrivateKey(PrivateInner::P256(p256::ecdsa::SigningKey::random(
                &mut rng,
            ))),
            PrivateKey(PrivateInner::P384(p384::ecdsa::SigningKey::random(
                &mut rng,
            ))),
        ];
        for key in &keys {
            let public = key.public_key();
            for hash in [
                HashAlgorithm::Sha256,
                HashAlgorithm::Sha384,
                HashAlgorithm::Sha512,
            ] {
                let scheme = key.scheme_for(hash);
                let sig = key.sign(&scheme, b"signed octets", &mut rng).unwrap();
                assert_eq!(sig[0], 0x30, "DER Ecdsa-Sig-Value");
                public.verify(&scheme, b"signed octets", &sig).unwrap();
                assert_eq!(
                    public.verify(&scheme, b"other octets", &sig),
                    Err(SignatureError::Invalid)
                );
            }
            let rsa_scheme = SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256);
            assert!(matches!(
                key.sign(&rsa_scheme, b"x", &mut rng),
                Err(SignatureError::KeyMismatch { .. })
            ));
        }
        assert!(format!("{:?}", keys[0]) == "PrivateKey(ECDSA P-256)");
    }
}
