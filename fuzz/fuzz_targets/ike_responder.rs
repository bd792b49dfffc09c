//! The IKE responder state machine fed arbitrary datagrams: an `Endpoint`
//! configured as router2 of the lab (config/router2.conf), receiving from
//! router1's address. It must never panic, and what an SA established by a
//! real handshake negotiated must never change (tests/robustness.rs checks
//! the stricter "nothing unauthenticated changes it at all").
//!
//! Input: one mode byte, then datagrams as [length u16 BE][bytes]. Mode bit 0:
//! complete a real handshake with router1 first. Mode bit 1: write the
//! established SA's SPIs into each datagram's header, so that the input
//! reaches the SA's integrity check and message-ID logic. Bit 15 of a length
//! sends that datagram to port 4500 instead of 500.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use xrsec_ike::rand_core::{CryptoRng, Error, RngCore};
use xrsec_ike::{from_tunnel, Endpoint, EndpointOptions, Event, TunnelConfig, TunnelId};

const ROUTER1: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const ROUTER2: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

/// SplitMix64: deterministic, so a crash reproduces. Not cryptographic; it
/// claims `CryptoRng` only to satisfy the endpoint's bound in this harness.
struct FuzzRng(u64);

impl RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FuzzRng {}

fn tunnel(text: &str, local: Ipv4Addr) -> TunnelConfig {
    let parsed = xrsec_config::parse_str("router.conf", text);
    let config = parsed.config.expect("the lab configuration parses");
    from_tunnel(&config.tunnels()[0], local).expect("the lab tunnel maps")
}

fn routers() -> &'static (TunnelConfig, TunnelConfig) {
    static ROUTERS: OnceLock<(TunnelConfig, TunnelConfig)> = OnceLock::new();
    ROUTERS.get_or_init(|| {
        (
            tunnel(include_str!("../../config/router1.conf"), ROUTER1),
            tunnel(include_str!("../../config/router2.conf"), ROUTER2),
        )
    })
}

fn drain(ep: &mut Endpoint<FuzzRng>) {
    while ep.poll_transmit().is_some() {}
    while ep.poll_event().is_some() {}
}

/// Runs router1 -> router2 to completion in memory; returns router2's SPIs.
fn handshake(responder: &mut Endpoint<FuzzRng>, now: Instant) -> Option<(u64, u64)> {
    let (r1, _) = routers();
    let mut initiator = Endpoint::new(vec![r1.clone()], FuzzRng(1), EndpointOptions::default());
    initiator.initiate(now, TunnelId(1));
    for _ in 0..8 {
        while let Some(t) = initiator.poll_transmit() {
            responder.handle_datagram(now, t.remote, t.local, &t.payload);
        }
        while let Some(t) = responder.poll_transmit() {
            initiator.handle_datagram(now, t.remote, t.local, &t.payload);
        }
    }
    let mut up = None;
    while let Some(e) = responder.poll_event() {
        if let Event::IkeSaUp { info, .. } = e {
            up = Some((info.spi_i, info.spi_r));
        }
    }
    up
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let (_, r2) = routers();
    let mut now = Instant::now();
    let mut responder = Endpoint::new(vec![r2.clone()], FuzzRng(2), EndpointOptions::default());
    let established = if mode & 1 == 1 {
        Some(handshake(&mut responder, now).expect("the lab routers establish"))
    } else {
        None
    };
    let before = responder.sessions();
    while rest.len() >= 2 {
        let word = u16::from_be_bytes([rest[0], rest[1]]);
        let natt = word & 0x8000 != 0;
        let len = usize::from(word & 0x7fff).min(rest.len() - 2);
        let mut datagram = rest[2..2 + len].to_vec();
        rest = &rest[2 + len..];
        if let (Some((spi_i, spi_r)), true) = (established, mode & 2 == 2) {
            if datagram.len() >= 16 {
                datagram[..8].copy_from_slice(&spi_i.to_be_bytes());
                datagram[8..16].copy_from_slice(&spi_r.to_be_bytes());
            }
        }
        let port = if natt { 4500 } else { 500 };
        let local = SocketAddr::new(IpAddr::V4(ROUTER2), port);
        let remote = SocketAddr::new(IpAddr::V4(ROUTER1), port);
        responder.handle_datagram(now, local, remote, &datagram);
        drain(&mut responder);
        now += Duration::from_millis(700);
        if responder.poll_timeout().is_some_and(|t| t <= now) {
            responder.handle_timeout(now);
            drain(&mut responder);
        }
        let _ = responder.sessions();
    }
    if established.is_some() {
        // Only an authenticated DELETE (the fuzzer may replay the peer's real
        // messages, the handshake being deterministic) may end the SA, and
        // nothing may alter what was negotiated.
        let first = before.first().expect("an established SA");
        if let Some(now) = responder.sessions().into_iter().find(|s| s.id == first.id) {
            assert_eq!((now.spi_i, now.spi_r), (first.spi_i, first.spi_r));
            assert_eq!(now.algorithms, first.algorithms);
            assert_eq!(now.remote_identity, first.remote_identity);
            assert_eq!(now.remote.ip(), first.remote.ip());
        }
    }
});
