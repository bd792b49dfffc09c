//! `--save-keys DIR`: every IKE and Child SA's keys, appended to
//! `DIR/ikev2_decryption_table` and `DIR/esp_sa` in the line formats of
//! Wireshark's preference tables of the same names, so that an engineer can
//! decrypt a capture (point Wireshark's personal configuration directory at
//! DIR, or pass each line with `-o uat:NAME:LINE`).
//!
//! These files hold secrets: they are created mode 0600, and the daemon warns
//! at start that they are being written.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use xrsec_crypto::{Encr, EspSuite, IntegId};

use crate::names;

/// The two open tables.
pub(crate) struct KeyFiles {
    dir: PathBuf,
    ike: File,
    esp: File,
}

/// One IKE SA's keys.
pub(crate) struct IkeKeyLine<'a> {
    pub spi_i: u64,
    pub spi_r: u64,
    pub encr: Encr,
    pub integ: Option<IntegId>,
    pub sk_ei: &'a [u8],
    pub sk_er: &'a [u8],
    pub sk_ai: &'a [u8],
    pub sk_ar: &'a [u8],
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl KeyFiles {
    /// Creates DIR (0700) if needed and opens both tables for appending.
    pub(crate) fn open(dir: &Path) -> io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            ike: open(&dir.join("ikev2_decryption_table"))?,
            esp: open(&dir.join("esp_sa"))?,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one `ikev2_decryption_table` line.
    pub(crate) fn write_ike(&mut self, k: &IkeKeyLine<'_>) -> io::Result<()> {
        let line = ike_line(k);
        self.ike.write_all(line.as_bytes())
    }

    /// Appends one `esp_sa` line for one direction of a Child SA.
    pub(crate) fn write_esp(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        spi: u32,
        suite: &EspSuite,
        encr_key: &[u8],
        integ_key: &[u8],
    ) -> io::Result<()> {
        let line = esp_line(src, dst, spi, suite, encr_key, integ_key);
        self.esp.write_all(line.as_bytes())
    }
}

/// `SPIi,SPIr,SK_ei,SK_er,"ENCR",SK_ai,SK_ar,"INTEG"` (hex without 0x).
pub(crate) fn ike_line(k: &IkeKeyLine<'_>) -> String {
    format!(
        "{:016x},{:016x},{},{},\"{}\",{},{},\"{}\"\n",
        k.spi_i,
        k.spi_r,
        hex(k.sk_ei),
        hex(k.sk_er),
        names::wireshark_ike_encr(k.encr),
        hex(k.sk_ai),
        hex(k.sk_ar),
        names::wireshark_ike_integ(k.integ)
    )
}

/// `"IPv4","SRC","DST","0xSPI","ENCR","0xKEY","AUTH","0xKEY"`; with GCM the
/// key includes the salt and the authentication is `"NULL",""`.
pub(crate) fn esp_line(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    spi: u32,
    suite: &EspSuite,
    encr_key: &[u8],
    integ_key: &[u8],
) -> String {
    let integ = suite.integ();
    let integ_key = if integ.is_some() {
        format!("0x{}", hex(integ_key))
    } else {
        String::new()
    };
    format!(
        "\"IPv4\",\"{src}\",\"{dst}\",\"0x{spi:08x}\",\"{}\",\"0x{}\",\"{}\",\"{integ_key}\"\n",
        names::wireshark_esp_encr(suite.encr()),
        hex(encr_key),
        names::wireshark_esp_auth(integ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_line_for_cbc_names_both_algorithms_and_keys() {
        let suite = EspSuite::new(Encr::AesCbc256, Some(IntegId::HmacSha2_256_128)).unwrap();
        let line = esp_line(
            Ipv4Addr::new(10, 99, 0, 1),
            Ipv4Addr::new(10, 99, 0, 2),
            0xc0ffee01,
            &suite,
            &[0xab; 32],
            &[0x01, 0x02],
        );
        assert_eq!(
            line,
            format!(
                "\"IPv4\",\"10.99.0.1\",\"10.99.0.2\",\"0xc0ffee01\",\"AES-CBC [RFC3602]\",\"0x{}\",\"HMAC-SHA-256-128 [RFC4868]\",\"0x0102\"\n",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn esp_line_for_gcm_has_null_authentication() {
        let suite = EspSuite::new(Encr::AesGcm16_128, None).unwrap();
        let line = esp_line(
            Ipv4Addr::new(1, 2, 3, 4),
            Ipv4Addr::new(5, 6, 7, 8),
            1,
            &suite,
            &[0; 20],
            &[],
        );
        assert!(line.ends_with(",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x0000000000000000000000000000000000000000\",\"NULL\",\"\"\n"), "{line}");
    }

    #[test]
    fn ike_line_has_unquoted_hex_and_quoted_names() {
        let line = ike_line(&IkeKeyLine {
            spi_i: 0x0102030405060708,
            spi_r: 0xa,
            encr: Encr::AesCbc256,
            integ: Some(IntegId::HmacSha2_256_128),
            sk_ei: &[0x11],
            sk_er: &[0x22],
            sk_ai: &[0x33],
            sk_ar: &[0x44],
        });
        assert_eq!(
            line,
            "0102030405060708,000000000000000a,11,22,\"AES-CBC-256 [RFC3602]\",33,44,\"HMAC_SHA2_256_128 [RFC4868]\"\n"
        );
    }
}
