//! SIGHUP: tunnels whose configuration did not change keep their SAs and
//! lose no packet; changed ones renegotiate; removed ones are deleted with a
//! DELETE to the peer; added ones come up; a broken file changes nothing; a
//! certificate and key renewed in place (same file names, same subject)
//! count as a change.

use std::net::Ipv4Addr;
use std::time::Duration;

use xrsec_control::{Status, TunnelState};
use xrsec_e2e::{
    make_certificates, renew_certificate, wait_converged, wait_for_log, wait_for_within,
    with_certificates, PairConfig, BRING_UP, INNER_B,
};
use xrsec_lab::{LabDir, Node, PingResult, Signal, Topology, XrSuite, Xrsecd, LAB_PSK};

/// How long each step of the test may take to settle after a reload.
const SETTLE: Duration = Duration::from_secs(20);

/// A second tunnel between a second pair of underlay addresses, with its own
/// policy, keyring and profiles.
fn tunnel_ip2(local: Ipv4Addr, remote: Ipv4Addr, inner: Ipv4Addr, psk: &str) -> String {
    format!(
        "ikev2 policy P2\n match address local {local}\n proposal LAB\n!\n\
         keyring K2\n peer PEER2\n  address {remote} 255.255.255.255\n  pre-shared-key {psk}\n !\n!\n\
         ikev2 profile I2\n keyring K2\n match identity remote address {remote} 255.255.255.255\n authentication local pre-shared\n authentication remote pre-shared\n!\n\
         ipsec profile S2\n set ikev2-profile I2\n set transform-set LAB\n!\n\
         interface tunnel-ip2\n ipv4 address {inner} 255.255.255.252\n tunnel mode ipsec ipv4\n tunnel source {local}\n tunnel destination {remote}\n tunnel protection ipsec profile S2\n!\n"
    )
}

fn spis(s: &Status, name: &str) -> Option<(u32, u32)> {
    let t = s.tunnels.iter().find(|t| t.name == name)?;
    let sa = t.ipsec.as_ref()?;
    Some((sa.inbound.spi, sa.outbound.spi))
}

/// Writes `config` as `d`'s configuration file and tells it to reload.
fn reload(d: &mut Xrsecd, config: &str) {
    std::fs::write(d.config_path(), config).unwrap();
    d.signal(Signal::Hangup).unwrap();
}

/// What `count` pings from A to `dst` printed, whatever ping's exit status.
fn fast_ping_output(topo: &Topology, dst: &str, count: u32) -> String {
    // 100 packets/s: what a reload must not interrupt.
    topo.run(
        Node::A,
        &[
            "ping",
            "-q",
            "-i",
            "0.01",
            "-W",
            "1",
            "-c",
            &count.to_string(),
            dst,
        ],
    )
    .unwrap_or_else(|e| e.message().to_string())
}

fn fast_ping(topo: &Topology, dst: &str, count: u32) -> PingResult {
    let out = fast_ping_output(topo, dst, count);
    PingResult::parse(&out).unwrap_or_else(|| panic!("no ping summary in {out}"))
}

#[test]
fn sighup_keeps_unchanged_tunnels_and_applies_changes() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let suite = XrSuite::new("aes-gcm-128", "", "sha-256", 19, "esp-gcm-128");
    let setup = PairConfig::direct(&suite);
    let topo = &setup.topo;
    let (a2, b2): (Ipv4Addr, Ipv4Addr) =
        ("10.99.0.11".parse().unwrap(), "10.99.0.12".parse().unwrap());
    topo.run(
        Node::A,
        &[
            "ip",
            "addr",
            "add",
            "10.99.0.11/24",
            "dev",
            xrsec_lab::HOST_UPLINK,
        ],
    )
    .unwrap();
    topo.run(
        Node::B,
        &[
            "ip",
            "addr",
            "add",
            "10.99.0.12/24",
            "dev",
            xrsec_lab::HOST_UPLINK,
        ],
    )
    .unwrap();
    let (base_a, base_b) = (setup.config_a.clone(), setup.config_b.clone());
    let mut pair = setup.start(&[], &[]);
    let (topo, da, db) = (&pair.topo, &mut pair.a, &mut pair.b);
    let (s, _) = xrsec_e2e::wait_converged(da, db, SETTLE);
    let ip1 = spis(&s, "tunnel-ip1").unwrap();

    // 1. Unchanged: the SAs stay and a 100 packets/s ping loses nothing.
    let out = std::thread::scope(|s| {
        let pinger = s.spawn(|| fast_ping_output(topo, "192.0.2.2", 300));
        std::thread::sleep(Duration::from_millis(500));
        da.signal(Signal::Hangup).unwrap();
        db.signal(Signal::Hangup).unwrap();
        pinger.join().unwrap()
    });
    let p = PingResult::parse(&out).unwrap();
    assert_eq!(
        (p.sent, p.received),
        (300, 300),
        "ping across an unchanged reload: {out}"
    );
    let s = da.status().unwrap();
    assert_eq!(
        spis(&s, "tunnel-ip1"),
        Some(ip1),
        "unchanged tunnel kept its SA"
    );
    assert!(
        da.log()
            .contains("reloaded: 1 tunnel(s) unchanged, 0 changed, 0 added, 0 removed"),
        "{}",
        da.log()
    );

    // 2. Added on both sides: tunnel-ip2 comes up, tunnel-ip1 untouched.
    // 3. tunnel-ip2's key changed on both: it renegotiates, tunnel-ip1 stays.
    let with_tunnel_ip2 = |da: &mut Xrsecd, db: &mut Xrsecd, psk: &str| {
        let (inner_a, inner_b) = ("192.0.2.5".parse().unwrap(), "192.0.2.6".parse().unwrap());
        let config_a = format!("{base_a}{}", tunnel_ip2(a2, b2, inner_a, psk));
        let config_b = format!("{base_b}{}", tunnel_ip2(b2, a2, inner_b, psk));
        std::fs::write(da.config_path(), config_a).unwrap();
        std::fs::write(db.config_path(), config_b).unwrap();
        da.signal(Signal::Hangup).unwrap();
        db.signal(Signal::Hangup).unwrap();
    };
    with_tunnel_ip2(da, db, LAB_PSK);
    let (s, _) = xrsec_e2e::wait_converged(da, db, SETTLE);
    assert_eq!(spis(&s, "tunnel-ip1"), Some(ip1));
    let ip2 = spis(&s, "tunnel-ip2").unwrap();
    assert_eq!(fast_ping(topo, "192.0.2.6", 20).received, 20);

    with_tunnel_ip2(da, db, "another-lab-key-7d2e9a41c0");
    let s = wait_for_within(da, "tunnel-ip2 renegotiated", SETTLE, |s| {
        spis(s, "tunnel-ip2").is_some_and(|x| x != ip2)
    });
    assert_eq!(spis(&s, "tunnel-ip1"), Some(ip1));
    let (s, _) = xrsec_e2e::wait_converged(da, db, SETTLE);
    assert_eq!(spis(&s, "tunnel-ip1"), Some(ip1));
    assert_eq!(fast_ping(topo, "192.0.2.6", 20).received, 20);

    // 4. A broken file: an error in the log, nothing changes.
    reload(
        da,
        &format!("{base_a}interface tunnel-ip2\n tunnel destination 10.99.0.300\n!\n"),
    );
    xrsec_e2e::wait_for_log_within(
        da,
        "keeping the running configuration",
        Duration::from_secs(5),
    );
    let s = da.status().unwrap();
    assert_eq!(spis(&s, "tunnel-ip1"), Some(ip1));
    assert!(spis(&s, "tunnel-ip2").is_some());

    // 5. Removed on A: A's interface is gone, B hears the DELETE.
    reload(da, &base_a);
    wait_for_within(da, "tunnel-ip2 gone", SETTLE, |s| {
        !s.tunnels.iter().any(|t| t.name == "tunnel-ip2")
    });
    let s = wait_for_within(db, "B's tunnel-ip2 down", SETTLE, |s| {
        s.tunnels
            .iter()
            .any(|t| t.name == "tunnel-ip2" && t.state != TunnelState::Up)
    });
    let t2 = s.tunnels.iter().find(|t| t.name == "tunnel-ip2").unwrap();
    assert!(
        t2.last_error
            .as_deref()
            .is_some_and(|e| e.contains("deleted by the peer")),
        "{t2:#?}"
    );
    assert!(topo
        .exec(Node::A, &["ip", "link", "show", "tunnel-ip2"])
        .map(|o| !o.status.success())
        .unwrap());
    assert_eq!(spis(&da.status().unwrap(), "tunnel-ip1"), Some(ip1));
    assert!(da.stop().unwrap());
    assert!(db.stop().unwrap());
}

#[test]
fn sighup_renegotiates_a_tunnel_whose_certificate_and_key_were_renewed_in_place() {
    if xrsec_e2e::needs_root() {
        return;
    }
    xrsec_lab::ensure_packages().unwrap();
    let _serial = xrsec_e2e::serial();
    let certs = LabDir::new("reload-certs").unwrap();
    let dir = certs.path();
    make_certificates(
        dir,
        2048,
        &[("router1", "10.99.0.1"), ("router2", "10.99.0.2")],
    );
    let mut pair = PairConfig::direct(&XrSuite::seed());
    pair.config_a = with_certificates(&pair.config_a, dir, "router1");
    pair.config_b = with_certificates(&pair.config_b, dir, "router2");
    let mut pair = pair.start(&[], &[]);
    let (before, _) = wait_converged(&pair.a, &pair.b, BRING_UP);
    let old = spis(&before, "tunnel-ip1").unwrap();

    // Same configuration text, same paths, same subject: only the files'
    // contents differ.
    let config = std::fs::read_to_string(pair.a.config_path()).unwrap();
    renew_certificate(dir, 2048, "router1", "10.99.0.1");
    reload(&mut pair.a, &config);
    wait_for_log(&pair.a, "tunnel-ip1: configuration changed: renegotiating");
    wait_for_log(
        &pair.a,
        "reloaded: 0 tunnel(s) unchanged, 1 changed, 0 added, 0 removed",
    );
    let (after, _) = wait_converged(&pair.a, &pair.b, BRING_UP);
    let new = spis(&after, "tunnel-ip1").unwrap();
    assert_ne!(new, old);
    let p = pair.topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");

    // Reloading the same files again changes nothing.
    reload(&mut pair.a, &config);
    wait_for_log(
        &pair.a,
        "reloaded: 1 tunnel(s) unchanged, 0 changed, 0 added, 0 removed",
    );
    let again = pair.a.status().unwrap();
    assert_eq!(spis(&again, "tunnel-ip1"), Some(new));
}
