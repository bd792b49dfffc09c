//! TUN devices (Documentation/networking/tuntap.rst) and interface
//! configuration by ioctl on an `AF_INET` datagram socket (netdevice(7)).

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use super::cvt;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;

/// `struct ifreq`: the name, then a 24-byte union.
#[repr(C)]
#[derive(Clone, Copy)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> io::Result<Self> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "interface name must be 1-15 bytes",
            ));
        }
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        r.name[..bytes.len()].copy_from_slice(bytes);
        Ok(r)
    }

    fn set_short(&mut self, v: libc::c_short) {
        self.data[..2].copy_from_slice(&v.to_ne_bytes());
    }

    fn short(&self) -> libc::c_short {
        libc::c_short::from_ne_bytes([self.data[0], self.data[1]])
    }

    fn set_int(&mut self, v: libc::c_int) {
        self.data[..4].copy_from_slice(&v.to_ne_bytes());
    }

    /// A `struct sockaddr_in` in the union.
    fn set_addr(&mut self, a: Ipv4Addr) {
        self.data = [0; 24];
        self.data[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        self.data[4..8].copy_from_slice(&a.octets());
    }
}

fn ioctl(fd: &impl AsRawFd, req: libc::c_ulong, ifr: &mut IfReq) -> io::Result<()> {
    // SAFETY: `ifr` is a live, writable `struct ifreq`-sized value for the
    // whole call; every request we pass takes a `struct ifreq *`.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), req as _, ifr as *mut IfReq) }).map(drop)
}

/// What a TUN device got of the offloads asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunFeatures {
    /// Packets carry a virtio-net header.
    pub vnet_hdr: bool,
    /// TSO4 and checksum offload on.
    pub tso: bool,
}

/// An open TUN device (non-blocking; read with [`Tun::wait_readable`]).
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
    features: TunFeatures,
}

impl Tun {
    /// Creates (or attaches to) TUN device `name` in `IFF_TUN | IFF_NO_PI`
    /// mode, with `IFF_VNET_HDR` and TSO4/checksum offload if `offloads` and
    /// the kernel allows, falling back step by step.
    pub fn open(name: &str, offloads: bool) -> io::Result<Self> {
        let attempts: &[bool] = if offloads { &[true, false] } else { &[false] };
        let mut last_err = None;
        for &vnet in attempts {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open("/dev/net/tun")?;
            let mut ifr = IfReq::new(name)?;
            let flags = IFF_TUN | IFF_NO_PI | if vnet { IFF_VNET_HDR } else { 0 };
            ifr.set_short(flags);
            match ioctl(&file, TUNSETIFF, &mut ifr) {
                Ok(()) => {}
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            }
            let mut tso = false;
            if vnet {
                // SAFETY: TUNSETOFFLOAD takes its flags as the integer
                // argument itself, not a pointer; the fd is ours.
                let r = unsafe {
                    libc::ioctl(
                        file.as_raw_fd(),
                        TUNSETOFFLOAD as _,
                        (TUN_F_CSUM | TUN_F_TSO4) as libc::c_ulong,
                    )
                };
                tso = r == 0;
            }
            let end = ifr
                .name
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(ifr.name.len());
            return Ok(Self {
                file,
                name: String::from_utf8_lossy(&ifr.name[..end]).into_owned(),
                features: TunFeatures {
                    vnet_hdr: vnet,
                    tso,
                },
            });
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("TUNSETIFF failed")))
    }

    /// The interface name the kernel gave.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offloads in effect.
    pub fn features(&self) -> TunFeatures {
        self.features
    }

    /// Reads one packet (or super-packet); `WouldBlock` when none is queued.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Reads one packet (or super-packet) scattered over `bufs`, filling
    /// each in turn; `WouldBlock` when none is queued.
    pub fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&self.file).read_vectored(bufs)
    }

    /// Writes one packet from several pieces (vnet header, headers, payload
    /// runs of a coalesced super-packet).
    pub fn write_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        (&self.file).write_vectored(parts)
    }

    /// Waits up to `timeout_ms` for a packet; `true` if one is there.
    pub fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1, for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(n > 0 && pfd.revents & libc::POLLIN != 0)
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

fn inet_dgram() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; on success we take sole ownership of
    // the new descriptor.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Gives interface `name` an IPv4 address with a prefix length and an MTU,
/// and brings it up (SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFMTU, SIOCSIFFLAGS).
/// IPv6 is switched off on it first: a `tunnel mode ipsec ipv4` interface
/// carries IPv4, and the kernel would otherwise send IPv6 router
/// solicitations and MLD reports into it, through the tunnel, for ever.
pub fn configure_interface(name: &str, addr: Ipv4Addr, prefix_len: u8, mtu: u16) -> io::Result<()> {
    disable_ipv6(name);
    let sock = inet_dgram()?;
    let mut ifr = IfReq::new(name)?;
    ifr.set_addr(addr);
    ioctl(&sock, libc::SIOCSIFADDR, &mut ifr)?;
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    };
    let mut ifr = IfReq::new(name)?;
    ifr.set_addr(Ipv4Addr::from(mask));
    ioctl(&sock, libc::SIOCSIFNETMASK, &mut ifr)?;
    set_mtu(name, mtu)?;
    let mut ifr = IfReq::new(name)?;
    ioctl(&sock, libc::SIOCGIFFLAGS, &mut ifr)?;
    let flags = ifr.short() | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    ifr.set_short(flags);
    ioctl(&sock, libc::SIOCSIFFLAGS, &mut ifr)
}

/// Best effort: a kernel without IPv6 has nothing to switch off, and a
/// read-only /proc/sys (some containers) leaves only the noise.
fn disable_ipv6(name: &str) {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return;
    }
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
}

/// Sets interface `name`'s MTU.
pub fn set_mtu(name: &str, mtu: u16) -> io::Result<()> {
    let sock = inet_dgram()?;
    let mut ifr = IfReq::new(name)?;
    ifr.set_int(libc::c_int::from(mtu));
    ioctl(&sock, libc::SIOCSIFMTU, &mut ifr)
}

/// The IPv4 address of interface `name` (SIOCGIFADDR): resolves a
/// `tunnel source` given as an interface name.
pub fn interface_ipv4(name: &str) -> io::Result<Ipv4Addr> {
    let sock = inet_dgram()?;
    let mut ifr = IfReq::new(name)?;
    ioctl(&sock, libc::SIOCGIFADDR, &mut ifr)?;
    Ok(Ipv4Addr::new(
        ifr.data[4],
        ifr.data[5],
        ifr.data[6],
        ifr.data[7],
    ))
}

/// The ifindex of interface `name` (SIOCGIFINDEX).
pub fn ifindex(name: &str) -> io::Result<u32> {
    let sock = inet_dgram()?;
    let mut ifr = IfReq::new(name)?;
    ioctl(&sock, libc::SIOCGIFINDEX, &mut ifr)?;
    Ok(u32::from_ne_bytes([
        ifr.data[0],
        ifr.data[1],
        ifr.data[2],
        ifr.data[3],
    ]))
}

fn sockaddr_v4(a: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size (16 bytes) and
    // sockaddr has no invalid bit patterns; this is the cast the routing
    // ioctls expect.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn route_ioctl(req: libc::c_ulong, dst: Ipv4Addr, prefix_len: u8, ifname: &str) -> io::Result<()> {
    let prefix_len = prefix_len.min(32);
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    };
    let dev = std::ffi::CString::new(ifname)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name contains NUL"))?;
    // SAFETY: rtentry is a plain C struct of integers, sockaddrs and one
    // pointer, for all of which zero is a valid value.
    let mut rt: libc::rtentry = unsafe { std::mem::zeroed() };
    rt.rt_dst = sockaddr_v4(Ipv4Addr::from(u32::from(dst) & mask));
    rt.rt_genmask = sockaddr_v4(Ipv4Addr::from(mask));
    rt.rt_flags = libc::RTF_UP;
    if prefix_len == 32 {
        rt.rt_flags |= libc::RTF_HOST;
    }
    rt.rt_dev = dev.as_ptr().cast_mut();
    let sock = inet_dgram()?;
    // SAFETY: `rt` is a live rtentry for the whole call and `rt_dev` points
    // to `dev`, a NUL-terminated string that outlives it; SIOCADDRT and
    // SIOCDELRT take a `struct rtentry *` and only read it.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), req as _, &mut rt as *mut libc::rtentry) }).map(drop)
}

/// Adds the route `dst/prefix_len dev ifname` (SIOCADDRT): `router static`
/// routes into a tunnel interface. An existing identical route is not an
/// error.
pub fn add_route(dst: Ipv4Addr, prefix_len: u8, ifname: &str) -> io::Result<()> {
    match route_ioctl(libc::SIOCADDRT, dst, prefix_len, ifname) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r,
    }
}

/// Removes the route `dst/prefix_len dev ifname` (SIOCDELRT); a missing
/// route is not an error.
pub fn delete_route(dst: Ipv4Addr, prefix_len: u8, ifname: &str) -> io::Result<()> {
    match route_ioctl(libc::SIOCDELRT, dst, prefix_len, ifname) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        r => r,
    }
}
