//! Negotiated algorithm suites: the result of choosing one transform of each
//! type from a proposal, as the key derivation and protection code take them.

use crate::wire::codes::{EncrId, IntegId, KeId, PrfId, ProtocolId};

/// The algorithms of an IKE SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IkeSuite {
    /// Encryption algorithm of the SK payload.
    pub encr: EncrId,
    /// Its key length in bits (the Key Length attribute), if it has one.
    pub encr_key_bits: Option<u16>,
    /// Integrity algorithm; `None` for AEAD ciphers (AES-GCM, ChaCha20-Poly1305).
    pub integ: Option<IntegId>,
    /// Pseudorandom function.
    pub prf: PrfId,
    /// Key exchange method.
    pub ke: KeId,
}

/// The algorithms of a Child SA (ESP or AH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChildSuite {
    /// ESP or AH.
    pub protocol: ProtocolId,
    /// Encryption algorithm and key length in bits; `None` for AH.
    pub encr: Option<(EncrId, Option<u16>)>,
    /// Integrity algorithm; `None` for AEAD ciphers.
    pub integ: Option<IntegId>,
    /// Key exchange method for PFS, if any.
    pub ke: Option<KeId>,
    /// Extended sequence numbers.
    pub esn: bool,
}
