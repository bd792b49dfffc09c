//! Two real charons between two namespaces (as root): the tunnel comes up,
//! both sides agree on the SAs, traffic crosses it, and tshark, given the
//! keys charon logged, decrypts the IKE_AUTH exchange and the ESP packets
//! with good ICVs (which checks the tshark helper's key lines too).

use std::path::Path;
use std::sync::Mutex;

use xrsec_lab::{
    ensure_packages, EspEncr, EspInteg, EspSaKey, IkeEncr, IkeInteg, IkeSaKey, LoggedSecret, Node,
    SwanPair, SwanPairOptions, SwanSa, SwanSuite, Topology, TopologyConfig, Tshark, HOST_UPLINK,
};

/// The tests of this file run in parallel threads; two iperf3 runs at once
/// on two cores would halve each other's figure.
static IPERF: Mutex<()> = Mutex::new(());

fn prepare() {
    assert!(is_root(), "these tests need root (namespaces, TUN)");
    ensure_packages().expect("install the lab's Debian packages");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn secret(secrets: &[LoggedSecret], label: &str) -> Vec<u8> {
    secrets
        .iter()
        .rev()
        .find(|s| s.label == label)
        .unwrap_or_else(|| panic!("charon logged no {label}"))
        .bytes
        .clone()
}

struct Expect {
    ike_algorithms: &'static str,
    esp_algorithms: &'static str,
    ike_encr: IkeEncr,
    ike_integ: IkeInteg,
    esp_encr: EspEncr,
    esp_integ: EspInteg,
    esp_key_len: usize,
}

fn run_pair(suite: SwanSuite, expect: Expect) {
    prepare();
    let topology = Topology::new(TopologyConfig::direct()).expect("topology");
    let pcap = topology.dir().join("a.pcap");
    let capture = topology
        .capture(Node::A, HOST_UPLINK, pcap)
        .expect("capture");
    let options = SwanPairOptions {
        log_keys: true,
        ..SwanPairOptions::default()
    };
    let pair = SwanPair::up_with(&topology, &suite, &options).expect("strongSwan pair up");

    let (ini, res) = pair.check().expect("both sides agree");
    check_sa(&ini, &expect);
    check_sa(&res, &expect);
    assert!(!res.local_is_initiator);
    // kernel-libipsec always forces NAT-T: IKE and ESP on 4500.
    assert_eq!(ini.remote_addr.map(|a| a.port()), Some(4500));

    let ping = topology
        .ping_from(Node::A, pair.inner_a(), pair.inner_b(), 5)
        .expect("ping");
    assert_eq!(ping.received, 5, "{ping:?}\n{}", pair.logs());
    let pcap = capture.stop().expect("stop capture");

    let ini_child = &ini.children[0];
    let res_child = &res.children[0];
    // The initiator's view after the ping: packets both ways.
    let after = pair.initiator().list_sas().expect("list-sas");
    assert!(after[0].children[0].packets_out >= 5, "{after:?}");
    assert!(after[0].children[0].packets_in >= 5, "{after:?}");

    decode_with_charon_keys(
        &pair,
        &pcap,
        &ini,
        ini_child.spi_out,
        res_child.spi_out,
        &expect,
    );

    let _serial = IPERF.lock().unwrap_or_else(|e| e.into_inner());
    let r = pair
        .iperf3(&topology, 3, 1)
        .expect("iperf3 through the tunnel");
    eprintln!(
        "strongSwan {} / {}: {:.3} Gbit/s, ~{:.0} packets/s, {} retransmits",
        suite.ike, suite.esp, r.gbits_per_sec, r.packets_per_sec_estimate, r.retransmits
    );
    assert!(r.gbits_per_sec > 0.0, "{r:?}");
}

fn check_sa(sa: &SwanSa, expect: &Expect) {
    assert!(sa.is_established(), "{sa:?}");
    assert_eq!(sa.algorithms, expect.ike_algorithms);
    assert_eq!(sa.children.len(), 1, "{sa:?}");
    let child = &sa.children[0];
    assert!(child.is_installed(), "{child:?}");
    assert_eq!(child.mode, "TUNNEL-in-UDP");
    assert_eq!(child.protocol, "ESP");
    assert_eq!(child.algorithms, expect.esp_algorithms);
    assert_ne!(child.spi_in, 0);
    assert_ne!(child.spi_out, 0);
}

/// Feeds the initiator's logged keys to tshark: both IKE_AUTH messages
/// decrypt, and every ESP packet of the ping (both directions) has a good ICV
/// and an ICMP packet inside.
fn decode_with_charon_keys(
    pair: &SwanPair,
    pcap: &Path,
    ini: &SwanSa,
    spi_i_to_r: u32,
    spi_r_to_i: u32,
    e: &Expect,
) {
    let secrets = pair.initiator().logged_secrets();
    let integ_or_empty = |label: &str| {
        if e.esp_integ == EspInteg::Null {
            Vec::new()
        } else {
            secret(&secrets, label)
        }
    };
    let ike_integ_or_empty = |label: &str| {
        if e.ike_integ == IkeInteg::None {
            Vec::new()
        } else {
            secret(&secrets, label)
        }
    };
    let enc_i = secret(&secrets, "encryption initiator key");
    assert_eq!(enc_i.len(), e.esp_key_len);
    let mut tshark = Tshark::new().expect("tshark");
    tshark
        .ike_sa(&IkeSaKey {
            spi_i: ini.spi_i,
            spi_r: ini.spi_r,
            sk_ei: secret(&secrets, "Sk_ei secret"),
            sk_er: secret(&secrets, "Sk_er secret"),
            encr: e.ike_encr,
            sk_ai: ike_integ_or_empty("Sk_ai secret"),
            sk_ar: ike_integ_or_empty("Sk_ar secret"),
            integ: e.ike_integ,
        })
        .esp_sa(&EspSaKey {
            src: None,
            dst: None,
            spi: spi_i_to_r,
            encr: e.esp_encr,
            encr_key: enc_i,
            integ: e.esp_integ,
            integ_key: integ_or_empty("integrity initiator key"),
        })
        .esp_sa(&EspSaKey {
            src: None,
            dst: None,
            spi: spi_r_to_i,
            encr: e.esp_encr,
            encr_key: secret(&secrets, "encryption responder key"),
            integ: e.esp_integ,
            integ_key: integ_or_empty("integrity responder key"),
        });

    let ike_decrypted = tshark
        .count(pcap, "isakmp.enc.pad_length")
        .expect("tshark ike");
    assert!(
        ike_decrypted >= 2,
        "IKE_AUTH not decrypted ({ike_decrypted})"
    );

    let rows = tshark
        .fields(
            pcap,
            Some("esp"),
            &["esp.spi", "esp.icv_good", "esp.icv_bad", "icmp.type"],
        )
        .expect("tshark esp");
    assert!(rows.len() >= 10, "{rows:?} in {}", pcap.display());
    for row in &rows {
        assert!(row[1] == "1" || row[1] == "True", "ICV not good: {row:?}");
        assert!(
            row[2].is_empty() || row[2] == "0" || row[2] == "False",
            "{row:?}"
        );
        assert!(row[3] == "8" || row[3] == "0", "no ICMP inside: {row:?}");
    }
    let malformed = tshark.count(pcap, "_ws.malformed").expect("tshark");
    assert_eq!(malformed, 0);
}

#[test]
fn strongswan_pair_with_aes_cbc_and_hmac_sha256_carries_traffic() {
    run_pair(
        SwanSuite::new("aes256-sha256-prfsha256-ecp384", "aes256-sha256-ecp256"),
        Expect {
            ike_algorithms: "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_384",
            esp_algorithms: "AES_CBC-256/HMAC_SHA2_256_128",
            ike_encr: IkeEncr::AesCbc256,
            ike_integ: IkeInteg::HmacSha256_128,
            esp_encr: EspEncr::AesCbc,
            esp_integ: EspInteg::HmacSha256_128,
            esp_key_len: 32,
        },
    );
}

#[test]
fn strongswan_pair_with_aes_gcm_carries_traffic() {
    run_pair(
        SwanSuite::new("aes256gcm16-prfsha256-ecp384", "aes256gcm16-ecp521"),
        Expect {
            ike_algorithms: "AES_GCM_16-256/PRF_HMAC_SHA2_256/ECP_384",
            esp_algorithms: "AES_GCM_16-256",
            ike_encr: IkeEncr::AesGcm256_16,
            ike_integ: IkeInteg::None,
            esp_encr: EspEncr::AesGcm16,
            esp_integ: EspInteg::Null,
            // 32-byte key and 4-byte salt (RFC 4106).
            esp_key_len: 36,
        },
    );
}

#[test]
fn strongswan_pair_works_through_a_nat_router() {
    prepare();
    let topology = Topology::new(TopologyConfig::routed(true)).expect("topology");
    let suite = SwanSuite::new("aes128gcm16-prfsha256-curve25519", "aes128gcm16");
    let pair = SwanPair::up(&topology, &suite).expect("strongSwan pair up through the NAT");
    let (ini, res) = pair.check().expect("both sides agree");
    // The responder sees the NAT's address, never a's own.
    let seen = res.remote_addr.expect("remote endpoint");
    assert_eq!(seen.ip(), topology.a_as_seen_by_b());
    assert_eq!(res.remote_id, topology.address(Node::A).to_string());
    assert_eq!(
        ini.algorithms,
        "AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519"
    );
    let ping = topology
        .ping_from(Node::A, pair.inner_a(), pair.inner_b(), 3)
        .expect("ping");
    assert_eq!(ping.received, 3, "{ping:?}\n{}", pair.logs());
}
