//! Per-SA counters for `show ipsec sa`: packets and bytes each way and drops by
//! reason. The packet path adds to them once per batch (a local tally per run
//! of packets of one SA, then one `fetch_add` per counter), never takes a lock,
//! and a drop reason is a `Copy` enum indexing an array, never a string.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why the dataplane dropped a packet. Each reason has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum DropReason {
    /// RFC 4303 3.4.3: a duplicate, or older than the replay window.
    Replay = 0,
    /// RFC 4303 3.4.4: the ICV did not verify (also GCM tag failures).
    IcvFailure,
    /// The decrypted trailer's padding is not 1, 2, 3, ... or runs past the
    /// payload (RFC 4303 2.4).
    BadPadding,
    /// No inbound SA has this SPI (RFC 4303 3.4.2: discard, auditable).
    UnknownSpi,
    /// A packet was read from a tunnel that has no outbound SA (yet, or any
    /// more).
    NoOutboundSa,
    /// An inner packet does not fit the path once encapsulated (an ICMP
    /// fragmentation-needed goes back when DF is set).
    TooBig,
    /// The packet is shorter than an ESP header, IV, trailer and ICV, or its
    /// ciphertext is not a whole number of cipher blocks.
    Malformed,
    /// After decryption: the inner packet is not an IPv4 packet for next
    /// header 4 (or IPv6 for 41), or its lengths do not add up; or a
    /// transport-mode next header reached this tunnel-mode SA.
    BadInner,
    /// The SA reached its hard packet/byte lifetime.
    HardLifetime,
    /// ESN off and the 32-bit outbound sequence is used up (RFC 4303 3.3.3):
    /// the SA stops sending until it is replaced.
    SequenceExhausted,
    /// The socket or TUN write failed (buffer full, no route, ...).
    SendError,
}

impl DropReason {
    /// Number of reasons (the counter array's length).
    pub const COUNT: usize = 11;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        Self::Replay,
        Self::IcvFailure,
        Self::BadPadding,
        Self::UnknownSpi,
        Self::NoOutboundSa,
        Self::TooBig,
        Self::Malformed,
        Self::BadInner,
        Self::HardLifetime,
        Self::SequenceExhausted,
        Self::SendError,
    ];

    /// A short stable name for status output and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::IcvFailure => "icv-failure",
            Self::BadPadding => "bad-padding",
            Self::UnknownSpi => "unknown-spi",
            Self::NoOutboundSa => "no-outbound-sa",
            Self::TooBig => "too-big",
            Self::Malformed => "malformed",
            Self::BadInner => "bad-inner",
            Self::HardLifetime => "hard-lifetime",
            Self::SequenceExhausted => "sequence-exhausted",
            Self::SendError => "send-error",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Live counters of one direction of an SA (or of the dataplane when no SA
/// is known, e.g. unknown SPIs).
#[derive(Debug, Default)]
pub struct DirectionCounters {
    /// Packets that passed (sealed and sent / opened and written).
    pub packets: AtomicU64,
    /// Their bytes: inner packet bytes (what lifetimes count).
    pub bytes: AtomicU64,
    /// Drops by [`DropReason`] index.
    pub drops: [AtomicU64; DropReason::COUNT],
}

impl DirectionCounters {
    /// Adds a batch's tally.
    pub fn add(&self, tally: &Tally) {
        if tally.packets != 0 {
            self.packets.fetch_add(tally.packets, Relaxed);
            self.bytes.fetch_add(tally.bytes, Relaxed);
        }
        if tally.any_drop {
            for (counter, &n) in self.drops.iter().zip(tally.drops.iter()) {
                if n != 0 {
                    counter.fetch_add(n, Relaxed);
                }
            }
        }
    }

    /// Counts one drop right away (rare paths).
    pub fn drop_one(&self, reason: DropReason) {
        self.drops[reason as usize].fetch_add(1, Relaxed);
    }

    /// A consistent-enough copy for display.
    pub fn snapshot(&self) -> DirectionSnapshot {
        let mut drops = [0; DropReason::COUNT];
        for (d, c) in drops.iter_mut().zip(self.drops.iter()) {
            *d = c.load(Relaxed);
        }
        DirectionSnapshot {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            drops,
        }
    }
}

/// A batch's local tally, added to the atomics once.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// Packets that passed.
    pub packets: u64,
    /// Inner bytes that passed.
    pub bytes: u64,
    /// Drops by reason.
    pub drops: [u64; DropReason::COUNT],
    any_drop: bool,
}

impl Tally {
    /// One packet of `bytes` inner bytes passed.
    #[inline]
    pub fn pass(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }

    /// One packet dropped.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
        self.any_drop = true;
    }

    /// Whether anything was counted.
    pub fn is_empty(&self) -> bool {
        self.packets == 0 && !self.any_drop
    }
}

/// Counters of one direction, copied out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionSnapshot {
    /// Packets that passed.
    pub packets: u64,
    /// Inner bytes that passed.
    pub bytes: u64,
    /// Drops by [`DropReason`] index.
    pub drops: [u64; DropReason::COUNT],
}

impl DirectionSnapshot {
    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}
