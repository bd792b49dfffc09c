//! `xrsec`, the command-line client of the xrsec IPsec daemon.
//!
//! Today it works on configuration files alone (`config check`, `config show`);
//! the status and control commands (`show ...`, `clear ...`) and `lab`/`bench`
//! arrive with the daemon. Exit codes are part of the interface, for scripts:
//! 0 success, 1 the input was examined and found wrong (a config error), 2 the
//! command could not run (unreadable file, bad usage).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod config_cmd;

#[derive(Parser)]
#[command(
    name = "xrsec",
    version,
    about = "Client of xrsecd, the IPsec/IKEv2 daemon configured in the IOS-XR language"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check or print configuration files, without a daemon.
    #[command(subcommand)]
    Config(ConfigCommand),
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

/// How a command ended, mapped to the documented exit codes.
pub(crate) enum Outcome {
    Success,
    Invalid,
    Failed,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Invalid => ExitCode::from(1),
            Outcome::Failed => ExitCode::from(2),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Config(ConfigCommand::Check { files }) => config_cmd::check(&files),
        Command::Config(ConfigCommand::Show { file, show_secrets }) => {
            config_cmd::show(&file, show_secrets)
        }
    };
    outcome.into()
}
