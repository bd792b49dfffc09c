//! `xrsec config check` and `xrsec config show`: the configuration language
//! without a daemon. Diagnostics go to stderr and the results to stdout, so that
//! `xrsec config show FILE > running.conf` captures only the configuration.

use std::io::Write;
use std::path::Path;

use xrsec_config::{load_file, Parsed, Secrets};

use crate::Outcome;

/// Checks every file (all of them, even after one fails) and prints, per file,
/// its diagnostics and either a one-line summary per tunnel or an error count.
pub(crate) fn check(files: &[impl AsRef<Path>]) -> Outcome {
    let mut outcome = Outcome::Success;
    for file in files {
        let file = file.as_ref();
        let parsed = match load(file) {
            Some(parsed) => parsed,
            None => {
                outcome = Outcome::Failed;
                continue;
            }
        };
        eprint!("{}", parsed.render_diagnostics());
        let counts = counts(&parsed);
        match &parsed.config {
            Some(config) if !parsed.has_errors() => {
                let tunnels = config.summary_lines();
                println!(
                    "{}: valid, {} tunnel{}{}",
                    file.display(),
                    tunnels.len(),
                    plural(tunnels.len()),
                    counts
                );
                for line in tunnels {
                    println!("  {line}");
                }
            }
            _ => {
                println!("{}: invalid{}", file.display(), counts);
                if !matches!(outcome, Outcome::Failed) {
                    outcome = Outcome::Invalid;
                }
            }
        }
    }
    let _ = std::io::stdout().flush();
    outcome
}

/// Prints the canonical running-config of one valid file.
pub(crate) fn show(file: &Path, show_secrets: bool) -> Outcome {
    let Some(parsed) = load(file) else {
        return Outcome::Failed;
    };
    eprint!("{}", parsed.render_diagnostics());
    match &parsed.config {
        Some(config) if !parsed.has_errors() => {
            let secrets = if show_secrets {
                Secrets::Shown
            } else {
                Secrets::Redacted
            };
            print!("{}", config.to_running_config(secrets));
            Outcome::Success
        }
        _ => {
            eprintln!(
                "{}: not shown: the file has {} error{}",
                file.display(),
                parsed.error_count(),
                plural(parsed.error_count())
            );
            Outcome::Invalid
        }
    }
}

fn load(file: &Path) -> Option<Parsed> {
    match load_file(file) {
        Ok(parsed) => Some(parsed),
        Err(err) => {
            eprintln!("{}: cannot read: {err}", file.display());
            None
        }
    }
}

fn counts(parsed: &Parsed) -> String {
    let (errors, warnings) = (parsed.error_count(), parsed.warning_count());
    match (errors, warnings) {
        (0, 0) => String::new(),
        (0, w) => format!(" ({w} warning{})", plural(w)),
        (e, 0) => format!(": {e} error{}", plural(e)),
        (e, w) => format!(": {e} error{}, {w} warning{}", plural(e), plural(w)),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
