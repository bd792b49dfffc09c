//! Diagnostics: `file:line:col: error: message`, the offending line with a
//! caret under the token, then `help:` and `note:` lines (a note may point at
//! another line, e.g. where a name was first defined).
//!
//! Invariants: a [`Diagnostic`] stores its excerpts already masked (see
//! [`crate::lexer::excerpt`]), so rendering it can never print a pre-shared
//! key, and it renders without access to the source. Suggestions ("did you
//! mean") come from [`suggest`], which bounds its work by input length.

use std::fmt;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// The configuration works but is weak or suspicious.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A source line as shown under a message, with the span to underline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceExcerpt {
    pub line: usize,
    /// The line as shown: secrets masked, tabs turned into spaces.
    pub text: String,
    /// 1-based column of the caret in `text`.
    pub caret_col: usize,
    /// Characters underlined (at least 1).
    pub caret_len: usize,
}

/// Kind of a follow-up line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteKind {
    Help,
    Note,
}

/// A `help:` or `note:` line, optionally pointing at another source line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    pub message: String,
    /// Where the note points (its column is `at.caret_col` of the shown
    /// text, which equals the source column except on masked lines).
    pub at: Option<(usize, SourceExcerpt)>,
}

/// One message about the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub excerpt: Option<SourceExcerpt>,
    pub notes: Vec<Note>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub(crate) fn help(mut self, msg: impl Into<String>) -> Self {
        self.notes.push(Note {
            kind: NoteKind::Help,
            message: msg.into(),
            at: None,
        });
        self
    }

    pub(crate) fn note(mut self, msg: impl Into<String>) -> Self {
        self.notes.push(Note {
            kind: NoteKind::Note,
            message: msg.into(),
            at: None,
        });
        self
    }

    pub(crate) fn note_at(
        mut self,
        msg: impl Into<String>,
        col: usize,
        excerpt: SourceExcerpt,
    ) -> Self {
        self.notes.push(Note {
            kind: NoteKind::Note,
            message: msg.into(),
            at: Some((col, excerpt)),
        });
        self
    }
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

fn write_excerpt(f: &mut fmt::Formatter<'_>, w: usize, ex: &SourceExcerpt) -> fmt::Result {
    writeln!(f, "{:>w$} | {}", ex.line, ex.text, w = w)?;
    let pad = " ".repeat(ex.caret_col.saturating_sub(1));
    let tilde = "~".repeat(ex.caret_len.saturating_sub(1));
    writeln!(f, "{:>w$} | {pad}^{tilde}", "", w = w)
}

impl fmt::Display for Diagnostic {
    /// The full block: header, excerpt with caret, then help and notes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.col, self.severity, self.message
        )?;
        let w = self
            .notes
            .iter()
            .filter_map(|n| n.at.as_ref().map(|(_, e)| digits(e.line)))
            .chain(self.excerpt.as_ref().map(|e| digits(e.line)))
            .max()
            .unwrap_or(1)
            + 1;
        if let Some(ex) = &self.excerpt {
            write_excerpt(f, w, ex)?;
        }
        for n in &self.notes {
            let kind = match n.kind {
                NoteKind::Help => "help",
                NoteKind::Note => "note",
            };
            writeln!(f, "{:>w$} = {kind}: {}", "", n.message, w = w)?;
            if let Some((col, ex)) = &n.at {
                writeln!(f, "{:>w$}--> {}:{}:{}", "", self.file, ex.line, col, w = w)?;
                write_excerpt(f, w, ex)?;
            }
        }
        Ok(())
    }
}

/// Optimal-string-alignment edit distance (insertions, deletions,
/// substitutions, adjacent transpositions), case-sensitive, on characters.
/// Inputs longer than 64 characters are compared only on their first 64, so
/// the cost per call is bounded whatever the input.
pub fn edit_distance(a: &str, b: &str) -> usize {
    const CAP: usize = 64;
    let a: Vec<char> = a.chars().take(CAP).collect();
    let b: Vec<char> = b.chars().take(CAP).collect();
    let (n, m) = (a.len(), b.len());
    // Three rows: two back is needed for transpositions.
    let mut prev2 = vec![0usize; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    for i in 1..=n {
        cur[0] = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m]
}

/// The candidate closest to `word`, if it is close enough to be a likely
/// typo: within a third of the longer length (at least 1), or `word` is a
/// prefix of it (a name typed short, `key_mgmt` for `key_mgmt_P1`), compared
/// case-insensitively first.
pub fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let wl = word.to_lowercase();
    let wlen = wl.chars().count();
    let mut best: Option<(usize, &'c str)> = None;
    for c in candidates {
        let cl = c.to_lowercase();
        let clen = cl.chars().count();
        if cl == wl {
            return Some(c);
        }
        // Cheap length filter before the quadratic distance.
        let limit = (wlen.max(clen) / 3).max(1);
        let prefix = wlen >= 3 && cl.starts_with(&wl);
        if !prefix && wlen.abs_diff(clen) > limit {
            continue;
        }
        let d = edit_distance(&wl, &cl);
        let score = if prefix { d.min(limit) } else { d };
        if (prefix || d <= limit) && best.is_none_or(|(bd, _)| score < bd) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// "`a`, `b` and `c`", at most `max` names then "and N more".
pub(crate) fn list_names<'a>(names: impl IntoIterator<Item = &'a str>, max: usize) -> String {
    let all: Vec<&str> = names.into_iter().collect();
    let shown: Vec<String> = all.iter().take(max).map(|n| format!("`{n}`")).collect();
    let mut s = shown.join(", ");
    if all.len() > max {
        s.push_str(&format!(" and {} more", all.len() - max));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("fvr", "fvrf"), 1);
        assert_eq!(edit_distance("prf", "pfr"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn edit_distance_is_bounded_on_long_input() {
        let long = "x".repeat(100_000);
        assert_eq!(edit_distance(&long, "x"), 63);
    }

    #[test]
    fn suggests_close_keywords_and_short_names() {
        assert_eq!(suggest("fvr", ["address", "fvrf"]), Some("fvrf"));
        assert_eq!(
            suggest("key_mgmt", ["other", "key_mgmt_P1"]),
            Some("key_mgmt_P1")
        );
        assert_eq!(suggest("PRF", ["prf", "integrity"]), Some("prf"));
        assert_eq!(suggest("zzz", ["address", "fvrf"]), None);
    }
}
