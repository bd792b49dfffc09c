//! tshark as an independent judge: capture in a namespace, decode with keys.
//!
//! Wireshark's IKEv2 and ESP dissectors share no code with xrsec, so a
//! capture they decrypt with the keys we derived, and whose ICVs they find
//! good, is evidence our bytes are right. Keys go on the command line as UAT
//! lines (formats in LAB.md, Wireshark 4.0); tshark runs with `HOME` and
//! `XDG_CONFIG_HOME` in an empty directory so that no profile interferes.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{check, run_with_timeout, tail_of, LabChild, LabDir, Signal};
use crate::{LabError, Result};

/// A running capture; stopped (and its file completed) by [`Capture::stop`]
/// or on drop.
#[derive(Debug)]
pub struct Capture {
    child: LabChild,
    pcap: PathBuf,
}

impl Capture {
    /// Captures every packet of `iface` in namespace `ns` into `pcap`
    /// (pcap format); returns once tshark reports it is capturing.
    pub fn start(ns: &str, iface: &str, pcap: PathBuf) -> Result<Capture> {
        let log = pcap.with_extension("tshark.log");
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", ns, "tshark", "-q", "-i", iface, "-F", "pcap", "-w",
        ])
        .arg(&pcap);
        let mut child = LabChild::spawn(cmd, &log)?;
        // "Capturing on" comes before dumpcap really captures (a packet sent
        // right after it is often missing); Wireshark 4.0 then logs
        // "Capture started" once it does. Other versions may not say so: a
        // second after "Capturing on" is taken as ready too.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut announced: Option<Instant> = None;
        loop {
            let output = child.output();
            if output.contains("Capture started") {
                break;
            }
            if output.contains("Capturing on") {
                let since = *announced.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(1) {
                    break;
                }
            }
            if !child.is_running() || Instant::now() >= deadline {
                return Err(LabError::new(format!(
                    "tshark did not start capturing on {iface} in {ns}:{}",
                    tail_of(&child.output(), 10)
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(Capture { child, pcap })
    }

    /// The capture file.
    pub fn path(&self) -> &Path {
        &self.pcap
    }

    /// Stops capturing (SIGINT lets tshark write out what it holds) and
    /// returns the file.
    pub fn stop(mut self) -> Result<PathBuf> {
        // dumpcap reads the kernel's ring in blocks handed over when full or
        // after its 250 ms read timeout, and drops a partial block when told
        // to stop: give the last packets time to reach the file.
        thread::sleep(Duration::from_millis(600));
        self.child
            .stop_with(Signal::Interrupt, Duration::from_secs(5))?;
        if !self.pcap.exists() {
            return Err(LabError::new(format!(
                "tshark wrote no {}:{}",
                self.pcap.display(),
                tail_of(&self.child.output(), 10)
            )));
        }
        Ok(self.pcap.clone())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self
            .child
            .stop_with(Signal::Interrupt, Duration::from_secs(5));
    }
}

/// ESP encryption as Wireshark 4.0's `esp_sa` table names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EspEncr {
    /// ENCR_NULL.
    Null,
    /// AES-CBC, any key size (the key's length says which).
    AesCbc,
    /// AES-GCM with a 16-octet ICV; the key is key || 4-byte salt, and no
    /// authentication algorithm may be given with it.
    AesGcm16,
}

impl EspEncr {
    fn uat_name(self) -> &'static str {
        match self {
            EspEncr::Null => "NULL",
            EspEncr::AesCbc => "AES-CBC [RFC3602]",
            EspEncr::AesGcm16 => "AES-GCM with 16 octet ICV [RFC4106]",
        }
    }
}

/// ESP integrity as Wireshark 4.0's `esp_sa` table names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EspInteg {
    /// None (AEAD).
    Null,
    /// HMAC-SHA-1-96.
    HmacSha1_96,
    /// HMAC-SHA-256-128.
    HmacSha256_128,
    /// HMAC-SHA-384-192.
    HmacSha384_192,
    /// HMAC-SHA-512-256.
    HmacSha512_256,
}

impl EspInteg {
    fn uat_name(self) -> &'static str {
        match self {
            EspInteg::Null => "NULL",
            EspInteg::HmacSha1_96 => "HMAC-SHA-1-96 [RFC2404]",
            EspInteg::HmacSha256_128 => "HMAC-SHA-256-128 [RFC4868]",
            EspInteg::HmacSha384_192 => "HMAC-SHA-384-192 [RFC4868]",
            EspInteg::HmacSha512_256 => "HMAC-SHA-512-256 [RFC4868]",
        }
    }
}

/// The keys of one ESP SA (one direction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EspSaKey {
    /// Outer source address of its packets; `None` matches any (e.g. a NAT
    /// rewrites it between capture points).
    pub src: Option<Ipv4Addr>,
    /// Outer destination address; `None` matches any.
    pub dst: Option<Ipv4Addr>,
    /// Its SPI.
    pub spi: u32,
    /// Encryption.
    pub encr: EspEncr,
    /// Encryption key (with the salt for GCM).
    pub encr_key: Vec<u8>,
    /// Integrity.
    pub integ: EspInteg,
    /// Integrity key (empty for GCM).
    pub integ_key: Vec<u8>,
}

impl EspSaKey {
    /// The `uat:esp_sa` line.
    pub fn uat_line(&self) -> String {
        let addr = |a: Option<Ipv4Addr>| a.map_or_else(|| "*".to_string(), |a| a.to_string());
        let integ_key = if self.integ == EspInteg::Null {
            String::new()
        } else {
            format!("0x{}", hex(&self.integ_key))
        };
        format!(
            "\"IPv4\",\"{}\",\"{}\",\"0x{:08x}\",\"{}\",\"0x{}\",\"{}\",\"{}\"",
            addr(self.src),
            addr(self.dst),
            self.spi,
            self.encr.uat_name(),
            hex(&self.encr_key),
            self.integ.uat_name(),
            integ_key
        )
    }
}

/// IKEv2 encryption as Wireshark's `ikev2_decryption_table` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IkeEncr {
    /// AES-CBC-128.
    AesCbc128,
    /// AES-CBC-192.
    AesCbc192,
    /// AES-CBC-256.
    AesCbc256,
    /// AES-GCM-128, 16-octet ICV (keys include the salt).
    AesGcm128_16,
    /// AES-GCM-256, 16-octet ICV (keys include the salt).
    AesGcm256_16,
}

impl IkeEncr {
    fn uat_name(self) -> &'static str {
        match self {
            IkeEncr::AesCbc128 => "AES-CBC-128 [RFC3602]",
            IkeEncr::AesCbc192 => "AES-CBC-192 [RFC3602]",
            IkeEncr::AesCbc256 => "AES-CBC-256 [RFC3602]",
            IkeEncr::AesGcm128_16 => "AES-GCM-128 with 16 octet ICV [RFC5282]",
            IkeEncr::AesGcm256_16 => "AES-GCM-256 with 16 octet ICV [RFC5282]",
        }
    }
}

/// IKEv2 integrity as Wireshark's `ikev2_decryption_table` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IkeInteg {
    /// None (AEAD).
    None,
    /// HMAC-SHA1-96.
    HmacSha1_96,
    /// HMAC-SHA2-256-128.
    HmacSha256_128,
    /// HMAC-SHA2-384-192.
    HmacSha384_192,
    /// HMAC-SHA2-512-256.
    HmacSha512_256,
}

impl IkeInteg {
    fn uat_name(self) -> &'static str {
        match self {
            IkeInteg::None => "NONE [RFC4306]",
            IkeInteg::HmacSha1_96 => "HMAC_SHA1_96 [RFC2404]",
            IkeInteg::HmacSha256_128 => "HMAC_SHA2_256_128 [RFC4868]",
            IkeInteg::HmacSha384_192 => "HMAC_SHA2_384_192 [RFC4868]",
            IkeInteg::HmacSha512_256 => "HMAC_SHA2_512_256 [RFC4868]",
        }
    }
}

/// The keys of one IKE SA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeSaKey {
    /// Initiator's SPI.
    pub spi_i: u64,
    /// Responder's SPI.
    pub spi_r: u64,
    /// SK_ei.
    pub sk_ei: Vec<u8>,
    /// SK_er.
    pub sk_er: Vec<u8>,
    /// Encryption.
    pub encr: IkeEncr,
    /// SK_ai (empty for GCM).
    pub sk_ai: Vec<u8>,
    /// SK_ar (empty for GCM).
    pub sk_ar: Vec<u8>,
    /// Integrity.
    pub integ: IkeInteg,
}

impl IkeSaKey {
    /// The `uat:ikev2_decryption_table` line.
    pub fn uat_line(&self) -> String {
        format!(
            "{:016x},{:016x},{},{},\"{}\",{},{},\"{}\"",
            self.spi_i,
            self.spi_r,
            hex(&self.sk_ei),
            hex(&self.sk_er),
            self.encr.uat_name(),
            hex(&self.sk_ai),
            hex(&self.sk_ar),
            self.integ.uat_name()
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A tshark decoder with its keys and preferences.
#[derive(Debug)]
pub struct Tshark {
    home: LabDir,
    options: Vec<String>,
}

impl Tshark {
    /// A decoder with ESP decryption and ICV checking on, and no keys yet.
    pub fn new() -> Result<Tshark> {
        let mut t = Tshark {
            home: LabDir::new("tshark-home")?,
            options: Vec::new(),
        };
        t.option("esp.enable_encryption_decode", "TRUE")
            .option("esp.enable_authentication_check", "TRUE");
        Ok(t)
    }

    /// Sets preference `key` to `value` (`-o key:value`).
    pub fn option(&mut self, key: &str, value: &str) -> &mut Tshark {
        self.options.push(format!("{key}:{value}"));
        self
    }

    /// Adds the keys of one ESP SA.
    pub fn esp_sa(&mut self, sa: &EspSaKey) -> &mut Tshark {
        self.option("uat:esp_sa", &sa.uat_line())
    }

    /// Adds the keys of one IKE SA.
    pub fn ike_sa(&mut self, sa: &IkeSaKey) -> &mut Tshark {
        self.option("uat:ikev2_decryption_table", &sa.uat_line())
    }

    /// The `-o` arguments as given to tshark.
    pub fn option_args(&self) -> Vec<String> {
        self.options
            .iter()
            .flat_map(|o| ["-o".to_string(), o.clone()])
            .collect()
    }

    /// Decodes `pcap` and returns, for each packet matching `filter` (a
    /// display filter; every packet when `None`), the values of `fields`,
    /// one string per field (several occurrences joined by `,`; empty when
    /// absent).
    pub fn fields(
        &self,
        pcap: &Path,
        filter: Option<&str>,
        fields: &[&str],
    ) -> Result<Vec<Vec<String>>> {
        let mut cmd = Command::new("tshark");
        cmd.env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .arg("-n")
            .arg("-r")
            .arg(pcap)
            .args(self.option_args())
            .args(["-T", "fields", "-E", "separator=/t"])
            .args(["-E", "occurrence=a", "-E", "aggregator=,"]);
        if let Some(filter) = filter {
            cmd.args(["-Y", filter]);
        }
        for field in fields {
            cmd.args(["-e", field]);
        }
        let output = run_with_timeout(&mut cmd, Duration::from_secs(120))?;
        // A key line tshark cannot read (an unknown algorithm name, a
        // missing field) makes it exit 1: an error here, never an empty
        // decode that would pass for "nothing decrypted".
        let stdout = check(&format!("tshark -r {}", pcap.display()), output)?;
        Ok(stdout
            .lines()
            .map(|line| {
                let mut row: Vec<String> = line.split('\t').map(String::from).collect();
                row.resize(fields.len(), String::new());
                row
            })
            .collect())
    }

    /// How many packets of `pcap` match display filter `filter`.
    pub fn count(&self, pcap: &Path, filter: &str) -> Result<usize> {
        Ok(self.fields(pcap, Some(filter), &["frame.number"])?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_sa_line_for_cbc_with_hmac() {
        let sa = EspSaKey {
            src: Some(Ipv4Addr::new(10, 99, 0, 1)),
            dst: None,
            spi: 0x1001,
            encr: EspEncr::AesCbc,
            encr_key: vec![0xab; 2],
            integ: EspInteg::HmacSha256_128,
            integ_key: vec![0x01, 0x02],
        };
        assert_eq!(
            sa.uat_line(),
            "\"IPv4\",\"10.99.0.1\",\"*\",\"0x00001001\",\"AES-CBC [RFC3602]\",\"0xabab\",\
             \"HMAC-SHA-256-128 [RFC4868]\",\"0x0102\""
        );
    }

    #[test]
    fn esp_sa_line_for_gcm_has_no_authentication() {
        let sa = EspSaKey {
            src: None,
            dst: None,
            spi: 0xdeadbeef,
            encr: EspEncr::AesGcm16,
            encr_key: vec![0x11; 3],
            integ: EspInteg::Null,
            integ_key: Vec::new(),
        };
        assert!(sa.uat_line().ends_with(
            "\"0xdeadbeef\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x111111\",\"NULL\",\"\""
        ));
    }

    #[test]
    fn ikev2_line_puts_hex_without_prefix() {
        let sa = IkeSaKey {
            spi_i: 0x0102,
            spi_r: 0xa0b0_c0d0_e0f0_0001,
            sk_ei: vec![1],
            sk_er: vec![2],
            encr: IkeEncr::AesCbc256,
            sk_ai: vec![3],
            sk_ar: vec![4],
            integ: IkeInteg::HmacSha256_128,
        };
        assert_eq!(
            sa.uat_line(),
            "0000000000000102,a0b0c0d0e0f00001,01,02,\"AES-CBC-256 [RFC3602]\",03,04,\
             \"HMAC_SHA2_256_128 [RFC4868]\""
        );
    }
}
