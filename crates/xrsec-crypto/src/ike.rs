//! Protection of the IKE Encrypted (SK) payload: RFC 7296 3.14 for AES-CBC
//! with HMAC, RFC 5282 for AES-GCM.
//!
//! An [`IkeCrypto`] holds one direction's keys (SK_ei + SK_ai for what the
//! initiator sends, SK_er + SK_ar for what the responder sends). The IKE
//! crate writes the IKE header and the SK payload's generic header first
//! (their length fields computed with [`IkeCrypto::sealed_len`]), then calls
//! [`IkeCrypto::seal`] with those bytes as `aad` and appends what it returns:
//!
//! ```text
//! aad = [IKE header 28][payloads before SK, if any][SK generic header 4]
//! seal(aad, plaintext) = [IV][encrypt(plaintext | padding | pad length)][ICV]
//! ```
//!
//! Which bytes are integrity-protected:
//! - CBC + HMAC (RFC 7296 3.14): the ICV is the truncated HMAC over
//!   `aad | IV | ciphertext`, i.e. the whole message from the first byte of
//!   the IKE header up to, not including, the ICV.
//! - GCM (RFC 5282 5.1): the AAD is `aad` (IKE header through the SK
//!   generic header; the IV is not AAD), the nonce is salt | IV, the ICV is
//!   the 16-byte tag over `aad` and the ciphertext.
//!
//! The same works for the Encrypted Fragment payload (RFC 7383 2.5) with its
//! 8-byte header as the end of `aad`. A CBC IV comes from the caller's RNG
//! (RFC 7296 3.14: random and unpredictable); a GCM IV is a per-key message
//! counter kept here, so it never repeats as long as one `IkeCrypto` is used
//! per key and direction for the life of the IKE SA.

use core::fmt;

use rand_core::CryptoRngCore;

use crate::cipher::{AesCbcKey, AesGcmKey, GCM_TAG_LEN};
use crate::esp::check_len;
use crate::kdf::{IkeKeys, Role};
use crate::mac::MacKey;
use crate::secret::SecretBytes;
use crate::transform::{Encr, IntegId, KeyError, AES_BLOCK_LEN, GCM_EXPLICIT_IV_LEN, GCM_SALT_LEN};

/// Why an SK payload could not be opened (or, for `IvExhausted`, sealed).
/// The IKE layer discards such a message (RFC 7296 2.21.1 for integrity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IkeCryptoError {
    /// The SK payload body is shorter than IV + minimal ciphertext + ICV.
    Truncated,
    /// CBC ciphertext that is not a whole number of blocks.
    NotBlockAligned,
    /// The ICV does not verify.
    IntegrityFailure,
    /// The Pad Length byte points past the start of the plaintext.
    BadPadLength,
    /// 2^64 GCM messages were sealed under one key (never in practice).
    IvExhausted,
}

impl fmt::Display for IkeCryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "encrypted payload truncated",
            Self::NotBlockAligned => "encrypted payload is not a whole number of blocks",
            Self::IntegrityFailure => "integrity check failed",
            Self::BadPadLength => "pad length exceeds the decrypted data",
            Self::IvExhausted => "GCM IV space exhausted; rekey",
        })
    }
}

impl std::error::Error for IkeCryptoError {}

// One per SA, long-lived: its size does not matter, and boxing the CBC
// variant would add a pointer chase per packet.
#[allow(clippy::large_enum_variant)]
enum IkeCipher {
    Cbc {
        aes: AesCbcKey,
        mac: MacKey,
        icv_len: usize,
    },
    Gcm {
        key: AesGcmKey,
        salt: [u8; GCM_SALT_LEN],
        next_iv: u64,
    },
}

/// One direction's SK payload protection.
pub struct IkeCrypto {
    encr: Encr,
    integ: Option<IntegId>,
    cipher: IkeCipher,
}

impl IkeCrypto {
    /// Keys one direction: `sk_e` is SK_ei or SK_er (with the 4-byte salt at
    /// its end for GCM, RFC 5282 7.1), `sk_a` is SK_ai or SK_ar (empty for
    /// GCM, `integ` then `None`).
    pub fn new(
        encr: Encr,
        integ: Option<IntegId>,
        sk_e: &SecretBytes,
        sk_a: &SecretBytes,
    ) -> Result<Self, KeyError> {
        if encr.is_aead() == integ.is_some() {
            return Err(KeyError::IntegrityMismatch);
        }
        check_len("encryption", encr.keymat_len(), sk_e.len())?;
        check_len("integrity", integ.map_or(0, IntegId::key_len), sk_a.len())?;
        let cipher = match integ {
            Some(integ) => IkeCipher::Cbc {
                aes: AesCbcKey::new(sk_e.as_bytes())?,
                mac: MacKey::new(integ.hash(), sk_a.as_bytes()),
                icv_len: integ.icv_len(),
            },
            None => {
                let (key, salt_bytes) = sk_e.as_bytes().split_at(encr.aes_key_len());
                let mut salt = [0u8; GCM_SALT_LEN];
                salt.copy_from_slice(salt_bytes);
                IkeCipher::Gcm {
                    key: AesGcmKey::new(key)?,
                    salt,
                    next_iv: 0,
                }
            }
        };
        Ok(Self {
            encr,
            integ,
            cipher,
        })
    }

    /// Both directions for our role: `(outbound, inbound)`. The initiator
    /// sends with SK_ei/SK_ai and receives with SK_er/SK_ar (RFC 7296 2.14).
    pub fn pair(
        keys: &IkeKeys,
        encr: Encr,
        integ: Option<IntegId>,
        role: Role,
    ) -> Result<(Self, Self), KeyError> {
        let from_initiator = Self::new(encr, integ, &keys.sk_ei, &keys.sk_ai)?;
        let from_responder = Self::new(encr, integ, &keys.sk_er, &keys.sk_ar)?;
        Ok(match role {
            Role::Initiator => (from_initiator, from_responder),
            Role::Responder => (from_responder, from_initiator),
        })
    }

    /// The encryption transform.
    pub fn encr(&self) -> Encr {
        self.encr
    }

    /// The integrity transform (`None` for GCM).
    pub fn integ(&self) -> Option<IntegId> {
        self.integ
    }

    /// IV length: 16 for CBC, 8 for GCM.
    pub fn iv_len(&self) -> usize {
        self.encr.iv_len()
    }

    /// ICV length: the integrity transform's, 16 for GCM.
    pub fn icv_len(&self) -> usize {
        match &self.cipher {
            IkeCipher::Cbc { icv_len, .. } => *icv_len,
            IkeCipher::Gcm { .. } => GCM_TAG_LEN,
        }
    }

    /// Length of the encrypted data (plaintext, padding, pad length).
    fn encrypted_len(&self, plaintext_len: usize) -> usize {
        match self.cipher {
            // RFC 7296 3.14: pad to a whole number of cipher blocks, with the
            // minimum padding.
            IkeCipher::Cbc { .. } => (plaintext_len + 1).div_ceil(AES_BLOCK_LEN) * AES_BLOCK_LEN,
            // RFC 5282 3: GCM needs no block alignment; no padding is sent.
            IkeCipher::Gcm { .. } => plaintext_len + 1,
        }
    }

    /// Length of what [`IkeCrypto::seal`] returns for `plaintext_len` bytes
    /// of inner payloads: IV + encrypted data + ICV. The SK payload's
    /// Payload Length is 4 + this; the IKE header's Length is `aad.len()` +
    /// this.
    pub fn sealed_len(&self, plaintext_len: usize) -> usize {
        self.iv_len() + self.encrypted_len(plaintext_len) + self.icv_len()
    }

    /// Most bytes `sealed_len` adds to a plaintext (IV, padding, pad length,
    /// ICV), for fragment sizing.
    pub fn max_overhead(&self) -> usize {
        match self.cipher {
            IkeCipher::Cbc { .. } => self.iv_len() + AES_BLOCK_LEN + self.icv_len(),
            IkeCipher::Gcm { .. } => self.iv_len() + 1 + self.icv_len(),
        }
    }

    /// Encrypts and integrity-protects `plaintext` (the inner payloads),
    /// returning `IV | ciphertext | ICV` of length `sealed_len`. `aad` is the
    /// message so far: IKE header through the SK generic header, with every
    /// length field already final.
    pub fn seal(
        &mut self,
        rng: &mut impl CryptoRngCore,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, IkeCryptoError> {
        let iv_len = self.iv_len();
        let encrypted_len = self.encrypted_len(plaintext.len());
        let mut out = vec![0u8; iv_len + encrypted_len + self.icv_len()];
        let pad_len = encrypted_len - plaintext.len() - 1;
        out[iv_len..iv_len + plaintext.len()].copy_from_slice(plaintext);
        // Padding bytes stay zero (RFC 7296 3.14: any value); then Pad Length.
        out[iv_len + encrypted_len - 1] = pad_len as u8;
        let (body, icv) = out.split_at_mut(iv_len + encrypted_len);
        match &mut self.cipher {
            IkeCipher::Cbc { aes, mac, .. } => {
                // RFC 7296 3.14: the IV MUST be random and unpredictable.
                let mut iv = [0u8; AES_BLOCK_LEN];
                rng.fill_bytes(&mut iv);
                body[..iv_len].copy_from_slice(&iv);
                aes.encrypt_in_place(&iv, &mut body[iv_len..])
                    .map_err(|_| IkeCryptoError::NotBlockAligned)?;
                // RFC 7296 3.14: the ICV covers the message from the IKE
                // header through the encrypted data.
                mac.sign_truncated(&[aad, body], icv);
            }
            IkeCipher::Gcm { key, salt, next_iv } => {
                // RFC 5282 3.1: the IV MUST NOT repeat under one key; a
                // counter per key guarantees it.
                let iv = next_iv.to_be_bytes();
                *next_iv = next_iv.checked_add(1).ok_or(IkeCryptoError::IvExhausted)?;
                body[..iv_len].copy_from_slice(&iv);
                let nonce = gcm_nonce(salt, &iv);
                let tag = key
                    .seal_in_place(&nonce, aad, &mut body[iv_len..])
                    .map_err(|_| IkeCryptoError::Truncated)?;
                icv.copy_from_slice(&tag);
            }
        }
        Ok(out)
    }

    /// Verifies and decrypts an SK payload body (`IV | ciphertext | ICV`,
    /// everything after the SK generic header), returning the inner
    /// payloads. `aad` is the received message from the IKE header through
    /// the SK generic header.
    pub fn open(&self, aad: &[u8], sk_body: &[u8]) -> Result<Vec<u8>, IkeCryptoError> {
        let iv_len = self.iv_len();
        let icv_len = self.icv_len();
        let min_encrypted = match self.cipher {
            IkeCipher::Cbc { .. } => AES_BLOCK_LEN,
            IkeCipher::Gcm { .. } => 1,
        };
        if sk_body.len() < iv_len + min_encrypted + icv_len {
            return Err(IkeCryptoError::Truncated);
        }
        let (body, icv) = sk_body.split_at(sk_body.len() - icv_len);
        let (iv, ciphertext) = body.split_at(iv_len);
        let mut plaintext = ciphertext.to_vec();
        match &self.cipher {
            IkeCipher::Cbc { aes, mac, .. } => {
                if ciphertext.len() % AES_BLOCK_LEN != 0 {
                    return Err(IkeCryptoError::NotBlockAligned);
                }
                // RFC 7296 2.21.1 / 3.14: verify the ICV before anything else.
                if !mac.verify_truncated(&[aad, body], icv) {
                    return Err(IkeCryptoError::IntegrityFailure);
                }
                let mut iv_block = [0u8; AES_BLOCK_LEN];
                iv_block.copy_from_slice(iv);
                aes.decrypt_in_place(&iv_block, &mut plaintext)
                    .map_err(|_| IkeCryptoError::NotBlockAligned)?;
            }
            IkeCipher::Gcm { key, salt, .. } => {
                let nonce = gcm_nonce(salt, iv);
                let mut tag = [0u8; GCM_TAG_LEN];
                tag.copy_from_slice(icv);
                key.open_in_place(&nonce, aad, &mut plaintext, &tag)
                    .map_err(|_| IkeCryptoError::IntegrityFailure)?;
            }
        }
        // RFC 7296 3.14: the recipient MUST accept any pad length that fits.
        let pad_len = usize::from(*plaintext.last().ok_or(IkeCryptoError::Truncated)?);
        let inner_len = plaintext
            .len()
            .checked_sub(pad_len + 1)
            .ok_or(IkeCryptoError::BadPadLength)?;
        plaintext.truncate(inner_len);
        Ok(plaintext)
    }
}

fn gcm_nonce(salt: &[u8; GCM_SALT_LEN], iv: &[u8]) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..GCM_SALT_LEN].copy_from_slice(salt);
    nonce[GCM_SALT_LEN..GCM_SALT_LEN + GCM_EXPLICIT_IV_LEN].copy_from_slice(iv);
    nonce
}

impl fmt::Debug for IkeCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeCrypto")
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .finish_non_exhaustive()
    }
}
