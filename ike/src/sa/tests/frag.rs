//! IKE fragmentation (RFC 7383) between two endpoints: a big IKE_AUTH
//! across a path that drops IP fragments, fragments lost, reordered and
//! duplicated, the settings of each side, and the reassembly limits.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::*;
use crate::wire::codes::PayloadType;
use crate::wire::{Header, Message, ParseLimits, Payload};

/// The IP datagram size of the path in these tests.
const PATH: usize = 576;
/// What the path drops: an IKE message whose IPv4/UDP datagram is larger
/// (it would be sent in IP fragments, which the path drops).
fn too_big(b: &[u8]) -> bool {
    b.len() + 28 > PATH
}

/// Both sides with `n` /24 subnets on each side of their child (an
/// IKE_AUTH of about 2 x 16 x `n` octets of selectors), fragment size
/// `size`, and these fragmentation settings.
fn setup(n: u8, size: usize, a: Fragmentation, b: Fragmentation) -> Setup {
    let mut s = Setup::default();
    let nets = |side: u8| -> Vec<TsCfg> {
        (0..n)
            .map(|k| subnet(&format!("10.{side}.{k}.0"), &format!("10.{side}.{k}.255")))
            .collect()
    };
    for (i, frag) in [a, b].into_iter().enumerate() {
        let me = i as u8 + 1;
        let peer = &mut s.peers[i][0];
        peer.fragmentation = frag;
        let c = Arc::make_mut(&mut peer.children[0]);
        c.local_ts = nets(me);
        c.remote_ts = nets(3 - me);
        s.cfg[i].fragment_size = size;
    }
    s
}

/// The first payload of a datagram (SKF for a fragment without payloads
/// outside SK).
fn first_payload(b: &[u8]) -> PayloadType {
    Header::peek(b).map(|(_, t)| t).unwrap()
}

/// (number, total) of a fragment.
fn skf(b: &[u8]) -> Option<(u16, u16)> {
    let m = Message::parse(b, &ParseLimits::default()).ok()?;
    match m.payloads.last() {
        Some(Payload::Skf(f)) => Some((f.number, f.total)),
        _ => None,
    }
}

/// Side `i`'s datagrams of `exchange` (requests or responses).
fn sent(p: &Pair, i: usize, exchange: ExchangeType, response: bool) -> Vec<Vec<u8>> {
    p.peers[i]
        .sent
        .iter()
        .map(|(_, t)| t.payload.clone())
        .filter(|b| {
            Header::peek(b)
                .is_ok_and(|(h, _)| h.exchange == exchange && h.is_response() == response)
        })
        .collect()
}

fn established(p: &Pair, i: usize) -> bool {
    p.peers[i]
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::IkeEstablished { .. }))
}

fn nothing_held(p: &mut Pair) {
    for i in 0..2 {
        assert_eq!(p.peers[i].ep.reassembly_held(), (0, 0), "side {i}");
    }
}

#[test]
fn a_big_ike_auth_crosses_a_path_that_drops_ip_fragments() {
    let mut p = Pair::new(setup(40, PATH, Fragmentation::Yes, Fragmentation::Yes));
    p.policy = Box::new(|_, _, b| {
        if too_big(b) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.connect(0, "site-b");
    assert!(established(&p, 0) && established(&p, 1));
    p.assert_kernels_match();
    let child = p.a().kernel.installed.values().next().unwrap().clone();
    assert_eq!(child.local_ts.len(), 40, "all selectors made it");
    // Both directions went in fragments, each fitting the path, sent once.
    for (i, response) in [(0, false), (1, true)] {
        let msgs = sent(&p, i, ExchangeType::IKE_AUTH, response);
        assert!(msgs.len() >= 3, "side {i}: {} datagrams", msgs.len());
        let total = msgs.len() as u16;
        for (k, m) in msgs.iter().enumerate() {
            assert!(!too_big(m), "side {i} fragment {k}: {} octets", m.len());
            assert_eq!(first_payload(m), PayloadType::SKF);
            assert_eq!(skf(m), Some((k as u16 + 1, total)));
        }
        // All but the last are full: 576 - 20 - 8.
        assert!(
            msgs[..msgs.len() - 1]
                .iter()
                .all(|m| m.len() > PATH - 28 - 16)
        );
    }
    // IKE_SA_INIT is never fragmented, and both announced support.
    for i in 0..2 {
        let init = &sent(&p, i, ExchangeType::IKE_SA_INIT, i == 1)[0];
        let m = Message::parse(init, &ParseLimits::default()).unwrap();
        assert!(m.payloads.iter().any(|p| matches!(p,
            Payload::Notify(n) if n.notify_type == crate::wire::codes::NotifyType::IKEV2_FRAGMENTATION_SUPPORTED)));
    }
    nothing_held(&mut p);
    // Later exchanges fragment too: a CREATE_CHILD_SA with the same
    // selectors, after rekeying the IKE SA (the new one inherits support).
    let id = p.a().ep.ike_sas().next().unwrap().id;
    let now = p.now;
    p.a().ep.rekey_ike(now, id).unwrap();
    p.run_for(secs(10));
    let id = p
        .a()
        .ep
        .ike_sas()
        .find(|s| s.state == IkeState::Established)
        .unwrap()
        .id;
    let before = p.a().sent.len();
    let now = p.now;
    let child = p.a().ep.ike_sa(id).unwrap().children[0].id;
    p.a().ep.rekey_child(now, id, child).unwrap();
    p.run_for(secs(10));
    let frags = p.a().sent[before..]
        .iter()
        .filter(|(_, t)| first_payload(&t.payload) == PayloadType::SKF)
        .count();
    assert!(frags >= 3, "CREATE_CHILD_SA in {frags} fragments");
    assert_eq!(
        p.a().ep.ike_sa(id).unwrap().children.len(),
        1,
        "the rekey went through"
    );
    assert!(
        !p.a()
            .events()
            .iter()
            .any(|e| matches!(e, Event::ChildFailed { .. }))
    );
    nothing_held(&mut p);
}

#[test]
fn without_the_peers_support_nothing_is_fragmented() {
    // B says no: A does not fragment, and the path drops the big IKE_AUTH.
    let mut p = Pair::new(setup(40, PATH, Fragmentation::Yes, Fragmentation::No));
    p.policy = Box::new(|_, _, b| {
        if too_big(b) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.connect(0, "site-b");
    p.run_for(secs(200));
    assert!(!established(&p, 0));
    assert!(failed(&p.a().events()).contains(&IkeFailReason::PeerNotResponding));
    let init = &sent(&p, 1, ExchangeType::IKE_SA_INIT, true)[0];
    let m = Message::parse(init, &ParseLimits::default()).unwrap();
    assert!(!m.payloads.iter().any(|p| matches!(p,
        Payload::Notify(n) if n.notify_type == crate::wire::codes::NotifyType::IKEV2_FRAGMENTATION_SUPPORTED)));
    let auth = sent(&p, 0, ExchangeType::IKE_AUTH, false);
    assert!(auth.iter().all(|m| too_big(m) && skf(m).is_none()));

    // On a path that carries IP fragments the same works, unfragmented.
    let mut p = Pair::new(setup(40, PATH, Fragmentation::Yes, Fragmentation::No));
    p.connect(0, "site-b");
    assert!(established(&p, 0) && established(&p, 1));
    for (i, r) in [(0, false), (1, true)] {
        let auth = sent(&p, i, ExchangeType::IKE_AUTH, r);
        assert_eq!(auth.len(), 1);
        assert!(too_big(&auth[0]));
    }
}

#[test]
fn accept_announces_but_does_not_send_fragments() {
    let mut p = Pair::new(setup(40, PATH, Fragmentation::Accept, Fragmentation::Yes));
    p.connect(0, "site-b");
    assert!(established(&p, 0) && established(&p, 1));
    let req = sent(&p, 0, ExchangeType::IKE_AUTH, false);
    assert_eq!(req.len(), 1, "A sent its request whole");
    assert!(too_big(&req[0]));
    let resp = sent(&p, 1, ExchangeType::IKE_AUTH, true);
    assert!(
        resp.len() >= 3 && resp.iter().all(|m| !too_big(m)),
        "B fragments, A announced"
    );
}

#[test]
fn force_fragments_even_to_a_peer_that_did_not_announce_support() {
    // B says no, yet reassembles what A forces on it (as strongSwan does).
    let mut p = Pair::new(setup(40, PATH, Fragmentation::Force, Fragmentation::No));
    p.connect(0, "site-b");
    assert!(established(&p, 0) && established(&p, 1));
    let req = sent(&p, 0, ExchangeType::IKE_AUTH, false);
    assert!(req.len() >= 3 && req.iter().all(|m| !too_big(m)));
    let resp = sent(&p, 1, ExchangeType::IKE_AUTH, true);
    assert_eq!(resp.len(), 1, "B does not fragment");
    // IKE_SA_INIT: A announced, B did not.
    let init = &sent(&p, 0, ExchangeType::IKE_SA_INIT, false)[0];
    assert!(!too_big(init) && skf(init).is_none());
}

#[test]
fn small_messages_are_not_fragmented() {
    let mut p = Pair::new(setup(1, PATH, Fragmentation::Yes, Fragmentation::Yes));
    p.connect(0, "site-b");
    assert!(established(&p, 0));
    assert!(
        p.peers
            .iter()
            .all(|s| s.sent.iter().all(|(_, t)| skf(&t.payload).is_none()))
    );
}

/// How often each (side, message ID, response, fragment) has been seen.
type Seen = BTreeMap<(usize, u32, bool, u16), usize>;

/// The network loses, duplicates and reorders fragments of both
/// directions: the exchange completes by retransmission of all fragments
/// (and of the cached, fragmented answer).
#[test]
fn fragments_lost_reordered_and_duplicated() {
    let mut p = Pair::new(setup(60, PATH, Fragmentation::Yes, Fragmentation::Yes));
    let seen: Rc<RefCell<Seen>> = Default::default();
    let log = seen.clone();
    p.policy = Box::new(move |i, _, b| {
        let Some((n, total)) = skf(b) else {
            return Fate::Deliver;
        };
        let h = Header::peek(b).unwrap().0;
        let mut seen = log.borrow_mut();
        let k = seen
            .entry((i, h.message_id, h.is_response(), n))
            .or_default();
        *k += 1;
        match (i, h.is_response(), n, *k) {
            // The request: fragment 2 lost the first time, the last one
            // overtaken by all others, fragment 1 twice.
            (0, false, 2, 1) => Fate::Drop,
            (0, false, n, _) if n == total => Fate::Delay(Duration::from_millis(50)),
            (0, false, 1, _) => Fate::Duplicate,
            // The answer: fragment 1 lost the first time; its others late.
            (1, true, 1, 1) => Fate::Drop,
            (1, true, _, _) => Fate::Delay(Duration::from_millis(20)),
            _ => Fate::Deliver,
        }
    });
    p.connect(0, "site-b");
    assert!(established(&p, 0) && established(&p, 1));
    p.assert_kernels_match();
    let seen = seen.borrow();
    assert!(
        seen.get(&(0, 1, false, 2)).copied().unwrap_or(0) >= 2,
        "retransmitted: {seen:?}"
    );
    assert!(
        seen.get(&(1, 1, true, 1)).copied().unwrap_or(0) >= 2,
        "answer resent: {seen:?}"
    );
    // The whole answer was resent from the cache, built once.
    let resp = sent(&p, 1, ExchangeType::IKE_AUTH, true);
    let total = skf(&resp[0]).unwrap().1 as usize;
    assert_eq!(resp.len() % total, 0);
    assert_eq!(
        resp[..total],
        resp[total..2 * total],
        "the same octets again"
    );
    assert_eq!(p.b().kernel.installs, 1, "the request was processed once");
    nothing_held(&mut p);
}

#[test]
fn a_message_over_the_reassembly_limits_is_dropped_without_harm() {
    let mut s = setup(60, PATH, Fragmentation::Yes, Fragmentation::Yes);
    s.cfg[1].reassembly.message.max_fragments = 3;
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert!(!established(&p, 1));
    nothing_held(&mut p);
    p.run_for(secs(200));
    assert!(failed(&p.a().events()).contains(&IkeFailReason::PeerNotResponding));
    nothing_held(&mut p);

    let mut s = setup(60, PATH, Fragmentation::Yes, Fragmentation::Yes);
    s.cfg[1].reassembly.message.max_bytes = 1000;
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert!(!established(&p, 1));
    let (octets, _) = p.b().ep.reassembly_held();
    assert!(octets < 1000 + 16 * FRAGMENT_OVERHEAD, "{octets}");
}

#[test]
fn a_partial_message_times_out() {
    let mut s = setup(60, PATH, Fragmentation::Yes, Fragmentation::Yes);
    s.cfg[1].reassembly.timeout = secs(2);
    let mut p = Pair::new(s);
    // The last fragment never arrives.
    p.policy = Box::new(|_, _, b| match skf(b) {
        Some((n, t)) if n == t => Fate::Drop,
        _ => Fate::Deliver,
    });
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(Duration::from_millis(500));
    let (octets, frags) = p.b().ep.reassembly_held();
    assert!(octets > 0 && frags >= 2, "{octets} {frags}");
    // Before A's first retransmission (4 s), B's 2 s are up.
    p.run_for(secs(3));
    assert_eq!(p.b().ep.reassembly_held(), (0, 0));
    // The retransmissions start it again; the half-open timeout ends it.
    p.run_for(secs(60));
    nothing_held(&mut p);
    assert!(p.b().ep.is_empty());
}

/// Many IKE SAs whose IKE_AUTH never completes (each loses its last
/// fragment) hold no more than the budget together.
#[test]
fn partial_messages_of_all_sas_share_one_budget() {
    let mut s = setup(60, PATH, Fragmentation::Yes, Fragmentation::Yes);
    let budget = 4000;
    s.cfg[1].reassembly.budget = budget;
    // Ten connections from A, B answering each (any identity).
    let base = s.peers[0][0].clone();
    s.peers[0] = (0..10)
        .map(|k| PeerCfg {
            name: format!("c{k}"),
            ..base.clone()
        })
        .collect();
    s.cfg[1].cookie_threshold = None;
    let mut p = Pair::new(s);
    p.policy = Box::new(|_, _, b| match skf(b) {
        Some((n, t)) if n == t => Fate::Drop,
        _ => Fate::Deliver,
    });
    let now = p.now;
    for k in 0..10 {
        p.a().ep.initiate(now, &format!("c{k}"), &[]).unwrap();
    }
    let mut peak = 0;
    for _ in 0..40 {
        p.run_for(Duration::from_millis(500));
        let (octets, _) = p.b().ep.reassembly_held();
        assert!(octets <= budget, "{octets} over {budget}");
        peak = peak.max(octets);
    }
    assert!(peak > budget / 2, "the budget was used: {peak}");
    p.run_for(secs(60));
    nothing_held(&mut p);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// Whatever the network does to the first datagrams (lose, duplicate,
    /// delay), both sides end established or failed, never hold fragments
    /// after it, and never panic.
    #[test]
    fn any_network_fate_ends_cleanly(
        fates in proptest::collection::vec(0u8..6, 40),
    ) {
        let mut p = Pair::new(setup(60, PATH, Fragmentation::Yes, Fragmentation::Yes));
        let mut n = 0usize;
        p.policy = Box::new(move |_, _, _| {
            let f = fates.get(n).copied().unwrap_or(0);
            n += 1;
            match f {
                1 => Fate::Drop,
                2 => Fate::Duplicate,
                3 => Fate::Delay(Duration::from_millis(30)),
                4 => Fate::Delay(Duration::from_secs(5)),
                _ => Fate::Deliver,
            }
        });
        p.connect(0, "site-b");
        p.run_for(secs(300));
        for i in 0..2 {
            proptest::prop_assert_eq!(p.peers[i].ep.reassembly_held(), (0, 0));
        }
        if established(&p, 0) && p.a().ep.len() == 1 {
            p.assert_kernels_match();
        }
    }
}

/// Behind a NAT, IKE_AUTH goes to port 4500 with the non-ESP marker: the
/// fragments leave room for it.
#[test]
fn over_nat_t_the_fragments_leave_room_for_the_marker() {
    let mut s = setup(40, PATH, Fragmentation::Yes, Fragmentation::Yes);
    s.peers[1][0].remote_addrs = vec![AddrSpec::Any];
    let mut p = Pair::new(s);
    p.nat = Some(Nat::new("203.0.113.7"));
    // The marker is 4 more octets on the wire.
    p.policy = Box::new(|_, _, b| {
        if b.len() + 4 + 28 > PATH {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.connect(0, "site-b");
    assert!(established(&p, 0) && established(&p, 1));
    let auth = sent(&p, 0, ExchangeType::IKE_AUTH, false);
    assert!(auth.len() >= 3);
    assert!(p.a().sent.iter().any(|(_, t)| t.remote.port() == 4500));
    // Full fragments use the room to the octet: 576 - 20 - 8 - 4.
    assert!(
        auth[..auth.len() - 1]
            .iter()
            .all(|m| m.len() > PATH - 32 - 16 && m.len() <= PATH - 32)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..Default::default() })]

    /// Forged fragments (any numbers, any contents) of the IKE_AUTH the
    /// responder waits for change nothing: none is kept, and the real
    /// IKE_AUTH still completes.
    #[test]
    fn forged_fragments_change_nothing(
        forged in proptest::collection::vec(
            (1u16..6, 1u16..6, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)),
            1..12,
        ),
    ) {
        let mut p = Pair::new(setup(60, PATH, Fragmentation::Yes, Fragmentation::Yes));
        // A's IKE_AUTH comes late.
        p.policy = Box::new(|i, _, b| match Header::peek(b) {
            Ok((h, _)) if i == 0 && h.exchange == ExchangeType::IKE_AUTH => {
                Fate::Delay(Duration::from_secs(1))
            }
            _ => Fate::Deliver,
        });
        let now = p.now;
        p.a().ep.initiate(now, "site-b", &[]).unwrap();
        p.run_for(Duration::from_millis(100));
        let sa = p.b().ep.ike_sas().next().unwrap();
        let (a, b) = (p.peers[0].addr, p.peers[1].addr);
        for (number, total, body) in forged {
            let m = Message {
                header: Header {
                    spi_i: sa.spi_i,
                    spi_r: sa.spi_r,
                    exchange: ExchangeType::IKE_AUTH,
                    flags: crate::wire::Flags::INITIATOR,
                    message_id: 1,
                    ..Header::default()
                },
                payloads: vec![Payload::Skf(crate::wire::EncryptedFragment {
                    number: number.min(total),
                    total,
                    first_payload: PayloadType::IDI,
                    body,
                })],
            };
            let bytes = m.emit().unwrap();
            let now = p.now;
            p.b().ep.handle_datagram(now, b, a, &bytes);
            proptest::prop_assert_eq!(p.b().ep.reassembly_held(), (0, 0));
        }
        p.run_for(secs(30));
        proptest::prop_assert!(established(&p, 0) && established(&p, 1));
        nothing_held(&mut p);
    }
}

/// IKE_AUTH with RSA certificates and an intermediate CA sent both ways
/// (the issue's case: chains make IKE_AUTH larger than a path's MTU)
/// across the path that drops IP fragments.
#[test]
fn certificate_chains_cross_a_path_that_drops_ip_fragments() {
    use super::certs::{Alg, Ca, cred, store};
    let mut root = Ca::root("Test Root", Alg::Rsa(0));
    let mut sub = root.intermediate("Test Sub", Alg::Rsa(1));
    let (ka, ca, _) = sub.issue("gw-a", "192.0.2.1.example", Alg::Rsa(0), |_| {});
    let (kb, cb, _) = sub.issue("gw-b", "198.51.100.1.example", Alg::Rsa(1), |_| {});
    let mut s = setup(1, PATH, Fragmentation::Yes, Fragmentation::Yes);
    for (i, (k, c)) in [(0, (&ka, &ca)), (1, (&kb, &cb))] {
        let cfg = &mut s.peers[i][0];
        cfg.local_auth = LocalAuthCfg::Pubkey(cred(k, vec![c.clone(), sub.cert.clone()]));
        cfg.remote_auth = RemoteAuthCfg::Pubkey {
            cacerts: Vec::new(),
            pubkeys: Vec::new(),
            revocation: crate::pki::Revocation::Relaxed,
            constraints: Vec::new(),
        };
        cfg.send_cert = SendCert::Always;
    }
    s.trust = [store(&[&root.cert]), store(&[&root.cert])];
    let mut p = Pair::new(s);
    p.policy = Box::new(|_, _, b| {
        if too_big(b) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.connect(0, "site-b");
    assert!(
        established(&p, 0) && established(&p, 1),
        "{:?}",
        p.a().events()
    );
    p.assert_kernels_match();
    for (i, response) in [(0, false), (1, true)] {
        let msgs = sent(&p, i, ExchangeType::IKE_AUTH, response);
        let octets: usize = msgs.iter().map(Vec::len).sum();
        assert!(
            msgs.len() >= 4 && octets > 2000,
            "side {i}: {} fragments, {octets} octets",
            msgs.len()
        );
        assert!(msgs.iter().all(|m| !too_big(m)));
    }
    nothing_held(&mut p);
}
