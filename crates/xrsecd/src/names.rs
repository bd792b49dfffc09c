//! The names `show` prints for the negotiated transforms, as IOS-XR prints
//! them (`AES-CBC`/256, `SHA256`, `ESP_192_AES`, `HMAC_SHA_256`), and the
//! names Wireshark's decryption tables expect.

use xrsec_crypto::{DhGroup, Encr, IntegId, PrfId};

/// `Encryption` of `show ikev2 session detail`: the cipher without its key size.
pub(crate) fn cipher(e: Encr) -> &'static str {
    if e.is_aead() {
        "AES-GCM"
    } else {
        "AES-CBC"
    }
}

/// The hash of a PRF (`PRF/Hash/DH Group`'s first field).
pub(crate) fn prf(p: PrfId) -> &'static str {
    match p {
        PrfId::HmacSha1 => "SHA1",
        PrfId::HmacSha2_256 => "SHA256",
        PrfId::HmacSha2_384 => "SHA384",
        PrfId::HmacSha2_512 => "SHA512",
        _ => "unknown",
    }
}

/// The hash of an integrity transform; "None" with an AEAD cipher.
pub(crate) fn integ(i: Option<IntegId>) -> &'static str {
    match i {
        None => "None",
        Some(IntegId::HmacSha1_96) => "SHA1",
        Some(IntegId::HmacSha2_256_128) => "SHA256",
        Some(IntegId::HmacSha2_384_192) => "SHA384",
        Some(IntegId::HmacSha2_512_256) => "SHA512",
        Some(_) => "unknown",
    }
}

/// The DH group number.
pub(crate) fn dh(g: DhGroup) -> u16 {
    g.iana()
}

/// `Encrypt Algorithm` of `show ipsec sa interface`.
pub(crate) fn esp_encrypt(e: Encr) -> String {
    if e.is_aead() {
        format!("ESP_AES_GCM_{}", e.key_bits())
    } else {
        format!("ESP_{}_AES", e.key_bits())
    }
}

/// `Auth Algorithm` of `show ipsec sa interface`.
pub(crate) fn esp_auth(i: Option<IntegId>) -> &'static str {
    match i {
        None => "None",
        Some(IntegId::HmacSha1_96) => "HMAC_SHA1",
        Some(IntegId::HmacSha2_256_128) => "HMAC_SHA_256",
        Some(IntegId::HmacSha2_384_192) => "HMAC_SHA_384",
        Some(IntegId::HmacSha2_512_256) => "HMAC_SHA_512",
        Some(_) => "unknown",
    }
}

/// Wireshark 4.0's name of an ESP encryption algorithm in `esp_sa`.
pub(crate) fn wireshark_esp_encr(e: Encr) -> &'static str {
    if e.is_aead() {
        "AES-GCM with 16 octet ICV [RFC4106]"
    } else {
        "AES-CBC [RFC3602]"
    }
}

/// Wireshark 4.0's name of an ESP authentication algorithm in `esp_sa`.
pub(crate) fn wireshark_esp_auth(i: Option<IntegId>) -> &'static str {
    match i {
        None => "NULL",
        Some(IntegId::HmacSha1_96) => "HMAC-SHA-1-96 [RFC2404]",
        Some(IntegId::HmacSha2_256_128) => "HMAC-SHA-256-128 [RFC4868]",
        Some(IntegId::HmacSha2_384_192) => "HMAC-SHA-384-192 [RFC4868]",
        Some(IntegId::HmacSha2_512_256) => "HMAC-SHA-512-256 [RFC4868]",
        Some(_) => "NULL",
    }
}

/// Wireshark 4.0's name of an IKEv2 encryption algorithm in
/// `ikev2_decryption_table`.
pub(crate) fn wireshark_ike_encr(e: Encr) -> &'static str {
    match e {
        Encr::AesCbc128 => "AES-CBC-128 [RFC3602]",
        Encr::AesCbc192 => "AES-CBC-192 [RFC3602]",
        Encr::AesCbc256 => "AES-CBC-256 [RFC3602]",
        Encr::AesGcm16_128 => "AES-GCM-128 with 16 octet ICV [RFC5282]",
        Encr::AesGcm16_256 => "AES-GCM-256 with 16 octet ICV [RFC5282]",
        _ => "NULL",
    }
}

/// Wireshark 4.0's name of an IKEv2 integrity algorithm in
/// `ikev2_decryption_table`.
pub(crate) fn wireshark_ike_integ(i: Option<IntegId>) -> &'static str {
    match i {
        None => "NONE [RFC4306]",
        Some(IntegId::HmacSha1_96) => "HMAC_SHA1_96 [RFC2404]",
        Some(IntegId::HmacSha2_256_128) => "HMAC_SHA2_256_128 [RFC4868]",
        Some(IntegId::HmacSha2_384_192) => "HMAC_SHA2_384_192 [RFC4868]",
        Some(IntegId::HmacSha2_512_256) => "HMAC_SHA2_512_256 [RFC4868]",
        Some(_) => "NONE [RFC4306]",
    }
}
