//! The public sans-IO driver: every IKE SA of the daemon, the routing of
//! datagrams to them by SPI, and the stateless answers to IKE_SA_INIT
//! requests that create no SA.
//!
//! How to drive it (the quinn-proto pattern): feed what happens with
//! [`Endpoint::handle_datagram`], [`Endpoint::handle_timeout`],
//! [`Endpoint::initiate`] and the `delete_*`/`send_*` calls; after each,
//! drain [`Endpoint::poll_transmit`] (send each datagram, prefixing the
//! non-ESP marker when its local port is 4500; one message may come as
//! several datagrams, its RFC 7383 fragments) and [`Endpoint::poll_event`],
//! then arm a timer for [`Endpoint::poll_timeout`] and call `handle_timeout`
//! when it fires.
//!
//! Invariants: a datagram for an SPI we do not know creates nothing (only an
//! IKE_SA_INIT request with a zero SPIr may create a half-open SA, and at
//! most `max_half_open` exist); our IKE SPIs and inbound ESP SPIs are random,
//! non-zero and unique among ours.
//!
//! Tunnels come and go at run time (a configuration reload):
//! [`Endpoint::add_tunnel`], [`Endpoint::replace_tunnel`],
//! [`Endpoint::remove_tunnel`]. An IKE SA names its tunnel by [`TunnelId`],
//! never by position, so the SAs of tunnels left alone run on unaware. A
//! replaced or removed tunnel's SAs are deleted before its settings change
//! or go, so that no SA outlives the settings it was negotiated under; one
//! still awaiting the answer to its DELETE needs no settings to finish.
//!
//! Both ends initiating a tunnel at once: both negotiations run to the end,
//! and of two established IKE SAs of a tunnel, one ours and one the peer's,
//! the one with the lower initiator SPI is kept (the responder SPI breaks a
//! tie) and the other deleted with an INFORMATIONAL DELETE. Both ends apply
//! the rule on their own, so both may send the DELETE; a peer that does not
//! apply it gets ours. The daemon hears of the loser only if it was reported
//! up before the winner was established (then it goes down with
//! [`DownReason::Duplicate`], after the winner's up events).
//!
//! An SA that would lose to one of ours still awaiting its IKE_AUTH response
//! is held back while that one's answer can be expected, so that in the
//! common case the daemon sees one IKE SA and one Child SA, never a second.
//! That is until our request's first retransmission timeout: the peer has
//! just shown it answers, so silence means our request or its answer was
//! lost, or never gets through (a NAT in front of the peer drops what we
//! send to a port it has no mapping for), and the tunnel should not stay
//! down for the whole retransmission schedule. The held SA is then
//! reported, and replaced as above if ours does come up. Likewise the
//! peer's DELETE of a reported SA that loses to such an SA of ours is
//! reported (as a duplicate) only after ours is up, so that the daemon never
//! goes without an outbound SA; there the wait is not cut short, as a peer
//! that deleted in favour of ours has ours established and answers it.
//!
//! RFC 7296 has no rule for this case (2.8.1 settles rekey collisions only),
//! hence one of our own that both ends compute alike without talking. It
//! compares SPIs, not addresses: a NAT rewrites addresses and ports, so
//! each end would compare different ones and both could think their own SA
//! the winner, but it leaves the IKE header alone. Both ends know both
//! SPIi from the IKE_SA_INIT requests on, early enough to hold back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use rand_core::CryptoRngCore;
use xrsec_crypto::{prf, IkeKeys, PrfId, Role};

use crate::config::{ConfigError, TunnelConfig, TunnelId};
use crate::event::{DownReason, Event, FailureReason, IkeKeyExport, IkeSaId, SaKind, SessionInfo};
use crate::proposal::{self, IkeChoice};
use crate::sa::{find_tunnel, notify_payload, Ctx, IkeSa, Request, SaInitRequest};
use crate::wire::{notify, summarize, ExchangeType, Flags, Header, Message, Payload, WireError};

/// Tunables; the defaults are RFC 7296's suggestions and IOS-XR's habits.
#[derive(Clone, Debug)]
pub struct EndpointOptions {
    /// The IKE port (500).
    pub ike_port: u16,
    /// The NAT-T port (4500, RFC 3948).
    pub natt_port: u16,
    /// First retransmission timeout; each next one doubles (RFC 7296 2.4).
    pub retransmit_initial: Duration,
    /// Transmissions of one request before giving up, first one included.
    pub retransmit_limit: u32,
    /// How long a responder keeps an SA whose IKE_AUTH has not come.
    pub half_open_timeout: Duration,
    /// Most half-open SAs; IKE_SA_INIT requests beyond are dropped.
    pub max_half_open: usize,
    /// From this many half-open SAs on, IKE_SA_INIT requires a COOKIE
    /// (RFC 7296 2.6). `None` never asks for one.
    pub cookie_threshold: Option<usize>,
    /// How long an initiator keeps listening after an (unauthenticated)
    /// error answer to IKE_SA_INIT before it believes it (RFC 7296 2.21.1).
    pub error_grace: Duration,
    /// Send a NAT_DETECTION_SOURCE_IP that cannot match, as strongSwan with
    /// kernel-libipsec does (LAB.md), so that both ends use port 4500 and
    /// ESP in UDP even without a NAT.
    pub force_udp_encap: bool,
    /// Keep a one-line summary of every message sent and received for
    /// [`Endpoint::poll_log`] (payload types and notify names; never keys).
    pub log_messages: bool,
    /// Offer IKE fragmentation (RFC 7383) in IKE_SA_INIT and accept the
    /// peer's offer. An IKE SA fragments only when both ends offered it;
    /// otherwise a large message goes whole, for the IP layer to fragment
    /// (and a path that drops IP fragments to lose).
    pub fragmentation: bool,
    /// The largest IP datagram an encrypted message may take before it is
    /// cut into fragments: IP and UDP headers (and the non-ESP marker on
    /// the NAT-T port) included. 1280 fits every IPv6 path (RFC 7383 2.5.1
    /// suggests it; 576 is the IPv4 minimum). IKE_SA_INIT is never cut.
    pub fragment_size: u16,
    /// How long fragments of a message that never completes are kept.
    /// Reassembly is bounded in size too, whatever this says: at most 64
    /// fragments a message and 64 KiB an IKE SA, both directions together,
    /// and only of the one request and the one response the message ID
    /// window admits; fragments are kept only once their ICV verifies.
    pub reassembly_timeout: Duration,
    /// Announce the hashes we sign and verify with (SHA2-256, 384, 512) in
    /// SIGNATURE_HASH_ALGORITHMS (RFC 7427 4) in IKE_SA_INIT, when a tunnel
    /// authenticates with certificates. Without it a peer signs with AUTH
    /// method 1 (RSA PKCS#1 v1.5 with SHA-1); tests turn it off for that.
    pub signature_hash_algorithms: bool,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        Self {
            ike_port: 500,
            natt_port: 4500,
            retransmit_initial: Duration::from_secs(1),
            retransmit_limit: 6,
            half_open_timeout: Duration::from_secs(30),
            max_half_open: 1024,
            cookie_threshold: Some(512),
            error_grace: Duration::from_secs(2),
            force_udp_encap: false,
            log_messages: true,
            fragmentation: true,
            fragment_size: 1280,
            reassembly_timeout: Duration::from_secs(30),
            signature_hash_algorithms: true,
        }
    }
}

/// A datagram to send. When `local`'s port is the NAT-T port, the daemon
/// prefixes the four-byte non-ESP marker (RFC 3948 2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub payload: Vec<u8>,
}

/// A line for the daemon's log: one message sent, received or dropped, e.g.
/// `sent IKE_AUTH request 1 [ IDi N(INIT_CONTACT) AUTH SA TSi TSr ]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The IKE SA concerned, if any (stateless answers have none).
    pub ike_sa: Option<IkeSaId>,
    pub text: String,
}

/// Lines kept when nobody polls the log.
const LOG_CAPACITY: usize = 1024;

/// What the SAs produced, waiting to be polled.
#[derive(Default)]
pub(crate) struct Outbox {
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<Event>,
    pub log: VecDeque<LogLine>,
    /// IKE SAs a rekey made, for the endpoint to add to its table.
    pub rekeyed: Vec<crate::sa::Rekeyed>,
    /// Child SAs moving to an IKE SA already in the table.
    pub adopt: Vec<crate::sa::Adoption>,
    /// Our SPIs of IKE SAs that lost a rekey collision: their initiator
    /// deletes them, else we do after a grace period.
    pub losers: Vec<u64>,
}

impl Outbox {
    pub fn log(&mut self, ike_sa: Option<IkeSaId>, text: String) {
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogLine { ike_sa, text });
    }

    pub fn transmit(&mut self, local: SocketAddr, remote: SocketAddr, payload: Vec<u8>) {
        self.transmits.push_back(Transmit {
            local,
            remote,
            payload,
        });
    }
}

/// The IKEv2 negotiator for every tunnel of the daemon.
pub struct Endpoint<R: CryptoRngCore> {
    tunnels: Vec<TunnelConfig>,
    rng: R,
    opts: EndpointOptions,
    /// Ordered so that timers and status run in a stable order.
    sas: BTreeMap<IkeSaId, IkeSa>,
    /// Our IKE SPI (SPIi as initiator, SPIr as responder) to SA.
    by_spi: HashMap<u64, IkeSaId>,
    /// (peer address of its IKE_SA_INIT, SPIi) to responder SA, so that a
    /// retransmitted IKE_SA_INIT finds its SA (RFC 7296 2.1).
    by_peer_spi: HashMap<(SocketAddr, u64), IkeSaId>,
    peer_key_of: HashMap<IkeSaId, (SocketAddr, u64)>,
    child_spis: HashSet<u32>,
    next_id: u64,
    cookie_secret: [u8; 32],
    out: Outbox,
    /// Established SAs not reported yet: they lose to an SA of ours that is
    /// waiting for its IKE_AUTH response, if that one succeeds.
    held: BTreeSet<IkeSaId>,
    /// Apply the simultaneous-initiation rule (see the module doc).
    resolve_duplicates: bool,
    /// Down events of SAs the peer deleted, waiting for the named IKE SA of
    /// ours (which beats them) to be up or failed.
    deferred_downs: Vec<(IkeSaId, Vec<Event>)>,
    /// The wall-clock time certificates are checked at, as last given to
    /// [`Endpoint::set_system_time`]; `None` fails every certificate.
    system_time: Option<SystemTime>,
}

macro_rules! ctx {
    ($self:ident, $now:expr) => {
        Ctx {
            now: $now,
            rng: &mut $self.rng,
            opts: &$self.opts,
            tunnels: &$self.tunnels,
            out: &mut $self.out,
            child_spis: &mut $self.child_spis,
            ike_spis: &$self.by_spi,
            system_time: $self.system_time,
            peer_has_other_sa: false,
            defer_peer_delete: None,
        }
    };
}

impl<R: CryptoRngCore> Endpoint<R> {
    /// An endpoint for `tunnels`, drawing every random value (SPIs, nonces,
    /// DH private values, IVs, the cookie secret) from `rng`.
    pub fn new(tunnels: Vec<TunnelConfig>, mut rng: R, opts: EndpointOptions) -> Self {
        let mut cookie_secret = [0u8; 32];
        rng.fill_bytes(&mut cookie_secret);
        Self {
            tunnels,
            rng,
            opts,
            sas: BTreeMap::new(),
            by_spi: HashMap::new(),
            by_peer_spi: HashMap::new(),
            peer_key_of: HashMap::new(),
            child_spis: HashSet::new(),
            next_id: 1,
            cookie_secret,
            out: Outbox::default(),
            held: BTreeSet::new(),
            resolve_duplicates: true,
            deferred_downs: Vec::new(),
            system_time: None,
        }
    }

    /// The wall-clock time peer certificates are checked against (their
    /// notBefore and notAfter). The endpoint reads no clock (the
    /// [`Instant`]s of `handle_*` say nothing of the date): call this before
    /// each `handle_datagram` when a tunnel authenticates its peer with a
    /// certificate. Until it is called, every certificate is refused with
    /// "no wall-clock time given".
    pub fn set_system_time(&mut self, now: SystemTime) {
        self.system_time = Some(now);
    }

    /// Whether duplicate IKE SAs from simultaneous initiation are resolved
    /// (the default; see the module doc). Off, this endpoint keeps both and
    /// leaves it to the peer's DELETE, as a peer without the rule does (e.g.
    /// strongSwan); tests use that to stand for such a peer. Set it before
    /// any negotiation.
    pub fn set_resolve_duplicates(&mut self, on: bool) {
        self.resolve_duplicates = on;
    }

    /// Changes [`EndpointOptions::fragmentation`] and
    /// [`EndpointOptions::fragment_size`] at run time (a configuration
    /// reload). IKE SAs negotiated from now on offer (or not) fragmentation
    /// accordingly; an existing IKE SA keeps what its IKE_SA_INIT settled
    /// (RFC 7383 2.3: it is negotiated once per SA) and cuts its next
    /// messages at the new size.
    pub fn set_fragmentation(&mut self, on: bool, fragment_size: u16) {
        self.opts.fragmentation = on;
        self.opts.fragment_size = fragment_size;
    }

    /// The options in force.
    pub fn options(&self) -> &EndpointOptions {
        &self.opts
    }

    /// The tunnels this endpoint negotiates.
    pub fn tunnels(&self) -> &[TunnelConfig] {
        &self.tunnels
    }

    /// Tunnel `id`'s configuration, if it is configured.
    pub fn tunnel(&self, id: TunnelId) -> Option<&TunnelConfig> {
        find_tunnel(&self.tunnels, id)
    }

    /// Adds a tunnel at run time (a configuration reload). Nothing is
    /// negotiated yet: call [`Endpoint::initiate`] for it as for the
    /// tunnels given to [`Endpoint::new`]; from now on the peer's requests
    /// may be matched to it too.
    ///
    /// Refused, changing nothing, when `config` fails
    /// [`TunnelConfig::validate`] or its id is already configured
    /// ([`ConfigError::DuplicateTunnel`]: new settings for a tunnel go
    /// through [`Endpoint::replace_tunnel`]).
    pub fn add_tunnel(&mut self, config: TunnelConfig) -> Result<(), ConfigError> {
        config.validate()?;
        if self.tunnel(config.id).is_some() {
            return Err(ConfigError::DuplicateTunnel { id: config.id });
        }
        self.out.log(None, format!("{} added", config.id));
        self.tunnels.push(config);
        Ok(())
    }

    /// Gives tunnel `config.id` new settings (keys, proposals, addresses,
    /// identities...). Its IKE SAs, and the Child SAs in them, are deleted
    /// first (see [`Endpoint::remove_tunnel`] for how), so that nothing
    /// negotiated under the old settings outlives them; every negotiation
    /// after the call, ours or the peer's, uses the new ones. The tunnel is
    /// not re-initiated here: call [`Endpoint::initiate`] (the peer, which
    /// gets the DELETE, may also initiate). Other tunnels are untouched.
    ///
    /// Does nothing but log a line when the tunnel is not configured (add it
    /// with [`Endpoint::add_tunnel`]) or `config` fails
    /// [`TunnelConfig::validate`] (the old settings then stay, SAs included).
    pub fn replace_tunnel(&mut self, now: Instant, config: TunnelConfig) {
        let id = config.id;
        if self.tunnel(id).is_none() {
            self.out.log(
                None,
                format!("{id} not replaced: it is not configured (add it instead)"),
            );
            return;
        }
        if let Err(e) = config.validate() {
            self.out.log(
                None,
                format!("{id} not replaced, keeping its old settings: {e}"),
            );
            return;
        }
        self.out
            .log(None, format!("{id} has new settings: deleting its IKE SAs"));
        self.delete_tunnel_sas(now, id);
        if let Some(slot) = self.tunnels.iter_mut().find(|t| t.id == id) {
            *slot = config;
        }
    }

    /// Deletes tunnel `id`'s IKE SAs and forgets the tunnel (a configuration
    /// reload). Each IKE SA goes as with [`Endpoint::delete_ike_sa`]: an
    /// established one reports its Child SAs' and its own down events at once
    /// ([`DownReason::LocalDelete`]; none for an SA never reported up) and
    /// sends an INFORMATIONAL DELETE, retransmitted until answered; one being
    /// negotiated stops without a word, whoever started it (a half-open SA
    /// of the peer's included); one already being deleted carries on.
    ///
    /// Afterwards the tunnel is unknown: [`Endpoint::initiate`] ignores it,
    /// the peer's IKE_SA_INIT for it gets what any unconfigured peer gets,
    /// and [`Endpoint::sessions`] no longer lists its SAs. Other tunnels'
    /// SAs are untouched (SAs name their tunnel by id, not by position).
    /// Unknown ids are ignored.
    pub fn remove_tunnel(&mut self, now: Instant, id: TunnelId) {
        if self.tunnel(id).is_none() {
            return;
        }
        self.out
            .log(None, format!("{id} removed: deleting its IKE SAs"));
        self.delete_tunnel_sas(now, id);
        self.tunnels.retain(|t| t.id != id);
    }

    /// Deletes every IKE SA of `tunnel`, as `delete_ike_sa` does each.
    fn delete_tunnel_sas(&mut self, now: Instant, tunnel: TunnelId) {
        let ids: Vec<IkeSaId> = self
            .sas
            .iter()
            .filter(|(_, s)| s.tunnel == tunnel)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.request(now, id, Request::DeleteIke);
        }
    }

    fn alloc_ike_spi(&mut self) -> u64 {
        fresh_ike_spi(&mut self.rng, &self.by_spi)
    }

    fn alloc_id(&mut self) -> IkeSaId {
        let id = IkeSaId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Brings the tunnel up as initiator. Does nothing when
    /// [`Endpoint::tunnel_has_sa`] says so (or the tunnel is unknown), so the
    /// daemon may call it whenever it likes, e.g. for every tunnel at start
    /// and again after a failure. A negotiation the peer started does not
    /// stop ours: if both succeed, one is deleted (see the module doc).
    pub fn initiate(&mut self, now: Instant, tunnel: TunnelId) {
        if self.tunnel(tunnel).is_none() || self.tunnel_has_sa(tunnel) {
            return;
        }
        let spi = self.alloc_ike_spi();
        let id = self.alloc_id();
        let mut ctx = ctx!(self, now);
        if let Some(sa) = IkeSa::initiate(&mut ctx, id, tunnel, spi) {
            self.by_spi.insert(spi, id);
            self.sas.insert(id, sa);
        }
    }

    /// Whether the tunnel has an established IKE SA (in either role, even one
    /// being resolved as a duplicate) or one of ours being negotiated: then
    /// [`Endpoint::initiate`] does nothing. An IKE SA being deleted does not
    /// count, nor does a half-open one the peer started.
    pub fn tunnel_has_sa(&self, tunnel: TunnelId) -> bool {
        self.sas
            .values()
            .any(|s| s.tunnel == tunnel && s.covers_tunnel())
    }

    /// Whether another IKE SA with `id`'s peer, for its tunnel, is
    /// established.
    fn peer_has_other_sa(&self, id: IkeSaId) -> bool {
        let Some(sa) = self.sas.get(&id) else {
            return false;
        };
        self.sas.iter().any(|(other, s)| {
            *other != id
                && s.tunnel == sa.tunnel
                && s.remote.ip() == sa.remote.ip()
                && s.is_established()
        })
    }

    /// The IKE SA of ours awaiting its IKE_AUTH response that beats `id`
    /// (reported up) by the simultaneous-initiation rule, if any, however
    /// long it has waited (see the module doc).
    fn awaited_winner(&self, id: IkeSaId) -> Option<IkeSaId> {
        let sa = self.sas.get(&id)?;
        if !self.resolve_duplicates || !sa.announced || !sa.is_established() {
            return None;
        }
        self.sas
            .iter()
            .find(|(_, s)| {
                s.is_awaiting_auth_response()
                    && s.tunnel == sa.tunnel
                    && s.remote.ip() == sa.remote.ip()
                    && s.role != sa.role
                    && s.collision_rank() < sa.collision_rank()
            })
            .map(|(other, _)| *other)
    }

    /// A datagram arrived on `local` from `remote` (non-ESP marker already
    /// stripped). Poll transmits and events afterwards.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
    ) {
        let msg = match Message::parse(datagram) {
            Ok(m) => m,
            Err(e) => {
                self.answer_unparsable(local, remote, datagram, e);
                return;
            }
        };
        let h = &msg.header;
        if h.exchange == ExchangeType::IkeSaInit && !h.flags.response && h.spi_r == 0 {
            self.handle_sa_init_request(now, local, remote, datagram, &msg);
            return;
        }
        // Our SPI is the responder's when the sender is the original
        // initiator, else the initiator's. Unknown: drop, no state.
        let our_spi = if h.flags.initiator { h.spi_r } else { h.spi_i };
        let Some(&id) = self.by_spi.get(&our_spi) else {
            return;
        };
        let peer_has_other_sa = self.peer_has_other_sa(id);
        let defer_peer_delete = self.awaited_winner(id);
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        // RFC 7296 3.1: the Initiator flag must say the peer's role.
        if h.flags.initiator != (sa.role == Role::Responder) {
            return;
        }
        let peer_spi_ok = match sa.role {
            Role::Responder => h.spi_i == sa.spi_i,
            Role::Initiator => sa.spi_r == 0 || h.spi_r == sa.spi_r,
        };
        if !peer_spi_ok {
            return;
        }
        let mut ctx = ctx!(self, now);
        ctx.peer_has_other_sa = peer_has_other_sa;
        ctx.defer_peer_delete = defer_peer_delete;
        sa.handle_message(&mut ctx, local, remote, datagram, &msg);
        self.after(now, id);
    }

    /// RFC 7296 2.5 / 2.21.1: a malformed IKE_SA_INIT request for an address
    /// we serve gets the matching error notify, statelessly; any other
    /// unparsable datagram is dropped.
    fn answer_unparsable(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        e: WireError,
    ) {
        let Ok(h) = Header::parse(datagram) else {
            return;
        };
        let is_sa_init_request = h.exchange == ExchangeType::IkeSaInit
            && h.flags.initiator
            && !h.flags.response
            && h.spi_r == 0
            && h.message_id == 0;
        if !is_sa_init_request || !self.serves(local) {
            return;
        }
        let data = match e {
            // RFC 7296 2.5: a lower major version is ignored.
            WireError::UnsupportedVersion { major } if major < 2 => return,
            WireError::UnsupportedCriticalPayload { payload_type } => vec![payload_type],
            _ => Vec::new(),
        };
        self.stateless_reply(local, remote, h.spi_i, e.notify_type(), data);
    }

    fn serves(&self, local: SocketAddr) -> bool {
        self.tunnels
            .iter()
            .any(|t| IpAddr::V4(t.local) == local.ip())
    }

    fn stateless_reply(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        spi_i: u64,
        notify_type: u16,
        data: Vec<u8>,
    ) {
        let h = Header {
            spi_i,
            spi_r: 0,
            next_payload: 0,
            major: 2,
            minor: 0,
            exchange: ExchangeType::IkeSaInit,
            flags: Flags {
                initiator: false,
                version: false,
                response: true,
            },
            message_id: 0,
            length: 0,
        };
        let payloads = [notify_payload(notify_type, data)];
        if self.opts.log_messages {
            self.out.log(
                None,
                format!("sent {} to {remote}", summarize(&h, &payloads)),
            );
        }
        let payload = Message::emit_plain(&h, &payloads);
        self.out.transmit(local, remote, payload);
    }

    /// RFC 7296 2.6: Cookie = VersionIDofSecret | Hash(Ni | IPi | SPIi | secret).
    fn cookie(&self, ni: &[u8], remote: SocketAddr, spi_i: u64) -> Vec<u8> {
        let mut input = Vec::with_capacity(ni.len() + 16 + 8);
        input.extend_from_slice(ni);
        match remote.ip() {
            IpAddr::V4(a) => input.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => input.extend_from_slice(&a.octets()),
        }
        input.extend_from_slice(&spi_i.to_be_bytes());
        let mac = prf(PrfId::HmacSha2_256, &self.cookie_secret, &input);
        let mut cookie = vec![0u8];
        cookie.extend_from_slice(&mac.as_bytes()[..16]);
        cookie
    }

    fn handle_sa_init_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        msg: &Message,
    ) {
        let h = &msg.header;
        if !h.flags.initiator || h.message_id != 0 {
            return;
        }
        if self.opts.log_messages {
            self.out
                .log(None, format!("received {} from {remote}", msg.summary()));
        }
        // A retransmission goes to its SA, which re-sends its response.
        if let Some(&id) = self.by_peer_spi.get(&(remote, h.spi_i)) {
            if let Some(sa) = self.sas.get_mut(&id) {
                let mut ctx = ctx!(self, now);
                sa.handle_message(&mut ctx, local, remote, datagram, msg);
                self.after(now, id);
            }
            return;
        }
        // The policy is chosen by the address the request arrived on.
        let local_ip = local.ip();
        let remote_v4 = match remote.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        };
        let candidates: Vec<usize> = (0..self.tunnels.len())
            .filter(|&i| IpAddr::V4(self.tunnels[i].local) == local_ip)
            .collect();
        let Some(&first) = candidates.first() else {
            self.stateless_reply(
                local,
                remote,
                h.spi_i,
                notify::NO_PROPOSAL_CHOSEN,
                Vec::new(),
            );
            return;
        };
        let tunnel = candidates
            .iter()
            .copied()
            .find(|&i| remote_v4.is_some_and(|a| self.tunnels[i].peer_range.contains(a)))
            .unwrap_or(first);
        let p = &msg.payloads;
        let sa_payload = p.iter().find_map(|x| {
            if let Payload::Sa(s) = x {
                Some(s)
            } else {
                None
            }
        });
        let ke = p.iter().find_map(|x| {
            if let Payload::Ke(k) = x {
                Some(k)
            } else {
                None
            }
        });
        let ni = p.iter().find_map(|x| {
            if let Payload::Nonce(n) = x {
                Some(n)
            } else {
                None
            }
        });
        let (Some(sa_payload), Some(ke), Some(ni)) = (sa_payload, ke, ni) else {
            self.stateless_reply(local, remote, h.spi_i, notify::INVALID_SYNTAX, Vec::new());
            return;
        };
        if !(crate::wire::NONCE_MIN_LEN..=crate::wire::NONCE_MAX_LEN).contains(&ni.len()) {
            self.stateless_reply(local, remote, h.spi_i, notify::INVALID_SYNTAX, Vec::new());
            return;
        }
        let half_open = self.sas.values().filter(|s| s.is_half_open()).count();
        if half_open >= self.opts.max_half_open {
            return;
        }
        if self.opts.cookie_threshold.is_some_and(|t| half_open >= t) {
            // RFC 7296 2.6: under load, only requests that prove the
            // initiator receives at its address create state.
            let expected = self.cookie(ni, remote, h.spi_i);
            let presented = match p.first() {
                Some(Payload::Notify(n)) if n.notify_type == notify::COOKIE => {
                    Some(n.data.as_slice())
                }
                _ => None,
            };
            if presented != Some(expected.as_slice()) {
                self.stateless_reply(local, remote, h.spi_i, notify::COOKIE, expected);
                return;
            }
        }
        let t = &self.tunnels[tunnel];
        let tunnel = t.id;
        let (reply, algorithms) = match proposal::choose_ike(sa_payload, &t.ike_proposals, ke.group)
        {
            IkeChoice::Chosen { reply, algorithms } => (reply, algorithms),
            IkeChoice::WrongGroup(g) => {
                // RFC 7296 1.2: INVALID_KE_PAYLOAD carries the group we want.
                self.stateless_reply(
                    local,
                    remote,
                    h.spi_i,
                    notify::INVALID_KE_PAYLOAD,
                    g.iana().to_be_bytes().to_vec(),
                );
                return;
            }
            IkeChoice::Nothing => {
                let reason = FailureReason::NoProposalChosen {
                    sa: SaKind::Ike,
                    ours: proposal::describe_ike_config(&t.ike_proposals),
                    theirs: Some(proposal::describe_offer(sa_payload)),
                };
                self.stateless_reply(
                    local,
                    remote,
                    h.spi_i,
                    notify::NO_PROPOSAL_CHOSEN,
                    Vec::new(),
                );
                self.out
                    .events
                    .push_back(Event::NegotiationFailed { tunnel, reason });
                return;
            }
        };
        let spi_r = self.alloc_ike_spi();
        let id = self.alloc_id();
        let mut ctx = ctx!(self, now);
        let req = SaInitRequest { ke, ni };
        match IkeSa::respond_sa_init(
            &mut ctx, id, tunnel, spi_r, local, remote, msg, datagram, req, reply, algorithms,
        ) {
            Ok(sa) => {
                self.by_spi.insert(spi_r, id);
                self.by_peer_spi.insert((remote, h.spi_i), id);
                self.peer_key_of.insert(id, (remote, h.spi_i));
                self.sas.insert(id, sa);
            }
            Err((n, reason)) => {
                self.stateless_reply(local, remote, h.spi_i, n, Vec::new());
                self.out
                    .events
                    .push_back(Event::NegotiationFailed { tunnel, reason });
            }
        }
    }

    /// Bookkeeping after an SA handled something: INITIAL_CONTACT, the
    /// events of an SA just established, duplicates, removal.
    fn after(&mut self, now: Instant, id: IkeSaId) {
        self.take_rekeyed(now);
        let Some(sa) = self.sas.get_mut(&id) else {
            return;
        };
        if let Some(deferred) = sa.deferred_down.take() {
            self.deferred_downs.push(deferred);
        }
        let mut stale = Vec::new();
        if std::mem::take(&mut sa.initial_contact_received) {
            // RFC 7296 2.4: the peer has no other IKE SA with us. Only SAs
            // that were already up when this one started are stale; an SA
            // negotiated in parallel (both ends initiating) is not.
            let (tunnel, created) = (sa.tunnel, sa.created);
            stale = self
                .sas
                .iter()
                .filter(|(other, s)| {
                    **other != id
                        && s.tunnel == tunnel
                        && s.is_established()
                        && s.established_at.is_some_and(|t| t < created)
                })
                .map(|(other, _)| *other)
                .collect();
        }
        let just_established = self
            .sas
            .get(&id)
            .is_some_and(|s| s.is_established() && !s.announced && !self.held.contains(&id));
        if just_established {
            // The new SA's events come before the stale ones' downs, so
            // the daemon installs its Child SA before removing theirs.
            self.settle(now, id, &stale);
        }
        for other in stale {
            if let Some(s) = self.sas.get_mut(&other) {
                let mut ctx = ctx!(self, now);
                s.drop_silently(&mut ctx, DownReason::InitialContact);
            }
            self.reap_one(now, other);
        }
        // Whatever happened may decide an SA held back.
        let held: Vec<IkeSaId> = self.held.iter().copied().collect();
        for h in held {
            self.settle(now, h, &[]);
        }
        self.release_deferred_downs();
        self.reap_one(now, id);
    }

    /// Adds the IKE SAs rekeys made and moves Child SAs between them; the
    /// daemon hears of each IKE SA that took over a tunnel's Child SAs.
    fn take_rekeyed(&mut self, now: Instant) {
        for r in std::mem::take(&mut self.out.rekeyed) {
            let mut sa = r.sa;
            let id = self.alloc_id();
            sa.id = id;
            let our_spi = match sa.role {
                Role::Initiator => sa.spi_i,
                Role::Responder => sa.spi_r,
            };
            self.by_spi.insert(our_spi, id);
            if r.took_children {
                let event = self.rekey_event(r.old, &sa);
                self.out.events.extend(event);
            }
            self.sas.insert(id, sa);
        }
        for spi in std::mem::take(&mut self.out.losers) {
            if let Some(sa) = self.by_spi.get(&spi).and_then(|id| self.sas.get_mut(id)) {
                sa.superseded = Some(now + crate::sa::SUPERSEDED_GRACE);
            }
        }
        for a in std::mem::take(&mut self.out.adopt) {
            let from = a.from;
            // The target went meanwhile: the Child SAs stay where they were.
            let to = self
                .by_spi
                .get(&a.to_spi)
                .copied()
                .filter(|to| self.sas.get(to).is_some_and(IkeSa::is_established))
                .unwrap_or(from);
            if let Some(sa) = self.sas.get_mut(&to) {
                let mut ctx = ctx!(self, now);
                sa.adopt(&mut ctx, a);
            }
            if let Some(sa) = self.sas.get(&to).filter(|_| to != from) {
                let event = self.rekey_event(from, sa);
                self.out.events.extend(event);
            }
        }
    }

    fn rekey_event(&self, old: IkeSaId, new: &IkeSa) -> Option<Event> {
        let t = find_tunnel(&self.tunnels, new.tunnel)?;
        Some(Event::IkeSaRekeyed {
            old,
            new: new.id,
            tunnel: new.tunnel,
            info: new.info_now(t)?,
        })
    }

    /// Reports the SAs the peer deleted in favour of one of ours once that
    /// one is up (as duplicates of it) or has failed (as deleted by the
    /// peer, which they then were).
    fn release_deferred_downs(&mut self) {
        if self.deferred_downs.is_empty() {
            return;
        }
        let sas = &self.sas;
        let out = &mut self.out;
        self.deferred_downs.retain_mut(|(winner, events)| {
            let kept = match sas.get(winner) {
                Some(s) if s.is_awaiting_auth_response() => return true,
                Some(s) if s.is_established() && !s.announced => return true,
                Some(s) if s.is_established() => Some(*winner),
                _ => None,
            };
            for mut e in events.drain(..) {
                if let (
                    Some(kept),
                    Event::ChildSaDown { reason, .. } | Event::IkeSaDown { reason, .. },
                ) = (kept, &mut e)
                {
                    *reason = DownReason::Duplicate { kept };
                }
                out.events.push_back(e);
            }
            false
        });
    }

    /// Decides the fate of an established SA the daemon has not heard of:
    /// report it (deleting the duplicates it beats), delete it unreported
    /// (it is a duplicate of a better one), or hold it back while one of
    /// ours that would beat it awaits its IKE_AUTH response, until that
    /// one's first retransmission. SAs in `ignore` (stale by
    /// INITIAL_CONTACT) are no rivals.
    fn settle(&mut self, now: Instant, id: IkeSaId, ignore: &[IkeSaId]) {
        let Some(sa) = self.sas.get(&id) else {
            self.held.remove(&id);
            return;
        };
        if !sa.is_established() || sa.announced {
            self.held.remove(&id);
            return;
        }
        // The rivals: the same tunnel with the same peer, the other role
        // (one ours, one the peer's; two of the same role are no
        // simultaneous initiation).
        let mut beaten_by = None;
        let mut wait_for = None;
        let mut overdue = None;
        let mut beats = Vec::new();
        let rank = sa.collision_rank();
        if self.resolve_duplicates {
            for (other, s) in &self.sas {
                if *other == id
                    || ignore.contains(other)
                    || s.tunnel != sa.tunnel
                    || s.remote.ip() != sa.remote.ip()
                    || s.role == sa.role
                {
                    continue;
                }
                let theirs = s.collision_rank();
                if s.is_established() {
                    match theirs.cmp(&rank) {
                        std::cmp::Ordering::Less => beaten_by = Some((*other, theirs)),
                        std::cmp::Ordering::Greater => beats.push(*other),
                        // Identical SPIs (never in practice): both stay.
                        std::cmp::Ordering::Equal => {}
                    }
                } else if s.is_awaiting_auth_response() && theirs < rank {
                    if s.auth_request_retransmitted() {
                        overdue = Some(*other);
                    } else {
                        wait_for = Some(*other);
                    }
                }
            }
        }
        if let Some((kept, kept_rank)) = beaten_by {
            self.held.remove(&id);
            let why = why_kept(kept_rank, rank);
            self.out.log(
                Some(id),
                format!(
                    "IKE SA {id} duplicates IKE SA {kept} (both peers initiated at once): \
                     deleting it and keeping IKE SA {kept}, {why}"
                ),
            );
            if let Some(sa) = self.sas.get_mut(&id) {
                let mut ctx = ctx!(self, now);
                // Never reported: no events, only the DELETE.
                sa.delete_established(&mut ctx, DownReason::Duplicate { kept });
            }
            return;
        }
        if let Some(ours) = wait_for {
            if self.held.insert(id) {
                self.out.log(
                    Some(id),
                    format!(
                        "IKE SA {id} is up while IKE SA {ours} (both peers initiated at once) \
                         awaits its IKE_AUTH response: holding it back until that one is up \
                         (then deleting it), fails, or goes unanswered for a retransmission \
                         timeout"
                    ),
                );
            }
            return;
        }
        if let Some(ours) = overdue {
            self.out.log(
                Some(id),
                format!(
                    "IKE SA {id} is up and IKE SA {ours}, which would replace it, got no \
                     IKE_AUTH response within a retransmission timeout: reporting IKE SA {id} \
                     now (IKE SA {ours}, if it does come up, replaces it then)"
                ),
            );
        }
        self.held.remove(&id);
        if let Some(sa) = self.sas.get_mut(&id) {
            sa.announced = true;
            self.out.events.extend(sa.pending_up.drain(..));
        }
        for loser in beats {
            self.held.remove(&loser);
            let Some(s) = self.sas.get_mut(&loser) else {
                continue;
            };
            let why = why_kept(rank, s.collision_rank());
            self.out.log(
                Some(loser),
                format!(
                    "IKE SA {loser} duplicates IKE SA {id} (both peers initiated at once): \
                     deleting it and keeping IKE SA {id}, {why}"
                ),
            );
            let mut ctx = ctx!(self, now);
            s.delete_established(&mut ctx, DownReason::Duplicate { kept: id });
        }
    }

    fn reap_one(&mut self, now: Instant, id: IkeSaId) {
        let gone = self.sas.get(&id).is_some_and(|s| s.is_gone(now));
        if !gone {
            return;
        }
        if let Some(sa) = self.sas.remove(&id) {
            let our_spi = match sa.role {
                Role::Initiator => sa.spi_i,
                Role::Responder => sa.spi_r,
            };
            self.by_spi.remove(&our_spi);
            for spi in sa.child_spis_in() {
                self.child_spis.remove(&spi);
            }
        }
        if let Some(key) = self.peer_key_of.remove(&id) {
            self.by_peer_spi.remove(&key);
        }
    }

    /// Runs every timer due at `now`: retransmissions, give-ups, half-open
    /// expiry, the end of an error grace period.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<IkeSaId> = self
            .sas
            .iter()
            .filter(|(_, s)| s.next_deadline().is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(sa) = self.sas.get_mut(&id) {
                let mut ctx = ctx!(self, now);
                sa.handle_timeout(&mut ctx);
            }
            self.after(now, id);
        }
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sas.values().filter_map(IkeSa::next_deadline).min()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// The next log line (see [`EndpointOptions::log_messages`]).
    pub fn poll_log(&mut self) -> Option<LogLine> {
        self.out.log.pop_front()
    }

    /// Deletes an IKE SA and its Child SAs: the Down events come at once,
    /// the INFORMATIONAL DELETE is retransmitted until answered.
    pub fn delete_ike_sa(&mut self, now: Instant, id: IkeSaId) {
        self.request(now, id, Request::DeleteIke);
    }

    /// Deletes one Child SA by its inbound SPI.
    pub fn delete_child_sa(&mut self, now: Instant, id: IkeSaId, spi_in: u32) {
        self.request(now, id, Request::DeleteChild { spi_in });
    }

    /// Sends an empty INFORMATIONAL request; the answer gives
    /// [`Event::PeerAlive`], silence ends in [`Event::IkeSaDown`].
    pub fn send_liveness_check(&mut self, now: Instant, id: IkeSaId) {
        self.request(now, id, Request::Liveness);
    }

    /// Rekeys the Child SA with this inbound SPI now (the dataplane's soft
    /// volume lifetime, `lifetime kilobytes`); time lifetimes need no call.
    pub fn rekey_child_sa(&mut self, now: Instant, spi_in: u32) {
        if let Some(id) = self.owner_of_child(spi_in) {
            self.timers_now(now, id, |sa| sa.rekey_now(now, Some(spi_in)));
        }
    }

    /// Rekeys IKE SA `id` now (it also happens by itself at 80-90% of the
    /// tunnel's IKE SA lifetime).
    pub fn rekey_ike_sa(&mut self, now: Instant, id: IkeSaId) {
        self.timers_now(now, id, |sa| sa.rekey_now(now, None));
    }

    /// Ends the Child SA with this inbound SPI as at its hard lifetime (the
    /// dataplane's hard volume lifetime, or its sequence numbers running
    /// out): replaced if a rekey has its successor ready, else its IKE SA
    /// is deleted and the tunnel can be negotiated anew.
    pub fn expire_child_sa(&mut self, now: Instant, spi_in: u32) {
        if let Some(id) = self.owner_of_child(spi_in) {
            self.timers_now(now, id, |sa| sa.expire_child(now, spi_in));
        }
    }

    /// Changes a timer of SA `id` with `f` and runs its timers at once.
    fn timers_now(&mut self, now: Instant, id: IkeSaId, f: impl FnOnce(&mut IkeSa)) {
        if let Some(sa) = self.sas.get_mut(&id) {
            f(sa);
            let mut ctx = ctx!(self, now);
            sa.handle_timeout(&mut ctx);
        }
        self.after(now, id);
    }

    /// ESP traffic came in on the tunnel's Child SAs: the peer is alive,
    /// and dead peer detection waits its interval again from `now`.
    pub fn traffic_received(&mut self, now: Instant, tunnel: TunnelId) {
        for sa in self.sas.values_mut().filter(|s| s.tunnel == tunnel) {
            sa.heard_from_peer(now);
        }
    }

    fn owner_of_child(&self, spi_in: u32) -> Option<IkeSaId> {
        self.sas
            .iter()
            .find(|(_, s)| s.child_spis_in().contains(&spi_in))
            .map(|(id, _)| *id)
    }

    fn request(&mut self, now: Instant, id: IkeSaId, req: Request) {
        if let Some(sa) = self.sas.get_mut(&id) {
            let mut ctx = ctx!(self, now);
            sa.request(&mut ctx, req);
        }
        self.after(now, id);
    }

    /// Every IKE SA, for `show ikev2 session [detail]`.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sas
            .values()
            .filter_map(|sa| sa.session(&self.tunnels))
            .collect()
    }

    /// How many IKE SAs (in any state) this endpoint holds.
    pub fn ike_sa_count(&self) -> usize {
        self.sas.len()
    }

    /// The keys protecting IKE SA `id`'s messages, with its SPIs and
    /// algorithms: what Wireshark's `ikev2_decryption_table` takes. Known
    /// from the end of IKE_SA_INIT until the SA is gone; `None` otherwise.
    ///
    /// For `--save-keys` only: this hands out secrets, and the caller must
    /// warn that whoever reads the file can decrypt the IKE exchanges
    /// (identities, traffic selectors, the Child SA proposals; the ESP keys
    /// themselves are derived from SK_d, which is not exported).
    pub fn export_ike_keys(&self, id: IkeSaId) -> Option<IkeKeyExport> {
        self.sas.get(&id)?.key_export()
    }

    /// Fragments IKE SA `id` holds for reassembly, and their bytes, so that
    /// tests can check the bounds hold (at most 64 fragments a message and
    /// 64 KiB an SA). Not for the daemon.
    #[doc(hidden)]
    pub fn reassembly_for_tests(&self, id: IkeSaId) -> Option<(usize, usize)> {
        Some(self.sas.get(&id)?.reassembly_held())
    }

    /// The IKE SA keys (SK_d, SK_a*, SK_e*, SK_p*), so that tests can check
    /// both ends derived the same. Not for the daemon.
    #[doc(hidden)]
    pub fn ike_keys_for_tests(&self, id: IkeSaId) -> Option<&IkeKeys> {
        self.sas.get(&id)?.ike_keys()
    }
}

/// Why the simultaneous-initiation rule keeps the SA ranked `kept` over the
/// one ranked `lost` (see [`IkeSa::collision_rank`]), for the log.
fn why_kept(kept: (u64, u64), lost: (u64, u64)) -> String {
    if kept.0 == lost.0 {
        format!(
            "whose responder SPI {:016X} is lower than this one's {:016X} \
             (their initiator SPIs are the same)",
            kept.1, lost.1
        )
    } else {
        format!(
            "whose initiator SPI {:016X} is lower than this one's {:016X}",
            kept.0, lost.0
        )
    }
}

/// A random IKE SPI: not zero, and not one of ours already (`taken`).
pub(crate) fn fresh_ike_spi(
    rng: &mut impl rand_core::RngCore,
    taken: &HashMap<u64, IkeSaId>,
) -> u64 {
    loop {
        let spi = rng.next_u64();
        if spi != 0 && !taken.contains_key(&spi) {
            return spi;
        }
    }
}
