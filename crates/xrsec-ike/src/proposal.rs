//! SA payloads: building our offers, choosing from a peer's (RFC 7296 2.7),
//! and checking a peer's choice from ours.
//!
//! Invariants: a choice has exactly one transform of each type it needs, all
//! implemented by xrsec-crypto, and carries the peer's proposal number
//! unchanged (RFC 7296 3.3.1: the responder's proposal number MUST match the
//! one it accepted). Preference follows the initiator's order (its proposals,
//! then its transforms within each), restricted to what our configuration
//! allows, except that the DH group of the KE payload already sent wins when
//! acceptable, which saves an INVALID_KE_PAYLOAD round trip.

use xrsec_crypto::{DhGroup, Encr, EspSuite, IntegId, PrfId};

use crate::config::IkeProposalConfig;
use crate::wire::{Proposal, ProtocolId, SaPayload, Transform, TransformType};

/// ESN transform IDs (RFC 7296 3.3.2).
const ESN_NO: u16 = 0;
const ESN_YES: u16 = 1;
/// "NONE" for integrity and DH (RFC 7296 3.3.2).
const NONE: u16 = 0;

/// The algorithms of an IKE SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IkeAlgorithms {
    /// Encryption.
    pub encr: Encr,
    /// Integrity; `None` with an AEAD cipher.
    pub integ: Option<IntegId>,
    /// Pseudo-random function.
    pub prf: PrfId,
    /// Diffie-Hellman group.
    pub dh: DhGroup,
}

impl std::fmt::Display for IkeAlgorithms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.encr)?;
        if let Some(i) = self.integ {
            write!(f, "/{i}")?;
        }
        write!(f, "/{}/{}", self.prf, self.dh)
    }
}

fn encr_transform(e: Encr) -> Transform {
    Transform::with_key_length(TransformType::Encr, e.iana(), e.key_bits())
}

/// Our IKE offer. A configured proposal mixing AEAD and CBC ciphers becomes
/// two wire proposals (RFC 5282 8: AEAD and non-AEAD transforms cannot share
/// one), the AEAD one first when the configuration lists an AEAD cipher first.
pub(crate) fn ike_offer(proposals: &[IkeProposalConfig]) -> SaPayload {
    let mut out = Vec::new();
    for p in proposals {
        let aead: Vec<Encr> = p.encr.iter().copied().filter(|e| e.is_aead()).collect();
        let cbc: Vec<Encr> = p.encr.iter().copied().filter(|e| !e.is_aead()).collect();
        let mut groups: Vec<(bool, Vec<Encr>)> = vec![(true, aead), (false, cbc)];
        if p.encr.first().is_some_and(|e| !e.is_aead()) {
            groups.reverse();
        }
        for (is_aead, encrs) in groups {
            if encrs.is_empty() || (!is_aead && p.integ.is_empty()) {
                continue;
            }
            let mut transforms: Vec<Transform> = encrs.into_iter().map(encr_transform).collect();
            transforms.extend(
                p.prf
                    .iter()
                    .map(|x| Transform::new(TransformType::Prf, x.iana())),
            );
            if !is_aead {
                transforms.extend(
                    p.integ
                        .iter()
                        .map(|x| Transform::new(TransformType::Integ, x.iana())),
                );
            }
            transforms.extend(
                p.dh.iter()
                    .map(|x| Transform::new(TransformType::Dh, x.iana())),
            );
            out.push(Proposal {
                number: 0,
                protocol: ProtocolId::Ike,
                spi: Vec::new(),
                transforms,
            });
        }
    }
    number(out)
}

fn number(mut proposals: Vec<Proposal>) -> SaPayload {
    // RFC 7296 3.3.1: the first proposal is 1, each next one one more.
    for (i, p) in proposals.iter_mut().enumerate() {
        p.number = u8::try_from(i + 1).unwrap_or(u8::MAX);
    }
    proposals.truncate(usize::from(u8::MAX));
    SaPayload { proposals }
}

/// Our ESP offer for IKE_AUTH: one proposal per configured suite (so that
/// each cipher stays paired with its own integrity algorithm), each with our
/// inbound SPI and "no ESN" only.
pub(crate) fn esp_offer(suites: &[EspSuite], spi: u32) -> SaPayload {
    let proposals = suites
        .iter()
        .map(|s| {
            let mut transforms = vec![encr_transform(s.encr())];
            if let Some(i) = s.integ() {
                transforms.push(Transform::new(TransformType::Integ, i.iana()));
            }
            transforms.push(Transform::new(TransformType::Esn, ESN_NO));
            Proposal {
                number: 0,
                protocol: ProtocolId::Esp,
                spi: spi.to_be_bytes().to_vec(),
                transforms,
            }
        })
        .collect();
    number(proposals)
}

/// The transforms of one peer proposal, sorted by type, peer order kept.
#[derive(Default)]
struct Offered {
    encr: Vec<Encr>,
    integ: Vec<IntegId>,
    integ_none: bool,
    integ_any: bool,
    prf: Vec<PrfId>,
    dh: Vec<DhGroup>,
    esn: Vec<u16>,
    /// RFC 7296 3.3.6: a transform type we do not know makes the whole
    /// proposal unacceptable.
    unknown_type: bool,
}

fn sort_offer(p: &Proposal) -> Offered {
    let mut o = Offered::default();
    for t in &p.transforms {
        // RFC 7296 3.3.6: a transform with an attribute we do not understand
        // is not chosen.
        let usable = !t.unknown_attributes;
        match t.transform_type {
            TransformType::Encr => {
                if let Some(e) = t.key_length.and_then(|k| Encr::from_iana(t.id, k)) {
                    if usable {
                        o.encr.push(e);
                    }
                }
            }
            TransformType::Integ => {
                o.integ_any = true;
                if t.id == NONE {
                    o.integ_none = true;
                } else if let Some(i) = IntegId::from_iana(t.id) {
                    if usable {
                        o.integ.push(i);
                    }
                }
            }
            TransformType::Prf => {
                if let Some(x) = PrfId::from_iana(t.id) {
                    if usable {
                        o.prf.push(x);
                    }
                }
            }
            TransformType::Dh => {
                if let Some(g) = DhGroup::from_iana(t.id) {
                    if usable {
                        o.dh.push(g);
                    }
                }
            }
            TransformType::Esn => o.esn.push(t.id),
            _ => o.unknown_type = true,
        }
    }
    o
}

/// The responder's choice from an IKE_SA_INIT offer.
#[derive(Debug)]
pub(crate) enum IkeChoice {
    /// Acceptable, with the KE payload's group.
    Chosen {
        /// The reply proposal: one transform per type, the peer's number.
        reply: Proposal,
        algorithms: IkeAlgorithms,
    },
    /// Acceptable only with another group than the KE payload's: answer
    /// INVALID_KE_PAYLOAD naming this group (RFC 7296 1.2, 2.7).
    WrongGroup(DhGroup),
    /// Nothing acceptable: NO_PROPOSAL_CHOSEN.
    Nothing,
}

/// RFC 7296 2.7: choose a single proposal and one transform of each type
/// from the peer's IKE offer, given the group of its KE payload.
pub(crate) fn choose_ike(
    offer: &SaPayload,
    ours: &[IkeProposalConfig],
    ke_group: u16,
) -> IkeChoice {
    let mut wrong_group = None;
    for p in &offer.proposals {
        if p.protocol != ProtocolId::Ike {
            continue;
        }
        let o = sort_offer(p);
        // RFC 7296 3.3.3: IKE needs ENCR, PRF and D-H (INTEG unless AEAD);
        // ESN is not used with IKE.
        if o.unknown_type || !o.esn.is_empty() || o.encr.is_empty() || o.prf.is_empty() {
            continue;
        }
        for mine in ours {
            let Some((encr, integ)) = pick_cipher(&o, &mine.encr, &mine.integ) else {
                continue;
            };
            let Some(prf) = o.prf.iter().copied().find(|x| mine.prf.contains(x)) else {
                continue;
            };
            let ke =
                DhGroup::from_iana(ke_group).filter(|g| o.dh.contains(g) && mine.dh.contains(g));
            let dh = match ke {
                Some(g) => g,
                None => {
                    // Our preferred group among those the peer offers.
                    if let Some(g) = mine.dh.iter().copied().find(|g| o.dh.contains(g)) {
                        wrong_group.get_or_insert(g);
                    }
                    continue;
                }
            };
            let mut transforms = vec![
                encr_transform(encr),
                Transform::new(TransformType::Prf, prf.iana()),
            ];
            if let Some(i) = integ {
                transforms.push(Transform::new(TransformType::Integ, i.iana()));
            }
            transforms.push(Transform::new(TransformType::Dh, dh.iana()));
            return IkeChoice::Chosen {
                reply: Proposal {
                    number: p.number,
                    protocol: ProtocolId::Ike,
                    spi: Vec::new(),
                    transforms,
                },
                algorithms: IkeAlgorithms {
                    encr,
                    integ,
                    prf,
                    dh,
                },
            };
        }
    }
    match wrong_group {
        Some(g) => IkeChoice::WrongGroup(g),
        None => IkeChoice::Nothing,
    }
}

/// The first peer cipher we allow, with the integrity it needs: none for an
/// AEAD (the peer must then offer no integrity, or NONE), else the first peer
/// integrity transform we allow.
fn pick_cipher(o: &Offered, encrs: &[Encr], integs: &[IntegId]) -> Option<(Encr, Option<IntegId>)> {
    for &e in &o.encr {
        if !encrs.contains(&e) {
            continue;
        }
        if e.is_aead() {
            if !o.integ_any || o.integ_none {
                return Some((e, None));
            }
        } else if let Some(i) = o.integ.iter().copied().find(|i| integs.contains(i)) {
            return Some((e, Some(i)));
        }
    }
    None
}

/// The responder's choice of ESP proposal in IKE_AUTH.
#[derive(Clone, Debug)]
pub(crate) struct EspChoice {
    pub reply_template: Proposal,
    pub suite: EspSuite,
    pub esn: bool,
    /// The peer's inbound SPI: our outbound.
    pub peer_spi: u32,
}

impl EspChoice {
    /// The reply proposal carrying our own SPI.
    pub fn reply(&self, our_spi: u32) -> Proposal {
        let mut p = self.reply_template.clone();
        p.spi = our_spi.to_be_bytes().to_vec();
        p
    }
}

fn esp_spi(p: &Proposal) -> Option<u32> {
    let bytes: [u8; 4] = p.spi.as_slice().try_into().ok()?;
    // RFC 4303 2.1: SPI 0 is reserved and never used on the wire.
    Some(u32::from_be_bytes(bytes)).filter(|&s| s != 0)
}

/// RFC 7296 2.7 for the Child SA: the first peer proposal (in its order)
/// with a cipher/integrity pair we configured. Any DH transform is ignored
/// (IKE_AUTH carries no KE payload, RFC 7296 1.2). ESN: "no" preferred,
/// "yes" accepted; a proposal without an ESN transform counts as "no".
pub(crate) fn choose_esp(offer: &SaPayload, ours: &[EspSuite]) -> Option<EspChoice> {
    for p in &offer.proposals {
        if p.protocol != ProtocolId::Esp {
            continue;
        }
        let Some(peer_spi) = esp_spi(p) else { continue };
        let o = sort_offer(p);
        if o.unknown_type || !o.prf.is_empty() {
            continue;
        }
        let esn = if o.esn.is_empty() || o.esn.contains(&ESN_NO) {
            false
        } else if o.esn.contains(&ESN_YES) {
            true
        } else {
            continue;
        };
        for suite in ours {
            let encr_ok = o.encr.contains(&suite.encr());
            let integ_ok = match suite.integ() {
                Some(i) => o.integ.contains(&i),
                None => !o.integ_any || o.integ_none,
            };
            if !(encr_ok && integ_ok) {
                continue;
            }
            let mut transforms = vec![encr_transform(suite.encr())];
            if let Some(i) = suite.integ() {
                transforms.push(Transform::new(TransformType::Integ, i.iana()));
            }
            transforms.push(Transform::new(
                TransformType::Esn,
                if esn { ESN_YES } else { ESN_NO },
            ));
            return Some(EspChoice {
                reply_template: Proposal {
                    number: p.number,
                    protocol: ProtocolId::Esp,
                    spi: Vec::new(),
                    transforms,
                },
                suite: *suite,
                esn,
                peer_spi,
            });
        }
    }
    None
}

/// Why the responder's choice is not one we offered.
pub(crate) type BadChoice = &'static str;

/// RFC 7296 2.7: "the responder MUST choose a single suite"; the initiator
/// checks the reply is one proposal, numbered as one of ours, with one of
/// each transform type that proposal offered.
fn check_reply<'a>(
    offered: &'a SaPayload,
    reply: &'a SaPayload,
) -> Result<(&'a Proposal, &'a Proposal), BadChoice> {
    let [chosen] = reply.proposals.as_slice() else {
        return Err("the reply SA payload does not hold exactly one proposal");
    };
    let ours = offered
        .proposals
        .iter()
        .find(|p| p.number == chosen.number && p.protocol == chosen.protocol)
        .ok_or("the reply's proposal number or protocol is not one we offered")?;
    let mut seen: Vec<TransformType> = Vec::new();
    for t in &chosen.transforms {
        if seen.contains(&t.transform_type) {
            return Err("the reply holds two transforms of one type");
        }
        seen.push(t.transform_type);
        let offered_it = ours.transforms.iter().any(|o| {
            o.transform_type == t.transform_type && o.id == t.id && o.key_length == t.key_length
        });
        if !offered_it || t.unknown_attributes {
            return Err("the reply holds a transform we did not offer");
        }
    }
    Ok((ours, chosen))
}

fn only<T: Copy>(v: &[T]) -> Option<T> {
    match v {
        [x] => Some(*x),
        _ => None,
    }
}

/// Checks the responder's IKE_SA_INIT choice against our offer.
pub(crate) fn accept_ike_reply(
    offered: &SaPayload,
    reply: &SaPayload,
) -> Result<IkeAlgorithms, BadChoice> {
    let (_, chosen) = check_reply(offered, reply)?;
    let o = sort_offer(chosen);
    let encr = only(&o.encr).ok_or("the reply has no usable encryption transform")?;
    let prf = only(&o.prf).ok_or("the reply has no PRF")?;
    let dh = only(&o.dh).ok_or("the reply has no DH group")?;
    let integ = if encr.is_aead() {
        None
    } else {
        Some(only(&o.integ).ok_or("the reply has no integrity transform for a CBC cipher")?)
    };
    Ok(IkeAlgorithms {
        encr,
        integ,
        prf,
        dh,
    })
}

/// The initiator's view of the accepted ESP proposal.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EspAccepted {
    pub suite: EspSuite,
    pub esn: bool,
    pub peer_spi: u32,
}

/// Checks the responder's IKE_AUTH ESP choice against our offer.
pub(crate) fn accept_esp_reply(
    offered: &SaPayload,
    reply: &SaPayload,
) -> Result<EspAccepted, BadChoice> {
    let (_, chosen) = check_reply(offered, reply)?;
    let peer_spi = esp_spi(chosen).ok_or("the reply's SPI is not 4 non-zero bytes")?;
    let o = sort_offer(chosen);
    let encr = only(&o.encr).ok_or("the reply has no usable encryption transform")?;
    let integ = if encr.is_aead() {
        None
    } else {
        Some(only(&o.integ).ok_or("the reply has no integrity transform for a CBC cipher")?)
    };
    let suite = EspSuite::new(encr, integ)
        .map_err(|_| "the reply pairs a cipher with the wrong integrity")?;
    Ok(EspAccepted {
        suite,
        esn: o.esn.contains(&ESN_YES),
        peer_spi,
    })
}

/// A human list of a peer's or our own offer for failure messages:
/// `AES-CBC-128/HMAC-SHA1-96/PRF-HMAC-SHA1/group 14 | ...`.
pub(crate) fn describe_offer(sa: &SaPayload) -> String {
    let parts: Vec<String> = sa
        .proposals
        .iter()
        .map(|p| {
            let mut by_type: Vec<(u8, Vec<String>)> = Vec::new();
            for t in &p.transforms {
                let ty = u8::from(t.transform_type);
                let name = transform_name(t);
                match by_type.iter_mut().find(|(k, _)| *k == ty) {
                    Some((_, v)) => v.push(name),
                    None => by_type.push((ty, vec![name])),
                }
            }
            // Print in the conventional order ENCR, INTEG, PRF, DH, ESN.
            let order = [1u8, 3, 2, 4, 5];
            let mut fields: Vec<String> = order
                .iter()
                .filter_map(|k| by_type.iter().find(|(t, _)| t == k))
                .map(|(_, v)| v.join(","))
                .collect();
            fields.extend(
                by_type
                    .iter()
                    .filter(|(t, _)| !order.contains(t))
                    .map(|(t, v)| format!("type {t}: {}", v.join(","))),
            );
            fields.join("/")
        })
        .collect();
    if parts.is_empty() {
        "nothing".to_string()
    } else {
        parts.join(" | ")
    }
}

/// IANA names of transforms xrsec does not implement but peers still offer
/// (IKEv2 registry, RFC 7296 3.3.2 and later), so that a failed negotiation
/// names the peer's algorithms the way its own configuration does.
fn unsupported_name(ty: TransformType, id: u16) -> Option<&'static str> {
    Some(match (ty, id) {
        (TransformType::Encr, 2) => "DES",
        (TransformType::Encr, 3) => "3DES",
        (TransformType::Encr, 11) => "NULL",
        (TransformType::Encr, 13) => "AES-CTR",
        (TransformType::Encr, 14) => "AES-CCM-8",
        (TransformType::Encr, 16) => "AES-CCM-16",
        (TransformType::Encr, 18) => "AES-GCM-8",
        (TransformType::Encr, 19) => "AES-GCM-12",
        (TransformType::Encr, 23) => "CAMELLIA-CBC",
        (TransformType::Encr, 28) => "CHACHA20-POLY1305",
        (TransformType::Prf, 1) => "PRF-HMAC-MD5",
        (TransformType::Prf, 4) => "PRF-AES128-XCBC",
        (TransformType::Prf, 8) => "PRF-AES128-CMAC",
        (TransformType::Integ, 1) => "HMAC-MD5-96",
        (TransformType::Integ, 5) => "AES-XCBC-96",
        (TransformType::Integ, 8) => "AES-CMAC-96",
        (TransformType::Dh, 1) => "group 1 (MODP-768)",
        (TransformType::Dh, 2) => "group 2 (MODP-1024)",
        (TransformType::Dh, 5) => "group 5 (MODP-1536)",
        (TransformType::Dh, 14) => "group 14 (MODP-2048)",
        (TransformType::Dh, 15) => "group 15 (MODP-3072)",
        (TransformType::Dh, 16) => "group 16 (MODP-4096)",
        (TransformType::Dh, 17) => "group 17 (MODP-6144)",
        (TransformType::Dh, 18) => "group 18 (MODP-8192)",
        (TransformType::Dh, 22) => "group 22 (MODP-1024/160)",
        (TransformType::Dh, 23) => "group 23 (MODP-2048/224)",
        (TransformType::Dh, 24) => "group 24 (MODP-2048/256)",
        (TransformType::Dh, 25) => "group 25 (ECP-192)",
        (TransformType::Dh, 26) => "group 26 (ECP-224)",
        (TransformType::Dh, 27) => "group 27 (brainpoolP224r1)",
        (TransformType::Dh, 28) => "group 28 (brainpoolP256r1)",
        (TransformType::Dh, 29) => "group 29 (brainpoolP384r1)",
        (TransformType::Dh, 30) => "group 30 (brainpoolP512r1)",
        (TransformType::Dh, 32) => "group 32 (Curve448)",
        _ => return None,
    })
}

fn transform_name(t: &Transform) -> String {
    let other = |prefix: &str| match unsupported_name(t.transform_type, t.id) {
        Some(name) => name.to_string(),
        None => format!("{prefix} {}", t.id),
    };
    match t.transform_type {
        TransformType::Encr => match t.key_length.and_then(|k| Encr::from_iana(t.id, k)) {
            Some(e) => e.name().to_string(),
            None => match t.key_length {
                Some(k) => format!("{}-{k}", other("ENCR")),
                None => other("ENCR"),
            },
        },
        TransformType::Prf => {
            PrfId::from_iana(t.id).map_or_else(|| other("PRF"), |x| x.name().to_string())
        }
        TransformType::Integ => match t.id {
            NONE => "no integrity".to_string(),
            id => IntegId::from_iana(id).map_or_else(|| other("INTEG"), |x| x.name().to_string()),
        },
        TransformType::Dh => match t.id {
            NONE => "no DH".to_string(),
            id => DhGroup::from_iana(id).map_or_else(|| other("group"), |x| x.name().to_string()),
        },
        TransformType::Esn => match t.id {
            ESN_NO => "no ESN".to_string(),
            ESN_YES => "ESN".to_string(),
            id => format!("ESN {id}"),
        },
        _ => format!("{}", t.id),
    }
}

/// Our configured IKE proposals, described like a peer's offer.
pub(crate) fn describe_ike_config(ours: &[IkeProposalConfig]) -> String {
    describe_offer(&ike_offer(ours))
}

/// Our configured ESP suites, described like a peer's offer.
pub(crate) fn describe_esp_config(ours: &[EspSuite]) -> String {
    let list: Vec<String> = ours.iter().map(|s| s.to_string()).collect();
    list.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(encr: &[Encr], integ: &[IntegId], prf: &[PrfId], dh: &[DhGroup]) -> IkeProposalConfig {
        IkeProposalConfig {
            encr: encr.to_vec(),
            integ: integ.to_vec(),
            prf: prf.to_vec(),
            dh: dh.to_vec(),
        }
    }

    #[test]
    fn an_offer_of_algorithms_we_lack_is_described_by_their_iana_names() {
        let t = |ty, id, key_length| Transform {
            transform_type: ty,
            id,
            key_length,
            unknown_attributes: false,
        };
        let offer = SaPayload {
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::Ike,
                spi: Vec::new(),
                transforms: vec![
                    t(TransformType::Encr, 3, None),
                    t(TransformType::Encr, 23, Some(128)),
                    t(TransformType::Encr, 99, None),
                    t(TransformType::Integ, 2, None),
                    t(TransformType::Prf, 1, None),
                    t(TransformType::Dh, 14, None),
                    t(TransformType::Dh, 19, None),
                ],
            }],
        };
        assert_eq!(
            describe_offer(&offer),
            "3DES,CAMELLIA-CBC-128,ENCR 99/HMAC-SHA1-96/PRF-HMAC-MD5/group 14 (MODP-2048),group 19 (ECP-256)"
        );
    }

    #[test]
    fn a_mixed_aead_and_cbc_proposal_becomes_two_wire_proposals() {
        let offer = ike_offer(&[p(
            &[Encr::AesGcm16_256, Encr::AesCbc128],
            &[IntegId::HmacSha2_256_128],
            &[PrfId::HmacSha2_256],
            &[DhGroup::Ecp256],
        )]);
        assert_eq!(offer.proposals.len(), 2);
        assert_eq!(offer.proposals[0].number, 1);
        assert_eq!(offer.proposals[1].number, 2);
        assert!(!offer.proposals[0]
            .transforms
            .iter()
            .any(|t| t.transform_type == TransformType::Integ));
        assert!(offer.proposals[1]
            .transforms
            .iter()
            .any(|t| t.transform_type == TransformType::Integ));
    }

    #[test]
    fn responder_keeps_the_proposal_number_and_picks_one_transform_per_type() {
        let peer = ike_offer(&[
            p(
                &[Encr::AesCbc128],
                &[IntegId::HmacSha1_96],
                &[PrfId::HmacSha1],
                &[DhGroup::Ecp256],
            ),
            p(
                &[Encr::AesCbc256, Encr::AesGcm16_128],
                &[IntegId::HmacSha2_512_256, IntegId::HmacSha2_256_128],
                &[PrfId::HmacSha2_384, PrfId::HmacSha2_256],
                &[DhGroup::Ecp384, DhGroup::Ecp256],
            ),
        ]);
        let ours = [p(
            &[Encr::AesCbc256],
            &[IntegId::HmacSha2_256_128],
            &[PrfId::HmacSha2_256],
            &[DhGroup::Ecp256],
        )];
        match choose_ike(&peer, &ours, 19) {
            IkeChoice::Chosen { reply, algorithms } => {
                // The second config proposal lists CBC first, so its CBC half
                // is wire proposal 2 (its GCM half is 3).
                assert_eq!(reply.number, 2);
                assert_eq!(reply.transforms.len(), 4);
                assert_eq!(algorithms.encr, Encr::AesCbc256);
                assert_eq!(algorithms.integ, Some(IntegId::HmacSha2_256_128));
                assert_eq!(algorithms.prf, PrfId::HmacSha2_256);
                assert_eq!(algorithms.dh, DhGroup::Ecp256);
                let back = SaPayload {
                    proposals: vec![reply],
                };
                assert_eq!(accept_ike_reply(&peer, &back), Ok(algorithms));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_acceptable_group_other_than_the_ke_payloads_asks_for_our_preferred_group() {
        let peer = ike_offer(&[p(
            &[Encr::AesGcm16_128],
            &[],
            &[PrfId::HmacSha2_256],
            &[DhGroup::Ecp521, DhGroup::Ecp256],
        )]);
        let ours = [p(
            &[Encr::AesGcm16_128],
            &[],
            &[PrfId::HmacSha2_256],
            &[DhGroup::Ecp256],
        )];
        assert!(matches!(
            choose_ike(&peer, &ours, 21),
            IkeChoice::WrongGroup(DhGroup::Ecp256)
        ));
        assert!(matches!(
            choose_ike(&peer, &ours, 19),
            IkeChoice::Chosen { .. }
        ));
    }

    #[test]
    fn disjoint_offers_choose_nothing_and_describe_both_sides() {
        let peer = ike_offer(&[p(
            &[Encr::AesCbc128],
            &[IntegId::HmacSha1_96],
            &[PrfId::HmacSha1],
            &[DhGroup::Ecp256],
        )]);
        let ours = [p(
            &[Encr::AesGcm16_256],
            &[],
            &[PrfId::HmacSha2_256],
            &[DhGroup::Ecp384],
        )];
        assert!(matches!(choose_ike(&peer, &ours, 19), IkeChoice::Nothing));
        assert_eq!(
            describe_offer(&peer),
            "AES-CBC-128/HMAC-SHA1-96/PRF-HMAC-SHA1/group 19 (ECP-256)"
        );
        assert_eq!(
            describe_ike_config(&ours),
            "AES-GCM-16-256/PRF-HMAC-SHA-256/group 20 (ECP-384)"
        );
    }

    #[test]
    fn initiator_rejects_a_reply_with_a_transform_it_did_not_offer() {
        let ours = ike_offer(&[p(
            &[Encr::AesGcm16_128],
            &[],
            &[PrfId::HmacSha2_256],
            &[DhGroup::Ecp256],
        )]);
        let mut reply = ours.clone();
        reply.proposals[0].transforms[0].key_length = Some(256);
        assert!(accept_ike_reply(&ours, &reply).is_err());
        let two = SaPayload {
            proposals: vec![ours.proposals[0].clone(), ours.proposals[0].clone()],
        };
        assert!(accept_ike_reply(&ours, &two).is_err());
    }

    #[test]
    fn esp_choice_prefers_no_esn_and_accepts_esn_only_peers() {
        let suite = EspSuite::new(Encr::AesCbc256, Some(IntegId::HmacSha2_256_128)).unwrap();
        let mut offer = esp_offer(&[suite], 0x1234_5678);
        let c = choose_esp(&offer, &[suite]).unwrap();
        assert!(!c.esn);
        assert_eq!(c.peer_spi, 0x1234_5678);
        offer.proposals[0].transforms.last_mut().unwrap().id = ESN_YES;
        let c = choose_esp(&offer, &[suite]).unwrap();
        assert!(c.esn);
        let reply = SaPayload {
            proposals: vec![c.reply(7)],
        };
        let accepted = accept_esp_reply(&offer, &reply).unwrap();
        assert_eq!(accepted.peer_spi, 7);
        assert!(accepted.esn);
    }

    #[test]
    fn esp_proposal_with_spi_zero_is_not_chosen() {
        let suite = EspSuite::new(Encr::AesGcm16_128, None).unwrap();
        let offer = esp_offer(&[suite], 0);
        assert!(choose_esp(&offer, &[suite]).is_none());
    }
}
