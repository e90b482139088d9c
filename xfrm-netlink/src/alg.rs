//! IPsec algorithms, their kernel names and keys.

use std::fmt;

use netlink_packet_xfrm as nx;
use zeroize::Zeroizing;

use crate::error::Error;

/// Secret key material. The bytes are zeroized when the key is dropped; its
/// `Debug` output shows only the length.
#[derive(Clone)]
pub struct Key(Zeroizing<Vec<u8>>);

impl Key {
    /// Takes ownership of the bytes (no copy is left behind).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies the bytes; the caller keeps (and should zeroize) its copy.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Key {
    fn from(v: Vec<u8>) -> Self {
        Self::new(v)
    }
}

impl From<Zeroizing<Vec<u8>>> for Key {
    fn from(v: Zeroizing<Vec<u8>>) -> Self {
        Self(v)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} octets, redacted)", self.0.len())
    }
}

/// The three AES key sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AesKey {
    /// 128-bit key.
    Aes128,
    /// 192-bit key.
    Aes192,
    /// 256-bit key.
    Aes256,
}

impl AesKey {
    /// From a key length in bits (128, 192 or 256).
    pub fn from_bits(bits: u16) -> Option<Self> {
        match bits {
            128 => Some(Self::Aes128),
            192 => Some(Self::Aes192),
            256 => Some(Self::Aes256),
            _ => None,
        }
    }

    /// Key length in octets.
    pub fn octets(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }
}

/// The ICV lengths of AES-GCM (RFC 4106) and AES-CCM (RFC 4309) in ESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icv {
    /// 8 octets.
    Icv8,
    /// 12 octets.
    Icv12,
    /// 16 octets.
    Icv16,
}

impl Icv {
    /// Length in bits.
    pub fn bits(self) -> u32 {
        match self {
            Self::Icv8 => 64,
            Self::Icv12 => 96,
            Self::Icv16 => 128,
        }
    }
}

/// AEAD algorithms (ESP only). Keys carry the salt appended, as RFC 4106,
/// 4309, 4543 and 7634 derive them from KEYMAT: 4 octets, 3 for CCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AeadAlg {
    /// AES-GCM (RFC 4106).
    AesGcm(AesKey, Icv),
    /// AES-CCM (RFC 4309).
    AesCcm(AesKey, Icv),
    /// AES-GMAC (RFC 4543): authentication only, the payload in clear; its
    /// ICV is always 16 octets.
    AesGmac(AesKey),
    /// ChaCha20-Poly1305 (RFC 7634; key + salt: 36 octets).
    ChaCha20Poly1305,
}

impl AeadAlg {
    /// The kernel's algorithm name.
    pub fn kernel_name(self) -> &'static str {
        match self {
            AeadAlg::AesGcm(..) => "rfc4106(gcm(aes))",
            AeadAlg::AesCcm(..) => "rfc4309(ccm(aes))",
            AeadAlg::AesGmac(_) => "rfc4543(gcm(aes))",
            AeadAlg::ChaCha20Poly1305 => "rfc7539esp(chacha20,poly1305)",
        }
    }

    /// Key length including the salt, in octets.
    pub fn key_len(self) -> usize {
        match self {
            AeadAlg::AesGcm(k, _) | AeadAlg::AesGmac(k) => k.octets().saturating_add(4),
            AeadAlg::AesCcm(k, _) => k.octets().saturating_add(3),
            AeadAlg::ChaCha20Poly1305 => 32 + 4,
        }
    }

    /// ICV length in bits.
    pub fn icv_bits(self) -> u32 {
        match self {
            AeadAlg::AesGcm(_, icv) | AeadAlg::AesCcm(_, icv) => icv.bits(),
            AeadAlg::AesGmac(_) | AeadAlg::ChaCha20Poly1305 => 128,
        }
    }

    /// Kernel crypto modules the algorithm needs.
    pub fn kernel_modules(self) -> &'static str {
        match self {
            AeadAlg::AesGcm(..) | AeadAlg::AesGmac(_) => "gcm, aes",
            AeadAlg::AesCcm(..) => "ccm, aes",
            AeadAlg::ChaCha20Poly1305 => "chacha20poly1305, chacha20, poly1305",
        }
    }
}

/// Ciphers for ESP with a separate integrity algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherAlg {
    /// AES-CBC (RFC 3602).
    AesCbc(AesKey),
    /// AES-CTR (RFC 3686): the key is followed by a 4-octet nonce.
    AesCtr(AesKey),
    /// 3DES-CBC (RFC 2451): a 192-bit key.
    TripleDesCbc,
    /// NULL encryption (RFC 2410): no key, the payload in clear.
    Null,
}

impl CipherAlg {
    /// The kernel's algorithm name.
    pub fn kernel_name(self) -> &'static str {
        match self {
            CipherAlg::AesCbc(_) => "cbc(aes)",
            CipherAlg::AesCtr(_) => "rfc3686(ctr(aes))",
            CipherAlg::TripleDesCbc => "cbc(des3_ede)",
            CipherAlg::Null => "ecb(cipher_null)",
        }
    }

    /// Key length in octets (AES-CTR's includes its nonce).
    pub fn key_len(self) -> usize {
        match self {
            CipherAlg::AesCbc(k) => k.octets(),
            CipherAlg::AesCtr(k) => k.octets().saturating_add(4),
            CipherAlg::TripleDesCbc => 24,
            CipherAlg::Null => 0,
        }
    }

    /// Kernel crypto modules the cipher needs.
    pub fn kernel_modules(self) -> &'static str {
        match self {
            CipherAlg::AesCbc(_) => "cbc, aes",
            CipherAlg::AesCtr(_) => "ctr, aes",
            CipherAlg::TripleDesCbc => "cbc, des3_ede (des)",
            CipherAlg::Null => "crypto_null",
        }
    }
}

/// Integrity algorithms (ESP with a cipher, or AH), sent as
/// `XFRMA_ALG_AUTH_TRUNC` with the RFC truncation length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrityAlg {
    /// HMAC-MD5-96 (RFC 2403): 128-bit key, 96-bit ICV.
    HmacMd5_96,
    /// HMAC-MD5-128 (RFC 4595, Fibre Channel): 128-bit key, 128-bit ICV.
    HmacMd5_128,
    /// HMAC-SHA1-96 (RFC 2404): 160-bit key, 96-bit ICV.
    HmacSha1_96,
    /// HMAC-SHA1-160 (RFC 4595): 160-bit key, 160-bit ICV.
    HmacSha1_160,
    /// HMAC-SHA2-256 truncated to 96 bits: the pre-RFC 4868 Linux default
    /// (strongSwan's `sha256_96`): 256-bit key.
    HmacSha256_96,
    /// HMAC-SHA2-256-128 (RFC 4868): 256-bit key, 128-bit ICV.
    HmacSha256_128,
    /// HMAC-SHA2-384-192 (RFC 4868): 384-bit key, 192-bit ICV.
    HmacSha384_192,
    /// HMAC-SHA2-512-256 (RFC 4868): 512-bit key, 256-bit ICV.
    HmacSha512_256,
    /// AES-XCBC-MAC-96 (RFC 3566): 128-bit key, 96-bit ICV.
    AesXcbc96,
    /// AES-CMAC-96 (RFC 4494): 128-bit key, 96-bit ICV.
    AesCmac96,
}

impl IntegrityAlg {
    /// The kernel's algorithm name.
    pub fn kernel_name(self) -> &'static str {
        match self {
            IntegrityAlg::HmacMd5_96 | IntegrityAlg::HmacMd5_128 => "hmac(md5)",
            IntegrityAlg::HmacSha1_96 | IntegrityAlg::HmacSha1_160 => "hmac(sha1)",
            IntegrityAlg::HmacSha256_96 | IntegrityAlg::HmacSha256_128 => "hmac(sha256)",
            IntegrityAlg::HmacSha384_192 => "hmac(sha384)",
            IntegrityAlg::HmacSha512_256 => "hmac(sha512)",
            IntegrityAlg::AesXcbc96 => "xcbc(aes)",
            IntegrityAlg::AesCmac96 => "cmac(aes)",
        }
    }

    /// Key length in octets.
    pub fn key_len(self) -> usize {
        match self {
            IntegrityAlg::HmacMd5_96
            | IntegrityAlg::HmacMd5_128
            | IntegrityAlg::AesXcbc96
            | IntegrityAlg::AesCmac96 => 16,
            IntegrityAlg::HmacSha1_96 | IntegrityAlg::HmacSha1_160 => 20,
            IntegrityAlg::HmacSha256_96 | IntegrityAlg::HmacSha256_128 => 32,
            IntegrityAlg::HmacSha384_192 => 48,
            IntegrityAlg::HmacSha512_256 => 64,
        }
    }

    /// Truncation (ICV) length in bits.
    pub fn trunc_bits(self) -> u32 {
        match self {
            IntegrityAlg::HmacMd5_96
            | IntegrityAlg::HmacSha1_96
            | IntegrityAlg::HmacSha256_96
            | IntegrityAlg::AesXcbc96
            | IntegrityAlg::AesCmac96 => 96,
            IntegrityAlg::HmacMd5_128 | IntegrityAlg::HmacSha256_128 => 128,
            IntegrityAlg::HmacSha1_160 => 160,
            IntegrityAlg::HmacSha384_192 => 192,
            IntegrityAlg::HmacSha512_256 => 256,
        }
    }

    /// Kernel crypto modules the algorithm needs.
    pub fn kernel_modules(self) -> &'static str {
        match self {
            IntegrityAlg::HmacMd5_96 | IntegrityAlg::HmacMd5_128 => "hmac, md5",
            IntegrityAlg::HmacSha1_96 | IntegrityAlg::HmacSha1_160 => "hmac, sha1",
            IntegrityAlg::HmacSha256_96 | IntegrityAlg::HmacSha256_128 => "hmac, sha256",
            IntegrityAlg::HmacSha384_192 | IntegrityAlg::HmacSha512_256 => "hmac, sha512",
            IntegrityAlg::AesXcbc96 => "xcbc, aes",
            IntegrityAlg::AesCmac96 => "cmac, aes",
        }
    }
}

/// A compression algorithm of IPComp (RFC 3173).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompAlg {
    /// DEFLATE (RFC 2394; IKEv2 IPComp transform 2), the kernel's
    /// `deflate`.
    Deflate,
}

impl CompAlg {
    /// The kernel's name.
    pub fn kernel_name(self) -> &'static str {
        match self {
            CompAlg::Deflate => "deflate",
        }
    }
}

/// The transforms of an SA with their keys.
#[derive(Debug, Clone)]
pub enum Transforms {
    /// An AEAD (ESP only).
    Aead {
        /// Algorithm.
        alg: AeadAlg,
        /// Key with the salt appended.
        key: Key,
    },
    /// A cipher plus an integrity algorithm (ESP only).
    CipherIntegrity {
        /// Cipher.
        cipher: CipherAlg,
        /// Cipher key.
        cipher_key: Key,
        /// Integrity algorithm.
        integrity: IntegrityAlg,
        /// Integrity key.
        integrity_key: Key,
    },
    /// Integrity only (AH).
    IntegrityOnly {
        /// Integrity algorithm.
        integrity: IntegrityAlg,
        /// Integrity key.
        integrity_key: Key,
    },
    /// Compression (IPComp), no key.
    Compression {
        /// Algorithm.
        alg: CompAlg,
    },
}

fn check_len(alg: &'static str, expected: usize, key: &Key) -> Result<(), Error> {
    if key.len() == expected {
        Ok(())
    } else {
        Err(Error::KeyLength {
            alg,
            expected,
            got: key.len(),
        })
    }
}

fn name_bytes(name: &str) -> [u8; nx::XFRM_ALG_NAME_LEN] {
    let mut out = [0u8; nx::XFRM_ALG_NAME_LEN];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b;
    }
    out
}

fn key_bits(key: &Key) -> u32 {
    u32::try_from(key.len().saturating_mul(8)).unwrap_or(u32::MAX)
}

impl Transforms {
    /// Checks that the transforms fit the protocol and the keys their
    /// algorithms.
    pub(crate) fn validate(&self, proto: crate::Protocol) -> Result<(), Error> {
        match (self, proto) {
            (Transforms::Aead { alg, key }, crate::Protocol::Esp) => {
                check_len(alg.kernel_name(), alg.key_len(), key)
            }
            (
                Transforms::CipherIntegrity {
                    cipher,
                    cipher_key,
                    integrity,
                    integrity_key,
                },
                crate::Protocol::Esp,
            ) => {
                check_len(cipher.kernel_name(), cipher.key_len(), cipher_key)?;
                check_len(integrity.kernel_name(), integrity.key_len(), integrity_key)
            }
            (
                Transforms::IntegrityOnly {
                    integrity,
                    integrity_key,
                },
                crate::Protocol::Ah,
            ) => check_len(integrity.kernel_name(), integrity.key_len(), integrity_key),
            (Transforms::Compression { .. }, crate::Protocol::Comp) => Ok(()),
            (t, p) => Err(Error::InvalidArgument(format!(
                "{} cannot be used with {p}",
                t.describe()
            ))),
        }
    }

    /// The netlink attributes (keys copied in; the caller scrubs them).
    pub(crate) fn to_attrs(&self) -> Vec<nx::XfrmAttrs> {
        match self {
            Transforms::Aead { alg, key } => vec![nx::XfrmAttrs::EncryptionAlgAead(nx::AlgAead {
                alg_name: name_bytes(alg.kernel_name()),
                alg_key_len: key_bits(key),
                alg_icv_len: alg.icv_bits(),
                alg_key: key.as_bytes().to_vec(),
            })],
            Transforms::CipherIntegrity {
                cipher,
                cipher_key,
                integrity,
                integrity_key,
            } => vec![
                nx::XfrmAttrs::EncryptionAlg(nx::Alg {
                    alg_name: name_bytes(cipher.kernel_name()),
                    alg_key_len: key_bits(cipher_key),
                    alg_key: cipher_key.as_bytes().to_vec(),
                }),
                auth_attr(*integrity, integrity_key),
            ],
            Transforms::IntegrityOnly {
                integrity,
                integrity_key,
            } => vec![auth_attr(*integrity, integrity_key)],
            Transforms::Compression { alg } => vec![nx::XfrmAttrs::CompressionAlg(nx::Alg {
                alg_name: name_bytes(alg.kernel_name()),
                alg_key_len: 0,
                alg_key: Vec::new(),
            })],
        }
    }

    /// Algorithm names and key lengths, for messages (never the keys).
    pub fn describe(&self) -> String {
        match self {
            Transforms::Aead { alg, key } => format!(
                "{} (key {} bits incl. 32-bit salt, ICV {} bits)",
                alg.kernel_name(),
                key_bits(key),
                alg.icv_bits()
            ),
            Transforms::CipherIntegrity {
                cipher,
                cipher_key,
                integrity,
                integrity_key,
            } => format!(
                "{} (key {} bits) + {} (key {} bits, truncated to {} bits)",
                cipher.kernel_name(),
                key_bits(cipher_key),
                integrity.kernel_name(),
                key_bits(integrity_key),
                integrity.trunc_bits()
            ),
            Transforms::IntegrityOnly {
                integrity,
                integrity_key,
            } => format!(
                "{} (key {} bits, truncated to {} bits)",
                integrity.kernel_name(),
                key_bits(integrity_key),
                integrity.trunc_bits()
            ),
            Transforms::Compression { alg } => alg.kernel_name().to_owned(),
        }
    }

    /// Names of the algorithms and the kernel modules they need, for the
    /// "algorithm missing" message.
    pub(crate) fn names_and_modules(&self) -> (String, String) {
        match self {
            Transforms::Aead { alg, .. } => (
                alg.kernel_name().to_owned(),
                alg.kernel_modules().to_owned(),
            ),
            Transforms::CipherIntegrity {
                cipher, integrity, ..
            } => (
                format!("{} + {}", cipher.kernel_name(), integrity.kernel_name()),
                format!(
                    "authenc, {}, {}",
                    cipher.kernel_modules(),
                    integrity.kernel_modules()
                ),
            ),
            Transforms::IntegrityOnly { integrity, .. } => (
                integrity.kernel_name().to_owned(),
                integrity.kernel_modules().to_owned(),
            ),
            Transforms::Compression { alg } => (
                alg.kernel_name().to_owned(),
                format!("{}, xfrm_ipcomp", alg.kernel_name()),
            ),
        }
    }
}

fn auth_attr(integrity: IntegrityAlg, key: &Key) -> nx::XfrmAttrs {
    nx::XfrmAttrs::AuthenticationAlgTrunc(nx::AlgAuth {
        alg_name: name_bytes(integrity.kernel_name()),
        alg_key_len: key_bits(key),
        alg_trunc_len: integrity.trunc_bits(),
        alg_key: key.as_bytes().to_vec(),
    })
}

/// One algorithm of an SA as the kernel reports it (never its key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlgInfo {
    /// Kernel name, e.g. `rfc4106(gcm(aes))`.
    pub name: String,
    /// Key length in bits (for AEADs including the salt).
    pub key_bits: u32,
    /// ICV (AEAD) or truncation (integrity) length in bits; 0 for a cipher
    /// or when the kernel did not say.
    pub icv_bits: u32,
}

/// The algorithms of an SA read back from the kernel. Keys are never
/// returned: they are zeroized on receipt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlgNames {
    /// AEAD, if any.
    pub aead: Option<AlgInfo>,
    /// Cipher, if any.
    pub cipher: Option<AlgInfo>,
    /// Integrity algorithm, if any.
    pub integrity: Option<AlgInfo>,
    /// Compression algorithm (IPComp), if any.
    pub compression: Option<AlgInfo>,
}

/// Reads a NUL-terminated algorithm name.
pub(crate) fn name_from_kernel(raw: &[u8]) -> String {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(raw.get(..end).unwrap_or(&[])).into_owned()
}
