//! The seed corpus of the `ike_message` fuzz target
//! (`fuzz/corpus/ike_message/seed-*`), built from the hand-written samples.
//! The target reads each input twice: as a datagram, and as a first payload
//! type byte followed by a decrypted inner chain.
//!
//! Regenerate with
//! `cargo test -p xrsec-ike --test wire_fuzz_corpus -- --ignored`.

#[path = "wire_samples.rs"]
mod samples;

use std::path::PathBuf;

use xrsec_ike::wire::{
    emit_payloads, notify, parse_payloads, DeletePayload, ExchangeType, Flags, Header, Message,
    NotifyPayload, Payload,
};

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = samples::all_datagrams();

    let response_header = Header {
        spi_r: 0x7a6b_5c4d_3e2f_1001,
        flags: Flags {
            initiator: false,
            version: false,
            response: true,
        },
        ..samples::sa_init_header()
    };
    let mut response = samples::sa_init_request_payloads();
    if let Payload::Sa(sa) = &mut response[0] {
        sa.proposals.truncate(1);
        sa.proposals[0]
            .transforms
            .retain(|t| t.id != 14 && t.id != 2 && t.key_length != Some(128));
    }
    response.push(Payload::CertReq(xrsec_ike::wire::CertReqPayload {
        encoding: 4,
        data: vec![0x5a; 20],
    }));
    seeds.push((
        "sa-init-response",
        Message::emit_plain(&response_header, &response),
    ));

    let invalid_ke = [Payload::Notify(NotifyPayload::new(
        notify::INVALID_KE_PAYLOAD,
        vec![0, 19],
    ))];
    seeds.push((
        "sa-init-invalid-ke",
        Message::emit_plain(&response_header, &invalid_ke),
    ));

    let informational = Header {
        exchange: ExchangeType::Informational,
        message_id: 2,
        ..response_header
    };
    let unknown = [
        Payload::Unknown {
            payload_type: 49,
            critical: false,
            body: vec![1, 2, 3, 4],
        },
        Payload::Vendor(vec![0x88, 0x2f, 0xe5, 0x6d]),
    ];
    seeds.push((
        "informational-unknown-noncritical",
        Message::emit_plain(&informational, &unknown),
    ));

    let mut inner = vec![35u8];
    inner.extend_from_slice(&samples::ike_auth_inner_bytes());
    seeds.push(("inner-ike-auth", inner));

    let mut delete = vec![42u8];
    emit_payloads(
        &[
            Payload::Delete(DeletePayload {
                protocol: 3,
                spis: vec![0xc1a2_b3d4, 7],
            }),
            Payload::Delete(DeletePayload {
                protocol: 1,
                spis: vec![],
            }),
        ],
        &mut delete,
    );
    seeds.push(("inner-delete", delete));
    seeds
}

#[test]
fn every_seed_parses_one_way_or_the_other() {
    for (name, bytes) in seeds() {
        let as_message = Message::parse(&bytes);
        let as_chain = parse_payloads(bytes[0], &bytes[1..]);
        assert!(as_message.is_ok() || as_chain.is_ok(), "{name}");
    }
}

#[test]
#[ignore = "writes fuzz/corpus/ike_message; run explicitly to regenerate"]
fn writes_fuzz_seed_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ike_message");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}
