//! X.509 certificates, private keys and signatures for IKEv2 public-key
//! authentication, as strongSwan and Cisco IOS-XR speak it.
//!
//! This crate is the certificate and signature layer the IKE negotiator
//! calls; it owns no socket and reads no clock (the caller passes `now`) and
//! takes its randomness from the caller. The only functions that touch the
//! file system are the `load_*` ones.
//!
//! - Loading: [`load_certificates`] / [`parse_certificates`] (PEM chains or
//!   DER) and [`load_private_key`] / [`parse_private_key`] (PKCS#1, PKCS#8,
//!   SEC1; RSA 2048 to 8192 bits, ECDSA P-256/P-384; a key file readable by
//!   group or others is refused).
//! - AUTH payloads: [`sign_auth`] / [`verify_auth`] for method 1 (RSA
//!   PKCS#1 v1.5 with SHA-1, RFC 7296 3.8) and method 14 (RFC 7427:
//!   PKCS#1 v1.5 with SHA-2, RSASSA-PSS, ECDSA), [`AuthSignature::choose`]
//!   and the SIGNATURE_HASH_ALGORITHMS helpers of [`hash`].
//! - Trust: [`verify_chain`] from the peer's certificate to a
//!   [`TrustAnchor`], then [`VerifiedPeer::check_identity`] against the
//!   peer's ID payload; [`TrustAnchor::certreq_hash`] for CERTREQ.
//!
//! Invariants: private keys never appear in `Debug`, `Display` or error
//! text and are wiped on drop; nothing a peer sends can make this crate
//! panic; every refusal is its own error variant with a sentence that names
//! the file, certificate or OID concerned.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod cert;
mod chain;
mod error;
pub mod hash;
mod key;
mod load;
mod oid;
mod scheme;

pub use auth::{
    encode_digital_signature_auth, parse_digital_signature_auth, sign_auth, verify_auth,
    AuthSignature, AUTH_METHOD_DIGITAL_SIGNATURE, AUTH_METHOD_RSA_SIGNATURE,
};
pub use cert::{AltName, Certificate, Identity};
pub use chain::{verify_chain, TrustAnchor, VerifiedPeer, MAX_CHAIN_DEPTH};
pub use error::{CertError, LoadError, SignatureError};
pub use hash::HashAlgorithm;
pub use key::{KeyAlgorithm, PrivateKey, PublicKey, MAX_RSA_BITS, MIN_RSA_BITS};
pub use load::{
    load_certificates, load_private_key, parse_certificates, parse_private_key,
    read_private_key_file,
};
pub use scheme::{algorithm_identifier, SignatureScheme};
