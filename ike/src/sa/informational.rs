//! INFORMATIONAL (RFC 7296 1.4, 2.4), both roles: deletes of the IKE SA
//! and of Child SAs, liveness checks, and AUTHENTICATION_FAILED after
//! IKE_AUTH.

use std::time::Instant;

use tracing::{debug, info};

use super::child_create::ChildFate;
use super::effect::Effect;
use super::endpoint::Ctx;
use super::ike_sa::{IkeSa, Phase, Task, notify};
use super::types::{ChildFailReason, ChildId, ChildState, CommandError, IkeFailReason};
use super::window::{Held, Waits};
use crate::wire::codes::{ExchangeType, NotifyType, ProtocolId};
use crate::wire::{Delete, Message, Payload};

impl IkeSa {
    /// The `terminate_child` command: queue a delete of an installed child.
    pub(crate) fn terminate_child(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        child: ChildId,
    ) -> Result<(), CommandError> {
        if !matches!(self.phase, Phase::Established) {
            return Err(CommandError::WrongState(self.state()));
        }
        // Also while being rekeyed: the successor goes with it.
        let c = self
            .children
            .iter_mut()
            .find(|c| {
                c.id == child
                    && !c.redundant()
                    && matches!(
                        c.state,
                        ChildState::Installed | ChildState::Rekeying | ChildState::Rekeyed
                    )
            })
            .ok_or(CommandError::NoSuchSa)?;
        c.state = ChildState::Deleting;
        self.window.queue.push_back(Task::DeleteChild(child));
        // A successor from the peer's rekey, not yet carrying traffic,
        // goes too.
        let successors: Vec<ChildId> = self
            .children
            .iter()
            .filter(|s| {
                s.rekey == Some(child)
                    && !s.initiator
                    && !s.redundant()
                    && s.state == ChildState::Installed
            })
            .map(|s| s.id)
            .collect();
        for s in successors {
            if let Some(c) = self.child_mut(s) {
                c.state = ChildState::Deleting;
                c.out_pending = None;
            }
            self.window.queue.push_back(Task::DeleteChild(s));
        }
        self.next_task(ctx, now);
        Ok(())
    }

    pub(crate) fn send_delete_child(&mut self, ctx: &mut Ctx, now: Instant, child: ChildId) {
        let name = self.name();
        let Some(c) = self.children.iter_mut().find(|c| c.id == child) else {
            // Gone meanwhile (the peer deleted it): on to the next task.
            self.next_task(ctx, now);
            return;
        };
        // From now on a delete of it from the peer crosses ours (1.4.1).
        c.state = ChildState::Deleting;
        let level_info = !(c.replaced() || c.redundant());
        let line = format!(
            "deleting CHILD_SA {}{} with SPIs {:08x}_i {:08x}_o (IKE SA {})",
            c.cfg.name, c.id, c.spi_in, c.spi_out, name
        );
        if level_info {
            info!("{line}");
        } else {
            debug!("{line}");
        }
        let d = Delete::child(c.protocol, [c.spi_in]);
        self.send_request(
            ctx,
            now,
            ExchangeType::INFORMATIONAL,
            vec![Payload::Delete(d)],
            Task::DeleteChild(child),
        );
    }

    /// The answer to our Child SA delete: remove it from the kernel.
    pub(crate) fn delete_child_response(&mut self, ctx: &mut Ctx, child: ChildId, _msg: &Message) {
        if self.hand_over(ctx, child) > 0
            && let Some(c) = self.child_mut(child)
        {
            c.mark_replaced();
        }
        if let Some(pos) = self.children.iter().position(|c| c.id == child) {
            let c = self.children.remove(pos);
            self.drop_child(ctx, c, false, ChildFailReason::IkeSaGone);
        }
    }

    /// The answer to our IKE SA delete (or no answer): the SA is gone.
    pub(crate) fn delete_ike_response(&mut self, ctx: &mut Ctx) {
        self.deleted(ctx, false);
    }

    /// Responder: an INFORMATIONAL request.
    pub(crate) fn informational_request(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        let mid = msg.header.message_id;
        if notify(msg, NotifyType::AUTHENTICATION_FAILED).is_some() {
            self.send_response(ctx, ExchangeType::INFORMATIONAL, mid, Vec::new());
            self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: true });
            return;
        }
        if self.informational_redirect(ctx, now, msg) {
            return;
        }
        let deletes: Vec<&Delete> = msg
            .iter()
            .filter_map(|p| match p {
                Payload::Delete(d) => Some(d),
                _ => None,
            })
            .collect();
        if deletes.iter().any(|d| d.protocol == ProtocolId::IKE) {
            if let Some(theirs) = self.rekey.crossing.take() {
                // Both rekeyed and the peer, deleting this SA, won before
                // our answer came: its new SA takes over (2.25.2), ours
                // is forgotten (the peer drops its copy).
                info!(
                    "{}: peer deletes the IKE SA while both rekeyed it: its rekey wins",
                    self.name()
                );
                self.window.take_outstanding();
                self.adopt(ctx, now, theirs.sa, false);
            }
            let at = ctx.transmits.len();
            self.send_response(ctx, ExchangeType::INFORMATIONAL, mid, Vec::new());
            let since = ctx.effects.len();
            self.deleted(ctx, true);
            // Child SAs of a reauthentication that waited for these to
            // go send from now on: the peer removes the old inbound SAs
            // when it has the answer, so the endpoint holds it until
            // their outbound SAs are in.
            ctx.effects.push(Effect::AnswerDelete {
                ike: self.id,
                mid,
                at,
                since,
            });
            return;
        }
        let mut answer: Vec<(ProtocolId, u32)> = Vec::new();
        let mut installs = 0usize;
        for d in deletes {
            if d.protocol != ProtocolId::ESP && d.protocol != ProtocolId::AH {
                continue;
            }
            for spi in &d.spis {
                let Ok(b) = <[u8; 4]>::try_from(spi.as_slice()) else {
                    continue;
                };
                let spi = u32::from_be_bytes(b);
                let pos = self.children.iter().position(|c| {
                    c.protocol == d.protocol
                        && c.spi_out == spi
                        && matches!(
                            c.state,
                            ChildState::Installed
                                | ChildState::Rekeying
                                | ChildState::Rekeyed
                                | ChildState::Deleting
                        )
                });
                let Some(pos) = pos else {
                    debug!(
                        "{}: peer deletes unknown {} SA {spi:08x}",
                        self.name(),
                        d.protocol
                    );
                    continue;
                };
                let id = self.children.get(pos).map(|c| c.id);
                // A successor from the peer's rekey takes over first: the
                // peer receives on it now.
                let handed = id.map_or(0, |id| self.hand_over(ctx, id));
                installs = installs.saturating_add(handed);
                let replaced = handed > 0;
                let Some(pos) = self.children.iter().position(|c| Some(c.id) == id) else {
                    continue;
                };
                let mut c = self.children.remove(pos);
                if replaced {
                    c.mark_replaced();
                }
                // The peer's own rekey that it drops (it lost a collision,
                // or refused our answer) never carried traffic: no event.
                if c.rekey.is_some() && !c.initiator && !c.outbound {
                    c.fate = ChildFate::Redundant;
                }
                // A delete of ours crossing this one: no Delete payload in
                // the answer (1.4.1); ours is answered the same way.
                if c.state != ChildState::Deleting {
                    answer.push((c.protocol, c.spi_in));
                }
                // A delete of ours still queued is moot.
                self.window
                    .queue
                    .retain(|t| !matches!(t, Task::DeleteChild(x) if *x == c.id));
                // The peer dropped a rekey of its own before it took over
                // (it refused our answer): the old child is ours again.
                if let (Some(old), false, false) = (c.rekey, c.initiator, c.outbound) {
                    self.rekey_abandoned(old);
                }
                self.drop_child(ctx, c, true, ChildFailReason::IkeSaGone);
            }
        }
        let mut inner = self.mobike_informational(ctx, now, msg);
        for proto in [ProtocolId::ESP, ProtocolId::AH] {
            let spis: Vec<u32> = answer
                .iter()
                .filter(|(p, _)| *p == proto)
                .map(|(_, s)| *s)
                .collect();
            if !spis.is_empty() {
                inner.push(Payload::Delete(Delete::child(proto, spis)));
            }
        }
        if inner.is_empty() {
            debug!("{}: answering INFORMATIONAL request {mid}", self.name());
        }
        if installs > 0 {
            // Answer once the new outbound SAs are in: the peer removes
            // the old inbound SAs when it has the answer.
            self.window.hold(Held {
                mid,
                exchange: ExchangeType::INFORMATIONAL,
                waits: Waits::Outbound {
                    inner,
                    left: installs,
                },
            });
            return;
        }
        self.send_response(ctx, ExchangeType::INFORMATIONAL, mid, inner);
    }
}
