//! The [`Endpoint`]: all IKE SAs of one daemon, the routing of datagrams to
//! them, and the queues of their outputs.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info, warn};

use super::clock::WallClock;
use super::config::{ChildCfg, EndpointConfig, PeerCfg, PskStore};
use super::effect::Effect;
use super::ike_sa::{IkeSa, KernelPurpose};
use super::outside::{Outcome, Outside, Then, Waiting};
use super::redirect::Follow;
use super::timers::Timers;
use super::types::{
    ChildInstall, CommandError, CrlFetch, CrlFetched, Event, IkeSaId, IkeSaInfo, KernelEvent,
    KernelOk, KernelOp, KernelReq, KernelResult, Transmit,
};
use super::unique::{Contact, Dups};
use super::window::{Held, Waits};
use super::{ChildId, ike_init};
use crate::crypto::CryptoProvider;
use crate::pki::store::TrustStore;
use crate::wire::codes::ExchangeType;
use crate::wire::{Header, Identification, Message};

/// Peer configurations an IKE_SA_INIT's addresses match (shared).
pub(crate) type Candidates = Arc<[Arc<PeerCfg>]>;

/// What the IKE SAs share: settings, configuration, crypto, output queues.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) cfg: EndpointConfig,
    pub(crate) provider: Arc<dyn CryptoProvider>,
    pub(crate) psk: PskHandle,
    pub(crate) peers: Vec<Arc<PeerCfg>>,
    /// Index into `peers` by name (`initiate` and `up` look peers up by
    /// name once per command: a scan made 10,000 of them quadratic).
    peer_index: HashMap<String, usize>,
    pub(crate) transmits: VecDeque<Transmit>,
    /// MOBIKE: the IKE SA whose peer's last request came on another path
    /// than the SA's, and that path (ours, theirs): its answers go there
    /// (`sa::mobike`). Here rather than in each `IkeSa` (per tunnel, and
    /// rarely set).
    pub(crate) reply_to: Option<(IkeSaId, SocketAddr, SocketAddr)>,
    pub(crate) kernel_ops: VecDeque<KernelOp>,
    /// CRL fetches asked for (`poll_crl_fetch`).
    pub(crate) crl_fetches: VecDeque<CrlFetch>,
    /// EAP secrets (swanctl's `eap-*`), apart from the IKE PSKs: an EAP
    /// password never keys a PSK AUTH.
    pub(crate) eap_secrets: PskHandle,
    /// EAP-RADIUS's settings (without the servers, which the daemon's
    /// client holds) and the Acct-Session-Id prefix (`set_radius`).
    pub(crate) radius: Option<(crate::radius::Settings, u32)>,
    /// What EAP methods ask of the outside (`poll_eap_ask`).
    pub(crate) eap_asks: VecDeque<super::EapAsk>,
    /// CPU work asked for (`poll_compute`), and, inline, its results.
    pub(crate) jobs: super::compute::Jobs,
    /// The window of initiations per peer address (`pacing`).
    pub(crate) pacing: super::pacing::Pacing,
    pub(crate) events: VecDeque<Event>,
    /// Trusted CAs and CRLs for certificate validation (fetched CRLs are
    /// added here: copied on write if the daemon still shares it).
    pub(crate) trust: Arc<TrustStore>,
    /// The CERTREQ hashes of `trust`'s CAs (made once per store, not per
    /// IKE_SA_INIT).
    pub(crate) ca_hashes: Arc<[[u8; 20]]>,
    /// Outside operations under way (the kernel's): who asked, and what
    /// it continues with.
    pub(crate) outside: Outside,
    /// Half-open counts, cookie secrets, per-packet log limit.
    pub(crate) dos: super::dos::Guard,
    next_child: u64,
    next_reqid: u32,
    /// Reqids of trapped children by (peer, child): their Child SAs use
    /// it, so that their SAs go in under the trap's policies.
    pub(crate) trap_reqids: HashMap<(String, String), u32>,
    next_ike: u64,
    /// Which Child SAs hold each kernel reqid.
    pub(crate) reqids: super::reqids::Reqids,
    /// UTC time, derived from the driver's last anchor (`clock`).
    pub(crate) wall: WallClock,
    /// What the SA handling an input tells the endpoint
    /// (`Endpoint::apply_effects` applies them when it returns).
    pub(crate) effects: Vec<Effect>,
    /// The peer configurations matching the last IKE_SA_INIT's addresses
    /// (`ike_init::candidates`), shared by the half-open SAs from the same
    /// addresses: with N connections between two gateways each held its
    /// own list of N until IKE_AUTH (8 KB each at 1,000).
    pub(crate) last_candidates: Option<((IpAddr, IpAddr), Candidates)>,
    /// Octets held in partial fragmented messages of all IKE SAs.
    pub(crate) frag_budget: Arc<super::frag::Budget>,
    /// The established IKE SAs by identity pair (`unique`): kept by
    /// `Endpoint::settle`, read by IKE_AUTH.
    pub(crate) contacts: super::unique::Contacts,
    /// Virtual IP pools and their leases (`cp`).
    pub(crate) pools: super::cp::Pools,
    /// Tests: each rekey collision decided, as (our lowest nonce, the
    /// peer's lowest nonce, we lost).
    #[cfg(test)]
    pub(crate) collisions: Vec<(Vec<u8>, Vec<u8>, bool)>,
    /// Tests: what to do differently in authentication, and what was seen.
    #[cfg(test)]
    pub(crate) knobs: super::pubkey::TestKnobs,
}

/// The PSK store, with a `Debug` that shows nothing of it.
#[derive(Clone)]
pub(crate) struct PskHandle(pub(crate) Arc<dyn PskStore>);

impl core::fmt::Debug for PskHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PskStore")
    }
}

impl Ctx {
    pub(crate) fn kernel_req(&mut self, sa: IkeSaId, purpose: KernelPurpose) -> KernelReq {
        self.outside.kernel(sa, purpose)
    }

    /// The id the next IKE SA gets; [`Ctx::take_ike_id`] commits it.
    pub(crate) fn peek_ike_id(&self) -> IkeSaId {
        IkeSaId(self.next_ike.wrapping_add(1))
    }

    /// A new IKE SA id.
    pub(crate) fn take_ike_id(&mut self) -> IkeSaId {
        self.next_ike = self.next_ike.wrapping_add(1);
        IkeSaId(self.next_ike)
    }

    /// The reqid of a new Child SA of `peer`'s child `child`: its trap's,
    /// or a new one.
    pub(crate) fn reqid_for(&mut self, peer: &str, child: &str) -> u32 {
        if let Some(r) = self.fixed_reqid(peer, child) {
            return r;
        }
        match self.trap_reqids.get(&(peer.to_owned(), child.to_owned())) {
            Some(r) => *r,
            None => self.reqid(),
        }
    }

    /// The configured `reqid` of `peer`'s child `child`, if fixed.
    pub(crate) fn fixed_reqid(&self, peer: &str, child: &str) -> Option<u32> {
        self.peer(peer)
            .and_then(|p| p.child(child).map(|c| c.policy.reqid))
            .filter(|r| *r != 0)
    }

    /// A new kernel reqid (never 0), none that a Child SA or trap holds
    /// (a configured fixed one, or one allocated before the counter
    /// wrapped).
    pub(crate) fn reqid(&mut self) -> u32 {
        loop {
            self.next_reqid = self.next_reqid.checked_add(1).unwrap_or(1);
            let r = self.next_reqid;
            if !self.reqids.is_held(r) && !self.trap_reqids.values().any(|t| *t == r) {
                return r;
            }
        }
    }

    /// A random duration in `[0, max)` from the provider (deterministic in
    /// tests); zero if there is no randomness.
    pub(crate) fn jitter(&self, max: Duration) -> Duration {
        let n = max.as_millis();
        if n == 0 {
            return Duration::ZERO;
        }
        let r = self
            .provider
            .random_vec(8)
            .ok()
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        let ms = u128::from(r).checked_rem(n).unwrap_or(0);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// A random count in `[0, max)` from the provider (the jitter of a
    /// byte or packet limit); zero if there is no randomness.
    pub(crate) fn jitter_count(&self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        self.provider
            .random_vec(8)
            .ok()
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes)
            .map_or(0, |r| r.checked_rem(max).unwrap_or(0))
    }

    pub(crate) fn child_id(&mut self) -> ChildId {
        self.next_child = self.next_child.wrapping_add(1);
        ChildId(self.next_child)
    }

    pub(crate) fn peer(&self, name: &str) -> Option<Arc<PeerCfg>> {
        self.peer_index
            .get(name)
            .and_then(|&i| self.peers.get(i))
            .cloned()
    }
}

/// All IKE SAs of one daemon and the routing of datagrams to them.
/// Sans-IO: feed it datagrams, time, kernel results and commands; drain
/// its `poll_*` outputs after each call.
#[derive(Debug)]
pub struct Endpoint {
    ctx: Ctx,
    /// Boxed: an `IkeSa` is about 1.4 KB, and a map of them inline keeps
    /// its spare buckets (up to half of them) at that size.
    sas: HashMap<IkeSaId, Box<IkeSa>>,
    /// Our IKE SPI (SPIi as initiator, SPIr as responder) to the SA.
    by_spi: HashMap<u64, IkeSaId>,
    /// Responder SAs by the peer's address and SPIi, for retransmitted
    /// IKE_SA_INIT requests.
    by_init: HashMap<(SocketAddr, u64), IkeSaId>,
    /// The SAs of each peer configuration name, and each SA's entry
    /// there (kept in `after`: a responder's SA changes its configuration
    /// at IKE_AUTH).
    /// (The name is one `Arc<str>` shared by both maps.)
    by_peer: HashMap<Arc<str>, PeerSas>,
    peer_of: HashMap<IkeSaId, Arc<str>>,
    timers: Timers,
    /// Reauthentications under way: the new IKE SA to the old one.
    reauths: HashMap<IkeSaId, IkeSaId>,
    /// IKE SAs whose reauthentication is due, started at the end of
    /// `handle_timeout`.
    reauths_due: Vec<IkeSaId>,
    /// IKE SAs the peer did not answer that are tried again
    /// ([`Effect::Retry`]), started at the end of `handle_timeout`.
    retries_due: Vec<Retry>,
    /// Answers that outlive their IKE SA, held until the outbound SAs they
    /// wait for are in ([`Waits::Handover`]).
    held: Vec<Held>,
    /// Peer addresses where an initiation ended, so that one waiting
    /// there may go (`pace`).
    paced_free: Vec<IpAddr>,
    /// Child SAs that took over a reqid as responder of a
    /// reauthentication, by reqid (the latest): their outbound SA goes in
    /// when a sending Child SA of that reqid goes, or at their handover
    /// deadline (`reauth`). Kept by [`Effect`]s only.
    handovers: HashMap<u32, Handover>,
    /// Redirects to follow (`redirect`), started once the IKE SA they
    /// replace is gone, and those waiting for the daemon to resolve the
    /// gateway's name, by request id.
    redirects: Vec<(Box<Follow>, IpAddr)>,
    resolving: HashMap<u64, Box<Follow>>,
    resolves: VecDeque<super::Resolve>,
    next_resolve: u64,
}

/// The next try of an IKE SA ([`Effect::Retry`]): its id, configuration,
/// children and the tries before it.
type Retry = (IkeSaId, Arc<PeerCfg>, VecDeque<Arc<ChildCfg>>, u32);

/// A Child SA waiting to send ([`Endpoint::handovers`]).
#[derive(Debug)]
struct Handover {
    ike: IkeSaId,
    child: ChildId,
    /// Its outbound SA. (Boxed: 352 bytes.)
    install: Box<ChildInstall>,
}

impl Endpoint {
    /// An endpoint with these settings, peer configurations (owned or
    /// shared `Arc`s), shared keys and crypto provider.
    pub fn new(
        cfg: EndpointConfig,
        peers: impl IntoIterator<Item = impl Into<Arc<PeerCfg>>>,
        psk: Arc<dyn PskStore>,
        provider: Arc<dyn CryptoProvider>,
    ) -> Self {
        let peers: Vec<Arc<PeerCfg>> = peers.into_iter().map(Into::into).collect();
        Self {
            ctx: Ctx {
                cfg,
                provider,
                psk: PskHandle(psk),
                peer_index: index(&peers),
                peers,
                transmits: VecDeque::new(),
                reply_to: None,
                kernel_ops: VecDeque::new(),
                crl_fetches: VecDeque::new(),
                eap_secrets: PskHandle(Arc::new(|_: &Identification, _: &Identification| None)),
                radius: None,
                eap_asks: VecDeque::new(),
                jobs: Default::default(),
                pacing: Default::default(),
                events: VecDeque::new(),
                trust: Arc::new(TrustStore::default()),
                ca_hashes: Arc::new([]),
                outside: Outside::default(),
                dos: Default::default(),
                next_child: 0,
                next_reqid: 0,
                trap_reqids: HashMap::new(),
                next_ike: 0,
                reqids: Default::default(),
                effects: Vec::new(),
                wall: WallClock::default(),
                last_candidates: None,
                frag_budget: Default::default(),
                contacts: Default::default(),
                pools: Default::default(),
                #[cfg(test)]
                collisions: Vec::new(),
                #[cfg(test)]
                knobs: Default::default(),
            },
            sas: HashMap::new(),
            by_spi: HashMap::new(),
            by_init: HashMap::new(),
            by_peer: HashMap::new(),
            peer_of: HashMap::new(),
            timers: Timers::default(),
            reauths: HashMap::new(),
            reauths_due: Vec::new(),
            retries_due: Vec::new(),
            held: Vec::new(),
            paced_free: Vec::new(),
            handovers: HashMap::new(),
            redirects: Vec::new(),
            resolving: HashMap::new(),
            resolves: VecDeque::new(),
            next_resolve: 0,
        }
    }

    /// Replaces the peer configurations (a reload). Existing IKE SAs keep
    /// the configuration they were established with; new ones use these.
    /// (`Arc`s: the daemon shares them, rather than keeping a copy.)
    pub fn set_config(
        &mut self,
        _now: Instant,
        peers: impl IntoIterator<Item = impl Into<Arc<PeerCfg>>>,
    ) {
        let peers: Vec<Arc<PeerCfg>> = peers.into_iter().map(Into::into).collect();
        self.ctx.peer_index = index(&peers);
        self.ctx.peers = peers;
        self.ctx.last_candidates = None;
    }

    /// Sets the virtual IP pools (at start and on a reload): a pool of
    /// the same name and addresses keeps its leases (`cp::Pools::set`).
    pub fn set_pools(&mut self, pools: &[crate::config::PoolCfg]) {
        self.ctx.pools.set(pools);
    }

    /// The virtual IP pools with their leases, by name.
    pub fn pools(&self) -> Vec<super::PoolInfo> {
        self.ctx.pools.info()
    }

    /// The wall clock: at monotonic `now` the UTC time is `utc`. The
    /// driver calls it at start and then at least once a second while
    /// inputs come; the engine
    /// derives UTC for any later `now` from the last call (the library
    /// reads no clock).
    pub fn set_wall_clock(&mut self, now: Instant, utc: SystemTime) {
        self.ctx.wall.set(now, utc);
    }

    /// Tests: how many IKE SAs the identity-pair index holds.
    #[cfg(test)]
    pub(crate) fn contacts(&self) -> usize {
        self.ctx.contacts.len()
    }

    /// Tests: the UTC time the engine derives for `now`.
    #[cfg(test)]
    pub(crate) fn utc(&self, now: Instant) -> Option<SystemTime> {
        self.ctx.wall.utc(now)
    }

    /// Sets the fragment size ([`EndpointConfig::fragment_size`]) for the
    /// messages sent from now on (a reload); fragments already kept for
    /// retransmission go unchanged.
    pub fn set_fragment_size(&mut self, size: usize) {
        self.ctx.cfg.fragment_size = size;
    }

    /// Replaces the trust store (CA certificates, intermediates, CRLs) the
    /// peers' certificates are validated against: at start and on a
    /// reload. IKE SAs validating later use the new one; CRLs fetched
    /// for IKE SAs are added to it.
    pub fn set_trust_store(&mut self, store: Arc<TrustStore>) {
        self.ctx.ca_hashes = store.ca_key_hashes().into();
        self.ctx.trust = store;
    }

    /// The trust store, with the CRLs fetched so far.
    pub fn trust_store(&self) -> &Arc<TrustStore> {
        &self.ctx.trust
    }

    /// The answer to a [`CrlFetch`] (matched by its `req`): the IKE SA
    /// that asked validates again.
    pub fn handle_crl_fetched(&mut self, now: Instant, fetched: CrlFetched) {
        self.resume(now, fetched.req.0, Outcome::Crl(fetched.result));
    }

    /// The result of a [`Compute`](super::Compute) job (matched by its
    /// `req`): the IKE SA that asked continues.
    pub fn handle_computed(&mut self, now: Instant, computed: super::Computed) {
        let (req, outcome) = computed.outcome();
        self.resume(now, req, outcome);
    }

    /// Replaces the shared keys (a reload of `secrets`).
    pub fn set_psk_store(&mut self, psk: Arc<dyn PskStore>) {
        self.ctx.psk = PskHandle(psk);
    }

    /// Replaces the EAP secrets (swanctl's `eap-*` secrets: a user's
    /// password by its identity), looked up as the PSKs are, by the
    /// server's and the user's identities (none at first).
    pub fn set_eap_secrets(&mut self, secrets: Arc<dyn PskStore>) {
        self.ctx.eap_secrets = PskHandle(secrets);
    }

    /// EAP-RADIUS's settings (strongswan.conf's `eap-radius`; `None`: no
    /// RADIUS server, `remote.auth = eap-radius` fails) and the prefix of
    /// its Acct-Session-Ids (the daemon's start, as charon's). The servers
    /// and their secrets are dropped: the driver's RADIUS client has them.
    pub fn set_radius(&mut self, settings: Option<crate::radius::Settings>, prefix: u32) {
        self.ctx.radius = settings.map(|mut s| {
            s.servers.clear();
            (s, prefix)
        });
    }

    /// The answer to an [`EapAsk`](super::EapAsk) (matched by its
    /// `req`): the EAP method that asked goes on.
    pub fn handle_eap_answer(
        &mut self,
        now: Instant,
        req: super::EapReq,
        answer: crate::eap::Answer,
    ) {
        self.resume(now, req.0, Outcome::Eap(answer));
    }

    /// A datagram received on `local` from `remote`: an IKE message without
    /// the non-ESP marker (the daemon strips it on port 4500).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        let header = match Header::peek(bytes) {
            Ok((h, _)) => h,
            Err(e) => {
                debug!(%remote, "dropping datagram: {e}");
                return;
            }
        };
        let msg = match Message::parse(bytes, &self.ctx.cfg.limits) {
            Ok(m) => m,
            Err(e) => {
                debug!(%remote, "dropping {} message {}: {e}", header.exchange, header.message_id);
                if header.exchange == ExchangeType::IKE_SA_INIT
                    && !header.is_response()
                    && header.spi_r == 0
                {
                    ike_init::answer_parse_error(&mut self.ctx, local, remote, &header, &e, now);
                }
                return;
            }
        };
        let id = if header.exchange == ExchangeType::IKE_SA_INIT
            && !header.is_response()
            && header.spi_r == 0
        {
            match self.by_init.get(&(remote, header.spi_i)) {
                Some(id) => *id,
                None => {
                    let id = self.ctx.peek_ike_id();
                    let request = ike_init::Received {
                        local,
                        remote,
                        msg: &msg,
                        bytes,
                    };
                    if let Some(sa) = ike_init::respond(&mut self.ctx, now, id, request) {
                        self.ctx.take_ike_id();
                        self.insert(now, sa);
                    }
                    if let Some(old) = self.ctx.dos.take_evicted() {
                        self.evict(old);
                    }
                    self.run_inline(now);
                    return;
                }
            }
        } else {
            // The I flag says whether the sender is the original initiator:
            // then we are the responder and our SPI is SPIr.
            let ours = if header.is_initiator() {
                header.spi_r
            } else {
                header.spi_i
            };
            match self.by_spi.get(&ours) {
                Some(id) => *id,
                None => {
                    debug!(%remote, "dropping {} message {}: no IKE SA with SPI {ours:016x}", header.exchange, header.message_id);
                    return;
                }
            }
        };
        if let Some(sa) = self.sas.get_mut(&id) {
            sa.handle_message(&mut self.ctx, now, local, remote, msg, bytes);
        }
        self.after(id);
        self.run_inline(now);
        self.reauth_progress(now);
        self.pace(now);
    }

    /// Timers due at `now`: retransmissions, give-ups, half-open timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        for id in self.timers.expired(now) {
            if let Some(sa) = self.sas.get_mut(&id) {
                sa.handle_timeout(&mut self.ctx, now);
            }
            self.after(id);
        }
        self.start_reauths(now);
        self.start_retries(now);
        self.reauth_progress(now);
        self.pace(now);
    }

    /// The next try of each IKE SA in `retries_due`, under its old id.
    fn start_retries(&mut self, now: Instant) {
        for (id, peer, cfgs, keyingtry) in std::mem::take(&mut self.retries_due) {
            if self.sas.contains_key(&id) {
                continue;
            }
            match IkeSa::initiate_with(&mut self.ctx, now, id, peer, cfgs) {
                Ok(mut sa) => {
                    if let Some(h) = sa.phase.handshake_mut() {
                        h.keyingtry = keyingtry;
                    }
                    self.insert(now, sa);
                }
                Err(e) => {
                    warn!("IKE SA {id}: cannot try again: {e}");
                    self.ctx.events.push_back(Event::IkeFailed {
                        id,
                        peer: None,
                        reason: crate::sa::IkeFailReason::PeerNotResponding,
                    });
                }
            }
        }
    }

    /// The result of a [`KernelOp`] (matched by its `req`).
    pub fn handle_kernel_result(&mut self, now: Instant, result: KernelResult) {
        self.resume(now, result.req.0, Outcome::Kernel(result.outcome));
    }

    /// The answer of an outside operation (request `req`): its owner
    /// continues (`outside`).
    fn resume(&mut self, now: Instant, req: u64, outcome: Outcome) {
        let Some(Waiting { owner: id, then }) = self.ctx.outside.answered(req) else {
            debug!("result for unknown request {req}");
            return;
        };
        let out = match &then {
            Then::Kernel(KernelPurpose::InstallOut { child }) => Some((id, *child)),
            _ => None,
        };
        match self.sas.get_mut(&id) {
            Some(sa) => sa.resume(&mut self.ctx, now, then, outcome),
            None => orphan(&mut self.ctx, then, outcome),
        }
        if let Some((ike, child)) = out {
            self.ctx.effects.push(Effect::OutboundIn(ike, child));
        }
        self.after(id);
        self.run_inline(now);
        self.reauth_progress(now);
        self.pace(now);
    }

    /// The outbound SA of `done` is in (or failed): answers held for it
    /// go out once nothing else holds them.
    fn release_held(&mut self, ike: IkeSaId, child: ChildId) {
        if self.held.is_empty() {
            return;
        }
        for mut h in std::mem::take(&mut self.held) {
            if !h.outbound_in(ike, child) {
                self.held.push(h);
            } else if let Waits::Handover { transmit, .. } = h.waits {
                self.ctx.transmits.push_back(transmit);
            }
        }
    }

    /// The kernel reqid for trap policies of `peer`'s child `child`
    /// (`start_action: trap`): every Child SA of that child created from
    /// now on uses it, so its SAs take over the trap's policies. The same
    /// reqid until [`Endpoint::forget_trap`].
    pub fn trap_reqid(&mut self, peer: &str, child: &str) -> u32 {
        let key = (peer.to_owned(), child.to_owned());
        if let Some(r) = self.ctx.trap_reqids.get(&key) {
            return *r;
        }
        let r = match self.ctx.fixed_reqid(peer, child) {
            Some(r) => r,
            None => self.ctx.reqid(),
        };
        self.ctx.trap_reqids.insert(key, r);
        r
    }

    /// Forgets the trap reqid of `peer`'s child `child` (its trap was
    /// removed); returns it.
    pub fn forget_trap(&mut self, peer: &str, child: &str) -> Option<u32> {
        self.ctx
            .trap_reqids
            .remove(&(peer.to_owned(), child.to_owned()))
    }

    /// The kernel's MAPPING event: ESP of the inbound SA `spi` with
    /// destination `dst` (ours) arrived from `remote`, not from where the
    /// SA's UDP encapsulation says the peer is (its NAT mapping changed).
    /// The IKE SA and its Child SAs follow the peer if it is behind NAT.
    pub fn handle_mapping(&mut self, now: Instant, dst: IpAddr, spi: u32, remote: SocketAddr) {
        let _ = now;
        let found = self.sas.iter().find_map(|(id, sa)| {
            (sa.local.ip() == dst && sa.children.iter().any(|c| c.spi_in == spi)).then_some(*id)
        });
        let Some(id) = found else {
            debug!("NAT mapping event for unknown SA {spi:08x} at {dst}");
            return;
        };
        if let Some(sa) = self.sas.get_mut(&id) {
            sa.natt_mapping(&mut self.ctx, remote);
        }
        self.after(id);
    }

    /// Starts an IKE SA to `peer` with the named children (empty: the
    /// peer's first child). The first child comes up with IKE_AUTH; the
    /// others with CREATE_CHILD_SA once it is established.
    pub fn initiate(
        &mut self,
        now: Instant,
        peer: &str,
        children: &[&str],
    ) -> Result<IkeSaId, CommandError> {
        let cfg = self
            .ctx
            .peer(peer)
            .ok_or_else(|| CommandError::UnknownPeer(peer.to_string()))?;
        let id = self.ctx.peek_ike_id();
        let sa = IkeSa::initiate(&mut self.ctx, now, id, cfg, children)?;
        self.ctx.take_ike_id();
        self.insert(now, sa);
        Ok(id)
    }

    /// Runs an operator's command on IKE SA `id`, then the upkeep every
    /// call into an SA is followed by (`after`: its effects, indexes and
    /// deadline).
    fn command<R>(
        &mut self,
        id: IkeSaId,
        f: impl FnOnce(&mut IkeSa, &mut Ctx) -> Result<R, CommandError>,
    ) -> Result<R, CommandError> {
        let sa = self.sas.get_mut(&id).ok_or(CommandError::NoSuchSa)?;
        let r = f(sa, &mut self.ctx);
        self.after(id);
        r
    }

    /// Creates another Child SA on an established IKE SA (CREATE_CHILD_SA).
    pub fn initiate_child(
        &mut self,
        now: Instant,
        id: IkeSaId,
        child: &str,
    ) -> Result<(), CommandError> {
        self.command(id, |sa, ctx| sa.initiate_child(ctx, now, child))
    }

    /// Deletes an IKE SA and its children (INFORMATIONAL with D(IKE)); one
    /// still being established is abandoned at once.
    pub fn terminate_ike(&mut self, now: Instant, id: IkeSaId) -> Result<(), CommandError> {
        let r = self.command(id, |sa, ctx| {
            sa.terminate(ctx, now);
            Ok(())
        });
        self.pace(now);
        r
    }

    /// Deletes one Child SA (INFORMATIONAL with D(ESP/AH)).
    pub fn terminate_child(
        &mut self,
        now: Instant,
        id: IkeSaId,
        child: ChildId,
    ) -> Result<(), CommandError> {
        self.command(id, |sa, ctx| sa.terminate_child(ctx, now, child))
    }

    /// As a gateway: sends the client of established IKE SA `id` to `to`
    /// (RFC 5685, INFORMATIONAL with REDIRECT; `swanctl --redirect`).
    /// The client deletes the IKE SA; if it does not, it goes after
    /// `half_open_timeout`.
    pub fn redirect(
        &mut self,
        now: Instant,
        id: IkeSaId,
        to: super::Gateway,
    ) -> Result<(), CommandError> {
        self.command(id, |sa, ctx| sa.redirect_peer(ctx, now, to))
    }

    /// The IKE SAs that can move (MOBIKE, RFC 4555): established, with
    /// MOBIKE, initiated by us. The daemon asks the routing table which
    /// source address each would use toward its peer now, and calls
    /// [`roam`](Self::roam) for those where it changed.
    pub fn mobile_sas(&self) -> Vec<(IkeSaId, SocketAddr, SocketAddr)> {
        self.sas
            .iter()
            .filter(|(_, sa)| {
                sa.mobike == super::mobike::Mobike::Ours
                    && matches!(sa.phase, super::ike_sa::Phase::Established)
            })
            .map(|(id, sa)| (*id, sa.local, sa.remote))
            .collect()
    }

    /// Our address for the IKE SA `id` is now `local` (the old one went,
    /// or the route to the peer changed): with MOBIKE, the SA and its
    /// Child SAs move there and the peer is told (UPDATE_SA_ADDRESSES).
    pub fn roam(&mut self, now: Instant, id: IkeSaId, local: IpAddr) -> Result<(), CommandError> {
        self.command(id, |sa, ctx| sa.roam(ctx, now, local))
    }

    /// An event of the kernel about an SA (XFRM_MSG_EXPIRE): a soft
    /// expire of a Child SA's SA starts its rekey, a hard one (the kernel
    /// removed the SA) deletes the Child SA.
    pub fn handle_kernel_event(&mut self, now: Instant, event: KernelEvent) {
        let KernelEvent::Expire {
            protocol,
            spi,
            dst,
            hard,
        } = event;
        let found = self.sas.iter().find_map(|(id, sa)| {
            let inbound = sa.local.ip() == dst;
            sa.child_by_spi(protocol, spi, inbound)
                .or_else(|| sa.child_by_spi(protocol, spi, !inbound))
                .map(|c| (*id, c))
        });
        let Some((id, child)) = found else {
            debug!("kernel expire of unknown SA {spi:08x} to {dst}");
            return;
        };
        if let Some(sa) = self.sas.get_mut(&id) {
            sa.child_expired(&mut self.ctx, now, child, hard);
        }
        self.after(id);
    }

    /// Rekeys one Child SA (CREATE_CHILD_SA with N(REKEY_SA)); the new
    /// one is reported as [`Event::ChildRekeyed`].
    pub fn rekey_child(
        &mut self,
        now: Instant,
        id: IkeSaId,
        child: ChildId,
    ) -> Result<(), CommandError> {
        self.command(id, |sa, ctx| sa.rekey_child(ctx, now, child))
    }

    /// Rekeys an IKE SA (CREATE_CHILD_SA with an IKE proposal); the new
    /// one is reported as [`Event::IkeRekeyed`] and has the Child SAs.
    pub fn rekey_ike(&mut self, now: Instant, id: IkeSaId) -> Result<(), CommandError> {
        self.command(id, |sa, ctx| sa.rekey_ike(ctx, now))
    }

    /// Sends a liveness check (an empty INFORMATIONAL request); the answer
    /// comes as [`Event::PeerAlive`], no answer as `IkeFailed` with
    /// `PeerNotResponding`.
    pub fn send_liveness_check(&mut self, now: Instant, id: IkeSaId) -> Result<(), CommandError> {
        self.command(id, |sa, ctx| sa.liveness_check(ctx, now))
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        pop_trimmed(&mut self.ctx.transmits)
    }

    /// The next kernel operation to carry out.
    pub fn poll_kernel_op(&mut self) -> Option<KernelOp> {
        pop_trimmed(&mut self.ctx.kernel_ops)
    }

    /// The next CRL fetch to carry out (answer with
    /// [`Endpoint::handle_crl_fetched`]).
    pub fn poll_crl_fetch(&mut self) -> Option<CrlFetch> {
        pop_trimmed(&mut self.ctx.crl_fetches)
    }

    /// The next CPU job to run ([`ComputeMode::Outside`](super::ComputeMode);
    /// answer with [`Endpoint::handle_computed`]).
    pub fn poll_compute(&mut self) -> Option<super::Compute> {
        pop_trimmed(&mut self.ctx.jobs.queue)
    }

    /// The next outside operation an EAP method asks for (answer with
    /// [`Endpoint::handle_eap_answer`]).
    pub fn poll_eap_ask(&mut self) -> Option<super::EapAsk> {
        pop_trimmed(&mut self.ctx.eap_asks)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        pop_trimmed(&mut self.ctx.events)
    }

    /// When to call [`Endpoint::handle_timeout`] next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.timers.next()
    }

    /// Snapshots of all IKE SAs, in id order.
    pub fn ike_sas(&self) -> impl Iterator<Item = IkeSaInfo> + '_ {
        let mut ids: Vec<&IkeSaId> = self.sas.keys().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| self.sas.get(id).map(|sa| sa.info()))
    }

    /// Snapshots of the IKE SAs made with the peer configuration `peer`,
    /// in id order, from an index (`up` asks this for every command:
    /// sorting and copying every SA each time made 10,000 `up`s
    /// quadratic).
    pub fn ike_sas_of<'a>(&'a self, peer: &'a str) -> impl Iterator<Item = IkeSaInfo> + 'a {
        self.by_peer
            .get(peer)
            .map(PeerSas::ids)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| self.sas.get(&id))
            .map(|sa| sa.info())
    }

    /// The peer configuration named `name`.
    pub fn peer(&self, name: &str) -> Option<Arc<PeerCfg>> {
        self.ctx.peer(name)
    }

    /// A snapshot of one IKE SA.
    pub fn ike_sa(&self, id: IkeSaId) -> Option<IkeSaInfo> {
        self.sas.get(&id).map(|sa| sa.info())
    }

    /// Tests: the peer configurations each responder IKE SA still holds as
    /// candidates.
    #[cfg(test)]
    pub(crate) fn candidates_held(&self) -> Vec<usize> {
        self.sas.values().map(|s| s.candidates.len()).collect()
    }

    /// Tests: the bytes of IKE_SA_INIT material (messages, nonces,
    /// proposals, cookie, key exchange, SK_pi and SK_pr) each IKE SA still
    /// holds, plus one if any of the first is kept at all.
    #[cfg(test)]
    pub(crate) fn init_state_held(&self) -> Vec<usize> {
        self.sas
            .values()
            .map(|s| {
                s.phase.handshake().map_or(0, |h| {
                    let i = &h.init;
                    i.request.len()
                        + i.response.len()
                        + i.nonce_i.len()
                        + i.nonce_r.len()
                        + i.proposals.len()
                        + i.cookie.as_ref().map_or(0, Vec::len)
                        + usize::from(h.ke.is_some())
                        + 1
                }) + s
                    .keys
                    .as_ref()
                    .map_or(0, |k| k.sk_pi.as_bytes().len() + k.sk_pr.as_bytes().len())
            })
            .collect()
    }

    /// Tests: whether every IKE SA holds the same candidates list.
    #[cfg(test)]
    pub(crate) fn candidates_shared(&self) -> bool {
        let mut lists = self.sas.values().map(|s| &s.candidates);
        let first = lists.next();
        lists.all(|l| first.is_some_and(|f| Arc::ptr_eq(f, l)))
    }

    /// Tests: octets of the reassembly budget held, and fragments held,
    /// by all IKE SAs.
    #[cfg(test)]
    pub(crate) fn reassembly_held(&self) -> (usize, usize) {
        (
            self.ctx.frag_budget.used(),
            self.sas.values().map(|s| s.frag.held()).sum(),
        )
    }

    /// Tests: the half-open counts and cookie state.
    #[cfg(test)]
    pub(crate) fn dos(&self) -> &super::dos::Guard {
        &self.ctx.dos
    }

    /// Tests: authentication knobs and what was seen.
    #[cfg(test)]
    pub(crate) fn knobs(&mut self) -> &mut super::pubkey::TestKnobs {
        &mut self.ctx.knobs
    }

    /// Tests: the rekey collisions decided.
    #[cfg(test)]
    pub(crate) fn collisions(&self) -> &[(Vec<u8>, Vec<u8>, bool)] {
        &self.ctx.collisions
    }

    /// Number of IKE SAs (half-open ones included).
    pub fn len(&self) -> usize {
        self.sas.len()
    }

    /// Whether there are no IKE SAs.
    pub fn is_empty(&self) -> bool {
        self.sas.is_empty()
    }

    /// Starts the reauthentications that came due (`reauth`).
    fn start_reauths(&mut self, now: Instant) {
        for old in std::mem::take(&mut self.reauths_due) {
            let id = self.ctx.peek_ike_id();
            let started = match self.sas.get(&old) {
                Some(sa) => sa.start_reauth(&mut self.ctx, now, id),
                None => continue,
            };
            match started {
                Ok(new) => {
                    self.ctx.take_ike_id();
                    self.reauths.insert(id, old);
                    self.insert(now, new);
                }
                Err(e) => {
                    warn!("cannot start the reauthentication of IKE SA {old}: {e}");
                    if let Some(sa) = self.sas.get_mut(&old) {
                        sa.reauth_done(&mut self.ctx, now, id, false);
                    }
                    self.after(old);
                }
            }
        }
    }

    /// Finishes the reauthentications whose new IKE SA is up (the old
    /// one is deleted) or failed (the old one stays and retries).
    fn reauth_progress(&mut self, now: Instant) {
        if self.reauths.is_empty() {
            return;
        }
        let done: Vec<(IkeSaId, IkeSaId, bool)> = self
            .reauths
            .iter()
            .filter_map(|(&new, &old)| match self.sas.get(&new) {
                None => Some((new, old, false)),
                Some(sa) => match sa.reauth_outcome() {
                    Some(Ok(())) => Some((new, old, true)),
                    Some(Err(missing)) => {
                        // Another attempt could not end before the old
                        // IKE SA's `over_time` deadline: the new one with
                        // the Child SAs that came up beats none at all.
                        let last = self
                            .sas
                            .get(&old)
                            .is_none_or(|o| o.reauth_retry_too_late(now));
                        info!(
                            "reauthentication of IKE SA {}{old}: CHILD_SA {} did not come up with {}, {}",
                            sa.peer.name,
                            missing.join(", "),
                            sa.name(),
                            if last {
                                "no time left for another attempt: the old IKE SA goes without them"
                            } else {
                                "deleting that one"
                            }
                        );
                        Some((new, old, last))
                    }
                    None => (!self.sas.contains_key(&old)).then_some((new, old, true)),
                },
            })
            .collect();
        for (new, old, ok) in done {
            self.reauths.remove(&new);
            if !ok && let Some(sa) = self.sas.get_mut(&new) {
                // It has some of the Child SAs: they go, the old IKE SA's
                // (whose policies they share) carry on.
                sa.terminate(&mut self.ctx, now);
                self.after(new);
            }
            if let Some(sa) = self.sas.get_mut(&old) {
                sa.reauth_done(&mut self.ctx, now, new, ok);
            }
            self.after(old);
        }
    }

    /// Takes in an IKE SA made by a rekey.
    fn insert_rekeyed(&mut self, mut sa: Box<IkeSa>) {
        let id = sa.id();
        if self.by_spi.contains_key(&sa.our_spi()) {
            warn!(
                "{}: SPI {:016x} in use, dropping the rekeyed IKE SA",
                sa.name(),
                sa.our_spi()
            );
            sa.fail(
                &mut self.ctx,
                crate::sa::IkeFailReason::Internal("IKE SPI collision".into()),
            );
            return;
        }
        self.by_spi.insert(sa.our_spi(), id);
        self.sas.insert(id, sa);
        // (Within `apply_effects`, which applies what is left.)
        self.settle(id);
    }

    fn insert(&mut self, now: Instant, mut sa: IkeSa) {
        let id = sa.id();
        if self.by_spi.contains_key(&sa.our_spi()) {
            // Two SAs drew the same 64-bit SPI: refuse the newcomer.
            warn!(
                "{}: SPI {:016x} in use, dropping the new IKE SA",
                sa.name(),
                sa.our_spi()
            );
            sa.fail(
                &mut self.ctx,
                crate::sa::IkeFailReason::Internal("IKE SPI collision".into()),
            );
            if let Some(at) = self.ctx.pacing.done(id) {
                self.paced_free.push(at);
            }
            self.apply_effects();
            return;
        }
        self.by_spi.insert(sa.our_spi(), id);
        if let Some(k) = sa.init_key() {
            self.by_init.insert(k, id);
            let request = sa.phase.handshake().map_or(0, |h| h.init.request.len());
            self.ctx.dos.opened(id, k.0.ip(), request);
        }
        self.sas.insert(id, Box::new(sa));
        let _ = now;
        self.after(id);
    }

    /// Takes `id` out of the index of its peer configuration.
    fn unindex_peer(&mut self, id: IkeSaId) {
        if let Some(name) = self.peer_of.remove(&id)
            && let Some(set) = self.by_peer.get_mut(&name)
            && set.remove(id)
        {
            self.by_peer.remove(&name);
        }
    }

    /// Applies what the IKE SAs told the endpoint ([`Effect`]): the one
    /// place where an SA's input reaches the endpoint's tables and other
    /// SAs. New IKE SAs first: the other effects may name them; then the
    /// rest in the order they were pushed. Effects pushed meanwhile (an
    /// IKE SA that comes in with an SPI in use fails at once) are applied
    /// after those, before this returns.
    ///
    /// Positions the effects name in the output queues hold here: each
    /// call into an SA is followed by this before its input returns,
    /// nothing is taken from the queues meanwhile, and every effect
    /// applied in one call of this was pushed before the call took
    /// anything out of a queue or put anything into the middle of one.
    fn apply_effects(&mut self) {
        // Held answers taken out of the transmit queue in this call.
        let mut taken = 0usize;
        while !self.ctx.effects.is_empty() {
            let effects = std::mem::take(&mut self.ctx.effects);
            let mut rest = Vec::new();
            for (i, e) in effects.into_iter().enumerate() {
                match e {
                    Effect::NewSa { from, sa } => {
                        let new = sa.id();
                        // A rekey of an IKE SA being reauthenticated: the
                        // new one is what the reauthentication replaces.
                        for old in self.reauths.values_mut() {
                            if *old == from {
                                *old = new;
                            }
                        }
                        // Requests about the children it took over answer
                        // to it.
                        self.ctx.outside.hand_over(from, new, |c| sa.has_child(c));
                        self.insert_rekeyed(sa);
                    }
                    e => rest.push((i, e)),
                }
            }
            // Child SAs that sent from now on, by the index of their
            // `ChildGone`.
            let mut handed: Vec<(usize, IkeSaId, ChildId)> = Vec::new();
            for (i, e) in rest {
                match e {
                    Effect::NewSa { .. } => {}
                    Effect::Adopted { from, to } => {
                        for h in self.handovers.values_mut() {
                            if h.ike == from {
                                h.ike = to;
                            }
                        }
                    }
                    Effect::Reauth(id) => self.reauths_due.push(id),
                    Effect::Retry {
                        id,
                        peer,
                        cfgs,
                        keyingtry,
                    } => self.retries_due.push((id, peer, cfgs, keyingtry)),
                    Effect::OutboundIn(ike, child) => self.release_held(ike, child),
                    Effect::AwaitHandover {
                        reqid,
                        ike,
                        child,
                        install,
                    } => {
                        let h = Handover {
                            ike,
                            child,
                            install,
                        };
                        // The one it replaces never sends by a handover.
                        if let Some(old) = self.handovers.insert(reqid, h)
                            && let Some(c) = self.child_mut(old.ike, old.child)
                        {
                            c.out_pending = None;
                        }
                    }
                    Effect::HandedOver { reqid, child } => {
                        if self.handovers.get(&reqid).is_some_and(|h| h.child == child) {
                            self.handovers.remove(&reqid);
                            trim_map(&mut self.handovers);
                        }
                    }
                    Effect::ChildGone {
                        reqid,
                        child,
                        outbound,
                        removal,
                        cfg,
                    } => {
                        if let Some((ike, waiting)) =
                            self.child_gone(reqid, child, outbound, removal, &cfg.name)
                        {
                            handed.push((i, ike, waiting));
                        }
                    }
                    Effect::Duplicates { ike, dups, now } => self.duplicates(ike, dups, now),
                    Effect::Redirect(f) => self.redirect_to(f),
                    Effect::AnswerDelete {
                        ike,
                        mid,
                        at,
                        since,
                    } => {
                        let children: Vec<(IkeSaId, ChildId)> = handed
                            .iter()
                            .filter(|(j, ..)| (since..i).contains(j))
                            .map(|&(_, ike, child)| (ike, child))
                            .collect();
                        if children.is_empty() {
                            continue;
                        }
                        let Some(t) = at
                            .checked_sub(taken)
                            .and_then(|at| self.ctx.transmits.remove(at))
                        else {
                            continue;
                        };
                        taken = taken.saturating_add(1);
                        debug!(
                            "{}: answer to the delete held until {} outbound SAs are in",
                            self.sas.get(&ike).map(|sa| sa.name()).unwrap_or_default(),
                            children.len()
                        );
                        self.held.push(Held {
                            mid,
                            exchange: ExchangeType::INFORMATIONAL,
                            waits: Waits::Handover {
                                transmit: t,
                                children,
                            },
                        });
                    }
                }
            }
        }
    }

    /// Child SA `child` with `reqid` went (`Effect::ChildGone`): the entry
    /// of the reqid goes if it was the one waiting; if it sent, the one
    /// waiting sends from now on, its outbound SA going in just before
    /// `removal`. The Child SA that sends now, if any.
    fn child_gone(
        &mut self,
        reqid: u32,
        child: ChildId,
        outbound: bool,
        removal: Option<KernelReq>,
        name: &str,
    ) -> Option<(IkeSaId, ChildId)> {
        let waiting = self.handovers.get(&reqid)?.child;
        if waiting != child && !outbound {
            return None;
        }
        let h = self.handovers.remove(&reqid)?;
        trim_map(&mut self.handovers);
        // It was waiting to send: it never will.
        if waiting == child {
            return None;
        }
        // A Child SA of a reauthentication took over this one's reqid: it
        // sends from now on, before this one's SAs go.
        debug!(
            "CHILD_SA {}{waiting} sends from now on, {name}{child} goes",
            h.install.name
        );
        let req = self
            .ctx
            .kernel_req(h.ike, KernelPurpose::InstallOut { child: h.child });
        let op = KernelOp::InstallOutbound {
            req,
            child: *h.install,
        };
        let ops = &mut self.ctx.kernel_ops;
        match removal.and_then(|r| ops.iter().rposition(|o| o.req() == Some(r))) {
            Some(at) => ops.insert(at, op),
            None => ops.push_back(op),
        }
        if let Some(c) = self.child_mut(h.ike, h.child) {
            c.outbound = true;
            c.out_pending = None;
        }
        Some((h.ike, h.child))
    }

    /// IKE SA `ike` answered its IKE_AUTH (`Effect::Duplicates`): the
    /// other IKE SAs of its identity pair go as `dups` says (`unique`).
    fn duplicates(&mut self, ike: IkeSaId, dups: Dups, now: Instant) {
        let Some(sa) = self.sas.get(&ike) else {
            return;
        };
        let Some(pair) = sa.pair() else {
            return;
        };
        let (peer, remote) = (sa.peer.name.clone(), sa.remote.ip());
        let others: Vec<IkeSaId> = self
            .ctx
            .contacts
            .of(&pair)
            .iter()
            .map(|c| c.ike)
            .filter(|c| *c != ike)
            .collect();
        for id in others {
            let Some(old) = self.sas.get_mut(&id) else {
                continue;
            };
            // `replace`: only the live ones of the same connection.
            if dups == Dups::Replace
                && (old.peer.name != peer || !old.seen().is_some_and(|s| s.live))
            {
                continue;
            }
            old.duplicate_of(&mut self.ctx, ike, remote, dups, now);
            self.settle(id);
        }
    }

    /// Child SA `child` of IKE SA `ike`, if both are there.
    fn child_mut(
        &mut self,
        ike: IkeSaId,
        child: ChildId,
    ) -> Option<&mut super::child_create::Child> {
        self.sas
            .get_mut(&ike)
            .and_then(|sa| sa.children.iter_mut().find(|c| c.id == child))
    }

    fn after(&mut self, id: IkeSaId) {
        self.apply_effects();
        self.settle(id);
        if !self.redirects.is_empty() {
            self.start_redirects();
        }
    }

    /// A redirect to follow: now if the gateway is an address, else once
    /// the daemon resolved its name.
    fn redirect_to(&mut self, f: Box<Follow>) {
        match &f.to {
            super::Gateway::Addr(ip) => {
                let ip = *ip;
                self.redirects.push((f, ip));
            }
            super::Gateway::Fqdn(name) => {
                let req = self.next_resolve;
                self.next_resolve = req.wrapping_add(1);
                debug!(
                    "resolving {name}, the gateway IKE SA {} is redirected to",
                    f.old
                );
                self.resolves.push_back(super::Resolve {
                    req,
                    name: name.clone(),
                });
                self.resolving.insert(req, f);
            }
        }
    }

    /// Starts the new IKE SAs of redirects whose old IKE SA is gone.
    fn start_redirects(&mut self) {
        for (f, ip) in std::mem::take(&mut self.redirects) {
            if f.keep_id && self.sas.contains_key(&f.old) {
                self.redirects.push((f, ip));
                continue;
            }
            let id = if f.keep_id {
                f.old
            } else {
                self.ctx.take_ike_id()
            };
            let now = f.now;
            let started = f.start(&mut self.ctx, now, id, ip);
            match started {
                Ok(sa) => self.insert(now, sa),
                Err(e) => {
                    warn!("IKE SA {id}: cannot follow the redirect: {e}");
                    self.ctx.events.push_back(Event::IkeFailed {
                        id,
                        peer: None,
                        reason: crate::sa::IkeFailReason::Redirect(e.to_string()),
                    });
                }
            }
        }
    }

    /// The next name to resolve for a redirect (`redirect`): answer with
    /// [`handle_resolved`](Self::handle_resolved).
    pub fn poll_resolve(&mut self) -> Option<super::Resolve> {
        self.resolves.pop_front()
    }

    /// The addresses of the name of resolve request `req` (the first is
    /// used), or why there are none.
    pub fn handle_resolved(&mut self, now: Instant, req: u64, addrs: Result<Vec<IpAddr>, String>) {
        let Some(mut f) = self.resolving.remove(&req) else {
            debug!("resolved name of unknown request {req}");
            return;
        };
        trim_map(&mut self.resolving);
        match addrs.and_then(|a| a.first().copied().ok_or_else(|| "no address".to_owned())) {
            Ok(ip) => {
                f.now = now;
                self.redirects.push((f, ip));
                self.start_redirects();
            }
            Err(e) => {
                info!(
                    "IKE SA {}{}: cannot resolve {}, the gateway it was redirected to: {e}",
                    f.peer.name, f.old, f.to
                );
                if f.keep_id {
                    self.ctx.events.push_back(Event::IkeFailed {
                        id: f.old,
                        peer: Some(f.peer.name.clone()),
                        reason: crate::sa::IkeFailReason::Redirect(format!(
                            "to {}: cannot resolve it: {e}",
                            f.to
                        )),
                    });
                }
            }
        }
        self.pace(now);
    }

    /// Removes half-open SA `id` without a word to its peer: its place
    /// went to a request that returned a cookie (`sa::dos`).
    fn evict(&mut self, id: IkeSaId) {
        if let Some(sa) = self.sas.get_mut(&id) {
            sa.teardown(&mut self.ctx, false);
        }
        self.after(id);
    }

    /// Jobs computed inline ([`ComputeMode::Inline`](super::ComputeMode)):
    /// their owners continue now, as they would when a driver's answer
    /// came.
    fn run_inline(&mut self, now: Instant) {
        while let Some(done) = self.ctx.jobs.done.pop_front() {
            let (req, outcome) = done.outcome();
            self.resume(now, req, outcome);
        }
    }

    /// IKE SAs waiting for a slot toward an address where one came free
    /// send their IKE_SA_INIT (`pacing`).
    fn pace(&mut self, now: Instant) {
        while let Some(at) = self.paced_free.pop() {
            let window = self.ctx.cfg.init_window;
            loop {
                let sas = &self.sas;
                let Some(id) = self.ctx.pacing.next(at, window, |id| {
                    sas.get(&id).is_some_and(|sa| sa.waits_to_initiate())
                }) else {
                    break;
                };
                if let Some(sa) = self.sas.get_mut(&id) {
                    sa.initiate_now(&mut self.ctx, now);
                }
                self.after(id);
            }
        }
    }

    /// Index and timer upkeep of `id`, its effects applied.
    fn settle(&mut self, id: IkeSaId) {
        if !self.sas.get(&id).is_some_and(|sa| sa.initiating())
            && let Some(at) = self.ctx.pacing.done(id)
        {
            self.paced_free.push(at);
        }
        let Some(sa) = self.sas.get(&id) else {
            self.timers.set(id, None);
            self.unindex_peer(id);
            return;
        };
        if self.peer_of.get(&id).map(|n| &**n) != Some(sa.peer.name.as_str()) {
            let name = sa.peer.name.clone();
            self.unindex_peer(id);
            match self.by_peer.get_key_value(name.as_str()) {
                Some((key, _)) => {
                    let key = key.clone();
                    if let Some(set) = self.by_peer.get_mut(&key) {
                        set.insert(id);
                    }
                    self.peer_of.insert(id, key);
                }
                None => {
                    let key: Arc<str> = Arc::from(name);
                    self.by_peer.insert(key.clone(), PeerSas::One(id));
                    self.peer_of.insert(id, key);
                }
            }
        }
        let Some(sa) = self.sas.get(&id) else {
            return;
        };
        if sa.is_dead() {
            if let Some(sa) = self.sas.remove(&id) {
                // Its virtual IPs go offline, still the identity's.
                for h in &sa.vips.held {
                    self.ctx.pools.release(h);
                }
                if let Some(pair) = sa.pair() {
                    self.ctx.contacts.remove(&pair, id);
                }
                if self.by_spi.get(&sa.our_spi()) == Some(&id) {
                    self.by_spi.remove(&sa.our_spi());
                }
                if let Some(k) = sa.init_key() {
                    self.by_init.remove(&k);
                }
                self.ctx.dos.closed(id);
                trim_map(&mut self.sas);
                trim_map(&mut self.by_spi);
                trim_map(&mut self.by_init);
            }
            self.timers.set(id, None);
            self.unindex_peer(id);
            return;
        }
        if !sa.half_open()
            && let Some(k) = sa.init_key()
            && self.by_init.remove(&k).is_some()
        {
            self.ctx.dos.closed(id);
            trim_map(&mut self.by_init);
        }
        self.timers.set(id, sa.deadline());
        self.index_contact(id);
    }

    /// Brings `id`'s entry in the identity-pair index (`unique`) up to
    /// date, building the key only when the entry changes.
    fn index_contact(&mut self, id: IkeSaId) {
        let Some(sa) = self.sas.get(&id) else {
            return;
        };
        let want = sa.seen();
        if want == self.ctx.contacts.seen(id) {
            return;
        }
        let Some(pair) = sa.pair() else {
            return;
        };
        match want {
            Some(s) => self.ctx.contacts.set(
                pair,
                Contact {
                    ike: id,
                    peer: sa.peer.clone(),
                    remote: s.remote,
                    live: s.live,
                },
            ),
            None => self.ctx.contacts.remove(&pair, id),
        }
    }
}

/// The IKE SAs of one peer configuration. Usually one (a site-to-site
/// connection; 1,000 tunnels are 1,000 connections in the tunnel
/// benchmark), so without a tree node for it (about 100 bytes).
#[derive(Debug)]
enum PeerSas {
    One(IkeSaId),
    Many(BTreeSet<IkeSaId>),
}

impl PeerSas {
    fn insert(&mut self, id: IkeSaId) {
        match self {
            Self::One(x) if *x == id => {}
            Self::One(x) => *self = Self::Many(BTreeSet::from([*x, id])),
            Self::Many(s) => {
                s.insert(id);
            }
        }
    }

    /// Removes `id`; whether none is left.
    fn remove(&mut self, id: IkeSaId) -> bool {
        match self {
            Self::One(x) => *x == id,
            Self::Many(s) => {
                s.remove(&id);
                let left = s.len();
                if left == 1
                    && let Some(&x) = s.first()
                {
                    *self = Self::One(x);
                }
                left == 0
            }
        }
    }

    /// In id order.
    fn ids(&self) -> Vec<IkeSaId> {
        match self {
            Self::One(x) => vec![*x],
            Self::Many(s) => s.iter().copied().collect(),
        }
    }
}

/// Spare room a queue or map keeps when it shrinks (entries).
const KEEP: usize = 64;

/// `pop_front`, giving back the room of a burst once the queue is empty:
/// 1,000 tunnels started at once leave each output queue with room for
/// 1,000 entries of up to 368 bytes, over a kilobyte per IKE SA that
/// the heap kept for good.
fn pop_trimmed<T>(q: &mut VecDeque<T>) -> Option<T> {
    let x = q.pop_front();
    if q.is_empty() && q.capacity() > KEEP {
        q.shrink_to(KEEP);
    }
    x
}

/// Gives back a map's room once it holds under a quarter of it (the
/// indexes of half-open SAs and of kernel requests after a burst, of
/// SAs after many went).
pub(crate) fn trim_map<K: Eq + std::hash::Hash, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > KEEP && m.len().saturating_mul(4) < m.capacity() {
        m.shrink_to(m.len().saturating_mul(2).max(KEEP));
    }
}

/// Peer configurations by name; the first of a duplicated name wins, as
/// a scan would find it.
fn index(peers: &[Arc<PeerCfg>]) -> HashMap<String, usize> {
    let mut m = HashMap::with_capacity(peers.len());
    for (i, p) in peers.iter().enumerate() {
        m.entry(p.name.clone()).or_insert(i);
    }
    m
}

/// A result for an IKE SA that is gone: free an SPI it allocated; keep
/// the CRLs fetched. (Children being installed were removed when the SA
/// went.)
fn orphan(ctx: &mut Ctx, then: Then, outcome: Outcome) {
    if let Outcome::Crl(result) = outcome {
        super::ike_auth::add_crls(ctx, result);
        return;
    }
    match (then, outcome) {
        (
            Then::Kernel(KernelPurpose::AllocSpi {
                protocol, local, ..
            }),
            Outcome::Kernel(Ok(KernelOk::SpiAllocated(spi))),
        ) => ctx.kernel_ops.push_back(KernelOp::ReleaseSpi {
            protocol,
            local,
            spi,
        }),
        (
            Then::Kernel(KernelPurpose::AllocCpi { local, .. }),
            Outcome::Kernel(Ok(KernelOk::CpiAllocated(cpi))),
        ) => ctx
            .kernel_ops
            .push_back(KernelOp::ReleaseCpi { local, cpi }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sas_of_a_peer_in_id_order_one_without_a_tree() {
        let mut p = PeerSas::One(IkeSaId(5));
        p.insert(IkeSaId(5));
        assert!(matches!(p, PeerSas::One(IkeSaId(5))));
        p.insert(IkeSaId(2));
        p.insert(IkeSaId(9));
        assert_eq!(p.ids(), [IkeSaId(2), IkeSaId(5), IkeSaId(9)]);
        assert!(!p.remove(IkeSaId(5)));
        assert!(!p.remove(IkeSaId(7)));
        assert!(!p.remove(IkeSaId(2)));
        assert!(matches!(p, PeerSas::One(IkeSaId(9))));
        assert!(!p.remove(IkeSaId(3)));
        assert!(p.remove(IkeSaId(9)));
    }

    #[test]
    fn queues_and_maps_give_back_the_room_of_a_burst() {
        let mut q: VecDeque<u64> = (0..1000).collect();
        while pop_trimmed(&mut q).is_some() {
            assert!(q.is_empty() || q.capacity() >= 1000 - 64);
        }
        assert!(q.capacity() <= KEEP, "{}", q.capacity());
        let mut m: HashMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
        let full = m.capacity();
        for i in 0..1000 {
            m.remove(&i);
            trim_map(&mut m);
            // Shrunk only below a quarter, never below what is in it.
            assert!(m.capacity() >= m.len());
            if m.len() * 4 >= full {
                // (capacity() counts out the tombstones of removed entries)
                assert!(m.capacity() > full / 2, "{} at {}", m.capacity(), m.len());
            }
        }
        assert!(m.capacity() <= 2 * KEEP, "{}", m.capacity());
    }
}
