//! SK payload protection with AEAD ciphers: AES-GCM with a 16-octet ICV
//! (RFC 5282) and ChaCha20-Poly1305 (RFC 7634).
//!
//! Body: `IV (8) | ciphertext | ICV (16)`. Nonce: `salt (4) | IV (8)`, the
//! salt being the last 4 octets of SK_e. AAD: the authenticated part (IKE
//! header to the end of the SK payload header). The IV is a 64-bit counter,
//! so no nonce repeats under one key; it is never wrapped. Padding: none is
//! needed (the block size is 1), so the plaintext is `payloads | 0x00`;
//! on open any Pad Length that fits is accepted (RFC 7296 3.14).

use core::fmt;

use ring::aead;
use zeroize::{Zeroize, Zeroizing};

use super::CryptoError;
use super::encr::AEAD_SALT_LEN;
use super::sk::SkCipher;

/// Length of the explicit IV.
pub(crate) const IV_LEN: usize = 8;
/// Length of the ICV (the AEAD tag).
pub(crate) const ICV_LEN: usize = 16;

/// One direction of AEAD SK protection.
///
/// It keeps the key, not ring's key schedule: an AES-GCM `LessSafeKey` is
/// about 550 bytes, two per IKE SA, against 16-32 for the key (memory per
/// tunnel: docs/performance.md). The schedule is made again for each message (well
/// under a microsecond, next to the message's own cost).
pub(crate) struct AeadSk {
    name: &'static str,
    alg: &'static aead::Algorithm,
    key: Zeroizing<Box<[u8]>>,
    salt: [u8; AEAD_SALT_LEN],
    /// The next IV to use; `None` once all 2^64 have been used.
    next_iv: Option<u64>,
}

impl AeadSk {
    /// `key_material` is the cipher key followed by the 4-octet salt.
    pub(crate) fn new(
        alg: &'static aead::Algorithm,
        name: &'static str,
        key_material: &[u8],
    ) -> Result<Self, CryptoError> {
        let key_len = alg.key_len();
        let bad_len = || CryptoError::KeyLength {
            algorithm: name.to_string(),
            got: key_material.len(),
            want: key_len.saturating_add(AEAD_SALT_LEN),
        };
        let (key, salt) = key_material.split_at_checked(key_len).ok_or_else(bad_len)?;
        let salt: [u8; AEAD_SALT_LEN] = salt.try_into().map_err(|_| bad_len())?;
        // The key's length (checked by the split) is all ring checks; no
        // schedule is made here, so a handshake makes as many as it did
        // with kept ones: one per message each side seals or opens.
        Ok(Self {
            name,
            alg,
            key: Zeroizing::new(key.into()),
            salt,
            next_iv: Some(0),
        })
    }

    fn key(&self) -> Result<aead::LessSafeKey, CryptoError> {
        aead::UnboundKey::new(self.alg, &self.key)
            .map(aead::LessSafeKey::new)
            .map_err(|_| CryptoError::KeyLength {
                algorithm: self.name.to_string(),
                got: self.key.len(),
                want: self.alg.key_len(),
            })
    }

    fn nonce(&self, iv: &[u8; IV_LEN]) -> aead::Nonce {
        let mut n = [0u8; aead::NONCE_LEN];
        let (s, i) = n.split_at_mut(AEAD_SALT_LEN);
        s.copy_from_slice(&self.salt);
        i.copy_from_slice(iv);
        aead::Nonce::assume_unique_for_key(n)
    }
}

impl fmt::Debug for AeadSk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeadSk({})", self.name)
    }
}

impl SkCipher for AeadSk {
    fn iv_len(&self) -> usize {
        IV_LEN
    }

    fn icv_len(&self) -> usize {
        ICV_LEN
    }

    fn sealed_len(&self, plain_len: usize) -> usize {
        plain_len
            .saturating_add(1)
            .saturating_add(IV_LEN)
            .saturating_add(ICV_LEN)
    }

    fn seal(&mut self, out: &mut Vec<u8>, plaintext: &[u8]) -> Result<(), CryptoError> {
        let key = self.key()?;
        let counter = self.next_iv.ok_or(CryptoError::IvExhausted)?;
        self.next_iv = counter.checked_add(1);
        let iv = counter.to_be_bytes();
        let nonce = self.nonce(&iv);
        let auth_len = out.len();
        out.reserve(self.sealed_len(plaintext.len()));
        out.extend_from_slice(&iv);
        let start = out.len();
        out.extend_from_slice(plaintext);
        out.push(0); // Pad Length: no padding
        let (head, body) = out.split_at_mut(start);
        let aad = head.get(..auth_len).unwrap_or_default();
        match key.seal_in_place_separate_tag(nonce, aead::Aad::from(aad), body) {
            Ok(tag) => {
                out.extend_from_slice(tag.as_ref());
                Ok(())
            }
            Err(_) => {
                body.zeroize();
                out.truncate(auth_len);
                Err(CryptoError::MalformedCiphertext(
                    "plaintext too long for AEAD",
                ))
            }
        }
    }

    fn open(&self, authenticated: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (iv, rest) = body
            .split_first_chunk::<IV_LEN>()
            .ok_or(CryptoError::MalformedCiphertext("shorter than the IV"))?;
        // At least the Pad Length octet and the ICV.
        if rest.len() < ICV_LEN.saturating_add(1) {
            return Err(CryptoError::MalformedCiphertext(
                "shorter than IV + Pad Length + ICV",
            ));
        }
        let key = self.key()?;
        let mut buf = Zeroizing::new(rest.to_vec());
        let plain_len = key
            .open_in_place(self.nonce(iv), aead::Aad::from(authenticated), &mut buf)
            .map_err(|_| CryptoError::IntegrityCheckFailed)?
            .len();
        buf.truncate(plain_len);
        strip_padding(buf)
    }
}

/// Removes the Pad Length octet and the padding it counts.
pub(crate) fn strip_padding(
    mut plain: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let pad = usize::from(
        *plain
            .last()
            .ok_or(CryptoError::MalformedCiphertext("no Pad Length octet"))?,
    );
    let keep =
        plain
            .len()
            .checked_sub(pad.saturating_add(1))
            .ok_or(CryptoError::MalformedCiphertext(
                "Pad Length longer than the plaintext",
            ))?;
    plain.truncate(keep);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ke::tests::h;

    fn raw_seal(
        alg: &'static aead::Algorithm,
        key: &str,
        nonce: &str,
        aad: &str,
        pt: &[u8],
    ) -> Vec<u8> {
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, &h(key)).unwrap());
        let nonce = aead::Nonce::try_assume_unique_for_key(&h(nonce)).unwrap();
        let mut buf = pt.to_vec();
        key.seal_in_place_append_tag(nonce, aead::Aad::from(h(aad)), &mut buf)
            .unwrap();
        buf
    }

    const GCM_PT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                          1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    const GCM_AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
    const GCM_IV: &str = "cafebabefacedbaddecaf888";

    // McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 4
    // (AES-128) and 16 (AES-256): 60 octets of plaintext with 20 of AAD.
    #[test]
    fn gcm_spec_test_cases_4_and_16() {
        let tc4 = raw_seal(
            &aead::AES_128_GCM,
            "feffe9928665731c6d6a8f9467308308",
            GCM_IV,
            GCM_AAD,
            &h(GCM_PT),
        );
        assert_eq!(
            hex::encode(tc4),
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
             21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091\
             5bc94fbc3221a5db94fae95ae7121a47"
        );
        let tc16 = raw_seal(
            &aead::AES_256_GCM,
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            GCM_IV,
            GCM_AAD,
            &h(GCM_PT),
        );
        assert_eq!(
            hex::encode(tc16),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
             76fc6ece0f4e1768cddf8853bb2d551b"
        );
    }

    // RFC 8439 section 2.8.2.
    #[test]
    fn rfc8439_2_8_2_chacha20_poly1305() {
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let out = raw_seal(
            &aead::CHACHA20_POLY1305,
            "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
            "070000004041424344454647",
            "50515253c0c1c2c3c4c5c6c7",
            pt,
        );
        assert_eq!(
            hex::encode(out),
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6\
             3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36\
             92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc\
             3ff4def08e4b7a9de576d26586cec64b6116\
             1ae10b594f09e26a7e902ecbd0600691"
        );
    }

    /// The SK layout around the primitive: salt from the key material's
    /// end, the counter IV, AAD and the Pad Length octet, checked against
    /// the raw AEAD with the GCM spec key.
    #[test]
    fn sk_layout_matches_the_raw_aead() {
        let key = "feffe9928665731c6d6a8f9467308308";
        let mut km = h(key);
        km.extend_from_slice(&h("cafebabe"));
        let mut sk = AeadSk::new(&aead::AES_128_GCM, "AES_GCM_16_128", &km).unwrap();
        let auth = h(GCM_AAD);
        for counter in 0u64..2 {
            let mut out = auth.clone();
            sk.seal(&mut out, b"payloads").unwrap();
            let iv = counter.to_be_bytes();
            assert_eq!(&out[auth.len()..auth.len() + 8], &iv);
            let raw = raw_seal(
                &aead::AES_128_GCM,
                key,
                &format!("cafebabe{}", hex::encode(iv)),
                GCM_AAD,
                b"payloads\x00",
            );
            assert_eq!(&out[auth.len() + 8..], raw.as_slice());
        }
    }

    #[test]
    fn iv_counter_never_wraps() {
        let mut sk = AeadSk::new(&aead::CHACHA20_POLY1305, "CHACHA20_POLY1305", &[1; 36]).unwrap();
        sk.next_iv = Some(u64::MAX);
        let mut out = Vec::new();
        sk.seal(&mut out, b"last").unwrap();
        let mut out2 = b"auth".to_vec();
        assert_eq!(
            sk.seal(&mut out2, b"one more").unwrap_err(),
            CryptoError::IvExhausted
        );
        assert_eq!(out2, b"auth", "a failed seal leaves `out` as it was");
    }

    #[test]
    fn wrong_key_material_lengths() {
        for len in [0, 16, 19, 21, 32] {
            assert!(matches!(
                AeadSk::new(&aead::AES_128_GCM, "AES_GCM_16_128", &vec![0; len]),
                Err(CryptoError::KeyLength { got, want: 20, .. }) if got == len
            ));
        }
    }

    #[test]
    fn padding_is_checked() {
        let z = |v: &[u8]| strip_padding(Zeroizing::new(v.to_vec()));
        assert_eq!(z(&[1, 2, 0]).unwrap().as_slice(), &[1, 2]);
        assert_eq!(z(&[1, 9, 9, 2]).unwrap().as_slice(), &[1]);
        assert!(z(&[9, 9, 2]).unwrap().is_empty());
        assert!(z(&[9, 3]).is_err());
        assert!(z(&[255]).is_err());
        assert!(z(&[]).is_err());
    }
}
