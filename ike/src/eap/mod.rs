//! EAP in IKEv2 (RFC 7296 2.16): the interface every EAP method
//! implements, and the methods.
//!
//! The engine's side of EAP (`sa/eap_auth.rs`: the IKE_AUTH round trips,
//! EAP-Identity, EAP-Success/Failure, AUTH from the MSK) drives one
//! [`Method`] per IKE SA and authentication round, in either role, as
//! strongSwan's `eap_authenticator` drives an `eap_method_t`:
//!
//! - server (authenticator): [`Method::initiate`] makes the first request,
//!   then each of the peer's responses goes to [`Method::process`], until
//!   it says [`Step::Success`] (the engine sends EAP-Success) or
//!   [`Step::Failure`] (EAP-Failure, AUTHENTICATION_FAILED);
//! - client (peer): each request of the server goes to
//!   [`Method::process`], which answers [`Step::Send`] with the response;
//!   the server's EAP-Success or EAP-Failure is handled by the engine
//!   (EAP-Success is refused if the method makes an MSK and has none yet:
//!   the server claimed success before the method finished, RFC 3748 4.2).
//!
//! A method that needs the world outside the engine (EAP-RADIUS: a
//! RADIUS server) answers [`Step::Wait`] with what it asks ([`Ask`]); the
//! engine registers it in the `Outside` table, the daemon does it, and the
//! answer comes back to [`Method::resume`], which goes on as `process`
//! would. Nothing in a method does I/O, reads a clock or blocks: what it
//! needs (secrets, random challenges, credentials, the time) is given to
//! its constructor.
//!
//! EAP identifiers: a server method numbers its requests from the one
//! `initiate` is given; a client method answers with the identifier of the
//! request. The engine answers EAP-Success/Failure with the identifier of
//! the last request.
//!
//! - [`mschapv2`]: MS-CHAPv2's responses and EAP-MSCHAPv2's MSK, with the
//!   RFC 2759 and RFC 3079 known-answer vectors.
//! - [`md5`]: EAP-MD5 (RFC 3748 5.4), a CHAP challenge: no MSK, the
//!   client only.
//! - [`tls`]: EAP-TLS (RFC 5216, TLS 1.3 per RFC 9190) as server and
//!   client on rustls, driven in memory: fragmentation, the protected
//!   success indication, the MSK; certificates checked by [`crate::pki`].
//! - [`radius`]: EAP-RADIUS, the server's side relayed to a RADIUS server
//!   (its round trips are [`Ask::Radius`]).

use std::fmt;

use crate::wire::Eap;

pub mod md5;
pub mod mschapv2;
pub mod radius;
pub mod tls;

/// EAP Codes (RFC 3748 4).
pub mod code {
    /// A request (server to peer).
    pub const REQUEST: u8 = 1;
    /// A response (peer to server).
    pub const RESPONSE: u8 = 2;
    /// The server's success.
    pub const SUCCESS: u8 = 3;
    /// The server's failure.
    pub const FAILURE: u8 = 4;
}

/// An EAP method type (RFC 3748 5, IANA "EAP Method Types"); open: any
/// octet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EapType(pub u8);

impl EapType {
    /// Identity (RFC 3748 5.1).
    pub const IDENTITY: Self = Self(1);
    /// Notification (RFC 3748 5.2).
    pub const NOTIFICATION: Self = Self(2);
    /// Legacy Nak (RFC 3748 5.3.1): the peer wants other methods.
    pub const NAK: Self = Self(3);
    /// MD5-Challenge (RFC 3748 5.4).
    pub const MD5: Self = Self(4);
    /// EAP-TLS (RFC 5216).
    pub const TLS: Self = Self(13);
    /// EAP-MSCHAPv2 (draft-kamath-pppext-eap-mschapv2).
    pub const MSCHAPV2: Self = Self(26);
    /// Expanded types (RFC 3748 5.7).
    pub const EXPANDED: Self = Self(254);
}

impl fmt::Display for EapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::IDENTITY => f.write_str("EAP_IDENTITY"),
            Self::NOTIFICATION => f.write_str("EAP_NOTIFICATION"),
            Self::NAK => f.write_str("EAP_NAK"),
            Self::MD5 => f.write_str("EAP_MD5"),
            Self::TLS => f.write_str("EAP_TLS"),
            Self::MSCHAPV2 => f.write_str("EAP_MSCHAPV2"),
            Self(n) => write!(f, "EAP_TYPE_{n}"),
        }
    }
}

/// The type of a request or response (`None`: a Success or Failure, or
/// a message too short to have one).
pub fn type_of(msg: &Eap) -> Option<EapType> {
    match msg.code {
        code::REQUEST | code::RESPONSE => msg.data.first().map(|t| EapType(*t)),
        _ => None,
    }
}

/// The Type-Data of a request or response (after the Type octet; empty
/// if there is none).
pub fn type_data(msg: &Eap) -> &[u8] {
    msg.data.get(1..).unwrap_or_default()
}

/// A request or response of type `t` with `type_data`.
pub fn packet(code: u8, identifier: u8, t: EapType, type_data: &[u8]) -> Eap {
    let mut data = Vec::with_capacity(type_data.len().saturating_add(1));
    data.push(t.0);
    data.extend_from_slice(type_data);
    Eap {
        code,
        identifier,
        data,
    }
}

/// The method a connection's `auth = eap-<name>` names (swanctl's
/// `local.auth` / `remote.auth`); `sa/eap_auth.rs` makes the [`Method`]
/// for it. A new method adds its variant here and its arm there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MethodName {
    /// `eap-mschapv2`.
    Mschapv2,
    /// `eap-md5`.
    Md5,
    /// `eap-tls`.
    Tls,
    /// `eap-radius`: the server's side is a RADIUS server's.
    Radius,
    /// `eap-dynamic` (server): the method the peer asks for with a Nak,
    /// of those we have.
    Dynamic,
    /// `eap` (client): whichever method the server asks for, of those we
    /// have credentials for; a Nak with those for any other
    /// (`sa/eap_client.rs`). A server needs a method: refused there.
    Any,
}

impl MethodName {
    /// The method of an `auth` value (`eap-mschapv2`...); `None`: not an
    /// EAP method we have.
    pub fn parse(auth: &str) -> Option<Self> {
        match auth {
            "eap-mschapv2" => Some(Self::Mschapv2),
            "eap-md5" => Some(Self::Md5),
            "eap-tls" => Some(Self::Tls),
            "eap-radius" => Some(Self::Radius),
            "eap-dynamic" => Some(Self::Dynamic),
            "eap" => Some(Self::Any),
            _ => None,
        }
    }

    /// Whether iked has it yet (the configuration refuses the others).
    pub fn available(self) -> bool {
        matches!(
            self,
            Self::Mschapv2 | Self::Md5 | Self::Radius | Self::Tls | Self::Dynamic | Self::Any
        )
    }

    /// The `auth` values of the methods iked has, for messages.
    pub fn available_names() -> String {
        [
            Self::Mschapv2,
            Self::Md5,
            Self::Tls,
            Self::Radius,
            Self::Dynamic,
            Self::Any,
        ]
        .into_iter()
        .filter(|m| m.available())
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// Its EAP type (`None`: not one type).
    pub fn eap_type(self) -> Option<EapType> {
        match self {
            Self::Mschapv2 => Some(EapType::MSCHAPV2),
            Self::Md5 => Some(EapType::MD5),
            Self::Tls => Some(EapType::TLS),
            Self::Radius | Self::Dynamic | Self::Any => None,
        }
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mschapv2 => "eap-mschapv2",
            Self::Md5 => "eap-md5",
            Self::Tls => "eap-tls",
            Self::Radius => "eap-radius",
            Self::Dynamic => "eap-dynamic",
            Self::Any => "eap",
        })
    }
}

/// What a method does next.
#[derive(Debug)]
pub enum Step {
    /// Send this EAP message to the peer (server: the next request;
    /// client: the response to the request it processed).
    Send(Eap),
    /// Server: the peer is authenticated (the engine sends EAP-Success).
    /// Not for clients: the server's EAP-Success ends a client's method.
    Success,
    /// Authentication failed, and why (for the one info line the engine
    /// logs; never secret material). Server: the engine sends
    /// EAP-Failure; client: the IKE SA fails.
    Failure(String),
    /// Waits for an outside operation: the engine asks it, and gives its
    /// answer to [`Method::resume`].
    Wait(Ask),
}

impl Step {
    /// Whether this is a [`Step::Failure`].
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failure(_))
    }
}

/// What a method asks of the world outside the engine (lane `radius`
/// adds its RADIUS exchange here). The engine hands it to the driver
/// and the answer comes back as an [`Answer`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Ask {
    /// EAP-RADIUS ([`radius`]): this Access-Request, to the RADIUS
    /// server (the daemon's client signs, sends and retransmits it).
    Radius(crate::radius::Request),
    /// Tests: an operation that answers with the same number.
    #[cfg(test)]
    Echo(u32),
}

/// The answer to an [`Ask`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Answer {
    /// The RADIUS server's verified answer to [`Ask::Radius`].
    Radius(crate::radius::Answer),
    /// Tests: the answer to [`Ask::Echo`].
    #[cfg(test)]
    Echo(u32),
    /// The operation failed (timed out, no server answered...): why.
    Failed(String),
}

/// One EAP method in one role (server or client) for one
/// authentication: made by the engine with everything it needs (the
/// identities, the secret, random challenges, credentials), then driven
/// by the messages of the exchange. Every method of lanes `eap`,
/// `eaptls` and `radius` implements this; `sa/eap_auth.rs` makes them
/// from the configuration.
pub trait Method: Send + fmt::Debug {
    /// The method's type (for NAKs and logs).
    fn eap_type(&self) -> EapType;

    /// Server: the first request, numbered `identifier` (the method
    /// numbers the next ones on from it). Clients never initiate:
    /// their default is a failure.
    fn initiate(&mut self, identifier: u8) -> Step {
        let _ = identifier;
        Step::Failure(format!("{} does not initiate", self.eap_type()))
    }

    /// A message of the peer for this method: the server gets the
    /// peer's responses, the client the server's requests (both of the
    /// method's type; the engine handles Identity, Notification, Nak,
    /// Success and Failure).
    fn process(&mut self, msg: &Eap) -> Step;

    /// The answer to the [`Ask`] of the last [`Step::Wait`]: goes on as
    /// [`Method::process`] would have.
    fn resume(&mut self, answer: Answer) -> Step {
        Step::Failure(format!("{} asked nothing, got {answer:?}", self.eap_type()))
    }

    /// Whether the method derives a master session key (RFC 5247). A
    /// client refuses the server's EAP-Success while such a method has
    /// none yet, and both sides then compute AUTH from it; a method
    /// without one leaves AUTH to SK_p (RFC 7296 2.16).
    fn makes_msk(&self) -> bool;

    /// The MSK, once the method has succeeded (64 octets or more).
    fn msk(&self) -> Option<&[u8]>;

    /// Whether the method authenticates the server too (EAP-only
    /// authentication, RFC 5998, is allowed only with such a method).
    fn mutual(&self) -> bool {
        false
    }

    /// The identity the method authenticated the peer as, if it names one
    /// (EAP-MSCHAPv2: the user name of its Response), as sent.
    fn peer_identity(&self) -> Option<Vec<u8>> {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn packets_split_into_type_and_type_data() {
        let p = packet(code::REQUEST, 7, EapType::MSCHAPV2, &[1, 2, 3]);
        assert_eq!(p.data, [26, 1, 2, 3]);
        assert_eq!(type_of(&p), Some(EapType::MSCHAPV2));
        assert_eq!(type_data(&p), [1, 2, 3]);
        let success = Eap {
            code: code::SUCCESS,
            identifier: 7,
            data: Vec::new(),
        };
        assert_eq!(type_of(&success), None);
        assert!(type_data(&success).is_empty());
        // A request without a type has none, and no data.
        let bare = Eap {
            code: code::REQUEST,
            identifier: 1,
            data: Vec::new(),
        };
        assert_eq!(type_of(&bare), None);
        assert!(type_data(&bare).is_empty());
        assert_eq!(EapType(99).to_string(), "EAP_TYPE_99");
        for n in [
            "eap-mschapv2",
            "eap-md5",
            "eap-tls",
            "eap-radius",
            "eap-dynamic",
            "eap",
        ] {
            assert_eq!(
                MethodName::parse(n).map(|m| m.to_string()).as_deref(),
                Some(n)
            );
        }
        assert_eq!(MethodName::parse("eap-sim"), None);
    }
}
