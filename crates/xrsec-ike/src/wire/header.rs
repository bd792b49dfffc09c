//! The 28-byte IKE header (RFC 7296 3.1): a view over a buffer and the owned
//! [`Header`].
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |                       IKE SA Initiator's SPI                  |
//! |                       IKE SA Responder's SPI                  |
//! |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//! |                          Message ID                           |
//! |                            Length                             |
//! ```

use core::ops::Range;

use super::WireError;

/// Size of the IKE header.
pub const HEADER_LEN: usize = 28;

type Field = Range<usize>;

mod field {
    use super::Field;
    pub const SPI_I: Field = 0..8;
    pub const SPI_R: Field = 8..16;
    pub const NEXT_PAYLOAD: usize = 16;
    pub const VERSION: usize = 17;
    pub const EXCHANGE: usize = 18;
    pub const FLAGS: usize = 19;
    pub const MESSAGE_ID: Field = 20..24;
    pub const LENGTH: Field = 24..28;
}

const FLAG_INITIATOR: u8 = 0x08;
const FLAG_VERSION: u8 = 0x10;
const FLAG_RESPONSE: u8 = 0x20;

/// The exchange a message belongs to (RFC 7296 3.1, IANA "IKEv2 Exchange Types").
///
/// `Other` holds only values without a name here: `ExchangeType::from(34)` is
/// `IkeSaInit`, never `Other(34)`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeType {
    IkeSaInit,
    IkeAuth,
    CreateChildSa,
    Informational,
    Other(u8),
}

impl From<u8> for ExchangeType {
    fn from(value: u8) -> Self {
        match value {
            34 => ExchangeType::IkeSaInit,
            35 => ExchangeType::IkeAuth,
            36 => ExchangeType::CreateChildSa,
            37 => ExchangeType::Informational,
            other => ExchangeType::Other(other),
        }
    }
}

impl From<ExchangeType> for u8 {
    fn from(value: ExchangeType) -> u8 {
        match value {
            ExchangeType::IkeSaInit => 34,
            ExchangeType::IkeAuth => 35,
            ExchangeType::CreateChildSa => 36,
            ExchangeType::Informational => 37,
            ExchangeType::Other(other) => other,
        }
    }
}

impl ExchangeType {
    /// The name strongSwan and the RFC use ("IKE_SA_INIT"), or "UNKNOWN".
    pub fn name(self) -> &'static str {
        match self {
            ExchangeType::IkeSaInit => "IKE_SA_INIT",
            ExchangeType::IkeAuth => "IKE_AUTH",
            ExchangeType::CreateChildSa => "CREATE_CHILD_SA",
            ExchangeType::Informational => "INFORMATIONAL",
            ExchangeType::Other(_) => "UNKNOWN",
        }
    }
}

/// The three header flags RFC 7296 3.1 defines. The other five bits are
/// reserved: cleared when sent and ignored on receipt, so they do not survive
/// a parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags {
    /// I (0x08): set by the original initiator of the IKE SA.
    pub initiator: bool,
    /// V (0x10): "can speak a higher major version"; never set by IKEv2 senders.
    pub version: bool,
    /// R (0x20): this message is a response.
    pub response: bool,
}

impl Flags {
    pub fn from_byte(byte: u8) -> Flags {
        Flags {
            initiator: byte & FLAG_INITIATOR != 0,
            version: byte & FLAG_VERSION != 0,
            response: byte & FLAG_RESPONSE != 0,
        }
    }

    pub fn to_byte(self) -> u8 {
        let mut byte = 0;
        if self.initiator {
            byte |= FLAG_INITIATOR;
        }
        if self.version {
            byte |= FLAG_VERSION;
        }
        if self.response {
            byte |= FLAG_RESPONSE;
        }
        byte
    }
}

/// A read-only view of an IKE header at the start of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct HeaderView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HeaderView<T> {
    /// Checks that the buffer holds the 28 header bytes; after that no
    /// accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated { what: "IKE header" });
        }
        Ok(HeaderView { buffer })
    }

    fn bytes(&self) -> &[u8; HEADER_LEN] {
        self.buffer.as_ref()[..HEADER_LEN]
            .try_into()
            .expect("new_checked guarantees the header length")
    }

    pub fn spi_i(&self) -> u64 {
        u64::from_be_bytes(self.bytes()[field::SPI_I].try_into().expect("8-byte field"))
    }

    pub fn spi_r(&self) -> u64 {
        u64::from_be_bytes(self.bytes()[field::SPI_R].try_into().expect("8-byte field"))
    }

    pub fn next_payload(&self) -> u8 {
        self.bytes()[field::NEXT_PAYLOAD]
    }

    pub fn major(&self) -> u8 {
        self.bytes()[field::VERSION] >> 4
    }

    pub fn minor(&self) -> u8 {
        self.bytes()[field::VERSION] & 0x0f
    }

    pub fn exchange(&self) -> ExchangeType {
        ExchangeType::from(self.bytes()[field::EXCHANGE])
    }

    pub fn flags(&self) -> Flags {
        Flags::from_byte(self.bytes()[field::FLAGS])
    }

    pub fn message_id(&self) -> u32 {
        u32::from_be_bytes(
            self.bytes()[field::MESSAGE_ID]
                .try_into()
                .expect("4-byte field"),
        )
    }

    pub fn length(&self) -> u32 {
        u32::from_be_bytes(
            self.bytes()[field::LENGTH]
                .try_into()
                .expect("4-byte field"),
        )
    }
}

/// The IKE header, owned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub spi_i: u64,
    pub spi_r: u64,
    /// Type of the first payload.
    pub next_payload: u8,
    pub major: u8,
    pub minor: u8,
    pub exchange: ExchangeType,
    pub flags: Flags,
    pub message_id: u32,
    /// Length of the whole message, header included.
    pub length: u32,
}

impl Header {
    /// Reads the first 28 bytes. Checks only that they are there: the version
    /// and the length are the caller's to judge, so that a message with a
    /// future major version can still be answered with INVALID_MAJOR_VERSION
    /// using its SPIs and Message ID. [`super::Message::parse`] checks both.
    pub fn parse(bytes: &[u8]) -> Result<Header, WireError> {
        let view = HeaderView::new_checked(bytes)?;
        Ok(Header {
            spi_i: view.spi_i(),
            spi_r: view.spi_r(),
            next_payload: view.next_payload(),
            major: view.major(),
            minor: view.minor(),
            exchange: view.exchange(),
            flags: view.flags(),
            message_id: view.message_id(),
            length: view.length(),
        })
    }

    /// Writes the header into the first 28 bytes of `out`, fields as they are
    /// (the version nibbles keep their low four bits).
    ///
    /// # Panics
    /// If `out` is shorter than [`HEADER_LEN`].
    pub fn emit(&self, out: &mut [u8]) {
        assert!(
            out.len() >= HEADER_LEN,
            "IKE header needs {HEADER_LEN} bytes"
        );
        out[field::SPI_I].copy_from_slice(&self.spi_i.to_be_bytes());
        out[field::SPI_R].copy_from_slice(&self.spi_r.to_be_bytes());
        out[field::NEXT_PAYLOAD] = self.next_payload;
        out[field::VERSION] = (self.major << 4) | (self.minor & 0x0f);
        out[field::EXCHANGE] = u8::from(self.exchange);
        // RFC 7296 3.1: reserved flag bits MUST be cleared when sending.
        out[field::FLAGS] = self.flags.to_byte();
        out[field::MESSAGE_ID].copy_from_slice(&self.message_id.to_be_bytes());
        out[field::LENGTH].copy_from_slice(&self.length.to_be_bytes());
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static HEADER_BYTES: [u8; 28] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // SPIi
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // SPIr
        0x21, 0x20, 0x22, 0x08, // SA, 2.0, IKE_SA_INIT, I
        0x00, 0x00, 0x00, 0x00, // Message ID
        0x00, 0x00, 0x01, 0x2c, // Length 300
    ];

    fn header_repr() -> Header {
        Header {
            spi_i: 0x0102_0304_0506_0708,
            spi_r: 0,
            next_payload: 33,
            major: 2,
            minor: 0,
            exchange: ExchangeType::IkeSaInit,
            flags: Flags {
                initiator: true,
                version: false,
                response: false,
            },
            message_id: 0,
            length: 300,
        }
    }

    #[test]
    fn test_parse() {
        assert_eq!(Header::parse(&HEADER_BYTES), Ok(header_repr()));
    }

    #[test]
    fn test_emit() {
        let mut out = [0xffu8; 28];
        header_repr().emit(&mut out);
        assert_eq!(out, HEADER_BYTES);
    }

    #[test]
    fn rejects_header_shorter_than_28_bytes() {
        assert_eq!(
            Header::parse(&HEADER_BYTES[..27]),
            Err(WireError::Truncated { what: "IKE header" })
        );
    }

    #[test]
    fn ignores_reserved_flag_bits_on_receipt() {
        let mut bytes = HEADER_BYTES;
        bytes[19] = 0xff;
        let flags = Header::parse(&bytes).unwrap().flags;
        assert_eq!(
            flags,
            Flags {
                initiator: true,
                version: true,
                response: true
            }
        );
        assert_eq!(flags.to_byte(), 0x38);
    }

    #[test]
    fn exchange_type_numbers_round_trip() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(ExchangeType::from(n)), n);
        }
        assert_eq!(ExchangeType::from(37), ExchangeType::Informational);
    }
}
