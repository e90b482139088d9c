//! `iked`'s driver of the sans-IO `ike` library (docs/architecture.md):
//! the tokio event loop, the IKE sockets, the XFRM netlink bridge, routes,
//! traps and the control socket. The binaries `iked` and `ikectl` live here.

#![forbid(unsafe_code)]

pub mod daemon;
