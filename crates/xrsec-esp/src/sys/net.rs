//! The ESP sockets: a raw `IPPROTO_ESP` socket (ip(7), raw(7): received
//! packets start with the outer IPv4 header, sent ones get it from the
//! kernel, with DF through `IP_PMTUDISC_DO` so we never fragment) and the UDP
//! port 4500 socket (udp(7): `UDP_SEGMENT` and `UDP_GRO`), both driven by
//! `recvmmsg`/`sendmmsg` over preallocated headers.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;

use super::cvt;
use crate::packet::PacketBuf;

const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;
const IPPROTO_ESP: libc::c_int = 50;
/// Room for one control message carrying an int (or u16), aligned.
const CMSG_BUF: usize = 64;
const SOCKET_BUFFER: libc::c_int = 8 << 20;

fn setsockopt_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `v` is a live c_int and the length passed is its size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
    s
}

fn from_sockaddr(s: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(s.sin_addr.s_addr.to_ne_bytes()),
        u16::from_be(s.sin_port),
    )
}

fn new_socket(ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; on success we own the descriptor.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, ty | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: `fd` is fresh from socket(2) and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn common_options(fd: &OwnedFd) -> io::Result<()> {
    // RFC 4459 / our rule: outer packets are never fragmented by us; DF is
    // set and a too-big send fails with EMSGSIZE instead.
    setsockopt_int(
        fd,
        libc::IPPROTO_IP,
        libc::IP_MTU_DISCOVER,
        libc::IP_PMTUDISC_DO,
    )?;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if setsockopt_int(fd, libc::SOL_SOCKET, force, SOCKET_BUFFER).is_err() {
            let _ = setsockopt_int(fd, libc::SOL_SOCKET, plain, SOCKET_BUFFER);
        }
    }
    // Receive threads wake up at least this often to notice a shutdown.
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: `tv` is a live timeval and the length passed is its size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    })
    .map(drop)
}

fn bind(fd: &OwnedFd, addr: SocketAddrV4) -> io::Result<()> {
    let sa = sockaddr(addr);
    // SAFETY: `sa` is a live sockaddr_in and the length passed is its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// A raw socket for IP protocol 50, bound to `local` (unspecified: all).
pub fn open_raw_esp(local: Ipv4Addr) -> io::Result<OwnedFd> {
    let fd = new_socket(libc::SOCK_RAW, IPPROTO_ESP)?;
    common_options(&fd)?;
    if !local.is_unspecified() {
        bind(&fd, SocketAddrV4::new(local, 0))?;
    }
    Ok(fd)
}

/// What a UDP socket got of the offloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpFeatures {
    /// `UDP_SEGMENT` accepted.
    pub gso: bool,
    /// `UDP_GRO` accepted.
    pub gro: bool,
}

/// The UDP socket on `local:port` (4500), with GSO/GRO when `offloads` and
/// the kernel has them.
pub fn open_udp(local: Ipv4Addr, port: u16, offloads: bool) -> io::Result<(OwnedFd, UdpFeatures)> {
    let fd = new_socket(libc::SOCK_DGRAM, 0)?;
    setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    common_options(&fd)?;
    bind(&fd, SocketAddrV4::new(local, port))?;
    let mut f = UdpFeatures::default();
    if offloads {
        // Probe: 0 switches per-socket GSO off but is only accepted by a
        // kernel that knows the option; the size goes per message.
        f.gso = setsockopt_int(&fd, SOL_UDP, UDP_SEGMENT, 0).is_ok();
        f.gro = setsockopt_int(&fd, SOL_UDP, UDP_GRO, 1).is_ok();
    }
    Ok((fd, f))
}

/// One received datagram.
#[derive(Clone, Copy, Debug)]
pub struct RecvMeta {
    /// Bytes received (several datagrams when coalesced by GRO).
    pub len: usize,
    /// Sender.
    pub from: SocketAddrV4,
    /// Length of each coalesced datagram (the last may be shorter); `len`
    /// when not coalesced.
    pub segment: usize,
    /// The datagram did not fit the buffer.
    pub truncated: bool,
}

impl Default for RecvMeta {
    fn default() -> Self {
        Self {
            len: 0,
            from: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            segment: 0,
            truncated: false,
        }
    }
}

/// Headers for `recvmmsg`, allocated once per receive thread.
pub struct RecvScratch {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_in>,
    cmsgs: Vec<[u64; CMSG_BUF / 8]>,
}

impl RecvScratch {
    /// Room for `n` messages per call.
    pub fn new(n: usize) -> Self {
        // SAFETY: these libc structs are plain old data (integers and raw
        // pointers); all-zero is a valid value of each.
        let (hdr, iov, addr) = unsafe {
            (
                zeroed::<libc::mmsghdr>(),
                zeroed::<libc::iovec>(),
                zeroed::<libc::sockaddr_in>(),
            )
        };
        Self {
            hdrs: vec![hdr; n],
            iovs: vec![iov; n],
            addrs: vec![addr; n],
            cmsgs: vec![[0; CMSG_BUF / 8]; n],
        }
    }
}

impl core::fmt::Debug for RecvScratch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecvScratch")
            .field("slots", &self.hdrs.len())
            .finish()
    }
}

// Parallel arrays (headers, iovecs, addresses, buffers) indexed together.
#[allow(clippy::needless_range_loop)]
/// Receives up to `min(bufs, meta, scratch)` datagrams, each into
/// `bufs[i].raw_mut()[offset..]`; with `wait`, blocks for the first (up to
/// the socket's 100 ms receive timeout: then `WouldBlock`), without it
/// returns `WouldBlock` at once if none is queued; takes what else is queued.
pub fn recv_batch(
    fd: BorrowedFd<'_>,
    bufs: &mut [PacketBuf],
    offset: usize,
    meta: &mut [RecvMeta],
    s: &mut RecvScratch,
    wait: bool,
) -> io::Result<usize> {
    let n = bufs.len().min(meta.len()).min(s.hdrs.len());
    for i in 0..n {
        let raw = bufs[i].raw_mut();
        let off = offset.min(raw.len());
        s.iovs[i] = libc::iovec {
            iov_base: raw[off..].as_mut_ptr().cast(),
            iov_len: raw.len() - off,
        };
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut h: libc::msghdr = unsafe { zeroed() };
        h.msg_name = (&mut s.addrs[i] as *mut libc::sockaddr_in).cast();
        h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        h.msg_iov = &mut s.iovs[i];
        h.msg_iovlen = 1;
        h.msg_control = s.cmsgs[i].as_mut_ptr().cast();
        h.msg_controllen = CMSG_BUF as _;
        s.hdrs[i] = libc::mmsghdr {
            msg_hdr: h,
            msg_len: 0,
        };
    }
    // SAFETY: `n` headers are initialised above, each pointing at an iovec,
    // an address and a control buffer that live in `s` and a data buffer in
    // `bufs`, all borrowed mutably for the duration of the call; the lengths
    // given are those of the pointed-to memory.
    let got = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            s.hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_WAITFORONE | if wait { 0 } else { libc::MSG_DONTWAIT },
            ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = got as usize;
    for i in 0..got {
        let h = &s.hdrs[i];
        let len = h.msg_len as usize;
        let mut segment = len;
        // SAFETY: the kernel filled `msg_control`/`msg_controllen` of this
        // header; CMSG_FIRSTHDR/NXTHDR stay within that buffer and return
        // null at its end.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
            while !c.is_null() {
                if (*c).cmsg_level == SOL_UDP && (*c).cmsg_type == UDP_GRO {
                    let v = ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    if v > 0 {
                        segment = v as usize;
                    }
                }
                c = libc::CMSG_NXTHDR(&h.msg_hdr, c);
            }
        }
        meta[i] = RecvMeta {
            len,
            from: from_sockaddr(&s.addrs[i]),
            segment: segment.max(1),
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        };
    }
    Ok(got)
}

/// Waits up to `timeout_ms` until one of `fds` is readable (or in error,
/// which the next read reports). `Ok(false)` on timeout or signal.
pub fn wait_readable_any(fds: [BorrowedFd<'_>; 2], timeout_ms: i32) -> io::Result<bool> {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: two valid pollfds in a live array, count 2, for the duration
    // of the call; the descriptors are borrowed, so open, for as long.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(n > 0)
}

/// One message of a [`send_batch`]: the packets `iov_idx[iov]` (indices
/// into the buffers), sent to `to`, as one UDP GSO message of `segment`-byte
/// datagrams when `segment != 0`.
#[derive(Clone, Debug)]
pub struct OutMsg {
    /// Range into the index list.
    pub iov: core::ops::Range<usize>,
    /// Destination (port ignored by raw sockets).
    pub to: SocketAddrV4,
    /// GSO segment size; 0 for one datagram.
    pub segment: u16,
}

/// Headers for `sendmmsg`, allocated once per transmit thread.
pub struct SendScratch {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_in>,
    cmsgs: Vec<[u64; CMSG_BUF / 8]>,
}

impl SendScratch {
    /// Room for `msgs` messages and `iovs` pieces per call.
    pub fn new(msgs: usize, iovs: usize) -> Self {
        // SAFETY: plain old data; all-zero is valid.
        let (hdr, iov, addr) = unsafe {
            (
                zeroed::<libc::mmsghdr>(),
                zeroed::<libc::iovec>(),
                zeroed::<libc::sockaddr_in>(),
            )
        };
        Self {
            hdrs: vec![hdr; msgs],
            iovs: vec![iov; iovs],
            addrs: vec![addr; msgs],
            cmsgs: vec![[0; CMSG_BUF / 8]; msgs],
        }
    }
}

impl core::fmt::Debug for SendScratch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SendScratch")
            .field("msgs", &self.hdrs.len())
            .finish()
    }
}

/// Sends `msgs` with as few `sendmmsg` calls as the kernel allows; a
/// message the kernel refuses (e.g. `EMSGSIZE`) is skipped and marked
/// `false` in `ok`. Returns the number of messages sent.
pub fn send_batch(
    fd: BorrowedFd<'_>,
    bufs: &[PacketBuf],
    iov_idx: &[u16],
    msgs: &[OutMsg],
    ok: &mut [bool],
    s: &mut SendScratch,
) -> io::Result<usize> {
    let n = msgs.len().min(s.hdrs.len()).min(ok.len());
    let mut iov_at = 0;
    let mut built = 0;
    for (i, m) in msgs[..n].iter().enumerate() {
        let count = m.iov.len();
        if iov_at + count > s.iovs.len() || m.iov.end > iov_idx.len() {
            break;
        }
        for (k, &b) in iov_idx[m.iov.clone()].iter().enumerate() {
            let data = bufs.get(usize::from(b)).map_or(&[][..], PacketBuf::data);
            s.iovs[iov_at + k] = libc::iovec {
                // The kernel only reads through this pointer (sendmsg).
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            };
        }
        s.addrs[i] = sockaddr(m.to);
        // SAFETY: plain old data; all-zero is valid.
        let mut h: libc::msghdr = unsafe { zeroed() };
        h.msg_name = (&mut s.addrs[i] as *mut libc::sockaddr_in).cast();
        h.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        h.msg_iov = s.iovs[iov_at..].as_mut_ptr();
        h.msg_iovlen = count as _;
        if m.segment != 0 {
            h.msg_control = s.cmsgs[i].as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE is a pure size computation.
            h.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as _;
            // SAFETY: the control buffer is CMSG_BUF (64) bytes, enough for
            // one cmsghdr with a u16; CMSG_FIRSTHDR returns its start since
            // msg_controllen covers a header, and CMSG_DATA/LEN stay in it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&h);
                (*c).cmsg_level = SOL_UDP;
                (*c).cmsg_type = UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), m.segment);
            }
        }
        s.hdrs[i] = libc::mmsghdr {
            msg_hdr: h,
            msg_len: 0,
        };
        iov_at += count;
        built += 1;
    }
    let mut done = 0;
    let mut sent = 0;
    while done < built {
        // SAFETY: headers `done..built` are initialised above and point at
        // iovecs, addresses and control buffers in `s` and at packet data in
        // `bufs`, all borrowed for the duration of the call.
        let r = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                s.hdrs[done..].as_mut_ptr(),
                (built - done) as libc::c_uint,
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The first message of this call failed: skip it.
            ok[done] = false;
            done += 1;
            continue;
        }
        for flag in &mut ok[done..done + r as usize] {
            *flag = true;
        }
        done += r as usize;
        sent += r as usize;
    }
    for flag in &mut ok[built..n] {
        *flag = false;
    }
    Ok(sent)
}
