//! ESP seal/open properties for every suite: round trips, tampering and
//! truncation rejected without panic, padding checks, batch sealing, IVs.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use xrsec_crypto::cipher::{AesCbcKey, AesGcmKey};
use xrsec_crypto::{
    derive_child_keys, integ_icv, Encr, EspError, EspKeys, EspOpener, EspSealer, EspSuite, IntegId,
    KeyError, PrfId, Role, SealJob, SecretBytes,
};

fn all_suites() -> Vec<EspSuite> {
    let mut suites = Vec::new();
    for encr in [Encr::AesCbc128, Encr::AesCbc192, Encr::AesCbc256] {
        for integ in IntegId::ALL {
            suites.push(EspSuite::new(encr, Some(integ)).unwrap());
        }
    }
    suites.push(EspSuite::new(Encr::AesGcm16_128, None).unwrap());
    suites.push(EspSuite::new(Encr::AesGcm16_256, None).unwrap());
    suites
}

fn keys_for(suite: &EspSuite) -> EspKeys {
    let child = derive_child_keys(
        PrfId::HmacSha2_256,
        &SecretBytes::new(&[0x3c; 32]),
        None,
        &[1; 32],
        &[2; 32],
        suite,
    );
    child.outbound(Role::Initiator).clone()
}

fn pair(suite: EspSuite, esn: bool) -> (EspSealer, EspOpener) {
    let keys = keys_for(&suite);
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    (
        EspSealer::new_with_rng(suite, &keys, 0x1234_5678, esn, &mut rng).unwrap(),
        EspOpener::new(suite, &keys, esn).unwrap(),
    )
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// Seals `data` into a fresh buffer and returns the sealed packet.
fn seal(sealer: &mut EspSealer, data: &[u8], seq: u64) -> Vec<u8> {
    let suite = *sealer.suite();
    let mut buf = vec![0u8; suite.header_len() + data.len() + suite.max_trailer_len()];
    buf[suite.header_len()..][..data.len()].copy_from_slice(data);
    let len = sealer.seal_in_place(&mut buf, data.len(), seq, 4).unwrap();
    buf.truncate(len);
    buf
}

#[test]
fn every_suite_round_trips_with_and_without_esn() {
    for suite in all_suites() {
        for esn in [false, true] {
            let (mut sealer, opener) = pair(suite, esn);
            for len in [0, 1, 2, 13, 14, 15, 16, 17, 64, 1400, 9000] {
                let data = payload(len);
                let seq = if esn { 0x0000_0007_0000_0001 } else { 1 };
                let mut packet = seal(&mut sealer, &data, seq);
                assert_eq!(Some(packet.len()), suite.sealed_len(len), "{suite} {len}");
                assert_eq!(&packet[..4], &0x1234_5678u32.to_be_bytes());
                assert_eq!(
                    &packet[4..8],
                    &1u32.to_be_bytes(),
                    "low 32 bits on the wire"
                );
                let ciphertext_len = packet.len() - suite.header_len() - suite.icv_len();
                assert_eq!(
                    ciphertext_len % suite.block_align(),
                    0,
                    "{suite}: alignment"
                );
                if len > 16 {
                    assert_ne!(&packet[suite.header_len()..][..16], &data[..16]);
                }
                let opened = opener.open_in_place(&mut packet, 7).unwrap();
                assert_eq!(
                    &packet[opened.payload.clone()],
                    &data[..],
                    "{suite} {len} esn={esn}"
                );
                assert_eq!(opened.payload.start, suite.header_len());
                assert_eq!(opened.next_header, 4);
            }
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_in_the_packet_is_an_integrity_failure() {
    for suite in all_suites() {
        let (mut sealer, opener) = pair(suite, false);
        let packet = seal(&mut sealer, &payload(40), 9);
        for i in 0..packet.len() {
            let mut tampered = packet.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                opener.open_in_place(&mut tampered, 0),
                Err(EspError::IntegrityFailure),
                "{suite}: byte {i}"
            );
        }
    }
}

#[test]
fn esn_high_bits_are_authenticated_though_not_sent() {
    for suite in all_suites() {
        let (mut sealer, opener) = pair(suite, true);
        let packet = seal(&mut sealer, &payload(100), (5 << 32) | 77);
        assert_eq!(
            opener.open_in_place(&mut packet.clone(), 4),
            Err(EspError::IntegrityFailure),
            "{suite}"
        );
        assert!(
            opener.open_in_place(&mut packet.clone(), 5).is_ok(),
            "{suite}"
        );
    }
}

#[test]
fn truncated_packets_are_rejected_without_panic() {
    for suite in all_suites() {
        let (mut sealer, opener) = pair(suite, false);
        let packet = seal(&mut sealer, &payload(50), 1);
        for len in 0..packet.len() {
            let mut short = packet[..len].to_vec();
            let err = opener.open_in_place(&mut short, 0).unwrap_err();
            assert!(
                matches!(
                    err,
                    EspError::Truncated | EspError::NotBlockAligned | EspError::IntegrityFailure
                ),
                "{suite} len {len}: {err:?}"
            );
        }
    }
}

#[test]
fn seal_refuses_a_buffer_without_room_for_the_trailer() {
    for suite in all_suites() {
        let (mut sealer, _) = pair(suite, false);
        let need = suite.sealed_len(100).unwrap();
        let mut buf = vec![0u8; need - 1];
        assert_eq!(
            sealer.seal_in_place(&mut buf, 100, 1, 4),
            Err(EspError::BufferTooSmall)
        );
        let mut tiny = [0u8; 3];
        assert_eq!(
            sealer.seal_in_place(&mut tiny, 0, 1, 4),
            Err(EspError::BufferTooSmall)
        );
        assert_eq!(
            sealer.seal_in_place(&mut buf, usize::MAX, 1, 4),
            Err(EspError::BufferTooSmall)
        );
        for huge in [usize::MAX - 40, usize::MAX - 20, usize::MAX - 1] {
            assert_eq!(
                sealer.seal_in_place(&mut buf, huge, 1, 4),
                Err(EspError::BufferTooSmall)
            );
        }
    }
}

#[test]
fn seal_refuses_a_sequence_number_beyond_32_bits_without_esn() {
    let suite = EspSuite::new(Encr::AesGcm16_128, None).unwrap();
    let (mut sealer, _) = pair(suite, false);
    let mut buf = vec![0u8; 100];
    assert_eq!(
        sealer.seal_in_place(&mut buf, 10, 1 << 32, 4),
        Err(EspError::SequenceOverflow)
    );
    assert!(sealer
        .seal_in_place(&mut buf, 10, u64::from(u32::MAX), 4)
        .is_ok());
}

#[test]
fn explicit_iv_of_the_wrong_length_is_refused() {
    let suite = EspSuite::new(Encr::AesCbc128, Some(IntegId::HmacSha1_96)).unwrap();
    let (mut sealer, _) = pair(suite, false);
    let mut buf = vec![0u8; 100];
    assert_eq!(
        sealer.seal_in_place_with_explicit_iv(&mut buf, 10, 1, 4, &[0; 8]),
        Err(EspError::WrongIvLength)
    );
}

#[test]
fn gcm_iv_is_the_sequence_number_and_cbc_ivs_differ_per_packet() {
    let gcm = EspSuite::new(Encr::AesGcm16_256, None).unwrap();
    let (mut sealer, _) = pair(gcm, true);
    let packet = seal(&mut sealer, &payload(10), 0x0102_0304_0506_0708);
    assert_eq!(&packet[8..16], &0x0102_0304_0506_0708u64.to_be_bytes());

    let cbc = EspSuite::new(Encr::AesCbc256, Some(IntegId::HmacSha2_256_128)).unwrap();
    let (mut sealer, _) = pair(cbc, false);
    let a = seal(&mut sealer, &payload(10), 1);
    let b = seal(&mut sealer, &payload(10), 1);
    assert_ne!(&a[8..24], &b[8..24], "a fresh IV per packet");
    assert_ne!(&a[24..], &b[24..]);
}

#[test]
fn sealers_seeded_from_the_os_draw_different_cbc_ivs() {
    let suite = EspSuite::new(Encr::AesCbc128, Some(IntegId::HmacSha1_96)).unwrap();
    let keys = keys_for(&suite);
    let mut one = EspSealer::new(suite, &keys, 1, false).unwrap();
    let mut two = EspSealer::new(suite, &keys, 1, false).unwrap();
    assert_ne!(
        seal(&mut one, b"x", 1)[8..24],
        seal(&mut two, b"x", 1)[8..24]
    );
}

/// Builds a packet by hand with the given trailer bytes and a valid ICV.
fn hand_made(suite: EspSuite, keys: &EspKeys, plaintext_with_trailer: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1];
    match suite.integ() {
        Some(integ) => {
            let iv = [0x44u8; 16];
            packet.extend_from_slice(&iv);
            let mut ct = plaintext_with_trailer.to_vec();
            AesCbcKey::new(keys.encr.as_bytes())
                .unwrap()
                .encrypt_in_place(&iv, &mut ct)
                .unwrap();
            packet.extend_from_slice(&ct);
            let icv = integ_icv(integ, keys.integ.as_bytes(), &packet);
            packet.extend_from_slice(&icv);
        }
        None => {
            let (key, salt) = keys.encr.as_bytes().split_at(keys.encr.len() - 4);
            let iv = [0x55u8; 8];
            packet.extend_from_slice(&iv);
            let nonce: [u8; 12] = [salt, &iv[..]].concat().try_into().unwrap();
            let mut ct = plaintext_with_trailer.to_vec();
            let tag = AesGcmKey::new(key)
                .unwrap()
                .seal_in_place(&nonce, &packet[..8], &mut ct)
                .unwrap();
            packet.extend_from_slice(&ct);
            packet.extend_from_slice(&tag);
        }
    }
    packet
}

#[test]
fn padding_that_is_not_1_2_3_is_a_bad_padding_drop() {
    for suite in [
        EspSuite::new(Encr::AesCbc128, Some(IntegId::HmacSha2_256_128)).unwrap(),
        EspSuite::new(Encr::AesGcm16_128, None).unwrap(),
    ] {
        let keys = keys_for(&suite);
        let opener = EspOpener::new(suite, &keys, false).unwrap();
        // 12 payload bytes, padding 1,2,3,9 (wrong last byte), pad len 4, NH 4.
        let mut pt = payload(10);
        pt.extend_from_slice(&[1, 2, 3, 9, 4, 4]);
        let mut bad = hand_made(suite, &keys, &pt);
        assert_eq!(
            opener.open_in_place(&mut bad, 0),
            Err(EspError::BadPadding),
            "{suite}"
        );
        // Pad length beyond the plaintext.
        let mut pt = payload(14);
        pt.extend_from_slice(&[200, 4]);
        let mut bad = hand_made(suite, &keys, &pt);
        assert_eq!(
            opener.open_in_place(&mut bad, 0),
            Err(EspError::BadPadding),
            "{suite}"
        );
        // The same packet with correct padding opens.
        let mut pt = payload(10);
        pt.extend_from_slice(&[1, 2, 3, 4, 4, 4]);
        let mut good = hand_made(suite, &keys, &pt);
        let opened = opener.open_in_place(&mut good, 0).unwrap();
        assert_eq!(&good[opened.payload], &payload(10)[..]);
    }
}

#[test]
fn seal_batch_seals_each_packet_and_reports_each_outcome() {
    for suite in all_suites() {
        let (mut sealer, opener) = pair(suite, false);
        let sizes = [64usize, 1400, 0, 300];
        let mut bufs: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&n| {
                let mut b = vec![0u8; suite.header_len() + n + suite.max_trailer_len()];
                b[suite.header_len()..][..n].copy_from_slice(&payload(n));
                b
            })
            .collect();
        let mut small = vec![0u8; 10];
        let mut jobs: Vec<SealJob<'_>> = bufs
            .iter_mut()
            .zip(sizes)
            .enumerate()
            .map(|(i, (b, n))| SealJob::new(b, n, 100 + i as u64, 4))
            .collect();
        jobs.push(SealJob::new(&mut small, 100, 200, 4));
        sealer.seal_batch(&mut jobs);
        let outcomes: Vec<_> = jobs.iter().map(|j| j.outcome).collect();
        drop(jobs);
        assert_eq!(outcomes[4], Some(Err(EspError::BufferTooSmall)));
        for ((buf, n), outcome) in bufs.iter_mut().zip(sizes).zip(outcomes) {
            let len = outcome.unwrap().unwrap();
            let opened = opener.open_in_place(&mut buf[..len], 0).unwrap();
            assert_eq!(&buf[opened.payload], &payload(n)[..], "{suite}");
        }
    }
}

#[test]
fn keys_of_the_wrong_length_or_wrong_pairing_are_refused() {
    let suite = EspSuite::new(Encr::AesCbc256, Some(IntegId::HmacSha2_512_256)).unwrap();
    let keys = EspKeys {
        encr: SecretBytes::new(&[0; 32]),
        integ: SecretBytes::new(&[0; 32]),
    };
    assert_eq!(
        EspOpener::new(suite, &keys, false).unwrap_err(),
        KeyError::WrongKeyLength {
            key: "integrity",
            expected: 64,
            actual: 32
        }
    );
    let gcm = EspSuite::new(Encr::AesGcm16_128, None).unwrap();
    let no_salt = EspKeys {
        encr: SecretBytes::new(&[0; 16]),
        integ: SecretBytes::new(&[]),
    };
    assert!(EspSealer::new(gcm, &no_salt, 1, false).is_err());
    assert_eq!(
        EspSuite::new(Encr::AesCbc128, None),
        Err(KeyError::IntegrityMismatch)
    );
    assert_eq!(
        EspSuite::new(Encr::AesGcm16_128, Some(IntegId::HmacSha1_96)),
        Err(KeyError::IntegrityMismatch)
    );
}

#[test]
fn debug_output_of_keys_sealers_and_openers_has_no_key_bytes() {
    let suite = EspSuite::new(Encr::AesCbc128, Some(IntegId::HmacSha1_96)).unwrap();
    let keys = EspKeys {
        encr: SecretBytes::new(&[0xab; 16]),
        integ: SecretBytes::new(&[0xcd; 20]),
    };
    let sealer = EspSealer::new(suite, &keys, 0x42, false).unwrap();
    let opener = EspOpener::new(suite, &keys, false).unwrap();
    for shown in [
        format!("{keys:?}"),
        format!("{sealer:?}"),
        format!("{opener:?}"),
    ] {
        let lower = shown.to_lowercase();
        assert!(
            !lower.contains("abab") && !lower.contains("cdcd"),
            "{shown}"
        );
        assert!(
            !lower.contains("171, 171") && !lower.contains("205, 205"),
            "{shown}"
        );
    }
}

#[test]
fn suite_lengths_follow_rfc_4303() {
    let gcm = EspSuite::new(Encr::AesGcm16_128, None).unwrap();
    assert_eq!(
        (gcm.header_len(), gcm.icv_len(), gcm.block_align()),
        (16, 16, 4)
    );
    assert_eq!(gcm.max_trailer_len(), 3 + 2 + 16);
    assert_eq!(gcm.sealed_len(1400), Some(16 + 1404 + 16));
    assert_eq!(gcm.encr_key_len(), 20);
    let cbc = EspSuite::new(Encr::AesCbc192, Some(IntegId::HmacSha2_384_192)).unwrap();
    assert_eq!(
        (cbc.header_len(), cbc.icv_len(), cbc.block_align()),
        (24, 24, 16)
    );
    assert_eq!(cbc.sealed_len(14), Some(24 + 16 + 24));
    assert_eq!(cbc.sealed_len(15), Some(24 + 32 + 24));
    assert_eq!(cbc.to_string(), "AES-CBC-192/HMAC-SHA-384-192");
}
