//! Dead peer detection with a simulated clock: liveness checks only after
//! `dpd_delay` of silence (no IKE message, no inbound ESP bytes), a dead
//! peer cleared after the retransmission schedule, everything removed.

use std::time::{Duration, Instant};

use super::harness::*;
use crate::sa::*;
use crate::wire::codes::ExchangeType;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A pair with `dpd_delay` on side A (and B with `b_delay`).
fn pair(a_delay: u64, b_delay: u64, cfg: EndpointConfig) -> Pair {
    let mut s = Setup::default();
    s.peers[0][0].dpd_delay = secs(a_delay);
    s.peers[1][0].dpd_delay = secs(b_delay);
    s.cfg = [cfg, cfg];
    Pair::new(s)
}

/// INFORMATIONAL requests side `i` sent after `since`.
fn checks_sent(p: &Pair, i: usize, since: Instant) -> usize {
    p.peers[i]
        .sent
        .iter()
        .filter(|(t, _)| *t > since)
        .filter(|(_, t)| {
            crate::wire::Header::peek(&t.payload)
                .is_ok_and(|(h, _)| h.exchange == ExchangeType::INFORMATIONAL && !h.is_response())
        })
        .count()
}

#[test]
fn no_liveness_check_while_traffic_flows_then_one_after_dpd_delay() {
    let mut p = pair(30, 0, EndpointConfig::default());
    let id = p.connect(0, "site-b");
    let t0 = p.now;
    // Ten minutes of traffic from the peer: its counters rise every 10 s.
    for _ in 0..60 {
        p.a().kernel.traffic_in += 1000;
        p.run_for(secs(10));
    }
    assert_eq!(
        checks_sent(&p, 0, t0),
        0,
        "a liveness check despite traffic"
    );
    assert!(p.a().kernel.traffic_queries >= 15, "the counters were read");
    // Silence: the next check finds the counters unchanged and asks.
    let t1 = p.now;
    p.run_for(secs(61));
    let n = checks_sent(&p, 0, t1);
    assert!(
        (1..=2).contains(&n),
        "{n} liveness checks in 61 s of silence"
    );
    assert!(
        p.a()
            .events()
            .iter()
            .any(|e| matches!(e, Event::PeerAlive { id: x } if *x == id)),
        "the live peer answered"
    );
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    p.assert_kernels_match();
}

#[test]
fn a_quiet_but_live_peer_is_asked_every_dpd_delay_and_stays() {
    let mut p = pair(20, 0, EndpointConfig::default());
    let id = p.connect(0, "site-b");
    let t0 = p.now;
    p.run_for(secs(200));
    // One check per 20 s (the answer re-arms the timer).
    let n = checks_sent(&p, 0, t0);
    assert!((9..=10).contains(&n), "{n} checks in 200 s");
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    // B has no dpd_delay: it never asks.
    assert_eq!(checks_sent(&p, 1, t0), 0);
}

#[test]
fn messages_from_the_peer_count_as_life() {
    // B checks every 10 s; A (every 25 s) hears B's checks and so never
    // needs to ask itself.
    let mut p = pair(25, 10, EndpointConfig::default());
    p.connect(0, "site-b");
    let t0 = p.now;
    p.run_for(secs(300));
    assert_eq!(checks_sent(&p, 0, t0), 0);
    assert!(checks_sent(&p, 1, t0) >= 25);
}

#[test]
fn a_dead_peer_is_cleared_after_dpd_delay_and_the_retransmissions() {
    // Default schedule: 4 s x 1.8^n, 5 retransmissions: 165.4 s in all.
    let mut p = pair(30, 0, EndpointConfig::default());
    let id = p.connect(0, "site-b");
    p.a().kernel.traffic_in = 5000;
    p.run_for(secs(1));
    // The peer dies: nothing gets through any more.
    p.policy = Box::new(|_, _, _| Fate::Drop);
    let t0 = p.now;
    p.run_for(secs(400));
    let (at, ev) = p.peers[0]
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::IkeFailed { .. }))
        .cloned()
        .expect("the dead peer was detected");
    assert!(
        matches!(&ev, Event::IkeFailed { id: x, reason: IkeFailReason::PeerNotResponding, peer: Some(n) } if *x == id && n == "site-b"),
        "{ev:?}"
    );
    let took = at.duration_since(t0);
    // The first check may see the last traffic (<= 2 x dpd_delay), then
    // the liveness check and its 5 retransmissions.
    let schedule: f64 = (0..=5).map(|n| 4.0 * 1.8f64.powi(n)).sum();
    assert!(
        took.as_secs_f64() >= 30.0 + schedule - 0.5 && took.as_secs_f64() <= 60.0 + schedule + 1.0,
        "dead after {took:?}"
    );
    assert_eq!(
        checks_sent(&p, 0, t0),
        6,
        "one check and five retransmissions"
    );
    // The child went with it, and the kernel is empty.
    assert!(
        p.a()
            .events()
            .iter()
            .any(|e| matches!(e, Event::ChildDeleted { ike, by_peer: false, .. } if *ike == id))
    );
    assert!(p.a().ep.ike_sa(id).is_none());
    assert!(p.a().kernel.installed.is_empty());
    assert!(p.a().kernel.sa_in.is_empty() && p.a().kernel.sa_out.is_empty());
    assert!(p.a().kernel.policies.is_empty());
}

#[test]
fn short_retransmission_settings_shorten_the_detection() {
    // strongSwan's charon.retransmit_timeout/base/tries: 1 s, x1, 2 tries.
    let cfg = EndpointConfig {
        retransmit_timeout: secs(1),
        retransmit_base: 1.0,
        retransmit_tries: 2,
        ..EndpointConfig::default()
    };
    let mut p = pair(5, 0, cfg);
    let id = p.connect(0, "site-b");
    p.policy = Box::new(|_, _, _| Fate::Drop);
    let t0 = p.now;
    p.run_for(secs(60));
    let at = p.peers[0]
        .events
        .iter()
        .find(|(_, e)| matches!(e, Event::IkeFailed { id: x, reason: IkeFailReason::PeerNotResponding, .. } if *x == id))
        .map(|(t, _)| *t)
        .expect("dead peer detected");
    let took = at.duration_since(t0);
    assert!(took >= secs(3) && took <= secs(5 + 3 + 1), "{took:?}");
    assert!(p.a().kernel.installed.is_empty());
}

#[test]
fn without_dpd_delay_nothing_is_sent() {
    let mut p = pair(0, 0, EndpointConfig::default());
    p.connect(0, "site-b");
    let t0 = p.now;
    p.run_for(secs(3600));
    assert_eq!(checks_sent(&p, 0, t0) + checks_sent(&p, 1, t0), 0);
    assert_eq!(p.a().kernel.traffic_queries, 0);
}

#[test]
fn any_unanswered_request_declares_the_peer_dead_without_dpd_delay() {
    // No dpd_delay: a CREATE_CHILD_SA to a peer that went away runs out
    // of retransmissions; the IKE SA fails as with a liveness check, its
    // installed child reported deleted first (the daemon runs the
    // children's dpd_action on exactly these events).
    let mut p = pair(0, 0, EndpointConfig::default());
    let id = p.connect(0, "site-b");
    p.policy = Box::new(|_, _, _| Fate::Drop);
    let t0 = p.now;
    let now = p.now;
    p.a().ep.initiate_child(now, id, "net").unwrap();
    p.run_for(secs(300));
    let ev: Vec<_> = p.peers[0]
        .events
        .iter()
        .filter(|(t, _)| *t > t0)
        .map(|(_, e)| e.clone())
        .collect();
    let deleted = ev
        .iter()
        .position(|e| matches!(e, Event::ChildDeleted { ike, by_peer: false, name, .. } if *ike == id && name == "net"))
        .expect("the installed child goes");
    let failed = ev
        .iter()
        .position(|e| matches!(e, Event::IkeFailed { id: x, reason: IkeFailReason::PeerNotResponding, .. } if *x == id))
        .expect("the IKE SA fails: peer not responding");
    assert!(deleted < failed, "{ev:?}");
    assert!(p.a().kernel.installed.is_empty() && p.a().kernel.policies.is_empty());
    assert!(
        p.a().kernel.larval.is_empty(),
        "the new child's SPI is released"
    );
}
