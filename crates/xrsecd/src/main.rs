//! `xrsecd`: the xrsec daemon.
//!
//! Reads the IOS-XR configuration, creates the TUN of every
//! `interface tunnel-ipN`, negotiates IKEv2 with each tunnel destination
//! (as initiator and as responder), installs the Child SAs in the ESP
//! dataplane, and answers the `xrsec show` / `clear` commands on its control
//! socket. See README.md for running it as a systemd service.

mod control;
mod daemon;
mod names;
mod savekeys;
mod status;
mod tunnels;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The xrsec IPsec/IKEv2 daemon.
#[derive(Parser, Debug)]
#[command(name = "xrsecd", version, about)]
pub(crate) struct Args {
    /// The configuration file (IOS-XR language, either form).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The control socket `xrsec` talks to.
    #[arg(long, value_name = "PATH", default_value = xrsec_control::DEFAULT_CONTROL_PATH)]
    pub control: PathBuf,
    /// Log level: error, warn, info (state changes), debug (every IKE
    /// exchange), trace; or a tracing filter such as `xrsecd=debug`.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    /// Write every IKE and Child SA's keys into DIR in Wireshark's
    /// `ikev2_decryption_table` and `esp_sa` formats. Anyone who reads these
    /// files can decrypt the traffic: for debugging only.
    #[arg(long, value_name = "DIR")]
    pub save_keys: Option<PathBuf>,
    /// Carry ESP in UDP 4500 even without a NAT (as strongSwan's
    /// `encap = yes`): the peer is told a NAT is there. On Linux this lets
    /// the dataplane use UDP GSO/GRO, 1.75-2x native ESP's throughput
    /// between two xrsecd (`xrsec bench`); native ESP (IP protocol 50) is the default, as
    /// IOS-XR speaks it.
    #[arg(long)]
    pub force_udp_encap: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "xrsecd: --log-level {:?} is not a level (error, warn, info, debug, trace) or filter: {e}",
                args.log_level
            );
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();

    let parsed = match xrsec_config::load_file(&args.config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xrsecd: cannot read {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    let Some(config) = parsed.config.clone().filter(|_| !parsed.has_errors()) else {
        eprint!("{}", parsed.render_diagnostics());
        eprintln!(
            "xrsecd: not starting: {} has {} error{} (check it with `xrsec config check {}`)",
            args.config.display(),
            parsed.error_count(),
            if parsed.error_count() == 1 { "" } else { "s" },
            args.config.display()
        );
        return ExitCode::from(1);
    };
    for d in &parsed.diagnostics {
        tracing::warn!("config: {}", d.to_string().trim_end());
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xrsecd: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(daemon::run(args, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("xrsecd: {e}");
            ExitCode::from(1)
        }
    }
}
