//! The responder's key exchanges of CREATE_CHILD_SA (a Child SA rekeyed
//! with PFS, an IKE rekey) as CPU jobs handed to the driver
//! (`ComputeMode::Outside`): the request is held until the result comes,
//! in whatever order results come; a result whose IKE SA is gone is
//! dropped.

use super::*;

fn pfs(mode: ComputeMode) -> Setup {
    let mut s = Setup::default();
    for i in 0..2 {
        s.cfg[i].compute = mode;
        Arc::make_mut(&mut s.peers[i][0].children[0]).proposals = esp("aes128gcm16-x25519");
    }
    s
}

fn only_child(p: &Pair, i: usize) -> (IkeSaId, ChildId) {
    let sa = p.peers[i].ep.ike_sas().next().unwrap();
    (sa.id, sa.children[0].id)
}

fn rekeyed(p: &Pair, i: usize) -> usize {
    p.peers[i]
        .events()
        .iter()
        .filter(|e| matches!(e, Event::ChildRekeyed { .. }))
        .count()
}

/// A child rekey from each side, then an IKE rekey from the left.
fn rekeys(p: &mut Pair) {
    for i in [0, 1] {
        let (ike, child) = only_child(p, i);
        let now = p.now;
        p.peers[i].ep.rekey_child(now, ike, child).unwrap();
        p.run_for(secs(10));
    }
    let (ike, _) = only_child(p, 0);
    let now = p.now;
    p.a().ep.rekey_ike(now, ike).unwrap();
    p.run_for(secs(10));
}

#[test]
fn create_child_sa_key_exchanges_on_workers_send_what_inline_sends() {
    let mut inline = Pair::new(pfs(ComputeMode::Inline));
    inline.connect(0, "site-b");
    rekeys(&mut inline);
    let mut p = Pair::new(pfs(ComputeMode::Outside));
    p.connect(0, "site-b");
    rekeys(&mut p);
    assert_eq!([rekeyed(&p, 0), rekeyed(&p, 1)], [2, 2]);
    assert!(
        p.a()
            .events()
            .iter()
            .any(|e| matches!(e, Event::IkeRekeyed { .. }))
    );
    p.assert_one_pair_per_child();
    // Left: IKE_SA_INIT's key pair and shared secret, the responder's key
    // exchange of right's child rekey; right: IKE_SA_INIT's, left's child
    // rekey, left's IKE rekey.
    assert_eq!(p.computes, [3, 3]);
    p.assert_sent_what(&inline);
}

#[test]
fn a_held_key_exchange_is_computed_once_while_the_peer_retransmits() {
    let mut p = Pair::new(pfs(ComputeMode::Outside));
    p.connect(0, "site-b");
    p.hold_compute = [false, true];
    let (ike, child) = only_child(&p, 0);
    let now = p.now;
    p.a().ep.rekey_child(now, ike, child).unwrap();
    p.run_for(secs(12));
    assert!(p.a().count_sent(ExchangeType::CREATE_CHILD_SA, false) >= 3);
    assert_eq!(p.held_compute[1].len(), 1);
    assert_eq!(p.b().count_sent(ExchangeType::CREATE_CHILD_SA, true), 0);
    p.release_compute(1);
    p.run_for(secs(10));
    assert_eq!(p.b().count_sent(ExchangeType::CREATE_CHILD_SA, true), 1);
    assert_eq!([rekeyed(&p, 0), rekeyed(&p, 1)], [1, 1]);
    p.assert_one_pair_per_child();
    // And an IKE rekey the same way.
    let now = p.now;
    p.a().ep.rekey_ike(now, ike).unwrap();
    p.drive();
    assert_eq!(p.held_compute[1].len(), 1);
    p.release_compute(1);
    p.run_for(secs(10));
    assert!(
        p.b()
            .events()
            .iter()
            .any(|e| matches!(e, Event::IkeRekeyed { .. }))
    );
    p.assert_one_pair_per_child();
    assert_eq!(p.computes[1], 3);
}

#[test]
fn key_exchange_results_in_any_order_rekey_every_child() {
    let mut s = pfs(ComputeMode::Outside);
    s.peers[0][0].behaviour.unique = crate::sa::config::Unique::Never;
    s.cfg[0].init_window = 0;
    s.cfg[1].cookie_threshold = None;
    s.cfg[1].dos.cookie_threshold_ip = None;
    s.cfg[1].dos.block_threshold = None;
    let mut p = Pair::new(s);
    let now = p.now;
    for _ in 0..4 {
        p.a().ep.initiate(now, "site-b", &[]).unwrap();
    }
    p.run_for(secs(10));
    assert_eq!(p.a().kernel.installed.len(), 4);
    p.hold_compute = [false, true];
    let sas: Vec<_> = p
        .a()
        .ep
        .ike_sas()
        .map(|s| (s.id, s.children[0].id))
        .collect();
    let now = p.now;
    for (ike, child) in sas {
        p.a().ep.rekey_child(now, ike, child).unwrap();
    }
    p.drive();
    assert_eq!(p.held_compute[1].len(), 4);
    // Latest first.
    p.release_compute(1);
    p.run_for(secs(10));
    assert_eq!([rekeyed(&p, 0), rekeyed(&p, 1)], [4, 4]);
    assert_eq!(p.a().kernel.installed.len(), 4);
    p.assert_kernels_match();
    assert!(failed(&p.a().events()).is_empty() && failed(&p.b().events()).is_empty());
}

#[test]
fn a_key_exchange_for_an_sa_that_is_gone_is_dropped() {
    let mut p = Pair::new(pfs(ComputeMode::Outside));
    p.connect(0, "site-b");
    p.hold_compute = [false, true];
    let (ike, child) = only_child(&p, 0);
    let now = p.now;
    p.a().ep.rekey_child(now, ike, child).unwrap();
    p.drive();
    assert_eq!(p.held_compute[1].len(), 1);
    let (b, _) = only_child(&p, 1);
    let now = p.now;
    p.b().ep.terminate_ike(now, b).unwrap();
    p.run_for(secs(5));
    assert!(p.b().ep.is_empty());
    p.release_compute(1);
    p.run_for(secs(5));
    assert!(p.b().ep.is_empty());
    assert_eq!(p.b().count_sent(ExchangeType::CREATE_CHILD_SA, true), 0);
    p.run_for(secs(200));
    p.assert_kernels_empty();
}

#[test]
fn a_key_exchange_a_worker_finds_unusable_is_refused() {
    let mut p = Pair::new(pfs(ComputeMode::Outside));
    p.connect(0, "site-b");
    p.hold_compute = [false, true];
    let (ike, child) = only_child(&p, 0);
    let now = p.now;
    p.a().ep.rekey_child(now, ike, child).unwrap();
    p.drive();
    let job = p.held_compute[1].pop().unwrap();
    assert!(format!("{job:?}").contains("Respond"));
    // As a worker answers a value the group refuses (X25519's all-zero).
    let now = p.now;
    p.b().ep.handle_computed(
        now,
        crate::sa::Computed {
            req: job.req,
            result: Err("all-zero shared secret".into()),
        },
    );
    p.run_for(secs(10));
    assert_eq!(p.b().count_sent(ExchangeType::CREATE_CHILD_SA, true), 1);
    assert_eq!([rekeyed(&p, 0), rekeyed(&p, 1)], [0, 0]);
    // The old Child SA stays on both sides.
    assert_eq!(only_child(&p, 0).1, child);
    assert_eq!(p.a().kernel.installed.len(), 1);
    assert_eq!(p.b().kernel.installed.len(), 1);
    assert!(p.a().events().iter().any(|e| matches!(
        e,
        Event::ChildFailed { reason: ChildFailReason::PeerError(n), .. } if *n == crate::wire::codes::NotifyType::INVALID_SYNTAX
    )), "{:?}", p.a().events());
}
