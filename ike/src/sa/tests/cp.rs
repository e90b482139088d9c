//! The configuration payload (`sa::cp`) between road warriors (side 0,
//! one connection per user, all from the same address: several clients
//! behind one NAT look like that to the gateway) and a gateway (side 1)
//! with a pool.

use std::net::IpAddr;

use super::*;
use crate::config::PoolCfg;
use crate::sa::config::TsCfg;
use crate::wire::codes::NotifyType;
use crate::wire::{Identification, TrafficSelector};

const DNS: &str = "10.2.0.53";

/// The gateway's connection: any peer, `dynamic` for the peer's side,
/// addresses from pool `rw`.
fn gateway() -> PeerCfg {
    PeerCfg {
        name: "rw".into(),
        remote_addrs: vec![AddrSpec::Any],
        remote_id: None,
        children: vec![child(
            "rw",
            vec![subnet("10.2.0.0", "10.2.255.255")],
            vec![TsCfg::Dynamic],
        )],
        cp: CpCfg {
            pools: vec!["rw".into()],
            vips: Vec::new(),
        },
        ..right_cfg()
    }
}

/// Road warrior `n` (user `n`), asking for an IPv4 address.
fn warrior(n: usize) -> PeerCfg {
    PeerCfg {
        name: format!("c{n}"),
        local_id: Identification::rfc822(&format!("user{n}@example.org")),
        children: vec![child(
            "net",
            vec![TsCfg::Dynamic],
            vec![subnet("10.2.0.0", "10.2.255.255")],
        )],
        cp: CpCfg {
            pools: Vec::new(),
            vips: vec![v4("0.0.0.0")],
        },
        ..left_cfg()
    }
}

fn pool(addrs: &str) -> PoolCfg {
    PoolCfg::new("rw", addrs, vec![(3, vec![10, 2, 0, 53])])
}

/// `clients` road warriors and a gateway with pool `addrs`.
fn setup(clients: usize, addrs: &str) -> Pair {
    let mut s = Setup::default();
    s.peers[0] = (0..clients).map(warrior).collect();
    s.peers[1] = vec![gateway()];
    let mut p = Pair::new(s);
    p.b().ep.set_pools(&[pool(addrs)]);
    p
}

/// Client `n`'s IKE SA.
fn client_sa(p: &Pair, n: usize) -> Option<IkeSaInfo> {
    let name = format!("c{n}");
    p.peers[0]
        .ep
        .ike_sas()
        .find(|s| s.peer.as_deref() == Some(name.as_str()))
}

/// The virtual IP client `n` got.
fn vip_of(p: &Pair, n: usize) -> IpAddr {
    let sa = client_sa(p, n).unwrap();
    let [vip] = sa.local_vips[..] else {
        panic!("{:?}", sa.local_vips)
    };
    vip
}

fn leases(p: &Pair) -> (usize, usize) {
    let [info] = &p.peers[1].ep.pools()[..] else {
        panic!()
    };
    (info.online, info.offline)
}

#[test]
fn each_road_warrior_gets_its_own_address_and_the_pools_dns_server() {
    let mut p = setup(3, "10.3.0.0/24");
    for n in 0..3 {
        p.connect(0, &format!("c{n}"));
    }
    let vips: Vec<IpAddr> = (0..3).map(|n| vip_of(&p, n)).collect();
    assert_eq!(vips, [v4("10.3.0.1"), v4("10.3.0.2"), v4("10.3.0.3")]);
    for (n, vip) in vips.iter().enumerate() {
        let sa = client_sa(&p, n).unwrap();
        assert_eq!(sa.dns, [v4(DNS)]);
        // The Child SA is the virtual IP's: ours on the client...
        let [c] = &sa.children[..] else {
            panic!("{:?}", sa.children)
        };
        assert_eq!(c.local_ts, [crate::sa::ts::host(*vip)]);
    }
    // ... and the peer's on the gateway.
    let mut seen: Vec<(IpAddr, Vec<TrafficSelector>)> = p.peers[1]
        .ep
        .ike_sas()
        .map(|s| {
            let [vip] = s.remote_vips[..] else {
                panic!("{:?}", s.remote_vips)
            };
            (vip, s.children[0].remote_ts.clone())
        })
        .collect();
    seen.sort_by_key(|(v, _)| *v);
    for (n, (vip, ts)) in seen.iter().enumerate() {
        assert_eq!(*vip, vips[n]);
        assert_eq!(ts, &[crate::sa::ts::host(*vip)]);
    }
    p.assert_kernels_match();
    assert_eq!(p.b().kernel.installed.len(), 3);
    assert_eq!(leases(&p), (3, 0));
    // The client's daemon gets its virtual IP with each Child SA (to put
    // it on an interface before the routes); the gateway's none.
    let mut client_vips: Vec<Vec<IpAddr>> = p
        .a()
        .kernel
        .installed
        .values()
        .map(|c| c.vips.clone())
        .collect();
    client_vips.sort();
    assert_eq!(
        client_vips,
        vips.iter().map(|v| vec![*v]).collect::<Vec<_>>()
    );
    assert!(p.b().kernel.installed.values().all(|c| c.vips.is_empty()));
}

#[test]
fn a_road_warrior_gets_its_address_back_after_a_reconnect() {
    let mut p = setup(3, "10.3.0.0/24");
    let first = p.connect(0, "c0");
    p.connect(0, "c1");
    let (a0, a1) = (vip_of(&p, 0), vip_of(&p, 1));
    let now = p.now;
    p.a().ep.terminate_ike(now, first).unwrap();
    p.run_for(Duration::from_secs(10));
    assert!(client_sa(&p, 0).is_none());
    assert_eq!(leases(&p), (1, 1), "user0's lease is offline, still theirs");
    // Another user does not get it while fresh addresses remain.
    p.connect(0, "c2");
    assert_eq!(vip_of(&p, 2), v4("10.3.0.3"));
    p.connect(0, "c0");
    assert_eq!(vip_of(&p, 0), a0);
    assert_ne!(a0, a1);
    assert_eq!(leases(&p), (3, 0));
    p.assert_kernels_match();
}

#[test]
fn an_exhausted_pool_answers_internal_address_failure_with_nothing_installed() {
    let mut p = setup(2, "10.3.0.9-10.3.0.9");
    p.connect(0, "c0");
    assert_eq!(vip_of(&p, 0), v4("10.3.0.9"));
    let installed = (p.a().kernel.installs, p.b().kernel.installs);
    p.connect(0, "c1");
    // The IKE SA stands without its Child SA on both sides, as charon.
    let sa = client_sa(&p, 1).unwrap();
    assert_eq!(sa.state, IkeState::Established);
    assert!(sa.local_vips.is_empty() && sa.children.is_empty());
    assert_eq!(
        child_failed(&p.a().events()),
        [ChildFailReason::PeerError(
            NotifyType::INTERNAL_ADDRESS_FAILURE
        )]
    );
    assert_eq!(
        child_failed(&p.b().events()),
        [ChildFailReason::VirtualIp(
            NotifyType::INTERNAL_ADDRESS_FAILURE
        )]
    );
    assert_eq!(
        (p.a().kernel.installs, p.b().kernel.installs),
        installed,
        "nothing installed for the second road warrior"
    );
    assert!(p.a().kernel.larval.is_empty() && p.b().kernel.larval.is_empty());
    assert_eq!(leases(&p), (1, 0));
    p.assert_kernels_match();
}

#[test]
fn a_road_warrior_that_asks_for_no_address_is_failed_cp_required() {
    let mut s = Setup::default();
    let mut c = warrior(0);
    c.cp.vips.clear();
    s.peers[0] = vec![c];
    s.peers[1] = vec![gateway()];
    let mut p = Pair::new(s);
    p.b().ep.set_pools(&[pool("10.3.0.0/24")]);
    p.connect(0, "c0");
    assert_eq!(
        child_failed(&p.a().events()),
        [ChildFailReason::PeerError(NotifyType::FAILED_CP_REQUIRED)]
    );
    assert_eq!(
        child_failed(&p.b().events()),
        [ChildFailReason::VirtualIp(NotifyType::FAILED_CP_REQUIRED)]
    );
    assert_eq!((p.a().kernel.installs, p.b().kernel.installs), (0, 0));
    assert_eq!(leases(&p), (0, 0));
}

#[test]
fn a_gateway_without_pools_refuses_a_request() {
    let mut s = Setup::default();
    s.peers[0] = vec![warrior(0)];
    let mut g = gateway();
    g.cp.pools.clear();
    s.peers[1] = vec![g];
    let mut p = Pair::new(s);
    p.connect(0, "c0");
    assert_eq!(
        child_failed(&p.b().events()),
        [ChildFailReason::VirtualIp(
            NotifyType::INTERNAL_ADDRESS_FAILURE
        )]
    );
    assert_eq!((p.a().kernel.installs, p.b().kernel.installs), (0, 0));
}

#[test]
fn pools_no_section_defines_are_passed_over() {
    // `pools = dhcp, rw`: charon would ask its dhcp plugin first; iked has
    // none and goes on to rw. With only `dhcp`: no address.
    let mut s = Setup::default();
    s.peers[0] = vec![warrior(0), warrior(1)];
    let mut g = gateway();
    g.cp.pools = vec!["dhcp".into(), "rw".into()];
    let mut only = gateway();
    only.name = "dhcp-only".into();
    only.remote_id = Some(Identification::rfc822("user1@example.org"));
    only.cp.pools = vec!["dhcp".into()];
    s.peers[1] = vec![only, g];
    let mut p = Pair::new(s);
    p.b().ep.set_pools(&[pool("10.3.0.0/24")]);
    p.connect(0, "c0");
    assert_eq!(vip_of(&p, 0), v4("10.3.0.1"));
    p.connect(0, "c1");
    assert_eq!(
        child_failed(&p.b().events()),
        [ChildFailReason::VirtualIp(
            NotifyType::INTERNAL_ADDRESS_FAILURE
        )]
    );
    assert_eq!(
        client_sa(&p, 1).map(|s| s.state),
        Some(IkeState::Established)
    );
    p.assert_kernels_match();
}

#[test]
fn many_road_warriors_behind_one_nat_get_distinct_addresses() {
    let mut p = setup(4, "10.3.0.0/24");
    p.nat = Some(Nat::new("203.0.113.5"));
    for n in 0..4 {
        p.connect(0, &format!("c{n}"));
    }
    let mut vips: Vec<IpAddr> = (0..4).map(|n| vip_of(&p, n)).collect();
    assert!(
        p.peers[1]
            .ep
            .ike_sas()
            .all(|s| s.remote_addr.ip() == v4("203.0.113.5"))
    );
    vips.sort();
    vips.dedup();
    assert_eq!(vips.len(), 4);
    // (The kernels' addresses differ across the NAT: no assert_kernels_match.)
    assert_eq!(p.a().kernel.installed.len(), 4);
    assert_eq!(p.b().kernel.installed.len(), 4);
    assert!(
        p.b()
            .kernel
            .installed
            .values()
            .all(|c| c.remote_ts.len() == 1)
    );
}

#[test]
fn a_reload_keeps_the_leases_of_a_pool_with_the_same_addresses() {
    let mut p = setup(2, "10.3.0.0/24");
    let first = p.connect(0, "c0");
    let a0 = vip_of(&p, 0);
    // Reloaded: the same pool with other attributes keeps its leases; one
    // with other addresses can't replace it while an address is online.
    let now = p.now;
    p.b().ep.set_config(now, vec![gateway()]);
    p.b()
        .ep
        .set_pools(&[PoolCfg::new("rw", "10.3.0.0/24", Vec::new())]);
    assert_eq!(leases(&p), (1, 0));
    p.b().ep.set_pools(&[pool("10.9.0.0/24")]);
    assert_eq!(p.b().ep.pools()[0].base, v4("10.3.0.1"));
    p.b()
        .ep
        .set_pools(&[PoolCfg::new("rw", "10.3.0.0/24", Vec::new())]);
    p.a().ep.terminate_ike(now, first).unwrap();
    p.run_for(Duration::from_secs(10));
    assert_eq!(leases(&p), (0, 1));
    p.connect(0, "c0");
    assert_eq!(vip_of(&p, 0), a0);
    // Without the reloaded attributes now.
    assert!(client_sa(&p, 0).unwrap().dns.is_empty());
    p.connect(0, "c1");
    assert_eq!(vip_of(&p, 1), v4("10.3.0.2"));
    // Unused, the pool is replaced by its new addresses.
    let ids: Vec<IkeSaId> = p.a().ep.ike_sas().map(|s| s.id).collect();
    let now = p.now;
    for id in ids {
        p.a().ep.terminate_ike(now, id).unwrap();
    }
    p.run_for(Duration::from_secs(10));
    p.b().ep.set_pools(&[pool("10.9.0.0/24")]);
    p.connect(0, "c0");
    assert_eq!(vip_of(&p, 0), v4("10.9.0.1"));
}

#[test]
fn an_ike_rekey_hands_the_lease_to_the_new_ike_sa() {
    let mut p = setup(1, "10.3.0.0/24");
    let id = p.connect(0, "c0");
    let a0 = vip_of(&p, 0);
    let now = p.now;
    p.a().ep.rekey_ike(now, id).unwrap();
    p.run_for(Duration::from_secs(10));
    let [sa] = &p.peers[1].ep.ike_sas().collect::<Vec<_>>()[..] else {
        panic!()
    };
    assert_eq!(sa.remote_vips, [a0]);
    assert_eq!(vip_of(&p, 0), a0, "the client keeps it too");
    assert_eq!(leases(&p), (1, 0), "not released with the old IKE SA");
    let id = client_sa(&p, 0).unwrap().id;
    let now = p.now;
    p.a().ep.terminate_ike(now, id).unwrap();
    p.run_for(Duration::from_secs(10));
    assert_eq!(leases(&p), (0, 1));
}
