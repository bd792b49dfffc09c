//! RSA-2048 AUTH signatures per second: what one IKE_AUTH costs each side in
//! public-key work (one signature made, one verified), for method 1
//! (PKCS#1 v1.5 SHA-1) and method 14 with sha256WithRSAEncryption and
//! RSASSA-PSS SHA-256. ECDSA P-256 is alongside for comparison.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand_chacha::rand_core::SeedableRng;
use xrsec_pki::{
    parse_private_key, sign_auth, verify_auth, AuthSignature, HashAlgorithm, SignatureScheme,
};

/// The size of a typical InitiatorSignedOctets: an IKE_SA_INIT request with
/// a 2048-bit MODP KE, a nonce and a prf output.
const SIGNED_OCTETS: [u8; 600] = [0x5a; 600];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn sign(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let rsa = parse_private_key("rsa", &fixture("peer-pkcs8.key")).unwrap();
    let ec = parse_private_key("ec", &fixture("ec-p256-sec1.key")).unwrap();
    let cases = [
        ("rsa2048-method1-sha1", &rsa, AuthSignature::RsaSha1),
        (
            "rsa2048-pkcs1-sha256",
            &rsa,
            AuthSignature::Digital(SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256)),
        ),
        (
            "rsa2048-pss-sha256",
            &rsa,
            AuthSignature::Digital(SignatureScheme::rsa_pss(HashAlgorithm::Sha256)),
        ),
        (
            "ecdsa-p256-sha256",
            &ec,
            AuthSignature::Digital(SignatureScheme::Ecdsa(HashAlgorithm::Sha256)),
        ),
    ];

    let mut group = c.benchmark_group("auth");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    for (name, key, how) in cases {
        let public = key.public_key();
        let data = sign_auth(key, how, &SIGNED_OCTETS, &mut rng).unwrap();
        group.bench_function(BenchmarkId::new("sign", name), |b| {
            b.iter(|| sign_auth(key, how, black_box(&SIGNED_OCTETS), &mut rng).unwrap())
        });
        group.bench_function(BenchmarkId::new("verify", name), |b| {
            b.iter(|| verify_auth(&public, how.method(), black_box(&data), &SIGNED_OCTETS).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
