//! The SK payload algorithms of an [`IkeSuite`]: which ones this crate
//! implements, the key lengths they take (RFC 7296 2.14, RFC 5282, RFC 7634)
//! and the [`SkCipher`] built from them.

use std::sync::Arc;

use ring::{aead, hmac};

use super::CryptoError;
use super::provider::RandomSource;
use super::sk::SkCipher;
use super::sk_aead::AeadSk;
use super::sk_cbc::CbcSk;
use super::suite::IkeSuite;
use crate::wire::codes::{EncrId, IntegId};

/// Octets of salt that follow the cipher key in the keying material of
/// AES-GCM (RFC 5282 section 7.1) and ChaCha20-Poly1305 (RFC 7634 section 2).
pub const AEAD_SALT_LEN: usize = 4;

/// A resolved SK encryption transform.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IkeEncr {
    /// AES-GCM with a 16-octet ICV, or ChaCha20-Poly1305.
    Aead {
        alg: &'static aead::Algorithm,
        /// Cipher key length, without the salt.
        key_len: usize,
        name: &'static str,
    },
    /// AES-CBC with a 128, 192 or 256-bit key.
    Cbc { key_len: usize, name: &'static str },
}

impl IkeEncr {
    /// Length of SK_e: the cipher key plus, for AEAD, the salt.
    pub(crate) fn sk_e_len(&self) -> usize {
        match self {
            Self::Aead { key_len, .. } => key_len.saturating_add(AEAD_SALT_LEN),
            Self::Cbc { key_len, .. } => *key_len,
        }
    }
}

/// A resolved SK integrity transform.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IkeInteg {
    pub(crate) alg: hmac::Algorithm,
    pub(crate) icv_len: usize,
    pub(crate) name: &'static str,
}

impl IkeInteg {
    /// Length of SK_a: the hash output (RFC 7296 2.14, RFC 4868 2.1.1).
    pub(crate) fn sk_a_len(&self) -> usize {
        self.alg.digest_algorithm().output_len()
    }
}

fn unsupported(what: String) -> CryptoError {
    CryptoError::Unsupported(what)
}

/// Resolves the encryption transform of `suite`, or `Unsupported`.
pub(crate) fn ike_encr(suite: &IkeSuite) -> Result<IkeEncr, CryptoError> {
    let bits = suite.encr_key_bits;
    match (suite.encr, bits) {
        (EncrId::AES_GCM_16, Some(128)) => Ok(IkeEncr::Aead {
            alg: &aead::AES_128_GCM,
            key_len: 16,
            name: "AES_GCM_16_128",
        }),
        (EncrId::AES_GCM_16, Some(256)) => Ok(IkeEncr::Aead {
            alg: &aead::AES_256_GCM,
            key_len: 32,
            name: "AES_GCM_16_256",
        }),
        // RFC 7634 2: no Key Length attribute; accept an explicit 256 too.
        (EncrId::CHACHA20_POLY1305, None | Some(256)) => Ok(IkeEncr::Aead {
            alg: &aead::CHACHA20_POLY1305,
            key_len: 32,
            name: "CHACHA20_POLY1305",
        }),
        (EncrId::AES_CBC, Some(128)) => Ok(IkeEncr::Cbc {
            key_len: 16,
            name: "AES_CBC_128",
        }),
        (EncrId::AES_CBC, Some(192)) => Ok(IkeEncr::Cbc {
            key_len: 24,
            name: "AES_CBC_192",
        }),
        (EncrId::AES_CBC, Some(256)) => Ok(IkeEncr::Cbc {
            key_len: 32,
            name: "AES_CBC_256",
        }),
        (encr, Some(bits)) => Err(unsupported(format!(
            "encryption {encr} with {bits}-bit key"
        ))),
        (encr, None) => Err(unsupported(format!("encryption {encr} without key length"))),
    }
}

/// Resolves the integrity transform of `suite`: `None` for AEAD suites
/// (which must not have one), required for the others.
pub(crate) fn ike_integ(suite: &IkeSuite, encr: &IkeEncr) -> Result<Option<IkeInteg>, CryptoError> {
    let integ = suite.integ.filter(|i| *i != IntegId::NONE);
    match (encr, integ) {
        (IkeEncr::Aead { .. }, None) => Ok(None),
        (IkeEncr::Aead { name, .. }, Some(i)) => Err(unsupported(format!(
            "integrity {i} with combined-mode {name}"
        ))),
        (IkeEncr::Cbc { name, .. }, None) => {
            Err(unsupported(format!("{name} without integrity algorithm")))
        }
        (IkeEncr::Cbc { .. }, Some(i)) => {
            let (alg, icv_len, name) = match i {
                IntegId::HMAC_SHA1_96 => (hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, 12, "HMAC_SHA1_96"),
                IntegId::HMAC_SHA2_256_128 => (hmac::HMAC_SHA256, 16, "HMAC_SHA2_256_128"),
                IntegId::HMAC_SHA2_384_192 => (hmac::HMAC_SHA384, 24, "HMAC_SHA2_384_192"),
                IntegId::HMAC_SHA2_512_256 => (hmac::HMAC_SHA512, 32, "HMAC_SHA2_512_256"),
                other => return Err(unsupported(format!("integrity {other}"))),
            };
            Ok(Some(IkeInteg { alg, icv_len, name }))
        }
    }
}

impl IkeSuite {
    /// Length of SK_ei and SK_er in octets (AEAD keys include the 4-octet salt).
    pub fn encr_key_len(&self) -> Result<usize, CryptoError> {
        Ok(ike_encr(self)?.sk_e_len())
    }

    /// Length of SK_ai and SK_ar in octets: 0 for AEAD suites.
    pub fn integ_key_len(&self) -> Result<usize, CryptoError> {
        let encr = ike_encr(self)?;
        Ok(ike_integ(self, &encr)?.map_or(0, |i| i.sk_a_len()))
    }
}

fn check_key(name: &str, key: &[u8], want: usize) -> Result<(), CryptoError> {
    if key.len() == want {
        Ok(())
    } else {
        Err(CryptoError::KeyLength {
            algorithm: name.to_string(),
            got: key.len(),
            want,
        })
    }
}

/// Builds the [`SkCipher`] of one direction. `rng` supplies CBC IVs.
pub(crate) fn new_sk_cipher(
    suite: &IkeSuite,
    encr_key: &[u8],
    integ_key: &[u8],
    rng: Arc<dyn RandomSource>,
) -> Result<Box<dyn SkCipher>, CryptoError> {
    let encr = ike_encr(suite)?;
    let integ = ike_integ(suite, &encr)?;
    check_key(
        match encr {
            IkeEncr::Aead { name, .. } | IkeEncr::Cbc { name, .. } => name,
        },
        encr_key,
        encr.sk_e_len(),
    )?;
    match (encr, integ) {
        (IkeEncr::Aead { alg, name, .. }, None) => {
            check_key("integrity (none for AEAD)", integ_key, 0)?;
            Ok(Box::new(AeadSk::new(alg, name, encr_key)?))
        }
        (IkeEncr::Cbc { name, .. }, Some(integ)) => {
            check_key(integ.name, integ_key, integ.sk_a_len())?;
            Ok(Box::new(CbcSk::new(name, encr_key, integ, integ_key, rng)?))
        }
        // ike_integ pairs AEAD with None and CBC with Some.
        (_, _) => Err(unsupported(format!("{suite:?}"))),
    }
}
