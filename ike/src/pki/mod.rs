//! Public-key infrastructure: keys and signatures for IKE_AUTH, X.509
//! certificates, their chains, CRLs and the trust store.
//!
//! - [`sig`]: signature schemes, RFC 7427 AUTH data, the classic methods
//!   (RSA 1, ECDSA 9/10/11).
//! - [`key`]: public keys (SubjectPublicKeyInfo, PKCS#1) and private keys
//!   (PKCS#1, SEC1, PKCS#8, encrypted PKCS#8), signing and verifying.
//! - [`cert`], [`chain`], [`crl`], [`store`], [`dn`]: certificates, chain
//!   validation, revocation lists, trust anchors, distinguished names.
//!
//! Everything here parses untrusted bytes (packets, files) with checks:
//! a malformed input is an error, never a panic.

pub mod cert;
pub mod chain;
pub mod crl;
pub mod dn;
pub mod key;
pub mod sig;
pub mod store;

#[cfg(test)]
mod tests;

pub use cert::{CertError, Certificate, date_text, time_text};
pub use chain::{Revocation, ValidateParams, Validation, validate};
pub use crl::Crl;
pub use dn::dn_matches;
pub use key::{KeyType, PemBlock, PrivateKey, PublicKey, looks_like_pem, pem_blocks};
pub use sig::{
    HashAlg, SigScheme, classic_method, decode_signature_auth, encode_signature_auth,
    scheme_from_algorithm_identifier, schemes_for_key, sign_classic, verify_classic,
};
pub use store::TrustStore;

/// What went wrong with a key or a signature. Messages are for logs: they
/// never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A key, signature or AlgorithmIdentifier that does not parse.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed, e.g. "private key".
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A key type, algorithm or encoding this implementation does not
    /// support.
    #[error("unsupported {0}")]
    Unsupported(String),
    /// The private key is encrypted and no passphrase was given.
    #[error("the private key is encrypted and no passphrase was given")]
    PassphraseRequired,
    /// The passphrase did not decrypt the private key (or the encrypted
    /// key is corrupt).
    #[error("wrong passphrase for the encrypted private key (or the key is corrupt)")]
    BadPassphrase,
    /// An RSA key whose size is outside what is accepted for the purpose.
    #[error("RSA key of {bits} bits not accepted for {purpose} (accepted: {accepted})")]
    KeySize {
        /// The key's modulus length.
        bits: u32,
        /// "signing" or "verifying".
        purpose: &'static str,
        /// The accepted range, e.g. "2048 to 8192 bits".
        accepted: &'static str,
    },
    /// A signature scheme that does not fit the key's type.
    #[error("signature scheme {scheme} does not fit a {key} key")]
    SchemeMismatch {
        /// The scheme asked for.
        scheme: SigScheme,
        /// The key's type.
        key: KeyType,
    },
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The signing operation failed (e.g. the random source).
    #[error("signing failed: {0}")]
    SigningFailed(&'static str),
}
