//! `inactivity` with a simulated clock and kernel: a Child SA whose
//! policies carried nothing for that long since the later of their last
//! use and its install goes (its IKE SA with `inactivity_close_ike` when
//! it was the only one); traffic, rekeys of the Child SA and of the IKE
//! SA do not lose the check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::harness::*;
use super::{installed_names, two_children};
use crate::config::{ChildLifetimes, IkeLifetimes};
use crate::sa::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Side A's child `net` with `inactivity` (B's has none), A with
/// `close_ike`.
fn setup(inactivity: u64, close_ike: bool) -> Setup {
    let mut s = Setup::default();
    Arc::make_mut(&mut s.peers[0][0].children[0]).inactivity = secs(inactivity);
    s.cfg[0].inactivity_close_ike = close_ike;
    s
}

/// Side A initiates; a few seconds for the handshake (`Pair::connect`
/// runs a minute).
fn up(p: &mut Pair) {
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(5));
}

/// When side `i` saw its first event matching `f`.
fn first(p: &Pair, i: usize, f: impl Fn(&Event) -> bool) -> Option<Instant> {
    p.peers[i]
        .events
        .iter()
        .find(|(_, e)| f(e))
        .map(|(t, _)| *t)
}

fn installed_at(p: &Pair, i: usize) -> Instant {
    first(p, i, |e| matches!(e, Event::ChildInstalled { .. })).expect("installed")
}

fn child_deleted(p: &Pair, i: usize, by_peer: bool) -> Option<Instant> {
    first(
        p,
        i,
        |e| matches!(e, Event::ChildDeleted { by_peer: b, .. } if *b == by_peer),
    )
}

fn ike_deleted(p: &Pair, i: usize) -> Option<Instant> {
    first(p, i, |e| matches!(e, Event::IkeDeleted { .. }))
}

/// The reqid of side `i`'s only installed Child SA.
fn reqid(p: &Pair, i: usize) -> u32 {
    let k = &p.peers[i].kernel;
    assert_eq!(k.installed.len(), 1, "{:?}", k.installed.keys());
    k.installed.values().map(|c| c.reqid).next().unwrap_or(0)
}

#[test]
fn an_unused_child_goes_after_inactivity_and_its_ike_sa_stays() {
    let mut p = Pair::new(setup(120, false));
    p.connect(0, "site-b");
    let t0 = installed_at(&p, 0);
    p.run_for(t0 + secs(119) - p.now);
    assert!(child_deleted(&p, 0, false).is_none(), "deleted early");
    assert_eq!(p.a().kernel.installed.len(), 1);
    p.run_for(secs(2));
    let gone = child_deleted(&p, 0, false).expect("the idle child was not deleted");
    assert!(gone >= t0 + secs(120), "{:?}", gone - t0);
    assert!(child_deleted(&p, 1, true).is_some(), "B saw no delete");
    assert!(p.a().kernel.installed.is_empty() && p.b().kernel.installed.is_empty());
    // Without inactivity_close_ike the IKE SA stays.
    assert!(ike_deleted(&p, 0).is_none() && ike_deleted(&p, 1).is_none());
    assert_eq!(p.a().ep.ike_sas().count(), 1);
    // One query, at the deadline; none from B, whose child has none.
    assert_eq!(p.a().kernel.last_use_queries.len(), 1);
    assert!(p.b().kernel.last_use_queries.is_empty());
    p.run_for(secs(600));
    assert_eq!(p.a().kernel.last_use_queries.len(), 1, "checks of no child");
}

#[test]
fn traffic_keeps_the_child_until_it_stops() {
    let mut p = Pair::new(setup(120, false));
    p.connect(0, "site-b");
    let r = reqid(&p, 0);
    // Ten minutes of traffic, a packet every 30 s.
    let mut last = p.now;
    for _ in 0..20 {
        last = p.now;
        p.a().kernel.used_at.insert(r, last);
        p.run_for(secs(30));
    }
    assert!(
        child_deleted(&p, 0, false).is_none(),
        "deleted despite traffic"
    );
    let queries = p.a().kernel.last_use_queries.len();
    assert!((3..=10).contains(&queries), "{queries} queries in 10 min");
    // Silence: it goes inactivity after the last packet (the kernel
    // counts whole seconds, so at most a second later).
    p.run_for(secs(200));
    let gone = child_deleted(&p, 0, false).expect("not deleted after the traffic stopped");
    let after = gone - last;
    assert!(
        after >= secs(120) && after <= secs(121),
        "deleted {after:?} after the last packet"
    );
    assert!(p.a().kernel.installed.is_empty());
}

#[test]
fn close_ike_takes_the_ike_sa_along_with_its_only_child() {
    let mut p = Pair::new(setup(90, true));
    p.connect(0, "site-b");
    let t0 = installed_at(&p, 0);
    p.run_for(secs(60));
    let gone = ike_deleted(&p, 0).expect("the IKE SA stayed");
    assert!(gone >= t0 + secs(90) && gone <= t0 + secs(91));
    assert!(ike_deleted(&p, 1).is_some(), "B's IKE SA stayed");
    assert_eq!(p.a().ep.ike_sas().count(), 0);
    p.assert_kernels_empty();
}

#[test]
fn close_ike_with_another_child_deletes_only_the_idle_one() {
    let mut s = two_children(false);
    Arc::make_mut(&mut s.peers[0][0].children[1]).inactivity = secs(90);
    s.cfg[0].inactivity_close_ike = true;
    let mut p = Pair::new(s);
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &["net", "web"]).unwrap();
    p.run_for(secs(60));
    assert_eq!(installed_names(p.a()), ["net", "web"]);
    p.run_for(secs(60));
    assert_eq!(installed_names(p.a()), ["net"]);
    assert_eq!(installed_names(p.b()), ["net"]);
    assert!(ike_deleted(&p, 0).is_none() && ike_deleted(&p, 1).is_none());
    // The check reads the idle child's policies only.
    let web = p.a().kernel.last_use_queries.clone();
    assert_eq!(web.len(), 1);
    assert_ne!(
        Some(web[0]),
        p.a().kernel.installed.values().map(|c| c.reqid).next()
    );
}

#[test]
fn an_unreadable_last_use_counts_as_none_as_with_charon() {
    let mut p = Pair::new(setup(120, false));
    p.a().kernel.fail_last_use = true;
    p.connect(0, "site-b");
    let r = reqid(&p, 0);
    let now = p.now;
    p.a().kernel.used_at.insert(r, now);
    let t0 = installed_at(&p, 0);
    p.run_for(secs(62));
    let gone = child_deleted(&p, 0, false).expect("kept");
    assert!(gone >= t0 + secs(120) && gone <= t0 + secs(121));
}

#[test]
fn the_check_follows_a_child_rekey_and_starts_over_at_its_install() {
    let mut s = setup(60, false);
    Arc::make_mut(&mut s.peers[0][0].children[0]).lifetimes = ChildLifetimes {
        rekey_time: secs(100),
        life_time: secs(110),
        ..ChildLifetimes::default()
    };
    let mut p = Pair::new(s);
    up(&mut p);
    let r = reqid(&p, 0);
    let t0 = installed_at(&p, 0);
    // Traffic until 70 s; the rekey at 100 s keeps the policies.
    p.a().kernel.used_at.insert(r, t0 + secs(70));
    p.run_for(t0 + secs(140) - p.now);
    let (rekeyed_at, old, new) = p.peers[0]
        .events
        .iter()
        .find_map(|(t, e)| match e {
            Event::ChildRekeyed { old, new, .. } => Some((*t, *old, *new)),
            _ => None,
        })
        .expect("no rekey");
    assert!(
        child_deleted(&p, 0, false).is_none(),
        "deleted before its successor's 60 s"
    );
    assert_eq!(reqid(&p, 0), r, "a rekey keeps the reqid and policies");
    // The successor's install is later than the last use: 60 s from it,
    // as charon (which schedules a new check for the new Child SA).
    p.run_for(secs(60));
    let gone = child_deleted(&p, 0, false).expect("the successor was not checked");
    let after = gone - rekeyed_at;
    assert!(
        after >= secs(59) && after <= secs(61),
        "deleted {after:?} after the rekey"
    );
    let deleted: Vec<ChildId> = p.peers[0]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ChildDeleted {
                child,
                by_peer: false,
                ..
            } => Some(*child),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [new], "old {old:?}");
    assert!(p.a().kernel.installed.is_empty());
}

#[test]
fn traffic_after_a_child_rekey_counts() {
    let mut s = setup(60, false);
    Arc::make_mut(&mut s.peers[0][0].children[0]).lifetimes = ChildLifetimes {
        rekey_time: secs(100),
        life_time: secs(110),
        ..ChildLifetimes::default()
    };
    let mut p = Pair::new(s);
    up(&mut p);
    let r = reqid(&p, 0);
    let t0 = installed_at(&p, 0);
    // Traffic until 130 s, after the rekey at 100 s: the successor goes
    // 60 s after the last packet, before its own rekey at 200 s.
    p.a().kernel.used_at.insert(r, t0 + secs(130));
    p.run_for(t0 + secs(220) - p.now);
    let gone = child_deleted(&p, 0, false).expect("not deleted");
    let after = gone - (t0 + secs(130));
    assert!(
        after >= secs(60) && after <= secs(61),
        "deleted {after:?} after the last packet"
    );
    let rekeys = p.peers[0]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::ChildRekeyed { .. }))
        .count();
    assert_eq!(rekeys, 1);
}

#[test]
fn the_check_follows_the_child_to_a_rekeyed_ike_sa() {
    let mut s = setup(150, false);
    s.peers[0][0].lifetimes = IkeLifetimes {
        rekey_time: secs(100),
        over_time: secs(10),
        rand_time: secs(0),
        reauth_time: secs(0),
    };
    let mut p = Pair::new(s);
    let first_sa = p.connect(0, "site-b");
    let t0 = installed_at(&p, 0);
    p.run_for(t0 + secs(140) - p.now);
    let sas: Vec<IkeSaId> = p.a().ep.ike_sas().map(|i| i.id).collect();
    assert_eq!(sas.len(), 1);
    assert_ne!(sas[0], first_sa, "the IKE SA was not rekeyed");
    p.run_for(secs(20));
    let gone = child_deleted(&p, 0, false).expect("lost with the IKE rekey");
    assert!(
        gone >= t0 + secs(150) && gone <= t0 + secs(151),
        "{:?}",
        gone - t0
    );
    assert!(p.a().kernel.installed.is_empty());
}
