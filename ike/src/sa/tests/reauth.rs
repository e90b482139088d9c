//! Reauthentication (`reauth_time`), make-before-break: a new IKE SA with
//! new Child SAs under the same policies, then the old IKE SA goes; the
//! kernels never lose the policies nor the SAs that carry traffic.

#![allow(clippy::needless_range_loop)]

use std::sync::Arc;
use std::time::Duration;

use super::harness::*;
use crate::sa::*;
use crate::wire::Header;
use crate::wire::codes::ExchangeType;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Side 0 reauthenticates every `reauth` seconds (jitter up to `rand`);
/// side 1 never does, and neither side rekeys the IKE SA.
fn reauth_setup(mut s: Setup, reauth: u64, rand: u64, over: u64) -> Setup {
    s.peers[0][0].lifetimes = IkeLifetimes {
        rekey_time: secs(0),
        reauth_time: secs(reauth),
        over_time: secs(over),
        rand_time: secs(rand),
    };
    for side in &mut s.peers {
        for c in &mut side[0].children {
            let c = Arc::make_mut(c);
            // No Child SA rekeys: what changes is the reauthentication's.
            c.lifetimes = ChildLifetimes {
                rekey_time: secs(0),
                life_time: secs(0),
                rand_time: secs(0),
                ..ChildLifetimes::default()
            };
        }
    }
    s
}

fn ike_ids(p: &Pair, i: usize) -> Vec<IkeSaId> {
    p.peers[i].ep.ike_sas().map(|s| s.id).collect()
}

/// Asserts side `i`'s kernel never removed policies and, from the first
/// outbound SA on, always had an inbound and an outbound SA.
fn assert_traffic_throughout(p: &Pair, i: usize) {
    let k = &p.peers[i].kernel;
    let (mut ins, mut outs) = (0i64, 0i64);
    let mut up = false;
    for (_, l) in &k.log {
        match l {
            KLog::AddIn { .. } => ins += 1,
            KLog::AddOut { .. } => {
                outs += 1;
                up = true;
            }
            KLog::DelIn { .. } => ins -= 1,
            KLog::DelOut { .. } => outs -= 1,
            KLog::DelPolicies { reqid } => panic!("side {i}: policies of {reqid} removed"),
            KLog::AddPolicies { .. } => {}
        }
        if up {
            assert!(ins >= 1 && outs >= 1, "side {i}: no SA after {l:?}");
        }
    }
    assert!(up, "side {i}: never up");
}

fn child_of(p: &Pair, i: usize) -> ChildId {
    let k = &p.peers[i].kernel;
    assert_eq!(k.installed.len(), 1, "side {i}");
    *k.installed.keys().next().unwrap()
}

fn count_init(p: &Pair, i: usize) -> usize {
    p.peers[i]
        .sent
        .iter()
        .filter(|(_, t)| {
            Header::peek(&t.payload).is_ok_and(|(h, _)| {
                h.exchange == ExchangeType::IKE_SA_INIT && !h.is_response() && h.spi_r == 0
            })
        })
        .count()
}

#[test]
fn reauth_replaces_the_ike_sa_and_children_under_the_same_policies() {
    let mut p = Pair::new(reauth_setup(Setup::default(), 3600, 0, 360));
    let first = p.connect(0, "site-b");
    let peer_first = ike_ids(&p, 1);
    let installs = [p.a().kernel.installs, p.b().kernel.installs];
    let old = [child_of(&p, 0), child_of(&p, 1)];
    let reqid = [p.a().kernel.policies.clone(), p.b().kernel.policies.clone()];
    p.run_for(secs(3600 + 120));
    // A new IKE SA on both sides, the old one gone.
    let now_a = ike_ids(&p, 0);
    let now_b = ike_ids(&p, 1);
    assert_eq!(now_a.len(), 1, "{now_a:?}");
    assert_eq!(now_b.len(), 1, "{now_b:?}");
    assert_ne!(now_a[0], first);
    assert_ne!(now_b, peer_first);
    assert_eq!(count_init(&p, 0), 2);
    for i in 0..2 {
        assert_eq!(
            p.peers[i].ep.ike_sas().next().unwrap().state,
            IkeState::Established
        );
        assert_eq!(p.peers[i].kernel.installs, installs[i] + 1, "side {i}");
        // The same policies (reqid) throughout, never removed.
        assert_eq!(p.peers[i].kernel.policies, reqid[i], "side {i}");
        assert_traffic_throughout(&p, i);
        assert!(
            !p.peers[i]
                .events()
                .iter()
                .any(|e| matches!(e, Event::IkeFailed { .. } | Event::ChildFailed { .. })),
            "side {i}"
        );
    }
    p.assert_one_pair_per_child();
    p.assert_kernels_match();
    // Make-before-break in order: the initiator's new inbound SA, then
    // its new outbound SA; the responder's new outbound SA only after the
    // initiator can receive on it, and before its old one goes.
    let new = [child_of(&p, 0), child_of(&p, 1)];
    let (ka, kb) = (&p.peers[0].kernel, &p.peers[1].kernel);
    let a_in = ka.pos(|l| matches!(l, KLog::AddIn { child, .. } if *child == new[0]));
    let b_out = kb.pos(|l| matches!(l, KLog::AddOut { child, .. } if *child == new[1]));
    let b_old_out = kb.pos(|l| matches!(l, KLog::DelOut { child, .. } if *child == old[1]));
    let a_old_out = ka.pos(|l| matches!(l, KLog::DelOut { child, .. } if *child == old[0]));
    let a_out = ka.pos(|l| matches!(l, KLog::AddOut { child, .. } if *child == new[0]));
    let b_in = kb.pos(|l| matches!(l, KLog::AddIn { child, .. } if *child == new[1]));
    assert!(
        b_in < a_out && a_out < a_old_out,
        "{b_in} {a_out} {a_old_out}"
    );
    assert!(
        a_in < b_out && b_out < b_old_out,
        "{a_in} {b_out} {b_old_out}"
    );
    // The side that reauthenticated deleted the old IKE SA; the peer saw
    // that as a delete by the peer.
    assert!(
        p.a()
            .events()
            .iter()
            .any(|e| matches!(e, Event::IkeDeleted { id, by_peer: false, .. } if *id == first))
    );
    assert!(
        p.b().events().iter().any(
            |e| matches!(e, Event::IkeDeleted { id, by_peer: true, .. } if *id == peer_first[0])
        )
    );
    // And again an hour later: the reauthenticated SA has the timer too.
    p.run_for(secs(3600));
    assert_eq!(count_init(&p, 0), 3);
    assert_eq!(ike_ids(&p, 0).len(), 1);
    assert_eq!(ike_ids(&p, 1).len(), 1);
    for i in 0..2 {
        assert_traffic_throughout(&p, i);
    }
    p.assert_one_pair_per_child();
    // Terminating removes everything, policies included.
    let now = p.now;
    let id = ike_ids(&p, 0)[0];
    p.a().ep.terminate_ike(now, id).unwrap();
    p.run_for(secs(30));
    p.assert_kernels_empty();
}

#[test]
fn reauth_brings_every_child_along() {
    let mut p = Pair::new(reauth_setup(super::two_children(false), 1800, 180, 180));
    let ike = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.initiate_child(now, ike, "web").unwrap();
    p.run_for(secs(60));
    assert_eq!(p.a().kernel.installed.len(), 2);
    let policies = [p.a().kernel.policies.clone(), p.b().kernel.policies.clone()];
    assert_eq!(policies[0].len(), 2);
    p.run_for(secs(1800 + 120));
    assert_eq!(count_init(&p, 0), 2);
    for i in 0..2 {
        assert_eq!(ike_ids(&p, i).len(), 1, "side {i}");
        assert_eq!(p.peers[i].kernel.policies, policies[i], "side {i}");
        assert_eq!(p.peers[i].kernel.installed.len(), 2, "side {i}");
        assert!(!p.peers[i].kernel.policies_removed(), "side {i}");
    }
    assert_ne!(ike_ids(&p, 0)[0], ike);
    p.assert_one_pair_per_child();
    p.assert_kernels_match();
}

#[test]
fn failed_reauth_keeps_the_old_sa_and_retries() {
    let mut p = Pair::new(reauth_setup(Setup::default(), 3600, 0, 900));
    let first = p.connect(0, "site-b");
    let installs = [p.a().kernel.installs, p.b().kernel.installs];
    // The peer stops answering new IKE SAs (a DoS, its limits): side 0's
    // IKE_SA_INIT requests are lost.
    let block = std::rc::Rc::new(std::cell::Cell::new(true));
    let b = block.clone();
    p.policy = Box::new(move |from, _, payload| {
        let init = Header::peek(payload)
            .is_ok_and(|(h, _)| h.exchange == ExchangeType::IKE_SA_INIT && !h.is_response());
        if from == 0 && init && b.get() {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    // The attempt gives up after its retransmissions (4 s x 1.8^n, 5
    // times: 165 s); the next starts 30 s after that.
    // (`connect` ran the first minute.)
    p.run_for(secs(3600 + 180 - 60));
    assert_eq!(ike_ids(&p, 0), [first], "the old SA stays");
    assert_eq!(ike_ids(&p, 1).len(), 1);
    assert_eq!(
        count_init(&p, 0),
        2 + 5,
        "one attempt, retransmitted 5 times"
    );
    assert!(
        p.a()
            .events()
            .iter()
            .any(|e| matches!(e, Event::IkeFailed { .. }))
    );
    for i in 0..2 {
        assert_eq!(
            p.peers[i].kernel.installs, installs[i],
            "side {i}: untouched"
        );
    }
    p.assert_one_pair_per_child();
    // The peer answers again: the next attempt (30 s later) succeeds.
    block.set(false);
    p.run_for(secs(120));
    let now_a = ike_ids(&p, 0);
    assert_eq!(now_a.len(), 1);
    assert_ne!(now_a[0], first);
    assert_eq!(ike_ids(&p, 1).len(), 1);
    for i in 0..2 {
        assert_traffic_throughout(&p, i);
    }
    p.assert_one_pair_per_child();
}

#[test]
fn reauth_that_never_succeeds_ends_at_over_time() {
    let mut p = Pair::new(reauth_setup(Setup::default(), 3600, 0, 600));
    let first = p.connect(0, "site-b");
    p.policy = Box::new(move |from, _, payload| {
        let init = Header::peek(payload)
            .is_ok_and(|(h, _)| h.exchange == ExchangeType::IKE_SA_INIT && !h.is_response());
        if from == 0 && init {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.run_for(secs(3600 + 590 - 60));
    assert!(ike_ids(&p, 0).contains(&first));
    p.run_for(secs(20));
    // Deleted at reauth_time + over_time, with its children, on both sides.
    assert!(ike_ids(&p, 0).iter().all(|id| *id != first));
    assert!(p.a().kernel.policies.is_empty());
    assert!(p.b().kernel.policies.is_empty());
}

#[test]
fn hours_of_reauths_rekeys_and_child_rekeys_over_a_lossy_network() {
    let mut s = reauth_setup(super::two_children(true), 3000, 300, 600);
    for (i, side) in s.peers.iter_mut().enumerate() {
        side[0].lifetimes.rekey_time = secs(1700 + 100 * i as u64);
        side[0].lifetimes.rand_time = secs(200);
        for c in &mut side[0].children {
            let c = Arc::make_mut(c);
            c.lifetimes = ChildLifetimes {
                rekey_time: secs(900),
                life_time: secs(1200),
                rand_time: secs(200),
                ..ChildLifetimes::default()
            };
        }
    }
    let mut p = Pair::new(s);
    let ike = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.initiate_child(now, ike, "web").unwrap();
    p.run_for(secs(60));
    let policies = [p.a().kernel.policies.clone(), p.b().kernel.policies.clone()];
    let mut n = 0usize;
    p.policy = Box::new(move |_, _, _| {
        n += 1;
        if n.is_multiple_of(7) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.run_for(secs(6 * 3600));
    p.policy = Box::new(|_, _, _| Fate::Deliver);
    p.run_for(secs(300));
    assert!(count_init(&p, 0) >= 5, "{}", count_init(&p, 0));
    for i in 0..2 {
        assert_eq!(ike_ids(&p, i).len(), 1, "side {i}");
        assert_eq!(p.peers[i].kernel.installed.len(), 2, "side {i}");
        assert_eq!(p.peers[i].kernel.policies, policies[i], "side {i}");
        assert!(!p.peers[i].kernel.policies_removed(), "side {i}");
    }
    p.assert_one_pair_per_child();
    p.assert_kernels_match();
}

#[test]
fn responder_sends_on_the_new_child_after_a_while_if_the_old_one_stays() {
    // The reauthenticating side's delete of the old IKE SA never arrives
    // (as with a peer that restarted and never deletes it): the responder
    // waits HANDOVER (2 s) for the old Child SA to go, then sends on the
    // new one anyway.
    let mut p = Pair::new(reauth_setup(Setup::default(), 3600, 0, 600));
    p.connect(0, "site-b");
    let old = child_of(&p, 1);
    p.policy = Box::new(|from, _, payload| {
        let delete = Header::peek(payload)
            .is_ok_and(|(h, _)| h.exchange == ExchangeType::INFORMATIONAL && !h.is_response());
        if from == 0 && delete {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    // Reauthentication at 3600 s (`connect` ran the first minute).
    p.run_for(secs(3600 - 60 + 1));
    let k = &p.peers[1].kernel;
    assert_eq!(ike_ids(&p, 1).len(), 2);
    let new = *k.installed.keys().max().unwrap();
    assert_ne!(new, old);
    let sending = |p: &Pair, c: ChildId| p.peers[1].kernel.sa_out.values().any(|(x, _)| *x == c);
    assert!(sending(&p, old) && !sending(&p, new), "holds back");
    p.run_for(secs(2));
    assert!(sending(&p, new), "sends after 2 s");
    assert!(sending(&p, old), "the old one is still there");
    // Side 0 gives up its delete and removes the old IKE SA locally.
    p.run_for(secs(300));
    assert_eq!(ike_ids(&p, 0).len(), 1);
    assert!(p.peers[0].kernel.installed.len() == 1);
    let k = &p.peers[1].kernel;
    assert_eq!(k.policies.len(), 1);
    assert!(!k.policies_removed());
}

/// The reauthenticating side's new inbound SA is in its kernel before its
/// IKE_AUTH leaves (a responder such as charon sends on the new Child SA
/// as soon as it answers), under the old Child SA's reqid; when IKE_AUTH
/// never gets an answer, it goes again with the failed IKE SA and the old
/// Child SA carries on; the next attempt succeeds.
#[test]
fn reauth_installs_the_inbound_sa_before_ike_auth_and_removes_it_if_auth_fails() {
    let mut p = Pair::new(reauth_setup(Setup::default(), 3600, 0, 900));
    let first = p.connect(0, "site-b");
    let old = child_of(&p, 0);
    let reqid = p.a().kernel.sa_in.values().next().unwrap().1;
    // The responder's IKE_AUTH answers are lost.
    let block = std::rc::Rc::new(std::cell::Cell::new(true));
    let b = block.clone();
    p.policy = Box::new(move |from, _, payload| {
        let auth = Header::peek(payload)
            .is_ok_and(|(h, _)| h.exchange == ExchangeType::IKE_AUTH && h.is_response());
        if from == 1 && auth && b.get() {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    // Reauthentication at 3600 s; `connect` ran the first minute.
    p.run_for(secs(3600 - 60 + 2));
    let sent_auth = p.peers[0].sent.iter().any(|(_, t)| {
        Header::peek(&t.payload)
            .is_ok_and(|(h, _)| h.exchange == ExchangeType::IKE_AUTH && !h.is_response())
    });
    assert!(sent_auth, "IKE_AUTH went out");
    let k = &p.peers[0].kernel;
    let ins: Vec<_> = k.sa_in.values().collect();
    assert_eq!(ins.len(), 2, "old and new inbound SA: {ins:?}");
    assert!(ins.iter().all(|(_, r)| *r == reqid), "{ins:?}");
    assert!(ins.iter().any(|(c, _)| *c != old), "{ins:?}");
    assert_eq!(k.sa_out.len(), 1, "only the old Child SA sends");
    // IKE_AUTH gives up after its retransmissions (165 s): the new
    // inbound SA goes, the old IKE SA stays (the next try is 30 s later).
    p.run_for(secs(175));
    assert_eq!(ike_ids(&p, 0), [first], "the old SA stays");
    let k = &p.peers[0].kernel;
    assert_eq!(k.sa_in.len(), 1, "{:?}", k.sa_in);
    assert_eq!(k.installed.keys().copied().collect::<Vec<_>>(), [old]);
    assert_eq!(k.sa_out.len(), 1);
    assert!(k.larval.is_empty(), "{:?}", k.larval);
    // (The responder took its IKE SA for established: it stays there
    // until the old one's deletion or DPD, as with any lost answer.)
    block.set(false);
    p.run_for(secs(120));
    let now_a = ike_ids(&p, 0);
    assert_eq!(now_a.len(), 1);
    assert_ne!(now_a[0], first);
    assert_traffic_throughout(&p, 0);
    let k = &p.peers[0].kernel;
    assert_eq!((k.sa_in.len(), k.sa_out.len()), (1, 1));
    assert_eq!(k.policies.iter().copied().collect::<Vec<_>>(), [reqid]);
}

/// A Child SA the peer refuses in the reauthentication (its configuration
/// now wants another transform for it): deleting the old IKE SA would lose that
/// Child SA, so the new IKE SA goes with the Child SAs that did come up
/// and the old one stays with all of its own, under the same policies,
/// and tries again; once the peer takes the Child SA again, the next
/// attempt replaces the old IKE SA with every Child SA.
#[test]
fn reauth_with_a_child_the_peer_refuses_keeps_the_old_sa() {
    let s = reauth_setup(super::two_children(false), 1800, 0, 900);
    let full = s.peers[1].clone();
    let mut reduced = full.clone();
    for c in &mut reduced[0].children {
        let c = Arc::make_mut(c);
        if c.name == "web" {
            c.proposals = esp("aes256gcm16");
        }
    }
    let mut p = Pair::new(s);
    let first = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.initiate_child(now, first, "web").unwrap();
    p.run_for(secs(60));
    let children = |p: &Pair, i: usize| {
        p.peers[i]
            .kernel
            .installed
            .keys()
            .copied()
            .collect::<Vec<_>>()
    };
    let old = [children(&p, 0), children(&p, 1)];
    assert_eq!(old[0].len(), 2);
    let policies = [p.a().kernel.policies.clone(), p.b().kernel.policies.clone()];
    let now = p.now;
    p.b().ep.set_config(now, reduced);
    // Reauthentication at 1800 s (`connect` and `web` ran two minutes).
    p.run_for(secs(1800 - 120 + 20));
    assert_eq!(count_init(&p, 0), 2, "one attempt");
    assert_eq!(ike_ids(&p, 0), [first], "the old IKE SA stays");
    assert_eq!(ike_ids(&p, 1).len(), 1, "the new one is gone");
    for i in 0..2 {
        assert_eq!(children(&p, i), old[i], "side {i}: the old Child SAs");
        assert_eq!(p.peers[i].kernel.policies, policies[i], "side {i}");
        assert_traffic_throughout(&p, i);
    }
    p.assert_one_pair_per_child();
    p.assert_kernels_match();
    // The peer takes `web` again: the next attempt (30 s) succeeds.
    let now = p.now;
    p.b().ep.set_config(now, full);
    p.run_for(secs(60));
    assert_eq!(count_init(&p, 0), 3);
    let now_a = ike_ids(&p, 0);
    assert_eq!(now_a.len(), 1);
    assert_ne!(now_a[0], first);
    assert_eq!(ike_ids(&p, 1).len(), 1);
    for i in 0..2 {
        assert_eq!(p.peers[i].kernel.installed.len(), 2, "side {i}");
        assert!(
            children(&p, i).iter().all(|c| !old[i].contains(c)),
            "side {i}"
        );
        assert_eq!(p.peers[i].kernel.policies, policies[i], "side {i}");
        assert_traffic_throughout(&p, i);
        assert!(!p.peers[i].kernel.policies_removed(), "side {i}");
    }
    p.assert_one_pair_per_child();
    p.assert_kernels_match();
}

/// The peer refuses a Child SA in every attempt: the old IKE SA stays
/// while another attempt can still end before its `over_time` deadline;
/// the last one that cannot replaces it with the Child SAs that came up
/// rather than losing them all at the deadline.
#[test]
fn reauth_with_a_child_refused_to_the_end_keeps_the_others() {
    let s = reauth_setup(super::two_children(false), 1800, 0, 60);
    let mut refusing = s.peers[1].clone();
    for c in &mut refusing[0].children {
        let c = Arc::make_mut(c);
        if c.name == "web" {
            c.proposals = esp("aes256gcm16");
        }
    }
    let mut p = Pair::new(s);
    let first = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.initiate_child(now, first, "web").unwrap();
    p.run_for(secs(60));
    let policies = [p.a().kernel.policies.clone(), p.b().kernel.policies.clone()];
    let now = p.now;
    p.b().ep.set_config(now, refusing);
    // First attempt at 1800 s: refused, the old IKE SA stays.
    p.run_for(secs(1800 - 120 + 10));
    assert_eq!(count_init(&p, 0), 2);
    assert_eq!(ike_ids(&p, 0), [first]);
    assert_eq!(p.a().kernel.installed.len(), 2);
    // The second, 30 s later, is the last before 1860 s: `net` moves to
    // the new IKE SA, `web` is gone.
    p.run_for(secs(40));
    assert_eq!(count_init(&p, 0), 3);
    for i in 0..2 {
        let ids = ike_ids(&p, i);
        assert_eq!(ids.len(), 1, "side {i}");
        assert_ne!(ids[0], first);
        let k = &p.peers[i].kernel;
        let names: Vec<&str> = k.installed.values().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["net"], "side {i}");
        assert_eq!(k.policies.len(), 1, "side {i}");
        assert!(
            policies[i].is_superset(&k.policies),
            "side {i}: net's reqid"
        );
    }
    p.assert_one_pair_per_child();
    p.assert_kernels_match();
}

/// The responder of a reauthentication answers the delete of the old IKE
/// SA only once the new Child SAs' outbound SAs are in: the peer (charon)
/// removes the old inbound SAs as soon as it has the answer, and what we
/// sent on the old outbound SA until then would be lost.
#[test]
fn responder_answers_the_old_sas_delete_once_it_sends_on_the_new_child() {
    let mut p = Pair::new(reauth_setup(Setup::default(), 3600, 0, 600));
    p.connect(0, "site-b");
    // The delete of the old IKE SA takes 1 s (HANDOVER is 2 s).
    p.policy = Box::new(|from, _, payload| {
        let info = Header::peek(payload)
            .is_ok_and(|(h, _)| h.exchange == ExchangeType::INFORMATIONAL && !h.is_response());
        if from == 0 && info {
            Fate::Delay(secs(1))
        } else {
            Fate::Deliver
        }
    });
    // Reauthentication at 3600 s (`connect` ran the first minute).
    p.run_for(Duration::from_millis((3600 - 60) * 1000 + 500));
    assert_eq!(ike_ids(&p, 1).len(), 2);
    let answers = |p: &Pair| p.peers[1].count_sent(ExchangeType::INFORMATIONAL, true);
    let before = answers(&p);
    let outs = p.peers[1].kernel.sa_out.len();
    assert_eq!(outs, 1, "the new Child SA does not send yet");
    p.hold_kernel[1] = true;
    p.run_for(secs(1));
    assert_eq!(ike_ids(&p, 1).len(), 1, "the old IKE SA is deleted");
    assert!(
        !p.held[1].is_empty(),
        "its new outbound SA is being installed"
    );
    assert_eq!(
        answers(&p),
        before,
        "no answer before the outbound SA is in"
    );
    p.hold_kernel[1] = false;
    p.release_kernel(1);
    assert_eq!(answers(&p), before + 1, "the answer once it is in");
    p.run_for(secs(5));
    assert_eq!(ike_ids(&p, 0).len(), 1);
    p.assert_one_pair_per_child();
    assert_traffic_throughout(&p, 1);
}
