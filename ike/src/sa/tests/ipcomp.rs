//! IPComp negotiated with IPCOMP_SUPPORTED (RFC 7296 2.22) as charon
//! does it: both sides configured, one side only, a failed CPI
//! allocation, a second Child SA and a rekey.

use std::sync::Arc;

use super::harness::*;
use super::secs;
use crate::sa::*;
use crate::wire::codes::ExchangeType;

/// `ipcomp = yes` on the sides listed.
fn setup(sides: [bool; 2]) -> Setup {
    let mut s = Setup::default();
    for (side, on) in s.peers.iter_mut().zip(sides) {
        Arc::make_mut(&mut side[0].children[0]).sa_opts.ipcomp = on;
    }
    s
}

fn only(p: &Pair, i: usize) -> ChildInstall {
    let k = &p.peers[i].kernel;
    assert_eq!(k.installed.len(), 1, "side {i}: {:?}", k.installed.keys());
    k.installed.values().next().unwrap().clone()
}

#[test]
fn both_configured_use_ipcomp_with_each_others_cpi() {
    for initiator in [0, 1] {
        let mut p = Pair::new(setup([true, true]));
        let peer = if initiator == 0 { "site-b" } else { "site-a" };
        p.connect(initiator, peer);
        p.assert_one_pair_per_child();
        let (a, b) = (only(&p, 0), only(&p, 1));
        let (ca, cb) = (a.ipcomp.unwrap(), b.ipcomp.unwrap());
        // Each side's CPI comes from its own kernel (0xc00.. / 0xd00..).
        assert_eq!(ca.cpi_in & 0xff00, 0x0c00, "{ca:?}");
        assert_eq!(cb.cpi_in & 0xff00, 0x0d00, "{cb:?}");
        assert_eq!((ca.cpi_out, cb.cpi_out), (cb.cpi_in, ca.cpi_in));
    }
}

#[test]
fn one_side_only_means_no_ipcomp_and_no_cpi_left() {
    for sides in [[true, false], [false, true]] {
        let mut p = Pair::new(setup(sides));
        p.connect(0, "site-b");
        p.assert_one_pair_per_child();
        assert_eq!(only(&p, 0).ipcomp, None, "{sides:?}");
        assert_eq!(only(&p, 1).ipcomp, None, "{sides:?}");
        // The initiator's CPI went back (assert_one_pair_per_child:
        // nothing allocated is left), the responder never took one.
        assert_eq!(p.a().kernel.installs, 1);
    }
}

#[test]
fn no_cpi_from_the_kernel_goes_on_without_ipcomp() {
    for failing in [0, 1] {
        let mut p = Pair::new(setup([true, true]));
        p.peers[failing].kernel.fail_cpi = true;
        p.connect(0, "site-b");
        p.assert_one_pair_per_child();
        assert_eq!(only(&p, 0).ipcomp, None);
        assert_eq!(only(&p, 1).ipcomp, None);
    }
}

#[test]
fn rekeys_and_further_children_keep_ipcomp_with_new_cpis() {
    let mut p = Pair::new(setup([true, true]));
    let ike = p.connect(0, "site-b");
    let first = only(&p, 0);
    let old = first.id;
    let now = p.now;
    let (ike_b, child_b) = (p.peers[1].ep.ike_sas().next().unwrap().id, only(&p, 1).id);
    p.peers[1].ep.rekey_child(now, ike_b, child_b).unwrap();
    p.run_for(secs(60));
    p.assert_one_pair_per_child();
    let (a, b) = (only(&p, 0), only(&p, 1));
    assert_ne!(a.id, old);
    let (ca, cb) = (a.ipcomp.unwrap(), b.ipcomp.unwrap());
    assert_ne!(Some(ca), first.ipcomp, "a rekey has new CPIs");
    assert_eq!((ca.cpi_out, cb.cpi_out), (cb.cpi_in, ca.cpi_in));
    assert_eq!(a.reqid, first.reqid);
    // Rekeyed from side 0 too.
    let now = p.now;
    p.a().ep.rekey_child(now, ike, a.id).unwrap();
    p.run_for(secs(60));
    p.assert_one_pair_per_child();
    assert!(only(&p, 0).ipcomp.is_some() && only(&p, 1).ipcomp.is_some());
    assert!(p.a().count_sent(ExchangeType::CREATE_CHILD_SA, false) >= 1);

    // A second child with CREATE_CHILD_SA: IPComp on the one configured.
    let mut s = setup([true, true]);
    for side in &mut s.peers {
        let mut c = (*side[0].children[0]).clone();
        c.name = "plain".into();
        c.sa_opts.ipcomp = false;
        c.local_ts = vec![subnet("10.8.0.0", "10.8.0.255")];
        c.remote_ts = vec![subnet("10.9.0.0", "10.9.0.255")];
        side[0].children.push(Arc::new(c));
    }
    // Side 1's selectors mirror side 0's.
    Arc::make_mut(&mut s.peers[1][0].children[1]).local_ts = vec![subnet("10.9.0.0", "10.9.0.255")];
    Arc::make_mut(&mut s.peers[1][0].children[1]).remote_ts =
        vec![subnet("10.8.0.0", "10.8.0.255")];
    let mut p = Pair::new(s);
    let ike = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.initiate_child(now, ike, "plain").unwrap();
    p.run_for(secs(10));
    p.assert_one_pair_per_child();
    let k = &p.peers[0].kernel;
    assert_eq!(k.installed.len(), 2);
    for c in k.installed.values() {
        assert_eq!(c.ipcomp.is_some(), c.name == "net", "{}", c.name);
    }
}

#[test]
fn the_notify_is_two_octets_of_cpi_and_deflate() {
    use crate::wire::Payload;
    use crate::wire::codes::NotifyType;
    let Payload::Notify(n) = super::super::child_create::ipcomp_notify(0x1234) else {
        panic!()
    };
    assert_eq!(n.notify_type, NotifyType::IPCOMP_SUPPORTED);
    assert_eq!(n.data, [0x12, 0x34, 2]);
    assert!(n.spi.is_empty());
}
