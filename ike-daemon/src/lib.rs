//! `iked`'s driver of the sans-IO `ike` library (docs/architecture.md):
//! the tokio event loop, the IKE sockets, the XFRM netlink bridge, routes,
//! traps and the control socket. The binaries `iked` and `ikectl` live here.

#![forbid(unsafe_code)]
// No arithmetic that can overflow, divide by zero or panic (time included:
// `Instant + Duration` panics on overflow; the control socket and the clock
// feed it): checked or saturating operations only. Tests may.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod daemon;
