//! The packet threads. Dedicated OS threads doing batched blocking I/O, no
//! async runtime and no task per packet (DESIGN.md "Dataplane threads"):
//!
//! - one transmit thread per tunnel: TUN reads (a batch of up to 64 packets
//!   or TSO segments), one SA snapshot and one sequence reservation per
//!   batch, encapsulation in place, one `sendmmsg` per batch (UDP: one GSO
//!   message per run of equal-sized ESP packets);
//! - one receive thread per socket (raw ESP, UDP 4500): one `recvmmsg` per
//!   batch (UDP: GRO-coalesced datagrams), SPI lookup in one snapshot,
//!   decapsulation in place per run of one SA, one TUN `writev` per run of
//!   coalescable TCP segments (a GSO super-packet) or per other packet;
//! - or, with `DataplaneOptions::rx_in_tunnel_thread` and a single tunnel,
//!   no UDP receive thread: the tunnel's thread runs the same receive batch
//!   (`rx_batch`, non-blocking) after each transmit batch and polls the
//!   TUN and the socket together when both are idle.
//!
//! Per packet: no allocation (buffers and headers are allocated when the
//! thread starts), no lock, no system call of its own except the TUN's, which
//! has no batch call: one `read` (`readv`) per packet or TSO super-packet, one
//! `writev` per packet or GRO super-packet. Copies: none for packets up to
//! the MTU; a TSO super-packet is read scattered so that each segment's
//! payload lands in its own slot behind room for its headers, and only the
//! headers are copied per segment (see `Layout`; the first super-packet of
//! a flow, whose layout is not known yet, has each segment's payload copied
//! once).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;

use crate::counters::{DropReason, Tally};
use crate::decap::{self, InnerCheck, RxPacket, RxStatus};
use crate::encap;
use crate::inet::{
    self, VnetHdr, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4,
    VNET_HDR_LEN,
};
use crate::packet::{PacketBuf, HEADROOM, MAX_PACKET};
use crate::sa::{Encap, OutboundSa};
use crate::sys::{self, OutMsg, RecvMeta, RecvScratch, SendScratch};
use crate::{IkeDatagram, Shared, TunnelIo};

/// Packets (or segments) per transmit batch.
const TX_BATCH: usize = 64;
/// Most segments one TSO super-packet may be cut into (MSS >= 512).
const MAX_SEGMENTS: usize = 128;
/// Transmit slots: a batch plus the segments of one more super-packet.
const TX_SLOTS: usize = TX_BATCH + MAX_SEGMENTS;
/// Datagrams (each possibly GRO-coalesced) per receive batch.
pub(crate) const RX_BATCH: usize = 32;
/// UDP GSO: most datagrams per message (the kernel's UDP_MAX_SEGMENTS).
const GSO_MAX_SEGMENTS: usize = 64;
/// UDP GSO: most bytes per message.
const GSO_MAX_BYTES: usize = 65000;
/// Pieces of one coalesced TUN write: vnet header + first packet + payloads.
const GRO_MAX_SEGMENTS: usize = 64;

pub(crate) fn tx_thread(shared: Arc<Shared>, tunnel: Arc<TunnelIo>) {
    let vnet = tunnel.tun.features().vnet_hdr;
    let vnet_len = if vnet { VNET_HDR_LEN } else { 0 };
    let mut slots: Vec<PacketBuf> = (0..TX_SLOTS).map(|_| PacketBuf::new(MAX_PACKET)).collect();
    let mut verdicts: Vec<Result<(), DropReason>> = vec![Ok(()); TX_SLOTS];
    let mut send = SendScratch::new(TX_SLOTS, TX_SLOTS);
    let mut iov_idx: Vec<u16> = Vec::with_capacity(TX_SLOTS);
    let mut msgs: Vec<OutMsg> = Vec::with_capacity(TX_SLOTS);
    let mut ok = vec![false; TX_SLOTS];
    let mut icmp = [0u8; 128];
    // The layout of the last TSO super-packet: the next is read scattered
    // along it (see `Layout`).
    let mut layout: Option<Layout> = None;
    // The UDP socket's receive role, when the dataplane gives it to this
    // thread (`DataplaneOptions::rx_in_tunnel_thread`), and its buffers.
    let mut serving = false;
    let mut rx: Option<RxState> = None;
    while !tunnel.stop.load(Relaxed) && !shared.stop.load(Relaxed) {
        let granted = shared.udp_rx_owner.load(Relaxed) == tunnel.id.0;
        if granted != serving {
            // Taking or giving back the role: `held` is written before the
            // owner is read again (SeqCst, like the dataplane's side, which
            // writes the owner and then reads `held`), so the dataplane
            // never sees it free while this thread goes on receiving.
            tunnel.udp_rx_held.store(granted, SeqCst);
            serving = granted && shared.udp_rx_owner.load(SeqCst) == tunnel.id.0;
            if granted && !serving {
                tunnel.udp_rx_held.store(false, SeqCst);
            }
        }
        let mut pending = 0;
        let mut reads = 0;
        while pending < TX_BATCH && TX_SLOTS - pending > MAX_SEGMENTS {
            let at = HEADROOM - vnet_len;
            let scatter = layout.filter(|l| l.slots() <= TX_SLOTS - pending);
            let read = match scatter {
                Some(l) => read_scattered(&tunnel.tun, &mut slots[pending..], l, vnet_len),
                None => {
                    let raw = slots[pending].raw_mut();
                    tunnel.tun.read(&mut raw[at..at + vnet_len + MAX_PACKET])
                }
            };
            let n = match read {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            reads += 1;
            if n <= vnet_len {
                continue;
            }
            let len = n - vnet_len;
            let hdr = if vnet {
                VnetHdr::parse(&slots[pending].raw()[at..]).unwrap_or_default()
            } else {
                VnetHdr::default()
            };
            if let Some(l) = scatter {
                if len > l.first_len() {
                    if let Some(k) = segment_scattered(&mut slots[pending..], &hdr, l, len) {
                        pending += k;
                        continue;
                    }
                    // Another layout (or not TSO at all): make it contiguous.
                    gather(&mut slots[pending..], l, len);
                }
            }
            slots[pending].set_range(HEADROOM, HEADROOM + len);
            let (k, seen) = prepare_read(&mut slots, pending, &hdr, &shared);
            pending += k;
            if seen.is_some() {
                layout = seen;
            }
        }
        if pending > 0 {
            flush_tx(
                &shared,
                &tunnel,
                &mut slots[..pending],
                &mut verdicts[..pending],
                &mut send,
                &mut iov_idx,
                &mut msgs,
                &mut ok,
                &mut icmp,
            );
        }
        let udp = shared.udp.as_ref().map(AsFd::as_fd).filter(|_| serving);
        let mut received = 0;
        if let Some(fd) = udp {
            let rx = rx.get_or_insert_with(RxState::new);
            received = rx_batch(&shared, UDP_4500, fd, rx, false).unwrap_or(0);
        }
        if pending == 0 && reads == 0 && received == 0 {
            let _ = match udp {
                Some(fd) => sys::wait_readable_any([tunnel.tun.as_fd(), fd], 100),
                None => tunnel.tun.wait_readable(100),
            };
        }
    }
    tunnel.udp_rx_held.store(false, SeqCst);
}

/// The encapsulation the UDP socket's receive path decodes (the peer port
/// plays no part in receiving).
pub(crate) const UDP_4500: Encap = Encap::Udp {
    peer_port: crate::NAT_T_PORT,
};

/// Where the segments of a TSO super-packet lie when it is read scattered.
///
/// Cutting a super-packet into segments would otherwise mean moving each
/// segment's payload to make room for its headers: a second pass over every
/// byte after the kernel's copy. Instead the read is scattered so that each
/// segment's payload lands in its own slot right behind room for the
/// headers: the first slot gets the vnet header, the headers and the first
/// payload where a plain read would put them, each next slot `mss` bytes at
/// `HEADROOM + headers`, and the last slot whatever is left (up to a
/// maximal packet). Then only the headers are copied per segment.
///
/// The layout (headers' length, MSS) is taken from the previous
/// super-packet: a TCP flow keeps both. A packet that does not match (first
/// of a flow, another flow, not TSO at all but longer than the first
/// slot's share) is gathered back into the first slot and takes the
/// contiguous path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    /// IPv4 and TCP headers' length.
    hl: usize,
    /// Segment payload size.
    mss: usize,
}

impl Layout {
    fn of(sup: &inet::TcpSuper) -> Option<Self> {
        let l = Self {
            hl: sup.header_len(),
            mss: sup.mss(),
        };
        // Small MSS would need more slots than a batch keeps free.
        (l.mss >= 512 && l.slots() >= 2 && l.slots() <= MAX_SEGMENTS).then_some(l)
    }

    /// Bytes of the packet read into the first slot.
    fn first_len(&self) -> usize {
        self.hl + self.mss
    }

    /// Slots a read takes: enough for the largest super-packet.
    fn slots(&self) -> usize {
        (MAX_PACKET - self.hl).div_ceil(self.mss)
    }

    /// Where in slot `i` of `slots` its share of the read goes (slot 0:
    /// the vnet header too).
    fn share(&self, i: usize, slots: usize, vnet_len: usize) -> core::ops::Range<usize> {
        let start = HEADROOM + self.hl;
        if i == 0 {
            HEADROOM - vnet_len..start + self.mss
        } else if i + 1 == slots {
            start..HEADROOM + MAX_PACKET
        } else {
            start..start + self.mss
        }
    }
}

/// Reads one packet from the TUN scattered over `slots` along `l`.
fn read_scattered(
    tun: &sys::Tun,
    slots: &mut [PacketBuf],
    l: Layout,
    vnet_len: usize,
) -> io::Result<usize> {
    let k = l.slots();
    let mut iov: [IoSliceMut<'_>; MAX_SEGMENTS] = std::array::from_fn(|_| IoSliceMut::new(&mut []));
    for (i, (slot, v)) in slots[..k].iter_mut().zip(iov.iter_mut()).enumerate() {
        *v = IoSliceMut::new(&mut slot.raw_mut()[l.share(i, k, vnet_len)]);
    }
    tun.read_vectored(&mut iov[..k])
}

/// Cuts a super-packet read scattered along `l` into its segments, if it
/// is TSO with that layout: copies the headers in front of each payload
/// and fixes them up. Returns the number of segments, or `None` (nothing
/// changed) if the packet is something else.
fn segment_scattered(
    slots: &mut [PacketBuf],
    hdr: &VnetHdr,
    l: Layout,
    len: usize,
) -> Option<usize> {
    if hdr.gso_type & !inet::VNET_GSO_ECN != VNET_GSO_TCPV4 || usize::from(hdr.gso_size) != l.mss {
        return None;
    }
    let head = &slots[0].raw()[HEADROOM..HEADROOM + l.first_len()];
    let sup = inet::TcpSuper::parse_head(head, len, l.mss)?;
    let k = sup.segments();
    if sup.header_len() != l.hl || k > l.slots() {
        return None;
    }
    let (first, rest) = slots.split_at_mut(1);
    let headers = &first[0].raw()[HEADROOM..HEADROOM + l.hl];
    for (i, seg) in rest[..k - 1]
        .iter_mut()
        .enumerate()
        .map(|(i, s)| (i + 1, s))
    {
        seg.set_range(HEADROOM, HEADROOM + sup.segment_len(i));
        let data = seg.data_mut();
        data[..l.hl].copy_from_slice(headers);
        sup.fix_segment(data, i, sup.is_last(i));
    }
    let first = &mut first[0];
    first.set_range(HEADROOM, HEADROOM + sup.segment_len(0));
    sup.fix_segment(first.data_mut(), 0, k == 1);
    Some(k)
}

/// Moves the `len` bytes of a packet read scattered along `l` back together
/// in the first slot, at `HEADROOM`.
fn gather(slots: &mut [PacketBuf], l: Layout, len: usize) {
    let k = l.slots();
    let (first, rest) = slots.split_at_mut(1);
    let dst = first[0].raw_mut();
    let mut at = l.first_len();
    for (i, slot) in rest[..k - 1].iter().enumerate().map(|(i, s)| (i + 1, s)) {
        if at >= len {
            break;
        }
        let share = l.share(i, k, 0);
        let n = share.len().min(len - at);
        dst[HEADROOM + at..HEADROOM + at + n]
            .copy_from_slice(&slot.raw()[share.start..share.start + n]);
        at += n;
    }
}

/// Turns the packet just read into `slots[at]` into ready inner packets:
/// completes a partial checksum, or cuts a TSO super-packet into segments in
/// `slots[at..]`. Returns how many slots it filled, and for a super-packet
/// the layout to read the next one along.
fn prepare_read(
    slots: &mut [PacketBuf],
    at: usize,
    hdr: &VnetHdr,
    shared: &Shared,
) -> (usize, Option<Layout>) {
    match hdr.gso_type & !inet::VNET_GSO_ECN {
        VNET_GSO_NONE => {
            if hdr.flags & VNET_F_NEEDS_CSUM != 0
                && !inet::complete_checksum(
                    slots[at].data_mut(),
                    usize::from(hdr.csum_start),
                    usize::from(hdr.csum_offset),
                )
            {
                shared.global.drop_one(DropReason::Malformed);
                return (0, None);
            }
            (1, None)
        }
        VNET_GSO_TCPV4 => {
            let Some(sup) = inet::TcpSuper::parse(slots[at].data(), usize::from(hdr.gso_size))
            else {
                shared.global.drop_one(DropReason::Malformed);
                return (0, None);
            };
            let k = sup.segments();
            if k > MAX_SEGMENTS || at + k > slots.len() {
                shared.global.drop_one(DropReason::Malformed);
                return (0, None);
            }
            let (head, rest) = slots.split_at_mut(at + 1);
            let src = head[at].data();
            for (i, seg) in rest[..k - 1].iter_mut().enumerate() {
                let len = sup.segment_len(i + 1);
                seg.reset(HEADROOM);
                seg.set_range(HEADROOM, HEADROOM + len);
                sup.write_segment(src, i + 1, seg.data_mut());
            }
            let first = &mut slots[at];
            let start = first.start();
            first.set_range(start, start + sup.segment_len(0));
            sup.fix_segment(first.data_mut(), 0, k == 1);
            (k, Layout::of(&sup))
        }
        _ => {
            // Only TSO4 is switched on; anything else is unexpected.
            shared.global.drop_one(DropReason::Malformed);
            (0, None)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn flush_tx(
    shared: &Shared,
    tunnel: &TunnelIo,
    slots: &mut [PacketBuf],
    verdicts: &mut [Result<(), DropReason>],
    send: &mut SendScratch,
    iov_idx: &mut Vec<u16>,
    msgs: &mut Vec<OutMsg>,
    ok: &mut [bool],
    icmp: &mut [u8; 128],
) {
    let table = shared.sadb.snapshot();
    let Some(sa) = table.outbound(tunnel.id) else {
        let mut t = Tally::default();
        for _ in 0..slots.len() {
            t.drop(DropReason::NoOutboundSa);
        }
        shared.global.add(&t);
        return;
    };
    let mut too_big = Tally::default();
    for (buf, v) in slots.iter_mut().zip(verdicts.iter_mut()) {
        *v = Ok(());
        if buf.len() > sa.max_inner() {
            *v = Err(DropReason::TooBig);
            too_big.drop(DropReason::TooBig);
            answer_too_big(tunnel, buf.data(), sa.max_inner(), icmp);
        }
    }
    if !too_big.is_empty() {
        sa.counters.add(&too_big);
    }
    encap::encap_batch(sa, slots, verdicts);
    let Some(fd) = shared.socket_for(sa.encap()) else {
        let mut t = Tally::default();
        for _ in verdicts.iter().filter(|v| v.is_ok()) {
            t.drop(DropReason::SendError);
        }
        sa.counters.add(&t);
        return;
    };
    build_messages(sa, slots, verdicts, shared.udp_features.gso, iov_idx, msgs);
    let _ = sys::send_batch(fd, slots, iov_idx, msgs, ok, send);
    let mut failed = Tally::default();
    for (m, &sent) in msgs.iter().zip(ok.iter()) {
        if !sent {
            for _ in m.iov.clone() {
                failed.drop(DropReason::SendError);
            }
        }
    }
    if !failed.is_empty() {
        sa.counters.add(&failed);
    }
}

/// Groups the sealed packets into messages: one per packet, or with UDP GSO
/// one per run of equal-sized packets (the last of a run may be shorter).
fn build_messages(
    sa: &OutboundSa,
    slots: &[PacketBuf],
    verdicts: &[Result<(), DropReason>],
    gso: bool,
    iov_idx: &mut Vec<u16>,
    msgs: &mut Vec<OutMsg>,
) {
    iov_idx.clear();
    msgs.clear();
    let (to, gso) = match sa.encap() {
        Encap::Native => (SocketAddrV4::new(sa.peer(), 0), false),
        Encap::Udp { peer_port } => (SocketAddrV4::new(sa.peer(), peer_port), gso),
    };
    let mut run_start = 0;
    let mut run_len = 0usize; // segment size of the open run
    let mut run_bytes = 0usize;
    let mut run_closed = true;
    for (i, (buf, v)) in slots.iter().zip(verdicts.iter()).enumerate() {
        if v.is_err() {
            continue;
        }
        let len = buf.len();
        let extend = gso
            && !run_closed
            && len <= run_len
            && iov_idx.len() - run_start < GSO_MAX_SEGMENTS
            && run_bytes + len <= GSO_MAX_BYTES;
        if extend {
            iov_idx.push(i as u16);
            run_bytes += len;
            if len < run_len {
                run_closed = true;
            }
            let m = msgs.last_mut().expect("a run is open");
            m.iov.end = iov_idx.len();
            m.segment = run_len as u16;
            continue;
        }
        run_start = iov_idx.len();
        iov_idx.push(i as u16);
        run_len = len;
        run_bytes = len;
        run_closed = false;
        msgs.push(OutMsg {
            iov: run_start..iov_idx.len(),
            to,
            segment: 0,
        });
    }
}

/// RFC 1191 / RFC 4459: an inner IPv4 packet with DF that does not fit gets
/// an ICMP fragmentation-needed back into the TUN, from the tunnel's far end.
fn answer_too_big(tunnel: &TunnelIo, packet: &[u8], max_inner: usize, out: &mut [u8; 128]) {
    let Some(ip) = inet::parse_ipv4(packet) else {
        return;
    };
    if !ip.dont_fragment {
        return;
    }
    let vnet = tunnel.tun.features().vnet_hdr;
    let off = if vnet { VNET_HDR_LEN } else { 0 };
    let n = inet::icmp_frag_needed(
        packet,
        tunnel.icmp_source.octets(),
        max_inner.min(65535) as u16,
        &mut out[off..],
    );
    if n == 0 {
        return;
    }
    if vnet {
        out[..VNET_HDR_LEN].copy_from_slice(&VnetHdr::default().to_bytes());
    }
    let _ = tunnel.tun.write_vectored(&[IoSlice::new(&out[..off + n])]);
}

/// A receive thread of one socket: batches until the dataplane stops or
/// (the UDP one, see [`crate::DataplaneOptions::rx_in_tunnel_thread`]) its
/// own `stop` is set.
pub(crate) fn rx_thread(shared: Arc<Shared>, encap: Encap, stop: Arc<AtomicBool>) {
    let Some(fd) = shared.socket_for(encap) else {
        return;
    };
    let mut rx = RxState::new();
    while !shared.stop.load(Relaxed) && !stop.load(Relaxed) {
        match rx_batch(&shared, encap, fd, &mut rx, true) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

/// The buffers and headers of a receiving thread, allocated once.
pub(crate) struct RxState {
    bufs: Vec<PacketBuf>,
    meta: Vec<RecvMeta>,
    scratch: RecvScratch,
    pkts: Vec<RxPacket>,
    vnet_hdrs: [[u8; VNET_HDR_LEN]; 1],
}

impl RxState {
    pub(crate) fn new() -> Self {
        Self {
            bufs: (0..RX_BATCH).map(|_| PacketBuf::new(MAX_PACKET)).collect(),
            meta: vec![RecvMeta::default(); RX_BATCH],
            scratch: RecvScratch::new(RX_BATCH),
            pkts: Vec::with_capacity(RX_BATCH * GSO_MAX_SEGMENTS * 2),
            vnet_hdrs: [[0u8; VNET_HDR_LEN]; 1],
        }
    }
}

/// Receives one batch on `fd` (the socket of `encap`; `wait`: blocking for
/// the first datagram up to the socket's timeout, else `WouldBlock` at once
/// when none is queued), decapsulates it and writes the inner packets to
/// their tunnels' TUNs; IKE messages (UDP) go to the control plane. Returns
/// the number of datagrams received.
pub(crate) fn rx_batch(
    shared: &Shared,
    encap: Encap,
    fd: BorrowedFd<'_>,
    rx: &mut RxState,
    wait: bool,
) -> io::Result<usize> {
    let RxState {
        bufs,
        meta,
        scratch,
        pkts,
        vnet_hdrs,
    } = rx;
    let ike = shared.ike_tx.as_ref();
    {
        let n = sys::recv_batch(fd, bufs, HEADROOM, meta, scratch, wait)?;
        pkts.clear();
        let mut global = Tally::default();
        for (i, m) in meta[..n].iter().enumerate() {
            if m.truncated {
                global.drop(DropReason::Malformed);
                continue;
            }
            let start = HEADROOM;
            let end = HEADROOM + m.len;
            match encap {
                Encap::Native => {
                    let data = &bufs[i].raw()[start..end];
                    let Some(ip) = inet::parse_ipv4(data) else {
                        global.drop(DropReason::Malformed);
                        continue;
                    };
                    let esp = start + ip.header_len..start + ip.total_len;
                    match decap::esp_spi(&bufs[i].raw()[esp.clone()]) {
                        Some(spi) if pkts.len() < pkts.capacity() => {
                            pkts.push(RxPacket::new(i, esp.start, esp.end, spi))
                        }
                        _ => global.drop(DropReason::Malformed),
                    }
                }
                Encap::Udp { .. } => {
                    let mut at = start;
                    while at < end {
                        let seg_end = (at + m.segment).min(end);
                        let d = &bufs[i].raw()[at..seg_end];
                        if d == [0xff] {
                            // RFC 3948 2.3: NAT keepalive, dropped silently.
                        } else if d.len() >= 4 && d[..4] == [0, 0, 0, 0] {
                            // RFC 3948 2.2: non-ESP marker, an IKE message.
                            if let Some(tx) = ike {
                                let _ = tx.try_send(IkeDatagram {
                                    from: m.from,
                                    bytes: d[4..].to_vec(),
                                });
                            }
                        } else {
                            match decap::esp_spi(d) {
                                Some(spi) if pkts.len() < pkts.capacity() => {
                                    pkts.push(RxPacket::new(i, at, seg_end, spi))
                                }
                                _ => global.drop(DropReason::Malformed),
                            }
                        }
                        at = seg_end;
                    }
                }
            }
        }
        let table = shared.sadb.snapshot();
        let tunnels = shared.tunnels.load();
        let mut i = 0;
        while i < pkts.len() {
            let spi = pkts[i].spi;
            let mut j = i + 1;
            while j < pkts.len() && pkts[j].spi == spi {
                j += 1;
            }
            match table.inbound(spi) {
                Some(sa) => {
                    decap::decap_run(sa, &mut pkts[i..j], bufs, InnerCheck::Tunnel);
                    if let Some(t) = tunnels.iter().find(|t| t.id == sa.tunnel()) {
                        let failed = deliver(&t.tun, &mut pkts[i..j], bufs, vnet_hdrs);
                        for _ in 0..failed {
                            sa.counters.drop_one(DropReason::SendError);
                        }
                    }
                }
                None => {
                    for _ in i..j {
                        global.drop(DropReason::UnknownSpi);
                    }
                }
            }
            i = j;
        }
        if !global.is_empty() {
            shared.global.add(&global);
        }
        Ok(n)
    }
}

fn bytes_of<'a>(bufs: &'a [PacketBuf], p: &RxPacket) -> &'a [u8] {
    &bufs[p.buf as usize].raw()[p.start as usize..p.end as usize]
}

/// Writes the delivered packets of a run to the TUN, coalescing
/// consecutive TCP segments of one flow into one GSO write. Returns how
/// many packets the TUN refused.
fn deliver(
    tun: &sys::Tun,
    pkts: &mut [RxPacket],
    bufs: &mut [PacketBuf],
    hdr_store: &mut [[u8; VNET_HDR_LEN]; 1],
) -> usize {
    let vnet = tun.features().vnet_hdr;
    let single_hdr = VnetHdr {
        flags: VNET_F_DATA_VALID,
        ..VnetHdr::default()
    }
    .to_bytes();
    let mut failed = 0;
    let mut k = 0;
    while k < pkts.len() {
        if !matches!(pkts[k].status, RxStatus::Deliver(_)) {
            k += 1;
            continue;
        }
        let first = pkts[k];
        let seg = if vnet {
            inet::coalescable_tcp4(bytes_of(bufs, &first))
        } else {
            None
        };
        let Some(fseg) = seg else {
            let data = bytes_of(bufs, &first);
            let r = if vnet {
                // The ICV authenticated the packet end to end: the kernel need
                // not verify the inner checksums again.
                tun.write_vectored(&[IoSlice::new(&single_hdr), IoSlice::new(data)])
            } else {
                tun.write_vectored(&[IoSlice::new(data)])
            };
            failed += usize::from(r.is_err());
            k += 1;
            continue;
        };
        let hl = usize::from(fseg.ip_len + fseg.tcp_len);
        let mut prev = fseg;
        let mut total = usize::from(fseg.payload_len);
        let mut m = k + 1;
        while m < pkts.len() && m - k < GRO_MAX_SEGMENTS {
            if !matches!(pkts[m].status, RxStatus::Deliver(_)) {
                break;
            }
            let next = bytes_of(bufs, &pkts[m]);
            let Some(nseg) = inet::coalescable_tcp4(next) else {
                break;
            };
            if hl + total + usize::from(nseg.payload_len) > 65535
                || !inet::continues(bytes_of(bufs, &first), &fseg, &prev, next, &nseg)
            {
                break;
            }
            total += usize::from(nseg.payload_len);
            prev = nseg;
            m += 1;
        }
        let count = m - k;
        let r = if count == 1 {
            let data = bytes_of(bufs, &first);
            tun.write_vectored(&[IoSlice::new(&single_hdr), IoSlice::new(data)])
        } else {
            let first_bytes =
                &mut bufs[first.buf as usize].raw_mut()[first.start as usize..first.end as usize];
            hdr_store[0] = inet::finish_coalesced(first_bytes, &fseg, total, prev.flags).to_bytes();
            let mut iov = [IoSlice::new(&[]); GRO_MAX_SEGMENTS + 1];
            iov[0] = IoSlice::new(&hdr_store[0]);
            iov[1] = IoSlice::new(bytes_of(bufs, &first));
            for (slot, p) in iov[2..].iter_mut().zip(pkts[k + 1..m].iter()) {
                *slot = IoSlice::new(&bytes_of(bufs, p)[hl..]);
            }
            tun.write_vectored(&iov[..count + 1])
        };
        if r.is_err() {
            failed += count;
        }
        k = m;
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/TCP super-packet with timestamps (52 bytes of headers), a
    /// partial checksum as the TUN hands it over, and numbered payload.
    fn super_packet(payload: usize, flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; 52 + payload];
        p[0] = 0x45;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&0x4321u16.to_be_bytes());
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 1, 0, 1]);
        p[16..20].copy_from_slice(&[10, 2, 0, 1]);
        let t = &mut p[20..];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&5201u16.to_be_bytes());
        t[4..8].copy_from_slice(&0xffff_f000u32.to_be_bytes()); // wraps
        t[12] = 8 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&500u16.to_be_bytes());
        t[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        for (i, b) in t[32..].iter_mut().enumerate() {
            *b = (i * 7 + i / 251) as u8;
        }
        p
    }

    /// What `read_scattered` makes of `packet`: the same ranges, filled in
    /// turn (vnet header first).
    fn scatter(packet: &[u8], hdr: &VnetHdr, l: Layout, slots: &mut [PacketBuf]) -> usize {
        let mut read = hdr.to_bytes().to_vec();
        read.extend_from_slice(packet);
        let k = l.slots();
        let mut at = 0;
        for (i, slot) in slots[..k].iter_mut().enumerate() {
            let range = l.share(i, k, VNET_HDR_LEN);
            let n = range.len().min(read.len() - at);
            slot.raw_mut()[range.start..range.start + n].copy_from_slice(&read[at..at + n]);
            at += n;
        }
        assert_eq!(at, read.len(), "the shares hold a maximal packet");
        read.len()
    }

    fn tso_hdr(mss: usize) -> VnetHdr {
        VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            gso_type: VNET_GSO_TCPV4,
            hdr_len: 52,
            gso_size: mss as u16,
            csum_start: 20,
            csum_offset: 16,
        }
    }

    fn new_slots() -> Vec<PacketBuf> {
        (0..MAX_SEGMENTS)
            .map(|_| PacketBuf::new(MAX_PACKET))
            .collect()
    }

    #[test]
    fn scattered_segments_equal_the_contiguous_ones() {
        let mss = 1348;
        let l = Layout { hl: 52, mss };
        let mut slots = new_slots();
        for payload in [mss + 1, 2 * mss, 3000, 40_000, MAX_PACKET - 52] {
            for flags in [0x10, 0x18 | 0x01, 0x80 | 0x10] {
                let packet = super_packet(payload, flags);
                let sup = inet::TcpSuper::parse(&packet, mss).unwrap();
                let n = scatter(&packet, &tso_hdr(mss), l, &mut slots);
                let k = segment_scattered(&mut slots, &tso_hdr(mss), l, n - VNET_HDR_LEN)
                    .expect("the layout matches");
                assert_eq!(k, sup.segments());
                for (i, slot) in slots[..k].iter().enumerate() {
                    let mut want = vec![0u8; sup.segment_len(i)];
                    sup.write_segment(&packet, i, &mut want);
                    assert_eq!(slot.data(), &want[..], "payload {payload} segment {i}");
                    // Each segment's TCP checksum verifies on its own.
                    let seg = slot.data();
                    let sum = inet::csum_add(0, &seg[12..20])
                        + 6
                        + (seg.len() - 20) as u64
                        + inet::csum_add(0, &seg[20..]);
                    assert_eq!(inet::csum_fold(sum), 0xffff, "segment {i} checksum");
                }
            }
        }
    }

    #[test]
    fn other_packets_are_gathered_back_whole() {
        let l = Layout { hl: 52, mss: 1348 };
        let mut slots = new_slots();
        // Another MSS (another flow), a plain packet longer than the first
        // slot's share, and a maximal packet.
        for (payload, hdr) in [
            (30_000, tso_hdr(1000)),
            (1400, VnetHdr::default()),
            (MAX_PACKET - 52, tso_hdr(1200)),
        ] {
            let packet = super_packet(payload, 0x10);
            let n = scatter(&packet, &hdr, l, &mut slots);
            assert_eq!(
                segment_scattered(&mut slots, &hdr, l, n - VNET_HDR_LEN),
                None
            );
            gather(&mut slots, l, n - VNET_HDR_LEN);
            assert_eq!(
                &slots[0].raw()[HEADROOM..HEADROOM + packet.len()],
                &packet[..],
                "payload {payload}"
            );
        }
    }

    #[test]
    fn layouts_fit_the_free_slots() {
        for mss in [512, 536, 1000, 1348, 1448, 8948, 32_000] {
            let l = Layout { hl: 52, mss };
            assert!(l.slots() <= MAX_SEGMENTS && TX_SLOTS - (TX_BATCH - 1) > l.slots());
        }
    }
}
