//! The IKE wire parser must never panic, loop or over-allocate, whatever a
//! peer sends: every input ends in a parsed message or a `WireError`. The
//! input is read twice: as a whole datagram, and as a first payload type
//! byte followed by a decrypted inner payload chain. Whatever parses must
//! emit to bytes that parse back to the same representation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xrsec_ike::wire::{
    emit_encrypted_prefix_with, emit_payloads, parse_payloads, Encrypted, Header, Message,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::parse(data) {
        let _ = message.summary();
        let again = match message.encrypted {
            None => Message::emit_plain(&message.header, &message.payloads),
            Some(encrypted) => {
                let sealed = encrypted.sealed(data);
                let mut out = emit_encrypted_prefix_with(
                    &message.header,
                    &message.payloads,
                    encrypted.first_inner,
                    encrypted.fragment,
                    sealed.len(),
                );
                out.extend_from_slice(sealed);
                out
            }
        };
        let reparsed = Message::parse(&again)
            .unwrap_or_else(|e| panic!("emitted message does not parse: {e}\n{message:?}"));
        // Non-canonical input (reserved bits, unknown attributes or selector
        // types) may shrink, so only the length fields may differ; an SKF
        // fragment after the first always carries Next Payload 0.
        let header = Header {
            length: again.len() as u32,
            ..message.header
        };
        let encrypted = message.encrypted.map(|e| Encrypted {
            first_inner: match e.fragment {
                Some(f) if f.number != 1 => 0,
                _ => e.first_inner,
            },
            aad_len: again.len() - e.sealed(data).len(),
            fragment: e.fragment,
        });
        let expected = Message {
            header,
            payloads: message.payloads,
            encrypted,
        };
        assert_eq!(reparsed, expected, "round trip changed the message");
        // A second emission is a fixed point.
        if reparsed.encrypted.is_none() {
            assert_eq!(
                Message::emit_plain(&reparsed.header, &reparsed.payloads),
                again
            );
        }
    }

    if let Some((&first, chain)) = data.split_first() {
        if let Ok(payloads) = parse_payloads(first, chain) {
            let mut out = Vec::new();
            let emitted_first = emit_payloads(&payloads, &mut out);
            if !payloads.is_empty() {
                assert_eq!(emitted_first, first);
            }
            let reparsed = parse_payloads(emitted_first, &out)
                .unwrap_or_else(|e| panic!("emitted chain does not parse: {e}\n{payloads:?}"));
            assert_eq!(reparsed, payloads, "round trip changed the chain");
        }
    }
});
