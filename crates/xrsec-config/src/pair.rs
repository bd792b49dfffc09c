//! Two routers' configurations checked against each other, as a network
//! engineer does before a change window: `xrsec config check r1.conf r2.conf`.
//!
//! Each file can be valid on its own and still never bring a tunnel up with
//! the other: different pre-shared keys, no proposal or transform in common,
//! one side with PFS and the other without. Tunnels pair up when each one's
//! destination is a local address of the other (its `tunnel source` address,
//! or a policy's `match address local` when the source is an interface name).
//!
//! Invariants: keys are compared, never printed; every finding names both
//! sides, so the message reads without the files at hand.

use std::net::Ipv4Addr;

use crate::diag::Severity;
use crate::model::*;
use crate::view::TunnelView;

/// One finding about a pair of tunnels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerFinding {
    pub severity: Severity,
    pub message: String,
}

/// Two tunnels, one per configuration, that point at each other.
#[derive(Clone, Debug)]
pub struct TunnelPairing {
    /// The tunnel interface of the first configuration.
    pub left: String,
    /// The tunnel interface of the second configuration.
    pub right: String,
    /// What the two agree on, e.g. `IKE aes-cbc-256/sha-256/prf sha-256/group
    /// 20, ESP esp-256-aes/esp-hmac-sha-256`, when they agree.
    pub agreed: Option<String>,
    pub findings: Vec<PeerFinding>,
}

impl TunnelPairing {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Pairs the tunnels of `left` and `right` (named `left_name` and
/// `right_name` in messages) and checks each pair. Both configurations must be
/// free of errors (their views are resolved).
pub fn compare_peers(
    left_name: &str,
    left: &Config,
    right_name: &str,
    right: &Config,
) -> Vec<TunnelPairing> {
    let (lt, rt) = (left.tunnels(), right.tunnels());
    let mut pairings = Vec::new();
    for l in &lt {
        for r in &rt {
            let (Some((ldest, _)), Some((rdest, _))) =
                (l.interface.destination, r.interface.destination)
            else {
                continue;
            };
            if local_addresses(right, r).contains(&ldest)
                && local_addresses(left, l).contains(&rdest)
            {
                let sides = Sides {
                    left_name,
                    right_name,
                    l,
                    r,
                };
                pairings.push(sides.check());
            }
        }
    }
    pairings
}

/// The addresses a tunnel's IKE SA can use on this router.
fn local_addresses(cfg: &Config, t: &TunnelView<'_>) -> Vec<Ipv4Addr> {
    match &t.interface.source {
        Some((TunnelSource::Address(a), _)) => vec![*a],
        _ => cfg
            .policies
            .iter()
            .flat_map(|p| p.match_local.iter().map(|(a, _)| *a))
            .collect(),
    }
}

struct Sides<'a, 'c> {
    left_name: &'a str,
    right_name: &'a str,
    l: &'a TunnelView<'c>,
    r: &'a TunnelView<'c>,
}

impl Sides<'_, '_> {
    fn check(&self) -> TunnelPairing {
        let mut findings = Vec::new();
        self.authentication(&mut findings);
        let ike = self.common_ike(&mut findings);
        let esp = self.common_esp(&mut findings);
        self.pfs(&mut findings);
        self.tunnel_addresses(&mut findings);
        let agreed = match (ike, esp) {
            (Some(ike), Some(esp)) => Some(format!("IKE {ike}, ESP {esp}")),
            _ => None,
        };
        TunnelPairing {
            left: self.l.interface.name.clone(),
            right: self.r.interface.name.clone(),
            agreed,
            findings,
        }
    }

    fn error(findings: &mut Vec<PeerFinding>, message: String) {
        findings.push(PeerFinding {
            severity: Severity::Error,
            message,
        });
    }

    fn warning(findings: &mut Vec<PeerFinding>, message: String) {
        findings.push(PeerFinding {
            severity: Severity::Warning,
            message,
        });
    }

    /// Each side signs with a method and a key the other verifies with.
    fn authentication(&self, findings: &mut Vec<PeerFinding>) {
        let directions = [
            (self.left_name, self.l, self.right_name, self.r),
            (self.right_name, self.r, self.left_name, self.l),
        ];
        for (signer_name, signer, verifier_name, verifier) in directions {
            let signs = signer.ikev2_profile.auth_local;
            let expects = verifier.ikev2_profile.remote_auth();
            if signs != expects {
                Self::error(
                    findings,
                    format!(
                        "{signer_name} authenticates with {} but {verifier_name} expects {}",
                        signs.map_or("nothing", AuthMethod::keyword),
                        expects.map_or("nothing", AuthMethod::keyword),
                    ),
                );
                continue;
            }
            if signs != Some(AuthMethod::PreShared) {
                continue;
            }
            let (Some(sp), Some(vp)) = (signer.peer(), verifier.peer()) else {
                continue;
            };
            let same = match (sp.local_key(), vp.remote_key()) {
                (Some(a), Some(b)) => a.expose() == b.expose(),
                _ => false,
            };
            if !same {
                Self::error(
                    findings,
                    format!(
                        "the pre-shared key {signer_name} signs with (keyring `{}` peer `{}`) differs from the one {verifier_name} expects (keyring `{}` peer `{}`): AUTHENTICATION_FAILED",
                        keyring_name(signer),
                        sp.name,
                        keyring_name(verifier),
                        vp.name
                    ),
                );
            }
        }
    }

    /// The first IKE suite, in the left side's preference order, that both
    /// sides' policies contain within one proposal each.
    fn common_ike(&self, findings: &mut Vec<PeerFinding>) -> Option<String> {
        for lp in &self.l.proposals {
            for rp in &self.r.proposals {
                if let Some(suite) = common_in(lp, rp) {
                    return Some(suite);
                }
            }
        }
        Self::error(
            findings,
            format!(
                "no IKE proposal in common: {} offers {}; {} offers {}",
                self.left_name,
                proposals_text(self.l),
                self.right_name,
                proposals_text(self.r)
            ),
        );
        None
    }

    fn common_esp(&self, findings: &mut Vec<PeerFinding>) -> Option<String> {
        let left = &self.l.transform_set.transforms;
        let right = &self.r.transform_set.transforms;
        if let Some(t) = left.iter().find(|t| right.contains(t)) {
            return Some(t.to_string());
        }
        let list = |ts: &[EspTransform]| {
            ts.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Self::error(
            findings,
            format!(
                "no ESP transform in common: {} has {} (transform-set `{}`); {} has {} (transform-set `{}`)",
                self.left_name,
                list(left),
                self.l.transform_set.name,
                self.right_name,
                list(right),
                self.r.transform_set.name
            ),
        );
        None
    }

    /// The first Child SA carries no KE, so a PFS mismatch shows up only at
    /// the first rekey: the worst time to learn of it.
    fn pfs(&self, findings: &mut Vec<PeerFinding>) {
        let (lp, rp) = (self.l.ipsec_profile.pfs, self.r.ipsec_profile.pfs);
        if lp != rp {
            let name = |p: Option<PfsGroup>| p.map_or("no PFS", PfsGroup::keyword);
            Self::error(
                findings,
                format!(
                    "PFS differs: {} sets {}, {} sets {}; the tunnel comes up but its first Child SA rekey fails",
                    self.left_name,
                    name(lp),
                    self.right_name,
                    name(rp)
                ),
            );
        }
    }

    fn tunnel_addresses(&self, findings: &mut Vec<PeerFinding>) {
        let (Some(la), Some(ra)) = (self.l.interface.ipv4_address, self.r.interface.ipv4_address)
        else {
            return;
        };
        if la.addr == ra.addr {
            Self::error(
                findings,
                format!(
                    "both ends of the tunnel have the address {}: {} {} and {} {}",
                    la.addr,
                    self.left_name,
                    self.l.interface.name,
                    self.right_name,
                    self.r.interface.name
                ),
            );
        } else if !la.contains(ra.addr) || !ra.contains(la.addr) {
            Self::warning(
                findings,
                format!(
                    "the tunnel addresses {la} ({}) and {ra} ({}) are not in one subnet: each end needs a route to the other's",
                    self.left_name, self.right_name
                ),
            );
        }
    }
}

fn keyring_name<'c>(t: &TunnelView<'c>) -> &'c str {
    t.keyring.map_or("?", |k| k.name.as_str())
}

/// The first value of `ours` that `theirs` also has.
fn first_common<T: Copy + PartialEq>(ours: &[T], theirs: &[T]) -> Option<T> {
    ours.iter().find(|v| theirs.contains(v)).copied()
}

fn common_in(a: &Ikev2Proposal, b: &Ikev2Proposal) -> Option<String> {
    let encr = a.encryption.iter().find(|e| {
        b.encryption.contains(e)
            && (e.is_aead() || first_common(&a.integrity, &b.integrity).is_some())
    })?;
    let prf: Prf = first_common(&a.prf, &b.prf)?;
    let group: DhGroup = first_common(&a.dh_groups, &b.dh_groups)?;
    let integ = if encr.is_aead() {
        String::new()
    } else {
        let i: IkeIntegrity = first_common(&a.integrity, &b.integrity)?;
        format!("/{}", i.keyword())
    };
    Some(format!(
        "{}{integ}/prf {}/group {}",
        encr.keyword(),
        prf.keyword(),
        group.number()
    ))
}

fn proposals_text(t: &TunnelView<'_>) -> String {
    let text: Vec<String> = t
        .proposals
        .iter()
        .map(|p| {
            let words = |v: Vec<&str>| v.join(" ");
            format!(
                "`{}` ({}; {}; prf {}; group {})",
                p.name,
                words(p.encryption.iter().map(|e| e.keyword()).collect()),
                if p.integrity.is_empty() {
                    "no integrity".to_string()
                } else {
                    words(p.integrity.iter().map(|i| i.keyword()).collect())
                },
                words(p.prf.iter().map(|i| i.keyword()).collect()),
                p.dh_groups
                    .iter()
                    .map(|g| g.number().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })
        .collect();
    if text.is_empty() {
        "no proposal".to_string()
    } else {
        text.join(", ")
    }
}
