//! The negotiator's own per-tunnel configuration, in IANA terms, and its
//! mapping from the resolved IOS-XR view ([`xrsec_config::TunnelView`]).
//!
//! Invariants: a [`TunnelConfig`] holds only transforms xrsec-crypto
//! implements, at least one IKE proposal and one ESP suite (checked by
//! [`TunnelConfig::validate`], which [`from_tunnel`] runs), its pre-shared
//! keys live in [`SecretBytes`] (zeroized on drop, never printed), and its
//! private key, if any, is never printed either. This crate reads no files:
//! a trustpoint's PEM files reach it loaded, as a [`LoadedTrustpoint`].

use core::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;
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

/// How we prove our identity in IKE_AUTH.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum LocalAuth {
    /// A MAC with [`TunnelConfig::psk_local`] (AUTH method 2).
    #[default]
    Psk,
    /// A signature with `key` (AUTH method 14, or 1 for a peer that sent no
    /// SIGNATURE_HASH_ALGORITHMS), the certificates sent as CERT payloads:
    /// end entity first, then intermediates up to (not including) the root.
    Certificate {
        /// Our private key; never printed (its Debug says only its kind).
        key: Arc<xrsec_pki::PrivateKey>,
        /// Our end-entity certificate, then its intermediates.
        chain: Vec<xrsec_pki::Certificate>,
    },
}

impl LocalAuth {
    /// "PSK" or "RSA", as `show crypto ikev2 sa detail` names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Psk => "PSK",
            Self::Certificate { .. } => "RSA",
        }
    }
}

impl fmt::Debug for LocalAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Psk => f.write_str("Psk"),
            // Only the subjects: the key stays out of every log line.
            Self::Certificate { chain, .. } => f
                .debug_struct("Certificate")
                .field(
                    "chain",
                    &chain.iter().map(|c| c.subject()).collect::<Vec<_>>(),
                )
                .finish_non_exhaustive(),
        }
    }
}

/// How the peer must prove its identity in IKE_AUTH.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum RemoteAuth {
    /// A MAC with [`TunnelConfig::psk_remote`] (AUTH method 2).
    #[default]
    Psk,
    /// A signature (AUTH method 1 or 14) by the key of a certificate that
    /// chains to `trust_anchor` and vouches for the peer's IKE identity.
    Certificate {
        /// The CA the peer's chain must end at (the `pki trustpoint`).
        trust_anchor: Arc<xrsec_pki::TrustAnchor>,
    },
}

impl RemoteAuth {
    /// "PSK" or "RSA", as `show crypto ikev2 sa detail` names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Psk => "PSK",
            Self::Certificate { .. } => "RSA",
        }
    }
}

impl fmt::Debug for RemoteAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Psk => f.write_str("Psk"),
            Self::Certificate { trust_anchor } => f
                .debug_struct("Certificate")
                .field("trust_anchor", &trust_anchor.subject())
                .finish(),
        }
    }
}

/// A `crypto ca trustpoint`'s material, loaded by the daemon with
/// xrsec-pki's loaders (`load_certificates`, `load_private_key`) for
/// [`from_tunnel_with_pki`].
#[derive(Clone)]
pub struct LoadedTrustpoint {
    /// `ca-certificate`: the CA peers' certificates must chain to.
    pub ca: Arc<xrsec_pki::TrustAnchor>,
    /// `certificate`: our end entity first, then any intermediates.
    pub chain: Vec<xrsec_pki::Certificate>,
    /// `private-key`: the key of `chain[0]`.
    pub key: Arc<xrsec_pki::PrivateKey>,
}

impl fmt::Debug for LoadedTrustpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedTrustpoint")
            .field("ca", &self.ca.subject())
            .field(
                "chain",
                &self.chain.iter().map(|c| c.subject()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
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
    /// How we authenticate (`authentication local`); PSK by default.
    pub local_auth: LocalAuth,
    /// How the peer must authenticate (`authentication remote`); PSK by
    /// default.
    pub remote_auth: RemoteAuth,
    /// Dead peer detection (`dpd INTERVAL RETRIES`); none by default.
    pub dpd: Option<Dpd>,
}

/// `dpd INTERVAL RETRIES`: when nothing came from the peer for `interval`,
/// an empty INFORMATIONAL request goes, again every `interval`, and after
/// `retries` unanswered ones the peer is dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dpd {
    pub interval: Duration,
    pub retries: u32,
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
            .field("local_auth", &self.local_auth)
            .field("remote_auth", &self.remote_auth)
            .field("ike_lifetime", &self.ike_lifetime)
            .field("sa_lifetime", &self.sa_lifetime)
            .field("dpd", &self.dpd)
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
            local_auth: LocalAuth::Psk,
            remote_auth: RemoteAuth::Psk,
            dpd: None,
        }
    }

    /// Whether either side authenticates with a certificate: the tunnel
    /// then announces SIGNATURE_HASH_ALGORITHMS (RFC 7427 4).
    pub fn uses_certificates(&self) -> bool {
        matches!(self.local_auth, LocalAuth::Certificate { .. })
            || matches!(self.remote_auth, RemoteAuth::Certificate { .. })
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
    /// A side authenticates with `rsa-signature` but no loaded trustpoint
    /// was given, or the profile names no method at all.
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
                "`authentication rsa-signature` needs the `pki trustpoint`'s CA certificate, certificate and private key loaded, and `authentication local` must be set",
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
/// name first). A profile with `rsa-signature` on either side needs
/// [`from_tunnel_with_pki`].
pub fn from_tunnel(
    view: &cfg::TunnelView<'_>,
    local: Ipv4Addr,
) -> Result<TunnelConfig, ConfigError> {
    from_tunnel_with_pki(view, local, None)
}

/// [`from_tunnel`] with the material of the profile's `pki trustpoint`,
/// which `authentication local rsa-signature` (our key and certificates)
/// and `authentication remote rsa-signature` (the CA) use. A keyring peer
/// is needed only for a side that uses `pre-shared`; without one, the peer
/// is accepted from the tunnel destination only.
pub fn from_tunnel_with_pki(
    view: &cfg::TunnelView<'_>,
    local: Ipv4Addr,
    pki: Option<&LoadedTrustpoint>,
) -> Result<TunnelConfig, ConfigError> {
    let itf = view.interface;
    let (remote, _) = itf.destination.ok_or(ConfigError::NoDestination)?;
    let ike = view.ikev2_profile;
    let uses = |m: Option<cfg::AuthMethod>| match m {
        Some(cfg::AuthMethod::PreShared) => Ok(false),
        Some(cfg::AuthMethod::RsaSignature) if pki.is_some() => Ok(true),
        _ => Err(ConfigError::UnsupportedAuthentication),
    };
    let local_rsa = uses(ike.auth_local)?;
    let remote_rsa = uses(ike.remote_auth())?;
    let peer = view.peer();
    if peer.is_none() && !(local_rsa && remote_rsa) {
        return Err(ConfigError::NoKeyringPeer {
            destination: remote,
        });
    }
    let peer_range = peer
        .and_then(|p| p.address)
        .map(|(net, _)| Ipv4Prefix {
            addr: net.addr,
            prefix_len: net.prefix_len,
        })
        .unwrap_or_else(|| Ipv4Prefix::host(remote));
    let (local_auth, psk_local) = match pki {
        Some(tp) if local_rsa => (
            LocalAuth::Certificate {
                key: tp.key.clone(),
                chain: tp.chain.clone(),
            },
            SecretBytes::new(&[]),
        ),
        _ => (
            LocalAuth::Psk,
            psk_bytes(peer.and_then(|p| p.local_key()), "local")?,
        ),
    };
    let (remote_auth, psk_remote) = match pki {
        Some(tp) if remote_rsa => (
            RemoteAuth::Certificate {
                trust_anchor: tp.ca.clone(),
            },
            SecretBytes::new(&[]),
        ),
        _ => (
            RemoteAuth::Psk,
            psk_bytes(peer.and_then(|p| p.remote_key()), "remote")?,
        ),
    };
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
        psk_local,
        psk_remote,
        local_identity: Identity::Ipv4(local),
        remote_identity,
        ike_lifetime: ike.lifetime(),
        esp_suites,
        pfs: ipsec.pfs.map(|g| dh_group(g.dh_group())),
        sa_lifetime: ipsec.sa_lifetime(),
        sa_lifetime_kilobytes: ipsec.sa_lifetime_kilobytes,
        replay_window: ipsec.replay_window_size(),
        initial_contact: true,
        local_auth,
        remote_auth,
        dpd: ike.dpd.map(|d| Dpd {
            interval: Duration::from_secs(u64::from(d.interval_secs)),
            retries: d.retries,
        }),
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

    /// strongSwan's test chain from xrsec-pki's fixtures (CN=10.99.0.2).
    fn swan_trustpoint() -> LoadedTrustpoint {
        let data = |name: &str| {
            std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../xrsec-pki/tests/data")
                    .join(name),
            )
            .unwrap()
        };
        LoadedTrustpoint {
            ca: Arc::new(xrsec_pki::TrustAnchor::from_der(&data("swan-ca.der")).unwrap()),
            chain: xrsec_pki::parse_certificates("swan-peer.crt", &data("swan-peer.crt")).unwrap(),
            key: Arc::new(
                xrsec_pki::parse_private_key("swan-peer.key", &data("swan-peer.key")).unwrap(),
            ),
        }
    }

    /// router1.conf with `authentication` lines replaced by `auth` and a
    /// trustpoint named by the profile; with `keyring` false, the profile
    /// names no keyring.
    fn router1_with(auth: &str, keyring: bool) -> String {
        let mut text = ROUTER1.replace(
            " authentication local pre-shared\n",
            &format!("{auth} pki trustpoint tp_lab\n"),
        );
        if !keyring {
            text = text.replace(" keyring key_mgmt_P1\n", "");
        }
        text.push_str(
            "crypto ca trustpoint tp_lab\n ca-certificate /etc/xrsec/ca.pem\n certificate /etc/xrsec/r1.pem\n private-key /etc/xrsec/r1.key\nexit\n",
        );
        text
    }

    fn tunnel_of(text: &str, pki: Option<&LoadedTrustpoint>) -> Result<TunnelConfig, ConfigError> {
        let parsed = cfg::parse_str("router1.conf", text);
        let errors: Vec<String> = parsed
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        let config = parsed.config.unwrap_or_else(|| panic!("{errors:?}"));
        let views = config.tunnels();
        from_tunnel_with_pki(&views[0], "10.99.0.1".parse().unwrap(), pki)
    }

    #[test]
    fn rsa_signature_both_ways_takes_key_chain_and_ca_from_the_loaded_trustpoint() {
        let tp = swan_trustpoint();
        let text = router1_with(
            " authentication local rsa-signature\n authentication remote rsa-signature\n",
            false,
        );
        let t = tunnel_of(&text, Some(&tp)).unwrap();
        assert!(matches!(&t.local_auth, LocalAuth::Certificate { chain, .. }
            if chain.len() == 1 && chain[0].subject() == tp.chain[0].subject()));
        assert!(
            matches!(&t.remote_auth, RemoteAuth::Certificate { trust_anchor }
            if trust_anchor.subject() == tp.ca.subject())
        );
        // No keyring: the peer is accepted from the tunnel destination only.
        assert_eq!(t.peer_range, Ipv4Prefix::host("10.99.0.2".parse().unwrap()));
        assert_eq!(t.psk_local, SecretBytes::new(&[]));
        assert!(format!("{tp:?}").contains("xrsec lab CA"));
    }

    #[test]
    fn mixed_authentication_keeps_the_pre_shared_key_for_its_direction() {
        let tp = swan_trustpoint();
        let text = router1_with(
            " authentication local rsa-signature\n authentication remote pre-shared\n",
            true,
        );
        let t = tunnel_of(&text, Some(&tp)).unwrap();
        assert_eq!(t.local_auth.name(), "RSA");
        assert_eq!(t.remote_auth.name(), "PSK");
        assert_eq!(t.psk_remote, SecretBytes::new(b"xrsec-lab-only-3f9c1e7a"));
    }

    #[test]
    fn rsa_signature_without_loaded_material_is_unsupported() {
        let both = router1_with(
            " authentication local rsa-signature\n authentication remote rsa-signature\n",
            false,
        );
        assert_eq!(
            tunnel_of(&both, None).unwrap_err(),
            ConfigError::UnsupportedAuthentication
        );
        // from_tunnel stays as it was for pre-shared keys.
        let t = tunnel_of(ROUTER1, None).unwrap();
        assert_eq!((t.local_auth.name(), t.remote_auth.name()), ("PSK", "PSK"));
    }
}
