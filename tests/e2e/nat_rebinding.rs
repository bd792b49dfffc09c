//! Two xrsecd with a real NAT between them (A behind it, A initiates), and
//! the NAT rebinds: it forgets A's mapping and gives A a new public port.
//!
//! RFC 7296 2.23: the peer not behind the NAT (B) moves the IKE SA to the
//! new address and port when an authenticated IKE message arrives from
//! there. Here that message is A's dead peer detection: after the
//! rebinding, B's packets to the old port are dropped by the NAT, A hears
//! nothing, and after `dpd INTERVAL` it sends a liveness check, which opens
//! the new mapping. ESP in UDP must follow the IKE SA on the same Child SA
//! (no renegotiation): otherwise B keeps sending ESP to the old port, where
//! the NAT drops it, and traffic is lost until the SA is renegotiated.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use xrsec_control::{IkeSa, Status};
use xrsec_e2e::{PairConfig, BRING_UP, INNER_A, INNER_B};
use xrsec_lab::{Node, Topology, XrLifetimes, XrSuite};

/// A's `dpd INTERVAL RETRIES`: a liveness check after 5 s without a word
/// from B. The retries are many so that A never declares B dead while the
/// test waits (10 x 5 s is longer than the bound below).
const DPD_INTERVAL_SECS: u32 = 5;
const DPD_RETRIES: u32 = 10;

/// The NAT's port after the rebinding (before it, the masquerade keeps A's
/// own 4500).
const REBOUND_PORT: u16 = 45000;

/// Pings each way at every check; all must be answered.
const PINGS: u32 = 3;

/// How long after the rebinding traffic must flow both ways again: A's DPD
/// interval (its liveness check moves B's IKE SA), and a margin.
fn recovery_bound() -> Duration {
    Duration::from_secs(u64::from(DPD_INTERVAL_SECS) + 15)
}

/// The READY IKE SA of tunnel-ip1, if exactly one.
fn ready(s: &Status) -> Result<&IkeSa, String> {
    let ready: Vec<&IkeSa> = s
        .sessions
        .iter()
        .filter(|x| x.tunnel == "tunnel-ip1")
        .flat_map(|x| x.ike_sas.iter())
        .filter(|i| i.state == "READY")
        .collect();
    match ready.as_slice() {
        [one] => Ok(one),
        other => Err(format!("{} READY IKE SAs for tunnel-ip1", other.len())),
    }
}

/// What a renegotiation would change: the READY IKE SA (its id and SPIs),
/// its Child SAs' SPIs, and the SPIs tunnel-ip1 runs on.
#[derive(Debug, PartialEq, Eq)]
struct Negotiated {
    ike_id: u64,
    ike_spis: (u64, u64),
    children: Vec<(u32, u32)>,
    tunnel_spis: Option<(u32, u32)>,
}

impl Negotiated {
    fn of(side: &str, s: &Status) -> Result<Negotiated, String> {
        let ike = ready(s).map_err(|e| format!("{side}: {e}"))?;
        Ok(Negotiated {
            ike_id: ike.id,
            ike_spis: (ike.local_spi, ike.remote_spi),
            children: ike.children.iter().map(|c| (c.spi_in, c.spi_out)).collect(),
            tunnel_spis: s
                .tunnel("tunnel-ip1")
                .and_then(|t| t.ipsec.as_ref())
                .map(|i| (i.inbound.spi, i.outbound.spi)),
        })
    }
}

/// Both daemons' `show` output and log tails, and the router's NAT state.
fn diagnostics(pair: &xrsec_e2e::Pair) -> String {
    let mut out = xrsec_e2e::show_both(&pair.a, &pair.b);
    for argv in [
        &["conntrack", "-L", "-p", "udp"][..],
        &["nft", "list", "table", "ip", "xrsec_lab"],
    ] {
        let text = match pair.topo.exec(Node::Router, argv) {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => e.to_string(),
        };
        out += &format!("--- router: {} ---\n{text}\n", argv.join(" "));
    }
    out
}

/// Pings A -> B and B -> A through the tunnel; None when every request
/// each way was answered, else what was not.
fn ping_problem(topo: &Topology) -> Option<String> {
    let mut problems = Vec::new();
    for (from, to) in [(Node::A, INNER_B), (Node::B, INNER_A)] {
        match topo.ping(from, to, PINGS) {
            Ok(p) if p.received == PINGS => {}
            Ok(p) => problems.push(format!(
                "ping {from:?} -> {to}: {}/{} answered",
                p.received, p.sent
            )),
            Err(e) => problems.push(format!("ping {from:?} -> {to}: {e}")),
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[test]
fn after_a_nat_rebinding_esp_follows_ike_to_the_new_port_on_the_same_child_sa() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let suite = XrSuite::new("aes-gcm-256", "", "sha-256", 19, "esp-gcm-256");
    // DPD on A only: A, behind the NAT, is the one that can reopen it. (B's
    // own liveness checks would go to the old port and could declare A dead.)
    let dpd = XrLifetimes {
        dpd: Some((DPD_INTERVAL_SECS, DPD_RETRIES)),
        ..XrLifetimes::default()
    };
    let config = PairConfig::behind_nat(&suite, &dpd);
    let public_a = config.topo.a_as_seen_by_b();
    let mut pair = config.start(&[], &[]);
    let (sa, sb) = xrsec_e2e::wait_converged_behind_nat(&pair.a, &pair.b, BRING_UP);

    // Before: NAT-T, B sees A at the NAT's address. Usually from A's own
    // port 4500, but not always: when B's own IKE_AUTH to the NAT's
    // 4500 (which the router, its destination, accepts) got there first,
    // that tuple is taken and the masquerade picks another port.
    let new_remote = SocketAddr::new(IpAddr::V4(public_a), REBOUND_PORT);
    let old_remote = {
        let (ike_a, ike_b) = (ready(&sa).unwrap(), ready(&sb).unwrap());
        assert!(ike_a.nat_t && ike_b.nat_t, "{ike_a:#?} {ike_b:#?}");
        assert_eq!(ike_a.role, "Initiator", "only A can open the NAT");
        assert!(
            ike_b.remote.ip() == IpAddr::V4(public_a) && ike_b.remote != new_remote,
            "B's IKE SA before the rebinding: remote {}\n{}",
            ike_b.remote,
            diagnostics(&pair)
        );
        ike_b.remote
    };
    if let Some(problem) = ping_problem(&pair.topo) {
        panic!("before the rebinding: {problem}\n{}", diagnostics(&pair));
    }
    let before_a = Negotiated::of("A", &sa).unwrap();
    let before_b = Negotiated::of("B", &sb).unwrap();
    eprintln!("before the rebinding: A {before_a:?}, B {before_b:?}, B sees A at {old_remote}");

    // The NAT forgets A's mapping; A's next packet gets port 45000.
    pair.topo.rebind_nat(REBOUND_PORT).unwrap();
    let rebound_at = Instant::now();
    let bound = recovery_bound();
    let deadline = rebound_at + bound;
    let mut moved_after = None;
    let mut last = String::from("never checked");
    let recovered_after = loop {
        let sb = pair.b.status().unwrap();
        match ready(&sb) {
            Ok(ike) if ike.remote == new_remote => {
                moved_after.get_or_insert_with(|| rebound_at.elapsed());
                match ping_problem(&pair.topo) {
                    None => break Some(rebound_at.elapsed()),
                    Some(problem) => {
                        last = format!("B's IKE SA moved to {new_remote}, but {problem}");
                    }
                }
            }
            Ok(ike) => {
                last = format!(
                    "B's IKE SA {} still sends to {} (not {new_remote})",
                    ike.id, ike.remote
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                last = format!("B: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if Instant::now() >= deadline {
            break None;
        }
    };
    let Some(recovered_after) = recovered_after else {
        panic!(
            "no traffic both ways within dpd {DPD_INTERVAL_SECS} s + 15 s = {bound:?} of the NAT rebinding \
             to {new_remote} (B's IKE SA moved {}): {last}\n{}",
            match moved_after {
                Some(t) => format!("after {t:.1?}"),
                None => "never".to_string(),
            },
            diagnostics(&pair)
        );
    };
    eprintln!(
        "B's IKE SA moved to {new_remote} {:.1?} after the rebinding; traffic both ways again after {recovered_after:.1?}",
        moved_after.unwrap_or_default()
    );

    // The same SAs, moved rather than renegotiated.
    let (sa, sb) = (pair.a.status().unwrap(), pair.b.status().unwrap());
    let after_a = Negotiated::of("A", &sa);
    let after_b = Negotiated::of("B", &sb);
    let mut problems = Vec::new();
    if after_a.as_ref() != Ok(&before_a) {
        problems.push(format!(
            "A renegotiated: before {before_a:?}, after {after_a:?}"
        ));
    }
    if after_b.as_ref() != Ok(&before_b) {
        problems.push(format!(
            "B renegotiated: before {before_b:?}, after {after_b:?}"
        ));
    }
    match sb.tunnel("tunnel-ip1").and_then(|t| t.ipsec.as_ref()) {
        Some(ipsec) if ipsec.remote == new_remote && ipsec.udp_encap => {}
        Some(ipsec) => problems.push(format!(
            "B's tunnel-ip1 ESP goes to {} (udp_encap {}), not {new_remote}",
            ipsec.remote, ipsec.udp_encap
        )),
        None => problems.push("B's tunnel-ip1 has no SA".to_string()),
    }
    for (side, d) in [("A", &pair.a), ("B", &pair.b)] {
        let log = d.log();
        let rekeys: Vec<&str> = xrsec_e2e::child_rekeys(&log)
            .into_iter()
            .chain(xrsec_e2e::ike_rekeys(&log))
            .chain(xrsec_e2e::logged_lines(&log, "dead peer"))
            .collect();
        if !rekeys.is_empty() {
            problems.push(format!("{side} logged: {rekeys:#?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "after the NAT rebinding:\n{}\n{}",
        problems.join("\n"),
        diagnostics(&pair)
    );
}
