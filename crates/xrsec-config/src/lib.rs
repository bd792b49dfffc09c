//! The configuration language of xrsec: Cisco IOS-XR's IKEv2/IPsec commands,
//! in both forms, the one-line commands typed at a `Router(config)#` prompt
//! and the indented running-config blocks.
//!
//! [`parse_str`] lexes and parses every line, then validates the whole
//! configuration (references, required settings, algorithm combinations,
//! keyring coverage of tunnel destinations, weak choices) and returns a
//! [`Parsed`]: the typed [`Config`] when there is no error, and every
//! [`Diagnostic`] in source order either way. A diagnostic renders as
//! `file:line:col: error: message`, the line with a caret under the token,
//! then `help:`/`note:` lines.
//!
//! ```
//! let parsed = xrsec_config::parse_str(
//!     "router1.conf",
//!     "ikev2 policy P1\n match fvr any\nexit\n",
//! );
//! assert!(parsed.has_errors());
//! // (it also reports that the policy lists no proposal, at line 1)
//! let d = parsed.diagnostics.iter().find(|d| d.line == 2).unwrap();
//! assert_eq!((d.line, d.col), (2, 8));
//! assert_eq!(d.message, "unknown keyword `fvr` after `match`; did you mean `fvrf`?");
//! assert!(d.to_string().starts_with(
//!     "router1.conf:2:8: error: unknown keyword `fvr` after `match`; did you mean `fvrf`?\n \
//!      2 |  match fvr any\n   |        ^~~\n"
//! ));
//! ```
//!
//! Invariants: parsing never panics and does bounded work per line (no
//! recursion on input depth); one run reports every problem (a failed line
//! does not stop the rest); no diagnostic and no `Debug` output contains a
//! pre-shared key. [`Config::to_running_config`] prints text that parses back
//! to the same model.
//!
//! Value ranges (documented here because they are xrsec's, not IOS-XR's):
//! IKE SA `lifetime` 10..=86,400 s and IPsec SA `lifetime seconds`
//! 10..=604,800 s (a warning under 120 s, IOS-XR's minimum: short lifetimes
//! are for tests); `lifetime kilobytes` 2,560..=4,294,967,295; `replay
//! window-size` 64..=4,096 in steps of 64 (default 64); `dpd` interval
//! 1..=3,600 s and 1..=100 retries; `mtu` 576..=9,216. DH group 31
//! (Curve25519) is an xrsec extension.

#![forbid(unsafe_code)]

mod diag;
mod lexer;
mod model;
mod pair;
mod parser;
mod render;
mod report;
pub mod testgen;
mod validate;
mod view;

pub use diag::{edit_distance, suggest, Diagnostic, Note, NoteKind, Severity, SourceExcerpt};
pub use model::*;
pub use pair::{compare_peers, PeerFinding, TunnelPairing};
pub use render::Secrets;
pub use view::TunnelView;

use std::path::Path;

/// The outcome of parsing a configuration.
#[derive(Debug)]
pub struct Parsed {
    /// The configuration, `None` when any diagnostic is an error.
    pub config: Option<Config>,
    /// Errors and warnings, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Every diagnostic, each followed by a blank line.
    pub fn render_diagnostics(&self) -> String {
        let mut s = String::new();
        for d in &self.diagnostics {
            s.push_str(&d.to_string());
            s.push('\n');
        }
        s
    }
}

/// Parses and validates `text`; `file_name` is used in diagnostics.
pub fn parse_str(file_name: &str, text: &str) -> Parsed {
    let mut p = parser::Parser::new(file_name, text);
    p.run();
    let parser::Parser {
        mut rep,
        cfg,
        facts,
        ..
    } = p;
    validate::validate(&cfg, &facts, &mut rep);
    let diagnostics = rep.finish();
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    Parsed {
        config: ok.then_some(cfg),
        diagnostics,
    }
}

/// Reads and parses a configuration file (which must be UTF-8).
pub fn load_file(path: &Path) -> std::io::Result<Parsed> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        // Point at the first bad byte the way diagnostics point at tokens.
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
        let col = 1 + good.iter().rev().take_while(|&&b| b != b'\n').count();
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{}:{line}:{col}: not UTF-8 text (a configuration is plain text; was it saved in another encoding?)",
                path.display()
            ),
        )
    })?;
    Ok(parse_str(&path.display().to_string(), &text))
}
