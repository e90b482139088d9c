//! What an IKE SA tells the endpoint (quinn-proto's `EndpointEvent` is the
//! model): an SA handling an input sees only itself and the shared
//! [`Ctx`](super::endpoint::Ctx); whatever concerns the endpoint's tables
//! or other IKE SAs it pushes as an [`Effect`] to `Ctx::effects`, and the
//! endpoint applies them all in one place (`Endpoint::apply_effects`), in
//! the order they were pushed, once the SA returns and before the input
//! that called it returns (so before the driver polls any output queue).
//!
//! Outputs to the daemon (datagrams, kernel operations, events) are not
//! effects: they go straight to the `Ctx` queues the `poll_*` methods
//! drain; outside operations the SA waits for are registered in
//! [`Outside`](super::outside::Outside). An effect that adds an output
//! names where in its queue the output goes (a kernel request id, a queue
//! position), so outputs keep the order they would have had if the SA had
//! added them itself.

use std::collections::VecDeque;
use std::sync::Arc;

use super::config::{ChildCfg, PeerCfg};
use super::ike_sa::IkeSa;
use super::types::{ChildId, ChildInstall, IkeSaId, KernelReq};

#[derive(Debug)]
pub(crate) enum Effect {
    /// `from` made a new IKE SA by a rekey (ours, or the peer's): the
    /// endpoint takes it in, and what referred to `from` for the Child SAs
    /// it took over (their kernel requests, a reauthentication under way)
    /// refers to it from now on. (Boxed: the endpoint keeps SAs boxed.)
    NewSa { from: IkeSaId, sa: Box<IkeSa> },
    /// The Child SAs of `from` are `to`'s now (an IKE rekey): handovers
    /// waited for by Child SAs of `from` are `to`'s.
    Adopted { from: IkeSaId, to: IkeSaId },
    /// The peer did not answer IKE SA `id` being established, which has
    /// tries left (`keyingtries`): it is gone, and the endpoint starts it
    /// again under the same id with `cfgs` (at the end of
    /// `handle_timeout`), as try number `keyingtry` + 1.
    Retry {
        id: IkeSaId,
        peer: Arc<PeerCfg>,
        cfgs: VecDeque<Arc<ChildCfg>>,
        keyingtry: u32,
    },
    /// The reauthentication of this IKE SA is due: the endpoint starts the
    /// new IKE SA (at the end of `handle_timeout`).
    Reauth(IkeSaId),
    /// The outbound SA of this Child SA of this IKE SA is in (or failed):
    /// answers held for it may go.
    OutboundIn(IkeSaId, ChildId),
    /// Responder of a reauthentication: `child` of `ike` took over `reqid`
    /// and sends only once a Child SA with that reqid that sends goes
    /// (`install` is its outbound SA), or at its handover deadline. The
    /// child keeps a copy of `install` (`Child::out_pending`) for that
    /// deadline while the endpoint's entry stands; the endpoint drops the
    /// copy whenever it drops the entry. The latest for a reqid wins.
    AwaitHandover {
        reqid: u32,
        ike: IkeSaId,
        child: ChildId,
        install: Box<ChildInstall>,
    },
    /// Child SA `child` (of `cfg`) with `reqid` went, sending
    /// (`outbound`) or not; `removal` is its `RemoveChild`, if it had one.
    /// If it sent, a Child SA waiting for the handover of its reqid (not
    /// itself) sends from now on: its `InstallOutbound` goes in just
    /// before `removal`, so the kernel has an outbound SA for the reqid
    /// throughout.
    ChildGone {
        reqid: u32,
        child: ChildId,
        outbound: bool,
        removal: Option<KernelReq>,
        cfg: Arc<ChildCfg>,
    },
    /// `child` reached its handover deadline and sends now (its IKE SA
    /// installed the outbound SA from its copy): the entry for `reqid`
    /// goes.
    HandedOver { reqid: u32, child: ChildId },
    /// The answer to the peer's delete of IKE SA `ike` (request `mid`) is
    /// the datagram at position `at` of the transmit queue; the effects
    /// from index `since` up to this one are that delete's. If they made
    /// Child SAs of other IKE SAs send (`ChildGone`), the answer waits
    /// until their outbound SAs are in
    /// ([`Waits::Handover`](super::window::Waits::Handover)), held by the
    /// endpoint since its IKE SA is gone: the peer removes the old inbound
    /// SAs once it has the answer.
    AnswerDelete {
        ike: IkeSaId,
        mid: u32,
        at: usize,
        since: usize,
    },
    /// IKE SA `ike` answered its IKE_AUTH: the other IKE SAs of its
    /// identity pair go as `dups` says (`unique`), with `now` the time of
    /// the decision.
    Duplicates {
        ike: IkeSaId,
        dups: super::unique::Dups,
        now: std::time::Instant,
    },
    /// The client of IKE SA `old` follows a redirect (`redirect`): once
    /// `old` is gone and the gateway's address known (the daemon resolves
    /// a name), the endpoint starts the new IKE SA toward it.
    Redirect(Box<super::redirect::Follow>),
}
