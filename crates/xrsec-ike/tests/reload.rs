//! Configuration reload (SIGHUP in xrsecd): tunnels added, replaced and
//! removed at run time on two endpoints holding three tunnels, each tunnel
//! on its own pair of addresses. What is checked is what the daemon and the
//! peer see: the down and up events of the tunnel touched, the DELETE the
//! peer gets, and, for the tunnels left alone, the same IKE and Child SA
//! SPIs before and after with not one event about them.

mod sim;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use sim::*;
use xrsec_ike::{ConfigError, DownReason, Event, FailureReason, IkeSaId, TunnelConfig, TunnelId};

const A2: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 1);
const B2: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 2);
const A3: Ipv4Addr = Ipv4Addr::new(10, 99, 2, 1);
const B3: Ipv4Addr = Ipv4Addr::new(10, 99, 2, 2);
const A4: Ipv4Addr = Ipv4Addr::new(10, 99, 3, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 99, 3, 2);

const T1: TunnelId = TunnelId(1);
const T2: TunnelId = TunnelId(2);
const T3: TunnelId = TunnelId(3);
const T4: TunnelId = TunnelId(4);

/// Tunnel `n` between `a` (on A) and `b` (on B), with a key of its own.
fn pair(n: u32, a: Ipv4Addr, b: Ipv4Addr) -> (TunnelConfig, TunnelConfig) {
    let psk = format!("tunnel {n} key");
    (
        TunnelConfig::new(TunnelId(n), a, b, psk.as_bytes()),
        TunnelConfig::new(TunnelId(n), b, a, psk.as_bytes()),
    )
}

/// The three tunnels, initiated by A, up on both ends; events drained.
fn three_tunnels_up(seed: u64) -> Sim {
    let (a1, b1) = pair(1, A_ADDR, B_ADDR);
    let (a2, b2) = pair(2, A2, B2);
    let (a3, b3) = pair(3, A3, B3);
    let mut sim = Sim::with_options(vec![a1, a2, a3], vec![b1, b2, b3], seed, opts(), opts());
    sim.a.aliases = vec![A2, A3, A4];
    sim.b.aliases = vec![B2, B3, B4];
    for t in [T1, T2, T3] {
        sim.a.ep.initiate(sim.now, t);
    }
    sim.step(Duration::from_secs(60));
    for (side, peer) in [("A", &sim.a), ("B", &sim.b)] {
        for t in [T1, T2, T3] {
            assert_eq!(ike_up(&peer.events, t).len(), 1, "{side}: {t} up once");
            assert_eq!(
                children_up(&peer.events, t).len(),
                1,
                "{side}: {t} Child SA"
            );
        }
        assert_eq!(peer.ep.ike_sa_count(), 3, "{side}");
    }
    sim.a.events.clear();
    sim.b.events.clear();
    sim
}

fn ike_up(events: &[Event], tunnel: TunnelId) -> Vec<IkeSaId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaUp { id, tunnel: t, .. } if *t == tunnel => Some(*id),
            _ => None,
        })
        .collect()
}

/// (spi_in, spi_out) of the Child SAs reported up for `tunnel`.
fn children_up(events: &[Event], tunnel: TunnelId) -> Vec<(u32, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaUp(c) if c.tunnel == tunnel => Some((c.spi_in, c.spi_out)),
            _ => None,
        })
        .collect()
}

/// Every down event: (tunnel, "child" or "ike", reason).
fn downs(events: &[Event]) -> Vec<(TunnelId, &'static str, DownReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaDown { tunnel, reason, .. } => Some((*tunnel, "child", reason.clone())),
            Event::IkeSaDown { tunnel, reason, .. } => Some((*tunnel, "ike", reason.clone())),
            _ => None,
        })
        .collect()
}

/// Any event naming `tunnel`.
fn mentions(events: &[Event], tunnel: TunnelId) -> bool {
    events.iter().any(|e| match e {
        Event::IkeSaUp { tunnel: t, .. }
        | Event::ChildSaDown { tunnel: t, .. }
        | Event::IkeSaDown { tunnel: t, .. }
        | Event::NegotiationFailed { tunnel: t, .. }
        | Event::PeerAlive { tunnel: t, .. }
        | Event::PeerAddressChanged { tunnel: t, .. } => *t == tunnel,
        Event::ChildSaUp(c) => c.tunnel == tunnel,
        _ => false,
    })
}

fn failures(events: &[Event], tunnel: TunnelId) -> Vec<FailureReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NegotiationFailed { tunnel: t, reason } if *t == tunnel => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// What identifies a tunnel's SAs in `show ikev2 session`: the IKE SA (id,
/// SPIs, state) and its Child SAs' SPIs.
type SessionKey = (IkeSaId, u64, u64, &'static str, Vec<(u32, u32)>);

fn sessions_of(peer: &Peer, tunnel: TunnelId) -> Vec<SessionKey> {
    peer.ep
        .sessions()
        .into_iter()
        .filter(|s| s.tunnel == tunnel)
        .map(|s| {
            let children = s.children.iter().map(|c| (c.spi_in, c.spi_out)).collect();
            (s.id, s.spi_i, s.spi_r, s.state, children)
        })
        .collect()
}

fn snapshot(sim: &Sim, tunnels: &[TunnelId]) -> Vec<(TunnelId, Vec<SessionKey>, Vec<SessionKey>)> {
    tunnels
        .iter()
        .map(|&t| (t, sessions_of(&sim.a, t), sessions_of(&sim.b, t)))
        .collect()
}

/// The tunnels left alone: the same SAs, READY, on both ends, and no event
/// about them on either.
fn assert_untouched(sim: &Sim, before: &[(TunnelId, Vec<SessionKey>, Vec<SessionKey>)]) {
    for (t, a, b) in before {
        assert_eq!(a.len(), 1, "A had one IKE SA for {t}");
        assert_eq!(a[0].3, "READY");
        assert_eq!(&sessions_of(&sim.a, *t), a, "A's SAs of {t} changed");
        assert_eq!(&sessions_of(&sim.b, *t), b, "B's SAs of {t} changed");
        assert!(
            !mentions(&sim.a.events, *t),
            "A: events about {t}: {:?}",
            sim.a.events
        );
        assert!(
            !mentions(&sim.b.events, *t),
            "B: events about {t}: {:?}",
            sim.b.events
        );
    }
}

fn tunnel_ids(peer: &Peer) -> Vec<TunnelId> {
    peer.ep.tunnels().iter().map(|t| t.id).collect()
}

#[test]
fn removing_a_tunnel_deletes_its_sas_on_both_ends_and_leaves_the_others_running() {
    let mut sim = three_tunnels_up(1);
    let before = snapshot(&sim, &[T1, T3]);
    let b_sent = sim.b.sent.len();

    sim.b.ep.remove_tunnel(sim.now, T2);
    // The daemon hears at once, before anything reaches the wire.
    sim.step(Duration::ZERO);
    assert_eq!(
        downs(&sim.b.events),
        vec![
            (T2, "child", DownReason::LocalDelete),
            (T2, "ike", DownReason::LocalDelete),
        ]
    );
    sim.step(Duration::from_secs(60));

    // The peer got the DELETE, from tunnel 2's address.
    assert!(sim.b.sent[b_sent..]
        .iter()
        .any(|(local, _, _)| local.ip() == IpAddr::V4(B2)));
    assert_eq!(
        downs(&sim.a.events),
        vec![
            (T2, "child", DownReason::PeerDelete),
            (T2, "ike", DownReason::PeerDelete),
        ]
    );
    assert_eq!(downs(&sim.b.events).len(), 2, "B: no second report");
    assert_untouched(&sim, &before);
    assert!(sessions_of(&sim.a, T2).is_empty());
    assert!(sessions_of(&sim.b, T2).is_empty());
    // The DELETE was answered: B forgot the SA.
    assert_eq!(sim.b.ep.ike_sa_count(), 2);
    assert_eq!(sim.a.ep.ike_sa_count(), 2);
    assert_eq!(tunnel_ids(&sim.b), vec![T1, T3]);
    assert!(sim.b.ep.tunnel(T2).is_none());
    assert_eq!(sim.b.ep.tunnel(T3).map(|t| t.local), Some(B3));

    // Tunnel 3, now second in B's list, still finds its configuration and
    // reports under its own id.
    let b3 = sessions_of(&sim.b, T3)[0].0;
    sim.b.ep.send_liveness_check(sim.now, b3);
    sim.step(Duration::from_secs(5));
    assert!(sim
        .b
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerAlive { id, tunnel } if *id == b3 && *tunnel == T3)));

    // The peer tries tunnel 2 again: B answers as it would any stranger,
    // statelessly, and A gives up.
    sim.a.events.clear();
    sim.b.events.clear();
    sim.a.ep.initiate(sim.now, T2);
    sim.step(Duration::from_secs(60));
    assert!(ike_up(&sim.a.events, T2).is_empty());
    assert!(!mentions(&sim.b.events, T2));
    assert_eq!(sim.b.ep.ike_sa_count(), 2, "B kept no state for tunnel 2");
    assert!(matches!(
        failures(&sim.a.events, T2).as_slice(),
        [FailureReason::NoProposalChosen { .. }]
    ));
    assert_eq!(sim.a.ep.ike_sa_count(), 2);
    assert_untouched(&sim, &before);
}

#[test]
fn an_sa_already_being_deleted_finishes_after_its_tunnel_is_removed_or_replaced() {
    let mut sim = three_tunnels_up(2);
    let before = snapshot(&sim, &[T3]);
    let b1 = sessions_of(&sim.b, T1)[0].0;
    let b2 = sessions_of(&sim.b, T2)[0].0;
    // Both DELETEs are still on the wire when the configuration changes.
    sim.b.ep.delete_ike_sa(sim.now, b1);
    sim.b.ep.delete_ike_sa(sim.now, b2);
    sim.b.ep.remove_tunnel(sim.now, T2);
    let (_, new_b1) = pair(1, A_ADDR, B_ADDR);
    sim.b.ep.replace_tunnel(sim.now, new_b1);
    sim.step(Duration::from_secs(60));

    for t in [T1, T2] {
        let only_once = vec![
            (t, "child", DownReason::LocalDelete),
            (t, "ike", DownReason::LocalDelete),
        ];
        let b: Vec<_> = downs(&sim.b.events)
            .into_iter()
            .filter(|d| d.0 == t)
            .collect();
        assert_eq!(b, only_once, "B reports {t} down once");
        let a: Vec<_> = downs(&sim.a.events)
            .into_iter()
            .filter(|d| d.0 == t)
            .collect();
        assert_eq!(a.len(), 2, "A hears of {t}'s DELETE once");
        assert!(a.iter().all(|d| d.2 == DownReason::PeerDelete));
    }
    assert_eq!(sim.b.ep.ike_sa_count(), 1, "both DELETEs were answered");
    assert_eq!(sim.a.ep.ike_sa_count(), 1);
    assert_eq!(tunnel_ids(&sim.b), vec![T1, T3]);
    assert_untouched(&sim, &before);
}

#[test]
fn replacing_a_tunnel_on_both_ends_renegotiates_it_with_the_new_key() {
    let mut sim = three_tunnels_up(3);
    let before = snapshot(&sim, &[T2, T3]);
    let old_a = sessions_of(&sim.a, T1);
    let old_b = sessions_of(&sim.b, T1);

    let new_key = b"tunnel 1 key, rotated";
    let a1 = TunnelConfig::new(T1, A_ADDR, B_ADDR, new_key);
    let b1 = TunnelConfig::new(T1, B_ADDR, A_ADDR, new_key);
    sim.a.ep.replace_tunnel(sim.now, a1);
    sim.b.ep.replace_tunnel(sim.now, b1);
    sim.a.ep.initiate(sim.now, T1);
    sim.step(Duration::from_secs(60));

    for (side, peer, old) in [("A", &sim.a, &old_a), ("B", &sim.b, &old_b)] {
        // The old SAs went down (each end deleted its own) before the new
        // ones came up.
        let events = &peer.events;
        let last_down = events
            .iter()
            .rposition(|e| matches!(e, Event::IkeSaDown { tunnel, .. } if *tunnel == T1));
        let first_up = events
            .iter()
            .position(|e| matches!(e, Event::IkeSaUp { tunnel, .. } if *tunnel == T1));
        assert!(last_down < first_up, "{side}: {events:?}");
        assert_eq!(
            downs(events),
            vec![
                (T1, "child", DownReason::LocalDelete),
                (T1, "ike", DownReason::LocalDelete),
            ],
            "{side}"
        );
        assert_eq!(ike_up(events, T1).len(), 1, "{side}: up again");
        assert_eq!(children_up(events, T1).len(), 1, "{side}: Child SA again");
        assert!(failures(events, T1).is_empty(), "{side}");

        let now = sessions_of(peer, T1);
        assert_eq!(now.len(), 1, "{side}: one IKE SA for tunnel 1");
        let (new, old) = (&now[0], &old[0]);
        assert_eq!(new.3, "READY");
        assert_ne!(new.0, old.0, "{side}: a new IKE SA");
        assert_ne!((new.1, new.2), (old.1, old.2), "{side}: new IKE SPIs");
        assert_ne!(new.4, old.4, "{side}: new Child SA SPIs");
        assert_eq!(peer.ep.ike_sa_count(), 3, "{side}: the old SA is gone");
    }
    // Both ends agree on the new SAs.
    let (a, b) = (&sessions_of(&sim.a, T1)[0], &sessions_of(&sim.b, T1)[0]);
    assert_eq!((a.1, a.2), (b.1, b.2));
    assert_eq!(a.4, vec![(b.4[0].1, b.4[0].0)]);
    assert_eq!(
        sim.a.ep.ike_keys_for_tests(a.0),
        sim.b.ep.ike_keys_for_tests(b.0)
    );
    assert_untouched(&sim, &before);
}

#[test]
fn replacing_a_tunnel_on_one_end_with_a_key_the_peer_lacks_fails_authentication_alone() {
    let mut sim = three_tunnels_up(4);
    let before = snapshot(&sim, &[T1, T2]);

    let a3 = TunnelConfig::new(T3, A3, B3, b"a key B has never heard of");
    sim.a.ep.replace_tunnel(sim.now, a3);
    sim.a.ep.initiate(sim.now, T3);
    sim.step(Duration::from_secs(60));

    assert_eq!(
        downs(&sim.a.events),
        vec![
            (T3, "child", DownReason::LocalDelete),
            (T3, "ike", DownReason::LocalDelete),
        ]
    );
    assert_eq!(
        downs(&sim.b.events),
        vec![
            (T3, "child", DownReason::PeerDelete),
            (T3, "ike", DownReason::PeerDelete),
        ]
    );
    // B (responder) cannot verify A's AUTH; A hears AUTHENTICATION_FAILED.
    for (side, peer) in [("A", &sim.a), ("B", &sim.b)] {
        assert!(ike_up(&peer.events, T3).is_empty(), "{side}");
        assert!(
            matches!(
                failures(&peer.events, T3).as_slice(),
                [FailureReason::AuthenticationFailed { .. }]
            ),
            "{side}: {:?}",
            peer.events
        );
        assert!(sessions_of(peer, T3).is_empty(), "{side}");
    }

    // The other way round fails alike: A (responder now) uses the new key.
    sim.a.events.clear();
    sim.b.events.clear();
    sim.b.ep.initiate(sim.now, T3);
    sim.step(Duration::from_secs(60));
    for (side, peer) in [("A", &sim.a), ("B", &sim.b)] {
        assert!(ike_up(&peer.events, T3).is_empty(), "{side}");
        assert!(
            matches!(
                failures(&peer.events, T3).as_slice(),
                [FailureReason::AuthenticationFailed { .. }]
            ),
            "{side}: {:?}",
            peer.events
        );
    }
    assert_untouched(&sim, &before);
    assert_eq!(sim.a.ep.ike_sa_count(), 2);
    assert_eq!(sim.b.ep.ike_sa_count(), 2);
}

#[test]
fn a_tunnel_added_at_run_time_comes_up_beside_the_others() {
    let mut sim = three_tunnels_up(5);
    let before = snapshot(&sim, &[T1, T2, T3]);

    let (a4, b4) = pair(4, A4, B4);
    assert_eq!(sim.a.ep.add_tunnel(a4), Ok(()));
    assert_eq!(sim.b.ep.add_tunnel(b4), Ok(()));
    assert_eq!(tunnel_ids(&sim.a), vec![T1, T2, T3, T4]);
    sim.a.ep.initiate(sim.now, T4);
    sim.step(Duration::from_secs(60));

    for (side, peer) in [("A", &sim.a), ("B", &sim.b)] {
        assert_eq!(ike_up(&peer.events, T4).len(), 1, "{side}");
        assert_eq!(children_up(&peer.events, T4).len(), 1, "{side}");
        assert!(downs(&peer.events).is_empty(), "{side}");
        let s = sessions_of(peer, T4);
        assert_eq!(s.len(), 1, "{side}");
        assert_eq!(s[0].3, "READY", "{side}");
        assert_eq!(peer.ep.ike_sa_count(), 4, "{side}");
    }
    assert_eq!(
        sessions_of(&sim.a, T4)[0].4,
        vec![(
            sessions_of(&sim.b, T4)[0].4[0].1,
            sessions_of(&sim.b, T4)[0].4[0].0
        )]
    );
    assert_untouched(&sim, &before);
}

#[test]
fn adding_a_tunnel_refuses_an_id_in_use_and_an_invalid_config() {
    let mut sim = three_tunnels_up(6);
    let (mut again, _) = pair(2, A4, B4);
    assert_eq!(
        sim.a.ep.add_tunnel(again.clone()),
        Err(ConfigError::DuplicateTunnel { id: T2 })
    );
    // The tunnel kept its settings.
    assert_eq!(sim.a.ep.tunnel(T2).map(|t| t.local), Some(A2));

    again.id = T4;
    again.ike_proposals.clear();
    assert_eq!(sim.a.ep.add_tunnel(again), Err(ConfigError::NoIkeProposal));
    assert!(sim.a.ep.tunnel(T4).is_none());
    assert_eq!(tunnel_ids(&sim.a), vec![T1, T2, T3]);
}

#[test]
fn replacing_an_unknown_tunnel_or_with_an_invalid_config_changes_nothing() {
    let mut sim = three_tunnels_up(7);
    let before = snapshot(&sim, &[T1, T2, T3]);

    let (unknown, _) = pair(4, A4, B4);
    sim.a.ep.replace_tunnel(sim.now, unknown);
    let (mut invalid, _) = pair(2, A2, B2);
    invalid.esp_suites.clear();
    sim.a.ep.replace_tunnel(sim.now, invalid);
    sim.step(Duration::from_secs(60));

    assert_eq!(tunnel_ids(&sim.a), vec![T1, T2, T3]);
    assert_eq!(sim.a.ep.tunnel(T2).map(|t| t.esp_suites.len()), Some(1));
    assert_untouched(&sim, &before);
    let log: Vec<String> = std::iter::from_fn(|| sim.a.ep.poll_log())
        .map(|l| l.text)
        .collect();
    assert!(
        log.iter().any(|l| l.contains("tunnel-ip4 not replaced")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.contains("tunnel-ip2 not replaced")),
        "{log:?}"
    );
}

#[test]
fn removing_a_tunnel_mid_negotiation_stops_it_quietly_on_that_end() {
    let (a1, b1) = pair(1, A_ADDR, B_ADDR);
    let (a2, b2) = pair(2, A2, B2);
    let mut sim = Sim::with_options(vec![a1, a2], vec![b1, b2], 8, opts(), opts());
    sim.a.aliases = vec![A2];
    sim.b.aliases = vec![B2];
    sim.a.ep.initiate(sim.now, T1);
    sim.step(Duration::from_secs(60));
    let before = snapshot(&sim, &[T1]);
    sim.a.events.clear();
    sim.b.events.clear();

    // A's IKE_SA_INIT reaches B (5 ms away), whose answer is on its way:
    // B holds a half-open SA for tunnel 2 when the tunnel goes.
    sim.a.ep.initiate(sim.now, T2);
    sim.step(Duration::from_millis(7));
    assert_eq!(sim.b.ep.ike_sa_count(), 2, "B has a half-open SA");
    let b_sent = sim.b.sent.len();
    sim.b.ep.remove_tunnel(sim.now, T2);
    assert_eq!(sim.b.ep.ike_sa_count(), 1, "B dropped it at once");

    // A's IKE_AUTH goes unanswered until A gives up.
    sim.step(Duration::from_secs(120));
    assert!(sim.b.events.is_empty(), "B: {:?}", sim.b.events);
    assert!(
        sim.b.sent[b_sent..]
            .iter()
            .all(|(local, _, _)| local.ip() != IpAddr::V4(B2)),
        "B said nothing more for tunnel 2"
    );
    assert!(matches!(
        failures(&sim.a.events, T2).as_slice(),
        [FailureReason::NoResponse { .. }]
    ));
    assert_eq!(sim.a.ep.ike_sa_count(), 1);

    // The same on the initiating end: A drops its own negotiation, and
    // the daemon hears nothing of it.
    sim.a.events.clear();
    sim.b.events.clear();
    let (_, b2) = pair(2, A2, B2);
    assert_eq!(sim.b.ep.add_tunnel(b2), Ok(()));
    sim.a.ep.initiate(sim.now, T2);
    sim.a.ep.remove_tunnel(sim.now, T2);
    assert_eq!(sim.a.ep.ike_sa_count(), 1);
    sim.step(Duration::from_secs(60));
    assert!(sim.a.events.is_empty(), "A: {:?}", sim.a.events);
    assert!(ike_up(&sim.b.events, T2).is_empty());
    assert_untouched(&sim, &before);
}
