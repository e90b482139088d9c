//! `keyingtries` with a simulated clock: an IKE SA the peer does not
//! answer starts over with a new SPI, as often as configured (0: until it
//! comes up), under the same IKE SA number; `terminate_ike` and a reload
//! without the connection stop the tries.

use std::collections::BTreeSet;
use std::time::Duration;

use super::harness::*;
use crate::sa::*;
use crate::wire::codes::ExchangeType;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A pair whose side 0 initiates with `tries`, two retransmissions of 1 s
/// and 2 s (a try lasts 7 s), side 1 dropping side 0's first `lost`
/// datagrams.
fn pair(tries: u32, lost: usize) -> Pair {
    let mut s = Setup::default();
    s.peers[0][0].behaviour.keyingtries = tries;
    for c in &mut s.cfg {
        c.retransmit_tries = 2;
        c.retransmit_timeout = secs(1);
        c.retransmit_base = 2.0;
    }
    let mut p = Pair::new(s);
    p.policy = Box::new(move |side, n, _| {
        if side == 0 && n < lost {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p
}

/// The initiator SPIs of side 0's IKE_SA_INIT requests, and how many.
fn inits(p: &Pair) -> (BTreeSet<u64>, usize) {
    let h: Vec<_> = p.peers[0]
        .sent_headers()
        .into_iter()
        .filter(|h| h.exchange == ExchangeType::IKE_SA_INIT && !h.is_response())
        .collect();
    (h.iter().map(|h| h.spi_i).collect(), h.len())
}

fn failed(p: &Pair) -> Vec<Event> {
    p.peers[0]
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::IkeFailed { .. }))
        .collect()
}

#[test]
fn each_try_is_a_full_schedule_with_a_new_spi_then_the_sa_fails() {
    let mut p = pair(3, usize::MAX);
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    // Two tries of 7 s: still trying, under the same number.
    p.run_for(secs(13));
    assert!(failed(&p).is_empty());
    assert_eq!(p.a().ep.ike_sas().map(|s| s.id).collect::<Vec<_>>(), [id]);
    p.run_for(secs(10));
    let (spis, n) = inits(&p);
    assert_eq!((spis.len(), n), (3, 9), "three tries of three datagrams");
    let f = failed(&p);
    assert!(
        matches!(&f[..], [Event::IkeFailed { id: x, reason: IkeFailReason::PeerNotResponding, .. }] if *x == id),
        "{f:?}"
    );
    // The tries' SPIs (one allocated per try) are all released.
    assert!(p.a().kernel.larval.is_empty(), "{:?}", p.a().kernel.larval);
    assert_eq!(p.a().ep.ike_sas().count(), 0);
    p.run_for(secs(60));
    assert_eq!(inits(&p).1, 9, "no fourth try");
}

#[test]
fn the_default_is_one_try() {
    let mut p = pair(1, usize::MAX);
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(60));
    assert_eq!(inits(&p), (inits(&p).0, 3));
    assert_eq!(inits(&p).0.len(), 1);
    assert_eq!(failed(&p).len(), 1);
}

#[test]
fn zero_tries_forever_until_the_peer_comes_up() {
    // The peer hears nothing of the first seven tries and a half.
    let mut p = pair(0, 23);
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(120));
    assert!(failed(&p).is_empty());
    let ev = p.a().events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::IkeEstablished { id: x, .. } if *x == id)),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::ChildInstalled { ike, .. } if *ike == id))
    );
    assert_eq!(inits(&p).0.len(), 8, "eight tries");
    p.assert_kernels_match();
    // Only the last try's SPI is left (installed).
    assert!(p.a().kernel.larval.is_empty());
}

#[test]
fn terminate_stops_the_tries() {
    let mut p = pair(0, usize::MAX);
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(10));
    let now = p.now;
    p.a().ep.terminate_ike(now, id).unwrap();
    let before = inits(&p).1;
    p.run_for(secs(120));
    assert_eq!(inits(&p).1, before);
    assert_eq!(p.a().ep.ike_sas().count(), 0);
    assert!(p.a().kernel.larval.is_empty());
}

#[test]
fn a_reload_without_the_connection_stops_the_tries() {
    let mut p = pair(0, usize::MAX);
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(3));
    let now = p.now;
    p.a().ep.set_config(now, Vec::<PeerCfg>::new());
    p.run_for(secs(60));
    let f = failed(&p);
    assert!(
        matches!(&f[..], [Event::IkeFailed { id: x, reason: IkeFailReason::PeerNotResponding, .. }] if *x == id),
        "{f:?}"
    );
    assert_eq!(inits(&p).0.len(), 1, "no second try");
    assert!(p.a().kernel.larval.is_empty());
}
