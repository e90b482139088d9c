//! IKEv2 redirect (RFC 5685), both roles, with charon's behaviour
//! (`ike_sa.c`'s `handle_redirect`, `tasks/ike_redirect.c`).
//!
//! Client (an IKE SA we initiate, `follow_redirects`, default yes): its
//! IKE_SA_INIT carries REDIRECT_SUPPORTED, or REDIRECTED_FROM with the
//! gateway that sent it here. A REDIRECT it follows
//! - in the IKE_SA_INIT response (with our nonce, else the response is
//!   dropped as forged): the IKE SA starts over toward the new gateway
//!   under the same id, so `ikectl up` waits across it;
//! - in the IKE_AUTH response, once the responder's AUTH is verified: the
//!   same, after a Delete to the old gateway (the IKE SA has keys there);
//! - in an INFORMATIONAL request of an established IKE SA: answered, the
//!   old IKE SA deleted, and a new one (a new id) brings its Child SAs up
//!   toward the new gateway.
//!
//! The old IKE SA goes before the new one is up (break before make, where
//! charon makes before it breaks): iked's policies belong to one reqid with
//! the old gateway's tunnel addresses, and a new Child SA with the same
//! selectors toward another gateway would need them moved; the gap is one
//! IKE_SA_INIT and IKE_AUTH round trip. If the new gateway fails, nothing
//! is left (charon keeps the old IKE SA then).
//!
//! A gateway named by FQDN is resolved by the daemon (an outside operation
//! of the endpoint: [`Resolve`] out through `Endpoint::poll_resolve`, the
//! addresses in through `Endpoint::handle_resolved`). At most
//! [`MAX_REDIRECTS`] redirects in [`LOOP_PERIOD`] are followed per IKE SA
//! and its successors; the next one fails it.
//!
//! Gateway: a connection's `redirect` (configuration.md, "Redirect")
//! sends a client that announced REDIRECT_SUPPORTED elsewhere in
//! IKE_SA_INIT (REDIRECT with the client's nonce, no state kept) or in
//! IKE_AUTH once it is authenticated (REDIRECT in the answer instead of
//! the Child SA and virtual IP); `ikectl redirect` sends an established
//! IKE SA's client elsewhere (INFORMATIONAL with REDIRECT). A client that
//! came with REDIRECTED_FROM (which says it supports redirects) is not
//! redirected again in IKE_SA_INIT, so two gateways that send clients to
//! each other there do not make them go round; in IKE_AUTH and on
//! command it is. A redirected IKE SA the client does not delete goes
//! after `half_open_timeout`.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::config::{AddrSpec, ChildCfg, PeerCfg};
use super::effect::Effect;
use super::endpoint::Ctx;
use super::ike_sa::{IkeSa, Phase, Task, later, notify};
use super::timers::IkeTimer;
use super::types::{CommandError, IkeFailReason, IkeSaId};
use crate::wire::codes::NotifyType;
use crate::wire::{Message, Notify, Payload};

/// Most redirects followed within [`LOOP_PERIOD`] (charon's
/// `MAX_REDIRECTS`).
pub const MAX_REDIRECTS: usize = 5;
/// The window of the redirect loop limit (charon's
/// `REDIRECT_LOOP_DETECT_PERIOD`).
pub const LOOP_PERIOD: Duration = Duration::from_secs(300);

/// GW Ident Type of the redirect notifies' data (RFC 5685 10).
const GW_IPV4: u8 = 1;
const GW_IPV6: u8 = 2;
const GW_FQDN: u8 = 3;

/// A gateway to redirect to: an address or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Gateway {
    /// An IPv4 or IPv6 address.
    Addr(IpAddr),
    /// A DNS name, resolved by the client.
    Fqdn(String),
}

impl Gateway {
    /// An address, or else a DNS name (letters, digits, `-` and `.`, at
    /// most 255 octets).
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Addr(ip));
        }
        let ok = !s.is_empty()
            && s.len() <= 255
            && !s.starts_with('.')
            && !s.contains("..")
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if ok {
            Ok(Self::Fqdn(s.to_owned()))
        } else {
            Err(format!(
                "bad gateway \"{s}\" (expected an IPv4 or IPv6 address or a DNS name)"
            ))
        }
    }

    /// The notify data: GW Ident Type, Len, the identity, then `nonce`.
    pub(crate) fn encode(&self, nonce: &[u8]) -> Vec<u8> {
        let (t, value) = match self {
            Self::Addr(IpAddr::V4(a)) => (GW_IPV4, a.octets().to_vec()),
            Self::Addr(IpAddr::V6(a)) => (GW_IPV6, a.octets().to_vec()),
            Self::Fqdn(n) => (GW_FQDN, n.as_bytes().to_vec()),
        };
        // `parse` bounds a name to 255 octets; a longer one cannot be
        // configured, and would be cut rather than wrap.
        let len = u8::try_from(value.len()).unwrap_or(u8::MAX);
        let mut out = vec![t, len];
        out.extend(value.iter().take(usize::from(len)));
        out.extend_from_slice(nonce);
        out
    }

    /// The gateway and the nonce data after it, from a notify's data;
    /// `None` if malformed.
    pub(crate) fn decode(data: &[u8]) -> Option<(Self, &[u8])> {
        let (&t, rest) = data.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let (value, nonce) = rest.split_at_checked(usize::from(len))?;
        let gw = match t {
            GW_IPV4 => Self::Addr(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?))),
            GW_IPV6 => Self::Addr(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(value).ok()?,
            ))),
            GW_FQDN => Self::parse(std::str::from_utf8(value).ok()?)
                .ok()
                .filter(|g| matches!(g, Self::Fqdn(_)))?,
            _ => return None,
        };
        Some((gw, nonce))
    }
}

impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(ip) => ip.fmt(f),
            Self::Fqdn(n) => f.write_str(n),
        }
    }
}

/// Where a gateway's connection redirects its clients (`redirect`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RedirectCfg {
    /// The gateway they go to.
    pub to: Gateway,
    /// In which exchange.
    pub when: RedirectWhen,
}

/// The exchange a connection redirects its clients in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RedirectWhen {
    /// IKE_SA_INIT: before any work (no key exchange, no state), by the
    /// addresses alone (the connection the addresses select).
    Init,
    /// IKE_AUTH, once the client is authenticated (it may be picked by its
    /// identity; no Child SA, no virtual IP).
    #[default]
    Auth,
}

/// A DNS name the endpoint needs the addresses of (a redirect to a gateway
/// named by FQDN): the daemon resolves it and answers with
/// `Endpoint::handle_resolved` and the same `req`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolve {
    /// The request's id.
    pub req: u64,
    /// The name.
    pub name: String,
}

/// An IKE SA's part in redirects.
#[derive(Clone, Debug, Default)]
pub(crate) struct Redirect {
    /// Client: we announced support in IKE_SA_INIT and follow redirects.
    pub(crate) follow: bool,
    /// Client: the gateway that redirected us here (REDIRECTED_FROM).
    pub(crate) from: Option<IpAddr>,
    /// Client: when redirects were followed, within [`LOOP_PERIOD`].
    pub(crate) at: Vec<Instant>,
    /// Gateway: the client announced REDIRECT_SUPPORTED.
    pub(crate) supported: bool,
    /// Gateway: we redirected it (no second redirect).
    pub(crate) sent: bool,
}

/// A redirect the endpoint carries out ([`Effect::Redirect`]): a new IKE
/// SA toward the gateway once its address is known.
#[derive(Debug)]
pub(crate) struct Follow {
    /// The IKE SA redirected (gone by the time the new one starts).
    pub(crate) old: IkeSaId,
    /// The new IKE SA keeps `old`'s id (it was not established).
    pub(crate) keep_id: bool,
    pub(crate) peer: Arc<PeerCfg>,
    /// The Child SAs to bring up (the first in IKE_AUTH).
    pub(crate) cfgs: VecDeque<Arc<ChildCfg>>,
    pub(crate) to: Gateway,
    /// The address of the gateway that redirected us.
    pub(crate) from: SocketAddr,
    /// Our address there (the new one is of the same family if it can be).
    pub(crate) local: IpAddr,
    /// The redirects followed so far, this one included.
    pub(crate) at: Vec<Instant>,
    pub(crate) now: Instant,
}

impl Follow {
    /// The new IKE SA toward `remote`, its IKE_SA_INIT on its way.
    pub(crate) fn start(
        self,
        ctx: &mut Ctx,
        now: Instant,
        id: IkeSaId,
        remote: IpAddr,
    ) -> Result<IkeSa, CommandError> {
        let local = self
            .peer
            .local_addrs
            .iter()
            .find_map(|a| match a {
                AddrSpec::Addr(ip) if ip.is_ipv4() == remote.is_ipv4() => Some(*ip),
                _ => None,
            })
            .or_else(|| (self.local.is_ipv4() == remote.is_ipv4()).then_some(self.local))
            .unwrap_or(match remote {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            });
        let state = Redirect {
            follow: true,
            from: Some(self.from.ip()),
            at: self.at,
            ..Redirect::default()
        };
        debug!(
            "IKE SA {}{id}: following the redirect from {} to {} ({remote})",
            self.peer.name,
            self.from.ip(),
            self.to
        );
        let port = self.peer.remote_port;
        IkeSa::start_redirected(
            ctx,
            now,
            id,
            self.peer,
            self.cfgs,
            local,
            SocketAddr::new(remote, port),
            Box::new(state),
        )
    }
}

/// Gateway: where an IKE_SA_INIT request for `peer` is redirected, if its
/// connection redirects in IKE_SA_INIT and the client announced
/// REDIRECT_SUPPORTED (one that came with REDIRECTED_FROM is not sent on
/// again).
pub(crate) fn init_redirect_to(peer: &PeerCfg, msg: &Message) -> Option<Gateway> {
    let cfg = peer
        .redirect
        .as_ref()
        .filter(|c| c.when == RedirectWhen::Init)?;
    notify(msg, NotifyType::REDIRECT_SUPPORTED)?;
    Some(cfg.to.clone())
}

impl IkeSa {
    /// Initiator: the redirect state of a new IKE SA (`follow_redirects`).
    pub(crate) fn redirect_initial(ctx: &Ctx) -> Option<Box<Redirect>> {
        ctx.cfg.follow_redirects.then(|| {
            Box::new(Redirect {
                follow: true,
                ..Redirect::default()
            })
        })
    }

    /// Initiator: REDIRECT_SUPPORTED, or REDIRECTED_FROM after a redirect,
    /// for IKE_SA_INIT.
    pub(crate) fn redirect_announce(&self) -> Option<Payload> {
        let r = self.redirect.as_ref().filter(|r| r.follow)?;
        Some(Payload::Notify(match r.from {
            Some(from) => Notify::new(NotifyType::REDIRECTED_FROM, Gateway::Addr(from).encode(&[])),
            None => Notify::new(NotifyType::REDIRECT_SUPPORTED, Vec::new()),
        }))
    }

    /// Responder: what the IKE_SA_INIT request says about redirects.
    pub(crate) fn redirect_request_seen(&mut self, msg: &Message) {
        let mut supported = notify(msg, NotifyType::REDIRECT_SUPPORTED).is_some();
        if let Some(n) = notify(msg, NotifyType::REDIRECTED_FROM) {
            match Gateway::decode(&n.data) {
                Some((gw, _)) => {
                    info!(
                        "{}: client {} was redirected here from {gw}",
                        self.name(),
                        self.remote.ip()
                    );
                    supported = true;
                }
                None => debug!("{}: invalid REDIRECTED_FROM notify", self.name()),
            }
        }
        if supported {
            self.redirect.get_or_insert_with(Default::default).supported = true;
        }
    }

    /// Initiator: a REDIRECT in the IKE_SA_INIT response. Whether the
    /// response was one (then it is handled: followed, refused, or
    /// dropped as forged).
    pub(crate) fn init_redirect(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) -> bool {
        let Some(n) = notify(msg, NotifyType::REDIRECT) else {
            return false;
        };
        let nonce_i = self.phase.handshake().map(|h| h.init.nonce_i.as_slice());
        match Gateway::decode(&n.data) {
            Some((gw, nonce)) if Some(nonce) == nonce_i => self.follow_or_fail(ctx, now, gw),
            _ => debug!(
                "{}: dropping IKE_SA_INIT response with an invalid REDIRECT (not our nonce)",
                self.name()
            ),
        }
        true
    }

    /// Initiator, the responder authenticated: a REDIRECT in the IKE_AUTH
    /// response. Whether there was one (then it is handled).
    pub(crate) fn auth_redirect(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) -> bool {
        let Some(n) = notify(msg, NotifyType::REDIRECT) else {
            return false;
        };
        match Gateway::decode(&n.data) {
            Some((gw, _)) => self.follow_or_fail(ctx, now, gw),
            None => self.fail(
                ctx,
                IkeFailReason::InvalidResponse("invalid REDIRECT notify".into()),
            ),
        }
        true
    }

    /// A REDIRECT in an INFORMATIONAL request of an established IKE SA,
    /// answered in `mid`'s response. Whether there was one (then it is
    /// answered and handled).
    pub(crate) fn informational_redirect(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
    ) -> bool {
        let Some(n) = notify(msg, NotifyType::REDIRECT) else {
            return false;
        };
        let mid = msg.header.message_id;
        self.send_response(
            ctx,
            crate::wire::codes::ExchangeType::INFORMATIONAL,
            mid,
            Vec::new(),
        );
        match Gateway::decode(&n.data) {
            // Refused, the IKE SA stays (as charon).
            Some((gw, _)) if matches!(self.phase, Phase::Established) => {
                if self.redirect_refusal(now, &gw).is_none() {
                    self.follow_redirect(ctx, now, gw);
                }
            }
            Some((gw, _)) => info!(
                "{}: REDIRECT to {gw} while {:?}, ignoring it",
                self.name(),
                self.state()
            ),
            None => info!("{}: invalid REDIRECT notify, ignoring it", self.name()),
        }
        true
    }

    /// Client: why a redirect to `gw` is not followed (logged), if it
    /// is not: redirects not followed, or the loop limit reached.
    fn redirect_refusal(&mut self, now: Instant, gw: &Gateway) -> Option<String> {
        let (name, by) = (self.name(), self.remote.ip());
        let Some(r) = self.redirect.as_mut().filter(|r| r.follow) else {
            info!("{name}: redirected by {by} to {gw}, but redirects are not followed here");
            return Some(format!("to {gw} not followed"));
        };
        r.at.retain(|t| now.saturating_duration_since(*t) < LOOP_PERIOD);
        if r.at.len() >= MAX_REDIRECTS {
            let why = format!(
                "to {gw} not followed: only {MAX_REDIRECTS} redirects are followed within {} s",
                LOOP_PERIOD.as_secs()
            );
            info!("{name}: redirected by {by}: {why}");
            return Some(why);
        }
        None
    }

    /// Client: follows a redirect to `gw` being established, or fails.
    fn follow_or_fail(&mut self, ctx: &mut Ctx, now: Instant, gw: Gateway) {
        match self.redirect_refusal(now, &gw) {
            Some(why) => {
                if self.keys.is_some() {
                    // IKE_AUTH: the gateway has an IKE SA with us.
                    self.send_oneshot(ctx, vec![Payload::Delete(crate::wire::Delete::ike())]);
                }
                self.fail(ctx, IkeFailReason::Redirect(why))
            }
            None => self.follow_redirect(ctx, now, gw),
        }
    }

    /// Client: follows a redirect to `gw` (`redirect_refusal` said yes):
    /// this IKE SA goes, the endpoint starts the next.
    fn follow_redirect(&mut self, ctx: &mut Ctx, now: Instant, gw: Gateway) {
        let name = self.name();
        let Some(r) = self.redirect.as_mut() else {
            return;
        };
        r.at.push(now);
        let at = r.at.clone();
        let established = matches!(self.phase, Phase::Established);
        let cfgs = if established {
            self.children_to_recreate()
        } else {
            self.children
                .iter()
                .map(|c| c.cfg.clone())
                .chain(self.pending_children.iter().cloned())
                .collect()
        };
        info!(
            "IKE SA {name}: redirected by {} to {gw}{}",
            self.remote.ip(),
            if established {
                ", reestablishing it there"
            } else {
                ""
            }
        );
        ctx.effects.push(Effect::Redirect(Box::new(Follow {
            old: self.id,
            keep_id: !established,
            peer: self.peer.clone(),
            cfgs,
            to: gw,
            from: self.remote,
            local: self.local.ip(),
            at,
            now,
        })));
        if established {
            // Its Child SAs and their policies go first (see the module
            // docs); the delete is not waited for.
            self.send_oneshot(ctx, vec![Payload::Delete(crate::wire::Delete::ike())]);
            self.deleted(ctx, false);
            return;
        }
        if self.keys.is_some() {
            // IKE_AUTH: the old gateway has an IKE SA with us.
            self.send_oneshot(ctx, vec![Payload::Delete(crate::wire::Delete::ike())]);
        }
        // Nothing of it is in the kernel but allocated SPIs; the new IKE
        // SA under this id reports how it ends.
        self.drop_unestablished_children(ctx);
        self.teardown(ctx, false);
    }

    /// Gateway: redirects the client of this established IKE SA to `gw`
    /// (`ikectl redirect`).
    pub(crate) fn redirect_peer(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        gw: super::redirect::Gateway,
    ) -> Result<(), CommandError> {
        if !matches!(self.phase, Phase::Established) {
            return Err(CommandError::WrongState(self.state()));
        }
        let r = self.redirect.get_or_insert_with(Default::default);
        if !r.supported {
            return Err(CommandError::NoRedirect);
        }
        if r.sent {
            return Ok(());
        }
        r.sent = true;
        info!(
            "{}: redirecting the client {} to {gw}",
            self.name(),
            self.remote.ip()
        );
        self.window.queue.push_back(Task::Redirect(Box::new(gw)));
        self.next_task(ctx, now);
        Ok(())
    }

    /// Gateway: the REDIRECT of `task` for the INFORMATIONAL request.
    pub(crate) fn redirect_payloads(gw: &Gateway) -> Vec<Payload> {
        vec![Payload::Notify(Notify::new(
            NotifyType::REDIRECT,
            gw.encode(&[]),
        ))]
    }

    /// Gateway: the client has our REDIRECT (in IKE_AUTH or an
    /// INFORMATIONAL): if it does not delete the IKE SA, it goes after
    /// `half_open_timeout` (as charon).
    pub(crate) fn redirect_sent(&mut self, ctx: &Ctx, now: Instant) {
        let at = later(now, ctx.cfg.half_open_timeout);
        if self.timers.get(IkeTimer::Expire).is_none_or(|t| t > at) {
            self.timers.arm(IkeTimer::Expire, at);
        }
    }

    /// Gateway, the client authenticated: answers IKE_AUTH request `mid`
    /// with `prefix` (our IDr, AUTH) and a REDIRECT instead of the Child
    /// SA and virtual IP, if the connection redirects in IKE_AUTH and the
    /// client supports it; else hands `prefix` back.
    pub(crate) fn auth_redirect_answer(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        mid: u32,
        mut prefix: Vec<Payload>,
    ) -> Result<(), Vec<Payload>> {
        let Some(gw) = self.auth_redirect_to() else {
            return Err(prefix);
        };
        info!(
            "{}: redirecting the client {} to {gw} in IKE_AUTH",
            self.name(),
            self.remote.ip()
        );
        prefix.push(Payload::Notify(Notify::new(
            NotifyType::REDIRECT,
            gw.encode(&[]),
        )));
        self.send_response(ctx, crate::wire::codes::ExchangeType::IKE_AUTH, mid, prefix);
        self.redirect_sent(ctx, now);
        Ok(())
    }

    /// Gateway: the REDIRECT for IKE_AUTH's answer, if the connection
    /// redirects there and the client supports it.
    fn auth_redirect_to(&mut self) -> Option<Gateway> {
        let gw = self
            .peer
            .redirect
            .as_ref()
            .filter(|c| c.when == RedirectWhen::Auth)?
            .to
            .clone();
        let r = self.redirect.as_mut().filter(|r| r.supported && !r.sent)?;
        r.sent = true;
        Some(gw)
    }
}
