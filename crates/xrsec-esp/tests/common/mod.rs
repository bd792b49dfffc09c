//! Helpers shared by the in-memory tests: the seed's suites, keys, SA pairs
//! and inner packets.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use xrsec_crypto::{Encr, EspKeys, EspSuite, IntegId, SecretBytes};
use xrsec_esp::{Encap, InboundSa, Lifetime, OutboundSa, SaSpec, TunnelId};

/// Every ESP suite of the seed: esp-128/192/256-aes with hmac-sha-1/256/
/// 384/512, esp-gcm-128/256.
pub fn all_suites() -> Vec<EspSuite> {
    let mut v = Vec::new();
    for encr in [Encr::AesCbc128, Encr::AesCbc192, Encr::AesCbc256] {
        for integ in IntegId::ALL {
            v.push(EspSuite::new(encr, Some(integ)).unwrap());
        }
    }
    for encr in [Encr::AesGcm16_128, Encr::AesGcm16_256] {
        v.push(EspSuite::new(encr, None).unwrap());
    }
    v
}

pub fn keys(suite: &EspSuite, seed: u8) -> EspKeys {
    let e: Vec<u8> = (0..suite.encr_key_len())
        .map(|i| seed.wrapping_add(i as u8))
        .collect();
    let a: Vec<u8> = (0..suite.integ_key_len())
        .map(|i| seed.wrapping_mul(3).wrapping_add(i as u8))
        .collect();
    EspKeys {
        encr: SecretBytes::new(&e),
        integ: SecretBytes::new(&a),
    }
}

pub fn spec(suite: EspSuite, esn: bool, window: u32) -> SaSpec {
    SaSpec {
        spi_in: 0x0000_1001,
        spi_out: 0x0000_1001,
        suite,
        keys_in: keys(&suite, 7),
        keys_out: keys(&suite, 7),
        esn,
        replay_window: window,
        lifetime: Lifetime::UNLIMITED,
        encap: Encap::Native,
    }
}

/// An outbound SA and the matching inbound SA (same SPI and keys: what the
/// peer installs).
pub fn pair(suite: EspSuite, esn: bool, window: u32) -> (OutboundSa, InboundSa) {
    let s = spec(suite, esn, window);
    (
        OutboundSa::new(&s, Ipv4Addr::new(10, 99, 0, 2), 1500, None).unwrap(),
        InboundSa::new(&s, TunnelId(1), None).unwrap(),
    )
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A well-formed inner IPv4/UDP packet of `len` bytes (>= 28).
pub fn inner_ipv4(len: usize, tag: u8) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[192, 0, 2, 1]);
    p[16..20].copy_from_slice(&[192, 0, 2, 2]);
    let c = ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&1234u16.to_be_bytes());
    p[22..24].copy_from_slice(&5678u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = tag.wrapping_add(i as u8);
    }
    p
}

/// A minimal inner IPv6/UDP packet of `len` bytes (>= 48).
pub fn inner_ipv6(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    p[8] = 0x20;
    p[9] = 0x01;
    p[24] = 0x20;
    p[25] = 0x01;
    p[39] = 2;
    p
}
