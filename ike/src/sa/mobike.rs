//! MOBIKE (RFC 4555), both roles: MOBIKE_SUPPORTED in IKE_AUTH, and the
//! original initiator moving the IKE SA and its Child SAs to a new local
//! address with an INFORMATIONAL carrying UPDATE_SA_ADDRESSES, NAT
//! detection over the new addresses and COOKIE2. strongSwan's
//! `ike_mobike.c` is the model.
//!
//! ```text
//! IKE_SA_INIT: peer.mobike && the peer sent NAT_DETECTION_* -> the
//!   initiator moves to the NAT-T ports (natt_after_init), NAT or not:
//!   a later move behind a NAT needs no change of ports
//! IKE_AUTH: I sends MOBIKE_SUPPORTED (peer.mobike); R answers it if its
//!   chosen connection has mobike: both set `enabled`
//! established, `enabled`:
//!   no implicit updates any more (natt_authenticated): a message from
//!     elsewhere moves nothing, but our answer goes back where the
//!     request came from (`Ctx::reply_to`, RFC 7296 2.11), so the peer can probe
//!     a path before it moves
//!   original initiator, `Endpoint::roam(id, ip)`: local = ip,
//!     INFORMATIONAL { UPDATE_SA_ADDRESSES, NAT_D_SRC, NAT_D_DST, COOKIE2 }
//!     answer: COOKIE2 must match (else the IKE SA goes, as charon), its
//!     NAT_D -> nat.local/remote/encap, UpdateChild per installed child
//!   responder of UPDATE_SA_ADDRESSES: local/remote = the request's path,
//!     its NAT_D -> NAT state, UpdateChild per installed child; answers
//!     NAT_D over that path and echoes COOKIE2
//! ```
//!
//! Not done: ADDITIONAL_*_ADDRESS lists (received ones are ignored; we
//! send none, which RFC 4555 allows: the peer then knows only the
//! address it talks to) and path probing over several addresses (the
//! daemon tells the engine the one source address the routing table
//! picks now).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use subtle::ConstantTimeEq;
use tracing::{debug, info};

use super::endpoint::Ctx;
use super::ike_init::{nat_detected, nat_hash};
use super::ike_sa::{IkeSa, KernelPurpose, Phase, Task, later, notify};
use super::natt::fake_source;
use super::timers::IkeTimer;
use super::types::{ChildState, ChildUpdate, CommandError, IkeFailReason, KernelOp};
use crate::wire::codes::{ExchangeType, NotifyType};
use crate::wire::{Message, Notify, Payload};

/// Octets of the COOKIE2 we send (strongSwan's size; RFC 4555 allows
/// 8 to 64).
const COOKIE2_LEN: usize = 16;

/// An IKE SA's MOBIKE state, one octet (an `IkeSa` is per tunnel);
/// where the request being answered came from is `Ctx::reply_to`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Mobike {
    /// Not negotiated (not both sides sent MOBIKE_SUPPORTED).
    #[default]
    Off,
    /// Negotiated, and we initiated the first IKE SA of this line (its
    /// rekeyed IKE SAs inherit this): we may move it (RFC 4555 3.1).
    Ours,
    /// Negotiated, the peer initiated: only the peer moves it.
    Theirs,
}

impl Mobike {
    /// Negotiated in IKE_AUTH, whose initiator is the original one.
    fn negotiated(initiator: bool) -> Self {
        if initiator {
            Mobike::Ours
        } else {
            Mobike::Theirs
        }
    }

    /// Both sides announced it.
    pub(crate) fn enabled(self) -> bool {
        self != Mobike::Off
    }
}

/// The MOBIKE_SUPPORTED notify.
fn supported() -> Payload {
    Payload::Notify(Notify::new(NotifyType::MOBIKE_SUPPORTED, Vec::new()))
}

impl IkeSa {
    /// IKE_AUTH initiator: what the request announces.
    pub(crate) fn mobike_auth_request(&self) -> Option<Payload> {
        self.peer.mobike.then(supported)
    }

    /// IKE_AUTH initiator: the responder's answer.
    pub(crate) fn mobike_auth_response(&mut self, msg: &Message) {
        if self.peer.mobike && notify(msg, NotifyType::MOBIKE_SUPPORTED).is_some() {
            debug!("{}: peer supports MOBIKE", self.name());
            self.mobike = Mobike::negotiated(self.initiator);
        }
    }

    /// IKE_AUTH responder (the connection chosen): whether to answer
    /// MOBIKE_SUPPORTED.
    pub(crate) fn mobike_auth_answer(&mut self, msg: &Message) -> Option<Payload> {
        notify(msg, NotifyType::MOBIKE_SUPPORTED)?;
        if !self.peer.mobike {
            debug!(
                "{}: peer supports MOBIKE, but disabled in config",
                self.name()
            );
            return None;
        }
        debug!("{}: peer supports MOBIKE", self.name());
        self.mobike = Mobike::negotiated(self.initiator);
        Some(supported())
    }

    /// A request of the peer's arrived on `local` from `remote`: with
    /// MOBIKE its answer goes back there, whatever the SA's addresses.
    pub(crate) fn mobike_request_path(&self, ctx: &mut Ctx, local: SocketAddr, remote: SocketAddr) {
        let elsewhere = self.mobike.enabled() && (local, remote) != (self.local, self.remote);
        if elsewhere {
            ctx.reply_to = Some((self.id, local, remote));
        } else if ctx.reply_to.is_some_and(|(id, ..)| id == self.id) {
            ctx.reply_to = None;
        }
    }

    /// Where an answer goes: the request's path (MOBIKE), or the SA's.
    pub(crate) fn reply_path(&self, ctx: &Ctx) -> (SocketAddr, SocketAddr) {
        match ctx.reply_to {
            Some((id, local, remote)) if id == self.id => (local, remote),
            _ => (self.local, self.remote),
        }
    }

    /// The `roam` command: our address is now `ip` (the daemon saw the old
    /// one go, or the route to the peer change). The original initiator
    /// of an IKE SA with MOBIKE moves it there and tells the peer.
    pub(crate) fn roam(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        ip: IpAddr,
    ) -> Result<(), CommandError> {
        if !matches!(self.phase, Phase::Established) {
            return Err(CommandError::WrongState(self.state()));
        }
        if self.mobike != Mobike::Ours {
            return Err(CommandError::NoMobike);
        }
        if ip == self.local.ip() {
            return Ok(());
        }
        let from = self.local;
        self.local = SocketAddr::new(ip, from.port());
        info!(
            "IKE SA {}: local address {} => {}, updating the peer {} (MOBIKE)",
            self.name(),
            from.ip(),
            ip,
            self.remote
        );
        // A move not yet sent covers this one too: it is built when it
        // goes, from the addresses then.
        if !self
            .window
            .queue
            .iter()
            .any(|t| matches!(t, Task::UpdateAddresses { .. }))
        {
            let mut cookie2 = [0u8; COOKIE2_LEN];
            if let Err(e) = ctx.provider.fill_random(&mut cookie2) {
                self.fail(ctx, IkeFailReason::Internal(e.to_string()));
                return Ok(());
            }
            self.window
                .queue
                .push_back(Task::UpdateAddresses { cookie2 });
        }
        self.next_task(ctx, now);
        Ok(())
    }

    /// NAT_DETECTION_SOURCE_IP and _DESTINATION_IP over `local` and
    /// `remote` (a forced `encap` hashes an address that matches none).
    fn nat_detection(&self, local: SocketAddr, remote: SocketAddr) -> [Payload; 2] {
        let src = if self.peer.encap {
            fake_source()
        } else {
            local
        };
        [
            Payload::Notify(Notify::nat_detection(
                false,
                nat_hash(self.spi_i, self.spi_r, src),
            )),
            Payload::Notify(Notify::nat_detection(
                true,
                nat_hash(self.spi_i, self.spi_r, remote),
            )),
        ]
    }

    /// Sends UPDATE_SA_ADDRESSES from where we are now.
    pub(crate) fn send_update_addresses(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        cookie2: [u8; COOKIE2_LEN],
    ) {
        let mut inner = vec![Payload::Notify(Notify::new(
            NotifyType::UPDATE_SA_ADDRESSES,
            Vec::new(),
        ))];
        inner.extend(self.nat_detection(self.local, self.remote));
        inner.push(Payload::Notify(Notify::new(
            NotifyType::COOKIE2,
            cookie2.to_vec(),
        )));
        self.send_request(
            ctx,
            now,
            ExchangeType::INFORMATIONAL,
            inner,
            Task::UpdateAddresses { cookie2 },
        );
    }

    /// The answer to our UPDATE_SA_ADDRESSES.
    pub(crate) fn update_addresses_response(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
        cookie2: [u8; COOKIE2_LEN],
    ) {
        let echoed = notify(msg, NotifyType::COOKIE2).map_or(&[][..], |n| n.data.as_slice());
        if !bool::from(echoed.ct_eq(&cookie2)) {
            info!(
                "IKE SA {}: COOKIE2 mismatch, closing the IKE SA",
                self.name()
            );
            self.fail(
                ctx,
                IkeFailReason::InvalidResponse("COOKIE2 mismatch".into()),
            );
            return;
        }
        if self
            .window
            .queue
            .iter()
            .any(|t| matches!(t, Task::UpdateAddresses { .. }))
        {
            // A newer move follows and does all this again.
            return;
        }
        self.mobike_nat(ctx, now, msg, self.local, self.remote);
        self.update_children(ctx);
    }

    /// Responder: an INFORMATIONAL request of an IKE SA with MOBIKE; what
    /// its answer carries besides what `informational_request` adds.
    pub(crate) fn mobike_informational(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
    ) -> Vec<Payload> {
        if !self.mobike.enabled() {
            return Vec::new();
        }
        let (local, remote) = self.reply_path(ctx);
        let has_natd = notify(msg, NotifyType::NAT_DETECTION_SOURCE_IP).is_some();
        let mut answer = Vec::new();
        if notify(msg, NotifyType::UPDATE_SA_ADDRESSES).is_some() {
            if self.mobike == Mobike::Ours {
                // Only the original initiator moves the SA (RFC 4555 3.1).
                debug!(
                    "{}: UPDATE_SA_ADDRESSES from the original responder, ignored",
                    self.name()
                );
            } else {
                if (local, remote) != (self.local, self.remote) {
                    info!(
                        "IKE SA {}: peer moved {} => {} (MOBIKE), our address {}",
                        self.name(),
                        self.remote,
                        remote,
                        local
                    );
                }
                self.local = local;
                self.remote = remote;
                ctx.reply_to = None;
                if has_natd {
                    self.mobike_nat(ctx, now, msg, local, remote);
                }
                self.update_children(ctx);
            }
        }
        if has_natd {
            answer.extend(self.nat_detection(local, remote));
        }
        if let Some(c) = notify(msg, NotifyType::COOKIE2) {
            answer.push(Payload::Notify(Notify::new(
                NotifyType::COOKIE2,
                c.data.clone(),
            )));
        }
        answer
    }

    /// NAT detection again, from the NAT_DETECTION notifies of `msg` over
    /// the path `local`/`remote`: encapsulation and keepalives follow.
    fn mobike_nat(
        &mut self,
        ctx: &Ctx,
        now: Instant,
        msg: &Message,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        let (nat_local, nat_remote) = nat_detected(msg, self.spi_i, self.spi_r, local, remote);
        if (nat_local, nat_remote) != (self.nat.local, self.nat.remote) {
            debug!(
                "{}: NAT after the move: in front of us {nat_local}, in front of the peer {nat_remote}",
                self.name()
            );
        }
        self.nat.local = nat_local;
        self.nat.remote = nat_remote;
        self.nat.encap = nat_local || nat_remote || self.peer.encap;
        if nat_local && !ctx.cfg.keep_alive.is_zero() {
            if self.timers.get(IkeTimer::Keepalive).is_none() {
                self.timers
                    .arm(IkeTimer::Keepalive, later(now, ctx.cfg.keep_alive));
            }
        } else {
            self.timers.stop(IkeTimer::Keepalive);
        }
    }

    /// Every installed Child SA goes to the IKE SA's addresses (and
    /// encapsulation) in the kernel.
    pub(crate) fn update_children(&mut self, ctx: &mut Ctx) {
        let ids: Vec<_> = self
            .children
            .iter()
            .filter(|c| c.state == ChildState::Installed)
            .map(|c| (c.id, c.reqid))
            .collect();
        for (id, reqid) in ids {
            let req = ctx.kernel_req(self.id, KernelPurpose::Update);
            ctx.kernel_ops.push_back(KernelOp::UpdateChild {
                req,
                child: ChildUpdate {
                    id,
                    ike_sa: self.id,
                    reqid,
                    local: self.local,
                    remote: self.remote,
                    encap: self.nat.encap,
                },
            });
        }
    }
}
