//! NIST CAVP IKEv2 KDF known answers (SP 800-135): SKEYSEED, prf+ (DKM), the
//! Child SA keying material with and without PFS, and rekeyed SKEYSEED.

mod common;

use common::{cases, hex, id, int, load, str};
use xrsec_crypto::{
    derive_child_keys, derive_ike_keys, prf_plus, skeyseed, skeyseed_rekey, Encr, EspSuite,
    IntegId, PrfId, SecretBytes, SharedSecret,
};

fn prf_id(name: &str) -> PrfId {
    match name {
        "PRF_HMAC_SHA1" => PrfId::HmacSha1,
        "PRF_HMAC_SHA2_256" => PrfId::HmacSha2_256,
        "PRF_HMAC_SHA2_384" => PrfId::HmacSha2_384,
        "PRF_HMAC_SHA2_512" => PrfId::HmacSha2_512,
        other => panic!("unknown PRF {other}"),
    }
}

/// Ni and Nr, split in the middle when the vector gives them concatenated.
/// For the HMAC PRFs SKEYSEED keys on Ni | Nr whole, so where the split
/// falls does not matter.
fn nonces(case: &serde_json::Value) -> (Vec<u8>, Vec<u8>) {
    match case.get("ni_nr") {
        Some(_) => {
            let both = hex(case, "ni_nr");
            let (ni, nr) = both.split_at(both.len() / 2);
            (ni.to_vec(), nr.to_vec())
        }
        None => (hex(case, "ni"), hex(case, "nr")),
    }
}

fn spi(case: &serde_json::Value, field: &str) -> [u8; 8] {
    hex(case, field).try_into().expect("8-byte SPI")
}

fn concat(keys: &[&SecretBytes]) -> Vec<u8> {
    keys.iter()
        .flat_map(|k| k.as_bytes().iter().copied())
        .collect()
}

#[test]
fn cavp_skeyseed_and_dkm_match_for_every_prf() {
    let file = load("ikev2_prf_plus.json");
    let mut ran = 0;
    for case in cases(&file).iter().filter(|c| c.get("skeyseed").is_some()) {
        let name = id(case);
        let prf = prf_id(str(case, "prf"));
        let (ni, nr) = nonces(case);
        let g_ir = SharedSecret::from_bytes(&hex(case, "g_ir"));
        let seed_key = skeyseed(prf, &ni, &nr, &g_ir);
        assert_eq!(
            seed_key.as_bytes(),
            &hex(case, "skeyseed")[..],
            "{name}: SKEYSEED"
        );

        let (spi_i, spi_r) = (spi(case, "spi_i"), spi(case, "spi_r"));
        let seed: Vec<u8> = [&ni[..], &nr, &spi_i, &spi_r].concat();
        let dkm_len = int(case, "dkm_len") as usize;
        let dkm = prf_plus(prf, seed_key.as_bytes(), &seed, dkm_len).unwrap();
        assert_eq!(dkm.as_bytes(), &hex(case, "dkm")[..], "{name}: DKM");

        // The seven keys are consecutive slices of the same prf+ stream.
        for (encr, integ) in [
            (Encr::AesCbc256, Some(IntegId::HmacSha2_256_128)),
            (Encr::AesGcm16_128, None),
        ] {
            let keys = derive_ike_keys(prf, encr, integ, &seed_key, &ni, &nr, &spi_i, &spi_r);
            let all = concat(&[
                &keys.sk_d,
                &keys.sk_ai,
                &keys.sk_ar,
                &keys.sk_ei,
                &keys.sk_er,
                &keys.sk_pi,
                &keys.sk_pr,
            ]);
            let stream = prf_plus(prf, seed_key.as_bytes(), &seed, all.len()).unwrap();
            assert_eq!(all, stream.as_bytes(), "{name}: key split for {encr}");
            let common = all.len().min(dkm_len);
            assert_eq!(
                &all[..common],
                &dkm.as_bytes()[..common],
                "{name}: keys vs DKM"
            );
            assert_eq!(keys.sk_d.len(), prf.preferred_key_len());
        }
        ran += 1;
    }
    assert_eq!(ran, 7);
}

#[test]
fn cavp_child_sa_keymat_matches_with_and_without_pfs() {
    let file = load("ikev2_prf_plus.json");
    let case = cases(&file)
        .iter()
        .find(|c| c.get("dkm_child_sa").is_some())
        .expect("a Child SA vector");
    let prf = prf_id(str(case, "prf"));
    let (ni, nr) = nonces(case);
    let dkm = hex(case, "dkm");
    // SK_d is the first prf-length bytes of the DKM.
    let sk_d = SecretBytes::new(&dkm[..prf.preferred_key_len()]);
    // AES-256-CBC + HMAC-SHA-256: 2 * (32 + 32) = 128 bytes of the 132 given.
    let suite = EspSuite::new(Encr::AesCbc256, Some(IntegId::HmacSha2_256_128)).unwrap();
    let order = |k: &xrsec_crypto::ChildKeys| {
        concat(&[
            &k.initiator_to_responder.encr,
            &k.initiator_to_responder.integ,
            &k.responder_to_initiator.encr,
            &k.responder_to_initiator.integ,
        ])
    };

    let no_pfs = derive_child_keys(prf, &sk_d, None, &ni, &nr, &suite);
    let expected = hex(case, "dkm_child_sa");
    assert_eq!(order(&no_pfs), &expected[..128], "Child SA KEYMAT");

    let g_new = SharedSecret::from_bytes(&hex(case, "g_ir_new"));
    let pfs = derive_child_keys(prf, &sk_d, Some(&g_new), &ni, &nr, &suite);
    let expected = hex(case, "dkm_child_sa_dh");
    assert_eq!(order(&pfs), &expected[..128], "Child SA KEYMAT with PFS");

    // GCM key material carries the salt: 2 * 36 = 72 bytes.
    let gcm = EspSuite::new(Encr::AesGcm16_256, None).unwrap();
    let keys = derive_child_keys(prf, &sk_d, None, &ni, &nr, &gcm);
    assert_eq!(keys.initiator_to_responder.encr.len(), 36);
    assert!(keys.initiator_to_responder.integ.is_empty());
    assert_eq!(
        concat(&[
            &keys.initiator_to_responder.encr,
            &keys.responder_to_initiator.encr
        ]),
        &hex(case, "dkm_child_sa")[..72]
    );
}

#[test]
fn cavp_rekeyed_skeyseed_matches() {
    let file = load("ikev2_prf_plus.json");
    let case = cases(&file)
        .iter()
        .find(|c| c.get("skeyseed_rekey").is_some())
        .expect("a rekey vector");
    let prf = prf_id(str(case, "prf"));
    let (ni, nr) = nonces(case);
    let sk_d = SecretBytes::new(&hex(case, "dkm")[..prf.preferred_key_len()]);
    let g_new = SharedSecret::from_bytes(&hex(case, "g_ir_new"));
    let rekeyed = skeyseed_rekey(prf, &sk_d, &g_new, &ni, &nr);
    assert_eq!(rekeyed.as_bytes(), &hex(case, "skeyseed_rekey")[..]);
}

#[test]
fn generic_prf_plus_vector_matches() {
    let file = load("ikev2_prf_plus.json");
    let case = cases(&file)
        .iter()
        .find(|c| c.get("out").is_some())
        .expect("a generic prf+ vector");
    let out = prf_plus(
        prf_id(str(case, "prf")),
        &hex(case, "key"),
        &hex(case, "seed"),
        int(case, "out_len") as usize,
    )
    .unwrap();
    assert_eq!(out.as_bytes(), &hex(case, "out")[..]);
}
