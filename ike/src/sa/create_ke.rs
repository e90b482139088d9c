//! The responder's key exchange of CREATE_CHILD_SA (a Child SA with PFS,
//! created or rekeyed; an IKE rekey) as CPU work (`compute`): the request
//! is held (the peer's retransmissions dropped meanwhile) and handled
//! again from the start with the result, which the handler then uses
//! instead of computing it. What the handler checks before the key
//! exchange only reads the IKE SA, so the second pass decides as the
//! first did, unless the IKE SA changed meanwhile (then it answers as it
//! would have to a request that came then).

use std::time::Instant;

use tracing::debug;

use super::compute::Done;
use super::endpoint::Ctx;
use super::ike_sa::IkeSa;
use super::window::{Held, Waits};
use crate::crypto::Secret;
use crate::wire::codes::ExchangeType;
use crate::wire::{KeyExchange, Message};

/// A responder's key exchange: our public value and the shared secret,
/// or why the peer's value is unusable.
pub(crate) type KeDone = Result<(Vec<u8>, Secret), String>;

impl IkeSa {
    /// Responder: asks for the key exchange with the peer's `kei` and
    /// holds `msg`, the request, until it is done.
    pub(crate) fn await_create_ke(&mut self, ctx: &mut Ctx, msg: &Message, kei: &KeyExchange) {
        ctx.compute_create_ke(self.id, kei.group, kei.data.clone());
        self.window.hold(Held {
            mid: msg.header.message_id,
            exchange: ExchangeType::CREATE_CHILD_SA,
            waits: Waits::Ke(Box::new(msg.clone())),
        });
    }

    /// The key exchange asked for by `await_create_ke` is done: the held
    /// request is handled again with it.
    pub(crate) fn create_ke_done(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        result: Result<Done, String>,
    ) {
        if !matches!(self.window.held().map(|h| &h.waits), Some(Waits::Ke(_))) {
            debug!("{}: no CREATE_CHILD_SA request waits", self.name());
            return;
        }
        let Some(Held {
            waits: Waits::Ke(msg),
            ..
        }) = self.window.take_held()
        else {
            return;
        };
        let ke = match result {
            Ok(Done::Responded { public, shared }) => Ok((public, shared)),
            Ok(other) => Err(format!("{other:?} is not a key exchange")),
            Err(e) => Err(e),
        };
        self.create_child_request_ke(ctx, now, &msg, Some(ke));
    }
}
