//! Waiting on outside operations: the engine asks something of the world
//! outside it and continues when the answer comes, without blocking and
//! without a callback.
//!
//! An IKE SA that needs an outside operation registers what it waits for
//! in the endpoint's one table ([`Outside`], in `Ctx`): a request id, the
//! IKE SA that owns the request, and what to continue with ([`Then`]). The
//! operation goes out through a `poll_*` queue carrying the id; its answer
//! comes back through an `Endpoint::handle_*` input carrying the id, as an
//! [`Outcome`]. `Endpoint::resume` takes the request out of the table and
//! hands `Then` and the `Outcome` to the owner (`IkeSa::resume`), or, if
//! the owner is gone, undoes what the operation left (`orphan`). The one
//! place that moves requests to another owner is an IKE rekey (the new
//! IKE SA takes over the Child SAs, and the requests about them).
//!
//! The kernel is the first kind of outside operation
//! ([`KernelOp`](super::KernelOp) out, [`KernelResult`](super::KernelResult)
//! in, [`Then::Kernel`]). The second is a CRL fetch
//! ([`CrlFetch`](super::CrlFetch) out through `Endpoint::poll_crl_fetch`,
//! [`CrlFetched`](super::CrlFetched) in through
//! `Endpoint::handle_crl_fetched`, [`Then::Crl`]). The third is CPU work
//! ([`Compute`](super::Compute) out through `Endpoint::poll_compute`,
//! [`Computed`](super::Computed) in through `Endpoint::handle_computed`,
//! [`Then::Compute`]; `sa/compute.rs`). The fourth is what an EAP method
//! asks (a RADIUS round trip: [`EapAsk`](super::EapAsk) out through
//! `Endpoint::poll_eap_ask`, an [`eap::Answer`](crate::eap::Answer) in
//! through `Endpoint::handle_eap_answer`, [`Then::Eap`]; `sa/eap_auth.rs`).
//! Another kind is a new variant of [`Then`] and of [`Outcome`], with its
//! own output queue and input method that share this table and its ids.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::types::{ChildId, CrlReq, IkeSaId, KernelOk, KernelReq};
use crate::wire::codes::ProtocolId;

/// Why a kernel request was made.
#[derive(Clone, Debug)]
pub(crate) enum KernelPurpose {
    /// The inbound SPI of a Child SA.
    AllocSpi {
        child: ChildId,
        protocol: ProtocolId,
        local: SocketAddr,
    },
    /// The IPComp CPI of a Child SA.
    AllocCpi { child: ChildId, local: SocketAddr },
    /// Installing a Child SA.
    Install { child: ChildId },
    /// Installing the outbound SA of a rekeyed Child SA (responder).
    InstallOut { child: ChildId },
    /// Installing the inbound SA of a reauthentication's first Child SA
    /// before IKE_AUTH.
    PreInstall { child: ChildId },
    /// Removing one (the result is only logged).
    Remove,
    /// Reading the inbound traffic counters for dead peer detection.
    Traffic,
    /// Moving one to new addresses (the result is only logged).
    Update,
    /// When a Child SA's policies were last used (`inactivity`).
    LastUse { child: ChildId },
}

impl KernelPurpose {
    /// The Child SA it is about.
    pub(crate) fn child(&self) -> Option<ChildId> {
        match self {
            Self::AllocSpi { child, .. }
            | Self::AllocCpi { child, .. }
            | Self::Install { child }
            | Self::InstallOut { child }
            | Self::PreInstall { child }
            | Self::LastUse { child } => Some(*child),
            Self::Remove | Self::Traffic | Self::Update => None,
        }
    }
}

/// What an IKE SA continues with when an outside operation answers.
#[derive(Clone, Debug)]
pub(crate) enum Then {
    /// A kernel operation.
    Kernel(KernelPurpose),
    /// A CRL fetch: the IKE SA validates the peer's certificate again
    /// with what came (`ike_auth`).
    Crl,
    /// CPU work (`compute`): the IKE SA continues with the step.
    Compute(super::compute::Step),
    /// An EAP method's outside operation (`eap_auth`): the method goes
    /// on with the answer.
    Eap,
}

impl Then {
    /// The Child SA it is about, if any (an IKE rekey hands such requests
    /// over with the Child SA).
    pub(crate) fn child(&self) -> Option<ChildId> {
        match self {
            Self::Kernel(p) => p.child(),
            Self::Crl | Self::Compute(_) | Self::Eap => None,
        }
    }
}

/// The answer of an outside operation.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Of a kernel operation.
    Kernel(Result<KernelOk, String>),
    /// Of a CRL fetch: the CRLs as fetched (DER or PEM), or why none.
    Crl(Result<Vec<Vec<u8>>, String>),
    /// Of CPU work: what it gave, or why nothing.
    Compute(Result<super::compute::Done, String>),
    /// Of an EAP method's operation.
    Eap(crate::eap::Answer),
}

/// A request waiting for its answer.
#[derive(Debug)]
pub(crate) struct Waiting {
    /// The IKE SA that continues.
    pub(crate) owner: IkeSaId,
    pub(crate) then: Then,
}

/// The outside operations under way, by request id.
#[derive(Debug, Default)]
pub(crate) struct Outside {
    next: u64,
    waiting: HashMap<u64, Waiting>,
}

impl Outside {
    /// Registers a request of `owner`: its id.
    pub(crate) fn ask(&mut self, owner: IkeSaId, then: Then) -> u64 {
        self.next = self.next.wrapping_add(1);
        self.waiting.insert(self.next, Waiting { owner, then });
        self.next
    }

    /// A kernel request of `owner` for `purpose`.
    pub(crate) fn kernel(&mut self, owner: IkeSaId, purpose: KernelPurpose) -> KernelReq {
        KernelReq(self.ask(owner, Then::Kernel(purpose)))
    }

    /// A CRL fetch of `owner`.
    pub(crate) fn crl(&mut self, owner: IkeSaId) -> CrlReq {
        CrlReq(self.ask(owner, Then::Crl))
    }

    /// The answer to request `id` came: what waited for it, if anything.
    pub(crate) fn answered(&mut self, id: u64) -> Option<Waiting> {
        let w = self.waiting.remove(&id);
        super::endpoint::trim_map(&mut self.waiting);
        w
    }

    /// Requests of `from` about Child SAs that `moved` says went to `to`
    /// continue with `to`.
    pub(crate) fn hand_over(
        &mut self,
        from: IkeSaId,
        to: IkeSaId,
        moved: impl Fn(ChildId) -> bool,
    ) {
        for w in self.waiting.values_mut() {
            if w.owner == from && w.then.child().is_some_and(&moved) {
                w.owner = to;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_answered_once_to_its_owner() {
        let mut o = Outside::default();
        let a = o.kernel(IkeSaId(1), KernelPurpose::Traffic);
        let b = o.kernel(IkeSaId(1), KernelPurpose::Install { child: ChildId(7) });
        assert_ne!(a, b);
        let w = o.answered(a.0);
        assert!(matches!(
            w,
            Some(Waiting {
                owner: IkeSaId(1),
                then: Then::Kernel(KernelPurpose::Traffic)
            })
        ));
        assert!(o.answered(a.0).is_none());
        // A rekey moves the request about the Child SA it took over.
        o.hand_over(IkeSaId(1), IkeSaId(2), |c| c == ChildId(7));
        assert!(matches!(
            o.answered(b.0),
            Some(Waiting {
                owner: IkeSaId(2),
                ..
            })
        ));
    }
}
