//! Traffic selector narrowing (RFC 7296 2.9).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::{AddressRange, TrafficSelector};

/// The selector for one host: every protocol and port of `addr`.
pub(crate) fn host(addr: IpAddr) -> TrafficSelector {
    match addr {
        IpAddr::V4(a) => TrafficSelector::Ipv4(AddressRange::any(a, a)),
        IpAddr::V6(a) => TrafficSelector::Ipv6(AddressRange::any(a, a)),
    }
}

fn range<A: Ord + Copy>(a: &AddressRange<A>, b: &AddressRange<A>) -> Option<AddressRange<A>> {
    let ip_protocol = match (a.ip_protocol, b.ip_protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let start_port = a.start_port.max(b.start_port);
    let end_port = a.end_port.min(b.end_port);
    let start = a.start.max(b.start);
    let end = a.end.min(b.end);
    // OPAQUE ports (start 65535, end 0) match only OPAQUE or ANY; treat
    // them as empty unless both sides are exactly OPAQUE.
    let opaque = |r: &AddressRange<A>| r.start_port == u16::MAX && r.end_port == 0;
    if opaque(a) && opaque(b) {
        return (start <= end).then_some(AddressRange {
            ip_protocol,
            start_port: u16::MAX,
            end_port: 0,
            start,
            end,
        });
    }
    (start_port <= end_port && start <= end).then_some(AddressRange {
        ip_protocol,
        start_port,
        end_port,
        start,
        end,
    })
}

/// The intersection of two selectors, if not empty. Selectors of
/// different families, or of unknown types, do not intersect.
pub(crate) fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    match (a, b) {
        (TrafficSelector::Ipv4(x), TrafficSelector::Ipv4(y)) => {
            range::<Ipv4Addr>(x, y).map(TrafficSelector::Ipv4)
        }
        (TrafficSelector::Ipv6(x), TrafficSelector::Ipv6(y)) => {
            range::<Ipv6Addr>(x, y).map(TrafficSelector::Ipv6)
        }
        _ => None,
    }
}

/// Narrows `offered` to `ours` (RFC 7296 2.9): every non-empty
/// intersection of one of ours with one offered, in our order, without
/// duplicates. Empty means TS_UNACCEPTABLE.
pub fn narrow(ours: &[TrafficSelector], offered: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for o in ours {
        for p in offered {
            if let Some(x) = intersect(o, p)
                && !out.contains(&x)
            {
                out.push(x);
            }
        }
    }
    // A Child SA keeps it: no room for four when there is one.
    out.shrink_to_fit();
    out
}

/// Whether every selector of `inner` lies within one of `outer` (the
/// initiator's check that the responder only narrowed).
pub(crate) fn within(inner: &[TrafficSelector], outer: &[TrafficSelector]) -> bool {
    inner
        .iter()
        .all(|i| outer.iter().any(|o| intersect(i, o).as_ref() == Some(i)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sa::config::TsCfg;

    fn v4(a: &str, b: &str, proto: u8, p0: u16, p1: u16) -> TrafficSelector {
        TrafficSelector::Ipv4(AddressRange {
            ip_protocol: proto,
            start_port: p0,
            end_port: p1,
            start: a.parse().unwrap(),
            end: b.parse().unwrap(),
        })
    }

    #[test]
    fn narrowing_intersects_addresses_protocols_and_ports() {
        let ours = [v4("10.1.0.0", "10.1.255.255", 0, 0, 65535)];
        let offered = [v4("10.0.0.0", "10.1.0.255", 6, 80, 80)];
        assert_eq!(
            narrow(&ours, &offered),
            [v4("10.1.0.0", "10.1.0.255", 6, 80, 80)]
        );
        assert!(narrow(&ours, &[v4("10.2.0.0", "10.2.0.255", 0, 0, 65535)]).is_empty());
        let tcp = [v4("10.1.0.0", "10.1.0.0", 6, 0, 65535)];
        assert!(narrow(&tcp, &[v4("10.1.0.0", "10.1.0.0", 17, 0, 65535)]).is_empty());
        let v6 = TrafficSelector::Ipv6(AddressRange::any(
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::UNSPECIFIED,
        ));
        assert!(narrow(&ours, &[v6]).is_empty(), "families never mix");
    }

    #[test]
    fn within_accepts_subsets_only() {
        let outer = [v4("10.0.0.0", "10.255.255.255", 0, 0, 65535)];
        assert!(within(&[v4("10.1.0.0", "10.1.0.255", 6, 1, 2)], &outer));
        assert!(!within(&[v4("9.1.0.0", "10.1.0.255", 0, 0, 65535)], &outer));
    }

    #[test]
    fn dynamic_is_each_host() {
        let hosts = ["192.0.2.1".parse().unwrap(), "10.3.0.1".parse().unwrap()];
        let r = super::super::cp::resolve_hosts(&[TsCfg::Dynamic], &hosts);
        assert_eq!(
            r,
            [
                v4("192.0.2.1", "192.0.2.1", 0, 0, 65535),
                v4("10.3.0.1", "10.3.0.1", 0, 0, 65535)
            ]
        );
        assert!(super::super::cp::resolve_hosts(&[TsCfg::Dynamic], &[]).is_empty());
    }
}
