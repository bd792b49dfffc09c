//! RFC 5903 (groups 19/20/21) KE payloads and shared secrets, and the
//! Wycheproof ECDH / X25519 vectors: every invalid public value refused,
//! every valid one agreed, and all-zero X25519 results refused (RFC 8031 2).

mod common;

use common::{cases, hex, id, int, load, opt_hex, str};
use xrsec_crypto::{DhError, DhGroup, DhPrivate};

#[test]
fn rfc_5903_ke_payloads_and_shared_secrets_match_for_groups_19_20_21() {
    let file = load("ike_ecp.json");
    let mut groups = Vec::new();
    for case in cases(&file) {
        let name = id(case);
        let group = DhGroup::from_iana(int(case, "dh_group") as u16).expect("group");
        let i = DhPrivate::from_scalar(group, &hex(case, "i")).expect("i");
        let r = DhPrivate::from_scalar(group, &hex(case, "r")).expect("r");
        assert_eq!(i.public_ke_data(), &hex(case, "gi")[..], "{name}: g^i");
        assert_eq!(r.public_ke_data(), &hex(case, "gr")[..], "{name}: g^r");

        // KE payload: generic header (4) | DH group (2) | reserved (2) | data.
        for (field, ours) in [("ke_payload_i", &i), ("ke_payload_r", &r)] {
            let payload = hex(case, field);
            assert_eq!(&payload[4..6], &group.iana().to_be_bytes(), "{name}: group");
            assert_eq!(&payload[8..], ours.public_ke_data(), "{name}: {field}");
            assert_eq!(
                usize::from(u16::from_be_bytes([payload[2], payload[3]])),
                payload.len()
            );
        }

        // RFC 5903 7: the shared secret is the x coordinate of g^ir.
        let shared = hex(case, "shared_secret");
        assert_eq!(shared, hex(case, "girx"));
        assert_eq!(
            i.agree(r.public_ke_data()).unwrap().as_bytes(),
            &shared[..],
            "{name}"
        );
        assert_eq!(
            r.agree(i.public_ke_data()).unwrap().as_bytes(),
            &shared[..],
            "{name}"
        );
        groups.push(group);
    }
    assert_eq!(groups, [DhGroup::Ecp256, DhGroup::Ecp384, DhGroup::Ecp521]);
}

/// A Wycheproof big-endian private scalar (which may carry a leading zero
/// byte, or be short) as exactly the group's scalar length.
fn scalar(group: DhGroup, private: &[u8]) -> Vec<u8> {
    let first = private
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(private.len());
    let trimmed = &private[first..];
    assert!(trimmed.len() <= group.scalar_len());
    let mut out = vec![0u8; group.scalar_len() - trimmed.len()];
    out.extend_from_slice(trimmed);
    out
}

fn wycheproof_ecp(file: &str, group: DhGroup, expect_invalid: usize) {
    let file = load(file);
    let (mut valid, mut invalid, mut acceptable) = (0, 0, 0);
    for case in cases(&file) {
        let name = format!("{group} {}", id(case));
        let ours = DhPrivate::from_scalar(group, &scalar(group, &hex(case, "private")))
            .unwrap_or_else(|e| panic!("{name}: private scalar: {e}"));
        // The KE payload carries x || y only. A compressed or empty SEC1
        // encoding has no such form; fed as-is it must fail on its length.
        let peer = opt_hex(case, "ke_data").unwrap_or_else(|| hex(case, "public"));
        let result = ours.agree(&peer);
        match str(case, "result") {
            "valid" => {
                let shared = result.unwrap_or_else(|e| panic!("{name}: refused a valid key: {e}"));
                assert_eq!(shared.as_bytes(), &hex(case, "shared")[..], "{name}");
                valid += 1;
            }
            "invalid" => {
                let err = result.expect_err(&name);
                if peer.len() == group.ke_data_len() {
                    assert_eq!(err, DhError::NotOnCurve { group }, "{name}");
                } else {
                    assert!(matches!(err, DhError::WrongLength { .. }), "{name}: {err}");
                }
                invalid += 1;
            }
            "acceptable" => {
                // Only compressed points are "acceptable" here; IKEv2 has no
                // compressed form (RFC 5903 7), so they are refused.
                assert!(
                    matches!(result, Err(DhError::WrongLength { .. })),
                    "{name}: compressed point must be refused"
                );
                acceptable += 1;
            }
            other => panic!("{name}: unknown result {other}"),
        }
    }
    assert_eq!(invalid, expect_invalid, "{group}: invalid cases");
    assert_eq!(valid + invalid + acceptable, 150);
}

#[test]
fn wycheproof_p256_invalid_keys_are_refused_and_valid_ones_agree() {
    wycheproof_ecp("ecdh_wycheproof_p256.json", DhGroup::Ecp256, 24);
}

#[test]
fn wycheproof_p384_invalid_keys_are_refused_and_valid_ones_agree() {
    wycheproof_ecp("ecdh_wycheproof_p384.json", DhGroup::Ecp384, 18);
}

#[test]
fn wycheproof_p521_invalid_keys_are_refused_and_valid_ones_agree() {
    wycheproof_ecp("ecdh_wycheproof_p521.json", DhGroup::Ecp521, 28);
}

#[test]
fn wycheproof_x25519_agrees_and_refuses_every_all_zero_shared_secret() {
    let file = load("ecdh_wycheproof_x25519.json");
    let group = DhGroup::Curve25519;
    let (mut agreed, mut refused) = (0, 0);
    for case in cases(&file) {
        let name = id(case);
        let ours = DhPrivate::from_scalar(group, &hex(case, "private")).expect(&name);
        let expected = hex(case, "shared");
        let result = ours.agree(&hex(case, "public"));
        if expected.iter().all(|&b| b == 0) {
            // RFC 8031 2: an all-zero result MUST abort the exchange.
            assert_eq!(result.unwrap_err(), DhError::ZeroSharedSecret, "{name}");
            refused += 1;
        } else {
            // Valid and acceptable (twist, non-canonical) values agree, as
            // RFC 7748 5 computes them.
            let shared = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(shared.as_bytes(), &expected[..], "{name}");
            agreed += 1;
        }
    }
    assert_eq!(refused, 31, "all-zero shared secret cases");
    assert_eq!(agreed + refused, 150);
}
