//! Kernel events (multicast groups) as a stream of typed [`XfrmEvent`]s.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use netlink_packet_xfrm::{self as nx, XfrmAttrs, XfrmMessage};
use netlink_sys::{AsyncSocket, TokioSocket};
use zeroize::Zeroize;

use crate::codec::{self, Decoded, scrub};
use crate::conn::{DEFAULT_OWNER_TAG, open_socket};
use crate::error::Error;
use crate::policy::{PolicyInfo, Template};
use crate::sa::SaInfo;
use crate::types::{Family, Protocol, Selector, addr_from_kernel};

/// Which multicast groups to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventGroups {
    /// `XFRMNLGRP_ACQUIRE`: traffic hit a policy whose template has no SA.
    pub acquire: bool,
    /// `XFRMNLGRP_EXPIRE`: SA and policy soft/hard expiry.
    pub expire: bool,
    /// `XFRMNLGRP_MAPPING`: the NAT mapping of a UDP-encapsulated SA changed.
    pub mapping: bool,
    /// `XFRMNLGRP_POLICY`: policies added, updated, deleted, flushed (by
    /// anyone, including this process).
    pub policy: bool,
    /// `XFRMNLGRP_SA`: SAs added, updated, deleted, flushed.
    pub sa: bool,
}

impl EventGroups {
    /// What an IKE daemon needs: acquire, expire and mapping.
    pub const DAEMON: EventGroups = EventGroups {
        acquire: true,
        expire: true,
        mapping: true,
        policy: false,
        sa: false,
    };

    /// Every group this crate decodes.
    pub const ALL: EventGroups = EventGroups {
        acquire: true,
        expire: true,
        mapping: true,
        policy: true,
        sa: true,
    };

    fn numbers(self) -> Vec<u32> {
        let mut v = Vec::new();
        if self.acquire {
            v.push(nx::XFRMNLGRP_ACQUIRE);
        }
        if self.expire {
            v.push(nx::XFRMNLGRP_EXPIRE);
        }
        if self.mapping {
            v.push(nx::XFRMNLGRP_MAPPING);
        }
        if self.policy {
            v.push(nx::XFRMNLGRP_POLICY);
        }
        if self.sa {
            v.push(nx::XFRMNLGRP_SA);
        }
        v
    }
}

/// An acquire: outbound traffic matched a policy whose template has no SA;
/// the daemon should negotiate one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquire {
    /// The kernel's sequence number for this acquire (goes into the SA's
    /// `seq` if the daemon wants to tie the two together).
    pub seq: u32,
    /// Source address for the SA (template's or the packet's).
    pub src: IpAddr,
    /// Destination address for the SA.
    pub dst: IpAddr,
    /// Protocol the SA must have.
    pub protocol: Option<Protocol>,
    /// The flow that triggered it (the packet's addresses, ports, proto).
    pub flow: Option<Selector>,
    /// The policy that was hit.
    pub policy: PolicyInfo,
    /// The template that needs an SA (the first of the policy's).
    pub template: Option<Template>,
}

/// An SA reached a soft (rekey) or hard (deleted) limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expire {
    /// The SA (without keys).
    pub sa: SaInfo,
    /// Hard expiry: the kernel has deleted the SA.
    pub hard: bool,
}

/// A policy reached a soft or hard limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyExpire {
    /// The policy.
    pub policy: PolicyInfo,
    /// Hard expiry: the kernel has deleted it.
    pub hard: bool,
}

/// The peer's NAT mapping of a UDP-encapsulated SA changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Destination of the SA (its id with `spi` and `protocol`).
    pub dst: IpAddr,
    /// SPI.
    pub spi: u32,
    /// Protocol.
    pub protocol: Option<Protocol>,
    /// Request id.
    pub reqid: u32,
    /// Previous address and port of the peer.
    pub old: SocketAddr,
    /// New address and port.
    pub new: SocketAddr,
}

/// A typed kernel event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XfrmEvent {
    /// Negotiate an SA.
    Acquire(Acquire),
    /// An SA expired (soft: rekey; hard: gone).
    Expire(Expire),
    /// A policy expired.
    PolicyExpire(PolicyExpire),
    /// NAT mapping changed.
    Mapping(Mapping),
    /// A policy was added.
    PolicyAdded(PolicyInfo),
    /// A policy was updated.
    PolicyUpdated(PolicyInfo),
    /// A policy was deleted (`None` if the kernel's message did not carry it).
    PolicyDeleted(Option<PolicyInfo>),
    /// Policies were flushed.
    PoliciesFlushed,
    /// An SA was added.
    SaAdded(SaInfo),
    /// An SA was updated.
    SaUpdated(SaInfo),
    /// An SA was deleted (`None` if the message did not carry it).
    SaDeleted(Option<SaInfo>),
    /// SAs were flushed.
    SasFlushed,
    /// The socket's buffer overflowed: events were lost. Re-read the state
    /// (dump SAs and policies).
    Overrun,
}

/// A stream of kernel events; see [`subscribe`].
pub struct EventStream {
    socket: TokioSocket,
    buf: Vec<u8>,
    queue: VecDeque<Result<XfrmEvent, Error>>,
    owner_tag: u32,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventStream({} queued)", self.queue.len())
    }
}

/// Joins the given multicast groups on a new socket in the calling thread's
/// network namespace, with iked's default owner tag. Must be called within
/// a tokio runtime.
pub fn subscribe(groups: EventGroups) -> Result<EventStream, Error> {
    subscribe_with_owner(groups, DEFAULT_OWNER_TAG)
}

/// Like [`subscribe`], marking as `owned` what carries `owner_tag`.
pub fn subscribe_with_owner(groups: EventGroups, owner_tag: u32) -> Result<EventStream, Error> {
    let mut socket = open_socket().map_err(Error::Socket)?;
    let s = socket.socket_mut();
    // Room for bursts (e.g. many acquires at once).
    let _ = s.set_rx_buf_sz(1 << 20);
    for g in groups.numbers() {
        s.add_membership(g).map_err(Error::Socket)?;
    }
    Ok(EventStream {
        socket,
        buf: Vec::with_capacity(64 * 1024),
        queue: VecDeque::new(),
        owner_tag,
    })
}

impl crate::conn::Handle {
    /// Subscribes to events, marking as `owned` what this handle installed.
    pub fn events(&self, groups: EventGroups) -> Result<EventStream, Error> {
        subscribe_with_owner(groups, self.owner_tag())
    }
}

impl EventStream {
    /// The next event (`None` never happens in practice: the stream ends
    /// only if the socket is closed).
    pub async fn next_event(&mut self) -> Option<Result<XfrmEvent, Error>> {
        poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    fn receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.buf.clear();
        self.buf.reserve(64 * 1024);
        let Self { socket, buf, .. } = self;
        socket.poll_recv(cx, buf)
    }
}

impl Stream for EventStream {
    type Item = Result<XfrmEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(ev) = this.queue.pop_front() {
                return Poll::Ready(Some(ev));
            }
            match this.receive(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Poll::Ready(Some(Ok(XfrmEvent::Overrun)));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(Error::Io(e)))),
                Poll::Ready(Ok(())) => {
                    let tag = this.owner_tag;
                    for d in codec::decode_datagram(&this.buf) {
                        match d {
                            Decoded::Xfrm { msg, .. } => {
                                if let Some(ev) = to_event(*msg, tag) {
                                    this.queue.push_back(ev);
                                }
                            }
                            Decoded::Bad { reason, .. } => {
                                this.queue.push_back(Err(Error::Decode(reason)));
                            }
                            _ => {}
                        }
                    }
                    // SA events carry keys.
                    this.buf.zeroize();
                }
            }
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// Converts a kernel message into an event; scrubs its keys.
pub(crate) fn to_event(mut msg: XfrmMessage, tag: u32) -> Option<Result<XfrmEvent, Error>> {
    let ev = match &mut msg {
        XfrmMessage::Acquire(m) => acquire(&m.acquire, &m.nlas, tag).map(XfrmEvent::Acquire),
        XfrmMessage::Expire(m) => SaInfo::from_kernel(&m.expire.state, &mut [], tag).map(|sa| {
            XfrmEvent::Expire(Expire {
                sa,
                hard: m.expire.hard != 0,
            })
        }),
        XfrmMessage::PolicyExpire(m) => Ok(XfrmEvent::PolicyExpire(PolicyExpire {
            policy: PolicyInfo::from_kernel(&m.expire.pol, &m.nlas, tag),
            hard: m.expire.hard != 0,
        })),
        XfrmMessage::Mapping(m) => mapping(&m.map).map(XfrmEvent::Mapping),
        XfrmMessage::AddPolicy(m) => Ok(XfrmEvent::PolicyAdded(PolicyInfo::from_kernel(
            &m.user_policy_info,
            &m.nlas,
            tag,
        ))),
        XfrmMessage::UpdatePolicy(m) => Ok(XfrmEvent::PolicyUpdated(PolicyInfo::from_kernel(
            &m.user_policy_info,
            &m.nlas,
            tag,
        ))),
        XfrmMessage::DeletePolicy(m) => {
            let info = m.nlas.iter().find_map(|a| match a {
                XfrmAttrs::PolicyInfo(p) => Some(*p),
                _ => None,
            });
            Ok(XfrmEvent::PolicyDeleted(
                info.map(|p| PolicyInfo::from_kernel(&p, &m.nlas, tag)),
            ))
        }
        XfrmMessage::FlushPolicy(_) => Ok(XfrmEvent::PoliciesFlushed),
        XfrmMessage::AddSa(m) => {
            SaInfo::from_kernel(&m.user_sa_info, &mut m.nlas, tag).map(XfrmEvent::SaAdded)
        }
        XfrmMessage::UpdateSa(m) => {
            SaInfo::from_kernel(&m.user_sa_info, &mut m.nlas, tag).map(XfrmEvent::SaUpdated)
        }
        XfrmMessage::DeleteSa(m) => {
            let info = m.nlas.iter().find_map(|a| match a {
                XfrmAttrs::SaInfo(s) => Some(*s),
                _ => None,
            });
            match info {
                Some(i) => {
                    SaInfo::from_kernel(&i, &mut m.nlas, tag).map(|s| XfrmEvent::SaDeleted(Some(s)))
                }
                None => Ok(XfrmEvent::SaDeleted(None)),
            }
        }
        XfrmMessage::FlushSa(_) => Ok(XfrmEvent::SasFlushed),
        _ => {
            scrub(&mut msg);
            return None;
        }
    };
    scrub(&mut msg);
    Some(ev)
}

fn acquire(a: &nx::UserAcquire, nlas: &[XfrmAttrs], tag: u32) -> Result<Acquire, Error> {
    let policy = PolicyInfo::from_kernel(&a.policy, nlas, tag);
    // The acquire's own addresses are of the template's family, the flow's
    // of the selector's.
    let template = policy.templates.first().copied();
    let flow = Selector::from_kernel(&a.selector);
    let family = Family::from_af(a.policy.selector.family)
        .or_else(|| flow.map(|f| f.family()))
        .ok_or_else(|| Error::Decode("ACQUIRE of unknown address family".to_owned()))?;
    let family = match template.and_then(|t| t.tunnel) {
        Some((src, _)) => Family::of(&src),
        None => family,
    };
    Ok(Acquire {
        seq: a.seq,
        src: addr_from_kernel(&a.saddr, family),
        dst: addr_from_kernel(&a.id.daddr, family),
        protocol: Protocol::from_number(a.id.proto),
        flow,
        policy,
        template,
    })
}

fn mapping(m: &nx::UserMapping) -> Result<Mapping, Error> {
    let family = Family::from_af(m.id.family)
        .ok_or_else(|| Error::Decode("MAPPING of unknown address family".to_owned()))?;
    Ok(Mapping {
        dst: addr_from_kernel(&m.id.daddr, family),
        spi: m.id.spi,
        protocol: Protocol::from_number(m.id.proto),
        reqid: m.reqid,
        old: SocketAddr::new(addr_from_kernel(&m.old_saddr, family), m.old_sport),
        new: SocketAddr::new(addr_from_kernel(&m.new_saddr, family), m.new_sport),
    })
}
