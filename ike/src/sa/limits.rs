//! Limits for authenticated peers: what the peer of one IKE SA can make
//! us keep and put into the kernel. Past IKE_AUTH a peer could otherwise
//! ask for Child SAs without end (CREATE_CHILD_SA) and offer selectors
//! whose kernel policies multiply: up to 64 selectors per payload, each
//! address range split into the prefixes that cover it exactly, the cross
//! product of both sides, three directions. strongSwan has no such limits;
//! the defaults ([`PeerLimits::default`]) are far above what a
//! configuration asks for.
//!
//! - A new Child SA the peer asks for (CREATE_CHILD_SA) while the IKE SA
//!   holds `max_children` is refused with NO_ADDITIONAL_SAS; a rekey only
//!   while it holds twice as many (each Child SA may have a successor on
//!   its way in and a predecessor on its way out). Our own Child SAs
//!   (configured, `ikectl up`) are not counted against the peer.
//! - Narrowed selectors with more than `max_selectors` on either side, or
//!   that would give more than `max_policies` kernel policies, are refused
//!   with TS_UNACCEPTABLE as responder (IKE_AUTH and CREATE_CHILD_SA,
//!   rekeys too) and rejected as initiator (the peer's SA is deleted).
//!
//! Both checks run before anything is allocated for the request, so a
//! flood of refused requests keeps the memory flat.

use crate::wire::TrafficSelector;

use super::config::ChildCfg;
use super::ike_sa::IkeSa;
use super::types::ChildFailReason;

/// Limits for what the peer of one IKE SA can make us hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    /// Most Child SAs of one IKE SA when the peer asks for a new one
    /// (twice this for a rekey).
    pub max_children: usize,
    /// Most traffic selectors on either side of one Child SA, after
    /// narrowing.
    pub max_selectors: usize,
    /// Most kernel policies one Child SA's selectors may give (counted as
    /// in tunnel mode: out, in, fwd, and the outbound fwd with
    /// `policies_fwd_out`, for each pair of prefixes).
    pub max_policies: u64,
}

impl Default for PeerLimits {
    /// 128 Child SAs per IKE SA, 64 selectors per side (one TS payload's
    /// parse limit), 16384 policies per Child SA: 64 subnets on each side
    /// with `policies_fwd_out` (64 × 64 × 4), what strongSwan installs for
    /// the most a payload carries, so only address ranges that split into
    /// many prefixes reach it (one pair of subnets gives 3).
    fn default() -> Self {
        Self {
            max_children: 128,
            max_selectors: 64,
            max_policies: 16_384,
        }
    }
}

/// How many prefixes cover the addresses of `ts` exactly (as the kernel
/// bridge splits a range); 0 for a selector of an unknown type or an
/// empty range. At most 62 for IPv4 and 254 for IPv6.
pub fn prefix_count(ts: &TrafficSelector) -> u64 {
    match ts {
        TrafficSelector::Ipv4(r) => count(
            u128::from(u32::from(r.start)),
            u128::from(u32::from(r.end)),
            32,
        ),
        TrafficSelector::Ipv6(r) => count(u128::from(r.start), u128::from(r.end), 128),
        TrafficSelector::Unknown { .. } => 0,
    }
}

/// The number of aligned blocks that cover `start..=end` in a space of
/// `bits` bits, taking at each step the largest block aligned at the
/// current address that ends at or before `end`.
fn count(start: u128, end: u128, bits: u32) -> u64 {
    let mut n: u64 = 0;
    let mut cur = start;
    if cur > end {
        return 0;
    }
    loop {
        let mut k = if cur == 0 {
            bits
        } else {
            cur.trailing_zeros().min(bits)
        };
        // A block of 2^k addresses (k = 0: one) always fits at `cur`.
        let last = loop {
            let span = 1u128
                .checked_shl(k)
                .map_or(u128::MAX, |b| b.wrapping_sub(1));
            match cur.checked_add(span) {
                Some(last) if last <= end => break last,
                _ => k = k.saturating_sub(1),
            }
        };
        n = n.saturating_add(1);
        match last.checked_add(1) {
            Some(next) if last < end => cur = next,
            _ => return n,
        }
    }
}

fn family_v4(ts: &TrafficSelector) -> Option<bool> {
    match ts {
        TrafficSelector::Ipv4(_) => Some(true),
        TrafficSelector::Ipv6(_) => Some(false),
        TrafficSelector::Unknown { .. } => None,
    }
}

fn protocol(ts: &TrafficSelector) -> u8 {
    match ts {
        TrafficSelector::Ipv4(r) => r.ip_protocol,
        TrafficSelector::Ipv6(r) => r.ip_protocol,
        TrafficSelector::Unknown { .. } => 0,
    }
}

/// The kernel policies a Child SA with these selectors gets, with
/// `per_pair` policies for each pair of prefixes: for each local and
/// remote selector of one family whose protocols agree (one of them any,
/// or equal), the product of their prefix counts. Saturating.
pub fn policy_count(local: &[TrafficSelector], remote: &[TrafficSelector], per_pair: u64) -> u64 {
    let mut total: u64 = 0;
    for l in local {
        for r in remote {
            let (Some(fl), Some(fr)) = (family_v4(l), family_v4(r)) else {
                continue;
            };
            let (pl, pr) = (protocol(l), protocol(r));
            if fl != fr || (pl != 0 && pr != 0 && pl != pr) {
                continue;
            }
            let n = prefix_count(l)
                .saturating_mul(prefix_count(r))
                .saturating_mul(per_pair);
            total = total.saturating_add(n);
        }
    }
    total
}

/// Policies per pair of prefixes of a Child SA of `cfg`: none without
/// policies, else out, in and fwd (tunnel mode, the most), and the
/// outbound fwd with `policies_fwd_out`.
fn per_pair(cfg: &ChildCfg) -> u64 {
    if !cfg.policy.policies {
        return 0;
    }
    3u64.saturating_add(u64::from(cfg.policy.policies_fwd_out))
}

impl PeerLimits {
    /// Whether narrowed selectors `local` / `remote` of a Child SA of
    /// `cfg` are within the limits; the reason if not.
    pub(crate) fn check_selectors(
        &self,
        cfg: &ChildCfg,
        local: &[TrafficSelector],
        remote: &[TrafficSelector],
    ) -> Result<(), ChildFailReason> {
        let most = local.len().max(remote.len());
        if most > self.max_selectors {
            return Err(ChildFailReason::OverLimit(format!(
                "{most} traffic selectors on one side, more than {}",
                self.max_selectors
            )));
        }
        let n = policy_count(local, remote, per_pair(cfg));
        if n > self.max_policies {
            return Err(ChildFailReason::OverLimit(format!(
                "the traffic selectors would give {n} kernel policies, more than {}",
                self.max_policies
            )));
        }
        Ok(())
    }
}

impl IkeSa {
    /// Whether the peer may have one more Child SA (`rekey`: a successor
    /// of one it has); the reason if not.
    pub(crate) fn child_room(&self, limits: &PeerLimits, rekey: bool) -> Result<(), String> {
        let held = self.children.len();
        let most = if rekey {
            limits.max_children.saturating_mul(2)
        } else {
            limits.max_children
        };
        if held >= most {
            return Err(format!(
                "the IKE SA holds {held} Child SAs, its limit for {} is {most}",
                if rekey { "a rekey" } else { "a new one" }
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::wire::AddressRange;

    fn v4(a: &str, b: &str, proto: u8) -> TrafficSelector {
        let mut r = AddressRange::any(a.parse().unwrap(), b.parse().unwrap());
        r.ip_protocol = proto;
        TrafficSelector::Ipv4(r)
    }

    fn v6(a: &str, b: &str) -> TrafficSelector {
        TrafficSelector::Ipv6(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
    }

    #[test]
    fn prefixes_cover_ranges_exactly() {
        assert_eq!(prefix_count(&v4("10.1.0.0", "10.1.255.255", 0)), 1);
        assert_eq!(prefix_count(&v4("10.1.0.5", "10.1.0.5", 0)), 1);
        // 1-254: 1/32, 2/31, 4/30, ..., 128/26 ... 254/31 -> 14.
        assert_eq!(prefix_count(&v4("10.0.0.1", "10.0.0.254", 0)), 14);
        assert_eq!(prefix_count(&v4("0.0.0.0", "255.255.255.255", 0)), 1);
        // The worst IPv4 range: 0.0.0.1 - 255.255.255.254.
        assert_eq!(prefix_count(&v4("0.0.0.1", "255.255.255.254", 0)), 62);
        assert_eq!(
            prefix_count(&v6("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            1
        );
        assert_eq!(
            prefix_count(&v6("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")),
            254
        );
        assert_eq!(prefix_count(&v4("10.0.0.2", "10.0.0.1", 0)), 0);
    }

    #[test]
    fn policies_count_pairs_of_one_family_and_agreeing_protocols() {
        let net = [v4("10.1.0.0", "10.1.0.255", 0)];
        let peer = [v4("10.2.0.0", "10.2.0.255", 0)];
        assert_eq!(policy_count(&net, &peer, 3), 3);
        // Families never pair; protocols pair when one is any or equal.
        let mixed = [v6("fd00::", "fd00::ffff"), v4("10.2.0.0", "10.2.0.255", 6)];
        assert_eq!(policy_count(&net, &mixed, 3), 3);
        assert_eq!(
            policy_count(&[v4("10.1.0.0", "10.1.0.0", 17)], &mixed, 3),
            0
        );
        // Ranges multiply: 14 x 14 pairs of prefixes, 3 policies each.
        let r = [v4("10.0.0.1", "10.0.0.254", 0)];
        assert_eq!(policy_count(&r, &r, 3), 588);
        // 64 x 64 of the worst IPv6 ranges saturate nothing but are huge.
        let worst = vec![v6("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"); 64];
        assert_eq!(policy_count(&worst, &worst, 4), 64 * 64 * 254 * 254 * 4);
    }

    #[test]
    fn limits_refuse_too_many_selectors_or_policies() {
        let cfg = std::sync::Arc::new(ChildCfg {
            name: "net".into(),
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
            proposals: Vec::new(),
            mode: super::super::Mode::Tunnel,
            sa_opts: Default::default(),
            lifetimes: Default::default(),
            policy: Default::default(),
            inactivity: Default::default(),
        });
        let l = PeerLimits {
            max_children: 1,
            max_selectors: 2,
            max_policies: 12,
        };
        let one = [v4("10.1.0.0", "10.1.0.255", 0)];
        let two = vec![one[0].clone(); 2];
        assert_eq!(l.check_selectors(&cfg, &two, &two), Ok(()));
        assert!(matches!(
            l.check_selectors(&cfg, &one, &vec![one[0].clone(); 3]),
            Err(ChildFailReason::OverLimit(m)) if m.contains("3 traffic selectors")
        ));
        // 2 x 2 pairs of one prefix: 12 policies fit, a third prefix not.
        let split = [
            v4("10.1.0.0", "10.1.0.255", 0),
            v4("10.3.0.1", "10.3.0.2", 0),
        ];
        assert!(matches!(
            l.check_selectors(&cfg, &split, &two),
            Err(ChildFailReason::OverLimit(m)) if m.contains("18 kernel policies")
        ));
        // Without policies, nothing goes to the kernel.
        let mut none = (*cfg).clone();
        none.policy.policies = false;
        assert_eq!(l.check_selectors(&none, &split, &two), Ok(()));
        // The outbound fwd policy counts.
        let mut fwd = (*cfg).clone();
        fwd.policy.policies_fwd_out = true;
        assert!(l.check_selectors(&fwd, &one, &two).is_ok());
        assert!(l.check_selectors(&fwd, &two, &two).is_err());
    }
}
