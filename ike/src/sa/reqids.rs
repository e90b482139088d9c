//! Which Child SAs, across all IKE SAs, hold each kernel reqid (and so its
//! policies). A rekeyed Child SA inherits its predecessor's reqid within
//! one IKE SA; a reauthentication makes a new IKE SA whose Child SAs take
//! over the reqid of the old IKE SA's ones with the same configuration and
//! traffic selectors, as strongSwan's reqid allocation by selectors does.
//! The policies of a reqid go with its last holder, so deleting the old
//! IKE SA after a reauthentication leaves them in place.

use std::collections::HashMap;
use std::sync::Arc;

use super::types::ChildId;
use crate::wire::TrafficSelector;

/// What makes two Child SAs the same tunnel: peer and child configuration
/// names and the negotiated selectors.
pub(crate) type ReqidKey = (String, String, Vec<TrafficSelector>, Vec<TrafficSelector>);

/// One key per reqid, shared by both maps, and its holders in a list (one
/// or two Child SAs in practice: a tree set and a second copy of the key
/// were about 400 B per Child SA; `release` is linear in the holders).
#[derive(Debug, Default)]
pub(crate) struct Reqids {
    holders: HashMap<u32, (Arc<ReqidKey>, Vec<ChildId>)>,
    by_key: HashMap<Arc<ReqidKey>, u32>,
}

impl Reqids {
    /// The reqid held by a Child SA with this key, if any.
    pub(crate) fn shared(&self, key: &ReqidKey) -> Option<u32> {
        self.by_key
            .get(key)
            .copied()
            .filter(|r| self.holders.get(r).is_some_and(|(_, h)| !h.is_empty()))
    }

    /// `child` has (or is getting) kernel state under `reqid`.
    pub(crate) fn hold(&mut self, reqid: u32, key: ReqidKey, child: ChildId) {
        let entry = self
            .holders
            .entry(reqid)
            .or_insert_with(|| (Arc::new(key), Vec::with_capacity(1)));
        // A repeated hold adds a copy, which `release` removes with the
        // rest: no scan here (a reqid shared by many Child SAs, as in the
        // scale bench's one connection, would make holding quadratic).
        entry.1.push(child);
        self.by_key.entry(entry.0.clone()).or_insert(reqid);
    }

    /// Whether any Child SA holds `reqid`.
    pub(crate) fn is_held(&self, reqid: u32) -> bool {
        self.holders.get(&reqid).is_some_and(|(_, h)| !h.is_empty())
    }

    /// Whether another Child SA than `child` holds `reqid`.
    pub(crate) fn held_by_other(&self, reqid: u32, child: ChildId) -> bool {
        self.holders
            .get(&reqid)
            .is_some_and(|(_, h)| h.iter().any(|c| *c != child))
    }

    /// `child` is gone. The reqid is forgotten with its last holder.
    pub(crate) fn release(&mut self, reqid: u32, child: ChildId) {
        let Some((key, h)) = self.holders.get_mut(&reqid) else {
            return;
        };
        h.retain(|c| *c != child);
        if h.is_empty() {
            if self.by_key.get(&**key) == Some(&reqid) {
                let key = key.clone();
                self.by_key.remove(&*key);
            }
            self.holders.remove(&reqid);
        }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.holders.is_empty() && self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> ReqidKey {
        ("p".into(), n.into(), Vec::new(), Vec::new())
    }

    #[test]
    fn shared_until_the_last_holder_goes() {
        let mut r = Reqids::default();
        assert_eq!(r.shared(&key("a")), None);
        r.hold(7, key("a"), ChildId(1));
        assert_eq!(r.shared(&key("a")), Some(7));
        assert_eq!(r.shared(&key("b")), None);
        r.hold(7, key("a"), ChildId(2));
        assert!(r.held_by_other(7, ChildId(1)));
        r.release(7, ChildId(1));
        assert!(!r.held_by_other(7, ChildId(2)));
        assert_eq!(r.shared(&key("a")), Some(7));
        r.release(7, ChildId(2));
        assert_eq!(r.shared(&key("a")), None);
        assert!(r.is_empty());
        // A Child SA held twice is gone with one release.
        r.hold(9, key("c"), ChildId(3));
        r.hold(9, key("c"), ChildId(3));
        assert!(!r.held_by_other(9, ChildId(3)));
        r.release(9, ChildId(3));
        assert!(r.is_empty());
    }
}
