//! Two hosts in network namespaces, joined directly or through a router.
//!
//! ```text
//!   direct:  [a] veth0 ---------------------------- veth0 [b]
//!            10.99.0.1/24                    10.99.0.2/24
//!
//!   routed:  [a] veth0 ---- veth-a [router] veth-b ---- veth0 [b]
//!            10.99.0.1/24   .254/24      10.99.1.254/24  10.99.1.2/24
//! ```
//!
//! The router forwards, optionally masquerades everything leaving towards b
//! (a real NAT: b sees only the router's address and cannot open anything
//! towards a) and optionally drops a random share of forwarded packets
//! (nftables `numgen`; this kernel has no netem). Every command runs under
//! `ip netns exec`. The namespaces, and every process still in them, go away
//! when the [`Topology`] drops.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{
    check, delete_namespace, run_checked, run_with_timeout, sweep_stale, tail_of, unique_tag,
    LabChild, LabDir, NAMESPACE_PREFIX,
};
use crate::tshark::Capture;
use crate::{LabError, Result};

/// The interface of host a and of host b towards the other side.
pub const HOST_UPLINK: &str = "veth0";
/// The router's interface on a's link.
pub const ROUTER_A_SIDE: &str = "veth-a";
/// The router's interface on b's link (the NAT's outside).
pub const ROUTER_B_SIDE: &str = "veth-b";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const NFT_TABLE: &str = "xrsec_lab";

/// A namespace of the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Node {
    /// The first host (the initiator side, behind the NAT when there is one).
    A,
    /// The second host.
    B,
    /// The router between them, when configured.
    Router,
}

impl Node {
    pub(crate) fn role(self) -> &'static str {
        match self {
            Node::A => "a",
            Node::B => "b",
            Node::Router => "r",
        }
    }
}

/// The router between a and b.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Its address on a's link (a's gateway).
    pub a_side: Ipv4Addr,
    /// Its address on b's link (the NAT's public address).
    pub b_side: Ipv4Addr,
    /// Masquerade towards b and refuse connections from b's side.
    pub nat: bool,
    /// Percentage (0-100) of forwarded packets dropped, both directions.
    pub loss_percent: u8,
    /// With `nat`, the source port every masqueraded flow gets (`masquerade
    /// to :PORT`), or the kernel's choice (which keeps the host's own port
    /// when it is free). Set by [`Topology::rebind_nat`].
    pub nat_port: Option<u16>,
}

/// What to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyConfig {
    /// Host a's address on its uplink.
    pub a: Ipv4Addr,
    /// Host b's address on its uplink.
    pub b: Ipv4Addr,
    /// Prefix length of both links.
    pub prefix_len: u8,
    /// A router between the hosts, or a direct veth.
    pub router: Option<RouterConfig>,
    /// MTU of every veth, or the kernel's default (1500).
    pub mtu: Option<u32>,
}

impl TopologyConfig {
    /// a 10.99.0.1/24 and b 10.99.0.2/24 on one veth pair.
    pub fn direct() -> TopologyConfig {
        TopologyConfig {
            a: Ipv4Addr::new(10, 99, 0, 1),
            b: Ipv4Addr::new(10, 99, 0, 2),
            prefix_len: 24,
            router: None,
            mtu: None,
        }
    }

    /// a 10.99.0.1/24, router 10.99.0.254 and 10.99.1.254, b 10.99.1.2/24;
    /// with `nat`, a is behind the router's masquerade.
    pub fn routed(nat: bool) -> TopologyConfig {
        TopologyConfig {
            a: Ipv4Addr::new(10, 99, 0, 1),
            b: Ipv4Addr::new(10, 99, 1, 2),
            prefix_len: 24,
            router: Some(RouterConfig {
                a_side: Ipv4Addr::new(10, 99, 0, 254),
                b_side: Ipv4Addr::new(10, 99, 1, 254),
                nat,
                loss_percent: 0,
                nat_port: None,
            }),
            mtu: None,
        }
    }

    /// The same with `percent` loss on the router (which must exist).
    pub fn with_loss(mut self, percent: u8) -> TopologyConfig {
        if let Some(router) = &mut self.router {
            router.loss_percent = percent;
        }
        self
    }

    /// The same with this MTU on every veth.
    pub fn with_mtu(mut self, mtu: u32) -> TopologyConfig {
        self.mtu = Some(mtu);
        self
    }
}

impl Default for TopologyConfig {
    fn default() -> TopologyConfig {
        TopologyConfig::direct()
    }
}

/// Packets sent and answered by [`Topology::ping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingResult {
    /// Echo requests sent.
    pub sent: u32,
    /// Echo replies received.
    pub received: u32,
}

impl PingResult {
    /// Parses ping's summary line (`N packets transmitted, M received, ...`).
    pub fn parse(output: &str) -> Option<PingResult> {
        let line = output.lines().find(|l| l.contains("packets transmitted"))?;
        let mut parts = line.split(',');
        let sent = parts.next()?.split_whitespace().next()?.parse().ok()?;
        let received = parts.next()?.split_whitespace().next()?.parse().ok()?;
        Some(PingResult { sent, received })
    }
}

/// One iperf3 run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IperfOptions {
    /// Where the client runs.
    pub client: Node,
    /// Where the server runs.
    pub server: Node,
    /// The address the client connects to.
    pub server_addr: Ipv4Addr,
    /// The client's source address (e.g. an inner address), or the kernel's choice.
    pub bind: Option<Ipv4Addr>,
    /// Test length.
    pub seconds: u32,
    /// Parallel TCP streams.
    pub streams: u32,
    /// The server sends, the client receives (`-R`).
    pub reverse: bool,
    /// TCP port of the server.
    pub port: u16,
    /// Pace the sender at this many 10^6 bit/s (`-b`), or as fast as it goes.
    pub bitrate_mbits: Option<u32>,
    /// Report every this many milliseconds (`-i`; iperf3's default is 1 s),
    /// read by [`Topology::iperf3_report`].
    pub interval_ms: Option<u32>,
}

impl IperfOptions {
    /// A TCP test from `client` to `server_addr` in `server`, 5201, no bind.
    pub fn new(client: Node, server: Node, server_addr: Ipv4Addr) -> IperfOptions {
        IperfOptions {
            client,
            server,
            server_addr,
            bind: None,
            seconds: 3,
            streams: 1,
            reverse: false,
            port: 5201,
            bitrate_mbits: None,
            interval_ms: None,
        }
    }
}

/// What iperf3 measured (at the receiver).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IperfResult {
    /// Received goodput, 10^9 bit/s.
    pub gbits_per_sec: f64,
    /// Received bytes per second divided by the TCP MSS: full-size segments
    /// per second, a lower bound on the packets the tunnel carried.
    pub packets_per_sec_estimate: f64,
    /// TCP retransmissions at the sender (0 when iperf3 does not report them).
    pub retransmits: u64,
}

impl IperfResult {
    /// Reads iperf3's `-J` report.
    pub fn parse_json(json: &str) -> Result<IperfResult> {
        let v: Value = serde_json::from_str(json)
            .map_err(|e| LabError::new(format!("iperf3 -J output is not JSON: {e}")))?;
        if let Some(err) = v.get("error").and_then(Value::as_str) {
            return Err(LabError::new(format!("iperf3: {err}")));
        }
        let end = &v["end"];
        let received = &end["sum_received"];
        let bps = received["bits_per_second"]
            .as_f64()
            .ok_or_else(|| LabError::new("iperf3 report without end.sum_received"))?;
        let bytes = received["bytes"].as_f64().unwrap_or(0.0);
        let seconds = received["seconds"].as_f64().unwrap_or(0.0);
        let mss = v["start"]["tcp_mss_default"]
            .as_f64()
            .filter(|m| *m > 0.0)
            .unwrap_or(1448.0);
        let pps = if seconds > 0.0 {
            bytes / seconds / mss
        } else {
            0.0
        };
        Ok(IperfResult {
            gbits_per_sec: bps / 1e9,
            packets_per_sec_estimate: pps,
            retransmits: end["sum_sent"]["retransmits"].as_u64().unwrap_or(0),
        })
    }
}

/// One report interval of an iperf3 run, as the client saw it (the
/// receiver's count with [`IperfOptions::reverse`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IperfInterval {
    /// Seconds since the test started.
    pub start: f64,
    /// Seconds since the test started.
    pub end: f64,
    /// Bytes of every stream in the interval.
    pub bytes: u64,
}

impl IperfInterval {
    /// The `intervals[].sum` of iperf3's `-J` report, in order.
    pub fn parse_json(json: &str) -> Result<Vec<IperfInterval>> {
        let v: Value = serde_json::from_str(json)
            .map_err(|e| LabError::new(format!("iperf3 -J output is not JSON: {e}")))?;
        let intervals = v["intervals"]
            .as_array()
            .ok_or_else(|| LabError::new("iperf3 report without intervals"))?;
        intervals
            .iter()
            .map(|i| {
                let sum = &i["sum"];
                match (
                    sum["start"].as_f64(),
                    sum["end"].as_f64(),
                    sum["bytes"].as_u64(),
                ) {
                    (Some(start), Some(end), Some(bytes)) => {
                        Ok(IperfInterval { start, end, bytes })
                    }
                    _ => Err(LabError::new(format!(
                        "iperf3 interval without start, end or bytes: {sum}"
                    ))),
                }
            })
            .collect()
    }
}

/// An iperf3 run's totals and its report intervals.
#[derive(Clone, Debug, PartialEq)]
pub struct IperfReport {
    /// The totals.
    pub result: IperfResult,
    /// Every interval, in order.
    pub intervals: Vec<IperfInterval>,
}

/// A ping running in the background ([`Topology::start_ping`]), every reply
/// printed so that the lost ones can be named.
#[derive(Debug)]
pub struct PingStream {
    child: LabChild,
    duration: Duration,
}

/// What a [`PingStream`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingReport {
    /// Requests sent and replies received (ping's summary line).
    pub summary: PingResult,
    /// The sequence numbers (from 1) of the requests never answered.
    pub unanswered: Vec<u32>,
}

impl PingReport {
    /// The report of a ping that ran to its deadline (`-w`): ping exits
    /// there without waiting, so the last request, if unanswered, may have
    /// been cut off rather than lost (sent at least an interval after the
    /// one before, it is the only one that can be in flight) and is not
    /// counted.
    pub fn cut_at_deadline(mut self) -> PingReport {
        if self.unanswered.last() == Some(&self.summary.sent) {
            self.unanswered.pop();
            self.summary.sent -= 1;
        }
        self
    }
}

impl PingReport {
    /// Parses ping's output without `-q`: one `icmp_seq=N` line per reply,
    /// then the summary. Requests up to the summary's `sent` without a reply
    /// are unanswered.
    pub fn parse(output: &str) -> Option<PingReport> {
        let summary = PingResult::parse(output)?;
        let mut answered = vec![false; summary.sent as usize + 1];
        for line in output.lines().filter(|l| l.contains(" bytes from ")) {
            let seq = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("icmp_seq="))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(slot) = seq.and_then(|n| answered.get_mut(n)) {
                *slot = true;
            }
        }
        let unanswered = (1..=summary.sent)
            .filter(|&n| !answered[n as usize])
            .collect();
        Some(PingReport {
            summary,
            unanswered,
        })
    }

    /// The unanswered requests as runs `first-last`, each with about the
    /// time it was sent at: seconds after the first request, one request
    /// every `interval` (ping's average, which on a loaded machine is longer
    /// than the one asked).
    pub fn describe_losses(&self, interval: Duration) -> String {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &n in &self.unanswered {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == n => *last = n,
                _ => runs.push((n, n)),
            }
        }
        runs.iter()
            .map(|&(first, last)| {
                let at = interval.as_secs_f64() * f64::from(first - 1);
                if first == last {
                    format!("#{first} (t≈{at:.2}s)")
                } else {
                    format!(
                        "#{first}-{last} ({} lost from t≈{at:.2}s)",
                        last - first + 1
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl PingStream {
    /// How long it runs.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Waits for ping to reach its deadline (up to `grace` more), then
    /// reads what it saw ([`PingReport::cut_at_deadline`]); kills it and
    /// fails if it does not end.
    pub fn finish(mut self, grace: Duration) -> Result<PingReport> {
        let status = self.child.wait_timeout(self.duration + grace)?;
        if status.is_none() {
            let _ = self.child.stop();
        }
        let output = self.child.output();
        match (status, PingReport::parse(&output)) {
            (Some(_), Some(report)) => Ok(report.cut_at_deadline()),
            (None, _) => Err(LabError::new(format!(
                "ping did not end {grace:?} after it should have:{}",
                tail_of(&output, 10)
            ))),
            (Some(status), None) => Err(LabError::new(format!(
                "ping ended ({status}) without a summary:{}",
                tail_of(&output, 10)
            ))),
        }
    }
}

/// The namespaces of one lab; removed with everything in them on drop.
#[derive(Debug)]
pub struct Topology {
    config: TopologyConfig,
    a: String,
    b: String,
    router: Option<String>,
    dir: LabDir,
}

impl Topology {
    /// Builds the namespaces, links, addresses, routes and router rules.
    pub fn new(config: TopologyConfig) -> Result<Topology> {
        sweep_stale();
        let tag = unique_tag();
        let name = |role: &str| format!("{NAMESPACE_PREFIX}{tag}-{role}");
        let topology = Topology {
            a: name(Node::A.role()),
            b: name(Node::B.role()),
            router: config.router.as_ref().map(|_| name(Node::Router.role())),
            dir: LabDir::new("topology")?,
            config,
        };
        // From here on a failure drops `topology`, which removes what exists.
        topology.build()?;
        Ok(topology)
    }

    fn build(&self) -> Result<()> {
        let mut names = vec![self.a.as_str(), self.b.as_str()];
        names.extend(self.router.as_deref());
        for ns in &names {
            // A namespace of this exact name can only be a leftover (pid reuse).
            delete_namespace(ns);
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        let c = &self.config;
        let plen = c.prefix_len;
        match (&c.router, &self.router) {
            (Some(r), Some(rns)) => {
                self.veth(&self.a, HOST_UPLINK, rns, ROUTER_A_SIDE)?;
                self.veth(&self.b, HOST_UPLINK, rns, ROUTER_B_SIDE)?;
                addr(&self.a, HOST_UPLINK, c.a, plen)?;
                addr(rns, ROUTER_A_SIDE, r.a_side, plen)?;
                addr(rns, ROUTER_B_SIDE, r.b_side, plen)?;
                addr(&self.b, HOST_UPLINK, c.b, plen)?;
                self.run(Node::Router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
                let gw = r.a_side.to_string();
                ip(&["-n", &self.a, "route", "add", "default", "via", &gw])?;
                if !r.nat {
                    // Behind a NAT, b has no way back to a's addresses.
                    let gw = r.b_side.to_string();
                    ip(&["-n", &self.b, "route", "add", "default", "via", &gw])?;
                }
                self.apply_router_rules(r)?;
            }
            _ => {
                self.veth(&self.a, HOST_UPLINK, &self.b, HOST_UPLINK)?;
                addr(&self.a, HOST_UPLINK, c.a, plen)?;
                addr(&self.b, HOST_UPLINK, c.b, plen)?;
            }
        }
        Ok(())
    }

    fn veth(&self, ns1: &str, if1: &str, ns2: &str, if2: &str) -> Result<()> {
        // Created inside ns1 with its peer directly in ns2: the names never
        // exist in the caller's namespace, so parallel labs cannot collide.
        ip(&[
            "-n", ns1, "link", "add", if1, "type", "veth", "peer", "name", if2, "netns", ns2,
        ])?;
        for (ns, ifname) in [(ns1, if1), (ns2, if2)] {
            if let Some(mtu) = self.config.mtu {
                ip(&["-n", ns, "link", "set", ifname, "mtu", &mtu.to_string()])?;
            }
            ip(&["-n", ns, "link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    fn apply_router_rules(&self, r: &RouterConfig) -> Result<()> {
        let path = self.dir.path().join("router.nft");
        fs::write(&path, router_ruleset(r))
            .map_err(|e| LabError::new(format!("cannot write {}: {e}", path.display())))?;
        self.run(Node::Router, &["nft", "-f", &path.to_string_lossy()])
            .map(drop)
    }

    /// Makes `node` drop every IP fragment it receives, before reassembly,
    /// as a firewall that refuses fragments does (the reason for RFC 7383):
    /// a UDP datagram larger than the path MTU then never arrives, while
    /// anything that fits, IKE's own fragments included, passes. Counted
    /// for [`Topology::ip_fragments_dropped`].
    pub fn drop_ip_fragments(&self, node: Node) -> Result<()> {
        let path = self.dir.path().join(format!("frag-{}.nft", node.role()));
        fs::write(&path, fragment_drop_ruleset())
            .map_err(|e| LabError::new(format!("cannot write {}: {e}", path.display())))?;
        self.run(node, &["nft", "-f", &path.to_string_lossy()])
            .map(drop)
    }

    /// How many IP fragments `node` dropped since
    /// [`Topology::drop_ip_fragments`].
    pub fn ip_fragments_dropped(&self, node: Node) -> Result<u64> {
        let out = self.run(node, &["nft", "list", "table", "ip", FRAG_TABLE])?;
        parse_counter_packets(&out).ok_or_else(|| {
            LabError::new(format!(
                "no counter in `nft list table ip {FRAG_TABLE}`:\n{out}"
            ))
        })
    }

    /// Changes the router's packet loss (0 removes it). Errors without a router.
    pub fn set_loss(&mut self, percent: u8) -> Result<()> {
        let mut r = self
            .config
            .router
            .clone()
            .ok_or_else(|| LabError::new("set_loss: this topology has no router"))?;
        r.loss_percent = percent;
        self.apply_router_rules(&r)?;
        self.config.router = Some(r);
        Ok(())
    }

    /// Makes the NAT rebind, as one that forgot its mappings does: from now
    /// on it masquerades to source port `port` (a fixed one, so that a's
    /// next mapping differs from the old one even for the same flow), and
    /// every UDP mapping it holds is forgotten (`conntrack -D -p udp`). a's
    /// next UDP packet then opens a new mapping on `port`; until then, b's
    /// packets to the old one are dropped (b cannot open mappings). Errors
    /// without a masquerading router.
    pub fn rebind_nat(&mut self, port: u16) -> Result<()> {
        let mut r = match &self.config.router {
            Some(r) if r.nat => r.clone(),
            _ => return Err(LabError::new("rebind_nat: this topology has no NAT")),
        };
        r.nat_port = Some(port);
        // The new rule first: a mapping made between the two steps would
        // otherwise survive with the old port.
        self.apply_router_rules(&r)?;
        self.config.router = Some(r);
        self.flush_udp_conntrack()
    }

    /// Deletes the router's UDP conntrack entries (its NAT mappings).
    fn flush_udp_conntrack(&self) -> Result<()> {
        let argv = ["conntrack", "-D", "-p", "udp"];
        let output = self.exec(Node::Router, &argv)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        // conntrack exits 1 when nothing matched ("0 flow entries have been
        // deleted"): nothing to forget is fine.
        if output.status.code() == Some(1) && stderr.contains("0 flow entries") {
            return Ok(());
        }
        check(&format!("[r] {}", argv.join(" ")), output).map(drop)
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &TopologyConfig {
        &self.config
    }

    /// The namespace name of `node`.
    ///
    /// # Panics
    /// For [`Node::Router`] when the topology has none.
    pub fn ns(&self, node: Node) -> &str {
        match node {
            Node::A => &self.a,
            Node::B => &self.b,
            Node::Router => self
                .router
                .as_deref()
                .expect("this topology has no router namespace"),
        }
    }

    /// The uplink address of host a or b; the router's b-side address for
    /// [`Node::Router`].
    ///
    /// # Panics
    /// For [`Node::Router`] when the topology has none.
    pub fn address(&self, node: Node) -> Ipv4Addr {
        match node {
            Node::A => self.config.a,
            Node::B => self.config.b,
            Node::Router => self.config.router.as_ref().expect("no router").b_side,
        }
    }

    /// The address b sees a's packets come from: the NAT's outside address
    /// when masquerading, a's own otherwise.
    pub fn a_as_seen_by_b(&self) -> Ipv4Addr {
        match &self.config.router {
            Some(r) if r.nat => r.b_side,
            _ => self.config.a,
        }
    }

    /// A directory for this lab's files (logs, configs, captures).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, node: Node, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(node)]).args(argv);
        cmd
    }

    /// Runs `argv` in `node` and returns its output whatever its exit status
    /// (killed after 60 s).
    pub fn exec(&self, node: Node, argv: &[&str]) -> Result<Output> {
        self.exec_timeout(node, argv, DEFAULT_TIMEOUT)
    }

    /// [`Topology::exec`] with a chosen timeout.
    pub fn exec_timeout(&self, node: Node, argv: &[&str], timeout: Duration) -> Result<Output> {
        run_with_timeout(&mut self.command(node, argv), timeout)
    }

    /// Runs `argv` in `node`, fails on a non-zero exit, returns stdout.
    pub fn run(&self, node: Node, argv: &[&str]) -> Result<String> {
        let output = self.exec(node, argv)?;
        check(&format!("[{}] {}", node.role(), argv.join(" ")), output)
    }

    /// Starts `argv` in `node` in the background, stdout and stderr appended
    /// to `log`. The returned guard stops it; whatever is still running in
    /// the namespace when the topology drops is killed anyway.
    pub fn spawn(&self, node: Node, argv: &[&str], log: &Path) -> Result<LabChild> {
        LabChild::spawn(self.command(node, argv), log)
    }

    /// Adds `addr`/32 on `lo` of `node` (inner test addresses; the kernel
    /// has no dummy links). Idempotent.
    pub fn add_loopback_addr(&self, node: Node, addr: Ipv4Addr) -> Result<()> {
        ip(&[
            "-n",
            self.ns(node),
            "addr",
            "replace",
            &format!("{addr}/32"),
            "dev",
            "lo",
        ])
    }

    /// `ip route replace DST via VIA [src SRC]` in `node`.
    pub fn route_via(
        &self,
        node: Node,
        dst: &str,
        via: Ipv4Addr,
        src: Option<Ipv4Addr>,
    ) -> Result<()> {
        self.route(node, dst, &["via", &via.to_string()], src)
    }

    /// `ip route replace DST dev DEV [src SRC]` in `node` (e.g. into a tunnel).
    pub fn route_dev(&self, node: Node, dst: &str, dev: &str, src: Option<Ipv4Addr>) -> Result<()> {
        self.route(node, dst, &["dev", dev], src)
    }

    fn route(&self, node: Node, dst: &str, how: &[&str], src: Option<Ipv4Addr>) -> Result<()> {
        let src = src.map(|s| s.to_string());
        let mut argv = vec!["-n", self.ns(node), "route", "replace", dst];
        argv.extend_from_slice(how);
        if let Some(src) = &src {
            argv.extend(["src", src.as_str()]);
        }
        ip(&argv)
    }

    /// `ip route del DST` in `node`.
    pub fn route_del(&self, node: Node, dst: &str) -> Result<()> {
        ip(&["-n", self.ns(node), "route", "del", dst])
    }

    /// Pings `dst` from `node`, `count` requests 0.2 s apart, 1 s wait for
    /// the last. Losing every packet is a result, not an error.
    pub fn ping(&self, node: Node, dst: Ipv4Addr, count: u32) -> Result<PingResult> {
        self.ping_inner(node, None, dst, count)
    }

    /// [`Topology::ping`] from source address `src`.
    pub fn ping_from(
        &self,
        node: Node,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        count: u32,
    ) -> Result<PingResult> {
        self.ping_inner(node, Some(src), dst, count)
    }

    fn ping_inner(
        &self,
        node: Node,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        count: u32,
    ) -> Result<PingResult> {
        let count_s = count.max(1).to_string();
        let dst_s = dst.to_string();
        let src_s = src.map(|s| s.to_string());
        let mut argv = vec!["ping", "-n", "-q", "-c", &count_s, "-i", "0.2", "-W", "1"];
        if let Some(src) = &src_s {
            argv.extend(["-I", src.as_str()]);
        }
        argv.push(&dst_s);
        let timeout = Duration::from_millis(200 * u64::from(count) + 10_000);
        let output = self.exec_timeout(node, &argv, timeout)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        PingResult::parse(&stdout).ok_or_else(|| {
            LabError::new(format!(
                "ping {dst} from {}: no summary ({}): {}",
                node.role(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        })
    }

    /// Starts pinging `dst` from `node` (from `src` if given) in the
    /// background for `duration` (whole seconds, at least 1): a request
    /// every `interval` (below 2 ms needs root, ping(8)). On a loaded machine ping
    /// sends more slowly than asked; [`PingStream::finish`] reads what it did.
    pub fn start_ping(
        &self,
        node: Node,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        interval: Duration,
        duration: Duration,
    ) -> Result<PingStream> {
        let secs = duration.as_secs().max(1);
        let deadline_s = secs.to_string();
        let interval_s = format!("{:.3}", interval.as_secs_f64());
        let dst_s = dst.to_string();
        let src_s = src.map(|s| s.to_string());
        let mut argv = vec!["ping", "-n", "-w", &deadline_s, "-i", &interval_s];
        if let Some(src) = &src_s {
            argv.extend(["-I", src.as_str()]);
        }
        argv.push(&dst_s);
        let log = self.dir().join(format!("ping-{}.log", unique_tag()));
        Ok(PingStream {
            child: self.spawn(node, &argv, &log)?,
            duration: Duration::from_secs(secs),
        })
    }

    /// iperf3 TCP from `client` to `server_addr` (served in `server`) for
    /// `seconds` with `streams` parallel streams.
    pub fn iperf3(
        &self,
        client: Node,
        server: Node,
        server_addr: Ipv4Addr,
        seconds: u32,
        streams: u32,
    ) -> Result<IperfResult> {
        let mut options = IperfOptions::new(client, server, server_addr);
        options.seconds = seconds;
        options.streams = streams;
        self.iperf3_with(&options)
    }

    /// iperf3 with every option.
    pub fn iperf3_with(&self, o: &IperfOptions) -> Result<IperfResult> {
        let (json, _) = self.iperf3_json(o)?;
        IperfResult::parse_json(&json)
    }

    /// iperf3 with every option, and its report intervals
    /// ([`IperfOptions::interval_ms`]).
    pub fn iperf3_report(&self, o: &IperfOptions) -> Result<IperfReport> {
        let (json, server_log) = self.iperf3_json(o)?;
        let intervals = IperfInterval::parse_json(&json)
            .map_err(|e| LabError::new(format!("{e} (server log:{server_log})")))?;
        Ok(IperfReport {
            result: IperfResult::parse_json(&json)?,
            intervals,
        })
    }

    /// Runs the server and the client; returns the client's `-J` report,
    /// already checked to hold a result, and the server log's tail.
    fn iperf3_json(&self, o: &IperfOptions) -> Result<(String, String)> {
        let port = o.port.to_string();
        let log = self
            .dir()
            .join(format!("iperf3-server-{}.log", unique_tag()));
        // One-off server: it ends with the test; the guard covers failures.
        let mut server = self.spawn(
            o.server,
            &["iperf3", "-s", "-1", "--forceflush", "-p", &port],
            &log,
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.output().contains("Server listening") {
            if !server.is_running() || Instant::now() >= deadline {
                return Err(LabError::new(format!(
                    "iperf3 server did not start: {}",
                    server.output().trim()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
        let seconds = o.seconds.max(1).to_string();
        let streams = o.streams.max(1).to_string();
        let addr = o.server_addr.to_string();
        let bind = o.bind.map(|b| b.to_string());
        let mut argv = vec![
            "iperf3",
            "-J",
            "-c",
            &addr,
            "-p",
            &port,
            "-t",
            &seconds,
            "-P",
            &streams,
            "--connect-timeout",
            "5000",
        ];
        if let Some(bind) = &bind {
            argv.extend(["-B", bind.as_str()]);
        }
        if o.reverse {
            argv.push("-R");
        }
        let bitrate = o.bitrate_mbits.map(|b| format!("{b}M"));
        if let Some(b) = &bitrate {
            argv.extend(["-b", b.as_str()]);
        }
        let interval = o
            .interval_ms
            .map(|ms| format!("{:.3}", f64::from(ms) / 1000.0));
        if let Some(i) = &interval {
            argv.extend(["-i", i.as_str()]);
        }
        let timeout = Duration::from_secs(u64::from(o.seconds) + 30);
        let output = self.exec_timeout(o.client, &argv, timeout)?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let server_log = tail_of(&server.output(), 10);
        match IperfResult::parse_json(&stdout) {
            Ok(_) => Ok((stdout, server_log)),
            Err(e) => Err(LabError::new(format!(
                "{e} (client {}; server log:{server_log})",
                output.status
            ))),
        }
    }

    /// Starts a tshark capture on `iface` of `node` into `pcap`; returns once
    /// tshark captures.
    pub fn capture(&self, node: Node, iface: &str, pcap: PathBuf) -> Result<Capture> {
        Capture::start(self.ns(node), iface, pcap)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let mut names = vec![self.a.clone(), self.b.clone()];
        names.extend(self.router.clone());
        for ns in names {
            delete_namespace(&ns);
        }
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let mut argv = vec!["ip"];
    argv.extend_from_slice(args);
    run_checked(&argv, DEFAULT_TIMEOUT).map(drop)
}

fn addr(ns: &str, ifname: &str, addr: Ipv4Addr, plen: u8) -> Result<()> {
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{addr}/{plen}"),
        "dev",
        ifname,
    ])
}

/// The table of [`Topology::drop_ip_fragments`].
const FRAG_TABLE: &str = "xrsec_lab_frag";

/// Drops IP fragments (More Fragments set or a non-zero offset) at
/// prerouting with a priority before defragmentation (-400), so that the
/// fragments are seen one by one whether or not conntrack is loaded.
fn fragment_drop_ruleset() -> String {
    format!(
        "table ip {FRAG_TABLE}\n\
         delete table ip {FRAG_TABLE}\n\
         table ip {FRAG_TABLE} {{\n\
         \tchain prerouting {{\n\
         \t\ttype filter hook prerouting priority -450; policy accept;\n\
         \t\tip frag-off & 0x3fff != 0 counter drop\n\
         \t}}\n\
         }}\n"
    )
}

/// The packet count of the first `counter packets N bytes M` in nft's
/// listing.
fn parse_counter_packets(listing: &str) -> Option<u64> {
    let (_, rest) = listing.split_once("counter packets ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The router's nftables table, replaced as a whole (declare, delete,
/// define: one atomic transaction whether or not it existed).
fn router_ruleset(r: &RouterConfig) -> String {
    let mut forward = String::new();
    match r.loss_percent {
        0 => {}
        // numgen's value range is 0-99: "< 100" does not parse.
        100.. => forward.push_str("\t\tdrop\n"),
        n => forward.push_str(&format!("\t\tnumgen random mod 100 < {n} drop\n")),
    }
    let mut nat = String::new();
    if r.nat {
        forward.push_str(&format!(
            "\t\tiifname \"{ROUTER_B_SIDE}\" ct state new drop\n"
        ));
        // A port mapping needs a transport protocol match: UDP (IKE, ESP
        // in UDP) gets the fixed port, the rest the plain masquerade.
        if let Some(port) = r.nat_port {
            nat.push_str(&format!(
                "\t\toifname \"{ROUTER_B_SIDE}\" meta l4proto udp masquerade to :{port}\n"
            ));
        }
        nat.push_str(&format!("\t\toifname \"{ROUTER_B_SIDE}\" masquerade\n"));
    }
    format!(
        "table ip {NFT_TABLE}\n\
         delete table ip {NFT_TABLE}\n\
         table ip {NFT_TABLE} {{\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         {forward}\
         \t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         {nat}\
         \t}}\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_counter_is_read_from_nfts_listing() {
        let listing = "table ip xrsec_lab_frag {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority -450; policy accept;\n\t\tip frag-off & 0x3fff != 0 counter packets 12 bytes 15360 drop\n\t}\n}\n";
        assert_eq!(parse_counter_packets(listing), Some(12));
        assert_eq!(parse_counter_packets("table ip t {\n}\n"), None);
        assert!(fragment_drop_ruleset().contains("priority -450"));
    }

    #[test]
    fn parses_ping_summary_with_loss() {
        let out = "PING 10.2.0.1 (10.2.0.1) 56(84) bytes of data.\n\n\
                   --- 10.2.0.1 ping statistics ---\n\
                   5 packets transmitted, 3 received, 40% packet loss, time 812ms\n";
        assert_eq!(
            PingResult::parse(out),
            Some(PingResult {
                sent: 5,
                received: 3
            })
        );
    }

    #[test]
    fn parses_ping_summary_with_errors() {
        let out = "4 packets transmitted, 0 received, +4 errors, 100% packet loss, time 3ms\n";
        assert_eq!(
            PingResult::parse(out),
            Some(PingResult {
                sent: 4,
                received: 0
            })
        );
    }

    #[test]
    fn reads_iperf3_receiver_rate_and_retransmits() {
        let json = r#"{"start":{"tcp_mss_default":1000},
            "end":{"sum_sent":{"bytes":2000000,"retransmits":7,"bits_per_second":5.4e9},
                   "sum_received":{"bytes":1000000,"seconds":2.0,"bits_per_second":4.0e9}}}"#;
        let r = IperfResult::parse_json(json).unwrap();
        assert_eq!(r.gbits_per_sec, 4.0);
        assert_eq!(r.packets_per_sec_estimate, 500.0);
        assert_eq!(r.retransmits, 7);
    }

    #[test]
    fn reports_iperf3_error_field() {
        let err = IperfResult::parse_json(r#"{"start":{},"end":{},"error":"unable to connect"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unable to connect"));
    }

    #[test]
    fn names_the_unanswered_pings_in_runs_with_their_send_times() {
        let out = "PING 192.0.2.2 (192.0.2.2) 56(84) bytes of data.\n\
                   64 bytes from 192.0.2.2: icmp_seq=1 ttl=64 time=0.31 ms\n\
                   64 bytes from 192.0.2.2: icmp_seq=4 ttl=64 time=0.29 ms\n\
                   64 bytes from 192.0.2.2: icmp_seq=4 ttl=64 time=0.30 ms (DUP!)\n\
                   64 bytes from 192.0.2.2: icmp_seq=6 ttl=64 time=0.30 ms\n\n\
                   --- 192.0.2.2 ping statistics ---\n\
                   7 packets transmitted, 3 received, +1 duplicates, 57% packet loss, time 60ms\n";
        let r = PingReport::parse(out).unwrap();
        assert_eq!(
            r.summary,
            PingResult {
                sent: 7,
                received: 3
            }
        );
        assert_eq!(r.unanswered, [2, 3, 5, 7]);
        assert_eq!(
            r.describe_losses(Duration::from_millis(10)),
            "#2-3 (2 lost from t≈0.01s), #5 (t≈0.04s), #7 (t≈0.06s)"
        );
        // The last request, cut off by the deadline, is not counted.
        let r = r.cut_at_deadline();
        assert_eq!(
            r.summary,
            PingResult {
                sent: 6,
                received: 3
            }
        );
        assert_eq!(r.unanswered, [2, 3, 5]);
        assert_eq!(r.clone().cut_at_deadline(), r);
    }

    #[test]
    fn reads_iperf3_intervals_in_order() {
        let json = r#"{"intervals":[
            {"streams":[],"sum":{"start":0,"end":0.5,"seconds":0.5,"bytes":655360,"sender":false}},
            {"streams":[],"sum":{"start":0.5,"end":1.0002,"seconds":0.5,"bytes":0,"sender":false}}]}"#;
        let i = IperfInterval::parse_json(json).unwrap();
        assert_eq!(i.len(), 2);
        assert_eq!((i[0].start, i[0].end, i[0].bytes), (0.0, 0.5, 655_360));
        assert_eq!((i[1].start, i[1].bytes), (0.5, 0));
        assert!(IperfInterval::parse_json(r#"{"intervals":[{"sum":{}}]}"#).is_err());
    }

    #[test]
    fn router_ruleset_has_loss_and_masquerade_only_when_asked() {
        let mut r = TopologyConfig::routed(false).router.unwrap();
        let plain = router_ruleset(&r);
        assert!(!plain.contains("numgen") && !plain.contains("masquerade"));
        r.nat = true;
        r.loss_percent = 5;
        let full = router_ruleset(&r);
        assert!(full.contains("numgen random mod 100 < 5 drop"));
        assert!(full.contains("oifname \"veth-b\" masquerade"));
        assert!(full.contains("iifname \"veth-b\" ct state new drop"));
        r.loss_percent = 100;
        assert!(router_ruleset(&r).contains("\t\tdrop\n"));
    }

    #[test]
    fn a_rebound_nat_masquerades_to_its_fixed_port_in_one_transaction() {
        let mut r = TopologyConfig::routed(true).router.unwrap();
        assert!(router_ruleset(&r).contains("oifname \"veth-b\" masquerade\n"));
        r.nat_port = Some(45000);
        let rebound = router_ruleset(&r);
        // UDP first, to the port; the rest as before.
        assert!(
            rebound.contains(
                "oifname \"veth-b\" meta l4proto udp masquerade to :45000\n\t\toifname \"veth-b\" masquerade\n"
            ),
            "{rebound}"
        );
        assert!(rebound.contains("iifname \"veth-b\" ct state new drop"));
        // Declared, deleted and defined again: one atomic `nft -f`.
        assert!(rebound.starts_with("table ip xrsec_lab\ndelete table ip xrsec_lab\n"));
        assert_eq!(rebound.matches("masquerade").count(), 2);
        // Without NAT the port means nothing.
        r.nat = false;
        assert!(!router_ruleset(&r).contains("masquerade"));
    }
}
