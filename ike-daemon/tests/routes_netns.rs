//! iked's routes against the real kernel (needs root, no ESP, so no UML):
//! a gateway namespace with `wan` 192.0.2.1/24 and `lan` 10.1.0.1/24 (a
//! veth pair inside it), the routes of tunnel-mode children put in and
//! taken out through `ike_daemon::daemon::routes::Routes`, read back with `ip`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use ike::crypto::Secret;
use ike::crypto::suite::ChildSuite;
use ike::sa::{ChildId, ChildInstall, IkeSaId, KernelLimits, Mode};
use ike::wire::codes::{EncrId, ProtocolId};
use ike::wire::{AddressRange, TrafficSelector};
use ike_daemon::daemon::routes::{RouteOptions, Routes};
use iked_lab::net::Netns;

fn net4(a: &str, b: &str) -> TrafficSelector {
    TrafficSelector::Ipv4(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
}

fn child(id: u64, mode: Mode, lts: TrafficSelector, rts: TrafficSelector) -> ChildInstall {
    ChildInstall {
        id: ChildId(id),
        ike_sa: IkeSaId(1),
        name: "lan".into(),
        mode,
        protocol: ProtocolId::ESP,
        local: "192.0.2.1:500".parse::<SocketAddr>().unwrap(),
        remote: "192.0.2.2:500".parse::<SocketAddr>().unwrap(),
        spi_in: 1,
        spi_out: 2,
        suite: ChildSuite {
            protocol: ProtocolId::ESP,
            encr: Some((EncrId::AES_GCM_16, Some(256))),
            integ: None,
            ke: None,
            esn: false,
        },
        encr_in: Secret::new(vec![1; 36]),
        integ_in: Secret::new(vec![]),
        encr_out: Secret::new(vec![2; 36]),
        integ_out: Secret::new(vec![]),
        local_ts: vec![lts],
        vips: Vec::new(),
        remote_ts: vec![rts],
        esn: false,
        sa_opts: Default::default(),
        ipcomp: None,
        initiator: true,
        reqid: u32::try_from(id).unwrap_or(1),
        limits: KernelLimits::default(),
        encap: false,
        kernel: Default::default(),
    }
}

fn lan() -> TrafficSelector {
    net4("10.1.0.0", "10.1.0.255")
}

fn remote() -> TrafficSelector {
    net4("10.2.0.0", "10.2.0.255")
}

/// The gateway namespace; the calling thread is moved into it.
fn gateway(name: &str) -> Netns {
    let ns = Netns::new(name);
    ns.ip("link add wan type veth peer name lan");
    // No IPv6 link-local addresses: their duplicate address detection
    // ends a second or more later with address and route notifications,
    // which drop the route cache in the middle of a test that counts
    // listings (a CI run saw one).
    ns.ip("link set wan addrgenmode none");
    ns.ip("link set lan addrgenmode none");
    ns.ip("addr add 192.0.2.1/24 dev wan");
    ns.ip("addr add 10.1.0.1/24 dev lan");
    ns.ip("link set wan up");
    ns.ip("link set lan up");
    settle(&ns);
    ns.enter();
    ns
}

/// Waits until the kernel has announced the carrier of both ends (its
/// link watch does that up to a second after `up`), so that the
/// notification comes before iked listens, not during a test.
fn settle(ns: &Netns) {
    for _ in 0..100 {
        let links = ns.ip("-o link show");
        let up = ["wan", "lan"].iter().all(|l| {
            links
                .lines()
                .any(|x| x.contains(&format!(" {l}@")) && x.contains("state UP"))
        });
        if up {
            // The kernel marks the link up just before it tells the
            // address code (multicast routes): let that finish too.
            std::thread::sleep(std::time::Duration::from_millis(200));
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the veth pair never came up: {}", ns.ip("-o link show"));
}

fn table(ns: &Netns, t: &str) -> String {
    ns.sh(&format!("ip route show table {t} 2>/dev/null || true"))
}

fn rules(ns: &Netns) -> String {
    ns.ip("rule show")
}

fn ours(ns: &Netns) -> String {
    ns.ip("route show table all proto 157")
}

fn run<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

const ROUTE: &str = "10.2.0.0/24 via 192.0.2.2 dev wan proto 157 src 10.1.0.1";

#[test]
fn routes_and_rule_follow_the_children() {
    let ns = gateway("iked-rt-children");
    run(async {
        let r = Routes::new(RouteOptions::default()).unwrap();
        r.flush_leftovers().await.unwrap();
        assert!(table(&ns, "220").trim().is_empty());

        r.child_installed(&child(1, Mode::Tunnel, lan(), remote()))
            .await;
        assert_eq!(table(&ns, "220").trim(), ROUTE);
        let rl = rules(&ns);
        assert!(rl.contains("220:\tfrom all lookup 220 proto 157"), "{rl}");
        // The rule makes the gateway's own traffic to the subnet use the
        // route, with the lan address as source.
        let get = ns.ip("route get 10.2.0.7");
        assert!(
            get.contains("via 192.0.2.2 dev wan table 220 src 10.1.0.1"),
            "{get}"
        );

        // A rekeyed child's successor shares the route: it stays until
        // the last one goes, then the rule goes too.
        r.child_installed(&child(2, Mode::Tunnel, lan(), remote()))
            .await;
        r.child_removed(ChildId(1)).await;
        assert_eq!(table(&ns, "220").trim(), ROUTE);
        r.child_removed(ChildId(2)).await;
        assert!(table(&ns, "220").trim().is_empty(), "{}", table(&ns, "220"));
        assert!(!rules(&ns).contains("lookup 220"), "{}", rules(&ns));

        // Transport mode and selectors without a local address: no route.
        r.child_installed(&child(3, Mode::Transport, lan(), remote()))
            .await;
        r.child_installed(&child(
            4,
            Mode::Tunnel,
            net4("10.7.0.0", "10.7.0.255"),
            remote(),
        ))
        .await;
        assert!(ours(&ns).trim().is_empty(), "{}", ours(&ns));
        assert!(!rules(&ns).contains("lookup 220"));

        // Shutdown removes everything.
        r.child_installed(&child(5, Mode::Tunnel, lan(), remote()))
            .await;
        r.child_installed(&child(6, Mode::Tunnel, lan(), net4("10.3.0.0", "10.3.0.1")))
            .await;
        assert_eq!(
            table(&ns, "220").lines().count(),
            2,
            "{}",
            table(&ns, "220")
        );
        r.remove_all().await;
        assert!(ours(&ns).trim().is_empty(), "{}", ours(&ns));
        assert!(!rules(&ns).contains("lookup 220"));
    });
}

#[test]
fn addresses_and_routes_are_listed_again_only_after_a_change() {
    let ns = gateway("iked-rt-cache");
    run(async {
        let r = Routes::new(RouteOptions::default()).unwrap();
        r.flush_leftovers().await.unwrap();
        r.child_installed(&child(1, Mode::Tunnel, lan(), remote()))
            .await;
        assert_eq!(table(&ns, "220").trim(), ROUTE);
        let first = r.listings().await;
        assert!(first > 0);
        // More children, iked's own routes changing in between: nothing is
        // listed again.
        for k in 0..20u64 {
            let dst = format!("10.3.{k}.0");
            let end = format!("10.3.{k}.255");
            r.child_installed(&child(10 + k, Mode::Tunnel, lan(), net4(&dst, &end)))
                .await;
        }
        assert_eq!(r.listings().await, first, "listed again without a change");
        assert_eq!(table(&ns, "220").lines().count(), 21);

        // A route toward the peer that is not ours: the next child's route
        // takes its gateway.
        ns.ip("route add 192.0.2.2/32 via 192.0.2.254 dev wan");
        r.child_installed(&child(
            2,
            Mode::Tunnel,
            lan(),
            net4("10.4.0.0", "10.4.0.255"),
        ))
        .await;
        let t = table(&ns, "220");
        assert!(
            t.contains("10.4.0.0/24 via 192.0.2.254 dev wan proto 157 src 10.1.0.1"),
            "{t}"
        );
        // A new local address: a selector around it gets a route now.
        r.child_installed(&child(
            3,
            Mode::Tunnel,
            net4("10.7.0.0", "10.7.0.255"),
            net4("10.5.0.0", "10.5.0.255"),
        ))
        .await;
        assert!(!table(&ns, "220").contains("10.5.0.0"));
        ns.ip("addr add 10.7.0.1/24 dev lan");
        r.child_installed(&child(
            4,
            Mode::Tunnel,
            net4("10.7.0.0", "10.7.0.255"),
            net4("10.5.0.0", "10.5.0.255"),
        ))
        .await;
        let t = table(&ns, "220");
        assert!(
            t.contains("10.5.0.0/24 via 192.0.2.254 dev wan proto 157 src 10.7.0.1"),
            "{t}"
        );
        assert!(r.listings().await > first);
        r.remove_all().await;
        assert!(ours(&ns).trim().is_empty(), "{}", ours(&ns));
    });
}

#[test]
fn other_routes_and_rules_are_never_touched() {
    let ns = gateway("iked-rt-foreign");
    // A rule of someone else's (charon's, say) is used, not duplicated,
    // and stays; a route of someone else's to the same destination is
    // left alone and the failure is only logged.
    ns.ip("rule add from all lookup 220 pref 220");
    ns.ip("route add 10.2.0.0/24 via 10.1.0.9 table 220");
    ns.ip("route add 10.8.0.0/24 via 10.1.0.9 table 220");
    run(async {
        let r = Routes::new(RouteOptions::default()).unwrap();
        r.flush_leftovers().await.unwrap();
        r.child_installed(&child(1, Mode::Tunnel, lan(), remote()))
            .await;
        let t = table(&ns, "220");
        assert!(t.contains("10.2.0.0/24 via 10.1.0.9 dev lan"), "{t}");
        assert!(!t.contains("proto 157"), "{t}");
        r.child_installed(&child(
            2,
            Mode::Tunnel,
            lan(),
            net4("10.4.0.0", "10.4.0.255"),
        ))
        .await;
        assert!(
            table(&ns, "220").contains("10.4.0.0/24 via 192.0.2.2 dev wan proto 157 src 10.1.0.1")
        );
        assert_eq!(
            rules(&ns).matches("lookup 220").count(),
            1,
            "{}",
            rules(&ns)
        );
        r.child_removed(ChildId(1)).await;
        r.child_removed(ChildId(2)).await;
        let t = table(&ns, "220");
        assert!(
            t.contains("10.2.0.0/24 via 10.1.0.9") && t.contains("10.8.0.0/24 via 10.1.0.9"),
            "{t}"
        );
        assert!(!t.contains("10.4.0.0"), "{t}");
        assert!(
            rules(&ns).contains("220:\tfrom all lookup 220"),
            "{}",
            rules(&ns)
        );
    });
}

#[test]
fn a_restart_removes_what_a_crashed_iked_left() {
    let ns = gateway("iked-rt-crash");
    run(async {
        // A "crashed" iked: routes, rule and a road warrior's virtual IP
        // in, never removed.
        let r = Routes::new(RouteOptions::default()).unwrap();
        r.child_installed(&child(1, Mode::Tunnel, lan(), remote()))
            .await;
        assert_eq!(table(&ns, "220").trim(), ROUTE);
        let mut rw = child(2, Mode::Tunnel, lan(), net4("10.6.0.0", "10.6.0.255"));
        rw.vips = vec!["10.3.0.7".parse().unwrap()];
        r.child_installed(&rw).await;
        drop(r);
    });
    // (iproute2 6.1 neither shows nor sets an address's protocol: that
    // the restart tells the addresses apart shows the mark.)
    let addrs = ns.ip("-o addr show dev wan");
    assert!(addrs.contains("inet 10.3.0.7/32"), "{addrs}");
    // Host addresses of others beside it, on both interfaces.
    ns.ip("addr add 10.3.0.8/32 dev wan");
    ns.ip("addr add 10.3.0.9/32 dev lan");
    ns.ip("route add 10.8.0.0/24 via 10.1.0.9 table 220");
    ns.ip("route add 10.9.0.0/24 via 10.1.0.9 proto static");
    ns.ip("rule add from 10.9.0.0/24 lookup 220 pref 300");
    run(async {
        let r = Routes::new(RouteOptions::default()).unwrap();
        r.flush_leftovers().await.unwrap();
    });
    assert_eq!(table(&ns, "220").trim(), "10.8.0.0/24 via 10.1.0.9 dev lan");
    assert!(table(&ns, "main").contains("10.9.0.0/24 via 10.1.0.9 dev lan proto static"));
    let rl = rules(&ns);
    assert!(rl.contains("300:\tfrom 10.9.0.0/24 lookup 220"), "{rl}");
    assert!(!rl.contains("220:\tfrom all lookup 220"), "{rl}");
    assert!(ours(&ns).trim().is_empty());
    let addrs = ns.ip("-o addr show");
    assert!(!addrs.contains("10.3.0.7"), "{addrs}");
    assert!(addrs.contains("inet 10.3.0.8/32"), "{addrs}");
    assert!(addrs.contains("inet 10.3.0.9/32"), "{addrs}");
    assert!(addrs.contains("inet 192.0.2.1/24"), "{addrs}");
}

#[test]
fn table_zero_is_the_main_table_without_a_rule_and_halves_a_default() {
    let ns = gateway("iked-rt-main");
    run(async {
        let r = Routes::new(RouteOptions {
            table: 0,
            ..RouteOptions::default()
        })
        .unwrap();
        r.child_installed(&child(
            1,
            Mode::Tunnel,
            lan(),
            net4("0.0.0.0", "255.255.255.255"),
        ))
        .await;
        let t = table(&ns, "main");
        assert!(
            t.contains("0.0.0.0/1 via 192.0.2.2 dev wan proto 157 src 10.1.0.1")
                && t.contains("128.0.0.0/1 via 192.0.2.2 dev wan proto 157 src 10.1.0.1"),
            "{t}"
        );
        assert!(!rules(&ns).contains("lookup 220"));
        r.child_removed(ChildId(1)).await;
        assert!(ours(&ns).trim().is_empty(), "{}", ours(&ns));
    });
}
