//! Tunnel-mode encapsulation (RFC 4303 3.1.2): the whole inner IP packet is
//! the ESP payload. In place: the ESP header and IV are written into the
//! buffer's headroom in front of the inner packet, padding, pad length, next
//! header and ICV into its tailroom, and the data range of the buffer
//! becomes the ESP packet (SPI through ICV), which the kernel then puts
//! behind an outer IPv4 (and UDP) header.
//!
//! A batch takes the SA's state once: the sequence numbers of the whole
//! batch are reserved in one step, and the counters are added once.

use crate::counters::{DropReason, Tally};
use crate::packet::PacketBuf;
use crate::sa::OutboundSa;

/// RFC 4303 2.6 / IANA protocol numbers of tunnel-mode payloads.
pub const NEXT_HEADER_IPV4: u8 = 4;
/// IPv6 in tunnel mode.
pub const NEXT_HEADER_IPV6: u8 = 41;
/// A dummy packet (RFC 4303 2.6).
pub const NEXT_HEADER_NONE: u8 = 59;

/// Next header for an inner packet, from its IP version nibble.
pub fn next_header_of(inner: &[u8]) -> Option<u8> {
    match inner.first()? >> 4 {
        4 => Some(NEXT_HEADER_IPV4),
        6 => Some(NEXT_HEADER_IPV6),
        _ => None,
    }
}

/// Encapsulates every buffer whose verdict is `Ok(())` in place: on return
/// such a buffer's data is the ESP packet and its verdict stays `Ok(())`, or
/// the verdict says why it was dropped (its data is then unspecified).
/// Buffers with an `Err` verdict on entry are left alone (and were counted
/// by whoever dropped them). Counters are updated once for the batch.
pub fn encap_batch(
    sa: &OutboundSa,
    bufs: &mut [PacketBuf],
    verdicts: &mut [Result<(), DropReason>],
) {
    let mut tally = Tally::default();
    encap_inner(sa, bufs, verdicts, &mut tally, None);
    sa.counters.add(&tally);
    sa.after_batch();
}

/// Seals one buffer with a given IV and next header, at the SA's next
/// sequence number. FOR KNOWN-ANSWER TESTS ONLY (the published ESP vectors
/// carry their own IV; a GCM IV must never repeat under a key).
#[doc(hidden)]
pub fn encap_one_with_explicit_iv(
    sa: &OutboundSa,
    buf: &mut PacketBuf,
    next_header: u8,
    iv: &[u8],
) -> Result<(), DropReason> {
    let mut verdict = [Ok(())];
    let mut tally = Tally::default();
    encap_inner(
        sa,
        core::slice::from_mut(buf),
        &mut verdict,
        &mut tally,
        Some((next_header, iv)),
    );
    sa.counters.add(&tally);
    sa.after_batch();
    verdict[0]
}

fn encap_inner(
    sa: &OutboundSa,
    bufs: &mut [PacketBuf],
    verdicts: &mut [Result<(), DropReason>],
    tally: &mut Tally,
    explicit: Option<(u8, &[u8])>,
) {
    let n = bufs.len().min(verdicts.len());
    let wanted = verdicts[..n].iter().filter(|v| v.is_ok()).count();
    if wanted == 0 {
        return;
    }
    let suite = sa.suite;
    let header_len = suite.header_len();
    let max_trailer = suite.max_trailer_len();
    let Ok(mut state) = sa.state.lock() else {
        // Poisoned: a bug elsewhere panicked mid-batch; refuse to send with
        // a sequence counter in an unknown state.
        for v in verdicts[..n].iter_mut().filter(|v| v.is_ok()) {
            *v = Err(DropReason::SequenceExhausted);
            tally.drop(DropReason::SequenceExhausted);
        }
        return;
    };
    let (mut allowed, refusal) = sa.admit(state.next_seq, wanted);
    let mut seq = state.next_seq;
    for (buf, verdict) in bufs[..n].iter_mut().zip(verdicts[..n].iter_mut()) {
        if verdict.is_err() {
            continue;
        }
        if allowed == 0 {
            *verdict = Err(refusal);
            tally.drop(refusal);
            continue;
        }
        let inner_len = buf.len();
        let next_header = match explicit {
            Some((nh, _)) => Some(nh),
            None => next_header_of(buf.data()),
        };
        let Some(next_header) = next_header else {
            *verdict = Err(DropReason::BadInner);
            tally.drop(DropReason::BadInner);
            continue;
        };
        if explicit.is_none() && inner_len > sa.max_inner {
            *verdict = Err(DropReason::TooBig);
            tally.drop(DropReason::TooBig);
            continue;
        }
        if buf.headroom() < header_len || buf.tailroom() < max_trailer {
            *verdict = Err(DropReason::TooBig);
            tally.drop(DropReason::TooBig);
            continue;
        }
        let esp_start = buf.start() - header_len;
        let region_end = buf.start() + inner_len + max_trailer;
        let region = &mut buf.raw_mut()[esp_start..region_end];
        let sealed = match explicit {
            Some((_, iv)) => {
                state
                    .sealer
                    .seal_in_place_with_explicit_iv(region, inner_len, seq, next_header, iv)
            }
            None => state
                .sealer
                .seal_in_place(region, inner_len, seq, next_header),
        };
        match sealed {
            Ok(total) => {
                buf.set_range(esp_start, esp_start + total);
                tally.pass(inner_len);
                // After 2^64 - 1 the counter reads 0: exhausted (never reused).
                seq = seq.wrapping_add(1);
                allowed -= 1;
            }
            Err(xrsec_crypto::EspError::SequenceOverflow) => {
                *verdict = Err(DropReason::SequenceExhausted);
                tally.drop(DropReason::SequenceExhausted);
                allowed = 0;
            }
            Err(_) => {
                *verdict = Err(DropReason::TooBig);
                tally.drop(DropReason::TooBig);
            }
        }
    }
    state.next_seq = seq;
}
