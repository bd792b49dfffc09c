//! Payload chains: the generic payload header (RFC 7296 3.2), the owned
//! [`Payload`] enum, and the walk along Next Payload fields.
//!
//! ```text
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! ```
//!
//! The walk consumes at least the four header bytes per payload, so it ends
//! after at most `len / 4` steps, and it stops earlier at [`MAX_PAYLOADS`].
//! A payload's body is read only within its checked Payload Length.

use core::fmt;

use super::payloads::{
    parse_nonce, AuthPayload, CertPayload, CertReqPayload, DeletePayload, IdPayload, KePayload,
    NotifyPayload,
};
use super::reader::{emit_len_u16, Reader};
use super::sa::SaPayload;
use super::ts::TsPayload;
use super::{notify, WireError};

/// Size of the generic payload header.
pub const GENERIC_HEADER_LEN: usize = 4;
/// More payloads than any exchange between two hosts carries; a chain
/// longer than this is refused rather than walked.
pub const MAX_PAYLOADS: usize = 256;
const CRITICAL: u8 = 0x80;

/// Payload types of RFC 7296 3.2 and RFC 7383 (IANA "IKEv2 Payload Types").
/// Every value here is "known" for RFC 7296 2.5: its critical bit is ignored.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PayloadType {
    None = 0,
    Sa = 33,
    Ke = 34,
    IdI = 35,
    IdR = 36,
    Cert = 37,
    CertReq = 38,
    Auth = 39,
    Nonce = 40,
    Notify = 41,
    Delete = 42,
    Vendor = 43,
    TsI = 44,
    TsR = 45,
    Sk = 46,
    Cp = 47,
    Eap = 48,
    Skf = 53,
}

impl PayloadType {
    pub fn from_u8(value: u8) -> Option<PayloadType> {
        Some(match value {
            0 => PayloadType::None,
            33 => PayloadType::Sa,
            34 => PayloadType::Ke,
            35 => PayloadType::IdI,
            36 => PayloadType::IdR,
            37 => PayloadType::Cert,
            38 => PayloadType::CertReq,
            39 => PayloadType::Auth,
            40 => PayloadType::Nonce,
            41 => PayloadType::Notify,
            42 => PayloadType::Delete,
            43 => PayloadType::Vendor,
            44 => PayloadType::TsI,
            45 => PayloadType::TsR,
            46 => PayloadType::Sk,
            47 => PayloadType::Cp,
            48 => PayloadType::Eap,
            53 => PayloadType::Skf,
            _ => return None,
        })
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl From<PayloadType> for u8 {
    fn from(value: PayloadType) -> u8 {
        value as u8
    }
}

/// One payload of a chain, owned. SK and SKF are not payloads of this enum:
/// [`super::Message`] describes them in its `encrypted` field.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    Sa(SaPayload),
    Ke(KePayload),
    IdI(IdPayload),
    IdR(IdPayload),
    Cert(CertPayload),
    CertReq(CertReqPayload),
    Auth(AuthPayload),
    /// Nonce Data, 16 to 256 bytes (RFC 7296 3.9).
    Nonce(Vec<u8>),
    Notify(NotifyPayload),
    Delete(DeletePayload),
    /// Vendor ID.
    Vendor(Vec<u8>),
    TsI(TsPayload),
    TsR(TsPayload),
    /// A payload this module does not model: an unknown type sent without
    /// the critical bit (RFC 7296 2.5: skipped), or CP and EAP, which RFC 7296
    /// defines but this daemon does not use (their critical bit is kept as
    /// received). `payload_type` must not be a type the other variants or
    /// SK/SKF stand for.
    Unknown {
        payload_type: u8,
        critical: bool,
        body: Vec<u8>,
    },
}

impl Payload {
    /// The payload type number that goes into the previous Next Payload field.
    pub fn payload_type(&self) -> u8 {
        let t = match self {
            Payload::Sa(_) => PayloadType::Sa,
            Payload::Ke(_) => PayloadType::Ke,
            Payload::IdI(_) => PayloadType::IdI,
            Payload::IdR(_) => PayloadType::IdR,
            Payload::Cert(_) => PayloadType::Cert,
            Payload::CertReq(_) => PayloadType::CertReq,
            Payload::Auth(_) => PayloadType::Auth,
            Payload::Nonce(_) => PayloadType::Nonce,
            Payload::Notify(_) => PayloadType::Notify,
            Payload::Delete(_) => PayloadType::Delete,
            Payload::Vendor(_) => PayloadType::Vendor,
            Payload::TsI(_) => PayloadType::TsI,
            Payload::TsR(_) => PayloadType::TsR,
            Payload::Unknown { payload_type, .. } => return *payload_type,
        };
        t as u8
    }

    /// Parses the body of one payload of type `payload_type` (not SK or SKF).
    fn parse_body(payload_type: u8, critical: bool, body: &[u8]) -> Result<Payload, WireError> {
        let Some(known) = PayloadType::from_u8(payload_type) else {
            // RFC 7296 2.5: an unknown payload with the critical bit set makes
            // the whole message rejected with UNSUPPORTED_CRITICAL_PAYLOAD;
            // without it, the payload is skipped.
            if critical {
                return Err(WireError::UnsupportedCriticalPayload { payload_type });
            }
            return Ok(Payload::Unknown {
                payload_type,
                critical,
                body: body.to_vec(),
            });
        };
        // RFC 7296 2.5: the critical bit MUST be ignored for types the
        // recipient understands, so from here on `critical` plays no part.
        Ok(match known {
            PayloadType::Sa => Payload::Sa(SaPayload::parse(body)?),
            PayloadType::Ke => Payload::Ke(KePayload::parse(body)?),
            PayloadType::IdI => Payload::IdI(IdPayload::parse(body)?),
            PayloadType::IdR => Payload::IdR(IdPayload::parse(body)?),
            PayloadType::Cert => Payload::Cert(CertPayload::parse(body)?),
            PayloadType::CertReq => Payload::CertReq(CertReqPayload::parse(body)?),
            PayloadType::Auth => Payload::Auth(AuthPayload::parse(body)?),
            PayloadType::Nonce => Payload::Nonce(parse_nonce(body)?),
            PayloadType::Notify => Payload::Notify(NotifyPayload::parse(body)?),
            PayloadType::Delete => Payload::Delete(DeletePayload::parse(body)?),
            PayloadType::Vendor => Payload::Vendor(body.to_vec()),
            PayloadType::TsI => Payload::TsI(TsPayload::parse(body)?),
            PayloadType::TsR => Payload::TsR(TsPayload::parse(body)?),
            PayloadType::Cp | PayloadType::Eap => Payload::Unknown {
                payload_type,
                critical,
                body: body.to_vec(),
            },
            PayloadType::Sk | PayloadType::Skf => return Err(WireError::NestedEncrypted),
            // Type 0 never reaches here: it ends the chain.
            PayloadType::None => {
                return Err(WireError::Malformed {
                    what: "payload type 0",
                })
            }
        })
    }

    /// Length of the body, without the generic header.
    pub fn body_len(&self) -> usize {
        match self {
            Payload::Sa(p) => p.buffer_len(),
            Payload::Ke(p) => p.buffer_len(),
            Payload::IdI(p) | Payload::IdR(p) => p.buffer_len(),
            Payload::Cert(p) => p.buffer_len(),
            Payload::CertReq(p) => p.buffer_len(),
            Payload::Auth(p) => p.buffer_len(),
            Payload::Nonce(data) | Payload::Vendor(data) => data.len(),
            Payload::Notify(p) => p.buffer_len(),
            Payload::Delete(p) => p.buffer_len(),
            Payload::TsI(p) | Payload::TsR(p) => p.buffer_len(),
            Payload::Unknown { body, .. } => body.len(),
        }
    }

    /// Length on the wire, generic header included.
    pub fn buffer_len(&self) -> usize {
        GENERIC_HEADER_LEN + self.body_len()
    }

    /// Appends the generic header (with `next` as Next Payload) and the body.
    ///
    /// # Panics
    /// If the payload is longer than the 16-bit Payload Length allows.
    pub fn emit(&self, next: u8, out: &mut Vec<u8>) {
        let length = emit_len_u16(self.buffer_len(), "payload length");
        let flags = match self {
            Payload::Unknown { critical: true, .. } => CRITICAL,
            // RFC 7296 3.2: the critical bit MUST be zero for the payload
            // types RFC 7296 defines.
            _ => 0,
        };
        let start = out.len();
        out.extend_from_slice(&[next, flags]);
        out.extend_from_slice(&length.to_be_bytes());
        match self {
            Payload::Sa(p) => p.emit(out),
            Payload::Ke(p) => p.emit(out),
            Payload::IdI(p) | Payload::IdR(p) => p.emit(out),
            Payload::Cert(p) => p.emit(out),
            Payload::CertReq(p) => p.emit(out),
            Payload::Auth(p) => p.emit(out),
            Payload::Nonce(data) | Payload::Vendor(data) => out.extend_from_slice(data),
            Payload::Notify(p) => p.emit(out),
            Payload::Delete(p) => p.emit(out),
            Payload::TsI(p) | Payload::TsR(p) => p.emit(out),
            Payload::Unknown { body, .. } => out.extend_from_slice(body),
        }
        debug_assert_eq!(out.len() - start, usize::from(length));
    }

    /// strongSwan's name for the payload in a message summary ("No",
    /// "N(NATD_S_IP)", "TSi").
    pub fn summary_name(&self) -> String {
        let mut s = String::new();
        self.write_summary_name(&mut s)
            .expect("writing to a String");
        s
    }

    fn write_summary_name(&self, f: &mut impl fmt::Write) -> fmt::Result {
        let name = match self {
            Payload::Sa(_) => "SA",
            Payload::Ke(_) => "KE",
            Payload::IdI(_) => "IDi",
            Payload::IdR(_) => "IDr",
            Payload::Cert(_) => "CERT",
            Payload::CertReq(_) => "CERTREQ",
            Payload::Auth(_) => "AUTH",
            Payload::Nonce(_) => "No",
            Payload::Notify(n) => {
                return match notify::short_name(n.notify_type) {
                    Some(short) => write!(f, "N({short})"),
                    None => write!(f, "N({})", n.notify_type),
                }
            }
            Payload::Delete(_) => "D",
            Payload::Vendor(_) => "V",
            Payload::TsI(_) => "TSi",
            Payload::TsR(_) => "TSr",
            Payload::Unknown { payload_type, .. } => {
                return match PayloadType::from_u8(*payload_type) {
                    Some(PayloadType::Cp) => f.write_str("CP"),
                    Some(PayloadType::Eap) => f.write_str("EAP"),
                    _ => write!(f, "UNKNOWN({payload_type})"),
                }
            }
        };
        f.write_str(name)
    }
}

/// The list of payload names strongSwan prints between brackets, e.g.
/// `"[ IDi N(INIT_CONTACT) AUTH SA TSi TSr ]"`; useful for the decrypted
/// contents of an SK payload.
pub fn summarize_payloads(payloads: &[Payload]) -> String {
    let mut s = String::from("[");
    for payload in payloads {
        s.push(' ');
        payload
            .write_summary_name(&mut s)
            .expect("writing to a String");
    }
    s.push_str(" ]");
    s
}

/// Where a walk found an SK or SKF payload.
pub(crate) struct EncryptedAt {
    pub(crate) payload_type: u8,
    /// The SK payload's Next Payload: type of the first inner payload.
    pub(crate) first_inner: u8,
    /// Offset of the SK payload's body within the walked bytes.
    pub(crate) body_offset: usize,
}

/// Walks a chain starting with type `first`. With `allow_encrypted`, an SK
/// or SKF payload ends the walk and must reach the end of `bytes`; without
/// it, one is an error (an SK inside an SK).
pub(crate) fn walk(
    first: u8,
    bytes: &[u8],
    allow_encrypted: bool,
) -> Result<(Vec<Payload>, Option<EncryptedAt>), WireError> {
    let mut r = Reader::new(bytes);
    let mut payloads = Vec::new();
    let mut payload_type = first;
    while payload_type != PayloadType::None as u8 {
        if payloads.len() == MAX_PAYLOADS {
            return Err(WireError::TooMany { what: "payloads" });
        }
        if r.is_empty() {
            // The previous Next Payload announced a payload that is not there.
            return Err(WireError::Truncated {
                what: "payload chain",
            });
        }
        let header_offset = bytes.len() - r.left();
        let next = r.u8("generic payload header")?;
        let critical = r.u8("generic payload header")? & CRITICAL != 0;
        let length = usize::from(r.u16("generic payload header")?);
        // RFC 7296 3.2: Payload Length includes the generic header.
        if length < GENERIC_HEADER_LEN {
            return Err(WireError::PayloadLengthTooShort { payload_type });
        }
        if length - GENERIC_HEADER_LEN > r.left() {
            return Err(WireError::PayloadLengthPastEnd { payload_type });
        }
        let body = r.take(length - GENERIC_HEADER_LEN, "payload body")?;
        if payload_type == PayloadType::Sk as u8 || payload_type == PayloadType::Skf as u8 {
            if !allow_encrypted {
                return Err(WireError::NestedEncrypted);
            }
            // RFC 7296 3.14 and RFC 7383 2.5: the Encrypted (Fragment) payload,
            // if present, MUST be the last payload in the message.
            if !r.is_empty() {
                return Err(WireError::SkNotLast);
            }
            let encrypted = EncryptedAt {
                payload_type,
                first_inner: next,
                body_offset: header_offset + GENERIC_HEADER_LEN,
            };
            return Ok((payloads, Some(encrypted)));
        }
        payloads.push(Payload::parse_body(payload_type, critical, body)?);
        payload_type = next;
    }
    r.finish("last payload")?;
    Ok((payloads, None))
}

/// Parses the decrypted inner payload chain of an SK payload (padding and
/// Pad Length already removed), starting with type `first` (the SK's Next
/// Payload). Also usable for any plaintext chain.
pub fn parse_payloads(first: u8, bytes: &[u8]) -> Result<Vec<Payload>, WireError> {
    walk(first, bytes, false).map(|(payloads, _)| payloads)
}

/// Appends a payload chain (no IKE header), each Next Payload naming the
/// following payload and the last one 0. Returns the type of the first
/// payload (0 for an empty chain): the value of the preceding Next Payload
/// field, i.e. the IKE header's or the SK payload's.
pub fn emit_payloads(payloads: &[Payload], out: &mut Vec<u8>) -> u8 {
    for (i, payload) in payloads.iter().enumerate() {
        let next = payloads.get(i + 1).map_or(0, Payload::payload_type);
        payload.emit(next, out);
    }
    payloads.first().map_or(0, Payload::payload_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_type_numbers_round_trip() {
        for n in 0..=255u8 {
            if let Some(t) = PayloadType::from_u8(n) {
                assert_eq!(t.as_u8(), n);
            }
        }
        assert_eq!(PayloadType::from_u8(53), Some(PayloadType::Skf));
        assert_eq!(PayloadType::from_u8(49), None);
    }

    #[test]
    fn emits_next_payload_chain_and_returns_first_type() {
        let payloads = vec![
            Payload::Vendor(vec![1, 2]),
            Payload::Notify(NotifyPayload::new(notify::INITIAL_CONTACT, vec![])),
        ];
        let mut out = Vec::new();
        assert_eq!(emit_payloads(&payloads, &mut out), 43);
        assert_eq!(out, [41, 0, 0, 6, 1, 2, 0, 0, 0, 8, 0, 0, 0x40, 0x00]);
        assert_eq!(parse_payloads(43, &out), Ok(payloads));
    }

    #[test]
    fn ignores_critical_bit_on_known_payload_types() {
        let bytes = [0, 0x80, 0, 6, 1, 2];
        assert_eq!(
            parse_payloads(43, &bytes),
            Ok(vec![Payload::Vendor(vec![1, 2])])
        );
    }

    #[test]
    fn keeps_cp_payload_as_unknown_whatever_its_critical_bit() {
        let bytes = [0, 0x80, 0, 8, 1, 0, 0, 0];
        let parsed = parse_payloads(47, &bytes).unwrap();
        assert_eq!(
            parsed,
            vec![Payload::Unknown {
                payload_type: 47,
                critical: true,
                body: vec![1, 0, 0, 0]
            }]
        );
        let mut out = Vec::new();
        emit_payloads(&parsed, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn rejects_sk_inside_a_decrypted_chain() {
        assert_eq!(
            parse_payloads(46, &[0, 0, 0, 4]),
            Err(WireError::NestedEncrypted)
        );
    }

    #[test]
    fn refuses_chains_longer_than_max_payloads() {
        let mut bytes = Vec::new();
        for _ in 0..=MAX_PAYLOADS {
            bytes.extend_from_slice(&[43, 0, 0, 4]);
        }
        assert_eq!(
            parse_payloads(43, &bytes),
            Err(WireError::TooMany { what: "payloads" })
        );
    }

    #[test]
    fn summarizes_payloads_like_strongswan() {
        let payloads = vec![
            Payload::Nonce(vec![0; 16]),
            Payload::Notify(NotifyPayload::new(notify::NAT_DETECTION_SOURCE_IP, vec![])),
            Payload::Notify(NotifyPayload::new(40000, vec![])),
            Payload::Unknown {
                payload_type: 99,
                critical: false,
                body: vec![],
            },
        ];
        assert_eq!(
            summarize_payloads(&payloads),
            "[ No N(NATD_S_IP) N(40000) UNKNOWN(99) ]"
        );
    }
}
