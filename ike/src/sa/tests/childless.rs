//! `childless` (RFC 6023) as charon: `force` brings the IKE SA up without
//! a Child SA and its children with CREATE_CHILD_SA, and fails against a
//! responder that does not announce support; a responder with `force`
//! refuses an IKE_AUTH with a Child SA, one with `never` an IKE_AUTH
//! without one (INVALID_SYNTAX) and does not announce support.

use super::harness::*;
use crate::config::Childless;
use crate::sa::*;
use crate::wire::codes::{ExchangeType, NotifyType};

fn pair(a: Childless, b: Childless, a_children: bool) -> Pair {
    let mut s = Setup::default();
    s.peers[0][0].behaviour.childless = a;
    s.peers[1][0].behaviour.childless = b;
    if !a_children {
        s.peers[0][0].children.clear();
    }
    Pair::new(s)
}

/// Whether side `i` sent a message of `exchange` (`response`) with a SA
/// payload, and one with `notify`.
fn sent(p: &Pair, i: usize, exchange: ExchangeType, response: bool) -> Vec<crate::wire::Message> {
    p.peers[i]
        .sent
        .iter()
        .filter_map(|(_, t)| crate::wire::Message::parse(&t.payload, &Default::default()).ok())
        .filter(|m| m.header.exchange == exchange && m.header.is_response() == response)
        .collect()
}

fn announces(p: &Pair, i: usize, response: bool) -> bool {
    sent(p, i, ExchangeType::IKE_SA_INIT, response)
        .iter()
        .any(|m| {
            m.iter().any(|pl| {
                matches!(pl, crate::wire::Payload::Notify(n)
                if n.notify_type == NotifyType::CHILDLESS_IKEV2_SUPPORTED)
            })
        })
}

fn failed(p: &Pair, i: usize) -> Vec<IkeFailReason> {
    p.peers[i]
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::IkeFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn force_makes_the_child_with_create_child_sa() {
    let mut p = pair(Childless::Force, Childless::Allow, true);
    let id = p.connect(0, "site-b");
    assert!(announces(&p, 0, false) && announces(&p, 1, true));
    // IKE_AUTH is encrypted: the responder's view is its events; the
    // child came in a CREATE_CHILD_SA.
    assert_eq!(sent(&p, 0, ExchangeType::CREATE_CHILD_SA, false).len(), 1);
    let ev = p.a().events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::ChildInstalled { ike, .. } if *ike == id)),
        "{ev:?}"
    );
    p.assert_kernels_match();
    assert!(failed(&p, 0).is_empty() && failed(&p, 1).is_empty());
}

#[test]
fn allow_keeps_the_child_in_ike_auth() {
    let mut p = pair(Childless::Allow, Childless::Allow, true);
    p.connect(0, "site-b");
    assert!(!announces(&p, 0, false) && announces(&p, 1, true));
    assert!(sent(&p, 0, ExchangeType::CREATE_CHILD_SA, false).is_empty());
    p.assert_kernels_match();
}

#[test]
fn force_fails_against_a_responder_that_never_allows_it() {
    let mut p = pair(Childless::Force, Childless::Never, true);
    p.connect(0, "site-b");
    assert!(!announces(&p, 1, true), "never: no announcement");
    let f = failed(&p, 0);
    assert!(
        matches!(&f[..], [IkeFailReason::InvalidResponse(w)] if w.contains("childless = force")),
        "{f:?}"
    );
    assert!(p.a().kernel.larval.is_empty());
}

#[test]
fn a_forcing_responder_refuses_a_child_in_ike_auth() {
    let mut p = pair(Childless::Allow, Childless::Force, true);
    p.connect(0, "site-b");
    let f = failed(&p, 1);
    assert!(
        matches!(&f[..], [IkeFailReason::InvalidSyntax { by_peer: false, detail }] if detail.contains("did not initiate a childless")),
        "{f:?}"
    );
    assert_eq!(failed(&p, 0).len(), 1, "the initiator fails too");
    p.assert_kernels_empty();
}

#[test]
fn a_never_responder_refuses_a_childless_ike_auth() {
    // The initiator's connection has no children, so it goes childless;
    // a responder whose only connection says never does not announce
    // support, and the initiator does not even try.
    let mut p = pair(Childless::Allow, Childless::Never, false);
    p.connect(0, "site-b");
    assert!(!announces(&p, 1, true));
    assert_eq!(failed(&p, 0).len(), 1);
    // A responder that announced support (another connection allows
    // it) still refuses for the connection that says never.
    let mut s = Setup::default();
    s.peers[0][0].children.clear();
    s.peers[1][0].behaviour.childless = Childless::Never;
    let mut other = s.peers[1][0].clone();
    other.name = "other".into();
    other.behaviour.childless = Childless::Allow;
    other.remote_id = Some(crate::wire::Identification::fqdn("nobody.example"));
    s.peers[1].push(other);
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert!(announces(&p, 1, true));
    let f = failed(&p, 1);
    assert!(
        matches!(&f[..], [IkeFailReason::InvalidSyntax { by_peer: false, detail }] if detail.contains("tried to initiate a childless")),
        "{f:?}"
    );
    assert_eq!(failed(&p, 0).len(), 1);
}
