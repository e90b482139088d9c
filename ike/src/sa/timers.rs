//! The endpoint's timer table: one deadline per IKE SA in a binary heap
//! with lazy deletion, so the next deadline over 10,000 SAs is a peek, not
//! a scan.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
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

#[cfg(test)]
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
}
