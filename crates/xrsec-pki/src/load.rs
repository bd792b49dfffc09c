//! Reading certificates and private keys in the forms `openssl` and
//! strongSwan's `pki` write them: PEM (one or several blocks per file) or a
//! single DER object (`pki`'s default output).
//!
//! `parse_*` work on bytes and do no I/O; `load_*` read a file and call
//! them. Key material passes only through buffers that are wiped when
//! dropped. PEM parsing follows RFC 7468's lax grammar (7468 3: any line
//! length, whitespace and text between blocks tolerated) so that files from
//! older tools load too.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use crate::cert::Certificate;
use crate::error::{CertError, LoadError};
use crate::key::{KeyRefusal, PrivateKey};

/// One of the DER private key decoders.
type KeyDecoder = fn(&[u8]) -> Result<PrivateKey, KeyRefusal>;

/// One decoded PEM block.
struct PemBlock {
    label: String,
    der: Zeroizing<Vec<u8>>,
    /// A legacy `Proc-Type: 4,ENCRYPTED` header was present (RFC 1421).
    encrypted: bool,
}

/// The PEM blocks of `data`, or `None` if it contains no BEGIN line.
fn pem_blocks(origin: &str, data: &[u8]) -> Result<Option<Vec<PemBlock>>, LoadError> {
    let bad = |reason: String| LoadError::BadPem {
        origin: origin.to_string(),
        reason,
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(None);
    };
    let mut blocks = Vec::new();
    let mut open: Option<(String, Zeroizing<String>, bool)> = None;
    for (number, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        match open.as_mut() {
            None => {
                if let Some(label) = boundary(line, "-----BEGIN ") {
                    open = Some((
                        label.to_string(),
                        Zeroizing::new(String::with_capacity(text.len())),
                        false,
                    ));
                }
            }
            Some((label, base64, encrypted)) => {
                if let Some(end_label) = boundary(line, "-----END ") {
                    if end_label != label {
                        return Err(bad(format!(
                            "line {}: \"END {end_label}\" closes \"BEGIN {label}\"",
                            number + 1
                        )));
                    }
                    let der = Base64::decode_vec(base64)
                        .map(Zeroizing::new)
                        .map_err(|_| bad(format!("block \"{label}\" is not valid base64")))?;
                    blocks.push(PemBlock {
                        label: std::mem::take(label),
                        der,
                        encrypted: *encrypted,
                    });
                    open = None;
                } else if line.contains(':') {
                    // An RFC 1421 header such as "Proc-Type: 4,ENCRYPTED".
                    if line.starts_with("Proc-Type:") && line.contains("ENCRYPTED") {
                        *encrypted = true;
                    }
                } else {
                    base64.extend(line.chars().filter(|c| !c.is_whitespace()));
                }
            }
        }
    }
    if let Some((label, _, _)) = open {
        return Err(bad(format!("\"BEGIN {label}\" has no END line")));
    }
    Ok(if blocks.is_empty() {
        None
    } else {
        Some(blocks)
    })
}

/// The label of a `-----BEGIN LABEL-----` / `-----END LABEL-----` line.
fn boundary<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix)?.strip_suffix("-----")
}

/// Whether `data` looks like one DER SEQUENCE (what `pki --outform der`
/// and `openssl ... -outform DER` write).
fn looks_like_der(data: &[u8]) -> bool {
    data.first() == Some(&0x30)
}

/// The certificates in PEM or DER `data`, in file order (end entity first
/// for a chain file). `origin` names the input in errors. PEM blocks other
/// than certificates (e.g. a key in the same file) are skipped.
pub fn parse_certificates(origin: &str, data: &[u8]) -> Result<Vec<Certificate>, LoadError> {
    let parse = |index: usize, der: &[u8]| {
        Certificate::from_der(der).map_err(|e| LoadError::BadCertificate {
            origin: origin.to_string(),
            index,
            reason: match e {
                CertError::Malformed { reason, .. } => reason,
                other => other.to_string(),
            },
        })
    };
    let Some(blocks) = pem_blocks(origin, data)? else {
        if looks_like_der(data) {
            return Ok(vec![parse(1, data)?]);
        }
        return Err(LoadError::NotPem {
            origin: origin.to_string(),
        });
    };
    let certs = blocks
        .iter()
        .filter(|b| b.label == "CERTIFICATE" || b.label == "X509 CERTIFICATE")
        .enumerate()
        .map(|(i, b)| parse(i + 1, &b.der))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(LoadError::WrongPemLabel {
            origin: origin.to_string(),
            found: blocks.into_iter().map(|b| b.label).collect(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// The private key in PEM or DER `data`: PKCS#1 (`RSA PRIVATE KEY`), PKCS#8
/// (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`). Encrypted keys, RSA keys
/// outside 2048..=8192 bits and other algorithms are refused.
pub fn parse_private_key(origin: &str, data: &[u8]) -> Result<PrivateKey, LoadError> {
    let refused = |r: KeyRefusal| {
        let origin = origin.to_string();
        match r {
            KeyRefusal::TooSmall(bits) => LoadError::KeyTooSmall { origin, bits },
            KeyRefusal::TooLarge(bits) => LoadError::KeyTooLarge { origin, bits },
            KeyRefusal::Unsupported(algorithm) => LoadError::UnsupportedKey { origin, algorithm },
            KeyRefusal::Invalid(reason) => LoadError::BadKey { origin, reason },
        }
    };
    let Some(blocks) = pem_blocks(origin, data)? else {
        if !looks_like_der(data) {
            return Err(LoadError::NotPem {
                origin: origin.to_string(),
            });
        }
        // DER carries no label: try the three encodings, PKCS#8 first. A
        // key that decodes but is refused (size, algorithm) stops the search.
        let decoders: [KeyDecoder; 3] = [
            PrivateKey::from_pkcs8_der,
            PrivateKey::from_pkcs1_der,
            PrivateKey::from_sec1_der,
        ];
        for decode in decoders {
            match decode(data) {
                Err(KeyRefusal::Invalid(_)) => continue,
                other => return other.map_err(refused),
            }
        }
        return Err(refused(KeyRefusal::Invalid(
            "neither PEM nor a DER PKCS#8, PKCS#1 or SEC1 key".into(),
        )));
    };
    let mut keys = blocks.iter().filter(|b| {
        matches!(
            b.label.as_str(),
            "RSA PRIVATE KEY" | "PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY"
        )
    });
    let Some(block) = keys.next() else {
        return Err(LoadError::WrongPemLabel {
            origin: origin.to_string(),
            found: blocks.into_iter().map(|b| b.label).collect(),
            expected: "PRIVATE KEY",
        });
    };
    if keys.next().is_some() {
        return Err(LoadError::BadPem {
            origin: origin.to_string(),
            reason: "more than one private key in the file".into(),
        });
    }
    if block.encrypted || block.label == "ENCRYPTED PRIVATE KEY" {
        return Err(LoadError::EncryptedKey {
            origin: origin.to_string(),
        });
    }
    match block.label.as_str() {
        "RSA PRIVATE KEY" => PrivateKey::from_pkcs1_der(&block.der),
        "EC PRIVATE KEY" => PrivateKey::from_sec1_der(&block.der),
        _ => PrivateKey::from_pkcs8_der(&block.der),
    }
    .map_err(refused)
}

/// Reads the certificates of a PEM or DER file (see [`parse_certificates`]).
pub fn load_certificates(path: &Path) -> Result<Vec<Certificate>, LoadError> {
    let data = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_certificates(&path.display().to_string(), &data)
}

/// Reads a private key file (see [`parse_private_key`]) after checking that
/// neither group nor others have any access to it: a key readable by other
/// users is refused with the `chmod` that fixes it.
pub fn load_private_key(path: &Path) -> Result<PrivateKey, LoadError> {
    let data = read_private_key_file(path)?;
    parse_private_key(&path.display().to_string(), &data)
}

/// The bytes of a private key file, read and checked as
/// [`load_private_key`] reads it, for a caller that needs them besides the
/// key (to tell a rewritten file from the one in use). The buffer is wiped
/// when dropped.
pub fn read_private_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    // The mode of the file we opened, not of whatever the path names later.
    let metadata = file.metadata().map_err(io)?;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(LoadError::InsecurePermissions {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    // Sized up front so that the buffer holding the key is not reallocated
    // (a reallocation would leave an unwiped copy behind).
    let capacity = usize::try_from(metadata.len())
        .unwrap_or(0)
        .saturating_add(1);
    let mut data = Zeroizing::new(Vec::with_capacity(capacity));
    file.read_to_end(&mut data).map_err(io)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_tolerate_text_around_and_long_lines() {
        // "hello" and "world" in base64, the second on one 76-column-style line.
        let text = "subject=CN=x\n-----BEGIN A-----\naGVs\nbG8=\n-----END A-----\n\
                    junk between\r\n-----BEGIN B-----\r\nd29y bGQ=\r\n-----END B-----\r\n";
        let blocks = pem_blocks("t", text.as_bytes()).unwrap().unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].label.as_str(), &blocks[0].der[..]),
            ("A", &b"hello"[..])
        );
        assert_eq!(
            (blocks[1].label.as_str(), &blocks[1].der[..]),
            ("B", &b"world"[..])
        );
    }

    #[test]
    fn pem_blocks_report_a_missing_end_and_a_mismatched_end() {
        let err = pem_blocks("f.pem", b"-----BEGIN A-----\naGVsbG8=\n")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "f.pem: malformed PEM: \"BEGIN A\" has no END line"
        );
        let err = pem_blocks("f.pem", b"-----BEGIN A-----\naGVsbG8=\n-----END B-----\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("\"END B\" closes \"BEGIN A\""));
    }

    #[test]
    fn pem_blocks_flag_legacy_encryption_headers() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                    DEK-Info: AES-128-CBC,00\n\naGVsbG8=\n-----END RSA PRIVATE KEY-----\n";
        let blocks = pem_blocks("k", text.as_bytes()).unwrap().unwrap();
        assert!(blocks[0].encrypted);
    }
}
