//! Routes toward the remote traffic selectors of tunnel-mode Child SAs, as
//! strongSwan's kernel-netlink plugin installs them on Linux
//! (`charon.install_routes`, `routing_table`, `routing_table_prio`).
//!
//! For each outbound policy of a tunnel-mode child whose selectors name no
//! protocol and no ports, one route to the remote selector's prefix:
//! - in table `--routing-table` (220), reached through the policy rule
//!   `from all lookup 220` at priority `--routing-table-prio` (220), which
//!   iked adds (per address family) with its first route and removes with
//!   its last one, unless the rule was there before;
//! - via the next hop toward the peer (the gateway of the most specific
//!   route to the peer outside our table, or the peer itself when it is
//!   directly connected) and that route's interface;
//! - with `src` a local address inside the local selector, so that the
//!   gateway's own traffic to the remote subnet is sourced inside the
//!   policy and goes through the tunnel. A local selector that includes
//!   `0.0.0.0`/`::` gives a route without `src`; one that holds none of the
//!   gateway's addresses gives no route (as charon, whose
//!   `get_address_by_ts` fails then).
//!
//! With table 0 (or 254) the routes go into the main table without a rule,
//! and a `/0` destination becomes two `/1` routes (as charon does) so that
//! the default route stays.
//!
//! Every route and rule iked adds carries the protocol number
//! [`RTPROT_IKED`], and so does every virtual IP it puts on an interface
//! (the address's `IFA_PROTO`, Linux 6.1 and later), so that a restarted
//! iked removes what a crashed one left (`flush_leftovers`) and never
//! touches routes or addresses of others. Routes are
//! shared between children with the same destination (a rekeyed child and
//! its successor): the kernel route goes with its last user.
//!
//! A route that cannot be installed is logged (warn) and the tunnel stays.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use futures_util::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressProtocol};
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};
use tracing::{debug, info, warn};
use xfrm_netlink::IpPrefix;

use super::xfrm_plan::{range_to_prefixes, ts_parts};
use ike::sa::{ChildId, ChildInstall, Mode};
use ike::wire::TrafficSelector;

/// The `rtm_protocol` of iked's routes and rules (`ip route show proto
/// 157`). Not in iproute2's rt_protos, nor used by the routing daemons
/// there (zebra/FRR 11 and 186-197, bird 12, babel 42, keepalived 18).
pub const RTPROT_IKED: u8 = 157;
/// strongSwan's default `charon.routing_table`.
pub const DEFAULT_TABLE: u32 = 220;
/// strongSwan's default `charon.routing_table_prio`.
pub const DEFAULT_PRIO: u32 = 220;
const RT_TABLE_MAIN: u32 = 254;

/// The `--install-routes`, `--routing-table` and `--routing-table-prio`
/// options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteOptions {
    /// Whether to install routes at all.
    pub install: bool,
    /// The routing table (0: the main table, without a rule).
    pub table: u32,
    /// The priority of the rule that looks the table up.
    pub prio: u32,
}

impl Default for RouteOptions {
    fn default() -> Self {
        RouteOptions {
            install: true,
            table: DEFAULT_TABLE,
            prio: DEFAULT_PRIO,
        }
    }
}

impl RouteOptions {
    /// The kernel table the routes go to.
    pub fn kernel_table(&self) -> u32 {
        if self.table == 0 {
            RT_TABLE_MAIN
        } else {
            self.table
        }
    }

    /// Whether the routes live in a table of their own, looked up by a rule.
    pub fn uses_rule(&self) -> bool {
        self.kernel_table() != RT_TABLE_MAIN
    }
}

/// One address of the gateway and its interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr {
    /// The address.
    pub addr: IpAddr,
    /// Its interface index.
    pub ifindex: u32,
}

/// The parts of a kernel route that the next-hop choice reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Its table.
    pub table: u32,
    /// Destination (`0.0.0.0`/`::` with length 0 for a default route).
    pub dst: IpAddr,
    /// Destination prefix length.
    pub dst_len: u8,
    /// Its gateway, if any.
    pub gateway: Option<IpAddr>,
    /// Its output interface, if any.
    pub oif: Option<u32>,
    /// Its metric.
    pub priority: u32,
    /// Whether it is a unicast route (not blackhole, throw, local...).
    pub unicast: bool,
    /// Its `rtm_protocol`.
    pub protocol: u8,
}

/// A route iked puts into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// The table.
    pub table: u32,
    /// The destination: a remote selector's prefix.
    pub dst: IpPrefix,
    /// The preferred source (a local address inside the local selector).
    pub src: Option<IpAddr>,
    /// The next hop (absent when it is of another family than `dst`).
    pub gateway: Option<IpAddr>,
    /// The output interface.
    pub oif: u32,
}

fn as_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn range_contains(start: IpAddr, end: IpAddr, a: IpAddr) -> bool {
    start.is_ipv4() == a.is_ipv4()
        && end.is_ipv4() == a.is_ipv4()
        && as_u128(start) <= as_u128(a)
        && as_u128(a) <= as_u128(end)
}

fn prefix_contains(net: IpAddr, len: u8, a: IpAddr) -> bool {
    if net.is_ipv4() != a.is_ipv4() {
        return false;
    }
    let bits: u32 = if a.is_ipv4() { 32 } else { 128 };
    let len = u32::from(len).min(bits);
    if len == 0 {
        return true;
    }
    let shift = bits.saturating_sub(len);
    let (n, x) = (as_u128(net), as_u128(a));
    n.checked_shr(shift).unwrap_or(0) == x.checked_shr(shift).unwrap_or(0)
}

/// Whether a selector can have a route: any protocol, all ports (charon
/// installs none for a policy restricted to a protocol or ports).
fn routable(ts: &TrafficSelector) -> bool {
    matches!(ts_parts(ts), Some((_, _, 0, 0, u16::MAX)))
}

fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    }
}

/// A `/0` as two `/1` halves (for routes in the main table).
fn halves(p: IpPrefix) -> Vec<IpPrefix> {
    if p.prefix_len() != 0 {
        return vec![p];
    }
    let (lo, hi): (IpAddr, IpAddr) = if p.addr().is_ipv4() {
        (
            Ipv4Addr::UNSPECIFIED.into(),
            Ipv4Addr::new(128, 0, 0, 0).into(),
        )
    } else {
        (
            Ipv6Addr::UNSPECIFIED.into(),
            Ipv6Addr::new(0x8000, 0, 0, 0, 0, 0, 0, 0).into(),
        )
    };
    [lo, hi]
        .into_iter()
        .filter_map(|a| IpPrefix::new(a, 1).ok())
        .collect()
}

/// The destinations a child needs routes to, each with the local selector
/// its source address comes from (the first one of the same family that
/// pairs with it, as one route per destination is kept). Tunnel mode only.
pub fn route_targets(
    mode: Mode,
    local_ts: &[TrafficSelector],
    remote_ts: &[TrafficSelector],
    main_table: bool,
) -> Vec<(IpPrefix, TrafficSelector)> {
    let mut out: Vec<(IpPrefix, TrafficSelector)> = Vec::new();
    if mode != Mode::Tunnel {
        return out;
    }
    for r in remote_ts.iter().filter(|r| routable(r)) {
        let Some((rs, re, ..)) = ts_parts(r) else {
            continue;
        };
        let Some(l) = local_ts
            .iter()
            .find(|l| routable(l) && ts_parts(l).is_some_and(|p| p.0.is_ipv4() == rs.is_ipv4()))
        else {
            continue;
        };
        for p in range_to_prefixes(rs, re) {
            let parts = if main_table { halves(p) } else { vec![p] };
            for p in parts {
                if !out.iter().any(|(d, _)| *d == p) {
                    out.push((p, l.clone()));
                }
            }
        }
    }
    out
}

/// The preferred source of a route for the local selector `ts`, as
/// charon's `get_address_by_ts`: `Some(None)` (no `src`) when the selector
/// includes the unspecified address, `Some(Some(a))` for the first local
/// address inside it, `None` when there is none (no route).
pub fn choose_source(ts: &TrafficSelector, addrs: &[LocalAddr]) -> Option<Option<IpAddr>> {
    let (start, end, ..) = ts_parts(ts)?;
    if range_contains(start, end, unspecified(start.is_ipv6())) {
        return Some(None);
    }
    addrs
        .iter()
        .find(|a| range_contains(start, end, a.addr))
        .map(|a| Some(a.addr))
}

/// The next hop toward `peer`: the gateway of the most specific unicast
/// route containing it (lowest metric among equals), leaving out iked's
/// own routes and, when it has one, its table; the peer itself when that
/// route has no gateway (directly connected) or there is none. With the
/// route's interface, if it names one.
pub fn choose_next_hop(
    peer: IpAddr,
    own_table: Option<u32>,
    routes: &[KernelRoute],
) -> (IpAddr, Option<u32>) {
    let mut best: Option<&KernelRoute> = None;
    for r in routes {
        if !r.unicast
            || r.protocol == RTPROT_IKED
            || own_table == Some(r.table)
            || !prefix_contains(r.dst, r.dst_len, peer)
        {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => r.dst_len > b.dst_len || (r.dst_len == b.dst_len && r.priority < b.priority),
        };
        if better {
            best = Some(r);
        }
    }
    match best {
        Some(r) => (
            r.gateway
                .filter(|g| g.is_ipv4() == peer.is_ipv4())
                .unwrap_or(peer),
            r.oif,
        ),
        None => (peer, None),
    }
}

/// The routes of one child: the specs, and a line for each selector that
/// gets none (for the log).
pub fn plan_routes(
    opts: &RouteOptions,
    c: &ChildInstall,
    addrs: &[LocalAddr],
    routes: &[KernelRoute],
) -> (Vec<RouteSpec>, Vec<String>) {
    let (mut specs, mut skipped) = (Vec::new(), Vec::new());
    let table = opts.kernel_table();
    let own = opts.uses_rule().then_some(table);
    let (peer, local) = (c.remote.ip(), c.local.ip());
    let (hop, oif) = choose_next_hop(peer, own, routes);
    let oif = oif.or_else(|| addrs.iter().find(|a| a.addr == local).map(|a| a.ifindex));
    for (dst, lts) in route_targets(c.mode, &c.local_ts, &c.remote_ts, !opts.uses_rule()) {
        let Some(src) = choose_source(&lts, addrs) else {
            skipped.push(format!(
                "{dst}: no local address in the local selector {}",
                ike::display::ts_text(&lts)
            ));
            continue;
        };
        let Some(oif) = oif else {
            skipped.push(format!("{dst}: no interface toward the peer {peer}"));
            continue;
        };
        specs.push(RouteSpec {
            table,
            dst,
            src,
            gateway: (hop.is_ipv4() == dst.addr().is_ipv4()).then_some(hop),
            oif,
        });
    }
    (specs, skipped)
}

/// A kernel change the book asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookOp {
    /// Add this route (its destination had no user).
    Add(RouteSpec),
    /// Replace the installed route of this destination with this one
    /// (the child whose route it was is gone, another one needs it).
    Replace(RouteSpec),
    /// Delete this route (its last user is gone).
    Delete(RouteSpec),
}

/// Which child uses which route. The first user of a destination decides
/// the installed route; it goes when the last user goes. Hash maps both
/// ways, so that each change is constant work in the number of routes
/// (nothing grows worse than linearly: docs/performance.md).
#[derive(Debug, Default)]
pub struct RouteBook {
    /// (table, destination) -> its users, the installed route's first.
    entries: HashMap<(u32, IpPrefix), Users>,
    /// The destinations each child uses.
    by_child: HashMap<ChildId, Vec<(u32, IpPrefix)>>,
}

/// The children using one destination; the first one's route is installed.
type Users = Vec<(ChildId, RouteSpec)>;

impl RouteBook {
    /// `child` needs `spec`; the kernel change, if any.
    pub fn add(&mut self, child: ChildId, spec: RouteSpec) -> Option<BookOp> {
        let key = (spec.table, spec.dst);
        let (op, added) = match self.entries.get_mut(&key) {
            Some(users) => {
                if users.iter().any(|(c, _)| *c == child) {
                    (None, false)
                } else {
                    users.push((child, spec));
                    (None, true)
                }
            }
            None => {
                self.entries.insert(key, vec![(child, spec)]);
                (Some(BookOp::Add(spec)), true)
            }
        };
        if added {
            self.by_child.entry(child).or_default().push(key);
        }
        op
    }

    /// Forgets `child`'s use of `spec` without a kernel change (its add
    /// failed).
    pub fn forget(&mut self, child: ChildId, spec: &RouteSpec) {
        let key = (spec.table, spec.dst);
        if let Some(users) = self.entries.get_mut(&key) {
            let before = users.len();
            users.retain(|(c, s)| !(*c == child && s == spec));
            if users.len() != before
                && let Some(keys) = self.by_child.get_mut(&child)
            {
                keys.retain(|k| *k != key);
                if keys.is_empty() {
                    self.by_child.remove(&child);
                }
            }
            if users.is_empty() {
                self.entries.remove(&key);
            }
        }
    }

    /// `child` is gone; the kernel changes.
    pub fn remove_child(&mut self, child: ChildId) -> Vec<BookOp> {
        let mut ops = Vec::new();
        for key in self.by_child.remove(&child).unwrap_or_default() {
            let Some(users) = self.entries.get_mut(&key) else {
                continue;
            };
            let Some(pos) = users.iter().position(|(c, _)| *c == child) else {
                continue;
            };
            let (_, gone) = users.remove(pos);
            match users.first() {
                None => {
                    ops.push(BookOp::Delete(gone));
                    self.entries.remove(&key);
                }
                Some((_, next)) if pos == 0 && *next != gone => ops.push(BookOp::Replace(*next)),
                Some(_) => {}
            }
        }
        ops
    }

    /// `child` now reaches its peer through `gateway` (for its routes of
    /// that family) and `oif` (MOBIKE moved it): its specs change; the
    /// routes it decides (it is their first user) go in again, replacing
    /// what is there (the kernel flushed them if the old address was the
    /// interface's last).
    pub fn moved(&mut self, child: ChildId, gateway: IpAddr, oif: u32) -> Vec<BookOp> {
        let mut ops = Vec::new();
        for key in self.by_child.get(&child).cloned().unwrap_or_default() {
            let Some(users) = self.entries.get_mut(&key) else {
                continue;
            };
            for (pos, (c, spec)) in users.iter_mut().enumerate() {
                if *c != child {
                    continue;
                }
                let family = spec.dst.addr().is_ipv4() == gateway.is_ipv4();
                spec.gateway = family.then_some(gateway);
                spec.oif = oif;
                if pos == 0 {
                    ops.push(BookOp::Replace(*spec));
                }
            }
        }
        ops
    }

    /// Every installed route (shutdown); the book is empty after.
    pub fn drain(&mut self) -> Vec<RouteSpec> {
        self.by_child.clear();
        std::mem::take(&mut self.entries)
            .into_values()
            .filter_map(|u| u.first().map(|(_, s)| *s))
            .collect()
    }

    /// How many destinations of the family have a route.
    pub fn count(&self, v6: bool) -> usize {
        self.entries
            .keys()
            .filter(|(_, d)| d.addr().is_ipv6() == v6)
            .count()
    }
}

/// Notifications of changes to links, addresses and routes (rtnetlink
/// multicast groups), read without blocking before the cached dumps are
/// used: a change the kernel made before a child's routes are planned is
/// in the socket by then. iked's own routes (protocol [`RTPROT_IKED`]) do
/// not count: the next-hop choice leaves them out.
#[derive(Debug)]
pub struct ChangeWatch {
    socket: rtnetlink::sys::Socket,
    buf: Vec<u8>,
}

/// rtnetlink message types of the groups watched.
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const NLMSG_HDRLEN: usize = 16;
const WATCH_BUF: usize = 32 * 1024;

impl ChangeWatch {
    /// Opens a route netlink socket in the current network namespace,
    /// subscribed to link, address and route changes of both families.
    pub fn open() -> std::io::Result<ChangeWatch> {
        use nix::libc;
        let mut socket = rtnetlink::sys::Socket::new(rtnetlink::sys::protocols::NETLINK_ROUTE)?;
        socket.bind_auto()?;
        for g in [
            libc::RTNLGRP_LINK,
            libc::RTNLGRP_IPV4_IFADDR,
            libc::RTNLGRP_IPV4_ROUTE,
            libc::RTNLGRP_IPV6_IFADDR,
            libc::RTNLGRP_IPV6_ROUTE,
        ] {
            socket.add_membership(g)?;
        }
        socket.set_non_blocking(true)?;
        Ok(ChangeWatch {
            socket,
            buf: Vec::with_capacity(WATCH_BUF),
        })
    }

    /// Reads every pending notification: `Ok(true)` when one of them (or a
    /// lost one: overrun) may change the cached dumps; `Err` when the
    /// socket failed (stop caching).
    pub fn drain(&mut self) -> std::io::Result<bool> {
        let mut changed = false;
        loop {
            self.buf.clear();
            self.buf.reserve(WATCH_BUF);
            match self.socket.recv(&mut self.buf, nix::libc::MSG_DONTWAIT) {
                Ok(_) => changed |= changes_cache(&self.buf),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(changed),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                    debug!("route change notifications overran; listing again");
                    changed = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether a datagram of notifications holds one that may change the
/// cached addresses, links or (other than iked's) routes. Anything not
/// understood counts as a change.
pub fn changes_cache(mut d: &[u8]) -> bool {
    while !d.is_empty() {
        let (Some(len), Some(ty)) = (d.get(0..4), d.get(4..6)) else {
            return true;
        };
        let len = u32::from_ne_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let ty = u16::from_ne_bytes([ty[0], ty[1]]);
        if len < NLMSG_HDRLEN || len > d.len() {
            return true;
        }
        // rtmsg: family, dst_len, src_len, tos, table, protocol, ...
        let ours = matches!(ty, RTM_NEWROUTE | RTM_DELROUTE)
            && d.get(NLMSG_HDRLEN + 5) == Some(&RTPROT_IKED);
        if !ours {
            return true;
        }
        let next = len.saturating_add(3) & !3;
        d = d.get(next..).unwrap_or(&[]);
    }
    false
}

/// Addresses, other routes and interface names as last listed; `None`:
/// list again.
#[derive(Debug, Default)]
struct Cache {
    addrs: Option<Vec<LocalAddr>>,
    /// IPv4, IPv6; without iked's own routes.
    routes: [Option<Vec<KernelRoute>>; 2],
    names: Option<Vec<(u32, String)>>,
}

#[derive(Debug, Default)]
struct State {
    book: RouteBook,
    /// Whether iked added the rule of IPv4 / IPv6.
    rule_added: [bool; 2],
    /// Change notifications; `None`: none (the dumps are made for each
    /// child).
    watch: Option<ChangeWatch>,
    cache: Cache,
    /// Dumps of addresses, routes or links made (tests, benchmarks).
    listings: u64,
    /// Our virtual IPs, by address: the interface, whether iked added it
    /// (an address that was there before stays), and the Child SAs that
    /// have it.
    vips: HashMap<IpAddr, VipUse>,
}

#[derive(Debug)]
struct VipUse {
    ifindex: u32,
    added: bool,
    children: Vec<ChildId>,
}

/// The routes part of the kernel bridge.
#[derive(Debug, Clone)]
pub struct Routes {
    handle: Handle,
    opts: RouteOptions,
    /// Held across the netlink calls: route changes run one at a time.
    state: Arc<tokio::sync::Mutex<State>>,
}

fn version(v6: bool) -> IpVersion {
    if v6 { IpVersion::V6 } else { IpVersion::V4 }
}

fn family_name(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some((*v).into()),
        RouteAddress::Inet6(v) => Some((*v).into()),
        _ => None,
    }
}

pub(super) fn kernel_route(m: &RouteMessage) -> KernelRoute {
    let v6 = m.header.address_family == AddressFamily::Inet6;
    let mut r = KernelRoute {
        table: u32::from(m.header.table),
        dst: unspecified(v6),
        dst_len: m.header.destination_prefix_length,
        gateway: None,
        oif: None,
        priority: 0,
        unicast: m.header.kind == RouteType::Unicast,
        protocol: u8::from(m.header.protocol),
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => r.table = *t,
            RouteAttribute::Destination(d) => {
                if let Some(d) = route_addr(d) {
                    r.dst = d;
                }
            }
            RouteAttribute::Gateway(g) => r.gateway = route_addr(g),
            RouteAttribute::Oif(i) => r.oif = Some(*i),
            RouteAttribute::Priority(p) => r.priority = *p,
            _ => {}
        }
    }
    r
}

fn spec_text(s: &RouteSpec, names: &[(u32, String)]) -> String {
    let dev = names
        .iter()
        .find(|(i, _)| *i == s.oif)
        .map_or_else(|| format!("if{}", s.oif), |(_, n)| n.clone());
    let mut t = s.dst.to_string();
    if let Some(g) = s.gateway {
        t.push_str(&format!(" via {g}"));
    }
    t.push_str(&format!(" dev {dev}"));
    if let Some(a) = s.src {
        t.push_str(&format!(" src {a}"));
    }
    t
}

impl Routes {
    /// A netlink route connection (spawned on the current runtime).
    pub fn new(opts: RouteOptions) -> std::io::Result<Routes> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        let watch = if opts.install {
            match ChangeWatch::open() {
                Ok(w) => Some(w),
                Err(e) => {
                    warn!(
                        "no route change notifications ({e}): addresses and routes are listed for every Child SA"
                    );
                    None
                }
            }
        } else {
            None
        };
        Ok(Routes {
            handle,
            opts,
            state: Arc::new(tokio::sync::Mutex::new(State {
                watch,
                ..State::default()
            })),
        })
    }

    /// The options.
    pub fn options(&self) -> RouteOptions {
        self.opts
    }

    fn route_message(&self, s: &RouteSpec, full: bool) -> Result<RouteMessage, String> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(s.dst.addr(), s.dst.prefix_len())
            .map_err(|e| e.to_string())?
            .table_id(s.table)
            .protocol(RouteProtocol::from(RTPROT_IKED))
            .scope(RouteScope::Universe)
            .kind(RouteType::Unicast);
        if full {
            if let Some(src) = s.src {
                b = b.pref_source(src).map_err(|e| e.to_string())?;
            }
            if let Some(g) = s.gateway {
                b = b.gateway(g).map_err(|e| e.to_string())?;
            }
            b = b.output_interface(s.oif);
        }
        Ok(b.build())
    }

    fn rule_message(&self, v6: bool) -> RuleMessage {
        let mut m = RuleMessage::default();
        m.header.family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        m.header.action = RuleAction::ToTable;
        let table = self.opts.kernel_table();
        if let Ok(t) = u8::try_from(table) {
            m.header.table = t;
        }
        m.attributes.push(RuleAttribute::Table(table));
        m.attributes.push(RuleAttribute::Priority(self.opts.prio));
        m.attributes
            .push(RuleAttribute::Protocol(RouteProtocol::from(RTPROT_IKED)));
        m
    }

    /// Removes the routes and rules a previous iked left (crashed,
    /// killed): those with protocol [`RTPROT_IKED`], in any table.
    pub async fn flush_leftovers(&self) -> Result<(), rtnetlink::Error> {
        let (mut routes, mut rules) = (0usize, 0usize);
        for v6 in [false, true] {
            let dump = if v6 {
                RouteMessageBuilder::<Ipv6Addr>::new().build()
            } else {
                RouteMessageBuilder::<Ipv4Addr>::new().build()
            };
            let found: Vec<RouteMessage> = self
                .handle
                .route()
                .get(dump)
                .execute()
                .try_filter(|m| std::future::ready(u8::from(m.header.protocol) == RTPROT_IKED))
                .try_collect()
                .await?;
            for m in found {
                match self.handle.route().del(m).execute().await {
                    Ok(()) => routes = routes.saturating_add(1),
                    Err(e) => warn!("removing a route left by a previous iked: {e}"),
                }
            }
            let found: Vec<RuleMessage> = self
                .handle
                .rule()
                .get(version(v6))
                .execute()
                .try_filter(|m| {
                    std::future::ready(m.attributes.iter().any(
                        |a| matches!(a, RuleAttribute::Protocol(p) if u8::from(*p) == RTPROT_IKED),
                    ))
                })
                .try_collect()
                .await?;
            for m in found {
                match self.handle.rule().del(m).execute().await {
                    Ok(()) => rules = rules.saturating_add(1),
                    Err(e) => warn!("removing a rule left by a previous iked: {e}"),
                }
            }
        }
        if routes > 0 || rules > 0 {
            warn!("removed {routes} routes and {rules} rules left by a previous iked");
        }
        let vips = self.flush_leftover_vips().await?;
        if vips > 0 {
            warn!("removed {vips} virtual IPs left by a previous iked");
        }
        Ok(())
    }

    /// Removes the virtual IPs a previous iked left: the addresses whose
    /// protocol is [`RTPROT_IKED`]. A kernel older than 6.1 keeps no
    /// protocol: none are found there.
    async fn flush_leftover_vips(&self) -> Result<usize, rtnetlink::Error> {
        let found: Vec<_> = self
            .handle
            .address()
            .get()
            .execute()
            .try_filter(|m| {
                std::future::ready(m.attributes.iter().any(
                    |a| matches!(a, AddressAttribute::Protocol(p) if u8::from(*p) == RTPROT_IKED),
                ))
            })
            .try_collect()
            .await?;
        let mut n = 0usize;
        for m in found {
            let what = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    AddressAttribute::Local(a) | AddressAttribute::Address(a) => Some(*a),
                    _ => None,
                })
                .map_or_else(|| "?".to_owned(), |a| a.to_string());
            match self.handle.address().del(m).execute().await {
                Ok(()) => {
                    debug!("removed virtual IP {what} left by a previous iked");
                    n = n.saturating_add(1);
                }
                Err(e) => warn!("removing virtual IP {what} left by a previous iked: {e}"),
            }
        }
        Ok(n)
    }

    /// How many dumps of addresses, routes or links were made so far
    /// (tests and benchmarks: with change notifications, a few for any
    /// number of children).
    pub async fn listings(&self) -> u64 {
        self.state.lock().await.listings
    }

    /// Drops the cached dumps if a change was notified since (or there
    /// are no notifications).
    fn check_cache(&self, st: &mut State) {
        let keep = match st.watch.as_mut().map(ChangeWatch::drain) {
            Some(Ok(changed)) => !changed,
            Some(Err(e)) => {
                warn!(
                    "route change notifications failed ({e}): addresses and routes are listed for every Child SA from now on"
                );
                st.watch = None;
                false
            }
            None => false,
        };
        if !keep {
            st.cache = Cache::default();
        }
    }

    async fn local_addrs(&self) -> Result<Vec<LocalAddr>, rtnetlink::Error> {
        let msgs: Vec<_> = self.handle.address().get().execute().try_collect().await?;
        let mut out = Vec::new();
        for m in msgs {
            // IFA_LOCAL is the address of point-to-point links; IFA_ADDRESS
            // otherwise.
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(a) => Some(*a),
                _ => None,
            });
            let addr = local.or_else(|| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(a) => Some(*a),
                    _ => None,
                })
            });
            if let Some(addr) = addr {
                out.push(LocalAddr {
                    addr,
                    ifindex: m.header.index,
                });
            }
        }
        Ok(out)
    }

    async fn kernel_routes(&self, v6: bool) -> Result<Vec<KernelRoute>, rtnetlink::Error> {
        let dump = if v6 {
            RouteMessageBuilder::<Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<Ipv4Addr>::new().build()
        };
        let msgs: Vec<RouteMessage> = self
            .handle
            .route()
            .get(dump)
            .execute()
            .try_collect()
            .await?;
        // iked's own routes never decide a next hop (`choose_next_hop`).
        Ok(msgs
            .iter()
            .map(kernel_route)
            .filter(|r| r.protocol != RTPROT_IKED)
            .collect())
    }

    async fn link_names(&self) -> Vec<(u32, String)> {
        let msgs: Vec<_> = match self.handle.link().get().execute().try_collect().await {
            Ok(m) => m,
            Err(e) => {
                debug!("listing interfaces: {e}");
                return Vec::new();
            }
        };
        msgs.into_iter()
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some((m.header.index, n.clone())),
                    _ => None,
                })
            })
            .collect()
    }

    /// Adds the rule of the family unless there is one already.
    async fn ensure_rule(&self, st: &mut State, v6: bool) {
        let i = usize::from(v6);
        if !self.opts.uses_rule() || st.rule_added.get(i).copied().unwrap_or(true) {
            return;
        }
        let table = self.opts.kernel_table();
        let existing: Result<Vec<RuleMessage>, _> = self
            .handle
            .rule()
            .get(version(v6))
            .execute()
            .try_collect()
            .await;
        let present = existing.as_ref().is_ok_and(|rules| {
            rules.iter().any(|r| {
                let t = r
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RuleAttribute::Table(t) => Some(*t),
                        _ => None,
                    })
                    .unwrap_or(u32::from(r.header.table));
                let prio = r.attributes.iter().find_map(|a| match a {
                    RuleAttribute::Priority(p) => Some(*p),
                    _ => None,
                });
                // `from all lookup T`: no selector of any kind.
                let selects = r.header.src_len != 0
                    || r.header.dst_len != 0
                    || r.attributes.iter().any(|a| {
                        matches!(
                            a,
                            RuleAttribute::FwMark(_)
                                | RuleAttribute::Iifname(_)
                                | RuleAttribute::Oifname(_)
                                | RuleAttribute::IpProtocol(_)
                                | RuleAttribute::SourcePortRange(_)
                                | RuleAttribute::DestinationPortRange(_)
                                | RuleAttribute::UidRange(_)
                        )
                    });
                t == table
                    && prio == Some(self.opts.prio)
                    && r.header.action == RuleAction::ToTable
                    && !selects
            })
        });
        if present {
            debug!(
                "{} rule 'from all lookup {table}' at priority {} exists; using it",
                family_name(v6),
                self.opts.prio
            );
            return;
        }
        let mut req = self.handle.rule().add();
        *req.message_mut() = self.rule_message(v6);
        match req.execute().await {
            Ok(()) => {
                info!(
                    "added {} rule 'from all lookup {table}' at priority {}",
                    family_name(v6),
                    self.opts.prio
                );
                if let Some(f) = st.rule_added.get_mut(i) {
                    *f = true;
                }
            }
            Err(e) => warn!(
                "cannot add the {} rule 'from all lookup {table}' at priority {}: {e}; the routes in table {table} are not used",
                family_name(v6),
                self.opts.prio
            ),
        }
    }

    /// Removes the rule of the family if iked added it and has no route
    /// of that family left.
    async fn release_rule(&self, st: &mut State, v6: bool) {
        let i = usize::from(v6);
        if !st.rule_added.get(i).copied().unwrap_or(false) || st.book.count(v6) > 0 {
            return;
        }
        if let Some(f) = st.rule_added.get_mut(i) {
            *f = false;
        }
        match self
            .handle
            .rule()
            .del(self.rule_message(v6))
            .execute()
            .await
        {
            Ok(()) => info!(
                "removed {} rule 'from all lookup {}' at priority {}",
                family_name(v6),
                self.opts.kernel_table(),
                self.opts.prio
            ),
            Err(e) => warn!("removing the {} rule of iked: {e}", family_name(v6)),
        }
    }

    /// Installs the routes of a child that was just installed. Failures
    /// are logged; the child stays.
    pub async fn child_installed(&self, c: &ChildInstall) {
        if !c.vips.is_empty() {
            let mut st = self.state.lock().await;
            self.vips_up(&mut st, c).await;
        }
        // As charon: routes come with the policies (none with `policies =
        // no`), and a child bound to an XFRM interface (`if_id_out`) is
        // routed through that interface by whoever made it.
        if !self.opts.install
            || c.mode != Mode::Tunnel
            || !c.kernel.policies
            || c.kernel.if_id_out != 0
        {
            return;
        }
        // Trap policies' routes come with a stand-in Child SA of IKE SA 0
        // (daemon::traps).
        let who = if c.ike_sa.0 == 0 {
            c.name.clone()
        } else {
            format!("CHILD SA {}{}", c.name, c.id)
        };
        // One child at a time, dumps included: concurrent dumps on the one
        // rtnetlink socket fail with EBUSY, and with hundreds of children
        // installed at once their replies overflowed the socket and the
        // lost ones left installs waiting forever (a lab run of 1,000
        // tunnels stopped after about 250).
        let mut st = self.state.lock().await;
        // Addresses, links and routes are listed once and then again only
        // after a change (a dump of every route for each child made the
        // set-up of N tunnels quadratic).
        self.check_cache(&mut st);
        let addrs = match st.cache.addrs.clone() {
            Some(a) => a,
            None => {
                st.listings = st.listings.saturating_add(1);
                match self.local_addrs().await {
                    Ok(a) => {
                        st.cache.addrs = Some(a.clone());
                        a
                    }
                    Err(e) => {
                        warn!("{who}: no routes installed: cannot list local addresses: {e}");
                        return;
                    }
                }
            }
        };
        let v6 = c.remote.ip().is_ipv6();
        let fam = usize::from(v6);
        let cached = st.cache.routes.get(fam).cloned().flatten();
        let routes = match cached {
            Some(r) => r,
            None => {
                st.listings = st.listings.saturating_add(1);
                match self.kernel_routes(v6).await {
                    Ok(r) => {
                        if let Some(slot) = st.cache.routes.get_mut(fam) {
                            *slot = Some(r.clone());
                        }
                        r
                    }
                    Err(e) => {
                        warn!("{who}: no routes installed: cannot list routes: {e}");
                        return;
                    }
                }
            }
        };
        let (specs, skipped) = plan_routes(&self.opts, c, &addrs, &routes);
        // strongSwan installs no route then and says nothing; one line
        // per Child SA at info was noise with many (a selector without a
        // local address is the usual case for a remote-access client's
        // pool or for host selectors).
        for s in &skipped {
            debug!("{who}: no route to {s}");
        }
        if specs.is_empty() {
            return;
        }
        let names = match st.cache.names.clone() {
            Some(n) => n,
            None => {
                st.listings = st.listings.saturating_add(1);
                let n = self.link_names().await;
                st.cache.names = Some(n.clone());
                n
            }
        };
        let mut added = Vec::new();
        for spec in specs {
            if st.book.add(c.id, spec).is_none() {
                debug!(
                    "{who}: route {} already installed",
                    spec_text(&spec, &names)
                );
                continue;
            }
            self.ensure_rule(&mut st, spec.dst.addr().is_ipv6()).await;
            let r = match self.route_message(&spec, true) {
                Ok(m) => self.handle.route().add(m).execute().await.map_err(|e| {
                    if let rtnetlink::Error::NetlinkError(m) = &e
                        && m.code.map(|c| c.get().saturating_neg()) == Some(Errno::EEXIST as i32)
                    {
                        format!(
                            "a route to {} exists in table {} (not iked's; left alone)",
                            spec.dst, spec.table
                        )
                    } else {
                        e.to_string()
                    }
                }),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => added.push(spec_text(&spec, &names)),
                Err(e) => {
                    warn!(
                        "{who}: cannot install route {} in table {}: {e}; the tunnel stays up",
                        spec_text(&spec, &names),
                        spec.table
                    );
                    st.book.forget(c.id, &spec);
                    self.release_rule(&mut st, spec.dst.addr().is_ipv6()).await;
                }
            }
        }
        if !added.is_empty() {
            info!(
                "{who}: route{} {} installed in table {}",
                if added.len() > 1 { "s" } else { "" },
                added.join(", "),
                self.opts.kernel_table()
            );
        }
    }

    /// Puts the virtual IPs of `c` on the interface of its local IKE
    /// address (as charon without `install_virtual_ip_on`), host-sized,
    /// unless they are there; the address cache is dropped so that its
    /// routes find them as their source.
    async fn vips_up(&self, st: &mut State, c: &ChildInstall) {
        for v in &c.vips {
            if let Some(u) = st.vips.get_mut(v) {
                if !u.children.contains(&c.id) {
                    u.children.push(c.id);
                }
                continue;
            }
            st.listings = st.listings.saturating_add(1);
            let addrs = match self.local_addrs().await {
                Ok(a) => a,
                Err(e) => {
                    warn!("virtual IP {v}: cannot list local addresses: {e}");
                    continue;
                }
            };
            if let Some(a) = addrs.iter().find(|a| a.addr == *v) {
                debug!("virtual IP {v} is already on interface {}", a.ifindex);
                st.vips.insert(
                    *v,
                    VipUse {
                        ifindex: a.ifindex,
                        added: false,
                        children: vec![c.id],
                    },
                );
                continue;
            }
            let Some(ifindex) = addrs
                .iter()
                .find(|a| a.addr == c.local.ip())
                .map(|a| a.ifindex)
            else {
                warn!(
                    "virtual IP {v}: no interface has our address {}, not installed",
                    c.local.ip()
                );
                continue;
            };
            let prefix = if v.is_ipv4() { 32 } else { 128 };
            let mut req = self.handle.address().add(ifindex, *v, prefix);
            // Marked as iked's, as the routes are: `flush_leftovers` of the
            // next start finds it if this iked dies with it in place.
            req.message_mut()
                .attributes
                .push(AddressAttribute::Protocol(AddressProtocol::from(
                    RTPROT_IKED,
                )));
            match req.execute().await {
                Ok(()) => {
                    info!("installed virtual IP {v} on interface {ifindex}");
                    st.vips.insert(
                        *v,
                        VipUse {
                            ifindex,
                            added: true,
                            children: vec![c.id],
                        },
                    );
                    st.cache.addrs = None;
                }
                Err(e) => warn!("installing virtual IP {v}: {e}"),
            }
        }
    }

    /// The Child SA `id` (`None`: every one) no longer has its virtual
    /// IPs: those no other Child SA has go, if iked added them.
    async fn vips_down(&self, st: &mut State, id: Option<ChildId>) {
        let mut gone = Vec::new();
        st.vips.retain(|addr, u| {
            match id {
                Some(id) => u.children.retain(|c| *c != id),
                None => u.children.clear(),
            }
            if u.children.is_empty() {
                gone.push((*addr, u.ifindex, u.added));
                false
            } else {
                true
            }
        });
        for (addr, ifindex, added) in gone {
            if !added {
                continue;
            }
            let msg = match addr {
                IpAddr::V4(a) => rtnetlink::AddressMessageBuilder::<Ipv4Addr>::new()
                    .index(ifindex)
                    .address(a, 32)
                    .build(),
                IpAddr::V6(a) => rtnetlink::AddressMessageBuilder::<Ipv6Addr>::new()
                    .index(ifindex)
                    .address(a, 128)
                    .build(),
            };
            match self.handle.address().del(msg).execute().await {
                Ok(()) => info!("removed virtual IP {addr}"),
                Err(e) => warn!("removing virtual IP {addr}: {e}"),
            }
            st.cache.addrs = None;
        }
    }

    async fn apply(&self, st: &mut State, op: BookOp) {
        let (spec, replace) = match op {
            BookOp::Add(s) | BookOp::Replace(s) => (s, true),
            BookOp::Delete(s) => (s, false),
        };
        let r = if replace {
            match self.route_message(&spec, true) {
                Ok(m) => self
                    .handle
                    .route()
                    .add(m)
                    .replace()
                    .execute()
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            }
        } else {
            match self.route_message(&spec, false) {
                Ok(m) => match self.handle.route().del(m).execute().await {
                    Err(rtnetlink::Error::NetlinkError(m))
                        if m.code.is_some_and(|c| {
                            [Errno::ESRCH as i32, Errno::ENOENT as i32]
                                .contains(&c.get().saturating_neg())
                        }) =>
                    {
                        Ok(())
                    }
                    r => r.map_err(|e| e.to_string()),
                },
                Err(e) => Err(e),
            }
        };
        match r {
            Ok(()) if replace => debug!("route to {} replaced", spec.dst),
            Ok(()) => info!("route to {} removed from table {}", spec.dst, spec.table),
            Err(e) => warn!(
                "{} route to {} in table {}: {e}",
                if replace { "replacing" } else { "removing" },
                spec.dst,
                spec.table
            ),
        }
        if !replace {
            self.release_rule(st, spec.dst.addr().is_ipv6()).await;
        }
    }

    /// The peer of `id` is now reached from `local` toward `remote`
    /// (MOBIKE): its routes get the next hop and interface toward `remote`
    /// as the routing table has them now, and go in again.
    pub async fn child_moved(&self, id: ChildId, local: IpAddr, remote: IpAddr) {
        if !self.opts.install {
            return;
        }
        let mut st = self.state.lock().await;
        if !st.book.by_child.contains_key(&id) {
            return;
        }
        // An address change is what moved it: list again.
        st.cache = Cache::default();
        st.listings = st.listings.saturating_add(2);
        let (addrs, routes) = match (
            self.local_addrs().await,
            self.kernel_routes(remote.is_ipv6()).await,
        ) {
            (Ok(a), Ok(r)) => (a, r),
            (Err(e), _) | (_, Err(e)) => {
                warn!("CHILD SA {id}: routes not moved: cannot list addresses or routes: {e}");
                return;
            }
        };
        let own = self.opts.uses_rule().then_some(self.opts.kernel_table());
        let (hop, oif) = choose_next_hop(remote, own, &routes);
        let Some(oif) = oif.or_else(|| addrs.iter().find(|a| a.addr == local).map(|a| a.ifindex))
        else {
            warn!("CHILD SA {id}: routes not moved: no interface toward the peer {remote}");
            return;
        };
        for op in st.book.moved(id, hop, oif) {
            self.apply(&mut st, op).await;
        }
        debug!("CHILD SA {id}: routes moved to next hop {hop}");
    }

    /// Removes the routes of a child that is gone (those that no other
    /// child needs).
    pub async fn child_removed(&self, id: ChildId) {
        let mut st = self.state.lock().await;
        self.vips_down(&mut st, Some(id)).await;
        let ops = st.book.remove_child(id);
        let n = ops
            .iter()
            .filter(|o| matches!(o, BookOp::Delete(_)))
            .count();
        for op in ops {
            self.apply(&mut st, op).await;
        }
        if n > 0 {
            debug!("removed {n} routes of CHILD SA {id}");
        }
    }

    /// Removes every route and rule iked added (shutdown).
    pub async fn remove_all(&self) {
        let mut st = self.state.lock().await;
        self.vips_down(&mut st, None).await;
        let specs = st.book.drain();
        let n = specs.len();
        for s in specs {
            self.apply(&mut st, BookOp::Delete(s)).await;
        }
        for v6 in [false, true] {
            self.release_rule(&mut st, v6).await;
        }
        if n > 0 {
            info!("removed {n} routes from table {}", self.opts.kernel_table());
        }
    }
}

#[cfg(test)]
mod tests;
