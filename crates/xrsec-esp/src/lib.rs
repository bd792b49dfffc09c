//! The ESP dataplane of xrsec: inner packets read from a `tunnel-ipN` TUN
//! device leave as ESP tunnel-mode packets (RFC 4303), natively (IP protocol
//! 50) or in UDP port 4500 (RFC 3948); ESP packets from the peer come back
//! out of the TUN. Encryption and decryption happen in place, in the buffer
//! the packet was read into.
//!
//! # Control-plane surface
//!
//! The daemon drives a [`Dataplane`] (IKE wires in later; until then SAs are
//! installed with static keys, see the `xrsec-esp-static` lab tool):
//!
//! ```no_run
//! # use std::net::Ipv4Addr;
//! # use xrsec_esp::*;
//! # fn keys() -> xrsec_crypto::EspKeys { unimplemented!() }
//! let dp = Dataplane::start(DataplaneOptions {
//!     local: Ipv4Addr::new(10, 99, 0, 1),
//!     ..DataplaneOptions::default()
//! })?;
//! let t = dp.add_tunnel(TunnelSpec {
//!     ifname: "tunnel-ip1".into(),
//!     address: Ipv4Addr::new(192, 0, 2, 1),
//!     prefix_len: 30,
//!     mtu: None,
//!     local: Ipv4Addr::new(10, 99, 0, 1),
//!     remote: Ipv4Addr::new(10, 99, 0, 2),
//! })?;
//! let suite = xrsec_crypto::EspSuite::new(xrsec_crypto::Encr::AesGcm16_128, None).unwrap();
//! dp.install_sa(t, SaSpec {
//!     spi_in: 0x1001, spi_out: 0x2001, suite, keys_in: keys(), keys_out: keys(),
//!     esn: false, replay_window: 64, lifetime: Lifetime::UNLIMITED, encap: Encap::Native,
//! })?;
//! for event in dp.events().try_iter() { /* SoftLifetime => rekey, ... */ }
//! for c in dp.counters() { /* show ipsec sa */ }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`Dataplane::start`] opens the sockets (raw ESP, UDP 4500) and starts
//!   their receive threads; [`Dataplane::shutdown`] (or drop) stops and joins
//!   every thread and removes the TUN devices. With
//!   [`DataplaneOptions::rx_in_tunnel_thread`], a single tunnel's thread
//!   serves UDP 4500's receive side itself (see there).
//! - [`Dataplane::add_tunnel`] creates and configures the TUN (address, MTU,
//!   up) and starts its transmit thread; [`Dataplane::remove_tunnel`] undoes
//!   it with its SAs.
//! - [`Dataplane::install_sa`] installs a Child SA: the inbound half by our
//!   SPI and the outbound half as the tunnel's, in one step (readers see the
//!   new inbound SA no later than the new outbound one: make-before-break).
//!   A rekey installs the new pair while the old inbound SA stays; the
//!   control plane deletes the old one with
//!   [`Dataplane::delete_inbound_sa`] once the peer moved over.
//! - [`Dataplane::counters`] for `show ipsec sa`; [`Dataplane::events`]
//!   for soft/hard lifetimes and sequence exhaustion (rekey triggers).
//! - [`Dataplane::ike_udp4500`]: UDP 4500 is shared with IKE (RFC 3948 2.2):
//!   datagrams with the non-ESP marker arrive on a channel, IKE sends on a
//!   clone of the socket with the marker prefixed.
//!
//! # Invariants
//!
//! - Per packet: no allocation, no lock, no copy (except each TSO segment's
//!   headers, see [`worker`]), no system call of its own except the TUN's `read` /
//!   `writev` (TUN has no batch call; TSO/GRO make one call carry up to 64 KB).
//! - SA changes reach the packet threads through an atomic snapshot
//!   ([`sadb`]) loaded once per batch.
//! - `unsafe` lives only in [`sys`], which probes each kernel feature and
//!   falls back when it is missing ([`sys::Features`]).
//! - Nothing a peer sends makes the dataplane panic; every drop has a
//!   [`DropReason`] and a counter.

#![deny(unsafe_code)] // allowed again in `sys` only
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod counters;
pub mod decap;
pub mod encap;
pub mod inet;
pub mod packet;
pub mod replay;
pub mod sa;
pub mod sadb;
pub mod sys;
pub mod worker;

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender};

pub use counters::{DirectionSnapshot, DropReason};
pub use packet::PacketBuf;
pub use sa::{DataplaneEvent, Direction, Encap, InboundSa, Lifetime, OutboundSa, SaSpec, TunnelId};
pub use sadb::Sadb;
pub use sys::Features;

/// The default MTU of the underlay path (Ethernet).
pub const DEFAULT_PATH_MTU: u16 = 1500;
/// The IKE / ESP-in-UDP port (RFC 3948).
pub const NAT_T_PORT: u16 = 4500;

/// How the dataplane starts.
#[derive(Clone, Debug)]
pub struct DataplaneOptions {
    /// Local underlay address to bind the sockets to (unspecified: any).
    pub local: Ipv4Addr,
    /// MTU of the underlay path: ESP packets with their outer headers are
    /// kept within it.
    pub path_mtu: u16,
    /// Open the raw ESP socket (native ESP).
    pub native: bool,
    /// Open the UDP socket on this port for ESP in UDP (and IKE's NAT-T).
    pub udp_port: Option<u16>,
    /// Use the TUN and UDP offloads where the kernel has them (off: one
    /// packet per read/datagram, for comparison and fallback tests).
    pub offloads: bool,
    /// While the dataplane has exactly one tunnel, its thread also receives
    /// on the UDP socket (non-blocking `recvmmsg` after each transmit batch,
    /// `poll` on the TUN and the socket when both are idle) and no separate
    /// UDP receive thread runs: a TCP flow's ACKs then leave from the thread
    /// that received its data, without waking another one (single-stream
    /// throughput +6-10% in the bench). With no tunnel, or more than one,
    /// the UDP receive thread serves the socket as without this option;
    /// adding or removing a tunnel moves the role (IKE messages reach
    /// [`Dataplane::ike_udp4500`] either way). The raw ESP socket always has
    /// its own receive thread.
    pub rx_in_tunnel_thread: bool,
}

impl Default for DataplaneOptions {
    fn default() -> Self {
        Self {
            local: Ipv4Addr::UNSPECIFIED,
            path_mtu: DEFAULT_PATH_MTU,
            native: true,
            udp_port: Some(NAT_T_PORT),
            offloads: true,
            rx_in_tunnel_thread: false,
        }
    }
}

/// One `interface tunnel-ipN`.
#[derive(Clone, Debug)]
pub struct TunnelSpec {
    /// Interface name, e.g. `tunnel-ip1`.
    pub ifname: String,
    /// The tunnel interface's IPv4 address.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Configured MTU; `None`: whatever leaves room for the outer headers of
    /// the installed SA's suite (until an SA is installed: of the largest
    /// suite, ESP in UDP).
    pub mtu: Option<u16>,
    /// `tunnel source`.
    pub local: Ipv4Addr,
    /// `tunnel destination`.
    pub remote: Ipv4Addr,
}

/// An IKE message received on UDP 4500 (non-ESP marker removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeDatagram {
    /// Sender.
    pub from: SocketAddrV4,
    /// The IKE message.
    pub bytes: Vec<u8>,
}

/// IKE's side of the shared UDP 4500 socket.
#[derive(Debug)]
pub struct IkeUdp4500 {
    socket: UdpSocket,
    rx: Receiver<IkeDatagram>,
}

impl IkeUdp4500 {
    /// IKE messages that arrived with the non-ESP marker.
    pub fn incoming(&self) -> &Receiver<IkeDatagram> {
        &self.rx
    }

    /// Sends an IKE message with the non-ESP marker (RFC 3948 2.2).
    pub fn send_to(&self, message: &[u8], to: SocketAddrV4) -> io::Result<()> {
        let mut d = Vec::with_capacity(4 + message.len());
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(message);
        self.socket.send_to(&d, to).map(drop)
    }

    /// Sends a NAT keepalive (RFC 3948 2.3: one byte 0xFF).
    pub fn send_keepalive(&self, to: SocketAddrV4) -> io::Result<()> {
        self.socket.send_to(&[0xff], to).map(drop)
    }
}

/// Counters of one SA half for `show ipsec sa`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaCounters {
    /// The tunnel.
    pub tunnel: TunnelId,
    /// The SPI.
    pub spi: u32,
    /// Which half.
    pub direction: Direction,
    /// Suite, e.g. "AES-GCM-16-128" or "AES-CBC-256/HMAC-SHA-256-128".
    pub suite: String,
    /// Native or UDP.
    pub encap: Encap,
    /// The counts.
    pub counts: DirectionSnapshot,
}

/// What went wrong installing an SA.
#[derive(Debug)]
#[non_exhaustive]
pub enum InstallError {
    /// No such tunnel.
    UnknownTunnel(TunnelId),
    /// Keys do not fit the suite.
    Key(xrsec_crypto::KeyError),
    /// The SA's encapsulation has no socket (not opened at start).
    NoSocket(Encap),
}

impl core::fmt::Display for InstallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownTunnel(t) => write!(f, "no tunnel {}", t.0),
            Self::Key(e) => write!(f, "keys: {e}"),
            Self::NoSocket(e) => write!(f, "no socket for {e:?}"),
        }
    }
}

impl std::error::Error for InstallError {}

/// One tunnel as the packet threads see it.
#[derive(Debug)]
pub(crate) struct TunnelIo {
    pub(crate) id: TunnelId,
    pub(crate) tun: sys::Tun,
    /// Source of the ICMP errors we write into the TUN: the tunnel's far
    /// end (its underlay address), not an address of this host, which the
    /// kernel would drop as a martian source arriving from outside.
    pub(crate) icmp_source: Ipv4Addr,
    pub(crate) stop: AtomicBool,
    /// This tunnel's thread is receiving on the UDP socket (written by that
    /// thread; see [`Shared::udp_rx_owner`]).
    pub(crate) udp_rx_held: AtomicBool,
}

/// State shared by the control plane and the packet threads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) sadb: Sadb,
    pub(crate) tunnels: ArcSwap<Vec<Arc<TunnelIo>>>,
    pub(crate) raw: Option<OwnedFd>,
    pub(crate) udp: Option<OwnedFd>,
    pub(crate) udp_features: sys::UdpFeatures,
    /// The tunnel (id) whose thread is to receive on the UDP socket; 0: none
    /// (the UDP receive thread does, if running).
    pub(crate) udp_rx_owner: AtomicU32,
    /// Where IKE messages received on the UDP socket go.
    pub(crate) ike_tx: Option<Sender<IkeDatagram>>,
    pub(crate) stop: AtomicBool,
    /// Drops with no SA to count them on (unknown SPI, malformed outer
    /// packets, no outbound SA).
    pub(crate) global: counters::DirectionCounters,
}

impl Shared {
    pub(crate) fn socket_for(&self, encap: Encap) -> Option<BorrowedFd<'_>> {
        match encap {
            Encap::Native => self.raw.as_ref().map(AsFd::as_fd),
            Encap::Udp { .. } => self.udp.as_ref().map(AsFd::as_fd),
        }
    }
}

struct TunnelEntry {
    io: Arc<TunnelIo>,
    spec: TunnelSpec,
    thread: Option<JoinHandle<()>>,
}

/// The UDP socket's receive thread, when it runs.
struct UdpRxThread {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The ESP dataplane: sockets, tunnels, SAs and the packet threads.
pub struct Dataplane {
    shared: Arc<Shared>,
    opts: DataplaneOptions,
    rx_threads: Vec<JoinHandle<()>>,
    udp_rx: Mutex<Option<UdpRxThread>>,
    tunnels: Mutex<Vec<TunnelEntry>>,
    next_tunnel: AtomicU32,
    events_tx: Sender<DataplaneEvent>,
    events_rx: Receiver<DataplaneEvent>,
    ike: Option<IkeUdp4500>,
    features: Mutex<Features>,
}

impl core::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Dataplane")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Dataplane {
    /// Opens the sockets and starts their receive threads.
    pub fn start(opts: DataplaneOptions) -> io::Result<Self> {
        let raw = if opts.native {
            Some(sys::open_raw_esp(opts.local)?)
        } else {
            None
        };
        let (udp, udp_features) = match opts.udp_port {
            Some(port) => {
                let (fd, f) = sys::open_udp(opts.local, port, opts.offloads)?;
                (Some(fd), f)
            }
            None => (None, sys::UdpFeatures::default()),
        };
        let (ike, ike_tx) = match &udp {
            Some(fd) => {
                let socket = UdpSocket::from(fd.try_clone()?);
                let (tx, rx) = crossbeam_channel::bounded(256);
                (Some(IkeUdp4500 { socket, rx }), Some(tx))
            }
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            sadb: Sadb::new(),
            tunnels: ArcSwap::from_pointee(Vec::new()),
            raw,
            udp,
            udp_features,
            udp_rx_owner: AtomicU32::new(0),
            ike_tx,
            stop: AtomicBool::new(false),
            global: Default::default(),
        });
        let (events_tx, events_rx) = crossbeam_channel::bounded(1024);
        let mut rx_threads = Vec::new();
        if shared.raw.is_some() {
            let s = shared.clone();
            let never = Arc::new(AtomicBool::new(false));
            rx_threads.push(
                std::thread::Builder::new()
                    .name("esp-rx-native".into())
                    .spawn(move || worker::rx_thread(s, Encap::Native, never))?,
            );
        }
        let udp_rx = Mutex::new(match shared.udp {
            Some(_) => Some(spawn_udp_rx(&shared)?),
            None => None,
        });
        let features = Features {
            udp_gso: udp_features.gso,
            udp_gro: udp_features.gro,
            ..Features::default()
        };
        Ok(Self {
            shared,
            opts,
            rx_threads,
            udp_rx,
            tunnels: Mutex::new(Vec::new()),
            next_tunnel: AtomicU32::new(1),
            events_tx,
            events_rx,
            ike,
            features: Mutex::new(features),
        })
    }

    /// Kernel features found (TUN ones once a tunnel exists).
    pub fn features(&self) -> Features {
        *self.features.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the tunnel's TUN (address, MTU, up) and its transmit thread.
    pub fn add_tunnel(&self, spec: TunnelSpec) -> io::Result<TunnelId> {
        let tun = sys::Tun::open(&spec.ifname, self.opts.offloads)?;
        let mtu = spec.mtu.unwrap_or_else(|| self.worst_case_mtu());
        sys::configure_interface(tun.name(), spec.address, spec.prefix_len, mtu)?;
        {
            let mut f = self.features.lock().unwrap_or_else(|e| e.into_inner());
            f.tun_vnet_hdr = tun.features().vnet_hdr;
            f.tun_tso = tun.features().tso;
        }
        let id = TunnelId(self.next_tunnel.fetch_add(1, Relaxed));
        let io = Arc::new(TunnelIo {
            id,
            tun,
            icmp_source: spec.remote,
            stop: AtomicBool::new(false),
            udp_rx_held: AtomicBool::new(false),
        });
        let mut tunnels = self.tunnels.lock().unwrap_or_else(|e| e.into_inner());
        let (s, t) = (self.shared.clone(), io.clone());
        let thread = std::thread::Builder::new()
            .name(format!("esp-tx-{}", spec.ifname))
            .spawn(move || worker::tx_thread(s, t))?;
        tunnels.push(TunnelEntry {
            io,
            spec,
            thread: Some(thread),
        });
        self.publish_tunnels(&tunnels);
        // The tunnel works either way; a failure (no thread to spawn) leaves
        // UDP 4500 unserved until the next change, as in `remove_tunnel`.
        let _ = self.place_udp_rx(&tunnels);
        Ok(id)
    }

    /// Gives the UDP socket's receive side to the one tunnel's thread
    /// (option `rx_in_tunnel_thread`, exactly one tunnel) or else to the
    /// UDP receive thread, first making sure the previous holder stopped
    /// receiving, so that never two threads do.
    fn place_udp_rx(&self, tunnels: &[TunnelEntry]) -> io::Result<()> {
        if self.shared.udp.is_none() || self.shared.stop.load(Relaxed) {
            return Ok(());
        }
        let want = match tunnels {
            [only] if self.opts.rx_in_tunnel_thread => only.io.id.0,
            _ => 0,
        };
        let mut rx = self.udp_rx.lock().unwrap_or_else(|e| e.into_inner());
        let owner = self.shared.udp_rx_owner.load(SeqCst);
        if owner == want && (want != 0 || rx.is_some()) {
            return Ok(());
        }
        // Take it back from the current holder.
        self.shared.udp_rx_owner.store(0, SeqCst);
        if let Some(t) = rx.take() {
            t.stop.store(true, Relaxed);
            let _ = t.thread.join();
        }
        if let Some(t) = tunnels.iter().find(|t| t.io.id.0 == owner) {
            // Its thread lets go within one loop (at most its 100 ms poll).
            // A thread that died still holding the flag receives nothing any
            // more, so past a generous bound the handover goes ahead rather
            // than hang the control plane.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while t.io.udp_rx_held.load(SeqCst) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        if want == 0 {
            *rx = Some(spawn_udp_rx(&self.shared)?);
        } else {
            self.shared.udp_rx_owner.store(want, SeqCst);
        }
        Ok(())
    }

    fn worst_case_mtu(&self) -> u16 {
        let worst = xrsec_crypto::EspSuite::new(
            xrsec_crypto::Encr::AesCbc256,
            Some(xrsec_crypto::IntegId::HmacSha2_512_256),
        )
        .expect("a valid suite");
        sa::max_inner_len(
            &worst,
            Encap::Udp {
                peer_port: NAT_T_PORT,
            },
            usize::from(self.opts.path_mtu),
        ) as u16
    }

    fn publish_tunnels(&self, tunnels: &[TunnelEntry]) {
        self.shared
            .tunnels
            .store(Arc::new(tunnels.iter().map(|t| t.io.clone()).collect()));
    }

    /// Stops the tunnel's thread, removes its SAs and its TUN.
    pub fn remove_tunnel(&self, id: TunnelId) {
        let entry = {
            let mut tunnels = self.tunnels.lock().unwrap_or_else(|e| e.into_inner());
            let Some(i) = tunnels.iter().position(|t| t.io.id == id) else {
                return;
            };
            let e = tunnels.remove(i);
            self.publish_tunnels(&tunnels);
            e
        };
        self.shared.sadb.remove_tunnel(id);
        entry.io.stop.store(true, Relaxed);
        if let Some(t) = entry.thread {
            let _ = t.join();
        }
        let tunnels = self.tunnels.lock().unwrap_or_else(|e| e.into_inner());
        // A failure leaves UDP 4500 unserved until the next change; there
        // is no one to report it to here.
        let _ = self.place_udp_rx(&tunnels);
    }

    /// The peer address, whether the MTU is automatic, and the TUN name of
    /// a tunnel an SA goes on; refused when the tunnel or the SA's socket
    /// is missing.
    fn install_target(
        &self,
        tunnel: TunnelId,
        spec: &SaSpec,
    ) -> Result<(Ipv4Addr, bool, String), InstallError> {
        let target = {
            let tunnels = self.tunnels.lock().unwrap_or_else(|e| e.into_inner());
            let t = tunnels
                .iter()
                .find(|t| t.io.id == tunnel)
                .ok_or(InstallError::UnknownTunnel(tunnel))?;
            (
                t.spec.remote,
                t.spec.mtu.is_none(),
                t.io.tun.name().to_owned(),
            )
        };
        if self.shared.socket_for(spec.encap).is_none() {
            return Err(InstallError::NoSocket(spec.encap));
        }
        Ok(target)
    }

    /// Installs a Child SA on a tunnel: inbound by `spi_in` (alongside any
    /// older inbound SA, which keeps working until deleted), outbound as the
    /// tunnel's (replacing the previous one). With an automatic MTU, the
    /// TUN's MTU is set for this SA's suite and encapsulation.
    pub fn install_sa(&self, tunnel: TunnelId, spec: SaSpec) -> Result<(), InstallError> {
        let (remote, auto_mtu, ifname) = self.install_target(tunnel, &spec)?;
        let events = Some(self.events_tx.clone());
        let inbound = InboundSa::new(&spec, tunnel, events.clone()).map_err(InstallError::Key)?;
        let outbound = OutboundSa::new(&spec, remote, usize::from(self.opts.path_mtu), events)
            .map_err(InstallError::Key)?;
        let mtu = outbound.max_inner();
        self.shared
            .sadb
            .install_pair(tunnel, Arc::new(inbound), Arc::new(outbound));
        if auto_mtu {
            let _ = sys::set_mtu(&ifname, mtu.min(65535) as u16);
        }
        Ok(())
    }

    /// Installs only an inbound SA (the first half of a make-before-break
    /// rekey when the control plane wants to switch outbound later).
    pub fn install_inbound_sa(&self, tunnel: TunnelId, spec: &SaSpec) -> Result<(), InstallError> {
        let events = Some(self.events_tx.clone());
        let inbound = InboundSa::new(spec, tunnel, events).map_err(InstallError::Key)?;
        self.shared.sadb.install_inbound(Arc::new(inbound));
        Ok(())
    }

    /// Switches a tunnel's outbound traffic to `spec`'s outbound half (the
    /// second half of a make-before-break rekey whose inbound half went in
    /// with [`Dataplane::install_inbound_sa`]). With an automatic MTU, the
    /// TUN's MTU follows the SA's suite and encapsulation.
    pub fn install_outbound_sa(&self, tunnel: TunnelId, spec: &SaSpec) -> Result<(), InstallError> {
        let (remote, auto_mtu, ifname) = self.install_target(tunnel, spec)?;
        let events = Some(self.events_tx.clone());
        let outbound = OutboundSa::new(spec, remote, usize::from(self.opts.path_mtu), events)
            .map_err(InstallError::Key)?;
        let mtu = outbound.max_inner();
        self.shared.sadb.set_outbound(tunnel, Arc::new(outbound));
        if auto_mtu {
            let _ = sys::set_mtu(&ifname, mtu.min(65535) as u16);
        }
        Ok(())
    }

    /// Sends a tunnel's ESP in UDP to the peer's new UDP `port` from the
    /// next batch on, with the same SA (keys, sequence numbers, counters):
    /// the peer's NAT gave it a new mapping (RFC 7296 2.23). `false` if the
    /// tunnel has no outbound SA or it is native ESP.
    pub fn move_peer_port(&self, tunnel: TunnelId, port: u16) -> bool {
        self.shared
            .sadb
            .snapshot()
            .outbound(tunnel)
            .is_some_and(|sa| sa.move_peer_port(port))
    }

    /// Deletes an inbound SA; `false` if there was none.
    pub fn delete_inbound_sa(&self, spi_in: u32) -> bool {
        self.shared.sadb.remove_inbound(spi_in)
    }

    /// Deletes a tunnel's outbound SA (its traffic is then dropped and
    /// counted as no-outbound-sa); `false` if there was none.
    pub fn delete_outbound_sa(&self, tunnel: TunnelId) -> bool {
        self.shared.sadb.remove_outbound(tunnel)
    }

    /// Packets inbound SA `spi_in` accepted so far; `None` if it is not
    /// installed.
    pub fn inbound_packets(&self, spi_in: u32) -> Option<u64> {
        self.shared
            .sadb
            .snapshot()
            .inbound(spi_in)
            .map(|sa| sa.counters().packets)
    }

    /// Packets a tunnel's outbound SA sent so far; `None` if it has none.
    pub fn outbound_packets(&self, tunnel: TunnelId) -> Option<u64> {
        self.shared
            .sadb
            .snapshot()
            .outbound(tunnel)
            .map(|sa| sa.counters().packets)
    }

    /// Counters of every installed SA half.
    pub fn counters(&self) -> Vec<SaCounters> {
        let table = self.shared.sadb.snapshot();
        let mut out = Vec::new();
        for (tunnel, sa) in table.outbound_sas() {
            out.push(SaCounters {
                tunnel,
                spi: sa.spi(),
                direction: Direction::Outbound,
                suite: sa.suite().to_string(),
                encap: sa.encap(),
                counts: sa.counters(),
            });
        }
        for sa in table.inbound_sas() {
            out.push(SaCounters {
                tunnel: sa.tunnel(),
                spi: sa.spi(),
                direction: Direction::Inbound,
                suite: sa.suite().to_string(),
                encap: sa.encap,
                counts: sa.counters(),
            });
        }
        out
    }

    /// Drops that belong to no SA: unknown SPIs, malformed outer packets,
    /// traffic of tunnels without an outbound SA.
    pub fn global_counters(&self) -> DirectionSnapshot {
        self.shared.global.snapshot()
    }

    /// Events for the control plane (lifetimes, sequence exhaustion).
    pub fn events(&self) -> &Receiver<DataplaneEvent> {
        &self.events_rx
    }

    /// IKE's side of UDP 4500, if that socket was opened.
    pub fn ike_udp4500(&self) -> Option<&IkeUdp4500> {
        self.ike.as_ref()
    }

    /// Stops every thread and removes every tunnel.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        self.shared.stop.store(true, Relaxed);
        let entries: Vec<TunnelEntry> = {
            let mut t = self.tunnels.lock().unwrap_or_else(|e| e.into_inner());
            t.drain(..).collect()
        };
        for mut e in entries {
            e.io.stop.store(true, Relaxed);
            if let Some(t) = e.thread.take() {
                let _ = t.join();
            }
        }
        self.shared.tunnels.store(Arc::new(Vec::new()));
        for t in self.rx_threads.drain(..) {
            let _ = t.join();
        }
        let udp_rx = self.udp_rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = udp_rx {
            let _ = t.thread.join();
        }
    }
}

fn spawn_udp_rx(shared: &Arc<Shared>) -> io::Result<UdpRxThread> {
    let (s, stop) = (shared.clone(), Arc::new(AtomicBool::new(false)));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("esp-rx-udp".into())
        .spawn(move || worker::rx_thread(s, worker::UDP_4500, flag))?;
    Ok(UdpRxThread { stop, thread })
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.stop_all();
    }
}
