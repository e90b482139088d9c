//! MS-CHAPv2's computations (RFC 2759) and the master session key that
//! EAP-MSCHAPv2 derives from them (RFC 3079's MPPE keys, as strongSwan's
//! `eap_mschapv2` plugin and Windows use them).
//!
//! Only the arithmetic: no EAP packets, no state. Passwords are the
//! configuration's text, hashed as UTF-16LE (RFC 2759 8.3); a gateway may
//! keep the NT hash instead of the password (`nt_password_hash`).
//!
//! Invariants: every function is total (fixed-size inputs where the RFC
//! fixes them), and secrets are returned in [`Zeroizing`] buffers.

use des::Des;
use des::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use md4::{Digest, Md4};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The authenticator's and the peer's challenges (RFC 2759 4, 5).
pub const CHALLENGE_LEN: usize = 16;
/// The NT-Response (RFC 2759 8.1).
pub const NT_RESPONSE_LEN: usize = 24;
/// The NT password hash, MD4 of the UTF-16LE password (RFC 2759 8.3).
pub type NtHash = Zeroizing<[u8; 16]>;

/// `NtPasswordHash` (RFC 2759 8.3): MD4 of the password as UTF-16LE.
pub fn nt_password_hash(password: &str) -> NtHash {
    let mut md4 = Md4::new();
    for unit in password.encode_utf16() {
        md4.update(unit.to_le_bytes());
    }
    Zeroizing::new(md4.finalize().into())
}

/// `HashNtPasswordHash` (RFC 2759 8.4): MD4 of the NT hash.
pub fn hash_nt_password_hash(hash: &[u8; 16]) -> NtHash {
    Zeroizing::new(Md4::digest(hash).into())
}

/// `ChallengeHash` (RFC 2759 8.2): the first 8 octets of
/// SHA-1(PeerChallenge | AuthenticatorChallenge | UserName), the user name
/// without any domain (the caller strips it, as RFC 2759 says).
pub fn challenge_hash(
    peer_challenge: &[u8; CHALLENGE_LEN],
    authenticator_challenge: &[u8; CHALLENGE_LEN],
    user_name: &[u8],
) -> [u8; 8] {
    let mut sha = Sha1::new();
    sha.update(peer_challenge);
    sha.update(authenticator_challenge);
    sha.update(user_name);
    let digest: [u8; 20] = sha.finalize().into();
    let mut out = [0u8; 8];
    for (o, d) in out.iter_mut().zip(digest) {
        *o = d;
    }
    out
}

/// A DES key from 7 octets: each 7 bits followed by a (parity) bit that
/// DES ignores (RFC 2759 8.6).
fn des_key(seven: &[u8]) -> [u8; 8] {
    let mut bits: u64 = 0;
    for b in seven.iter().take(7) {
        bits = bits.wrapping_shl(8) | u64::from(*b);
    }
    let mut key = [0u8; 8];
    for (i, k) in (0u32..).zip(key.iter_mut()) {
        // Bits 55..49 for the first octet, down to 6..0 for the last.
        let shift = 49u32.saturating_sub(i.saturating_mul(7));
        let seven_bits = bits.wrapping_shr(shift) & 0x7f;
        *k = u8::try_from(seven_bits).unwrap_or(0).wrapping_shl(1);
    }
    key
}

/// `ChallengeResponse` (RFC 2759 8.5): the 8-octet challenge encrypted
/// with DES under three keys cut from the NT hash padded to 21 octets.
pub fn challenge_response(challenge: &[u8; 8], nt_hash: &[u8; 16]) -> [u8; NT_RESPONSE_LEN] {
    let mut padded = Zeroizing::new([0u8; 21]);
    for (p, h) in padded.iter_mut().zip(nt_hash) {
        *p = *h;
    }
    let mut out = [0u8; NT_RESPONSE_LEN];
    for (key7, block) in padded.chunks(7).zip(out.chunks_mut(8)) {
        let key = Zeroizing::new(des_key(key7));
        let des = Des::new(GenericArray::from_slice(key.as_slice()));
        let mut b = GenericArray::clone_from_slice(challenge);
        des.encrypt_block(&mut b);
        block.copy_from_slice(&b);
    }
    out
}

/// `GenerateNTResponse` (RFC 2759 8.1), from the NT hash.
pub fn nt_response(
    authenticator_challenge: &[u8; CHALLENGE_LEN],
    peer_challenge: &[u8; CHALLENGE_LEN],
    user_name: &[u8],
    nt_hash: &[u8; 16],
) -> [u8; NT_RESPONSE_LEN] {
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    challenge_response(&challenge, nt_hash)
}

/// Whether a peer's NT-Response is the one its password gives, compared
/// in constant time.
pub fn verify_nt_response(
    authenticator_challenge: &[u8; CHALLENGE_LEN],
    peer_challenge: &[u8; CHALLENGE_LEN],
    user_name: &[u8],
    nt_hash: &[u8; 16],
    response: &[u8],
) -> bool {
    let want = nt_response(authenticator_challenge, peer_challenge, user_name, nt_hash);
    bool::from(want.as_slice().ct_eq(response))
}

/// RFC 2759 8.7's Magic1: "Magic server to client signing constant".
const MAGIC1: &[u8] = b"Magic server to client signing constant";
/// RFC 2759 8.7's Magic2: "Pad to make it do more than one iteration".
const MAGIC2: &[u8] = b"Pad to make it do more than one iteration";

/// `GenerateAuthenticatorResponse` (RFC 2759 8.7): the 20 octets the
/// authenticator proves it knows the password with; sent as `S=` and 40
/// upper-case hex digits ([`authenticator_response_text`]).
pub fn authenticator_response(
    nt_hash: &[u8; 16],
    nt_response: &[u8; NT_RESPONSE_LEN],
    peer_challenge: &[u8; CHALLENGE_LEN],
    authenticator_challenge: &[u8; CHALLENGE_LEN],
    user_name: &[u8],
) -> [u8; 20] {
    let hash_hash = hash_nt_password_hash(nt_hash);
    let mut sha = Sha1::new();
    sha.update(hash_hash.as_slice());
    sha.update(nt_response);
    sha.update(MAGIC1);
    let digest: [u8; 20] = sha.finalize().into();
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    let mut sha = Sha1::new();
    sha.update(digest);
    sha.update(challenge);
    sha.update(MAGIC2);
    sha.finalize().into()
}

/// The authenticator response as sent in a Success packet: `S=` and 40
/// upper-case hex digits.
pub fn authenticator_response_text(response: &[u8; 20]) -> String {
    let mut s = String::with_capacity(42);
    s.push_str("S=");
    for b in response {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// RFC 3079 3.4's Magic1: "This is the MPPE Master Key".
const MPPE_MAGIC1: &[u8] = b"This is the MPPE Master Key";
/// RFC 3079 3.4's Magic2 (the client's send key, the server's receive key).
const MPPE_MAGIC2: &[u8] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
/// RFC 3079 3.4's Magic3 (the client's receive key, the server's send key).
const MPPE_MAGIC3: &[u8] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";
const SHS_PAD1: [u8; 40] = [0; 40];
const SHS_PAD2: [u8; 40] = [0xf2; 40];

/// `GetMasterKey` (RFC 3079 3.4): 16 octets from the hash of the NT hash
/// and the NT-Response.
pub fn master_key(
    password_hash_hash: &[u8; 16],
    nt_response: &[u8; NT_RESPONSE_LEN],
) -> Zeroizing<[u8; 16]> {
    let mut sha = Sha1::new();
    sha.update(password_hash_hash);
    sha.update(nt_response);
    sha.update(MPPE_MAGIC1);
    first16(sha.finalize().into())
}

fn first16(digest: [u8; 20]) -> Zeroizing<[u8; 16]> {
    let digest = Zeroizing::new(digest);
    let mut out = Zeroizing::new([0u8; 16]);
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

/// `GetAsymmetricStartKey` (RFC 3079 3.4) for a 128-bit key: with
/// `client_send` the key the client sends with (Magic2), else the one it
/// receives with (Magic3).
pub fn asymmetric_start_key(master: &[u8; 16], client_send: bool) -> Zeroizing<[u8; 16]> {
    let mut sha = Sha1::new();
    sha.update(master);
    sha.update(SHS_PAD1);
    sha.update(if client_send {
        MPPE_MAGIC2
    } else {
        MPPE_MAGIC3
    });
    sha.update(SHS_PAD2);
    first16(sha.finalize().into())
}

/// EAP-MSCHAPv2's MSK, the same on both sides: the client's send key, the
/// client's receive key, then 32 zero octets (64 octets, as strongSwan and
/// Windows make it; IKEv2's AUTH is keyed with all of it, RFC 7296 2.16).
pub fn msk(nt_hash: &[u8; 16], nt_response: &[u8; NT_RESPONSE_LEN]) -> Zeroizing<Vec<u8>> {
    let master = master_key(&hash_nt_password_hash(nt_hash), nt_response);
    let mut out = Zeroizing::new(Vec::with_capacity(64));
    out.extend_from_slice(asymmetric_start_key(&master, true).as_slice());
    out.extend_from_slice(asymmetric_start_key(&master, false).as_slice());
    out.resize(64, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s.replace(' ', "")).unwrap().try_into().unwrap()
    }

    // RFC 2759 9.2's sample values.
    const USER: &[u8] = b"User";
    const PASSWORD: &str = "clientPass";
    fn auth_challenge() -> [u8; 16] {
        h("5B5D7C7D7B3F2F3E3C2C602132262628")
    }
    fn peer_challenge() -> [u8; 16] {
        h("21402324255E262A28295F2B3A337C7E")
    }

    #[test]
    fn rfc2759_sample() {
        let hash = nt_password_hash(PASSWORD);
        assert_eq!(*hash, h::<16>("44EBBA8D5312B8D611474411F56989AE"));
        assert_eq!(
            *hash_nt_password_hash(&hash),
            h::<16>("41C00C584BD2D91C4017A2A12FA59F3F")
        );
        assert_eq!(
            challenge_hash(&peer_challenge(), &auth_challenge(), USER),
            h::<8>("D02E4386BCE91226")
        );
        let response = nt_response(&auth_challenge(), &peer_challenge(), USER, &hash);
        assert_eq!(
            response,
            h::<24>("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
        );
        let auth =
            authenticator_response(&hash, &response, &peer_challenge(), &auth_challenge(), USER);
        assert_eq!(
            authenticator_response_text(&auth),
            "S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
    }

    #[test]
    fn verify_takes_only_the_right_response() {
        let hash = nt_password_hash(PASSWORD);
        let good = nt_response(&auth_challenge(), &peer_challenge(), USER, &hash);
        let check =
            |r: &[u8]| verify_nt_response(&auth_challenge(), &peer_challenge(), USER, &hash, r);
        assert!(check(&good));
        let mut bad = good;
        bad[23] ^= 1;
        assert!(!check(&bad));
        assert!(!check(&good[..23]));
        let other = nt_password_hash("clientpass");
        assert!(!verify_nt_response(
            &auth_challenge(),
            &peer_challenge(),
            USER,
            &other,
            &good
        ));
    }

    // RFC 3079 3.5.3's sample values (the same user and challenges).
    #[test]
    fn rfc3079_mppe_keys_and_the_msk() {
        let hash = nt_password_hash(PASSWORD);
        let response = h::<24>("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF");
        let master = master_key(&hash_nt_password_hash(&hash), &response);
        assert_eq!(*master, h::<16>("FDECE3717A8C838CB388E527AE3CDD31"));
        // The sample's SendStartKey128 is the server's send key (GetAsymmetricStartKey
        // with IsSend and IsServer): Magic3, the client's receive key.
        let receive = asymmetric_start_key(&master, false);
        assert_eq!(*receive, h::<16>("8B7CDC149B993A1BA118CB153F56DCCB"));
        let send = asymmetric_start_key(&master, true);
        let msk = msk(&hash, &response);
        assert_eq!(msk.len(), 64);
        assert_eq!(&msk[..16], send.as_slice());
        assert_eq!(&msk[16..32], receive.as_slice());
        assert_eq!(&msk[32..], [0u8; 32]);
        assert_ne!(*send, *receive);
    }

    #[test]
    fn des_key_spreads_seven_octets_over_eight() {
        assert_eq!(des_key(&[0xff; 7]), [0xfe; 8]);
        assert_eq!(des_key(&[0; 7]), [0; 8]);
        // The first bit of the input is the first key octet's top bit; the
        // last input bit is the last key octet's bit 1.
        assert_eq!(
            des_key(&[0x80, 0, 0, 0, 0, 0, 0]),
            [0x80, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(des_key(&[0, 0, 0, 0, 0, 0, 1]), [0, 0, 0, 0, 0, 0, 0, 2]);
    }
}
