//! Child SA rekeying, lifetimes and dead peer detection in the simulator.
//!
//! Each peer's dataplane is modelled from its events as the daemon builds
//! it (inbound SAs by SPI, one outbound SA per tunnel), and after every
//! millisecond of simulated time the model is checked: whatever SA one side
//! sends with, the other has its inbound half (no packet lost to a rekey),
//! with the same keys, and no SA sends past its hard lifetime.

mod sim;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sim::*;
use xrsec_crypto::{DhGroup, EspKeys};
use xrsec_ike::wire::{ExchangeType, Message};
use xrsec_ike::{DownReason, Dpd, Event, TunnelConfig};

/// One side's dataplane, rebuilt from its events.
#[derive(Default, Debug)]
struct Table {
    /// spi_in -> keys_in.
    inbound: BTreeMap<u32, EspKeys>,
    /// Pending outbound halves (installed inbound-only): spi_in -> (spi_out, keys_out, expiry).
    pending: BTreeMap<u32, (u32, EspKeys, Instant)>,
    /// (spi_in, spi_out, keys_out, expiry) of the SA we send with.
    outbound: Option<(u32, u32, EspKeys, Instant)>,
    /// Events seen so far.
    seen: usize,
    rekeys: usize,
    downs: Vec<DownReason>,
}

impl Table {
    fn apply(&mut self, now: Instant, events: &[Event]) {
        for e in &events[self.seen..] {
            match e {
                Event::ChildSaUp(c) => {
                    self.inbound.insert(c.spi_in, c.keys_in.clone());
                    let expiry = now + c.lifetime;
                    if c.outbound {
                        self.outbound = Some((c.spi_in, c.spi_out, c.keys_out.clone(), expiry));
                    } else {
                        self.pending
                            .insert(c.spi_in, (c.spi_out, c.keys_out.clone(), expiry));
                    }
                    if c.rekey_of.is_some() {
                        self.rekeys += 1;
                    }
                }
                Event::ChildSaOutbound { spi_in, .. } => {
                    let (spi_out, keys, expiry) = self
                        .pending
                        .remove(spi_in)
                        .expect("outbound for an SA installed");
                    self.outbound = Some((*spi_in, spi_out, keys, expiry));
                }
                Event::ChildSaDown { spi_in, reason, .. } => {
                    self.inbound.remove(spi_in);
                    self.pending.remove(spi_in);
                    if self.outbound.as_ref().is_some_and(|o| o.0 == *spi_in) {
                        self.outbound = None;
                    }
                    self.downs.push(reason.clone());
                }
                _ => {}
            }
        }
        self.seen = events.len();
    }
}

/// Both tables and the first violation seen.
#[derive(Default)]
struct Model {
    ta: Table,
    tb: Table,
    violation: Option<String>,
    /// The peer-has-it check off: for runs that end an SA on purpose (a hard lifetime
    /// with the peer unreachable), where the peer sends into the void
    /// until it hears of it.
    lax: bool,
}

impl Model {
    fn observe(&mut self, now: Instant, base: Instant, a: &Peer, b: &Peer) {
        self.ta.apply(now, &a.events);
        self.tb.apply(now, &b.events);
        if self.violation.is_some() {
            return;
        }
        for (name, from, to) in [("A", &self.ta, &self.tb), ("B", &self.tb, &self.ta)] {
            let Some((_, spi_out, keys, expiry)) = &from.outbound else {
                continue;
            };
            let at = now - base;
            match to.inbound.get(spi_out) {
                None if self.lax => {}
                None => {
                    self.violation = Some(format!(
                        "{name} sends on SPI 0x{spi_out:08x}, which the peer has no inbound SA \
                         for (peer inbound: {:x?}) at {at:?}",
                        to.inbound.keys().collect::<Vec<_>>()
                    ))
                }
                Some(k) if k != keys => {
                    self.violation = Some(format!(
                        "{name}'s outbound keys differ from the peer's at {at:?}"
                    ))
                }
                _ if now > *expiry => {
                    self.violation = Some(format!(
                        "{name} still sends on 0x{spi_out:08x} past its hard lifetime at {at:?}"
                    ))
                }
                _ => {}
            }
        }
    }
}

struct Run {
    sim: Sim,
    model: Rc<RefCell<Model>>,
}

impl Run {
    fn new(a: TunnelConfig, b: TunnelConfig, seed: u64) -> Self {
        let mut sim = Sim::new(a, b, seed);
        let now = sim.now;
        sim.a.ep.initiate(now, xrsec_ike::TunnelId(1));
        sim.until_established(Duration::from_secs(5));
        assert_eq!(sim.a.child_sas().len(), 1, "{:?}", sim.a.failures());
        assert_eq!(sim.b.child_sas().len(), 1, "{:?}", sim.b.failures());
        let model = Rc::new(RefCell::new(Model::default()));
        let m = model.clone();
        let base = sim.base;
        sim.observer = Some(Box::new(move |now, a, b| {
            m.borrow_mut().observe(now, base, a, b)
        }));
        let now = sim.now;
        model.borrow_mut().observe(now, base, &sim.a, &sim.b);
        Self { sim, model }
    }

    /// Runs `d` of simulated time; the model checks every step.
    fn run_checked(&mut self, d: Duration) {
        self.sim.step(d);
        let now = self.sim.now;
        let base = self.sim.base;
        self.model
            .borrow_mut()
            .observe(now, base, &self.sim.a, &self.sim.b);
        if let Some(v) = &self.model.borrow().violation {
            panic!("{v}");
        }
    }

    fn ta(&self) -> std::cell::Ref<'_, Table> {
        std::cell::Ref::map(self.model.borrow(), |m| &m.ta)
    }

    fn tb(&self) -> std::cell::Ref<'_, Table> {
        std::cell::Ref::map(self.model.borrow(), |m| &m.tb)
    }

    /// After things settle: one Child SA pair each, mirrored.
    fn assert_settled(&self) {
        let sa = self.sim.a.ep.sessions();
        let sb = self.sim.b.ep.sessions();
        assert_eq!(sa.len(), 1, "A sessions: {sa:#?}");
        assert_eq!(sb.len(), 1, "B sessions: {sb:#?}");
        assert_eq!(sa[0].children.len(), 1, "A children: {:#?}", sa[0].children);
        assert_eq!(sb[0].children.len(), 1, "B children: {:#?}", sb[0].children);
        let (ca, cb) = (&sa[0].children[0], &sb[0].children[0]);
        assert_eq!((ca.spi_in, ca.spi_out), (cb.spi_out, cb.spi_in));
        assert!(!ca.outbound_pending && !cb.outbound_pending);
        assert_eq!(
            self.ta().inbound.len(),
            1,
            "A inbound: {:x?}",
            self.ta().inbound.keys()
        );
        assert_eq!(
            self.tb().inbound.len(),
            1,
            "B inbound: {:x?}",
            self.tb().inbound.keys()
        );
        assert_eq!(self.ta().outbound.as_ref().map(|o| o.0), Some(ca.spi_in));
        assert_eq!(self.tb().outbound.as_ref().map(|o| o.0), Some(cb.spi_in));
    }

    /// From now on the `drop`-th datagram entering the network is lost.
    fn drop_nth(&mut self, drop: Option<usize>) {
        let mut n = 0usize;
        self.sim.mutate = Some(Box::new(move |_p| {
            n += 1;
            Some(n - 1) != drop
        }));
    }

    fn child_a(&self) -> u32 {
        self.sim.a.ep.sessions()[0].children[0].spi_in
    }

    fn child_b(&self) -> u32 {
        self.sim.b.ep.sessions()[0].children[0].spi_in
    }
}

fn short_lived(pfs: Option<DhGroup>) -> (TunnelConfig, TunnelConfig) {
    let (mut a, mut b) = tunnel_pair(b"rekey test key 0123456789");
    for t in [&mut a, &mut b] {
        t.sa_lifetime = Duration::from_secs(10);
        t.pfs = pfs;
    }
    (a, b)
}

#[test]
fn child_sas_rekey_before_their_lifetime_with_no_gap_either_way() {
    for pfs in [None, Some(DhGroup::Ecp256)] {
        let (a, b) = short_lived(pfs);
        let mut r = Run::new(a, b, 5);
        let first = r.child_a();
        r.run_checked(Duration::from_secs(60));
        // Every 8-9 s one of the two rekeys: at least six in 60 s, each
        // seen by both sides (once as initiator, once as responder).
        assert!(
            r.ta().rekeys >= 6,
            "A saw {} rekeys ({pfs:?})",
            r.ta().rekeys
        );
        assert_eq!(r.ta().rekeys, r.tb().rekeys);
        assert_ne!(r.child_a(), first);
        // Old SAs went as rekeyed, nothing else went down.
        assert!(r
            .ta()
            .downs
            .iter()
            .chain(r.tb().downs.iter())
            .all(|d| matches!(d, DownReason::Rekeyed { .. })));
        assert!(r.sim.a.failures().is_empty() && r.sim.b.failures().is_empty());
        r.run_checked(Duration::from_secs(4));
        r.assert_settled();
    }
}

/// The sizes of every CREATE_CHILD_SA datagram either side sent.
fn create_child_sa_sizes(sim: &Sim) -> Vec<usize> {
    sim.a
        .sent
        .iter()
        .chain(&sim.b.sent)
        .filter_map(|(_, _, d)| {
            let m = Message::parse(d).ok()?;
            (m.header.exchange == ExchangeType::CreateChildSa).then_some(d.len())
        })
        .collect()
}

#[test]
fn with_pfs_the_rekey_exchange_carries_key_exchange_payloads() {
    let (a, b) = short_lived(Some(DhGroup::Ecp256));
    let mut r = Run::new(a, b, 6);
    r.run_checked(Duration::from_secs(10));
    assert!(r.ta().rekeys >= 1);
    // Every CREATE_CHILD_SA is encrypted: its size tells a KE payload (an
    // uncompressed P-256 point is 64 bytes) from none.
    let sizes = create_child_sa_sizes(&r.sim);
    assert!(sizes.len() >= 2, "{sizes:?}");
    let (a2, b2) = short_lived(None);
    let mut plain = Run::new(a2, b2, 6);
    plain.run_checked(Duration::from_secs(10));
    let plain_sizes = create_child_sa_sizes(&plain.sim);
    assert!(
        sizes.iter().min() > plain_sizes.iter().max(),
        "PFS {sizes:?} vs none {plain_sizes:?}"
    );
}

#[test]
fn a_pfs_mismatch_fails_the_rekey_with_its_reason_and_the_hard_lifetime_renegotiates() {
    let (a, mut b) = short_lived(Some(DhGroup::Ecp256));
    b.pfs = None;
    b.sa_lifetime = Duration::from_secs(3600);
    let mut r = Run::new(a, b, 7);
    r.model.borrow_mut().lax = true;
    r.run_checked(Duration::from_secs(11));
    let fails = r.sim.a.failures();
    assert!(
        fails
            .iter()
            .any(|f| f.contains("no proposal") || f.contains("NO_PROPOSAL")),
        "{fails:?}"
    );
    assert!(
        r.ta()
            .downs
            .iter()
            .any(|d| matches!(d, DownReason::LifetimeExpired { .. })),
        "A downs: {:?}",
        r.ta().downs
    );
    assert!(
        r.ta().outbound.is_none(),
        "A must not send past the hard lifetime"
    );
}

/// Both ends start rekeying the same Child SA, B `offset` after A, with
/// the `drop`-th datagram after that lost.
fn collision(seed: u64, offset: Duration, drop: Option<usize>) -> Run {
    let (mut a, mut b) = tunnel_pair(b"rekey collision key 012345");
    for t in [&mut a, &mut b] {
        t.pfs = Some(DhGroup::Ecp256);
    }
    let mut r = Run::new(a, b, seed);
    r.drop_nth(drop);
    let now = r.sim.now;
    let spi_a = r.child_a();
    r.sim.a.ep.rekey_child_sa(now, spi_a);
    if !offset.is_zero() {
        r.run_checked(offset);
    }
    let now = r.sim.now;
    let spi_b = r.child_b();
    r.sim.b.ep.rekey_child_sa(now, spi_b);
    r.run_checked(Duration::from_secs(40));
    r
}

#[test]
fn colliding_child_sa_rekeys_leave_one_pair_whatever_the_timing_and_whichever_message_is_lost() {
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in [11u64, 12, 13, 14] {
        for offset_ms in [0u64, 3, 6, 12] {
            for drop in std::iter::once(None).chain((0..10).map(Some)) {
                let r = collision(seed, Duration::from_millis(offset_ms), drop);
                let why = format!("seed {seed}, B {offset_ms} ms later, drop {drop:?}");
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.assert_settled()));
                if let Err(e) = result {
                    panic!(
                        "{why}: {e:?}\nA events: {:#?}\nB events: {:#?}",
                        r.sim.a.events, r.sim.b.events
                    );
                }
                assert!(
                    r.sim.a.failures().is_empty() && r.sim.b.failures().is_empty(),
                    "{why}: {:?} {:?}",
                    r.sim.a.failures(),
                    r.sim.b.failures()
                );
                let redundant = r
                    .ta()
                    .downs
                    .iter()
                    .chain(r.tb().downs.iter())
                    .filter(|d| matches!(d, DownReason::PeerDelete))
                    .count();
                outcomes.insert((r.ta().rekeys.min(2), redundant.min(1)));
            }
        }
    }
    // Both a true collision (a redundant SA deleted) and a rekey that won
    // by arriving first occur in the matrix.
    assert!(outcomes.len() >= 2, "{outcomes:?}");
}

#[test]
fn a_rekey_crossing_a_delete_of_the_same_child_sa_leaves_nothing_behind() {
    for seed in [21u64, 22, 23] {
        for offset_ms in [0u64, 3, 6, 12] {
            for drop in std::iter::once(None).chain((0..8).map(Some)) {
                let why = format!("seed {seed}, B deletes {offset_ms} ms later, drop {drop:?}");
                let (a, b) = tunnel_pair(b"rekey delete key 0123456789");
                let mut r = Run::new(a, b, seed);
                // B deletes the SA: A sends into the void until it hears of it.
                r.model.borrow_mut().lax = true;
                r.drop_nth(drop);
                let now = r.sim.now;
                let (spi_a, spi_b) = (r.child_a(), r.child_b());
                let id_b = r.sim.b.ep.sessions()[0].id;
                r.sim.a.ep.rekey_child_sa(now, spi_a);
                if offset_ms > 0 {
                    r.run_checked(Duration::from_millis(offset_ms));
                }
                let now = r.sim.now;
                r.sim.b.ep.delete_child_sa(now, id_b, spi_b);
                r.run_checked(Duration::from_secs(30));
                let ca: Vec<_> = r.sim.a.ep.sessions()[0].children.clone();
                let cb: Vec<_> = r.sim.b.ep.sessions()[0].children.clone();
                assert_eq!(ca.len(), cb.len(), "{why}: {ca:#?} {cb:#?}");
                for (x, y) in ca.iter().zip(&cb) {
                    assert_eq!((x.spi_in, x.spi_out), (y.spi_out, y.spi_in), "{why}");
                    assert!(!x.outbound_pending && !y.outbound_pending, "{why}");
                }
                assert!(!r.ta().inbound.contains_key(&spi_a), "{why}");
                assert!(!r.tb().inbound.contains_key(&spi_b), "{why}");
                // Whatever is left, each side sends on what the other has.
                assert_eq!(r.ta().inbound.len(), ca.len(), "{why}");
                assert_eq!(r.tb().inbound.len(), cb.len(), "{why}");
            }
        }
    }
}

#[test]
fn every_message_of_a_rekey_may_be_lost_once_without_a_gap() {
    for drop in 0..4usize {
        let (a, b) = tunnel_pair(b"rekey loss key 0123456789ab");
        let mut r = Run::new(a, b, 31);
        r.drop_nth(Some(drop));
        let now = r.sim.now;
        let spi = r.child_a();
        r.sim.a.ep.rekey_child_sa(now, spi);
        r.run_checked(Duration::from_secs(20));
        assert_eq!(r.ta().rekeys, 1, "drop {drop}");
        r.assert_settled();
    }
}

#[test]
fn a_rekey_that_never_gets_an_answer_ends_at_the_hard_lifetime() {
    let (mut a, mut b) = short_lived(None);
    b.sa_lifetime = Duration::from_secs(3600);
    a.sa_lifetime = Duration::from_secs(20);
    let mut r = Run::new(a, b, 41);
    r.model.borrow_mut().lax = true;
    // From now on nothing of A's reaches B.
    r.sim.mutate = Some(Box::new(|p| p.src.ip() != std::net::IpAddr::V4(A_ADDR)));
    r.run_checked(Duration::from_secs(21));
    assert!(r.ta().outbound.is_none());
    let ike_down = r.sim.a.events.iter().any(|e| {
        matches!(
            e,
            Event::IkeSaDown {
                reason: DownReason::LifetimeExpired { .. },
                ..
            }
        )
    });
    assert!(ike_down, "{:#?}", r.sim.a.events);
}

/// A pair where A runs `dpd 2 3`.
fn dpd_run(seed: u64) -> Run {
    let (mut a, b) = tunnel_pair(b"dpd key 0123456789abcdefgh");
    a.dpd = Some(Dpd {
        interval: Duration::from_secs(2),
        retries: 3,
    });
    Run::new(a, b, seed)
}

#[test]
fn dead_peer_detection_declares_a_silent_peer_dead_after_interval_times_retries() {
    let mut r = dpd_run(51);
    // A healthy peer answers the checks: nothing happens in 30 s.
    r.run_checked(Duration::from_secs(30));
    assert!(r.ta().downs.is_empty());
    let checks_answered = r
        .sim
        .a
        .events
        .iter()
        .filter(|e| matches!(e, Event::PeerAlive { .. }))
        .count();
    assert!(checks_answered >= 10, "{checks_answered} liveness answers");
    // Now B goes silent.
    r.sim.mutate = Some(Box::new(|p| p.src.ip() != std::net::IpAddr::V4(B_ADDR)));
    let silent_at = r.sim.now;
    let mut dead_at = None;
    while r.sim.now < silent_at + Duration::from_secs(20) && dead_at.is_none() {
        r.sim.step(Duration::from_millis(100));
        if r.sim.a.events.iter().any(|e| {
            matches!(
                e,
                Event::IkeSaDown {
                    reason: DownReason::DeadPeer { .. },
                    ..
                }
            )
        }) {
            dead_at = Some(r.sim.now);
        }
    }
    let took = dead_at.expect("A declares B dead") - silent_at;
    // The last answer came at most one interval before the silence; then
    // one interval to the first check and three checks 2 s apart.
    assert!(
        took <= Duration::from_secs(2 + 2 * 3 + 1),
        "dead after {took:?}"
    );
    assert!(took >= Duration::from_secs(2 * 3), "dead after {took:?}");
}

#[test]
fn traffic_from_the_peer_postpones_liveness_checks() {
    let mut r = dpd_run(52);
    let sent_before = r.sim.a.sent.len();
    for _ in 0..100 {
        let now = r.sim.now;
        r.sim.a.ep.traffic_received(now, xrsec_ike::TunnelId(1));
        r.sim.step(Duration::from_millis(100));
    }
    assert_eq!(
        r.sim.a.sent.len(),
        sent_before,
        "no check while traffic flows"
    );
}

/// Whether either end reported an IKE SA down.
fn any_ike_sa_down(sim: &Sim) -> bool {
    sim.a
        .events
        .iter()
        .chain(&sim.b.events)
        .any(|e| matches!(e, Event::IkeSaDown { .. }))
}

fn ike_rekeys(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaRekeyed { .. }))
        .count()
}

#[test]
fn ike_and_child_sas_rekey_on_their_lifetimes_for_ninety_seconds_without_a_gap() {
    let (mut a, mut b) = short_lived(Some(DhGroup::Ecp256));
    for t in [&mut a, &mut b] {
        t.ike_lifetime = Duration::from_secs(25);
    }
    let mut r = Run::new(a, b, 61);
    r.run_checked(Duration::from_secs(90));
    assert!(r.ta().rekeys >= 8, "{} Child SA rekeys", r.ta().rekeys);
    let (ia, ib) = (ike_rekeys(&r.sim.a.events), ike_rekeys(&r.sim.b.events));
    assert!(ia >= 3, "{ia} IKE SA rekeys");
    assert_eq!(ia, ib);
    assert!(!any_ike_sa_down(&r.sim), "an IKE SA went down");
    r.run_checked(Duration::from_secs(4));
    r.assert_settled();
    // The surviving IKE SAs are each other's.
    let (sa, sb) = (&r.sim.a.ep.sessions()[0], &r.sim.b.ep.sessions()[0]);
    assert_eq!((sa.spi_i, sa.spi_r), (sb.spi_i, sb.spi_r));
    assert_eq!(
        r.sim.a.ep.ike_keys_for_tests(sa.id),
        r.sim.b.ep.ike_keys_for_tests(sb.id)
    );
}

#[test]
fn colliding_ike_sa_rekeys_leave_one_ike_sa_whatever_the_timing_and_whichever_message_is_lost() {
    let mut winners = std::collections::BTreeSet::new();
    for seed in [71u64, 72, 73, 74] {
        for offset_ms in [0u64, 3, 6, 12] {
            for drop in std::iter::once(None).chain((0..10).map(Some)) {
                let why = format!("seed {seed}, B {offset_ms} ms later, drop {drop:?}");
                let (a, b) = tunnel_pair(b"ike rekey collision key 0123");
                let mut r = Run::new(a, b, seed);
                r.drop_nth(drop);
                let first = r.sim.a.ep.sessions()[0].spi_i;
                let now = r.sim.now;
                let id_a = r.sim.a.ep.sessions()[0].id;
                r.sim.a.ep.rekey_ike_sa(now, id_a);
                if offset_ms > 0 {
                    r.run_checked(Duration::from_millis(offset_ms));
                }
                let now = r.sim.now;
                if let Some(s) = r.sim.b.ep.sessions().first() {
                    r.sim.b.ep.rekey_ike_sa(now, s.id);
                }
                r.run_checked(Duration::from_secs(60));
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    r.assert_settled();
                    let (sa, sb) = (&r.sim.a.ep.sessions()[0], &r.sim.b.ep.sessions()[0]);
                    assert_eq!((sa.spi_i, sa.spi_r), (sb.spi_i, sb.spi_r));
                    assert_ne!(sa.spi_i, first, "not rekeyed");
                    assert!(r.sim.a.failures().is_empty() && r.sim.b.failures().is_empty());
                    assert!(!any_ike_sa_down(&r.sim), "an IKE SA went down");
                    // Liveness still works on the survivor.
                    let (id, role) = (sa.id, sa.role);
                    let seen = r.sim.a.events.len();
                    let now = r.sim.now;
                    r.sim.a.ep.send_liveness_check(now, id);
                    r.run_checked(Duration::from_secs(5));
                    assert!(
                        r.sim.a.events[seen..]
                            .iter()
                            .any(|e| matches!(e, Event::PeerAlive { .. })),
                        "no answer to a liveness check on the surviving IKE SA"
                    );
                    role
                }));
                match result {
                    Ok(role) => {
                        winners.insert(format!("{role:?}"));
                    }
                    Err(e) => {
                        let mut logs = String::new();
                        for (n, ep) in [("A", &mut r.sim.a.ep), ("B", &mut r.sim.b.ep)] {
                            while let Some(l) = ep.poll_log() {
                                logs.push_str(&format!("{n} [{:?}] {}\n", l.ike_sa, l.text));
                            }
                        }
                        panic!("{why}: {e:?}\n{logs}")
                    }
                }
            }
        }
    }
    // Sometimes A's rekey survives (A is the new SA's initiator), sometimes B's.
    assert_eq!(winners.len(), 2, "{winners:?}");
}
