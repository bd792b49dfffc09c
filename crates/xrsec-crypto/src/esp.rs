//! ESP packet protection in place (RFC 4303) for AES-CBC with HMAC
//! (RFC 3602, RFC 2404, RFC 4868: encrypt-then-MAC with a truncated ICV) and
//! AES-GCM (RFC 4106: salt, 8-byte explicit IV, 16-byte ICV).
//!
//! One packet lives in one `&mut [u8]`, laid out as
//!
//! ```text
//! [SPI 4][seq 4][IV][payload][padding 1,2,3..][pad len 1][next header 1][ICV]
//! |<---- header_len() ---->|
//! ```
//!
//! The caller places the payload at [`EspSuite::header_len`] and leaves room
//! for [`EspSuite::max_trailer_len`] after it; [`EspSealer`] fills in the rest
//! and encrypts in place, [`EspOpener`] checks the ICV first and then decrypts
//! in place. Invariants on the per-packet path: no allocation, no lock, no
//! system call, no re-keying (the AES schedule, the GCM tables and the HMAC
//! inner/outer states are built once per SA), no panic on any input. A GCM IV
//! never repeats under one key because it is the 64-bit sequence number,
//! which never repeats within an SA; a CBC IV is unpredictable, drawn from a
//! ChaCha20 CSPRNG that each sealer seeds once from the OS.

use core::fmt;
use core::ops::Range;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRngCore, RngCore, SeedableRng};

use crate::cipher::{AesCbcKey, AesGcmKey, GCM_NONCE_LEN, GCM_TAG_LEN};
use crate::kdf::EspKeys;
use crate::mac::MacKey;
use crate::transform::{
    Encr, IntegId, KeyError, AES_BLOCK_LEN, GCM_EXPLICIT_IV_LEN, GCM_ICV_LEN, GCM_SALT_LEN,
};

/// SPI (4) + sequence number (4).
const SPI_SEQ_LEN: usize = 8;
/// Pad Length (1) + Next Header (1).
const TRAILER_FIXED_LEN: usize = 2;

/// The transforms of one ESP SA: a cipher and, unless it is an AEAD, an
/// integrity algorithm. Only valid pairs can be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EspSuite {
    encr: Encr,
    integ: Option<IntegId>,
}

impl EspSuite {
    /// A suite from its transforms. CBC needs an integrity transform (this
    /// crate does not offer encryption-only ESP) and GCM takes none
    /// (RFC 4106 5: GCM provides integrity itself).
    pub fn new(encr: Encr, integ: Option<IntegId>) -> Result<Self, KeyError> {
        if encr.is_aead() == integ.is_some() {
            return Err(KeyError::IntegrityMismatch);
        }
        Ok(Self { encr, integ })
    }

    /// The encryption transform.
    pub fn encr(&self) -> Encr {
        self.encr
    }

    /// The integrity transform (`None` for GCM).
    pub fn integ(&self) -> Option<IntegId> {
        self.integ
    }

    /// IV length on the wire: 16 for CBC, 8 for GCM.
    pub fn iv_len(&self) -> usize {
        self.encr.iv_len()
    }

    /// ICV length: the integrity transform's truncated length, 16 for GCM.
    pub fn icv_len(&self) -> usize {
        self.integ.map_or(GCM_ICV_LEN, IntegId::icv_len)
    }

    /// Alignment of payload + padding + trailer: the cipher block (16) for
    /// CBC (RFC 3602 2.4), 4 for GCM (RFC 4303 2.4: the ciphertext ends on a
    /// 4-byte boundary).
    pub fn block_align(&self) -> usize {
        if self.encr.is_aead() {
            4
        } else {
            AES_BLOCK_LEN
        }
    }

    /// Bytes before the payload: SPI, sequence number, IV.
    pub fn header_len(&self) -> usize {
        SPI_SEQ_LEN + self.iv_len()
    }

    /// The most bytes seal writes after the payload: padding, pad length,
    /// next header, ICV.
    pub fn max_trailer_len(&self) -> usize {
        self.block_align() - 1 + TRAILER_FIXED_LEN + self.icv_len()
    }

    /// Length of padding + pad length + next header for a payload.
    fn padded_len(&self, payload_len: usize) -> Option<usize> {
        let align = self.block_align();
        let min = payload_len.checked_add(TRAILER_FIXED_LEN)?;
        min.checked_add(align - 1).map(|n| n / align * align)
    }

    /// Total ESP packet length for a payload of `payload_len` bytes
    /// (header + payload + padding + trailer + ICV).
    pub fn sealed_len(&self, payload_len: usize) -> Option<usize> {
        self.padded_len(payload_len)?
            .checked_add(self.header_len() + self.icv_len())
    }

    /// Encryption key material length (AES key, plus 4-byte salt for GCM).
    pub fn encr_key_len(&self) -> usize {
        self.encr.keymat_len()
    }

    /// Integrity key length (0 for GCM).
    pub fn integ_key_len(&self) -> usize {
        self.integ.map_or(0, IntegId::key_len)
    }
}

impl fmt::Display for EspSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.integ {
            Some(integ) => write!(f, "{}/{}", self.encr, integ),
            None => write!(f, "{}", self.encr),
        }
    }
}

/// Why a packet could not be sealed or opened: a drop reason, cheap to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EspError {
    /// Seal: the buffer cannot hold header, payload, trailer and ICV.
    BufferTooSmall,
    /// Seal: the sequence number does not fit in 32 bits and ESN is off
    /// (RFC 4303 3.3.3: the counter MUST NOT cycle; rekey first).
    SequenceOverflow,
    /// Seal with an explicit IV: the IV has the wrong length for the suite.
    WrongIvLength,
    /// Open: the packet is shorter than header, minimal ciphertext and ICV.
    Truncated,
    /// Open: the CBC ciphertext is not a whole number of blocks.
    NotBlockAligned,
    /// Open: the ICV does not verify (RFC 4303 3.4.4.1: discard).
    IntegrityFailure,
    /// Open: the pad length runs past the payload, or the padding bytes are
    /// not 1, 2, 3, ... (RFC 4303 2.4).
    BadPadding,
}

impl EspError {
    /// A short stable name for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BufferTooSmall => "buffer-too-small",
            Self::SequenceOverflow => "sequence-overflow",
            Self::WrongIvLength => "wrong-iv-length",
            Self::Truncated => "truncated",
            Self::NotBlockAligned => "not-block-aligned",
            Self::IntegrityFailure => "integrity-failure",
            Self::BadPadding => "bad-padding",
        }
    }
}

impl fmt::Display for EspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for EspError {}

/// The keyed transforms of one ESP SA direction.
// One per SA, long-lived: its size does not matter, and boxing the CBC
// variant would add a pointer chase per packet.
#[allow(clippy::large_enum_variant)]
enum EspCipher {
    Cbc {
        aes: AesCbcKey,
        mac: MacKey,
    },
    Gcm {
        key: AesGcmKey,
        salt: [u8; GCM_SALT_LEN],
    },
}

impl EspCipher {
    fn new(suite: &EspSuite, keys: &EspKeys) -> Result<Self, KeyError> {
        check_len("encryption", suite.encr_key_len(), keys.encr.len())?;
        check_len("integrity", suite.integ_key_len(), keys.integ.len())?;
        let encr = keys.encr.as_bytes();
        match suite.integ {
            Some(integ) => Ok(Self::Cbc {
                aes: AesCbcKey::new(encr)?,
                mac: MacKey::new(integ.hash(), keys.integ.as_bytes()),
            }),
            None => {
                // RFC 4106 8.1: the last 4 bytes of the key material are the salt.
                let (key, salt_bytes) = encr.split_at(encr.len() - GCM_SALT_LEN);
                let mut salt = [0u8; GCM_SALT_LEN];
                salt.copy_from_slice(salt_bytes);
                Ok(Self::Gcm {
                    key: AesGcmKey::new(key)?,
                    salt,
                })
            }
        }
    }
}

pub(crate) fn check_len(key: &'static str, expected: usize, actual: usize) -> Result<(), KeyError> {
    if expected == actual {
        Ok(())
    } else {
        Err(KeyError::WrongKeyLength {
            key,
            expected,
            actual,
        })
    }
}

fn gcm_nonce(salt: &[u8; GCM_SALT_LEN], iv: &[u8]) -> [u8; GCM_NONCE_LEN] {
    let mut nonce = [0u8; GCM_NONCE_LEN];
    nonce[..GCM_SALT_LEN].copy_from_slice(salt);
    nonce[GCM_SALT_LEN..].copy_from_slice(iv);
    nonce
}

/// RFC 4106 5: AAD = SPI | seq (32-bit), or SPI | seq high | seq low with ESN.
fn gcm_aad(spi: &[u8], seq_lo: &[u8], seq_hi: Option<[u8; 4]>, out: &mut [u8; 12]) -> usize {
    out[..4].copy_from_slice(spi);
    match seq_hi {
        Some(hi) => {
            out[4..8].copy_from_slice(&hi);
            out[8..12].copy_from_slice(seq_lo);
            12
        }
        None => {
            out[4..8].copy_from_slice(seq_lo);
            8
        }
    }
}

/// One packet of a [`EspSealer::seal_batch`] call.
#[derive(Debug)]
pub struct SealJob<'a> {
    /// The packet buffer; the payload is at `suite.header_len()`.
    pub buf: &'a mut [u8],
    /// Payload length.
    pub payload_len: usize,
    /// The packet's 64-bit sequence number.
    pub seq: u64,
    /// Next Header value (4 = IPv4 in tunnel mode).
    pub next_header: u8,
    /// Set by `seal_batch`: the sealed length, or why the packet was dropped.
    pub outcome: Option<Result<usize, EspError>>,
}

impl<'a> SealJob<'a> {
    /// A job not yet sealed.
    pub fn new(buf: &'a mut [u8], payload_len: usize, seq: u64, next_header: u8) -> Self {
        Self {
            buf,
            payload_len,
            seq,
            next_header,
            outcome: None,
        }
    }
}

enum IvSource<'a> {
    Generated,
    Explicit(&'a [u8]),
}

/// Outbound ESP SA: seals packets in place.
pub struct EspSealer {
    suite: EspSuite,
    spi: [u8; 4],
    esn: bool,
    cipher: EspCipher,
    /// CBC IV generator, seeded once (unused for GCM, whose IV is the
    /// sequence number).
    iv_rng: ChaCha20Rng,
}

impl EspSealer {
    /// An outbound SA whose CBC IV generator is seeded from the OS.
    /// `spi` is the peer-chosen SPI as a number (written big-endian).
    pub fn new(suite: EspSuite, keys: &EspKeys, spi: u32, esn: bool) -> Result<Self, KeyError> {
        Self::new_with_rng(suite, keys, spi, esn, &mut rand_core::OsRng)
    }

    /// Like [`EspSealer::new`], seeding the CBC IV generator from `rng`
    /// (for deterministic tests and simulators; the seed must be secret and
    /// unpredictable in production).
    pub fn new_with_rng(
        suite: EspSuite,
        keys: &EspKeys,
        spi: u32,
        esn: bool,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, KeyError> {
        let cipher = EspCipher::new(&suite, keys)?;
        let iv_rng = ChaCha20Rng::from_rng(rng).map_err(|_| KeyError::RandomSource)?;
        Ok(Self {
            suite,
            spi: spi.to_be_bytes(),
            esn,
            cipher,
            iv_rng,
        })
    }

    /// The suite.
    pub fn suite(&self) -> &EspSuite {
        &self.suite
    }

    /// The SPI.
    pub fn spi(&self) -> u32 {
        u32::from_be_bytes(self.spi)
    }

    /// Seals one packet in place and returns the ESP packet's total length.
    ///
    /// `buf[header_len()..][..payload_len]` holds the payload; `buf` must be
    /// at least [`EspSuite::sealed_len`] long. `seq` is the full 64-bit
    /// sequence number: its low 32 bits go on the wire, the high 32 bits into
    /// the ICV / AAD when ESN is on (RFC 4303 2.2.1).
    pub fn seal_in_place(
        &mut self,
        buf: &mut [u8],
        payload_len: usize,
        seq: u64,
        next_header: u8,
    ) -> Result<usize, EspError> {
        self.seal(buf, payload_len, seq, next_header, IvSource::Generated)
    }

    /// Seals with an IV given by the caller. FOR KNOWN-ANSWER TESTS ONLY:
    /// the published vectors carry their own IV. Never reuse an IV: for GCM a
    /// repeated IV under one key reveals the authentication key.
    pub fn seal_in_place_with_explicit_iv(
        &mut self,
        buf: &mut [u8],
        payload_len: usize,
        seq: u64,
        next_header: u8,
        iv: &[u8],
    ) -> Result<usize, EspError> {
        if iv.len() != self.suite.iv_len() {
            return Err(EspError::WrongIvLength);
        }
        self.seal(buf, payload_len, seq, next_header, IvSource::Explicit(iv))
    }

    /// Seals several packets of this SA. Each job's `outcome` is set.
    ///
    /// Today this seals one packet after another; the signature lets an
    /// interleaved multi-buffer AES-CBC (independent chains across packets)
    /// replace the loop without changing callers.
    pub fn seal_batch(&mut self, jobs: &mut [SealJob<'_>]) {
        for job in jobs.iter_mut() {
            job.outcome = Some(self.seal(
                job.buf,
                job.payload_len,
                job.seq,
                job.next_header,
                IvSource::Generated,
            ));
        }
    }

    fn seal(
        &mut self,
        buf: &mut [u8],
        payload_len: usize,
        seq: u64,
        next_header: u8,
        iv_source: IvSource<'_>,
    ) -> Result<usize, EspError> {
        // RFC 4303 3.3.3: without ESN the 32-bit counter must not cycle.
        if !self.esn && seq > u64::from(u32::MAX) {
            return Err(EspError::SequenceOverflow);
        }
        let suite = self.suite;
        let header_len = suite.header_len();
        let icv_len = suite.icv_len();
        // Checked: a payload length near usize::MAX must not wrap.
        let total = suite
            .sealed_len(payload_len)
            .ok_or(EspError::BufferTooSmall)?;
        let padded_len = total - header_len - icv_len;
        if buf.len() < total {
            return Err(EspError::BufferTooSmall);
        }
        let buf = &mut buf[..total];
        let seq_lo = (seq as u32).to_be_bytes();
        let seq_hi = (self.esn).then(|| ((seq >> 32) as u32).to_be_bytes());
        buf[..4].copy_from_slice(&self.spi);
        buf[4..8].copy_from_slice(&seq_lo);

        // RFC 4303 2.4: default padding 1, 2, 3, ..., then Pad Length and
        // Next Header; padded_len - payload_len - 2 < block_align <= 16.
        let trailer_at = header_len + payload_len;
        let pad_len = padded_len - payload_len - TRAILER_FIXED_LEN;
        for (i, b) in buf[trailer_at..trailer_at + pad_len].iter_mut().enumerate() {
            *b = (i + 1) as u8;
        }
        buf[trailer_at + pad_len] = pad_len as u8;
        buf[trailer_at + pad_len + 1] = next_header;

        let (protected, icv) = buf.split_at_mut(header_len + padded_len);
        match &self.cipher {
            EspCipher::Cbc { aes, mac, .. } => {
                let mut iv = [0u8; AES_BLOCK_LEN];
                match iv_source {
                    IvSource::Explicit(explicit) => iv.copy_from_slice(explicit),
                    // RFC 3602 2.1 / RFC 4303 3.3.2: the IV MUST be
                    // unpredictable; a CSPRNG seeded once from the OS.
                    IvSource::Generated => self.iv_rng.fill_bytes(&mut iv),
                }
                protected[SPI_SEQ_LEN..header_len].copy_from_slice(&iv);
                aes.encrypt_in_place(&iv, &mut protected[header_len..])
                    .map_err(|_| EspError::BufferTooSmall)?;
                // RFC 4303 3.3.4: encrypt, then compute the ICV over SPI, seq,
                // IV and ciphertext, plus the high sequence bits with ESN
                // (2.2.1; not transmitted).
                match &seq_hi {
                    Some(hi) => mac.sign_truncated(&[protected, hi], icv),
                    None => mac.sign_truncated(&[protected], icv),
                }
            }
            EspCipher::Gcm { key, salt } => {
                let iv = match iv_source {
                    IvSource::Explicit(explicit) => {
                        let mut iv = [0u8; GCM_EXPLICIT_IV_LEN];
                        iv.copy_from_slice(explicit);
                        iv
                    }
                    // RFC 4106 3.1: the IV MUST NOT repeat under a key; the
                    // sequence number never does within an SA.
                    IvSource::Generated => seq.to_be_bytes(),
                };
                protected[SPI_SEQ_LEN..header_len].copy_from_slice(&iv);
                let nonce = gcm_nonce(salt, &iv);
                let mut aad = [0u8; 12];
                let aad_len = gcm_aad(&self.spi, &seq_lo, seq_hi, &mut aad);
                let tag = key
                    .seal_in_place(&nonce, &aad[..aad_len], &mut protected[header_len..])
                    .map_err(|_| EspError::BufferTooSmall)?;
                icv.copy_from_slice(&tag);
            }
        }
        Ok(total)
    }
}

impl fmt::Debug for EspSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EspSealer")
            .field("suite", &self.suite)
            .field("spi", &format_args!("{:#010x}", self.spi()))
            .field("esn", &self.esn)
            .finish_non_exhaustive()
    }
}

/// A successfully opened packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Where the decrypted payload lies in the packet buffer.
    pub payload: Range<usize>,
    /// The Next Header field (4 = IPv4, 41 = IPv6, 59 = dummy packet).
    pub next_header: u8,
}

/// Inbound ESP SA: verifies and decrypts packets in place.
pub struct EspOpener {
    suite: EspSuite,
    esn: bool,
    cipher: EspCipher,
}

impl EspOpener {
    /// An inbound SA.
    pub fn new(suite: EspSuite, keys: &EspKeys, esn: bool) -> Result<Self, KeyError> {
        Ok(Self {
            suite,
            esn,
            cipher: EspCipher::new(&suite, keys)?,
        })
    }

    /// The suite.
    pub fn suite(&self) -> &EspSuite {
        &self.suite
    }

    /// Verifies and decrypts a whole ESP packet (SPI through ICV) in place.
    ///
    /// `seq_hi` is the high half of the sequence number as the replay window
    /// inferred it (RFC 4303 A2.2); ignored without ESN. The ICV is checked
    /// first, in constant time, and nothing is decrypted if it fails. On
    /// success the payload is `packet[opened.payload]`; the caller then
    /// updates the replay window (RFC 4303 3.4.3: only after the ICV check).
    pub fn open_in_place(&self, packet: &mut [u8], seq_hi: u32) -> Result<Opened, EspError> {
        let suite = &self.suite;
        let header_len = suite.header_len();
        let icv_len = suite.icv_len();
        let min_ciphertext = match self.cipher {
            EspCipher::Cbc { .. } => AES_BLOCK_LEN,
            EspCipher::Gcm { .. } => TRAILER_FIXED_LEN,
        };
        if packet.len() < header_len + min_ciphertext + icv_len {
            return Err(EspError::Truncated);
        }
        let seq_hi = self.esn.then(|| seq_hi.to_be_bytes());
        let (protected, icv) = packet.split_at_mut(packet.len() - icv_len);
        let (header, ciphertext) = protected.split_at_mut(header_len);
        match &self.cipher {
            EspCipher::Cbc { aes, mac, .. } => {
                if ciphertext.len() % AES_BLOCK_LEN != 0 {
                    return Err(EspError::NotBlockAligned);
                }
                let authentic = match &seq_hi {
                    Some(hi) => mac.verify_truncated(&[header, ciphertext, hi], icv),
                    None => mac.verify_truncated(&[header, ciphertext], icv),
                };
                // RFC 4303 3.4.4.1: check the ICV before decrypting.
                if !authentic {
                    return Err(EspError::IntegrityFailure);
                }
                let mut iv = [0u8; AES_BLOCK_LEN];
                iv.copy_from_slice(&header[SPI_SEQ_LEN..]);
                aes.decrypt_in_place(&iv, ciphertext)
                    .map_err(|_| EspError::NotBlockAligned)?;
            }
            EspCipher::Gcm { key, salt } => {
                let nonce = gcm_nonce(salt, &header[SPI_SEQ_LEN..]);
                let mut aad = [0u8; 12];
                let aad_len = gcm_aad(&header[..4], &header[4..8], seq_hi, &mut aad);
                let mut tag = [0u8; GCM_TAG_LEN];
                tag.copy_from_slice(icv);
                key.open_in_place(&nonce, &aad[..aad_len], ciphertext, &tag)
                    .map_err(|_| EspError::IntegrityFailure)?;
            }
        }
        let (payload_len, next_header) = check_trailer(ciphertext)?;
        Ok(Opened {
            payload: header_len..header_len + payload_len,
            next_header,
        })
    }
}

/// Parses the decrypted trailer and checks the default padding
/// (RFC 4303 2.4: the receiver SHOULD inspect the Padding field).
fn check_trailer(plaintext: &[u8]) -> Result<(usize, u8), EspError> {
    let [.., pad_len, next_header] = *plaintext else {
        return Err(EspError::Truncated);
    };
    let pad_len = usize::from(pad_len);
    let payload_len = plaintext
        .len()
        .checked_sub(TRAILER_FIXED_LEN + pad_len)
        .ok_or(EspError::BadPadding)?;
    let padding = &plaintext[payload_len..payload_len + pad_len];
    let default_padding = padding
        .iter()
        .enumerate()
        .all(|(i, &b)| usize::from(b) == i + 1);
    if !default_padding {
        return Err(EspError::BadPadding);
    }
    Ok((payload_len, next_header))
}

impl fmt::Debug for EspOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EspOpener")
            .field("suite", &self.suite)
            .field("esn", &self.esn)
            .finish_non_exhaustive()
    }
}
