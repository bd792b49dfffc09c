//! A full IKE_SA_INIT + IKE_AUTH (PSK, first Child SA) between two endpoints
//! in memory, for DH groups 19 and 21: handshakes per second. The bare DH work
//! of one handshake (both sides generate a key pair and agree) is measured in
//! the same run as the reference, so the ratio shows what the rest of the
//! negotiator costs (parsing, proposal choice, prf+, AUTH, SK payloads).
//! `handshake-rsa2048` is the same with RSA-2048 certificates both ways
//! (group 19, RFC 7427 SHA-256 signatures, chains verified against the CA),
//! made with rcgen from xrsec-pki's committed test keys.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use xrsec_crypto::{DhGroup, DhPrivate, Encr, PrfId};
use xrsec_ike::xrsec_pki::{self, Certificate, TrustAnchor};
use xrsec_ike::{
    Endpoint, EndpointOptions, Event, IkeProposalConfig, LocalAuth, RemoteAuth, TunnelConfig,
    TunnelId,
};

const A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

fn tunnels(group: DhGroup) -> (TunnelConfig, TunnelConfig) {
    let proposal = IkeProposalConfig {
        encr: vec![Encr::AesGcm16_256],
        integ: vec![],
        prf: vec![PrfId::HmacSha2_256],
        dh: vec![group],
    };
    let mut a = TunnelConfig::new(TunnelId(1), A, B, b"bench");
    let mut b = TunnelConfig::new(TunnelId(1), B, A, b"bench");
    a.ike_proposals = vec![proposal.clone()];
    b.ike_proposals = vec![proposal];
    (a, b)
}

fn pki_data(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../xrsec-pki/tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Group 19 tunnels authenticating with RSA-2048 certificates both ways
/// (one CA, an end entity per address, both with the same committed key).
fn rsa_tunnels() -> (TunnelConfig, TunnelConfig) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let pem = |name: &str| String::from_utf8(pki_data(name)).unwrap();
    let ca_key = KeyPair::from_pem(&pem("ca.key")).unwrap();
    let peer_key = KeyPair::from_pem(&pem("peer-pkcs8.key")).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    ca.not_before = rcgen::date_time_ymd(2025, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let ca_der = ca.self_signed(&ca_key).unwrap().der().to_vec();
    let issuer = Issuer::new(ca, &ca_key);
    let end_entity = |ip: Ipv4Addr| {
        let mut p = CertificateParams::new(vec![ip.to_string()]).unwrap();
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let der = p.signed_by(&peer_key, &issuer).unwrap().der().to_vec();
        Certificate::from_der(&der).unwrap()
    };
    let key = Arc::new(
        xrsec_pki::parse_private_key("peer-pkcs8.key", &pki_data("peer-pkcs8.key")).unwrap(),
    );
    let anchor = Arc::new(TrustAnchor::from_der(&ca_der).unwrap());
    let (mut a, mut b) = tunnels(DhGroup::Ecp256);
    for (t, ip) in [(&mut a, A), (&mut b, B)] {
        t.local_auth = LocalAuth::Certificate {
            key: key.clone(),
            chain: vec![end_entity(ip)],
        };
        t.remote_auth = RemoteAuth::Certificate {
            trust_anchor: anchor.clone(),
        };
    }
    (a, b)
}

/// One handshake; returns the number of Child SAs up (2).
fn handshake(a: &TunnelConfig, b: &TunnelConfig, seed: u64, now: Instant) -> usize {
    let opts = EndpointOptions::default();
    let mut ia = Endpoint::new(
        vec![a.clone()],
        ChaCha20Rng::seed_from_u64(seed),
        opts.clone(),
    );
    let mut rb = Endpoint::new(vec![b.clone()], ChaCha20Rng::seed_from_u64(!seed), opts);
    // Inside the certificates' validity (2025-2030); unused with PSK.
    let wall = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    ia.set_system_time(wall);
    rb.set_system_time(wall);
    ia.initiate(now, TunnelId(1));
    loop {
        let mut moved = false;
        while let Some(t) = ia.poll_transmit() {
            rb.handle_datagram(now, t.remote, t.local, &t.payload);
            moved = true;
        }
        while let Some(t) = rb.poll_transmit() {
            ia.handle_datagram(now, t.remote, t.local, &t.payload);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    let mut up = 0;
    for ep in [&mut ia, &mut rb] {
        while let Some(e) = ep.poll_event() {
            if matches!(e, Event::ChildSaUp(_)) {
                up += 1;
            }
        }
    }
    up
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("ike");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for dh in [DhGroup::Ecp256, DhGroup::Ecp521] {
        let (a, b) = tunnels(dh);
        assert_eq!(handshake(&a, &b, 1, now), 2);
        let mut seed = 0u64;
        group.bench_function(BenchmarkId::new("handshake-psk", dh.iana()), |bch| {
            bch.iter(|| {
                seed += 1;
                black_box(handshake(&a, &b, seed, now))
            })
        });
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        group.bench_function(BenchmarkId::new("dh-both-sides", dh.iana()), |bch| {
            bch.iter(|| {
                let i = DhPrivate::generate(dh, &mut rng);
                let r = DhPrivate::generate(dh, &mut rng);
                let s1 = i.agree(black_box(r.public_ke_data())).unwrap();
                let s2 = r.agree(black_box(i.public_ke_data())).unwrap();
                black_box((s1, s2))
            })
        });
    }
    let (a, b) = rsa_tunnels();
    assert_eq!(handshake(&a, &b, 1, now), 2, "RSA handshake");
    let mut seed = 0u64;
    group.bench_function(BenchmarkId::new("handshake-rsa2048", 19), |bch| {
        bch.iter(|| {
            seed += 1;
            black_box(handshake(&a, &b, seed, now))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
