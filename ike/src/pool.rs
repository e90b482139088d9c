//! Virtual IP address pools: the addresses a gateway hands to road warriors
//! in CFG_REPLY, leased per identity as charon's `mem_pool` leases them.
//! The configuration payload that hands them out is `sa::cp`; the
//! `pools` section `config::pools`.
//!
//! A lease belongs to an identity. While one of the identity's IKE SAs
//! uses it, it is online; when the last one releases it, it goes offline
//! but stays the identity's, so a reconnect gets the same address back.
//! A request is served, in this order, by:
//! 1. the identity's online lease for the same peer address (a
//!    make-before-break reauthentication: counted twice, released twice);
//! 2. the identity's oldest offline lease;
//! 3. an address never handed out;
//! 4. the oldest offline lease of another identity (the pool is full).
//!
//! Otherwise the pool is exhausted. Invariants: an address is online for at
//! most one identity, or offline for at most one, or never handed out; the
//! pool never holds a per-address table, so a /8 costs what its leases
//! cost.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::wire::Identification;

/// At most 2^31 addresses per pool, as charon (`POOL_LIMIT`).
const MAX_HOST_BITS: u32 = 31;

/// Why a pool cannot be made or cannot serve a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("'{0}' is not an address, a CIDR subnet or an address range")]
    Syntax(String),
    #[error("the address range {0} - {1} is invalid (other families, or the end before the start)")]
    InvalidRange(IpAddr, IpAddr),
    #[error("the address range {0} - {1} is too large (at most 2^32 - 1 addresses)")]
    RangeTooLarge(IpAddr, IpAddr),
    #[error("the pool {0}/{1} has no address to assign")]
    Empty(IpAddr, u8),
    #[error("pool '{0}' is full, unable to assign an address")]
    Exhausted(String),
    #[error("pool '{0}' has no {1} addresses")]
    WrongFamily(String, &'static str),
}

#[derive(Debug, Default)]
struct Entry {
    /// Online leases (offsets), each with the peer address of the IKE SA
    /// using it; an offset appears once per IKE SA.
    online: Vec<(u32, Option<SocketAddr>)>,
    /// Offline leases, oldest first.
    offline: Vec<u32>,
}

/// One pool of addresses.
#[derive(Debug)]
pub struct Pool {
    name: String,
    /// The first assignable address.
    base: IpAddr,
    /// How many addresses from `base` on can be assigned (at least 1).
    size: u32,
    /// Offsets below this were handed out at least once.
    unused: u32,
    entries: HashMap<Identification, Entry>,
    /// Every offline lease with its identity, oldest first (what a full
    /// pool reassigns).
    offline: VecDeque<(u32, Identification)>,
}

/// The steps of [`Pool::acquire`], in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// The identity's own lease (online from the same peer, or offline).
    Existing,
    /// An address never handed out.
    New,
    /// The oldest offline lease of another identity.
    Reassign,
}

/// The lease of one address, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub addr: IpAddr,
    pub id: Identification,
    pub online: bool,
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn family_bits(a: IpAddr) -> u32 {
    if a.is_ipv4() { 32 } else { 128 }
}

fn family_name(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// `a + n` in `a`'s family, if it stays inside it.
fn add(a: IpAddr, n: u32) -> Option<IpAddr> {
    let v = to_u128(a).checked_add(u128::from(n))?;
    Some(match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(v).ok()?)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    })
}

impl Pool {
    /// A pool from swanctl's `addrs` text: a subnet (`10.3.0.0/24`), an
    /// address range (`10.3.0.1-10.3.0.100`) or one address.
    pub fn parse(name: &str, text: &str) -> Result<Pool, PoolError> {
        let text = text.trim();
        let bad = || PoolError::Syntax(text.to_owned());
        if let Some((from, to)) = text.split_once('-') {
            let from = from.trim().parse().map_err(|_| bad())?;
            let to = to.trim().parse().map_err(|_| bad())?;
            return Pool::range(name, from, to);
        }
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => u8::try_from(family_bits(addr)).unwrap_or(u8::MAX),
        };
        if u32::from(prefix) > family_bits(addr) {
            return Err(bad());
        }
        Pool::subnet(name, addr, prefix)
    }

    /// A pool of a subnet, as charon's `mem_pool_create`: from `base` (the
    /// network's first host if `base` is the network address) to the last
    /// address before the broadcast address; subnets of one or two
    /// addresses are served whole. Larger than 2^31 addresses: the first
    /// 2^31.
    pub fn subnet(name: &str, base: IpAddr, prefix: u8) -> Result<Pool, PoolError> {
        let addr_bits = family_bits(base);
        let host_bits = addr_bits
            .saturating_sub(u32::from(prefix))
            .min(MAX_HOST_BITS);
        let block = 1u32.checked_shl(host_bits).unwrap_or(u32::MAX);
        // Where `base` sits in its subnet (only the low 32 bits can differ
        // within at most 2^31 addresses).
        let low = u32::try_from(to_u128(base) & u128::from(u32::MAX)).unwrap_or(0);
        let into = low & block.saturating_sub(1);
        let (first, size) = if block > 2 {
            let (first, size) = if into == 0 {
                (add(base, 1), block.saturating_sub(1))
            } else {
                (Some(base), block.saturating_sub(into))
            };
            // No broadcast address.
            (first, size.saturating_sub(1))
        } else if into != 0 {
            (Some(base), block.saturating_sub(1))
        } else {
            (Some(base), block)
        };
        match first {
            Some(first) if size > 0 => Ok(Pool::new(name, first, size)),
            _ => Err(PoolError::Empty(base, prefix)),
        }
    }

    /// A pool from `from` to `to`, both included, as charon's
    /// `mem_pool_create_range`: same family, in order, differing only in
    /// their last 32 bits.
    pub fn range(name: &str, from: IpAddr, to: IpAddr) -> Result<Pool, PoolError> {
        if from.is_ipv4() != to.is_ipv4() || to_u128(from) > to_u128(to) {
            return Err(PoolError::InvalidRange(from, to));
        }
        let diff = to_u128(to).saturating_sub(to_u128(from));
        let size = u32::try_from(diff)
            .ok()
            .and_then(|d| d.checked_add(1))
            .filter(|_| to_u128(from) >> 32 == to_u128(to) >> 32)
            .ok_or(PoolError::RangeTooLarge(from, to))?;
        Ok(Pool::new(name, from, size))
    }

    fn new(name: &str, base: IpAddr, size: u32) -> Pool {
        Pool {
            name: name.to_owned(),
            base,
            size,
            unused: 0,
            entries: HashMap::new(),
            offline: VecDeque::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first assignable address.
    pub fn base(&self) -> IpAddr {
        self.base
    }

    /// How many addresses it can assign.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Online leases (an address used by two IKE SAs of a reauthentication
    /// counts once).
    pub fn online(&self) -> usize {
        self.entries
            .values()
            .map(|e| {
                let mut offs: Vec<u32> = e.online.iter().map(|(o, _)| *o).collect();
                offs.sort_unstable();
                offs.dedup();
                offs.len()
            })
            .sum()
    }

    /// Offline leases.
    pub fn offline(&self) -> usize {
        self.offline.len()
    }

    fn offset_of(&self, addr: IpAddr) -> Option<u32> {
        if addr.is_ipv4() != self.base.is_ipv4() {
            return None;
        }
        let off = to_u128(addr).checked_sub(to_u128(self.base))?;
        u32::try_from(off).ok().filter(|o| *o < self.size)
    }

    fn addr_of(&self, offset: u32) -> Option<IpAddr> {
        add(self.base, offset)
    }

    /// An address for `id`, whose IKE SA comes from `peer`. `requested`
    /// is what the client asked for (`0.0.0.0` or `::` for any); only its
    /// family and, for a reauthentication, its address matter.
    pub fn acquire(
        &mut self,
        id: &Identification,
        requested: IpAddr,
        peer: Option<SocketAddr>,
    ) -> Result<IpAddr, PoolError> {
        if requested.is_ipv4() != self.base.is_ipv4() {
            return Err(PoolError::WrongFamily(
                self.name.clone(),
                family_name(requested),
            ));
        }
        [Acquire::Existing, Acquire::New, Acquire::Reassign]
            .into_iter()
            .find_map(|op| self.acquire_as(op, id, requested, peer))
            .ok_or_else(|| PoolError::Exhausted(self.name.clone()))
    }

    /// One step of [`Pool::acquire`] only: a connection with several
    /// pools asks all of them for the identity's own lease before any
    /// for a fresh address, and all for a fresh one before reassigning
    /// (charon's `MEM_POOL_EXISTING`, `_NEW`, `_REASSIGN` rounds). `None`
    /// for the other family too.
    pub fn acquire_as(
        &mut self,
        op: Acquire,
        id: &Identification,
        requested: IpAddr,
        peer: Option<SocketAddr>,
    ) -> Option<IpAddr> {
        if requested.is_ipv4() != self.base.is_ipv4() {
            return None;
        }
        let offset = match op {
            Acquire::Existing => self.existing(id, requested, peer),
            Acquire::New => self.fresh(id, peer),
            Acquire::Reassign => self.reassigned(id, peer),
        }?;
        self.addr_of(offset)
    }

    /// Whether `addr` is one of the pool's addresses.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.offset_of(addr).is_some()
    }

    fn existing(
        &mut self,
        id: &Identification,
        requested: IpAddr,
        peer: Option<SocketAddr>,
    ) -> Option<u32> {
        let wanted = (!requested.is_unspecified())
            .then(|| self.offset_of(requested))
            .flatten();
        let any = requested.is_unspecified();
        let entry = self.entries.get_mut(id)?;
        if let Some(peer) = peer
            && let Some(&(offset, _)) = entry
                .online
                .iter()
                .find(|(o, p)| *p == Some(peer) && (any || Some(*o) == wanted))
        {
            entry.online.push((offset, Some(peer)));
            return Some(offset);
        }
        if entry.offline.is_empty() {
            return None;
        }
        let offset = entry.offline.remove(0);
        entry.online.push((offset, peer));
        self.offline.retain(|(o, _)| *o != offset);
        Some(offset)
    }

    fn fresh(&mut self, id: &Identification, peer: Option<SocketAddr>) -> Option<u32> {
        if self.unused >= self.size {
            return None;
        }
        let offset = self.unused;
        self.unused = self.unused.saturating_add(1);
        self.entries
            .entry(id.clone())
            .or_default()
            .online
            .push((offset, peer));
        Some(offset)
    }

    fn reassigned(&mut self, id: &Identification, peer: Option<SocketAddr>) -> Option<u32> {
        let (offset, owner) = self.offline.pop_front()?;
        if let Some(e) = self.entries.get_mut(&owner) {
            e.offline.retain(|o| *o != offset);
            if e.online.is_empty() && e.offline.is_empty() {
                self.entries.remove(&owner);
            }
        }
        self.entries
            .entry(id.clone())
            .or_default()
            .online
            .push((offset, peer));
        Some(offset)
    }

    /// One IKE SA of `id` no longer uses `addr`. When none does any more,
    /// the lease goes offline (still `id`'s). False if `id` had no such
    /// online lease.
    pub fn release(&mut self, addr: IpAddr, id: &Identification) -> bool {
        let Some(offset) = self.offset_of(addr) else {
            return false;
        };
        let Some(entry) = self.entries.get_mut(id) else {
            return false;
        };
        let Some(i) = entry.online.iter().position(|(o, _)| *o == offset) else {
            return false;
        };
        entry.online.remove(i);
        if !entry.online.iter().any(|(o, _)| *o == offset) {
            entry.offline.push(offset);
            self.offline.push_back((offset, id.clone()));
        }
        true
    }

    /// Every lease, online and offline.
    pub fn leases(&self) -> Vec<Lease> {
        let mut out = Vec::new();
        for (id, e) in &self.entries {
            let mut online: Vec<u32> = e.online.iter().map(|(o, _)| *o).collect();
            online.sort_unstable();
            online.dedup();
            for (offsets, is_online) in [(&online, true), (&e.offline, false)] {
                for o in offsets {
                    if let Some(addr) = self.addr_of(*o) {
                        out.push(Lease {
                            addr,
                            id: id.clone(),
                            online: is_online,
                        });
                    }
                }
            }
        }
        out.sort_by_key(|l| to_u128(l.addr));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::codes::IdType;

    fn id(s: &str) -> Identification {
        Identification {
            id_type: IdType::FQDN,
            data: s.as_bytes().to_vec(),
        }
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn peer(s: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip(s), 4500))
    }
    const ANY4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

    fn bounds(p: &Pool) -> (IpAddr, u32) {
        (p.base(), p.size())
    }

    #[test]
    fn subnets_skip_the_network_and_broadcast_addresses_as_charon() {
        let p = |t: &str| bounds(&Pool::parse("p", t).unwrap());
        assert_eq!(p("10.3.0.0/24"), (ip("10.3.0.1"), 254));
        assert_eq!(p("10.3.0.5/24"), (ip("10.3.0.5"), 250));
        assert_eq!(p("10.3.0.0/30"), (ip("10.3.0.1"), 2));
        assert_eq!(p("10.3.0.0/31"), (ip("10.3.0.0"), 2));
        assert_eq!(p("10.3.0.1/31"), (ip("10.3.0.1"), 1));
        assert_eq!(p("10.3.0.7/32"), (ip("10.3.0.7"), 1));
        assert_eq!(p("10.3.0.7"), (ip("10.3.0.7"), 1));
        assert_eq!(p("fd00::/120"), (ip("fd00::1"), 254));
        // Capped at 2^31 addresses.
        assert_eq!(p("0.0.0.0/0"), (ip("0.0.0.1"), (1 << 31) - 2));
        assert_eq!(p("fd00::/64"), (ip("fd00::1"), (1 << 31) - 2));
    }

    #[test]
    fn ranges_and_bad_text() {
        let p = |t: &str| Pool::parse("p", t).map(|p| bounds(&p));
        assert_eq!(p("10.3.0.10-10.3.0.19"), Ok((ip("10.3.0.10"), 10)));
        assert_eq!(p(" 10.3.0.10 - 10.3.0.10 "), Ok((ip("10.3.0.10"), 1)));
        assert_eq!(p("fd00::1-fd00::ff"), Ok((ip("fd00::1"), 255)));
        assert!(matches!(
            p("10.3.0.19-10.3.0.10"),
            Err(PoolError::InvalidRange(..))
        ));
        assert!(matches!(
            p("10.3.0.1-fd00::1"),
            Err(PoolError::InvalidRange(..))
        ));
        assert!(matches!(
            p("fd00::1-fd01::1"),
            Err(PoolError::RangeTooLarge(..))
        ));
        assert!(matches!(
            p("0.0.0.0-255.255.255.255"),
            Err(PoolError::RangeTooLarge(..))
        ));
        for bad in ["", "10.3.0.0/33", "fd00::/129", "pool", "10.3.0.0/x", "1-2"] {
            assert!(matches!(p(bad), Err(PoolError::Syntax(_))), "{bad:?}");
        }
    }

    #[test]
    fn identities_get_distinct_addresses_and_their_own_back() {
        let mut p = Pool::parse("rw", "10.3.0.0/29").unwrap();
        let carol = p.acquire(&id("carol"), ANY4, peer("192.0.2.10")).unwrap();
        let dave = p.acquire(&id("dave"), ANY4, peer("192.0.2.11")).unwrap();
        assert_eq!((carol, dave), (ip("10.3.0.1"), ip("10.3.0.2")));
        assert_eq!(p.online(), 2);
        assert!(p.release(carol, &id("carol")));
        assert!(!p.release(carol, &id("carol")), "released once");
        assert_eq!((p.online(), p.offline()), (1, 1));
        // Another identity does not take carol's offline lease while fresh
        // addresses remain; carol gets hers back from a new address.
        let eve = p.acquire(&id("eve"), ANY4, peer("192.0.2.12")).unwrap();
        assert_eq!(eve, ip("10.3.0.3"));
        let again = p.acquire(&id("carol"), ANY4, peer("198.51.100.1")).unwrap();
        assert_eq!(again, carol);
        assert_eq!((p.online(), p.offline()), (3, 0));
        // Someone else's address is not released.
        assert!(!p.release(dave, &id("carol")));
    }

    #[test]
    fn a_full_pool_reassigns_the_oldest_offline_lease_then_is_exhausted() {
        let mut p = Pool::parse("rw", "10.3.0.1-10.3.0.2").unwrap();
        let a = p.acquire(&id("a"), ANY4, None).unwrap();
        let b = p.acquire(&id("b"), ANY4, None).unwrap();
        assert_eq!(
            p.acquire(&id("c"), ANY4, None),
            Err(PoolError::Exhausted("rw".into()))
        );
        p.release(b, &id("b"));
        p.release(a, &id("a"));
        // b went offline first.
        assert_eq!(p.acquire(&id("c"), ANY4, None), Ok(b));
        assert_eq!(p.acquire(&id("d"), ANY4, None), Ok(a));
        assert_eq!(p.offline(), 0);
        // a's lease is d's now: a gets nothing, and a release by a fails.
        assert!(p.acquire(&id("a"), ANY4, None).is_err());
        assert!(!p.release(a, &id("a")));
        let leases = p.leases();
        assert_eq!(
            leases,
            [
                Lease {
                    addr: a,
                    id: id("d"),
                    online: true
                },
                Lease {
                    addr: b,
                    id: id("c"),
                    online: true
                },
            ]
        );
    }

    #[test]
    fn a_reauthentication_from_the_same_peer_shares_the_lease_until_both_release() {
        let mut p = Pool::parse("rw", "10.3.0.0/24").unwrap();
        let old = p.acquire(&id("carol"), ANY4, peer("192.0.2.10")).unwrap();
        // The new IKE SA asks for the address it has (or for any).
        let new = p.acquire(&id("carol"), old, peer("192.0.2.10")).unwrap();
        assert_eq!(new, old);
        assert_eq!(p.online(), 1);
        assert!(p.release(old, &id("carol")));
        assert_eq!(
            (p.online(), p.offline()),
            (1, 0),
            "the new SA still uses it"
        );
        assert!(p.release(new, &id("carol")));
        assert_eq!((p.online(), p.offline()), (0, 1));
        // The same identity from another address while online gets another
        // address (a second device).
        let one = p.acquire(&id("carol"), ANY4, peer("192.0.2.10")).unwrap();
        let two = p.acquire(&id("carol"), ANY4, peer("192.0.2.99")).unwrap();
        assert_eq!(one, old);
        assert_ne!(one, two);
    }

    #[test]
    fn families_must_match() {
        let mut v4 = Pool::parse("v4", "10.3.0.0/24").unwrap();
        let mut v6 = Pool::parse("v6", "fd00::/120").unwrap();
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert!(matches!(
            v4.acquire(&id("a"), any6, None),
            Err(PoolError::WrongFamily(_, "IPv6"))
        ));
        assert_eq!(v6.acquire(&id("a"), any6, None), Ok(ip("fd00::1")));
        assert!(!v6.release(ip("10.3.0.1"), &id("a")));
    }

    #[test]
    fn a_huge_pool_costs_only_its_leases() {
        let mut p = Pool::parse("big", "10.0.0.0/8").unwrap();
        assert_eq!(p.size(), (1 << 24) - 2);
        for i in 0..1000u32 {
            let a = p.acquire(&id(&format!("user{i}")), ANY4, None).unwrap();
            assert_eq!(a, add(ip("10.0.0.1"), i).unwrap());
        }
        assert_eq!(p.online(), 1000);
        // The last address of the pool.
        let last = add(p.base(), p.size() - 1).unwrap();
        assert_eq!(last, ip("10.255.255.254"));
    }
}
