//! X.509 RSA-signature authentication (RFC 7296 2.15 and 3.6-3.8, RFC 7427)
//! between two endpoints in the simulator: chains made at run time with
//! rcgen from xrsec-pki's committed test keys (RSA key generation is too
//! slow for tests), and strongSwan's 4096-bit fixtures for a message large
//! enough to need IKE fragmentation (RFC 7383).
//!
//! Dates: the test CAs are valid 2025-01-01..2035-01-01, the end entities
//! 2025-01-01..2030-01-01, and "now" is 2026-06-01 unless a test says
//! otherwise; strongSwan's chain starts on 2026-11-22.

mod sim;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sim::*;
use xrsec_ike::xrsec_pki::{self, Certificate, TrustAnchor};
use xrsec_ike::{EndpointOptions, LocalAuth, RemoteAuth, SessionInfo, TunnelConfig};

const PSK: &[u8] = b"certificate tests psk";

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../xrsec-pki/tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An rcgen key pair from a committed PKCS#8 key, parsed once per name.
fn rcgen_key(name: &'static str) -> &'static KeyPair {
    static KEYS: OnceLock<Mutex<Vec<(&'static str, &'static KeyPair)>>> = OnceLock::new();
    let mut keys = KEYS.get_or_init(Default::default).lock().unwrap();
    if let Some((_, k)) = keys.iter().find(|(n, _)| *n == name) {
        return k;
    }
    let pem = String::from_utf8(data(name)).unwrap();
    let key: &'static KeyPair = Box::leak(Box::new(KeyPair::from_pem(&pem).unwrap()));
    keys.push((name, key));
    key
}

fn at(year: i32, month: u8, day: u8) -> SystemTime {
    let t = rcgen::date_time_ymd(year, month, day);
    UNIX_EPOCH + Duration::from_secs(t.unix_timestamp() as u64)
}

fn now() -> SystemTime {
    at(2026, 6, 1)
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "xrsec ike test");
    dn.push(DnType::CommonName, cn);
    dn
}

struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, &'static KeyPair>,
}

impl Ca {
    fn anchor(&self) -> RemoteAuth {
        RemoteAuth::Certificate {
            trust_anchor: Arc::new(TrustAnchor::from_der(&self.der).unwrap()),
        }
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2035, 1, 1);
    p
}

fn root(cn: &str, key: &'static str) -> Ca {
    let params = ca_params(cn);
    let der = params.self_signed(rcgen_key(key)).unwrap().der().to_vec();
    Ca {
        der,
        issuer: Issuer::new(params, rcgen_key(key)),
    }
}

/// "CN=ike test CA" from ca.key.
fn test_ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| root("ike test CA", "ca.key"))
}

/// "CN=ike other CA" from ca2.key: trusted by nobody here.
fn other_ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| root("ike other CA", "ca2.key"))
}

/// "CN=ike intermediate" from intermediate.key, signed by [`test_ca`].
fn intermediate() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let params = ca_params("ike intermediate");
        let der = params
            .signed_by(rcgen_key("intermediate.key"), &test_ca().issuer)
            .unwrap()
            .der()
            .to_vec();
        Ca {
            der,
            issuer: Issuer::new(params, rcgen_key("intermediate.key")),
        }
    })
}

/// An end-entity certificate for `san` (an IP address), valid
/// 2025-01-01..2030-01-01, for the key in peer-pkcs8.key.
fn end_entity(san: &str, ca: &Ca) -> Vec<u8> {
    let mut p = CertificateParams::new(vec![san.to_string()]).unwrap();
    p.distinguished_name = dn(san);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2030, 1, 1);
    p.signed_by(rcgen_key("peer-pkcs8.key"), &ca.issuer)
        .unwrap()
        .der()
        .to_vec()
}

fn peer_key() -> Arc<xrsec_pki::PrivateKey> {
    static KEY: OnceLock<Arc<xrsec_pki::PrivateKey>> = OnceLock::new();
    KEY.get_or_init(|| {
        Arc::new(xrsec_pki::parse_private_key("peer-pkcs8.key", &data("peer-pkcs8.key")).unwrap())
    })
    .clone()
}

/// Signs with peer-pkcs8.key and sends `chain` (DER, end entity first).
fn signing(chain: &[&[u8]]) -> LocalAuth {
    LocalAuth::Certificate {
        key: peer_key(),
        chain: chain
            .iter()
            .map(|der| Certificate::from_der(der).unwrap())
            .collect(),
    }
}

/// A with 10.99.0.1's certificate from the test CA, B with 10.99.0.2's
/// through the intermediate; both trust the test CA.
fn rsa_pair() -> (TunnelConfig, TunnelConfig) {
    let (mut a, mut b) = tunnel_pair(PSK);
    a.local_auth = signing(&[&end_entity("10.99.0.1", test_ca())]);
    a.remote_auth = test_ca().anchor();
    b.local_auth = signing(&[
        &end_entity("10.99.0.2", intermediate()),
        &intermediate().der,
    ]);
    b.remote_auth = test_ca().anchor();
    (a, b)
}

fn session(peer: &Peer) -> SessionInfo {
    let sessions = peer.ep.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    sessions.into_iter().next().unwrap()
}

fn logs(peer: &mut Peer) -> Vec<String> {
    std::iter::from_fn(|| peer.ep.poll_log())
        .map(|l| l.text)
        .collect()
}

fn run(a: TunnelConfig, b: TunnelConfig, oa: EndpointOptions, ob: EndpointOptions) -> Sim {
    run_at(a, b, oa, ob, Some(now()), Some(now()))
}

fn run_at(
    a: TunnelConfig,
    b: TunnelConfig,
    oa: EndpointOptions,
    ob: EndpointOptions,
    time_a: Option<SystemTime>,
    time_b: Option<SystemTime>,
) -> Sim {
    let mut sim = Sim::with_options(vec![a], vec![b], 7, oa, ob);
    if let Some(t) = time_a {
        sim.a.ep.set_system_time(t);
    }
    if let Some(t) = time_b {
        sim.b.ep.set_system_time(t);
    }
    sim.handshake();
    sim
}

fn assert_up(sim: &Sim) {
    assert_eq!(sim.a.ike_up().len(), 1, "A: {:?}", sim.a.failures());
    assert_eq!(sim.b.ike_up().len(), 1, "B: {:?}", sim.b.failures());
    assert_eq!(sim.a.child_sas().len(), 1);
    assert_eq!(sim.b.child_sas().len(), 1);
}

/// B refuses A's IKE_AUTH: B reports `reason`, A hears AUTHENTICATION_FAILED,
/// and no IKE SA comes up.
fn assert_b_refuses(mut sim: Sim, reason: &str) {
    assert!(sim.a.ike_up().is_empty() && sim.b.ike_up().is_empty());
    let b = sim.b.failures();
    assert!(
        b.iter()
            .any(|f| f.starts_with("authentication failed") && f.contains(reason)),
        "B: {b:?}"
    );
    let a = sim.a.failures();
    assert!(
        a.iter().any(|f| f.contains("rejected our AUTH")),
        "A: {a:?}"
    );
    let sent_by_b = logs(&mut sim.b).join("\n");
    assert!(
        sent_by_b
            .lines()
            .any(|l| l.starts_with("sent IKE_AUTH response") && l.contains("N(AUTH_FAILED)")),
        "{sent_by_b}"
    );
}

#[test]
fn rsa_signatures_both_ways_establish_the_sa_and_both_sides_show_rsa() {
    let (a, b) = rsa_pair();
    let mut sim = run(a, b, opts(), opts());
    assert_up(&sim);
    assert_same_keys(&sim);
    for peer in [&sim.a, &sim.b] {
        let s = session(peer);
        assert_eq!((s.local_auth, s.remote_auth), ("RSA", "RSA"));
    }
    let a_log = logs(&mut sim.a).join("\n");
    let b_log = logs(&mut sim.b).join("\n");
    // RFC 7427 4: both announce their hashes in IKE_SA_INIT, so both sign
    // with method 14 (RSA PKCS#1 v1.5 with SHA2-256, our first choice).
    assert!(
        a_log
            .lines()
            .any(|l| l.starts_with("sent IKE_SA_INIT request") && l.contains("N(HASH_ALG)")),
        "{a_log}"
    );
    assert!(b_log.contains("authenticated by certificate `"), "{b_log}");
    assert!(b_log.contains("AUTH method 14"), "{b_log}");
    assert!(a_log.contains("AUTH method 14"), "{a_log}");
    // RFC 7296 3.7: the responder's CERTREQ is in IKE_SA_INIT, the
    // initiator's in IKE_AUTH, next to its CERT.
    assert!(
        b_log
            .lines()
            .any(|l| l.contains("sent") && l.contains("IKE_SA_INIT") && l.contains("CERTREQ")),
        "{b_log}"
    );
    assert!(
        a_log
            .lines()
            .any(|l| l.contains("IKE_AUTH") && l.contains("IDi CERT CERTREQ")),
        "{a_log}"
    );
    // B sends its end entity and its intermediate.
    assert!(
        a_log
            .lines()
            .any(|l| l.contains("IKE_AUTH") && l.contains("IDr CERT CERT AUTH")),
        "{a_log}"
    );
}

#[test]
fn psk_one_way_and_rsa_the_other_establishes_and_shows_each_direction() {
    let (mut a, mut b) = tunnel_pair(PSK);
    // A signs, B uses its pre-shared key.
    a.local_auth = signing(&[&end_entity("10.99.0.1", test_ca())]);
    b.remote_auth = test_ca().anchor();
    let sim = run(a, b, opts(), opts());
    assert_up(&sim);
    let sa = session(&sim.a);
    assert_eq!((sa.local_auth, sa.remote_auth), ("RSA", "PSK"));
    let sb = session(&sim.b);
    assert_eq!((sb.local_auth, sb.remote_auth), ("PSK", "RSA"));
}

#[test]
fn a_peer_that_sends_no_signature_hash_algorithms_gets_method_1() {
    let (a, b) = rsa_pair();
    let ob = EndpointOptions {
        signature_hash_algorithms: false,
        ..opts()
    };
    let mut sim = run(a, b, opts(), ob);
    assert_up(&sim);
    // RFC 7427 4: without B's list A falls back to RSA PKCS#1 SHA-1
    // (method 1); B heard A's list and uses method 14.
    let b_log = logs(&mut sim.b).join("\n");
    assert!(
        b_log.contains("(AUTH method 1, sha1WithRSAEncryption)"),
        "{b_log}"
    );
    assert!(
        !b_log
            .lines()
            .any(|l| l.starts_with("sent IKE_SA_INIT") && l.contains("N(HASH_ALG)")),
        "{b_log}"
    );
    let a_log = logs(&mut sim.a).join("\n");
    assert!(a_log.contains("AUTH method 14"), "{a_log}");
}

#[test]
fn an_expired_certificate_is_refused_with_authentication_failed() {
    let (a, b) = rsa_pair();
    let sim = run_at(a, b, opts(), opts(), Some(now()), Some(at(2031, 1, 1)));
    assert_b_refuses(
        sim,
        "certificate `CN=10.99.0.1,O=xrsec ike test` expired on 2030-01-01",
    );
}

#[test]
fn a_certificate_not_yet_valid_is_refused_with_authentication_failed() {
    let (a, b) = rsa_pair();
    let sim = run_at(a, b, opts(), opts(), Some(now()), Some(at(2024, 6, 1)));
    assert_b_refuses(sim, "is not yet valid until");
}

#[test]
fn a_chain_from_another_ca_is_refused_with_authentication_failed() {
    let (mut a, b) = rsa_pair();
    a.local_auth = signing(&[&end_entity("10.99.0.1", other_ca())]);
    let sim = run(a, b, opts(), opts());
    assert_b_refuses(sim, "not signed by the trusted CA");
}

#[test]
fn an_identity_the_certificate_does_not_name_is_refused_with_authentication_failed() {
    let (mut a, b) = rsa_pair();
    a.local_auth = signing(&[&end_entity("10.99.0.9", test_ca())]);
    let sim = run(a, b, opts(), opts());
    assert_b_refuses(
        sim,
        "identity 10.99.0.1 not in the certificate's subjectAltName",
    );
}

/// A certificate from intermediate.key with basicConstraints CA:FALSE,
/// issued by [`test_ca`], that nonetheless signs an end entity.
fn ca_false_intermediate() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let mut params = ca_params("ike leaf posing as a CA");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let der = params
            .signed_by(rcgen_key("intermediate.key"), &test_ca().issuer)
            .unwrap()
            .der()
            .to_vec();
        Ca {
            der,
            issuer: Issuer::new(params, rcgen_key("intermediate.key")),
        }
    })
}

#[test]
fn a_chain_through_a_ca_false_intermediate_is_refused_with_authentication_failed() {
    let (mut a, b) = rsa_pair();
    // RFC 5280 6.1.4 (k): the end entity is signed by a certificate that is
    // not a CA; its signature and dates are otherwise good.
    let fake = ca_false_intermediate();
    a.local_auth = signing(&[&end_entity("10.99.0.1", fake), &fake.der]);
    let sim = run(a, b, opts(), opts());
    assert_b_refuses(
        sim,
        "CA:false certificate `CN=ike leaf posing as a CA,O=xrsec ike test` used as an issuer",
    );
}

#[test]
fn an_auth_signed_with_another_key_than_the_certificates_is_refused() {
    let (mut a, b) = rsa_pair();
    // A sends a good chain for peer-pkcs8.key but signs its AUTH payload
    // with intermediate.key: the signature, not the chain, is wrong, as if
    // it had been tampered with (an altered byte in transit would fail the
    // SK payload's ICV first and be dropped without a word, RFC 7296 2.21.2).
    let wrong_key =
        xrsec_pki::parse_private_key("intermediate.key", &data("intermediate.key")).unwrap();
    a.local_auth = LocalAuth::Certificate {
        key: Arc::new(wrong_key),
        chain: vec![Certificate::from_der(&end_entity("10.99.0.1", test_ca())).unwrap()],
    };
    let sim = run(a, b, opts(), opts());
    assert_b_refuses(
        sim,
        "its AUTH signature does not verify: signature does not verify",
    );
}

#[test]
fn without_a_wall_clock_time_every_certificate_is_refused() {
    let (a, b) = rsa_pair();
    let sim = run_at(a, b, opts(), opts(), Some(now()), None);
    assert_b_refuses(sim, "no wall-clock time given");
}

#[test]
fn a_pre_shared_key_auth_is_refused_where_a_signature_is_expected() {
    let (a, mut b) = tunnel_pair(PSK);
    b.remote_auth = test_ca().anchor();
    let sim = run(a, b, opts(), opts());
    assert_b_refuses(sim, "we expect a signature (1 or 14)");
}

#[test]
fn a_4096_bit_chain_makes_ike_auth_fragment_at_the_default_size() {
    // strongSwan's fixtures: CN=10.99.0.2 with SAN 10.99.0.2, valid from
    // 2026-11-22 for five years, under "CN=xrsec lab CA".
    let swan_ca = Arc::new(TrustAnchor::from_der(&data("swan-ca.der")).unwrap());
    let (mut a, mut b) = tunnel_pair(PSK);
    a.remote_auth = RemoteAuth::Certificate {
        trust_anchor: swan_ca,
    };
    b.local_auth = LocalAuth::Certificate {
        key: Arc::new(
            xrsec_pki::parse_private_key("swan-peer.key", &data("swan-peer.key")).unwrap(),
        ),
        chain: xrsec_pki::parse_certificates("swan-peer.crt", &data("swan-peer.crt")).unwrap(),
    };
    let t = at(2027, 6, 1);
    let sim = run_at(a, b, opts(), opts(), Some(t), Some(t));
    assert_up(&sim);
    assert_eq!(session(&sim.a).remote_auth, "RSA");
    // B's IKE_AUTH response (exchange type 35 at offset 18) went as SKF
    // payloads (53, the header's Next Payload at offset 16), each datagram
    // within the default 1280 bytes with IP and UDP headers.
    let fragments: Vec<&Vec<u8>> = sim
        .b
        .sent
        .iter()
        .map(|(_, _, d)| d)
        .filter(|d| d.len() > 18 && d[18] == 35)
        .collect();
    assert!(fragments.len() >= 2, "{} datagrams", fragments.len());
    assert!(fragments.iter().all(|d| d[16] == 53));
    assert!(fragments.iter().all(|d| d.len() + 28 <= 1280));
}

#[test]
fn the_initiator_refuses_a_responder_chain_from_another_ca() {
    let (a, mut b) = rsa_pair();
    b.local_auth = signing(&[&end_entity("10.99.0.2", other_ca())]);
    let mut sim = run(a, b, opts(), opts());
    assert!(sim.a.ike_up().is_empty(), "{:?}", sim.a.failures());
    let a = sim.a.failures();
    assert!(
        a.iter().any(|f| f.starts_with("authentication failed")
            && f.contains("10.99.0.2")
            && f.contains("not signed by the trusted CA `CN=ike test CA,O=xrsec ike test`")),
        "A: {a:?}"
    );
    // RFC 7296 2.21.2: the initiator tells the responder in an
    // INFORMATIONAL exchange.
    let a_log = logs(&mut sim.a).join("\n");
    assert!(
        a_log
            .lines()
            .any(|l| l.starts_with("sent INFORMATIONAL") && l.contains("N(AUTH_FAILED)")),
        "{a_log}"
    );
}

#[test]
fn the_tunnel_debug_names_certificates_but_never_the_key() {
    let (a, _) = rsa_pair();
    let text = format!("{a:?}");
    assert!(
        text.contains("local_auth: Certificate { chain: [\"CN=10.99.0.1,O=xrsec ike test\"], .. }"),
        "{text}"
    );
    assert!(
        text.contains(
            "remote_auth: Certificate { trust_anchor: \"CN=ike test CA,O=xrsec ike test\" }"
        ),
        "{text}"
    );
    // The private key is not in it at all, not even by name.
    assert!(!text.contains("PrivateKey"), "{text}");
}
