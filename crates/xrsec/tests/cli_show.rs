//! `xrsec show ...` and `xrsec clear ...` as a user runs them, against a fake
//! xrsecd: a thread listening on a Unix socket in the temp directory that
//! answers canned responses and records the requests it received. Checked: the
//! text each command prints, that `--json` parses back to the daemon's data,
//! the request each command sends, and the exit codes scripts rely on (1 when
//! the daemon refuses, 3 when there is no daemon).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use xrsec_control::show::{ikev2_session, ikev2_summary, ipsec_sa};
use xrsec_control::{
    decode_request, encode_line, ChildSaStatus, DaemonInfo, IkeSa, IkeSession, IpsecSa, Request,
    Response, SaHalf, Status, Summary, TunnelState, TunnelStatus,
};

/// A socket path of its own for each fake daemon (tests run in parallel).
fn socket_path(test: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "xrsec-cli-show-{}-{n}-{test}.sock",
        std::process::id()
    ))
}

/// The fake daemon: answers each connection with the next response, and sends
/// what it was asked (decoded as the real daemon would) down the channel.
struct FakeDaemon {
    path: PathBuf,
    received: Receiver<Result<Request, String>>,
}

impl FakeDaemon {
    fn start(test: &str, responses: Vec<Response>) -> Self {
        let path = socket_path(test);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind the fake control socket");
        let (tx, received) = mpsc::channel();
        thread::spawn(move || {
            for response in responses {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let _ = tx.send(decode_request(&line));
                let mut stream = reader.into_inner();
                let _ = stream.write_all(encode_line(&response).as_bytes());
            }
        });
        FakeDaemon { path, received }
    }

    /// The next request the daemon got; fails the test if none came.
    fn request(&self) -> Request {
        self.received
            .recv_timeout(Duration::from_secs(10))
            .expect("the client sent a request")
            .expect("the request line decodes")
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn xrsec(control: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xrsec"))
        .arg("--control")
        .arg(control)
        .args(args)
        .env_remove("XRSEC_CONTROL")
        .output()
        .expect("run xrsec")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// Exit code and stdout, with stderr in the message when the code is wrong.
fn expect_exit(out: &Output, code: i32) -> String {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    stdout
}

fn half(spi: u32, drops: &[(&str, u64)]) -> SaHalf {
    SaHalf {
        spi,
        protocol: "ESP".into(),
        encrypt_algorithm: "ESP_256_AES".into(),
        auth_algorithm: "HMAC_SHA_256".into(),
        rekey_after_secs: 3_037,
        expires_after_secs: 3_337,
        packets: 1_200,
        bytes: 96_000,
        drops: drops
            .iter()
            .map(|(r, n)| (r.to_string(), *n))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// `tunnel-ip1` up with one session; `tunnel-ip2` down, retrying.
fn status() -> Status {
    let local: SocketAddr = "10.99.0.1:500".parse().unwrap();
    let remote: SocketAddr = "10.99.0.2:500".parse().unwrap();
    Status {
        daemon: DaemonInfo {
            version: "0.1.0".into(),
            pid: 4242,
            config_path: "/etc/xrsec/xrsec.conf".into(),
            uptime_secs: 600,
            now_unix: 1_633_448_755,
        },
        tunnels: vec![
            TunnelStatus {
                name: "tunnel-ip1".into(),
                ifindex: 12,
                address: Some((Ipv4Addr::new(192, 0, 2, 1), 24)),
                mtu: 1400,
                local: Some(Ipv4Addr::new(10, 99, 0, 1)),
                remote: Some(Ipv4Addr::new(10, 99, 0, 2)),
                state: TunnelState::Up,
                last_error: None,
                last_error_secs_ago: None,
                retry_in_secs: None,
                failures: 0,
                ipsec: Some(IpsecSa {
                    interface: "tunnel-ip1".into(),
                    interface_handle: 12,
                    sa_id: 804,
                    mode: "Tunnel".into(),
                    udp_encap: false,
                    local,
                    remote,
                    inbound: half(0x2c37_8849, &[("replay", 3)]),
                    outbound: half(0xa9ed_8828, &[]),
                }),
            },
            TunnelStatus {
                name: "tunnel-ip2".into(),
                ifindex: 13,
                address: None,
                mtu: 1400,
                local: Some(Ipv4Addr::new(10, 99, 0, 1)),
                remote: Some(Ipv4Addr::new(10, 99, 0, 6)),
                state: TunnelState::Down,
                last_error: Some(
                    "AUTHENTICATION_FAILED from 10.99.0.6: the pre-shared keys differ".into(),
                ),
                last_error_secs_ago: Some(4),
                retry_in_secs: Some(26),
                failures: 1,
                ipsec: None,
            },
        ],
        sessions: vec![IkeSession {
            session_id: 1,
            status: "UP-ACTIVE".into(),
            tunnel: "tunnel-ip1".into(),
            ike_sas: vec![IkeSa {
                id: 1,
                local,
                remote,
                state: "READY".into(),
                state_description: "READY (Negotiation done)".into(),
                role: "Initiator".into(),
                encryption: "AES-CBC".into(),
                keysize: 256,
                prf: "SHA256".into(),
                hash: "SHA256".into(),
                dh_group: 20,
                auth_sign: "PSK".into(),
                auth_verify: "PSK".into(),
                lifetime_secs: 86_400,
                active_secs: 300,
                local_spi: 0x3b95_c7fc_c6a6_9d0a,
                remote_spi: 0xf44c_4dbc_ffee_67f0,
                local_id: "10.99.0.1".into(),
                remote_id: "10.99.0.2".into(),
                nat_t: false,
                children: vec![ChildSaStatus {
                    local_selectors: vec!["0.0.0.0/0 - 255.255.255.255/65535".into()],
                    remote_selectors: vec!["0.0.0.0/0 - 255.255.255.255/65535".into()],
                    spi_in: 0x2c37_8849,
                    spi_out: 0xa9ed_8828,
                    encryption: "AES-CBC".into(),
                    keysize: 256,
                    esp_hmac: "SHA256".into(),
                }],
            }],
        }],
    }
}

#[test]
fn show_ikev2_session_prints_the_sessions_and_the_down_tunnels_reason() {
    let daemon = FakeDaemon::start("session", vec![Response::Status(status())]);
    let out = xrsec(&daemon.path, &["show", "ikev2", "session"]);
    let stdout = expect_exit(&out, 0);
    assert_eq!(daemon.request(), Request::Status);
    assert_eq!(stdout, ikev2_session(&status(), false));
    assert!(
        stdout
            .lines()
            .any(|l| l == "ESP SPI IN/OUT      : 0x2c378849 / 0xa9ed8828"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Tunnel tunnel-ip2 (10.99.0.1 -> 10.99.0.6): DOWN\n\
             Reason   : AUTHENTICATION_FAILED from 10.99.0.6: the pre-shared keys differ (4 s ago)\n\
             Retry in : 26 s (attempt 2)\n"
        ),
        "{stdout}"
    );
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

#[test]
fn show_ikev2_session_detail_adds_the_algorithms_and_spis() {
    let daemon = FakeDaemon::start("detail", vec![Response::Status(status())]);
    let out = xrsec(&daemon.path, &["show", "ikev2", "session", "detail"]);
    let stdout = expect_exit(&out, 0);
    assert_eq!(stdout, ikev2_session(&status(), true));
    for line in [
        "Encryption/Keysize          : AES-CBC/256",
        "Local SPI                   : 3B95C7FCC6A69D0A",
        "Remote SPI                  : F44C4DBCFFEE67F0",
        "NAT-T                       : no",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in\n{stdout}");
    }
}

#[test]
fn show_ikev2_summary_prints_the_counts() {
    let daemon = FakeDaemon::start("summary", vec![Response::Status(status())]);
    let out = xrsec(&daemon.path, &["show", "ikev2", "summary"]);
    let stdout = expect_exit(&out, 0);
    assert_eq!(stdout, ikev2_summary(&status()));
    assert!(
        stdout.contains("\nTotal Outgoing Sa (Active/Negotiation) : 1 (1/0)\n"),
        "{stdout}"
    );
}

#[test]
fn show_ipsec_sa_prints_the_table_and_one_interface_in_detail() {
    let daemon = FakeDaemon::start(
        "ipsec",
        vec![Response::Status(status()), Response::Status(status())],
    );
    let out = xrsec(&daemon.path, &["show", "ipsec", "sa"]);
    assert_eq!(expect_exit(&out, 0), ipsec_sa(&status(), None).unwrap());
    assert!(
        text(&out.stdout).contains("\ntunnel-ip1  804    0x2c378849   0xa9ed8828\n"),
        "{}",
        text(&out.stdout)
    );

    let out = xrsec(
        &daemon.path,
        &["show", "ipsec", "sa", "interface", "tunnel-ip1"],
    );
    let stdout = expect_exit(&out, 0);
    assert_eq!(stdout, ipsec_sa(&status(), Some("tunnel-ip1")).unwrap());
    for line in [
        "Interface handle      : 0xc",
        "Encapsulation         : ESP, remote 10.99.0.2",
        "Drops                 : replay 3",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in\n{stdout}");
    }
}

#[test]
fn show_ipsec_sa_of_an_unknown_interface_lists_the_real_ones_and_exits_one() {
    let daemon = FakeDaemon::start("unknown", vec![Response::Status(status())]);
    let out = xrsec(
        &daemon.path,
        &["show", "ipsec", "sa", "interface", "tunnel-ip9"],
    );
    assert_eq!(expect_exit(&out, 1), "");
    assert_eq!(
        text(&out.stderr),
        "xrsec: no interface tunnel-ip9; the tunnel interfaces are tunnel-ip1, tunnel-ip2\n"
    );
}

#[test]
fn show_running_config_prints_the_daemons_text() {
    let config = "interface tunnel-ip1\n ipv4 address 192.0.2.1 255.255.255.0\n!\n";
    let daemon = FakeDaemon::start(
        "running",
        vec![Response::RunningConfig {
            text: config.into(),
        }],
    );
    let out = xrsec(&daemon.path, &["show", "running-config"]);
    assert_eq!(expect_exit(&out, 0), config);
    assert_eq!(daemon.request(), Request::RunningConfig);
}

#[test]
fn json_prints_the_daemons_data_for_each_show() {
    let daemon = FakeDaemon::start(
        "json",
        vec![
            Response::Status(status()),
            Response::Status(status()),
            Response::Status(status()),
            Response::Status(status()),
            Response::RunningConfig {
                text: "ikev2 proposal P1\n!\n".into(),
            },
        ],
    );
    let json = |args: &[&str]| -> serde_json::Value {
        let out = xrsec(&daemon.path, args);
        serde_json::from_str(&expect_exit(&out, 0)).expect("stdout is JSON")
    };

    let session = json(&["--json", "show", "ikev2", "session"]);
    assert_eq!(serde_json::from_value::<Status>(session).unwrap(), status());
    // --json is accepted after the command words too.
    let table = json(&["show", "ipsec", "sa", "--json"]);
    assert_eq!(serde_json::from_value::<Status>(table).unwrap(), status());

    let one = json(&["--json", "show", "ipsec", "sa", "interface", "tunnel-ip2"]);
    assert_eq!(
        serde_json::from_value::<TunnelStatus>(one).unwrap(),
        status().tunnels[1]
    );

    let summary = json(&["--json", "show", "ikev2", "summary"]);
    assert_eq!(
        serde_json::from_value::<Summary>(summary).unwrap(),
        status().summary()
    );

    let running = json(&["--json", "show", "running-config"]);
    assert_eq!(running["text"], "ikev2 proposal P1\n!\n");
}

#[test]
fn clear_sends_the_right_request_and_prints_the_daemons_message() {
    let cleared = |message: &str| Response::Cleared {
        count: 1,
        message: message.into(),
    };
    let daemon = FakeDaemon::start(
        "clear",
        vec![
            cleared("deleted IKE SA 1 (tunnel-ip1); renegotiating"),
            cleared("deleted 2 IKE SAs; renegotiating"),
            cleared("deleted the Child SAs of tunnel-ip1; renegotiating"),
            cleared("deleted the Child SAs of 2 tunnels; renegotiating"),
            cleared("deleted IKE SA 1 (tunnel-ip1); renegotiating"),
        ],
    );
    let cases: [(&[&str], Request, &str); 4] = [
        (
            &["clear", "ikev2", "sa", "1"],
            Request::ClearIkeSa { id: Some(1) },
            "deleted IKE SA 1 (tunnel-ip1); renegotiating\n",
        ),
        (
            &["clear", "ikev2", "sa"],
            Request::ClearIkeSa { id: None },
            "deleted 2 IKE SAs; renegotiating\n",
        ),
        (
            &["clear", "ipsec", "sa", "interface", "tunnel-ip1"],
            Request::ClearIpsecSa {
                interface: Some("tunnel-ip1".into()),
            },
            "deleted the Child SAs of tunnel-ip1; renegotiating\n",
        ),
        (
            &["clear", "ipsec", "sa"],
            Request::ClearIpsecSa { interface: None },
            "deleted the Child SAs of 2 tunnels; renegotiating\n",
        ),
    ];
    for (args, request, printed) in cases {
        let out = xrsec(&daemon.path, args);
        assert_eq!(expect_exit(&out, 0), printed, "{args:?}");
        assert_eq!(daemon.request(), request, "{args:?}");
    }
    let out = xrsec(&daemon.path, &["--json", "clear", "ikev2", "sa", "1"]);
    let value: serde_json::Value = serde_json::from_str(&expect_exit(&out, 0)).unwrap();
    assert_eq!(value["count"], 1);
    assert_eq!(
        value["message"],
        "deleted IKE SA 1 (tunnel-ip1); renegotiating"
    );
}

#[test]
fn clear_ikev2_sa_refuses_an_id_that_is_not_a_number_before_asking() {
    let path = socket_path("clear-usage");
    let out = xrsec(&path, &["clear", "ikev2", "sa", "one"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("'one'"), "{}", text(&out.stderr));
}

#[test]
fn an_error_answer_is_printed_and_exits_one() {
    let daemon = FakeDaemon::start(
        "error",
        vec![Response::Error {
            message: "no IKE SA with ID 9".into(),
        }],
    );
    let out = xrsec(&daemon.path, &["clear", "ikev2", "sa", "9"]);
    assert_eq!(expect_exit(&out, 1), "");
    assert_eq!(text(&out.stderr), "xrsecd: no IKE SA with ID 9\n");
    assert_eq!(daemon.request(), Request::ClearIkeSa { id: Some(9) });
}

#[test]
fn without_a_daemon_every_command_says_so_in_one_line_and_exits_three() {
    let path = socket_path("absent");
    for args in [
        &["show", "ikev2", "session"][..],
        &["show", "ipsec", "sa"],
        &["--json", "show", "ikev2", "summary"],
        &["show", "running-config"],
        &["clear", "ipsec", "sa"],
    ] {
        let out = xrsec(&path, args);
        assert_eq!(expect_exit(&out, 3), "", "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("xrsecd is not running: no control socket at ")
                && stderr.contains(&path.display().to_string()),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_socket_left_behind_by_a_dead_daemon_counts_as_no_daemon() {
    let path = socket_path("stale");
    let _ = std::fs::remove_file(&path);
    drop(UnixListener::bind(&path).unwrap());
    let out = xrsec(&path, &["show", "ikev2", "session"]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(expect_exit(&out, 3), "");
    assert!(
        text(&out.stderr).starts_with("xrsecd is not running"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_control_path_comes_from_xrsec_control_when_not_given() {
    let daemon = FakeDaemon::start("env", vec![Response::Status(status())]);
    let out = Command::new(env!("CARGO_BIN_EXE_xrsec"))
        .args(["show", "ikev2", "summary"])
        .env("XRSEC_CONTROL", &daemon.path)
        .output()
        .expect("run xrsec");
    assert_eq!(expect_exit(&out, 0), ikev2_summary(&status()));
}

#[test]
fn json_is_refused_for_config_commands() {
    let out = xrsec(
        Path::new("/nonexistent"),
        &["--json", "config", "show", "config/router1.conf"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--json applies to show and clear, not to config"),
        "{}",
        text(&out.stderr)
    );
}
