//! The policy keys in the engine: a fixed `reqid`, and the marks and
//! interface ids (`%unique` resolved) each install and removal carries,
//! kept through a rekey.

use std::sync::Arc;
use std::time::Duration;

use super::harness::*;
use crate::config::{ChildPolicy, ConnPolicy, IdValue, MarkCfg};
use crate::sa::*;

fn marked(reqid: u32) -> Setup {
    let mut s = Setup::default();
    let mut peer = left_cfg();
    let mut child = (*peer.children[0]).clone();
    child.policy = ChildPolicy {
        reqid,
        mark_in: Some(MarkCfg {
            value: IdValue::Unique,
            mask: u32::MAX,
        }),
        mark_out: Some(MarkCfg {
            value: IdValue::Fixed(42),
            mask: 0xff,
        }),
        ..ChildPolicy::default()
    };
    peer.children = vec![Arc::new(child)];
    peer.policy = ConnPolicy {
        if_id_out: Some(IdValue::Fixed(7)),
        ..ConnPolicy::default()
    };
    s.peers[0] = vec![peer];
    s
}

fn installed(p: &Pair) -> ChildInstall {
    let k = &p.peers[0].kernel;
    assert_eq!(k.installed.len(), 1);
    k.installed.values().next().unwrap().clone()
}

#[test]
fn a_fixed_reqid_is_used_and_kept_through_a_rekey() {
    let mut p = Pair::new(marked(1234));
    let ike = p.connect(0, "site-b");
    let c = installed(&p);
    assert_eq!(c.reqid, 1234);
    // %unique is the reqid; the connection's if_id_out applies.
    let want = KernelPolicy {
        mark_in: Some(MarkPair {
            value: 1234,
            mask: u32::MAX,
        }),
        mark_out: Some(MarkPair {
            value: 42,
            mask: 0xff,
        }),
        if_id_out: 7,
        ..KernelPolicy::default()
    };
    assert_eq!(c.kernel, want);
    // A trap of the child takes the same reqid.
    assert_eq!(p.a().ep.trap_reqid("site-b", "net"), 1234);
    let now = p.now;
    p.a().ep.rekey_child(now, ike, c.id).unwrap();
    p.run_for(Duration::from_secs(60));
    let n = installed(&p);
    assert_ne!(n.id, c.id);
    assert_eq!((n.reqid, &n.kernel), (1234, &want));
    // The removal of the old Child SA names its marks.
    let r = p.a().kernel.removed.last().unwrap().clone();
    assert_eq!((r.id, r.reqid, &r.kernel), (c.id, 1234, &want));
}

#[test]
fn allocated_reqids_skip_the_fixed_ones_in_use() {
    let mut p = Pair::new(marked(1));
    p.connect(0, "site-b");
    assert_eq!(installed(&p).reqid, 1);
    // The next allocated reqid is not 1 (held by the Child SA).
    let r = p.a().ep.trap_reqid("other", "x");
    assert_ne!(r, 1);
}
