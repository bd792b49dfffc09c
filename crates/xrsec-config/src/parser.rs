//! The parser: one pass over the lines, both forms at once.
//!
//! A line is either a closer (`exit`, a bare `!`), a session command
//! (`config`, `configure [terminal]`, `commit`, `end`), a comment (`! text`),
//! or a command. A command is handled by the innermost open block that knows
//! its first word; if none does and a top-level command does, the open blocks
//! are closed implicitly (as IOS does). A one-line command such as
//! `ikev2 proposal P prf sha-256` enters the block and runs the rest of the
//! line inside it, then returns to where it was; a header alone
//! (`ikev2 proposal P`) leaves the block open for the lines that follow.
//!
//! `!` and `exit`: the running-config form written by IOS-XR closes a block
//! with a bare `!`; the seed (and our renderer) write `exit` then `!`. So a
//! bare `!` closes the innermost block, except right after an `exit`, where
//! the pair counts as one closer.
//!
//! Invariants: a failed line reports at least one error and changes nothing
//! else in the model; work per line is bounded by its length (the grammar is
//! a fixed-depth tree, no recursion on input); no input panics. Block headers
//! that fail (a missing or reserved name) open a scratch object so the lines
//! in the block are still checked without cascading errors.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use crate::diag::{list_names, suggest, Diagnostic};
use crate::lexer::{lex_line, LexedLine, Token};
use crate::model::*;
use crate::report::Reporter;

/// A line failed; its error has been reported.
#[derive(Debug)]
pub(crate) struct Failed;

type Res<T> = Result<T, Failed>;

/// The kinds of block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Proposal,
    Policy,
    Keyring,
    Peer,
    Ikev2Profile,
    Trustpoint,
    TransformSet,
    IpsecProfile,
    Interface,
    RouterStatic,
    AddressFamily,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Proposal => "ikev2 proposal",
            Kind::Policy => "ikev2 policy",
            Kind::Keyring => "keyring",
            Kind::Peer => "keyring peer",
            Kind::Ikev2Profile => "ikev2 profile",
            Kind::Trustpoint => "crypto ca trustpoint",
            Kind::TransformSet => "ipsec transform-set",
            Kind::IpsecProfile => "ipsec profile",
            Kind::Interface => "interface",
            Kind::RouterStatic => "router static",
            Kind::AddressFamily => "address-family ipv4 unicast",
        }
    }

    /// The sub-commands of the block (also reserved: not usable as its name).
    fn keywords(self) -> &'static [&'static str] {
        match self {
            Kind::Proposal => &["encryption", "integrity", "prf", "dh-group"],
            Kind::Policy => &["match", "proposal"],
            Kind::Keyring => &["peer"],
            Kind::Peer => &["address", "pre-shared-key"],
            Kind::Ikev2Profile => &[
                "keyring",
                "lifetime",
                "authentication",
                "match",
                "pki",
                "dpd",
            ],
            Kind::Trustpoint => &["ca-certificate", "certificate", "private-key"],
            Kind::TransformSet => &["mode", "transform"],
            Kind::IpsecProfile => &["set"],
            Kind::Interface => &["ipv4", "tunnel", "mtu", "shutdown", "no", "description"],
            Kind::RouterStatic => &["address-family"],
            Kind::AddressFamily => &[],
        }
    }
}

const TOP: &[&str] = &[
    "ikev2",
    "keyring",
    "crypto",
    "ipsec",
    "interface",
    "router",
    "no",
];
const SESSION: &[&str] = &["exit", "end", "commit", "config", "configure"];

/// An open block: which object its lines edit. `None` is the scratch object
/// of a block whose header failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    Proposal(Option<usize>),
    Policy(Option<usize>),
    Keyring(Option<usize>),
    Peer(Option<(usize, usize)>),
    Ikev2Profile(Option<usize>),
    Trustpoint(Option<usize>),
    TransformSet(Option<usize>),
    IpsecProfile(Option<usize>),
    Interface(Option<usize>),
    RouterStatic,
    AddressFamily,
}

impl Target {
    fn kind(self) -> Kind {
        match self {
            Target::Proposal(_) => Kind::Proposal,
            Target::Policy(_) => Kind::Policy,
            Target::Keyring(_) => Kind::Keyring,
            Target::Peer(_) => Kind::Peer,
            Target::Ikev2Profile(_) => Kind::Ikev2Profile,
            Target::Trustpoint(_) => Kind::Trustpoint,
            Target::TransformSet(_) => Kind::TransformSet,
            Target::IpsecProfile(_) => Kind::IpsecProfile,
            Target::Interface(_) => Kind::Interface,
            Target::RouterStatic => Kind::RouterStatic,
            Target::AddressFamily => Kind::AddressFamily,
        }
    }

    fn scratch(kind: Kind) -> Target {
        match kind {
            Kind::Proposal => Target::Proposal(None),
            Kind::Policy => Target::Policy(None),
            Kind::Keyring => Target::Keyring(None),
            Kind::Peer => Target::Peer(None),
            Kind::Ikev2Profile => Target::Ikev2Profile(None),
            Kind::Trustpoint => Target::Trustpoint(None),
            Kind::TransformSet => Target::TransformSet(None),
            Kind::IpsecProfile => Target::IpsecProfile(None),
            Kind::Interface => Target::Interface(None),
            Kind::RouterStatic => Target::RouterStatic,
            Kind::AddressFamily => Target::AddressFamily,
        }
    }
}

/// What the validator needs to know about the parse beyond the model.
#[derive(Default)]
pub(crate) struct Facts {
    /// (object, command) pairs whose line failed, e.g. (interface 0,
    /// "tunnel source"): a missing setting is then not reported twice.
    pub failed: HashSet<(Target, String)>,
}

impl Facts {
    pub fn failed(&self, target: Target, cmd: &str) -> bool {
        self.failed.contains(&(target, cmd.to_string()))
    }
}

#[derive(Default)]
struct Scratch {
    proposal: Ikev2Proposal,
    policy: Ikev2Policy,
    keyring: Keyring,
    peer: KeyringPeer,
    ikev2_profile: Ikev2Profile,
    trustpoint: Trustpoint,
    transform_set: TransformSet,
    ipsec_profile: IpsecProfile,
    interface: TunnelInterface,
}

/// A position in a line's tokens, and the command keywords read so far (for
/// messages like "`match identity remote address` needs ...").
struct Cursor<'l, 'a> {
    line: &'l LexedLine<'a>,
    no: usize,
    pos: usize,
    mark: usize,
    cmd: Vec<String>,
}

impl<'l, 'a> Cursor<'l, 'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.line.tokens.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<Token<'a>> {
        self.line.tokens.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<Token<'a>> {
        let t = self.peek();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn prev(&self) -> Option<Token<'a>> {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.line.tokens.get(i).copied())
    }

    /// Starts a new command (the rest of a one-line command after its header).
    fn mark(&mut self) {
        self.mark = self.pos;
        self.cmd.clear();
    }

    fn cmd(&self) -> String {
        self.cmd.join(" ")
    }

    fn span_of(&self, t: Token<'_>) -> Span {
        Span {
            line: self.no,
            col: t.col,
            len: t.len,
        }
    }

    /// Span from token `from` to the last token before `pos`.
    fn span_range(&self, from: usize, to_excl: usize) -> Span {
        let toks = &self.line.tokens;
        match (
            toks.get(from),
            to_excl.checked_sub(1).and_then(|i| toks.get(i)),
        ) {
            (Some(a), Some(b)) if to_excl > from => Span {
                line: self.no,
                col: a.col,
                len: b.col + b.len - a.col,
            },
            (Some(a), _) => self.span_of(*a),
            _ => Span {
                line: self.no,
                col: 1,
                len: 1,
            },
        }
    }

    /// The command read so far, from its first keyword.
    fn cmd_span(&self) -> Span {
        self.span_range(self.mark, self.pos)
    }
}

struct PendingMissing {
    line: usize,
    secret: bool,
    text: String,
}

pub(crate) struct Parser<'a> {
    pub rep: Reporter<'a>,
    pub cfg: Config,
    pub facts: Facts,
    scratch: Scratch,
    stack: Vec<Target>,
    /// The current line reported a missing argument.
    line_missing: bool,
    /// ... in a `pre-shared-key` command (its continuation must be masked).
    line_missing_secret: bool,
    last_missing: Option<PendingMissing>,
    after_exit: bool,
    /// Objects opened by a header line alone, with the header's span: a
    /// second such block for the same object is a duplicate.
    block_defined: HashMap<Target, Span>,
    /// List items already present per object ("proposal NAME", a route...):
    /// duplicate checks stay O(1) however long the lists grow.
    seen: HashSet<(Target, String)>,
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn is_ipv4_like(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit()) && s.contains('.')
}

/// Linux `dev_valid_name`: 1-15 bytes, not `.`/`..`, no `/`, `:` or blank.
pub(crate) fn valid_linux_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 16
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// `tunnel-ipN` (any case) → N.
pub(crate) fn tunnel_number(s: &str) -> Option<u32> {
    let head = s.get(..9)?;
    if !head.eq_ignore_ascii_case("tunnel-ip") {
        return None;
    }
    let digits = &s[9..];
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().filter(|n| *n <= 65_535)
}

impl<'a> Parser<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Parser<'a> {
        Parser {
            rep: Reporter::new(file, text),
            cfg: Config::default(),
            facts: Facts::default(),
            scratch: Scratch::default(),
            stack: Vec::new(),
            line_missing: false,
            line_missing_secret: false,
            last_missing: None,
            after_exit: false,
            block_defined: HashMap::new(),
            seen: HashSet::new(),
        }
    }

    pub fn run(&mut self) {
        let lines = self.rep.lines.clone();
        for (i, raw) in lines.into_iter().enumerate() {
            let lexed = lex_line(raw);
            self.line(i + 1, &lexed);
        }
    }

    fn emit(&mut self, d: Diagnostic) {
        self.rep.emit(d);
    }

    fn line(&mut self, no: usize, lexed: &LexedLine<'a>) {
        let Some(first) = lexed.tokens.first().copied() else {
            // Blank, or a prompt alone: a split command may still continue.
            return;
        };
        let pending = self.last_missing.take();
        if pending.as_ref().is_some_and(|p| p.secret) {
            self.rep.mask_all_lines.insert(no);
        }
        self.line_missing = false;
        self.line_missing_secret = false;

        if first.text.starts_with('!') {
            if first.text == "!" && lexed.tokens.len() == 1 {
                if !self.after_exit {
                    self.stack.pop();
                }
                self.after_exit = false;
            }
            return;
        }
        let kw = lower(first.text);
        let mut cur = Cursor {
            line: lexed,
            no,
            pos: 1,
            mark: 0,
            cmd: vec![kw.clone()],
        };
        if SESSION.contains(&kw.as_str()) {
            self.session_command(&kw, &mut cur);
            return;
        }
        self.after_exit = false;

        let level = self.find_level(&kw, first.text, lexed.tokens.get(1).map(|t| t.text));
        if let Some(p) = pending {
            if level.is_none() || (is_ipv4_like(first.text) && !first.text.contains('/')) {
                self.orphan(no, lexed, &p);
                return;
            }
        }
        let Some(level) = level else {
            self.unknown_command(&cur, first);
            return;
        };
        self.stack.truncate(level.map_or(0, |i| i + 1));
        let base = self.stack.len();
        let keep = match level {
            Some(i) => {
                let t = self.stack[i];
                cur.pos = 0;
                cur.cmd.clear();
                self.dispatch_sub(t, &mut cur)
            }
            None => self.dispatch_top(&mut cur),
        };
        if !matches!(keep, Ok(true)) {
            self.stack.truncate(base);
        }
        if self.line_missing {
            self.last_missing = Some(PendingMissing {
                line: no,
                secret: self.line_missing_secret,
                text: lexed.rest_from(0).to_string(),
            });
        }
    }

    /// `exit`, `end`, `commit`, `config`, `configure [terminal]`.
    fn session_command(&mut self, kw: &str, cur: &mut Cursor<'_, 'a>) {
        match kw {
            "exit" => {
                self.stack.pop();
                self.after_exit = true;
            }
            "end" => {
                self.stack.clear();
                self.after_exit = true;
            }
            // `commit` may carry `comment TEXT`, `label NAME`...: none of it
            // matters to a file.
            "commit" => return,
            _ => {
                self.stack.clear();
                self.after_exit = false;
                if cur
                    .peek()
                    .is_some_and(|t| t.text.eq_ignore_ascii_case("terminal"))
                {
                    cur.bump();
                }
            }
        }
        let _ = self.end(cur);
    }

    /// Which open block (index into the stack; `None` = top level) handles a
    /// line starting with `kw`, innermost first.
    fn find_level(&self, kw: &str, raw: &str, next: Option<&str>) -> Option<Option<usize>> {
        // `no ikev2 ...` is global even inside a block that has a `no` of its
        // own (`no shutdown` in an interface).
        if kw == "no" && next.is_some_and(|n| n.eq_ignore_ascii_case("ikev2")) {
            return Some(None);
        }
        for (i, t) in self.stack.iter().enumerate().rev() {
            let k = t.kind();
            if k.keywords().contains(&kw)
                || (k == Kind::AddressFamily && raw.starts_with(|c: char| c.is_ascii_digit()))
            {
                return Some(Some(i));
            }
        }
        TOP.contains(&kw).then_some(None)
    }

    fn orphan(&mut self, no: usize, lexed: &LexedLine<'a>, p: &PendingMissing) {
        let toks = &lexed.tokens;
        let span = match (toks.first(), toks.last()) {
            (Some(a), Some(b)) => Span {
                line: no,
                col: a.col,
                len: b.col + b.len - a.col,
            },
            _ => return,
        };
        let prev_line = p.line;
        let mut d = self.rep.error(
            span,
            "this line looks like the rest of the previous command, split over two lines; join them",
        );
        let prev_lexed = lex_line(self.rep.lines.get(prev_line - 1).copied().unwrap_or(""));
        let prev_span = match (prev_lexed.tokens.first(), prev_lexed.tokens.last()) {
            (Some(a), Some(b)) => Span {
                line: prev_line,
                col: a.col,
                len: b.col + b.len - a.col,
            },
            _ => Span {
                line: prev_line,
                col: 1,
                len: 1,
            },
        };
        d = self
            .rep
            .note_at(d, prev_span, "the command it continues is here");
        if !p.secret {
            d = d.help(format!(
                "write it on one line: `{} {}`",
                p.text,
                lexed.rest_from(0)
            ));
        }
        self.emit(d);
    }

    fn unknown_command(&mut self, cur: &Cursor<'_, 'a>, first: Token<'a>) {
        let inner = self.stack.last().map(|t| t.kind());
        let mut candidates: Vec<&'static str> = Vec::new();
        for t in self.stack.iter().rev() {
            candidates.extend(t.kind().keywords());
        }
        candidates.extend(TOP);
        candidates.extend(SESSION);
        let span = cur.span_of(first);
        let where_ = match inner {
            Some(k) => format!(" in `{}` block", k.title()),
            None => String::new(),
        };
        let mut d;
        if let Some(s) = suggest(first.text, candidates.iter().copied()) {
            d = self.rep.error(
                span,
                format!(
                    "unknown command `{}`{where_}; did you mean `{s}`?",
                    first.text
                ),
            );
        } else {
            d = self
                .rep
                .error(span, format!("unknown command `{}`{where_}", first.text));
            let here: Vec<&str> = inner.map(|k| k.keywords().to_vec()).unwrap_or_default();
            if here.is_empty() {
                d = d.help(format!(
                    "top-level commands are {}",
                    list_names(TOP.iter().copied(), 10)
                ));
            } else {
                d = d.help(format!(
                    "commands of this block are {}; a top-level command ({}) closes it",
                    list_names(here.iter().copied(), 10),
                    list_names(TOP.iter().copied(), 10)
                ));
            }
        }
        self.emit(d);
    }

    // ----- argument readers -------------------------------------------------

    /// Reports that the command read so far needs more: `what` is e.g. "an
    /// address and mask".
    fn missing(&mut self, cur: &Cursor<'_, 'a>, what: &str, example: Option<&str>) -> Failed {
        self.line_missing = true;
        let mut d = self
            .rep
            .error(cur.cmd_span(), format!("`{}` needs {what}", cur.cmd()));
        if let Some(e) = example {
            d = d.help(format!("for example `{e}`"));
        }
        self.emit(d);
        Failed
    }

    /// One keyword out of `choices` (case-insensitive); returns its canonical
    /// spelling. `what` names the kind of word in messages ("keyword",
    /// "encryption algorithm").
    fn keyword(
        &mut self,
        cur: &mut Cursor<'_, 'a>,
        choices: &[&'static str],
        what: &str,
    ) -> Res<&'static str> {
        let Some(t) = cur.peek() else {
            return Err(self.missing(
                cur,
                &format!("a {what}: {}", list_names(choices.iter().copied(), 12)),
                None,
            ));
        };
        if let Some(c) = choices.iter().find(|c| c.eq_ignore_ascii_case(t.text)) {
            cur.bump();
            cur.cmd.push((*c).to_string());
            return Ok(c);
        }
        let after = cur
            .prev()
            .map(|p| format!(" after `{}`", p.text))
            .unwrap_or_default();
        // `set ikev2 profile` for `set ikev2-profile`: two words for one.
        if let Some(n) = cur.peek_at(1) {
            let joined = format!("{}-{}", t.text, n.text);
            if let Some(c) = choices.iter().find(|c| c.eq_ignore_ascii_case(&joined)) {
                let span = cur.span_range(cur.pos, cur.pos + 2);
                let d = self
                    .rep
                    .error(
                        span,
                        format!("`{} {}` is one keyword, written `{c}`", t.text, n.text),
                    )
                    .help(format!("write `{c}`"));
                self.emit(d);
                return Err(Failed);
            }
        }
        let span = cur.span_of(t);
        let has_letters = t.text.chars().any(|c| c.is_alphabetic());
        let d = match suggest(t.text, choices.iter().copied()).filter(|_| has_letters) {
            Some(s) => self.rep.error(
                span,
                format!("unknown {what} `{}`{after}; did you mean `{s}`?", t.text),
            ),
            None => self
                .rep
                .error(span, format!("unknown {what} `{}`{after}", t.text))
                .help(format!(
                    "valid here: {}",
                    list_names(choices.iter().copied(), 12)
                )),
        };
        self.emit(d);
        Err(Failed)
    }

    /// An object name. Keywords of the block it names, and the session
    /// commands, are reserved.
    fn name(
        &mut self,
        cur: &mut Cursor<'_, 'a>,
        what: &str,
        reserved: &[&'static str],
    ) -> Res<Token<'a>> {
        let Some(t) = cur.peek() else {
            return Err(self.missing(cur, &format!("a {what}"), None));
        };
        let l = lower(t.text);
        if reserved.contains(&l.as_str()) {
            let cmd = cur.cmd();
            let d = self
                .rep
                .error(
                    cur.span_of(t),
                    format!("`{cmd}` needs a {what} before `{}`", t.text),
                )
                .help(format!(
                    "`{}` is a keyword of `{cmd}`, not a name: write `{cmd} NAME {} ...`",
                    t.text, t.text
                ));
            self.emit(d);
            return Err(Failed);
        }
        if SESSION.contains(&l.as_str()) {
            let d = self.rep.error(
                cur.span_of(t),
                format!("`{}` is a reserved keyword and cannot be a {what}", t.text),
            );
            self.emit(d);
            return Err(Failed);
        }
        if t.text == "<redacted>" || t.text.chars().any(|c| c.is_control()) {
            let d = self.rep.error(
                cur.span_of(t),
                format!("`{}` is not a valid {what}", t.text.escape_debug()),
            );
            self.emit(d);
            return Err(Failed);
        }
        cur.bump();
        Ok(t)
    }

    fn ipv4(
        &mut self,
        cur: &mut Cursor<'_, 'a>,
        what: &str,
        example: &str,
    ) -> Res<(Ipv4Addr, Token<'a>)> {
        let Some(t) = cur.peek() else {
            return Err(self.missing(cur, what, Some(example)));
        };
        match t.text.parse::<Ipv4Addr>() {
            Ok(a) => {
                cur.bump();
                Ok((a, t))
            }
            Err(_) => {
                let d = self
                    .rep
                    .error(
                        cur.span_of(t),
                        format!("expected {what}, found `{}`", t.text),
                    )
                    .help(format!("for example `{example}`"));
                self.emit(d);
                Err(Failed)
            }
        }
    }

    /// `A.B.C.D MASK` as a prefix; `what` describes both ("an address and mask").
    fn addr_mask(
        &mut self,
        cur: &mut Cursor<'_, 'a>,
        what: &str,
        example: &str,
    ) -> Res<(Ipv4Net, Span)> {
        if cur.peek().is_none() {
            return Err(self.missing(cur, what, Some(example)));
        }
        let (addr, at) = self.ipv4(cur, "an IPv4 address", example)?;
        let Some(m) = cur.peek() else {
            cur.cmd.push(at.text.to_string());
            return Err(self.missing(cur, "a mask after the address", Some(example)));
        };
        if m.text.starts_with('/') || m.text.bytes().all(|b| b.is_ascii_digit()) {
            let d = self
                .rep
                .error(
                    cur.span_of(m),
                    format!("expected a dotted netmask, found `{}`", m.text),
                )
                .help(format!(
                    "write the mask in dotted form, for example `{example}`"
                ));
            self.emit(d);
            return Err(Failed);
        }
        let (mask, mt) = self.ipv4(cur, "a netmask", example)?;
        let Some(len) = mask_to_prefix(mask) else {
            let d = self
                .rep
                .error(
                    cur.span_of(mt),
                    format!("`{mask}` is not a valid netmask: its one bits are not contiguous"),
                )
                .help("a netmask is ones then zeros, for example `255.255.255.0` (/24)");
            self.emit(d);
            return Err(Failed);
        };
        let span = Span {
            line: cur.no,
            col: at.col,
            len: mt.col + mt.len - at.col,
        };
        Ok((
            Ipv4Net {
                addr,
                prefix_len: len,
            },
            span,
        ))
    }

    /// A decimal number in `range`; `what` is e.g. "a lifetime in seconds".
    fn number(
        &mut self,
        cur: &mut Cursor<'_, 'a>,
        what: &str,
        range: RangeInclusive<u64>,
        unit: &str,
        example: &str,
    ) -> Res<(u64, Token<'a>)> {
        let Some(t) = cur.peek() else {
            return Err(self.missing(cur, what, Some(example)));
        };
        let cmd = cur.cmd();
        if t.text.is_empty() || !t.text.bytes().all(|b| b.is_ascii_digit()) {
            let d = self
                .rep
                .error(
                    cur.span_of(t),
                    format!("`{cmd}` takes {what}, not `{}`", t.text),
                )
                .help(format!("for example `{example}`"));
            self.emit(d);
            return Err(Failed);
        }
        let n = t.text.parse::<u64>().unwrap_or(u64::MAX);
        if !range.contains(&n) {
            let shown = if t.text.len() > 20 { "that" } else { t.text };
            let d = self.rep.error(
                cur.span_of(t),
                format!(
                    "{shown} is out of range: `{cmd}` accepts {}..={} {unit}",
                    range.start(),
                    range.end()
                ),
            );
            self.emit(d);
            return Err(Failed);
        }
        cur.bump();
        Ok((n, t))
    }

    /// Nothing may follow. On a line holding a key, the extra word is not
    /// quoted (it may be the second half of a key with a space in it).
    fn end_inner(&mut self, cur: &mut Cursor<'_, 'a>, secret: bool) -> Res<()> {
        let Some(t) = cur.peek() else {
            return Ok(());
        };
        let cmd = cur.cmd();
        let span = cur.span_range(cur.pos, cur.line.tokens.len());
        let d = if secret {
            self.rep
                .error(
                    span,
                    format!("unexpected extra argument after the key of `{cmd}`"),
                )
                .help("a pre-shared key is one word: it cannot contain spaces")
        } else {
            self.rep.error(
                span,
                format!(
                    "unexpected extra argument `{}`: `{cmd}` takes nothing more here",
                    t.text
                ),
            )
        };
        self.emit(d);
        Err(Failed)
    }

    fn end(&mut self, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        self.end_inner(cur, false)
    }

    /// One or more keywords of an enum, in order (`encryption a b c`).
    fn values<E: Copy>(
        &mut self,
        cur: &mut Cursor<'_, 'a>,
        what: &str,
        keywords: &'static [&'static str],
        parse: fn(&str) -> Option<E>,
    ) -> Res<Vec<(E, Token<'a>)>> {
        let mut out = Vec::new();
        let head = cur.cmd.clone();
        loop {
            let t = cur.peek();
            if t.is_none() && !out.is_empty() {
                break;
            }
            let kw = self.keyword(cur, keywords, what)?;
            // keep the command name in messages about later values
            cur.cmd.clone_from(&head);
            let tok = cur.prev().expect("keyword consumed a token");
            if let Some(v) = parse(kw) {
                out.push((v, tok));
            }
        }
        Ok(out)
    }

    /// Appends `vals` to `list`, warning about duplicates (ignored).
    fn push_unique<E: Copy + PartialEq + std::fmt::Display>(
        &mut self,
        no: usize,
        list_name: &str,
        list: &mut Vec<E>,
        vals: Vec<(E, Token<'a>)>,
    ) {
        for (v, t) in vals {
            if list.contains(&v) {
                let d = self.rep.warning(
                    Span {
                        line: no,
                        col: t.col,
                        len: t.len,
                    },
                    format!("`{v}` is already in the `{list_name}` list; the duplicate is ignored"),
                );
                self.emit(d);
            } else {
                list.push(v);
            }
        }
    }

    // ----- objects ----------------------------------------------------------

    /// Whether list item `key` is new in object `t` (always, in a scratch
    /// object: its contents are thrown away).
    fn first_time(&mut self, t: Target, key: String) -> bool {
        t == Target::scratch(t.kind()) || self.seen.insert((t, key))
    }

    fn get_or_create(&mut self, kind: Kind, name: &str, span: Span) -> Target {
        macro_rules! goc {
            ($map:expr, $ty:ident, $variant:ident) => {{
                let idx = match $map.position(name) {
                    Some(i) => i,
                    None => $map
                        .insert($ty {
                            name: name.to_string(),
                            span,
                            ..Default::default()
                        })
                        .unwrap_or(0),
                };
                Target::$variant(Some(idx))
            }};
        }
        match kind {
            Kind::Proposal => goc!(self.cfg.proposals, Ikev2Proposal, Proposal),
            Kind::Policy => goc!(self.cfg.policies, Ikev2Policy, Policy),
            Kind::Keyring => goc!(self.cfg.keyrings, Keyring, Keyring),
            Kind::Ikev2Profile => goc!(self.cfg.ikev2_profiles, Ikev2Profile, Ikev2Profile),
            Kind::Trustpoint => goc!(self.cfg.trustpoints, Trustpoint, Trustpoint),
            Kind::TransformSet => goc!(self.cfg.transform_sets, TransformSet, TransformSet),
            Kind::IpsecProfile => goc!(self.cfg.ipsec_profiles, IpsecProfile, IpsecProfile),
            Kind::Interface => goc!(self.cfg.interfaces, TunnelInterface, Interface),
            Kind::Peer | Kind::RouterStatic | Kind::AddressFamily => Target::scratch(kind),
        }
    }

    /// After a header's name: open the block (header alone) or run the rest
    /// of the line inside it (one-line form).
    fn enter(
        &mut self,
        cur: &mut Cursor<'_, 'a>,
        target: Target,
        name_span: Span,
        name: &str,
    ) -> Res<bool> {
        if cur.peek().is_none() {
            if let Some(first) = self.block_defined.get(&target).copied() {
                let kind = target.kind();
                let mut d = self.rep.error(
                    name_span,
                    format!("duplicate `{} {name}`: it is already defined", kind.title()),
                );
                d = self.rep.note_at(d, first, "first defined here");
                d = d.help("merge the two blocks into one");
                self.emit(d);
                self.push_scratch(kind);
                return Ok(true);
            }
            // Only a block opened on a line of its own counts as a
            // definition; one-line commands add to an object as IOS does.
            self.block_defined.insert(target, name_span);
            self.stack.push(target);
            return Ok(true);
        }
        self.stack.push(target);
        cur.mark();
        self.dispatch_sub(target, cur)
    }

    fn push_scratch(&mut self, kind: Kind) {
        match kind {
            Kind::Proposal => self.scratch.proposal = Default::default(),
            Kind::Policy => self.scratch.policy = Default::default(),
            Kind::Keyring => self.scratch.keyring = Default::default(),
            Kind::Peer => self.scratch.peer = Default::default(),
            Kind::Ikev2Profile => self.scratch.ikev2_profile = Default::default(),
            Kind::Trustpoint => self.scratch.trustpoint = Default::default(),
            Kind::TransformSet => self.scratch.transform_set = Default::default(),
            Kind::IpsecProfile => self.scratch.ipsec_profile = Default::default(),
            Kind::Interface => self.scratch.interface = Default::default(),
            Kind::RouterStatic | Kind::AddressFamily => {}
        }
        self.stack.push(Target::scratch(kind));
    }

    /// `HEADER NAME ...` for a named top-level block.
    fn open_named(&mut self, cur: &mut Cursor<'_, 'a>, kind: Kind, what: &str) -> Res<bool> {
        let tok = match self.name(cur, what, kind.keywords()) {
            Ok(t) => t,
            Err(_) => {
                // Keep checking the block's lines, into a throwaway object.
                self.push_scratch(kind);
                return Ok(true);
            }
        };
        let span = cur.span_of(tok);
        let target = self.get_or_create(kind, tok.text, span);
        self.enter(cur, target, span, tok.text)
    }

    fn dispatch_top(&mut self, cur: &mut Cursor<'_, 'a>) -> Res<bool> {
        let kw = lower(cur.line.tokens[0].text);
        cur.pos = 1;
        match kw.as_str() {
            "ikev2" => match self.keyword(
                cur,
                &["proposal", "policy", "profile", "fragmentation"],
                "keyword",
            )? {
                "proposal" => self.open_named(cur, Kind::Proposal, "proposal name"),
                "policy" => self.open_named(cur, Kind::Policy, "policy name"),
                "profile" => self.open_named(cur, Kind::Ikev2Profile, "profile name"),
                _ => self.fragmentation(cur).map(|()| false),
            },
            "no" => {
                if let Some(t) = cur
                    .peek()
                    .filter(|t| t.text.eq_ignore_ascii_case("shutdown"))
                {
                    let d = self
                        .rep
                        .error(
                            cur.span_of(t),
                            "`no shutdown` outside an interface block: the only global `no` \
                             command is `no ikev2 fragmentation`",
                        )
                        .help(
                            "write it inside `interface tunnel-ipN`, before any top-level \
                             command (which closes the block)",
                        );
                    self.emit(d);
                    return Err(Failed);
                }
                self.keyword(cur, &["ikev2"], "keyword")?;
                self.keyword(cur, &["fragmentation"], "keyword")?;
                if let Some(t) = cur.peek() {
                    let d = self
                        .rep
                        .error(
                            cur.span_range(cur.pos, cur.line.tokens.len()),
                            format!(
                                "unexpected extra argument `{}`: `no ikev2 fragmentation` turns \
                                 fragmentation off whatever its size",
                                t.text
                            ),
                        )
                        .help("write `no ikev2 fragmentation` alone");
                    self.emit(d);
                    return Err(Failed);
                }
                let span = cur.cmd_span();
                self.set_fragmentation(span, true, None);
                Ok(false)
            }
            "keyring" => self.open_named(cur, Kind::Keyring, "keyring name"),
            "crypto" => {
                self.keyword(cur, &["ca"], "keyword")?;
                self.keyword(cur, &["trustpoint"], "keyword")?;
                self.open_named(cur, Kind::Trustpoint, "trustpoint name")
            }
            "ipsec" => match self.keyword(cur, &["transform-set", "profile"], "keyword")? {
                "transform-set" => self.open_named(cur, Kind::TransformSet, "transform-set name"),
                _ => self.open_named(cur, Kind::IpsecProfile, "profile name"),
            },
            "interface" => self.open_interface(cur),
            _ => {
                // "router"
                self.keyword(cur, &["static"], "keyword")?;
                if cur.peek().is_none() {
                    self.stack.push(Target::RouterStatic);
                    return Ok(true);
                }
                self.stack.push(Target::RouterStatic);
                cur.mark();
                self.dispatch_sub(Target::RouterStatic, cur)
            }
        }
    }

    /// `ikev2 fragmentation [mtu BYTES]`, after `fragmentation`.
    fn fragmentation(&mut self, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        let mut mtu = None;
        if cur.peek().is_some() {
            self.keyword(cur, &["mtu"], "keyword")?;
            let range = IKE_FRAGMENT_MTU_RANGE;
            if let Some(t) = cur.peek() {
                let n = t.text.parse::<u64>();
                if n.is_ok_and(|n| {
                    !(u64::from(*range.start())..=u64::from(*range.end())).contains(&n)
                }) {
                    let d = self
                        .rep
                        .error(
                            cur.span_of(t),
                            format!(
                                "{} is out of range: `ikev2 fragmentation mtu` accepts {}..={} bytes",
                                if t.text.len() > 20 { "that" } else { t.text },
                                range.start(),
                                range.end()
                            ),
                        )
                        .help(format!(
                            "the size counts the IP and UDP headers; {} (the default) fits every \
                             IPv6 path and 576 every IPv4 one (RFC 7383 2.5.1)",
                            DEFAULT_IKE_FRAGMENT_MTU
                        ));
                    self.emit(d);
                    return Err(Failed);
                }
            }
            let (n, _) = self.number(
                cur,
                "a fragment size in bytes",
                u64::from(*range.start())..=u64::from(*range.end()),
                "bytes",
                "ikev2 fragmentation mtu 1280",
            )?;
            self.end(cur)?;
            mtu = Some(n as u16);
        }
        let span = cur.cmd_span();
        self.set_fragmentation(span, false, mtu);
        Ok(())
    }

    /// Records `ikev2 fragmentation` or its `no` form written at `span`;
    /// the later command wins (warned about, with a note at the earlier).
    fn set_fragmentation(&mut self, span: Span, disabled: bool, mtu: Option<u16>) {
        let new = IkeFragmentation {
            disabled,
            mtu,
            span: Some(span),
        };
        let old = self.cfg.ikev2_fragmentation;
        if let Some(first) = old.span {
            let describe = |f: &IkeFragmentation| match (f.disabled, f.mtu) {
                (true, _) => "no ikev2 fragmentation".to_string(),
                (false, None) => "ikev2 fragmentation".to_string(),
                (false, Some(n)) => format!("ikev2 fragmentation mtu {n}"),
            };
            let (now, before) = (describe(&new), describe(&old));
            let mut d = if now == before {
                self.rep
                    .warning(span, format!("`{now}` is written a second time"))
            } else {
                self.rep
                    .warning(span, format!("`{now}` replaces the earlier `{before}`"))
            };
            d = self.rep.note_at(d, first, "the earlier command");
            d = d.help("keep only the one you mean: the last one wins");
            self.emit(d);
        }
        self.cfg.ikev2_fragmentation = new;
    }

    fn open_interface(&mut self, cur: &mut Cursor<'_, 'a>) -> Res<bool> {
        let Some(t) = cur.peek() else {
            let _ = self.missing(cur, "an interface name", Some("interface tunnel-ip1"));
            self.push_scratch(Kind::Interface);
            return Ok(true);
        };
        let Some(n) = tunnel_number(t.text) else {
            let mut d = self.rep.error(
                cur.span_of(t),
                format!(
                    "xrsec configures only `interface tunnel-ipN`, not `{}`",
                    t.text
                ),
            );
            d = if t
                .text
                .get(..9)
                .is_some_and(|h| h.eq_ignore_ascii_case("tunnel-ip"))
            {
                d.help("the tunnel number is 0..=65535, for example `tunnel-ip1`")
            } else {
                d.help("other interfaces belong to Linux: configure them with `ip`")
            };
            self.emit(d);
            self.push_scratch(Kind::Interface);
            return Ok(true);
        };
        cur.bump();
        let span = cur.span_of(t);
        let name = format!("tunnel-ip{n}");
        let target = self.get_or_create(Kind::Interface, &name, span);
        if let Target::Interface(Some(i)) = target {
            self.cfg.interfaces.at_mut(i).number = n;
        }
        self.enter(cur, target, span, &name)
    }

    /// A sub-command of block `t`, the cursor at its first word.
    fn dispatch_sub(&mut self, t: Target, cur: &mut Cursor<'_, 'a>) -> Res<bool> {
        let kind = t.kind();
        let start = cur.pos;
        let r = if kind == Kind::AddressFamily {
            self.route(cur).map(|()| false)
        } else {
            match self.sub_keyword(cur, kind) {
                Ok(kw) => match kind {
                    Kind::Proposal => self.proposal_cmd(t, kw, cur).map(|()| false),
                    Kind::Policy => self.policy_cmd(t, kw, cur).map(|()| false),
                    Kind::Keyring => self.keyring_cmd(t, cur),
                    Kind::Peer => self.peer_cmd(t, kw, cur).map(|()| false),
                    Kind::Ikev2Profile => self.ikev2_profile_cmd(t, kw, cur).map(|()| false),
                    Kind::Trustpoint => self.trustpoint_cmd(t, kw, cur).map(|()| false),
                    Kind::TransformSet => self.transform_set_cmd(t, kw, cur).map(|()| false),
                    Kind::IpsecProfile => self.ipsec_profile_cmd(t, cur).map(|()| false),
                    Kind::Interface => self.interface_cmd(t, kw, cur).map(|()| false),
                    Kind::RouterStatic | Kind::AddressFamily => self.router_static_cmd(cur),
                },
                Err(f) => Err(f),
            }
        };
        if r.is_err() && t != Target::scratch(kind) {
            // The first two words name the setting: "tunnel source".
            let words: Vec<String> = cur.line.tokens[start..]
                .iter()
                .take(2)
                .map(|t| lower(t.text))
                .collect();
            for n in 1..=words.len() {
                self.facts.failed.insert((t, words[..n].join(" ")));
            }
        }
        r
    }

    /// The first word of a sub-command of `kind` (the line dispatcher has
    /// already checked it; this reports misspellings in one-line commands).
    fn sub_keyword(&mut self, cur: &mut Cursor<'_, 'a>, kind: Kind) -> Res<&'static str> {
        let Some(t) = cur.peek() else {
            return Err(self.missing(cur, "a command", None));
        };
        let kws = kind.keywords();
        if let Some(k) = kws.iter().find(|k| k.eq_ignore_ascii_case(t.text)) {
            cur.bump();
            cur.cmd.push((*k).to_string());
            return Ok(k);
        }
        let span = cur.span_of(t);
        let d = match suggest(t.text, kws.iter().copied()) {
            Some(s) => self.rep.error(
                span,
                format!(
                    "unknown command `{}` in `{}`; did you mean `{s}`?",
                    t.text,
                    kind.title()
                ),
            ),
            None => self
                .rep
                .error(
                    span,
                    format!("unknown command `{}` in `{}`", t.text, kind.title()),
                )
                .help(format!(
                    "commands of `{}` are {}",
                    kind.title(),
                    list_names(kws.iter().copied(), 12)
                )),
        };
        self.emit(d);
        Err(Failed)
    }

    /// A lifetime in seconds ending the command: from 10 s (so tests can
    /// rekey often) to `max`, with a warning under IOS-XR's minimum of 120 s.
    fn lifetime_secs(
        &mut self,
        cur: &mut Cursor<'_, 'a>,
        what: &str,
        max: u64,
        example: &str,
    ) -> Res<u64> {
        let (n, tok) = self.number(cur, "a lifetime in seconds", 10..=max, "seconds", example)?;
        self.end(cur)?;
        if n < 120 {
            let d = self
                .rep
                .warning(
                    cur.span_of(tok),
                    format!("{what} lifetime of {n} s is below IOS-XR's minimum of 120 s"),
                )
                .note("xrsec accepts it so tests can rekey often; an IOS-XR peer will not");
            self.emit(d);
        }
        Ok(n)
    }

    fn proposal_mut(&mut self, t: Target) -> &mut Ikev2Proposal {
        match t {
            Target::Proposal(Some(i)) => self.cfg.proposals.at_mut(i),
            _ => &mut self.scratch.proposal,
        }
    }

    fn proposal_cmd(&mut self, t: Target, kw: &str, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        let no = cur.no;
        match kw {
            "encryption" => {
                let v = self.values(
                    cur,
                    "encryption algorithm",
                    IkeEncryption::KEYWORDS,
                    IkeEncryption::from_keyword,
                )?;
                let mut list = std::mem::take(&mut self.proposal_mut(t).encryption);
                self.push_unique(no, "encryption", &mut list, v);
                self.proposal_mut(t).encryption = list;
            }
            "integrity" => {
                let v = self.values(
                    cur,
                    "integrity algorithm",
                    IkeIntegrity::KEYWORDS,
                    IkeIntegrity::from_keyword,
                )?;
                let mut list = std::mem::take(&mut self.proposal_mut(t).integrity);
                self.push_unique(no, "integrity", &mut list, v);
                self.proposal_mut(t).integrity = list;
            }
            "prf" => {
                let v = self.values(cur, "PRF", Prf::KEYWORDS, Prf::from_keyword)?;
                let mut list = std::mem::take(&mut self.proposal_mut(t).prf);
                self.push_unique(no, "prf", &mut list, v);
                self.proposal_mut(t).prf = list;
            }
            _ => {
                let v = self.values(cur, "DH group", DhGroup::KEYWORDS, DhGroup::from_keyword)?;
                let mut list = std::mem::take(&mut self.proposal_mut(t).dh_groups);
                self.push_unique(no, "dh-group", &mut list, v);
                self.proposal_mut(t).dh_groups = list;
            }
        }
        Ok(())
    }

    fn policy_mut(&mut self, t: Target) -> &mut Ikev2Policy {
        match t {
            Target::Policy(Some(i)) => self.cfg.policies.at_mut(i),
            _ => &mut self.scratch.policy,
        }
    }

    fn policy_cmd(&mut self, t: Target, kw: &str, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        if kw == "match" {
            match self.keyword(cur, &["address", "fvrf"], "keyword")? {
                "address" => {
                    self.keyword(cur, &["local"], "keyword")?;
                    let (a, tok) = self.ipv4(
                        cur,
                        "a local IPv4 address",
                        "match address local 198.51.100.1",
                    )?;
                    self.end(cur)?;
                    let span = cur.span_of(tok);
                    if self.first_time(t, format!("local {a}")) {
                        self.policy_mut(t).match_local.push((a, span));
                    }
                }
                _ => {
                    self.keyword(cur, &["any"], "keyword")?;
                    self.end(cur)?;
                    self.policy_mut(t).match_fvrf_any = true;
                }
            }
            return Ok(());
        }
        // proposal NAME [NAME...]
        let mut names = vec![self.name(cur, "proposal name", &[])?];
        while cur.peek().is_some() {
            names.push(self.name(cur, "proposal name", &[])?);
        }
        for n in names {
            let span = cur.span_of(n);
            if !self.first_time(t, format!("proposal {}", n.text)) {
                let d = self.rep.warning(
                    span,
                    format!(
                        "proposal `{}` is already listed in this policy; the duplicate is ignored",
                        n.text
                    ),
                );
                self.emit(d);
                continue;
            }
            self.policy_mut(t).proposals.push(NameRef {
                name: n.text.to_string(),
                span,
            });
        }
        Ok(())
    }

    fn keyring_cmd(&mut self, t: Target, cur: &mut Cursor<'_, 'a>) -> Res<bool> {
        // peer NAME [...]
        let tok = match self.name(cur, "peer name", Kind::Peer.keywords()) {
            Ok(tok) => tok,
            Err(_) => {
                self.push_scratch(Kind::Peer);
                return Ok(true);
            }
        };
        let span = cur.span_of(tok);
        let target = match t {
            Target::Keyring(Some(k)) => {
                let peers = &mut self.cfg.keyrings.at_mut(k).peers;
                let p = match peers.position(tok.text) {
                    Some(p) => p,
                    None => peers
                        .insert(KeyringPeer {
                            name: tok.text.to_string(),
                            span,
                            ..Default::default()
                        })
                        .unwrap_or(0),
                };
                Target::Peer(Some((k, p)))
            }
            _ => Target::Peer(None),
        };
        if target == Target::Peer(None) {
            self.push_scratch(Kind::Peer);
            if cur.peek().is_none() {
                return Ok(true);
            }
            cur.mark();
            return self.dispatch_sub(target, cur);
        }
        self.enter(cur, target, span, tok.text)
    }

    fn peer_mut(&mut self, t: Target) -> &mut KeyringPeer {
        match t {
            Target::Peer(Some((k, p))) => self.cfg.keyrings.at_mut(k).peers.at_mut(p),
            _ => &mut self.scratch.peer,
        }
    }

    fn peer_cmd(&mut self, t: Target, kw: &str, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        if kw == "address" {
            let (net, span) = self.addr_mask(
                cur,
                "an address and mask",
                "address 198.51.100.2 255.255.255.255",
            )?;
            self.end(cur)?;
            self.peer_mut(t).address = Some((net, span));
            return Ok(());
        }
        // pre-shared-key [local|remote] KEY
        self.line_missing_secret = true;
        let mut which = "";
        if let Some(q) = cur.peek() {
            let l = lower(q.text);
            if (l == "local" || l == "remote") && cur.peek_at(1).is_some() {
                cur.bump();
                which = if l == "local" { "local" } else { "remote" };
                cur.cmd.push(which.to_string());
            } else if l == "local" || l == "remote" {
                cur.bump();
                cur.cmd.push(l);
            }
        }
        let Some(k) = cur.peek() else {
            return Err(self.missing(cur, "a key", Some("pre-shared-key <a long random key>")));
        };
        if k.text == "<redacted>" {
            let d = self
                .rep
                .error(
                    cur.span_of(k),
                    "this key was redacted when the configuration was printed",
                )
                .help("put the real key back in place of `<redacted>`");
            self.emit(d);
            return Err(Failed);
        }
        cur.bump();
        self.end_inner(cur, true)?;
        let span = cur.span_of(k);
        let key = PreSharedKey::new(k.text);
        let p = self.peer_mut(t);
        match which {
            "local" => p.pre_shared_key_local = Some(key),
            "remote" => p.pre_shared_key_remote = Some(key),
            _ => p.pre_shared_key = Some(key),
        }
        if p.key_span.is_none() {
            p.key_span = Some(span);
        }
        Ok(())
    }

    fn ikev2_profile_mut(&mut self, t: Target) -> &mut Ikev2Profile {
        match t {
            Target::Ikev2Profile(Some(i)) => self.cfg.ikev2_profiles.at_mut(i),
            _ => &mut self.scratch.ikev2_profile,
        }
    }

    fn ikev2_profile_cmd(&mut self, t: Target, kw: &str, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        match kw {
            "keyring" => {
                let n = self.name(cur, "keyring name", &[])?;
                self.end(cur)?;
                let r = NameRef {
                    name: n.text.to_string(),
                    span: cur.span_of(n),
                };
                self.ikev2_profile_mut(t).keyring = Some(r);
            }
            "lifetime" => {
                let n = self.lifetime_secs(cur, "IKE SA", 86_400, "lifetime 86400")?;
                self.ikev2_profile_mut(t).lifetime_secs = Some(n as u32);
            }
            "authentication" => {
                let side = self.keyword(cur, &["local", "remote"], "keyword")?;
                let m = self.keyword(cur, AuthMethod::KEYWORDS, "authentication method")?;
                self.end(cur)?;
                let method = AuthMethod::from_keyword(m);
                let span = cur.cmd_span();
                let p = self.ikev2_profile_mut(t);
                if side == "local" {
                    p.auth_local = method;
                    p.auth_span = Some(span);
                } else {
                    p.auth_remote = method;
                    p.auth_span.get_or_insert(span);
                }
            }
            "match" => {
                self.keyword(cur, &["identity"], "keyword")?;
                self.keyword(cur, &["remote"], "keyword")?;
                let id = match self.keyword(cur, &["address", "fqdn"], "identity type")? {
                    "address" => {
                        let (net, _) = self.addr_mask(
                            cur,
                            "an address and mask",
                            "match identity remote address 198.51.100.2 255.255.255.255",
                        )?;
                        RemoteIdentity::Address(net)
                    }
                    _ => {
                        let n = self.name(cur, "domain name", &[])?;
                        RemoteIdentity::Fqdn(n.text.to_string())
                    }
                };
                self.end(cur)?;
                if self.first_time(t, format!("{id:?}")) {
                    self.ikev2_profile_mut(t).match_identity_remote.push(id);
                }
            }
            "pki" => {
                self.keyword(cur, &["trustpoint"], "keyword")?;
                let n = self.name(cur, "trustpoint name", &[])?;
                self.end(cur)?;
                let r = NameRef {
                    name: n.text.to_string(),
                    span: cur.span_of(n),
                };
                self.ikev2_profile_mut(t).pki_trustpoint = Some(r);
            }
            _ => {
                // dpd INTERVAL RETRIES
                let (interval, _) = self.number(
                    cur,
                    "an interval in seconds and a retry count",
                    1..=3600,
                    "seconds",
                    "dpd 10 3",
                )?;
                let (retries, _) =
                    self.number(cur, "a retry count", 1..=100, "retries", "dpd 10 3")?;
                self.end(cur)?;
                self.ikev2_profile_mut(t).dpd = Some(Dpd {
                    interval_secs: interval as u32,
                    retries: retries as u32,
                });
            }
        }
        Ok(())
    }

    fn trustpoint_cmd(&mut self, t: Target, kw: &str, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        let example = format!("{kw} /etc/xrsec/{kw}.pem");
        let Some(p) = cur.bump() else {
            return Err(self.missing(cur, "a PEM file path", Some(&example)));
        };
        self.end(cur)?;
        let path = Some(p.text.to_string());
        let tp = match t {
            Target::Trustpoint(Some(i)) => self.cfg.trustpoints.at_mut(i),
            _ => &mut self.scratch.trustpoint,
        };
        match kw {
            "ca-certificate" => tp.ca_certificate = path,
            "certificate" => tp.certificate = path,
            _ => tp.private_key = path,
        }
        Ok(())
    }

    fn transform_set_mut(&mut self, t: Target) -> &mut TransformSet {
        match t {
            Target::TransformSet(Some(i)) => self.cfg.transform_sets.at_mut(i),
            _ => &mut self.scratch.transform_set,
        }
    }

    fn transform_set_cmd(&mut self, t: Target, kw: &str, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        if kw == "mode" {
            let m = self.keyword(cur, &["tunnel", "transport"], "mode")?;
            if m == "transport" {
                let tok = cur.prev().expect("mode consumed");
                let d = self
                    .rep
                    .error(
                        cur.span_of(tok),
                        "`mode transport` is not supported: xrsec carries tunnel-ipN traffic in tunnel mode only",
                    )
                    .help("write `mode tunnel` (or leave `mode` out)");
                self.emit(d);
                return Err(Failed);
            }
            self.end(cur)?;
            self.transform_set_mut(t).mode = Some(IpsecMode::Tunnel);
            return Ok(());
        }
        let c = self.keyword(cur, EspCipher::KEYWORDS, "ESP cipher")?;
        let cipher = EspCipher::from_keyword(c).ok_or(Failed)?;
        let integrity = if cipher.is_aead() {
            if let Some(n) = cur.peek() {
                if EspIntegrity::from_keyword(n.text).is_some() {
                    let d = self
                        .rep
                        .error(
                            cur.span_of(n),
                            format!(
                                "`{cipher}` is an AEAD cipher: it authenticates itself and takes no `{}`",
                                n.text
                            ),
                        )
                        .help(format!("write `transform {cipher}`"));
                    self.emit(d);
                    return Err(Failed);
                }
            }
            None
        } else {
            if cur.peek().is_none() {
                return Err(self.missing(
                    cur,
                    "an integrity algorithm (CBC does not authenticate)",
                    Some(&format!("transform {cipher} esp-hmac-sha-256")),
                ));
            }
            let i = self.keyword(cur, EspIntegrity::KEYWORDS, "ESP integrity algorithm")?;
            EspIntegrity::from_keyword(i)
        };
        self.end(cur)?;
        let tr = EspTransform { cipher, integrity };
        if self.transform_set_mut(t).transforms.contains(&tr) {
            let d = self.rep.warning(
                cur.cmd_span(),
                format!(
                    "transform `{tr}` is already in this transform set; the duplicate is ignored"
                ),
            );
            self.emit(d);
        } else {
            self.transform_set_mut(t).transforms.push(tr);
        }
        Ok(())
    }

    fn ipsec_profile_mut(&mut self, t: Target) -> &mut IpsecProfile {
        match t {
            Target::IpsecProfile(Some(i)) => self.cfg.ipsec_profiles.at_mut(i),
            _ => &mut self.scratch.ipsec_profile,
        }
    }

    fn ipsec_profile_cmd(&mut self, t: Target, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        match self.keyword(
            cur,
            &[
                "ikev2-profile",
                "transform-set",
                "pfs",
                "security-association",
            ],
            "keyword",
        )? {
            "ikev2-profile" => {
                let n = self.name(cur, "IKEv2 profile name", &[])?;
                self.end(cur)?;
                let r = NameRef {
                    name: n.text.to_string(),
                    span: cur.span_of(n),
                };
                self.ipsec_profile_mut(t).ikev2_profile = Some(r);
            }
            "transform-set" => {
                let n = self.name(cur, "transform-set name", &[])?;
                self.end(cur)?;
                let r = NameRef {
                    name: n.text.to_string(),
                    span: cur.span_of(n),
                };
                self.ipsec_profile_mut(t).transform_set = Some(r);
            }
            "pfs" => {
                let g = self.keyword(cur, PfsGroup::KEYWORDS, "PFS group")?;
                self.end(cur)?;
                self.ipsec_profile_mut(t).pfs = PfsGroup::from_keyword(g);
            }
            _ => match self.keyword(cur, &["lifetime", "replay"], "keyword")? {
                "lifetime" => match self.keyword(cur, &["seconds", "kilobytes"], "unit")? {
                    "seconds" => {
                        let n = self.lifetime_secs(
                            cur,
                            "IPsec SA",
                            604_800,
                            "set security-association lifetime seconds 3600",
                        )?;
                        self.ipsec_profile_mut(t).sa_lifetime_secs = Some(n as u32);
                    }
                    _ => {
                        let (n, _) = self.number(
                            cur,
                            "a lifetime in kilobytes",
                            2_560..=4_294_967_295,
                            "kilobytes",
                            "set security-association lifetime kilobytes 4608000",
                        )?;
                        self.end(cur)?;
                        self.ipsec_profile_mut(t).sa_lifetime_kilobytes = Some(n);
                    }
                },
                _ => {
                    self.keyword(cur, &["window-size"], "keyword")?;
                    let (n, tok) = self.number(
                        cur,
                        "a window size in packets",
                        64..=4096,
                        "packets",
                        "set security-association replay window-size 128",
                    )?;
                    if n % 64 != 0 {
                        let d = self
                            .rep
                            .error(
                                cur.span_of(tok),
                                format!("replay window-size {n} is not a multiple of 64"),
                            )
                            .help(format!("use {} or {}", (n / 64) * 64, (n / 64 + 1) * 64));
                        self.emit(d);
                        return Err(Failed);
                    }
                    self.end(cur)?;
                    self.ipsec_profile_mut(t).replay_window = Some(n as u32);
                }
            },
        }
        Ok(())
    }

    fn interface_mut(&mut self, t: Target) -> &mut TunnelInterface {
        match t {
            Target::Interface(Some(i)) => self.cfg.interfaces.at_mut(i),
            _ => &mut self.scratch.interface,
        }
    }

    fn interface_cmd(&mut self, t: Target, kw: &str, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        match kw {
            "ipv4" => {
                self.keyword(cur, &["address"], "keyword")?;
                let (net, span) = self.addr_mask(
                    cur,
                    "an address and mask",
                    "ipv4 address 192.0.2.1 255.255.255.252",
                )?;
                self.end(cur)?;
                if net.prefix_len == 0 {
                    let d = self
                        .rep
                        .error(span, "an interface address needs a mask of at least /1")
                        .help("for example `255.255.255.252` for a point-to-point /30");
                    self.emit(d);
                    return Err(Failed);
                }
                self.interface_mut(t).ipv4_address = Some(net);
            }
            "tunnel" => self.tunnel_cmd(t, cur)?,
            "mtu" => {
                let (n, _) =
                    self.number(cur, "an MTU in bytes", 576..=9216, "bytes", "mtu 1400")?;
                self.end(cur)?;
                self.interface_mut(t).mtu = Some(n as u16);
            }
            "shutdown" => {
                self.end(cur)?;
                self.interface_mut(t).shutdown = true;
            }
            // `no shutdown` is what engineers type to bring an interface up;
            // it is the only `no` form an interface has here.
            "no" => {
                self.keyword(cur, &["shutdown"], "keyword")?;
                self.end(cur)?;
                self.interface_mut(t).shutdown = false;
            }
            _ => {
                let text = cur.line.rest_from(cur.pos);
                if text.is_empty() {
                    return Err(self.missing(cur, "a text", Some("description link to router 2")));
                }
                cur.pos = cur.line.tokens.len();
                self.interface_mut(t).description = Some(text.to_string());
            }
        }
        Ok(())
    }

    fn tunnel_cmd(&mut self, t: Target, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        match self.keyword(
            cur,
            &["mode", "source", "destination", "protection"],
            "keyword",
        )? {
            "mode" => {
                let Some(m) = cur.peek() else {
                    return Err(self.missing(cur, "a mode", Some("tunnel mode ipsec ipv4")));
                };
                if !m.text.eq_ignore_ascii_case("ipsec") {
                    let d = self
                        .rep
                        .error(
                            cur.span_range(cur.pos, cur.line.tokens.len()),
                            format!(
                                "`tunnel mode {}` is not supported: xrsec tunnels are `tunnel mode ipsec ipv4`",
                                cur.line.rest_from(cur.pos)
                            ),
                        )
                        .help("write `tunnel mode ipsec ipv4`");
                    self.emit(d);
                    return Err(Failed);
                }
                cur.bump();
                cur.cmd.push("ipsec".into());
                let Some(f) = cur.peek() else {
                    return Err(self.missing(
                        cur,
                        "an address family",
                        Some("tunnel mode ipsec ipv4"),
                    ));
                };
                if f.text.eq_ignore_ascii_case("ipv6") {
                    let d = self
                        .rep
                        .error(
                            cur.span_of(f),
                            "`tunnel mode ipsec ipv6` is not supported: xrsec carries IPv4 only",
                        )
                        .help("write `tunnel mode ipsec ipv4`");
                    self.emit(d);
                    return Err(Failed);
                }
                self.keyword(cur, &["ipv4"], "address family")?;
                self.end(cur)?;
                self.interface_mut(t).tunnel_mode = Some(TunnelMode::IpsecIpv4);
            }
            "source" => {
                let Some(s) = cur.peek() else {
                    return Err(self.missing(
                        cur,
                        "a Linux interface name or an IPv4 address",
                        Some("tunnel source eth0"),
                    ));
                };
                let span = cur.span_of(s);
                let src = if s.text.starts_with(|c: char| c.is_ascii_digit())
                    && s.text.contains('.')
                {
                    let (a, _) = self.ipv4(cur, "an IPv4 address", "tunnel source 198.51.100.1")?;
                    TunnelSource::Address(a)
                } else if valid_linux_ifname(s.text) {
                    cur.bump();
                    TunnelSource::Interface(s.text.to_string())
                } else {
                    let ios = s.text.contains('/');
                    let mut d = self.rep.error(
                        span,
                        if ios {
                            format!(
                                "`{}` is an IOS-XR interface name; xrsec runs on Linux and needs the Linux name",
                                s.text
                            )
                        } else {
                            format!(
                                "`{}` is not a valid Linux interface name (1-15 characters, no `/`, `:` or spaces)",
                                s.text
                            )
                        },
                    );
                    d = d.help(
                        "give the Linux interface name (see `ip link`, e.g. `tunnel source eth0`) or this router's IPv4 address on it (e.g. `tunnel source 198.51.100.5`)",
                    );
                    self.emit(d);
                    return Err(Failed);
                };
                self.end(cur)?;
                self.interface_mut(t).source = Some((src, span));
            }
            "destination" => {
                let (a, tok) =
                    self.ipv4(cur, "an IPv4 address", "tunnel destination 198.51.100.2")?;
                self.end(cur)?;
                let span = cur.span_of(tok);
                self.interface_mut(t).destination = Some((a, span));
            }
            _ => {
                self.keyword(cur, &["ipsec"], "keyword")?;
                self.keyword(cur, &["profile"], "keyword")?;
                let n = self.name(cur, "IPsec profile name", &[])?;
                self.end(cur)?;
                let r = NameRef {
                    name: n.text.to_string(),
                    span: cur.span_of(n),
                };
                self.interface_mut(t).protection = Some(r);
            }
        }
        Ok(())
    }

    fn router_static_cmd(&mut self, cur: &mut Cursor<'_, 'a>) -> Res<bool> {
        // address-family ipv4 unicast [route]
        let Some(f) = cur.peek() else {
            return Err(self.missing(
                cur,
                "an address family",
                Some("address-family ipv4 unicast"),
            ));
        };
        if f.text.eq_ignore_ascii_case("ipv6") {
            let d = self.rep.error(
                cur.span_of(f),
                "xrsec routes IPv4 only: `address-family ipv4 unicast`",
            );
            self.emit(d);
            return Err(Failed);
        }
        self.keyword(cur, &["ipv4"], "address family")?;
        self.keyword(cur, &["unicast"], "keyword")?;
        self.stack.push(Target::AddressFamily);
        if cur.peek().is_none() {
            return Ok(true);
        }
        cur.mark();
        self.dispatch_sub(Target::AddressFamily, cur)
    }

    /// `PREFIX/LEN tunnel-ipN`.
    fn route(&mut self, cur: &mut Cursor<'_, 'a>) -> Res<()> {
        let Some(p) = cur.bump() else {
            return Err(self.missing(cur, "a route", Some("10.1.0.0/16 tunnel-ip1")));
        };
        let span = cur.span_of(p);
        let parsed = p.text.split_once('/').and_then(|(a, l)| {
            let a = a.parse::<Ipv4Addr>().ok()?;
            if l.is_empty() || l.len() > 2 || !l.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Ipv4Net::new(a, l.parse().ok()?)
        });
        let Some(net) = parsed else {
            let d = self
                .rep
                .error(
                    span,
                    format!("expected a prefix `A.B.C.D/LEN`, found `{}`", p.text),
                )
                .help("for example `10.1.0.0/16 tunnel-ip1`");
            self.emit(d);
            return Err(Failed);
        };
        if net.has_host_bits() {
            let d = self
                .rep
                .error(span, format!("prefix `{net}` has host bits set"))
                .help(format!(
                    "did you mean `{}/{}`?",
                    net.network(),
                    net.prefix_len
                ));
            self.emit(d);
            return Err(Failed);
        }
        cur.cmd.push(p.text.to_string());
        let Some(i) = cur.peek() else {
            return Err(self.missing(cur, "an interface", Some(&format!("{net} tunnel-ip1"))));
        };
        let Some(n) = tunnel_number(i.text) else {
            let d = if i.text.parse::<Ipv4Addr>().is_ok() {
                self.rep
                    .error(
                        cur.span_of(i),
                        "only interface routes are supported here: `PREFIX/LEN tunnel-ipN`",
                    )
                    .help("routes through a next hop belong to Linux's own routing table")
            } else {
                self.rep
                    .error(
                        cur.span_of(i),
                        format!("expected a `tunnel-ipN` interface, found `{}`", i.text),
                    )
                    .help(format!("for example `{net} tunnel-ip1`"))
            };
            self.emit(d);
            return Err(Failed);
        };
        cur.bump();
        self.end(cur)?;
        let route = StaticRoute {
            prefix: net,
            interface: NameRef {
                name: format!("tunnel-ip{n}"),
                span: cur.span_of(i),
            },
            span,
        };
        if !self.seen.insert((
            Target::AddressFamily,
            format!("{net} {}", route.interface.name),
        )) {
            let d = self.rep.warning(
                span,
                format!(
                    "route `{net} {}` is already configured; the duplicate is ignored",
                    route.interface.name
                ),
            );
            self.emit(d);
        } else {
            self.cfg.static_routes.push(route);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_interface_names_follow_the_kernel_rules() {
        for ok in [
            "eth0",
            "enp0s31f6",
            "br-lan",
            "a",
            "wlan0.100",
            "x23456789012345",
        ] {
            assert!(valid_linux_ifname(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "MgmtEth0/RP0/CPU0/0",
            "eth0:1",
            "x234567890123456",
        ] {
            assert!(!valid_linux_ifname(bad), "{bad}");
        }
    }

    #[test]
    fn tunnel_interface_names_give_their_number() {
        assert_eq!(tunnel_number("tunnel-ip1"), Some(1));
        assert_eq!(tunnel_number("Tunnel-IP42"), Some(42));
        assert_eq!(tunnel_number("tunnel-ip"), None);
        assert_eq!(tunnel_number("tunnel-ip99999"), None);
        assert_eq!(tunnel_number("tunnel-te1"), None);
        assert_eq!(tunnel_number("tunnel-ipé"), None);
    }
}
