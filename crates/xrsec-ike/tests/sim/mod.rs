//! A deterministic two-peer network for the negotiator (CONVENTIONS item 8):
//! two `Endpoint`s exchanging datagrams through a queue, a fake clock, and a
//! seeded network that can lose, duplicate, delay (hence reorder), rewrite
//! (a NAT) and mutate datagrams.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use xrsec_ike::{ChildSa, Endpoint, EndpointOptions, Event, IkeSaId, TunnelConfig, TunnelId};

pub const A_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
pub const B_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

/// A datagram on the wire.
#[derive(Clone, Debug)]
pub struct Packet {
    pub deliver_at: Instant,
    pub seq: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// A NAT in front of peer A, as a masquerading router does it: A's
/// datagrams leave from `public`, their source port kept if listed in
/// `kept_ports`, else moved up by 30000. Leaving creates the mapping that
/// lets datagrams to that public port back in; one to a public port no
/// datagram of A's has left from is dropped (kept in [`Sim::nat_dropped`]),
/// as a real NAT drops unsolicited inbound traffic.
#[derive(Clone, Copy, Debug)]
pub struct Nat {
    pub inside: Ipv4Addr,
    pub public: Ipv4Addr,
    pub kept_ports: &'static [u16],
}

impl Nat {
    /// A NAT that moves every port.
    pub fn new(inside: Ipv4Addr, public: Ipv4Addr) -> Self {
        Self {
            inside,
            public,
            kept_ports: &[],
        }
    }

    fn public_port(&self, inside_port: u16) -> u16 {
        if self.kept_ports.contains(&inside_port) {
            inside_port
        } else {
            inside_port.wrapping_add(30000)
        }
    }
}

pub struct Peer {
    pub ep: Endpoint<ChaCha20Rng>,
    pub addr: Ipv4Addr,
    /// Further addresses of this peer (tunnels with sources of their own).
    pub aliases: Vec<Ipv4Addr>,
    pub events: Vec<Event>,
    /// Every datagram this peer sent, as it left (before the network).
    pub sent: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Peer {
    pub fn new(
        addr: Ipv4Addr,
        tunnels: Vec<TunnelConfig>,
        seed: u64,
        opts: EndpointOptions,
    ) -> Self {
        Self {
            ep: Endpoint::new(tunnels, ChaCha20Rng::seed_from_u64(seed), opts),
            addr,
            aliases: Vec::new(),
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Whether datagrams to `ip` reach this peer.
    pub fn owns(&self, ip: IpAddr) -> bool {
        ip == IpAddr::V4(self.addr) || self.aliases.iter().any(|a| ip == IpAddr::V4(*a))
    }

    pub fn child_sas(&self) -> Vec<&ChildSa> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ChildSaUp(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    pub fn ike_up(&self) -> Vec<IkeSaId> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::IkeSaUp { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    pub fn failures(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::NegotiationFailed { reason, .. } => Some(reason.to_string()),
                _ => None,
            })
            .collect()
    }
}

pub type Mutator = Box<dyn FnMut(&mut Packet) -> bool>;

pub struct Sim {
    pub a: Peer,
    pub b: Peer,
    pub base: Instant,
    pub now: Instant,
    queue: Vec<Packet>,
    seq: u64,
    net: ChaCha20Rng,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub dup: f64,
    /// Each datagram is delayed by a random 0..jitter (so they reorder).
    pub jitter: Duration,
    pub latency: Duration,
    pub nat: Option<Nat>,
    /// The NAT's mappings so far: public port to A's port.
    nat_mappings: HashMap<u16, u16>,
    /// Datagrams the NAT dropped for want of a mapping.
    pub nat_dropped: Vec<Packet>,
    /// Sees (and may change) each datagram entering the network; `false`
    /// drops it.
    pub mutate: Option<Mutator>,
    /// Sees both peers after every datagram delivered and every timer run
    /// (their events included), e.g. to check an invariant at each step.
    pub observer: Option<Observer>,
}

pub type Observer = Box<dyn FnMut(Instant, &Peer, &Peer)>;

pub fn opts() -> EndpointOptions {
    EndpointOptions::default()
}

/// Two tunnels that match: A at 10.99.0.1, B at 10.99.0.2, one PSK.
pub fn tunnel_pair(psk: &[u8]) -> (TunnelConfig, TunnelConfig) {
    let a = TunnelConfig::new(TunnelId(1), A_ADDR, B_ADDR, psk);
    let b = TunnelConfig::new(TunnelId(1), B_ADDR, A_ADDR, psk);
    (a, b)
}

impl Sim {
    pub fn new(a: TunnelConfig, b: TunnelConfig, seed: u64) -> Self {
        Self::with_options(vec![a], vec![b], seed, opts(), opts())
    }

    pub fn with_options(
        a: Vec<TunnelConfig>,
        b: Vec<TunnelConfig>,
        seed: u64,
        oa: EndpointOptions,
        ob: EndpointOptions,
    ) -> Self {
        let base = Instant::now();
        Self {
            a: Peer::new(A_ADDR, a, seed.wrapping_mul(2).wrapping_add(1), oa),
            b: Peer::new(B_ADDR, b, seed.wrapping_mul(2).wrapping_add(2), ob),
            base,
            now: base,
            queue: Vec::new(),
            seq: 0,
            net: ChaCha20Rng::seed_from_u64(seed ^ 0x5eed),
            loss: 0.0,
            dup: 0.0,
            jitter: Duration::ZERO,
            latency: Duration::from_millis(5),
            nat: None,
            nat_mappings: HashMap::new(),
            nat_dropped: Vec::new(),
            mutate: None,
            observer: None,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.net.next_u64() as f64 / u64::MAX as f64) < p
    }

    /// Puts a datagram on the wire (through NAT, loss, duplication, delay).
    pub fn send(&mut self, src: SocketAddr, dst: SocketAddr, payload: Vec<u8>) {
        let mut p = Packet {
            deliver_at: self.now,
            seq: 0,
            src,
            dst,
            payload,
        };
        if let Some(nat) = self.nat {
            if p.src.ip() == IpAddr::V4(nat.inside) {
                let public_port = nat.public_port(p.src.port());
                self.nat_mappings.insert(public_port, p.src.port());
                p.src = SocketAddr::new(IpAddr::V4(nat.public), public_port);
            }
        }
        if let Some(m) = self.mutate.as_mut() {
            if !m(&mut p) {
                return;
            }
        }
        if self.chance(self.loss) {
            return;
        }
        let copies = if self.chance(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let jitter = if self.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_micros(self.net.next_u64() % self.jitter.as_micros() as u64)
            };
            let mut q = p.clone();
            q.deliver_at = self.now + self.latency + jitter;
            q.seq = self.seq;
            self.seq += 1;
            self.queue.push(q);
        }
    }

    fn collect(&mut self) {
        while let Some(t) = self.a.ep.poll_transmit() {
            self.a.sent.push((t.local, t.remote, t.payload.clone()));
            self.send(t.local, t.remote, t.payload);
        }
        while let Some(t) = self.b.ep.poll_transmit() {
            self.b.sent.push((t.local, t.remote, t.payload.clone()));
            self.send(t.local, t.remote, t.payload);
        }
        while let Some(e) = self.a.ep.poll_event() {
            self.a.events.push(e);
        }
        while let Some(e) = self.b.ep.poll_event() {
            self.b.events.push(e);
        }
    }

    fn deliver(&mut self, mut p: Packet) {
        if let Some(nat) = self.nat {
            if p.dst.ip() == IpAddr::V4(nat.public) {
                let Some(&inside_port) = self.nat_mappings.get(&p.dst.port()) else {
                    self.nat_dropped.push(p);
                    return;
                };
                p.dst = SocketAddr::new(IpAddr::V4(nat.inside), inside_port);
            }
        }
        if self.a.owns(p.dst.ip()) {
            self.a
                .ep
                .handle_datagram(self.now, p.dst, p.src, &p.payload);
        } else if self.b.owns(p.dst.ip()) {
            self.b
                .ep
                .handle_datagram(self.now, p.dst, p.src, &p.payload);
        }
    }

    /// Runs until nothing is queued and no timer is due within `limit` of
    /// simulated time from now.
    pub fn drive_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        for _ in 0..1_000_000 {
            self.collect();
            if let Some(o) = &mut self.observer {
                o(self.now, &self.a, &self.b);
            }
            let next_packet = self.queue.iter().map(|p| (p.deliver_at, p.seq)).min();
            let next_timer = [self.a.ep.poll_timeout(), self.b.ep.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let next = match (next_packet, next_timer) {
                (Some((p, _)), Some(t)) => p.min(t),
                (Some((p, _)), None) => p,
                (None, Some(t)) => t,
                (None, None) => return,
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            if let Some((at, seq)) = next_packet {
                if at <= self.now {
                    let i = self.queue.iter().position(|p| p.seq == seq).unwrap();
                    let p = self.queue.swap_remove(i);
                    self.deliver(p);
                    continue;
                }
            }
            if self.a.ep.poll_timeout().is_some_and(|t| t <= self.now) {
                self.a.ep.handle_timeout(self.now);
            }
            if self.b.ep.poll_timeout().is_some_and(|t| t <= self.now) {
                self.b.ep.handle_timeout(self.now);
            }
        }
        panic!("simulation did not settle");
    }

    /// A initiates; the network runs for up to two simulated minutes.
    pub fn handshake(&mut self) {
        self.a.ep.initiate(self.now, TunnelId(1));
        self.drive_for(Duration::from_secs(120));
        self.collect();
    }

    /// Runs until both ends have a Child SA (or `limit` passes).
    pub fn until_established(&mut self, limit: Duration) {
        let end = self.now + limit;
        while self.now < end && (self.a.child_sas().is_empty() || self.b.child_sas().is_empty()) {
            self.drive_for(Duration::from_millis(500));
            self.collect();
        }
    }

    pub fn step(&mut self, d: Duration) {
        self.drive_for(d);
        self.collect();
    }

    /// Delivers a datagram to B as if it came from A (no network effects).
    pub fn inject_to_b(&mut self, src: SocketAddr, dst: SocketAddr, bytes: &[u8]) {
        self.b.ep.handle_datagram(self.now, dst, src, bytes);
        self.collect_only_events();
    }

    pub fn inject_to_a(&mut self, src: SocketAddr, dst: SocketAddr, bytes: &[u8]) {
        self.a.ep.handle_datagram(self.now, dst, src, bytes);
        self.collect_only_events();
    }

    /// Drains events and drops whatever the endpoints want to send.
    pub fn collect_only_events(&mut self) {
        while self.a.ep.poll_transmit().is_some() {}
        while self.b.ep.poll_transmit().is_some() {}
        while let Some(e) = self.a.ep.poll_event() {
            self.a.events.push(e);
        }
        while let Some(e) = self.b.ep.poll_event() {
            self.b.events.push(e);
        }
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// Asserts the two ends of a handshake hold matching keys: the IKE SA's SK_*
/// and the Child SA's inbound keys of one equal to the outbound of the other.
pub fn assert_same_keys(sim: &Sim) {
    let a_id = *sim.a.ike_up().first().expect("A has an IKE SA");
    let b_id = *sim.b.ike_up().first().expect("B has an IKE SA");
    let ka = sim.a.ep.ike_keys_for_tests(a_id).expect("A keys");
    let kb = sim.b.ep.ike_keys_for_tests(b_id).expect("B keys");
    assert_eq!(ka, kb, "IKE SA keys differ");
    let ca = sim.a.child_sas()[0];
    let cb = sim.b.child_sas()[0];
    assert_eq!(ca.keys_out, cb.keys_in);
    assert_eq!(ca.keys_in, cb.keys_out);
    assert_eq!(ca.spi_out, cb.spi_in);
    assert_eq!(ca.spi_in, cb.spi_out);
    assert_eq!(ca.suite, cb.suite);
    assert_ne!(ca.keys_in, ca.keys_out);
}
