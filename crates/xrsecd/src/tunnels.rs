//! The tunnels of the configuration as the daemon runs them: where each
//! stands (negotiating, up, down and why, when it retries) and which Child
//! SAs it has installed in the dataplane.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use xrsec_config::{Config, TunnelSource};
use xrsec_crypto::EspSuite;
use xrsec_ike::{IkeSaId, TunnelConfig};

/// Longest wait between two initiation attempts of a failing tunnel.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One Child SA pair installed in the dataplane.
#[derive(Clone, Debug)]
pub(crate) struct Installed {
    /// `SA id` of `show ipsec sa`.
    pub sa_id: u32,
    pub ike_sa: IkeSaId,
    pub spi_in: u32,
    pub spi_out: u32,
    pub suite: EspSuite,
    pub installed_at: Instant,
    pub lifetime: Duration,
    pub udp_encap: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// One `interface tunnel-ipN`.
#[derive(Debug)]
pub(crate) struct Tunnel {
    pub name: String,
    /// The negotiator's config for it (`None` when shut down).
    pub ike: Option<TunnelConfig>,
    pub local: Option<Ipv4Addr>,
    pub remote: Option<Ipv4Addr>,
    pub address: Option<(Ipv4Addr, u8)>,
    pub mtu: Option<u16>,
    /// `router static` prefixes routed into it.
    pub routes: Vec<(Ipv4Addr, u8)>,
    /// The dataplane's handle once the TUN exists.
    pub esp: Option<xrsec_esp::TunnelId>,
    pub ifindex: u32,
    pub admin_down: bool,
    /// Failed attempts in a row (reset when a Child SA comes up).
    pub failures: u32,
    pub last_error: Option<(String, Instant)>,
    /// The last NO_PROPOSAL_CHOSEN seen as responder (it names both sides'
    /// proposals; as initiator we only learn ours was refused).
    pub proposal_mismatch: Option<(String, Instant)>,
    pub retry_at: Option<Instant>,
    /// Installed Child SAs, oldest first; the last one carries outbound
    /// traffic.
    pub children: Vec<Installed>,
    /// Everything the tunnel's behaviour depends on, secrets included, to
    /// tell on reload whether it changed (never printed).
    pub fingerprint: String,
}

impl Tunnel {
    pub(crate) fn current(&self) -> Option<&Installed> {
        self.children.last()
    }

    /// Records a failure and schedules the next attempt: 2, 4, 8 ... 60 s.
    pub(crate) fn failed(&mut self, now: Instant, reason: String) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some((reason, now));
        let exp = self.failures.saturating_sub(1).min(6);
        let backoff = Duration::from_secs(2u64 << exp).min(MAX_BACKOFF);
        self.retry_at = Some(now + backoff);
    }
}

/// Why a tunnel cannot run, found at start.
#[derive(Debug)]
pub(crate) struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tunnels of `config`, in configuration order: one per interface
/// (shut-down ones too, for status).
pub(crate) fn from_config(config: &Config) -> Result<Vec<Tunnel>, SetupError> {
    let views = config.tunnels();
    let mut out = Vec::new();
    for itf in config.interfaces.iter() {
        let address = itf.ipv4_address.map(|n| (n.addr, n.prefix_len));
        let remote = itf.destination.map(|(a, _)| a);
        let view = views.iter().find(|v| v.interface.name == itf.name);
        let mut t = Tunnel {
            name: itf.name.clone(),
            ike: None,
            local: None,
            remote,
            address,
            mtu: itf.mtu,
            routes: Vec::new(),
            esp: None,
            ifindex: 0,
            admin_down: itf.shutdown,
            failures: 0,
            last_error: None,
            proposal_mismatch: None,
            retry_at: None,
            children: Vec::new(),
            fingerprint: String::new(),
        };
        let Some(view) = view else {
            // Shut down (the validator guarantees the references of the
            // others resolve).
            out.push(t);
            continue;
        };
        let local = match &itf.source {
            Some((TunnelSource::Address(a), _)) => *a,
            Some((TunnelSource::Interface(name), _)) => xrsec_esp::sys::interface_ipv4(name)
                .map_err(|e| {
                    SetupError(format!(
                        "{}: tunnel source {name}: cannot read its IPv4 address: {e}",
                        itf.name
                    ))
                })?,
            _ => {
                return Err(SetupError(format!("{}: no usable tunnel source", itf.name)));
            }
        };
        let pki = if view.ikev2_profile.uses_rsa() {
            match view.trustpoint {
                Some(tp) => Some(load_trustpoint(tp).map_err(|e| {
                    SetupError(format!("{}: pki trustpoint {}: {e}", itf.name, tp.name))
                })?),
                None => None,
            }
        } else {
            None
        };
        let ike = xrsec_ike::from_tunnel_with_pki(view, local, pki.as_ref())
            .map_err(|e| SetupError(format!("{}: {e}", itf.name)))?;
        t.local = Some(local);
        t.routes = view
            .routes
            .iter()
            .map(|r| (r.prefix.addr, r.prefix.prefix_len))
            .collect();
        t.fingerprint = fingerprint(&ike, &t);
        t.ike = Some(ike);
        out.push(t);
    }
    Ok(out)
}

/// `ikev2 fragmentation` as the log says it.
pub(crate) fn fragmentation_text(f: &xrsec_config::IkeFragmentation) -> String {
    if f.enabled() {
        format!(
            "IKE fragmentation (RFC 7383): offered, messages cut into IP datagrams of at most {} bytes",
            f.mtu()
        )
    } else {
        "IKE fragmentation (RFC 7383): off (`no ikev2 fragmentation`): large messages go whole"
            .to_string()
    }
}

/// Reads a `crypto ca trustpoint`'s files: the CA certificate peers must
/// chain to, our certificate (and intermediates), our private key (refused
/// when others than its owner may read it).
fn load_trustpoint(tp: &xrsec_config::Trustpoint) -> Result<xrsec_ike::LoadedTrustpoint, String> {
    let path = |what: &str, p: &Option<String>| {
        p.clone()
            .map(std::path::PathBuf::from)
            .ok_or_else(|| format!("no `{what}` configured"))
    };
    let ca_path = path("ca-certificate", &tp.ca_certificate)?;
    let ca = xrsec_pki::load_certificates(&ca_path)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: no certificate in the file", ca_path.display()))?;
    let ca = xrsec_pki::TrustAnchor::new(ca).map_err(|e| format!("{}: {e}", ca_path.display()))?;
    let chain = xrsec_pki::load_certificates(&path("certificate", &tp.certificate)?)
        .map_err(|e| e.to_string())?;
    let key = xrsec_pki::load_private_key(&path("private-key", &tp.private_key)?)
        .map_err(|e| e.to_string())?;
    if let Some(cert) = chain.first() {
        let cert_key = cert
            .public_key()
            .map_err(|e| format!("certificate `{}`: {e}", cert.subject()))?;
        if *cert_key != key.public_key() {
            return Err(format!(
                "the private key does not belong to the certificate `{}`",
                cert.subject()
            ));
        }
    }
    Ok(xrsec_ike::LoadedTrustpoint {
        ca: std::sync::Arc::new(ca),
        chain,
        key: std::sync::Arc::new(key),
    })
}

/// What decides a tunnel's behaviour, in one string (keys included as
/// bytes: it is compared, never shown).
fn fingerprint(ike: &TunnelConfig, t: &Tunnel) -> String {
    // The certificates' subjects are in `ike`'s Debug; a renewed certificate
    // or key under the same name is picked up by a restart, not a reload.
    format!(
        "{ike:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        ike.psk_local.as_bytes(),
        ike.psk_remote.as_bytes(),
        ike.ike_lifetime,
        ike.pfs,
        ike.sa_lifetime,
        ike.sa_lifetime_kilobytes,
        ike.replay_window,
        t.address,
        t.mtu,
        t.routes
    )
}
