//! Which payloads each exchange and role may or must carry, as one table
//! (after strongSwan's message rules), and the check against it.
//!
//! Minimums follow strongSwan rather than the happy-path diagrams of RFC
//! 7296: IKE_AUTH requires nothing in particular, because with EAP or
//! multiple authentication rounds (RFC 4739) its messages carry only some of
//! IDi, AUTH, EAP, SA, TSi and TSr; the state machine checks those.

use super::Message;
use super::codes::{ExchangeType, NotifyType, PayloadType};
use super::notify::Notify;
use super::payload::{Encrypted, Payload};

/// How often one payload type may appear in a message, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadRule {
    /// The payload type.
    pub payload: PayloadType,
    /// Fewest occurrences (unless relaxed, see [`MessageRule::standalone`]).
    pub min: u8,
    /// Most occurrences.
    pub max: u8,
    /// Whether it must be inside SK (true) or outside (false).
    pub encrypted: bool,
}

/// The payload rules of one exchange type and role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRule {
    /// The exchange.
    pub exchange: ExchangeType,
    /// Whether this is for responses (R flag set).
    pub response: bool,
    /// The payloads allowed; any other known payload type is refused.
    pub payloads: &'static [PayloadRule],
    /// Status notifications that, in a response, stand in for the required
    /// payloads (as error notifications always do): an IKE_SA_INIT response
    /// may be just N(COOKIE).
    pub standalone: &'static [NotifyType],
}

const MAX_N: u8 = 20;
const MAX_V: u8 = 20;
const MAX_D: u8 = 20;
const MAX_CERT: u8 = 8;
const MAX_CERTREQ: u8 = 20;

const fn r(payload: PayloadType, min: u8, max: u8, encrypted: bool) -> PayloadRule {
    PayloadRule {
        payload,
        min,
        max,
        encrypted,
    }
}

use PayloadType as P;

/// The rules for IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA and INFORMATIONAL,
/// requests and responses.
#[rustfmt::skip]
pub static MESSAGE_RULES: &[MessageRule] = &[
    MessageRule { exchange: ExchangeType::IKE_SA_INIT, response: false, standalone: &[], payloads: &[
        r(P::NOTIFY, 0, MAX_N, false), r(P::SA, 1, 1, false), r(P::KE, 1, 1, false),
        r(P::NONCE, 1, 1, false), r(P::VENDOR_ID, 0, MAX_V, false),
    ]},
    MessageRule { exchange: ExchangeType::IKE_SA_INIT, response: true,
        standalone: &[NotifyType::COOKIE, NotifyType::REDIRECT], payloads: &[
        r(P::NOTIFY, 0, MAX_N, false), r(P::SA, 1, 1, false), r(P::KE, 1, 1, false),
        r(P::NONCE, 1, 1, false), r(P::CERTREQ, 0, MAX_CERTREQ, false), r(P::VENDOR_ID, 0, MAX_V, false),
    ]},
    MessageRule { exchange: ExchangeType::IKE_AUTH, response: false, standalone: &[], payloads: &[
        r(P::NOTIFY, 0, MAX_N, true), r(P::EAP, 0, 1, true), r(P::AUTH, 0, 1, true),
        r(P::IDI, 0, 1, true), r(P::CERT, 0, MAX_CERT, true), r(P::CERTREQ, 0, MAX_CERTREQ, true),
        r(P::IDR, 0, 1, true), r(P::SA, 0, 1, true), r(P::TSI, 0, 1, true), r(P::TSR, 0, 1, true),
        r(P::CP, 0, 1, true), r(P::VENDOR_ID, 0, MAX_V, true),
    ]},
    MessageRule { exchange: ExchangeType::IKE_AUTH, response: true, standalone: &[], payloads: &[
        r(P::NOTIFY, 0, MAX_N, true), r(P::EAP, 0, 1, true), r(P::AUTH, 0, 1, true),
        r(P::IDR, 0, 1, true), r(P::CERT, 0, MAX_CERT, true), r(P::SA, 0, 1, true),
        r(P::TSI, 0, 1, true), r(P::TSR, 0, 1, true), r(P::CP, 0, 1, true),
        r(P::VENDOR_ID, 0, MAX_V, true),
    ]},
    MessageRule { exchange: ExchangeType::CREATE_CHILD_SA, response: false, standalone: &[], payloads: &[
        r(P::NOTIFY, 0, MAX_N, true), r(P::SA, 1, 1, true), r(P::NONCE, 1, 1, true),
        r(P::KE, 0, 1, true), r(P::TSI, 0, 1, true), r(P::TSR, 0, 1, true),
        r(P::CP, 0, 1, true), r(P::VENDOR_ID, 0, MAX_V, true),
    ]},
    MessageRule { exchange: ExchangeType::CREATE_CHILD_SA, response: true, standalone: &[], payloads: &[
        r(P::NOTIFY, 0, MAX_N, true), r(P::SA, 1, 1, true), r(P::NONCE, 1, 1, true),
        r(P::KE, 0, 1, true), r(P::TSI, 0, 1, true), r(P::TSR, 0, 1, true),
        r(P::CP, 0, 1, true), r(P::VENDOR_ID, 0, MAX_V, true),
    ]},
    MessageRule { exchange: ExchangeType::INFORMATIONAL, response: false, standalone: &[], payloads: &[
        r(P::NOTIFY, 0, MAX_N, true), r(P::CP, 0, 1, true), r(P::DELETE, 0, MAX_D, true),
        r(P::VENDOR_ID, 0, MAX_V, true),
    ]},
    MessageRule { exchange: ExchangeType::INFORMATIONAL, response: true, standalone: &[], payloads: &[
        r(P::NOTIFY, 0, MAX_N, true), r(P::CP, 0, 1, true), r(P::DELETE, 0, MAX_D, true),
        r(P::VENDOR_ID, 0, MAX_V, true),
    ]},
];

/// The rule for an exchange and role, if the table has one.
pub fn rule_for(exchange: ExchangeType, response: bool) -> Option<&'static MessageRule> {
    MESSAGE_RULES
        .iter()
        .find(|m| m.exchange == exchange && m.response == response)
}

/// A message that breaks its exchange's payload rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A payload type this exchange and role does not carry.
    #[error("{} payload not allowed here", super::PayloadName(*.0))]
    NotAllowed(PayloadType),
    /// Fewer occurrences than required.
    #[error("{} payload missing: {found} of at least {min}", super::PayloadName(*payload))]
    Missing {
        /// The payload type.
        payload: PayloadType,
        /// The minimum.
        min: u8,
        /// How many there were.
        found: usize,
    },
    /// More occurrences than allowed.
    #[error("{found} {} payloads, more than {max}", super::PayloadName(*payload))]
    TooMany {
        /// The payload type.
        payload: PayloadType,
        /// The maximum.
        max: u8,
        /// How many there were.
        found: usize,
    },
    /// A payload outside SK that must be inside.
    #[error("{} payload not encrypted", super::PayloadName(*.0))]
    NotEncrypted(PayloadType),
    /// The exchange is protected, but the message has no SK payload.
    #[error("no SK payload")]
    MissingEncrypted,
    /// The SK payload has not been opened, or the message is a fragment.
    #[error("SK contents not decrypted")]
    Sealed,
}

impl RuleError {
    /// How RFC 7296 answers a request that fails this way: INVALID_SYNTAX,
    /// except for a message not decrypted yet (a caller's mistake).
    pub fn response(&self) -> Option<Notify> {
        (*self != Self::Sealed).then(|| Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()))
    }
}

/// Checks a (decrypted) message against [`MESSAGE_RULES`]. Unknown payloads
/// are ignored; exchanges without rules pass.
pub fn check(message: &Message) -> Result<(), RuleError> {
    let Some(rule) = rule_for(message.header.exchange, message.header.is_response()) else {
        return Ok(());
    };
    let (outer, inner): (&[Payload], &[Payload]) = match message.payloads.split_last() {
        Some((Payload::Sk(Encrypted::Open(inner)), outer)) => (outer, inner),
        Some((Payload::Sk(Encrypted::Sealed { .. }) | Payload::Skf(_), _)) => {
            return Err(RuleError::Sealed);
        }
        _ => (&message.payloads, &[]),
    };
    let protected = rule.payloads.iter().any(|p| p.encrypted);
    let has_sk = message.payloads.last().is_some_and(Payload::is_encrypted);
    match (protected, has_sk) {
        (true, false) => return Err(RuleError::MissingEncrypted),
        (false, true) => return Err(RuleError::NotAllowed(PayloadType::SK)),
        _ => {}
    }
    let placed = || {
        let outer = outer
            .iter()
            .filter(|p| !p.is_encrypted())
            .map(|p| (p, false));
        outer
            .chain(inner.iter().map(|p| (p, true)))
            .filter(|(p, _)| !matches!(p, Payload::Unknown { .. }))
    };
    for (p, in_sk) in placed() {
        let t = p.payload_type();
        match rule.payloads.iter().find(|r| r.payload == t) {
            None => return Err(RuleError::NotAllowed(t)),
            Some(r) if r.encrypted && !in_sk => return Err(RuleError::NotEncrypted(t)),
            Some(r) if !r.encrypted && in_sk => return Err(RuleError::NotAllowed(t)),
            Some(_) => {}
        }
    }
    let relaxed = rule.response
        && placed().any(|(p, _)| {
            matches!(p, Payload::Notify(n) if n.notify_type.is_error() || rule.standalone.contains(&n.notify_type))
        });
    for r in rule.payloads {
        let found = placed()
            .filter(|(p, _)| p.payload_type() == r.payload)
            .count();
        if found > usize::from(r.max) {
            return Err(RuleError::TooMany {
                payload: r.payload,
                max: r.max,
                found,
            });
        }
        if found < usize::from(r.min) && !relaxed {
            return Err(RuleError::Missing {
                payload: r.payload,
                min: r.min,
                found,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::codes::*;
    use super::super::sa::Proposal;
    use super::super::*;
    use super::*;

    fn msg(
        exchange: ExchangeType,
        response: bool,
        outer: Vec<Payload>,
        inner: Option<Vec<Payload>>,
    ) -> Message {
        let flags = if response {
            Flags::RESPONSE
        } else {
            Flags::INITIATOR
        };
        let header = Header {
            exchange,
            flags,
            ..Header::default()
        };
        let mut payloads = outer;
        payloads.extend(inner.map(|i| Payload::Sk(Encrypted::Open(i))));
        Message { header, payloads }
    }

    fn sa() -> Payload {
        Payload::Sa(vec![Proposal::default()])
    }
    fn ke() -> Payload {
        Payload::Ke(KeyExchange {
            group: KeId::CURVE25519,
            data: vec![0; 32],
        })
    }
    fn nonce() -> Payload {
        Payload::Nonce(vec![0; 32])
    }
    fn n(t: NotifyType) -> Payload {
        Payload::Notify(Notify::new(t, vec![]))
    }
    fn ts() -> Vec<TrafficSelector> {
        vec![TrafficSelector::Ipv4(AddressRange::any(
            [0; 4].into(),
            [255; 4].into(),
        ))]
    }
    fn auth() -> Payload {
        Payload::Auth(Authentication {
            method: AuthMethod::SHARED_KEY_MIC,
            data: vec![1; 32],
        })
    }

    #[test]
    fn valid_exchanges_pass() {
        use ExchangeType as X;
        let init = || vec![sa(), ke(), nonce(), n(NotifyType::NAT_DETECTION_SOURCE_IP)];
        let child = || vec![sa(), nonce(), ke(), Payload::TsI(ts()), Payload::TsR(ts())];
        let id = Identification::fqdn("a");
        let valid = [
            msg(X::IKE_SA_INIT, false, init(), None),
            msg(
                X::IKE_SA_INIT,
                true,
                [
                    init(),
                    vec![Payload::CertReq(Certificate {
                        encoding: CertEncoding(4),
                        data: vec![],
                    })],
                ]
                .concat(),
                None,
            ),
            msg(
                X::IKE_AUTH,
                false,
                vec![],
                Some(vec![
                    Payload::IdI(id.clone()),
                    auth(),
                    sa(),
                    Payload::TsI(ts()),
                    Payload::TsR(ts()),
                ]),
            ),
            msg(
                X::IKE_AUTH,
                true,
                vec![],
                Some(vec![
                    Payload::IdR(id),
                    auth(),
                    sa(),
                    Payload::TsI(ts()),
                    Payload::TsR(ts()),
                ]),
            ),
            msg(
                X::IKE_AUTH,
                false,
                vec![],
                Some(vec![Payload::Eap(Eap {
                    code: 2,
                    identifier: 1,
                    data: vec![1],
                })]),
            ),
            msg(X::CREATE_CHILD_SA, false, vec![], Some(child())),
            msg(X::CREATE_CHILD_SA, true, vec![], Some(child())),
            msg(
                X::INFORMATIONAL,
                false,
                vec![],
                Some(vec![Payload::Delete(Delete::ike())]),
            ),
            msg(X::INFORMATIONAL, true, vec![], Some(vec![])),
            msg(
                ExchangeType(200),
                false,
                vec![Payload::Delete(Delete::ike())],
                None,
            ),
        ];
        for m in &valid {
            assert_eq!(
                check(m),
                Ok(()),
                "{:?} response={}",
                m.header.exchange,
                m.header.is_response()
            );
        }
    }

    #[test]
    fn error_responses_carry_only_notifies() {
        use ExchangeType as X;
        for t in [
            NotifyType::NO_PROPOSAL_CHOSEN,
            NotifyType::INVALID_KE_PAYLOAD,
            NotifyType::COOKIE,
        ] {
            assert_eq!(
                check(&msg(X::IKE_SA_INIT, true, vec![n(t)], None)),
                Ok(()),
                "{t}"
            );
        }
        assert_eq!(
            check(&msg(
                X::CREATE_CHILD_SA,
                true,
                vec![],
                Some(vec![n(NotifyType::NO_ADDITIONAL_SAS)])
            )),
            Ok(())
        );
        // A status notify does not stand in for the payloads, nor does
        // anything in a request.
        let missing = |m: &Message| matches!(check(m), Err(RuleError::Missing { .. }));
        assert!(missing(&msg(
            X::IKE_SA_INIT,
            true,
            vec![n(NotifyType::INITIAL_CONTACT)],
            None
        )));
        assert!(missing(&msg(
            X::IKE_SA_INIT,
            false,
            vec![n(NotifyType::NO_PROPOSAL_CHOSEN)],
            None
        )));
        assert!(missing(&msg(
            X::CREATE_CHILD_SA,
            false,
            vec![],
            Some(vec![n(NotifyType::COOKIE)])
        )));
        assert!(missing(&msg(
            X::CREATE_CHILD_SA,
            true,
            vec![],
            Some(vec![n(NotifyType::COOKIE)])
        )));
    }

    #[test]
    fn missing_extra_and_misplaced_payloads_fail() {
        use ExchangeType as X;
        let e = check(&msg(X::IKE_SA_INIT, false, vec![sa(), nonce()], None)).unwrap_err();
        assert_eq!(
            e,
            RuleError::Missing {
                payload: PayloadType::KE,
                min: 1,
                found: 0
            }
        );
        assert_eq!(e.to_string(), "KE payload missing: 0 of at least 1");
        assert_eq!(
            e.response().unwrap().notify_type,
            NotifyType::INVALID_SYNTAX
        );
        let e = check(&msg(
            X::IKE_SA_INIT,
            false,
            vec![sa(), ke(), nonce(), sa()],
            None,
        ))
        .unwrap_err();
        assert_eq!(
            e,
            RuleError::TooMany {
                payload: PayloadType::SA,
                max: 1,
                found: 2
            }
        );
        let many = [vec![sa(), ke(), nonce()], vec![n(NotifyType(40000)); 21]].concat();
        assert!(matches!(
            check(&msg(X::IKE_SA_INIT, false, many, None)),
            Err(RuleError::TooMany { max: 20, .. })
        ));
        let e = check(&msg(
            X::IKE_SA_INIT,
            false,
            vec![sa(), ke(), nonce(), auth()],
            None,
        ))
        .unwrap_err();
        assert_eq!(e, RuleError::NotAllowed(PayloadType::AUTH));
        let e = check(&msg(
            X::IKE_SA_INIT,
            false,
            vec![sa(), ke(), nonce()],
            Some(vec![]),
        ))
        .unwrap_err();
        assert_eq!(e, RuleError::NotAllowed(PayloadType::SK));
        let e = check(&msg(X::CREATE_CHILD_SA, false, vec![], Some(vec![sa()]))).unwrap_err();
        assert_eq!(
            e,
            RuleError::Missing {
                payload: PayloadType::NONCE,
                min: 1,
                found: 0
            }
        );
        let e = check(&msg(X::INFORMATIONAL, true, vec![], Some(vec![sa()]))).unwrap_err();
        assert_eq!(e, RuleError::NotAllowed(PayloadType::SA));
        let e = check(&msg(X::IKE_AUTH, false, vec![auth()], Some(vec![]))).unwrap_err();
        assert_eq!(e, RuleError::NotEncrypted(PayloadType::AUTH));
        let e = check(&msg(X::IKE_AUTH, false, vec![auth()], None)).unwrap_err();
        assert_eq!(e, RuleError::MissingEncrypted);
        let e = check(&msg(X::IKE_AUTH, false, vec![], Some(vec![auth(), auth()]))).unwrap_err();
        assert_eq!(
            e,
            RuleError::TooMany {
                payload: PayloadType::AUTH,
                max: 1,
                found: 2
            }
        );
        let e = check(&msg(
            X::IKE_AUTH,
            true,
            vec![],
            Some(vec![Payload::IdI(Identification::fqdn("a"))]),
        ))
        .unwrap_err();
        assert_eq!(
            e,
            RuleError::NotAllowed(PayloadType::IDI),
            "IDi is the initiator's"
        );
        let mut sealed = msg(X::INFORMATIONAL, false, vec![], None);
        sealed.payloads.push(Payload::Sk(Encrypted::Sealed {
            first_payload: PayloadType::NO_NEXT_PAYLOAD,
            body: vec![],
        }));
        assert_eq!(check(&sealed), Err(RuleError::Sealed));
        assert_eq!(RuleError::Sealed.response(), None);
    }

    #[test]
    fn table_is_consistent() {
        for (i, m) in MESSAGE_RULES.iter().enumerate() {
            // One rule per exchange and role, one entry per payload type.
            assert_eq!(
                rule_for(m.exchange, m.response),
                Some(m),
                "duplicate rule {i}"
            );
            for (j, p) in m.payloads.iter().enumerate() {
                assert!(p.min <= p.max && p.max > 0);
                assert!(m.payloads[..j].iter().all(|q| q.payload != p.payload));
                // IKE_SA_INIT is the only exchange in the clear.
                assert_eq!(p.encrypted, m.exchange != ExchangeType::IKE_SA_INIT);
            }
        }
        assert_eq!(MESSAGE_RULES.len(), 8);
    }
}
