//! Child SAs: the one created with IKE_AUTH and CREATE_CHILD_SA (RFC 7296
//! 1.3.1, 2.9, 2.17), both roles: proposal and traffic selector choice,
//! key derivation, and the asynchronous kernel steps (SPI, install).

use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info};

use super::config::{ChildCfg, Mode};
use super::effect::Effect;
use super::endpoint::Ctx;
use super::ike_sa::{IkeSa, KernelPurpose, Phase, Task, TsDisplay, error_notify, later, notify};
use super::timers::{ChildTimer, ChildTimers};
use super::ts::{narrow, within};
use super::types::{
    ChildFailReason, ChildId, ChildInstall, ChildRemove, ChildSaInfo, ChildState, CommandError,
    Event, KernelOp,
};
use super::window::{Held, Waits};
use crate::crypto::Secret;
use crate::crypto::ke::KeyExchange;
use crate::crypto::keymat::ChildKeys;
use crate::crypto::proposal::{self, KeCheck, SelectOptions};
use crate::crypto::suite::ChildSuite;
use crate::wire::codes::{ExchangeType, KeId, NotifyType, ProtocolId, TransformType};
use crate::wire::sa::Proposal;
use crate::wire::{self, Message, Notify, Payload, TrafficSelector};

/// Nonce length we send (strongSwan: 32).
pub(crate) const NONCE_LEN: usize = 32;

/// One Child SA of an IKE SA.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) id: ChildId,
    pub(crate) cfg: Arc<ChildCfg>,
    pub(crate) state: ChildState,
    pub(crate) initiator: bool,
    pub(crate) protocol: ProtocolId,
    pub(crate) mode: Mode,
    /// 0 until allocated.
    pub(crate) spi_in: u32,
    pub(crate) spi_out: u32,
    pub(crate) local_ts: Vec<TrafficSelector>,
    pub(crate) remote_ts: Vec<TrafficSelector>,
    pub(crate) suite: Option<ChildSuite>,
    pub(crate) installed_at: Option<Instant>,
    /// INVALID_KE_PAYLOAD retries so far (saturating; one octet, as a
    /// Child SA is per tunnel).
    pub(crate) ke_retries: u8,
    /// Kernel reqid; a rekeyed child inherits it from the one it replaces.
    pub(crate) reqid: u32,
    /// The Child SA this one rekeys (kept after that one is gone, to tell
    /// a collision from an unrelated child).
    pub(crate) rekey: Option<ChildId>,
    /// Responder of a rekey: the outbound SA to install once the old
    /// Child SA is deleted.
    /// (Boxed: a `ChildInstall` is 352 bytes, kept only for a while.)
    pub(crate) out_pending: Option<Box<ChildInstall>>,
    /// The lowest nonce of the exchange that created it (RFC 7296 2.8.1).
    pub(crate) nonce_min: Vec<u8>,
    /// Whether its traffic is its own (see [`ChildFate`]).
    pub(crate) fate: ChildFate,
    /// Its IPComp CPIs, as far as negotiated.
    pub(crate) ipcomp: Ipcomp,
    /// Its outbound SA is (being) installed.
    pub(crate) outbound: bool,
    /// When the kernel's hard byte or packet limit will likely remove it,
    /// estimated at its soft expire (`lifetimes::volume_end`): a refused
    /// rekey is retried before it.
    /// (An estimate that shortens `end`, not a timer: nothing fires at it.)
    pub(crate) volume_end: Option<Instant>,
    pub(crate) timers: ChildTimers,
}

/// IPComp of a Child SA (RFC 7296 2.22, IPCOMP_SUPPORTED with DEFLATE,
/// the one transform charon supports): it is used when both CPIs are
/// there. (Four octets: a Child SA is per tunnel.)
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ipcomp {
    /// Ours: 0 for none, [`Ipcomp::ALLOCATING`] while the kernel
    /// allocates it (the request or answer waits).
    cpi_in: u16,
    /// The peer's (0: none).
    pub(crate) cpi_out: u16,
}

impl Ipcomp {
    /// Never a CPI of ours (they are at most 0xefff).
    const ALLOCATING: u16 = u16::MAX;

    /// Our CPI, if we have one.
    pub(crate) fn ours(self) -> Option<u16> {
        Some(self.cpi_in).filter(|&c| c != 0 && c != Self::ALLOCATING)
    }

    /// Our CPI's allocation is under way.
    pub(crate) fn allocating(self) -> bool {
        self.cpi_in == Self::ALLOCATING
    }

    /// Our CPI's allocation ended, with one or without.
    pub(crate) fn allocated(&mut self, cpi: Option<u16>) {
        self.cpi_in = cpi.filter(|&c| c != Self::ALLOCATING).unwrap_or(0);
    }

    /// Gives our CPI up (to be released).
    pub(crate) fn take_ours(&mut self) -> Option<u16> {
        let c = self.ours();
        if c.is_some() {
            self.cpi_in = 0;
        }
        c
    }

    /// Both CPIs, if IPComp is used.
    pub(crate) fn cpis(self) -> Option<super::types::IpcompCpis> {
        let cpi_in = self.ours()?;
        (self.cpi_out != 0).then_some(super::types::IpcompCpis {
            cpi_in,
            cpi_out: self.cpi_out,
        })
    }
}

/// IPComp transform ID of DEFLATE (RFC 7296 3.10.1, IANA).
const IPCOMP_DEFLATE: u8 = 2;

/// IPCOMP_SUPPORTED with our CPI and DEFLATE (two octets of CPI, one of
/// transform ID; protocol NONE and no SPI, as charon sends it).
pub(crate) fn ipcomp_notify(cpi: u16) -> Payload {
    let [a, b] = cpi.to_be_bytes();
    Payload::Notify(Notify::new(
        NotifyType::IPCOMP_SUPPORTED,
        vec![a, b, IPCOMP_DEFLATE],
    ))
}

/// The peer's CPI from its IPCOMP_SUPPORTED notify for DEFLATE, if any
/// (one per transform may come; others are not supported and ignored, as
/// charon does; a CPI of 0 is none).
pub(crate) fn ipcomp_of(msg: &Message) -> Option<u16> {
    msg.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == NotifyType::IPCOMP_SUPPORTED => {
            match n.data.as_slice() {
                [a, b, IPCOMP_DEFLATE, ..] => {
                    Some(u16::from_be_bytes([*a, *b])).filter(|&c| c != 0)
                }
                [_, _, t, ..] => {
                    debug!("IPCOMP_SUPPORTED with transform {t} (not supported), ignored");
                    None
                }
                _ => None,
            }
        }
        _ => None,
    })
}

/// Whether a Child SA carries its own traffic. The other two are ends:
/// neither turns back into `Own`, and a redundant one (a new SA) is never
/// replaced (only an old SA with a successor is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildFate {
    /// Its own: its removal is an event.
    Own,
    /// It lost a rekey collision: deleted by its initiator, never used;
    /// its removal is no event.
    Redundant,
    /// A successor carries its traffic; its removal is no event.
    Replaced,
}

impl Child {
    /// It lost a rekey collision.
    pub(crate) fn redundant(&self) -> bool {
        self.fate == ChildFate::Redundant
    }

    /// A successor carries its traffic.
    pub(crate) fn replaced(&self) -> bool {
        self.fate == ChildFate::Replaced
    }

    /// A successor carries its traffic now (a redundant one stays that).
    pub(crate) fn mark_replaced(&mut self) {
        if self.fate == ChildFate::Own {
            self.fate = ChildFate::Replaced;
        }
    }

    /// When it ends unless rekeyed: its life_time, or the likely hard
    /// byte or packet expire in the kernel, whichever comes first.
    pub(crate) fn end(&self) -> Option<Instant> {
        self.timers
            .get(ChildTimer::Expire)
            .into_iter()
            .chain(self.volume_end)
            .min()
    }

    pub(crate) fn info(&self) -> ChildSaInfo {
        ChildSaInfo {
            name: self.cfg.name.clone(),
            id: self.id,
            state: self.state,
            mode: self.mode,
            protocol: self.protocol,
            spi_in: self.spi_in,
            spi_out: self.spi_out,
            local_ts: self.local_ts.clone(),
            remote_ts: self.remote_ts.clone(),
            suite: self.suite,
            installed_at: self.installed_at,
            rekey_at: self.timers.get(ChildTimer::Rekey),
            expires_at: self.timers.get(ChildTimer::Expire),
            reqid: self.reqid,
            outbound: self.outbound,
            ipcomp: self.ipcomp.cpis().is_some(),
        }
    }
}

/// Our CREATE_CHILD_SA for a new Child SA or the rekey of one: the task
/// from the request to its answer.
#[derive(Debug)]
pub(crate) struct CreateChild {
    pub(crate) child: ChildId,
    /// Filled when sent: our nonce, key exchange and proposals.
    pub(crate) nonce: Vec<u8>,
    pub(crate) ke: Option<Box<dyn KeyExchange>>,
    pub(crate) offered: Vec<Proposal>,
}

impl CreateChild {
    /// The task for `child`, its SPI allocated or on its way.
    pub(crate) fn new(child: ChildId) -> Self {
        Self {
            child,
            nonce: Vec::new(),
            ke: None,
            offered: Vec::new(),
        }
    }

    /// The answer to our CREATE_CHILD_SA.
    pub(crate) fn response(self, sa: &mut IkeSa, ctx: &mut Ctx, now: Instant, msg: &Message) {
        let Self {
            child,
            nonce: nonce_i,
            ke,
            offered,
        } = self;
        let name = sa.name();
        if let Some(g) =
            notify(msg, NotifyType::INVALID_KE_PAYLOAD).and_then(Notify::invalid_ke_group)
            && let Some(c) = sa.child_mut(child)
            && u32::from(c.ke_retries) < ctx.cfg.max_invalid_ke_retries
            && let Some(promoted) = proposal::promote_ke(&c.cfg.proposals, g)
        {
            debug!("{name}: peer wants key exchange {g} for the Child SA, retrying");
            c.ke_retries = c.ke_retries.saturating_add(1);
            Arc::make_mut(&mut c.cfg).proposals = promoted;
            sa.window
                .queue
                .push_front(Task::CreateChild(CreateChild::new(child)));
            return;
        }
        let Some(nonce_r) = nonce_payload(msg).map(<[u8]>::to_vec) else {
            let reason = match error_notify(msg) {
                Some(t) => peer_child_error(t, &offered),
                None => ChildFailReason::Internal("CREATE_CHILD_SA response without nonce".into()),
            };
            sa.child_failed(ctx, now, child, reason);
            return;
        };
        let exchanged = Exchanged {
            offered: &offered,
            nonce_i: &nonce_i,
            nonce_r: &nonce_r,
            ke,
            skip_ke: false,
        };
        sa.initiator_child_answer(ctx, now, msg, child, exchanged);
    }
}

/// What the initiator of an exchange that made a Child SA sent and got,
/// for the answer's check and the keys.
pub(crate) struct Exchanged<'a> {
    pub(crate) offered: &'a [Proposal],
    pub(crate) nonce_i: &'a [u8],
    pub(crate) nonce_r: &'a [u8],
    /// Our key exchange (PFS), if any.
    pub(crate) ke: Option<Box<dyn KeyExchange>>,
    /// IKE_AUTH: its Child SA has no key exchange of its own.
    pub(crate) skip_ke: bool,
}

/// A peer's request (IKE_AUTH or CREATE_CHILD_SA) whose answer waits for
/// the kernel: SPI allocation, then install.
#[derive(Debug)]
pub(crate) struct PendingChild {
    /// Payloads that go first in the answer (IDr and AUTH of IKE_AUTH).
    pub(crate) prefix: Vec<Payload>,
    pub(crate) child: ChildId,
    pub(crate) selected: Proposal,
    pub(crate) nonce_i: Vec<u8>,
    pub(crate) nonce_r: Vec<u8>,
    pub(crate) pfs: Option<Secret>,
    pub(crate) ke_out: Option<wire::KeyExchange>,
    pub(crate) transport: bool,
    /// IKE_AUTH: what happens to the other IKE SAs of the identity pair
    /// once the answer is sent (`unique`).
    pub(crate) dups: Option<(super::unique::Dups, Instant)>,
}

/// The responder's side of an exchange that makes a Child SA, for its
/// keys and its answer.
pub(crate) struct ChildAnswer {
    /// Payloads that go first in the answer (IDr and AUTH of IKE_AUTH).
    pub(crate) prefix: Vec<Payload>,
    /// The initiator asked for transport mode.
    pub(crate) transport: bool,
    pub(crate) nonce_i: Vec<u8>,
    pub(crate) nonce_r: Vec<u8>,
    /// The PFS shared secret, and our key exchange payload.
    pub(crate) pfs: Option<Secret>,
    pub(crate) ke_out: Option<wire::KeyExchange>,
    /// The initiator's CPI if it offered IPComp with DEFLATE.
    pub(crate) ipcomp: Option<u16>,
}

/// What a request asks for, as the responder's child selection takes it.
pub(crate) struct ChildRequest<'a> {
    pub(crate) sa: &'a [Proposal],
    pub(crate) tsi: &'a [TrafficSelector],
    pub(crate) tsr: &'a [TrafficSelector],
    pub(crate) transport: bool,
    pub(crate) skip_ke: bool,
}

/// The responder's choice.
pub(crate) struct ChildChoice {
    pub(crate) cfg: Arc<ChildCfg>,
    /// The Child SA it rekeys, and its reqid.
    pub(crate) rekey: Option<(ChildId, u32)>,
    pub(crate) selected: Proposal,
    pub(crate) local_ts: Vec<TrafficSelector>,
    pub(crate) remote_ts: Vec<TrafficSelector>,
}

/// A refusal: the notify to answer with, and the reason to report.
pub(crate) struct ChildRefusal {
    pub(crate) notify: NotifyType,
    pub(crate) name: String,
    pub(crate) reason: ChildFailReason,
}

/// The protocol of a child configuration's proposals (ESP if none).
/// The protocol (ESP or AH) of a child configuration: its proposals'.
pub fn cfg_protocol(cfg: &ChildCfg) -> ProtocolId {
    cfg.proposals
        .first()
        .map(|p| p.protocol)
        .unwrap_or(ProtocolId::ESP)
}

/// Our proposals for a child with our SPI; without KE transforms for the
/// Child SA of IKE_AUTH (RFC 7296 1.2).
pub(crate) fn offer(cfg: &ChildCfg, spi: u32, with_ke: bool) -> Vec<Proposal> {
    cfg.proposals
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.spi = spi.to_be_bytes().to_vec();
            if !with_ke {
                p.transforms
                    .retain(|t| !proposal::is_ke_type(t.transform_type));
            }
            p
        })
        .collect()
}

/// The first key exchange method of our first proposal that has one (PFS).
fn pfs_group(proposals: &[Proposal]) -> Option<KeId> {
    proposals.first().and_then(|p| {
        p.transforms
            .iter()
            .find(|t| t.transform_type == TransformType::KE && t.id != KeId::NONE.0)
            .map(|t| KeId(t.id))
    })
}

fn spi_of(p: &Proposal) -> Option<u32> {
    <[u8; 4]>::try_from(p.spi.as_slice())
        .ok()
        .map(u32::from_be_bytes)
        .filter(|&s| s != 0)
}

pub(crate) fn ts_payloads(
    msg: &Message,
) -> (Option<&[TrafficSelector]>, Option<&[TrafficSelector]>) {
    let tsi = msg.iter().find_map(|p| match p {
        Payload::TsI(t) => Some(t.as_slice()),
        _ => None,
    });
    let tsr = msg.iter().find_map(|p| match p {
        Payload::TsR(t) => Some(t.as_slice()),
        _ => None,
    });
    (tsi, tsr)
}

pub(crate) fn sa_payload(msg: &Message) -> Option<&[Proposal]> {
    msg.iter().find_map(|p| match p {
        Payload::Sa(s) => Some(s.as_slice()),
        _ => None,
    })
}

pub(crate) fn nonce_payload(msg: &Message) -> Option<&[u8]> {
    msg.iter().find_map(|p| match p {
        Payload::Nonce(n) => Some(n.as_slice()),
        _ => None,
    })
}

pub(crate) fn ke_payload(msg: &Message) -> Option<&wire::KeyExchange> {
    msg.iter().find_map(|p| match p {
        Payload::Ke(k) => Some(k),
        _ => None,
    })
}

impl IkeSa {
    /// A new Child SA of ours: allocate its SPI.
    pub(crate) fn new_child(
        &mut self,
        ctx: &mut Ctx,
        cfg: Arc<ChildCfg>,
        initiator: bool,
    ) -> ChildId {
        let reqid = ctx.reqid_for(&self.peer.name, &cfg.name);
        self.new_child_with(ctx, cfg, initiator, reqid, None)
    }

    /// A new Child SA with this reqid, rekeying `rekey` if given.
    pub(crate) fn new_child_with(
        &mut self,
        ctx: &mut Ctx,
        cfg: Arc<ChildCfg>,
        initiator: bool,
        reqid: u32,
        rekey: Option<ChildId>,
    ) -> ChildId {
        let id = ctx.child_id();
        let protocol = cfg_protocol(&cfg);
        // Our IPComp offer needs our CPI; a responder allocates one once
        // it knows the peer offered IPComp (`start_responder_child`).
        let ipcomp = initiator && cfg.sa_opts.ipcomp;
        let req = ctx.kernel_req(
            self.id,
            KernelPurpose::AllocSpi {
                child: id,
                protocol,
                local: self.local,
            },
        );
        ctx.kernel_ops.push_back(KernelOp::AllocSpi {
            req,
            protocol,
            local: self.local,
            remote: self.remote,
        });
        // One more slot only: a Child is about 800 bytes, and a Vec's first
        // push would make room for four.
        self.children.reserve_exact(1);
        self.children.push(Child {
            id,
            mode: cfg.mode,
            cfg,
            state: ChildState::Creating,
            initiator,
            protocol,
            spi_in: 0,
            spi_out: 0,
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
            suite: None,
            installed_at: None,
            ke_retries: 0,
            reqid,
            rekey,
            out_pending: None,
            nonce_min: Vec::new(),
            fate: ChildFate::Own,
            ipcomp: Ipcomp::default(),
            outbound: false,
            volume_end: None,
            timers: ChildTimers::default(),
        });
        if ipcomp {
            self.alloc_cpi(ctx, id);
        }
        id
    }

    /// Asks the kernel for our CPI of `child` (IPComp).
    fn alloc_cpi(&mut self, ctx: &mut Ctx, child: ChildId) {
        let req = ctx.kernel_req(
            self.id,
            KernelPurpose::AllocCpi {
                child,
                local: self.local,
            },
        );
        ctx.kernel_ops.push_back(KernelOp::AllocCpi {
            req,
            local: self.local,
            remote: self.remote,
        });
        if let Some(c) = self.child_mut(child) {
            c.ipcomp.cpi_in = Ipcomp::ALLOCATING;
        }
    }

    /// Frees the SPI and CPI `c` allocated (it was never installed).
    pub(crate) fn release_ids(&self, ctx: &mut Ctx, c: &Child) {
        if c.spi_in != 0 {
            ctx.kernel_ops.push_back(KernelOp::ReleaseSpi {
                protocol: c.protocol,
                local: self.local,
                spi: c.spi_in,
            });
        }
        if let Some(cpi) = c.ipcomp.ours() {
            ctx.kernel_ops.push_back(KernelOp::ReleaseCpi {
                local: self.local,
                cpi,
            });
        }
    }

    /// Queues a CREATE_CHILD_SA for `cfg`.
    pub(crate) fn start_child(&mut self, ctx: &mut Ctx, cfg: Arc<ChildCfg>) {
        let child = self.new_child(ctx, cfg, true);
        self.window
            .queue
            .push_back(Task::CreateChild(CreateChild::new(child)));
    }

    /// The `initiate_child` command.
    pub(crate) fn initiate_child(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        name: &str,
    ) -> Result<(), CommandError> {
        let cfg = self
            .peer
            .child(name)
            .cloned()
            .ok_or_else(|| CommandError::UnknownChild {
                peer: self.peer.name.clone(),
                child: name.to_string(),
            })?;
        match self.phase {
            Phase::Established => {
                self.start_child(ctx, cfg);
                self.next_task(ctx, now);
                Ok(())
            }
            Phase::Deleting { .. } => Err(CommandError::WrongState(self.state())),
            _ => {
                self.pending_children.push_back(cfg);
                Ok(())
            }
        }
    }

    pub(crate) fn child_ready(&self, child: ChildId) -> bool {
        self.children
            .iter()
            .any(|c| c.id == child && c.spi_in != 0 && !c.ipcomp.allocating())
    }

    pub(crate) fn child_mut(&mut self, child: ChildId) -> Option<&mut Child> {
        self.children.iter_mut().find(|c| c.id == child)
    }

    /// An inbound SPI arrived for `child`.
    pub(crate) fn spi_ready(&mut self, ctx: &mut Ctx, now: Instant, child: ChildId) {
        if self.window.held_child() == Some(child) {
            self.responder_install(ctx, now);
        } else if self.initiator && matches!(self.phase, Phase::AwaitSpi(_)) {
            self.send_auth_request(ctx, now);
        } else {
            self.next_task(ctx, now);
        }
    }

    /// Sends our CREATE_CHILD_SA request for `child` (SPI allocated).
    pub(crate) fn send_create_child(&mut self, ctx: &mut Ctx, now: Instant, child: ChildId) {
        let Some(c) = self.children.iter().find(|c| c.id == child) else {
            return;
        };
        let cfg = c.cfg.clone();
        let rekey = c
            .rekey
            .and_then(|old| self.children.iter().find(|o| o.id == old));
        if c.rekey.is_some() && rekey.is_none_or(|o| o.state != ChildState::Rekeying) {
            // The old child went (or was replaced by the peer's rekey)
            // while ours waited: nothing to rekey any more.
            self.abandon_rekey(ctx, now, child);
            return;
        }
        let rekey_of = rekey.map(|o| {
            (
                o.protocol,
                o.spi_in,
                o.local_ts.clone(),
                o.remote_ts.clone(),
            )
        });
        let offered = offer(&cfg, c.spi_in, true);
        let cpi_in = c.ipcomp.ours();
        let nonce = match ctx.provider.random_vec(NONCE_LEN) {
            Ok(n) => n,
            Err(e) => {
                self.child_failed(ctx, now, child, ChildFailReason::Internal(e.to_string()));
                return;
            }
        };
        let ke = match pfs_group(&offered).map(|g| ctx.provider.start_key_exchange(g)) {
            None => None,
            Some(Ok(k)) => Some(k),
            Some(Err(e)) => {
                self.child_failed(ctx, now, child, ChildFailReason::Internal(e.to_string()));
                return;
            }
        };
        let mut inner = Vec::new();
        if let Some((protocol, spi, ..)) = &rekey_of {
            inner.push(Payload::Notify(Notify::rekey_sa(
                *protocol,
                spi.to_be_bytes().to_vec(),
            )));
        }
        if cfg.mode == Mode::Transport {
            inner.push(Payload::Notify(Notify::new(
                NotifyType::USE_TRANSPORT_MODE,
                Vec::new(),
            )));
        }
        if let Some(cpi) = cpi_in {
            inner.push(ipcomp_notify(cpi));
        }
        inner.push(Payload::Sa(offered.clone()));
        inner.push(Payload::Nonce(nonce.clone()));
        if let Some(k) = &ke {
            inner.push(Payload::Ke(wire::KeyExchange {
                group: k.method(),
                data: k.public_value().to_vec(),
            }));
        }
        // A rekey offers the selectors of the Child SA it replaces (RFC
        // 7296 2.8: the new SA should not differ).
        let spi_of_old = rekey_of.as_ref().map(|r| r.1);
        let (local, remote) = match rekey_of {
            Some((_, _, l, r)) if !l.is_empty() && !r.is_empty() => (l, r),
            _ => (self.local_ts(&cfg.local_ts), self.remote_ts(&cfg.remote_ts)),
        };
        inner.push(Payload::TsI(local.clone()));
        inner.push(Payload::TsR(remote.clone()));
        if let Some(c) = self.child_mut(child) {
            c.local_ts = local;
            c.remote_ts = remote;
        }
        match spi_of_old {
            Some(spi) => debug!(
                "{}: rekeying CHILD_SA {} with SPI {spi:08x}",
                self.name(),
                cfg.name
            ),
            None => debug!("{}: creating CHILD_SA {}", self.name(), cfg.name),
        }
        self.send_request(
            ctx,
            now,
            ExchangeType::CREATE_CHILD_SA,
            inner,
            Task::CreateChild(CreateChild {
                child,
                nonce,
                ke,
                offered,
            }),
        );
    }

    /// Our Child SA as the peer answered it (IKE_AUTH or CREATE_CHILD_SA).
    pub(crate) fn initiator_child_answer(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
        child: ChildId,
        exchanged: Exchanged<'_>,
    ) {
        let Exchanged {
            offered,
            nonce_i,
            nonce_r,
            ke,
            skip_ke,
        } = exchanged;
        if let Some(t) = error_notify(msg) {
            self.child_failed(ctx, now, child, peer_child_error(t, offered));
            return;
        }
        let (Some(sa), (Some(tsi), Some(tsr))) = (sa_payload(msg), ts_payloads(msg)) else {
            self.child_failed(
                ctx,
                now,
                child,
                ChildFailReason::Internal("answer without SA, TSi and TSr".into()),
            );
            return;
        };
        let selected = match proposal::check_response(offered, sa, skip_ke) {
            Ok(s) => s.proposal,
            Err(e) => {
                self.child_failed(ctx, now, child, ChildFailReason::Internal(e.to_string()));
                return;
            }
        };
        let Some(spi_out) = spi_of(&selected) else {
            self.child_failed(
                ctx,
                now,
                child,
                ChildFailReason::Internal("answer without a 4-octet SPI".into()),
            );
            return;
        };
        let Some(c) = self.children.iter().find(|c| c.id == child) else {
            return;
        };
        let ours_local = self.local_ts(&c.cfg.local_ts);
        let ours_remote = self.remote_ts(&c.cfg.remote_ts);
        if tsi.is_empty()
            || tsr.is_empty()
            || !within(tsi, &ours_local)
            || !within(tsr, &ours_remote)
        {
            self.child_rejected(
                ctx,
                now,
                child,
                ChildFailReason::TsUnacceptable { by_peer: false },
            );
            return;
        }
        if let Err(reason) = ctx.cfg.peer_limits.check_selectors(&c.cfg, tsi, tsr) {
            self.child_rejected(ctx, now, child, reason);
            return;
        }
        let transport_answer = notify(msg, NotifyType::USE_TRANSPORT_MODE).is_some();
        if c.cfg.mode == Mode::Transport && !transport_answer {
            self.child_rejected(ctx, now, child, ChildFailReason::ModeMismatch);
            return;
        }
        // IPComp as charon decides it (child_create.c, process_r).
        let cpi_out = match (c.ipcomp.ours().is_some(), ipcomp_of(msg)) {
            (false, Some(_)) => {
                self.child_rejected(
                    ctx,
                    now,
                    child,
                    ChildFailReason::Internal(
                        "the answer has an IPCOMP_SUPPORTED notify we did not ask for".into(),
                    ),
                );
                return;
            }
            (true, None) => {
                info!(
                    "{}: the peer did not accept IPComp for {}, IPComp is disabled",
                    self.name(),
                    c.cfg.name
                );
                0
            }
            (_, cpi) => cpi.unwrap_or(0),
        };
        let suite = match proposal::child_suite(&selected) {
            Ok(s) => s,
            Err(e) => {
                self.child_rejected(ctx, now, child, ChildFailReason::Internal(e.to_string()));
                return;
            }
        };
        let pfs = match (skip_ke, suite.ke.filter(|&k| k != KeId::NONE), ke) {
            (false, Some(g), Some(ours)) if ours.method() == g => {
                match ke_payload(msg).filter(|k| k.group == g) {
                    Some(k) => match ours.complete(&k.data) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            self.child_rejected(
                                ctx,
                                now,
                                child,
                                ChildFailReason::Internal(e.to_string()),
                            );
                            return;
                        }
                    },
                    None => {
                        self.child_rejected(
                            ctx,
                            now,
                            child,
                            ChildFailReason::Internal("PFS answer without its KE payload".into()),
                        );
                        return;
                    }
                }
            }
            (false, Some(g), _) => {
                self.child_rejected(
                    ctx,
                    now,
                    child,
                    ChildFailReason::Internal(format!(
                        "peer chose key exchange {g} we did not send"
                    )),
                );
                return;
            }
            _ => None,
        };
        let mode = if transport_answer && c.cfg.mode == Mode::Transport {
            Mode::Transport
        } else {
            Mode::Tunnel
        };
        let local = self.local;
        let Some(c) = self.child_mut(child) else {
            return;
        };
        c.spi_out = spi_out;
        c.local_ts = tsi.to_vec();
        c.remote_ts = tsr.to_vec();
        c.mode = mode;
        c.suite = Some(suite);
        c.ipcomp.cpi_out = cpi_out;
        if cpi_out == 0
            && let Some(cpi) = c.ipcomp.take_ours()
        {
            ctx.kernel_ops
                .push_back(KernelOp::ReleaseCpi { local, cpi });
        }
        self.install(ctx, now, child, nonce_i, nonce_r, pfs.as_ref());
    }

    /// We refuse the peer's answer for `child` although the peer has set it
    /// up: delete the peer's SA (our inbound SPI names it), then fail it.
    fn child_rejected(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        child: ChildId,
        reason: ChildFailReason,
    ) {
        if let Some(c) = self.children.iter().find(|c| c.id == child) {
            self.window.queue.push_back(Task::DeleteRejected {
                protocol: c.protocol,
                spi: c.spi_in,
            });
        }
        self.child_failed(ctx, now, child, reason);
    }

    /// Derives the keys of `child` and asks the kernel to install it.
    fn install(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        child: ChildId,
        nonce_i: &[u8],
        nonce_r: &[u8],
        pfs: Option<&Secret>,
    ) {
        let mut nmin = nonce_i.min(nonce_r).to_vec();
        if let Some(c) = self.child_mut(child) {
            std::mem::swap(&mut c.nonce_min, &mut nmin);
        }
        // The initiator of a rekey that lost a collision installs only
        // the inbound SA: the peer deletes it, it never carries traffic.
        let lost = self.rekey_collision(ctx, now, child);
        // Our rekey of a Child SA the peer deleted after answering (its
        // Delete overtook the answer), with nothing left on the reqid: no
        // policies to put the new SAs under, and the Child SA is deleted.
        // The peer's half of the new one goes too (if the peer has not
        // deleted it already: its Delete named an SPI we did not know).
        if let Some(c) = self
            .children
            .iter()
            .find(|c| c.id == child && c.initiator && !c.redundant())
            && let Some(old) = c.rekey
            && !self.children.iter().any(|o| o.id == old)
            && !self
                .children
                .iter()
                .any(|o| o.id != child && o.reqid == c.reqid && o.state != ChildState::Creating)
        {
            info!(
                "{}: CHILD_SA {}{old} was deleted while we rekeyed it, deleting its new SA {:08x}",
                self.name(),
                c.cfg.name,
                c.spi_in
            );
            self.child_rejected(
                ctx,
                now,
                child,
                ChildFailReason::Internal("the Child SA it rekeys was deleted meanwhile".into()),
            );
            return;
        }
        // Our rekey is answered: from now on a rekey of the old child by
        // the peer is refused (TEMPORARY_FAILURE), not a collision, even
        // while the kernel still installs ours.
        if let Some(old) = self
            .children
            .iter()
            .find(|c| c.id == child && c.initiator)
            .and_then(|c| c.rekey)
            && let Some(o) = self.child_mut(old)
            && o.state == ChildState::Rekeying
        {
            o.state = ChildState::Rekeyed;
        }
        let (Some(keys), Some(c)) = (
            self.keys.as_ref(),
            self.children.iter().find(|c| c.id == child),
        ) else {
            return;
        };
        let Some(suite) = c.suite else {
            return;
        };
        // Reauthentication: its inbound SA went in before IKE_AUTH with
        // the transform and selectors in use (`reauth`).
        let early = self.preinstalled_matches(child, &suite, &c.local_ts, &c.remote_ts);
        if early == Some(false) {
            self.child_rejected(
                ctx,
                now,
                child,
                ChildFailReason::Internal(
                    "the answer changed the transform or selectors of the reauthenticated \
                     Child SA"
                        .into(),
                ),
            );
            return;
        }
        let derived = ChildKeys::derive(
            keys.prf.as_ref(),
            keys.sk_d.as_bytes(),
            pfs.map(Secret::as_bytes),
            nonce_i,
            nonce_r,
            &suite,
        );
        let k = match derived {
            Ok(k) => k,
            Err(e) => {
                self.child_failed(ctx, now, child, ChildFailReason::Internal(e.to_string()));
                return;
            }
        };
        // A fresh Child SA with the configuration and selectors of one that
        // is installed (of an IKE SA being reauthenticated, ours or the
        // peer's) goes in under that one's policies and takes over their
        // reqid, so the policies never flap.
        let key = (
            self.peer.name.clone(),
            c.cfg.name.clone(),
            c.local_ts.clone(),
            c.remote_ts.clone(),
        );
        let takeover = if c.rekey.is_none() {
            ctx.reqids.shared(&key)
        } else {
            None
        };
        let reqid = takeover.unwrap_or(c.reqid);
        ctx.reqids.hold(reqid, key, c.id);
        let (encr_in, integ_in, encr_out, integ_out) = if self.initiator_of(c) {
            (k.encr_r, k.integ_r, k.encr_i, k.integ_i)
        } else {
            (k.encr_i, k.integ_i, k.encr_r, k.integ_r)
        };
        let install = ChildInstall {
            id: c.id,
            ike_sa: self.id,
            name: c.cfg.name.clone(),
            mode: c.mode,
            protocol: c.protocol,
            local: self.local,
            remote: self.remote,
            spi_in: c.spi_in,
            spi_out: c.spi_out,
            suite,
            encr_in,
            integ_in,
            encr_out,
            integ_out,
            local_ts: c.local_ts.clone(),
            vips: self.vips.ours.clone(),
            remote_ts: c.remote_ts.clone(),
            esn: suite.esn,
            sa_opts: c.cfg.sa_opts,
            ipcomp: c.ipcomp.cpis(),
            initiator: c.initiator,
            reqid,
            limits: c
                .cfg
                .lifetimes
                .kernel_limits_with(|max| ctx.jitter_count(max)),
            encap: self.nat.encap,
            kernel: c.cfg.kernel_policy(&self.peer.policy, reqid),
        };
        let (rekey, initiator, redundant) = (c.rekey.is_some(), c.initiator, c.redundant());
        let req = ctx.kernel_req(self.id, KernelPurpose::Install { child });
        let mut pending_out = None;
        let mut handover_at = None;
        let op = if early == Some(true) {
            debug!(
                "{}: CHILD_SA {}{child} adds its outbound SA (inbound in since IKE_AUTH)",
                self.name(),
                install.name
            );
            KernelOp::InstallOutbound {
                req,
                child: install,
            }
        } else if takeover.is_some() {
            debug!(
                "{}: CHILD_SA {}{child} takes over reqid {reqid} and its policies",
                self.name(),
                install.name
            );
            // The responder (of the reauthentication's exchange) sends on
            // the new SA only once the old Child SA goes (the endpoint's
            // handover, `Effect::ChildGone`) or at its handover deadline
            // (`reauth::handovers_due`, from its copy): until its answer
            // arrives, the initiator cannot receive on it.
            if !initiator {
                ctx.effects.push(Effect::AwaitHandover {
                    reqid,
                    ike: self.id,
                    child,
                    install: Box::new(install.clone()),
                });
                pending_out = Some(Box::new(install.clone()));
                handover_at = Some(later(now, super::reauth::HANDOVER));
            }
            KernelOp::InstallRekeyed {
                req,
                child: install,
                outbound: initiator,
            }
        } else if !rekey {
            KernelOp::InstallChild {
                req,
                child: install,
            }
        } else if initiator {
            KernelOp::InstallRekeyed {
                req,
                child: install,
                outbound: !lost,
            }
        } else {
            pending_out = (!redundant).then(|| Box::new(install.clone()));
            KernelOp::InstallRekeyed {
                req,
                child: install,
                outbound: false,
            }
        };
        ctx.kernel_ops.push_back(op);
        if let Some(c) = self.child_mut(child) {
            c.reqid = reqid;
            c.timers.set(ChildTimer::Handover, handover_at);
            c.state = ChildState::Installing;
            c.out_pending = pending_out;
            c.outbound = (!rekey && (takeover.is_none() || initiator)) || (initiator && !lost);
            if lost {
                c.fate = ChildFate::Redundant;
            }
        }
    }

    /// Whether the keys of `c` go initiator-to-responder outbound: the
    /// initiator of the exchange that created the Child SA (RFC 7296 2.17).
    fn initiator_of(&self, c: &Child) -> bool {
        c.initiator
    }

    /// The kernel installed `child`.
    pub(crate) fn child_installed(&mut self, ctx: &mut Ctx, now: Instant, child: ChildId) {
        let name = self.name();
        let ike = self.id;
        let Some(c) = self.child_mut(child) else {
            return;
        };
        c.state = ChildState::Installed;
        c.installed_at = Some(now);
        let timers = !c.redundant();
        let line = format!(
            "CHILD_SA {}{} established with SPIs {:08x}_i {:08x}_o and TS {} === {} ({} {}, IKE SA {name})",
            c.cfg.name,
            c.id,
            c.spi_in,
            c.spi_out,
            TsDisplay(&c.local_ts),
            TsDisplay(&c.remote_ts),
            c.protocol,
            c.mode,
        );
        // The operator's line is the daemon's, once the child is in the
        // kernel (ChildInstalled), or its rekey line (ChildRekeyed).
        debug!("{line}");
        if c.rekey.is_none() {
            ctx.events.push_back(Event::ChildInstalled {
                ike,
                child,
                name: c.cfg.name.clone(),
            });
        }
        let rekey = c.rekey;
        if timers {
            self.start_child_lifetimes(ctx, now, child);
            self.inactivity_start(now, child);
        }
        if self.window.held_child() == Some(child) {
            self.responder_answer(ctx, None);
        }
        if let Some(old) = rekey {
            self.rekey_installed(ctx, now, child, old);
        }
        self.next_task(ctx, now);
    }

    /// `child` could not be established: release its SPI and report; a
    /// responder answers NO_PROPOSAL_CHOSEN as strongSwan does for a
    /// failed install (child_create.c, build_r).
    pub(crate) fn child_failed(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        child: ChildId,
        reason: ChildFailReason,
    ) {
        let Some(pos) = self.children.iter().position(|c| c.id == child) else {
            return;
        };
        let c = self.children.remove(pos);
        self.window.queue.retain(
            |t| !matches!(t, Task::CreateChild(CreateChild { child: x, .. }) if *x == child),
        );
        let rekey = c.rekey.filter(|_| c.initiator);
        self.drop_child(ctx, c, false, reason.clone());
        if let Some(old) = rekey {
            self.rekey_failed(ctx, now, old, &reason);
        }
        if self.window.held_child() == Some(child) {
            self.responder_answer(ctx, Some(NotifyType::NO_PROPOSAL_CHOSEN));
        }
        if self.initiator && matches!(self.phase, Phase::AwaitSpi(_)) {
            self.fail(
                ctx,
                super::IkeFailReason::Internal("no SPI for the first Child SA".into()),
            );
            return;
        }
        self.next_task(ctx, now);
    }

    /// Undoes what `c` has in the kernel and reports it.
    pub(crate) fn drop_child(
        &mut self,
        ctx: &mut Ctx,
        c: Child,
        by_peer: bool,
        reason: ChildFailReason,
    ) {
        let policies = !ctx.reqids.held_by_other(c.reqid, c.id);
        ctx.reqids.release(c.reqid, c.id);
        let removal = match c.state {
            ChildState::Installed
            | ChildState::Deleting
            | ChildState::Installing
            | ChildState::Rekeying
            | ChildState::Rekeyed => {
                let req = ctx.kernel_req(self.id, KernelPurpose::Remove);
                ctx.kernel_ops.push_back(KernelOp::RemoveChild {
                    req,
                    child: self.remove_of(&c, policies),
                });
                Some(req)
            }
            ChildState::Creating => {
                self.release_ids(ctx, &c);
                None
            }
        };
        // A Child SA of a reauthentication that took over this one's
        // reqid and waits for it to go sends from now on: the endpoint
        // puts its outbound SA in before `removal` (a sending Child SA is
        // never `Creating`, so it has one).
        ctx.effects.push(Effect::ChildGone {
            reqid: c.reqid,
            child: c.id,
            outbound: c.outbound,
            removal,
            cfg: c.cfg.clone(),
        });
        if c.redundant() || c.replaced() {
            debug!(
                "CHILD_SA {}{} with SPIs {:08x}_i {:08x}_o removed ({}, IKE SA {})",
                c.cfg.name,
                c.id,
                c.spi_in,
                c.spi_out,
                if c.redundant() {
                    "redundant after a rekey collision"
                } else {
                    "replaced by its rekeyed successor"
                },
                self.name()
            );
        } else if matches!(
            c.state,
            ChildState::Installed
                | ChildState::Deleting
                | ChildState::Rekeying
                | ChildState::Rekeyed
        ) {
            info!(
                "CHILD_SA {}{} with SPIs {:08x}_i {:08x}_o deleted{} (IKE SA {})",
                c.cfg.name,
                c.id,
                c.spi_in,
                c.spi_out,
                if by_peer { " by peer" } else { "" },
                self.name()
            );
            ctx.events.push_back(Event::ChildDeleted {
                ike: self.id,
                child: c.id,
                name: c.cfg.name.clone(),
                by_peer,
            });
        } else {
            info!(
                "CHILD_SA {}{} of IKE SA {} failed: {reason}",
                c.cfg.name,
                c.id,
                self.name()
            );
            ctx.events.push_back(Event::ChildFailed {
                ike: self.id,
                child: Some(c.id),
                name: c.cfg.name.clone(),
                reason,
            });
        }
    }

    /// The kernel removal of `c`; its reqid's `policies` too if no other
    /// Child SA holds them.
    pub(crate) fn remove_of(&self, c: &Child, policies: bool) -> ChildRemove {
        ChildRemove {
            id: c.id,
            ike_sa: self.id,
            protocol: c.protocol,
            mode: c.mode,
            local: self.local,
            remote: self.remote,
            spi_in: c.spi_in,
            spi_out: c.spi_out,
            local_ts: c.local_ts.clone(),
            remote_ts: c.remote_ts.clone(),
            reqid: c.reqid,
            policies,
            outbound: c.outbound,
            kernel: c.cfg.kernel_policy(&self.peer.policy, c.reqid),
        }
    }

    /// Responder: the child configuration, proposal and narrowed selectors
    /// for a request. As strongSwan (peer_cfg.c, `select_child_cfg`), the
    /// child whose selectors match the offered ones best wins (equal beats
    /// containing beats overlapping), then its proposals must match.
    pub(crate) fn select_child(
        &self,
        ctx: &Ctx,
        req: &ChildRequest<'_>,
    ) -> Result<ChildChoice, ChildRefusal> {
        type Best<'a> = (
            u8,
            &'a Arc<ChildCfg>,
            Vec<TrafficSelector>,
            Vec<TrafficSelector>,
        );
        let mut best: Option<Best<'_>> = None;
        for cfg in &self.peer.children {
            let local = self.local_ts(&cfg.local_ts);
            let remote = self.remote_ts(&cfg.remote_ts);
            let tsr = narrow(&local, req.tsr);
            let tsi = narrow(&remote, req.tsi);
            if tsr.is_empty() || tsi.is_empty() {
                continue;
            }
            let score = ts_match(&local, req.tsr).saturating_add(ts_match(&remote, req.tsi));
            if best.as_ref().is_none_or(|(s, ..)| score > *s) {
                best = Some((score, cfg, tsr, tsi));
            }
        }
        let Some((_, cfg, tsr, tsi)) = best else {
            return Err(ChildRefusal {
                notify: NotifyType::TS_UNACCEPTABLE,
                name: self
                    .peer
                    .children
                    .first()
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                reason: ChildFailReason::TsUnacceptable { by_peer: false },
            });
        };
        Self::choose_proposal(ctx, cfg, req, tsr, tsi)
    }

    /// Responder of a rekey: the configuration of the Child SA `old`.
    pub(crate) fn select_rekey(
        &self,
        ctx: &Ctx,
        req: &ChildRequest<'_>,
        old: ChildId,
    ) -> Result<ChildChoice, ChildRefusal> {
        let Some(o) = self.children.iter().find(|c| c.id == old) else {
            return Err(ChildRefusal {
                notify: NotifyType::CHILD_SA_NOT_FOUND,
                name: String::new(),
                reason: ChildFailReason::PeerError(NotifyType::CHILD_SA_NOT_FOUND),
            });
        };
        let cfg = &o.cfg;
        let local = self.local_ts(&cfg.local_ts);
        let remote = self.remote_ts(&cfg.remote_ts);
        let tsr = narrow(&local, req.tsr);
        let tsi = narrow(&remote, req.tsi);
        if tsr.is_empty() || tsi.is_empty() {
            return Err(ChildRefusal {
                notify: NotifyType::TS_UNACCEPTABLE,
                name: cfg.name.clone(),
                reason: ChildFailReason::TsUnacceptable { by_peer: false },
            });
        }
        let mut c = Self::choose_proposal(ctx, cfg, req, tsr, tsi)?;
        c.rekey = Some((old, o.reqid));
        Ok(c)
    }

    /// The proposal of `cfg` for a request whose selectors were narrowed
    /// to `tsr` / `tsi`.
    fn choose_proposal(
        ctx: &Ctx,
        cfg: &Arc<ChildCfg>,
        req: &ChildRequest<'_>,
        tsr: Vec<TrafficSelector>,
        tsi: Vec<TrafficSelector>,
    ) -> Result<ChildChoice, ChildRefusal> {
        if let Err(reason) = ctx.cfg.peer_limits.check_selectors(cfg, &tsr, &tsi) {
            return Err(ChildRefusal {
                notify: NotifyType::TS_UNACCEPTABLE,
                name: cfg.name.clone(),
                reason,
            });
        }
        let opts = SelectOptions {
            preference: ctx.cfg.preference,
            skip_ke: req.skip_ke,
        };
        match proposal::select(&cfg.proposals, req.sa, opts) {
            Ok(s) => Ok(ChildChoice {
                cfg: cfg.clone(),
                rekey: None,
                selected: s.proposal,
                local_ts: tsr,
                remote_ts: tsi,
            }),
            Err(e) => Err(ChildRefusal {
                notify: NotifyType::NO_PROPOSAL_CHOSEN,
                name: cfg.name.clone(),
                reason: ChildFailReason::NoProposalChosen {
                    by_peer: false,
                    detail: e.to_string(),
                },
            }),
        }
    }

    /// Responder: reports a refused child (the caller answers).
    pub(crate) fn child_refused(&self, ctx: &mut Ctx, r: ChildRefusal) {
        info!(
            "CHILD_SA {} of IKE SA {} refused: {} (sending {})",
            r.name,
            self.name(),
            r.reason,
            r.notify
        );
        ctx.events.push_back(Event::ChildFailed {
            ike: self.id,
            child: None,
            name: r.name,
            reason: r.reason,
        });
    }

    /// Responder: the Child SA is chosen; allocate its SPI, answer the
    /// request `mid` later.
    pub(crate) fn start_responder_child(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        mid: u32,
        exchange: ExchangeType,
        choice: ChildChoice,
        answer: ChildAnswer,
    ) {
        let ChildAnswer {
            prefix,
            transport,
            nonce_i,
            nonce_r,
            pfs,
            ke_out,
            ipcomp,
        } = answer;
        let transport = transport && choice.cfg.mode == Mode::Transport;
        let ipcomp = match ipcomp {
            Some(cpi) if choice.cfg.sa_opts.ipcomp => Some(cpi),
            Some(_) => {
                info!(
                    "{}: IPCOMP_SUPPORTED received but IPComp is disabled for {}, ignoring",
                    self.name(),
                    choice.cfg.name
                );
                None
            }
            None => None,
        };
        let child = match choice.rekey {
            Some((old, reqid)) => self.new_child_with(ctx, choice.cfg, false, reqid, Some(old)),
            None => self.new_child(ctx, choice.cfg, false),
        };
        let suite = proposal::child_suite(&choice.selected).ok();
        if let Some(c) = self.child_mut(child) {
            c.local_ts = choice.local_ts;
            c.remote_ts = choice.remote_ts;
            c.mode = if transport {
                Mode::Transport
            } else {
                Mode::Tunnel
            };
            c.suite = suite;
            c.nonce_min = nonce_i.as_slice().min(nonce_r.as_slice()).to_vec();
            c.ipcomp.cpi_out = ipcomp.unwrap_or(0);
        }
        if ipcomp.is_some() {
            self.alloc_cpi(ctx, child);
        }
        self.window.hold(Held {
            mid,
            exchange,
            waits: Waits::Child(PendingChild {
                prefix,
                child,
                selected: choice.selected,
                nonce_i,
                nonce_r,
                pfs,
                ke_out,
                transport,
                dups: None,
            }),
        });
        if suite.is_none() {
            self.child_failed(
                ctx,
                now,
                child,
                ChildFailReason::Internal("selected proposal makes no suite".into()),
            );
        }
    }

    /// Responder: the SPI is there; derive keys and install.
    pub(crate) fn responder_install(&mut self, ctx: &mut Ctx, now: Instant) {
        let Some(Waits::Child(p)) = self.window.held().map(|h| &h.waits) else {
            return;
        };
        let (child, ni, nr, pfs) = (p.child, p.nonce_i.clone(), p.nonce_r.clone(), p.pfs.clone());
        let spi_out = spi_of(&p.selected).unwrap_or(0);
        if let Some(c) = self.child_mut(child) {
            c.spi_out = spi_out;
        }
        self.install(ctx, now, child, &ni, &nr, pfs.as_ref());
    }

    /// Responder: sends the answer of the pending request: the child's
    /// SA and selectors, or `refusal`.
    pub(crate) fn responder_answer(&mut self, ctx: &mut Ctx, refusal: Option<NotifyType>) {
        let Some(Held {
            mid,
            exchange,
            waits: Waits::Child(p),
        }) = self.window.take_held()
        else {
            return;
        };
        let mut inner = p.prefix;
        match refusal {
            Some(n) => inner.push(Payload::Notify(Notify::new(n, Vec::new()))),
            None => {
                let Some(c) = self.children.iter().find(|c| c.id == p.child) else {
                    return;
                };
                if p.transport {
                    inner.push(Payload::Notify(Notify::new(
                        NotifyType::USE_TRANSPORT_MODE,
                        Vec::new(),
                    )));
                }
                if let Some(cpis) = c.ipcomp.cpis() {
                    inner.push(ipcomp_notify(cpis.cpi_in));
                }
                let mut sel = p.selected;
                sel.spi = c.spi_in.to_be_bytes().to_vec();
                inner.push(Payload::Sa(vec![sel]));
                if exchange == ExchangeType::CREATE_CHILD_SA {
                    inner.push(Payload::Nonce(p.nonce_r));
                    if let Some(k) = p.ke_out {
                        inner.push(Payload::Ke(k));
                    }
                }
                inner.push(Payload::TsI(c.remote_ts.clone()));
                inner.push(Payload::TsR(c.local_ts.clone()));
            }
        }
        self.send_response(ctx, exchange, mid, inner);
        self.duplicates_go(ctx, p.dups);
    }

    /// Responder: a CREATE_CHILD_SA request.
    pub(crate) fn create_child_request(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        self.create_child_request_ke(ctx, now, msg, None);
    }

    /// Responder: a CREATE_CHILD_SA request, and the result of its key
    /// exchange if it was computed (`create_ke`; `None`: it is asked for
    /// if needed).
    pub(crate) fn create_child_request_ke(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
        ke: Option<super::create_ke::KeDone>,
    ) {
        let mid = msg.header.message_id;
        let refuse = |sa: &mut Self, ctx: &mut Ctx, n: Notify| {
            sa.send_response(
                ctx,
                ExchangeType::CREATE_CHILD_SA,
                mid,
                vec![Payload::Notify(n)],
            );
        };
        if sa_payload(msg).is_some_and(|s| s.iter().any(|p| p.protocol == ProtocolId::IKE)) {
            self.ike_rekey_request(ctx, now, msg, ke);
            return;
        }
        if matches!(self.phase, Phase::Rekeying | Phase::Rekeyed) {
            info!(
                "{}: CREATE_CHILD_SA while the IKE SA is being rekeyed, sending TEMPORARY_FAILURE",
                self.name()
            );
            refuse(
                self,
                ctx,
                Notify::new(NotifyType::TEMPORARY_FAILURE, Vec::new()),
            );
            return;
        }
        let rekey = match notify(msg, NotifyType::REKEY_SA) {
            None => None,
            Some(n) => match self.rekey_target(n) {
                Ok(old) => Some(old),
                Err(answer) => {
                    refuse(self, ctx, answer);
                    return;
                }
            },
        };
        if let Err(why) = self.child_room(&ctx.cfg.peer_limits, rekey.is_some()) {
            let name = self
                .children
                .iter()
                .find(|c| Some(c.id) == rekey)
                .map(|c| c.cfg.name.clone())
                .unwrap_or_default();
            self.child_refused(
                ctx,
                ChildRefusal {
                    notify: NotifyType::NO_ADDITIONAL_SAS,
                    name,
                    reason: ChildFailReason::OverLimit(why),
                },
            );
            refuse(
                self,
                ctx,
                Notify::new(NotifyType::NO_ADDITIONAL_SAS, Vec::new()),
            );
            return;
        }
        let (Some(sa), Some(ni), (Some(tsi), Some(tsr))) =
            (sa_payload(msg), nonce_payload(msg), ts_payloads(msg))
        else {
            info!(
                "{}: CREATE_CHILD_SA request lacks SA, Ni, TSi or TSr",
                self.name()
            );
            refuse(
                self,
                ctx,
                Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()),
            );
            return;
        };
        let req = ChildRequest {
            sa,
            tsi,
            tsr,
            transport: notify(msg, NotifyType::USE_TRANSPORT_MODE).is_some(),
            skip_ke: false,
        };
        let chosen = match rekey {
            Some(old) => self.select_rekey(ctx, &req, old),
            None => self.select_child(ctx, &req),
        };
        let choice = match chosen {
            Ok(c) => c,
            Err(r) => {
                let n = r.notify;
                self.child_refused(ctx, r);
                refuse(self, ctx, Notify::new(n, Vec::new()));
                return;
            }
        };
        let kei = ke_payload(msg);
        let (pfs, ke_out) = match proposal::check_ke_payload(&choice.selected, kei.map(|k| k.group))
        {
            KeCheck::InvalidKePayload(g) => {
                info!(
                    "{}: CREATE_CHILD_SA with key exchange {:?}, asking for {g}",
                    self.name(),
                    kei.map(|k| k.group)
                );
                refuse(self, ctx, Notify::invalid_ke_payload(g));
                return;
            }
            KeCheck::Ignore => (None, None),
            KeCheck::Accept => match kei {
                Some(k) => match ke {
                    None => {
                        self.await_create_ke(ctx, msg, k);
                        return;
                    }
                    Some(Ok((public, shared))) => (
                        Some(shared),
                        Some(wire::KeyExchange {
                            group: k.group,
                            data: public,
                        }),
                    ),
                    Some(Err(e)) => {
                        info!("{}: peer's KE value unusable: {e}", self.name());
                        refuse(
                            self,
                            ctx,
                            Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()),
                        );
                        return;
                    }
                },
                None => (None, None),
            },
        };
        let nonce_r = match ctx.provider.random_vec(NONCE_LEN) {
            Ok(n) => n,
            Err(_) => {
                refuse(
                    self,
                    ctx,
                    Notify::new(NotifyType::NO_ADDITIONAL_SAS, Vec::new()),
                );
                return;
            }
        };
        let answer = ChildAnswer {
            prefix: Vec::new(),
            transport: req.transport,
            nonce_i: ni.to_vec(),
            nonce_r,
            pfs,
            ke_out,
            ipcomp: ipcomp_of(msg),
        };
        self.start_responder_child(ctx, now, mid, ExchangeType::CREATE_CHILD_SA, choice, answer);
    }
}

/// How well configured selectors match offered ones: 3 if one is equal,
/// 2 if an offered one lies within a configured one, 1 if they overlap.
fn ts_match(configured: &[TrafficSelector], offered: &[TrafficSelector]) -> u8 {
    let mut best = 0;
    for c in configured {
        for o in offered {
            let s = if c == o {
                3
            } else if within(std::slice::from_ref(o), std::slice::from_ref(c)) {
                2
            } else if super::ts::intersect(c, o).is_some() {
                1
            } else {
                0
            };
            best = best.max(s);
        }
    }
    best
}

/// The reason for a child the peer refused with error notify `t`.
fn peer_child_error(t: NotifyType, offered: &[Proposal]) -> ChildFailReason {
    match t {
        NotifyType::NO_PROPOSAL_CHOSEN => ChildFailReason::NoProposalChosen {
            by_peer: true,
            detail: proposal::display_list(offered).to_string(),
        },
        NotifyType::TS_UNACCEPTABLE => ChildFailReason::TsUnacceptable { by_peer: true },
        other => ChildFailReason::PeerError(other),
    }
}
