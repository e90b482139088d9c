//! RADIUS packets (RFC 2865 3, RFC 2866 3): checked parsing and emitting,
//! the authenticators that sign them (RFC 2865 3, RFC 2866 3, RFC 3579
//! 3.2's Message-Authenticator) and the MS-MPPE key attributes (RFC 2548
//! 2.4.2/2.4.3) that carry an EAP method's MSK from the server.
//!
//! Invariants: parsing never panics and takes nothing it cannot account
//! for (lengths checked against what contains them, trailing octets after
//! the length field ignored as RFC 2865 3 says); secrets and keys are
//! compared in constant time and returned in [`Zeroizing`] buffers.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The smallest and largest RADIUS packet (RFC 2865 3).
pub const MIN_LEN: usize = 20;
pub const MAX_LEN: usize = 4096;
/// The most one attribute's value can hold (its length octet counts the
/// two header octets).
pub const MAX_VALUE: usize = 253;
/// The authenticator's length.
pub const AUTH_LEN: usize = 16;

/// Packet codes (RFC 2865 3, RFC 2866 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(pub u8);

impl Code {
    pub const ACCESS_REQUEST: Self = Self(1);
    pub const ACCESS_ACCEPT: Self = Self(2);
    pub const ACCESS_REJECT: Self = Self(3);
    pub const ACCOUNTING_REQUEST: Self = Self(4);
    pub const ACCOUNTING_RESPONSE: Self = Self(5);
    pub const ACCESS_CHALLENGE: Self = Self(11);

    /// The code's name for logs.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "Access-Request",
            2 => "Access-Accept",
            3 => "Access-Reject",
            4 => "Accounting-Request",
            5 => "Accounting-Response",
            11 => "Access-Challenge",
            _ => "unknown code",
        }
    }

    /// The answer a request of this code expects (its code is checked
    /// against it before anything else is looked at).
    pub fn answers(self, answer: Code) -> bool {
        match self {
            Self::ACCESS_REQUEST => matches!(
                answer,
                Self::ACCESS_ACCEPT | Self::ACCESS_REJECT | Self::ACCESS_CHALLENGE
            ),
            Self::ACCOUNTING_REQUEST => answer == Self::ACCOUNTING_RESPONSE,
            _ => false,
        }
    }
}

/// Attribute types used here (RFC 2865 5, RFC 2866 5, RFC 2869 5,
/// RFC 3162, RFC 3579 3).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const NAS_PORT: u8 = 5;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const SESSION_TIMEOUT: u8 = 27;
    pub const CALLED_STATION_ID: u8 = 30;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_SESSION_ID: u8 = 44;
    pub const ACCT_AUTHENTIC: u8 = 45;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    pub const NAS_PORT_TYPE: u8 = 61;
    pub const EAP_MESSAGE: u8 = 79;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    pub const NAS_PORT_ID: u8 = 87;
    pub const NAS_IPV6_ADDRESS: u8 = 95;
}

/// Microsoft's enterprise number and its MPPE key vendor types (RFC 2548).
pub const VENDOR_MICROSOFT: u32 = 311;
pub const MS_MPPE_SEND_KEY: u8 = 16;
pub const MS_MPPE_RECV_KEY: u8 = 17;

/// Why a datagram is not a RADIUS packet we take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("RADIUS packet of {0} octets (20 to 4096, and its length field within the datagram)")]
    Length(usize),
    #[error("RADIUS attribute at offset {0} runs past the packet")]
    Attribute(usize),
    #[error("RADIUS packet too long to emit ({0} octets)")]
    TooLong(usize),
    #[error("RADIUS response authenticator does not match")]
    Authenticator,
    #[error("RADIUS Message-Authenticator missing or wrong")]
    MessageAuthenticator,
}

/// One attribute: its type and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub kind: u8,
    pub value: Vec<u8>,
}

/// A RADIUS packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; AUTH_LEN],
    pub attrs: Vec<Attr>,
}

impl Packet {
    /// A packet of `code` with no attributes (identifier and authenticator
    /// are set when it is signed).
    pub fn new(code: Code) -> Self {
        Self {
            code,
            identifier: 0,
            authenticator: [0; AUTH_LEN],
            attrs: Vec::new(),
        }
    }

    /// Adds an attribute, split over as many attributes of the type as
    /// its value needs (RFC 3579 3.1 for EAP-Message; an empty value is
    /// one empty attribute, as an EAP-Start).
    pub fn add(&mut self, kind: u8, value: &[u8]) {
        if value.is_empty() {
            self.attrs.push(Attr {
                kind,
                value: Vec::new(),
            });
        }
        for chunk in value.chunks(MAX_VALUE) {
            self.attrs.push(Attr {
                kind,
                value: chunk.to_vec(),
            });
        }
    }

    /// Adds a 32-bit integer attribute.
    pub fn add_u32(&mut self, kind: u8, value: u32) {
        self.add(kind, &value.to_be_bytes());
    }

    /// The first attribute of `kind`.
    pub fn get(&self, kind: u8) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|a| a.kind == kind)
            .map(|a| a.value.as_slice())
    }

    /// The first attribute of `kind` as a 32-bit integer.
    pub fn get_u32(&self, kind: u8) -> Option<u32> {
        let v: [u8; 4] = self.get(kind)?.try_into().ok()?;
        Some(u32::from_be_bytes(v))
    }

    /// Every attribute of `kind`, concatenated (EAP-Message).
    pub fn joined(&self, kind: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for a in self.attrs.iter().filter(|a| a.kind == kind) {
            out.extend_from_slice(&a.value);
        }
        out
    }

    /// Parses a datagram. Octets after the length field's end are padding
    /// and ignored (RFC 2865 3); a length beyond the datagram is an error.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let (&[code, identifier, l0, l1], rest) =
            split::<4>(data).ok_or(Error::Length(data.len()))?;
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        if !(MIN_LEN..=MAX_LEN).contains(&len) || len > data.len() {
            return Err(Error::Length(len));
        }
        let (authenticator, _) = split::<AUTH_LEN>(rest).ok_or(Error::Length(len))?;
        let body = data.get(MIN_LEN..len).ok_or(Error::Length(len))?;
        let mut attrs = Vec::new();
        let mut at = body;
        let mut offset = MIN_LEN;
        while !at.is_empty() {
            let (&[kind, alen], _) = split::<2>(at).ok_or(Error::Attribute(offset))?;
            let alen = usize::from(alen);
            if alen < 2 {
                return Err(Error::Attribute(offset));
            }
            let value = at.get(2..alen).ok_or(Error::Attribute(offset))?;
            attrs.push(Attr {
                kind,
                value: value.to_vec(),
            });
            at = at.get(alen..).ok_or(Error::Attribute(offset))?;
            offset = offset.saturating_add(alen);
        }
        Ok(Self {
            code: Code(code),
            identifier,
            authenticator: *authenticator,
            attrs,
        })
    }

    /// The packet's octets as they are (authenticators as set).
    pub fn emit(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(MIN_LEN);
        out.push(self.code.0);
        out.push(self.identifier);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.authenticator);
        for a in &self.attrs {
            let alen = a
                .value
                .len()
                .checked_add(2)
                .and_then(|l| u8::try_from(l).ok())
                .ok_or(Error::TooLong(a.value.len()))?;
            out.push(a.kind);
            out.push(alen);
            out.extend_from_slice(&a.value);
        }
        let len = u16::try_from(out.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_LEN)
            .ok_or(Error::TooLong(out.len()))?;
        if let Some(l) = out.get_mut(2..4) {
            l.copy_from_slice(&len.to_be_bytes());
        }
        Ok(out)
    }

    /// Signs a request with `identifier` and returns its octets. An
    /// Access-Request gets `authenticator` (random, from the caller) and
    /// a Message-Authenticator (RFC 3579 3.2: required with EAP-Message,
    /// and it protects the whole request); an Accounting-Request gets the
    /// MD5 authenticator of RFC 2866 3.
    pub fn sign_request(
        &mut self,
        identifier: u8,
        authenticator: [u8; AUTH_LEN],
        secret: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.identifier = identifier;
        self.attrs.retain(|a| a.kind != attr::MESSAGE_AUTHENTICATOR);
        if self.code == Code::ACCOUNTING_REQUEST {
            self.authenticator = [0; AUTH_LEN];
            let bytes = self.emit()?;
            self.authenticator = md5_of(&[&bytes, secret]);
            return self.emit();
        }
        self.authenticator = authenticator;
        self.attrs.push(Attr {
            kind: attr::MESSAGE_AUTHENTICATOR,
            value: vec![0; AUTH_LEN],
        });
        let bytes = self.emit()?;
        let mac = hmac_md5(secret, &bytes);
        if let Some(a) = self.attrs.last_mut() {
            a.value = mac.to_vec();
        }
        self.emit()
    }

    /// Checks a response to the request whose authenticator was
    /// `request_auth`: its Response Authenticator (RFC 2865 3) and its
    /// Message-Authenticator (RFC 3579 3.2), which must be there when the
    /// response carries EAP-Message. `raw` is the datagram it was parsed
    /// from (the authenticators cover its octets as received).
    pub fn verify_response(
        &self,
        raw: &[u8],
        request_auth: &[u8; AUTH_LEN],
        secret: &[u8],
    ) -> Result<(), Error> {
        let len = raw
            .get(2..4)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or(Error::Length(raw.len()))?;
        let head = raw.get(..4).ok_or(Error::Length(len))?;
        let body = raw.get(MIN_LEN..len).ok_or(Error::Length(len))?;
        let expect = md5_of(&[head, request_auth, body, secret]);
        if !bool::from(expect.ct_eq(&self.authenticator)) {
            return Err(Error::Authenticator);
        }
        match message_authenticator_offset(body) {
            Some(at) => {
                let mut copy = raw.get(..len).ok_or(Error::Length(len))?.to_vec();
                let given = copy
                    .get(
                        MIN_LEN.saturating_add(at)
                            ..MIN_LEN.saturating_add(at).saturating_add(AUTH_LEN),
                    )
                    .ok_or(Error::MessageAuthenticator)?
                    .to_vec();
                if let Some(a) = copy.get_mut(4..MIN_LEN) {
                    a.copy_from_slice(request_auth);
                }
                let start = MIN_LEN.saturating_add(at);
                if let Some(m) = copy.get_mut(start..start.saturating_add(AUTH_LEN)) {
                    m.fill(0);
                }
                let mac = hmac_md5(secret, &copy);
                if bool::from(mac.ct_eq(given.as_slice())) {
                    Ok(())
                } else {
                    Err(Error::MessageAuthenticator)
                }
            }
            None if self.get(attr::EAP_MESSAGE).is_some() => Err(Error::MessageAuthenticator),
            None => Ok(()),
        }
    }

    /// The MSK from an Access-Accept's MS-MPPE-Recv-Key and
    /// MS-MPPE-Send-Key (RFC 2548 2.4.2/2.4.3, decrypted with the
    /// request's authenticator), as strongSwan's `eap_radius` builds it:
    /// Recv-Key then Send-Key, zero-padded to 64 octets (RFC 3748's
    /// minimum MSK). `None` unless both are there and decrypt cleanly.
    pub fn mppe_msk(
        &self,
        request_auth: &[u8; AUTH_LEN],
        secret: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let mut send = None;
        let mut recv = None;
        for a in self
            .attrs
            .iter()
            .filter(|a| a.kind == attr::VENDOR_SPECIFIC)
        {
            let Some((vendor, rest)) = split::<4>(&a.value) else {
                continue;
            };
            let Some((&[vtype, vlen], rest)) = split::<2>(rest) else {
                continue;
            };
            if u32::from_be_bytes(*vendor) != VENDOR_MICROSOFT
                || usize::from(vlen) != rest.len().saturating_add(2)
            {
                continue;
            }
            let Some((salt, cipher)) = split::<2>(rest) else {
                continue;
            };
            match vtype {
                MS_MPPE_SEND_KEY => send = mppe_decrypt(secret, request_auth, salt, cipher),
                MS_MPPE_RECV_KEY => recv = mppe_decrypt(secret, request_auth, salt, cipher),
                _ => {}
            }
        }
        let (send, recv) = (send?, recv?);
        let mut msk = Zeroizing::new(Vec::with_capacity(64));
        msk.extend_from_slice(&recv);
        msk.extend_from_slice(&send);
        if msk.len() < 64 {
            msk.resize(64, 0);
        }
        Some(msk)
    }
}

/// The offset in `body` (the attributes) of the Message-Authenticator's
/// value, if there is one of the right length.
fn message_authenticator_offset(body: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    loop {
        let kind = *body.get(at)?;
        let alen = usize::from(*body.get(at.checked_add(1)?)?);
        if alen < 2 {
            return None;
        }
        if kind == attr::MESSAGE_AUTHENTICATOR && alen == AUTH_LEN.checked_add(2)? {
            return at.checked_add(2);
        }
        at = at.checked_add(alen)?;
    }
}

/// Decrypts an MS-MPPE key's string (RFC 2548 2.4.2): b(1) = MD5(S + R +
/// A), c(i) = p(i) xor b(i), b(i) = MD5(S + c(i-1)); the plaintext is the
/// key's length, the key and padding. `None` if the string is not a
/// non-empty multiple of 16 or the length octet points past it.
pub fn mppe_decrypt(
    secret: &[u8],
    request_auth: &[u8; AUTH_LEN],
    salt: &[u8; 2],
    cipher: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if cipher.is_empty() || !cipher.len().is_multiple_of(AUTH_LEN) {
        return None;
    }
    let mut plain = Zeroizing::new(Vec::with_capacity(cipher.len()));
    let mut b = md5_of(&[secret, request_auth, salt]);
    for c in cipher.chunks(AUTH_LEN) {
        plain.extend(c.iter().zip(b.iter()).map(|(c, b)| c ^ b));
        b = md5_of(&[secret, c]);
    }
    let (&len, rest) = plain.split_first()?;
    let key = rest.get(..usize::from(len))?;
    Some(Zeroizing::new(key.to_vec()))
}

/// Encrypts an MS-MPPE key the way a server does (RFC 2548 2.4.2): the
/// inverse of [`mppe_decrypt`], for tests and for a test server.
pub fn mppe_encrypt(
    secret: &[u8],
    request_auth: &[u8; AUTH_LEN],
    salt: &[u8; 2],
    key: &[u8],
) -> Option<Vec<u8>> {
    let mut plain = vec![u8::try_from(key.len()).ok()?];
    plain.extend_from_slice(key);
    let padded = plain.len().div_ceil(AUTH_LEN).checked_mul(AUTH_LEN)?;
    plain.resize(padded, 0);
    let mut out = Vec::with_capacity(padded);
    let mut b = md5_of(&[secret, request_auth, salt]);
    for p in plain.chunks(AUTH_LEN) {
        let c: Vec<u8> = p.iter().zip(b.iter()).map(|(p, b)| p ^ b).collect();
        b = md5_of(&[secret, &c]);
        out.extend_from_slice(&c);
    }
    Some(out)
}

/// The first `N` octets of `data` and the rest.
fn split<const N: usize>(data: &[u8]) -> Option<(&[u8; N], &[u8])> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    Some((head, rest))
}

fn md5_of(parts: &[&[u8]]) -> [u8; AUTH_LEN] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; AUTH_LEN] {
    // HMAC takes a key of any length; the error is unreachable, and an
    // all-zero MAC would only fail verification.
    match Hmac::<Md5>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().into()
        }
        Err(_) => [0; AUTH_LEN],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2865 7.1's example: the Access-Request's octets parse and emit
    /// back unchanged, and the server's Access-Accept verifies against
    /// the request's authenticator with secret "xyzzy5461".
    #[test]
    fn rfc2865_example_verifies() {
        let request = hex::decode(concat!(
            "010000380f403f9473978057bd83d5cb98f4227a01066e656d6f",
            "02120dbe708d93d413ce3196e43f782a0aee0406c0a80110050600000003",
            "ff"
        ))
        .unwrap();
        // The RFC's request ends with NAS-Port = 3 (its length field says
        // 0x38 = 56 octets): a trailing octet beyond is ignored.
        let p = Packet::parse(&request).unwrap();
        assert_eq!(p.code, Code::ACCESS_REQUEST);
        assert_eq!(p.get(attr::USER_NAME), Some(&b"nemo"[..]));
        assert_eq!(p.get_u32(attr::NAS_PORT), Some(3));
        assert_eq!(p.emit().unwrap(), request[..56]);
        let accept = hex::decode(concat!(
            "0200002686fe220e7624ba2a1005f6bf9b55e0b20606000000010f06000000000e06",
            "c0a80103"
        ))
        .unwrap();
        let a = Packet::parse(&accept).unwrap();
        a.verify_response(&accept, &p.authenticator, b"xyzzy5461")
            .unwrap();
        assert_eq!(
            a.verify_response(&accept, &p.authenticator, b"xyzzy5462"),
            Err(Error::Authenticator)
        );
    }

    #[test]
    fn access_request_carries_a_message_authenticator_a_server_checks() {
        let mut p = Packet::new(Code::ACCESS_REQUEST);
        p.add(attr::USER_NAME, b"carol");
        p.add(attr::EAP_MESSAGE, &[7; 600]);
        let bytes = p.sign_request(9, [3; 16], b"s3cret").unwrap();
        let q = Packet::parse(&bytes).unwrap();
        // 600 octets of EAP go in three attributes (253 + 253 + 94).
        assert_eq!(
            q.attrs
                .iter()
                .filter(|a| a.kind == attr::EAP_MESSAGE)
                .count(),
            3
        );
        assert_eq!(q.joined(attr::EAP_MESSAGE), vec![7; 600]);
        // The server's check (RFC 3579 3.2): HMAC-MD5 over the request
        // with the Message-Authenticator zeroed.
        let mac = q.get(attr::MESSAGE_AUTHENTICATOR).unwrap().to_vec();
        let mut zeroed = bytes.clone();
        let at = zeroed.len() - 16;
        zeroed[at..].fill(0);
        assert_eq!(hmac_md5(b"s3cret", &zeroed).to_vec(), mac);
    }

    /// A response signed as a server signs it, then altered in one octet.
    #[test]
    fn responses_with_eap_need_a_valid_message_authenticator() {
        let req_auth = [5u8; 16];
        let secret = b"testing123";
        let server_sign = |mut p: Packet, with_ma: bool| -> Vec<u8> {
            if with_ma {
                p.authenticator = req_auth;
                p.attrs.push(Attr {
                    kind: attr::MESSAGE_AUTHENTICATOR,
                    value: vec![0; 16],
                });
                let mac = hmac_md5(secret, &p.emit().unwrap());
                p.attrs.last_mut().unwrap().value = mac.to_vec();
            }
            p.authenticator = req_auth;
            let b = p.emit().unwrap();
            p.authenticator = md5_of(&[&b[..4], &req_auth, &b[20..], secret]);
            p.emit().unwrap()
        };
        let mut challenge = Packet::new(Code::ACCESS_CHALLENGE);
        challenge.add(attr::EAP_MESSAGE, &[1, 2, 0, 6, 26, 1]);
        challenge.add(attr::STATE, b"st");
        let good = server_sign(challenge.clone(), true);
        let p = Packet::parse(&good).unwrap();
        assert_eq!(p.verify_response(&good, &req_auth, secret), Ok(()));
        let bare = server_sign(challenge, false);
        let p = Packet::parse(&bare).unwrap();
        assert_eq!(
            p.verify_response(&bare, &req_auth, secret),
            Err(Error::MessageAuthenticator)
        );
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let p = Packet::parse(&bad).unwrap();
        assert_eq!(
            p.verify_response(&bad, &req_auth, secret),
            Err(Error::Authenticator)
        );
    }

    #[test]
    fn accounting_request_authenticator_is_rfc2866s_md5() {
        let mut p = Packet::new(Code::ACCOUNTING_REQUEST);
        p.add_u32(attr::ACCT_STATUS_TYPE, 1);
        let bytes = p.sign_request(4, [9; 16], b"k").unwrap();
        let mut zeroed = bytes.clone();
        zeroed[4..20].fill(0);
        assert_eq!(md5_of(&[&zeroed, b"k"]), bytes[4..20]);
        assert!(
            Packet::parse(&bytes)
                .unwrap()
                .get(attr::MESSAGE_AUTHENTICATOR)
                .is_none()
        );
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert!(Packet::parse(&[]).is_err());
        assert!(Packet::parse(&[1; 19]).is_err());
        // Length field beyond the datagram.
        let mut p = vec![2, 0, 0, 30];
        p.extend_from_slice(&[0; 16]);
        assert_eq!(Packet::parse(&p), Err(Error::Length(30)));
        // An attribute of length 1, and one running past the end.
        let mut p = vec![2, 0, 0, 22];
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(&[1, 1]);
        assert_eq!(Packet::parse(&p), Err(Error::Attribute(20)));
        p[21] = 3;
        assert_eq!(Packet::parse(&p), Err(Error::Attribute(20)));
    }

    /// RFC 2548 2.4.2's construction, with the salt's high bit set as it
    /// requires: a 16-octet key makes two cipher blocks; decryption
    /// inverts encryption, and a wrong secret or authenticator gives
    /// another key (or none).
    #[test]
    fn mppe_keys_round_trip() {
        let auth = [0x42; 16];
        let key: Vec<u8> = (0..32).collect();
        let c = mppe_encrypt(b"sec", &auth, &[0x80, 0x01], &key).unwrap();
        assert_eq!(c.len(), 48);
        let k = mppe_decrypt(b"sec", &auth, &[0x80, 0x01], &c).unwrap();
        assert_eq!(*k, key);
        assert_ne!(
            mppe_decrypt(b"sec", &[0x43; 16], &[0x80, 0x01], &c).map(|k| k.to_vec()),
            Some(key.clone())
        );
        assert!(mppe_decrypt(b"sec", &auth, &[0x80, 0x01], &c[..47]).is_none());
    }

    /// A real Access-Accept, captured from FreeRADIUS 3.2 (Debian 12) at
    /// the end of EAP-MSCHAPv2 for "carol" / "Ch4pV2-pw" with secret
    /// "lab-radius-secret" (ike-daemon/tests/radius_lab.rs): its
    /// authenticators verify, and its MS-MPPE keys decrypt to the MSK
    /// that MS-CHAPv2 computes from the password, the server's challenge
    /// and the peer challenge the test used.
    #[test]
    fn freeradius_access_accept_gives_mschapv2s_msk() {
        let accept = hex::decode(concat!(
            "0202009fc228bf7ebce483899b15041d89ca57831a0c000001370706000000011a0c",
            "000001370806000000061a2a000001371024865ac2f45784b3c72f79c2a9352f2649",
            "6d4ea39623d10385453062cd4b0b48c10eb21a2a0000013711248cb79f6cc01d1e44",
            "8a9d5162487d2ad0897ff36524f30f190047862078068093f9e54f06030200045012",
            "feb60d8d19e35b8aebc918256dae016201076361726f6c"
        ))
        .unwrap();
        let req_auth: [u8; 16] = hex::decode("569db2a93aaef3f8ec578dbc479c9447")
            .unwrap()
            .try_into()
            .unwrap();
        let challenge: [u8; 16] = hex::decode("ca6b8d6da022d93fd4f1ab1c96711822")
            .unwrap()
            .try_into()
            .unwrap();
        let secret = b"lab-radius-secret";
        let p = Packet::parse(&accept).unwrap();
        assert_eq!(p.code, Code::ACCESS_ACCEPT);
        p.verify_response(&accept, &req_auth, secret).unwrap();
        assert_eq!(p.joined(attr::EAP_MESSAGE), [3, 2, 0, 4]);
        use crate::eap::mschapv2;
        let nt_hash = mschapv2::nt_password_hash("Ch4pV2-pw");
        let nt = mschapv2::nt_response(&challenge, &[0x5a; 16], b"carol", &nt_hash);
        let msk = p.mppe_msk(&req_auth, secret).unwrap();
        assert_eq!(*msk, *mschapv2::msk(&nt_hash, &nt));
        // Another secret: neither the authenticator nor the keys.
        assert!(p.verify_response(&accept, &req_auth, b"x").is_err());
        assert_ne!(
            p.mppe_msk(&req_auth, b"x").map(|m| m.to_vec()),
            Some(msk.to_vec())
        );
    }

    #[test]
    fn the_msk_is_recv_then_send_padded_to_64() {
        let auth = [0x11; 16];
        let vsa = |t: u8, key: &[u8], salt: [u8; 2]| {
            let c = mppe_encrypt(b"s", &auth, &salt, key).unwrap();
            let mut v = VENDOR_MICROSOFT.to_be_bytes().to_vec();
            v.push(t);
            v.push(u8::try_from(c.len() + 4).unwrap());
            v.extend_from_slice(&salt);
            v.extend_from_slice(&c);
            v
        };
        let mut p = Packet::new(Code::ACCESS_ACCEPT);
        p.add(
            attr::VENDOR_SPECIFIC,
            &vsa(MS_MPPE_SEND_KEY, &[1; 16], [0x80, 1]),
        );
        assert!(p.mppe_msk(&auth, b"s").is_none());
        p.add(
            attr::VENDOR_SPECIFIC,
            &vsa(MS_MPPE_RECV_KEY, &[2; 16], [0x80, 2]),
        );
        let msk = p.mppe_msk(&auth, b"s").unwrap();
        let mut expect = vec![2; 16];
        expect.extend_from_slice(&[1; 16]);
        expect.resize(64, 0);
        assert_eq!(*msk, expect);
    }
}
