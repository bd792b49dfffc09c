//! `xrsec config check` and `xrsec config show` as a user runs them: on the
//! lab's configurations, on the seed's texts (with their mistakes), and on
//! files that cannot be read. Exit codes are asserted because scripts rely on
//! them (0 valid, 1 invalid, 2 could not run).

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn xrsec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xrsec"))
        .args(args)
        .current_dir(repo(""))
        .output()
        .expect("run xrsec")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

#[test]
fn check_accepts_the_lab_routers_and_prints_one_line_per_tunnel() {
    let out = xrsec(&[
        "config",
        "check",
        "config/router1.conf",
        "config/router2.conf",
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("config/router1.conf: valid, 1 tunnel"),
        "{stdout}"
    );
    assert!(
        stdout.contains("config/router2.conf: valid, 1 tunnel"),
        "{stdout}"
    );
    let tunnel_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  tunnel-ip1"))
        .collect();
    assert_eq!(tunnel_lines.len(), 2, "{stdout}");
    assert!(tunnel_lines[0].contains("10.99.0.2"), "{}", tunnel_lines[0]);
    assert!(tunnel_lines[1].contains("10.99.0.1"), "{}", tunnel_lines[1]);
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(!stdout.contains("xrsec-lab-only"), "a key leaked: {stdout}");
    assert!(
        stdout.contains(
            "config/router1.conf tunnel-ip1 <-> config/router2.conf tunnel-ip1: peers agree: \
             IKE aes-cbc-256/sha-256/prf sha-256/group 20, ESP esp-256-aes/esp-hmac-sha-256"
        ),
        "{stdout}"
    );
}

#[test]
fn check_of_two_valid_files_that_disagree_as_peers_exits_one() {
    let dir = std::env::temp_dir().join(format!("xrsec-cli-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let r2 = std::fs::read_to_string(repo("config/router2.conf"))
        .unwrap()
        .replace("xrsec-lab-only-3f9c1e7a", "a-different-long-key-99");
    let r2_path = dir.join("router2.conf");
    std::fs::write(&r2_path, r2).unwrap();
    let out = xrsec(&[
        "config",
        "check",
        "config/router1.conf",
        r2_path.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(": valid, 1 tunnel"),
        "each file is valid alone: {stdout}"
    );
    assert!(stdout.contains("peers DISAGREE"), "{stdout}");
    assert!(stderr.contains("error: the pre-shared key"), "{stderr}");
    assert!(!stderr.contains("a-different-long-key") && !stderr.contains("xrsec-lab-only"));
}

#[test]
fn check_reports_every_seed_file_and_exits_one() {
    let files = [
        "tests/data/seed/router1-running.txt",
        "tests/data/seed/router2-running.txt",
        "tests/data/seed/router1-oneline.txt",
    ];
    let mut args = vec!["config", "check"];
    args.extend(files);
    let out = xrsec(&args);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    for file in files {
        assert!(stdout.contains(&format!("{file}: invalid")), "{stdout}");
    }
    assert!(
        stderr.contains("tests/data/seed/router1-running.txt:22:") && stderr.contains("key_mgmt"),
        "the undefined keyring is named at its line:\n{stderr}"
    );
    assert!(stderr.contains("5.22.16.52"), "{stderr}");
    assert!(stderr.contains("did you mean `fvrf`?"), "{stderr}");
    assert!(!stderr.contains("cisco123") && !stdout.contains("cisco123"));
}

#[test]
fn check_goes_on_after_an_unreadable_file_and_exits_two() {
    let out = xrsec(&[
        "config",
        "check",
        "no/such/file.conf",
        "config/router1.conf",
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("no/such/file.conf: cannot read"),
        "{stderr}"
    );
    assert!(stdout.contains("config/router1.conf: valid"), "{stdout}");
}

#[test]
fn show_prints_a_running_config_that_checks_clean_and_hides_the_key() {
    let out = xrsec(&["config", "show", "config/router1.conf"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("pre-shared-key <redacted>"), "{shown}");
    assert!(!shown.contains("xrsec-lab-only"), "{shown}");

    let revealed = xrsec(&["config", "show", "--show-secrets", "config/router1.conf"]);
    assert_eq!(revealed.status.code(), Some(0));
    let revealed = text(&revealed.stdout);
    assert!(revealed.contains("pre-shared-key xrsec-lab-only-3f9c1e7a"));

    let dir = std::env::temp_dir().join(format!("xrsec-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("canonical.conf");
    std::fs::write(&file, &revealed).unwrap();
    let again = xrsec(&["config", "show", "--show-secrets", file.to_str().unwrap()]);
    assert_eq!(
        text(&again.stdout),
        revealed,
        "canonical text is a fixed point"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn show_refuses_an_invalid_file_with_its_diagnostics() {
    let out = xrsec(&["config", "show", "tests/data/seed/router2-running.txt"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(stderr.contains("not shown"), "{stderr}");
    assert!(out.stdout.is_empty());
}
