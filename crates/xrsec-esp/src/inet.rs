//! The little of IPv4, TCP and ICMP the packet path touches, and the
//! virtio-net header a TUN with `IFF_VNET_HDR` puts in front of each packet.
//!
//! Offloads, both directions:
//! - TUN to us: with `TUNSETOFFLOAD(CSUM|TSO4)` the kernel hands over TCP
//!   super-packets of up to 64 KB with a partial checksum; [`TcpSuper`]
//!   cuts one into MSS-sized segments with their own IPv4 and TCP headers
//!   and checksums, each then sealed as its own ESP packet. Other packets
//!   with a partial checksum are completed in place ([`complete_checksum`]).
//! - us to TUN: consecutive decrypted TCP segments of one flow are handed to
//!   the kernel as one super-packet through one `writev` (the first segment's
//!   headers, then every segment's payload where it lies: no copy), described
//!   by a GSO virtio-net header ([`finish_coalesced`]).
//!
//! All parsing is checked: nothing here indexes past a length it has not
//! verified, whatever the bytes.

/// Length of `struct virtio_net_hdr` (the TUN default vnet header size).
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: checksum from `csum_start`, stored at
/// `csum_start + csum_offset`, the field holding the pseudo-header sum.
pub const VNET_F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum needs no verification.
pub const VNET_F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const VNET_GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const VNET_GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const VNET_GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN` flag bit of `gso_type`.
pub const VNET_GSO_ECN: u8 = 0x80;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;

/// A virtio-net header (little-endian fields: x86 and the TUN's default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `VNET_F_*`.
    pub flags: u8,
    /// `VNET_GSO_*`.
    pub gso_type: u8,
    /// Length of the headers (IP + TCP).
    pub hdr_len: u16,
    /// MSS of a super-packet.
    pub gso_size: u16,
    /// Where checksumming starts.
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum goes.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Parses the first [`VNET_HDR_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b: &[u8; VNET_HDR_LEN] = b.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    /// The header's bytes.
    pub fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
}

/// Adds `data` (starting at an even offset of the checksummed bytes; an odd
/// final byte is padded with zero) to a ones'-complement sum (RFC 1071) of
/// big-endian 16-bit words held unfolded in a `u64`.
///
/// This is the hot loop of segmenting TSO super-packets (every payload byte
/// passes through it once), so it does not work in network order: RFC 1071
/// 2(B), the sum is byte-order independent, so it adds native little-endian
/// 64-bit words as two 32-bit halves (no carry to track: each half-sum stays
/// far below 2^64), folds to 16 bits and swaps the two bytes once at the
/// end. Folding per call keeps the result exact: a fold is zero only for an
/// all-zero input, as the unfolded sum is.
#[inline]
pub fn csum_add(sum: u64, data: &[u8]) -> u64 {
    sum + u64::from(csum_native(data).swap_bytes())
}

/// The folded sum of `data` as little-endian 16-bit words (the byte swap of
/// the network-order sum). Two accumulators let two additions run per cycle.
#[inline]
fn csum_native(data: &[u8]) -> u16 {
    let (mut lo, mut hi) = (0u64, 0u64);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        lo += w & 0xffff_ffff;
        hi += w >> 32;
    }
    let rest = words.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    let w = u64::from_le_bytes(tail);
    lo += w & 0xffff_ffff;
    hi += w >> 32;
    // Each half adds values below 2^32, one per 8 bytes: no overflow for
    // any slice shorter than 2^34 bytes (packets are at most 64 KB).
    csum_fold(lo + hi)
}

/// Folds a sum to 16 bits (not complemented).
#[inline]
pub fn csum_fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The IPv4 header checksum of `hdr` (whose checksum field is ignored).
pub fn ipv4_header_checksum(hdr: &[u8]) -> u16 {
    let mut sum = csum_add(0, hdr);
    if hdr.len() >= 12 {
        sum += 0xffff_u64 * 2; // keep it positive while removing the field
        sum -= u64::from(u16::from_be_bytes([hdr[10], hdr[11]]));
    }
    !csum_fold(sum)
}

fn set_ipv4_checksum(hdr: &mut [u8]) {
    hdr[10] = 0;
    hdr[11] = 0;
    let c = !csum_fold(csum_add(0, hdr));
    hdr[10..12].copy_from_slice(&c.to_be_bytes());
}

fn pseudo_sum_v4(ip: &[u8], proto: u8, len: usize) -> u64 {
    csum_add(0, &ip[12..20]) + u64::from(proto) + len as u64
}

/// A checked view of the fixed part of an IPv4 header.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Info {
    /// Header length in bytes.
    pub header_len: usize,
    /// Total length field.
    pub total_len: usize,
    /// Protocol.
    pub protocol: u8,
    /// Don't Fragment set.
    pub dont_fragment: bool,
    /// More fragments set or a non-zero fragment offset.
    pub fragment: bool,
}

/// Parses an IPv4 header and checks its lengths against `packet`.
pub fn parse_ipv4(packet: &[u8]) -> Option<Ipv4Info> {
    parse_ipv4_head(packet, packet.len())
}

/// Parses the IPv4 header at the start of `head`, the first bytes of a
/// packet of `packet_len` bytes (the rest lying elsewhere: a super-packet
/// read scattered over several buffers).
fn parse_ipv4_head(head: &[u8], packet_len: usize) -> Option<Ipv4Info> {
    let first = *head.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 || head.len() < header_len || packet_len < head.len() {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    if total_len < header_len || total_len > packet_len {
        return None;
    }
    let frag = u16::from_be_bytes([head[6], head[7]]);
    Some(Ipv4Info {
        header_len,
        total_len,
        protocol: head[9],
        dont_fragment: frag & 0x4000 != 0,
        fragment: frag & 0x3fff != 0,
    })
}

/// Validates a decrypted inner packet against the ESP next header
/// (tunnel mode: 4 = IPv4, 41 = IPv6) and returns its length as the IP
/// header says (trailing bytes beyond it are not part of it), or `None`.
pub fn inner_len(next_header: u8, packet: &[u8]) -> Option<usize> {
    match next_header {
        4 => parse_ipv4(packet).map(|ip| ip.total_len),
        41 => {
            if packet.len() < 40 || packet[0] >> 4 != 6 {
                return None;
            }
            let len = 40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            (len <= packet.len()).then_some(len)
        }
        _ => None,
    }
}

/// Completes a partial checksum (`VIRTIO_NET_HDR_F_NEEDS_CSUM`): the field
/// at `start + offset` holds the pseudo-header sum; sum from `start` to the
/// end and store the complement. `false` if the offsets lie outside.
pub fn complete_checksum(packet: &mut [u8], start: usize, offset: usize) -> bool {
    let field = start + offset;
    if start >= packet.len() || field + 2 > packet.len() {
        return false;
    }
    let c = !csum_fold(csum_add(0, &packet[start..]));
    // RFC 768: a UDP checksum of 0 is sent as all ones.
    let c = if c == 0 { 0xffff } else { c };
    packet[field..field + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// A TCP-over-IPv4 super-packet as handed over by the TUN.
#[derive(Clone, Copy, Debug)]
pub struct TcpSuper {
    ip_len: usize,
    tcp_len: usize,
    payload_len: usize,
    mss: usize,
}

impl TcpSuper {
    /// Checks `packet` (no vnet header) as an IPv4/TCP packet to cut into
    /// `mss`-byte segments. Refuses what it cannot segment safely.
    pub fn parse(packet: &[u8], mss: usize) -> Option<Self> {
        Self::parse_head(packet, packet.len(), mss)
    }

    /// Like [`TcpSuper::parse`], from the packet's first bytes `head` (at
    /// least its IPv4 and TCP headers) and its length `packet_len`: for a
    /// super-packet read scattered, its payload already spread over the
    /// buffers of its segments.
    pub fn parse_head(head: &[u8], packet_len: usize, mss: usize) -> Option<Self> {
        let ip = parse_ipv4_head(head, packet_len)?;
        if ip.protocol != PROTO_TCP || ip.fragment || mss == 0 {
            return None;
        }
        let tcp = &head[ip.header_len..ip.total_len.min(head.len())];
        if tcp.len() < 20 {
            return None;
        }
        let tcp_len = usize::from(tcp[12] >> 4) * 4;
        if tcp_len < 20 || tcp_len > tcp.len() {
            return None;
        }
        Some(Self {
            ip_len: ip.header_len,
            tcp_len,
            payload_len: ip.total_len - ip.header_len - tcp_len,
            mss,
        })
    }

    /// Number of segments.
    pub fn segments(&self) -> usize {
        self.payload_len.div_ceil(self.mss).max(1)
    }

    /// Headers' length (IP + TCP).
    pub fn header_len(&self) -> usize {
        self.ip_len + self.tcp_len
    }

    /// Length of segment `i` (headers included).
    pub fn segment_len(&self, i: usize) -> usize {
        let off = i * self.mss;
        self.header_len() + self.payload_len.saturating_sub(off).min(self.mss)
    }

    /// Writes segment `i` of `src` (the super-packet) into `dst` (at least
    /// [`TcpSuper::segment_len`] long) with its headers fixed up and
    /// checksummed: IPv4 total length, ID + i, header checksum; TCP sequence
    /// number + i * MSS, FIN and PSH only on the last segment, CWR only on
    /// the first, checksum over pseudo-header, header and payload.
    pub fn write_segment(&self, src: &[u8], i: usize, dst: &mut [u8]) {
        let hl = self.header_len();
        let off = i * self.mss;
        let len = self.payload_len.saturating_sub(off).min(self.mss);
        dst[..hl].copy_from_slice(&src[..hl]);
        dst[hl..hl + len].copy_from_slice(&src[hl + off..hl + off + len]);
        self.fix_segment(&mut dst[..hl + len], i, self.is_last(i));
    }

    /// Whether segment `i` is the last one (it keeps FIN and PSH).
    pub fn is_last(&self, i: usize) -> bool {
        (i + 1) * self.mss >= self.payload_len
    }

    /// The MSS the super-packet is cut at.
    pub fn mss(&self) -> usize {
        self.mss
    }

    /// Fixes up segment `i` whose headers and payload are already in
    /// `seg` (the first segment, left where it was read).
    pub fn fix_segment(&self, seg: &mut [u8], i: usize, last: bool) {
        let (ip_len, hl) = (self.ip_len, self.header_len());
        let total = seg.len();
        seg[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let id = u16::from_be_bytes([seg[4], seg[5]]).wrapping_add(i as u16);
        seg[4..6].copy_from_slice(&id.to_be_bytes());
        set_ipv4_checksum(&mut seg[..ip_len]);
        let seq = u32::from_be_bytes([
            seg[ip_len + 4],
            seg[ip_len + 5],
            seg[ip_len + 6],
            seg[ip_len + 7],
        ])
        .wrapping_add((i * self.mss) as u32);
        seg[ip_len + 4..ip_len + 8].copy_from_slice(&seq.to_be_bytes());
        let flags = &mut seg[ip_len + 13];
        if !last {
            *flags &= !0x09; // FIN, PSH
        }
        if i != 0 {
            *flags &= !0x80; // CWR
        }
        seg[ip_len + 16] = 0;
        seg[ip_len + 17] = 0;
        let sum = pseudo_sum_v4(seg, PROTO_TCP, total - ip_len) + csum_add(0, &seg[ip_len..hl]);
        let sum = csum_add(sum, &seg[hl..]);
        let c = !csum_fold(sum);
        seg[ip_len + 16..ip_len + 18].copy_from_slice(&c.to_be_bytes());
    }
}

/// Builds an ICMP destination unreachable / fragmentation needed
/// (RFC 792, RFC 1191) for `orig` into `out`, from `src` (the tunnel's own
/// address) back to the sender; returns its length, or 0 if `orig` is not
/// an IPv4 packet worth answering (not ICMP errors, not fragments).
pub fn icmp_frag_needed(orig: &[u8], src: [u8; 4], mtu: u16, out: &mut [u8]) -> usize {
    let Some(ip) = parse_ipv4(orig) else {
        return 0;
    };
    if ip.fragment {
        return 0;
    }
    if ip.protocol == PROTO_ICMP {
        // RFC 1122 3.2.2: never an ICMP error about an ICMP error.
        match orig.get(ip.header_len) {
            Some(0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) => {}
            _ => return 0,
        }
    }
    let quote = (ip.header_len + 8).min(orig.len());
    let len = 20 + 8 + quote;
    if out.len() < len {
        return 0;
    }
    let out = &mut out[..len];
    out[0] = 0x45;
    out[1] = 0;
    out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    out[4..8].copy_from_slice(&[0, 0, 0, 0]);
    out[8] = 64;
    out[9] = PROTO_ICMP;
    out[12..16].copy_from_slice(&src);
    out[16..20].copy_from_slice(&orig[12..16]);
    set_ipv4_checksum(&mut out[..20]);
    out[20] = 3; // destination unreachable
    out[21] = 4; // fragmentation needed and DF set
    out[22..24].copy_from_slice(&[0, 0]);
    out[24..26].copy_from_slice(&[0, 0]);
    out[26..28].copy_from_slice(&mtu.to_be_bytes());
    out[28..].copy_from_slice(&orig[..quote]);
    let c = !csum_fold(csum_add(0, &out[20..]));
    out[22..24].copy_from_slice(&c.to_be_bytes());
    len
}

/// Key of a TCP/IPv4 segment for coalescing: everything that must match
/// between consecutive segments of one super-packet.
#[derive(Clone, Copy, Debug)]
pub struct TcpSeg {
    /// IPv4 header length.
    pub ip_len: u16,
    /// TCP header length.
    pub tcp_len: u16,
    /// Payload length.
    pub payload_len: u16,
    /// Sequence number.
    pub seq: u32,
    /// TCP flags.
    pub flags: u8,
}

/// Parses a decrypted inner packet as a TCP/IPv4 segment that may be
/// coalesced (no IP options, no fragment, flags within ACK|PSH).
pub fn coalescable_tcp4(p: &[u8]) -> Option<TcpSeg> {
    let ip = parse_ipv4(p)?;
    if ip.protocol != PROTO_TCP || ip.fragment || ip.header_len != 20 || ip.total_len != p.len() {
        return None;
    }
    let t = &p[20..];
    if t.len() < 20 {
        return None;
    }
    let tcp_len = usize::from(t[12] >> 4) * 4;
    if tcp_len < 20 || tcp_len > t.len() {
        return None;
    }
    let flags = t[13];
    if flags & !0x18 != 0 || flags & 0x10 == 0 {
        return None;
    }
    let payload_len = t.len() - tcp_len;
    if payload_len == 0 {
        return None;
    }
    Some(TcpSeg {
        ip_len: 20,
        tcp_len: tcp_len as u16,
        payload_len: payload_len as u16,
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        flags,
    })
}

/// Whether `next` continues the run that `first` started and `prev` ended:
/// same addresses, ports, ack, window and options (TCP header bytes other
/// than sequence number, flags and checksum), same IP TOS/TTL/DF, the next
/// sequence number, and a payload no longer than the first's (only the last
/// segment of a run may be shorter, which the caller enforces).
pub fn continues(first: &[u8], fseg: &TcpSeg, prev: &TcpSeg, next: &[u8], nseg: &TcpSeg) -> bool {
    if nseg.tcp_len != fseg.tcp_len
        || nseg.payload_len > fseg.payload_len
        || prev.payload_len != fseg.payload_len
        || prev.flags & 0x08 != 0
        || nseg.seq != prev.seq.wrapping_add(u32::from(prev.payload_len))
    {
        return false;
    }
    // IP: TOS, DF, TTL, protocol, addresses.
    if first[1] != next[1]
        || first[6] & 0x40 != next[6] & 0x40
        || first[8] != next[8]
        || first[12..20] != next[12..20]
    {
        return false;
    }
    let tl = usize::from(fseg.tcp_len);
    let (a, b) = (&first[20..20 + tl], &next[20..20 + tl]);
    // Ports, ack; data offset; window; urgent pointer and options.
    a[..4] == b[..4] && a[8..13] == b[8..13] && a[14..16] == b[14..16] && a[18..] == b[18..]
}

/// Prepares the first segment of a coalesced run of `total_payload` bytes
/// for a GSO write: IPv4 total length and checksum, PSH from the last
/// segment, the TCP checksum field set to the pseudo-header sum; returns the
/// virtio-net header describing the super-packet.
pub fn finish_coalesced(
    first: &mut [u8],
    seg: &TcpSeg,
    total_payload: usize,
    last_flags: u8,
) -> VnetHdr {
    let ip_len = usize::from(seg.ip_len);
    let hl = ip_len + usize::from(seg.tcp_len);
    let total = hl + total_payload;
    first[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    set_ipv4_checksum(&mut first[..ip_len]);
    first[ip_len + 13] |= last_flags & 0x08;
    let pseudo = csum_fold(pseudo_sum_v4(first, PROTO_TCP, total - ip_len));
    first[ip_len + 16..ip_len + 18].copy_from_slice(&pseudo.to_be_bytes());
    VnetHdr {
        flags: VNET_F_NEEDS_CSUM,
        gso_type: VNET_GSO_TCPV4,
        hdr_len: hl as u16,
        gso_size: seg.payload_len,
        csum_start: ip_len as u16,
        csum_offset: 16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_packet(payload: usize, seq: u32, flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; 20 + 32 + payload];
        p[0] = 0x45;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        set_ipv4_checksum(&mut p[..20]);
        let t = &mut p[20..];
        t[0..2].copy_from_slice(&5201u16.to_be_bytes());
        t[2..4].copy_from_slice(&40000u16.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&77u32.to_be_bytes());
        t[12] = 8 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&500u16.to_be_bytes());
        t[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        for (i, b) in t[32..].iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    fn tcp_checksum_ok(p: &[u8]) -> bool {
        let sum = pseudo_sum_v4(p, 6, p.len() - 20) + csum_add(0, &p[20..]);
        csum_fold(sum) == 0xffff
    }

    /// RFC 1071 as written: big-endian 16-bit words, an odd last byte
    /// padded with zero, end-around carry after every addition.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// xorshift64: reproducible bytes without a dependency.
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn checksum_matches_reference_for_every_length_and_alignment() {
        let data = noise(4096 + 64, 0x9e37_79b9_7f4a_7c15);
        for len in (0..300).chain([1399, 1400, 1447, 1448, 4095, 4096]) {
            for start in 0..9 {
                let d = &data[start..start + len];
                assert_eq!(
                    csum_fold(csum_add(0, d)),
                    reference_sum(d),
                    "len {len} at {start}"
                );
            }
        }
    }

    #[test]
    fn checksum_carries_and_zero_stay_exact() {
        for len in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 1000, 1001, 65535] {
            let ones = vec![0xffu8; len];
            assert_eq!(
                csum_fold(csum_add(0, &ones)),
                reference_sum(&ones),
                "0xff x {len}"
            );
            let zeros = vec![0u8; len];
            assert_eq!(csum_fold(csum_add(0, &zeros)), 0, "zeros x {len}");
        }
        // Words summing to a multiple of 0xffff: a non-zero sum folds to
        // 0xffff, never to 0, as in RFC 1071.
        let d = [0x12, 0x34, 0xed, 0xcb, 0x00, 0x01, 0xff, 0xfe];
        assert_eq!(reference_sum(&d), 0xffff);
        assert_eq!(csum_fold(csum_add(0, &d)), 0xffff);
        let big = noise(65535, 7);
        assert_eq!(csum_fold(csum_add(0, &big)), reference_sum(&big));
    }

    #[test]
    fn checksum_of_concatenated_parts_is_the_sum_of_parts() {
        let data = noise(3001, 42);
        for split in (0..data.len()).step_by(2).take(200).chain([1448, 2896]) {
            let (a, b) = data.split_at(split);
            let start = 0x1_2345_u64; // e.g. a pseudo-header sum
            assert_eq!(
                csum_fold(csum_add(csum_add(start, a), b)),
                csum_fold(csum_add(start, &data)),
                "split {split}"
            );
            assert_eq!(
                csum_fold(csum_add(start, &data)),
                csum_fold(u64::from(reference_sum(&data)) + start)
            );
        }
    }

    #[test]
    fn checksum_matches_rfc_1071_example() {
        // RFC 1071 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            csum_fold(csum_add(0, &[0, 1, 0xf2, 3, 0xf4, 0xf5, 0xf6, 0xf7])),
            0xddf2
        );
    }

    #[test]
    fn segments_a_tcp_super_packet_with_valid_headers() {
        let sup = tcp_packet(3000, 1000, 0x18 | 0x01);
        let t = TcpSuper::parse(&sup, 1400).unwrap();
        assert_eq!(t.segments(), 3);
        let mut payload = Vec::new();
        for i in 0..3 {
            let mut seg = vec![0u8; t.segment_len(i)];
            t.write_segment(&sup, i, &mut seg);
            let ip = parse_ipv4(&seg).unwrap();
            assert_eq!(ip.total_len, seg.len());
            assert_eq!(
                ipv4_header_checksum(&seg[..20]),
                u16::from_be_bytes([seg[10], seg[11]])
            );
            assert!(tcp_checksum_ok(&seg), "segment {i}");
            let seq = u32::from_be_bytes(seg[24..28].try_into().unwrap());
            assert_eq!(seq, 1000 + 1400 * i as u32);
            assert_eq!(seg[33] & 0x09 != 0, i == 2, "FIN/PSH only on the last");
            payload.extend_from_slice(&seg[52..]);
        }
        assert_eq!(&payload[..], &sup[52..]);
    }

    #[test]
    fn coalesced_run_gets_one_header_and_a_pseudo_checksum() {
        let a = tcp_packet(1000, 1, 0x10);
        let b = tcp_packet(1000, 1001, 0x10);
        let c = tcp_packet(400, 2001, 0x18);
        let (sa, sb, sc) = (
            coalescable_tcp4(&a).unwrap(),
            coalescable_tcp4(&b).unwrap(),
            coalescable_tcp4(&c).unwrap(),
        );
        assert!(continues(&a, &sa, &sa, &b, &sb));
        assert!(continues(&a, &sa, &sb, &c, &sc));
        assert!(!continues(&a, &sa, &sa, &c, &sc), "sequence gap");
        let mut first = a.clone();
        let h = finish_coalesced(&mut first, &sa, 2400, sc.flags);
        assert_eq!(h.gso_size, 1000);
        assert_eq!(h.hdr_len, 52);
        assert_eq!(u16::from_be_bytes([first[2], first[3]]), 52 + 2400);
        assert_eq!(first[33] & 0x08, 0x08);
    }

    #[test]
    fn icmp_frag_needed_quotes_header_and_eight_bytes() {
        let orig = tcp_packet(1500, 1, 0x10);
        let mut out = [0u8; 128];
        let n = icmp_frag_needed(&orig, [192, 0, 2, 1], 1400, &mut out);
        assert_eq!(n, 20 + 8 + 28);
        assert_eq!(&out[16..20], &[10, 0, 0, 1]);
        assert_eq!((out[20], out[21]), (3, 4));
        assert_eq!(u16::from_be_bytes([out[26], out[27]]), 1400);
        assert_eq!(csum_fold(csum_add(0, &out[20..n])), 0xffff);
    }

    #[test]
    fn inner_len_checks_version_against_next_header() {
        let p = tcp_packet(10, 1, 0x10);
        assert_eq!(inner_len(4, &p), Some(p.len()));
        assert_eq!(inner_len(41, &p), None);
        assert_eq!(inner_len(4, &p[..30]), None);
        assert_eq!(inner_len(1, &p), None);
    }
}
