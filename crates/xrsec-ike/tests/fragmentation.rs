//! IKE fragmentation (RFC 7383) between two endpoints in the simulator:
//! negotiation, messages cut to the fragment size, loss, duplication and
//! reordering of fragments, forged fragments, a flood that must stay within
//! the reassembly bounds, a peer without fragmentation; and the SKF payload's
//! bytes.
//!
//! PSK IKE_AUTH messages are about 230 bytes as IP datagrams, so the tests
//! set a fragment size of 200 (or less) to make them fragment.

mod sim;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sim::*;
use xrsec_crypto::{DhGroup, Encr, EspSuite, IkeCrypto, IntegId, PrfId, Role};
use xrsec_ike::wire::{
    emit_fragment_prefix, notify, ExchangeType, Flags, FragmentInfo, Header, Message, Payload,
    WireError,
};
use xrsec_ike::{
    EndpointOptions, Event, FailureReason, IkeProposalConfig, IkeSaId, SessionInfo, TunnelConfig,
    TunnelId,
};

/// IPv4 and UDP headers: what a datagram adds to an IKE message on port 500.
const IP_UDP: usize = 28;
const SMALL: u16 = 200;

fn sized(fragment_size: u16) -> EndpointOptions {
    EndpointOptions {
        fragment_size,
        ..opts()
    }
}

fn without_fragmentation() -> EndpointOptions {
    EndpointOptions {
        fragmentation: false,
        fragment_size: SMALL,
        ..opts()
    }
}

fn pair_with(oa: EndpointOptions, ob: EndpointOptions, seed: u64) -> Sim {
    let (a, b) = tunnel_pair(b"fragments");
    Sim::with_options(vec![a], vec![b], seed, oa, ob)
}

fn cbc(t: &mut TunnelConfig) {
    t.ike_proposals = vec![IkeProposalConfig {
        encr: vec![Encr::AesCbc128],
        integ: vec![IntegId::HmacSha1_96],
        prf: vec![PrfId::HmacSha2_256],
        dh: vec![DhGroup::Curve25519],
    }];
    t.esp_suites = vec![EspSuite::new(Encr::AesCbc256, Some(IntegId::HmacSha2_256_128)).unwrap()];
}

fn fragment_info(datagram: &[u8]) -> Option<FragmentInfo> {
    Message::parse(datagram).ok()?.encrypted?.fragment
}

/// The fragments among `sent`, in order, with their exchange.
fn fragments(sent: &[(SocketAddr, SocketAddr, Vec<u8>)]) -> Vec<(ExchangeType, FragmentInfo)> {
    sent.iter()
        .filter_map(|(_, _, d)| {
            let m = Message::parse(d).ok()?;
            Some((m.header.exchange, m.encrypted?.fragment?))
        })
        .collect()
}

fn offers_fragmentation(datagram: &[u8]) -> bool {
    let m = Message::parse(datagram).unwrap();
    assert_eq!(m.header.exchange, ExchangeType::IkeSaInit);
    m.payloads.iter().any(|p| {
        matches!(p, Payload::Notify(n)
            if n.notify_type == notify::IKEV2_FRAGMENTATION_SUPPORTED && n.data.is_empty())
    })
}

fn log(ep: &mut xrsec_ike::Endpoint<ChaCha20Rng>) -> Vec<String> {
    let mut v = Vec::new();
    while let Some(l) = ep.poll_log() {
        v.push(l.text);
    }
    v
}

fn session(sessions: Vec<SessionInfo>) -> SessionInfo {
    sessions.into_iter().next().expect("one IKE SA")
}

fn ike_auth_is_fragmented_both_ways(configure: impl Fn(&mut TunnelConfig), seed: u64) {
    let (mut a, mut b) = tunnel_pair(b"fragments");
    configure(&mut a);
    configure(&mut b);
    let mut sim = Sim::with_options(vec![a], vec![b], seed, sized(SMALL), sized(SMALL));
    sim.handshake();
    assert_eq!(sim.a.ike_up().len(), 1);
    assert_eq!(sim.b.ike_up().len(), 1);
    assert_same_keys(&sim);

    // RFC 7383 2.3: both IKE_SA_INIT messages carry the notify.
    assert!(offers_fragmentation(&sim.a.sent[0].2));
    assert!(offers_fragmentation(&sim.b.sent[0].2));
    for sent in [&sim.a.sent, &sim.b.sent] {
        // IKE_SA_INIT is never cut, whatever its size.
        assert!(fragment_info(&sent[0].2).is_none());
        assert!(sent[0].2.len() + IP_UDP > usize::from(SMALL));
        let frags = fragments(sent);
        let total = frags.len();
        assert!(total >= 2, "IKE_AUTH went in {total} fragment(s)");
        assert_eq!(sent.len(), 1 + total, "exactly one transmission");
        for (i, (exchange, info)) in frags.iter().enumerate() {
            assert_eq!(*exchange, ExchangeType::IkeAuth);
            assert_eq!(usize::from(info.number), i + 1);
            assert_eq!(usize::from(info.total), total);
        }
        let sizes: Vec<usize> = sent[1..].iter().map(|(_, _, d)| d.len() + IP_UDP).collect();
        assert!(sizes.iter().all(|&s| s <= usize::from(SMALL)), "{sizes:?}");
        // The fragments use the room: the first is within a cipher block
        // of the limit.
        assert!(sizes[0] > usize::from(SMALL) - 16, "{sizes:?}");
        // RFC 7383 2.5: only fragment 1 names the first inner payload.
        let next: Vec<u8> = sent[1..]
            .iter()
            .map(|(_, _, d)| Message::parse(d).unwrap().encrypted.unwrap().first_inner)
            .collect();
        assert_ne!(next[0], 0);
        assert!(next[1..].iter().all(|&n| n == 0), "{next:?}");
    }
    let la = log(&mut sim.a.ep);
    let lb = log(&mut sim.b.ep);
    assert!(
        la.iter()
            .any(|l| l.starts_with("sent IKE_AUTH request 1 [ IDi") && l.contains(" fragments")),
        "{la:#?}"
    );
    assert!(
        la.iter().any(|l| l
            .starts_with("received IKE_AUTH response 1 [ IDr AUTH SA TSi TSr ] (reassembled from")),
        "{la:#?}"
    );
    assert!(
        lb.iter().any(|l| l.starts_with(
            "received IKE_AUTH request 1 [ IDi N(INIT_CONTACT) AUTH SA TSi TSr ] (reassembled from"
        )),
        "{lb:#?}"
    );

    // Small messages stay whole: a liveness check goes in one SK payload.
    let (ida, idb) = (sim.a.ike_up()[0], sim.b.ike_up()[0]);
    let before = (sim.a.sent.len(), sim.b.sent.len());
    sim.a.ep.send_liveness_check(sim.now, ida);
    sim.b.ep.send_liveness_check(sim.now, idb);
    sim.step(Duration::from_secs(2));
    let alive = |e: &[Event]| {
        e.iter()
            .filter(|e| matches!(e, Event::PeerAlive { .. }))
            .count()
    };
    assert_eq!((alive(&sim.a.events), alive(&sim.b.events)), (1, 1));
    for (sent, from) in [(&sim.a.sent, before.0), (&sim.b.sent, before.1)] {
        assert_eq!(sent.len() - from, 2);
        assert!(fragments(&sent[from..]).is_empty());
    }
}

#[test]
fn ike_auth_request_and_response_are_fragmented_with_gcm_and_the_sa_comes_up() {
    ike_auth_is_fragmented_both_ways(|_| {}, 1);
}

#[test]
fn ike_auth_request_and_response_are_fragmented_with_cbc_and_the_sa_comes_up() {
    ike_auth_is_fragmented_both_ways(cbc, 2);
}

/// The plaintext a fragment carries at least, however small the fragment
/// size (`MIN_FRAGMENT_PLAINTEXT` in `src/sa.rs`).
const MIN_PIECE: usize = 64;
// Before the sealed bytes: the IKE header and the SK/SKF generic header
// (`wire::HEADER_LEN`, `wire::GENERIC_HEADER_LEN`).
const IKE_HEADER: usize = xrsec_ike::wire::HEADER_LEN;
const GENERIC_HEADER: usize = xrsec_ike::wire::GENERIC_HEADER_LEN;
/// Fragment Number and Total Fragments, after the SKF generic header.
const FRAGMENT_NUMBERS: usize = 4;

/// The plaintext length that `crypto` seals into `sealed` bytes (exact for
/// GCM, the default suite: no padding).
fn plain_len(crypto: &IkeCrypto, sealed: usize) -> usize {
    let fits: Vec<usize> = (0..=sealed)
        .filter(|&p| crypto.sealed_len(p) == sealed)
        .collect();
    let [p] = fits[..] else {
        panic!("{sealed} sealed bytes: plaintext lengths {fits:?}");
    };
    p
}

/// Checks that `sent` (IKE_SA_INIT, then one IKE_AUTH message in
/// fragments) cut the message whose unfragmented datagram is `whole` into
/// pieces of `MIN_PIECE` bytes of plaintext, not into what `fragment_size`
/// would allow.
fn assert_cut_into_minimum_pieces(
    who: &str,
    sent: &[(SocketAddr, SocketAddr, Vec<u8>)],
    whole: &[u8],
    crypto: &IkeCrypto,
    fragment_size: u16,
) {
    let whole_msg = Message::parse(whole).unwrap();
    assert_eq!(whole_msg.header.exchange, ExchangeType::IkeAuth, "{who}");
    assert!(whole_msg.encrypted.unwrap().fragment.is_none(), "{who}");
    let message = plain_len(crypto, whole.len() - IKE_HEADER - GENERIC_HEADER);

    let frags = fragments(sent);
    let n = frags.len();
    assert!(n >= 2, "{who}: IKE_AUTH went in {n} fragment(s)");
    assert_eq!(sent.len(), 1 + n, "{who}: one transmission of IKE_AUTH");
    for (i, (exchange, info)) in frags.iter().enumerate() {
        assert_eq!(*exchange, ExchangeType::IkeAuth, "{who}");
        assert_eq!(usize::from(info.number), i + 1, "{who}");
        assert_eq!(usize::from(info.total), n, "{who}");
    }
    let lens: Vec<usize> = sent[1..].iter().map(|(_, _, d)| d.len()).collect();
    let pieces: Vec<usize> = lens
        .iter()
        .map(|&l| plain_len(crypto, l - IKE_HEADER - GENERIC_HEADER - FRAGMENT_NUMBERS))
        .collect();
    // All but the last fragment are the same datagram, larger than the
    // fragment size allows: the minimum piece decided, not the size.
    let (last, full) = lens.split_last().unwrap();
    assert!(full.iter().all(|l| l == &lens[0]), "{who}: {lens:?}");
    assert!(last <= &lens[0], "{who}: {lens:?}");
    assert!(
        lens[0] + IP_UDP > usize::from(fragment_size),
        "{who}: {lens:?} fit the fragment size {fragment_size}"
    );
    // Each carries exactly the minimum, the last what remains; together
    // the message, in as many fragments as the minimum piece implies.
    let (rest, full_pieces) = pieces.split_last().unwrap();
    assert!(
        full_pieces.iter().all(|&p| p == MIN_PIECE),
        "{who}: pieces {pieces:?}"
    );
    assert!((1..=MIN_PIECE).contains(rest), "{who}: pieces {pieces:?}");
    assert_eq!(pieces.iter().sum::<usize>(), message, "{who}: {pieces:?}");
    assert_eq!(n, message.div_ceil(MIN_PIECE), "{who}: {pieces:?}");
}

#[test]
fn a_tiny_fragment_size_still_fragments_with_at_least_the_minimum_piece() {
    const TINY: u16 = 100;
    // The same negotiation with the default size, whose IKE_AUTH messages
    // go whole: their size is the messages' size.
    let mut whole = pair_with(opts(), opts(), 3);
    whole.handshake();
    assert_eq!(whole.a.sent.len(), 2);
    assert_eq!(whole.b.sent.len(), 2);

    let mut sim = pair_with(sized(TINY), sized(TINY), 3);
    sim.handshake();
    assert_eq!(sim.a.ike_up().len(), 1);
    assert_eq!(sim.b.ike_up().len(), 1);
    assert_same_keys(&sim);
    // Both directions use the negotiated algorithms: A's sealing sizes
    // are B's too.
    let crypto = Forger::new(&sim, sim.a.ike_up()[0]).send;
    // With that size, a fragment would have room for less than the minimum.
    let sealed_room = usize::from(TINY) - IP_UDP - IKE_HEADER - GENERIC_HEADER - FRAGMENT_NUMBERS;
    assert!(crypto.sealed_len(MIN_PIECE) > sealed_room);
    assert_cut_into_minimum_pieces("A", &sim.a.sent, &whole.a.sent[1].2, &crypto, TINY);
    assert_cut_into_minimum_pieces("B", &sim.b.sent, &whole.b.sent[1].2, &crypto, TINY);
}

/// Drops the first transmission of fragment `number` in each direction.
fn lose_first_copy_of_fragment(sim: &mut Sim, number: u16) -> Rc<RefCell<Vec<SocketAddr>>> {
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let seen = dropped.clone();
    sim.mutate = Some(Box::new(move |p: &mut Packet| {
        let hit = fragment_info(&p.payload).is_some_and(|i| i.number == number);
        if hit && !seen.borrow().contains(&p.src) {
            seen.borrow_mut().push(p.src);
            return false;
        }
        true
    }));
    dropped
}

#[test]
fn a_lost_fragment_each_way_is_recovered_by_retransmitting_every_fragment() {
    let mut sim = pair_with(sized(SMALL), sized(SMALL), 4);
    let dropped = lose_first_copy_of_fragment(&mut sim, 2);
    sim.handshake();
    assert_eq!(dropped.borrow().len(), 2, "one fragment lost each way");
    assert_eq!(sim.a.ike_up().len(), 1);
    assert_eq!(sim.b.ike_up().len(), 1);
    assert_same_keys(&sim);
    // A sent its request three times: the first lost fragment 2, the
    // second completed B's reassembly but B's answer lost its fragment 2,
    // the third made B resend its answer. Every time in full (RFC 7383
    // 2.6.1).
    let a = fragments(&sim.a.sent);
    let n = usize::from(a[0].1.total);
    assert_eq!(a.len(), 3 * n);
    // B answered twice in full: its fragment 1 brought the cached answer
    // back once; the other fragments of the retransmission did not (RFC
    // 7383 2.6.1), or B would have sent it n times.
    let b = fragments(&sim.b.sent);
    let m = usize::from(b[0].1.total);
    assert_eq!(b.len(), 2 * m);
}

#[test]
fn random_loss_duplication_and_reordering_of_fragments_still_establish_once() {
    for seed in 10..16 {
        let mut sim = pair_with(sized(120), sized(120), seed);
        sim.loss = 0.15;
        sim.dup = 0.3;
        sim.jitter = Duration::from_millis(40);
        sim.handshake();
        assert!(fragments(&sim.a.sent).len() >= 3, "seed {seed}");
        assert_eq!(sim.a.ike_up().len(), 1, "seed {seed}");
        assert_eq!(sim.b.ike_up().len(), 1, "seed {seed}");
        assert_same_keys(&sim);
    }
}

/// Starts a negotiation from A and keeps its IKE_AUTH fragments from B:
/// returns them with the addresses they went between.
fn capture_auth_request(sim: &mut Sim) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    let held = Rc::new(RefCell::new(Vec::new()));
    let sink = held.clone();
    sim.mutate = Some(Box::new(move |p: &mut Packet| {
        if fragment_info(&p.payload).is_some()
            && !Message::parse(&p.payload).unwrap().header.flags.response
        {
            sink.borrow_mut().push((p.src, p.dst, p.payload.clone()));
            return false;
        }
        true
    }));
    sim.a.ep.initiate(sim.now, TunnelId(1));
    sim.step(Duration::from_millis(100));
    sim.mutate = None;
    let v = held.borrow().clone();
    assert!(v.len() >= 3, "IKE_AUTH in {} fragments", v.len());
    v
}

/// Hands a datagram to B; returns what B sent.
fn to_b(sim: &mut Sim, d: &(SocketAddr, SocketAddr, Vec<u8>)) -> Vec<Vec<u8>> {
    sim.b.ep.handle_datagram(sim.now, d.1, d.0, &d.2);
    let mut out = Vec::new();
    while let Some(t) = sim.b.ep.poll_transmit() {
        out.push(t.payload);
    }
    while let Some(e) = sim.b.ep.poll_event() {
        sim.b.events.push(e);
    }
    out
}

#[test]
fn duplicated_and_reordered_fragments_are_reassembled_once() {
    let mut sim = pair_with(sized(140), sized(140), 5);
    let frags = capture_auth_request(&mut sim);
    let b_sa = session(sim.b.ep.sessions()).id;
    // Last to second, each twice: nothing to answer yet.
    for d in frags[1..].iter().rev() {
        assert!(to_b(&mut sim, d).is_empty());
        assert!(to_b(&mut sim, d).is_empty());
    }
    let (held, _) = sim.b.ep.reassembly_for_tests(b_sa).unwrap();
    assert_eq!(held, frags.len() - 1, "duplicates are not stored twice");
    // Fragment 1 completes the message: B answers once, in fragments.
    let answer = to_b(&mut sim, &frags[0]);
    assert!(answer.len() >= 2);
    assert!(answer.iter().all(|d| fragment_info(d).is_some()));
    assert_eq!(sim.b.ike_up(), vec![b_sa]);
    assert_eq!(sim.b.ep.reassembly_for_tests(b_sa), Some((0, 0)));
    // A retransmitted fragment other than 1 is ignored; fragment 1 brings
    // the same answer again (RFC 7383 2.6.1).
    assert!(to_b(&mut sim, &frags[1]).is_empty());
    assert_eq!(to_b(&mut sim, &frags[0]), answer);
    assert_eq!(sim.b.ike_up(), vec![b_sa]);
}

#[test]
fn a_fragment_with_a_bad_icv_is_dropped_and_does_not_poison_reassembly() {
    let mut sim = pair_with(sized(140), sized(140), 6);
    let frags = capture_auth_request(&mut sim);
    let b_sa = session(sim.b.ep.sessions()).id;
    // Fragment 2 with a flipped ciphertext byte, first.
    let mut flipped = frags[1].clone();
    let last = flipped.2.len() - 20;
    flipped.2[last] ^= 0x40;
    assert!(to_b(&mut sim, &flipped).is_empty());
    assert_eq!(sim.b.ep.reassembly_for_tests(b_sa), Some((0, 0)));
    // Fragment 2 claiming one fragment more than the message has: would
    // restart reassembly (RFC 7383 2.6) if it were believed.
    let mut more = frags[1].clone();
    let total = fragment_info(&more.2).unwrap().total;
    more.2[34..36].copy_from_slice(&(total + 1).to_be_bytes());
    assert_eq!(fragment_info(&more.2).unwrap().total, total + 1);
    assert!(to_b(&mut sim, &frags[0]).is_empty());
    assert_eq!(sim.b.ep.reassembly_for_tests(b_sa).unwrap().0, 1);
    assert!(to_b(&mut sim, &more).is_empty());
    assert!(to_b(&mut sim, &flipped).is_empty());
    assert_eq!(sim.b.ep.reassembly_for_tests(b_sa).unwrap().0, 1);
    // The genuine fragments complete the message.
    let mut answer = Vec::new();
    for d in &frags[1..] {
        answer = to_b(&mut sim, d);
    }
    assert!(!answer.is_empty(), "B answered");
    assert_eq!(sim.b.ike_up(), vec![b_sa]);
    let lb = log(&mut sim.b.ep);
    assert!(
        lb.iter()
            .any(|l| l.starts_with("dropped IKE_AUTH request 1 [ EF(2/")
                && l.ends_with("integrity check failed")),
        "{lb:#?}"
    );
    // A completes with B's answer: the SA is the same on both ends.
    let (a_addr, b_addr) = (frags[0].0, frags[0].1);
    for d in answer {
        sim.a.ep.handle_datagram(sim.now, a_addr, b_addr, &d);
    }
    sim.step(Duration::from_millis(100));
    assert_eq!(sim.a.ike_up().len(), 1);
    assert_same_keys(&sim);
}

/// Builds fragments of message `message_id` as A would send them to B on
/// the established SA: `total` fragments of `piece` bytes each, numbered
/// as listed, sealed with A's real keys.
struct Forger {
    send: IkeCrypto,
    spi_i: u64,
    spi_r: u64,
}

impl Forger {
    fn new(sim: &Sim, a_sa: IkeSaId) -> Self {
        let keys = sim.a.ep.ike_keys_for_tests(a_sa).unwrap();
        let s = session(sim.a.ep.sessions());
        let alg = s.algorithms.unwrap();
        let (send, _) = IkeCrypto::pair(keys, alg.encr, alg.integ, Role::Initiator).unwrap();
        Self {
            send,
            spi_i: s.spi_i,
            spi_r: s.spi_r,
        }
    }

    fn fragment(
        &mut self,
        rng: &mut ChaCha20Rng,
        message_id: u32,
        response: bool,
        info: FragmentInfo,
        piece: usize,
    ) -> Vec<u8> {
        let header = Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: 0,
            major: 2,
            minor: 0,
            exchange: ExchangeType::Informational,
            flags: Flags {
                initiator: true,
                version: false,
                response,
            },
            message_id,
            length: 0,
        };
        let plain = vec![0u8; piece];
        let mut d = emit_fragment_prefix(&header, 0, info, self.send.sealed_len(piece));
        let sealed = self.send.seal(rng, &d, &plain).unwrap();
        d.extend_from_slice(&sealed);
        d
    }
}

#[test]
fn a_flood_of_fragments_stays_within_the_bounds_and_leaves_the_sa_alone() {
    const MAX_BYTES: usize = 64 * 1024;
    let mut sim = pair_with(opts(), opts(), 7);
    sim.handshake();
    let (ida, idb) = (sim.a.ike_up()[0], sim.b.ike_up()[0]);
    let mut forger = Forger::new(&sim, ida);
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let (a_addr, b_addr) = (sim.a.sent[1].0, sim.a.sent[1].1);
    let events_before = (sim.a.events.len(), sim.b.events.len());
    let deliver = |sim: &mut Sim, d: &[u8]| {
        sim.b.ep.handle_datagram(sim.now, b_addr, a_addr, d);
        while sim.b.ep.poll_transmit().is_some() {}
        let held = sim.b.ep.reassembly_for_tests(idb).unwrap();
        assert!(held.0 <= 64 && held.1 <= MAX_BYTES, "{held:?}");
        held
    };

    // Authentic fragments of the next request (ID 2), 64 of 1200 bytes: the
    // message outgrows the byte bound and is discarded, never held whole.
    let mut peak = 0;
    let mut discarded = false;
    for number in 1..=64 {
        let d = forger.fragment(&mut rng, 2, false, FragmentInfo { number, total: 64 }, 1200);
        let held = deliver(&mut sim, &d);
        if held.1 < peak {
            discarded = true;
        }
        peak = peak.max(held.1);
    }
    assert!(peak > MAX_BYTES - 2 * 1300, "peak {peak}");
    assert!(discarded, "the reassembly was given up at the bound");
    assert!(log(&mut sim.b.ep)
        .iter()
        .any(|l| l.contains("outgrows the 65536 bytes of reassembly")));
    // More than 64 fragments: refused before anything is stored.
    let before = sim.b.ep.reassembly_for_tests(idb).unwrap();
    let d = forger.fragment(
        &mut rng,
        2,
        false,
        FragmentInfo {
            number: 1,
            total: 65,
        },
        100,
    );
    assert_eq!(deliver(&mut sim, &d), before);

    // Authentic fragments of other message IDs, requests and responses
    // alike: outside the window, never stored.
    let (start, _) = sim.b.ep.reassembly_for_tests(idb).unwrap();
    for _ in 0..300 {
        let id = rng.next_u32() | 4;
        let total = (rng.next_u32() % 64) as u16 + 1;
        let number = (rng.next_u32() % u32::from(total)) as u16 + 1;
        let response = rng.next_u32() % 2 == 0;
        let d = forger.fragment(&mut rng, id, response, FragmentInfo { number, total }, 500);
        assert_eq!(deliver(&mut sim, &d).0, start);
    }
    // Forged fragments (no keys) with random IDs and totals, ID 2 included.
    for i in 0..300 {
        let id = if i % 2 == 0 { 2 } else { rng.next_u32() };
        let mut d = forger.fragment(
            &mut rng,
            id,
            false,
            FragmentInfo {
                number: 1,
                total: (i % 64) as u16 + 1,
            },
            400,
        );
        let n = d.len();
        rng.fill_bytes(&mut d[40..n]);
        assert_eq!(deliver(&mut sim, &d).0, start);
    }

    // Half-sent messages are freed by the reassembly timeout: what the
    // flood left, and a new one.
    assert!(start > 0);
    let timeout = opts().reassembly_timeout + Duration::from_secs(1);
    sim.step(timeout);
    assert_eq!(sim.b.ep.reassembly_for_tests(idb), Some((0, 0)));
    let d = forger.fragment(
        &mut rng,
        2,
        false,
        FragmentInfo {
            number: 1,
            total: 2,
        },
        100,
    );
    assert_eq!(deliver(&mut sim, &d).0, 1);
    sim.step(timeout);
    assert_eq!(sim.b.ep.reassembly_for_tests(idb), Some((0, 0)));

    // The SA is as it was, and works both ways.
    for e in sim.a.events[events_before.0..]
        .iter()
        .chain(&sim.b.events[events_before.1..])
    {
        assert!(
            !matches!(e, Event::IkeSaDown { .. } | Event::ChildSaDown { .. }),
            "{e:?}"
        );
    }
    sim.a.ep.send_liveness_check(sim.now, ida);
    sim.b.ep.send_liveness_check(sim.now, idb);
    sim.step(Duration::from_secs(5));
    let alive = |e: &[Event]| {
        e.iter()
            .filter(|e| matches!(e, Event::PeerAlive { .. }))
            .count()
    };
    assert_eq!((alive(&sim.a.events), alive(&sim.b.events)), (1, 1));
}

#[test]
fn with_fragmentation_off_at_the_responder_messages_go_whole_and_the_sa_comes_up() {
    let mut sim = pair_with(sized(SMALL), without_fragmentation(), 8);
    sim.handshake();
    assert_same_keys(&sim);
    assert!(offers_fragmentation(&sim.a.sent[0].2));
    assert!(!offers_fragmentation(&sim.b.sent[0].2));
    assert!(fragments(&sim.a.sent).is_empty());
    assert!(fragments(&sim.b.sent).is_empty());
    assert!(sim.a.sent[1].2.len() + IP_UDP > usize::from(SMALL));
    let la = log(&mut sim.a.ep);
    assert!(
        la.iter().any(
            |l| l.starts_with("IKE_AUTH request 1 takes an IP datagram of")
                && l.contains("more than the fragment size 200")
                && l.contains("the peer does not support IKE fragmentation (RFC 7383)")
        ),
        "{la:#?}"
    );
    let lb = log(&mut sim.b.ep);
    assert!(
        lb.iter().any(|l| l.starts_with("IKE_AUTH response 1 takes")
            && l.contains("IKE fragmentation (RFC 7383) is disabled on this end")),
        "{lb:#?}"
    );
}

#[test]
fn with_fragmentation_off_at_the_initiator_the_notify_is_absent_both_ways() {
    let mut sim = pair_with(without_fragmentation(), sized(SMALL), 9);
    sim.handshake();
    assert_same_keys(&sim);
    assert!(!offers_fragmentation(&sim.a.sent[0].2));
    assert!(!offers_fragmentation(&sim.b.sent[0].2));
    assert!(fragments(&sim.a.sent).is_empty());
    assert!(fragments(&sim.b.sent).is_empty());
}

#[test]
fn a_fragment_on_an_sa_that_did_not_negotiate_fragmentation_is_dropped() {
    let mut sim = pair_with(without_fragmentation(), without_fragmentation(), 19);
    sim.handshake();
    let (ida, idb) = (sim.a.ike_up()[0], sim.b.ike_up()[0]);
    let mut forger = Forger::new(&sim, ida);
    let mut rng = ChaCha20Rng::seed_from_u64(19);
    let (a_addr, b_addr) = (sim.a.sent[1].0, sim.a.sent[1].1);
    let d = forger.fragment(
        &mut rng,
        2,
        false,
        FragmentInfo {
            number: 1,
            total: 2,
        },
        100,
    );
    sim.b.ep.handle_datagram(sim.now, b_addr, a_addr, &d);
    assert_eq!(sim.b.ep.reassembly_for_tests(idb), Some((0, 0)));
    assert!(log(&mut sim.b.ep)
        .iter()
        .any(|l| l.ends_with("IKE fragmentation was not negotiated (RFC 7383 2.3)")));
}

#[test]
fn default_options_offer_fragmentation_and_keep_a_psk_ike_auth_whole() {
    let mut sim = pair_with(opts(), opts(), 11);
    sim.handshake();
    assert_same_keys(&sim);
    assert!(opts().fragmentation);
    assert_eq!(opts().fragment_size, 1280);
    assert!(offers_fragmentation(&sim.a.sent[0].2));
    assert!(offers_fragmentation(&sim.b.sent[0].2));
    assert!(fragments(&sim.a.sent).is_empty());
    assert!(fragments(&sim.b.sent).is_empty());
}

/// A path that drops IP fragments: what exceeds `mtu` is lost. IKE_SA_INIT
/// is let through whatever its size, as where certificates make IKE_AUTH
/// the large message (here the PSK IKE_SA_INIT is the larger of the two).
fn drop_above(sim: &mut Sim, mtu: u16) {
    sim.mutate = Some(Box::new(move |p: &mut Packet| {
        let sa_init =
            Message::parse(&p.payload).unwrap().header.exchange == ExchangeType::IkeSaInit;
        sa_init || p.payload.len() + IP_UDP <= usize::from(mtu)
    }));
}

#[test]
fn an_unanswered_ike_auth_sent_whole_for_want_of_fragmentation_says_so() {
    let mut sim = pair_with(sized(SMALL), without_fragmentation(), 12);
    drop_above(&mut sim, SMALL);
    sim.handshake();
    assert!(sim.a.ike_up().is_empty());
    let reasons: Vec<&FailureReason> = sim
        .a
        .events
        .iter()
        .filter_map(|e| match e {
            Event::NegotiationFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    let [FailureReason::NoResponse {
        exchange: "IKE_AUTH",
        oversized: Some(o),
        ..
    }] = reasons[..]
    else {
        panic!("{reasons:?}");
    };
    assert!(o.bytes > usize::from(SMALL));
    assert_eq!(o.fragment_size, SMALL);
    assert!(!o.disabled_locally);
    let text = reasons[0].to_string();
    assert!(
        text.contains("no response to IKE_AUTH after 6 transmissions")
            && text.contains("more than the fragment size 200")
            && text.contains("the peer does not support IKE fragmentation (RFC 7383)")
            && text.contains("enable IKE fragmentation on the peer (`ikev2 fragmentation`"),
        "{text}"
    );

    // Off at the initiator instead: the cause and the fix are on this end.
    let mut sim = pair_with(
        EndpointOptions {
            fragment_size: SMALL,
            ..without_fragmentation()
        },
        sized(SMALL),
        12,
    );
    drop_above(&mut sim, SMALL);
    sim.handshake();
    let text = sim.a.failures().join("\n");
    assert!(
        text.contains("is disabled on this end")
            && text.contains("remove `no ikev2 fragmentation` from this router's configuration"),
        "{text}"
    );

    // Over the same path, with fragmentation on both ends, it works.
    let mut sim = pair_with(sized(SMALL), sized(SMALL), 12);
    drop_above(&mut sim, SMALL);
    sim.handshake();
    assert_eq!(sim.a.ike_up().len(), 1);
    assert_same_keys(&sim);
}

#[test]
fn fragmentation_turned_on_at_run_time_is_offered_by_the_next_ike_sa() {
    let mut sim = pair_with(without_fragmentation(), sized(SMALL), 14);
    sim.a.ep.set_fragmentation(true, SMALL);
    assert!(sim.a.ep.options().fragmentation);
    assert_eq!(sim.a.ep.options().fragment_size, SMALL);
    drop_above(&mut sim, SMALL);
    sim.handshake();
    assert!(offers_fragmentation(&sim.a.sent[0].2));
    assert_eq!(sim.a.ike_up().len(), 1, "{:?}", sim.a.failures());
    assert!(!fragments(&sim.a.sent).is_empty());

    // And turned off: the next IKE SA's IKE_SA_INIT no longer offers it.
    let mut sim = pair_with(sized(SMALL), sized(SMALL), 15);
    sim.a.ep.set_fragmentation(false, SMALL);
    sim.handshake();
    assert!(!offers_fragmentation(&sim.a.sent[0].2));
}

#[test]
fn an_unanswered_small_ike_auth_gives_no_fragmentation_hint() {
    let mut sim = pair_with(opts(), opts(), 13);
    // Only IKE_SA_INIT gets through.
    sim.mutate = Some(Box::new(|p: &mut Packet| {
        Message::parse(&p.payload).unwrap().header.exchange == ExchangeType::IkeSaInit
    }));
    sim.handshake();
    let text = sim.a.failures().join("\n");
    assert!(text.contains("no response to IKE_AUTH"), "{text}");
    assert!(!text.contains("fragment"), "{text}");
}

// ---- the SKF payload on the wire (RFC 7383 2.5) -------------------------

fn skf_header() -> Header {
    Header {
        spi_i: 0x0102_0304_0506_0708,
        spi_r: 0x1112_1314_1516_1718,
        next_payload: 53,
        major: 2,
        minor: 0,
        exchange: ExchangeType::IkeAuth,
        flags: Flags {
            initiator: true,
            version: false,
            response: false,
        },
        message_id: 1,
        length: 72,
    }
}

/// Fragment 2 of 3 of an IKE_AUTH request: IKE header, SKF header (Next
/// Payload 0 after fragment 1), Fragment Number, Total Fragments, then 36
/// sealed bytes (an 8-byte IV, 12 of ciphertext, a 16-byte ICV).
const FRAGMENT_2_OF_3: [u8; 72] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // SPIi
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, // SPIr
    53, 0x20, 35, 0x08, // SKF, 2.0, IKE_AUTH, Initiator
    0, 0, 0, 1, // Message ID
    0, 0, 0, 72, // Length
    0, 0, 0, 44, // Next Payload 0, not critical, Payload Length 8 + 36
    0, 2, 0, 3, // Fragment Number 2, Total Fragments 3
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, // IV
    0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, // ciphertext
    0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, // ICV
    0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
];

#[test]
fn parses_a_non_first_skf_fragment_with_its_numbers_and_associated_data() {
    let m = Message::parse(&FRAGMENT_2_OF_3).unwrap();
    assert_eq!(m.header, skf_header());
    assert!(m.payloads.is_empty());
    let e = m.encrypted.unwrap();
    assert_eq!(e.first_inner, 0);
    assert_eq!(
        e.fragment,
        Some(FragmentInfo {
            number: 2,
            total: 3
        })
    );
    // RFC 7383 2.5: the associated data runs through Total Fragments.
    assert_eq!(e.aad_len, 36);
    assert_eq!(e.aad(&FRAGMENT_2_OF_3), &FRAGMENT_2_OF_3[..36]);
    assert_eq!(e.sealed(&FRAGMENT_2_OF_3), &FRAGMENT_2_OF_3[36..]);
    assert_eq!(m.summary(), "IKE_AUTH request 1 [ EF(2/3) ]");
}

#[test]
fn emits_the_skf_prefix_byte_exact_with_next_payload_only_in_fragment_one() {
    let info = FragmentInfo {
        number: 2,
        total: 3,
    };
    // The first inner payload's type (IDi, 35) is not written in fragment 2.
    let prefix = emit_fragment_prefix(&skf_header(), 35, info, 36);
    assert_eq!(prefix, FRAGMENT_2_OF_3[..36]);
    let first = emit_fragment_prefix(
        &skf_header(),
        35,
        FragmentInfo {
            number: 1,
            total: 3,
        },
        36,
    );
    assert_eq!(first[28], 35);
    assert_eq!(&first[32..36], &[0, 1, 0, 3]);
    assert_eq!(first[..28], prefix[..28]);
}

#[test]
fn rejects_skf_fragments_numbered_zero_beyond_their_total_or_cut_short() {
    for (number, total) in [(0u16, 3u16), (4, 3), (0, 0), (1, 0)] {
        let mut d = FRAGMENT_2_OF_3;
        d[32..34].copy_from_slice(&number.to_be_bytes());
        d[34..36].copy_from_slice(&total.to_be_bytes());
        assert!(
            matches!(Message::parse(&d), Err(WireError::Malformed { .. })),
            "{number}/{total}"
        );
    }
    // An SKF payload too short for its Fragment Number and Total Fragments.
    let mut short = FRAGMENT_2_OF_3[..28].to_vec();
    short[27] = 34;
    short.extend_from_slice(&[0, 0, 0, 6, 0, 2]);
    assert!(matches!(
        Message::parse(&short),
        Err(WireError::Truncated { .. })
    ));
}
