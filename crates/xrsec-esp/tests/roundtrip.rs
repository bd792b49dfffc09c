//! In-memory encapsulation and decapsulation: every suite both ways, the
//! replay window's verdicts and counts, tampering, ESN, sequence
//! exhaustion, lifetimes, and the SA database under concurrent change.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{all_suites, inner_ipv4, inner_ipv6, pair, spec};
use xrsec_crypto::{Encr, EspSuite};
use xrsec_esp::decap::{decap_one, decap_run, InnerCheck, RxPacket, RxStatus};
use xrsec_esp::encap::{encap_batch, encap_one_with_explicit_iv};
use xrsec_esp::{
    DataplaneEvent, Direction, DropReason, InboundSa, Lifetime, OutboundSa, PacketBuf, Sadb,
    TunnelId,
};

fn gcm128() -> EspSuite {
    EspSuite::new(Encr::AesGcm16_128, None).unwrap()
}

fn seal_one(out: &OutboundSa, inner: &[u8]) -> Vec<u8> {
    let mut bufs = [PacketBuf::from_slice(inner)];
    let mut v = [Ok(())];
    encap_batch(out, &mut bufs, &mut v);
    v[0].unwrap();
    bufs[0].data().to_vec()
}

#[test]
fn every_suite_round_trips_a_batch_of_ipv4_and_ipv6_packets_in_place() {
    for suite in all_suites() {
        let (out, inb) = pair(suite, false, 64);
        let sizes = [
            28usize,
            29,
            40,
            63,
            64,
            100,
            576,
            1000,
            1399,
            out.max_inner(),
        ];
        let inners: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                if i % 3 == 2 {
                    inner_ipv6(n.max(48))
                } else {
                    inner_ipv4(n, i as u8)
                }
            })
            .collect();
        let mut bufs: Vec<PacketBuf> = inners.iter().map(|p| PacketBuf::from_slice(p)).collect();
        let starts: Vec<usize> = bufs.iter().map(PacketBuf::start).collect();
        let mut verdicts = vec![Ok(()); bufs.len()];
        encap_batch(&out, &mut bufs, &mut verdicts);
        assert!(verdicts.iter().all(Result::is_ok), "{suite}: {verdicts:?}");
        for (b, (inner, start)) in bufs.iter().zip(inners.iter().zip(&starts)) {
            // In place: the ESP header sits in the headroom right before
            // where the inner packet was read.
            assert_eq!(b.start(), start - suite.header_len(), "{suite}");
            assert_eq!(Some(b.len()), suite.sealed_len(inner.len()), "{suite}");
            assert_eq!(&b.data()[..4], &0x1001u32.to_be_bytes());
        }
        // Receive side: one run of one SA, as the receive thread does.
        let mut pkts: Vec<RxPacket> = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| RxPacket::new(i, b.start(), b.start() + b.len(), 0x1001))
            .collect();
        let esp_starts: Vec<usize> = bufs.iter().map(PacketBuf::start).collect();
        decap_run(&inb, &mut pkts, &mut bufs, InnerCheck::Tunnel);
        for (i, p) in pkts.iter().enumerate() {
            let expect_nh = if i % 3 == 2 { 41 } else { 4 };
            assert_eq!(p.status, RxStatus::Deliver(expect_nh), "{suite} #{i}");
            // In place: the inner packet lies right after the ESP header.
            assert_eq!(p.start as usize, esp_starts[i] + suite.header_len());
            let got = &bufs[p.buf as usize].raw()[p.start as usize..p.end as usize];
            assert_eq!(got, &inners[i][..], "{suite} #{i}");
        }
        let total: u64 = inners.iter().map(|p| p.len() as u64).sum();
        assert_eq!(out.counters().packets, sizes.len() as u64);
        assert_eq!(out.counters().bytes, total);
        assert_eq!(inb.counters().packets, sizes.len() as u64);
        assert_eq!(inb.counters().bytes, total);
        assert_eq!(inb.counters().total_drops(), 0);
    }
}

#[test]
fn replay_duplicate_too_old_and_out_of_order_are_each_counted() {
    let (out, inb) = pair(gcm128(), false, 64);
    let packets: Vec<Vec<u8>> = (0..100)
        .map(|i| seal_one(&out, &inner_ipv4(60, i as u8)))
        .collect();
    let open = |p: &Vec<u8>| decap_one(&inb, &mut PacketBuf::from_slice(p), InnerCheck::Tunnel);
    // Seq 100 first, then 99..=37 out of order: all inside the window.
    assert_eq!(open(&packets[99]), Ok(4));
    for s in (37..=99).rev() {
        assert_eq!(open(&packets[s - 1]), Ok(4), "seq {s}");
    }
    // A duplicate inside the window.
    assert_eq!(open(&packets[49]), Err(DropReason::Replay));
    // Older than the window (seq 36: 100 - 36 = 64).
    assert_eq!(open(&packets[35]), Err(DropReason::Replay));
    assert_eq!(open(&packets[0]), Err(DropReason::Replay));
    let c = inb.counters();
    assert_eq!(c.packets, 64);
    assert_eq!(c.dropped(DropReason::Replay), 3);
    assert_eq!(c.total_drops(), 3);
}

#[test]
fn replay_duplicates_within_one_batch_deliver_once() {
    let (out, inb) = pair(gcm128(), false, 64);
    let p = seal_one(&out, &inner_ipv4(80, 1));
    let mut bufs = vec![
        PacketBuf::from_slice(&p),
        PacketBuf::from_slice(&p),
        PacketBuf::from_slice(&p),
    ];
    let mut pkts: Vec<RxPacket> = bufs
        .iter()
        .enumerate()
        .map(|(i, b)| RxPacket::new(i, b.start(), b.start() + b.len(), 0x1001))
        .collect();
    decap_run(&inb, &mut pkts, &mut bufs, InnerCheck::Tunnel);
    let delivered = pkts
        .iter()
        .filter(|p| p.status == RxStatus::Deliver(4))
        .count();
    assert_eq!(delivered, 1);
    assert_eq!(inb.counters().dropped(DropReason::Replay), 2);
}

#[test]
fn a_configured_window_of_4096_accepts_late_packets_a_64_window_refuses() {
    for (window, accepted) in [(64u32, false), (4096, true)] {
        let (out, inb) = pair(gcm128(), false, window);
        let packets: Vec<Vec<u8>> = (0..3000)
            .map(|_| seal_one(&out, &inner_ipv4(40, 0)))
            .collect();
        assert_eq!(
            decap_one(
                &inb,
                &mut PacketBuf::from_slice(&packets[2999]),
                InnerCheck::Tunnel
            ),
            Ok(4)
        );
        let late = decap_one(
            &inb,
            &mut PacketBuf::from_slice(&packets[10]),
            InnerCheck::Tunnel,
        );
        assert_eq!(late.is_ok(), accepted, "window {window}");
    }
}

#[test]
fn a_byte_flipped_anywhere_drops_the_packet_counts_it_and_delivers_nothing() {
    for suite in [
        gcm128(),
        EspSuite::new(
            Encr::AesCbc128,
            Some(xrsec_crypto::IntegId::HmacSha2_256_128),
        )
        .unwrap(),
    ] {
        let (out, inb) = pair(suite, false, 4096);
        let mut dropped = 0u64;
        let mut unknown_spi = 0u64;
        let inner = inner_ipv4(200, 9);
        let first = seal_one(&out, &inner);
        for pos in 0..first.len() {
            for bit in [0x01u8, 0x80] {
                let mut p = seal_one(&out, &inner);
                p[pos] ^= bit;
                let mut bufs = [PacketBuf::from_slice(&p)];
                let Some(spi) = xrsec_esp::decap::esp_spi(bufs[0].data()) else {
                    unknown_spi += 1;
                    continue;
                };
                if spi != inb.spi() {
                    // The receive thread finds no SA for it: dropped as an
                    // unknown SPI, never decrypted.
                    unknown_spi += 1;
                    continue;
                }
                let start = bufs[0].start();
                let mut pkt = [RxPacket::new(0, start, start + p.len(), spi)];
                decap_run(&inb, &mut pkt, &mut bufs, InnerCheck::Tunnel);
                assert!(
                    matches!(pkt[0].status, RxStatus::Dropped(_)),
                    "{suite}: flip at {pos} bit {bit:#x} gave {:?}",
                    pkt[0].status
                );
                dropped += 1;
            }
        }
        let c = inb.counters();
        assert_eq!(c.packets, 0, "{suite}: nothing delivered");
        assert_eq!(c.total_drops(), dropped, "{suite}");
        // Flips in the sequence number and body are ICV failures; only the
        // SPI bytes miss the SA.
        assert_eq!(unknown_spi, 4 * 8 * 2 / 8, "{suite}");
        assert_eq!(c.dropped(DropReason::IcvFailure), dropped, "{suite}: {c:?}");
    }
}

#[test]
fn a_dummy_packet_is_consumed_silently() {
    let (out, inb) = pair(gcm128(), false, 64);
    let mut b = PacketBuf::from_slice(&[0u8; 20]);
    encap_one_with_explicit_iv(&out, &mut b, 59, &1u64.to_be_bytes()).unwrap();
    let mut r = PacketBuf::from_slice(b.data());
    assert_eq!(decap_one(&inb, &mut r, InnerCheck::Tunnel), Ok(59));
    assert!(r.is_empty());
    let c = inb.counters();
    assert_eq!((c.packets, c.total_drops()), (0, 0));
}

#[test]
fn inner_packet_version_must_match_next_header() {
    let (out, inb) = pair(gcm128(), false, 64);
    // An IPv6 packet announced as IPv4.
    let mut b = PacketBuf::from_slice(&inner_ipv6(60));
    encap_one_with_explicit_iv(&out, &mut b, 4, &1u64.to_be_bytes()).unwrap();
    let mut r = PacketBuf::from_slice(b.data());
    assert_eq!(
        decap_one(&inb, &mut r, InnerCheck::Tunnel),
        Err(DropReason::BadInner)
    );
    // An IPv4 packet whose total length runs past the payload.
    let mut bad = inner_ipv4(60, 0);
    bad[2..4].copy_from_slice(&200u16.to_be_bytes());
    let mut b = PacketBuf::from_slice(&bad);
    encap_one_with_explicit_iv(&out, &mut b, 4, &2u64.to_be_bytes()).unwrap();
    let mut r = PacketBuf::from_slice(b.data());
    assert_eq!(
        decap_one(&inb, &mut r, InnerCheck::Tunnel),
        Err(DropReason::BadInner)
    );
    assert_eq!(inb.counters().dropped(DropReason::BadInner), 2);
}

#[test]
fn esn_round_trips_across_the_32_bit_boundary() {
    for suite in [
        gcm128(),
        EspSuite::new(
            Encr::AesCbc256,
            Some(xrsec_crypto::IntegId::HmacSha2_512_256),
        )
        .unwrap(),
    ] {
        let (out, inb) = pair(suite, true, 64);
        let start = u64::from(u32::MAX) - 3;
        out.set_next_seq(start);
        inb.reset_replay_to(start);
        for i in 0..10 {
            let p = seal_one(&out, &inner_ipv4(100, i));
            let lo = u32::from_be_bytes(p[4..8].try_into().unwrap());
            assert_eq!(lo, (start + u64::from(i)) as u32);
            assert_eq!(
                decap_one(&inb, &mut PacketBuf::from_slice(&p), InnerCheck::Tunnel),
                Ok(4),
                "{suite} #{i}"
            );
        }
        assert_eq!(out.next_seq(), start + 10);
    }
}

#[test]
fn without_esn_the_sequence_never_wraps_and_a_rekey_is_asked_for() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let s = spec(gcm128(), false, 64);
    let out = OutboundSa::new(&s, Ipv4Addr::LOCALHOST, 1500, Some(tx)).unwrap();
    out.set_next_seq(u64::from(u32::MAX) - 1);
    let mut bufs: Vec<PacketBuf> = (0..5)
        .map(|i| PacketBuf::from_slice(&inner_ipv4(60, i)))
        .collect();
    let mut v = vec![Ok(()); 5];
    encap_batch(&out, &mut bufs, &mut v);
    assert_eq!(v.iter().filter(|r| r.is_ok()).count(), 2);
    assert_eq!(&bufs[1].data()[4..8], &u32::MAX.to_be_bytes());
    assert!(v[2..]
        .iter()
        .all(|r| *r == Err(DropReason::SequenceExhausted)));
    let events: Vec<_> = rx.try_iter().collect();
    assert!(
        events.contains(&DataplaneEvent::SequenceExhausted { spi: 0x1001 }),
        "{events:?}"
    );
    // It stays stopped.
    let mut more = [PacketBuf::from_slice(&inner_ipv4(60, 0))];
    let mut v = [Ok(())];
    encap_batch(&out, &mut more, &mut v);
    assert_eq!(v[0], Err(DropReason::SequenceExhausted));
    assert_eq!(out.counters().dropped(DropReason::SequenceExhausted), 4);
}

#[test]
fn soft_and_hard_packet_lifetimes_raise_events_and_the_hard_one_stops_traffic() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut s = spec(gcm128(), false, 64);
    s.lifetime = Lifetime {
        soft_packets: 5,
        hard_packets: 8,
        ..Lifetime::UNLIMITED
    };
    let out = OutboundSa::new(&s, Ipv4Addr::LOCALHOST, 1500, Some(tx.clone())).unwrap();
    let inb = InboundSa::new(&s, TunnelId(1), Some(tx)).unwrap();
    let mut sent = Vec::new();
    for batch in 0..3 {
        let mut bufs: Vec<PacketBuf> = (0..4)
            .map(|i| PacketBuf::from_slice(&inner_ipv4(60, i)))
            .collect();
        let mut v = vec![Ok(()); 4];
        encap_batch(&out, &mut bufs, &mut v);
        let ok = v.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, [4, 4, 0][batch], "batch {batch}");
        sent.extend(
            bufs.iter()
                .zip(&v)
                .filter(|(_, r)| r.is_ok())
                .map(|(b, _)| b.data().to_vec()),
        );
    }
    assert_eq!(out.counters().packets, 8);
    assert_eq!(out.counters().dropped(DropReason::HardLifetime), 4);
    for p in &sent {
        let _ = decap_one(&inb, &mut PacketBuf::from_slice(p), InnerCheck::Tunnel);
    }
    assert_eq!(inb.counters().packets, 8);
    let events: Vec<_> = rx.try_iter().collect();
    for e in [
        DataplaneEvent::SoftLifetime {
            spi: 0x1001,
            direction: Direction::Outbound,
        },
        DataplaneEvent::HardLifetime {
            spi: 0x1001,
            direction: Direction::Outbound,
        },
        DataplaneEvent::SoftLifetime {
            spi: 0x1001,
            direction: Direction::Inbound,
        },
        DataplaneEvent::HardLifetime {
            spi: 0x1001,
            direction: Direction::Inbound,
        },
    ] {
        assert_eq!(
            events.iter().filter(|x| **x == e).count(),
            1,
            "{e:?} in {events:?}"
        );
    }
    // Past the inbound hard limit nothing more is accepted.
    let (out2, _) = pair(gcm128(), false, 64);
    out2.set_next_seq(100);
    let late = seal_one(&out2, &inner_ipv4(60, 0));
    assert_eq!(
        decap_one(&inb, &mut PacketBuf::from_slice(&late), InnerCheck::Tunnel),
        Err(DropReason::HardLifetime)
    );
}

#[test]
fn too_big_inner_packets_are_refused_by_encap() {
    let (out, _) = pair(gcm128(), false, 64);
    let mut b = [PacketBuf::from_slice(&inner_ipv4(out.max_inner() + 1, 0))];
    let mut v = [Ok(())];
    encap_batch(&out, &mut b, &mut v);
    assert_eq!(v[0], Err(DropReason::TooBig));
    assert_eq!(out.counters().dropped(DropReason::TooBig), 1);
}

#[test]
fn max_inner_leaves_room_for_outer_headers_of_each_suite() {
    for suite in all_suites() {
        for encap in [
            xrsec_esp::Encap::Native,
            xrsec_esp::Encap::Udp { peer_port: 4500 },
        ] {
            let m = xrsec_esp::sa::max_inner_len(&suite, encap, 1500);
            assert!(
                encap.outer_len() + suite.sealed_len(m).unwrap() <= 1500,
                "{suite}"
            );
            assert!(
                encap.outer_len() + suite.sealed_len(m + 1).unwrap() > 1500 || m % 4 != 0,
                "{suite}"
            );
        }
    }
}

#[test]
fn sadb_accepts_old_and_new_inbound_sas_during_a_rekey_while_readers_run() {
    let db = Arc::new(Sadb::new());
    let tunnel = TunnelId(1);
    let mk = |spi_in: u32, spi_out: u32| {
        let mut s = spec(gcm128(), false, 64);
        s.spi_in = spi_in;
        s.spi_out = spi_out;
        (
            Arc::new(InboundSa::new(&s, tunnel, None).unwrap()),
            Arc::new(OutboundSa::new(&s, Ipv4Addr::LOCALHOST, 1500, None).unwrap()),
        )
    };
    let (in1, out1) = mk(0x100, 0x200);
    db.install_pair(tunnel, in1, out1);
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let reader = {
        let (db, stop, lookups) = (db.clone(), stop.clone(), lookups.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = db.snapshot();
                // Some inbound SA and the outbound SA are always there.
                assert!(t.inbound(0x100).is_some() || t.inbound(0x101).is_some());
                assert!(t.outbound(tunnel).is_some());
                lookups.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // At least 200 rekeys, and until the reader has looked a while.
    let mut round = 0u32;
    while round < 200 || (lookups.load(Ordering::Relaxed) < 1000 && round < 1_000_000) {
        let (old, new) = (0x100 + (round % 2), 0x100 + ((round + 1) % 2));
        let (inb, outb) = mk(new, 0x200 + round + 1);
        db.install_pair(tunnel, inb, outb);
        let t = db.snapshot();
        assert!(
            t.inbound(old).is_some() && t.inbound(new).is_some(),
            "both during the rekey"
        );
        assert_eq!(t.outbound(tunnel).unwrap().spi(), 0x200 + round + 1);
        drop(t);
        assert!(db.remove_inbound(old));
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(lookups.load(Ordering::Relaxed) >= 1000);
    db.remove_tunnel(tunnel);
    assert!(db.snapshot().outbound(tunnel).is_none());
}
