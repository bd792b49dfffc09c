//! Round trips on random owned representations: parse(emit(x)) == x for
//! payload chains, plain messages and encrypted prefixes, from a small
//! deterministic generator (xorshift64*, fixed seeds).

#[path = "wire_samples.rs"]
mod samples;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xrsec_ike::wire::{
    emit_encrypted_prefix_with, emit_payloads, parse_payloads, AuthPayload, CertPayload,
    CertReqPayload, DeletePayload, Encrypted, ExchangeType, Flags, FragmentInfo, Header, IdPayload,
    IdType, KePayload, Message, NotifyPayload, Payload, PayloadType, Proposal, ProtocolId,
    SaPayload, TrafficSelector, Transform, TransformType, TsPayload,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi_inclusive: usize) -> usize {
        lo + self.below(hi_inclusive - lo + 1)
    }
    fn u8(&mut self) -> u8 {
        self.next() as u8
    }
    fn u16(&mut self) -> u16 {
        self.next() as u16
    }
    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.u8()).collect()
    }
}

fn transform(rng: &mut Rng) -> Transform {
    Transform {
        transform_type: TransformType::from(rng.range(1, 8) as u8),
        id: rng.u16(),
        key_length: rng.bool().then(|| [128, 192, 256][rng.below(3)]),
        unknown_attributes: rng.below(8) == 0,
    }
}

fn sa(rng: &mut Rng) -> SaPayload {
    let proposals = (0..rng.range(1, 4))
        .map(|i| {
            let spi_len = [0, 4, 8][rng.below(3)];
            Proposal {
                number: i as u8 + 1,
                protocol: ProtocolId::from(rng.range(1, 4) as u8),
                spi: rng.bytes(spi_len),
                transforms: (0..rng.range(0, 8)).map(|_| transform(rng)).collect(),
            }
        })
        .collect();
    SaPayload { proposals }
}

fn selector(rng: &mut Rng) -> TrafficSelector {
    let (start, end) = if rng.bool() {
        (
            IpAddr::V4(Ipv4Addr::from(rng.u32())),
            IpAddr::V4(Ipv4Addr::from(rng.u32())),
        )
    } else {
        let a = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        let b = (u128::from(rng.next()) << 64) | u128::from(rng.next());
        (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)))
    };
    TrafficSelector {
        ip_protocol: rng.u8(),
        start_port: rng.u16(),
        end_port: rng.u16(),
        start,
        end,
    }
}

fn ts(rng: &mut Rng) -> TsPayload {
    TsPayload {
        selectors: (0..rng.range(0, 4)).map(|_| selector(rng)).collect(),
    }
}

/// A payload type no variant stands for, and not SK/SKF (CP and EAP included:
/// they are kept as `Unknown` whatever their critical bit).
fn unknown_type(rng: &mut Rng) -> (u8, bool) {
    loop {
        let t = rng.range(1, 255) as u8;
        match PayloadType::from_u8(t) {
            None => return (t, false),
            Some(PayloadType::Cp | PayloadType::Eap) => return (t, rng.bool()),
            Some(_) => continue,
        }
    }
}

fn payload(rng: &mut Rng) -> Payload {
    let short = |rng: &mut Rng| {
        let len = rng.range(0, 40);
        rng.bytes(len)
    };
    match rng.below(14) {
        0 => Payload::Sa(sa(rng)),
        1 => Payload::Ke(KePayload {
            group: rng.u16(),
            data: short(rng),
        }),
        2 => Payload::IdI(IdPayload {
            id_type: IdType::from(rng.u8()),
            data: short(rng),
        }),
        3 => Payload::IdR(IdPayload {
            id_type: IdType::from(rng.u8()),
            data: short(rng),
        }),
        4 => Payload::Cert(CertPayload {
            encoding: rng.u8(),
            data: short(rng),
        }),
        5 => Payload::CertReq(CertReqPayload {
            encoding: rng.u8(),
            data: short(rng),
        }),
        6 => Payload::Auth(AuthPayload {
            method: rng.u8(),
            data: short(rng),
        }),
        7 => {
            let len = rng.range(16, 256);
            Payload::Nonce(rng.bytes(len))
        }
        8 => {
            let spi_len = [0, 4, 8][rng.below(3)];
            Payload::Notify(NotifyPayload {
                protocol: rng.u8(),
                spi: rng.bytes(spi_len),
                notify_type: rng.u16(),
                data: short(rng),
            })
        }
        9 => Payload::Delete(if rng.bool() {
            DeletePayload {
                protocol: 1,
                spis: vec![],
            }
        } else {
            let spis = (0..rng.range(0, 5)).map(|_| rng.u32()).collect();
            DeletePayload {
                protocol: rng.range(2, 3) as u8,
                spis,
            }
        }),
        10 => Payload::Vendor(short(rng)),
        11 => Payload::TsI(ts(rng)),
        12 => Payload::TsR(ts(rng)),
        _ => {
            let (payload_type, critical) = unknown_type(rng);
            Payload::Unknown {
                payload_type,
                critical,
                body: short(rng),
            }
        }
    }
}

fn payloads(rng: &mut Rng) -> Vec<Payload> {
    (0..rng.range(0, 12)).map(|_| payload(rng)).collect()
}

fn header(rng: &mut Rng) -> Header {
    let exchange = match rng.below(5) {
        4 => ExchangeType::from(rng.u8()),
        n => ExchangeType::from(34 + n as u8),
    };
    Header {
        spi_i: rng.next(),
        spi_r: rng.next(),
        next_payload: 0,
        major: 2,
        minor: rng.below(16) as u8,
        exchange,
        flags: Flags {
            initiator: rng.bool(),
            version: rng.bool(),
            response: rng.bool(),
        },
        message_id: rng.u32(),
        length: 0,
    }
}

#[test]
fn random_payload_chains_survive_emit_then_parse() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let chain = payloads(&mut rng);
        let mut out = Vec::new();
        let first = emit_payloads(&chain, &mut out);
        assert_eq!(
            out.len(),
            chain.iter().map(Payload::buffer_len).sum::<usize>()
        );
        let parsed = parse_payloads(first, &out).unwrap_or_else(|e| panic!("{e}: {chain:?}"));
        assert_eq!(parsed, chain);
    }
}

#[test]
fn random_plain_messages_survive_emit_then_parse() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for _ in 0..2000 {
        let header = header(&mut rng);
        let chain = payloads(&mut rng);
        let bytes = Message::emit_plain(&header, &chain);
        let message = Message::parse(&bytes).unwrap_or_else(|e| panic!("{e}: {chain:?}"));
        let first = chain.first().map_or(0, Payload::payload_type);
        let expected_header = Header {
            next_payload: first,
            length: bytes.len() as u32,
            ..header
        };
        assert_eq!(
            message,
            Message {
                header: expected_header,
                payloads: chain,
                encrypted: None
            }
        );
        // And emitting the parse gives the same bytes back.
        assert_eq!(
            Message::emit_plain(&message.header, &message.payloads),
            bytes
        );
    }
}

#[test]
fn random_encrypted_prefixes_parse_to_their_aad_and_sealed_part() {
    let mut rng = Rng(0xfeed_f00d_dead_beef);
    for _ in 0..2000 {
        let header = header(&mut rng);
        let plain = if rng.below(4) == 0 {
            payloads(&mut rng)
        } else {
            vec![]
        };
        let first_inner = rng.u8();
        let fragment = rng.bool().then(|| {
            let total = rng.range(1, 20) as u16;
            FragmentInfo {
                number: rng.range(1, total as usize) as u16,
                total,
            }
        });
        let sealed_len = rng.range(0, 300);
        let sealed = rng.bytes(sealed_len);
        let mut datagram =
            emit_encrypted_prefix_with(&header, &plain, first_inner, fragment, sealed.len());
        let aad_len = datagram.len();
        datagram.extend_from_slice(&sealed);
        let message = Message::parse(&datagram).unwrap_or_else(|e| panic!("{e}: {plain:?}"));
        let expected_first_inner = match fragment {
            Some(info) if info.number != 1 => 0,
            _ => first_inner,
        };
        assert_eq!(
            message.encrypted,
            Some(Encrypted {
                first_inner: expected_first_inner,
                aad_len,
                fragment
            })
        );
        assert_eq!(message.payloads, plain);
        assert_eq!(message.header.length as usize, datagram.len());
        let encrypted = message.encrypted.unwrap();
        assert_eq!(encrypted.sealed(&datagram), sealed);
        assert_eq!(encrypted.aad(&datagram).len(), aad_len);
    }
}

#[test]
fn canonical_samples_emit_back_byte_exact() {
    for (name, bytes) in samples::all_datagrams() {
        let message = Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = match message.encrypted {
            None => Message::emit_plain(&message.header, &message.payloads),
            Some(encrypted) => {
                let sealed = encrypted.sealed(&bytes);
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
        assert_eq!(again, bytes, "{name}");
    }
}
