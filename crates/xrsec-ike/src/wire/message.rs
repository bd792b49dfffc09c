//! Whole datagrams: the header, the plaintext payload chain, and where the SK
//! or SKF payload sits so the caller can authenticate and open it.
//!
//! Encryption is the caller's: this module only says which bytes are the
//! associated data (`&datagram[..aad_len]`: IKE header, plaintext payloads,
//! the SK generic header and, for SKF, Fragment Number and Total Fragments)
//! and which are sealed (`&datagram[aad_len..]`: IV, ciphertext, ICV); and on
//! the way out, it writes that associated data with the final lengths before
//! the sealer runs.

use core::fmt;

use super::chain::{emit_payloads, summarize_payloads, walk, PayloadType, GENERIC_HEADER_LEN};
use super::header::{ExchangeType, Header, HEADER_LEN};
use super::reader::Reader;
use super::{Payload, WireError};

/// The major version this implementation speaks (RFC 7296 3.1).
pub const IKE_MAJOR_VERSION: u8 = 2;
/// Fragment Number and Total Fragments of an SKF payload (RFC 7383 2.5).
const FRAGMENT_FIELDS_LEN: usize = 4;

/// A parsed datagram (after the caller stripped any non-ESP marker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    /// The payloads before the SK payload, or all of them when there is none.
    pub payloads: Vec<Payload>,
    pub encrypted: Option<Encrypted>,
}

/// The SK (or SKF) payload, always the last one (RFC 7296 3.14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encrypted {
    /// The SK payload's Next Payload: type of the first inner payload (for
    /// SKF, only meaningful in fragment 1; RFC 7383 2.5 sets it to 0 in the
    /// others).
    pub first_inner: u8,
    /// Offset in the datagram of the sealed part (IV | ciphertext | ICV): the
    /// IKE header, the plaintext payloads and the 4-byte SK generic header,
    /// plus the 4 bytes of Fragment Number and Total Fragments for SKF.
    pub aad_len: usize,
    /// Present for SKF.
    pub fragment: Option<FragmentInfo>,
}

impl Encrypted {
    /// The associated data: `&datagram[..aad_len]` (empty if `datagram` is
    /// not the one this was parsed from and is too short).
    pub fn aad<'a>(&self, datagram: &'a [u8]) -> &'a [u8] {
        datagram.get(..self.aad_len).unwrap_or(&[])
    }

    /// IV | ciphertext | ICV: `&datagram[aad_len..]`.
    pub fn sealed<'a>(&self, datagram: &'a [u8]) -> &'a [u8] {
        datagram.get(self.aad_len..).unwrap_or(&[])
    }
}

/// Fragment Number and Total Fragments of an SKF payload (RFC 7383 2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    /// 1-based.
    pub number: u16,
    pub total: u16,
}

impl Message {
    /// Parses a datagram: checks the version and the length, walks the
    /// payload chain, and locates a trailing SK or SKF payload.
    pub fn parse(datagram: &[u8]) -> Result<Message, WireError> {
        let header = Header::parse(datagram)?;
        // RFC 7296 3.1: messages with a major version other than 2 are not
        // processed; the caller answers INVALID_MAJOR_VERSION when it is
        // greater (see WireError::notify_type).
        if header.major != IKE_MAJOR_VERSION {
            return Err(WireError::UnsupportedVersion {
                major: header.major,
            });
        }
        // RFC 7296 3.1: Length is that of the total message (header + payloads).
        if usize::try_from(header.length).ok() != Some(datagram.len()) {
            return Err(WireError::HeaderLengthMismatch {
                header: header.length,
                datagram: datagram.len(),
            });
        }
        let body = &datagram[HEADER_LEN..];
        let (payloads, at) = walk(header.next_payload, body, true)?;
        let encrypted = match at {
            None => None,
            Some(at) => {
                let mut aad_len = HEADER_LEN + at.body_offset;
                let fragment = if at.payload_type == PayloadType::Skf as u8 {
                    let mut r = Reader::new(&datagram[aad_len..]);
                    let number = r.u16("SKF Fragment Number")?;
                    let total = r.u16("SKF Total Fragments")?;
                    // RFC 7383 2.5: fragments are numbered from 1 up to Total
                    // Fragments.
                    if number == 0 || number > total {
                        return Err(WireError::Malformed {
                            what: "SKF Fragment Number",
                        });
                    }
                    aad_len += FRAGMENT_FIELDS_LEN;
                    Some(FragmentInfo { number, total })
                } else {
                    None
                };
                Some(Encrypted {
                    first_inner: at.first_inner,
                    aad_len,
                    fragment,
                })
            }
        };
        Ok(Message {
            header,
            payloads,
            encrypted,
        })
    }

    /// Emits an unencrypted message (IKE_SA_INIT, or an answer outside any
    /// IKE SA): the header's Next Payload and Length are set from `payloads`.
    pub fn emit_plain(header: &Header, payloads: &[Payload]) -> Vec<u8> {
        let len = HEADER_LEN + payloads.iter().map(Payload::buffer_len).sum::<usize>();
        let mut out = vec![0u8; HEADER_LEN];
        out.reserve(len - HEADER_LEN);
        let first = emit_payloads(payloads, &mut out);
        let header = Header {
            next_payload: first,
            length: total_length(out.len()),
            ..*header
        };
        header.emit(&mut out[..HEADER_LEN]);
        out
    }

    /// One line for debug logs, as strongSwan prints it:
    /// `IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) ]`, with
    /// `SK` or `EF(1/3)` for an encrypted payload.
    pub fn summary(&self) -> String {
        let mut s = summarize(&self.header, &self.payloads);
        if let Some(encrypted) = &self.encrypted {
            s.truncate(s.len() - 1); // the closing ']'
            match encrypted.fragment {
                None => s.push_str("SK ]"),
                Some(FragmentInfo { number, total }) => {
                    s.push_str(&format!("EF({number}/{total}) ]"));
                }
            }
        }
        s
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// A summary line for a header and a payload list, e.g. the decrypted
/// contents of an SK payload: `IKE_AUTH response 1 [ IDr AUTH SA TSi TSr ]`.
pub fn summarize(header: &Header, payloads: &[Payload]) -> String {
    let exchange = match header.exchange {
        ExchangeType::Other(n) => format!("EXCHANGE({n})"),
        known => known.name().to_owned(),
    };
    let direction = if header.flags.response {
        "response"
    } else {
        "request"
    };
    format!(
        "{exchange} {direction} {} {}",
        header.message_id,
        summarize_payloads(payloads)
    )
}

fn total_length(len: usize) -> u32 {
    u32::try_from(len).expect("an IKE message is shorter than 4 GiB")
}

/// The associated data of an encrypted message, with SK (46) as the only
/// payload: the header with Next Payload 46 and Length 28 + 4 + `sealed_len`,
/// then the SK generic header with Next Payload `first_inner` and Length
/// 4 + `sealed_len`. The caller appends `IV | ciphertext | ICV` (`sealed_len`
/// bytes) from its sealer.
pub fn emit_encrypted_prefix(header: &Header, first_inner: u8, sealed_len: usize) -> Vec<u8> {
    emit_encrypted_prefix_with(header, &[], first_inner, None, sealed_len)
}

/// The associated data of one fragment (RFC 7383 2.5): header with Next
/// Payload 53, the SKF generic header, Fragment Number and Total Fragments
/// (the AAD covers them, RFC 7383 2.5.3). `first_inner` is written only in
/// fragment 1; the others carry 0 as RFC 7383 2.5 requires.
pub fn emit_fragment_prefix(
    header: &Header,
    first_inner: u8,
    info: FragmentInfo,
    sealed_len: usize,
) -> Vec<u8> {
    emit_encrypted_prefix_with(header, &[], first_inner, Some(info), sealed_len)
}

/// The general form of [`emit_encrypted_prefix`] and [`emit_fragment_prefix`]:
/// plaintext payloads may precede the SK or SKF payload (none of the RFC 7296
/// exchanges does this, but a parsed message may have them).
///
/// # Panics
/// If a plaintext payload or the SK payload is longer than a 16-bit Payload
/// Length allows.
pub fn emit_encrypted_prefix_with(
    header: &Header,
    plaintext: &[Payload],
    first_inner: u8,
    fragment: Option<FragmentInfo>,
    sealed_len: usize,
) -> Vec<u8> {
    let (sk_type, extra, first_inner) = match fragment {
        None => (PayloadType::Sk as u8, 0, first_inner),
        Some(info) => {
            let first_inner = if info.number == 1 { first_inner } else { 0 };
            (PayloadType::Skf as u8, FRAGMENT_FIELDS_LEN, first_inner)
        }
    };
    let sk_len = GENERIC_HEADER_LEN + extra + sealed_len;
    let sk_len16 = super::reader::emit_len_u16(sk_len, "SK payload length");
    let mut out = vec![0u8; HEADER_LEN];
    emit_payloads(plaintext, &mut out);
    // The last plaintext payload's Next Payload names the SK payload.
    let first = match plaintext.last() {
        None => sk_type,
        Some(last) => {
            let last_start = out.len() - last.buffer_len();
            out[last_start] = sk_type;
            plaintext[0].payload_type()
        }
    };
    out.extend_from_slice(&[first_inner, 0]);
    out.extend_from_slice(&sk_len16.to_be_bytes());
    if let Some(info) = fragment {
        out.extend_from_slice(&info.number.to_be_bytes());
        out.extend_from_slice(&info.total.to_be_bytes());
    }
    let header = Header {
        next_payload: first,
        length: total_length(out.len() + sealed_len),
        ..*header
    };
    header.emit(&mut out[..HEADER_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Flags, NotifyPayload};

    fn header() -> Header {
        Header {
            spi_i: 0x1111_2222_3333_4444,
            spi_r: 0x5555_6666_7777_8888,
            next_payload: 0,
            major: 2,
            minor: 0,
            exchange: ExchangeType::IkeAuth,
            flags: Flags {
                initiator: true,
                ..Flags::default()
            },
            message_id: 1,
            length: 0,
        }
    }

    #[test]
    fn encrypted_prefix_is_the_aad_of_the_finished_message() {
        let prefix = emit_encrypted_prefix(&header(), 35, 48);
        assert_eq!(prefix.len(), 32);
        assert_eq!(prefix[16], 46, "header Next Payload is SK");
        assert_eq!(&prefix[24..28], &80u32.to_be_bytes());
        assert_eq!(&prefix[28..32], &[35, 0, 0, 52]);
        let mut datagram = prefix.clone();
        datagram.extend_from_slice(&[0xee; 48]);
        let message = Message::parse(&datagram).unwrap();
        let encrypted = message.encrypted.unwrap();
        assert_eq!(
            encrypted,
            Encrypted {
                first_inner: 35,
                aad_len: 32,
                fragment: None
            }
        );
        assert_eq!(encrypted.aad(&datagram), &prefix[..]);
        assert_eq!(encrypted.sealed(&datagram), &[0xee; 48]);
        assert_eq!(message.summary(), "IKE_AUTH request 1 [ SK ]");
    }

    #[test]
    fn fragment_prefix_covers_fragment_number_and_total() {
        let info = FragmentInfo {
            number: 2,
            total: 3,
        };
        let prefix = emit_fragment_prefix(&header(), 35, info, 20);
        assert_eq!(prefix.len(), 36);
        assert_eq!(prefix[16], 53);
        assert_eq!(
            &prefix[28..36],
            &[0, 0, 0, 28, 0, 2, 0, 3],
            "Next Payload 0 after fragment 1"
        );
        let mut datagram = prefix;
        datagram.extend_from_slice(&[0; 20]);
        let message = Message::parse(&datagram).unwrap();
        assert_eq!(
            message.encrypted,
            Some(Encrypted {
                first_inner: 0,
                aad_len: 36,
                fragment: Some(info)
            })
        );
        assert_eq!(message.summary(), "IKE_AUTH request 1 [ EF(2/3) ]");
    }

    #[test]
    fn rejects_fragment_number_zero_or_above_total() {
        for (number, total) in [(0, 1), (3, 2)] {
            let mut datagram =
                emit_fragment_prefix(&header(), 35, FragmentInfo { number, total }, 4);
            datagram.extend_from_slice(&[0; 4]);
            assert_eq!(
                Message::parse(&datagram),
                Err(WireError::Malformed {
                    what: "SKF Fragment Number"
                })
            );
        }
    }

    #[test]
    fn plaintext_payloads_may_precede_the_sk_payload() {
        let plain = [Payload::Notify(NotifyPayload::new(16390, vec![7; 8]))];
        let mut datagram = emit_encrypted_prefix_with(&header(), &plain, 41, None, 16);
        datagram.extend_from_slice(&[1; 16]);
        let message = Message::parse(&datagram).unwrap();
        assert_eq!(message.payloads, plain);
        assert_eq!(message.header.next_payload, 41);
        assert_eq!(message.encrypted.unwrap().aad_len, 28 + 16 + 4);
        assert_eq!(message.summary(), "IKE_AUTH request 1 [ N(COOKIE) SK ]");
    }
}
