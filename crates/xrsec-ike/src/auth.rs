//! Pre-shared key authentication (RFC 7296 2.15), and the octets a
//! signature covers (RFC 7296 2.15, RFC 7427 3).
//!
//! AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), `<SignedOctets>`), where
//! the initiator's SignedOctets are RealMessage1 | NonceRData |
//! prf(SK_pi, RestOfInitIDPayload) and the responder's RealMessage2 |
//! NonceIData | prf(SK_pr, RestOfRespIDPayload). The received value is
//! compared in constant time; keys and intermediate values stay in
//! [`SecretBytes`].

use xrsec_crypto::{prf, PrfId, SecretBytes};

/// Auth Method "Shared Key Message Integrity Code" (RFC 7296 3.8).
pub(crate) const SHARED_KEY_MIC: u8 = 2;

/// RFC 7296 2.15: the pad string, 17 ASCII characters without terminator.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// What one side signs: its own IKE_SA_INIT message as sent, the peer's
/// nonce, and its own ID payload body keyed with its SK_p.
pub(crate) struct SignedOctets<'a> {
    pub real_message: &'a [u8],
    pub peer_nonce: &'a [u8],
    pub sk_p: &'a SecretBytes,
    /// RestOfIDPayload: ID type, three reserved bytes, identification data.
    pub id_body: &'a [u8],
}

/// RFC 7296 2.15: RealMessage | Nonce | prf(SK_p, RestOfIDPayload), the
/// octets a PSK MACs and a signature (methods 1 and 14) signs.
pub(crate) fn signed_octets(prf_id: PrfId, octets: &SignedOctets<'_>) -> Vec<u8> {
    let maced_id = prf(prf_id, octets.sk_p.as_bytes(), octets.id_body);
    let mut signed =
        Vec::with_capacity(octets.real_message.len() + octets.peer_nonce.len() + maced_id.len());
    signed.extend_from_slice(octets.real_message);
    signed.extend_from_slice(octets.peer_nonce);
    signed.extend_from_slice(maced_id.as_bytes());
    signed
}

/// The AUTH payload data for `psk` over `octets`.
pub(crate) fn psk_auth(prf_id: PrfId, psk: &SecretBytes, octets: &SignedOctets<'_>) -> SecretBytes {
    let key = prf(prf_id, psk.as_bytes(), KEY_PAD);
    prf(prf_id, key.as_bytes(), &signed_octets(prf_id, octets))
}

/// Whether `received` is the AUTH the peer should have computed with `psk`.
/// Constant-time in the contents ([`SecretBytes`]' equality).
pub(crate) fn verify_psk_auth(
    prf_id: PrfId,
    psk: &SecretBytes,
    octets: &SignedOctets<'_>,
    received: &[u8],
) -> bool {
    psk_auth(prf_id, psk, octets) == SecretBytes::new(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn octets<'a>(sk_p: &'a SecretBytes) -> SignedOctets<'a> {
        SignedOctets {
            real_message: b"message one",
            peer_nonce: &[7; 32],
            sk_p,
            id_body: &[1, 0, 0, 0, 10, 99, 0, 1],
        }
    }

    #[test]
    fn psk_auth_is_prf_of_the_padded_key_over_the_signed_octets() {
        let sk_p = SecretBytes::new(&[3; 32]);
        let psk = SecretBytes::new(b"secret");
        let got = psk_auth(PrfId::HmacSha2_256, &psk, &octets(&sk_p));
        // Recomputed step by step from RFC 7296 2.15.
        let maced = prf(PrfId::HmacSha2_256, &[3; 32], &[1, 0, 0, 0, 10, 99, 0, 1]);
        let key = prf(PrfId::HmacSha2_256, b"secret", b"Key Pad for IKEv2");
        let mut signed = b"message one".to_vec();
        signed.extend_from_slice(&[7; 32]);
        signed.extend_from_slice(maced.as_bytes());
        assert_eq!(got, prf(PrfId::HmacSha2_256, key.as_bytes(), &signed));
        assert_eq!(got.len(), 32);
    }

    #[test]
    fn verification_fails_for_another_key_or_a_flipped_bit() {
        let sk_p = SecretBytes::new(&[3; 48]);
        let psk = SecretBytes::new(b"secret");
        let good = psk_auth(PrfId::HmacSha2_384, &psk, &octets(&sk_p));
        assert!(verify_psk_auth(
            PrfId::HmacSha2_384,
            &psk,
            &octets(&sk_p),
            good.as_bytes()
        ));
        let other = SecretBytes::new(b"secreT");
        assert!(!verify_psk_auth(
            PrfId::HmacSha2_384,
            &other,
            &octets(&sk_p),
            good.as_bytes()
        ));
        let mut bad = good.as_bytes().to_vec();
        bad[5] ^= 1;
        assert!(!verify_psk_auth(
            PrfId::HmacSha2_384,
            &psk,
            &octets(&sk_p),
            &bad
        ));
        assert!(!verify_psk_auth(
            PrfId::HmacSha2_384,
            &psk,
            &octets(&sk_p),
            &bad[..20]
        ));
    }
}
