//! IKE SA state machines and the [`Endpoint`] that routes datagrams to them:
//! what makes two peers bring up a tunnel. Sans-IO: no sockets, no clock,
//! no kernel; time comes in as `now`, everything else goes out through
//! `poll_*` methods (quinn-proto's endpoint is the model).
//!
//! ```text
//!  handle_datagram(now, local, remote, bytes)     poll_transmit()  -> Transmit
//!  handle_timeout(now)                  Endpoint  poll_kernel_op() -> KernelOp
//!  handle_kernel_result(now, result)    ───────►  poll_event()     -> Event
//!  initiate / terminate_* / set_config            poll_timeout()   -> Instant
//! ```
//!
//! The daemon strips the non-ESP marker from datagrams received on port
//! 4500 before [`Endpoint::handle_datagram`] and adds it to
//! [`Transmit::payload`] when it sends from port 4500.
//!
//! Structure: the endpoint owns all IKE SAs in a map keyed by [`IkeSaId`],
//! with an index from our IKE SPI (and, for IKE_SA_INIT requests, the
//! peer's address and SPI) to the id, and a timer heap. Each IKE SA has at
//! most one exchange of its own in flight (window size 1) and answers the
//! peer's requests in order with a response cache. Each exchange is one
//! module with both roles: [`ike_init`], [`ike_auth`], [`child_create`],
//! [`informational`] (delete and liveness).

// Work in progress: the exchange bodies are being filled in.
#![allow(dead_code)]

mod child_create;
mod config;
mod endpoint;
mod ike_auth;
mod ike_init;
mod ike_sa;
mod informational;
mod timers;
mod ts;
mod types;

#[cfg(test)]
mod tests;

pub use config::{AddrSpec, ChildCfg, EndpointConfig, Mode, PeerCfg, PskStore, PskTable, TsCfg};
pub use endpoint::Endpoint;
pub use ts::narrow;
pub use types::{
    ChildFailReason, ChildId, ChildInstall, ChildRemove, ChildSaInfo, ChildState, CommandError,
    Event, IkeFailReason, IkeSaId, IkeSaInfo, IkeState, KernelOk, KernelOp, KernelReq,
    KernelResult, Transmit,
};
