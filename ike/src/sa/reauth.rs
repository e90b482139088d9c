//! Reauthentication (RFC 7296 2.8.3), make-before-break as strongSwan's
//! `make_before_break`: at `reauth_time` the endpoint starts a new IKE SA
//! to the same peer (IKE_SA_INIT, IKE_AUTH, then CREATE_CHILD_SA) with the
//! Child SAs of the old one, while the old one keeps carrying traffic.
//! Each new Child SA takes over the reqid of the old one with the same
//! configuration and selectors (`reqids`), so it goes in under the
//! installed policies and the kernel sends on it (the newest SA of the
//! reqid). Once every new Child SA is up, the old IKE SA is deleted: the
//! peer deletes its Child SAs, and locally their SAs go but not the
//! policies. If the new IKE SA fails, or one of the Child SAs it brings
//! along does not come up (deleting the old IKE SA would lose it), the new
//! IKE SA goes and the old one stays (until its `over_time` deadline) and
//! tries again later; when no later attempt could end before that
//! deadline, a new IKE SA that lacks some Child SAs replaces the old one
//! all the same (better than losing every Child SA at the deadline).
//!
//! The first Child SA goes in IKE_AUTH. Its keys (KEYMAT from the new
//! SK_d and Ni | Nr) are known once IKE_SA_INIT is done, but the transform
//! only from the answer, while a responder that does not hold its
//! outbound SA back (charon) sends on the new Child SA as soon as it
//! answers. So for a reauthentication (only then) IKE_AUTH proposes just
//! the transform the Child SA it replaces uses, and its inbound SA goes in
//! under that one's reqid before IKE_AUTH is sent ([`PreInstall`]); the
//! answer then only adds the outbound SA. If the answer differs (another
//! transform or selectors) or IKE_AUTH fails, the inbound SA is removed
//! again with the Child SA. Further Child SAs (CREATE_CHILD_SA) depend on
//! the responder's nonce and cannot go in early.
//!
//! The peer being reauthenticated sees just a new IKE SA from the same
//! identity: it keeps the old one (with `unique = no`, and we send no
//! INITIAL_CONTACT while the old one is there: `unique`) until we delete
//! it, and its new Child SAs take over the old
//! ones' reqids the same way. Being the responder, it installs their
//! outbound SAs only when the old Child SAs go (the endpoint's handover
//! table, `Effect::AwaitHandover` / `Effect::ChildGone`), since we
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

use tracing::{debug, info};

use super::config::ChildCfg;
use super::effect::Effect;
use super::endpoint::Ctx;
use super::ike_sa::{IkeSa, KernelPurpose, Phase, later};
use super::timers::{ChildTimer, IkeTimer};
use super::types::{ChildId, ChildInstall, ChildState, CommandError, IkeSaId, KernelOp};
use crate::crypto::keymat::ChildKeys;
use crate::crypto::suite::ChildSuite;
use crate::wire::TrafficSelector;
use crate::wire::codes::{EsnId, TransformType};
use crate::wire::sa::{Proposal, Transform};
use std::sync::Arc;

/// When a failed reauthentication is tried again.
pub(crate) const RETRY: Duration = Duration::from_secs(30);

/// Responder: how long a Child SA that took over a reqid waits for the
/// one it replaces to go before it sends anyway. The initiator installs
/// its inbound SA when our IKE_AUTH (or CREATE_CHILD_SA) answer arrives,
/// well within this; a peer that restarted (and so never deletes the old
/// IKE SA, which we do not notice without INITIAL_CONTACT or DPD) must
/// not be cut off for longer.
pub(crate) const HANDOVER: Duration = Duration::from_secs(2);

/// Initiator of a reauthentication: the first Child SA (the one in
/// IKE_AUTH) with the transform, selectors and reqid of the Child SA it
/// replaces, whose inbound SA goes in before IKE_AUTH is sent.
#[derive(Debug, Clone)]
pub(crate) struct PreInstall {
    pub(crate) child: ChildId,
    pub(crate) suite: ChildSuite,
    pub(crate) reqid: u32,
    pub(crate) local_ts: Vec<TrafficSelector>,
    pub(crate) remote_ts: Vec<TrafficSelector>,
    pub(crate) state: PreState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreState {
    /// Not asked for yet (IKE_SA_INIT or the SPI still outstanding).
    Planned,
    /// The kernel installs the inbound SA; IKE_AUTH waits for it.
    Installing,
    /// The inbound SA is in: the answer adds the outbound SA.
    Installed,
}

/// The one proposal (IKE_AUTH: no key exchange) for `suite`, with `spi`.
pub(crate) fn pinned_offer(suite: &ChildSuite, spi: u32) -> Vec<Proposal> {
    let t = |transform_type, id, key_length| Transform {
        transform_type,
        id,
        key_length,
        other_attributes: Vec::new(),
    };
    let mut transforms = Vec::new();
    if let Some((e, bits)) = suite.encr {
        transforms.push(t(TransformType::ENCR, e.0, bits));
    }
    if let Some(i) = suite.integ {
        transforms.push(t(TransformType::INTEG, i.0, None));
    }
    let esn = if suite.esn { EsnId::ESN } else { EsnId::NO_ESN };
    transforms.push(t(TransformType::ESN, esn.0, None));
    vec![Proposal {
        number: 1,
        protocol: suite.protocol,
        spi: spi.to_be_bytes().to_vec(),
        transforms,
    }]
}

impl IkeSa {
    /// The configurations of the Child SAs a new IKE SA brings up in this
    /// one's place (a reauthentication, a redirect): those installed or
    /// rekeying (not the redundant or replaced ones) and those waiting;
    /// never none, since IKE_AUTH carries a Child SA: then the
    /// connection's first.
    pub(crate) fn children_to_recreate(&self) -> VecDeque<Arc<ChildCfg>> {
        let mut cfgs: VecDeque<Arc<ChildCfg>> = self
            .children
            .iter()
            .filter(|c| {
                c.state == ChildState::Installed && !c.redundant() && !c.replaced()
                    || c.state == ChildState::Rekeying
            })
            .map(|c| c.cfg.clone())
            .collect();
        cfgs.extend(self.pending_children.iter().cloned());
        if cfgs.is_empty() {
            cfgs.extend(self.peer.children.first().cloned());
        }
        cfgs
    }

    /// Starts the IKE SA that reauthenticates this one, with its id `id`.
    pub(crate) fn start_reauth(
        &self,
        ctx: &mut Ctx,
        now: Instant,
        id: IkeSaId,
    ) -> Result<IkeSa, CommandError> {
        let cfgs = self.children_to_recreate();
        let wants: Vec<String> = cfgs.iter().map(|c| c.name.clone()).collect();
        let remote = SocketAddr::new(self.remote.ip(), self.peer.remote_port);
        info!(
            "reauthenticating IKE SA {} as {}{id} ({} Child SAs)",
            self.name(),
            self.peer.name,
            cfgs.len()
        );
        // The Child SA the first new one replaces: its transform.
        let first = cfgs.front().and_then(|cfg| {
            self.children.iter().find(|c| {
                c.cfg.name == cfg.name
                    && c.suite.is_some()
                    && c.mode == c.cfg.mode
                    && c.outbound
                    && (c.state == ChildState::Installed && !c.redundant() && !c.replaced()
                        || c.state == ChildState::Rekeying)
            })
        });
        let pre = first.and_then(|c| {
            Some(PreInstall {
                child: ChildId(0),
                // IKE_AUTH has no key exchange: the rest of the suite.
                suite: ChildSuite {
                    ke: None,
                    ..c.suite?
                },
                reqid: c.reqid,
                local_ts: c.local_ts.clone(),
                remote_ts: c.remote_ts.clone(),
                state: PreState::Planned,
            })
        });
        let mut new = IkeSa::start(
            ctx,
            now,
            id,
            self.peer.clone(),
            cfgs,
            self.local.ip(),
            remote,
        )?;
        new.reauth.pre = pre.and_then(|mut p| {
            p.child = new.children.first()?.id;
            Some(Box::new(p))
        });
        new.reauth.wants = wants;
        Ok(new)
    }

    /// Initiator of a reauthentication, IKE_SA_INIT done and the first
    /// Child SA's SPI allocated: installs its inbound SA ([`PreInstall`]).
    /// Whether IKE_AUTH waits for the kernel.
    pub(crate) fn reauth_preinstall(&mut self, ctx: &mut Ctx) -> bool {
        let Some(pre) = self.reauth.pre.as_ref() else {
            return false;
        };
        match pre.state {
            PreState::Installing => return true,
            PreState::Installed => return false,
            PreState::Planned => {}
        }
        let (Some(keys), Some(h), Some(c)) = (
            self.keys.as_ref(),
            self.phase.handshake(),
            self.children.iter().find(|c| c.id == pre.child),
        ) else {
            self.reauth.pre = None;
            return false;
        };
        if c.cfg.sa_opts.ipcomp {
            // Its SAs depend on whether the answer accepts IPComp (ESP in
            // transport mode inside an IPComp tunnel, or ESP in tunnel
            // mode): they go in with the answer.
            self.reauth.pre = None;
            return false;
        }
        if c.spi_in == 0 {
            return false;
        }
        let derived = ChildKeys::derive(
            keys.prf.as_ref(),
            keys.sk_d.as_bytes(),
            None,
            &h.init.nonce_i,
            &h.init.nonce_r,
            &pre.suite,
        );
        let Ok(k) = derived else {
            self.reauth.pre = None;
            return false;
        };
        let install = ChildInstall {
            id: c.id,
            ike_sa: self.id,
            name: c.cfg.name.clone(),
            mode: c.cfg.mode,
            protocol: c.protocol,
            local: self.local,
            remote: self.remote,
            spi_in: c.spi_in,
            spi_out: 0,
            suite: pre.suite,
            encr_in: k.encr_r,
            integ_in: k.integ_r,
            encr_out: k.encr_i,
            integ_out: k.integ_i,
            local_ts: pre.local_ts.clone(),
            vips: Vec::new(),
            remote_ts: pre.remote_ts.clone(),
            esn: pre.suite.esn,
            sa_opts: c.cfg.sa_opts,
            ipcomp: None,
            initiator: true,
            reqid: pre.reqid,
            limits: c.cfg.lifetimes.kernel_limits(),
            encap: self.nat.encap,
            kernel: c.cfg.kernel_policy(&self.peer.policy, pre.reqid),
        };
        let key = (
            self.peer.name.clone(),
            c.cfg.name.clone(),
            pre.local_ts.clone(),
            pre.remote_ts.clone(),
        );
        let child = c.id;
        debug!(
            "{}: CHILD_SA {}{child} installs its inbound SA {:08x} under reqid {} before IKE_AUTH",
            self.name(),
            install.name,
            install.spi_in,
            pre.reqid
        );
        ctx.reqids.hold(pre.reqid, key, child);
        let reqid = pre.reqid;
        let req = ctx.kernel_req(self.id, KernelPurpose::PreInstall { child });
        ctx.kernel_ops.push_back(KernelOp::InstallRekeyed {
            req,
            child: install,
            outbound: false,
        });
        if let Some(c) = self.child_mut(child) {
            c.state = ChildState::Installing;
            c.reqid = reqid;
        }
        if let Some(p) = self.reauth.pre.as_mut() {
            p.state = PreState::Installing;
        }
        true
    }

    /// The kernel's answer to the inbound SA of [`PreInstall`]: IKE_AUTH
    /// goes out now (without it, the Child SA is installed from the
    /// answer as usual).
    pub(crate) fn preinstalled(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        child: ChildId,
        outcome: Result<(), String>,
    ) {
        match outcome {
            Ok(()) => {
                if let Some(p) = self.reauth.pre.as_mut().filter(|p| p.child == child) {
                    p.state = PreState::Installed;
                }
            }
            Err(e) => {
                info!(
                    "{}: installing the inbound SA of CHILD_SA {child} before IKE_AUTH failed: {e}; it goes in with the answer",
                    self.name()
                );
                // The daemon rolled its partial install back.
                self.reauth.pre = None;
                if let Some(c) = self.child_mut(child) {
                    c.state = ChildState::Creating;
                    let reqid = c.reqid;
                    ctx.reqids.release(reqid, child);
                }
            }
        }
        if matches!(self.phase, Phase::AwaitSpi(_)) {
            self.send_auth_request(ctx, now);
        }
    }

    /// The answer for `child` chose `suite` and the selectors `local_ts`
    /// / `remote_ts`: `Some(true)` if its inbound SA is in with exactly
    /// those (only the outbound SA is left to install), `Some(false)` if
    /// it is in with others (the Child SA must go), `None` if it was not
    /// installed early.
    pub(crate) fn preinstalled_matches(
        &self,
        child: ChildId,
        suite: &ChildSuite,
        local_ts: &[TrafficSelector],
        remote_ts: &[TrafficSelector],
    ) -> Option<bool> {
        let p = self
            .reauth
            .pre
            .as_ref()
            .filter(|p| p.child == child && p.state == PreState::Installed)?;
        Some(p.suite == *suite && p.local_ts == local_ts && p.remote_ts == remote_ts)
    }

    /// The IKE_AUTH offer for `child` with inbound SPI `spi`: just the
    /// transform in use if its inbound SA went in early.
    pub(crate) fn auth_offer(&self, child: &super::child_create::Child) -> Vec<Proposal> {
        match self.reauth.pre.as_ref().filter(|p| p.child == child.id) {
            Some(p) => pinned_offer(&p.suite, child.spi_in),
            None => super::child_create::offer(&child.cfg, child.spi_in, false),
        }
    }

    /// Responder: Child SAs that waited [`HANDOVER`] for the one they
    /// took over to go send now. A waiting Child SA holds a copy of its
    /// outbound SA (`out_pending`) exactly while the endpoint's entry for
    /// it stands (`Effect::AwaitHandover`); the endpoint drops the copy
    /// when it drops the entry, and within one call nothing drops or
    /// installs a Child SA before this runs (`lifetimes_due`), so the
    /// copy alone says whether it still waits.
    pub(crate) fn handovers_due(&mut self, ctx: &mut Ctx, now: Instant) {
        let ike = self.id;
        for c in &mut self.children {
            if !c.timers.fire(ChildTimer::Handover, now) {
                continue;
            }
            let Some(install) = c.out_pending.take() else {
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
                child: *install,
            });
            ctx.effects.push(Effect::HandedOver {
                reqid: c.reqid,
                child: c.id,
            });
        }
    }

    /// Whether this new IKE SA of a reauthentication can replace the old
    /// one: `None` while it or a Child SA is still on its way, `Some(Ok)`
    /// once established with every Child SA it brings along in the
    /// kernel, `Some(Err(names))` with those that did not come up (the
    /// peer refused them, the kernel failed): deleting the old IKE SA
    /// would lose them, so the reauthentication counts as failed.
    pub(crate) fn reauth_outcome(&self) -> Option<Result<(), Vec<String>>> {
        if !matches!(self.phase, Phase::Established)
            || !self.pending_children.is_empty()
            || self
                .children
                .iter()
                .any(|c| matches!(c.state, ChildState::Creating | ChildState::Installing))
        {
            return None;
        }
        let mut up: Vec<&str> = self
            .children
            .iter()
            .filter(|c| {
                !c.redundant()
                    && matches!(
                        c.state,
                        ChildState::Installed | ChildState::Rekeying | ChildState::Rekeyed
                    )
            })
            .map(|c| c.cfg.name.as_str())
            .collect();
        let mut missing = Vec::new();
        for name in &self.reauth.wants {
            match up.iter().position(|n| n == name) {
                Some(i) => {
                    up.swap_remove(i);
                }
                None => missing.push(name.clone()),
            }
        }
        Some(if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        })
    }

    /// Whether a reauthentication tried again after [`RETRY`] would come
    /// after this SA's `over_time` deadline.
    pub(crate) fn reauth_retry_too_late(&self, now: Instant) -> bool {
        self.timers
            .get(IkeTimer::Expire)
            .is_some_and(|t| t <= later(now, RETRY))
    }

    /// The reauthentication of this SA by `new` is done (`ok`) or failed.
    pub(crate) fn reauth_done(&mut self, ctx: &mut Ctx, now: Instant, new: IkeSaId, ok: bool) {
        self.reauth.replacing = false;
        if !ok {
            info!(
                "reauthentication of IKE SA {} failed, keeping it; trying again in {} s",
                self.name(),
                RETRY.as_secs()
            );
            if !self.deleting() {
                self.timers.arm(IkeTimer::Reauth, later(now, RETRY));
            }
            return;
        }
        info!(
            "IKE SA {} reauthenticated as {}{new}, deleting the old one",
            self.name(),
            self.peer.name
        );
        for c in &mut self.children {
            c.mark_replaced();
            c.timers.stop(ChildTimer::Rekey);
            c.timers.stop(ChildTimer::Expire);
        }
        self.terminate(ctx, now);
    }
}
