//! The typed configuration model.
//!
//! Both forms of the language (one-line commands and running-config blocks)
//! parse into these types. Every object carries its name and the [`Span`] of
//! the name token where it was first defined; every reference to another
//! object is a [`NameRef`] carrying the span of the referencing token, so that
//! later stages (validation here, the daemon's own checks later) can point at
//! the exact place in the file.
//!
//! Invariants: collections keep definition order (rendering and "first
//! proposal wins" preference depend on it) and names are unique within a
//! [`NamedMap`], whose index can only be changed through `insert`. Values held
//! here were range-checked by the parser; cross-references are *not*
//! guaranteed to resolve unless the [`crate::Parsed`] had no errors.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use zeroize::Zeroize;

/// A position in the source: 1-based line and column (in characters), and the
/// length in characters of the token it names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

/// A reference by name to another object, with the span of the referencing
/// token (so an unresolved reference is reported where it was written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameRef {
    pub name: String,
    pub span: Span,
}

/// An object that lives in a [`NamedMap`].
pub trait Named {
    fn name(&self) -> &str;
}

/// An order-preserving map from object name to object: a `Vec` in definition
/// order plus a hash index. The index is private so it cannot drift from the
/// `Vec`.
#[derive(Clone)]
pub struct NamedMap<T> {
    items: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for NamedMap<T> {
    fn default() -> Self {
        NamedMap {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T: Named> NamedMap<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `item` at the end. Returns the item back if its name is taken.
    pub fn insert(&mut self, item: T) -> Result<usize, T> {
        if self.index.contains_key(item.name()) {
            return Err(item);
        }
        let i = self.items.len();
        self.index.insert(item.name().to_string(), i);
        self.items.push(item);
        Ok(i)
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        self.index.get(name).map(|&i| &self.items[i])
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        match self.index.get(name) {
            Some(&i) => Some(&mut self.items[i]),
            None => None,
        }
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.items.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(Named::name)
    }

    pub(crate) fn at_mut(&mut self, i: usize) -> &mut T {
        &mut self.items[i]
    }
}

impl<T: PartialEq> PartialEq for NamedMap<T> {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl<T: fmt::Debug> fmt::Debug for NamedMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items.iter()).finish()
    }
}

impl<'a, T: Named> IntoIterator for &'a NamedMap<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// An IPv4 address with a prefix length, as written by `A.B.C.D MASK` or
/// `A.B.C.D/LEN`. The address is kept as written (host bits included) because
/// an interface address or a keyring peer range is meaningful with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Net {
    /// `None` when `prefix_len > 32`.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Net> {
        (prefix_len <= 32).then_some(Ipv4Net { addr, prefix_len })
    }

    /// The netmask as an address (`255.255.255.0` for /24).
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(prefix_to_mask(self.prefix_len))
    }

    /// The address with the host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & prefix_to_mask(self.prefix_len))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = prefix_to_mask(self.prefix_len);
        u32::from(ip) & m == u32::from(self.addr) & m
    }

    pub fn has_host_bits(&self) -> bool {
        self.network() != self.addr
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

pub(crate) fn prefix_to_mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - l),
    }
}

/// The prefix length of a contiguous netmask (`255.255.255.0` → 24), or
/// `None` for a non-contiguous one like `255.0.255.0`.
pub fn mask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let inv = !m;
    // A contiguous mask is ones then zeros, so its complement is 2^k - 1.
    if inv & inv.wrapping_add(1) == 0 {
        Some(m.count_ones() as u8)
    } else {
        None
    }
}

/// A pre-shared key. Zeroized on drop; `Debug` never shows it. Use
/// [`PreSharedKey::expose`] only where the key bytes are needed (the IKE
/// authenticator).
#[derive(Clone, PartialEq, Eq)]
pub struct PreSharedKey(String);

impl PreSharedKey {
    pub fn new(key: impl Into<String>) -> PreSharedKey {
        PreSharedKey(key.into())
    }

    /// The secret itself. Every caller is a place where the key can leak:
    /// keep them few.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in characters (for the "short key" warning), without exposing it.
    pub fn char_len(&self) -> usize {
        self.0.chars().count()
    }
}

impl Drop for PreSharedKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for PreSharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreSharedKey(*****)")
    }
}

/// Defines a keyword enum with its canonical spelling, so that parsing,
/// rendering and "valid values are ..." help share one table.
macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $kw:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// Every value, in the order the help text lists them.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// Canonical spellings, in the order of [`Self::ALL`].
            pub const KEYWORDS: &'static [&'static str] = &[$($kw),+];

            /// The keyword as written in the configuration.
            pub fn keyword(self) -> &'static str {
                match self { $($name::$var => $kw),+ }
            }

            /// Parses a keyword (case-insensitively).
            pub fn from_keyword(s: &str) -> Option<$name> {
                $(if s.eq_ignore_ascii_case($kw) { return Some($name::$var); })+
                None
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.keyword())
            }
        }
    };
}

keyword_enum!(
    /// IKE SA encryption (`ikev2 proposal ... encryption`).
    IkeEncryption {
        AesCbc128 = "aes-cbc-128",
        AesCbc192 = "aes-cbc-192",
        AesCbc256 = "aes-cbc-256",
        AesGcm128 = "aes-gcm-128",
        AesGcm256 = "aes-gcm-256",
    }
);

impl IkeEncryption {
    /// AEAD ciphers authenticate themselves and take no integrity algorithm.
    pub fn is_aead(self) -> bool {
        matches!(self, IkeEncryption::AesGcm128 | IkeEncryption::AesGcm256)
    }

    pub fn key_bits(self) -> u16 {
        match self {
            IkeEncryption::AesCbc128 | IkeEncryption::AesGcm128 => 128,
            IkeEncryption::AesCbc192 => 192,
            IkeEncryption::AesCbc256 | IkeEncryption::AesGcm256 => 256,
        }
    }
}

keyword_enum!(
    /// IKE SA integrity (`ikev2 proposal ... integrity`).
    IkeIntegrity {
        Sha1 = "sha-1",
        Sha256 = "sha-256",
        Sha384 = "sha-384",
        Sha512 = "sha-512",
    }
);

keyword_enum!(
    /// IKE pseudo-random function (`ikev2 proposal ... prf`).
    Prf {
        Sha1 = "sha-1",
        Sha256 = "sha-256",
        Sha384 = "sha-384",
        Sha512 = "sha-512",
    }
);

keyword_enum!(
    /// Diffie-Hellman group for the IKE SA (`ikev2 proposal ... dh-group`).
    /// 31 (Curve25519) is an xrsec extension; IOS-XR offers 19, 20 and 21.
    DhGroup {
        /// 256-bit random ECP group (P-256).
        Group19 = "19",
        /// 384-bit random ECP group (P-384).
        Group20 = "20",
        /// 521-bit random ECP group (P-521).
        Group21 = "21",
        /// Curve25519 (xrsec extension).
        Group31 = "31",
    }
);

impl DhGroup {
    /// The IANA transform ID.
    pub fn number(self) -> u16 {
        match self {
            DhGroup::Group19 => 19,
            DhGroup::Group20 => 20,
            DhGroup::Group21 => 21,
            DhGroup::Group31 => 31,
        }
    }
}

keyword_enum!(
    /// ESP cipher (`ipsec transform-set ... transform`).
    EspCipher {
        Aes128Cbc = "esp-128-aes",
        Aes192Cbc = "esp-192-aes",
        Aes256Cbc = "esp-256-aes",
        AesGcm128 = "esp-gcm-128",
        AesGcm256 = "esp-gcm-256",
    }
);

impl EspCipher {
    pub fn is_aead(self) -> bool {
        matches!(self, EspCipher::AesGcm128 | EspCipher::AesGcm256)
    }
}

keyword_enum!(
    /// ESP integrity (`ipsec transform-set ... transform CIPHER esp-hmac-...`).
    EspIntegrity {
        HmacSha1 = "esp-hmac-sha-1",
        HmacSha256 = "esp-hmac-sha-256",
        HmacSha384 = "esp-hmac-sha-384",
        HmacSha512 = "esp-hmac-sha-512",
    }
);

keyword_enum!(
    /// Perfect forward secrecy group for CHILD SAs (`set pfs groupN`).
    PfsGroup {
        Group19 = "group19",
        Group20 = "group20",
        Group21 = "group21",
        Group31 = "group31",
    }
);

impl PfsGroup {
    pub fn dh_group(self) -> DhGroup {
        match self {
            PfsGroup::Group19 => DhGroup::Group19,
            PfsGroup::Group20 => DhGroup::Group20,
            PfsGroup::Group21 => DhGroup::Group21,
            PfsGroup::Group31 => DhGroup::Group31,
        }
    }
}

keyword_enum!(
    /// How one side of an IKEv2 profile authenticates.
    AuthMethod {
        PreShared = "pre-shared",
        RsaSignature = "rsa-signature",
    }
);

keyword_enum!(
    /// `ipsec transform-set ... mode`. Only tunnel mode exists: xrsec carries
    /// `tunnel-ipN` traffic in tunnel mode.
    IpsecMode {
        Tunnel = "tunnel",
    }
);

/// `ikev2 proposal NAME`. Each list is a preference order (first preferred).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ikev2Proposal {
    pub name: String,
    pub span: Span,
    pub encryption: Vec<IkeEncryption>,
    pub integrity: Vec<IkeIntegrity>,
    pub prf: Vec<Prf>,
    pub dh_groups: Vec<DhGroup>,
}

/// `ikev2 policy NAME`: which proposals to offer for a local address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ikev2Policy {
    pub name: String,
    pub span: Span,
    /// `match address local A.B.C.D`; empty means "any local address".
    pub match_local: Vec<(Ipv4Addr, Span)>,
    /// `match fvrf any` (accepted; xrsec has a single forwarding table).
    pub match_fvrf_any: bool,
    pub proposals: Vec<NameRef>,
}

impl Ikev2Policy {
    /// Whether this policy applies to IKE SAs using `local` as our address.
    pub fn matches_local(&self, local: Ipv4Addr) -> bool {
        self.match_local.is_empty() || self.match_local.iter().any(|(a, _)| *a == local)
    }
}

/// `keyring NAME`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keyring {
    pub name: String,
    pub span: Span,
    pub peers: NamedMap<KeyringPeer>,
}

impl Keyring {
    /// The first peer whose address range contains `ip`.
    pub fn peer_for(&self, ip: Ipv4Addr) -> Option<&KeyringPeer> {
        self.peers
            .iter()
            .find(|p| p.address.is_some_and(|(net, _)| net.contains(ip)))
    }
}

/// `peer NAME` inside a keyring.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyringPeer {
    pub name: String,
    pub span: Span,
    /// `address A.B.C.D MASK`: the range of peer addresses this entry covers.
    pub address: Option<(Ipv4Net, Span)>,
    /// `pre-shared-key KEY`: used in both directions unless overridden.
    pub pre_shared_key: Option<PreSharedKey>,
    /// `pre-shared-key local KEY`: what we sign with.
    pub pre_shared_key_local: Option<PreSharedKey>,
    /// `pre-shared-key remote KEY`: what we expect from the peer.
    pub pre_shared_key_remote: Option<PreSharedKey>,
    /// Where the first key was written (diagnostics point there; excerpts
    /// mask the key itself).
    pub key_span: Option<Span>,
}

impl KeyringPeer {
    /// The key to authenticate ourselves with.
    pub fn local_key(&self) -> Option<&PreSharedKey> {
        self.pre_shared_key_local
            .as_ref()
            .or(self.pre_shared_key.as_ref())
    }

    /// The key the peer must authenticate with.
    pub fn remote_key(&self) -> Option<&PreSharedKey> {
        self.pre_shared_key_remote
            .as_ref()
            .or(self.pre_shared_key.as_ref())
    }
}

/// `crypto ca trustpoint NAME`: PEM files standing in for IOS-XR enrollment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trustpoint {
    pub name: String,
    pub span: Span,
    pub ca_certificate: Option<String>,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
}

/// `match identity remote ...` in an IKEv2 profile.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteIdentity {
    Address(Ipv4Net),
    Fqdn(String),
}

/// `dpd INTERVAL RETRIES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dpd {
    /// Seconds between liveness checks, 1..=3600.
    pub interval_secs: u32,
    /// Unanswered checks before the peer is declared dead, 1..=100.
    pub retries: u32,
}

/// Default IKE SA lifetime (IOS-XR's), in seconds.
pub const DEFAULT_IKE_LIFETIME_SECS: u32 = 86_400;
/// Default IPsec SA lifetime (IOS-XR's), in seconds.
pub const DEFAULT_IPSEC_LIFETIME_SECS: u32 = 3_600;
/// Default anti-replay window, in packets.
pub const DEFAULT_REPLAY_WINDOW: u32 = 64;

/// `ikev2 profile NAME`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ikev2Profile {
    pub name: String,
    pub span: Span,
    pub keyring: Option<NameRef>,
    /// `lifetime SECONDS` of the IKE SA.
    pub lifetime_secs: Option<u32>,
    pub auth_local: Option<AuthMethod>,
    pub auth_remote: Option<AuthMethod>,
    /// Where `authentication` was written.
    pub auth_span: Option<Span>,
    pub match_identity_remote: Vec<RemoteIdentity>,
    pub pki_trustpoint: Option<NameRef>,
    pub dpd: Option<Dpd>,
}

impl Ikev2Profile {
    pub fn lifetime(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(
            self.lifetime_secs.unwrap_or(DEFAULT_IKE_LIFETIME_SECS),
        ))
    }

    /// The method the peer must use; defaults to ours when not configured.
    pub fn remote_auth(&self) -> Option<AuthMethod> {
        self.auth_remote.or(self.auth_local)
    }

    pub fn uses_psk(&self) -> bool {
        self.auth_local == Some(AuthMethod::PreShared)
            || self.remote_auth() == Some(AuthMethod::PreShared)
    }

    pub fn uses_rsa(&self) -> bool {
        self.auth_local == Some(AuthMethod::RsaSignature)
            || self.remote_auth() == Some(AuthMethod::RsaSignature)
    }
}

/// One `transform CIPHER [INTEGRITY]` line of a transform set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EspTransform {
    pub cipher: EspCipher,
    /// `None` exactly when `cipher` is AEAD (checked by the parser).
    pub integrity: Option<EspIntegrity>,
}

impl fmt::Display for EspTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.integrity {
            Some(i) => write!(f, "{}/{}", self.cipher, i),
            None => write!(f, "{}", self.cipher),
        }
    }
}

/// `ipsec transform-set NAME`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransformSet {
    pub name: String,
    pub span: Span,
    pub mode: Option<IpsecMode>,
    /// In preference order.
    pub transforms: Vec<EspTransform>,
}

/// `ipsec profile NAME`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpsecProfile {
    pub name: String,
    pub span: Span,
    pub ikev2_profile: Option<NameRef>,
    pub transform_set: Option<NameRef>,
    pub pfs: Option<PfsGroup>,
    pub sa_lifetime_secs: Option<u32>,
    pub sa_lifetime_kilobytes: Option<u64>,
    pub replay_window: Option<u32>,
}

impl IpsecProfile {
    pub fn sa_lifetime(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(
            self.sa_lifetime_secs.unwrap_or(DEFAULT_IPSEC_LIFETIME_SECS),
        ))
    }

    pub fn replay_window_size(&self) -> u32 {
        self.replay_window.unwrap_or(DEFAULT_REPLAY_WINDOW)
    }
}

/// `tunnel source`: a Linux interface name or an IPv4 address.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TunnelSource {
    Interface(String),
    Address(Ipv4Addr),
}

impl fmt::Display for TunnelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelSource::Interface(n) => f.write_str(n),
            TunnelSource::Address(a) => write!(f, "{a}"),
        }
    }
}

keyword_enum!(
    /// `tunnel mode`: only `ipsec ipv4` is supported.
    TunnelMode {
        IpsecIpv4 = "ipsec ipv4",
    }
);

/// `interface tunnel-ipN`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TunnelInterface {
    /// Canonical name, `tunnel-ip<number>`.
    pub name: String,
    pub number: u32,
    pub span: Span,
    pub description: Option<String>,
    pub ipv4_address: Option<Ipv4Net>,
    pub tunnel_mode: Option<TunnelMode>,
    pub source: Option<(TunnelSource, Span)>,
    pub destination: Option<(Ipv4Addr, Span)>,
    pub protection: Option<NameRef>,
    pub mtu: Option<u16>,
    pub shutdown: bool,
}

/// One route of `router static` / `address-family ipv4 unicast`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    /// Network prefix (no host bits: the parser rejects them).
    pub prefix: Ipv4Net,
    pub interface: NameRef,
    pub span: Span,
}

/// The fragment size when `ikev2 fragmentation` gives no `mtu`: 1280 bytes
/// of IP fit every IPv6 path (RFC 7383 2.5.1).
pub const DEFAULT_IKE_FRAGMENT_MTU: u16 = 1280;

/// The range `ikev2 fragmentation mtu` accepts: from the IPv4 datagram every
/// host must take (576, RFC 791; RFC 7383 2.5.1) to the interface maximum.
pub const IKE_FRAGMENT_MTU_RANGE: std::ops::RangeInclusive<u16> = 576..=9216;

/// IKE fragmentation (RFC 7383), global as IOS XE's `crypto ikev2
/// fragmentation [mtu N]`: `ikev2 fragmentation [mtu BYTES]` and `no ikev2
/// fragmentation`. Unlike IOS XE it is on by default (certificates make
/// IKE_AUTH larger than many paths carry whole); the later of the two
/// commands in a file wins, as in a configuration session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IkeFragmentation {
    /// `no ikev2 fragmentation`: neither offered nor accepted.
    pub disabled: bool,
    /// `mtu BYTES`: the largest IP datagram (IP and UDP headers included)
    /// an encrypted message may take before it is cut into fragments.
    pub mtu: Option<u16>,
    /// Where the command that set this was written.
    pub span: Option<Span>,
}

impl IkeFragmentation {
    /// Whether fragmentation is offered and accepted.
    pub fn enabled(&self) -> bool {
        !self.disabled
    }

    /// The fragment size in use: `mtu`, or [`DEFAULT_IKE_FRAGMENT_MTU`].
    pub fn mtu(&self) -> u16 {
        self.mtu.unwrap_or(DEFAULT_IKE_FRAGMENT_MTU)
    }
}

/// A whole configuration, objects in definition order per kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// `ikev2 fragmentation` / `no ikev2 fragmentation` (global).
    pub ikev2_fragmentation: IkeFragmentation,
    pub proposals: NamedMap<Ikev2Proposal>,
    pub policies: NamedMap<Ikev2Policy>,
    pub keyrings: NamedMap<Keyring>,
    pub trustpoints: NamedMap<Trustpoint>,
    pub ikev2_profiles: NamedMap<Ikev2Profile>,
    pub transform_sets: NamedMap<TransformSet>,
    pub ipsec_profiles: NamedMap<IpsecProfile>,
    pub interfaces: NamedMap<TunnelInterface>,
    pub static_routes: Vec<StaticRoute>,
}

macro_rules! impl_named {
    ($($t:ty),+) => { $(impl Named for $t { fn name(&self) -> &str { &self.name } })+ };
}
impl_named!(
    Ikev2Proposal,
    Ikev2Policy,
    Keyring,
    KeyringPeer,
    Trustpoint,
    Ikev2Profile,
    TransformSet,
    IpsecProfile,
    TunnelInterface
);

impl Config {
    /// The first policy that applies to `local` (an explicit `match address
    /// local` wins over a policy without one), as IOS-XR selects it.
    pub fn policy_for_local(&self, local: Ipv4Addr) -> Option<&Ikev2Policy> {
        self.policies
            .iter()
            .find(|p| p.match_local.iter().any(|(a, _)| *a == local))
            .or_else(|| self.policies.iter().find(|p| p.match_local.is_empty()))
    }

    /// Whether two configurations hold the same settings, ignoring where in
    /// the source they were written (e.g. to tell if a reload changes anything).
    pub fn same_settings(&self, other: &Config) -> bool {
        let mut a = self.clone();
        let mut b = other.clone();
        a.clear_spans();
        b.clear_spans();
        a == b
    }

    fn clear_spans(&mut self) {
        let z = Span::default();
        let r = |n: &mut NameRef| n.span = z;
        self.ikev2_fragmentation.span = None;
        for p in self.proposals.iter_mut() {
            p.span = z;
        }
        for p in self.policies.iter_mut() {
            p.span = z;
            p.match_local.iter_mut().for_each(|m| m.1 = z);
            p.proposals.iter_mut().for_each(r);
        }
        for k in self.keyrings.iter_mut() {
            k.span = z;
            for p in k.peers.iter_mut() {
                p.span = z;
                p.key_span = None;
                if let Some(a) = &mut p.address {
                    a.1 = z;
                }
            }
        }
        for t in self.trustpoints.iter_mut() {
            t.span = z;
        }
        for p in self.ikev2_profiles.iter_mut() {
            p.span = z;
            p.auth_span = None;
            p.keyring.as_mut().map(r);
            p.pki_trustpoint.as_mut().map(r);
        }
        for t in self.transform_sets.iter_mut() {
            t.span = z;
        }
        for p in self.ipsec_profiles.iter_mut() {
            p.span = z;
            p.ikev2_profile.as_mut().map(r);
            p.transform_set.as_mut().map(r);
        }
        for i in self.interfaces.iter_mut() {
            i.span = z;
            if let Some(s) = &mut i.source {
                s.1 = z;
            }
            if let Some(d) = &mut i.destination {
                d.1 = z;
            }
            i.protection.as_mut().map(r);
        }
        for s in &mut self.static_routes {
            s.span = z;
            s.interface.span = z;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_masks_give_their_prefix_length() {
        for len in 0..=32u8 {
            let m = Ipv4Addr::from(prefix_to_mask(len));
            assert_eq!(mask_to_prefix(m), Some(len), "{m}");
        }
    }

    #[test]
    fn non_contiguous_masks_are_rejected() {
        for m in ["255.0.255.0", "0.255.255.255", "255.255.255.1", "128.0.0.1"] {
            assert_eq!(mask_to_prefix(m.parse().unwrap()), None, "{m}");
        }
    }

    #[test]
    fn a_range_with_host_bits_contains_its_network() {
        let net = Ipv4Net::new("198.52.100.21".parse().unwrap(), 24).unwrap();
        assert!(net.contains("198.52.100.5".parse().unwrap()));
        assert!(!net.contains("198.52.101.5".parse().unwrap()));
        assert!(net.has_host_bits());
        assert_eq!(net.network().to_string(), "198.52.100.0");
        assert_eq!(net.mask().to_string(), "255.255.255.0");
    }

    #[test]
    fn pre_shared_key_debug_hides_the_key() {
        let k = PreSharedKey::new("cisco123");
        assert_eq!(format!("{k:?}"), "PreSharedKey(*****)");
        assert_eq!(k.expose(), "cisco123");
    }
}
