//! Traffic selectors and IKE addresses in swanctl.conf syntax.

use core::fmt;
use std::net::IpAddr;

use crate::wire::codes::TsType;

/// Which addresses a traffic selector covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TsAddresses {
    /// `dynamic`: the IKE SA's own address on that side (or a virtual IP),
    /// filled in when the Child SA is negotiated.
    Dynamic,
    /// From `start` to `end` inclusive, both of one address family.
    Range {
        /// First address.
        start: IpAddr,
        /// Last address.
        end: IpAddr,
    },
}

/// An inclusive port range; `0..=65535` is any port. For ICMP and ICMPv6
/// the "port" is type (high octet) and code (low octet), RFC 4301 4.4.1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port.
    pub end: u16,
}

impl PortRange {
    /// Every port.
    pub const ANY: PortRange = PortRange {
        start: 0,
        end: 65535,
    };
    /// `opaque`: the port is not available (RFC 4301 OPAQUE: start 65535, end 0).
    pub const OPAQUE: PortRange = PortRange {
        start: 65535,
        end: 0,
    };
}

/// A configured traffic selector: `10.1.0.0/24`, `10.1.0.1-10.1.0.9`,
/// `dynamic`, each with an optional `[proto/port]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// The addresses.
    pub addresses: TsAddresses,
    /// IP protocol number; 0 is any.
    pub protocol: u8,
    /// Ports (or ICMP type/code).
    pub ports: PortRange,
}

impl TrafficSelector {
    /// `dynamic` with any protocol and port, swanctl's default.
    pub const DYNAMIC: TrafficSelector = TrafficSelector {
        addresses: TsAddresses::Dynamic,
        protocol: 0,
        ports: PortRange::ANY,
    };

    /// The TS Type of the wire form, `None` for `dynamic`.
    pub fn ts_type(&self) -> Option<TsType> {
        match self.addresses {
            TsAddresses::Dynamic => None,
            TsAddresses::Range {
                start: IpAddr::V4(_),
                ..
            } => Some(TsType::IPV4_ADDR_RANGE),
            TsAddresses::Range { .. } => Some(TsType::IPV6_ADDR_RANGE),
        }
    }

    /// Parses swanctl's syntax: `CIDR`, `a-b`, a single address or
    /// `dynamic`, optionally followed by `[proto]`, `[proto/port]` or
    /// `[proto/from-to]`; proto is a name (tcp, udp, icmp, ...), a number
    /// or `%any`; port is a number, `%any` or `opaque`.
    pub fn parse(s: &str) -> Result<TrafficSelector, String> {
        let s = s.trim();
        let (addr, selector) = match s.find('[') {
            Some(i) => {
                let (a, rest) = s.split_at(i);
                let inner = rest
                    .strip_prefix('[')
                    .and_then(|r| r.strip_suffix(']'))
                    .ok_or_else(|| format!("\"{s}\": unterminated [proto/port]"))?;
                (a.trim(), Some(inner))
            }
            None => (s, None),
        };
        let addresses = if addr == "dynamic" {
            TsAddresses::Dynamic
        } else {
            let (start, end) = parse_range(addr).map_err(|e| format!("\"{s}\": {e}"))?;
            TsAddresses::Range { start, end }
        };
        let (protocol, ports) = match selector {
            None => (0, PortRange::ANY),
            Some(sel) => parse_proto_port(sel).map_err(|e| format!("\"{s}\": {e}"))?,
        };
        Ok(TrafficSelector {
            addresses,
            protocol,
            ports,
        })
    }
}

impl fmt::Display for TrafficSelector {
    /// strongSwan's `%R`: `10.1.0.0/24`, `10.1.0.1..10.1.0.9`, `dynamic`,
    /// with `[6/80]` when restricted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addresses {
            TsAddresses::Dynamic => f.write_str("dynamic")?,
            TsAddresses::Range { start, end } => {
                write!(f, "{}", crate::display::RangeDisplay(start, end))?
            }
        }
        crate::display::write_proto_ports(f, self.protocol, self.ports.start, self.ports.end)
    }
}

const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("tcp", 6),
    ("udp", 17),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("sctp", 132),
    ("udplite", 136),
];

fn parse_proto_port(sel: &str) -> Result<(u8, PortRange), String> {
    let (proto, port) = match sel.split_once('/') {
        Some((p, q)) => (p.trim(), Some(q.trim())),
        None => (sel.trim(), None),
    };
    let protocol = if proto.is_empty() || proto == "%any" {
        0
    } else if let Some((_, n)) = PROTOCOLS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(proto))
    {
        *n
    } else {
        proto.parse::<u8>().map_err(|_| {
            format!(
                "unknown protocol \"{proto}\" (a number 0-255, %any, or one of: {})",
                PROTOCOLS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?
    };
    let icmp = protocol == 1 || protocol == 58;
    let ports = match port {
        None | Some("") | Some("%any") => PortRange::ANY,
        Some("opaque") => PortRange::OPAQUE,
        Some(p) => {
            let num = |x: &str| {
                x.trim().parse::<u16>().map_err(|_| {
                    format!("bad port \"{x}\" (a number 0-65535, a range a-b, %any or opaque; service names are not resolved)")
                })
            };
            let (a, b) = match p.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(p)?;
                    (n, n)
                }
            };
            if a > b {
                return Err(format!("port range {a}-{b} is reversed"));
            }
            if icmp {
                // A single ICMP type means any code of it.
                if a > 255 || b > 255 {
                    return Err(format!("ICMP type {p} is more than 255"));
                }
                PortRange {
                    start: a << 8,
                    end: (b << 8) | 0xff,
                }
            } else {
                PortRange { start: a, end: b }
            }
        }
    };
    if protocol == 0 && ports != PortRange::ANY {
        return Err("a port needs a protocol".into());
    }
    Ok((protocol, ports))
}

/// A CIDR block, an `a-b` range or a single address, as start and end.
fn parse_range(s: &str) -> Result<(IpAddr, IpAddr), String> {
    if let Some((a, b)) = s.split_once('-') {
        let a = parse_ip(a.trim())?;
        let b = parse_ip(b.trim())?;
        if a.is_ipv4() != b.is_ipv4() {
            return Err("range mixes IPv4 and IPv6".into());
        }
        if a > b {
            return Err("range start is after its end".into());
        }
        return Ok((a, b));
    }
    if let Some((a, p)) = s.split_once('/') {
        let a = parse_ip(a.trim())?;
        let max = if a.is_ipv4() { 32 } else { 128 };
        let p: u32 = p
            .trim()
            .parse()
            .ok()
            .filter(|&p| p <= max)
            .ok_or_else(|| format!("bad prefix length \"{p}\" (0-{max})"))?;
        return Ok(cidr(a, p));
    }
    let a = parse_ip(s)?;
    Ok((a, a))
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("\"{s}\" is not an IP address"))
}

/// Network and broadcast address of `a/prefix` (host bits of `a` ignored).
pub(crate) fn cidr(a: IpAddr, prefix: u32) -> (IpAddr, IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            let x = u32::from(v4);
            let mask = u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0);
            (
                IpAddr::V4((x & mask).into()),
                IpAddr::V4((x | !mask).into()),
            )
        }
        IpAddr::V6(v6) => {
            let x = u128::from(v6);
            let mask = u128::MAX.checked_shl(128 - prefix.min(128)).unwrap_or(0);
            (
                IpAddr::V6((x & mask).into()),
                IpAddr::V6((x | !mask).into()),
            )
        }
    }
}

/// One entry of `local_addrs` / `remote_addrs`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// `%any` (`%any4` / `%any6` restrict the family).
    Any(Option<Family>),
    /// One address: the one to use, or the only one accepted.
    Ip(IpAddr),
    /// A CIDR block or `a-b` range: accepted as responder, can't be
    /// initiated to.
    Range {
        /// First address.
        start: IpAddr,
        /// Last address.
        end: IpAddr,
    },
    /// A DNS name, resolved by the daemon (the library has no resolver).
    Name(String),
}

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Address {
    /// Parses one swanctl address entry.
    pub fn parse(s: &str) -> Result<Address, String> {
        let s = s.trim();
        match s {
            "%any" => return Ok(Address::Any(None)),
            "%any4" => return Ok(Address::Any(Some(Family::V4))),
            "%any6" => return Ok(Address::Any(Some(Family::V6))),
            "" => return Err("empty address".into()),
            _ => {}
        }
        if let Ok(a) = s.parse::<IpAddr>() {
            return Ok(Address::Ip(a));
        }
        let looks_ip = s.contains(':')
            || s.contains('/')
            || s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
        if looks_ip {
            let (start, end) = parse_range(s).map_err(|e| format!("\"{s}\": {e}"))?;
            return Ok(if start == end {
                Address::Ip(start)
            } else {
                Address::Range { start, end }
            });
        }
        if is_hostname(s) {
            return Ok(Address::Name(s.to_owned()));
        }
        Err(format!(
            "\"{s}\" is neither an IP address, a CIDR block, a range, %any nor a DNS name"
        ))
    }

    /// Whether an initiator can send to this entry (an address or a name).
    pub fn is_initiable(&self) -> bool {
        matches!(self, Address::Ip(_) | Address::Name(_))
    }

    /// Whether `ip` is covered by this entry; names never match here (the
    /// daemon compares resolved addresses).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            Address::Any(None) => true,
            Address::Any(Some(Family::V4)) => ip.is_ipv4(),
            Address::Any(Some(Family::V6)) => ip.is_ipv6(),
            Address::Ip(a) => *a == ip,
            Address::Range { start, end } => {
                start.is_ipv4() == ip.is_ipv4() && *start <= ip && ip <= *end
            }
            Address::Name(_) => false,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Any(None) => f.write_str("%any"),
            Address::Any(Some(Family::V4)) => f.write_str("%any4"),
            Address::Any(Some(Family::V6)) => f.write_str("%any6"),
            Address::Ip(a) => write!(f, "{a}"),
            Address::Range { start, end } => match crate::display::prefix_len(*start, *end) {
                Some(p) => write!(f, "{start}/{p}"),
                None => write!(f, "{start}-{end}"),
            },
            Address::Name(n) => f.write_str(n),
        }
    }
}

/// RFC 1123 host name: labels of letters, digits and hyphens.
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    s.len() <= 253
        && !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> TrafficSelector {
        TrafficSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn range(a: &str, b: &str) -> TsAddresses {
        TsAddresses::Range {
            start: ip(a),
            end: ip(b),
        }
    }

    #[test]
    fn cidr_range_single_dynamic() {
        assert_eq!(ts("10.1.0.0/24").addresses, range("10.1.0.0", "10.1.0.255"));
        assert_eq!(
            ts("10.1.0.77/24").addresses,
            range("10.1.0.0", "10.1.0.255")
        );
        assert_eq!(
            ts("0.0.0.0/0").addresses,
            range("0.0.0.0", "255.255.255.255")
        );
        assert_eq!(ts("10.1.0.5").addresses, range("10.1.0.5", "10.1.0.5"));
        assert_eq!(
            ts("10.0.0.1-10.0.0.9").addresses,
            range("10.0.0.1", "10.0.0.9")
        );
        assert_eq!(ts("dynamic"), TrafficSelector::DYNAMIC);
        assert_eq!(ts("dynamic").ts_type(), None);
        assert_eq!(ts("10.1.0.0/24").ts_type(), Some(TsType::IPV4_ADDR_RANGE));
    }

    #[test]
    fn ipv6() {
        let t = ts("2001:db8:1::/48");
        assert_eq!(
            t.addresses,
            range("2001:db8:1::", "2001:db8:1:ffff:ffff:ffff:ffff:ffff")
        );
        assert_eq!(t.ts_type(), Some(TsType::IPV6_ADDR_RANGE));
        assert_eq!(
            ts("::/0").addresses,
            range("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        assert_eq!(
            ts("2001:db8::1-2001:db8::9").addresses,
            range("2001:db8::1", "2001:db8::9")
        );
        assert_eq!(
            ts("2001:db8::1[tcp/22]").ports,
            PortRange { start: 22, end: 22 }
        );
    }

    #[test]
    fn protocol_and_ports() {
        let t = ts("10.1.0.0/24[tcp/80]");
        assert_eq!((t.protocol, t.ports), (6, PortRange { start: 80, end: 80 }));
        let t = ts("10.1.0.0/24[udp/%any]");
        assert_eq!((t.protocol, t.ports), (17, PortRange::ANY));
        let t = ts("10.1.0.0/24[icmp]");
        assert_eq!((t.protocol, t.ports), (1, PortRange::ANY));
        let t = ts("dynamic[tcp/1000-2000]");
        assert_eq!(t.addresses, TsAddresses::Dynamic);
        assert_eq!(
            (t.protocol, t.ports),
            (
                6,
                PortRange {
                    start: 1000,
                    end: 2000
                }
            )
        );
        let t = ts("10.0.0.0/8[47]");
        assert_eq!(t.protocol, 47);
        let t = ts("10.0.0.0/8[icmp/8]");
        assert_eq!(
            t.ports,
            PortRange {
                start: 0x0800,
                end: 0x08ff
            }
        );
        let t = ts("10.0.0.0/8[udp/opaque]");
        assert_eq!(t.ports, PortRange::OPAQUE);
        let t = ts("10.0.0.0/8[%any]");
        assert_eq!((t.protocol, t.ports), (0, PortRange::ANY));
    }

    #[test]
    fn bad_selectors() {
        for bad in [
            "10.1.0.0/33",
            "10.1.0/24",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-2001:db8::1",
            "10.0.0.0/8[tcp/80",
            "10.0.0.0/8[tcpx/80]",
            "10.0.0.0/8[tcp/http]",
            "10.0.0.0/8[tcp/2000-1000]",
            "10.0.0.0/8[tcp/70000]",
            "10.0.0.0/8[%any/80]",
            "10.0.0.0/8[icmp/300]",
            "gw.example",
            "",
            "::/129",
        ] {
            assert!(TrafficSelector::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn display() {
        assert_eq!(ts("10.1.0.0/24").to_string(), "10.1.0.0/24");
        assert_eq!(ts("10.1.0.1-10.1.0.9").to_string(), "10.1.0.1..10.1.0.9");
        assert_eq!(ts("10.1.0.0/24[tcp/80]").to_string(), "10.1.0.0/24[6/80]");
        assert_eq!(ts("10.1.0.9").to_string(), "10.1.0.9/32");
        assert_eq!(ts("::/0").to_string(), "::/0");
    }

    #[test]
    fn addresses() {
        assert_eq!(Address::parse("%any").unwrap(), Address::Any(None));
        assert_eq!(
            Address::parse("%any6").unwrap(),
            Address::Any(Some(Family::V6))
        );
        assert_eq!(
            Address::parse("192.0.2.1").unwrap(),
            Address::Ip(ip("192.0.2.1"))
        );
        assert_eq!(
            Address::parse("2001:db8::1").unwrap(),
            Address::Ip(ip("2001:db8::1"))
        );
        assert_eq!(
            Address::parse("192.0.2.0/24").unwrap(),
            Address::Range {
                start: ip("192.0.2.0"),
                end: ip("192.0.2.255")
            }
        );
        assert_eq!(
            Address::parse("192.0.2.10-192.0.2.20").unwrap(),
            Address::Range {
                start: ip("192.0.2.10"),
                end: ip("192.0.2.20")
            }
        );
        assert_eq!(
            Address::parse("vpn.example.net").unwrap(),
            Address::Name("vpn.example.net".into())
        );
        for bad in [
            "",
            "192.0.2.300",
            "a b",
            "-x.example",
            "10.0.0.0/40",
            "%anyx",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
        let r = Address::parse("192.0.2.0/24").unwrap();
        assert!(r.contains(ip("192.0.2.7")) && !r.contains(ip("192.0.3.7")));
        assert!(!r.is_initiable());
        assert!(Address::parse("gw.example").unwrap().is_initiable());
        assert!(Address::Any(Some(Family::V4)).contains(ip("10.0.0.1")));
        assert!(!Address::Any(Some(Family::V4)).contains(ip("::1")));
    }
}
