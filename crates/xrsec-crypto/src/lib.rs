//! Cryptographic transforms for xrsec: the IKEv2 and ESP algorithms by their
//! IANA numbers, prf+ and the IKEv2 key schedule, Diffie-Hellman key pairs,
//! in-place ESP seal/open and the IKE SK payload's protection.
//!
//! Both the IKE negotiator and the ESP dataplane use this crate, and neither
//! sees a backend type: ring, RustCrypto and friends stay behind this crate's
//! own types ([`cipher::AesCbcKey`], [`cipher::AesGcmKey`], [`EspSealer`],
//! [`IkeCrypto`], [`DhPrivate`] ...), so that a second backend can be added as
//! a feature without touching the callers.
//!
//! Invariants kept throughout:
//! - every secret (keys, DH private values, shared secrets, SKEYSEED) lives in
//!   a type that zeroizes on drop and whose `Debug` prints no key bytes;
//! - nothing a peer sends can make this crate panic: bad lengths, points off
//!   the curve, failed integrity checks and bad padding are errors;
//! - the per-packet ESP path does not allocate, lock or make a system call.
//!
//! Which primitive comes from where (measured on the project's machine):
//! AES-GCM and HMAC-SHA-2 from ring, AES-CBC from RustCrypto `aes` + `cbc`,
//! HMAC-SHA-1 from RustCrypto `sha1` + `hmac` (SHA-NI), ECP and Curve25519
//! from RustCrypto `p256`/`p384`/`p521` and `x25519-dalek`, because those take
//! an injected RNG and import private scalars (the IKE core is sans-IO and
//! the known-answer tests need fixed private values).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cipher;
pub mod dh;
pub mod esp;
pub mod ike;
pub mod kdf;
mod mac;
pub mod secret;
pub mod transform;

pub use dh::{DhError, DhPrivate, SharedSecret};
pub use esp::{EspError, EspOpener, EspSealer, EspSuite, Opened, SealJob};
pub use ike::{IkeCrypto, IkeCryptoError};
pub use kdf::{
    derive_child_keys, derive_ike_keys, integ_icv, prf, prf_plus, skeyseed, skeyseed_rekey,
    ChildKeys, EspKeys, IkeKeys, KdfError, Role,
};
pub use secret::SecretBytes;
pub use transform::{DhGroup, Encr, EncrId, IntegId, KeyError, PrfId};
