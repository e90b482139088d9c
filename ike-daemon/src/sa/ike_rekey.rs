//! Rekeying the IKE SA (RFC 7296 1.3.2, 2.18).

use std::time::Instant;

use tracing::info;

use super::endpoint::Ctx;
use super::ike_sa::IkeSa;
use crate::wire::codes::{ExchangeType, NotifyType};
use crate::wire::{Message, Notify, Payload};

impl IkeSa {
    /// Responder: a CREATE_CHILD_SA that rekeys the IKE SA.
    pub(crate) fn ike_rekey_request(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        let _ = now;
        info!(
            "{}: peer wants to rekey the IKE SA, which iked does not implement yet; sending NO_ADDITIONAL_SAS",
            self.name()
        );
        self.send_response(
            ctx,
            ExchangeType::CREATE_CHILD_SA,
            msg.header.message_id,
            vec![Payload::Notify(Notify::new(
                NotifyType::NO_ADDITIONAL_SAS,
                Vec::new(),
            ))],
        );
    }
}
