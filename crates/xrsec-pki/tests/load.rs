//! The loaders against files written by `openssl` and strongSwan's `pki`,
//! and the refusals an operator sees, each naming the file.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{data, read};
use xrsec_pki::{
    load_certificates, load_private_key, parse_certificates, parse_private_key, KeyAlgorithm,
    LoadError,
};

/// Copies a fixture into a fresh directory with `mode` (git keeps no modes).
fn key_file(name: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::copy(data(name), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, path)
}

fn load(name: &str) -> Result<xrsec_pki::PrivateKey, LoadError> {
    let (_dir, path) = key_file(name, 0o600);
    load_private_key(&path)
}

#[test]
fn pkcs1_and_pkcs8_forms_of_one_key_both_load() {
    let pkcs1 = load("peer-pkcs1.key").unwrap();
    let pkcs8 = load("peer-pkcs8.key").unwrap();
    assert_eq!(pkcs1.algorithm(), KeyAlgorithm::Rsa { bits: 2048 });
    assert_eq!(pkcs1.public_key(), pkcs8.public_key());
}

#[test]
fn strongswan_pki_4096_bit_key_loads_and_matches_its_certificate() {
    let key = load("swan-peer.key").unwrap();
    assert_eq!(key.algorithm(), KeyAlgorithm::Rsa { bits: 4096 });
    let cert = load_certificates(&data("swan-peer.crt")).unwrap().remove(0);
    assert_eq!(cert.public_key().unwrap(), &key.public_key());
    // And not the CA's.
    let ca = load_certificates(&data("swan-ca.crt")).unwrap().remove(0);
    assert_ne!(ca.public_key().unwrap(), &key.public_key());
}

#[test]
fn ec_keys_load_from_sec1_with_parameters_block_and_from_pkcs8() {
    assert_eq!(
        load("ec-p256-sec1.key").unwrap().algorithm(),
        KeyAlgorithm::EcdsaP256
    );
    assert_eq!(
        load("ec-p384-pkcs8.key").unwrap().algorithm(),
        KeyAlgorithm::EcdsaP384
    );
}

#[test]
fn key_readable_by_others_is_refused_with_the_chmod_that_fixes_it() {
    let (_dir, path) = key_file("peer-pkcs8.key", 0o644);
    let err = load_private_key(&path).unwrap_err();
    assert!(matches!(
        err,
        LoadError::InsecurePermissions { mode: 0o644, .. }
    ));
    let p = path.display();
    assert_eq!(
        err.to_string(),
        format!(
            "private key file {p} has mode 0644: it must not be readable by group or others; \
             fix it with `chmod 600 {p}`"
        )
    );
}

#[test]
fn key_permission_check_covers_group_and_others_bits_only() {
    for mode in [0o640, 0o604, 0o660, 0o602, 0o610] {
        let (_dir, path) = key_file("peer-pkcs8.key", mode);
        assert!(
            matches!(
                load_private_key(&path),
                Err(LoadError::InsecurePermissions { .. })
            ),
            "{mode:o}"
        );
    }
    for mode in [0o600, 0o400] {
        let (_dir, path) = key_file("peer-pkcs8.key", mode);
        load_private_key(&path).unwrap();
    }
}

#[test]
fn rsa_1024_key_is_refused_as_too_small() {
    let (_dir, path) = key_file("rsa1024-pkcs1.key", 0o600);
    let err = load_private_key(&path).unwrap_err();
    assert!(matches!(err, LoadError::KeyTooSmall { bits: 1024, .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: RSA key of 1024 bits is too small (at least 2048 bits are required)",
            path.display()
        )
    );
}

#[test]
fn garbage_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.pem");
    std::fs::write(&path, b"this is not a key\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = load_private_key(&path).unwrap_err();
    assert!(matches!(err, LoadError::NotPem { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a PEM file (no \"-----BEGIN\" line) and not DER either",
            path.display()
        )
    );
    let err = load_certificates(&path).unwrap_err();
    assert!(err.to_string().starts_with(&path.display().to_string()));

    // Binary junk that starts like DER is tried as DER, then refused.
    let err = parse_private_key("junk.der", b"\x30\x03\x02\x01\x07").unwrap_err();
    assert_eq!(
        err.to_string(),
        "junk.der: invalid private key: neither PEM nor a DER PKCS#8, PKCS#1 or SEC1 key"
    );
}

#[test]
fn encrypted_keys_are_refused_as_such() {
    for name in ["encrypted-pkcs8.key", "encrypted-legacy.key"] {
        let err = load(name).unwrap_err();
        assert!(
            matches!(err, LoadError::EncryptedKey { .. }),
            "{name}: {err}"
        );
        assert!(err
            .to_string()
            .contains("encrypted private keys are not supported"));
    }
}

#[test]
fn certificate_given_as_key_names_the_labels_found() {
    let err = parse_private_key("r1.crt", &read("swan-ca.crt")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "r1.crt: expected a PEM block \"PRIVATE KEY\", found \"CERTIFICATE\""
    );
    let err = parse_certificates("r1.key", &read("peer-pkcs8.key")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "r1.key: expected a PEM block \"CERTIFICATE\", found \"PRIVATE KEY\""
    );
}

#[test]
fn ed25519_key_is_refused_as_unsupported() {
    let err = load("ed25519.key").unwrap_err();
    assert!(matches!(err, LoadError::UnsupportedKey { .. }));
    assert!(err.to_string().contains("Ed25519 (1.3.101.112)"), "{err}");
}

#[test]
fn missing_file_names_the_path() {
    let err = load_private_key(Path::new("/nonexistent/r1.key")).unwrap_err();
    assert!(matches!(err, LoadError::Io { .. }));
    assert!(err
        .to_string()
        .starts_with("cannot read /nonexistent/r1.key: "));
}

#[test]
fn chain_file_loads_every_certificate_in_order() {
    let chain = [read("swan-peer.crt"), read("swan-ca.crt")].concat();
    let certs = parse_certificates("chain.pem", &chain).unwrap();
    let subjects: Vec<&str> = certs.iter().map(|c| c.subject()).collect();
    assert_eq!(
        subjects,
        [
            "CN=10.99.0.2,O=xrsec lab,C=CH",
            "CN=xrsec lab CA,O=xrsec lab,C=CH"
        ]
    );
    assert_eq!(certs[0].issuer(), certs[1].subject());
}

#[test]
fn der_certificate_loads() {
    let certs = load_certificates(&data("swan-ca.der")).unwrap();
    assert_eq!(certs.len(), 1);
    assert!(certs[0].is_ca());
    assert_eq!(certs[0].der(), read("swan-ca.der"));
}

#[test]
fn der_private_key_loads() {
    use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    let pem = String::from_utf8(read("peer-pkcs8.key")).unwrap();
    let der = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
        .unwrap()
        .to_pkcs8_der()
        .unwrap();
    let key = parse_private_key("key.der", der.as_bytes()).unwrap();
    assert_eq!(
        key.public_key(),
        load("peer-pkcs1.key").unwrap().public_key()
    );
}

#[test]
fn truncated_pem_and_corrupt_certificate_are_refused() {
    let pem = read("swan-ca.crt");
    let cut = &pem[..pem.len() / 2];
    let err = parse_certificates("ca.pem", cut).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ca.pem: malformed PEM: \"BEGIN CERTIFICATE\" has no END line"
    );

    // A well-formed PEM block around a certificate cut short.
    let der = read("swan-ca.der");
    let body = base64_lines(&der[..der.len() - 10]);
    let text = format!(
        "{}-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n",
        String::from_utf8(read("swan-peer.crt")).unwrap()
    );
    let err = parse_certificates("chain.pem", text.as_bytes()).unwrap_err();
    assert!(
        matches!(err, LoadError::BadCertificate { index: 2, .. }),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with("chain.pem: certificate #2 is invalid: "));
}

fn base64_lines(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.push('\n');
    out
}
