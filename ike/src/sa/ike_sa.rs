//! One IKE SA: its keys, message IDs, retransmissions, response cache, and
//! the dispatch of messages to the exchange tasks (ike_init, ike_auth,
//! child_create, informational), each of which adds an `impl IkeSa` block
//! for both of its roles.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::child_create::{Child, CreateChild};
use super::config::{ChildCfg, PeerCfg};
use super::endpoint::Ctx;
use super::frag::Packets;
use super::timers::{IkeTimer, IkeTimers};
use super::types::{
    ChildFailReason, ChildId, CommandError, Event, IkeFailReason, IkeSaId, IkeSaInfo, IkeState,
    KernelOk, KernelOp,
};
use crate::crypto::ke::KeyExchange;
use crate::crypto::keymat::{IkeKeys, SkCiphers};
use crate::crypto::prf::Prf;
use crate::crypto::suite::IkeSuite;
use crate::crypto::{CryptoProvider, Secret};
use crate::wire::codes::{ExchangeType, NotifyType};
use crate::wire::sa::Proposal;
use crate::wire::{Encrypted, Flags, Header, Identification, Message, Notify, Payload, rules};

pub(crate) use super::outside::KernelPurpose;
use super::outside::{Outcome, Then};

/// Where an IKE SA is in its life. The handshake's phases carry what
/// IKE_SA_INIT leaves for IKE_AUTH; the others cannot hold it.
pub(crate) enum Phase {
    /// Initiator: IKE_SA_INIT request sent.
    InitSent(Box<Handshake>),
    /// Initiator: IKE_SA_INIT done, waiting for the first child's SPI.
    AwaitSpi(Box<Handshake>),
    /// Initiator: IKE_AUTH request sent.
    AuthSent(Box<Handshake>),
    /// Responder: IKE_SA_INIT answered, IKE_AUTH not yet complete.
    HalfOpen(Box<Handshake>),
    /// IKE_AUTH done.
    Established,
    /// Our CREATE_CHILD_SA rekeying the IKE SA is in flight.
    Rekeying,
    /// Replaced by a new IKE SA: answers retransmissions and the delete.
    Rekeyed,
    /// Our delete of the IKE SA is in flight; `rekeyed`: of one a rekey
    /// replaced (it goes without an event).
    Deleting { rekeyed: bool },
}

/// The phase's name only: the handshake's nonces and messages stay out
/// of logs.
impl std::fmt::Debug for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::InitSent(_) => f.write_str("InitSent"),
            Phase::AwaitSpi(_) => f.write_str("AwaitSpi"),
            Phase::AuthSent(_) => f.write_str("AuthSent"),
            Phase::HalfOpen(_) => f.write_str("HalfOpen"),
            Phase::Established => f.write_str("Established"),
            Phase::Rekeying => f.write_str("Rekeying"),
            Phase::Rekeyed => f.write_str("Rekeyed"),
            Phase::Deleting { rekeyed } => f
                .debug_struct("Deleting")
                .field("rekeyed", rekeyed)
                .finish(),
        }
    }
}

impl Phase {
    /// The handshake's state, in the handshake's phases.
    pub(crate) fn handshake(&self) -> Option<&Handshake> {
        match self {
            Phase::InitSent(h) | Phase::AwaitSpi(h) | Phase::AuthSent(h) | Phase::HalfOpen(h) => {
                Some(h)
            }
            _ => None,
        }
    }

    /// The handshake's state, in the handshake's phases.
    pub(crate) fn handshake_mut(&mut self) -> Option<&mut Handshake> {
        match self {
            Phase::InitSent(h) | Phase::AwaitSpi(h) | Phase::AuthSent(h) | Phase::HalfOpen(h) => {
                Some(h)
            }
            _ => None,
        }
    }

    /// Goes to `next`, handing back the handshake's state if this phase
    /// held it.
    pub(crate) fn replace(&mut self, next: Phase) -> Option<Box<Handshake>> {
        match std::mem::replace(self, next) {
            Phase::InitSent(h) | Phase::AwaitSpi(h) | Phase::AuthSent(h) | Phase::HalfOpen(h) => {
                Some(h)
            }
            _ => None,
        }
    }

    /// The next step of the handshake (`to` is one of its phases), which
    /// keeps its state; outside the handshake it stays where it is.
    pub(crate) fn advance(&mut self, to: fn(Box<Handshake>) -> Phase) {
        *self = match std::mem::replace(self, Phase::Established) {
            Phase::InitSent(h) | Phase::AwaitSpi(h) | Phase::AuthSent(h) | Phase::HalfOpen(h) => {
                to(h)
            }
            other => other,
        };
    }
}

/// What IKE_SA_INIT leaves for IKE_AUTH, on the heap while the handshake
/// runs and gone with it: an established SA keeps none of it.
#[derive(Debug, Default)]
pub(crate) struct Handshake {
    pub(crate) init: InitState,
    /// Initiator: the tries before this one of bringing the SA up when
    /// the peer did not answer (`keyingtries`).
    pub(crate) keyingtry: u32,
    /// Initiator: our IKE_SA_INIT key exchange until the response
    /// completes it.
    pub(crate) ke: Option<Box<dyn KeyExchange>>,
    /// The peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427); `None`: it sent
    /// none, and signs and is answered with the classic methods.
    pub(crate) peer_hashes: Option<Vec<crate::pki::HashAlg>>,
    /// Initiator: the CA key hashes of the responder's CERTREQ in
    /// IKE_SA_INIT (`None`: it sent none).
    pub(crate) certreq: Option<Vec<[u8; 20]>>,
    /// The peer's IKE_AUTH message (decrypted) whose certificate waits
    /// for CRLs (`ike_auth::await_crls`).
    pub(crate) crl_wait: Option<Box<Message>>,
    /// CRLs were fetched for this handshake: what is still missing
    /// counts as unavailable.
    pub(crate) crls_fetched: bool,
    /// Initiator: the IKE_SA_INIT response whose key exchange is being
    /// completed (`compute`), taken on again when it is done.
    pub(crate) init_wait: Option<Box<InitWait>>,
    /// Initiator: the shared secret computed for `init_wait`.
    pub(crate) shared: Option<Secret>,
    /// Initiator: `ke` is being made by a job (`init_ke`).
    pub(crate) ke_asked: bool,
    /// The check of the peer's AUTH (`compute`).
    pub(crate) peer_check: super::compute::PeerCheck,
    /// Our AUTH signature (`compute`).
    pub(crate) our_sig: super::compute::OurSig,
    /// The peer's IKE_AUTH message (decrypted) taken on again when
    /// `peer_check` or `our_sig` answers (`ike_auth::await_compute`).
    pub(crate) auth_wait: Option<Box<Message>>,
    /// EAP in IKE_AUTH (`eap_auth`).
    pub(crate) eap: Option<Box<super::eap_auth::EapState>>,
    /// A second authentication round (`rounds`).
    pub(crate) rounds: super::rounds::RoundState,
}

/// An IKE_SA_INIT response waiting for its key exchange (`compute`).
#[derive(Debug)]
pub(crate) struct InitWait {
    pub(crate) msg: Message,
    pub(crate) bytes: Vec<u8>,
    pub(crate) local: SocketAddr,
}

/// IKE_SA_INIT material kept for IKE_AUTH.
#[derive(Debug, Default)]
pub(crate) struct InitState {
    pub(crate) nonce_i: Vec<u8>,
    pub(crate) nonce_r: Vec<u8>,
    /// Initiator: the IKE proposals we offer (reordered by INVALID_KE).
    pub(crate) proposals: Vec<Proposal>,
    /// Initiator: the responder's cookie to echo.
    pub(crate) cookie: Option<Vec<u8>>,
    pub(crate) ke_retries: u32,
    /// The IKE_SA_INIT request and response as sent/received (AUTH signs them).
    pub(crate) request: Vec<u8>,
    pub(crate) response: Vec<u8>,
}

/// The keys of an established IKE_SA_INIT.
#[derive(Debug)]
pub(crate) struct Keys {
    pub(crate) suite: IkeSuite,
    pub(crate) proposal: Proposal,
    pub(crate) prf: Box<dyn Prf>,
    pub(crate) sk_d: Secret,
    pub(crate) sk_pi: Secret,
    pub(crate) sk_pr: Secret,
    pub(crate) ciphers: SkCiphers,
}

/// What an IKE SA's keys are derived from besides the key exchange's
/// shared secret: the exchange that made it.
#[derive(Debug)]
pub(crate) struct KeyInput<'a> {
    /// The proposal chosen, and its algorithms.
    pub(crate) proposal: Proposal,
    pub(crate) suite: IkeSuite,
    pub(crate) ni: &'a [u8],
    pub(crate) nr: &'a [u8],
    pub(crate) spi_i: u64,
    pub(crate) spi_r: u64,
    /// Whether we are the new SA's initiator (which SK_e/SK_a we send with).
    pub(crate) initiator: bool,
}

impl Keys {
    pub(crate) fn derive(
        provider: &dyn CryptoProvider,
        shared: &Secret,
        input: KeyInput<'_>,
    ) -> Result<Self, String> {
        let prf = provider.prf(input.suite.prf).map_err(|e| e.to_string())?;
        let seed =
            crate::crypto::keymat::skeyseed(prf.as_ref(), input.ni, input.nr, shared.as_bytes());
        Self::from_seed(provider, &seed, input)
    }

    /// The keys of a new IKE SA made by rekeying the one of `self` (RFC
    /// 7296 2.18): SKEYSEED from the old SK_d and PRF.
    pub(crate) fn rekeyed(
        &self,
        provider: &dyn CryptoProvider,
        shared: &Secret,
        input: KeyInput<'_>,
    ) -> Result<Self, String> {
        let seed = crate::crypto::keymat::rekey_skeyseed(
            self.prf.as_ref(),
            self.sk_d.as_bytes(),
            shared.as_bytes(),
            input.ni,
            input.nr,
        );
        Self::from_seed(provider, &seed, input)
    }

    fn from_seed(
        provider: &dyn CryptoProvider,
        seed: &Secret,
        input: KeyInput<'_>,
    ) -> Result<Self, String> {
        let KeyInput {
            proposal,
            suite,
            ni,
            nr,
            spi_i,
            spi_r,
            initiator,
        } = input;
        let prf = provider.prf(suite.prf).map_err(|e| e.to_string())?;
        let k = IkeKeys::derive(
            prf.as_ref(),
            &suite,
            seed.as_bytes(),
            ni,
            nr,
            &spi_i.to_be_bytes(),
            &spi_r.to_be_bytes(),
        )
        .map_err(|e| e.to_string())?;
        let ciphers = k
            .sk_ciphers(provider, &suite, initiator)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            suite,
            proposal,
            prf,
            sk_d: k.sk_d.clone(),
            sk_pi: k.sk_pi.clone(),
            sk_pr: k.sk_pr.clone(),
            ciphers,
        })
    }
}

pub(crate) use super::window::Task;
use super::window::{Due, Incoming, Window};

/// One IKE SA, its fields grouped by concern: who and where, its phase
/// and deadlines, the keys and what made them, its Child SAs, the exchange
/// window, and the state of each procedure that runs on it (rekey,
/// reauthentication, dead peer detection, NAT traversal).
#[derive(Debug)]
pub(crate) struct IkeSa {
    pub(crate) id: IkeSaId,
    pub(crate) initiator: bool,
    pub(crate) spi_i: u64,
    pub(crate) spi_r: u64,
    /// The peer configuration (for a responder: the best address match
    /// until IKE_AUTH picks one by identity).
    pub(crate) peer: Arc<PeerCfg>,
    /// Responder: every peer configuration matching the addresses.
    pub(crate) candidates: Arc<[Arc<PeerCfg>]>,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,

    pub(crate) phase: Phase,
    pub(crate) established_at: Option<Instant>,
    /// Every deadline of the SA but the retransmission of our request.
    pub(crate) timers: IkeTimers,
    /// Torn down: the endpoint drops it.
    dead: bool,

    pub(crate) keys: Option<Keys>,
    pub(crate) local_id: Option<Identification>,
    pub(crate) remote_id: Option<Identification>,

    pub(crate) children: Vec<Child>,
    /// Children to create with CREATE_CHILD_SA once established.
    pub(crate) pending_children: VecDeque<Arc<ChildCfg>>,
    /// Message IDs, our requests in flight and queued, the peer's
    /// requests' answers (cached, or held back).
    pub(crate) window: Window,

    /// Rekeying the IKE SA (`ike_rekey`).
    pub(crate) rekey: IkeRekey,
    /// Reauthentication (`reauth`).
    pub(crate) reauth: Reauth,
    /// Dead peer detection: the traffic seen (its timer is `IkeTimer::Dpd`).
    pub(crate) dpd: Dpd,
    /// NAT traversal: detection, encapsulation (keepalives: `IkeTimer::Keepalive`).
    pub(crate) nat: super::natt::NatT,
    /// MOBIKE (RFC 4555): negotiated, and whether we may move the SA.
    pub(crate) mobike: super::mobike::Mobike,
    /// Both sides announced IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383; the
    /// IKE SA a rekey makes inherits it).
    pub(crate) fragmentation: bool,
    /// The peer's fragmented messages being reassembled (`frag`).
    pub(crate) frag: super::frag::Frag,
    /// Virtual IPs, ours or the peer's (`cp`).
    pub(crate) vips: super::cp::Vips,
    /// Redirects (RFC 5685, `redirect`): followed as client, sent as
    /// gateway. (Boxed: most SAs of a gateway never have one.)
    pub(crate) redirect: Option<Box<super::redirect::Redirect>>,
}

/// What a new IKE SA starts from; everything else starts empty.
#[derive(Debug)]
pub(crate) struct IkeSaParams {
    pub(crate) id: IkeSaId,
    pub(crate) initiator: bool,
    pub(crate) phase: Phase,
    pub(crate) peer: Arc<PeerCfg>,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) spi_i: u64,
    pub(crate) spi_r: u64,
}

/// An IKE SA's rekeying state (`ike_rekey`).
#[derive(Debug, Default)]
pub(crate) struct IkeRekey {
    /// INVALID_KE_PAYLOAD retries of our rekey.
    pub(crate) ke_retries: u32,
    /// The key exchange method the peer asked for in its INVALID_KE_PAYLOAD.
    pub(crate) group: Option<crate::wire::codes::KeId>,
    /// Responder of the peer's rekey while ours is in flight (2.8.2).
    /// (Boxed: an IKE SA inside an IKE SA, only during a collision.)
    pub(crate) crossing: Option<Box<PeerRekey>>,
}

/// The new IKE SA of the peer's rekey that crossed ours, until ours is
/// answered and the lowest nonce tells which one is redundant (2.8.2).
#[derive(Debug)]
pub(crate) struct PeerRekey {
    pub(crate) sa: IkeSa,
    /// The lowest nonce of the peer's exchange.
    pub(crate) nonce_min: Vec<u8>,
}

/// An IKE SA's part in a reauthentication (`reauth`): as the old SA being
/// replaced, and as the new SA that replaces one.
#[derive(Debug, Default)]
pub(crate) struct Reauth {
    /// Old SA: a new IKE SA replacing it is on its way (no rekey of this
    /// one meanwhile).
    pub(crate) replacing: bool,
    /// Old SA, responder: the peer made another IKE SA from its address
    /// with the same identities and `unique = replace` deletes this one
    /// at its `Expire` deadline (`unique`; maybe the peer
    /// reauthenticates, and moves its traffic first).
    pub(crate) superseded: bool,
    /// New SA, initiator: the first Child SA's inbound SA goes in before
    /// IKE_AUTH.
    pub(crate) pre: Option<Box<super::reauth::PreInstall>>,
    /// New SA, initiator: the names of the Child SAs it brings along, each
    /// of which must come up before the old IKE SA goes.
    pub(crate) wants: Vec<String>,
}

/// Dead peer detection state (`PeerCfg::dpd_delay`).
#[derive(Debug, Default)]
pub(crate) struct Dpd {
    /// The inbound byte counters at the last check.
    pub(crate) bytes: Option<u64>,
    /// A traffic query is in flight.
    pub(crate) querying: bool,
}

pub(crate) use crate::display::{IdDisplay, TsDisplay};

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

/// The retransmission timeout after `n` retransmissions:
/// `timeout * base^n` (strongSwan's formula).
pub(crate) fn backoff(ctx: &Ctx, n: u32) -> Duration {
    let f = ctx
        .cfg
        .retransmit_base
        .powi(i32::try_from(n).unwrap_or(i32::MAX));
    let secs = ctx.cfg.retransmit_timeout.as_secs_f64() * f;
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(3600))
}

impl IkeSa {
    /// The one constructor: an SA in `p.phase` with nothing else yet.
    pub(crate) fn new(p: IkeSaParams) -> Self {
        // A responder's IKE_SA_INIT (message 0) is answered before the SA
        // exists: the peer's next request is 1.
        let peer_mid = u32::from(matches!(p.phase, Phase::HalfOpen(_)));
        IkeSa {
            id: p.id,
            initiator: p.initiator,
            spi_i: p.spi_i,
            spi_r: p.spi_r,
            peer: p.peer,
            candidates: Vec::new().into(),
            local: p.local,
            remote: p.remote,
            phase: p.phase,
            established_at: None,
            timers: IkeTimers::default(),
            dead: false,
            keys: None,
            local_id: None,
            remote_id: None,
            children: Vec::new(),
            pending_children: VecDeque::new(),
            window: Window::new(peer_mid),
            rekey: IkeRekey::default(),
            reauth: Reauth::default(),
            dpd: Dpd::default(),
            nat: super::natt::NatT::default(),
            mobike: super::mobike::Mobike::Off,
            fragmentation: false,
            frag: super::frag::Frag::default(),
            vips: Default::default(),
            redirect: None,
        }
    }

    pub(crate) fn id(&self) -> IkeSaId {
        self.id
    }

    /// Our IKE SPI: the endpoint's index key.
    pub(crate) fn our_spi(&self) -> u64 {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }

    /// Responder: the key of retransmitted IKE_SA_INIT requests.
    pub(crate) fn init_key(&self) -> Option<(SocketAddr, u64)> {
        (!self.initiator).then_some((self.nat.init_remote.unwrap_or(self.remote), self.spi_i))
    }

    /// Whether IKE_SA_INIT requests should still find it (responder, not
    /// yet authenticated).
    pub(crate) fn half_open(&self) -> bool {
        !self.initiator && matches!(self.phase, Phase::HalfOpen(_))
    }

    pub(crate) fn has_child(&self, child: ChildId) -> bool {
        self.children.iter().any(|c| c.id == child)
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.dead
    }

    /// Replaced by a rekey (waiting for, or sending, its delete).
    pub(crate) fn was_rekeyed(&self) -> bool {
        matches!(
            self.phase,
            Phase::Rekeyed | Phase::Deleting { rekeyed: true }
        )
    }

    /// Our delete of it is in flight.
    pub(crate) fn deleting(&self) -> bool {
        matches!(self.phase, Phase::Deleting { .. })
    }

    /// The next time something is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let r = self.window.deadline();
        let children = self.children.iter().filter_map(|c| c.timers.next());
        [r, self.timers.next(), self.frag.deadline()]
            .into_iter()
            .flatten()
            .chain(children)
            .min()
    }

    /// `name[id]` for logs.
    pub(crate) fn name(&self) -> String {
        format!("{}{}", self.peer.name, self.id)
    }

    pub(crate) fn header(&self, exchange: ExchangeType, response: bool, mid: u32) -> Header {
        let mut flags = 0u8;
        if self.initiator {
            flags |= Flags::INITIATOR.0;
        }
        if response {
            flags |= Flags::RESPONSE.0;
        }
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            minor_version: 0,
            exchange,
            flags: Flags(flags),
            message_id: mid,
        }
    }

    /// Emits a protected message with `inner` in its SK payload: one
    /// datagram, or its fragments if it is larger than we may send in one
    /// (`frag`).
    pub(crate) fn seal(
        &mut self,
        ctx: &Ctx,
        header: Header,
        inner: Vec<Payload>,
    ) -> Result<Packets, String> {
        let max = self.fragment_len(ctx);
        let keys = self.keys.as_mut().ok_or("no keys yet")?;
        let msg = Message {
            header,
            payloads: vec![Payload::Sk(Encrypted::Open(inner))],
        };
        let cipher = keys.ciphers.outbound.as_mut();
        let whole = msg.emit_sealed(cipher).map_err(|e| e.to_string())?;
        match max {
            Some(max) if whole.len() > max => msg
                .emit_fragments(cipher, max)
                .map(|f| Packets::Fragments(f.into()))
                .map_err(|e| e.to_string()),
            _ => Ok(Packets::One(whole)),
        }
    }

    pub(crate) fn transmit(&self, ctx: &mut Ctx, payload: Vec<u8>) {
        ctx.transmits.push_back(super::Transmit {
            local: self.local,
            remote: self.remote,
            payload,
        });
    }

    /// Sends every datagram of an answer where the request came from
    /// (with MOBIKE that need not be the IKE SA's path).
    pub(crate) fn transmit_reply(&self, ctx: &mut Ctx, packets: &Packets) {
        let (local, remote) = self.reply_path(ctx);
        for p in packets.iter() {
            ctx.transmits.push_back(super::Transmit {
                local,
                remote,
                payload: p.clone(),
            });
        }
    }

    /// Sends every datagram of a message, in order.
    pub(crate) fn transmit_all(&self, ctx: &mut Ctx, packets: &Packets) {
        for p in packets.iter() {
            self.transmit(ctx, p.clone());
        }
    }

    /// Sends a protected request and keeps it for retransmission.
    pub(crate) fn send_request(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        exchange: ExchangeType,
        inner: Vec<Payload>,
        task: Task,
    ) {
        let mid = self.window.next_mid();
        let header = self.header(exchange, false, mid);
        match self.seal(ctx, header, inner) {
            Ok(bytes) => {
                debug!(
                    "{}: sending {exchange} request {mid}{}",
                    self.name(),
                    in_fragments(&bytes)
                );
                self.transmit_all(ctx, &bytes);
                self.window
                    .request_sent(mid, task, bytes, later(now, backoff(ctx, 0)));
            }
            Err(e) => self.fail(ctx, IkeFailReason::Internal(e)),
        }
    }

    /// Sends a protected INFORMATIONAL request without waiting for its
    /// answer ([`Window::oneshot`]: a last word before we go).
    pub(crate) fn send_oneshot(&mut self, ctx: &mut Ctx, inner: Vec<Payload>) {
        let header = self.header(ExchangeType::INFORMATIONAL, false, self.window.next_mid());
        if let Ok(bytes) = self.seal(ctx, header, inner) {
            self.window.oneshot();
            self.transmit_all(ctx, &bytes);
        }
    }

    /// Answers the peer's request `mid` and caches the answer.
    pub(crate) fn send_response(
        &mut self,
        ctx: &mut Ctx,
        exchange: ExchangeType,
        mid: u32,
        inner: Vec<Payload>,
    ) {
        let header = self.header(exchange, true, mid);
        match self.seal(ctx, header, inner) {
            Ok(bytes) => {
                debug!(
                    "{}: sending {exchange} response {mid}{}",
                    self.name(),
                    in_fragments(&bytes)
                );
                self.transmit_reply(ctx, &bytes);
                self.window.answered(mid, bytes);
            }
            Err(e) => self.fail(ctx, IkeFailReason::Internal(e)),
        }
    }

    /// A message routed to this SA.
    pub(crate) fn handle_message(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        mut msg: Message,
        bytes: &[u8],
    ) {
        let h = msg.header;
        if h.spi_i != self.spi_i {
            debug!(
                "{}: dropping message with SPIi {:016x}",
                self.name(),
                h.spi_i
            );
            return;
        }
        if h.is_initiator() == self.initiator {
            debug!("{}: dropping message with our own role flag", self.name());
            return;
        }
        if h.exchange == ExchangeType::IKE_SA_INIT {
            if h.is_response() {
                self.init_response(ctx, now, local, msg, bytes);
            } else if let Some(h) = self.phase.handshake()
                && h.init.request == bytes
                && !h.init.response.is_empty()
            {
                debug!(
                    "{}: retransmitted IKE_SA_INIT request, resending response",
                    self.name()
                );
                let r = h.init.response.clone();
                self.transmit(ctx, r);
            } else {
                debug!(
                    "{}: dropping IKE_SA_INIT request for existing SA",
                    self.name()
                );
            }
            return;
        }
        if h.spi_r != self.spi_r || self.keys.is_none() {
            debug!("{}: dropping {} with unknown SPIr", self.name(), h.exchange);
            return;
        }
        let fragment = matches!(msg.payloads.last(), Some(Payload::Skf(_)));
        if h.is_response() {
            if !self.window.expects_response(h.message_id) {
                debug!(
                    "{}: dropping unexpected {} response {}",
                    self.name(),
                    h.exchange,
                    h.message_id
                );
                return;
            }
            if fragment {
                match self.defragment(ctx, now, true, &msg, bytes) {
                    Some((whole, _)) => msg = whole,
                    None => return,
                }
            } else if !self.decrypt(&mut msg, bytes, ctx) {
                return;
            }
            self.dpd_seen(now);
            self.natt_authenticated(ctx, local, remote);
            let Some(out) = self.window.take_outstanding() else {
                return;
            };
            if let Err(e) = rules::check(&msg) {
                debug!("{}: invalid {} response: {e}", self.name(), h.exchange);
                self.fail(
                    ctx,
                    IkeFailReason::InvalidSyntax {
                        by_peer: false,
                        detail: e.to_string(),
                    },
                );
                return;
            }
            match out.task {
                Task::IkeInit => {}
                Task::IkeAuth => self.auth_response(ctx, now, &msg),
                Task::CreateChild(t) => t.response(self, ctx, now, &msg),
                Task::RekeyIke(t) => self.rekey_ike_response(ctx, now, &msg, t),
                Task::DeleteIke => self.delete_ike_response(ctx),
                Task::DeleteChild(c) => self.delete_child_response(ctx, c, &msg),
                Task::DeleteRejected { .. } => {}
                Task::Liveness => {
                    debug!("{}: liveness check answered", self.name());
                    ctx.events.push_back(Event::PeerAlive { id: self.id });
                }
                Task::UpdateAddresses { cookie2 } => {
                    self.update_addresses_response(ctx, now, &msg, cookie2)
                }
                Task::Redirect(_) => self.redirect_sent(ctx, now),
            }
            self.next_task(ctx, now);
        } else {
            let mid = h.message_id;
            match self.window.incoming(mid, bytes) {
                Incoming::Next => {}
                Incoming::Retransmit => {
                    // With MOBIKE the peer may retransmit from a new
                    // address (probing a path): the answer goes there.
                    self.mobike_request_path(ctx, local, remote);
                    if let Some(r) = self.window.cached_response() {
                        debug!(
                            "{}: retransmitted {} request {mid}, resending response",
                            self.name(),
                            h.exchange
                        );
                        self.transmit_reply(ctx, r);
                    }
                    return;
                }
                Incoming::Unexpected(expected) => {
                    debug!(
                        "{}: dropping {} request {mid}, expected {expected}",
                        self.name(),
                        h.exchange,
                    );
                    return;
                }
                Incoming::Busy => {
                    debug!(
                        "{}: request {mid} still being processed, dropping it",
                        self.name()
                    );
                    return;
                }
            }
            if fragment {
                let Some((whole, first)) = self.defragment(ctx, now, false, &msg, bytes) else {
                    return;
                };
                msg = whole;
                self.window.accept_fingerprint(first);
            } else if !self.decrypt(&mut msg, bytes, ctx) {
                return;
            } else {
                self.window.accept(bytes);
            }
            self.dpd_seen(now);
            self.natt_authenticated(ctx, local, remote);
            self.mobike_request_path(ctx, local, remote);
            if let Err(e) = rules::check(&msg) {
                info!(
                    "{}: invalid {} request: {e}, sending INVALID_SYNTAX",
                    self.name(),
                    h.exchange
                );
                let n = e
                    .response()
                    .unwrap_or_else(|| Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()));
                self.send_response(ctx, h.exchange, mid, vec![Payload::Notify(n)]);
                if !matches!(self.phase, Phase::Established) {
                    self.fail(
                        ctx,
                        IkeFailReason::InvalidSyntax {
                            by_peer: false,
                            detail: e.to_string(),
                        },
                    );
                }
                return;
            }
            match (h.exchange, &self.phase) {
                (ExchangeType::IKE_AUTH, Phase::HalfOpen(_)) => self.auth_request(ctx, now, &msg),
                (ExchangeType::INFORMATIONAL, _) => self.informational_request(ctx, now, &msg),
                (
                    ExchangeType::CREATE_CHILD_SA,
                    Phase::Established | Phase::Deleting { .. } | Phase::Rekeying | Phase::Rekeyed,
                ) => self.create_child_request(ctx, now, &msg),
                (x, p) => {
                    debug!(
                        "{}: unexpected {x} request in phase {p:?}, ignoring",
                        self.name()
                    );
                }
            }
            if !self.dead {
                self.next_task(ctx, now);
            }
        }
    }

    /// Opens the SK payload; a failure is dropped silently (RFC 7296 2.21).
    fn decrypt(&self, msg: &mut Message, bytes: &[u8], ctx: &Ctx) -> bool {
        let Some(keys) = &self.keys else {
            return false;
        };
        match msg.decrypt(bytes, keys.ciphers.inbound.as_ref(), &ctx.cfg.limits) {
            Ok(()) => true,
            Err(e) => {
                debug!(
                    "{}: dropping {} message {}: {e}",
                    self.name(),
                    msg.header.exchange,
                    msg.header.message_id
                );
                false
            }
        }
    }

    /// Retransmissions, give-up, half-open timeout, lifetimes.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx, now: Instant) {
        self.natt_timeout(ctx, now);
        if self.frag.deadline().is_some_and(|d| d <= now) {
            let name = self.name();
            self.frag.expire(now, &name);
        }
        if self.timers.is_due(IkeTimer::HalfOpen, now) {
            // An initiator waiting for CRLs has the responder's answer:
            // it cannot authenticate the responder, and says so.
            if self.initiator && self.phase.handshake().is_some_and(|h| h.crl_wait.is_some()) {
                self.send_oneshot(
                    ctx,
                    vec![Payload::Notify(Notify::new(
                        NotifyType::AUTHENTICATION_FAILED,
                        Vec::new(),
                    ))],
                );
            }
            self.fail(ctx, IkeFailReason::HalfOpenTimeout);
            return;
        }
        if self.timers.is_due(IkeTimer::Retire, now) {
            debug!(
                "{}: rekeyed IKE SA not deleted by the peer, removing it",
                self.name()
            );
            self.teardown(ctx, false);
            return;
        }
        self.lifetimes_due(ctx, now);
        if self.dead {
            return;
        }
        self.dpd_due(ctx, now);
        self.inactivity_due(ctx, now);
        let task = match self
            .window
            .timeout(now, ctx.cfg.retransmit_tries, |n| backoff(ctx, n))
        {
            Due::Nothing => return,
            Due::Resend { n, mid, bytes } => {
                debug!("{}: retransmit {n} of request {mid}", self.name());
                self.transmit_all(ctx, &bytes);
                return;
            }
            Due::GiveUp(task) => task,
        };
        info!(
            "{}: giving up after {} retransmissions",
            self.name(),
            ctx.cfg.retransmit_tries
        );
        match task {
            Task::DeleteIke => self.delete_ike_response(ctx),
            _ if self.try_again(ctx) => {}
            _ => self.fail(ctx, IkeFailReason::PeerNotResponding),
        }
    }

    /// Sends the next queued request if none is in flight.
    pub(crate) fn next_task(&mut self, ctx: &mut Ctx, now: Instant) {
        if self.dead || self.window.outstanding().is_some() {
            return;
        }
        if !matches!(
            self.phase,
            Phase::Established | Phase::Deleting { .. } | Phase::Rekeyed
        ) {
            return;
        }
        if self.window.queue.is_empty()
            && matches!(self.phase, Phase::Established)
            && let Some(cfg) = self.pending_children.pop_front()
        {
            if self.pending_children.is_empty() {
                self.pending_children.shrink_to_fit();
            }
            self.start_child(ctx, cfg);
        }
        let Some(task) = self.window.queue.pop_front() else {
            return;
        };
        // An idle SA keeps no room for tasks (four 80-byte entries after
        // its first).
        if self.window.queue.is_empty() {
            self.window.queue.shrink_to_fit();
        }
        match task {
            Task::CreateChild(CreateChild { child, .. }) => {
                if !self.child_ready(child) {
                    // Wait for the SPI; handle_kernel calls us again.
                    self.window.queue.push_front(task);
                    return;
                }
                self.send_create_child(ctx, now, child);
            }
            Task::RekeyIke(_) => self.send_rekey_ike(ctx, now),
            Task::DeleteIke => {
                let rekeyed = self.was_rekeyed();
                self.phase = Phase::Deleting { rekeyed };
                if rekeyed {
                    debug!("deleting rekeyed IKE SA {}", self.name());
                } else {
                    info!("deleting IKE SA {}", self.name());
                }
                self.send_request(
                    ctx,
                    now,
                    ExchangeType::INFORMATIONAL,
                    vec![Payload::Delete(crate::wire::Delete::ike())],
                    Task::DeleteIke,
                );
            }
            Task::DeleteChild(c) => self.send_delete_child(ctx, now, c),
            Task::DeleteRejected { protocol, spi } => self.send_request(
                ctx,
                now,
                ExchangeType::INFORMATIONAL,
                vec![Payload::Delete(crate::wire::Delete::child(protocol, [spi]))],
                Task::DeleteRejected { protocol, spi },
            ),
            Task::Liveness => self.send_request(
                ctx,
                now,
                ExchangeType::INFORMATIONAL,
                Vec::new(),
                Task::Liveness,
            ),
            Task::UpdateAddresses { cookie2 } => self.send_update_addresses(ctx, now, cookie2),
            Task::Redirect(gw) => self.send_request(
                ctx,
                now,
                ExchangeType::INFORMATIONAL,
                Self::redirect_payloads(&gw),
                Task::Redirect(gw),
            ),
            Task::IkeInit | Task::IkeAuth => {}
        }
    }

    /// The handshake's state is needed outside the handshake: an internal
    /// error.
    pub(crate) fn no_handshake(&mut self, ctx: &mut Ctx) {
        self.fail(
            ctx,
            IkeFailReason::Internal(format!("{:?} holds no IKE_SA_INIT state", self.phase)),
        );
    }

    /// The SA failed: report, remove what it installed, and go.
    pub(crate) fn fail(&mut self, ctx: &mut Ctx, reason: IkeFailReason) {
        if self.dead {
            return;
        }
        info!(
            "IKE SA {} {} => {} failed: {reason}",
            self.name(),
            self.local.ip(),
            self.remote.ip()
        );
        let peer = (self.initiator || !self.candidates.is_empty() || self.established_at.is_some())
            .then(|| self.peer.name.clone());
        // Children first, then the IKE SA: `ikectl up` waits for the latter.
        self.teardown(ctx, false);
        ctx.events.push_back(Event::IkeFailed {
            id: self.id,
            peer,
            reason,
        });
    }

    /// The SA is deleted (by us or the peer) after being established.
    pub(crate) fn deleted(&mut self, ctx: &mut Ctx, by_peer: bool) {
        if self.dead {
            return;
        }
        if self.was_rekeyed() {
            debug!("rekeyed IKE SA {} removed", self.name());
            self.teardown(ctx, by_peer);
            return;
        }
        info!(
            "IKE SA {} {} => {} deleted{}",
            self.name(),
            self.local.ip(),
            self.remote.ip(),
            if by_peer { " by peer" } else { "" }
        );
        self.teardown(ctx, by_peer);
        ctx.events.push_back(Event::IkeDeleted {
            id: self.id,
            peer: self.peer.name.clone(),
            by_peer,
        });
    }

    /// Removes every Child SA's kernel state and marks the SA dead.
    pub(crate) fn teardown(&mut self, ctx: &mut Ctx, by_peer: bool) {
        // One at a time, first first: a child's policies are removed
        // with the last child that uses its reqid.
        while !self.children.is_empty() {
            let c = self.children.remove(0);
            self.drop_child(ctx, c, by_peer, ChildFailReason::IkeSaGone);
        }
        for cfg in std::mem::take(&mut self.pending_children) {
            ctx.events.push_back(Event::ChildFailed {
                ike: self.id,
                child: None,
                name: cfg.name.clone(),
                reason: ChildFailReason::IkeSaGone,
            });
        }
        self.window.clear();
        self.frag.clear();
        self.timers.clear();
        if let Some(mut other) = self.rekey.crossing.take() {
            other.sa.teardown(ctx, by_peer);
        }
        self.dead = true;
    }

    /// The answer to one of our outside requests: continue with `then`.
    pub(crate) fn resume(&mut self, ctx: &mut Ctx, now: Instant, then: Then, outcome: Outcome) {
        match (then, outcome) {
            (Then::Kernel(purpose), Outcome::Kernel(outcome)) => {
                self.handle_kernel(ctx, now, purpose, outcome)
            }
            (Then::Crl, Outcome::Crl(result)) => self.crl_fetched(ctx, now, result),
            (Then::Eap, Outcome::Eap(answer)) => self.eap_resumed(ctx, answer),
            (Then::Compute(step), Outcome::Compute(result)) => match step {
                super::compute::Step::AnswerInit => self.answer_init(ctx, result),
                super::compute::Step::CompleteInit => self.init_computed(ctx, now, result),
                super::compute::Step::AnswerCreate => self.create_ke_done(ctx, now, result),
                super::compute::Step::StartInit => self.init_ke_done(ctx, now, result),
                step @ (super::compute::Step::Signed | super::compute::Step::Checked) => {
                    self.auth_computed(ctx, now, step, result)
                }
            },
            (then, outcome) => debug!("{}: {outcome:?} does not answer {then:?}", self.name()),
        }
    }

    /// A kernel result for one of our requests.
    fn handle_kernel(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        purpose: KernelPurpose,
        outcome: Result<KernelOk, String>,
    ) {
        match purpose {
            KernelPurpose::AllocSpi {
                child,
                protocol,
                local,
            } => {
                let spi = match outcome {
                    Ok(KernelOk::SpiAllocated(spi)) => spi,
                    Ok(
                        KernelOk::Done
                        | KernelOk::Traffic(_)
                        | KernelOk::CpiAllocated(_)
                        | KernelOk::Idle(_),
                    ) => {
                        self.child_failed(
                            ctx,
                            now,
                            child,
                            ChildFailReason::Kernel("no SPI in the result".into()),
                        );
                        return;
                    }
                    Err(e) => {
                        self.child_failed(ctx, now, child, ChildFailReason::Kernel(e));
                        return;
                    }
                };
                let name = self.name();
                let Some(c) = self.children.iter_mut().find(|c| c.id == child) else {
                    ctx.kernel_ops.push_back(KernelOp::ReleaseSpi {
                        protocol,
                        local,
                        spi,
                    });
                    return;
                };
                c.spi_in = spi;
                debug!("{name}: allocated SPI {spi:08x} for {}", c.cfg.name);
                if !c.ipcomp.allocating() {
                    self.spi_ready(ctx, now, child);
                }
            }
            KernelPurpose::AllocCpi { child, local } => {
                let cpi = match outcome {
                    Ok(KernelOk::CpiAllocated(cpi)) if cpi != 0 => Some(cpi),
                    Ok(other) => {
                        info!("{}: no CPI in {other:?}, IPComp disabled", self.name());
                        None
                    }
                    Err(e) => {
                        // As charon: the Child SA goes on without IPComp.
                        info!(
                            "{}: unable to allocate a CPI from the kernel, IPComp disabled: {e}",
                            self.name()
                        );
                        None
                    }
                };
                let name = self.name();
                let Some(c) = self.children.iter_mut().find(|c| c.id == child) else {
                    if let Some(cpi) = cpi {
                        ctx.kernel_ops
                            .push_back(KernelOp::ReleaseCpi { local, cpi });
                    }
                    return;
                };
                c.ipcomp.allocated(cpi);
                if let Some(cpi) = c.ipcomp.ours() {
                    debug!("{name}: allocated CPI {cpi:04x} for {}", c.cfg.name);
                }
                if c.spi_in != 0 {
                    self.spi_ready(ctx, now, child);
                }
            }
            KernelPurpose::Install { child } => match outcome {
                Ok(_) => self.child_installed(ctx, now, child),
                Err(e) => {
                    // The daemon rolled back its partial install; only the
                    // allocated SPI is left, to be released.
                    let mut peer_half = None;
                    if let Some(c) = self.children.iter_mut().find(|c| c.id == child) {
                        c.state = super::ChildState::Creating;
                        // As initiator the peer has installed its half:
                        // delete it (our inbound SPI names it).
                        if c.initiator && c.spi_out != 0 {
                            peer_half = Some((c.protocol, c.spi_in));
                        }
                    }
                    if let Some((protocol, spi)) = peer_half {
                        self.window
                            .queue
                            .push_back(Task::DeleteRejected { protocol, spi });
                    }
                    self.child_failed(ctx, now, child, ChildFailReason::Kernel(e))
                }
            },
            KernelPurpose::InstallOut { child } => {
                self.outbound_installed(ctx, now, child, outcome.map(|_| ()))
            }
            KernelPurpose::PreInstall { child } => {
                self.preinstalled(ctx, now, child, outcome.map(|_| ()))
            }
            KernelPurpose::Traffic => self.dpd_traffic(ctx, now, outcome),
            KernelPurpose::LastUse { child } => self.inactivity_last_use(ctx, now, child, outcome),
            KernelPurpose::Remove => {
                if let Err(e) = outcome {
                    info!("{}: removing a Child SA failed: {e}", self.name());
                }
            }
            KernelPurpose::Update => {
                if let Err(e) = outcome {
                    info!(
                        "{}: moving a Child SA to new addresses failed: {e}",
                        self.name()
                    );
                }
            }
        }
    }

    /// Deletes the IKE SA (or abandons it while connecting).
    pub(crate) fn terminate(&mut self, ctx: &mut Ctx, now: Instant) {
        match self.phase {
            Phase::Established | Phase::Rekeying => {
                if !self
                    .window
                    .queue
                    .iter()
                    .any(|t| matches!(t, Task::DeleteIke))
                {
                    // Before queued work, which may wait for the kernel.
                    self.window.queue.push_front(Task::DeleteIke);
                }
                // A delete goes before anything else we still wanted to do.
                self.pending_children.clear();
                self.next_task(ctx, now);
            }
            Phase::Deleting { .. } | Phase::Rekeyed => {}
            _ => {
                if self.keys.is_some() {
                    self.send_oneshot(ctx, vec![Payload::Delete(crate::wire::Delete::ike())]);
                }
                self.deleted(ctx, false);
            }
        }
    }

    /// Queues a liveness check.
    pub(crate) fn liveness_check(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
    ) -> Result<(), CommandError> {
        if !matches!(self.phase, Phase::Established) {
            return Err(CommandError::WrongState(self.state()));
        }
        self.window.queue.push_back(Task::Liveness);
        self.next_task(ctx, now);
        Ok(())
    }

    pub(crate) fn state(&self) -> IkeState {
        match self.phase {
            Phase::Established => IkeState::Established,
            Phase::Rekeying => IkeState::Rekeying,
            Phase::Rekeyed => IkeState::Rekeyed,
            Phase::Deleting { .. } => IkeState::Deleting,
            _ => IkeState::Connecting,
        }
    }

    pub(crate) fn info(&self) -> IkeSaInfo {
        IkeSaInfo {
            id: self.id,
            peer: (self.initiator
                || !matches!(self.phase, Phase::HalfOpen(_))
                || !self.candidates.is_empty())
            .then(|| self.peer.name.clone()),
            state: self.state(),
            initiator: self.initiator,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            local_addr: self.local,
            remote_addr: self.remote,
            local_id: self.local_id.clone(),
            remote_id: self.remote_id.clone(),
            suite: self.keys.as_ref().map(|k| k.suite),
            established_at: self.established_at,
            rekey_at: self.timers.get(IkeTimer::Rekey),
            expires_at: self.timers.get(IkeTimer::Expire),
            nat_local: self.nat.local,
            nat_remote: self.nat.remote,
            encap: self.nat.encap,
            mobike: self.mobike.enabled(),
            children: self.children.iter().map(Child::info).collect(),
            local_vips: self.vips.ours.clone(),
            remote_vips: self.vips.peer.clone(),
            dns: self.vips.dns.clone(),
        }
    }
}

/// For a log line: how many fragments a message went in, if any.
fn in_fragments(p: &Packets) -> String {
    match p {
        Packets::One(_) => String::new(),
        Packets::Fragments(f) => format!(" in {} fragments", f.len()),
    }
}

/// The first notify of `t` in `msg`.
pub(crate) fn notify(msg: &Message, t: NotifyType) -> Option<&Notify> {
    msg.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == t => Some(n),
        _ => None,
    })
}

/// The first error notify in `msg`.
pub(crate) fn error_notify(msg: &Message) -> Option<NotifyType> {
    msg.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type.is_error() => Some(n.notify_type),
        _ => None,
    })
}
