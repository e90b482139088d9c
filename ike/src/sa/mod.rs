//! IKE SA state machines and the [`Endpoint`] that routes datagrams to them:
//! what makes two peers bring up a tunnel. Sans-IO: no sockets, no clock,
//! no kernel; time comes in as `now`, everything else goes out through
//! `poll_*` methods (quinn-proto's endpoint is the model).
//!
//! ```text
//!  handle_datagram(now, local, remote, bytes)     poll_transmit()  -> Transmit
//!  handle_timeout(now)                  Endpoint  poll_kernel_op() -> KernelOp
//!  handle_kernel_result(now, result)    ───────►  poll_event()     -> Event
//!  handle_crl_fetched(now, fetched)               poll_crl_fetch() -> CrlFetch
//!  handle_eap_answer(now, req, answer)            poll_eap_ask()   -> EapAsk
//!  initiate / terminate_* / set_config            poll_timeout()   -> Instant
//! ```
//!
//! The daemon strips the non-ESP marker from datagrams received on port
//! 4500 before [`Endpoint::handle_datagram`] and adds it to
//! [`Transmit::payload`] when it sends from port 4500.
//!
//! Structure: the endpoint owns all IKE SAs in a map keyed by [`IkeSaId`],
//! with an index from our IKE SPI (and, for IKE_SA_INIT requests, the
//! peer's address and SPI) to the id, and a timer heap with one deadline
//! per SA (`poll_timeout` is a peek). Each exchange is one module with
//! both roles, adding an `impl IkeSa` block: `ike_init` (IKE_SA_INIT,
//! COOKIE, INVALID_KE_PAYLOAD, NAT detection), `natt` (the move to the
//! NAT-T port, ESP in UDP, keepalives, NAT mapping changes), `ike_auth` (PSK AUTH, the
//! choice of peer configuration by identity and authentication class; with
//! `pubkey`, signatures, CERT/CERTREQ and the peer's certificate validated,
//! waiting for CRL fetches), `eap_auth` (EAP round trips in IKE_AUTH,
//! RFC 7296 2.16, both roles, over `eap::Method`s), `rounds` (a second
//! authentication round, RFC 4739), `child_create` (the Child SA
//! of IKE_AUTH and CREATE_CHILD_SA, traffic selector narrowing, kernel
//! steps), `child_rekey` (CREATE_CHILD_SA with N(REKEY_SA), collisions,
//! the make-before-break order of kernel operations), `ike_rekey` (a new
//! IKE SA from the old SK_d that takes over the Child SAs), `reauth`
//! (make-before-break reauthentication: a new IKE SA from scratch whose
//! Child SAs take over the old ones' reqids, `reqids`), `lifetimes`
//! (rekey and expiry timers, the kernel's soft and hard expires),
//! `dpd` (dead peer detection after `dpd_delay` of silence), `informational`
//! (deletes, liveness checks,
//! AUTHENTICATION_FAILED after IKE_AUTH), `unique` (INITIAL_CONTACT and
//! swanctl's `unique`: what a new IKE SA of an identity pair does to the
//! others, with the endpoint's index of them), `frag` (RFC 7383 fragments:
//! sending in fragments, reassembly with limits), `redirect` (RFC 5685:
//! following a gateway's REDIRECT, and redirecting clients). Every decrypted message passes
//! [`wire::rules::check`](crate::wire::rules::check) before a task sees it.
//!
//! One IKE SA's life (`ike_sa::Phase`):
//!
//! ```text
//! initiator: InitSent --IKE_SA_INIT resp--> AwaitSpi --SPI--> AuthSent --IKE_AUTH resp--> Established
//!              ^  | COOKIE / INVALID_KE: resend                                               |
//!              +--+                                                       terminate: Deleting -> gone
//! responder: (stateless errors) --IKE_SA_INIT--> HalfOpen --IKE_AUTH ok--> Established
//!                                                  | 30 s: HalfOpenTimeout
//!
//! rekey:     Established --our CREATE_CHILD_SA(IKE)--> Rekeying --answer--> Rekeyed -> Deleting -> gone
//!            Established --peer's rekey answered--> Rekeyed --peer's delete (or 60 s)--> gone
//!            (the new IKE SA starts Established, with the children)
//! ```
//!
//! Requests are window size 1 both ways: our requests queue behind the one
//! in flight (retransmitted after 4 s x 1.8^n, given up after 5
//! retransmissions); the peer's requests are processed in message-ID order,
//! a retransmitted one (same ID, same octets) is answered from the response
//! cache, and one whose answer waits for the kernel (the responder
//! allocates the Child SA's SPI and installs it before answering) makes
//! retransmissions of it be dropped until then. All of it is the IKE SA's
//! `window`. What an SA's input changes beyond the SA goes to the endpoint
//! as an `effect`; operations outside the engine (the kernel's) wait in
//! the `outside` table; wall-clock time comes in through
//! [`Endpoint::set_wall_clock`] (`clock`).
//!
//! Not implemented yet (each is refused or ignored cleanly, never a panic):
//! - A rekey keeps the configuration (and proposals) the Child SA was
//!   made with; a reload applies to new SAs only.
//! - NAT-OA for transport mode behind NAT; MOBIKE's ADDITIONAL_*_ADDRESS
//!   lists and path probing (`mobike`).
//! - Path MTU discovery with fragments (RFC 7383 2.5.2): the fragment
//!   size is configured.
//! - A second authentication round of our own as responder, or of the
//!   peer's as initiator (`rounds`); more than two rounds per side. OCSP;
//!   hash-and-URL CERT encodings (skipped).
//! - An initiator whose `local_addrs` are all `%any` learns its address
//!   from the IKE_SA_INIT response; its NAT_DETECTION_SOURCE_IP hash is
//!   then over the unspecified address (the peer sees "NAT", and so the
//!   initiator encapsulates too: `natt`).

mod child_create;
mod child_rekey;
mod clock;
mod compute;
mod config;
mod cp;
mod create_ke;
mod dos;
mod dpd;
mod eap_auth;
mod eap_client;
mod effect;
mod endpoint;
mod frag;
mod ike_auth;
mod ike_init;
mod ike_rekey;
mod ike_sa;
mod inactivity;
mod informational;
mod init_ke;
mod job_queue;
mod keyingtries;
mod lifetimes;
mod limits;
mod mobike;
mod natt;
mod outside;
mod pacing;
mod pubkey;
mod reauth;
pub(crate) mod redirect;
mod reqids;
mod rounds;
mod timers;
mod ts;
mod types;
mod unique;
mod window;

#[cfg(test)]
pub(crate) mod tests;

pub use child_create::cfg_protocol as child_protocol;
pub use compute::{Compute, ComputeMode, ComputeReq, Computed};
pub use config::{
    AddrSpec, AuthRounds, ChildCfg, ChildLifetimes, ChildSaOpts, DEFAULT_INIT_WINDOW, EapLocal,
    EapRemote, EndpointConfig, Fragmentation, IkeLifetimes, KernelPolicy, LocalAuthCfg, LocalCred,
    LocalRound, MIN_FRAGMENT_SIZE, MarkPair, Mode, PeerCfg, PskStore, PskTable, RemoteAuthCfg,
    RemoteRound, SendCert, TsCfg,
};
pub use cp::{CpCfg, PoolInfo};
pub use dos::DosLimits;
pub use eap_auth::{EapAsk, EapReq};
pub use endpoint::Endpoint;
pub use frag::{FRAGMENT_OVERHEAD, ReassemblyLimits};
pub use job_queue::JobQueue;
pub use limits::{PeerLimits, policy_count, prefix_count};
pub use redirect::{Gateway, LOOP_PERIOD, MAX_REDIRECTS, RedirectCfg, RedirectWhen, Resolve};
pub use ts::narrow;
pub use types::{
    ChildFailReason, ChildId, ChildInstall, ChildRemove, ChildSaInfo, ChildState, ChildUpdate,
    CommandError, CrlFetch, CrlFetched, CrlReq, Event, IkeFailReason, IkeSaId, IkeSaInfo, IkeState,
    IpcompCpis, KernelEvent, KernelLimits, KernelOk, KernelOp, KernelReq, KernelResult, Transmit,
};
