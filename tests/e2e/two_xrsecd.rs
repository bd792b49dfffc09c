//! Two xrsecd between two network namespaces.
//!
//! Every ESP transform the seed's `ipsec transform-set` accepts and every IKE
//! group and cipher is brought up once between two real daemons, carries a
//! ping and a TCP transfer through tunnel-ip1, and is then read back the way
//! an engineer reads it: the text of `xrsec show ...` on both routers, field
//! by field, and `--json`. The two routers must tell the same story: the SPI
//! one sends with is the SPI the other receives on.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use xrsec_control::{IkeSa, Status, TunnelState};
use xrsec_e2e::{value_of, values_of, Pair, PairConfig, BRING_UP, INNER_B};
use xrsec_lab::{Node, XrSuite, Xrsecd};

#[test]
fn seed_suite_comes_up_and_carries_ping() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let pair = Pair::start(&XrSuite::seed());
    let sa = pair.a.wait_up(Duration::from_secs(15)).unwrap();
    let sb = pair.b.wait_up(Duration::from_secs(15)).unwrap();
    let ia = sa.tunnels[0].ipsec.as_ref().unwrap();
    let ib = sb.tunnels[0].ipsec.as_ref().unwrap();
    assert_eq!(ia.inbound.spi, ib.outbound.spi);
    assert_eq!(ia.outbound.spi, ib.inbound.spi);
    let p = pair.topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
}

// ---------------------------------------------------------------------------
// Every ESP transform, IKE group and IKE cipher, paired so that each appears
// at least once in fourteen bring-ups (not the 14 x 4 x 4 product).

fn suite(
    encryption: &str,
    integrity: &str,
    prf: &str,
    group: u16,
    transform: &str,
    pfs: Option<u16>,
) -> XrSuite {
    let mut s = XrSuite::new(encryption, integrity, prf, group, transform);
    s.pfs_group = pfs;
    s
}

#[test]
fn esp_128_aes_hmac_sha_1_with_ike_aes_cbc_128_sha_1_group_19() {
    check_suite(
        &suite(
            "aes-cbc-128",
            "sha-1",
            "sha-1",
            19,
            "esp-128-aes esp-hmac-sha-1",
            None,
        ),
        1,
    );
}

#[test]
fn esp_128_aes_hmac_sha_256_with_ike_aes_cbc_256_group_20() {
    check_suite(
        &suite(
            "aes-cbc-256",
            "sha-256",
            "sha-256",
            20,
            "esp-128-aes esp-hmac-sha-256",
            None,
        ),
        1,
    );
}

#[test]
fn esp_128_aes_hmac_sha_384_with_ike_aes_gcm_128_group_21() {
    check_suite(
        &suite(
            "aes-gcm-128",
            "",
            "sha-384",
            21,
            "esp-128-aes esp-hmac-sha-384",
            None,
        ),
        1,
    );
}

#[test]
fn esp_128_aes_hmac_sha_512_with_ike_aes_gcm_256_group_31() {
    check_suite(
        &suite(
            "aes-gcm-256",
            "",
            "sha-512",
            31,
            "esp-128-aes esp-hmac-sha-512",
            None,
        ),
        1,
    );
}

#[test]
fn esp_192_aes_hmac_sha_1_with_ike_aes_cbc_192_group_19_and_pfs_20() {
    check_suite(
        &suite(
            "aes-cbc-192",
            "sha-384",
            "sha-384",
            19,
            "esp-192-aes esp-hmac-sha-1",
            Some(20),
        ),
        1,
    );
}

#[test]
fn esp_192_aes_hmac_sha_256_with_ike_aes_cbc_128_sha_512_group_20() {
    check_suite(
        &suite(
            "aes-cbc-128",
            "sha-512",
            "sha-512",
            20,
            "esp-192-aes esp-hmac-sha-256",
            None,
        ),
        1,
    );
}

#[test]
fn esp_192_aes_hmac_sha_384_with_ike_aes_gcm_128_group_31_and_pfs_31() {
    check_suite(
        &suite(
            "aes-gcm-128",
            "",
            "sha-256",
            31,
            "esp-192-aes esp-hmac-sha-384",
            Some(31),
        ),
        1,
    );
}

#[test]
fn esp_192_aes_hmac_sha_512_with_ike_aes_cbc_256_group_21() {
    check_suite(
        &suite(
            "aes-cbc-256",
            "sha-384",
            "sha-256",
            21,
            "esp-192-aes esp-hmac-sha-512",
            None,
        ),
        1,
    );
}

#[test]
fn esp_256_aes_hmac_sha_1_with_ike_aes_gcm_256_group_19() {
    check_suite(
        &suite(
            "aes-gcm-256",
            "",
            "sha-256",
            19,
            "esp-256-aes esp-hmac-sha-1",
            None,
        ),
        1,
    );
}

#[test]
fn the_seeds_suite_esp_256_aes_hmac_sha_256_with_pfs_19_carries_five_seconds_of_tcp() {
    check_suite(&XrSuite::seed(), 5);
}

#[test]
fn esp_256_aes_hmac_sha_384_with_ike_aes_cbc_128_group_31_and_pfs_21() {
    check_suite(
        &suite(
            "aes-cbc-128",
            "sha-256",
            "sha-384",
            31,
            "esp-256-aes esp-hmac-sha-384",
            Some(21),
        ),
        1,
    );
}

#[test]
fn esp_256_aes_hmac_sha_512_with_ike_aes_gcm_128_group_20() {
    check_suite(
        &suite(
            "aes-gcm-128",
            "",
            "sha-512",
            20,
            "esp-256-aes esp-hmac-sha-512",
            None,
        ),
        1,
    );
}

#[test]
fn esp_gcm_128_with_ike_aes_gcm_128_group_19_carries_five_seconds_of_tcp() {
    check_suite(
        &suite("aes-gcm-128", "", "sha-256", 19, "esp-gcm-128", None),
        5,
    );
}

#[test]
fn esp_gcm_256_with_ike_aes_gcm_256_group_21() {
    check_suite(
        &suite("aes-gcm-256", "", "sha-384", 21, "esp-gcm-256", Some(19)),
        1,
    );
}

/// Both routers started at the same moment both initiate, and two IKE SAs
/// are negotiated; each router must end with one, the same one (its SPIs
/// and its Child SA's match across the two), one side its initiator and the
/// other its responder.
#[test]
fn a_simultaneous_start_ends_with_one_ike_sa_per_side() {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let PairConfig {
        topo,
        config_a,
        config_b,
    } = PairConfig::direct(&XrSuite::seed());
    let (a, b) = std::thread::scope(|s| {
        let ta = s.spawn(|| Xrsecd::start(&topo, Node::A, &config_a, &[]));
        let tb = s.spawn(|| Xrsecd::start(&topo, Node::B, &config_b, &[]));
        (ta.join().unwrap().unwrap(), tb.join().unwrap().unwrap())
    });
    let pair = Pair { a, b, topo };
    let (da, db) = (&pair.a, &pair.b);
    let (sa, sb) = wait_settled(da, db);
    let mut roles = [only_ike_sa(&sa).role.clone(), only_ike_sa(&sb).role.clone()];
    roles.sort();
    assert_eq!(roles, ["Initiator", "Responder"]);

    for d in [da, db] {
        let summary = d.xrsec(&["show", "ikev2", "summary"]).unwrap();
        assert_eq!(
            value_of(&summary, "Total Sa (Active/Negotiation)"),
            "1 (1/0)",
            "{summary}"
        );
    }
    let p = pair.topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(p.received, 3, "{p:?}");
    // Still one each once traffic has flowed (no late duplicate).
    let (sa, sb) = (da.status().unwrap(), db.status().unwrap());
    assert!(settled(&sa, &sb), "A: {sa:#?}\nB: {sb:#?}");
}

// ---------------------------------------------------------------------------

/// Brings `suite` up between two daemons, sends 3 pings and `tcp_secs` of
/// iperf3 through tunnel-ip1, and checks every show command on both sides.
fn check_suite(suite: &XrSuite, tcp_secs: u32) {
    if xrsec_e2e::needs_root() {
        return;
    }
    let _serial = xrsec_e2e::serial();
    let pair = Pair::start(suite);
    let (topo, da, db) = (&pair.topo, &pair.a, &pair.b);
    let (a, b) = (topo.address(Node::A), topo.address(Node::B));
    wait_settled(da, db);

    let p = topo.ping(Node::A, INNER_B, 3).unwrap();
    assert_eq!(
        p.received,
        3,
        "ping through tunnel-ip1: {p:?}\nA:\n{}",
        da.log()
    );
    let tcp = topo.iperf3(Node::A, Node::B, INNER_B, tcp_secs, 1).unwrap();
    assert!(
        tcp.gbits_per_sec > 0.0,
        "no TCP data crossed the tunnel: {tcp:?}"
    );

    let want = Expected::of(suite);
    let routers = [(da, a, b), (db, b, a)];
    let mut views = Vec::new();
    for (d, local, remote) in routers {
        views.push(check_one_side(d, &want, local, remote));
    }
    let (va, vb) = (&views[0], &views[1]);
    // The two routers describe the same SAs from opposite ends.
    assert_eq!(va.sa_in, vb.sa_out, "A's inbound SPI is B's outbound SPI");
    assert_eq!(va.sa_out, vb.sa_in, "A's outbound SPI is B's inbound SPI");
    assert_eq!(
        va.ike_local_spi, vb.ike_remote_spi,
        "A's Local SPI is B's Remote SPI"
    );
    assert_eq!(
        va.ike_remote_spi, vb.ike_local_spi,
        "A's Remote SPI is B's Local SPI"
    );
    let mut roles = [va.role.as_str(), vb.role.as_str()];
    roles.sort_unstable();
    assert_eq!(
        roles,
        ["Initiator", "Responder"],
        "one IKE SA, one initiator"
    );
    // show ikev2 summary: each side 1 active; what one calls outgoing the
    // other calls incoming.
    assert_eq!(va.outgoing, vb.incoming);
    assert_eq!(va.incoming, vb.outgoing);
}

/// What show must print for a suite, in the names xrsecd uses (IOS-XR's).
struct Expected {
    /// `Encryption/Keysize` of the IKE SA: `AES-CBC/256`.
    ike_encryption: String,
    /// `PRF/Hash/DH Group`: `SHA256/SHA256/20`.
    prf_hash_group: String,
    /// `Encrypt Algorithm` of `show ipsec sa interface`: `ESP_192_AES`.
    esp_encrypt: String,
    /// `Auth Algorithm`: `HMAC_SHA_256`, `None` with GCM.
    esp_auth: String,
    /// The Child SA's `Encryption`, `Keysize` and `ESP HMAC`.
    child_encryption: &'static str,
    child_keysize: String,
    child_hmac: String,
}

impl Expected {
    fn of(s: &XrSuite) -> Expected {
        // "aes-cbc-128" -> ("AES-CBC", "128").
        let (mode, bits) = s.ike_encryption["aes-".len()..].split_once('-').unwrap();
        let ike_encryption = format!("AES-{}/{bits}", mode.to_uppercase());
        let hash = |name: &str| name.replace('-', "").to_uppercase();
        let ike_hash = if s.ike_integrity.is_empty() {
            "None".to_string()
        } else {
            hash(&s.ike_integrity)
        };
        let prf_hash_group = format!("{}/{ike_hash}/{}", hash(&s.ike_prf), s.ike_group);

        let mut words = s.esp_transform.split_whitespace();
        let cipher = words.next().unwrap();
        let integrity = words.next();
        let (esp_encrypt, child_encryption, child_keysize) = match cipher.strip_prefix("esp-gcm-") {
            Some(bits) => (format!("ESP_AES_GCM_{bits}"), "AES-GCM", bits.to_string()),
            None => {
                // "esp-192-aes"
                let bits = &cipher["esp-".len().."esp-".len() + 3];
                (format!("ESP_{bits}_AES"), "AES-CBC", bits.to_string())
            }
        };
        let (esp_auth, child_hmac) = match integrity {
            None => ("None".to_string(), "None".to_string()),
            // "esp-hmac-sha-1" -> HMAC_SHA1 (xrsecd's name, see names.rs), the
            // SHA-2 ones -> HMAC_SHA_256.
            Some("esp-hmac-sha-1") => ("HMAC_SHA1".to_string(), "SHA1".to_string()),
            Some(other) => {
                let bits = other.strip_prefix("esp-hmac-sha-").unwrap();
                (format!("HMAC_SHA_{bits}"), format!("SHA{bits}"))
            }
        };
        Expected {
            ike_encryption,
            prf_hash_group,
            esp_encrypt,
            esp_auth,
            child_encryption,
            child_keysize,
            child_hmac,
        }
    }
}

/// What one router's show commands said, for comparing with the other's.
struct SideView {
    sa_in: String,
    sa_out: String,
    ike_local_spi: String,
    ike_remote_spi: String,
    role: String,
    outgoing: String,
    incoming: String,
}

fn check_one_side(d: &Xrsecd, want: &Expected, local: Ipv4Addr, remote: Ipv4Addr) -> SideView {
    let who = format!("router {local}");

    // show ipsec sa: one row, "tunnel-ip1  SA-Id  0x%08x  0x%08x".
    let table = d.xrsec(&["show", "ipsec", "sa"]).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("tunnel-ip"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 1, "{who}: show ipsec sa:\n{table}");
    let row = &rows[0];
    assert_eq!(row.len(), 4, "{who}: show ipsec sa row: {row:?}");
    assert_eq!(row[0], "tunnel-ip1");
    let (sa_in, sa_out) = (row[2].to_string(), row[3].to_string());
    for spi in [&sa_in, &sa_out] {
        assert!(is_spi32(spi), "{who}: SPI {spi} is not 0x and 8 hex digits");
    }
    assert_ne!(sa_in, "0x00000000");

    // show ipsec sa interface tunnel-ip1: the inbound block, then the outbound.
    let detail = d
        .xrsec(&["show", "ipsec", "sa", "interface", "tunnel-ip1"])
        .unwrap();
    assert_eq!(value_of(&detail, "Interface Name"), "tunnel-ip1");
    assert_eq!(
        value_of(&detail, "SA id"),
        row[1],
        "{who}: SA id as in the table"
    );
    assert_eq!(value_of(&detail, "Mode"), "Tunnel");
    assert_eq!(
        values_of(&detail, "SPI"),
        [sa_in.as_str(), sa_out.as_str()],
        "{who}:\n{detail}"
    );
    assert_eq!(values_of(&detail, "Protocol"), ["ESP", "ESP"]);
    for (label, expected) in [
        ("Encrypt Algorithm", want.esp_encrypt.as_str()),
        ("Auth Algorithm", want.esp_auth.as_str()),
        ("Drops", "none"),
    ] {
        assert_eq!(
            values_of(&detail, label),
            [expected, expected],
            "{who}: {label}:\n{detail}"
        );
    }
    let remote_s = format!("ESP, remote {remote}");
    assert_eq!(
        values_of(&detail, "Encapsulation"),
        [remote_s.as_str(), remote_s.as_str()]
    );
    for packets in values_of(&detail, "Packets") {
        let n: u64 = packets.parse().unwrap();
        assert!(
            n > 0,
            "{who}: a direction carried no packets after ping and TCP:\n{detail}"
        );
    }

    // show ikev2 session detail.
    let session = d.xrsec(&["show", "ikev2", "session", "detail"]).unwrap();
    let w = |label: &str| value_of(&session, label).to_string();
    assert_eq!(w("Status"), "UP-ACTIVE", "{who}:\n{session}");
    assert_eq!(w("IKE Count"), "1", "{who}:\n{session}");
    assert_eq!(w("Child Count"), "1", "{who}:\n{session}");
    assert_eq!(w("Local"), format!("{local}/500"));
    assert_eq!(w("Remote"), format!("{remote}/500"));
    assert_eq!(w("Status(Description)"), "READY (Negotiation done)");
    assert_eq!(
        w("Encryption/Keysize"),
        want.ike_encryption,
        "{who}:\n{session}"
    );
    assert_eq!(
        w("PRF/Hash/DH Group"),
        want.prf_hash_group,
        "{who}:\n{session}"
    );
    assert_eq!(w("Authentication(Sign/Verify)"), "PSK/PSK");
    assert_eq!(w("Local ID"), local.to_string());
    assert_eq!(w("Remote ID"), remote.to_string());
    assert_eq!(w("NAT-T"), "no");
    assert_eq!(
        w("ESP SPI IN/OUT"),
        format!("{sa_in} / {sa_out}"),
        "{who}:\n{session}"
    );
    assert_eq!(w("Encryption"), want.child_encryption, "{who}:\n{session}");
    assert_eq!(w("Keysize"), want.child_keysize, "{who}:\n{session}");
    assert_eq!(w("ESP HMAC"), want.child_hmac, "{who}:\n{session}");
    let (local_spi, remote_spi) = (w("Local SPI"), w("Remote SPI"));
    for spi in [&local_spi, &remote_spi] {
        assert!(
            spi.len() == 16
                && spi
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()),
            "{who}: IKE SPI {spi} is not 16 upper-case hex digits"
        );
        assert_ne!(spi, "0000000000000000", "{who}:\n{session}");
    }
    let role = w("Role");
    // A tunnel that is up has no "why not up" block.
    assert!(!session.contains("Reason"), "{who}:\n{session}");

    // show ikev2 summary: one READY SA in all, in the direction of its role.
    let summary = d.xrsec(&["show", "ikev2", "summary"]).unwrap();
    assert_eq!(
        value_of(&summary, "Total Sa (Active/Negotiation)"),
        "1 (1/0)",
        "{who}:\n{summary}"
    );
    let outgoing = value_of(&summary, "Total Outgoing Sa (Active/Negotiation)").to_string();
    let incoming = value_of(&summary, "Total Incoming Sa (Active/Negotiation)").to_string();
    let (mine, other) = if role == "Initiator" {
        (&outgoing, &incoming)
    } else {
        (&incoming, &outgoing)
    };
    assert_eq!(mine, "1 (1/0)", "{who} is {role}:\n{summary}");
    assert_eq!(other, "0 (0/0)", "{who} is {role}:\n{summary}");

    // --json: the same SAs, as typed data.
    let json = d
        .xrsec_json_status(&["show", "ikev2", "session", "detail"])
        .unwrap();
    let ike = only_ike_sa(&json);
    assert_eq!(format!("{:016X}", ike.local_spi), local_spi);
    assert_eq!(format!("{:016X}", ike.remote_spi), remote_spi);
    assert_eq!(ike.role, role);
    let child = &ike.children[0];
    assert_eq!(format!("0x{:08x}", child.spi_in), sa_in);
    assert_eq!(format!("0x{:08x}", child.spi_out), sa_out);
    let tunnel = json.tunnel("tunnel-ip1").unwrap();
    assert_eq!(tunnel.state, TunnelState::Up);
    let ipsec = tunnel.ipsec.as_ref().unwrap();
    assert_eq!(format!("0x{:08x}", ipsec.inbound.spi), sa_in);
    assert_eq!(format!("0x{:08x}", ipsec.outbound.spi), sa_out);
    assert_eq!(ipsec.inbound.encrypt_algorithm, want.esp_encrypt);
    assert_eq!(ipsec.outbound.auth_algorithm, want.esp_auth);

    SideView {
        sa_in,
        sa_out,
        ike_local_spi: local_spi,
        ike_remote_spi: remote_spi,
        role,
        outgoing,
        incoming,
    }
}

/// Waits until each router has exactly one IKE SA, READY with one Child SA,
/// its tunnel up, and the two agree on the SPIs. Both routers initiate, so a
/// second IKE SA is normal for a moment; one that stays is a failure.
fn wait_settled(da: &Xrsecd, db: &Xrsecd) -> (Status, Status) {
    let deadline = Instant::now() + BRING_UP;
    loop {
        let (sa, sb) = (da.status().unwrap(), db.status().unwrap());
        if settled(&sa, &sb) {
            return (sa, sb);
        }
        if Instant::now() > deadline {
            panic!(
                "the routers did not settle on one IKE SA each within {BRING_UP:?}\n\
                 A: {sa:#?}\nB: {sb:#?}\nA's log:\n{}\nB's log:\n{}",
                da.log(),
                db.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn settled(sa: &Status, sb: &Status) -> bool {
    let single = |s: &Status| {
        ike_sa_count(s) == 1
            && s.tunnels.iter().all(|t| t.state == TunnelState::Up)
            && s.sessions[0].ike_sas[0].state == "READY"
            && s.sessions[0].ike_sas[0].children.len() == 1
    };
    if !single(sa) || !single(sb) {
        return false;
    }
    let (ia, ib) = (only_ike_sa(sa), only_ike_sa(sb));
    let (ca, cb) = (&ia.children[0], &ib.children[0]);
    ia.local_spi == ib.remote_spi
        && ia.remote_spi == ib.local_spi
        && ca.spi_in == cb.spi_out
        && ca.spi_out == cb.spi_in
}

fn ike_sa_count(s: &Status) -> usize {
    s.sessions.iter().map(|x| x.ike_sas.len()).sum()
}

fn only_ike_sa(s: &Status) -> &IkeSa {
    assert_eq!(ike_sa_count(s), 1, "{s:#?}");
    &s.sessions[0].ike_sas[0]
}

fn is_spi32(s: &str) -> bool {
    s.len() == 10
        && s.starts_with("0x")
        && s[2..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}
