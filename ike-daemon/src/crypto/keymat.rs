//! Key derivation: SKEYSEED and the SK_* keys of an IKE SA (RFC 7296 2.14),
//! SKEYSEED of a rekeyed IKE SA (2.18) and the KEYMAT of Child SAs (2.17).

use core::fmt;

use super::encr::AEAD_SALT_LEN;
use super::prf::{Prf, prf_plus};
use super::provider::CryptoProvider;
use super::sk::SkCipher;
use super::suite::{ChildSuite, IkeSuite};
use super::{CryptoError, Secret};
use crate::wire::codes::{EncrId, IntegId, ProtocolId};

/// `SKEYSEED = prf(Ni | Nr, g^ir)` (RFC 7296 2.14). The nonces are the Nonce
/// Data, without payload headers; `shared` is left-padded to the group size
/// by the key exchange. (AES-XCBC/CMAC PRFs, which take only 64 bits of each
/// nonce here, are not implemented.)
pub fn skeyseed(prf: &dyn Prf, ni: &[u8], nr: &[u8], shared: &[u8]) -> Secret {
    let mut key = zeroize::Zeroizing::new(Vec::with_capacity(ni.len().saturating_add(nr.len())));
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf.compute(&key, &[shared])
}

/// SKEYSEED of a new IKE SA made by rekeying (RFC 7296 2.18):
/// `prf(SK_d (old), g^ir (new) | Ni | Nr)`, with the *old* IKE SA's PRF.
/// Ni and Nr are the nonces of the CREATE_CHILD_SA exchange.
pub fn rekey_skeyseed(
    old_prf: &dyn Prf,
    old_sk_d: &[u8],
    shared: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Secret {
    old_prf.compute(old_sk_d, &[shared, ni, nr])
}

/// The seven keys of an IKE SA. `Debug` shows lengths only.
pub struct IkeKeys {
    /// Derives Child SA keys.
    pub sk_d: Secret,
    /// Integrity key, initiator to responder (empty for AEAD).
    pub sk_ai: Secret,
    /// Integrity key, responder to initiator (empty for AEAD).
    pub sk_ar: Secret,
    /// Encryption key (with salt for AEAD), initiator to responder.
    pub sk_ei: Secret,
    /// Encryption key (with salt for AEAD), responder to initiator.
    pub sk_er: Secret,
    /// Initiator's AUTH key.
    pub sk_pi: Secret,
    /// Responder's AUTH key.
    pub sk_pr: Secret,
}

impl fmt::Debug for IkeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeKeys")
            .field("sk_d", &self.sk_d)
            .field("sk_ai", &self.sk_ai)
            .field("sk_ar", &self.sk_ar)
            .field("sk_ei", &self.sk_ei)
            .field("sk_er", &self.sk_er)
            .field("sk_pi", &self.sk_pi)
            .field("sk_pr", &self.sk_pr)
            .finish()
    }
}

impl IkeKeys {
    /// `{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} =
    /// prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)`, each as long as `suite` needs:
    /// SK_d, SK_pi, SK_pr the PRF's key length; SK_a the integrity key length
    /// (none for AEAD); SK_e the cipher key plus salt for AEAD. `prf` must be
    /// the suite's PRF (for a rekey: the new one).
    pub fn derive(
        prf: &dyn Prf,
        suite: &IkeSuite,
        skeyseed: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: &[u8; 8],
        spi_r: &[u8; 8],
    ) -> Result<Self, CryptoError> {
        if prf.id() != suite.prf {
            return Err(CryptoError::Unsupported(format!(
                "PRF {} for a suite with PRF {}",
                prf.id(),
                suite.prf
            )));
        }
        let d = prf.key_len();
        let a = suite.integ_key_len()?;
        let e = suite.encr_key_len()?;
        let lens = [d, a, a, e, e, d, d];
        let total = lens.iter().fold(0usize, |t, l| t.saturating_add(*l));
        let km = prf_plus(prf, skeyseed, &[ni, nr, spi_i, spi_r], total)?;
        let mut parts = split(km.as_bytes(), &lens)?.into_iter();
        let mut next = || parts.next().unwrap_or_default();
        Ok(Self {
            sk_d: next(),
            sk_ai: next(),
            sk_ar: next(),
            sk_ei: next(),
            sk_er: next(),
            sk_pi: next(),
            sk_pr: next(),
        })
    }

    /// The SK ciphers of this IKE SA: for the original initiator SK_ei/SK_ai
    /// protect what it sends, for the original responder what it receives.
    pub fn sk_ciphers(
        &self,
        provider: &dyn CryptoProvider,
        suite: &IkeSuite,
        original_initiator: bool,
    ) -> Result<SkCiphers, CryptoError> {
        let i = provider.sk_cipher(suite, self.sk_ei.as_bytes(), self.sk_ai.as_bytes())?;
        let r = provider.sk_cipher(suite, self.sk_er.as_bytes(), self.sk_ar.as_bytes())?;
        let (outbound, inbound) = if original_initiator { (i, r) } else { (r, i) };
        Ok(SkCiphers { outbound, inbound })
    }
}

/// Both directions of SK protection of one IKE SA, from one side's view.
#[derive(Debug)]
pub struct SkCiphers {
    /// Seals the messages we send.
    pub outbound: Box<dyn SkCipher>,
    /// Opens the messages we receive.
    pub inbound: Box<dyn SkCipher>,
}

/// Cuts `bytes` into consecutive secrets of the given lengths, which must add
/// up to exactly its length.
fn split(bytes: &[u8], lens: &[usize]) -> Result<Vec<Secret>, CryptoError> {
    let mut rest = bytes;
    let mut out = Vec::with_capacity(lens.len());
    for len in lens {
        let (head, tail) = rest
            .split_at_checked(*len)
            .ok_or(CryptoError::MalformedCiphertext("key material too short"))?;
        out.push(Secret::from_slice(head));
        rest = tail;
    }
    if rest.is_empty() {
        Ok(out)
    } else {
        Err(CryptoError::MalformedCiphertext("key material too long"))
    }
}

/// Child SA KEYMAT (RFC 7296 2.17): `prf+(SK_d, Ni | Nr)`, or with PFS
/// `prf+(SK_d, g^ir (new) | Ni | Nr)`; `len` octets.
pub fn child_keymat(
    prf: &dyn Prf,
    sk_d: &[u8],
    pfs_shared: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Result<Secret, CryptoError> {
    match pfs_shared {
        Some(g_ir) => prf_plus(prf, sk_d, &[g_ir, ni, nr], len),
        None => prf_plus(prf, sk_d, &[ni, nr], len),
    }
}

impl ChildSuite {
    /// Length of each direction's encryption key, salt or nonce included
    /// (the form the kernel takes: RFC 4106, 4309, 3686, 7634, 4543).
    pub fn encr_key_len(&self) -> Result<usize, CryptoError> {
        let Some((encr, bits)) = self.encr else {
            return Ok(0);
        };
        let bytes = |b: u16| usize::from(b / 8);
        let unsupported = || {
            CryptoError::Unsupported(match bits {
                Some(b) => format!("ESP encryption {encr} with {b}-bit key"),
                None => format!("ESP encryption {encr} without key length"),
            })
        };
        let keyed = |allowed: &[u16], extra: usize| match bits {
            Some(b) if allowed.contains(&b) => Ok(bytes(b).saturating_add(extra)),
            _ => Err(unsupported()),
        };
        match encr {
            EncrId::NULL => Ok(0),
            EncrId::AES_CBC => keyed(&[128, 192, 256], 0),
            EncrId::AES_CTR
            | EncrId::AES_GCM_8
            | EncrId::AES_GCM_12
            | EncrId::AES_GCM_16
            | EncrId::NULL_AUTH_AES_GMAC => keyed(&[128, 192, 256], AEAD_SALT_LEN),
            EncrId::AES_CCM_8 | EncrId::AES_CCM_12 | EncrId::AES_CCM_16 => {
                keyed(&[128, 192, 256], 3)
            }
            EncrId::CHACHA20_POLY1305 => match bits {
                None | Some(256) => Ok(32 + AEAD_SALT_LEN),
                _ => Err(unsupported()),
            },
            _ => Err(unsupported()),
        }
    }

    /// Length of each direction's integrity key.
    pub fn integ_key_len(&self) -> Result<usize, CryptoError> {
        match self.integ {
            None | Some(IntegId::NONE) => Ok(0),
            Some(IntegId::HMAC_MD5_96) => Ok(16),
            Some(IntegId::HMAC_SHA1_96) => Ok(20),
            Some(IntegId::AES_XCBC_96 | IntegId::AES_CMAC_96) => Ok(16),
            Some(IntegId::HMAC_SHA2_256_128) => Ok(32),
            Some(IntegId::HMAC_SHA2_384_192) => Ok(48),
            Some(IntegId::HMAC_SHA2_512_256) => Ok(64),
            Some(other) => Err(CryptoError::Unsupported(format!(
                "{} integrity {other}",
                self.protocol
            ))),
        }
    }

    /// Octets of KEYMAT this suite takes: both directions' keys.
    pub fn keymat_len(&self) -> Result<usize, CryptoError> {
        if self.protocol == ProtocolId::AH && self.encr.is_some() {
            return Err(CryptoError::Unsupported("AH with encryption".to_string()));
        }
        let one = self.encr_key_len()?.saturating_add(self.integ_key_len()?);
        Ok(one.saturating_mul(2))
    }
}

/// The four keys of a Child SA, cut from KEYMAT: initiator-to-responder
/// first, encryption before integrity (RFC 7296 2.17). Absent keys are empty.
pub struct ChildKeys {
    /// Encryption key (with salt/nonce), initiator to responder.
    pub encr_i: Secret,
    /// Integrity key, initiator to responder.
    pub integ_i: Secret,
    /// Encryption key (with salt/nonce), responder to initiator.
    pub encr_r: Secret,
    /// Integrity key, responder to initiator.
    pub integ_r: Secret,
}

impl fmt::Debug for ChildKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildKeys")
            .field("encr_i", &self.encr_i)
            .field("integ_i", &self.integ_i)
            .field("encr_r", &self.encr_r)
            .field("integ_r", &self.integ_r)
            .finish()
    }
}

impl ChildKeys {
    /// Splits `keymat`, which must be exactly `suite.keymat_len()` octets.
    pub fn split(suite: &ChildSuite, keymat: &[u8]) -> Result<Self, CryptoError> {
        let e = suite.encr_key_len()?;
        let a = suite.integ_key_len()?;
        let mut parts = split(keymat, &[e, a, e, a])?.into_iter();
        let mut next = || parts.next().unwrap_or_default();
        Ok(Self {
            encr_i: next(),
            integ_i: next(),
            encr_r: next(),
            integ_r: next(),
        })
    }

    /// [`child_keymat`] of the suite's length, then [`ChildKeys::split`].
    pub fn derive(
        prf: &dyn Prf,
        sk_d: &[u8],
        pfs_shared: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
        suite: &ChildSuite,
    ) -> Result<Self, CryptoError> {
        let km = child_keymat(prf, sk_d, pfs_shared, ni, nr, suite.keymat_len()?)?;
        Self::split(suite, km.as_bytes())
    }
}
