//! Shared by the integration tests: fixture paths, rcgen key pairs made from
//! the committed keys (rcgen with ring cannot generate RSA keys, and the
//! `rsa` crate took 5.6-9.4 s per RSA-2048 key in a debug build, measured
//! 2026-11-22), and a small certificate factory with fixed dates.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn read(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

/// An rcgen key pair from a committed PKCS#8 RSA key, parsed once.
pub fn rcgen_key(name: &'static str) -> &'static KeyPair {
    static KEYS: OnceLock<std::sync::Mutex<Vec<(&'static str, &'static KeyPair)>>> =
        OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    let mut keys = keys.lock().unwrap();
    if let Some((_, k)) = keys.iter().find(|(n, _)| *n == name) {
        return k;
    }
    let pem = String::from_utf8(read(name)).unwrap();
    let key: &'static KeyPair = Box::leak(Box::new(KeyPair::from_pem(&pem).unwrap()));
    keys.push((name, key));
    key
}

/// 2026-06-01 00:00:00 UTC: "now" for every chain test.
pub fn now() -> SystemTime {
    at(2026, 6, 1)
}

pub fn at(year: i32, month: u8, day: u8) -> SystemTime {
    let t = rcgen::date_time_ymd(year, month, day);
    UNIX_EPOCH + Duration::from_secs(t.unix_timestamp() as u64)
}

pub fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "xrsec test");
    dn.push(DnType::CommonName, cn);
    dn
}

/// CA parameters valid 2025-01-01 .. 2035-01-01, CA:TRUE, keyCertSign.
pub fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = name(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2035, 1, 1);
    p
}

/// End-entity parameters for 10.99.0.2 / r2.xrsec.lab, valid 2025..2030,
/// digitalSignature.
pub fn peer_params() -> CertificateParams {
    let mut p =
        CertificateParams::new(vec!["10.99.0.2".to_string(), "r2.xrsec.lab".to_string()]).unwrap();
    p.distinguished_name = name("r2.xrsec.lab");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2030, 1, 1);
    p
}

/// A self-signed CA certificate and the issuer to sign with.
pub struct Ca {
    pub der: Vec<u8>,
    pub issuer: Issuer<'static, &'static KeyPair>,
}

pub fn make_ca(params: CertificateParams, key: &'static str) -> Ca {
    let key = rcgen_key(key);
    let cert = params.self_signed(key).unwrap();
    Ca {
        der: cert.der().to_vec(),
        issuer: Issuer::new(params, key),
    }
}

/// The test CA, "CN=xrsec test CA", made once.
pub fn test_ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| make_ca(ca_params("xrsec test CA"), "ca.key"))
}

/// Signs `params` for `subject_key` with `ca`.
pub fn issue(params: &CertificateParams, subject_key: &'static str, ca: &Ca) -> Vec<u8> {
    params
        .signed_by(rcgen_key(subject_key), &ca.issuer)
        .unwrap()
        .der()
        .to_vec()
}

/// An intermediate CA signed by `parent`.
pub fn make_intermediate(params: CertificateParams, key: &'static str, parent: &Ca) -> Ca {
    let der = issue(&params, key, parent);
    Ca {
        der,
        issuer: Issuer::new(params, rcgen_key(key)),
    }
}
