//! One parsed X.509v3 certificate, and the IKE identities it can vouch for.
//!
//! [`Certificate::from_der`] parses everything chain verification needs up
//! front (names, validity, the extensions it processes, the public key) so
//! that a malformed extension is an error at parse time, not a surprise in
//! the middle of a chain. The signed TBSCertificate is kept as the exact
//! received bytes: the signature is checked over those, never over a
//! re-encoding.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::{AnyRef, BitStringRef};
use der::{Decode, Encode, Reader, SliceReader};
use sha1::{Digest, Sha1};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectAltName};

use crate::error::CertError;
use crate::key::PublicKey;
use crate::oid;
use crate::scheme::SignatureScheme;

/// An X.509 certificate as received or loaded, with the fields the chain
/// check and the identity check use.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    signature: Vec<u8>,
    signature_algorithm: Result<SignatureScheme, String>,
    subject: String,
    subject_der: Vec<u8>,
    issuer: String,
    issuer_der: Vec<u8>,
    not_before: u64,
    not_after: u64,
    spki_der: Vec<u8>,
    public_key: Result<PublicKey, String>,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    alt_names: Vec<AltName>,
    unsupported_critical: Option<String>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("not_before", &format_time(self.not_before))
            .field("not_after", &format_time(self.not_after))
            .finish_non_exhaustive()
    }
}

/// A subjectAltName entry (RFC 5280 4.2.1.6) of the kinds IKE identities
/// are compared with; others are kept as a description.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AltName {
    /// iPAddress.
    Ip(IpAddr),
    /// dNSName.
    Dns(String),
    /// rfc822Name.
    Email(String),
    /// directoryName, as DER.
    DirectoryName(Vec<u8>),
    /// Any other kind, described for messages.
    Other(String),
}

impl fmt::Display for AltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(a) => write!(f, "IP {a}"),
            Self::Dns(n) => write!(f, "DNS {n}"),
            Self::Email(e) => write!(f, "email {e}"),
            Self::DirectoryName(dn) => write!(f, "DN {}", describe_dn(dn)),
            Self::Other(what) => f.write_str(what),
        }
    }
}

impl Certificate {
    /// Parses one DER certificate. The input must be exactly one
    /// certificate. Unsupported keys and signature algorithms are not parse
    /// errors: they fail the chain check only if that certificate is used.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        Self::parse(der).map_err(|reason| CertError::Malformed {
            which: "given".into(),
            reason,
        })
    }

    fn parse(der: &[u8]) -> Result<Self, String> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
        let (tbs, signature) = split_signed(der).map_err(|e| e.to_string())?;
        let tbs_cert = &cert.tbs_certificate;
        let subject_der = tbs_cert.subject.to_der().map_err(|e| e.to_string())?;
        let issuer_der = tbs_cert.issuer.to_der().map_err(|e| e.to_string())?;
        let spki_der = tbs_cert
            .subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string())?;
        let signature_algorithm = if cert.signature_algorithm != tbs_cert.signature {
            // RFC 5280 4.1.1.2: both fields MUST name the same algorithm.
            Err("the signature algorithm differs inside and outside the signed part".into())
        } else {
            let ai_der = cert
                .signature_algorithm
                .to_der()
                .map_err(|e| e.to_string())?;
            SignatureScheme::from_algorithm_identifier(&ai_der).map_err(|e| e.to_string())
        };
        let public_key = spki::SubjectPublicKeyInfoRef::from_der(&spki_der)
            .map_err(|e| e.to_string())
            .and_then(|spki| PublicKey::from_spki(&spki));

        let mut parsed = Self {
            der: der.to_vec(),
            tbs,
            signature,
            signature_algorithm,
            subject: tbs_cert.subject.to_string(),
            subject_der,
            issuer: tbs_cert.issuer.to_string(),
            issuer_der,
            not_before: tbs_cert.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs_cert.validity.not_after.to_unix_duration().as_secs(),
            spki_der,
            public_key,
            basic_constraints: None,
            key_usage: None,
            alt_names: Vec::new(),
            unsupported_critical: None,
        };
        for ext in tbs_cert.extensions.iter().flatten() {
            let value = ext.extn_value.as_bytes();
            let bad = |e: der::Error| format!("extension {}: {e}", ext.extn_id);
            match ext.extn_id {
                oid::BASIC_CONSTRAINTS => {
                    parsed.basic_constraints = Some(BasicConstraints::from_der(value).map_err(bad)?)
                }
                oid::KEY_USAGE => parsed.key_usage = Some(KeyUsage::from_der(value).map_err(bad)?),
                oid::SUBJECT_ALT_NAME => {
                    let san = SubjectAltName::from_der(value).map_err(bad)?;
                    parsed.alt_names = san.0.iter().map(alt_name).collect();
                }
                // Processed or safe to ignore for IKE: key identifiers only
                // help chain building, RFC 4945 5.1.3.12 says not to enforce
                // extendedKeyUsage, and no certificate policy is required.
                oid::SUBJECT_KEY_IDENTIFIER
                | oid::AUTHORITY_KEY_IDENTIFIER
                | oid::EXT_KEY_USAGE
                | oid::CERTIFICATE_POLICIES => {}
                other if ext.critical && parsed.unsupported_critical.is_none() => {
                    parsed.unsupported_critical = Some(other.to_string());
                }
                _ => {}
            }
        }
        Ok(parsed)
    }

    /// The certificate as DER, as received (for the CERT payload).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject in RFC 4514 form, e.g. "CN=r2,O=lab".
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject Name as DER: the data of an ID_DER_ASN1_DN identity.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The issuer in RFC 4514 form.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// notBefore.
    pub fn not_before(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.not_before)
    }

    /// notAfter.
    pub fn not_after(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.not_after)
    }

    /// The subject's public key, or why it is not usable here.
    pub fn public_key(&self) -> Result<&PublicKey, CertError> {
        self.public_key
            .as_ref()
            .map_err(|reason| CertError::UnsupportedKey {
                subject: self.subject.clone(),
                reason: reason.clone(),
            })
    }

    /// The subjectAltName entries.
    pub fn alt_names(&self) -> &[AltName] {
        &self.alt_names
    }

    /// Whether basicConstraints says CA:TRUE.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.as_ref().is_some_and(|bc| bc.ca)
    }

    /// The SHA-1 hash of this certificate's SubjectPublicKeyInfo.
    ///
    /// RFC 7296 3.7: a CERTREQ's Certification Authority field lists SHA-1
    /// hashes of the trusted CAs' public keys, each "the SHA-1 hash of the
    /// Subject Public Key Info element" (RFC 5280 4.1.2.7). What is hashed
    /// is therefore the whole SubjectPublicKeyInfo DER, SEQUENCE header,
    /// AlgorithmIdentifier and BIT STRING included, not only the key bits
    /// inside the BIT STRING (which RFC 5280 4.2.1.2's keyIdentifier method
    /// hashes). strongSwan and Cisco compute the same value.
    pub fn spki_sha1(&self) -> [u8; 20] {
        Sha1::digest(&self.spki_der).into()
    }

    pub(crate) fn issuer_name_der(&self) -> &[u8] {
        &self.issuer_der
    }

    pub(crate) fn basic_constraints(&self) -> Option<&BasicConstraints> {
        self.basic_constraints.as_ref()
    }

    pub(crate) fn key_usage(&self) -> Option<KeyUsage> {
        self.key_usage
    }

    /// Validity against `now` (RFC 5280 4.1.2.5: both ends inclusive).
    pub(crate) fn check_validity(&self, now: SystemTime) -> Result<(), CertError> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now < self.not_before {
            return Err(CertError::NotYetValid {
                subject: self.subject.clone(),
                not_before: format_time(self.not_before),
            });
        }
        if now > self.not_after {
            return Err(CertError::Expired {
                subject: self.subject.clone(),
                not_after: format_time(self.not_after),
            });
        }
        Ok(())
    }

    /// RFC 5280 4.2: a certificate with a critical extension we do not
    /// process MUST be rejected.
    pub(crate) fn check_critical_extensions(&self) -> Result<(), CertError> {
        match &self.unsupported_critical {
            Some(oid) => Err(CertError::UnsupportedCriticalExtension {
                subject: self.subject.clone(),
                oid: oid.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Whether `issuer`'s key signed this certificate.
    pub(crate) fn check_signed_by(&self, issuer: &Certificate) -> Result<(), CertError> {
        let scheme = self.signature_algorithm.as_ref().map_err(|reason| {
            CertError::UnsupportedSignatureAlgorithm {
                subject: self.subject.clone(),
                reason: reason.clone(),
            }
        })?;
        if scheme.hash() == crate::HashAlgorithm::Sha1 {
            return Err(CertError::UnsupportedSignatureAlgorithm {
                subject: self.subject.clone(),
                reason: format!(
                    "signed with {scheme}, and SHA-1 is not accepted in certificate \
                     signatures (collisions are practical)"
                ),
            });
        }
        let key = issuer.public_key()?;
        key.verify(scheme, &self.der[self.tbs.clone()], &self.signature)
            .map_err(|_| CertError::BadSignature {
                subject: self.subject.clone(),
                issuer: issuer.subject.clone(),
            })
    }

    /// Whether this certificate vouches for `identity`; the error names
    /// what it has instead.
    pub(crate) fn check_identity(&self, identity: &Identity) -> Result<(), CertError> {
        let found = match identity {
            Identity::Ipv4(a) => self.alt_names.contains(&AltName::Ip(IpAddr::V4(*a))),
            Identity::Ipv6(a) => self.alt_names.contains(&AltName::Ip(IpAddr::V6(*a))),
            Identity::Fqdn(name) => self.alt_names.iter().any(|n| match n {
                AltName::Dns(dns) => same_dns_name(dns, name),
                _ => false,
            }),
            Identity::Rfc822(email) => self.alt_names.iter().any(|n| match n {
                AltName::Email(e) => e.eq_ignore_ascii_case(email),
                _ => false,
            }),
            Identity::DerAsn1Dn(dn) => {
                return if *dn == self.subject_der {
                    Ok(())
                } else {
                    Err(CertError::SubjectMismatch {
                        identity: describe_dn(dn),
                        subject: self.subject.clone(),
                    })
                };
            }
        };
        if found {
            Ok(())
        } else {
            Err(CertError::IdentityNotInCertificate {
                identity: identity.to_string(),
                has: self.alt_names.iter().map(ToString::to_string).collect(),
            })
        }
    }
}

/// Splits a DER Certificate into the byte range of its TBSCertificate (as
/// received) and the signature bits.
fn split_signed(der: &[u8]) -> der::Result<(Range<usize>, Vec<u8>)> {
    let mut reader = SliceReader::new(der)?;
    let header = der::Header::decode(&mut reader)?;
    header.tag.assert_eq(der::Tag::Sequence)?;
    // Positions inside a nested reader are relative to it: stay on the
    // outer reader so that `start` is an offset into `der`.
    let start = usize::try_from(reader.position())?;
    let tbs_len = reader.tlv_bytes()?.len();
    let _algorithm = AnyRef::decode(&mut reader)?;
    let signature = BitStringRef::decode(&mut reader)?;
    let bits = signature
        .as_bytes()
        .ok_or_else(|| der::Tag::BitString.value_error())?;
    reader.finish((start..start + tbs_len, bits.to_vec()))
}

fn alt_name(name: &GeneralName) -> AltName {
    match name {
        GeneralName::IpAddress(octets) => match octets.as_bytes() {
            [a, b, c, d] => AltName::Ip(IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d))),
            bytes => match <[u8; 16]>::try_from(bytes) {
                Ok(v6) => AltName::Ip(IpAddr::V6(Ipv6Addr::from(v6))),
                Err(_) => AltName::Other(format!("IP of {} bytes", bytes.len())),
            },
        },
        GeneralName::DnsName(n) => AltName::Dns(n.as_str().to_string()),
        GeneralName::Rfc822Name(n) => AltName::Email(n.as_str().to_string()),
        GeneralName::DirectoryName(dn) => match dn.to_der() {
            Ok(der) => AltName::DirectoryName(der),
            Err(_) => AltName::Other("an unencodable DN".into()),
        },
        GeneralName::UniformResourceIdentifier(u) => AltName::Other(format!("URI {}", u.as_str())),
        GeneralName::OtherName(o) => AltName::Other(format!("otherName {}", o.type_id)),
        GeneralName::EdiPartyName(_) => AltName::Other("ediPartyName".into()),
        GeneralName::RegisteredId(o) => AltName::Other(format!("registeredID {o}")),
    }
}

/// dNSName comparison (RFC 5280 4.2.1.6 / 7.2: case-insensitive ASCII), a
/// single trailing dot ignored on either side.
fn same_dns_name(a: &str, b: &str) -> bool {
    a.strip_suffix('.')
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b))
}

/// A DER DN in RFC 4514 form, or in hex when it does not parse.
fn describe_dn(der: &[u8]) -> String {
    match x509_cert::name::Name::from_der(der) {
        Ok(name) => name.to_string(),
        Err(_) => der.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Seconds since 1970 as "YYYY-MM-DD hh:mm:ss UTC".
pub(crate) fn format_time(unix: u64) -> String {
    match der::DateTime::from_unix_duration(Duration::from_secs(unix)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minutes(),
            t.seconds()
        ),
        Err(_) => format!("{unix} seconds after 1970"),
    }
}

/// A peer's IKE identity (RFC 7296 3.5) as a certificate can vouch for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Identity {
    /// ID_IPV4_ADDR (1): a subjectAltName iPAddress.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR (5): a subjectAltName iPAddress.
    Ipv6(Ipv6Addr),
    /// ID_FQDN (2): a subjectAltName dNSName, compared case-insensitively.
    Fqdn(String),
    /// ID_RFC822_ADDR (3): a subjectAltName rfc822Name.
    Rfc822(String),
    /// ID_DER_ASN1_DN (9): the subject, as DER, byte for byte.
    DerAsn1Dn(Vec<u8>),
}

impl Identity {
    /// The identity of an ID payload's type and data. ID types a
    /// certificate cannot vouch for (ID_KEY_ID, ID_DER_ASN1_GN ...) and
    /// malformed data are [`CertError::UnsupportedIdentity`].
    pub fn from_id_payload(id_type: u8, data: &[u8]) -> Result<Self, CertError> {
        let text = || {
            std::str::from_utf8(data).map(str::to_string).map_err(|_| {
                CertError::UnsupportedIdentity(format!("of type {id_type} (not text)"))
            })
        };
        match id_type {
            1 => <[u8; 4]>::try_from(data)
                .map(|a| Self::Ipv4(Ipv4Addr::from(a)))
                .map_err(|_| CertError::UnsupportedIdentity("ID_IPV4_ADDR not 4 bytes".into())),
            2 => text().map(Self::Fqdn),
            3 => text().map(Self::Rfc822),
            5 => <[u8; 16]>::try_from(data)
                .map(|a| Self::Ipv6(Ipv6Addr::from(a)))
                .map_err(|_| CertError::UnsupportedIdentity("ID_IPV6_ADDR not 16 bytes".into())),
            9 => Ok(Self::DerAsn1Dn(data.to_vec())),
            other => Err(CertError::UnsupportedIdentity(format!(
                "of ID type {other}"
            ))),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipv4(a) => write!(f, "{a}"),
            Self::Ipv6(a) => write!(f, "{a}"),
            Self::Fqdn(n) => f.write_str(n),
            Self::Rfc822(e) => f.write_str(e),
            Self::DerAsn1Dn(dn) => f.write_str(&describe_dn(dn)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_as_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn dns_names_compare_without_case_and_trailing_dot() {
        assert!(same_dns_name("R2.Example.NET", "r2.example.net."));
        assert!(!same_dns_name("r2.example.net", "r3.example.net"));
    }

    #[test]
    fn identities_come_from_id_payload_type_and_data() {
        assert_eq!(
            Identity::from_id_payload(1, &[10, 99, 0, 2]).unwrap(),
            Identity::Ipv4(Ipv4Addr::new(10, 99, 0, 2))
        );
        assert_eq!(
            Identity::from_id_payload(2, b"r2.lab").unwrap(),
            Identity::Fqdn("r2.lab".into())
        );
        assert!(Identity::from_id_payload(1, &[10, 99, 0]).is_err());
        assert_eq!(
            Identity::from_id_payload(11, b"key-id")
                .unwrap_err()
                .to_string(),
            "a certificate cannot vouch for identity of ID type 11"
        );
    }
}
