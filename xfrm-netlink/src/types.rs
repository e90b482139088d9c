//! Typed arguments: addresses, prefixes, selectors, protocols, modes,
//! directions, marks and lifetimes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_xfrm as nx;

use crate::error::Error;

/// Address family of an SA, selector or socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub(crate) fn af(self) -> u16 {
        match self {
            Family::V4 => nx::AF_INET,
            Family::V6 => nx::AF_INET6,
        }
    }

    pub(crate) fn from_af(af: u16) -> Option<Self> {
        match af {
            nx::AF_INET => Some(Family::V4),
            nx::AF_INET6 => Some(Family::V6),
            _ => None,
        }
    }

    fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// Converts a kernel `xfrm_address_t` of the given family to an [`IpAddr`].
pub(crate) fn addr_from_kernel(a: &nx::Address, family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(a.to_ipv4()),
        Family::V6 => IpAddr::V6(a.to_ipv6()),
    }
}

/// An address prefix (`192.0.2.0/24`, `2001:db8::/32`); the address is
/// stored as given, host bits are not cleared (the kernel ignores them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// A prefix; fails if `len` is longer than the address.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, Error> {
        if len > Family::of(&addr).max_prefix() {
            return Err(Error::InvalidArgument(format!(
                "prefix length /{len} is too long for {addr}"
            )));
        }
        Ok(Self { addr, len })
    }

    /// A single host (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            len: Family::of(&addr).max_prefix(),
        }
    }

    /// Every address of a family (`0.0.0.0/0` or `::/0`).
    pub fn any(family: Family) -> Self {
        Self {
            addr: family.unspecified(),
            len: 0,
        }
    }

    /// The address part.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for a `/0` prefix.
    pub fn is_any(&self) -> bool {
        self.len == 0
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// IPsec protocol of an SA or template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Encapsulating Security Payload (IP protocol 50).
    Esp,
    /// Authentication Header (IP protocol 51).
    Ah,
    /// IP Payload Compression (IPComp, IP protocol 108, RFC 3173); its
    /// SPI is the 16-bit CPI.
    Comp,
}

impl Protocol {
    pub(crate) fn number(self) -> u8 {
        match self {
            Protocol::Esp => nx::IPPROTO_ESP,
            Protocol::Ah => nx::IPPROTO_AH,
            Protocol::Comp => nx::IPPROTO_COMP,
        }
    }

    pub(crate) fn from_number(n: u8) -> Option<Self> {
        match n {
            nx::IPPROTO_ESP => Some(Protocol::Esp),
            nx::IPPROTO_AH => Some(Protocol::Ah),
            nx::IPPROTO_COMP => Some(Protocol::Comp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Esp => "ESP",
            Protocol::Ah => "AH",
            Protocol::Comp => "IPComp",
        })
    }
}

/// IPsec mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Transport mode: protects the payload between the two hosts.
    Transport,
    /// Tunnel mode: encapsulates whole inner packets.
    Tunnel,
}

impl Mode {
    pub(crate) fn number(self) -> u8 {
        match self {
            Mode::Transport => nx::XFRM_MODE_TRANSPORT,
            Mode::Tunnel => nx::XFRM_MODE_TUNNEL,
        }
    }

    pub(crate) fn from_number(n: u8) -> Option<Self> {
        match n {
            nx::XFRM_MODE_TRANSPORT => Some(Mode::Transport),
            nx::XFRM_MODE_TUNNEL => Some(Mode::Tunnel),
            _ => None,
        }
    }
}

/// Direction of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Inbound traffic for this host.
    In,
    /// Outbound traffic from this host.
    Out,
    /// Forwarded traffic (inbound, routed through this host).
    Fwd,
}

impl Direction {
    pub(crate) fn number(self) -> u8 {
        match self {
            Direction::In => nx::XFRM_POLICY_IN,
            Direction::Out => nx::XFRM_POLICY_OUT,
            Direction::Fwd => nx::XFRM_POLICY_FWD,
        }
    }

    pub(crate) fn from_number(n: u8) -> Option<Self> {
        match n {
            nx::XFRM_POLICY_IN => Some(Direction::In),
            nx::XFRM_POLICY_OUT => Some(Direction::Out),
            nx::XFRM_POLICY_FWD => Some(Direction::Fwd),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Fwd => "fwd",
        })
    }
}

/// A port match of a selector: `(port & mask) == (value & mask)`.
/// For ICMP selectors the source port carries the type and the
/// destination port the code, as in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PortMatch {
    /// Port value (host byte order).
    pub port: u16,
    /// Mask (host byte order); 0 matches any port.
    pub mask: u16,
}

impl PortMatch {
    /// Matches any port.
    pub const ANY: PortMatch = PortMatch { port: 0, mask: 0 };

    /// Matches exactly one port.
    pub fn exact(port: u16) -> Self {
        Self {
            port,
            mask: u16::MAX,
        }
    }
}

/// A traffic selector: which packets a policy or SA applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Source prefix.
    pub src: IpPrefix,
    /// Destination prefix.
    pub dst: IpPrefix,
    /// Upper-layer protocol number (6 TCP, 17 UDP, 1 ICMP, ...); `None`: any.
    pub proto: Option<u8>,
    /// Source port (or ICMP type).
    pub src_port: PortMatch,
    /// Destination port (or ICMP code).
    pub dst_port: PortMatch,
    /// Outgoing/incoming interface index; `None`: any interface.
    pub ifindex: Option<i32>,
}

impl Selector {
    /// A selector for all traffic from `src` to `dst`; both prefixes must be of
    /// the same family.
    pub fn new(src: IpPrefix, dst: IpPrefix) -> Result<Self, Error> {
        if src.family() != dst.family() {
            return Err(Error::InvalidArgument(format!(
                "selector mixes address families: {src} and {dst}"
            )));
        }
        Ok(Self {
            src,
            dst,
            proto: None,
            src_port: PortMatch::ANY,
            dst_port: PortMatch::ANY,
            ifindex: None,
        })
    }

    /// Host-to-host selector between two addresses of the same family.
    pub fn hosts(src: IpAddr, dst: IpAddr) -> Result<Self, Error> {
        Self::new(IpPrefix::host(src), IpPrefix::host(dst))
    }

    /// All traffic of a family.
    pub fn any(family: Family) -> Self {
        Self {
            src: IpPrefix::any(family),
            dst: IpPrefix::any(family),
            proto: None,
            src_port: PortMatch::ANY,
            dst_port: PortMatch::ANY,
            ifindex: None,
        }
    }

    /// Restricts to one upper-layer protocol.
    pub fn with_proto(mut self, proto: u8) -> Self {
        self.proto = Some(proto);
        self
    }

    /// Restricts the source port.
    pub fn with_src_port(mut self, port: PortMatch) -> Self {
        self.src_port = port;
        self
    }

    /// Restricts the destination port.
    pub fn with_dst_port(mut self, port: PortMatch) -> Self {
        self.dst_port = port;
        self
    }

    /// The address family.
    pub fn family(&self) -> Family {
        self.src.family()
    }

    /// The kernel selector, with the owner tag in its `user` field.
    pub(crate) fn to_kernel(self, owner_tag: u32) -> nx::Selector {
        nx::Selector {
            saddr: nx::Address::from_ip(&self.src.addr),
            daddr: nx::Address::from_ip(&self.dst.addr),
            prefixlen_s: self.src.len,
            prefixlen_d: self.dst.len,
            family: self.family().af(),
            proto: self.proto.unwrap_or(0),
            sport: self.src_port.port,
            sport_mask: self.src_port.mask,
            dport: self.dst_port.port,
            dport_mask: self.dst_port.mask,
            ifindex: self.ifindex.unwrap_or(0),
            user: owner_tag,
        }
    }

    /// Reads a kernel selector; `None` for a selector of no family
    /// (a tunnel-mode SA's "any family" selector).
    pub(crate) fn from_kernel(s: &nx::Selector) -> Option<Self> {
        let family = Family::from_af(s.family)?;
        let src = IpPrefix::new(addr_from_kernel(&s.saddr, family), s.prefixlen_s).ok()?;
        let dst = IpPrefix::new(addr_from_kernel(&s.daddr, family), s.prefixlen_d).ok()?;
        Some(Self {
            src,
            dst,
            proto: (s.proto != 0).then_some(s.proto),
            src_port: PortMatch {
                port: s.sport,
                mask: s.sport_mask,
            },
            dst_port: PortMatch {
                port: s.dport,
                mask: s.dport_mask,
            },
            ifindex: (s.ifindex != 0).then_some(s.ifindex),
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)?;
        if let Some(p) = self.proto {
            write!(f, " proto {p}")?;
        }
        if self.src_port.mask != 0 {
            write!(f, " sport {}", self.src_port.port)?;
        }
        if self.dst_port.mask != 0 {
            write!(f, " dport {}", self.dst_port.port)?;
        }
        Ok(())
    }
}

/// A firewall mark match (`XFRMA_MARK`): an SA or policy applies to packets
/// whose `mark & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mark {
    /// Mark value.
    pub value: u32,
    /// Mask applied to the packet's mark.
    pub mask: u32,
}

impl Mark {
    pub(crate) fn to_kernel(self) -> nx::Mark {
        nx::Mark {
            value: self.value,
            mask: self.mask,
        }
    }
}

/// Limits of one kind (soft or hard); `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    /// Bytes processed.
    pub bytes: Option<u64>,
    /// Packets processed.
    pub packets: Option<u64>,
    /// Seconds since the SA or policy was added.
    pub add_seconds: Option<u64>,
    /// Seconds since first use.
    pub use_seconds: Option<u64>,
}

/// Soft and hard lifetimes. When a soft limit is hit the kernel sends an
/// `Expire { hard: false }` event (time to rekey); at a hard limit it sends
/// `Expire { hard: true }` and deletes the SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Lifetimes {
    /// Soft limits.
    pub soft: Limits,
    /// Hard limits.
    pub hard: Limits,
}

impl Lifetimes {
    pub(crate) fn to_kernel(self) -> nx::LifetimeConfig {
        let inf = |v: Option<u64>| v.unwrap_or(nx::XFRM_INF);
        let zero = |v: Option<u64>| v.unwrap_or(0);
        nx::LifetimeConfig {
            soft_byte_limit: inf(self.soft.bytes),
            hard_byte_limit: inf(self.hard.bytes),
            soft_packet_limit: inf(self.soft.packets),
            hard_packet_limit: inf(self.hard.packets),
            soft_add_expires_seconds: zero(self.soft.add_seconds),
            hard_add_expires_seconds: zero(self.hard.add_seconds),
            soft_use_expires_seconds: zero(self.soft.use_seconds),
            hard_use_expires_seconds: zero(self.hard.use_seconds),
        }
    }

    pub(crate) fn from_kernel(l: &nx::LifetimeConfig) -> Self {
        let inf = |v: u64| (v != nx::XFRM_INF).then_some(v);
        let zero = |v: u64| (v != 0).then_some(v);
        Self {
            soft: Limits {
                bytes: inf(l.soft_byte_limit),
                packets: inf(l.soft_packet_limit),
                add_seconds: zero(l.soft_add_expires_seconds),
                use_seconds: zero(l.soft_use_expires_seconds),
            },
            hard: Limits {
                bytes: inf(l.hard_byte_limit),
                packets: inf(l.hard_packet_limit),
                add_seconds: zero(l.hard_add_expires_seconds),
                use_seconds: zero(l.hard_use_expires_seconds),
            },
        }
    }
}

/// Current use of an SA or policy, read back from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Usage {
    /// Bytes processed so far.
    pub bytes: u64,
    /// Packets processed so far.
    pub packets: u64,
    /// When it was added (seconds since the epoch).
    pub add_time: u64,
    /// When it was first used (seconds since the epoch; 0: not yet).
    pub use_time: u64,
}

impl Usage {
    pub(crate) fn from_kernel(l: &nx::Lifetime) -> Self {
        Self {
            bytes: l.bytes,
            packets: l.packets,
            add_time: l.add_time,
            use_time: l.use_time,
        }
    }
}
