//! Known answers: hand-written bytes for the header and each payload type,
//! parsed to the expected owned representation and emitted back byte-exact.

#[path = "wire_samples.rs"]
mod samples;

use std::net::IpAddr;

use samples::hex;
use xrsec_ike::wire::{
    emit_encrypted_prefix, emit_fragment_prefix, emit_payloads, notify, parse_payloads, summarize,
    CertPayload, CertReqPayload, DeletePayload, Encrypted, ExchangeType, Flags, FragmentInfo,
    Header, IdPayload, IdType, KePayload, Message, NotifyPayload, Payload, PayloadType,
    TrafficSelector, TsPayload, HEADER_LEN,
};

/// Parses a single-payload chain and emits it back.
fn assert_payload_known_answer(payload_type: PayloadType, bytes: &[u8], expected: Payload) {
    let parsed = parse_payloads(payload_type as u8, bytes).expect("known answer parses");
    assert_eq!(parsed, vec![expected.clone()]);
    let mut out = Vec::new();
    assert_eq!(emit_payloads(&[expected], &mut out), payload_type as u8);
    assert_eq!(out, bytes, "emitted bytes differ from the known answer");
}

#[test]
fn parses_and_emits_the_ike_header() {
    let bytes = hex("8f3c2a1b00d4e5f6 7a6b5c4d3e2f1001 2e 20 25 20 00000007 0000004c");
    let header = Header {
        spi_i: 0x8f3c_2a1b_00d4_e5f6,
        spi_r: 0x7a6b_5c4d_3e2f_1001,
        next_payload: 46,
        major: 2,
        minor: 0,
        exchange: ExchangeType::Informational,
        flags: Flags {
            initiator: false,
            version: false,
            response: true,
        },
        message_id: 7,
        length: 76,
    };
    assert_eq!(Header::parse(&bytes), Ok(header));
    let mut out = [0u8; HEADER_LEN];
    header.emit(&mut out);
    assert_eq!(out[..], bytes[..]);
}

#[test]
fn parses_strongswan_like_ike_sa_init_request() {
    let bytes = samples::sa_init_request_bytes();
    assert_eq!(bytes.len(), 342);
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(message.header, samples::sa_init_header());
    assert_eq!(message.payloads, samples::sa_init_request_payloads());
    assert_eq!(message.encrypted, None);
    assert_eq!(
        message.summary(),
        "IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) N(HASH_ALG) ]"
    );
    assert_eq!(message.to_string(), message.summary());
}

#[test]
fn emits_strongswan_like_ike_sa_init_request_byte_exact() {
    let header = Header {
        next_payload: 0,
        length: 0,
        ..samples::sa_init_header()
    };
    let out = Message::emit_plain(&header, &samples::sa_init_request_payloads());
    assert_eq!(out, samples::sa_init_request_bytes());
}

/// RFC 5903 8.1-8.3 KEi and KEr payloads (whole payloads, Next Payload 0), as
/// transcribed in the project's `ike_ecp.json` vectors: (group, hex).
const RFC5903_KE_PAYLOADS: [(u16, &str); 6] = [
    // rfc5903-group19, i (section 8.1)
    (
        19,
        "0000004800130000dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef\
         945d0c37725811805271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58\
         389e0577b8990bb3",
    ),
    // rfc5903-group19, r (section 8.1)
    (
        19,
        "0000004800130000d12dfb5289c8d4f81208b70270398c342296970a0bccb74c\
         736fc7554494bf6356fbf3ca366cc23e8157854c13c58d6aac23f046ada30f83\
         53e74f33039872ab",
    ),
    // rfc5903-group20, i (section 8.2)
    (
        20,
        "0000006800140000667842d7d180ac2cde6f74f37551f55755c7645c20ef73e3\
         1634fe72b4c55ee6de3ac808acb4bdb4c88732aee95f41aa9482ed1fc0eeb9ca\
         fc4984625ccfc23f65032149e0e144ada024181535a0f38eeb9fcff3c2c947da\
         e69b4c634573a81c",
    ),
    // rfc5903-group20, r (section 8.2)
    (
        20,
        "0000006800140000e558dbef53eecde3d3fccfc1aea08a89a987475d12fd950d\
         83cfa41732bc509d0d1ac43a0336def96fda41d0774a3571dcfbec7aacf31964\
         72169e838430367f66eebe3c6e70c416dd5f0c68759dd1fff83fa40142209dff\
         5eaad96db9e6386c",
    ),
    // rfc5903-group21, i (section 8.3)
    (
        21,
        "0000008c001500000015417e84dbf28c0ad3c278713349dc7df153c897a1891b\
         d98bab4357c9ecbee1e3bf42e00b8e380aeae57c2d107564941885942af5a7f4\
         601723c4195d176ced3e017cae20b6641d2eeb695786d8c946146239d099e18e\
         1d5a514c739d7cb4a10ad8a788015ac405d7799dc75e7b7d5b6cf2261a6a7f15\
         07438bf01beb6ca3926f9582",
    ),
    // rfc5903-group21, r (section 8.3)
    (
        21,
        "0000008c0015000000d0b3975ac4b799f5bea16d5e13e9af971d5e9b984c9f39\
         728b5e5739735a219b97c356436adc6e95bb0352f6be64a6c2912d4ef2d0433c\
         ed2b6171640012d9460f015c68226383956e3bd066e797b623c27ce0eac2f551\
         a10c2c724d9852077b87220b6536c5c408a1d2aebb8e86d678ae49cb57091f47\
         32296579ab44fcd17f0fc56a",
    ),
];

#[test]
fn rfc5903_ke_payloads_parse_and_emit_byte_exact() {
    for (group, text) in RFC5903_KE_PAYLOADS {
        let bytes = hex(text);
        let data = bytes[8..].to_vec();
        // x | y of P-256, P-384, P-521 (RFC 5903 7).
        assert_eq!(
            data.len(),
            match group {
                19 => 64,
                20 => 96,
                _ => 132,
            }
        );
        assert_payload_known_answer(
            PayloadType::Ke,
            &bytes,
            Payload::Ke(KePayload { group, data }),
        );
    }
}

#[test]
fn parses_and_emits_id_payloads() {
    assert_payload_known_answer(
        PayloadType::IdI,
        &hex("00 00 0016 02 000000 72312e6578616d706c652e6e6574"),
        Payload::IdI(IdPayload {
            id_type: IdType::Fqdn,
            data: b"r1.example.net".to_vec(),
        }),
    );
    let idr = IdPayload {
        id_type: IdType::Ipv4Addr,
        data: vec![192, 0, 2, 2],
    };
    assert_payload_known_answer(
        PayloadType::IdR,
        &hex("00 00 000c 01 000000 c0000202"),
        Payload::IdR(idr.clone()),
    );
    // RFC 7296 2.15: the signed octets are the body from ID Type on.
    assert_eq!(idr.body_bytes(), hex("01 000000 c0000202"));
}

#[test]
fn parses_and_emits_cert_and_certreq_payloads() {
    assert_payload_known_answer(
        PayloadType::Cert,
        &hex("00 00 000c 04 3082000302010a"),
        Payload::Cert(CertPayload {
            encoding: 4,
            data: hex("3082000302010a"),
        }),
    );
    let hashes =
        "00112233445566778899aabbccddeeff00112233 ffeeddccbbaa99887766554433221100ffeeddcc";
    assert_payload_known_answer(
        PayloadType::CertReq,
        &hex(&format!("00 00 002d 04 {hashes}")),
        Payload::CertReq(CertReqPayload {
            encoding: 4,
            data: hex(hashes),
        }),
    );
}

#[test]
fn parses_and_emits_notify_with_spi_and_vendor_id() {
    assert_payload_known_answer(
        PayloadType::Notify,
        &hex("00 00 000c 03 04 4009 c1a2b3d4"),
        Payload::Notify(NotifyPayload {
            protocol: 3,
            spi: hex("c1a2b3d4"),
            notify_type: notify::REKEY_SA,
            data: vec![],
        }),
    );
    assert_payload_known_answer(
        PayloadType::Notify,
        &hex("00 00 000a 00 00 0011 0013"),
        Payload::Notify(NotifyPayload::new(notify::INVALID_KE_PAYLOAD, vec![0, 19])),
    );
    assert_payload_known_answer(
        PayloadType::Vendor,
        &hex("00 00 0014 882fe56d6fd20dbc2251613b2ebe5beb"),
        Payload::Vendor(hex("882fe56d6fd20dbc2251613b2ebe5beb")),
    );
}

#[test]
fn parses_and_emits_delete_payloads() {
    assert_payload_known_answer(
        PayloadType::Delete,
        &hex("00 00 0010 03 04 0002 c1a2b3d4 c5a6b7d8"),
        Payload::Delete(DeletePayload {
            protocol: 3,
            spis: vec![0xc1a2_b3d4, 0xc5a6_b7d8],
        }),
    );
    assert_payload_known_answer(
        PayloadType::Delete,
        &hex("00 00 0008 01 00 0000"),
        Payload::Delete(DeletePayload {
            protocol: 1,
            spis: vec![],
        }),
    );
}

#[test]
fn parses_and_emits_ipv6_traffic_selectors() {
    let ts = TrafficSelector {
        ip_protocol: 6,
        start_port: 22,
        end_port: 22,
        start: "2001:db8::".parse::<IpAddr>().unwrap(),
        end: "2001:db8::ffff".parse::<IpAddr>().unwrap(),
    };
    assert_payload_known_answer(
        PayloadType::TsR,
        &hex("00 00 0030 01 000000 08 06 0028 0016 0016
             20010db8000000000000000000000000 20010db800000000000000000000ffff"),
        Payload::TsR(TsPayload {
            selectors: vec![ts],
        }),
    );
}

#[test]
fn parses_and_emits_ike_auth_inner_chain() {
    let bytes = samples::ike_auth_inner_bytes();
    let payloads = parse_payloads(PayloadType::IdI as u8, &bytes).unwrap();
    assert_eq!(payloads, samples::ike_auth_inner_payloads());
    let mut out = Vec::new();
    assert_eq!(emit_payloads(&payloads, &mut out), 35);
    assert_eq!(out, bytes);
    let header = Header {
        exchange: ExchangeType::IkeAuth,
        message_id: 1,
        ..samples::sa_init_header()
    };
    assert_eq!(
        summarize(&header, &payloads),
        "IKE_AUTH request 1 [ IDi N(INIT_CONTACT) IDr AUTH SA TSi TSr ]"
    );
}

#[test]
fn locates_the_sk_payload_of_an_ike_auth_request() {
    let bytes = samples::ike_auth_request_bytes();
    let message = Message::parse(&bytes).unwrap();
    assert!(message.payloads.is_empty());
    let encrypted = message.encrypted.unwrap();
    assert_eq!(
        encrypted,
        Encrypted {
            first_inner: 35,
            aad_len: 32,
            fragment: None
        }
    );
    assert_eq!(encrypted.sealed(&bytes), samples::sealed_filler(200));
    // The emitter produces the same associated data for the same header.
    let prefix = emit_encrypted_prefix(&message.header, 35, 200);
    assert_eq!(prefix, bytes[..32]);
}

#[test]
fn locates_the_skf_payload_of_a_fragment() {
    let bytes = samples::ike_auth_fragment_bytes();
    let message = Message::parse(&bytes).unwrap();
    let info = FragmentInfo {
        number: 1,
        total: 2,
    };
    assert_eq!(
        message.encrypted,
        Some(Encrypted {
            first_inner: 36,
            aad_len: 36,
            fragment: Some(info)
        })
    );
    assert_eq!(message.summary(), "IKE_AUTH response 1 [ EF(1/2) ]");
    let prefix = emit_fragment_prefix(&message.header, 36, info, 100);
    assert_eq!(prefix, bytes[..36]);
}
