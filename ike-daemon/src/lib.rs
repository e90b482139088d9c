//! `ike`: IKEv2 (RFC 7296) as a library with no I/O and no clock.
//!
//! Layers, bottom up (see docs/architecture.md):
//! - [`wire`]: IKEv2 messages and payloads, checked parsing and emitting.
//! - [`config`]: the YAML configuration (swanctl.conf names), typed and validated.
//! - [`crypto`]: key exchange, PRFs, key derivation, SK payload protection,
//!   AUTH, proposals; behind the [`crypto::CryptoProvider`] trait.
//!
//! Nothing here opens a socket, reads a clock or spawns a task: the daemon
//! (feature `daemon`) feeds datagrams and time in and carries the outputs out.

#![forbid(unsafe_code)]

pub mod config;
pub mod crypto;
pub mod sa;
pub mod wire;
