//! The IKEv2 key schedule: prf, prf+ (RFC 7296 2.13), SKEYSEED and the IKE SA
//! keys (2.14), IKE SA rekey (2.18) and Child SA keying material (2.17).
//!
//! Invariants: every derived value is a [`SecretBytes`] (zeroized on drop,
//! redacted in `Debug`); keys are split from the prf+ stream in the order the
//! RFC fixes, and each key has the length its transform needs, so a
//! [`ChildKeys`] always fits the [`EspSuite`] it was derived for.

use core::fmt;

use zeroize::Zeroize;

use crate::dh::SharedSecret;
use crate::esp::EspSuite;
use crate::mac::{MacKey, MacOutput};
use crate::secret::SecretBytes;
use crate::transform::{Encr, IntegId, PrfId};

/// Why prf+ could not produce the requested output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfError {
    /// More than 255 PRF blocks were requested (RFC 7296 2.13).
    OutputTooLong {
        /// Bytes requested.
        requested: usize,
        /// The most this PRF's prf+ can produce.
        max: usize,
    },
}

impl fmt::Display for KdfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutputTooLong { requested, max } => {
                write!(f, "prf+ asked for {requested} bytes, at most {max} exist")
            }
        }
    }
}

impl std::error::Error for KdfError {}

/// Which end of an exchange we are: decides which keys protect what we send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The original initiator (of the IKE SA, or of the CREATE_CHILD_SA
    /// exchange for Child SA keys).
    Initiator,
    /// The original responder.
    Responder,
}

/// A PRF output as a secret, wiping the stack copy.
fn into_secret(mut output: MacOutput) -> SecretBytes {
    let secret = SecretBytes::new(output.as_bytes());
    output.wipe();
    secret
}

/// `prf(key, data)` (RFC 7296 2.13). The output is treated as secret.
pub fn prf(id: PrfId, key: &[u8], data: &[u8]) -> SecretBytes {
    into_secret(MacKey::new(id.hash(), key).compute(&[data]))
}

/// HMAC with the integrity transform's hash, truncated to its ICV length:
/// the raw ICV function of RFC 2404 / RFC 4868 over one buffer. For tests and
/// one-off checks; ESP and IKE keep a keyed state instead.
pub fn integ_icv(id: IntegId, key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut icv = vec![0u8; id.icv_len()];
    MacKey::new(id.hash(), key).sign_truncated(&[data], &mut icv);
    icv
}

/// `prf+(key, seed)` truncated to `len` bytes (RFC 7296 2.13):
/// T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), at most 255 blocks.
pub fn prf_plus(id: PrfId, key: &[u8], seed: &[u8], len: usize) -> Result<SecretBytes, KdfError> {
    let max = 255 * id.output_len();
    if len > max {
        return Err(KdfError::OutputTooLong {
            requested: len,
            max,
        });
    }
    Ok(prf_plus_parts(id, key, &[seed], len))
}

/// prf+ over a seed given in parts (so that `g^ir | Ni | Nr` needs no copy
/// into a temporary buffer). `len` must be at most 255 blocks; every caller
/// here asks for far less (the longest key set is a few hundred bytes).
fn prf_plus_parts(id: PrfId, key: &[u8], seed: &[&[u8]], len: usize) -> SecretBytes {
    let mac = MacKey::new(id.hash(), key);
    let mut out = SecretBytes::zeroed(len);
    let mut prev = [0u8; crate::mac::MAX_MAC_LEN];
    let mut prev_len = 0;
    let mut filled = 0;
    let mut counter: u8 = 1;
    while filled < len {
        let mut ctx = mac.start();
        ctx.update(&prev[..prev_len]);
        for part in seed {
            ctx.update(part);
        }
        ctx.update(&[counter]);
        let mut output = ctx.finish();
        let block = output.as_bytes();
        let take = block.len().min(len - filled);
        out.as_mut_bytes()[filled..filled + take].copy_from_slice(&block[..take]);
        filled += take;
        prev[..block.len()].copy_from_slice(block);
        prev_len = block.len();
        output.wipe();
        // Cannot wrap: len <= 255 blocks is checked by the public entry points.
        counter = counter.wrapping_add(1);
    }
    prev.zeroize();
    out
}

/// SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 2.14).
///
/// The HMAC PRFs take keys of any length, so the whole nonces are used (the
/// "first half of each nonce" rule applies only to fixed-key-length PRFs).
pub fn skeyseed(prf: PrfId, ni: &[u8], nr: &[u8], g_ir: &SharedSecret) -> SecretBytes {
    let mut key = Vec::with_capacity(ni.len() + nr.len());
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    into_secret(MacKey::new(prf.hash(), &key).compute(&[g_ir.as_bytes()]))
}

/// SKEYSEED for a rekeyed IKE SA (RFC 7296 2.18):
/// prf(SK_d (old), g^ir (new) | Ni | Nr), where `prf` is the OLD IKE SA's
/// PRF and Ni, Nr are the nonces of the CREATE_CHILD_SA exchange. The new
/// SA's keys then come from [`derive_ike_keys`] with the NEW PRF.
pub fn skeyseed_rekey(
    prf: PrfId,
    old_sk_d: &SecretBytes,
    g_ir_new: &SharedSecret,
    ni: &[u8],
    nr: &[u8],
) -> SecretBytes {
    into_secret(MacKey::new(prf.hash(), old_sk_d.as_bytes()).compute(&[
        g_ir_new.as_bytes(),
        ni,
        nr,
    ]))
}

/// The seven IKE SA keys (RFC 7296 2.14). `sk_ai`/`sk_ar` are empty when the
/// cipher is an AEAD; `sk_ei`/`sk_er` then end with the 4-byte GCM salt
/// (RFC 5282 7.1).
#[derive(Clone, PartialEq, Eq)]
pub struct IkeKeys {
    /// SK_d: keys Child SAs and the next IKE SA.
    pub sk_d: SecretBytes,
    /// SK_ai: integrity of messages from the initiator.
    pub sk_ai: SecretBytes,
    /// SK_ar: integrity of messages from the responder.
    pub sk_ar: SecretBytes,
    /// SK_ei: encryption of messages from the initiator.
    pub sk_ei: SecretBytes,
    /// SK_er: encryption of messages from the responder.
    pub sk_er: SecretBytes,
    /// SK_pi: the initiator's AUTH payload computation.
    pub sk_pi: SecretBytes,
    /// SK_pr: the responder's AUTH payload computation.
    pub sk_pr: SecretBytes,
}

impl fmt::Debug for IkeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeKeys")
            .field("sk_d", &self.sk_d)
            .field("sk_ai", &self.sk_ai)
            .field("sk_ar", &self.sk_ar)
            .field("sk_ei", &self.sk_ei)
            .field("sk_er", &self.sk_er)
            .field("sk_pi", &self.sk_pi)
            .field("sk_pr", &self.sk_pr)
            .finish()
    }
}

/// Derives the IKE SA keys (RFC 7296 2.14):
/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
///   = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
///
/// SK_d, SK_pi and SK_pr are the PRF's preferred key length; SK_a* the
/// integrity key length (0 for AEAD, `integ` is then `None`); SK_e* the
/// cipher's key material length including the GCM salt. The SPIs are the
/// 8-byte values as they appear on the wire. For a rekeyed IKE SA pass the
/// SKEYSEED from [`skeyseed_rekey`], the new nonces and the new SPIs.
#[allow(clippy::too_many_arguments)] // the RFC's inputs, each named as there
pub fn derive_ike_keys(
    prf: PrfId,
    encr: Encr,
    integ: Option<IntegId>,
    skeyseed: &SecretBytes,
    ni: &[u8],
    nr: &[u8],
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
) -> IkeKeys {
    let d_len = prf.preferred_key_len();
    let a_len = integ.map_or(0, IntegId::key_len);
    let e_len = encr.keymat_len();
    let total = 3 * d_len + 2 * a_len + 2 * e_len;
    let keymat = prf_plus_parts(prf, skeyseed.as_bytes(), &[ni, nr, spi_i, spi_r], total);
    let mut split = Splitter::new(&keymat);
    IkeKeys {
        sk_d: split.take(d_len),
        sk_ai: split.take(a_len),
        sk_ar: split.take(a_len),
        sk_ei: split.take(e_len),
        sk_er: split.take(e_len),
        sk_pi: split.take(d_len),
        sk_pr: split.take(d_len),
    }
}

/// The keys of one direction of an ESP SA: the encryption key material
/// (with the 4-byte salt at its end for GCM, RFC 4106 8.1) and the integrity
/// key (empty for GCM).
#[derive(Clone, PartialEq, Eq)]
pub struct EspKeys {
    /// Encryption key material, salt included for GCM.
    pub encr: SecretBytes,
    /// Integrity key; empty for AEAD suites.
    pub integ: SecretBytes,
}

impl fmt::Debug for EspKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EspKeys")
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .finish()
    }
}

/// Keying material of one Child SA (a pair of ESP SAs).
#[derive(Clone, PartialEq, Eq)]
pub struct ChildKeys {
    /// Protects traffic from the exchange's initiator to its responder.
    pub initiator_to_responder: EspKeys,
    /// Protects traffic from the exchange's responder to its initiator.
    pub responder_to_initiator: EspKeys,
}

impl ChildKeys {
    /// Keys for the SA we send on, given our role in the exchange that
    /// created the Child SA.
    pub fn outbound(&self, role: Role) -> &EspKeys {
        match role {
            Role::Initiator => &self.initiator_to_responder,
            Role::Responder => &self.responder_to_initiator,
        }
    }

    /// Keys for the SA we receive on.
    pub fn inbound(&self, role: Role) -> &EspKeys {
        match role {
            Role::Initiator => &self.responder_to_initiator,
            Role::Responder => &self.initiator_to_responder,
        }
    }
}

impl fmt::Debug for ChildKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildKeys")
            .field("initiator_to_responder", &self.initiator_to_responder)
            .field("responder_to_initiator", &self.responder_to_initiator)
            .finish()
    }
}

/// Derives Child SA keying material (RFC 7296 2.17):
/// KEYMAT = prf+(SK_d, Ni | Nr), or prf+(SK_d, g^ir (new) | Ni | Nr) with PFS.
///
/// RFC 7296 2.17: keys for the initiator-to-responder SA are taken first,
/// and within a direction the encryption key before the integrity key.
/// `ni`/`nr` are the nonces of the exchange that created the Child SA
/// (IKE_SA_INIT's for the first Child SA, CREATE_CHILD_SA's after).
pub fn derive_child_keys(
    prf: PrfId,
    sk_d: &SecretBytes,
    g_ir: Option<&SharedSecret>,
    ni: &[u8],
    nr: &[u8],
    suite: &EspSuite,
) -> ChildKeys {
    let e_len = suite.encr_key_len();
    let a_len = suite.integ_key_len();
    let total = 2 * (e_len + a_len);
    let keymat = match g_ir {
        Some(g) => prf_plus_parts(prf, sk_d.as_bytes(), &[g.as_bytes(), ni, nr], total),
        None => prf_plus_parts(prf, sk_d.as_bytes(), &[ni, nr], total),
    };
    let mut split = Splitter::new(&keymat);
    let initiator_to_responder = EspKeys {
        encr: split.take(e_len),
        integ: split.take(a_len),
    };
    let responder_to_initiator = EspKeys {
        encr: split.take(e_len),
        integ: split.take(a_len),
    };
    ChildKeys {
        initiator_to_responder,
        responder_to_initiator,
    }
}

/// Takes consecutive keys out of a prf+ stream.
struct Splitter<'a> {
    keymat: &'a SecretBytes,
    at: usize,
}

impl<'a> Splitter<'a> {
    fn new(keymat: &'a SecretBytes) -> Self {
        Self { keymat, at: 0 }
    }

    fn take(&mut self, len: usize) -> SecretBytes {
        // The stream was sized as the sum of the takes, so this never runs short.
        let bytes = self
            .keymat
            .as_bytes()
            .get(self.at..self.at + len)
            .unwrap_or_default();
        self.at += len;
        SecretBytes::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prf_plus_refuses_more_than_255_blocks() {
        assert!(prf_plus(PrfId::HmacSha1, b"k", b"s", 255 * 20).is_ok());
        assert_eq!(
            prf_plus(PrfId::HmacSha1, b"k", b"s", 255 * 20 + 1),
            Err(KdfError::OutputTooLong {
                requested: 5101,
                max: 5100
            })
        );
    }

    #[test]
    fn prf_plus_is_a_prefix_of_longer_output() {
        let long = prf_plus(PrfId::HmacSha2_384, b"key", b"seed", 200).unwrap();
        let short = prf_plus(PrfId::HmacSha2_384, b"key", b"seed", 50).unwrap();
        assert_eq!(&long.as_bytes()[..50], short.as_bytes());
    }

    #[test]
    fn prf_plus_over_parts_equals_prf_plus_over_the_joined_seed() {
        let joined = prf_plus(PrfId::HmacSha2_256, b"k", b"abcdefgh", 100).unwrap();
        let parts = prf_plus_parts(PrfId::HmacSha2_256, b"k", &[b"ab", b"cdef", b"gh"], 100);
        assert_eq!(joined, parts);
        let many = prf_plus_parts(
            PrfId::HmacSha2_256,
            b"k",
            &[b"a", b"b", b"c", b"d", b"efgh"],
            100,
        );
        assert_eq!(joined, many);
    }

    #[test]
    fn child_keys_debug_shows_no_key_bytes() {
        let suite = EspSuite::new(Encr::AesGcm16_256, None).unwrap();
        let keys = derive_child_keys(
            PrfId::HmacSha2_256,
            &SecretBytes::new(&[0x42; 32]),
            None,
            &[1; 16],
            &[2; 16],
            &suite,
        );
        let shown = format!("{keys:?}");
        assert!(shown.contains("36 bytes"), "{shown}");
        let hex: String = keys.initiator_to_responder.encr.as_bytes()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!shown.contains(&hex));
    }

    #[test]
    fn ike_keys_have_the_lengths_of_their_transforms() {
        let keys = derive_ike_keys(
            PrfId::HmacSha2_384,
            Encr::AesGcm16_128,
            None,
            &SecretBytes::new(&[9; 48]),
            &[1; 32],
            &[2; 32],
            &[3; 8],
            &[4; 8],
        );
        assert_eq!(keys.sk_d.len(), 48);
        assert!(keys.sk_ai.is_empty() && keys.sk_ar.is_empty());
        assert_eq!(keys.sk_ei.len(), 20);
        assert_eq!(keys.sk_pr.len(), 48);
        let shown = format!("{keys:?}");
        assert!(shown.contains("sk_d: SecretBytes(48 bytes)"), "{shown}");
        assert!(!shown.contains(&format!("{:?}", &keys.sk_d.as_bytes()[..4])));
    }
}
