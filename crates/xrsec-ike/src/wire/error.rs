//! Why a datagram or payload chain was refused, and which Notify type answers it.

use core::fmt;

use super::notify;

/// A parse failure. Each peer violation has its own variant so that a log line
/// or a counter can say exactly what was wrong; [`WireError::notify_type`] maps
/// them onto the three Notify types RFC 7296 offers for malformed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The input ends inside a fixed-size field.
    Truncated { what: &'static str },
    /// A length field of a substructure (proposal, transform, attribute,
    /// selector) is smaller than its fixed part or points past its container.
    BadLength { what: &'static str },
    /// The IKE header's major version is not 2 (RFC 7296 3.1). Ignore it when
    /// `major < 2`; answer INVALID_MAJOR_VERSION when it is greater.
    UnsupportedVersion { major: u8 },
    /// A payload of a type this module does not know has its critical bit
    /// set (RFC 7296 2.5). The answer is UNSUPPORTED_CRITICAL_PAYLOAD with this
    /// type as the one byte of notification data.
    UnsupportedCriticalPayload { payload_type: u8 },
    /// An SK or SKF payload does not reach the end of the message (RFC 7296 3.14).
    SkNotLast,
    /// A traffic selector's length does not match its type (RFC 7296 3.13.1).
    InvalidSelector,
    /// More items than this implementation accepts in one chain.
    TooMany { what: &'static str },
    /// A field holds a value the RFC forbids.
    Malformed { what: &'static str },
    /// The IKE header's Length field differs from the datagram's size
    /// (RFC 7296 3.1: it is the length of the total message).
    HeaderLengthMismatch { header: u32, datagram: usize },
    /// A generic payload header's Payload Length is below 4, the size of the
    /// generic header itself (RFC 7296 3.2).
    PayloadLengthTooShort { payload_type: u8 },
    /// A generic payload header's Payload Length points past the end of the
    /// message (or of the decrypted chain).
    PayloadLengthPastEnd { payload_type: u8 },
    /// The chain ended (Next Payload 0) but bytes follow the last payload.
    TrailingBytes { what: &'static str },
    /// An SK or SKF payload inside a decrypted payload chain.
    NestedEncrypted,
}

impl WireError {
    /// The Notify type to answer with, if the exchange allows an answer.
    pub fn notify_type(&self) -> u16 {
        match self {
            WireError::UnsupportedVersion { .. } => notify::INVALID_MAJOR_VERSION,
            WireError::UnsupportedCriticalPayload { .. } => notify::UNSUPPORTED_CRITICAL_PAYLOAD,
            _ => notify::INVALID_SYNTAX,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { what } => write!(f, "truncated {what}"),
            WireError::BadLength { what } => write!(f, "bad {what}"),
            WireError::UnsupportedVersion { major } => {
                write!(f, "unsupported IKE major version {major}")
            }
            WireError::UnsupportedCriticalPayload { payload_type } => {
                write!(f, "unsupported critical payload type {payload_type}")
            }
            WireError::SkNotLast => f.write_str("encrypted payload is not the last payload"),
            WireError::InvalidSelector => {
                f.write_str("traffic selector length does not match its type")
            }
            WireError::TooMany { what } => write!(f, "too many {what}"),
            WireError::Malformed { what } => write!(f, "malformed {what}"),
            WireError::HeaderLengthMismatch { header, datagram } => write!(
                f,
                "IKE header length {header} differs from the datagram size {datagram}"
            ),
            WireError::PayloadLengthTooShort { payload_type } => write!(
                f,
                "payload type {payload_type} has a length below the 4-byte generic header"
            ),
            WireError::PayloadLengthPastEnd { payload_type } => write!(
                f,
                "payload type {payload_type} has a length past the end of the message"
            ),
            WireError::TrailingBytes { what } => write!(f, "bytes after the {what}"),
            WireError::NestedEncrypted => {
                f.write_str("encrypted payload inside an encrypted payload")
            }
        }
    }
}

impl std::error::Error for WireError {}
