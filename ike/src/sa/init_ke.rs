//! The initiator's key generation for IKE_SA_INIT as CPU work
//! (`compute`, with `ComputeMode::Outside`; inline it is made with the
//! IKE SA, as before): the IKE SA is made without its key exchange, the
//! first IKE_SA_INIT waits for the job, and goes out with its result.
//! A new group asked for by INVALID_KE_PAYLOAD is still made at once
//! (rare, and the request must go out again with it).

use std::time::Instant;

use super::compute::Done;
use super::endpoint::Ctx;
use super::ike_init::first_ke;
use super::ike_sa::IkeSa;
use super::types::IkeFailReason;

impl IkeSa {
    /// Initiator: whether IKE_SA_INIT waits for our key exchange (asked
    /// for now if it was not yet).
    pub(crate) fn ask_init_ke(&mut self, ctx: &mut Ctx) -> Result<bool, String> {
        let id = self.id;
        let h = self.phase.handshake_mut().ok_or("no IKE_SA_INIT state")?;
        if h.ke.is_some() {
            return Ok(false);
        }
        if !h.ke_asked {
            let group = first_ke(&h.init.proposals).ok_or("no IKE proposal with a key exchange")?;
            h.ke_asked = true;
            ctx.compute_start(id, group);
        }
        Ok(true)
    }

    /// The key exchange asked for by `ask_init_ke` is made: IKE_SA_INIT
    /// goes out with it.
    pub(crate) fn init_ke_done(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        result: Result<Done, String>,
    ) {
        let Some(h) = self.phase.handshake_mut() else {
            return;
        };
        if !h.ke_asked || h.ke.is_some() {
            return;
        }
        h.ke_asked = false;
        let sent = match result {
            Ok(Done::Started(ke)) => {
                h.ke = Some(ke);
                self.send_init(ctx, now)
            }
            Ok(other) => Err(format!("{other:?} is not a key exchange")),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            self.fail(ctx, IkeFailReason::Internal(e));
        }
    }
}
