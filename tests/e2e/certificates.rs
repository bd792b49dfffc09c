//! Two xrsecd authenticating with X.509 certificates (`authentication
//! rsa-signature`, `pki trustpoint`) made by strongSwan's own `pki`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use xrsec_e2e::{PairConfig, BRING_UP, INNER_B};
use xrsec_lab::{LabDir, Node, XrSuite, Xrsecd};

fn pki(args: &[&str], stdin_from: Option<&Path>, out: &Path) {
    let mut cmd = Command::new("pki");
    cmd.args(args);
    if let Some(p) = stdin_from {
        cmd.stdin(std::fs::File::open(p).unwrap());
    }
    let o = cmd.output().expect("strongSwan's pki (strongswan-pki)");
    assert!(
        o.status.success(),
        "pki {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(out, o.stdout).unwrap();
}

/// A CA and one certificate per router with its underlay address in the
/// subjectAltName; keys mode 0600.
fn make_certificates(dir: &Path, routers: &[(&str, &str)]) {
    let ca_key = dir.join("ca.key");
    pki(
        &[
            "--gen",
            "--type",
            "rsa",
            "--size",
            "2048",
            "--outform",
            "pem",
        ],
        None,
        &ca_key,
    );
    pki(
        &[
            "--self",
            "--ca",
            "--lifetime",
            "30",
            "--in",
            ca_key.to_str().unwrap(),
            "--dn",
            "CN=xrsec lab CA",
            "--outform",
            "pem",
        ],
        None,
        &dir.join("ca.crt"),
    );
    for (name, ip) in routers {
        let key = dir.join(format!("{name}.key"));
        pki(
            &[
                "--gen",
                "--type",
                "rsa",
                "--size",
                "2048",
                "--outform",
                "pem",
            ],
            None,
            &key,
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let public = dir.join(format!("{name}.pub"));
        pki(&["--pub", "--in", key.to_str().unwrap()], None, &public);
        pki(
            &[
                "--issue",
                "--cacert",
                dir.join("ca.crt").to_str().unwrap(),
                "--cakey",
                ca_key.to_str().unwrap(),
                "--dn",
                &format!("CN={name}"),
                "--san",
                ip,
                "--lifetime",
                "30",
                "--outform",
                "pem",
            ],
            Some(&public),
            &dir.join(format!("{name}.crt")),
        );
    }
}

/// Turns a generated PSK configuration into certificate authentication.
fn with_certificates(config: &str, dir: &Path, name: &str) -> String {
    let d = dir.display();
    config.replace(
        " authentication local pre-shared\n authentication remote pre-shared\n",
        " authentication local rsa-signature\n authentication remote rsa-signature\n pki trustpoint TP\n",
    ) + &format!(
        "crypto ca trustpoint TP\n ca-certificate {d}/ca.crt\n certificate {d}/{name}.crt\n private-key {d}/{name}.key\n!\n"
    )
}

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
    make_certificates(dir.path(), &[("router1", "10.99.0.1")]);
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
