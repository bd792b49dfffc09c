//! Two routers' configurations checked against each other: the lab's pair
//! agrees, and each way real pairs go wrong is named, with both sides.

use xrsec_config::*;

fn lab(file: &str) -> String {
    let path = format!("{}/../../config/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn config(text: &str) -> Config {
    let p = parse_str("t.conf", text);
    assert!(!p.has_errors(), "{}", p.render_diagnostics());
    p.config.unwrap()
}

fn compare(left: &str, right: &str) -> Vec<TunnelPairing> {
    compare_peers("r1", &config(left), "r2", &config(right))
}

fn errors(pairings: &[TunnelPairing]) -> Vec<String> {
    pairings
        .iter()
        .flat_map(|p| &p.findings)
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.message.clone())
        .collect()
}

#[test]
fn the_lab_routers_pair_up_and_agree_on_the_seed_suite() {
    let pairings = compare(&lab("router1.conf"), &lab("router2.conf"));
    assert_eq!(pairings.len(), 1);
    let p = &pairings[0];
    assert_eq!(
        (p.left.as_str(), p.right.as_str()),
        ("tunnel-ip1", "tunnel-ip1")
    );
    assert!(p.findings.is_empty(), "{:?}", p.findings);
    assert_eq!(
        p.agreed.as_deref(),
        Some("IKE aes-cbc-256/sha-256/prf sha-256/group 20, ESP esp-256-aes/esp-hmac-sha-256")
    );
}

#[test]
fn different_pre_shared_keys_are_an_error_that_never_shows_either_key() {
    let r2 = lab("router2.conf").replace("xrsec-lab-only-3f9c1e7a", "another-long-key-0123456");
    let pairings = compare(&lab("router1.conf"), &r2);
    let errors = errors(&pairings);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[0],
        "the pre-shared key r1 signs with (keyring `key_mgmt_P1` peer `router2`) differs from the one r2 expects (keyring `key_mgmt_P2` peer `router1`): AUTHENTICATION_FAILED"
    );
    let all = format!("{pairings:?}");
    assert!(!all.contains("xrsec-lab-only") && !all.contains("another-long-key"));
}

#[test]
fn asymmetric_local_and_remote_keys_are_matched_crosswise() {
    let key = "  pre-shared-key xrsec-lab-only-3f9c1e7a\n";
    let r1 = lab("router1.conf").replace(
        key,
        "  pre-shared-key local one-direction-key-111\n  pre-shared-key remote other-direction-key-22\n",
    );
    let r2 = lab("router2.conf").replace(
        key,
        "  pre-shared-key local other-direction-key-22\n  pre-shared-key remote one-direction-key-111\n",
    );
    assert_eq!(errors(&compare(&r1, &r2)), Vec::<String>::new());
}

#[test]
fn disjoint_proposals_name_both_sides_offers() {
    let r2 = lab("router2.conf").replace(" encryption aes-cbc-256\n", " encryption aes-cbc-128\n");
    let errors = errors(&compare(&lab("router1.conf"), &r2));
    assert_eq!(
        errors,
        ["no IKE proposal in common: r1 offers `ikev2_proposal_mgmt_P1` (aes-cbc-256; sha-256; prf sha-256; group 20); r2 offers `ikev2_proposal_mgmt_P2` (aes-cbc-128; sha-256; prf sha-256; group 20)"]
    );
}

#[test]
fn a_common_suite_is_found_across_preference_lists() {
    let r1 = lab("router1.conf").replace(" dh-group 20\n", " dh-group 21 20\n");
    let r2 = lab("router2.conf")
        .replace(" dh-group 20\n", " dh-group 19 20\n")
        .replace(
            " transform esp-256-aes esp-hmac-sha-256\n",
            " transform esp-gcm-256\n transform esp-256-aes esp-hmac-sha-256\n",
        );
    let pairings = compare(&r1, &r2);
    assert!(
        pairings[0].findings.is_empty(),
        "{:?}",
        pairings[0].findings
    );
    assert_eq!(
        pairings[0].agreed.as_deref(),
        Some("IKE aes-cbc-256/sha-256/prf sha-256/group 20, ESP esp-256-aes/esp-hmac-sha-256")
    );
}

#[test]
fn no_common_esp_transform_and_a_pfs_mismatch_are_errors() {
    let r2 = lab("router2.conf")
        .replace(
            " transform esp-256-aes esp-hmac-sha-256\n",
            " transform esp-gcm-128\n",
        )
        .replace(" set pfs group19\n", "");
    let errors = errors(&compare(&lab("router1.conf"), &r2));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0], "no ESP transform in common: r1 has esp-256-aes/esp-hmac-sha-256 (transform-set `ts_mgmt_P1`); r2 has esp-gcm-128 (transform-set `ts_mgmt_P2`)");
    assert_eq!(errors[1], "PFS differs: r1 sets group19, r2 sets no PFS; the tunnel comes up but its first Child SA rekey fails");
}

#[test]
fn both_ends_with_one_tunnel_address_is_an_error() {
    let r2 = lab("router2.conf").replace("192.0.2.2 255", "192.0.2.1 255");
    assert_eq!(
        errors(&compare(&lab("router1.conf"), &r2)),
        ["both ends of the tunnel have the address 192.0.2.1: r1 tunnel-ip1 and r2 tunnel-ip1"]
    );
}

#[test]
fn tunnels_that_do_not_point_at_each_other_do_not_pair() {
    let r2 = lab("router2.conf")
        .replace("destination 10.99.0.1", "destination 10.99.0.7")
        .replace(
            "address 10.99.0.1 255.255.255.255",
            "address 10.99.0.7 255.255.255.255",
        );
    assert!(compare(&lab("router1.conf"), &r2).is_empty());
}
