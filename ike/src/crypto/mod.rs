//! The cryptography IKEv2 needs, behind a provider trait.
//!
//! - [`CryptoProvider`]: randomness, key exchange, PRFs and SK ciphers by
//!   IANA ID; [`DefaultProvider`] for real use, [`DeterministicProvider`]
//!   for replayable tests.
//! - [`keymat`]: SKEYSEED, SK_*, Child SA KEYMAT; [`auth`]: shared-key AUTH
//!   and NAT detection hashes.
//! - Secrets are [`Secret`]s (zeroized on drop, never printed).

pub mod auth;
pub mod encr;
pub mod ke;
pub mod keymat;
mod mac;
pub mod modp;
pub mod prf;
pub mod proposal;
pub mod provider;
pub mod secret;
/// Protection of the Encrypted (SK) and Encrypted Fragment (SKF) payloads:
/// the contract between `wire` and the algorithms (defined beside both, so
/// that `wire` does not import `crypto`).
pub mod sk {
    pub use crate::sk::SkCipher;
}
mod sk_aead;
mod sk_cbc;
mod sk_rc_aead;
pub mod suite;
#[cfg(test)]
mod vectors;

pub use crate::error::CryptoError;
pub use ke::KeyExchange;
pub use prf::{Prf, prf_plus};
pub use provider::{
    Algorithms, CryptoProvider, DefaultProvider, DeterministicProvider, RandomSource,
};
pub use secret::Secret;

/// A SHA-256 fingerprint of `bytes`: to recognise a message seen before
/// without keeping it.
pub fn fingerprint(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}
