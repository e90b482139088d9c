//! Rekeying Child SAs (RFC 7296 1.3.3, 2.8, 2.8.1, 2.25.1), both roles.
//!
//! A rekey is a CREATE_CHILD_SA with N(REKEY_SA) naming the old SA (the
//! initiator's inbound SPI), with or without PFS as the child's proposals
//! say. The new Child SA keeps the old one's kernel reqid, so the
//! policies stay in place and only SAs come and go (make-before-break):
//!
//! ```text
//!  rekey initiator                            rekey responder
//!  AllocSpi(new)
//!  CREATE_CHILD_SA N(REKEY_SA) ------------>  AllocSpi(new)
//!                                             InstallRekeyed(new, inbound only)
//!                              <------------  answer
//!  InstallRekeyed(new, in + out)
//!  (traffic goes out on the new SA: the kernel picks the newest SA of a reqid)
//!  INFORMATIONAL D(old) ------------------->  InstallOutbound(new)
//!                                             RemoveChild(old, keep policies)
//!                              <------------  D(old) (once InstallOutbound is done)
//!  RemoveChild(old, keep policies)
//! ```
//!
//! So each side's new inbound SA is in the kernel before the peer can send
//! on it, and each side's old inbound SA stays until the peer no longer
//! sends on it.
//!
//! Collisions: if both peers rekey the same Child SA at once, each answers
//! the other's request as usual; the new SA made by the exchange with the
//! lowest of the four nonces is redundant and deleted by its initiator
//! (2.8.1), whose side never installs its outbound SA; the winner's
//! initiator deletes the old SA. If the peer lost and has not deleted its
//! redundant SA `ORPHAN_GRACE` after we won, we delete it ourselves: it
//! never carries traffic, and charon 5.9.8 can miss our answer for good
//! (it drops a response carrying the message ID of a request of ours it
//! is still processing, and a rekey of the IKE SA ends its retransmits). A rekey of a Child SA we are deleting is
//! answered TEMPORARY_FAILURE, of one we do not have CHILD_SA_NOT_FOUND
//! (2.25); a delete crossing our own delete is answered without Delete
//! payload (1.4.1). If the peer deletes the Child SA after answering our
//! rekey and its Delete overtakes the answer, the new SA is not installed
//! (its policies went with the old one) but deleted at the peer too.

use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::child_create::{ChildFate, CreateChild};
use super::endpoint::Ctx;
use super::ike_rekey::wait_before_end;
use super::ike_sa::{IkeSa, KernelPurpose, Phase, Task, later};
use super::timers::ChildTimer;
use super::types::{ChildFailReason, ChildId, ChildState, CommandError, Event, KernelOp};
use super::window::{Held, Waits};
use crate::wire::Notify;
use crate::wire::codes::NotifyType;

/// How long the peer has to delete its redundant SA after we won a rekey
/// collision before we delete it ourselves. The peer deletes it as soon
/// as our answer is in; charon 5.9.8 may never do so: it drops an answer
/// whose message ID is that of a request of ours it is still processing
/// ("ignoring request with ID n, already processing"), and its rekey is
/// gone for good if the IKE SA is rekeyed before it retransmits.
pub(crate) const ORPHAN_GRACE: Duration = Duration::from_secs(5);

/// How long to wait before retrying a rekey the peer refused (strongSwan:
/// 15 s minus up to 10 s of jitter).
const RETRY_BASE: Duration = Duration::from_secs(15);
const RETRY_JITTER: Duration = Duration::from_secs(10);

impl IkeSa {
    /// Starts a rekey of `child` (the `rekey` command, the rekey timer,
    /// the kernel's soft expire).
    pub(crate) fn rekey_child(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        child: ChildId,
    ) -> Result<(), CommandError> {
        if !matches!(self.phase, Phase::Established) {
            return Err(CommandError::WrongState(self.state()));
        }
        // A Child SA the peer's rekey made, whose old SA the peer has not
        // deleted yet: the peer may not have our answer (charon 5.9.8 drops
        // an answer carrying the message ID of a request of ours it is
        // processing). Rekeyed now, the peer would answer
        // CHILD_SA_NOT_FOUND, and once its retransmission got our cached
        // answer it would send on an SA we no longer have. Later, then.
        let taken_over = self
            .children
            .iter()
            .find(|c| c.id == child)
            .and_then(|c| c.rekey.filter(|_| !c.initiator))
            .is_none_or(|prev| !self.children.iter().any(|o| o.id == prev));
        let Some(c) = self.children.iter_mut().find(|c| c.id == child) else {
            return Err(CommandError::NoSuchSa);
        };
        match c.state {
            ChildState::Installed if !c.redundant() && !taken_over => {
                debug!(
                    "CHILD_SA {}{child} is rekeyed once the peer has deleted the SA it replaced",
                    c.cfg.name
                );
                c.timers
                    .arm(ChildTimer::Rekey, later(now, Duration::from_secs(1)));
                return Ok(());
            }
            ChildState::Installed if !c.redundant() => {}
            // Already being rekeyed or replaced: nothing to do.
            ChildState::Rekeying | ChildState::Rekeyed => return Ok(()),
            _ => return Err(CommandError::NoSuchSa),
        }
        c.state = ChildState::Rekeying;
        c.timers.stop(ChildTimer::Rekey);
        let (cfg, reqid) = (c.cfg.clone(), c.reqid);
        let what = format!(
            "CHILD_SA {}{} with SPIs {:08x}_i {:08x}_o",
            c.cfg.name, c.id, c.spi_in, c.spi_out
        );
        debug!("rekeying {what} (IKE SA {})", self.name());
        let new = self.new_child_with(ctx, cfg, true, reqid, Some(child));
        self.window
            .queue
            .push_back(Task::CreateChild(CreateChild::new(new)));
        self.next_task(ctx, now);
        Ok(())
    }

    /// Responder: the Child SA an N(REKEY_SA) names, or the notify to
    /// answer with.
    pub(crate) fn rekey_target(&self, n: &Notify) -> Result<ChildId, Notify> {
        let Some((protocol, spi_bytes)) = n.rekey_spi() else {
            return Err(Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()));
        };
        let not_found = Notify {
            protocol,
            spi: spi_bytes.to_vec(),
            notify_type: NotifyType::CHILD_SA_NOT_FOUND,
            data: Vec::new(),
        };
        let Ok(b) = <[u8; 4]>::try_from(spi_bytes) else {
            return Err(not_found);
        };
        let spi = u32::from_be_bytes(b);
        if !matches!(self.phase, Phase::Established) {
            info!(
                "{}: peer rekeys CHILD_SA {spi:08x} while the IKE SA is going, sending TEMPORARY_FAILURE",
                self.name()
            );
            return Err(Notify::new(NotifyType::TEMPORARY_FAILURE, Vec::new()));
        }
        let c = self
            .children
            .iter()
            .find(|c| c.protocol == protocol && c.spi_out == spi && !c.redundant());
        match c.map(|c| (c.id, c.state)) {
            // Rekeying: a collision; answer as usual (2.25.1).
            Some((id, ChildState::Installed | ChildState::Rekeying)) => Ok(id),
            Some((id, st @ (ChildState::Rekeyed | ChildState::Deleting))) => {
                info!(
                    "{}: peer rekeys CHILD_SA {id} with SPI {spi:08x}, which is {st}; sending TEMPORARY_FAILURE",
                    self.name()
                );
                Err(Notify::new(NotifyType::TEMPORARY_FAILURE, Vec::new()))
            }
            _ => {
                info!(
                    "{}: peer rekeys unknown CHILD_SA {spi:08x}, sending CHILD_SA_NOT_FOUND",
                    self.name()
                );
                Err(not_found)
            }
        }
    }

    /// Initiator of a rekey, with the answer in: whether `child` lost a
    /// collision with the peer's rekey of the same Child SA (2.8.1: the
    /// exchange with the lowest nonce made the redundant SA). If it won,
    /// the peer's new SA is marked redundant here.
    pub(crate) fn rekey_collision(&mut self, ctx: &mut Ctx, now: Instant, child: ChildId) -> bool {
        let Some(c) = self.children.iter().find(|c| c.id == child) else {
            return false;
        };
        let (Some(old), true) = (c.rekey, c.initiator) else {
            return false;
        };
        let ours = c.nonce_min.clone();
        let Some(theirs) = self.children.iter_mut().find(|y| {
            y.id != child
                && y.rekey == Some(old)
                && !y.initiator
                && !y.redundant()
                && !matches!(y.state, ChildState::Deleting)
        }) else {
            return false;
        };
        let lost = ours < theirs.nonce_min;
        #[cfg(test)]
        ctx.collisions
            .push((ours.clone(), theirs.nonce_min.clone(), lost));
        #[cfg(not(test))]
        let _ = ctx;
        if !lost {
            theirs.fate = ChildFate::Redundant;
            theirs.out_pending = None;
            // It never carries traffic: if the peer does not delete it,
            // we do (a delete crossing the peer's is answered as 1.4.1).
            theirs
                .timers
                .arm(ChildTimer::Orphan, later(now, ORPHAN_GRACE));
        }
        let theirs = theirs.id;
        info!(
            "{}: rekey collision on CHILD_SA {old}: ours {child} {} the peer's {theirs}",
            self.name(),
            if lost { "loses to" } else { "wins over" },
        );
        lost
    }

    /// A Child SA made by a rekey of `old` is installed.
    pub(crate) fn rekey_installed(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        new: ChildId,
        old: ChildId,
    ) {
        let name = self.name();
        let Some(c) = self.child_mut(new) else {
            return;
        };
        if c.redundant() {
            if c.initiator {
                // Ours lost: delete it (the peer never sends on it).
                info!(
                    "deleting redundant CHILD_SA {}{new} after a rekey collision (IKE SA {name})",
                    c.cfg.name
                );
                c.state = ChildState::Deleting;
                self.window.queue.push_back(Task::DeleteChild(new));
            }
            return;
        }
        if c.initiator {
            let cname = c.cfg.name.clone();
            let Some(o) = self.child_mut(old) else {
                // The old one went meanwhile: this is a child like any other.
                return;
            };
            if o.state == ChildState::Deleting && !o.replaced() {
                // Deleted (by command) while we rekeyed it: the new one
                // goes too.
                if let Some(c) = self.child_mut(new) {
                    c.state = ChildState::Deleting;
                }
                self.window.queue.push_back(Task::DeleteChild(new));
                return;
            }
            let Some(o) = self.child_mut(old) else {
                return;
            };
            o.mark_replaced();
            let delete = o.state != ChildState::Deleting;
            if delete {
                o.state = ChildState::Rekeyed;
            }
            info!("CHILD_SA {cname}{old} rekeyed to {cname}{new} (IKE SA {name})");
            ctx.events.push_back(Event::ChildRekeyed {
                ike: self.id,
                old,
                new,
                name: cname,
            });
            if delete {
                self.window.queue.push_back(Task::DeleteChild(old));
            }
        } else {
            match self.child_mut(old) {
                Some(o) => {
                    // The peer deletes it; until then it stays in use.
                    if o.state == ChildState::Installed {
                        o.state = ChildState::Rekeyed;
                    }
                }
                None => {
                    // Gone already: the peer receives on the new SA.
                    self.install_outbound(ctx, new);
                }
            }
        }
        let _ = now;
    }

    /// Our rekey of `old` failed: it stays as it was (or replaced by the
    /// peer's rekey); a refusal is retried later, CHILD_SA_NOT_FOUND
    /// makes a new Child SA from scratch (2.25).
    pub(crate) fn rekey_failed(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        old: ChildId,
        reason: &ChildFailReason,
    ) {
        if self.is_dead() {
            return;
        }
        let successor = self
            .children
            .iter()
            .any(|c| c.rekey == Some(old) && !c.initiator && !c.redundant());
        let wait = RETRY_BASE.saturating_sub(ctx.jitter(RETRY_JITTER));
        let Some(pos) = self.children.iter().position(|c| c.id == old) else {
            return;
        };
        if *reason == ChildFailReason::PeerError(NotifyType::CHILD_SA_NOT_FOUND) && !successor {
            let c = self.children.remove(pos);
            let cfg = c.cfg.clone();
            info!(
                "{}: peer does not know CHILD_SA {}{}, creating it anew",
                self.name(),
                c.cfg.name,
                c.id
            );
            self.drop_child(
                ctx,
                c,
                true,
                ChildFailReason::PeerError(NotifyType::CHILD_SA_NOT_FOUND),
            );
            self.start_child(ctx, cfg);
            return;
        }
        let Some(o) = self.children.get_mut(pos) else {
            return;
        };
        if matches!(o.state, ChildState::Rekeying | ChildState::Rekeyed) && !o.replaced() {
            if successor {
                o.state = ChildState::Rekeyed;
            } else {
                o.state = ChildState::Installed;
                // strongSwan's 5-15 s, but before the Child SA's hard end:
                // with a short life_time the retry would come too late.
                let at = later(now, wait_before_end(now, wait, o.end()));
                o.timers.arm(ChildTimer::Rekey, at);
                debug!("{}: retrying the rekey of {old} later", o.cfg.name);
            }
        }
    }

    /// Our rekey `child` is moot before it was sent: drop it quietly.
    pub(crate) fn abandon_rekey(&mut self, ctx: &mut Ctx, now: Instant, child: ChildId) {
        let Some(pos) = self.children.iter().position(|c| c.id == child) else {
            return;
        };
        let c = self.children.remove(pos);
        debug!(
            "{}: rekey {}{child} abandoned, the old Child SA is gone or replaced",
            self.name(),
            c.cfg.name
        );
        self.release_ids(ctx, &c);
        self.next_task(ctx, now);
    }

    /// The peer's rekey of `old` went away before taking over: unless
    /// another successor stands, `old` is a Child SA like any other again.
    pub(crate) fn rekey_abandoned(&mut self, old: ChildId) {
        let other = self
            .children
            .iter()
            .any(|c| c.rekey == Some(old) && !c.redundant());
        if let Some(o) = self.child_mut(old)
            && o.state == ChildState::Rekeyed
            && !o.replaced()
            && !other
        {
            debug!("{}: rekey of {old} abandoned by the peer", o.cfg.name);
            o.state = ChildState::Installed;
        }
    }

    /// Installs the outbound SA of `child` (responder of a rekey) now
    /// that the peer no longer needs the old one.
    pub(crate) fn install_outbound(&mut self, ctx: &mut Ctx, child: ChildId) -> bool {
        let id = self.id;
        let Some(c) = self.child_mut(child) else {
            return false;
        };
        let Some(install) = c.out_pending.take() else {
            return false;
        };
        c.outbound = true;
        let req = ctx.kernel_req(id, KernelPurpose::InstallOut { child });
        ctx.kernel_ops.push_back(KernelOp::InstallOutbound {
            req,
            child: *install,
        });
        true
    }

    /// `old` is about to be removed: its successors from a peer's rekey
    /// get their outbound SAs first. How many took over.
    pub(crate) fn hand_over(&mut self, ctx: &mut Ctx, old: ChildId) -> usize {
        let successors: Vec<ChildId> = self
            .children
            .iter()
            .filter(|c| {
                c.rekey == Some(old)
                    && !c.initiator
                    && !c.redundant()
                    && c.state != ChildState::Deleting
            })
            .map(|c| c.id)
            .collect();
        let mut n = 0usize;
        for s in successors {
            if self.install_outbound(ctx, s) {
                n = n.saturating_add(1);
            }
        }
        n
    }

    /// The kernel's answer to an `InstallOutbound`.
    pub(crate) fn outbound_installed(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        child: ChildId,
        outcome: Result<(), String>,
    ) {
        let name = self.name();
        let id = self.id;
        if let Some(c) = self.child_mut(child)
            && c.rekey.is_none()
        {
            // A reauthentication's Child SA that took over a reqid.
            match outcome {
                Ok(()) => debug!("{name}: CHILD_SA {}{child} sends now", c.cfg.name),
                Err(e) => self.outbound_failed(ctx, now, child, &e),
            }
            return;
        }
        if self
            .window
            .held_mut()
            .is_some_and(|h| h.outbound_in(id, child))
            && let Some(Held {
                mid,
                exchange,
                waits: Waits::Outbound { inner, .. },
            }) = self.window.take_held()
        {
            self.send_response(ctx, exchange, mid, inner);
        }
        let Some(c) = self.child_mut(child) else {
            return;
        };
        match outcome {
            Ok(()) => {
                let old = c.rekey.unwrap_or(child);
                info!(
                    "CHILD_SA {}{old} rekeyed to {}{child} (IKE SA {name})",
                    c.cfg.name, c.cfg.name
                );
                ctx.events.push_back(Event::ChildRekeyed {
                    ike: id,
                    old,
                    new: child,
                    name: c.cfg.name.clone(),
                });
            }
            Err(e) => self.outbound_failed(ctx, now, child, &e),
        }
    }

    /// The outbound SA of `child` could not go in: the Child SA is deleted.
    fn outbound_failed(&mut self, ctx: &mut Ctx, now: Instant, child: ChildId, e: &str) {
        let name = self.name();
        let Some(c) = self.child_mut(child) else {
            return;
        };
        info!(
            "CHILD_SA {}{child}: installing the outbound SA failed: {e}; deleting it (IKE SA {name})",
            c.cfg.name
        );
        c.outbound = false;
        if c.state == ChildState::Installed {
            c.state = ChildState::Deleting;
            self.window.queue.push_back(Task::DeleteChild(child));
            self.next_task(ctx, now);
        }
    }
}
