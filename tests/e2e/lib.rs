//! Shared pieces of the end-to-end tests (run as root by `scripts/test`):
//! the lock that runs them one at a time, two xrsecd started face to face
//! ([`Pair`]), waiting on a daemon's status or log, and reading the
//! `label : value` lines of `xrsec show`, and certificates made by
//! strongSwan's `pki`; and, in [`swan_common`], what the strongSwan interop
//! tests share.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xrsec_control::Status;
use xrsec_lab::{
    router_config, router_config_with, Node, Topology, TopologyConfig, XrLifetimes, XrSuite, Xrsecd,
};

pub mod swan_common;

/// tunnel-ip1's address on router A and on router B (one /30).
pub const INNER_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const INNER_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// Generous bound for a bring-up (one lost IKE_SA_INIT because the peer was
/// not listening yet, the duplicate of a simultaneous start to delete, a
/// retry after back-off): none of these tests measures speed.
pub const BRING_UP: Duration = Duration::from_secs(30);

/// The end-to-end tests bind UDP 500/4500 and create TUNs only inside their
/// own namespaces, but strongSwan's and iperf3's CPU use distorts the timing
/// of the others: run them one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the serial lock even if a previous test panicked holding it.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Skips (returns true) when not root, with a line saying so.
pub fn needs_root() -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_default();
    if uid != "0" {
        eprintln!("skipped: needs root (network namespaces, TUN)");
        return true;
    }
    false
}

/// Waits until the two daemons agree: on each side exactly one IKE SA per
/// session, READY, nothing else negotiating, and every tunnel's inbound SPI
/// on one side is the outbound SPI on the other. (A daemon started before
/// its peer may first come up as responder and then replace that SA with its
/// own once its retransmission gets through: "up" alone is not settled.)
pub fn wait_converged(
    a: &xrsec_lab::Xrsecd,
    b: &xrsec_lab::Xrsecd,
    timeout: std::time::Duration,
) -> (xrsec_control::Status, xrsec_control::Status) {
    wait_agreement(a, b, timeout, false)
}

/// As [`wait_converged`], but a negotiation that cannot complete may still
/// be retrying beside the READY SA (behind a NAT, the public side's own
/// initiation to the NAT's address is dropped until it gives up, after a
/// minute; it replaces nothing).
pub fn wait_converged_behind_nat(
    a: &xrsec_lab::Xrsecd,
    b: &xrsec_lab::Xrsecd,
    timeout: std::time::Duration,
) -> (xrsec_control::Status, xrsec_control::Status) {
    wait_agreement(a, b, timeout, true)
}

fn wait_agreement(
    a: &xrsec_lab::Xrsecd,
    b: &xrsec_lab::Xrsecd,
    timeout: std::time::Duration,
    allow_negotiating: bool,
) -> (xrsec_control::Status, xrsec_control::Status) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (sa, sb) = (a.status().unwrap(), b.status().unwrap());
        if agree(&sa, &sb, allow_negotiating) {
            return (sa, sb);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the two daemons did not converge in {timeout:?}:\nA: {sa:#?}\nB: {sb:#?}\nA's log:\n{}\nB's log:\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn agree(a: &xrsec_control::Status, b: &xrsec_control::Status, allow_negotiating: bool) -> bool {
    let settled = |s: &xrsec_control::Status| {
        s.sessions.iter().all(|x| {
            let ready = x.ike_sas.iter().filter(|i| i.state == "READY").count();
            ready == 1 && (allow_negotiating || x.ike_sas.len() == 1)
        })
    };
    if !settled(a) || !settled(b) {
        return false;
    }
    a.tunnels.iter().all(|ta| {
        if ta.state == xrsec_control::TunnelState::AdminDown {
            return true;
        }
        let Some(x) = &ta.ipsec else { return false };
        b.tunnels.iter().any(|tb| {
            tb.ipsec
                .as_ref()
                .is_some_and(|y| y.inbound.spi == x.outbound.spi && y.outbound.spi == x.inbound.spi)
        })
    })
}

/// Router A's and router B's configurations on their topology, before any
/// daemon runs: a test edits either first (a wrong key, extra routes), adds
/// addresses to the topology, or starts the daemons its own way.
pub struct PairConfig {
    pub topo: Topology,
    pub config_a: String,
    pub config_b: String,
}

impl PairConfig {
    /// Both routers on `suite` across a direct link.
    pub fn direct(suite: &XrSuite) -> PairConfig {
        PairConfig::direct_suites(suite, suite)
    }

    /// Across a direct link, tunnel-ip1 on [`INNER_A`] with `suite_a` and
    /// on [`INNER_B`] with `suite_b`.
    pub fn direct_suites(suite_a: &XrSuite, suite_b: &XrSuite) -> PairConfig {
        let topo = Topology::new(TopologyConfig::direct()).unwrap();
        let (a, b) = (topo.address(Node::A), topo.address(Node::B));
        PairConfig {
            config_a: router_config(a, b, INNER_A, suite_a),
            config_b: router_config(b, a, INNER_B, suite_b),
            topo,
        }
    }

    /// Both routers on `suite` with these lifetimes and DPD across a direct
    /// link.
    pub fn direct_with(suite: &XrSuite, lifetimes: &XrLifetimes) -> PairConfig {
        let topo = Topology::new(TopologyConfig::direct()).unwrap();
        let (a, b) = (topo.address(Node::A), topo.address(Node::B));
        PairConfig {
            config_a: router_config_with(a, b, INNER_A, suite, lifetimes),
            config_b: router_config_with(b, a, INNER_B, suite, lifetimes),
            topo,
        }
    }

    /// A behind the router's NAT (masquerade), both on `suite`, A with
    /// `lifetimes_a` (B with the defaults). B knows A only by the NAT's
    /// address; A identifies itself by its own (private) address, which
    /// B's profile accepts.
    pub fn behind_nat(suite: &XrSuite, lifetimes_a: &XrLifetimes) -> PairConfig {
        let topo = Topology::new(TopologyConfig::routed(true)).unwrap();
        let (a, b) = (topo.address(Node::A), topo.address(Node::B));
        let public_a = topo.a_as_seen_by_b();
        assert_ne!(public_a, a, "the NAT hides A's address");
        PairConfig {
            config_a: router_config_with(a, b, INNER_A, suite, lifetimes_a),
            config_b: router_config(b, public_a, INNER_B, suite).replace(
                &format!("match identity remote address {public_a} 255.255.255.255"),
                "match identity remote address 10.99.0.0 255.255.0.0",
            ),
            topo,
        }
    }

    /// Starts A with `args_a` (e.g. `--save-keys DIR`), then B with `args_b`.
    pub fn start(self, args_a: &[&str], args_b: &[&str]) -> Pair {
        let a = Xrsecd::start(&self.topo, Node::A, &self.config_a, args_a).unwrap();
        let b = Xrsecd::start(&self.topo, Node::B, &self.config_b, args_b).unwrap();
        Pair {
            a,
            b,
            topo: self.topo,
        }
    }
}

/// Router A and router B, each running xrsecd in its namespace of `topo`.
///
/// The daemons are declared before the topology so that they are stopped
/// (and send their DELETEs) before the namespaces go away.
pub struct Pair {
    pub a: Xrsecd,
    pub b: Xrsecd,
    pub topo: Topology,
}

impl Pair {
    /// Both routers on `suite` across a direct link, A started first.
    pub fn start(suite: &XrSuite) -> Pair {
        PairConfig::direct(suite).start(&[], &[])
    }
}

/// Polls `d`'s status until `ok` holds (or fails after [`BRING_UP`]).
pub fn wait_for(d: &Xrsecd, what: &str, ok: impl Fn(&Status) -> bool) -> Status {
    wait_for_within(d, what, BRING_UP, ok)
}

/// [`wait_for`] with another bound.
pub fn wait_for_within(
    d: &Xrsecd,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&Status) -> bool,
) -> Status {
    let deadline = Instant::now() + timeout;
    loop {
        let s = d.status().unwrap();
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {what}:\n{s:#?}\nlog:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `d`'s log until it contains `text` (or fails after [`BRING_UP`]).
pub fn wait_for_log(d: &Xrsecd, text: &str) {
    wait_for_log_within(d, text, BRING_UP);
}

/// [`wait_for_log`] with another bound.
pub fn wait_for_log_within(d: &Xrsecd, text: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !d.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "`{text}` never logged:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every value of `label` in a show output's `label : value` lines, in order.
pub fn values_of<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.split_once(" : "))
        .filter(|(k, _)| k.trim_end() == label)
        .map(|(_, v)| v.trim())
        .collect()
}

/// The value of `label`, which must appear once (`Session ID` appears twice
/// in `show ikev2 session detail`).
pub fn value_of<'a>(text: &'a str, label: &str) -> &'a str {
    let v = values_of(text, label);
    assert_eq!(v.len(), 1, "`{label}` should appear once in:\n{text}");
    v[0]
}

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

/// With strongSwan's `pki`, in `dir`: a CA (`ca.key`, `ca.crt`) and for each
/// `(name, address)` an RSA key of `bits` bits (`NAME.key`, mode 0600) and a
/// certificate issued by that CA with the address in its subjectAltName
/// (`NAME.crt`).
pub fn make_certificates(dir: &Path, bits: u32, routers: &[(&str, &str)]) {
    let (ca_key, _) = rsa_key(dir, "ca", bits);
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
        let (_, public) = rsa_key(dir, name, bits);
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

/// `NAME.key` (RSA of `bits` bits, mode 0600) and `NAME.pub` in `dir`.
fn rsa_key(dir: &Path, name: &str, bits: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let bits = bits.to_string();
    pki(
        &[
            "--gen",
            "--type",
            "rsa",
            "--size",
            &bits,
            "--outform",
            "pem",
        ],
        None,
        &key,
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public = dir.join(format!("{name}.pub"));
    pki(&["--pub", "--in", key.to_str().unwrap()], None, &public);
    (key, public)
}

/// Issues a 30-day certificate for the public key `public` with `issuer`'s
/// `.crt` and `.key` in `dir`; `extra` adds `--san ...` or `--ca`.
fn issue(dir: &Path, issuer: &str, dn: &str, extra: &[&str], public: &Path, out: &Path) {
    let cacert = dir.join(format!("{issuer}.crt"));
    let cakey = dir.join(format!("{issuer}.key"));
    let mut args = vec![
        "--issue",
        "--cacert",
        cacert.to_str().unwrap(),
        "--cakey",
        cakey.to_str().unwrap(),
        "--dn",
        dn,
        "--lifetime",
        "30",
        "--outform",
        "pem",
    ];
    args.extend(extra);
    pki(&args, Some(public), out);
}

/// Renews `NAME.key` and `NAME.crt` in a [`make_certificates`] directory:
/// a new key, and a certificate under the same subject and address from
/// the same CA (what an operator's renewal writes over the old files).
pub fn renew_certificate(dir: &Path, bits: u32, name: &str, ip: &str) {
    let (_, public) = rsa_key(dir, name, bits);
    issue(
        dir,
        "ca",
        &format!("CN={name}"),
        &["--san", ip],
        &public,
        &dir.join(format!("{name}.crt")),
    );
}

/// As [`make_certificates`], but through an intermediate CA: `ca.key` and
/// `ca.crt` (the root, which both routers trust), `intermediate.key` and
/// `intermediate.crt` (CA:TRUE, issued by the root), and for each router
/// `NAME.key` and `NAME.crt` holding its end-entity certificate, issued by
/// the intermediate, followed by the intermediate's (so that the router
/// sends both: two CERT payloads).
pub fn make_certificate_chain(dir: &Path, bits: u32, routers: &[(&str, &str)]) {
    make_certificates(dir, bits, &[]);
    let (_, public) = rsa_key(dir, "intermediate", bits);
    let intermediate = dir.join("intermediate.crt");
    issue(
        dir,
        "ca",
        "CN=xrsec lab intermediate",
        &["--ca"],
        &public,
        &intermediate,
    );
    for (name, ip) in routers {
        let (_, public) = rsa_key(dir, name, bits);
        let end_entity = dir.join(format!("{name}.ee.crt"));
        issue(
            dir,
            "intermediate",
            &format!("CN={name}"),
            &["--san", ip],
            &public,
            &end_entity,
        );
        let mut chain = std::fs::read(&end_entity).unwrap();
        chain.extend(std::fs::read(&intermediate).unwrap());
        std::fs::write(dir.join(format!("{name}.crt")), chain).unwrap();
    }
}

/// Turns a generated PSK configuration into certificate authentication with
/// `dir`'s CA and `name`'s certificate and key (from [`make_certificates`]).
pub fn with_certificates(config: &str, dir: &Path, name: &str) -> String {
    let d = dir.display();
    config.replace(
        " authentication local pre-shared\n authentication remote pre-shared\n",
        " authentication local rsa-signature\n authentication remote rsa-signature\n pki trustpoint TP\n",
    ) + &format!(
        "crypto ca trustpoint TP\n ca-certificate {d}/ca.crt\n certificate {d}/{name}.crt\n private-key {d}/{name}.key\n!\n"
    )
}

/// The last `n` lines of `text`, for a failure message.
pub fn tail(text: &str, n: usize) -> String {
    last_matching(text, n, |_| true).1
}

/// How many lines of `text` `keep` accepts, and the last `n` of them.
pub fn last_matching(text: &str, n: usize, keep: impl Fn(&str) -> bool) -> (usize, String) {
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    (
        lines.len(),
        lines[lines.len().saturating_sub(n)..].join("\n"),
    )
}

/// Whether a line of xrsecd's log is about an SA coming, going or
/// rekeying, at INFO or above: the timeline a failure is read against.
pub fn is_sa_lifecycle(line: &str) -> bool {
    !line.contains(" DEBUG ")
        && !line.contains(" TRACE ")
        && !line.contains(" config: ")
        && [
            "rekey",
            " up ",
            " down",
            "dead peer",
            "initiating",
            "lifetime",
            "INITIAL_CONTACT",
        ]
        .iter()
        .any(|w| line.contains(w))
}

/// The lines of a daemon log at level INFO that contain `text` (a debug
/// trace of the same event is not counted again).
pub fn info_lines<'a>(log: &'a str, text: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| l.contains(" INFO ") && l.contains(text))
        .collect()
}

/// The lines of a daemon log at level INFO, WARN or ERROR that contain
/// `text`: what it tells an operator, not its debug trace.
pub fn logged_lines<'a>(log: &'a str, text: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| {
            [" INFO ", " WARN ", " ERROR "]
                .iter()
                .any(|level| l.contains(level))
                && l.contains(text)
        })
        .collect()
}

/// The completed Child SA rekeys a daemon logged (`tunnel-ip1: Child SA
/// rekeyed: SPI in 0x... -> 0x..., out ...`), one line per rekey; not the
/// retired SA's `down: rekeyed (...)`.
pub fn child_rekeys(log: &str) -> Vec<&str> {
    info_lines(log, "Child SA rekeyed")
}

/// The completed IKE SA rekeys a daemon logged (`tunnel-ip1: IKE SA 3
/// rekeyed: now IKE SA 5`, or `IKE SA rekeyed`), one line per rekey. Not
/// the SAs a rekey retires (`Child SA 0x.../0x... (IKE SA 6) down: rekeyed
/// (...)`) nor a collision's loser (`redundant: both peers rekeyed ...`).
pub fn ike_rekeys(log: &str) -> Vec<&str> {
    info_lines(log, "rekeyed")
        .into_iter()
        .filter(|l| {
            l.match_indices("IKE SA ").any(|(at, m)| {
                l[at + m.len()..]
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .trim_start()
                    .starts_with("rekeyed")
            })
        })
        .collect()
}

/// The CREATE_CHILD_SA requests rekeying a Child SA (`N(REKEY_SA)`) in a
/// daemon's debug trace of IKE messages (`sent CREATE_CHILD_SA request 2 [
/// N(REKEY_SA) SA No KE TSi TSr ]`, or `received`), with their payloads.
pub fn child_rekey_requests(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("CREATE_CHILD_SA request") && l.contains("N(REKEY_SA)"))
        .collect()
}

/// Each side's state once a rekey or a restart has settled: one session for
/// tunnel-ip1, UP-ACTIVE, holding one READY IKE SA with one Child SA; the
/// tunnel up on that Child SA's pair of SPIs; and each side's inbound SPIs
/// (IKE and ESP) the other's outbound.
pub fn one_sa_pair_each(a: &Status, b: &Status) -> Result<(), String> {
    let one = |side: &str, s: &Status| -> Result<(u64, u64, u32, u32), String> {
        let sessions: Vec<_> = s
            .sessions
            .iter()
            .filter(|x| x.tunnel == "tunnel-ip1")
            .collect();
        let [session] = sessions.as_slice() else {
            return Err(format!(
                "{side}: {} sessions for tunnel-ip1",
                sessions.len()
            ));
        };
        let [ike] = session.ike_sas.as_slice() else {
            let ids: Vec<_> = session
                .ike_sas
                .iter()
                .map(|i| format!("IKE SA {} {}", i.id, i.state))
                .collect();
            return Err(format!("{side}: {} IKE SAs: {ids:?}", ids.len()));
        };
        if session.status != "UP-ACTIVE" || ike.state != "READY" {
            return Err(format!(
                "{side}: session {}, IKE SA {} {}",
                session.status, ike.id, ike.state
            ));
        }
        let [child] = ike.children.as_slice() else {
            let spis: Vec<_> = ike
                .children
                .iter()
                .map(|c| format!("in 0x{:08x} out 0x{:08x}", c.spi_in, c.spi_out))
                .collect();
            return Err(format!("{side}: {} Child SAs: {spis:?}", spis.len()));
        };
        let tunnel = s
            .tunnel("tunnel-ip1")
            .ok_or_else(|| format!("{side}: no tunnel-ip1"))?;
        let Some(ipsec) = tunnel.ipsec.as_ref() else {
            return Err(format!(
                "{side}: tunnel-ip1 {:?} without an SA",
                tunnel.state
            ));
        };
        if (ipsec.inbound.spi, ipsec.outbound.spi) != (child.spi_in, child.spi_out) {
            return Err(format!(
                "{side}: the tunnel runs on in 0x{:08x} out 0x{:08x}, the Child SA is in 0x{:08x} out 0x{:08x}",
                ipsec.inbound.spi, ipsec.outbound.spi, child.spi_in, child.spi_out
            ));
        }
        Ok((ike.local_spi, ike.remote_spi, child.spi_in, child.spi_out))
    };
    let (ike_la, ike_ra, in_a, out_a) = one("A", a)?;
    let (ike_lb, ike_rb, in_b, out_b) = one("B", b)?;
    if (ike_la, ike_ra) != (ike_rb, ike_lb) {
        return Err(format!(
            "IKE SPIs not mirrored: A local {ike_la:016X} remote {ike_ra:016X}, B local {ike_lb:016X} remote {ike_rb:016X}"
        ));
    }
    if (in_a, out_a) != (out_b, in_b) {
        return Err(format!(
            "ESP SPIs not mirrored: A in 0x{in_a:08x} out 0x{out_a:08x}, B in 0x{in_b:08x} out 0x{out_b:08x}"
        ));
    }
    Ok(())
}

/// Polls both daemons (`xrsec --json show ikev2 session detail`, as a
/// script would) until [`one_sa_pair_each`] holds; on timeout, the reason,
/// both sides' `show ikev2 session detail` and `show ipsec sa`, and the
/// logs' tails.
pub fn wait_one_sa_pair_each(
    a: &Xrsecd,
    b: &Xrsecd,
    timeout: Duration,
) -> Result<(Status, Status), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let args = ["show", "ikev2", "session", "detail"];
        let (sa, sb) = match (a.xrsec_json_status(&args), b.xrsec_json_status(&args)) {
            (Ok(sa), Ok(sb)) => (sa, sb),
            (Err(e), _) | (_, Err(e)) => return Err(format!("xrsec --json show: {e}")),
        };
        let why = match one_sa_pair_each(&sa, &sb) {
            Ok(()) => return Ok((sa, sb)),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "not one IKE SA and one Child SA pair on each side after {timeout:?}: {why}\n{}",
                show_both(a, b)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Both sides' `show ikev2 session detail` and `show ipsec sa`, and the last
/// 40 lines of their logs.
pub fn show_both(a: &Xrsecd, b: &Xrsecd) -> String {
    let mut out = String::new();
    for (side, d) in [("A", a), ("B", b)] {
        for args in [
            &["show", "ikev2", "session", "detail"][..],
            &["show", "ipsec", "sa"],
        ] {
            let text = d.xrsec(args).unwrap_or_else(|e| e.to_string());
            out += &format!("--- {side}: xrsec {} ---\n{text}\n", args.join(" "));
        }
        out += &format!("--- {side}: log (tail) ---\n{}\n", tail(&d.log(), 40));
    }
    out
}

/// The `ping -i` of a 100 packets/s stream. Not 10 ms: asked for exactly
/// 0.010 s, Debian's iputils ping (20221126) sends about 63 a second; asked
/// for 0.009 s, 103-111 (measured on loopback: 300 pings took 4.78 s and
/// 2.69 s on 2026-11-22).
pub const PING_INTERVAL: Duration = Duration::from_millis(9);

/// Fewer requests a second than this and a ping stream is not the 100
/// packets/s asked for (ping falls behind on a loaded machine).
pub const MIN_PING_RATE: u32 = 80;

/// What is wrong with a ping stream of `secs` at `interval` that should have
/// lost nothing: losses (named, with their send times), or too few requests
/// sent. Prints the rate ping achieved.
pub fn ping_problem(
    report: &xrsec_lab::Result<xrsec_lab::PingReport>,
    what: &str,
    secs: u32,
    interval: Duration,
) -> Option<String> {
    let p = match report {
        Ok(p) => p,
        Err(e) => return Some(format!("{what}: {e}")),
    };
    let rate = f64::from(p.summary.sent) / f64::from(secs);
    eprintln!(
        "{what}: {} sent in {secs} s ({rate:.0}/s, {:.0}/s asked), {} answered",
        p.summary.sent,
        1.0 / interval.as_secs_f64(),
        p.summary.received
    );
    if !p.unanswered.is_empty() {
        let average = Duration::from_secs(u64::from(secs)) / p.summary.sent.max(1);
        return Some(format!(
            "{what}: {} of {} requests unanswered ({rate:.0}/s; times after the first request, at that rate): {}",
            p.unanswered.len(),
            p.summary.sent,
            p.describe_losses(average)
        ));
    }
    if p.summary.sent < secs * MIN_PING_RATE {
        return Some(format!(
            "{what}: only {} requests in {secs} s ({rate:.0}/s, fewer than {MIN_PING_RATE}/s): the machine is too loaded to call this continuous",
            p.summary.sent
        ));
    }
    None
}

/// Now, as the daemons' log lines print it (UTC; charon prints local time,
/// which is UTC on the lab machines).
pub fn wall_clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-11-22T16:20:25.694030Z  INFO tunnel-ip1: Child SA rekeyed: SPI in 0x1234abcd -> 0x0000beef, out 0x1 -> 0x2
2026-11-22T16:20:25.694031Z  INFO tunnel-ip1: Child SA 0x1234abcd/0x00000001 (IKE SA 6) down: rekeyed (replaced by SPI in 0x0000beef)
2026-11-22T16:20:25.694032Z DEBUG IKE SA 6: Child SA rekeyed (trace)
2026-11-22T16:20:25.694033Z  INFO tunnel-ip1: IKE SA 3 rekeyed: now IKE SA 5
2026-11-22T16:20:25.694034Z  INFO tunnel-ip1: IKE SA rekeyed: 5 -> 7
2026-11-22T16:20:25.694035Z  INFO tunnel-ip1: IKE SA 3 down: rekeyed
2026-11-22T16:20:25.694036Z  INFO tunnel-ip1: Child SA 0x1/0x2 (IKE SA 7) down: redundant: both peers rekeyed the same SA at once
2026-11-22T16:20:25.694037Z  WARN tunnel-ip1: IKE SA 7 down: dead peer: 3 liveness checks 2 s apart went unanswered (dpd)
";

    #[test]
    fn counts_one_line_per_completed_rekey_and_not_the_retired_sas() {
        assert_eq!(child_rekeys(LOG).len(), 1);
        let ike = ike_rekeys(LOG);
        assert_eq!(ike.len(), 2, "{ike:#?}");
        assert!(ike[0].contains("IKE SA 3 rekeyed: now IKE SA 5"));
        assert!(ike[1].contains("IKE SA rekeyed: 5 -> 7"));
    }

    #[test]
    fn a_dead_peer_counts_at_info_or_warn() {
        assert_eq!(logged_lines(LOG, "dead peer").len(), 1);
        assert!(info_lines(LOG, "dead peer").is_empty());
    }
}
