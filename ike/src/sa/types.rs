//! The endpoint's inputs and outputs: identifiers, datagrams, kernel
//! operations and their results, events, and status snapshots.

use core::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use super::config::{ChildSaOpts, Mode};
use crate::crypto::Secret;
use crate::crypto::suite::{ChildSuite, IkeSuite};
use crate::wire::codes::{KeId, NotifyType, ProtocolId};
use crate::wire::{Identification, TrafficSelector};

/// An IKE SA of an [`Endpoint`](super::Endpoint), unique for its lifetime
/// (ids are never reused). Displays as `[n]`, as strongSwan's unique ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u64);

impl fmt::Display for IkeSaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0)
    }
}

/// A Child SA, unique over the endpoint's lifetime; the daemon maps it to
/// a kernel reqid. Displays as `{n}`, as strongSwan's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(pub u64);

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0)
    }
}

/// Names one kernel operation so that its result can be matched to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelReq(pub u64);

/// A datagram to send: an IKE message, without the non-ESP marker (the
/// daemon adds the four zero octets when it sends from port 4500), or a
/// NAT keepalive (RFC 3948 2.3): the single octet 0xFF, sent as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Source address and port. An unspecified IP (`0.0.0.0`, `::`) means
    /// "route it": the initiator of a peer whose `local_addrs` are all
    /// `%any` does not know its source address until the first reply.
    pub local: SocketAddr,
    /// Destination.
    pub remote: SocketAddr,
    /// The IKE message.
    pub payload: Vec<u8>,
}

/// What the kernel needs to install one Child SA: both directions' SAs
/// (inbound with `spi_in`, outbound with `spi_out`) and the policies.
/// Keys are oriented for this side already.
#[derive(Clone, Debug)]
pub struct ChildInstall {
    /// The Child SA.
    pub id: ChildId,
    /// The IKE SA it belongs to.
    pub ike_sa: IkeSaId,
    /// Its configuration name.
    pub name: String,
    /// Tunnel or transport.
    pub mode: Mode,
    /// ESP or AH.
    pub protocol: ProtocolId,
    /// Our address and IKE port (the outer source of outbound packets).
    pub local: SocketAddr,
    /// The peer's address and IKE port.
    pub remote: SocketAddr,
    /// SPI of the inbound SA (allocated by [`KernelOp::AllocSpi`]).
    pub spi_in: u32,
    /// SPI of the outbound SA (chosen by the peer).
    pub spi_out: u32,
    /// The algorithms.
    pub suite: ChildSuite,
    /// Inbound encryption key (salt included for AEAD; empty for AH).
    pub encr_in: Secret,
    /// Inbound integrity key (empty for AEAD).
    pub integ_in: Secret,
    /// Outbound encryption key.
    pub encr_out: Secret,
    /// Outbound integrity key.
    pub integ_out: Secret,
    /// Negotiated selectors of our side.
    pub local_ts: Vec<TrafficSelector>,
    /// Our virtual IPs (`vips`, as the peer assigned them): the daemon
    /// puts them on the interface of our IKE address before the Child
    /// SA's routes (which take one as their source), and takes them off
    /// with the last Child SA that has them.
    pub vips: Vec<std::net::IpAddr>,
    /// Negotiated selectors of the peer's side.
    pub remote_ts: Vec<TrafficSelector>,
    /// Extended sequence numbers.
    pub esn: bool,
    /// The child's options for its kernel SAs (replay window, copy
    /// flags, TFC padding).
    pub sa_opts: ChildSaOpts,
    /// IPComp (RFC 3173) as negotiated with IPCOMP_SUPPORTED: both CPIs.
    /// The kernel then gets an IPComp SA in tunnel mode per direction and
    /// the ESP (or AH) SAs in transport mode inside it, as charon installs
    /// them.
    pub ipcomp: Option<IpcompCpis>,
    /// Whether we initiated this Child SA.
    pub initiator: bool,
    /// The kernel reqid that ties the SAs to the policies. A rekeyed
    /// Child SA keeps the reqid of the one it replaces, so its policies
    /// stay in place (as strongSwan does); never 0.
    pub reqid: u32,
    /// Byte and packet limits for the kernel (soft: rekey; hard: expire).
    pub limits: KernelLimits,
    /// ESP in UDP (RFC 3948) between the ports of `local` and `remote`
    /// (NAT detected or `encap` forced).
    pub encap: bool,
    /// Marks, interface ids, priority and which policies.
    pub kernel: super::KernelPolicy,
}

/// The Compression Parameter Indexes of a Child SA with IPComp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpcompCpis {
    /// Ours: the inbound IPComp SA's (allocated by [`KernelOp::AllocCpi`]).
    pub cpi_in: u16,
    /// The peer's: the outbound IPComp SA's.
    pub cpi_out: u16,
}

/// The IKE SA's addresses changed (a NAT mapping changed, RFC 7296 2.23):
/// move an installed Child SA's SAs and its reqid's policies to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildUpdate {
    /// The Child SA.
    pub id: ChildId,
    /// The IKE SA it belongs to.
    pub ike_sa: IkeSaId,
    /// Its kernel reqid (its policies').
    pub reqid: u32,
    /// Our address and port now.
    pub local: SocketAddr,
    /// The peer's address and port now.
    pub remote: SocketAddr,
    /// ESP in UDP between the two ports.
    pub encap: bool,
}

/// Time, byte and packet limits of a Child SA's kernel SAs (`rekey_time`,
/// `life_time`, `rekey_bytes`, `life_bytes`, `rekey_packets`,
/// `life_packets`); `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelLimits {
    /// Soft time limit, seconds after the SA was added (`rekey_time`,
    /// rounded up, as charon's soft add expiry but without the jitter,
    /// which iked's own rekey timer has): a soft expire, never before that
    /// timer.
    pub soft_secs: Option<u64>,
    /// Hard time limit (`life_time`, rounded up): the kernel removes the
    /// SA by itself, also when iked is gone.
    pub hard_secs: Option<u64>,
    /// Soft byte limit: the kernel reports a soft expire (rekey).
    pub soft_bytes: Option<u64>,
    /// Hard byte limit: the kernel deletes the SA and reports it.
    pub hard_bytes: Option<u64>,
    /// Soft packet limit.
    pub soft_packets: Option<u64>,
    /// Hard packet limit.
    pub hard_packets: Option<u64>,
}

/// What the kernel needs to remove an installed Child SA: its SAs and
/// policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildRemove {
    /// The Child SA.
    pub id: ChildId,
    /// The IKE SA it belonged to.
    pub ike_sa: IkeSaId,
    /// ESP or AH.
    pub protocol: ProtocolId,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// Inbound SPI (destination: `local`).
    pub spi_in: u32,
    /// Outbound SPI (destination: `remote`).
    pub spi_out: u32,
    /// Our selectors, as installed.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's selectors, as installed.
    pub remote_ts: Vec<TrafficSelector>,
    /// Its kernel reqid.
    pub reqid: u32,
    /// Remove the policies of `reqid` too: false while another Child SA
    /// (the one that rekeyed this one) still uses them.
    pub policies: bool,
    /// Whether the outbound SA was installed (the responder of a rekey
    /// installs it only once the old Child SA is deleted).
    pub outbound: bool,
    /// Marks, interface ids, priority and which policies, as installed.
    pub kernel: super::KernelPolicy,
}

/// A request to the kernel. Each with a `req` must be answered with
/// [`Endpoint::handle_kernel_result`](super::Endpoint::handle_kernel_result).
#[derive(Clone, Debug)]
pub enum KernelOp {
    /// Allocate an inbound SPI for `protocol` with destination `local`
    /// (XFRM_MSG_ALLOCSPI); answer [`KernelOk::SpiAllocated`].
    AllocSpi {
        /// Names the result.
        req: KernelReq,
        /// ESP or AH.
        protocol: ProtocolId,
        /// Our address (the inbound SA's destination).
        local: SocketAddr,
        /// The peer's address.
        remote: SocketAddr,
    },
    /// Install both SAs and the policies of a Child SA; answer
    /// [`KernelOk::Done`] or an error. On error the daemon undoes whatever
    /// part it did install; the inbound SPI then stays allocated and is
    /// freed by a following [`KernelOp::ReleaseSpi`].
    InstallChild {
        /// Names the result.
        req: KernelReq,
        /// What to install.
        child: ChildInstall,
    },
    /// Install the SAs of a Child SA that rekeys another one, under the
    /// policies of its `reqid`, which stay as they are: the inbound SA,
    /// and with `outbound` the outbound one too (the initiator of the
    /// rekey; the responder adds it later with [`KernelOp::InstallOutbound`]).
    /// Answer [`KernelOk::Done`] or an error, after undoing a partial
    /// install (the inbound SPI then stays allocated, as for `InstallChild`).
    InstallRekeyed {
        /// Names the result.
        req: KernelReq,
        /// What to install (its policies are already there).
        child: ChildInstall,
        /// Install the outbound SA too.
        outbound: bool,
    },
    /// Install the outbound SA of a Child SA whose inbound SA is in (the
    /// responder of a rekey, once the peer deleted the old Child SA and
    /// so can receive on the new one); answer [`KernelOk::Done`] or an
    /// error.
    InstallOutbound {
        /// Names the result.
        req: KernelReq,
        /// The Child SA (only its outbound half is used).
        child: ChildInstall,
    },
    /// Remove an installed Child SA's SAs and policies; answer
    /// [`KernelOk::Done`] or an error (which is only logged).
    RemoveChild {
        /// Names the result.
        req: KernelReq,
        /// What to remove.
        child: ChildRemove,
    },
    /// Read the byte counters of inbound SAs (dead peer detection: was
    /// there traffic from the peer?); answer [`KernelOk::Traffic`] with
    /// their sum (SAs that cannot be read count 0), or an error.
    QueryTraffic {
        /// Names the result.
        req: KernelReq,
        /// The inbound SAs: (protocol, SPI, destination = our address).
        sas: Vec<(ProtocolId, u32, std::net::IpAddr)>,
    },
    /// When the policies of `reqid` last carried a packet, in either
    /// direction (their `use_time`; `inactivity`); answer
    /// [`KernelOk::Idle`], or an error.
    QueryLastUse {
        /// Names the result.
        req: KernelReq,
        /// The Child SA's reqid: its policies (which a rekey keeps).
        reqid: u32,
    },
    /// Change the outer addresses and UDP encapsulation ports of an
    /// installed Child SA (its SAs and the templates of its policies);
    /// answer [`KernelOk::Done`] or an error (which is only logged).
    UpdateChild {
        /// Names the result.
        req: KernelReq,
        /// The new addresses.
        child: ChildUpdate,
    },
    /// Allocate our CPI for IPComp with destination `local`
    /// (XFRM_MSG_ALLOCSPI for IPComp, CPIs 0x100-0xefff as charon); answer
    /// [`KernelOk::CpiAllocated`].
    AllocCpi {
        /// Names the result.
        req: KernelReq,
        /// Our address (the inbound IPComp SA's destination).
        local: SocketAddr,
        /// The peer's address.
        remote: SocketAddr,
    },
    /// Free a CPI allocated by `AllocCpi` that will not be installed (the
    /// peer did not accept IPComp, or the Child SA failed). No result.
    ReleaseCpi {
        /// Our address.
        local: SocketAddr,
        /// The CPI.
        cpi: u16,
    },
    /// Free an SPI allocated by `AllocSpi` that will never be installed
    /// (delete the larval SA). No result is expected.
    ReleaseSpi {
        /// ESP or AH.
        protocol: ProtocolId,
        /// Our address.
        local: SocketAddr,
        /// The SPI.
        spi: u32,
    },
}

impl KernelOp {
    /// The request id to answer, if this operation has a result.
    pub fn req(&self) -> Option<KernelReq> {
        match self {
            Self::AllocSpi { req, .. }
            | Self::AllocCpi { req, .. }
            | Self::InstallChild { req, .. }
            | Self::InstallRekeyed { req, .. }
            | Self::InstallOutbound { req, .. }
            | Self::RemoveChild { req, .. }
            | Self::QueryTraffic { req, .. }
            | Self::QueryLastUse { req, .. }
            | Self::UpdateChild { req, .. } => Some(*req),
            Self::ReleaseSpi { .. } | Self::ReleaseCpi { .. } => None,
        }
    }
}

/// A successful kernel operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelOk {
    /// The SPI `AllocSpi` got.
    SpiAllocated(u32),
    /// The CPI `AllocCpi` got.
    CpiAllocated(u16),
    /// `InstallChild` or `RemoveChild` done.
    Done,
    /// `QueryTraffic`: the summed inbound byte counters.
    Traffic(u64),
    /// `QueryLastUse`: how long ago the latest use of the policies was
    /// (the kernel counts whole seconds); `None`: never used.
    Idle(Option<std::time::Duration>),
}

/// The result of a [`KernelOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelResult {
    /// The operation's `req`.
    pub req: KernelReq,
    /// What happened; errors as the message to log.
    pub outcome: Result<KernelOk, String>,
}

/// Names one CRL fetch so that its result can be matched to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CrlReq(pub u64);

/// Fetch the CRLs at these URIs (`Endpoint::poll_crl_fetch`): an IKE SA
/// validating a certificate whose chain verified to a trust anchor needs
/// them to know whether a certificate is revoked. The daemon fetches
/// (from its cache while the CRL is current), with a timeout, and answers
/// with [`CrlFetched`] through `Endpoint::handle_crl_fetched`; the IKE
/// SA waits meanwhile (at most its half-open timeout). An answer for an
/// IKE SA that is gone still adds the CRLs to the trust store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlFetch {
    /// Matches the answer.
    pub req: CrlReq,
    /// The CRL distribution points (HTTP URIs as the certificates name
    /// them, without duplicates); any CRL found is worth having.
    pub uris: Vec<String>,
}

/// The answer to a [`CrlFetch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlFetched {
    /// The request's `req`.
    pub req: CrlReq,
    /// The CRLs fetched (each as the server sent it: DER or PEM), from
    /// as many of the URIs as answered; an error (to log) if none did. A
    /// failure or a CRL that does not help leaves the certificate's
    /// status unknown: the connection's `revocation` decides.
    pub result: Result<Vec<Vec<u8>>, String>,
}

/// Something the kernel reports about an SA it holds (XFRM_MSG_EXPIRE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// A byte, packet or time limit of an SA was reached: `hard` when the
    /// kernel deleted it, otherwise (soft) it asks for a rekey.
    Expire {
        /// ESP or AH.
        protocol: ProtocolId,
        /// The SA's SPI.
        spi: u32,
        /// Its destination address.
        dst: std::net::IpAddr,
        /// Hard (deleted) or soft (rekey) expire.
        hard: bool,
    },
}

/// Why an IKE SA failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IkeFailReason {
    /// Authentication failed: we rejected the peer's AUTH (or found no
    /// configuration or key for its identity), or with `by_peer` it sent
    /// AUTHENTICATION_FAILED.
    AuthenticationFailed {
        /// The peer sent AUTHENTICATION_FAILED.
        by_peer: bool,
    },
    /// No common IKE proposal.
    NoProposalChosen {
        /// The peer sent NO_PROPOSAL_CHOSEN (then `detail` lists what we
        /// offered); otherwise `detail` is [`NoProposalChosen`]'s display.
        ///
        /// [`NoProposalChosen`]: crate::crypto::proposal::NoProposalChosen
        by_peer: bool,
        /// Readable proposals of both sides (or ours).
        detail: String,
    },
    /// A malformed message (we sent, or with `by_peer` got, INVALID_SYNTAX).
    InvalidSyntax {
        /// The peer sent INVALID_SYNTAX.
        by_peer: bool,
        /// What was wrong.
        detail: String,
    },
    /// The peer does not support a payload we sent as critical, or sent
    /// one we do not support.
    UnsupportedCriticalPayload {
        /// The peer sent UNSUPPORTED_CRITICAL_PAYLOAD.
        by_peer: bool,
    },
    /// The peer asked for a key exchange method we did not offer, or kept
    /// asking for others (more retries than configured).
    InvalidKe {
        /// The method the peer asked for last.
        requested: KeId,
    },
    /// The responder's answer was not one of our proposals, or otherwise
    /// unusable (bad KE value, missing payloads).
    InvalidResponse(String),
    /// Retransmissions exhausted: the peer did not answer.
    PeerNotResponding,
    /// As responder: IKE_AUTH did not complete within the half-open timeout.
    HalfOpenTimeout,
    /// The peer answered with another error notify.
    PeerError(NotifyType),
    /// A local failure (crypto, configuration).
    Internal(String),
    /// The peer redirected us (RFC 5685) and we did not follow: not
    /// following redirects, too many of them, or the gateway's name did
    /// not resolve.
    Redirect(String),
}

impl fmt::Display for IkeFailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AuthenticationFailed { by_peer: true } => {
                f.write_str("peer sent AUTHENTICATION_FAILED")
            }
            Self::AuthenticationFailed { by_peer: false } => {
                f.write_str("authentication of the peer failed")
            }
            Self::NoProposalChosen {
                by_peer: true,
                detail,
            } => {
                write!(f, "peer sent NO_PROPOSAL_CHOSEN (we offered {detail})")
            }
            Self::NoProposalChosen {
                by_peer: false,
                detail,
            } => f.write_str(detail),
            Self::InvalidSyntax { by_peer, detail } => {
                if *by_peer {
                    f.write_str("peer sent INVALID_SYNTAX")
                } else {
                    write!(f, "invalid syntax: {detail}")
                }
            }
            Self::UnsupportedCriticalPayload { by_peer } => {
                if *by_peer {
                    f.write_str("peer sent UNSUPPORTED_CRITICAL_PAYLOAD")
                } else {
                    f.write_str("peer sent an unsupported critical payload")
                }
            }
            Self::InvalidKe { requested } => write!(
                f,
                "peer requested key exchange {requested}, which we do not offer or asked too often"
            ),
            Self::InvalidResponse(s) => write!(f, "invalid response: {s}"),
            Self::PeerNotResponding => f.write_str("peer not responding"),
            Self::HalfOpenTimeout => f.write_str("half-open timeout"),
            Self::PeerError(n) => write!(f, "peer sent {n}"),
            Self::Internal(s) => write!(f, "internal error: {s}"),
            Self::Redirect(s) => write!(f, "redirect {s}"),
        }
    }
}

/// Why a Child SA failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildFailReason {
    /// No common ESP/AH proposal (`by_peer`: it sent NO_PROPOSAL_CHOSEN).
    NoProposalChosen {
        /// The peer sent NO_PROPOSAL_CHOSEN.
        by_peer: bool,
        /// Readable proposals.
        detail: String,
    },
    /// No common traffic selectors (`by_peer`: it sent TS_UNACCEPTABLE).
    TsUnacceptable {
        /// The peer sent TS_UNACCEPTABLE.
        by_peer: bool,
    },
    /// Modes differ (we want transport and the peer does not, or the
    /// other way round).
    ModeMismatch,
    /// The kernel refused (SPI allocation or install).
    Kernel(String),
    /// The peer answered with another error notify.
    PeerError(NotifyType),
    /// The IKE SA failed or was deleted before the Child SA was installed.
    IkeSaGone,
    /// A local failure.
    Internal(String),
    /// Over a limit for the peer (`EndpointConfig::peer_limits`): what.
    OverLimit(String),
    /// We assigned the peer no virtual IP (`cp`): the notify we sent,
    /// INTERNAL_ADDRESS_FAILURE or FAILED_CP_REQUIRED.
    VirtualIp(NotifyType),
}

impl fmt::Display for ChildFailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoProposalChosen { by_peer: true, .. } => {
                f.write_str("peer sent NO_PROPOSAL_CHOSEN")
            }
            Self::NoProposalChosen { detail, .. } => f.write_str(detail),
            Self::TsUnacceptable { by_peer: true } => f.write_str("peer sent TS_UNACCEPTABLE"),
            Self::TsUnacceptable { by_peer: false } => {
                f.write_str("traffic selectors unacceptable")
            }
            Self::ModeMismatch => f.write_str("IPsec mode mismatch"),
            Self::Kernel(s) => write!(f, "kernel: {s}"),
            Self::PeerError(n) => write!(f, "peer sent {n}"),
            Self::IkeSaGone => f.write_str("IKE SA gone"),
            Self::Internal(s) => write!(f, "internal error: {s}"),
            Self::OverLimit(s) => write!(f, "over the limit: {s}"),
            Self::VirtualIp(n) => write!(f, "no virtual IP for the peer ({n})"),
        }
    }
}

/// Something an operator or `ikectl` cares about. Exhaustive: the daemon
/// matches every variant, so a new event cannot go unhandled there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// IKE_AUTH completed: the IKE SA is up.
    IkeEstablished {
        /// The IKE SA.
        id: IkeSaId,
        /// Its peer configuration.
        peer: String,
    },
    /// The IKE SA failed before or while being established, or later (no
    /// answer to a request). Everything it installed is being removed.
    IkeFailed {
        /// The IKE SA.
        id: IkeSaId,
        /// Its peer configuration, once known (a responder knows it from
        /// IKE_SA_INIT on).
        peer: Option<String>,
        /// Why.
        reason: IkeFailReason,
    },
    /// An established IKE SA was deleted.
    IkeDeleted {
        /// The IKE SA.
        id: IkeSaId,
        /// Its peer configuration.
        peer: String,
        /// The peer deleted it (otherwise we did).
        by_peer: bool,
    },
    /// A Child SA is installed in the kernel.
    ChildInstalled {
        /// The IKE SA.
        ike: IkeSaId,
        /// The Child SA.
        child: ChildId,
        /// Its configuration name.
        name: String,
    },
    /// A Child SA could not be established.
    ChildFailed {
        /// The IKE SA.
        ike: IkeSaId,
        /// The Child SA, if it got an id.
        child: Option<ChildId>,
        /// Its configuration name.
        name: String,
        /// Why.
        reason: ChildFailReason,
    },
    /// An installed Child SA was deleted (also when its IKE SA goes).
    ChildDeleted {
        /// The IKE SA.
        ike: IkeSaId,
        /// The Child SA.
        child: ChildId,
        /// Its configuration name.
        name: String,
        /// The peer deleted it.
        by_peer: bool,
    },
    /// A Child SA was rekeyed: `new` carries its traffic now (its
    /// outbound SA is installed), `old` is being deleted.
    ChildRekeyed {
        /// The IKE SA.
        ike: IkeSaId,
        /// The Child SA replaced.
        old: ChildId,
        /// The one replacing it.
        new: ChildId,
        /// Its configuration name.
        name: String,
    },
    /// The IKE SA was rekeyed: `new` replaces `old` and has its Child SAs.
    IkeRekeyed {
        /// The IKE SA replaced (deleted once the exchange is done).
        old: IkeSaId,
        /// The new one.
        new: IkeSaId,
        /// Its peer configuration.
        peer: String,
    },
    /// A liveness check we sent was answered.
    PeerAlive {
        /// The IKE SA.
        id: IkeSaId,
    },
}

/// State of an IKE SA, as `swanctl --list-sas` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IkeState {
    /// IKE_SA_INIT / IKE_AUTH in progress.
    Connecting,
    /// Up.
    Established,
    /// Being rekeyed (our CREATE_CHILD_SA for a new IKE SA is in flight).
    Rekeying,
    /// Replaced by a new IKE SA, waiting for the delete.
    Rekeyed,
    /// A delete is in progress.
    Deleting,
}

impl fmt::Display for IkeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connecting => "CONNECTING",
            Self::Established => "ESTABLISHED",
            Self::Rekeying => "REKEYING",
            Self::Rekeyed => "REKEYED",
            Self::Deleting => "DELETING",
        })
    }
}

/// State of a Child SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildState {
    /// Negotiating (SPI allocation, exchange in flight).
    Creating,
    /// Keys derived, waiting for the kernel to install.
    Installing,
    /// In the kernel.
    Installed,
    /// In the kernel, being rekeyed by us.
    Rekeying,
    /// In the kernel, replaced by a new Child SA, about to be deleted.
    Rekeyed,
    /// Being deleted.
    Deleting,
}

impl fmt::Display for ChildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Creating => "CREATED",
            Self::Installing => "INSTALLING",
            Self::Installed => "INSTALLED",
            Self::Rekeying => "REKEYING",
            Self::Rekeyed => "REKEYED",
            Self::Deleting => "DELETING",
        })
    }
}

/// A snapshot of one Child SA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildSaInfo {
    /// Configuration name.
    pub name: String,
    /// Its id.
    pub id: ChildId,
    /// Its state.
    pub state: ChildState,
    /// Tunnel or transport.
    pub mode: Mode,
    /// ESP or AH.
    pub protocol: ProtocolId,
    /// Inbound SPI (0 until allocated).
    pub spi_in: u32,
    /// Outbound SPI (0 until known).
    pub spi_out: u32,
    /// Our negotiated selectors (empty until negotiated).
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's negotiated selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// The algorithms, once negotiated.
    pub suite: Option<ChildSuite>,
    /// When it was installed.
    pub installed_at: Option<Instant>,
    /// When we will rekey it (`None`: not scheduled).
    pub rekey_at: Option<Instant>,
    /// When it expires (is deleted if not rekeyed by then).
    pub expires_at: Option<Instant>,
    /// Its kernel reqid (kept across rekeys).
    pub reqid: u32,
    /// Its outbound SA is (being) installed: not yet for the responder of
    /// a rekey until the old Child SA goes, never for one that lost a
    /// rekey collision.
    pub outbound: bool,
    /// IPComp was negotiated (both CPIs known).
    pub ipcomp: bool,
}

/// A snapshot of one IKE SA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeSaInfo {
    /// Its id.
    pub id: IkeSaId,
    /// Peer configuration name (a responder learns it at IKE_SA_INIT,
    /// possibly switching at IKE_AUTH).
    pub peer: Option<String>,
    /// Its state.
    pub state: IkeState,
    /// Whether we initiated it.
    pub initiator: bool,
    /// Initiator's SPI.
    pub spi_i: u64,
    /// Responder's SPI (0 until known).
    pub spi_r: u64,
    /// Our address and port.
    pub local_addr: SocketAddr,
    /// The peer's address and port.
    pub remote_addr: SocketAddr,
    /// Our identity, once known.
    pub local_id: Option<Identification>,
    /// The peer's authenticated identity, once known.
    pub remote_id: Option<Identification>,
    /// The negotiated algorithms.
    pub suite: Option<IkeSuite>,
    /// When IKE_AUTH (or the rekey that made it) completed.
    pub established_at: Option<Instant>,
    /// When we will rekey it (`None`: not scheduled).
    pub rekey_at: Option<Instant>,
    /// When it is deleted if it was not rekeyed by then.
    pub expires_at: Option<Instant>,
    /// NAT detected in front of us (our address is not what the peer saw).
    pub nat_local: bool,
    /// NAT detected in front of the peer.
    pub nat_remote: bool,
    /// IKE on the NAT-T port and the Child SAs with ESP in UDP (NAT
    /// detected on either side, or `encap` forced).
    pub encap: bool,
    /// MOBIKE negotiated (RFC 4555).
    pub mobike: bool,
    /// The Child SAs.
    pub children: Vec<ChildSaInfo>,
    /// Our virtual IPs, as the peer assigned them (`vips`).
    pub local_vips: Vec<std::net::IpAddr>,
    /// The peer's virtual IPs, as we assigned them from `pools`.
    pub remote_vips: Vec<std::net::IpAddr>,
    /// The DNS servers the peer sent with our virtual IPs.
    pub dns: Vec<std::net::IpAddr>,
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// No peer configuration of this name.
    #[error("no peer configuration named '{0}'")]
    UnknownPeer(String),
    /// The peer has no child of this name.
    #[error("peer '{peer}' has no child named '{child}'")]
    UnknownChild {
        /// The peer.
        peer: String,
        /// The child asked for.
        child: String,
    },
    /// The peer configuration has no concrete remote address to connect to.
    #[error("peer '{0}' has no remote address to initiate to")]
    NoRemoteAddress(String),
    /// No IKE SA (or Child SA) with this id.
    #[error("no such SA")]
    NoSuchSa,
    /// The SA is not in a state that allows this.
    #[error("SA is {0}, cannot do that now")]
    WrongState(IkeState),
    /// `roam` on an IKE SA without MOBIKE, or that we did not initiate
    /// (only the original initiator moves an IKE SA, RFC 4555 3.1).
    #[error("the IKE SA has no MOBIKE, or the peer initiated it")]
    NoMobike,
    /// `redirect` of an IKE SA whose client did not announce
    /// REDIRECT_SUPPORTED (RFC 5685), or that we initiated.
    #[error("the client of the IKE SA does not support redirects")]
    NoRedirect,
    /// A local failure (randomness, key exchange).
    #[error("{0}")]
    Internal(String),
}
