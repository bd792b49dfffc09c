//! xrsecd's life as an operator sees it: refusing a broken configuration,
//! stopping cleanly and coming back, saying why a tunnel is down (no answer,
//! wrong key, nothing in common), renegotiating on `clear`, routing
//! `router static` prefixes into the tunnel, and what `xrsec` says when
//! there is no daemon at all.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use xrsec_control::{Status, TunnelState};
use xrsec_e2e::{
    value_of, values_of, wait_for, wait_for_log, wait_for_within, Pair, PairConfig, BRING_UP,
    INNER_B,
};
use xrsec_lab::{find_binary, Node, Topology, XrSuite, Xrsecd, LAB_PSK};

// --- (a) configuration errors ---------------------------------------------

/// The seed's own running-config has two errors (an undefined keyring, an
/// IOS-XR interface name as tunnel source): xrsecd refuses it with the
/// diagnostics and creates nothing.
#[test]
fn a_config_with_errors_is_refused_with_file_line_and_column_before_anything_is_created() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let PairConfig {
        topo,
        config_a: good,
        ..
    } = PairConfig::direct(&XrSuite::seed());
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/seed/router1-running.txt");
    let out = refused_start(&topo, &seed);
    let file = seed.display().to_string();
    assert!(
        out.contains(&format!("{file}:22:9: error: undefined keyring `key_mgmt`")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{file}:43:15: error: `MgmtEth0/RP0/CPU0/0`")),
        "{out}"
    );
    assert!(out.contains("has 2 errors"), "{out}");

    // A small file of our own with one wrong value: its line and column.
    let broken = good.replace(" dh-group 20", " dh-group 25");
    let line = broken.lines().position(|l| l == " dh-group 25").unwrap() + 1;
    let path = topo.dir().join("broken.conf");
    std::fs::write(&path, &broken).unwrap();
    let out = refused_start(&topo, &path);
    let at = format!("{}:{line}:11: error", path.display());
    assert!(out.contains(&at), "expected `{at}` in:\n{out}");
    assert!(out.contains("has 1 error "), "{out}");
}

/// Runs xrsecd in namespace a on `config` with a control socket and a
/// `--save-keys` directory that do not exist yet; checks that it exits with
/// 1 and leaves no socket, no key directory and no tunnel-ip1 behind.
/// Returns what it printed.
fn refused_start(topo: &Topology, config: &Path) -> String {
    let xrsecd = find_binary("xrsecd").unwrap().display().to_string();
    let run_dir = topo.dir().join("run");
    let control = run_dir.join("xrsecd.sock").display().to_string();
    let keys = topo.dir().join("keys");
    let keys_s = keys.display().to_string();
    let config_s = config.display().to_string();
    let out = topo
        .exec(
            Node::A,
            &[
                &xrsecd,
                "--config",
                &config_s,
                "--control",
                &control,
                "--save-keys",
                &keys_s,
            ],
        )
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("xrsecd: not starting"), "{text}");
    assert!(
        !run_dir.exists(),
        "the control socket's directory was created"
    );
    assert!(!keys.exists(), "the --save-keys directory was created");
    assert!(!link_exists(topo, Node::A, "tunnel-ip1"));
    text
}

// --- (b) SIGTERM, the peer's view, and the restart ---------------------------

#[test]
fn sigterm_removes_the_tunnel_tells_the_peer_and_the_peer_reconnects_after_a_restart() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let setup = PairConfig::direct(&XrSuite::seed());
    let ca = setup.config_a.clone();
    let mut pair = setup.start(&[], &[]);
    let (topo, da, db) = (&pair.topo, &mut pair.a, &pair.b);
    let (before, _) = wait_settled(da, db);
    assert!(link_exists(topo, Node::A, "tunnel-ip1"));

    assert!(
        da.stop().unwrap(),
        "xrsecd did not exit with 0 on SIGTERM:\n{}",
        da.log()
    );
    assert!(
        !link_exists(topo, Node::A, "tunnel-ip1"),
        "tunnel-ip1 outlived xrsecd"
    );
    assert!(!da.control().exists(), "the control socket outlived xrsecd");
    assert!(da.log().contains("SIGTERM"), "{}", da.log());

    // The peer heard the DELETE: its tunnel is down, and says why.
    let reason = wait_for(db, "B's tunnel to go down", |s| {
        let t = s.tunnel("tunnel-ip1").unwrap();
        t.state != TunnelState::Up && t.last_error.is_some()
    });
    let t = reason.tunnel("tunnel-ip1").unwrap();
    let error = t.last_error.as_deref().unwrap();
    assert!(error.contains("deleted by the peer"), "{error}");
    let session = db.xrsec(&["show", "ikev2", "session"]).unwrap();
    let why = values_of(&session, "Reason");
    assert!(
        why.iter().any(|r| r.contains("deleted by the peer")),
        "show ikev2 session on B:\n{session}"
    );
    let table = db.xrsec(&["show", "ipsec", "sa"]).unwrap();
    assert!(
        !table.contains(&format!(
            "0x{:08x}",
            before.tunnels[0].ipsec.as_ref().unwrap().inbound.spi
        )),
        "B still shows the deleted SA:\n{table}"
    );
    wait_for_log(db, "down: deleted by the peer");
    // The peer tries again by itself (after its back-off) while A is away.
    wait_for_log(db, "tunnel-ip1: initiating (attempt 2)");

    *da = Xrsecd::start(topo, Node::A, &ca, &[]).unwrap();
    let (sa, sb) = wait_settled(da, db);
    let t = sb.tunnel("tunnel-ip1").unwrap();
    assert_eq!(t.last_error, None, "B still reports an error once up again");
    assert_eq!(t.failures, 0);
    let old = before.tunnels[0].ipsec.as_ref().unwrap();
    let new = sa.tunnels[0].ipsec.as_ref().unwrap();
    assert_ne!(
        old.inbound.spi, new.inbound.spi,
        "new SAs after the restart"
    );
    let p = topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
    let session = db.xrsec(&["show", "ikev2", "session"]).unwrap();
    assert!(!session.contains("Reason"), "{session}");
}

// --- (c) a peer that never answers ------------------------------------------

/// Only router A runs. While it retransmits, `show` says it is negotiating;
/// after the last retransmission (1 + 2 + 4 + 8 + 16 + 32 s: about a minute
/// with the daemon's fixed schedule) it says the peer did not answer.
#[test]
fn a_peer_that_never_answers_is_shown_as_not_answering() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let PairConfig { topo, config_a, .. } = PairConfig::direct(&XrSuite::seed());
    let (a, b) = (topo.address(Node::A), topo.address(Node::B));
    let da = Xrsecd::start(&topo, Node::A, &config_a, &[]).unwrap();

    let s = da.status().unwrap();
    assert_eq!(
        s.tunnel("tunnel-ip1").unwrap().state,
        TunnelState::Negotiating
    );
    let session = da.xrsec(&["show", "ikev2", "session", "detail"]).unwrap();
    assert_eq!(
        value_of(&session, "Status(Description)"),
        "CONNECTING (IKE_SA_INIT sent)",
        "{session}"
    );
    assert_eq!(value_of(&session, "Role"), "Initiator");
    assert_eq!(
        value_of(&session, "Remote SPI"),
        "0000000000000000",
        "{session}"
    );
    assert!(
        session.contains(&format!("Tunnel tunnel-ip1 ({a} -> {b}): NEGOTIATING")),
        "{session}"
    );
    assert_eq!(value_of(&session, "Reason"), "negotiation in progress");
    let summary = da.xrsec(&["show", "ikev2", "summary"]).unwrap();
    assert_eq!(
        value_of(&summary, "Total Sa (Active/Negotiation)"),
        "1 (0/1)",
        "{summary}"
    );
    let table = da.xrsec(&["show", "ipsec", "sa"]).unwrap();
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("tunnel-ip1"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row, ["tunnel-ip1", "-", "-", "-", "NEGOTIATING"], "{table}");

    // The whole retransmission schedule runs out.
    let s = wait_for_within(&da, "a verdict", Duration::from_secs(150), |s| {
        s.tunnel("tunnel-ip1").unwrap().last_error.is_some()
    });
    let t = s.tunnel("tunnel-ip1").unwrap();
    let error = t.last_error.as_deref().unwrap();
    assert_eq!(
        error,
        "no response to IKE_SA_INIT after 6 transmissions: is the peer up and UDP 500/4500 open?"
    );
    assert_eq!(t.failures, 1);
    assert!(t.ipsec.is_none());
    let session = da.xrsec(&["show", "ikev2", "session"]).unwrap();
    let reason = value_of(&session, "Reason");
    assert!(reason.starts_with(error), "{session}");
    // ... and it tries again after its back-off.
    if t.state == TunnelState::Down {
        let retry = value_of(&session, "Retry in");
        assert!(retry.ends_with("s (attempt 2)"), "{session}");
    }
    wait_for_log(&da, "tunnel-ip1: initiating (attempt 2)");
}

// --- (d) wrong pre-shared key -------------------------------------------------

#[test]
fn a_wrong_pre_shared_key_is_shown_as_an_authentication_failure_on_both_sides() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let mut setup = PairConfig::direct(&XrSuite::seed());
    setup.config_b = setup
        .config_b
        .replace(LAB_PSK, "not-the-lab-key-0123456789");
    let pair = setup.start(&[], &[]);
    let (da, db) = (&pair.a, &pair.b);
    for d in [da, db] {
        let s = wait_for(d, "an authentication failure", |s| {
            s.tunnel("tunnel-ip1")
                .unwrap()
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("authentication failed"))
        });
        let t = s.tunnel("tunnel-ip1").unwrap();
        assert_ne!(t.state, TunnelState::Up);
        assert!(t.ipsec.is_none());
        let error = t.last_error.as_deref().unwrap();
        assert!(error.contains("pre-shared key"), "{error}");
        let session = d.xrsec(&["show", "ikev2", "session"]).unwrap();
        assert!(
            values_of(&session, "Reason")
                .iter()
                .any(|r| r.contains("authentication failed")),
            "{session}"
        );
    }
    // Each side both rejected the other's AUTH and was told its own was
    // rejected (both initiate).
    for d in [da, db] {
        wait_for_log(d, "does not match our pre-shared key");
        wait_for_log(d, "rejected our AUTH");
    }
    let p = pair.topo.ping(Node::A, INNER_B, 1).unwrap();
    assert_eq!(p.received, 0);
}

// --- (e) no proposal in common ------------------------------------------------

#[test]
fn no_common_ike_proposal_shows_both_offers_on_the_responder() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    // Same ESP; IKE differs in every transform.
    let suite_a = XrSuite::seed();
    let mut suite_b = XrSuite::new("aes-gcm-128", "", "sha-512", 31, &suite_a.esp_transform);
    suite_b.pfs_group = suite_a.pfs_group;
    let pair = PairConfig::direct_suites(&suite_a, &suite_b).start(&[], &[]);
    let (da, db) = (&pair.a, &pair.b);
    for (d, mine, theirs) in [(da, &suite_a, &suite_b), (db, &suite_b, &suite_a)] {
        // Both initiate, so each is in turn the responder (which sees both
        // offers) and the initiator (told NO_PROPOSAL_CHOSEN).
        let s = wait_for(d, "the responder's view of NO_PROPOSAL_CHOSEN", |s| {
            s.tunnel("tunnel-ip1")
                .unwrap()
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("no IKE proposal in common"))
        });
        let error = s.tunnel("tunnel-ip1").unwrap().last_error.clone().unwrap();
        let (offered, accepted) = error.split_once("; we accept").unwrap();
        assert_ike_offer(offered, theirs, &error);
        assert_ike_offer(accepted, mine, &error);
        wait_for_log(d, "NO_PROPOSAL_CHOSEN");
        assert_ne!(s.tunnel("tunnel-ip1").unwrap().state, TunnelState::Up);
    }
}

#[test]
fn no_common_esp_proposal_shows_both_offers_on_the_responder() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let suite_a = XrSuite::seed();
    let mut suite_b = suite_a.clone();
    suite_b.esp_transform = "esp-gcm-128".into();
    let pair = PairConfig::direct_suites(&suite_a, &suite_b).start(&[], &[]);
    let (da, db) = (&pair.a, &pair.b);
    // The IKE SA itself is fine, the Child SA is refused in IKE_AUTH: each
    // side must go on trying after its back-off (2 s, then 4 s), not sit on
    // an IKE SA without a Child SA.
    for d in [da, db] {
        wait_for(d, "the tunnel to go on retrying (a third failure)", |s| {
            s.tunnel("tunnel-ip1").unwrap().failures >= 3
        });
    }
    for (d, mine, theirs) in [
        (da, "AES-CBC-256", "AES-GCM"),
        (db, "AES-GCM", "AES-CBC-256"),
    ] {
        let s = wait_for(
            d,
            "the responder's view of an ESP NO_PROPOSAL_CHOSEN",
            |s| {
                s.tunnel("tunnel-ip1")
                    .unwrap()
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("no ESP proposal in common"))
            },
        );
        let error = s.tunnel("tunnel-ip1").unwrap().last_error.clone().unwrap();
        let (offered, accepted) = error.split_once("; we accept").unwrap();
        assert!(offered.contains(theirs), "the peer's offer: {error}");
        assert!(accepted.contains(mine), "our own: {error}");
        assert!(s.tunnel("tunnel-ip1").unwrap().ipsec.is_none());
    }
}

/// An IKE offer as the daemon describes it names the suite's cipher, PRF
/// and group.
fn assert_ike_offer(text: &str, suite: &XrSuite, whole: &str) {
    let upper = text.to_uppercase();
    let cipher = if suite.ike_encryption.contains("gcm") {
        "GCM"
    } else {
        "CBC"
    };
    assert!(upper.contains(cipher), "{cipher} not in `{text}` ({whole})");
    let bits = suite.ike_encryption.rsplit('-').next().unwrap();
    assert!(text.contains(bits), "{bits} not in `{text}` ({whole})");
    let prf_bits = suite.ike_prf.rsplit('-').next().unwrap();
    assert!(
        text.contains(prf_bits),
        "prf {prf_bits} not in `{text}` ({whole})"
    );
    let group = suite.ike_group.to_string();
    assert!(
        text.contains(&group),
        "group {group} not in `{text}` ({whole})"
    );
}

// --- (f) clear ----------------------------------------------------------------

#[test]
fn clear_ikev2_sa_and_clear_ipsec_sa_renegotiate_with_new_spis() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let pair = Pair::start(&XrSuite::seed());
    let (topo, da, db) = (&pair.topo, &pair.a, &pair.b);
    let (first, _) = wait_settled(da, db);

    let said = da.xrsec(&["clear", "ikev2", "sa"]).unwrap();
    assert!(said.contains("renegotiating"), "{said}");
    let second = wait_renegotiated(da, db, &first);
    let p = topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "after clear ikev2 sa: {p:?}");

    let said = da
        .xrsec(&["clear", "ipsec", "sa", "interface", "tunnel-ip1"])
        .unwrap();
    assert!(said.contains("tunnel-ip1"), "{said}");
    let third = wait_renegotiated(da, db, &second);
    let p = topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "after clear ipsec sa: {p:?}");
    let spi = |s: &Status| s.tunnels[0].ipsec.as_ref().unwrap().inbound.spi;
    assert_ne!(spi(&first), spi(&third));

    // An interface that does not exist: refused, naming the ones that do.
    let err = da
        .xrsec(&["clear", "ipsec", "sa", "interface", "tunnel-ip9"])
        .unwrap_err();
    assert!(err.to_string().contains("tunnel-ip9"), "{err}");
    assert!(err.to_string().contains("tunnel-ip1"), "{err}");
    assert!(err.to_string().contains("exit status: 1"), "{err}");
}

/// Waits until both sides are up again on SAs other than `old`'s.
fn wait_renegotiated(da: &Xrsecd, db: &Xrsecd, old: &Status) -> Status {
    let old_ike = old.sessions[0].ike_sas[0].local_spi;
    let old_esp = old.tunnels[0].ipsec.as_ref().unwrap().inbound.spi;
    let deadline = Instant::now() + BRING_UP;
    loop {
        let (sa, sb) = wait_settled(da, db);
        let ike = sa.sessions[0].ike_sas[0].local_spi;
        let esp = sa.tunnels[0].ipsec.as_ref().unwrap().inbound.spi;
        if ike != old_ike && esp != old_esp {
            assert_eq!(sb.tunnels[0].last_error, None);
            return sa;
        }
        assert!(
            Instant::now() < deadline,
            "still on the old SAs:\n{sa:#?}\n{}",
            da.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// --- (g) no daemon --------------------------------------------------------------

/// Needs neither root nor a daemon: runs unconditionally.
#[test]
fn without_a_daemon_xrsec_says_so_in_one_line_and_exits_3() {
    let xrsec = find_binary("xrsec").unwrap();
    let out = Command::new(xrsec)
        .args([
            "--control",
            "/nonexistent/xrsecd.sock",
            "show",
            "ikev2",
            "session",
        ])
        .env_remove("XRSEC_CONTROL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/xrsecd.sock"), "{stderr}");
    assert!(stderr.contains("not running"), "{stderr}");
}

// --- (h) router static --------------------------------------------------------

#[test]
fn router_static_routes_send_inner_prefixes_through_the_tunnel() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let mut setup = PairConfig::direct(&XrSuite::seed());
    let (lan_a, lan_b) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 2, 0, 1));
    setup.topo.add_loopback_addr(Node::A, lan_a).unwrap();
    setup.topo.add_loopback_addr(Node::B, lan_b).unwrap();
    let routes = |prefix: &str| {
        format!("router static\n address-family ipv4 unicast\n  {prefix} tunnel-ip1\n !\n!\n")
    };
    setup.config_a += &routes("10.2.0.0/24");
    setup.config_b += &routes("10.1.0.0/24");
    let mut pair = setup.start(&[], &[]);
    let (topo, da, db) = (&pair.topo, &mut pair.a, &pair.b);
    wait_settled(da, db);

    let route = topo
        .run(Node::A, &["ip", "route", "show", "10.2.0.0/24"])
        .unwrap();
    assert!(route.contains("dev tunnel-ip1"), "{route}");
    let before = da.status().unwrap().tunnels[0]
        .ipsec
        .as_ref()
        .unwrap()
        .outbound
        .packets;
    let p = topo.ping_from(Node::A, lan_a, lan_b, 3).unwrap();
    assert_eq!(p.received, 3, "10.1.0.1 -> 10.2.0.1: {p:?}");
    // The pings went through the tunnel, not around it.
    let after = da.status().unwrap().tunnels[0]
        .ipsec
        .as_ref()
        .unwrap()
        .outbound
        .packets;
    assert!(after >= before + 3, "outbound packets {before} -> {after}");

    assert!(da.stop().unwrap());
    let route = topo
        .run(Node::A, &["ip", "route", "show", "10.2.0.0/24"])
        .unwrap();
    assert!(route.trim().is_empty(), "route left behind: {route}");
}

// --- helpers ------------------------------------------------------------------

fn link_exists(topo: &Topology, node: Node, name: &str) -> bool {
    topo.exec(node, &["ip", "link", "show", name])
        .unwrap()
        .status
        .success()
}

/// Waits until each side has one READY IKE SA and the two agree on the
/// tunnel's SPIs.
fn wait_settled(da: &Xrsecd, db: &Xrsecd) -> (Status, Status) {
    xrsec_e2e::wait_converged(da, db, BRING_UP)
}
