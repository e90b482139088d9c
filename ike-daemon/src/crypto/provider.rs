//! The [`CryptoProvider`] trait and its two implementations:
//! [`DefaultProvider`] (ring and RustCrypto, OS randomness) and
//! [`DeterministicProvider`] (everything random derived from a seed, so that
//! tests can replay whole exchanges byte for byte).

use core::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ring::hmac;
use ring::rand::SecureRandom;

use super::ke::{FixedEcdh, FixedX25519, KeyExchange, RingEcdh, unsupported};
use super::modp::{EXPONENT_LEN, modp_key_exchange};
use super::prf::{HmacPrf, Prf};
use super::sk::SkCipher;
use super::suite::IkeSuite;
use super::{CryptoError, Secret, encr};
use crate::wire::codes::{EncrId, IntegId, KeId, PrfId};

/// A source of random octets (nonces, SPIs, IVs, private keys).
pub trait RandomSource: Send + Sync + fmt::Debug {
    /// Fills `out` entirely.
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError>;
}

/// What a provider implements, for proposal building and selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Algorithms {
    /// SK encryption: ID and key length in bits (`None`: no Key Length attribute).
    pub encr: &'static [(EncrId, Option<u16>)],
    /// SK integrity (for the non-AEAD ciphers).
    pub integ: &'static [IntegId],
    /// Pseudorandom functions.
    pub prf: &'static [PrfId],
    /// Key exchange methods.
    pub ke: &'static [KeId],
}

impl Algorithms {
    /// Whether every algorithm of `suite` is listed here and they go
    /// together (AEAD without integrity, CBC with one).
    pub fn supports(&self, suite: &IkeSuite) -> bool {
        let Ok(e) = encr::ike_encr(suite) else {
            return false;
        };
        encr::ike_integ(suite, &e).is_ok()
            && self.encr.contains(&(suite.encr, suite.encr_key_bits))
            && suite
                .integ
                .is_none_or(|i| i == IntegId::NONE || self.integ.contains(&i))
            && self.prf.contains(&suite.prf)
            && self.ke.contains(&suite.ke)
    }
}

/// Everything both providers here implement.
pub const ALGORITHMS: Algorithms = Algorithms {
    encr: &[
        (EncrId::AES_GCM_16, Some(256)),
        (EncrId::AES_GCM_16, Some(128)),
        (EncrId::CHACHA20_POLY1305, None),
        (EncrId::AES_CBC, Some(256)),
        (EncrId::AES_CBC, Some(192)),
        (EncrId::AES_CBC, Some(128)),
    ],
    integ: &[
        IntegId::HMAC_SHA2_256_128,
        IntegId::HMAC_SHA2_384_192,
        IntegId::HMAC_SHA2_512_256,
        IntegId::HMAC_SHA1_96,
    ],
    prf: &[
        PrfId::HMAC_SHA2_256,
        PrfId::HMAC_SHA2_384,
        PrfId::HMAC_SHA2_512,
        PrfId::HMAC_SHA1,
    ],
    ke: &[
        KeId::CURVE25519,
        KeId::ECP_256,
        KeId::ECP_384,
        KeId::MODP_2048,
        KeId::MODP_3072,
        KeId::MODP_4096,
    ],
};

/// The cryptography IKEv2 needs, as algorithm objects chosen by IANA ID.
/// Object safe: the daemon holds an `Arc<dyn CryptoProvider>`.
pub trait CryptoProvider: Send + Sync + fmt::Debug {
    /// Fills `out` with random octets (nonces, SPIs).
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError>;

    /// Initiator side of a key exchange: a fresh private value for `ke`.
    fn start_key_exchange(&self, ke: KeId) -> Result<Box<dyn KeyExchange>, CryptoError>;

    /// Responder side: from the peer's Key Exchange Data, our own Key
    /// Exchange Data and the shared secret. (For a KEM: encapsulation.)
    fn respond_key_exchange(
        &self,
        ke: KeId,
        peer_value: &[u8],
    ) -> Result<(Vec<u8>, Secret), CryptoError> {
        let ours = self.start_key_exchange(ke)?;
        let public = ours.public_value().to_vec();
        Ok((public, ours.complete(peer_value)?))
    }

    /// The pseudorandom function `prf`.
    fn prf(&self, prf: PrfId) -> Result<Box<dyn Prf>, CryptoError>;

    /// SK protection for one direction, from the suite and that direction's
    /// SK_e and SK_a (empty for AEAD suites).
    fn sk_cipher(
        &self,
        suite: &IkeSuite,
        encr_key: &[u8],
        integ_key: &[u8],
    ) -> Result<Box<dyn SkCipher>, CryptoError>;

    /// The algorithms implemented.
    fn supported(&self) -> Algorithms;

    /// `len` random octets.
    fn random_vec(&self, len: usize) -> Result<Vec<u8>, CryptoError> {
        let mut v = vec![0; len];
        self.fill_random(&mut v)?;
        Ok(v)
    }
}

// ------------------------------------------------------------- default

/// The OS random source through ring.
#[derive(Debug)]
pub struct SystemRandomSource(ring::rand::SystemRandom);

impl SystemRandomSource {
    /// The OS random source.
    pub fn new() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl Default for SystemRandomSource {
    fn default() -> Self {
        Self::new()
    }
}

impl RandomSource for SystemRandomSource {
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.0.fill(out).map_err(|_| CryptoError::Random)
    }
}

/// The provider for production: ring for the curves, AEADs, HMAC and
/// randomness; RustCrypto for AES-CBC and the MODP groups.
#[derive(Debug, Clone)]
pub struct DefaultProvider {
    rng: Arc<SystemRandomSource>,
}

impl DefaultProvider {
    /// A provider drawing on the OS random source.
    pub fn new() -> Self {
        Self {
            rng: Arc::new(SystemRandomSource::default()),
        }
    }
}

impl Default for DefaultProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl CryptoProvider for DefaultProvider {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.rng.fill(out)
    }

    fn start_key_exchange(&self, ke: KeId) -> Result<Box<dyn KeyExchange>, CryptoError> {
        match ke {
            KeId::CURVE25519 | KeId::ECP_256 | KeId::ECP_384 => {
                Ok(Box::new(RingEcdh::generate(ke, &self.rng.0)?))
            }
            KeId::MODP_2048 | KeId::MODP_3072 | KeId::MODP_4096 => {
                let mut x = zeroize::Zeroizing::new([0u8; EXPONENT_LEN]);
                self.rng.fill(&mut *x)?;
                modp_key_exchange(ke, &x)
            }
            _ => Err(unsupported(ke)),
        }
    }

    fn prf(&self, prf: PrfId) -> Result<Box<dyn Prf>, CryptoError> {
        Ok(Box::new(HmacPrf::new(prf)?))
    }

    fn sk_cipher(
        &self,
        suite: &IkeSuite,
        encr_key: &[u8],
        integ_key: &[u8],
    ) -> Result<Box<dyn SkCipher>, CryptoError> {
        encr::new_sk_cipher(suite, encr_key, integ_key, self.rng.clone())
    }

    fn supported(&self) -> Algorithms {
        ALGORITHMS
    }
}

// -------------------------------------------------------- deterministic

/// One stream of a deterministic generator: call `n` of `fill` yields
/// `HMAC-SHA256(K, n | 1) | HMAC-SHA256(K, n | 2) | ...` (n as 8 octets, the
/// block index as 4), where `K = HMAC-SHA256(seed, "iked drbg" | label)`.
/// This is a counter-mode KDF (NIST SP 800-108) over the seed: every stream
/// and every call is independent of the others, and thread-safe.
pub struct DrbgStream {
    key: hmac::Key,
    label: String,
    calls: AtomicU64,
}

impl DrbgStream {
    /// The stream `label` of `seed`.
    pub fn new(seed: &[u8], label: &str) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, seed);
        let k = hmac::sign(&root, &[b"iked drbg".as_slice(), label.as_bytes()].concat());
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
            label: label.to_string(),
            calls: AtomicU64::new(0),
        }
    }
}

impl fmt::Debug for DrbgStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DrbgStream({:?}, {} calls)",
            self.label,
            self.calls.load(Ordering::Relaxed)
        )
    }
}

impl RandomSource for DrbgStream {
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        for (i, chunk) in out.chunks_mut(32).enumerate() {
            let i = u32::try_from(i).map_err(|_| CryptoError::Random)?;
            let mut ctx = hmac::Context::with_key(&self.key);
            ctx.update(&n.to_be_bytes());
            ctx.update(&i.saturating_add(1).to_be_bytes());
            let block = ctx.sign();
            chunk.copy_from_slice(
                block
                    .as_ref()
                    .get(..chunk.len())
                    .ok_or(CryptoError::Random)?,
            );
        }
        Ok(())
    }
}

/// A provider for tests whose randomness and key exchange private keys all
/// come from a seed: the same seed and the same calls give the same nonces,
/// SPIs, public values, IVs and messages.
///
/// Its secrets are as guessable as its seed: never use it for real traffic.
/// Streams: `"random"` for [`CryptoProvider::fill_random`], `"ke"` for
/// private keys, and `"iv/<n>"` for the n-th SK cipher built. The curves are
/// RustCrypto's (x25519-dalek, p256, p384), since ring's private keys cannot
/// be given from outside.
pub struct DeterministicProvider {
    seed: Vec<u8>,
    random: DrbgStream,
    ke: DrbgStream,
    ciphers: AtomicU64,
}

impl fmt::Debug for DeterministicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeterministicProvider")
            .field("random", &self.random)
            .field("ke", &self.ke)
            .finish_non_exhaustive()
    }
}

impl DeterministicProvider {
    /// A provider seeded with `seed`.
    pub fn new(seed: &[u8]) -> Self {
        Self {
            seed: seed.to_vec(),
            random: DrbgStream::new(seed, "random"),
            ke: DrbgStream::new(seed, "ke"),
            ciphers: AtomicU64::new(0),
        }
    }

    fn ec<C>(&self, len: usize) -> Result<Box<dyn KeyExchange>, CryptoError>
    where
        C: super::ke::EcCurve,
        p256::elliptic_curve::FieldBytesSize<C>: p256::elliptic_curve::sec1::ModulusSize,
        p256::elliptic_curve::AffinePoint<C>: p256::elliptic_curve::sec1::FromEncodedPoint<C>
            + p256::elliptic_curve::sec1::ToEncodedPoint<C>,
    {
        // Draw until the scalar is in [1, n-1]; for P-256 and P-384 a draw
        // fails with probability below 2^-32, so 16 failures mean a broken seed.
        for _ in 0..16 {
            let mut d = zeroize::Zeroizing::new(vec![0u8; len]);
            self.ke.fill(&mut d)?;
            if let Some(k) = FixedEcdh::<C>::new(&d) {
                return Ok(Box::new(k));
            }
        }
        Err(CryptoError::Random)
    }
}

impl CryptoProvider for DeterministicProvider {
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.random.fill(out)
    }

    fn start_key_exchange(&self, ke: KeId) -> Result<Box<dyn KeyExchange>, CryptoError> {
        match ke {
            KeId::CURVE25519 => {
                let mut d = zeroize::Zeroizing::new([0u8; 32]);
                self.ke.fill(&mut *d)?;
                Ok(Box::new(FixedX25519::new(*d)))
            }
            KeId::ECP_256 => self.ec::<p256::NistP256>(32),
            KeId::ECP_384 => self.ec::<p384::NistP384>(48),
            KeId::MODP_2048 | KeId::MODP_3072 | KeId::MODP_4096 => {
                let mut x = zeroize::Zeroizing::new([0u8; EXPONENT_LEN]);
                self.ke.fill(&mut *x)?;
                modp_key_exchange(ke, &x)
            }
            _ => Err(unsupported(ke)),
        }
    }

    fn prf(&self, prf: PrfId) -> Result<Box<dyn Prf>, CryptoError> {
        Ok(Box::new(HmacPrf::new(prf)?))
    }

    fn sk_cipher(
        &self,
        suite: &IkeSuite,
        encr_key: &[u8],
        integ_key: &[u8],
    ) -> Result<Box<dyn SkCipher>, CryptoError> {
        let n = self.ciphers.fetch_add(1, Ordering::Relaxed);
        let ivs = Arc::new(DrbgStream::new(&self.seed, &format!("iv/{n}")));
        encr::new_sk_cipher(suite, encr_key, integ_key, ivs)
    }

    fn supported(&self) -> Algorithms {
        ALGORITHMS
    }
}
