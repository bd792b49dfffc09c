//! `Endpoint::export_ike_keys` (for `--save-keys`): the exported keys are
//! the ones on the wire, shown by decrypting captured IKE_AUTH messages with
//! nothing but the export and xrsec-crypto's SK payload code.

mod sim;

use std::time::Duration;

use sim::*;
use xrsec_crypto::{DhGroup, Encr, IkeCrypto, IntegId, PrfId};
use xrsec_ike::wire::{self, ExchangeType, IdType, Message, Payload};
use xrsec_ike::{IkeKeyExport, IkeProposalConfig, TunnelId};

/// Opens the SK payload of a captured datagram with one direction's keys
/// from an export, as Wireshark would.
fn decrypt(
    datagram: &[u8],
    encr: Encr,
    integ: Option<IntegId>,
    sk_e: &xrsec_crypto::SecretBytes,
    sk_a: &xrsec_crypto::SecretBytes,
) -> Vec<Payload> {
    let msg = Message::parse(datagram).expect("a valid IKE message");
    let enc = msg.encrypted.expect("an SK payload");
    let crypto = IkeCrypto::new(encr, integ, sk_e, sk_a).expect("usable keys");
    let plain = crypto
        .open(enc.aad(datagram), enc.sealed(datagram))
        .expect("the exported keys open the message");
    wire::parse_payloads(enc.first_inner, &plain).expect("inner payloads parse")
}

fn sent_ike_auth(
    sent: &[(std::net::SocketAddr, std::net::SocketAddr, Vec<u8>)],
    response: bool,
) -> Vec<u8> {
    sent.iter()
        .map(|(_, _, d)| d)
        .find(|d| {
            Message::parse(d).is_ok_and(|m| {
                m.header.exchange == ExchangeType::IkeAuth && m.header.flags.response == response
            })
        })
        .expect("an IKE_AUTH message was sent")
        .clone()
}

fn exported_keys_open_both_ike_auth_messages(proposal: IkeProposalConfig, seed: u64) {
    let (mut a, mut b) = tunnel_pair(b"secret");
    a.ike_proposals = vec![proposal.clone()];
    b.ike_proposals = vec![proposal];
    let mut sim = Sim::new(a, b, seed);
    sim.handshake();
    let (ida, idb) = (sim.a.ike_up()[0], sim.b.ike_up()[0]);
    let ka: IkeKeyExport = sim.a.ep.export_ike_keys(ida).expect("A's keys");
    let kb = sim.b.ep.export_ike_keys(idb).expect("B's keys");
    assert_eq!(ka, kb, "both ends export the same keys");

    let request = sent_ike_auth(&sim.a.sent, false);
    let header = Message::parse(&request).unwrap().header;
    assert_eq!((header.spi_i, header.spi_r), (ka.spi_i, ka.spi_r));
    // RFC 7296 2.14: the initiator's messages are protected with SK_ei/SK_ai.
    let inner = decrypt(&request, ka.encr, ka.integ, &ka.sk_ei, &ka.sk_ai);
    let idi = inner.iter().find_map(|p| match p {
        Payload::IdI(id) => Some(id),
        _ => None,
    });
    let idi = idi.expect("IDi inside the IKE_AUTH request");
    assert_eq!(idi.id_type, IdType::Ipv4Addr);
    assert_eq!(idi.data, A_ADDR.octets());
    assert!(inner.iter().any(|p| matches!(p, Payload::Auth(_))));

    // ... and the responder's with SK_er/SK_ar.
    let response = sent_ike_auth(&sim.b.sent, true);
    let inner = decrypt(&response, kb.encr, kb.integ, &kb.sk_er, &kb.sk_ar);
    assert!(
        inner
            .iter()
            .any(|p| matches!(p, Payload::IdR(id) if id.data == B_ADDR.octets())),
        "{inner:?}"
    );
    // The wrong direction's keys do not open it.
    let crypto = IkeCrypto::new(ka.encr, ka.integ, &ka.sk_ei, &ka.sk_ai).unwrap();
    let msg = Message::parse(&response).unwrap();
    let enc = msg.encrypted.unwrap();
    assert!(crypto
        .open(enc.aad(&response), enc.sealed(&response))
        .is_err());

    // Printing the export shows lengths, never key bytes.
    let shown = format!("{ka:?}");
    let hex: String = ka.sk_ei.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!shown.contains(&hex) && shown.contains("bytes)"), "{shown}");
}

#[test]
fn exported_aes_gcm_keys_decrypt_the_captured_ike_auth_exchange() {
    let p = IkeProposalConfig {
        encr: vec![Encr::AesGcm16_256],
        integ: vec![],
        prf: vec![PrfId::HmacSha2_256],
        dh: vec![DhGroup::Ecp256],
    };
    exported_keys_open_both_ike_auth_messages(p, 90);
}

#[test]
fn exported_aes_cbc_and_hmac_keys_decrypt_the_captured_ike_auth_exchange() {
    let p = IkeProposalConfig {
        encr: vec![Encr::AesCbc256],
        integ: vec![IntegId::HmacSha2_256_128],
        prf: vec![PrfId::HmacSha2_384],
        dh: vec![DhGroup::Ecp384],
    };
    exported_keys_open_both_ike_auth_messages(p, 91);
}

#[test]
fn gcm_exports_carry_the_salt_in_sk_e_and_empty_integrity_keys() {
    let (a, b) = tunnel_pair(b"secret");
    let mut sim = Sim::new(a, b, 92);
    sim.handshake();
    let k = sim.a.ep.export_ike_keys(sim.a.ike_up()[0]).unwrap();
    assert_eq!((k.encr, k.integ), (Encr::AesGcm16_256, None));
    // RFC 5282 7.1: 32 key bytes and a 4-byte salt.
    assert_eq!((k.sk_ei.len(), k.sk_er.len()), (36, 36));
    assert!(k.sk_ai.is_empty() && k.sk_ar.is_empty());
    assert_ne!(k.sk_ei, k.sk_er);
}

#[test]
fn there_are_no_keys_to_export_before_ike_sa_init_completes_or_after_the_sa_is_gone() {
    let (a, b) = tunnel_pair(b"secret");
    let mut sim = Sim::new(a, b, 93);
    sim.loss = 1.0;
    sim.a.ep.initiate(sim.now, TunnelId(1));
    let id = sim.a.ep.sessions()[0].id;
    assert!(sim.a.ep.export_ike_keys(id).is_none());
    sim.step(Duration::from_secs(120));
    assert_eq!(sim.a.ep.ike_sa_count(), 0);
    assert!(sim.a.ep.export_ike_keys(id).is_none());
}
