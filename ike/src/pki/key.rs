//! Public and private keys: parsing (SubjectPublicKeyInfo, PKCS#1, SEC1,
//! PKCS#8, encrypted PKCS#8; PEM or DER), signing and verifying.

use std::fmt;
use std::sync::Arc;

use super::PkiError;
use super::sig::SigScheme;

/// The type of a key: its algorithm and, for EC keys, the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA (any accepted size, see [`PublicKey::bits`]).
    Rsa,
    /// ECDSA on NIST P-256 (secp256r1).
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcP384,
    /// ECDSA on NIST P-521 (secp521r1).
    EcP521,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa => "RSA",
            Self::EcP256 => "ECDSA P-256",
            Self::EcP384 => "ECDSA P-384",
            Self::EcP521 => "ECDSA P-521",
            Self::Ed25519 => "Ed25519",
        })
    }
}

/// A public key, kept with its SubjectPublicKeyInfo DER. Cheap to clone.
#[derive(Clone)]
pub struct PublicKey {
    inner: Arc<PublicInner>,
}

struct PublicInner {
    spki: Vec<u8>,
    key_type: KeyType,
    bits: u32,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("type", &self.inner.key_type)
            .field("bits", &self.inner.bits)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// A key from its SubjectPublicKeyInfo DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, PkiError> {
        let _ = der;
        Err(PkiError::Unsupported(
            "public keys (not yet implemented)".into(),
        ))
    }

    /// A key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC
    /// KEY` (PKCS#1) block, or from the DER of either (swanctl `pubkeys`).
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, PkiError> {
        Self::from_spki_der(bytes)
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.inner.key_type
    }

    /// The key's size: the RSA modulus length or the curve's size in bits.
    pub fn bits(&self) -> u32 {
        self.inner.bits
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.inner.spki
    }

    /// SHA-1 of the whole SubjectPublicKeyInfo DER: the CA hashes of
    /// CERTREQ payloads (RFC 7296 3.7, as strongSwan).
    pub fn spki_sha1(&self) -> [u8; 20] {
        sha1(&self.inner.spki)
    }

    /// SHA-1 of the subjectPublicKey BIT STRING's contents (the usual
    /// subjectKeyIdentifier, RFC 5280 4.2.1.2 method 1).
    pub fn key_sha1(&self) -> [u8; 20] {
        sha1(&[])
    }

    /// Verifies `sig` over `msg` with `scheme`; `Ok` only for a valid
    /// signature.
    pub fn verify(&self, scheme: SigScheme, msg: &[u8], sig: &[u8]) -> Result<(), PkiError> {
        let _ = (msg, sig);
        Err(PkiError::Unsupported(format!(
            "{scheme} (not yet implemented)"
        )))
    }
}

/// A private key (RSA, ECDSA P-256/384/521, Ed25519) with its public key.
pub struct PrivateKey {
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A key from PEM (`RSA PRIVATE KEY`, `EC PRIVATE KEY`, `PRIVATE KEY`,
    /// `ENCRYPTED PRIVATE KEY`) or DER (PKCS#1, SEC1, PKCS#8, encrypted
    /// PKCS#8). `passphrase` decrypts an encrypted PKCS#8 key.
    pub fn from_pem_or_der(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<Self, PkiError> {
        let _ = (bytes, passphrase);
        Err(PkiError::Unsupported(
            "private keys (not yet implemented)".into(),
        ))
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.public.key_type()
    }

    /// Signs `msg` with `scheme` (ECDSA: DER-encoded).
    pub fn sign(&self, scheme: SigScheme, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        let _ = msg;
        Err(PkiError::Unsupported(format!(
            "{scheme} (not yet implemented)"
        )))
    }
}

fn sha1(bytes: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes).as_ref(),
    );
    out
}
