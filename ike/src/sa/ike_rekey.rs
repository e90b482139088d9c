//! Rekeying the IKE SA (RFC 7296 1.3.2, 2.18, 2.8.2), both roles.
//!
//! A CREATE_CHILD_SA on the old IKE SA carries SA (IKE proposals with the
//! sender's new SPI), Ni/Nr and KEi/KEr. The new IKE SA's SKEYSEED is
//! `prf(SK_d (old), g^ir (new) | Ni | Nr)`; its initiator is the one who
//! started the rekey, its message IDs start at 0, and it takes over the
//! Child SAs (nothing changes in the kernel). The rekey's initiator then
//! deletes the old IKE SA; the responder's old SA only answers
//! retransmissions and that delete (and goes after a while without it).
//!
//! Simultaneous rekeys (2.8.2): each side answers the other's request;
//! once both exchanges are done, the new IKE SA made by the exchange with
//! the lowest nonce is redundant and deleted by its initiator; the other
//! takes the Child SAs, and its initiator deletes the old IKE SA.
//! While our rekey is in flight, other CREATE_CHILD_SA requests are
//! answered TEMPORARY_FAILURE (2.25.2).

use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::child_create::{NONCE_LEN, ke_payload, nonce_payload, sa_payload};
use super::effect::Effect;
use super::endpoint::Ctx;
use super::ike_init::random_spi;
use super::ike_sa::{
    IkeSa, IkeSaParams, KeyInput, Keys, PeerRekey, Phase, Task, error_notify, later, notify,
};
use super::timers::IkeTimer;
use super::types::{CommandError, Event};
use crate::crypto::ke::KeyExchange;
use crate::crypto::proposal::{self, KeCheck, SelectOptions};
use crate::wire::codes::{ExchangeType, KeId, NotifyType, ProtocolId};
use crate::wire::sa::Proposal;
use crate::wire::{self, Message, Notify, Payload};

/// How long a rekey responder keeps the old IKE SA for the delete.
const RETIRE_AFTER: Duration = Duration::from_secs(60);
/// Retry of a refused rekey (strongSwan: 15 s minus up to 10 s).
const RETRY_BASE: Duration = Duration::from_secs(15);
const RETRY_JITTER: Duration = Duration::from_secs(10);
/// The shortest wait before a retry that must come before the SA ends.
const RETRY_MIN: Duration = Duration::from_secs(1);

fn ike_spi(p: &Proposal) -> Option<u64> {
    <[u8; 8]>::try_from(p.spi.as_slice())
        .ok()
        .map(u64::from_be_bytes)
        .filter(|&s| s != 0)
}

/// `wait` for a retry of a refused rekey, but one after the SA's `end` (a
/// lifetime shorter than the retry interval) would never come: then half
/// the time left, at least [`RETRY_MIN`]. For IKE and Child SAs alike.
pub(crate) fn wait_before_end(now: Instant, wait: Duration, end: Option<Instant>) -> Duration {
    match end {
        Some(end) => {
            let half = end.saturating_duration_since(now).checked_div(2);
            wait.min(half.unwrap_or_default().max(RETRY_MIN))
        }
        None => wait,
    }
}

/// Our CREATE_CHILD_SA that rekeys the IKE SA: the task from the request
/// to its answer.
#[derive(Debug, Default)]
pub(crate) struct RekeyIke {
    /// Filled when sent: the new IKE SA's SPI (ours), our nonce, key
    /// exchange and proposals.
    pub(crate) spi: u64,
    pub(crate) nonce: Vec<u8>,
    pub(crate) ke: Option<Box<dyn KeyExchange>>,
    pub(crate) offered: Vec<Proposal>,
}

impl IkeSa {
    /// [`wait_before_end`] of this IKE SA (its `over_time` deadline).
    pub(crate) fn retry_before_end(&self, now: Instant, wait: Duration) -> Duration {
        wait_before_end(now, wait, self.timers.get(IkeTimer::Expire))
    }

    /// Starts a rekey of the IKE SA (the `rekey` command, the timer).
    pub(crate) fn rekey_ike(&mut self, ctx: &mut Ctx, now: Instant) -> Result<(), CommandError> {
        match self.phase {
            Phase::Established => {}
            Phase::Rekeying => return Ok(()),
            _ => return Err(CommandError::WrongState(self.state())),
        }
        if self
            .window
            .queue
            .iter()
            .any(|t| matches!(t, Task::RekeyIke(_) | Task::DeleteIke))
        {
            return Ok(());
        }
        self.timers.stop(IkeTimer::Rekey);
        self.window
            .queue
            .push_back(Task::RekeyIke(RekeyIke::default()));
        self.next_task(ctx, now);
        Ok(())
    }

    /// Sends our CREATE_CHILD_SA for a new IKE SA, once nothing else of
    /// ours is in flight and no Child SA is half made.
    pub(crate) fn send_rekey_ike(&mut self, ctx: &mut Ctx, now: Instant) {
        let busy = self.window.held().is_some()
            || self.children.iter().any(|c| {
                matches!(
                    c.state,
                    super::ChildState::Creating | super::ChildState::Installing
                )
            });
        if busy {
            // Again when the child is done (it calls next_task). The tasks
            // behind this one go first: one of them may be the very
            // CREATE_CHILD_SA that makes us busy, and nothing else would
            // send it. Terminates: each turn moves a RekeyIke behind a task
            // of another kind, which next_task then sends or keeps at the
            // head.
            self.window
                .queue
                .push_back(Task::RekeyIke(RekeyIke::default()));
            if self
                .window
                .queue
                .iter()
                .any(|t| !matches!(t, Task::RekeyIke(_)))
            {
                self.next_task(ctx, now);
            }
            return;
        }
        let Some(keys) = self.keys.as_ref() else {
            return;
        };
        let group = self.rekey.group.unwrap_or(keys.suite.ke);
        let proposals = proposal::promote_ke(&self.peer.ike_proposals, group)
            .unwrap_or_else(|| self.peer.ike_proposals.clone());
        let first_ke = proposals.first().and_then(|p| {
            p.transforms
                .iter()
                .find(|t| t.transform_type == crate::wire::codes::TransformType::KE)
                .map(|t| KeId(t.id))
        });
        let material = (|| {
            let spi = random_spi(ctx)?;
            let nonce = ctx
                .provider
                .random_vec(NONCE_LEN)
                .map_err(|e| e.to_string())?;
            let g = first_ke.ok_or("no key exchange method in the IKE proposals")?;
            let ke = ctx
                .provider
                .start_key_exchange(g)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((spi, nonce, ke))
        })();
        let (spi, nonce, ke) = match material {
            Ok(m) => m,
            Err(e) => {
                info!("{}: cannot rekey the IKE SA: {e}", self.name());
                return;
            }
        };
        let offered: Vec<Proposal> = proposals
            .into_iter()
            .map(|mut p| {
                p.spi = spi.to_be_bytes().to_vec();
                p
            })
            .collect();
        let inner = vec![
            Payload::Sa(offered.clone()),
            Payload::Nonce(nonce.clone()),
            Payload::Ke(wire::KeyExchange {
                group: ke.method(),
                data: ke.public_value().to_vec(),
            }),
        ];
        info!("rekeying IKE SA {}", self.name());
        self.phase = Phase::Rekeying;
        self.send_request(
            ctx,
            now,
            ExchangeType::CREATE_CHILD_SA,
            inner,
            Task::RekeyIke(RekeyIke {
                spi,
                nonce,
                ke: Some(ke),
                offered,
            }),
        );
    }

    /// The answer to our IKE rekey.
    pub(crate) fn rekey_ike_response(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
        task: RekeyIke,
    ) {
        let RekeyIke {
            spi: spi_i,
            nonce: nonce_i,
            ke,
            offered,
        } = task;
        if matches!(self.phase, Phase::Rekeying) {
            self.phase = Phase::Established;
        }
        let name = self.name();
        if let Some(g) =
            notify(msg, NotifyType::INVALID_KE_PAYLOAD).and_then(Notify::invalid_ke_group)
            && self.rekey.ke_retries < ctx.cfg.max_invalid_ke_retries
        {
            debug!("{name}: peer wants key exchange {g} for the new IKE SA, retrying");
            self.rekey.ke_retries = self.rekey.ke_retries.saturating_add(1);
            self.rekey.group = Some(g);
            self.window
                .queue
                .push_front(Task::RekeyIke(RekeyIke::default()));
            return;
        }
        (self.rekey.ke_retries, self.rekey.group) = (0, None);
        let result = (|| {
            if let Some(t) = error_notify(msg) {
                return Err((Some(t), format!("peer sent {t}")));
            }
            let sa = sa_payload(msg).ok_or((None, "no SA payload".to_string()))?;
            let selected = proposal::check_response(&offered, sa, false)
                .map_err(|e| (None, e.to_string()))?
                .proposal;
            let spi_r = ike_spi(&selected).ok_or((None, "no 8-octet SPI".to_string()))?;
            let suite = proposal::ike_suite(&selected).map_err(|e| (None, e.to_string()))?;
            let nonce_r = nonce_payload(msg)
                .ok_or((None, "no nonce".to_string()))?
                .to_vec();
            let ke = ke.ok_or((None, "no key exchange".to_string()))?;
            let kp = ke_payload(msg)
                .filter(|k| k.group == ke.method() && suite.ke == ke.method())
                .ok_or((None, "no KE payload of our group".to_string()))?;
            let shared = ke.complete(&kp.data).map_err(|e| (None, e.to_string()))?;
            let keys = self
                .keys
                .as_ref()
                .ok_or((None, "no keys".to_string()))?
                .rekeyed(
                    ctx.provider.as_ref(),
                    &shared,
                    KeyInput {
                        proposal: selected,
                        suite,
                        ni: &nonce_i,
                        nr: &nonce_r,
                        spi_i,
                        spi_r,
                        initiator: true,
                    },
                )
                .map_err(|e| (None, e))?;
            Ok((
                keys,
                spi_r,
                nonce_i.as_slice().min(nonce_r.as_slice()).to_vec(),
            ))
        })();
        let (keys, spi_r, ours_min) = match result {
            Ok(r) => r,
            Err((notify, e)) => {
                info!("{name}: rekeying the IKE SA failed: {e}");
                if let Some(theirs) = self.rekey.crossing.take() {
                    // The peer's rekey stands alone: it takes over.
                    self.adopt(ctx, now, theirs.sa, false);
                } else if notify == Some(NotifyType::TEMPORARY_FAILURE)
                    || notify == Some(NotifyType::NO_ADDITIONAL_SAS)
                {
                    let wait = RETRY_BASE.saturating_sub(ctx.jitter(RETRY_JITTER));
                    let at = later(now, self.retry_before_end(now, wait));
                    self.timers.arm(IkeTimer::Rekey, at);
                }
                return;
            }
        };
        let ours = self.new_sa(ctx, now, true, spi_i, spi_r, keys);
        match self.rekey.crossing.take() {
            None => self.adopt(ctx, now, ours, true),
            Some(theirs) => {
                let PeerRekey {
                    sa: theirs,
                    nonce_min: theirs_min,
                } = *theirs;
                // Both rekeyed (2.8.2): the lowest nonce made the redundant SA.
                let lost = ours_min < theirs_min;
                info!(
                    "{name}: IKE rekey collision: ours {} the peer's",
                    if lost { "loses to" } else { "wins over" }
                );
                #[cfg(test)]
                ctx.collisions.push((ours_min, theirs_min, lost));
                let (winner, mut loser, we_made_winner) = if lost {
                    (theirs, ours, false)
                } else {
                    (ours, theirs, true)
                };
                if lost {
                    // Ours is redundant: delete it on itself.
                    loser.phase = Phase::Rekeyed;
                    loser.window.queue.push_back(Task::DeleteIke);
                    loser.next_task(ctx, now);
                } else {
                    // The peer deletes its redundant one; until then it
                    // answers, then it goes.
                    loser.phase = Phase::Rekeyed;
                    loser.timers.arm(IkeTimer::Retire, later(now, RETIRE_AFTER));
                }
                ctx.effects.push(Effect::NewSa {
                    from: self.id,
                    sa: Box::new(loser),
                });
                self.adopt(ctx, now, winner, we_made_winner);
            }
        }
    }

    /// A new IKE SA with the keys of a rekey of this one.
    fn new_sa(
        &self,
        ctx: &mut Ctx,
        now: Instant,
        initiator: bool,
        spi_i: u64,
        spi_r: u64,
        keys: Keys,
    ) -> IkeSa {
        let mut sa = IkeSa::new(IkeSaParams {
            id: ctx.take_ike_id(),
            initiator,
            phase: Phase::Established,
            peer: self.peer.clone(),
            local: self.local,
            remote: self.remote,
            spi_i,
            spi_r,
        });
        sa.established_at = Some(now);
        sa.keys = Some(keys);
        sa.local_id = self.local_id.clone();
        sa.remote_id = self.remote_id.clone();
        // The Child SAs move over with their counters.
        sa.dpd.bytes = self.dpd.bytes;
        sa.fragmentation = self.fragmentation;
        sa.nat = super::natt::NatT {
            local: self.nat.local,
            remote: self.nat.remote,
            encap: self.nat.encap,
            init_remote: None,
        };
        sa.mobike = self.mobike;
        sa.redirect = self.redirect.clone();
        sa.timers.set(
            IkeTimer::Dpd,
            super::dpd::first_check(self.peer.dpd_delay, now),
        );
        sa.timers
            .set(IkeTimer::Keepalive, self.timers.get(IkeTimer::Keepalive));
        sa
    }

    /// `new` replaces this IKE SA: it takes the Child SAs and our queued
    /// work; we delete this one if we made `new` (`delete_old`), else wait
    /// for the peer's delete.
    pub(crate) fn adopt(&mut self, ctx: &mut Ctx, now: Instant, mut new: IkeSa, delete_old: bool) {
        // Deleted (by command) while being rekeyed: the new one goes too.
        let terminated = delete_old
            && self
                .window
                .queue
                .iter()
                .any(|t| matches!(t, Task::DeleteIke));
        new.children = std::mem::take(&mut self.children);
        // The virtual IPs and their leases are the IKE SA's, not its keys'.
        new.vips = std::mem::take(&mut self.vips);
        // Children waiting to send after a reauthentication move along.
        ctx.effects.push(Effect::Adopted {
            from: self.id,
            to: new.id(),
        });
        // The new SA sends the keepalives from now on.
        self.timers.stop(IkeTimer::Keepalive);
        new.pending_children = std::mem::take(&mut self.pending_children);
        new.window.queue = std::mem::take(&mut self.window.queue)
            .into_iter()
            .filter(|t| !matches!(t, Task::RekeyIke(_) | Task::DeleteIke))
            .collect();
        new.start_ike_lifetimes(ctx, now);
        new.inactivity_adopt(&mut self.timers);
        self.inherit_reauth(&mut new);
        new.reauth.replacing = self.reauth.replacing;
        info!(
            "IKE SA {} rekeyed to {}, SPIs {:016x}_i {:016x}_r",
            self.name(),
            new.id(),
            new.spi_i,
            new.spi_r
        );
        ctx.events.push_back(Event::IkeRekeyed {
            old: self.id,
            new: new.id(),
            peer: self.peer.name.clone(),
        });
        self.timers.stop(IkeTimer::Rekey);
        self.timers.stop(IkeTimer::Expire);
        self.timers.stop(IkeTimer::Reauth);
        self.reauth.replacing = false;
        self.phase = Phase::Rekeyed;
        if delete_old {
            self.window.queue.push_front(Task::DeleteIke);
            self.next_task(ctx, now);
        } else {
            self.timers.arm(IkeTimer::Retire, later(now, RETIRE_AFTER));
        }
        if terminated {
            new.pending_children.clear();
            new.window.queue.push_front(Task::DeleteIke);
        }
        new.next_task(ctx, now);
        ctx.effects.push(Effect::NewSa {
            from: self.id,
            sa: Box::new(new),
        });
    }

    /// Responder: a CREATE_CHILD_SA that rekeys the IKE SA.
    pub(crate) fn ike_rekey_request(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
        ke: Option<super::create_ke::KeDone>,
    ) {
        let mid = msg.header.message_id;
        let name = self.name();
        let refuse = |sa: &mut Self, ctx: &mut Ctx, n: Notify| {
            sa.send_response(
                ctx,
                ExchangeType::CREATE_CHILD_SA,
                mid,
                vec![Payload::Notify(n)],
            );
        };
        let ours_in_flight = matches!(self.window.in_flight(), Some(Task::RekeyIke(_)));
        let busy = match self.phase {
            Phase::Established => {
                self.window.outstanding().is_some() || self.window.held().is_some()
            }
            Phase::Rekeying => !ours_in_flight || self.rekey.crossing.is_some(),
            _ => true,
        };
        if busy {
            info!("{name}: peer rekeys the IKE SA while it is busy, sending TEMPORARY_FAILURE");
            refuse(
                self,
                ctx,
                Notify::new(NotifyType::TEMPORARY_FAILURE, Vec::new()),
            );
            return;
        }
        let (Some(offered), Some(ni), Some(kei)) =
            (sa_payload(msg), nonce_payload(msg), ke_payload(msg))
        else {
            info!("{name}: IKE rekey request lacks SA, Ni or KEi");
            refuse(
                self,
                ctx,
                Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()),
            );
            return;
        };
        let opts = SelectOptions {
            preference: ctx.cfg.preference,
            skip_ke: false,
        };
        let offered: Vec<Proposal> = offered
            .iter()
            .filter(|p| p.protocol == ProtocolId::IKE)
            .cloned()
            .collect();
        let mut selected = match proposal::select(&self.peer.ike_proposals, &offered, opts) {
            Ok(s) => s.proposal,
            Err(e) => {
                info!("{name}: IKE rekey: {e}, sending NO_PROPOSAL_CHOSEN");
                refuse(
                    self,
                    ctx,
                    Notify::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()),
                );
                return;
            }
        };
        if let KeCheck::InvalidKePayload(g) = proposal::check_ke_payload(&selected, Some(kei.group))
        {
            info!(
                "{name}: IKE rekey with key exchange {}, asking for {g}",
                kei.group
            );
            refuse(self, ctx, Notify::invalid_ke_payload(g));
            return;
        }
        // The key exchange is CPU work (`create_ke`): the request is held
        // and handled again with its result.
        let Some(ke) = ke else {
            self.await_create_ke(ctx, msg, kei);
            return;
        };
        let made = (|| {
            let spi_i = ike_spi(&selected).ok_or("no 8-octet SPI")?;
            let suite = proposal::ike_suite(&selected).map_err(|e| e.to_string())?;
            let (public, shared) = ke?;
            let spi_r = random_spi(ctx)?;
            let nonce_r = ctx
                .provider
                .random_vec(NONCE_LEN)
                .map_err(|e| e.to_string())?;
            let keys = self.keys.as_ref().ok_or("no keys")?.rekeyed(
                ctx.provider.as_ref(),
                &shared,
                KeyInput {
                    proposal: selected.clone(),
                    suite,
                    ni,
                    nr: &nonce_r,
                    spi_i,
                    spi_r,
                    initiator: false,
                },
            )?;
            Ok::<_, String>((spi_i, spi_r, nonce_r, public, keys))
        })();
        let (spi_i, spi_r, nonce_r, public, keys) = match made {
            Ok(m) => m,
            Err(e) => {
                info!("{name}: IKE rekey request unusable: {e}, sending INVALID_SYNTAX");
                refuse(
                    self,
                    ctx,
                    Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()),
                );
                return;
            }
        };
        selected.spi = spi_r.to_be_bytes().to_vec();
        self.send_response(
            ctx,
            ExchangeType::CREATE_CHILD_SA,
            mid,
            vec![
                Payload::Sa(vec![selected]),
                Payload::Nonce(nonce_r.clone()),
                Payload::Ke(wire::KeyExchange {
                    group: kei.group,
                    data: public,
                }),
            ],
        );
        let theirs = self.new_sa(ctx, now, false, spi_i, spi_r, keys);
        if ours_in_flight {
            // A collision: decided when our own rekey is answered.
            let min = ni.min(nonce_r.as_slice()).to_vec();
            self.rekey.crossing = Some(Box::new(PeerRekey {
                sa: theirs,
                nonce_min: min,
            }));
        } else {
            self.adopt(ctx, now, theirs, false);
        }
    }
}
