//! Initiator pacing: IKE SAs initiated toward one peer address go out
//! through a window of initiations under way (`init_window`).

use super::*;

fn window(n: usize) -> Setup {
    let mut s = Setup::default();
    s.cfg[0].init_window = n;
    // Many IKE SAs of one connection, as many peers of their own
    // identities: none may send INITIAL_CONTACT (the responder would
    // remove the others of the identity pair).
    s.peers[0][0].behaviour.unique = crate::sa::config::Unique::Never;
    s.cfg[1].cookie_threshold = None;
    s.cfg[1].dos.cookie_threshold_ip = None;
    s.cfg[1].dos.block_threshold = None;
    s
}

/// Initiator SAs connecting that have no answer to IKE_SA_INIT.
fn unanswered(p: &mut Pair) -> usize {
    p.a()
        .ep
        .ike_sas()
        .filter(|s| s.state == IkeState::Connecting && s.spi_r == 0)
        .count()
}

#[test]
fn initiations_toward_one_peer_go_through_the_window() {
    let mut p = Pair::new(window(4));
    // The first children's SPIs do not come: each SA sent stays under way.
    p.hold_kernel = [true, false];
    let now = p.now;
    for _ in 0..20 {
        p.a().ep.initiate(now, "site-b", &[]).unwrap();
    }
    p.drive();
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 4);
    // The 16 others are there, waiting (and asked the kernel for nothing).
    assert_eq!(p.a().ep.len(), 20);
    assert_eq!(unanswered(&mut p), 16);
    assert_eq!(p.held[0].len(), 4);
    p.hold_kernel = [false, false];
    p.release_kernel(0);
    p.run_for(secs(5));
    assert!(
        p.a()
            .ep
            .ike_sas()
            .all(|s| s.state == IkeState::Established && s.children.len() == 1)
    );
    assert_eq!(p.a().kernel.installed.len(), 20);
    p.assert_kernels_match();
    // Each one IKE_SA_INIT: nothing was retransmitted.
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 20);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_SA_INIT, true), 20);
    assert!(failed(&p.a().events()).is_empty());
}

#[test]
fn a_waiting_sa_terminated_never_sends_and_takes_no_slot() {
    let mut p = Pair::new(window(1));
    p.hold_kernel = [true, false];
    let now = p.now;
    let ids: Vec<IkeSaId> = (0..3)
        .map(|_| p.a().ep.initiate(now, "site-b", &[]).unwrap())
        .collect();
    p.drive();
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 1);
    p.a().ep.terminate_ike(now, ids[1]).unwrap();
    p.drive();
    assert!(p.a().ep.ike_sa(ids[1]).is_none());
    // Still one under way: the third waits.
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 1);
    p.hold_kernel = [false, false];
    p.release_kernel(0);
    p.run_for(secs(5));
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 2);
    for id in [ids[0], ids[2]] {
        assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    }
}

#[test]
fn a_failed_initiation_frees_its_slot() {
    let mut s = window(1);
    s.cfg[0].retransmit_timeout = secs(1);
    s.cfg[0].retransmit_tries = 1;
    let mut p = Pair::new(s);
    // The responder hears nothing of the first SA.
    let mut first_spi = None;
    p.policy = Box::new(move |from, _, bytes| {
        let spi = bytes
            .get(..8)
            .map(|b| u64::from_be_bytes(b.try_into().unwrap()));
        if from == 0 && (first_spi.is_none() || first_spi == spi) {
            first_spi = spi;
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let now = p.now;
    let a = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    let b = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(2));
    // Only the first went (and was retransmitted once).
    assert!(p.b().ep.is_empty());
    assert_eq!(
        p.a().ep.ike_sa(b).map(|s| s.state),
        Some(IkeState::Connecting)
    );
    p.run_for(secs(10));
    assert!(p.a().ep.ike_sa(a).is_none());
    assert_eq!(
        p.a().ep.ike_sa(b).map(|s| s.state),
        Some(IkeState::Established)
    );
    assert_eq!(failed(&p.a().events()), [IkeFailReason::PeerNotResponding]);
}

#[test]
fn a_thousand_through_the_default_window_are_never_blocked() {
    // The responder's defaults (charon's): at most 5 half-open IKE SAs
    // per address, cookies from 3. Paced at 5, none is dropped: each
    // IKE_SA_INIT goes once, or twice with a cookie, never again after a
    // retransmission timeout. (No INITIAL_CONTACT: see `window`.)
    let mut s = Setup::default();
    s.peers[0][0].behaviour.unique = crate::sa::config::Unique::Never;
    let mut p = Pair::new(s);
    let now = p.now;
    for _ in 0..1000 {
        p.a().ep.initiate(now, "site-b", &[]).unwrap();
    }
    p.run_for(secs(3));
    assert_eq!(p.a().kernel.installed.len(), 1000);
    assert!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false) <= 2000);
    assert!(failed(&p.a().events()).is_empty());
    p.assert_kernels_match();
}

#[test]
fn no_window_sends_every_initiation_at_once() {
    let mut p = Pair::new(window(0));
    p.hold_kernel = [true, false];
    let now = p.now;
    for _ in 0..20 {
        p.a().ep.initiate(now, "site-b", &[]).unwrap();
    }
    p.drive();
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 20);
    assert_eq!(unanswered(&mut p), 0);
    assert!(p.a().ep.ike_sas().all(|s| s.state == IkeState::Connecting));
}

#[test]
fn the_default_window_is_charons_block_threshold() {
    assert_eq!(EndpointConfig::default().init_window, 5);
    assert_eq!(DEFAULT_INIT_WINDOW, 5);
}
