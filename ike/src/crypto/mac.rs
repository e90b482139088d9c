//! The MACs behind IKE's integrity algorithms and PRFs: HMAC-SHA1/2 on
//! ring; HMAC-MD5 (RFC 2104, RFC 2403), AES-XCBC-MAC (RFC 3566; as a PRF,
//! RFC 4434) and AES-CMAC (RFC 4493, RFC 4494; as a PRF, RFC 4615) on
//! RustCrypto's md-5, hmac, aes and cmac.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use ring::hmac as ring_hmac;
use zeroize::Zeroizing;

/// AES's block and AES-XCBC/CMAC's key and output length.
const AES_BLOCK: usize = 16;

/// One MAC algorithm.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mac {
    /// HMAC with a SHA-1 or SHA-2 hash (ring).
    Hmac(ring_hmac::Algorithm),
    /// HMAC-MD5.
    HmacMd5,
    /// AES-XCBC-MAC with a 128-bit key.
    AesXcbc,
    /// AES-CMAC with a 128-bit key.
    AesCmac,
}

impl Mac {
    /// Length of the untruncated output.
    pub(crate) fn output_len(self) -> usize {
        match self {
            Mac::Hmac(a) => a.digest_algorithm().output_len(),
            Mac::HmacMd5 | Mac::AesXcbc | Mac::AesCmac => 16,
        }
    }

    /// Whether the key must be exactly 16 octets (the AES MACs; a PRF
    /// adapts other lengths first, [`Mac::prf_key`]).
    fn fixed_key(self) -> bool {
        matches!(self, Mac::AesXcbc | Mac::AesCmac)
    }

    /// The MAC of `parts` concatenated, untruncated; `None` only for an AES
    /// MAC given a key that is not 16 octets.
    pub(crate) fn compute(self, key: &[u8], parts: &[&[u8]]) -> Option<Zeroizing<Vec<u8>>> {
        match self {
            Mac::Hmac(alg) => {
                let k = ring_hmac::Key::new(alg, key);
                let mut ctx = ring_hmac::Context::with_key(&k);
                for p in parts {
                    ctx.update(p);
                }
                Some(Zeroizing::new(ctx.sign().as_ref().to_vec()))
            }
            Mac::HmacMd5 => {
                use hmac::Mac as _;
                let mut m = <hmac::Hmac<md5::Md5> as hmac::Mac>::new_from_slice(key).ok()?;
                for p in parts {
                    m.update(p);
                }
                Some(Zeroizing::new(m.finalize().into_bytes().to_vec()))
            }
            Mac::AesXcbc => {
                let key: &[u8; AES_BLOCK] = key.try_into().ok()?;
                Some(Zeroizing::new(xcbc(key, &concat(parts)).to_vec()))
            }
            Mac::AesCmac => {
                use cmac::Mac as _;
                let key: &[u8; AES_BLOCK] = key.try_into().ok()?;
                let mut m = <cmac::Cmac<Aes128> as KeyInit>::new(key.into());
                for p in parts {
                    m.update(p);
                }
                Some(Zeroizing::new(m.finalize().into_bytes().to_vec()))
            }
        }
    }

    /// The key a PRF uses: a 16-octet key as it is; for AES-XCBC (RFC 4434
    /// section 2) a shorter key is padded with zeros; a longer one (and
    /// for AES-CMAC, RFC 4615 section 3, any other length) is replaced by
    /// its MAC under the all-zero key. HMAC takes any length as it is.
    pub(crate) fn prf_key(self, key: &[u8]) -> Zeroizing<Vec<u8>> {
        if !self.fixed_key() || key.len() == AES_BLOCK {
            return Zeroizing::new(key.to_vec());
        }
        if key.len() < AES_BLOCK && matches!(self, Mac::AesXcbc) {
            let mut k = Zeroizing::new(vec![0u8; AES_BLOCK]);
            for (d, s) in k.iter_mut().zip(key) {
                *d = *s;
            }
            return k;
        }
        self.compute(&[0u8; AES_BLOCK], &[key])
            .unwrap_or_else(|| Zeroizing::new(vec![0u8; AES_BLOCK]))
    }
}

fn concat(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let len = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    let mut v = Zeroizing::new(Vec::with_capacity(len));
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

fn xor(a: &mut [u8; AES_BLOCK], b: &[u8]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// AES-XCBC-MAC-128 (RFC 3566 section 4): K1, K2, K3 are the key's AES
/// encryptions of 0x01.., 0x02.., 0x03..; CBC-MAC under K1 with the last
/// block XORed with K2 when whole, or padded with 0x80 00.. and XORed with
/// K3 (the empty message is one padded block).
fn xcbc(key: &[u8; AES_BLOCK], msg: &[u8]) -> [u8; AES_BLOCK] {
    let k = Aes128::new(key.into());
    let derive = |c: u8| {
        let mut b = [c; AES_BLOCK];
        k.encrypt_block((&mut b).into());
        Zeroizing::new(b)
    };
    let k1 = Aes128::new((&*derive(1)).into());
    let (k2, k3) = (derive(2), derive(3));
    // The last block (whole or partial) is always kept back.
    let last_start = msg
        .len()
        .saturating_sub(1)
        .checked_div(AES_BLOCK)
        .unwrap_or(0)
        .saturating_mul(AES_BLOCK);
    let (head, last) = msg.split_at_checked(last_start).unwrap_or((&[], msg));
    let mut e = [0u8; AES_BLOCK];
    for block in head.chunks(AES_BLOCK) {
        xor(&mut e, block);
        k1.encrypt_block((&mut e).into());
    }
    let mut m = [0u8; AES_BLOCK];
    for (d, s) in m.iter_mut().zip(last) {
        *d = *s;
    }
    if last.len() == AES_BLOCK {
        xor(&mut m, &*k2);
    } else {
        if let Some(p) = m.get_mut(last.len()) {
            *p = 0x80;
        }
        xor(&mut m, &*k3);
    }
    xor(&mut e, &m);
    k1.encrypt_block((&mut e).into());
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ke::tests::h;

    fn mac(m: Mac, key: &str, data: &[u8]) -> String {
        hex::encode(&*m.compute(&h(key), &[data]).unwrap())
    }

    fn count(n: u8) -> Vec<u8> {
        (0..n).collect()
    }

    const K0F: &str = "000102030405060708090a0b0c0d0e0f";

    /// RFC 3566 section 4.6, test cases 1 to 7.
    #[test]
    fn rfc3566_aes_xcbc_mac() {
        for (data, out) in [
            (vec![], "75f0251d528ac01c4573dfd584d79f29"),
            (count(3), "5b376580ae2f19afe7219ceef172756f"),
            (count(16), "d2a246fa349b68a79998a4394ff7a263"),
            (count(20), "47f51b4564966215b8985c63055ed308"),
            (count(32), "f54f0ec8d2b9f3d36807734bd5283fd4"),
            (count(34), "becbb3bccdb518a30677d5481fb6b4d8"),
            (vec![0; 1000], "f0dafee895db30253761103b5d84528f"),
        ] {
            assert_eq!(mac(Mac::AesXcbc, K0F, &data), out, "{} octets", data.len());
        }
        // Parts are concatenated.
        let whole = count(34);
        let (a, b) = whole.split_at(7);
        assert_eq!(
            hex::encode(&*Mac::AesXcbc.compute(&h(K0F), &[a, b]).unwrap()),
            "becbb3bccdb518a30677d5481fb6b4d8"
        );
        // A key that is not 128 bits is no AES-XCBC key.
        assert!(Mac::AesXcbc.compute(&[0; 15], &[b"x"]).is_none());
    }

    /// RFC 4434 section 5: PRF-AES128-XCBC with 10, 16 and 18-octet keys.
    #[test]
    fn rfc4434_prf_aes128_xcbc() {
        let msg = count(20);
        for (key, out) in [
            (
                "000102030405060708090a0b0c0d0e0fedcb",
                "8cd3c93ae598a9803006ffb67c40e9e4",
            ),
            (K0F, "47f51b4564966215b8985c63055ed308"),
            ("00010203040506070809", "0fa087af7d866e7653434e602fdde835"),
        ] {
            let k = Mac::AesXcbc.prf_key(&h(key));
            assert_eq!(k.len(), 16);
            assert_eq!(
                hex::encode(&*Mac::AesXcbc.compute(&k, &[&msg]).unwrap()),
                out
            );
        }
    }

    const K2B: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const M64: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51
                       30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

    /// RFC 4493 section 4, examples 1 to 4.
    #[test]
    fn rfc4493_aes_cmac() {
        let m = h(M64);
        for (len, out) in [
            (0, "bb1d6929e95937287fa37d129b756746"),
            (16, "070a16b46b4d4144f79bdd9dd04a287c"),
            (40, "dfa66747de9ae63030ca32611497c827"),
            (64, "51f0bebf7e3b9d92fc49741779363cfe"),
        ] {
            assert_eq!(mac(Mac::AesCmac, K2B, &m[..len]), out, "{len} octets");
        }
    }

    /// RFC 4615 section 4: PRF-AES-CMAC-128 with 18, 16 and 10-octet keys.
    #[test]
    fn rfc4615_prf_aes_cmac() {
        let msg = count(20);
        for (key, out) in [
            (
                "000102030405060708090a0b0c0d0e0fedcb",
                "84a348a4a45d235babfffc0d2b4da09a",
            ),
            (K0F, "980ae87b5f4c9c5214f5b6a8455e4c2d"),
            ("00010203040506070809", "290d9e112edb09ee141fcf64c0b72f3d"),
        ] {
            let k = Mac::AesCmac.prf_key(&h(key));
            assert_eq!(
                hex::encode(&*Mac::AesCmac.compute(&k, &[&msg]).unwrap()),
                out
            );
        }
    }

    /// RFC 2202 section 2 (HMAC-MD5), test cases 1, 2, 3, 6 and 7.
    #[test]
    fn rfc2202_hmac_md5() {
        let aa80 = "aa".repeat(80);
        for (key, data, out) in [
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                b"Hi There".to_vec(),
                "9294727a3638bb1c13f48ef8158bfc9d",
            ),
            (
                "4a656665",
                b"what do ya want for nothing?".to_vec(),
                "750c783e6ab0b503eaa86e310a5db738",
            ),
            (
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                vec![0xdd; 50],
                "56be34521d144c88dbb8c733f0e8b3f6",
            ),
            (
                &aa80,
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
            ),
            (
                &aa80,
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
                    .to_vec(),
                "6f630fad67cda0ee1fb1f562db3aa53e",
            ),
        ] {
            assert_eq!(mac(Mac::HmacMd5, key, &data), out);
        }
        // An HMAC takes its key as it is, whatever its length.
        assert_eq!(&*Mac::HmacMd5.prf_key(b"Jefe"), b"Jefe");
    }
}
