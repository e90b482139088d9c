//! A typed async handle over the Linux kernel's XFRM netlink interface: the
//! IPsec SAs and policies iked installs after negotiating them with IKEv2.
//!
//! ```no_run
//! # async fn demo() -> Result<(), xfrm_netlink::Error> {
//! use xfrm_netlink::*;
//! let (connection, handle) = new_connection()?;
//! tokio::spawn(connection);
//!
//! let (me, peer) = ("192.0.2.1".parse().unwrap(), "198.51.100.1".parse().unwrap());
//! let spi = handle.sa().alloc_spi(peer, me, Protocol::Esp, 0xc000_0000, 0xcfff_ffff, 7).await?;
//! let key = Key::new(vec![0u8; 36]); // from KEYMAT: 32 key octets + 4 salt
//! let sa = SaConfig::new(peer, me, Protocol::Esp, spi, Mode::Tunnel,
//!     Transforms::Aead { alg: AeadAlg::AesGcm(AesKey::Aes256, Icv::Icv16), key })
//!     .reqid(7).replay_window(128).esn(true);
//! handle.sa().update(sa).execute().await?; // fills in the larval SA
//!
//! let mut events = handle.events(EventGroups::DAEMON)?;
//! while let Some(ev) = events.next_event().await {
//!     if let Ok(XfrmEvent::Expire(e)) = ev { /* rekey e.sa */ }
//! }
//! # Ok(()) }
//! ```
//!
//! # Connection and handle
//! [`new_connection`] opens a netlink socket in the calling thread's network
//! namespace and returns a [`Connection`] future to spawn on tokio and a
//! cloneable [`Handle`]. Requests are built with typed arguments
//! ([`SaConfig`], [`PolicyConfig`], [`Selector`], [`Transforms`]) and run
//! with `.execute().await` or an async method. Events come from a separate
//! socket: [`Handle::events`] / [`subscribe`] return an [`EventStream`]
//! (a `futures_core::Stream` of [`XfrmEvent`]).
//!
//! # Ownership: which SAs and policies are iked's
//! Every SA and policy iked installs carries an **owner tag in the `user`
//! field of its selector** (`struct xfrm_selector.user`, a 32-bit field the
//! kernel stores, returns in dumps and events, and compares when it looks a
//! policy up by selector, but never uses to match packets). The default tag
//! is [`DEFAULT_OWNER_TAG`] (ASCII "iked").
//!
//! Why this and not the alternatives:
//! - It covers everything: SAs (the SA's selector), IPsec policies, trap
//!   policies (templates, no SA yet) and bypass or drop policies (no
//!   template, so no reqid). A reqid range would miss template-less
//!   policies; a policy index or priority range would miss SAs, and the
//!   kernel's own index generator can walk into any index range.
//! - It does not change what traffic matches, unlike a mark or `if_id`, and
//!   leaves marks, `if_id`, reqids and priorities free for configuration.
//! - It keeps iked off other daemons' state even when selectors collide:
//!   the tag is part of a policy's key, so iked's get/update/delete by
//!   selector can never hit a foreign policy with the same selector (the
//!   kernel keeps both; priorities decide which one traffic uses).
//! - ACQUIRE events carry the policy with its selector, so the daemon can
//!   tell its own trap policies from others' ([`PolicyInfo::owned`]).
//!
//! Limits: SPIs reserved with [`SaHandle::alloc_spi`] are larval SAs the
//! kernel creates with its own selector (tag 0); the kernel deletes them
//! after `net.core.xfrm_acq_expires` (30 s) unless iked fills them in with
//! [`SaHandle::update`], which writes the tag. Per-socket bypass policies
//! ([`bypass_socket`]) belong to their socket and die with it; dumps show
//! them ([`PolicyInfo::per_socket`]) and `flush_owned` skips them.
//!
//! [`Handle::flush_owned`] deletes exactly the SAs and policies carrying the
//! handle's tag (cleanup after a crashed daemon); [`SaHandle::delete`]
//! refuses to delete a foreign SA.
//!
//! # Keys
//! Keys are held in [`Key`] (zeroized on drop). Each request is encoded into
//! a buffer that is zeroized after sending, and the key copies inside the
//! `netlink-packet-xfrm` message are zeroized right after encoding. Replies
//! and events that carry keys (GETSA, dumps, SA events) are received into a
//! buffer zeroized after decoding, and the decoded keys are zeroized before
//! the typed result is returned (which never contains keys). The socket
//! sets `NETLINK_CAP_ACK`, so kernel errors do not echo the request (and its
//! keys) back. Not covered: copies the kernel keeps (inherent), and
//! transient copies the compiler may leave in registers or on the stack.
//!
//! # Crates
//! - `netlink-packet-xfrm` 0.5 (with `netlink-packet-core` 0.9): the XFRM
//!   message structs and attributes. Its parsers slice before checking
//!   lengths, so this crate length-checks every kernel message first (and
//!   parses under `catch_unwind` as a backstop). Its `Id.spi`, ports and
//!   mapping ports are host byte order after parsing.
//! - `netlink-sys` 0.9 (`tokio_socket`): the socket itself (bind,
//!   `NETLINK_CAP_ACK`, `NETLINK_EXT_ACK`, multicast membership) with tokio
//!   readiness.
//! - Not `netlink-proto`: its framed writer only `clear()`s the buffer that
//!   held the last request (keys included) and the caller cannot reach it,
//!   so the request loop (sequence numbers, ACK/dump handling) is written
//!   here, in `conn.rs`.
//! - `tokio` (the daemon's runtime), `futures-core` (the `Stream` trait
//!   only), `libc` (the `setsockopt` of [`bypass_socket`], errno values),
//!   `zeroize`, `thiserror`, `tracing`.
//!
//! # Testing
//! - `cargo test -p xfrm-netlink`: unit tests (no kernel) and `tests/netns.rs`,
//!   which runs against the host kernel inside network namespaces it creates
//!   and removes (needs root; fails, never skips, without it). Written for a
//!   kernel *without* ESP (this project's machines); its
//!   `..._without_esp` test fails by design on a kernel with ESP.
//! - `tests/esp_lab.rs` needs ESP/AH and the crypto modules, which this
//!   project's machines lack: each of its tests boots the UML kernel lab
//!   (`iked_lab::in_uml`, tests/lab/README.md) and runs its body there, as
//!   part of the same `cargo test` (root needed; a lab that cannot boot
//!   fails the test). One test drives ping through every algorithm, mode
//!   and family; the other covers error messages, the SA API and events.
//!
//! # Errors
//! Kernel errnos are translated into [`Error::Kernel`] with a message an
//! operator can act on (e.g. "the kernel has no ESP support for IPv4
//! (CONFIG_INET_ESP)"), the original errno, and the kernel's
//! extended-ack text when it sends one.

// No arithmetic that can overflow, divide by zero or panic (time included:
// `Instant + Duration` panics on overflow): checked or saturating
// operations only. Tests may.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod alg;
mod bypass;
mod codec;
mod conn;
mod error;
mod event;
mod policy;
mod sa;
mod types;

pub use alg::{
    AeadAlg, AesKey, AlgInfo, AlgNames, CipherAlg, CompAlg, Icv, IntegrityAlg, Key, Transforms,
};
pub use bypass::{bypass_socket, espinudp_socket};
pub use conn::{
    Connection, DEFAULT_OWNER_TAG, DEFAULT_REQUEST_TIMEOUT, Handle, new_connection,
    new_connection_with_owner,
};
pub use error::{Error, KernelError, KernelErrorKind, errno_name};
pub use event::{
    Acquire, EventGroups, EventStream, Expire, Mapping, PolicyExpire, XfrmEvent, subscribe,
    subscribe_with_owner,
};
pub use policy::{
    PolicyAction, PolicyAddRequest, PolicyConfig, PolicyHandle, PolicyId, PolicyInfo, Template,
};
pub use sa::{
    MAX_REPLAY_WINDOW, Offload, ReplayState, SaAddRequest, SaConfig, SaHandle, SaId, SaInfo,
    SaOptions, SaStats, UdpEncap,
};
pub use types::{
    Direction, Family, IpPrefix, Lifetimes, Limits, Mark, Mode, PortMatch, Protocol, Selector,
    Usage,
};

/// The raw message types, for inspecting what a request sends.
pub use netlink_packet_xfrm as packet;

/// What [`Handle::flush_owned`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushReport {
    /// Policies deleted.
    pub policies: usize,
    /// SAs deleted.
    pub sas: usize,
    /// Foreign policies left alone.
    pub foreign_policies: usize,
    /// Foreign SAs left alone.
    pub foreign_sas: usize,
}

impl Handle {
    /// Deletes every SA and policy carrying this handle's owner tag and
    /// nothing else (cleanup after a crashed daemon). Entries that vanish
    /// meanwhile (expired, deleted by someone else) are not errors.
    pub async fn flush_owned(&self) -> Result<FlushReport, Error> {
        let mut report = FlushReport::default();
        for p in self.policy().dump().await? {
            if p.per_socket {
                continue;
            }
            if !p.owned {
                report.foreign_policies = report.foreign_policies.saturating_add(1);
                continue;
            }
            match self.policy().delete_by_index(&p).await {
                Ok(()) => report.policies = report.policies.saturating_add(1),
                Err(e) if e.kernel_kind() == Some(KernelErrorKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        for sa in self.sa().dump().await? {
            let Some(id) = sa.id() else {
                report.foreign_sas = report.foreign_sas.saturating_add(usize::from(!sa.owned));
                continue;
            };
            if !sa.owned {
                report.foreign_sas = report.foreign_sas.saturating_add(1);
                continue;
            }
            match self.sa().delete_unchecked(id).await {
                Ok(()) => report.sas = report.sas.saturating_add(1),
                Err(e) if e.kernel_kind() == Some(KernelErrorKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod saopt_tests;
#[cfg(test)]
mod tests;
