//! A child's `inactivity` with charon's meaning (inactivity_job.c): a
//! Child SA whose policies carried no packet in either direction for
//! `inactivity`, counted from the later of their last use and the Child
//! SA's install, is deleted; with `inactivity_close_ike` the IKE SA goes
//! instead when that Child SA was its only one. The last use is the
//! kernel's, the policies' `use_time` ([`KernelOp::QueryLastUse`], as
//! charon's child_sa.c `update_usetime`). Policies stay when a Child SA
//! is rekeyed, so traffic before a rekey counts; the rekeyed Child SA's
//! install is a new start, as with charon (which schedules a new check
//! for it).
//!
//! One timer per IKE SA ([`IkeTimer::Inactivity`]), at the earliest
//! check of its children; they keep no state of their own for it (the
//! per-SA sizes, docs/performance.md):
//!
//! ```text
//! child installed --> timer = min(timer, install + inactivity)
//! timer due, established --> QueryLastUse for each installed child whose install + inactivity passed
//!                        --> timer = min(install + inactivity) of the others
//! answer: quiet since max(last use, install) for inactivity (never used, unreadable: since install)
//!   --> delete the Child SA (the IKE SA with inactivity_close_ike if it was the only one)
//!   otherwise --> timer = min(timer, that + inactivity)
//! ```

use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::endpoint::Ctx;
use super::ike_sa::{IkeSa, KernelPurpose, Phase, later};
use super::timers::{IkeTimer, IkeTimers};
use super::types::{ChildId, ChildState, KernelOk, KernelOp};

/// How soon a check that found the IKE SA or the Child SA busy (being
/// rekeyed) looks again, at most.
const BUSY_RETRY: Duration = Duration::from_secs(5);

impl IkeSa {
    /// `child` is in the kernel (new or rekeyed): its first check.
    pub(crate) fn inactivity_start(&mut self, now: Instant, child: ChildId) {
        let Some(t) = self
            .children
            .iter()
            .find(|c| c.id == child)
            .map(|c| c.cfg.inactivity)
            .filter(|t| !t.is_zero())
        else {
            return;
        };
        self.inactivity_at(later(now, t));
    }

    /// The checks of `old`, whose Child SAs this IKE SA took over (an IKE
    /// rekey; queries in flight follow their Child SAs).
    pub(crate) fn inactivity_adopt(&mut self, old: &mut IkeTimers) {
        if let Some(at) = old.get(IkeTimer::Inactivity) {
            old.stop(IkeTimer::Inactivity);
            self.inactivity_at(at);
        }
    }

    /// A check at `at`, unless one is due earlier.
    fn inactivity_at(&mut self, at: Instant) {
        let next = self
            .timers
            .get(IkeTimer::Inactivity)
            .map_or(at, |t| t.min(at));
        self.timers.arm(IkeTimer::Inactivity, next);
    }

    /// The timer is due: ask the kernel about each Child SA whose
    /// `inactivity` could have passed.
    pub(crate) fn inactivity_due(&mut self, ctx: &mut Ctx, now: Instant) {
        if !self.timers.fire(IkeTimer::Inactivity, now) || self.deleting() {
            return;
        }
        let established = matches!(self.phase, Phase::Established);
        let mut ask = Vec::new();
        let mut next: Option<Instant> = None;
        for c in &self.children {
            let t = c.cfg.inactivity;
            if t.is_zero() || c.redundant() {
                continue;
            }
            let at = match c.state {
                ChildState::Installed if established => {
                    let due = c.installed_at.map_or(now, |i| later(i, t));
                    if due <= now {
                        ask.push((c.id, c.reqid));
                        continue;
                    }
                    due
                }
                // Being rekeyed (its successor starts its own checks once
                // installed) or the IKE SA is: look again.
                ChildState::Installed | ChildState::Rekeying => later(now, t.min(BUSY_RETRY)),
                // Not yet installed (checked from its install) or going.
                ChildState::Creating
                | ChildState::Installing
                | ChildState::Rekeyed
                | ChildState::Deleting => continue,
            };
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        if let Some(at) = next {
            self.inactivity_at(at);
        }
        for (child, reqid) in ask {
            let req = ctx.kernel_req(self.id, KernelPurpose::LastUse { child });
            ctx.kernel_ops
                .push_back(KernelOp::QueryLastUse { req, reqid });
        }
    }

    /// The kernel's answer for `child`: delete it if it was quiet for its
    /// `inactivity`, otherwise check again when it could be.
    pub(crate) fn inactivity_last_use(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        child: ChildId,
        outcome: Result<KernelOk, String>,
    ) {
        let name = self.name();
        let busy = !matches!(self.phase, Phase::Established);
        let Some(c) = self.children.iter().find(|c| c.id == child) else {
            return;
        };
        let t = c.cfg.inactivity;
        if t.is_zero() || self.deleting() {
            return;
        }
        if busy || c.state != ChildState::Installed {
            if matches!(c.state, ChildState::Installed | ChildState::Rekeying) {
                self.inactivity_at(later(now, t.min(BUSY_RETRY)));
            }
            return;
        }
        let idle = match outcome {
            Ok(KernelOk::Idle(idle)) => idle,
            Ok(other) => {
                debug!("{name}: unexpected last-use result {other:?}");
                None
            }
            // As charon: an unreadable use time counts as no use.
            Err(e) => {
                info!(
                    "{name}: cannot read when CHILD_SA {}{child} was last used: {e}",
                    c.cfg.name
                );
                None
            }
        };
        let used = idle.and_then(|d| now.checked_sub(d));
        let since = match (used, c.installed_at) {
            (Some(u), Some(i)) => u.max(i),
            (u, i) => u.or(i).unwrap_or(now),
        };
        if now.saturating_duration_since(since) < t {
            self.inactivity_at(later(since, t));
            return;
        }
        let others = self
            .children
            .iter()
            .filter(|o| {
                o.id != child
                    && !o.redundant()
                    && !matches!(o.state, ChildState::Rekeyed | ChildState::Deleting)
            })
            .count();
        if ctx.cfg.inactivity_close_ike && others == 0 {
            info!(
                "deleting IKE SA {name} after {} s of CHILD_SA {}{child} inactivity",
                t.as_secs(),
                c.cfg.name
            );
            self.terminate(ctx, now);
        } else {
            info!(
                "deleting CHILD_SA {}{child} after {} s of inactivity (IKE SA {name})",
                c.cfg.name,
                t.as_secs()
            );
            if let Err(e) = self.terminate_child(ctx, now, child) {
                debug!("{name}: no delete of {child} for inactivity: {e}");
            }
        }
    }
}
