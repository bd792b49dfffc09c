//! xrsecd in a lab namespace: a configuration made from a suite, the daemon
//! started with its own control socket and log, and its status read over
//! that socket.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use xrsec_control::{Request, Response, Status, TunnelState};

use crate::{LabChild, LabDir, LabError, Node, Result, Signal, Topology};

/// The pre-shared key of generated lab configurations.
pub const LAB_PSK: &str = "xrsec-lab-only-3f9c1e7a";

/// Where the xrsec binaries are: next to the running executable, or one
/// directory up (a test binary lives in `target/<profile>/deps`).
pub fn find_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| LabError::new(format!("cannot find the running executable: {e}")))?;
    let mut dir = exe.parent();
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let candidate = d.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(LabError::new(format!(
        "cannot find the `{name}` binary next to {} (build it first: `cargo build --bins`)",
        exe.display()
    )))
}

/// The IKE and ESP algorithms of a generated configuration, in the IOS-XR
/// language's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XrSuite {
    /// `ikev2 proposal` `encryption` (e.g. `aes-cbc-256`).
    pub ike_encryption: String,
    /// `integrity` (empty with GCM).
    pub ike_integrity: String,
    /// `prf`.
    pub ike_prf: String,
    /// `dh-group`.
    pub ike_group: u16,
    /// `ipsec transform-set` `transform` (e.g. `esp-256-aes esp-hmac-sha-256`).
    pub esp_transform: String,
    /// `set pfs groupN`.
    pub pfs_group: Option<u16>,
}

impl XrSuite {
    /// The seed's suite: aes-cbc-256, sha-256, prf sha-256, group 20;
    /// esp-256-aes esp-hmac-sha-256; pfs group19.
    pub fn seed() -> XrSuite {
        XrSuite {
            ike_encryption: "aes-cbc-256".into(),
            ike_integrity: "sha-256".into(),
            ike_prf: "sha-256".into(),
            ike_group: 20,
            esp_transform: "esp-256-aes esp-hmac-sha-256".into(),
            pfs_group: Some(19),
        }
    }

    /// A suite from its parts.
    pub fn new(
        ike_encryption: &str,
        ike_integrity: &str,
        ike_prf: &str,
        ike_group: u16,
        esp_transform: &str,
    ) -> XrSuite {
        XrSuite {
            ike_encryption: ike_encryption.into(),
            ike_integrity: ike_integrity.into(),
            ike_prf: ike_prf.into(),
            ike_group,
            esp_transform: esp_transform.into(),
            pfs_group: None,
        }
    }
}

/// The timers of an SA's life in a generated configuration: lifetimes (the
/// hard ones: xrsecd rekeys before them) and dead peer detection. `None`
/// leaves the daemon's default (IOS-XR's: 86,400 s for the IKE SA, 3,600 s
/// for the Child SA, no DPD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XrLifetimes {
    /// `ikev2 profile` `lifetime SECONDS` (at least 10).
    pub ike_secs: Option<u32>,
    /// `ipsec profile` `set security-association lifetime seconds N` (at
    /// least 10).
    pub child_secs: Option<u32>,
    /// `ikev2 profile` `dpd INTERVAL RETRIES`.
    pub dpd: Option<(u32, u32)>,
    /// `ipsec profile` `set security-association lifetime kilobytes N` (at
    /// least 2,560).
    pub child_kilobytes: Option<u64>,
}

/// One router's configuration in the running-config form, tunnel-ip1 from
/// `local` to `remote` with `tunnel_addr`/30, the lab PSK, and `suite`.
pub fn router_config(
    local: Ipv4Addr,
    remote: Ipv4Addr,
    tunnel_addr: Ipv4Addr,
    suite: &XrSuite,
) -> String {
    router_config_with(local, remote, tunnel_addr, suite, &XrLifetimes::default())
}

/// [`router_config`] with these lifetimes and DPD.
pub fn router_config_with(
    local: Ipv4Addr,
    remote: Ipv4Addr,
    tunnel_addr: Ipv4Addr,
    suite: &XrSuite,
    lifetimes: &XrLifetimes,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "ikev2 proposal LAB");
    let _ = writeln!(s, " encryption {}", suite.ike_encryption);
    if !suite.ike_integrity.is_empty() {
        let _ = writeln!(s, " integrity {}", suite.ike_integrity);
    }
    let _ = writeln!(s, " prf {}", suite.ike_prf);
    let _ = writeln!(s, " dh-group {}", suite.ike_group);
    let _ = writeln!(s, "!");
    let _ = writeln!(
        s,
        "ikev2 policy LAB\n match address local {local}\n proposal LAB\n!"
    );
    let _ = writeln!(
        s,
        "keyring LAB\n peer PEER\n  address {remote} 255.255.255.255\n  pre-shared-key {LAB_PSK}\n !\n!"
    );
    let _ = writeln!(
        s,
        "ikev2 profile LAB\n keyring LAB\n match identity remote address {remote} 255.255.255.255\n authentication local pre-shared\n authentication remote pre-shared"
    );
    if let Some(secs) = lifetimes.ike_secs {
        let _ = writeln!(s, " lifetime {secs}");
    }
    if let Some((interval, retries)) = lifetimes.dpd {
        let _ = writeln!(s, " dpd {interval} {retries}");
    }
    let _ = writeln!(s, "!");
    let _ = writeln!(
        s,
        "ipsec transform-set LAB\n mode tunnel\n transform {}\n!",
        suite.esp_transform
    );
    let _ = writeln!(
        s,
        "ipsec profile LAB\n set ikev2-profile LAB\n set transform-set LAB"
    );
    if let Some(g) = suite.pfs_group {
        let _ = writeln!(s, " set pfs group{g}");
    }
    if let Some(secs) = lifetimes.child_secs {
        let _ = writeln!(s, " set security-association lifetime seconds {secs}");
    }
    if let Some(kb) = lifetimes.child_kilobytes {
        let _ = writeln!(s, " set security-association lifetime kilobytes {kb}");
    }
    let _ = writeln!(s, "!");
    let _ = writeln!(
        s,
        "interface tunnel-ip1\n ipv4 address {tunnel_addr} 255.255.255.252\n tunnel mode ipsec ipv4\n tunnel source {local}\n tunnel destination {remote}\n tunnel protection ipsec profile LAB\n!"
    );
    s
}

/// A running xrsecd in one namespace of a topology.
pub struct Xrsecd {
    child: LabChild,
    control: PathBuf,
    config: PathBuf,
    xrsec: PathBuf,
    _dir: LabDir,
}

impl Xrsecd {
    /// Writes `config_text` and starts xrsecd on it in `node`, with
    /// `extra_args` (e.g. `--save-keys DIR`), at log level debug. Returns
    /// once the control socket answers.
    pub fn start(
        topo: &Topology,
        node: Node,
        config_text: &str,
        extra_args: &[&str],
    ) -> Result<Xrsecd> {
        let dir = LabDir::new(&format!("xrsecd-{}", node.role()))?;
        let config = dir.path().join("router.conf");
        std::fs::write(&config, config_text)
            .map_err(|e| LabError::new(format!("writing {}: {e}", config.display())))?;
        Self::start_with_file(topo, node, &config, dir, extra_args)
    }

    /// Starts xrsecd on an existing configuration file.
    pub fn start_file(
        topo: &Topology,
        node: Node,
        config: &Path,
        extra_args: &[&str],
    ) -> Result<Xrsecd> {
        let dir = LabDir::new(&format!("xrsecd-{}", node.role()))?;
        Self::start_with_file(topo, node, config, dir, extra_args)
    }

    fn start_with_file(
        topo: &Topology,
        node: Node,
        config: &Path,
        dir: LabDir,
        extra_args: &[&str],
    ) -> Result<Xrsecd> {
        let xrsecd = find_binary("xrsecd")?;
        let xrsec = find_binary("xrsec")?;
        let control = dir.path().join("xrsecd.sock");
        let log = dir.path().join("xrsecd.log");
        let xrsecd_s = xrsecd.display().to_string();
        let config_s = config.display().to_string();
        let control_s = control.display().to_string();
        let mut argv: Vec<&str> = vec![
            &xrsecd_s,
            "--config",
            &config_s,
            "--control",
            &control_s,
            "--log-level",
            "debug",
        ];
        argv.extend_from_slice(extra_args);
        let mut child = topo.spawn(node, &argv, &log)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if !child.is_running() {
                return Err(LabError::new(format!(
                    "xrsecd exited at start:\n{}",
                    child.output()
                )));
            }
            if xrsec_control::client::request(&control, &Request::Status).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(LabError::new(format!(
                    "xrsecd's control socket never answered:\n{}",
                    child.output()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Xrsecd {
            child,
            control,
            config: config.to_owned(),
            xrsec,
            _dir: dir,
        })
    }

    /// The control socket.
    pub fn control(&self) -> &Path {
        &self.control
    }

    /// The configuration file it runs on.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        self.child.output()
    }

    /// The process.
    pub fn child(&mut self) -> &mut LabChild {
        &mut self.child
    }

    /// The daemon's status.
    pub fn status(&self) -> Result<Status> {
        match xrsec_control::client::request(&self.control, &Request::Status) {
            Ok(Response::Status(s)) => Ok(s),
            Ok(other) => Err(LabError::new(format!("unexpected answer {other:?}"))),
            Err(e) => Err(LabError::new(format!("{e}\nlog:\n{}", self.log()))),
        }
    }

    /// Waits until every tunnel not shut down is up.
    pub fn wait_up(&self, timeout: Duration) -> Result<Status> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status()?;
            if s.tunnels
                .iter()
                .all(|t| matches!(t.state, TunnelState::Up | TunnelState::AdminDown))
            {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(LabError::new(format!(
                    "tunnels not up after {} s: {:?}\nlog:\n{}",
                    timeout.as_secs(),
                    s.tunnels
                        .iter()
                        .map(|t| (&t.name, t.state, &t.last_error))
                        .collect::<Vec<_>>(),
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `xrsec --control SOCKET ARGS...` and returns its stdout (error
    /// with stderr on a non-zero exit).
    pub fn xrsec(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.xrsec)
            .arg("--control")
            .arg(&self.control)
            .args(args)
            .output()
            .map_err(|e| LabError::new(format!("running {}: {e}", self.xrsec.display())))?;
        if !out.status.success() {
            return Err(LabError::new(format!(
                "xrsec {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `xrsec --json ARGS...` for a `show` whose JSON answer is the
    /// daemon's whole status (`show ikev2 session [detail]`, `show ipsec sa`)
    /// and reads it back as a [`Status`], as a script would.
    pub fn xrsec_json_status(&self, args: &[&str]) -> Result<Status> {
        let mut argv = vec!["--json"];
        argv.extend_from_slice(args);
        let text = self.xrsec(&argv)?;
        serde_json::from_str(&text).map_err(|e| {
            LabError::new(format!(
                "xrsec --json {}: not a status: {e}\n{text}",
                args.join(" ")
            ))
        })
    }

    /// Sends a signal (SIGHUP reloads, SIGTERM stops).
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        self.child.signal(signal)
    }

    /// SIGTERM and wait (up to 10 s); returns whether it exited with 0.
    pub fn stop(&mut self) -> Result<bool> {
        let status = self
            .child
            .stop_with(Signal::Terminate, Duration::from_secs(10))?;
        Ok(status.success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_and_dpd_go_into_their_profiles() {
        let (a, b, inner) = (
            Ipv4Addr::new(10, 99, 0, 1),
            Ipv4Addr::new(10, 99, 0, 2),
            Ipv4Addr::new(192, 0, 2, 1),
        );
        let plain = router_config(a, b, inner, &XrSuite::seed());
        assert!(
            !plain.contains("lifetime") && !plain.contains("dpd"),
            "{plain}"
        );
        assert!(
            plain.contains(" authentication remote pre-shared\n!\n")
                && plain.contains(" set pfs group19\n!\n"),
            "{plain}"
        );
        let lifetimes = XrLifetimes {
            ike_secs: Some(25),
            child_secs: Some(10),
            dpd: Some((2, 3)),
            child_kilobytes: None,
        };
        let text = router_config_with(a, b, inner, &XrSuite::seed(), &lifetimes);
        assert!(
            text.contains(" authentication remote pre-shared\n lifetime 25\n dpd 2 3\n!\n"),
            "{text}"
        );
        assert!(
            text.contains(" set pfs group19\n set security-association lifetime seconds 10\n!\n"),
            "{text}"
        );
    }
}
