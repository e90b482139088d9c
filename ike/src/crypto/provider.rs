//! The [`CryptoProvider`] trait and its two implementations:
//! [`DefaultProvider`] (ring and RustCrypto, OS randomness) and
//! [`DeterministicProvider`] (everything random derived from a seed, so that
//! tests can replay whole exchanges byte for byte).

use core::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ring::hmac;
use ring::rand::SecureRandom;

use super::ke::{FixedEcdh, FixedX25519, KeyExchange, RingEcdh, p521_from, unsupported};
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
        (EncrId::AES_GCM_16, Some(192)),
        (EncrId::AES_CCM_16, Some(256)),
        (EncrId::AES_CCM_16, Some(192)),
        (EncrId::AES_CCM_16, Some(128)),
        (EncrId::AES_GCM_12, Some(256)),
        (EncrId::AES_GCM_12, Some(192)),
        (EncrId::AES_GCM_12, Some(128)),
        (EncrId::AES_CCM_12, Some(256)),
        (EncrId::AES_CCM_12, Some(192)),
        (EncrId::AES_CCM_12, Some(128)),
        (EncrId::AES_CCM_8, Some(256)),
        (EncrId::AES_CCM_8, Some(192)),
        (EncrId::AES_CCM_8, Some(128)),
        (EncrId::AES_CBC, Some(256)),
        (EncrId::AES_CBC, Some(192)),
        (EncrId::AES_CBC, Some(128)),
        (EncrId::AES_CTR, Some(256)),
        (EncrId::AES_CTR, Some(192)),
        (EncrId::AES_CTR, Some(128)),
        (EncrId::TRIPLE_DES, None),
    ],
    integ: &[
        IntegId::HMAC_SHA2_256_128,
        IntegId::HMAC_SHA2_384_192,
        IntegId::HMAC_SHA2_512_256,
        IntegId::AES_XCBC_96,
        IntegId::AES_CMAC_96,
        IntegId::HMAC_SHA1_96,
        IntegId::HMAC_MD5_96,
    ],
    prf: &[
        PrfId::HMAC_SHA2_256,
        PrfId::HMAC_SHA2_384,
        PrfId::HMAC_SHA2_512,
        PrfId::AES128_XCBC,
        PrfId::AES128_CMAC,
        PrfId::HMAC_SHA1,
        PrfId::HMAC_MD5,
    ],
    ke: &[
        KeId::CURVE25519,
        KeId::ECP_256,
        KeId::ECP_384,
        KeId::ECP_521,
        KeId::MODP_2048,
        KeId::MODP_3072,
        KeId::MODP_4096,
        KeId::MODP_6144,
        KeId::MODP_8192,
        KeId::MODP_1536,
        KeId::MODP_1024,
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
            KeId::ECP_521 => p521_from(&|out: &mut [u8]| self.rng.fill(out)),
            KeId::MODP_1024
            | KeId::MODP_1536
            | KeId::MODP_2048
            | KeId::MODP_3072
            | KeId::MODP_4096
            | KeId::MODP_6144
            | KeId::MODP_8192 => {
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
            KeId::ECP_521 => p521_from(&|out: &mut [u8]| self.ke.fill(out)),
            KeId::MODP_1024
            | KeId::MODP_1536
            | KeId::MODP_2048
            | KeId::MODP_3072
            | KeId::MODP_4096
            | KeId::MODP_6144
            | KeId::MODP_8192 => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keymat::{IkeKeys, skeyseed};

    fn all_ke() -> &'static [KeId] {
        ALGORITHMS.ke
    }

    #[test]
    // Sharing across threads is what this shows (ike/clippy.toml forbids
    // threads outside tests).
    #[allow(clippy::disallowed_methods)]
    fn providers_are_object_safe_and_shareable() {
        let ps: Vec<Arc<dyn CryptoProvider>> = vec![
            Arc::new(DefaultProvider::new()),
            Arc::new(DeterministicProvider::new(b"x")),
        ];
        for p in ps {
            let q = p.clone();
            std::thread::spawn(move || q.random_vec(8).unwrap())
                .join()
                .unwrap();
            assert_eq!(p.supported(), ALGORITHMS);
        }
    }

    /// Initiator and responder sides agree for every method, with either
    /// provider on either side.
    #[test]
    fn key_exchange_agreement_every_method() {
        let d = DefaultProvider::new();
        let t = DeterministicProvider::new(b"agree");
        let ps: [&dyn CryptoProvider; 2] = [&d, &t];
        for &ke in all_ke() {
            for i in ps {
                for r in ps {
                    let ini = i.start_key_exchange(ke).unwrap();
                    assert_eq!(ini.method(), ke);
                    let len = crate::crypto::ke::public_value_len(ke).unwrap();
                    assert_eq!(ini.public_value().len(), len);
                    let (resp_pub, k_r) = r.respond_key_exchange(ke, ini.public_value()).unwrap();
                    assert_eq!(resp_pub.len(), len);
                    let k_i = ini.complete(&resp_pub).unwrap();
                    assert_eq!(k_i.as_bytes(), k_r.as_bytes(), "{ke}");
                    assert!(!k_i.is_empty());
                }
            }
            // The responder validates too.
            assert!(matches!(
                d.respond_key_exchange(ke, &[1, 2, 3]),
                Err(CryptoError::InvalidPublicValue { .. })
            ));
        }
    }

    #[test]
    fn unknown_methods_and_prfs_are_unsupported() {
        let d = DefaultProvider::new();
        let t = DeterministicProvider::new(b"u");
        for p in [&d as &dyn CryptoProvider, &t] {
            for ke in [
                KeId::MODP_768,
                KeId::BRAINPOOL_P256R1,
                KeId::CURVE448,
                KeId::ML_KEM_768,
                KeId::NONE,
            ] {
                assert!(matches!(
                    p.start_key_exchange(ke),
                    Err(CryptoError::Unsupported(m)) if m.contains(&ke.to_string())
                ));
            }
            assert!(
                matches!(p.prf(PrfId::HMAC_TIGER), Err(CryptoError::Unsupported(m)) if m.contains("TIGER"))
            );
            assert_eq!(p.prf(PrfId::AES128_CMAC).unwrap().output_len(), 16);
            assert_eq!(p.prf(PrfId::HMAC_SHA2_384).unwrap().output_len(), 48);
        }
    }

    #[test]
    fn default_randomness_differs() {
        let d = DefaultProvider::new();
        assert_ne!(d.random_vec(32).unwrap(), d.random_vec(32).unwrap());
        let a = d.start_key_exchange(KeId::CURVE25519).unwrap();
        let b = d.start_key_exchange(KeId::CURVE25519).unwrap();
        assert_ne!(a.public_value(), b.public_value());
    }

    /// Everything a replayed exchange draws, in one order.
    fn transcript(p: &dyn CryptoProvider) -> Vec<Vec<u8>> {
        let mut out = vec![
            p.random_vec(32).unwrap(),
            p.random_vec(8).unwrap(),
            p.random_vec(100).unwrap(),
        ];
        for &ke in all_ke() {
            out.push(p.start_key_exchange(ke).unwrap().public_value().to_vec());
        }
        let suite = IkeSuite {
            encr: EncrId::AES_CBC,
            encr_key_bits: Some(128),
            integ: Some(IntegId::HMAC_SHA2_256_128),
            prf: PrfId::HMAC_SHA2_256,
            ke: KeId::CURVE25519,
        };
        let mut c = p.sk_cipher(&suite, &[1; 16], &[2; 32]).unwrap();
        let mut msg = b"hdr".to_vec();
        c.seal(&mut msg, b"payloads").unwrap();
        out.push(msg);
        out
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = transcript(&DeterministicProvider::new(b"seed one"));
        let b = transcript(&DeterministicProvider::new(b"seed one"));
        assert_eq!(a, b);
        let c = transcript(&DeterministicProvider::new(b"seed two"));
        for (x, y) in a.iter().zip(&c) {
            assert_ne!(x, y);
        }
        // Successive draws differ; the streams are independent.
        let p = DeterministicProvider::new(b"seed one");
        assert_ne!(p.random_vec(32).unwrap(), p.random_vec(32).unwrap());
        let q = DeterministicProvider::new(b"seed one");
        let _ = q.start_key_exchange(KeId::ECP_256).unwrap();
        assert_eq!(
            q.random_vec(32).unwrap(),
            a[0],
            "KE draws do not shift nonces"
        );
    }

    #[test]
    fn drbg_stream_blocks() {
        // Call n, block i: HMAC-SHA256(K, n as 8 octets | i+1 as 4 octets).
        let s = DrbgStream::new(b"s", "l");
        let mut first = [0u8; 40];
        s.fill(&mut first).unwrap();
        let root = hmac::Key::new(hmac::HMAC_SHA256, b"s");
        let k = hmac::sign(&root, b"iked drbgl");
        let k = hmac::Key::new(hmac::HMAC_SHA256, k.as_ref());
        let b0 = hmac::sign(&k, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let b1 = hmac::sign(&k, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&first[..32], b0.as_ref());
        assert_eq!(&first[32..], &b1.as_ref()[..8]);
        let mut second = [0u8; 4];
        s.fill(&mut second).unwrap();
        let c0 = hmac::sign(&k, &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(&second, &c0.as_ref()[..4]);
    }

    #[test]
    fn debug_hides_the_seed() {
        let p = DeterministicProvider::new(b"very secret seed");
        let d = format!("{p:?}");
        assert!(
            !d.contains("very secret") && !d.contains("118, 101, 114"),
            "{d}"
        );
    }

    #[test]
    fn supports_checks_every_transform() {
        let gcm = IkeSuite {
            encr: EncrId::AES_GCM_16,
            encr_key_bits: Some(256),
            integ: None,
            prf: PrfId::HMAC_SHA2_512,
            ke: KeId::ECP_384,
        };
        assert!(ALGORITHMS.supports(&gcm));
        assert!(!ALGORITHMS.supports(&IkeSuite {
            ke: KeId::BRAINPOOL_P256R1,
            ..gcm
        }));
        assert!(!ALGORITHMS.supports(&IkeSuite {
            prf: PrfId::HMAC_TIGER,
            ..gcm
        }));
        assert!(!ALGORITHMS.supports(&IkeSuite {
            integ: Some(IntegId::HMAC_SHA2_256_128),
            ..gcm
        }));
        assert!(!ALGORITHMS.supports(&IkeSuite {
            encr: EncrId::AES_GCM_8,
            ..gcm
        }));
        let cbc = IkeSuite {
            encr: EncrId::AES_CBC,
            integ: Some(IntegId::HMAC_SHA1_96),
            ..gcm
        };
        assert!(ALGORITHMS.supports(&cbc));
        assert!(!ALGORITHMS.supports(&IkeSuite { integ: None, ..cbc }));
    }

    /// IKE_SA_INIT to the first protected message, both sides with their own
    /// deterministic provider: both derive the same keys, and what one seals
    /// the other opens.
    #[test]
    fn two_sides_derive_the_same_keys() {
        let suite = IkeSuite {
            encr: EncrId::CHACHA20_POLY1305,
            encr_key_bits: None,
            integ: None,
            prf: PrfId::HMAC_SHA2_256,
            ke: KeId::MODP_2048,
        };
        let ip = DeterministicProvider::new(b"initiator");
        let rp = DeterministicProvider::new(b"responder");
        let (ni, spi_i) = (ip.random_vec(32).unwrap(), ip.random_vec(8).unwrap());
        let ke_i = ip.start_key_exchange(suite.ke).unwrap();
        let (nr, spi_r) = (rp.random_vec(32).unwrap(), rp.random_vec(8).unwrap());
        let (ke_r, g_ir_r) = rp
            .respond_key_exchange(suite.ke, ke_i.public_value())
            .unwrap();
        let g_ir_i = ke_i.complete(&ke_r).unwrap();
        let spi_i: [u8; 8] = spi_i.try_into().unwrap();
        let spi_r: [u8; 8] = spi_r.try_into().unwrap();
        let keys = |p: &dyn CryptoProvider, g: &Secret| {
            let prf = p.prf(suite.prf).unwrap();
            let seed = skeyseed(&*prf, &ni, &nr, g.as_bytes());
            IkeKeys::derive(&*prf, &suite, seed.as_bytes(), &ni, &nr, &spi_i, &spi_r).unwrap()
        };
        let (ki, kr) = (keys(&ip, &g_ir_i), keys(&rp, &g_ir_r));
        assert_eq!(ki.sk_d.as_bytes(), kr.sk_d.as_bytes());
        assert_eq!(ki.sk_pr.as_bytes(), kr.sk_pr.as_bytes());
        let mut i = ki.sk_ciphers(&ip, &suite, true).unwrap();
        let mut r = kr.sk_ciphers(&rp, &suite, false).unwrap();
        let mut m = b"IKE_AUTH request header".to_vec();
        let n = m.len();
        i.outbound.seal(&mut m, b"IDi AUTH SA TSi TSr").unwrap();
        assert_eq!(
            r.inbound.open(&m[..n], &m[n..]).unwrap().as_slice(),
            b"IDi AUTH SA TSi TSr"
        );
        let mut m2 = b"IKE_AUTH response header".to_vec();
        let n2 = m2.len();
        r.outbound.seal(&mut m2, b"IDr AUTH").unwrap();
        assert_eq!(
            i.inbound.open(&m2[..n2], &m2[n2..]).unwrap().as_slice(),
            b"IDr AUTH"
        );
        // Directions are distinct: our own message does not open inbound.
        assert!(i.inbound.open(&m[..n], &m[n..]).is_err());
    }
}
