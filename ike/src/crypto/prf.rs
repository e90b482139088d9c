//! Pseudorandom functions (RFC 7296 3.3.2, Transform Type 2) and prf+
//! (RFC 7296 2.13).

use core::fmt;

use ring::hmac;

use super::mac::Mac;
use super::{CryptoError, Secret};
use crate::wire::codes::PrfId;

/// Most blocks prf+ may produce: the counter octet runs from 0x01 to 0xff.
pub const PRF_PLUS_MAX_BLOCKS: usize = 255;

/// A negotiated pseudorandom function.
pub trait Prf: Send + Sync + fmt::Debug {
    /// Its IANA ID.
    fn id(&self) -> PrfId;
    /// Length of one output block, in octets.
    fn output_len(&self) -> usize;
    /// The preferred key length, in octets: the length of SK_d, SK_pi and
    /// SK_pr (RFC 7296 2.14). For HMAC it is the hash output length.
    fn key_len(&self) -> usize;
    /// `prf(key, data[0] | data[1] | ...)`: the data is given in parts so
    /// that secrets need not be copied into one buffer first.
    fn compute(&self, key: &[u8], data: &[&[u8]]) -> Secret;
    /// Whether SKEYSEED takes its key as a fixed-length one (RFC 7296
    /// 2.14: half of it from the start of Ni, half from Nr): AES128-XCBC and
    /// AES128-CMAC, as strongSwan reads RFC 7296.
    fn fixed_key(&self) -> bool {
        false
    }
}

/// The MAC-based PRFs: HMAC-MD5 (1), HMAC-SHA1 (2), AES128-XCBC (4, RFC
/// 4434), HMAC-SHA2-256 (5), HMAC-SHA2-384 (6), HMAC-SHA2-512 (7) and
/// AES128-CMAC (8, RFC 4615). The AES ones take a key of any length
/// (padded or compressed to 128 bits, as those RFCs say) but are
/// [`Prf::fixed_key`] for SKEYSEED.
#[derive(Clone, Copy)]
pub struct HmacPrf {
    id: PrfId,
    mac: Mac,
}

impl HmacPrf {
    /// The PRF with IANA ID `id`, or `Unsupported`.
    pub fn new(id: PrfId) -> Result<Self, CryptoError> {
        let mac = match id {
            PrfId::HMAC_MD5 => Mac::HmacMd5,
            PrfId::HMAC_SHA1 => Mac::Hmac(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            PrfId::AES128_XCBC => Mac::AesXcbc,
            PrfId::HMAC_SHA2_256 => Mac::Hmac(hmac::HMAC_SHA256),
            PrfId::HMAC_SHA2_384 => Mac::Hmac(hmac::HMAC_SHA384),
            PrfId::HMAC_SHA2_512 => Mac::Hmac(hmac::HMAC_SHA512),
            PrfId::AES128_CMAC => Mac::AesCmac,
            other => return Err(CryptoError::Unsupported(format!("PRF {other}"))),
        };
        Ok(Self { id, mac })
    }
}

impl fmt::Debug for HmacPrf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacPrf({})", self.id)
    }
}

impl Prf for HmacPrf {
    fn id(&self) -> PrfId {
        self.id
    }

    fn output_len(&self) -> usize {
        self.mac.output_len()
    }

    fn key_len(&self) -> usize {
        self.output_len()
    }

    fn compute(&self, key: &[u8], data: &[&[u8]]) -> Secret {
        let key = self.mac.prf_key(key);
        // prf_key gives the AES MACs their 16 octets: never None.
        let out = self.mac.compute(&key, data).unwrap_or_default();
        Secret::from_slice(&out)
    }

    fn fixed_key(&self) -> bool {
        matches!(self.mac, Mac::AesXcbc | Mac::AesCmac)
    }
}

/// prf+ (RFC 7296 2.13): `T1 | T2 | ...` truncated to `len` octets, where
/// `T1 = prf(K, S | 0x01)` and `Tn = prf(K, Tn-1 | S | n)`. `seed` is `S`,
/// given in parts. More than 255 blocks is an error.
pub fn prf_plus(
    prf: &dyn Prf,
    key: &[u8],
    seed: &[&[u8]],
    len: usize,
) -> Result<Secret, CryptoError> {
    let block = prf.output_len();
    if block == 0 || len > block.saturating_mul(PRF_PLUS_MAX_BLOCKS) {
        return Err(CryptoError::PrfPlusTooLong(len));
    }
    let mut out = Vec::with_capacity(len.saturating_add(block));
    let mut prev = Secret::default();
    let mut counter: u8 = 1;
    while out.len() < len {
        let counter_octet = [counter];
        let mut parts: Vec<&[u8]> = Vec::with_capacity(seed.len().saturating_add(2));
        parts.push(prev.as_bytes());
        parts.extend_from_slice(seed);
        parts.push(&counter_octet);
        let t = prf.compute(key, &parts);
        let take = t.len().min(len.saturating_sub(out.len()));
        out.extend_from_slice(t.as_bytes().get(..take).unwrap_or_default());
        prev = t;
        // The length check above bounds the loop to 255 rounds.
        counter = counter.wrapping_add(1);
    }
    Ok(Secret::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(id: PrfId, key: &[u8], data: &[u8]) -> String {
        hex::encode(HmacPrf::new(id).unwrap().compute(key, &[data]).as_bytes())
    }

    // RFC 2202 section 3 (HMAC-SHA-1), test cases 1, 2, 3, 4, 6, 7.
    #[test]
    fn rfc2202_hmac_sha1() {
        let s = PrfId::HMAC_SHA1;
        assert_eq!(
            mac(s, &[0x0b; 20], b"Hi There"),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            mac(s, b"Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            mac(s, &[0xaa; 20], &[0xdd; 50]),
            "125d7342b9ac11cd91a39af48aa17b4f63f175d3"
        );
        let key4: Vec<u8> = (1..=25).collect();
        assert_eq!(
            mac(s, &key4, &[0xcd; 50]),
            "4c9007f4026250c6bc8414f9bf50c86c2d7235da"
        );
        assert_eq!(
            mac(
                s,
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
        assert_eq!(
            mac(
                s,
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
            ),
            "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"
        );
    }

    const TC6_DATA: &[u8] = b"Test Using Larger Than Block-Size Key - Hash Key First";
    const TC7_DATA: &[u8] = b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.";

    // RFC 4231 section 4, test cases 1, 2, 3, 4, 6, 7 (5 is a truncated output).
    #[test]
    fn rfc4231_hmac_sha2() {
        let key4: Vec<u8> = (1..=25).collect();
        let cases: [(&[u8], &[u8], [&str; 3]); 6] = [
            (
                &[0x0b; 20],
                b"Hi There",
                [
                    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
                    "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
                    "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
                ],
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                [
                    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                    "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
                    "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
                ],
            ),
            (
                &[0xaa; 20],
                &[0xdd; 50],
                [
                    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
                    "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
                    "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
                ],
            ),
            (
                &key4,
                &[0xcd; 50],
                [
                    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
                    "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
                    "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
                ],
            ),
            (
                &[0xaa; 131],
                TC6_DATA,
                [
                    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
                    "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
                    "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
                ],
            ),
            (
                &[0xaa; 131],
                TC7_DATA,
                [
                    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
                    "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
                    "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
                ],
            ),
        ];
        let ids = [
            PrfId::HMAC_SHA2_256,
            PrfId::HMAC_SHA2_384,
            PrfId::HMAC_SHA2_512,
        ];
        for (key, data, want) in cases {
            for (id, want) in ids.iter().zip(want) {
                assert_eq!(mac(*id, key, data), want, "{id}");
            }
        }
    }

    #[test]
    fn data_parts_are_concatenated() {
        let p = HmacPrf::new(PrfId::HMAC_SHA2_256).unwrap();
        let whole = p.compute(b"k", &[b"abcdef"]);
        let parts = p.compute(b"k", &[b"ab", b"", b"cdef"]);
        assert_eq!(whole.as_bytes(), parts.as_bytes());
    }

    #[test]
    fn lengths_and_unknown_ids() {
        for (id, len) in [
            (PrfId::HMAC_SHA1, 20),
            (PrfId::HMAC_SHA2_256, 32),
            (PrfId::HMAC_SHA2_384, 48),
            (PrfId::HMAC_SHA2_512, 64),
            (PrfId::HMAC_MD5, 16),
            (PrfId::AES128_XCBC, 16),
            (PrfId::AES128_CMAC, 16),
        ] {
            let p = HmacPrf::new(id).unwrap();
            assert_eq!((p.output_len(), p.key_len()), (len, len));
            assert_eq!(
                p.fixed_key(),
                matches!(id, PrfId::AES128_XCBC | PrfId::AES128_CMAC)
            );
        }
        // RFC 4434 section 5 through the PRF: an 18-octet key.
        let xcbc = HmacPrf::new(PrfId::AES128_XCBC).unwrap();
        let key = hex::decode("000102030405060708090a0b0c0d0e0fedcb").unwrap();
        let msg: Vec<u8> = (0..20).collect();
        assert_eq!(
            hex::encode(xcbc.compute(&key, &[&msg[..5], &msg[5..]]).as_bytes()),
            "8cd3c93ae598a9803006ffb67c40e9e4"
        );
        // RFC 2202 test case 2 through the PRF.
        let md5 = HmacPrf::new(PrfId::HMAC_MD5).unwrap();
        assert_eq!(
            hex::encode(
                md5.compute(b"Jefe", &[b"what do ya want for nothing?"])
                    .as_bytes()
            ),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        for id in [PrfId::HMAC_TIGER, PrfId::from(999)] {
            let err = HmacPrf::new(id).unwrap_err();
            assert!(matches!(&err, CryptoError::Unsupported(m) if m.contains(&id.to_string())));
        }
    }

    #[test]
    fn prf_plus_limit_is_255_blocks() {
        let p = HmacPrf::new(PrfId::HMAC_SHA2_256).unwrap();
        assert_eq!(
            prf_plus(&p, b"k", &[b"s"], 255 * 32).unwrap().len(),
            255 * 32
        );
        assert_eq!(
            prf_plus(&p, b"k", &[b"s"], 255 * 32 + 1).unwrap_err(),
            CryptoError::PrfPlusTooLong(255 * 32 + 1)
        );
        assert!(prf_plus(&p, b"k", &[b"s"], usize::MAX).is_err());
        assert!(prf_plus(&p, b"k", &[b"s"], 0).unwrap().is_empty());
    }

    #[test]
    fn prf_plus_first_blocks_by_hand() {
        // T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02).
        let p = HmacPrf::new(PrfId::HMAC_SHA1).unwrap();
        let t1 = p.compute(b"key", &[b"seed", &[1]]);
        let t2 = p.compute(b"key", &[t1.as_bytes(), b"seed", &[2]]);
        let out = prf_plus(&p, b"key", &[b"se", b"ed"], 30).unwrap();
        assert_eq!(&out.as_bytes()[..20], t1.as_bytes());
        assert_eq!(&out.as_bytes()[20..], &t2.as_bytes()[..10]);
    }
}
