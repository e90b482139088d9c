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

    /// Parses swanctl's syntax with the built-in protocol names and no
    /// service names ([`TrafficSelector::parse_with`]).
    pub fn parse(s: &str) -> Result<TrafficSelector, String> {
        Self::parse_with(s, &NetNames::default())
    }

    /// Parses swanctl's syntax as strongSwan's `parse_ts` does: `CIDR`,
    /// `a-b`, a single address or `dynamic`, optionally followed by
    /// `[proto]`, `[proto/port]` or `[proto/from-to]`. proto is a name
    /// from `names` (then a built-in one: tcp, udp, icmp, ...), a number
    /// (C syntax: `0x11` is 17) or `any`; port is a service name from
    /// `names`, a number, `any` or `opaque`. For ICMP and ICMPv6 a port
    /// below 256 is a message type (code 0) and the rest type << 8 | code.
    pub fn parse_with(s: &str, names: &NetNames) -> Result<TrafficSelector, String> {
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
            Some(sel) => parse_proto_port(sel, names).map_err(|e| format!("\"{s}\": {e}"))?,
        };
        Ok(TrafficSelector {
            addresses,
            protocol,
            ports,
        })
    }
}

/// The host's service and protocol names, as strongSwan looks them up
/// with getservbyname(3) and getprotobyname(3) in a traffic selector:
/// `/etc/services` and `/etc/protocols`. The library reads no files: the
/// daemon (and `swanctl-compat`) read them and pass their text here.
/// Without a protocols file, the built-in names (tcp, udp, icmp,
/// ipv6-icmp, ...) still work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetNames {
    /// Each name and alias with its port, in file order (the first wins,
    /// as getservbyname(name, NULL) returns the first entry of any
    /// protocol).
    services: Vec<(String, u16)>,
    /// Each protocol name and alias with its number, in file order.
    protocols: Vec<(String, u8)>,
    /// Where the services came from, for messages.
    services_source: String,
}

impl NetNames {
    /// Adds the services of `text` in `/etc/services` syntax (`name
    /// port/proto aliases... # comment`), read from `source` (named in
    /// messages). Lines that are not entries are skipped, as the C
    /// library skips them.
    pub fn with_services(mut self, text: &str, source: &str) -> NetNames {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(port)) = (words.next(), words.next()) else {
                continue;
            };
            let Some(port) = port
                .split_once('/')
                .and_then(|(n, _)| n.parse::<u16>().ok())
            else {
                continue;
            };
            for n in core::iter::once(name).chain(words) {
                self.services.push((n.to_owned(), port));
            }
        }
        self.services_source = source.to_owned();
        self
    }

    /// Adds the protocols of `text` in `/etc/protocols` syntax (`name
    /// number aliases... # comment`).
    pub fn with_protocols(mut self, text: &str) -> NetNames {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u8>() else {
                continue;
            };
            for n in core::iter::once(name).chain(words) {
                self.protocols.push((n.to_owned(), number));
            }
        }
        self
    }

    /// The port of service `name` (a name or an alias, case-sensitive
    /// as getservbyname's).
    pub fn service(&self, name: &str) -> Option<u16> {
        self.services
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
    }

    /// The number of protocol `name`: from the protocols file
    /// (case-sensitive), else a built-in name (any case).
    pub fn protocol(&self, name: &str) -> Option<u8> {
        self.protocols
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
            .or_else(|| {
                PROTOCOLS
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, p)| *p)
            })
    }
}

/// C's `strtol(s, &end, 0)`: optional sign, `0x` hex, leading-`0` octal
/// or decimal. The value (0 without digits, saturated on overflow) and
/// the rest after the digits (all of `s` without digits).
fn strtol(s: &str) -> (i64, &str) {
    let t = s.trim_start();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (radix, digits) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) if h.starts_with(|c: char| c.is_ascii_hexdigit()) => (16, h),
        _ if t.starts_with('0') => (8, t),
        _ => (10, t),
    };
    let n = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let (number, rest) = digits.split_at(n);
    if number.is_empty() {
        return (0, s);
    }
    let v = number.chars().fold(0i64, |v, c| {
        let d = i64::from(c.to_digit(radix).unwrap_or(0));
        v.saturating_mul(i64::from(radix)).saturating_add(d)
    });
    (if neg { v.saturating_neg() } else { v }, rest)
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

fn parse_proto_port(sel: &str, names: &NetNames) -> Result<(u8, PortRange), String> {
    let (proto, port) = match sel.split_once('/') {
        Some((p, q)) => (p.trim(), q.trim()),
        None => (sel.trim(), ""),
    };
    let protocol = if proto.is_empty() || proto == "any" || proto == "%any" {
        0
    } else if let Some(n) = names.protocol(proto) {
        n
    } else {
        match strtol(proto) {
            (n, "") => u8::try_from(n).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            format!(
                "unknown protocol \"{proto}\" (a number 0-255, any, a name in /etc/protocols or one of: {})",
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
        "" | "any" | "%any" => PortRange::ANY,
        "opaque" => PortRange::OPAQUE,
        p => {
            let (a, b) = match names.service(p) {
                Some(n) => (n, n),
                None => port_numbers(p).ok_or_else(|| {
                    let source = match names.services_source.as_str() {
                        "" => String::new(),
                        s => format!(", a service in {s}"),
                    };
                    format!(
                        "bad port \"{p}\" (a number 0-65535, a range a-b{source}, any or opaque)"
                    )
                })?,
            };
            // strongSwan's traffic_selector create(): an ICMP "port"
            // below 256 is a type, with code 0.
            let icmp_shift = |x: u16| if icmp && x < 256 { x << 8 } else { x };
            let (a, b) = (icmp_shift(a), icmp_shift(b));
            if a > b {
                return Err(format!("port range \"{p}\" is reversed"));
            }
            PortRange { start: a, end: b }
        }
    };
    if protocol == 0 && ports != PortRange::ANY {
        return Err("a port needs a protocol".into());
    }
    Ok((protocol, ports))
}

/// `from` or `from-to`, numbers in C syntax, as strongSwan's `parse_ts`.
fn port_numbers(p: &str) -> Option<(u16, u16)> {
    let (a, rest) = strtol(p);
    let a = u16::try_from(a).ok()?;
    let (b, rest) = match rest.strip_prefix('-') {
        Some(r) => {
            let (b, rest) = strtol(r);
            (u16::try_from(b).ok()?, rest)
        }
        None => (a, rest),
    };
    rest.is_empty().then_some((a, b))
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
            let mask = u32::MAX
                .checked_shl(32u32.saturating_sub(prefix))
                .unwrap_or(0);
            (
                IpAddr::V4((x & mask).into()),
                IpAddr::V4((x | !mask).into()),
            )
        }
        IpAddr::V6(v6) => {
            let x = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128u32.saturating_sub(prefix))
                .unwrap_or(0);
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
        let t = ts("10.0.0.0/8[udp/opaque]");
        assert_eq!(t.ports, PortRange::OPAQUE);
        let t = ts("10.0.0.0/8[%any]");
        assert_eq!((t.protocol, t.ports), (0, PortRange::ANY));
    }

    const SERVICES: &str = "# comment\n\
        ssh\t\t22/tcp\t\t\t# SSH\n\
        domain\t\t53/tcp\n\
        domain\t\t53/udp\n\
        http\t\t80/tcp\t\twww\n\
        bootps\t\t67/udp\n\
        broken\t\tx/tcp\n\
        lonely\n";
    const PROTOCOLS_FILE: &str =
        "ip\t0\tIP\ntcp\t6\tTCP\t# tcp\nipv6-icmp\t58\tIPv6-ICMP\nvrrp\t112\tVRRP\n";

    fn names() -> NetNames {
        NetNames::default()
            .with_services(SERVICES, "/etc/services")
            .with_protocols(PROTOCOLS_FILE)
    }

    fn with(s: &str) -> Result<(u8, u16, u16), String> {
        TrafficSelector::parse_with(s, &names()).map(|t| (t.protocol, t.ports.start, t.ports.end))
    }

    #[test]
    fn service_names_as_getservbyname() {
        assert_eq!(with("10.0.0.0/8[tcp/ssh]"), Ok((6, 22, 22)));
        assert_eq!(with("dynamic[udp/domain]"), Ok((17, 53, 53)));
        // An alias; and any protocol's entry, as getservbyname(name, NULL).
        assert_eq!(with("10.0.0.0/8[tcp/www]"), Ok((6, 80, 80)));
        assert_eq!(with("10.0.0.0/8[tcp/bootps]"), Ok((6, 67, 67)));
        // Case-sensitive, as the C library's lookup.
        let e = with("10.0.0.0/8[tcp/SSH]").unwrap_err();
        assert!(
            e.contains("bad port \"SSH\"") && e.contains("a service in /etc/services"),
            "{e}"
        );
        // Malformed lines are skipped.
        assert!(with("10.0.0.0/8[tcp/broken]").is_err());
        assert!(with("10.0.0.0/8[tcp/lonely]").is_err());
        // Without a services table a name is not a port.
        let e = TrafficSelector::parse("10.0.0.0/8[tcp/ssh]").unwrap_err();
        assert!(e.contains("bad port \"ssh\""), "{e}");
        assert!(!e.contains("services"), "{e}");
    }

    #[test]
    fn protocol_names_and_numbers_as_strongswan() {
        assert_eq!(with("10.0.0.0/8[vrrp]"), Ok((112, 0, 65535)));
        assert_eq!(with("10.0.0.0/8[VRRP]"), Ok((112, 0, 65535)));
        assert_eq!(with("10.0.0.0/8[IPv6-ICMP]"), Ok((58, 0, 65535)));
        // The built-in names stay when the file lacks them.
        assert_eq!(with("10.0.0.0/8[udp/53]"), Ok((17, 53, 53)));
        assert!(TrafficSelector::parse("10.0.0.0/8[vrrp]").is_err());
        // strtol(3) numbers: hex and octal.
        assert_eq!(with("10.0.0.0/8[0x11/0x35]"), Ok((17, 53, 53)));
        assert_eq!(with("10.0.0.0/8[6/010]"), Ok((6, 8, 8)));
        assert_eq!(with("10.0.0.0/8[any]"), Ok((0, 0, 65535)));
        assert_eq!(with("10.0.0.0/8[tcp/any]"), Ok((6, 0, 65535)));
        assert_eq!(with("10.0.0.0/8[tcp/1024-0xffff]"), Ok((6, 1024, 65535)));
    }

    #[test]
    fn icmp_type_and_code_as_strongswan() {
        // Below 256: the type, code 0; else type << 8 | code.
        assert_eq!(with("10.0.0.0/8[icmp/8]"), Ok((1, 0x0800, 0x0800)));
        assert_eq!(with("10.0.0.0/8[icmp/2048]"), Ok((1, 0x0800, 0x0800)));
        assert_eq!(with("10.0.0.0/8[icmp/769]"), Ok((1, 0x0301, 0x0301)));
        assert_eq!(with("10.0.0.0/8[icmp/3-4]"), Ok((1, 0x0300, 0x0400)));
        assert_eq!(with("10.0.0.0/8[icmp/768-1023]"), Ok((1, 0x0300, 0x03ff)));
        assert_eq!(
            with("2001:db8::/32[ipv6-icmp/128]"),
            Ok((58, 0x8000, 0x8000))
        );
        assert_eq!(with("2001:db8::/32[58/34560]"), Ok((58, 0x8700, 0x8700)));
        assert_eq!(with("10.0.0.0/8[icmp]"), Ok((1, 0, 65535)));
        assert_eq!(with("10.0.0.0/8[icmp/opaque]"), Ok((1, 65535, 0)));
        // Not for other protocols.
        assert_eq!(with("10.0.0.0/8[udp/8]"), Ok((17, 8, 8)));
        assert!(with("10.0.0.0/8[icmp/255-256]").is_err());
    }

    #[test]
    fn strtol_is_c_s() {
        assert_eq!(strtol("12x"), (12, "x"));
        assert_eq!(strtol("0x1f-"), (31, "-"));
        assert_eq!(strtol("017"), (15, ""));
        assert_eq!(strtol("09"), (0, "9"));
        assert_eq!(strtol("0x"), (0, "x"));
        assert_eq!(strtol("-3"), (-3, ""));
        assert_eq!(strtol("x"), (0, "x"));
        assert_eq!(strtol(""), (0, ""));
        assert_eq!(strtol("99999999999999999999999"), (i64::MAX, ""));
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
            "10.0.0.0/8[icmp/3-1]",
            "10.0.0.0/8[tcp/80-]",
            "10.0.0.0/8[tcp/-80]",
            "10.0.0.0/8[tcp/80x]",
            "10.0.0.0/8[256]",
            "10.0.0.0/8[0x]",
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
        assert_eq!(ts("10.1.0.0/24[icmp/8]").to_string(), "10.1.0.0/24[1/8]");
        assert_eq!(
            ts("10.1.0.0/24[icmp/769]").to_string(),
            "10.1.0.0/24[1/3(1)]"
        );
        assert_eq!(
            ts("::/0[ipv6-icmp/128-129]").to_string(),
            "::/0[58/128-129]"
        );
        assert_eq!(
            ts("10.1.0.0/24[udp/769]").to_string(),
            "10.1.0.0/24[17/769]"
        );
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
