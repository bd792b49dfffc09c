//! Encapsulation and decapsulation per suite at 1400-byte inner packets, in
//! batches of 32 as the packet threads run them, against the raw AES-GCM
//! seal of the same bytes (ring through `xrsec_crypto::cipher::AesGcmKey`)
//! as the reference.
//!
//! `cargo bench -p xrsec-esp --bench dataplane`. Decapsulation restores the
//! 32 sealed packets (a 1.4 KB copy each) and rewinds the replay window
//! before every batch; `copy-only` measures that restore alone.

use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xrsec_crypto::cipher::AesGcmKey;
use xrsec_crypto::{Encr, EspKeys, EspSuite, IntegId, SecretBytes};
use xrsec_esp::decap::{decap_run, InnerCheck, RxPacket};
use xrsec_esp::encap::encap_batch;
use xrsec_esp::{Encap, InboundSa, Lifetime, OutboundSa, PacketBuf, SaSpec, TunnelId};

const INNER: usize = 1400;
const BATCH: usize = 32;

fn suites() -> Vec<(String, EspSuite)> {
    let mut v = Vec::new();
    for encr in [Encr::AesGcm16_128, Encr::AesGcm16_256] {
        v.push((encr.name().to_owned(), EspSuite::new(encr, None).unwrap()));
    }
    for encr in [Encr::AesCbc128, Encr::AesCbc192, Encr::AesCbc256] {
        for integ in IntegId::ALL {
            let s = EspSuite::new(encr, Some(integ)).unwrap();
            v.push((s.to_string(), s));
        }
    }
    v
}

fn spec(suite: EspSuite) -> SaSpec {
    let keys = EspKeys {
        encr: SecretBytes::new(&vec![7u8; suite.encr_key_len()]),
        integ: SecretBytes::new(&vec![9u8; suite.integ_key_len()]),
    };
    SaSpec {
        spi_in: 0x1001,
        spi_out: 0x1001,
        suite,
        keys_in: keys.clone(),
        keys_out: keys,
        esn: true,
        replay_window: 64,
        lifetime: Lifetime::UNLIMITED,
        encap: Encap::Native,
    }
}

fn inner() -> Vec<u8> {
    let mut p = vec![0xabu8; INNER];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(INNER as u16).to_be_bytes());
    p
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("esp-1400B");
    g.throughput(Throughput::Bytes((INNER * BATCH) as u64));
    g.sample_size(20);
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_millis(1500));

    // Reference: ring AES-128-GCM sealing the same bytes in place.
    let gcm = AesGcmKey::new(&[7u8; 16]).unwrap();
    let mut raw: Vec<Vec<u8>> = (0..BATCH).map(|_| inner()).collect();
    let mut n = 0u64;
    g.bench_function("raw-aes-128-gcm-seal", |b| {
        b.iter(|| {
            for p in raw.iter_mut() {
                n += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&n.to_be_bytes());
                let tag = gcm
                    .seal_in_place(&nonce, &[1, 2, 3, 4, 5, 6, 7, 8], p)
                    .unwrap();
                std::hint::black_box(tag);
            }
        })
    });

    for (name, suite) in suites() {
        let s = spec(suite);
        // ESN on: the sequence never runs out however long the bench runs.
        let out = OutboundSa::new(&s, Ipv4Addr::LOCALHOST, 65535, None).unwrap();
        let mut bufs: Vec<PacketBuf> = (0..BATCH)
            .map(|_| PacketBuf::from_slice(&inner()))
            .collect();
        let start = bufs[0].start();
        let mut verdicts = vec![Ok(()); BATCH];
        g.bench_function(format!("encap/{name}"), |b| {
            b.iter(|| {
                for (buf, v) in bufs.iter_mut().zip(verdicts.iter_mut()) {
                    // Back to the inner packet's place (the bytes are now
                    // ciphertext, which costs the same to seal).
                    buf.set_range(start, start + INNER);
                    buf.data_mut()[0] = 0x45;
                    *v = Ok(());
                }
                encap_batch(&out, &mut bufs, &mut verdicts);
            })
        });

        // Decapsulation: 32 sealed packets restored before each batch.
        let fresh = OutboundSa::new(&s, Ipv4Addr::LOCALHOST, 65535, None).unwrap();
        let mut sealed: Vec<PacketBuf> = (0..BATCH)
            .map(|_| PacketBuf::from_slice(&inner()))
            .collect();
        let mut v = vec![Ok(()); BATCH];
        encap_batch(&fresh, &mut sealed, &mut v);
        let sealed: Vec<Vec<u8>> = sealed.iter().map(|b| b.data().to_vec()).collect();
        let inb = InboundSa::new(&s, TunnelId(1), None).unwrap();
        let mut rx: Vec<PacketBuf> = sealed.iter().map(|p| PacketBuf::from_slice(p)).collect();
        let mut pkts: Vec<RxPacket> = Vec::with_capacity(BATCH);
        g.bench_function(format!("decap/{name}"), |b| {
            b.iter(|| {
                pkts.clear();
                for (i, (buf, p)) in rx.iter_mut().zip(sealed.iter()).enumerate() {
                    let s = buf.start();
                    buf.raw_mut()[s..s + p.len()].copy_from_slice(p);
                    pkts.push(RxPacket::new(i, s, s + p.len(), 0x1001));
                }
                inb.reset_replay_to(1);
                decap_run(&inb, &mut pkts, &mut rx, InnerCheck::Tunnel);
                debug_assert!(pkts
                    .iter()
                    .all(|p| matches!(p.status, xrsec_esp::decap::RxStatus::Deliver(4))));
            })
        });
        if name == Encr::AesGcm16_128.name() {
            g.bench_function("decap-copy-only", |b| {
                b.iter(|| {
                    for (buf, p) in rx.iter_mut().zip(sealed.iter()) {
                        let s = buf.start();
                        buf.raw_mut()[s..s + p.len()].copy_from_slice(p);
                    }
                    std::hint::black_box(&rx);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
