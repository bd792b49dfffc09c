//! Two xrsecd with a real NAT between them (nftables masquerade on a router
//! namespace): NAT detection moves IKE to UDP 4500 and ESP into UDP 4500,
//! and traffic flows both ways.

use std::time::{Duration, Instant};
use xrsec_e2e::{PairConfig, BRING_UP, INNER_A, INNER_B};

use xrsec_lab::{Node, XrLifetimes, XrSuite};

#[test]
fn behind_a_nat_ike_and_esp_move_to_udp_4500() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let suite = XrSuite::new("aes-gcm-256", "", "sha-256", 19, "esp-gcm-256");
    let pair = PairConfig::behind_nat(&suite, &XrLifetimes::default()).start(&[], &[]);
    let public_a = pair.topo.a_as_seen_by_b();
    let (sa, sb) = xrsec_e2e::wait_converged_behind_nat(&pair.a, &pair.b, BRING_UP);

    let ready = |s: &xrsec_control::Status| {
        s.sessions[0]
            .ike_sas
            .iter()
            .find(|i| i.state == "READY")
            .cloned()
            .unwrap()
    };
    let (ike_a, ike_b) = (&ready(&sa), &ready(&sb));
    assert!(
        ike_a.nat_t && ike_b.nat_t,
        "NAT detected on both sides: {ike_a:#?} {ike_b:#?}"
    );
    assert_eq!(ike_a.local.port(), 4500, "IKE moved to 4500 on A");
    assert_eq!(ike_b.local.port(), 4500, "IKE moved to 4500 on B");
    assert_eq!(
        ike_b.remote.ip().to_string(),
        public_a.to_string(),
        "B sees the NAT's address"
    );
    assert_eq!(ike_a.role, "Initiator", "only A can open the NAT");
    let ipsec_a = sa.tunnels[0].ipsec.as_ref().unwrap();
    let ipsec_b = sb.tunnels[0].ipsec.as_ref().unwrap();
    assert!(
        ipsec_a.udp_encap && ipsec_b.udp_encap,
        "ESP in UDP on both sides"
    );

    for (from, to) in [(Node::A, INNER_B), (Node::B, INNER_A)] {
        let p = pair.topo.ping(from, to, 5).unwrap();
        assert_eq!(p.received, 5, "ping from {from:?} to {to}: {p:?}");
    }
    let text = pair
        .a
        .xrsec(&["show", "ipsec", "sa", "interface", "tunnel-ip1"])
        .unwrap();
    assert!(text.contains("ESP-in-UDP"), "{text}");
}

/// `--force-udp-encap` on one side only: without any NAT, both ends move to
/// UDP 4500 (the forcing side's NAT_DETECTION hash cannot match) and ESP
/// travels in UDP, which carries ping and TCP.
#[test]
fn force_udp_encap_on_one_side_puts_esp_in_udp_without_a_nat() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let suite = XrSuite::new("aes-gcm-128", "", "sha-256", 19, "esp-gcm-128");
    let pair = PairConfig::direct(&suite).start(&["--force-udp-encap"], &[]);
    let (sa, sb) = xrsec_e2e::wait_converged(&pair.a, &pair.b, BRING_UP);
    for s in [&sa, &sb] {
        let ike = &s.sessions[0].ike_sas[0];
        assert!(ike.nat_t, "{ike:#?}");
        assert_eq!(ike.local.port(), 4500);
        let ipsec = s.tunnels[0].ipsec.as_ref().unwrap();
        assert!(ipsec.udp_encap, "{ipsec:#?}");
    }
    let p = pair.topo.ping(Node::A, INNER_B, 5).unwrap();
    assert_eq!(p.received, 5, "{p:?}");
    let tcp = pair.topo.iperf3(Node::A, Node::B, INNER_B, 1, 1).unwrap();
    assert!(tcp.gbits_per_sec > 0.0, "{tcp:?}");
    let text = pair
        .a
        .xrsec(&["show", "ipsec", "sa", "interface", "tunnel-ip1"])
        .unwrap();
    assert!(text.contains("ESP-in-UDP 4500"), "{text}");
}

/// The router's conntrack forgets an assured UDP flow after this long
/// without a packet (the kernel's default is 120 s). Longer than the NAT
/// keepalive interval (20 s), shorter than the quiet spell below.
const MAPPING_TIMEOUT_SECS: u32 = 30;
/// How long A must have sent no ESP: past the mapping's timeout.
const QUIET_SECS: u64 = 40;
/// The longest wait for that quiet (the kernel may send a few packets of
/// its own into the TUN after it comes up).
const QUIET_WITHIN_SECS: u64 = 90;

/// RFC 3948 4: behind a NAT, A keeps its mapping open with NAT keepalives
/// while the tunnel is quiet, so B can still reach A afterwards (B cannot
/// open a mapping itself). No DPD on either side: nothing else is sent.
#[test]
fn behind_a_nat_keepalives_keep_the_mapping_through_a_quiet_spell() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let suite = XrSuite::new("aes-gcm-128", "", "sha-256", 19, "esp-gcm-128");
    let pair = PairConfig::behind_nat(&suite, &XrLifetimes::default()).start(&[], &[]);
    for sysctl in [
        format!("net.netfilter.nf_conntrack_udp_timeout_stream={MAPPING_TIMEOUT_SECS}"),
        format!("net.netfilter.nf_conntrack_udp_timeout={MAPPING_TIMEOUT_SECS}"),
    ] {
        pair.topo
            .run(Node::Router, &["sysctl", "-q", "-w", &sysctl])
            .unwrap_or_else(|e| panic!("{sysctl}: {e}"));
    }
    xrsec_e2e::wait_converged_behind_nat(&pair.a, &pair.b, BRING_UP);
    for (from, to) in [(Node::A, INNER_B), (Node::B, INNER_A)] {
        let p = pair.topo.ping(from, to, 3).unwrap();
        assert_eq!(p.received, 3, "before: ping from {from:?} to {to}: {p:?}");
    }
    // A's outbound ESP (SPI, packets): once it stops changing for longer
    // than the mapping lives, only keepalives can have kept the mapping.
    let sent_by_a = || {
        let s = pair.a.status().unwrap();
        let ipsec = s.tunnels[0].ipsec.clone();
        let o = ipsec
            .unwrap_or_else(|| panic!("A has no Child SA: {s:#?}"))
            .outbound;
        (o.spi, o.packets)
    };
    let start = Instant::now();
    let (mut last, mut since) = (sent_by_a(), Instant::now());
    while since.elapsed() < Duration::from_secs(QUIET_SECS) {
        assert!(
            start.elapsed() < Duration::from_secs(QUIET_WITHIN_SECS),
            "A kept sending ESP: never {QUIET_SECS} s without (last {last:?})"
        );
        std::thread::sleep(Duration::from_secs(1));
        let now = sent_by_a();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    // B first: its packets reach A only through A's mapping.
    for (from, to) in [(Node::B, INNER_A), (Node::A, INNER_B)] {
        let p = pair.topo.ping(from, to, 3).unwrap();
        assert_eq!(
            p.received,
            3,
            "after {QUIET_SECS} s of quiet (mappings time out after {MAPPING_TIMEOUT_SECS} s): ping from {from:?} to {to}: {p:?}\n--- router's conntrack ---\n{}\n--- A's log ---\n{}",
            pair.topo
                .run(Node::Router, &["conntrack", "-L", "-p", "udp"])
                .unwrap_or_else(|e| e.to_string()),
            pair.a.log()
        );
    }
}
