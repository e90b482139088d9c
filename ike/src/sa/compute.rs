//! CPU work as an outside operation: the key exchanges of IKE_SA_INIT run
//! where the driver chooses (the daemon: a bounded pool of worker
//! threads), while the engine goes on with other IKE SAs.
//!
//! An IKE SA asks with [`Ctx::compute`]: a request in the `Outside` table
//! ([`Then::Compute`] with the [`Step`] to continue with) and a
//! [`Compute`] job in the endpoint's queue (`Endpoint::poll_compute`).
//! The driver runs [`Compute::run`] anywhere (it owns everything it
//! needs: the provider and the values, no reference into the engine) and
//! hands the [`Computed`] back through `Endpoint::handle_computed`; the
//! owner continues in `IkeSa::computed`, or, if it is gone, the result is
//! dropped (nothing to undo: secrets are wiped when dropped).
//!
//! With [`ComputeMode::Inline`] (the default, and the in-process tests')
//! the engine runs each job at once and continues through the same path,
//! before the input that asked returns: what goes out is the same, only
//! sooner.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use super::endpoint::Ctx;
use super::outside::{Outcome, Then};
use super::types::IkeSaId;
use crate::crypto::ke::KeyExchange;
use crate::crypto::{CryptoProvider, Secret};
use crate::wire::codes::KeId;

/// Where the engine's CPU work ([`Compute`] jobs) runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ComputeMode {
    /// At once, inside the call that asks for it.
    #[default]
    Inline,
    /// Handed to the driver (`Endpoint::poll_compute`), whose answer
    /// comes back through `Endpoint::handle_computed`.
    Outside,
}

/// Names one [`Compute`] job so that its result can be matched to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComputeReq(pub u64);

/// A job for a worker: run it ([`Compute::run`]) on any thread and hand
/// the result to `Endpoint::handle_computed`.
pub struct Compute {
    /// Matches the result.
    pub req: ComputeReq,
    provider: Arc<dyn CryptoProvider>,
    op: Op,
    /// A responder's key exchange for a request nothing proved the
    /// source of (no valid COOKIE): runs after every other job
    /// ([`super::JobQueue`]).
    unproven: bool,
}

/// What a job computes.
enum Op {
    /// Responder: our key exchange value and the shared secret.
    Respond { group: KeId, peer: Vec<u8> },
    /// Initiator: the shared secret of our key exchange with the peer's
    /// value.
    Complete {
        ke: Box<dyn KeyExchange>,
        peer: Vec<u8>,
    },
}

/// The job's kind only: no key material in logs.
impl fmt::Debug for Compute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.op {
            Op::Respond { group, .. } => format!("Respond({group})"),
            Op::Complete { ke, .. } => format!("Complete({})", ke.method()),
        };
        f.debug_struct("Compute")
            .field("req", &self.req)
            .field("op", &kind)
            .finish()
    }
}

impl Compute {
    /// Whether the job is for a request nothing proved the source of.
    pub fn unproven(&self) -> bool {
        self.unproven
    }

    /// Runs the job (CPU only: no I/O, no lock shared with the engine).
    pub fn run(self) -> Computed {
        let result = match self.op {
            Op::Respond { group, peer } => self
                .provider
                .respond_key_exchange(group, &peer)
                .map(|(public, shared)| Done::Responded { public, shared }),
            Op::Complete { ke, peer } => ke.complete(&peer).map(Done::Shared),
        }
        .map_err(|e| e.to_string());
        Computed {
            req: self.req,
            result,
        }
    }
}

/// The result of a [`Compute`] job.
#[derive(Debug)]
pub struct Computed {
    /// The job's `req`.
    pub req: ComputeReq,
    pub(crate) result: Result<Done, String>,
}

/// What a job gave.
#[derive(Debug)]
pub(crate) enum Done {
    /// Responder: our public value and the shared secret.
    Responded { public: Vec<u8>, shared: Secret },
    /// Initiator: the shared secret.
    Shared(Secret),
}

/// What an IKE SA continues with when its job is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Responder: answer IKE_SA_INIT (`ike_init`).
    AnswerInit,
    /// Initiator: take the IKE_SA_INIT response on (`ike_init`).
    CompleteInit,
}

/// The jobs waiting for the driver, and, inline, the results waiting to
/// be handed to their owners.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    pub(crate) queue: VecDeque<Compute>,
    pub(crate) done: VecDeque<Computed>,
}

impl Ctx {
    /// Asks for `op` for `owner`, which continues with `step`.
    fn compute(&mut self, owner: IkeSaId, step: Step, op: Op) -> ComputeReq {
        self.compute_as(owner, step, op, false)
    }

    /// [`Ctx::compute`], `unproven` or not.
    fn compute_as(&mut self, owner: IkeSaId, step: Step, op: Op, unproven: bool) -> ComputeReq {
        let req = ComputeReq(self.outside.ask(owner, Then::Compute(step)));
        let job = Compute {
            req,
            provider: self.provider.clone(),
            op,
            unproven,
        };
        match self.cfg.compute {
            ComputeMode::Inline => self.jobs.done.push_back(job.run()),
            ComputeMode::Outside => self.jobs.queue.push_back(job),
        }
        req
    }

    /// Responder: our key exchange for the peer's `peer` value of
    /// `group`; `proven`: the request returned a valid COOKIE.
    pub(crate) fn compute_respond(
        &mut self,
        owner: IkeSaId,
        group: KeId,
        peer: Vec<u8>,
        proven: bool,
    ) {
        let op = Op::Respond { group, peer };
        self.compute_as(owner, Step::AnswerInit, op, !proven);
    }

    /// Initiator: the shared secret of `ke` with the peer's `peer` value.
    pub(crate) fn compute_complete(
        &mut self,
        owner: IkeSaId,
        ke: Box<dyn KeyExchange>,
        peer: Vec<u8>,
    ) {
        self.compute(owner, Step::CompleteInit, Op::Complete { ke, peer });
    }
}

impl Computed {
    /// As the `Outside` table's answer.
    pub(crate) fn outcome(self) -> (u64, Outcome) {
        (self.req.0, Outcome::Compute(self.result))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::crypto::DeterministicProvider;

    #[test]
    fn a_job_computes_what_the_provider_would() {
        let p: Arc<dyn CryptoProvider> = Arc::new(DeterministicProvider::new(b"job"));
        let ours = p.start_key_exchange(KeId::CURVE25519).unwrap();
        let theirs = p.start_key_exchange(KeId::CURVE25519).unwrap();
        let theirs_pub = theirs.public_value().to_vec();
        let job = Compute {
            req: ComputeReq(7),
            provider: p.clone(),
            op: Op::Respond {
                group: KeId::CURVE25519,
                peer: ours.public_value().to_vec(),
            },
            unproven: true,
        };
        assert!(!format!("{job:?}").contains("peer"));
        let done = job.run();
        assert_eq!(done.req, ComputeReq(7));
        let Ok(Done::Responded { public, shared }) = done.result else {
            panic!("{:?}", done.result)
        };
        let mine = ours.complete(&public).unwrap();
        assert!(mine.ct_eq(shared.as_ref()));
        // A value of the wrong length is an error, not a panic.
        let bad = Compute {
            req: ComputeReq(8),
            provider: p,
            op: Op::Complete {
                ke: theirs,
                peer: vec![1, 2, 3],
            },
            unproven: false,
        }
        .run();
        assert!(bad.result.is_err());
        assert_eq!(theirs_pub.len(), 32);
    }
}
