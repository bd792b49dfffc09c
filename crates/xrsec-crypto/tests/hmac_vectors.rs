//! RFC 2202, RFC 4231 and RFC 4868 HMAC known answers, through the PRF
//! (full output) and the integrity transforms (truncated ICV).

mod common;

use common::{cases, hex, id, load, opt_hex, str};
use xrsec_crypto::{integ_icv, prf, IntegId, PrfId};

fn prf_for(algorithm: &str) -> PrfId {
    match algorithm {
        "HMAC-SHA1" => PrfId::HmacSha1,
        "HMAC-SHA-256" => PrfId::HmacSha2_256,
        "HMAC-SHA-384" => PrfId::HmacSha2_384,
        "HMAC-SHA-512" => PrfId::HmacSha2_512,
        other => panic!("unknown algorithm {other}"),
    }
}

/// The integrity transform whose ICV is `len` bytes of this hash, if any.
fn integ_for(algorithm: &str, len: usize) -> Option<IntegId> {
    let integ = match algorithm {
        "HMAC-SHA1" => IntegId::HmacSha1_96,
        "HMAC-SHA-256" => IntegId::HmacSha2_256_128,
        "HMAC-SHA-384" => IntegId::HmacSha2_384_192,
        "HMAC-SHA-512" => IntegId::HmacSha2_512_256,
        _ => return None,
    };
    (integ.icv_len() == len).then_some(integ)
}

#[test]
fn every_hmac_vector_matches_through_prf_and_integrity_transforms() {
    let file = load("hmac_sha.json");
    let mut checks = 0;
    for case in cases(&file) {
        let name = id(case);
        let algorithm = str(case, "algorithm");
        let key = hex(case, "key");
        let data = hex(case, "data");
        let mac = hex(case, "mac");
        let full = prf(prf_for(algorithm), &key, &data);
        match case.get("truncate_bytes").and_then(|v| v.as_u64()) {
            None => {
                assert_eq!(full.as_bytes(), &mac[..], "{name}: full HMAC");
                checks += 1;
            }
            Some(n) => {
                let n = n as usize;
                assert_eq!(&full.as_bytes()[..n], &mac[..], "{name}: truncated HMAC");
                checks += 1;
                if let Some(integ) = integ_for(algorithm, n) {
                    assert_eq!(integ_icv(integ, &key, &data), mac, "{name}: {integ}");
                    checks += 1;
                }
            }
        }
        for (field, len) in [("mac_96", 12), ("mac_128", 16)] {
            if let Some(expected) = opt_hex(case, field) {
                let integ = integ_for(algorithm, len).expect("an integrity transform");
                assert_eq!(integ_icv(integ, &key, &data), expected, "{name}: {field}");
                checks += 1;
            }
        }
    }
    assert_eq!(cases(&file).len(), 43);
    // 43 cases, 14 of them also through an integrity transform, plus the
    // extra mac_96 / mac_128 fields.
    assert!(checks >= 43 + 14, "only {checks} checks ran");
}

#[test]
fn rfc_4868_auth_vectors_all_run_through_their_integrity_transform() {
    let file = load("hmac_sha.json");
    let auth: Vec<_> = cases(&file)
        .iter()
        .filter(|c| id(c).starts_with("rfc4868-auth") && !id(c).ends_with("prf-output"))
        .collect();
    assert_eq!(auth.len(), 9);
    for case in auth {
        let algorithm = str(case, "algorithm");
        let mac = hex(case, "mac");
        let integ = integ_for(algorithm, mac.len()).expect("integrity transform");
        assert_eq!(
            integ_icv(integ, &hex(case, "key"), &hex(case, "data")),
            mac,
            "{}",
            id(case)
        );
    }
}
