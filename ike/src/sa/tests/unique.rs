//! `unique` and INITIAL_CONTACT (`sa::unique`) between two endpoints: a
//! peer that restarts, a second IKE SA of the same identities, and a new
//! one from another address.

use super::*;
use crate::crypto::DeterministicProvider;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Side 1 (the responder) with `unique`, accepting its peer from any
/// address (so that a new IKE SA can come through a NAT).
fn setup(unique: Unique) -> Setup {
    let mut s = Setup::default();
    for p in &mut s.peers[1] {
        p.behaviour.unique = unique;
        p.remote_addrs = vec![AddrSpec::Any];
    }
    s
}

fn ike_ids(p: &Pair, i: usize) -> Vec<IkeSaId> {
    p.peers[i].ep.ike_sas().map(|s| s.id).collect()
}

/// Side 0 restarts: a new endpoint (new keys and SPIs) with `unique` and
/// an empty kernel; it knows nothing of its IKE SAs before.
fn restart(p: &mut Pair, unique: Unique) {
    let mut cfg = left_cfg();
    cfg.behaviour.unique = unique;
    let now = p.now;
    let mut ep = Endpoint::new(
        EndpointConfig::default(),
        vec![cfg],
        psk_store(b"secret"),
        Arc::new(DeterministicProvider::new(b"left, reborn")),
    );
    ep.set_wall_clock(now, std::time::UNIX_EPOCH + secs(UTC0));
    let a = p.a();
    a.ep = ep;
    a.kernel = FakeKernel::new(0xe000_0000);
    a.events.clear();
}

fn deleted(p: &Pair, i: usize, id: IkeSaId) -> bool {
    p.peers[i]
        .events()
        .iter()
        .any(|e| matches!(e, Event::IkeDeleted { id: x, .. } if *x == id))
}

#[test]
fn a_restarted_peers_initial_contact_clears_its_stale_sas() {
    let mut p = Pair::new(setup(Unique::No));
    p.connect(0, "site-b");
    let [old] = ike_ids(&p, 1)[..] else {
        panic!("{:?}", ike_ids(&p, 1))
    };
    let old_child = *p.b().kernel.installed.keys().next().unwrap();
    let policies = p.b().kernel.policies.clone();
    restart(&mut p, Unique::No);
    p.connect(0, "site-b");
    // The old IKE SA went on the responder without a delete exchange (the
    // peer would not know it), its Child SA with it, the policies stayed.
    let ids = ike_ids(&p, 1);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_ne!(ids[0], old);
    assert!(deleted(&p, 1, old));
    assert_eq!(p.a().count_received(ExchangeType::INFORMATIONAL, false), 0);
    let k = &p.peers[1].kernel;
    assert!(!k.installed.contains_key(&old_child));
    assert_eq!(k.installed.len(), 1);
    assert_eq!(k.policies, policies);
    assert!(!k.policies_removed());
    // The new Child SA took over the reqid and sends from before the old
    // one's outbound SA went.
    let new_child = *k.installed.keys().next().unwrap();
    let add_out = k.pos(|l| matches!(l, KLog::AddOut { child, .. } if *child == new_child));
    let del_out = k.pos(|l| matches!(l, KLog::DelOut { child, .. } if *child == old_child));
    assert!(add_out < del_out, "{:?}", k.log);
    p.assert_kernels_match();
    p.assert_one_pair_per_child();
}

#[test]
fn no_initial_contact_while_an_ike_sa_of_the_pair_exists() {
    // A second IKE SA of the same connection (as a reauthentication's new
    // one): no INITIAL_CONTACT, so the responder (`unique = no`) keeps both.
    let mut p = Pair::new(setup(Unique::No));
    p.connect(0, "site-b");
    p.connect(0, "site-b");
    assert_eq!(ike_ids(&p, 0).len(), 2);
    assert_eq!(ike_ids(&p, 1).len(), 2);
    assert_eq!(p.b().kernel.installed.len(), 2);
}

#[test]
fn never_neither_sends_nor_honours_initial_contact() {
    // The restarted side with `never` sends none: the stale SA stays.
    let mut p = Pair::new(setup(Unique::No));
    p.connect(0, "site-b");
    restart(&mut p, Unique::Never);
    p.connect(0, "site-b");
    assert_eq!(ike_ids(&p, 1).len(), 2);
    // The responder with `never` ignores the one a restarted side sends.
    let mut p = Pair::new(setup(Unique::Never));
    p.connect(0, "site-b");
    restart(&mut p, Unique::No);
    p.connect(0, "site-b");
    assert_eq!(ike_ids(&p, 1).len(), 2);
}

#[test]
fn keep_refuses_a_new_ike_sa_from_another_address() {
    let mut p = Pair::new(setup(Unique::Keep));
    p.connect(0, "site-b");
    let before = ike_ids(&p, 1);
    // From the same address (a reauthentication?) both stay.
    p.connect(0, "site-b");
    assert_eq!(ike_ids(&p, 1).len(), 2);
    // From another address: refused with AUTHENTICATION_FAILED.
    p.nat = Some(Nat::new("203.0.113.5"));
    let id = p.connect(0, "site-b");
    let refused = p.a().events().iter().any(|e| {
        matches!(e, Event::IkeFailed { id: x, reason: IkeFailReason::AuthenticationFailed { by_peer: true }, .. } if *x == id)
    });
    assert!(refused, "{:?}", p.a().events());
    let after = ike_ids(&p, 1);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(before.iter().all(|b| after.contains(b)));
    assert_eq!(p.b().kernel.installed.len(), 2);
}

#[test]
fn replace_deletes_the_old_one_at_once_from_another_address() {
    let mut p = Pair::new(setup(Unique::Replace));
    p.connect(0, "site-b");
    let [old] = ike_ids(&p, 1)[..] else {
        panic!("{:?}", ike_ids(&p, 1))
    };
    // Side 0 is behind a NAT from now on: its old address is gone.
    p.nat = Some(Nat::new("203.0.113.5"));
    p.gone = vec![v4(LEFT)];
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(5));
    // The old one is being deleted (a delete exchange, which the old
    // address never answers), then gone.
    let state = |p: &Pair, id| {
        p.peers[1]
            .ep
            .ike_sas()
            .find(|s| s.id == id)
            .map(|s| s.state)
    };
    assert_eq!(state(&p, old), Some(IkeState::Deleting));
    assert_eq!(ike_ids(&p, 1).len(), 2);
    p.run_for(secs(300));
    assert_eq!(state(&p, old), None);
    assert_eq!(ike_ids(&p, 1).len(), 1);
    assert_eq!(p.b().kernel.installed.len(), 1);
}

#[test]
fn replace_deletes_the_old_one_later_from_the_same_address() {
    let mut p = Pair::new(setup(Unique::Replace));
    let first = p.connect(0, "site-b");
    let now = p.now;
    let second = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(5));
    assert_eq!(ike_ids(&p, 1).len(), 2, "not yet: maybe a reauthentication");
    p.run_for(secs(10));
    assert!(deleted(&p, 0, first), "{:?}", p.a().events());
    assert_eq!(ike_ids(&p, 0), vec![second]);
    assert_eq!(ike_ids(&p, 1).len(), 1);
    assert!(!p.b().kernel.policies_removed());
    p.assert_kernels_match();
    p.assert_one_pair_per_child();
}

#[test]
fn the_index_forgets_ike_sas_that_go() {
    let mut p = Pair::new(setup(Unique::No));
    let id = p.connect(0, "site-b");
    assert_eq!(p.a().ep.contacts(), 1);
    assert_eq!(p.b().ep.contacts(), 1);
    let now = p.now;
    p.a().ep.terminate_ike(now, id).unwrap();
    p.run_for(secs(5));
    assert_eq!(p.a().ep.contacts(), 0);
    assert_eq!(p.b().ep.contacts(), 0);
    // And a restart after a clean delete: nothing stale to clear.
    restart(&mut p, Unique::No);
    p.connect(0, "site-b");
    assert_eq!(ike_ids(&p, 1).len(), 1);
    assert_eq!(p.b().ep.contacts(), 1);
}
