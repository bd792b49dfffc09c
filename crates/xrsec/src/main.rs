//! `xrsec`, the command-line client of the xrsec IPsec daemon.
//!
//! `config check` and `config show` work on configuration files alone; `show ...`
//! and `clear ...` ask `xrsecd` over its control socket (`--control`), in the
//! IOS-XR words (`show ikev2 session detail`, `clear ipsec sa interface
//! tunnel-ip1`). Exit codes are part of the interface, for scripts: 0 success,
//! 1 the input was examined and found wrong (a config error, an unknown
//! interface, a request the daemon refused), 2 the command could not run
//! (unreadable file, bad usage), 3 no usable answer from the daemon (not
//! running, no permission on its socket, an answer not understood).
//!
//! `lab` and `bench` (root only) build two network namespaces on this machine
//! and run a pair of xrsecd in them: `lab` to watch a tunnel come up and carry
//! pings, `bench` to measure iperf3 through it against plain forwarding and
//! strongSwan. They end with 130 when interrupted (SIGINT, SIGTERM), after
//! removing what they built.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

mod bench;
mod config_cmd;
mod lab;
mod show_cmd;

use show_cmd::{Clear, Show};

#[derive(Parser)]
#[command(
    name = "xrsec",
    version,
    about = "Client of xrsecd, the IPsec/IKEv2 daemon configured in the IOS-XR language"
)]
struct Cli {
    /// The daemon's control socket.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "XRSEC_CONTROL",
        default_value = xrsec_control::DEFAULT_CONTROL_PATH
    )]
    control: PathBuf,
    /// Print the daemon's data as JSON instead of the router's text (show, clear).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check or print configuration files, without a daemon.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask xrsecd for its state, as the router's show commands print it.
    #[command(subcommand)]
    Show(ShowCommand),
    /// Delete SAs in xrsecd; the tunnels renegotiate.
    #[command(subcommand)]
    Clear(ClearCommand),
    /// Two routers on this machine: tunnel up, pings, show commands (root).
    ///
    /// Two network namespaces joined by a veth pair, xrsecd in each on the lab
    /// configurations (config/router1.conf and config/router2.conf): wait for
    /// the tunnels, ping through them, print both routers' show commands,
    /// then remove everything (also on Ctrl-C or a failure).
    Lab(lab::LabArgs),
    /// iperf3 through xrsec tunnels, against plain forwarding and strongSwan (root).
    ///
    /// The lab's two namespaces; iperf3 TCP from 10.1.0.1 to 10.2.0.1 through
    /// a pair of xrsecd per ESP suite, and optionally plain routing and two
    /// strongSwan charons with the same algorithms. Prints Gbit/s, packets/s
    /// and the ratios.
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check configuration files: print every error and warning, then one line
    /// per tunnel. Exit 0 when every file is valid, 1 when any has an error.
    Check {
        /// Configuration files (one-line commands or running-config blocks).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print a configuration file as canonical running-config text.
    Show {
        /// The configuration file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print pre-shared keys instead of `<redacted>`.
        #[arg(long)]
        show_secrets: bool,
    },
}

#[derive(Subcommand)]
enum ShowCommand {
    /// IKEv2 sessions and counts.
    #[command(subcommand)]
    Ikev2(ShowIkev2),
    /// IPsec (Child) SAs.
    #[command(subcommand)]
    Ipsec(ShowIpsec),
    /// The daemon's running configuration, keys redacted.
    RunningConfig,
}

#[derive(Subcommand)]
enum ShowIkev2 {
    /// Each session's IKE and Child SAs, then why any tunnel is not up.
    Session {
        #[command(subcommand)]
        view: Option<SessionView>,
    },
    /// Active and negotiating IKE SAs, by direction.
    Summary,
}

#[derive(Subcommand)]
enum SessionView {
    /// Add algorithms, lifetimes, SPIs, identities and NAT-T.
    Detail,
}

#[derive(Subcommand)]
enum ShowIpsec {
    /// One line per tunnel, or one tunnel's SA in detail.
    Sa {
        #[command(subcommand)]
        filter: Option<InterfaceFilter>,
    },
}

#[derive(Subcommand)]
enum ClearCommand {
    /// IKE SAs.
    #[command(subcommand)]
    Ikev2(ClearIkev2),
    /// Child SAs.
    #[command(subcommand)]
    Ipsec(ClearIpsec),
}

#[derive(Subcommand)]
enum ClearIkev2 {
    /// Delete one IKE SA (with its Child SAs), or all of them.
    Sa {
        /// `IKE SA ID` of `show ikev2 session`; every IKE SA when omitted.
        #[arg(value_name = "ID")]
        id: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ClearIpsec {
    /// Delete the Child SAs of one tunnel, or of all tunnels.
    Sa {
        #[command(subcommand)]
        filter: Option<InterfaceFilter>,
    },
}

#[derive(Subcommand)]
enum InterfaceFilter {
    /// Only this tunnel interface.
    Interface {
        /// `tunnel-ipN`.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

impl InterfaceFilter {
    fn name(filter: Option<Self>) -> Option<String> {
        filter.map(|Self::Interface { name }| name)
    }
}

/// How a command ended, mapped to the documented exit codes.
pub(crate) enum Outcome {
    Success,
    Invalid,
    Failed,
    Unreachable,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Invalid => ExitCode::from(1),
            Outcome::Failed => ExitCode::from(2),
            Outcome::Unreachable => ExitCode::from(3),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (control, json) = (cli.control.as_path(), cli.json);
    if json && matches!(cli.command, Command::Lab(_) | Command::Bench(_)) {
        Cli::command()
            .error(
                ErrorKind::ArgumentConflict,
                "--json applies to show and clear, not to lab or bench",
            )
            .exit();
    }
    let outcome = match cli.command {
        Command::Lab(args) => return lab::run(&args),
        Command::Bench(args) => return bench::run(&args),
        Command::Config(command) => {
            if json {
                Cli::command()
                    .error(
                        ErrorKind::ArgumentConflict,
                        "--json applies to show and clear, not to config",
                    )
                    .exit();
            }
            match command {
                ConfigCommand::Check { files } => config_cmd::check(&files),
                ConfigCommand::Show { file, show_secrets } => config_cmd::show(&file, show_secrets),
            }
        }
        Command::Show(command) => {
            let what = match command {
                ShowCommand::Ikev2(ShowIkev2::Session { view }) => Show::Ikev2Session {
                    detail: matches!(view, Some(SessionView::Detail)),
                },
                ShowCommand::Ikev2(ShowIkev2::Summary) => Show::Ikev2Summary,
                ShowCommand::Ipsec(ShowIpsec::Sa { filter }) => Show::IpsecSa {
                    interface: InterfaceFilter::name(filter),
                },
                ShowCommand::RunningConfig => Show::RunningConfig,
            };
            show_cmd::show(control, json, what)
        }
        Command::Clear(command) => {
            let what = match command {
                ClearCommand::Ikev2(ClearIkev2::Sa { id }) => Clear::IkeSa { id },
                ClearCommand::Ipsec(ClearIpsec::Sa { filter }) => Clear::IpsecSa {
                    interface: InterfaceFilter::name(filter),
                },
            };
            show_cmd::clear(control, json, what)
        }
    };
    outcome.into()
}
