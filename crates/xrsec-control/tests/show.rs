//! The `show` layouts as an engineer reads them, on a daemon with two tunnels:
//! `tunnel-ip1` up (one session, one Child SA over UDP 4500) and `tunnel-ip2`
//! down after unanswered IKE_SA_INIT requests. Then the protocol's framing: the
//! status and every request and response survive the JSON line, and a bad
//! request line is refused with a reason.

use std::net::{Ipv4Addr, SocketAddr};

use xrsec_control::show::{ikev2_session, ikev2_summary, ipsec_sa};
use xrsec_control::{
    decode_request, encode_line, ChildSaStatus, DaemonInfo, IkeSa, IkeSession, IpsecSa, Request,
    Response, SaHalf, Status, TunnelState, TunnelStatus, MAX_REQUEST_LEN,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn half(spi: u32, packets: u64, bytes: u64, drops: &[(&str, u64)]) -> SaHalf {
    SaHalf {
        spi,
        protocol: "ESP".into(),
        encrypt_algorithm: "ESP_256_AES".into(),
        auth_algorithm: "HMAC_SHA_256".into(),
        rekey_after_secs: 3_037,
        expires_after_secs: 3_337,
        packets,
        bytes,
        drops: drops.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
    }
}

fn ike_sa() -> IkeSa {
    IkeSa {
        id: 1,
        local: addr("10.99.0.1:4500"),
        remote: addr("10.99.0.2:4500"),
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
        active_secs: 2_043,
        local_spi: 0x3b95_c7fc_c6a6_9d0a,
        remote_spi: 0x044c_4dbc_ffee_67f0,
        local_id: "10.99.0.1".into(),
        remote_id: "10.99.0.2".into(),
        nat_t: true,
        children: vec![ChildSaStatus {
            local_selectors: vec!["0.0.0.0/0 - 255.255.255.255/65535".into()],
            remote_selectors: vec!["0.0.0.0/0 - 255.255.255.255/65535".into()],
            spi_in: 0x2c37_8849,
            spi_out: 0x0a9e_d882,
            encryption: "AES-CBC".into(),
            keysize: 256,
            esp_hmac: "SHA256".into(),
        }],
    }
}

/// Two tunnels: one up with a session, one down with a reason.
fn fixture() -> Status {
    Status {
        daemon: DaemonInfo {
            version: "0.1.0".into(),
            pid: 4242,
            config_path: "/etc/xrsec/xrsec.conf".into(),
            uptime_secs: 2_100,
            now_unix: 1_633_448_755,
        },
        tunnels: vec![
            TunnelStatus {
                name: "tunnel-ip1".into(),
                ifindex: 0x800090,
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
                    interface_handle: 0x800090,
                    sa_id: 804,
                    mode: "Tunnel".into(),
                    udp_encap: true,
                    local: addr("10.99.0.1:4500"),
                    remote: addr("10.99.0.2:61234"),
                    inbound: half(0x2c37_8849, 1_200, 96_000, &[("icv", 1), ("replay", 3)]),
                    outbound: half(0x0a9e_d882, 1_180, 94_400, &[]),
                }),
            },
            TunnelStatus {
                name: "tunnel-ip2".into(),
                ifindex: 9,
                address: Some((Ipv4Addr::new(192, 0, 2, 5), 30)),
                mtu: 1400,
                local: Some(Ipv4Addr::new(10, 99, 0, 1)),
                remote: Some(Ipv4Addr::new(10, 99, 0, 6)),
                state: TunnelState::Down,
                last_error: Some(
                    "no answer to IKE_SA_INIT from 10.99.0.6 (5 transmissions)".into(),
                ),
                last_error_secs_ago: Some(12),
                retry_in_secs: Some(48),
                failures: 3,
                ipsec: None,
            },
        ],
        sessions: vec![IkeSession {
            session_id: 1,
            status: "UP-ACTIVE".into(),
            tunnel: "tunnel-ip1".into(),
            ike_sas: vec![ike_sa()],
        }],
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn show_ipsec_sa_lists_every_tunnel_with_spis_in_hex_and_the_down_one_with_its_state() {
    let out = ipsec_sa(&fixture(), None).unwrap();
    assert_eq!(
        lines(&out),
        [
            "Tue Oct  5 15:45:55 UTC",
            "If/name     SA-Id  Inbound SPI  Outbound SPI",
            "--------------------------------------------",
            "tunnel-ip1  804    0x2c378849   0x0a9ed882",
            "tunnel-ip2  -      -            -             DOWN",
        ]
    );
}

#[test]
fn show_ipsec_sa_widens_the_name_column_for_long_interface_names() {
    let mut status = fixture();
    status.tunnels[1].name = "tunnel-ip1000".into();
    status.tunnels[1].state = TunnelState::AdminDown;
    let out = ipsec_sa(&status, None).unwrap();
    assert_eq!(
        lines(&out)[1..],
        [
            "If/name        SA-Id  Inbound SPI  Outbound SPI",
            "-----------------------------------------------",
            "tunnel-ip1     804    0x2c378849   0x0a9ed882",
            "tunnel-ip1000  -      -            -             ADMIN-DOWN",
        ]
    );
}

#[test]
fn show_ipsec_sa_interface_prints_the_routers_fields_then_encapsulation_and_counters() {
    let out = ipsec_sa(&fixture(), Some("tunnel-ip1")).unwrap();
    assert_eq!(
        lines(&out),
        [
            "Tue Oct  5 15:45:55 UTC",
            "-----------------------",
            "Interface Name        : tunnel-ip1",
            "Interface handle      : 0x800090",
            "SA id                 : 804",
            "Mode                  : Tunnel",
            "-----------------------",
            "Inbound SA",
            "SPI                   : 0x2c378849",
            "Protocol              : ESP",
            "Encrypt Algorithm     : ESP_256_AES",
            "Auth Algorithm        : HMAC_SHA_256",
            "Rekey (After Seconds) : 3037",
            "Encapsulation         : ESP-in-UDP 4500, remote 10.99.0.2:61234",
            "Packets               : 1200",
            "Bytes                 : 96000",
            "Drops                 : replay 3, icv 1",
            "-----------------------",
            "Outbound SA",
            "SPI                   : 0x0a9ed882",
            "Protocol              : ESP",
            "Encrypt Algorithm     : ESP_256_AES",
            "Auth Algorithm        : HMAC_SHA_256",
            "Rekey (After Seconds) : 3037",
            "Encapsulation         : ESP-in-UDP 4500, remote 10.99.0.2:61234",
            "Packets               : 1180",
            "Bytes                 : 94400",
            "Drops                 : none",
        ]
    );
}

#[test]
fn show_ipsec_sa_interface_says_plain_esp_without_udp_encapsulation() {
    let mut status = fixture();
    let sa = status.tunnels[0].ipsec.as_mut().unwrap();
    sa.udp_encap = false;
    sa.remote = addr("10.99.0.2:0");
    let out = ipsec_sa(&status, Some("TUNNEL-IP1")).unwrap();
    let encapsulation: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Encapsulation"))
        .collect();
    assert_eq!(
        encapsulation,
        [
            "Encapsulation         : ESP, remote 10.99.0.2",
            "Encapsulation         : ESP, remote 10.99.0.2"
        ]
    );
}

#[test]
fn show_ipsec_sa_interface_of_a_tunnel_without_sa_says_why() {
    let out = ipsec_sa(&fixture(), Some("tunnel-ip2")).unwrap();
    assert_eq!(
        lines(&out),
        [
            "Tue Oct  5 15:45:55 UTC",
            "------------------",
            "Interface Name   : tunnel-ip2",
            "Interface handle : 0x9",
            "SA id            : -",
            "State            : DOWN",
            "Reason           : no answer to IKE_SA_INIT from 10.99.0.6 (5 transmissions) (12 s ago)",
        ]
    );
}

#[test]
fn show_ipsec_sa_of_an_unknown_interface_names_it_and_lists_the_existing_ones() {
    let err = ipsec_sa(&fixture(), Some("tunnel-ip7")).unwrap_err();
    assert_eq!(
        err,
        "no interface tunnel-ip7; the tunnel interfaces are tunnel-ip1, tunnel-ip2"
    );
    let mut empty = fixture();
    empty.tunnels.clear();
    assert_eq!(
        ipsec_sa(&empty, Some("tunnel-ip1")).unwrap_err(),
        "no interface tunnel-ip1: no tunnel interface is configured"
    );
}

#[test]
fn show_ikev2_session_prints_the_session_then_why_the_other_tunnel_is_down() {
    let out = ikev2_session(&fixture(), false);
    assert_eq!(
        lines(&out),
        [
            "Session ID          : 1",
            "=====================",
            "Status              : UP-ACTIVE",
            "IKE Count           : 1",
            "Child Count         : 1",
            "IKE SA ID           : 1",
            "---------------------",
            "Local               : 10.99.0.1/4500",
            "Remote              : 10.99.0.2/4500",
            "Status(Description) : READY (Negotiation done)",
            "Role                : Initiator",
            "Child SA",
            "---------------------",
            "Local Selector      : 0.0.0.0/0 - 255.255.255.255/65535",
            "Remote Selector     : 0.0.0.0/0 - 255.255.255.255/65535",
            "ESP SPI IN/OUT      : 0x2c378849 / 0x0a9ed882",
            "",
            "Tunnel tunnel-ip2 (10.99.0.1 -> 10.99.0.6): DOWN",
            "Reason   : no answer to IKE_SA_INIT from 10.99.0.6 (5 transmissions) (12 s ago)",
            "Retry in : 48 s (attempt 4)",
        ]
    );
}

#[test]
fn show_ikev2_session_detail_adds_algorithms_spis_identities_and_nat_t() {
    let out = ikev2_session(&fixture(), true);
    assert_eq!(
        lines(&out)[..27],
        [
            "Session ID                  : 1",
            "=============================",
            "Status                      : UP-ACTIVE",
            "IKE Count                   : 1",
            "Child Count                 : 1",
            "IKE SA ID                   : 1",
            "-----------------------------",
            "Local                       : 10.99.0.1/4500",
            "Remote                      : 10.99.0.2/4500",
            "Status(Description)         : READY (Negotiation done)",
            "Role                        : Initiator",
            "Encryption/Keysize          : AES-CBC/256",
            "PRF/Hash/DH Group           : SHA256/SHA256/20",
            "Authentication(Sign/Verify) : PSK/PSK",
            "Life/Active Time(sec)       : 86400/2043",
            "Session ID                  : 1",
            "Local SPI                   : 3B95C7FCC6A69D0A",
            "Remote SPI                  : 044C4DBCFFEE67F0",
            "Local ID                    : 10.99.0.1",
            "Remote ID                   : 10.99.0.2",
            "NAT-T                       : yes",
            "Child SA",
            "-----------------------------",
            "Local Selector              : 0.0.0.0/0 - 255.255.255.255/65535",
            "Remote Selector             : 0.0.0.0/0 - 255.255.255.255/65535",
            "ESP SPI IN/OUT              : 0x2c378849 / 0x0a9ed882",
            "Encryption                  : AES-CBC",
        ]
    );
    assert_eq!(
        lines(&out)[27..30],
        [
            "Keysize                     : 256",
            "ESP HMAC                    : SHA256",
            "",
        ]
    );
    assert!(out.ends_with("Retry in : 48 s (attempt 4)\n"), "{out}");
}

#[test]
fn show_ikev2_session_detail_shows_dashes_for_what_a_negotiating_sa_has_not_agreed_yet() {
    let mut status = fixture();
    let sa = &mut status.sessions[0].ike_sas[0];
    sa.state = "CONNECTING".into();
    sa.state_description = "CONNECTING (IKE_SA_INIT sent)".into();
    sa.encryption.clear();
    sa.keysize = 0;
    sa.dh_group = 0;
    sa.remote_spi = 0;
    sa.remote_id.clear();
    sa.children.clear();
    let out = ikev2_session(&status, true);
    for expected in [
        "Child Count                 : 0",
        "Status(Description)         : CONNECTING (IKE_SA_INIT sent)",
        "Encryption/Keysize          : -/-",
        "PRF/Hash/DH Group           : SHA256/SHA256/-",
        "Remote SPI                  : 0000000000000000",
        "Remote ID                   : -",
    ] {
        assert!(out.lines().any(|l| l == expected), "{expected:?} in\n{out}");
    }
    assert!(!out.contains("Child SA"), "{out}");
}

#[test]
fn show_ikev2_session_says_shutdown_for_an_admin_down_tunnel_and_no_retry() {
    let mut status = fixture();
    let tunnel = &mut status.tunnels[1];
    tunnel.state = TunnelState::AdminDown;
    tunnel.retry_in_secs = None;
    let out = ikev2_session(&status, false);
    assert!(
        out.ends_with(
            "\nTunnel tunnel-ip2 (10.99.0.1 -> 10.99.0.6): ADMIN-DOWN\n\
             Reason : shutdown\n"
        ),
        "{out}"
    );
}

#[test]
fn show_ikev2_session_says_when_there_is_nothing_at_all() {
    let mut status = fixture();
    status.sessions.clear();
    status.tunnels.clear();
    assert_eq!(
        ikev2_session(&status, false),
        "There are no IKEv2 sessions and no tunnel interfaces.\n"
    );
}

#[test]
fn show_ikev2_session_without_sessions_still_explains_the_tunnels() {
    let mut status = fixture();
    status.sessions.clear();
    status.tunnels[0].state = TunnelState::Negotiating;
    status.tunnels[0].ipsec = None;
    status.tunnels[0].retry_in_secs = None;
    let out = ikev2_session(&status, false);
    assert_eq!(
        lines(&out),
        [
            "There are no IKEv2 sessions.",
            "",
            "Tunnel tunnel-ip1 (10.99.0.1 -> 10.99.0.2): NEGOTIATING",
            "Reason : negotiation in progress",
            "",
            "Tunnel tunnel-ip2 (10.99.0.1 -> 10.99.0.6): DOWN",
            "Reason   : no answer to IKE_SA_INIT from 10.99.0.6 (5 transmissions) (12 s ago)",
            "Retry in : 48 s (attempt 4)",
        ]
    );
}

#[test]
fn show_ikev2_summary_counts_active_and_negotiating_sas_by_direction() {
    let mut status = fixture();
    let mut negotiating = ike_sa();
    negotiating.id = 2;
    negotiating.state = "CONNECTING".into();
    status.sessions[0].ike_sas.push(negotiating);
    let mut incoming = ike_sa();
    incoming.id = 3;
    incoming.role = "Responder".into();
    status.sessions.push(IkeSession {
        session_id: 2,
        status: "UP-ACTIVE".into(),
        tunnel: "tunnel-ip2".into(),
        ike_sas: vec![incoming],
    });
    assert_eq!(
        lines(&ikev2_summary(&status)),
        [
            "IKEv2 Session Summary",
            "----------------------------------------",
            "Total Sa (Active/Negotiation)          : 3 (2/1)",
            "Total Outgoing Sa (Active/Negotiation) : 2 (1/1)",
            "Total Incoming Sa (Active/Negotiation) : 1 (1/0)",
        ]
    );
}

#[test]
fn status_survives_the_json_line() {
    let status = fixture();
    let line = encode_line(&Response::Status(status.clone()));
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    let back: Response = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(back, Response::Status(status));
}

#[test]
fn every_request_and_response_survives_the_json_line() {
    for request in [
        Request::Status,
        Request::RunningConfig,
        Request::ClearIkeSa { id: None },
        Request::ClearIkeSa { id: Some(7) },
        Request::ClearIpsecSa { interface: None },
        Request::ClearIpsecSa {
            interface: Some("tunnel-ip1".into()),
        },
    ] {
        let line = encode_line(&request);
        assert_eq!(decode_request(&line), Ok(request));
    }
    for response in [
        Response::RunningConfig {
            text: "interface tunnel-ip1\n shutdown\n!\n".into(),
        },
        Response::Cleared {
            count: 1,
            message: "deleted IKE SA 1 (tunnel-ip1); renegotiating".into(),
        },
        Response::Error {
            message: "no interface tunnel-ip9".into(),
        },
    ] {
        let line = encode_line(&response);
        let back: Response = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back, response);
    }
}

#[test]
fn an_overlong_request_line_is_refused_with_its_length() {
    let line = format!(
        r#"{{"request":"clear_ipsec_sa","interface":"{}"}}"#,
        "x".repeat(MAX_REQUEST_LEN)
    );
    let err = decode_request(&line).unwrap_err();
    assert_eq!(
        err,
        format!(
            "request of {} bytes is longer than the 4096 allowed",
            line.len()
        )
    );
}

#[test]
fn a_malformed_request_line_is_refused_naming_the_problem() {
    let err = decode_request(r#"{"request":"reboot"}"#).unwrap_err();
    assert!(err.starts_with("invalid request: "), "{err}");
    assert!(err.contains("reboot"), "{err}");
    let err = decode_request("show ikev2 session\n").unwrap_err();
    assert!(err.starts_with("invalid request: "), "{err}");
    let err = decode_request(r#"{"request":"clear_ike_sa","id":"one"}"#).unwrap_err();
    assert!(err.contains("invalid type"), "{err}");
}
