//! The three error types of this crate, one per kind of caller question:
//! "can I use this file?" ([`LoadError`]), "is this signature good?"
//! ([`SignatureError`]) and "do I trust this peer?" ([`CertError`]).
//!
//! Every variant's `Display` is one sentence an operator can act on: it names
//! the file, the certificate subject or the OID concerned, and never prints
//! key material.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a certificate or private key file (or in-memory PEM/DER text) could
/// not be used. `origin` is the file's path, or the name the caller gave to
/// in-memory input.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A private key file that group or others may read or write.
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits (`st_mode & 0o777`).
        mode: u32,
    },
    /// Neither PEM (no `-----BEGIN` line) nor a DER SEQUENCE.
    NotPem {
        /// The file.
        origin: String,
    },
    /// A PEM block that cannot be decoded (missing END line, bad base64 ...).
    BadPem {
        /// The file.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// PEM blocks were found, but none with a label this loader accepts.
    WrongPemLabel {
        /// The file.
        origin: String,
        /// The labels found, e.g. `["CERTIFICATE"]` in a key file.
        found: Vec<String>,
        /// What was expected, e.g. `"CERTIFICATE"`.
        expected: &'static str,
    },
    /// A passphrase-protected key (PKCS#8 `ENCRYPTED PRIVATE KEY` or a
    /// legacy `Proc-Type: 4,ENCRYPTED` header).
    EncryptedKey {
        /// The file.
        origin: String,
    },
    /// An RSA key below [`MIN_RSA_BITS`](crate::MIN_RSA_BITS).
    KeyTooSmall {
        /// The file.
        origin: String,
        /// The key's modulus size.
        bits: usize,
    },
    /// An RSA key above [`MAX_RSA_BITS`](crate::MAX_RSA_BITS).
    KeyTooLarge {
        /// The file.
        origin: String,
        /// The key's modulus size.
        bits: usize,
    },
    /// A key of an algorithm or curve this crate does not sign with.
    UnsupportedKey {
        /// The file.
        origin: String,
        /// The algorithm (and curve) OID or name.
        algorithm: String,
    },
    /// The key's DER structure is invalid.
    BadKey {
        /// The file.
        origin: String,
        /// What the decoder said.
        reason: String,
    },
    /// A certificate in the file could not be parsed.
    BadCertificate {
        /// The file.
        origin: String,
        /// 1-based position of the certificate in the file.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::InsecurePermissions { path, mode } => write!(
                f,
                "private key file {} has mode {mode:04o}: it must not be readable by group or \
                 others; fix it with `chmod 600 {}`",
                path.display(),
                path.display()
            ),
            Self::NotPem { origin } => write!(
                f,
                "{origin}: not a PEM file (no \"-----BEGIN\" line) and not DER either"
            ),
            Self::BadPem { origin, reason } => write!(f, "{origin}: malformed PEM: {reason}"),
            Self::WrongPemLabel {
                origin,
                found,
                expected,
            } => write!(
                f,
                "{origin}: expected a PEM block \"{expected}\", found {}",
                found
                    .iter()
                    .map(|l| format!("\"{l}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::EncryptedKey { origin } => write!(
                f,
                "{origin}: encrypted private keys are not supported; store it decrypted with \
                 mode 600 (e.g. `openssl pkey -in KEY -out KEY.plain`)"
            ),
            Self::KeyTooSmall { origin, bits } => write!(
                f,
                "{origin}: RSA key of {bits} bits is too small (at least {} bits are required)",
                crate::MIN_RSA_BITS
            ),
            Self::KeyTooLarge { origin, bits } => write!(
                f,
                "{origin}: RSA key of {bits} bits is too large (at most {} bits are supported)",
                crate::MAX_RSA_BITS
            ),
            Self::UnsupportedKey { origin, algorithm } => write!(
                f,
                "{origin}: unsupported key algorithm {algorithm} (RSA, ECDSA P-256 and P-384 \
                 are supported)"
            ),
            Self::BadKey { origin, reason } => write!(f, "{origin}: invalid private key: {reason}"),
            Self::BadCertificate {
                origin,
                index,
                reason,
            } => write!(f, "{origin}: certificate #{index} is invalid: {reason}"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a signature could not be made or did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// An AUTH method this crate does not handle (e.g. 2, shared key MIC).
    UnsupportedAuthMethod(u8),
    /// RFC 7427 AUTH data shorter than its own length octet says.
    TruncatedAuthData,
    /// The AlgorithmIdentifier is not valid DER.
    MalformedAlgorithmIdentifier(String),
    /// A well-formed AlgorithmIdentifier whose OID is not a signature
    /// algorithm this crate knows.
    UnknownAlgorithm {
        /// The dotted OID.
        oid: String,
    },
    /// RSASSA-PSS parameters this crate cannot verify with.
    UnsupportedPssParameters(&'static str),
    /// A hash algorithm that is not allowed with this scheme (e.g. SHA-1
    /// with ECDSA), or an unknown one.
    UnsupportedHash(&'static str),
    /// The scheme needs another kind of key than the one given.
    KeyMismatch {
        /// The scheme, e.g. "sha256WithRSAEncryption".
        scheme: String,
        /// The key's algorithm, e.g. "ECDSA P-256".
        key: String,
    },
    /// The signature does not verify with this key over these octets.
    Invalid,
    /// The private-key operation failed.
    SigningFailed(String),
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedAuthMethod(m) => write!(
                f,
                "AUTH method {m} is not a signature method supported here: we take 1 (RSA \
                 Digital Signature) and 14 (RFC 7427 Digital Signature, which also carries ECDSA); \
                 the ECDSA methods 9-11 of RFC 4754 are not supported"
            ),
            Self::TruncatedAuthData => write!(
                f,
                "RFC 7427 AUTH data is shorter than its AlgorithmIdentifier length octet says"
            ),
            Self::MalformedAlgorithmIdentifier(why) => {
                write!(
                    f,
                    "the signature AlgorithmIdentifier is not valid DER: {why}"
                )
            }
            Self::UnknownAlgorithm { oid } => {
                write!(f, "unknown or unsupported signature algorithm OID {oid}")
            }
            Self::UnsupportedPssParameters(why) => {
                write!(f, "unsupported RSASSA-PSS parameters: {why}")
            }
            Self::UnsupportedHash(why) => write!(f, "unsupported hash: {why}"),
            Self::KeyMismatch { scheme, key } => {
                write!(
                    f,
                    "signature scheme {scheme} cannot be used with an {key} key"
                )
            }
            Self::Invalid => write!(f, "signature does not verify"),
            Self::SigningFailed(why) => write!(f, "signing failed: {why}"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// Why a peer's certificate chain or identity is not accepted. Each reason
/// has its own variant so that the negotiator can log and show it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// A certificate's DER could not be parsed.
    Malformed {
        /// Which certificate ("end-entity", "intermediate #2", "trust anchor").
        which: String,
        /// What the decoder said.
        reason: String,
    },
    /// `now` is after the certificate's notAfter.
    Expired {
        /// The certificate's subject (RFC 4514).
        subject: String,
        /// Its notAfter, "YYYY-MM-DD hh:mm:ss UTC".
        not_after: String,
    },
    /// `now` is before the certificate's notBefore.
    NotYetValid {
        /// The certificate's subject.
        subject: String,
        /// Its notBefore.
        not_before: String,
    },
    /// No certificate in the chain was issued by the trusted CA.
    UntrustedIssuer {
        /// The last certificate of the chain that could be built.
        subject: String,
        /// The issuer it names, which is neither the CA nor a supplied
        /// intermediate.
        issuer: String,
        /// The trusted CA's subject.
        trusted_ca: String,
    },
    /// A certificate's signature does not verify with its issuer's key.
    BadSignature {
        /// The certificate.
        subject: String,
        /// The issuer whose key was used.
        issuer: String,
    },
    /// An issuer without basicConstraints CA:TRUE.
    NotACa {
        /// The would-be issuer.
        subject: String,
    },
    /// An issuer whose keyUsage lacks keyCertSign.
    IssuerKeyUsage {
        /// The issuer.
        subject: String,
    },
    /// An end-entity certificate whose keyUsage allows neither
    /// digitalSignature nor nonRepudiation.
    EndEntityKeyUsage {
        /// The end entity.
        subject: String,
    },
    /// More intermediates below an issuer than its pathLenConstraint allows.
    PathLenExceeded {
        /// The constrained issuer.
        subject: String,
        /// Its pathLenConstraint.
        path_len: u8,
        /// Intermediates found below it.
        below: usize,
    },
    /// The chain is longer than [`MAX_CHAIN_DEPTH`](crate::MAX_CHAIN_DEPTH).
    ChainTooLong,
    /// A critical extension this crate does not process (RFC 5280 4.2).
    UnsupportedCriticalExtension {
        /// The certificate.
        subject: String,
        /// The extension's dotted OID.
        oid: String,
    },
    /// A certificate signature algorithm that is not accepted.
    UnsupportedSignatureAlgorithm {
        /// The certificate.
        subject: String,
        /// Why (names the OID).
        reason: String,
    },
    /// A public key that is not supported or too weak.
    UnsupportedKey {
        /// The certificate.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The certificate has no subjectAltName entry equal to the identity.
    IdentityNotInCertificate {
        /// The identity, e.g. "10.99.0.2" or "r2.example".
        identity: String,
        /// The subjectAltName entries the certificate has.
        has: Vec<String>,
    },
    /// The ID_DER_ASN1_DN identity is not the certificate's subject.
    SubjectMismatch {
        /// The identity's DN (RFC 4514, or hex when not parseable).
        identity: String,
        /// The certificate's subject.
        subject: String,
    },
    /// An identity type that a certificate cannot vouch for (e.g. ID_KEY_ID).
    UnsupportedIdentity(String),
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { which, reason } => {
                write!(f, "the {which} certificate cannot be parsed: {reason}")
            }
            Self::Expired { subject, not_after } => {
                write!(f, "certificate `{subject}` expired on {not_after}")
            }
            Self::NotYetValid {
                subject,
                not_before,
            } => write!(
                f,
                "certificate `{subject}` is not yet valid until {not_before}"
            ),
            Self::UntrustedIssuer {
                subject,
                issuer,
                trusted_ca,
            } => write!(
                f,
                "certificate `{subject}` is issued by `{issuer}`, not signed by the trusted CA \
                 `{trusted_ca}` nor by an intermediate the peer sent"
            ),
            Self::BadSignature { subject, issuer } => write!(
                f,
                "the signature on certificate `{subject}` does not verify with the public key \
                 of `{issuer}`"
            ),
            Self::NotACa { subject } => write!(
                f,
                "CA:false certificate `{subject}` used as an issuer (basicConstraints CA:TRUE \
                 missing)"
            ),
            Self::IssuerKeyUsage { subject } => write!(
                f,
                "issuer `{subject}` has a keyUsage extension without keyCertSign"
            ),
            Self::EndEntityKeyUsage { subject } => write!(
                f,
                "certificate `{subject}` has a keyUsage extension with neither digitalSignature \
                 nor nonRepudiation, so its key may not sign IKE AUTH (RFC 4945 5.1.3.2)"
            ),
            Self::PathLenExceeded {
                subject,
                path_len,
                below,
            } => write!(
                f,
                "CA `{subject}` allows {path_len} intermediate certificate(s) below it \
                 (pathLenConstraint) but the chain has {below}"
            ),
            Self::ChainTooLong => write!(
                f,
                "certificate chain longer than {} certificates",
                crate::MAX_CHAIN_DEPTH
            ),
            Self::UnsupportedCriticalExtension { subject, oid } => write!(
                f,
                "certificate `{subject}` has a critical extension {oid} that is not supported"
            ),
            Self::UnsupportedSignatureAlgorithm { subject, reason } => {
                write!(f, "certificate `{subject}`: {reason}")
            }
            Self::UnsupportedKey { subject, reason } => {
                write!(f, "certificate `{subject}`: {reason}")
            }
            Self::IdentityNotInCertificate { identity, has } => {
                write!(
                    f,
                    "identity {identity} not in the certificate's subjectAltName (it has "
                )?;
                if has.is_empty() {
                    write!(f, "none)")
                } else {
                    write!(f, "{})", has.join(", "))
                }
            }
            Self::SubjectMismatch { identity, subject } => write!(
                f,
                "identity DN `{identity}` is not the certificate's subject `{subject}`"
            ),
            Self::UnsupportedIdentity(what) => {
                write!(f, "a certificate cannot vouch for identity {what}")
            }
        }
    }
}

impl std::error::Error for CertError {}
