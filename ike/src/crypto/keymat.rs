//! Key derivation: SKEYSEED and the SK_* keys of an IKE SA (RFC 7296 2.14),
//! SKEYSEED of a rekeyed IKE SA (2.18) and the KEYMAT of Child SAs (2.17).

use core::fmt;

use super::encr::AEAD_SALT_LEN;
use super::prf::{Prf, prf_plus};
use super::proposal::keywords::private::AUTH_HMAC_SHA2_256_96;
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
    // A fixed-key PRF (AES128-XCBC/CMAC) takes half its key from the start
    // of each nonce (RFC 7296 2.14, strongSwan's keymat_v2.c).
    let (ni, nr) = if prf.fixed_key() {
        let half = prf.key_len() / 2;
        (
            ni.get(..half.min(ni.len())).unwrap_or(ni),
            nr.get(..half.min(nr.len())).unwrap_or(nr),
        )
    } else {
        (ni, nr)
    };
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
            EncrId::TRIPLE_DES if bits.is_none() => Ok(24),
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
            Some(IntegId::HMAC_MD5_96 | IntegId::HMAC_MD5_128) => Ok(16),
            Some(IntegId::HMAC_SHA1_96 | IntegId::HMAC_SHA1_160) => Ok(20),
            Some(IntegId::AES_XCBC_96 | IntegId::AES_CMAC_96) => Ok(16),
            Some(IntegId::HMAC_SHA2_256_128) => Ok(32),
            Some(IntegId(AUTH_HMAC_SHA2_256_96)) => Ok(32),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::prf::HmacPrf;
    use crate::crypto::vectors::v;
    use crate::wire::codes::{KeId, PrfId};

    fn spis() -> ([u8; 8], [u8; 8]) {
        (
            *b"\x01\x02\x03\x04\x05\x06\x07\x08",
            *b"\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8",
        )
    }

    fn ni() -> Vec<u8> {
        (0x10..0x30).collect()
    }

    fn nr() -> Vec<u8> {
        (0x80..0xa0).collect()
    }

    fn suite_a() -> IkeSuite {
        IkeSuite {
            encr: EncrId::AES_GCM_16,
            encr_key_bits: Some(256),
            integ: None,
            prf: PrfId::HMAC_SHA2_256,
            ke: KeId::CURVE25519,
        }
    }

    fn suite_b() -> IkeSuite {
        IkeSuite {
            encr: EncrId::AES_CBC,
            encr_key_bits: Some(128),
            integ: Some(IntegId::HMAC_SHA2_512_256),
            prf: PrfId::HMAC_SHA2_384,
            ke: KeId::ECP_384,
        }
    }

    #[test]
    fn prf_plus_known_answer() {
        let p = HmacPrf::new(PrfId::HMAC_SHA2_256).unwrap();
        let out = prf_plus(
            &p,
            &v("prfplus_sha256_key"),
            &[&v("prfplus_sha256_seed")],
            100,
        )
        .unwrap();
        assert_eq!(out.as_bytes(), v("prfplus_sha256_out").as_slice());
    }

    #[test]
    fn ike_sa_keys_known_answer() {
        let (spi_i, spi_r) = spis();
        let g_ir = [0x42u8; 32];
        for (name, suite) in [("a", suite_a()), ("b", suite_b())] {
            let prf = HmacPrf::new(suite.prf).unwrap();
            let seed = skeyseed(&prf, &ni(), &nr(), &g_ir);
            assert_eq!(
                seed.as_bytes(),
                v(&format!("suite_{name}_skeyseed")).as_slice()
            );
            let k = IkeKeys::derive(&prf, &suite, seed.as_bytes(), &ni(), &nr(), &spi_i, &spi_r)
                .unwrap();
            for (key, got) in [
                ("sk_d", &k.sk_d),
                ("sk_ai", &k.sk_ai),
                ("sk_ar", &k.sk_ar),
                ("sk_ei", &k.sk_ei),
                ("sk_er", &k.sk_er),
                ("sk_pi", &k.sk_pi),
                ("sk_pr", &k.sk_pr),
            ] {
                assert_eq!(
                    got.as_bytes(),
                    v(&format!("suite_{name}_{key}")).as_slice(),
                    "{name} {key}"
                );
            }
        }
    }

    #[test]
    fn key_lengths_per_suite() {
        let a = suite_a();
        assert_eq!(
            (a.encr_key_len().unwrap(), a.integ_key_len().unwrap()),
            (36, 0)
        );
        let b = suite_b();
        assert_eq!(
            (b.encr_key_len().unwrap(), b.integ_key_len().unwrap()),
            (16, 64)
        );
        let c = IkeSuite {
            encr: EncrId::CHACHA20_POLY1305,
            encr_key_bits: None,
            ..a
        };
        assert_eq!(c.encr_key_len().unwrap(), 36);
        let d = IkeSuite {
            encr_key_bits: Some(128),
            ..a
        };
        assert_eq!(d.encr_key_len().unwrap(), 20);
        let e = IkeSuite {
            integ: Some(IntegId::HMAC_SHA1_96),
            encr_key_bits: Some(256),
            ..b
        };
        assert_eq!(
            (e.encr_key_len().unwrap(), e.integ_key_len().unwrap()),
            (32, 20)
        );
        // A suite whose PRF is not the one given is refused.
        let prf = HmacPrf::new(PrfId::HMAC_SHA1).unwrap();
        assert!(IkeKeys::derive(&prf, &a, b"seed", b"n", b"n", &[0; 8], &[0; 8]).is_err());
    }

    #[test]
    fn unsupported_suites_name_the_algorithm() {
        let mut s = suite_a();
        s.encr = EncrId::AES_GCM_8;
        assert!(
            matches!(s.encr_key_len(), Err(CryptoError::Unsupported(m)) if m.contains("AES_GCM_8"))
        );
        s = suite_a();
        s.encr_key_bits = Some(160);
        assert!(matches!(s.encr_key_len(), Err(CryptoError::Unsupported(m)) if m.contains("160")));
        s = suite_b();
        s.integ = Some(IntegId::DES_MAC);
        assert!(
            matches!(s.integ_key_len(), Err(CryptoError::Unsupported(m)) if m.contains("DES_MAC"))
        );
        s = suite_b();
        s.integ = None;
        assert!(
            matches!(s.integ_key_len(), Err(CryptoError::Unsupported(m)) if m.contains("AES_CBC"))
        );
        s = suite_a();
        s.integ = Some(IntegId::HMAC_SHA2_256_128);
        assert!(s.integ_key_len().is_err());
        s = suite_b();
        s.encr_key_bits = None;
        assert!(s.encr_key_len().is_err());
    }

    fn esp(encr: Option<(EncrId, Option<u16>)>, integ: Option<IntegId>) -> ChildSuite {
        ChildSuite {
            protocol: ProtocolId::ESP,
            encr,
            integ,
            ke: None,
            esn: false,
        }
    }

    #[test]
    fn child_keymat_known_answer_without_and_with_pfs() {
        let prf = HmacPrf::new(PrfId::HMAC_SHA2_256).unwrap();
        let sk_d = v("suite_a_sk_d");
        let (cni, cnr, g) = (v("child_ni"), v("child_nr"), v("child_g_ir"));

        let gcm = esp(Some((EncrId::AES_GCM_16, Some(128))), None);
        assert_eq!(gcm.keymat_len().unwrap(), 40);
        let km = child_keymat(&prf, &sk_d, None, &cni, &cnr, 40).unwrap();
        let want = v("child_nopfs_keymat");
        assert_eq!(km.as_bytes(), want.as_slice());
        let k = ChildKeys::derive(&prf, &sk_d, None, &cni, &cnr, &gcm).unwrap();
        assert_eq!(k.encr_i.as_bytes(), &want[..20]);
        assert!(k.integ_i.is_empty());
        assert_eq!(k.encr_r.as_bytes(), &want[20..]);
        assert!(k.integ_r.is_empty());

        let cbc = esp(
            Some((EncrId::AES_CBC, Some(128))),
            Some(IntegId::HMAC_SHA1_96),
        );
        assert_eq!(cbc.keymat_len().unwrap(), 72);
        let want = v("child_pfs_keymat");
        let k = ChildKeys::derive(&prf, &sk_d, Some(&g), &cni, &cnr, &cbc).unwrap();
        assert_eq!(k.encr_i.as_bytes(), &want[..16]);
        assert_eq!(k.integ_i.as_bytes(), &want[16..36]);
        assert_eq!(k.encr_r.as_bytes(), &want[36..52]);
        assert_eq!(k.integ_r.as_bytes(), &want[52..]);
    }

    #[test]
    fn child_split_checks_the_length_and_algorithms() {
        let cbc = esp(
            Some((EncrId::AES_CBC, Some(256))),
            Some(IntegId::HMAC_SHA2_256_128),
        );
        assert_eq!(cbc.keymat_len().unwrap(), 2 * (32 + 32));
        assert!(ChildKeys::split(&cbc, &[0; 127]).is_err());
        assert!(ChildKeys::split(&cbc, &[0; 129]).is_err());
        assert!(ChildKeys::split(&cbc, &[0; 128]).is_ok());
        let ah = ChildSuite {
            protocol: ProtocolId::AH,
            encr: None,
            integ: Some(IntegId::HMAC_SHA2_384_192),
            ke: None,
            esn: true,
        };
        assert_eq!(ah.keymat_len().unwrap(), 96);
        let chacha = esp(Some((EncrId::CHACHA20_POLY1305, None)), None);
        assert_eq!(chacha.keymat_len().unwrap(), 72);
        let ccm = esp(Some((EncrId::AES_CCM_16, Some(256))), None);
        assert_eq!(ccm.keymat_len().unwrap(), 70);
        let null = esp(Some((EncrId::NULL, None)), Some(IntegId::HMAC_SHA2_512_256));
        assert_eq!(null.keymat_len().unwrap(), 128);
        let tdes = esp(Some((EncrId::TRIPLE_DES, None)), Some(IntegId::HMAC_MD5_96));
        assert_eq!(tdes.keymat_len().unwrap(), 2 * (24 + 16));
        let sha256_96 = esp(
            Some((EncrId::AES_CTR, Some(192))),
            Some(IntegId(AUTH_HMAC_SHA2_256_96)),
        );
        assert_eq!(sha256_96.keymat_len().unwrap(), 2 * (24 + 4 + 32));
        let sha1_160 = esp(Some((EncrId::NULL, None)), Some(IntegId::HMAC_SHA1_160));
        assert_eq!(sha1_160.keymat_len().unwrap(), 40);
        for bad in [
            esp(Some((EncrId::TRIPLE_DES, Some(192))), None),
            esp(Some((EncrId::DES, None)), None),
            esp(Some((EncrId::AES_CBC, None)), None),
            esp(Some((EncrId::AES_CBC, Some(100))), None),
            esp(None, Some(IntegId::DES_MAC)),
        ] {
            assert!(
                matches!(bad.keymat_len(), Err(CryptoError::Unsupported(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rekey_skeyseed_known_answer() {
        let old = HmacPrf::new(PrfId::HMAC_SHA2_256).unwrap();
        let s = rekey_skeyseed(
            &old,
            &v("suite_a_sk_d"),
            &v("child_g_ir"),
            &v("child_ni"),
            &v("child_nr"),
        );
        assert_eq!(s.as_bytes(), v("rekey_skeyseed").as_slice());
    }

    #[test]
    fn debug_shows_lengths_only() {
        let (spi_i, spi_r) = spis();
        let prf = HmacPrf::new(PrfId::HMAC_SHA2_256).unwrap();
        let k = IkeKeys::derive(&prf, &suite_a(), &[9; 32], &ni(), &nr(), &spi_i, &spi_r).unwrap();
        let d = format!("{k:?}");
        assert!(d.contains("sk_ei: Secret(36 octets)"), "{d}");
        assert!(!d.contains(&hex::encode(&k.sk_ei.as_bytes()[..4])));
    }
}
