//! `xrsec config check` and `xrsec config show`: the configuration language
//! without a daemon. Diagnostics go to stderr and the results to stdout, so that
//! `xrsec config show FILE > running.conf` captures only the configuration.

use std::io::Write;
use std::path::Path;

use xrsec_config::{compare_peers, load_file, Config, Parsed, Secrets, Severity};

use crate::Outcome;

/// Checks every file (all of them, even after one fails) and prints, per file,
/// its diagnostics and either a one-line summary per tunnel or an error count;
/// then checks the valid files against each other as peers.
pub(crate) fn check(files: &[impl AsRef<Path>]) -> Outcome {
    let mut outcome = Outcome::Success;
    let mut valid: Vec<(String, Config)> = Vec::new();
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
                valid.push((file.display().to_string(), config.clone()));
            }
            _ => {
                println!("{}: invalid{}", file.display(), counts);
                if !matches!(outcome, Outcome::Failed) {
                    outcome = Outcome::Invalid;
                }
            }
        }
    }
    if !check_peers(&valid) && matches!(outcome, Outcome::Success) {
        outcome = Outcome::Invalid;
    }
    let _ = std::io::stdout().flush();
    outcome
}

/// Compares every two valid files as the two ends of their tunnels. Returns
/// false when a pair of tunnels could never come up (or rekey) together.
fn check_peers(valid: &[(String, Config)]) -> bool {
    let mut ok = true;
    for (i, (left_name, left)) in valid.iter().enumerate() {
        for (right_name, right) in &valid[i + 1..] {
            let pairings = compare_peers(left_name, left, right_name, right);
            if pairings.is_empty() && valid.len() == 2 {
                println!("{left_name} and {right_name}: no tunnel of one points at the other");
            }
            for p in pairings {
                for f in &p.findings {
                    let severity = match f.severity {
                        Severity::Error => "error",
                        _ => "warning",
                    };
                    eprintln!(
                        "{left_name} {} <-> {right_name} {}: {severity}: {}",
                        p.left, p.right, f.message
                    );
                }
                let verdict = match (&p.agreed, p.has_errors()) {
                    (Some(agreed), false) => format!("peers agree: {agreed}"),
                    _ => "peers DISAGREE (see the errors above)".to_string(),
                };
                println!(
                    "{left_name} {} <-> {right_name} {}: {verdict}",
                    p.left, p.right
                );
                ok &= !p.has_errors();
            }
        }
    }
    ok
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
