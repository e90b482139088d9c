//! Signature schemes for IKE_AUTH and X.509: RFC 7427 digital-signature
//! AUTH data (method 14), the classic methods of RFC 7296 and RFC 4754
//! (RSA 1, ECDSA 9/10/11), and AlgorithmIdentifiers.

use std::fmt;

use super::PkiError;
use super::key::{KeyType, PrivateKey, PublicKey};
use crate::wire::codes::AuthMethod;

/// A hash algorithm of the IANA "IKEv2 Hash Algorithms" registry (RFC 7427
/// SIGNATURE_HASH_ALGORITHMS, RFC 8420 Identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA1 (1).
    Sha1,
    /// SHA2-256 (2).
    Sha256,
    /// SHA2-384 (3).
    Sha384,
    /// SHA2-512 (4).
    Sha512,
    /// Identity (5): the message is signed as it is (Ed25519, RFC 8420).
    Identity,
}

impl HashAlg {
    /// The algorithm of an IANA number, `None` for one not listed above.
    pub fn from_iana(v: u16) -> Option<Self> {
        match v {
            1 => Some(Self::Sha1),
            2 => Some(Self::Sha256),
            3 => Some(Self::Sha384),
            4 => Some(Self::Sha512),
            5 => Some(Self::Identity),
            _ => None,
        }
    }

    /// The IANA number.
    pub fn iana(self) -> u16 {
        match self {
            Self::Sha1 => 1,
            Self::Sha256 => 2,
            Self::Sha384 => 3,
            Self::Sha512 => 4,
            Self::Identity => 5,
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
            Self::Identity => "Identity",
        })
    }
}

/// A signature scheme: the key's algorithm and the hash it signs with.
/// ECDSA signatures are DER-encoded `ECDSA-Sig-Value`s (RFC 7427, X.509);
/// the classic methods' fixed-size `r|s` is handled by [`sign_classic`]
/// and [`verify_classic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigScheme {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 8.2).
    RsaPkcs1(HashAlg),
    /// RSASSA-PSS (RFC 8017 8.1), MGF1 with the same hash, salt as long as
    /// the hash (as strongSwan).
    RsaPss(HashAlg),
    /// ECDSA on the key's curve with any of SHA-1/256/384/512.
    Ecdsa(HashAlg),
    /// Ed25519 (RFC 8032): the message itself is signed.
    Ed25519,
}

impl fmt::Display for SigScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RsaPkcs1(h) => write!(f, "RSA PKCS#1 v1.5 with {h}"),
            Self::RsaPss(h) => write!(f, "RSASSA-PSS with {h}"),
            Self::Ecdsa(h) => write!(f, "ECDSA with {h}"),
            Self::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

impl SigScheme {
    /// The hash the scheme signs with ([`HashAlg::Identity`] for Ed25519).
    pub fn hash(self) -> HashAlg {
        match self {
            Self::RsaPkcs1(h) | Self::RsaPss(h) | Self::Ecdsa(h) => h,
            Self::Ed25519 => HashAlg::Identity,
        }
    }

    /// Whether the scheme can be used with a key of type `key`.
    pub fn fits(self, key: KeyType) -> bool {
        match self {
            Self::RsaPkcs1(h) | Self::RsaPss(h) => key == KeyType::Rsa && h != HashAlg::Identity,
            Self::Ecdsa(h) => key.ec_field_len().is_some() && h != HashAlg::Identity,
            Self::Ed25519 => key == KeyType::Ed25519,
        }
    }

    /// The DER AlgorithmIdentifier of the scheme, as strongSwan writes it
    /// (RFC 7427 Appendix A): `NULL` parameters for the RSA PKCS#1 OIDs and
    /// the hashes inside RSASSA-PSS parameters, none for ECDSA and Ed25519;
    /// RSASSA-PSS parameters with MGF1 of the same hash and a salt as long
    /// as the hash, fields equal to their DEFAULT (SHA-1, 20) left out.
    pub fn algorithm_identifier(self) -> Result<Vec<u8>, PkiError> {
        let unsupported = || PkiError::Unsupported(format!("signature scheme {self}"));
        let oid: &[u8] = match self {
            Self::RsaPkcs1(HashAlg::Sha1) => OID_SHA1_RSA,
            Self::RsaPkcs1(HashAlg::Sha256) => OID_SHA256_RSA,
            Self::RsaPkcs1(HashAlg::Sha384) => OID_SHA384_RSA,
            Self::RsaPkcs1(HashAlg::Sha512) => OID_SHA512_RSA,
            Self::Ecdsa(HashAlg::Sha1) => OID_ECDSA_SHA1,
            Self::Ecdsa(HashAlg::Sha256) => OID_ECDSA_SHA256,
            Self::Ecdsa(HashAlg::Sha384) => OID_ECDSA_SHA384,
            Self::Ecdsa(HashAlg::Sha512) => OID_ECDSA_SHA512,
            Self::Ed25519 => OID_ED25519,
            Self::RsaPss(h) => {
                let params = pss_params(h).ok_or_else(unsupported)?;
                let body = [der_tlv(0x06, OID_RSASSA_PSS), params].concat();
                return Ok(der_tlv(0x30, &body));
            }
            Self::RsaPkcs1(HashAlg::Identity) | Self::Ecdsa(HashAlg::Identity) => {
                return Err(unsupported());
            }
        };
        let mut body = der_tlv(0x06, oid);
        if matches!(self, Self::RsaPkcs1(_)) {
            body.extend_from_slice(&[0x05, 0x00]);
        }
        Ok(der_tlv(0x30, &body))
    }
}

/// The RFC 7427 schemes for a key of `key_type` and `bits`, in strongSwan's
/// order of preference (libstrongswan `signature_schemes_for_key`): for
/// RSA, RSASSA-PSS with SHA-256 (keys up to 3072 bits), SHA-384 (up to
/// 7680), SHA-512, then PKCS#1 v1.5 with the same hashes by the same rule;
/// for ECDSA, SHA-256 (P-256 only), SHA-384 (up to P-384), SHA-512; for
/// Ed25519, Ed25519. Whether PSS is used at all is the caller's choice
/// (strongSwan signs with PKCS#1 v1.5 unless `rsa/pss` is configured).
pub fn schemes_for_key(key_type: KeyType, bits: u32) -> Vec<SigScheme> {
    let by_size = [
        (3072, HashAlg::Sha256),
        (7680, HashAlg::Sha384),
        (u32::MAX, HashAlg::Sha512),
    ];
    match key_type {
        KeyType::Rsa => {
            let hashes = by_size.iter().filter(|(max, _)| bits <= *max);
            let pss = hashes.clone().map(|&(_, h)| SigScheme::RsaPss(h));
            let pkcs1 = hashes.map(|&(_, h)| SigScheme::RsaPkcs1(h));
            pss.chain(pkcs1).collect()
        }
        KeyType::EcP256 | KeyType::EcP384 | KeyType::EcP521 => [
            (256, HashAlg::Sha256),
            (384, HashAlg::Sha384),
            (u32::MAX, HashAlg::Sha512),
        ]
        .iter()
        .filter(|(max, _)| bits <= *max)
        .map(|&(_, h)| SigScheme::Ecdsa(h))
        .collect(),
        KeyType::Ed25519 => vec![SigScheme::Ed25519],
    }
}

// Object identifier contents (the octets after tag and length).
/// sha1WithRSAEncryption 1.2.840.113549.1.1.5
const OID_SHA1_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
/// sha256WithRSAEncryption 1.2.840.113549.1.1.11
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
/// sha384WithRSAEncryption 1.2.840.113549.1.1.12
const OID_SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
/// sha512WithRSAEncryption 1.2.840.113549.1.1.13
const OID_SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
/// id-RSASSA-PSS 1.2.840.113549.1.1.10
const OID_RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// id-mgf1 1.2.840.113549.1.1.8
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
/// ecdsa-with-SHA1 1.2.840.10045.4.1
const OID_ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
/// ecdsa-with-SHA256 1.2.840.10045.4.3.2
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// ecdsa-with-SHA384 1.2.840.10045.4.3.3
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
/// ecdsa-with-SHA512 1.2.840.10045.4.3.4
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
/// id-Ed25519 1.3.101.112
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// id-sha1 1.3.14.3.2.26
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// id-sha256 2.16.840.1.101.3.4.2.1
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-sha384 2.16.840.1.101.3.4.2.2
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
/// id-sha512 2.16.840.1.101.3.4.2.3
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

fn hash_oid(h: HashAlg) -> Option<&'static [u8]> {
    match h {
        HashAlg::Sha1 => Some(OID_SHA1),
        HashAlg::Sha256 => Some(OID_SHA256),
        HashAlg::Sha384 => Some(OID_SHA384),
        HashAlg::Sha512 => Some(OID_SHA512),
        HashAlg::Identity => None,
    }
}

fn hash_len(h: HashAlg) -> Option<u64> {
    match h {
        HashAlg::Sha1 => Some(20),
        HashAlg::Sha256 => Some(32),
        HashAlg::Sha384 => Some(48),
        HashAlg::Sha512 => Some(64),
        HashAlg::Identity => None,
    }
}

/// RSASSA-PSS-params (RFC 4055 3.1) for `h`, MGF1 with `h`, salt length
/// the hash length, trailer field 1; DEFAULT values left out (DER).
fn pss_params(h: HashAlg) -> Option<Vec<u8>> {
    let oid = hash_oid(h)?;
    let salt = hash_len(h)?;
    let mut body = Vec::new();
    if h != HashAlg::Sha1 {
        let hash_alg = der_tlv(0x30, &[der_tlv(0x06, oid), vec![0x05, 0x00]].concat());
        body.extend(der_tlv(0xa0, &hash_alg));
        let mgf = der_tlv(0x30, &[der_tlv(0x06, OID_MGF1), hash_alg].concat());
        body.extend(der_tlv(0xa1, &mgf));
    }
    if salt != 20 {
        body.extend(der_tlv(0xa2, &der_tlv(0x02, &[u8::try_from(salt).ok()?])));
    }
    Some(der_tlv(0x30, &body))
}

/// A DER TLV with a one-octet tag and a definite length.
pub(crate) fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len.saturating_add(6));
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets = len.to_be_bytes();
        let skip = octets.iter().take_while(|&&b| b == 0).count();
        let significant = octets.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// Reads one DER TLV with a one-octet tag: `(tag, contents, rest)`.
/// Refuses indefinite, non-minimal and overlong lengths.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-octet tags: none used here
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (octets, rest) = rest.split_at_checked(n)?;
        if octets.first() == Some(&0) {
            return None;
        }
        let len = octets
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return None;
        }
        (len, rest)
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((tag, value, rest))
}

/// Reads one TLV of tag `want` that fills `input` entirely.
fn read_only(input: &[u8], want: u8) -> Option<&[u8]> {
    match read_tlv(input)? {
        (tag, value, []) if tag == want => Some(value),
        _ => None,
    }
}

/// A hash AlgorithmIdentifier (parameters NULL or absent).
fn hash_from_alg_id(der: &[u8]) -> Option<HashAlg> {
    let body = read_only(der, 0x30)?;
    let (tag, oid, params) = read_tlv(body)?;
    if tag != 0x06 || !(params.is_empty() || params == [0x05, 0x00]) {
        return None;
    }
    [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ]
    .into_iter()
    .find(|&h| hash_oid(h) == Some(oid))
}

/// The scheme of RSASSA-PSS-params (RFC 4055 3.1). Only the parameters
/// strongSwan uses are supported: MGF1 with the signature's hash, a salt
/// as long as the hash, trailer field 1.
fn pss_from_params(params: &[u8]) -> Option<SigScheme> {
    let mut rest = read_only(params, 0x30)?;
    let mut hash = HashAlg::Sha1;
    let mut mgf_hash = HashAlg::Sha1;
    let mut salt: u64 = 20;
    let mut last_tag = 0u8;
    while !rest.is_empty() {
        let (tag, value, next) = read_tlv(rest)?;
        // Fields in order, each at most once.
        if tag <= last_tag {
            return None;
        }
        last_tag = tag;
        match tag {
            0xa0 => hash = hash_from_alg_id(value)?,
            0xa1 => {
                let body = read_only(value, 0x30)?;
                let (t, oid, inner) = read_tlv(body)?;
                if t != 0x06 || oid != OID_MGF1 {
                    return None;
                }
                mgf_hash = hash_from_alg_id(inner)?;
            }
            0xa2 => {
                let int = read_only(value, 0x02)?;
                if int.is_empty() || int.len() > 2 || int.first().is_some_and(|&b| b >= 0x80) {
                    return None;
                }
                salt = int.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            }
            0xa3 => {
                if read_only(value, 0x02)? != [1] {
                    return None;
                }
            }
            _ => return None,
        }
        rest = next;
    }
    (mgf_hash == hash && Some(salt) == hash_len(hash)).then_some(SigScheme::RsaPss(hash))
}

/// The scheme of a DER AlgorithmIdentifier (X.509 signatureAlgorithm,
/// RFC 7427 AUTH data); `None` for one not supported. PKCS#1 v1.5 OIDs
/// take `NULL` or absent parameters, ECDSA OIDs absent ones (or `NULL`,
/// as some old encoders write), Ed25519 none.
pub fn scheme_from_algorithm_identifier(der: &[u8]) -> Option<SigScheme> {
    let body = read_only(der, 0x30)?;
    let (tag, oid, params) = read_tlv(body)?;
    if tag != 0x06 {
        return None;
    }
    let null_or_none = params.is_empty() || params == [0x05, 0x00];
    let scheme = match oid {
        OID_SHA1_RSA => SigScheme::RsaPkcs1(HashAlg::Sha1),
        OID_SHA256_RSA => SigScheme::RsaPkcs1(HashAlg::Sha256),
        OID_SHA384_RSA => SigScheme::RsaPkcs1(HashAlg::Sha384),
        OID_SHA512_RSA => SigScheme::RsaPkcs1(HashAlg::Sha512),
        OID_ECDSA_SHA1 => SigScheme::Ecdsa(HashAlg::Sha1),
        OID_ECDSA_SHA256 => SigScheme::Ecdsa(HashAlg::Sha256),
        OID_ECDSA_SHA384 => SigScheme::Ecdsa(HashAlg::Sha384),
        OID_ECDSA_SHA512 => SigScheme::Ecdsa(HashAlg::Sha512),
        OID_ED25519 if params.is_empty() => return Some(SigScheme::Ed25519),
        OID_RSASSA_PSS => return pss_from_params(params),
        _ => return None,
    };
    null_or_none.then_some(scheme)
}

/// The AUTH data of RFC 7427 (method 14): a one-octet length, the
/// AlgorithmIdentifier DER of `scheme`, then the signature. `key` is the
/// signer's key type, which the scheme must fit.
pub fn encode_signature_auth(
    scheme: SigScheme,
    key: KeyType,
    sig: &[u8],
) -> Result<Vec<u8>, PkiError> {
    if !scheme.fits(key) {
        return Err(PkiError::SchemeMismatch { scheme, key });
    }
    let alg = scheme.algorithm_identifier()?;
    let len = u8::try_from(alg.len())
        .map_err(|_| PkiError::Unsupported(format!("AlgorithmIdentifier of {scheme}")))?;
    let mut out = Vec::with_capacity(alg.len().saturating_add(sig.len()).saturating_add(1));
    out.push(len);
    out.extend_from_slice(&alg);
    out.extend_from_slice(sig);
    Ok(out)
}

/// Splits RFC 7427 AUTH data into its scheme and the signature.
pub fn decode_signature_auth(data: &[u8]) -> Result<(SigScheme, &[u8]), PkiError> {
    let malformed = |reason: &str| PkiError::Malformed {
        what: "signature AUTH data",
        reason: reason.into(),
    };
    let (&len, rest) = data.split_first().ok_or_else(|| malformed("empty"))?;
    let (alg, sig) = rest
        .split_at_checked(usize::from(len))
        .ok_or_else(|| malformed("AlgorithmIdentifier longer than the data"))?;
    let scheme = scheme_from_algorithm_identifier(alg).ok_or_else(|| {
        PkiError::Unsupported(format!("signature algorithm {}", hex::encode(alg)))
    })?;
    if sig.is_empty() {
        return Err(malformed("no signature"));
    }
    Ok((scheme, sig))
}

/// The classic AUTH method of a key type and the hash it signs with:
/// RSA_DIGITAL_SIGNATURE (1, PKCS#1 v1.5 with SHA-1) and ECDSA with the
/// curve's hash (9/10/11, RFC 4754); `None` for Ed25519.
pub fn classic_method(key: KeyType) -> Option<(AuthMethod, HashAlg)> {
    match key {
        KeyType::Rsa => Some((AuthMethod::RSA_SIG, HashAlg::Sha1)),
        KeyType::EcP256 => Some((AuthMethod::ECDSA_SHA256_P256, HashAlg::Sha256)),
        KeyType::EcP384 => Some((AuthMethod::ECDSA_SHA384_P384, HashAlg::Sha384)),
        KeyType::EcP521 => Some((AuthMethod::ECDSA_SHA512_P521, HashAlg::Sha512)),
        KeyType::Ed25519 => None,
    }
}

/// Signs `msg` with the classic method of the key: RSA_DIGITAL_SIGNATURE
/// (1, PKCS#1 v1.5 with SHA-1) or ECDSA_SHA256_P256 / SHA384_P384 /
/// SHA512_P521 (9/10/11, fixed-size `r|s`). Ed25519 has no classic method.
pub fn sign_classic(key: &PrivateKey, msg: &[u8]) -> Result<(AuthMethod, Vec<u8>), PkiError> {
    let t = key.key_type();
    let (method, hash) = classic_method(t).ok_or_else(|| {
        PkiError::Unsupported(format!(
            "classic AUTH method for a {t} key (needs RFC 7427)"
        ))
    })?;
    let sig = if t == KeyType::Rsa {
        key.sign(SigScheme::RsaPkcs1(hash), msg)?
    } else {
        key.sign_ecdsa_fixed(hash, msg)?
    };
    Ok((method, sig))
}

/// Verifies a classic-method signature (see [`sign_classic`]); the method
/// must be the key's own.
pub fn verify_classic(
    key: &PublicKey,
    method: AuthMethod,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    let t = key.key_type();
    let (own, hash) = classic_method(t).ok_or_else(|| {
        PkiError::Unsupported(format!(
            "classic AUTH method for a {t} key (needs RFC 7427)"
        ))
    })?;
    if method != own {
        return Err(PkiError::Unsupported(format!(
            "AUTH method {} with a {t} key",
            method.0
        )));
    }
    if t == KeyType::Rsa {
        key.verify(SigScheme::RsaPkcs1(hash), msg, sig)
    } else {
        key.verify_ecdsa_fixed(hash, msg, sig)
    }
}

/// An ECDSA-Sig-Value (DER SEQUENCE of INTEGERs r, s) as fixed-size `r|s`
/// of `len` octets each. Strict DER: minimal INTEGERs, positive, non-zero,
/// no trailing data.
pub(crate) fn ecdsa_der_to_fixed(der: &[u8], len: usize) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::BadSignature;
    let body = read_only(der, 0x30).ok_or_else(bad)?;
    let (t1, r, rest) = read_tlv(body).ok_or_else(bad)?;
    let (t2, s, rest) = read_tlv(rest).ok_or_else(bad)?;
    if t1 != 0x02 || t2 != 0x02 || !rest.is_empty() {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(len.saturating_mul(2));
    for int in [r, s] {
        let v = match int {
            [] => return Err(bad()),
            [0, rest @ ..] => {
                // A leading zero only before an octet with its top bit set.
                if rest.first().is_none_or(|&b| b < 0x80) {
                    return Err(bad());
                }
                rest
            }
            [b, ..] if *b >= 0x80 => return Err(bad()), // negative
            v => v,
        };
        if v.len() > len || v.iter().all(|&b| b == 0) {
            return Err(bad());
        }
        out.resize(out.len().saturating_add(len.saturating_sub(v.len())), 0);
        out.extend_from_slice(v);
    }
    Ok(out)
}

/// Fixed-size `r|s` as a DER ECDSA-Sig-Value.
pub(crate) fn ecdsa_fixed_to_der(fixed: &[u8]) -> Result<Vec<u8>, PkiError> {
    if fixed.is_empty() || !fixed.len().is_multiple_of(2) {
        return Err(PkiError::SigningFailed("ECDSA signature of odd length"));
    }
    let (r, s) = fixed.split_at(fixed.len() / 2);
    let int = |v: &[u8]| {
        let skip = v.iter().take_while(|&&b| b == 0).count();
        let v = v.get(skip..).unwrap_or_default();
        match v.first() {
            None => der_tlv(0x02, &[0]),
            Some(&b) if b >= 0x80 => der_tlv(0x02, &[&[0u8][..], v].concat()),
            Some(_) => der_tlv(0x02, v),
        }
    };
    Ok(der_tlv(0x30, &[int(r), int(s)].concat()))
}
