#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use super::*;
use ike::crypto::Secret;
use ike::crypto::suite::ChildSuite;
use ike::sa::{IkeSaId, KernelLimits};
use ike::wire::AddressRange;
use ike::wire::codes::{EncrId, ProtocolId};

fn v4(a: &str, b: &str) -> TrafficSelector {
    TrafficSelector::Ipv4(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
}

fn v6(a: &str, b: &str) -> TrafficSelector {
    TrafficSelector::Ipv6(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
}

fn net4(p: &str) -> TrafficSelector {
    let (a, l) = p.split_once('/').unwrap();
    let a: Ipv4Addr = a.parse().unwrap();
    let l: u32 = l.parse().unwrap();
    let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
    let s = u32::from(a) & mask;
    TrafficSelector::Ipv4(AddressRange::any(s.into(), (s | !mask).into()))
}

fn pfx(s: &str) -> IpPrefix {
    let (a, l) = s.split_once('/').unwrap();
    IpPrefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(a: &str, ifindex: u32) -> LocalAddr {
    LocalAddr {
        addr: ip(a),
        ifindex,
    }
}

fn route(dst: &str, gw: Option<&str>, oif: u32, table: u32) -> KernelRoute {
    let (a, l) = dst.split_once('/').unwrap();
    KernelRoute {
        table,
        dst: ip(a),
        dst_len: l.parse().unwrap(),
        gateway: gw.map(ip),
        oif: Some(oif),
        priority: 0,
        unicast: true,
        protocol: 4,
    }
}

fn child(mode: Mode, lts: Vec<TrafficSelector>, rts: Vec<TrafficSelector>) -> ChildInstall {
    ChildInstall {
        id: ChildId(7),
        ike_sa: IkeSaId(3),
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
        local_ts: lts,
        vips: Vec::new(),
        remote_ts: rts,
        esn: false,
        sa_opts: Default::default(),
        ipcomp: None,
        initiator: true,
        reqid: 1,
        limits: KernelLimits::default(),
        encap: false,
        kernel: Default::default(),
    }
}

/// gw-a of the lab: lan 10.1.0.1 on if 2, wan 192.0.2.1 on if 3.
fn gw_a_addrs() -> Vec<LocalAddr> {
    vec![
        addr("127.0.0.1", 1),
        addr("10.1.0.1", 2),
        addr("192.0.2.1", 3),
        addr("fe80::1", 3),
    ]
}

#[test]
fn source_is_a_local_address_inside_the_local_selector() {
    let addrs = gw_a_addrs();
    assert_eq!(
        choose_source(&net4("10.1.0.0/24"), &addrs),
        Some(Some(ip("10.1.0.1")))
    );
    // A range, not a prefix: the address must be inside the range.
    assert_eq!(
        choose_source(&v4("10.1.0.0", "10.1.0.0"), &addrs),
        None,
        "10.1.0.1 is outside 10.1.0.0-10.1.0.0"
    );
    assert_eq!(
        choose_source(&v4("10.0.255.250", "10.1.0.1"), &addrs),
        Some(Some(ip("10.1.0.1")))
    );
    // The first address found wins (dump order), whatever the interface.
    assert_eq!(
        choose_source(&net4("192.0.0.0/8"), &addrs),
        Some(Some(ip("192.0.2.1")))
    );
    // No local address inside: no route (charon's get_address_by_ts fails).
    assert_eq!(choose_source(&net4("10.9.0.0/16"), &addrs), None);
    // A selector that holds the unspecified address: a route without src.
    assert_eq!(choose_source(&net4("0.0.0.0/0"), &addrs), Some(None));
    assert_eq!(choose_source(&v6("::", "ffff::"), &addrs), Some(None));
    // Families never mix.
    assert_eq!(
        choose_source(&v6("fe80::", "fe80::ffff"), &addrs),
        Some(Some(ip("fe80::1")))
    );
    assert_eq!(
        choose_source(&v6("2001:db8::", "2001:db8::ff"), &addrs),
        None
    );
}

#[test]
fn targets_are_the_remote_prefixes_of_tunnel_mode_any_protocol_selectors() {
    let l = vec![net4("10.1.0.0/24")];
    let t = route_targets(Mode::Tunnel, &l, &[net4("10.2.0.0/24")], false);
    assert_eq!(t, vec![(pfx("10.2.0.0/24"), net4("10.1.0.0/24"))]);
    // Transport mode: none.
    assert!(route_targets(Mode::Transport, &l, &[net4("10.2.0.0/24")], false).is_empty());
    // A range that is no prefix: one route per prefix of it.
    let t = route_targets(Mode::Tunnel, &l, &[v4("10.2.0.0", "10.2.0.2")], false);
    let dsts: Vec<_> = t.iter().map(|(d, _)| d.to_string()).collect();
    assert_eq!(dsts, ["10.2.0.0/31", "10.2.0.2/32"]);
    // A selector of one protocol or restricted ports: no route (charon).
    let mut tcp = net4("10.3.0.0/24");
    if let TrafficSelector::Ipv4(r) = &mut tcp {
        r.ip_protocol = 6;
    }
    let mut port = net4("10.4.0.0/24");
    if let TrafficSelector::Ipv4(r) = &mut port {
        r.ip_protocol = 17;
        r.start_port = 53;
        r.end_port = 53;
    }
    assert!(route_targets(Mode::Tunnel, &l, &[tcp.clone(), port], false).is_empty());
    assert!(route_targets(Mode::Tunnel, &[tcp], &[net4("10.2.0.0/24")], false).is_empty());
    // A remote selector of the other family than every local one: none.
    assert!(
        route_targets(
            Mode::Tunnel,
            &l,
            &[v6("2001:db8::", "2001:db8::ffff")],
            false
        )
        .is_empty()
    );
    // Two local selectors: the first of the remote's family supplies the src.
    let l2 = vec![
        v6("2001:db8:1::", "2001:db8:1::ffff"),
        net4("10.1.0.0/24"),
        net4("10.5.0.0/24"),
    ];
    let t = route_targets(
        Mode::Tunnel,
        &l2,
        &[net4("10.2.0.0/24"), v6("2001:db8:2::", "2001:db8:2::ffff")],
        false,
    );
    assert_eq!(
        t,
        vec![
            (pfx("10.2.0.0/24"), net4("10.1.0.0/24")),
            (
                pfx("2001:db8:2::/112"),
                v6("2001:db8:1::", "2001:db8:1::ffff")
            ),
        ]
    );
    // The same destination twice: one route.
    let t = route_targets(
        Mode::Tunnel,
        &l,
        &[net4("10.2.0.0/24"), net4("10.2.0.0/24")],
        false,
    );
    assert_eq!(t.len(), 1);
}

#[test]
fn a_default_destination_is_split_in_the_main_table_only() {
    let l = vec![net4("10.1.0.0/24")];
    let t = route_targets(Mode::Tunnel, &l, &[net4("0.0.0.0/0")], false);
    assert_eq!(
        t.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>(),
        ["0.0.0.0/0"]
    );
    let t = route_targets(Mode::Tunnel, &l, &[net4("0.0.0.0/0")], true);
    assert_eq!(
        t.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>(),
        ["0.0.0.0/1", "128.0.0.0/1"]
    );
    let t = route_targets(
        Mode::Tunnel,
        &[v6("::", "::")],
        &[v6("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")],
        true,
    );
    assert_eq!(
        t.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>(),
        ["::/1", "8000::/1"]
    );
}

#[test]
fn next_hop_is_the_gateway_of_the_most_specific_route_or_the_peer() {
    let routes = vec![
        route("0.0.0.0/0", Some("198.51.100.254"), 4, 254),
        route("192.0.2.0/24", None, 3, 254),
        route("192.0.2.0/25", Some("192.0.2.100"), 5, 254),
        // Our own table and our own routes never count.
        route("192.0.2.2/32", Some("10.1.0.9"), 2, 220),
        KernelRoute {
            protocol: RTPROT_IKED,
            table: 100,
            ..route("192.0.2.2/32", Some("10.1.0.8"), 2, 100)
        },
        // Neither do non-unicast routes.
        KernelRoute {
            unicast: false,
            ..route("192.0.2.2/31", None, 6, 254)
        },
    ];
    // Most specific: 192.0.2.0/25 via 192.0.2.100.
    assert_eq!(
        choose_next_hop(ip("192.0.2.2"), Some(220), &routes),
        (ip("192.0.2.100"), Some(5))
    );
    // Directly connected: the peer itself, on the connected interface.
    assert_eq!(
        choose_next_hop(ip("192.0.2.200"), Some(220), &routes),
        (ip("192.0.2.200"), Some(3))
    );
    // Only the default route.
    assert_eq!(
        choose_next_hop(ip("203.0.113.5"), Some(220), &routes),
        (ip("198.51.100.254"), Some(4))
    );
    // In the main table (no table of ours), only our protocol is left out.
    assert_eq!(
        choose_next_hop(ip("192.0.2.2"), None, &routes),
        (ip("10.1.0.9"), Some(2))
    );
    // No route at all.
    assert_eq!(
        choose_next_hop(ip("192.0.2.2"), Some(220), &[]),
        (ip("192.0.2.2"), None)
    );
    // Equal prefixes: the lower metric.
    let two = vec![
        KernelRoute {
            priority: 100,
            ..route("0.0.0.0/0", Some("192.0.2.10"), 3, 254)
        },
        KernelRoute {
            priority: 50,
            ..route("0.0.0.0/0", Some("192.0.2.20"), 3, 254)
        },
    ];
    assert_eq!(
        choose_next_hop(ip("203.0.113.5"), Some(220), &two).0,
        ip("192.0.2.20")
    );
}

#[test]
fn plan_of_the_lab_gateway() {
    let opts = RouteOptions::default();
    let c = child(
        Mode::Tunnel,
        vec![net4("10.1.0.0/24")],
        vec![net4("10.2.0.0/24")],
    );
    let routes = vec![
        route("192.0.2.0/24", None, 3, 254),
        route("10.1.0.0/24", None, 2, 254),
    ];
    let (specs, skipped) = plan_routes(&opts, &c, &gw_a_addrs(), &routes);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(
        specs,
        vec![RouteSpec {
            table: 220,
            dst: pfx("10.2.0.0/24"),
            src: Some(ip("10.1.0.1")),
            gateway: Some(ip("192.0.2.2")),
            oif: 3,
        }]
    );
    // The main table: table 254.
    let main = RouteOptions { table: 0, ..opts };
    assert!(!main.uses_rule());
    let (specs, _) = plan_routes(&main, &c, &gw_a_addrs(), &routes);
    assert_eq!(specs[0].table, 254);
    // No route to the peer: the interface of our outer address.
    let (specs, _) = plan_routes(&opts, &c, &gw_a_addrs(), &[]);
    assert_eq!((specs[0].gateway, specs[0].oif), (Some(ip("192.0.2.2")), 3));
    // No local address in the local selector: nothing, and the reason.
    let c2 = child(
        Mode::Tunnel,
        vec![net4("10.7.0.0/24")],
        vec![net4("10.2.0.0/24")],
    );
    let (specs, skipped) = plan_routes(&opts, &c2, &gw_a_addrs(), &routes);
    assert!(specs.is_empty());
    assert_eq!(
        skipped,
        ["10.2.0.0/24: no local address in the local selector 10.7.0.0/24"]
    );
    // An inner family other than the outer one: no gateway, only the device.
    let c3 = child(
        Mode::Tunnel,
        vec![v6("fe80::", "fe80::ffff")],
        vec![v6("2001:db8:2::", "2001:db8:2::ffff")],
    );
    let (specs, _) = plan_routes(&opts, &c3, &gw_a_addrs(), &routes);
    assert_eq!(specs.len(), 1);
    assert_eq!(
        (specs[0].gateway, specs[0].src),
        (None, Some(ip("fe80::1")))
    );
    // Transport mode: no routes.
    let c4 = child(
        Mode::Transport,
        vec![net4("10.1.0.0/24")],
        vec![net4("10.2.0.0/24")],
    );
    assert!(plan_routes(&opts, &c4, &gw_a_addrs(), &routes).0.is_empty());
}

fn spec(dst: &str, src: &str) -> RouteSpec {
    RouteSpec {
        table: 220,
        dst: pfx(dst),
        src: Some(ip(src)),
        gateway: Some(ip("192.0.2.2")),
        oif: 3,
    }
}

#[test]
fn a_moved_child_puts_its_routes_in_again_with_the_new_next_hop() {
    let mut b = RouteBook::default();
    let (c1, c2) = (ChildId(1), ChildId(2));
    let s = spec("10.2.0.0/24", "10.1.0.1");
    let s2 = spec("10.3.0.0/24", "10.1.0.1");
    b.add(c1, s);
    b.add(c1, s2);
    // c2 shares c1's first route but does not decide it.
    b.add(c2, s);
    let moved = |x: RouteSpec| RouteSpec {
        gateway: Some(ip("203.0.113.1")),
        oif: 7,
        ..x
    };
    let mut ops = b.moved(c1, ip("203.0.113.1"), 7);
    ops.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(ops, [BookOp::Replace(moved(s)), BookOp::Replace(moved(s2))]);
    assert_eq!(
        b.moved(c2, ip("203.0.113.1"), 7),
        [],
        "not its route to decide"
    );
    // An IPv6 next hop leaves IPv4 routes without a gateway.
    let ops = b.moved(c1, ip("2001:db8::1"), 7);
    assert!(
        ops.iter()
            .all(|o| matches!(o, BookOp::Replace(r) if r.gateway.is_none()))
    );
    assert_eq!(b.moved(ChildId(9), ip("203.0.113.1"), 7), []);
}

#[test]
fn the_book_shares_a_route_between_children_and_removes_it_with_the_last() {
    let mut b = RouteBook::default();
    let (c1, c2, c3) = (ChildId(1), ChildId(2), ChildId(3));
    let s = spec("10.2.0.0/24", "10.1.0.1");
    assert_eq!(b.add(c1, s), Some(BookOp::Add(s)));
    // A rekeyed child's successor: same route, nothing to do.
    assert_eq!(b.add(c2, s), None);
    assert_eq!(b.add(c2, s), None, "adding twice changes nothing");
    assert_eq!(b.count(false), 1);
    assert_eq!(b.remove_child(c1), vec![]);
    assert_eq!(b.remove_child(c2), vec![BookOp::Delete(s)]);
    assert_eq!(b.count(false), 0);
    assert_eq!(b.remove_child(c2), vec![], "removing twice changes nothing");

    // The installed route's child goes while another one with another
    // source needs the destination: its route replaces it.
    let s2 = spec("10.2.0.0/24", "10.1.0.7");
    assert_eq!(b.add(c1, s), Some(BookOp::Add(s)));
    assert_eq!(b.add(c2, s2), None);
    assert_eq!(b.remove_child(c1), vec![BookOp::Replace(s2)]);
    assert_eq!(b.remove_child(c2), vec![BookOp::Delete(s2)]);

    // A non-installed user going changes nothing in the kernel.
    assert_eq!(b.add(c1, s), Some(BookOp::Add(s)));
    assert_eq!(b.add(c2, s2), None);
    assert_eq!(b.remove_child(c2), vec![]);

    // forget (a failed add) and drain (shutdown).
    let s6 = RouteSpec {
        dst: pfx("2001:db8:2::/64"),
        src: None,
        gateway: None,
        ..s
    };
    assert_eq!(b.add(c3, s6), Some(BookOp::Add(s6)));
    assert_eq!(b.count(true), 1);
    b.forget(c3, &s6);
    assert_eq!(b.count(true), 0);
    assert_eq!(
        b.add(c3, s6),
        Some(BookOp::Add(s6)),
        "a forgotten route is added again"
    );
    let mut all = b.drain();
    all.sort_by_key(|s| s.dst.to_string());
    assert_eq!(all, vec![s, s6]);
    assert_eq!((b.count(false), b.count(true)), (0, 0));
}

#[test]
fn options_default_to_strongswans() {
    let o = RouteOptions::default();
    assert_eq!((o.install, o.table, o.prio), (true, 220, 220));
    assert!(o.uses_rule());
    assert_eq!(o.kernel_table(), 220);
    assert!(!RouteOptions { table: 254, ..o }.uses_rule());
}

fn notification(ty: u16, protocol: u8) -> Vec<u8> {
    // nlmsghdr (16) + rtmsg (12).
    let mut m = Vec::new();
    m.extend_from_slice(&28u32.to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&[0; 10]);
    m.extend_from_slice(&[2, 24, 0, 0, 220, protocol, 0, 1, 0, 0, 0, 0]);
    m
}

#[test]
fn only_changes_other_than_iked_routes_drop_the_cache() {
    use super::changes_cache;
    assert!(!changes_cache(&[]));
    assert!(!changes_cache(&notification(24, RTPROT_IKED)));
    assert!(!changes_cache(&notification(25, RTPROT_IKED)));
    let mut two = notification(24, RTPROT_IKED);
    two.extend(notification(25, RTPROT_IKED));
    assert!(!changes_cache(&two));
    // Someone else's route, an address, a link: a change.
    assert!(changes_cache(&notification(24, 4)));
    let mut mixed = notification(24, RTPROT_IKED);
    mixed.extend(notification(20, 0));
    assert!(changes_cache(&mixed));
    assert!(changes_cache(&notification(16, 0)));
    // Truncated or garbage: counted as a change, no panic.
    let n = notification(24, RTPROT_IKED);
    assert!(changes_cache(&n[..20]));
    assert!(changes_cache(&[0xff; 3]));
    let mut bad = n.clone();
    bad[0..4].copy_from_slice(&4u32.to_ne_bytes());
    assert!(changes_cache(&bad));
}
