//! Owned secret bytes: key material, SKEYSEED, DH shared secrets.
//!
//! Invariant: the bytes are zeroized when the value is dropped, `Debug` shows
//! the length only, and equality is constant-time. The buffer is allocated
//! once at its final size, so no reallocation leaves a stray copy behind.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes that zeroize on drop and never print their contents.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Box<[u8]>);

impl SecretBytes {
    /// Copies `bytes` into a new secret.
    pub fn new(bytes: &[u8]) -> Self {
        Self(bytes.into())
    }

    /// A secret of `len` zero bytes, to be filled in place.
    pub(crate) fn zeroed(len: usize) -> Self {
        Self(vec![0u8; len].into_boxed_slice())
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a zero-length secret (e.g. SK_a when the cipher is an AEAD).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    /// Takes the bytes and zeroizes the vector's whole allocation (shrinking
    /// it in place could reallocate and leave a copy behind).
    fn from(mut bytes: Vec<u8>) -> Self {
        let secret = Self::new(&bytes);
        bytes.zeroize();
        secret
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

impl PartialEq for SecretBytes {
    /// Constant-time in the contents (the lengths are not secret).
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_length_and_not_the_bytes() {
        let s = SecretBytes::new(&[0xab; 20]);
        let d = format!("{s:?}");
        assert_eq!(d, "SecretBytes(20 bytes)");
        assert!(!d.to_lowercase().contains("ab"));
    }

    #[test]
    fn equality_compares_contents_and_lengths() {
        assert_eq!(SecretBytes::new(b"abc"), SecretBytes::new(b"abc"));
        assert_ne!(SecretBytes::new(b"abc"), SecretBytes::new(b"abd"));
        assert_ne!(SecretBytes::new(b"abc"), SecretBytes::new(b"ab"));
    }
}
