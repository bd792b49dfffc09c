//! Certificate path validation from a peer's end-entity certificate up to
//! the one CA a trustpoint trusts (RFC 5280 6.1, reduced to what IKE peers
//! use: no policies, no name constraints, no revocation).
//!
//! The path is built from the end entity upwards by issuer name, among the
//! intermediates the peer sent in CERT payloads (in any order, unused ones
//! ignored), until a certificate issued by the trust anchor. Each link is
//! checked in full: signature, validity at `now`, CA:TRUE and keyCertSign on
//! the issuer, pathLenConstraint, critical extensions. The clock is the
//! caller's: this module never reads it.

use std::time::SystemTime;

use crate::cert::{Certificate, Identity};
use crate::error::CertError;
use crate::key::PublicKey;

/// The longest chain accepted, end entity and trust anchor included.
pub const MAX_CHAIN_DEPTH: usize = 8;

/// The CA certificate of a trustpoint: the only root of trust of a chain.
#[derive(Clone, Debug)]
pub struct TrustAnchor {
    cert: Certificate,
}

impl TrustAnchor {
    /// A trust anchor from its certificate, which must be a CA
    /// (basicConstraints CA:TRUE) with a supported key. Its validity period
    /// is checked at each [`verify_chain`], not here.
    pub fn new(cert: Certificate) -> Result<Self, CertError> {
        if !cert.is_ca() {
            return Err(CertError::NotACa {
                subject: cert.subject().to_string(),
            });
        }
        cert.public_key()?;
        cert.check_critical_extensions()?;
        Ok(Self { cert })
    }

    /// [`TrustAnchor::new`] from DER.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let cert = Certificate::from_der(der).map_err(|e| relabel(e, "trust anchor"))?;
        Self::new(cert)
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The CA's subject (RFC 4514).
    pub fn subject(&self) -> &str {
        self.cert.subject()
    }

    /// This CA's entry in a CERTREQ payload: the SHA-1 hash of its
    /// SubjectPublicKeyInfo (RFC 7296 3.7; see [`Certificate::spki_sha1`]).
    pub fn certreq_hash(&self) -> [u8; 20] {
        self.cert.spki_sha1()
    }

    /// Whether a received CERTREQ's Certification Authority data (a
    /// concatenation of 20-byte SHA-1 hashes) names this CA. Data whose
    /// length is not a multiple of 20 names nothing.
    pub fn is_requested_by(&self, certreq_data: &[u8]) -> bool {
        certreq_data.len() % 20 == 0
            && certreq_data
                .chunks_exact(20)
                .any(|hash| hash == self.certreq_hash())
    }
}

/// A peer whose certificate chain verified: its end-entity certificate and
/// public key, ready for the AUTH check and the identity check.
#[derive(Clone, Debug)]
pub struct VerifiedPeer {
    end_entity: Certificate,
    public_key: PublicKey,
    chain: Vec<String>,
}

impl VerifiedPeer {
    /// The end-entity certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.end_entity
    }

    /// The key to verify the peer's AUTH payload with.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The end entity's subject (RFC 4514).
    pub fn subject(&self) -> &str {
        self.end_entity.subject()
    }

    /// The subjects of the verified path, end entity first, trust anchor
    /// last.
    pub fn chain(&self) -> &[String] {
        &self.chain
    }

    /// Whether the certificate vouches for the peer's IKE identity: an
    /// ID_IPV4_ADDR/ID_IPV6_ADDR in a subjectAltName iPAddress, an ID_FQDN
    /// in a dNSName (case-insensitive), an ID_RFC822_ADDR in an rfc822Name,
    /// an ID_DER_ASN1_DN equal to the subject (RFC 4945 3.1, 3.2). The
    /// error names the identity and what the certificate has.
    pub fn check_identity(&self, identity: &Identity) -> Result<(), CertError> {
        self.end_entity.check_identity(identity)
    }

    /// [`check_identity`](Self::check_identity) as a yes/no.
    pub fn matches_identity(&self, identity: &Identity) -> bool {
        self.check_identity(identity).is_ok()
    }
}

/// Verifies a peer's end-entity certificate up to `trust_anchor` through
/// `intermediates` (DER, in any order), at time `now`.
pub fn verify_chain(
    end_entity_der: &[u8],
    intermediates: &[&[u8]],
    trust_anchor: &TrustAnchor,
    now: SystemTime,
) -> Result<VerifiedPeer, CertError> {
    let end_entity = Certificate::from_der(end_entity_der).map_err(|e| relabel(e, "end-entity"))?;
    let pool = intermediates
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der).map_err(|e| relabel(e, &format!("intermediate #{}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;

    end_entity.check_validity(now)?;
    end_entity.check_critical_extensions()?;
    let public_key = end_entity.public_key()?.clone();
    if let Some(ku) = end_entity.key_usage() {
        // RFC 4945 5.1.3.2: if keyUsage is present, digitalSignature or
        // nonRepudiation must be set for the key to sign IKE AUTH.
        if !ku.digital_signature() && !ku.non_repudiation() {
            return Err(CertError::EndEntityKeyUsage {
                subject: end_entity.subject().to_string(),
            });
        }
    }

    let anchor = &trust_anchor.cert;
    let mut chain = vec![end_entity.subject().to_string()];
    let mut used = vec![false; pool.len()];
    let mut current = &end_entity;
    loop {
        if chain.len() >= MAX_CHAIN_DEPTH {
            return Err(CertError::ChainTooLong);
        }
        let mut signature_checked = false;
        let issuer = if current.issuer_name_der() == anchor.subject_der() {
            anchor
        } else {
            let candidates: Vec<usize> = (0..pool.len())
                .filter(|&i| !used[i] && pool[i].subject_der() == current.issuer_name_der())
                .collect();
            // Among same-named candidates, prefer the one whose key signed
            // `current` (a peer may send an old and a renewed CA).
            let signer = candidates
                .iter()
                .copied()
                .find(|&i| current.check_signed_by(&pool[i]).is_ok());
            signature_checked = signer.is_some();
            match signer.or_else(|| candidates.first().copied()) {
                Some(i) => {
                    used[i] = true;
                    &pool[i]
                }
                None => {
                    return Err(CertError::UntrustedIssuer {
                        subject: current.subject().to_string(),
                        issuer: current.issuer().to_string(),
                        trusted_ca: anchor.subject().to_string(),
                    })
                }
            }
        };
        check_issuer(issuer, chain.len() - 1, now)?;
        // Checked once: the pick above already verified a signer it found.
        if !signature_checked {
            current.check_signed_by(issuer)?;
        }
        chain.push(issuer.subject().to_string());
        if std::ptr::eq(issuer, anchor) {
            break;
        }
        current = issuer;
    }
    Ok(VerifiedPeer {
        end_entity,
        public_key,
        chain,
    })
}

/// The checks on a certificate used as an issuer, with `below` intermediate
/// certificates between it and the end entity.
fn check_issuer(issuer: &Certificate, below: usize, now: SystemTime) -> Result<(), CertError> {
    let subject = || issuer.subject().to_string();
    // RFC 5280 6.1.4 (k): an issuer must be a CA by basicConstraints.
    let bc = match issuer.basic_constraints() {
        Some(bc) if bc.ca => bc,
        _ => return Err(CertError::NotACa { subject: subject() }),
    };
    // RFC 5280 6.1.4 (n): keyUsage, when present, must allow keyCertSign.
    if issuer.key_usage().is_some_and(|ku| !ku.key_cert_sign()) {
        return Err(CertError::IssuerKeyUsage { subject: subject() });
    }
    // RFC 5280 4.2.1.9: pathLenConstraint counts the intermediates below.
    if let Some(path_len) = bc.path_len_constraint {
        if below > usize::from(path_len) {
            return Err(CertError::PathLenExceeded {
                subject: subject(),
                path_len,
                below,
            });
        }
    }
    issuer.check_validity(now)?;
    issuer.check_critical_extensions()?;
    Ok(())
}

fn relabel(e: CertError, which: &str) -> CertError {
    match e {
        CertError::Malformed { reason, .. } => CertError::Malformed {
            which: which.to_string(),
            reason,
        },
        other => other,
    }
}
