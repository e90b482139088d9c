//! CPU work as an outside operation: the key exchanges of IKE_SA_INIT (the
//! initiator's key generation too: `init_ke`) and
//! of the responder of CREATE_CHILD_SA (`create_ke`), and the public-key
//! work of IKE_AUTH (our signature; the peer's certificate
//! path and signature) run where the driver chooses (the daemon: a
//! bounded pool of worker threads), while the engine goes on with other
//! IKE SAs.
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

use super::config::LocalCred;
use super::endpoint::Ctx;
use super::outside::{Outcome, Then};
use super::types::IkeSaId;
use crate::config::Revocation;
use crate::crypto::ke::KeyExchange;
use crate::crypto::{CryptoProvider, Secret};
use crate::pki::{
    Certificate, HashAlg, PublicKey, SigScheme, TrustStore, ValidateParams, Validation, validate,
};
use crate::wire::Authentication;
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
    /// Initiator: our key exchange of `group` (its key pair).
    Start { group: KeId },
    /// Our AUTH: `signed` signed with `cred`'s key.
    Sign(Box<SignJob>),
    /// The peer's AUTH: the key that may have made it, and the signature.
    Verify(Box<VerifyJob>),
}

/// Our AUTH signature (`pubkey::sign_auth`).
pub(crate) struct SignJob {
    pub(crate) cred: Arc<LocalCred>,
    /// The peer's SIGNATURE_HASH_ALGORITHMS (`None`: the classic methods).
    pub(crate) hashes: Option<Vec<HashAlg>>,
    /// This RFC 7427 scheme whatever the peer announced (tests only).
    pub(crate) scheme: Option<SigScheme>,
    /// The octets of RFC 7296 2.15.
    pub(crate) signed: Vec<u8>,
}

/// The check of the peer's AUTH: the key it was made with (a raw key of
/// the connection, or the certificate's once its path validates), then
/// the signature.
pub(crate) struct VerifyJob {
    pub(crate) keys: PeerKeySource,
    pub(crate) auth: Authentication,
    /// The octets of RFC 7296 2.15.
    pub(crate) signed: Vec<u8>,
}

/// Where the key that signed the peer's AUTH comes from.
pub(crate) enum PeerKeySource {
    /// The connection's raw public keys: one of them.
    Raw(Vec<PublicKey>),
    /// The peer's end-entity certificate, if its path validates
    /// (`pki::chain::validate`) against the store as it was asked with.
    Chain(Box<ChainJob>),
}

/// What `pki::chain::validate` needs, owned.
pub(crate) struct ChainJob {
    pub(crate) trust: Arc<TrustStore>,
    pub(crate) end: Certificate,
    pub(crate) rest: Vec<Certificate>,
    pub(crate) cacerts: Vec<Arc<Certificate>>,
    pub(crate) revocation: Revocation,
    pub(crate) now_unix: i64,
    pub(crate) crls_fetched: bool,
}

/// What checking the peer's AUTH found (an error: why its certificate
/// is refused).
#[derive(Debug)]
pub(crate) enum Checked {
    /// It is a signature by `key`; `trusted` says through which CAs its
    /// certificate is (`None`: a raw key).
    Key {
        key: PublicKey,
        trusted: Option<String>,
    },
    /// No key made it: why the last one failed.
    BadSig(String),
    /// The certificate's revocation status needs the CRLs at these URIs.
    NeedCrls(Vec<String>),
}

impl VerifyJob {
    fn run(self) -> Result<Checked, String> {
        let (keys, trusted) = match self.keys {
            PeerKeySource::Raw(keys) => (keys, None),
            PeerKeySource::Chain(c) => {
                let params = ValidateParams {
                    crls_fetched: c.crls_fetched,
                    ..ValidateParams::new(c.now_unix, &c.cacerts, c.revocation)
                };
                match validate(&c.trust, &c.end, &c.rest, &params).map_err(|e| e.to_string())? {
                    Validation::Trusted { chain } => {
                        let via = chain
                            .iter()
                            .skip(1)
                            .map(|c| format!("'{}'", c.subject_text()))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let trusted =
                            format!("certificate '{}' trusted via {via}", c.end.subject_text());
                        (vec![c.end.public_key().clone()], Some(trusted))
                    }
                    Validation::NeedCrls { .. } if c.crls_fetched => {
                        return Err(format!(
                            "revocation status of certificate '{}' unknown",
                            c.end.subject_text()
                        ));
                    }
                    Validation::NeedCrls { uris } => return Ok(Checked::NeedCrls(uris)),
                }
            }
        };
        let mut why = String::from("no key");
        for key in keys {
            match super::pubkey::verify_auth(&key, &self.auth, &self.signed) {
                Ok(()) => return Ok(Checked::Key { key, trusted }),
                Err(e) => why = e,
            }
        }
        Ok(Checked::BadSig(why))
    }
}

impl SignJob {
    fn run(self) -> Result<Authentication, String> {
        match self.scheme {
            Some(scheme) => super::pubkey::sign_with(&self.cred, scheme, &self.signed),
            None => super::pubkey::sign_auth(&self.cred, self.hashes.as_deref(), &self.signed),
        }
    }
}

/// The job's kind only: no key material in logs.
impl fmt::Debug for Compute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.op {
            Op::Respond { group, .. } => format!("Respond({group})"),
            Op::Complete { ke, .. } => format!("Complete({})", ke.method()),
            Op::Start { group } => format!("Start({group})"),
            Op::Sign(_) => "Sign".into(),
            Op::Verify(_) => "Verify".into(),
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
            Op::Start { group } => self.provider.start_key_exchange(group).map(Done::Started),
            Op::Sign(job) => {
                return Computed {
                    req: self.req,
                    result: job.run().map(Done::Signed),
                };
            }
            Op::Verify(job) => {
                return Computed {
                    req: self.req,
                    result: job.run().map(Done::Checked),
                };
            }
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
    /// Initiator: our key exchange, its public value made.
    Started(Box<dyn KeyExchange>),
    /// Our AUTH payload.
    Signed(Authentication),
    /// The peer's AUTH checked.
    Checked(Checked),
}

/// What an IKE SA continues with when its job is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Responder: answer IKE_SA_INIT (`ike_init`).
    AnswerInit,
    /// Initiator: take the IKE_SA_INIT response on (`ike_init`).
    CompleteInit,
    /// Initiator: send IKE_SA_INIT with our key exchange (`init_ke`).
    StartInit,
    /// Responder: answer CREATE_CHILD_SA (`create_ke`).
    AnswerCreate,
    /// IKE_AUTH goes on with our signature (`ike_auth`).
    Signed,
    /// IKE_AUTH goes on with the peer's AUTH checked (`ike_auth`).
    Checked,
}

/// Where the check of the peer's AUTH stands in a handshake
/// (`ike_auth::peer_sig_ok`, which is run again when the job answers).
#[derive(Debug, Default)]
pub(crate) enum PeerCheck {
    /// Not asked (or asked again after CRLs came).
    #[default]
    None,
    /// A job runs.
    Asked,
    /// The job's answer, not yet taken on.
    Done(Result<Checked, String>),
    /// The peer's AUTH proved its identity.
    Passed,
}

/// Where our AUTH signature stands in a handshake (`ike_auth::our_auth`,
/// which is run again when the job answers).
#[derive(Debug, Default)]
pub(crate) enum OurSig {
    #[default]
    None,
    /// A job runs.
    Asked,
    /// The job's answer, not yet sent.
    Done(Result<Authentication, String>),
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

    /// Responder of CREATE_CHILD_SA: our key exchange for the peer's
    /// `peer` value of `group`.
    pub(crate) fn compute_create_ke(&mut self, owner: IkeSaId, group: KeId, peer: Vec<u8>) {
        self.compute(owner, Step::AnswerCreate, Op::Respond { group, peer });
    }

    /// Initiator: our key exchange of `group` for IKE_SA_INIT.
    pub(crate) fn compute_start(&mut self, owner: IkeSaId, group: KeId) {
        self.compute(owner, Step::StartInit, Op::Start { group });
    }

    /// Our AUTH signature.
    pub(crate) fn compute_sign(&mut self, owner: IkeSaId, job: SignJob) {
        self.compute(owner, Step::Signed, Op::Sign(Box::new(job)));
    }

    /// The check of the peer's AUTH.
    pub(crate) fn compute_verify(&mut self, owner: IkeSaId, job: VerifyJob) {
        self.compute(owner, Step::Checked, Op::Verify(Box::new(job)));
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
