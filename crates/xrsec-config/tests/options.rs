//! Table-driven: every option parses in both forms (one-line and block),
//! and each wrong value gets its own precise message at the right column.

use xrsec_config::*;

/// A valid configuration written in one-line form, so that a test can add a
/// block for any object without it counting as a duplicate definition.
const BASE: &str = "\
ikev2 proposal P1 encryption aes-cbc-256
ikev2 proposal P1 integrity sha-256
ikev2 proposal P1 prf sha-256
ikev2 proposal P1 dh-group 20
ikev2 policy POL match address local 198.51.100.1
ikev2 policy POL proposal P1
keyring KR peer PEER address 198.51.100.2 255.255.255.255
keyring KR peer PEER pre-shared-key a-long-enough-secret-key
crypto ca trustpoint TP ca-certificate /etc/xrsec/ca.pem
crypto ca trustpoint TP certificate /etc/xrsec/me.pem
crypto ca trustpoint TP private-key /etc/xrsec/me.key
ikev2 profile IKE keyring KR
ikev2 profile IKE authentication local pre-shared
ipsec transform-set TS transform esp-256-aes esp-hmac-sha-256
ipsec profile IPS set ikev2-profile IKE
ipsec profile IPS set transform-set TS
ipsec profile IPS set pfs group20
interface tunnel-ip1 ipv4 address 192.0.2.1 255.255.255.252
interface tunnel-ip1 tunnel mode ipsec ipv4
interface tunnel-ip1 tunnel source 198.51.100.1
interface tunnel-ip1 tunnel destination 198.51.100.2
interface tunnel-ip1 tunnel protection ipsec profile IPS
";

fn base_lines() -> usize {
    BASE.lines().count()
}

fn parse_ok(text: &str) -> Config {
    let p = parse_str("t.conf", text);
    assert!(!p.has_errors(), "{text}\n{}", p.render_diagnostics());
    p.config.unwrap()
}

type Check = fn(&Config) -> bool;

/// (block header, sub-command, what the model must then hold)
const OPTIONS: &[(&str, &str, Check)] = &[
    (
        "ikev2 proposal P1",
        "encryption aes-gcm-256 aes-cbc-128",
        |c| {
            c.proposals.get("P1").unwrap().encryption
                == [
                    IkeEncryption::AesCbc256,
                    IkeEncryption::AesGcm256,
                    IkeEncryption::AesCbc128,
                ]
        },
    ),
    ("ikev2 proposal P1", "encryption aes-cbc-192", |c| {
        c.proposals
            .get("P1")
            .unwrap()
            .encryption
            .contains(&IkeEncryption::AesCbc192)
    }),
    ("ikev2 proposal P1", "integrity sha-384 sha-512", |c| {
        c.proposals.get("P1").unwrap().integrity
            == [
                IkeIntegrity::Sha256,
                IkeIntegrity::Sha384,
                IkeIntegrity::Sha512,
            ]
    }),
    ("ikev2 proposal P1", "prf sha-512", |c| {
        c.proposals.get("P1").unwrap().prf == [Prf::Sha256, Prf::Sha512]
    }),
    ("ikev2 proposal P1", "prf sha-384", |c| {
        c.proposals.get("P1").unwrap().prf.contains(&Prf::Sha384)
    }),
    ("ikev2 proposal P1", "dh-group 19 21 31", |c| {
        let g: Vec<u16> = c
            .proposals
            .get("P1")
            .unwrap()
            .dh_groups
            .iter()
            .map(|g| g.number())
            .collect();
        g == [20, 19, 21, 31]
    }),
    ("ikev2 proposal P2", "encryption aes-gcm-128", |c| {
        c.proposals.get("P2").unwrap().encryption == [IkeEncryption::AesGcm128]
    }),
    ("ikev2 policy POL", "match fvrf any", |c| {
        c.policies.get("POL").unwrap().match_fvrf_any
    }),
    (
        "ikev2 policy POL",
        "match address local 198.51.100.9",
        |c| c.policies.get("POL").unwrap().match_local.len() == 2,
    ),
    ("ikev2 policy POL", "proposal P1", |c| {
        c.policies.get("POL").unwrap().proposals.len() == 1
    }),
    ("keyring KR", "peer PEER", |c| {
        c.keyrings.get("KR").unwrap().peers.len() == 1
    }),
    (
        "keyring KR peer PEER",
        "address 198.51.100.0 255.255.255.0",
        |c| {
            let p = c.keyrings.get("KR").unwrap().peers.get("PEER").unwrap();
            p.address.unwrap().0.prefix_len == 24
        },
    ),
    (
        "keyring KR peer PEER",
        "pre-shared-key local another-long-secret-1",
        |c| {
            let p = c.keyrings.get("KR").unwrap().peers.get("PEER").unwrap();
            p.local_key().unwrap().expose() == "another-long-secret-1"
                && p.remote_key().unwrap().expose() == "a-long-enough-secret-key"
        },
    ),
    (
        "keyring KR peer PEER",
        "pre-shared-key remote another-long-secret-2",
        |c| {
            let p = c.keyrings.get("KR").unwrap().peers.get("PEER").unwrap();
            p.remote_key().unwrap().expose() == "another-long-secret-2"
        },
    ),
    ("ikev2 profile IKE", "lifetime 600", |c| {
        c.ikev2_profiles.get("IKE").unwrap().lifetime_secs == Some(600)
    }),
    (
        "ikev2 profile IKE",
        "authentication remote pre-shared",
        |c| c.ikev2_profiles.get("IKE").unwrap().auth_remote == Some(AuthMethod::PreShared),
    ),
    (
        "ikev2 profile IKE",
        "match identity remote address 198.51.100.2 255.255.255.255",
        |c| matches!(&c.ikev2_profiles.get("IKE").unwrap().match_identity_remote[..], [RemoteIdentity::Address(n)] if n.prefix_len == 32),
    ),
    (
        "ikev2 profile IKE",
        "match identity remote fqdn peer.example.com",
        |c| {
            c.ikev2_profiles.get("IKE").unwrap().match_identity_remote
                == [RemoteIdentity::Fqdn("peer.example.com".into())]
        },
    ),
    ("ikev2 profile IKE", "pki trustpoint TP", |c| {
        c.ikev2_profiles
            .get("IKE")
            .unwrap()
            .pki_trustpoint
            .as_ref()
            .unwrap()
            .name
            == "TP"
    }),
    ("ikev2 profile IKE", "dpd 10 3", |c| {
        c.ikev2_profiles.get("IKE").unwrap().dpd
            == Some(Dpd {
                interval_secs: 10,
                retries: 3,
            })
    }),
    (
        "crypto ca trustpoint TP",
        "ca-certificate /tmp/other-ca.pem",
        |c| c.trustpoints.get("TP").unwrap().ca_certificate.as_deref() == Some("/tmp/other-ca.pem"),
    ),
    ("ipsec transform-set TS", "mode tunnel", |c| {
        c.transform_sets.get("TS").unwrap().mode == Some(IpsecMode::Tunnel)
    }),
    ("ipsec transform-set TS", "transform esp-gcm-128", |c| {
        c.transform_sets.get("TS").unwrap().transforms[1]
            == EspTransform {
                cipher: EspCipher::AesGcm128,
                integrity: None,
            }
    }),
    (
        "ipsec transform-set TS",
        "transform esp-192-aes esp-hmac-sha-512",
        |c| c.transform_sets.get("TS").unwrap().transforms.len() == 2,
    ),
    (
        "ipsec transform-set TS",
        "transform esp-128-aes esp-hmac-sha-384",
        |c| c.transform_sets.get("TS").unwrap().transforms.len() == 2,
    ),
    ("ipsec transform-set TS", "transform esp-gcm-256", |c| {
        c.transform_sets.get("TS").unwrap().transforms.len() == 2
    }),
    ("ipsec profile IPS", "set pfs group31", |c| {
        c.ipsec_profiles.get("IPS").unwrap().pfs == Some(PfsGroup::Group31)
    }),
    ("ipsec profile IPS", "set pfs group21", |c| {
        c.ipsec_profiles.get("IPS").unwrap().pfs == Some(PfsGroup::Group21)
    }),
    (
        "ipsec profile IPS",
        "set security-association lifetime seconds 604800",
        |c| c.ipsec_profiles.get("IPS").unwrap().sa_lifetime_secs == Some(604_800),
    ),
    (
        "ipsec profile IPS",
        "set security-association lifetime kilobytes 4608000",
        |c| c.ipsec_profiles.get("IPS").unwrap().sa_lifetime_kilobytes == Some(4_608_000),
    ),
    (
        "ipsec profile IPS",
        "set security-association replay window-size 1024",
        |c| c.ipsec_profiles.get("IPS").unwrap().replay_window_size() == 1024,
    ),
    ("interface tunnel-ip1", "mtu 1400", |c| {
        c.interfaces.get("tunnel-ip1").unwrap().mtu == Some(1400)
    }),
    (
        "interface tunnel-ip1",
        "description to router 2 (backup)",
        |c| {
            c.interfaces
                .get("tunnel-ip1")
                .unwrap()
                .description
                .as_deref()
                == Some("to router 2 (backup)")
        },
    ),
    ("interface tunnel-ip1", "tunnel source eth0", |c| {
        c.interfaces
            .get("tunnel-ip1")
            .unwrap()
            .source
            .as_ref()
            .unwrap()
            .0
            == TunnelSource::Interface("eth0".into())
    }),
    ("interface tunnel-ip1", "shutdown", |c| {
        c.interfaces.get("tunnel-ip1").unwrap().shutdown && c.tunnels().is_empty()
    }),
    ("interface tunnel-ip2", "shutdown", |c| {
        c.interfaces.len() == 2
    }),
    (
        "router static address-family ipv4 unicast",
        "10.1.0.0/16 tunnel-ip1",
        |c| c.static_routes.len() == 1 && c.tunnels()[0].routes.len() == 1,
    ),
];

#[test]
fn every_option_parses_in_one_line_form() {
    for (header, sub, check) in OPTIONS {
        // A proposal created only here needs its other parts too.
        let extra = if header.ends_with("P2") {
            "ikev2 proposal P2 prf sha-256\nikev2 proposal P2 dh-group 19\n"
        } else {
            ""
        };
        let text = format!("{BASE}{extra}{header} {sub}\n");
        let cfg = parse_ok(&text);
        assert!(check(&cfg), "{header} {sub}");
    }
}

#[test]
fn every_option_parses_in_block_form() {
    for (header, sub, check) in OPTIONS {
        let extra = if header.ends_with("P2") {
            " prf sha-256\n dh-group 19\n"
        } else {
            ""
        };
        // `keyring KR peer PEER` and `router static address-family ...` are
        // nested blocks.
        let block = match *header {
            "keyring KR peer PEER" => {
                format!("keyring KR\n peer PEER\n  {sub}\n exit\n !\nexit\n!\n")
            }
            "router static address-family ipv4 unicast" => {
                format!("router static\n address-family ipv4 unicast\n  {sub}\n !\n!\n")
            }
            _ => format!("{header}\n {sub}\n{extra}exit\n!\n"),
        };
        let cfg = parse_ok(&format!("{BASE}{block}"));
        assert!(check(&cfg), "{block}");
    }
}

#[test]
fn every_option_survives_rendering_and_parsing_again() {
    for (header, sub, check) in OPTIONS {
        let extra = if header.ends_with("P2") {
            "ikev2 proposal P2 prf sha-256\nikev2 proposal P2 dh-group 19\n"
        } else {
            ""
        };
        let cfg = parse_ok(&format!("{BASE}{extra}{header} {sub}\n"));
        let text = cfg.to_running_config(Secrets::Shown);
        let again = parse_ok(&text);
        assert!(check(&again), "{text}");
        assert!(cfg.same_settings(&again), "{text}");
    }
}

/// (line added to BASE, column, message, a help text the diagnostic must
/// contain or "")
const ERRORS: &[(&str, usize, &str, &str)] = &[
    ("ikev2 proposal P1 prf sha-255", 23, "unknown PRF `sha-255` after `prf`; did you mean `sha-256`?", ""),
    ("ikev2 proposal P1 encryption des", 30, "unknown encryption algorithm `des` after `encryption`", "valid here: `aes-cbc-128`"),
    ("ikev2 proposal P1 dh-group 14", 28, "unknown DH group `14` after `dh-group`", "`19`, `20`, `21`, `31`"),
    ("ikev2 proposal P1 prff sha-256", 19, "unknown command `prff` in `ikev2 proposal`; did you mean `prf`?", ""),
    ("ikev2 proposal P1 prf", 19, "`prf` needs a PRF: `sha-1`, `sha-256`, `sha-384`, `sha-512`", ""),
    ("ikev2 proposal prf sha-256", 16, "`ikev2 proposal` needs a proposal name before `prf`", ""),
    ("ikev2 proposal exit", 16, "`exit` is a reserved keyword and cannot be a proposal name", ""),
    ("ikev2 policy POL match fvr any", 24, "unknown keyword `fvr` after `match`; did you mean `fvrf`?", ""),
    ("ikev2 policy POL match address local 198.51.100.300", 38, "expected a local IPv4 address, found `198.51.100.300`", "for example `match address local 198.51.100.1`"),
    ("ikev2 policy POL match fvrf all", 29, "unknown keyword `all` after `fvrf`", "valid here: `any`"),
    ("keyring KR peer PEER address 198.51.100.2 255.0.255.0", 43, "`255.0.255.0` is not a valid netmask: its one bits are not contiguous", "ones then zeros"),
    ("keyring KR peer PEER address 198.51.100.2 /24", 43, "expected a dotted netmask, found `/24`", "dotted form"),
    ("keyring KR peer PEER address 198.51.100.2", 22, "`address 198.51.100.2` needs a mask after the address", ""),
    ("keyring KR peer PEER pre-shared-key <redacted>", 37, "this key was redacted when the configuration was printed", "put the real key back"),
    ("keyring KR peer PEER pre-shared-key two words", 41, "unexpected extra argument after the key of `pre-shared-key`", "cannot contain spaces"),
    ("keyring KR peer PEER pre-shared-key", 22, "`pre-shared-key` needs a key", ""),
    ("ikev2 profile IKE lifetime 5", 28, "5 is out of range: `lifetime` accepts 10..=86400 seconds", ""),
    ("ikev2 profile IKE lifetime 86401", 28, "86401 is out of range: `lifetime` accepts 10..=86400 seconds", ""),
    ("ikev2 profile IKE lifetime 10m", 28, "`lifetime` takes a lifetime in seconds, not `10m`", "for example `lifetime 86400`"),
    ("ikev2 profile IKE lifetime 600 600", 32, "unexpected extra argument `600`: `lifetime` takes nothing more here", ""),
    ("ikev2 profile IKE authentication local psk", 40, "unknown authentication method `psk` after `local`", "`pre-shared`, `rsa-signature`"),
    ("ikev2 profile IKE authentication both pre-shared", 34, "unknown keyword `both` after `authentication`", "`local`, `remote`"),
    ("ikev2 profile IKE dpd 0 3", 23, "0 is out of range: `dpd` accepts 1..=3600 seconds", ""),
    ("ikev2 profile IKE dpd 10 101", 26, "101 is out of range: `dpd` accepts 1..=100 retries", ""),
    ("ikev2 profile IKE match identity remote address", 19, "`match identity remote address` needs an address and mask", ""),
    ("ipsec transform-set TS mode transport", 29, "`mode transport` is not supported: xrsec carries tunnel-ipN traffic in tunnel mode only", "mode tunnel"),
    ("ipsec transform-set TS transform esp-gcm-256 esp-hmac-sha-256", 46, "`esp-gcm-256` is an AEAD cipher: it authenticates itself and takes no `esp-hmac-sha-256`", "write `transform esp-gcm-256`"),
    ("ipsec transform-set TS transform esp-256-aes", 24, "`transform esp-256-aes` needs an integrity algorithm (CBC does not authenticate)", "esp-hmac-sha-256"),
    ("ipsec transform-set TS transform esp-256-aes esp-sha-256", 46, "unknown ESP integrity algorithm `esp-sha-256` after `esp-256-aes`; did you mean `esp-hmac-sha-256`?", ""),
    ("ipsec profile IPS set ikev2 profile IKE", 23, "`ikev2 profile` is one keyword, written `ikev2-profile`", ""),
    ("ipsec profile IPS set pfs 19", 27, "unknown PFS group `19` after `pfs`", "`group19`"),
    ("ipsec profile IPS set security-association replay window-size 100", 63, "replay window-size 100 is not a multiple of 64", "use 64 or 128"),
    ("ipsec profile IPS set security-association replay window-size 8192", 63, "8192 is out of range: `set security-association replay window-size` accepts 64..=4096 packets", ""),
    ("ipsec profile IPS set security-association lifetime seconds 604801", 61, "604801 is out of range: `set security-association lifetime seconds` accepts 10..=604800 seconds", ""),
    ("ipsec profile IPS set security-association lifetime kilobytes 100", 63, "100 is out of range: `set security-association lifetime kilobytes` accepts 2560..=4294967295 kilobytes", ""),
    ("interface tunnel-ip1 tunnel source MgmtEth0/RP0/CPU0/0", 36, "`MgmtEth0/RP0/CPU0/0` is an IOS-XR interface name; xrsec runs on Linux and needs the Linux name", "ip link"),
    ("interface tunnel-ip1 tunnel source a-very-long-interface-name", 36, "`a-very-long-interface-name` is not a valid Linux interface name (1-15 characters, no `/`, `:` or spaces)", ""),
    ("interface tunnel-ip1 tunnel destination 198.51.100", 41, "expected an IPv4 address, found `198.51.100`", "for example `tunnel destination 198.51.100.2`"),
    ("interface tunnel-ip1 tunnel mode gre ipv4", 34, "`tunnel mode gre ipv4` is not supported: xrsec tunnels are `tunnel mode ipsec ipv4`", ""),
    ("interface tunnel-ip1 tunnel mode ipsec ipv6", 40, "`tunnel mode ipsec ipv6` is not supported: xrsec carries IPv4 only", ""),
    ("ikev2 fragmentation mtu 575", 25, "575 is out of range: `ikev2 fragmentation mtu` accepts 576..=9216 bytes", "1280 (the default) fits every IPv6 path"),
    ("ikev2 fragmentation mtu 9217", 25, "9217 is out of range: `ikev2 fragmentation mtu` accepts 576..=9216 bytes", "counts the IP and UDP headers"),
    ("ikev2 fragmentation mtu 1280b", 25, "`ikev2 fragmentation mtu` takes a fragment size in bytes, not `1280b`", "for example `ikev2 fragmentation mtu 1280`"),
    ("ikev2 fragmentation mtu", 1, "`ikev2 fragmentation mtu` needs a fragment size in bytes", "for example `ikev2 fragmentation mtu 1280`"),
    ("ikev2 fragmentation mtu 1280 1400", 30, "unexpected extra argument `1400`: `ikev2 fragmentation mtu` takes nothing more here", ""),
    ("ikev2 fragmentation size 1280", 21, "unknown keyword `size` after `fragmentation`", "valid here: `mtu`"),
    ("ikev2 fragmentaton mtu 1280", 7, "unknown keyword `fragmentaton` after `ikev2`; did you mean `fragmentation`?", ""),
    ("no ikev2 fragmentation mtu 1280", 24, "unexpected extra argument `mtu`: `no ikev2 fragmentation` turns fragmentation off whatever its size", "write `no ikev2 fragmentation` alone"),
    ("no ikev2 proposal P1", 10, "unknown keyword `proposal` after `ikev2`", "valid here: `fragmentation`"),
    ("interface tunnel-ip1 mtu 9217", 26, "9217 is out of range: `mtu` accepts 576..=9216 bytes", ""),
    ("interface tunnel-ip1 mtu 1400b", 26, "`mtu` takes an MTU in bytes, not `1400b`", "for example `mtu 1400`"),
    ("interface GigabitEthernet0/0/0/0 shutdown", 11, "xrsec configures only `interface tunnel-ipN`, not `GigabitEthernet0/0/0/0`", "belong to Linux"),
    ("interface tunnel-ip1 ipv4 address 192.0.2.1 0.0.0.0", 35, "an interface address needs a mask of at least /1", ""),
    ("router static address-family ipv4 unicast 10.1.0.1/16 tunnel-ip1", 43, "prefix `10.1.0.1/16` has host bits set", "did you mean `10.1.0.0/16`?"),
    ("router static address-family ipv4 unicast 10.1.0.0/16 192.0.2.2", 55, "only interface routes are supported here: `PREFIX/LEN tunnel-ipN`", ""),
    ("router static address-family ipv4 unicast 10.1.0.0/16 tunnel-ip9", 55, "undefined interface `tunnel-ip9`", "did you mean `tunnel-ip1`?"),
    ("ikev2 profile IKE keyring KRR", 27, "undefined keyring `KRR`", "did you mean `KR`?"),
    ("ikev2 profile IKE pki trustpoint NOPE", 34, "undefined crypto ca trustpoint `NOPE`", ""),
    ("ikev2 policy POL proposal P9", 27, "undefined ikev2 proposal `P9`", "did you mean `P1`?"),
    ("ipsec profile IPS set transform-set TSS", 37, "undefined ipsec transform-set `TSS`", "did you mean `TS`?"),
    ("ipsec profile IPS set ikev2-profile IKE2", 37, "undefined ikev2 profile `IKE2`", "did you mean `IKE`?"),
    ("interface tunnel-ip1 tunnel protection ipsec profile IPX", 54, "undefined ipsec profile `IPX`", "did you mean `IPS`?"),
    ("interface tunnel-ip1 tunnel destination 203.0.113.9", 41, "no peer of keyring `KR` covers tunnel destination 203.0.113.9: this tunnel can never authenticate", "198.51.100.2/32"),
    ("interface tunnel-ip1 tunnel source 198.51.100.7", 36, "no ikev2 policy matches local address 198.51.100.7: this tunnel has no proposals to offer", "match address local 198.51.100.7"),
    ("frobnicate now", 1, "unknown command `frobnicate`", "top-level commands are"),
    ("ikev2 proposl P1 prf sha-256", 7, "unknown keyword `proposl` after `ikev2`; did you mean `proposal`?", ""),
];

#[test]
fn each_wrong_value_gets_a_precise_error_at_its_column() {
    let line = base_lines() + 1;
    for (bad, col, message, help) in ERRORS {
        let text = format!("{BASE}{bad}\n");
        let p = parse_str("t.conf", &text);
        let d = p
            .diagnostics
            .iter()
            .find(|d| d.is_error() && d.line == line)
            .unwrap_or_else(|| panic!("no error for `{bad}`:\n{}", p.render_diagnostics()));
        assert_eq!(
            (d.col, d.message.as_str()),
            (*col, *message),
            "`{bad}`\n{d}"
        );
        assert!(d.to_string().contains(help), "`{bad}`: no `{help}` in\n{d}");
        assert!(p.config.is_none());
    }
}

#[test]
fn errors_in_one_line_form_and_block_form_agree() {
    // The same mistake, written inside a block, gets the same message.
    let p = parse_str(
        "t.conf",
        &format!("{BASE}ikev2 profile IKE\n lifetime 5\nexit\n"),
    );
    let d = p.diagnostics.iter().find(|d| d.is_error()).unwrap();
    assert_eq!((d.line, d.col), (base_lines() + 2, 11));
    assert_eq!(
        d.message,
        "5 is out of range: `lifetime` accepts 10..=86400 seconds"
    );
}

#[test]
fn every_line_of_a_file_is_checked_after_a_failure() {
    let text = format!("{BASE}ikev2 proposal P1 prf sha-255\ninterface tunnel-ip1 mtu 1\nfoo\n");
    let p = parse_str("t.conf", &text);
    let lines: Vec<usize> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.line)
        .collect();
    let n = base_lines();
    assert_eq!(lines, [n + 1, n + 2, n + 3]);
}

#[test]
fn weak_choices_are_warnings_not_errors() {
    let text = format!(
        "{BASE}ikev2 proposal P1 integrity sha-1\nkeyring KR peer PEER pre-shared-key short\nipsec transform-set TS transform esp-128-aes esp-hmac-sha-1\nipsec profile NOPFS set ikev2-profile IKE\nipsec profile NOPFS set transform-set TS\nikev2 profile IKE lifetime 60\nipsec profile IPS set security-association lifetime seconds 10\n"
    );
    let p = parse_str("t.conf", &text);
    assert!(!p.has_errors(), "{}", p.render_diagnostics());
    let msgs: Vec<&str> = p.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.contains(&"ikev2 proposal `P1` offers SHA-1 (integrity)"),
        "{msgs:?}"
    );
    assert!(msgs.contains(&"the pre-shared key of peer `PEER` is shorter than 16 characters"));
    assert!(msgs.contains(&"ipsec transform-set `TS` offers esp-hmac-sha-1"));
    assert!(msgs.contains(&"ipsec profile `NOPFS` has no PFS"));
    assert!(msgs.contains(&"IKE SA lifetime of 60 s is below IOS-XR's minimum of 120 s"));
    assert!(msgs.contains(&"IPsec SA lifetime of 10 s is below IOS-XR's minimum of 120 s"));
    assert!(!p.render_diagnostics().contains("short\n"));
    assert!(p.config.is_some());
}

#[test]
fn duplicate_values_are_warned_about_and_ignored() {
    let p = parse_str(
        "t.conf",
        &format!("{BASE}ikev2 proposal P1 prf sha-256 sha-384\n"),
    );
    assert!(!p.has_errors());
    let d = &p.diagnostics[0];
    assert_eq!(
        d.message,
        "`sha-256` is already in the `prf` list; the duplicate is ignored"
    );
    assert_eq!(
        p.config.unwrap().proposals.get("P1").unwrap().prf,
        [Prf::Sha256, Prf::Sha384]
    );
}

#[test]
fn a_second_block_for_the_same_name_is_a_duplicate() {
    let text = format!("{BASE}ipsec transform-set T2\n transform esp-gcm-256\nexit\n!\nipsec transform-set T2\n transform esp-gcm-128\nexit\n");
    let p = parse_str("t.conf", &text);
    let d = p.diagnostics.iter().find(|d| d.is_error()).unwrap();
    let n = base_lines();
    assert_eq!((d.line, d.col), (n + 5, 21));
    assert_eq!(
        d.message,
        "duplicate `ipsec transform-set T2`: it is already defined"
    );
    assert!(d.to_string().contains(&format!("t.conf:{}:21", n + 1)));
}

#[test]
fn required_pieces_are_reported_at_the_object() {
    let text = "ikev2 proposal P\n encryption aes-cbc-128\nexit\n\
                ikev2 profile X\n authentication local rsa-signature\nexit\n\
                ipsec profile I\n set pfs group19\nexit\n\
                interface tunnel-ip3\n tunnel mode ipsec ipv4\nexit\n";
    let p = parse_str("t.conf", text);
    let msgs: Vec<String> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}:{} {}", d.line, d.col, d.message))
        .collect();
    for expected in [
        "1:16 ikev2 proposal `P` has no `prf`",
        "1:16 ikev2 proposal `P` has no `dh-group`",
        "1:16 ikev2 proposal `P` uses CBC encryption (`aes-cbc-128`) but has no `integrity`",
        "5:2 ikev2 profile `X` authenticates with rsa-signature but has no `pki trustpoint`",
        "7:15 ipsec profile `I` has no `set ikev2-profile`",
        "7:15 ipsec profile `I` has no `set transform-set`",
        "10:11 interface tunnel-ip3 has no `ipv4 address`",
        "10:11 interface tunnel-ip3 has no `tunnel source`",
        "10:11 interface tunnel-ip3 has no `tunnel destination`",
        "10:11 interface tunnel-ip3 has no `tunnel protection`",
    ] {
        assert!(
            msgs.iter().any(|m| m == expected),
            "missing `{expected}` in {msgs:#?}"
        );
    }
}

#[test]
fn gcm_only_proposals_take_no_integrity_and_mixed_ones_need_it() {
    let gcm = "ikev2 proposal G encryption aes-gcm-256\nikev2 proposal G prf sha-256\nikev2 proposal G dh-group 19\n";
    assert!(!parse_str("t", gcm).has_errors());
    let p = parse_str("t", &format!("{gcm}ikev2 proposal G integrity sha-256\n"));
    assert_eq!(
        p.diagnostics[0].message,
        "ikev2 proposal `G` has only AES-GCM encryption, which takes no `integrity`"
    );
    let p = parse_str(
        "t",
        &format!("{gcm}ikev2 proposal G encryption aes-cbc-256\n"),
    );
    assert!(p.diagnostics[0]
        .message
        .contains("uses CBC encryption (`aes-cbc-256`) but has no `integrity`"));
    let p = parse_str(
        "t",
        &format!(
            "{gcm}ikev2 proposal G encryption aes-cbc-256\nikev2 proposal G integrity sha-256\n"
        ),
    );
    assert!(!p.has_errors());
}

#[test]
fn prompts_and_session_commands_do_not_change_the_model() {
    let plain = parse_ok(BASE);
    let prompted: String = std::iter::once("Router# configure terminal\n".to_string())
        .chain(
            BASE.lines()
                .map(|l| format!("RP/0/RP0/CPU0:ios(config)# {l}\n")),
        )
        .chain([
            "Router (config) # commit\n".to_string(),
            "Router(config)#end\n".into(),
        ])
        .collect();
    assert!(plain.same_settings(&parse_ok(&prompted)));
}

#[test]
fn a_top_level_command_closes_open_blocks() {
    let text = format!("{BASE}keyring K2\n peer Q\n  address 203.0.113.0 255.255.255.0\n  pre-shared-key a-long-enough-secret-key\ninterface tunnel-ip1\n mtu 1400\n");
    let cfg = parse_ok(&text);
    assert_eq!(cfg.keyrings.get("K2").unwrap().peers.len(), 1);
    assert_eq!(cfg.interfaces.get("tunnel-ip1").unwrap().mtu, Some(1400));
}

#[test]
fn a_bare_bang_closes_a_block_as_in_ios_xr_running_config() {
    let text = format!("{BASE}ikev2 profile IKE\n lifetime 600\n!\nkeyring K2\n peer A\n  address 203.0.113.0 255.255.255.0\n  pre-shared-key a-long-enough-secret-key\n !\n peer B\n  address 203.0.114.0 255.255.255.0\n  pre-shared-key a-long-enough-secret-key\n !\n!\n");
    let cfg = parse_ok(&text);
    assert_eq!(cfg.keyrings.get("K2").unwrap().peers.len(), 2);
    assert_eq!(
        cfg.ikev2_profiles
            .get("IKE")
            .unwrap()
            .keyring
            .as_ref()
            .unwrap()
            .name,
        "KR"
    );
}

#[test]
fn rendering_redacts_keys_and_the_parser_refuses_them_back() {
    let cfg = parse_ok(BASE);
    let text = cfg.to_running_config(Secrets::Redacted);
    assert!(text.contains("  pre-shared-key <redacted>\n"));
    assert!(!text.contains("a-long-enough-secret-key"));
    let p = parse_str("r.conf", &text);
    assert_eq!(p.error_count(), 1);
    assert_eq!(
        p.diagnostics[0].message,
        "this key was redacted when the configuration was printed"
    );
    assert!(!format!("{cfg:?}").contains("a-long-enough-secret-key"));
}

#[test]
fn the_resolved_view_follows_every_reference() {
    let cfg = parse_ok(BASE);
    let t = &cfg.tunnels()[0];
    assert_eq!(t.interface.name, "tunnel-ip1");
    assert_eq!(t.ipsec_profile.name, "IPS");
    assert_eq!(t.transform_set.name, "TS");
    assert_eq!(t.ikev2_profile.name, "IKE");
    assert_eq!(t.keyring.unwrap().name, "KR");
    assert_eq!(t.policy.unwrap().name, "POL");
    assert_eq!(t.proposals[0].name, "P1");
    assert_eq!(t.peer().unwrap().name, "PEER");
    assert_eq!(
        t.to_string(),
        "tunnel-ip1 192.0.2.1/30 -> 198.51.100.2 (source 198.51.100.1): IKE aes-cbc-256/sha-256/prf sha-256/group 20, PSK; ESP esp-256-aes/esp-hmac-sha-256, PFS group 20, SA lifetime 3600 s"
    );
}

#[test]
fn a_tunnel_without_tunnel_mode_ipsec_is_an_error_since_ios_xr_would_make_it_gre() {
    let text = BASE.replace("interface tunnel-ip1 tunnel mode ipsec ipv4\n", "");
    let p = parse_str("t.conf", &text);
    let errors: Vec<String> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(errors, ["interface tunnel-ip1 has no `tunnel mode`"]);
}

#[test]
fn a_destination_outside_the_remote_identity_match_is_warned_about() {
    let text = format!(
        "{BASE}ikev2 profile IKE match identity remote address 203.0.113.0 255.255.255.0\n"
    );
    let p = parse_str("t.conf", &text);
    assert!(!p.has_errors(), "{}", p.render_diagnostics());
    let w = p
        .diagnostics
        .iter()
        .find(|d| {
            d.message
                .contains("outside `match identity remote address`")
        })
        .unwrap_or_else(|| panic!("no identity warning:\n{}", p.render_diagnostics()));
    assert_eq!((w.line, w.col), (base_lines() - 1, 41));
    assert_eq!(
        w.message,
        "tunnel destination 198.51.100.2 is outside `match identity remote address` of ikev2 profile `IKE` (203.0.113.0/24)"
    );

    // Covered by the range, or identified by FQDN: nothing to say.
    for extra in [
        "ikev2 profile IKE match identity remote address 198.51.100.0 255.255.255.0\n",
        "ikev2 profile IKE match identity remote fqdn peer.example.net\nikev2 profile IKE match identity remote address 203.0.113.0 255.255.255.0\n",
    ] {
        let p = parse_str("t.conf", &format!("{BASE}{extra}"));
        assert!(
            !p.diagnostics.iter().any(|d| d.message.contains("match identity")),
            "{}",
            p.render_diagnostics()
        );
    }
}

#[test]
fn no_shutdown_brings_an_interface_back_up_in_both_forms() {
    let down = parse_ok(&format!("{BASE}interface tunnel-ip1 shutdown\n"));
    assert!(down.interfaces.get("tunnel-ip1").unwrap().shutdown);
    let up = parse_ok(&format!(
        "{BASE}interface tunnel-ip1 shutdown\ninterface tunnel-ip1\n no shutdown\nexit\n"
    ));
    assert!(!up.interfaces.get("tunnel-ip1").unwrap().shutdown);
    let p = parse_str("t.conf", &format!("{BASE}interface tunnel-ip1 no mtu\n"));
    let d = p.diagnostics.iter().find(|d| d.is_error()).unwrap();
    assert_eq!((d.line, d.col), (base_lines() + 1, 25), "{d}");
}

#[test]
fn a_file_that_is_not_utf8_is_refused_with_the_position_of_the_first_bad_byte() {
    let dir = std::env::temp_dir().join(format!("xrsec-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("latin1.conf");
    std::fs::write(&file, b"keyring K\n peer caf\xe9\n").unwrap();
    let err = load_file(&file).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(
        err.to_string().contains("latin1.conf:2:10: not UTF-8 text"),
        "{err}"
    );
}

/// (global command added to BASE, what the model must then hold)
const GLOBAL_OPTIONS: &[(&str, Check)] = &[
    ("ikev2 fragmentation", |c| {
        let f = c.ikev2_fragmentation;
        f.enabled() && f.mtu() == 1280
    }),
    ("ikev2 fragmentation mtu 576", |c| {
        let f = c.ikev2_fragmentation;
        f.enabled() && f.mtu() == 576
    }),
    ("IKEV2 Fragmentation MTU 9216", |c| {
        c.ikev2_fragmentation.mtu == Some(9216)
    }),
    ("no ikev2 fragmentation", |c| {
        !c.ikev2_fragmentation.enabled()
    }),
];

#[test]
fn ike_fragmentation_is_on_at_1280_bytes_unless_configured() {
    let f = parse_ok(BASE).ikev2_fragmentation;
    assert!(f.enabled());
    assert_eq!((f.mtu, f.mtu()), (None, 1280));
    assert_eq!(
        parse_ok(BASE)
            .to_running_config(Secrets::Shown)
            .lines()
            .next(),
        Some("ikev2 proposal P1")
    );
}

#[test]
fn every_global_option_parses_before_and_after_the_blocks_and_survives_rendering() {
    for (line, check) in GLOBAL_OPTIONS {
        for text in [format!("{line}\n{BASE}"), format!("{BASE}{line}\n")] {
            let cfg = parse_ok(&text);
            assert!(check(&cfg), "{text}");
            let rendered = cfg.to_running_config(Secrets::Shown);
            let again = parse_ok(&rendered);
            assert!(check(&again), "{rendered}");
            assert!(cfg.same_settings(&again), "{rendered}");
        }
    }
}

#[test]
fn no_ikev2_fragmentation_is_global_even_inside_an_interface_block() {
    let text = format!(
        "{BASE}interface tunnel-ip1\n shutdown\nno ikev2 fragmentation\n no shutdown\nexit\n"
    );
    let p = parse_str("t.conf", &text);
    // `no ikev2 ...` closes the interface block as any top-level command
    // does: the indented `no shutdown` after it is then no interface's.
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.is_error())
        .unwrap_or_else(|| panic!("{}", p.render_diagnostics()));
    assert_eq!((d.line, d.col), (base_lines() + 4, 5), "{d}");
    assert_eq!(
        d.message,
        "`no shutdown` outside an interface block: the only global `no` command is `no ikev2 fragmentation`"
    );
    assert!(
        d.to_string()
            .contains("write it inside `interface tunnel-ipN`"),
        "{d}"
    );
    let p = parse_str(
        "t.conf",
        &format!("{BASE}interface tunnel-ip1\n no shutdown\nno ikev2 fragmentation\n"),
    );
    assert!(!p.has_errors(), "{}", p.render_diagnostics());
    let cfg2 = p.config.unwrap();
    assert!(!cfg2.ikev2_fragmentation.enabled());
    assert!(!cfg2.interfaces.get("tunnel-ip1").unwrap().shutdown);
}

#[test]
fn a_later_fragmentation_command_replaces_an_earlier_one_with_a_warning() {
    let text = format!("ikev2 fragmentation mtu 1400\n{BASE}no ikev2 fragmentation\n");
    let p = parse_str("t.conf", &text);
    assert!(!p.has_errors(), "{}", p.render_diagnostics());
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.line == base_lines() + 2)
        .unwrap_or_else(|| panic!("{}", p.render_diagnostics()));
    assert_eq!(
        (d.col, d.message.as_str()),
        (
            1,
            "`no ikev2 fragmentation` replaces the earlier `ikev2 fragmentation mtu 1400`"
        )
    );
    let shown = d.to_string();
    assert!(shown.contains("t.conf:1:1"), "{shown}");
    assert!(shown.contains("the last one wins"), "{shown}");
    let cfg = p.config.unwrap();
    assert!(!cfg.ikev2_fragmentation.enabled());
    // And the other way round: the size comes back with fragmentation.
    let cfg = parse_str(
        "t.conf",
        &format!("no ikev2 fragmentation\n{BASE}ikev2 fragmentation mtu 1400\n"),
    )
    .config
    .unwrap();
    assert!(cfg.ikev2_fragmentation.enabled());
    assert_eq!(cfg.ikev2_fragmentation.mtu(), 1400);
    let p = parse_str(
        "t.conf",
        &format!("no ikev2 fragmentation\n{BASE}no ikev2 fragmentation\n"),
    );
    assert_eq!(
        p.diagnostics[0].message,
        "`no ikev2 fragmentation` is written a second time"
    );
}
