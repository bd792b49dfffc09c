//! AUTH payload signatures: method 1 and method 14 round trips, known
//! answers from OpenSSL, RSA-PSS made by the `rsa` crate, and the
//! AlgorithmIdentifier bytes of RFC 7427 appendix A.

mod common;

use std::sync::OnceLock;

use common::read;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use xrsec_pki::hash::DEFAULT_HASH_PREFERENCE;
use xrsec_pki::{
    algorithm_identifier, encode_digital_signature_auth, parse_private_key, sign_auth, verify_auth,
    AuthSignature, HashAlgorithm, KeyAlgorithm, PrivateKey, SignatureError, SignatureScheme,
    AUTH_METHOD_DIGITAL_SIGNATURE, AUTH_METHOD_RSA_SIGNATURE,
};

const OCTETS: &[u8] = b"RealMessage1 | NonceRData | prf(SK_pi, RestOfInitIDPayload)";

fn key(name: &'static str) -> &'static PrivateKey {
    static KEYS: OnceLock<std::sync::Mutex<Vec<(&'static str, &'static PrivateKey)>>> =
        OnceLock::new();
    let mut keys = KEYS.get_or_init(Default::default).lock().unwrap();
    if let Some((_, k)) = keys.iter().find(|(n, _)| *n == name) {
        return k;
    }
    let k: &'static PrivateKey = Box::leak(Box::new(parse_private_key(name, &read(name)).unwrap()));
    keys.push((name, k));
    k
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x7427)
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

#[test]
fn method_1_round_trips_and_is_a_bare_pkcs1_sha1_signature() {
    let key = key("peer-pkcs1.key");
    let data = sign_auth(key, AuthSignature::RsaSha1, OCTETS, &mut rng()).unwrap();
    assert_eq!(data.len(), 256, "a bare RSA-2048 signature");
    assert_eq!(
        verify_auth(&key.public_key(), AUTH_METHOD_RSA_SIGNATURE, &data, OCTETS),
        Ok(AuthSignature::RsaSha1)
    );
    assert_eq!(
        verify_auth(
            &key.public_key(),
            AUTH_METHOD_RSA_SIGNATURE,
            &data,
            b"other octets"
        ),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn method_1_signature_equals_openssls() {
    // PKCS#1 v1.5 is deterministic: same key, same octets, same bytes.
    let octets = read("signed-octets.bin");
    let ours = sign_auth(
        key("peer-pkcs1.key"),
        AuthSignature::RsaSha1,
        &octets,
        &mut rng(),
    )
    .unwrap();
    assert_eq!(ours, read("openssl-pkcs1-sha1.sig"));
}

#[test]
fn method_14_round_trips_with_each_pkcs1_hash() {
    let key = key("peer-pkcs8.key");
    for hash in HashAlgorithm::ALL {
        let how = AuthSignature::Digital(SignatureScheme::RsaPkcs1(hash));
        let data = sign_auth(key, how, OCTETS, &mut rng()).unwrap();
        let algorithm = how.scheme().algorithm_identifier();
        assert_eq!(usize::from(data[0]), algorithm.len());
        assert_eq!(&data[1..1 + algorithm.len()], algorithm);
        assert_eq!(data.len(), 1 + algorithm.len() + 256);
        assert_eq!(
            verify_auth(
                &key.public_key(),
                AUTH_METHOD_DIGITAL_SIGNATURE,
                &data,
                OCTETS
            ),
            Ok(how),
            "{hash}"
        );
        assert_eq!(
            verify_auth(
                &key.public_key(),
                AUTH_METHOD_DIGITAL_SIGNATURE,
                &data,
                &OCTETS[1..]
            ),
            Err(SignatureError::Invalid),
            "{hash}"
        );
    }
}

#[test]
fn method_14_sha256_signature_equals_openssls() {
    let octets = read("signed-octets.bin");
    let how = AuthSignature::Digital(SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256));
    let data = sign_auth(key("peer-pkcs1.key"), how, &octets, &mut rng()).unwrap();
    assert_eq!(data[16..], read("openssl-pkcs1-sha256.sig"));
}

#[test]
fn method_14_round_trips_with_rsa_pss() {
    let key = key("peer-pkcs8.key");
    for hash in [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ] {
        let how = AuthSignature::Digital(SignatureScheme::rsa_pss(hash));
        let data = sign_auth(key, how, OCTETS, &mut rng()).unwrap();
        assert_eq!(
            verify_auth(
                &key.public_key(),
                AUTH_METHOD_DIGITAL_SIGNATURE,
                &data,
                OCTETS
            ),
            Ok(how)
        );
    }
}

#[test]
fn rsa_pss_signature_made_by_the_rsa_crate_verifies() {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{RandomizedSigner, SignatureEncoding};

    let pem = String::from_utf8(read("peer-pkcs8.key")).unwrap();
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let signer = rsa::pss::SigningKey::<sha2::Sha256>::new(private);
    let signature = signer.sign_with_rng(&mut rng(), OCTETS).to_vec();

    let scheme = SignatureScheme::rsa_pss(HashAlgorithm::Sha256);
    let data = encode_digital_signature_auth(&scheme, &signature);
    assert_eq!(&data[1..68], algorithm_identifier::RSASSA_PSS_SHA256);
    let public = key("peer-pkcs8.key").public_key();
    assert_eq!(
        verify_auth(&public, AUTH_METHOD_DIGITAL_SIGNATURE, &data, OCTETS),
        Ok(AuthSignature::Digital(scheme))
    );
}

#[test]
fn rsa_pss_signature_made_by_openssl_verifies() {
    let octets = read("signed-octets.bin");
    let scheme = SignatureScheme::rsa_pss(HashAlgorithm::Sha256);
    let public = key("peer-pkcs1.key").public_key();
    public
        .verify(&scheme, &octets, &read("openssl-pss-sha256.sig"))
        .unwrap();
    // The salt length is part of the scheme: 20 is not what was used.
    let wrong_salt = SignatureScheme::RsaPss {
        hash: HashAlgorithm::Sha256,
        mgf1_hash: HashAlgorithm::Sha256,
        salt_len: 20,
    };
    assert_eq!(
        public.verify(&wrong_salt, &octets, &read("openssl-pss-sha256.sig")),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn rsa_pss_with_a_different_mgf1_hash_is_refused_as_unsupported() {
    let scheme = SignatureScheme::RsaPss {
        hash: HashAlgorithm::Sha256,
        mgf1_hash: HashAlgorithm::Sha1,
        salt_len: 32,
    };
    let data = encode_digital_signature_auth(&scheme, &[0; 256]);
    let err = verify_auth(
        &key("peer-pkcs8.key").public_key(),
        AUTH_METHOD_DIGITAL_SIGNATURE,
        &data,
        OCTETS,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported RSASSA-PSS parameters: the MGF1 hash differs from the message hash"
    );
}

#[test]
fn verification_with_the_wrong_key_fails() {
    let signer = key("peer-pkcs8.key");
    let other = key("ca2.key").public_key();
    for how in [
        AuthSignature::RsaSha1,
        AuthSignature::Digital(SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256)),
        AuthSignature::Digital(SignatureScheme::rsa_pss(HashAlgorithm::Sha384)),
    ] {
        let data = sign_auth(signer, how, OCTETS, &mut rng()).unwrap();
        assert_eq!(
            verify_auth(&other, how.method(), &data, OCTETS),
            Err(SignatureError::Invalid),
            "{how:?}"
        );
    }
}

#[test]
fn ecdsa_keys_sign_method_14_and_verify() {
    for (name, algorithm) in [
        ("ec-p256-sec1.key", KeyAlgorithm::EcdsaP256),
        ("ec-p384-pkcs8.key", KeyAlgorithm::EcdsaP384),
    ] {
        let key = key(name);
        assert_eq!(key.algorithm(), algorithm);
        for hash in DEFAULT_HASH_PREFERENCE {
            let how = AuthSignature::Digital(SignatureScheme::Ecdsa(hash));
            let data = sign_auth(key, how, OCTETS, &mut rng()).unwrap();
            assert_eq!(
                verify_auth(
                    &key.public_key(),
                    AUTH_METHOD_DIGITAL_SIGNATURE,
                    &data,
                    OCTETS
                ),
                Ok(how)
            );
        }
        // Method 1 is RSA only.
        assert!(matches!(
            sign_auth(key, AuthSignature::RsaSha1, OCTETS, &mut rng()),
            Err(SignatureError::KeyMismatch { .. })
        ));
    }
}

#[test]
fn ecdsa_signature_made_by_openssl_verifies() {
    let octets = read("signed-octets.bin");
    let scheme = SignatureScheme::Ecdsa(HashAlgorithm::Sha384);
    let data = encode_digital_signature_auth(&scheme, &read("openssl-ecdsa-p384-sha384.sig"));
    let public = key("ec-p384-pkcs8.key").public_key();
    assert_eq!(
        verify_auth(&public, AUTH_METHOD_DIGITAL_SIGNATURE, &data, &octets),
        Ok(AuthSignature::Digital(scheme))
    );
}

#[test]
fn rsa_scheme_with_an_ecdsa_key_is_a_key_mismatch() {
    let rsa_signed = sign_auth(
        key("peer-pkcs8.key"),
        AuthSignature::Digital(SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256)),
        OCTETS,
        &mut rng(),
    )
    .unwrap();
    let err = verify_auth(
        &key("ec-p256-sec1.key").public_key(),
        AUTH_METHOD_DIGITAL_SIGNATURE,
        &rsa_signed,
        OCTETS,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "signature scheme sha256WithRSAEncryption cannot be used with an ECDSA P-256 key"
    );
}

#[test]
fn unknown_auth_method_and_unknown_algorithm_are_named() {
    let public = key("peer-pkcs8.key").public_key();
    assert_eq!(
        verify_auth(&public, 2, &[0; 20], OCTETS),
        Err(SignatureError::UnsupportedAuthMethod(2))
    );
    // RFC 4754's ECDSA method: refused, and the message says what to use.
    let err = verify_auth(&public, 9, &[0; 64], OCTETS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "AUTH method 9 is not a signature method supported here: we take 1 (RSA Digital \
         Signature) and 14 (RFC 7427 Digital Signature, which also carries ECDSA); the ECDSA \
         methods 9-11 of RFC 4754 are not supported"
    );
    // dsa-with-sha256 (RFC 7427 A.2.2): a valid identifier we do not verify.
    let mut data = vec![13];
    data.extend(hex("30 0b 06 09 60 86 48 01 65 03 04 03 02"));
    data.extend([0; 64]);
    assert_eq!(
        verify_auth(&public, AUTH_METHOD_DIGITAL_SIGNATURE, &data, OCTETS)
            .unwrap_err()
            .to_string(),
        "unknown or unsupported signature algorithm OID 2.16.840.1.101.3.4.3.2"
    );
}

#[test]
fn algorithm_identifiers_match_rfc_7427_appendix_a() {
    // RFC 7427 appendix A, the hex dumps of each AlgorithmIdentifier.
    let cases = [
        (
            SignatureScheme::RsaPkcs1(HashAlgorithm::Sha1),
            "30 0d 06 09 2a 86 48 86 f7 0d 01 01 05 05 00",
        ),
        (
            SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256),
            "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00",
        ),
        (
            SignatureScheme::RsaPkcs1(HashAlgorithm::Sha384),
            "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0c 05 00",
        ),
        (
            SignatureScheme::RsaPkcs1(HashAlgorithm::Sha512),
            "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0d 05 00",
        ),
        (
            SignatureScheme::Ecdsa(HashAlgorithm::Sha256),
            "30 0a 06 08 2a 86 48 ce 3d 04 03 02",
        ),
        (
            SignatureScheme::Ecdsa(HashAlgorithm::Sha384),
            "30 0a 06 08 2a 86 48 ce 3d 04 03 03",
        ),
        (
            SignatureScheme::Ecdsa(HashAlgorithm::Sha512),
            "30 0a 06 08 2a 86 48 ce 3d 04 03 04",
        ),
        (
            SignatureScheme::rsa_pss(HashAlgorithm::Sha256),
            "30 41 06 09 2a 86 48 86 f7 0d 01 01 0a 30 34 a0 0f 30 0d 06 09 60 86 48 01 65 03 04
             02 01 05 00 a1 1c 30 1a 06 09 2a 86 48 86 f7 0d 01 01 08 30 0d 06 09 60 86 48 01 65
             03 04 02 01 05 00 a2 03 02 01 20",
        ),
    ];
    for (scheme, expected) in cases {
        let expected = hex(expected);
        assert_eq!(scheme.algorithm_identifier(), expected, "{scheme}");
        assert_eq!(
            SignatureScheme::from_algorithm_identifier(&expected),
            Ok(scheme)
        );
    }
    assert_eq!(
        algorithm_identifier::SHA256_WITH_RSA,
        hex("30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00")
    );
}

#[test]
fn choice_follows_the_peers_signature_hash_algorithms() {
    use HashAlgorithm::*;
    let rsa = key("peer-pkcs8.key");
    assert_eq!(
        AuthSignature::choose(
            rsa,
            Some(&[Sha1, Sha256, Sha384, Sha512]),
            &DEFAULT_HASH_PREFERENCE
        ),
        Ok(AuthSignature::Digital(SignatureScheme::RsaPkcs1(Sha256)))
    );
    assert_eq!(
        AuthSignature::choose(rsa, Some(&[Sha512]), &DEFAULT_HASH_PREFERENCE),
        Ok(AuthSignature::Digital(SignatureScheme::RsaPkcs1(Sha512)))
    );
    // No notify, or nothing in common: method 1.
    assert_eq!(
        AuthSignature::choose(rsa, None, &DEFAULT_HASH_PREFERENCE),
        Ok(AuthSignature::RsaSha1)
    );
    assert_eq!(
        AuthSignature::choose(rsa, Some(&[Sha1]), &DEFAULT_HASH_PREFERENCE),
        Ok(AuthSignature::RsaSha1)
    );
    let ec = key("ec-p256-sec1.key");
    assert_eq!(
        AuthSignature::choose(ec, Some(&[Sha384]), &DEFAULT_HASH_PREFERENCE),
        Ok(AuthSignature::Digital(SignatureScheme::Ecdsa(Sha384)))
    );
    assert!(AuthSignature::choose(ec, None, &DEFAULT_HASH_PREFERENCE).is_err());
}

#[test]
fn private_key_debug_shows_no_key_material() {
    assert_eq!(
        format!("{:?}", key("peer-pkcs8.key")),
        "PrivateKey(RSA-2048)"
    );
    assert_eq!(
        format!("{:?}", key("peer-pkcs8.key").public_key()),
        "PublicKey(RSA-2048)"
    );
}
