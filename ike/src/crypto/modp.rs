//! The MODP Diffie-Hellman groups 2 (RFC 2409), 5, 14, 15, 16, 17 and 18
//! (RFC 3526), constant time with crypto-bigint. Groups 2 and 5 (1024 and
//! 1536 bits) are weak: configuration loading warns about them.
//!
//! - Generator 2; the primes are safe primes `p = 2q + 1`.
//! - Private exponent: 512 bits from the random source with the top bit set
//!   (511 random bits, never 0 or 1, and every exponentiation runs over the
//!   same 512 bits so its time does not depend on the exponent's value).
//!   512 bits is at least twice the strength RFC 3526 section 8 estimates for
//!   the groups up to 4096 bits (4096 bits: 150 to 240 bits, "exponent size
//!   300 to 480 bits"), so the exponent is never their weak point, and it
//!   keeps the 4096-bit exponentiation about eight times cheaper than a full
//!   one. For 6144 and 8192 bits (estimates up to 310 bits) the exponent
//!   caps the strength at 256 bits, like strongSwan's 64-octet exponents
//!   there.
//! - Peer values: exactly as long as the prime, and `1 < y < p - 1`. In a
//!   safe-prime group the only small subgroups are `{1}` and `{1, p - 1}`,
//!   so these checks exclude every small-subgroup confinement; a full
//!   `y^q = 1` check would cost a full-length exponentiation for no more.
//! - Public values and shared secrets are left-padded to the prime's length.

use core::fmt;

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Limb, U512, U1024, U1536, U2048, U3072, U4096, U6144, U8192, Uint, Word};
use zeroize::{Zeroize, Zeroizing};

use super::ke::{KeyExchange, invalid, unsupported};
use super::{CryptoError, Secret};
use crate::wire::codes::KeId;

/// Octets of random input to a private exponent.
pub const EXPONENT_LEN: usize = 64;
/// Bits of the private exponent.
const EXPONENT_BITS: usize = EXPONENT_LEN * 8;

/// The 1024-bit MODP prime of RFC 2409 (group 2; RFC 3526 uses it too).
const P1024: U1024 = U1024::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
));

/// The 1536-bit MODP prime of RFC 3526 (group 5).
const P1536: U1536 = U1536::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF",
));

/// The 2048-bit MODP prime of RFC 3526 (group 14).
const P2048: U2048 = U2048::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// The 3072-bit MODP prime of RFC 3526 (group 15).
const P3072: U3072 = U3072::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
));

/// The 4096-bit MODP prime of RFC 3526 (group 16).
const P4096: U4096 = U4096::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
));

/// The 6144-bit MODP prime of RFC 3526 (group 17).
const P6144: U6144 = U6144::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026",
    "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE",
    "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B",
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC",
    "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E",
    "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA",
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76",
    "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468",
    "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DCC4024FFFFFFFFFFFFFFFF",
));

/// The 8192-bit MODP prime of RFC 3526 (group 18).
const P8192: U8192 = U8192::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8",
    "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2",
    "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C93402849236C3FAB4D27C7026",
    "C1D4DCB2602646DEC9751E763DBA37BDF8FF9406AD9E530EE5DB382F413001AE",
    "B06A53ED9027D831179727B0865A8918DA3EDBEBCF9B14ED44CE6CBACED4BB1B",
    "DB7F1447E6CC254B332051512BD7AF426FB8F401378CD2BF5983CA01C64B92EC",
    "F032EA15D1721D03F482D7CE6E74FEF6D55E702F46980C82B5A84031900B1C9E",
    "59E7C97FBEC7E8F323A97A7E36CC88BE0F1D45B7FF585AC54BD407B22B4154AA",
    "CC8F6D7EBF48E1D814CC5ED20F8037E0A79715EEF29BE32806A1D58BB7C5DA76",
    "F550AA3D8A1FBFF0EB19CCB1A313D55CDA56C9EC2EF29632387FE8D76E3C0468",
    "043E8F663F4860EE12BF2D5B0B7474D6E694F91E6DBE115974A3926F12FEE5E4",
    "38777CB6A932DF8CD8BEC4D073B931BA3BC832B68D9DD300741FA7BF8AFC47ED",
    "2576F6936BA424663AAB639C5AE4F5683423B4742BF1C978238F16CBE39D652D",
    "E3FDB8BEFC848AD922222E04A4037C0713EB57A81A23F0C73473FC646CEA306B",
    "4BCBC8862F8385DDFA9D4B7FA2C087E879683303ED5BDD3A062B3CF5B3A278A6",
    "6D2A13F83F44F82DDF310EE074AB6A364597E899A0255DC164F31CC50846851D",
    "F9AB48195DED7EA1B1D510BD7EE74D73FAF36BC31ECFA268359046F4EB879F92",
    "4009438B481C6CD7889A002ED5EE382BC9190DA6FC026E479558E4475677E9AA",
    "9E3050E2765694DFC81F56E880B96E7160C980DD98EDD3DFFFFFFFFFFFFFFFFF",
));

/// A MODP key exchange for `ke`, with the private exponent made from
/// `exponent` (big-endian; its top bit is set).
pub(crate) fn modp_key_exchange(
    ke: KeId,
    exponent: &[u8; EXPONENT_LEN],
) -> Result<Box<dyn KeyExchange>, CryptoError> {
    match ke {
        KeId::MODP_1024 => Ok(Box::new(ModpKe::new(ke, P1024, exponent)?)),
        KeId::MODP_1536 => Ok(Box::new(ModpKe::new(ke, P1536, exponent)?)),
        KeId::MODP_2048 => Ok(Box::new(ModpKe::new(ke, P2048, exponent)?)),
        KeId::MODP_3072 => Ok(Box::new(ModpKe::new(ke, P3072, exponent)?)),
        KeId::MODP_4096 => Ok(Box::new(ModpKe::new(ke, P4096, exponent)?)),
        KeId::MODP_6144 => Ok(Box::new(ModpKe::new(ke, P6144, exponent)?)),
        KeId::MODP_8192 => Ok(Box::new(ModpKe::new(ke, P8192, exponent)?)),
        _ => Err(unsupported(ke)),
    }
}

struct ModpKe<const L: usize> {
    ke: KeId,
    params: DynResidueParams<L>,
    exponent: Zeroizing<U512>,
    public: Vec<u8>,
}

impl<const L: usize> ModpKe<L> {
    fn new(ke: KeId, p: Uint<L>, exponent: &[u8; EXPONENT_LEN]) -> Result<Self, CryptoError> {
        // `new` panics on an even modulus; `new_checked` reports it instead.
        #[allow(deprecated)]
        let params = Option::<DynResidueParams<L>>::from(DynResidueParams::new_checked(&p))
            .ok_or_else(|| CryptoError::Unsupported(format!("{ke}: even modulus")))?;
        let mut x = uint_from_be::<{ U512::LIMBS }>(exponent)
            .ok_or_else(|| CryptoError::Unsupported(format!("{ke}: exponent length")))?;
        let exponent = Zeroizing::new(x | U512::ONE.shl_vartime(EXPONENT_BITS - 1));
        x.zeroize();
        let g = DynResidue::new(&Uint::<L>::from_u8(2), params);
        let public = uint_to_be(&g.pow_bounded_exp(&*exponent, EXPONENT_BITS).retrieve());
        Ok(Self {
            ke,
            params,
            exponent,
            public,
        })
    }
}

impl<const L: usize> fmt::Debug for ModpKe<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModpKe({})", self.ke)
    }
}

impl<const L: usize> KeyExchange for ModpKe<L> {
    fn method(&self) -> KeId {
        self.ke
    }

    fn public_value(&self) -> &[u8] {
        &self.public
    }

    fn complete(self: Box<Self>, peer: &[u8]) -> Result<Secret, CryptoError> {
        let ke = self.ke;
        let y = uint_from_be::<L>(peer).ok_or_else(|| invalid(ke, "wrong length"))?;
        let p = *self.params.modulus();
        if y <= Uint::ONE {
            return Err(invalid(ke, "value is 0 or 1 (must be 1 < y < p-1)"));
        }
        if y >= p.wrapping_sub(&Uint::ONE) {
            return Err(invalid(
                ke,
                "value is p-1 or not below the prime (must be 1 < y < p-1)",
            ));
        }
        let mut residue =
            DynResidue::new(&y, self.params).pow_bounded_exp(&*self.exponent, EXPONENT_BITS);
        let mut shared = residue.retrieve();
        residue.zeroize();
        // Cannot happen for 1 < y < p-1 in a safe-prime group with x < q.
        let result = if shared == Uint::ONE {
            Err(invalid(ke, "shared secret is 1"))
        } else {
            Ok(Secret::new(uint_to_be(&shared)))
        };
        shared.zeroize();
        result
    }
}

/// Big-endian octets of exactly `L` limbs to an integer; `None` for any other length.
fn uint_from_be<const L: usize>(bytes: &[u8]) -> Option<Uint<L>> {
    if bytes.len() != L.checked_mul(Limb::BYTES)? {
        return None;
    }
    let mut words = [0 as Word; L];
    for (w, chunk) in words.iter_mut().zip(bytes.rchunks_exact(Limb::BYTES)) {
        *w = Word::from_be_bytes(chunk.try_into().ok()?);
    }
    Some(Uint::from_words(words))
}

/// The integer as big-endian octets, as many as its limbs hold (the prime's
/// length for the groups here, all multiples of 64 bits).
fn uint_to_be<const L: usize>(x: &Uint<L>) -> Vec<u8> {
    let mut out = Vec::with_capacity(L.saturating_mul(Limb::BYTES));
    for w in x.as_words().iter().rev() {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::vectors::v;

    fn x(name: &str) -> [u8; EXPONENT_LEN] {
        v(name).try_into().unwrap()
    }

    /// Known answers from Python's pow() (tests/vectors/ikev2_vectors.py).
    #[test]
    fn known_answers_both_directions() {
        for (ke, n) in [
            (KeId::MODP_1024, 1024),
            (KeId::MODP_1536, 1536),
            (KeId::MODP_2048, 2048),
            (KeId::MODP_3072, 3072),
            (KeId::MODP_4096, 4096),
            (KeId::MODP_6144, 6144),
            (KeId::MODP_8192, 8192),
        ] {
            let i = modp_key_exchange(ke, &x("modp_x_i")).unwrap();
            let r = modp_key_exchange(ke, &x("modp_x_r")).unwrap();
            assert_eq!(i.public_value(), v(&format!("modp{n}_g_i")).as_slice());
            assert_eq!(r.public_value(), v(&format!("modp{n}_g_r")).as_slice());
            let gi = i.public_value().to_vec();
            let s1 = i.complete(r.public_value()).unwrap();
            let s2 = r.complete(&gi).unwrap();
            assert_eq!(s1.as_bytes(), v(&format!("modp{n}_shared")).as_slice());
            assert_eq!(s2.as_bytes(), s1.as_bytes());
        }
    }

    #[test]
    fn top_bit_of_the_exponent_is_set() {
        // An all-zero draw still gives the exponent 2^511, not 0.
        let zero = modp_key_exchange(KeId::MODP_2048, &[0; EXPONENT_LEN]).unwrap();
        let mut top = [0; EXPONENT_LEN];
        top[0] = 0x80;
        let set = modp_key_exchange(KeId::MODP_2048, &top).unwrap();
        assert_eq!(zero.public_value(), set.public_value());
        assert_ne!(zero.public_value()[255], 2);
    }

    fn reason(r: Result<Secret, CryptoError>) -> String {
        match r {
            Err(CryptoError::InvalidPublicValue { group, reason }) => format!("{group}: {reason}"),
            other => panic!("expected InvalidPublicValue, got {other:?}"),
        }
    }

    #[test]
    fn peer_values_out_of_range_are_rejected() {
        let p = uint_to_be(&P2048);
        let mut p_minus_1 = p.clone();
        p_minus_1[255] -= 1;
        let mut one = vec![0u8; 256];
        one[255] = 1;
        let ke = || modp_key_exchange(KeId::MODP_2048, &[5; EXPONENT_LEN]).unwrap();
        assert!(reason(ke().complete(&[0; 256])).contains("0 or 1"));
        assert!(reason(ke().complete(&one)).contains("0 or 1"));
        assert!(reason(ke().complete(&p_minus_1)).contains("p-1"));
        assert!(reason(ke().complete(&p)).contains("not below the prime"));
        assert!(reason(ke().complete(&[0xff; 256])).contains("not below the prime"));
        for len in [0, 1, 255, 257, 384, 512] {
            assert_eq!(
                reason(ke().complete(&vec![2; len])),
                "MODP_2048: wrong length"
            );
        }
        // 2 is fine (the generator), and p-2 too.
        let mut p_minus_2 = p.clone();
        p_minus_2[255] -= 2;
        let mut two = vec![0u8; 256];
        two[255] = 2;
        assert!(ke().complete(&two).is_ok());
        assert!(ke().complete(&p_minus_2).is_ok());
    }

    #[test]
    fn other_groups_are_unsupported() {
        for ke in [KeId::MODP_768, KeId::MODP_2048_256, KeId::ECP_256] {
            assert!(matches!(
                modp_key_exchange(ke, &[1; EXPONENT_LEN]),
                Err(CryptoError::Unsupported(m)) if m.contains(&ke.to_string())
            ));
        }
    }

    #[test]
    fn primes_are_the_rfc3526_ones() {
        // First and last octets as printed in RFC 3526 sections 3, 4 and 5.
        for (p, last) in [
            (uint_to_be(&P1024), "49286651ECE65381FFFFFFFFFFFFFFFF"),
            (uint_to_be(&P1536), "CA237327FFFFFFFFFFFFFFFF"),
            (uint_to_be(&P2048), "15728E5A8AACAA68FFFFFFFFFFFFFFFF"),
            (uint_to_be(&P3072), "4B82D120A93AD2CAFFFFFFFFFFFFFFFF"),
            (uint_to_be(&P4096), "4DF435C934063199FFFFFFFFFFFFFFFF"),
            (uint_to_be(&P6144), "6DCC4024FFFFFFFFFFFFFFFF"),
            (uint_to_be(&P8192), "60C980DD98EDD3DFFFFFFFFFFFFFFFFF"),
        ] {
            let hex = hex::encode_upper(&p);
            assert!(hex.starts_with("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"));
            assert!(hex.ends_with(last));
        }
        assert_eq!(uint_to_be(&P2048).len(), 256);
        assert_eq!(uint_to_be(&P3072).len(), 384);
        assert_eq!(uint_to_be(&P4096).len(), 512);
        assert_eq!(uint_to_be(&P1024).len(), 128);
        assert_eq!(uint_to_be(&P1536).len(), 192);
        assert_eq!(uint_to_be(&P6144).len(), 768);
        assert_eq!(uint_to_be(&P8192).len(), 1024);
    }
}
