//! The crypto layer's error, beside `wire` and `crypto` rather than in
//! `crypto`: an SK cipher returns it through the wire layer (which does not
//! import `crypto`). Public as [`crate::crypto::CryptoError`].

/// What went wrong in a cryptographic operation. Messages are for logs:
/// they never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The integrity check value of a protected payload did not match.
    #[error("integrity check failed")]
    IntegrityCheckFailed,
    /// A protected payload is shorter than IV + ICV, not a multiple of the
    /// block length, or has a padding length that does not fit.
    #[error("malformed encrypted payload: {0}")]
    MalformedCiphertext(&'static str),
    /// An algorithm that this provider does not implement.
    #[error("unsupported algorithm: {0}")]
    Unsupported(String),
    /// A key of the wrong length for its algorithm.
    #[error("wrong key length for {algorithm}: got {got} octets, want {want}")]
    KeyLength {
        /// The algorithm.
        algorithm: String,
        /// What was given.
        got: usize,
        /// What the algorithm takes.
        want: usize,
    },
    /// The peer's key exchange value is not valid for its group (wrong
    /// length, not on the curve, out of range).
    #[error("invalid peer public value for {group}: {reason}")]
    InvalidPublicValue {
        /// The group, e.g. "CURVE25519".
        group: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// An AEAD SK cipher has used every IV its 64-bit counter can give: the
    /// IKE SA must be rekeyed.
    #[error("IV space of the SK cipher exhausted")]
    IvExhausted,
    /// More output asked of prf+ than it can give (255 blocks).
    #[error("prf+ output too long: {0} octets")]
    PrfPlusTooLong(usize),
}
