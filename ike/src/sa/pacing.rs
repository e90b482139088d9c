//! Initiator pacing: the IKE SAs we initiate toward one peer address go
//! out through a window of half-open initiations
//! (`EndpointConfig::init_window`). One whose IKE_SA_INIT would open
//! more than the window waits, made but unsent (`IkeState::Connecting`,
//! listed and terminable as any other), until one toward the same
//! address is established or gone. 1,000 `start` connections toward one
//! gateway so reach it at the pace it answers, instead of all at once
//! into its socket's receive buffer, where most would be dropped and
//! retransmitted seconds later (docs/performance.md).
//!
//! Only new IKE SAs are paced (`Endpoint::initiate` and the retries of
//! `keyingtries`); a reauthentication's new IKE SA replaces one that
//! carries traffic and has a deadline, so it goes at once, as do rekeys.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::types::IkeSaId;

/// Initiations under way and waiting, by peer address.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    /// Initiations under way (IKE_SA_INIT sent, IKE_AUTH not done) per
    /// address.
    open: HashMap<IpAddr, usize>,
    /// The SAs counted in `open`, and where.
    counted: HashMap<IkeSaId, IpAddr>,
    /// SAs waiting for a slot, by address, first come first.
    waiting: HashMap<IpAddr, VecDeque<IkeSaId>>,
}

impl Pacing {
    /// Whether `id` toward `to` may send its IKE_SA_INIT now (then it is
    /// counted), with `window` initiations at most (0: no limit); if not,
    /// it waits its turn.
    pub(crate) fn admit(&mut self, id: IkeSaId, to: IpAddr, window: usize) -> bool {
        let open = self.open.get(&to).copied().unwrap_or(0);
        let queued = self.waiting.get(&to).is_some_and(|q| !q.is_empty());
        if window != 0 && (open >= window || queued) {
            self.waiting.entry(to).or_default().push_back(id);
            return false;
        }
        self.count(id, to);
        true
    }

    fn count(&mut self, id: IkeSaId, to: IpAddr) {
        if let Some(old) = self.counted.insert(id, to) {
            self.uncount(old);
        }
        let n = self.open.entry(to).or_insert(0);
        *n = n.saturating_add(1);
    }

    fn uncount(&mut self, at: IpAddr) {
        if let Some(n) = self.open.get_mut(&at) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(&at);
            }
        }
    }

    /// `id` is no longer an initiation under way (established, failed or
    /// gone): the address whose slot it freed, if it held one.
    pub(crate) fn done(&mut self, id: IkeSaId) -> Option<IpAddr> {
        if self.counted.is_empty() {
            return None;
        }
        let at = self.counted.remove(&id)?;
        super::endpoint::trim_map(&mut self.counted);
        self.uncount(at);
        Some(at)
    }

    /// The next SA waiting toward `to` if a slot is free there (it is
    /// counted from now on); `still_waits` says whether a queued SA is
    /// still there and unsent (one terminated meanwhile is skipped).
    pub(crate) fn next(
        &mut self,
        to: IpAddr,
        window: usize,
        still_waits: impl Fn(IkeSaId) -> bool,
    ) -> Option<IkeSaId> {
        loop {
            let open = self.open.get(&to).copied().unwrap_or(0);
            if window != 0 && open >= window {
                return None;
            }
            let q = self.waiting.get_mut(&to)?;
            let Some(id) = q.pop_front() else {
                self.waiting.remove(&to);
                return None;
            };
            if q.is_empty() {
                self.waiting.remove(&to);
            }
            if still_waits(id) {
                self.count(id, to);
                return Some(id);
            }
        }
    }

    /// Initiations under way toward `to`, and waiting.
    #[cfg(test)]
    pub(crate) fn load(&self, to: IpAddr) -> (usize, usize) {
        (
            self.open.get(&to).copied().unwrap_or(0),
            self.waiting.get(&to).map_or(0, VecDeque::len),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn a_window_per_address_first_come_first_served() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut p = Pacing::default();
        assert!(p.admit(IkeSaId(1), a, 2));
        assert!(p.admit(IkeSaId(2), a, 2));
        assert!(!p.admit(IkeSaId(3), a, 2));
        assert!(!p.admit(IkeSaId(4), a, 2));
        // Another address has its own window.
        assert!(p.admit(IkeSaId(5), b, 2));
        assert_eq!(p.load(a), (2, 2));
        // Nothing frees a slot: nothing goes.
        assert_eq!(p.next(a, 2, |_| true), None);
        assert_eq!(p.done(IkeSaId(9)), None);
        assert_eq!(p.done(IkeSaId(1)), Some(a));
        assert_eq!(p.done(IkeSaId(1)), None);
        // 3 was terminated while it waited: 4 goes.
        assert_eq!(p.next(a, 2, |id| id != IkeSaId(3)), Some(IkeSaId(4)));
        assert_eq!(p.load(a), (2, 0));
        assert_eq!(p.next(a, 2, |_| true), None);
        // A newcomer does not pass those waiting.
        assert!(!p.admit(IkeSaId(6), a, 2));
        assert_eq!(p.done(IkeSaId(2)), Some(a));
        assert_eq!(p.done(IkeSaId(4)), Some(a));
        assert_eq!(p.next(a, 2, |_| true), Some(IkeSaId(6)));
        assert_eq!(p.next(a, 2, |_| true), None);
        assert_eq!(p.load(a), (1, 0));
    }

    #[test]
    fn no_window_no_waiting() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mut p = Pacing::default();
        for i in 0..100 {
            assert!(p.admit(IkeSaId(i), a, 0));
        }
        assert_eq!(p.load(a), (100, 0));
        for i in 0..100 {
            assert_eq!(p.done(IkeSaId(i)), Some(a));
        }
        assert_eq!(p.load(a), (0, 0));
        assert!(p.open.is_empty());
    }
}
