//! The anti-replay window (RFC 4303 3.4.3), ESN-aware (RFC 4303 Appendix A2,
//! RFC 4304), kept as an RFC 6479 bitmap: a ring of 64-bit blocks, one bit
//! per sequence number, where sliding the window clears whole blocks instead
//! of shifting bits, so a window of thousands of packets costs the same per
//! packet as one of 64.
//!
//! The check is split in two because RFC 4303 3.4.3 says the window is
//! updated only after the ICV verified: [`ReplayWindow::check`] before the
//! ICV (cheap rejection of duplicates, and it infers the high 32 bits of an
//! ESN sequence number that the ICV then covers), [`ReplayWindow::update`]
//! after it (which checks again, since another packet of the batch may have
//! taken the number in between).

/// Smallest and default window (RFC 4303 3.4.3: 32 minimum, 64 default).
pub const DEFAULT_WINDOW: u32 = 64;
/// Largest window this implementation accepts.
pub const MAX_WINDOW: u32 = 65536;

const BLOCK_BITS: u64 = 64;

/// The sequence numbers seen lately by one inbound SA.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Highest sequence number authenticated so far (64-bit, ESN or not);
    /// 0 before the first packet (sequence numbers start at 1).
    top: u64,
    /// Window size in packets (a multiple of 64).
    size: u64,
    esn: bool,
    /// `size / 64 + 1` blocks; bit `s % 64` of block `(s / 64) % len` is
    /// sequence number `s`. One spare block lets the window slide by clearing
    /// whole blocks (RFC 6479 section 2).
    blocks: Box<[u64]>,
}

/// Why [`ReplayWindow::check`] refused a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// Already received.
    Duplicate,
    /// Left of the window.
    TooOld,
}

impl ReplayWindow {
    /// A window of `size` packets (rounded up to a power of two and to a
    /// multiple of 64, clamped to 64..=65536); `esn` as negotiated.
    pub fn new(size: u32, esn: bool) -> Self {
        let size = u64::from(size.clamp(DEFAULT_WINDOW, MAX_WINDOW).next_power_of_two());
        // A power-of-two block count keeps the ring index a mask.
        let blocks = (size / BLOCK_BITS + 1).next_power_of_two() as usize;
        Self {
            top: 0,
            size,
            esn,
            blocks: vec![0; blocks].into_boxed_slice(),
        }
    }

    /// Forgets everything and positions the window so that `seq` is the
    /// next number expected (tests and known-answer vectors whose sequence
    /// numbers start high, e.g. ESN vectors in a later 2^32 cycle).
    pub fn start_at(&mut self, seq: u64) {
        self.top = seq.saturating_sub(1);
        self.blocks.iter_mut().for_each(|b| *b = 0);
    }

    /// Window size in packets.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Highest sequence number accepted so far.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// Checks a received 32-bit sequence number and returns the full 64-bit
    /// number it stands for (its high half goes into the ICV with ESN).
    ///
    /// Without ESN the high half is 0. With ESN, RFC 4303 A2.2: if the
    /// window lies within one 2^32 cycle, a low half below the window's
    /// bottom belongs to the next cycle; if the window straddles a cycle
    /// boundary, a low half at or above the bottom belongs to the previous
    /// cycle.
    pub fn check(&self, seq_lo: u32) -> Result<u64, ReplayError> {
        let seq = self.infer(seq_lo);
        // RFC 4303 3.3.3: the first packet has sequence number 1; 0 never
        // appears, also not as a cycle's low half 0 of the first cycle.
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if seq > self.top {
            return Ok(seq);
        }
        if self.top - seq >= self.size {
            return Err(ReplayError::TooOld);
        }
        if self.bit(seq) {
            Err(ReplayError::Duplicate)
        } else {
            Ok(seq)
        }
    }

    /// Records an authenticated sequence number (returned by
    /// [`ReplayWindow::check`]). Fails if it was taken or left the window
    /// since the check.
    pub fn update(&mut self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if seq > self.top {
            let mask = self.blocks.len() as u64 - 1;
            let old_block = self.top / BLOCK_BITS;
            let new_block = seq / BLOCK_BITS;
            // RFC 6479: clear the blocks the window slid into, at most the
            // whole ring.
            let steps = (new_block - old_block).min(self.blocks.len() as u64);
            for i in 1..=steps {
                self.blocks[((old_block + i) & mask) as usize] = 0;
            }
            self.top = seq;
        } else if self.top - seq >= self.size {
            return Err(ReplayError::TooOld);
        } else if self.bit(seq) {
            return Err(ReplayError::Duplicate);
        }
        let mask = self.blocks.len() as u64 - 1;
        self.blocks[((seq / BLOCK_BITS) & mask) as usize] |= 1 << (seq % BLOCK_BITS);
        Ok(())
    }

    fn bit(&self, seq: u64) -> bool {
        let mask = self.blocks.len() as u64 - 1;
        self.blocks[((seq / BLOCK_BITS) & mask) as usize] & (1 << (seq % BLOCK_BITS)) != 0
    }

    fn infer(&self, seq_lo: u32) -> u64 {
        if !self.esn {
            return u64::from(seq_lo);
        }
        let top_hi = (self.top >> 32) as u32;
        let top_lo = self.top as u32;
        // Bottom of the window (low half), RFC 4303 A2.2 "Bl".
        let bottom_lo = top_lo.wrapping_sub(self.size as u32).wrapping_add(1);
        let hi = if top_lo >= self.size as u32 - 1 {
            // Case A: the window lies within one cycle.
            if seq_lo >= bottom_lo {
                top_hi
            } else {
                top_hi.wrapping_add(1)
            }
        } else if seq_lo >= bottom_lo {
            // Case B: the window spans two cycles; a number at or above the
            // bottom is in the previous one.
            top_hi.wrapping_sub(1)
        } else {
            top_hi
        };
        // Before the very first cycle there is no previous one.
        if hi == u32::MAX && top_hi == 0 {
            return u64::from(seq_lo);
        }
        (u64::from(hi) << 32) | u64::from(seq_lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_in_order_and_rejects_duplicates() {
        let mut w = ReplayWindow::new(64, false);
        for s in 1..=200u32 {
            let seq = w.check(s).unwrap();
            w.update(seq).unwrap();
            assert_eq!(w.check(s), Err(ReplayError::Duplicate));
        }
    }

    #[test]
    fn sequence_number_zero_is_never_accepted() {
        let w = ReplayWindow::new(64, false);
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
    }

    #[test]
    fn out_of_order_within_window_is_accepted_once() {
        let mut w = ReplayWindow::new(64, false);
        w.update(w.check(100).unwrap()).unwrap();
        for s in (37..100).rev() {
            w.update(w.check(s).unwrap()).unwrap();
        }
        assert_eq!(w.check(36), Err(ReplayError::TooOld));
        assert_eq!(w.check(37), Err(ReplayError::Duplicate));
        assert_eq!(w.check(99), Err(ReplayError::Duplicate));
        assert_eq!(w.check(101), Ok(101));
    }

    #[test]
    fn large_window_of_4096_keeps_its_whole_span() {
        let mut w = ReplayWindow::new(4096, false);
        assert_eq!(w.size(), 4096);
        w.update(w.check(10_000).unwrap()).unwrap();
        assert_eq!(w.check(10_000 - 4095), Ok(10_000 - 4095));
        assert_eq!(w.check(10_000 - 4096), Err(ReplayError::TooOld));
        for s in (10_000 - 4095..10_000).step_by(7) {
            w.update(w.check(s).unwrap()).unwrap();
        }
        for s in (10_000 - 4095..10_000).step_by(7) {
            assert_eq!(w.check(s), Err(ReplayError::Duplicate));
        }
        // A big jump clears everything.
        w.update(w.check(1_000_000).unwrap()).unwrap();
        assert_eq!(w.check(999_999), Ok(999_999));
    }

    #[test]
    fn sliding_clears_stale_bits_from_reused_blocks() {
        let mut w = ReplayWindow::new(64, false);
        for s in 1..=64u32 {
            w.update(u64::from(s)).unwrap();
        }
        // Move forward by exactly the ring's span: old bits must not alias.
        let ring_bits = w.blocks.len() as u32 * 64;
        w.update(u64::from(64 + ring_bits)).unwrap();
        for s in (64 + ring_bits - 63)..(64 + ring_bits) {
            assert_eq!(w.check(s), Ok(u64::from(s)), "{s}");
        }
    }

    #[test]
    fn update_after_check_rejects_a_number_taken_in_between() {
        let mut w = ReplayWindow::new(64, false);
        let a = w.check(5).unwrap();
        let b = w.check(5).unwrap();
        w.update(a).unwrap();
        assert_eq!(w.update(b), Err(ReplayError::Duplicate));
    }

    #[test]
    fn esn_infers_the_next_cycle_after_wrap() {
        let mut w = ReplayWindow::new(64, true);
        let near_end = u64::from(u32::MAX) - 2;
        w.update(near_end).unwrap();
        // Low half 5 is below the window's bottom: next cycle.
        assert_eq!(w.check(5), Ok((1 << 32) | 5));
        w.update((1 << 32) | 5).unwrap();
        // Now the window spans the boundary: u32::MAX - 1 is previous cycle.
        assert_eq!(w.check(u32::MAX - 1), Ok(u64::from(u32::MAX - 1)));
        assert_eq!(w.check(u32::MAX - 2), Err(ReplayError::Duplicate));
        assert_eq!(w.check(6), Ok((1 << 32) | 6));
    }

    #[test]
    fn esn_early_packets_stay_in_cycle_zero() {
        let mut w = ReplayWindow::new(64, true);
        assert_eq!(w.check(1), Ok(1));
        w.update(3).unwrap();
        assert_eq!(w.check(2), Ok(2));
    }
}
