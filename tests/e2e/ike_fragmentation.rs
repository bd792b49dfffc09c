//! IKE fragmentation (RFC 7383) between two xrsecd with 4096-bit RSA keys
//! and a chain of two certificates each (root CA -> intermediate -> end
//! entity, both routers sending the intermediate): IKE_AUTH is then about
//! 3 KB, over a path whose MTU is 1280 bytes (set on the veth) and whose
//! hosts drop IP fragments, as firewalls that refuse fragments do.
//!
//! With `ikev2 fragmentation` (the default) IKE_AUTH travels in RFC 7383
//! fragments that each fit the path, and the tunnel comes up. With `no
//! ikev2 fragmentation` on one side the SA does not negotiate fragmentation,
//! each IKE_AUTH goes whole, the IP layer cuts it, the fragments are dropped,
//! and `show ikev2 session` names the cause and the fix on both sides; the
//! fix applied with a reload brings the tunnel up.

use std::time::{Duration, Instant};

use xrsec_e2e::{
    make_certificate_chain, value_of, wait_converged, wait_for_log, with_certificates, Pair,
    PairConfig, INNER_A, INNER_B,
};
use xrsec_lab::{router_config, LabDir, Node, Signal, Topology, TopologyConfig, XrSuite};

/// The underlay MTU, below a 4096-bit IKE_AUTH with two certificates.
const PATH_MTU: u32 = 1280;
/// Every key: root, intermediate, both routers.
const RSA_BITS: u32 = 4096;
/// A debug build signs with a 4096-bit key slowly; a lost first IKE_SA_INIT
/// (the peer not yet listening) adds a retransmission.
const SETTLE: Duration = Duration::from_secs(90);
/// An unanswered IKE_AUTH is given up after six transmissions, 63 s, and
/// the other side's attempt may start later.
const GIVE_UP: Duration = Duration::from_secs(180);

/// Router A (10.99.0.1) and B (10.99.0.2) over a 1280-byte path that drops
/// IP fragments, authenticating with certificate chains; A has `a_prefix`
/// at the top of its configuration. The certificates' directory lives as
/// long as the daemons.
fn start(a_prefix: &str) -> (Pair, LabDir) {
    let topo = Topology::new(TopologyConfig::direct().with_mtu(PATH_MTU)).unwrap();
    let (a, b) = (topo.address(Node::A), topo.address(Node::B));
    let certs = LabDir::new("frag-certs").unwrap();
    make_certificate_chain(
        certs.path(),
        RSA_BITS,
        &[("router1", &a.to_string()), ("router2", &b.to_string())],
    );
    for node in [Node::A, Node::B] {
        topo.drop_ip_fragments(node).unwrap();
    }
    let suite = XrSuite::seed();
    let config_a = with_certificates(
        &router_config(a, b, INNER_A, &suite),
        certs.path(),
        "router1",
    );
    let config_b = with_certificates(
        &router_config(b, a, INNER_B, &suite),
        certs.path(),
        "router2",
    );
    let pair = PairConfig {
        topo,
        config_a: format!("{a_prefix}{config_a}"),
        config_b,
    }
    .start(&[], &[]);
    (pair, certs)
}

/// The N of xrsecd's `sent IKE_AUTH ... in N fragments` (or `received
/// IKE_AUTH ... (reassembled from N fragments)`) debug lines.
fn ike_auth_fragments(log: &str, verb: &str, before: &str) -> Vec<u32> {
    log.lines()
        .filter(|l| l.contains(&format!("{verb} IKE_AUTH ")))
        .filter_map(|l| {
            let (head, _) = l.rsplit_once(" fragments")?;
            let (_, n) = head.rsplit_once(before)?;
            n.parse().ok()
        })
        .collect()
}

#[test]
fn a_two_certificate_4096_bit_ike_auth_crosses_a_1280_byte_path_in_ike_fragments() {
    if xrsec_e2e::needs_root() {
        return;
    }
    xrsec_lab::ensure_packages().unwrap();
    let _serial = xrsec_e2e::serial();
    let (pair, _certs) = start("");
    wait_converged(&pair.a, &pair.b, SETTLE);
    for (d, name) in [(&pair.a, "A"), (&pair.b, "B")] {
        let log = d.log();
        // Each side's IKE_AUTH carries its end entity and the intermediate
        // (two CERT payloads), went out in fragments, and the peer's came
        // back together from fragments.
        assert!(
            log.lines()
                .any(|l| l.contains("sent IKE_AUTH ") && l.contains("CERT CERT")),
            "{name}: no IKE_AUTH with two CERT payloads:\n{log}"
        );
        let sent = ike_auth_fragments(&log, "sent", " in ");
        let received = ike_auth_fragments(&log, "received", "reassembled from ");
        assert!(
            sent.iter().any(|&n| n >= 3) && received.iter().any(|&n| n >= 3),
            "{name}: IKE_AUTH fragments sent {sent:?}, received {received:?}:\n{log}"
        );
        let text = d.xrsec(&["show", "ikev2", "session", "detail"]).unwrap();
        assert_eq!(
            value_of(&text, "Authentication(Sign/Verify)"),
            "RSA/RSA",
            "{text}"
        );
    }
    // Every IKE fragment fit the path: the IP layer cut nothing, so the
    // hosts' rule that drops IP fragments never fired.
    for node in [Node::A, Node::B] {
        assert_eq!(pair.topo.ip_fragments_dropped(node).unwrap(), 0, "{node:?}");
    }
    let p = pair.topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
    let p = pair.topo.ping(Node::B, INNER_A, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
}

#[test]
fn with_fragmentation_off_on_one_side_ike_auth_is_lost_and_show_names_cause_and_fix() {
    if xrsec_e2e::needs_root() {
        return;
    }
    xrsec_lab::ensure_packages().unwrap();
    let _serial = xrsec_e2e::serial();
    let (pair, _certs) = start("no ikev2 fragmentation\n!\n");
    let running = pair.a.xrsec(&["show", "running-config"]).unwrap();
    assert!(
        running.lines().any(|l| l == "no ikev2 fragmentation"),
        "{running}"
    );
    assert!(
        pair.a.log().contains("IKE fragmentation (RFC 7383): off"),
        "{}",
        pair.a.log()
    );

    // A initiates without offering fragmentation; so does B's own attempt
    // meet A's refusal. Each side's IKE_AUTH goes whole and is lost.
    let a_expects = [
        "no response to IKE_AUTH after 6 transmissions",
        "went unfragmented because IKE fragmentation (RFC 7383) is disabled on this end",
        "remove `no ikev2 fragmentation` from this router's configuration",
    ];
    let b_expects = [
        "no response to IKE_AUTH after 6 transmissions",
        "the peer does not support IKE fragmentation (RFC 7383)",
        "enable IKE fragmentation on the peer (`ikev2 fragmentation` on xrsec",
    ];
    let deadline = Instant::now() + GIVE_UP;
    let (mut a_seen, mut b_seen) = (None, None);
    while a_seen.is_none() || b_seen.is_none() {
        for (d, expects, seen) in [
            (&pair.a, &a_expects, &mut a_seen),
            (&pair.b, &b_expects, &mut b_seen),
        ] {
            let text = d.xrsec(&["show", "ikev2", "session"]).unwrap();
            if seen.is_none() && expects.iter().all(|e| text.contains(e)) {
                *seen = Some(text);
            }
        }
        assert!(
            Instant::now() < deadline,
            "A shows:\n{}\nB shows:\n{}\nA log:\n{}\nB log:\n{}",
            pair.a.xrsec(&["show", "ikev2", "session"]).unwrap(),
            pair.b.xrsec(&["show", "ikev2", "session"]).unwrap(),
            pair.a.log(),
            pair.b.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let a_text = a_seen.unwrap();
    eprintln!("A: {a_text}");
    // The reason is on the tunnel's `Reason` line, with the sizes.
    let reason = value_of(&a_text, "Reason");
    assert!(
        reason.contains("more than the fragment size 1280"),
        "{a_text}"
    );
    for d in [&pair.a, &pair.b] {
        let s = d.status().unwrap();
        assert!(s.tunnels.iter().all(|t| t.ipsec.is_none()), "{s:#?}");
    }
    // The whole IKE_AUTH left as IP fragments, which the path dropped.
    for node in [Node::A, Node::B] {
        let dropped = pair.topo.ip_fragments_dropped(node).unwrap();
        assert!(dropped >= 2, "{node:?} dropped {dropped} IP fragments");
    }
    let a_log = pair.a.log();
    assert!(
        a_log.contains("IKE_AUTH request 1 takes an IP datagram of"),
        "{a_log}"
    );

    // The fix, applied by a reload (SIGHUP): the tunnel's settings did not
    // change, so it keeps retrying, and its next IKE SA offers
    // fragmentation.
    let mut a = pair.a;
    let config = std::fs::read_to_string(a.config_path()).unwrap();
    let fixed = config.replacen("no ikev2 fragmentation\n", "", 1);
    assert_ne!(fixed, config);
    std::fs::write(a.config_path(), fixed).unwrap();
    a.signal(Signal::Hangup).unwrap();
    wait_for_log(
        &a,
        "IKE fragmentation (RFC 7383): offered, messages cut into IP datagrams of at most 1280 bytes from now on",
    );
    wait_converged(&a, &pair.b, GIVE_UP);
    let p = pair.topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
}
