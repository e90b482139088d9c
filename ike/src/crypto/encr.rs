//! The SK payload algorithms of an [`IkeSuite`]: which ones this crate
//! implements, the key lengths they take (RFC 7296 2.14, RFC 5282, RFC 7634)
//! and the [`SkCipher`] built from them.

use std::sync::Arc;

use ring::{aead, hmac};

use super::CryptoError;
use super::mac::Mac;
use super::provider::RandomSource;
use super::sk::SkCipher;
use super::sk_aead::AeadSk;
use super::sk_cbc::CbcSk;
use super::sk_rc_aead::{Mode as RcMode, RcAeadSk};
use super::suite::IkeSuite;
use crate::wire::codes::{EncrId, IntegId};

/// Octets of salt that follow the cipher key in the keying material of
/// AES-GCM (RFC 5282 section 7.1) and ChaCha20-Poly1305 (RFC 7634 section 2).
pub const AEAD_SALT_LEN: usize = 4;

/// The classic (non-AEAD) SK ciphers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Classic {
    /// AES-CBC (RFC 3602): 16-octet IV and block.
    AesCbc,
    /// 3DES-CBC (RFC 2451): 8-octet IV and block.
    TripleDesCbc,
    /// AES-CTR (RFC 5930, RFC 3686): SK_e is the key and a 4-octet nonce;
    /// 8-octet IV; no block alignment.
    AesCtr,
}

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
    /// AES-CCM, or AES-GCM with a 12-octet ICV or a 192-bit key
    /// (RustCrypto: ring has neither).
    RcAead {
        mode: RcMode,
        /// AES key length, without the salt.
        key_len: usize,
        icv_len: usize,
        name: &'static str,
    },
    /// A classic cipher used with an integrity algorithm.
    Cbc {
        kind: Classic,
        /// Length of SK_e (for AES-CTR with the nonce).
        key_len: usize,
        name: &'static str,
    },
}

impl IkeEncr {
    /// Length of SK_e: the cipher key plus, for AEAD, the salt.
    pub(crate) fn sk_e_len(&self) -> usize {
        match self {
            Self::Aead { key_len, .. } => key_len.saturating_add(AEAD_SALT_LEN),
            Self::RcAead { mode, key_len, .. } => key_len.saturating_add(mode.salt_len()),
            Self::Cbc { key_len, .. } => *key_len,
        }
    }
}

/// A resolved SK integrity transform.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IkeInteg {
    pub(crate) mac: Mac,
    pub(crate) icv_len: usize,
    /// Length of SK_a: the hash output for HMAC (RFC 7296 2.14, RFC 4868
    /// 2.1.1), 16 for AES-XCBC and AES-CMAC (RFC 3566, RFC 4494).
    pub(crate) key_len: usize,
    pub(crate) name: &'static str,
}

impl IkeInteg {
    /// Length of SK_a.
    pub(crate) fn sk_a_len(&self) -> usize {
        self.key_len
    }
}

fn unsupported(what: String) -> CryptoError {
    CryptoError::Unsupported(what)
}

fn rc(mode: RcMode, key_len: usize, icv_len: usize, name: &'static str) -> IkeEncr {
    IkeEncr::RcAead {
        mode,
        key_len,
        icv_len,
        name,
    }
}

fn classic(kind: Classic, key_len: usize, name: &'static str) -> IkeEncr {
    IkeEncr::Cbc {
        kind,
        key_len,
        name,
    }
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
        (EncrId::AES_GCM_16, Some(192)) => Ok(rc(RcMode::Gcm, 24, 16, "AES_GCM_16_192")),
        (EncrId::AES_GCM_12, Some(128)) => Ok(rc(RcMode::Gcm, 16, 12, "AES_GCM_12_128")),
        (EncrId::AES_GCM_12, Some(192)) => Ok(rc(RcMode::Gcm, 24, 12, "AES_GCM_12_192")),
        (EncrId::AES_GCM_12, Some(256)) => Ok(rc(RcMode::Gcm, 32, 12, "AES_GCM_12_256")),
        (EncrId::AES_CCM_8, Some(128)) => Ok(rc(RcMode::Ccm, 16, 8, "AES_CCM_8_128")),
        (EncrId::AES_CCM_8, Some(192)) => Ok(rc(RcMode::Ccm, 24, 8, "AES_CCM_8_192")),
        (EncrId::AES_CCM_8, Some(256)) => Ok(rc(RcMode::Ccm, 32, 8, "AES_CCM_8_256")),
        (EncrId::AES_CCM_12, Some(128)) => Ok(rc(RcMode::Ccm, 16, 12, "AES_CCM_12_128")),
        (EncrId::AES_CCM_12, Some(192)) => Ok(rc(RcMode::Ccm, 24, 12, "AES_CCM_12_192")),
        (EncrId::AES_CCM_12, Some(256)) => Ok(rc(RcMode::Ccm, 32, 12, "AES_CCM_12_256")),
        (EncrId::AES_CCM_16, Some(128)) => Ok(rc(RcMode::Ccm, 16, 16, "AES_CCM_16_128")),
        (EncrId::AES_CCM_16, Some(192)) => Ok(rc(RcMode::Ccm, 24, 16, "AES_CCM_16_192")),
        (EncrId::AES_CCM_16, Some(256)) => Ok(rc(RcMode::Ccm, 32, 16, "AES_CCM_16_256")),
        (EncrId::AES_CBC, Some(128)) => Ok(classic(Classic::AesCbc, 16, "AES_CBC_128")),
        (EncrId::AES_CBC, Some(192)) => Ok(classic(Classic::AesCbc, 24, "AES_CBC_192")),
        (EncrId::AES_CBC, Some(256)) => Ok(classic(Classic::AesCbc, 32, "AES_CBC_256")),
        (EncrId::AES_CTR, Some(128)) => Ok(classic(Classic::AesCtr, 16 + 4, "AES_CTR_128")),
        (EncrId::AES_CTR, Some(192)) => Ok(classic(Classic::AesCtr, 24 + 4, "AES_CTR_192")),
        (EncrId::AES_CTR, Some(256)) => Ok(classic(Classic::AesCtr, 32 + 4, "AES_CTR_256")),
        (EncrId::TRIPLE_DES, None) => Ok(classic(Classic::TripleDesCbc, 24, "3DES_CBC")),
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
        (IkeEncr::Aead { .. } | IkeEncr::RcAead { .. }, None) => Ok(None),
        (IkeEncr::Aead { name, .. } | IkeEncr::RcAead { name, .. }, Some(i)) => Err(unsupported(
            format!("integrity {i} with combined-mode {name}"),
        )),
        (IkeEncr::Cbc { name, .. }, None) => {
            Err(unsupported(format!("{name} without integrity algorithm")))
        }
        (IkeEncr::Cbc { .. }, Some(i)) => {
            let hmac = |alg: hmac::Algorithm| (Mac::Hmac(alg), alg.digest_algorithm().output_len());
            let ((mac, key_len), icv_len, name) = match i {
                IntegId::HMAC_MD5_96 => ((Mac::HmacMd5, 16), 12, "HMAC_MD5_96"),
                IntegId::HMAC_SHA1_96 => (
                    hmac(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
                    12,
                    "HMAC_SHA1_96",
                ),
                IntegId::HMAC_SHA2_256_128 => (hmac(hmac::HMAC_SHA256), 16, "HMAC_SHA2_256_128"),
                IntegId::HMAC_SHA2_384_192 => (hmac(hmac::HMAC_SHA384), 24, "HMAC_SHA2_384_192"),
                IntegId::HMAC_SHA2_512_256 => (hmac(hmac::HMAC_SHA512), 32, "HMAC_SHA2_512_256"),
                IntegId::AES_XCBC_96 => ((Mac::AesXcbc, 16), 12, "AES_XCBC_96"),
                IntegId::AES_CMAC_96 => ((Mac::AesCmac, 16), 12, "AES_CMAC_96"),
                other => return Err(unsupported(format!("integrity {other}"))),
            };
            Ok(Some(IkeInteg {
                mac,
                icv_len,
                key_len,
                name,
            }))
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
            IkeEncr::Aead { name, .. }
            | IkeEncr::RcAead { name, .. }
            | IkeEncr::Cbc { name, .. } => name,
        },
        encr_key,
        encr.sk_e_len(),
    )?;
    match (encr, integ) {
        (IkeEncr::Aead { alg, name, .. }, None) => {
            check_key("integrity (none for AEAD)", integ_key, 0)?;
            Ok(Box::new(AeadSk::new(alg, name, encr_key)?))
        }
        (
            IkeEncr::RcAead {
                mode,
                key_len,
                icv_len,
                name,
            },
            None,
        ) => {
            check_key("integrity (none for AEAD)", integ_key, 0)?;
            Ok(Box::new(RcAeadSk::new(
                mode, icv_len, key_len, name, encr_key,
            )?))
        }
        (IkeEncr::Cbc { kind, name, .. }, Some(integ)) => {
            check_key(integ.name, integ_key, integ.sk_a_len())?;
            Ok(Box::new(CbcSk::new(
                kind, name, encr_key, integ, integ_key, rng,
            )?))
        }
        // ike_integ pairs AEAD with None and CBC with Some.
        (_, _) => Err(unsupported(format!("{suite:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::proposal::keywords;
    use crate::crypto::provider::{
        ALGORITHMS, CryptoProvider, DefaultProvider, DeterministicProvider,
    };
    use crate::wire::codes::{KeId, PrfId};
    use proptest::prelude::*;

    /// Every suite the providers implement: each AEAD alone, each CBC key
    /// size with each integrity algorithm.
    fn suites() -> Vec<IkeSuite> {
        let mut out = Vec::new();
        for &(encr, encr_key_bits) in ALGORITHMS.encr {
            let base = IkeSuite {
                encr,
                encr_key_bits,
                integ: None,
                prf: PrfId::HMAC_SHA2_256,
                ke: KeId::CURVE25519,
            };
            if !keywords::is_aead(encr.0) {
                for &i in ALGORITHMS.integ {
                    out.push(IkeSuite {
                        integ: Some(i),
                        ..base
                    });
                }
            } else {
                out.push(base);
            }
        }
        out
    }

    fn cipher(p: &dyn CryptoProvider, s: &IkeSuite) -> Box<dyn SkCipher> {
        let e: Vec<u8> = (0..s.encr_key_len().unwrap()).map(|i| i as u8).collect();
        let a: Vec<u8> = (0..s.integ_key_len().unwrap())
            .map(|i| 0x80 ^ i as u8)
            .collect();
        p.sk_cipher(s, &e, &a).unwrap()
    }

    const AUTH: &[u8] = b"IKE header and SK payload header: 28 + 4 octets";

    #[test]
    fn round_trip_every_algorithm_and_length() {
        let providers: [&dyn CryptoProvider; 2] = [
            &DefaultProvider::new(),
            &DeterministicProvider::new(b"seed"),
        ];
        // 16 AEADs (ring's 3, AES-GCM-16-192, AES-GCM-12 and AES-CCM-8/12/16
        // in three sizes), then 3 AES-CBC, 3 AES-CTR and 3DES with 7 MACs each.
        assert_eq!(suites().len(), 16 + 7 * 7);
        for p in providers {
            for s in suites() {
                let mut tx = cipher(p, &s);
                let rx = cipher(p, &s);
                for len in 0..70 {
                    let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                    let mut out = AUTH.to_vec();
                    tx.seal(&mut out, &plain).unwrap();
                    let body = &out[AUTH.len()..];
                    assert_eq!(body.len(), tx.sealed_len(len), "{s:?} {len}");
                    assert!(body.len() > tx.iv_len() + tx.icv_len());
                    let block = match s.encr {
                        EncrId::AES_CBC => 16,
                        EncrId::TRIPLE_DES => 8,
                        _ => 1,
                    };
                    assert_eq!((body.len() - tx.iv_len() - tx.icv_len()) % block, 0);
                    if s.encr == EncrId::AES_CTR {
                        // No padding: the payloads and the Pad Length octet.
                        assert_eq!(body.len(), tx.iv_len() + len + 1 + tx.icv_len());
                    }
                    if len >= 8 {
                        assert_ne!(&body[tx.iv_len()..][..8], &plain[..8], "not encrypted");
                    }
                    let opened = rx.open(AUTH, body).unwrap();
                    assert_eq!(opened.as_slice(), plain.as_slice(), "{s:?} {len}");
                }
            }
        }
    }

    #[test]
    fn iv_and_icv_lengths() {
        let p = DefaultProvider::new();
        for s in suites() {
            let c = cipher(&p, &s);
            let iv = match s.encr {
                EncrId::AES_CBC => 16,
                _ => 8,
            };
            let icv = match (s.encr, s.integ) {
                (EncrId::AES_CCM_8, _) => 8,
                (EncrId::AES_GCM_12 | EncrId::AES_CCM_12, _) => 12,
                (_, Some(IntegId::HMAC_SHA2_256_128) | None) => 16,
                (_, Some(IntegId::HMAC_SHA2_384_192)) => 24,
                (_, Some(IntegId::HMAC_SHA2_512_256)) => 32,
                _ => 12,
            };
            let want = (iv, icv);
            assert_eq!((c.iv_len(), c.icv_len()), want, "{s:?}");
            assert!(!format!("{c:?}").contains("0001020304"));
        }
    }

    #[test]
    fn ivs_do_not_repeat() {
        let p = DefaultProvider::new();
        for s in suites() {
            let mut c = cipher(&p, &s);
            let mut seen = std::collections::HashSet::new();
            for _ in 0..50 {
                let mut out = Vec::new();
                c.seal(&mut out, b"x").unwrap();
                assert!(seen.insert(out[..c.iv_len()].to_vec()), "{s:?}");
            }
        }
    }

    #[test]
    fn any_changed_octet_fails_the_integrity_check() {
        let p = DefaultProvider::new();
        for s in suites() {
            let mut tx = cipher(&p, &s);
            let rx = cipher(&p, &s);
            let mut out = AUTH.to_vec();
            tx.seal(&mut out, b"inner payloads, thirty-three oct")
                .unwrap();
            // Every octet of authenticated, IV, ciphertext and ICV.
            for i in 0..out.len() {
                let mut bad = out.clone();
                bad[i] ^= 0x01;
                let (auth, body) = bad.split_at(AUTH.len());
                assert_eq!(
                    rx.open(auth, body).unwrap_err(),
                    CryptoError::IntegrityCheckFailed,
                    "{s:?} octet {i}"
                );
            }
            // The authenticated part is bound to the body.
            assert!(rx.open(&AUTH[1..], &out[AUTH.len()..]).is_err());
            // Moving the split point keeps the MAC's input (authenticated |
            // IV | ciphertext): only a block cipher's alignment sees it. In
            // a message the IKE header's lengths fix the split.
            if s.encr != EncrId::AES_CTR {
                assert!(
                    rx.open(&out[..AUTH.len() + 1], &out[AUTH.len() + 1..])
                        .is_err()
                );
            }
            // A cipher with other keys refuses it.
            let other = p
                .sk_cipher(
                    &s,
                    &vec![9; s.encr_key_len().unwrap()],
                    &vec![9; s.integ_key_len().unwrap()],
                )
                .unwrap();
            assert!(other.open(AUTH, &out[AUTH.len()..]).is_err());
        }
    }

    #[test]
    fn truncated_and_misaligned_bodies_fail_cleanly() {
        let p = DefaultProvider::new();
        for s in suites() {
            let mut tx = cipher(&p, &s);
            let rx = cipher(&p, &s);
            let mut out = AUTH.to_vec();
            tx.seal(&mut out, &[0x55; 40]).unwrap();
            let body = &out[AUTH.len()..];
            for cut in 0..body.len() {
                assert!(rx.open(AUTH, &body[..cut]).is_err(), "{s:?} {cut}");
                assert!(rx.open(AUTH, &body[cut + 1..]).is_err(), "{s:?} {cut}");
            }
            if s.encr == EncrId::AES_CBC {
                // One octet more or less in the ciphertext: not whole blocks.
                let mut longer = body.to_vec();
                longer.insert(20, 0);
                assert_eq!(
                    rx.open(AUTH, &longer).unwrap_err(),
                    CryptoError::MalformedCiphertext("ciphertext not a multiple of the block size")
                );
            }
        }
    }

    /// A correct ICV over a plaintext whose Pad Length counts more octets
    /// than there are is refused after the ICV check and decryption.
    #[test]
    fn bad_pad_length_is_refused() {
        use ring::aead as ra;
        let want = CryptoError::MalformedCiphertext("Pad Length longer than the plaintext");
        // AEAD: the plaintext is a lone Pad Length octet of 5.
        let key = [3u8; 20];
        let sk = crate::crypto::sk_aead::AeadSk::new(&ra::AES_128_GCM, "t", &key).unwrap();
        let raw = ra::LessSafeKey::new(ra::UnboundKey::new(&ra::AES_128_GCM, &key[..16]).unwrap());
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&key[16..]);
        let mut buf = vec![5u8];
        raw.seal_in_place_append_tag(
            ra::Nonce::assume_unique_for_key(nonce),
            ra::Aad::from(AUTH),
            &mut buf,
        )
        .unwrap();
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&buf);
        assert_eq!(sk.open(AUTH, &body).unwrap_err(), want);

        // CBC: one block ending in a Pad Length of 16, with a valid ICV.
        let s = suites()
            .into_iter()
            .find(|s| s.encr_key_bits == Some(128) && s.integ == Some(IntegId::HMAC_SHA2_256_128))
            .unwrap();
        let (ek, ak) = ([1u8; 16], [2u8; 32]);
        let rx = DefaultProvider::new().sk_cipher(&s, &ek, &ak).unwrap();
        let iv = [7u8; 16];
        let mut block = [0u8; 16];
        block[15] = 16;
        crate::crypto::sk_cbc::cbc_encrypt(&ek, &iv, &mut block).unwrap();
        let mut body = iv.to_vec();
        body.extend_from_slice(&block);
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &ak),
            &[AUTH, &body].concat(),
        );
        body.extend_from_slice(&mac.as_ref()[..16]);
        assert_eq!(rx.open(AUTH, &body).unwrap_err(), want);
        // The same with Pad Length 15 is fine and empty.
        let mut block = [0u8; 16];
        block[15] = 15;
        crate::crypto::sk_cbc::cbc_encrypt(&ek, &iv, &mut block).unwrap();
        let mut body = iv.to_vec();
        body.extend_from_slice(&block);
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &ak),
            &[AUTH, &body].concat(),
        );
        body.extend_from_slice(&mac.as_ref()[..16]);
        assert!(rx.open(AUTH, &body).unwrap().is_empty());
    }

    #[test]
    fn wrong_key_lengths_are_refused() {
        let p = DefaultProvider::new();
        for s in suites() {
            let e = s.encr_key_len().unwrap();
            let a = s.integ_key_len().unwrap();
            for (el, al) in [(e - 1, a), (e + 1, a), (0, a), (e, a + 1)] {
                assert!(
                    matches!(
                        p.sk_cipher(&s, &vec![0; el], &vec![0; al]),
                        Err(CryptoError::KeyLength { .. })
                    ),
                    "{s:?} {el} {al}"
                );
            }
            if a > 0 {
                assert!(p.sk_cipher(&s, &vec![0; e], &vec![0; a - 1]).is_err());
            }
        }
    }

    #[test]
    fn unsupported_combinations_name_the_algorithm() {
        let p = DefaultProvider::new();
        let base = IkeSuite {
            encr: EncrId::AES_CBC,
            encr_key_bits: Some(128),
            integ: Some(IntegId::HMAC_SHA2_256_128),
            prf: PrfId::HMAC_SHA2_256,
            ke: KeId::CURVE25519,
        };
        for (s, name) in [
            (
                IkeSuite {
                    encr: EncrId::DES,
                    encr_key_bits: None,
                    ..base
                },
                "DES",
            ),
            (
                IkeSuite {
                    encr: EncrId::AES_GCM_8,
                    encr_key_bits: Some(128),
                    integ: None,
                    ..base
                },
                "AES_GCM_8",
            ),
            (
                IkeSuite {
                    encr: EncrId::AES_GCM_16,
                    encr_key_bits: Some(160),
                    integ: None,
                    ..base
                },
                "160",
            ),
            (
                IkeSuite {
                    encr: EncrId::CAMELLIA_CBC,
                    ..base
                },
                "CAMELLIA_CBC",
            ),
            (
                IkeSuite {
                    integ: Some(IntegId::DES_MAC),
                    ..base
                },
                "DES_MAC",
            ),
            (
                IkeSuite {
                    integ: Some(IntegId::KPDK_MD5),
                    ..base
                },
                "KPDK_MD5",
            ),
            (
                IkeSuite {
                    integ: None,
                    ..base
                },
                "AES_CBC_128 without integrity",
            ),
            (
                IkeSuite {
                    integ: Some(IntegId::NONE),
                    ..base
                },
                "without integrity",
            ),
            (
                IkeSuite {
                    encr: EncrId::AES_GCM_16,
                    integ: Some(IntegId::HMAC_SHA1_96),
                    ..base
                },
                "HMAC_SHA1_96 with combined-mode",
            ),
            (
                IkeSuite {
                    encr: EncrId::from(1024),
                    ..base
                },
                "EncrId(1024)",
            ),
        ] {
            match p.sk_cipher(&s, &[0; 16], &[0; 32]) {
                Err(CryptoError::Unsupported(m)) => assert!(m.contains(name), "{m} / {name}"),
                other => panic!("{s:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn failed_seal_leaves_out_unchanged() {
        #[derive(Debug)]
        struct Broken;
        impl RandomSource for Broken {
            fn fill(&self, _: &mut [u8]) -> Result<(), CryptoError> {
                Err(CryptoError::Random)
            }
        }
        let s = suites()
            .into_iter()
            .find(|s| s.encr == EncrId::AES_CBC)
            .unwrap();
        let mut c = new_sk_cipher(&s, &[1; 32], &[2; 32], Arc::new(Broken)).unwrap();
        let mut out = b"auth".to_vec();
        assert_eq!(
            c.seal(&mut out, b"secret").unwrap_err(),
            CryptoError::Random
        );
        assert_eq!(out, b"auth");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// `open` takes untrusted bytes: whatever they are, it returns an
        /// error or plaintext, never panics; random bodies never pass.
        #[test]
        fn random_bodies_never_panic_open(
            auth in proptest::collection::vec(any::<u8>(), 0..64),
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let p = DeterministicProvider::new(b"proptest");
            for s in suites() {
                let c = cipher(&p, &s);
                prop_assert!(c.open(&auth, &body).is_err());
            }
        }

        /// Sealing any plaintext then opening it gives it back.
        #[test]
        fn seal_open_round_trip(
            plain in proptest::collection::vec(any::<u8>(), 0..300),
            which in 0usize..15,
        ) {
            let p = DefaultProvider::new();
            let s = suites()[which];
            let mut tx = cipher(&p, &s);
            let rx = cipher(&p, &s);
            let mut out = AUTH.to_vec();
            tx.seal(&mut out, &plain).unwrap();
            prop_assert_eq!(out.len() - AUTH.len(), tx.sealed_len(plain.len()));
            let opened = rx.open(AUTH, &out[AUTH.len()..]).unwrap();
            prop_assert_eq!(opened.as_slice(), plain.as_slice());
        }
    }
}
