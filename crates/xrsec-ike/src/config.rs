//! The negotiator's own per-tunnel configuration, in IANA terms, and its
//! mapping from the resolved IOS-XR view ([`xrsec_config::TunnelView`]).
//!
//! Invariants: a [`TunnelConfig`] holds only transforms xrsec-crypto
//! implements, at least one IKE proposal and one ESP suite (checked by
//! [`TunnelConfig::validate`], which [`from_tunnel`] runs), and its pre-shared
//! keys live in [`SecretBytes`] (zeroized on drop, never printed).

use core::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use xrsec_config as cfg;
use xrsec_crypto::{DhGroup, Encr, EspSuite, IntegId, PrfId, SecretBytes};

/// Which tunnel an SA belongs to: the number N of `interface tunnel-ipN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub u32);

impl fmt::Display for TunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tunnel-ip{}", self.0)
    }
}

/// One `ikev2 proposal`: every combination of its lists is acceptable, each
/// list in preference order (first preferred).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeProposalConfig {
    /// Encryption transforms. AEAD and CBC may be mixed: the offer then
    /// carries two proposals on the wire (RFC 5282 8).
    pub encr: Vec<Encr>,
    /// Integrity transforms, used with the non-AEAD ciphers only.
    pub integ: Vec<IntegId>,
    /// Pseudo-random functions.
    pub prf: Vec<PrfId>,
    /// Diffie-Hellman groups; the first is the one our KE payload uses.
    pub dh: Vec<DhGroup>,
}

/// An IKE identity (RFC 7296 3.5) we send.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_FQDN.
    Fqdn(String),
    /// Any other ID type, as received from a peer (we never send one; no
    /// `match identity remote` accepts one).
    Other {
        /// The ID Type number.
        id_type: u8,
        /// The identification data.
        data: Vec<u8>,
    },
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipv4(a) => write!(f, "address {a}"),
            Self::Fqdn(n) => write!(f, "fqdn {n}"),
            Self::Other { id_type, data } => {
                write!(f, "ID type {id_type} 0x")?;
                data.iter().take(32).try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// An IPv4 prefix: an address range of a keyring peer or an identity match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    /// Any address in the range (host bits are ignored).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32 (larger values are treated as 32).
    pub prefix_len: u8,
}

impl Ipv4Prefix {
    /// A single address (/32).
    pub fn host(addr: Ipv4Addr) -> Self {
        Self {
            addr,
            prefix_len: 32,
        }
    }

    /// Every IPv4 address (/0).
    pub fn any() -> Self {
        Self {
            addr: Ipv4Addr::UNSPECIFIED,
            prefix_len: 0,
        }
    }

    fn mask(self) -> u32 {
        match self.prefix_len {
            0 => 0,
            l if l >= 32 => u32::MAX,
            l => u32::MAX << (32 - l),
        }
    }

    /// Whether `ip` is in the range.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        let m = self.mask();
        u32::from(ip) & m == u32::from(self.addr) & m
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// One `match identity remote ...` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityMatch {
    /// `match identity remote address A.B.C.D MASK`: an ID_IPV4_ADDR in range.
    Address(Ipv4Prefix),
    /// `match identity remote fqdn NAME`: an ID_FQDN equal to it (ASCII
    /// case-insensitively, as DNS names compare).
    Fqdn(String),
}

impl IdentityMatch {
    /// Whether a received identity satisfies this entry.
    pub fn matches(&self, id: &Identity) -> bool {
        match (self, id) {
            (Self::Address(net), Identity::Ipv4(a)) => net.contains(*a),
            (Self::Fqdn(want), Identity::Fqdn(got)) => want.eq_ignore_ascii_case(got),
            _ => false,
        }
    }
}

impl fmt::Display for IdentityMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(p) => write!(f, "address {p}"),
            Self::Fqdn(n) => write!(f, "fqdn {n}"),
        }
    }
}

/// Everything the negotiator needs for one tunnel interface.
#[derive(Clone)]
pub struct TunnelConfig {
    /// The tunnel, for events and status.
    pub id: TunnelId,
    /// `tunnel-ipN`, for messages.
    pub name: String,
    /// Our address: the `tunnel source`.
    pub local: Ipv4Addr,
    /// The peer's address: the `tunnel destination`.
    pub remote: Ipv4Addr,
    /// The keyring peer's address range: the addresses a responder accepts
    /// this tunnel's peer from (its `address A.B.C.D MASK`).
    pub peer_range: Ipv4Prefix,
    /// IKE proposals in preference order (the ikev2 policy's).
    pub ike_proposals: Vec<IkeProposalConfig>,
    /// The key we authenticate with (`pre-shared-key [local]`).
    pub psk_local: SecretBytes,
    /// The key the peer must authenticate with (`pre-shared-key [remote]`).
    pub psk_remote: SecretBytes,
    /// Our identity; ID_IPV4_ADDR of `local` by default.
    pub local_identity: Identity,
    /// Identities accepted from the peer; empty accepts any identity of a
    /// peer whose address the keyring covers.
    pub remote_identity: Vec<IdentityMatch>,
    /// IKE SA lifetime (carried for status; rekeying is a later issue).
    pub ike_lifetime: Duration,
    /// ESP suites in preference order (the transform-set's lines).
    pub esp_suites: Vec<EspSuite>,
    /// PFS group for Child SA rekeys (unused until rekeying exists).
    pub pfs: Option<DhGroup>,
    /// Child SA lifetime.
    pub sa_lifetime: Duration,
    /// Child SA volume lifetime.
    pub sa_lifetime_kilobytes: Option<u64>,
    /// Anti-replay window in packets.
    pub replay_window: u32,
    /// Send INITIAL_CONTACT in our first IKE_AUTH to this peer (RFC 7296 2.4).
    pub initial_contact: bool,
}

impl fmt::Debug for TunnelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys print as their length only (SecretBytes' Debug).
        f.debug_struct("TunnelConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("peer_range", &self.peer_range)
            .field("ike_proposals", &self.ike_proposals)
            .field("psk_local", &self.psk_local)
            .field("psk_remote", &self.psk_remote)
            .field("local_identity", &self.local_identity)
            .field("remote_identity", &self.remote_identity)
            .field("esp_suites", &self.esp_suites)
            .finish_non_exhaustive()
    }
}

/// Defaults of IOS-XR (lifetimes, replay window) where the configuration
/// says nothing.
impl TunnelConfig {
    /// A tunnel between `local` and `remote` with one pre-shared key both
    /// ways, AES-GCM-256 / PRF-HMAC-SHA-256 / group 19 for IKE and
    /// AES-GCM-256 for ESP. Tests and examples change the public fields.
    pub fn new(id: TunnelId, local: Ipv4Addr, remote: Ipv4Addr, psk: &[u8]) -> Self {
        Self {
            id,
            name: id.to_string(),
            local,
            remote,
            peer_range: Ipv4Prefix::host(remote),
            ike_proposals: vec![IkeProposalConfig {
                encr: vec![Encr::AesGcm16_256],
                integ: vec![],
                prf: vec![PrfId::HmacSha2_256],
                dh: vec![DhGroup::Ecp256],
            }],
            psk_local: SecretBytes::new(psk),
            psk_remote: SecretBytes::new(psk),
            local_identity: Identity::Ipv4(local),
            remote_identity: Vec::new(),
            ike_lifetime: Duration::from_secs(u64::from(cfg::DEFAULT_IKE_LIFETIME_SECS)),
            esp_suites: vec![EspSuite::new(Encr::AesGcm16_256, None)
                .unwrap_or_else(|_| unreachable!("GCM takes no integrity"))],
            pfs: None,
            sa_lifetime: Duration::from_secs(u64::from(cfg::DEFAULT_IPSEC_LIFETIME_SECS)),
            sa_lifetime_kilobytes: None,
            replay_window: cfg::DEFAULT_REPLAY_WINDOW,
            initial_contact: true,
        }
    }

    /// Checks what the negotiator relies on: proposals with every mandatory
    /// transform type, an integrity transform for every non-AEAD cipher.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ike_proposals.is_empty() {
            return Err(ConfigError::NoIkeProposal);
        }
        for p in &self.ike_proposals {
            if p.encr.is_empty() || p.prf.is_empty() || p.dh.is_empty() {
                return Err(ConfigError::IncompleteProposal);
            }
            if p.encr.iter().any(|e| !e.is_aead()) && p.integ.is_empty() {
                return Err(ConfigError::IncompleteProposal);
            }
        }
        if self.esp_suites.is_empty() {
            return Err(ConfigError::NoEspTransform);
        }
        Ok(())
    }

    /// The DH group our first KE payload uses: the first group of the first
    /// proposal.
    pub fn preferred_group(&self) -> Option<DhGroup> {
        self.ike_proposals.first()?.dh.first().copied()
    }

    /// Whether any proposal lists `group`.
    pub fn offers_group(&self, group: DhGroup) -> bool {
        self.ike_proposals.iter().any(|p| p.dh.contains(&group))
    }

    /// Whether `id` is acceptable as the peer's identity.
    pub fn accepts_identity(&self, id: &Identity) -> bool {
        self.remote_identity.is_empty() || self.remote_identity.iter().any(|m| m.matches(id))
    }
}

/// Why a configured tunnel cannot be negotiated by this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No `tunnel destination`.
    NoDestination,
    /// The IKEv2 profile names no keyring, or no keyring peer covers the
    /// destination.
    NoKeyringPeer {
        /// The destination nobody covers.
        destination: Ipv4Addr,
    },
    /// The keyring peer has no pre-shared key for one direction.
    NoPreSharedKey {
        /// "local" or "remote".
        direction: &'static str,
    },
    /// A side authenticates with something other than a pre-shared key
    /// (RSA signatures are a later issue).
    UnsupportedAuthentication,
    /// The ikev2 policy lists no proposal.
    NoIkeProposal,
    /// A proposal lacks a mandatory transform type.
    IncompleteProposal,
    /// The transform-set lists no usable transform.
    NoEspTransform,
    /// A tunnel with this id is already configured
    /// ([`crate::Endpoint::add_tunnel`]).
    DuplicateTunnel {
        /// The id in use.
        id: TunnelId,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDestination => f.write_str("the tunnel has no `tunnel destination`"),
            Self::NoKeyringPeer { destination } => write!(
                f,
                "no keyring peer covers the tunnel destination {destination}"
            ),
            Self::NoPreSharedKey { direction } => {
                write!(f, "the keyring peer has no {direction} pre-shared key")
            }
            Self::UnsupportedAuthentication => f.write_str(
                "only `authentication local pre-shared` (and remote pre-shared) is supported",
            ),
            Self::NoIkeProposal => f.write_str("the ikev2 policy lists no usable proposal"),
            Self::IncompleteProposal => f.write_str(
                "an ikev2 proposal lacks encryption, prf, dh-group, or integrity for a CBC cipher",
            ),
            Self::NoEspTransform => f.write_str("the transform-set lists no transform"),
            Self::DuplicateTunnel { id } => write!(f, "{id} is already configured"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn ike_encr(e: cfg::IkeEncryption) -> Encr {
    match e {
        cfg::IkeEncryption::AesCbc128 => Encr::AesCbc128,
        cfg::IkeEncryption::AesCbc192 => Encr::AesCbc192,
        cfg::IkeEncryption::AesCbc256 => Encr::AesCbc256,
        cfg::IkeEncryption::AesGcm128 => Encr::AesGcm16_128,
        _ => Encr::AesGcm16_256,
    }
}

fn ike_integ(i: cfg::IkeIntegrity) -> IntegId {
    match i {
        cfg::IkeIntegrity::Sha1 => IntegId::HmacSha1_96,
        cfg::IkeIntegrity::Sha256 => IntegId::HmacSha2_256_128,
        cfg::IkeIntegrity::Sha384 => IntegId::HmacSha2_384_192,
        _ => IntegId::HmacSha2_512_256,
    }
}

fn ike_prf(p: cfg::Prf) -> PrfId {
    match p {
        cfg::Prf::Sha1 => PrfId::HmacSha1,
        cfg::Prf::Sha256 => PrfId::HmacSha2_256,
        cfg::Prf::Sha384 => PrfId::HmacSha2_384,
        _ => PrfId::HmacSha2_512,
    }
}

fn dh_group(g: cfg::DhGroup) -> DhGroup {
    match g {
        cfg::DhGroup::Group19 => DhGroup::Ecp256,
        cfg::DhGroup::Group20 => DhGroup::Ecp384,
        cfg::DhGroup::Group21 => DhGroup::Ecp521,
        _ => DhGroup::Curve25519,
    }
}

fn esp_encr(c: cfg::EspCipher) -> Encr {
    match c {
        cfg::EspCipher::Aes128Cbc => Encr::AesCbc128,
        cfg::EspCipher::Aes192Cbc => Encr::AesCbc192,
        cfg::EspCipher::Aes256Cbc => Encr::AesCbc256,
        cfg::EspCipher::AesGcm128 => Encr::AesGcm16_128,
        _ => Encr::AesGcm16_256,
    }
}

fn esp_integ(i: cfg::EspIntegrity) -> IntegId {
    match i {
        cfg::EspIntegrity::HmacSha1 => IntegId::HmacSha1_96,
        cfg::EspIntegrity::HmacSha256 => IntegId::HmacSha2_256_128,
        cfg::EspIntegrity::HmacSha384 => IntegId::HmacSha2_384_192,
        _ => IntegId::HmacSha2_512_256,
    }
}

fn psk_bytes(
    key: Option<&cfg::PreSharedKey>,
    direction: &'static str,
) -> Result<SecretBytes, ConfigError> {
    key.map(|k| SecretBytes::new(k.expose().as_bytes()))
        .ok_or(ConfigError::NoPreSharedKey { direction })
}

/// Maps a resolved tunnel of the configuration to the negotiator's terms.
/// `local` is the tunnel's source address (the daemon resolves an interface
/// name first).
pub fn from_tunnel(
    view: &cfg::TunnelView<'_>,
    local: Ipv4Addr,
) -> Result<TunnelConfig, ConfigError> {
    let itf = view.interface;
    let (remote, _) = itf.destination.ok_or(ConfigError::NoDestination)?;
    let ike = view.ikev2_profile;
    if ike.auth_local != Some(cfg::AuthMethod::PreShared)
        || ike.remote_auth() != Some(cfg::AuthMethod::PreShared)
    {
        return Err(ConfigError::UnsupportedAuthentication);
    }
    let peer = view.peer().ok_or(ConfigError::NoKeyringPeer {
        destination: remote,
    })?;
    let peer_range = peer
        .address
        .map(|(net, _)| Ipv4Prefix {
            addr: net.addr,
            prefix_len: net.prefix_len,
        })
        .unwrap_or_else(|| Ipv4Prefix::host(remote));
    let ike_proposals = view
        .proposals
        .iter()
        .map(|p| IkeProposalConfig {
            encr: p.encryption.iter().copied().map(ike_encr).collect(),
            integ: p.integrity.iter().copied().map(ike_integ).collect(),
            prf: p.prf.iter().copied().map(ike_prf).collect(),
            dh: p.dh_groups.iter().copied().map(dh_group).collect(),
        })
        .collect();
    let esp_suites = view
        .transform_set
        .transforms
        .iter()
        .filter_map(|t| EspSuite::new(esp_encr(t.cipher), t.integrity.map(esp_integ)).ok())
        .collect();
    let remote_identity = ike
        .match_identity_remote
        .iter()
        .filter_map(|m| match m {
            cfg::RemoteIdentity::Address(net) => Some(IdentityMatch::Address(Ipv4Prefix {
                addr: net.addr,
                prefix_len: net.prefix_len,
            })),
            cfg::RemoteIdentity::Fqdn(n) => Some(IdentityMatch::Fqdn(n.clone())),
            #[allow(unreachable_patterns)] // the enum is non_exhaustive
            _ => None,
        })
        .collect();
    let ipsec = view.ipsec_profile;
    let tunnel = TunnelConfig {
        id: TunnelId(itf.number),
        name: itf.name.clone(),
        local,
        remote,
        peer_range,
        ike_proposals,
        psk_local: psk_bytes(peer.local_key(), "local")?,
        psk_remote: psk_bytes(peer.remote_key(), "remote")?,
        local_identity: Identity::Ipv4(local),
        remote_identity,
        ike_lifetime: ike.lifetime(),
        esp_suites,
        pfs: ipsec.pfs.map(|g| dh_group(g.dh_group())),
        sa_lifetime: ipsec.sa_lifetime(),
        sa_lifetime_kilobytes: ipsec.sa_lifetime_kilobytes,
        replay_window: ipsec.replay_window_size(),
        initial_contact: true,
    };
    tunnel.validate()?;
    Ok(tunnel)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTER1: &str = include_str!("../../../config/router1.conf");

    #[test]
    fn maps_router1_to_iana_transforms_and_its_keyring_peer() {
        let parsed = cfg::parse_str("router1.conf", ROUTER1);
        let config = parsed.config.expect("router1.conf parses");
        let views = config.tunnels();
        let t = from_tunnel(&views[0], "10.99.0.1".parse().unwrap()).unwrap();
        assert_eq!(t.id, TunnelId(1));
        assert_eq!(t.remote, "10.99.0.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            t.ike_proposals,
            vec![IkeProposalConfig {
                encr: vec![Encr::AesCbc256],
                integ: vec![IntegId::HmacSha2_256_128],
                prf: vec![PrfId::HmacSha2_256],
                dh: vec![DhGroup::Ecp384],
            }]
        );
        assert_eq!(
            t.esp_suites,
            vec![EspSuite::new(Encr::AesCbc256, Some(IntegId::HmacSha2_256_128)).unwrap()]
        );
        assert_eq!(t.psk_local, SecretBytes::new(b"xrsec-lab-only-3f9c1e7a"));
        assert_eq!(t.psk_local, t.psk_remote);
        assert_eq!(t.pfs, Some(DhGroup::Ecp256));
        assert_eq!(t.sa_lifetime, Duration::from_secs(600));
        assert_eq!(t.ike_lifetime, Duration::from_secs(600));
        assert!(t.accepts_identity(&Identity::Ipv4("10.99.0.2".parse().unwrap())));
        assert!(!t.accepts_identity(&Identity::Ipv4("10.99.0.3".parse().unwrap())));
        assert!(!format!("{t:?}").contains("xrsec-lab"));
    }

    #[test]
    fn identity_match_compares_fqdns_case_insensitively_and_ranges_by_prefix() {
        let m = IdentityMatch::Fqdn("Router1.Example".into());
        assert!(m.matches(&Identity::Fqdn("router1.example".into())));
        assert!(!m.matches(&Identity::Ipv4(Ipv4Addr::LOCALHOST)));
        let r = IdentityMatch::Address(Ipv4Prefix {
            addr: "10.1.0.0".parse().unwrap(),
            prefix_len: 16,
        });
        assert!(r.matches(&Identity::Ipv4("10.1.200.3".parse().unwrap())));
        assert!(!r.matches(&Identity::Ipv4("10.2.0.3".parse().unwrap())));
    }
}
