//! Nothing from the network panics, and nothing unauthenticated changes an
//! established SA: every truncation and every byte flip of every message of a
//! handshake (and of a liveness exchange) is fed to both ends of an
//! established pair, which must keep their SAs exactly as they were and still
//! work afterwards.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use sim::*;
use xrsec_crypto::{DhGroup, Encr, EspSuite, IntegId, PrfId};
use xrsec_ike::{Event, IkeProposalConfig, IkeSaId, SessionInfo};

fn snapshot(sim: &Sim, a: IkeSaId, b: IkeSaId) -> (SessionInfo, SessionInfo, String, String) {
    let find = |s: Vec<SessionInfo>, id: IkeSaId| {
        s.into_iter()
            .find(|x| x.id == id)
            .expect("the established SA is still there")
    };
    let sa = find(sim.a.ep.sessions(), a);
    let sb = find(sim.b.ep.sessions(), b);
    // Keys compared through their constant-time equality, not printed.
    let ka = sim.a.ep.ike_keys_for_tests(a).unwrap().clone();
    let kb = sim.b.ep.ike_keys_for_tests(b).unwrap().clone();
    assert_eq!(ka, kb);
    (
        sa,
        sb,
        format!("{:?}", ka.sk_d.len()),
        format!("{:?}", kb.sk_ei.len()),
    )
}

fn every_mutation_leaves_the_established_sa_alone(
    configure: impl Fn(&mut xrsec_ike::TunnelConfig),
    seed: u64,
) {
    let (mut a, mut b) = tunnel_pair(b"robust");
    configure(&mut a);
    configure(&mut b);
    let mut sim = Sim::new(a, b, seed);
    sim.handshake();
    let (ida, idb) = (sim.a.ike_up()[0], sim.b.ike_up()[0]);
    let keys_a = sim.a.ep.ike_keys_for_tests(ida).unwrap().clone();
    // One liveness exchange so INFORMATIONAL messages are mutated too.
    sim.a.ep.send_liveness_check(sim.now, ida);
    sim.step(Duration::from_secs(2));
    let before = snapshot(&sim, ida, idb);
    let events_before = (sim.a.events.len(), sim.b.events.len());

    let mut messages: Vec<(SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
    messages.extend(sim.a.sent.iter().cloned());
    messages.extend(sim.b.sent.iter().cloned());
    assert_eq!(messages.len(), 6);
    let mut injected = 0usize;
    for (src, dst, bytes) in &messages {
        let mut variants: Vec<Vec<u8>> = (0..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0xff] {
                let mut v = bytes.clone();
                v[i] ^= mask;
                variants.push(v);
            }
        }
        for v in &variants {
            // To its receiver, and back to its sender.
            sim.inject_to_b(*src, *dst, v);
            sim.inject_to_a(*src, *dst, v);
            sim.inject_to_a(*dst, *src, v);
            sim.inject_to_b(*dst, *src, v);
            injected += 4;
        }
    }
    assert!(injected > 4000, "{injected}");
    let after = snapshot(&sim, ida, idb);
    assert_eq!(before, after);
    assert_eq!(sim.a.ep.ike_keys_for_tests(ida).unwrap(), &keys_a);
    // No established SA went down or changed; mutated IKE_SA_INIT requests
    // may have produced negotiation events of new half-open SAs only.
    for e in sim.a.events[events_before.0..]
        .iter()
        .chain(&sim.b.events[events_before.1..])
    {
        assert!(
            !matches!(
                e,
                Event::IkeSaDown { .. }
                    | Event::ChildSaDown { .. }
                    | Event::ChildSaUp(_)
                    | Event::IkeSaUp { .. }
                    | Event::PeerAddressChanged { .. }
            ),
            "{e:?}"
        );
    }
    // And the SA still works both ways.
    sim.a.ep.send_liveness_check(sim.now, ida);
    sim.b.ep.send_liveness_check(sim.now, idb);
    sim.step(Duration::from_secs(5));
    let alive = |e: &[Event]| {
        e.iter()
            .filter(|e| matches!(e, Event::PeerAlive { .. }))
            .count()
    };
    assert_eq!(alive(&sim.a.events), 2);
    assert_eq!(alive(&sim.b.events), 1);
}

#[test]
fn truncating_or_flipping_any_byte_of_any_message_never_changes_an_established_gcm_sa() {
    every_mutation_leaves_the_established_sa_alone(|_| {}, 50);
}

#[test]
fn truncating_or_flipping_any_byte_of_any_message_never_changes_an_established_cbc_sa() {
    every_mutation_leaves_the_established_sa_alone(
        |t| {
            t.ike_proposals = vec![IkeProposalConfig {
                encr: vec![Encr::AesCbc128],
                integ: vec![IntegId::HmacSha1_96],
                prf: vec![PrfId::HmacSha2_256],
                dh: vec![DhGroup::Curve25519],
            }];
            t.esp_suites =
                vec![EspSuite::new(Encr::AesCbc256, Some(IntegId::HmacSha2_256_128)).unwrap()];
        },
        51,
    );
}
