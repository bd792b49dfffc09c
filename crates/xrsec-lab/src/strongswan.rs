//! strongSwan as the lab's reference peer: one charon per namespace.
//!
//! charon's pid file path is compiled in, so each instance runs in a private
//! mount namespace where its own directory is bind-mounted over `/run`
//! (LAB.md). Its configuration (`strongswan.conf`, `swanctl/swanctl.conf`),
//! its vici socket and its log live in a directory of its own; swanctl
//! reaches it through that socket from the caller's namespace (unix sockets
//! do not care about network namespaces). The data plane is kernel-libipsec
//! (user-space ESP over a TUN), the only one on kernels without ESP, which
//! always puts ESP in UDP 4500.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{check, run_checked, run_with_timeout, tail_of, LabChild, LabDir};
use crate::topology::{IperfOptions, IperfResult, Node, Topology};
use crate::{LabError, Result};

/// The charon binary of Debian's strongswan-charon.
pub const CHARON_BINARY: &str = "/usr/lib/ipsec/charon";

/// `charon.load`: the user-space data plane first; `kdf` is needed for
/// IKE_AUTH ("key derivation failed" without it).
pub const CHARON_PLUGINS: &str = "kernel-libipsec kernel-netlink socket-default nonce random \
     openssl pem pkcs1 pkcs8 x509 revocation constraints pubkey hmac sha1 sha2 aes gcm \
     curve25519 kdf vici";

const SWANCTL_TIMEOUT: Duration = Duration::from_secs(30);

/// How the peers authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwanAuth {
    /// The same pre-shared key on both sides.
    Psk(String),
    /// X.509 certificates on both sides (`auth = pubkey`): ours and its key,
    /// and the CA that issued both ends' certificates. [`Charon::new`] copies
    /// them into the instance's `swanctl/x509`, `swanctl/private` and
    /// `swanctl/x509ca`, which `swanctl --load-all` reads. Each side's
    /// identity (an address by default) must be in its certificate's
    /// subjectAltName.
    Certificate {
        /// Our certificate (PEM or DER).
        cert: PathBuf,
        /// Its private key, unencrypted.
        key: PathBuf,
        /// The CA certificate both ends' certificates chain to.
        ca: PathBuf,
        /// Our `local.auth` when not plain `pubkey`: e.g. `pubkey-sha256`
        /// to sign with RFC 7427 SHA-256 even with a key whose strength
        /// would have charon pick SHA-384 or SHA-512.
        local_auth: Option<String>,
    },
}

/// Where [`SwanAuth::Certificate`]'s files go in the swanctl directory.
const LOCAL_CERT: &str = "lab-local.crt";
const LOCAL_KEY: &str = "lab-local.key";
const CA_CERT: &str = "lab-ca.crt";

/// swanctl's `start_action` of the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartAction {
    /// Wait to be initiated (by [`Charon::initiate`] or the peer).
    #[default]
    None,
    /// Initiate as soon as loaded.
    Start,
    /// Install a trap policy and initiate on the first matching packet.
    Trap,
}

impl StartAction {
    fn keyword(self) -> &'static str {
        match self {
            StartAction::None => "none",
            StartAction::Start => "start",
            StartAction::Trap => "trap",
        }
    }
}

/// Lifetimes in seconds; `None` leaves strongSwan's default (IKE rekey 4 h,
/// CHILD rekey 1 h, hard life 110 % of that, randomised by 10 %).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SwanLifetimes {
    /// IKE SA `rekey_time`.
    pub ike_rekey_secs: Option<u32>,
    /// CHILD SA `rekey_time`.
    pub child_rekey_secs: Option<u32>,
    /// CHILD SA `life_time` (hard expiry).
    pub child_life_secs: Option<u32>,
    /// CHILD SA `rand_time` (0 for a deterministic rekey).
    pub child_rand_secs: Option<u32>,
}

/// One connection with one child, as swanctl.conf will say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwanConfig {
    /// The connection (IKE SA) name.
    pub conn_name: String,
    /// The child (CHILD SA) name.
    pub child_name: String,
    /// Our address (`local_addrs`).
    pub local_addr: Ipv4Addr,
    /// The peer's address, or any (`%any`, a responder behind whose peer is a NAT).
    pub remote_addr: Option<Ipv4Addr>,
    /// Our IKE identity; `local_addr` when `None`.
    pub local_id: Option<String>,
    /// The peer's IKE identity; `remote_addr` when `None` (required when
    /// `remote_addr` is `None`).
    pub remote_id: Option<String>,
    /// How both sides authenticate.
    pub auth: SwanAuth,
    /// IKE proposal in strongSwan syntax (`aes256-sha256-prfsha256-ecp384`).
    pub ike_proposal: String,
    /// ESP proposal, PFS group included (`aes256-sha256-ecp256`, `aes256gcm16-ecp521`).
    pub esp_proposal: String,
    /// Our traffic selectors; `inner_local/32` when empty and that is set.
    pub local_ts: Vec<String>,
    /// The peer's traffic selectors; `inner_remote/32` when empty and that is set.
    pub remote_ts: Vec<String>,
    /// What the child does once loaded.
    pub start_action: StartAction,
    /// Rekey and expiry times.
    pub lifetimes: SwanLifetimes,
    /// Our tunnel's inner address, put on `lo` as /32 by [`Charon::start`].
    pub inner_local: Option<Ipv4Addr>,
    /// The peer's inner address.
    pub inner_remote: Option<Ipv4Addr>,
    /// DPD interval, or none.
    pub dpd_delay_secs: Option<u32>,
    /// MOBIKE (off by default: xrsec does not speak it).
    pub mobike: bool,
    /// Log the IKE and CHILD keys (charon levels ike/chd 4) so that tshark
    /// can decrypt a capture; see [`parse_logged_secrets`].
    pub log_keys: bool,
    /// Raw `key = value` lines added to the connection section.
    pub conn_extra: Vec<String>,
    /// Raw `key = value` lines added to the child section.
    pub child_extra: Vec<String>,
    /// Raw `key = value` lines added to strongswan.conf's `charon` section,
    /// e.g. `signature_authentication = no` (RFC 7296 method 1 for RSA
    /// instead of RFC 7427 signatures).
    pub charon_extra: Vec<String>,
}

impl SwanConfig {
    /// A PSK tunnel from `local_addr` to `remote_addr` with these proposals
    /// and every other field at its default.
    pub fn psk(
        local_addr: Ipv4Addr,
        remote_addr: Option<Ipv4Addr>,
        psk: &str,
        ike_proposal: &str,
        esp_proposal: &str,
    ) -> SwanConfig {
        SwanConfig {
            conn_name: "lab".into(),
            child_name: "tunnel".into(),
            local_addr,
            remote_addr,
            local_id: None,
            remote_id: None,
            auth: SwanAuth::Psk(psk.into()),
            ike_proposal: ike_proposal.into(),
            esp_proposal: esp_proposal.into(),
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
            start_action: StartAction::None,
            lifetimes: SwanLifetimes::default(),
            inner_local: None,
            inner_remote: None,
            dpd_delay_secs: None,
            mobike: false,
            log_keys: false,
            conn_extra: Vec::new(),
            child_extra: Vec::new(),
            charon_extra: Vec::new(),
        }
    }

    /// The same authenticating with certificates ([`SwanAuth::Certificate`],
    /// plain `pubkey`) instead of the pre-shared key.
    pub fn with_certificate(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        ca: impl Into<PathBuf>,
    ) -> SwanConfig {
        self.auth = SwanAuth::Certificate {
            cert: cert.into(),
            key: key.into(),
            ca: ca.into(),
            local_auth: None,
        };
        self
    }

    /// The same with inner addresses (and so /32 traffic selectors).
    pub fn with_inner(mut self, local: Ipv4Addr, remote: Ipv4Addr) -> SwanConfig {
        self.inner_local = Some(local);
        self.inner_remote = Some(remote);
        self
    }

    fn local_id(&self) -> String {
        self.local_id
            .clone()
            .unwrap_or_else(|| self.local_addr.to_string())
    }

    fn remote_id(&self) -> Result<String> {
        match (&self.remote_id, self.remote_addr) {
            (Some(id), _) => Ok(id.clone()),
            (None, Some(addr)) => Ok(addr.to_string()),
            (None, None) => Err(LabError::new(
                "SwanConfig: remote_id is required when remote_addr is %any",
            )),
        }
    }

    fn selectors(explicit: &[String], inner: Option<Ipv4Addr>) -> Option<String> {
        if !explicit.is_empty() {
            Some(explicit.join(","))
        } else {
            inner.map(|a| format!("{a}/32"))
        }
    }

    /// The text of `swanctl.conf`.
    pub fn render_swanctl_conf(&self) -> Result<String> {
        let local_id = self.local_id();
        let remote_id = self.remote_id()?;
        for (what, value) in [
            ("connection name", &self.conn_name),
            ("child name", &self.child_name),
            ("local id", &local_id),
            ("remote id", &remote_id),
        ] {
            if value.is_empty() || value.contains(['"', '\n', '{', '}']) {
                return Err(LabError::new(format!(
                    "SwanConfig: unusable {what} {value:?}"
                )));
            }
        }
        let remote_addrs = self
            .remote_addr
            .map_or_else(|| "%any".to_string(), |a| a.to_string());
        let mut s = String::new();
        let _ = writeln!(s, "# Written by xrsec-lab.\nconnections {{");
        let _ = writeln!(s, "  {} {{", self.conn_name);
        let _ = writeln!(s, "    version = 2");
        let _ = writeln!(s, "    local_addrs = {}", self.local_addr);
        let _ = writeln!(s, "    remote_addrs = {remote_addrs}");
        let _ = writeln!(s, "    proposals = {}", self.ike_proposal);
        let _ = writeln!(s, "    mobike = {}", if self.mobike { "yes" } else { "no" });
        if let Some(t) = self.lifetimes.ike_rekey_secs {
            let _ = writeln!(s, "    rekey_time = {t}s");
        }
        if let Some(t) = self.dpd_delay_secs {
            let _ = writeln!(s, "    dpd_delay = {t}s");
        }
        for line in &self.conn_extra {
            let _ = writeln!(s, "    {line}");
        }
        let (local_auth, remote_auth, certs) = match &self.auth {
            SwanAuth::Psk(_) => ("psk", "psk", String::new()),
            SwanAuth::Certificate { local_auth, .. } => (
                local_auth.as_deref().unwrap_or("pubkey"),
                "pubkey",
                format!("      certs = {LOCAL_CERT}\n"),
            ),
        };
        if local_auth.is_empty() || local_auth.contains(['"', '\n', '{', '}']) {
            return Err(LabError::new(format!(
                "SwanConfig: unusable local auth {local_auth:?}"
            )));
        }
        let _ = writeln!(
            s,
            "    local {{\n      auth = {local_auth}\n{certs}      id = \"{local_id}\"\n    }}"
        );
        let _ = writeln!(
            s,
            "    remote {{\n      auth = {remote_auth}\n      id = \"{remote_id}\"\n    }}"
        );
        let _ = writeln!(s, "    children {{");
        let _ = writeln!(s, "      {} {{", self.child_name);
        let _ = writeln!(s, "        mode = tunnel");
        if let Some(ts) = Self::selectors(&self.local_ts, self.inner_local) {
            let _ = writeln!(s, "        local_ts = {ts}");
        }
        if let Some(ts) = Self::selectors(&self.remote_ts, self.inner_remote) {
            let _ = writeln!(s, "        remote_ts = {ts}");
        }
        let _ = writeln!(s, "        esp_proposals = {}", self.esp_proposal);
        let _ = writeln!(s, "        start_action = {}", self.start_action.keyword());
        let lt = &self.lifetimes;
        for (key, value) in [
            ("rekey_time", lt.child_rekey_secs),
            ("life_time", lt.child_life_secs),
            ("rand_time", lt.child_rand_secs),
        ] {
            if let Some(v) = value {
                let _ = writeln!(s, "        {key} = {v}s");
            }
        }
        for line in &self.child_extra {
            let _ = writeln!(s, "        {line}");
        }
        let _ = writeln!(s, "      }}\n    }}\n  }}\n}}");
        match &self.auth {
            SwanAuth::Psk(psk) => {
                // Hex (0x prefix) so that no key needs quoting.
                let hex: String = psk.bytes().map(|b| format!("{b:02x}")).collect();
                let _ = writeln!(s, "secrets {{\n  ike-lab {{");
                let _ = writeln!(s, "    id-local = \"{local_id}\"");
                let _ = writeln!(s, "    id-remote = \"{remote_id}\"");
                let _ = writeln!(s, "    secret = 0x{hex}\n  }}\n}}");
            }
            // The private key is loaded from swanctl/private, unencrypted:
            // no secret to give.
            SwanAuth::Certificate { .. } => {}
        }
        Ok(s)
    }
}

/// The text of `strongswan.conf` for an instance living in `dir`.
fn render_strongswan_conf(dir: &Path, log_keys: bool, charon_extra: &[String]) -> String {
    let d = dir.display();
    let key_level = if log_keys { 4 } else { 2 };
    let extra: String = charon_extra
        .iter()
        .map(|line| format!("  {line}\n"))
        .collect();
    format!(
        "# Written by xrsec-lab: one charon of the lab.\n\
         charon {{\n\
         \x20 load = {CHARON_PLUGINS}\n\
         {extra}\
         \x20 plugins {{\n\
         \x20   vici {{\n\
         \x20     socket = unix://{d}/charon.vici\n\
         \x20   }}\n\
         \x20 }}\n\
         \x20 filelog {{\n\
         \x20   lab {{\n\
         \x20     path = {d}/charon.log\n\
         \x20     time_format = %T\n\
         \x20     append = no\n\
         \x20     flush_line = yes\n\
         \x20     default = 1\n\
         \x20     ike = {key_level}\n\
         \x20     chd = {key_level}\n\
         \x20     cfg = 2\n\
         \x20   }}\n\
         \x20 }}\n\
         }}\n"
    )
}

/// One charon in one namespace; stopped and its directory removed on drop.
#[derive(Debug)]
pub struct Charon {
    ns: String,
    config: SwanConfig,
    dir: LabDir,
    process: Option<LabChild>,
}

impl Charon {
    /// Prepares (does not start) a charon in host `node` of `topology`.
    pub fn new(topology: &Topology, node: Node, config: SwanConfig) -> Result<Charon> {
        Charon::in_namespace(topology.ns(node), config)
    }

    /// Prepares (does not start) a charon in namespace `ns`.
    pub fn in_namespace(ns: &str, config: SwanConfig) -> Result<Charon> {
        let dir = LabDir::new("charon")?;
        let p = dir.path();
        let io = |e: std::io::Error| LabError::new(format!("charon dir {}: {e}", p.display()));
        fs::create_dir_all(p.join("run")).map_err(io)?;
        // swanctl --load-all complains about each missing credential folder.
        for sub in [
            "x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private",
            "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12",
        ] {
            fs::create_dir_all(p.join("swanctl").join(sub)).map_err(io)?;
        }
        fs::write(
            p.join("strongswan.conf"),
            render_strongswan_conf(p, config.log_keys, &config.charon_extra),
        )
        .map_err(io)?;
        if let SwanAuth::Certificate { cert, key, ca, .. } = &config.auth {
            let swanctl = p.join("swanctl");
            for (from, to) in [
                (cert, swanctl.join("x509").join(LOCAL_CERT)),
                (key, swanctl.join("private").join(LOCAL_KEY)),
                (ca, swanctl.join("x509ca").join(CA_CERT)),
            ] {
                fs::copy(from, &to).map_err(|e| {
                    LabError::new(format!(
                        "copying {} to {}: {e}",
                        from.display(),
                        to.display()
                    ))
                })?;
            }
        }
        fs::write(
            p.join("swanctl").join("swanctl.conf"),
            config.render_swanctl_conf()?,
        )
        .map_err(io)?;
        Ok(Charon {
            ns: ns.to_string(),
            config,
            dir,
            process: None,
        })
    }

    /// Its configuration.
    pub fn config(&self) -> &SwanConfig {
        &self.config
    }

    /// Its directory (configs, `charon.log`, `charon.vici`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The namespace it runs in.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    fn vici_uri(&self) -> String {
        format!("unix://{}/charon.vici", self.dir().display())
    }

    /// Puts the inner address on `lo`, starts charon and waits until its
    /// vici socket answers.
    pub fn start(&mut self) -> Result<()> {
        if self.process.is_some() {
            return Err(LabError::new("charon already started"));
        }
        if let Some(inner) = self.config.inner_local {
            run_checked(
                &[
                    "ip",
                    "-n",
                    &self.ns,
                    "addr",
                    "replace",
                    &format!("{inner}/32"),
                    "dev",
                    "lo",
                ],
                SWANCTL_TIMEOUT,
            )?;
        }
        let dir = self.dir().to_string_lossy().into_owned();
        let mut cmd = Command::new("ip");
        // The directory is passed as $1, never spliced into the script.
        cmd.args([
            "netns",
            "exec",
            &self.ns,
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount --bind \"$1/run\" /run && exec env STRONGSWAN_CONF=\"$1/strongswan.conf\" \"$2\"",
            "charon-lab",
            &dir,
            CHARON_BINARY,
        ]);
        let out = self.dir().join("charon.out");
        let mut child = LabChild::spawn(cmd, &out)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if !child.is_running() {
                return Err(LabError::new(format!(
                    "charon in {} exited at start:{}{}",
                    self.ns,
                    tail_of(&child.output(), 20),
                    tail_of(&self.log(), 20)
                )));
            }
            let socket = self.dir().join("charon.vici");
            if socket.exists() && self.swanctl(&["--stats"]).is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(LabError::new(format!(
                    "charon in {}: vici never answered{}",
                    self.ns,
                    tail_of(&self.log(), 20)
                )));
            }
            thread::sleep(Duration::from_millis(25));
        }
        self.process = Some(child);
        Ok(())
    }

    /// Runs `swanctl OPERATION --uri ... ARGS` against this charon (the
    /// operation must come first, `--uri` after it) and returns stdout.
    pub fn swanctl(&self, args: &[&str]) -> Result<String> {
        let (op, rest) = args
            .split_first()
            .ok_or_else(|| LabError::new("swanctl: no operation"))?;
        let mut cmd = Command::new("swanctl");
        cmd.env("STRONGSWAN_CONF", self.dir().join("strongswan.conf"))
            .env("SWANCTL_DIR", self.dir().join("swanctl"))
            .arg(op)
            .args(["--uri", &self.vici_uri()])
            .args(rest);
        let output = run_with_timeout(&mut cmd, SWANCTL_TIMEOUT)?;
        check(&format!("swanctl {}", args.join(" ")), output)
    }

    fn swanctl_logged(&self, args: &[&str]) -> Result<String> {
        self.swanctl(args)
            .map_err(|e| LabError::new(format!("{e}\ncharon log:{}", tail_of(&self.log(), 30))))
    }

    /// Loads the connection and its secret (`swanctl --load-all`).
    pub fn load(&self) -> Result<()> {
        self.swanctl_logged(&["--load-all", "--noprompt"]).map(drop)
    }

    /// Initiates `child` of the connection and waits for the outcome;
    /// returns swanctl's log of the exchange.
    pub fn initiate(&self, child: &str) -> Result<String> {
        let conn = self.config.conn_name.clone();
        self.swanctl_logged(&[
            "--initiate",
            "--child",
            child,
            "--ike",
            &conn,
            "--timeout",
            "15",
        ])
    }

    /// Deletes the connection's IKE SA (and its CHILD SAs), waiting for the
    /// peer's answer.
    pub fn terminate(&self) -> Result<()> {
        let conn = self.config.conn_name.clone();
        self.swanctl_logged(&["--terminate", "--ike", &conn, "--timeout", "15"])
            .map(drop)
    }

    /// Deletes the CHILD SAs named `child`.
    pub fn terminate_child(&self, child: &str) -> Result<()> {
        self.swanctl_logged(&["--terminate", "--child", child, "--timeout", "15"])
            .map(drop)
    }

    /// Rekeys the CHILD SAs named `child`.
    pub fn rekey_child(&self, child: &str) -> Result<()> {
        self.swanctl_logged(&["--rekey", "--child", child])
            .map(drop)
    }

    /// Rekeys the connection's IKE SA.
    pub fn rekey_ike(&self) -> Result<()> {
        let conn = self.config.conn_name.clone();
        self.swanctl_logged(&["--rekey", "--ike", &conn]).map(drop)
    }

    /// The SAs charon has now (`swanctl --list-sas`).
    pub fn list_sas(&self) -> Result<Vec<SwanSa>> {
        Ok(parse_list_sas(&self.swanctl(&["--list-sas"])?))
    }

    /// charon's log so far.
    pub fn log(&self) -> String {
        fs::read(self.dir().join("charon.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The keys charon logged (needs [`SwanConfig::log_keys`]).
    pub fn logged_secrets(&self) -> Vec<LoggedSecret> {
        parse_logged_secrets(&self.log())
    }

    /// Stops charon (SIGTERM, then SIGKILL after 3 s).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            process.stop_with(crate::Signal::Terminate, Duration::from_secs(3))?;
        }
        Ok(())
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// An IKE SA as `swanctl --list-sas` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwanSa {
    /// Connection name.
    pub name: String,
    /// charon's unique id (`#N`).
    pub unique_id: u32,
    /// `ESTABLISHED`, `CONNECTING`, `REKEYING`, `DELETING`, ...
    pub state: String,
    /// `IKEv2`.
    pub version: String,
    /// Initiator's SPI.
    pub spi_i: u64,
    /// Responder's SPI.
    pub spi_r: u64,
    /// Whether this charon is the SA's initiator (the `*` mark).
    pub local_is_initiator: bool,
    /// Our identity.
    pub local_id: String,
    /// The peer's identity.
    pub remote_id: String,
    /// Our address and port (4500 once NAT-T moved the SA).
    pub local_addr: Option<SocketAddr>,
    /// The peer's address and port as we see it (the NAT's, behind one).
    pub remote_addr: Option<SocketAddr>,
    /// `ENCR/INTEG/PRF/DH` in strongSwan's names, e.g.
    /// `AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_384`.
    pub algorithms: String,
    /// Its CHILD SAs.
    pub children: Vec<SwanChildSa>,
}

impl SwanSa {
    /// Whether the IKE SA is `ESTABLISHED`.
    pub fn is_established(&self) -> bool {
        self.state == "ESTABLISHED"
    }

    /// The first CHILD SA named `name`.
    pub fn child(&self, name: &str) -> Option<&SwanChildSa> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// A CHILD SA as `swanctl --list-sas` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwanChildSa {
    /// Child name.
    pub name: String,
    /// charon's unique id (`#N`).
    pub unique_id: u32,
    /// Request id.
    pub reqid: u32,
    /// `INSTALLED`, `REKEYED`, `DELETING`, ...
    pub state: String,
    /// `TUNNEL`, `TUNNEL-in-UDP`, ...
    pub mode: String,
    /// `ESP`.
    pub protocol: String,
    /// `ENCR/INTEG[/DH]` in strongSwan's names (the DH group shows only
    /// after a rekey with PFS).
    pub algorithms: String,
    /// SPI of inbound packets (the peer's outbound).
    pub spi_in: u32,
    /// SPI of outbound packets (the peer's inbound).
    pub spi_out: u32,
    /// Bytes received.
    pub bytes_in: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Our traffic selectors.
    pub local_ts: Vec<String>,
    /// The peer's traffic selectors.
    pub remote_ts: Vec<String>,
}

impl SwanChildSa {
    /// Whether the CHILD SA is `INSTALLED`.
    pub fn is_installed(&self) -> bool {
        self.state == "INSTALLED"
    }
}

/// Parses the default (human) output of `swanctl --list-sas`. Lines it does
/// not know are skipped, so newer strongSwan output still parses.
///
/// The layout: an IKE SA header at column 0 (`NAME: #ID, STATE, IKEv2,
/// SPIi_i[*] SPIr_r[*]`), its details indented by two, each CHILD SA header
/// indented by two (`NAME: #ID, reqid N, STATE, MODE, PROTO:ALGS`) and the
/// child's details by four.
pub fn parse_list_sas(text: &str) -> Vec<SwanSa> {
    let mut sas: Vec<SwanSa> = Vec::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        if body.is_empty() {
            continue;
        }
        if indent == 0 {
            if let Some(sa) = parse_ike_header(body) {
                sas.push(sa);
            }
            continue;
        }
        let Some(sa) = sas.last_mut() else { continue };
        if indent <= 2 {
            if let Some(child) = parse_child_header(body) {
                sa.children.push(child);
            } else if let Some(rest) = body.strip_prefix("local ") {
                (sa.local_id, sa.local_addr) = parse_endpoint(rest);
            } else if let Some(rest) = body.strip_prefix("remote ") {
                (sa.remote_id, sa.remote_addr) = parse_endpoint(rest);
            } else if !body.contains(' ') && body.contains('/') {
                sa.algorithms = body.to_string();
            }
            continue;
        }
        let Some(child) = sa.children.last_mut() else {
            continue;
        };
        let mut words = body.split_whitespace();
        match words.next() {
            Some("in") => {
                (child.spi_in, child.bytes_in, child.packets_in) = parse_traffic(body);
            }
            Some("out") => {
                (child.spi_out, child.bytes_out, child.packets_out) = parse_traffic(body);
            }
            Some("local") => child.local_ts = words.map(String::from).collect(),
            Some("remote") => child.remote_ts = words.map(String::from).collect(),
            _ => {}
        }
    }
    sas
}

fn parse_ike_header(body: &str) -> Option<SwanSa> {
    let (name, rest) = body.split_once(": #")?;
    let parts: Vec<&str> = rest.split(", ").collect();
    if parts.len() < 4 {
        return None;
    }
    let mut sa = SwanSa {
        name: name.to_string(),
        unique_id: parts[0].parse().ok()?,
        state: parts[1].to_string(),
        version: parts[2].to_string(),
        ..SwanSa::default()
    };
    for spi in parts[3].split_whitespace() {
        let local = spi.ends_with('*');
        let spi = spi.trim_end_matches('*');
        if let Some(hex) = spi.strip_suffix("_i") {
            sa.spi_i = u64::from_str_radix(hex, 16).ok()?;
            sa.local_is_initiator |= local;
        } else if let Some(hex) = spi.strip_suffix("_r") {
            sa.spi_r = u64::from_str_radix(hex, 16).ok()?;
        }
    }
    Some(sa)
}

fn parse_child_header(body: &str) -> Option<SwanChildSa> {
    let (name, rest) = body.split_once(": #")?;
    let parts: Vec<&str> = rest.split(", ").collect();
    if parts.len() < 5 {
        return None;
    }
    let (protocol, algorithms) = parts[4].split_once(':').unwrap_or((parts[4], ""));
    Some(SwanChildSa {
        name: name.to_string(),
        unique_id: parts[0].parse().ok()?,
        reqid: parts[1].strip_prefix("reqid ")?.parse().ok()?,
        state: parts[2].to_string(),
        mode: parts[3].to_string(),
        protocol: protocol.to_string(),
        algorithms: algorithms.to_string(),
        ..SwanChildSa::default()
    })
}

/// `'ID' @ ADDR[PORT]`.
fn parse_endpoint(rest: &str) -> (String, Option<SocketAddr>) {
    let rest = rest.trim();
    let (id, addr) = rest.rsplit_once(" @ ").unwrap_or((rest, ""));
    let id = id.trim().trim_matches('\'').to_string();
    let addr = addr
        .trim()
        .strip_suffix(']')
        .and_then(|a| a.split_once('['))
        .and_then(|(ip, port)| Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?)));
    (id, addr)
}

/// `in  c2d3e4f5[ (-|0x...)],  123 bytes,  4 packets[,  1s ago]`.
fn parse_traffic(body: &str) -> (u32, u64, u64) {
    let mut fields = body.split(',');
    let spi = fields
        .next()
        .and_then(|f| f.split_whitespace().nth(1))
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .unwrap_or(0);
    let (mut bytes, mut packets) = (0, 0);
    for field in fields {
        let mut words = field.split_whitespace();
        let (Some(n), Some(unit)) = (words.next(), words.next()) else {
            continue;
        };
        match unit {
            "bytes" => bytes = n.parse().unwrap_or(0),
            "packets" => packets = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    (spi, bytes, packets)
}

/// A key charon printed at log level 4 (`LABEL => N bytes @ 0x...`
/// followed by a hex dump), e.g. `Sk_ei secret` or
/// `encryption initiator key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedSecret {
    /// What charon called it.
    pub label: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Every key dump in a charon log, in the order the dumps end (a rekey adds
/// new ones after the old). Threads interleave lines, so a dump's lines are matched to it
/// by thread number and subsystem.
pub fn parse_logged_secrets(log: &str) -> Vec<LoggedSecret> {
    struct Open {
        thread: String,
        len: usize,
        secret: LoggedSecret,
    }
    let mut done = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    for line in log.lines() {
        let Some((thread, message)) = split_log_line(line) else {
            continue;
        };
        if let Some((label, rest)) = message.split_once(" => ") {
            let mut len = rest.split_whitespace();
            if let (Some(n), Some("bytes")) = (len.next(), len.next()) {
                if let Ok(n) = n.parse::<usize>() {
                    open.retain(|o| o.thread != thread);
                    open.push(Open {
                        thread: thread.clone(),
                        len: n,
                        secret: LoggedSecret {
                            label: label.trim().to_string(),
                            bytes: Vec::with_capacity(n),
                        },
                    });
                }
            }
            continue;
        }
        let Some(pos) = open.iter().position(|o| o.thread == thread) else {
            continue;
        };
        let Some((offset, dump)) = message.trim_start().split_once(": ") else {
            continue;
        };
        let o = &mut open[pos];
        if offset.parse::<usize>().ok() != Some(o.secret.bytes.len()) {
            continue;
        }
        // The dump shows at most 16 bytes a line, then their ASCII rendering
        // (which may itself look like hex): take only the bytes still due.
        let due = (o.len - o.secret.bytes.len()).min(16);
        let bytes: Vec<u8> = dump
            .split(' ')
            .take(due)
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect();
        o.secret.bytes.extend(bytes);
        if o.secret.bytes.len() >= o.len {
            done.push(open.remove(pos).secret);
        }
    }
    done
}

/// `[TIME ]THREAD[SUB] MESSAGE` -> (`THREAD[SUB]`, MESSAGE).
fn split_log_line(line: &str) -> Option<(String, &str)> {
    let open = line.find('[')?;
    let close = open + line[open..].find("] ")?;
    let digits = line[..open]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("");
    let key = format!("{digits}{}", &line[open..=close]);
    Some((key, &line[close + 2..]))
}

/// The IKE and ESP proposals both charons of a [`SwanPair`] use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwanSuite {
    /// e.g. `aes256-sha256-prfsha256-ecp384`.
    pub ike: String,
    /// e.g. `aes256-sha256-ecp256` or `aes256gcm16-ecp521`.
    pub esp: String,
}

impl SwanSuite {
    /// A suite from strongSwan proposal strings.
    pub fn new(ike: &str, esp: &str) -> SwanSuite {
        SwanSuite {
            ike: ike.into(),
            esp: esp.into(),
        }
    }
}

/// The rest of a [`SwanPair`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwanPairOptions {
    /// The pre-shared key.
    pub psk: String,
    /// Host a's inner address (on its `lo`).
    pub inner_a: Ipv4Addr,
    /// Host b's inner address (on its `lo`).
    pub inner_b: Ipv4Addr,
    /// Have both charons log their keys.
    pub log_keys: bool,
}

impl Default for SwanPairOptions {
    fn default() -> SwanPairOptions {
        SwanPairOptions {
            psk: "xrsec-lab-only-psk".into(),
            inner_a: Ipv4Addr::new(10, 1, 0, 1),
            inner_b: Ipv4Addr::new(10, 2, 0, 1),
            log_keys: false,
        }
    }
}

/// Two charons, initiator in host a and responder in host b, with one
/// tunnel between the inner addresses, up and checked: the baseline of
/// `xrsec bench --compare strongswan`.
#[derive(Debug)]
pub struct SwanPair {
    initiator: Charon,
    responder: Charon,
    options: SwanPairOptions,
}

impl SwanPair {
    /// [`SwanPair::up_with`] with the default options.
    pub fn up(topology: &Topology, suite: &SwanSuite) -> Result<SwanPair> {
        SwanPair::up_with(topology, suite, &SwanPairOptions::default())
    }

    /// Starts both charons, loads them, initiates from a and checks both
    /// sides with [`SwanPair::check`].
    pub fn up_with(
        topology: &Topology,
        suite: &SwanSuite,
        options: &SwanPairOptions,
    ) -> Result<SwanPair> {
        let (a, b) = (topology.address(Node::A), topology.address(Node::B));
        let mut ini = SwanConfig::psk(a, Some(b), &options.psk, &suite.ike, &suite.esp)
            .with_inner(options.inner_a, options.inner_b);
        ini.log_keys = options.log_keys;
        // Behind a NAT the responder cannot know the initiator's address in
        // advance, only its identity.
        let remote = (topology.a_as_seen_by_b() == a).then_some(a);
        let mut res = SwanConfig::psk(b, remote, &options.psk, &suite.ike, &suite.esp)
            .with_inner(options.inner_b, options.inner_a);
        res.remote_id = Some(a.to_string());
        res.log_keys = options.log_keys;
        let mut pair = SwanPair {
            initiator: Charon::new(topology, Node::A, ini)?,
            responder: Charon::new(topology, Node::B, res)?,
            options: options.clone(),
        };
        pair.initiator.start()?;
        pair.responder.start()?;
        pair.initiator.load()?;
        pair.responder.load()?;
        let child = pair.initiator.config().child_name.clone();
        pair.initiator.initiate(&child).map_err(|e| {
            LabError::new(format!(
                "{e}\nresponder log:{}",
                tail_of(&pair.responder.log(), 30)
            ))
        })?;
        pair.check()?;
        Ok(pair)
    }

    /// The initiator (host a).
    pub fn initiator(&self) -> &Charon {
        &self.initiator
    }

    /// The responder (host b).
    pub fn responder(&self) -> &Charon {
        &self.responder
    }

    /// Host a's inner address.
    pub fn inner_a(&self) -> Ipv4Addr {
        self.options.inner_a
    }

    /// Host b's inner address.
    pub fn inner_b(&self) -> Ipv4Addr {
        self.options.inner_b
    }

    /// Checks that each side has exactly one IKE SA, ESTABLISHED, with the
    /// same SPIs, and one INSTALLED CHILD SA whose inbound SPI is the other
    /// side's outbound; returns (initiator's, responder's) SA. Waits up to
    /// 3 s for the responder to catch up.
    pub fn check(&self) -> Result<(SwanSa, SwanSa)> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let result = self.check_once();
            match result {
                Ok(sas) => return Ok(sas),
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(e),
            }
        }
    }

    fn check_once(&self) -> Result<(SwanSa, SwanSa)> {
        let child = &self.initiator.config().child_name;
        let one = |charon: &Charon, side: &str| -> Result<SwanSa> {
            let sas = charon.list_sas()?;
            match sas.as_slice() {
                [sa] if sa.is_established()
                    && sa.child(child).is_some_and(SwanChildSa::is_installed) =>
                {
                    Ok(sa.clone())
                }
                _ => Err(LabError::new(format!(
                    "{side}: expected one ESTABLISHED IKE SA with CHILD {child} INSTALLED, got {sas:?}"
                ))),
            }
        };
        let i = one(&self.initiator, "initiator")?;
        let r = one(&self.responder, "responder")?;
        let (ic, rc) = (i.child(child), r.child(child));
        let (Some(ic), Some(rc)) = (ic, rc) else {
            return Err(LabError::new("child vanished"));
        };
        if (i.spi_i, i.spi_r) != (r.spi_i, r.spi_r) || !i.local_is_initiator {
            return Err(LabError::new(format!(
                "IKE SPIs differ: initiator {:016x}/{:016x}, responder {:016x}/{:016x}",
                i.spi_i, i.spi_r, r.spi_i, r.spi_r
            )));
        }
        if ic.spi_in != rc.spi_out || ic.spi_out != rc.spi_in {
            return Err(LabError::new(format!(
                "ESP SPIs do not pair: initiator in {:08x} out {:08x}, responder in {:08x} out {:08x}",
                ic.spi_in, ic.spi_out, rc.spi_in, rc.spi_out
            )));
        }
        Ok((i, r))
    }

    /// iperf3 TCP from a's inner address to b's, through the tunnel.
    pub fn iperf3(&self, topology: &Topology, seconds: u32, streams: u32) -> Result<IperfResult> {
        let mut o = IperfOptions::new(Node::A, Node::B, self.inner_b());
        o.bind = Some(self.inner_a());
        o.seconds = seconds;
        o.streams = streams;
        topology.iperf3_with(&o)
    }

    /// Both charon logs, for a failure message.
    pub fn logs(&self) -> String {
        format!(
            "--- initiator ({}) ---\n{}\n--- responder ({}) ---\n{}",
            self.initiator.dir().display(),
            self.initiator.log(),
            self.responder.dir().display(),
            self.responder.log()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST_SAS_INITIATOR: &str = "\
lab: #1, ESTABLISHED, IKEv2, 91d7662ea8fea7e4_i* bc12a39a2b8d5875_r
  local  '10.99.0.1' @ 10.99.0.1[4500]
  remote '10.99.0.2' @ 10.99.0.2[4500]
  AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_384
  established 0s ago, rekeying in 13814s
  tunnel: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_CBC-256/HMAC_SHA2_256_128
    installed 0s ago, rekeying in 3305s, expires in 3960s
    in  daf0e6ef,   1344 bytes,    16 packets,     0s ago
    out 2ba06440,   1344 bytes,    16 packets,     0s ago
    local  10.1.0.1/32
    remote 10.2.0.1/32
";

    #[test]
    fn parses_an_established_ike_sa_with_its_child() {
        let sas = parse_list_sas(LIST_SAS_INITIATOR);
        assert_eq!(sas.len(), 1);
        let sa = &sas[0];
        assert_eq!(sa.name, "lab");
        assert_eq!(sa.unique_id, 1);
        assert!(sa.is_established());
        assert_eq!(sa.version, "IKEv2");
        assert_eq!(sa.spi_i, 0x91d7_662e_a8fe_a7e4);
        assert_eq!(sa.spi_r, 0xbc12_a39a_2b8d_5875);
        assert!(sa.local_is_initiator);
        assert_eq!(sa.local_id, "10.99.0.1");
        assert_eq!(sa.remote_addr, Some("10.99.0.2:4500".parse().unwrap()));
        assert_eq!(
            sa.algorithms,
            "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_384"
        );
        let c = sa.child("tunnel").unwrap();
        assert!(c.is_installed());
        assert_eq!(c.reqid, 1);
        assert_eq!(c.mode, "TUNNEL-in-UDP");
        assert_eq!(c.protocol, "ESP");
        assert_eq!(c.algorithms, "AES_CBC-256/HMAC_SHA2_256_128");
        assert_eq!((c.spi_in, c.spi_out), (0xdaf0_e6ef, 0x2ba0_6440));
        assert_eq!((c.bytes_in, c.packets_in), (1344, 16));
        assert_eq!(c.local_ts, ["10.1.0.1/32"]);
        assert_eq!(c.remote_ts, ["10.2.0.1/32"]);
    }

    #[test]
    fn the_responder_mark_is_on_the_responder_spi() {
        let text = "lab: #3, CONNECTING, IKEv2, 0102030405060708_i 0000000000000000_r*\n";
        let sa = &parse_list_sas(text)[0];
        assert!(!sa.local_is_initiator);
        assert_eq!(sa.state, "CONNECTING");
        assert!(sa.children.is_empty());
    }

    #[test]
    fn parses_marked_spis_and_several_sas() {
        let text = format!(
            "{LIST_SAS_INITIATOR}other: #2, ESTABLISHED, IKEv2, 1_i* 2_r\n  \
             c: #4, reqid 2, INSTALLED, TUNNEL, ESP:AES_GCM_16-256\n    \
             in  0000abcd (-|0x00000001),      0 bytes,     0 packets\n"
        );
        let sas = parse_list_sas(&text);
        assert_eq!(sas.len(), 2);
        assert_eq!(sas[1].children[0].spi_in, 0xabcd);
        assert_eq!(sas[1].children[0].algorithms, "AES_GCM_16-256");
    }

    #[test]
    fn reads_key_dumps_even_when_threads_interleave() {
        let log = "\
10:00:00 13[IKE] Sk_ai secret => 20 bytes @ 0x7f6288038a00
10:00:00 07[NET] received packet
10:00:00 13[IKE]    0: 40 EB 50 7F E4 75 99 2D 0F 4F 78 3F EB 4B 72 16  @.P..u.-.Ox?.Kr.
10:00:00 14[CHD] encryption initiator key => 2 bytes @ 0x1
10:00:00 13[IKE]   16: 36 A8 A2 3B                                      6..;
10:00:00 14[CHD]    0: AB CD                                            ..
";
        // In the order the dumps complete.
        let secrets = parse_logged_secrets(log);
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets[0].label, "Sk_ai secret");
        assert_eq!(secrets[0].bytes.len(), 20);
        assert_eq!(&secrets[0].bytes[..2], &[0x40, 0xeb]);
        assert_eq!(&secrets[0].bytes[16..], &[0x36, 0xa8, 0xa2, 0x3b]);
        assert_eq!(secrets[1].label, "encryption initiator key");
        assert_eq!(secrets[1].bytes, [0xab, 0xcd]);
    }

    #[test]
    fn renders_a_responder_config_for_any_address() {
        let mut c = SwanConfig::psk(
            Ipv4Addr::new(10, 99, 1, 2),
            None,
            "k\"ey",
            "aes256-sha256-prfsha256-ecp384",
            "aes256gcm16-ecp521",
        )
        .with_inner(Ipv4Addr::new(10, 2, 0, 1), Ipv4Addr::new(10, 1, 0, 1));
        assert!(c.render_swanctl_conf().is_err(), "remote id is required");
        c.remote_id = Some("10.99.0.1".into());
        c.lifetimes.child_rekey_secs = Some(30);
        let text = c.render_swanctl_conf().unwrap();
        assert!(text.contains("remote_addrs = %any"));
        assert!(text.contains("local_ts = 10.2.0.1/32"));
        assert!(text.contains("remote_ts = 10.1.0.1/32"));
        assert!(text.contains("esp_proposals = aes256gcm16-ecp521"));
        assert!(text.contains("rekey_time = 30s"));
        assert!(text.contains("start_action = none"));
        assert!(text.contains("secret = 0x6b226579"), "{text}");
    }

    #[test]
    fn renders_certificate_authentication_without_a_secret() {
        let mut c = SwanConfig::psk(
            Ipv4Addr::new(10, 99, 0, 2),
            Some(Ipv4Addr::new(10, 99, 0, 1)),
            "unused",
            "aes256-sha256-prfsha256-ecp384",
            "aes256-sha256-ecp256",
        )
        .with_certificate("/c/r.crt", "/c/r.key", "/c/ca.crt");
        let text = c.render_swanctl_conf().unwrap();
        assert!(
            text.contains(
                "    local {\n      auth = pubkey\n      certs = lab-local.crt\n      id = \"10.99.0.2\"\n    }"
            ),
            "{text}"
        );
        assert!(
            text.contains("    remote {\n      auth = pubkey\n      id = \"10.99.0.1\"\n    }"),
            "{text}"
        );
        assert!(!text.contains("secrets"), "{text}");
        if let SwanAuth::Certificate { local_auth, .. } = &mut c.auth {
            *local_auth = Some("pubkey-sha256".into());
        }
        let text = c.render_swanctl_conf().unwrap();
        assert!(text.contains("      auth = pubkey-sha256\n"), "{text}");
        assert!(text.contains("      auth = pubkey\n      id = \"10.99.0.1\""));
    }

    #[test]
    fn strongswan_conf_loads_kdf_and_the_user_space_data_plane_first() {
        let text = render_strongswan_conf(
            Path::new("/tmp/x"),
            true,
            &["signature_authentication = no".to_string()],
        );
        assert!(
            text.contains("\n  signature_authentication = no\n"),
            "{text}"
        );
        assert!(text.contains("load = kernel-libipsec kernel-netlink "));
        assert!(text.contains(" kdf vici"));
        assert!(text.contains("socket = unix:///tmp/x/charon.vici"));
        assert!(text.contains("flush_line = yes"));
        assert!(text.contains("ike = 4"));
    }
}
