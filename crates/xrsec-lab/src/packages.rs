//! The Debian packages the lab drives, installed on demand.
//!
//! A fresh machine has none of them and an empty package list, so an install
//! first runs `apt-get update`; a machine that has them all is not touched
//! (no network, no apt lock). The same list is installed by `scripts/test`.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::process::{check, run_with_timeout};
use crate::{LabError, Result};

/// Every package the lab uses. `libcharon-extra-plugins` carries
/// kernel-libipsec, strongSwan's only data plane on kernels without ESP.
pub const LAB_PACKAGES: &[&str] = &[
    "strongswan-charon",
    "strongswan-swanctl",
    "strongswan-pki",
    "libcharon-extra-plugins",
    "libstrongswan-standard-plugins",
    "libstrongswan-extra-plugins",
    "iperf3",
    "tshark",
    "iproute2",
    "nftables",
    "conntrack",
    "iputils-ping",
];

/// The packages of `packages` that dpkg does not list as installed.
pub fn missing_packages(packages: &[&str]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for &package in packages {
        let output = run_with_timeout(
            Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", package]),
            Duration::from_secs(30),
        )?;
        // dpkg-query exits 1 for a package it has never heard of.
        if !(output.status.success() && output.stdout == b"installed") {
            missing.push(package.to_string());
        }
    }
    Ok(missing)
}

/// Installs whichever of [`LAB_PACKAGES`] are missing and returns their
/// names (empty when nothing was needed). Runs `apt-get update` first, only
/// when an install is needed. Needs root for that.
pub fn ensure_packages() -> Result<Vec<String>> {
    // Tests of one binary run in parallel threads: one installer at a time.
    // Other processes are serialised by apt's own lock, waited for below.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _guard = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let missing = missing_packages(LAB_PACKAGES)?;
    if missing.is_empty() {
        return Ok(missing);
    }
    let apt = |args: &[&str]| -> Result<String> {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-o", "DPkg::Lock::Timeout=300"])
            .args(args);
        let what = format!("apt-get {}", args.join(" "));
        let output = run_with_timeout(&mut cmd, Duration::from_secs(1200))?;
        check(&what, output)
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().map(String::as_str));
    apt(&args)?;
    let still = missing_packages(LAB_PACKAGES)?;
    if !still.is_empty() {
        return Err(LabError::new(format!(
            "apt-get installed nothing for {}",
            still.join(" ")
        )));
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_dpkg_never_heard_of_is_missing() {
        let missing = missing_packages(&["xrsec-no-such-package", "dpkg"]).unwrap();
        assert_eq!(missing, ["xrsec-no-such-package"]);
    }
}
