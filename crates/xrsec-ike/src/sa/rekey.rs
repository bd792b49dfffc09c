//! Rekeying a Child SA with CREATE_CHILD_SA (RFC 7296 1.3.3, 2.8), its
//! collisions (2.8.1), the lifetimes that start it and end what it could
//! not save, and dead peer detection, on an established IKE SA.
//!
//! Make-before-break, with no packet lost either way:
//! - the rekey's initiator installs the new SA both ways as soon as the
//!   response is in (the responder had its inbound half in before it
//!   answered), then deletes the old SA, whose inbound half keeps taking
//!   the packets still in flight for [`RETIRE_LINGER`];
//! - the responder installs only the inbound half when it answers, and
//!   switches its outbound traffic when the initiator deletes the old SA:
//!   the initiator sends that DELETE only once it has the response, so its
//!   inbound half is in by then.
//!
//! Collisions: both ends rekeying the same SA at once each answer the
//! other's request; of the two new SAs, the one created by the exchange
//! holding the lowest of the four nonces is deleted by the end that
//! started it, and the other end deletes the old SA (RFC 7296 2.8.1). A
//! request for an SA we already replaced gets CHILD_SA_NOT_FOUND.
//!
//! Lifetimes: rekeying starts at a random 80-90% of the configured
//! lifetime, so that the two ends rarely start at once; at 100% (the hard
//! lifetime) an SA that was not replaced ends, with its IKE SA, and the
//! tunnel is negotiated anew: no SA is used past its lifetime.

use super::*;
use xrsec_crypto::{DhGroup, SharedSecret};

use crate::wire::{Proposal, Transform, TransformType};

/// How long the inbound half of a rekeyed Child SA keeps taking packets
/// sent before the peer switched (never past its hard lifetime).
pub(crate) const RETIRE_LINGER: Duration = Duration::from_secs(3);

/// When an SA was created, is rekeyed, and must be gone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetimes {
    pub created: Instant,
    pub rekey_at: Instant,
    pub expire_at: Instant,
    pub lifetime: Duration,
}

impl Lifetimes {
    /// Rekey at a random 80-90% of `lifetime`, expire at 100%.
    pub fn start<R: CryptoRngCore>(ctx: &mut Ctx<'_, R>, lifetime: Duration) -> Self {
        let frac = 0.80 + 0.10 * f64::from(ctx.rng.next_u32()) / f64::from(u32::MAX);
        Self {
            created: ctx.now,
            rekey_at: ctx.now + lifetime.mul_f64(frac),
            expire_at: ctx.now + lifetime,
            lifetime,
        }
    }
}

/// A rekey of one of our Child SAs that the peer started and we answered.
#[derive(Clone, Debug)]
pub(crate) struct PeerRekey {
    /// The new Child SA's inbound SPI.
    pub new_spi_in: u32,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
}

/// A rekeyed Child SA whose inbound half still takes packets until `until`.
#[derive(Clone, Debug)]
pub(crate) struct Retiring {
    pub spi_in: u32,
    pub spi_out: u32,
    pub until: Instant,
    pub new_spi_in: u32,
    /// Replaced by the peer's rekey (it deleted this one): a rekey of ours
    /// for it still in flight is then redundant.
    pub by_peer: bool,
}

/// Our CREATE_CHILD_SA rekeying a Child SA, awaiting its response.
pub(crate) struct OurChildRekey {
    old_spi_in: u32,
    new_spi_in: u32,
    ni: Vec<u8>,
    dh: Option<DhPrivate>,
    offer: SaPayload,
}

/// RFC 7296 2.25: after a TEMPORARY_FAILURE, a rekey is tried again after
/// a short random delay (0.5-2.5 s).
pub(super) fn retry_delay<R: CryptoRngCore>(ctx: &mut Ctx<'_, R>) -> Duration {
    Duration::from_millis(500 + u64::from(ctx.rng.next_u32() % 2000))
}

/// RFC 7296 2.8.1: the exchange holding the lowest of the four nonces
/// created the redundant SA. Nonces compare as unsigned big-endian numbers
/// of their bytes, then by length: both ends rank them alike.
pub(super) fn lowest_is_ours(ours: [&[u8]; 2], theirs: [&[u8]; 2]) -> bool {
    fn min(v: [&[u8]; 2]) -> &[u8] {
        if v[0] <= v[1] {
            v[0]
        } else {
            v[1]
        }
    }
    min(ours) <= min(theirs)
}

/// The DH group IDs a proposal of `offer` carries, by proposal number.
fn dh_groups(offer: &SaPayload, number: u8) -> Vec<u16> {
    offer
        .proposals
        .iter()
        .filter(|p| p.number == number)
        .flat_map(|p| p.transforms.iter())
        .filter(|t| t.transform_type == TransformType::Dh)
        .map(|t| t.id)
        .collect()
}

fn with_dh(mut p: Proposal, group: Option<DhGroup>) -> Proposal {
    if let Some(g) = group {
        p.transforms
            .push(Transform::new(TransformType::Dh, g.iana()));
    }
    p
}

impl Established {
    pub(crate) fn new<R: CryptoRngCore>(
        ctx: &mut Ctx<'_, R>,
        t: &TunnelConfig,
        keyed: Keyed,
        remote_identity: Identity,
    ) -> Self {
        Self {
            keyed,
            remote_identity,
            children: Vec::new(),
            retiring: Vec::new(),
            our_rekey: None,
            ike_rekeying: false,
            our_ike_rekey: None,
            peer_ike_rekey: None,
            times: Lifetimes::start(ctx, t.ike_lifetime),
            last_heard: ctx.now,
            dpd: t.dpd,
        }
    }

    /// The earliest of its timers: retiring SAs, lifetimes, and (with
    /// `dpd`, when no request of ours is out) the next liveness check.
    pub(crate) fn next_deadline(
        &self,
        dpd_due: Option<Instant>,
        superseded: Option<Instant>,
        rekeys_blocked: bool,
    ) -> Option<Instant> {
        let mut d = Some(self.times.expire_at);
        if let Some(by) = superseded {
            return Some(self.times.expire_at.min(by));
        }
        let mut consider = |t: Instant| d = Some(d.map_or(t, |x: Instant| x.min(t)));
        if !rekeys_blocked {
            consider(self.times.rekey_at);
        }
        for r in &self.retiring {
            consider(r.until);
        }
        for c in &self.children {
            consider(c.times.expire_at);
            if !rekeys_blocked && !c.rekeying && c.rekeyed_by_peer.is_none() {
                consider(c.times.rekey_at);
            }
        }
        if let Some(t) = dpd_due {
            consider(t);
        }
        d
    }
}

impl IkeSa {
    /// When dead peer detection sends its next check, if nothing of ours
    /// is in flight or queued (a request out is a check of its own).
    pub(super) fn dpd_due(&self, est: &Established) -> Option<Instant> {
        let dpd = est.dpd?;
        if self.superseded.is_some() || self.in_flight.is_some() || !self.queued.is_empty() {
            return None;
        }
        Some(est.last_heard + dpd.interval)
    }

    /// A rekey of ours (Child or IKE SA) is queued or in flight: no other
    /// starts until it is done.
    pub(super) fn rekeys_blocked(&self, est: &Established) -> bool {
        est.our_rekey.is_some()
            || est.ike_rekeying
            || self
                .queued
                .iter()
                .any(|r| matches!(r, Request::RekeyChild { .. }))
    }

    /// Something authenticated came from the peer (or the daemon saw its
    /// ESP traffic): it is alive.
    pub(crate) fn heard_from_peer(&mut self, now: Instant) {
        if let State::Established(est) = &mut self.state {
            est.last_heard = est.last_heard.max(now);
        }
    }

    /// The timers of an established SA: retiring Child SAs go, hard
    /// lifetimes end what was not replaced, soft lifetimes start rekeys,
    /// silence starts a liveness check.
    pub(super) fn lifetime_timers<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        mut est: Box<Established>,
    ) -> State {
        let now = ctx.now;
        let (id, tunnel) = (self.id, self.tunnel);
        est.retiring.retain(|r| {
            if now < r.until {
                return true;
            }
            ctx.child_spis.remove(&r.spi_in);
            ctx.out.events.push_back(Event::ChildSaDown {
                id,
                tunnel,
                spi_in: r.spi_in,
                spi_out: r.spi_out,
                reason: DownReason::Rekeyed {
                    new_spi_in: r.new_spi_in,
                },
            });
            false
        });
        if let Some(by) = self.superseded {
            if now >= est.times.expire_at || now >= by {
                // Replaced, and the peer never deleted it: most likely it
                // never had it (the rekey's answer was lost). One DELETE,
                // not retransmitted, and it is gone.
                ctx.log(Some(id), || {
                    format!("IKE SA {id}, replaced by a rekey, was not deleted by the peer: deleting it")
                });
                let h = header(
                    self.spi_i,
                    self.spi_r,
                    ExchangeType::Informational,
                    self.role,
                    false,
                    self.next_request_id,
                );
                let delete = [Payload::Delete(DeletePayload {
                    protocol: PROTO_IKE,
                    spis: Vec::new(),
                })];
                if let Some(m) = self.seal_logged(ctx, &mut est.keyed, &h, &delete) {
                    send_all(ctx, self.local, self.remote, &m);
                }
                self.down_events(ctx, &est, DownReason::LocalDelete);
                return self.close(now, None);
            }
            return State::Established(est);
        }
        if now >= est.times.expire_at {
            let lifetime = est.times.lifetime;
            ctx.log(Some(id), || {
                format!(
                    "IKE SA {id}: hard lifetime of {} s reached: deleting it",
                    lifetime.as_secs()
                )
            });
            return self.start_delete(ctx, est, DownReason::LifetimeExpired { lifetime });
        }
        // A Child SA at its hard lifetime. One the peer rekeyed (and has
        // not deleted yet) is replaced now; any other takes the IKE SA
        // with it, so that the tunnel is negotiated afresh.
        while let Some(pos) = est.children.iter().position(|c| now >= c.times.expire_at) {
            let c = est.children.remove(pos);
            let lifetime = c.times.lifetime;
            let successor = c.rekeyed_by_peer.as_ref().map(|p| p.new_spi_in);
            if let Some(new_spi_in) =
                successor.filter(|n| est.children.iter().any(|x| x.spi_in == *n))
            {
                ctx.log(Some(id), || {
                    format!(
                        "Child SA 0x{:08x} reached its hard lifetime before the peer deleted it: \
                         switching to 0x{new_spi_in:08x} and deleting it",
                        c.spi_in
                    )
                });
                self.activate(ctx, &mut est, new_spi_in);
                ctx.child_spis.remove(&c.spi_in);
                ctx.event(Event::ChildSaDown {
                    id,
                    tunnel,
                    spi_in: c.spi_in,
                    spi_out: c.spi_out,
                    reason: DownReason::Rekeyed { new_spi_in },
                });
                self.queued
                    .push_back(Request::DeleteChild { spi_in: c.spi_in });
                continue;
            }
            ctx.log(Some(id), || {
                format!(
                    "Child SA 0x{:08x} reached its hard lifetime of {} s without a rekey: \
                     deleting IKE SA {id} to negotiate the tunnel anew",
                    c.spi_in,
                    lifetime.as_secs()
                )
            });
            est.children.insert(pos, c);
            return self.start_delete(ctx, est, DownReason::LifetimeExpired { lifetime });
        }
        if !self.rekeys_blocked(&est) {
            if let Some(c) = est
                .children
                .iter_mut()
                .find(|c| now >= c.times.rekey_at && !c.rekeying && c.rekeyed_by_peer.is_none())
            {
                c.rekeying = true;
                let spi_in = c.spi_in;
                ctx.log(Some(id), || {
                    format!("Child SA 0x{spi_in:08x}: soft lifetime reached: rekeying it")
                });
                self.queued.push_back(Request::RekeyChild { spi_in });
            }
        }
        if now >= est.times.rekey_at && !self.rekeys_blocked(&est) {
            est.ike_rekeying = true;
            ctx.log(Some(id), || {
                format!("IKE SA {id}: soft lifetime reached: rekeying it")
            });
            self.queued.push_back(Request::RekeyIke);
        }
        if self.dpd_due(&est).is_some_and(|d| now >= d) {
            self.queued.push_back(Request::Liveness);
        }
        self.start_next_request(ctx, &mut est);
        State::Established(est)
    }

    /// Makes the rekey of Child SA `child` (or, with `None`, of the IKE SA
    /// itself) due now; the timers start it as soon as nothing else is
    /// under way (a rekey already running for it makes this a no-op).
    pub(crate) fn rekey_now(&mut self, now: Instant, child: Option<u32>) {
        let State::Established(est) = &mut self.state else {
            return;
        };
        match child {
            Some(spi_in) => {
                for c in est.children.iter_mut().filter(|c| c.spi_in == spi_in) {
                    c.times.rekey_at = c.times.rekey_at.min(now);
                }
            }
            None => est.times.rekey_at = est.times.rekey_at.min(now),
        }
    }

    /// Ends a Child SA at once (a volume hard lifetime in the dataplane):
    /// its hard lifetime is due now; the timers act on it.
    pub(crate) fn expire_child(&mut self, now: Instant, spi_in: u32) {
        if let State::Established(est) = &mut self.state {
            for c in est.children.iter_mut().filter(|c| c.spi_in == spi_in) {
                c.times.expire_at = c.times.expire_at.min(now);
            }
        }
    }

    /// Switches a Child SA the peer's rekey made to sending.
    pub(super) fn activate<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        est: &mut Established,
        new_spi_in: u32,
    ) {
        let (id, tunnel) = (self.id, self.tunnel);
        if let Some(n) = est
            .children
            .iter_mut()
            .find(|c| c.spi_in == new_spi_in && c.outbound_pending)
        {
            n.outbound_pending = false;
            ctx.event(Event::ChildSaOutbound {
                id,
                tunnel,
                spi_in: n.spi_in,
                spi_out: n.spi_out,
            });
        }
    }

    /// The peer deleted Child SA `c` (already out of `children`), which
    /// its rekey replaced: the new one sends from now on, and `c`'s inbound
    /// half takes the packets in flight a few more seconds. `false` when
    /// `c` was not replaced by a rekey of the peer's.
    pub(super) fn peer_deleted_rekeyed<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        est: &mut Established,
        c: &Child,
    ) -> bool {
        let Some(p) = &c.rekeyed_by_peer else {
            return false;
        };
        let new_spi_in = p.new_spi_in;
        if !est.children.iter().any(|x| x.spi_in == new_spi_in) {
            return false;
        }
        self.activate(ctx, est, new_spi_in);
        est.retiring.push(Retiring {
            spi_in: c.spi_in,
            spi_out: c.spi_out,
            until: (ctx.now + RETIRE_LINGER).min(c.times.expire_at),
            new_spi_in,
            by_peer: true,
        });
        let tunnel = self.tunnel;
        ctx.log(Some(self.id), || {
            format!(
                "{tunnel}: Child SA rekeyed by the peer: SPI in 0x{:08x} -> 0x{new_spi_in:08x}",
                c.spi_in
            )
        });
        true
    }

    /// The payloads of our CREATE_CHILD_SA rekeying `old_spi_in` (RFC 7296
    /// 1.3.3): N(REKEY_SA), SA, Ni, [KEi], TSi, TSr. `None` when that Child
    /// SA is gone or not ours to rekey any more.
    pub(super) fn rekey_child_request<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        est: &mut Established,
        old_spi_in: u32,
    ) -> Option<Vec<Payload>> {
        let t = find_tunnel(ctx.tunnels, self.tunnel)?;
        let pos = est
            .children
            .iter()
            .position(|c| c.spi_in == old_spi_in && c.rekeying)?;
        if est.children[pos].rekeyed_by_peer.is_some() {
            est.children[pos].rekeying = false;
            return None;
        }
        let (local_ts, remote_ts) = {
            let c = &est.children[pos];
            (c.local_ts.clone(), c.remote_ts.clone())
        };
        let pfs = t.pfs;
        let esp_suites = t.esp_suites.clone();
        let new_spi_in = ctx.alloc_child_spi();
        let ni = ctx.nonce();
        let dh = pfs.map(|g| DhPrivate::generate(g, ctx.rng));
        let mut offer = proposal::esp_offer(&esp_suites, new_spi_in);
        offer.proposals = offer
            .proposals
            .into_iter()
            .map(|p| with_dh(p, pfs))
            .collect();
        let mut payloads = vec![Payload::Notify(NotifyPayload {
            protocol: PROTO_ESP,
            spi: old_spi_in.to_be_bytes().to_vec(),
            notify_type: notify::REKEY_SA,
            data: Vec::new(),
        })];
        payloads.push(Payload::Sa(offer.clone()));
        payloads.push(Payload::Nonce(ni.clone()));
        if let Some(dh) = &dh {
            payloads.push(Payload::Ke(KePayload {
                group: dh.group().iana(),
                data: dh.public_ke_data().to_vec(),
            }));
        }
        payloads.push(Payload::TsI(TsPayload {
            selectors: local_ts,
        }));
        payloads.push(Payload::TsR(TsPayload {
            selectors: remote_ts,
        }));
        est.our_rekey = Some(OurChildRekey {
            old_spi_in,
            new_spi_in,
            ni,
            dh,
            offer,
        });
        Some(payloads)
    }

    /// The answer to our Child SA rekey.
    pub(super) fn finish_child_rekey<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        est: &mut Established,
        payloads: &[Payload],
    ) {
        let Some(rk) = est.our_rekey.take() else {
            return;
        };
        let (id, tunnel) = (self.id, self.tunnel);
        let old = est.children.iter().position(|c| c.spi_in == rk.old_spi_in);
        if let Some(pos) = old {
            est.children[pos].rekeying = false;
        }
        let result = match find_tunnel(ctx.tunnels, tunnel) {
            Some(t) => self.accept_rekey_reply(ctx, t, &est.keyed, &rk, payloads),
            None => return,
        };
        let (mut child, mut event, nr) = match result {
            Ok(v) => v,
            Err(reason) => {
                ctx.child_spis.remove(&rk.new_spi_in);
                ctx.log(Some(id), || {
                    format!("Child SA 0x{:08x}: rekey failed: {reason}", rk.old_spi_in)
                });
                let Some(pos) = old else { return };
                let c = &mut est.children[pos];
                match reason {
                    // RFC 7296 2.25: try again after a short random delay.
                    FailureReason::PeerNotify {
                        notify_type: notify::TEMPORARY_FAILURE | notify::CHILD_SA_NOT_FOUND,
                        ..
                    } => {
                        c.times.rekey_at = (ctx.now + retry_delay(ctx)).min(c.times.expire_at);
                    }
                    // Settings that disagree do not heal by retrying: the
                    // hard lifetime renegotiates the tunnel, and that
                    // negotiation names the disagreement.
                    _ => {
                        c.times.rekey_at = c.times.expire_at;
                        ctx.event(Event::NegotiationFailed { tunnel, reason });
                    }
                }
                return;
            }
        };
        // Replaced meanwhile by the peer's rekey, which deleted it: ours is
        // redundant (RFC 7296 2.8.1, the peer's exchange won).
        let replaced_by_peer = est
            .retiring
            .iter()
            .any(|r| r.spi_in == rk.old_spi_in && r.by_peer);
        let collided = old.and_then(|pos| est.children[pos].rekeyed_by_peer.clone());
        let ours_lost = replaced_by_peer
            || collided
                .as_ref()
                .is_some_and(|p| lowest_is_ours([&rk.ni, &nr], [&p.ni, &p.nr]));
        if ours_lost {
            ctx.log(Some(id), || {
                format!(
                    "Child SA 0x{:08x}: both ends rekeyed it at once and the peer's rekey won \
                     (RFC 7296 2.8.1): deleting our new SA 0x{:08x}",
                    rk.old_spi_in, rk.new_spi_in
                )
            });
            ctx.child_spis.remove(&rk.new_spi_in);
            self.queued.push_back(Request::DeleteChild {
                spi_in: rk.new_spi_in,
            });
            return;
        }
        event.rekey_of = old.map(|_| rk.old_spi_in);
        child.outbound_pending = false;
        est.children.push(child);
        ctx.event(Event::ChildSaUp(event));
        if let Some(pos) = old {
            let c = est.children.remove(pos);
            if collided.is_some() {
                ctx.log(Some(id), || {
                    format!(
                        "Child SA 0x{:08x}: both ends rekeyed it at once and ours won \
                         (RFC 7296 2.8.1): the peer deletes its new SA",
                        rk.old_spi_in
                    )
                });
            }
            ctx.log(Some(id), || {
                format!(
                    "{tunnel}: Child SA rekeyed: SPI in 0x{:08x} -> 0x{:08x}",
                    c.spi_in, rk.new_spi_in
                )
            });
            est.retiring.push(Retiring {
                spi_in: c.spi_in,
                spi_out: c.spi_out,
                until: (ctx.now + RETIRE_LINGER).min(c.times.expire_at),
                new_spi_in: rk.new_spi_in,
                by_peer: false,
            });
            self.queued
                .push_back(Request::DeleteChild { spi_in: c.spi_in });
        }
    }

    /// Checks the response to our rekey and derives the new Child SA: as
    /// the first Child SA's ([`IkeSa::accept_child`]), with the response's
    /// nonce and, with PFS, the new DH value in the keys.
    fn accept_rekey_reply<R: CryptoRngCore>(
        &self,
        ctx: &mut Ctx<'_, R>,
        t: &TunnelConfig,
        keyed: &Keyed,
        rk: &OurChildRekey,
        payloads: &[Payload],
    ) -> Result<(Child, ChildSa, Vec<u8>), FailureReason> {
        let syntax = |detail: &str| FailureReason::InvalidSyntax {
            detail: detail.to_string(),
        };
        let nr = match (error_notify(payloads), find_payload!(payloads, Nonce)) {
            (None, None) => return Err(syntax("CREATE_CHILD_SA response without a nonce")),
            (_, nr) => nr.cloned().unwrap_or_default(),
        };
        let g_ir: Option<SharedSecret> = match (&rk.dh, error_notify(payloads)) {
            (Some(dh), None) => {
                let reply_groups: Vec<u16> = find_payload!(payloads, Sa)
                    .into_iter()
                    .flat_map(|sa| sa.proposals.iter())
                    .flat_map(|p| p.transforms.iter())
                    .filter(|x| x.transform_type == TransformType::Dh)
                    .map(|x| x.id)
                    .collect();
                let ke = find_payload!(payloads, Ke)
                    .ok_or_else(|| syntax("CREATE_CHILD_SA response with PFS but no KE"))?;
                if reply_groups != [dh.group().iana()] || ke.group != dh.group().iana() {
                    return Err(syntax(
                        "the CREATE_CHILD_SA response's DH group differs from our KE payload's",
                    ));
                }
                Some(dh.agree(&ke.data).map_err(|e| FailureReason::KeyExchange {
                    detail: e.to_string(),
                })?)
            }
            _ => None,
        };
        let (child, event) = self.accept_child(
            ctx,
            t,
            keyed,
            &rk.offer,
            rk.new_spi_in,
            &rk.ni,
            &nr,
            payloads,
            g_ir.as_ref(),
        )?;
        Ok((child, event, nr))
    }

    /// The peer's CREATE_CHILD_SA: a Child SA rekey is answered (RFC 7296
    /// 1.3.3); a new Child SA beside ours is refused with
    /// NO_ADDITIONAL_SAS (one per tunnel); an IKE SA rekey goes to
    /// [`IkeSa::on_ike_rekey_request`]. Returns the response's payloads.
    pub(super) fn on_create_child_sa<R: CryptoRngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        est: &mut Established,
        payloads: &[Payload],
    ) -> Vec<Payload> {
        let (id, tunnel) = (self.id, self.tunnel);
        let refuse = |n: u16| vec![notify_payload(n, Vec::new())];
        if super::ike_rekey::is_ike_rekey(payloads) {
            return self.on_ike_rekey_request(ctx, est, payloads);
        }
        // RFC 7296 2.25.2: no Child SA rekey while the IKE SA is being
        // rekeyed (or was: the Child SAs have moved).
        if est.our_ike_rekey.is_some() || self.superseded.is_some() {
            return refuse(notify::TEMPORARY_FAILURE);
        }
        let rekey = notifies(payloads, notify::REKEY_SA)
            .find(|n| n.protocol == PROTO_ESP && n.spi.len() == 4)
            .map(|n| u32::from_be_bytes([n.spi[0], n.spi[1], n.spi[2], n.spi[3]]));
        let Some(old_spi_out) = rekey else {
            ctx.log(Some(id), || {
                "refused the peer's CREATE_CHILD_SA: not a Child SA rekey (one Child SA per tunnel)"
                    .to_string()
            });
            return refuse(notify::NO_ADDITIONAL_SAS);
        };
        let Some(pos) = est.children.iter().position(|c| c.spi_out == old_spi_out) else {
            ctx.log(Some(id), || {
                format!(
                    "the peer rekeys Child SA 0x{old_spi_out:08x} (its SPI), which we do not \
                     have (any more): CHILD_SA_NOT_FOUND"
                )
            });
            return refuse(notify::CHILD_SA_NOT_FOUND);
        };
        let Some(t) = find_tunnel(ctx.tunnels, tunnel) else {
            return refuse(notify::NO_ADDITIONAL_SAS);
        };
        let sa = find_payload!(payloads, Sa);
        let ni = find_payload!(payloads, Nonce);
        let tsi = find_payload!(payloads, TsI);
        let tsr = find_payload!(payloads, TsR);
        let (Some(sa), Some(ni), Some(tsi), Some(tsr)) = (sa, ni, tsi, tsr) else {
            return refuse(notify::INVALID_SYNTAX);
        };
        let no_proposal = |ctx: &mut Ctx<'_, R>, why: String| {
            ctx.log(Some(id), || {
                format!("refused the peer's rekey of Child SA 0x{old_spi_out:08x}: {why}")
            });
            ctx.event(Event::NegotiationFailed {
                tunnel,
                reason: FailureReason::NoProposalChosen {
                    sa: SaKind::Child,
                    ours: proposal::describe_esp_config(&t.esp_suites),
                    theirs: Some(proposal::describe_offer(sa)),
                },
            });
            refuse(notify::NO_PROPOSAL_CHOSEN)
        };
        let Some(choice) = proposal::choose_esp(sa, &t.esp_suites) else {
            return no_proposal(ctx, "no ESP proposal in common".into());
        };
        let groups = dh_groups(sa, choice.reply_template.number);
        let g_ir = match t.pfs {
            Some(g) => {
                if !groups.contains(&g.iana()) {
                    return no_proposal(
                        ctx,
                        format!(
                            "we require PFS with {}, the peer offers groups {groups:?}",
                            g.name()
                        ),
                    );
                }
                let ke = match find_payload!(payloads, Ke) {
                    Some(ke) if ke.group == g.iana() => ke,
                    _ => {
                        return vec![notify_payload(
                            notify::INVALID_KE_PAYLOAD,
                            g.iana().to_be_bytes().to_vec(),
                        )]
                    }
                };
                let dh = DhPrivate::generate(g, ctx.rng);
                match dh.agree(&ke.data) {
                    Ok(s) => Some((dh, s)),
                    Err(_) => return refuse(notify::INVALID_SYNTAX),
                }
            }
            None if !groups.is_empty() && !groups.contains(&0) => {
                return no_proposal(
                    ctx,
                    format!("the peer requires PFS (groups {groups:?}) and we have no `set pfs`"),
                );
            }
            None => None,
        };
        let local_ts = narrow(&tsr.selectors, &vti_selectors());
        let remote_ts = narrow(&tsi.selectors, &vti_selectors());
        if local_ts.is_empty() || remote_ts.is_empty() {
            return refuse(notify::TS_UNACCEPTABLE);
        }
        // The peer rekeys it a second time (its first rekey failed on its
        // side): the newest request stands, the SA of the first one, never
        // switched on, goes.
        if let Some(prev) = est.children[pos].rekeyed_by_peer.take() {
            if let Some(p) = est
                .children
                .iter()
                .position(|c| c.spi_in == prev.new_spi_in && c.outbound_pending)
            {
                let c = est.children.remove(p);
                ctx.child_spis.remove(&c.spi_in);
                ctx.event(Event::ChildSaDown {
                    id,
                    tunnel,
                    spi_in: c.spi_in,
                    spi_out: c.spi_out,
                    reason: DownReason::RekeyCollision,
                });
            }
        }
        let Some(pos) = est.children.iter().position(|c| c.spi_out == old_spi_out) else {
            return refuse(notify::CHILD_SA_NOT_FOUND);
        };
        // Our own rekey of it queued but not sent: the peer's does the job.
        if est.children[pos].rekeying && est.our_rekey.is_none() {
            let spi = est.children[pos].spi_in;
            self.queued
                .retain(|r| *r != Request::RekeyChild { spi_in: spi });
            est.children[pos].rekeying = false;
        }
        let spi_in = ctx.alloc_child_spi();
        let nr = ctx.nonce();
        let (reply_dh, shared) = match g_ir {
            Some((dh, s)) => (Some(dh), Some(s)),
            None => (None, None),
        };
        let mut response = vec![Payload::Sa(SaPayload {
            proposals: vec![with_dh(choice.reply(spi_in), t.pfs)],
        })];
        response.push(Payload::Nonce(nr.clone()));
        if let Some(dh) = &reply_dh {
            response.push(Payload::Ke(KePayload {
                group: dh.group().iana(),
                data: dh.public_ke_data().to_vec(),
            }));
        }
        response.push(Payload::TsI(TsPayload {
            selectors: remote_ts.clone(),
        }));
        response.push(Payload::TsR(TsPayload {
            selectors: local_ts.clone(),
        }));
        let (mut child, mut event) = self.child_sa(
            ctx,
            t,
            &est.keyed,
            Role::Responder,
            spi_in,
            choice.peer_spi,
            choice.suite,
            choice.esn,
            ni,
            &nr,
            local_ts,
            remote_ts,
            shared.as_ref(),
        );
        let old = &mut est.children[pos];
        child.outbound_pending = true;
        event.outbound = false;
        event.rekey_of = Some(old.spi_in);
        old.rekeyed_by_peer = Some(PeerRekey {
            new_spi_in: spi_in,
            ni: ni.clone(),
            nr,
        });
        ctx.log(Some(id), || {
            format!(
                "the peer rekeys Child SA 0x{:08x}: new SA 0x{spi_in:08x} receiving; sending on \
                 it once the peer deletes the old one",
                old.spi_in
            )
        });
        est.children.push(child);
        ctx.event(Event::ChildSaUp(event));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::lowest_is_ours;

    #[test]
    fn the_lowest_of_four_nonces_decides_whose_sa_is_redundant() {
        let (a, b, c, d) = ([1u8, 9], [5u8, 0], [2u8, 0], [7u8, 7]);
        assert!(lowest_is_ours([&a, &b], [&c, &d]));
        assert!(!lowest_is_ours([&c, &d], [&a, &b]));
        assert!(lowest_is_ours([&b, &a], [&d, &c]));
        // Both ends evaluate the same four nonces with the roles swapped.
        assert_ne!(
            lowest_is_ours([&b, &d], [&a, &c]),
            lowest_is_ours([&a, &c], [&b, &d])
        );
    }
}
