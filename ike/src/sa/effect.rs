//! What an IKE SA tells the endpoint (quinn-proto's `EndpointEvent` is the
//! model): an SA handling an input sees only itself and the shared
//! [`Ctx`](super::endpoint::Ctx); whatever concerns the endpoint's tables
//! or other IKE SAs it pushes as an [`Effect`] to `Ctx::effects`, and the
//! endpoint applies them all in one place (`Endpoint::apply_effects`)
//! once the SA returns.
//!
//! Outputs to the daemon (datagrams, kernel operations, events) are not
//! effects: they go straight to the `Ctx` queues the `poll_*` methods
//! drain; outside operations the SA waits for are registered in
//! [`Outside`](super::outside::Outside).

use super::ike_sa::IkeSa;
use super::types::{ChildId, IkeSaId};
use super::window::Held;

#[derive(Debug)]
pub(crate) enum Effect {
    /// `from` made a new IKE SA by a rekey (ours, or the peer's): the
    /// endpoint takes it in, and what referred to `from` for the Child SAs
    /// it took over (their kernel requests, a reauthentication under way)
    /// refers to it from now on. (Boxed: the endpoint keeps SAs boxed.)
    NewSa { from: IkeSaId, sa: Box<IkeSa> },
    /// The reauthentication of this IKE SA is due: the endpoint starts the
    /// new IKE SA (at the end of `handle_timeout`).
    Reauth(IkeSaId),
    /// The outbound SA of this Child SA of this IKE SA (another one,
    /// perhaps, than the one that asked) was just asked for: it sends
    /// from now on.
    OutboundNow(IkeSaId, ChildId),
    /// The outbound SA of this Child SA is in (or failed): answers held
    /// for it may go.
    OutboundIn(IkeSaId, ChildId),
    /// An answer that outlives its IKE SA
    /// ([`Waits::Handover`](super::window::Waits::Handover)): the endpoint
    /// holds it.
    Hold(Held),
}
