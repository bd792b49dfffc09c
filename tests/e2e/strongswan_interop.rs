//! xrsecd against strongSwan's charon, both ways round, for three suites.
//!
//! charon runs with kernel-libipsec (its only data plane without kernel ESP),
//! which always claims a NAT: IKE moves to UDP 4500 and ESP travels in UDP
//! (shared/LAB.md), so every case here also exercises xrsecd's NAT-T.
//!
//! Who initiates is arranged, not left to chance. xrsecd initiates toward its
//! tunnel destination as soon as it starts, and when both ends initiate it
//! keeps the IKE SA with the lower initiator SPI (a coin toss). So:
//! - xrsecd initiates: charon is loaded with `start_action = none` before
//!   xrsecd starts;
//! - charon initiates: charon is started with
//!   nothing loaded, so xrsecd's own first attempt is refused
//!   (NO_PROPOSAL_CHOSEN) and waits for its back-off; only then is the
//!   connection loaded and initiated. Were xrsecd's attempt to succeed first,
//!   charon would reuse that IKE SA and refuse a second Child SA ("existing
//!   duplicate") instead of making its own. xrsecd reports the refusal only
//!   after holding it 2 s (RFC 7296 2.21.1), then waits 2 s before trying
//!   again: time enough to load and initiate charon.
//!
//! Each case checks that both ends agree on everything they both know (IKE
//! and ESP SPIs, algorithms, selectors, roles, UDP encapsulation), that pings
//! cross in both directions and are counted on the negotiated SAs, and that
//! stopping xrsecd deletes charon's SAs too (its DELETE reached charon).

use std::net::Ipv4Addr;
use std::time::Duration;

use xrsec_control::{IkeSa, TunnelState};
use xrsec_e2e::swan_common::{
    check_auth_and_identities, check_pings, first_attempt_refused, one_charon_sa, one_xrsecd_sa,
    spi_rows, Initiator, Setup, SwanLab, SWAN_INNER, XR_INNER,
};
use xrsec_e2e::values_of;
use xrsec_lab::{router_config, SwanSa, TopologyConfig, XrSuite};

/// Generous: a debug build of xrsecd does P-521 slowly.
const SETTLE: Duration = Duration::from_secs(30);

/// One suite as each side writes it and as each side reports it.
struct Suite {
    xr: XrSuite,
    swan_ike: &'static str,
    swan_esp: &'static str,
    /// `swanctl --list-sas`: the IKE SA's and the CHILD SA's algorithm lines.
    swan_ike_algs: &'static str,
    swan_esp_algs: &'static str,
    /// xrsec's IKE SA: encryption, key size, PRF, integrity, DH group.
    xr_ike: (&'static str, u16, &'static str, &'static str, u16),
    /// xrsec's Child SA: encryption, key size, HMAC.
    xr_child: (&'static str, u16, &'static str),
}

/// The seed's suite: IKE aes-cbc-256/sha-256/prf sha-256/group 20, ESP
/// esp-256-aes esp-hmac-sha-256 with pfs group19.
fn seed_suite() -> Suite {
    Suite {
        xr: XrSuite::seed(),
        swan_ike: "aes256-sha256-prfsha256-ecp384",
        swan_esp: "aes256-sha256-ecp256",
        swan_ike_algs: "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_384",
        swan_esp_algs: "AES_CBC-256/HMAC_SHA2_256_128",
        xr_ike: ("AES-CBC", 256, "SHA256", "SHA256", 20),
        xr_child: ("AES-CBC", 256, "SHA256"),
    }
}

/// AES-GCM-256 for IKE (prf sha-256, group 21) and ESP (pfs group21).
fn gcm_suite() -> Suite {
    let mut xr = XrSuite::new("aes-gcm-256", "", "sha-256", 21, "esp-gcm-256");
    xr.pfs_group = Some(21);
    Suite {
        xr,
        swan_ike: "aes256gcm16-prfsha256-ecp521",
        swan_esp: "aes256gcm16-ecp521",
        swan_ike_algs: "AES_GCM_16-256/PRF_HMAC_SHA2_256/ECP_521",
        swan_esp_algs: "AES_GCM_16-256",
        xr_ike: ("AES-GCM", 256, "SHA256", "None", 21),
        xr_child: ("AES-GCM", 256, "None"),
    }
}

/// The old defaults: IKE aes-cbc-128/sha-1/group 19, ESP esp-128-aes
/// esp-hmac-sha-1, no PFS.
fn sha1_suite() -> Suite {
    Suite {
        xr: XrSuite::new(
            "aes-cbc-128",
            "sha-1",
            "sha-1",
            19,
            "esp-128-aes esp-hmac-sha-1",
        ),
        swan_ike: "aes128-sha1-ecp256",
        swan_esp: "aes128-sha1",
        swan_ike_algs: "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/ECP_256",
        swan_esp_algs: "AES_CBC-128/HMAC_SHA1_96",
        xr_ike: ("AES-CBC", 128, "SHA1", "SHA1", 19),
        xr_child: ("AES-CBC", 128, "SHA1"),
    }
}

#[test]
fn seed_suite_with_xrsec_initiating() {
    interop(&seed_suite(), Initiator::Xrsec);
}

#[test]
fn seed_suite_with_strongswan_initiating() {
    interop(&seed_suite(), Initiator::Charon);
}

#[test]
fn aes_gcm_256_group_21_with_xrsec_initiating() {
    interop(&gcm_suite(), Initiator::Xrsec);
}

#[test]
fn aes_gcm_256_group_21_with_strongswan_initiating() {
    interop(&gcm_suite(), Initiator::Charon);
}

#[test]
fn aes_cbc_128_sha1_group_19_with_xrsec_initiating() {
    interop(&sha1_suite(), Initiator::Xrsec);
}

#[test]
fn aes_cbc_128_sha1_group_19_with_strongswan_initiating() {
    interop(&sha1_suite(), Initiator::Charon);
}

/// Brings the tunnel up with `initiator` initiating, checks both ends and the
/// traffic, then stops xrsecd and checks that charon is left with nothing.
fn interop(suite: &Suite, initiator: Initiator) {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    xrsec_lab::ensure_packages().expect("installing strongSwan and the lab tools");

    let mut lab = start(suite, initiator);
    let (swan, xr_sa) = settled(&lab, initiator);
    check_agreement(&lab, suite, initiator, &swan, &xr_sa);
    check_show_commands(&lab, initiator, &swan);
    check_traffic(&lab);
    check_stop_deletes_charons_sas(&mut lab);
}

/// Places the peers by who is to initiate and starts them in the order that
/// makes it so (see the module doc).
fn start(suite: &Suite, initiator: Initiator) -> SwanLab {
    let setup = Setup::new(TopologyConfig::direct(), initiator, SETTLE);
    let swan_config = setup.swan_config(suite.swan_ike, suite.swan_esp);
    let config = router_config(setup.xr_addr(), setup.swan_addr(), XR_INNER, &suite.xr);
    let lab = setup.launch(swan_config, &config, None);
    if initiator == Initiator::Charon {
        // charon knows no connection yet: xrsecd's attempt must fail before
        // charon makes its own.
        lab.wait_for("xrsecd's first attempt refused", || {
            first_attempt_refused(&lab.status())
        });
        lab.initiate_charon();
    }
    lab
}

/// Waits until each end has exactly one IKE SA, established, with its Child
/// SA installed, and xrsecd reports the tunnel up; returns charon's SA and
/// xrsecd's.
fn settled(lab: &SwanLab, initiator: Initiator) -> (SwanSa, IkeSa) {
    lab.wait_for("xrsecd's tunnel up", || {
        let s = lab.status();
        match s.tunnels[0].state {
            TunnelState::Up => Ok(()),
            other => Err(format!(
                "{other:?}, last error {:?}",
                s.tunnels[0].last_error
            )),
        }
    });
    lab.wait_for("one SA on each end", || {
        let swan = one_charon_sa(&lab.list_sas())?;
        let xr = one_xrsecd_sa(&lab.status())?;
        initiator.check_roles(&xr, &swan)?;
        Ok((swan, xr))
    })
}

/// Both ends describe the same IKE SA and Child SA.
fn check_agreement(lab: &SwanLab, suite: &Suite, initiator: Initiator, swan: &SwanSa, xr: &IkeSa) {
    let logs = || lab.logs();
    let child = swan.child("tunnel").expect("settled() saw the child");

    // IKE SA: the same SPIs, each side on its own end of them.
    let (xr_i, xr_r) = match initiator {
        Initiator::Xrsec => (xr.local_spi, xr.remote_spi),
        Initiator::Charon => (xr.remote_spi, xr.local_spi),
    };
    assert_eq!(
        (xr_i, xr_r),
        (swan.spi_i, swan.spi_r),
        "IKE SPIs (initiator, responder): xrsecd vs charon\n{}",
        logs()
    );
    assert_ne!(swan.spi_r, 0);
    assert_eq!(swan.algorithms, suite.swan_ike_algs, "charon's IKE SA");
    let (encr, keysize, prf, hash, group) = suite.xr_ike;
    assert_eq!(
        (
            xr.encryption.as_str(),
            xr.keysize,
            xr.prf.as_str(),
            xr.hash.as_str(),
            xr.dh_group
        ),
        (encr, keysize, prf, hash, group),
        "xrsecd's IKE SA"
    );
    check_auth_and_identities(lab, xr, swan, "PSK");
    let (swan_addr, xr_addr) = lab.addresses();

    // kernel-libipsec claims a NAT, so both ends moved to 4500.
    assert!(xr.nat_t, "xrsecd did not take up NAT-T\n{}", logs());
    assert_eq!(
        (xr.local.port(), xr.remote.port()),
        (4500, 4500),
        "xrsecd's IKE SA ports"
    );
    assert_eq!(
        swan.local_addr.map(|a| a.port()),
        Some(4500),
        "charon's IKE port"
    );
    assert_eq!(
        swan.remote_addr.map(|a| a.to_string()),
        Some(format!("{xr_addr}:4500"))
    );

    // Child SA: each side's inbound SPI is the other's outbound.
    assert!(child.is_installed());
    assert_eq!(child.mode, "TUNNEL-in-UDP", "charon's Child SA");
    assert_eq!(child.protocol, "ESP");
    assert_eq!(child.algorithms, suite.swan_esp_algs, "charon's Child SA");
    assert_eq!(child.local_ts, [format!("{SWAN_INNER}/32")]);
    assert_eq!(child.remote_ts, [format!("{XR_INNER}/32")]);
    let xc = &xr.children[0];
    assert_eq!(
        (xc.spi_in, xc.spi_out),
        (child.spi_out, child.spi_in),
        "ESP SPIs (in, out): xrsecd's session vs charon's reversed\n{}",
        logs()
    );
    // The selectors as narrowed to charon's /32s, in IOS-XR's
    // address/port-range form.
    let all_ports = |a: Ipv4Addr| format!("{a}/0 - {a}/65535");
    assert_eq!(xc.local_selectors, [all_ports(XR_INNER)]);
    assert_eq!(xc.remote_selectors, [all_ports(SWAN_INNER)]);
    let (encr, keysize, hmac) = suite.xr_child;
    assert_eq!(
        (xc.encryption.as_str(), xc.keysize, xc.esp_hmac.as_str()),
        (encr, keysize, hmac),
        "xrsecd's Child SA"
    );

    let status = lab.status();
    let tunnel = &status.tunnels[0];
    let ipsec = tunnel.ipsec.as_ref().expect("an up tunnel has a Child SA");
    assert_eq!(
        (ipsec.inbound.spi, ipsec.outbound.spi),
        (child.spi_out, child.spi_in),
        "ESP SPIs (in, out): xrsecd's dataplane vs charon's reversed"
    );
    assert!(ipsec.udp_encap, "xrsecd's ESP is not in UDP\n{}", logs());
    assert_eq!(ipsec.remote.to_string(), format!("{swan_addr}:4500"));
    assert_eq!(ipsec.local.port(), 4500);
}

/// What an engineer reads in `xrsec show` says the same.
fn check_show_commands(lab: &SwanLab, initiator: Initiator, swan: &SwanSa) {
    let child = swan.child("tunnel").expect("settled() saw the child");
    let detail = lab.xrsec(&["show", "ikev2", "session", "detail"]);
    let rows = [
        ("Role", initiator.xr_role().to_string()),
        ("NAT-T", "yes".to_string()),
    ];
    for (label, value) in rows.into_iter().chain(spi_rows(initiator, swan)) {
        assert_eq!(
            values_of(&detail, label),
            [value.as_str()],
            "`{label}` in show ikev2 session detail:\n{detail}"
        );
    }

    let table = lab.xrsec(&["show", "ipsec", "sa"]);
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("tunnel-ip1 "))
        .unwrap_or_else(|| panic!("no tunnel-ip1 row in show ipsec sa:\n{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row[2..],
        [
            format!("0x{:08x}", child.spi_out),
            format!("0x{:08x}", child.spi_in)
        ],
        "show ipsec sa:\n{table}"
    );

    let sa = lab.xrsec(&["show", "ipsec", "sa", "interface", "tunnel-ip1"]);
    let swan_addr = lab.topo.address(lab.swan_node);
    let encap = format!("ESP-in-UDP 4500, remote {swan_addr}:4500");
    assert_eq!(
        values_of(&sa, "Encapsulation"),
        [encap.as_str(), encap.as_str()],
        "both halves in UDP 4500:\n{sa}"
    );
}

/// Pings cross both ways through the tunnel and both ends count them on the
/// SAs they agreed on.
fn check_traffic(lab: &SwanLab) {
    let both_ways = check_pings(lab);
    let status = lab.status();
    let ipsec = status.tunnels[0].ipsec.as_ref().expect("still up");
    assert!(
        ipsec.inbound.packets >= both_ways && ipsec.outbound.packets >= both_ways,
        "xrsecd counted {} in, {} out; expected at least {both_ways} each",
        ipsec.inbound.packets,
        ipsec.outbound.packets
    );
    assert!(
        ipsec.inbound.drops.is_empty() && ipsec.outbound.drops.is_empty(),
        "xrsecd dropped packets: in {:?}, out {:?}",
        ipsec.inbound.drops,
        ipsec.outbound.drops
    );
}

/// SIGTERM makes xrsecd delete its SAs; charon, which has no DPD here and
/// would otherwise keep them for hours, must be left with none.
fn check_stop_deletes_charons_sas(lab: &mut SwanLab) {
    let clean = lab.xrsecd.stop().expect("stopping xrsecd");
    assert!(clean, "xrsecd did not exit 0 on SIGTERM\n{}", lab.logs());
    lab.wait_for("charon's SAs deleted by xrsecd's DELETE", || {
        let sas = lab.list_sas();
        if sas.is_empty() {
            Ok(())
        } else {
            Err(format!("charon still has {sas:?}"))
        }
    });
    let log = lab.charon.log();
    assert!(
        log.contains("received DELETE for IKE_SA"),
        "charon's log does not show the DELETE:\n{log}"
    );
}
