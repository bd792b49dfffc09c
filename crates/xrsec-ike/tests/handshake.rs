//! IKE_SA_INIT + IKE_AUTH between two endpoints through the simulator: the
//! happy path, every failure the issue names, NAT traversal, reliability.

mod sim;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use sim::*;
use xrsec_crypto::{DhGroup, Encr, EspSuite, IntegId, PrfId};
use xrsec_ike::wire::{self, notify, ExchangeType, Message, Payload};
use xrsec_ike::{
    DownReason, EndpointOptions, Event, FailureReason, IdentityMatch, IkeProposalConfig,
    Ipv4Prefix, SaKind, TunnelId,
};

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn established_pair(seed: u64) -> Sim {
    let (a, b) = tunnel_pair(b"secret");
    let mut sim = Sim::new(a, b, seed);
    sim.handshake();
    assert_eq!(sim.a.child_sas().len(), 1, "{:?}", sim.a.failures());
    assert_eq!(sim.b.child_sas().len(), 1, "{:?}", sim.b.failures());
    sim
}

#[test]
fn two_peers_establish_an_ike_sa_and_a_child_sa_with_matching_keys() {
    let sim = established_pair(1);
    assert!(sim.a.failures().is_empty(), "{:?}", sim.a.failures());
    assert!(sim.b.failures().is_empty(), "{:?}", sim.b.failures());
    assert_same_keys(&sim);
    let ca = sim.a.child_sas()[0];
    assert!(!ca.udp_encap);
    assert_eq!(ca.local, sa(A_ADDR, 500));
    assert_eq!(ca.remote, sa(B_ADDR, 500));
    assert_eq!(ca.local_ts, vec![wire::TrafficSelector::ipv4_any()]);
    assert_eq!(ca.remote_ts, vec![wire::TrafficSelector::ipv4_any()]);
    // IKE_SA_INIT and IKE_AUTH: two datagrams each way, no retransmission.
    assert_eq!(sim.a.sent.len(), 2);
    assert_eq!(sim.b.sent.len(), 2);
    let sa_a = &sim.a.ep.sessions()[0];
    assert_eq!(sa_a.state, "READY");
    assert_eq!(sa_a.children.len(), 1);
    assert_eq!(
        sa_a.remote_identity,
        Some(xrsec_ike::Identity::Ipv4(B_ADDR))
    );
    // Nothing prints a key.
    let shown = format!("{:?}", sim.a.events);
    assert!(shown.contains("bytes)"), "{shown}");
}

#[test]
fn spis_are_random_non_zero_and_child_spis_differ_per_side() {
    let sim = established_pair(2);
    let s = &sim.a.ep.sessions()[0];
    assert_ne!(s.spi_i, 0);
    assert_ne!(s.spi_r, 0);
    let c = sim.a.child_sas()[0];
    assert!(c.spi_in > 255 && c.spi_out > 255);
    assert_ne!(c.spi_in, c.spi_out);
    let other = established_pair(3);
    assert_ne!(other.a.child_sas()[0].spi_in, c.spi_in);
}

#[test]
fn wrong_psk_fails_with_authentication_failed_on_both_sides_and_no_child_sa() {
    let (a, _) = tunnel_pair(b"secret");
    let (_, b) = tunnel_pair(b"another secret");
    let mut sim = Sim::new(a, b, 4);
    sim.handshake();
    assert!(sim.a.child_sas().is_empty() && sim.b.child_sas().is_empty());
    assert!(sim.a.ike_up().is_empty() && sim.b.ike_up().is_empty());
    let fa = sim.a.failures();
    let fb = sim.b.failures();
    assert_eq!(fa.len(), 1, "{fa:?}");
    assert_eq!(fb.len(), 1, "{fb:?}");
    assert!(
        fa[0].contains("authentication failed") && fa[0].contains("rejected our AUTH"),
        "{}",
        fa[0]
    );
    assert!(
        fb[0].contains("authentication failed") && fb[0].contains("the keys differ"),
        "{}",
        fb[0]
    );
    assert!(matches!(
        sim.a.events[0],
        Event::NegotiationFailed {
            reason: FailureReason::AuthenticationFailed { .. },
            ..
        }
    ));
    assert_eq!(sim.a.ep.ike_sa_count(), 0);
    sim.step(Duration::from_secs(60));
    assert_eq!(sim.b.ep.ike_sa_count(), 0);
}

#[test]
fn a_wrong_remote_key_on_the_initiator_is_reported_to_the_responder() {
    // The responder accepts the initiator (its key is right one way), the
    // initiator rejects the responder and says so in an INFORMATIONAL.
    let (mut a, b) = tunnel_pair(b"secret");
    a.psk_remote = xrsec_crypto::SecretBytes::new(b"not the responder's key");
    let mut sim = Sim::new(a, b, 5);
    sim.handshake();
    assert!(sim.a.failures()[0].contains("does not match our pre-shared key"));
    assert!(sim.b.events.iter().any(|e| matches!(
        e,
        Event::IkeSaDown {
            reason: DownReason::PeerAuthenticationFailed,
            ..
        }
    )));
    assert!(sim
        .b
        .failures()
        .iter()
        .any(|f| f.contains("AUTHENTICATION_FAILED")));
}

#[test]
fn disjoint_proposals_fail_with_no_proposal_chosen_naming_both_lists() {
    let (mut a, mut b) = tunnel_pair(b"secret");
    a.ike_proposals = vec![IkeProposalConfig {
        encr: vec![Encr::AesCbc128],
        integ: vec![IntegId::HmacSha1_96],
        prf: vec![PrfId::HmacSha1],
        dh: vec![DhGroup::Ecp256],
    }];
    b.ike_proposals = vec![IkeProposalConfig {
        encr: vec![Encr::AesGcm16_256],
        integ: vec![],
        prf: vec![PrfId::HmacSha2_384],
        dh: vec![DhGroup::Ecp384],
    }];
    let mut sim = Sim::new(a, b, 6);
    sim.handshake();
    let fb = sim.b.failures();
    assert_eq!(fb.len(), 1, "{fb:?}");
    assert_eq!(
        fb[0],
        "no IKE proposal in common: peer offered AES-CBC-128/HMAC-SHA1-96/PRF-HMAC-SHA1/group 19 (ECP-256); \
         we accept AES-GCM-16-256/PRF-HMAC-SHA-384/group 20 (ECP-384)"
    );
    let fa = sim.a.failures();
    assert_eq!(fa.len(), 1, "{fa:?}");
    assert!(
        fa[0].contains("NO_PROPOSAL_CHOSEN") && fa[0].contains("AES-CBC-128"),
        "{}",
        fa[0]
    );
    assert!(matches!(
        &sim.a.events[0],
        Event::NegotiationFailed {
            reason: FailureReason::NoProposalChosen {
                sa: SaKind::Ike,
                theirs: None,
                ..
            },
            ..
        }
    ));
    // The responder kept no state.
    assert_eq!(sim.b.ep.ike_sa_count(), 0);
    assert_eq!(sim.a.ep.ike_sa_count(), 0);
}

#[test]
fn invalid_ke_payload_makes_the_initiator_retry_once_with_the_group_asked_for() {
    let (mut a, mut b) = tunnel_pair(b"secret");
    a.ike_proposals[0].dh = vec![DhGroup::Ecp521, DhGroup::Ecp256];
    b.ike_proposals[0].dh = vec![DhGroup::Ecp256];
    let mut sim = Sim::new(a, b, 7);
    sim.handshake();
    assert!(sim.a.failures().is_empty(), "{:?}", sim.a.failures());
    assert_same_keys(&sim);
    assert_eq!(
        sim.a.ep.sessions()[0].algorithms.unwrap().dh,
        DhGroup::Ecp256
    );
    // Two IKE_SA_INIT requests (21, then 19), then IKE_AUTH.
    let first = Message::parse(&sim.a.sent[0].2).unwrap();
    let second = Message::parse(&sim.a.sent[1].2).unwrap();
    let group = |m: &Message| {
        m.payloads.iter().find_map(|p| {
            if let Payload::Ke(k) = p {
                Some(k.group)
            } else {
                None
            }
        })
    };
    assert_eq!(group(&first), Some(21));
    assert_eq!(group(&second), Some(19));
    assert_eq!(first.header.spi_i, second.header.spi_i);
}

fn forged_sa_init_answer(spi_i: u64, notify_type: u16, data: Vec<u8>) -> Vec<u8> {
    Message::emit_plain(
        &wire::Header {
            spi_i,
            spi_r: 0,
            next_payload: 0,
            major: 2,
            minor: 0,
            exchange: ExchangeType::IkeSaInit,
            flags: wire::Flags {
                initiator: false,
                version: false,
                response: true,
            },
            message_id: 0,
            length: 0,
        },
        &[Payload::Notify(wire::NotifyPayload::new(notify_type, data))],
    )
}

#[test]
fn invalid_ke_payload_naming_a_group_we_do_not_offer_ends_the_negotiation_after_the_grace_period() {
    let (a, b) = tunnel_pair(b"secret");
    let mut sim = Sim::new(a, b, 8);
    sim.a.ep.initiate(sim.now, TunnelId(1));
    let request = sim.a.ep.poll_transmit().unwrap();
    let spi_i = Message::parse(&request.payload).unwrap().header.spi_i;
    let answer = forged_sa_init_answer(
        spi_i,
        notify::INVALID_KE_PAYLOAD,
        20u16.to_be_bytes().to_vec(),
    );
    sim.a
        .ep
        .handle_datagram(sim.now, request.local, request.remote, &answer);
    sim.step(Duration::from_millis(1900));
    assert!(sim.a.failures().is_empty());
    // No retransmission while the error is pending.
    assert!(sim.a.sent.is_empty());
    sim.step(Duration::from_millis(200));
    assert_eq!(
        sim.a.failures(),
        vec!["the peer requires DH group 20, which no proposal of ours lists".to_string()]
    );
}

#[test]
fn establishes_despite_30_percent_loss_duplication_and_reordering() {
    for seed in 10..18 {
        let (a, b) = tunnel_pair(b"lossy");
        // With 30% loss each way an exchange fails 51% of the time; ten
        // transmissions make a give-up very unlikely, six would not.
        let o = EndpointOptions {
            retransmit_limit: 10,
            ..Default::default()
        };
        let mut sim = Sim::with_options(vec![a], vec![b], seed, o.clone(), o);
        sim.loss = 0.3;
        sim.dup = 0.3;
        sim.jitter = Duration::from_millis(400);
        sim.handshake();
        assert!(
            sim.a.failures().is_empty(),
            "seed {seed}: {:?}",
            sim.a.failures()
        );
        assert_eq!(
            sim.a.child_sas().len(),
            1,
            "seed {seed}: {:#?}",
            sim.a.events
        );
        assert_eq!(
            sim.b.child_sas().len(),
            1,
            "seed {seed}: {:#?}",
            sim.b.events
        );
        assert!(
            sim.b.failures().is_empty(),
            "seed {seed}: {:?}",
            sim.b.failures()
        );
        assert_same_keys(&sim);
    }
}

#[test]
fn requests_are_retransmitted_with_exponential_back_off_then_given_up() {
    let (a, b) = tunnel_pair(b"secret");
    let mut sim = Sim::new(a, b, 20);
    sim.loss = 1.0;
    let start = sim.now;
    sim.a.ep.initiate(sim.now, TunnelId(1));
    let mut times = Vec::new();
    loop {
        sim.step(Duration::from_millis(100));
        while times.len() < sim.a.sent.len() {
            times.push((sim.now - start).as_secs());
        }
        if !sim.a.failures().is_empty() || sim.now - start > Duration::from_secs(120) {
            break;
        }
    }
    // RFC 7296 2.4: 1, 2, 4, 8, 16 s apart, six transmissions, then 32 s.
    assert_eq!(times, vec![0, 1, 3, 7, 15, 31]);
    assert_eq!(
        sim.a.failures(),
        vec!["no response to IKE_SA_INIT after 6 transmissions: is the peer up and UDP 500/4500 open?".to_string()]
    );
    assert_eq!((sim.now - start).as_secs(), 63);
    assert_eq!(sim.a.ep.ike_sa_count(), 0);
}

#[test]
fn a_nat_in_front_of_the_initiator_is_detected_by_both_and_ike_moves_to_4500() {
    let (a, mut b) = tunnel_pair(b"secret");
    // The responder sees the NAT's address: its keyring must cover it.
    b.peer_range = Ipv4Prefix::any();
    let mut sim = Sim::new(a, b, 21);
    let public = Ipv4Addr::new(203, 0, 113, 5);
    sim.nat = Some(Nat::new(A_ADDR, public));
    sim.handshake();
    assert!(
        sim.a.failures().is_empty() && sim.b.failures().is_empty(),
        "{:?} {:?}",
        sim.a.failures(),
        sim.b.failures()
    );
    let sa_a = &sim.a.ep.sessions()[0];
    let sa_b = &sim.b.ep.sessions()[0];
    assert!(sa_a.nat.local_behind_nat && !sa_a.nat.remote_behind_nat);
    assert!(sa_b.nat.remote_behind_nat && !sa_b.nat.local_behind_nat);
    // IKE_AUTH went from port 4500 to port 4500.
    assert_eq!(sim.a.sent[1].0.port(), 4500);
    assert_eq!(sim.a.sent[1].1, sa(B_ADDR, 4500));
    let ca = sim.a.child_sas()[0];
    let cb = sim.b.child_sas()[0];
    assert!(ca.udp_encap && cb.udp_encap);
    assert_eq!(ca.local, sa(A_ADDR, 4500));
    assert_eq!(cb.remote, sa(public, 34500));
    assert_eq!(cb.local, sa(B_ADDR, 4500));
    assert_same_keys(&sim);
}

#[test]
fn a_peer_forcing_nat_traversal_like_strongswan_moves_both_ends_to_4500() {
    let (a, b) = tunnel_pair(b"secret");
    let ob = EndpointOptions {
        force_udp_encap: true,
        ..Default::default()
    };
    let mut sim = Sim::with_options(vec![a], vec![b], 22, EndpointOptions::default(), ob);
    sim.handshake();
    let ca = sim.a.child_sas()[0];
    let cb = sim.b.child_sas()[0];
    assert!(ca.udp_encap && cb.udp_encap);
    assert_eq!(ca.remote, sa(B_ADDR, 4500));
    assert_eq!(cb.remote, sa(A_ADDR, 4500));
    // The responder follows the initiator to 4500 for later exchanges too.
    let id = sim.b.ike_up()[0];
    sim.b.ep.send_liveness_check(sim.now, id);
    sim.step(Duration::from_secs(5));
    let last = sim.b.sent.last().unwrap();
    assert_eq!((last.0.port(), last.1.port()), (4500, 4500));
    assert!(sim
        .b
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerAlive { .. })));
}

#[test]
fn an_initiator_forcing_nat_traversal_moves_to_4500_itself() {
    // The forcing side is the initiator: the responder's hashes match, so
    // only our own forcing can send us to 4500 (strongSwan does the same).
    let (a, b) = tunnel_pair(b"secret");
    let oa = EndpointOptions {
        force_udp_encap: true,
        ..Default::default()
    };
    let mut sim = Sim::with_options(vec![a], vec![b], 24, oa, EndpointOptions::default());
    sim.handshake();
    let ca = sim.a.child_sas()[0];
    let cb = sim.b.child_sas()[0];
    assert!(ca.udp_encap && cb.udp_encap);
    assert_eq!(ca.remote, sa(B_ADDR, 4500));
    assert_eq!(cb.remote, sa(A_ADDR, 4500));
    let auth = sim
        .a
        .sent
        .iter()
        .find(|(_, _, bytes)| bytes.get(18) == Some(&35))
        .expect("an IKE_AUTH request");
    assert_eq!(
        (auth.0.port(), auth.1.port()),
        (4500, 4500),
        "IKE_AUTH goes to 4500"
    );
}

#[test]
fn a_responder_resends_its_cached_response_for_a_retransmitted_request() {
    // IKE_SA_INIT, while the SA is half-open.
    let (a, b) = tunnel_pair(b"secret");
    let mut sim = Sim::new(a, b, 23);
    sim.a.ep.initiate(sim.now, TunnelId(1));
    let req = sim.a.ep.poll_transmit().unwrap();
    sim.b
        .ep
        .handle_datagram(sim.now, req.remote, req.local, &req.payload);
    let first = sim.b.ep.poll_transmit().unwrap();
    sim.b
        .ep
        .handle_datagram(sim.now, req.remote, req.local, &req.payload);
    let again = sim
        .b
        .ep
        .poll_transmit()
        .expect("the cached IKE_SA_INIT response");
    assert_eq!(first.payload, again.payload);
    assert_eq!(sim.b.ep.ike_sa_count(), 1);

    // IKE_AUTH, once established.
    let mut sim = established_pair(23);
    let events_before = sim.b.events.len();
    let (src, dst, req) = sim.a.sent[1].clone();
    sim.b.ep.handle_datagram(sim.now, dst, src, &req);
    let t = sim.b.ep.poll_transmit().expect("a cached response");
    assert_eq!(t.payload, sim.b.sent[1].2);
    assert!(sim.b.ep.poll_transmit().is_none());
    sim.collect_only_events();
    assert_eq!(
        sim.b.events.len(),
        events_before,
        "a retransmission was processed again"
    );
    assert_eq!(sim.b.ep.ike_sa_count(), 1);
}

#[test]
fn datagrams_for_unknown_spis_are_dropped_without_creating_state() {
    let mut sim = established_pair(24);
    // Only the established SA's own timers (its lifetimes): nothing the
    // forged datagrams below could add.
    let timer_before = sim.b.ep.poll_timeout();
    assert!(timer_before.is_some_and(|t| t > sim.now + Duration::from_secs(60)));
    let (src, dst, auth) = sim.a.sent[1].clone();
    let mut forged = auth.clone();
    forged[8..16].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    sim.b.ep.handle_datagram(sim.now, dst, src, &forged);
    // A response for an SA the initiator never started.
    let (bsrc, bdst, resp) = sim.b.sent[1].clone();
    let mut forged = resp.clone();
    forged[0..8].copy_from_slice(&0x99u64.to_be_bytes());
    sim.a.ep.handle_datagram(sim.now, bdst, bsrc, &forged);
    for junk in [&b""[..], &[0u8; 3][..], &[0xff; 28][..], &[0u8; 200][..]] {
        sim.b.ep.handle_datagram(sim.now, dst, src, junk);
    }
    assert!(sim.b.ep.poll_transmit().is_none());
    assert!(sim.a.ep.poll_transmit().is_none());
    assert_eq!(sim.b.ep.ike_sa_count(), 1);
    assert_eq!(sim.a.ep.ike_sa_count(), 1);
    assert_eq!(sim.b.ep.poll_timeout(), timer_before);
}

#[test]
fn deleting_the_ike_sa_takes_both_ends_and_their_child_sas_down() {
    let mut sim = established_pair(25);
    let id = sim.a.ike_up()[0];
    let c = sim.a.child_sas()[0].clone();
    sim.a.ep.delete_ike_sa(sim.now, id);
    sim.step(Duration::from_secs(60));
    let downs = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ChildSaDown {
                    spi_in,
                    spi_out,
                    reason,
                    ..
                } => Some(format!("child {spi_in:x}/{spi_out:x} {reason}")),
                Event::IkeSaDown { reason, .. } => Some(format!("ike {reason}")),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        downs(&sim.a.events),
        vec![
            format!("child {:x}/{:x} deleted locally", c.spi_in, c.spi_out),
            "ike deleted locally".into()
        ]
    );
    assert_eq!(
        downs(&sim.b.events),
        vec![
            format!("child {:x}/{:x} deleted by the peer", c.spi_out, c.spi_in),
            "ike deleted by the peer".into()
        ]
    );
    assert_eq!(sim.a.ep.ike_sa_count(), 0);
    assert_eq!(sim.b.ep.ike_sa_count(), 0);
    assert!(sim.a.ep.sessions().is_empty());
}

#[test]
fn deleting_a_child_sa_keeps_the_ike_sa() {
    let mut sim = established_pair(26);
    let id = sim.a.ike_up()[0];
    let c = sim.a.child_sas()[0].clone();
    sim.a.ep.delete_child_sa(sim.now, id, c.spi_in);
    sim.step(Duration::from_secs(5));
    assert!(sim.b.events.iter().any(|e| matches!(
        e,
        Event::ChildSaDown { spi_in, spi_out, reason: DownReason::PeerDelete, .. } if *spi_in == c.spi_out && *spi_out == c.spi_in
    )));
    assert!(sim.a.events.iter().any(|e| matches!(
        e,
        Event::ChildSaDown {
            reason: DownReason::LocalDelete,
            ..
        }
    )));
    // B's answer names its own inbound SPI (RFC 7296 1.4.1).
    let answer = Message::parse(&sim.b.sent.last().unwrap().2).unwrap();
    assert_eq!(answer.header.exchange, ExchangeType::Informational);
    assert!(answer.header.flags.response);
    for s in [sim.a.ep.sessions(), sim.b.ep.sessions()] {
        assert_eq!(s[0].state, "READY");
        assert!(s[0].children.is_empty());
    }
}

#[test]
fn a_liveness_check_is_answered_and_reports_the_peer_alive() {
    let mut sim = established_pair(27);
    let id = sim.a.ike_up()[0];
    sim.a.ep.send_liveness_check(sim.now, id);
    sim.step(Duration::from_secs(5));
    assert!(sim
        .a
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerAlive { .. })));
    // Twice more from each side: message IDs advance on both.
    for _ in 0..2 {
        sim.a.ep.send_liveness_check(sim.now, id);
        let idb = sim.b.ike_up()[0];
        sim.b.ep.send_liveness_check(sim.now, idb);
        sim.step(Duration::from_secs(5));
    }
    let alive = |e: &[Event]| {
        e.iter()
            .filter(|e| matches!(e, Event::PeerAlive { .. }))
            .count()
    };
    assert_eq!(alive(&sim.a.events), 3);
    assert_eq!(alive(&sim.b.events), 2);
}

#[test]
fn an_unanswered_liveness_check_takes_the_sa_down() {
    let mut sim = established_pair(28);
    sim.loss = 1.0;
    let id = sim.a.ike_up()[0];
    sim.a.ep.send_liveness_check(sim.now, id);
    sim.step(Duration::from_secs(120));
    assert!(sim.a.events.iter().any(|e| matches!(
        e,
        Event::IkeSaDown {
            reason: DownReason::NoResponse { tries: 6, .. },
            ..
        }
    )));
    assert!(sim
        .a
        .events
        .iter()
        .any(|e| matches!(e, Event::ChildSaDown { .. })));
    assert_eq!(sim.a.ep.ike_sa_count(), 0);
}

#[test]
fn create_child_sa_is_answered_with_no_additional_sas() {
    let mut sim = established_pair(29);
    let (info, id) = match &sim.a.events[0] {
        Event::IkeSaUp { info, id, .. } => (info.clone(), *id),
        other => panic!("{other:?}"),
    };
    let keys = sim.a.ep.ike_keys_for_tests(id).unwrap().clone();
    let a = info.algorithms;
    let (mut send, recv) =
        xrsec_crypto::IkeCrypto::pair(&keys, a.encr, a.integ, xrsec_crypto::Role::Initiator)
            .unwrap();
    let header = wire::Header {
        spi_i: info.spi_i,
        spi_r: info.spi_r,
        next_payload: 0,
        major: 2,
        minor: 0,
        exchange: ExchangeType::CreateChildSa,
        flags: wire::Flags {
            initiator: true,
            version: false,
            response: false,
        },
        message_id: 2,
        length: 0,
    };
    let mut plain = Vec::new();
    let payloads = vec![
        Payload::Sa(wire::SaPayload {
            proposals: vec![wire::Proposal {
                number: 1,
                protocol: wire::ProtocolId::Esp,
                spi: vec![1, 2, 3, 4],
                transforms: vec![
                    wire::Transform::with_key_length(wire::TransformType::Encr, 20, 256),
                    wire::Transform::new(wire::TransformType::Esn, 0),
                ],
            }],
        }),
        Payload::Nonce(vec![7; 32]),
        Payload::TsI(wire::TsPayload {
            selectors: vec![wire::TrafficSelector::ipv4_any()],
        }),
        Payload::TsR(wire::TsPayload {
            selectors: vec![wire::TrafficSelector::ipv4_any()],
        }),
    ];
    let first = wire::emit_payloads(&payloads, &mut plain);
    let mut rng =
        <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
    let mut msg = wire::emit_encrypted_prefix(&header, first, send.sealed_len(plain.len()));
    let sealed = send.seal(&mut rng, &msg, &plain).unwrap();
    msg.extend_from_slice(&sealed);
    sim.b
        .ep
        .handle_datagram(sim.now, sa(B_ADDR, 500), sa(A_ADDR, 500), &msg);
    let answer = sim.b.ep.poll_transmit().expect("an answer");
    let parsed = Message::parse(&answer.payload).unwrap();
    assert!(parsed.header.flags.response);
    assert_eq!(parsed.header.message_id, 2);
    let enc = parsed.encrypted.unwrap();
    let inner = recv
        .open(enc.aad(&answer.payload), enc.sealed(&answer.payload))
        .unwrap();
    let inner = wire::parse_payloads(enc.first_inner, &inner).unwrap();
    assert!(
        matches!(&inner[..], [Payload::Notify(n)] if n.notify_type == notify::NO_ADDITIONAL_SAS),
        "{inner:?}"
    );
    // The established SA is untouched.
    sim.collect_only_events();
    assert_eq!(sim.b.child_sas().len(), 1);
    assert_eq!(sim.b.ep.sessions()[0].state, "READY");
}

#[test]
fn a_half_open_sa_times_out_after_30_seconds() {
    let (a, b) = tunnel_pair(b"secret");
    let mut sim = Sim::new(a, b, 30);
    // Lose every IKE_AUTH request.
    sim.mutate = Some(Box::new(|p: &mut Packet| {
        Message::parse(&p.payload).map_or(true, |m| m.header.exchange != ExchangeType::IkeAuth)
    }));
    sim.a.ep.initiate(sim.now, TunnelId(1));
    sim.step(Duration::from_secs(29));
    assert_eq!(sim.b.ep.ike_sa_count(), 1);
    assert_eq!(sim.b.ep.sessions()[0].state, "CONNECTING");
    sim.step(Duration::from_secs(2));
    assert_eq!(sim.b.ep.ike_sa_count(), 0);
    assert!(
        sim.b.failures()[0].contains("half-open"),
        "{:?}",
        sim.b.failures()
    );
}

#[test]
fn a_responder_under_load_asks_for_a_cookie_and_the_initiator_retries_with_it() {
    let (a, b) = tunnel_pair(b"secret");
    let ob = EndpointOptions {
        cookie_threshold: Some(0),
        ..Default::default()
    };
    let mut sim = Sim::with_options(vec![a], vec![b], 31, EndpointOptions::default(), ob);
    sim.handshake();
    assert_same_keys(&sim);
    let retry = Message::parse(&sim.a.sent[1].2).unwrap();
    // RFC 7296 2.6: the COOKIE notify is the first payload of the retry.
    assert!(matches!(&retry.payloads[0], Payload::Notify(n) if n.notify_type == notify::COOKIE));
}

#[test]
fn a_peer_identity_outside_match_identity_remote_is_refused() {
    let (a, mut b) = tunnel_pair(b"secret");
    b.remote_identity = vec![IdentityMatch::Fqdn("router9.example".into())];
    let mut sim = Sim::new(a, b, 32);
    sim.handshake();
    assert_eq!(
        sim.b.failures(),
        vec!["the peer identified as address 10.99.0.1, but `match identity remote` accepts only fqdn router9.example".to_string()]
    );
    assert!(sim.a.failures()[0].contains("authentication failed"));
    assert!(sim.a.child_sas().is_empty() && sim.b.child_sas().is_empty());
}

#[test]
fn fqdn_identities_are_sent_and_matched() {
    let (mut a, mut b) = tunnel_pair(b"secret");
    a.local_identity = xrsec_ike::Identity::Fqdn("router1.example".into());
    b.remote_identity = vec![IdentityMatch::Fqdn("ROUTER1.example".into())];
    let mut sim = Sim::new(a, b, 33);
    sim.handshake();
    assert_same_keys(&sim);
    assert_eq!(
        sim.b.ep.sessions()[0].remote_identity,
        Some(xrsec_ike::Identity::Fqdn("router1.example".into()))
    );
}

#[test]
fn a_forged_error_answer_to_ike_sa_init_does_not_stop_the_negotiation() {
    let (a, b) = tunnel_pair(b"secret");
    let mut sim = Sim::new(a, b, 34);
    sim.a.ep.initiate(sim.now, TunnelId(1));
    let request = sim.a.ep.poll_transmit().unwrap();
    let spi_i = Message::parse(&request.payload).unwrap().header.spi_i;
    // RFC 7296 2.21.1: an unauthenticated NO_PROPOSAL_CHOSEN from an attacker.
    let forged = forged_sa_init_answer(spi_i, notify::NO_PROPOSAL_CHOSEN, vec![]);
    sim.a
        .ep
        .handle_datagram(sim.now, request.local, request.remote, &forged);
    sim.send(request.local, request.remote, request.payload);
    sim.step(Duration::from_secs(30));
    assert!(sim.a.failures().is_empty(), "{:?}", sim.a.failures());
    assert_same_keys(&sim);
}

#[test]
fn an_esp_proposal_mismatch_keeps_the_ike_sa_and_reports_the_child_failure() {
    let (mut a, b) = tunnel_pair(b"secret");
    a.esp_suites = vec![EspSuite::new(Encr::AesCbc128, Some(IntegId::HmacSha1_96)).unwrap()];
    let mut sim = Sim::new(a, b, 35);
    sim.handshake();
    assert_eq!(sim.a.ike_up().len(), 1);
    assert_eq!(sim.b.ike_up().len(), 1);
    assert!(sim.a.child_sas().is_empty() && sim.b.child_sas().is_empty());
    assert_eq!(
        sim.b.failures(),
        vec!["no ESP proposal in common: peer offered AES-CBC-128/HMAC-SHA1-96/no ESN; we accept AES-GCM-16-256".to_string()]
    );
    assert!(
        sim.a.failures()[0].contains("none of our ESP proposals"),
        "{:?}",
        sim.a.failures()
    );
    assert_eq!(sim.a.ep.sessions()[0].state, "READY");
}

#[test]
fn the_initiator_offers_every_configured_proposal_in_order_and_the_responder_picks_one() {
    let (mut a, mut b) = tunnel_pair(b"secret");
    a.ike_proposals = vec![
        IkeProposalConfig {
            encr: vec![Encr::AesGcm16_128],
            integ: vec![],
            prf: vec![PrfId::HmacSha1],
            dh: vec![DhGroup::Ecp256],
        },
        IkeProposalConfig {
            encr: vec![Encr::AesCbc256, Encr::AesGcm16_256],
            integ: vec![IntegId::HmacSha2_512_256],
            prf: vec![PrfId::HmacSha2_512],
            dh: vec![DhGroup::Ecp256],
        },
    ];
    b.ike_proposals = vec![IkeProposalConfig {
        encr: vec![Encr::AesCbc256],
        integ: vec![IntegId::HmacSha2_512_256],
        prf: vec![PrfId::HmacSha2_512],
        dh: vec![DhGroup::Ecp256],
    }];
    let mut sim = Sim::new(a, b, 36);
    sim.handshake();
    let alg = sim.b.ep.sessions()[0].algorithms.unwrap();
    assert_eq!(
        (alg.encr, alg.integ),
        (Encr::AesCbc256, Some(IntegId::HmacSha2_512_256))
    );
    let reply = Message::parse(&sim.b.sent[0].2).unwrap();
    let Some(Payload::Sa(s)) = reply.payloads.first() else {
        panic!()
    };
    // Proposal 2 is the configured second proposal's CBC half.
    assert_eq!(s.proposals[0].number, 2);
    assert_same_keys(&sim);
}

#[test]
fn the_log_summarizes_every_message_sent_and_received() {
    let mut sim = established_pair(37);
    let mut lines = Vec::new();
    while let Some(l) = sim.a.ep.poll_log() {
        lines.push(l.text);
    }
    let mut b_lines = Vec::new();
    while let Some(l) = sim.b.ep.poll_log() {
        b_lines.push(l.text);
    }
    assert_eq!(
        lines,
        vec![
            "sent IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) ]",
            "received IKE_SA_INIT response 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) ]",
            "sent IKE_AUTH request 1 [ IDi N(INIT_CONTACT) AUTH SA TSi TSr ]",
            "received IKE_AUTH response 1 [ IDr AUTH SA TSi TSr ]",
        ]
    );
    assert_eq!(
        b_lines,
        vec![
            "received IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) ] from 10.99.0.1:500",
            "sent IKE_SA_INIT response 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) ]",
            "received IKE_AUTH request 1 [ IDi N(INIT_CONTACT) AUTH SA TSi TSr ]",
            "sent IKE_AUTH response 1 [ IDr AUTH SA TSi TSr ]",
        ]
    );
    // Replays and forgeries show up as ignored and dropped.
    let (src, dst, mut auth) = sim.a.sent[1].clone();
    auth[100] ^= 1;
    sim.b.ep.handle_datagram(sim.now, dst, src, &auth);
    let l = sim.b.ep.poll_log().unwrap();
    assert_eq!(
        l.text,
        "ignored IKE_AUTH request 1 [ SK ]: message ID outside the window (expected 2)"
    );
    auth[20..24].copy_from_slice(&2u32.to_be_bytes());
    sim.b.ep.handle_datagram(sim.now, dst, src, &auth);
    let l = sim.b.ep.poll_log().unwrap();
    assert_eq!(
        l.text,
        "dropped IKE_AUTH request 2 [ SK ]: integrity check failed"
    );
}

#[test]
fn deletes_crossing_each_other_end_both_sas_cleanly() {
    let mut sim = established_pair(38);
    let (ida, idb) = (sim.a.ike_up()[0], sim.b.ike_up()[0]);
    // A liveness check is in flight when A deletes: the DELETE waits for it.
    sim.a.ep.send_liveness_check(sim.now, ida);
    sim.a.ep.delete_ike_sa(sim.now, ida);
    sim.b.ep.delete_ike_sa(sim.now, idb);
    sim.step(Duration::from_secs(60));
    for events in [&sim.a.events, &sim.b.events] {
        let downs: Vec<&DownReason> = events
            .iter()
            .filter_map(|e| match e {
                Event::IkeSaDown { reason, .. } => Some(reason),
                _ => None,
            })
            .collect();
        assert_eq!(downs, vec![&DownReason::LocalDelete]);
    }
    let log = |ep: &mut xrsec_ike::Endpoint<_>| {
        let mut v = Vec::new();
        while let Some(l) = ep.poll_log() {
            v.push(l.text);
        }
        v
    };
    let (la, lb) = (log(&mut sim.a.ep), log(&mut sim.b.ep));
    assert_eq!(sim.a.ep.ike_sa_count(), 0, "{la:#?}");
    assert_eq!(sim.b.ep.ike_sa_count(), 0, "{lb:#?}");
    assert!(sim.a.ep.poll_timeout().is_none() && sim.b.ep.poll_timeout().is_none());
}
