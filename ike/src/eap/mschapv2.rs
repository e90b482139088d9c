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

use std::fmt;

use super::{EapType, Method, Step, code};
use crate::wire::Eap;

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

// ---- EAP-MSCHAPv2 packets (draft-kamath-pppext-eap-mschapv2-02) ----
//
// The Type-Data of an EAP-MSCHAPv2 message: OpCode, MS-CHAPv2-ID, and
// MS-Length (the length from OpCode on, the EAP Length less 5), then the
// opcode's data. The peer's Success and Failure responses are the OpCode
// alone (as strongSwan and Windows send them).

/// MS-CHAPv2 OpCodes.
const CHALLENGE: u8 = 1;
const RESPONSE: u8 = 2;
const SUCCESS: u8 = 3;
const FAILURE: u8 = 4;
/// Value-Size of a Response: Peer-Challenge, 8 reserved octets,
/// NT-Response, Flags.
const RESPONSE_VALUE_LEN: usize = 49;
/// The name the authenticator sends in its Challenge.
const SERVER_NAME: &[u8] = b"iked";

/// An EAP-MSCHAPv2 request or response with `op`'s `body`.
fn message(code: u8, identifier: u8, op: u8, ms_id: u8, body: &[u8]) -> Eap {
    // OpCode, MS-CHAPv2-ID and MS-Length are 4 octets; a body longer than
    // the field can say is cut (never: ours are short, and a peer name is
    // at most 255 octets).
    let ms_len = u16::try_from(body.len().saturating_add(4)).unwrap_or(u16::MAX);
    let mut data = Vec::with_capacity(body.len().saturating_add(4));
    data.push(op);
    data.push(ms_id);
    data.extend_from_slice(&ms_len.to_be_bytes());
    data.extend_from_slice(body);
    super::packet(code, identifier, EapType::MSCHAPV2, &data)
}

/// The OpCode, MS-CHAPv2-ID and the data after MS-Length of a received
/// EAP-MSCHAPv2 message (a lone OpCode has no ID and no data).
fn parse(msg: &Eap) -> Option<(u8, u8, &[u8])> {
    match super::type_data(msg) {
        [op] => Some((*op, 0, &[])),
        [op, id, _, _, rest @ ..] => Some((*op, *id, rest)),
        _ => None,
    }
}

/// The user name RFC 2759 hashes: without a `DOMAIN\` prefix.
fn user_name(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b'\\') {
        Some(i) => name.get(i.saturating_add(1)..).unwrap_or_default(),
        None => name,
    }
}

fn array16(b: &[u8]) -> Option<[u8; CHALLENGE_LEN]> {
    b.try_into().ok()
}

/// The NT hash of a user's EAP secret, looked up by the name the peer
/// sent (the server's side: strongSwan looks up `eap` secrets by that
/// name too).
pub type SecretLookup = Box<dyn Fn(&[u8]) -> Option<crate::crypto::Secret> + Send>;

/// Where the server is.
#[derive(Debug, PartialEq, Eq)]
enum ServerState {
    /// Initiated: the peer's Response is due.
    Challenged,
    /// The Response verified, our Success-Request sent: the peer's
    /// Success-Response is due.
    Verified,
    /// Done (succeeded or failed).
    Done,
}

/// EAP-MSCHAPv2 as the server (authenticator). A wrong password ends it
/// at once (EAP-Failure; strongSwan's retries would only let the peer
/// guess again).
pub struct Server {
    challenge: [u8; CHALLENGE_LEN],
    lookup: SecretLookup,
    identifier: u8,
    ms_id: u8,
    state: ServerState,
    msk: Option<Zeroizing<Vec<u8>>>,
    /// The name the peer authenticated as.
    name: Option<Vec<u8>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mschapv2::Server")
            .field("state", &self.state)
            .finish()
    }
}

impl Server {
    /// A server with a random `challenge`, finding the peer's password
    /// with `lookup`.
    pub fn new(challenge: [u8; CHALLENGE_LEN], lookup: SecretLookup) -> Self {
        Self {
            challenge,
            lookup,
            identifier: 0,
            ms_id: 0,
            state: ServerState::Challenged,
            msk: None,
            name: None,
        }
    }

    /// The peer's Response: Success-Request if its NT-Response is right.
    fn response(&mut self, data: &[u8]) -> Step {
        let [size, value @ ..] = data else {
            return Step::Failure("EAP-MSCHAPv2 response too short".into());
        };
        if usize::from(*size) != RESPONSE_VALUE_LEN || value.len() < RESPONSE_VALUE_LEN {
            return Step::Failure("EAP-MSCHAPv2 response of the wrong size".into());
        }
        let (value, name) = value.split_at(RESPONSE_VALUE_LEN);
        let (Some(peer_challenge), Some(nt)) = (
            value.get(..16).and_then(array16),
            value
                .get(24..48)
                .and_then(|r| <[u8; NT_RESPONSE_LEN]>::try_from(r).ok()),
        ) else {
            return Step::Failure("EAP-MSCHAPv2 response malformed".into());
        };
        let shown = String::from_utf8_lossy(name).into_owned();
        let Some(password) = (self.lookup)(name) else {
            return Step::Failure(format!("no EAP key found for '{shown}'"));
        };
        let Ok(text) = std::str::from_utf8(password.as_bytes()) else {
            return Step::Failure(format!("the EAP key of '{shown}' is not UTF-8"));
        };
        let hash = nt_password_hash(text);
        let user = user_name(name);
        if !verify_nt_response(&self.challenge, &peer_challenge, user, &hash, &nt) {
            self.state = ServerState::Done;
            return Step::Failure(format!(
                "EAP-MSCHAPv2 verification of '{shown}' failed (wrong password)"
            ));
        }
        let auth = authenticator_response(&hash, &nt, &peer_challenge, &self.challenge, user);
        let text = format!("{} M=Welcome", authenticator_response_text(&auth));
        self.msk = Some(msk(&hash, &nt));
        self.name = Some(name.to_vec());
        self.state = ServerState::Verified;
        self.identifier = self.identifier.wrapping_add(1);
        Step::Send(message(
            code::REQUEST,
            self.identifier,
            SUCCESS,
            self.ms_id,
            text.as_bytes(),
        ))
    }

    /// The name the peer authenticated as (its user name, as sent).
    pub fn peer_name(&self) -> Option<&[u8]> {
        self.name.as_deref()
    }
}

impl Method for Server {
    fn eap_type(&self) -> EapType {
        EapType::MSCHAPV2
    }

    fn initiate(&mut self, identifier: u8) -> Step {
        self.identifier = identifier;
        self.ms_id = identifier;
        let mut body = Vec::with_capacity(17usize.saturating_add(SERVER_NAME.len()));
        body.push(16);
        body.extend_from_slice(&self.challenge);
        body.extend_from_slice(SERVER_NAME);
        Step::Send(message(
            code::REQUEST,
            identifier,
            CHALLENGE,
            self.ms_id,
            &body,
        ))
    }

    fn process(&mut self, msg: &Eap) -> Step {
        if msg.code != code::RESPONSE || msg.identifier != self.identifier {
            return Step::Failure("EAP-MSCHAPv2: unexpected message or identifier".into());
        }
        let Some((op, _, data)) = parse(msg) else {
            return Step::Failure("EAP-MSCHAPv2 message too short".into());
        };
        match (&self.state, op) {
            (ServerState::Challenged, RESPONSE) => self.response(data),
            (ServerState::Verified, SUCCESS) => {
                self.state = ServerState::Done;
                Step::Success
            }
            (_, FAILURE) => {
                self.state = ServerState::Done;
                Step::Failure("the peer ended EAP-MSCHAPv2 with a failure".into())
            }
            (state, op) => Step::Failure(format!(
                "EAP-MSCHAPv2: unexpected OpCode {op} in state {state:?}"
            )),
        }
    }

    fn makes_msk(&self) -> bool {
        true
    }

    fn msk(&self) -> Option<&[u8]> {
        match self.state {
            ServerState::Done => self.msk.as_ref().map(|m| m.as_slice()),
            _ => None,
        }
    }

    fn peer_identity(&self) -> Option<Vec<u8>> {
        self.name.clone()
    }
}

/// Where the client is.
#[derive(Debug, PartialEq, Eq)]
enum ClientState {
    /// The server's Challenge is due.
    Start,
    /// Our Response sent: Success- or Failure-Request due.
    Responded,
    /// The server proved the password: its EAP-Success is due.
    Done,
}

/// EAP-MSCHAPv2 as the client (peer).
pub struct Client {
    /// The user name we send (the whole EAP identity, with any domain).
    name: Vec<u8>,
    nt_hash: NtHash,
    peer_challenge: [u8; CHALLENGE_LEN],
    state: ClientState,
    /// What the server must answer, then the MSK once it did.
    expect: Option<[u8; 20]>,
    pending_msk: Option<Zeroizing<Vec<u8>>>,
    msk: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mschapv2::Client")
            .field("state", &self.state)
            .finish()
    }
}

impl Client {
    /// A client that authenticates as `name` with `password`, its Peer
    /// Challenge `peer_challenge` (random).
    pub fn new(name: &[u8], password: &str, peer_challenge: [u8; CHALLENGE_LEN]) -> Self {
        Self {
            name: name.to_vec(),
            nt_hash: nt_password_hash(password),
            peer_challenge,
            state: ClientState::Start,
            expect: None,
            pending_msk: None,
            msk: None,
        }
    }

    fn challenge(&mut self, identifier: u8, ms_id: u8, data: &[u8]) -> Step {
        let Some(challenge) = data.get(1..17).and_then(array16) else {
            return Step::Failure("EAP-MSCHAPv2 challenge too short".into());
        };
        if data.first() != Some(&16) {
            return Step::Failure("EAP-MSCHAPv2 challenge of the wrong size".into());
        }
        let user = user_name(&self.name);
        let nt = nt_response(&challenge, &self.peer_challenge, user, &self.nt_hash);
        self.expect = Some(authenticator_response(
            &self.nt_hash,
            &nt,
            &self.peer_challenge,
            &challenge,
            user,
        ));
        self.pending_msk = Some(msk(&self.nt_hash, &nt));
        let mut body = Vec::with_capacity(50usize.saturating_add(self.name.len()));
        body.push(49);
        body.extend_from_slice(&self.peer_challenge);
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&nt);
        body.push(0);
        body.extend_from_slice(&self.name);
        self.state = ClientState::Responded;
        Step::Send(message(code::RESPONSE, identifier, RESPONSE, ms_id, &body))
    }

    fn success(&mut self, identifier: u8, data: &[u8]) -> Step {
        let text = String::from_utf8_lossy(data);
        let got = text
            .split(' ')
            .find_map(|t| t.strip_prefix("S="))
            .filter(|h| h.len() == 40)
            .and_then(|h| hex::decode(h).ok());
        let proved = match (&got, &self.expect) {
            (Some(g), Some(e)) => bool::from(g.as_slice().ct_eq(e.as_slice())),
            _ => false,
        };
        if !proved {
            return Step::Failure("EAP-MSCHAPv2: the server did not prove the password".into());
        }
        self.msk = self.pending_msk.take();
        self.state = ClientState::Done;
        // The Success-Response is the OpCode alone.
        Step::Send(super::packet(
            code::RESPONSE,
            identifier,
            EapType::MSCHAPV2,
            &[SUCCESS],
        ))
    }
}

impl Method for Client {
    fn eap_type(&self) -> EapType {
        EapType::MSCHAPV2
    }

    fn process(&mut self, msg: &Eap) -> Step {
        let Some((op, ms_id, data)) = parse(msg) else {
            return Step::Failure("EAP-MSCHAPv2 message too short".into());
        };
        match (&self.state, op) {
            (ClientState::Start, CHALLENGE) => self.challenge(msg.identifier, ms_id, data),
            (ClientState::Responded, SUCCESS) => self.success(msg.identifier, data),
            (ClientState::Responded, FAILURE) => {
                let text = String::from_utf8_lossy(data);
                let error = text
                    .split(' ')
                    .find_map(|t| t.strip_prefix("E="))
                    .unwrap_or("?")
                    .to_owned();
                Step::Failure(format!(
                    "EAP-MSCHAPv2 failed with error {error} (691: wrong user name or password)"
                ))
            }
            (state, op) => Step::Failure(format!(
                "EAP-MSCHAPv2: unexpected OpCode {op} in state {state:?}"
            )),
        }
    }

    fn makes_msk(&self) -> bool {
        true
    }

    fn msk(&self) -> Option<&[u8]> {
        self.msk.as_ref().map(|m| m.as_slice())
    }

    fn mutual(&self) -> bool {
        // MS-CHAPv2 proves the server knows the password too, but
        // strongSwan counts it as not mutual (EAP-only is refused with
        // it): so do we.
        false
    }
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
    /// Runs `server` against `client` to the end: what the server said
    /// last, and the messages that went.
    fn run(server: &mut Server, client: &mut Client) -> (Step, usize) {
        let mut step = server.initiate(42);
        let mut n = 0;
        while let Step::Send(req) = step {
            n += 1;
            assert_eq!(req.code, code::REQUEST);
            let resp = match client.process(&req) {
                Step::Send(r) => r,
                other => return (other, n),
            };
            assert_eq!(resp.identifier, req.identifier);
            step = server.process(&resp);
        }
        (step, n)
    }

    fn lookup(password: &'static str) -> SecretLookup {
        Box::new(move |name: &[u8]| {
            (name == b"carol").then(|| crate::crypto::Secret::from_slice(password.as_bytes()))
        })
    }

    #[test]
    fn server_and_client_agree_on_the_msk() {
        let mut server = Server::new(auth_challenge(), lookup("secret"));
        let mut client = Client::new(b"carol", "secret", peer_challenge());
        assert!(client.initiate(1).is_failure());
        let (end, n) = run(&mut server, &mut client);
        assert!(matches!(end, Step::Success), "{end:?}");
        assert_eq!(n, 2);
        let (a, b) = (server.msk().unwrap(), client.msk().unwrap());
        assert_eq!(a.len(), 64);
        assert_eq!(a, b);
        assert_eq!(server.peer_identity().as_deref(), Some(&b"carol"[..]));
        // Known answer: the MSK is RFC 3079's keys for this password and
        // the NT-Response its challenges give.
        let nt = nt_response(
            &auth_challenge(),
            &peer_challenge(),
            b"carol",
            &nt_password_hash("secret"),
        );
        assert_eq!(a, msk(&nt_password_hash("secret"), &nt).as_slice());
    }

    #[test]
    fn a_wrong_password_fails_at_the_server_with_no_msk() {
        let mut server = Server::new(auth_challenge(), lookup("secret"));
        let mut client = Client::new(b"carol", "guess", peer_challenge());
        let (end, n) = run(&mut server, &mut client);
        let Step::Failure(why) = end else {
            panic!("{end:?}")
        };
        assert!(why.contains("wrong password"), "{why}");
        assert_eq!(n, 1);
        assert!(server.msk().is_none());
        // An unknown user: no key, same end.
        let mut server = Server::new(auth_challenge(), lookup("secret"));
        let mut client = Client::new(b"dave", "secret", peer_challenge());
        let (end, _) = run(&mut server, &mut client);
        assert!(matches!(end, Step::Failure(w) if w.contains("no EAP key")));
    }

    #[test]
    fn a_client_refuses_a_server_that_does_not_know_the_password() {
        // The server accepts anything but proves the wrong password.
        let mut server = Server::new(auth_challenge(), lookup("secret"));
        let mut client = Client::new(b"carol", "secret", peer_challenge());
        let Step::Send(challenge) = server.initiate(1) else {
            panic!()
        };
        let Step::Send(resp) = client.process(&challenge) else {
            panic!()
        };
        let Step::Send(mut success) = server.process(&resp) else {
            panic!()
        };
        // Flip one hex digit of S=.
        let at = success.data.iter().position(|b| *b == b'=').unwrap() + 1;
        success.data[at] = if success.data[at] == b'0' { b'1' } else { b'0' };
        assert!(client.process(&success).is_failure());
        assert!(client.msk().is_none());
        // Truncated and unexpected messages are failures, not panics.
        for cut in 0..challenge.data.len() {
            let mut c = Client::new(b"carol", "secret", peer_challenge());
            let short = Eap {
                data: challenge.data[..cut].to_vec(),
                ..challenge.clone()
            };
            let _ = c.process(&short);
        }
        for cut in 0..resp.data.len() {
            let mut s = Server::new(auth_challenge(), lookup("secret"));
            let _ = s.initiate(1);
            let short = Eap {
                data: resp.data[..cut].to_vec(),
                ..resp.clone()
            };
            assert!(s.process(&short).is_failure());
        }
    }

    #[test]
    fn the_domain_is_not_hashed_but_sent() {
        assert_eq!(user_name(b"CORP\\carol"), b"carol");
        assert_eq!(user_name(b"carol"), b"carol");
        assert_eq!(user_name(b"x\\"), b"");
    }
}
