//! Limits for authenticated peers (`sa::limits`): Child SA floods and
//! traffic selectors that would explode in the kernel are refused, and
//! what the responder keeps stays flat.

use super::*;

fn children_of(p: &Peer) -> usize {
    p.ep.ike_sas().map(|s| s.children.len()).sum()
}

fn refused(events: &[Event]) -> usize {
    child_failed(events)
        .iter()
        .filter(|r| matches!(r, ChildFailReason::OverLimit(_)))
        .count()
}

fn by_peer(events: &[Event], n: crate::wire::codes::NotifyType) -> usize {
    child_failed(events)
        .iter()
        .filter(|r| **r == ChildFailReason::PeerError(n) || matches!(r, ChildFailReason::TsUnacceptable { by_peer: true } if n == crate::wire::codes::NotifyType::TS_UNACCEPTABLE))
        .count()
}

#[test]
fn create_child_sa_flood_is_refused_at_the_limit_with_flat_memory() {
    let mut s = Setup::default();
    s.cfg[1].peer_limits.max_children = 8;
    let mut p = Pair::new(s);
    let id = p.connect(0, "site-b");
    let flood = |p: &mut Pair, n: usize| {
        for _ in 0..n {
            let now = p.now;
            p.a().ep.initiate_child(now, id, "net").unwrap();
            p.run_for(secs(1));
        }
    };
    // The IKE_AUTH child and seven more fit.
    flood(&mut p, 7);
    assert_eq!(children_of(p.b()), 8);
    assert_eq!(p.b().kernel.installed.len(), 8);
    assert_eq!(refused(&p.b().events()), 0);
    // Every further one is refused with NO_ADDITIONAL_SAS ...
    flood(&mut p, 20);
    assert_eq!(refused(&p.b().events()), 20);
    assert_eq!(
        by_peer(
            &p.a().events(),
            crate::wire::codes::NotifyType::NO_ADDITIONAL_SAS
        ),
        20
    );
    // ... and what the responder holds stays where it was.
    let held = (
        children_of(p.b()),
        p.b().kernel.installed.len(),
        p.b().kernel.policies.len(),
        p.b().kernel.larval.len(),
    );
    assert_eq!(held.0, 8);
    flood(&mut p, 100);
    assert_eq!(refused(&p.b().events()), 120);
    assert_eq!(
        held,
        (
            children_of(p.b()),
            p.b().kernel.installed.len(),
            p.b().kernel.policies.len(),
            p.b().kernel.larval.len(),
        )
    );
    // The initiator gave back what it had asked the kernel for.
    assert_eq!(children_of(p.a()), 8);
    assert!(p.a().kernel.larval.is_empty());
    p.assert_kernels_match();
    // The IKE SA stays up on both sides, and the old Child SAs still
    // rekey: a rekey needs room for twice the limit.
    assert!(p.a().ep.ike_sas().all(|s| s.state == IkeState::Established));
    let first = p.a().ep.ike_sas().next().unwrap().children[0].id;
    let now = p.now;
    p.a().ep.rekey_child(now, id, first).unwrap();
    p.run_for(secs(10));
    assert_eq!(refused(&p.b().events()), 120);
    assert_eq!(children_of(p.b()), 8);
    p.assert_kernels_match();
}

/// 64 ranges on each side, each splitting into 14 prefixes: millions of
/// kernel policies if accepted.
fn exploding(me: &str, them: &str) -> Arc<ChildCfg> {
    let ranges = |net: &str| {
        (0..64)
            .map(|i| subnet(&format!("{net}{i}.1"), &format!("{net}{i}.254")))
            .collect::<Vec<_>>()
    };
    child("boom", ranges(me), ranges(them))
}

#[test]
fn exploding_traffic_selectors_are_ts_unacceptable() {
    let mut s = Setup::default();
    s.peers[0][0].children.push(exploding("10.1.", "10.2."));
    let mut p = Pair::new(s);
    // In IKE_AUTH: the IKE SA comes up without the child.
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &["boom"]).unwrap();
    p.run_for(secs(30));
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    assert_eq!(refused(&p.b().events()), 1);
    assert!(matches!(
        &child_failed(&p.a().events())[..],
        [ChildFailReason::TsUnacceptable { by_peer: true }]
    ));
    assert!(p.b().kernel.installed.is_empty());
    // In CREATE_CHILD_SA, again and again: refused each time, nothing kept.
    for n in 2..=20 {
        let now = p.now;
        p.a().ep.initiate_child(now, id, "boom").unwrap();
        p.run_for(secs(2));
        assert_eq!(refused(&p.b().events()), n);
        assert_eq!(children_of(p.b()), 0);
        assert!(p.b().kernel.policies.is_empty() && p.b().kernel.larval.is_empty());
    }
    // A child within the limits still comes up on the same IKE SA.
    let now = p.now;
    p.a().ep.initiate_child(now, id, "net").unwrap();
    p.run_for(secs(5));
    assert_eq!(p.b().kernel.installed.len(), 1);
    p.assert_kernels_match();
}

#[test]
fn too_many_selectors_in_the_answer_are_rejected_by_the_initiator() {
    let mut s = Setup::default();
    s.cfg[0].peer_limits.max_selectors = 2;
    // The responder narrows our 10.2.0.0/16 to three subnets.
    Arc::make_mut(&mut s.peers[1][0].children[0]).local_ts = (1..=3)
        .map(|i| subnet(&format!("10.2.{i}.0"), &format!("10.2.{i}.255")))
        .collect();
    let mut p = Pair::new(s);
    let id = p.connect(0, "site-b");
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    assert_eq!(refused(&p.a().events()), 1);
    // The responder's SA was deleted; nothing is left in either kernel.
    for i in 0..2 {
        assert!(p.peers[i].kernel.installed.is_empty(), "side {i}");
        assert!(p.peers[i].kernel.policies.is_empty(), "side {i}");
    }
}

fn installed(p: &Pair, i: usize) -> ChildInstall {
    let k = &p.peers[i].kernel;
    assert_eq!(k.installed.len(), 1, "side {i}: {:?}", k.installed.keys());
    k.installed.values().next().unwrap().clone()
}

fn soft_expire(p: &mut Pair, i: usize, c: &ChildInstall) {
    let now = p.now;
    for (spi, dst) in [(c.spi_in, c.local.ip()), (c.spi_out, c.remote.ip())] {
        p.peers[i].ep.handle_kernel_event(
            now,
            KernelEvent::Expire {
                protocol: c.protocol,
                spi,
                dst,
                hard: false,
            },
        );
    }
}

/// The kernel's safety net: every SA carries charon's time limits (soft:
/// `rekey_time`, hard: `life_time`), iked's own timer starts the rekey, and
/// a soft expire that comes with it, before it or after it never starts a
/// second one.
#[test]
fn kernel_time_limits_are_charons_and_a_soft_expire_never_rekeys_twice() {
    let mut s = Setup::default();
    for (side, (rekey, life)) in s.peers.iter_mut().zip([(120, 180), (600, 660)]) {
        let l = &mut Arc::make_mut(&mut side[0].children[0]).lifetimes;
        l.rekey_time = secs(rekey);
        l.life_time = secs(life);
        l.rand_time = Duration::ZERO;
    }
    let mut p = Pair::new(s);
    let start = p.now;
    p.connect(0, "site-b");
    let first = installed(&p, 0);
    assert_eq!(
        (first.limits.soft_secs, first.limits.hard_secs),
        (Some(120), Some(180))
    );
    let theirs = installed(&p, 1).limits;
    assert_eq!((theirs.soft_secs, theirs.hard_secs), (Some(600), Some(660)));
    let rekeys = |p: &Pair| p.peers[0].count_sent(ExchangeType::CREATE_CHILD_SA, false);
    // The kernel's soft expires (both SAs) come half a second before our
    // timer: they start the one rekey, the timer none.
    p.run_for(start + secs(120) - Duration::from_millis(500) - p.now);
    assert_eq!(rekeys(&p), 0);
    soft_expire(&mut p, 0, &first);
    p.run_for(secs(10));
    assert_eq!(rekeys(&p), 1);
    let second = installed(&p, 0);
    assert_ne!(second.spi_in, first.spi_in);
    // Late soft expires of the replaced SAs change nothing.
    soft_expire(&mut p, 0, &first);
    p.run_for(secs(10));
    assert_eq!(rekeys(&p), 1);
    // Our timer starts the next rekey; the kernel's soft expires come
    // while it waits for its SPI, and again once it is done.
    p.run_for(secs(90));
    assert_eq!(rekeys(&p), 1);
    p.hold_kernel[0] = true;
    p.run_for(secs(20));
    assert_eq!(
        p.a().ep.ike_sas().next().unwrap().children[0].state,
        ChildState::Rekeying
    );
    soft_expire(&mut p, 0, &second);
    p.hold_kernel[0] = false;
    p.release_kernel(0);
    p.run_for(secs(10));
    assert_eq!(rekeys(&p), 2);
    soft_expire(&mut p, 0, &second);
    p.run_for(secs(10));
    assert_eq!(rekeys(&p), 2);
    p.assert_one_pair_per_child();
    p.assert_kernels_match();
}
