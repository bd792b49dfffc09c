//! The IKEv2 wire format (RFC 7296, with the SKF payload of RFC 7383): every
//! message and payload a two-host deployment meets, parsed from and emitted
//! to bytes.
//!
//! Parsing goes from received bytes to owned representations ([`Message`],
//! [`Payload`] and the payload structs); emitting goes back, byte-exact for
//! canonical input (reserved fields zero, only the attributes and selector
//! types kept here). Every length and count from the network is checked
//! against the bytes that remain before it is used, so no input makes the
//! parser panic or loop, and allocation stays proportional to the input.
//!
//! Encryption is not done here: [`Message::parse`] reports where the SK or
//! SKF payload's associated data ends ([`Encrypted::aad_len`]), the caller
//! opens the rest and hands the plaintext to [`parse_payloads`]; on the way
//! out, [`emit_encrypted_prefix`] writes the associated data with final
//! lengths, and the caller appends what its sealer produces.

mod chain;
mod error;
mod header;
mod message;
pub mod notify;
mod payloads;
mod reader;
mod sa;
mod ts;

pub use chain::{
    emit_payloads, parse_payloads, summarize_payloads, Payload, PayloadType, GENERIC_HEADER_LEN,
    MAX_PAYLOADS,
};
pub use error::WireError;
pub use header::{ExchangeType, Flags, Header, HeaderView, HEADER_LEN};
pub use message::{
    emit_encrypted_prefix, emit_encrypted_prefix_with, emit_fragment_prefix, summarize, Encrypted,
    FragmentInfo, Message, IKE_MAJOR_VERSION,
};
pub use payloads::{
    AuthPayload, CertPayload, CertReqPayload, DeletePayload, IdPayload, IdType, KePayload,
    NotifyPayload, NONCE_MAX_LEN, NONCE_MIN_LEN,
};
pub use sa::{Proposal, ProtocolId, SaPayload, Transform, TransformType};
pub use ts::{TrafficSelector, TsPayload};

/// RFC 3948 2.2: on UDP port 4500 an IKE message is preceded by four zero
/// bytes, where an ESP packet has its (non-zero) SPI.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// The IKE message inside a datagram received on port 4500, or `None` if the
/// datagram is not IKE (an ESP packet, or a one-byte NAT-keepalive).
pub fn strip_non_esp_marker(datagram: &[u8]) -> Option<&[u8]> {
    datagram.strip_prefix(&NON_ESP_MARKER[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_non_esp_marker_only_from_ike_datagrams() {
        assert_eq!(strip_non_esp_marker(&[0, 0, 0, 0, 9]), Some(&[9u8][..]));
        assert_eq!(strip_non_esp_marker(&[0, 0, 0, 1, 9]), None);
        assert_eq!(strip_non_esp_marker(&[0xff]), None);
    }
}
