//! Timers at two levels. Each IKE SA and each Child SA keeps its own
//! deadlines in a [`TimerTable`], one slot per kind of timer ([`IkeTimer`],
//! [`ChildTimer`]); the IKE SA's next deadline is the earliest of its
//! table, its children's tables and its retransmission. The endpoint keeps
//! that one deadline per IKE SA in [`Timers`], a binary heap with lazy
//! deletion, so the next deadline over 10,000 SAs is a peek, not a scan.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::marker::PhantomData;
use std::time::Instant;

use super::IkeSaId;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, IkeSaId)>>,
    current: HashMap<IkeSaId, Instant>,
}

impl Timers {
    /// Sets (or with `None` clears) the deadline of `id`.
    pub(crate) fn set(&mut self, id: IkeSaId, at: Option<Instant>) {
        match at {
            Some(t) => {
                if self.current.insert(id, t) != Some(t) {
                    self.heap.push(Reverse((t, id)));
                }
            }
            None => {
                self.current.remove(&id);
            }
        }
        // Stale entries are dropped lazily; keep the heap from growing
        // without bound under churn.
        if self.heap.len() > self.current.len().saturating_mul(4).saturating_add(64) {
            let current = &self.current;
            self.heap
                .retain(|Reverse((t, id))| current.get(id) == Some(t));
        }
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((t, id))) = self.heap.peek() {
            if self.current.get(id) == Some(t) {
                break;
            }
            self.heap.pop();
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Removes and returns the SAs whose deadline is at or before `now`.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<IkeSaId> {
        let mut out = Vec::new();
        loop {
            self.drop_stale();
            match self.heap.peek() {
                Some(Reverse((t, id))) if *t <= now => {
                    let id = *id;
                    self.heap.pop();
                    self.current.remove(&id);
                    out.push(id);
                }
                _ => return out,
            }
        }
    }
}

/// A kind of per-SA timer: its slot in a [`TimerTable`].
pub(crate) trait TimerKind: Copy {
    /// The slot, below the table's length.
    fn slot(self) -> usize;
}

/// The timers of an IKE SA besides retransmission (which the exchange
/// window keeps with the request in flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IkeTimer {
    /// Responder: a half-open SA goes unless IKE_AUTH completes by then.
    HalfOpen,
    /// A rekey responder's old SA goes if the peer did not delete it.
    Retire,
    /// We rekey the IKE SA.
    Rekey,
    /// The SA is deleted unless rekeyed or reauthenticated (`over_time`).
    Expire,
    /// We reauthenticate the IKE SA (`reauth`).
    Reauth,
    /// Dead peer detection looks for traffic from the peer; unset while
    /// off or while a traffic query is in flight (`dpd`).
    Dpd,
    /// The next NAT keepalive (we are behind NAT; `natt`).
    Keepalive,
    /// The earliest inactivity check of a child with `inactivity`; unset
    /// while none is due or while their queries are in flight
    /// (`inactivity`).
    Inactivity,
}

impl IkeTimer {
    /// The number of kinds: the last one's slot plus one.
    const COUNT: usize = Self::Inactivity as usize + 1;
}

impl TimerKind for IkeTimer {
    fn slot(self) -> usize {
        self as usize
    }
}

/// The timers of a Child SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChildTimer {
    /// We rekey it.
    Rekey,
    /// It is deleted unless rekeyed (`life_time`).
    Expire,
    /// The peer's new SA that lost a rekey collision to ours: we delete it
    /// ourselves if the peer has not (`child_rekey`).
    Orphan,
    /// Responder of a reauthentication: it sends on its outbound SA even
    /// if the Child SA it took over is still there (`reauth`).
    Handover,
}

impl ChildTimer {
    /// The number of kinds: the last one's slot plus one.
    const COUNT: usize = Self::Handover as usize + 1;
}

impl TimerKind for ChildTimer {
    fn slot(self) -> usize {
        self as usize
    }
}

/// One optional deadline per timer kind `K` (`N` kinds). The same 16
/// bytes per timer as a loose `Option<Instant>`, but the earliest and the
/// clearing of all of them are one call each, so a new timer cannot be
/// forgotten in either.
pub(crate) struct TimerTable<K, const N: usize> {
    at: [Option<Instant>; N],
    kind: PhantomData<K>,
}

/// An IKE SA's timers.
pub(crate) type IkeTimers = TimerTable<IkeTimer, { IkeTimer::COUNT }>;
/// A Child SA's timers.
pub(crate) type ChildTimers = TimerTable<ChildTimer, { ChildTimer::COUNT }>;

impl<K, const N: usize> Default for TimerTable<K, N> {
    fn default() -> Self {
        Self {
            at: [None; N],
            kind: PhantomData,
        }
    }
}

impl<K: TimerKind + std::fmt::Debug, const N: usize> std::fmt::Debug for TimerTable<K, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.at.iter().flatten()).finish()
    }
}

impl<K: TimerKind, const N: usize> TimerTable<K, N> {
    /// When `k` fires, if it is set.
    pub(crate) fn get(&self, k: K) -> Option<Instant> {
        self.at.get(k.slot()).copied().flatten()
    }

    /// Sets `k` to fire at `at`, or with `None` stops it.
    pub(crate) fn set(&mut self, k: K, at: Option<Instant>) {
        if let Some(slot) = self.at.get_mut(k.slot()) {
            *slot = at;
        }
    }

    /// Sets `k` to fire at `at`.
    pub(crate) fn arm(&mut self, k: K, at: Instant) {
        self.set(k, Some(at));
    }

    /// Stops `k`.
    pub(crate) fn stop(&mut self, k: K) {
        self.set(k, None);
    }

    /// Whether `k` is set and due at `now`.
    pub(crate) fn is_due(&self, k: K, now: Instant) -> bool {
        self.get(k).is_some_and(|t| t <= now)
    }

    /// Whether `k` is due at `now`; a due timer is stopped (it fired).
    pub(crate) fn fire(&mut self, k: K, now: Instant) -> bool {
        let due = self.is_due(k, now);
        if due {
            self.stop(k);
        }
        due
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }

    /// Stops every timer.
    pub(crate) fn clear(&mut self) {
        self.at = [None; N];
    }
}

#[cfg(test)]
// A test's base instant: the code under test only compares instants it is
// given, so any one will do (ike/clippy.toml forbids reading the clock).
#[allow(clippy::disallowed_methods)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn earliest_first_and_replaced_deadlines_do_not_fire() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = Timers::default();
        t.set(IkeSaId(1), Some(t0 + s(10)));
        t.set(IkeSaId(2), Some(t0 + s(5)));
        t.set(IkeSaId(1), Some(t0 + s(20)));
        t.set(IkeSaId(3), Some(t0 + s(1)));
        t.set(IkeSaId(3), None);
        assert_eq!(t.next(), Some(t0 + s(5)));
        assert_eq!(t.expired(t0 + s(10)), [IkeSaId(2)]);
        assert_eq!(t.next(), Some(t0 + s(20)));
        assert_eq!(t.expired(t0 + s(30)), [IkeSaId(1)]);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn a_table_has_a_slot_per_kind_and_fires_each_once() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = IkeTimers::default();
        // Every kind has its own slot.
        let all = [
            IkeTimer::HalfOpen,
            IkeTimer::Retire,
            IkeTimer::Rekey,
            IkeTimer::Expire,
            IkeTimer::Reauth,
            IkeTimer::Dpd,
            IkeTimer::Keepalive,
            IkeTimer::Inactivity,
        ];
        for (i, k) in all.into_iter().enumerate() {
            t.arm(k, t0 + s(10 + i as u64));
        }
        for (i, k) in all.into_iter().enumerate() {
            assert_eq!(t.get(k), Some(t0 + s(10 + i as u64)));
        }
        assert_eq!(t.next(), Some(t0 + s(10)));
        assert!(!t.fire(IkeTimer::Retire, t0 + s(10)));
        assert!(t.fire(IkeTimer::HalfOpen, t0 + s(10)));
        assert!(!t.fire(IkeTimer::HalfOpen, t0 + s(10)));
        assert_eq!(t.next(), Some(t0 + s(11)));
        t.clear();
        assert_eq!(t.next(), None);
        let mut c = ChildTimers::default();
        c.arm(ChildTimer::Handover, t0 + s(3));
        c.set(ChildTimer::Rekey, Some(t0 + s(2)));
        assert_eq!(c.next(), Some(t0 + s(2)));
        c.stop(ChildTimer::Rekey);
        assert_eq!(c.next(), Some(t0 + s(3)));
        assert_eq!(std::mem::size_of::<IkeTimers>(), 8 * 16);
    }
}
