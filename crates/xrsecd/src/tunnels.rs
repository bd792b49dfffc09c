//! The tunnels of the configuration as the daemon runs them: where each
//! stands (negotiating, up, down and why, when it retries) and which Child
//! SAs it has installed in the dataplane.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use xrsec_config::{Config, TunnelSource};
use xrsec_crypto::EspSuite;
use xrsec_ike::{IkeSaId, TunnelConfig};

/// Longest wait between two initiation attempts of a failing tunnel.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One Child SA pair installed in the dataplane.
#[derive(Clone, Debug)]
pub(crate) struct Installed {
    /// `SA id` of `show ipsec sa`.
    pub sa_id: u32,
    pub ike_sa: IkeSaId,
    pub spi_in: u32,
    pub spi_out: u32,
    pub suite: EspSuite,
    pub installed_at: Instant,
    pub lifetime: Duration,
    pub udp_encap: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The tunnel sends with this SA.
    pub outbound: bool,
    /// Its outbound half, waiting to be switched on (a rekey the peer
    /// started: until the peer deletes the SA this one replaces).
    pub pending: Option<xrsec_esp::SaSpec>,
}

/// One `interface tunnel-ipN`.
#[derive(Debug)]
pub(crate) struct Tunnel {
    pub name: String,
    /// The negotiator's config for it (`None` when shut down).
    pub ike: Option<TunnelConfig>,
    pub local: Option<Ipv4Addr>,
    pub remote: Option<Ipv4Addr>,
    pub address: Option<(Ipv4Addr, u8)>,
    pub mtu: Option<u16>,
    /// `router static` prefixes routed into it.
    pub routes: Vec<(Ipv4Addr, u8)>,
    /// The dataplane's handle once the TUN exists.
    pub esp: Option<xrsec_esp::TunnelId>,
    pub ifindex: u32,
    pub admin_down: bool,
    /// Failed attempts in a row (reset when a Child SA comes up).
    pub failures: u32,
    pub last_error: Option<(String, Instant)>,
    /// The last NO_PROPOSAL_CHOSEN seen as responder (it names both sides'
    /// proposals; as initiator we only learn ours was refused).
    pub proposal_mismatch: Option<(String, Instant)>,
    pub retry_at: Option<Instant>,
    /// Installed Child SAs, oldest first; the one marked `outbound`
    /// carries outbound traffic.
    pub children: Vec<Installed>,
    /// Inbound ESP packets of its Child SAs at the last look (dead peer
    /// detection takes traffic as a sign of life).
    pub inbound_packets_seen: u64,
    /// Outbound ESP packets at the last look, and when that count last
    /// grew or a NAT keepalive went out (behind a NAT: a keepalive after a
    /// quiet interval).
    pub outbound_packets_seen: u64,
    pub last_sent: Option<Instant>,
    /// Everything the tunnel's behaviour depends on, secrets included, to
    /// tell on reload whether it changed (never printed).
    pub fingerprint: String,
}

impl Tunnel {
    /// The Child SA the tunnel sends with.
    pub(crate) fn current(&self) -> Option<&Installed> {
        self.children.iter().find(|c| c.outbound)
    }

    /// Records a failure and schedules the next attempt: 2, 4, 8 ... 60 s.
    pub(crate) fn failed(&mut self, now: Instant, reason: String) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some((reason, now));
        let exp = self.failures.saturating_sub(1).min(6);
        let backoff = Duration::from_secs(2u64 << exp).min(MAX_BACKOFF);
        self.retry_at = Some(now + backoff);
    }
}

/// Why a tunnel cannot run, found at start.
#[derive(Debug)]
pub(crate) struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tunnels of `config`, in configuration order: one per interface
/// (shut-down ones too, for status).
pub(crate) fn from_config(config: &Config) -> Result<Vec<Tunnel>, SetupError> {
    let views = config.tunnels();
    let mut out = Vec::new();
    for itf in config.interfaces.iter() {
        let address = itf.ipv4_address.map(|n| (n.addr, n.prefix_len));
        let remote = itf.destination.map(|(a, _)| a);
        let view = views.iter().find(|v| v.interface.name == itf.name);
        let mut t = Tunnel {
            name: itf.name.clone(),
            ike: None,
            local: None,
            remote,
            address,
            mtu: itf.mtu,
            routes: Vec::new(),
            esp: None,
            ifindex: 0,
            admin_down: itf.shutdown,
            failures: 0,
            last_error: None,
            proposal_mismatch: None,
            retry_at: None,
            children: Vec::new(),
            inbound_packets_seen: 0,
            outbound_packets_seen: 0,
            last_sent: None,
            fingerprint: String::new(),
        };
        let Some(view) = view else {
            // Shut down (the validator guarantees the references of the
            // others resolve).
            out.push(t);
            continue;
        };
        let local = match &itf.source {
            Some((TunnelSource::Address(a), _)) => *a,
            Some((TunnelSource::Interface(name), _)) => xrsec_esp::sys::interface_ipv4(name)
                .map_err(|e| {
                    SetupError(format!(
                        "{}: tunnel source {name}: cannot read its IPv4 address: {e}",
                        itf.name
                    ))
                })?,
            _ => {
                return Err(SetupError(format!("{}: no usable tunnel source", itf.name)));
            }
        };
        let (pki, files) = if view.ikev2_profile.uses_rsa() {
            match view.trustpoint {
                Some(tp) => {
                    let (pki, files) = load_trustpoint(tp).map_err(|e| {
                        SetupError(format!("{}: pki trustpoint {}: {e}", itf.name, tp.name))
                    })?;
                    (Some(pki), files)
                }
                None => (None, Vec::new()),
            }
        } else {
            (None, Vec::new())
        };
        let ike = xrsec_ike::from_tunnel_with_pki(view, local, pki.as_ref())
            .map_err(|e| SetupError(format!("{}: {e}", itf.name)))?;
        t.local = Some(local);
        t.routes = view
            .routes
            .iter()
            .map(|r| (r.prefix.addr, r.prefix.prefix_len))
            .collect();
        t.fingerprint = fingerprint(&ike, &t, &files);
        t.ike = Some(ike);
        out.push(t);
    }
    Ok(out)
}

/// `ikev2 fragmentation` as the log says it.
pub(crate) fn fragmentation_text(f: &xrsec_config::IkeFragmentation) -> String {
    if f.enabled() {
        format!(
            "IKE fragmentation (RFC 7383): offered, messages cut into IP datagrams of at most {} bytes",
            f.mtu()
        )
    } else {
        "IKE fragmentation (RFC 7383): off (`no ikev2 fragmentation`): large messages go whole"
            .to_string()
    }
}

/// Reads a `crypto ca trustpoint`'s files: the CA certificate peers must
/// chain to, our certificate (and intermediates), our private key (refused
/// when others than its owner may read it). Also returns the SHA-256 of the
/// three files' contents as read, so that a reload notices a certificate or
/// key renewed under the same subject and file name.
fn load_trustpoint(
    tp: &xrsec_config::Trustpoint,
) -> Result<(xrsec_ike::LoadedTrustpoint, Vec<u8>), String> {
    let path = |what: &str, p: &Option<String>| {
        p.clone()
            .map(std::path::PathBuf::from)
            .ok_or_else(|| format!("no `{what}` configured"))
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| {
            xrsec_pki::LoadError::Io {
                path: path.to_path_buf(),
                source,
            }
            .to_string()
        })
    };
    let mut files = Vec::new();
    let ca_path = path("ca-certificate", &tp.ca_certificate)?;
    let ca_bytes = read(&ca_path)?;
    files.extend(content_hash(&ca_bytes));
    let ca = xrsec_pki::parse_certificates(&ca_path.display().to_string(), &ca_bytes)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: no certificate in the file", ca_path.display()))?;
    let ca = xrsec_pki::TrustAnchor::new(ca).map_err(|e| format!("{}: {e}", ca_path.display()))?;
    let cert_path = path("certificate", &tp.certificate)?;
    let cert_bytes = read(&cert_path)?;
    files.extend(content_hash(&cert_bytes));
    let chain = xrsec_pki::parse_certificates(&cert_path.display().to_string(), &cert_bytes)
        .map_err(|e| e.to_string())?;
    let key_path = path("private-key", &tp.private_key)?;
    let key_bytes = xrsec_pki::read_private_key_file(&key_path).map_err(|e| e.to_string())?;
    files.extend(content_hash(&key_bytes));
    let key = xrsec_pki::parse_private_key(&key_path.display().to_string(), &key_bytes)
        .map_err(|e| e.to_string())?;
    if let Some(cert) = chain.first() {
        let cert_key = cert
            .public_key()
            .map_err(|e| format!("certificate `{}`: {e}", cert.subject()))?;
        if *cert_key != key.public_key() {
            return Err(format!(
                "the private key does not belong to the certificate `{}`",
                cert.subject()
            ));
        }
    }
    Ok((
        xrsec_ike::LoadedTrustpoint {
            ca: std::sync::Arc::new(ca),
            chain,
            key: std::sync::Arc::new(key),
        },
        files,
    ))
}

/// SHA-256 of a file's contents: one-way, so that the fingerprint holds
/// nothing of a private key but whether it changed.
fn content_hash(bytes: &[u8]) -> Vec<u8> {
    xrsec_pki::HashAlgorithm::Sha256.digest(bytes)
}

/// What decides a tunnel's behaviour, in one string (keys included as
/// bytes: it is compared, never shown). `files` is the hash of the
/// trustpoint's files' contents ([`load_trustpoint`]): `ike`'s Debug names
/// only the certificates' subjects, which a renewal keeps.
fn fingerprint(ike: &TunnelConfig, t: &Tunnel, files: &[u8]) -> String {
    format!(
        "{ike:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{files:?}",
        ike.psk_local.as_bytes(),
        ike.psk_remote.as_bytes(),
        ike.ike_lifetime,
        ike.pfs,
        ike.sa_lifetime,
        ike.sa_lifetime_kilobytes,
        ike.replay_window,
        t.address,
        t.mtu,
        t.routes
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    };

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../xrsec-pki/tests/data")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn key(name: &str) -> KeyPair {
        KeyPair::from_pem(&fixture(name)).unwrap()
    }

    fn dn(cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn
    }

    /// The CA certificate for ca.key, valid from 1 January of `year`.
    fn ca(year: i32) -> (String, Issuer<'static, KeyPair>) {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = dn("reload test CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = rcgen::date_time_ymd(year, 1, 1);
        p.not_after = rcgen::date_time_ymd(year + 5, 1, 1);
        let pem = p.self_signed(&key("ca.key")).unwrap().pem();
        (pem, Issuer::new(p, key("ca.key")))
    }

    /// "CN=10.99.0.1" for `key_file`, valid from 1 January of `year`.
    fn end_entity(issuer: &Issuer<'static, KeyPair>, key_file: &str, year: i32) -> String {
        let mut p = CertificateParams::new(vec!["10.99.0.1".to_string()]).unwrap();
        p.distinguished_name = dn("10.99.0.1");
        p.not_before = rcgen::date_time_ymd(year, 1, 1);
        p.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
        p.signed_by(&key(key_file), issuer).unwrap().pem()
    }

    struct Files {
        dir: PathBuf,
    }

    impl Files {
        fn new() -> Files {
            let dir = std::env::temp_dir().join(format!(
                "xrsecd-fingerprint-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Files { dir }
        }

        fn write(&self, name: &str, text: &str) {
            let path = self.dir.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }

        fn config(&self) -> xrsec_config::Config {
            let d = self.dir.display();
            let text = format!(
                "ikev2 proposal P\n encryption aes-cbc-256\n integrity sha-256\n prf sha-256\n dh-group 20\n!\n\
                 ikev2 policy POL\n match address local 10.99.0.1\n proposal P\n!\n\
                 crypto ca trustpoint TP\n ca-certificate {d}/ca.crt\n certificate {d}/r1.crt\n private-key {d}/r1.key\n!\n\
                 ikev2 profile IKE\n authentication local rsa-signature\n pki trustpoint TP\n match identity remote address 10.99.0.2 255.255.255.255\n!\n\
                 ipsec transform-set TS\n transform esp-256-aes esp-hmac-sha-256\n!\n\
                 ipsec profile IPS\n set ikev2-profile IKE\n set transform-set TS\n set pfs group20\n!\n\
                 interface tunnel-ip1\n ipv4 address 192.0.2.1 255.255.255.252\n tunnel mode ipsec ipv4\n tunnel source 10.99.0.1\n tunnel destination 10.99.0.2\n tunnel protection ipsec profile IPS\n!\n"
            );
            let parsed = xrsec_config::parse_str("t.conf", &text);
            assert!(!parsed.has_errors(), "{}", parsed.render_diagnostics());
            parsed.config.unwrap()
        }

        /// The tunnel's fingerprint, and its negotiator config's Debug
        /// (what the fingerprint held of the trustpoint before it hashed
        /// the files).
        fn fingerprint(&self) -> (String, String) {
            let tunnels = from_config(&self.config()).unwrap();
            let t = &tunnels[0];
            (
                t.fingerprint.clone(),
                format!("{:?}", t.ike.as_ref().unwrap()),
            )
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_certificate_or_key_renewed_under_the_same_subject_changes_the_fingerprint() {
        let files = Files::new();
        let (ca_pem, issuer) = ca(2025);
        files.write("ca.crt", &ca_pem);
        files.write("r1.crt", &end_entity(&issuer, "peer-pkcs8.key", 2025));
        files.write("r1.key", &fixture("peer-pkcs8.key"));
        let (first, first_debug) = files.fingerprint();
        // The same files read again: nothing to renegotiate.
        assert_eq!(files.fingerprint().0, first);

        // Our certificate renewed: same subject, same key, new dates.
        files.write("r1.crt", &end_entity(&issuer, "peer-pkcs8.key", 2026));
        let (renewed_cert, debug) = files.fingerprint();
        assert_eq!(debug, first_debug, "the subjects alone cannot tell");
        assert_ne!(renewed_cert, first);

        // A new key, with its certificate under the same subject.
        files.write("r1.key", &fixture("intermediate.key"));
        files.write("r1.crt", &end_entity(&issuer, "intermediate.key", 2026));
        let (new_key, debug) = files.fingerprint();
        assert_eq!(debug, first_debug);
        assert_ne!(new_key, renewed_cert);
        assert_ne!(new_key, first);

        // The CA certificate reissued under the same name and key.
        let (ca_pem, _) = ca(2026);
        files.write("ca.crt", &ca_pem);
        let (new_ca, debug) = files.fingerprint();
        assert_eq!(debug, first_debug);
        assert_ne!(new_ca, new_key);
    }

    #[test]
    fn the_fingerprint_holds_no_key_material() {
        let files = Files::new();
        let (ca_pem, issuer) = ca(2025);
        files.write("ca.crt", &ca_pem);
        files.write("r1.crt", &end_entity(&issuer, "peer-pkcs8.key", 2025));
        let key_pem = fixture("peer-pkcs8.key");
        files.write("r1.key", &key_pem);
        let (fp, _) = files.fingerprint();
        // Not the PEM text, not its base64 lines, not the DER bytes as Debug
        // prints a byte slice.
        assert!(!fp.contains("PRIVATE"), "{fp}");
        let line = key_pem.lines().nth(2).unwrap();
        assert!(!fp.contains(line), "{fp}");
        let der: Vec<u8> = rcgen::KeyPair::from_pem(&key_pem).unwrap().serialize_der();
        assert!(!fp.contains(&format!("{:?}", &der[..16])[1..40]), "{fp}");
    }
}
