//! The resolved view the daemon works from: per tunnel interface, every
//! object it uses, references already followed.
//!
//! Invariant: only meaningful on a configuration without errors (where every
//! reference resolves); on another, tunnels whose references do not resolve
//! are left out rather than guessed.

use std::collections::HashMap;
use std::fmt;

use crate::model::*;

/// One `interface tunnel-ipN` that is not shut down, with what it uses.
#[derive(Clone, Debug)]
pub struct TunnelView<'c> {
    pub interface: &'c TunnelInterface,
    pub ipsec_profile: &'c IpsecProfile,
    pub transform_set: &'c TransformSet,
    pub ikev2_profile: &'c Ikev2Profile,
    /// Present when the IKEv2 profile names one (pre-shared keys).
    pub keyring: Option<&'c Keyring>,
    /// Present when the IKEv2 profile names one (rsa-signature).
    pub trustpoint: Option<&'c Trustpoint>,
    /// The policy for the tunnel's local address. When the source is an
    /// interface name this is the policy without `match address local` (or
    /// the only policy); the daemon should call [`Config::policy_for_local`]
    /// once it knows the interface's address.
    pub policy: Option<&'c Ikev2Policy>,
    /// The policy's proposals, in preference order.
    pub proposals: Vec<&'c Ikev2Proposal>,
    /// Static routes into this interface.
    pub routes: Vec<&'c StaticRoute>,
}

impl<'c> TunnelView<'c> {
    /// The keyring peer whose range covers the tunnel destination.
    pub fn peer(&self) -> Option<&'c KeyringPeer> {
        let (dest, _) = self.interface.destination?;
        self.keyring?.peer_for(dest)
    }
}

impl Config {
    /// Every tunnel interface that is not shut down, resolved. See
    /// [`TunnelView`].
    pub fn tunnels(&self) -> Vec<TunnelView<'_>> {
        let mut out = Vec::new();
        let mut routes_by_interface: HashMap<&str, Vec<&StaticRoute>> = HashMap::new();
        for r in &self.static_routes {
            routes_by_interface
                .entry(r.interface.name.as_str())
                .or_default()
                .push(r);
        }
        for itf in &self.interfaces {
            if itf.shutdown {
                continue;
            }
            let Some(ipsec) = itf
                .protection
                .as_ref()
                .and_then(|r| self.ipsec_profiles.get(&r.name))
            else {
                continue;
            };
            let Some(ts) = ipsec
                .transform_set
                .as_ref()
                .and_then(|r| self.transform_sets.get(&r.name))
            else {
                continue;
            };
            let Some(ike) = ipsec
                .ikev2_profile
                .as_ref()
                .and_then(|r| self.ikev2_profiles.get(&r.name))
            else {
                continue;
            };
            let keyring = ike
                .keyring
                .as_ref()
                .and_then(|r| self.keyrings.get(&r.name));
            let trustpoint = ike
                .pki_trustpoint
                .as_ref()
                .and_then(|r| self.trustpoints.get(&r.name));
            let policy = match &itf.source {
                Some((TunnelSource::Address(a), _)) => self.policy_for_local(*a),
                _ => self
                    .policies
                    .iter()
                    .find(|p| p.match_local.is_empty())
                    .or_else(|| {
                        (self.policies.len() == 1)
                            .then(|| self.policies.iter().next())
                            .flatten()
                    }),
            };
            let proposals = policy
                .map(|p| {
                    p.proposals
                        .iter()
                        .filter_map(|r| self.proposals.get(&r.name))
                        .collect()
                })
                .unwrap_or_default();
            let routes = routes_by_interface
                .remove(itf.name.as_str())
                .unwrap_or_default();
            out.push(TunnelView {
                interface: itf,
                ipsec_profile: ipsec,
                transform_set: ts,
                ikev2_profile: ike,
                keyring,
                trustpoint,
                policy,
                proposals,
                routes,
            });
        }
        out
    }

    /// One line per tunnel, for `xrsec config check`.
    pub fn summary_lines(&self) -> Vec<String> {
        self.tunnels().iter().map(|t| t.to_string()).collect()
    }
}

fn list<T: fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn auth_name(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::PreShared => "PSK",
        AuthMethod::RsaSignature => "RSA",
    }
}

impl fmt::Display for TunnelView<'_> {
    /// `tunnel-ip1 192.0.2.1/30 -> 10.99.0.2 (source 10.99.0.1): IKE
    /// aes-cbc-256/sha-256/prf sha-256/group 20, PSK; ESP
    /// esp-256-aes/esp-hmac-sha-256, PFS group 19, SA lifetime 600 s`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.interface;
        write!(f, "{}", i.name)?;
        if let Some(a) = i.ipv4_address {
            write!(f, " {a}")?;
        }
        if let Some((d, _)) = i.destination {
            write!(f, " -> {d}")?;
        }
        if let Some((s, _)) = &i.source {
            write!(f, " (source {s})")?;
        }
        f.write_str(": IKE ")?;
        let props: Vec<String> = self
            .proposals
            .iter()
            .map(|p| {
                let mut s = list(&p.encryption);
                if !p.integrity.is_empty() {
                    s.push('/');
                    s.push_str(&list(&p.integrity));
                }
                let groups: Vec<u16> = p.dh_groups.iter().map(|g| g.number()).collect();
                format!("{s}/prf {}/group {}", list(&p.prf), list(&groups))
            })
            .collect();
        if props.is_empty() {
            f.write_str("(no proposals)")?;
        } else {
            f.write_str(&props.join(" | "))?;
        }
        let ike = self.ikev2_profile;
        match (ike.auth_local, ike.remote_auth()) {
            (Some(l), Some(r)) if l == r => write!(f, ", {}", auth_name(l))?,
            (Some(l), Some(r)) => write!(f, ", {}/{}", auth_name(l), auth_name(r))?,
            _ => {}
        }
        let esp: Vec<String> = self
            .transform_set
            .transforms
            .iter()
            .map(|t| t.to_string())
            .collect();
        write!(f, "; ESP {}", esp.join(" | "))?;
        match self.ipsec_profile.pfs {
            Some(g) => write!(f, ", PFS group {}", g.dh_group().number())?,
            None => f.write_str(", no PFS")?,
        }
        write!(
            f,
            ", SA lifetime {} s",
            self.ipsec_profile.sa_lifetime().as_secs()
        )
    }
}
