//! The two halves of a Child SA as the packet path sees them.
//!
//! [`OutboundSa`]: the sealer, the sequence counter and the lifetime
//! accounting of one tunnel's outgoing traffic. One transmit thread serves a
//! tunnel, so the state sits behind a mutex that the thread takes once per
//! batch (uncontended; the control plane never takes it), reserving a run of
//! sequence numbers at once.
//!
//! [`InboundSa`]: the opener (shared, `&self`), the replay window (a mutex
//! taken twice per run of packets of this SA in a batch: once to check, once
//! to update after the ICVs verified) and the counters.
//!
//! Lifetimes (RFC 4301 4.4.2.1): packet and byte counts with a soft limit that
//! asks the control plane for a rekey and a hard limit after which the SA
//! carries nothing more. They are checked per batch: the hard limit on
//! packets is exact, on bytes a batch may overshoot it by its own size.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering::Relaxed};
use std::sync::Mutex;

use crossbeam_channel::Sender;
use xrsec_crypto::{EspKeys, EspOpener, EspSealer, EspSuite, KeyError};

use crate::counters::{DirectionCounters, DirectionSnapshot, DropReason};
use crate::replay::ReplayWindow;

/// Identifies a tunnel (one TUN interface) of the dataplane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub u32);

/// How ESP travels between the peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encap {
    /// IP protocol 50, as IOS-XR and the Linux kernel send it without NAT.
    Native,
    /// ESP in UDP (RFC 3948) from our port 4500 to the peer's `peer_port`
    /// (4500, or what a NAT mapped it to), when NAT detection asks for it.
    Udp {
        /// The peer's UDP port.
        peer_port: u16,
    },
}

impl Encap {
    /// Outer bytes before the ESP header: IPv4 (20), plus UDP (8).
    pub fn outer_len(self) -> usize {
        match self {
            Self::Native => 20,
            Self::Udp { .. } => 28,
        }
    }
}

/// Packet and byte limits of an SA; `u64::MAX` is "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// Packets after which a [`DataplaneEvent::SoftLifetime`] asks for a rekey.
    pub soft_packets: u64,
    /// Packets after which the SA carries nothing more.
    pub hard_packets: u64,
    /// Inner bytes after which a rekey is asked for.
    pub soft_bytes: u64,
    /// Inner bytes after which the SA carries nothing more.
    pub hard_bytes: u64,
}

impl Lifetime {
    /// No limits (time-based lifetimes are the control plane's business).
    pub const UNLIMITED: Lifetime = Lifetime {
        soft_packets: u64::MAX,
        hard_packets: u64::MAX,
        soft_bytes: u64::MAX,
        hard_bytes: u64::MAX,
    };
}

impl Default for Lifetime {
    fn default() -> Self {
        Self::UNLIMITED
    }
}

/// Which half of an SA an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Traffic from the peer (our SPI).
    Inbound,
    /// Traffic to the peer (the peer's SPI).
    Outbound,
}

/// What the dataplane tells the control plane. Rare: at most one of each
/// kind per SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataplaneEvent {
    /// A soft packet/byte limit was reached: rekey now.
    SoftLifetime {
        /// The SA's SPI.
        spi: u32,
        /// Which half.
        direction: Direction,
    },
    /// A hard limit was reached: the SA no longer carries traffic.
    HardLifetime {
        /// The SA's SPI.
        spi: u32,
        /// Which half.
        direction: Direction,
    },
    /// ESN is off and the outbound 32-bit sequence number is used up
    /// (RFC 4303 3.3.3): the SA stopped sending; rekey.
    SequenceExhausted {
        /// The outbound SA's SPI.
        spi: u32,
    },
    /// Raised by the soft-limit heuristic on the sequence number without
    /// ESN: 2^32 - 2^24 packets sent.
    SequenceNearlyExhausted {
        /// The outbound SA's SPI.
        spi: u32,
    },
}

/// Everything needed to install one Child SA (both directions) on a tunnel.
#[derive(Clone, Debug)]
pub struct SaSpec {
    /// Our SPI: the peer sends with it, we look inbound packets up by it.
    pub spi_in: u32,
    /// The peer's SPI: we send with it.
    pub spi_out: u32,
    /// The negotiated transforms.
    pub suite: EspSuite,
    /// Keys of the inbound direction.
    pub keys_in: EspKeys,
    /// Keys of the outbound direction.
    pub keys_out: EspKeys,
    /// Extended sequence numbers negotiated (RFC 4304).
    pub esn: bool,
    /// Replay window in packets (64 by default; up to 65536).
    pub replay_window: u32,
    /// Packet and byte limits, per direction.
    pub lifetime: Lifetime,
    /// Native ESP or ESP in UDP.
    pub encap: Encap,
}

const SEQ_SOFT_MARGIN: u64 = 1 << 24;

/// Sequence counter and sealer of an outbound SA.
#[derive(Debug)]
pub(crate) struct OutboundState {
    pub(crate) sealer: EspSealer,
    /// Next sequence number to send (the first packet has 1).
    pub(crate) next_seq: u64,
}

/// The outbound half of a Child SA, owned by one tunnel.
#[derive(Debug)]
pub struct OutboundSa {
    pub(crate) spi: u32,
    pub(crate) suite: EspSuite,
    pub(crate) esn: bool,
    /// ESP in UDP (else native).
    udp: bool,
    /// The peer's UDP port (ESP in UDP), which a NAT rebinding may move
    /// while the SA is in use ([`OutboundSa::move_peer_port`]); read once
    /// per batch.
    peer_port: AtomicU16,
    pub(crate) peer: Ipv4Addr,
    pub(crate) lifetime: Lifetime,
    /// Largest inner packet whose ESP packet fits the path MTU.
    pub(crate) max_inner: usize,
    pub(crate) state: Mutex<OutboundState>,
    pub(crate) counters: DirectionCounters,
    soft_signalled: AtomicBool,
    hard_signalled: AtomicBool,
    exhausted_signalled: AtomicBool,
    nearly_exhausted_signalled: AtomicBool,
    events: Option<Sender<DataplaneEvent>>,
}

/// The largest inner packet whose ESP packet, with its outer headers, fits
/// in `path_mtu` bytes.
pub fn max_inner_len(suite: &EspSuite, encap: Encap, path_mtu: usize) -> usize {
    let budget = path_mtu.saturating_sub(encap.outer_len());
    let mut inner = budget.saturating_sub(suite.header_len() + suite.icv_len() + 2);
    while inner > 0 && suite.sealed_len(inner).is_none_or(|n| n > budget) {
        inner -= 1;
    }
    inner
}

impl OutboundSa {
    /// The outbound half of `spec` towards `peer`.
    pub fn new(
        spec: &SaSpec,
        peer: Ipv4Addr,
        path_mtu: usize,
        events: Option<Sender<DataplaneEvent>>,
    ) -> Result<Self, KeyError> {
        let sealer = EspSealer::new(spec.suite, &spec.keys_out, spec.spi_out, spec.esn)?;
        Ok(Self::with_sealer(spec, sealer, peer, path_mtu, events))
    }

    /// Like [`OutboundSa::new`] with a sealer built by the caller (known
    /// answer tests seed the CBC IV generator or use explicit IVs).
    pub fn with_sealer(
        spec: &SaSpec,
        sealer: EspSealer,
        peer: Ipv4Addr,
        path_mtu: usize,
        events: Option<Sender<DataplaneEvent>>,
    ) -> Self {
        Self {
            spi: spec.spi_out,
            suite: spec.suite,
            esn: spec.esn,
            udp: matches!(spec.encap, Encap::Udp { .. }),
            peer_port: AtomicU16::new(match spec.encap {
                Encap::Udp { peer_port } => peer_port,
                Encap::Native => 0,
            }),
            peer,
            lifetime: spec.lifetime,
            max_inner: max_inner_len(&spec.suite, spec.encap, path_mtu),
            state: Mutex::new(OutboundState {
                sealer,
                next_seq: 1,
            }),
            counters: DirectionCounters::default(),
            soft_signalled: AtomicBool::new(false),
            hard_signalled: AtomicBool::new(false),
            exhausted_signalled: AtomicBool::new(false),
            nearly_exhausted_signalled: AtomicBool::new(false),
            events,
        }
    }

    /// The SPI on the wire (the peer's).
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// The suite.
    pub fn suite(&self) -> &EspSuite {
        &self.suite
    }

    /// Native or UDP (to the peer's current port).
    pub fn encap(&self) -> Encap {
        if self.udp {
            Encap::Udp {
                peer_port: self.peer_port.load(Relaxed),
            }
        } else {
            Encap::Native
        }
    }

    /// Sends ESP in UDP to the peer's `port` from now on (a NAT rebinding,
    /// RFC 7296 2.23), with the same keys and sequence numbers. `false` for
    /// native ESP, which has no port.
    pub fn move_peer_port(&self, port: u16) -> bool {
        if self.udp {
            self.peer_port.store(port, Relaxed);
        }
        self.udp
    }

    /// The peer's underlay address.
    pub fn peer(&self) -> Ipv4Addr {
        self.peer
    }

    /// Largest inner packet that fits the path once encapsulated.
    pub fn max_inner(&self) -> usize {
        self.max_inner
    }

    /// Counters so far.
    pub fn counters(&self) -> DirectionSnapshot {
        self.counters.snapshot()
    }

    /// Next sequence number to be sent.
    pub fn next_seq(&self) -> u64 {
        self.state.lock().map(|s| s.next_seq).unwrap_or(0)
    }

    /// Sets the next sequence number (tests: start near the end of the
    /// space, or at a known-answer vector's number).
    pub fn set_next_seq(&self, seq: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.next_seq = seq;
        }
    }

    /// How many of `wanted` packets the SA may still send under its hard
    /// packet limit and its sequence space, and why the rest are refused;
    /// raises the events that apply.
    pub(crate) fn admit(&self, next_seq: u64, wanted: usize) -> (usize, DropReason) {
        let sent = self.counters.packets.load(Relaxed);
        let bytes = self.counters.bytes.load(Relaxed);
        if sent >= self.lifetime.hard_packets || bytes >= self.lifetime.hard_bytes {
            self.signal_hard();
            return (0, DropReason::HardLifetime);
        }
        let by_lifetime = self.lifetime.hard_packets - sent;
        // RFC 4303 3.3.3: without ESN the counter must not cycle: the last
        // number sent is 2^32 - 1.
        // A next number of 0 means the 64-bit space wrapped: exhausted.
        let by_seq = if next_seq == 0 {
            0
        } else if self.esn {
            (u64::MAX - next_seq).saturating_add(1)
        } else {
            (u64::from(u32::MAX) + 1).saturating_sub(next_seq)
        };
        if !self.esn
            && next_seq + SEQ_SOFT_MARGIN > u64::from(u32::MAX)
            && !self.nearly_exhausted_signalled.swap(true, Relaxed)
        {
            self.emit(DataplaneEvent::SequenceNearlyExhausted { spi: self.spi });
        }
        let wanted = wanted as u64;
        if by_seq < wanted.min(by_lifetime) || by_seq == 0 {
            if !self.exhausted_signalled.swap(true, Relaxed) {
                self.emit(DataplaneEvent::SequenceExhausted { spi: self.spi });
            }
            return (by_seq as usize, DropReason::SequenceExhausted);
        }
        (wanted.min(by_lifetime) as usize, DropReason::HardLifetime)
    }

    /// After a batch was counted: raises the soft/hard events if a limit
    /// was crossed.
    pub(crate) fn after_batch(&self) {
        let sent = self.counters.packets.load(Relaxed);
        let bytes = self.counters.bytes.load(Relaxed);
        let lt = &self.lifetime;
        if (sent >= lt.soft_packets || bytes >= lt.soft_bytes)
            && !self.soft_signalled.swap(true, Relaxed)
        {
            self.emit(DataplaneEvent::SoftLifetime {
                spi: self.spi,
                direction: Direction::Outbound,
            });
        }
        if sent >= lt.hard_packets || bytes >= lt.hard_bytes {
            self.signal_hard();
        }
    }

    fn signal_hard(&self) {
        if !self.hard_signalled.swap(true, Relaxed) {
            self.emit(DataplaneEvent::HardLifetime {
                spi: self.spi,
                direction: Direction::Outbound,
            });
        }
    }

    fn emit(&self, event: DataplaneEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(event);
        }
    }
}

/// The inbound half of a Child SA.
#[derive(Debug)]
pub struct InboundSa {
    pub(crate) spi: u32,
    pub(crate) suite: EspSuite,
    pub(crate) tunnel: TunnelId,
    pub(crate) opener: EspOpener,
    pub(crate) replay: Mutex<ReplayWindow>,
    pub(crate) lifetime: Lifetime,
    pub(crate) counters: DirectionCounters,
    pub(crate) encap: Encap,
    soft_signalled: AtomicBool,
    hard_signalled: AtomicBool,
    events: Option<Sender<DataplaneEvent>>,
}

impl InboundSa {
    /// The inbound half of `spec`, delivering to `tunnel`.
    pub fn new(
        spec: &SaSpec,
        tunnel: TunnelId,
        events: Option<Sender<DataplaneEvent>>,
    ) -> Result<Self, KeyError> {
        Ok(Self {
            spi: spec.spi_in,
            suite: spec.suite,
            tunnel,
            opener: EspOpener::new(spec.suite, &spec.keys_in, spec.esn)?,
            replay: Mutex::new(ReplayWindow::new(spec.replay_window, spec.esn)),
            lifetime: spec.lifetime,
            counters: DirectionCounters::default(),
            encap: spec.encap,
            soft_signalled: AtomicBool::new(false),
            hard_signalled: AtomicBool::new(false),
            events,
        })
    }

    /// Our SPI.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// The suite.
    pub fn suite(&self) -> &EspSuite {
        &self.suite
    }

    /// The tunnel this SA delivers to.
    pub fn tunnel(&self) -> TunnelId {
        self.tunnel
    }

    /// Counters so far.
    pub fn counters(&self) -> DirectionSnapshot {
        self.counters.snapshot()
    }

    /// Positions the replay window so that `seq` is the next number
    /// expected (tests and known-answer vectors only).
    #[doc(hidden)]
    pub fn reset_replay_to(&self, seq: u64) {
        if let Ok(mut w) = self.replay.lock() {
            w.start_at(seq);
        }
    }

    /// Whether the hard limit was reached (packets are then dropped).
    pub(crate) fn expired(&self) -> bool {
        let lt = &self.lifetime;
        self.counters.packets.load(Relaxed) >= lt.hard_packets
            || self.counters.bytes.load(Relaxed) >= lt.hard_bytes
    }

    pub(crate) fn after_batch(&self) {
        let sent = self.counters.packets.load(Relaxed);
        let bytes = self.counters.bytes.load(Relaxed);
        let lt = &self.lifetime;
        if (sent >= lt.soft_packets || bytes >= lt.soft_bytes)
            && !self.soft_signalled.swap(true, Relaxed)
        {
            self.emit(DataplaneEvent::SoftLifetime {
                spi: self.spi,
                direction: Direction::Inbound,
            });
        }
        if (sent >= lt.hard_packets || bytes >= lt.hard_bytes)
            && !self.hard_signalled.swap(true, Relaxed)
        {
            self.emit(DataplaneEvent::HardLifetime {
                spi: self.spi,
                direction: Direction::Inbound,
            });
        }
    }

    fn emit(&self, event: DataplaneEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(event);
        }
    }
}
