//! One IKE SA per pair of identities, or not: swanctl's `unique`, and
//! INITIAL_CONTACT (RFC 7296 2.4), as charon's `ike_sa_manager.c`
//! (`check_uniqueness`, `has_contact`) and `ike_auth.c` do them.
//!
//! - The index ([`Contacts`], in the shared `Ctx`): the established IKE
//!   SAs (from IKE_AUTH done until they are gone, rekeyed ones included)
//!   by our identity, the peer's identity and the peer's address family.
//!   The endpoint keeps it (`Endpoint::settle`, which sees every change of
//!   an SA's phase, address or life); an SA handling input only reads it.
//! - Initiator: IKE_AUTH carries INITIAL_CONTACT when the peer's identity
//!   is configured without wildcards, `unique` is not `never`, and no IKE
//!   SA with the pair is in the index (a reauthentication's new SA sends
//!   none: the old one is still there).
//! - Responder, once the peer is authenticated ([`decide`]):
//!   - INITIAL_CONTACT received (`unique` not `never`): the peer has no
//!     state of the old IKE SAs of the pair (whatever their connection):
//!     they go without a delete exchange (the peer would not know them).
//!   - `keep`: an IKE SA of the same connection from another address is
//!     established (or rekeying): the new one is refused with
//!     AUTHENTICATION_FAILED. From the same address both stay (it may be
//!     a reauthentication).
//!   - `replace`: the established ones of the same connection are
//!     deleted (a delete exchange); from the same address only 10 s later,
//!     so that a reauthenticating peer can move its traffic first.
//!   - `no` without INITIAL_CONTACT, `never`: nothing.
//!
//! What goes happens once the answer to IKE_AUTH is sent ([`Dups`] rides
//! with the held answer; `Effect::Duplicates`), not before the new Child
//! SA is installed as charon does: the new Child SA takes over the old
//! one's reqid and policies (as a reauthentication's does, `reqids`), so
//! removing the old one afterwards removes only its SAs, the policies
//! never flap, and its outbound SA goes in just before the old one's goes
//! (the endpoint's handover).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::config::{PeerCfg, Unique};
use super::timers::IkeTimer;
use super::types::IkeSaId;
use crate::wire::Identification;

/// `replace` with a new IKE SA from the address of the old one: charon
/// deletes the old one this much later (a suspected reauthentication).
pub(crate) const REPLACE_DELAY: Duration = Duration::from_secs(10);

/// The key of the index: our identity, the peer's, the peer's family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Pair {
    pub(crate) local: Identification,
    pub(crate) remote: Identification,
    pub(crate) v6: bool,
}

impl Pair {
    /// The pair of an IKE SA with a peer at `remote`.
    pub(crate) fn new(local: Identification, remote: Identification, peer: IpAddr) -> Self {
        Pair {
            local,
            remote,
            v6: peer.is_ipv6(),
        }
    }
}

/// An established IKE SA in the index.
#[derive(Debug, Clone)]
pub(crate) struct Contact {
    pub(crate) ike: IkeSaId,
    /// Its peer configuration (compared by name: a reload makes new ones).
    pub(crate) peer: Arc<PeerCfg>,
    pub(crate) remote: IpAddr,
    /// Established or rekeying (not being deleted, not replaced by a
    /// rekey): what `keep` and `replace` look at.
    pub(crate) live: bool,
}

/// What the index knows of one SA, to see whether it changed
/// (`Endpoint::settle` runs at every input: building a [`Pair`] each
/// time would clone two identities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) live: bool,
    pub(crate) remote: IpAddr,
}

/// The established IKE SAs by identity pair.
#[derive(Debug, Default)]
pub(crate) struct Contacts {
    by_pair: HashMap<Pair, Vec<Contact>>,
    seen: HashMap<IkeSaId, Seen>,
}

impl Contacts {
    /// What the index holds of `ike`, if anything.
    pub(crate) fn seen(&self, ike: IkeSaId) -> Option<Seen> {
        self.seen.get(&ike).copied()
    }

    /// Puts `c` under `pair`, replacing what was there of its SA.
    pub(crate) fn set(&mut self, pair: Pair, c: Contact) {
        self.seen.insert(
            c.ike,
            Seen {
                live: c.live,
                remote: c.remote,
            },
        );
        let list = self.by_pair.entry(pair).or_default();
        match list.iter_mut().find(|x| x.ike == c.ike) {
            Some(x) => *x = c,
            None => list.push(c),
        }
    }

    /// `ike` (under `pair`) is gone.
    pub(crate) fn remove(&mut self, pair: &Pair, ike: IkeSaId) {
        if self.seen.remove(&ike).is_none() {
            return;
        }
        if let Some(list) = self.by_pair.get_mut(pair) {
            list.retain(|c| c.ike != ike);
            if list.is_empty() {
                self.by_pair.remove(pair);
            }
        }
    }

    /// The IKE SAs of `pair`.
    pub(crate) fn of(&self, pair: &Pair) -> &[Contact] {
        self.by_pair.get(pair).map_or(&[], Vec::as_slice)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

/// What happens to the other IKE SAs of the pair once the new one's
/// IKE_AUTH answer is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dups {
    /// INITIAL_CONTACT: all of them go, without a delete exchange.
    Destroy,
    /// `replace`: the live ones of the same connection are deleted.
    Replace,
}

/// The responder's decision once the peer is authenticated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Go on; then, if any, this for the others (at `Instant`, the time of
    /// the decision, for their delete's timers).
    Go(Option<(Dups, Instant)>),
    /// `keep`: refuse the new IKE SA.
    Refuse,
}

/// charon's `check_uniqueness` for a new IKE SA of `peer` between `pair`
/// (from `remote`), at `now`.
pub(crate) fn decide(
    contacts: &Contacts,
    peer: &PeerCfg,
    pair: &Pair,
    remote: IpAddr,
    initial_contact: bool,
    now: Instant,
) -> Decision {
    let policy = peer.behaviour.unique;
    match policy {
        Unique::Never => return Decision::Go(None),
        _ if initial_contact => return Decision::Go(Some((Dups::Destroy, now))),
        Unique::No => return Decision::Go(None),
        Unique::Keep | Unique::Replace => {}
    }
    let same_conn = contacts
        .of(pair)
        .iter()
        .filter(|c| c.live && c.peer.name == peer.name);
    if policy == Unique::Keep {
        // From the same address both stay: a reauthentication.
        return if same_conn.clone().any(|c| c.remote != remote) {
            Decision::Refuse
        } else {
            Decision::Go(None)
        };
    }
    if same_conn.clone().next().is_some() {
        Decision::Go(Some((Dups::Replace, now)))
    } else {
        Decision::Go(None)
    }
}

impl super::ike_sa::IkeSa {
    /// Its identity pair, once both identities are known.
    pub(crate) fn pair(&self) -> Option<Pair> {
        Some(Pair::new(
            self.local_id.clone()?,
            self.remote_id.clone()?,
            self.remote.ip(),
        ))
    }

    /// What the index should hold of it: nothing before IKE_AUTH is done
    /// (or once it is dead).
    pub(crate) fn seen(&self) -> Option<Seen> {
        use super::ike_sa::Phase;
        let live = match self.phase {
            Phase::Established | Phase::Rekeying => true,
            Phase::Rekeyed | Phase::Deleting { .. } => false,
            Phase::InitSent(_) | Phase::AwaitSpi(_) | Phase::AuthSent(_) | Phase::HalfOpen(_) => {
                return None;
            }
        };
        (!self.is_dead() && self.local_id.is_some() && self.remote_id.is_some()).then_some(Seen {
            live,
            remote: self.remote.ip(),
        })
    }
}

impl super::ike_sa::IkeSa {
    /// An older IKE SA of the identity pair of IKE SA `new`, which
    /// answered its IKE_AUTH from `remote` as `dups` says (at `now`).
    pub(crate) fn duplicate_of(
        &mut self,
        ctx: &mut super::endpoint::Ctx,
        new: IkeSaId,
        remote: IpAddr,
        dups: Dups,
        now: Instant,
    ) {
        let peer_id = self
            .remote_id
            .as_ref()
            .map(|i| super::ike_sa::IdDisplay(i).to_string())
            .unwrap_or_default();
        match dups {
            Dups::Destroy => {
                info!(
                    "IKE SA {}: '{peer_id}' sent INITIAL_CONTACT in IKE SA {new}, removing this \
                     one without a delete (the peer no longer knows it)",
                    self.name()
                );
                self.deleted(ctx, false);
            }
            Dups::Replace if self.remote.ip() == remote => {
                let at = super::ike_sa::later(now, REPLACE_DELAY);
                info!(
                    "IKE SA {}: '{peer_id}' made IKE SA {new} from the same address \
                     (unique = replace; a reauthentication?), deleting this one in {}s",
                    self.name(),
                    REPLACE_DELAY.as_secs()
                );
                if self.timers.get(IkeTimer::Expire).is_none_or(|t| t > at) {
                    self.timers.arm(IkeTimer::Expire, at);
                }
                self.reauth.superseded = true;
            }
            Dups::Replace => {
                info!(
                    "IKE SA {}: '{peer_id}' made IKE SA {new} from {remote} (unique = replace), \
                     deleting this one",
                    self.name()
                );
                self.terminate(ctx, now);
            }
        }
    }
}

/// Initiator: whether IKE_AUTH carries INITIAL_CONTACT.
pub(crate) fn send_initial_contact(contacts: &Contacts, peer: &PeerCfg, pair: &Pair) -> bool {
    peer.behaviour.unique != Unique::Never && contacts.of(pair).is_empty()
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

    fn pair() -> Pair {
        Pair {
            local: id("moon"),
            remote: id("sun"),
            v6: false,
        }
    }

    fn peer(name: &str, unique: Unique) -> Arc<PeerCfg> {
        let mut p = super::super::tests::harness::left_cfg();
        p.name = name.into();
        p.behaviour.unique = unique;
        Arc::new(p)
    }

    fn contact(ike: u64, peer: &Arc<PeerCfg>, remote: [u8; 4], live: bool) -> Contact {
        Contact {
            ike: IkeSaId(ike),
            peer: peer.clone(),
            remote: IpAddr::from(remote),
            live,
        }
    }

    #[test]
    fn the_index_follows_set_and_remove() {
        let mut c = Contacts::default();
        let p = peer("gw", Unique::No);
        c.set(pair(), contact(1, &p, [10, 0, 0, 1], true));
        c.set(pair(), contact(2, &p, [10, 0, 0, 1], true));
        c.set(pair(), contact(1, &p, [10, 0, 0, 2], false));
        assert_eq!(c.of(&pair()).len(), 2);
        assert_eq!(
            c.seen(IkeSaId(1)),
            Some(Seen {
                live: false,
                remote: IpAddr::from([10, 0, 0, 2])
            })
        );
        c.remove(&pair(), IkeSaId(1));
        c.remove(&pair(), IkeSaId(1));
        assert_eq!(c.of(&pair()).len(), 1);
        c.remove(&pair(), IkeSaId(2));
        assert!(c.of(&pair()).is_empty());
        assert_eq!(c.len(), 0);
        assert!(c.by_pair.is_empty());
    }

    #[test]
    // A real instant, only compared with itself (the engine reads none).
    #[allow(clippy::disallowed_methods)]
    fn decisions_as_charons_check_uniqueness() {
        let now = Instant::now();
        let here = IpAddr::from([10, 0, 0, 1]);
        let there = IpAddr::from([10, 0, 0, 9]);
        let go = |d| Decision::Go(Some((d, now)));
        for (unique, ic, others, from, want) in [
            // Never: nothing, even with INITIAL_CONTACT.
            (
                Unique::Never,
                true,
                vec![(here, true)],
                there,
                Decision::Go(None),
            ),
            // INITIAL_CONTACT: destroy, whatever the policy and others.
            (Unique::No, true, vec![], there, go(Dups::Destroy)),
            (
                Unique::Keep,
                true,
                vec![(there, true)],
                here,
                go(Dups::Destroy),
            ),
            (
                Unique::No,
                false,
                vec![(there, true)],
                here,
                Decision::Go(None),
            ),
            // Keep: refuse only against a live one from another address.
            (
                Unique::Keep,
                false,
                vec![(there, true)],
                here,
                Decision::Refuse,
            ),
            (
                Unique::Keep,
                false,
                vec![(here, true)],
                here,
                Decision::Go(None),
            ),
            (
                Unique::Keep,
                false,
                vec![(there, false)],
                here,
                Decision::Go(None),
            ),
            // Replace: any live one of the connection.
            (
                Unique::Replace,
                false,
                vec![(here, true)],
                here,
                go(Dups::Replace),
            ),
            (
                Unique::Replace,
                false,
                vec![(there, false)],
                here,
                Decision::Go(None),
            ),
            (Unique::Replace, false, vec![], here, Decision::Go(None)),
        ] {
            let p = peer("gw", unique);
            let mut c = Contacts::default();
            for (i, (addr, live)) in others.iter().enumerate() {
                let n = u64::try_from(i).unwrap_or(0) + 1;
                let o = match addr {
                    IpAddr::V4(a) => a.octets(),
                    IpAddr::V6(_) => [0; 4],
                };
                c.set(pair(), contact(n, &p, o, *live));
            }
            assert_eq!(
                decide(&c, &p, &pair(), from, ic, now),
                want,
                "{unique:?} ic={ic} {others:?} from {from}"
            );
        }
        // Other connections of the pair count only for INITIAL_CONTACT.
        let mut c = Contacts::default();
        let other = peer("other", Unique::No);
        c.set(pair(), contact(1, &other, [10, 0, 0, 9], true));
        let p = peer("gw", Unique::Keep);
        assert_eq!(
            decide(&c, &p, &pair(), here, false, now),
            Decision::Go(None)
        );
        let p = peer("gw", Unique::Replace);
        assert_eq!(
            decide(&c, &p, &pair(), here, false, now),
            Decision::Go(None)
        );
    }

    #[test]
    fn initial_contact_only_without_contact_and_unless_never() {
        let mut c = Contacts::default();
        let p = peer("gw", Unique::No);
        assert!(send_initial_contact(&c, &p, &pair()));
        assert!(!send_initial_contact(
            &c,
            &peer("gw", Unique::Never),
            &pair()
        ));
        c.set(pair(), contact(1, &p, [10, 0, 0, 1], false));
        assert!(!send_initial_contact(&c, &p, &pair()));
        let v6 = Pair { v6: true, ..pair() };
        assert!(send_initial_contact(&c, &p, &v6));
    }
}
