//! `ike`: IKEv2 (RFC 7296) as a library with no I/O and no clock.
//!
//! Layers, bottom up (see docs/architecture.md):
//! - [`wire`]: IKEv2 messages and payloads, checked parsing and emitting.
//! - [`config`]: the YAML configuration (swanctl.conf names), typed and validated.
//! - [`crypto`]: key exchange, PRFs, key derivation, SK payload protection,
//!   AUTH, proposals; behind the [`crypto::CryptoProvider`] trait.
//!
//! - [`sa`]: the IKE SA state machines behind the sans-IO [`sa::Endpoint`].
//! - [`pki`]: keys, signatures (RFC 7427), X.509 certificates, chains,
//!   CRLs and the trust store.
//! - [`from_config`]: the configuration as the engine's peer configurations
//!   and pre-shared keys.
//! - [`control`]: the `ikectl` ↔ `iked` protocol types (serde, no I/O).
//! - [`pool`]: virtual IP address pools with leases per identity, not yet
//!   used by the engine.
//! - [`eap`]: the EAP method interface ([`eap::Method`]) and the methods
//!   (EAP-MSCHAPv2's computations so far).
//! - [`radius`]: the RADIUS client of EAP-RADIUS and accounting (codec,
//!   MS-MPPE keys, retransmission and failover), sans-IO.
//! - [`display`]: identities and traffic selectors as text (strongSwan's
//!   notation), for logs, status and routes.
//!
//! Nothing above opens a socket, reads a clock or spawns a task: the daemon
//! (crate `ike-daemon`) feeds datagrams and time in and carries the outputs
//! out. The library has no tokio, no netlink and no I/O in its dependencies.

#![forbid(unsafe_code)]
// No arithmetic that can overflow, divide by zero or panic, on integers or
// on time (`Instant + Duration` panics on overflow; the engine adds with
// `sa::ike_sa::later`): checked or saturating operations only. Tests may.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod config;
pub mod control;
pub mod crypto;
pub mod display;
pub mod eap;
mod error;
pub mod from_config;
pub mod pki;
pub mod pool;
pub mod radius;
pub mod sa;
mod sk;
pub mod wire;
