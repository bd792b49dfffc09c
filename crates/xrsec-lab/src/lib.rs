//! Lab topologies for `xrsec lab`, `xrsec bench` and the end-to-end tests.
//!
//! The lab is where xrsec meets real tools, so unlike the daemon this crate
//! shells out: `ip` for namespaces, veths, addresses and routes, `nft` for a
//! NAT and packet loss, `iperf3` and `ping` for traffic, strongSwan's
//! `charon`/`swanctl` as the interop peer and `tshark` as an independent
//! decoder. Facts about these tools on the lab machines (no kernel ESP, one
//! charon per namespace, the tshark key formats) are in `shared/LAB.md`.
//!
//! Invariants:
//! - every namespace, process and directory a lab creates is owned by a guard
//!   ([`Topology`], [`Charon`], [`LabChild`], [`Capture`], [`LabDir`]) and is
//!   removed when the guard drops, including while a test panics;
//! - names carry the pid of the process that made them and a counter, so
//!   parallel tests do not collide, and [`Topology::new`] first sweeps away
//!   what a dead process left behind.
//!
//! Everything needs root (namespaces, TUN, raw sockets).

#![forbid(unsafe_code)]

mod packages;
mod process;
mod strongswan;
mod topology;
mod tshark;
mod xrsecd;

pub use packages::{ensure_packages, missing_packages, LAB_PACKAGES};
pub use process::{
    run_checked, run_with_timeout, sweep_stale, unique_tag, LabChild, LabDir, Signal, DIR_PREFIX,
    KEEP_ENV, NAMESPACE_PREFIX,
};
pub use strongswan::{
    parse_list_sas, parse_logged_secrets, Charon, LoggedSecret, StartAction, SwanAuth, SwanChildSa,
    SwanConfig, SwanLifetimes, SwanPair, SwanPairOptions, SwanSa, SwanSuite, CHARON_BINARY,
    CHARON_PLUGINS,
};
pub use topology::{
    IperfInterval, IperfOptions, IperfReport, IperfResult, Node, PingReport, PingResult,
    PingStream, RouterConfig, Topology, TopologyConfig, HOST_UPLINK, ROUTER_A_SIDE, ROUTER_B_SIDE,
};
pub use tshark::{Capture, EspEncr, EspInteg, EspSaKey, IkeEncr, IkeInteg, IkeSaKey, Tshark};
pub use xrsecd::{
    find_binary, router_config, router_config_with, XrLifetimes, XrSuite, Xrsecd, LAB_PSK,
};

use std::fmt;

/// What went wrong in the lab: the command or step, and what the tool said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabError {
    message: String,
}

impl LabError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> LabError {
        LabError {
            message: message.into(),
        }
    }

    /// The message, as displayed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LabError {}

/// The result of every lab operation.
pub type Result<T> = std::result::Result<T, LabError>;
