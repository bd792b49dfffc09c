//! Packet buffers with headroom and tailroom, so that a packet is
//! encapsulated and decapsulated where it was read: the ESP header and IV are
//! written in front of the inner packet, padding, trailer and ICV behind it,
//! and on the way in the inner packet is a sub-range of the received ESP
//! packet. Buffers are allocated once per worker (a fixed set per slot of a
//! batch) and reused; nothing is allocated per packet.
//!
//! A buffer's data is `buf[start..end]`. Reading into a buffer puts the data
//! at a chosen offset (the headroom); encapsulation moves `start` back and
//! `end` forward, decapsulation narrows the range.

/// Room kept in front of a packet read from the TUN: a virtio-net header
/// (10), then the ESP header, IV and for ESP-in-UDP the UDP header never
/// needs more than 8 + 16 + 8; rounded up so the inner packet starts on a
/// 16-byte boundary.
pub const HEADROOM: usize = 64;
/// Room kept behind a packet: padding (< 16), pad length, next header, ICV
/// (up to 32).
pub const TAILROOM: usize = 64;
/// Largest packet the dataplane handles: an IPv4 packet's maximum, which is
/// also the largest TSO super-packet a TUN hands over and the largest
/// GRO-coalesced UDP datagram a socket returns.
pub const MAX_PACKET: usize = 65535;

/// One packet slot: a fixed-capacity buffer and the range holding data.
pub struct PacketBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl PacketBuf {
    /// A buffer able to hold `capacity` bytes of packet plus the headroom
    /// and tailroom.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; HEADROOM + capacity + TAILROOM].into_boxed_slice(),
            start: HEADROOM,
            end: HEADROOM,
        }
    }

    /// A buffer holding `data` at the default headroom (tests, tools).
    pub fn from_slice(data: &[u8]) -> Self {
        let mut p = Self::new(data.len().max(2048));
        p.buf[HEADROOM..HEADROOM + data.len()].copy_from_slice(data);
        p.end = HEADROOM + data.len();
        p
    }

    /// The data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Data length.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether there is no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Offset of the data's first byte in the backing buffer.
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }

    /// Bytes free in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Bytes free behind the data.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.end
    }

    /// The whole backing buffer (to read into it, or to build in it).
    #[inline]
    pub fn raw_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The whole backing buffer.
    #[inline]
    pub fn raw(&self) -> &[u8] {
        &self.buf
    }

    /// Capacity of the backing buffer.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Sets the data range. Panics if it lies outside the buffer (a bug of
    /// ours, never a peer's doing: callers derive ranges from checked
    /// lengths).
    #[inline]
    pub fn set_range(&mut self, start: usize, end: usize) {
        assert!(start <= end && end <= self.buf.len(), "packet range");
        self.start = start;
        self.end = end;
    }

    /// Empties the buffer and puts the next data at `offset`.
    #[inline]
    pub fn reset(&mut self, offset: usize) {
        let offset = offset.min(self.buf.len());
        self.start = offset;
        self.end = offset;
    }
}

impl core::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("start", &self.start)
            .field("len", &self.len())
            .field("capacity", &self.buf.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_buffer_has_headroom_and_tailroom() {
        let p = PacketBuf::new(1500);
        assert_eq!(p.headroom(), HEADROOM);
        assert_eq!(p.tailroom(), 1500 + TAILROOM);
        assert!(p.is_empty());
    }

    #[test]
    fn from_slice_places_data_after_headroom() {
        let p = PacketBuf::from_slice(&[1, 2, 3]);
        assert_eq!(p.data(), &[1, 2, 3]);
        assert_eq!(p.start(), HEADROOM);
    }
}
