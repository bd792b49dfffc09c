//! `xrsec lab` and `xrsec bench` as a user runs them (root; the binaries of
//! this build, xrsecd next to xrsec: `cargo build --bins` first, as
//! `scripts/test` does). Checked: the lab comes up, pings through the tunnel
//! and prints both routers' show commands; `--keep` ends cleanly on SIGTERM;
//! the bench prints its table and ratios (never a speed: the machine's load
//! decides those); a missing daemon binary or a broken configuration is one
//! clear message and a non-zero exit. After every run, nothing of the lab is
//! left: no namespace, no temporary directory carrying the run's pid.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use xrsec_lab::{DIR_PREFIX, KEEP_ENV, NAMESPACE_PREFIX};

/// One lab at a time: they share the machine's two cores with the bench.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned));
    euid.as_deref() == Some("0")
}

/// Skips (true) when not root, saying so.
fn needs_root() -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipped: needs root (network namespaces, TUN)");
    true
}

fn xrsec() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xrsec"))
}

/// The xrsec of this build, with xrsecd beside it.
fn xrsec_with_daemon() -> Command {
    let xrsec = xrsec();
    let xrsecd = xrsec.with_file_name("xrsecd");
    assert!(
        xrsecd.is_file(),
        "{} is missing: build the binaries first (cargo build --bins)",
        xrsecd.display()
    );
    command(&xrsec)
}

fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    // A kept directory would look like a leftover.
    cmd.env_remove(KEEP_ENV);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Namespaces and temporary directories named after the process `pid`.
fn leftovers_of(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    let namespaces = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| text(&o.stdout))
        .unwrap_or_default();
    let ns_prefix = format!("{NAMESPACE_PREFIX}{pid}-");
    found.extend(
        namespaces
            .lines()
            .filter(|l| l.starts_with(&ns_prefix))
            .map(|l| format!("namespace {l}")),
    );
    let dir_prefix = format!("{DIR_PREFIX}{pid}-");
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&dir_prefix) {
                found.push(format!("directory {name}"));
            }
        }
    }
    found
}

/// Runs `cmd` to the end and returns its output and pid.
fn run(mut cmd: Command) -> (Output, u32) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xrsec");
    let pid = child.id();
    let output = child.wait_with_output().expect("wait for xrsec");
    (output, pid)
}

#[test]
fn lab_comes_up_pings_through_the_tunnel_and_removes_everything() {
    if needs_root() {
        return;
    }
    let _serial = serial();
    let mut cmd = xrsec_with_daemon();
    cmd.arg("lab");
    let (output, pid) = run(cmd);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", describe(&output));
    for router in ["router1", "router2"] {
        let header = format!("{router}#show ikev2 session detail");
        let at = stdout
            .find(&header)
            .unwrap_or_else(|| panic!("no `{header}`:\n{stdout}"));
        let section = &stdout[at..];
        let end = section.find("#show ipsec sa").unwrap_or(section.len());
        assert!(
            section[..end].contains("UP-ACTIVE"),
            "{router}'s session is not UP-ACTIVE:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("{router}#show ipsec sa interface tunnel-ip1")),
            "{stdout}"
        );
    }
    let pings: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ping ")).collect();
    // Both tunnel addresses, and both inner hosts through the static routes.
    assert_eq!(pings.len(), 4, "{stdout}");
    for line in pings {
        assert!(line.ends_with(", 0% packet loss"), "{line}");
    }
    assert!(stdout.contains("10.1.0.1 -> 10.2.0.1"), "{stdout}");
    assert_eq!(leftovers_of(pid), Vec::<String>::new());
}

#[test]
fn lab_keep_stays_up_until_sigterm_then_removes_everything() {
    if needs_root() {
        return;
    }
    let _serial = serial();
    let mut child = xrsec_with_daemon()
        .args(["lab", "--keep"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xrsec lab --keep");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut hints = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("until Ctrl-C") => break,
            Ok(line) => hints.push(line),
            Err(e) => {
                let _ = child.kill();
                let output = child.wait_with_output().expect("wait");
                panic!("no `until Ctrl-C` line ({e}):\n{}", describe(&output));
            }
        }
    }
    // What the hints say works while the lab is up.
    let control = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a control socket hint");
        if let Some(rest) = line.split("--control ").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    let show = command(&xrsec())
        .args(["--control", &control, "show", "ikev2", "session"])
        .output()
        .expect("xrsec show");
    assert!(show.status.success(), "{}", describe(&show));
    assert!(text(&show.stdout).contains("UP-ACTIVE"));

    let killed = Command::new("kill")
        .args(["-s", "TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait for xrsec lab");
    let rest = reader.join().unwrap_or_default();
    assert!(status.success(), "exit {status}:\n{rest}");
    assert!(rest.contains("lab removed"), "{rest}");
    assert_eq!(leftovers_of(pid), Vec::<String>::new());
}

#[test]
fn bench_prints_a_table_with_a_ratio_to_plain_forwarding() {
    if needs_root() {
        return;
    }
    let _serial = serial();
    let mut cmd = xrsec_with_daemon();
    cmd.args([
        "bench",
        "--seconds",
        "1",
        "--compare",
        "plain",
        "--suite",
        "esp-gcm-128",
    ]);
    let (output, pid) = run(cmd);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    let row = |label: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` row:\n{stdout}"))
            .to_string()
    };
    let plain = row("plain forwarding");
    let tunnel = row("xrsec esp-gcm-128  ");
    let udp = row("xrsec esp-gcm-128 in UDP 4500");
    assert!(plain.trim_end().ends_with("1.00"), "{plain}");
    assert!(!tunnel.contains("failed"), "{tunnel}");
    assert!(!udp.contains("failed"), "{udp}");
    assert!(
        stdout.contains("esp-gcm-128: xrsec / plain = "),
        "no ratio line:\n{stdout}"
    );
    assert!(
        stdout.contains("esp-gcm-128: xrsec in UDP / plain = "),
        "no ratio line for ESP in UDP:\n{stdout}"
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains("[2/3] xrsec esp-gcm-128: "), "{stderr}");
    assert!(
        stderr.contains("[3/3] xrsec esp-gcm-128 in UDP 4500: "),
        "{stderr}"
    );
    assert_eq!(leftovers_of(pid), Vec::<String>::new());
}

#[test]
fn lab_without_xrsecd_says_how_to_build_it_and_leaves_nothing() {
    if needs_root() {
        return;
    }
    // A copy of xrsec alone in a directory: no daemon beside it.
    let dir = std::env::temp_dir().join(format!("xrsec-cli-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let lonely = dir.join("xrsec");
    std::fs::copy(xrsec(), &lonely).expect("copy xrsec");
    let mut cmd = command(&lonely);
    cmd.arg("lab");
    let (output, pid) = run(cmd);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("cannot find the `xrsecd` binary") && stderr.contains("cargo build"),
        "{stderr}"
    );
    assert_eq!(leftovers_of(pid), Vec::<String>::new());
}

#[test]
fn lab_with_a_broken_configuration_points_at_the_error_and_leaves_nothing() {
    if needs_root() {
        return;
    }
    let repo_config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let good = std::fs::read_to_string(repo_config.join("router1.conf")).expect("router1.conf");
    let broken = good.replace(" dh-group 20\n", " dh-group 20\n dh-grup 19\n");
    assert_ne!(good, broken);
    let path = std::env::temp_dir().join(format!("xrsec-cli-lab-{}-r1.conf", std::process::id()));
    std::fs::write(&path, broken).expect("write the broken configuration");
    let mut cmd = xrsec_with_daemon();
    cmd.arg("lab").arg("--config-a").arg(&path);
    let (output, pid) = run(cmd);
    let _ = std::fs::remove_file(&path);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("dh-grup"), "{stderr}");
    assert!(stderr.contains("error"), "{stderr}");
    assert!(
        !text(&output.stdout).contains("starting xrsecd"),
        "{}",
        describe(&output)
    );
    assert_eq!(leftovers_of(pid), Vec::<String>::new());
}

/// The unprivileged user the root check is tried as when the tests run as
/// root (nobody/nogroup on Debian).
const UNPRIVILEGED: u32 = 65534;

/// A copy of this build's xrsec in a fresh directory any user can reach
/// (the build directory may be under /root); removed on drop.
struct PublicCopy {
    dir: PathBuf,
    binary: PathBuf,
}

impl PublicCopy {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("xrsec-cli-lab-unprivileged-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create the directory for the copy");
        let copy = Self {
            binary: dir.join("xrsec"),
            dir,
        };
        std::fs::set_permissions(&copy.dir, std::fs::Permissions::from_mode(0o755))
            .expect("make the directory reachable");
        std::fs::copy(xrsec(), &copy.binary).expect("copy xrsec");
        std::fs::set_permissions(&copy.binary, std::fs::Permissions::from_mode(0o755))
            .expect("make the copy executable");
        copy
    }
}

impl Drop for PublicCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn lab_and_bench_need_root_and_say_so() {
    // As root (as in CI), the check is tried as an unprivileged user, with
    // a copy of xrsec that user can run; it needs nothing beside it, since
    // the root check comes first.
    let copy = is_root().then(PublicCopy::new);
    for sub in ["lab", "bench"] {
        let mut cmd = match &copy {
            Some(copy) => {
                use std::os::unix::process::CommandExt;
                let mut cmd = command(&copy.binary);
                cmd.uid(UNPRIVILEGED)
                    .gid(UNPRIVILEGED)
                    .current_dir(&copy.dir);
                cmd
            }
            None => command(&xrsec()),
        };
        let output = cmd.arg(sub).output().expect("run xrsec");
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        assert!(
            text(&output.stderr).contains("needs root"),
            "{}",
            describe(&output)
        );
    }
}
