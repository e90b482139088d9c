//! IKE_SA_INIT (RFC 7296 1.2, 2.6, 2.23), both roles: proposals and key
//! exchange, nonces, NAT detection, COOKIE and INVALID_KE_PAYLOAD.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, trace};

use super::child_create::NONCE_LEN;
use super::compute::Done;
use super::config::{AddrSpec, ChildCfg, Childless, PeerCfg};
use super::dos;
use super::endpoint::Ctx;
use super::frag::Packets;
use super::ike_sa::{
    Handshake, IkeSa, IkeSaParams, InitState, InitWait, KeyInput, Keys, Phase, Task, backoff,
    error_notify, later, notify,
};
use super::natt::{NatT, fake_source};
use super::timers::IkeTimer;
use super::types::{CommandError, Event, IkeFailReason, IkeSaId};
use crate::crypto::auth::nat_detection_hash;
use crate::crypto::proposal::{self, KeCheck, SelectOptions};
use crate::wire::codes::{ExchangeType, KeId, NotifyType, TransformType};
use crate::wire::sa::Proposal;
use crate::wire::{self, Flags, Header, Message, Notify, ParseError, Payload, rules};

/// A random, nonzero IKE SPI.
pub(crate) fn random_spi(ctx: &Ctx) -> Result<u64, String> {
    for _ in 0..8 {
        let mut b = [0u8; 8];
        ctx.provider
            .fill_random(&mut b)
            .map_err(|e| e.to_string())?;
        let spi = u64::from_be_bytes(b);
        if spi != 0 {
            return Ok(spi);
        }
    }
    Err("random source gives zeros".into())
}

pub(crate) fn first_ke(proposals: &[Proposal]) -> Option<KeId> {
    proposals.first().and_then(|p| {
        p.transforms
            .iter()
            .find(|t| t.transform_type == TransformType::KE)
            .map(|t| KeId(t.id))
    })
}

pub(crate) fn nat_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> [u8; 20] {
    nat_detection_hash(
        &spi_i.to_be_bytes(),
        &spi_r.to_be_bytes(),
        addr.ip(),
        addr.port(),
    )
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// `(nat_local, nat_remote)` from the NAT_DETECTION notifies of `msg`, sent
/// by the peer with SPIs `spi_i`/`spi_r`. No notifies: no NAT known.
pub(crate) fn nat_detected(
    msg: &Message,
    spi_i: u64,
    spi_r: u64,
    local: SocketAddr,
    remote: SocketAddr,
) -> (bool, bool) {
    let hashes = |t: NotifyType| -> Vec<[u8; 20]> {
        msg.iter()
            .filter_map(|p| match p {
                Payload::Notify(n) if n.notify_type == t => n.nat_detection_hash(),
                _ => None,
            })
            .collect()
    };
    let src = hashes(NotifyType::NAT_DETECTION_SOURCE_IP);
    let dst = hashes(NotifyType::NAT_DETECTION_DESTINATION_IP);
    let nat_local = !dst.is_empty() && !dst.contains(&nat_hash(spi_i, spi_r, local));
    let nat_remote = !src.is_empty() && !src.contains(&nat_hash(spi_i, spi_r, remote));
    (nat_local, nat_remote)
}

impl IkeSa {
    /// Initiator of an IKE SA without a Child SA in IKE_AUTH (RFC 6023):
    /// its connection has no children, or `childless = force` (its
    /// children follow with CREATE_CHILD_SA).
    pub(crate) fn childless(&self) -> bool {
        self.initiator
            && (self.forced_childless()
                || self.children.is_empty() && self.pending_children.is_empty())
    }

    /// `childless = force`.
    fn forced_childless(&self) -> bool {
        self.peer.behaviour.childless == Childless::Force
    }

    /// Initiator: a new IKE SA to `peer`; sends IKE_SA_INIT.
    pub(crate) fn initiate(
        ctx: &mut Ctx,
        now: Instant,
        id: IkeSaId,
        peer: Arc<PeerCfg>,
        children: &[&str],
    ) -> Result<Self, CommandError> {
        let mut cfgs = VecDeque::new();
        // A connection without children makes a childless IKE SA
        // (RFC 6023), if the responder supports it.
        if children.is_empty()
            && let Some(first) = peer.children.first()
        {
            cfgs.push_back(first.clone());
        }
        for name in children {
            let c = peer.child(name).ok_or_else(|| CommandError::UnknownChild {
                peer: peer.name.clone(),
                child: (*name).to_string(),
            })?;
            cfgs.push_back(c.clone());
        }
        Self::initiate_with(ctx, now, id, peer, cfgs)
    }

    /// Initiator: a new IKE SA to `peer` that brings up `cfgs` (the first
    /// with IKE_AUTH), from its first local address of the remote
    /// address's family to its first remote address.
    pub(crate) fn initiate_with(
        ctx: &mut Ctx,
        now: Instant,
        id: IkeSaId,
        peer: Arc<PeerCfg>,
        cfgs: VecDeque<Arc<ChildCfg>>,
    ) -> Result<Self, CommandError> {
        let remote_ip = peer
            .remote_addrs
            .iter()
            .find_map(|a| match a {
                AddrSpec::Addr(ip) => Some(*ip),
                AddrSpec::Any => None,
            })
            .ok_or_else(|| CommandError::NoRemoteAddress(peer.name.clone()))?;
        let local_ip = peer
            .local_addrs
            .iter()
            .find_map(|a| match a {
                AddrSpec::Addr(ip) if ip.is_ipv4() == remote_ip.is_ipv4() => Some(*ip),
                _ => None,
            })
            .unwrap_or_else(|| unspecified(remote_ip));
        let remote = SocketAddr::new(remote_ip, peer.remote_port);
        let to = Target { local_ip, remote };
        let redirect = Self::redirect_initial(ctx);
        Self::begin(ctx, now, id, peer, cfgs, to, true, redirect)
    }

    /// Starts an IKE SA from `local_ip` to `remote` that brings up `cfgs`
    /// (the first with IKE_AUTH), at once.
    pub(crate) fn start(
        ctx: &mut Ctx,
        now: Instant,
        id: IkeSaId,
        peer: Arc<PeerCfg>,
        cfgs: VecDeque<Arc<ChildCfg>>,
        local_ip: IpAddr,
        remote: SocketAddr,
    ) -> Result<Self, CommandError> {
        let to = Target { local_ip, remote };
        let redirect = Self::redirect_initial(ctx);
        Self::begin(ctx, now, id, peer, cfgs, to, false, redirect)
    }

    /// Starts an IKE SA toward the gateway a redirect named, with the
    /// redirect state `redirect` (REDIRECTED_FROM and the loop limit's
    /// count) in its IKE_SA_INIT.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_redirected(
        ctx: &mut Ctx,
        now: Instant,
        id: IkeSaId,
        peer: Arc<PeerCfg>,
        cfgs: VecDeque<Arc<ChildCfg>>,
        local_ip: IpAddr,
        remote: SocketAddr,
        redirect: Box<super::redirect::Redirect>,
    ) -> Result<Self, CommandError> {
        let to = Target { local_ip, remote };
        Self::begin(ctx, now, id, peer, cfgs, to, false, Some(redirect))
    }

    /// Makes an IKE SA toward `to` that brings up `cfgs`; `paced`: its
    /// IKE_SA_INIT waits for a slot in the window of initiations toward
    /// the peer's address (`pacing`) if there is none now.
    #[allow(clippy::too_many_arguments)]
    fn begin(
        ctx: &mut Ctx,
        now: Instant,
        id: IkeSaId,
        peer: Arc<PeerCfg>,
        cfgs: VecDeque<Arc<ChildCfg>>,
        to: Target,
        paced: bool,
        redirect: Option<Box<super::redirect::Redirect>>,
    ) -> Result<Self, CommandError> {
        let Target { local_ip, remote } = to;
        let internal = |e: String| CommandError::Internal(e);
        let spi_i = random_spi(ctx).map_err(internal)?;
        let nonce_i = ctx
            .provider
            .random_vec(NONCE_LEN)
            .map_err(|e| internal(e.to_string()))?;
        let group = first_ke(&peer.ike_proposals).ok_or_else(|| {
            internal(format!(
                "peer '{}' has no IKE proposal with a key exchange",
                peer.name
            ))
        })?;
        // Outside: a job makes it when IKE_SA_INIT is to go (`init_ke`).
        let ke = match ctx.cfg.compute {
            super::ComputeMode::Inline => Some(
                ctx.provider
                    .start_key_exchange(group)
                    .map_err(|e| internal(e.to_string()))?,
            ),
            super::ComputeMode::Outside => None,
        };
        let handshake = Box::new(Handshake {
            init: InitState {
                nonce_i,
                proposals: peer.ike_proposals.clone(),
                ..InitState::default()
            },
            ke,
            ..Handshake::default()
        });
        let local_id = super::ike_auth::local_identity(&peer);
        let mut sa = IkeSa::new(IkeSaParams {
            id,
            initiator: true,
            phase: Phase::InitSent(handshake),
            local: SocketAddr::new(local_ip, peer.local_port),
            remote,
            spi_i,
            spi_r: 0,
            peer,
        });
        sa.local_id = Some(local_id);
        sa.pending_children = cfgs;
        sa.redirect = redirect;
        if paced && !ctx.pacing.admit(id, remote.ip(), ctx.cfg.init_window) {
            debug!(
                "IKE SA {}: waiting for one of the {} initiations to {} under way",
                sa.name(),
                ctx.cfg.init_window,
                remote.ip()
            );
            return Ok(sa);
        }
        if let Err(e) = sa.go(ctx, now) {
            ctx.pacing.done(id);
            return Err(internal(e));
        }
        Ok(sa)
    }

    /// Initiator: sends the first IKE_SA_INIT (the first child's SPI is
    /// asked for meanwhile).
    fn go(&mut self, ctx: &mut Ctx, now: Instant) -> Result<(), String> {
        // The first child's inbound SPI, in parallel with IKE_SA_INIT; with
        // a %any local address it waits until the response tells us ours.
        if !self.local.ip().is_unspecified()
            && !self.forced_childless()
            && let Some(first) = self.pending_children.pop_front()
        {
            // Usually the only one: give back the queue's room (four
            // 200-byte entries).
            if self.pending_children.is_empty() {
                self.pending_children.shrink_to_fit();
            }
            self.new_child(ctx, first, true);
        }
        info!(
            "initiating IKE SA {} {} => {}",
            self.name(),
            self.local.ip(),
            self.remote.ip()
        );
        self.send_init(ctx, now)
    }

    /// Initiator: whether it waits for a slot to send its first
    /// IKE_SA_INIT (`pacing`).
    pub(crate) fn waits_to_initiate(&self) -> bool {
        matches!(&self.phase, Phase::InitSent(h) if h.init.request.is_empty()) && !self.is_dead()
    }

    /// Initiator: an initiation under way (IKE_SA_INIT sent, IKE_AUTH not
    /// done), which holds a slot of the window toward its peer.
    pub(crate) fn initiating(&self) -> bool {
        self.initiator
            && !self.is_dead()
            && matches!(
                self.phase,
                Phase::InitSent(_) | Phase::AwaitSpi(_) | Phase::AuthSent(_)
            )
    }

    /// Initiator: its slot came (`pacing`): sends its IKE_SA_INIT.
    pub(crate) fn initiate_now(&mut self, ctx: &mut Ctx, now: Instant) {
        if let Err(e) = self.go(ctx, now) {
            self.fail(ctx, IkeFailReason::Internal(e));
        }
    }

    /// Initiator: (re)sends IKE_SA_INIT with the current proposals, KE and cookie.
    pub(crate) fn send_init(&mut self, ctx: &mut Ctx, now: Instant) -> Result<(), String> {
        if self.ask_init_ke(ctx)? {
            return Ok(());
        }
        let h = self.phase.handshake().ok_or("no IKE_SA_INIT state")?;
        let ke = h.ke.as_ref().ok_or("no key exchange")?;
        let mut payloads = Vec::new();
        if let Some(c) = &h.init.cookie {
            payloads.push(Payload::Notify(Notify::cookie(c.clone())));
        }
        payloads.push(Payload::Sa(h.init.proposals.clone()));
        payloads.push(Payload::Ke(wire::KeyExchange {
            group: ke.method(),
            data: ke.public_value().to_vec(),
        }));
        payloads.push(Payload::Nonce(h.init.nonce_i.clone()));
        if self.childless() {
            payloads.push(Payload::Notify(Notify::new(
                NotifyType::CHILDLESS_IKEV2_SUPPORTED,
                Vec::new(),
            )));
        }
        if self.peer.fragmentation.announce() {
            payloads.push(Payload::Notify(fragmentation_supported()));
        }
        payloads.extend(super::pubkey::announce(ctx));
        payloads.extend(self.redirect_announce());
        let source = if self.peer.encap {
            fake_source()
        } else {
            self.local
        };
        payloads.push(Payload::Notify(Notify::nat_detection(
            false,
            nat_hash(self.spi_i, 0, source),
        )));
        payloads.push(Payload::Notify(Notify::nat_detection(
            true,
            nat_hash(self.spi_i, 0, self.remote),
        )));
        let bytes = Message {
            header: self.header(ExchangeType::IKE_SA_INIT, false, 0),
            payloads,
        }
        .emit()
        .map_err(|e| e.to_string())?;
        if let Some(h) = self.phase.handshake_mut() {
            h.init.request = bytes.clone();
        }
        self.transmit(ctx, bytes.clone());
        self.window.request_sent(
            0,
            Task::IkeInit,
            Packets::One(bytes),
            later(now, backoff(ctx, 0)),
        );
        Ok(())
    }

    /// Initiator: the IKE_SA_INIT response.
    pub(crate) fn init_response(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        local: SocketAddr,
        msg: Message,
        bytes: &[u8],
    ) {
        if !matches!(self.phase, Phase::InitSent(_)) || msg.header.message_id != 0 {
            debug!("{}: dropping unexpected IKE_SA_INIT response", self.name());
            return;
        }
        if self
            .phase
            .handshake()
            .is_some_and(|h| h.init_wait.is_some())
        {
            debug!(
                "{}: dropping IKE_SA_INIT response, one is being completed",
                self.name()
            );
            return;
        }
        if let Err(e) = rules::check(&msg) {
            debug!(
                "{}: dropping invalid IKE_SA_INIT response: {e}",
                self.name()
            );
            return;
        }
        if self.init_redirect(ctx, now, &msg) {
            return;
        }
        if let Some(cookie) = notify(&msg, NotifyType::COOKIE).and_then(Notify::cookie_data) {
            let Some(h) = self.phase.handshake_mut() else {
                return self.no_handshake(ctx);
            };
            if h.init.cookie.as_deref() == Some(cookie) {
                debug!("{}: same COOKIE again, ignoring", self.name());
                return;
            }
            h.init.cookie = Some(cookie.to_vec());
            debug!(
                "{}: responder asks for a COOKIE, retrying with it",
                self.name()
            );
            if let Err(e) = self.send_init(ctx, now) {
                self.fail(ctx, IkeFailReason::Internal(e));
            }
            return;
        }
        if let Some(g) =
            notify(&msg, NotifyType::INVALID_KE_PAYLOAD).and_then(Notify::invalid_ke_group)
        {
            let Some(h) = self.phase.handshake_mut() else {
                return self.no_handshake(ctx);
            };
            h.init.ke_retries = h.init.ke_retries.saturating_add(1);
            let promoted = proposal::promote_ke(&h.init.proposals, g);
            let ke = promoted
                .as_ref()
                .and_then(|_| ctx.provider.start_key_exchange(g).ok());
            match (promoted, ke) {
                (Some(p), Some(ke)) if h.init.ke_retries <= ctx.cfg.max_invalid_ke_retries => {
                    h.init.proposals = p;
                    let old = h.ke.replace(ke).map(|k| k.method());
                    info!(
                        "{}: peer didn't accept key exchange {old:?}, it requested {g}; retrying",
                        self.name(),
                    );
                    if let Err(e) = self.send_init(ctx, now) {
                        self.fail(ctx, IkeFailReason::Internal(e));
                    }
                }
                _ => self.fail(ctx, IkeFailReason::InvalidKe { requested: g }),
            }
            return;
        }
        if let Some(t) = error_notify(&msg) {
            let reason = match t {
                NotifyType::NO_PROPOSAL_CHOSEN => IkeFailReason::NoProposalChosen {
                    by_peer: true,
                    detail: self
                        .phase
                        .handshake()
                        .map(|h| proposal::display_list(&h.init.proposals).to_string())
                        .unwrap_or_default(),
                },
                NotifyType::INVALID_SYNTAX => IkeFailReason::InvalidSyntax {
                    by_peer: true,
                    detail: String::new(),
                },
                NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD => {
                    IkeFailReason::UnsupportedCriticalPayload { by_peer: true }
                }
                NotifyType::AUTHENTICATION_FAILED => {
                    IkeFailReason::AuthenticationFailed { by_peer: true }
                }
                other => IkeFailReason::PeerError(other),
            };
            self.fail(ctx, reason);
            return;
        }
        if msg.header.spi_r == 0 {
            debug!(
                "{}: dropping IKE_SA_INIT response without SPIr",
                self.name()
            );
            return;
        }
        let from_any = self.local.ip().is_unspecified();
        match self.complete_init(ctx, &msg, local) {
            Ok(true) => {}
            Ok(false) => {
                // Continued by `init_computed` once the key exchange is
                // done.
                if let Some(h) = self.phase.handshake_mut() {
                    h.init_wait = Some(Box::new(InitWait {
                        msg,
                        bytes: bytes.to_vec(),
                        local,
                    }));
                }
                return;
            }
            Err(e) => {
                self.fail(ctx, IkeFailReason::InvalidResponse(e));
                return;
            }
        }
        if let Some(h) = self.phase.handshake_mut() {
            h.init.response = bytes.to_vec();
            h.peer_hashes = super::pubkey::peer_hashes(&msg);
            h.certreq = super::pubkey::certreqs(&msg);
        }
        self.rounds_init_response(&msg);
        self.fragmentation = self.peer.fragmentation.announce()
            && notify(&msg, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
        self.window.init_answered();
        let peer_natd = notify(&msg, NotifyType::NAT_DETECTION_SOURCE_IP).is_some();
        self.natt_after_init(ctx, now, from_any, peer_natd);
        debug!(
            "{}: IKE_SA_INIT done{}{}",
            self.name(),
            if self.nat.local {
                ", we are behind NAT"
            } else {
                ""
            },
            if self.nat.remote {
                ", peer is behind NAT"
            } else {
                ""
            }
        );
        if self.children.is_empty()
            && !self.forced_childless()
            && let Some(first) = self.pending_children.pop_front()
        {
            if self.pending_children.is_empty() {
                self.pending_children.shrink_to_fit();
            }
            self.new_child(ctx, first, true);
        }
        if self.childless() {
            // RFC 6023 3: IKE_AUTH without a Child SA only to a responder
            // that said it supports it.
            if notify(&msg, NotifyType::CHILDLESS_IKEV2_SUPPORTED).is_none() {
                let why = if self.forced_childless() {
                    "childless = force and the peer does not support childless IKE SA \
                     initiation (RFC 6023)"
                } else {
                    "the connection has no children and the peer does not support \
                     childless IKE SAs (RFC 6023)"
                };
                self.fail(ctx, IkeFailReason::InvalidResponse(why.into()));
                return;
            }
            self.phase.advance(Phase::AwaitSpi);
            self.send_auth_request(ctx, now);
            return;
        }
        self.phase.advance(Phase::AwaitSpi);
        if self
            .children
            .first()
            .is_some_and(|c| self.child_ready(c.id))
        {
            self.send_auth_request(ctx, now);
        }
    }

    /// Initiator: the key exchange of the IKE_SA_INIT response kept in
    /// `init_wait` is done (`compute`): take the response on with the
    /// shared secret.
    pub(crate) fn init_computed(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        result: Result<Done, String>,
    ) {
        let Some(h) = self.phase.handshake_mut() else {
            return;
        };
        let Some(w) = h.init_wait.take() else {
            debug!("{}: no IKE_SA_INIT response waits", self.name());
            return;
        };
        match result {
            Ok(Done::Shared(shared)) => {
                h.shared = Some(shared);
                let InitWait { msg, bytes, local } = *w;
                self.init_response(ctx, now, local, msg, &bytes);
            }
            Ok(Done::Responded { .. } | Done::Started(_) | Done::Signed(_) | Done::Checked(_)) => {
                self.fail(
                    ctx,
                    IkeFailReason::Internal("not the initiator's key exchange result".into()),
                )
            }
            Err(e) => self.fail(ctx, IkeFailReason::InvalidResponse(e)),
        }
    }

    /// Initiator: takes the responder's choice, completes the key exchange
    /// and derives the keys. `Ok(false)`: the key exchange was handed to
    /// `compute` (the response is taken on again when it is done).
    fn complete_init(
        &mut self,
        ctx: &mut Ctx,
        msg: &Message,
        local: SocketAddr,
    ) -> Result<bool, String> {
        let id = self.id;
        let sa = super::child_create::sa_payload(msg).ok_or("no SA payload")?;
        let h = self.phase.handshake_mut().ok_or("no IKE_SA_INIT state")?;
        let selected = proposal::check_response(&h.init.proposals, sa, false)
            .map_err(|e| e.to_string())?
            .proposal;
        let suite = proposal::ike_suite(&selected).map_err(|e| e.to_string())?;
        let ke_payload = super::child_create::ke_payload(msg).ok_or("no KE payload")?;
        let shared = match h.shared.take() {
            Some(s) => s,
            None => {
                let ke = h.ke.take().ok_or("no key exchange")?;
                if ke_payload.group != ke.method() || suite.ke != ke.method() {
                    return Err(format!(
                        "responder answered key exchange {} to our {}",
                        ke_payload.group,
                        ke.method()
                    ));
                }
                ctx.compute_complete(id, ke, ke_payload.data.clone());
                return Ok(false);
            }
        };
        let nonce_r = super::child_create::nonce_payload(msg)
            .ok_or("no nonce")?
            .to_vec();
        let spi_r = msg.header.spi_r;
        let keys = Keys::derive(
            ctx.provider.as_ref(),
            &shared,
            KeyInput {
                proposal: selected,
                suite,
                ni: &h.init.nonce_i,
                nr: &nonce_r,
                spi_i: self.spi_i,
                spi_r,
                initiator: true,
            },
        )?;
        if self.local.ip().is_unspecified() {
            self.local = local;
        }
        self.spi_r = spi_r;
        h.init.nonce_r = nonce_r;
        self.keys = Some(keys);
        (self.nat.local, self.nat.remote) =
            nat_detected(msg, self.spi_i, spi_r, self.local, self.remote);
        Ok(true)
    }
}

/// Where an initiator sends from and to.
struct Target {
    local_ip: IpAddr,
    remote: SocketAddr,
}

/// N(IKEV2_FRAGMENTATION_SUPPORTED) (RFC 7383 2.3).
fn fragmentation_supported() -> Notify {
    Notify::new(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, Vec::new())
}

/// An unprotected IKE_SA_INIT response with one notify, keeping no state.
fn stateless(ctx: &mut Ctx, local: SocketAddr, remote: SocketAddr, spi_i: u64, n: Notify) {
    let m = Message {
        header: Header {
            spi_i,
            spi_r: 0,
            minor_version: 0,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: Flags::RESPONSE,
            message_id: 0,
        },
        payloads: vec![Payload::Notify(n)],
    };
    if let Ok(payload) = m.emit() {
        ctx.transmits.push_back(super::Transmit {
            local,
            remote,
            payload,
        });
    }
}

/// Responder: an IKE_SA_INIT request that did not parse; answered as
/// [`ParseError::response`] says (UNSUPPORTED_CRITICAL_PAYLOAD,
/// INVALID_MAJOR_VERSION, INVALID_SYNTAX) or dropped.
pub(crate) fn answer_parse_error(
    ctx: &mut Ctx,
    local: SocketAddr,
    remote: SocketAddr,
    header: &Header,
    e: &ParseError,
    now: Instant,
) {
    if let Some(n) = e.response() {
        if ctx.dos.log.allow(now) {
            info!(
                "IKE_SA_INIT request from {} unparsable ({e}), sending {}",
                remote.ip(),
                n.notify_type
            );
        }
        stateless(ctx, local, remote, header.spi_i, n);
    }
}

/// Peer configurations whose addresses match, the most specific first;
/// the list of the last addresses asked for is shared.
fn candidates(ctx: &mut Ctx, local: SocketAddr, remote: SocketAddr) -> Arc<[Arc<PeerCfg>]> {
    let key = (local.ip(), remote.ip());
    if let Some((k, list)) = &ctx.last_candidates
        && *k == key
    {
        return list.clone();
    }
    let list: Arc<[Arc<PeerCfg>]> = matching(ctx, local, remote).into();
    ctx.last_candidates = Some((key, list.clone()));
    list
}

fn matching(ctx: &Ctx, local: SocketAddr, remote: SocketAddr) -> Vec<Arc<PeerCfg>> {
    let score = |specs: &[AddrSpec], ip: IpAddr| -> Option<u8> {
        if specs.contains(&AddrSpec::Addr(ip)) {
            Some(2)
        } else if specs.contains(&AddrSpec::Any) || specs.is_empty() {
            Some(1)
        } else {
            None
        }
    };
    let mut found: Vec<(u8, Arc<PeerCfg>)> = ctx
        .peers
        .iter()
        .filter_map(|p| {
            let l = score(&p.local_addrs, local.ip())?;
            let r = score(&p.remote_addrs, remote.ip())?;
            Some((l.saturating_add(r), p.clone()))
        })
        .collect();
    found.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
    found.into_iter().map(|(_, p)| p).collect()
}

/// The responder's CERTREQ in IKE_SA_INIT (as strongSwan sends it, before
/// the connection is known): the CAs we trust, if a connection the
/// addresses match authenticates its peer by certificate and sends
/// CERTREQs (with its pinned `cacerts`, when the store has none).
fn certreq(ctx: &Ctx, peers: &[Arc<PeerCfg>]) -> Option<Payload> {
    let mut hashes = Vec::new();
    let mut any = false;
    for p in peers {
        if let super::RemoteAuthCfg::Pubkey { cacerts, .. } = &p.remote_auth
            && p.send_certreq
        {
            any = true;
            for c in cacerts {
                let h = c.public_key().spki_sha1();
                if !hashes.contains(&h) {
                    hashes.push(h);
                }
            }
        }
    }
    if !any {
        return None;
    }
    for &h in ctx.ca_hashes.iter() {
        if !hashes.contains(&h) {
            hashes.push(h);
        }
    }
    super::pubkey::certreq_payload(&hashes)
}

/// A message as it arrived: on `local` from `remote`, parsed and as
/// octets.
pub(crate) struct Received<'a> {
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) msg: &'a Message,
    pub(crate) bytes: &'a [u8],
}

/// Responder: a new IKE_SA_INIT request. Answers errors statelessly
/// (returning `None`); otherwise returns the half-open SA, answer sent.
pub(crate) fn respond(
    ctx: &mut Ctx,
    now: Instant,
    id: IkeSaId,
    request: Received<'_>,
) -> Option<IkeSa> {
    let Received {
        local,
        remote,
        msg,
        bytes,
    } = request;
    let spi_i = msg.header.spi_i;
    let refuse = |ctx: &mut Ctx, n: Notify| stateless(ctx, local, remote, spi_i, n);
    if let Err(e) = rules::check(msg) {
        if ctx.dos.log.allow(now) {
            info!(
                "invalid IKE_SA_INIT request from {}: {e}, sending INVALID_SYNTAX",
                remote.ip()
            );
        }
        refuse(ctx, Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()));
        return None;
    }
    let (Some(offered), Some(kei), Some(ni)) = (
        super::child_create::sa_payload(msg),
        super::child_create::ke_payload(msg),
        super::child_create::nonce_payload(msg),
    ) else {
        refuse(ctx, Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()));
        return None;
    };
    // Before any per-connection work: cookies, caps, budget.
    let cookie = msg.payloads.first().and_then(|p| match p {
        Payload::Notify(n) => n.cookie_data(),
        _ => None,
    });
    let req = dos::InitRequest {
        ip: remote.ip(),
        spi_i,
        ni,
        cookie,
        len: bytes.len(),
    };
    let cfg = ctx.cfg;
    let proven = match ctx.dos.admit(
        cfg.cookie_threshold,
        &cfg.dos,
        ctx.provider.as_ref(),
        now,
        &req,
    ) {
        dos::Admit::Go => false,
        dos::Admit::Proven => true,
        dos::Admit::Cookie(c) => {
            trace!("sending COOKIE to {}", remote.ip());
            refuse(ctx, Notify::cookie(c));
            return None;
        }
        dos::Admit::Drop => return None,
    };
    ctx.dos.admitted(id, proven);
    let peers = candidates(ctx, local, remote);
    let Some(first) = peers.first().cloned() else {
        if ctx.dos.log.allow(now) {
            let detail = format!("no IKE config found for {}...{}", local.ip(), remote.ip());
            info!("{detail}, sending NO_PROPOSAL_CHOSEN");
            ctx.events.push_back(Event::IkeFailed {
                id,
                peer: None,
                reason: IkeFailReason::NoProposalChosen {
                    by_peer: false,
                    detail,
                },
            });
        }
        refuse(ctx, Notify::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()));
        return None;
    };
    let opts = SelectOptions {
        preference: ctx.cfg.preference,
        skip_ke: false,
    };
    let mut chosen = None;
    let mut first_err = None;
    for p in peers.iter() {
        match proposal::select(&p.ike_proposals, offered, opts) {
            Ok(s) => {
                chosen = Some((p.clone(), s.proposal));
                break;
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let Some((peer, selected)) = chosen else {
        if ctx.dos.log.allow(now) {
            let detail = first_err.map(|e| e.to_string()).unwrap_or_default();
            info!(
                "IKE SA {}{id} {} => {}: {detail}, sending NO_PROPOSAL_CHOSEN",
                first.name,
                local.ip(),
                remote.ip()
            );
            ctx.events.push_back(Event::IkeFailed {
                id,
                peer: Some(first.name.clone()),
                reason: IkeFailReason::NoProposalChosen {
                    by_peer: false,
                    detail,
                },
            });
        }
        refuse(ctx, Notify::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()));
        return None;
    };
    if let Some(gw) = super::redirect::init_redirect_to(&peer, msg) {
        if ctx.dos.log.allow(now) {
            info!(
                "IKE SA {}{id}: redirecting the client {} to {gw} in IKE_SA_INIT",
                peer.name,
                remote.ip()
            );
        }
        refuse(ctx, Notify::new(NotifyType::REDIRECT, gw.encode(ni)));
        return None;
    }
    if let KeCheck::InvalidKePayload(g) = proposal::check_ke_payload(&selected, Some(kei.group)) {
        if ctx.dos.log.allow(now) {
            info!(
                "IKE SA {}{id}: peer sent key exchange {}, requesting {g} with INVALID_KE_PAYLOAD",
                peer.name, kei.group
            );
        }
        refuse(ctx, Notify::invalid_ke_payload(g));
        return None;
    }
    let internal = |ctx: &mut Ctx, e: String| {
        info!("IKE SA {}{id}: {e}, sending INVALID_SYNTAX", peer.name);
        refuse(ctx, Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()));
        None
    };
    if let Err(e) = proposal::ike_suite(&selected) {
        return internal(ctx, e.to_string());
    }
    let (spi_r, nonce_r) = match (random_spi(ctx), ctx.provider.random_vec(NONCE_LEN)) {
        (Ok(s), Ok(n)) => (s, n),
        _ => return internal(ctx, "random source failed".into()),
    };
    let (nat_local, nat_remote) = nat_detected(msg, spi_i, 0, local, remote);
    // RFC 7383 2.3: announced in the answer only to an initiator that did.
    let fragmentation = peer.fragmentation.announce()
        && notify(msg, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
    // The key exchange is CPU work (`compute`): the answer goes out when
    // it is done (`answer_init`).
    ctx.compute_respond(id, kei.group, kei.data.clone(), proven);
    let mut sa = IkeSa::new(IkeSaParams {
        id,
        initiator: false,
        phase: Phase::HalfOpen(Box::new(Handshake {
            init: InitState {
                nonce_i: ni.to_vec(),
                nonce_r,
                request: bytes.to_vec(),
                // Until the answer: the proposal chosen.
                proposals: vec![selected],
                ..InitState::default()
            },
            peer_hashes: super::pubkey::peer_hashes(msg),
            ..Handshake::default()
        })),
        peer,
        local,
        remote,
        spi_i,
        spi_r,
    });
    sa.candidates = peers;
    sa.fragmentation = fragmentation;
    sa.redirect_request_seen(msg);
    sa.nat = NatT {
        local: nat_local,
        remote: nat_remote,
        encap: false,
        init_remote: Some(remote),
    };
    sa.timers
        .arm(IkeTimer::HalfOpen, later(now, ctx.cfg.half_open_timeout));
    sa.natt_after_init(ctx, now, false, false);
    Some(sa)
}

impl IkeSa {
    /// Responder: the key exchange of IKE_SA_INIT is done (`compute`):
    /// derive the keys and answer, or refuse with INVALID_SYNTAX.
    pub(crate) fn answer_init(&mut self, ctx: &mut Ctx, result: Result<Done, String>) {
        if !matches!(&self.phase, Phase::HalfOpen(h) if h.init.response.is_empty()) {
            debug!("{}: IKE_SA_INIT already answered", self.name());
            return;
        }
        let (local, spi_i, id) = (self.local, self.spi_i, self.id);
        let remote0 = self.nat.init_remote.unwrap_or(self.remote);
        let answered = match result {
            Ok(Done::Responded { public, shared }) => self.init_answer(ctx, public, &shared),
            Ok(Done::Shared(_) | Done::Started(_) | Done::Signed(_) | Done::Checked(_)) => {
                Err("not the responder's key exchange result".into())
            }
            Err(e) => Err(e),
        };
        match answered {
            Ok(response) => {
                ctx.transmits.push_back(super::Transmit {
                    local,
                    remote: remote0,
                    payload: response,
                });
                debug!(
                    "IKE SA {}: IKE_SA_INIT answered for {}",
                    self.name(),
                    remote0.ip()
                );
            }
            Err(e) => {
                info!("IKE SA {}{id}: {e}, sending INVALID_SYNTAX", self.peer.name);
                stateless(
                    ctx,
                    local,
                    remote0,
                    spi_i,
                    Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()),
                );
                self.teardown(ctx, false);
            }
        }
    }

    /// Responder: the keys and the IKE_SA_INIT response (kept, and
    /// returned to send).
    fn init_answer(
        &mut self,
        ctx: &Ctx,
        public: Vec<u8>,
        shared: &crate::crypto::Secret,
    ) -> Result<Vec<u8>, String> {
        let (local, spi_i, spi_r) = (self.local, self.spi_i, self.spi_r);
        let remote = self.nat.init_remote.unwrap_or(self.remote);
        let encap = self.peer.encap;
        let childless = self
            .candidates
            .iter()
            .any(|p| p.behaviour.childless != Childless::Never);
        let certreq = certreq(ctx, &self.candidates);
        let fragmentation = self.fragmentation;
        // RFC 4739: announced where a connection asks for a second round
        // (an initiator that does not see it does one round only).
        let multiple_auth = self.candidates.iter().any(|p| p.rounds.remote.is_some());
        let Phase::HalfOpen(h) = &mut self.phase else {
            return Err("no IKE_SA_INIT to answer".into());
        };
        let selected = std::mem::take(&mut h.init.proposals)
            .pop()
            .ok_or("no proposal chosen")?;
        let suite = proposal::ike_suite(&selected).map_err(|e| e.to_string())?;
        let keys = Keys::derive(
            ctx.provider.as_ref(),
            shared,
            KeyInput {
                proposal: selected.clone(),
                suite,
                ni: &h.init.nonce_i,
                nr: &h.init.nonce_r,
                spi_i,
                spi_r,
                initiator: false,
            },
        )?;
        let mut payloads = vec![
            Payload::Sa(vec![selected]),
            Payload::Ke(wire::KeyExchange {
                group: suite.ke,
                data: public,
            }),
            Payload::Nonce(h.init.nonce_r.clone()),
        ];
        payloads.extend(certreq);
        // We accept IKE_AUTH without a Child SA (RFC 6023) unless every
        // connection it may be for says `childless = never`.
        if childless {
            payloads.push(Payload::Notify(Notify::new(
                NotifyType::CHILDLESS_IKEV2_SUPPORTED,
                Vec::new(),
            )));
        }
        payloads.extend([
            Payload::Notify(Notify::nat_detection(
                false,
                nat_hash(spi_i, spi_r, if encap { fake_source() } else { local }),
            )),
            Payload::Notify(Notify::nat_detection(true, nat_hash(spi_i, spi_r, remote))),
        ]);
        payloads.extend(super::pubkey::announce(ctx));
        if fragmentation {
            payloads.push(Payload::Notify(fragmentation_supported()));
        }
        if multiple_auth {
            payloads.push(Payload::Notify(Notify::new(
                NotifyType::MULTIPLE_AUTH_SUPPORTED,
                Vec::new(),
            )));
        }
        let response = Message {
            header: Header {
                spi_i,
                spi_r,
                minor_version: 0,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: Flags::RESPONSE,
                message_id: 0,
            },
            payloads,
        }
        .emit()
        .map_err(|e| e.to_string())?;
        h.init.response = response.clone();
        self.keys = Some(keys);
        Ok(response)
    }
}
