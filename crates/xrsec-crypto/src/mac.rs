//! Keyed HMAC state shared by the PRFs, the ESP ICV and the IKE SK payload.
//!
//! The key is processed once (ring's `hmac::Key` and RustCrypto's keyed
//! `Hmac<Sha1>` both hold the precomputed inner and outer hash states), so a
//! per-packet MAC only copies that state, hashes and finishes: no re-keying,
//! no allocation. SHA-1 comes from RustCrypto because it uses SHA-NI where
//! ring has no SHA-1 fast path; SHA-2 comes from ring.

use hmac::{Hmac, Mac as _};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::transform::Hash;

/// The longest HMAC output (SHA-512).
pub(crate) const MAX_MAC_LEN: usize = 64;

/// A full-length HMAC output on the stack.
pub(crate) struct MacOutput {
    bytes: [u8; MAX_MAC_LEN],
    len: usize,
}

impl MacOutput {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl MacOutput {
    /// Wipes the output. The KDF calls this because PRF outputs are key
    /// material; ICVs are public, and the ESP path does not pay for it.
    pub(crate) fn wipe(&mut self) {
        self.bytes.zeroize();
    }
}

/// An HMAC key with its precomputed state.
#[derive(Clone)]
pub(crate) enum MacKey {
    Sha1(Hmac<Sha1>),
    Sha2(ring::hmac::Key),
}

impl MacKey {
    pub(crate) fn new(hash: Hash, key: &[u8]) -> Self {
        match hash {
            Hash::Sha1 => Self::Sha1(
                // HMAC takes keys of any length (RFC 2104 2), so this cannot fail.
                <Hmac<Sha1> as hmac::digest::KeyInit>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC accepts every key length")),
            ),
            Hash::Sha256 => Self::Sha2(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key)),
            Hash::Sha384 => Self::Sha2(ring::hmac::Key::new(ring::hmac::HMAC_SHA384, key)),
            Hash::Sha512 => Self::Sha2(ring::hmac::Key::new(ring::hmac::HMAC_SHA512, key)),
        }
    }

    /// Starts an HMAC computation from the precomputed key state.
    pub(crate) fn start(&self) -> MacContext {
        match self {
            Self::Sha1(template) => MacContext::Sha1(template.clone()),
            Self::Sha2(key) => MacContext::Sha2(ring::hmac::Context::with_key(key)),
        }
    }

    /// HMAC over the concatenation of `parts`, full length.
    pub(crate) fn compute(&self, parts: &[&[u8]]) -> MacOutput {
        let mut ctx = self.start();
        for part in parts {
            ctx.update(part);
        }
        ctx.finish()
    }

    /// Writes the leftmost `icv.len()` bytes of the HMAC over `parts` into
    /// `icv`. The per-packet path: the state is matched and finished in
    /// place, with no intermediate context or output moved around (those
    /// moves of a few hundred bytes showed up in profiles of 64-byte packets).
    pub(crate) fn sign_truncated(&self, parts: &[&[u8]], icv: &mut [u8]) {
        match self {
            Self::Sha1(template) => {
                let mut mac = template.clone();
                for part in parts {
                    mac.update(part);
                }
                let tag = mac.finalize().into_bytes();
                let n = icv.len().min(tag.len());
                icv[..n].copy_from_slice(&tag[..n]);
            }
            Self::Sha2(key) => {
                let mut ctx = ring::hmac::Context::with_key(key);
                for part in parts {
                    ctx.update(part);
                }
                let tag = ctx.sign();
                let tag = tag.as_ref();
                let n = icv.len().min(tag.len());
                icv[..n].copy_from_slice(&tag[..n]);
            }
        }
    }

    /// Checks a truncated ICV in constant time.
    pub(crate) fn verify_truncated(&self, parts: &[&[u8]], icv: &[u8]) -> bool {
        let mut expected = [0u8; MAX_MAC_LEN];
        let Some(expected) = expected.get_mut(..icv.len()) else {
            return false;
        };
        self.sign_truncated(parts, expected);
        expected.ct_eq(icv).into()
    }
}

/// An HMAC computation in progress.
pub(crate) enum MacContext {
    Sha1(Hmac<Sha1>),
    Sha2(ring::hmac::Context),
}

impl MacContext {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha1(mac) => mac.update(data),
            Self::Sha2(ctx) => ctx.update(data),
        }
    }

    pub(crate) fn finish(self) -> MacOutput {
        let mut out = MacOutput {
            bytes: [0u8; MAX_MAC_LEN],
            len: 0,
        };
        match self {
            Self::Sha1(mac) => {
                let tag = mac.finalize().into_bytes();
                out.bytes[..tag.len()].copy_from_slice(&tag);
                out.len = tag.len();
            }
            Self::Sha2(ctx) => {
                let tag = ctx.sign();
                let tag = tag.as_ref();
                out.bytes[..tag.len()].copy_from_slice(tag);
                out.len = tag.len();
            }
        }
        out
    }
}
