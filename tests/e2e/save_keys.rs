//! `xrsecd --save-keys DIR`: the keys it writes let Wireshark, which shares
//! no code with xrsec, decrypt a capture of the tunnel.
//!
//! Both routers run with `--save-keys`; a capture on router A's uplink covers
//! the bring-up (both routers initiate, so two IKE SAs are negotiated and
//! one is deleted), a ping and a short TCP transfer through tunnel-ip1, and
//! the DELETE of router A's shutdown. Given the lines of the key files as
//! they are, tshark must decrypt every IKE message after IKE_SA_INIT and
//! every ESP packet, find every ICV good, and show the pings inside.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use xrsec_e2e::{Pair, PairConfig, BRING_UP, INNER_A, INNER_B};
use xrsec_lab::{Node, Topology, Tshark, XrSuite, HOST_UPLINK};

/// The files `--save-keys` writes, named after Wireshark's tables.
const IKE_TABLE: &str = "ikev2_decryption_table";
const ESP_TABLE: &str = "esp_sa";
/// IKEv2 exchange types (RFC 7296 3.1).
const IKE_SA_INIT: &str = "34";

#[test]
fn wireshark_decrypts_a_cbc_tunnel_with_the_saved_keys() {
    decrypt_capture(&XrSuite::seed());
}

#[test]
fn wireshark_decrypts_a_gcm_tunnel_with_the_saved_keys() {
    let mut suite = XrSuite::new("aes-gcm-256", "", "sha-384", 19, "esp-gcm-128");
    suite.pfs_group = Some(31);
    decrypt_capture(&suite);
}

#[test]
fn without_save_keys_no_key_file_is_written() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let pair = Pair::start(&XrSuite::seed());
    pair.a.wait_up(Duration::from_secs(20)).unwrap();
    pair.b.wait_up(Duration::from_secs(20)).unwrap();
    let p = pair.topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
    for d in [&pair.a, &pair.b] {
        // The daemon's own directory (config, socket, log) and the
        // directory it was started from hold no table.
        let dir = d.config_path().parent().unwrap();
        for place in [dir, Path::new(".")] {
            for table in [IKE_TABLE, ESP_TABLE] {
                assert!(
                    !place.join(table).exists(),
                    "{} written without --save-keys",
                    place.join(table).display()
                );
            }
        }
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["router.conf", "xrsecd.log", "xrsecd.sock"]);
        assert!(!d.log().contains("--save-keys"), "{}", d.log());
    }
}

fn decrypt_capture(suite: &XrSuite) {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let setup = PairConfig::direct(suite);
    let topo = &setup.topo;
    // Directories that do not exist yet: the daemon makes them.
    let keys_a = topo.dir().join("keys-a");
    let keys_b = topo.dir().join("keys-b");
    let pcap = topo.dir().join("uplink-a.pcap");

    let capture = topo.capture(Node::A, HOST_UPLINK, pcap).unwrap();
    let keys_a_s = keys_a.display().to_string();
    let keys_b_s = keys_b.display().to_string();
    let mut pair = setup.start(&["--save-keys", &keys_a_s], &["--save-keys", &keys_b_s]);
    let (topo, da, db) = (&pair.topo, &mut pair.a, &pair.b);
    xrsec_e2e::wait_converged(da, db, BRING_UP);
    let p = topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
    short_tcp_transfer(topo, Node::A, Node::B, INNER_B);
    let status_b = db.status().unwrap();
    // Router A's shutdown puts an INFORMATIONAL DELETE on the wire too.
    assert!(
        da.stop().unwrap(),
        "xrsecd did not exit with 0:\n{}",
        da.log()
    );
    let pcap = capture.stop().unwrap();

    for (d, dir) in [(&*da, &keys_a), (db, &keys_b)] {
        assert!(
            d.log().contains(&format!(
                "--save-keys: writing every IKE and ESP key to {}",
                dir.display()
            )),
            "the log does not warn that keys are written:\n{}",
            d.log()
        );
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        for table in [IKE_TABLE, ESP_TABLE] {
            let path = dir.join(table);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is readable by others", path.display());
        }
    }

    // Every line of both routers' files, as written, each once.
    let mut tshark = Tshark::new().unwrap();
    let mut ike_lines = BTreeSet::new();
    let mut esp_lines = BTreeSet::new();
    for dir in [&keys_a, &keys_b] {
        ike_lines.extend(lines_of(&dir.join(IKE_TABLE)));
        esp_lines.extend(lines_of(&dir.join(ESP_TABLE)));
    }
    assert!(!ike_lines.is_empty() && !esp_lines.is_empty());
    for line in &ike_lines {
        tshark.option("uat:ikev2_decryption_table", line);
    }
    for line in &esp_lines {
        tshark.option("uat:esp_sa", line);
    }
    // The SA carrying the traffic is in the files, both directions.
    let ipsec = status_b.tunnels[0].ipsec.as_ref().unwrap();
    for spi in [ipsec.inbound.spi, ipsec.outbound.spi] {
        let quoted = format!("\"0x{spi:08x}\"");
        assert!(
            esp_lines.iter().any(|l| l.contains(&quoted)),
            "SPI 0x{spi:08x} is not in esp_sa: {esp_lines:#?}"
        );
    }

    // IKE: every message after IKE_SA_INIT decrypted (the padding length is
    // only shown for a decrypted Encrypted payload).
    let ike = tshark
        .fields(
            &pcap,
            Some("isakmp"),
            &[
                "frame.number",
                "isakmp.exchangetype",
                "isakmp.ispi",
                "isakmp.rspi",
                "isakmp.enc.pad_length",
                "_ws.malformed",
            ],
        )
        .unwrap();
    let encrypted: Vec<&Vec<String>> = ike.iter().filter(|r| r[1] != IKE_SA_INIT).collect();
    assert!(
        ike.iter().any(|r| r[1] == IKE_SA_INIT),
        "no IKE_SA_INIT captured: {ike:?}"
    );
    // IKE_AUTH (35) both ways and INFORMATIONAL (37) at least for the DELETE.
    for exchange in ["35", "37"] {
        assert!(
            encrypted.iter().any(|r| r[1] == exchange),
            "no exchange {exchange} captured: {ike:?}"
        );
    }
    // An IKE SA whose keys are in the files must decrypt (else the keys are
    // wrong); every IKE SA on the wire must have its keys there (checked
    // last, below).
    let has_keys = |spi_i: &str| ike_lines.iter().any(|l| l.starts_with(spi_i));
    let (keyed, unkeyed): (Vec<&Vec<String>>, Vec<&Vec<String>>) =
        encrypted.iter().partition(|r| has_keys(&r[2]));
    let wrong: Vec<&&Vec<String>> = keyed.iter().filter(|r| r[4].is_empty()).collect();
    assert!(
        wrong.is_empty(),
        "IKE messages tshark could not decrypt although their IKE SA's keys \
         were saved (frame, exchange, SPIi, SPIr): {wrong:?}\nkeys: {ike_lines:#?}"
    );
    assert!(
        keyed.iter().any(|r| r[1] == "35") && keyed.iter().any(|r| r[1] == "37"),
        "no decrypted IKE_AUTH and INFORMATIONAL: {ike:?}"
    );
    assert!(
        ike.iter().all(|r| r[5].is_empty()),
        "malformed IKE: {ike:?}"
    );

    // ESP: every packet's ICV good, none bad, nothing malformed, the inner
    // packets readable.
    let esp_total = tshark.count(&pcap, "esp").unwrap();
    let icv_good = tshark.count(&pcap, "esp.icv_good == 1").unwrap();
    let icv_bad = tshark.count(&pcap, "esp.icv_bad == 1").unwrap();
    let malformed = tshark.count(&pcap, "_ws.malformed").unwrap();
    assert!(esp_total > 6, "only {esp_total} ESP packets captured");
    assert_eq!(icv_good, esp_total, "ESP packets without a good ICV");
    assert_eq!(icv_bad, 0);
    assert_eq!(malformed, 0);
    // Tunnel mode: the next header is IPv4 (4), the inner addresses are the
    // tunnel's, and the three echo requests and replies are there.
    let inner = tshark
        .fields(&pcap, Some("esp"), &["esp.protocol", "ip.src", "icmp.type"])
        .unwrap();
    assert!(
        inner.iter().all(|r| next_header(&r[0]) == Some(4)),
        "{:?}",
        &inner[..inner.len().min(5)]
    );
    let requests = inner
        .iter()
        .filter(|r| r[2] == "8" && r[1].contains(&INNER_A.to_string()))
        .count();
    let replies = inner
        .iter()
        .filter(|r| r[2] == "0" && r[1].contains(&INNER_B.to_string()))
        .count();
    assert_eq!((requests, replies), (3, 3), "inner ICMP seen by tshark");
    let tcp_inside = tshark.count(&pcap, "esp && tcp").unwrap();
    assert!(tcp_inside > 0, "no decrypted TCP");

    // Both routers initiated: the IKE SA that lost (deleted as a duplicate)
    // was on the wire too, its IKE_AUTH and its DELETE encrypted. Its keys
    // must be in the files as well, or part of the capture stays opaque.
    let missing: BTreeSet<&str> = unkeyed.iter().map(|r| r[2].as_str()).collect();
    assert!(
        missing.is_empty(),
        "IKE SAs on the wire whose keys neither router saved (SPIi): {missing:?}; \
         their messages (frame, exchange, SPIi, SPIr): {unkeyed:?}\nA's log:\n{}\nB's log:\n{}",
        da.log(),
        db.log()
    );
}

/// tshark prints the next header as `0x04`.
fn next_header(field: &str) -> Option<u8> {
    u8::from_str_radix(field.strip_prefix("0x")?, 16).ok()
}

/// 256 KiB of TCP from `client` to `server_addr`: enough segments in both
/// directions to matter, few enough for tshark to decrypt quickly (a second
/// of iperf3 is some 40 000 packets, which Wireshark 4.0 takes about a
/// minute to decrypt with AES-GCM).
fn short_tcp_transfer(topo: &Topology, client: Node, server: Node, server_addr: Ipv4Addr) {
    let log = topo.dir().join("iperf3-short.log");
    let mut srv = topo
        .spawn(
            server,
            &["iperf3", "-s", "-1", "--forceflush", "-p", "5202"],
            &log,
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !srv.output().contains("Server listening") {
        assert!(
            srv.is_running() && Instant::now() < deadline,
            "iperf3 server: {}",
            srv.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let addr = server_addr.to_string();
    let out = topo
        .run(client, &["iperf3", "-c", &addr, "-p", "5202", "-n", "256K"])
        .unwrap();
    assert!(out.contains("receiver"), "iperf3: {out}");
    srv.wait_timeout(Duration::from_secs(10)).unwrap();
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}
