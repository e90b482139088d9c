//! Reauthentication (RFC 7296 2.8.3), make-before-break as strongSwan's
//! `make_before_break`: at `reauth_time` the endpoint starts a new IKE SA
//! to the same peer (IKE_SA_INIT, IKE_AUTH, then CREATE_CHILD_SA) with the
//! Child SAs of the old one, while the old one keeps carrying traffic.
//! Each new Child SA takes over the reqid of the old one with the same
//! configuration and selectors (`reqids`), so it goes in under the
//! installed policies and the kernel sends on it (the newest SA of the
//! reqid). Once every new Child SA is up, the old IKE SA is deleted: the
//! peer deletes its Child SAs, and locally their SAs go but not the
//! policies. If the new IKE SA fails, the old one stays (until its
//! `over_time` deadline) and tries again later.
//!
//! The peer being reauthenticated sees just a new IKE SA from the same
//! identity: it keeps the old one (no uniqueness check, no INITIAL_CONTACT
//! from us) until we delete it, and its new Child SAs take over the old
//! ones' reqids the same way. Being the responder, it installs their
//! outbound SAs only when the old Child SAs go (`drop_child`), since we
//! cannot receive on them before its answer arrives, or after
//! [`HANDOVER`] if they stay.
//!
//! ```text
//!  old IKE SA  ══ Established ═══════════════ reauth_time ═══╗ ... ═╗ delete ─> gone
//!  new IKE SA                       IKE_SA_INIT, IKE_AUTH ──> Established, children installed
//!  kernel     policies of reqid r ═════════════════════════════════════════════ (stay)
//!             old SAs of r ══════════════════════════════════════════════════╛
//!             new SAs of r                                 ╘═══════════════════
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::info;

use super::config::ChildCfg;
use super::endpoint::Ctx;
use super::ike_sa::{IkeSa, KernelPurpose, Phase, later};
use super::types::{ChildState, CommandError, IkeSaId, KernelOp};

/// When a failed reauthentication is tried again.
pub(crate) const RETRY: Duration = Duration::from_secs(30);

/// Responder: how long a Child SA that took over a reqid waits for the
/// one it replaces to go before it sends anyway. The initiator installs
/// its inbound SA when our IKE_AUTH (or CREATE_CHILD_SA) answer arrives,
/// well within this; a peer that restarted (and so never deletes the old
/// IKE SA, which we do not notice without INITIAL_CONTACT or DPD) must
/// not be cut off for longer.
pub(crate) const HANDOVER: Duration = Duration::from_secs(2);

impl IkeSa {
    /// Starts the IKE SA that reauthenticates this one, with its id `id`.
    pub(crate) fn start_reauth(
        &self,
        ctx: &mut Ctx,
        now: Instant,
        id: IkeSaId,
    ) -> Result<IkeSa, CommandError> {
        let mut cfgs: VecDeque<ChildCfg> = self
            .children
            .iter()
            .filter(|c| {
                c.state == ChildState::Installed && !c.redundant && !c.replaced
                    || c.state == ChildState::Rekeying
            })
            .map(|c| c.cfg.clone())
            .collect();
        cfgs.extend(self.pending_children.iter().cloned());
        if cfgs.is_empty() {
            // IKE_AUTH carries a Child SA: the connection's first.
            cfgs.extend(self.peer.children.first().cloned());
        }
        let remote = SocketAddr::new(self.remote.ip(), self.peer.remote_port);
        info!(
            "reauthenticating IKE SA {} as {}{id} ({} Child SAs)",
            self.name(),
            self.peer.name,
            cfgs.len()
        );
        IkeSa::start(
            ctx,
            now,
            id,
            self.peer.clone(),
            cfgs,
            self.local.ip(),
            remote,
        )
    }

    /// Responder: Child SAs that waited [`HANDOVER`] for the one they
    /// took over to go send now.
    pub(crate) fn handovers_due(&mut self, ctx: &mut Ctx, now: Instant) {
        let ike = self.id;
        for c in &mut self.children {
            if c.handover_at.is_none_or(|t| t > now) {
                continue;
            }
            c.handover_at = None;
            if !matches!(ctx.pending_out.get(&c.reqid), Some((i, w, _)) if *i == ike && *w == c.id)
            {
                continue;
            }
            let Some((_, _, install)) = ctx.pending_out.remove(&c.reqid) else {
                continue;
            };
            info!(
                "CHILD_SA {}{} of IKE SA {}{ike} sends now: the Child SA it took over is still there",
                c.cfg.name, c.id, self.peer.name
            );
            c.outbound = true;
            let req = ctx.kernel_req(ike, KernelPurpose::InstallOut { child: c.id });
            ctx.kernel_ops.push_back(KernelOp::InstallOutbound {
                req,
                child: install,
            });
        }
    }

    /// Whether this new IKE SA of a reauthentication is ready to replace
    /// the old one: established, with no Child SA still on its way.
    pub(crate) fn reauth_complete(&self) -> bool {
        self.phase == Phase::Established
            && self.pending_children.is_empty()
            && self
                .children
                .iter()
                .all(|c| !matches!(c.state, ChildState::Creating | ChildState::Installing))
    }

    /// The reauthentication of this SA by `new` is done (`ok`) or failed.
    pub(crate) fn reauth_done(&mut self, ctx: &mut Ctx, now: Instant, new: IkeSaId, ok: bool) {
        self.reauthing = false;
        if !ok {
            info!(
                "reauthentication of IKE SA {} failed, keeping it; trying again in {} s",
                self.name(),
                RETRY.as_secs()
            );
            if self.phase != Phase::Deleting {
                self.reauth_at = Some(later(now, RETRY));
            }
            return;
        }
        info!(
            "IKE SA {} reauthenticated as {}{new}, deleting the old one",
            self.name(),
            self.peer.name
        );
        for c in &mut self.children {
            c.replaced = true;
            c.rekey_at = None;
            c.expires_at = None;
        }
        self.terminate(ctx, now);
    }
}
