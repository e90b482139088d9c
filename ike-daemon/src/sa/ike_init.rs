//! IKE_SA_INIT (RFC 7296 1.2): both roles (work in progress).

use std::net::SocketAddr;
use std::time::Instant;

use super::endpoint::Ctx;
use super::ike_sa::IkeSa;
use super::types::IkeSaId;
use crate::wire::{Header, Message, ParseError};

/// Responder: a new IKE_SA_INIT request.
#[allow(clippy::too_many_arguments)]
pub(crate) fn respond(
    _ctx: &mut Ctx,
    _now: Instant,
    _id: IkeSaId,
    _local: SocketAddr,
    _remote: SocketAddr,
    _msg: &Message,
    _bytes: &[u8],
    _half_open: usize,
) -> Option<IkeSa> {
    None
}

/// Responder: an IKE_SA_INIT request that did not parse.
pub(crate) fn answer_parse_error(
    _ctx: &mut Ctx,
    _local: SocketAddr,
    _remote: SocketAddr,
    _header: &Header,
    _e: &ParseError,
) {
}
