//! Tunnel-mode decapsulation in place: the received ESP packet is checked
//! against the replay window, its ICV verified, decrypted where it lies, the
//! window updated, and the inner packet is a sub-range of the receive
//! buffer that goes to the TUN as it is.
//!
//! The order is RFC 4303's: 3.4.2 SPI lookup (by the caller), 3.4.3 replay
//! pre-check (also inferring the ESN high half), 3.4.4 ICV then decryption,
//! and only then the window update. A run of packets of one SA takes the
//! replay window's lock twice (check all, then update all), never per
//! packet; the ICV checks and decryption run without it.

use core::sync::atomic::Ordering::Relaxed;

use xrsec_crypto::EspError;

use crate::counters::{DropReason, Tally};
use crate::encap::{NEXT_HEADER_IPV4, NEXT_HEADER_IPV6, NEXT_HEADER_NONE};
use crate::inet;
use crate::packet::PacketBuf;
use crate::replay::ReplayError;
use crate::sa::InboundSa;

/// What became of a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxStatus {
    /// Not yet processed.
    Pending,
    /// Decapsulated: `start..end` is now the inner packet, of this next
    /// header.
    Deliver(u8),
    /// Dropped and counted.
    Dropped(DropReason),
    /// Consumed without a drop: a dummy packet (RFC 4303 2.6), a NAT
    /// keepalive, an IKE message handed to the control plane.
    Consumed,
}

/// One received ESP packet: where it lies (`bufs[buf].raw()[start..end]`)
/// and what became of it.
#[derive(Clone, Copy, Debug)]
pub struct RxPacket {
    /// Index of the buffer.
    pub buf: u32,
    /// Start of the ESP packet; after decap, of the inner packet.
    pub start: u32,
    /// End of the ESP packet; after decap, of the inner packet.
    pub end: u32,
    /// SPI read from the packet.
    pub spi: u32,
    /// Full sequence number inferred by the replay check.
    pub seq: u64,
    /// Outcome.
    pub status: RxStatus,
}

impl RxPacket {
    /// A pending packet at `bufs[buf].raw()[start..end]` (at least 8 bytes).
    pub fn new(buf: usize, start: usize, end: usize, spi: u32) -> Self {
        Self {
            buf: buf as u32,
            start: start as u32,
            end: end as u32,
            spi,
            seq: 0,
            status: RxStatus::Pending,
        }
    }

    fn drop(&mut self, reason: DropReason, tally: &mut Tally) {
        self.status = RxStatus::Dropped(reason);
        tally.drop(reason);
    }
}

/// How much of the inner packet to check after decryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InnerCheck {
    /// Tunnel mode: next header 4 (IPv4) or 41 (IPv6) with a matching,
    /// length-consistent IP header; 59 consumed silently; others dropped.
    Tunnel,
    /// ESP only (known-answer tests with transport-mode vectors): any next
    /// header is delivered as it is.
    EspOnly,
}

/// Reads the SPI of an ESP packet (`None` if shorter than SPI + sequence
/// number, or SPI 0, which RFC 4303 2.1 reserves and RFC 3948 uses as the
/// non-ESP marker).
pub fn esp_spi(packet: &[u8]) -> Option<u32> {
    let spi = u32::from_be_bytes(packet.get(..4)?.try_into().ok()?);
    (packet.len() >= 8 && spi != 0).then_some(spi)
}

/// Decapsulates every pending packet of `pkts` with `sa` (the caller looked
/// the SPI up). Counts the run on the SA once.
pub fn decap_run(sa: &InboundSa, pkts: &mut [RxPacket], bufs: &mut [PacketBuf], check: InnerCheck) {
    let mut tally = Tally::default();
    decap_inner(sa, pkts, bufs, check, &mut tally);
    sa.counters.add(&tally);
    sa.after_batch();
}

/// Decapsulates one buffer whose data is an ESP packet (tests, tools,
/// fuzzing): on success the buffer's data is the inner packet and the next
/// header is returned; `Ok(59)` for a dummy packet, whose data is then empty.
pub fn decap_one(sa: &InboundSa, buf: &mut PacketBuf, check: InnerCheck) -> Result<u8, DropReason> {
    let Some(spi) = esp_spi(buf.data()) else {
        return Err(DropReason::Malformed);
    };
    if spi != sa.spi {
        return Err(DropReason::UnknownSpi);
    }
    let mut pkt = [RxPacket::new(0, buf.start(), buf.start() + buf.len(), spi)];
    decap_run(sa, &mut pkt, core::slice::from_mut(buf), check);
    match pkt[0].status {
        RxStatus::Deliver(nh) => {
            buf.set_range(pkt[0].start as usize, pkt[0].end as usize);
            Ok(nh)
        }
        RxStatus::Consumed => {
            buf.set_range(buf.start(), buf.start());
            Ok(NEXT_HEADER_NONE)
        }
        RxStatus::Dropped(r) => Err(r),
        RxStatus::Pending => Err(DropReason::Malformed),
    }
}

fn slice_of<'a>(bufs: &'a mut [PacketBuf], p: &RxPacket) -> Option<&'a mut [u8]> {
    bufs.get_mut(p.buf as usize)?
        .raw_mut()
        .get_mut(p.start as usize..p.end as usize)
}

fn decap_inner(
    sa: &InboundSa,
    pkts: &mut [RxPacket],
    bufs: &mut [PacketBuf],
    check: InnerCheck,
    tally: &mut Tally,
) {
    if sa.expired() {
        for p in pkts.iter_mut().filter(|p| p.status == RxStatus::Pending) {
            p.drop(DropReason::HardLifetime, tally);
        }
        return;
    }
    // RFC 4303 3.4.3: the replay check comes first, before the ICV.
    {
        let Ok(window) = sa.replay.lock() else {
            for p in pkts.iter_mut().filter(|p| p.status == RxStatus::Pending) {
                p.drop(DropReason::Replay, tally);
            }
            return;
        };
        for p in pkts.iter_mut().filter(|p| p.status == RxStatus::Pending) {
            let Some(bytes) = slice_of(bufs, p) else {
                p.drop(DropReason::Malformed, tally);
                continue;
            };
            let Some(seq_lo) = bytes
                .get(4..8)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            else {
                p.drop(DropReason::Malformed, tally);
                continue;
            };
            match window.check(seq_lo) {
                Ok(seq) => p.seq = seq,
                Err(_) => p.drop(DropReason::Replay, tally),
            }
        }
    }
    // RFC 4303 3.4.4: ICV, then decryption, outside the lock.
    for p in pkts.iter_mut().filter(|p| p.status == RxStatus::Pending) {
        let Some(bytes) = slice_of(bufs, p) else {
            p.drop(DropReason::Malformed, tally);
            continue;
        };
        match sa.opener.open_in_place(bytes, (p.seq >> 32) as u32) {
            Ok(opened) => {
                let start = p.start as usize;
                p.start = (start + opened.payload.start) as u32;
                p.end = (start + opened.payload.end) as u32;
                p.status = RxStatus::Deliver(opened.next_header);
            }
            Err(EspError::IntegrityFailure) => p.drop(DropReason::IcvFailure, tally),
            Err(EspError::BadPadding) => p.drop(DropReason::BadPadding, tally),
            Err(_) => p.drop(DropReason::Malformed, tally),
        }
    }
    // RFC 4303 3.4.3: update the window only for authenticated packets; a
    // duplicate within this very run loses here.
    {
        let Ok(mut window) = sa.replay.lock() else {
            for p in pkts
                .iter_mut()
                .filter(|p| matches!(p.status, RxStatus::Deliver(_)))
            {
                p.drop(DropReason::Replay, tally);
            }
            return;
        };
        for p in pkts
            .iter_mut()
            .filter(|p| matches!(p.status, RxStatus::Deliver(_)))
        {
            if let Err(ReplayError::Duplicate | ReplayError::TooOld) = window.update(p.seq) {
                p.drop(DropReason::Replay, tally);
            }
        }
    }
    for p in pkts.iter_mut() {
        let RxStatus::Deliver(nh) = p.status else {
            continue;
        };
        if check == InnerCheck::EspOnly {
            tally.pass((p.end - p.start) as usize);
            continue;
        }
        match nh {
            // RFC 4303 2.6: a dummy packet is discarded silently.
            NEXT_HEADER_NONE => p.status = RxStatus::Consumed,
            NEXT_HEADER_IPV4 | NEXT_HEADER_IPV6 => {
                let inner = slice_of(bufs, p).and_then(|b| inet::inner_len(nh, b));
                match inner {
                    Some(len) => {
                        p.end = p.start + len as u32;
                        tally.pass(len);
                    }
                    None => p.drop(DropReason::BadInner, tally),
                }
            }
            _ => p.drop(DropReason::BadInner, tally),
        }
    }
    let _ = Relaxed;
}
