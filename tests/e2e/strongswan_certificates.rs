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

use std::time::Duration;

use xrsec_control::{IkeSa, TunnelState};
use xrsec_e2e::swan_common::{
    check_auth_and_identities, check_pings, first_attempt_refused, one_charon_sa, one_xrsecd_sa,
    spi_rows, Initiator, Setup, SwanLab, XR_INNER,
};
use xrsec_e2e::{make_certificates, values_of, with_certificates};
use xrsec_lab::{router_config, LabDir, SwanAuth, SwanSa, TopologyConfig, XrSuite};

/// The underlay MTU, set on every veth: below a 4096-bit IKE_AUTH.
const PATH_MTU: u32 = 1280;
/// Every key, the CA's included.
const RSA_BITS: u32 = 4096;
/// Generous: a debug build of xrsecd signs with a 4096-bit key slowly.
const SETTLE: Duration = Duration::from_secs(60);

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

fn start(initiator: Initiator, signatures: Signatures) -> SwanLab {
    let setup = Setup::new(
        TopologyConfig::direct().with_mtu(PATH_MTU),
        initiator,
        SETTLE,
    );
    let (swan_addr, xr_addr) = (setup.swan_addr(), setup.xr_addr());
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

    let mut swan_config =
        setup.swan_config("aes256-sha256-prfsha256-ecp384", "aes256-sha256-ecp256");
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
    let config = with_certificates(
        &router_config(xr_addr, swan_addr, XR_INNER, &XrSuite::seed()),
        c,
        "xrsec",
    );
    let lab = setup.launch(swan_config, &config, Some(certs));
    if initiator == Initiator::Charon {
        lab.wait_for("xrsecd's first attempt refused", || {
            first_attempt_refused(&lab.xrsecd.status().map_err(|e| e.to_string())?)
        });
        lab.initiate_charon();
    }
    lab
}

/// Waits until each end has exactly one IKE SA, established, with its Child
/// SA installed, in the roles arranged.
fn settled(lab: &SwanLab, initiator: Initiator) -> (SwanSa, IkeSa) {
    lab.wait_for("one SA on each end, xrsecd's tunnel up", || {
        let s = lab.xrsecd.status().map_err(|e| e.to_string())?;
        if s.tunnels[0].state != TunnelState::Up {
            return Err(format!(
                "xrsecd's tunnel {:?}, last error {:?}",
                s.tunnels[0].state, s.tunnels[0].last_error
            ));
        }
        let swan = one_charon_sa(&lab.list_sas())?;
        let xr = one_xrsecd_sa(&s)?;
        initiator.check_roles(&xr, &swan)?;
        Ok((swan, xr))
    })
}

/// `show ikev2 session detail` names the SPIs charon lists and RSA both
/// ways; the identities are the addresses the certificates carry.
fn check_spis_and_auth(lab: &SwanLab, initiator: Initiator, swan: &SwanSa, xr: &IkeSa) {
    let detail = lab.xrsec(&["show", "ikev2", "session", "detail"]);
    let auth = [("Authentication(Sign/Verify)", "RSA/RSA".to_string())];
    for (label, value) in auth.into_iter().chain(spi_rows(initiator, swan)) {
        assert_eq!(
            values_of(&detail, label),
            [value.as_str()],
            "`{label}` in show ikev2 session detail:\n{detail}\n{}",
            lab.logs()
        );
    }
    check_auth_and_identities(lab, xr, swan, "RSA");
}

/// charon checked xrsecd's AUTH and made its own with the scheme the case
/// is about.
fn check_signatures(lab: &SwanLab, signatures: Signatures) {
    let log = lab.charon.log();
    let name = signatures.charon_name();
    let (swan_addr, xr_addr) = lab.addresses();
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
fn check_fragmented_ike_auth(lab: &SwanLab) {
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
fn check_traffic(lab: &SwanLab) {
    check_pings(lab);
}
