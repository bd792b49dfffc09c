//! The daemon's one control-plane task: it owns the IKE endpoint, the
//! dataplanes and the tunnels' state, and serializes everything that touches
//! them (datagrams, timers, dataplane events, control requests, signals).
//! The packet path runs on the dataplane's own threads and never waits for
//! this task.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use xrsec_config::Config;
use xrsec_control::{Request, Response};
use xrsec_esp::{Dataplane, DataplaneEvent, DataplaneOptions, Encap, Lifetime, SaSpec, TunnelSpec};
use xrsec_ike::rand_core::OsRng;
use xrsec_ike::{
    ChildSa, DownReason, Endpoint, EndpointOptions, Event, FailureReason, IkeSaId, TunnelId,
};

use crate::savekeys::{IkeKeyLine, KeyFiles};
use crate::tunnels::{self, Installed, Tunnel};
use crate::Args;

/// IKE's well-known port.
const IKE_PORT: u16 = 500;
/// How long a shutdown waits for the peers to answer our DELETEs.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long a proposal mismatch seen as responder explains the refusals we
/// get as initiator.
const PROPOSAL_MEMORY: Duration = Duration::from_secs(300);
/// Timer resolution for lifetimes and retries when nothing else is due.
const TICK: Duration = Duration::from_secs(1);
/// RFC 3948 4: behind a NAT, a keepalive after this long without sending.
const NAT_KEEPALIVE: Duration = Duration::from_secs(20);

/// Something for the control task.
pub(crate) enum Input {
    /// A datagram for IKE (from UDP 500, or from UDP 4500 with the non-ESP
    /// marker removed).
    Ike {
        local: SocketAddr,
        remote: SocketAddr,
        bytes: Vec<u8>,
    },
    /// Lifetime and sequence events of a dataplane.
    Dataplane(DataplaneEvent),
    /// A request on the control socket.
    Control(Request, oneshot::Sender<Response>),
}

/// Everything the control task owns.
pub(crate) struct Daemon {
    pub(crate) args: Args,
    pub(crate) config: Config,
    pub(crate) started: Instant,
    pub(crate) endpoint: Endpoint<OsRng>,
    /// One dataplane per local underlay address.
    pub(crate) dataplanes: HashMap<Ipv4Addr, Dataplane>,
    /// UDP 500 per local address.
    ike_sockets: HashMap<Ipv4Addr, Arc<UdpSocket>>,
    pub(crate) tunnels: Vec<Tunnel>,
    next_sa_id: u32,
    keys: Option<KeyFiles>,
    /// IKE SAs we deleted on purpose (clear, shutdown): their going down is
    /// not a failure.
    deleting: Vec<IkeSaId>,
    /// IKE SAs that carried a Child SA at some point.
    carried_child: HashSet<IkeSaId>,
    /// For the readers of sockets opened after start (reload).
    tx: mpsc::UnboundedSender<Input>,
    /// IKE SAs whose keys `--save-keys` wrote.
    keys_saved: HashSet<IkeSaId>,
    /// IKE SAs that found us behind a NAT (NAT keepalives, RFC 3948).
    behind_nat: HashSet<IkeSaId>,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub(crate) async fn run(args: Args, config: Config) -> Result<(), String> {
    let tunnels = tunnels::from_config(&config).map_err(|e| e.to_string())?;
    let ike_configs: Vec<_> = tunnels.iter().filter_map(|t| t.ike.clone()).collect();
    if ike_configs.is_empty() {
        warn!("no tunnel interface is configured and up: nothing to negotiate");
    }
    let endpoint = Endpoint::new(
        ike_configs,
        OsRng,
        EndpointOptions {
            force_udp_encap: args.force_udp_encap,
            fragmentation: config.ikev2_fragmentation.enabled(),
            fragment_size: config.ikev2_fragmentation.mtu(),
            ..EndpointOptions::default()
        },
    );
    info!(
        "{}",
        tunnels::fragmentation_text(&config.ikev2_fragmentation)
    );

    let keys = match &args.save_keys {
        Some(dir) => {
            let k =
                KeyFiles::open(dir).map_err(|e| format!("--save-keys {}: {e}", dir.display()))?;
            warn!(
                "--save-keys: writing every IKE and ESP key to {} (ikev2_decryption_table, esp_sa): anyone who can read them can decrypt this host's tunnels; for debugging only",
                k.dir().display()
            );
            Some(k)
        }
        None => None,
    };

    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();

    let control = crate::control::listen(&args.control, tx.clone())
        .map_err(|e| format!("control socket {}: {e}", args.control.display()))?;
    let mut d = Daemon {
        args,
        config,
        started: Instant::now(),
        endpoint,
        dataplanes: HashMap::new(),
        ike_sockets: HashMap::new(),
        tunnels,
        next_sa_id: 1,
        keys,
        deleting: Vec::new(),
        carried_child: HashSet::new(),
        tx: tx.clone(),
        keys_saved: HashSet::new(),
        behind_nat: HashSet::new(),
    };
    // Sockets first: a daemon that cannot listen should say so before it
    // creates any interface.
    let mut locals: Vec<Ipv4Addr> = d
        .tunnels
        .iter()
        .filter_map(|t| t.ike.as_ref().map(|c| c.local))
        .collect();
    locals.sort();
    locals.dedup();
    for local in locals {
        d.open_local(local)?;
    }
    for i in 0..d.tunnels.len() {
        d.create_interface(i)?;
    }
    for (local, dp) in &d.dataplanes {
        info!("dataplane on {local}: kernel offloads {}", dp.features());
    }

    info!(
        "xrsecd {} started with {} ({} tunnel{}); control socket {}",
        env!("CARGO_PKG_VERSION"),
        d.args.config.display(),
        d.tunnels.len(),
        if d.tunnels.len() == 1 { "" } else { "s" },
        d.args.control.display()
    );

    let now = Instant::now();
    d.endpoint.set_system_time(std::time::SystemTime::now());
    for i in 0..d.tunnels.len() {
        d.initiate(now, i);
    }
    d.flush().await;

    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sighup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;

    loop {
        let deadline = d.next_deadline(Instant::now());
        tokio::select! {
            Some(input) = rx.recv() => {
                d.handle_input(input);
                // Take whatever else is already queued before flushing.
                while let Ok(input) = rx.try_recv() {
                    d.handle_input(input);
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                d.handle_timers(Instant::now());
            }
            _ = sighup.recv() => {
                d.reload(Instant::now());
            }
            _ = sigterm.recv() => { info!("SIGTERM: deleting every SA and exiting"); break; }
            _ = sigint.recv() => { info!("SIGINT: deleting every SA and exiting"); break; }
        }
        d.flush().await;
    }

    d.shutdown(&mut rx).await;
    drop(control);
    let _ = std::fs::remove_file(&d.args.control);
    info!("stopped");
    Ok(())
}

fn bind_error(local: Ipv4Addr, port: u16, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {local}:{port}: address in use (is another IKE daemon, such as strongSwan's charon, running?)"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "cannot listen on {local}:{port}: {local} is not an address of this host (check `tunnel source`)"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot listen on {local}:{port}: permission denied (xrsecd needs root or CAP_NET_BIND_SERVICE)"
        ),
        _ => format!("cannot listen on {local}:{port}: {e}"),
    }
}

fn spawn_udp500_reader(sock: Arc<UdpSocket>, local: Ipv4Addr, tx: mpsc::UnboundedSender<Input>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            match sock.recv_from(&mut buf).await {
                Ok((n, remote)) => {
                    let input = Input::Ike {
                        local: SocketAddr::from((local, IKE_PORT)),
                        remote,
                        bytes: buf[..n].to_vec(),
                    };
                    if tx.send(input).is_err() {
                        return;
                    }
                }
                // ICMP errors from earlier sends surface here; keep going.
                Err(e) => debug!("UDP {local}:500 receive: {e}"),
            }
        }
    });
}

/// The dataplane hands IKE datagrams from UDP 4500 and its events over on
/// blocking channels: one thread each forwards them to the control task
/// (they end when the dataplane shuts down and drops its senders).
fn spawn_dataplane_readers(dp: &Dataplane, local: Ipv4Addr, tx: mpsc::UnboundedSender<Input>) {
    if let Some(ike) = dp.ike_udp4500() {
        let rx = ike.incoming().clone();
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("xrsecd-ike4500".into())
            .spawn(move || {
                for d in rx.iter() {
                    let input = Input::Ike {
                        local: SocketAddr::from((local, xrsec_esp::NAT_T_PORT)),
                        remote: SocketAddr::V4(d.from),
                        bytes: d.bytes,
                    };
                    if tx.send(input).is_err() {
                        return;
                    }
                }
            })
            .map(drop)
            .unwrap_or_else(|e| error!("cannot start a thread: {e}"));
    }
    let rx = dp.events().clone();
    std::thread::Builder::new()
        .name("xrsecd-dpevents".into())
        .spawn(move || {
            for ev in rx.iter() {
                if tx.send(Input::Dataplane(ev)).is_err() {
                    return;
                }
            }
        })
        .map(drop)
        .unwrap_or_else(|e| error!("cannot start a thread: {e}"));
}

impl Daemon {
    /// Opens UDP 500 and the dataplane (raw ESP, UDP 4500) on `local`.
    fn open_local(&mut self, local: Ipv4Addr) -> Result<(), String> {
        if self.dataplanes.contains_key(&local) {
            return Ok(());
        }
        let std_sock = std::net::UdpSocket::bind(SocketAddr::from((local, IKE_PORT)))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| bind_error(local, IKE_PORT, &e))?;
        let sock = UdpSocket::from_std(std_sock).map_err(|e| bind_error(local, IKE_PORT, &e))?;
        let sock = Arc::new(sock);
        let dp = Dataplane::start(DataplaneOptions {
            local,
            ..DataplaneOptions::default()
        })
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                bind_error(local, xrsec_esp::NAT_T_PORT, &e)
            } else {
                format!("cannot start the ESP dataplane on {local}: {e} (xrsecd needs root, or CAP_NET_ADMIN and CAP_NET_RAW)")
            }
        })?;
        spawn_udp500_reader(sock.clone(), local, self.tx.clone());
        spawn_dataplane_readers(&dp, local, self.tx.clone());
        info!("listening for IKE on {local}:500 and {local}:4500, for ESP on {local}");
        self.ike_sockets.insert(local, sock);
        self.dataplanes.insert(local, dp);
        Ok(())
    }

    /// Creates tunnel `i`'s TUN (address, MTU, up) and its routes.
    fn create_interface(&mut self, i: usize) -> Result<(), String> {
        let t = &mut self.tunnels[i];
        let (Some(ike), Some((address, prefix_len))) = (&t.ike, t.address) else {
            return Ok(());
        };
        let Some(dp) = self.dataplanes.get(&ike.local) else {
            return Ok(());
        };
        let id = dp
            .add_tunnel(TunnelSpec {
                ifname: t.name.clone(),
                address,
                prefix_len,
                mtu: t.mtu,
                local: ike.local,
                remote: ike.remote,
            })
            .map_err(|e| format!("{}: cannot create the interface: {e}", t.name))?;
        t.esp = Some(id);
        t.ifindex = xrsec_esp::sys::ifindex(&t.name).unwrap_or(0);
        for (dst, len) in &t.routes {
            match xrsec_esp::sys::add_route(*dst, *len, &t.name) {
                Ok(()) => info!("{}: route {dst}/{len} via {}", t.name, t.name),
                Err(e) => warn!("{}: cannot add route {dst}/{len}: {e}", t.name),
            }
        }
        info!(
            "{}: created ({address}/{prefix_len}, {} -> {})",
            t.name, ike.local, ike.remote
        );
        Ok(())
    }

    /// Deletes a tunnel's SAs (DELETE to the peer), its routes and its TUN.
    fn remove_interface(&mut self, now: Instant, t: &Tunnel) {
        if let Some(ike) = &t.ike {
            self.endpoint.remove_tunnel(now, ike.id);
        }
        for (dst, len) in &t.routes {
            let _ = xrsec_esp::sys::delete_route(*dst, *len, &t.name);
        }
        if let (Some(esp), Some(local)) = (t.esp, t.local) {
            if let Some(dp) = self.dataplanes.get(&local) {
                dp.remove_tunnel(esp);
            }
        }
    }

    fn tunnel_index(&self, id: TunnelId) -> Option<usize> {
        self.tunnels
            .iter()
            .position(|t| t.ike.as_ref().is_some_and(|c| c.id == id))
    }

    fn initiate(&mut self, now: Instant, index: usize) {
        let t = &mut self.tunnels[index];
        let Some(ike) = &t.ike else { return };
        t.retry_at = None;
        self.endpoint.initiate(now, ike.id);
    }

    /// The earliest instant something is due.
    fn next_deadline(&self, now: Instant) -> Instant {
        let mut at = now + TICK;
        if let Some(t) = self.endpoint.poll_timeout() {
            at = at.min(t);
        }
        for t in &self.tunnels {
            if let Some(r) = t.retry_at {
                at = at.min(r);
            }
        }
        at.max(now)
    }

    fn handle_input(&mut self, input: Input) {
        let now = Instant::now();
        // Certificates are checked against the wall clock; the endpoint
        // reads no clock of its own.
        self.endpoint.set_system_time(std::time::SystemTime::now());
        match input {
            Input::Ike {
                local,
                remote,
                bytes,
            } => self.endpoint.handle_datagram(now, local, remote, &bytes),
            Input::Dataplane(ev) => self.handle_dataplane_event(now, ev),
            Input::Control(req, reply) => {
                let answer = self.handle_request(now, req);
                let _ = reply.send(answer);
            }
        }
    }

    fn handle_timers(&mut self, now: Instant) {
        self.endpoint.set_system_time(std::time::SystemTime::now());
        // ESP from the peer counts as a sign of life before the endpoint
        // decides on a liveness check (dead peer detection); lifetimes and
        // rekeys run in the endpoint.
        self.note_inbound_traffic(now);
        self.endpoint.handle_timeout(now);
        self.send_nat_keepalives(now);
        for i in 0..self.tunnels.len() {
            if self.tunnels[i].retry_at.is_some_and(|r| r <= now) {
                info!(
                    "{}: initiating (attempt {})",
                    self.tunnels[i].name,
                    self.tunnels[i].failures + 1
                );
                self.initiate(now, i);
            }
        }
    }

    /// RFC 3948 2.3 and 4: behind a NAT, a tunnel that sent no ESP for
    /// [`NAT_KEEPALIVE`] sends the peer a one-byte keepalive from its UDP
    /// 4500 socket, so that the NAT keeps the mapping the peer reaches us by
    /// (the peer cannot open it again). Looks once per tick: one counter
    /// read per tunnel.
    fn send_nat_keepalives(&mut self, now: Instant) {
        let (tunnels, dataplanes, behind) = (&mut self.tunnels, &self.dataplanes, &self.behind_nat);
        for t in tunnels.iter_mut() {
            let target = t
                .current()
                .filter(|c| c.udp_encap && behind.contains(&c.ike_sa))
                .map(|c| c.remote);
            let (Some(SocketAddr::V4(to)), Some(esp), Some(dp)) =
                (target, t.esp, t.local.and_then(|l| dataplanes.get(&l)))
            else {
                t.last_sent = None;
                continue;
            };
            let sent = dp.outbound_packets(esp).unwrap_or(0);
            match t.last_sent {
                // Quiet since `at`: a keepalive once that is long enough.
                Some(at) if sent == t.outbound_packets_seen => {
                    if now.duration_since(at) < NAT_KEEPALIVE {
                        continue;
                    }
                }
                // ESP went out (or the first look): the quiet starts now.
                _ => {
                    t.outbound_packets_seen = sent;
                    t.last_sent = Some(now);
                    continue;
                }
            }
            t.last_sent = Some(now);
            match dp.ike_udp4500().map(|u| u.send_keepalive(to)) {
                Some(Ok(())) => debug!("{}: NAT keepalive to {to}", t.name),
                Some(Err(e)) => debug!("{}: NAT keepalive to {to} not sent: {e}", t.name),
                None => {}
            }
        }
    }

    /// Tells the endpoint which tunnels received ESP since the last look.
    /// Only growth counts: a Child SA removed (rekeyed, expired) lowers the
    /// sum, and that is no sign of life.
    fn note_inbound_traffic(&mut self, now: Instant) {
        for t in &mut self.tunnels {
            let (Some(ike), Some(dp)) = (
                t.ike.as_ref().map(|c| c.id),
                t.local.and_then(|l| self.dataplanes.get(&l)),
            ) else {
                continue;
            };
            let received: u64 = t
                .children
                .iter()
                .filter_map(|c| dp.inbound_packets(c.spi_in))
                .sum();
            let grew = received > t.inbound_packets_seen;
            t.inbound_packets_seen = received;
            if grew {
                self.endpoint.traffic_received(now, ike);
            }
        }
    }

    fn handle_dataplane_event(&mut self, now: Instant, ev: DataplaneEvent) {
        let (spi, hard) = match ev {
            DataplaneEvent::SoftLifetime { spi, .. }
            | DataplaneEvent::SequenceNearlyExhausted { spi } => (spi, false),
            DataplaneEvent::HardLifetime { spi, .. }
            | DataplaneEvent::SequenceExhausted { spi } => (spi, true),
            #[allow(unreachable_patterns)]
            _ => return,
        };
        // The dataplane names either half; the endpoint knows Child SAs by
        // their inbound SPI.
        let owner = self.tunnels.iter().find_map(|t| {
            t.children
                .iter()
                .find(|c| c.spi_in == spi || c.spi_out == spi)
                .map(|c| (t.name.clone(), c.spi_in))
        });
        let Some((name, spi_in)) = owner else {
            return;
        };
        if hard {
            info!("{name}: SA 0x{spi:08x} reached its hard volume lifetime (or sequence number limit): ending it");
            self.endpoint.expire_child_sa(now, spi_in);
        } else {
            info!("{name}: SA 0x{spi:08x} reached its soft volume lifetime (or sequence number limit): rekeying");
            self.endpoint.rekey_child_sa(now, spi_in);
        }
    }

    /// Sends what the endpoint queued and acts on its events, until both
    /// queues are empty (acting on an event may queue more).
    pub(crate) async fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(line) = self.endpoint.poll_log() {
                debug!("IKE SA {}: {}", line.ike_sa.map_or(0, |i| i.0), line.text);
            }
            // Events first: a Child SA the endpoint reports up is installed
            // in the dataplane before the message that lets the peer use it
            // leaves (the CREATE_CHILD_SA response of a rekey we answer, the
            // DELETE of the SA our rekey replaced), or the peer's first
            // packets on it arrive to an unknown SPI (make-before-break).
            while let Some(ev) = self.endpoint.poll_event() {
                progressed = true;
                self.handle_event(Instant::now(), ev);
            }
            while let Some(t) = self.endpoint.poll_transmit() {
                progressed = true;
                self.send(t).await;
            }
            self.save_new_ike_keys();
            if !progressed {
                break;
            }
        }
    }

    async fn send(&self, t: xrsec_ike::Transmit) {
        let (IpAddr::V4(local), SocketAddr::V4(remote)) = (t.local.ip(), t.remote) else {
            warn!(
                "IKE: cannot send to {} (IPv6 peers are not supported)",
                t.remote
            );
            return;
        };
        let result = if t.local.port() == xrsec_esp::NAT_T_PORT {
            match self.dataplanes.get(&local).and_then(|d| d.ike_udp4500()) {
                Some(s) => s.send_to(&t.payload, remote),
                None => {
                    warn!("IKE: no UDP 4500 socket on {local}");
                    return;
                }
            }
        } else {
            match self.ike_sockets.get(&local) {
                Some(s) => s.send_to(&t.payload, remote).await.map(drop),
                None => {
                    warn!("IKE: no UDP 500 socket on {local}");
                    return;
                }
            }
        };
        if let Err(e) = result {
            // Retransmission covers a lost send; say why it failed.
            debug!(
                "IKE: sending {} bytes to {remote} from {}: {e}",
                t.payload.len(),
                t.local
            );
        }
    }

    fn handle_event(&mut self, now: Instant, ev: Event) {
        match ev {
            Event::IkeSaUp { id, tunnel, info } => {
                if info.nat.local_behind_nat {
                    self.behind_nat.insert(id);
                }
                let name = self.tunnel_name(tunnel);
                info!(
                    "{name}: IKE SA {} up as {:?} with {} ({}{})",
                    id.0,
                    info.role,
                    info.remote,
                    info.algorithms,
                    if info.nat.local_behind_nat || info.nat.remote_behind_nat {
                        ", UDP-encapsulated (NAT-T)"
                    } else {
                        ""
                    }
                );
            }
            Event::ChildSaUp(child) => self.child_up(now, child),
            Event::IkeSaRekeyed {
                old,
                new,
                tunnel,
                info,
            } => {
                let name = self.tunnel_name(tunnel);
                if let Some(i) = self.tunnel_index(tunnel) {
                    for c in &mut self.tunnels[i].children {
                        if c.ike_sa == old {
                            c.ike_sa = new;
                        }
                    }
                }
                if self.carried_child.remove(&old) {
                    self.carried_child.insert(new);
                }
                if info.nat.local_behind_nat {
                    self.behind_nat.insert(new);
                }
                info!(
                    "{name}: IKE SA {} rekeyed: now IKE SA {} ({}, SPIs {:016x}/{:016x})",
                    old.0, new.0, info.algorithms, info.spi_i, info.spi_r
                );
            }
            Event::ChildSaOutbound { tunnel, spi_in, .. } => {
                self.child_outbound(now, tunnel, spi_in)
            }
            Event::ChildSaDown {
                id,
                tunnel,
                spi_in,
                spi_out,
                reason,
            } => self.child_down(now, id, tunnel, spi_in, spi_out, &reason),
            Event::IkeSaDown { id, tunnel, reason } => {
                let name = self.tunnel_name(tunnel);
                let deliberate = self.deleting.contains(&id);
                self.deleting.retain(|d| *d != id);
                let carried_child = self.carried_child.remove(&id);
                self.behind_nat.remove(&id);
                info!("{name}: IKE SA {} down: {reason}", id.0);
                if let Some(i) = self.tunnel_index(tunnel) {
                    let has_sa = self
                        .endpoint
                        .sessions()
                        .iter()
                        .any(|s| s.tunnel == tunnel && s.id != id);
                    if !has_sa && self.tunnels[i].children.is_empty() {
                        let t = &mut self.tunnels[i];
                        // An IKE SA whose Child SA was refused, deleted by
                        // the peer for that: the refusal stays the reason.
                        let childless_after_failure = !carried_child && t.last_error.is_some();
                        if deliberate
                            || childless_after_failure
                            || matches!(
                                reason,
                                DownReason::LocalDelete | DownReason::Duplicate { .. }
                            )
                        {
                            // A back-off already running (an IKE SA deleted
                            // because its Child SA was refused) stays.
                            t.retry_at.get_or_insert(now);
                        } else {
                            t.failed(now, format!("IKE SA went down: {reason}"));
                        }
                    }
                }
            }
            Event::NegotiationFailed { tunnel, reason } => {
                let name = self.tunnel_name(tunnel);
                if let Some(i) = self.tunnel_index(tunnel) {
                    let t = &mut self.tunnels[i];
                    if t.children.is_empty() {
                        let mut text = reason.to_string();
                        if let FailureReason::NoProposalChosen { theirs, .. } = &reason {
                            if theirs.is_some() {
                                t.proposal_mismatch = Some((text.clone(), now));
                            } else if let Some((seen, at)) = &t.proposal_mismatch {
                                // RFC 7296 3.10.1: the refusal names no
                                // proposal; what we saw as responder does.
                                let ago = now.saturating_duration_since(*at).as_secs();
                                if ago <= PROPOSAL_MEMORY.as_secs() {
                                    text = format!("{text}; as responder {ago} s ago: {seen}");
                                }
                            }
                        }
                        t.failed(now, text);
                        let wait = t
                            .retry_at
                            .map_or(0, |r| r.saturating_duration_since(now).as_secs());
                        warn!("{name}: negotiation failed: {reason}; retrying in {wait} s");
                        // An IKE SA whose Child SA was refused (IKE_AUTH
                        // without one) carries nothing, and while it exists
                        // the endpoint does not initiate again: delete it,
                        // so that the retry renegotiates everything.
                        let idle: Vec<IkeSaId> = self
                            .endpoint
                            .sessions()
                            .iter()
                            .filter(|s| {
                                s.tunnel == tunnel && s.state == "READY" && s.children.is_empty()
                            })
                            .map(|s| s.id)
                            .collect();
                        for id in idle {
                            info!("{name}: deleting IKE SA {} (no Child SA); renegotiating after the back-off", id.0);
                            self.deleting.push(id);
                            self.endpoint.delete_ike_sa(now, id);
                        }
                    } else {
                        warn!(
                            "{name}: negotiation failed: {reason} (the tunnel's current SA stays)"
                        );
                    }
                } else {
                    warn!("negotiation failed: {reason}");
                }
            }
            Event::PeerAlive { id, tunnel } => {
                debug!("{}: IKE SA {}: peer alive", self.tunnel_name(tunnel), id.0);
            }
            Event::PeerAddressChanged {
                id,
                tunnel,
                local: _,
                remote,
            } => self.peer_moved(id, tunnel, remote),
            other => debug!("IKE event {other:?}"),
        }
    }

    /// The peer's NAT gave it a new mapping and the IKE SA followed it (RFC
    /// 7296 2.23: on an authenticated message, NAT detected): ESP in UDP
    /// follows too, with the same Child SAs, and so do Child SAs still
    /// waiting for their outbound half. The destination address stays the
    /// tunnel's: a peer whose address changes is reached again by a new
    /// negotiation.
    fn peer_moved(&mut self, id: IkeSaId, tunnel: TunnelId, remote: SocketAddr) {
        let name = self.tunnel_name(tunnel);
        let Some(i) = self.tunnel_index(tunnel) else {
            return;
        };
        let SocketAddr::V4(to) = remote else {
            return;
        };
        let t = &mut self.tunnels[i];
        if t.remote != Some(*to.ip()) {
            warn!(
                "{name}: IKE SA {}: the peer now answers from {remote}, not from the tunnel destination; ESP stays addressed to {} until the SA is renegotiated",
                id.0,
                t.remote.map_or_else(|| "-".to_owned(), |r| r.to_string())
            );
            return;
        }
        let mut moved = false;
        for c in t.children.iter_mut().filter(|c| c.udp_encap) {
            c.remote = remote;
            if let Some(Encap::Udp { peer_port }) = c.pending.as_mut().map(|s| &mut s.encap) {
                *peer_port = to.port();
            }
            moved = true;
        }
        let esp_moved = moved
            && match (t.esp, t.local.and_then(|l| self.dataplanes.get(&l))) {
                (Some(esp), Some(dp)) => dp.move_peer_port(esp, to.port()),
                _ => false,
            };
        if esp_moved {
            info!(
                "{name}: IKE SA {}: the peer moved to {remote} (its NAT rebound); ESP in UDP follows with the same SAs",
                id.0
            );
        } else {
            info!("{name}: IKE SA {}: the peer moved to {remote}", id.0);
        }
    }

    fn tunnel_name(&self, id: TunnelId) -> String {
        self.tunnel_index(id).map_or_else(
            || format!("tunnel {}", id.0),
            |i| self.tunnels[i].name.clone(),
        )
    }

    fn child_up(&mut self, now: Instant, child: ChildSa) {
        let Some(i) = self.tunnel_index(child.tunnel) else {
            warn!("Child SA for an unknown tunnel {}", child.tunnel.0);
            return;
        };
        let name = self.tunnels[i].name.clone();
        let (Some(esp), Some(local)) = (self.tunnels[i].esp, self.tunnels[i].local) else {
            warn!("{name}: Child SA up but the interface does not exist; deleting it");
            self.endpoint.delete_ike_sa(now, child.ike_sa);
            return;
        };
        let Some(dp) = self.dataplanes.get(&local) else {
            return;
        };
        let encap = if child.udp_encap {
            Encap::Udp {
                peer_port: child.remote.port(),
            }
        } else {
            Encap::Native
        };
        if let Some(keys) = self.keys.as_mut() {
            if let (IpAddr::V4(l), IpAddr::V4(r)) = (child.local.ip(), child.remote.ip()) {
                let res = keys
                    .write_esp(
                        r,
                        l,
                        child.spi_in,
                        &child.suite,
                        child.keys_in.encr.as_bytes(),
                        child.keys_in.integ.as_bytes(),
                    )
                    .and_then(|()| {
                        keys.write_esp(
                            l,
                            r,
                            child.spi_out,
                            &child.suite,
                            child.keys_out.encr.as_bytes(),
                            child.keys_out.integ.as_bytes(),
                        )
                    });
                if let Err(e) = res {
                    warn!("--save-keys: cannot write esp_sa: {e}");
                }
            }
        }
        let spec = SaSpec {
            spi_in: child.spi_in,
            spi_out: child.spi_out,
            suite: child.suite,
            keys_in: child.keys_in,
            keys_out: child.keys_out,
            esn: child.esn,
            replay_window: child.replay_window,
            lifetime: volume_lifetime(child.lifetime_kilobytes, child.spi_in),
            encap,
        };
        // A rekey the peer started: only the inbound half now, the
        // outbound one when the peer deletes the SA it replaces.
        let (installed, pending) = if child.outbound {
            (dp.install_sa(esp, spec), None)
        } else {
            (dp.install_inbound_sa(esp, &spec), Some(spec))
        };
        if let Err(e) = installed {
            error!("{name}: cannot install the Child SA: {e}");
            self.endpoint.delete_ike_sa(now, child.ike_sa);
            return;
        }
        self.carried_child.insert(child.ike_sa);
        let sa_id = self.next_sa_id;
        self.next_sa_id = self.next_sa_id.wrapping_add(1).max(1);
        let t = &mut self.tunnels[i];
        let replaced = if child.outbound {
            let before = t.current().map(|c| (c.spi_in, c.spi_out));
            for c in &mut t.children {
                c.outbound = false;
            }
            before
        } else {
            None
        };
        t.children.push(Installed {
            sa_id,
            ike_sa: child.ike_sa,
            spi_in: child.spi_in,
            spi_out: child.spi_out,
            suite: child.suite,
            installed_at: now,
            lifetime: child.lifetime,
            udp_encap: child.udp_encap,
            local: child.local,
            remote: child.remote,
            outbound: child.outbound,
            pending,
        });
        t.failures = 0;
        t.last_error = None;
        t.retry_at = None;
        info!(
            "{name}: Child SA up: SPI in 0x{:08x} out 0x{:08x}, {}, {}",
            child.spi_in,
            child.spi_out,
            child.suite,
            if child.udp_encap {
                format!("ESP in UDP to {}", child.remote)
            } else {
                "native ESP".to_string()
            }
        );
        if let (Some(old_in), Some((_, old_out))) = (child.rekey_of, replaced) {
            info!(
                "{name}: Child SA rekeyed: SPI in 0x{old_in:08x} -> 0x{:08x}, out 0x{old_out:08x} -> 0x{:08x}",
                child.spi_in, child.spi_out
            );
        }
    }

    /// The peer's rekey is complete (it deleted the SA it replaced): the
    /// tunnel sends with the new SA from now on.
    fn child_outbound(&mut self, now: Instant, tunnel: TunnelId, spi_in: u32) {
        let Some(i) = self.tunnel_index(tunnel) else {
            return;
        };
        let (Some(esp), Some(local)) = (self.tunnels[i].esp, self.tunnels[i].local) else {
            return;
        };
        let Some(dp) = self.dataplanes.get(&local) else {
            return;
        };
        let t = &mut self.tunnels[i];
        let name = t.name.clone();
        let before = t.current().map(|c| (c.spi_in, c.spi_out));
        let Some(pos) = t.children.iter().position(|c| c.spi_in == spi_in) else {
            return;
        };
        let Some(spec) = t.children[pos].pending.take() else {
            return;
        };
        if let Err(e) = dp.install_outbound_sa(esp, &spec) {
            error!("{name}: cannot switch to the rekeyed Child SA: {e}");
            let ike_sa = t.children[pos].ike_sa;
            self.endpoint.delete_ike_sa(now, ike_sa);
            return;
        }
        for c in &mut t.children {
            c.outbound = c.spi_in == spi_in;
        }
        let spi_out = t.children[pos].spi_out;
        match before {
            Some((old_in, old_out)) if old_in != spi_in => info!(
                "{name}: Child SA rekeyed: SPI in 0x{old_in:08x} -> 0x{spi_in:08x}, out 0x{old_out:08x} -> 0x{spi_out:08x}"
            ),
            _ => info!("{name}: Child SA 0x{spi_in:08x} now sends (out 0x{spi_out:08x})"),
        }
    }

    fn child_down(
        &mut self,
        now: Instant,
        id: IkeSaId,
        tunnel: TunnelId,
        spi_in: u32,
        spi_out: u32,
        reason: &DownReason,
    ) {
        let Some(i) = self.tunnel_index(tunnel) else {
            return;
        };
        let name = self.tunnels[i].name.clone();
        let (esp, local) = (self.tunnels[i].esp, self.tunnels[i].local);
        let Some(pos) = self.tunnels[i]
            .children
            .iter()
            .position(|c| c.spi_in == spi_in)
        else {
            return;
        };
        let was_current = self.tunnels[i].children[pos].outbound;
        self.tunnels[i].children.remove(pos);
        if let Some(dp) = local.and_then(|l| self.dataplanes.get(&l)) {
            dp.delete_inbound_sa(spi_in);
            if was_current {
                if let Some(esp) = esp {
                    dp.delete_outbound_sa(esp);
                }
            }
        }
        info!(
            "{name}: Child SA 0x{spi_in:08x}/0x{spi_out:08x} (IKE SA {}) down: {reason}",
            id.0
        );
        if was_current && !self.tunnels[i].children.is_empty() {
            // The older SAs have no outbound half any more: replace them all
            // with a fresh negotiation rather than send nothing.
            let stale: Vec<IkeSaId> = self.tunnels[i].children.iter().map(|c| c.ike_sa).collect();
            for s in stale {
                if !self.deleting.contains(&s) {
                    self.deleting.push(s);
                    self.endpoint.delete_ike_sa(now, s);
                }
            }
        }
    }

    /// `--save-keys`: the keys of every IKE SA as soon as IKE_SA_INIT gave
    /// it keys, reported up or not (a duplicate deleted before it was
    /// reported still has messages on the wire an engineer may want to read).
    fn save_new_ike_keys(&mut self) {
        let Some(keys) = self.keys.as_mut() else {
            return;
        };
        let live: HashSet<IkeSaId> = self.endpoint.sessions().iter().map(|s| s.id).collect();
        self.keys_saved.retain(|id| live.contains(id));
        for &id in &live {
            if self.keys_saved.contains(&id) {
                continue;
            }
            let Some(k) = self.endpoint.export_ike_keys(id) else {
                continue;
            };
            self.keys_saved.insert(id);
            let line = IkeKeyLine {
                spi_i: k.spi_i,
                spi_r: k.spi_r,
                encr: k.encr,
                integ: k.integ,
                sk_ei: k.sk_ei.as_bytes(),
                sk_er: k.sk_er.as_bytes(),
                sk_ai: k.sk_ai.as_bytes(),
                sk_ar: k.sk_ar.as_bytes(),
            };
            if let Err(e) = keys.write_ike(&line) {
                warn!("--save-keys: cannot write ikev2_decryption_table: {e}");
            }
        }
    }

    fn handle_request(&mut self, now: Instant, req: Request) -> Response {
        match req {
            Request::Status => Response::Status(crate::status::build(self, now)),
            Request::RunningConfig => Response::RunningConfig {
                text: self
                    .config
                    .to_running_config(xrsec_config::Secrets::Redacted),
            },
            Request::ClearIkeSa { id } => {
                let sessions = self.endpoint.sessions();
                let ids: Vec<IkeSaId> = match id {
                    Some(n) => {
                        if !sessions.iter().any(|s| s.id.0 == n) {
                            let known: Vec<String> =
                                sessions.iter().map(|s| s.id.0.to_string()).collect();
                            return Response::Error {
                                message: format!(
                                    "no IKE SA {n}; existing: {}",
                                    if known.is_empty() {
                                        "none".to_string()
                                    } else {
                                        known.join(", ")
                                    }
                                ),
                            };
                        }
                        vec![IkeSaId(n)]
                    }
                    None => sessions.iter().map(|s| s.id).collect(),
                };
                for &i in &ids {
                    self.deleting.push(i);
                    self.endpoint.delete_ike_sa(now, i);
                }
                let list: Vec<String> = ids.iter().map(|i| i.0.to_string()).collect();
                Response::Cleared {
                    count: ids.len(),
                    message: if ids.is_empty() {
                        "no IKE SA to clear".into()
                    } else {
                        format!("deleted IKE SA {}; renegotiating", list.join(", "))
                    },
                }
            }
            Request::ClearIpsecSa { interface } => {
                if let Some(name) = &interface {
                    if !self.tunnels.iter().any(|t| &t.name == name) {
                        let known: Vec<&str> =
                            self.tunnels.iter().map(|t| t.name.as_str()).collect();
                        return Response::Error {
                            message: format!(
                                "no interface {name}; configured: {}",
                                known.join(", ")
                            ),
                        };
                    }
                }
                // A Child SA cannot be re-created without CREATE_CHILD_SA
                // (rekeying); renegotiate the IKE SA that carries it.
                let mut ids = Vec::new();
                for t in &self.tunnels {
                    if interface.as_ref().is_some_and(|n| n != &t.name) {
                        continue;
                    }
                    for c in &t.children {
                        if !ids.contains(&c.ike_sa) {
                            ids.push(c.ike_sa);
                        }
                    }
                }
                for &i in &ids {
                    self.deleting.push(i);
                    self.endpoint.delete_ike_sa(now, i);
                }
                Response::Cleared {
                    count: ids.len(),
                    message: if ids.is_empty() {
                        "no IPsec SA to clear".into()
                    } else {
                        format!(
                            "deleted the IPsec SAs of {} with their IKE SA; renegotiating",
                            interface.unwrap_or_else(|| "every tunnel".into())
                        )
                    },
                }
            }
        }
    }

    /// SIGHUP: reads the configuration again. Tunnels whose settings did
    /// not change keep their SAs and their TUN (not a packet lost); changed
    /// ones are torn down (DELETE to the peer) and renegotiated; removed ones
    /// are deleted; new ones start. A configuration with errors changes
    /// nothing.
    fn reload(&mut self, now: Instant) {
        let path = self.args.config.clone();
        info!("SIGHUP: reloading {}", path.display());
        let parsed = match xrsec_config::load_file(&path) {
            Ok(p) => p,
            Err(e) => {
                error!(
                    "reload: cannot read {}: {e}; keeping the running configuration",
                    path.display()
                );
                return;
            }
        };
        let Some(config) = parsed.config.clone().filter(|_| !parsed.has_errors()) else {
            error!(
                "reload: {} has {} error(s); keeping the running configuration:\n{}",
                path.display(),
                parsed.error_count(),
                parsed.render_diagnostics().trim_end()
            );
            return;
        };
        let new = match tunnels::from_config(&config) {
            Ok(t) => t,
            Err(e) => {
                error!("reload: {e}; keeping the running configuration");
                return;
            }
        };
        for local in new.iter().filter_map(|t| t.ike.as_ref().map(|c| c.local)) {
            if let Err(e) = self.open_local(local) {
                error!("reload: {e}; keeping the running configuration");
                return;
            }
        }
        let frag = config.ikev2_fragmentation;
        let opts = self.endpoint.options();
        if (opts.fragmentation, opts.fragment_size) != (frag.enabled(), frag.mtu()) {
            info!(
                "{} from now on; IKE SAs up keep what they negotiated",
                tunnels::fragmentation_text(&frag)
            );
            self.endpoint.set_fragmentation(frag.enabled(), frag.mtu());
        }
        let mut old: Vec<Tunnel> = std::mem::take(&mut self.tunnels);
        let (mut kept, mut changed, mut added, mut removed) = (0, 0, 0, 0);
        for o in old.iter().filter(|o| !new.iter().any(|n| n.name == o.name)) {
            info!(
                "{}: removed from the configuration: deleting its SAs and interface",
                o.name
            );
            self.remove_interface(now, o);
            removed += 1;
        }
        let mut fresh = Vec::new();
        for n in new {
            match old.iter().position(|o| o.name == n.name) {
                Some(p)
                    if old[p].fingerprint == n.fingerprint && old[p].admin_down == n.admin_down =>
                {
                    self.tunnels.push(old.swap_remove(p));
                    kept += 1;
                }
                Some(p) => {
                    let o = old.swap_remove(p);
                    info!("{}: configuration changed: renegotiating", o.name);
                    self.remove_interface(now, &o);
                    fresh.push(self.tunnels.len());
                    self.tunnels.push(n);
                    changed += 1;
                }
                None => {
                    info!("{}: added to the configuration", n.name);
                    fresh.push(self.tunnels.len());
                    self.tunnels.push(n);
                    added += 1;
                }
            }
        }
        for i in fresh {
            if let Some(ike) = self.tunnels[i].ike.clone() {
                if let Err(e) = self.endpoint.add_tunnel(ike) {
                    error!("{}: {e}", self.tunnels[i].name);
                    continue;
                }
            }
            if let Err(e) = self.create_interface(i) {
                error!("{e}");
                let t = &mut self.tunnels[i];
                t.last_error = Some((e, now));
                continue;
            }
            self.initiate(now, i);
        }
        self.config = config;
        info!("reloaded: {kept} tunnel(s) unchanged, {changed} changed, {added} added, {removed} removed");
    }

    async fn shutdown(&mut self, rx: &mut mpsc::UnboundedReceiver<Input>) {
        let now = Instant::now();
        let ids: Vec<IkeSaId> = self.endpoint.sessions().iter().map(|s| s.id).collect();
        for &id in &ids {
            self.deleting.push(id);
            self.endpoint.delete_ike_sa(now, id);
        }
        self.flush().await;
        // Wait a little for the peers' answers so that they know we are
        // gone; do not hang on a peer that is gone too.
        let until = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while !self.endpoint.sessions().is_empty() {
            tokio::select! {
                Some(input) = rx.recv() => {
                    if let Input::Ike { .. } = input {
                        self.handle_input(input);
                    }
                }
                _ = tokio::time::sleep_until(until) => break,
            }
            self.flush().await;
        }
        for t in &self.tunnels {
            for (dst, len) in &t.routes {
                let _ = xrsec_esp::sys::delete_route(*dst, *len, &t.name);
            }
        }
        for (_, dp) in self.dataplanes.drain() {
            dp.shutdown();
        }
    }
}

/// The dataplane's volume limits from `lifetime kilobytes`: the hard limit
/// there, the soft one (where the rekey starts) at 80-89% of it. Both ends
/// count the same bytes, so one percentage would start both rekeys at once
/// every time (a collision, RFC 7296 2.8.1); each end takes its own from
/// its inbound SPI (random): the two differ nine times in ten, and a tie is
/// settled by the nonce rule. At least 11% is left for the rekey to finish.
fn volume_lifetime(kilobytes: Option<u64>, spi_in: u32) -> Lifetime {
    match kilobytes {
        Some(kb) => {
            let hard = kb.saturating_mul(1024);
            let percent = 80 + u64::from(spi_in % 10);
            Lifetime {
                soft_bytes: hard / 100 * percent,
                hard_bytes: hard,
                ..Lifetime::UNLIMITED
            }
        }
        None => Lifetime::UNLIMITED,
    }
}
