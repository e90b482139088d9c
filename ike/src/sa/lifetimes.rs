//! Lifetimes: when IKE and Child SAs are rekeyed and when they expire
//! (strongSwan's `rekey_time`, `life_time`/`over_time`, `rand_time`), and
//! the kernel's expire events for byte and packet limits.
//!
//! A Child SA is rekeyed `rekey_time - random(0..rand_time)` after it was
//! installed and deleted at `life_time` if that did not happen; an IKE SA
//! is rekeyed likewise, reauthenticated at `reauth_time` (jittered the
//! same way; `reauth`), and deleted `over_time` after the earlier of the
//! two. The
//! random part comes from the crypto provider (deterministic in tests).
//! Zero turns a timer off. Both peers run their timers; if both rekey at
//! once, the collision rules of `child_rekey` / `ike_rekey` apply.
//! The kernel holds the byte and packet limits: its soft expire starts a
//! rekey, its hard expire (the kernel removed the SA) deletes the Child SA
//! (one the peer has rekeyed is replaced by its successor without a
//! Delete, as charon does).
//!
//! Every SA also carries charon's time limits (soft: `rekey_time`, hard:
//! `life_time`, whole seconds rounded up; `KernelLimits`), so the keys of
//! a daemon that died expire by themselves. Our own timer starts the
//! rekey at or before the soft time; the kernel's soft expire then finds
//! the Child SA rekeying or gone and does nothing (`rekey_child`), and one
//! that comes first (the timer was deferred, or the kernel's second ended
//! early) starts the one rekey, which the timer then finds under way: a
//! Child SA is never rekeyed twice. A soft expire at the soft time is not
//! taken for a byte or packet limit (no `volume_end` from it).

use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::child_rekey::ORPHAN_GRACE;
use super::config::ChildLifetimes;
use super::effect::Effect;
use super::endpoint::Ctx;
use super::ike_rekey::wait_before_end;
use super::ike_sa::{IkeSa, Phase, Task, later};
use super::timers::{ChildTimer, IkeTimer};
use super::types::{ChildId, ChildState, CommandError};
use crate::wire::codes::ProtocolId;

/// When a rekey that could not start now is tried again.
const LATER: Duration = Duration::from_secs(10);

/// When the kernel's hard byte or packet limit will likely remove a Child
/// SA installed at `installed` whose soft limit expired `now`, if the
/// traffic goes on at the same rate: the time to the soft limit, scaled by
/// (hard - soft) / soft, the earlier of bytes and packets. The configured
/// soft limit is used; the kernel's is lower by up to `rand_*`, so the rate
/// and the estimate err on the early side. None without a hard limit above
/// the soft one.
pub(crate) fn volume_end(l: &ChildLifetimes, installed: Instant, now: Instant) -> Option<Instant> {
    let elapsed = now.saturating_duration_since(installed).as_nanos();
    let left = |soft: u64, hard: u64| -> Option<Instant> {
        if soft == 0 || hard <= soft {
            return None;
        }
        let nanos = elapsed
            .checked_mul(u128::from(hard.saturating_sub(soft)))?
            .checked_div(u128::from(soft))?;
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        now.checked_add(Duration::from_nanos(nanos))
    };
    left(l.rekey_bytes, l.life_bytes)
        .into_iter()
        .chain(left(l.rekey_packets, l.life_packets))
        .min()
}

/// The latest a rekey may start before `life_time`: 10% of it, at most
/// [`REKEY_MARGIN_MAX`]. charon starts it at the soft limit even when that
/// equals the hard one (`rekey_time = 5s` alone gives both 5 s), and so
/// loses the packets between the old SA's end and the new one's install.
const REKEY_MARGIN_MAX: Duration = Duration::from_secs(10);

/// When a Child SA whose jittered rekey time is `rekey` is rekeyed: then,
/// or early enough before `life_time` for the exchange to finish (see
/// [`REKEY_MARGIN_MAX`]); charon's defaults (`life_time` 10% above
/// `rekey_time`) are not moved.
pub(crate) fn rekey_start(l: &ChildLifetimes, rekey: Duration) -> Duration {
    if l.life_time.is_zero() {
        return rekey;
    }
    let margin = l
        .life_time
        .checked_div(10)
        .unwrap_or_default()
        .min(REKEY_MARGIN_MAX);
    rekey.min(l.life_time.saturating_sub(margin))
}

/// Whether the kernel's soft time limit (`rekey_time`) of a Child SA
/// installed at `installed` is due at `now`, within the kernel's one
/// second resolution: a soft expire then is the time's, not a byte or
/// packet limit's.
fn soft_time_due(rekey_time: Duration, installed: Option<Instant>, now: Instant) -> bool {
    !rekey_time.is_zero()
        && installed.is_some_and(|at| later(at, rekey_time) <= later(now, Duration::from_secs(1)))
}

impl IkeSa {
    /// The IKE SA is (newly) established: set its rekey and expiry times.
    pub(crate) fn start_ike_lifetimes(&mut self, ctx: &Ctx, now: Instant) {
        let l = self.peer.lifetimes;
        let at = |t: Duration| {
            (!t.is_zero()).then(|| later(now, t.saturating_sub(ctx.jitter(l.rand_time.min(t)))))
        };
        self.timers.set(IkeTimer::Rekey, at(l.rekey_time));
        self.timers.set(IkeTimer::Reauth, at(l.reauth_time));
        // As strongSwan: the SA goes `over_time` after the earlier of
        // rekey and reauthentication if neither replaced it.
        let first = [l.rekey_time, l.reauth_time]
            .into_iter()
            .filter(|t| !t.is_zero())
            .min();
        let expire = first
            .filter(|_| !l.over_time.is_zero())
            .map(|t| later(now, t.saturating_add(l.over_time)));
        self.timers.set(IkeTimer::Expire, expire);
    }

    /// A rekey made `new` from this SA: the reauthentication time stays
    /// (strongSwan's too survives rekeying), and with it the deadline.
    pub(crate) fn inherit_reauth(&self, new: &mut IkeSa) {
        let Some(reauth) = self.timers.get(IkeTimer::Reauth) else {
            return;
        };
        new.timers.arm(IkeTimer::Reauth, reauth);
        let over = self.peer.lifetimes.over_time;
        if !over.is_zero() {
            let by_reauth = later(reauth, over);
            let expire = new
                .timers
                .get(IkeTimer::Expire)
                .map_or(by_reauth, |t| t.min(by_reauth));
            new.timers.arm(IkeTimer::Expire, expire);
        }
    }

    /// `child` is installed: set its rekey and expiry times.
    pub(crate) fn start_child_lifetimes(&mut self, ctx: &Ctx, now: Instant, child: ChildId) {
        let Some(c) = self.children.iter_mut().find(|c| c.id == child) else {
            return;
        };
        let l = c.cfg.lifetimes;
        let rekey = (!l.rekey_time.is_zero()).then(|| {
            let jitter = ctx.jitter(l.rand_time.min(l.rekey_time));
            later(now, rekey_start(&l, l.rekey_time.saturating_sub(jitter)))
        });
        c.timers.set(ChildTimer::Rekey, rekey);
        let expire = (!l.life_time.is_zero()).then(|| later(now, l.life_time));
        c.timers.set(ChildTimer::Expire, expire);
    }

    /// Timers of the SA and its children that are due.
    pub(crate) fn lifetimes_due(&mut self, ctx: &mut Ctx, now: Instant) {
        if self.timers.fire(IkeTimer::Expire, now) {
            if self.reauth.superseded {
                info!(
                    "IKE SA {} has a newer duplicate (unique = replace), deleting it",
                    self.name()
                );
            } else if self.redirect.as_ref().is_some_and(|r| r.sent) {
                info!(
                    "IKE SA {}: the client did not delete it after our redirect, deleting it",
                    self.name()
                );
            } else {
                info!(
                    "IKE SA {} reached its lifetime without a rekey, deleting it",
                    self.name()
                );
            }
            self.terminate(ctx, now);
            return;
        }
        if self.timers.fire(IkeTimer::Reauth, now) {
            if matches!(self.phase, Phase::Established) && !self.reauth.replacing {
                // The endpoint starts the new IKE SA (`reauth`).
                self.reauth.replacing = true;
                ctx.effects.push(Effect::Reauth(self.id));
            } else if !self.reauth.replacing && !self.deleting() {
                self.timers.arm(IkeTimer::Reauth, later(now, LATER));
            }
        }
        if self.timers.fire(IkeTimer::Rekey, now) {
            if self.reauth.replacing {
                // A new IKE SA is on its way: no rekey of this one.
                self.timers.arm(IkeTimer::Rekey, later(now, LATER));
            } else if self.rekey_ike(ctx, now).is_err() && !self.deleting() {
                let at = later(now, self.retry_before_end(now, LATER));
                self.timers.arm(IkeTimer::Rekey, at);
            }
        }
        self.handovers_due(ctx, now);
        let expired: Vec<ChildId> = self
            .children
            .iter()
            .filter(|c| c.timers.is_due(ChildTimer::Expire, now))
            .map(|c| c.id)
            .collect();
        for id in expired {
            if let Some(c) = self.child_mut(id) {
                c.timers.stop(ChildTimer::Expire);
                c.timers.stop(ChildTimer::Rekey);
                info!(
                    "CHILD_SA {}{id} reached its lifetime without a rekey, deleting it",
                    c.cfg.name
                );
            }
            self.delete_child_now(ctx, now, id);
        }
        let orphans: Vec<ChildId> = self
            .children
            .iter()
            .filter(|c| c.timers.is_due(ChildTimer::Orphan, now))
            .map(|c| c.id)
            .collect();
        for id in orphans {
            let name = self.name();
            let Some(c) = self.child_mut(id) else {
                continue;
            };
            c.timers.stop(ChildTimer::Orphan);
            match c.state {
                ChildState::Installed => {
                    info!(
                        "peer did not delete its redundant CHILD_SA {}{id} with SPIs {:08x}_i {:08x}_o after a rekey collision, deleting it (IKE SA {name})",
                        c.cfg.name, c.spi_in, c.spi_out
                    );
                    self.delete_child_now(ctx, now, id);
                }
                // Not in the kernel yet: look again later.
                ChildState::Creating | ChildState::Installing => {
                    c.timers.arm(ChildTimer::Orphan, later(now, ORPHAN_GRACE));
                }
                _ => {}
            }
        }
        let due: Vec<ChildId> = self
            .children
            .iter()
            .filter(|c| c.timers.is_due(ChildTimer::Rekey, now))
            .map(|c| c.id)
            .collect();
        for id in due {
            if let Some(c) = self.child_mut(id) {
                c.timers.stop(ChildTimer::Rekey);
            }
            match self.rekey_child(ctx, now, id) {
                Err(CommandError::WrongState(_)) if !self.deleting() => {
                    // The IKE SA is busy (being rekeyed): a bit later.
                    if let Some(c) = self.child_mut(id) {
                        c.timers.arm(ChildTimer::Rekey, later(now, LATER));
                    }
                }
                _ => {}
            }
        }
    }

    /// Queues the delete of an installed child (lifetime, hard expire).
    /// One the peer has rekeyed (its successor waits for the peer's Delete
    /// to take over) goes without a Delete, as charon does: the successor
    /// takes over now. A Delete could cross the peer's rekey while our
    /// answer is on its way, and charon then deletes the new SA it made
    /// ("CHILD_SA rekey/delete collision"): no Child SA would be left.
    fn delete_child_now(&mut self, ctx: &mut Ctx, now: Instant, id: ChildId) {
        let successor = self.children.iter().any(|s| {
            s.rekey == Some(id)
                && !s.initiator
                && !s.redundant()
                && s.state == ChildState::Installed
                && s.out_pending.is_some()
        });
        if successor
            && self
                .children
                .iter()
                .any(|c| c.id == id && c.state == ChildState::Rekeyed && !c.replaced())
        {
            let handed = self.hand_over(ctx, id);
            if let Some(pos) = self.children.iter().position(|c| c.id == id) {
                let mut c = self.children.remove(pos);
                if handed > 0 {
                    c.mark_replaced();
                }
                debug!(
                    "{}: CHILD_SA {}{id} expired after the peer rekeyed it: its successor takes over, no Delete",
                    self.name(),
                    c.cfg.name
                );
                self.drop_child(ctx, c, false, super::types::ChildFailReason::IkeSaGone);
            }
            self.next_task(ctx, now);
            return;
        }
        let Some(c) = self.child_mut(id) else {
            return;
        };
        if !matches!(
            c.state,
            ChildState::Installed | ChildState::Rekeying | ChildState::Rekeyed
        ) {
            return;
        }
        c.state = ChildState::Deleting;
        if !self
            .window
            .queue
            .iter()
            .any(|t| matches!(t, Task::DeleteChild(x) if *x == id))
        {
            self.window.queue.push_back(Task::DeleteChild(id));
        }
        self.next_task(ctx, now);
    }

    /// The child with this SA (inbound if `inbound`), if any.
    pub(crate) fn child_by_spi(
        &self,
        protocol: ProtocolId,
        spi: u32,
        inbound: bool,
    ) -> Option<ChildId> {
        self.children
            .iter()
            .find(|c| {
                c.protocol == protocol
                    && if inbound {
                        c.spi_in == spi
                    } else {
                        c.spi_out == spi
                    }
            })
            .map(|c| c.id)
    }

    /// The kernel's expire of an SA of `child`: soft starts a rekey, hard
    /// (the kernel removed the SA) deletes the Child SA.
    pub(crate) fn child_expired(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        child: ChildId,
        hard: bool,
    ) {
        if hard {
            info!(
                "{}: kernel hard expire of CHILD_SA {child}, deleting it",
                self.name()
            );
            self.delete_child_now(ctx, now, child);
        } else {
            debug!("{}: kernel soft expire of CHILD_SA {child}", self.name());
            if let Some(c) = self.child_mut(child)
                && c.volume_end.is_none()
                && !soft_time_due(c.cfg.lifetimes.rekey_time, c.installed_at, now)
            {
                c.volume_end = c
                    .installed_at
                    .and_then(|at| volume_end(&c.cfg.lifetimes, at, now));
            }
            if let Err(e) = self.rekey_child(ctx, now, child) {
                debug!("{}: no rekey of {child} now: {e}", self.name());
                if let Some(c) = self.child_mut(child)
                    && c.state == ChildState::Installed
                {
                    let at = later(now, wait_before_end(now, LATER, c.end()));
                    c.timers.arm(ChildTimer::Rekey, at);
                }
            }
        }
    }
}

#[cfg(test)]
// A test's base instant: the code under test only compares instants it is
// given, so any one will do (ike/clippy.toml forbids reading the clock).
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn a_rekey_starts_before_the_end_of_life() {
        let s = Duration::from_secs;
        let l = |rekey, life| ChildLifetimes {
            rekey_time: s(rekey),
            life_time: s(life),
            ..ChildLifetimes::default()
        };
        // charon's defaults are not moved.
        assert_eq!(rekey_start(&l(3600, 3960), s(3500)), s(3500));
        assert_eq!(rekey_start(&l(3600, 3960), s(3600)), s(3600));
        // life = rekey: 10% before the end, at most 10 s.
        assert_eq!(rekey_start(&l(5, 5), s(5)), Duration::from_millis(4500));
        assert_eq!(rekey_start(&l(3600, 3600), s(3600)), s(3590));
        // No life_time: the rekey time as it is.
        assert_eq!(rekey_start(&l(5, 0), s(5)), s(5));
    }

    #[test]
    fn a_soft_expire_at_the_rekey_time_is_the_times() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let at = |d: Duration| t0 + d;
        // From a second before the rekey time on (the kernel counts whole
        // seconds), a soft expire is the time limit's ...
        assert!(soft_time_due(s(120), Some(t0), at(s(120))));
        assert!(soft_time_due(s(120), Some(t0), at(s(119))));
        assert!(soft_time_due(s(120), Some(t0), at(s(500))));
        // ... before that a byte or packet limit's.
        assert!(!soft_time_due(s(120), Some(t0), at(s(90))));
        assert!(!soft_time_due(
            s(120),
            Some(t0),
            at(Duration::from_millis(118_999))
        ));
        // No time limit, or not installed: never the time's.
        assert!(!soft_time_due(Duration::ZERO, Some(t0), at(s(500))));
        assert!(!soft_time_due(s(120), None, at(s(500))));
    }

    #[test]
    fn volume_end_scales_the_time_to_the_soft_limit() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_secs(2);
        let l = |rb, lb, rp, lp| ChildLifetimes {
            rekey_bytes: rb,
            life_bytes: lb,
            rekey_packets: rp,
            life_packets: lp,
            ..ChildLifetimes::default()
        };
        // Packets: 100 in 2 s, 900 more take 18 s.
        assert_eq!(
            volume_end(&l(0, 0, 100, 1000), t0, now),
            Some(now + Duration::from_secs(18))
        );
        // Both: the earlier (bytes: 1 s more).
        assert_eq!(
            volume_end(&l(1000, 1500, 100, 1000), t0, now),
            Some(now + Duration::from_secs(1))
        );
        // No hard limit, or none above the soft one: no estimate.
        assert_eq!(volume_end(&l(1000, 0, 100, 0), t0, now), None);
        assert_eq!(volume_end(&l(1000, 1000, 0, 0), t0, now), None);
        // Huge ratios saturate instead of overflowing.
        let end = volume_end(&l(1, u64::MAX, 0, 0), t0, now);
        assert!(end.is_none_or(|e| e > now));
    }
}
