//! Rekeying against strongSwan's charon (kernel-libipsec, ESP in UDP 4500,
//! as in `strongswan_interop.rs`) with PFS, both ways round: once charon's
//! rekey times are the shorter and charon initiates every Child SA and IKE
//! SA rekey, once xrsec's lifetimes are and xrsecd does. Each case runs 60 s
//! of a 100 packets/s ping through the tunnel and wants every ping answered,
//! the rekeys seen on both ends (charon's SPIs changing in `swanctl
//! --list-sas`, its log generating or parsing CREATE_CHILD_SA with
//! `N(REKEY_SA)` and a KE payload, xrsecd logging `Child SA rekeyed` and
//! `IKE SA N rekeyed`), and at the end one IKE SA with one Child SA on each
//! end, their SPIs mirrored.
//!
//! charon never re-authenticates here (`reauth_time = 0s`): an IKE SA is
//! renewed by a rekey, which is what xrsec must answer and make.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use xrsec_e2e::swan_common::{
    first_attempt_refused, one_charon_sa, one_xrsecd_sa, Initiator, Setup, SwanLab, SWAN_INNER,
    XR_INNER,
};
use xrsec_e2e::{
    child_rekeys, ike_rekeys, is_sa_lifecycle, last_matching, ping_problem, tail, wall_clock,
    PING_INTERVAL,
};
use xrsec_lab::{router_config_with, SwanLifetimes, SwanSa, TopologyConfig, XrLifetimes, XrSuite};

/// Every wait of a case (bring-up, the final settling).
const SETTLE: Duration = Duration::from_secs(30);
/// How long the ping runs.
const TRAFFIC_SECS: u32 = 60;
/// Rekeys each case must count in 60 s, on each end.
const MIN_CHILD_REKEYS: usize = 3;
const MIN_IKE_REKEYS: usize = 2;

/// The seed's suite: IKE aes-cbc-256/sha-256/group 20 (charon's ecp384),
/// ESP esp-256-aes esp-hmac-sha-256 with PFS group19 (charon's ecp256).
const SWAN_IKE: &str = "aes256-sha256-prfsha256-ecp384";
const SWAN_ESP: &str = "aes256-sha256-ecp256";
/// charon's name of the PFS group, shown on a Child SA made by a rekey.
const SWAN_PFS: &str = "ECP_256";

/// Which end is to initiate the rekeys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rekeyer {
    Charon,
    Xrsec,
}

struct Case {
    /// Who brings the first IKE SA up.
    initiator: Initiator,
    rekeyer: Rekeyer,
    xr: XrLifetimes,
    swan: SwanLifetimes,
}

/// charon rekeys the Child SA every 10-12 s and the IKE SA every 22.5-25 s;
/// xrsec's lifetimes (40 s, 120 s) are never reached because each rekey
/// starts them anew. charon also brought the IKE SA up.
#[test]
fn charon_initiates_child_and_ike_rekeys_with_pfs_and_no_ping_is_lost() {
    rekeys(&Case {
        initiator: Initiator::Charon,
        rekeyer: Rekeyer::Charon,
        xr: XrLifetimes {
            ike_secs: Some(120),
            child_secs: Some(40),
            dpd: None,
            child_kilobytes: None,
        },
        swan: SwanLifetimes {
            ike_rekey_secs: Some(25),
            child_rekey_secs: Some(12),
            child_life_secs: Some(20),
            child_rand_secs: Some(2),
        },
    });
}

/// xrsecd rekeys the Child SA before its 12 s lifetime and the IKE SA before
/// its 25 s; charon's rekey times (120 s, 1 h) are never reached. xrsecd
/// brought the IKE SA up.
#[test]
fn xrsec_initiates_child_and_ike_rekeys_with_pfs_and_no_ping_is_lost() {
    rekeys(&Case {
        initiator: Initiator::Xrsec,
        rekeyer: Rekeyer::Xrsec,
        xr: XrLifetimes {
            ike_secs: Some(25),
            child_secs: Some(12),
            dpd: None,
            child_kilobytes: None,
        },
        swan: SwanLifetimes {
            ike_rekey_secs: Some(3600),
            child_rekey_secs: Some(120),
            child_life_secs: Some(150),
            child_rand_secs: Some(0),
        },
    });
}

fn rekeys(case: &Case) {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    xrsec_lab::ensure_packages().expect("installing strongSwan and the lab tools");

    let lab = start(case);
    lab.wait_for("one SA on each end", || settled(&lab));
    let started = wall_clock();
    let pings = lab
        .topo
        .start_ping(
            lab.xr_node,
            Some(XR_INNER),
            SWAN_INNER,
            PING_INTERVAL,
            Duration::from_secs(u64::from(TRAFFIC_SECS)),
        )
        .expect("starting the ping");
    // What charon lists while the ping runs: its SPIs change at each rekey.
    let mut child_spis = BTreeSet::new();
    let mut ike_spis = BTreeSet::new();
    let until = Instant::now() + pings.duration();
    while Instant::now() < until {
        for sa in lab.charon.list_sas().unwrap_or_default() {
            ike_spis.insert((sa.spi_i, sa.spi_r));
            for c in &sa.children {
                child_spis.insert((c.spi_in, c.spi_out));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let pings = pings.finish(Duration::from_secs(20));

    let mut problems = Vec::new();
    problems.extend(ping_problem(
        &pings,
        "ping xrsecd's side -> charon's",
        TRAFFIC_SECS,
        PING_INTERVAL,
    ));
    if child_spis.len() < MIN_CHILD_REKEYS + 1 {
        problems.push(format!(
            "charon listed {} Child SA SPI pairs (at least {} expected): {child_spis:x?}",
            child_spis.len(),
            MIN_CHILD_REKEYS + 1
        ));
    }
    if ike_spis.len() < MIN_IKE_REKEYS + 1 {
        problems.push(format!(
            "charon listed {} IKE SA SPI pairs (at least {} expected): {ike_spis:x?}",
            ike_spis.len(),
            MIN_IKE_REKEYS + 1
        ));
    }
    let swan_log = lab.charon.log();
    let requests = rekey_requests(&swan_log);
    let (sent, received) = requests.split(case.rekeyer);
    if sent.child.len() < MIN_CHILD_REKEYS
        || sent.ike.len() < MIN_IKE_REKEYS
        || !received.child.is_empty()
        || !received.ike.is_empty()
    {
        problems.push(format!(
            "expected {:?} to initiate at least {MIN_CHILD_REKEYS} Child SA and {MIN_IKE_REKEYS} IKE SA rekeys and the other end none; charon's log: {requests}",
            case.rekeyer
        ));
    }
    if let Some(no_ke) = sent.child.iter().find(|l| !l.contains(" KE ")) {
        problems.push(format!("a Child SA rekey without PFS (no KE): {no_ke}"));
    }
    let xr_log = lab.xrsecd.log();
    let (child, ike) = (child_rekeys(&xr_log).len(), ike_rekeys(&xr_log).len());
    if child < MIN_CHILD_REKEYS || ike < MIN_IKE_REKEYS {
        problems.push(format!(
            "xrsecd logged {child} Child SA rekeys (at least {MIN_CHILD_REKEYS} expected) and {ike} IKE SA rekeys (at least {MIN_IKE_REKEYS})"
        ));
    }
    eprintln!(
        "{requests}; xrsecd logged {child} Child SA and {ike} IKE SA rekeys; charon listed {} Child SA and {} IKE SA SPI pairs",
        child_spis.len(),
        ike_spis.len()
    );
    // `starting reauthentication`, `reauthenticating IKE_SA ...`.
    if let Some(line) = swan_log.lines().find(|l| l.contains("reauthenticat")) {
        problems.push(format!(
            "charon re-authenticated instead of rekeying: {line}"
        ));
    }
    match wait_settled(&lab) {
        Ok(swan) => {
            let algorithms = &swan.children[0].algorithms;
            if !algorithms.ends_with(SWAN_PFS) {
                problems.push(format!(
                    "charon's last Child SA was not made with PFS {SWAN_PFS}: {algorithms}"
                ));
            }
        }
        Err(e) => problems.push(e),
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with xrsecd's {:?} and charon's {:?}, {TRAFFIC_SECS} s of 100 pings/s from {started}:\n- {}\n\ncharon listed IKE SPIs {ike_spis:x?}\n--- xrsecd's SA lifecycle ---\n{}\n--- xrsecd (tail) ---\n{}\n--- charon's CREATE_CHILD_SA and SA lines ---\n{}",
        problems.len(),
        case.xr,
        case.swan,
        problems.join("\n- "),
        xr_lifecycle(&xr_log),
        tail(&xr_log, 30),
        swan_lifecycle(&swan_log)
    );
}

/// Places the peers by `case.initiator` and brings the tunnel up as
/// `strongswan_interop.rs` does.
fn start(case: &Case) -> SwanLab {
    let setup = Setup::new(TopologyConfig::direct(), case.initiator, SETTLE);
    let mut swan_config = setup.swan_config(SWAN_IKE, SWAN_ESP);
    swan_config.lifetimes = case.swan;
    swan_config.conn_extra.push("reauth_time = 0s".into());
    let suite = XrSuite::seed();
    assert_eq!(suite.pfs_group, Some(19));
    let config = router_config_with(
        setup.xr_addr(),
        setup.swan_addr(),
        XR_INNER,
        &suite,
        &case.xr,
    );
    let lab = setup.launch(swan_config, &config, None);
    if case.initiator == Initiator::Charon {
        lab.wait_for("xrsecd's first attempt refused", || {
            first_attempt_refused(&lab.status())
        });
        lab.initiate_charon();
    }
    lab
}

/// One IKE SA on each end with one Child SA, installed, and the SPIs
/// mirrored (IKE SPIs the same pair, each end's inbound ESP SPI the other's
/// outbound, xrsecd's dataplane on the same pair as its IKE view). Returns
/// charon's SA.
fn settled(lab: &SwanLab) -> Result<SwanSa, String> {
    let swan = one_charon_sa(&lab.list_sas())?;
    if swan.children.len() != 1 {
        return Err(format!(
            "charon has {} Child SAs: {swan:?}",
            swan.children.len()
        ));
    }
    let status = lab.status();
    let xr = one_xrsecd_sa(&status)?;
    let mut xr_ike = [xr.local_spi, xr.remote_spi];
    xr_ike.sort_unstable();
    let mut swan_ike = [swan.spi_i, swan.spi_r];
    swan_ike.sort_unstable();
    if xr_ike != swan_ike {
        return Err(format!(
            "IKE SPIs differ: xrsecd {:016x}/{:016x}, charon {:016x}/{:016x}",
            xr.local_spi, xr.remote_spi, swan.spi_i, swan.spi_r
        ));
    }
    let c = &swan.children[0];
    let xc = &xr.children[0];
    let dataplane = status.tunnels[0]
        .ipsec
        .as_ref()
        .map(|i| (i.inbound.spi, i.outbound.spi));
    if (xc.spi_in, xc.spi_out) != (c.spi_out, c.spi_in)
        || dataplane != Some((xc.spi_in, xc.spi_out))
    {
        return Err(format!(
            "ESP SPIs: charon in {:08x} out {:08x}; xrsecd's Child SA in {:08x} out {:08x}, its dataplane {dataplane:x?}",
            c.spi_in, c.spi_out, xc.spi_in, xc.spi_out
        ));
    }
    Ok(swan)
}

/// [`settled`] within [`SETTLE`] (a rekey may be under way when the ping
/// ends, an old SA lingering after it).
fn wait_settled(lab: &SwanLab) -> Result<SwanSa, String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        match settled(lab) {
            Ok(sa) => return Ok(sa),
            Err(why) if Instant::now() >= deadline => {
                return Err(format!(
                    "not one SA on each end {SETTLE:?} after the ping: {why}\n--- xrsec show ikev2 session detail ---\n{}\n--- xrsec show ipsec sa ---\n{}",
                    lab.xrsec(&["show", "ikev2", "session", "detail"]),
                    lab.xrsec(&["show", "ipsec", "sa"])
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The rekey requests in charon's log (level 1 of ENC prints each message's
/// payloads): a Child SA rekey carries `N(REKEY_SA)` and traffic selectors,
/// an IKE SA rekey only `SA No KE`.
struct RekeyRequests<'a> {
    generated: Requests<'a>,
    parsed: Requests<'a>,
}

#[derive(Default)]
struct Requests<'a> {
    child: Vec<&'a str>,
    ike: Vec<&'a str>,
}

fn rekey_requests(log: &str) -> RekeyRequests<'_> {
    let mut r = RekeyRequests {
        generated: Requests::default(),
        parsed: Requests::default(),
    };
    for line in log
        .lines()
        .filter(|l| l.contains("CREATE_CHILD_SA request"))
    {
        let side = if line.contains("generating") {
            &mut r.generated
        } else if line.contains("parsed") {
            &mut r.parsed
        } else {
            continue;
        };
        if line.contains("N(REKEY_SA)") {
            side.child.push(line);
        } else if !line.contains("TSi") {
            side.ike.push(line);
        }
    }
    r
}

impl<'a> RekeyRequests<'a> {
    /// (the rekeyer's requests, the other end's), as charon logged them.
    fn split(&self, rekeyer: Rekeyer) -> (&Requests<'a>, &Requests<'a>) {
        match rekeyer {
            Rekeyer::Charon => (&self.generated, &self.parsed),
            Rekeyer::Xrsec => (&self.parsed, &self.generated),
        }
    }
}

impl std::fmt::Display for RekeyRequests<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "charon generated {} Child SA and {} IKE SA rekey requests, parsed {} and {} from xrsecd",
            self.generated.child.len(),
            self.generated.ike.len(),
            self.parsed.child.len(),
            self.parsed.ike.len()
        )
    }
}

/// xrsecd's lines about SAs coming, going and rekeying (the last 60).
fn xr_lifecycle(log: &str) -> String {
    last_matching(log, 60, is_sa_lifecycle).1
}

/// charon's lines about CREATE_CHILD_SA, rekeying and deleting.
fn swan_lifecycle(log: &str) -> String {
    let words = [
        "CREATE_CHILD_SA",
        "rekey",
        "DELETE",
        "establish",
        "closing",
        "deleting",
    ];
    last_matching(log, 80, |l| words.iter().any(|w| l.contains(w))).1
}
