//! The responder under IKE_SA_INIT floods (`sa::dos`): the lab
//! scenario in process, with the limits' effects.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::harness::*;
use super::{failed, secs};
use crate::sa::dos;
use crate::sa::*;
use crate::wire::codes::{ExchangeType, NotifyType};
use crate::wire::{Message, Notify, Payload};

/// A gateway (side 1) that takes IKE SAs from any address, as a
/// road-warrior connection does.
fn gateway(tweak: impl FnOnce(&mut EndpointConfig)) -> Pair {
    let mut s = Setup::default();
    s.peers[1][0].remote_addrs = vec![AddrSpec::Any];
    tweak(&mut s.cfg[1]);
    Pair::new(s)
}

/// An IKE_SA_INIT request as side 0 sends it (from a pair of its own, so
/// that `p` has no initiation under way), without NAT detection.
fn template() -> Message {
    let mut t = Pair::default_pair();
    let now = t.now;
    t.a().ep.initiate(now, "site-b", &[]).unwrap();
    let bytes = t.a().ep.poll_transmit().unwrap().payload;
    let mut m = Message::parse(&bytes, &Default::default()).unwrap();
    // Its NAT detection hashes cover the SPI, which each request changes.
    m.payloads
        .retain(|p| !matches!(p, Payload::Notify(n) if n.nat_detection_hash().is_some()));
    m
}

/// `tpl` with initiator SPI `spi`, and the cookie first if given.
fn request(tpl: &Message, spi: u64, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut m = tpl.clone();
    m.header.spi_i = spi;
    if let Some(c) = cookie {
        m.payloads
            .insert(0, Payload::Notify(Notify::cookie(c.to_vec())));
    }
    m.emit().unwrap()
}

fn spoofed(n: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a40_0000 + n)), 500)
}

/// What side 1 answered since the last call, by kind: (IKE_SA_INIT
/// answers that made an SA, COOKIEs, other notifies).
#[derive(Debug, Default, PartialEq)]
struct Answers {
    sas: usize,
    cookies: Vec<(SocketAddr, Vec<u8>)>,
    other: Vec<NotifyType>,
}

fn drain(p: &mut Pair) -> Answers {
    let mut a = Answers::default();
    while let Some(t) = p.b().ep.poll_transmit() {
        let m = Message::parse(&t.payload, &Default::default()).unwrap();
        match &m.payloads[..] {
            [Payload::Notify(n)] => match n.cookie_data() {
                Some(c) => a.cookies.push((t.remote, c.to_vec())),
                None => a.other.push(n.notify_type),
            },
            _ => a.sas += 1,
        }
    }
    a
}

fn feed(p: &mut Pair, from: SocketAddr, bytes: &[u8]) {
    let (now, local) = (p.now, p.b().addr);
    p.b().ep.handle_datagram(now, local, from, bytes);
}

/// `count` IKE_SA_INIT requests from as many spoofed sources, their SPIs
/// counted from `first_spi`.
fn spoofed_flood(p: &mut Pair, tpl: &Message, count: u32, first_spi: u64) {
    for n in 0..count {
        feed(p, spoofed(n), &request(tpl, first_spi + u64::from(n), None));
    }
}

#[test]
fn spoofed_flood_gets_cookies_past_the_threshold_and_a_peer_still_comes_up() {
    let mut p = gateway(|_| {});
    let tpl = template();
    spoofed_flood(&mut p, &tpl, 1000, 0x1000);
    let got = drain(&mut p);
    // strongSwan's cookie_threshold: 30 half-open, then only cookies.
    assert_eq!((got.sas, got.cookies.len()), (30, 970), "{:?}", got.other);
    assert_eq!(p.b().ep.len(), 30);
    // Memory: what the half-open SAs hold is their IKE_SA_INIT material.
    let held: usize = p.b().ep.init_state_held().iter().sum();
    assert!(held < 30 * 1024, "{held}");
    while p.b().ep.poll_event().is_some() {}
    // A legitimate initiator: one COOKIE round more, then up at once.
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(1));
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 2);
    assert!(failed(&p.a().events()).is_empty());
    // The spoofed ones time out; none is left counted.
    p.now += secs(31);
    let now = p.now;
    p.b().ep.handle_timeout(now);
    let gone = drain(&mut p);
    assert_eq!(gone, Answers::default(), "nothing sent to them");
    assert_eq!(p.b().ep.len(), 1);
    assert_eq!(p.b().ep.dos().half_open(), 0);
    assert_eq!(p.b().ep.dos().octets(), 0);
}

#[test]
fn one_address_answering_cookies_gets_five_half_open_sas_and_no_more() {
    let mut p = gateway(|_| {});
    let tpl = template();
    let attacker = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 66)), 500);
    let mut dropped = 0;
    for n in 0..300u64 {
        feed(&mut p, attacker, &request(&tpl, 0x5000 + n, None));
        let got = drain(&mut p);
        if let [(_, c)] = &got.cookies[..] {
            let c = c.clone();
            feed(&mut p, attacker, &request(&tpl, 0x5000 + n, Some(&c)));
            let again = drain(&mut p);
            assert!(again.cookies.is_empty(), "a valid cookie is accepted");
            if again.sas == 0 {
                dropped += 1;
            }
        }
    }
    // cookie_threshold_ip 3 without a cookie, block_threshold 5 with.
    assert_eq!(p.b().ep.len(), 5);
    assert_eq!(p.b().ep.dos().half_open_from(attacker.ip()), 5);
    assert_eq!(dropped, 295);
    // Another address is not slowed down: no cookie needed.
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(1));
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 1);
    assert_eq!(
        p.b().ep.dos().half_open(),
        5,
        "the established one left the count"
    );
}

#[test]
fn the_cookie_is_asked_for_before_the_configuration_is_looked_up() {
    // Side 1 knows only side 0's address; cookies always.
    let mut s = Setup::default();
    s.cfg[1].cookie_threshold = Some(0);
    let mut p = Pair::new(s);
    let tpl = template();
    let stranger = spoofed(7);
    feed(&mut p, stranger, &request(&tpl, 9, None));
    let got = drain(&mut p);
    assert_eq!((got.sas, got.cookies.len()), (0, 1), "{:?}", got.other);
    assert!(p.b().ep.poll_event().is_none(), "no failure reported");
    // With the cookie: now the lookup, which finds nothing.
    let c = got.cookies[0].1.clone();
    feed(&mut p, stranger, &request(&tpl, 9, Some(&c)));
    let got = drain(&mut p);
    assert_eq!(got.other, [NotifyType::NO_PROPOSAL_CHOSEN]);
}

#[test]
fn failures_of_many_requests_are_logged_and_reported_rate_limited() {
    let mut s = Setup::default();
    s.cfg[1].cookie_threshold = None;
    let mut p = Pair::new(s);
    let tpl = template();
    spoofed_flood(&mut p, &tpl, 1000, 1);
    let got = drain(&mut p);
    assert_eq!(got.other.len(), 1000, "every one is still answered");
    let mut events = 0;
    while p.b().ep.poll_event().is_some() {
        events += 1;
    }
    assert_eq!(events, 10);
    p.now += secs(1);
    feed(&mut p, spoofed(2000), &request(&tpl, 5000, None));
    drain(&mut p);
    assert!(p.b().ep.poll_event().is_some(), "a new second, a new line");
}

#[test]
fn the_budget_bounds_what_half_open_sas_hold() {
    let tpl = template();
    let open = |c: &mut EndpointConfig| {
        c.cookie_threshold = None;
        c.dos.block_threshold = None;
        c.dos.cookie_threshold_ip = None;
    };
    // What one half-open SA is charged: its request, and as much for the
    // answer.
    let mut p = gateway(open);
    feed(&mut p, spoofed(0), &request(&tpl, 1, None));
    let charge = p.b().ep.dos().octets();
    assert_eq!(
        charge,
        dos::HALF_OPEN_COST + 2 * request(&tpl, 1, None).len()
    );
    // Room for three.
    let budget = 3 * charge;
    let mut p = gateway(|c| {
        open(c);
        c.dos.half_open_budget = budget;
    });
    spoofed_flood(&mut p, &tpl, 100, 1);
    let got = drain(&mut p);
    assert_eq!(got.sas, 3);
    assert_eq!(p.b().ep.len(), 3);
    assert_eq!(p.b().ep.dos().octets(), budget);
    // And the global cap, below it.
    let mut p = gateway(|c| {
        open(c);
        c.dos.init_limit_half_open = Some(2);
    });
    spoofed_flood(&mut p, &tpl, 100, 1);
    assert_eq!(drain(&mut p).sas, 2);
    assert_eq!(p.b().ep.len(), 2);
}

#[test]
fn a_request_that_returned_a_cookie_is_computed_before_the_spoofed_ones() {
    let mut p = gateway(|c| c.compute = ComputeMode::Outside);
    p.hold_compute = [false, true];
    let tpl = template();
    // The spoofed flood: 30 half-open SAs (their key exchanges wait for a
    // worker), then only cookies.
    spoofed_flood(&mut p, &tpl, 1000, 0x1000);
    let got = drain(&mut p);
    assert_eq!((got.sas, got.cookies.len()), (0, 970));
    while let Some(job) = p.b().ep.poll_compute() {
        p.held_compute[1].push(job);
    }
    assert_eq!(p.held_compute[1].len(), 30);
    assert!(p.held_compute[1].iter().all(Compute::unproven));
    // A legitimate initiator: COOKIE, then its request with it; its key
    // exchange waits too, asked for last.
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(1));
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 2);
    assert_eq!(p.held_compute[1].len(), 31);
    let mut queue = JobQueue::default();
    for job in p.held_compute[1].drain(..) {
        queue.push(job);
    }
    // A worker takes the proven one first: the initiator is up while
    // every spoofed key exchange still waits.
    let first = queue.pop().unwrap();
    assert!(!first.unproven());
    let now = p.now;
    p.b().ep.handle_computed(now, first.run());
    p.run_for(secs(1));
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    assert!(failed(&p.a().events()).is_empty());
    // Then the others, in the order they were asked for.
    assert_eq!(queue.len(), 30);
    let mut last = None;
    while let Some(job) = queue.pop() {
        assert!(job.unproven());
        assert!(last < Some(job.req), "first in, first out");
        last = Some(job.req);
        let now = p.now;
        p.b().ep.handle_computed(now, job.run());
    }
    assert!(queue.is_empty());
    assert_eq!(drain(&mut p).sas, 30, "answered, to the spoofed addresses");
}

#[test]
fn spoofed_half_open_sas_holding_every_place_make_room_for_a_proven_request() {
    // The global cap below the cookie threshold: the flood's half-open
    // SAs take every place before any cookie is asked for.
    let mut p = gateway(|c| c.dos.init_limit_half_open = Some(20));
    let tpl = template();
    spoofed_flood(&mut p, &tpl, 1000, 0x1000);
    let got = drain(&mut p);
    // Past the cap, cookies instead of silence.
    assert_eq!((got.sas, got.cookies.len()), (20, 980), "{:?}", got.other);
    assert_eq!(p.b().ep.dos().half_open(), 20);
    while p.b().ep.poll_event().is_some() {}
    // A legitimate initiator returns its cookie: the oldest spoofed SA
    // goes, it comes up.
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(1));
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 2);
    assert!(failed(&p.a().events()).is_empty());
    assert_eq!(p.b().ep.len(), 20, "19 spoofed, 1 established");
    assert_eq!(p.b().ep.dos().half_open(), 19);
    let gone = drain(&mut p);
    assert_eq!(gone.sas, 0, "nothing sent for the one removed");
    // The rest time out as before; nothing is left counted.
    p.now += secs(31);
    let now = p.now;
    p.b().ep.handle_timeout(now);
    drain(&mut p);
    assert_eq!(p.b().ep.len(), 1);
    assert_eq!(p.b().ep.dos().half_open(), 0);
    assert_eq!(p.b().ep.dos().octets(), 0);
}
