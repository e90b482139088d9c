//! Trap reqids: the Child SAs of a trapped child use the reqid reserved
//! for its trap, so their SAs go in under the trap's policies.

use std::time::Duration;

use super::harness::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn children_of_a_trapped_child_use_the_traps_reqid() {
    let mut p = Pair::default_pair();
    let r = p.a().ep.trap_reqid("site-b", "net");
    assert_eq!(p.a().ep.trap_reqid("site-b", "net"), r, "stable");
    let id = p.connect(0, "site-b");
    let c = &p.a().ep.ike_sa(id).unwrap().children[0];
    assert_eq!(c.reqid, r);
    assert_eq!(
        p.a().kernel.policies.iter().copied().collect::<Vec<_>>(),
        [r]
    );
    // Down and up again: the same reqid (the trap's policies).
    let now = p.now;
    p.a().ep.terminate_ike(now, id).unwrap();
    p.run_for(secs(10));
    let id = p.connect(0, "site-b");
    assert_eq!(p.a().ep.ike_sa(id).unwrap().children[0].reqid, r);
    // Without the trap, a new reqid.
    assert_eq!(p.a().ep.forget_trap("site-b", "net"), Some(r));
    let now = p.now;
    p.a().ep.terminate_ike(now, id).unwrap();
    p.run_for(secs(10));
    let id = p.connect(0, "site-b");
    assert_ne!(p.a().ep.ike_sa(id).unwrap().children[0].reqid, r);
}
