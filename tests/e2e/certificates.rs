//! Two xrsecd authenticating with X.509 certificates (`authentication
//! rsa-signature`, `pki trustpoint`) made by strongSwan's own `pki`.

use std::os::unix::fs::PermissionsExt;

use xrsec_e2e::{make_certificates, with_certificates, PairConfig, BRING_UP, INNER_B};
use xrsec_lab::{LabDir, Node, XrSuite, Xrsecd};

#[test]
fn two_xrsecd_authenticate_with_certificates_made_by_strongswan_pki() {
    if xrsec_e2e::needs_root() {
        return;
    }
    xrsec_lab::ensure_packages().unwrap();
    let _serial = xrsec_e2e::serial();
    let dir = LabDir::new("certs").unwrap();
    make_certificates(
        dir.path(),
        2048,
        &[("router1", "10.99.0.1"), ("router2", "10.99.0.2")],
    );
    let mut pair = PairConfig::direct(&XrSuite::seed());
    pair.config_a = with_certificates(&pair.config_a, dir.path(), "router1");
    pair.config_b = with_certificates(&pair.config_b, dir.path(), "router2");
    let pair = pair.start(&[], &[]);
    xrsec_e2e::wait_converged(&pair.a, &pair.b, BRING_UP);
    for d in [&pair.a, &pair.b] {
        let text = d.xrsec(&["show", "ikev2", "session", "detail"]).unwrap();
        let auth = xrsec_e2e::value_of(&text, "Authentication(Sign/Verify)");
        assert_eq!(auth, "RSA/RSA", "{text}");
    }
    let p = pair.topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
}

#[test]
fn a_private_key_readable_by_others_is_refused_at_start() {
    if xrsec_e2e::needs_root() {
        return;
    }
    xrsec_lab::ensure_packages().unwrap();
    let _serial = xrsec_e2e::serial();
    let dir = LabDir::new("certs").unwrap();
    make_certificates(dir.path(), 2048, &[("router1", "10.99.0.1")]);
    let key = dir.path().join("router1.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let pair = PairConfig::direct(&XrSuite::seed());
    let config = with_certificates(&pair.config_a, dir.path(), "router1");
    let err = match Xrsecd::start(&pair.topo, Node::A, &config, &[]) {
        Ok(_) => panic!("xrsecd started with a world-readable private key"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("0644") && err.contains("chmod 600"), "{err}");
    assert!(err.contains("router1.key"), "{err}");
}
