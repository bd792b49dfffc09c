//! Every combination of the seed's IKE algorithms establishes, and both ends
//! derive the same IKE and Child SA keys: 5 ciphers x 4 integrity algorithms
//! (GCM without integrity), x 4 PRFs x groups 19, 20, 21 and 31.

mod sim;

use sim::*;
use xrsec_crypto::{DhGroup, Encr, EspSuite, IntegId, PrfId};
use xrsec_ike::IkeProposalConfig;

fn cipher_integrity_pairs() -> Vec<(Encr, Option<IntegId>)> {
    let mut v = Vec::new();
    for e in Encr::ALL {
        if e.is_aead() {
            v.push((e, None));
        } else {
            for i in IntegId::ALL {
                v.push((e, Some(i)));
            }
        }
    }
    v
}

fn establish(encr: Encr, integ: Option<IntegId>, prf: PrfId, dh: DhGroup, seed: u64) {
    let (mut a, mut b) = tunnel_pair(b"matrix");
    let p = IkeProposalConfig {
        encr: vec![encr],
        integ: integ.into_iter().collect(),
        prf: vec![prf],
        dh: vec![dh],
    };
    a.ike_proposals = vec![p.clone()];
    b.ike_proposals = vec![p];
    // The Child SA uses the same cipher and integrity, so ESP keys of every
    // length are checked too.
    let suite = EspSuite::new(encr, integ).unwrap();
    a.esp_suites = vec![suite];
    b.esp_suites = vec![suite];
    let mut sim = Sim::new(a, b, seed);
    sim.handshake();
    let what = format!("{encr}/{integ:?}/{prf}/{dh}");
    assert!(
        sim.a.failures().is_empty() && sim.b.failures().is_empty(),
        "{what}: {:?} {:?}",
        sim.a.failures(),
        sim.b.failures()
    );
    assert_eq!(sim.a.child_sas().len(), 1, "{what}");
    assert_same_keys(&sim);
    let info = sim.a.ep.sessions();
    let alg = info[0].algorithms.unwrap();
    assert_eq!(
        (alg.encr, alg.integ, alg.prf, alg.dh),
        (encr, integ, prf, dh),
        "{what}"
    );
}

fn run_group(dh: DhGroup) {
    let mut seed = u64::from(dh.iana()) << 16;
    for (encr, integ) in cipher_integrity_pairs() {
        for prf in PrfId::ALL {
            seed += 1;
            establish(encr, integ, prf, dh, seed);
        }
    }
}

#[test]
fn every_cipher_integrity_and_prf_establishes_with_group_19() {
    run_group(DhGroup::Ecp256);
}

#[test]
fn every_cipher_integrity_and_prf_establishes_with_group_20() {
    run_group(DhGroup::Ecp384);
}

#[test]
fn every_cipher_integrity_and_prf_establishes_with_group_21() {
    run_group(DhGroup::Ecp521);
}

#[test]
fn every_cipher_integrity_and_prf_establishes_with_group_31() {
    run_group(DhGroup::Curve25519);
}
