//! After an overrun (ENOBUFS) of a kernel event socket some events are
//! lost: the kernel sends an expire or an acquire once. The state they
//! were about is read back instead (a dump of the SAs) and what was lost
//! is made up from it:
//!
//! - a hard expire: an SA iked installed and still has on record, before
//!   and after the dump, that is not in the kernel any more;
//! - a soft expire: one whose bytes or packets reached its soft limit
//!   (the time limits are iked's own timers' business);
//! - an acquire: a larval SA (SPI 0) the kernel holds for a template's
//!   reqid while it waits for an SA.
//!
//! The engine ignores an expire of an SA it no longer knows, and the
//! driver an acquire it is already answering, so a made-up event that was
//! not lost after all does no harm.

use std::collections::HashSet;
use std::net::IpAddr;

use xfrm_netlink::{Protocol, SaId, SaInfo};

/// What a dump says about one SA, as far as lost events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The SA (its mark left out: the kernel's events carry none).
    pub dst: IpAddr,
    /// Its SPI (0: larval, waiting for an SA after an acquire).
    pub spi: u32,
    /// ESP or AH.
    pub protocol: Protocol,
    /// Its reqid.
    pub reqid: u32,
    /// Bytes and packets so far.
    pub bytes: u64,
    /// Packets so far.
    pub packets: u64,
    /// The soft byte and packet limits.
    pub soft_bytes: Option<u64>,
    /// The soft packet limit.
    pub soft_packets: Option<u64>,
}

impl Seen {
    /// From a dumped SA; `None` for protocols iked does not install.
    pub fn of(sa: &SaInfo) -> Option<Seen> {
        Some(Seen {
            dst: sa.dst,
            spi: sa.spi,
            protocol: sa.protocol?,
            reqid: sa.reqid,
            bytes: sa.usage.bytes,
            packets: sa.usage.packets,
            soft_bytes: sa.lifetimes.soft.bytes,
            soft_packets: sa.lifetimes.soft.packets,
        })
    }

    fn soft_reached(&self) -> bool {
        self.soft_bytes.is_some_and(|l| self.bytes >= l)
            || self.soft_packets.is_some_and(|l| self.packets >= l)
    }
}

/// A lost expire: the SA and whether it was hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostExpire {
    /// The SA.
    pub dst: IpAddr,
    /// Its SPI.
    pub spi: u32,
    /// ESP or AH.
    pub protocol: Protocol,
    /// Gone from the kernel (else: at its soft limit).
    pub hard: bool,
}

/// The expires that may have been lost: `before` and `after` are the SAs
/// iked had on record before and after `dump` was taken (an SA installed
/// or removed meanwhile is in only one of them and proves nothing).
pub fn lost_expires(before: &[SaId], after: &[SaId], dump: &[Seen]) -> Vec<LostExpire> {
    let key = |id: &SaId| (id.dst, id.spi, id.protocol);
    let after: HashSet<_> = after.iter().map(key).collect();
    let mut out = Vec::new();
    let mut done = HashSet::new();
    for id in before {
        let k = key(id);
        // IPComp SAs come and go with their ESP SA (no limits of theirs).
        if id.protocol == Protocol::Comp || !after.contains(&k) || !done.insert(k) {
            continue;
        }
        let seen = dump.iter().find(|s| (s.dst, s.spi, s.protocol) == k);
        let hard = match seen {
            None => true,
            Some(s) if s.soft_reached() => false,
            Some(_) => continue,
        };
        out.push(LostExpire {
            dst: id.dst,
            spi: id.spi,
            protocol: id.protocol,
            hard,
        });
    }
    out
}

/// The reqids the kernel waits for an SA of (larval SAs of an acquire),
/// each once, in the dump's order.
pub fn pending_acquires(dump: &[Seen]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for s in dump {
        if s.spi == 0 && s.reqid != 0 && !out.contains(&s.reqid) {
            out.push(s.reqid);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn id(spi: u32) -> SaId {
        SaId {
            dst: "192.0.2.1".parse().unwrap(),
            spi,
            protocol: Protocol::Esp,
            mark: None,
        }
    }

    fn seen(spi: u32, packets: u64, soft_packets: Option<u64>) -> Seen {
        Seen {
            dst: "192.0.2.1".parse().unwrap(),
            spi,
            protocol: Protocol::Esp,
            reqid: 7,
            bytes: 0,
            packets,
            soft_bytes: None,
            soft_packets,
        }
    }

    #[test]
    fn a_recorded_sa_missing_from_the_kernel_lost_its_hard_expire() {
        let rec = [id(1), id(2)];
        let dump = [seen(2, 5, Some(100))];
        assert_eq!(
            lost_expires(&rec, &rec, &dump),
            vec![LostExpire {
                dst: "192.0.2.1".parse().unwrap(),
                spi: 1,
                protocol: Protocol::Esp,
                hard: true
            }]
        );
    }

    #[test]
    fn an_sa_at_its_soft_limit_lost_its_soft_expire() {
        let rec = [id(1), id(2)];
        let mut at_bytes = seen(2, 0, None);
        at_bytes.bytes = 1000;
        at_bytes.soft_bytes = Some(1000);
        let dump = [seen(1, 100, Some(100)), at_bytes];
        let lost = lost_expires(&rec, &rec, &dump);
        assert_eq!(lost.len(), 2);
        assert!(lost.iter().all(|l| !l.hard), "{lost:?}");
        // Below its limits, or without any: nothing lost.
        let dump = [seen(1, 99, Some(100)), seen(2, 1 << 40, None)];
        assert!(lost_expires(&rec, &rec, &dump).is_empty());
    }

    #[test]
    fn an_sa_installed_or_removed_during_the_dump_proves_nothing() {
        // 1 removed by iked meanwhile, 3 installed meanwhile: neither is
        // in the dump, neither lost an expire.
        let before = [id(1), id(2)];
        let after = [id(2), id(3)];
        assert!(lost_expires(&before, &after, &[seen(2, 0, None)]).is_empty());
        // The same SA twice on record counts once.
        let twice = [id(4), id(4)];
        assert_eq!(lost_expires(&twice, &twice, &[]).len(), 1);
        // An IPComp SA (not in the dump's view) is not an ESP SA gone.
        let comp = [SaId {
            protocol: Protocol::Comp,
            ..id(5)
        }];
        assert!(lost_expires(&comp, &comp, &[]).is_empty());
    }

    #[test]
    fn larval_sas_are_pending_acquires() {
        let mut other = seen(0, 0, None);
        other.reqid = 9;
        let mut none = seen(0, 0, None);
        none.reqid = 0;
        let dump = [
            seen(0, 0, None),
            seen(5, 0, None),
            seen(0, 0, None),
            other,
            none,
        ];
        assert_eq!(pending_acquires(&dump), vec![7, 9]);
    }
}
