//! Signature schemes for IKE_AUTH and X.509: RFC 7427 digital-signature
//! AUTH data (method 14), the classic methods of RFC 7296 and RFC 4754
//! (RSA 1, ECDSA 9/10/11), and AlgorithmIdentifiers.

use std::fmt;

use super::PkiError;
use super::key::{KeyType, PrivateKey, PublicKey};
use crate::wire::codes::AuthMethod;

/// A hash algorithm of the IANA "IKEv2 Hash Algorithms" registry (RFC 7427
/// SIGNATURE_HASH_ALGORITHMS, RFC 8420 Identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA1 (1).
    Sha1,
    /// SHA2-256 (2).
    Sha256,
    /// SHA2-384 (3).
    Sha384,
    /// SHA2-512 (4).
    Sha512,
    /// Identity (5): the message is signed as it is (Ed25519, RFC 8420).
    Identity,
}

impl HashAlg {
    /// The algorithm of an IANA number, `None` for one not listed above.
    pub fn from_iana(v: u16) -> Option<Self> {
        match v {
            1 => Some(Self::Sha1),
            2 => Some(Self::Sha256),
            3 => Some(Self::Sha384),
            4 => Some(Self::Sha512),
            5 => Some(Self::Identity),
            _ => None,
        }
    }

    /// The IANA number.
    pub fn iana(self) -> u16 {
        match self {
            Self::Sha1 => 1,
            Self::Sha256 => 2,
            Self::Sha384 => 3,
            Self::Sha512 => 4,
            Self::Identity => 5,
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
            Self::Identity => "Identity",
        })
    }
}

/// A signature scheme: the key's algorithm and the hash it signs with.
/// ECDSA signatures are DER-encoded `ECDSA-Sig-Value`s (RFC 7427, X.509);
/// the classic methods' fixed-size `r|s` is handled by [`sign_classic`]
/// and [`verify_classic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigScheme {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 8.2).
    RsaPkcs1(HashAlg),
    /// RSASSA-PSS (RFC 8017 8.1), MGF1 with the same hash, salt as long as
    /// the hash (as strongSwan).
    RsaPss(HashAlg),
    /// ECDSA on the key's curve with any of SHA-1/256/384/512.
    Ecdsa(HashAlg),
    /// Ed25519 (RFC 8032): the message itself is signed.
    Ed25519,
}

impl fmt::Display for SigScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RsaPkcs1(h) => write!(f, "RSA PKCS#1 v1.5 with {h}"),
            Self::RsaPss(h) => write!(f, "RSASSA-PSS with {h}"),
            Self::Ecdsa(h) => write!(f, "ECDSA with {h}"),
            Self::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// The AUTH data of RFC 7427 (method 14): a one-octet length, the
/// AlgorithmIdentifier DER of `scheme` (for a key of type `key`), then the
/// signature.
pub fn encode_signature_auth(
    scheme: SigScheme,
    key: KeyType,
    sig: &[u8],
) -> Result<Vec<u8>, PkiError> {
    let _ = (key, sig);
    Err(PkiError::Unsupported(format!(
        "{scheme} (not yet implemented)"
    )))
}

/// Splits RFC 7427 AUTH data into its scheme and the signature.
pub fn decode_signature_auth(data: &[u8]) -> Result<(SigScheme, &[u8]), PkiError> {
    let _ = data;
    Err(PkiError::Unsupported(
        "RFC 7427 AUTH data (not yet implemented)".into(),
    ))
}

/// Signs `msg` with the classic method of the key: RSA_DIGITAL_SIGNATURE
/// (1, PKCS#1 v1.5 with SHA-1) or ECDSA_SHA256_P256 / SHA384_P384 /
/// SHA512_P521 (9/10/11, fixed-size `r|s`). Ed25519 has no classic method.
pub fn sign_classic(key: &PrivateKey, msg: &[u8]) -> Result<(AuthMethod, Vec<u8>), PkiError> {
    let _ = (key, msg);
    Err(PkiError::Unsupported(
        "classic signature methods (not yet implemented)".into(),
    ))
}

/// Verifies a classic-method signature (see [`sign_classic`]).
pub fn verify_classic(
    key: &PublicKey,
    method: AuthMethod,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    let _ = (key, method, msg, sig);
    Err(PkiError::Unsupported(
        "classic signature methods (not yet implemented)".into(),
    ))
}

/// The scheme of a DER AlgorithmIdentifier (X.509 signatureAlgorithm,
/// RFC 7427 AUTH data); `None` for one not supported.
pub fn scheme_from_algorithm_identifier(der: &[u8]) -> Option<SigScheme> {
    let _ = der;
    None
}
