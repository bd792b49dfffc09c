//! Rekeying the IKE SA itself with CREATE_CHILD_SA (RFC 7296 1.3.2, 2.18)
//! and its collisions (2.8.2).
//!
//! A rekey makes a new IKE SA: new SPIs, keys from
//! SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), message IDs from 0,
//! the rekey's initiator as its original initiator. The Child SAs move to
//! it, untouched; the old IKE SA is then deleted by the rekey's initiator
//! and reported to nobody (the daemon hears [`Event::IkeSaRekeyed`]
//! instead).
//!
//! The new SA is made here but handed to the endpoint (which owns the SA
//! table) through the outbox: [`Rekeyed`]. In a collision (both ends
//! rekeying at once, each answering the other) the new SA made by the
//! exchange holding the lowest of the four nonces is deleted by the end
//! that started it; the Child SAs go to the other one, which may be the
//! peer's, already in the table: [`Adoption`].

use super::rekey::{lowest_is_ours, retry_delay};
use super::*;
use xrsec_crypto::skeyseed_rekey;

use crate::proposal::IkeChoice;
use crate::wire::ProtocolId;

/// How long an IKE SA replaced by a rekey waits for the peer's DELETE
/// before we delete it ourselves (its rekey's loser or old SA, which the
/// peer should delete at once, lingering after a lost message).
pub(crate) const SUPERSEDED_GRACE: Duration = Duration::from_secs(10);
/// How long the SA made by the peer's colliding rekey waits for our own
/// rekey's answer to decide it (beyond our retransmission schedule).
const COLLISION_WAIT: Duration = Duration::from_secs(70);

/// Our CREATE_CHILD_SA rekeying the IKE SA, awaiting its response.
pub(crate) struct OurIkeRekey {
    new_spi: u64,
    ni: Vec<u8>,
    dh: DhPrivate,
    offer: SaPayload,
}

/// The peer's IKE SA rekey we answered while ours was in flight.
pub(crate) struct PeerIkeRekey {
    /// Our SPI (its SPIr) in the IKE SA that rekey made.
    our_spi: u64,
    ni: Vec<u8>,
    nr: Vec<u8>,
}

/// A new IKE SA made by a rekey, for the endpoint to add.
pub(crate) struct Rekeyed {
    pub old: IkeSaId,
    pub sa: IkeSa,
    /// It took the old SA's Child SAs: the daemon hears of the rekey.
    pub took_children: bool,
}

/// Child SAs (and requests about them) moving from `from` to the IKE SA
/// where our SPI is `to_spi`.
pub(crate) struct Adoption {
    pub from: IkeSaId,
    pub to_spi: u64,
    pub children: Vec<Child>,
    pub retiring: Vec<Retiring>,
    pub queued: Vec<Request>,
}

fn random_ike_spi<R: CryptoRngCore>(ctx: &mut Ctx<'_, R>) -> u64 {
    crate::endpoint::fresh_ike_spi(ctx.rng, ctx.ike_spis)
}

fn ike_spi_of(p: &wire::Proposal) -> Option<u64> {
    let bytes: [u8; 8] = p.spi.as_slice().try_into().ok()?;
    Some(u64::from_be_bytes(bytes)).filter(|&s| s != 0)
}

impl IkeSa {
    /// The Child SAs, the SAs retiring and the requests about them, taken
    /// out to move to a new IKE SA. A Child SA whose rekey was queued gets
    /// its rekey again from the new SA's timers.
    fn take_children(
        &mut self,
        est: &mut Established,
    ) -> (Vec<Child>, Vec<Retiring>, Vec<Request>) {
        let mut children = std::mem::take(&mut est.children);
        for c in &mut children {
            c.rekeying = false;
        }
        let queued: Vec<Request> = self
            .queued
            .iter()
            .copied()
            .filter(|r| matches!(r, Request::DeleteChild { .. }))
            .collect();
        self.queued
            .retain(|r| !matches!(r, Request::DeleteChild { .. } | Request::RekeyChild { .. }));
        (children, std::mem::take(&mut est.retiring), queued)
    }

    /// Moves the Child SAs (and the requests about them) into `new`, the
    /// IKE SA that replaces this one.
    fn hand_over(&mut self, est: &mut Established, new: &mut IkeSa) {
        let (children, retiring, queued) = self.take_children(est);
        if let State::Established(e) = &mut new.state {
            e.children = children;
            e.retiring = retiring;
        }
        new.queued.extend(queued);
    }

    /// Takes in Child SAs moved from a rekeyed IKE SA.
    pub(crate) fn adopt<R: CryptoRngCore>(&mut self, ctx: &mut Ctx<'_, R>, a: Adoption) {
        let State::Established(est) = &mut self.state else {
            return;
        };
        est.children.extend(a.children);
        est.retiring.extend(a.retiring);
        self.superseded = None;
        self.queued.extend(a.queued);
        let mut est = match std::mem::replace(&mut self.state, State::Closed) {
            State::Established(e) => e,
            other => {
                self.state = other;
                return;
            }
        };
        self.start_next_request(ctx, &mut est);
        self.state = State::Established(est);
    }

    /// A new established IKE SA of this tunnel and peer, made by a rekey.
    #[allow(clippy::too_many_arguments)]
    fn successor<R: CryptoRngCore>(
        &self,
        ctx: &mut Ctx<'_, R>,
        t: &TunnelConfig,
        role: Role,
        spi_i: u64,
        spi_r: u64,
        keyed: Keyed,
        remote_identity: Identity,
    ) -> IkeSa {
        let mut sa = IkeSa::base(
            self.id,
            self.tunnel,
            role,
            spi_i,
            self.local,
            self.remote,
            ctx.now,
        );
        sa.spi_r = spi_r;
        sa.nat = self.nat;
        sa.fragmentation = self.fragmentation;
        sa.established_at = Some(ctx.now);
        sa.announced = true;
        sa.state = State::Established(Box::new(Established::new(ctx, t, keyed, remote_identity)));
        sa
    }

    /// The payloads of our IKE SA rekey: SA (our IKE proposals with a new
    /// SPIi), Ni, KEi in the current SA's group (one the peer accepts).
    pub(super) fn rekey_ike_request<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        est: &mut Established,
    ) -> Option<Vec<Payload>> {
        let Some(t) = find_tunnel(ctx.tunnels, self.tunnel) else {
            est.ike_rekeying = false;
            return None;
        };
        if self.superseded.is_some() {
            est.ike_rekeying = false;
            return None;
        }
        let new_spi = random_ike_spi(ctx);
        let ni = ctx.nonce();
        let dh = DhPrivate::generate(est.keyed.algs.dh, ctx.rng);
        let mut offer = proposal::ike_offer(&t.ike_proposals);
        for p in &mut offer.proposals {
            p.spi = new_spi.to_be_bytes().to_vec();
        }
        let payloads = vec![
            Payload::Sa(offer.clone()),
            Payload::Nonce(ni.clone()),
            Payload::Ke(KePayload {
                group: dh.group().iana(),
                data: dh.public_ke_data().to_vec(),
            }),
        ];
        est.our_ike_rekey = Some(OurIkeRekey {
            new_spi,
            ni,
            dh,
            offer,
        });
        Some(payloads)
    }

    /// The answer to our IKE SA rekey.
    pub(super) fn finish_ike_rekey<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        mut est: Box<Established>,
        payloads: &[Payload],
    ) -> State {
        let id = self.id;
        est.ike_rekeying = false;
        let Some(rk) = est.our_ike_rekey.take() else {
            self.start_next_request(ctx, &mut est);
            return State::Established(est);
        };
        let accepted = match find_tunnel(ctx.tunnels, self.tunnel) {
            None => Err((None, "its tunnel is gone".to_owned())),
            Some(t) => self.accept_ike_rekey_reply(&est, &rk, payloads).and_then(
                |(algs, spi_r, nr, keys)| {
                    Keyed::new(algs, keys, Role::Initiator)
                        .map(|keyed| (t, spi_r, nr, keyed))
                        .ok_or((None, "the negotiated algorithms give no keys".to_owned()))
                },
            ),
        };
        let (t, spi_r, nr, keyed) = match accepted {
            Ok(v) => v,
            Err((n, why)) => {
                // Every way out of a failed rekey goes on with the queue
                // and leaves no collision state behind.
                ctx.log(Some(id), || format!("IKE SA {id}: rekey failed: {why}"));
                if est.peer_ike_rekey.is_some() {
                    // The peer's rekey stands: it deletes this SA.
                    self.resolve_peer_won(ctx, &mut est);
                } else if n == Some(notify::TEMPORARY_FAILURE) {
                    // RFC 7296 2.25: again after a short random delay.
                    est.times.rekey_at = (ctx.now + retry_delay(ctx)).min(est.times.expire_at);
                } else {
                    // The hard lifetime renegotiates from scratch.
                    est.times.rekey_at = est.times.expire_at;
                }
                self.start_next_request(ctx, &mut est);
                return State::Established(est);
            }
        };
        let mut new = self.successor(
            ctx,
            t,
            Role::Initiator,
            rk.new_spi,
            spi_r,
            keyed,
            est.remote_identity.clone(),
        );
        let collided = est.peer_ike_rekey.take();
        if let Some(p) = &collided {
            if lowest_is_ours([&rk.ni, &nr], [&p.ni, &p.nr]) {
                ctx.log(Some(id), || {
                    format!(
                        "IKE SA {id}: both ends rekeyed it at once and the peer's rekey won \
                         (RFC 7296 2.8.2): deleting the IKE SA ours made"
                    )
                });
                new.superseded = Some(ctx.now);
                if let State::Established(e) = std::mem::replace(&mut new.state, State::Closed) {
                    new.state = new.start_delete(ctx, e, DownReason::RekeyCollision);
                }
                ctx.out.rekeyed.push(Rekeyed {
                    old: id,
                    sa: new,
                    took_children: false,
                });
                est.peer_ike_rekey = collided;
                self.resolve_peer_won(ctx, &mut est);
                return State::Established(est);
            }
            ctx.log(Some(id), || {
                format!(
                    "IKE SA {id}: both ends rekeyed it at once and ours won (RFC 7296 2.8.2): \
                     the peer deletes the IKE SA its rekey made"
                )
            });
            // Should the peer never learn (its answer lost), we delete it.
            ctx.out.losers.push(p.our_spi);
        }
        self.hand_over(&mut est, &mut new);
        ctx.log(Some(id), || {
            format!(
                "IKE SA {id} rekeyed: new SPIs {:016x}/{spi_r:016x}; deleting the old one",
                rk.new_spi
            )
        });
        ctx.out.rekeyed.push(Rekeyed {
            old: id,
            sa: new,
            took_children: true,
        });
        self.superseded = Some(ctx.now + SUPERSEDED_GRACE);
        self.start_delete(ctx, est, DownReason::LocalDelete)
    }

    /// The peer's rekey of this IKE SA won a collision: our Child SAs go to
    /// the SA it made, and this one waits for the peer's DELETE.
    pub(super) fn resolve_peer_won<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        est: &mut Established,
    ) {
        let Some(p) = est.peer_ike_rekey.take() else {
            return;
        };
        let (children, retiring, queued) = self.take_children(est);
        ctx.out.adopt.push(Adoption {
            from: self.id,
            to_spi: p.our_spi,
            children,
            retiring,
            queued,
        });
        self.superseded = Some(ctx.now + SUPERSEDED_GRACE);
    }

    #[allow(clippy::type_complexity)]
    fn accept_ike_rekey_reply(
        &self,
        est: &Established,
        rk: &OurIkeRekey,
        payloads: &[Payload],
    ) -> Result<(IkeAlgorithms, u64, Vec<u8>, IkeKeys), (Option<u16>, String)> {
        if let Some(n) = error_notify(payloads) {
            return Err((Some(n), format!("the peer answered {}", notify::name(n))));
        }
        let sa = find_payload!(payloads, Sa);
        let nr = find_payload!(payloads, Nonce);
        let ke = find_payload!(payloads, Ke);
        let (Some(sa), Some(nr), Some(ke)) = (sa, nr, ke) else {
            return Err((None, "the response lacks SA, nonce or KE".into()));
        };
        let algs = proposal::accept_ike_reply(&rk.offer, sa).map_err(|e| (None, e.to_string()))?;
        let spi_r = sa
            .proposals
            .first()
            .and_then(ike_spi_of)
            .ok_or((None, "the reply's SPI is not 8 non-zero bytes".to_string()))?;
        if algs.dh != rk.dh.group() || ke.group != algs.dh.iana() {
            return Err((
                None,
                "the reply's DH group differs from our KE payload's".into(),
            ));
        }
        let shared = rk.dh.agree(&ke.data).map_err(|e| (None, e.to_string()))?;
        let seed = skeyseed_rekey(
            est.keyed.algs.prf,
            &est.keyed.keys.sk_d,
            &shared,
            &rk.ni,
            nr,
        );
        let keys = derive_ike_keys(
            algs.prf,
            algs.encr,
            algs.integ,
            &seed,
            &rk.ni,
            nr,
            &rk.new_spi.to_be_bytes(),
            &spi_r.to_be_bytes(),
        );
        Ok((algs, spi_r, nr.clone(), keys))
    }

    /// The peer's CREATE_CHILD_SA rekeying this IKE SA: answered with a new
    /// IKE SA, which takes the Child SAs at once, or, while our own rekey
    /// of it is in flight, once RFC 7296 2.8.2 has picked the winner.
    pub(super) fn on_ike_rekey_request<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        est: &mut Established,
        payloads: &[Payload],
    ) -> Vec<Payload> {
        let id = self.id;
        let refuse = |n: u16| vec![notify_payload(n, Vec::new())];
        // RFC 7296 2.25.2: not while one of our Child SA rekeys is out, nor
        // on an SA already replaced.
        if est.our_rekey.is_some() || self.superseded.is_some() || est.peer_ike_rekey.is_some() {
            return refuse(notify::TEMPORARY_FAILURE);
        }
        let Some(t) = find_tunnel(ctx.tunnels, self.tunnel) else {
            return refuse(notify::NO_ADDITIONAL_SAS);
        };
        let sa = find_payload!(payloads, Sa);
        let ni = find_payload!(payloads, Nonce);
        let ke = find_payload!(payloads, Ke);
        let (Some(sa), Some(ni), Some(ke)) = (sa, ni, ke) else {
            return refuse(notify::INVALID_SYNTAX);
        };
        let (reply, algs) = match proposal::choose_ike(sa, &t.ike_proposals, ke.group) {
            IkeChoice::Chosen { reply, algorithms } => (reply, algorithms),
            IkeChoice::WrongGroup(g) => {
                return vec![notify_payload(
                    notify::INVALID_KE_PAYLOAD,
                    g.iana().to_be_bytes().to_vec(),
                )]
            }
            IkeChoice::Nothing => {
                ctx.log(Some(id), || {
                    format!(
                        "refused the peer's IKE SA rekey: no proposal in common (it offered {})",
                        proposal::describe_offer(sa)
                    )
                });
                return refuse(notify::NO_PROPOSAL_CHOSEN);
            }
        };
        let Some(peer_spi) = sa
            .proposals
            .iter()
            .find(|p| p.number == reply.number && p.protocol == ProtocolId::Ike)
            .and_then(ike_spi_of)
        else {
            return refuse(notify::INVALID_SYNTAX);
        };
        let dh = DhPrivate::generate(algs.dh, ctx.rng);
        let Ok(shared) = dh.agree(&ke.data) else {
            return refuse(notify::INVALID_SYNTAX);
        };
        let our_spi = random_ike_spi(ctx);
        let nr = ctx.nonce();
        let seed = skeyseed_rekey(est.keyed.algs.prf, &est.keyed.keys.sk_d, &shared, ni, &nr);
        let keys = derive_ike_keys(
            algs.prf,
            algs.encr,
            algs.integ,
            &seed,
            ni,
            &nr,
            &peer_spi.to_be_bytes(),
            &our_spi.to_be_bytes(),
        );
        let Some(keyed) = Keyed::new(algs, keys, Role::Responder) else {
            return refuse(notify::NO_PROPOSAL_CHOSEN);
        };
        let mut new = self.successor(
            ctx,
            t,
            Role::Responder,
            peer_spi,
            our_spi,
            keyed,
            est.remote_identity.clone(),
        );
        let mut chosen = reply;
        chosen.spi = our_spi.to_be_bytes().to_vec();
        let response = vec![
            Payload::Sa(SaPayload {
                proposals: vec![chosen],
            }),
            Payload::Nonce(nr.clone()),
            Payload::Ke(KePayload {
                group: dh.group().iana(),
                data: dh.public_ke_data().to_vec(),
            }),
        ];
        if est.our_ike_rekey.is_some() {
            // Collision: the new SA waits, childless and unreported, for
            // our own rekey's answer to pick the winner.
            ctx.log(Some(id), || {
                format!(
                    "IKE SA {id}: the peer rekeys it while our rekey is in flight (RFC 7296 2.8.2)"
                )
            });
            // Kept past our own rekey's whole retransmission schedule.
            new.superseded = Some(ctx.now + COLLISION_WAIT);
            est.peer_ike_rekey = Some(PeerIkeRekey {
                our_spi,
                ni: ni.clone(),
                nr,
            });
            ctx.out.rekeyed.push(Rekeyed {
                old: id,
                sa: new,
                took_children: false,
            });
            return response;
        }
        self.hand_over(est, &mut new);
        ctx.log(Some(id), || {
            format!(
                "IKE SA {id} rekeyed by the peer: new SPIs {peer_spi:016x}/{our_spi:016x}; \
                 the peer deletes the old one"
            )
        });
        ctx.out.rekeyed.push(Rekeyed {
            old: id,
            sa: new,
            took_children: true,
        });
        self.superseded = Some(ctx.now + SUPERSEDED_GRACE);
        est.ike_rekeying = false;
        self.queued.retain(|r| *r != Request::RekeyIke);
        response
    }
}

/// Whether a CREATE_CHILD_SA request rekeys the IKE SA: its SA payload
/// carries IKE proposals (RFC 7296 1.3.2).
pub(super) fn is_ike_rekey(payloads: &[Payload]) -> bool {
    find_payload!(payloads, Sa)
        .is_some_and(|sa| sa.proposals.iter().any(|p| p.protocol == ProtocolId::Ike))
}
