//! Block cipher modes with their key schedules built once: AES-CBC and
//! AES-GCM, independent of ESP and IKE framing.
//!
//! The ESP and IKE modules frame packets around these; they are public so that
//! known-answer tests (RFC 3602 cases 1-4, the GCM specification's test cases)
//! and a later multi-buffer CBC can use them. Backend types (ring's
//! `LessSafeKey`, RustCrypto's `Aes*`) do not appear in the API, so a second
//! backend can replace them behind the same methods. Nonce uniqueness for GCM
//! is the caller's duty; the ESP and IKE framings guarantee it.

use core::fmt;

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};

use crate::transform::{KeyError, AES_BLOCK_LEN};

/// GCM nonce length: salt (4) || explicit IV (8) in IPsec.
pub const GCM_NONCE_LEN: usize = 12;
/// GCM tag length used by ENCR_AES_GCM_16.
pub const GCM_TAG_LEN: usize = 16;

/// Why a cipher operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CipherError {
    /// CBC input is not a whole number of 16-byte blocks.
    NotBlockAligned,
    /// The input is longer than the mode allows (GCM: 2^36 - 32 bytes).
    TooLong,
    /// The GCM tag did not verify; the buffer contents are unspecified.
    Unauthentic,
}

impl fmt::Display for CipherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotBlockAligned => "input is not a whole number of cipher blocks",
            Self::TooLong => "input is too long for the cipher mode",
            Self::Unauthentic => "authentication tag mismatch",
        })
    }
}

impl std::error::Error for CipherError {}

enum AesSchedule {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

/// An AES key for CBC mode, expanded once. Zeroizes its round keys on drop.
pub struct AesCbcKey(AesSchedule);

impl AesCbcKey {
    /// Expands a 16-, 24- or 32-byte AES key.
    pub fn new(key: &[u8]) -> Result<Self, KeyError> {
        let schedule = match key.len() {
            16 => Aes128::new_from_slice(key).map(AesSchedule::A128),
            24 => Aes192::new_from_slice(key).map(AesSchedule::A192),
            32 => Aes256::new_from_slice(key).map(AesSchedule::A256),
            _ => {
                return Err(KeyError::WrongKeyLength {
                    key: "encryption",
                    expected: 32,
                    actual: key.len(),
                })
            }
        };
        schedule.map(Self).map_err(|_| KeyError::WrongKeyLength {
            key: "encryption",
            expected: 32,
            actual: key.len(),
        })
    }

    /// Encrypts `buf` in place in CBC mode starting from `iv`.
    /// `buf` must be a whole number of blocks (the caller pads).
    pub fn encrypt_in_place(&self, iv: &[u8; 16], buf: &mut [u8]) -> Result<(), CipherError> {
        if buf.len() % AES_BLOCK_LEN != 0 {
            return Err(CipherError::NotBlockAligned);
        }
        let len = buf.len();
        let done = match &self.0 {
            AesSchedule::A128(k) => cbc::Encryptor::<&Aes128>::inner_iv_init(k, iv.into())
                .encrypt_padded_mut::<NoPadding>(buf, len)
                .is_ok(),
            AesSchedule::A192(k) => cbc::Encryptor::<&Aes192>::inner_iv_init(k, iv.into())
                .encrypt_padded_mut::<NoPadding>(buf, len)
                .is_ok(),
            AesSchedule::A256(k) => cbc::Encryptor::<&Aes256>::inner_iv_init(k, iv.into())
                .encrypt_padded_mut::<NoPadding>(buf, len)
                .is_ok(),
        };
        if done {
            Ok(())
        } else {
            Err(CipherError::NotBlockAligned)
        }
    }

    /// Decrypts `buf` in place in CBC mode starting from `iv`.
    pub fn decrypt_in_place(&self, iv: &[u8; 16], buf: &mut [u8]) -> Result<(), CipherError> {
        if buf.len() % AES_BLOCK_LEN != 0 {
            return Err(CipherError::NotBlockAligned);
        }
        let done = match &self.0 {
            AesSchedule::A128(k) => cbc::Decryptor::<&Aes128>::inner_iv_init(k, iv.into())
                .decrypt_padded_mut::<NoPadding>(buf)
                .is_ok(),
            AesSchedule::A192(k) => cbc::Decryptor::<&Aes192>::inner_iv_init(k, iv.into())
                .decrypt_padded_mut::<NoPadding>(buf)
                .is_ok(),
            AesSchedule::A256(k) => cbc::Decryptor::<&Aes256>::inner_iv_init(k, iv.into())
                .decrypt_padded_mut::<NoPadding>(buf)
                .is_ok(),
        };
        if done {
            Ok(())
        } else {
            Err(CipherError::NotBlockAligned)
        }
    }

    fn bits(&self) -> u16 {
        match self.0 {
            AesSchedule::A128(_) => 128,
            AesSchedule::A192(_) => 192,
            AesSchedule::A256(_) => 256,
        }
    }
}

impl fmt::Debug for AesCbcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AesCbcKey(AES-{})", self.bits())
    }
}

/// An AES-GCM key (128 or 256 bits) with its precomputed tables.
///
/// ring does not zeroize its expanded key on drop; the raw key bytes this was
/// built from live in a [`crate::SecretBytes`] that does.
pub struct AesGcmKey {
    key: ring::aead::LessSafeKey,
    bits: u16,
}

impl AesGcmKey {
    /// Builds a key from 16 or 32 bytes (AES-192-GCM is not offered: ring
    /// lacks it and the project's transform list does not use it).
    pub fn new(key: &[u8]) -> Result<Self, KeyError> {
        let (alg, bits) = match key.len() {
            16 => (&ring::aead::AES_128_GCM, 128),
            32 => (&ring::aead::AES_256_GCM, 256),
            _ => {
                return Err(KeyError::WrongKeyLength {
                    key: "encryption",
                    expected: 32,
                    actual: key.len(),
                })
            }
        };
        let unbound =
            ring::aead::UnboundKey::new(alg, key).map_err(|_| KeyError::WrongKeyLength {
                key: "encryption",
                expected: alg.key_len(),
                actual: key.len(),
            })?;
        Ok(Self {
            key: ring::aead::LessSafeKey::new(unbound),
            bits,
        })
    }

    /// Encrypts `in_out` in place and returns the 16-byte tag over `aad` and
    /// the ciphertext. A nonce must never be used twice under one key.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; GCM_TAG_LEN], CipherError> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(*nonce),
                ring::aead::Aad::from(aad),
                in_out,
            )
            .map_err(|_| CipherError::TooLong)?;
        let mut out = [0u8; GCM_TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Verifies `tag` over `aad` and the ciphertext, then decrypts `in_out`
    /// in place. On failure the contents of `in_out` are unspecified.
    pub fn open_in_place(
        &self,
        nonce: &[u8; GCM_NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; GCM_TAG_LEN],
    ) -> Result<(), CipherError> {
        self.key
            .open_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(*nonce),
                ring::aead::Aad::from(aad),
                ring::aead::Tag::from(*tag),
                in_out,
                0..,
            )
            .map(|_| ())
            .map_err(|_| CipherError::Unauthentic)
    }
}

impl fmt::Debug for AesGcmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AesGcmKey(AES-{}-GCM)", self.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbc_rejects_input_that_is_not_whole_blocks() {
        let key = AesCbcKey::new(&[7; 16]).unwrap();
        let mut buf = [0u8; 17];
        assert_eq!(
            key.encrypt_in_place(&[0; 16], &mut buf),
            Err(CipherError::NotBlockAligned)
        );
        assert_eq!(
            key.decrypt_in_place(&[0; 16], &mut buf[..15]),
            Err(CipherError::NotBlockAligned)
        );
    }

    #[test]
    fn keys_of_unsupported_lengths_are_refused() {
        assert!(AesCbcKey::new(&[0; 15]).is_err());
        assert!(AesGcmKey::new(&[0; 24]).is_err());
    }

    #[test]
    fn cipher_keys_debug_shows_no_key_bytes() {
        let cbc = AesCbcKey::new(&[0x5a; 32]).unwrap();
        let gcm = AesGcmKey::new(&[0x5a; 16]).unwrap();
        assert_eq!(format!("{cbc:?}"), "AesCbcKey(AES-256)");
        assert_eq!(format!("{gcm:?}"), "AesGcmKey(AES-128-GCM)");
    }

    #[test]
    fn gcm_open_rejects_a_flipped_tag() {
        let key = AesGcmKey::new(&[1; 16]).unwrap();
        let mut buf = *b"hello world";
        let mut tag = key.seal_in_place(&[2; 12], b"aad", &mut buf).unwrap();
        tag[0] ^= 1;
        assert_eq!(
            key.open_in_place(&[2; 12], b"aad", &mut buf, &tag),
            Err(CipherError::Unauthentic)
        );
    }
}
