//! What the negotiator tells the daemon: SAs up and down, negotiations that
//! failed and why, and the status rows of `show ikev2 session`.
//!
//! Invariants: no `Debug` output shows a key or a pre-shared key (keys are
//! [`EspKeys`] and [`SecretBytes`], which print their lengths only); only
//! [`ChildSa`] (for the dataplane) and [`IkeKeyExport`] (for `--save-keys`)
//! carry keys at all; every failure reason displays as a sentence a network
//! engineer can act on.

use core::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xrsec_crypto::{Encr, EspKeys, EspSuite, IntegId, Role, SecretBytes};

use crate::config::{Identity, TunnelId};
use crate::natd::NatStatus;
use crate::proposal::IkeAlgorithms;
use crate::wire::TrafficSelector;

/// An IKE SA of this endpoint, stable for its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u64);

impl fmt::Display for IkeSaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Something the daemon acts on. Poll with [`crate::Endpoint::poll_event`]
/// after every `handle_*`, `initiate` or `delete_*` call.
#[derive(Debug)]
#[non_exhaustive]
// ChildSa is large and events are rare: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// An IKE SA was authenticated.
    IkeSaUp {
        id: IkeSaId,
        tunnel: TunnelId,
        info: IkeSaInfo,
    },
    /// A Child SA pair is ready: install its inbound half in the dataplane,
    /// and its outbound half too when [`ChildSa::outbound`] says so (else
    /// [`Event::ChildSaOutbound`] follows).
    ChildSaUp(ChildSa),
    /// Switch the tunnel's outbound traffic to this Child SA, installed
    /// earlier with `outbound: false` (the second half of a rekey the peer
    /// started, RFC 7296 2.8: the peer has our answer, so its inbound half
    /// is in).
    ChildSaOutbound {
        id: IkeSaId,
        tunnel: TunnelId,
        spi_in: u32,
        spi_out: u32,
    },
    /// A Child SA is gone: remove it from the dataplane.
    ChildSaDown {
        id: IkeSaId,
        tunnel: TunnelId,
        spi_in: u32,
        spi_out: u32,
        reason: DownReason,
    },
    /// An established IKE SA is gone (its Child SAs got their own events
    /// first).
    IkeSaDown {
        id: IkeSaId,
        tunnel: TunnelId,
        reason: DownReason,
    },
    /// A negotiation (of an IKE SA, or of the Child SA inside IKE_AUTH) did
    /// not succeed.
    NegotiationFailed {
        tunnel: TunnelId,
        reason: FailureReason,
    },
    /// The peer answered a liveness check.
    PeerAlive { id: IkeSaId, tunnel: TunnelId },
    /// The peer's address or port changed (NAT rebinding, RFC 7296 2.23):
    /// move the Child SAs' ESP-in-UDP destination.
    PeerAddressChanged {
        id: IkeSaId,
        tunnel: TunnelId,
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// A negotiated IKE SA, as reported in [`Event::IkeSaUp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeSaInfo {
    pub role: Role,
    pub spi_i: u64,
    pub spi_r: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub algorithms: IkeAlgorithms,
    pub local_identity: Identity,
    pub remote_identity: Identity,
    pub nat: NatStatus,
    pub lifetime: Duration,
}

/// One Child SA pair: everything the dataplane needs.
#[derive(Clone, Debug)]
pub struct ChildSa {
    pub tunnel: TunnelId,
    pub ike_sa: IkeSaId,
    /// Our role in the exchange that created it.
    pub role: Role,
    /// The SPI the peer puts in packets to us (we chose it).
    pub spi_in: u32,
    /// The SPI we put in packets to the peer (it chose it).
    pub spi_out: u32,
    pub suite: EspSuite,
    pub keys_in: EspKeys,
    pub keys_out: EspKeys,
    /// Extended sequence numbers.
    pub esn: bool,
    /// Our side's traffic selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's traffic selectors.
    pub remote_ts: Vec<TrafficSelector>,
    pub lifetime: Duration,
    pub lifetime_kilobytes: Option<u64>,
    pub replay_window: u32,
    /// Our address and port for ESP in UDP (the IKE SA's).
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// NAT-T: ESP travels in UDP on port 4500 (RFC 3948).
    pub udp_encap: bool,
    /// Send with it at once. `false` for a Child SA the peer's rekey
    /// created: only its inbound half goes in now, and
    /// [`Event::ChildSaOutbound`] switches the outbound half on later.
    pub outbound: bool,
    /// The inbound SPI of the Child SA this one rekeys (that one goes down
    /// a few seconds later with [`DownReason::Rekeyed`]).
    pub rekey_of: Option<u32>,
}

/// Why an SA went down.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownReason {
    /// We deleted it (`delete_ike_sa`, `delete_child_sa`).
    LocalDelete,
    /// The peer sent an INFORMATIONAL DELETE.
    PeerDelete,
    /// Our request went unanswered.
    NoResponse { exchange: &'static str, tries: u32 },
    /// The peer negotiated a new IKE SA with INITIAL_CONTACT (RFC 7296 2.4):
    /// it has forgotten this one (e.g. it restarted).
    InitialContact,
    /// The peer rejected our authentication after we accepted its own.
    PeerAuthenticationFailed,
    /// Both ends initiated the tunnel at once and two IKE SAs came up; this
    /// one lost to `kept` by the rule both ends apply (keep the IKE SA with
    /// the lower initiator SPI, which a NAT cannot make the two ends see
    /// differently). The tunnel stays up on `kept`: nothing to re-initiate.
    Duplicate { kept: IkeSaId },
    /// Replaced by a rekey (RFC 7296 1.3.3): the new Child SA carries the
    /// traffic; this one's inbound half took the packets still in flight.
    Rekeyed { new_spi_in: u32 },
    /// Created by a rekey that collided with another rekey of the same SA
    /// and lost by the nonce rule (RFC 7296 2.8.1): redundant.
    RekeyCollision,
    /// Dead peer detection: `checks` liveness checks `interval` apart went
    /// unanswered.
    DeadPeer { checks: u32, interval: Duration },
    /// Its hard lifetime ended before a rekey replaced it.
    LifetimeExpired { lifetime: Duration },
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocalDelete => f.write_str("deleted locally"),
            Self::PeerDelete => f.write_str("deleted by the peer"),
            Self::NoResponse { exchange, tries } => write!(
                f,
                "the peer did not answer our {exchange} request ({tries} transmissions)"
            ),
            Self::InitialContact => f.write_str(
                "the peer started a new IKE SA with INITIAL_CONTACT (it restarted or lost its state)",
            ),
            Self::PeerAuthenticationFailed => f.write_str(
                "the peer rejected our authentication: check the pre-shared key and `match identity remote` on the peer",
            ),
            Self::Duplicate { kept } => write!(
                f,
                "duplicate of IKE SA {kept} (both peers initiated at once); kept the one with the lower initiator SPI"
            ),
            Self::Rekeyed { new_spi_in } => {
                write!(f, "rekeyed (replaced by SPI in 0x{new_spi_in:08x})")
            }
            Self::RekeyCollision => f.write_str(
                "redundant: both peers rekeyed the same SA at once and the other rekey won (lowest nonce, RFC 7296 2.8)",
            ),
            Self::DeadPeer { checks, interval } => write!(
                f,
                "dead peer: {checks} liveness checks {} s apart went unanswered (dpd)",
                interval.as_secs()
            ),
            Self::LifetimeExpired { lifetime } => write!(
                f,
                "hard lifetime of {} s reached without a successful rekey",
                lifetime.as_secs()
            ),
        }
    }
}

/// Which SA a negotiation failure is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaKind {
    /// The IKE SA (IKE_SA_INIT proposals).
    Ike,
    /// The Child SA (ESP proposals in IKE_AUTH).
    Child,
}

impl fmt::Display for SaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ike => "IKE",
            Self::Child => "ESP",
        })
    }
}

/// Why a negotiation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// No proposal in common. `theirs` is the peer's offer when we were the
    /// responder; an initiator only learns that its offer was refused.
    NoProposalChosen {
        sa: SaKind,
        ours: String,
        theirs: Option<String>,
    },
    /// The peer's AUTH did not verify, or the peer refused ours.
    AuthenticationFailed { detail: String },
    /// The peer authenticated as an identity our profile does not accept.
    IdentityMismatch { got: String, expected: String },
    /// The peer answered with an error notify not covered above.
    PeerNotify {
        notify_type: u16,
        name: &'static str,
    },
    /// No traffic selectors in common.
    TsUnacceptable { detail: String },
    /// A message was malformed or lacked a required payload.
    InvalidSyntax { detail: String },
    /// Our request went unanswered after every retransmission. `oversized`
    /// says the request went whole though larger than the fragment size,
    /// the likely cause when a path drops IP fragments.
    NoResponse {
        exchange: &'static str,
        tries: u32,
        oversized: Option<Oversized>,
    },
    /// The peer asked for a DH group we do not offer, or asked twice.
    InvalidKePayload { requested: u16 },
    /// The responder's choice is not something we offered.
    InvalidProposalReply { detail: &'static str },
    /// The peer's key exchange value is unusable.
    KeyExchange { detail: String },
    /// We answered the peer's IKE_SA_INIT but its IKE_AUTH never came.
    HalfOpenTimeout { peer: SocketAddr },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoProposalChosen {
                sa,
                ours,
                theirs: Some(theirs),
            } => write!(
                f,
                "no {sa} proposal in common: peer offered {theirs}; we accept {ours}"
            ),
            Self::NoProposalChosen {
                sa,
                ours,
                theirs: None,
            } => write!(
                f,
                "the peer accepted none of our {sa} proposals (NO_PROPOSAL_CHOSEN); we offered {ours}"
            ),
            Self::AuthenticationFailed { detail } => {
                write!(f, "authentication failed: {detail}")
            }
            Self::IdentityMismatch { got, expected } => write!(
                f,
                "the peer identified as {got}, but `match identity remote` accepts only {expected}"
            ),
            Self::PeerNotify { notify_type, name } => {
                write!(f, "the peer answered with error {name} ({notify_type})")
            }
            Self::TsUnacceptable { detail } => {
                write!(f, "no traffic selectors in common (TS_UNACCEPTABLE): {detail}")
            }
            Self::InvalidSyntax { detail } => write!(f, "malformed message: {detail}"),
            Self::NoResponse {
                exchange,
                tries,
                oversized: None,
            } => write!(
                f,
                "no response to {exchange} after {tries} transmissions: is the peer up and UDP 500/4500 open?"
            ),
            Self::NoResponse {
                exchange,
                tries,
                oversized: Some(o),
            } => write!(
                f,
                "no response to {exchange} after {tries} transmissions: our request took an IP datagram of {} bytes, more than the fragment size {}, and went unfragmented because {}; a path that drops IP fragments loses it: {}",
                o.bytes,
                o.fragment_size,
                o.why_whole(),
                o.fix()
            ),
            Self::InvalidKePayload { requested } => write!(
                f,
                "the peer requires DH group {requested}, which no proposal of ours lists"
            ),
            Self::InvalidProposalReply { detail } => {
                write!(f, "the peer's proposal choice is invalid: {detail}")
            }
            Self::KeyExchange { detail } => write!(f, "key exchange failed: {detail}"),
            Self::HalfOpenTimeout { peer } => write!(
                f,
                "{peer} started IKE_SA_INIT but never sent IKE_AUTH (half-open SA timed out)"
            ),
        }
    }
}

/// An encrypted message sent whole although larger than
/// [`crate::EndpointOptions::fragment_size`], because IKE fragmentation
/// (RFC 7383) was not negotiated: the IP layer fragments it, and a path
/// that drops IP fragments loses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Oversized {
    /// The IP datagram it took (IP and UDP headers included).
    pub bytes: usize,
    pub fragment_size: u16,
    /// Fragmentation is off here ([`crate::EndpointOptions::fragmentation`]);
    /// otherwise the peer did not offer it.
    pub disabled_locally: bool,
}

impl Oversized {
    /// Why the message was not fragmented, as the end of a sentence.
    pub fn why_whole(&self) -> &'static str {
        if self.disabled_locally {
            "IKE fragmentation (RFC 7383) is disabled on this end"
        } else {
            "the peer does not support IKE fragmentation (RFC 7383)"
        }
    }

    /// What to change so that it is fragmented, as a sentence.
    pub fn fix(&self) -> &'static str {
        if self.disabled_locally {
            "remove `no ikev2 fragmentation` from this router's configuration"
        } else {
            "enable IKE fragmentation on the peer (`ikev2 fragmentation` on xrsec, \
             `crypto ikev2 fragmentation` on Cisco IOS XE, `fragmentation = yes` on strongSwan)"
        }
    }
}

/// A Child SA in a status row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildInfo {
    pub spi_in: u32,
    pub spi_out: u32,
    pub suite: EspSuite,
    /// The suite's name as `show` prints it ("AES-CBC-256/HMAC-SHA-256-128").
    pub suite_name: String,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub udp_encap: bool,
    pub created: Instant,
    /// When our rekey starts (the soft lifetime); `None` once a rekey of
    /// it is under way or done by the peer.
    pub rekey_at: Option<Instant>,
    /// The hard lifetime: the SA is gone by then.
    pub expire_at: Instant,
    /// Made by the peer's rekey, receiving only until the peer deletes the
    /// SA it replaces.
    pub outbound_pending: bool,
}

/// One row of `show ikev2 session [detail]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: IkeSaId,
    pub tunnel: TunnelId,
    pub tunnel_name: String,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub role: Role,
    /// "READY", "CONNECTING" or "DELETING".
    pub state: &'static str,
    /// `Status(Description)` as IOS-XR prints it: "READY (Negotiation
    /// done)", "CONNECTING (IKE_SA_INIT sent)", "CONNECTING (IKE_AUTH
    /// sent)", "CONNECTING (waiting for IKE_AUTH)" (responder, half-open)
    /// or "DELETING (DELETE sent)".
    pub state_description: &'static str,
    /// Known once IKE_SA_INIT completed.
    pub algorithms: Option<IkeAlgorithms>,
    /// Encryption, PRF, integrity and DH names for `show` ("-" until known).
    pub encr_name: &'static str,
    pub prf_name: &'static str,
    pub integ_name: &'static str,
    pub dh_name: &'static str,
    /// "PSK".
    pub local_auth: &'static str,
    pub remote_auth: &'static str,
    pub lifetime: Duration,
    pub established_at: Option<Instant>,
    /// When we rekey the IKE SA and when it expires, once established.
    pub rekey_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    pub spi_i: u64,
    pub spi_r: u64,
    pub local_identity: Identity,
    pub remote_identity: Option<Identity>,
    pub nat: NatStatus,
    pub children: Vec<ChildInfo>,
}

/// An IKE SA's SK payload keys, for Wireshark's `ikev2_decryption_table`
/// (SPIi, SPIr, SK_ei, SK_er, encryption algorithm, SK_ai, SK_ar, integrity
/// algorithm).
///
/// For `--save-keys` only: whoever writes these out writes secrets that
/// decrypt every IKE message of the SA (not its ESP traffic), and must warn
/// the operator. The keys zeroize on drop and print as their lengths.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IkeKeyExport {
    pub spi_i: u64,
    pub spi_r: u64,
    pub encr: Encr,
    /// `None` with AES-GCM (the SK_a keys are then empty).
    pub integ: Option<IntegId>,
    /// SK_ei as derived; with AES-GCM its last 4 bytes are the salt
    /// (RFC 5282 7.1), as Wireshark expects.
    pub sk_ei: SecretBytes,
    /// SK_er, as SK_ei.
    pub sk_er: SecretBytes,
    pub sk_ai: SecretBytes,
    pub sk_ar: SecretBytes,
}
