//! NAT traversal through the harness's NAT in front of side 0.

use std::net::SocketAddr;
use std::time::Duration;

use super::harness::*;
use crate::sa::*;
use crate::wire::Header;
use crate::wire::codes::ExchangeType;

const PUBLIC: &str = "203.0.113.1";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Side 0 behind a NAT; side 1 accepts any address.
fn natted() -> Pair {
    let mut s = Setup::default();
    s.peers[1] = vec![PeerCfg {
        remote_addrs: vec![AddrSpec::Any],
        ..right_cfg()
    }];
    let mut p = Pair::new(s);
    p.nat = Some(Nat::new(PUBLIC));
    p
}

fn sent_of(p: &Peer, exchange: ExchangeType) -> Vec<Transmit> {
    p.sent
        .iter()
        .filter(|(_, t)| Header::peek(&t.payload).is_ok_and(|(h, _)| h.exchange == exchange))
        .map(|(_, t)| t.clone())
        .collect()
}

fn keepalives(p: &Peer) -> Vec<(std::time::Instant, Transmit)> {
    p.sent
        .iter()
        .filter(|(_, t)| t.payload == [0xff])
        .cloned()
        .collect()
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn nat_detected_by_hash_mismatch_moves_ike_to_4500_and_encapsulates() {
    let mut p = natted();
    let id = p.connect(0, "site-b");
    let a = p.a().ep.ike_sa(id).unwrap();
    assert_eq!(a.state, IkeState::Established);
    assert!(a.nat_local && !a.nat_remote && a.encap, "{a:?}");
    let b = p.b().ep.ike_sas().next().unwrap();
    assert!(!b.nat_local && b.nat_remote && b.encap, "{b:?}");
    // IKE_SA_INIT on 500, IKE_AUTH (and everything after) on 4500 both ways.
    let init = sent_of(p.a(), ExchangeType::IKE_SA_INIT);
    assert_eq!(
        (init[0].local, init[0].remote),
        (sock("192.0.2.1:500"), sock("198.51.100.1:500"))
    );
    let auth = sent_of(p.a(), ExchangeType::IKE_AUTH);
    assert_eq!(
        (auth[0].local, auth[0].remote),
        (sock("192.0.2.1:4500"), sock("198.51.100.1:4500"))
    );
    let auth_r = sent_of(p.b(), ExchangeType::IKE_AUTH);
    // The responder answers from 4500 to the NAT's mapping of 4500.
    let mapped = p.nat.as_mut().unwrap().out(sock("192.0.2.1:4500"));
    assert_eq!(mapped.ip(), v4(PUBLIC));
    assert_ne!(mapped.port(), 4500);
    assert_eq!(
        (auth_r[0].local, auth_r[0].remote),
        (sock("198.51.100.1:4500"), mapped)
    );
    assert_eq!(b.remote_addr, mapped);
    assert_eq!(b.local_addr, sock("198.51.100.1:4500"));
    assert_eq!(a.local_addr, sock("192.0.2.1:4500"));
    assert_eq!(a.remote_addr, sock("198.51.100.1:4500"));
    // Both kernels: ESP in UDP between the ports each side sees.
    let ka = p.a().kernel.installed.values().next().unwrap().clone();
    let kb = p.b().kernel.installed.values().next().unwrap().clone();
    assert!(ka.encap && kb.encap);
    assert_eq!((ka.local, ka.remote), (a.local_addr, a.remote_addr));
    assert_eq!((kb.local, kb.remote), (b.local_addr, mapped));
    assert_eq!(ka.spi_in, kb.spi_out);
    assert_eq!(ka.encr_in.as_bytes(), kb.encr_out.as_bytes());
}

#[test]
fn without_nat_nothing_moves_and_nothing_is_encapsulated() {
    let mut p = Pair::default_pair();
    let id = p.connect(0, "site-b");
    let a = p.a().ep.ike_sa(id).unwrap();
    assert!(!a.encap);
    assert!(
        p.a()
            .sent
            .iter()
            .all(|(_, t)| t.local.port() == 500 && t.remote.port() == 500),
        "all IKE on 500"
    );
    assert!(p.a().kernel.installed.values().all(|c| !c.encap));
    assert!(p.b().kernel.installed.values().all(|c| !c.encap));
}

#[test]
fn the_side_behind_nat_sends_keepalives() {
    let mut p = natted();
    p.connect(0, "site-b");
    // connect ran 60 s; IKE_SA_INIT finished at once: keepalives at 20 s, 40 s, 60 s.
    let ka = keepalives(p.a());
    assert_eq!(ka.len(), 3, "{ka:?}");
    for (i, (at, t)) in ka.iter().enumerate() {
        assert_eq!(*at - p.start, secs(20 * (i as u64 + 1)));
        assert_eq!(
            (t.local, t.remote),
            (sock("192.0.2.1:4500"), sock("198.51.100.1:4500"))
        );
    }
    // The side not behind NAT sends none.
    assert!(keepalives(p.b()).is_empty());
    assert!(p.b().ep.poll_timeout().is_none());
    // They go on, and keep the NAT's mapping (the same public port).
    let before = p.nat.as_ref().unwrap().map.clone();
    p.run_for(secs(100));
    assert_eq!(keepalives(p.a()).len(), 8);
    assert_eq!(p.nat.as_ref().unwrap().map, before);
}

#[test]
fn keepalives_can_be_turned_off() {
    let mut s = Setup::default();
    s.peers[1] = vec![PeerCfg {
        remote_addrs: vec![AddrSpec::Any],
        ..right_cfg()
    }];
    s.cfg[0].keep_alive = Duration::ZERO;
    let mut p = Pair::new(s);
    p.nat = Some(Nat::new(PUBLIC));
    let id = p.connect(0, "site-b");
    assert!(p.a().ep.ike_sa(id).unwrap().encap);
    assert!(keepalives(p.a()).is_empty());
    assert!(p.a().ep.poll_timeout().is_none());
}

#[test]
fn encap_yes_forces_encapsulation_without_nat() {
    let mut s = Setup::default();
    s.peers[0] = vec![PeerCfg {
        encap: true,
        ..left_cfg()
    }];
    let mut p = Pair::new(s);
    let id = p.connect(0, "site-b");
    let a = p.a().ep.ike_sa(id).unwrap();
    let b = p.b().ep.ike_sas().next().unwrap();
    assert_eq!(a.state, IkeState::Established);
    // The responder believes the initiator is behind NAT (the faked hash).
    assert!(a.encap && b.encap && b.nat_remote && !a.nat_local);
    assert_eq!(a.local_addr.port(), 4500);
    assert_eq!(b.remote_addr, sock("192.0.2.1:4500"));
    assert!(p.a().kernel.installed.values().all(|c| c.encap));
    assert!(p.b().kernel.installed.values().all(|c| c.encap));
    p.assert_kernels_match();
}

#[test]
fn a_peer_on_another_port_is_reached_there() {
    let mut s = Setup::default();
    s.peers[0] = vec![PeerCfg {
        remote_port: 4501,
        ..left_cfg()
    }];
    let mut p = Pair::new(s);
    let id = p.connect(0, "site-b");
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    assert!(p.a().sent.iter().all(|(_, t)| t.remote.port() == 4501));
    // With NAT, our side moves to 4500; a remote port other than 500 stays.
    let mut s = Setup::default();
    s.peers[0] = vec![PeerCfg {
        remote_port: 4501,
        ..left_cfg()
    }];
    s.peers[1] = vec![PeerCfg {
        remote_addrs: vec![AddrSpec::Any],
        ..right_cfg()
    }];
    let mut p = Pair::new(s);
    p.nat = Some(Nat::new(PUBLIC));
    let id = p.connect(0, "site-b");
    let a = p.a().ep.ike_sa(id).unwrap();
    assert_eq!(a.state, IkeState::Established);
    assert_eq!(
        (a.local_addr, a.remote_addr),
        (sock("192.0.2.1:4500"), sock("198.51.100.1:4501"))
    );
}

#[test]
fn a_new_nat_mapping_seen_in_ike_moves_the_sa_and_its_children() {
    let mut p = natted();
    let id = p.connect(0, "site-b");
    let old = p.b().ep.ike_sas().next().unwrap().remote_addr;
    // The NAT forgets its mappings: the next datagram gets a new port.
    p.nat.as_mut().unwrap().flush();
    let now = p.now;
    p.a().ep.send_liveness_check(now, id).unwrap();
    p.run_for(secs(1));
    assert!(matches!(
        p.a().events().last(),
        Some(Event::PeerAlive { .. })
    ));
    let new = p.nat.as_mut().unwrap().out(sock("192.0.2.1:4500"));
    assert_ne!(new, old);
    let b = p.b().ep.ike_sas().next().unwrap();
    assert_eq!(b.remote_addr, new);
    // The Child SA follows.
    let ups = p.b().kernel.updates.clone();
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert_eq!(
        (ups[0].local, ups[0].remote, ups[0].encap),
        (b.local_addr, new, true)
    );
    let kb = p.b().kernel.installed.values().next().unwrap().clone();
    assert_eq!(kb.remote, new);
    // The side behind the NAT does not move.
    assert!(p.a().kernel.updates.is_empty());
    // The responder reaches the initiator at its new mapping.
    let now = p.now;
    let bid = b.id;
    p.b().ep.send_liveness_check(now, bid).unwrap();
    p.run_for(secs(1));
    assert!(matches!(
        p.b().events().last(),
        Some(Event::PeerAlive { .. })
    ));
}

#[test]
fn the_kernels_mapping_event_moves_the_sa_and_its_children() {
    let mut p = natted();
    p.connect(0, "site-b");
    let b = p.b().ep.ike_sas().next().unwrap();
    let spi = b.children[0].spi_in;
    let new = sock("203.0.113.1:31999");
    let now = p.now;
    // Another SPI: not ours, ignored.
    p.b()
        .ep
        .handle_mapping(now, v4("198.51.100.1"), spi ^ 1, new);
    p.drive();
    assert!(p.b().kernel.updates.is_empty());
    p.b().ep.handle_mapping(now, v4("198.51.100.1"), spi, new);
    p.drive();
    assert_eq!(p.b().ep.ike_sas().next().unwrap().remote_addr, new);
    let ups = p.b().kernel.updates.clone();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].remote, new);
    // The same mapping again changes nothing.
    p.b().ep.handle_mapping(now, v4("198.51.100.1"), spi, new);
    p.drive();
    assert_eq!(p.b().kernel.updates.len(), 1);
    // The side not behind... the initiator's peer is not behind NAT: a
    // mapping event there is ignored.
    let a = p.a().ep.ike_sas().next().unwrap();
    let aspi = a.children[0].spi_in;
    p.a()
        .ep
        .handle_mapping(now, v4("192.0.2.1"), aspi, sock("198.51.100.7:4500"));
    p.drive();
    assert!(p.a().kernel.updates.is_empty());
    assert_eq!(
        p.a().ep.ike_sas().next().unwrap().remote_addr,
        sock("198.51.100.1:4500")
    );
}

#[test]
fn an_unauthenticated_message_from_a_new_address_is_ignored() {
    let mut p = natted();
    let id = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.send_liveness_check(now, id).unwrap();
    p.run_for(secs(1));
    let b_before = p.b().ep.ike_sas().next().unwrap();
    let sent_before = p.b().sent.len();
    // A's last request, re-sent from elsewhere: a retransmission, answered
    // to where the peer is, not to the sender.
    let req = sent_of(p.a(), ExchangeType::INFORMATIONAL)
        .last()
        .unwrap()
        .payload
        .clone();
    let attacker = sock("203.0.113.66:4500");
    let me = sock("198.51.100.1:4500");
    p.b().ep.handle_datagram(now, me, attacker, &req);
    // The same with the next message ID (the header is authenticated, so
    // the ICV fails) and with a flipped octet in the ciphertext.
    let mut next = req.clone();
    let mid = u32::from_be_bytes(next[20..24].try_into().unwrap()) + 1;
    next[20..24].copy_from_slice(&mid.to_be_bytes());
    p.b().ep.handle_datagram(now, me, attacker, &next);
    let mut flipped = req.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    flipped[20..24].copy_from_slice(&mid.to_be_bytes());
    p.b().ep.handle_datagram(now, me, attacker, &flipped);
    p.drive();
    let b = p.b().ep.ike_sas().next().unwrap();
    assert_eq!(b.remote_addr, b_before.remote_addr);
    assert!(p.b().kernel.updates.is_empty());
    assert!(
        p.b().sent[sent_before..]
            .iter()
            .all(|(_, t)| t.remote == b_before.remote_addr),
        "nothing goes to the forger"
    );
    // The tunnel still works with the real peer.
    let now = p.now;
    p.a().ep.send_liveness_check(now, id).unwrap();
    p.run_for(secs(1));
    assert!(matches!(
        p.a().events().last(),
        Some(Event::PeerAlive { .. })
    ));
    assert_eq!(
        p.b().ep.ike_sas().next().unwrap().state,
        IkeState::Established
    );
}

#[test]
fn a_moved_peer_writing_to_port_500_does_not_take_us_off_4500() {
    let mut p = natted();
    let id = p.connect(0, "site-b");
    // A's next request is held back and delivered by hand: from a new
    // public port, to B's IKE port 500.
    let sent = p.a().sent.len();
    p.policy = Box::new(move |i, n, _| {
        if i == 0 && n == sent {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let now = p.now;
    p.a().ep.send_liveness_check(now, id).unwrap();
    p.drive();
    let req = p.a().sent[sent].1.payload.clone();
    let from = sock("203.0.113.1:40000");
    p.b()
        .ep
        .handle_datagram(now, sock("198.51.100.1:500"), from, &req);
    p.drive();
    let b = p.b().ep.ike_sas().next().unwrap();
    assert_eq!(b.remote_addr, from);
    assert_eq!(b.local_addr, sock("198.51.100.1:4500"));
    let ups = &p.b().kernel.updates;
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].local.port(), 4500);
    // The answer goes from 4500 to the new address.
    let last = p.b().sent.last().unwrap().1.clone();
    assert_eq!((last.local, last.remote), (sock("198.51.100.1:4500"), from));
}

#[test]
fn rekeys_keep_the_encapsulation_and_the_keepalives() {
    let mut p = natted();
    let id = p.connect(0, "site-b");
    let now = p.now;
    // A Child SA rekey from each side: the new ones are encapsulated too,
    // between the addresses each side sees.
    for i in [0, 1] {
        let ike = p.peers[i].ep.ike_sas().next().unwrap().id;
        let child = p.peers[i].ep.ike_sa(ike).unwrap().children[0].id;
        p.peers[i].ep.rekey_child(now, ike, child).unwrap();
        p.run_for(secs(5));
    }
    let b = p.b().ep.ike_sas().next().unwrap();
    for (side, (l, r)) in [
        (0, (sock("192.0.2.1:4500"), sock("198.51.100.1:4500"))),
        (1, (b.local_addr, b.remote_addr)),
    ] {
        let inst: Vec<_> = p.peers[side].kernel.installed.values().cloned().collect();
        assert_eq!(inst.len(), 1, "side {side}: {inst:?}");
        assert!(inst[0].encap, "side {side}");
        assert_eq!((inst[0].local, inst[0].remote), (l, r), "side {side}");
    }
    // An IKE SA rekey: the new IKE SA is on the NAT-T ports, encapsulates,
    // and the keepalives go on from it.
    p.a().ep.rekey_ike(now, id).unwrap();
    p.run_for(secs(5));
    let sas: Vec<_> = p.a().ep.ike_sas().collect();
    assert_eq!(sas.len(), 1, "{sas:?}");
    assert_ne!(sas[0].id, id);
    assert!(sas[0].encap && sas[0].nat_local);
    assert_eq!(sas[0].local_addr, sock("192.0.2.1:4500"));
    let before = keepalives(p.a()).len();
    p.run_for(secs(60));
    let after = keepalives(p.a()).len();
    assert!((2..=4).contains(&(after - before)), "{before} -> {after}");
    // The NAT mapping changes: the responder's new IKE SA follows.
    p.nat.as_mut().unwrap().flush();
    let now = p.now;
    let new_id = sas[0].id;
    p.a().ep.send_liveness_check(now, new_id).unwrap();
    p.run_for(secs(1));
    let b = p.b().ep.ike_sas().next().unwrap();
    assert_eq!(
        b.remote_addr,
        p.nat.as_mut().unwrap().out(sock("192.0.2.1:4500"))
    );
    let ups = &p.b().kernel.updates;
    assert_eq!(ups.len(), 1, "{ups:?}");
}
