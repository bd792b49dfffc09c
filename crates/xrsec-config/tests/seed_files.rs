//! The seed's configuration texts, verbatim: each must fail with precise,
//! well-placed diagnostics, and none may show the pre-shared key.

use xrsec_config::{parse_str, Diagnostic, Parsed, Severity};

fn seed(name: &str) -> Parsed {
    let path = format!(
        "{}/../../tests/data/seed/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let parsed = parse_str(name, &text);
    // Shown with `cargo test -- --nocapture`: the diagnostics as a user sees them.
    println!("==== {name}\n{}", parsed.render_diagnostics());
    parsed
}

/// The diagnostic at `line:col` with `severity`.
fn at(p: &Parsed, severity: Severity, line: usize, col: usize) -> &Diagnostic {
    p.diagnostics
        .iter()
        .find(|d| d.severity == severity && d.line == line && d.col == col)
        .unwrap_or_else(|| {
            panic!(
                "no {severity} at {line}:{col}; got:\n{}",
                p.render_diagnostics()
            )
        })
}

fn assert_no_key_anywhere(p: &Parsed) {
    let all = p.render_diagnostics();
    assert!(!all.contains("cisco123"), "key leaked:\n{all}");
    assert!(
        !format!("{p:?}").contains("cisco123"),
        "key leaked in Debug"
    );
}

#[test]
fn router1_running_config_names_the_undefined_keyring_with_a_suggestion() {
    let p = seed("router1-running.txt");
    assert!(p.has_errors());
    assert!(p.config.is_none());
    let d = at(&p, Severity::Error, 22, 9);
    assert_eq!(d.message, "undefined keyring `key_mgmt`");
    assert_eq!(d.file, "router1-running.txt");
    let text = d.to_string();
    assert!(text.starts_with("router1-running.txt:22:9: error: undefined keyring `key_mgmt`\n"));
    assert!(
        text.contains(" 22 | keyring key_mgmt\n    |         ^~~~~~~~\n"),
        "{text}"
    );
    assert!(text.contains("help: did you mean `key_mgmt_P1`?"), "{text}");
    assert!(text.contains("router1-running.txt:12:9"), "{text}");
    assert_no_key_anywhere(&p);
}

#[test]
fn router1_running_config_explains_the_ios_xr_interface_name() {
    let p = seed("router1-running.txt");
    let d = at(&p, Severity::Error, 43, 15);
    assert_eq!(
        d.message,
        "`MgmtEth0/RP0/CPU0/0` is an IOS-XR interface name; xrsec runs on Linux and needs the Linux name"
    );
    assert!(d.to_string().contains("ip link"));
    assert_eq!(p.error_count(), 2, "{}", p.render_diagnostics());
}

#[test]
fn seed_keys_are_flagged_short_without_being_shown() {
    let p = seed("router1-running.txt");
    let d = at(&p, Severity::Warning, 14, 18);
    assert_eq!(
        d.message,
        "the pre-shared key of peer `Acadia2` is shorter than 16 characters"
    );
    assert!(d.to_string().contains("pre-shared-key *****\n"));
}

#[test]
fn router2_running_config_names_the_uncovered_tunnel_destination() {
    let p = seed("router2-running.txt");
    assert!(p.has_errors());
    let d = at(&p, Severity::Error, 44, 20);
    assert_eq!(
        d.message,
        "no peer of keyring `key_mgmt_P2` covers tunnel destination 5.22.16.52: this tunnel can never authenticate"
    );
    let text = d.to_string();
    assert!(
        text.contains("`Acadial` 198.52.100.0/24 (198.52.100.21 255.255.255.0)"),
        "{text}"
    );
    assert!(
        text.contains(" 44 | tunnel destination 5.22.16.52\n    |                    ^~~~~~~~~~\n")
    );
    assert_no_key_anywhere(&p);
}

#[test]
fn router2_running_config_warns_that_its_peer_range_contains_itself() {
    let p = seed("router2-running.txt");
    let d = at(&p, Severity::Warning, 16, 11);
    assert!(d
        .message
        .starts_with("keyring peer `Acadial` covers 198.52.100.0/24"));
    assert!(d.message.ends_with("which is this router's own address"));
}

#[test]
fn router1_one_line_commands_suggest_fvrf_for_fvr() {
    let p = seed("router1-oneline.txt");
    assert!(p.has_errors());
    let d = at(&p, Severity::Error, 9, 53);
    assert_eq!(
        d.message,
        "unknown keyword `fvr` after `match`; did you mean `fvrf`?"
    );
    assert!(d.to_string().contains(
        " 9 | Router (config)# ikev2 policy ikev2_policy_P1 match fvr any\n   |                                                     ^~~\n"
    ));
    assert_no_key_anywhere(&p);
}

#[test]
fn router1_one_line_commands_report_the_command_split_over_two_lines() {
    let p = seed("router1-oneline.txt");
    let first = at(&p, Severity::Error, 20, 51);
    assert_eq!(
        first.message,
        "`match identity remote address` needs an address and mask"
    );
    let orphan = at(&p, Severity::Error, 21, 1);
    assert_eq!(
        orphan.message,
        "this line looks like the rest of the previous command, split over two lines; join them"
    );
    let text = orphan.to_string();
    assert!(text.contains("router1-oneline.txt:20:18"), "{text}");
    assert!(text.contains(
        "write it on one line: `ikev2 profile ikev2_prof_mgmt_P1 match identity remote address 198.52.100.21 255.255.255.0`"
    ));
}

#[test]
fn router1_one_line_commands_report_the_missing_ipsec_profile_name() {
    let p = seed("router1-oneline.txt");
    for line in 28..=31 {
        let d = at(&p, Severity::Error, line, 33);
        assert_eq!(
            d.message,
            "`ipsec profile` needs a profile name before `set`"
        );
    }
    let d = at(&p, Severity::Error, 38, 72);
    assert_eq!(d.message, "undefined ipsec profile `ipsec_prof_mgmt_P1`");
    assert_eq!(p.error_count(), 9, "{}", p.render_diagnostics());
}

#[test]
fn router2_one_line_commands_fail_like_router1() {
    let p = seed("router2-oneline.txt");
    assert_eq!(
        at(&p, Severity::Error, 9, 54).message,
        "unknown keyword `fvr` after `match`; did you mean `fvrf`?"
    );
    assert_eq!(
        at(&p, Severity::Error, 21, 1).message,
        "this line looks like the rest of the previous command, split over two lines; join them"
    );
    assert_eq!(
        at(&p, Severity::Error, 28, 32).message,
        "`ipsec profile` needs a profile name before `set`"
    );
    assert_no_key_anywhere(&p);
}

#[test]
fn seed_diagnostics_come_in_source_order() {
    for name in [
        "router1-running.txt",
        "router2-running.txt",
        "router1-oneline.txt",
        "router2-oneline.txt",
    ] {
        let p = seed(name);
        let pos: Vec<(usize, usize)> = p.diagnostics.iter().map(|d| (d.line, d.col)).collect();
        let mut sorted = pos.clone();
        sorted.sort();
        assert_eq!(pos, sorted, "{name}");
        assert_no_key_anywhere(&p);
        assert!(p.render_diagnostics().ends_with("\n\n"));
    }
}

#[test]
fn the_seed_fixed_by_hand_parses_and_summarises() {
    let path = format!(
        "{}/../../tests/data/seed/router1-running.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("keyring key_mgmt\n", "keyring key_mgmt_P1\n")
        .replace("MgmtEth0/RP0/CPU0/0", "198.51.100.5")
        .replace("5.22.16.25", "198.52.100.21")
        .replace("cisco123", "a-much-longer-shared-secret");
    let p = parse_str("fixed.txt", &text);
    assert!(!p.has_errors(), "{}", p.render_diagnostics());
    let cfg = p.config.unwrap();
    assert_eq!(
        cfg.summary_lines(),
        ["tunnel-ip1 192.0.2.1/24 -> 198.52.100.21 (source 198.51.100.5): IKE aes-cbc-256/sha-256/prf sha-256/group 20, PSK; ESP esp-256-aes/esp-hmac-sha-256, PFS group 19, SA lifetime 600 s"]
    );
}
