//! One IKE SA: its keys, message IDs, retransmissions, response cache, and
//! the dispatch of messages to the exchange tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::config::PeerCfg;
use super::endpoint::Ctx;
use super::types::{ChildId, CommandError, IkeSaId, IkeSaInfo, IkeState, KernelOk};
use crate::wire::Message;
use crate::wire::codes::ProtocolId;

/// Why a kernel request was made.
#[derive(Clone, Debug)]
pub(crate) enum KernelPurpose {
    /// The inbound SPI of a Child SA.
    AllocSpi {
        child: ChildId,
        protocol: ProtocolId,
        local: SocketAddr,
    },
    /// Installing a Child SA.
    Install { child: ChildId },
    /// Removing one (the result is only logged).
    Remove,
}

/// One IKE SA (work in progress).
#[derive(Debug)]
pub(crate) struct IkeSa {
    id: IkeSaId,
    peer: Arc<PeerCfg>,
    local: SocketAddr,
    remote: SocketAddr,
    spi_i: u64,
    dead: bool,
}

impl IkeSa {
    pub(crate) fn initiate(
        _ctx: &mut Ctx,
        _now: Instant,
        id: IkeSaId,
        peer: Arc<PeerCfg>,
        _children: &[&str],
    ) -> Result<Self, CommandError> {
        Err(CommandError::Internal(format!(
            "{id}: initiating {} is not implemented yet",
            peer.name
        )))
    }
    pub(crate) fn id(&self) -> IkeSaId {
        self.id
    }
    pub(crate) fn our_spi(&self) -> u64 {
        self.spi_i
    }
    pub(crate) fn init_key(&self) -> Option<(SocketAddr, u64)> {
        None
    }
    pub(crate) fn half_open(&self) -> bool {
        false
    }
    pub(crate) fn is_dead(&self) -> bool {
        self.dead
    }
    pub(crate) fn deadline(&self) -> Option<Instant> {
        None
    }
    pub(crate) fn handle_message(
        &mut self,
        _ctx: &mut Ctx,
        _now: Instant,
        _local: SocketAddr,
        _remote: SocketAddr,
        _msg: Message,
        _bytes: &[u8],
    ) {
    }
    pub(crate) fn handle_timeout(&mut self, _ctx: &mut Ctx, _now: Instant) {}
    pub(crate) fn handle_kernel(
        &mut self,
        _ctx: &mut Ctx,
        _now: Instant,
        _purpose: KernelPurpose,
        _outcome: Result<KernelOk, String>,
    ) {
    }
    pub(crate) fn initiate_child(
        &mut self,
        _ctx: &mut Ctx,
        _now: Instant,
        _child: &str,
    ) -> Result<(), CommandError> {
        Err(CommandError::WrongState(IkeState::Connecting))
    }
    pub(crate) fn terminate(&mut self, _ctx: &mut Ctx, _now: Instant) {
        self.dead = true;
    }
    pub(crate) fn terminate_child(
        &mut self,
        _ctx: &mut Ctx,
        _now: Instant,
        _child: ChildId,
    ) -> Result<(), CommandError> {
        Err(CommandError::NoSuchSa)
    }
    pub(crate) fn liveness_check(
        &mut self,
        _ctx: &mut Ctx,
        _now: Instant,
    ) -> Result<(), CommandError> {
        Err(CommandError::WrongState(IkeState::Connecting))
    }
    pub(crate) fn info(&self) -> IkeSaInfo {
        IkeSaInfo {
            id: self.id,
            peer: Some(self.peer.name.clone()),
            state: IkeState::Connecting,
            initiator: true,
            spi_i: self.spi_i,
            spi_r: 0,
            local_addr: self.local,
            remote_addr: self.remote,
            local_id: None,
            remote_id: None,
            suite: None,
            established_at: None,
            nat_local: false,
            nat_remote: false,
            children: Vec::new(),
        }
    }
}
