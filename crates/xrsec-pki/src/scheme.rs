//! Signature schemes and their DER AlgorithmIdentifiers.
//!
//! The same identifiers name a certificate's signature algorithm (RFC 5280
//! 4.1.1.2) and the signature inside an RFC 7427 AUTH payload, so one parser
//! serves both. Parsing is strict about what it accepts (the OID must be one
//! we can verify, RSASSA-PSS parameters must be ones we can honour) and
//! lenient only where the standards allow two encodings (NULL or absent
//! parameters).

use der::asn1::AnyRef;
use der::{Decode, Encode};
use spki::{AlgorithmIdentifier, AlgorithmIdentifierRef};

use crate::error::SignatureError;
use crate::hash::HashAlgorithm;
use crate::oid;

/// The DER AlgorithmIdentifiers of RFC 7427 appendix A, byte for byte. The
/// AUTH payload carries one of these after its one-octet length.
pub mod algorithm_identifier {
    /// RFC 7427 A.1.1: sha1WithRSAEncryption, NULL parameters.
    pub const SHA1_WITH_RSA: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
    ];
    /// RFC 7427 A.1.2: sha256WithRSAEncryption, NULL parameters.
    pub const SHA256_WITH_RSA: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
    ];
    /// RFC 7427 A.1.3: sha384WithRSAEncryption, NULL parameters.
    pub const SHA384_WITH_RSA: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00,
    ];
    /// RFC 7427 A.1.4: sha512WithRSAEncryption, NULL parameters.
    pub const SHA512_WITH_RSA: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00,
    ];
    /// RFC 7427 A.3.2: ecdsa-with-SHA256, parameters absent.
    pub const ECDSA_WITH_SHA256: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    /// RFC 7427 A.3.3: ecdsa-with-SHA384, parameters absent.
    pub const ECDSA_WITH_SHA384: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
    ];
    /// RFC 7427 A.3.4: ecdsa-with-SHA512, parameters absent.
    pub const ECDSA_WITH_SHA512: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04,
    ];
    /// RFC 7427 A.4.3: RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a
    /// 32-byte salt (hash parameters NULL, trailerField left at its default).
    pub const RSASSA_PSS_SHA256: &[u8] = &[
        0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34,
        0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
    ];
}

/// A signature algorithm with everything needed to make or check one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 8.2) over the given hash:
    /// sha{1,256,384,512}WithRSAEncryption.
    RsaPkcs1(HashAlgorithm),
    /// RSASSA-PSS (RFC 8017 8.1) with its parameters (RFC 4055 3.1).
    RsaPss {
        /// The message hash.
        hash: HashAlgorithm,
        /// The hash MGF1 uses (verification needs it equal to `hash`).
        mgf1_hash: HashAlgorithm,
        /// The salt length in bytes.
        salt_len: u8,
    },
    /// ECDSA with a DER Ecdsa-Sig-Value (RFC 5758 3.2, RFC 3279 2.2.3); the
    /// curve is the key's.
    Ecdsa(HashAlgorithm),
}

impl SignatureScheme {
    /// RSASSA-PSS with `hash` for both the message and MGF1 and a salt as
    /// long as the hash output: what strongSwan and OpenSSL produce.
    pub fn rsa_pss(hash: HashAlgorithm) -> Self {
        Self::RsaPss {
            hash,
            mgf1_hash: hash,
            salt_len: hash.output_len() as u8,
        }
    }

    /// The message hash.
    pub fn hash(&self) -> HashAlgorithm {
        match *self {
            Self::RsaPkcs1(h) | Self::Ecdsa(h) | Self::RsaPss { hash: h, .. } => h,
        }
    }

    /// The algorithm's usual name, e.g. "sha256WithRSAEncryption" or
    /// "RSASSA-PSS(SHA2-256, MGF1-SHA2-256, salt 32)".
    pub fn name(&self) -> String {
        match *self {
            Self::RsaPkcs1(h) => format!("{}WithRSAEncryption", short_hash_name(h)),
            Self::Ecdsa(h) => format!("ecdsa-with-{}", short_hash_name(h).to_uppercase()),
            Self::RsaPss {
                hash,
                mgf1_hash,
                salt_len,
            } => format!("RSASSA-PSS({hash}, MGF1-{mgf1_hash}, salt {salt_len})"),
        }
    }

    /// The DER AlgorithmIdentifier that names this scheme (RFC 7427 3 and
    /// appendix A).
    pub fn algorithm_identifier(&self) -> Vec<u8> {
        use algorithm_identifier as ai;
        match *self {
            Self::RsaPkcs1(HashAlgorithm::Sha1) => ai::SHA1_WITH_RSA.to_vec(),
            Self::RsaPkcs1(HashAlgorithm::Sha256) => ai::SHA256_WITH_RSA.to_vec(),
            Self::RsaPkcs1(HashAlgorithm::Sha384) => ai::SHA384_WITH_RSA.to_vec(),
            Self::RsaPkcs1(HashAlgorithm::Sha512) => ai::SHA512_WITH_RSA.to_vec(),
            Self::Ecdsa(HashAlgorithm::Sha1) => encode_bare(oid::ECDSA_WITH_SHA1),
            Self::Ecdsa(HashAlgorithm::Sha256) => ai::ECDSA_WITH_SHA256.to_vec(),
            Self::Ecdsa(HashAlgorithm::Sha384) => ai::ECDSA_WITH_SHA384.to_vec(),
            Self::Ecdsa(HashAlgorithm::Sha512) => ai::ECDSA_WITH_SHA512.to_vec(),
            Self::RsaPss {
                hash,
                mgf1_hash,
                salt_len,
            } => encode_pss(hash, mgf1_hash, salt_len),
        }
    }

    /// The scheme a DER AlgorithmIdentifier names. The whole input must be
    /// one AlgorithmIdentifier; an OID this crate cannot verify with is an
    /// [`SignatureError::UnknownAlgorithm`] naming it.
    pub fn from_algorithm_identifier(der: &[u8]) -> Result<Self, SignatureError> {
        let ai = AlgorithmIdentifierRef::from_der(der)
            .map_err(|e| SignatureError::MalformedAlgorithmIdentifier(e.to_string()))?;
        let hash_of_rsa = match ai.oid {
            oid::SHA1_WITH_RSA => Some(HashAlgorithm::Sha1),
            oid::SHA256_WITH_RSA => Some(HashAlgorithm::Sha256),
            oid::SHA384_WITH_RSA => Some(HashAlgorithm::Sha384),
            oid::SHA512_WITH_RSA => Some(HashAlgorithm::Sha512),
            _ => None,
        };
        if let Some(hash) = hash_of_rsa {
            // RFC 8017 appendix A.2.4: the parameters are NULL; absent ones
            // are accepted too, as most verifiers do.
            require_null_or_absent(ai.parameters)?;
            return Ok(Self::RsaPkcs1(hash));
        }
        let hash_of_ecdsa = match ai.oid {
            oid::ECDSA_WITH_SHA1 => Some(HashAlgorithm::Sha1),
            oid::ECDSA_WITH_SHA256 => Some(HashAlgorithm::Sha256),
            oid::ECDSA_WITH_SHA384 => Some(HashAlgorithm::Sha384),
            oid::ECDSA_WITH_SHA512 => Some(HashAlgorithm::Sha512),
            _ => None,
        };
        if let Some(hash) = hash_of_ecdsa {
            // RFC 5758 3.2: the parameters MUST be absent; NULL is tolerated.
            require_null_or_absent(ai.parameters)?;
            return Ok(Self::Ecdsa(hash));
        }
        if ai.oid == oid::RSASSA_PSS {
            return parse_pss(ai.parameters);
        }
        Err(SignatureError::UnknownAlgorithm {
            oid: oid::describe(&ai.oid),
        })
    }
}

impl std::fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

fn short_hash_name(h: HashAlgorithm) -> &'static str {
    match h {
        HashAlgorithm::Sha1 => "sha1",
        HashAlgorithm::Sha256 => "sha256",
        HashAlgorithm::Sha384 => "sha384",
        HashAlgorithm::Sha512 => "sha512",
    }
}

fn hash_oid(h: HashAlgorithm) -> der::asn1::ObjectIdentifier {
    match h {
        HashAlgorithm::Sha1 => oid::SHA1,
        HashAlgorithm::Sha256 => oid::SHA256,
        HashAlgorithm::Sha384 => oid::SHA384,
        HashAlgorithm::Sha512 => oid::SHA512,
    }
}

fn hash_of_oid(o: &der::asn1::ObjectIdentifier) -> Option<HashAlgorithm> {
    HashAlgorithm::ALL.into_iter().find(|h| hash_oid(*h) == *o)
}

fn require_null_or_absent(params: Option<AnyRef<'_>>) -> Result<(), SignatureError> {
    match params {
        None => Ok(()),
        Some(p) if p.is_null() => Ok(()),
        Some(_) => Err(SignatureError::MalformedAlgorithmIdentifier(
            "parameters must be NULL or absent for this algorithm".into(),
        )),
    }
}

fn encode_bare(o: der::asn1::ObjectIdentifier) -> Vec<u8> {
    let ai = AlgorithmIdentifierRef {
        oid: o,
        parameters: None,
    };
    ai.to_der()
        .expect("a known OID without parameters always encodes")
}

fn encode_pss(hash: HashAlgorithm, mgf1_hash: HashAlgorithm, salt_len: u8) -> Vec<u8> {
    // RFC 4055 2.1: hash AlgorithmIdentifiers inside RSASSA-PSS-params are
    // written with NULL parameters, as RFC 7427 A.4.3 shows them.
    let hash_ai = AlgorithmIdentifierRef {
        oid: hash_oid(hash),
        parameters: Some(AnyRef::NULL),
    };
    let mgf1_hash_ai = AlgorithmIdentifierRef {
        oid: hash_oid(mgf1_hash),
        parameters: Some(AnyRef::NULL),
    };
    let params = pkcs1::RsaPssParams {
        hash: hash_ai,
        mask_gen: AlgorithmIdentifier {
            oid: oid::MGF1,
            parameters: Some(mgf1_hash_ai),
        },
        salt_len,
        trailer_field: pkcs1::TrailerField::BC,
    };
    let ai = AlgorithmIdentifier {
        oid: oid::RSASSA_PSS,
        parameters: Some(params),
    };
    ai.to_der()
        .expect("PSS parameters built from known OIDs always encode")
}

fn parse_pss(params: Option<AnyRef<'_>>) -> Result<SignatureScheme, SignatureError> {
    // RFC 7427 A.4.1/A.4.2 list PSS with absent and with empty parameters:
    // both mean the RFC 8017 A.2.3 defaults (SHA-1, MGF1-SHA-1, salt 20).
    let params = match params {
        None => pkcs1::RsaPssParams::default(),
        Some(any) => any
            .decode_as::<pkcs1::RsaPssParams<'_>>()
            .map_err(|e| SignatureError::MalformedAlgorithmIdentifier(e.to_string()))?,
    };
    let hash = hash_of_oid(&params.hash.oid).ok_or(SignatureError::UnsupportedPssParameters(
        "the message hash is not SHA-1 or SHA-2 256/384/512",
    ))?;
    require_null_or_absent(params.hash.parameters)?;
    if params.mask_gen.oid != oid::MGF1 {
        return Err(SignatureError::UnsupportedPssParameters(
            "the mask generation function is not MGF1",
        ));
    }
    let mgf1_ai = params
        .mask_gen
        .parameters
        .ok_or(SignatureError::UnsupportedPssParameters(
            "MGF1 without a hash algorithm",
        ))?;
    let mgf1_hash = hash_of_oid(&mgf1_ai.oid).ok_or(SignatureError::UnsupportedPssParameters(
        "the MGF1 hash is not SHA-1 or SHA-2 256/384/512",
    ))?;
    require_null_or_absent(mgf1_ai.parameters)?;
    // trailerField: pkcs1 refuses any value but 1 (trailerFieldBC) when
    // decoding, as RFC 8017 A.2.3 requires.
    Ok(SignatureScheme::RsaPss {
        hash,
        mgf1_hash,
        salt_len: params.salt_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_round_trips_through_its_algorithm_identifier() {
        for h in HashAlgorithm::ALL {
            for scheme in [
                SignatureScheme::RsaPkcs1(h),
                SignatureScheme::Ecdsa(h),
                SignatureScheme::rsa_pss(h),
            ] {
                let der = scheme.algorithm_identifier();
                assert_eq!(
                    SignatureScheme::from_algorithm_identifier(&der),
                    Ok(scheme),
                    "{scheme}"
                );
            }
        }
    }

    #[test]
    fn pss_sha256_encodes_as_rfc_7427_a_4_3() {
        let der = SignatureScheme::rsa_pss(HashAlgorithm::Sha256).algorithm_identifier();
        assert_eq!(der, algorithm_identifier::RSASSA_PSS_SHA256);
    }

    #[test]
    fn pss_with_empty_or_absent_parameters_means_sha1_and_salt_20() {
        let defaults = SignatureScheme::RsaPss {
            hash: HashAlgorithm::Sha1,
            mgf1_hash: HashAlgorithm::Sha1,
            salt_len: 20,
        };
        let absent = [
            0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
        ];
        let empty = [
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30,
            0x00,
        ];
        assert_eq!(
            SignatureScheme::from_algorithm_identifier(&absent),
            Ok(defaults)
        );
        assert_eq!(
            SignatureScheme::from_algorithm_identifier(&empty),
            Ok(defaults)
        );
    }

    #[test]
    fn pss_hash_parameters_may_be_absent() {
        // SHA-384 everywhere, hash AlgorithmIdentifiers without NULL, salt 48.
        let der = [
            0x30, 0x3d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30,
            0x30, 0xa0, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
            0x02, 0x02, 0xa1, 0x1a, 0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
            0x01, 0x01, 0x08, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
            0x02, 0x02, 0xa2, 0x03, 0x02, 0x01, 0x30,
        ];
        assert_eq!(
            SignatureScheme::from_algorithm_identifier(&der),
            Ok(SignatureScheme::rsa_pss(HashAlgorithm::Sha384))
        );
    }

    #[test]
    fn rejects_unknown_oid_naming_it() {
        // md5WithRSAEncryption.
        let md5 = [
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04, 0x05,
            0x00,
        ];
        let err = SignatureScheme::from_algorithm_identifier(&md5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown or unsupported signature algorithm OID md5WithRSAEncryption \
             (1.2.840.113549.1.1.4)"
        );
        // An OID nobody names.
        let odd = [0x30, 0x05, 0x06, 0x03, 0x2a, 0x03, 0x04];
        assert_eq!(
            SignatureScheme::from_algorithm_identifier(&odd),
            Err(SignatureError::UnknownAlgorithm {
                oid: "1.2.3.4".into()
            })
        );
    }

    #[test]
    fn rejects_trailing_bytes_and_non_null_parameters() {
        let mut trailing = algorithm_identifier::SHA256_WITH_RSA.to_vec();
        trailing.push(0);
        assert!(matches!(
            SignatureScheme::from_algorithm_identifier(&trailing),
            Err(SignatureError::MalformedAlgorithmIdentifier(_))
        ));
        // sha256WithRSAEncryption with an INTEGER as parameters.
        let int_params = [
            0x30, 0x0e, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x02,
            0x01, 0x00,
        ];
        assert!(matches!(
            SignatureScheme::from_algorithm_identifier(&int_params),
            Err(SignatureError::MalformedAlgorithmIdentifier(_))
        ));
    }

    #[test]
    fn rejects_pss_with_a_trailer_field_other_than_one() {
        let mut der = algorithm_identifier::RSASSA_PSS_SHA256.to_vec();
        // Append [3] { INTEGER 2 } and fix up both lengths.
        der.extend_from_slice(&[0xa3, 0x03, 0x02, 0x01, 0x02]);
        der[1] += 5;
        der[14] += 5;
        assert!(SignatureScheme::from_algorithm_identifier(&der).is_err());
    }

    #[test]
    fn names_follow_the_pkix_spelling() {
        assert_eq!(
            SignatureScheme::RsaPkcs1(HashAlgorithm::Sha384).name(),
            "sha384WithRSAEncryption"
        );
        assert_eq!(
            SignatureScheme::Ecdsa(HashAlgorithm::Sha256).name(),
            "ecdsa-with-SHA256"
        );
        assert_eq!(
            SignatureScheme::rsa_pss(HashAlgorithm::Sha512).name(),
            "RSASSA-PSS(SHA2-512, MGF1-SHA2-512, salt 64)"
        );
    }
}
