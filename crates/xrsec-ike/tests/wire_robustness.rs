//! Hostile input: truncations, byte flips and lying length fields end in
//! `Ok` or `Err`, never in a panic, and each kind of violation gets its own
//! error.

#[path = "wire_samples.rs"]
mod samples;

use xrsec_ike::wire::{
    emit_encrypted_prefix, emit_encrypted_prefix_with, notify, parse_payloads, Message,
    NotifyPayload, Payload, PayloadType, WireError, HEADER_LEN,
};

/// When a parse succeeds, emitting it and parsing again gives the same
/// representation (the property the fuzz target checks too).
fn parse_and_check_round_trip(datagram: &[u8]) -> Result<Message, WireError> {
    let message = Message::parse(datagram)?;
    let again = match message.encrypted {
        None => Message::emit_plain(&message.header, &message.payloads),
        Some(encrypted) => {
            let sealed = encrypted.sealed(datagram);
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
    let reparsed = Message::parse(&again).expect("an emitted message parses");
    assert_eq!(reparsed.payloads, message.payloads);
    assert_eq!(reparsed.header.spi_i, message.header.spi_i);
    assert_eq!(reparsed.header.message_id, message.header.message_id);
    assert_eq!(reparsed.header.length as usize, again.len());
    Ok(message)
}

fn set_length(datagram: &mut [u8]) {
    let len = datagram.len() as u32;
    datagram[24..28].copy_from_slice(&len.to_be_bytes());
}

#[test]
fn every_truncation_of_a_valid_message_is_an_error_not_a_panic() {
    for (name, bytes) in samples::all_datagrams() {
        for cut in 0..bytes.len() {
            let truncated = &bytes[..cut];
            assert!(Message::parse(truncated).is_err(), "{name} cut at {cut}");
            // With the header length patched to match, the payload walk itself
            // meets the truncation.
            if cut >= HEADER_LEN {
                let mut patched = truncated.to_vec();
                set_length(&mut patched);
                let _ = parse_and_check_round_trip(&patched);
            }
        }
    }
}

#[test]
fn every_truncation_of_an_inner_chain_is_handled() {
    let bytes = samples::ike_auth_inner_bytes();
    for cut in 0..bytes.len() {
        assert!(
            parse_payloads(PayloadType::IdI as u8, &bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn every_single_byte_change_of_a_valid_message_parses_or_fails_cleanly() {
    for (_, bytes) in samples::all_datagrams() {
        for at in 0..bytes.len() {
            for value in 0..=255u8 {
                let mut changed = bytes.clone();
                changed[at] = value;
                let _ = parse_and_check_round_trip(&changed);
            }
        }
    }
    let inner = samples::ike_auth_inner_bytes();
    for at in 0..inner.len() {
        for value in 0..=255u8 {
            let mut changed = inner.clone();
            changed[at] = value;
            if let Ok(payloads) = parse_payloads(35, &changed) {
                let mut out = Vec::new();
                let first = xrsec_ike::wire::emit_payloads(&payloads, &mut out);
                assert_eq!(parse_payloads(first, &out), Ok(payloads));
            }
        }
    }
}

#[test]
fn random_bytes_behind_a_plausible_header_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let header = &samples::sa_init_request_bytes()[..HEADER_LEN];
    for _ in 0..20_000 {
        let len = HEADER_LEN + (next() % 200) as usize;
        let mut datagram = header.to_vec();
        datagram.extend((HEADER_LEN..len).map(|_| {
            // Bias towards small values and payload type numbers.
            match next() % 4 {
                0 => 0,
                1 => 33 + (next() % 21) as u8,
                _ => next() as u8,
            }
        }));
        datagram[16] = 33 + (next() % 21) as u8;
        set_length(&mut datagram);
        let _ = parse_and_check_round_trip(&datagram);
        let _ = parse_payloads(datagram[16], &datagram[HEADER_LEN..]);
    }
}

fn message_with(payloads: &[Payload]) -> Vec<u8> {
    Message::emit_plain(&samples::sa_init_header(), payloads)
}

#[test]
fn unknown_critical_payload_is_refused_with_its_type() {
    let bytes = message_with(&[
        Payload::Nonce(vec![1; 16]),
        Payload::Unknown {
            payload_type: 200,
            critical: true,
            body: vec![1, 2, 3],
        },
    ]);
    let err = Message::parse(&bytes).unwrap_err();
    assert_eq!(
        err,
        WireError::UnsupportedCriticalPayload { payload_type: 200 }
    );
    // RFC 7296 2.5: answered with UNSUPPORTED_CRITICAL_PAYLOAD.
    assert_eq!(err.notify_type(), notify::UNSUPPORTED_CRITICAL_PAYLOAD);
}

#[test]
fn unknown_non_critical_payload_is_kept_as_unknown() {
    let unknown = Payload::Unknown {
        payload_type: 200,
        critical: false,
        body: vec![1, 2, 3],
    };
    let payloads = vec![
        Payload::Nonce(vec![1; 16]),
        unknown,
        Payload::Vendor(vec![9]),
    ];
    let message = Message::parse(&message_with(&payloads)).unwrap();
    assert_eq!(message.payloads, payloads);
}

#[test]
fn payload_length_past_the_end_is_its_own_error() {
    let mut bytes = message_with(&[Payload::Vendor(vec![9; 10])]);
    bytes[HEADER_LEN + 3] += 1;
    assert_eq!(
        Message::parse(&bytes),
        Err(WireError::PayloadLengthPastEnd {
            payload_type: PayloadType::Vendor as u8
        })
    );
}

#[test]
fn payload_length_below_four_is_its_own_error() {
    for length in 0..4u8 {
        let mut bytes = message_with(&[Payload::Vendor(vec![9; 10])]);
        bytes[HEADER_LEN + 2] = 0;
        bytes[HEADER_LEN + 3] = length;
        assert_eq!(
            Message::parse(&bytes),
            Err(WireError::PayloadLengthTooShort {
                payload_type: PayloadType::Vendor as u8
            })
        );
    }
}

#[test]
fn sk_payload_not_last_is_its_own_error() {
    let mut bytes = emit_encrypted_prefix(&samples::sa_init_header(), 35, 16);
    bytes.extend_from_slice(&[0; 16]);
    // A payload after the SK payload: the header counts it, the SK does not.
    bytes.extend_from_slice(&[0, 0, 0, 4]);
    set_length(&mut bytes);
    assert_eq!(Message::parse(&bytes), Err(WireError::SkNotLast));
}

#[test]
fn header_length_different_from_the_datagram_is_its_own_error() {
    let mut bytes = samples::sa_init_request_bytes();
    bytes.push(0);
    assert_eq!(
        Message::parse(&bytes),
        Err(WireError::HeaderLengthMismatch {
            header: 342,
            datagram: 343
        })
    );
    assert_eq!(
        Message::parse(&bytes[..300]),
        Err(WireError::HeaderLengthMismatch {
            header: 342,
            datagram: 300
        })
    );
}

#[test]
fn bytes_after_the_last_payload_are_refused() {
    let mut bytes = message_with(&[Payload::Vendor(vec![9; 10])]);
    bytes.extend_from_slice(&[0; 4]);
    set_length(&mut bytes);
    assert_eq!(
        Message::parse(&bytes),
        Err(WireError::TrailingBytes {
            what: "last payload"
        })
    );
}

#[test]
fn next_payload_pointing_past_the_end_is_refused() {
    let mut bytes = message_with(&[Payload::Vendor(vec![9; 10])]);
    bytes[HEADER_LEN] = PayloadType::Notify as u8;
    assert_eq!(
        Message::parse(&bytes),
        Err(WireError::Truncated {
            what: "payload chain"
        })
    );
}

#[test]
fn major_version_other_than_two_is_refused_with_invalid_major_version() {
    for version in [0x10, 0x30, 0xf0] {
        let mut bytes = samples::sa_init_request_bytes();
        bytes[17] = version;
        let err = Message::parse(&bytes).unwrap_err();
        assert_eq!(
            err,
            WireError::UnsupportedVersion {
                major: version >> 4
            }
        );
        assert_eq!(err.notify_type(), notify::INVALID_MAJOR_VERSION);
    }
}

#[test]
fn minor_version_is_ignored_on_receipt() {
    let mut bytes = samples::sa_init_request_bytes();
    bytes[17] = 0x21;
    assert_eq!(Message::parse(&bytes).unwrap().header.minor, 1);
}

#[test]
fn malformed_payload_bodies_map_to_invalid_syntax() {
    // Nonce of 15 bytes (RFC 7296 3.9 asks for 16 to 256).
    let bytes = message_with(&[Payload::Vendor(vec![0; 15])]);
    let mut bytes = bytes;
    bytes[16] = PayloadType::Nonce as u8;
    let err = Message::parse(&bytes).unwrap_err();
    assert_eq!(
        err,
        WireError::Malformed {
            what: "nonce length"
        }
    );
    assert_eq!(err.notify_type(), notify::INVALID_SYNTAX);
    assert!(!err.to_string().is_empty());
}

#[test]
fn sk_inside_a_decrypted_chain_is_refused() {
    assert_eq!(
        parse_payloads(PayloadType::Sk as u8, &[0, 0, 0, 8, 1, 2, 3, 4]),
        Err(WireError::NestedEncrypted)
    );
    assert_eq!(
        parse_payloads(PayloadType::Skf as u8, &[0, 0, 0, 8, 0, 1, 0, 1]),
        Err(WireError::NestedEncrypted)
    );
}

#[test]
fn notify_about_unsupported_critical_payload_carries_the_type() {
    // What the caller builds from the error: one byte of data, the type.
    let err = WireError::UnsupportedCriticalPayload { payload_type: 200 };
    let WireError::UnsupportedCriticalPayload { payload_type } = err else {
        unreachable!()
    };
    let answer = NotifyPayload::new(err.notify_type(), vec![payload_type]);
    let mut out = Vec::new();
    xrsec_ike::wire::emit_payloads(&[Payload::Notify(answer)], &mut out);
    assert_eq!(out, [0, 0, 0, 9, 0, 0, 0, 1, 200]);
}

#[test]
fn counts_larger_than_the_payload_are_refused_before_anything_is_reserved() {
    // Delete: 65535 SPIs announced, none present.
    assert_eq!(
        parse_payloads(42, &[0, 0, 0, 8, 3, 4, 0xff, 0xff]),
        Err(WireError::Malformed {
            what: "Delete SPI count"
        })
    );
    // TSi: 255 selectors announced, none present.
    assert_eq!(
        parse_payloads(44, &[0, 0, 0, 8, 0xff, 0, 0, 0]),
        Err(WireError::Malformed {
            what: "Number of TSs"
        })
    );
    // SA: one proposal announcing 255 transforms, none present.
    assert_eq!(
        parse_payloads(33, &[0, 0, 0, 12, 0, 0, 0, 8, 1, 1, 0, 0xff]),
        Err(WireError::Malformed {
            what: "transform count"
        })
    );
}
