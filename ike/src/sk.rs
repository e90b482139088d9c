//! Protection of the Encrypted (SK) and Encrypted Fragment (SKF) payloads:
//! the contract between `wire` (which lays out the message) and the
//! algorithms (which fill and check the protected body).
//!
//! Layout of a protected message (RFC 7296 3.14, RFC 5282, RFC 7383):
//!
//! ```text
//! | IKE header | ...unprotected payloads | SK/SKF generic header | IV | ciphertext | ICV |
//! |<------------------ authenticated --------------------------->|<----- body ----------->|
//! ```
//!
//! `authenticated` is everything before the IV. For AEAD transforms it is the
//! associated data; for cipher + HMAC transforms the ICV covers
//! `authenticated || IV || ciphertext`. The plaintext is the inner payloads;
//! padding and the Pad Length octet are added by `seal` and removed by `open`.

use zeroize::Zeroizing;

use crate::error::CryptoError;

/// The keys of one direction of an IKE SA (SK_ei + SK_ai, or SK_er + SK_ar),
/// bound to the negotiated encryption and integrity algorithms.
pub trait SkCipher: Send + core::fmt::Debug {
    /// Length of the IV field.
    fn iv_len(&self) -> usize;
    /// Length of the ICV field.
    fn icv_len(&self) -> usize;
    /// Length of the body (IV + padded ciphertext + ICV) that `seal` produces
    /// for `plain_len` octets of inner payloads. The wire layer needs it to
    /// write the lengths in the IKE and SK headers before sealing.
    fn sealed_len(&self, plain_len: usize) -> usize;
    /// Appends exactly `sealed_len(plaintext.len())` octets (IV, ciphertext,
    /// ICV) to `out`, which holds the `authenticated` part of the message with
    /// its final lengths already written.
    fn seal(&mut self, out: &mut Vec<u8>, plaintext: &[u8]) -> Result<(), CryptoError>;
    /// Checks the ICV (in constant time) and decrypts `body` (IV + ciphertext
    /// + ICV), returning the inner payloads with the padding removed.
    fn open(&self, authenticated: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError>;
}
