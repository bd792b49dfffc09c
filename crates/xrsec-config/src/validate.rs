//! Whole-configuration checks run after parsing: references, required
//! settings, algorithm combinations, keyring coverage of tunnel
//! destinations, policy coverage of local addresses, weak choices.
//!
//! Invariants: every check runs, whatever failed before (one run reports
//! everything); a setting whose own line failed to parse is not reported
//! again as missing; work is linear in the configuration size (name lookups
//! are hashed, "did you mean" searches are capped).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::diag::{list_names, suggest, Diagnostic};
use crate::model::*;
use crate::parser::{Facts, Target};
use crate::report::Reporter;

/// Past this many "did you mean" searches, stop searching: each one scans
/// every defined name, and a pathological file could otherwise make the run
/// quadratic.
const MAX_SUGGESTION_SEARCHES: usize = 200;
/// Names listed in "defined: ..." notes.
const MAX_LISTED: usize = 8;

struct Validator<'r, 'a> {
    rep: &'r mut Reporter<'a>,
    cfg: &'r Config,
    facts: &'r Facts,
    searches: usize,
}

pub(crate) fn validate(cfg: &Config, facts: &Facts, rep: &mut Reporter<'_>) {
    let mut v = Validator {
        rep,
        cfg,
        facts,
        searches: 0,
    };
    v.proposals();
    v.policies();
    v.keyrings();
    v.trustpoints();
    v.ikev2_profiles();
    v.transform_sets();
    v.ipsec_profiles();
    v.interfaces();
    v.routes();
}

impl<'r> Validator<'r, '_> {
    fn emit(&mut self, d: Diagnostic) {
        self.rep.emit(d);
    }

    /// Reports `r` when it names nothing in `defined`; `kind` is e.g.
    /// "keyring", `plural` "keyrings". Returns the object when it resolves.
    fn resolve<'c, T: Named>(
        &mut self,
        r: &NameRef,
        defined: &'c NamedMap<T>,
        kind: &str,
        plural: &str,
        span_of: fn(&T) -> Span,
    ) -> Option<&'c T> {
        if let Some(t) = defined.get(&r.name) {
            return Some(t);
        }
        let mut d = self
            .rep
            .error(r.span, format!("undefined {kind} `{}`", r.name));
        let close = if self.searches < MAX_SUGGESTION_SEARCHES {
            self.searches += 1;
            suggest(&r.name, defined.names())
        } else {
            None
        };
        if let Some(s) = close {
            d = d.help(format!("did you mean `{s}`?"));
            if let Some(t) = defined.get(s) {
                d = self
                    .rep
                    .note_at(d, span_of(t), format!("{kind} `{s}` is defined here"));
            }
        } else if defined.is_empty() {
            d = d.note(format!("no {kind} is defined"));
        } else {
            d = d.note(format!(
                "{plural} defined: {}",
                list_names(defined.names(), MAX_LISTED)
            ));
        }
        self.emit(d);
        None
    }

    fn proposals(&mut self) {
        for (i, p) in self.cfg.proposals.iter().enumerate() {
            let failed = |c: &str| self.facts.failed(Target::Proposal(Some(i)), c);
            let mut missing = Vec::new();
            if p.encryption.is_empty() && !failed("encryption") {
                missing.push(("encryption", "encryption aes-gcm-256"));
            }
            if p.prf.is_empty() && !failed("prf") {
                missing.push(("prf", "prf sha-256"));
            }
            if p.dh_groups.is_empty() && !failed("dh-group") {
                missing.push(("dh-group", "dh-group 20"));
            }
            for (what, example) in missing {
                let d = self
                    .rep
                    .error(
                        p.span,
                        format!("ikev2 proposal `{}` has no `{what}`", p.name),
                    )
                    .help(format!("add, for example, `{example}`"));
                self.emit(d);
            }
            let cbc: Vec<&str> = p
                .encryption
                .iter()
                .filter(|e| !e.is_aead())
                .map(|e| e.keyword())
                .collect();
            if !cbc.is_empty() && p.integrity.is_empty() && !failed("integrity") {
                let d = self
                    .rep
                    .error(
                        p.span,
                        format!(
                            "ikev2 proposal `{}` uses CBC encryption ({}) but has no `integrity`",
                            p.name,
                            list_names(cbc.iter().copied(), 5)
                        ),
                    )
                    .help("CBC does not authenticate: add, for example, `integrity sha-256`");
                self.emit(d);
            }
            if cbc.is_empty() && !p.encryption.is_empty() && !p.integrity.is_empty() {
                let d = self
                    .rep
                    .error(
                        p.span,
                        format!(
                            "ikev2 proposal `{}` has only AES-GCM encryption, which takes no `integrity`",
                            p.name
                        ),
                    )
                    .help("GCM authenticates itself: remove the `integrity` line, or add a CBC cipher it applies to");
                self.emit(d);
            }
            let mut sha1 = Vec::new();
            if p.integrity.contains(&IkeIntegrity::Sha1) {
                sha1.push("integrity");
            }
            if p.prf.contains(&Prf::Sha1) {
                sha1.push("prf");
            }
            if !sha1.is_empty() {
                let d = self
                    .rep
                    .warning(
                        p.span,
                        format!(
                            "ikev2 proposal `{}` offers SHA-1 ({})",
                            p.name,
                            sha1.join(" and ")
                        ),
                    )
                    .help("SHA-1 is weak: prefer `sha-256` or stronger");
                self.emit(d);
            }
        }
    }

    fn policies(&mut self) {
        let cfg = self.cfg;
        for (i, p) in cfg.policies.iter().enumerate() {
            for r in &p.proposals {
                self.resolve(
                    r,
                    &cfg.proposals,
                    "ikev2 proposal",
                    "ikev2 proposals",
                    |t| t.span,
                );
            }
            if p.proposals.is_empty() && !self.facts.failed(Target::Policy(Some(i)), "proposal") {
                let d = self
                    .rep
                    .error(
                        p.span,
                        format!("ikev2 policy `{}` lists no `proposal`", p.name),
                    )
                    .help("add, for example, `proposal NAME` naming an `ikev2 proposal`");
                self.emit(d);
            }
        }
    }

    /// This router's own addresses as the configuration states them.
    fn local_addresses(&self) -> BTreeSet<Ipv4Addr> {
        let mut set = BTreeSet::new();
        for p in &self.cfg.policies {
            set.extend(p.match_local.iter().map(|(a, _)| *a));
        }
        for i in &self.cfg.interfaces {
            if let Some((TunnelSource::Address(a), _)) = &i.source {
                set.insert(*a);
            }
        }
        set
    }

    fn keyrings(&mut self) {
        let locals = self.local_addresses();
        let cfg = self.cfg;
        for (ki, k) in cfg.keyrings.iter().enumerate() {
            if k.peers.is_empty() {
                let d = self
                    .rep
                    .error(k.span, format!("keyring `{}` has no `peer`", k.name))
                    .help("add a `peer NAME` block with `address` and `pre-shared-key`");
                self.emit(d);
            }
            for (pi, p) in k.peers.iter().enumerate() {
                let failed = |c: &str| self.facts.failed(Target::Peer(Some((ki, pi))), c);
                match p.address {
                    None if !failed("address") => {
                        let d = self
                            .rep
                            .error(
                                p.span,
                                format!("keyring peer `{}` has no `address`", p.name),
                            )
                            .help("add, for example, `address 198.51.100.2 255.255.255.255`");
                        self.emit(d);
                    }
                    Some((net, span)) if net.prefix_len > 0 => {
                        // A /0 peer is the usual "any peer" entry: it contains
                        // us on purpose.
                        let first = net.network();
                        let last = Ipv4Addr::from(u32::from(first) | !u32::from(net.mask()));
                        if let Some(own) = locals.range(first..=last).next() {
                            let d = self
                                .rep
                                .warning(
                                    span,
                                    format!(
                                        "keyring peer `{}` covers {}, which is this router's own address",
                                        p.name,
                                        net_text(net)
                                    ),
                                )
                                .note(format!(
                                    "{own} is a local address here (an ikev2 policy's `match address local` or a `tunnel source`); the peer's range probably names the wrong side"
                                ));
                            self.emit(d);
                        }
                    }
                    _ => {}
                }
                let has_key = p.pre_shared_key.is_some()
                    || (p.pre_shared_key_local.is_some() && p.pre_shared_key_remote.is_some());
                if !has_key && !failed("pre-shared-key") {
                    let d = self
                        .rep
                        .error(
                            p.span,
                            format!("keyring peer `{}` has no `pre-shared-key`", p.name),
                        )
                        .help("add `pre-shared-key KEY` (or both `pre-shared-key local KEY` and `pre-shared-key remote KEY`)");
                    self.emit(d);
                }
                let short = [
                    &p.pre_shared_key,
                    &p.pre_shared_key_local,
                    &p.pre_shared_key_remote,
                ]
                .into_iter()
                .flatten()
                .any(|k| k.char_len() < 16);
                if short {
                    let span = p.key_span.unwrap_or(p.span);
                    let d = self
                        .rep
                        .warning(
                            span,
                            format!(
                                "the pre-shared key of peer `{}` is shorter than 16 characters",
                                p.name
                            ),
                        )
                        .help("a short key can be guessed offline from one captured exchange: use a long random one");
                    self.emit(d);
                }
            }
        }
    }

    fn trustpoints(&mut self) {
        for t in &self.cfg.trustpoints {
            for (have, what) in [
                (t.ca_certificate.is_some(), "ca-certificate"),
                (t.certificate.is_some(), "certificate"),
                (t.private_key.is_some(), "private-key"),
            ] {
                let failed = self
                    .cfg
                    .trustpoints
                    .position(&t.name)
                    .is_some_and(|i| self.facts.failed(Target::Trustpoint(Some(i)), what));
                if !have && !failed {
                    let d = self
                        .rep
                        .error(
                            t.span,
                            format!("crypto ca trustpoint `{}` has no `{what}`", t.name),
                        )
                        .help(format!("add `{what} /path/to/file.pem`"));
                    self.emit(d);
                }
            }
        }
    }

    fn ikev2_profiles(&mut self) {
        let cfg = self.cfg;
        for (i, p) in cfg.ikev2_profiles.iter().enumerate() {
            let failed = |c: &str| self.facts.failed(Target::Ikev2Profile(Some(i)), c);
            if let Some(r) = &p.keyring {
                self.resolve(r, &cfg.keyrings, "keyring", "keyrings", |t| t.span);
            }
            if let Some(r) = &p.pki_trustpoint {
                self.resolve(
                    r,
                    &cfg.trustpoints,
                    "crypto ca trustpoint",
                    "trustpoints",
                    |t| t.span,
                );
            }
            if p.auth_local.is_none() && !failed("authentication") {
                let d = self
                    .rep
                    .error(
                        p.span,
                        format!("ikev2 profile `{}` has no `authentication local`", p.name),
                    )
                    .help("add `authentication local pre-shared` or `authentication local rsa-signature`");
                self.emit(d);
            }
            if p.uses_psk() && p.keyring.is_none() && !failed("keyring") {
                let d = self
                    .rep
                    .error(
                        p.auth_span.unwrap_or(p.span),
                        format!(
                            "ikev2 profile `{}` authenticates with pre-shared keys but has no `keyring`",
                            p.name
                        ),
                    )
                    .help("add `keyring NAME` naming the keyring that holds the peer's key");
                self.emit(d);
            }
            if p.uses_rsa() && p.pki_trustpoint.is_none() && !failed("pki") {
                let d = self
                    .rep
                    .error(
                        p.auth_span.unwrap_or(p.span),
                        format!(
                            "ikev2 profile `{}` authenticates with rsa-signature but has no `pki trustpoint`",
                            p.name
                        ),
                    )
                    .help("add `pki trustpoint NAME` naming a `crypto ca trustpoint`");
                self.emit(d);
            }
        }
    }

    fn transform_sets(&mut self) {
        for (i, t) in self.cfg.transform_sets.iter().enumerate() {
            if t.transforms.is_empty()
                && !self
                    .facts
                    .failed(Target::TransformSet(Some(i)), "transform")
            {
                let d = self
                    .rep
                    .error(
                        t.span,
                        format!("ipsec transform-set `{}` has no `transform`", t.name),
                    )
                    .help("add, for example, `transform esp-gcm-256` or `transform esp-256-aes esp-hmac-sha-256`");
                self.emit(d);
            }
            if t.transforms
                .iter()
                .any(|x| x.integrity == Some(EspIntegrity::HmacSha1))
            {
                let d = self
                    .rep
                    .warning(
                        t.span,
                        format!("ipsec transform-set `{}` offers esp-hmac-sha-1", t.name),
                    )
                    .help("SHA-1 is weak: prefer `esp-hmac-sha-256` or an AES-GCM cipher");
                self.emit(d);
            }
        }
    }

    fn ipsec_profiles(&mut self) {
        let cfg = self.cfg;
        for (i, p) in cfg.ipsec_profiles.iter().enumerate() {
            let failed = |c: &str| self.facts.failed(Target::IpsecProfile(Some(i)), c);
            match &p.ikev2_profile {
                Some(r) => {
                    self.resolve(
                        r,
                        &cfg.ikev2_profiles,
                        "ikev2 profile",
                        "ikev2 profiles",
                        |t| t.span,
                    );
                }
                None if !failed("set ikev2-profile") && !failed("set ikev2") => {
                    let d = self
                        .rep
                        .error(
                            p.span,
                            format!("ipsec profile `{}` has no `set ikev2-profile`", p.name),
                        )
                        .help("add `set ikev2-profile NAME` naming an `ikev2 profile`");
                    self.emit(d);
                }
                None => {}
            }
            match &p.transform_set {
                Some(r) => {
                    self.resolve(
                        r,
                        &cfg.transform_sets,
                        "ipsec transform-set",
                        "transform-sets",
                        |t| t.span,
                    );
                }
                None if !failed("set transform-set") => {
                    let d = self
                        .rep
                        .error(
                            p.span,
                            format!("ipsec profile `{}` has no `set transform-set`", p.name),
                        )
                        .help("add `set transform-set NAME` naming an `ipsec transform-set`");
                    self.emit(d);
                }
                None => {}
            }
            if p.pfs.is_none() && !failed("set pfs") {
                let d = self
                    .rep
                    .warning(
                        p.span,
                        format!("ipsec profile `{}` has no PFS", p.name),
                    )
                    .help("without PFS, the keys of every CHILD SA derive from the IKE SA's: add `set pfs group20`");
                self.emit(d);
            }
        }
    }

    fn interfaces(&mut self) {
        let cfg = self.cfg;
        for (i, itf) in cfg.interfaces.iter().enumerate() {
            let failed = |c: &str| self.facts.failed(Target::Interface(Some(i)), c);
            let ipsec = itf.protection.as_ref().and_then(|r| {
                self.resolve(
                    r,
                    &cfg.ipsec_profiles,
                    "ipsec profile",
                    "ipsec profiles",
                    |t| t.span,
                )
            });
            if itf.shutdown {
                continue;
            }
            let required = [
                (
                    itf.ipv4_address.is_some(),
                    "ipv4 address",
                    "ipv4 address 192.0.2.1 255.255.255.252",
                ),
                // IOS-XR's default for a tunnel-ip interface is GRE, so a
                // pasted configuration without it would not be an IPsec tunnel.
                (
                    itf.tunnel_mode.is_some(),
                    "tunnel mode",
                    "tunnel mode ipsec ipv4",
                ),
                (itf.source.is_some(), "tunnel source", "tunnel source eth0"),
                (
                    itf.destination.is_some(),
                    "tunnel destination",
                    "tunnel destination 198.51.100.2",
                ),
                (
                    itf.protection.is_some(),
                    "tunnel protection",
                    "tunnel protection ipsec profile NAME",
                ),
            ];
            for (have, what, example) in required {
                if !have && !failed(what) {
                    let d = self
                        .rep
                        .error(itf.span, format!("interface {} has no `{what}`", itf.name))
                        .help(format!(
                            "add, for example, `{example}` (or `shutdown` the interface)"
                        ));
                    self.emit(d);
                }
            }
            self.destination_covered(itf, ipsec);
            self.destination_identity(itf, ipsec);
            self.source_has_policy(itf);
        }
    }

    /// The ikev2 profile an ipsec profile names, when both resolve.
    fn ikev2_profile_of(&self, ipsec: Option<&IpsecProfile>) -> Option<&'r Ikev2Profile> {
        let cfg = self.cfg;
        ipsec
            .and_then(|p| p.ikev2_profile.as_ref())
            .and_then(|r| cfg.ikev2_profiles.get(&r.name))
    }

    /// With pre-shared keys, a destination no keyring peer covers can never
    /// authenticate.
    fn destination_covered(&mut self, itf: &TunnelInterface, ipsec: Option<&IpsecProfile>) {
        let cfg = self.cfg;
        let Some(((dest, dspan), ike)) = itf.destination.zip(self.ikev2_profile_of(ipsec)) else {
            return;
        };
        if !ike.uses_psk() {
            return;
        }
        let Some(kr) = ike.keyring.as_ref().and_then(|r| cfg.keyrings.get(&r.name)) else {
            return;
        };
        if kr.peer_for(dest).is_some() {
            return;
        }
        let mut d = self.rep.error(
            dspan,
            format!(
                "no peer of keyring `{}` covers tunnel destination {dest}: this tunnel can never authenticate",
                kr.name
            ),
        );
        let ranges: Vec<String> = kr
            .peers
            .iter()
            .take(MAX_LISTED)
            .map(|p| match p.address {
                Some((net, _)) => format!("`{}` {}", p.name, net_text(net)),
                None => format!("`{}` (no address)", p.name),
            })
            .collect();
        let more = kr.peers.len().saturating_sub(MAX_LISTED);
        let mut list = ranges.join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        d = d.note(format!(
            "the path is interface {} -> ipsec profile `{}` -> ikev2 profile `{}` -> keyring `{}`",
            itf.name,
            ipsec.map(|p| p.name.as_str()).unwrap_or("?"),
            ike.name,
            kr.name
        ));
        d = self.rep.note_at(
            d,
            kr.span,
            if list.is_empty() {
                format!("keyring `{}` has no peers", kr.name)
            } else {
                format!("keyring `{}` peers: {list}", kr.name)
            },
        );
        d = d.help(format!(
            "fix the destination, or add a peer covering it: `peer NAME` / `address {dest} 255.255.255.255`"
        ));
        self.emit(d);
    }

    /// A peer identifies by its address unless told otherwise (ID_IPV4_ADDR),
    /// so `match identity remote address` ranges that leave out the tunnel
    /// destination reject the very peer the tunnel talks to. Only a warning: a
    /// peer behind a NAT, or one sending an FQDN, legitimately differs.
    fn destination_identity(&mut self, itf: &TunnelInterface, ipsec: Option<&IpsecProfile>) {
        let Some(((dest, dspan), ike)) = itf.destination.zip(self.ikev2_profile_of(ipsec)) else {
            return;
        };
        let ranges: Vec<Ipv4Net> = ike
            .match_identity_remote
            .iter()
            .filter_map(|id| match id {
                RemoteIdentity::Address(net) => Some(*net),
                RemoteIdentity::Fqdn(_) => None,
            })
            .collect();
        let has_fqdn = ranges.len() < ike.match_identity_remote.len();
        if ranges.is_empty() || has_fqdn || ranges.iter().any(|net| net.contains(dest)) {
            return;
        }
        let listed: Vec<String> = ranges
            .iter()
            .take(MAX_LISTED)
            .map(|n| n.to_string())
            .collect();
        let d = self
            .rep
            .warning(
                dspan,
                format!(
                    "tunnel destination {dest} is outside `match identity remote address` of ikev2 profile `{}` ({})",
                    ike.name,
                    listed.join(", ")
                ),
            )
            .note("a peer identifies by its IPv4 address unless configured otherwise, so this peer would fail authentication")
            .help(format!(
                "add `match identity remote address {dest} 255.255.255.255` to ikev2 profile `{}`, unless the peer is behind a NAT or sends another identity",
                ike.name
            ));
        self.emit(d);
    }

    /// A tunnel sourced from an address needs an ikev2 policy for it, or
    /// there are no proposals to offer.
    fn source_has_policy(&mut self, itf: &TunnelInterface) {
        let cfg = self.cfg;
        let span = match &itf.source {
            Some((TunnelSource::Address(a), span)) => {
                if cfg.policy_for_local(*a).is_some() {
                    return;
                }
                let mut d = self.rep.error(
                    *span,
                    format!(
                        "no ikev2 policy matches local address {a}: this tunnel has no proposals to offer"
                    ),
                );
                if cfg.policies.is_empty() {
                    d = d.note("no ikev2 policy is defined");
                } else {
                    let listed: Vec<String> = cfg
                        .policies
                        .iter()
                        .take(MAX_LISTED)
                        .map(|p| {
                            let locals: Vec<String> =
                                p.match_local.iter().map(|(a, _)| a.to_string()).collect();
                            format!("`{}` (match address local {})", p.name, locals.join(", "))
                        })
                        .collect();
                    d = d.note(format!("ikev2 policies: {}", listed.join(", ")));
                }
                d = d.help(format!(
                    "add `match address local {a}` to a policy, or a policy without `match address local`"
                ));
                self.emit(d);
                return;
            }
            Some((_, span)) => *span,
            None => itf.span,
        };
        if cfg.policies.is_empty() {
            let d = self
                .rep
                .error(
                    span,
                    format!(
                        "no ikev2 policy is defined: interface {} has no proposals to offer",
                        itf.name
                    ),
                )
                .help("add an `ikev2 policy` with a `proposal`");
            self.emit(d);
        }
    }

    fn routes(&mut self) {
        let cfg = self.cfg;
        for r in &cfg.static_routes {
            self.resolve(
                &r.interface,
                &cfg.interfaces,
                "interface",
                "interfaces",
                |t| t.span,
            );
        }
    }
}

/// `198.52.100.0/24 (198.52.100.21 255.255.255.0)`: the range and how it was
/// written.
fn net_text(net: Ipv4Net) -> String {
    format!(
        "{}/{} ({} {})",
        net.network(),
        net.prefix_len,
        net.addr,
        net.mask()
    )
}
