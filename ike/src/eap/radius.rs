//! EAP-RADIUS (server role): the EAP conversation is the RADIUS server's
//! (RFC 3579), as with strongSwan's `eap-radius` plugin. Each response of
//! the peer goes to the server in an Access-Request; an Access-Challenge's
//! EAP-Message is the next request to the peer; an Access-Accept ends it
//! with the MSK from its MS-MPPE keys; an Access-Reject fails it.
//!
//! The method asks the RADIUS round trip of the engine ([`Ask::Radius`],
//! an outside operation the daemon does with its client, `daemon::radius`)
//! and goes on when the answer comes ([`Answer::Radius`]). The method type
//! is whichever the server chose (the last request's). The conversation
//! stays with the server that answered first: the State it hands out
//! means nothing to another.

use std::fmt;

use zeroize::Zeroizing;

use super::{Answer, Ask, EapType, Method, Step, code, type_of};
use crate::radius::packet::{Code, attr};
use crate::radius::{self, Request, Session, Settings};
use crate::wire::Eap;

/// An EAP message's octets (RFC 3748 4: Code, Identifier, Length, data).
pub fn eap_to_bytes(msg: &Eap) -> Vec<u8> {
    let len = u16::try_from(msg.data.len().saturating_add(4)).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(usize::from(len));
    out.push(msg.code);
    out.push(msg.identifier);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&msg.data);
    out
}

/// An EAP message from its octets: the Length must be the octets' count.
pub fn eap_from_bytes(data: &[u8]) -> Option<Eap> {
    let (&[code, identifier, l0, l1], rest) = data.split_first_chunk::<4>()?;
    (usize::from(u16::from_be_bytes([l0, l1])) == data.len()).then(|| Eap {
        code,
        identifier,
        data: rest.to_vec(),
    })
}

/// The EAP-RADIUS method for one peer.
pub struct Radius {
    settings: Settings,
    session: Session,
    /// The peer's identity (its EAP-Identity, or IKE identity when none
    /// was asked), User-Name of every request.
    user: Vec<u8>,
    state: Option<Vec<u8>>,
    server: Option<usize>,
    eap_type: EapType,
    msk: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for Radius {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Radius")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("server", &self.server)
            .field("eap_type", &self.eap_type)
            .field("msk", &self.msk.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl Radius {
    /// The method for `user` on the IKE SA `session`. `settings` need no
    /// servers (the daemon holds those and their secrets): the method
    /// reads `id_prefix`, `eap_start` and `station_id_with_port`.
    pub fn new(settings: Settings, session: Session, user: Vec<u8>) -> Self {
        Self {
            settings,
            session,
            user,
            state: None,
            server: None,
            // Until the server picks one (its first Access-Challenge).
            eap_type: EapType::IDENTITY,
            msk: None,
        }
    }

    fn ask(&self, eap: &[u8]) -> Step {
        let packet = radius::access_request(
            &self.settings,
            &self.session,
            &self.user,
            eap,
            self.state.as_deref(),
        );
        Step::Wait(Ask::Radius(Request {
            packet,
            server: self.server,
        }))
    }

    fn who(&self) -> String {
        String::from_utf8_lossy(&self.user).into_owned()
    }
}

impl Method for Radius {
    fn eap_type(&self) -> EapType {
        self.eap_type
    }

    /// The peer's identity as an EAP-Identity response numbered
    /// `identifier` (charon's `add_eap_identity`), or an empty EAP-Message
    /// (EAP-Start, RFC 3579 2.1) with `eap_start`: the server answers
    /// with its first request.
    fn initiate(&mut self, identifier: u8) -> Step {
        if self.settings.eap_start {
            self.ask(&[])
        } else {
            let id = radius::eap_identity(&self.settings, identifier, &self.user);
            self.ask(&id)
        }
    }

    fn process(&mut self, msg: &Eap) -> Step {
        self.ask(&eap_to_bytes(msg))
    }

    fn resume(&mut self, answer: Answer) -> Step {
        let a = match answer {
            Answer::Radius(a) => a,
            Answer::Failed(why) => return Step::Failure(why),
            #[allow(unreachable_patterns)]
            other => return Step::Failure(format!("EAP-RADIUS got {other:?}")),
        };
        self.server = Some(a.server);
        self.state = a.packet.get(attr::STATE).map(<[u8]>::to_vec);
        match a.packet.code {
            Code::ACCESS_CHALLENGE => {
                let eap = a.packet.joined(attr::EAP_MESSAGE);
                match eap_from_bytes(&eap) {
                    Some(m) if m.code == code::REQUEST => {
                        if let Some(t) = type_of(&m) {
                            self.eap_type = t;
                        }
                        Step::Send(m)
                    }
                    _ => Step::Failure(format!(
                        "RADIUS Access-Challenge for '{}' without an EAP request",
                        self.who()
                    )),
                }
            }
            Code::ACCESS_ACCEPT => {
                self.msk = a.msk;
                Step::Success
            }
            _ => {
                let reply = a
                    .packet
                    .get(attr::REPLY_MESSAGE)
                    .map(|m| format!(": {}", String::from_utf8_lossy(m)))
                    .unwrap_or_default();
                Step::Failure(format!(
                    "RADIUS authentication of '{}' failed{reply}",
                    self.who()
                ))
            }
        }
    }

    /// Whether the server sent MS-MPPE keys: an Access-Accept without
    /// them (a method that makes no key, such as EAP-MD5) leaves AUTH to
    /// SK_p, as charon does.
    fn makes_msk(&self) -> bool {
        self.msk.is_some()
    }

    fn msk(&self) -> Option<&[u8]> {
        self.msk.as_ref().map(|m| m.as_slice())
    }

    fn peer_identity(&self) -> Option<Vec<u8>> {
        Some(self.user.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::radius::packet::Packet;

    fn method(eap_start: bool) -> Radius {
        let settings = Settings {
            eap_start,
            ..Settings::default()
        };
        let session = Session {
            name: "rw".into(),
            unique: 3,
            prefix: 1,
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "198.51.100.2:4500".parse().unwrap(),
        };
        Radius::new(settings, session, b"carol".to_vec())
    }

    fn asked(step: Step) -> Request {
        match step {
            Step::Wait(Ask::Radius(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn answer(code: Code, server: usize, attrs: &[(u8, &[u8])], msk: Option<Vec<u8>>) -> Answer {
        let mut packet = Packet::new(code);
        for (k, v) in attrs {
            packet.add(*k, v);
        }
        Answer::Radius(crate::radius::Answer {
            server,
            packet,
            msk: msk.map(Zeroizing::new),
            request_auth: [0; 16],
        })
    }

    #[test]
    fn a_conversation_to_access_accept() {
        let mut m = method(false);
        let r = asked(m.initiate(9));
        assert_eq!(r.server, None);
        assert_eq!(
            r.packet.joined(attr::EAP_MESSAGE),
            [2, 9, 0, 10, 1, b'c', b'a', b'r', b'o', b'l']
        );
        assert_eq!(r.packet.get(attr::USER_NAME), Some(&b"carol"[..]));
        // The server's first request: EAP-MSCHAPv2, with a State.
        let req = [1, 10, 0, 7, 26, 1, 10];
        let Step::Send(to_peer) = m.resume(answer(
            Code::ACCESS_CHALLENGE,
            1,
            &[(attr::EAP_MESSAGE, &req), (attr::STATE, b"s1")],
            None,
        )) else {
            panic!()
        };
        assert_eq!(eap_to_bytes(&to_peer), req);
        assert_eq!(m.eap_type(), EapType::MSCHAPV2);
        // The peer's response goes to the same server, with the State.
        let resp = Eap {
            code: code::RESPONSE,
            identifier: 10,
            data: vec![26, 2],
        };
        let r = asked(m.process(&resp));
        assert_eq!(r.server, Some(1));
        assert_eq!(r.packet.get(attr::STATE), Some(&b"s1"[..]));
        assert_eq!(r.packet.joined(attr::EAP_MESSAGE), [2, 10, 0, 6, 26, 2]);
        assert!(!m.makes_msk());
        let step = m.resume(answer(
            Code::ACCESS_ACCEPT,
            1,
            &[(attr::EAP_MESSAGE, &[3, 10, 0, 4])],
            Some(vec![7; 64]),
        ));
        assert!(matches!(step, Step::Success));
        assert!(m.makes_msk());
        assert_eq!(m.msk(), Some(&[7; 64][..]));
        assert_eq!(m.peer_identity().as_deref(), Some(&b"carol"[..]));
    }

    #[test]
    fn reject_timeout_and_junk_fail_with_a_reason() {
        let mut m = method(true);
        let r = asked(m.initiate(1));
        // EAP-Start: one empty EAP-Message.
        assert_eq!(
            r.packet
                .attrs
                .iter()
                .filter(|a| a.kind == attr::EAP_MESSAGE)
                .count(),
            1
        );
        assert!(r.packet.joined(attr::EAP_MESSAGE).is_empty());
        let Step::Failure(why) = m.resume(answer(
            Code::ACCESS_REJECT,
            0,
            &[(attr::REPLY_MESSAGE, b"locked")],
            None,
        )) else {
            panic!()
        };
        assert_eq!(why, "RADIUS authentication of 'carol' failed: locked");
        let mut m = method(false);
        let _ = m.initiate(1);
        let Step::Failure(why) = m.resume(Answer::Failed(
            "RADIUS Access-Request to 'a' timed out".into(),
        )) else {
            panic!()
        };
        assert!(why.contains("timed out"));
        let mut m = method(false);
        let _ = m.initiate(1);
        // A challenge whose EAP-Message is not a request (or not EAP).
        for eap in [&[3u8, 1, 0, 4][..], &[1, 1, 0, 9, 26]] {
            let step = m.resume(answer(
                Code::ACCESS_CHALLENGE,
                0,
                &[(attr::EAP_MESSAGE, eap)],
                None,
            ));
            assert!(step.is_failure(), "{eap:?}");
        }
        assert!(!m.makes_msk());
        assert!(format!("{m:?}").contains("carol"));
    }

    #[test]
    fn eap_octets_round_trip() {
        let e = Eap {
            code: 1,
            identifier: 4,
            data: vec![26, 1],
        };
        assert_eq!(eap_from_bytes(&eap_to_bytes(&e)), Some(e));
        assert_eq!(eap_from_bytes(&[1, 1, 0]), None);
        assert_eq!(eap_from_bytes(&[1, 1, 0, 5]), None);
    }
}
