//! `SessionInfo::state_description`, the `Status(Description)` column of
//! `show ikev2 session`, at every step of a negotiation and its deletion.

mod sim;

use std::time::Duration;

use sim::*;
use xrsec_ike::{Endpoint, TunnelId};

fn states<R: xrsec_ike::rand_core::CryptoRngCore>(
    ep: &Endpoint<R>,
) -> Vec<(&'static str, &'static str)> {
    ep.sessions()
        .iter()
        .map(|s| (s.state, s.state_description))
        .collect()
}

#[test]
fn the_state_description_follows_each_step_of_the_negotiation_on_both_sides() {
    let (a, b) = tunnel_pair(b"secret");
    let mut sim = Sim::new(a, b, 95);
    sim.a.ep.initiate(sim.now, TunnelId(1));
    assert_eq!(
        states(&sim.a.ep),
        vec![("CONNECTING", "CONNECTING (IKE_SA_INIT sent)")]
    );
    assert!(states(&sim.b.ep).is_empty());

    // 5 ms later B has answered IKE_SA_INIT and waits for IKE_AUTH.
    sim.step(Duration::from_millis(5));
    assert_eq!(
        states(&sim.b.ep),
        vec![("CONNECTING", "CONNECTING (waiting for IKE_AUTH)")]
    );
    assert_eq!(
        states(&sim.a.ep),
        vec![("CONNECTING", "CONNECTING (IKE_SA_INIT sent)")]
    );

    // 5 ms more: A has the answer and has sent IKE_AUTH.
    sim.step(Duration::from_millis(5));
    assert_eq!(
        states(&sim.a.ep),
        vec![("CONNECTING", "CONNECTING (IKE_AUTH sent)")]
    );

    sim.step(Duration::from_secs(1));
    for ep_states in [states(&sim.a.ep), states(&sim.b.ep)] {
        assert_eq!(ep_states, vec![("READY", "READY (Negotiation done)")]);
    }

    let id = sim.a.ike_up()[0];
    sim.a.ep.delete_ike_sa(sim.now, id);
    assert_eq!(
        states(&sim.a.ep),
        vec![("DELETING", "DELETING (DELETE sent)")]
    );
    sim.step(Duration::from_secs(1));
    assert!(states(&sim.a.ep).is_empty() && states(&sim.b.ep).is_empty());
}
