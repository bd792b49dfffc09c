//! A full IKE_SA_INIT + IKE_AUTH (PSK, first Child SA) between two endpoints
//! in memory, for DH groups 19 and 21: handshakes per second. The bare DH work
//! of one handshake (both sides generate a key pair and agree) is measured in
//! the same run as the reference, so the ratio shows what the rest of the
//! negotiator costs (parsing, proposal choice, prf+, AUTH, SK payloads).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use xrsec_crypto::{DhGroup, DhPrivate, Encr, PrfId};
use xrsec_ike::{Endpoint, EndpointOptions, Event, IkeProposalConfig, TunnelConfig, TunnelId};

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

/// One handshake; returns the number of Child SAs up (2).
fn handshake(a: &TunnelConfig, b: &TunnelConfig, seed: u64, now: Instant) -> usize {
    let opts = EndpointOptions::default();
    let mut ia = Endpoint::new(
        vec![a.clone()],
        ChaCha20Rng::seed_from_u64(seed),
        opts.clone(),
    );
    let mut rb = Endpoint::new(vec![b.clone()], ChaCha20Rng::seed_from_u64(!seed), opts);
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
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
