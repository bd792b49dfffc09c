//! `xrsec lab`: the two routers of `config/` on one machine.
//!
//! Two network namespaces joined by a veth pair stand for the two routers;
//! the underlay addresses come from the configurations themselves (each
//! tunnel's destination is the other router's address), so the lab
//! configurations give 10.99.0.1/24 and 10.99.0.2/24. An xrsecd runs in each
//! namespace on its file. The lab waits for the tunnels, pings across them
//! (the tunnel addresses, and the first address of each network the static
//! routes send into a tunnel, put as a /32 on the other router's `lo`),
//! prints both routers' show commands and removes everything.
//!
//! Invariants: the configurations are checked (each alone, then against each
//! other) before anything is created, so a broken file leaves nothing behind;
//! whatever is created belongs to a guard of `xrsec-lab` ([`Topology`],
//! [`Xrsecd`]) that removes it when dropped, and SIGINT/SIGTERM only raise a
//! flag, checked between steps, so that the guards do drop. The daemons stop
//! before their namespaces go, so that they can delete their SAs.
//!
//! The pieces `xrsec bench` shares (root check, the interrupt flag, finding
//! the lab configurations, waiting for a tunnel) live here too.

use std::fmt;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use xrsec_config::{Config, Ipv4Net, Severity};
use xrsec_control::{show as layout, Status, TunnelState};
use xrsec_lab::{find_binary, LabError, Node, Signal, Topology, TopologyConfig, Xrsecd};

/// `println!` that shrugs off a closed stdout (`xrsec lab | head`): the lab
/// must still come down through its guards rather than panic halfway.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` (a line to be finished later) likewise, flushed at once.
macro_rules! say_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout();
        let _ = write!(stdout, $($arg)*);
        let _ = stdout.flush();
    }};
}

pub(crate) use {say, say_part};

/// Options of `xrsec lab`.
#[derive(Args)]
pub(crate) struct LabArgs {
    /// The first router's configuration [default: config/router1.conf].
    #[arg(long, value_name = "FILE")]
    config_a: Option<PathBuf>,
    /// The second router's configuration [default: config/router2.conf].
    #[arg(long, value_name = "FILE")]
    config_b: Option<PathBuf>,
    /// Leave the lab running until Ctrl-C (or SIGTERM), and print how to
    /// reach each daemon.
    #[arg(long)]
    keep: bool,
}

/// How long a tunnel may take to come up in the lab (both ends on one
/// machine: it takes well under a second when the configurations agree).
pub(crate) const TUNNEL_TIMEOUT: Duration = Duration::from_secs(20);

/// How long an up tunnel may have another IKE SA negotiating before the
/// lab goes on anyway (see [`wait_tunnel`]).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Lines of a daemon's log printed when the lab fails.
const LOG_TAIL_LINES: usize = 25;

/// Pings per direction and destination.
const PING_COUNT: u32 = 3;

/// Why `lab` or `bench` stopped early; each maps to an exit code of the
/// documented set (1, 2), or 130 for an interrupt, as shells report SIGINT.
pub(crate) enum Stop {
    /// The input was examined and found wrong (a configuration, a suite name).
    Invalid(String),
    /// The lab could not run or did not work.
    Failed(String),
    /// SIGINT or SIGTERM.
    Interrupted,
}

impl Stop {
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            Stop::Invalid(_) => ExitCode::from(1),
            Stop::Failed(_) => ExitCode::from(2),
            Stop::Interrupted => ExitCode::from(130),
        }
    }
}

impl From<LabError> for Stop {
    fn from(error: LabError) -> Stop {
        Stop::Failed(error.message().to_string())
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Invalid(message) | Stop::Failed(message) => f.write_str(message),
            Stop::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// SIGINT and SIGTERM, caught: the first raises the flag (the lab then
/// unwinds through its guards), a second one exits at once (what is left is
/// swept by the next lab, whose names carry this process's dead pid).
pub(crate) struct Interrupt {
    raised: Arc<AtomicBool>,
}

impl Interrupt {
    pub(crate) fn install() -> Result<Interrupt, Stop> {
        let raised = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // The order matters: the shutdown hook looks at the flag before
            // the second registration raises it.
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&raised))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&raised)))
                .map_err(|e| Stop::Failed(format!("cannot catch SIGINT/SIGTERM: {e}")))?;
        }
        Ok(Interrupt { raised })
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// `Err(Stop::Interrupted)` once a signal came.
    pub(crate) fn check(&self) -> Result<(), Stop> {
        if self.is_raised() {
            Err(Stop::Interrupted)
        } else {
            Ok(())
        }
    }

    /// A step's result, unless a signal came meanwhile: the step then most
    /// likely failed because its tools got the terminal's SIGINT too.
    pub(crate) fn after<T>(&self, result: Result<T, LabError>) -> Result<T, Stop> {
        self.check()?;
        result.map_err(Stop::from)
    }

    /// Sleeps up to `duration`, waking early on a signal.
    pub(crate) fn sleep(&self, duration: Duration) -> Result<(), Stop> {
        let until = Instant::now() + duration;
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }
}

/// Namespaces, TUN devices and raw sockets need root (effective uid 0).
pub(crate) fn require_root() -> Result<(), Stop> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if euid == Some("0") {
        Ok(())
    } else {
        Err(Stop::Failed(
            "needs root (network namespaces, TUN devices, raw sockets): run it with sudo".into(),
        ))
    }
}

/// The repository's `config/` directory, for a binary run from elsewhere.
fn repository_config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// `config/NAME` under the current directory, else in the repository this
/// binary was built from.
pub(crate) fn default_config(name: &str) -> Result<PathBuf, Stop> {
    let here = Path::new("config").join(name);
    if here.is_file() {
        return Ok(here);
    }
    let repo = repository_config_dir().join(name);
    if repo.is_file() {
        // `..` components are noise in progress lines and in `--keep` hints.
        return Ok(repo.canonicalize().unwrap_or(repo));
    }
    Err(Stop::Failed(format!(
        "cannot find the lab configuration {}: neither in the current directory nor in {}",
        here.display(),
        repository_config_dir().display()
    )))
}

/// Reads and checks one configuration; every diagnostic goes to stderr.
pub(crate) fn load_config(path: &Path) -> Result<Config, Stop> {
    let parsed = xrsec_config::load_file(path)
        .map_err(|e| Stop::Failed(format!("cannot read {}: {e}", path.display())))?;
    if parsed.has_errors() {
        eprint!("{}", parsed.render_diagnostics());
        return Err(Stop::Invalid(format!(
            "{}: {} error(s) in the configuration (see above)",
            path.display(),
            parsed.error_count()
        )));
    }
    for diagnostic in &parsed.diagnostics {
        eprintln!("{diagnostic}");
    }
    parsed
        .config
        .ok_or_else(|| Stop::Invalid(format!("{}: no configuration", path.display())))
}

/// The first host of a network (the network itself for /31 and /32).
pub(crate) fn first_host(net: &Ipv4Net) -> Ipv4Addr {
    let network = net.network();
    if net.prefix_len >= 31 {
        network
    } else {
        Ipv4Addr::from(u32::from(network) + 1)
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until `tunnel` of `daemon` is up and settled; returns how long
/// since `since`. A failure names the state the tunnel is stuck in and the
/// daemon's reason.
///
/// Settled: no other IKE SA of the tunnel still negotiating. When the two
/// daemons start a moment apart, the first one's IKE_SA_INIT is lost and its
/// retransmission (a second later) races the tunnel the second one already
/// brought up; the daemons then keep one of the two (RFC 7296 2.8's
/// collision), replacing the Child SA. Traffic sent before that would be
/// counted on an SA that is gone by the time the show commands run.
pub(crate) fn wait_tunnel(
    daemon: &Xrsecd,
    tunnel: &str,
    since: Instant,
    interrupt: &Interrupt,
) -> Result<Duration, Stop> {
    let deadline = since + TUNNEL_TIMEOUT;
    let mut up_at = None;
    loop {
        let status = interrupt.after(daemon.status())?;
        let Some(t) = status.tunnel(tunnel) else {
            return Err(Stop::Failed(format!(
                "the daemon reports no interface {tunnel}"
            )));
        };
        match t.state {
            TunnelState::AdminDown => return Ok(since.elapsed()),
            TunnelState::Up => {
                let up = *up_at.get_or_insert_with(Instant::now);
                let negotiating = status
                    .sessions
                    .iter()
                    .filter(|s| s.tunnel.eq_ignore_ascii_case(tunnel))
                    .flat_map(|s| &s.ike_sas)
                    .any(|sa| sa.state != "READY");
                if !negotiating || up.elapsed() >= SETTLE_TIMEOUT {
                    return Ok(since.elapsed());
                }
            }
            TunnelState::Negotiating | TunnelState::Down => up_at = None,
        }
        if Instant::now() >= deadline {
            let why = t
                .last_error
                .as_deref()
                .unwrap_or("no error reported: no answer yet?");
            return Err(Stop::Failed(format!(
                "{tunnel} not up after {} s (state {:?}, {} failed attempt(s)): {why}",
                TUNNEL_TIMEOUT.as_secs(),
                t.state,
                t.failures
            )));
        }
        interrupt.sleep(Duration::from_millis(50))?;
    }
}

/// One router of the lab, as planned from its configuration.
struct RouterPlan {
    /// For headers and progress lines: the file's stem (`router1`).
    name: String,
    node: Node,
    /// The path as the user gave it (or as found).
    shown: PathBuf,
    /// The path the daemon is given (absolute: the daemon runs in a
    /// namespace, and `--keep` users may reload it from elsewhere).
    path: PathBuf,
    /// Its tunnels that pair with the other router.
    tunnels: Vec<String>,
    /// The paired tunnel's address (`ipv4 address`), if any.
    tunnel_address: Option<Ipv4Addr>,
    /// The paired tunnel's name.
    tunnel: String,
    /// The first network its static routes send into the paired tunnel.
    route: Option<Ipv4Net>,
}

/// What the two configurations make of the lab.
struct LabPlan {
    topology: TopologyConfig,
    routers: [RouterPlan; 2],
}

/// Pairs the two configurations' tunnels (the checks of `xrsec config check
/// A B`) and derives the underlay and the inner test addresses.
fn plan(paths: [(PathBuf, PathBuf); 2], configs: [Config; 2]) -> Result<LabPlan, Stop> {
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "router".into())
    };
    let mut names = [stem(&paths[0].0), stem(&paths[1].0)];
    if names[0] == names[1] {
        names = [format!("{}-a", names[0]), format!("{}-b", names[1])];
    }
    let pairings = xrsec_config::compare_peers(&names[0], &configs[0], &names[1], &configs[1]);
    let Some(first) = pairings.first() else {
        return Err(Stop::Invalid(format!(
            "{} and {} have no tunnels that point at each other (each `tunnel destination` \
             must be the other router's `tunnel source`)",
            paths[0].0.display(),
            paths[1].0.display()
        )));
    };
    let mut errors = Vec::new();
    for pairing in &pairings {
        for finding in &pairing.findings {
            match finding.severity {
                Severity::Error => errors.push(finding.message.clone()),
                _ => eprintln!("warning: {}", finding.message),
            }
        }
    }
    if !errors.is_empty() {
        return Err(Stop::Invalid(format!(
            "the two configurations cannot bring a tunnel up together:\n  {}",
            errors.join("\n  ")
        )));
    }
    let views = [configs[0].tunnels(), configs[1].tunnels()];
    let find = |side: usize, name: &str| {
        views[side]
            .iter()
            .find(|t| t.interface.name == name)
            .cloned()
            .ok_or_else(|| Stop::Failed(format!("{name} vanished from {}", names[side])))
    };
    let (ta, tb) = (find(0, &first.left)?, find(1, &first.right)?);
    // Each destination is the other router's address (that is what paired
    // them), so the underlay follows from the destinations alone.
    let (Some((b, _)), Some((a, _))) = (ta.interface.destination, tb.interface.destination) else {
        return Err(Stop::Failed("a paired tunnel has no destination".into()));
    };
    if a == b {
        return Err(Stop::Invalid(format!(
            "both routers would be {a}: the tunnel destinations must differ"
        )));
    }
    let common_bits = (u32::from(a) ^ u32::from(b)).leading_zeros() as u8;
    let topology = TopologyConfig {
        a,
        b,
        prefix_len: common_bits.min(24),
        ..TopologyConfig::direct()
    };
    let mut routers = [0, 1].map(|side| {
        let (path, shown) = (&paths[side].1, &paths[side].0);
        let paired: Vec<String> = pairings
            .iter()
            .map(|p| if side == 0 { &p.left } else { &p.right }.clone())
            .collect();
        RouterPlan {
            name: names[side].clone(),
            node: if side == 0 { Node::A } else { Node::B },
            shown: shown.clone(),
            path: path.clone(),
            tunnels: paired,
            tunnel_address: None,
            tunnel: String::new(),
            route: None,
        }
    });
    for (router, view) in routers.iter_mut().zip([&ta, &tb]) {
        router.tunnel = view.interface.name.clone();
        router.tunnel_address = view.interface.ipv4_address.map(|net| net.addr);
        router.route = view.routes.first().map(|r| r.prefix);
    }
    Ok(LabPlan { topology, routers })
}

/// One ping of the lab and what it showed.
struct Ping {
    from: usize,
    source: Option<Ipv4Addr>,
    destination: Ipv4Addr,
    why: String,
}

impl LabPlan {
    /// The inner address each router gets on `lo`: the first host of the
    /// network the *other* router routes into its tunnel.
    fn inner(&self, side: usize) -> Option<Ipv4Addr> {
        self.routers[1 - side].route.as_ref().map(first_host)
    }

    fn pings(&self) -> Vec<Ping> {
        let mut pings = Vec::new();
        for side in [0, 1] {
            let other = &self.routers[1 - side];
            if let Some(destination) = other.tunnel_address {
                pings.push(Ping {
                    from: side,
                    source: None,
                    destination,
                    why: format!("{}'s {}", other.name, other.tunnel),
                });
            }
        }
        for side in [0, 1] {
            let me = &self.routers[side];
            if let (Some(source), Some(destination), Some(route)) =
                (self.inner(side), self.inner(1 - side), me.route)
            {
                pings.push(Ping {
                    from: side,
                    source: Some(source),
                    destination,
                    why: format!("router static {route} {}", me.tunnel),
                });
            }
        }
        pings
    }
}

/// `xrsec lab`.
pub(crate) fn run(args: &LabArgs) -> ExitCode {
    let started = Instant::now();
    match lab(args, started) {
        Ok(()) => {
            say!(
                "lab removed; {:.1} s in all",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(stop) => {
            match &stop {
                Stop::Interrupted => eprintln!("xrsec lab: interrupted; the lab is removed"),
                other => eprintln!("xrsec lab: {other}"),
            }
            stop.exit_code()
        }
    }
}

fn resolve(given: Option<&PathBuf>, default_name: &str) -> Result<(PathBuf, PathBuf), Stop> {
    let shown = match given {
        Some(path) => path.clone(),
        None => default_config(default_name)?,
    };
    let absolute = shown
        .canonicalize()
        .map_err(|e| Stop::Failed(format!("cannot read {}: {e}", shown.display())))?;
    Ok((shown, absolute))
}

fn lab(args: &LabArgs, started: Instant) -> Result<(), Stop> {
    require_root()?;
    let paths = [
        resolve(args.config_a.as_ref(), "router1.conf")?,
        resolve(args.config_b.as_ref(), "router2.conf")?,
    ];
    let configs = [load_config(&paths[0].1)?, load_config(&paths[1].1)?];
    // Before anything is built: the clear error of a missing build.
    find_binary("xrsecd")?;
    let plan = plan(paths, configs)?;
    let interrupt = Interrupt::install()?;

    let t = &plan.topology;
    say!(
        "building the lab: two namespaces joined by a veth pair, {}/{} and {}/{}",
        t.a,
        t.prefix_len,
        t.b,
        t.prefix_len
    );
    let topology = interrupt.after(Topology::new(plan.topology.clone()))?;
    // Declared after the topology, so dropped before it: the daemons delete
    // their SAs while their namespaces still exist.
    let mut daemons: Vec<Xrsecd> = Vec::new();
    let outcome = bring_up(
        &topology,
        &plan,
        &mut daemons,
        &interrupt,
        args.keep,
        started,
    );
    if let Err(Stop::Failed(_) | Stop::Invalid(_)) = &outcome {
        for (router, daemon) in plan.routers.iter().zip(&mut daemons) {
            let log = daemon.child().log_path().to_path_buf();
            eprintln!(
                "--- last lines of {}'s xrsecd log ({}) ---\n{}",
                router.name,
                log.display(),
                tail(&daemon.log(), LOG_TAIL_LINES)
            );
        }
    }
    say!("removing the lab ...");
    // Both at once: each waits a little for its peer's answer to its DELETE.
    for daemon in &mut daemons {
        let _ = daemon.signal(Signal::Terminate);
    }
    for daemon in &mut daemons {
        let _ = daemon.child().wait_timeout(Duration::from_secs(10));
    }
    drop(daemons);
    drop(topology);
    match outcome {
        // With --keep, Ctrl-C is how the lab ends.
        Err(Stop::Interrupted) if args.keep && interrupt.is_raised() => Ok(()),
        other => other,
    }
}

fn bring_up(
    topology: &Topology,
    plan: &LabPlan,
    daemons: &mut Vec<Xrsecd>,
    interrupt: &Interrupt,
    keep: bool,
    started: Instant,
) -> Result<(), Stop> {
    for (side, router) in plan.routers.iter().enumerate() {
        if let Some(inner) = plan.inner(side) {
            interrupt.after(topology.add_loopback_addr(router.node, inner))?;
        }
    }
    let since = Instant::now();
    for router in &plan.routers {
        say!(
            "starting xrsecd in {} with {}",
            topology.ns(router.node),
            router.shown.display()
        );
        let daemon = Xrsecd::start_file(topology, router.node, &router.path, &[]);
        daemons.push(interrupt.after(daemon)?);
    }
    for (router, daemon) in plan.routers.iter().zip(daemons.iter()) {
        for tunnel in &router.tunnels {
            say_part!("waiting for {tunnel} on {} ...", router.name);
            let result = wait_tunnel(daemon, tunnel, since, interrupt);
            match &result {
                Ok(after) => say!(" up after {:.1} s", after.as_secs_f64()),
                Err(_) => say!(" not up"),
            }
            result?;
        }
    }

    let mut lost = Vec::new();
    for ping in plan.pings() {
        let router = &plan.routers[ping.from];
        let result = match ping.source {
            Some(source) => topology.ping_from(router.node, source, ping.destination, PING_COUNT),
            None => topology.ping(router.node, ping.destination, PING_COUNT),
        };
        let result = interrupt.after(result)?;
        // ping's own rounding; nothing sent counts as everything lost.
        let loss = (result.sent.saturating_sub(result.received) * 100)
            .checked_div(result.sent)
            .unwrap_or(100);
        let from = match ping.source {
            Some(source) => format!("{} {source}", router.name),
            None => router.name.clone(),
        };
        say!(
            "ping {from} -> {} ({}): {} transmitted, {} received, {loss}% packet loss",
            ping.destination,
            ping.why,
            result.sent,
            result.received
        );
        if loss != 0 {
            lost.push(format!("{} from {from}", ping.destination));
        }
    }

    for (router, daemon) in plan.routers.iter().zip(daemons.iter()) {
        let status = interrupt.after(daemon.status())?;
        print_router(router, topology.ns(router.node), &status);
    }
    if !lost.is_empty() {
        return Err(Stop::Failed(format!(
            "packets lost through the tunnel: {}",
            lost.join(", ")
        )));
    }
    say!(
        "lab up and checked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if keep {
        print_keep_hints(plan, topology, daemons);
        watch(plan, daemons, interrupt)?;
    }
    Ok(())
}

/// Both show commands of one router, under a header naming it.
fn print_router(router: &RouterPlan, namespace: &str, status: &Status) {
    let name = &router.name;
    say!();
    say!(
        "======== {name} (namespace {namespace}, {}) ========",
        router.shown.display()
    );
    say!("{name}#show ikev2 session detail");
    say_part!("{}", layout::ikev2_session(status, true));
    say!("{name}#show ipsec sa");
    show_sa(status, None);
    for tunnel in &router.tunnels {
        say!("{name}#show ipsec sa interface {tunnel}");
        show_sa(status, Some(tunnel));
    }
    say!();
}

fn show_sa(status: &Status, interface: Option<&str>) {
    match layout::ipsec_sa(status, interface) {
        Ok(text) => say_part!("{text}"),
        Err(message) => say!("% {message}"),
    }
}

fn print_keep_hints(plan: &LabPlan, topology: &Topology, daemons: &mut [Xrsecd]) {
    let xrsec = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "xrsec".into());
    say!();
    say!("The lab stays up until Ctrl-C (or SIGTERM). To reach it:");
    for (side, (router, daemon)) in plan.routers.iter().zip(daemons.iter_mut()).enumerate() {
        let ns = topology.ns(router.node);
        say!("  {} (namespace {ns}):", router.name);
        say!(
            "    {xrsec} --control {} show ikev2 session detail",
            daemon.control().display()
        );
        if let (Some(source), Some(destination)) = (plan.inner(side), plan.inner(1 - side)) {
            say!("    ip netns exec {ns} ping -I {source} {destination}");
        } else {
            say!("    ip netns exec {ns} ip address");
        }
        let child = daemon.child();
        say!(
            "    log: {}  (reload the file: kill -HUP {})",
            child.log_path().display(),
            child.pid()
        );
    }
    let _ = std::io::stdout().flush();
}

/// Sits until a signal, or until a daemon dies (an error).
fn watch(plan: &LabPlan, daemons: &mut [Xrsecd], interrupt: &Interrupt) -> Result<(), Stop> {
    loop {
        interrupt.sleep(Duration::from_millis(200))?;
        for (router, daemon) in plan.routers.iter().zip(daemons.iter_mut()) {
            if !daemon.child().is_running() {
                return Err(Stop::Failed(format!("{}'s xrsecd exited", router.name)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        let parsed = xrsec_config::parse_str("t.conf", text);
        assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics());
        parsed.config.unwrap()
    }

    fn lab_config(name: &str) -> (PathBuf, Config) {
        let path = repository_config_dir().join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        (path, parse(&text))
    }

    #[test]
    fn plans_the_lab_configurations_as_the_direct_topology() {
        let (p1, c1) = lab_config("router1.conf");
        let (p2, c2) = lab_config("router2.conf");
        let plan =
            plan([(p1.clone(), p1), (p2.clone(), p2)], [c1, c2]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.topology, TopologyConfig::direct());
        assert_eq!(plan.routers[0].name, "router1");
        assert_eq!(plan.routers[1].tunnels, ["tunnel-ip1"]);
        assert_eq!(plan.inner(0), Some(Ipv4Addr::new(10, 1, 0, 1)));
        assert_eq!(plan.inner(1), Some(Ipv4Addr::new(10, 2, 0, 1)));
        let pings: Vec<String> = plan
            .pings()
            .iter()
            .map(|p| format!("{} {:?} {}", p.from, p.source, p.destination))
            .collect();
        assert_eq!(
            pings,
            [
                "0 None 192.0.2.2",
                "1 None 192.0.2.1",
                "0 Some(10.1.0.1) 10.2.0.1",
                "1 Some(10.2.0.1) 10.1.0.1",
            ]
        );
    }

    #[test]
    fn refuses_configurations_whose_tunnels_do_not_meet() {
        let (p1, c1) = lab_config("router1.conf");
        let err = plan(
            [(p1.clone(), p1.clone()), (p1.clone(), p1)],
            [c1.clone(), c1],
        )
        .err()
        .expect("two copies of router1 cannot pair");
        assert!(matches!(err, Stop::Invalid(_)));
        assert!(err
            .to_string()
            .contains("no tunnels that point at each other"));
    }

    #[test]
    fn first_host_of_a_network() {
        let net = |a: [u8; 4], len| Ipv4Net::new(Ipv4Addr::from(a), len).unwrap();
        assert_eq!(
            first_host(&net([10, 2, 0, 0], 24)),
            Ipv4Addr::new(10, 2, 0, 1)
        );
        assert_eq!(
            first_host(&net([10, 2, 0, 7], 32)),
            Ipv4Addr::new(10, 2, 0, 7)
        );
    }
}
