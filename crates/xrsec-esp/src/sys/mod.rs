//! The only module with `unsafe` (CONVENTIONS.md item 9): TUN ioctls,
//! interface configuration ioctls, raw and UDP sockets with `recvmmsg` /
//! `sendmmsg` and the UDP GSO/GRO control messages, `poll`.
//!
//! Every kernel feature beyond the basics is probed where it is switched on
//! and its absence is a fallback, not an error: a TUN without
//! `IFF_VNET_HDR` or whose `TUNSETOFFLOAD` is refused reads one plain packet
//! at a time; a UDP socket without `UDP_SEGMENT` sends one datagram per
//! message of a `sendmmsg`, without `UDP_GRO` receives one per message.
//! [`Features`] records what was found for status output and the bench.
//!
//! Each `unsafe` block says why it is sound in a `// SAFETY:` comment; the
//! pattern throughout is a libc call on a file descriptor we own, with
//! pointers into buffers that outlive the call and lengths taken from them.

#![allow(unsafe_code)]

mod net;
mod tun;

pub use net::{
    open_raw_esp, open_udp, recv_batch, send_batch, wait_readable_any, OutMsg, RecvMeta,
    RecvScratch, SendScratch, UdpFeatures,
};
pub use tun::{
    add_route, configure_interface, delete_route, ifindex, interface_ipv4, set_mtu, Tun,
    TunFeatures,
};

/// Kernel features the dataplane found at start-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// TUN accepts `IFF_VNET_HDR` (virtio-net header per packet).
    pub tun_vnet_hdr: bool,
    /// TUN accepts `TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4)`: TCP
    /// super-packets from the kernel, segmented by us.
    pub tun_tso: bool,
    /// UDP socket accepts `UDP_SEGMENT` (GSO on send).
    pub udp_gso: bool,
    /// UDP socket accepts `UDP_GRO` (coalesced datagrams on receive).
    pub udp_gro: bool,
}

impl core::fmt::Display for Features {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let yn = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "tun-vnet-hdr={} tun-tso={} udp-gso={} udp-gro={}",
            yn(self.tun_vnet_hdr),
            yn(self.tun_tso),
            yn(self.udp_gso),
            yn(self.udp_gro)
        )
    }
}

/// Checks for errno from a libc return value.
fn cvt(ret: libc::c_int) -> std::io::Result<libc::c_int> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Whether the process has root's network powers (for tests' messages).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
