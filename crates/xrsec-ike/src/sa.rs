//! One IKE SA: its state machine (RFC 7296 1.2-1.4, 2.1-2.2), its message ID
//! windows, retransmissions and response cache.
//!
//! The state is named after what it waits for ([`State`]) and is taken by
//! value on every message, so a handler either returns the next state or the
//! one it started from: an impossible transition does not compile.
//!
//! Invariants:
//! - nothing received changes an SA before it is authenticated: encrypted
//!   messages whose integrity check fails are dropped without a trace, and
//!   errors in the unauthenticated IKE_SA_INIT response only end the
//!   negotiation after a grace period in which a genuine answer still wins
//!   (RFC 7296 2.21.1);
//! - a request is processed once: its response is cached and re-sent for an
//!   identical retransmission (RFC 7296 2.1), any other message ID is dropped
//!   (window size 1, RFC 7296 2.3);
//! - at most one request of ours is in flight; later ones wait in a queue;
//! - IKE fragmentation (RFC 7383) is used only when both ends offered it in
//!   IKE_SA_INIT. A fragment is stored only once its own ICV verifies, only
//!   for the message the window admits (the next request, or the response
//!   to ours), and within [`MAX_FRAGMENTS`] a message and
//!   [`MAX_REASSEMBLY_BYTES`] an SA, for at most the reassembly timeout; a
//!   reassembled message is then handled as if it came in one SK payload.
//!   A fragmented request or response is kept, retransmitted and cached
//!   as the list of all its fragments.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;
use xrsec_crypto::{
    derive_child_keys, derive_ike_keys, skeyseed, DhPrivate, EspSuite, IkeCrypto, IkeKeys, Role,
};

use xrsec_pki::hash::{encode_hash_algorithms, parse_hash_algorithms, DEFAULT_HASH_PREFERENCE};
use xrsec_pki::HashAlgorithm;

use crate::auth::{psk_auth, signed_octets, verify_psk_auth, SignedOctets, SHARED_KEY_MIC};
use crate::config::{Identity, LocalAuth, RemoteAuth, TunnelConfig, TunnelId};
use crate::endpoint::{EndpointOptions, Outbox};
use crate::event::{
    ChildInfo, ChildSa, DownReason, Event, FailureReason, IkeKeyExport, IkeSaId, IkeSaInfo,
    Oversized, SaKind, SessionInfo,
};
use crate::natd::{self, NatStatus};
use crate::proposal::{self, IkeAlgorithms};
use crate::wire::{
    self, notify, AuthPayload, CertPayload, CertReqPayload, DeletePayload, Encrypted, ExchangeType,
    Flags, FragmentInfo, Header, IdPayload, IdType, KePayload, Message, NotifyPayload, Payload,
    SaPayload, TrafficSelector, TsPayload, HEADER_LEN,
};

/// The first payload of one kind in a chain, by reference: RFC 7296 allows
/// each of these once per message, and a second copy is ignored.
macro_rules! find_payload {
    ($payloads:expr, $kind:ident) => {
        $payloads.iter().find_map(|x| match x {
            Payload::$kind(v) => Some(v),
            _ => None,
        })
    };
}

mod ike_rekey;
mod rekey;

pub(crate) use ike_rekey::{Adoption, Rekeyed, SUPERSEDED_GRACE};

pub(crate) use rekey::{Lifetimes, PeerRekey, Retiring};

/// Protocol IDs in Delete payloads (RFC 7296 3.11).
const PROTO_IKE: u8 = 1;
const PROTO_ESP: u8 = 3;
/// Our nonces: 32 bytes, at least half the key size of every PRF we have
/// (RFC 7296 2.10).
pub(crate) const NONCE_LEN: usize = 32;

/// What a handler can reach besides its own SA.
pub(crate) struct Ctx<'a, R> {
    pub now: Instant,
    pub rng: &'a mut R,
    pub opts: &'a EndpointOptions,
    pub tunnels: &'a [TunnelConfig],
    pub out: &'a mut Outbox,
    pub child_spis: &'a mut std::collections::HashSet<u32>,
    /// Our IKE SPIs in use (a rekeyed IKE SA takes a new one).
    pub ike_spis: &'a std::collections::HashMap<u64, IkeSaId>,
    /// The wall-clock time to check certificates' validity at.
    pub system_time: Option<std::time::SystemTime>,
    /// Another IKE SA with this SA's peer is established: our IKE_AUTH then
    /// carries no INITIAL_CONTACT (RFC 7296 2.4: it asserts this is the only
    /// IKE SA between us, and the peer would drop the other one).
    pub peer_has_other_sa: bool,
    /// This SA was reported up, and one of ours for the same tunnel that
    /// beats it by the simultaneous-initiation rule awaits its IKE_AUTH
    /// response: a DELETE from the peer is then most likely the peer
    /// resolving the duplicate, and the daemon should hear of it only after
    /// the winner is up (or failed).
    pub defer_peer_delete: Option<IkeSaId>,
}

impl<R: CryptoRngCore> Ctx<'_, R> {
    /// A random inbound ESP SPI, unique among ours, outside 1..=255 (reserved
    /// by IANA, RFC 4303 2.1) and never 0.
    pub fn alloc_child_spi(&mut self) -> u32 {
        loop {
            let spi = self.rng.next_u32();
            if spi > 255 && self.child_spis.insert(spi) {
                return spi;
            }
        }
    }

    pub fn nonce(&mut self) -> Vec<u8> {
        let mut n = vec![0u8; NONCE_LEN];
        self.rng.fill_bytes(&mut n);
        n
    }
}

impl<R> Ctx<'_, R> {
    /// Records a line for [`crate::Endpoint::poll_log`] (bounded; the
    /// oldest lines go first when nobody polls).
    pub fn log(&mut self, id: Option<IkeSaId>, text: impl FnOnce() -> String) {
        if self.opts.log_messages {
            self.out.log(id, text());
        }
    }

    fn send(&mut self, local: SocketAddr, remote: SocketAddr, payload: Vec<u8>) {
        self.out.transmit(local, remote, payload);
    }

    fn event(&mut self, e: Event) {
        self.out.events.push_back(e);
    }
}

/// The keys and SK payload protection of an IKE SA.
pub(crate) struct Keyed {
    pub algs: IkeAlgorithms,
    pub keys: IkeKeys,
    send: IkeCrypto,
    recv: IkeCrypto,
}

/// How an encrypted message fared.
enum Opened {
    /// No SK payload, or one we cannot open: drop silently.
    Drop,
    /// Integrity verified, but the inner chain does not parse.
    Malformed(wire::WireError),
    Payloads(Vec<Payload>),
}

impl Keyed {
    fn new(algs: IkeAlgorithms, keys: IkeKeys, role: Role) -> Option<Self> {
        let (send, recv) = IkeCrypto::pair(&keys, algs.encr, algs.integ, role).ok()?;
        Some(Self {
            algs,
            keys,
            send,
            recv,
        })
    }

    /// One SK message: `plain` is the inner payload chain, `first_inner`
    /// its first payload's type.
    fn seal(
        &mut self,
        rng: &mut impl CryptoRngCore,
        header: &Header,
        first_inner: u8,
        plain: &[u8],
    ) -> Option<Vec<u8>> {
        let sealed_len = self.send.sealed_len(plain.len());
        let mut out = wire::emit_encrypted_prefix(header, first_inner, sealed_len);
        let sealed = self.send.seal(rng, &out, plain).ok()?;
        out.extend_from_slice(&sealed);
        Some(out)
    }

    /// RFC 7383 2.5: the inner payload chain cut into pieces of at most
    /// `room` bytes, each sent in an IKE message of its own with the same
    /// header, in an SKF payload numbered from 1 that is encrypted and
    /// integrity-protected on its own (its own IV, padding and ICV); only
    /// fragment 1 names the first inner payload.
    fn seal_fragments(
        &mut self,
        rng: &mut impl CryptoRngCore,
        header: &Header,
        first_inner: u8,
        plain: &[u8],
        room: usize,
    ) -> Option<Vec<Vec<u8>>> {
        let total = u16::try_from(plain.len().div_ceil(room.max(1))).ok()?;
        let mut out = Vec::with_capacity(usize::from(total));
        for (piece, number) in plain.chunks(room.max(1)).zip(1..=total) {
            let info = FragmentInfo { number, total };
            let sealed_len = self.send.sealed_len(piece.len());
            let mut datagram = wire::emit_fragment_prefix(header, first_inner, info, sealed_len);
            let sealed = self.send.seal(rng, &datagram, piece).ok()?;
            datagram.extend_from_slice(&sealed);
            out.push(datagram);
        }
        Some(out)
    }

    fn open(&self, datagram: &[u8], msg: &Message) -> Opened {
        let Some(enc) = msg.encrypted else {
            return Opened::Drop;
        };
        // A fragment is opened on arrival and its message reassembled
        // before any handler runs (`IkeSa::collect_fragment`).
        if enc.fragment.is_some() {
            return Opened::Drop;
        }
        // RFC 7296 2.21.2 / 3.14: a message whose ICV does not verify is
        // discarded, with no answer and no change of state.
        match self.recv.open(enc.aad(datagram), enc.sealed(datagram)) {
            Err(_) => Opened::Drop,
            Ok(plain) => match wire::parse_payloads(enc.first_inner, &plain) {
                Ok(p) => Opened::Payloads(p),
                Err(e) => Opened::Malformed(e),
            },
        }
    }
}

/// The largest piece of an inner payload chain whose SKF message fits
/// `datagram_room` bytes (the fragment size less the IP and UDP headers and
/// any non-ESP marker): the IKE header, the SKF header, and the IV, padding,
/// Pad Length and ICV of the negotiated cipher come off (RFC 7383 2.5.1).
fn fragment_room(crypto: &IkeCrypto, datagram_room: usize) -> usize {
    let sealed_room = datagram_room.saturating_sub(HEADER_LEN + SKF_HEADER_LEN);
    let mut room = sealed_room.saturating_sub(crypto.max_overhead());
    // CBC pads to a whole block: up to a block more may still fit.
    while crypto.sealed_len(room + 1) <= sealed_room {
        room += 1;
    }
    room.max(MIN_FRAGMENT_PLAINTEXT)
}

fn send_all<R>(ctx: &mut Ctx<'_, R>, local: SocketAddr, remote: SocketAddr, datagrams: &[Vec<u8>]) {
    for d in datagrams {
        ctx.send(local, remote, d.clone());
    }
}

/// RFC 7383 2.6 reassembly limits. A message announcing more fragments is
/// refused before anything is decrypted, and only fragments whose ICV
/// verifies are stored, so that a flood of fragments costs at most one
/// integrity check each and never more memory than this per IKE SA.
pub(crate) const MAX_FRAGMENTS: u16 = 64;
/// Decrypted fragments (and the datagram of fragment 1) one IKE SA holds at
/// most, both directions together. A message this large would need over 50
/// fragments of 1280 bytes; certificate chains need a handful.
pub(crate) const MAX_REASSEMBLY_BYTES: usize = 64 * 1024;
/// However small `fragment_size` is set, a fragment carries this much.
const MIN_FRAGMENT_PLAINTEXT: usize = 64;
/// The SKF payload's generic header, Fragment Number and Total Fragments.
const SKF_HEADER_LEN: usize = wire::GENERIC_HEADER_LEN + 4;
const UDP_HEADER_LEN: usize = 8;

/// The authenticated fragments of one message received so far.
struct Partial {
    message_id: u32,
    exchange: ExchangeType,
    total: u16,
    /// Decrypted contents, by Fragment Number - 1.
    pieces: Vec<Option<Vec<u8>>>,
    received: u16,
    /// Fragment 1 as received: its SKF Next Payload starts the inner chain,
    /// and it stands for the whole request in the response cache (RFC 7383
    /// 2.6.1).
    first: Option<(Vec<u8>, u8)>,
    bytes: usize,
    expires: Instant,
}

impl Partial {
    fn is_of(&self, h: &Header) -> bool {
        self.message_id == h.message_id && self.exchange == h.exchange
    }
}

/// Reassembly of this SA's incoming fragmented messages: at most one
/// request (the next the window admits) and one response (to our request
/// in flight).
#[derive(Default)]
struct Reassembly {
    request: Option<Partial>,
    response: Option<Partial>,
}

impl Reassembly {
    fn slots(&self) -> impl Iterator<Item = &Partial> {
        self.request.iter().chain(self.response.iter())
    }

    fn bytes(&self) -> usize {
        self.slots().map(|p| p.bytes).sum()
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.slots().map(|p| p.expires).min()
    }

    fn expire(&mut self, now: Instant) {
        for slot in [&mut self.request, &mut self.response] {
            if slot.as_ref().is_some_and(|p| now >= p.expires) {
                *slot = None;
            }
        }
    }
}

/// A message put back together from its fragments, waiting for the handler
/// that opens it.
struct Reassembled {
    first_inner: u8,
    plaintext: Vec<u8>,
    fragments: u16,
}

/// A Child SA of an established IKE SA.
#[derive(Clone, Debug)]
pub(crate) struct Child {
    pub spi_in: u32,
    pub spi_out: u32,
    pub suite: EspSuite,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub udp_encap: bool,
    /// When it was created, when it is rekeyed (the soft lifetime, with
    /// jitter) and when it must be gone (the hard lifetime).
    pub times: Lifetimes,
    /// Our CREATE_CHILD_SA rekeying it is queued or in flight.
    pub rekeying: bool,
    /// The peer rekeyed it: we answered its CREATE_CHILD_SA, which created
    /// the Child SA named here (RFC 7296 2.8.1 compares the nonces).
    pub rekeyed_by_peer: Option<PeerRekey>,
    /// Made by the peer's rekey and not sending yet: its outbound half is
    /// switched on when the peer deletes the SA it replaces (the peer has
    /// our response by then, so its inbound half is in).
    pub outbound_pending: bool,
}

/// Initiator, IKE_SA_INIT sent.
pub(crate) struct ExpectSaInitResponse {
    dh: DhPrivate,
    ni: Vec<u8>,
    offer: SaPayload,
    cookie: Option<Vec<u8>>,
    cookie_tries: u8,
    ke_retried: bool,
    /// An unauthenticated error answer, acted on at the deadline unless a
    /// real response arrives first (RFC 7296 2.21.1).
    pending_error: Option<(Instant, FailureReason)>,
}

/// Initiator, IKE_AUTH sent.
pub(crate) struct ExpectAuthResponse {
    keyed: Keyed,
    ni: Vec<u8>,
    nr: Vec<u8>,
    /// RealMessage2: the responder's IKE_SA_INIT response as received.
    sa_init_response: Vec<u8>,
    esp_offer: SaPayload,
    child_spi: u32,
}

/// Responder, IKE_SA_INIT answered: half-open.
pub(crate) struct ExpectAuthRequest {
    keyed: Keyed,
    ni: Vec<u8>,
    nr: Vec<u8>,
    /// RealMessage1: the initiator's IKE_SA_INIT request as received.
    sa_init_request: Vec<u8>,
    /// RealMessage2: our response as sent.
    sa_init_response: Vec<u8>,
    /// The initiator's SIGNATURE_HASH_ALGORITHMS, if it sent one.
    peer_hashes: Option<Vec<HashAlgorithm>>,
}

/// Both sides authenticated.
pub(crate) struct Established {
    keyed: Keyed,
    remote_identity: Identity,
    children: Vec<Child>,
    /// Rekeyed Child SAs whose inbound half still takes the packets in
    /// flight for a few seconds; their down event comes at `until`.
    retiring: Vec<Retiring>,
    /// Our Child SA rekey in flight.
    our_rekey: Option<rekey::OurChildRekey>,
    /// Our IKE SA rekey queued or in flight.
    ike_rekeying: bool,
    our_ike_rekey: Option<ike_rekey::OurIkeRekey>,
    /// The peer's IKE SA rekey answered while ours was in flight (RFC 7296
    /// 2.8.2 decides between the two when our answer comes).
    peer_ike_rekey: Option<ike_rekey::PeerIkeRekey>,
    /// The IKE SA's own soft and hard lifetimes.
    times: Lifetimes,
    /// The last time an authenticated message (or, as the daemon reports
    /// it, ESP traffic) came from the peer: dead peer detection counts
    /// from here.
    last_heard: Instant,
    dpd: Option<crate::config::Dpd>,
}

pub(crate) enum State {
    ExpectSaInitResponse(Box<ExpectSaInitResponse>),
    ExpectAuthResponse(Box<ExpectAuthResponse>),
    ExpectAuthRequest(Box<ExpectAuthRequest>),
    Established(Box<Established>),
    /// Our DELETE of the IKE SA is in flight; events were already given.
    Deleting(Box<Established>),
    /// Over. Kept only until `expires` to re-send a cached error response.
    Closed,
}

/// A request of ours after IKE_AUTH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Liveness,
    DeleteIke,
    DeleteChild {
        spi_in: u32,
    },
    /// CREATE_CHILD_SA with REKEY_SA for the Child SA with this inbound SPI.
    RekeyChild {
        spi_in: u32,
    },
    /// CREATE_CHILD_SA rekeying the IKE SA itself.
    RekeyIke,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InFlightKind {
    SaInit,
    Auth,
    After(Request),
}

struct InFlight {
    message_id: u32,
    kind: InFlightKind,
    /// The request: one datagram, or every fragment of it (all of them go
    /// again on each retransmission, RFC 7383 2.6.1).
    datagrams: Vec<Vec<u8>>,
    /// Sent whole though larger than the fragment size: the hint for a
    /// give-up.
    oversized: Option<Oversized>,
    transmissions: u32,
    next_at: Instant,
    /// Retransmission stopped while an unauthenticated error is pending.
    suspended: bool,
    /// Dead peer detection's schedule for a liveness check: a fixed
    /// interval and a number of transmissions, instead of the back-off.
    fixed: Option<(Duration, u32)>,
}

struct CachedResponse {
    message_id: u32,
    /// The request as received; of a fragmented one, fragment 1 (RFC 7383
    /// 2.6.1: only its retransmission is answered).
    request: Vec<u8>,
    /// The response: one datagram, or every fragment of it.
    response: Vec<Vec<u8>>,
}

pub(crate) struct IkeSa {
    pub id: IkeSaId,
    /// The tunnel, by id rather than by position, so that adding or
    /// removing other tunnels leaves it alone.
    pub tunnel: TunnelId,
    pub role: Role,
    pub spi_i: u64,
    pub spi_r: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub nat: NatStatus,
    pub created: Instant,
    pub established_at: Option<Instant>,
    /// The peer sent INITIAL_CONTACT in IKE_AUTH; the endpoint acts on it.
    pub initial_contact_received: bool,
    /// The daemon was told this SA is up. An SA established in the same
    /// moment as another for its tunnel may be deleted before it is: then it
    /// never gets an event at all, neither up nor down.
    pub announced: bool,
    /// The events of the establishment (`IkeSaUp`, then `ChildSaUp` or the
    /// Child SA's `NegotiationFailed`), which the endpoint publishes once it
    /// has decided this SA is kept.
    pub pending_up: Vec<Event>,
    /// Replaced by a rekeyed IKE SA (or waiting, in a rekey collision, to
    /// learn whether it is): its Child SAs live in the new one, it starts
    /// no exchange of its own, and its end is reported to nobody. The time
    /// is when we delete it ourselves if the peer has not by then.
    pub superseded: Option<Instant>,
    /// Down events held back (see [`Ctx::defer_peer_delete`]) until the
    /// IKE SA named here is up or failed; the endpoint takes them.
    pub deferred_down: Option<(IkeSaId, Vec<Event>)>,
    /// Where the request being handled came from (local, remote).
    request_from: Option<(SocketAddr, SocketAddr)>,
    next_request_id: u32,
    in_flight: Option<InFlight>,
    queued: VecDeque<Request>,
    next_peer_request_id: u32,
    last_response: Option<CachedResponse>,
    /// Both ends offered IKE fragmentation in IKE_SA_INIT (RFC 7383 2.3).
    fragmentation: bool,
    reassembly: Reassembly,
    /// Set between the last fragment's arrival and the handler's open.
    reassembled: Option<Reassembled>,
    /// Half-open or closed SAs vanish at this time.
    expires: Option<Instant>,
    state: State,
}

fn header(
    sa_spi_i: u64,
    spi_r: u64,
    exchange: ExchangeType,
    role: Role,
    response: bool,
    message_id: u32,
) -> Header {
    Header {
        spi_i: sa_spi_i,
        spi_r,
        next_payload: 0,
        major: 2,
        minor: 0,
        exchange,
        // RFC 7296 3.1: the Initiator bit is set by the original initiator in
        // every message it sends; the Version bit is never set by us.
        flags: Flags {
            initiator: role == Role::Initiator,
            version: false,
            response,
        },
        message_id,
        length: 0,
    }
}

pub(crate) fn notify_payload(t: u16, data: Vec<u8>) -> Payload {
    Payload::Notify(NotifyPayload::new(t, data))
}

pub(crate) fn notifies(payloads: &[Payload], t: u16) -> impl Iterator<Item = &NotifyPayload> {
    payloads.iter().filter_map(move |p| match p {
        Payload::Notify(n) if n.notify_type == t => Some(n),
        _ => None,
    })
}

fn has_notify(payloads: &[Payload], t: u16) -> bool {
    notifies(payloads, t).next().is_some()
}

/// The first error notify in a message (RFC 7296 3.10.1: types below 16384).
pub(crate) fn error_notify(payloads: &[Payload]) -> Option<u16> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if notify::is_error(n.notify_type) => Some(n.notify_type),
        _ => None,
    })
}

pub(crate) fn id_payload(id: &Identity) -> IdPayload {
    match id {
        Identity::Ipv4(a) => IdPayload {
            id_type: IdType::Ipv4Addr,
            data: a.octets().to_vec(),
        },
        Identity::Fqdn(n) => IdPayload {
            id_type: IdType::Fqdn,
            data: n.as_bytes().to_vec(),
        },
        Identity::Other { id_type, data } => IdPayload {
            id_type: IdType::from(*id_type),
            data: data.clone(),
        },
    }
}

pub(crate) fn identity_of(id: &IdPayload) -> Identity {
    match id.id_type {
        IdType::Ipv4Addr => match <[u8; 4]>::try_from(id.data.as_slice()) {
            Ok(b) => Identity::Ipv4(Ipv4Addr::from(b)),
            Err(_) => Identity::Other {
                id_type: 1,
                data: id.data.clone(),
            },
        },
        IdType::Fqdn => match std::str::from_utf8(&id.data) {
            Ok(s) => Identity::Fqdn(s.to_string()),
            Err(_) => Identity::Other {
                id_type: 2,
                data: id.data.clone(),
            },
        },
        other => Identity::Other {
            id_type: u8::from(other),
            data: id.data.clone(),
        },
    }
}

/// The intersection of two selectors, if any (RFC 7296 2.9).
fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    let (IpAddr::V4(a0), IpAddr::V4(a1), IpAddr::V4(b0), IpAddr::V4(b1)) =
        (a.start, a.end, b.start, b.end)
    else {
        return None;
    };
    let start = u32::from(a0).max(u32::from(b0));
    let end = u32::from(a1).min(u32::from(b1));
    let ip_protocol = match (a.ip_protocol, b.ip_protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let start_port = a.start_port.max(b.start_port);
    let end_port = a.end_port.min(b.end_port);
    (start <= end && start_port <= end_port).then(|| TrafficSelector {
        ip_protocol,
        start_port,
        end_port,
        start: IpAddr::V4(Ipv4Addr::from(start)),
        end: IpAddr::V4(Ipv4Addr::from(end)),
    })
}

/// RFC 7296 2.9: the responder narrows the initiator's selectors to the
/// subset its policy allows. Our policy for a tunnel interface is all IPv4
/// traffic; IPv6 selectors have nothing in common with it.
fn narrow(theirs: &[TrafficSelector], ours: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for t in theirs {
        for o in ours {
            if let Some(x) = intersect(t, o) {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
    }
    out
}

/// Our selectors for both sides of a tunnel interface: 0.0.0.0/0.
fn vti_selectors() -> Vec<TrafficSelector> {
    vec![TrafficSelector::ipv4_any()]
}

fn describe_ts(ts: &[TrafficSelector]) -> String {
    let v: Vec<String> = ts
        .iter()
        .map(|t| {
            format!(
                "{}-{} proto {} ports {}-{}",
                t.start, t.end, t.ip_protocol, t.start_port, t.end_port
            )
        })
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn backoff(opts: &EndpointOptions, transmissions: u32) -> Duration {
    // After the n-th transmission wait initial * 2^(n-1).
    opts.retransmit_initial
        .saturating_mul(1u32 << transmissions.saturating_sub(1).min(16))
}

fn exchange_name(kind: InFlightKind) -> &'static str {
    match kind {
        InFlightKind::SaInit => "IKE_SA_INIT",
        InFlightKind::Auth => "IKE_AUTH",
        InFlightKind::After(Request::Liveness) => "INFORMATIONAL (liveness)",
        InFlightKind::After(Request::RekeyChild { .. }) => "CREATE_CHILD_SA (Child SA rekey)",
        InFlightKind::After(Request::RekeyIke) => "CREATE_CHILD_SA (IKE SA rekey)",
        InFlightKind::After(_) => "INFORMATIONAL (delete)",
    }
}

/// The parts of a received IKE_SA_INIT request the responder needs.
pub(crate) struct SaInitRequest<'a> {
    pub ke: &'a KePayload,
    pub ni: &'a [u8],
}

impl IkeSa {
    fn base(
        id: IkeSaId,
        tunnel: TunnelId,
        role: Role,
        spi_i: u64,
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
    ) -> Self {
        Self {
            id,
            tunnel,
            role,
            spi_i,
            spi_r: 0,
            local,
            remote,
            nat: NatStatus::default(),
            created: now,
            established_at: None,
            initial_contact_received: false,
            announced: false,
            superseded: None,
            pending_up: Vec::new(),
            deferred_down: None,
            request_from: None,
            next_request_id: 0,
            in_flight: None,
            queued: VecDeque::new(),
            next_peer_request_id: 0,
            last_response: None,
            fragmentation: false,
            reassembly: Reassembly::default(),
            reassembled: None,
            expires: None,
            state: State::Closed,
        }
    }

    /// Starts an initiator: builds and sends IKE_SA_INIT.
    pub(crate) fn initiate<R: CryptoRngCore>(
        ctx: &mut Ctx<'_, R>,
        id: IkeSaId,
        tunnel: TunnelId,
        spi_i: u64,
    ) -> Option<Self> {
        let t = find_tunnel(ctx.tunnels, tunnel)?;
        let group = t.preferred_group()?;
        let local = SocketAddr::new(IpAddr::V4(t.local), ctx.opts.ike_port);
        let remote = SocketAddr::new(IpAddr::V4(t.remote), ctx.opts.ike_port);
        let dh = DhPrivate::generate(group, ctx.rng);
        let ni = ctx.nonce();
        let offer = proposal::ike_offer(&t.ike_proposals);
        let state = ExpectSaInitResponse {
            dh,
            ni,
            offer,
            cookie: None,
            cookie_tries: 0,
            ke_retried: false,
            pending_error: None,
        };
        let mut sa = Self::base(id, tunnel, Role::Initiator, spi_i, local, remote, ctx.now);
        sa.send_sa_init(ctx, &state);
        sa.state = State::ExpectSaInitResponse(Box::new(state));
        Some(sa)
    }

    fn send_sa_init<R: CryptoRngCore>(&mut self, ctx: &mut Ctx<'_, R>, s: &ExpectSaInitResponse) {
        let mut payloads = Vec::new();
        // RFC 7296 2.6: the COOKIE notify MUST be the first payload of the
        // retried request, everything else unchanged.
        if let Some(c) = &s.cookie {
            payloads.push(notify_payload(notify::COOKIE, c.clone()));
        }
        payloads.push(Payload::Sa(s.offer.clone()));
        payloads.push(Payload::Ke(KePayload {
            group: s.dh.group().iana(),
            data: s.dh.public_ke_data().to_vec(),
        }));
        payloads.push(Payload::Nonce(s.ni.clone()));
        // RFC 7296 2.23: SPIr is zero in the request's NAT detection hashes.
        payloads.push(notify_payload(
            notify::NAT_DETECTION_SOURCE_IP,
            natd::natd_hash(self.spi_i, 0, source_for_natd(ctx.opts, self.local)).to_vec(),
        ));
        payloads.push(notify_payload(
            notify::NAT_DETECTION_DESTINATION_IP,
            natd::natd_hash(self.spi_i, 0, self.remote).to_vec(),
        ));
        // RFC 7383 2.3: support is announced in the IKE_SA_INIT request.
        if ctx.opts.fragmentation {
            payloads.push(notify_payload(
                notify::IKEV2_FRAGMENTATION_SUPPORTED,
                Vec::new(),
            ));
        }
        if ctx.opts.signature_hash_algorithms
            && find_tunnel(ctx.tunnels, self.tunnel).is_some_and(TunnelConfig::uses_certificates)
        {
            payloads.push(hash_algorithms_notify());
        }
        let h = header(
            self.spi_i,
            0,
            ExchangeType::IkeSaInit,
            Role::Initiator,
            false,
            0,
        );
        ctx.log(Some(self.id), || {
            format!("sent {}", wire::summarize(&h, &payloads))
        });
        let datagram = Message::emit_plain(&h, &payloads);
        self.start_request(ctx, 0, InFlightKind::SaInit, vec![datagram]);
    }

    fn start_request<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        message_id: u32,
        kind: InFlightKind,
        datagrams: Vec<Vec<u8>>,
    ) {
        send_all(ctx, self.local, self.remote, &datagrams);
        let oversized = match datagrams.as_slice() {
            [whole] if kind != InFlightKind::SaInit => self.oversized(ctx.opts, whole.len()),
            _ => None,
        };
        self.in_flight = Some(InFlight {
            message_id,
            kind,
            datagrams,
            oversized,
            transmissions: 1,
            next_at: ctx.now + backoff(ctx.opts, 1),
            suspended: false,
            fixed: None,
        });
    }

    /// Creates a half-open responder SA from an acceptable IKE_SA_INIT
    /// request and sends the response. `Err` carries a notify to answer
    /// statelessly instead (e.g. a bad KE value).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn respond_sa_init<R: CryptoRngCore>(
        ctx: &mut Ctx<'_, R>,
        id: IkeSaId,
        tunnel: TunnelId,
        spi_r: u64,
        local: SocketAddr,
        remote: SocketAddr,
        request: &Message,
        datagram: &[u8],
        req: SaInitRequest<'_>,
        reply: wire::Proposal,
        algs: IkeAlgorithms,
    ) -> Result<Self, (u16, FailureReason)> {
        let spi_i = request.header.spi_i;
        let dh = DhPrivate::generate(algs.dh, ctx.rng);
        // RFC 5903 9 / RFC 8031 2: the peer's value is validated by agree().
        let shared = dh.agree(&req.ke.data).map_err(|e| {
            (
                notify::INVALID_SYNTAX,
                FailureReason::KeyExchange {
                    detail: e.to_string(),
                },
            )
        })?;
        let nr = ctx.nonce();
        let skeyseed = skeyseed(algs.prf, req.ni, &nr, &shared);
        let keys = derive_ike_keys(
            algs.prf,
            algs.encr,
            algs.integ,
            &skeyseed,
            req.ni,
            &nr,
            &spi_i.to_be_bytes(),
            &spi_r.to_be_bytes(),
        );
        let keyed = Keyed::new(algs, keys, Role::Responder).ok_or((
            notify::NO_PROPOSAL_CHOSEN,
            FailureReason::InvalidProposalReply {
                detail: "unusable keys",
            },
        ))?;
        let src: Vec<&[u8]> = notifies(&request.payloads, notify::NAT_DETECTION_SOURCE_IP)
            .map(|n| n.data.as_slice())
            .collect();
        let dst: Vec<&[u8]> = notifies(&request.payloads, notify::NAT_DETECTION_DESTINATION_IP)
            .map(|n| n.data.as_slice())
            .collect();
        let nat = natd::detect(spi_i, 0, &src, &dst, remote, local)
            .map(|n| natd::forced(n, ctx.opts.force_udp_encap));
        let mut payloads = vec![
            Payload::Sa(SaPayload {
                proposals: vec![reply],
            }),
            Payload::Ke(KePayload {
                group: algs.dh.iana(),
                data: dh.public_ke_data().to_vec(),
            }),
            Payload::Nonce(nr.clone()),
        ];
        // RFC 7383 2.3: a responder that supports fragmentation says so in
        // its response to a request that offered it; only then is it used.
        let fragmentation = ctx.opts.fragmentation
            && has_notify(&request.payloads, notify::IKEV2_FRAGMENTATION_SUPPORTED);
        // RFC 7296 2.23: NAT detection notifies are answered only when the
        // request carried them.
        if nat.is_some() {
            payloads.push(notify_payload(
                notify::NAT_DETECTION_SOURCE_IP,
                natd::natd_hash(spi_i, spi_r, source_for_natd(ctx.opts, local)).to_vec(),
            ));
            payloads.push(notify_payload(
                notify::NAT_DETECTION_DESTINATION_IP,
                natd::natd_hash(spi_i, spi_r, remote).to_vec(),
            ));
        }
        if fragmentation {
            payloads.push(notify_payload(
                notify::IKEV2_FRAGMENTATION_SUPPORTED,
                Vec::new(),
            ));
        }
        // The tunnel is refined by the peer's identity in IKE_AUTH: every
        // tunnel this peer may turn out to be counts here.
        let candidates: Vec<&TunnelConfig> = ctx
            .tunnels
            .iter()
            .filter(|t| t.id == tunnel || covers(t, local, remote))
            .collect();
        if ctx.opts.signature_hash_algorithms && candidates.iter().any(|t| t.uses_certificates()) {
            payloads.push(hash_algorithms_notify());
        }
        // RFC 7296 3.7: the responder asks for certificates in its
        // IKE_SA_INIT response.
        if let Some(req) = certreq_payload(&candidates) {
            payloads.push(req);
        }
        let h = header(
            spi_i,
            spi_r,
            ExchangeType::IkeSaInit,
            Role::Responder,
            true,
            0,
        );
        ctx.log(Some(id), || {
            format!("sent {}", wire::summarize(&h, &payloads))
        });
        let response = Message::emit_plain(&h, &payloads);
        let mut sa = Self::base(id, tunnel, Role::Responder, spi_i, local, remote, ctx.now);
        sa.spi_r = spi_r;
        sa.nat = nat.unwrap_or_default();
        sa.fragmentation = fragmentation;
        sa.expires = Some(ctx.now + ctx.opts.half_open_timeout);
        sa.respond(ctx, 0, datagram, vec![response.clone()]);
        sa.state = State::ExpectAuthRequest(Box::new(ExpectAuthRequest {
            keyed,
            ni: req.ni.to_vec(),
            nr,
            sa_init_request: datagram.to_vec(),
            sa_init_response: response,
            peer_hashes: peer_hashes(&request.payloads),
        }));
        Ok(sa)
    }

    /// Sends (and caches) the response to request `message_id`: one
    /// datagram or all its fragments. `request` is the request's datagram,
    /// or its fragment 1.
    fn respond<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        message_id: u32,
        request: &[u8],
        response: Vec<Vec<u8>>,
    ) {
        // RFC 7296 2.11: a response goes to the address and port the
        // request came from.
        let (local, remote) = self.request_from.unwrap_or((self.local, self.remote));
        send_all(ctx, local, remote, &response);
        self.next_peer_request_id = message_id.wrapping_add(1);
        self.last_response = Some(CachedResponse {
            message_id,
            request: request.to_vec(),
            response,
        });
    }

    /// The tunnel's current configuration. Every SA not yet deleting has
    /// one: the endpoint deletes a tunnel's SAs before it forgets or
    /// replaces the tunnel.
    fn tunnel<'t, R>(&self, ctx: &Ctx<'t, R>) -> Option<&'t TunnelConfig> {
        find_tunnel(ctx.tunnels, self.tunnel)
    }

    /// Whether the SA is over and can be forgotten.
    pub(crate) fn is_gone(&self, now: Instant) -> bool {
        matches!(self.state, State::Closed) && self.expires.is_none_or(|e| now >= e)
    }

    pub(crate) fn is_half_open(&self) -> bool {
        matches!(self.state, State::ExpectAuthRequest(_))
    }

    pub(crate) fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    /// Ours and being negotiated, or established in either role: another
    /// `initiate` for the tunnel has nothing to do. A half-open SA of the
    /// peer's does not count: it is unauthenticated, and when both ends
    /// initiate at once the duplicate is resolved at establishment.
    pub(crate) fn covers_tunnel(&self) -> bool {
        match self.state {
            State::Established(_) => true,
            State::ExpectSaInitResponse(_) | State::ExpectAuthResponse(_) => {
                self.role == Role::Initiator
            }
            _ => false,
        }
    }

    /// Ours, IKE_SA_INIT done, IKE_AUTH answer awaited: authenticated soon
    /// unless the peer refuses us.
    pub(crate) fn is_awaiting_auth_response(&self) -> bool {
        matches!(self.state, State::ExpectAuthResponse(_))
    }

    /// What the simultaneous-initiation rule compares (the lower is kept):
    /// the SPIs, which both ends see alike whatever a NAT does to addresses
    /// and ports. SPIi first, as both ends know it from the IKE_SA_INIT
    /// request on; SPIr only breaks a tie.
    pub(crate) fn collision_rank(&self) -> (u64, u64) {
        (self.spi_i, self.spi_r)
    }

    /// Ours, awaiting its IKE_AUTH response, and already retransmitted:
    /// the first wait went unanswered, so the request or its answer was
    /// lost, or never gets through (a NAT in front of the peer drops what
    /// we send to a port it has no mapping for).
    pub(crate) fn auth_request_retransmitted(&self) -> bool {
        self.is_awaiting_auth_response()
            && self.in_flight.as_ref().is_some_and(|f| f.transmissions > 1)
    }

    pub(crate) fn child_spis_in(&self) -> Vec<u32> {
        match &self.state {
            State::Established(s) | State::Deleting(s) => s
                .children
                .iter()
                .map(|c| c.spi_in)
                .chain(s.retiring.iter().map(|r| r.spi_in))
                .collect(),
            State::ExpectAuthResponse(s) => vec![s.child_spi],
            _ => Vec::new(),
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut d = self.expires;
        let mut consider = |t: Instant| d = Some(d.map_or(t, |x: Instant| x.min(t)));
        if let Some(t) = self.reassembly.next_expiry() {
            consider(t);
        }
        if let Some(f) = &self.in_flight {
            if !f.suspended {
                consider(f.next_at);
            }
        }
        if let State::ExpectSaInitResponse(s) = &self.state {
            if let Some((at, _)) = &s.pending_error {
                consider(*at);
            }
        }
        if let State::Established(est) = &self.state {
            if let Some(t) =
                est.next_deadline(self.dpd_due(est), self.superseded, self.rekeys_blocked(est))
            {
                consider(t);
            }
        }
        d
    }

    /// Closes the SA: it keeps only its cached response until `linger`.
    fn close(&mut self, now: Instant, linger: Option<Duration>) -> State {
        self.in_flight = None;
        self.queued.clear();
        self.reassembly = Reassembly::default();
        self.expires = linger.map(|l| now + l);
        State::Closed
    }

    /// Ends a negotiation whose tunnel is no longer configured, without a
    /// word: nobody is left to tell. The endpoint deletes a tunnel's SAs
    /// before it forgets the tunnel, so this is a safety net only.
    fn orphaned<R>(&mut self, ctx: &mut Ctx<'_, R>, state: State) -> State {
        for spi in self.child_spis_in_state(&state) {
            ctx.child_spis.remove(&spi);
        }
        ctx.log(Some(self.id), || {
            format!(
                "IKE SA {} dropped: {} is no longer configured",
                self.id, self.tunnel
            )
        });
        self.close(ctx.now, None)
    }

    fn fail<R>(&mut self, ctx: &mut Ctx<'_, R>, reason: FailureReason) -> State {
        let tunnel = self.tunnel;
        ctx.event(Event::NegotiationFailed { tunnel, reason });
        self.close(ctx.now, None)
    }

    /// Events for an established SA going down: its Child SAs first. An SA
    /// the daemon never heard of goes without a word.
    fn down_events<R>(&mut self, ctx: &mut Ctx<'_, R>, est: &Established, reason: DownReason) {
        let tunnel = self.tunnel;
        if !self.announced || self.superseded.is_some() {
            for c in &est.children {
                ctx.child_spis.remove(&c.spi_in);
            }
            for r in &est.retiring {
                ctx.child_spis.remove(&r.spi_in);
            }
            self.pending_up.clear();
            ctx.log(Some(self.id), || {
                format!(
                    "IKE SA {} ended before it was reported up: {reason}",
                    self.id
                )
            });
            return;
        }
        let mut events = Vec::with_capacity(est.children.len() + est.retiring.len() + 1);
        let halves = est
            .retiring
            .iter()
            .map(|r| (r.spi_in, r.spi_out))
            .chain(est.children.iter().map(|c| (c.spi_in, c.spi_out)));
        for (spi_in, spi_out) in halves {
            ctx.child_spis.remove(&spi_in);
            events.push(Event::ChildSaDown {
                id: self.id,
                tunnel,
                spi_in,
                spi_out,
                reason: reason.clone(),
            });
        }
        match ctx.defer_peer_delete {
            Some(rival) if reason == DownReason::PeerDelete => {
                ctx.log(Some(self.id), || {
                    format!(
                        "IKE SA {} deleted by the peer while IKE SA {rival} awaits its IKE_AUTH \
                         response: reporting it down once that one's fate is known",
                        self.id
                    )
                });
                events.push(Event::IkeSaDown {
                    id: self.id,
                    tunnel,
                    reason,
                });
                self.deferred_down = Some((rival, events));
            }
            _ => {
                events.push(Event::IkeSaDown {
                    id: self.id,
                    tunnel,
                    reason,
                });
                ctx.out.events.extend(events);
            }
        }
    }

    // ---- timers -------------------------------------------------------

    pub(crate) fn handle_timeout<R: CryptoRngCore>(&mut self, ctx: &mut Ctx<'_, R>) {
        let now = ctx.now;
        self.reassembly.expire(now);
        let state = std::mem::replace(&mut self.state, State::Closed);
        self.state = match state {
            State::ExpectSaInitResponse(mut s) => match s.pending_error.take() {
                Some((at, reason)) if now >= at => self.fail(ctx, reason),
                pending => {
                    s.pending_error = pending;
                    self.retransmit(ctx, State::ExpectSaInitResponse(s))
                }
            },
            State::ExpectAuthRequest(s) => {
                if self.expires.is_some_and(|e| now >= e) {
                    // RFC 7296 2.6 hints: half-open SAs time out.
                    let peer = self.remote;
                    self.fail(ctx, FailureReason::HalfOpenTimeout { peer })
                } else {
                    State::ExpectAuthRequest(s)
                }
            }
            State::Closed => State::Closed,
            State::Established(est) => match self.retransmit(ctx, State::Established(est)) {
                State::Established(est) => self.lifetime_timers(ctx, est),
                other => other,
            },
            other => self.retransmit(ctx, other),
        };
    }

    fn retransmit<R: CryptoRngCore>(&mut self, ctx: &mut Ctx<'_, R>, state: State) -> State {
        let now = ctx.now;
        let Some(f) = self.in_flight.as_mut() else {
            return state;
        };
        if f.suspended || now < f.next_at {
            return state;
        }
        let limit = f.fixed.map_or(ctx.opts.retransmit_limit, |(_, n)| n);
        if f.transmissions >= limit {
            let exchange = exchange_name(f.kind);
            let tries = f.transmissions;
            let kind = f.kind;
            let oversized = f.oversized;
            let reason = match f.fixed {
                Some((interval, checks)) => DownReason::DeadPeer { checks, interval },
                None => DownReason::NoResponse { exchange, tries },
            };
            return match state {
                State::Established(est) => {
                    if let DownReason::DeadPeer { .. } = reason {
                        ctx.log(Some(self.id), || format!("IKE SA {}: {reason}", self.id));
                    }
                    self.down_events(ctx, &est, reason);
                    self.close(now, None)
                }
                State::Deleting(_) => self.close(now, None),
                _ => {
                    let _ = kind;
                    for spi in self.child_spis_in_state(&state) {
                        ctx.child_spis.remove(&spi);
                    }
                    self.fail(
                        ctx,
                        FailureReason::NoResponse {
                            exchange,
                            tries,
                            oversized,
                        },
                    )
                }
            };
        }
        // RFC 7296 2.1: retransmit the identical message, with back-off.
        f.transmissions += 1;
        f.next_at = now
            + f.fixed
                .map_or_else(|| backoff(ctx.opts, f.transmissions), |(i, _)| i);
        // RFC 7383 2.6.1: every fragment goes again, not only lost ones.
        let datagrams = f.datagrams.clone();
        send_all(ctx, self.local, self.remote, &datagrams);
        state
    }

    fn child_spis_in_state(&self, state: &State) -> Vec<u32> {
        match state {
            State::ExpectAuthResponse(s) => vec![s.child_spi],
            _ => Vec::new(),
        }
    }

    // ---- messages -----------------------------------------------------

    /// A datagram for this SA (SPIs already matched by the endpoint).
    pub(crate) fn handle_message<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        msg: &Message,
    ) {
        let h = &msg.header;
        let fragment = msg.encrypted.and_then(|e| e.fragment);
        if !h.flags.response {
            // RFC 7296 2.1: a retransmitted request gets the cached response
            // again and is not processed a second time.
            if let Some(c) = &self.last_response {
                if c.message_id == h.message_id && c.request == datagram {
                    send_all(ctx, local, remote, &c.response);
                    return;
                }
                // RFC 7383 2.6.1: of a retransmitted fragmented request only
                // fragment 1 (the cached datagram) brings the response again.
                if c.message_id == h.message_id && fragment.is_some() {
                    return;
                }
            }
            // RFC 7296 2.3: window size 1, only the next request is accepted.
            if h.message_id != self.next_peer_request_id {
                let expected = self.next_peer_request_id;
                ctx.log(Some(self.id), || {
                    format!(
                        "ignored {}: message ID outside the window (expected {expected})",
                        msg.summary()
                    )
                });
                return;
            }
        } else {
            match &self.in_flight {
                Some(f) if f.message_id == h.message_id => {}
                _ => {
                    ctx.log(Some(self.id), || {
                        format!("ignored {}: no such request outstanding", msg.summary())
                    });
                    return;
                }
            }
        }
        let (Some(encrypted), Some(info)) = (msg.encrypted, fragment) else {
            self.dispatch(ctx, local, remote, datagram, msg);
            return;
        };
        let Some((first, whole)) = self.collect_fragment(ctx, datagram, msg, encrypted, info)
        else {
            return;
        };
        // Fragment 1 stands for the message: its header (the same in every
        // fragment) and any unencrypted payloads (RFC 7383 2.5.3: they go
        // in fragment 1); the inner payloads are the reassembled ones.
        let Ok(first_msg) = Message::parse(&first) else {
            return;
        };
        self.reassembled = Some(whole);
        self.dispatch(ctx, local, remote, &first, &first_msg);
        self.reassembled = None;
    }

    /// RFC 7383 2.6: takes one fragment of the message the window admits
    /// (the peer's next request, or the response to ours) and, once all
    /// are in, returns fragment 1's datagram and the reassembled message.
    /// Only fragments whose ICV verifies are kept; what is cheap to check
    /// (count, duplicates, a stale Total Fragments) is checked first.
    fn collect_fragment<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        datagram: &[u8],
        msg: &Message,
        encrypted: Encrypted,
        info: FragmentInfo,
    ) -> Option<(Vec<u8>, Reassembled)> {
        let id = self.id;
        let h = &msg.header;
        let dropped = |ctx: &mut Ctx<'_, R>, why: &str| {
            ctx.log(Some(id), || format!("dropped {}: {why}", msg.summary()));
        };
        if !self.fragmentation {
            dropped(ctx, "IKE fragmentation was not negotiated (RFC 7383 2.3)");
            return None;
        }
        // RFC 7383 2.5: IKE_SA_INIT is never fragmented.
        if h.exchange == ExchangeType::IkeSaInit {
            dropped(ctx, "IKE_SA_INIT cannot be fragmented");
            return None;
        }
        if info.total > MAX_FRAGMENTS {
            dropped(
                ctx,
                &format!("more than {MAX_FRAGMENTS} fragments in one message"),
            );
            return None;
        }
        self.prune_reassembly(ctx.now);
        let response = h.flags.response;
        let slot = if response {
            &self.reassembly.response
        } else {
            &self.reassembly.request
        };
        if let Some(p) = slot.as_ref().filter(|p| p.is_of(h)) {
            // RFC 7383 2.6: fewer fragments than before is an older cut of
            // the message, whose fragments are discarded.
            if info.total < p.total {
                dropped(ctx, "Total Fragments lower than in earlier fragments");
                return None;
            }
            let index = usize::from(info.number - 1);
            if info.total == p.total && p.pieces.get(index).is_some_and(Option::is_some) {
                dropped(ctx, "duplicate fragment");
                return None;
            }
        }
        let Some(keyed) = keyed_of(&self.state) else {
            dropped(ctx, "no keys to check it with");
            return None;
        };
        // RFC 7383 2.6: each fragment is authenticated on its own, and one
        // whose ICV does not verify is discarded without a trace.
        let Ok(plain) = keyed
            .recv
            .open(encrypted.aad(datagram), encrypted.sealed(datagram))
        else {
            dropped(ctx, "integrity check failed");
            return None;
        };
        let held_elsewhere = if response {
            self.reassembly.request.as_ref()
        } else {
            self.reassembly.response.as_ref()
        }
        .map_or(0, |p| p.bytes);
        let slot = if response {
            &mut self.reassembly.response
        } else {
            &mut self.reassembly.request
        };
        // RFC 7383 2.6: more fragments than before means the sender cut the
        // message anew; reassembly starts over with this fragment.
        if !slot
            .as_ref()
            .is_some_and(|p| p.is_of(h) && p.total == info.total)
        {
            *slot = Some(Partial {
                message_id: h.message_id,
                exchange: h.exchange,
                total: info.total,
                pieces: vec![None; usize::from(info.total)],
                received: 0,
                first: None,
                bytes: 0,
                expires: ctx.now + ctx.opts.reassembly_timeout,
            });
        }
        let p = slot.as_mut()?;
        let added = plain.len() + if info.number == 1 { datagram.len() } else { 0 };
        if held_elsewhere + p.bytes + added > MAX_REASSEMBLY_BYTES {
            *slot = None;
            dropped(
                ctx,
                &format!(
                    "the message outgrows the {MAX_REASSEMBLY_BYTES} bytes of reassembly an IKE SA \
                     may hold; its fragments are discarded"
                ),
            );
            return None;
        }
        ctx.log(Some(id), || format!("received {}", msg.summary()));
        p.bytes += added;
        if info.number == 1 {
            p.first = Some((datagram.to_vec(), encrypted.first_inner));
        }
        p.pieces[usize::from(info.number - 1)] = Some(plain);
        p.received += 1;
        if p.received < p.total {
            return None;
        }
        let p = slot.take()?;
        let (first, first_inner) = p.first?;
        let mut plaintext = Vec::with_capacity(p.bytes);
        for piece in p.pieces.into_iter().flatten() {
            plaintext.extend_from_slice(&piece);
        }
        Some((
            first,
            Reassembled {
                first_inner,
                plaintext,
                fragments: p.total,
            },
        ))
    }

    /// Drops reassemblies that timed out or that the window no longer
    /// admits (a request already answered, a response no longer awaited).
    fn prune_reassembly(&mut self, now: Instant) {
        self.reassembly.expire(now);
        if self
            .reassembly
            .request
            .as_ref()
            .is_some_and(|p| p.message_id != self.next_peer_request_id)
        {
            self.reassembly.request = None;
        }
        let awaited = self.in_flight.as_ref().map(|f| f.message_id);
        if self
            .reassembly
            .response
            .as_ref()
            .is_some_and(|p| Some(p.message_id) != awaited)
        {
            self.reassembly.response = None;
        }
    }

    /// Fragments held for reassembly and their bytes, for tests.
    pub(crate) fn reassembly_held(&self) -> (usize, usize) {
        let fragments = self
            .reassembly
            .slots()
            .map(|p| usize::from(p.received))
            .sum();
        (fragments, self.reassembly.bytes())
    }

    /// What this SA's datagrams carry besides the IKE message: the IP and
    /// UDP headers, and the non-ESP marker on the NAT-T port (RFC 3948 2.2).
    fn framing(&self, opts: &EndpointOptions) -> usize {
        let ip = match self.remote.ip() {
            IpAddr::V4(_) => 20,
            IpAddr::V6(_) => 40,
        };
        let marker = if self.local.port() == opts.natt_port {
            wire::NON_ESP_MARKER.len()
        } else {
            0
        };
        ip + UDP_HEADER_LEN + marker
    }

    /// An IKE message of `len` bytes sent whole, if it is larger than the
    /// fragment size because fragmentation was not negotiated.
    fn oversized(&self, opts: &EndpointOptions, len: usize) -> Option<Oversized> {
        let bytes = self.framing(opts) + len;
        (!self.fragmentation && bytes > usize::from(opts.fragment_size)).then_some(Oversized {
            bytes,
            fragment_size: opts.fragment_size,
            disabled_locally: !opts.fragmentation,
        })
    }

    /// Seals a message of this SA, logging its summary (never its
    /// contents): into one datagram, or into fragments when it would take
    /// an IP datagram larger than the fragment size and both ends offered
    /// fragmentation (RFC 7383 2.5: only then, and only encrypted
    /// messages).
    fn seal_logged<R: CryptoRngCore>(
        &self,
        ctx: &mut Ctx<'_, R>,
        keyed: &mut Keyed,
        header: &Header,
        payloads: &[Payload],
    ) -> Option<Vec<Vec<u8>>> {
        let mut plain = Vec::new();
        let first_inner = wire::emit_payloads(payloads, &mut plain);
        let whole = HEADER_LEN + wire::GENERIC_HEADER_LEN + keyed.send.sealed_len(plain.len());
        let framing = self.framing(ctx.opts);
        let limit = usize::from(ctx.opts.fragment_size);
        if self.fragmentation && framing + whole > limit {
            let room = fragment_room(&keyed.send, limit.saturating_sub(framing));
            let fragments = keyed.seal_fragments(ctx.rng, header, first_inner, &plain, room)?;
            ctx.log(Some(self.id), || {
                format!(
                    "sent {} in {} fragments",
                    wire::summarize(header, payloads),
                    fragments.len()
                )
            });
            return Some(fragments);
        }
        if let Some(o) = self.oversized(ctx.opts, whole) {
            // Said whatever `log_messages` is: it explains a failure.
            ctx.out.log(
                Some(self.id),
                format!(
                    "{} {} {} takes an IP datagram of {} bytes, more than the fragment size {}, \
                     and goes unfragmented because {}: the IP layer fragments it, and a path \
                     that drops IP fragments loses it",
                    header.exchange.name(),
                    if header.flags.response {
                        "response"
                    } else {
                        "request"
                    },
                    header.message_id,
                    o.bytes,
                    o.fragment_size,
                    o.why_whole()
                ),
            );
        }
        ctx.log(Some(self.id), || {
            format!("sent {}", wire::summarize(header, payloads))
        });
        keyed
            .seal(ctx.rng, header, first_inner, &plain)
            .map(|d| vec![d])
    }

    /// Opens a message of this SA (or takes the one just reassembled from
    /// fragments), logging what it held or why it was dropped.
    fn open_logged<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        keyed: &Keyed,
        datagram: &[u8],
        msg: &Message,
    ) -> Opened {
        let reassembled = self.reassembled.take();
        let fragments = reassembled.as_ref().map(|r| r.fragments);
        let opened = match reassembled {
            Some(r) => match wire::parse_payloads(r.first_inner, &r.plaintext) {
                Ok(p) => Opened::Payloads(p),
                Err(e) => Opened::Malformed(e),
            },
            None => keyed.open(datagram, msg),
        };
        let id = Some(self.id);
        let from = fragments.map_or(String::new(), |n| {
            format!(" (reassembled from {n} fragments)")
        });
        match &opened {
            Opened::Payloads(p) => ctx.log(id, || {
                format!("received {}{from}", wire::summarize(&msg.header, p))
            }),
            Opened::Malformed(e) => ctx.log(id, || {
                format!(
                    "received {}{from}: inner payloads malformed: {e}",
                    msg.summary()
                )
            }),
            Opened::Drop => ctx.log(id, || {
                format!("dropped {}: integrity check failed", msg.summary())
            }),
        }
        opened
    }

    /// Hands a whole message (one datagram, or reassembled) to the state.
    fn dispatch<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        msg: &Message,
    ) {
        let h = &msg.header;
        self.request_from = Some((local, remote));
        let state = std::mem::replace(&mut self.state, State::Closed);
        let response = h.flags.response;
        self.state = match state {
            State::ExpectSaInitResponse(s) if response && h.exchange == ExchangeType::IkeSaInit => {
                ctx.log(Some(self.id), || format!("received {}", msg.summary()));
                self.on_sa_init_response(ctx, *s, local, remote, datagram, msg)
            }
            State::ExpectAuthResponse(s) if response && h.exchange == ExchangeType::IkeAuth => {
                self.on_auth_response(ctx, s, local, remote, datagram, msg)
            }
            State::ExpectAuthRequest(s) if !response && h.exchange == ExchangeType::IkeAuth => {
                self.on_auth_request(ctx, s, local, remote, datagram, msg)
            }
            State::Established(s) if !response => {
                self.on_request(ctx, s, local, remote, datagram, msg)
            }
            State::Established(s) => self.on_response(ctx, s, local, remote, datagram, msg),
            State::Deleting(mut s) if response => {
                match self.open_logged(ctx, &s.keyed, datagram, msg) {
                    Opened::Payloads(_) | Opened::Malformed(_) => {
                        let answered = self.in_flight.take();
                        if answered
                            .is_some_and(|f| f.kind == InFlightKind::After(Request::DeleteIke))
                        {
                            self.close(ctx.now, None)
                        } else {
                            // An earlier request answered: now the DELETE goes.
                            self.next_request_id = self.next_request_id.wrapping_add(1);
                            self.start_next_request(ctx, &mut s);
                            State::Deleting(s)
                        }
                    }
                    Opened::Drop => State::Deleting(s),
                }
            }
            State::Deleting(mut s) => {
                // A request crossing our DELETE: answer it empty. If it is
                // the peer's own DELETE of this IKE SA, both ends agree the
                // SA is gone: stop retransmitting ours (RFC 7296 2.25.2
                // treats crossing deletes the same way for Child SAs).
                let mut peer_deletes = false;
                if let Opened::Payloads(p) = self.open_logged(ctx, &s.keyed, datagram, msg) {
                    let h2 = header(
                        self.spi_i,
                        self.spi_r,
                        h.exchange,
                        self.role,
                        true,
                        h.message_id,
                    );
                    if let Some(resp) = self.seal_logged(ctx, &mut s.keyed, &h2, &[]) {
                        self.respond(ctx, h.message_id, datagram, resp);
                    }
                    peer_deletes = p
                        .iter()
                        .any(|x| matches!(x, Payload::Delete(d) if d.protocol == PROTO_IKE));
                }
                if peer_deletes {
                    let linger = ctx.opts.half_open_timeout;
                    self.close(ctx.now, Some(linger))
                } else {
                    State::Deleting(s)
                }
            }
            other => other,
        };
    }

    fn on_sa_init_response<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        mut s: ExpectSaInitResponse,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        msg: &Message,
    ) -> State {
        let Some(t) = self.tunnel(ctx) else {
            return self.orphaned(ctx, State::ExpectSaInitResponse(Box::new(s)));
        };
        let p = &msg.payloads;
        // RFC 7296 2.6: answer a COOKIE request by retrying with the cookie.
        if let Some(c) = notifies(p, notify::COOKIE).next() {
            if s.cookie_tries < 2 && !c.data.is_empty() && c.data.len() <= 64 {
                s.cookie_tries += 1;
                s.cookie = Some(c.data.clone());
                self.send_sa_init(ctx, &s);
            }
            return State::ExpectSaInitResponse(Box::new(s));
        }
        // RFC 7296 1.2: INVALID_KE_PAYLOAD names the group the responder
        // wants; retry once with it if we offer it.
        if let Some(n) = notifies(p, notify::INVALID_KE_PAYLOAD).next() {
            let requested = <[u8; 2]>::try_from(n.data.as_slice())
                .map(u16::from_be_bytes)
                .unwrap_or(0);
            let group = xrsec_crypto::DhGroup::from_iana(requested)
                .filter(|g| t.offers_group(*g) && *g != s.dh.group());
            match group {
                Some(g) if !s.ke_retried => {
                    s.ke_retried = true;
                    s.dh = DhPrivate::generate(g, ctx.rng);
                    s.pending_error = None;
                    self.send_sa_init(ctx, &s);
                }
                _ => self.unauthenticated_error(
                    ctx,
                    &mut s,
                    FailureReason::InvalidKePayload { requested },
                ),
            }
            return State::ExpectSaInitResponse(Box::new(s));
        }
        if let Some(t) = error_notify(p) {
            let reason = if t == notify::NO_PROPOSAL_CHOSEN {
                FailureReason::NoProposalChosen {
                    sa: SaKind::Ike,
                    ours: proposal::describe_offer(&s.offer),
                    theirs: None,
                }
            } else {
                FailureReason::PeerNotify {
                    notify_type: t,
                    name: notify::name(t),
                }
            };
            self.unauthenticated_error(ctx, &mut s, reason);
            return State::ExpectSaInitResponse(Box::new(s));
        }
        match self.complete_sa_init(ctx, t, &s, local, remote, datagram, msg) {
            Ok(next) => next,
            Err(reason) => {
                self.unauthenticated_error(ctx, &mut s, reason);
                State::ExpectSaInitResponse(Box::new(s))
            }
        }
    }

    /// RFC 7296 2.21.1: an error in an IKE_SA_INIT response is not
    /// authenticated, so one forged packet must not end the negotiation. We
    /// stop retransmitting and keep listening for `error_grace`; a valid
    /// response in that time wins, otherwise the error stands.
    fn unauthenticated_error<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        s: &mut ExpectSaInitResponse,
        reason: FailureReason,
    ) {
        if s.pending_error.is_none() {
            s.pending_error = Some((ctx.now + ctx.opts.error_grace, reason));
        }
        if let Some(f) = self.in_flight.as_mut() {
            f.suspended = true;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn complete_sa_init<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        t: &TunnelConfig,
        s: &ExpectSaInitResponse,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        msg: &Message,
    ) -> Result<State, FailureReason> {
        let syntax = |detail: &str| FailureReason::InvalidSyntax {
            detail: detail.to_string(),
        };
        let p = &msg.payloads;
        let spi_r = msg.header.spi_r;
        if spi_r == 0 {
            return Err(syntax("IKE_SA_INIT response with a zero responder SPI"));
        }
        let sa = find_payload!(p, Sa)
            .ok_or_else(|| syntax("IKE_SA_INIT response without SA payload"))?;
        let ke = find_payload!(p, Ke)
            .ok_or_else(|| syntax("IKE_SA_INIT response without KE payload"))?;
        let nr =
            find_payload!(p, Nonce).ok_or_else(|| syntax("IKE_SA_INIT response without nonce"))?;
        if !(wire::NONCE_MIN_LEN..=wire::NONCE_MAX_LEN).contains(&nr.len()) {
            return Err(syntax("nonce length outside 16..=256"));
        }
        let algs = proposal::accept_ike_reply(&s.offer, sa)
            .map_err(|detail| FailureReason::InvalidProposalReply { detail })?;
        if algs.dh != s.dh.group() || ke.group != algs.dh.iana() {
            return Err(FailureReason::InvalidProposalReply {
                detail: "the reply's DH group differs from our KE payload's",
            });
        }
        let shared =
            s.dh.agree(&ke.data)
                .map_err(|e| FailureReason::KeyExchange {
                    detail: e.to_string(),
                })?;
        let skeyseed = skeyseed(algs.prf, &s.ni, nr, &shared);
        let spi_i = self.spi_i;
        let keys = derive_ike_keys(
            algs.prf,
            algs.encr,
            algs.integ,
            &skeyseed,
            &s.ni,
            nr,
            &spi_i.to_be_bytes(),
            &spi_r.to_be_bytes(),
        );
        let mut keyed =
            Keyed::new(algs, keys, Role::Initiator).ok_or(FailureReason::InvalidProposalReply {
                detail: "unusable keys",
            })?;

        // From here on the response is accepted.
        self.spi_r = spi_r;
        self.local = local;
        self.remote = remote;
        // RFC 7383 2.3: fragmentation is used only if both ends offered it.
        self.fragmentation =
            ctx.opts.fragmentation && has_notify(p, notify::IKEV2_FRAGMENTATION_SUPPORTED);
        let src: Vec<&[u8]> = notifies(p, notify::NAT_DETECTION_SOURCE_IP)
            .map(|n| n.data.as_slice())
            .collect();
        let dst: Vec<&[u8]> = notifies(p, notify::NAT_DETECTION_DESTINATION_IP)
            .map(|n| n.data.as_slice())
            .collect();
        if let Some(nat) = natd::detect(spi_i, spi_r, &src, &dst, remote, local) {
            let nat = natd::forced(nat, ctx.opts.force_udp_encap);
            self.nat = nat;
            // RFC 7296 2.23: with a NAT on either side the initiator moves to
            // port 4500 for IKE_AUTH and everything after it (and ESP goes in
            // UDP). strongSwan with kernel-libipsec fakes a mismatch to force
            // this (LAB.md).
            if nat.any() {
                self.local.set_port(ctx.opts.natt_port);
                self.remote.set_port(ctx.opts.natt_port);
            }
        }
        let sa_init_request = self
            .in_flight
            .take()
            .and_then(|f| f.datagrams.into_iter().next())
            .unwrap_or_default();
        let idi = id_payload(&t.local_identity);
        let (certs, auth) = our_auth(
            ctx.rng,
            t,
            algs.prf,
            &SignedOctets {
                real_message: &sa_init_request,
                peer_nonce: nr,
                sk_p: &keyed.keys.sk_pi,
                id_body: &idi.body_bytes(),
            },
            peer_hashes(p).as_deref(),
        )?;
        let child_spi = ctx.alloc_child_spi();
        let esp_offer = proposal::esp_offer(&t.esp_suites, child_spi);
        // RFC 7296 1.2: IDi, [CERT,] [CERTREQ,] AUTH, SAi2, TSi, TSr.
        let mut payloads = vec![Payload::IdI(idi)];
        payloads.extend(certs);
        // RFC 7296 3.7: the initiator asks for certificates in IKE_AUTH.
        payloads.extend(certreq_payload(&[t]));
        // RFC 7296 2.4: INITIAL_CONTACT on the first IKE SA to this peer, so
        // that it drops state left from before we (re)started.
        if t.initial_contact && !ctx.peer_has_other_sa {
            payloads.push(notify_payload(notify::INITIAL_CONTACT, Vec::new()));
        }
        payloads.push(Payload::Auth(auth));
        payloads.push(Payload::Sa(esp_offer.clone()));
        payloads.push(Payload::TsI(TsPayload {
            selectors: vti_selectors(),
        }));
        payloads.push(Payload::TsR(TsPayload {
            selectors: vti_selectors(),
        }));
        let h = header(
            spi_i,
            spi_r,
            ExchangeType::IkeAuth,
            Role::Initiator,
            false,
            1,
        );
        let Some(request) = self.seal_logged(ctx, &mut keyed, &h, &payloads) else {
            ctx.child_spis.remove(&child_spi);
            return Err(FailureReason::KeyExchange {
                detail: "sealing IKE_AUTH failed".into(),
            });
        };
        self.next_request_id = 2;
        self.start_request(ctx, 1, InFlightKind::Auth, request);
        Ok(State::ExpectAuthResponse(Box::new(ExpectAuthResponse {
            keyed,
            ni: s.ni.clone(),
            nr: nr.clone(),
            sa_init_response: datagram.to_vec(),
            esp_offer,
            child_spi,
        })))
    }

    /// Moves the SA to where an authenticated message came from (RFC 7296
    /// 2.23: only authenticated messages may change the peer's address, and
    /// only when a NAT was detected; the switch to 4500 is one).
    fn follow_peer<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        local: SocketAddr,
        remote: SocketAddr,
        announce: bool,
    ) {
        if (self.remote != remote || self.local != local)
            && (self.nat.any() || self.remote.ip() == remote.ip())
        {
            self.remote = remote;
            self.local = local;
            if announce {
                let tunnel = self.tunnel;
                ctx.event(Event::PeerAddressChanged {
                    id: self.id,
                    tunnel,
                    local,
                    remote,
                });
            }
        }
    }

    fn on_auth_response<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        mut s: Box<ExpectAuthResponse>,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        msg: &Message,
    ) -> State {
        let payloads = match self.open_logged(ctx, &s.keyed, datagram, msg) {
            Opened::Drop => return State::ExpectAuthResponse(s),
            Opened::Malformed(e) => {
                ctx.child_spis.remove(&s.child_spi);
                return self.fail(
                    ctx,
                    FailureReason::InvalidSyntax {
                        detail: format!("IKE_AUTH response: {e}"),
                    },
                );
            }
            Opened::Payloads(p) => p,
        };
        let Some(t) = self.tunnel(ctx) else {
            return self.orphaned(ctx, State::ExpectAuthResponse(s));
        };
        self.in_flight = None;
        self.follow_peer(ctx, local, remote, false);
        let idr = find_payload!(payloads, IdR);
        let auth = find_payload!(payloads, Auth);
        let (Some(idr), Some(auth)) = (idr, auth) else {
            ctx.child_spis.remove(&s.child_spi);
            let reason = match error_notify(&payloads) {
                Some(notify::AUTHENTICATION_FAILED) => FailureReason::AuthenticationFailed {
                    detail: match t.local_auth {
                        LocalAuth::Psk => format!(
                            "the peer {} rejected our AUTH: check that both ends use the same pre-shared key and that the peer's `match identity remote` accepts {}",
                            self.remote.ip(),
                            t.local_identity
                        ),
                        _ => format!(
                            "the peer {} rejected our AUTH: check that it trusts our CA, that our certificate is valid at its time and names {}, and that its `match identity remote` accepts it",
                            self.remote.ip(),
                            t.local_identity
                        ),
                    },
                },
                Some(n) => FailureReason::PeerNotify { notify_type: n, name: notify::name(n) },
                None => FailureReason::InvalidSyntax { detail: "IKE_AUTH response without IDr or AUTH".into() },
            };
            return self.fail(ctx, reason);
        };
        let remote_identity = identity_of(idr);
        let verdict = authenticate_peer(
            t,
            self.remote.ip(),
            auth,
            idr,
            &payloads,
            ctx.system_time,
            &SignedOctets {
                real_message: &s.sa_init_response,
                peer_nonce: &s.ni,
                sk_p: &s.keyed.keys.sk_pr,
                id_body: &idr.body_bytes(),
            },
            s.keyed.algs.prf,
        );
        if let Err(reason) = self.log_verdict(ctx, &remote_identity, verdict) {
            // RFC 7296 2.21.2: the initiator MAY tell the responder in a
            // separate INFORMATIONAL exchange; it is sent once, unanswered.
            let h = header(
                self.spi_i,
                self.spi_r,
                ExchangeType::Informational,
                Role::Initiator,
                false,
                self.next_request_id,
            );
            if let Some(m) = self.seal_logged(
                ctx,
                &mut s.keyed,
                &h,
                &[notify_payload(notify::AUTHENTICATION_FAILED, Vec::new())],
            ) {
                send_all(ctx, self.local, self.remote, &m);
            }
            ctx.child_spis.remove(&s.child_spi);
            return self.fail(ctx, reason);
        }
        // The IKE SA is up; the endpoint publishes the events once it knows
        // this SA is not a duplicate to delete.
        self.established_at = Some(ctx.now);
        let tunnel = t.id;
        self.pending_up.push(Event::IkeSaUp {
            id: self.id,
            tunnel,
            info: self.info(t, &s.keyed, &remote_identity),
        });
        let mut est = Box::new(Established::new(ctx, t, s.keyed, remote_identity));
        // RFC 7296 2.21.2: a Child SA failure leaves the IKE SA up.
        match self.accept_child(
            ctx,
            t,
            &est.keyed,
            &s.esp_offer,
            s.child_spi,
            &s.ni,
            &s.nr,
            &payloads,
            None,
        ) {
            Ok((child, event)) => {
                est.children.push(child);
                self.pending_up.push(Event::ChildSaUp(event));
            }
            Err(reason) => {
                ctx.child_spis.remove(&s.child_spi);
                self.pending_up
                    .push(Event::NegotiationFailed { tunnel, reason });
            }
        }
        s.esp_offer.proposals.clear();
        self.start_next_request(ctx, &mut est);
        State::Established(est)
    }

    #[allow(clippy::too_many_arguments)]
    fn accept_child<R: CryptoRngCore>(
        &self,
        ctx: &mut Ctx<'_, R>,
        t: &TunnelConfig,
        keyed: &Keyed,
        offer: &SaPayload,
        spi_in: u32,
        ni: &[u8],
        nr: &[u8],
        payloads: &[Payload],
        g_ir: Option<&xrsec_crypto::SharedSecret>,
    ) -> Result<(Child, ChildSa), FailureReason> {
        if let Some(n) = error_notify(payloads) {
            return Err(match n {
                notify::NO_PROPOSAL_CHOSEN => FailureReason::NoProposalChosen {
                    sa: SaKind::Child,
                    ours: proposal::describe_offer(offer),
                    theirs: None,
                },
                notify::TS_UNACCEPTABLE => FailureReason::TsUnacceptable {
                    detail: "the peer refused our selectors 0.0.0.0/0 <=> 0.0.0.0/0".into(),
                },
                n => FailureReason::PeerNotify {
                    notify_type: n,
                    name: notify::name(n),
                },
            });
        }
        let sa = find_payload!(payloads, Sa);
        let tsi = find_payload!(payloads, TsI);
        let tsr = find_payload!(payloads, TsR);
        let (Some(sa), Some(tsi), Some(tsr)) = (sa, tsi, tsr) else {
            return Err(FailureReason::InvalidSyntax {
                detail: "response without SA, TSi or TSr".into(),
            });
        };
        let accepted = proposal::accept_esp_reply(offer, sa)
            .map_err(|detail| FailureReason::InvalidProposalReply { detail })?;
        // RFC 7296 2.9: the responder may narrow; the result must lie within
        // what we proposed (all IPv4 traffic).
        let local_ts = narrow(&tsi.selectors, &vti_selectors());
        let remote_ts = narrow(&tsr.selectors, &vti_selectors());
        if local_ts.is_empty()
            || remote_ts.is_empty()
            || local_ts.len() != tsi.selectors.len()
            || remote_ts.len() != tsr.selectors.len()
        {
            return Err(FailureReason::TsUnacceptable {
                detail: format!(
                    "the peer chose TSi {} / TSr {}, outside 0.0.0.0/0",
                    describe_ts(&tsi.selectors),
                    describe_ts(&tsr.selectors)
                ),
            });
        }
        Ok(self.child_sa(
            ctx,
            t,
            keyed,
            Role::Initiator,
            spi_in,
            accepted.peer_spi,
            accepted.suite,
            accepted.esn,
            ni,
            nr,
            local_ts,
            remote_ts,
            g_ir,
        ))
    }

    /// RFC 7296 2.17: KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr): the
    /// first Child SA's without a DH value, a rekeyed one's with PFS.
    #[allow(clippy::too_many_arguments)]
    fn child_sa<R: CryptoRngCore>(
        &self,
        ctx: &mut Ctx<'_, R>,
        t: &TunnelConfig,
        keyed: &Keyed,
        role: Role,
        spi_in: u32,
        spi_out: u32,
        suite: EspSuite,
        esn: bool,
        ni: &[u8],
        nr: &[u8],
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
        g_ir: Option<&xrsec_crypto::SharedSecret>,
    ) -> (Child, ChildSa) {
        let keys = derive_child_keys(keyed.algs.prf, &keyed.keys.sk_d, g_ir, ni, nr, &suite);
        // A peer that moved to 4500 without our seeing a NAT (it may force
        // NAT-T) still gets ESP in UDP.
        let udp_encap = self.nat.any() || self.local.port() == ctx.opts.natt_port;
        let child = Child {
            spi_in,
            spi_out,
            suite,
            local_ts: local_ts.clone(),
            remote_ts: remote_ts.clone(),
            udp_encap,
            times: Lifetimes::start(ctx, t.sa_lifetime),
            rekeying: false,
            rekeyed_by_peer: None,
            outbound_pending: false,
        };
        let event = ChildSa {
            tunnel: t.id,
            ike_sa: self.id,
            role,
            spi_in,
            spi_out,
            suite,
            keys_in: keys.inbound(role).clone(),
            keys_out: keys.outbound(role).clone(),
            esn,
            local_ts,
            remote_ts,
            lifetime: t.sa_lifetime,
            lifetime_kilobytes: t.sa_lifetime_kilobytes,
            replay_window: t.replay_window,
            local: self.local,
            remote: self.remote,
            udp_encap,
            outbound: true,
            rekey_of: None,
        };
        (child, event)
    }

    /// Logs how a peer that authenticated with a certificate did: which
    /// one, and the AUTH method and scheme (a PSK adds nothing to say).
    fn log_verdict<R>(
        &self,
        ctx: &mut Ctx<'_, R>,
        remote_identity: &Identity,
        verdict: Result<Option<String>, FailureReason>,
    ) -> Result<(), FailureReason> {
        if let Some(how) = verdict? {
            ctx.log(Some(self.id), || {
                format!("peer {remote_identity} authenticated by {how}")
            });
        }
        Ok(())
    }

    /// The status of an established SA, as [`Event::IkeSaUp`] gives it.
    pub(crate) fn info_now(&self, t: &TunnelConfig) -> Option<IkeSaInfo> {
        match &self.state {
            State::Established(e) => Some(self.info(t, &e.keyed, &e.remote_identity)),
            _ => None,
        }
    }

    fn info(&self, t: &TunnelConfig, keyed: &Keyed, remote_identity: &Identity) -> IkeSaInfo {
        IkeSaInfo {
            role: self.role,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            local: self.local,
            remote: self.remote,
            algorithms: keyed.algs,
            local_identity: t.local_identity.clone(),
            remote_identity: remote_identity.clone(),
            nat: self.nat,
            lifetime: t.ike_lifetime,
        }
    }

    /// Responder: IKE_AUTH request (RFC 7296 1.2, 2.15, 2.21.2).
    fn on_auth_request<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        mut s: Box<ExpectAuthRequest>,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        msg: &Message,
    ) -> State {
        let message_id = msg.header.message_id;
        let payloads = match self.open_logged(ctx, &s.keyed, datagram, msg) {
            Opened::Drop => return State::ExpectAuthRequest(s),
            Opened::Malformed(e) => {
                self.follow_peer(ctx, local, remote, false);
                let reason = FailureReason::InvalidSyntax {
                    detail: format!("IKE_AUTH request: {e}"),
                };
                return self.refuse_auth(
                    ctx,
                    &mut s.keyed,
                    message_id,
                    datagram,
                    e.notify_type(),
                    Vec::new(),
                    reason,
                );
            }
            Opened::Payloads(p) => p,
        };
        // Authenticated by the SK payload's keys (only the DH peer has them):
        // follow the peer to port 4500 (RFC 7296 2.23).
        self.follow_peer(ctx, local, remote, false);
        let idi = find_payload!(payloads, IdI);
        let auth = find_payload!(payloads, Auth);
        let (Some(idi), Some(auth)) = (idi, auth) else {
            let reason = FailureReason::InvalidSyntax {
                detail: "IKE_AUTH request without IDi or AUTH".into(),
            };
            return self.refuse_auth(
                ctx,
                &mut s.keyed,
                message_id,
                datagram,
                notify::INVALID_SYNTAX,
                Vec::new(),
                reason,
            );
        };
        let remote_identity = identity_of(idi);
        // Refine the tunnel: a keyring peer covering the peer's address, and
        // among those one whose identity match accepts the IDi.
        let peer_ip = match self.remote.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        };
        let Some(our_ip) = self.tunnel(ctx).map(|t| t.local) else {
            return self.orphaned(ctx, State::ExpectAuthRequest(s));
        };
        let candidates: Vec<&TunnelConfig> = ctx
            .tunnels
            .iter()
            .filter(|t| t.local == our_ip && peer_ip.is_some_and(|ip| t.peer_range.contains(ip)))
            .collect();
        let Some(&first) = candidates.first() else {
            let reason = FailureReason::AuthenticationFailed {
                detail: format!(
                    "no keyring peer covers {} ({remote_identity})",
                    self.remote.ip()
                ),
            };
            return self.refuse_auth(
                ctx,
                &mut s.keyed,
                message_id,
                datagram,
                notify::AUTHENTICATION_FAILED,
                Vec::new(),
                reason,
            );
        };
        let t = candidates
            .iter()
            .copied()
            .find(|t| t.accepts_identity(&remote_identity))
            .unwrap_or(first);
        self.tunnel = t.id;
        // RFC 7296 2.15: verify the initiator's AUTH over RealMessage1 | Nr |
        // prf(SK_pi, IDi').
        let verdict = authenticate_peer(
            t,
            self.remote.ip(),
            auth,
            idi,
            &payloads,
            ctx.system_time,
            &SignedOctets {
                real_message: &s.sa_init_request,
                peer_nonce: &s.nr,
                sk_p: &s.keyed.keys.sk_pi,
                id_body: &idi.body_bytes(),
            },
            s.keyed.algs.prf,
        );
        if let Err(reason) = self.log_verdict(ctx, &remote_identity, verdict) {
            // RFC 7296 2.21.2: AUTHENTICATION_FAILED in the IKE_AUTH response,
            // and no IKE SA.
            return self.refuse_auth(
                ctx,
                &mut s.keyed,
                message_id,
                datagram,
                notify::AUTHENTICATION_FAILED,
                Vec::new(),
                reason,
            );
        }
        self.initial_contact_received = has_notify(&payloads, notify::INITIAL_CONTACT);
        let idr = id_payload(&t.local_identity);
        let signed = our_auth(
            ctx.rng,
            t,
            s.keyed.algs.prf,
            &SignedOctets {
                real_message: &s.sa_init_response,
                peer_nonce: &s.ni,
                sk_p: &s.keyed.keys.sk_pr,
                id_body: &idr.body_bytes(),
            },
            s.peer_hashes.as_deref(),
        );
        let (certs, our_auth) = match signed {
            Ok(v) => v,
            Err(reason) => {
                return self.refuse_auth(
                    ctx,
                    &mut s.keyed,
                    message_id,
                    datagram,
                    notify::AUTHENTICATION_FAILED,
                    Vec::new(),
                    reason,
                );
            }
        };
        // RFC 7296 1.2: IDr, [CERT,] AUTH, SAr2, TSi, TSr.
        let mut response = vec![Payload::IdR(idr)];
        response.extend(certs);
        response.push(Payload::Auth(our_auth));
        let tunnel = t.id;
        self.established_at = Some(ctx.now);
        self.expires = None;
        let info = self.info(t, &s.keyed, &remote_identity);
        let mut child_up = None;
        let mut child_failure = None;
        match self.choose_child(t, &s, &payloads) {
            Ok((reply, tsi, tsr, spi_out, suite, esn)) => {
                let spi_in = ctx.alloc_child_spi();
                response.push(Payload::Sa(SaPayload {
                    proposals: vec![reply.reply(spi_in)],
                }));
                response.push(Payload::TsI(TsPayload {
                    selectors: tsi.clone(),
                }));
                response.push(Payload::TsR(TsPayload {
                    selectors: tsr.clone(),
                }));
                // Our local side is their TSr, our remote side their TSi.
                child_up = Some(self.child_sa(
                    ctx,
                    t,
                    &s.keyed,
                    Role::Responder,
                    spi_in,
                    spi_out,
                    suite,
                    esn,
                    &s.ni,
                    &s.nr,
                    tsr,
                    tsi,
                    None,
                ));
            }
            Err((n, reason)) => {
                // RFC 7296 2.21.2: the IKE SA is created, the Child SA is
                // not, and the response says why.
                response.push(notify_payload(n, Vec::new()));
                child_failure = Some(reason);
            }
        }
        let h = header(
            self.spi_i,
            self.spi_r,
            ExchangeType::IkeAuth,
            Role::Responder,
            true,
            message_id,
        );
        let Some(sealed) = self.seal_logged(ctx, &mut s.keyed, &h, &response) else {
            return State::ExpectAuthRequest(s);
        };
        self.respond(ctx, message_id, datagram, sealed);
        self.pending_up.push(Event::IkeSaUp {
            id: self.id,
            tunnel,
            info,
        });
        let mut est = Box::new(Established::new(ctx, t, s.keyed, remote_identity));
        if let Some((child, event)) = child_up {
            est.children.push(child);
            self.pending_up.push(Event::ChildSaUp(event));
        }
        if let Some(reason) = child_failure {
            self.pending_up
                .push(Event::NegotiationFailed { tunnel, reason });
        }
        self.start_next_request(ctx, &mut est);
        State::Established(est)
    }

    #[allow(clippy::type_complexity)]
    fn choose_child(
        &self,
        t: &TunnelConfig,
        _s: &ExpectAuthRequest,
        payloads: &[Payload],
    ) -> Result<
        (
            proposal::EspChoice,
            Vec<TrafficSelector>,
            Vec<TrafficSelector>,
            u32,
            EspSuite,
            bool,
        ),
        (u16, FailureReason),
    > {
        let sa = find_payload!(payloads, Sa);
        let tsi = find_payload!(payloads, TsI);
        let tsr = find_payload!(payloads, TsR);
        let (Some(sa), Some(tsi), Some(tsr)) = (sa, tsi, tsr) else {
            return Err((
                notify::INVALID_SYNTAX,
                FailureReason::InvalidSyntax {
                    detail: "IKE_AUTH request without SA, TSi or TSr".into(),
                },
            ));
        };
        let choice = proposal::choose_esp(sa, &t.esp_suites).ok_or_else(|| {
            (
                notify::NO_PROPOSAL_CHOSEN,
                FailureReason::NoProposalChosen {
                    sa: SaKind::Child,
                    ours: proposal::describe_esp_config(&t.esp_suites),
                    theirs: Some(proposal::describe_offer(sa)),
                },
            )
        })?;
        // RFC 7296 2.9: narrow to our policy; nothing left is TS_UNACCEPTABLE.
        let ni_ts = narrow(&tsi.selectors, &vti_selectors());
        let nr_ts = narrow(&tsr.selectors, &vti_selectors());
        if ni_ts.is_empty() || nr_ts.is_empty() {
            return Err((
                notify::TS_UNACCEPTABLE,
                FailureReason::TsUnacceptable {
                    detail: format!(
                        "the peer proposed TSi {} / TSr {}; we accept IPv4 only (0.0.0.0/0 <=> 0.0.0.0/0)",
                        describe_ts(&tsi.selectors),
                        describe_ts(&tsr.selectors)
                    ),
                },
            ));
        }
        let (spi_out, suite, esn) = (choice.peer_spi, choice.suite, choice.esn);
        Ok((choice, ni_ts, nr_ts, spi_out, suite, esn))
    }

    /// Answers a failed IKE_AUTH with an encrypted error notify and closes
    /// the SA, keeping the answer for retransmissions a while.
    #[allow(clippy::too_many_arguments)]
    fn refuse_auth<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        keyed: &mut Keyed,
        message_id: u32,
        request: &[u8],
        notify_type: u16,
        data: Vec<u8>,
        reason: FailureReason,
    ) -> State {
        let h = header(
            self.spi_i,
            self.spi_r,
            ExchangeType::IkeAuth,
            Role::Responder,
            true,
            message_id,
        );
        if let Some(sealed) = self.seal_logged(ctx, keyed, &h, &[notify_payload(notify_type, data)])
        {
            self.respond(ctx, message_id, request, sealed);
        }
        let tunnel = self.tunnel;
        ctx.event(Event::NegotiationFailed { tunnel, reason });
        let linger = ctx.opts.half_open_timeout;
        self.close(ctx.now, Some(linger))
    }

    /// A request from the peer on an established SA.
    fn on_request<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        mut est: Box<Established>,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        msg: &Message,
    ) -> State {
        let h = &msg.header;
        let message_id = h.message_id;
        let reply_header = header(
            self.spi_i, self.spi_r, h.exchange, self.role, true, message_id,
        );
        let payloads = match self.open_logged(ctx, &est.keyed, datagram, msg) {
            Opened::Drop => return State::Established(est),
            Opened::Malformed(e) => {
                let mut data = Vec::new();
                if let wire::WireError::UnsupportedCriticalPayload { payload_type } = e {
                    data.push(payload_type);
                }
                if let Some(r) = self.seal_logged(
                    ctx,
                    &mut est.keyed,
                    &reply_header,
                    &[notify_payload(e.notify_type(), data)],
                ) {
                    self.respond(ctx, message_id, datagram, r);
                }
                return State::Established(est);
            }
            Opened::Payloads(p) => p,
        };
        est.last_heard = ctx.now;
        self.follow_peer(ctx, local, remote, true);
        match h.exchange {
            ExchangeType::Informational => {
                let mut reply = Vec::new();
                let mut delete_ike = false;
                let mut peer_auth_failed = false;
                let mut deleted_in = Vec::new();
                for p in &payloads {
                    match p {
                        Payload::Delete(d) if d.protocol == PROTO_IKE => delete_ike = true,
                        // RFC 7296 3.11: the SPIs are the sender's inbound
                        // ones, i.e. our outbound; we answer with our inbound
                        // SPIs of the same Child SAs (RFC 7296 1.4.1).
                        Payload::Delete(d) if d.protocol == PROTO_ESP => {
                            let tunnel = self.tunnel;
                            let (gone, kept): (Vec<Child>, Vec<Child>) =
                                std::mem::take(&mut est.children)
                                    .into_iter()
                                    .partition(|c| d.spis.contains(&c.spi_out));
                            est.children = kept;
                            for c in gone {
                                deleted_in.push(c.spi_in);
                                // The old SA of the peer's rekey: the new
                                // one takes over, the old one retires.
                                if self.peer_deleted_rekeyed(ctx, &mut est, &c) {
                                    continue;
                                }
                                ctx.child_spis.remove(&c.spi_in);
                                ctx.out.events.push_back(Event::ChildSaDown {
                                    id: self.id,
                                    tunnel,
                                    spi_in: c.spi_in,
                                    spi_out: c.spi_out,
                                    reason: DownReason::PeerDelete,
                                });
                            }
                            // A rekeyed SA of ours retiring: the peer's
                            // DELETE crossed ours; answer with its SPI.
                            for r in &est.retiring {
                                if d.spis.contains(&r.spi_out) && !deleted_in.contains(&r.spi_in) {
                                    deleted_in.push(r.spi_in);
                                }
                            }
                        }
                        Payload::Notify(n) if n.notify_type == notify::AUTHENTICATION_FAILED => {
                            peer_auth_failed = true
                        }
                        _ => {}
                    }
                }
                if !deleted_in.is_empty() && !delete_ike {
                    reply.push(Payload::Delete(DeletePayload {
                        protocol: PROTO_ESP,
                        spis: deleted_in,
                    }));
                }
                // RFC 7296 1.4.1: a DELETE of the IKE SA is answered with an
                // empty INFORMATIONAL response; so is a liveness check.
                if let Some(r) = self.seal_logged(ctx, &mut est.keyed, &reply_header, &reply) {
                    self.respond(ctx, message_id, datagram, r);
                }
                // The peer deletes this IKE SA while its rekey of it, which
                // crossed ours, waits for RFC 7296 2.8.2: the peer saw no
                // collision (ours was lost), so its new SA is the one.
                if delete_ike && est.peer_ike_rekey.is_some() {
                    self.resolve_peer_won(ctx, &mut est);
                }
                if delete_ike || peer_auth_failed {
                    let reason = if delete_ike {
                        DownReason::PeerDelete
                    } else {
                        DownReason::PeerAuthenticationFailed
                    };
                    self.down_events(ctx, &est, reason);
                    if peer_auth_failed && !delete_ike {
                        let tunnel = self.tunnel;
                        ctx.event(Event::NegotiationFailed {
                            tunnel,
                            reason: FailureReason::AuthenticationFailed {
                                detail: format!(
                                    "the peer {} rejected our AUTH (AUTHENTICATION_FAILED)",
                                    self.remote.ip()
                                ),
                            },
                        });
                    }
                    // Keep the response for a retransmitted DELETE a while.
                    let linger = ctx.opts.half_open_timeout;
                    return self.close(ctx.now, Some(linger));
                }
                State::Established(est)
            }
            ExchangeType::CreateChildSa => {
                let reply = self.on_create_child_sa(ctx, &mut est, &payloads);
                if let Some(r) = self.seal_logged(ctx, &mut est.keyed, &reply_header, &reply) {
                    self.respond(ctx, message_id, datagram, r);
                }
                State::Established(est)
            }
            ExchangeType::IkeSaInit | ExchangeType::IkeAuth => {
                if let Some(r) = self.seal_logged(
                    ctx,
                    &mut est.keyed,
                    &reply_header,
                    &[notify_payload(notify::INVALID_SYNTAX, Vec::new())],
                ) {
                    self.respond(ctx, message_id, datagram, r);
                }
                State::Established(est)
            }
            _ => State::Established(est),
        }
    }

    /// A response from the peer to our request on an established SA.
    fn on_response<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        mut est: Box<Established>,
        local: SocketAddr,
        remote: SocketAddr,
        datagram: &[u8],
        msg: &Message,
    ) -> State {
        let payloads = match self.open_logged(ctx, &est.keyed, datagram, msg) {
            Opened::Drop => return State::Established(est),
            Opened::Malformed(_) => Vec::new(),
            Opened::Payloads(p) => p,
        };
        est.last_heard = ctx.now;
        self.follow_peer(ctx, local, remote, true);
        let Some(f) = self.in_flight.take() else {
            return State::Established(est);
        };
        self.next_request_id = self.next_request_id.wrapping_add(1);
        match f.kind {
            InFlightKind::After(Request::RekeyChild { .. }) => {
                self.finish_child_rekey(ctx, &mut est, &payloads);
            }
            InFlightKind::After(Request::RekeyIke) => {
                return self.finish_ike_rekey(ctx, est, &payloads);
            }
            _ => {}
        }
        if f.kind == InFlightKind::After(Request::Liveness) {
            let tunnel = self.tunnel;
            ctx.event(Event::PeerAlive {
                id: self.id,
                tunnel,
            });
        }
        self.start_next_request(ctx, &mut est);
        State::Established(est)
    }

    /// Queues a request of ours (liveness, deletes); sends it now if no
    /// other is in flight.
    pub(crate) fn request<R: CryptoRngCore>(&mut self, ctx: &mut Ctx<'_, R>, req: Request) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        self.state = match state {
            State::Established(mut est) => {
                match req {
                    Request::DeleteIke => {
                        self.state = self.start_delete(ctx, est, DownReason::LocalDelete);
                        return;
                    }
                    Request::DeleteChild { spi_in } => {
                        let tunnel = self.tunnel;
                        if let Some(pos) = est.children.iter().position(|c| c.spi_in == spi_in) {
                            let c = est.children.remove(pos);
                            // Deleting the old SA of a rekey the peer made
                            // leaves the new one: it sends from now on.
                            if let Some(p) = &c.rekeyed_by_peer {
                                self.activate(ctx, &mut est, p.new_spi_in);
                            }
                            ctx.child_spis.remove(&c.spi_in);
                            ctx.event(Event::ChildSaDown {
                                id: self.id,
                                tunnel,
                                spi_in: c.spi_in,
                                spi_out: c.spi_out,
                                reason: DownReason::LocalDelete,
                            });
                            self.queued.push_back(req);
                        }
                    }
                    // Rekeys start from the lifetime timers only (see
                    // `rekey_now`), which know what else is under way.
                    Request::RekeyIke | Request::RekeyChild { .. } => {}
                    Request::Liveness => {
                        if !self.queued.contains(&req)
                            && self
                                .in_flight
                                .as_ref()
                                .is_none_or(|f| f.kind != InFlightKind::After(req))
                        {
                            self.queued.push_back(req);
                        }
                    }
                }
                self.start_next_request(ctx, &mut est);
                State::Established(est)
            }
            State::ExpectSaInitResponse(_)
            | State::ExpectAuthResponse(_)
            | State::ExpectAuthRequest(_)
                if req == Request::DeleteIke =>
            {
                // Not established: nothing to tell the peer; just stop.
                for spi in self.child_spis_in_state(&state) {
                    ctx.child_spis.remove(&spi);
                }
                self.close(ctx.now, None)
            }
            other => other,
        };
    }

    /// Deletes an established SA with an INFORMATIONAL DELETE (RFC 7296
    /// 1.4.1), telling the daemon `reason` if it knew of the SA. Anything
    /// else is not established: nothing happens.
    pub(crate) fn delete_established<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        reason: DownReason,
    ) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        self.state = match state {
            State::Established(est) => self.start_delete(ctx, est, reason),
            other => other,
        };
    }

    fn start_delete<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        mut est: Box<Established>,
        reason: DownReason,
    ) -> State {
        // Events now: the dataplane stops using the SAs at once; the DELETE
        // follows any request in flight (window size 1) and is retransmitted
        // until answered.
        self.down_events(ctx, &est, reason);
        self.queued.clear();
        self.queued.push_back(Request::DeleteIke);
        est.children.clear();
        est.retiring.clear();
        est.our_rekey = None;
        self.start_next_request(ctx, &mut est);
        State::Deleting(est)
    }

    fn start_next_request<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        est: &mut Established,
    ) {
        if self.in_flight.is_some() {
            return;
        }
        let Some(req) = self.queued.pop_front() else {
            return;
        };
        let mut exchange = ExchangeType::Informational;
        let payloads = match req {
            Request::RekeyChild { spi_in } => match self.rekey_child_request(ctx, est, spi_in) {
                Some(p) => {
                    exchange = ExchangeType::CreateChildSa;
                    p
                }
                None => return self.start_next_request(ctx, est),
            },
            Request::RekeyIke => match self.rekey_ike_request(ctx, est) {
                Some(p) => {
                    exchange = ExchangeType::CreateChildSa;
                    p
                }
                None => return self.start_next_request(ctx, est),
            },
            Request::Liveness => Vec::new(),
            Request::DeleteIke => vec![Payload::Delete(DeletePayload {
                protocol: PROTO_IKE,
                spis: Vec::new(),
            })],
            Request::DeleteChild { spi_in } => vec![Payload::Delete(DeletePayload {
                protocol: PROTO_ESP,
                spis: vec![spi_in],
            })],
        };
        let id = self.next_request_id;
        let h = header(self.spi_i, self.spi_r, exchange, self.role, false, id);
        if let Some(m) = self.seal_logged(ctx, &mut est.keyed, &h, &payloads) {
            self.start_request(ctx, id, InFlightKind::After(req), m);
            // Dead peer detection's own schedule: every interval, `retries`
            // times, rather than the back-off.
            if let (Request::Liveness, Some(dpd), Some(f)) = (req, est.dpd, self.in_flight.as_mut())
            {
                f.fixed = Some((dpd.interval, dpd.retries.max(1)));
                f.next_at = ctx.now + dpd.interval;
            }
        }
    }

    /// Ends an established SA without telling the peer (it told us it lost
    /// it, RFC 7296 2.4 INITIAL_CONTACT).
    pub(crate) fn drop_silently<R>(&mut self, ctx: &mut Ctx<'_, R>, reason: DownReason) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        match state {
            State::Established(est) => {
                self.down_events(ctx, &est, reason);
                self.state = self.close(ctx.now, None);
            }
            other => self.state = other,
        }
    }

    // ---- status -------------------------------------------------------

    /// The status row; none once the SA's tunnel is no longer configured
    /// (the SA is then on its way out, and nothing describes it any more).
    pub(crate) fn session(&self, tunnels: &[TunnelConfig]) -> Option<SessionInfo> {
        let t = find_tunnel(tunnels, self.tunnel)?;
        let (state_description, keyed, remote_identity, children): (
            &'static str,
            Option<&Keyed>,
            Option<&Identity>,
            &[Child],
        ) = match &self.state {
            State::ExpectSaInitResponse(_) => ("CONNECTING (IKE_SA_INIT sent)", None, None, &[]),
            State::ExpectAuthResponse(s) => {
                ("CONNECTING (IKE_AUTH sent)", Some(&s.keyed), None, &[])
            }
            State::ExpectAuthRequest(s) => (
                "CONNECTING (waiting for IKE_AUTH)",
                Some(&s.keyed),
                None,
                &[],
            ),
            State::Established(s) => (
                "READY (Negotiation done)",
                Some(&s.keyed),
                Some(&s.remote_identity),
                &s.children,
            ),
            State::Deleting(s) => (
                "DELETING (DELETE sent)",
                Some(&s.keyed),
                Some(&s.remote_identity),
                &s.children,
            ),
            State::Closed => return None,
        };
        // The status word is the description's first word.
        let state = state_description
            .split_once(' ')
            .map_or(state_description, |(word, _)| word);
        let algorithms = keyed.map(|k| k.algs);
        let ike_times = match &self.state {
            State::Established(s) | State::Deleting(s) => Some(s.times),
            _ => None,
        };
        Some(SessionInfo {
            id: self.id,
            tunnel: t.id,
            tunnel_name: t.name.clone(),
            local: self.local,
            remote: self.remote,
            role: self.role,
            state,
            state_description,
            algorithms,
            encr_name: algorithms.map_or("-", |a| a.encr.name()),
            prf_name: algorithms.map_or("-", |a| a.prf.name()),
            integ_name: algorithms.map_or("-", |a| a.integ.map_or("none", |i| i.name())),
            dh_name: algorithms.map_or("-", |a| a.dh.name()),
            local_auth: t.local_auth.name(),
            remote_auth: t.remote_auth.name(),
            lifetime: t.ike_lifetime,
            established_at: self.established_at,
            rekey_at: ike_times.map(|x| x.rekey_at),
            expire_at: ike_times.map(|x| x.expire_at),
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            local_identity: t.local_identity.clone(),
            remote_identity: remote_identity.cloned(),
            nat: self.nat,
            children: children
                .iter()
                .map(|c| ChildInfo {
                    spi_in: c.spi_in,
                    spi_out: c.spi_out,
                    suite: c.suite,
                    suite_name: c.suite.to_string(),
                    local_ts: c.local_ts.clone(),
                    remote_ts: c.remote_ts.clone(),
                    udp_encap: c.udp_encap,
                    created: c.times.created,
                    rekey_at: (!c.rekeying && c.rekeyed_by_peer.is_none())
                        .then_some(c.times.rekey_at),
                    expire_at: c.times.expire_at,
                    outbound_pending: c.outbound_pending,
                })
                .collect(),
        })
    }

    /// The IKE SA keys, for tests comparing both ends.
    pub(crate) fn ike_keys(&self) -> Option<&IkeKeys> {
        self.keyed().map(|k| &k.keys)
    }

    /// The keys and algorithms, from IKE_SA_INIT's end to the SA's.
    fn keyed(&self) -> Option<&Keyed> {
        keyed_of(&self.state)
    }

    /// What Wireshark needs to decrypt this SA's messages (see
    /// [`crate::Endpoint::export_ike_keys`]).
    pub(crate) fn key_export(&self) -> Option<IkeKeyExport> {
        let k = self.keyed()?;
        Some(IkeKeyExport {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            encr: k.algs.encr,
            integ: k.algs.integ,
            sk_ei: k.keys.sk_ei.clone(),
            sk_er: k.keys.sk_er.clone(),
            sk_ai: k.keys.sk_ai.clone(),
            sk_ar: k.keys.sk_ar.clone(),
        })
    }
}

/// The keys of an SA in `state`, from IKE_SA_INIT's end to the SA's.
fn keyed_of(state: &State) -> Option<&Keyed> {
    match state {
        State::ExpectAuthResponse(s) => Some(&s.keyed),
        State::ExpectAuthRequest(s) => Some(&s.keyed),
        State::Established(s) | State::Deleting(s) => Some(&s.keyed),
        State::ExpectSaInitResponse(_) | State::Closed => None,
    }
}

/// A tunnel's configuration by id.
pub(crate) fn find_tunnel(tunnels: &[TunnelConfig], id: TunnelId) -> Option<&TunnelConfig> {
    tunnels.iter().find(|t| t.id == id)
}

/// Our address for the NAT_DETECTION_SOURCE_IP hash: the real one, or with
/// `force_udp_encap` one no peer can match (port 0).
fn source_for_natd(opts: &EndpointOptions, local: SocketAddr) -> SocketAddr {
    if opts.force_udp_encap {
        SocketAddr::new(local.ip(), 0)
    } else {
        local
    }
}

/// Whether `t` may be the tunnel of a peer at `remote` talking to `local`.
fn covers(t: &TunnelConfig, local: SocketAddr, remote: SocketAddr) -> bool {
    local.ip() == IpAddr::V4(t.local)
        && matches!(remote.ip(), IpAddr::V4(ip) if t.peer_range.contains(ip))
}

/// The hashes of the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 4), `None`
/// when it sent none; a malformed list counts as none (we then sign with
/// method 1, which every RSA peer verifies).
fn peer_hashes(payloads: &[Payload]) -> Option<Vec<HashAlgorithm>> {
    notifies(payloads, notify::SIGNATURE_HASH_ALGORITHMS)
        .next()
        .and_then(|n| parse_hash_algorithms(&n.data).ok())
}

/// RFC 7427 4: the hashes we sign and verify with. SHA-1 is left out: a
/// peer would otherwise be invited to make method-14 signatures with a hash
/// RFC 8247 no longer recommends for them; one that can do no SHA-2 still
/// has method 1.
fn hash_algorithms_notify() -> Payload {
    notify_payload(
        notify::SIGNATURE_HASH_ALGORITHMS,
        encode_hash_algorithms(&DEFAULT_HASH_PREFERENCE),
    )
}

/// RFC 7296 3.7: one CERTREQ, encoding 4, with the SHA-1 hash of the
/// SubjectPublicKeyInfo of every CA the `tunnels` accept peers from (each
/// once); none when no tunnel authenticates its peer by certificate.
fn certreq_payload(tunnels: &[&TunnelConfig]) -> Option<Payload> {
    let mut data: Vec<u8> = Vec::new();
    for t in tunnels {
        if let RemoteAuth::Certificate { trust_anchor } = &t.remote_auth {
            let hash = trust_anchor.certreq_hash();
            if !data.chunks(hash.len()).any(|h| h == hash) {
                data.extend_from_slice(&hash);
            }
        }
    }
    (!data.is_empty()).then_some(Payload::CertReq(CertReqPayload {
        encoding: CERT_ENCODING_X509_SIGNATURE,
        data,
    }))
}

/// RFC 7296 3.6: Cert Encoding "X.509 Certificate - Signature" (DER).
const CERT_ENCODING_X509_SIGNATURE: u8 = 4;

/// Our CERT payloads (none for a PSK) and AUTH payload over `octets`: a
/// MAC with the PSK (method 2), or a signature (RFC 7427 4: method 14 with
/// the first hash of ours the peer listed, method 1 when it listed none).
fn our_auth<R: CryptoRngCore>(
    rng: &mut R,
    t: &TunnelConfig,
    prf: xrsec_crypto::PrfId,
    octets: &SignedOctets<'_>,
    peer_hashes: Option<&[HashAlgorithm]>,
) -> Result<(Vec<Payload>, AuthPayload), FailureReason> {
    match &t.local_auth {
        LocalAuth::Certificate { key, chain } => {
            let failed = |e: xrsec_pki::SignatureError| FailureReason::AuthenticationFailed {
                detail: format!("cannot sign our AUTH: {e}"),
            };
            let how = xrsec_pki::AuthSignature::choose(key, peer_hashes, &DEFAULT_HASH_PREFERENCE)
                .map_err(failed)?;
            let data =
                xrsec_pki::sign_auth(key, how, &signed_octets(prf, octets), rng).map_err(failed)?;
            let certs = chain
                .iter()
                .map(|c| {
                    Payload::Cert(CertPayload {
                        encoding: CERT_ENCODING_X509_SIGNATURE,
                        data: c.der().to_vec(),
                    })
                })
                .collect();
            Ok((
                certs,
                AuthPayload {
                    method: how.method(),
                    data,
                },
            ))
        }
        _ => Ok((
            Vec::new(),
            AuthPayload {
                method: SHARED_KEY_MIC,
                data: psk_auth(prf, &t.psk_local, octets).as_bytes().to_vec(),
            },
        )),
    }
}

/// RFC 7296 2.15: checks the peer's AUTH payload against what it must have
/// signed (`octets`: its own IKE_SA_INIT message, our nonce, its ID keyed with
/// its SK_p) and its identity against the profile's `match identity remote`.
/// With a certificate, first its chain to our trust anchor at `now` and that
/// it vouches for the peer's ID payload `id` (RFC 4945 3.1). Both roles use
/// it; the reason says what to fix, never a key.
#[allow(clippy::too_many_arguments)]
fn authenticate_peer(
    t: &TunnelConfig,
    peer: IpAddr,
    auth: &AuthPayload,
    id: &IdPayload,
    payloads: &[Payload],
    now: Option<std::time::SystemTime>,
    octets: &SignedOctets<'_>,
    prf: xrsec_crypto::PrfId,
) -> Result<Option<String>, FailureReason> {
    let remote_identity = identity_of(id);
    let failed = |detail: String| Err(FailureReason::AuthenticationFailed { detail });
    let how = match &t.remote_auth {
        RemoteAuth::Certificate { trust_anchor } => {
            match verify_signature(trust_anchor, auth, id, payloads, now, &|| {
                signed_octets(prf, octets)
            }) {
                Ok(how) => Some(how),
                Err(detail) => return failed(format!("{peer} ({remote_identity}): {detail}")),
            }
        }
        _ => {
            if auth.method != SHARED_KEY_MIC {
                return failed(format!(
                    "the peer authenticates with method {}; we expect a pre-shared key (2)",
                    auth.method
                ));
            }
            if !verify_psk_auth(prf, &t.psk_remote, octets, &auth.data) {
                return failed(format!(
                    "the AUTH payload of {peer} ({remote_identity}) does not match our pre-shared key for it: the keys differ"
                ));
            }
            None
        }
    };
    if !t.accepts_identity(&remote_identity) {
        return Err(FailureReason::IdentityMismatch {
            got: remote_identity.to_string(),
            expected: describe_matches(t),
        });
    }
    Ok(how)
}

/// The certificate half of [`authenticate_peer`]: the chain in the CERT
/// payloads (end entity first, RFC 7296 3.6) up to `anchor` at `now`, the
/// ID payload against the end entity, then the signature over the octets
/// `signed` builds. Says which certificate and how it signed; the error is
/// the reason, e.g. xrsec-pki's "certificate `...` expired on ...".
fn verify_signature(
    anchor: &xrsec_pki::TrustAnchor,
    auth: &AuthPayload,
    id: &IdPayload,
    payloads: &[Payload],
    now: Option<std::time::SystemTime>,
    signed: &dyn Fn() -> Vec<u8>,
) -> Result<String, String> {
    if !matches!(
        auth.method,
        xrsec_pki::AUTH_METHOD_RSA_SIGNATURE | xrsec_pki::AUTH_METHOD_DIGITAL_SIGNATURE
    ) {
        return Err(format!(
            "the peer authenticates with method {}; we expect a signature (1 or 14)",
            auth.method
        ));
    }
    let now = now.ok_or("no wall-clock time given to check its certificate against")?;
    let mut certs = payloads.iter().filter_map(|p| match p {
        Payload::Cert(c) if c.encoding == CERT_ENCODING_X509_SIGNATURE => Some(c.data.as_slice()),
        _ => None,
    });
    let end_entity = certs
        .next()
        .ok_or("no X.509 certificate (CERT payload of encoding 4) was sent")?;
    let intermediates: Vec<&[u8]> = certs.collect();
    let verified = xrsec_pki::verify_chain(end_entity, &intermediates, anchor, now)
        .map_err(|e| e.to_string())?;
    let identity = xrsec_pki::Identity::from_id_payload(u8::from(id.id_type), &id.data)
        .map_err(|e| e.to_string())?;
    verified
        .check_identity(&identity)
        .map_err(|e| e.to_string())?;
    let how = xrsec_pki::verify_auth(verified.public_key(), auth.method, &auth.data, &signed())
        .map_err(|e| format!("its AUTH signature does not verify: {e}"))?;
    Ok(format!(
        "certificate `{}` (AUTH method {}, {})",
        verified.subject(),
        how.method(),
        how.scheme()
    ))
}

fn describe_matches(t: &TunnelConfig) -> String {
    let v: Vec<String> = t.remote_identity.iter().map(|m| m.to_string()).collect();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_keeps_ipv4_and_drops_ipv6_selectors() {
        let v4 = TrafficSelector::ipv4_prefix("10.1.0.0".parse().unwrap(), 24);
        let got = narrow(&[v4, TrafficSelector::ipv6_any()], &vti_selectors());
        assert_eq!(got, vec![v4]);
        assert!(narrow(&[TrafficSelector::ipv6_any()], &vti_selectors()).is_empty());
    }

    #[test]
    fn intersection_of_protocols_and_ports() {
        let mut a = TrafficSelector::ipv4_any();
        a.ip_protocol = 6;
        a.start_port = 100;
        a.end_port = 200;
        let mut b = TrafficSelector::ipv4_any();
        b.start_port = 150;
        let x = intersect(&a, &b).unwrap();
        assert_eq!((x.ip_protocol, x.start_port, x.end_port), (6, 150, 200));
        b.ip_protocol = 17;
        assert!(intersect(&a, &b).is_none());
    }

    #[test]
    fn back_off_doubles_from_the_initial_interval() {
        let opts = EndpointOptions::default();
        let waits: Vec<u64> = (1..=6).map(|n| backoff(&opts, n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32]);
    }

    /// strongSwan's 4096-bit test chain (xrsec-pki's fixtures): CN=10.99.0.2
    /// with SAN 10.99.0.2, valid from 2026-11-22 for five years.
    fn signing_tunnel() -> (TunnelConfig, std::sync::Arc<xrsec_pki::TrustAnchor>) {
        let key = xrsec_pki::parse_private_key(
            "swan-peer.key",
            include_bytes!("../../xrsec-pki/tests/data/swan-peer.key"),
        )
        .unwrap();
        let chain = xrsec_pki::parse_certificates(
            "swan-peer.crt",
            include_bytes!("../../xrsec-pki/tests/data/swan-peer.crt"),
        )
        .unwrap();
        let anchor = xrsec_pki::TrustAnchor::from_der(include_bytes!(
            "../../xrsec-pki/tests/data/swan-ca.der"
        ))
        .unwrap();
        let ip = Ipv4Addr::new(10, 99, 0, 2);
        let mut t = TunnelConfig::new(TunnelId(1), ip, Ipv4Addr::new(10, 99, 0, 1), b"unused");
        t.local_auth = LocalAuth::Certificate {
            key: std::sync::Arc::new(key),
            chain,
        };
        (t, std::sync::Arc::new(anchor))
    }

    #[test]
    fn a_signature_with_one_flipped_byte_fails_verification_with_its_reason() {
        use rand_chacha::rand_core::SeedableRng;
        let (t, anchor) = signing_tunnel();
        let sk_p = xrsec_crypto::SecretBytes::new(&[9; 32]);
        let id = id_payload(&t.local_identity);
        let id_body = id.body_bytes();
        let octets = SignedOctets {
            real_message: b"the responder's IKE_SA_INIT response",
            peer_nonce: &[5; 32],
            sk_p: &sk_p,
            id_body: &id_body,
        };
        let prf = xrsec_crypto::PrfId::HmacSha2_256;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let hashes = [HashAlgorithm::Sha384];
        let (certs, auth) = our_auth(&mut rng, &t, prf, &octets, Some(&hashes)).unwrap();
        assert_eq!(auth.method, xrsec_pki::AUTH_METHOD_DIGITAL_SIGNATURE);
        let now = Some(std::time::UNIX_EPOCH + Duration::from_secs(1_830_000_000)); // 2027-12
        let signed = || signed_octets(prf, &octets);
        let good = verify_signature(&anchor, &auth, &id, &certs, now, &signed).unwrap();
        assert!(good.contains("AUTH method 14"), "{good}");

        let mut flipped = auth.clone();
        let last = flipped.data.len() - 1;
        flipped.data[last] ^= 0x01;
        let err = verify_signature(&anchor, &flipped, &id, &certs, now, &signed).unwrap_err();
        assert!(
            err.starts_with("its AUTH signature does not verify"),
            "{err}"
        );

        // The same signature over other octets (another nonce) fails too.
        let other = SignedOctets {
            peer_nonce: &[6; 32],
            ..octets
        };
        let err = verify_signature(&anchor, &auth, &id, &certs, now, &|| {
            signed_octets(prf, &other)
        })
        .unwrap_err();
        assert!(
            err.starts_with("its AUTH signature does not verify"),
            "{err}"
        );
    }

    #[test]
    fn rfc_7427_4_without_the_peers_hash_list_an_rsa_key_signs_with_method_1() {
        use rand_chacha::rand_core::SeedableRng;
        let (t, _) = signing_tunnel();
        let sk_p = xrsec_crypto::SecretBytes::new(&[9; 32]);
        let octets = SignedOctets {
            real_message: b"message",
            peer_nonce: &[5; 32],
            sk_p: &sk_p,
            id_body: &[1, 0, 0, 0, 10, 99, 0, 2],
        };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let (certs, auth) = our_auth(
            &mut rng,
            &t,
            xrsec_crypto::PrfId::HmacSha2_256,
            &octets,
            None,
        )
        .unwrap();
        assert_eq!(auth.method, xrsec_pki::AUTH_METHOD_RSA_SIGNATURE);
        // A 4096-bit key: the bare PKCS#1 v1.5 signature, 512 bytes.
        assert_eq!(auth.data.len(), 512);
        assert!(matches!(certs.as_slice(), [Payload::Cert(c)] if c.encoding == 4));
    }
}
