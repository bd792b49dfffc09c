//! IKE SK payload protection (RFC 7296 3.14, RFC 5282): round trips, exactly
//! which bytes are protected, tampering and truncation.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use xrsec_crypto::cipher::AesGcmKey;
use xrsec_crypto::{
    derive_ike_keys, integ_icv, Encr, IkeCrypto, IkeCryptoError, IntegId, PrfId, Role, SecretBytes,
};

fn combos() -> Vec<(Encr, Option<IntegId>)> {
    let mut v = Vec::new();
    for encr in [Encr::AesCbc128, Encr::AesCbc192, Encr::AesCbc256] {
        for integ in IntegId::ALL {
            v.push((encr, Some(integ)));
        }
    }
    v.push((Encr::AesGcm16_128, None));
    v.push((Encr::AesGcm16_256, None));
    v
}

fn pairs(encr: Encr, integ: Option<IntegId>) -> ((IkeCrypto, IkeCrypto), (IkeCrypto, IkeCrypto)) {
    let keys = derive_ike_keys(
        PrfId::HmacSha2_256,
        encr,
        integ,
        &SecretBytes::new(&[7; 32]),
        &[1; 32],
        &[2; 32],
        &[3; 8],
        &[4; 8],
    );
    (
        IkeCrypto::pair(&keys, encr, integ, Role::Initiator).unwrap(),
        IkeCrypto::pair(&keys, encr, integ, Role::Responder).unwrap(),
    )
}

/// A fake IKE header + SK generic header of the right lengths.
fn aad_for(sealed_len: usize) -> Vec<u8> {
    let mut aad = vec![0u8; 32];
    aad[..8].copy_from_slice(&[3; 8]);
    aad[8..16].copy_from_slice(&[4; 8]);
    aad[16] = 46; // next payload: SK
    aad[17] = 0x20;
    aad[18] = 35; // IKE_AUTH
    aad[19] = 0x08;
    aad[24..28].copy_from_slice(&((32 + sealed_len) as u32).to_be_bytes());
    aad[28] = 35; // IDi
    aad[30..32].copy_from_slice(&((4 + sealed_len) as u16).to_be_bytes());
    aad
}

#[test]
fn every_combination_round_trips_between_initiator_and_responder() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for (encr, integ) in combos() {
        let ((mut i_out, i_in), (mut r_out, r_in)) = pairs(encr, integ);
        for len in [0usize, 1, 15, 16, 17, 100, 1000] {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed_len = i_out.sealed_len(len);
            let aad = aad_for(sealed_len);
            let body = i_out.seal(&mut rng, &aad, &plaintext).unwrap();
            assert_eq!(body.len(), sealed_len, "{encr} {len}");
            assert_eq!(r_in.open(&aad, &body).unwrap(), plaintext, "{encr} {len}");
            // The other direction uses the other keys.
            assert_eq!(
                i_in.open(&aad, &body),
                Err(IkeCryptoError::IntegrityFailure)
            );
            let back = r_out.seal(&mut rng, &aad, &plaintext).unwrap();
            assert_eq!(i_in.open(&aad, &back).unwrap(), plaintext);
            assert!(sealed_len - len <= i_out.max_overhead());
        }
    }
}

#[test]
fn cbc_icv_covers_the_message_from_the_ike_header_through_the_ciphertext() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let (encr, integ) = (Encr::AesCbc256, IntegId::HmacSha2_256_128);
    let keys = derive_ike_keys(
        PrfId::HmacSha2_256,
        encr,
        Some(integ),
        &SecretBytes::new(&[7; 32]),
        &[1; 32],
        &[2; 32],
        &[3; 8],
        &[4; 8],
    );
    let mut sender = IkeCrypto::new(encr, Some(integ), &keys.sk_ei, &keys.sk_ai).unwrap();
    let aad = aad_for(sender.sealed_len(20));
    let body = sender.seal(&mut rng, &aad, &[9; 20]).unwrap();
    let (protected, icv) = body.split_at(body.len() - 16);
    let message = [&aad[..], protected].concat();
    assert_eq!(icv, &integ_icv(integ, keys.sk_ai.as_bytes(), &message)[..]);
    // 20 bytes + pad length = 21, padded to 32: 11 zero bytes of padding.
    assert_eq!(body.len(), 16 + 32 + 16);
}

#[test]
fn gcm_aad_is_the_header_through_the_sk_generic_header_and_iv_counts_up() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let encr = Encr::AesGcm16_128;
    let keys = derive_ike_keys(
        PrfId::HmacSha2_256,
        encr,
        None,
        &SecretBytes::new(&[7; 32]),
        &[1; 32],
        &[2; 32],
        &[3; 8],
        &[4; 8],
    );
    let mut sender = IkeCrypto::new(encr, None, &keys.sk_ei, &keys.sk_ai).unwrap();
    let aad = aad_for(sender.sealed_len(5));
    let first = sender.seal(&mut rng, &aad, b"hello").unwrap();
    let second = sender.seal(&mut rng, &aad, b"hello").unwrap();
    assert_eq!(&first[..8], &0u64.to_be_bytes());
    assert_eq!(&second[..8], &1u64.to_be_bytes());
    assert_ne!(first[8..], second[8..]);
    // Recompute with the raw cipher: nonce = salt | IV, AAD = aad only.
    let (key, salt) = keys.sk_ei.as_bytes().split_at(16);
    let nonce: [u8; 12] = [salt, &first[..8]].concat().try_into().unwrap();
    let mut data = b"hello\x00".to_vec();
    let tag = AesGcmKey::new(key)
        .unwrap()
        .seal_in_place(&nonce, &aad, &mut data)
        .unwrap();
    assert_eq!(&first[8..14], &data[..]);
    assert_eq!(&first[14..], &tag[..]);
}

#[test]
fn a_flipped_bit_in_the_header_or_the_body_is_an_integrity_failure() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    for (encr, integ) in combos() {
        let ((mut out, _), (_, inbound)) = pairs(encr, integ);
        let aad = aad_for(out.sealed_len(30));
        let body = out.seal(&mut rng, &aad, &[0x5a; 30]).unwrap();
        for i in 0..aad.len() {
            let mut bad = aad.clone();
            bad[i] ^= 0x80;
            assert_eq!(
                inbound.open(&bad, &body),
                Err(IkeCryptoError::IntegrityFailure)
            );
        }
        for i in 0..body.len() {
            let mut bad = body.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                inbound.open(&aad, &bad),
                Err(IkeCryptoError::IntegrityFailure),
                "{encr} byte {i}"
            );
        }
    }
}

#[test]
fn truncated_sk_payloads_are_rejected_without_panic() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for (encr, integ) in combos() {
        let ((mut out, _), (_, inbound)) = pairs(encr, integ);
        let aad = aad_for(out.sealed_len(40));
        let body = out.seal(&mut rng, &aad, &[1; 40]).unwrap();
        for len in 0..body.len() {
            assert!(
                inbound.open(&aad, &body[..len]).is_err(),
                "{encr} len {len}"
            );
        }
    }
}

#[test]
fn keys_that_do_not_fit_the_transforms_are_refused() {
    let k16 = SecretBytes::new(&[0; 16]);
    let k20 = SecretBytes::new(&[0; 20]);
    let none = SecretBytes::new(&[]);
    assert!(IkeCrypto::new(Encr::AesCbc128, Some(IntegId::HmacSha1_96), &k16, &k20).is_ok());
    assert!(IkeCrypto::new(Encr::AesCbc128, Some(IntegId::HmacSha1_96), &k16, &k16).is_err());
    assert!(IkeCrypto::new(Encr::AesCbc128, None, &k16, &none).is_err());
    assert!(
        IkeCrypto::new(Encr::AesGcm16_128, None, &k16, &none).is_err(),
        "no salt"
    );
    assert!(IkeCrypto::new(Encr::AesGcm16_128, None, &k20, &none).is_ok());
    let shown = format!(
        "{:?}",
        IkeCrypto::new(Encr::AesGcm16_128, None, &k20, &none).unwrap()
    );
    assert_eq!(shown, "IkeCrypto { encr: AesGcm16_128, integ: None, .. }");
}
