//! ESP seal/open throughput per suite at 64, 1400 and 9000 bytes, with the
//! raw primitives as references on the same buffers:
//! - raw ring AES-128-GCM `seal_in_place_separate_tag` (bar: our GCM seal at
//!   1400 bytes within 90% of it);
//! - AES-CBC alone and HMAC-SHA-256 alone (bar: CBC+HMAC-SHA-256 within 90%
//!   of the two added up).
//!
//! Throughput is counted in payload bytes for every entry.

use std::hint::black_box;

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use xrsec_crypto::{Encr, EspKeys, EspOpener, EspSealer, EspSuite, IntegId, SecretBytes};

const SIZES: [usize; 3] = [64, 1400, 9000];
const NEXT_HEADER_IPV4: u8 = 4;

/// The IOS-XR transform-set names of every suite.
fn suites() -> Vec<(String, EspSuite)> {
    let mut v = Vec::new();
    for (bits, encr) in [
        (128, Encr::AesCbc128),
        (192, Encr::AesCbc192),
        (256, Encr::AesCbc256),
    ] {
        for (name, integ) in [
            ("hmac-sha-1", IntegId::HmacSha1_96),
            ("hmac-sha-256", IntegId::HmacSha2_256_128),
            ("hmac-sha-384", IntegId::HmacSha2_384_192),
            ("hmac-sha-512", IntegId::HmacSha2_512_256),
        ] {
            v.push((
                format!("esp-{bits}-aes+{name}"),
                EspSuite::new(encr, Some(integ)).unwrap(),
            ));
        }
    }
    v.push((
        "esp-gcm-128".into(),
        EspSuite::new(Encr::AesGcm16_128, None).unwrap(),
    ));
    v.push((
        "esp-gcm-256".into(),
        EspSuite::new(Encr::AesGcm16_256, None).unwrap(),
    ));
    v
}

fn keys(suite: &EspSuite) -> EspKeys {
    EspKeys {
        encr: SecretBytes::new(&vec![0x42; suite.encr_key_len()]),
        integ: SecretBytes::new(&vec![0x24; suite.integ_key_len()]),
    }
}

fn packet_buf(suite: &EspSuite, size: usize) -> Vec<u8> {
    let mut buf = vec![0u8; suite.header_len() + size + suite.max_trailer_len()];
    for (i, b) in buf[suite.header_len()..][..size].iter_mut().enumerate() {
        *b = i as u8;
    }
    buf
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn esp_seal(c: &mut Criterion) {
    let mut group = c.benchmark_group("esp_seal");
    for (name, suite) in suites() {
        let keys = keys(&suite);
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let mut sealer = EspSealer::new(suite, &keys, 0x1000, true).unwrap();
            let mut buf = packet_buf(&suite, size);
            let mut seq = 0u64;
            group.bench_function(BenchmarkId::new(&name, size), |b| {
                b.iter(|| {
                    seq += 1;
                    black_box(
                        sealer
                            .seal_in_place(black_box(&mut buf), size, seq, NEXT_HEADER_IPV4)
                            .unwrap(),
                    )
                })
            });
            // Each reference runs right after the suite it is the bar for,
            // so that load from other work on the machine hits both alike.
            match name.as_str() {
                "esp-gcm-128" => ref_ring_gcm(&mut group, size),
                "esp-128-aes+hmac-sha-256" => {
                    ref_cbc_encrypt(&mut group, Encr::AesCbc128, size);
                    ref_hmac_sha256(&mut group, size);
                }
                "esp-256-aes+hmac-sha-256" => ref_cbc_encrypt(&mut group, Encr::AesCbc256, size),
                _ => {}
            }
        }
    }
    group.finish();
}

/// ring AES-128-GCM alone on the same buffer and byte range (payload +
/// trailer), with the same 8-byte AAD and a counter nonce.
fn ref_ring_gcm(group: &mut Group<'_>, size: usize) {
    let gcm = EspSuite::new(Encr::AesGcm16_128, None).unwrap();
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &[0x42; 16]).unwrap(),
    );
    let mut buf = packet_buf(&gcm, size);
    let ct_len = gcm.sealed_len(size).unwrap() - gcm.header_len() - gcm.icv_len();
    let mut seq = 0u64;
    group.bench_function(BenchmarkId::new("ref-ring-aes128gcm-raw", size), |b| {
        b.iter(|| {
            seq += 1;
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&seq.to_be_bytes());
            let aad = [0u8; 8];
            let (head, rest) = buf.split_at_mut(16);
            let tag = ring_key
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(nonce),
                    ring::aead::Aad::from(&aad),
                    &mut rest[..ct_len],
                )
                .unwrap();
            rest[ct_len..ct_len + 16].copy_from_slice(tag.as_ref());
            black_box(head);
        })
    });
}

/// AES-CBC encryption of the padded payload alone (RustCrypto, key
/// schedule built once), the first half of the CBC+HMAC bar.
fn ref_cbc_encrypt(group: &mut Group<'_>, encr: Encr, size: usize) {
    let cbc = EspSuite::new(encr, Some(IntegId::HmacSha2_256_128)).unwrap();
    let mut buf = packet_buf(&cbc, size);
    let ct_len = cbc.sealed_len(size).unwrap() - cbc.header_len() - cbc.icv_len();
    let iv = [7u8; 16];
    let name = format!("ref-cbc-aes{}-encrypt", encr.key_bits());
    let region = 24..24 + ct_len;
    if encr == Encr::AesCbc128 {
        let aes = aes::Aes128::new_from_slice(&[0x42; 16]).unwrap();
        group.bench_function(BenchmarkId::new(name, size), |b| {
            b.iter(|| {
                let enc = cbc::Encryptor::<&aes::Aes128>::inner_iv_init(&aes, (&iv).into());
                let out = enc.encrypt_padded_mut::<NoPadding>(&mut buf[region.clone()], ct_len);
                black_box(out.unwrap());
            })
        });
    } else {
        let aes = aes::Aes256::new_from_slice(&[0x42; 32]).unwrap();
        group.bench_function(BenchmarkId::new(name, size), |b| {
            b.iter(|| {
                let enc = cbc::Encryptor::<&aes::Aes256>::inner_iv_init(&aes, (&iv).into());
                let out = enc.encrypt_padded_mut::<NoPadding>(&mut buf[region.clone()], ct_len);
                black_box(out.unwrap());
            })
        });
    }
}

/// ring HMAC-SHA-256 over header + ciphertext alone, the second half of the
/// CBC+HMAC bar.
fn ref_hmac_sha256(group: &mut Group<'_>, size: usize) {
    let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[0x24; 32]);
    let cbc = EspSuite::new(Encr::AesCbc128, Some(IntegId::HmacSha2_256_128)).unwrap();
    let buf = packet_buf(&cbc, size);
    let auth_len = cbc.sealed_len(size).unwrap() - cbc.icv_len();
    group.bench_function(BenchmarkId::new("ref-hmac-sha256", size), |b| {
        b.iter(|| black_box(ring::hmac::sign(&hmac_key, black_box(&buf[..auth_len]))))
    });
}

fn esp_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("esp_open");
    for (name, suite) in suites() {
        let keys = keys(&suite);
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let mut sealer = EspSealer::new(suite, &keys, 0x1000, true).unwrap();
            let opener = EspOpener::new(suite, &keys, true).unwrap();
            let mut sealed = packet_buf(&suite, size);
            let len = sealer
                .seal_in_place(&mut sealed, size, (3 << 32) | 9, NEXT_HEADER_IPV4)
                .unwrap();
            sealed.truncate(len);
            // Opening decrypts in place, so each iteration gets a fresh copy
            // of the sealed packet; the copy is not timed.
            group.bench_function(BenchmarkId::new(&name, size), |b| {
                b.iter_batched_ref(
                    || sealed.clone(),
                    |packet| black_box(opener.open_in_place(packet, 3).unwrap()),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    // Reference for the decrypt side: CBC decryption alone.
    let cbc = EspSuite::new(Encr::AesCbc128, Some(IntegId::HmacSha2_256_128)).unwrap();
    let aes = aes::Aes128::new_from_slice(&[0x42; 16]).unwrap();
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = packet_buf(&cbc, size);
        let ct_len = cbc.sealed_len(size).unwrap() - cbc.header_len() - cbc.icv_len();
        let iv = [7u8; 16];
        group.bench_function(BenchmarkId::new("ref-cbc-aes128-decrypt", size), |b| {
            b.iter(|| {
                let dec = cbc::Decryptor::<&aes::Aes128>::inner_iv_init(&aes, (&iv).into());
                black_box(
                    dec.decrypt_padded_mut::<NoPadding>(&mut buf[24..24 + ct_len])
                        .unwrap(),
                );
            })
        });
    }
    group.finish();
}

criterion_group!(benches, esp_seal, esp_open);
criterion_main!(benches);
