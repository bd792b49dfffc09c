//! DH key generation plus shared secret per group (one IKE_SA_INIT's worth
//! of DH work for one side), with ring's ephemeral ECDH for P-256, P-384 and
//! X25519 as the reference: the measured cost of using RustCrypto (which
//! takes an injected RNG and imports private scalars) instead of ring.
//! Both draw their randomness from the OS.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use xrsec_crypto::{DhGroup, DhPrivate};

fn dh(c: &mut Criterion) {
    let mut group = c.benchmark_group("dh");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for dh_group in DhGroup::ALL {
        let peer = DhPrivate::generate(dh_group, &mut rand_core::OsRng);
        let peer_ke = peer.public_ke_data().to_vec();
        group.bench_function(
            BenchmarkId::new("xrsec-keygen+agree", dh_group.iana()),
            |b| {
                b.iter(|| {
                    let ours = DhPrivate::generate(dh_group, &mut rand_core::OsRng);
                    black_box(ours.public_ke_data());
                    black_box(ours.agree(black_box(&peer_ke)).unwrap())
                })
            },
        );
    }

    let rng = ring::rand::SystemRandom::new();
    for (iana, alg) in [
        (19u16, &ring::agreement::ECDH_P256),
        (20, &ring::agreement::ECDH_P384),
        (31, &ring::agreement::X25519),
    ] {
        let peer = ring::agreement::EphemeralPrivateKey::generate(alg, &rng).unwrap();
        let peer_public = peer.compute_public_key().unwrap().as_ref().to_vec();
        group.bench_function(BenchmarkId::new("ref-ring-keygen+agree", iana), |b| {
            b.iter(|| {
                let ours = ring::agreement::EphemeralPrivateKey::generate(alg, &rng).unwrap();
                black_box(ours.compute_public_key().unwrap());
                let peer = ring::agreement::UnparsedPublicKey::new(alg, &peer_public);
                ring::agreement::agree_ephemeral(ours, &peer, |secret| {
                    let mut out = [0u8; 48];
                    out[..secret.len()].copy_from_slice(secret);
                    black_box(out)
                })
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, dh);
criterion_main!(benches);
