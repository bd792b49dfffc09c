//! `xrsec bench`: iperf3 TCP through xrsec tunnels on one machine.
//!
//! The lab's two namespaces (10.99.0.1/24 and 10.99.0.2/24 on a veth pair)
//! with inner hosts 10.1.0.1 and 10.2.0.1 on their `lo`; iperf3 runs from one
//! inner host to the other, one row per path, in one run: plain routed
//! forwarding (`--compare plain`, the ceiling of the path), then per ESP
//! suite a pair of xrsecd on configurations generated for that suite, and
//! (`--compare strongswan`) two charons with the equivalent proposals. The
//! IKE proposal and PFS group come from the lab configuration
//! (`config/router1.conf`), so that only the ESP transform varies.
//!
//! Every row has its daemons to itself: they stop (and their TUNs and routes
//! go) before the next row starts. Both ends, iperf3 and the data planes
//! share the machine's cores, so the figures only compare within one run.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use xrsec_config::{
    DhGroup, EspCipher, EspIntegrity, EspTransform, IkeEncryption, IkeIntegrity, PfsGroup, Prf,
};
use xrsec_lab::{
    find_binary, router_config, IperfOptions, IperfResult, LabError, Node, SwanPair,
    SwanPairOptions, SwanSuite, Topology, TopologyConfig, XrSuite, Xrsecd, CHARON_BINARY,
};

use crate::lab::{
    default_config, load_config, require_root, say, say_part, tail, wait_tunnel, Interrupt, Stop,
};

/// Options of `xrsec bench`.
#[derive(Args)]
pub(crate) struct BenchArgs {
    /// An ESP transform to measure, in the transform-set words joined by `/`:
    /// `esp-gcm-128`, `esp-256-aes/esp-hmac-sha-256`. Repeatable [default:
    /// the lab configuration's transforms, and esp-gcm-128].
    #[arg(long = "suite", value_name = "NAME")]
    suites: Vec<String>,
    /// Measure also: `plain`, the same hosts routed without a tunnel (the
    /// ceiling); `strongswan`, two charons with the equivalent suite.
    /// Repeatable.
    #[arg(long, value_enum, value_name = "WHAT")]
    compare: Vec<Compare>,
    /// Seconds of iperf3 per row.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=3600))]
    seconds: u32,
    /// Parallel TCP streams.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=128))]
    streams: u32,
}

/// What else a bench run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Compare {
    /// Routed forwarding between the same hosts, no tunnel.
    Plain,
    /// Two strongSwan charons (kernel-libipsec) with the equivalent suite.
    Strongswan,
}

/// The tunnel addresses of the generated configurations (those of the lab).
const TUNNEL_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const TUNNEL_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// The IKE side and PFS group every suite of a run shares, and the
/// transforms measured when none is named.
#[derive(Clone, Debug)]
struct Base {
    encryption: IkeEncryption,
    integrity: Option<IkeIntegrity>,
    prf: Prf,
    group: DhGroup,
    pfs: Option<PfsGroup>,
    transforms: Vec<EspTransform>,
}

impl Base {
    /// The seed's suite, as in the lab configurations.
    fn seed() -> Base {
        Base {
            encryption: IkeEncryption::AesCbc256,
            integrity: Some(IkeIntegrity::Sha256),
            prf: Prf::Sha256,
            group: DhGroup::Group20,
            pfs: Some(PfsGroup::Group19),
            transforms: vec![EspTransform {
                cipher: EspCipher::Aes256Cbc,
                integrity: Some(EspIntegrity::HmacSha256),
            }],
        }
    }

    /// The first tunnel of the lab's router 1 configuration: its first
    /// proposal's first choices, its transform set, its PFS group. The seed
    /// when the file is not there.
    fn from_lab() -> Result<Base, Stop> {
        let Ok(path) = default_config("router1.conf") else {
            eprintln!("note: no lab configuration found; using the seed's suite");
            return Ok(Base::seed());
        };
        let config = load_config(&path)?;
        let tunnels = config.tunnels();
        let from = |view: &xrsec_config::TunnelView<'_>| {
            let proposal = view.proposals.first()?;
            Some(Base {
                encryption: *proposal.encryption.first()?,
                integrity: proposal.integrity.first().copied(),
                prf: *proposal.prf.first()?,
                group: *proposal.dh_groups.first()?,
                pfs: view.ipsec_profile.pfs,
                transforms: view.transform_set.transforms.clone(),
            })
        };
        tunnels.first().and_then(from).ok_or_else(|| {
            Stop::Invalid(format!(
                "{}: no tunnel with a proposal and a transform set to take the suite from",
                path.display()
            ))
        })
    }

    fn suite(&self, transform: EspTransform) -> BenchSuite {
        let esp_transform = match transform.integrity {
            Some(integrity) => format!("{} {}", transform.cipher, integrity),
            None => transform.cipher.to_string(),
        };
        let integrity = self.integrity.filter(|_| !self.encryption.is_aead());
        let xr = XrSuite {
            ike_encryption: self.encryption.keyword().into(),
            ike_integrity: integrity.map(|i| i.keyword().into()).unwrap_or_default(),
            ike_prf: self.prf.keyword().into(),
            ike_group: self.group.number(),
            esp_transform,
            pfs_group: self.pfs.map(|p| p.dh_group().number()),
        };
        BenchSuite {
            name: transform.to_string(),
            xr,
            swan: swan_suite(self, transform, integrity),
        }
    }
}

/// One ESP suite of the run.
struct BenchSuite {
    /// As `--suite` names it: `esp-gcm-128`, `esp-256-aes/esp-hmac-sha-256`.
    name: String,
    xr: XrSuite,
    /// The same algorithms in strongSwan's proposal words, when it has them.
    swan: Option<SwanSuite>,
}

/// `esp-gcm-128`, `esp-256-aes/esp-hmac-sha-256` (also with a space or `+`).
fn parse_transform(name: &str) -> Result<EspTransform, Stop> {
    let words: Vec<&str> = name
        .split(['/', '+', ' ', ','])
        .filter(|w| !w.is_empty())
        .collect();
    let help = || {
        format!(
            "ciphers: {}; integrity (not with GCM): {}",
            EspCipher::KEYWORDS.join(", "),
            EspIntegrity::KEYWORDS.join(", ")
        )
    };
    let cipher = words
        .first()
        .and_then(|w| EspCipher::from_keyword(w))
        .ok_or_else(|| Stop::Invalid(format!("unknown suite `{name}` ({})", help())))?;
    let integrity = match words.get(1) {
        None => None,
        Some(w) => Some(EspIntegrity::from_keyword(w).ok_or_else(|| {
            Stop::Invalid(format!("unknown integrity `{w}` in `{name}` ({})", help()))
        })?),
    };
    if words.len() > 2 || cipher.is_aead() == integrity.is_some() {
        return Err(Stop::Invalid(format!(
            "`{name}`: GCM takes no integrity algorithm, CBC needs one ({})",
            help()
        )));
    }
    Ok(EspTransform { cipher, integrity })
}

/// strongSwan's names for the same algorithms, or `None` where one has no
/// equivalent there.
fn swan_suite(
    base: &Base,
    transform: EspTransform,
    ike_integrity: Option<IkeIntegrity>,
) -> Option<SwanSuite> {
    let group = |g: DhGroup| match g {
        DhGroup::Group19 => Some("ecp256"),
        DhGroup::Group20 => Some("ecp384"),
        DhGroup::Group21 => Some("ecp521"),
        DhGroup::Group31 => Some("curve25519"),
        _ => None,
    };
    let hash = |keyword: &str| match keyword.trim_start_matches("esp-hmac-") {
        "sha-1" => Some("sha1"),
        "sha-256" => Some("sha256"),
        "sha-384" => Some("sha384"),
        "sha-512" => Some("sha512"),
        _ => None,
    };
    let ike_encryption = match base.encryption {
        IkeEncryption::AesCbc128 => "aes128",
        IkeEncryption::AesCbc192 => "aes192",
        IkeEncryption::AesCbc256 => "aes256",
        IkeEncryption::AesGcm128 => "aes128gcm16",
        IkeEncryption::AesGcm256 => "aes256gcm16",
        _ => return None,
    };
    let mut ike = vec![ike_encryption.to_string()];
    if let Some(integrity) = ike_integrity {
        ike.push(hash(integrity.keyword())?.into());
    }
    ike.push(format!("prf{}", hash(base.prf.keyword())?));
    ike.push(group(base.group)?.into());
    let esp_encryption = match transform.cipher {
        EspCipher::Aes128Cbc => "aes128",
        EspCipher::Aes192Cbc => "aes192",
        EspCipher::Aes256Cbc => "aes256",
        EspCipher::AesGcm128 => "aes128gcm16",
        EspCipher::AesGcm256 => "aes256gcm16",
        _ => return None,
    };
    let mut esp = vec![esp_encryption.to_string()];
    if let Some(integrity) = transform.integrity {
        esp.push(hash(integrity.keyword())?.into());
    }
    if let Some(pfs) = base.pfs {
        esp.push(group(pfs.dh_group())?.into());
    }
    Some(SwanSuite::new(&ike.join("-"), &esp.join("-")))
}

/// What one row measures.
#[derive(Clone, Copy)]
enum RowPath {
    Plain,
    Xrsec(usize),
    /// Two xrsecd with `--force-udp-encap`: ESP in UDP 4500, as strongSwan.
    XrsecUdp(usize),
    Strongswan(usize),
}

/// One row of the table.
struct Row {
    label: String,
    path: RowPath,
    outcome: Result<IperfResult, String>,
}

/// `xrsec bench`.
pub(crate) fn run(args: &BenchArgs) -> ExitCode {
    let started = Instant::now();
    match bench(args) {
        Ok(all_measured) => {
            eprintln!("bench done in {:.0} s", started.elapsed().as_secs_f64());
            if all_measured {
                ExitCode::SUCCESS
            } else {
                eprintln!("xrsec bench: some rows could not be measured (see above)");
                ExitCode::from(2)
            }
        }
        Err(stop) => {
            match &stop {
                Stop::Interrupted => eprintln!("xrsec bench: interrupted; the lab is removed"),
                other => eprintln!("xrsec bench: {other}"),
            }
            stop.exit_code()
        }
    }
}

/// Whether `program` is on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The suites of the run, in order, without repeats.
fn suites(args: &BenchArgs) -> Result<Vec<BenchSuite>, Stop> {
    let mut transforms = Vec::new();
    for name in &args.suites {
        transforms.push(parse_transform(name)?);
    }
    let base = Base::from_lab()?;
    if transforms.is_empty() {
        transforms = base.transforms.clone();
        transforms.push(EspTransform {
            cipher: EspCipher::AesGcm128,
            integrity: None,
        });
    }
    let mut unique: Vec<EspTransform> = Vec::new();
    for t in transforms {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    Ok(unique.into_iter().map(|t| base.suite(t)).collect())
}

/// Returns whether every row was measured.
fn bench(args: &BenchArgs) -> Result<bool, Stop> {
    require_root()?;
    if !on_path("iperf3") {
        return Err(Stop::Failed(
            "iperf3 is not installed (apt-get install iperf3)".into(),
        ));
    }
    let strongswan = args.compare.contains(&Compare::Strongswan);
    if strongswan && !(Path::new(CHARON_BINARY).is_file() && on_path("swanctl")) {
        return Err(Stop::Failed(format!(
            "--compare strongswan: {CHARON_BINARY} or swanctl is missing (apt-get install \
             strongswan-charon strongswan-swanctl libcharon-extra-plugins)"
        )));
    }
    find_binary("xrsecd")?;
    let suites = suites(args)?;
    for suite in &suites {
        let parsed = xrsec_config::parse_str(
            &suite.name,
            &xrsec_config_text(&suite.xr, Node::A, &TopologyConfig::direct()),
        );
        if parsed.has_errors() {
            eprint!("{}", parsed.render_diagnostics());
            return Err(Stop::Invalid(format!(
                "suite {}: the generated configuration is refused (see above)",
                suite.name
            )));
        }
    }
    let mut rows = Vec::new();
    if args.compare.contains(&Compare::Plain) {
        rows.push(Row {
            label: "plain forwarding (no tunnel)".into(),
            path: RowPath::Plain,
            outcome: Err(String::new()),
        });
    }
    for (i, suite) in suites.iter().enumerate() {
        rows.push(Row {
            label: format!("xrsec {}", suite.name),
            path: RowPath::Xrsec(i),
            outcome: Err(String::new()),
        });
        rows.push(Row {
            label: format!("xrsec {} in UDP 4500", suite.name),
            path: RowPath::XrsecUdp(i),
            outcome: Err(String::new()),
        });
        if strongswan {
            let label = match &suite.swan {
                Some(swan) => format!("strongSwan {}", swan.esp),
                None => format!("strongSwan ({})", suite.name),
            };
            rows.push(Row {
                label,
                path: RowPath::Strongswan(i),
                outcome: Err(String::new()),
            });
        }
    }

    let interrupt = Interrupt::install()?;
    let defaults = SwanPairOptions::default();
    let inner = (defaults.inner_a, defaults.inner_b);
    let streams = if args.streams == 1 {
        "1 stream".to_string()
    } else {
        format!("{} streams", args.streams)
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    say!(
        "xrsec bench: iperf3 TCP {} -> {}, {streams}, {} s per row; both ends share this \
         machine's {cores} cores: compare figures within one run only",
        inner.0,
        inner.1,
        args.seconds
    );
    let topology = interrupt.after(Topology::new(TopologyConfig::direct()))?;
    interrupt.after(topology.add_loopback_addr(Node::A, inner.0))?;
    interrupt.after(topology.add_loopback_addr(Node::B, inner.1))?;
    let total = rows.len();
    for (i, row) in rows.iter_mut().enumerate() {
        eprint!("[{}/{total}] {}: ", i + 1, row.label);
        let measured = match row.path {
            RowPath::Plain => measure_plain(&topology, inner, args, &interrupt),
            RowPath::Xrsec(s) => {
                measure_xrsec(&topology, &suites[s], inner, args, &interrupt, false)
            }
            RowPath::XrsecUdp(s) => {
                measure_xrsec(&topology, &suites[s], inner, args, &interrupt, true)
            }
            RowPath::Strongswan(s) => match &suites[s].swan {
                Some(swan) => measure_strongswan(&topology, swan, args, &interrupt),
                None => Err(Stop::Invalid("no strongSwan equivalent".into())),
            },
        };
        row.outcome = match measured {
            Ok(result) => {
                eprintln!("{:.2} Gbit/s", result.gbits_per_sec);
                Ok(result)
            }
            Err(Stop::Interrupted) => {
                eprintln!("interrupted");
                return Err(Stop::Interrupted);
            }
            Err(Stop::Invalid(message) | Stop::Failed(message)) => {
                eprintln!("failed\n{message}");
                Err(message)
            }
        };
    }
    drop(topology);
    say_part!("{}", table(&rows, &suites));
    Ok(rows.iter().all(|r| r.outcome.is_ok()))
}

/// The iperf3 run of every row: inner host a to inner host b.
fn iperf(inner: (Ipv4Addr, Ipv4Addr), args: &BenchArgs) -> IperfOptions {
    let mut o = IperfOptions::new(Node::A, Node::B, inner.1);
    o.bind = Some(inner.0);
    o.seconds = args.seconds;
    o.streams = args.streams;
    o
}

fn progress(text: &str) {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
}

fn measure_plain(
    topology: &Topology,
    inner: (Ipv4Addr, Ipv4Addr),
    args: &BenchArgs,
    interrupt: &Interrupt,
) -> Result<IperfResult, Stop> {
    let (a, b) = (topology.address(Node::A), topology.address(Node::B));
    let (to_b, to_a) = (format!("{}/32", inner.1), format!("{}/32", inner.0));
    interrupt.after(topology.route_via(Node::A, &to_b, b, Some(inner.0)))?;
    interrupt.after(topology.route_via(Node::B, &to_a, a, Some(inner.1)))?;
    progress(&format!("iperf3 {} s ... ", args.seconds));
    let result = topology.iperf3_with(&iperf(inner, args));
    // The next rows route these addresses into tunnels.
    let _ = topology.route_del(Node::A, &to_b);
    let _ = topology.route_del(Node::B, &to_a);
    interrupt.after(result)
}

/// A router's configuration for `suite`, with the other side's inner host
/// routed into the tunnel (`router static`, as in the lab configurations).
fn xrsec_config_text(suite: &XrSuite, node: Node, t: &TopologyConfig) -> String {
    let defaults = SwanPairOptions::default();
    let (local, remote, tunnel, behind_peer) = match node {
        Node::A => (t.a, t.b, TUNNEL_A, defaults.inner_b),
        _ => (t.b, t.a, TUNNEL_B, defaults.inner_a),
    };
    let mut text = router_config(local, remote, tunnel, suite);
    text.push_str(&format!(
        "router static\n address-family ipv4 unicast\n  {behind_peer}/32 tunnel-ip1\n exit\nexit\n"
    ));
    text
}

fn measure_xrsec(
    topology: &Topology,
    suite: &BenchSuite,
    inner: (Ipv4Addr, Ipv4Addr),
    args: &BenchArgs,
    interrupt: &Interrupt,
    udp: bool,
) -> Result<IperfResult, Stop> {
    let t = topology.config();
    progress("starting two xrsecd ... ");
    let extra: &[&str] = if udp { &["--force-udp-encap"] } else { &[] };
    let a = Xrsecd::start(
        topology,
        Node::A,
        &xrsec_config_text(&suite.xr, Node::A, t),
        extra,
    );
    let a = interrupt.after(a)?;
    let b = Xrsecd::start(
        topology,
        Node::B,
        &xrsec_config_text(&suite.xr, Node::B, t),
        extra,
    );
    let b = interrupt.after(b)?;
    let measured = (|| {
        let since = Instant::now();
        wait_tunnel(&a, "tunnel-ip1", since, interrupt)?;
        let up = wait_tunnel(&b, "tunnel-ip1", since, interrupt)?;
        progress(&format!(
            "up after {:.1} s; iperf3 {} s ... ",
            up.as_secs_f64(),
            args.seconds
        ));
        let sent_before = esp_packets_out(&a);
        let started = Instant::now();
        let result = interrupt.after(topology.iperf3_with(&iperf(inner, args)))?;
        if let (Some(before), Some(after)) = (sent_before, esp_packets_out(&a)) {
            // The SA's own count over the whole iperf3 run (connection set-up
            // included): a check on the estimate in the table.
            let seconds = started.elapsed().as_secs_f64().max(f64::from(args.seconds));
            let rate = after.saturating_sub(before) as f64 / seconds;
            progress(&format!("{} ESP pkt/s out, ", grouped(rate)));
        }
        Ok(result)
    })();
    match measured {
        Err(Stop::Failed(message)) => Err(Stop::Failed(format!(
            "{message}\n--- xrsecd a ---\n{}\n--- xrsecd b ---\n{}",
            tail(&a.log(), 15),
            tail(&b.log(), 15)
        ))),
        other => other,
    }
}

/// Outbound ESP packets of host a's tunnel so far.
fn esp_packets_out(daemon: &Xrsecd) -> Option<u64> {
    let status = daemon.status().ok()?;
    Some(
        status
            .tunnel("tunnel-ip1")?
            .ipsec
            .as_ref()?
            .outbound
            .packets,
    )
}

fn measure_strongswan(
    topology: &Topology,
    suite: &SwanSuite,
    args: &BenchArgs,
    interrupt: &Interrupt,
) -> Result<IperfResult, Stop> {
    progress("starting two charons ... ");
    let since = Instant::now();
    let pair = interrupt.after(SwanPair::up(topology, suite))?;
    progress(&format!(
        "up after {:.1} s; iperf3 {} s ... ",
        since.elapsed().as_secs_f64(),
        args.seconds
    ));
    let result = pair.iperf3(topology, args.seconds, args.streams);
    let result =
        result.map_err(|e: LabError| LabError::new(format!("{e}\n{}", tail(&pair.logs(), 30))));
    drop(pair);
    // kernel-libipsec's routes live in table 220, consulted before main: none
    // may outlive the charons, or the next rows would route into nothing.
    for node in [Node::A, Node::B] {
        let _ = topology.exec(node, &["ip", "route", "flush", "table", "220"]);
    }
    // charon's TUN goes with the process; give the kernel a moment.
    interrupt.sleep(Duration::from_millis(100))?;
    interrupt.after(result)
}

/// `1234567.8` as `1,234,568`.
fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}", numerator / denominator)
    } else {
        "-".into()
    }
}

/// The table, then one line of ratios per suite.
fn table(rows: &[Row], suites: &[BenchSuite]) -> String {
    let gbits = |path: &dyn Fn(&RowPath) -> bool| {
        rows.iter()
            .find(|r| path(&r.path))
            .and_then(|r| r.outcome.as_ref().ok())
            .map(|r| r.gbits_per_sec)
    };
    let plain = gbits(&|p| matches!(p, RowPath::Plain));
    let swan_of = |s: usize| gbits(&|p| matches!(p, RowPath::Strongswan(i) if *i == s));
    let has_swan = rows
        .iter()
        .any(|r| matches!(r.path, RowPath::Strongswan(_)));
    let width = rows.iter().map(|r| r.label.len()).max().unwrap_or(4).max(4);
    let mut out = String::from("\n");
    out.push_str(&format!(
        "{:<width$}  {:>7}  {:>10}  {:>7}  {:>8}{}\n",
        "path",
        "Gbit/s",
        "pkt/s",
        "retrans",
        "/ plain",
        if has_swan { "  / strongSwan" } else { "" }
    ));
    for row in rows {
        let Ok(r) = &row.outcome else {
            out.push_str(&format!("{:<width$}  {:>7}\n", row.label, "failed"));
            continue;
        };
        let vs_plain = plain.map_or("-".into(), |p| ratio(r.gbits_per_sec, p));
        let vs_swan = match row.path {
            RowPath::Xrsec(s) | RowPath::XrsecUdp(s) if has_swan => {
                swan_of(s).map_or("-".into(), |w| ratio(r.gbits_per_sec, w))
            }
            _ => String::new(),
        };
        out.push_str(
            format!(
                "{:<width$}  {:>7.2}  {:>10}  {:>7}  {:>8}  {:>12}",
                row.label,
                r.gbits_per_sec,
                grouped(r.packets_per_sec_estimate),
                r.retransmits,
                vs_plain,
                vs_swan
            )
            .trim_end(),
        );
        out.push('\n');
    }
    out.push('\n');
    for (s, suite) in suites.iter().enumerate() {
        for (udp, what) in [(false, "xrsec"), (true, "xrsec in UDP")] {
            let Some(xrsec) = gbits(&|p| match p {
                RowPath::Xrsec(i) => !udp && *i == s,
                RowPath::XrsecUdp(i) => udp && *i == s,
                _ => false,
            }) else {
                continue;
            };
            let mut parts = Vec::new();
            if let Some(p) = plain {
                parts.push(format!("{what} / plain = {}", ratio(xrsec, p)));
            }
            if let Some(w) = swan_of(s) {
                parts.push(format!("{what} / strongSwan = {}", ratio(xrsec, w)));
            }
            if !parts.is_empty() {
                out.push_str(&format!("{}: {}\n", suite.name, parts.join(", ")));
            }
        }
    }
    out.push_str(
        "pkt/s: received bytes per second / TCP MSS (full-size segments, one ESP packet \
         each through a tunnel)\n",
    );
    out.push_str(
        "encapsulation: two xrsecd speak native ESP (IP protocol 50) unless started with \
         --force-udp-encap (the \"in UDP 4500\" rows, UDP GSO/GRO on); strongSwan's \
         kernel-libipsec always uses ESP in UDP 4500 here\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suite_names_as_transform_sets_write_them() {
        let t = parse_transform("esp-256-aes/esp-hmac-sha-256").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_string(), "esp-256-aes/esp-hmac-sha-256");
        let t = parse_transform("esp-gcm-128").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.to_string(), "esp-gcm-128");
        for wrong in [
            "aes-gcm-128",
            "esp-gcm-128/esp-hmac-sha-256",
            "esp-256-aes",
            "esp-256-aes/sha-256",
        ] {
            assert!(parse_transform(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn maps_the_seed_suite_to_strongswan_proposals() {
        let base = Base::seed();
        let cbc = base.suite(base.transforms[0]);
        assert_eq!(cbc.xr, XrSuite::seed());
        let swan = cbc.swan.unwrap();
        assert_eq!(swan.ike, "aes256-sha256-prfsha256-ecp384");
        assert_eq!(swan.esp, "aes256-sha256-ecp256");
        let gcm = base.suite(parse_transform("esp-gcm-128").unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(gcm.xr.esp_transform, "esp-gcm-128");
        assert_eq!(gcm.swan.unwrap().esp, "aes128gcm16-ecp256");
    }

    #[test]
    fn the_lab_configuration_gives_the_seed_suite() {
        let base = Base::from_lab().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(base.suite(base.transforms[0]).xr, XrSuite::seed());
    }

    #[test]
    fn generated_configurations_are_valid() {
        let base = Base::seed();
        for name in ["esp-gcm-128", "esp-256-aes/esp-hmac-sha-256", "esp-gcm-256"] {
            let suite = base.suite(parse_transform(name).unwrap_or_else(|e| panic!("{e}")));
            for node in [Node::A, Node::B] {
                let text = xrsec_config_text(&suite.xr, node, &TopologyConfig::direct());
                let parsed = xrsec_config::parse_str(name, &text);
                assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics());
            }
        }
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0.4), "0");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1_234_567.8), "1,234,568");
    }

    #[test]
    fn table_has_ratios_against_plain_and_strongswan() {
        let base = Base::seed();
        let suites = vec![base.suite(base.transforms[0])];
        let measured = |gbits: f64| {
            Ok(IperfResult {
                gbits_per_sec: gbits,
                packets_per_sec_estimate: gbits * 1e9 / 8.0 / 1448.0,
                retransmits: 0,
            })
        };
        let rows = [
            Row {
                label: "plain forwarding (no tunnel)".into(),
                path: RowPath::Plain,
                outcome: measured(10.0),
            },
            Row {
                label: "xrsec esp-256-aes/esp-hmac-sha-256".into(),
                path: RowPath::Xrsec(0),
                outcome: measured(2.0),
            },
            Row {
                label: "strongSwan aes256-sha256-ecp256".into(),
                path: RowPath::Strongswan(0),
                outcome: measured(0.5),
            },
        ];
        let text = table(&rows, &suites);
        assert!(
            text.contains(
                "esp-256-aes/esp-hmac-sha-256: xrsec / plain = 0.20, xrsec / strongSwan = 4.00"
            ),
            "{text}"
        );
    }
}
