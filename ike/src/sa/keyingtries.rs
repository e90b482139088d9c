//! `keyingtries`, as charon: when the peer does not answer an IKE SA we
//! initiate (IKE_SA_INIT or IKE_AUTH: the retransmissions ran out), it
//! starts over from IKE_SA_INIT with a new SPI, nonce and key exchange and
//! the same Child SAs, as long as tries are left (0: forever). Each try is
//! a full retransmission schedule, with no pause between tries, and keeps
//! the IKE SA's number, so `ikectl up` waits across them. One info line
//! per try says why. What stops them: `ikectl down` (the SA is gone, its
//! retransmissions with it), a reload that removes the connection, or
//! all of the Child SAs it was to bring (the next try finds it gone), or
//! an answer that is a refusal (that fails the SA as before).

use std::collections::VecDeque;
use std::sync::Arc;

use tracing::info;

use super::config::ChildCfg;
use super::effect::Effect;
use super::endpoint::Ctx;
use super::ike_sa::{IkeSa, Phase};
use super::types::{ChildState, KernelOp};

impl IkeSa {
    /// Forgets the Child SAs of an IKE SA that is given up before any was
    /// installed (another keying try, a redirect to another gateway): their
    /// reqids go back and the SPIs allocated for those being created are
    /// released; nothing else of them is in the kernel.
    pub(crate) fn drop_unestablished_children(&mut self, ctx: &mut Ctx) {
        for c in std::mem::take(&mut self.children) {
            ctx.reqids.release(c.reqid, c.id);
            if c.state == ChildState::Creating && c.spi_in != 0 {
                ctx.kernel_ops.push_back(KernelOp::ReleaseSpi {
                    protocol: c.protocol,
                    local: self.local,
                    spi: c.spi_in,
                });
            }
        }
        self.pending_children.clear();
    }

    /// Our IKE SA being established got no answer: whether it is tried
    /// again (then it is gone, quietly, and [`Effect::Retry`] brings the
    /// next try); otherwise the caller fails it.
    pub(crate) fn try_again(&mut self, ctx: &mut Ctx) -> bool {
        if !self.initiator
            || !matches!(self.phase, Phase::InitSent(_) | Phase::AuthSent(_))
            // A reauthentication's new IKE SA has its own retries.
            || self.reauth.pre.is_some()
            || !self.reauth.wants.is_empty()
        {
            return false;
        }
        let tries = self.peer.behaviour.keyingtries;
        let done = self
            .phase
            .handshake()
            .map_or(0, |h| h.keyingtry)
            .saturating_add(1);
        if tries != 0 && done >= tries {
            return false;
        }
        let name = self.name();
        let Some(peer) = ctx.peer(&self.peer.name) else {
            info!(
                "IKE SA {name}: peer not responding, not trying again: connection {} was removed",
                self.peer.name
            );
            return false;
        };
        let wanted: Vec<&str> = self
            .children
            .iter()
            .map(|c| c.cfg.name.as_str())
            .chain(self.pending_children.iter().map(|c| c.name.as_str()))
            .collect();
        let cfgs: VecDeque<Arc<ChildCfg>> = wanted
            .iter()
            .filter_map(|n| peer.child(n).cloned())
            .collect();
        if cfgs.is_empty() && !wanted.is_empty() {
            info!(
                "IKE SA {name}: peer not responding, not trying again: the children {} were removed",
                wanted.join(", ")
            );
            return false;
        }
        let of = if tries == 0 {
            "forever".to_owned()
        } else {
            tries.to_string()
        };
        info!(
            "IKE SA {name}: peer not responding, trying again ({}/{of})",
            done.saturating_add(1)
        );
        // Nothing of this try is in the kernel but allocated SPIs.
        self.drop_unestablished_children(ctx);
        ctx.effects.push(Effect::Retry {
            id: self.id,
            peer,
            cfgs,
            keyingtry: done,
        });
        self.teardown(ctx, false);
        true
    }
}
