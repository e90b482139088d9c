//! Public and private keys: parsing (SubjectPublicKeyInfo, PKCS#1, SEC1,
//! PKCS#8, encrypted PKCS#8; PEM or DER), signing and verifying.
//!
//! Which implementation does what (docs/decisions.md "Keys and signatures"):
//! - RSA: ring verifies 2048 to 8192 bits and signs 2048 to 4096 bits with
//!   e >= 65537 (PKCS#1 v1.5 and PSS with SHA-2); the `rsa` crate verifies
//!   1024 to 2047 bits, signs PKCS#1 v1.5 with SHA-1 (the classic method 1)
//!   and what ring does not sign (4097 to 8192 bits, e < 65537). Signing
//!   with a key below 2048 bits is refused; no key outside 1024 to 8192
//!   bits is used at all.
//! - ECDSA: ring for P-256 with SHA-256 and P-384 with SHA-384; RustCrypto
//!   (`p256`, `p384`, `p521`) for P-521 and every other pairing of curve and
//!   hash, signing and verifying the hash (prehash) as RFC 7427 negotiates
//!   (ring's own P-256/SHA-384 and P-384/SHA-256 verifiers are not used, so
//!   that every pairing that is not the curve's own takes one path).
//! - Ed25519: ring.

use std::fmt;
use std::sync::Arc;

use der::Decode;
use der::asn1::ObjectIdentifier;
use zeroize::Zeroizing;

use super::PkiError;
use super::sig::{self, HashAlg, SigScheme};

/// The type of a key: its algorithm and, for EC keys, the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// RSA (any accepted size, see [`PublicKey::bits`]).
    Rsa,
    /// ECDSA on NIST P-256 (secp256r1).
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcP384,
    /// ECDSA on NIST P-521 (secp521r1).
    EcP521,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa => "RSA",
            Self::EcP256 => "ECDSA P-256",
            Self::EcP384 => "ECDSA P-384",
            Self::EcP521 => "ECDSA P-521",
            Self::Ed25519 => "Ed25519",
        })
    }
}

impl KeyType {
    /// The octets of one coordinate (and of `r` and `s`) of an EC key's
    /// curve; `None` for RSA and Ed25519.
    pub(crate) fn ec_field_len(self) -> Option<usize> {
        match self {
            Self::EcP256 => Some(32),
            Self::EcP384 => Some(48),
            Self::EcP521 => Some(66),
            Self::Rsa | Self::Ed25519 => None,
        }
    }
}

/// The accepted RSA sizes, in bits (docs/configuration.md "Key sizes").
pub const RSA_VERIFY_BITS: std::ops::RangeInclusive<u32> = 1024..=8192;
/// RSA sizes accepted for signing (our own keys), in bits.
pub const RSA_SIGN_BITS: std::ops::RangeInclusive<u32> = 2048..=8192;
const RSA_VERIFY_TEXT: &str = "1024 to 8192 bits";
const RSA_SIGN_TEXT: &str = "2048 to 8192 bits";
/// The largest RSA modulus parsed at all (larger keys are refused when
/// parsed, so that no arithmetic ever runs on them).
const RSA_PARSE_MAX_BITS: u32 = 16384;

// Object identifiers of keys (RFC 3279, RFC 5480, RFC 8410, RFC 4055).
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

fn curve_of(oid: ObjectIdentifier) -> Result<KeyType, PkiError> {
    match oid {
        OID_P256 => Ok(KeyType::EcP256),
        OID_P384 => Ok(KeyType::EcP384),
        OID_P521 => Ok(KeyType::EcP521),
        other => Err(PkiError::Unsupported(format!("elliptic curve {other}"))),
    }
}

fn curve_oid(t: KeyType) -> Option<ObjectIdentifier> {
    match t {
        KeyType::EcP256 => Some(OID_P256),
        KeyType::EcP384 => Some(OID_P384),
        KeyType::EcP521 => Some(OID_P521),
        KeyType::Rsa | KeyType::Ed25519 => None,
    }
}

fn malformed(what: &'static str, reason: impl fmt::Display) -> PkiError {
    PkiError::Malformed {
        what,
        reason: reason.to_string(),
    }
}

/// A public key, kept with its SubjectPublicKeyInfo DER. Cheap to clone.
/// Two keys are equal when their key material is (whatever the encoding
/// of their SubjectPublicKeyInfo).
#[derive(Clone)]
pub struct PublicKey {
    inner: Arc<PublicInner>,
}

struct PublicInner {
    spki: Vec<u8>,
    /// The subjectPublicKey BIT STRING's contents (after the unused-bits
    /// octet).
    key_bits: Vec<u8>,
    key_type: KeyType,
    bits: u32,
    material: Material,
}

/// The key itself, in the form the verifiers take.
#[derive(PartialEq, Eq)]
enum Material {
    /// Big-endian unsigned modulus and exponent, no leading zero octets.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// SEC1 uncompressed point (0x04 | x | y).
    Ec(Vec<u8>),
    Ed25519([u8; 32]),
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner.key_type == other.inner.key_type && self.inner.material == other.inner.material
    }
}
impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("type", &self.inner.key_type)
            .field("bits", &self.inner.bits)
            .field("keyid", &hex::encode(self.key_sha1()))
            .finish()
    }
}

impl PublicKey {
    /// A key from its SubjectPublicKeyInfo DER (RSA, RSASSA-PSS, EC on
    /// P-256/384/521, Ed25519).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, PkiError> {
        let info = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| malformed("SubjectPublicKeyInfo", e))?;
        let key = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| malformed("SubjectPublicKeyInfo", "subjectPublicKey has unused bits"))?;
        let alg = info.algorithm;
        let (key_type, bits, material) = match alg.oid {
            // RSASSA-PSS keys (RFC 4055) are RSA keys restricted to PSS;
            // the restriction is the signer's business, the key is usable.
            OID_RSA | OID_RSASSA_PSS => rsa_material_from_pkcs1_public(key)?,
            OID_EC_PUBLIC_KEY => {
                let curve = alg
                    .parameters
                    .ok_or_else(|| malformed("EC public key", "no curve parameters"))?
                    .decode_as::<ObjectIdentifier>()
                    .map_err(|_| PkiError::Unsupported("EC key with explicit curve".into()))?;
                let t = curve_of(curve)?;
                let point = ec_point_uncompressed(t, key)?;
                (t, ec_bits(t), Material::Ec(point))
            }
            OID_ED25519 => {
                if alg.parameters.is_some() {
                    return Err(malformed("Ed25519 public key", "parameters present"));
                }
                let k: [u8; 32] = key
                    .try_into()
                    .map_err(|_| malformed("Ed25519 public key", "not 32 octets"))?;
                (KeyType::Ed25519, 256, Material::Ed25519(k))
            }
            OID_ED448 => return Err(PkiError::Unsupported("Ed448 keys".into())),
            other => {
                return Err(PkiError::Unsupported(format!(
                    "public key algorithm {other}"
                )));
            }
        };
        Ok(Self {
            inner: Arc::new(PublicInner {
                spki: der.to_vec(),
                key_bits: key.to_vec(),
                key_type,
                bits,
                material,
            }),
        })
    }

    /// A key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC
    /// KEY` (PKCS#1) block, or from the DER of either (swanctl `pubkeys`).
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, PkiError> {
        if looks_like_pem(bytes) {
            let blocks = pem_blocks(bytes)?;
            for b in &blocks {
                match b.label.as_str() {
                    "PUBLIC KEY" => return Self::from_spki_der(&b.der),
                    "RSA PUBLIC KEY" => return Self::from_pkcs1_rsa_der(&b.der),
                    _ => {}
                }
            }
            return Err(malformed(
                "public key",
                "no PEM block labelled PUBLIC KEY or RSA PUBLIC KEY",
            ));
        }
        match Self::from_spki_der(bytes) {
            Ok(k) => Ok(k),
            Err(spki_err) => Self::from_pkcs1_rsa_der(bytes).map_err(|_| spki_err),
        }
    }

    /// A key from a PKCS#1 RSAPublicKey DER.
    fn from_pkcs1_rsa_der(der: &[u8]) -> Result<Self, PkiError> {
        let (key_type, bits, material) = rsa_material_from_pkcs1_public(der)?;
        Ok(Self::from_material(key_type, bits, material))
    }

    /// A key from its material, with a SubjectPublicKeyInfo built in the
    /// usual encoding (RSA with NULL parameters, EC uncompressed, RFC 8410).
    fn from_material(key_type: KeyType, bits: u32, material: Material) -> Self {
        let (alg, key) = match (&material, key_type) {
            (Material::Rsa { n, e }, _) => (
                sig::der_tlv(0x30, &[oid_tlv(OID_RSA), vec![0x05, 0x00]].concat()),
                sig::der_tlv(0x30, &[uint_tlv(n), uint_tlv(e)].concat()),
            ),
            (Material::Ec(point), t) => {
                let curve = curve_oid(t).map(oid_tlv).unwrap_or_default();
                (
                    sig::der_tlv(0x30, &[oid_tlv(OID_EC_PUBLIC_KEY), curve].concat()),
                    point.clone(),
                )
            }
            (Material::Ed25519(k), _) => (sig::der_tlv(0x30, &oid_tlv(OID_ED25519)), k.to_vec()),
        };
        let bit_string = sig::der_tlv(0x03, &[&[0u8][..], &key].concat());
        let spki = sig::der_tlv(0x30, &[alg, bit_string].concat());
        Self {
            inner: Arc::new(PublicInner {
                spki,
                key_bits: key,
                key_type,
                bits,
                material,
            }),
        }
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.inner.key_type
    }

    /// The key's size: the RSA modulus length or the curve's size in bits
    /// (256 for Ed25519).
    pub fn bits(&self) -> u32 {
        self.inner.bits
    }

    /// The SubjectPublicKeyInfo DER (as parsed, or built for a key that
    /// came without one).
    pub fn spki_der(&self) -> &[u8] {
        &self.inner.spki
    }

    /// SHA-1 of the whole SubjectPublicKeyInfo DER: the CA hashes of
    /// CERTREQ payloads (RFC 7296 3.7, as strongSwan).
    pub fn spki_sha1(&self) -> [u8; 20] {
        sha1(&self.inner.spki)
    }

    /// SHA-1 of the subjectPublicKey BIT STRING's contents (the usual
    /// subjectKeyIdentifier, RFC 5280 4.2.1.2 method 1).
    pub fn key_sha1(&self) -> [u8; 20] {
        sha1(&self.inner.key_bits)
    }

    /// Verifies `sig` over `msg` with `scheme` (ECDSA: DER-encoded); `Ok`
    /// only for a valid signature.
    pub fn verify(&self, scheme: SigScheme, msg: &[u8], sig: &[u8]) -> Result<(), PkiError> {
        let t = self.inner.key_type;
        match (&self.inner.material, scheme) {
            (Material::Rsa { n, e }, SigScheme::RsaPkcs1(h) | SigScheme::RsaPss(h))
                if h != HashAlg::Identity =>
            {
                rsa_verify(n, e, self.inner.bits, scheme, msg, sig)
            }
            (Material::Ec(point), SigScheme::Ecdsa(h)) if h != HashAlg::Identity => {
                let len = t
                    .ec_field_len()
                    .ok_or(PkiError::SchemeMismatch { scheme, key: t })?;
                let fixed = sig::ecdsa_der_to_fixed(sig, len)?;
                ec_verify_fixed(t, point, h, msg, &fixed)
            }
            (Material::Ed25519(k), SigScheme::Ed25519) => {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, k)
                    .verify(msg, sig)
                    .map_err(|_| PkiError::BadSignature)
            }
            _ => Err(PkiError::SchemeMismatch { scheme, key: t }),
        }
    }

    /// Verifies an ECDSA signature given as fixed-size `r|s` (the classic
    /// methods 9/10/11, RFC 4754).
    pub(crate) fn verify_ecdsa_fixed(
        &self,
        hash: HashAlg,
        msg: &[u8],
        fixed: &[u8],
    ) -> Result<(), PkiError> {
        let t = self.inner.key_type;
        match &self.inner.material {
            Material::Ec(point) if hash != HashAlg::Identity => {
                ec_verify_fixed(t, point, hash, msg, fixed)
            }
            _ => Err(PkiError::SchemeMismatch {
                scheme: SigScheme::Ecdsa(hash),
                key: t,
            }),
        }
    }
}

fn ec_bits(t: KeyType) -> u32 {
    match t {
        KeyType::EcP256 => 256,
        KeyType::EcP384 => 384,
        KeyType::EcP521 => 521,
        KeyType::Rsa | KeyType::Ed25519 => 0,
    }
}

fn oid_tlv(oid: ObjectIdentifier) -> Vec<u8> {
    sig::der_tlv(0x06, oid.as_bytes())
}

/// A DER INTEGER of a big-endian unsigned value without leading zeros.
fn uint_tlv(v: &[u8]) -> Vec<u8> {
    match v.first() {
        Some(&b) if b < 0x80 => sig::der_tlv(0x02, v),
        Some(_) => sig::der_tlv(0x02, &[&[0u8][..], v].concat()),
        None => sig::der_tlv(0x02, &[0]),
    }
}

/// Bit length of a big-endian unsigned value without leading zeros.
fn bit_len(v: &[u8]) -> u32 {
    let Some(&first) = v.first() else { return 0 };
    let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
    len.saturating_sub(1)
        .saturating_mul(8)
        .saturating_add(8u32.saturating_sub(first.leading_zeros()))
}

/// RSA modulus and exponent checked as every user of them needs: n odd and
/// at most [`RSA_PARSE_MAX_BITS`], e odd, 3 <= e < 2^33 (the bounds of
/// ring and the `rsa` crate alike).
fn rsa_material(n: &[u8], e: &[u8]) -> Result<(KeyType, u32, Material), PkiError> {
    let n = strip_zeros(n);
    let e = strip_zeros(e);
    let bits = bit_len(n);
    if bits > RSA_PARSE_MAX_BITS {
        return Err(PkiError::KeySize {
            bits,
            purpose: "use",
            accepted: RSA_VERIFY_TEXT,
        });
    }
    if n.last().is_none_or(|b| b & 1 == 0) || bits < 512 {
        return Err(malformed("RSA public key", "modulus even or too short"));
    }
    let e_val = if e.len() <= 8 {
        e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    } else {
        u64::MAX
    };
    if e_val < 3 || e_val & 1 == 0 || e_val >= (1u64 << 33) {
        return Err(PkiError::Unsupported(
            "RSA public exponent (must be odd, at least 3 and below 2^33)".into(),
        ));
    }
    Ok((
        KeyType::Rsa,
        bits,
        Material::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        },
    ))
}

fn rsa_material_from_pkcs1_public(der: &[u8]) -> Result<(KeyType, u32, Material), PkiError> {
    let k = pkcs1::RsaPublicKey::from_der(der).map_err(|e| malformed("RSA public key", e))?;
    rsa_material(k.modulus.as_bytes(), k.public_exponent.as_bytes())
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let i = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    v.get(i..).unwrap_or_default()
}

/// An EC point (compressed or uncompressed SEC1) checked to be on the curve,
/// returned uncompressed.
fn ec_point_uncompressed(t: KeyType, point: &[u8]) -> Result<Vec<u8>, PkiError> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let bad = |_| malformed("EC public key", "not a point on the curve");
    let out = match t {
        KeyType::EcP256 => p256::PublicKey::from_sec1_bytes(point)
            .map_err(bad)?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        KeyType::EcP384 => p384::PublicKey::from_sec1_bytes(point)
            .map_err(bad)?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        KeyType::EcP521 => p521::PublicKey::from_sec1_bytes(point)
            .map_err(bad)?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        KeyType::Rsa | KeyType::Ed25519 => {
            return Err(malformed("EC public key", "not an EC key type"));
        }
    };
    Ok(out)
}

/// The digest of `msg`; `None` for [`HashAlg::Identity`].
pub(crate) fn digest(h: HashAlg, msg: &[u8]) -> Option<Vec<u8>> {
    let alg = match h {
        HashAlg::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => &ring::digest::SHA256,
        HashAlg::Sha384 => &ring::digest::SHA384,
        HashAlg::Sha512 => &ring::digest::SHA512,
        HashAlg::Identity => return None,
    };
    Some(ring::digest::digest(alg, msg).as_ref().to_vec())
}

fn sha1(bytes: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes).as_ref(),
    );
    out
}

fn rsa_verify(
    n: &[u8],
    e: &[u8],
    bits: u32,
    scheme: SigScheme,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    use ring::signature as rs;
    if !RSA_VERIFY_BITS.contains(&bits) {
        return Err(PkiError::KeySize {
            bits,
            purpose: "verifying",
            accepted: RSA_VERIFY_TEXT,
        });
    }
    if bits >= 2048 {
        let params: Option<&rs::RsaParameters> = match scheme {
            SigScheme::RsaPkcs1(HashAlg::Sha1) => {
                Some(&rs::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY)
            }
            SigScheme::RsaPkcs1(HashAlg::Sha256) => Some(&rs::RSA_PKCS1_2048_8192_SHA256),
            SigScheme::RsaPkcs1(HashAlg::Sha384) => Some(&rs::RSA_PKCS1_2048_8192_SHA384),
            SigScheme::RsaPkcs1(HashAlg::Sha512) => Some(&rs::RSA_PKCS1_2048_8192_SHA512),
            SigScheme::RsaPss(HashAlg::Sha256) => Some(&rs::RSA_PSS_2048_8192_SHA256),
            SigScheme::RsaPss(HashAlg::Sha384) => Some(&rs::RSA_PSS_2048_8192_SHA384),
            SigScheme::RsaPss(HashAlg::Sha512) => Some(&rs::RSA_PSS_2048_8192_SHA512),
            _ => None,
        };
        if let Some(params) = params {
            return rs::RsaPublicKeyComponents { n, e }
                .verify(params, msg, sig)
                .map_err(|_| PkiError::BadSignature);
        }
    }
    rsa_crate_verify(n, e, scheme, msg, sig)
}

/// Verification with the `rsa` crate: keys of 1024 to 2047 bits, and
/// RSASSA-PSS with SHA-1 (which ring lacks).
fn rsa_crate_verify(
    n: &[u8],
    e: &[u8],
    scheme: SigScheme,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    use rsa::traits::SignatureScheme as _;
    let key = rsa::RsaPublicKey::new_with_max_size(
        rsa::BigUint::from_bytes_be(n),
        rsa::BigUint::from_bytes_be(e),
        RSA_PARSE_MAX_BITS as usize,
    )
    .map_err(|e| malformed("RSA public key", e))?;
    let (h, pss) = match scheme {
        SigScheme::RsaPkcs1(h) => (h, false),
        SigScheme::RsaPss(h) => (h, true),
        _ => {
            return Err(PkiError::SchemeMismatch {
                scheme,
                key: KeyType::Rsa,
            });
        }
    };
    let hashed = digest(h, msg).ok_or(PkiError::SchemeMismatch {
        scheme,
        key: KeyType::Rsa,
    })?;
    let r = match (h, pss) {
        (HashAlg::Sha1, false) => rsa::Pkcs1v15Sign::new::<sha1::Sha1>().verify(&key, &hashed, sig),
        (HashAlg::Sha256, false) => {
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>().verify(&key, &hashed, sig)
        }
        (HashAlg::Sha384, false) => {
            rsa::Pkcs1v15Sign::new::<sha2::Sha384>().verify(&key, &hashed, sig)
        }
        (HashAlg::Sha512, false) => {
            rsa::Pkcs1v15Sign::new::<sha2::Sha512>().verify(&key, &hashed, sig)
        }
        (HashAlg::Sha1, true) => rsa::Pss::new::<sha1::Sha1>().verify(&key, &hashed, sig),
        (HashAlg::Sha256, true) => rsa::Pss::new::<sha2::Sha256>().verify(&key, &hashed, sig),
        (HashAlg::Sha384, true) => rsa::Pss::new::<sha2::Sha384>().verify(&key, &hashed, sig),
        (HashAlg::Sha512, true) => rsa::Pss::new::<sha2::Sha512>().verify(&key, &hashed, sig),
        (HashAlg::Identity, _) => {
            return Err(PkiError::SchemeMismatch {
                scheme,
                key: KeyType::Rsa,
            });
        }
    };
    r.map_err(|_| PkiError::BadSignature)
}

/// The hash as ECDSA takes it (FIPS 186-4 6.4): a hash longer than the
/// curve's field is cut to its leftmost octets by the RustCrypto verifiers;
/// a shorter one is left-padded with zeros here to the field's length (the
/// same integer), since they refuse one shorter than half the field (SHA-1
/// on P-384, SHA-1 and SHA-256 on P-521).
fn ecdsa_prehash(h: HashAlg, msg: &[u8], field_len: usize) -> Option<Vec<u8>> {
    let d = digest(h, msg)?;
    if d.len() >= field_len {
        return Some(d);
    }
    let mut padded = vec![0u8; field_len.saturating_sub(d.len())];
    padded.extend_from_slice(&d);
    Some(padded)
}

fn ec_verify_fixed(
    t: KeyType,
    point: &[u8],
    h: HashAlg,
    msg: &[u8],
    fixed: &[u8],
) -> Result<(), PkiError> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use ring::signature as rs;
    let mismatch = PkiError::SchemeMismatch {
        scheme: SigScheme::Ecdsa(h),
        key: t,
    };
    let len = t.ec_field_len().ok_or(mismatch.clone())?;
    if Some(fixed.len()) != len.checked_mul(2) {
        return Err(PkiError::BadSignature);
    }
    let ring_alg: Option<&rs::EcdsaVerificationAlgorithm> = match (t, h) {
        (KeyType::EcP256, HashAlg::Sha256) => Some(&rs::ECDSA_P256_SHA256_FIXED),
        (KeyType::EcP384, HashAlg::Sha384) => Some(&rs::ECDSA_P384_SHA384_FIXED),
        _ => None,
    };
    if let Some(alg) = ring_alg {
        return rs::UnparsedPublicKey::new(alg, point)
            .verify(msg, fixed)
            .map_err(|_| PkiError::BadSignature);
    }
    let prehash = ecdsa_prehash(h, msg, len).ok_or(mismatch.clone())?;
    let bad_key = |_| malformed("EC public key", "not a point on the curve");
    let ok = match t {
        KeyType::EcP256 => {
            let k = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let s =
                p256::ecdsa::Signature::from_slice(fixed).map_err(|_| PkiError::BadSignature)?;
            k.verify_prehash(&prehash, &s).is_ok()
        }
        KeyType::EcP384 => {
            let k = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let s =
                p384::ecdsa::Signature::from_slice(fixed).map_err(|_| PkiError::BadSignature)?;
            k.verify_prehash(&prehash, &s).is_ok()
        }
        KeyType::EcP521 => {
            let k = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let s =
                p521::ecdsa::Signature::from_slice(fixed).map_err(|_| PkiError::BadSignature)?;
            k.verify_prehash(&prehash, &s).is_ok()
        }
        KeyType::Rsa | KeyType::Ed25519 => return Err(mismatch),
    };
    if ok {
        Ok(())
    } else {
        Err(PkiError::BadSignature)
    }
}

/// A private key (RSA, ECDSA P-256/384/521, Ed25519) with its public key.
/// Its secrets are zeroized on drop and never printed.
pub struct PrivateKey {
    public: PublicKey,
    secret: Secret,
}

enum Secret {
    Rsa {
        /// ring's key pair for keys ring signs (2048 to 4096 bits, e >=
        /// 65537); `None` otherwise.
        ring: Option<ring::rsa::KeyPair>,
        /// For what ring does not sign (SHA-1, larger keys, small e).
        rc: Box<rsa::RsaPrivateKey>,
    },
    Ec {
        /// ring's key pair with the curve's own hash (P-256/SHA-256,
        /// P-384/SHA-384); `None` for P-521.
        ring: Option<Box<ring::signature::EcdsaKeyPair>>,
        rc: Box<EcSigner>,
    },
    Ed25519(ring::signature::Ed25519KeyPair),
}

enum EcSigner {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A random generator for the RustCrypto signers, seeded from ring's
/// system random source (so a failure of the source is an error here,
/// not a panic inside a library).
fn rng() -> Result<rand_chacha::ChaCha20Rng, PkiError> {
    use rand_chacha::rand_core::SeedableRng;
    use ring::rand::SecureRandom;
    let mut seed = Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(seed.as_mut())
        .map_err(|_| PkiError::SigningFailed("random source failed"))?;
    Ok(rand_chacha::ChaCha20Rng::from_seed(*seed))
}

impl PrivateKey {
    /// A key from PEM (`RSA PRIVATE KEY`, `EC PRIVATE KEY`, `PRIVATE KEY`,
    /// `ENCRYPTED PRIVATE KEY`; other blocks such as `EC PARAMETERS` are
    /// skipped) or DER (PKCS#1, SEC1, PKCS#8, encrypted PKCS#8).
    /// `passphrase` decrypts an encrypted PKCS#8 key (PBES2: PBKDF2 or
    /// scrypt with AES-CBC, what OpenSSL writes) or a PEM key encrypted the
    /// legacy OpenSSL way (`Proc-Type: 4,ENCRYPTED`, `DEK-Info:` AES-128/
    /// 192/256-CBC or DES-EDE3-CBC, as `openssl genrsa -aes256` and
    /// strongSwan's test keys).
    pub fn from_pem_or_der(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<Self, PkiError> {
        if looks_like_pem(bytes) {
            let blocks = pem_blocks(bytes)?;
            for b in &blocks {
                let kind = match b.label.as_str() {
                    "RSA PRIVATE KEY" => DerKind::Pkcs1,
                    "EC PRIVATE KEY" => DerKind::Sec1,
                    "PRIVATE KEY" => DerKind::Pkcs8,
                    "ENCRYPTED PRIVATE KEY" => DerKind::EncryptedPkcs8,
                    _ => continue,
                };
                if b.headers
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("Proc-Type") && v.contains("ENCRYPTED"))
                {
                    let der = decrypt_legacy_pem(b, passphrase)?;
                    // Garbage from a wrong passphrase that left valid
                    // padding does not parse.
                    return Self::from_der_kind(kind, &der, None).map_err(|e| match e {
                        PkiError::Malformed { .. } => PkiError::BadPassphrase,
                        other => other,
                    });
                }
                return Self::from_der_kind(kind, &b.der, passphrase);
            }
            return Err(malformed("private key", "no PEM block with a private key"));
        }
        // DER: the kinds tried in turn; each parse is strict, so at most
        // one of them accepts the input.
        let mut first_err = None;
        for kind in [
            DerKind::Pkcs8,
            DerKind::EncryptedPkcs8,
            DerKind::Pkcs1,
            DerKind::Sec1,
        ] {
            match Self::from_der_kind(kind, bytes, passphrase) {
                Ok(k) => return Ok(k),
                Err(e @ PkiError::Malformed { .. }) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_err.unwrap_or_else(|| malformed("private key", "not a known encoding")))
    }

    fn from_der_kind(kind: DerKind, der: &[u8], pass: Option<&[u8]>) -> Result<Self, PkiError> {
        match kind {
            DerKind::Pkcs1 => Self::from_pkcs1_der(der),
            DerKind::Sec1 => Self::from_sec1_der(der, None),
            DerKind::Pkcs8 => Self::from_pkcs8_der(der),
            DerKind::EncryptedPkcs8 => {
                let info = pkcs8::EncryptedPrivateKeyInfo::from_der(der)
                    .map_err(|e| malformed("encrypted private key", e))?;
                let pass = pass.ok_or(PkiError::PassphraseRequired)?;
                let doc = info.decrypt(pass).map_err(|e| match e {
                    // EncryptFailed: the key derivation refused this
                    // passphrase (e.g. an empty one for PBKDF2).
                    pkcs8::Error::EncryptedPrivateKey(
                        pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
                    )
                    | pkcs8::Error::Asn1(_) => PkiError::BadPassphrase,
                    other => PkiError::Unsupported(format!("private key encryption: {other}")),
                })?;
                // A wrong passphrase that happens to leave valid padding
                // yields garbage, which does not parse.
                Self::from_pkcs8_der(doc.as_bytes()).map_err(|e| match e {
                    PkiError::Malformed { .. } => PkiError::BadPassphrase,
                    other => other,
                })
            }
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| malformed("private key", e))?;
        match info.algorithm.oid {
            OID_RSA | OID_RSASSA_PSS => Self::from_pkcs1_der(info.private_key),
            OID_EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| malformed("EC private key", "no named curve"))?;
                Self::from_sec1_der(info.private_key, Some(curve_of(curve)?))
            }
            OID_ED25519 => {
                // CurvePrivateKey ::= OCTET STRING (RFC 8410 7).
                let seed = der::asn1::OctetStringRef::from_der(info.private_key)
                    .map_err(|e| malformed("Ed25519 private key", e))?;
                Self::from_ed25519_seed(seed.as_bytes(), info.public_key)
            }
            OID_ED448 => Err(PkiError::Unsupported("Ed448 keys".into())),
            other => Err(PkiError::Unsupported(format!(
                "private key algorithm {other}"
            ))),
        }
    }

    fn from_pkcs1_der(der: &[u8]) -> Result<Self, PkiError> {
        let k = pkcs1::RsaPrivateKey::from_der(der).map_err(|e| malformed("RSA private key", e))?;
        if k.other_prime_infos.is_some() {
            return Err(PkiError::Unsupported("multi-prime RSA keys".into()));
        }
        let (key_type, bits, material) =
            rsa_material(k.modulus.as_bytes(), k.public_exponent.as_bytes())?;
        let big = |u: &pkcs1::UintRef<'_>| rsa::BigUint::from_bytes_be(u.as_bytes());
        let rc = rsa::RsaPrivateKey::from_components(
            big(&k.modulus),
            big(&k.public_exponent),
            big(&k.private_exponent),
            vec![big(&k.prime1), big(&k.prime2)],
        )
        .map_err(|e| malformed("RSA private key", e))?;
        let e_small = match &material {
            Material::Rsa { e, .. } => {
                e.len() < 3 || (e.len() == 3 && e.as_slice() < &[1, 0, 1][..])
            }
            _ => true,
        };
        let ring = if (2048..=4096).contains(&bits) && !e_small {
            Some(ring::rsa::KeyPair::from_der(der).map_err(|e| malformed("RSA private key", e))?)
        } else {
            None
        };
        Ok(Self {
            public: PublicKey::from_material(key_type, bits, material),
            secret: Secret::Rsa {
                ring,
                rc: Box::new(rc),
            },
        })
    }

    /// A SEC1 ECPrivateKey; `curve` from the PKCS#8 wrapper, if any, must
    /// agree with the key's own parameters.
    fn from_sec1_der(der: &[u8], curve: Option<KeyType>) -> Result<Self, PkiError> {
        let k = sec1::EcPrivateKey::from_der(der).map_err(|e| malformed("EC private key", e))?;
        let own = k
            .parameters
            .and_then(|p| p.named_curve())
            .map(curve_of)
            .transpose()?;
        let t = match (curve, own) {
            (Some(a), Some(b)) if a != b => {
                return Err(malformed("EC private key", "two different curves"));
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => return Err(malformed("EC private key", "no named curve")),
        };
        let len = t
            .ec_field_len()
            .ok_or_else(|| malformed("EC private key", "not an EC curve"))?;
        // RFC 5915: the scalar is exactly the field's length; some encoders
        // drop leading zeros, so a shorter one is padded.
        if k.private_key.len() > len || k.private_key.is_empty() {
            return Err(malformed(
                "EC private key",
                "private key of the wrong length",
            ));
        }
        let mut scalar = Zeroizing::new(vec![0u8; len.saturating_sub(k.private_key.len())]);
        scalar.extend_from_slice(k.private_key);
        let bad = |_| malformed("EC private key", "private scalar out of range");
        let (rc, point) = match t {
            KeyType::EcP256 => {
                let s = p256::ecdsa::SigningKey::from_slice(&scalar).map_err(bad)?;
                let p = s
                    .verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec();
                (EcSigner::P256(s), p)
            }
            KeyType::EcP384 => {
                let s = p384::ecdsa::SigningKey::from_slice(&scalar).map_err(bad)?;
                let p = s
                    .verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec();
                (EcSigner::P384(s), p)
            }
            KeyType::EcP521 => {
                let s = p521::ecdsa::SigningKey::from_slice(&scalar).map_err(bad)?;
                let p = p521::ecdsa::VerifyingKey::from(&s)
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec();
                (EcSigner::P521(s), p)
            }
            KeyType::Rsa | KeyType::Ed25519 => {
                return Err(malformed("EC private key", "not an EC curve"));
            }
        };
        if let Some(given) = k.public_key
            && ec_point_uncompressed(t, given)? != point
        {
            return Err(malformed(
                "EC private key",
                "public key does not match the private key",
            ));
        }
        let ring_alg = match t {
            KeyType::EcP256 => Some(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            KeyType::EcP384 => Some(&ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            _ => None,
        };
        let ring = match ring_alg {
            Some(alg) => Some(Box::new(
                ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
                    alg,
                    &scalar,
                    &point,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|e| malformed("EC private key", e))?,
            )),
            None => None,
        };
        Ok(Self {
            public: PublicKey::from_material(t, ec_bits(t), Material::Ec(point)),
            secret: Secret::Ec {
                ring,
                rc: Box::new(rc),
            },
        })
    }

    fn from_ed25519_seed(seed: &[u8], public: Option<&[u8]>) -> Result<Self, PkiError> {
        use ring::signature::KeyPair as _;
        if seed.len() != 32 {
            return Err(malformed("Ed25519 private key", "not 32 octets"));
        }
        let pair = match public {
            // PKCS#8 v2 (RFC 5958) carries the public key as a BIT STRING's
            // contents; pkcs8 hands over its octets.
            Some(p) => ring::signature::Ed25519KeyPair::from_seed_and_public_key(seed, p),
            None => ring::signature::Ed25519KeyPair::from_seed_unchecked(seed),
        }
        .map_err(|e| malformed("Ed25519 private key", e))?;
        let k: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| malformed("Ed25519 private key", "public key not 32 octets"))?;
        Ok(Self {
            public: PublicKey::from_material(KeyType::Ed25519, 256, Material::Ed25519(k)),
            secret: Secret::Ed25519(pair),
        })
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.public.key_type()
    }

    /// Signs `msg` with `scheme` (ECDSA: DER-encoded `ECDSA-Sig-Value`).
    pub fn sign(&self, scheme: SigScheme, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        let t = self.key_type();
        let mismatch = PkiError::SchemeMismatch { scheme, key: t };
        match (&self.secret, scheme) {
            (Secret::Rsa { ring, rc }, SigScheme::RsaPkcs1(h) | SigScheme::RsaPss(h))
                if h != HashAlg::Identity =>
            {
                self.sign_rsa(ring.as_ref(), rc, scheme, msg)
            }
            (Secret::Ec { .. }, SigScheme::Ecdsa(h)) if h != HashAlg::Identity => {
                let fixed = self.sign_ecdsa_fixed(h, msg)?;
                sig::ecdsa_fixed_to_der(&fixed)
            }
            (Secret::Ed25519(pair), SigScheme::Ed25519) => Ok(pair.sign(msg).as_ref().to_vec()),
            _ => Err(mismatch),
        }
    }

    fn sign_rsa(
        &self,
        ring_pair: Option<&ring::rsa::KeyPair>,
        rc: &rsa::RsaPrivateKey,
        scheme: SigScheme,
        msg: &[u8],
    ) -> Result<Vec<u8>, PkiError> {
        use ring::signature as rs;
        let bits = self.public.bits();
        if !RSA_SIGN_BITS.contains(&bits) {
            return Err(PkiError::KeySize {
                bits,
                purpose: "signing",
                accepted: RSA_SIGN_TEXT,
            });
        }
        let ring_enc: Option<&'static dyn rs::RsaEncoding> = match scheme {
            SigScheme::RsaPkcs1(HashAlg::Sha256) => Some(&rs::RSA_PKCS1_SHA256),
            SigScheme::RsaPkcs1(HashAlg::Sha384) => Some(&rs::RSA_PKCS1_SHA384),
            SigScheme::RsaPkcs1(HashAlg::Sha512) => Some(&rs::RSA_PKCS1_SHA512),
            SigScheme::RsaPss(HashAlg::Sha256) => Some(&rs::RSA_PSS_SHA256),
            SigScheme::RsaPss(HashAlg::Sha384) => Some(&rs::RSA_PSS_SHA384),
            SigScheme::RsaPss(HashAlg::Sha512) => Some(&rs::RSA_PSS_SHA512),
            _ => None,
        };
        if let (Some(pair), Some(enc)) = (ring_pair, ring_enc) {
            let mut out = vec![0u8; pair.public().modulus_len()];
            pair.sign(enc, &ring::rand::SystemRandom::new(), msg, &mut out)
                .map_err(|_| PkiError::SigningFailed("RSA signing failed"))?;
            return Ok(out);
        }
        let mismatch = PkiError::SchemeMismatch {
            scheme,
            key: KeyType::Rsa,
        };
        let (h, pss) = match scheme {
            SigScheme::RsaPkcs1(h) => (h, false),
            SigScheme::RsaPss(h) => (h, true),
            _ => return Err(mismatch),
        };
        let hashed = digest(h, msg).ok_or(mismatch.clone())?;
        let mut rng = rng()?;
        let r = match (h, pss) {
            (HashAlg::Sha1, false) => {
                rc.sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), &hashed)
            }
            (HashAlg::Sha256, false) => {
                rc.sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hashed)
            }
            (HashAlg::Sha384, false) => {
                rc.sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), &hashed)
            }
            (HashAlg::Sha512, false) => {
                rc.sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), &hashed)
            }
            (HashAlg::Sha1, true) => {
                rc.sign_with_rng(&mut rng, rsa::Pss::new::<sha1::Sha1>(), &hashed)
            }
            (HashAlg::Sha256, true) => {
                rc.sign_with_rng(&mut rng, rsa::Pss::new::<sha2::Sha256>(), &hashed)
            }
            (HashAlg::Sha384, true) => {
                rc.sign_with_rng(&mut rng, rsa::Pss::new::<sha2::Sha384>(), &hashed)
            }
            (HashAlg::Sha512, true) => {
                rc.sign_with_rng(&mut rng, rsa::Pss::new::<sha2::Sha512>(), &hashed)
            }
            (HashAlg::Identity, _) => return Err(mismatch),
        };
        r.map_err(|_| PkiError::SigningFailed("RSA signing failed"))
    }

    /// Signs with ECDSA, the signature as fixed-size `r|s`.
    pub(crate) fn sign_ecdsa_fixed(&self, h: HashAlg, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        use p256::ecdsa::signature::hazmat::RandomizedPrehashSigner;
        let t = self.key_type();
        let mismatch = PkiError::SchemeMismatch {
            scheme: SigScheme::Ecdsa(h),
            key: t,
        };
        let Secret::Ec { ring, rc } = &self.secret else {
            return Err(mismatch);
        };
        let ring_fits = matches!(
            (t, h),
            (KeyType::EcP256, HashAlg::Sha256) | (KeyType::EcP384, HashAlg::Sha384)
        );
        if let (Some(pair), true) = (ring, ring_fits) {
            return pair
                .sign(&ring::rand::SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| PkiError::SigningFailed("ECDSA signing failed"));
        }
        let len = t.ec_field_len().ok_or(mismatch.clone())?;
        let prehash = ecdsa_prehash(h, msg, len).ok_or(mismatch)?;
        let mut rng = rng()?;
        let failed = |_| PkiError::SigningFailed("ECDSA signing failed");
        Ok(match rc.as_ref() {
            EcSigner::P256(k) => {
                let s: p256::ecdsa::Signature = k
                    .sign_prehash_with_rng(&mut rng, &prehash)
                    .map_err(failed)?;
                s.to_bytes().to_vec()
            }
            EcSigner::P384(k) => {
                let s: p384::ecdsa::Signature = k
                    .sign_prehash_with_rng(&mut rng, &prehash)
                    .map_err(failed)?;
                s.to_bytes().to_vec()
            }
            EcSigner::P521(k) => {
                let s: p521::ecdsa::Signature = k
                    .sign_prehash_with_rng(&mut rng, &prehash)
                    .map_err(failed)?;
                s.to_bytes().to_vec()
            }
        })
    }
}

/// Decrypts a PEM block encrypted the legacy OpenSSL way (RFC 1421 headers):
/// the key is OpenSSL's EVP_BytesToKey with MD5, one iteration, the first
/// 8 octets of the IV as salt; the cipher is CBC with PKCS#7 padding.
fn decrypt_legacy_pem(
    block: &PemBlock,
    passphrase: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockDecryptMut, KeyIvInit};
    let dek = block
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("DEK-Info"))
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| malformed("encrypted PEM key", "no DEK-Info header"))?;
    let (cipher, iv_hex) = dek
        .split_once(',')
        .ok_or_else(|| malformed("encrypted PEM key", "DEK-Info without an IV"))?;
    let iv = hex::decode(iv_hex.trim())
        .map_err(|_| malformed("encrypted PEM key", "DEK-Info IV is not hex"))?;
    let cipher = cipher.trim().to_ascii_uppercase();
    let (key_len, iv_len) = match cipher.as_str() {
        "AES-128-CBC" => (16, 16),
        "AES-192-CBC" => (24, 16),
        "AES-256-CBC" => (32, 16),
        "DES-EDE3-CBC" => (24, 8),
        other => {
            return Err(PkiError::Unsupported(format!(
                "PEM key encryption {other} (AES-128/192/256-CBC and DES-EDE3-CBC are)"
            )));
        }
    };
    let salt = iv
        .get(..8)
        .filter(|_| iv.len() == iv_len)
        .ok_or_else(|| malformed("encrypted PEM key", "IV of the wrong length"))?;
    let pass = passphrase.ok_or(PkiError::PassphraseRequired)?;
    let key = evp_bytes_to_key_md5(pass, salt, key_len);
    let mut buf = Zeroizing::new(block.der.clone());
    let bad_len = |_| malformed("encrypted PEM key", "bad key or IV length");
    let plain_len = match key_len {
        16 if iv_len == 16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(bad_len)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(|p| p.len()),
        24 if iv_len == 16 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(bad_len)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(|p| p.len()),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(bad_len)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(|p| p.len()),
        _ => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(bad_len)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(|p| p.len()),
    }
    .map_err(|_| PkiError::BadPassphrase)?;
    buf.truncate(plain_len);
    Ok(buf)
}

/// OpenSSL's EVP_BytesToKey(MD5, salt, passphrase, count 1): D_1 =
/// MD5(passphrase | salt), D_i = MD5(D_(i-1) | passphrase | salt), their
/// concatenation cut to `len` octets.
fn evp_bytes_to_key_md5(pass: &[u8], salt: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    use md5::Digest;
    let mut out = Zeroizing::new(Vec::with_capacity(len.saturating_add(16)));
    let mut prev: Option<md5::digest::Output<md5::Md5>> = None;
    while out.len() < len {
        let mut h = md5::Md5::new();
        if let Some(p) = &prev {
            h.update(p);
        }
        h.update(pass);
        h.update(salt);
        let d = h.finalize();
        out.extend_from_slice(&d);
        prev = Some(d);
    }
    out.truncate(len);
    out
}

#[derive(Clone, Copy)]
enum DerKind {
    Pkcs1,
    Sec1,
    Pkcs8,
    EncryptedPkcs8,
}

/// One PEM block (RFC 7468, with RFC 1421 headers as OpenSSL writes them).
#[derive(Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The label, e.g. `CERTIFICATE` or `PRIVATE KEY`.
    pub label: String,
    /// RFC 1421 headers (`Proc-Type`, `DEK-Info`), in order.
    pub headers: Vec<(String, String)>,
    /// The decoded contents.
    pub der: Vec<u8>,
}

impl fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The contents may be a private key: only their length is shown.
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("headers", &self.headers)
            .field("der_len", &self.der.len())
            .finish()
    }
}

impl Drop for PemBlock {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.der);
    }
}

/// Whether `bytes` hold PEM text (a `-----BEGIN ` line) rather than DER.
pub fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Every PEM block in `text`, in order; text between blocks is ignored.
/// The base64 body may have any line length and surrounding white space;
/// a block without its END line or with bad base64 is an error.
pub fn pem_blocks(text: &[u8]) -> Result<Vec<PemBlock>, PkiError> {
    use base64::Engine as _;
    let text = std::str::from_utf8(text).map_err(|_| malformed("PEM", "not UTF-8 text"))?;
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut body = Zeroizing::new(String::new());
        let mut in_headers = true;
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            if in_headers {
                if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                    continue;
                }
                if !headers.is_empty() && l.starts_with(char::is_whitespace) {
                    continue;
                }
                if l.is_empty() {
                    continue;
                }
                in_headers = false;
            }
            body.push_str(l);
        }
        if !closed {
            return Err(malformed("PEM", format!("no END line for {label}")));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| malformed("PEM", format!("{label}: {e}")))?;
        out.push(PemBlock {
            label: label.to_string(),
            headers,
            der,
        });
    }
    Ok(out)
}
