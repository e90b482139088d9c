//! IKE fragmentation (RFC 7383) of an IKE SA's encrypted messages.
//!
//! Sending: with `fragmentation = yes` and the peer's
//! IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (or `force`, whatever the
//! peer said), an encrypted message whose datagram would be larger than
//! the fragment size goes as Encrypted Fragment messages
//! ([`Message::emit_fragments`]); the window keeps them all
//! ([`Packets`]): a retransmission or a cached answer sends every one
//! again, unchanged. IKE_SA_INIT is never fragmented.
//!
//! Receiving: fragments are reassembled whatever our setting says (as
//! strongSwan does), one message per direction and IKE SA at a time: the
//! peer's request the window expects, or the answer to our request in
//! flight. Each fragment's ICV is checked before it is kept
//! ([`Reassembler`]). Limits: per message [`ReassemblyLimits::message`]
//! (fragments, octets), per partial message a timeout since its last new
//! fragment, and one budget of octets held in partial messages across
//! all IKE SAs ([`Budget`]): a fragment that would go over it is dropped.
//! A partial message goes when it completes, times out, fails, is
//! overtaken by another message ID, or its IKE SA goes.
//!
//! A retransmitted fragmented request is recognised by its fragment 1
//! (the window keeps that datagram's fingerprint): it gets the cached
//! answer again; its other fragments are dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tracing::debug;

use super::config::{Fragmentation, MIN_FRAGMENT_SIZE};
use super::endpoint::Ctx;
use super::ike_sa::{IkeSa, later};
use crate::wire::{FragmentLimits, Message, Payload, Reassembler};

/// Bounds on reassembling the peer's fragmented messages
/// ([`EndpointConfig::reassembly`](super::EndpointConfig::reassembly)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Per message: most fragments, most octets of contents.
    pub message: FragmentLimits,
    /// Most octets held in partial messages of all IKE SAs together, each
    /// fragment counted with [`FRAGMENT_OVERHEAD`] more.
    pub budget: usize,
    /// A partial message that got no new fragment for this long goes.
    pub timeout: Duration,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        Self {
            message: FragmentLimits::default(),
            budget: 8 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What a kept fragment costs besides its contents, for the budget
/// (its map entry and allocation).
pub const FRAGMENT_OVERHEAD: usize = 64;

/// IP header (IPv4, IPv6) and UDP header octets in front of an IKE
/// message, and the non-ESP marker on the NAT-T port.
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const UDP_HEADER: usize = 8;
const NON_ESP_MARKER: usize = 4;

/// The most octets of an IKE message (fragment) sent from `local` to
/// `remote` in an IP datagram of `fragment_size` octets (0: 576 for IPv4,
/// 1280 for IPv6; at least [`MIN_FRAGMENT_SIZE`]). As strongSwan: no IP
/// options or extension headers; the non-ESP marker counted unless both
/// ports are 500 (strongSwan: unless either is).
pub(crate) fn max_message_len(
    fragment_size: usize,
    local: SocketAddr,
    remote: SocketAddr,
) -> usize {
    let v4 = remote.is_ipv4();
    let size = match fragment_size {
        0 if v4 => 576,
        0 => 1280,
        n => n.max(MIN_FRAGMENT_SIZE),
    };
    let ip = if v4 { IPV4_HEADER } else { IPV6_HEADER };
    let marker = if local.port() == 500 && remote.port() == 500 {
        0
    } else {
        NON_ESP_MARKER
    };
    size.saturating_sub(ip.saturating_add(UDP_HEADER).saturating_add(marker))
}

/// One message as sent: a datagram, or its fragments in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Packets {
    One(Vec<u8>),
    Fragments(Box<[Vec<u8>]>),
}

impl Packets {
    /// The datagrams, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Vec<u8>> {
        let s: &[Vec<u8>] = match self {
            Self::One(b) => std::slice::from_ref(b),
            Self::Fragments(f) => f,
        };
        s.iter()
    }
}

/// The octets held in partial messages of all IKE SAs (shared by the
/// endpoint's SAs; each partial message gives back its share when it goes).
#[derive(Debug, Default)]
pub(crate) struct Budget {
    used: AtomicUsize,
}

impl Budget {
    /// Octets held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// A partial message's share of the [`Budget`], given back when dropped.
#[derive(Debug)]
struct Charge {
    pool: Arc<Budget>,
    held: usize,
}

impl Charge {
    fn set(&mut self, held: usize) {
        if held >= self.held {
            self.pool
                .used
                .fetch_add(held.saturating_sub(self.held), Ordering::Relaxed);
        } else {
            self.pool
                .used
                .fetch_sub(self.held.saturating_sub(held), Ordering::Relaxed);
        }
        self.held = held;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// A message of the peer's being reassembled.
#[derive(Debug)]
struct Partial {
    mid: u32,
    reassembler: Reassembler,
    /// Fragment 1's Total Fragments and fingerprint (the window recognises
    /// a retransmitted request by it).
    first: Option<(u16, [u8; 32])>,
    /// When it goes if no new fragment comes.
    expires: Instant,
    charge: Charge,
}

/// The messages of the peer's an IKE SA is reassembling. (Whether both
/// sides support fragmentation is `IkeSa::fragmentation`, a bool that
/// packs with the SA's others.)
#[derive(Debug, Default)]
pub(crate) struct Frag {
    /// (Boxed: rarely any.)
    partial: Option<Box<Partials>>,
}

/// The peer's request being reassembled, and the answer to our request.
#[derive(Debug, Default)]
struct Partials {
    request: Option<Partial>,
    response: Option<Partial>,
}

impl Partials {
    fn both(&self) -> impl Iterator<Item = &Partial> {
        [&self.request, &self.response].into_iter().flatten()
    }
}

impl Frag {
    /// When the first partial message times out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.partial.as_ref()?.both().map(|p| p.expires).min()
    }

    /// Drops partial messages whose time is up.
    pub(crate) fn expire(&mut self, now: Instant, name: &str) {
        let Some(partial) = self.partial.as_mut() else {
            return;
        };
        for slot in [&mut partial.request, &mut partial.response] {
            if let Some(p) = slot.take_if(|p| p.expires <= now) {
                debug!(
                    "{name}: dropping {} of {} fragments of message {} (no new one for a while)",
                    p.reassembler.len(),
                    p.first.map_or_else(|| "?".into(), |(t, _)| t.to_string()),
                    p.mid
                );
            }
        }
        self.tidy();
    }

    /// Gives back the box once nothing is in it.
    fn tidy(&mut self) {
        if self
            .partial
            .as_ref()
            .is_some_and(|p| p.request.is_none() && p.response.is_none())
        {
            self.partial = None;
        }
    }

    /// Drops every partial message.
    pub(crate) fn clear(&mut self) {
        self.partial = None;
    }

    /// Fragments held in partial messages (tests).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.partial
            .as_ref()
            .map_or(0, |p| p.both().map(|p| p.reassembler.len()).sum())
    }
}

impl IkeSa {
    /// Whether we send oversized encrypted messages in fragments, and the
    /// most octets of each.
    pub(crate) fn fragment_len(&self, ctx: &Ctx) -> Option<usize> {
        let send = match self.peer.fragmentation {
            Fragmentation::Force => true,
            Fragmentation::Yes => self.fragmentation,
            Fragmentation::Accept | Fragmentation::No => false,
        };
        send.then(|| max_message_len(ctx.cfg.fragment_size, self.local, self.remote))
    }

    /// A fragment (`msg`, parsed from `bytes`) of the peer's request
    /// `msg.header.message_id` the window expects, or (`response`) of the
    /// answer to our request in flight. Once all are in: the message, its
    /// SK contents open, and the fingerprint of its fragment 1.
    pub(crate) fn defragment(
        &mut self,
        ctx: &Ctx,
        now: Instant,
        response: bool,
        msg: &Message,
        bytes: &[u8],
    ) -> Option<(Message, [u8; 32])> {
        let name = self.name();
        let mid = msg.header.message_id;
        let Some(Payload::Skf(f)) = msg.payloads.last() else {
            return None;
        };
        let (number, total) = (f.number, f.total);
        let keys = self.keys.as_ref()?;
        let limits = ctx.cfg.reassembly;
        let partials = self.frag.partial.get_or_insert_with(Default::default);
        let slot = if response {
            &mut partials.response
        } else {
            &mut partials.request
        };
        // Overtaken by another message, or timed out.
        if slot
            .as_ref()
            .is_some_and(|p| p.mid != mid || p.expires <= now)
        {
            *slot = None;
        }
        let cost = bytes.len().saturating_add(FRAGMENT_OVERHEAD);
        if ctx.frag_budget.used().saturating_add(cost) > limits.budget {
            debug!(
                "{name}: dropping fragment {number}/{total} of message {mid}: {} octets held in partial messages, the limit is {}",
                ctx.frag_budget.used(),
                limits.budget
            );
            self.frag.tidy();
            return None;
        }
        let partial = slot.get_or_insert_with(|| Partial {
            mid,
            reassembler: Reassembler::new(limits.message, ctx.cfg.limits),
            first: None,
            expires: now,
            charge: Charge {
                pool: ctx.frag_budget.clone(),
                held: 0,
            },
        });
        let before = partial.reassembler.len();
        let result = partial
            .reassembler
            .push(bytes, keys.ciphers.inbound.as_ref());
        let fp = || crate::crypto::fingerprint(bytes);
        let done = match result {
            Ok(done) => {
                // Kept (or restarted by a larger Total Fragments).
                let restarted = partial.first.is_some_and(|(t, _)| t != total);
                if number == 1 && (partial.first.is_none() || restarted) {
                    partial.first = Some((total, fp()));
                } else if restarted {
                    partial.first = None;
                }
                if done.is_some() || partial.reassembler.len() != before || restarted {
                    partial.expires = later(now, limits.timeout);
                }
                done
            }
            Err(e) => {
                debug!("{name}: dropping fragment {number}/{total} of message {mid}: {e}");
                None
            }
        };
        let held = partial
            .reassembler
            .bytes()
            .saturating_add(partial.reassembler.len().saturating_mul(FRAGMENT_OVERHEAD));
        partial.charge.set(held);
        let first = partial.first.map(|(_, f)| f);
        if done.is_some() || partial.reassembler.is_empty() {
            *slot = None;
        }
        self.frag.tidy();
        let m = done?;
        debug!("{name}: message {mid} reassembled from {total} fragments");
        Some((m, first.unwrap_or_else(fp)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_ike_message_fits_the_ip_datagram_as_strongswan_counts() {
        let v4 = (at("192.0.2.1:500"), at("192.0.2.2:500"));
        assert_eq!(max_message_len(1280, v4.0, v4.1), 1280 - 20 - 8);
        assert_eq!(max_message_len(0, v4.0, v4.1), 576 - 28);
        let natt = (at("192.0.2.1:4500"), at("192.0.2.2:4500"));
        assert_eq!(max_message_len(1280, natt.0, natt.1), 1280 - 28 - 4);
        // Behind a NAT that maps 4500 to another port: still the marker.
        let mapped = (at("192.0.2.1:4500"), at("192.0.2.2:31000"));
        assert_eq!(max_message_len(1280, mapped.0, mapped.1), 1280 - 32);
        let v6 = (at("[2001:db8::1]:500"), at("[2001:db8::2]:500"));
        assert_eq!(max_message_len(1280, v6.0, v6.1), 1280 - 48);
        assert_eq!(max_message_len(0, v6.0, v6.1), 1280 - 48);
        let v6natt = (at("[2001:db8::1]:4500"), at("[2001:db8::2]:4500"));
        assert_eq!(max_message_len(1500, v6natt.0, v6natt.1), 1500 - 52);
        // Tiny sizes are raised to the minimum.
        assert_eq!(max_message_len(1, v4.0, v4.1), MIN_FRAGMENT_SIZE - 28);
    }

    #[test]
    fn a_charge_gives_back_what_it_holds() {
        let pool = Arc::new(Budget::default());
        let mut a = Charge {
            pool: pool.clone(),
            held: 0,
        };
        a.set(100);
        let mut b = Charge {
            pool: pool.clone(),
            held: 0,
        };
        b.set(50);
        assert_eq!(pool.used(), 150);
        a.set(30);
        assert_eq!(pool.used(), 80);
        drop(a);
        assert_eq!(pool.used(), 50);
        drop(b);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn packets_in_order() {
        let one = Packets::One(vec![1]);
        assert_eq!(one.iter().collect::<Vec<_>>(), [&vec![1]]);
        let f = Packets::Fragments(vec![vec![1], vec![2]].into());
        assert_eq!(f.iter().collect::<Vec<_>>(), [&vec![1], &vec![2]]);
    }
}
