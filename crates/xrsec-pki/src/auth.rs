//! The Authentication Data of an IKEv2 AUTH payload made with a signature.
//!
//! The negotiator builds the InitiatorSignedOctets/ResponderSignedOctets
//! (RFC 7296 2.15) and hands them here as one byte string; this module
//! signs or checks them and frames the result for the AUTH method:
//! - method 1, "RSA Digital Signature" (RFC 7296 3.8): RSASSA-PKCS1-v1_5,
//!   the bare signature as the data; its hash is implicitly SHA-1 (RFC 7427
//!   1 names this as the limitation it removes);
//! - method 14, "Digital Signature" (RFC 7427 3): a one-octet length, the DER
//!   AlgorithmIdentifier naming the scheme, then the signature.

use rand_core::CryptoRngCore;

use crate::error::SignatureError;
use crate::hash::{choose_signature_hash, HashAlgorithm};
use crate::key::{PrivateKey, PublicKey};
use crate::scheme::SignatureScheme;

/// RFC 7296 3.8: Auth Method "RSA Digital Signature".
pub const AUTH_METHOD_RSA_SIGNATURE: u8 = 1;
/// RFC 7427 7: Auth Method "Digital Signature".
pub const AUTH_METHOD_DIGITAL_SIGNATURE: u8 = 14;

/// How one AUTH payload is signed: its method and, for method 14, scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthSignature {
    /// Method 1: RSASSA-PKCS1-v1_5 with SHA-1.
    RsaSha1,
    /// Method 14 with the given scheme.
    Digital(SignatureScheme),
}

impl AuthSignature {
    /// The Auth Method number of the AUTH payload.
    pub fn method(&self) -> u8 {
        match self {
            Self::RsaSha1 => AUTH_METHOD_RSA_SIGNATURE,
            Self::Digital(_) => AUTH_METHOD_DIGITAL_SIGNATURE,
        }
    }

    /// The scheme that produces the signature.
    pub fn scheme(&self) -> SignatureScheme {
        match *self {
            Self::RsaSha1 => SignatureScheme::RsaPkcs1(HashAlgorithm::Sha1),
            Self::Digital(s) => s,
        }
    }

    /// How to sign with `key` for a peer that sent SIGNATURE_HASH_ALGORITHMS
    /// with `peer_hashes` (`None` when it sent no such notify):
    /// - RFC 7427 4: with a hash in common (the first of `ours`), method 14;
    /// - otherwise method 1 for an RSA key;
    /// - an ECDSA key has no fallback here (methods 9-11 are not
    ///   implemented), so that is [`SignatureError::UnsupportedHash`].
    pub fn choose(
        key: &PrivateKey,
        peer_hashes: Option<&[HashAlgorithm]>,
        ours: &[HashAlgorithm],
    ) -> Result<Self, SignatureError> {
        if let Some(hash) = peer_hashes.and_then(|peer| choose_signature_hash(ours, peer)) {
            return Ok(Self::Digital(key.scheme_for(hash)));
        }
        if key.algorithm().is_rsa() {
            Ok(Self::RsaSha1)
        } else {
            Err(SignatureError::UnsupportedHash(
                "an ECDSA key needs RFC 7427 signatures and the peer offered no hash we use",
            ))
        }
    }
}

/// The Authentication Data (what follows the method and reserved octets)
/// for `how` over `signed_octets`.
pub fn sign_auth(
    key: &PrivateKey,
    how: AuthSignature,
    signed_octets: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, SignatureError> {
    match how {
        AuthSignature::RsaSha1 => {
            if !key.algorithm().is_rsa() {
                return Err(SignatureError::KeyMismatch {
                    scheme: "AUTH method 1 (RSA Digital Signature)".into(),
                    key: key.algorithm().to_string(),
                });
            }
            key.sign(&how.scheme(), signed_octets, rng)
        }
        AuthSignature::Digital(scheme) => {
            let signature = key.sign(&scheme, signed_octets, rng)?;
            Ok(encode_digital_signature_auth(&scheme, &signature))
        }
    }
}

/// Checks a received AUTH payload: `method` and `auth_data` as received,
/// `signed_octets` as rebuilt by the negotiator, `key` from the peer's
/// verified certificate. Returns how the peer signed, so that the caller
/// can apply its policy (e.g. that the hash is one it offered) and report it.
pub fn verify_auth(
    key: &PublicKey,
    method: u8,
    auth_data: &[u8],
    signed_octets: &[u8],
) -> Result<AuthSignature, SignatureError> {
    let how = match method {
        AUTH_METHOD_RSA_SIGNATURE => {
            if !key.algorithm().is_rsa() {
                return Err(SignatureError::KeyMismatch {
                    scheme: "AUTH method 1 (RSA Digital Signature)".into(),
                    key: key.algorithm().to_string(),
                });
            }
            key.verify(&AuthSignature::RsaSha1.scheme(), signed_octets, auth_data)?;
            AuthSignature::RsaSha1
        }
        AUTH_METHOD_DIGITAL_SIGNATURE => {
            let (scheme, signature) = parse_digital_signature_auth(auth_data)?;
            key.verify(&scheme, signed_octets, signature)?;
            AuthSignature::Digital(scheme)
        }
        other => return Err(SignatureError::UnsupportedAuthMethod(other)),
    };
    Ok(how)
}

/// RFC 7427 3: ASN.1 Length (1 octet) | AlgorithmIdentifier | Signature.
pub fn encode_digital_signature_auth(scheme: &SignatureScheme, signature: &[u8]) -> Vec<u8> {
    let algorithm = scheme.algorithm_identifier();
    let mut data = Vec::with_capacity(1 + algorithm.len() + signature.len());
    // Our AlgorithmIdentifiers are at most 69 bytes: the length fits.
    data.push(algorithm.len() as u8);
    data.extend_from_slice(&algorithm);
    data.extend_from_slice(signature);
    data
}

/// Splits method-14 Authentication Data into the scheme its
/// AlgorithmIdentifier names and the signature that follows it.
pub fn parse_digital_signature_auth(
    auth_data: &[u8],
) -> Result<(SignatureScheme, &[u8]), SignatureError> {
    let (&len, rest) = auth_data
        .split_first()
        .ok_or(SignatureError::TruncatedAuthData)?;
    let len = usize::from(len);
    if rest.len() <= len {
        // RFC 7427 3: the signature follows the AlgorithmIdentifier and
        // cannot be empty.
        return Err(SignatureError::TruncatedAuthData);
    }
    let (algorithm, signature) = rest.split_at(len);
    let scheme = SignatureScheme::from_algorithm_identifier(algorithm)?;
    Ok((scheme, signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::algorithm_identifier;

    #[test]
    fn method_14_data_is_length_then_algorithm_identifier_then_signature() {
        let data = encode_digital_signature_auth(
            &SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256),
            &[0xaa, 0xbb],
        );
        assert_eq!(data[0], 15);
        assert_eq!(&data[1..16], algorithm_identifier::SHA256_WITH_RSA);
        assert_eq!(&data[16..], [0xaa, 0xbb]);
        let (scheme, sig) = parse_digital_signature_auth(&data).unwrap();
        assert_eq!(scheme, SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256));
        assert_eq!(sig, [0xaa, 0xbb]);
    }

    #[test]
    fn rejects_method_14_data_cut_inside_or_right_after_the_identifier() {
        let data = encode_digital_signature_auth(
            &SignatureScheme::Ecdsa(HashAlgorithm::Sha384),
            &[1, 2, 3],
        );
        for cut in [0, 1, 5, 13] {
            assert_eq!(
                parse_digital_signature_auth(&data[..cut]),
                Err(SignatureError::TruncatedAuthData),
                "cut at {cut}"
            );
        }
        assert!(parse_digital_signature_auth(&data[..14]).is_ok());
    }

    #[test]
    fn rejects_method_14_data_whose_length_octet_splits_the_identifier_wrongly() {
        let mut data = encode_digital_signature_auth(
            &SignatureScheme::RsaPkcs1(HashAlgorithm::Sha512),
            &[9; 8],
        );
        data[0] = 14;
        assert!(matches!(
            parse_digital_signature_auth(&data),
            Err(SignatureError::MalformedAlgorithmIdentifier(_))
        ));
    }
}
