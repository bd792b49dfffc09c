//! Chain verification and identity checks with certificates made by rcgen
//! (and, at the end, by strongSwan's `pki`). Each rejection asserts its own
//! error variant and the sentence an operator would read.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CustomExtension, IsCa, KeyUsagePurpose, PublicKeyData};
use sha1::{Digest, Sha1};
use xrsec_pki::{
    load_certificates, parse_private_key, verify_chain, AltName, CertError, Certificate, Identity,
    TrustAnchor,
};

fn anchor() -> TrustAnchor {
    TrustAnchor::from_der(&test_ca().der).unwrap()
}

fn fqdn(name: &str) -> Identity {
    Identity::Fqdn(name.to_string())
}

#[test]
fn ca_to_end_entity_chain_verifies() {
    let peer = issue(&peer_params(), "peer-pkcs8.key", test_ca());
    let verified = verify_chain(&peer, &[], &anchor(), now()).unwrap();

    assert_eq!(verified.subject(), "CN=r2.xrsec.lab,O=xrsec test");
    assert_eq!(
        verified.chain(),
        [
            "CN=r2.xrsec.lab,O=xrsec test",
            "CN=xrsec test CA,O=xrsec test"
        ]
    );
    let key = parse_private_key("peer", &read("peer-pkcs8.key")).unwrap();
    assert_eq!(verified.public_key(), &key.public_key());
    assert_eq!(
        verified.certificate().alt_names(),
        [
            AltName::Ip(Ipv4Addr::new(10, 99, 0, 2).into()),
            AltName::Dns("r2.xrsec.lab".into())
        ]
    );
}

#[test]
fn ca_to_intermediate_to_end_entity_chain_verifies_whatever_the_order_sent() {
    let intermediate = make_intermediate(ca_params("xrsec sub CA"), "intermediate.key", test_ca());
    let peer = issue(&peer_params(), "peer-pkcs8.key", &intermediate);
    // An unrelated CA certificate sent along is ignored.
    let unrelated = make_ca(ca_params("unrelated CA"), "ca2.key");

    for intermediates in [
        vec![intermediate.der.as_slice()],
        vec![unrelated.der.as_slice(), intermediate.der.as_slice()],
    ] {
        let verified = verify_chain(&peer, &intermediates, &anchor(), now()).unwrap();
        assert_eq!(
            verified.chain(),
            [
                "CN=r2.xrsec.lab,O=xrsec test",
                "CN=xrsec sub CA,O=xrsec test",
                "CN=xrsec test CA,O=xrsec test"
            ]
        );
    }
}

#[test]
fn rejects_expired_end_entity() {
    let mut params = peer_params();
    params.not_after = rcgen::date_time_ymd(2026, 1, 1);
    let peer = issue(&params, "peer-pkcs8.key", test_ca());
    let err = verify_chain(&peer, &[], &anchor(), now()).unwrap_err();
    assert!(matches!(err, CertError::Expired { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "certificate `CN=r2.xrsec.lab,O=xrsec test` expired on 2026-01-01 00:00:00 UTC"
    );
}

#[test]
fn rejects_end_entity_not_yet_valid() {
    let mut params = peer_params();
    params.not_before = rcgen::date_time_ymd(2027, 3, 1);
    let peer = issue(&params, "peer-pkcs8.key", test_ca());
    let err = verify_chain(&peer, &[], &anchor(), now()).unwrap_err();
    assert!(matches!(err, CertError::NotYetValid { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "certificate `CN=r2.xrsec.lab,O=xrsec test` is not yet valid until 2027-03-01 00:00:00 UTC"
    );
}

#[test]
fn validity_bounds_are_inclusive() {
    let mut params = peer_params();
    params.not_before = rcgen::date_time_ymd(2026, 6, 1);
    params.not_after = rcgen::date_time_ymd(2026, 6, 2);
    let peer = issue(&params, "peer-pkcs8.key", test_ca());
    verify_chain(&peer, &[], &anchor(), at(2026, 6, 1)).unwrap();
    verify_chain(&peer, &[], &anchor(), at(2026, 6, 2)).unwrap();
    let one_second_late = at(2026, 6, 2) + Duration::from_secs(1);
    assert!(matches!(
        verify_chain(&peer, &[], &anchor(), one_second_late),
        Err(CertError::Expired { .. })
    ));
}

#[test]
fn rejects_expired_intermediate_naming_it() {
    let mut params = ca_params("xrsec sub CA");
    params.not_after = rcgen::date_time_ymd(2026, 2, 1);
    let intermediate = make_intermediate(params, "intermediate.key", test_ca());
    let peer = issue(&peer_params(), "peer-pkcs8.key", &intermediate);
    let err = verify_chain(&peer, &[intermediate.der.as_slice()], &anchor(), now()).unwrap_err();
    assert_eq!(
        err,
        CertError::Expired {
            subject: "CN=xrsec sub CA,O=xrsec test".into(),
            not_after: "2026-02-01 00:00:00 UTC".into()
        }
    );
}

#[test]
fn rejects_chain_to_an_expired_trust_anchor() {
    let mut params = ca_params("old CA");
    params.not_after = rcgen::date_time_ymd(2026, 3, 1);
    let old_ca = make_ca(params, "ca2.key");
    let peer = issue(&peer_params(), "peer-pkcs8.key", &old_ca);
    let anchor = TrustAnchor::from_der(&old_ca.der).unwrap();
    let err = verify_chain(&peer, &[], &anchor, now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "certificate `CN=old CA,O=xrsec test` expired on 2026-03-01 00:00:00 UTC"
    );
}

#[test]
fn rejects_end_entity_signed_by_another_ca() {
    let other_ca = make_ca(ca_params("other CA"), "ca2.key");
    let peer = issue(&peer_params(), "peer-pkcs8.key", &other_ca);
    let err = verify_chain(&peer, &[], &anchor(), now()).unwrap_err();
    assert!(matches!(err, CertError::UntrustedIssuer { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "certificate `CN=r2.xrsec.lab,O=xrsec test` is issued by `CN=other CA,O=xrsec test`, \
         not signed by the trusted CA `CN=xrsec test CA,O=xrsec test` nor by an intermediate \
         the peer sent"
    );
}

#[test]
fn rejects_another_ca_with_the_trusted_name_by_signature() {
    // Same subject as the trusted CA, another key: only the signature tells.
    let impostor = make_ca(ca_params("xrsec test CA"), "ca2.key");
    let peer = issue(&peer_params(), "peer-pkcs8.key", &impostor);
    let err = verify_chain(&peer, &[], &anchor(), now()).unwrap_err();
    assert!(matches!(err, CertError::BadSignature { .. }), "{err:?}");
}

#[test]
fn rejects_chain_whose_intermediate_was_not_sent() {
    let intermediate = make_intermediate(ca_params("xrsec sub CA"), "intermediate.key", test_ca());
    let peer = issue(&peer_params(), "peer-pkcs8.key", &intermediate);
    let err = verify_chain(&peer, &[], &anchor(), now()).unwrap_err();
    assert!(
        matches!(&err, CertError::UntrustedIssuer { issuer, .. } if issuer == "CN=xrsec sub CA,O=xrsec test"),
        "{err:?}"
    );
}

#[test]
fn rejects_tampered_signature() {
    let mut peer = issue(&peer_params(), "peer-pkcs8.key", test_ca());
    // The signature BIT STRING ends the certificate.
    *peer.last_mut().unwrap() ^= 0x01;
    let err = verify_chain(&peer, &[], &anchor(), now()).unwrap_err();
    assert!(matches!(err, CertError::BadSignature { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the signature on certificate `CN=r2.xrsec.lab,O=xrsec test` does not verify with the \
         public key of `CN=xrsec test CA,O=xrsec test`"
    );
}

#[test]
fn rejects_tampered_signed_content() {
    let mut peer = issue(&peer_params(), "peer-pkcs8.key", test_ca());
    // Turn the subjectAltName address 10.99.0.2 into 10.99.0.3.
    let at = peer
        .windows(6)
        .position(|w| w == [0x87, 0x04, 10, 99, 0, 2])
        .unwrap();
    peer[at + 5] = 3;
    let err = verify_chain(&peer, &[], &anchor(), now()).unwrap_err();
    assert!(matches!(err, CertError::BadSignature { .. }), "{err:?}");
}

#[test]
fn rejects_ca_false_intermediate() {
    let mut params = ca_params("not a CA");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let not_a_ca = make_intermediate(params, "intermediate.key", test_ca());
    let peer = issue(&peer_params(), "peer-pkcs8.key", &not_a_ca);
    let err = verify_chain(&peer, &[not_a_ca.der.as_slice()], &anchor(), now()).unwrap_err();
    assert!(matches!(err, CertError::NotACa { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "CA:false certificate `CN=not a CA,O=xrsec test` used as an issuer (basicConstraints \
         CA:TRUE missing)"
    );
}

#[test]
fn rejects_intermediate_without_basic_constraints() {
    let mut params = ca_params("no constraints");
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![];
    let intermediate = make_intermediate(params, "intermediate.key", test_ca());
    let peer = issue(&peer_params(), "peer-pkcs8.key", &intermediate);
    let err = verify_chain(&peer, &[intermediate.der.as_slice()], &anchor(), now()).unwrap_err();
    assert!(matches!(err, CertError::NotACa { .. }), "{err:?}");
}

#[test]
fn rejects_issuer_whose_key_usage_lacks_key_cert_sign() {
    let mut params = ca_params("CRL-only CA");
    params.key_usages = vec![KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let intermediate = make_intermediate(params, "intermediate.key", test_ca());
    let peer = issue(&peer_params(), "peer-pkcs8.key", &intermediate);
    let err = verify_chain(&peer, &[intermediate.der.as_slice()], &anchor(), now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "issuer `CN=CRL-only CA,O=xrsec test` has a keyUsage extension without keyCertSign"
    );
}

#[test]
fn rejects_end_entity_whose_key_usage_cannot_sign() {
    let mut params = peer_params();
    params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    let peer = issue(&params, "peer-pkcs8.key", test_ca());
    let err = verify_chain(&peer, &[], &anchor(), now()).unwrap_err();
    assert!(
        matches!(err, CertError::EndEntityKeyUsage { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("neither digitalSignature nor nonRepudiation"),
        "{text}"
    );

    // nonRepudiation alone is enough (RFC 4945 5.1.3.2).
    params.key_usages = vec![KeyUsagePurpose::ContentCommitment];
    let peer = issue(&params, "peer-pkcs8.key", test_ca());
    verify_chain(&peer, &[], &anchor(), now()).unwrap();
}

#[test]
fn rejects_intermediate_below_a_path_len_zero_ca() {
    let mut root = ca_params("tight CA");
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let root = make_ca(root, "ca2.key");
    let intermediate = make_intermediate(ca_params("xrsec sub CA"), "intermediate.key", &root);
    let peer = issue(&peer_params(), "peer-pkcs8.key", &intermediate);
    let anchor = TrustAnchor::from_der(&root.der).unwrap();
    let err = verify_chain(&peer, &[intermediate.der.as_slice()], &anchor, now()).unwrap_err();
    assert_eq!(
        err,
        CertError::PathLenExceeded {
            subject: "CN=tight CA,O=xrsec test".into(),
            path_len: 0,
            below: 1
        }
    );
    // Directly below it, an end entity is fine.
    let direct = issue(&peer_params(), "peer-pkcs8.key", &root);
    verify_chain(&direct, &[], &anchor, now()).unwrap();
}

#[test]
fn rejects_unknown_critical_extension() {
    let mut params = peer_params();
    let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0]);
    ext.set_criticality(true);
    params.custom_extensions = vec![ext];
    let peer = issue(&params, "peer-pkcs8.key", test_ca());
    let err = verify_chain(&peer, &[], &anchor(), now()).unwrap_err();
    assert_eq!(
        err,
        CertError::UnsupportedCriticalExtension {
            subject: "CN=r2.xrsec.lab,O=xrsec test".into(),
            oid: "1.3.6.1.4.1.99999.1".into()
        }
    );
}

#[test]
fn rejects_garbage_as_the_end_entity() {
    let err = verify_chain(b"\x30\x03\x02\x01\x00", &[], &anchor(), now()).unwrap_err();
    assert!(
        matches!(&err, CertError::Malformed { which, .. } if which == "end-entity"),
        "{err:?}"
    );
    let peer = issue(&peer_params(), "peer-pkcs8.key", test_ca());
    let err = verify_chain(&peer, &[b"junk".as_slice()], &anchor(), now()).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("the intermediate #1 certificate cannot be parsed"));
}

#[test]
fn trust_anchor_must_be_a_ca() {
    let peer = issue(&peer_params(), "peer-pkcs8.key", test_ca());
    assert!(matches!(
        TrustAnchor::from_der(&peer),
        Err(CertError::NotACa { .. })
    ));
}

#[test]
fn identity_ipv4_must_be_a_subject_alt_name_address() {
    let peer = issue(&peer_params(), "peer-pkcs8.key", test_ca());
    let verified = verify_chain(&peer, &[], &anchor(), now()).unwrap();
    verified
        .check_identity(&Identity::Ipv4(Ipv4Addr::new(10, 99, 0, 2)))
        .unwrap();
    let wrong = Identity::Ipv4(Ipv4Addr::new(10, 99, 0, 3));
    assert!(!verified.matches_identity(&wrong));
    let err = verified.check_identity(&wrong).unwrap_err();
    assert!(matches!(err, CertError::IdentityNotInCertificate { .. }));
    assert_eq!(
        err.to_string(),
        "identity 10.99.0.3 not in the certificate's subjectAltName (it has IP 10.99.0.2, DNS \
         r2.xrsec.lab)"
    );
}

#[test]
fn identity_fqdn_must_be_a_subject_alt_name_dns_name_ignoring_case() {
    let peer = issue(&peer_params(), "peer-pkcs8.key", test_ca());
    let verified = verify_chain(&peer, &[], &anchor(), now()).unwrap();
    assert!(verified.matches_identity(&fqdn("R2.XRSEC.lab")));
    let err = verified.check_identity(&fqdn("r3.xrsec.lab")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity r3.xrsec.lab not in the certificate's subjectAltName (it has IP 10.99.0.2, \
         DNS r2.xrsec.lab)"
    );
    // The FQDN is not looked for in the subject's CN.
    let mut params = peer_params();
    params.subject_alt_names.clear();
    let bare = issue(&params, "peer-pkcs8.key", test_ca());
    let verified = verify_chain(&bare, &[], &anchor(), now()).unwrap();
    assert_eq!(
        verified
            .check_identity(&fqdn("r2.xrsec.lab"))
            .unwrap_err()
            .to_string(),
        "identity r2.xrsec.lab not in the certificate's subjectAltName (it has none)"
    );
}

#[test]
fn identity_der_dn_must_equal_the_subject() {
    let peer = issue(&peer_params(), "peer-pkcs8.key", test_ca());
    let verified = verify_chain(&peer, &[], &anchor(), now()).unwrap();
    let own_dn = verified.certificate().subject_der().to_vec();
    verified
        .check_identity(&Identity::from_id_payload(9, &own_dn).unwrap())
        .unwrap();

    let ca_dn = Certificate::from_der(&test_ca().der)
        .unwrap()
        .subject_der()
        .to_vec();
    let err = verified
        .check_identity(&Identity::DerAsn1Dn(ca_dn))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity DN `CN=xrsec test CA,O=xrsec test` is not the certificate's subject \
         `CN=r2.xrsec.lab,O=xrsec test`"
    );
}

#[test]
fn certreq_hash_is_sha1_of_the_whole_subject_public_key_info() {
    let ca = anchor();
    let spki = common::rcgen_key("ca.key").subject_public_key_info();
    let expected: [u8; 20] = Sha1::digest(&spki).into();
    assert_eq!(ca.certreq_hash(), expected);

    let other = make_ca(ca_params("other CA"), "ca2.key");
    let other_hash = TrustAnchor::from_der(&other.der).unwrap().certreq_hash();
    assert!(ca.is_requested_by(&[other_hash, expected].concat()));
    assert!(!ca.is_requested_by(&other_hash));
    assert!(!ca.is_requested_by(&expected[..19]));
}

#[test]
fn ecdsa_ca_and_ecdsa_end_entity_verify() {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let ca_key: &'static rcgen::KeyPair = Box::leak(Box::new(ca_key));
    let params = ca_params("ECDSA CA");
    let ca_der = params.self_signed(ca_key).unwrap().der().to_vec();
    let issuer = rcgen::Issuer::new(params, ca_key);
    let peer_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let peer = peer_params().signed_by(&peer_key, &issuer).unwrap();

    let anchor = TrustAnchor::from_der(&ca_der).unwrap();
    let verified = verify_chain(peer.der(), &[], &anchor, now()).unwrap();
    let ours = parse_private_key("generated", peer_key.serialize_pem().as_bytes()).unwrap();
    assert_eq!(verified.public_key(), &ours.public_key());
}

// strongSwan's `pki` output: 4096-bit RSA, SHA-384 signatures, one of them
// RSASSA-PSS, the address in the subjectAltName as in the interop tests.

fn fixture_cert(name: &str) -> Certificate {
    load_certificates(&data(name)).unwrap().remove(0)
}

#[test]
fn strongswan_pki_chain_verifies_with_pkcs1_and_pss_signatures() {
    let ca = fixture_cert("swan-ca.crt");
    let peer = fixture_cert("swan-peer.crt");
    let pss_peer = fixture_cert("swan-peer-pss.crt");
    let when = peer.not_before() + Duration::from_secs(86_400);
    let anchor = TrustAnchor::new(ca).unwrap();

    let verified = verify_chain(peer.der(), &[], &anchor, when).unwrap();
    verified
        .check_identity(&Identity::Ipv4(Ipv4Addr::new(10, 99, 0, 2)))
        .unwrap();
    let verified = verify_chain(pss_peer.der(), &[], &anchor, when).unwrap();
    verified.check_identity(&fqdn("r2.xrsec.lab")).unwrap();

    // The DER self-signed CA has the same name and key: it anchors too.
    let der_anchor = TrustAnchor::from_der(&read("swan-ca.der")).unwrap();
    verify_chain(peer.der(), &[], &der_anchor, when).unwrap();
}

#[test]
fn strongswan_ca_certreq_hash_is_the_keyid_pki_prints() {
    // `pki --keyid --in swan-ca.crt`: "SHA-1 of subjectPublicKeyInfo".
    let expected = [
        0x55, 0xb3, 0x20, 0x34, 0xcd, 0xa2, 0x27, 0x23, 0xbb, 0x07, 0xf1, 0x2a, 0x01, 0x53, 0x9a,
        0x38, 0x7a, 0x90, 0x24, 0x99,
    ];
    let anchor = TrustAnchor::new(fixture_cert("swan-ca.crt")).unwrap();
    assert_eq!(anchor.certreq_hash(), expected);
}

#[test]
fn rejects_certificate_signed_with_sha1() {
    let ca = fixture_cert("sha1-ca.crt");
    let peer = fixture_cert("sha1-peer.crt");
    let when = peer.not_before() + Duration::from_secs(86_400);
    let anchor = TrustAnchor::new(ca).unwrap();
    let err = verify_chain(peer.der(), &[], &anchor, when).unwrap_err();
    assert!(
        matches!(err, CertError::UnsupportedSignatureAlgorithm { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "certificate `CN=sha1 peer,O=xrsec test`: signed with sha1WithRSAEncryption, and SHA-1 \
         is not accepted in certificate signatures (collisions are practical)"
    );
}
