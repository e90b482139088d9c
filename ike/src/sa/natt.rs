//! NAT traversal beyond detection (RFC 7296 2.23, RFC 3948): the move of
//! IKE to the NAT-T port, ESP in UDP for the Child SAs, NAT keepalives from
//! the side behind NAT, and following the peer when its NAT mapping
//! changes (an authenticated IKE message from a new address, or the
//! kernel's MAPPING event for an inbound ESP SA).
//!
//! ```text
//! IKE_SA_INIT: NAT_DETECTION_* hashes -> nat.local / nat.remote
//!   encap = nat.local || nat.remote || peer.encap || initiator sent from %any
//!   initiator: local port -> natt_port, remote port 500 -> 4500, from IKE_AUTH on
//!   responder: takes the addresses of the (authenticated) IKE_AUTH request
//!   nat.local: a keepalive (0xFF) every keep_alive
//! established, nat.remote: an authenticated message from a new address,
//!   or the kernel's MAPPING event -> remote = new, UpdateChild per child
//! ```
//!
//! The daemon adds the non-ESP marker to everything it sends from the
//! NAT-T port except keepalives, and has `UDP_ENCAP_ESPINUDP` on that
//! socket so the kernel takes the ESP arriving there.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use tracing::{debug, info};

use super::endpoint::Ctx;
use super::ike_sa::{IkeSa, Phase, later};
use super::timers::IkeTimer;

/// The IKE port; a peer configured on it moves to [`IKE_NATT_PORT`].
const IKE_PORT: u16 = 500;
/// The peer's NAT-T port when it was on [`IKE_PORT`].
const IKE_NATT_PORT: u16 = 4500;

/// An IKE SA's NAT traversal state.
#[derive(Debug, Default)]
pub(crate) struct NatT {
    /// NAT detected in front of us (we send keepalives).
    pub(crate) local: bool,
    /// NAT detected in front of the peer (we follow its address).
    pub(crate) remote: bool,
    /// IKE on the NAT-T port and the Child SAs with ESP in UDP.
    pub(crate) encap: bool,
    /// Responder: where the IKE_SA_INIT request came from (the key of
    /// retransmitted requests, which stays when the peer moves).
    pub(crate) init_remote: Option<SocketAddr>,
}

/// The address NAT_DETECTION_SOURCE_IP is computed over when `encap`
/// forces encapsulation: it matches no real address, so the peer sees NAT
/// in front of us (strongSwan sends a random hash).
pub(crate) fn fake_source() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
}

impl IkeSa {
    /// Both roles, once IKE_SA_INIT is done and `nat.local`/`nat.remote`
    /// are known: whether to encapsulate, and the keepalive timer. The
    /// initiator also moves to the NAT-T ports (`sent_from_any`: its
    /// NAT_DETECTION_SOURCE_IP was over the unspecified address, so the
    /// responder sees NAT in front of it and encapsulates).
    /// `peer_natd`: the responder sent NAT_DETECTION notifies (it does
    /// NAT-T, so it listens on the NAT-T port).
    pub(crate) fn natt_after_init(
        &mut self,
        ctx: &Ctx,
        now: Instant,
        sent_from_any: bool,
        peer_natd: bool,
    ) {
        self.nat.encap = self.nat.local || self.nat.remote || self.peer.encap || sent_from_any;
        // With MOBIKE configured the initiator moves to the NAT-T ports
        // even without NAT, if the peer does NAT detection: there is no
        // exchange to move in later, when a move puts us behind a NAT
        // (charon's ike_natd.c does the same). Only from the IKE port's
        // peer, whose NAT-T port is known (4500): a peer on another port
        // (`remote_port`) would get the non-ESP marker on its IKE port,
        // where it is no IKE header, and drop every request.
        let float = self.nat.encap
            || (self.initiator && self.peer.mobike && peer_natd && self.remote.port() == IKE_PORT);
        if !float {
            return;
        }
        if self.nat.local && !ctx.cfg.keep_alive.is_zero() {
            self.timers
                .arm(IkeTimer::Keepalive, later(now, ctx.cfg.keep_alive));
        }
        if self.initiator {
            let from = (self.local, self.remote);
            self.local.set_port(ctx.cfg.natt_port);
            if self.remote.port() == IKE_PORT {
                self.remote.set_port(IKE_NATT_PORT);
            }
            debug!(
                "{}: NAT {}, moving IKE from {} => {} to {} => {}",
                self.name(),
                self.nat_text(),
                from.0,
                from.1,
                self.local,
                self.remote
            );
        }
    }

    fn nat_text(&self) -> &'static str {
        match (self.nat.local, self.nat.remote) {
            (true, true) => "on both sides",
            (true, false) => "in front of us",
            (false, true) => "in front of the peer",
            (false, false) => "forced (encap)",
        }
    }

    /// A keepalive if one is due, and the next one.
    pub(crate) fn natt_timeout(&mut self, ctx: &mut Ctx, now: Instant) {
        if !self.timers.is_due(IkeTimer::Keepalive, now) {
            return;
        }
        self.timers
            .arm(IkeTimer::Keepalive, later(now, ctx.cfg.keep_alive));
        debug!("{}: NAT keepalive to {}", self.name(), self.remote);
        self.transmit(ctx, vec![0xff]);
    }

    /// An authenticated message (a new request, or the answer to ours)
    /// arrived on `local` from `remote`. The responder takes the addresses
    /// of the IKE_AUTH request (the initiator's move to the NAT-T port);
    /// once established, a peer behind NAT whose mapping changed is
    /// followed (RFC 7296 2.23), with its Child SAs.
    pub(crate) fn natt_authenticated(
        &mut self,
        ctx: &mut Ctx,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        if (local, remote) == (self.local, self.remote) {
            return;
        }
        if self.mobike.enabled() {
            // With MOBIKE only UPDATE_SA_ADDRESSES moves the SA (RFC 4555
            // 3.8; charon: "only do implicit updates without MOBIKE").
            return;
        }
        match self.phase {
            Phase::HalfOpen(_) => {
                debug!(
                    "{}: IKE_AUTH from {remote} to {local} (IKE_SA_INIT: {} to {})",
                    self.name(),
                    self.remote,
                    self.local
                );
                self.local = local;
                self.remote = remote;
            }
            Phase::Established | Phase::Rekeying | Phase::Deleting { .. } if self.nat.remote => {
                // Once on the NAT-T port we stay there (RFC 7296 2.23): a
                // message to our IKE port moves only the peer.
                let local = if self.nat.encap {
                    SocketAddr::new(local.ip(), self.local.port())
                } else {
                    local
                };
                if (local, remote) != (self.local, self.remote) {
                    self.moved(ctx, Some(local), remote, "IKE message");
                }
            }
            _ => debug!(
                "{}: authenticated message from {remote} to {local}, not moving the SA",
                self.name()
            ),
        }
    }

    /// The kernel saw ESP of one of our inbound SAs arrive from `remote`.
    pub(crate) fn natt_mapping(&mut self, ctx: &mut Ctx, remote: SocketAddr) {
        if remote == self.remote {
            return;
        }
        if !self.nat.encap
            || !self.nat.remote
            || !matches!(self.phase, Phase::Established | Phase::Rekeying)
        {
            debug!(
                "{}: kernel reports ESP from {remote}, peer not behind NAT; ignored",
                self.name()
            );
            return;
        }
        self.moved(ctx, None, remote, "kernel NAT mapping event");
    }

    /// The peer is now at `remote` (and we at `local`, if given): the IKE
    /// SA follows, and every installed Child SA with it.
    fn moved(&mut self, ctx: &mut Ctx, local: Option<SocketAddr>, remote: SocketAddr, why: &str) {
        info!(
            "IKE SA {}: NAT mapping of the peer changed ({why}): {} => {remote}",
            self.name(),
            self.remote
        );
        if let Some(l) = local {
            self.local = l;
        }
        self.remote = remote;
        self.update_children(ctx);
    }
}
