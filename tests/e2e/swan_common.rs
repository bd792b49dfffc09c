//! What the strongSwan interop tests (`strongswan_interop.rs`,
//! `strongswan_certificates.rs`) share: one xrsecd and one charon placed by
//! who is to initiate ([`Initiator`], [`Setup`]), started in the order that
//! makes it so ([`Setup::launch`]), the pair of them ([`SwanLab`]), and the
//! checks both files make of the SAs, `show` and the traffic.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use xrsec_control::{IkeSa, Status};
use xrsec_lab::{
    Charon, LabDir, Node, SwanConfig, SwanSa, Topology, TopologyConfig, Xrsecd, LAB_PSK,
};

/// xrsecd's tunnel-ip1 address; charon's remote traffic selector.
pub const XR_INNER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// charon's inner address (on its `lo`), inside tunnel-ip1's /30.
pub const SWAN_INNER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const PINGS: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    Xrsec,
    Charon,
}

impl Initiator {
    /// xrsecd's role in `show` and in its status.
    pub fn xr_role(self) -> &'static str {
        match self {
            Initiator::Xrsec => "Initiator",
            Initiator::Charon => "Responder",
        }
    }

    /// xrsecd's local and remote IKE SPIs, from charon's SA.
    pub fn xr_spis(self, swan: &SwanSa) -> (u64, u64) {
        match self {
            Initiator::Xrsec => (swan.spi_i, swan.spi_r),
            Initiator::Charon => (swan.spi_r, swan.spi_i),
        }
    }

    /// Both ends hold the roles arranged. A collision can leave the loser
    /// briefly on one side only.
    pub fn check_roles(self, xr: &IkeSa, swan: &SwanSa) -> Result<(), String> {
        if xr.role != self.xr_role() || swan.local_is_initiator != (self == Initiator::Charon) {
            return Err(format!(
                "roles: xrsecd {}, charon initiator {}",
                xr.role, swan.local_is_initiator
            ));
        }
        Ok(())
    }
}

/// The namespaces, with each peer placed by who is to initiate, before
/// either daemon runs.
pub struct Setup {
    pub topo: Topology,
    pub initiator: Initiator,
    pub xr_node: Node,
    pub swan_node: Node,
    settle: Duration,
}

impl Setup {
    /// `settle` bounds every wait of the case.
    pub fn new(config: TopologyConfig, initiator: Initiator, settle: Duration) -> Setup {
        let topo = Topology::new(config).expect("building the namespaces");
        // The initiator sits in A: either side's placement would do, since who
        // initiates is decided by the start order alone.
        let (swan_node, xr_node) = match initiator {
            Initiator::Xrsec => (Node::B, Node::A),
            Initiator::Charon => (Node::A, Node::B),
        };
        Setup {
            topo,
            initiator,
            xr_node,
            swan_node,
            settle,
        }
    }

    pub fn swan_addr(&self) -> Ipv4Addr {
        self.topo.address(self.swan_node)
    }

    pub fn xr_addr(&self) -> Ipv4Addr {
        self.topo.address(self.xr_node)
    }

    /// charon's connection to xrsecd with the lab's PSK and these proposals,
    /// its inner address and xrsecd's as the traffic selectors.
    pub fn swan_config(&self, ike: &str, esp: &str) -> SwanConfig {
        SwanConfig::psk(self.swan_addr(), Some(self.xr_addr()), LAB_PSK, ike, esp)
            .with_inner(SWAN_INNER, XR_INNER)
    }

    /// Starts charon, loading its connection first if xrsecd is to
    /// initiate, then xrsecd with `xr_config`. When charon is to initiate,
    /// the caller waits for xrsecd's first attempt to be refused and then
    /// calls [`SwanLab::initiate_charon`].
    pub fn launch(
        self,
        swan_config: SwanConfig,
        xr_config: &str,
        certs: Option<LabDir>,
    ) -> SwanLab {
        let mut charon =
            Charon::new(&self.topo, self.swan_node, swan_config).expect("preparing charon");
        charon.start().expect("starting charon");
        if self.initiator == Initiator::Xrsec {
            charon.load().expect("loading charon's connection");
        }
        let xrsecd = match Xrsecd::start(&self.topo, self.xr_node, xr_config, &[]) {
            Ok(x) => x,
            Err(e) => panic!("starting xrsecd: {e}\ncharon log:\n{}", charon.log()),
        };
        SwanLab {
            xrsecd,
            charon,
            xr_node: self.xr_node,
            swan_node: self.swan_node,
            topo: self.topo,
            settle: self.settle,
            _certs: certs,
        }
    }
}

/// The two peers of one case. Field order is drop order: both daemons go
/// before the namespaces they run in, the certificates (if any) last.
pub struct SwanLab {
    pub xrsecd: Xrsecd,
    pub charon: Charon,
    pub xr_node: Node,
    pub swan_node: Node,
    pub topo: Topology,
    settle: Duration,
    _certs: Option<LabDir>,
}

impl SwanLab {
    /// Both daemons' logs, for a failure message.
    pub fn logs(&self) -> String {
        format!(
            "--- xrsecd ---\n{}\n--- charon ({}) ---\n{}",
            self.xrsecd.log(),
            self.charon.dir().display(),
            self.charon.log()
        )
    }

    pub fn xrsec(&self, args: &[&str]) -> String {
        self.xrsecd
            .xrsec(args)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    pub fn status(&self) -> Status {
        self.xrsecd
            .status()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    pub fn list_sas(&self) -> Vec<SwanSa> {
        self.charon
            .list_sas()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// charon's address and xrsecd's.
    pub fn addresses(&self) -> (Ipv4Addr, Ipv4Addr) {
        (
            self.topo.address(self.swan_node),
            self.topo.address(self.xr_node),
        )
    }

    /// Polls `probe` until it yields a value; on timeout panics with the
    /// last reason it gave and both logs.
    pub fn wait_for<T>(&self, what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + self.settle;
        loop {
            match probe() {
                Ok(v) => return v,
                Err(why) if Instant::now() >= deadline => {
                    panic!(
                        "{what}: not so after {:?}: {why}\n{}",
                        self.settle,
                        self.logs()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Loads charon's connection and has charon initiate it.
    pub fn initiate_charon(&self) {
        self.charon.load().expect("loading charon's connection");
        if let Err(e) = self.charon.initiate("tunnel") {
            panic!("charon's initiation: {e}\n{}", self.logs());
        }
    }
}

/// xrsecd's first attempt was refused (charon knew no connection yet) and
/// its tunnel is not up.
pub fn first_attempt_refused(s: &Status) -> Result<(), String> {
    let t = &s.tunnels[0];
    let refused = t
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("NO_PROPOSAL_CHOSEN"));
    if t.failures >= 1 && refused && t.state != xrsec_control::TunnelState::Up {
        Ok(())
    } else {
        Err(format!(
            "{:?}, {} failures, last error {:?}",
            t.state, t.failures, t.last_error
        ))
    }
}

/// charon's only SA, established with its Child SA installed.
pub fn one_charon_sa(sas: &[SwanSa]) -> Result<SwanSa, String> {
    match sas {
        [sa] if sa.is_established() && sa.child("tunnel").is_some_and(|c| c.is_installed()) => {
            Ok(sa.clone())
        }
        _ => Err(format!("charon has {sas:?}")),
    }
}

/// xrsecd's only IKE SA, READY with one Child SA.
pub fn one_xrsecd_sa(s: &Status) -> Result<IkeSa, String> {
    let xr: Vec<&IkeSa> = s.sessions.iter().flat_map(|x| &x.ike_sas).collect();
    match xr.as_slice() {
        [sa] if sa.state == "READY" && sa.children.len() == 1 => Ok((*sa).clone()),
        _ => Err(format!("xrsecd has {:?}", s.sessions)),
    }
}

/// The rows of `show ikev2 session detail` that name the SPIs charon lists:
/// the IKE SA's, on xrsecd's side of them, and the Child SA's, reversed.
pub fn spi_rows(initiator: Initiator, swan: &SwanSa) -> [(&'static str, String); 3] {
    let child = swan.child("tunnel").expect("settled() saw the child");
    let (local_spi, remote_spi) = initiator.xr_spis(swan);
    [
        ("Local SPI", format!("{local_spi:016X}")),
        ("Remote SPI", format!("{remote_spi:016X}")),
        (
            "ESP SPI IN/OUT",
            format!("0x{:08x} / 0x{:08x}", child.spi_out, child.spi_in),
        ),
    ]
}

/// Both ends authenticated with `method` both ways, and each names itself
/// and the other by its address.
pub fn check_auth_and_identities(lab: &SwanLab, xr: &IkeSa, swan: &SwanSa, method: &str) {
    assert_eq!(
        (xr.auth_sign.as_str(), xr.auth_verify.as_str()),
        (method, method)
    );
    let (swan_addr, xr_addr) = lab.addresses();
    assert_eq!(xr.local_id, xr_addr.to_string());
    assert_eq!(xr.remote_id, swan_addr.to_string());
    assert_eq!(swan.local_id, swan_addr.to_string());
    assert_eq!(swan.remote_id, xr_addr.to_string());
}

/// Pings cross both ways through the tunnel and charon counts them on its
/// Child SA; returns how many packets each direction must at least count.
pub fn check_pings(lab: &SwanLab) -> u64 {
    let from_xr = lab
        .topo
        .ping(lab.xr_node, SWAN_INNER, PINGS)
        .expect("ping from xrsecd's side");
    assert_eq!(
        from_xr.received,
        PINGS,
        "ping {SWAN_INNER} from xrsecd's side: {from_xr:?}\n{}",
        lab.logs()
    );
    let from_swan = lab
        .topo
        .ping_from(lab.swan_node, SWAN_INNER, XR_INNER, PINGS)
        .expect("ping from charon's side");
    assert_eq!(
        from_swan.received,
        PINGS,
        "ping {XR_INNER} from charon's side: {from_swan:?}\n{}",
        lab.logs()
    );

    // Each ping is one packet each way on each side: requests one way,
    // replies the other.
    let both_ways = u64::from(2 * PINGS);
    let sas = lab.list_sas();
    let child = sas
        .first()
        .and_then(|sa| sa.child("tunnel"))
        .unwrap_or_else(|| panic!("charon lost its SA: {sas:?}"));
    assert!(
        child.packets_in >= both_ways && child.packets_out >= both_ways,
        "charon counted {} in, {} out; expected at least {both_ways} each",
        child.packets_in,
        child.packets_out
    );
    both_ways
}
