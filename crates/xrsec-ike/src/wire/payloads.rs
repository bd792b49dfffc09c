//! The payload bodies with a flat layout: KE, IDi/IDr, CERT, CERTREQ, AUTH,
//! Notify and Delete (RFC 7296 3.4 to 3.11). Each owned type parses from the
//! body that follows the generic payload header and emits that body back.

use super::reader::{emit_len_u16, emit_len_u8, Reader};
use super::WireError;

/// Key Exchange payload (RFC 7296 3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KePayload {
    /// Diffie-Hellman Group Num (transform type 4 ID).
    pub group: u16,
    /// The public value, e.g. x | y for the ECP groups (RFC 5903 7).
    pub data: Vec<u8>,
}

impl KePayload {
    pub fn parse(body: &[u8]) -> Result<KePayload, WireError> {
        let mut r = Reader::new(body);
        let group = r.u16("KE payload header")?;
        r.skip_reserved(2, "KE payload header")?;
        Ok(KePayload {
            group,
            data: r.rest().to_vec(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&[0; 2]);
        out.extend_from_slice(&self.data);
    }
}

/// ID Type (RFC 7296 3.5).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdType {
    Ipv4Addr,
    Fqdn,
    Rfc822,
    Ipv6Addr,
    DerAsn1Dn,
    KeyId,
    /// A value without a name here (never 1, 2, 3, 5, 9 or 11).
    Other(u8),
}

impl From<u8> for IdType {
    fn from(value: u8) -> Self {
        match value {
            1 => IdType::Ipv4Addr,
            2 => IdType::Fqdn,
            3 => IdType::Rfc822,
            5 => IdType::Ipv6Addr,
            9 => IdType::DerAsn1Dn,
            11 => IdType::KeyId,
            other => IdType::Other(other),
        }
    }
}

impl From<IdType> for u8 {
    fn from(value: IdType) -> u8 {
        match value {
            IdType::Ipv4Addr => 1,
            IdType::Fqdn => 2,
            IdType::Rfc822 => 3,
            IdType::Ipv6Addr => 5,
            IdType::DerAsn1Dn => 9,
            IdType::KeyId => 11,
            IdType::Other(other) => other,
        }
    }
}

/// Identification payload, IDi or IDr (RFC 7296 3.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPayload {
    pub id_type: IdType,
    pub data: Vec<u8>,
}

impl IdPayload {
    pub fn parse(body: &[u8]) -> Result<IdPayload, WireError> {
        let mut r = Reader::new(body);
        let id_type = IdType::from(r.u8("ID payload header")?);
        r.skip_reserved(3, "ID payload header")?;
        Ok(IdPayload {
            id_type,
            data: r.rest().to_vec(),
        })
    }

    /// RestOfInitIDPayload / RestOfRespIDPayload of RFC 7296 2.15: the body
    /// from ID Type on (type, three reserved bytes, data). The reserved bytes
    /// are zero here; the signature must cover what was sent, and this module
    /// always sends zero (a peer's non-zero reserved bytes do not survive a
    /// parse).
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.id_type));
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&self.data);
    }
}

/// Certificate payload (RFC 7296 3.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPayload {
    /// Cert Encoding; 4 is "X.509 Certificate - Signature".
    pub encoding: u8,
    pub data: Vec<u8>,
}

/// Certificate Request payload (RFC 7296 3.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertReqPayload {
    pub encoding: u8,
    /// For X.509: concatenated SHA-1 hashes (20 bytes each) of trusted CA
    /// public keys. Not checked to be a multiple of 20: the caller reads
    /// whole hashes and ignores a remainder.
    pub data: Vec<u8>,
}

macro_rules! encoding_and_data {
    ($ty:ident, $what:literal) => {
        impl $ty {
            pub fn parse(body: &[u8]) -> Result<$ty, WireError> {
                let mut r = Reader::new(body);
                let encoding = r.u8($what)?;
                Ok($ty {
                    encoding,
                    data: r.rest().to_vec(),
                })
            }

            pub fn buffer_len(&self) -> usize {
                1 + self.data.len()
            }

            pub fn emit(&self, out: &mut Vec<u8>) {
                out.push(self.encoding);
                out.extend_from_slice(&self.data);
            }
        }
    };
}

encoding_and_data!(CertPayload, "CERT payload encoding");
encoding_and_data!(CertReqPayload, "CERTREQ payload encoding");

/// Authentication payload (RFC 7296 3.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthPayload {
    /// Auth Method: 1 RSA signature, 2 shared key MIC, 14 digital signature
    /// (RFC 7427).
    pub method: u8,
    pub data: Vec<u8>,
}

impl AuthPayload {
    pub fn parse(body: &[u8]) -> Result<AuthPayload, WireError> {
        let mut r = Reader::new(body);
        let method = r.u8("AUTH payload header")?;
        r.skip_reserved(3, "AUTH payload header")?;
        Ok(AuthPayload {
            method,
            data: r.rest().to_vec(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.method);
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&self.data);
    }
}

/// RFC 7296 3.9: Nonce Data MUST be between 16 and 256 octets.
pub const NONCE_MIN_LEN: usize = 16;
pub const NONCE_MAX_LEN: usize = 256;

pub(crate) fn parse_nonce(body: &[u8]) -> Result<Vec<u8>, WireError> {
    // RFC 7296 3.9: "The size of the Nonce Data MUST be between 16 and 256
    // octets, inclusive."
    if !(NONCE_MIN_LEN..=NONCE_MAX_LEN).contains(&body.len()) {
        return Err(WireError::Malformed {
            what: "nonce length",
        });
    }
    Ok(body.to_vec())
}

/// Notify payload (RFC 7296 3.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyPayload {
    /// Protocol ID of the SA the SPI names; 0 when `spi` is empty.
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub notify_type: u16,
    pub data: Vec<u8>,
}

impl NotifyPayload {
    /// A notification about the IKE SA itself: no protocol, no SPI.
    pub fn new(notify_type: u16, data: Vec<u8>) -> NotifyPayload {
        NotifyPayload {
            protocol: 0,
            spi: Vec::new(),
            notify_type,
            data,
        }
    }

    pub fn parse(body: &[u8]) -> Result<NotifyPayload, WireError> {
        let mut r = Reader::new(body);
        let protocol = r.u8("Notify payload header")?;
        let spi_size = usize::from(r.u8("Notify payload header")?);
        let notify_type = r.u16("Notify payload header")?;
        let spi = r.take(spi_size, "Notify SPI")?.to_vec();
        Ok(NotifyPayload {
            protocol,
            spi,
            notify_type,
            data: r.rest().to_vec(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.spi.len() + self.data.len()
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.protocol);
        out.push(emit_len_u8(self.spi.len(), "Notify SPI size"));
        out.extend_from_slice(&self.notify_type.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
    }
}

const DELETE_PROTOCOL_IKE: u8 = 1;

/// Delete payload (RFC 7296 3.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletePayload {
    /// 1 for the IKE SA, 2 (AH) or 3 (ESP) for Child SAs.
    pub protocol: u8,
    /// The inbound SPIs of the sender's Child SAs; empty for the IKE SA.
    pub spis: Vec<u32>,
}

impl DeletePayload {
    pub fn parse(body: &[u8]) -> Result<DeletePayload, WireError> {
        let mut r = Reader::new(body);
        let protocol = r.u8("Delete payload header")?;
        let spi_size = r.u8("Delete payload header")?;
        let count = usize::from(r.u16("Delete payload header")?);
        // RFC 7296 3.11: the IKE SA is deleted with SPI Size 0 and no SPIs;
        // Child SAs (AH, ESP) with 4-byte SPIs.
        let expected_size = match protocol {
            DELETE_PROTOCOL_IKE => 0,
            2 | 3 => 4,
            _ => {
                return Err(WireError::Malformed {
                    what: "Delete protocol ID",
                })
            }
        };
        if spi_size != expected_size {
            return Err(WireError::Malformed {
                what: "Delete SPI size",
            });
        }
        if protocol == DELETE_PROTOCOL_IKE && count != 0 {
            return Err(WireError::Malformed {
                what: "Delete of the IKE SA with SPIs",
            });
        }
        if count * 4 != r.left() {
            return Err(WireError::Malformed {
                what: "Delete SPI count",
            });
        }
        let mut spis = Vec::with_capacity(count);
        for _ in 0..count {
            spis.push(r.u32("Delete SPI")?);
        }
        Ok(DeletePayload { protocol, spis })
    }

    fn is_ike(&self) -> bool {
        self.protocol == DELETE_PROTOCOL_IKE
    }

    /// For the IKE SA, any `spis` are left out (the RFC gives it none).
    pub fn buffer_len(&self) -> usize {
        4 + if self.is_ike() {
            0
        } else {
            4 * self.spis.len()
        }
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.protocol);
        if self.is_ike() {
            out.extend_from_slice(&[0, 0, 0]);
        } else {
            out.push(4);
            out.extend_from_slice(&emit_len_u16(self.spis.len(), "Delete SPI count").to_be_bytes());
            for spi in &self.spis {
                out.extend_from_slice(&spi.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_and_emit_ke() {
        let body = [0x00, 0x13, 0x00, 0x00, 0xaa, 0xbb];
        let ke = KePayload {
            group: 19,
            data: vec![0xaa, 0xbb],
        };
        assert_eq!(KePayload::parse(&body), Ok(ke.clone()));
        let mut out = Vec::new();
        ke.emit(&mut out);
        assert_eq!(out, body);
        assert!(KePayload::parse(&body[..3]).is_err());
    }

    #[test]
    fn test_parse_and_emit_id() {
        let body = [0x02, 0x00, 0x00, 0x00, b'v', b'p', b'n'];
        let id = IdPayload {
            id_type: IdType::Fqdn,
            data: b"vpn".to_vec(),
        };
        assert_eq!(IdPayload::parse(&body), Ok(id.clone()));
        assert_eq!(id.body_bytes(), body);
    }

    #[test]
    fn test_parse_and_emit_cert_and_certreq() {
        let body = [0x04, 0x30, 0x82];
        let cert = CertPayload {
            encoding: 4,
            data: vec![0x30, 0x82],
        };
        assert_eq!(CertPayload::parse(&body), Ok(cert.clone()));
        let mut out = Vec::new();
        cert.emit(&mut out);
        assert_eq!(out, body);
        let req = CertReqPayload {
            encoding: 4,
            data: vec![0x11; 20],
        };
        let mut out = Vec::new();
        req.emit(&mut out);
        assert_eq!(CertReqPayload::parse(&out), Ok(req));
        assert!(CertPayload::parse(&[]).is_err());
    }

    #[test]
    fn test_parse_and_emit_auth() {
        let body = [0x02, 0x00, 0x00, 0x00, 0x01, 0x02];
        let auth = AuthPayload {
            method: 2,
            data: vec![1, 2],
        };
        assert_eq!(AuthPayload::parse(&body), Ok(auth.clone()));
        let mut out = Vec::new();
        auth.emit(&mut out);
        assert_eq!(out, body);
    }

    #[test]
    fn test_parse_and_emit_notify_with_spi() {
        let body = [0x03, 0x04, 0x40, 0x09, 0xc0, 0x01, 0x02, 0x03];
        let n = NotifyPayload {
            protocol: 3,
            spi: vec![0xc0, 1, 2, 3],
            notify_type: 16393,
            data: vec![],
        };
        assert_eq!(NotifyPayload::parse(&body), Ok(n.clone()));
        let mut out = Vec::new();
        n.emit(&mut out);
        assert_eq!(out, body);
    }

    #[test]
    fn rejects_notify_spi_size_past_the_payload() {
        let body = [0x03, 0x04, 0x40, 0x09, 0xc0];
        assert_eq!(
            NotifyPayload::parse(&body),
            Err(WireError::Truncated { what: "Notify SPI" })
        );
    }

    #[test]
    fn test_parse_and_emit_delete() {
        let body = [0x03, 0x04, 0x00, 0x02, 0, 0, 0, 1, 0xff, 0, 0, 2];
        let d = DeletePayload {
            protocol: 3,
            spis: vec![1, 0xff00_0002],
        };
        assert_eq!(DeletePayload::parse(&body), Ok(d.clone()));
        let mut out = Vec::new();
        d.emit(&mut out);
        assert_eq!(out, body);
        let ike = [0x01, 0x00, 0x00, 0x00];
        assert_eq!(
            DeletePayload::parse(&ike),
            Ok(DeletePayload {
                protocol: 1,
                spis: vec![]
            })
        );
    }

    #[test]
    fn rejects_delete_with_spi_size_not_matching_its_protocol() {
        assert!(DeletePayload::parse(&[0x01, 0x04, 0x00, 0x00]).is_err());
        assert!(DeletePayload::parse(&[0x03, 0x08, 0x00, 0x00]).is_err());
        assert!(DeletePayload::parse(&[0x07, 0x04, 0x00, 0x00]).is_err());
        assert!(DeletePayload::parse(&[0x03, 0x04, 0x00, 0x02, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn rejects_nonce_shorter_than_16_or_longer_than_256_bytes() {
        assert!(parse_nonce(&[0; 15]).is_err());
        assert!(parse_nonce(&[0; 16]).is_ok());
        assert!(parse_nonce(&[0; 256]).is_ok());
        assert!(parse_nonce(&[0; 257]).is_err());
    }
}
