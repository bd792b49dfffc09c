//! Rendering the model back to canonical running-config text.
//!
//! Invariant: the output parses back to the same model (a property test
//! checks it): blocks indented one space per level, each closed by `exit`
//! then `!` (which the parser reads as one closer), objects in a fixed order
//! of kinds and in definition order within a kind. Keys print as
//! `<redacted>` unless the caller asks for them with [`Secrets::Shown`].

use std::fmt::Write;

use crate::model::*;

/// Whether rendering prints pre-shared keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Secrets {
    /// `pre-shared-key <redacted>` (the parser refuses it back, on purpose).
    Redacted,
    /// The real keys: for writing a configuration file, never for logs.
    Shown,
}

fn join<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn close(out: &mut String, indent: &str) {
    let _ = writeln!(out, "{indent}exit");
    let _ = writeln!(out, "{indent}!");
}

impl Config {
    /// The configuration as running-config text.
    pub fn to_running_config(&self, secrets: Secrets) -> String {
        let mut o = String::new();
        // Global commands first, as IOS prints them; the default (on, 1280
        // bytes) prints nothing.
        let f = &self.ikev2_fragmentation;
        if f.disabled {
            let _ = writeln!(o, "no ikev2 fragmentation");
            let _ = writeln!(o, "!");
        } else if let Some(mtu) = f.mtu {
            let _ = writeln!(o, "ikev2 fragmentation mtu {mtu}");
            let _ = writeln!(o, "!");
        }
        for p in &self.proposals {
            let _ = writeln!(o, "ikev2 proposal {}", p.name);
            if !p.encryption.is_empty() {
                let _ = writeln!(o, " encryption {}", join(&p.encryption));
            }
            if !p.integrity.is_empty() {
                let _ = writeln!(o, " integrity {}", join(&p.integrity));
            }
            if !p.prf.is_empty() {
                let _ = writeln!(o, " prf {}", join(&p.prf));
            }
            if !p.dh_groups.is_empty() {
                let _ = writeln!(o, " dh-group {}", join(&p.dh_groups));
            }
            close(&mut o, "");
        }
        for p in &self.policies {
            let _ = writeln!(o, "ikev2 policy {}", p.name);
            for (a, _) in &p.match_local {
                let _ = writeln!(o, " match address local {a}");
            }
            if p.match_fvrf_any {
                let _ = writeln!(o, " match fvrf any");
            }
            for r in &p.proposals {
                let _ = writeln!(o, " proposal {}", r.name);
            }
            close(&mut o, "");
        }
        for k in &self.keyrings {
            let _ = writeln!(o, "keyring {}", k.name);
            for p in &k.peers {
                let _ = writeln!(o, " peer {}", p.name);
                if let Some((net, _)) = p.address {
                    let _ = writeln!(o, "  address {} {}", net.addr, net.mask());
                }
                let key = |k: &PreSharedKey| match secrets {
                    Secrets::Shown => k.expose().to_string(),
                    Secrets::Redacted => "<redacted>".to_string(),
                };
                if let Some(k) = &p.pre_shared_key {
                    let _ = writeln!(o, "  pre-shared-key {}", key(k));
                }
                if let Some(k) = &p.pre_shared_key_local {
                    let _ = writeln!(o, "  pre-shared-key local {}", key(k));
                }
                if let Some(k) = &p.pre_shared_key_remote {
                    let _ = writeln!(o, "  pre-shared-key remote {}", key(k));
                }
                close(&mut o, " ");
            }
            close(&mut o, "");
        }
        for t in &self.trustpoints {
            let _ = writeln!(o, "crypto ca trustpoint {}", t.name);
            if let Some(p) = &t.ca_certificate {
                let _ = writeln!(o, " ca-certificate {p}");
            }
            if let Some(p) = &t.certificate {
                let _ = writeln!(o, " certificate {p}");
            }
            if let Some(p) = &t.private_key {
                let _ = writeln!(o, " private-key {p}");
            }
            close(&mut o, "");
        }
        for p in &self.ikev2_profiles {
            let _ = writeln!(o, "ikev2 profile {}", p.name);
            if let Some(r) = &p.keyring {
                let _ = writeln!(o, " keyring {}", r.name);
            }
            if let Some(l) = p.lifetime_secs {
                let _ = writeln!(o, " lifetime {l}");
            }
            if let Some(m) = p.auth_local {
                let _ = writeln!(o, " authentication local {m}");
            }
            if let Some(m) = p.auth_remote {
                let _ = writeln!(o, " authentication remote {m}");
            }
            for id in &p.match_identity_remote {
                match id {
                    RemoteIdentity::Address(net) => {
                        let _ = writeln!(
                            o,
                            " match identity remote address {} {}",
                            net.addr,
                            net.mask()
                        );
                    }
                    RemoteIdentity::Fqdn(n) => {
                        let _ = writeln!(o, " match identity remote fqdn {n}");
                    }
                }
            }
            if let Some(r) = &p.pki_trustpoint {
                let _ = writeln!(o, " pki trustpoint {}", r.name);
            }
            if let Some(d) = p.dpd {
                let _ = writeln!(o, " dpd {} {}", d.interval_secs, d.retries);
            }
            close(&mut o, "");
        }
        for t in &self.transform_sets {
            let _ = writeln!(o, "ipsec transform-set {}", t.name);
            if let Some(m) = t.mode {
                let _ = writeln!(o, " mode {m}");
            }
            for tr in &t.transforms {
                match tr.integrity {
                    Some(i) => {
                        let _ = writeln!(o, " transform {} {i}", tr.cipher);
                    }
                    None => {
                        let _ = writeln!(o, " transform {}", tr.cipher);
                    }
                }
            }
            close(&mut o, "");
        }
        for p in &self.ipsec_profiles {
            let _ = writeln!(o, "ipsec profile {}", p.name);
            if let Some(r) = &p.ikev2_profile {
                let _ = writeln!(o, " set ikev2-profile {}", r.name);
            }
            if let Some(r) = &p.transform_set {
                let _ = writeln!(o, " set transform-set {}", r.name);
            }
            if let Some(g) = p.pfs {
                let _ = writeln!(o, " set pfs {g}");
            }
            if let Some(s) = p.sa_lifetime_secs {
                let _ = writeln!(o, " set security-association lifetime seconds {s}");
            }
            if let Some(k) = p.sa_lifetime_kilobytes {
                let _ = writeln!(o, " set security-association lifetime kilobytes {k}");
            }
            if let Some(w) = p.replay_window {
                let _ = writeln!(o, " set security-association replay window-size {w}");
            }
            close(&mut o, "");
        }
        for i in &self.interfaces {
            let _ = writeln!(o, "interface {}", i.name);
            if let Some(d) = &i.description {
                let _ = writeln!(o, " description {d}");
            }
            if let Some(a) = i.ipv4_address {
                let _ = writeln!(o, " ipv4 address {} {}", a.addr, a.mask());
            }
            if let Some(m) = i.mtu {
                let _ = writeln!(o, " mtu {m}");
            }
            if let Some(m) = i.tunnel_mode {
                let _ = writeln!(o, " tunnel mode {m}");
            }
            if let Some((s, _)) = &i.source {
                let _ = writeln!(o, " tunnel source {s}");
            }
            if let Some((d, _)) = &i.destination {
                let _ = writeln!(o, " tunnel destination {d}");
            }
            if let Some(r) = &i.protection {
                let _ = writeln!(o, " tunnel protection ipsec profile {}", r.name);
            }
            if i.shutdown {
                let _ = writeln!(o, " shutdown");
            }
            close(&mut o, "");
        }
        if !self.static_routes.is_empty() {
            let _ = writeln!(o, "router static");
            let _ = writeln!(o, " address-family ipv4 unicast");
            for r in &self.static_routes {
                let _ = writeln!(o, "  {} {}", r.prefix, r.interface.name);
            }
            close(&mut o, " ");
            close(&mut o, "");
        }
        o
    }
}
