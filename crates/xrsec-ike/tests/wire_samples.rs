//! Hand-built datagrams and payload chains shared by the `wire_*` tests
//! (included with `#[path]`), each with the owned representation it must
//! parse to. The bytes are written out field by field, not produced by the
//! emitter they test.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use xrsec_ike::wire::{
    notify, AuthPayload, ExchangeType, Flags, Header, IdPayload, IdType, KePayload, NotifyPayload,
    Payload, Proposal, ProtocolId, SaPayload, TrafficSelector, Transform, TransformType, TsPayload,
};

/// Decodes hex, ignoring whitespace and `|` separators.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// RFC 5903 8.1 g^i (x | y), the KE data of group 19.
pub const GROUP19_GI: &str = "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180\
                              5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3";
pub const NONCE_I: &str = "6c1f3a2e9b8d7c6f5e4d3c2b1a09f8e7d6c5b4a3928170f1e2d3c4b5a6978899";
pub const NATD_S: &str = "0123456789abcdef0123456789abcdef01234567";
pub const NATD_D: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// An IKE_SA_INIT request as strongSwan sends it: two IKE proposals (AES-CBC
/// with two key lengths and AES-GCM), KE of group 19, a 32-byte nonce, both
/// NAT detection hashes, fragmentation support and RFC 7427 hash algorithms.
pub fn sa_init_request_bytes() -> Vec<u8> {
    hex(&[
        // IKE header: SPIi, SPIr 0, next SA, 2.0, IKE_SA_INIT, I, MID 0, length 342
        "8f3c2a1b00d4e5f6 0000000000000000 21 20 22 08 00000000 00000156",
        // SA: next KE, length 128
        "22 00 0080",
        // proposal 1 (more follow), length 80, #1, IKE, SPI size 0, 8 transforms
        "02 00 0050 01 01 00 08",
        "03 00 000c 01 00 000c 800e 0080", // ENCR_AES_CBC, key length 128
        "03 00 000c 01 00 000c 800e 0100", // ENCR_AES_CBC, key length 256
        "03 00 0008 03 00 000c",           // AUTH_HMAC_SHA2_256_128
        "03 00 0008 03 00 0002",           // AUTH_HMAC_SHA1_96
        "03 00 0008 02 00 0005",           // PRF_HMAC_SHA2_256
        "03 00 0008 02 00 0002",           // PRF_HMAC_SHA1
        "03 00 0008 04 00 0013",           // ECP_256
        "00 00 0008 04 00 000e",           // MODP_2048 (last)
        // proposal 2 (last), length 44, #2, IKE, SPI size 0, 4 transforms
        "00 00 002c 02 01 00 04",
        "03 00 000c 01 00 0014 800e 0100", // ENCR_AES_GCM_16, key length 256
        "03 00 0008 02 00 0005",           // PRF_HMAC_SHA2_256
        "03 00 0008 04 00 0013",           // ECP_256
        "00 00 0008 04 00 001f",           // CURVE_25519 (last)
        // KE: next Nonce, length 72, group 19, reserved
        "28 00 0048 0013 0000",
        GROUP19_GI,
        // Nonce: next N, length 36
        "29 00 0024",
        NONCE_I,
        // N(NAT_DETECTION_SOURCE_IP): protocol 0, SPI size 0, type 16388
        "29 00 001c 00 00 4004",
        NATD_S,
        // N(NAT_DETECTION_DESTINATION_IP)
        "29 00 001c 00 00 4005",
        NATD_D,
        // N(IKEV2_FRAGMENTATION_SUPPORTED)
        "29 00 0008 00 00 402e",
        // N(SIGNATURE_HASH_ALGORITHMS): SHA2-256, SHA2-384, SHA2-512 (last payload)
        "00 00 000e 00 00 402f 0002 0003 0004",
    ]
    .join(" "))
}

pub fn sa_init_header() -> Header {
    Header {
        spi_i: 0x8f3c_2a1b_00d4_e5f6,
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
        length: 342,
    }
}

pub fn sa_init_request_payloads() -> Vec<Payload> {
    use TransformType::*;
    let t = Transform::new;
    let kl = Transform::with_key_length;
    vec![
        Payload::Sa(SaPayload {
            proposals: vec![
                Proposal {
                    number: 1,
                    protocol: ProtocolId::Ike,
                    spi: vec![],
                    transforms: vec![
                        kl(Encr, 12, 128),
                        kl(Encr, 12, 256),
                        t(Integ, 12),
                        t(Integ, 2),
                        t(Prf, 5),
                        t(Prf, 2),
                        t(Dh, 19),
                        t(Dh, 14),
                    ],
                },
                Proposal {
                    number: 2,
                    protocol: ProtocolId::Ike,
                    spi: vec![],
                    transforms: vec![kl(Encr, 20, 256), t(Prf, 5), t(Dh, 19), t(Dh, 31)],
                },
            ],
        }),
        Payload::Ke(KePayload {
            group: 19,
            data: hex(GROUP19_GI),
        }),
        Payload::Nonce(hex(NONCE_I)),
        Payload::Notify(NotifyPayload::new(
            notify::NAT_DETECTION_SOURCE_IP,
            hex(NATD_S),
        )),
        Payload::Notify(NotifyPayload::new(
            notify::NAT_DETECTION_DESTINATION_IP,
            hex(NATD_D),
        )),
        Payload::Notify(NotifyPayload::new(
            notify::IKEV2_FRAGMENTATION_SUPPORTED,
            vec![],
        )),
        Payload::Notify(NotifyPayload::new(
            notify::SIGNATURE_HASH_ALGORITHMS,
            vec![0, 2, 0, 3, 0, 4],
        )),
    ]
}

/// The decrypted inner chain of an IKE_AUTH request with a pre-shared key:
/// IDi, N(INITIAL_CONTACT), IDr, AUTH, SA (one ESP proposal), TSi, TSr.
/// The first payload is IDi (35).
pub fn ike_auth_inner_bytes() -> Vec<u8> {
    hex(&[
        // IDi: next N, length 22, ID_FQDN "r1.example.net"
        "29 00 0016 02 000000 72312e6578616d706c652e6e6574",
        // N(INITIAL_CONTACT): next IDr
        "24 00 0008 00 00 4000",
        // IDr: next AUTH, length 12, ID_IPV4_ADDR 192.0.2.2
        "27 00 000c 01 000000 c0000202",
        // AUTH: next SA, length 40, shared key MIC, 32-byte MAC
        "21 00 0028 02 000000",
        "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5",
        // SA: next TSi, length 36; proposal (last), length 32, #1, ESP, SPI size 4, 2 transforms
        "2c 00 0024 00 00 0020 01 03 04 02 c1a2b3d4",
        "03 00 000c 01 00 0014 800e 0100", // ENCR_AES_GCM_16, key length 256
        "00 00 0008 05 00 0000",           // no ESN (last)
        // TSi: next TSr, length 24, one selector: IPv4 any protocol 0-65535 10.1.0.0-10.1.0.255
        "2d 00 0018 01 000000 07 00 0010 0000 ffff 0a010000 0a0100ff",
        // TSr: last, 10.2.0.0-10.2.0.255
        "00 00 0018 01 000000 07 00 0010 0000 ffff 0a020000 0a0200ff",
    ]
    .join(" "))
}

pub fn ike_auth_inner_payloads() -> Vec<Payload> {
    let range = |a: [u8; 4], b: [u8; 4]| TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: IpAddr::V4(Ipv4Addr::from(a)),
        end: IpAddr::V4(Ipv4Addr::from(b)),
    };
    vec![
        Payload::IdI(IdPayload {
            id_type: IdType::Fqdn,
            data: b"r1.example.net".to_vec(),
        }),
        Payload::Notify(NotifyPayload::new(notify::INITIAL_CONTACT, vec![])),
        Payload::IdR(IdPayload {
            id_type: IdType::Ipv4Addr,
            data: vec![192, 0, 2, 2],
        }),
        Payload::Auth(AuthPayload {
            method: 2,
            data: vec![0xa5; 32],
        }),
        Payload::Sa(SaPayload {
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::Esp,
                spi: vec![0xc1, 0xa2, 0xb3, 0xd4],
                transforms: vec![
                    Transform::with_key_length(TransformType::Encr, 20, 256),
                    Transform::new(TransformType::Esn, 0),
                ],
            }],
        }),
        Payload::TsI(TsPayload {
            selectors: vec![range([10, 1, 0, 0], [10, 1, 0, 255])],
        }),
        Payload::TsR(TsPayload {
            selectors: vec![range([10, 2, 0, 0], [10, 2, 0, 255])],
        }),
    ]
}

/// Bytes standing in for IV | ciphertext | ICV.
pub fn sealed_filler(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// An IKE_AUTH request carrying only an SK payload of 200 sealed bytes.
pub fn ike_auth_request_bytes() -> Vec<u8> {
    let mut datagram = hex(&[
        // header: next SK, 2.0, IKE_AUTH, I, MID 1, length 28 + 4 + 200 = 232
        "8f3c2a1b00d4e5f6 7a6b5c4d3e2f1001 2e 20 23 08 00000001 000000e8",
        // SK: next IDi, length 204
        "23 00 00cc",
    ]
    .join(" "));
    datagram.extend_from_slice(&sealed_filler(200));
    datagram
}

/// Fragment 1 of 2 of an IKE_AUTH response (RFC 7383): SKF with 100 sealed bytes.
pub fn ike_auth_fragment_bytes() -> Vec<u8> {
    let mut datagram = hex(&[
        // header: next SKF, 2.0, IKE_AUTH, R, MID 1, length 28 + 8 + 100 = 136
        "8f3c2a1b00d4e5f6 7a6b5c4d3e2f1001 35 20 23 20 00000001 00000088",
        // SKF: next IDr, length 108, fragment 1 of 2
        "24 00 006c 0001 0002",
    ]
    .join(" "));
    datagram.extend_from_slice(&sealed_filler(100));
    datagram
}

/// Every hand-built datagram, for the robustness tests and the fuzz corpus.
pub fn all_datagrams() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("sa-init-request", sa_init_request_bytes()),
        ("ike-auth-request-sk", ike_auth_request_bytes()),
        ("ike-auth-response-skf", ike_auth_fragment_bytes()),
    ]
}
