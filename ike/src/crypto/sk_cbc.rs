//! SK payload protection with AES-CBC and a truncated HMAC (RFC 7296 3.14,
//! RFC 3602, RFC 4868, RFC 2404).
//!
//! Body: `IV (16) | ciphertext | ICV`. The ICV is the HMAC over
//! `authenticated | IV | ciphertext`, truncated; it is checked in constant
//! time before anything is decrypted. The IV comes from the provider's
//! random source for every message (unpredictable, as CBC needs). The
//! plaintext `payloads | padding | Pad Length` is padded with zeros to a
//! multiple of the block size.

use std::sync::Arc;

use core::fmt;

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ring::hmac;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::CryptoError;
use super::encr::IkeInteg;
use super::provider::RandomSource;
use super::sk::SkCipher;
use super::sk_aead::strip_padding;

/// The AES block size, which is also the IV length.
pub(crate) const BLOCK: usize = 16;

/// One direction of AES-CBC + HMAC SK protection.
pub(crate) struct CbcSk {
    name: &'static str,
    key: Zeroizing<Vec<u8>>,
    integ: IkeInteg,
    mac_key: hmac::Key,
    rng: Arc<dyn RandomSource>,
}

impl CbcSk {
    pub(crate) fn new(
        name: &'static str,
        key: &[u8],
        integ: IkeInteg,
        integ_key: &[u8],
        rng: Arc<dyn RandomSource>,
    ) -> Result<Self, CryptoError> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(CryptoError::KeyLength {
                algorithm: name.to_string(),
                got: key.len(),
                want: 16,
            });
        }
        Ok(Self {
            name,
            key: Zeroizing::new(key.to_vec()),
            integ,
            mac_key: hmac::Key::new(integ.alg, integ_key),
            rng,
        })
    }

    fn icv(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.mac_key);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign()
    }
}

impl fmt::Debug for CbcSk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CbcSk({}, {})", self.name, self.integ.name)
    }
}

/// Encrypts whole blocks in place.
pub(crate) fn cbc_encrypt(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
    let len = buf.len();
    let bad = |_| CryptoError::MalformedCiphertext("not a whole number of blocks");
    let bad_key = |_| CryptoError::MalformedCiphertext("bad AES-CBC key or IV length");
    match key.len() {
        16 => cbc::Encryptor::<Aes128>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .map(|_| ())
            .map_err(bad),
        24 => cbc::Encryptor::<Aes192>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .map(|_| ())
            .map_err(bad),
        32 => cbc::Encryptor::<Aes256>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .map(|_| ())
            .map_err(bad),
        _ => Err(CryptoError::MalformedCiphertext(
            "bad AES-CBC key or IV length",
        )),
    }
}

/// Decrypts whole blocks in place.
pub(crate) fn cbc_decrypt(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
    let bad = |_| CryptoError::MalformedCiphertext("not a whole number of blocks");
    let bad_key = |_| CryptoError::MalformedCiphertext("bad AES-CBC key or IV length");
    match key.len() {
        16 => cbc::Decryptor::<Aes128>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ())
            .map_err(bad),
        24 => cbc::Decryptor::<Aes192>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ())
            .map_err(bad),
        32 => cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ())
            .map_err(bad),
        _ => Err(CryptoError::MalformedCiphertext(
            "bad AES-CBC key or IV length",
        )),
    }
}

/// Padding octets for `plain_len` octets of payloads plus the Pad Length octet.
fn pad_len(plain_len: usize) -> usize {
    (BLOCK - 1).saturating_sub(plain_len % BLOCK)
}

impl SkCipher for CbcSk {
    fn iv_len(&self) -> usize {
        BLOCK
    }

    fn icv_len(&self) -> usize {
        self.integ.icv_len
    }

    fn sealed_len(&self, plain_len: usize) -> usize {
        BLOCK
            .saturating_add(plain_len)
            .saturating_add(pad_len(plain_len))
            .saturating_add(1)
            .saturating_add(self.integ.icv_len)
    }

    fn seal(&mut self, out: &mut Vec<u8>, plaintext: &[u8]) -> Result<(), CryptoError> {
        let mut iv = [0u8; BLOCK];
        self.rng.fill(&mut iv)?;
        let auth_len = out.len();
        let pad = pad_len(plaintext.len());
        out.reserve(self.sealed_len(plaintext.len()));
        out.extend_from_slice(&iv);
        let start = out.len();
        out.extend_from_slice(plaintext);
        out.resize(out.len().saturating_add(pad), 0);
        // pad < BLOCK, so it fits in the octet.
        out.push(u8::try_from(pad).unwrap_or_default());
        let body = out.get_mut(start..).unwrap_or_default();
        if let Err(e) = cbc_encrypt(&self.key, &iv, body) {
            body.zeroize();
            out.truncate(auth_len);
            return Err(e);
        }
        let tag = self.icv(&[out]);
        let icv = tag
            .as_ref()
            .get(..self.integ.icv_len)
            .ok_or(CryptoError::MalformedCiphertext("ICV longer than the MAC"))?;
        out.extend_from_slice(icv);
        Ok(())
    }

    fn open(&self, authenticated: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let icv_len = self.integ.icv_len;
        let (iv, rest) = body
            .split_first_chunk::<BLOCK>()
            .ok_or(CryptoError::MalformedCiphertext("shorter than the IV"))?;
        let ct_len = rest
            .len()
            .checked_sub(icv_len)
            .ok_or(CryptoError::MalformedCiphertext("shorter than IV + ICV"))?;
        let (ct, icv) = rest
            .split_at_checked(ct_len)
            .ok_or(CryptoError::MalformedCiphertext("shorter than IV + ICV"))?;
        if ct.is_empty() {
            return Err(CryptoError::MalformedCiphertext("no ciphertext block"));
        }
        if ct.len() % BLOCK != 0 {
            return Err(CryptoError::MalformedCiphertext(
                "ciphertext not a multiple of the block size",
            ));
        }
        let tag = self.icv(&[authenticated, iv, ct]);
        let want = tag
            .as_ref()
            .get(..icv_len)
            .ok_or(CryptoError::MalformedCiphertext("ICV longer than the MAC"))?;
        if !bool::from(want.ct_eq(icv)) {
            return Err(CryptoError::IntegrityCheckFailed);
        }
        let mut plain = Zeroizing::new(ct.to_vec());
        cbc_decrypt(&self.key, iv, &mut plain)?;
        strip_padding(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ke::tests::h;

    const IV: &str = "000102030405060708090a0b0c0d0e0f";
    const PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51
                      30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

    // NIST SP 800-38A F.2.1/F.2.2 (CBC-AES128) and F.2.5/F.2.6 (CBC-AES256).
    #[test]
    fn sp800_38a_f2() {
        for (key, ct) in [
            (
                "2b7e151628aed2a6abf7158809cf4f3c",
                "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2
                 73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
            ),
            (
                "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
                "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d
                 39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
            ),
        ] {
            let mut buf = h(PT);
            cbc_encrypt(&h(key), &h(IV), &mut buf).unwrap();
            assert_eq!(buf, h(ct));
            cbc_decrypt(&h(key), &h(IV), &mut buf).unwrap();
            assert_eq!(buf, h(PT));
        }
    }

    #[test]
    fn partial_blocks_are_refused() {
        let mut buf = [0u8; 17];
        assert!(cbc_encrypt(&[0; 16], &[0; 16], &mut buf).is_err());
        assert!(cbc_decrypt(&[0; 16], &[0; 16], &mut buf).is_err());
        assert!(cbc_decrypt(&[0; 15], &[0; 16], &mut [0; 16]).is_err());
        assert!(cbc_decrypt(&[0; 16], &[0; 15], &mut [0; 16]).is_err());
    }

    #[test]
    fn padding_fills_to_the_block() {
        for n in 0..64 {
            assert_eq!((n + pad_len(n) + 1) % BLOCK, 0, "{n}");
            assert!(pad_len(n) < BLOCK);
        }
    }
}
