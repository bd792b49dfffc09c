//! Line lexer: splits one source line into whitespace-separated tokens,
//! after removing a router prompt (`Router(config)#`, `Router (config) #`,
//! `RP/0/RP0/CPU0:ios(config-ikev2)#`, `Router#`).
//!
//! Invariants: every token records its 1-based character column and its
//! length in characters, so diagnostics can underline it even on lines with
//! non-ASCII text; work is linear in the line length; nothing here panics on
//! any input. This module also owns secret masking of excerpts, because it is
//! the one place that knows how a line splits into tokens.

/// One whitespace-separated word of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub text: &'a str,
    /// 1-based column, in characters.
    pub col: usize,
    /// Length in characters.
    pub len: usize,
    /// Byte offset of the token in the line.
    pub start: usize,
}

/// A lexed line: the tokens of the command, after any prompt.
#[derive(Debug)]
pub(crate) struct LexedLine<'a> {
    pub raw: &'a str,
    pub tokens: Vec<Token<'a>>,
}

impl<'a> LexedLine<'a> {
    /// The raw text from token `i` to the end of the line, trailing blanks
    /// trimmed (for `description TEXT`).
    pub fn rest_from(&self, i: usize) -> &'a str {
        match self.tokens.get(i) {
            Some(t) => self.raw[t.start..].trim_end(),
            None => "",
        }
    }
}

fn is_hostname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':')
}

/// Byte offset where the command starts, after a prompt; 0 if there is none.
///
/// Accepted: `HOST#`, `HOST(config...)#`, `HOST (config...)#`,
/// `HOST (config...) #`. A command never contains `(config` or starts with
/// `WORD#`, so a real command is never mistaken for a prompt.
pub(crate) fn prompt_end(raw: &str) -> usize {
    let lead = raw.len() - raw.trim_start().len();
    let s = &raw[lead..];
    let host_len = s
        .char_indices()
        .find(|&(_, c)| !is_hostname_char(c))
        .map_or(s.len(), |(i, _)| i);
    if host_len == 0 {
        return 0;
    }
    let mut rest = &s[host_len..];
    if let Some(r) = rest.strip_prefix('#') {
        return raw.len() - r.len();
    }
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    let Some(r) = rest.strip_prefix('(') else {
        return 0;
    };
    let Some(close) = r.find(')') else {
        return 0;
    };
    let mode = &r[..close];
    if !mode
        .get(..6)
        .is_some_and(|m| m.eq_ignore_ascii_case("config"))
    {
        return 0;
    }
    let after = r[close + 1..].trim_start_matches([' ', '\t']);
    match after.strip_prefix('#') {
        Some(r) => raw.len() - r.len(),
        None => 0,
    }
}

/// Splits `raw` (from byte `from`) into tokens with columns relative to the
/// whole line.
pub(crate) fn tokenize(raw: &str, from: usize) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    // Column of byte `from`: count the characters before it once.
    let first_col = raw[..from].chars().count() + 1;
    let mut cur: Option<(usize, usize, usize)> = None; // (byte start, col, len)
    for (col, (i, c)) in (first_col..).zip(raw[from..].char_indices()) {
        let i = i + from;
        if c.is_whitespace() {
            if let Some((s, tc, len)) = cur.take() {
                tokens.push(Token {
                    text: &raw[s..i],
                    col: tc,
                    len,
                    start: s,
                });
            }
        } else {
            match &mut cur {
                Some((_, _, len)) => *len += 1,
                None => cur = Some((i, col, 1)),
            }
        }
    }
    if let Some((s, tc, len)) = cur {
        tokens.push(Token {
            text: &raw[s..],
            col: tc,
            len,
            start: s,
        });
    }
    tokens
}

pub(crate) fn lex_line(raw: &str) -> LexedLine<'_> {
    let from = prompt_end(raw);
    LexedLine {
        raw,
        tokens: tokenize(raw, from),
    }
}

/// Whether a token introduces a secret: `pre-shared-key` and near-misses of
/// it (a misspelt keyword still has the key after it), `password`, `secret`.
fn introduces_secret(tok: &str) -> bool {
    let l = tok.to_ascii_lowercase();
    l == "pre-shared-key"
        || l.starts_with("pre-shared")
        || l.starts_with("preshared")
        || l == "password"
        || l == "secret"
        || (l.len() < 24 && crate::diag::edit_distance(&l, "pre-shared-key") <= 3)
}

/// The text shown for a masked token.
pub(crate) const MASK: &str = "*****";

/// A line as shown in a diagnostic: secrets replaced by `*****`, tabs by
/// spaces, with a map from original character columns to shown columns.
pub(crate) struct Excerpt {
    pub text: String,
    /// `map[c - 1]` is the shown column of original column `c`; one extra
    /// entry for the column just past the end.
    map: Vec<usize>,
}

impl Excerpt {
    /// Shown column and length for an original (column, length).
    pub fn place(&self, col: usize, len: usize) -> (usize, usize) {
        let last = self.map.len().saturating_sub(1);
        let a = self.map.get(col.saturating_sub(1)).copied();
        let start = a.unwrap_or_else(|| self.map.get(last).copied().unwrap_or(1) + col - last - 1);
        let end_idx = (col + len).saturating_sub(1);
        let end = self.map.get(end_idx).copied().unwrap_or(start + len.max(1));
        (start, end.saturating_sub(start).max(1))
    }
}

/// Builds the excerpt of `raw`, masking every token after a secret-introducing
/// keyword (skipping a `local`/`remote` qualifier); `mask_all` masks every
/// token (a line that continues a `pre-shared-key` split over two lines).
pub(crate) fn excerpt(raw: &str, mask_all: bool) -> Excerpt {
    let tokens = tokenize(raw, 0);
    let mut secret_from = if mask_all { Some(0) } else { None };
    for (i, t) in tokens.iter().enumerate() {
        if secret_from.is_some() {
            break;
        }
        if introduces_secret(t.text) {
            let mut j = i + 1;
            if tokens.get(j).is_some_and(|t| {
                t.text.eq_ignore_ascii_case("local") || t.text.eq_ignore_ascii_case("remote")
            }) {
                j += 1;
            }
            secret_from = Some(j);
        }
    }
    let mut text = String::with_capacity(raw.len());
    let mut map = Vec::with_capacity(raw.len() + 1);
    let mut shown = 1usize;
    let mut ti = 0usize;
    let mut chars = raw.char_indices().peekable();
    while let Some((bi, c)) = chars.next() {
        // Advance to the token containing or after this byte.
        while ti < tokens.len() && tokens[ti].start + tokens[ti].text.len() <= bi {
            ti += 1;
        }
        let in_secret =
            ti < tokens.len() && tokens[ti].start <= bi && secret_from.is_some_and(|s| ti >= s);
        if in_secret {
            let t = tokens[ti];
            map.push(shown);
            // Map the rest of the token's characters to its start.
            for _ in 1..t.len {
                chars.next();
                map.push(shown);
            }
            text.push_str(MASK);
            shown += MASK.len();
            continue;
        }
        map.push(shown);
        text.push(if c == '\t' { ' ' } else { c });
        shown += 1;
    }
    map.push(shown);
    Excerpt { text, map }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<&str> {
        lex_line(line).tokens.iter().map(|t| t.text).collect()
    }

    #[test]
    fn strips_every_prompt_form() {
        for line in [
            "Router(config)# ikev2 proposal P prf sha-256",
            "Router (config) # ikev2 proposal P prf sha-256",
            "Router (config)# ikev2 proposal P prf sha-256",
            "RP/0/RP0/CPU0:ios(config)#ikev2 proposal P prf sha-256",
            "RP/0/RP0/CPU0:ios(config-ikev2-proposal)# ikev2 proposal P prf sha-256",
            "  ikev2 proposal P prf sha-256",
        ] {
            assert_eq!(
                words(line),
                ["ikev2", "proposal", "P", "prf", "sha-256"],
                "{line}"
            );
        }
        assert_eq!(words("Router# config"), ["config"]);
        assert!(words("Router#").is_empty());
    }

    #[test]
    fn keeps_commands_that_contain_a_hash() {
        assert_eq!(
            words("description link#2 (config) #x"),
            ["description", "link#2", "(config)", "#x"]
        );
        assert_eq!(words("pre-shared-key ab#cd"), ["pre-shared-key", "ab#cd"]);
    }

    #[test]
    fn columns_count_characters_from_the_line_start() {
        let l = lex_line("Router (config)# ikev2  proposal");
        assert_eq!(l.tokens[0].col, 18);
        assert_eq!(l.tokens[1].col, 25);
        assert_eq!(l.tokens[1].len, 8);
        let l = lex_line("é ikev2");
        assert_eq!(l.tokens[1].col, 3);
    }

    #[test]
    fn excerpt_masks_keys_and_keeps_columns_aligned() {
        let e = excerpt("  pre-shared-key cisco123 extra", false);
        assert_eq!(e.text, "  pre-shared-key ***** *****");
        assert_eq!(e.place(18, 8), (18, 5));
        assert_eq!(e.place(27, 5), (24, 5));
        let e = excerpt("pre-shared-key local s3cret", false);
        assert_eq!(e.text, "pre-shared-key local *****");
        let e = excerpt("pre-shared-kye s3cret", false);
        assert_eq!(e.text, "pre-shared-kye *****");
        let e = excerpt("keyring key_mgmt", false);
        assert_eq!(e.text, "keyring key_mgmt");
        let e = excerpt("s3cret\tx", true);
        assert_eq!(e.text, "***** *****");
    }
}
