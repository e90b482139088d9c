//! strongSwan's proposal keywords as one table, and the table of what iked
//! implements.
//!
//! The keyword table follows strongSwan's `proposal_keywords_static.txt`
//! (libstrongswan/crypto/proposal), which maps each keyword to a transform
//! type, an algorithm ID and a key length (0 = no Key Length attribute).
//! Algorithms that strongSwan allocates in the IKEv2 "private use" range
//! (IDs >= 1024) keep strongSwan's numbers so that two strongSwan-compatible
//! peers still agree on them.

use crate::wire::codes::{EncrId, EsnId, IntegId, KeId, PrfId, ProtocolId, TransformType};

/// One proposal keyword: `aes128` means ENCR AES_CBC with a 128-bit key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyword {
    /// The keyword as written in swanctl.conf, e.g. `aes256gcm16`.
    pub name: &'static str,
    /// ENCR, PRF, INTEG, KE or ESN (ADDKEn for `keN_` prefixed KE keywords).
    pub transform_type: TransformType,
    /// The transform ID within its type.
    pub id: u16,
    /// The Key Length attribute in bits, 0 when the transform carries none.
    pub key_bits: u16,
}

/// strongSwan's private-use encryption IDs (crypter.h).
pub mod private {
    /// ENCR_SERPENT_CBC in strongSwan's private-use range.
    pub const ENCR_SERPENT_CBC: u16 = 1026;
    /// ENCR_TWOFISH_CBC in strongSwan's private-use range.
    pub const ENCR_TWOFISH_CBC: u16 = 1027;
    /// AUTH_HMAC_SHA2_256_96: the pre-RFC 4868 96-bit truncation Linux knows.
    pub const AUTH_HMAC_SHA2_256_96: u16 = 1026;
    /// AUTH_CAMELLIA_XCBC_96 (draft-kanno-ipsecme-camellia-xcbc).
    pub const AUTH_CAMELLIA_XCBC_96: u16 = 1030;
    /// PRF_CAMELLIA128_XCBC (draft-kanno-ipsecme-camellia-xcbc).
    pub const PRF_CAMELLIA128_XCBC: u16 = 1028;
}

const E: TransformType = TransformType::ENCR;
const I: TransformType = TransformType::INTEG;
const P: TransformType = TransformType::PRF;
const K: TransformType = TransformType::KE;
const S: TransformType = TransformType::ESN;

const fn kw(name: &'static str, transform_type: TransformType, id: u16, key_bits: u16) -> Keyword {
    Keyword {
        name,
        transform_type,
        id,
        key_bits,
    }
}

use private::*;

const DES: u16 = EncrId::DES.0;
const TDES: u16 = EncrId::TRIPLE_DES.0;
const CBC: u16 = EncrId::AES_CBC.0;
const CTR: u16 = EncrId::AES_CTR.0;
const CCM8: u16 = EncrId::AES_CCM_8.0;
const CCM12: u16 = EncrId::AES_CCM_12.0;
const CCM16: u16 = EncrId::AES_CCM_16.0;
const GCM8: u16 = EncrId::AES_GCM_8.0;
const GCM12: u16 = EncrId::AES_GCM_12.0;
const GCM16: u16 = EncrId::AES_GCM_16.0;
const GMAC: u16 = EncrId::NULL_AUTH_AES_GMAC.0;
const CAM: u16 = EncrId::CAMELLIA_CBC.0;
const CAMCTR: u16 = EncrId::CAMELLIA_CTR.0;
const CAMCCM8: u16 = EncrId::CAMELLIA_CCM_8.0;
const CAMCCM12: u16 = EncrId::CAMELLIA_CCM_12.0;
const CAMCCM16: u16 = EncrId::CAMELLIA_CCM_16.0;

/// Every keyword strongSwan accepts in an IKEv2 proposal string, grouped as in
/// strongSwan's table. When several keywords name the same transform (e.g.
/// `aes128gcm16`, `aes128gcm128`, `aes128gcm`), the first is the canonical one
/// used by [`super::to_keyword_string`].
pub const KEYWORDS: &[Keyword] = &[
    // Encryption.
    kw("null", E, EncrId::NULL.0, 0),
    kw("des", E, DES, 0),
    kw("3des", E, TDES, 0),
    kw("aes128", E, CBC, 128),
    kw("aes", E, CBC, 128),
    kw("aes192", E, CBC, 192),
    kw("aes256", E, CBC, 256),
    kw("aes128ctr", E, CTR, 128),
    kw("aes192ctr", E, CTR, 192),
    kw("aes256ctr", E, CTR, 256),
    kw("aes128ccm8", E, CCM8, 128),
    kw("aes128ccm64", E, CCM8, 128),
    kw("aes128ccm12", E, CCM12, 128),
    kw("aes128ccm96", E, CCM12, 128),
    kw("aes128ccm16", E, CCM16, 128),
    kw("aes128ccm128", E, CCM16, 128),
    kw("aes128ccm", E, CCM16, 128),
    kw("aes192ccm8", E, CCM8, 192),
    kw("aes192ccm64", E, CCM8, 192),
    kw("aes192ccm12", E, CCM12, 192),
    kw("aes192ccm96", E, CCM12, 192),
    kw("aes192ccm16", E, CCM16, 192),
    kw("aes192ccm128", E, CCM16, 192),
    kw("aes192ccm", E, CCM16, 192),
    kw("aes256ccm8", E, CCM8, 256),
    kw("aes256ccm64", E, CCM8, 256),
    kw("aes256ccm12", E, CCM12, 256),
    kw("aes256ccm96", E, CCM12, 256),
    kw("aes256ccm16", E, CCM16, 256),
    kw("aes256ccm128", E, CCM16, 256),
    kw("aes256ccm", E, CCM16, 256),
    kw("aes128gcm8", E, GCM8, 128),
    kw("aes128gcm64", E, GCM8, 128),
    kw("aes128gcm12", E, GCM12, 128),
    kw("aes128gcm96", E, GCM12, 128),
    kw("aes128gcm16", E, GCM16, 128),
    kw("aes128gcm128", E, GCM16, 128),
    kw("aes128gcm", E, GCM16, 128),
    kw("aes192gcm8", E, GCM8, 192),
    kw("aes192gcm64", E, GCM8, 192),
    kw("aes192gcm12", E, GCM12, 192),
    kw("aes192gcm96", E, GCM12, 192),
    kw("aes192gcm16", E, GCM16, 192),
    kw("aes192gcm128", E, GCM16, 192),
    kw("aes192gcm", E, GCM16, 192),
    kw("aes256gcm8", E, GCM8, 256),
    kw("aes256gcm64", E, GCM8, 256),
    kw("aes256gcm12", E, GCM12, 256),
    kw("aes256gcm96", E, GCM12, 256),
    kw("aes256gcm16", E, GCM16, 256),
    kw("aes256gcm128", E, GCM16, 256),
    kw("aes256gcm", E, GCM16, 256),
    kw("aes128gmac", E, GMAC, 128),
    kw("aes192gmac", E, GMAC, 192),
    kw("aes256gmac", E, GMAC, 256),
    kw("chacha20poly1305", E, EncrId::CHACHA20_POLY1305.0, 0),
    kw(
        "chacha20poly1305compat",
        E,
        EncrId::CHACHA20_POLY1305.0,
        256,
    ),
    kw("blowfish128", E, EncrId::BLOWFISH.0, 128),
    kw("blowfish", E, EncrId::BLOWFISH.0, 128),
    kw("blowfish192", E, EncrId::BLOWFISH.0, 192),
    kw("blowfish256", E, EncrId::BLOWFISH.0, 256),
    kw("camellia128", E, CAM, 128),
    kw("camellia", E, CAM, 128),
    kw("camellia192", E, CAM, 192),
    kw("camellia256", E, CAM, 256),
    kw("camellia128ctr", E, CAMCTR, 128),
    kw("camellia192ctr", E, CAMCTR, 192),
    kw("camellia256ctr", E, CAMCTR, 256),
    kw("camellia128ccm8", E, CAMCCM8, 128),
    kw("camellia128ccm64", E, CAMCCM8, 128),
    kw("camellia128ccm12", E, CAMCCM12, 128),
    kw("camellia128ccm96", E, CAMCCM12, 128),
    kw("camellia128ccm16", E, CAMCCM16, 128),
    kw("camellia128ccm128", E, CAMCCM16, 128),
    kw("camellia192ccm8", E, CAMCCM8, 192),
    kw("camellia192ccm64", E, CAMCCM8, 192),
    kw("camellia192ccm12", E, CAMCCM12, 192),
    kw("camellia192ccm96", E, CAMCCM12, 192),
    kw("camellia192ccm16", E, CAMCCM16, 192),
    kw("camellia192ccm128", E, CAMCCM16, 192),
    kw("camellia256ccm8", E, CAMCCM8, 256),
    kw("camellia256ccm64", E, CAMCCM8, 256),
    kw("camellia256ccm12", E, CAMCCM12, 256),
    kw("camellia256ccm96", E, CAMCCM12, 256),
    kw("camellia256ccm16", E, CAMCCM16, 256),
    kw("camellia256ccm128", E, CAMCCM16, 256),
    kw("cast128", E, EncrId::CAST.0, 128),
    kw("serpent128", E, ENCR_SERPENT_CBC, 128),
    kw("serpent", E, ENCR_SERPENT_CBC, 128),
    kw("serpent192", E, ENCR_SERPENT_CBC, 192),
    kw("serpent256", E, ENCR_SERPENT_CBC, 256),
    kw("twofish128", E, ENCR_TWOFISH_CBC, 128),
    kw("twofish", E, ENCR_TWOFISH_CBC, 128),
    kw("twofish192", E, ENCR_TWOFISH_CBC, 192),
    kw("twofish256", E, ENCR_TWOFISH_CBC, 256),
    // Integrity.
    kw("sha1", I, IntegId::HMAC_SHA1_96.0, 0),
    kw("sha", I, IntegId::HMAC_SHA1_96.0, 0),
    kw("sha1_160", I, IntegId::HMAC_SHA1_160.0, 0),
    kw("sha256", I, IntegId::HMAC_SHA2_256_128.0, 0),
    kw("sha2_256", I, IntegId::HMAC_SHA2_256_128.0, 0),
    kw("sha256_96", I, AUTH_HMAC_SHA2_256_96, 0),
    kw("sha2_256_96", I, AUTH_HMAC_SHA2_256_96, 0),
    kw("sha384", I, IntegId::HMAC_SHA2_384_192.0, 0),
    kw("sha2_384", I, IntegId::HMAC_SHA2_384_192.0, 0),
    kw("sha512", I, IntegId::HMAC_SHA2_512_256.0, 0),
    kw("sha2_512", I, IntegId::HMAC_SHA2_512_256.0, 0),
    kw("md5", I, IntegId::HMAC_MD5_96.0, 0),
    kw("md5_128", I, IntegId::HMAC_MD5_128.0, 0),
    kw("aesxcbc", I, IntegId::AES_XCBC_96.0, 0),
    kw("camelliaxcbc", I, AUTH_CAMELLIA_XCBC_96, 0),
    kw("aescmac", I, IntegId::AES_CMAC_96.0, 0),
    // Pseudorandom functions.
    kw("prfsha1", P, PrfId::HMAC_SHA1.0, 0),
    kw("prfsha256", P, PrfId::HMAC_SHA2_256.0, 0),
    kw("prfsha384", P, PrfId::HMAC_SHA2_384.0, 0),
    kw("prfsha512", P, PrfId::HMAC_SHA2_512.0, 0),
    kw("prfmd5", P, PrfId::HMAC_MD5.0, 0),
    kw("prfaesxcbc", P, PrfId::AES128_XCBC.0, 0),
    kw("prfcamelliaxcbc", P, PRF_CAMELLIA128_XCBC, 0),
    kw("prfaescmac", P, PrfId::AES128_CMAC.0, 0),
    // Key exchange methods.
    kw("none", K, KeId::NONE.0, 0),
    kw("modpnone", K, KeId::NONE.0, 0),
    kw("modp768", K, KeId::MODP_768.0, 0),
    kw("modp1024", K, KeId::MODP_1024.0, 0),
    kw("modp1536", K, KeId::MODP_1536.0, 0),
    kw("modp2048", K, KeId::MODP_2048.0, 0),
    kw("modp3072", K, KeId::MODP_3072.0, 0),
    kw("modp4096", K, KeId::MODP_4096.0, 0),
    kw("modp6144", K, KeId::MODP_6144.0, 0),
    kw("modp8192", K, KeId::MODP_8192.0, 0),
    kw("ecp192", K, KeId::ECP_192.0, 0),
    kw("ecp224", K, KeId::ECP_224.0, 0),
    kw("ecp256", K, KeId::ECP_256.0, 0),
    kw("ecp384", K, KeId::ECP_384.0, 0),
    kw("ecp521", K, KeId::ECP_521.0, 0),
    kw("modp1024s160", K, KeId::MODP_1024_160.0, 0),
    kw("modp2048s224", K, KeId::MODP_2048_224.0, 0),
    kw("modp2048s256", K, KeId::MODP_2048_256.0, 0),
    kw("ecp224bp", K, KeId::BRAINPOOL_P224R1.0, 0),
    kw("ecp256bp", K, KeId::BRAINPOOL_P256R1.0, 0),
    kw("ecp384bp", K, KeId::BRAINPOOL_P384R1.0, 0),
    kw("ecp512bp", K, KeId::BRAINPOOL_P512R1.0, 0),
    kw("curve25519", K, KeId::CURVE25519.0, 0),
    kw("x25519", K, KeId::CURVE25519.0, 0),
    kw("curve448", K, KeId::CURVE448.0, 0),
    kw("x448", K, KeId::CURVE448.0, 0),
    kw("mlkem512", K, KeId::ML_KEM_512.0, 0),
    kw("mlkem768", K, KeId::ML_KEM_768.0, 0),
    kw("mlkem1024", K, KeId::ML_KEM_1024.0, 0),
    // Extended sequence numbers.
    kw("noesn", S, EsnId::NO_ESN.0, 0),
    kw("esn", S, EsnId::ESN.0, 0),
];

/// Looks a keyword up; `keN_` (N = 1..7) before a KE keyword names the N-th
/// additional key exchange (RFC 9370), as strongSwan 6 writes it.
pub fn lookup(token: &str) -> Option<Keyword> {
    if let Some(rest) = token.strip_prefix("ke") {
        let mut chars = rest.chars();
        if let (Some(d @ '1'..='7'), Some('_')) = (chars.next(), chars.next()) {
            let name = chars.as_str();
            let n = (d as u8).saturating_sub(b'0');
            return KEYWORDS
                .iter()
                .find(|k| k.transform_type == K && k.name == name)
                .map(|k| Keyword {
                    transform_type: TransformType(
                        TransformType::ADDKE1.0.saturating_add(n).saturating_sub(1),
                    ),
                    ..*k
                });
        }
    }
    KEYWORDS.iter().find(|k| k.name == token).copied()
}

/// One algorithm iked implements: transform type, ID and key length (0 = none).
pub type Implemented = (TransformType, u16, u16);

/// What iked's kernel bridge installs for ESP and AH (the daemon's
/// `xfrm_plan::transforms` maps each to its Linux XFRM name): encryption
/// for ESP, integrity for both. Key exchange methods (PFS) come from the
/// crypto provider as for IKE.
pub const KERNEL_IMPLEMENTED: &[Implemented] = &[
    (E, EncrId::NULL.0, 0),
    (E, TDES, 0),
    (E, CBC, 128),
    (E, CBC, 192),
    (E, CBC, 256),
    (E, CTR, 128),
    (E, CTR, 192),
    (E, CTR, 256),
    (E, CCM8, 128),
    (E, CCM8, 192),
    (E, CCM8, 256),
    (E, CCM12, 128),
    (E, CCM12, 192),
    (E, CCM12, 256),
    (E, CCM16, 128),
    (E, CCM16, 192),
    (E, CCM16, 256),
    (E, GCM8, 128),
    (E, GCM8, 192),
    (E, GCM8, 256),
    (E, GCM12, 128),
    (E, GCM12, 192),
    (E, GCM12, 256),
    (E, GCM16, 128),
    (E, GCM16, 192),
    (E, GCM16, 256),
    (E, GMAC, 128),
    (E, GMAC, 192),
    (E, GMAC, 256),
    (E, EncrId::CHACHA20_POLY1305.0, 0),
    (I, IntegId::HMAC_MD5_96.0, 0),
    (I, IntegId::HMAC_MD5_128.0, 0),
    (I, IntegId::HMAC_SHA1_96.0, 0),
    (I, IntegId::HMAC_SHA1_160.0, 0),
    (I, AUTH_HMAC_SHA2_256_96, 0),
    (I, IntegId::HMAC_SHA2_256_128.0, 0),
    (I, IntegId::HMAC_SHA2_384_192.0, 0),
    (I, IntegId::HMAC_SHA2_512_256.0, 0),
    (I, IntegId::AES_XCBC_96.0, 0),
    (I, IntegId::AES_CMAC_96.0, 0),
];

/// Whether iked implements this transform (type, ID and key length) in a
/// proposal of `protocol`: for IKE what the crypto provider implements
/// ([`crate::crypto::provider::ALGORITHMS`]); for ESP and AH the kernel
/// bridge's [`KERNEL_IMPLEMENTED`] (encryption only for ESP) with the
/// provider's key exchange methods (and `none`, no PFS), and both ESNs.
pub fn is_implemented(
    protocol: ProtocolId,
    transform_type: TransformType,
    id: u16,
    key_bits: Option<u16>,
) -> bool {
    let algs = &crate::crypto::provider::ALGORITHMS;
    let ks = key_bits.unwrap_or(0);
    let is_ke = transform_type == K
        || (TransformType::ADDKE1.0..=TransformType::ADDKE7.0).contains(&transform_type.0);
    match protocol {
        _ if is_ke => {
            (protocol != ProtocolId::IKE && id == KeId::NONE.0 && ks == 0)
                || (ks == 0 && algs.ke.contains(&KeId(id)))
        }
        ProtocolId::IKE => match transform_type {
            E => algs
                .encr
                .contains(&(EncrId(id), key_bits.filter(|&k| k != 0))),
            I => ks == 0 && algs.integ.contains(&IntegId(id)),
            P => ks == 0 && algs.prf.contains(&PrfId(id)),
            _ => false,
        },
        ProtocolId::ESP | ProtocolId::AH => match transform_type {
            S => ks == 0 && (id == EsnId::NO_ESN.0 || id == EsnId::ESN.0),
            E if protocol == ProtocolId::AH => false,
            _ => KERNEL_IMPLEMENTED
                .iter()
                .any(|&(t, i, k)| t == transform_type && i == id && k == ks),
        },
        _ => false,
    }
}

/// Encryption algorithms that are combined-mode (AEAD): they carry their own
/// integrity protection, so a proposal with them has no integrity algorithm.
/// strongSwan's `encryption_algorithm_is_aead()`.
pub fn is_aead(encr: u16) -> bool {
    matches!(
        EncrId(encr),
        EncrId::AES_CCM_8
            | EncrId::AES_CCM_12
            | EncrId::AES_CCM_16
            | EncrId::AES_GCM_8
            | EncrId::AES_GCM_12
            | EncrId::AES_GCM_16
            | EncrId::NULL_AUTH_AES_GMAC
            | EncrId::CAMELLIA_CCM_8
            | EncrId::CAMELLIA_CCM_12
            | EncrId::CAMELLIA_CCM_16
            | EncrId::CHACHA20_POLY1305
    )
}

/// For IKE proposals without an explicit PRF: the PRF that goes with each
/// integrity algorithm (strongSwan's `integ_prf_map` in proposal.c).
pub const INTEG_TO_PRF: &[(u16, u16)] = &[
    (IntegId::HMAC_SHA1_96.0, PrfId::HMAC_SHA1.0),
    (IntegId::HMAC_SHA1_160.0, PrfId::HMAC_SHA1.0),
    (IntegId::HMAC_SHA2_256_128.0, PrfId::HMAC_SHA2_256.0),
    (IntegId::HMAC_SHA2_384_192.0, PrfId::HMAC_SHA2_384.0),
    (IntegId::HMAC_SHA2_512_256.0, PrfId::HMAC_SHA2_512.0),
    (IntegId::HMAC_MD5_96.0, PrfId::HMAC_MD5.0),
    (IntegId::HMAC_MD5_128.0, PrfId::HMAC_MD5.0),
    (IntegId::AES_XCBC_96.0, PrfId::AES128_XCBC.0),
    (AUTH_CAMELLIA_XCBC_96, PRF_CAMELLIA128_XCBC),
    (IntegId::AES_CMAC_96.0, PrfId::AES128_CMAC.0),
];

/// The name strongSwan prints for a transform in logs ("AES_CBC",
/// "HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256", "CURVE_25519", "NO_EXT_SEQ").
/// `None` for IDs strongSwan has no name for.
pub fn strongswan_name(transform_type: TransformType, id: u16) -> Option<&'static str> {
    let t = if transform_type.0 >= TransformType::ADDKE1.0
        && transform_type.0 <= TransformType::ADDKE7.0
    {
        K
    } else {
        transform_type
    };
    let n = match (t, id) {
        (E, 1) => "DES_IV64",
        (E, 2) => "DES_CBC",
        (E, 3) => "3DES_CBC",
        (E, 4) => "RC5_CBC",
        (E, 5) => "IDEA_CBC",
        (E, 6) => "CAST_CBC",
        (E, 7) => "BLOWFISH_CBC",
        (E, 8) => "3IDEA",
        (E, 9) => "DES_IV32",
        (E, 11) => "NULL",
        (E, 12) => "AES_CBC",
        (E, 13) => "AES_CTR",
        (E, 14) => "AES_CCM_8",
        (E, 15) => "AES_CCM_12",
        (E, 16) => "AES_CCM_16",
        (E, 18) => "AES_GCM_8",
        (E, 19) => "AES_GCM_12",
        (E, 20) => "AES_GCM_16",
        (E, 21) => "NULL_AES_GMAC",
        (E, 23) => "CAMELLIA_CBC",
        (E, 24) => "CAMELLIA_CTR",
        (E, 25) => "CAMELLIA_CCM_8",
        (E, 26) => "CAMELLIA_CCM_12",
        (E, 27) => "CAMELLIA_CCM_16",
        (E, 28) => "CHACHA20_POLY1305",
        (E, ENCR_SERPENT_CBC) => "SERPENT_CBC",
        (E, ENCR_TWOFISH_CBC) => "TWOFISH_CBC",
        (I, 0) => "NONE",
        (I, 1) => "HMAC_MD5_96",
        (I, 2) => "HMAC_SHA1_96",
        (I, 3) => "DES_MAC",
        (I, 4) => "KPDK_MD5",
        (I, 5) => "AES_XCBC_96",
        (I, 6) => "HMAC_MD5_128",
        (I, 7) => "HMAC_SHA1_160",
        (I, 8) => "AES_CMAC_96",
        (I, 9) => "AES_128_GMAC",
        (I, 10) => "AES_192_GMAC",
        (I, 11) => "AES_256_GMAC",
        (I, 12) => "HMAC_SHA2_256_128",
        (I, 13) => "HMAC_SHA2_384_192",
        (I, 14) => "HMAC_SHA2_512_256",
        (I, AUTH_HMAC_SHA2_256_96) => "HMAC_SHA2_256_96",
        (I, AUTH_CAMELLIA_XCBC_96) => "CAMELLIA_XCBC_96",
        (P, 1) => "PRF_HMAC_MD5",
        (P, 2) => "PRF_HMAC_SHA1",
        (P, 3) => "PRF_HMAC_TIGER",
        (P, 4) => "PRF_AES128_XCBC",
        (P, 5) => "PRF_HMAC_SHA2_256",
        (P, 6) => "PRF_HMAC_SHA2_384",
        (P, 7) => "PRF_HMAC_SHA2_512",
        (P, 8) => "PRF_AES128_CMAC",
        (P, PRF_CAMELLIA128_XCBC) => "PRF_CAMELLIA128_XCBC",
        (K, 0) => "MODP_NONE",
        (K, 1) => "MODP_768",
        (K, 2) => "MODP_1024",
        (K, 5) => "MODP_1536",
        (K, 14) => "MODP_2048",
        (K, 15) => "MODP_3072",
        (K, 16) => "MODP_4096",
        (K, 17) => "MODP_6144",
        (K, 18) => "MODP_8192",
        (K, 19) => "ECP_256",
        (K, 20) => "ECP_384",
        (K, 21) => "ECP_521",
        (K, 22) => "MODP_1024_160",
        (K, 23) => "MODP_2048_224",
        (K, 24) => "MODP_2048_256",
        (K, 25) => "ECP_192",
        (K, 26) => "ECP_224",
        (K, 27) => "ECP_224_BP",
        (K, 28) => "ECP_256_BP",
        (K, 29) => "ECP_384_BP",
        (K, 30) => "ECP_512_BP",
        (K, 31) => "CURVE_25519",
        (K, 32) => "CURVE_448",
        (K, 35) => "ML_KEM_512",
        (K, 36) => "ML_KEM_768",
        (K, 37) => "ML_KEM_1024",
        (S, 0) => "NO_EXT_SEQ",
        (S, 1) => "EXT_SEQ",
        _ => return None,
    };
    Some(n)
}
