//! SK payload protection with the AEADs ring lacks, on RustCrypto's ccm
//! and aes-gcm: AES-CCM with 8, 12 or 16-octet ICVs (RFC 5282 section 8)
//! and AES-GCM with a 12-octet ICV or a 192-bit key (RFC 5282 section 7).
//!
//! Body: `IV (8) | ciphertext | ICV`, as with ring's AEADs (`sk_aead`).
//! Nonce: `salt | IV`, the salt being the last octets of SK_e: 3 for CCM
//! (an 11-octet nonce, so CCM's length field is 4 octets), 4 for GCM. AAD:
//! the authenticated part. The IV is a 64-bit counter; no padding.

use core::fmt;

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::{U8, U11, U12, U16};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use zeroize::Zeroizing;

use super::CryptoError;
use super::sk::SkCipher;
use super::sk_aead::strip_padding;

/// Length of the explicit IV.
const IV_LEN: usize = 8;

/// AES-CCM or AES-GCM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// AES-CCM: 3-octet salt.
    Ccm,
    /// AES-GCM: 4-octet salt.
    Gcm,
}

impl Mode {
    /// Octets of salt after the key in SK_e.
    pub(crate) fn salt_len(self) -> usize {
        match self {
            Mode::Ccm => 3,
            Mode::Gcm => 4,
        }
    }
}

/// One direction of AES-CCM or RustCrypto AES-GCM SK protection.
pub(crate) struct RcAeadSk {
    name: &'static str,
    mode: Mode,
    icv_len: usize,
    key: Zeroizing<Vec<u8>>,
    salt: Vec<u8>,
    next_iv: Option<u64>,
}

/// Runs `$body` with `$c` bound to the cipher of `$mode`, key length and
/// ICV length; an unknown combination is `Unsupported`.
macro_rules! with_cipher {
    ($self:expr, |$c:ident| $body:expr) => {{
        let key: &[u8] = &$self.key;
        let bad = |_| CryptoError::KeyLength {
            algorithm: $self.name.to_string(),
            got: key.len(),
            want: 16,
        };
        match ($self.mode, key.len(), $self.icv_len) {
            (Mode::Ccm, 16, 8) => {
                let $c = ccm::Ccm::<Aes128, U8, U11>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Ccm, 16, 12) => {
                let $c = ccm::Ccm::<Aes128, U12, U11>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Ccm, 16, 16) => {
                let $c = ccm::Ccm::<Aes128, U16, U11>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Ccm, 24, 8) => {
                let $c = ccm::Ccm::<Aes192, U8, U11>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Ccm, 24, 12) => {
                let $c = ccm::Ccm::<Aes192, U12, U11>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Ccm, 24, 16) => {
                let $c = ccm::Ccm::<Aes192, U16, U11>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Ccm, 32, 8) => {
                let $c = ccm::Ccm::<Aes256, U8, U11>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Ccm, 32, 12) => {
                let $c = ccm::Ccm::<Aes256, U12, U11>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Ccm, 32, 16) => {
                let $c = ccm::Ccm::<Aes256, U16, U11>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Gcm, 16, 12) => {
                let $c = aes_gcm::AesGcm::<Aes128, U12, U12>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Gcm, 24, 12) => {
                let $c = aes_gcm::AesGcm::<Aes192, U12, U12>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Gcm, 24, 16) => {
                let $c = aes_gcm::AesGcm::<Aes192, U12, U16>::new_from_slice(key).map_err(bad)?;
                $body
            }
            (Mode::Gcm, 32, 12) => {
                let $c = aes_gcm::AesGcm::<Aes256, U12, U12>::new_from_slice(key).map_err(bad)?;
                $body
            }
            _ => {
                return Err(CryptoError::Unsupported(format!(
                    "{} with a {}-octet key",
                    $self.name,
                    key.len()
                )));
            }
        }
    }};
}

impl RcAeadSk {
    /// `key_material` is the AES key followed by the salt.
    pub(crate) fn new(
        mode: Mode,
        icv_len: usize,
        key_len: usize,
        name: &'static str,
        key_material: &[u8],
    ) -> Result<Self, CryptoError> {
        let bad_len = || CryptoError::KeyLength {
            algorithm: name.to_string(),
            got: key_material.len(),
            want: key_len.saturating_add(mode.salt_len()),
        };
        let (key, salt) = key_material.split_at_checked(key_len).ok_or_else(bad_len)?;
        if salt.len() != mode.salt_len() {
            return Err(bad_len());
        }
        let sk = Self {
            name,
            mode,
            icv_len,
            key: Zeroizing::new(key.to_vec()),
            salt: salt.to_vec(),
            next_iv: Some(0),
        };
        // Refuses a combination the macro does not know now, not at the
        // first message.
        with_cipher!(sk, |c| {
            let _ = &c;
        });
        Ok(sk)
    }

    fn nonce(&self, iv: &[u8]) -> Vec<u8> {
        let mut n = self.salt.clone();
        n.extend_from_slice(iv);
        n
    }
}

impl fmt::Debug for RcAeadSk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RcAeadSk({})", self.name)
    }
}

impl SkCipher for RcAeadSk {
    fn iv_len(&self) -> usize {
        IV_LEN
    }

    fn icv_len(&self) -> usize {
        self.icv_len
    }

    fn sealed_len(&self, plain_len: usize) -> usize {
        plain_len
            .saturating_add(1)
            .saturating_add(IV_LEN)
            .saturating_add(self.icv_len)
    }

    fn seal(&mut self, out: &mut Vec<u8>, plaintext: &[u8]) -> Result<(), CryptoError> {
        let counter = self.next_iv.ok_or(CryptoError::IvExhausted)?;
        let iv = counter.to_be_bytes();
        let nonce = self.nonce(&iv);
        let auth_len = out.len();
        let mut body = Zeroizing::new(Vec::with_capacity(plaintext.len().saturating_add(1)));
        body.extend_from_slice(plaintext);
        body.push(0); // Pad Length: no padding
        let aad = out.get(..auth_len).unwrap_or_default();
        let tag: Vec<u8> = with_cipher!(self, |c| {
            c.encrypt_in_place_detached(nonce.as_slice().into(), aad, &mut body)
                .map_err(|_| CryptoError::MalformedCiphertext("plaintext too long for AEAD"))?
                .to_vec()
        });
        self.next_iv = counter.checked_add(1);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&body);
        out.extend_from_slice(&tag);
        Ok(())
    }

    fn open(&self, authenticated: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (iv, rest) = body
            .split_at_checked(IV_LEN)
            .ok_or(CryptoError::MalformedCiphertext("shorter than the IV"))?;
        let ct_len = rest
            .len()
            .checked_sub(self.icv_len)
            .ok_or(CryptoError::MalformedCiphertext("shorter than IV + ICV"))?;
        let (ct, icv) = rest
            .split_at_checked(ct_len)
            .ok_or(CryptoError::MalformedCiphertext("shorter than IV + ICV"))?;
        if ct.is_empty() {
            return Err(CryptoError::MalformedCiphertext("no Pad Length octet"));
        }
        let nonce = self.nonce(iv);
        let mut plain = Zeroizing::new(ct.to_vec());
        with_cipher!(self, |c| {
            c.decrypt_in_place_detached(
                nonce.as_slice().into(),
                authenticated,
                &mut plain,
                icv.into(),
            )
            .map_err(|_| CryptoError::IntegrityCheckFailed)?
        });
        strip_padding(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ke::tests::h;

    const AAD: &[u8] = b"IKE header and SK payload header: 28 + 4 octets";

    /// Known answers computed with OpenSSL (Python's `cryptography`:
    /// AESCCM with an 11-octet nonce, AES-GCM with the tag cut to the
    /// ICV): SK_e = 00 01 02 .. (key, then salt), first IV (0), the
    /// plaintext `inner payloads` and its Pad Length octet.
    #[test]
    fn openssl_known_answers() {
        for (mode, key_len, icv, name, body) in [
            (
                Mode::Ccm,
                16,
                8,
                "AES_CCM_8_128",
                "0000000000000000213ad0f4b2e7f5c67466c3047e3c1ff3ffb2c83bfed406",
            ),
            (
                Mode::Ccm,
                24,
                12,
                "AES_CCM_12_192",
                "000000000000000028ef197d52f95351a2027a584db57c1c029cb4ee6d699926c4ba46",
            ),
            (
                Mode::Ccm,
                32,
                16,
                "AES_CCM_16_256",
                "000000000000000091ebaebfe2a61b1034e429b031fab6e16cdc0905b35f774f75814c4b74be58",
            ),
            (
                Mode::Gcm,
                16,
                12,
                "AES_GCM_12_128",
                "000000000000000008e81657394002c9bfeeb255815de8de171eab57ae45102ecc75df",
            ),
            (
                Mode::Gcm,
                24,
                16,
                "AES_GCM_16_192",
                "00000000000000008d5b02f8b11f3cb206f11f01348230e7647ef29bfa5a80f54e8cf066d0f02f",
            ),
            (
                Mode::Gcm,
                32,
                12,
                "AES_GCM_12_256",
                "0000000000000000f170432acc06ec40936c7f12bf38fb6b47dbb29435fde61c430e5a",
            ),
        ] {
            let km: Vec<u8> = (0..(key_len + mode.salt_len()) as u8).collect();
            let mut tx = RcAeadSk::new(mode, icv, key_len, name, &km).unwrap();
            let rx = RcAeadSk::new(mode, icv, key_len, name, &km).unwrap();
            let mut out = AAD.to_vec();
            tx.seal(&mut out, b"inner payloads").unwrap();
            assert_eq!(hex::encode(&out[AAD.len()..]), body, "{name}");
            assert_eq!(out.len() - AAD.len(), tx.sealed_len(14));
            assert_eq!(
                rx.open(AAD, &h(body)).unwrap().as_slice(),
                b"inner payloads"
            );
            // Any changed octet of AAD or body fails.
            let mut bad = h(body);
            for i in 0..bad.len() {
                bad[i] ^= 1;
                assert_eq!(
                    rx.open(AAD, &bad).unwrap_err(),
                    CryptoError::IntegrityCheckFailed
                );
                bad[i] ^= 1;
            }
            assert!(rx.open(&AAD[1..], &bad).is_err());
            // Short bodies are refused without a panic.
            for n in 0..(IV_LEN + icv + 1) {
                assert!(rx.open(AAD, &bad[..n.min(bad.len())]).is_err());
            }
        }
        // Wrong SK_e lengths and combinations nobody defines.
        assert!(RcAeadSk::new(Mode::Ccm, 8, 16, "x", &[0; 20]).is_err());
        assert!(RcAeadSk::new(Mode::Gcm, 8, 16, "x", &[0; 20]).is_err());
        assert!(RcAeadSk::new(Mode::Ccm, 10, 16, "x", &[0; 19]).is_err());
    }
}
