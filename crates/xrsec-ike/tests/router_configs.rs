//! The lab's router configurations, mapped with `from_tunnel`, negotiate with
//! each other.

mod sim;

use sim::*;
use xrsec_crypto::{DhGroup, Encr, IntegId, PrfId};
use xrsec_ike::{from_tunnel, TunnelConfig};

fn load(name: &str, local: std::net::Ipv4Addr) -> TunnelConfig {
    let path = format!("{}/../../config/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = xrsec_config::parse_str(name, &text);
    assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics());
    let config = parsed.config.unwrap();
    let views = config.tunnels();
    assert_eq!(views.len(), 1);
    from_tunnel(&views[0], local).unwrap()
}

#[test]
fn router1_and_router2_configs_establish_with_each_other() {
    let r1 = load("router1.conf", A_ADDR);
    let r2 = load("router2.conf", B_ADDR);
    assert_eq!((r1.remote, r2.remote), (B_ADDR, A_ADDR));
    let mut sim = Sim::new(r1, r2, 40);
    sim.handshake();
    assert!(
        sim.a.failures().is_empty() && sim.b.failures().is_empty(),
        "{:?} {:?}",
        sim.a.failures(),
        sim.b.failures()
    );
    assert_same_keys(&sim);
    let s = &sim.a.ep.sessions()[0];
    let alg = s.algorithms.unwrap();
    assert_eq!(
        (alg.encr, alg.integ, alg.prf, alg.dh),
        (
            Encr::AesCbc256,
            Some(IntegId::HmacSha2_256_128),
            PrfId::HmacSha2_256,
            DhGroup::Ecp384
        )
    );
    assert_eq!(s.tunnel_name, "tunnel-ip1");
    assert_eq!(s.lifetime.as_secs(), 600);
    let c = sim.a.child_sas()[0];
    assert_eq!(c.suite.to_string(), "AES-CBC-256/HMAC-SHA-256-128");
    assert_eq!(c.lifetime.as_secs(), 600);
    assert_eq!(c.replay_window, 64);
    // Either router may start: router2 initiating works as well.
    let r1 = load("router1.conf", A_ADDR);
    let r2 = load("router2.conf", B_ADDR);
    let mut sim = Sim::new(r1, r2, 41);
    sim.b.ep.initiate(sim.now, xrsec_ike::TunnelId(1));
    sim.step(std::time::Duration::from_secs(10));
    assert_eq!(sim.a.child_sas().len(), 1, "{:?}", sim.a.failures());
    assert_eq!(sim.b.child_sas()[0].role, xrsec_crypto::Role::Initiator);
}
