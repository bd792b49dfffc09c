//! Issue 8's end-to-end proof between two xrsecd: rekeying under traffic
//! without loss, and recovery from a peer killed with SIGKILL.
//!
//! The daemons' side of the contract: each logs, at level INFO and once per
//! completed rekey, a line with `Child SA rekeyed` or `IKE SA N rekeyed`
//! ([`child_rekeys`], [`ike_rekeys`]); a peer found dead by DPD is logged
//! with `dead peer`. Once a rekey has settled each side shows one IKE SA and
//! one Child SA pair (an old inbound SA may linger a few seconds right after
//! a rekey, so that state is awaited, not sampled).
//!
//! The TCP transfer is paced well below what two debug-build daemons carry
//! on two shared cores: at full speed TCP fills the TUN queues until they
//! drop, and the pings sharing them would be lost to congestion rather than
//! to a key change. Paced, a zero-byte report interval can only be a stall.

use std::time::{Duration, Instant};

use xrsec_control::{Status, TunnelState};
use xrsec_e2e::{
    child_rekeys, ike_rekeys, info_lines, is_sa_lifecycle, last_matching, logged_lines,
    ping_problem, show_both, tail, wait_converged, wait_one_sa_pair_each, wall_clock, PairConfig,
    BRING_UP, INNER_A, INNER_B, PING_INTERVAL,
};
use xrsec_lab::{
    IperfInterval, IperfOptions, Node, PingStream, Signal, Topology, XrLifetimes, XrSuite, Xrsecd,
};

/// The Child SA lifetime (`set security-association lifetime seconds`).
const CHILD_LIFETIME_SECS: u32 = 10;
/// The IKE SA lifetime (`ikev2 profile` `lifetime`).
const IKE_LIFETIME_SECS: u32 = 25;
/// How long the ping and the TCP transfer run.
const TRAFFIC_SECS: u32 = 90;
/// The TCP transfer's pace (see the module doc).
const TCP_MBITS: u32 = 20;
/// iperf3's report interval: a stall of 1 s or more empties at least one.
const TCP_REPORT_MS: u32 = 500;
/// What issue 8 asks to count over the 90 s.
const MIN_CHILD_REKEYS: usize = 8;
const MIN_IKE_REKEYS: usize = 3;
/// How long one SA pair on each side may take to appear after the traffic
/// (a rekey in progress, the old inbound SA lingering after it).
const SETTLE: Duration = Duration::from_secs(20);

/// `dpd INTERVAL RETRIES` of the kill tests.
const DPD_INTERVAL_SECS: u32 = 2;
const DPD_RETRIES: u32 = 3;

/// Issue 8's bound for a restarted peer: traffic again within dpd interval
/// x retries + 5 s; the same bound for declaring a peer dead.
fn dpd_bound() -> Duration {
    Duration::from_secs(u64::from(DPD_INTERVAL_SECS * DPD_RETRIES + 5))
}

#[test]
fn ninety_seconds_of_ping_and_tcp_across_child_and_ike_rekeys_lose_no_ping_and_never_stall() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    xrsec_lab::ensure_packages().expect("installing iperf3 and the lab tools");
    let lifetimes = XrLifetimes {
        ike_secs: Some(IKE_LIFETIME_SECS),
        child_secs: Some(CHILD_LIFETIME_SECS),
        dpd: None,
        child_kilobytes: None,
    };
    // The seed's suite: PFS group19 on every Child SA rekey.
    let suite = XrSuite::seed();
    assert_eq!(suite.pfs_group, Some(19));
    let pair = PairConfig::direct_with(&suite, &lifetimes).start(&[], &[]);
    let (topo, da, db) = (&pair.topo, &pair.a, &pair.b);
    wait_converged(da, db, BRING_UP);

    let started = wall_clock();
    let (pings, tcp) = paced_traffic(topo, TRAFFIC_SECS, TCP_MBITS);
    let (tcp, observed) = std::thread::scope(|s| {
        let run = s.spawn(|| topo.iperf3_report(&tcp));
        let mut observed = Observed::default();
        while !run.is_finished() {
            observed.sample(da, db);
            std::thread::sleep(Duration::from_millis(500));
        }
        (run.join().expect("the iperf3 thread"), observed)
    });
    let pings = pings.finish(Duration::from_secs(20));

    let mut problems = Vec::new();
    problems.extend(ping_problem(
        &pings,
        "ping A -> B",
        TRAFFIC_SECS,
        PING_INTERVAL,
    ));
    match &tcp {
        Ok(report) => {
            eprintln!(
                "TCP: {:.1} Mbit/s received over {} intervals, {} retransmits",
                report.result.gbits_per_sec * 1000.0,
                report.intervals.len(),
                report.result.retransmits
            );
            if let Some(stall) = stalls(&report.intervals) {
                problems.push(format!(
                    "TCP stalled ({} Mbit/s paced, {} ms intervals): {stall}",
                    TCP_MBITS, TCP_REPORT_MS
                ));
            }
            let covered = report.intervals.last().map_or(0.0, |i| i.end);
            if covered < f64::from(TRAFFIC_SECS) - 1.0 {
                problems.push(format!("TCP ran only {covered:.1} s of {TRAFFIC_SECS}"));
            }
        }
        Err(e) => problems.push(format!("TCP: {e}")),
    }
    eprintln!("while the traffic ran: {observed}");
    for (side, d) in [("A", da), ("B", db)] {
        let log = d.log();
        let (child, ike) = (child_rekeys(&log).len(), ike_rekeys(&log).len());
        eprintln!("{side} logged {child} Child SA and {ike} IKE SA rekeys");
        if child < MIN_CHILD_REKEYS || ike < MIN_IKE_REKEYS {
            problems.push(format!(
                "{side} logged {child} Child SA rekeys (at least {MIN_CHILD_REKEYS} expected) and {ike} IKE SA rekeys (at least {MIN_IKE_REKEYS})"
            ));
        }
    }
    // The same rekeys as the SPIs show them, whatever the logs say: a Child
    // SA lives at most 10 s and an IKE SA 25 s, so 90 s see more of each
    // (the first SA's SPIs plus one new pair per rekey).
    if observed.child_spis_a.len() < MIN_CHILD_REKEYS + 1
        || observed.ike_spis_a.len() < MIN_IKE_REKEYS + 1
    {
        problems.push(format!(
            "A's status showed only {} inbound ESP SPIs and {} IKE SPIs while the traffic ran",
            observed.child_spis_a.len(),
            observed.ike_spis_a.len()
        ));
    }
    // PFS: every Child SA rekey request carries a KE payload (the
    // daemons' debug trace of each IKE message lists its payloads).
    for (side, d) in [("A", da), ("B", db)] {
        let log = d.log();
        let requests = xrsec_e2e::child_rekey_requests(&log);
        if requests.is_empty() {
            problems.push(format!(
                "{side}: no Child SA rekey request, sent or received, in its trace"
            ));
        }
        if let Some(line) = requests.iter().find(|l| !l.contains(" KE ")) {
            problems.push(format!("{side}: a Child SA rekey without PFS: {line}"));
        }
    }
    // Make-before-break: a Child SA is in use at every moment.
    if observed.tunnel_not_up > 0 {
        problems.push(format!(
            "a tunnel-ip1 was not up in {} of {} side-samples while the traffic ran",
            observed.tunnel_not_up,
            2 * observed.samples
        ));
    }
    let settled = wait_one_sa_pair_each(da, db, SETTLE);
    if let Err(e) = &settled {
        problems.push(e.clone());
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with Child SA lifetime {CHILD_LIFETIME_SECS} s, IKE SA lifetime {IKE_LIFETIME_SECS} s, PFS group19, {TRAFFIC_SECS} s of traffic from {started}:\n- {}\n\nsampled every 0.5 s while the traffic ran: {observed}\n\n{}\n{}",
        problems.len(),
        problems.join("\n- "),
        lifecycle_lines("A", &da.log()),
        lifecycle_lines("B", &db.log()),
    );
}

/// A 100 packets/s ping A -> B and a TCP transfer paced at `mbits`, B to A
/// (A's client counts the received bytes every TCP_REPORT_MS), both `secs`
/// long.
fn paced_traffic(topo: &Topology, secs: u32, mbits: u32) -> (PingStream, IperfOptions) {
    let pings = topo
        .start_ping(
            Node::A,
            Some(INNER_A),
            INNER_B,
            PING_INTERVAL,
            Duration::from_secs(u64::from(secs)),
        )
        .expect("starting the ping");
    let mut tcp = IperfOptions::new(Node::A, Node::B, INNER_B);
    tcp.bind = Some(INNER_A);
    tcp.seconds = secs;
    tcp.reverse = true;
    tcp.bitrate_mbits = Some(mbits);
    tcp.interval_ms = Some(TCP_REPORT_MS);
    (pings, tcp)
}

/// What the status showed while the traffic ran: how many SPIs went by,
/// how often a side's tunnel was not up, how many IKE SAs a side held at
/// most (two while an IKE SA rekey is under way).
#[derive(Default)]
struct Observed {
    samples: u32,
    child_spis_a: Vec<u32>,
    ike_spis_a: Vec<u64>,
    tunnel_not_up: u32,
    most_ike_sas: usize,
    errors: Vec<String>,
}

impl Observed {
    fn sample(&mut self, a: &Xrsecd, b: &Xrsecd) {
        let (sa, sb) = match (a.status(), b.status()) {
            (Ok(sa), Ok(sb)) => (sa, sb),
            (Err(e), _) | (_, Err(e)) => {
                if self.errors.len() < 3 {
                    self.errors.push(e.to_string());
                }
                return;
            }
        };
        self.samples += 1;
        for s in [&sa, &sb] {
            let t = s.tunnel("tunnel-ip1");
            if t.is_none_or(|t| t.state != TunnelState::Up) {
                self.tunnel_not_up += 1;
            }
            let ike = s.sessions.iter().map(|x| x.ike_sas.len()).sum::<usize>();
            self.most_ike_sas = self.most_ike_sas.max(ike);
        }
        if let Some(spi) = ipsec_in(&sa) {
            if !self.child_spis_a.contains(&spi) {
                self.child_spis_a.push(spi);
            }
        }
        for ike in sa.sessions.iter().flat_map(|x| &x.ike_sas) {
            if !self.ike_spis_a.contains(&ike.local_spi) {
                self.ike_spis_a.push(ike.local_spi);
            }
        }
    }
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} samples; A's tunnel ran on {} inbound SPIs and A knew {} IKE SPIs; a tunnel was not up in {} side-samples; at most {} IKE SAs on one side",
            self.samples,
            self.child_spis_a.len(),
            self.ike_spis_a.len(),
            self.tunnel_not_up,
            self.most_ike_sas
        )?;
        if !self.errors.is_empty() {
            write!(f, "; status errors: {:?}", self.errors)?;
        }
        Ok(())
    }
}

fn ipsec_in(s: &Status) -> Option<u32> {
    s.tunnel("tunnel-ip1")?
        .ipsec
        .as_ref()
        .map(|i| i.inbound.spi)
}

/// The report intervals that carried nothing, as runs with their times, or
/// `None`. A last interval shorter than half a report (iperf3's remainder)
/// is not judged.
fn stalls(intervals: &[IperfInterval]) -> Option<String> {
    let half = f64::from(TCP_REPORT_MS) / 2000.0;
    let mut runs: Vec<(f64, f64)> = Vec::new();
    for i in intervals.iter().filter(|i| i.end - i.start >= half) {
        if i.bytes > 0 {
            continue;
        }
        match runs.last_mut() {
            Some((_, end)) if (*end - i.start).abs() < 0.01 => *end = i.end,
            _ => runs.push((i.start, i.end)),
        }
    }
    if runs.is_empty() {
        return None;
    }
    Some(
        runs.iter()
            .map(|(start, end)| {
                format!(
                    "nothing received from t={start:.1}s to t={end:.1}s ({:.1} s)",
                    end - start
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// A daemon's INFO lines about SAs coming, going and rekeying: the timeline
/// a failure is read against.
fn lifecycle_lines(side: &str, log: &str) -> String {
    let (total, shown) = last_matching(log, 80, is_sa_lifecycle);
    format!(
        "--- {side}: {} Child SA and {} IKE SA rekeys logged; SA lifecycle lines{} ---\n{}",
        child_rekeys(log).len(),
        ike_rekeys(log).len(),
        if total > 80 { " (last 80)" } else { "" },
        shown
    )
}

// --- kill -9 ----------------------------------------------------------------

/// Both routers with `dpd 2 3` and the default (long) lifetimes, converged.
fn dpd_pair() -> (xrsec_e2e::Pair, String, Status, Status) {
    let lifetimes = XrLifetimes {
        dpd: Some((DPD_INTERVAL_SECS, DPD_RETRIES)),
        ..XrLifetimes::default()
    };
    let setup = PairConfig::direct_with(&XrSuite::seed(), &lifetimes);
    let config_a = setup.config_a.clone();
    let pair = setup.start(&[], &[]);
    let (sa, sb) = wait_converged(&pair.a, &pair.b, BRING_UP);
    (pair, config_a, sa, sb)
}

/// SIGKILL, reaped: the peer is told nothing. Returns when it happened.
fn kill(d: &mut Xrsecd) -> Instant {
    d.signal(Signal::Kill).expect("SIGKILL");
    let at = Instant::now();
    let status = d.child().wait_timeout(Duration::from_secs(5)).unwrap();
    assert!(status.is_some(), "xrsecd outlived SIGKILL");
    at
}

/// Pings `dst` from `src` in `node`, one request at a time (1 s wait each),
/// until one is answered; the time since `since`, or how many went
/// unanswered by `deadline`.
fn first_answer(
    topo: &Topology,
    node: Node,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    since: Instant,
    deadline: Instant,
) -> Result<Duration, String> {
    let mut tries = 0;
    loop {
        tries += 1;
        let p = topo.ping_from(node, src, dst, 1).expect("ping");
        if p.received == 1 {
            return Ok(since.elapsed());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{tries} pings {src} -> {dst} unanswered over {:.1} s",
                since.elapsed().as_secs_f64()
            ));
        }
    }
}

/// The SPIs a side showed before the kill, as `show` prints them.
fn spi_texts(s: &Status) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(i) = s.tunnel("tunnel-ip1").and_then(|t| t.ipsec.as_ref()) {
        out.push(format!("0x{:08x}", i.inbound.spi));
        out.push(format!("0x{:08x}", i.outbound.spi));
    }
    for ike in s.sessions.iter().flat_map(|x| &x.ike_sas) {
        out.push(format!("{:016X}", ike.local_spi));
    }
    out
}

/// Which of `old` a side still shows in `show ipsec sa` or `show ikev2
/// session detail`.
fn stale_in_show(d: &Xrsecd, old: &[String]) -> Vec<String> {
    let text = format!(
        "{}\n{}",
        d.xrsec(&["show", "ipsec", "sa"]).unwrap_or_default(),
        d.xrsec(&["show", "ikev2", "session", "detail"])
            .unwrap_or_default()
    );
    old.iter()
        .filter(|s| text.contains(s.as_str()))
        .cloned()
        .collect()
}

#[test]
fn a_daemon_killed_and_restarted_passes_traffic_again_within_the_dpd_bound_and_no_stale_sa_remains()
{
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let (mut pair, config_a, before_a, before_b) = dpd_pair();
    let killed_at = kill(&mut pair.a);
    let old_log_a = pair.a.log();
    pair.a = Xrsecd::start(&pair.topo, Node::A, &config_a, &[]).expect("restarting A");
    let (topo, da, db) = (&pair.topo, &pair.a, &pair.b);

    // From the survivor's side: B still holds the SAs of A's first life.
    let bound = dpd_bound();
    let passed = first_answer(
        topo,
        Node::B,
        INNER_B,
        INNER_A,
        killed_at,
        killed_at + bound,
    );
    let passed = passed.unwrap_or_else(|e| {
        panic!(
            "no traffic through the tunnel within dpd {DPD_INTERVAL_SECS} x {DPD_RETRIES} + 5 s = {bound:?} of A's SIGKILL and restart: {e}\n{}\n--- A's log before the kill (tail) ---\n{}",
            show_both(da, db),
            tail(&old_log_a, 20)
        )
    });
    eprintln!(
        "traffic passed again {:.1} s after the SIGKILL",
        passed.as_secs_f64()
    );

    let (_, sb) = wait_one_sa_pair_each(da, db, bound + Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("after A's restart: {e}"));
    // B lived through A's kill: it must have dropped the old SAs (their
    // SPIs on B's side include A's old inbound SPI). A's own SPIs are new
    // anyway (a new process draws new ones), so only B's are compared.
    let (old_a, old_b) = (spi_texts(&before_a), spi_texts(&before_b));
    let new_b = spi_texts(&sb);
    assert!(
        old_b.iter().all(|s| !new_b.contains(s)),
        "B still uses SPIs of before the kill: before {old_b:?}, now {new_b:?}"
    );
    // Nor does B still show A's old SAs (A, restarted, has none to show).
    let stale = stale_in_show(db, &old_a);
    assert!(
        stale.is_empty(),
        "B still shows SPIs of before the kill {stale:?}:\n{}",
        show_both(da, db)
    );
    for (from, src, dst) in [(Node::A, INNER_A, INNER_B), (Node::B, INNER_B, INNER_A)] {
        let p = topo.ping_from(from, src, dst, 3).unwrap();
        assert_eq!(p.received, 3, "{src} -> {dst} once settled: {p:?}");
    }
    let how = logged_lines(&db.log(), "INITIAL_CONTACT").len()
        + logged_lines(&db.log(), "dead peer").len();
    eprintln!("B's log names INITIAL_CONTACT or a dead peer {how} times");
}

#[test]
fn a_daemon_killed_for_good_is_declared_dead_by_dpd_and_the_survivor_keeps_retrying() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let (mut pair, config_a, before_a, before_b) = dpd_pair();
    let killed_at = kill(&mut pair.a);
    let bound = dpd_bound();
    let (topo, db) = (&pair.topo, &pair.b);

    // B hears nothing more: its liveness checks go unanswered.
    let dead_at = loop {
        if let Some(line) = logged_lines(&db.log(), "dead peer").first() {
            break (killed_at.elapsed(), line.to_string());
        }
        assert!(
            killed_at.elapsed() < bound,
            "B did not declare A dead within dpd {DPD_INTERVAL_SECS} x {DPD_RETRIES} + 5 s = {bound:?} of A's SIGKILL:\n{}\n--- B's log (tail) ---\n{}",
            db.xrsec(&["show", "ikev2", "session", "detail"]).unwrap_or_default(),
            tail(&db.log(), 60)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "B declared A dead {:.1} s after the SIGKILL: {}",
        dead_at.0.as_secs_f64(),
        dead_at.1
    );

    // Its SAs are gone from show (a new IKE SA may be negotiating already).
    let gone = xrsec_e2e::wait_for_within(db, "B's SAs of A to go", Duration::from_secs(3), |s| {
        let t = s.tunnel("tunnel-ip1").unwrap();
        t.ipsec.is_none()
            && t.state != TunnelState::Up
            && s.sessions
                .iter()
                .flat_map(|x| &x.ike_sas)
                .all(|i| i.state != "READY")
    });
    let old: Vec<String> = spi_texts(&before_b)
        .into_iter()
        .chain(spi_texts(&before_a))
        .collect();
    let stale = stale_in_show(db, &old);
    assert!(
        stale.is_empty(),
        "B still shows {stale:?} after declaring A dead:\n{}\n{}",
        db.xrsec(&["show", "ipsec", "sa"]).unwrap_or_default(),
        db.xrsec(&["show", "ikev2", "session", "detail"])
            .unwrap_or_default()
    );

    // ... and goes on trying to reach A: it initiates again (after a
    // back-off), which the log or the tunnel's state says.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = db.log();
        let after = log
            .find(&dead_at.1)
            .map_or("", |at| &log[at + dead_at.1.len()..]);
        let s = db.status().unwrap();
        let t = s.tunnel("tunnel-ip1").unwrap();
        if !info_lines(after, "initiating").is_empty() || t.state == TunnelState::Negotiating {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B did not try to reach A again within 15 s of declaring it dead (first down as {:?}, now {t:?}):\n{}",
            gone.tunnel("tunnel-ip1").map(|t| t.state),
            tail(&log, 40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A back: the tunnel comes up again by itself.
    pair.a = Xrsecd::start(topo, Node::A, &config_a, &[]).expect("restarting A");
    wait_one_sa_pair_each(&pair.a, &pair.b, BRING_UP)
        .unwrap_or_else(|e| panic!("after A came back: {e}"));
    let p = topo.ping_from(Node::B, INNER_B, INNER_A, 3).unwrap();
    assert_eq!(p.received, 3, "B -> A after A came back: {p:?}");
}

/// `set security-association lifetime kilobytes`: the dataplane counts the
/// bytes and its soft limit (each end its own 80-89%) starts the rekey, the
/// clock does not;
/// the rekey must beat the hard limit, or the SA ends and pings are lost.
#[test]
fn a_volume_lifetime_rekeys_the_child_sa_by_its_bytes_without_losing_a_ping() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    xrsec_lab::ensure_packages().expect("installing iperf3 and the lab tools");
    const KILOBYTES: u64 = 2560;
    const SECS: u32 = 20;
    const MBITS: u32 = 8;
    let lifetimes = XrLifetimes {
        child_kilobytes: Some(KILOBYTES),
        ..XrLifetimes::default()
    };
    let pair = PairConfig::direct_with(&XrSuite::seed(), &lifetimes).start(&[], &[]);
    let (topo, da, db) = (&pair.topo, &pair.a, &pair.b);
    wait_converged(da, db, BRING_UP);
    let (pings, tcp) = paced_traffic(topo, SECS, MBITS);
    let report = topo.iperf3_report(&tcp);
    let pings = pings.finish(Duration::from_secs(20));
    let mut problems = Vec::new();
    problems.extend(ping_problem(&pings, "ping A -> B", SECS, PING_INTERVAL));
    match &report {
        Ok(r) => problems.extend(stalls(&r.intervals).map(|s| format!("TCP stalled: {s}"))),
        Err(e) => problems.push(format!("TCP: {e}")),
    }
    // 8 Mbit/s for 20 s is 20 MB: the 2.5 MB SA is rekeyed every 2.0-2.3 MB
    // (the earlier of the two ends' 80-89%), some nine times, each started
    // by the byte count.
    let (la, lb) = (da.log(), db.log());
    let rekeys = child_rekeys(&la).len();
    if rekeys < 4 {
        problems.push(format!(
            "A logged {rekeys} Child SA rekeys, at least 4 expected"
        ));
    }
    let soft = logged_lines(&la, "soft volume lifetime").len()
        + logged_lines(&lb, "soft volume lifetime").len();
    if soft == 0 {
        problems.push("no daemon logged a soft volume lifetime".into());
    }
    for (side, log) in [("A", &la), ("B", &lb)] {
        if let Some(l) = logged_lines(log, "hard volume lifetime").first() {
            problems.push(format!("{side} reached a hard volume lifetime: {l}"));
        }
        // Renegotiation instead of a rekey: an IKE SA went down (other
        // than the duplicate of both daemons initiating at start-up).
        if let Some(l) = logged_lines(log, ": IKE SA ")
            .iter()
            .find(|l| l.contains(" down:") && !l.contains("duplicate of"))
        {
            problems.push(format!("{side}: {l}"));
        }
    }
    eprintln!("volume lifetime {KILOBYTES} KB: A logged {rekeys} Child SA rekeys, {soft} soft volume limits");
    assert!(
        problems.is_empty(),
        "lifetime kilobytes {KILOBYTES}, {MBITS} Mbit/s for {SECS} s:\n- {}\n\n{}\n{}",
        problems.join("\n- "),
        lifecycle_lines("A", &la),
        lifecycle_lines("B", &lb),
    );
}
