//! Arbitrary bytes as an inbound ESP packet to SAs with known keys (one
//! AES-GCM-128, one AES-CBC-128/HMAC-SHA-256), both as the ESP packet
//! itself and as a (possibly GRO-coalesced) UDP 4500 datagram split the way
//! the receive thread splits it. Never panics; the counters add up: every
//! packet handed to an SA is either delivered or counted as one drop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xrsec_crypto::{Encr, EspKeys, EspSuite, IntegId, SecretBytes};
use xrsec_esp::decap::{decap_one, decap_run, esp_spi, InnerCheck, RxPacket, RxStatus};
use xrsec_esp::{Encap, InboundSa, Lifetime, PacketBuf, SaSpec, TunnelId};

fn sa(suite: EspSuite, spi: u32, window: u32) -> InboundSa {
    let keys = EspKeys {
        encr: SecretBytes::new(&vec![0x42; suite.encr_key_len()]),
        integ: SecretBytes::new(&vec![0x24; suite.integ_key_len()]),
    };
    let spec = SaSpec {
        spi_in: spi,
        spi_out: spi,
        suite,
        keys_in: keys.clone(),
        keys_out: keys,
        esn: spi & 1 == 1,
        replay_window: window,
        lifetime: Lifetime::UNLIMITED,
        encap: Encap::Native,
    };
    InboundSa::new(&spec, TunnelId(1), None).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let gcm = sa(EspSuite::new(Encr::AesGcm16_128, None).unwrap(), 0x1001, 64);
    let cbc = sa(
        EspSuite::new(Encr::AesCbc128, Some(IntegId::HmacSha2_256_128)).unwrap(),
        0x2002,
        4096,
    );
    let pick = |spi: u32| match spi {
        0x1001 => Some(&gcm),
        0x2002 => Some(&cbc),
        _ => None,
    };

    // As one ESP packet (native ESP, after the outer IPv4 header).
    let mut buf = PacketBuf::from_slice(data);
    let mut handed = 0u64;
    if let Some(spi) = esp_spi(data) {
        if let Some(sa) = pick(spi) {
            handed += 1;
            let _ = decap_one(sa, &mut buf, InnerCheck::Tunnel);
        }
    }

    // As a UDP 4500 datagram coalesced by GRO: the first byte picks a
    // segment size, the rest is cut like the receive thread cuts it.
    if let Some((&seg, rest)) = data.split_first() {
        let seg = usize::from(seg).max(1) * 8;
        let mut bufs = [PacketBuf::from_slice(rest)];
        let base = bufs[0].start();
        let mut pkts = Vec::new();
        let mut at = 0;
        while at < rest.len() {
            let end = (at + seg).min(rest.len());
            let d = &rest[at..end];
            let ike = d.len() >= 4 && d[..4] == [0, 0, 0, 0];
            if !ike && d != [0xff] {
                if let Some(spi) = esp_spi(d) {
                    pkts.push(RxPacket::new(0, base + at, base + end, spi));
                }
            }
            at = end;
        }
        let mut i = 0;
        while i < pkts.len() {
            let spi = pkts[i].spi;
            let mut j = i + 1;
            while j < pkts.len() && pkts[j].spi == spi {
                j += 1;
            }
            if let Some(sa) = pick(spi) {
                handed += (j - i) as u64;
                decap_run(sa, &mut pkts[i..j], &mut bufs, InnerCheck::Tunnel);
                for p in &pkts[i..j] {
                    assert_ne!(p.status, RxStatus::Pending);
                    if let RxStatus::Deliver(_) = p.status {
                        assert!(p.start <= p.end && (p.end as usize) <= bufs[0].capacity());
                    }
                }
            }
            i = j;
        }
    }

    // Every packet handed to an SA was delivered, consumed (dummy) or
    // counted as exactly one drop.
    let (g, c) = (gcm.counters(), cbc.counters());
    let accounted = g.packets + g.total_drops() + c.packets + c.total_drops();
    assert!(accounted <= handed);
});
