//! xrsecd against strongSwan's charon with public-key authentication, both
//! ways round: certificates made by strongSwan's own `pki` (4096-bit RSA, the
//! CA's key too, each end's address in its subjectAltName), over a path whose
//! MTU is 1280 bytes, so that IKE_AUTH, carrying a 4096-bit certificate and
//! a 512-byte signature, must travel in RFC 7383 fragments both ways
//! (xrsecd fragments by default, and so does charon with its default
//! `fragmentation = yes`).
//!
//! Two signature methods:
//! - RFC 7427 digital signatures (method 14) with SHA-256: both ends send
//!   SIGNATURE_HASH_ALGORITHMS. Left to itself charon signs with SHA-384
//!   with a 4096-bit key (it prefers a hash that matches the key's
//!   strength), so its `local.auth` is `pubkey-sha256`; xrsecd signs with
//!   SHA-256 of its own accord;
//! - RFC 7296 method 1 (RSA PKCS#1 v1.5 with SHA-1): charon runs with
//!   `charon.signature_authentication = no`, sends no
//!   SIGNATURE_HASH_ALGORITHMS, and so neither end may use method 14.
//!
//! charon's log is the independent witness of what each end signed with:
//! it names the scheme of every AUTH payload it makes or checks.
//!
//! Who initiates is arranged as in `strongswan_interop.rs` (see its module
//! doc): for xrsecd, charon is loaded before xrsecd starts; for charon,
//! charon is loaded only once xrsecd's own first attempt has been refused.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use xrsec_control::{IkeSa, TunnelState};
use xrsec_e2e::{make_certificates, values_of, with_certificates};
use xrsec_lab::{
    router_config, Charon, LabDir, Node, SwanAuth, SwanConfig, SwanSa, Topology, TopologyConfig,
    XrSuite, Xrsecd, LAB_PSK,
};

/// xrsecd's tunnel-ip1 address; charon's remote traffic selector.
const XR_INNER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// charon's inner address (on its `lo`), inside tunnel-ip1's /30.
const SWAN_INNER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The underlay MTU, set on every veth: below a 4096-bit IKE_AUTH.
const PATH_MTU: u32 = 1280;
/// Every key, the CA's included.
const RSA_BITS: u32 = 4096;
/// Generous: a debug build of xrsecd signs with a 4096-bit key slowly.
const SETTLE: Duration = Duration::from_secs(60);
const PINGS: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Initiator {
    Xrsec,
    Charon,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signatures {
    /// RFC 7427 method 14, SHA-256.
    Rfc7427Sha256,
    /// RFC 7296 method 1.
    Method1,
}

impl Signatures {
    /// How charon's log names a signature of this kind ("authentication of
    /// 'ID' with NAME successful").
    fn charon_name(self) -> &'static str {
        match self {
            Signatures::Rfc7427Sha256 => "RSA_EMSA_PKCS1_SHA2_256",
            Signatures::Method1 => "RSA signature",
        }
    }
}

#[test]
fn rfc7427_sha256_with_xrsec_initiating() {
    interop(Initiator::Xrsec, Signatures::Rfc7427Sha256);
}

#[test]
fn rfc7427_sha256_with_strongswan_initiating() {
    interop(Initiator::Charon, Signatures::Rfc7427Sha256);
}

#[test]
fn method_1_with_xrsec_initiating() {
    interop(Initiator::Xrsec, Signatures::Method1);
}

#[test]
fn method_1_with_strongswan_initiating() {
    interop(Initiator::Charon, Signatures::Method1);
}

/// The two peers of one case. Field order is drop order: both daemons go
/// before the namespaces they run in, the certificates last.
struct Lab {
    xrsecd: Xrsecd,
    charon: Charon,
    xr_node: Node,
    swan_node: Node,
    topo: Topology,
    _certs: LabDir,
}

impl Lab {
    fn logs(&self) -> String {
        format!(
            "--- xrsecd ---\n{}\n--- charon ({}) ---\n{}",
            self.xrsecd.log(),
            self.charon.dir().display(),
            self.charon.log()
        )
    }

    fn list_sas(&self) -> Vec<SwanSa> {
        self.charon
            .list_sas()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Polls `probe` until it yields a value; on timeout panics with the
    /// last reason it gave and both logs.
    fn wait_for<T>(&self, what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + SETTLE;
        loop {
            match probe() {
                Ok(v) => return v,
                Err(why) if Instant::now() >= deadline => {
                    panic!("{what}: not so after {SETTLE:?}: {why}\n{}", self.logs())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

fn interop(initiator: Initiator, signatures: Signatures) {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    xrsec_lab::ensure_packages().expect("installing strongSwan and the lab tools");

    let lab = start(initiator, signatures);
    let (swan, xr) = settled(&lab, initiator);
    check_spis_and_auth(&lab, initiator, &swan, &xr);
    check_signatures(&lab, signatures);
    check_fragmented_ike_auth(&lab);
    check_traffic(&lab);
}

fn start(initiator: Initiator, signatures: Signatures) -> Lab {
    let topo = Topology::new(TopologyConfig::direct().with_mtu(PATH_MTU))
        .expect("building the namespaces");
    let (swan_node, xr_node) = match initiator {
        Initiator::Xrsec => (Node::B, Node::A),
        Initiator::Charon => (Node::A, Node::B),
    };
    let (swan_addr, xr_addr) = (topo.address(swan_node), topo.address(xr_node));
    let certs = LabDir::new("swan-certs").expect("a directory for the certificates");
    let c = certs.path();
    make_certificates(
        c,
        RSA_BITS,
        &[
            ("xrsec", &xr_addr.to_string()),
            ("charon", &swan_addr.to_string()),
        ],
    );

    let mut swan_config = SwanConfig::psk(
        swan_addr,
        Some(xr_addr),
        LAB_PSK,
        "aes256-sha256-prfsha256-ecp384",
        "aes256-sha256-ecp256",
    )
    .with_inner(SWAN_INNER, XR_INNER);
    swan_config.auth = SwanAuth::Certificate {
        cert: c.join("charon.crt"),
        key: c.join("charon.key"),
        ca: c.join("ca.crt"),
        local_auth: match signatures {
            Signatures::Rfc7427Sha256 => Some("pubkey-sha256".into()),
            Signatures::Method1 => None,
        },
    };
    if signatures == Signatures::Method1 {
        swan_config
            .charon_extra
            .push("signature_authentication = no".into());
    }
    let mut charon = Charon::new(&topo, swan_node, swan_config).expect("preparing charon");
    charon.start().expect("starting charon");
    if initiator == Initiator::Xrsec {
        charon.load().expect("loading charon's connection");
    }
    let config = with_certificates(
        &router_config(xr_addr, swan_addr, XR_INNER, &XrSuite::seed()),
        c,
        "xrsec",
    );
    let xrsecd = match Xrsecd::start(&topo, xr_node, &config, &[]) {
        Ok(x) => x,
        Err(e) => panic!("starting xrsecd: {e}\ncharon log:\n{}", charon.log()),
    };
    let lab = Lab {
        xrsecd,
        charon,
        xr_node,
        swan_node,
        topo,
        _certs: certs,
    };
    if initiator == Initiator::Charon {
        lab.wait_for("xrsecd's first attempt refused", || {
            let s = lab.xrsecd.status().map_err(|e| e.to_string())?;
            let t = &s.tunnels[0];
            let refused = t
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("NO_PROPOSAL_CHOSEN"));
            if t.failures >= 1 && refused && t.state != TunnelState::Up {
                Ok(())
            } else {
                Err(format!(
                    "{:?}, {} failures, last error {:?}",
                    t.state, t.failures, t.last_error
                ))
            }
        });
        lab.charon.load().expect("loading charon's connection");
        if let Err(e) = lab.charon.initiate("tunnel") {
            panic!("charon's initiation: {e}\n{}", lab.logs());
        }
    }
    lab
}

/// Waits until each end has exactly one IKE SA, established, with its Child
/// SA installed, in the roles arranged.
fn settled(lab: &Lab, initiator: Initiator) -> (SwanSa, IkeSa) {
    lab.wait_for("one SA on each end, xrsecd's tunnel up", || {
        let s = lab.xrsecd.status().map_err(|e| e.to_string())?;
        if s.tunnels[0].state != TunnelState::Up {
            return Err(format!(
                "xrsecd's tunnel {:?}, last error {:?}",
                s.tunnels[0].state, s.tunnels[0].last_error
            ));
        }
        let sas = lab.list_sas();
        let swan = match sas.as_slice() {
            [sa] if sa.is_established() && sa.child("tunnel").is_some_and(|c| c.is_installed()) => {
                sa.clone()
            }
            _ => return Err(format!("charon has {sas:?}")),
        };
        let xr: Vec<&IkeSa> = s.sessions.iter().flat_map(|x| &x.ike_sas).collect();
        let xr = match xr.as_slice() {
            [sa] if sa.state == "READY" && sa.children.len() == 1 => (*sa).clone(),
            _ => return Err(format!("xrsecd has {:?}", s.sessions)),
        };
        let want_role = match initiator {
            Initiator::Xrsec => "Initiator",
            Initiator::Charon => "Responder",
        };
        if xr.role != want_role || swan.local_is_initiator != (initiator == Initiator::Charon) {
            return Err(format!(
                "roles: xrsecd {}, charon initiator {}",
                xr.role, swan.local_is_initiator
            ));
        }
        Ok((swan, xr))
    })
}

/// `show ikev2 session detail` names the SPIs charon lists and RSA both
/// ways; the identities are the addresses the certificates carry.
fn check_spis_and_auth(lab: &Lab, initiator: Initiator, swan: &SwanSa, xr: &IkeSa) {
    let child = swan.child("tunnel").expect("settled() saw the child");
    let detail = lab
        .xrsecd
        .xrsec(&["show", "ikev2", "session", "detail"])
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.logs()));
    let (local_spi, remote_spi) = match initiator {
        Initiator::Xrsec => (swan.spi_i, swan.spi_r),
        Initiator::Charon => (swan.spi_r, swan.spi_i),
    };
    for (label, value) in [
        ("Authentication(Sign/Verify)", "RSA/RSA".to_string()),
        ("Local SPI", format!("{local_spi:016X}")),
        ("Remote SPI", format!("{remote_spi:016X}")),
        (
            "ESP SPI IN/OUT",
            format!("0x{:08x} / 0x{:08x}", child.spi_out, child.spi_in),
        ),
    ] {
        assert_eq!(
            values_of(&detail, label),
            [value.as_str()],
            "`{label}` in show ikev2 session detail:\n{detail}\n{}",
            lab.logs()
        );
    }
    assert_eq!(
        (xr.auth_sign.as_str(), xr.auth_verify.as_str()),
        ("RSA", "RSA")
    );
    let (swan_addr, xr_addr) = (
        lab.topo.address(lab.swan_node),
        lab.topo.address(lab.xr_node),
    );
    assert_eq!(xr.local_id, xr_addr.to_string());
    assert_eq!(xr.remote_id, swan_addr.to_string());
    assert_eq!(swan.local_id, swan_addr.to_string());
    assert_eq!(swan.remote_id, xr_addr.to_string());
}

/// charon checked xrsecd's AUTH and made its own with the scheme the case
/// is about.
fn check_signatures(lab: &Lab, signatures: Signatures) {
    let log = lab.charon.log();
    let name = signatures.charon_name();
    let swan_addr = lab.topo.address(lab.swan_node);
    let xr_addr = lab.topo.address(lab.xr_node);
    let verified = format!("authentication of '{xr_addr}' with {name} successful");
    let signed = format!("authentication of '{swan_addr}' (myself) with {name} successful");
    for line in [verified, signed] {
        assert!(
            log.contains(&line),
            "charon's log lacks `{line}`:\n{}",
            lab.logs()
        );
    }
}

/// The number in `... in N fragments` / `(reassembled from N fragments)`
/// on xrsecd's log lines about IKE_AUTH that start with `verb`.
fn ike_auth_fragments(log: &str, verb: &str, before: &str) -> Option<u32> {
    log.lines()
        .filter(|l| l.contains(&format!("{verb} IKE_AUTH ")))
        .find_map(|l| {
            let (head, _) = l.rsplit_once(" fragments")?;
            let (_, n) = head.rsplit_once(before)?;
            n.parse().ok()
        })
}

/// Both IKE_AUTH messages crossed the 1280-byte path in fragments: xrsecd
/// sent its own in fragments and reassembled charon's, and charon says the
/// same of its side.
fn check_fragmented_ike_auth(lab: &Lab) {
    let log = lab.xrsecd.log();
    let sent = ike_auth_fragments(&log, "sent", " in ");
    let received = ike_auth_fragments(&log, "received", "reassembled from ");
    assert!(
        sent.is_some_and(|n| n >= 2) && received.is_some_and(|n| n >= 2),
        "IKE_AUTH fragments: sent {sent:?}, received {received:?}\n{}",
        lab.logs()
    );
    let swan_log = lab.charon.log();
    let swan_split = swan_log.lines().find_map(|l| {
        let (_, rest) = l.split_once("splitting IKE message (")?;
        rest.split_once(" into ")?
            .1
            .strip_suffix(" fragments")?
            .parse::<u32>()
            .ok()
    });
    let swan_reassembled = swan_log
        .lines()
        .any(|l| l.contains("reassembled fragmented IKE message"));
    assert!(
        swan_split.is_some_and(|n| n >= 2) && swan_reassembled,
        "charon: split into {swan_split:?} fragments, reassembled: {swan_reassembled}\n{}",
        lab.logs()
    );
    eprintln!(
        "IKE_AUTH: xrsecd sent {sent:?} fragments, reassembled {received:?}; charon split into {swan_split:?}"
    );
}

/// Pings cross both ways through the tunnel.
fn check_traffic(lab: &Lab) {
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
}
