//! The exchange window of an IKE SA (RFC 7296 2.3; strongSwan's task
//! manager is the model): both directions of message IDs, window size 1
//! each way.
//!
//! - Ours: the message ID of our next request, the one request in flight
//!   (its octets for retransmission, every fragment if it went in
//!   fragments, how often and when next, and the
//!   [`Task`] that handles its answer), and the queue of tasks waiting
//!   for it to be answered.
//! - The peer's: the message ID we expect next, the fingerprint of its
//!   last request (of its fragment 1 if it came in fragments) and our
//!   cached answer to it, all its fragments if any (a retransmission, same
//!   ID and same octets, gets the cached answer again), and the one answer
//!   we hold back ([`Held`]): a request of the peer's whose answer waits
//!   for outside operations. While an answer is held, further requests
//!   are dropped (the peer retransmits them).
//!
//! Every message an IKE SA sends goes through here; the IKE SA seals it
//! and hands it to the endpoint (`IkeSa::send_request`, `send_response`,
//! `send_oneshot`). IKE_SA_INIT sends in the clear but uses the same
//! in-flight slot.
//!
//! Memory: an idle SA holds no boxes here; the request in flight and the
//! held answer are boxed because most of the time there is none.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::child_create::{CreateChild, PendingChild};
use super::frag::Packets;
use super::ike_rekey::RekeyIke;
use super::types::{ChildId, IkeSaId, Transmit};
use crate::wire::Payload;
use crate::wire::codes::{ExchangeType, ProtocolId};

/// An exchange we initiate.
#[derive(Debug)]
pub(crate) enum Task {
    IkeInit,
    IkeAuth,
    CreateChild(CreateChild),
    RekeyIke(RekeyIke),
    DeleteIke,
    DeleteChild(ChildId),
    /// Deletes the peer's half of a Child SA we refused (its answer did not
    /// suit us): D with our inbound SPI, which the peer knows.
    DeleteRejected {
        protocol: ProtocolId,
        spi: u32,
    },
    Liveness,
    /// MOBIKE's UPDATE_SA_ADDRESSES with its COOKIE2 (`sa::mobike`).
    UpdateAddresses {
        cookie2: [u8; 16],
    },
    /// A gateway's REDIRECT of an established IKE SA (`sa::redirect`).
    Redirect(Box<super::redirect::Gateway>),
}

/// Our request in flight.
#[derive(Debug)]
pub(crate) struct Outstanding {
    pub(crate) mid: u32,
    pub(crate) task: Task,
    pub(crate) bytes: Packets,
    pub(crate) retransmits: u32,
    pub(crate) next: Instant,
}

/// A request of the peer's whose answer waits for outside operations.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) mid: u32,
    pub(crate) exchange: ExchangeType,
    pub(crate) waits: Waits,
}

/// What a held answer waits for, and what it is made of.
#[derive(Debug)]
pub(crate) enum Waits {
    /// The Child SA the answer brings (IKE_AUTH, CREATE_CHILD_SA): its
    /// inbound SPI from the kernel, then its install; the answer is built
    /// then (`child_create`).
    Child(PendingChild),
    /// This many outbound SAs of successors of the Child SAs the peer
    /// deletes (`child_rekey::hand_over`); the answer (`inner`) is ready.
    /// The peer removes the old inbound SAs when it has the answer.
    Outbound { inner: Vec<Payload>, left: usize },
    /// The outbound SAs of these Child SAs of other IKE SAs (a
    /// reauthentication's, which took over the reqids of the Child SAs of
    /// the IKE SA the peer deletes); the answer is sealed and cached. Its
    /// IKE SA is gone by then: the endpoint holds it (`Endpoint::held`).
    Handover {
        transmit: Transmit,
        children: Vec<(IkeSaId, ChildId)>,
    },
    /// The CRLs the peer's certificate needs (IKE_AUTH, responder): the
    /// request waits in the handshake (`ike_auth::await_crls`), and is
    /// taken up again when the fetch answers.
    Crl,
    /// Public-key work (IKE_AUTH, responder: the peer's AUTH checked, or
    /// ours signed): the request waits in the handshake
    /// (`ike_auth::await_compute`), and is taken up again when the job
    /// answers.
    Compute,
    /// The key exchange of the peer's CREATE_CHILD_SA request (a Child
    /// SA with PFS, an IKE rekey): the request, taken up again with the
    /// result (`create_ke`).
    Ke(Box<crate::wire::Message>),
    /// An EAP method's outside operation (IKE_AUTH, responder: a RADIUS
    /// round trip): the answer is built when it answers
    /// (`eap_auth::eap_resumed`).
    Eap,
}

impl Held {
    /// The outbound SA of `child` of `ike` is in (or failed): whether the
    /// answer can go now.
    pub(crate) fn outbound_in(&mut self, ike: IkeSaId, child: ChildId) -> bool {
        match &mut self.waits {
            Waits::Child(_) | Waits::Crl | Waits::Compute | Waits::Ke(_) | Waits::Eap => false,
            Waits::Outbound { left, .. } => {
                *left = left.saturating_sub(1);
                *left == 0
            }
            Waits::Handover { children, .. } => {
                children.retain(|w| *w != (ike, child));
                children.is_empty()
            }
        }
    }
}

/// A request of the peer's as the window sees it before it is decrypted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// The one we expect.
    Next,
    /// A retransmission of the last one, answered already (the cached
    /// answer, if any, goes again).
    Retransmit,
    /// Not the one we expect (which is given).
    Unexpected(u32),
    /// The one we expect, but the answer to the previous one is held.
    Busy,
}

/// What a timeout does to our request in flight.
#[derive(Debug)]
pub(crate) enum Due {
    /// Nothing (none in flight, or not yet).
    Nothing,
    /// Send these octets again: retransmission `n` of request `mid`.
    Resend { n: u32, mid: u32, bytes: Packets },
    /// The retransmissions ran out: the task of the request.
    GiveUp(Task),
}

/// Both directions of an IKE SA's exchanges.
#[derive(Debug)]
pub(crate) struct Window {
    /// Message ID of our next request.
    next_mid: u32,
    /// (Boxed: 128 bytes an idle SA need not carry.)
    outstanding: Option<Box<Outstanding>>,
    /// Our tasks waiting for the request in flight to be answered.
    pub(crate) queue: VecDeque<Task>,
    /// Message ID of the peer's next request.
    peer_mid: u32,
    /// The peer's last request's SHA-256: the request itself is not
    /// needed, only whether a retransmission is the same.
    last_request: Option<[u8; 32]>,
    /// Our answer to it.
    cached_response: Option<Packets>,
    /// (Boxed, as the other state an SA has only for a while.)
    held: Option<Box<Held>>,
}

impl Window {
    /// A window expecting the peer's request `peer_mid` first (1 for a
    /// responder, whose IKE_SA_INIT is answered statelessly).
    pub(crate) fn new(peer_mid: u32) -> Self {
        Self {
            next_mid: 0,
            outstanding: None,
            queue: VecDeque::new(),
            peer_mid,
            last_request: None,
            cached_response: None,
            held: None,
        }
    }

    /// The message ID our next request gets.
    pub(crate) fn next_mid(&self) -> u32 {
        self.next_mid
    }

    /// Our request `mid` went out: it is in flight until answered,
    /// retransmitted at `next`.
    pub(crate) fn request_sent(&mut self, mid: u32, task: Task, bytes: Packets, next: Instant) {
        self.next_mid = mid.wrapping_add(1);
        self.outstanding = Some(Box::new(Outstanding {
            mid,
            task,
            bytes,
            retransmits: 0,
            next,
        }));
    }

    /// A request that goes out without an answer awaited: takes its
    /// message ID. For a last word before the IKE SA goes
    /// (AUTHENTICATION_FAILED, a delete of a half-made SA): nothing is
    /// left to handle an answer or to retransmit, and no other request
    /// may be in flight for long (the SA is torn down right after).
    pub(crate) fn oneshot(&mut self) -> u32 {
        let mid = self.next_mid;
        self.next_mid = mid.wrapping_add(1);
        mid
    }

    /// IKE_SA_INIT (message ID 0) is answered: our next request is 1.
    pub(crate) fn init_answered(&mut self) {
        self.outstanding = None;
        self.next_mid = 1;
    }

    /// Our request in flight.
    pub(crate) fn outstanding(&self) -> Option<&Outstanding> {
        self.outstanding.as_deref()
    }

    /// The task of our request in flight.
    pub(crate) fn in_flight(&self) -> Option<&Task> {
        self.outstanding.as_ref().map(|o| &o.task)
    }

    /// Whether a response with this message ID answers our request in
    /// flight.
    pub(crate) fn expects_response(&self, mid: u32) -> bool {
        self.outstanding.as_ref().is_some_and(|o| o.mid == mid)
    }

    /// Our request in flight is answered (or moot): takes it.
    pub(crate) fn take_outstanding(&mut self) -> Option<Box<Outstanding>> {
        self.outstanding.take()
    }

    /// When our request in flight is due for retransmission.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.outstanding.as_ref().map(|o| o.next)
    }

    /// Our request in flight at `now`: retransmitted after `backoff(n)`
    /// for the `n`th time, up to `tries` times, then given up.
    pub(crate) fn timeout(
        &mut self,
        now: Instant,
        tries: u32,
        backoff: impl FnOnce(u32) -> Duration,
    ) -> Due {
        let Some(out) = self.outstanding.as_mut() else {
            return Due::Nothing;
        };
        if out.next > now {
            return Due::Nothing;
        }
        if out.retransmits < tries {
            out.retransmits = out.retransmits.saturating_add(1);
            out.next = super::ike_sa::later(now, backoff(out.retransmits));
            return Due::Resend {
                n: out.retransmits,
                mid: out.mid,
                bytes: out.bytes.clone(),
            };
        }
        match self.outstanding.take() {
            Some(o) => Due::GiveUp(o.task),
            None => Due::Nothing,
        }
    }

    /// The peer's request `mid` (octets `bytes`, not yet decrypted).
    pub(crate) fn incoming(&self, mid: u32, bytes: &[u8]) -> Incoming {
        if mid == self.peer_mid.wrapping_sub(1)
            && self.last_request == Some(crate::crypto::fingerprint(bytes))
        {
            return Incoming::Retransmit;
        }
        if mid != self.peer_mid {
            return Incoming::Unexpected(self.peer_mid);
        }
        if self.held.is_some() {
            return Incoming::Busy;
        }
        Incoming::Next
    }

    /// The peer's request is authentic: its retransmissions are
    /// recognised from now on.
    pub(crate) fn accept(&mut self, bytes: &[u8]) {
        self.accept_fingerprint(crate::crypto::fingerprint(bytes));
    }

    /// As [`Window::accept`], with the request's (or for a fragmented
    /// one, its fragment 1's) fingerprint.
    pub(crate) fn accept_fingerprint(&mut self, fingerprint: [u8; 32]) {
        self.last_request = Some(fingerprint);
    }

    /// Our answer to the peer's last request.
    pub(crate) fn cached_response(&self) -> Option<&Packets> {
        self.cached_response.as_ref()
    }

    /// We answered the peer's request `mid` with `bytes`.
    pub(crate) fn answered(&mut self, mid: u32, bytes: Packets) {
        self.cached_response = Some(bytes);
        self.peer_mid = mid.wrapping_add(1);
    }

    /// Holds back the answer to the peer's request in `held`.
    pub(crate) fn hold(&mut self, held: Held) {
        self.held = Some(Box::new(held));
    }

    /// The answer held back, if any.
    pub(crate) fn held(&self) -> Option<&Held> {
        self.held.as_deref()
    }

    pub(crate) fn held_mut(&mut self) -> Option<&mut Held> {
        self.held.as_deref_mut()
    }

    /// The Child SA the held answer waits for, if it does.
    pub(crate) fn held_child(&self) -> Option<ChildId> {
        match self.held.as_deref().map(|h| &h.waits) {
            Some(Waits::Child(p)) => Some(p.child),
            _ => None,
        }
    }

    /// Releases the held answer.
    pub(crate) fn take_held(&mut self) -> Option<Held> {
        self.held.take().map(|h| *h)
    }

    /// The SA goes: nothing in flight, queued or held any more.
    pub(crate) fn clear(&mut self) {
        self.outstanding = None;
        self.queue.clear();
        self.held = None;
    }
}

#[cfg(test)]
// A test's base instant: the code under test only compares instants it is
// given, so any one will do (ike/clippy.toml forbids reading the clock).
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn retransmits_then_gives_up() {
        let t0 = Instant::now();
        let mut w = Window::new(0);
        assert_eq!(w.next_mid(), 0);
        w.request_sent(0, Task::Liveness, Packets::One(vec![1, 2]), t0);
        assert_eq!(w.next_mid(), 1);
        assert!(w.expects_response(0) && !w.expects_response(1));
        let step = |n: u32| Duration::from_secs(u64::from(n));
        assert!(matches!(
            w.timeout(t0, 2, step),
            Due::Resend { n: 1, mid: 0, .. }
        ));
        assert_eq!(w.deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(matches!(w.timeout(t0, 2, step), Due::Nothing));
        let t1 = t0 + Duration::from_secs(1);
        assert!(matches!(w.timeout(t1, 2, step), Due::Resend { n: 2, .. }));
        let t2 = t1 + Duration::from_secs(2);
        assert!(matches!(
            w.timeout(t2, 2, step),
            Due::GiveUp(Task::Liveness)
        ));
        assert!(w.outstanding().is_none() && w.deadline().is_none());
    }

    #[test]
    fn the_peers_requests_in_order_retransmissions_from_the_cache() {
        let mut w = Window::new(1);
        assert_eq!(w.incoming(0, b"x"), Incoming::Unexpected(1));
        assert_eq!(w.incoming(1, b"a"), Incoming::Next);
        w.accept(b"a");
        w.answered(1, Packets::One(vec![7]));
        assert_eq!(w.incoming(1, b"a"), Incoming::Retransmit);
        assert_eq!(w.cached_response(), Some(&Packets::One(vec![7])));
        // Same ID, other octets: not ours to answer again.
        assert_eq!(w.incoming(1, b"b"), Incoming::Unexpected(2));
        w.hold(Held {
            mid: 2,
            exchange: ExchangeType::INFORMATIONAL,
            waits: Waits::Outbound {
                inner: Vec::new(),
                left: 2,
            },
        });
        assert_eq!(w.incoming(2, b"c"), Incoming::Busy);
        let h = w.held_mut().map(|h| h.outbound_in(IkeSaId(1), ChildId(1)));
        assert_eq!(h, Some(false));
        let h = w.held_mut().map(|h| h.outbound_in(IkeSaId(1), ChildId(2)));
        assert_eq!(h, Some(true));
        assert!(w.take_held().is_some());
        assert_eq!(w.incoming(2, b"c"), Incoming::Next);
    }

    #[test]
    fn a_handed_over_answer_waits_for_each_child() {
        let t = Transmit {
            local: "192.0.2.1:500".parse().unwrap(),
            remote: "192.0.2.2:500".parse().unwrap(),
            payload: vec![1],
        };
        let mut h = Held {
            mid: 3,
            exchange: ExchangeType::INFORMATIONAL,
            waits: Waits::Handover {
                transmit: t,
                children: vec![(IkeSaId(2), ChildId(5)), (IkeSaId(2), ChildId(6))],
            },
        };
        assert!(!h.outbound_in(IkeSaId(1), ChildId(5)));
        assert!(!h.outbound_in(IkeSaId(2), ChildId(5)));
        assert!(h.outbound_in(IkeSaId(2), ChildId(6)));
    }

    #[test]
    fn a_oneshot_takes_a_message_id_and_leaves_nothing_in_flight() {
        let mut w = Window::new(0);
        w.init_answered();
        assert_eq!(w.oneshot(), 1);
        assert_eq!(w.next_mid(), 2);
        assert!(w.outstanding().is_none());
    }
}
