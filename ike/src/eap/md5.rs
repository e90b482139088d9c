//! EAP-MD5 (RFC 3748 5.4): a CHAP challenge (RFC 1994 4.1) inside EAP,
//! as server and client.
//!
//! The server sends a random challenge; the client answers
//! MD5(identifier || secret || challenge), the identifier being the
//! request's; the server compares in constant time. The Type-Data of both
//! is a Value-Size octet, the value, and an optional name (ignored, as
//! charon ignores it). The method authenticates the client only and makes
//! no MSK, so AUTH after it is keyed with SK_p (RFC 7296 2.16), and it
//! cannot stand in for the gateway's AUTH (RFC 5998).

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::{EapType, Method, Step, code, packet, type_data};
use crate::crypto::Secret;
use crate::wire::Eap;

/// The server's challenge length (charon's too).
pub const CHALLENGE_LEN: usize = 16;

/// Finds the peer's `eap` secret (the server's lookup: the peer's
/// identity is known before the method starts).
pub type SecretLookup = Box<dyn Fn() -> Option<Secret> + Send>;

/// MD5(identifier || secret || challenge) (RFC 1994 4.1).
fn chap(identifier: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([identifier]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

/// The value of a request's or response's Type-Data (after its
/// Value-Size octet), if the size fits in the message.
fn value(msg: &Eap) -> Option<&[u8]> {
    let data = type_data(msg);
    let (size, rest) = data.split_first()?;
    rest.get(..usize::from(*size))
}

/// The server's side.
pub struct Server {
    challenge: [u8; CHALLENGE_LEN],
    secret: SecretLookup,
    identifier: u8,
    done: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("eap::md5::Server")
            .field("done", &self.done)
            .finish()
    }
}

impl Server {
    /// A server with its random `challenge`, finding the peer's secret
    /// with `secret`.
    pub fn new(challenge: [u8; CHALLENGE_LEN], secret: SecretLookup) -> Self {
        Self {
            challenge,
            secret,
            identifier: 0,
            done: false,
        }
    }
}

impl Method for Server {
    fn eap_type(&self) -> EapType {
        EapType::MD5
    }

    fn initiate(&mut self, identifier: u8) -> Step {
        self.identifier = identifier;
        let mut td = Vec::with_capacity(CHALLENGE_LEN.saturating_add(1));
        // CHALLENGE_LEN fits Value-Size's octet.
        td.push(CHALLENGE_LEN as u8);
        td.extend_from_slice(&self.challenge);
        Step::Send(packet(code::REQUEST, identifier, EapType::MD5, &td))
    }

    fn process(&mut self, msg: &Eap) -> Step {
        if self.done || msg.code != code::RESPONSE || msg.identifier != self.identifier {
            return Step::Failure("received an invalid EAP-MD5 message".into());
        }
        let Some(got) = value(msg) else {
            return Step::Failure("received an invalid EAP-MD5 message".into());
        };
        let Some(secret) = (self.secret)() else {
            return Step::Failure("no EAP key found for the peer".into());
        };
        let want = chap(self.identifier, secret.as_bytes(), &self.challenge);
        // charon accepts a longer value whose start matches; RFC 1994's
        // MD5 value is exactly 16 octets, so only that is taken.
        if got.len() != want.len() || !bool::from(got.ct_eq(&want[..])) {
            return Step::Failure("EAP-MD5 verification failed".into());
        }
        self.done = true;
        Step::Success
    }

    fn makes_msk(&self) -> bool {
        false
    }

    fn msk(&self) -> Option<&[u8]> {
        None
    }
}

/// The client's side.
pub struct Client {
    secret: Secret,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("eap::md5::Client")
    }
}

impl Client {
    /// A client answering with `secret` (our `eap` secret for the
    /// server).
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }
}

impl Method for Client {
    fn eap_type(&self) -> EapType {
        EapType::MD5
    }

    fn process(&mut self, msg: &Eap) -> Step {
        let Some(challenge) = value(msg).filter(|_| msg.code == code::REQUEST) else {
            return Step::Failure("received an invalid EAP-MD5 message".into());
        };
        let answer = chap(msg.identifier, self.secret.as_bytes(), challenge);
        let mut td = Vec::with_capacity(answer.len().saturating_add(1));
        td.push(16);
        td.extend_from_slice(&answer);
        Step::Send(packet(code::RESPONSE, msg.identifier, EapType::MD5, &td))
    }

    fn makes_msk(&self) -> bool {
        false
    }

    fn msk(&self) -> Option<&[u8]> {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn server(secret: &'static str) -> Server {
        Server::new(
            [7; CHALLENGE_LEN],
            Box::new(move || Some(Secret::from_slice(secret.as_bytes()))),
        )
    }

    fn sent(s: Step) -> Eap {
        match s {
            Step::Send(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chap_is_md5_of_identifier_secret_challenge() {
        // MD5 of the 0x01 octet, "secret" and 16 octets of 7, as
        // `printf '\001secret\a\a\a\a\a\a\a\a\a\a\a\a\a\a\a\a' | md5sum`.
        let got = chap(1, b"secret", &[7; 16]);
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5d1f7330ecab70b6c0750822f547d028");
    }

    #[test]
    fn server_and_client_agree_and_a_wrong_secret_fails() {
        let mut s = server("secret");
        let req = sent(s.initiate(42));
        assert_eq!(req.identifier, 42);
        assert_eq!(type_data(&req).first(), Some(&16));
        let mut c = Client::new(Secret::from_slice(b"secret"));
        let resp = sent(c.process(&req));
        assert_eq!(resp.identifier, 42);
        assert!(matches!(s.process(&resp), Step::Success));
        // Not twice.
        assert!(s.process(&resp).is_failure());

        let mut s = server("secret");
        let req = sent(s.initiate(1));
        let mut c = Client::new(Secret::from_slice(b"wrong"));
        let resp = sent(c.process(&req));
        assert!(s.process(&resp).is_failure());
        assert!(!s.makes_msk() && s.msk().is_none() && c.msk().is_none());
    }

    #[test]
    fn malformed_or_misnumbered_messages_fail() {
        let mut s = server("secret");
        let req = sent(s.initiate(5));
        let mut c = Client::new(Secret::from_slice(b"secret"));
        let mut resp = sent(c.process(&req));
        resp.identifier = 6;
        assert!(s.process(&resp).is_failure());
        // A Value-Size beyond the message, or none.
        for td in [&[17u8, 1, 2][..], &[]] {
            let mut s = server("secret");
            let _ = s.initiate(5);
            let bad = packet(code::RESPONSE, 5, EapType::MD5, td);
            assert!(s.process(&bad).is_failure());
            assert!(
                c.process(&packet(code::REQUEST, 5, EapType::MD5, td))
                    .is_failure()
            );
        }
        // No secret for the peer.
        let mut s = Server::new([0; CHALLENGE_LEN], Box::new(|| None));
        let req = sent(s.initiate(9));
        let resp = sent(c.process(&req));
        assert!(s.process(&resp).is_failure());
    }
}
