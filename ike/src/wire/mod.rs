//! IKEv2 messages and payloads: checked parsing of untrusted bytes and emitting.
//!
//! Layers, in the spirit of smoltcp's `wire`:
//! - [`Header`]: the IKE header (RFC 7296 3.1).
//! - [`Payload`]: every payload body as a typed representation, chained by
//!   the generic payload header (3.2). Unknown non-critical payloads are kept
//!   as [`Payload::Unknown`] so that messages round-trip byte for byte.
//! - [`Message`]: header and payloads; the SK payload stays sealed
//!   ([`Encrypted::Sealed`]) until [`Message::decrypt`] opens it with an
//!   [`SkCipher`](crate::crypto::sk::SkCipher); [`Message::emit_sealed`] and
//!   [`Message::emit_fragments`] seal it (RFC 7383 for fragments), and
//!   [`Reassembler`] collects fragments.
//! - [`rules`]: which payloads each exchange carries.
//!
//! Parsing never panics: every length is checked against its enclosure, no
//! slice is indexed and no arithmetic can overflow (enforced by the lints
//! below). Errors say what was wrong and where, and how to answer
//! ([`ParseError::response`]).
//!
//! Reserved fields are ignored on receipt and sent as zero, as RFC 7296
//! requires; everything else survives a parse/emit round trip, so a parsed
//! message whose reserved fields are zero re-emits to its own bytes. (The
//! header's flag and version octets are kept whole.) Decryption therefore
//! authenticates the received datagram itself, never a re-emitted copy.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

pub mod codes;
mod error;
mod frag;
mod header;
mod message;
mod notify;
mod payload;
mod reader;
pub mod rules;
pub mod sa;
mod ts;

#[cfg(test)]
pub(crate) mod testutil;

pub use error::{DecryptError, EmitError, ErrorKind, ParseError, PayloadName};
pub use frag::{FragmentError, FragmentLimits, Reassembler};
pub use header::{Flags, HEADER_LEN, Header};
pub use message::Message;
pub use notify::{Delete, NAT_DETECTION_HASH_LEN, Notify};
pub use payload::{
    Authentication, Certificate, CfgAttribute, Configuration, Eap, Encrypted, EncryptedFragment,
    IdValue, Identification, KeyExchange, NONCE_MAX, NONCE_MIN, Payload,
};
pub use ts::{AddressRange, TrafficSelector};

/// Bounds on what one message may contain, checked while parsing so that a
/// hostile peer cannot make the parser allocate much more than it sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest datagram accepted, in octets.
    pub max_message_len: usize,
    /// Most payloads in one chain (the outer message, or the SK contents).
    pub max_payloads: usize,
    /// Most proposals in one SA payload.
    pub max_proposals: usize,
    /// Most transforms in one proposal.
    pub max_transforms: usize,
    /// Most traffic selectors in one TS payload.
    pub max_selectors: usize,
    /// Most attributes in one transform or one CP payload.
    pub max_attributes: usize,
}

impl Default for ParseLimits {
    /// Generous for real peers (strongSwan sends at most 20 notifies, 20
    /// vendor IDs, 8 certificates), small enough to bound the work.
    fn default() -> Self {
        Self {
            max_message_len: 65_535,
            max_payloads: 128,
            max_proposals: 64,
            max_transforms: 128,
            max_selectors: 64,
            max_attributes: 64,
        }
    }
}
