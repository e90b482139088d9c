//! Dead peer detection (RFC 7296 2.4): after `dpd_delay` without anything
//! from the peer, neither an IKE message nor ESP/AH traffic (the kernel's
//! inbound byte counters, asked with [`KernelOp::QueryTraffic`]), an empty
//! INFORMATIONAL request. Its retransmissions running out makes the IKE SA
//! fail with [`IkeFailReason::PeerNotResponding`](super::IkeFailReason),
//! as any other unanswered request does; the daemon then runs the
//! children's `dpd_action`. As strongSwan for IKEv2, there is no separate
//! `dpd_timeout`: the retransmission schedule is the timeout.
//!
//! ```text
//! dpd.at due --established, no request in flight--> QueryTraffic
//!   counters changed --> dpd.at = now + dpd_delay
//!   unchanged (or no Child SA) --> Task::Liveness --answer--> dpd.at = now + dpd_delay
//!                                                 --retransmissions run out--> fail
//! any message from the peer --> dpd.at = now + dpd_delay
//! ```

use std::time::{Duration, Instant};

use tracing::debug;

use super::endpoint::Ctx;
use super::ike_sa::{Dpd, IkeSa, KernelPurpose, Phase, Task, later};
use super::timers::IkeTimer;
use super::types::{ChildState, KernelOk, KernelOp};

/// When the first check is due: `delay` from `now` (none if zero).
pub(crate) fn first_check(delay: Duration, now: Instant) -> Option<Instant> {
    (!delay.is_zero()).then(|| later(now, delay))
}

impl IkeSa {
    /// The SA is established: checks start, with counters at zero (the
    /// SAs of a new IKE SA are new).
    pub(crate) fn dpd_start(&mut self, now: Instant) {
        self.dpd = Dpd {
            bytes: Some(0),
            querying: false,
        };
        let at = first_check(self.peer.dpd_delay, now);
        self.timers.set(IkeTimer::Dpd, at);
    }

    /// Something authentic came from the peer: it is alive.
    pub(crate) fn dpd_seen(&mut self, now: Instant) {
        let delay = self.peer.dpd_delay;
        if !delay.is_zero() && !self.dpd.querying {
            self.timers.arm(IkeTimer::Dpd, later(now, delay));
        }
    }

    /// The check is due: look at the traffic, or ask the peer.
    pub(crate) fn dpd_due(&mut self, ctx: &mut Ctx, now: Instant) {
        let delay = self.peer.dpd_delay;
        if !self.timers.fire(IkeTimer::Dpd, now) {
            return;
        }
        if delay.is_zero() {
            return;
        }
        // A request in flight finds a dead peer by itself (its
        // retransmissions run out); while rekeying or deleting the same.
        if !matches!(self.phase, Phase::Established)
            || self.window.outstanding().is_some()
            || !self.window.queue.is_empty()
        {
            self.timers.arm(IkeTimer::Dpd, later(now, delay));
            return;
        }
        let sas: Vec<_> = self
            .children
            .iter()
            .filter(|c| {
                c.spi_in != 0
                    && matches!(
                        c.state,
                        ChildState::Installed | ChildState::Rekeying | ChildState::Rekeyed
                    )
            })
            .map(|c| (c.protocol, c.spi_in, self.local.ip()))
            .collect();
        if sas.is_empty() {
            self.send_liveness(ctx, now);
            return;
        }
        self.dpd.querying = true;
        let req = ctx.kernel_req(self.id, KernelPurpose::Traffic);
        ctx.kernel_ops
            .push_back(KernelOp::QueryTraffic { req, sas });
    }

    /// The kernel's inbound byte counters.
    pub(crate) fn dpd_traffic(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        outcome: Result<KernelOk, String>,
    ) {
        self.dpd.querying = false;
        if self.is_dead() || !matches!(self.phase, Phase::Established) {
            self.dpd_seen(now);
            return;
        }
        match outcome {
            Ok(KernelOk::Traffic(bytes)) if self.dpd.bytes != Some(bytes) => {
                debug!("{}: traffic from the peer, no liveness check", self.name());
                self.dpd.bytes = Some(bytes);
                self.dpd_seen(now);
            }
            Ok(KernelOk::Traffic(_)) => self.send_liveness(ctx, now),
            Ok(other) => {
                debug!("{}: unexpected traffic query result {other:?}", self.name());
                self.send_liveness(ctx, now);
            }
            Err(e) => {
                debug!("{}: cannot read the traffic counters: {e}", self.name());
                self.send_liveness(ctx, now);
            }
        }
    }

    fn send_liveness(&mut self, ctx: &mut Ctx, now: Instant) {
        debug!("{}: nothing from the peer, liveness check", self.name());
        if !self
            .window
            .queue
            .iter()
            .any(|t| matches!(t, Task::Liveness))
        {
            self.window.queue.push_back(Task::Liveness);
        }
        self.next_task(ctx, now);
    }
}
