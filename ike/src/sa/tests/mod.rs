//! In-process two-peer tests with a simulated clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod algs;
mod auth;
pub(crate) mod certs;
mod childless;
mod compute;
mod cp;
mod create_ke;
mod dos;
mod dpd;
mod eap;
mod eap_more;
mod eap_tls;
mod frag;
mod fuzz;
pub(super) mod harness;
mod inactivity;
mod ipcomp;
mod keyingtries;
mod limits;
mod mobike;
mod natt;
mod pacing;
mod policy;
mod reauth;
mod redirect;
mod rekey;
mod rounds;
mod sigwork;
mod traps;
mod unique;

use std::sync::Arc;
use std::time::Duration;

use harness::*;

use crate::sa::config::Unique;
use crate::sa::*;
use crate::wire::codes::{ExchangeType, KeId, ProtocolId};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn tunnel_comes_up_and_kernels_match() {
    let mut p = Pair::default_pair();
    let id = p.connect(0, "site-b");
    let a = p.a().events();
    assert!(
        matches!(&a[..], [Event::IkeEstablished { id: x, peer }, Event::ChildInstalled { ike, name, .. }]
            if *x == id && peer == "site-b" && *ike == id && name == "net"),
        "{a:?}"
    );
    let b = p.b().events();
    assert!(
        matches!(&b[..], [Event::IkeEstablished { peer, .. }, Event::ChildInstalled { name, .. }]
            if peer == "site-a" && name == "net"),
        "{b:?}"
    );
    p.assert_kernels_match();
    assert_eq!(p.a().kernel.installed.len(), 1);
    let info = p.a().ep.ike_sa(id).unwrap();
    assert_eq!(info.state, IkeState::Established);
    assert!(info.initiator);
    assert_eq!(info.children.len(), 1);
    assert_eq!(info.children[0].state, ChildState::Installed);
    assert_eq!(info.suite.unwrap().ke, KeId::CURVE25519);
    assert!(!info.nat_local && !info.nat_remote);
    let theirs = p.b().ep.ike_sas().next().unwrap();
    assert_eq!(theirs.state, IkeState::Established);
    assert!(!theirs.initiator);
    assert_eq!((theirs.spi_i, theirs.spi_r), (info.spi_i, info.spi_r));
    assert_eq!(theirs.remote_id, info.local_id);
    // Each side sent exactly one request of each exchange: nothing retransmitted.
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 1);
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 1);
    let inst = p.a().kernel.installed.values().next().unwrap().clone();
    assert_eq!(inst.protocol, ProtocolId::ESP);
    assert_eq!(inst.mode, Mode::Tunnel);
    assert_eq!(inst.sa_opts.replay_window, 32);
    assert_eq!(inst.encr_in.len(), 16 + 4, "AES-128-GCM key and salt");
    // Nothing due any more but nothing pending either: no timers.
    assert_eq!(p.a().ep.poll_timeout(), None);
    assert_eq!(p.b().ep.poll_timeout(), None);
}

#[test]
fn responder_role_on_the_other_side() {
    let mut p = Pair::default_pair();
    p.connect(1, "site-a");
    assert!(matches!(p.b().events()[0], Event::IkeEstablished { .. }));
    assert!(matches!(p.a().events()[0], Event::IkeEstablished { .. }));
    p.assert_kernels_match();
    assert!(p.b().kernel.installed.values().all(|c| c.initiator));
}

fn failed(events: &[Event]) -> Vec<IkeFailReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn child_failed(events: &[Event]) -> Vec<ChildFailReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn wrong_psk_fails_on_both_sides_and_leaves_nothing() {
    let mut s = Setup::default();
    s.psk[1] = psk_store(b"another secret");
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.a().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: true }]
    );
    assert_eq!(
        failed(&p.b().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    assert_eq!(
        IkeFailReason::AuthenticationFailed { by_peer: true }.to_string(),
        "peer sent AUTHENTICATION_FAILED"
    );
    p.assert_kernels_empty();
    assert!(p.a().ep.is_empty() && p.b().ep.is_empty());
    assert_eq!(p.b().kernel.installs, 0);
}

#[test]
fn initiator_rejecting_the_responder_tells_it_and_both_clean_up() {
    // The initiator's key store gives the right key to compute its own
    // AUTH and a wrong one to verify the responder's: the responder has
    // installed its child by then and must remove it.
    let mut s = Setup::default();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    s.psk[0] = std::sync::Arc::new(
        move |_: &crate::wire::Identification, _: &crate::wire::Identification| {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(crate::crypto::Secret::from_slice(if n == 0 {
                b"secret"
            } else {
                b"wrong"
            }))
        },
    );
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.a().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    assert_eq!(
        failed(&p.b().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: true }]
    );
    assert_eq!(p.b().kernel.installs, 1);
    assert_eq!(p.b().kernel.removed.len(), 1);
    p.assert_kernels_empty();
    assert!(p.a().ep.is_empty() && p.b().ep.is_empty());
}

#[test]
fn no_common_proposal_is_reported_readably_on_both_sides() {
    let mut s = Setup::default();
    s.peers[1][0].ike_proposals = ike("aes256-sha384-ecp384");
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    let a = failed(&p.a().events());
    let [
        IkeFailReason::NoProposalChosen {
            by_peer: true,
            detail,
        },
    ] = &a[..]
    else {
        panic!("{a:?}");
    };
    assert_eq!(detail, "IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519");
    assert_eq!(
        a[0].to_string(),
        "peer sent NO_PROPOSAL_CHOSEN (we offered IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/CURVE_25519)"
    );
    let b = failed(&p.b().events());
    let [
        IkeFailReason::NoProposalChosen {
            by_peer: false,
            detail,
        },
    ] = &b[..]
    else {
        panic!("{b:?}");
    };
    assert!(
        detail.starts_with("no proposal chosen: peer offered IKE:AES_GCM_16_128"),
        "{detail}"
    );
    assert!(
        detail.contains("we accept IKE:AES_CBC_256/HMAC_SHA2_384_192"),
        "{detail}"
    );
    p.assert_kernels_empty();
    assert!(p.b().ep.is_empty(), "the responder keeps no state");
}

#[test]
fn responder_narrows_traffic_selectors() {
    let mut s = Setup::default();
    // The responder allows only 10.1.5.0/24 of the initiator's /16 and
    // 10.2.0.0/24 of its own.
    Arc::make_mut(&mut s.peers[1][0].children[0]).remote_ts =
        vec![subnet("10.1.5.0", "10.1.5.255")];
    Arc::make_mut(&mut s.peers[1][0].children[0]).local_ts = vec![subnet("10.2.0.0", "10.2.0.255")];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    p.assert_kernels_match();
    let a = p.a().kernel.installed.values().next().unwrap().clone();
    let want = |s: &str, e: &str| match subnet(s, e) {
        TsCfg::Selector(t) => vec![t],
        TsCfg::Dynamic => unreachable!(),
    };
    assert_eq!(a.local_ts, want("10.1.5.0", "10.1.5.255"));
    assert_eq!(a.remote_ts, want("10.2.0.0", "10.2.0.255"));
}

#[test]
fn disjoint_selectors_are_ts_unacceptable_and_the_ike_sa_stays() {
    let mut s = Setup::default();
    Arc::make_mut(&mut s.peers[1][0].children[0]).remote_ts =
        vec![subnet("172.16.0.0", "172.16.255.255")];
    let mut p = Pair::new(s);
    let id = p.connect(0, "site-b");
    assert_eq!(
        child_failed(&p.a().events()),
        [ChildFailReason::TsUnacceptable { by_peer: true }]
    );
    assert_eq!(
        child_failed(&p.b().events()),
        [ChildFailReason::TsUnacceptable { by_peer: false }]
    );
    assert!(failed(&p.a().events()).is_empty());
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    assert!(p.a().ep.ike_sa(id).unwrap().children.is_empty());
    p.assert_kernels_empty();
}

#[test]
fn transport_mode_with_dynamic_selectors() {
    let mut s = Setup::default();
    for side in &mut s.peers {
        let c = Arc::make_mut(&mut side[0].children[0]);
        c.mode = Mode::Transport;
        c.local_ts = vec![TsCfg::Dynamic];
        c.remote_ts = vec![TsCfg::Dynamic];
    }
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    p.assert_kernels_match();
    let a = p.a().kernel.installed.values().next().unwrap().clone();
    assert_eq!(a.mode, Mode::Transport);
    assert_eq!(a.local_ts, vec![crate::sa::ts::host(v4(LEFT))]);
    assert_eq!(a.remote_ts, vec![crate::sa::ts::host(v4(RIGHT))]);
    assert_eq!(
        p.a().ep.ike_sas().next().unwrap().children[0].mode,
        Mode::Transport
    );
}

#[test]
fn transport_requested_but_responder_wants_tunnel_fails_the_child() {
    let mut s = Setup::default();
    Arc::make_mut(&mut s.peers[0][0].children[0]).mode = Mode::Transport;
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert_eq!(
        child_failed(&p.a().events()),
        [ChildFailReason::ModeMismatch]
    );
    // The responder had installed the tunnel-mode SA the initiator
    // refused: the initiator deletes it.
    assert_eq!(p.b().kernel.installs, 1);
    assert!(matches!(
        p.b().events().last(),
        Some(Event::ChildDeleted { by_peer: true, .. })
    ));
    p.assert_kernels_empty();
    assert_eq!(
        p.a().ep.ike_sas().next().unwrap().state,
        IkeState::Established
    );
}

#[test]
fn ah_child_sa() {
    let mut s = Setup::default();
    for side in &mut s.peers {
        Arc::make_mut(&mut side[0].children[0]).proposals =
            crate::crypto::proposal::parse(ProtocolId::AH, "sha256").unwrap();
    }
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    p.assert_kernels_match();
    let a = p.a().kernel.installed.values().next().unwrap().clone();
    assert_eq!(a.protocol, ProtocolId::AH);
    assert!(a.encr_in.is_empty());
    assert_eq!(a.integ_in.len(), 32);
    assert_eq!(a.suite.encr, None);
}

#[test]
fn invalid_ke_payload_retry_uses_the_group_the_responder_wants() {
    let mut s = Setup::default();
    s.peers[0][0].ike_proposals = ike("aes128gcm16-prfsha256-x25519-ecp256");
    s.peers[1][0].ike_proposals = ike("aes128gcm16-prfsha256-ecp256-x25519");
    let mut p = Pair::new(s);
    let id = p.connect(0, "site-b");
    assert_eq!(
        p.a().ep.ike_sa(id).unwrap().suite.unwrap().ke,
        KeId::ECP_256
    );
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 2);
    assert_eq!(p.b().ep.len(), 1, "no state kept for the INVALID_KE answer");
    p.assert_kernels_match();
}

/// The retransmission schedule: 4 s, then x1.8 each, 5 retransmissions,
/// give-up after the last one's timeout.
#[test]
fn gives_up_after_five_retransmissions_on_schedule() {
    let mut p = Pair::default_pair();
    p.policy = Box::new(|from, _, _| if from == 0 { Fate::Drop } else { Fate::Deliver });
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(400));
    let start = p.start;
    let times: Vec<f64> = p
        .a()
        .sent
        .iter()
        .map(|(t, _)| (*t - start).as_secs_f64())
        .collect();
    let want = [0.0, 4.0, 11.2, 24.16, 47.488, 89.4784];
    assert_eq!(times.len(), want.len(), "{times:?}");
    for (t, w) in times.iter().zip(want) {
        assert!((t - w).abs() < 1e-6, "{times:?}");
    }
    let (at, e) = p.a().events.last().cloned().unwrap();
    assert!(matches!(
        e,
        Event::IkeFailed {
            reason: IkeFailReason::PeerNotResponding,
            ..
        }
    ));
    let gave_up = (at - start).as_secs_f64();
    assert!(
        (gave_up - (89.4784 + 4.0 * 1.8f64.powi(5))).abs() < 1e-6,
        "{gave_up}"
    );
    p.assert_kernels_empty();
    assert!(p.a().ep.is_empty());
    assert_eq!(p.a().ep.poll_timeout(), None);
}

#[test]
fn established_sa_that_stops_answering_is_removed() {
    let mut p = Pair::default_pair();
    let id = p.connect(0, "site-b");
    p.policy = Box::new(|from, _, _| if from == 1 { Fate::Drop } else { Fate::Deliver });
    let now = p.now;
    p.a().ep.send_liveness_check(now, id).unwrap();
    p.run_for(secs(200));
    assert!(failed(&p.a().events()) == [IkeFailReason::PeerNotResponding]);
    assert!(p.a().kernel.installed.is_empty());
    assert_eq!(p.a().kernel.removed.len(), 1);
    assert!(matches!(
        p.a().events().iter().rev().nth(1),
        Some(Event::ChildDeleted { by_peer: false, .. })
    ));
}

#[test]
fn lossy_network_still_brings_the_tunnel_up() {
    let mut p = Pair::default_pair();
    // Drop the first IKE_AUTH request, duplicate everything the responder
    // sends, delay the initiator's second datagram.
    p.policy = Box::new(|from, n, _| match (from, n) {
        (0, 1) => Fate::Drop,
        (0, 2) => Fate::Delay(Duration::from_millis(300)),
        (1, _) => Fate::Duplicate,
        _ => Fate::Deliver,
    });
    p.connect(0, "site-b");
    p.assert_kernels_match();
    assert_eq!(p.b().kernel.installs, 1);
    assert_eq!(p.a().kernel.installs, 1);
    assert!(failed(&p.a().events()).is_empty());
}

#[test]
fn duplicated_requests_are_answered_from_the_cache() {
    let mut p = Pair::default_pair();
    p.policy = Box::new(|from, _, _| {
        if from == 0 {
            Fate::Duplicate
        } else {
            Fate::Deliver
        }
    });
    p.connect(0, "site-b");
    p.assert_kernels_match();
    // The responder got every request twice and answered each copy, but
    // processed it once: one SA, one install, one key exchange.
    assert_eq!(p.b().count_received(ExchangeType::IKE_SA_INIT, false), 2);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_SA_INIT, true), 2);
    assert_eq!(p.b().count_received(ExchangeType::IKE_AUTH, false), 2);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 2);
    let auth: Vec<_> = p
        .b()
        .sent
        .iter()
        .filter(|(_, t)| t.payload.get(18) == Some(&35))
        .map(|(_, t)| t.payload.clone())
        .collect();
    assert_eq!(auth[0], auth[1], "the cached response, byte for byte");
    assert_eq!(p.b().kernel.installs, 1);
    assert_eq!(p.b().ep.len(), 1);
    assert_eq!(p.a().events().len(), 2, "{:?}", p.a().events());
}

#[test]
fn established_sas_keep_nothing_of_ike_sa_init() {
    // AUTH needs the IKE_SA_INIT messages and nonces, the first Child SA's
    // keys the nonces; after IKE_AUTH none of it is kept (about 1 KB per
    // IKE SA).
    let mut p = Pair::default_pair();
    p.connect(0, "site-b");
    p.assert_kernels_match();
    assert_eq!(p.a().ep.init_state_held(), vec![0]);
    assert_eq!(p.b().ep.init_state_held(), vec![0]);
    // Half-open, the responder still has it (retransmitted requests are
    // answered from it).
    let mut p = pair_without_ike_auth_requests();
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    let held = p.b().ep.init_state_held();
    assert_eq!(held.len(), 1);
    assert!(held[0] > 0, "{held:?}");
}

/// A pair whose initiator's IKE_AUTH requests are lost: its SAs stay
/// half-open.
fn pair_without_ike_auth_requests() -> Pair {
    let mut p = Pair::default_pair();
    p.policy = Box::new(|from, _, payload| {
        let auth = crate::wire::Header::peek(payload)
            .is_ok_and(|(h, _)| h.exchange == ExchangeType::IKE_AUTH);
        if from == 0 && auth {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p
}

#[test]
fn half_open_sas_from_the_same_addresses_share_their_candidates() {
    // 1,000 connections between two gateways: each half-open SA held its
    // own list of all 1,000 until IKE_AUTH.
    let mut p = pair_without_ike_auth_requests();
    let now = p.now;
    for _ in 0..3 {
        p.a().ep.initiate(now, "site-b", &[]).unwrap();
    }
    p.drive();
    assert_eq!(p.b().ep.len(), 3);
    assert_eq!(p.b().ep.candidates_held(), vec![1, 1, 1]);
    assert!(p.b().ep.candidates_shared());
}

#[test]
fn delete_from_the_initiator_clears_both_kernels() {
    let mut p = Pair::default_pair();
    let id = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.terminate_ike(now, id).unwrap();
    p.run_for(secs(10));
    assert!(matches!(
        p.a().events().last(),
        Some(Event::IkeDeleted { by_peer: false, .. })
    ));
    assert!(matches!(
        p.b().events().last(),
        Some(Event::IkeDeleted { by_peer: true, .. })
    ));
    assert!(
        p.a()
            .events()
            .iter()
            .any(|e| matches!(e, Event::ChildDeleted { by_peer: false, .. }))
    );
    assert!(
        p.b()
            .events()
            .iter()
            .any(|e| matches!(e, Event::ChildDeleted { by_peer: true, .. }))
    );
    p.assert_kernels_empty();
    assert!(p.a().ep.is_empty() && p.b().ep.is_empty());
}

#[test]
fn delete_from_the_responder_clears_both_kernels() {
    let mut p = Pair::default_pair();
    p.connect(0, "site-b");
    let id = p.b().ep.ike_sas().next().unwrap().id;
    let now = p.now;
    p.b().ep.terminate_ike(now, id).unwrap();
    p.run_for(secs(10));
    assert!(matches!(
        p.b().events().last(),
        Some(Event::IkeDeleted { by_peer: false, .. })
    ));
    assert!(matches!(
        p.a().events().last(),
        Some(Event::IkeDeleted { by_peer: true, .. })
    ));
    p.assert_kernels_empty();
    assert_eq!(p.a().kernel.removed.len(), 1);
    assert_eq!(p.b().kernel.removed.len(), 1);
}

#[test]
fn child_delete_from_either_side_keeps_the_ike_sa() {
    for side in [0, 1] {
        let mut p = Pair::default_pair();
        p.connect(0, "site-b");
        let info = p.peers[side].ep.ike_sas().next().unwrap();
        let now = p.now;
        p.peers[side]
            .ep
            .terminate_child(now, info.id, info.children[0].id)
            .unwrap();
        p.run_for(secs(10));
        p.assert_kernels_empty();
        assert!(matches!(
            p.peers[side].events().last(),
            Some(Event::ChildDeleted { by_peer: false, .. })
        ));
        assert!(matches!(
            p.peers[1 - side].events().last(),
            Some(Event::ChildDeleted { by_peer: true, .. })
        ));
        for q in &p.peers {
            let i = q.ep.ike_sas().next().unwrap();
            assert_eq!(i.state, IkeState::Established);
            assert!(i.children.is_empty());
        }
    }
}

#[test]
fn liveness_check_is_answered() {
    let mut p = Pair::default_pair();
    let id = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.send_liveness_check(now, id).unwrap();
    p.run_for(secs(1));
    assert!(matches!(p.a().events().last(), Some(Event::PeerAlive { id: x }) if *x == id));
    // And from the responder's side.
    let rid = p.b().ep.ike_sas().next().unwrap().id;
    let now = p.now;
    p.b().ep.send_liveness_check(now, rid).unwrap();
    p.run_for(secs(1));
    assert!(matches!(
        p.b().events().last(),
        Some(Event::PeerAlive { .. })
    ));
    assert_eq!(p.a().count_sent(ExchangeType::INFORMATIONAL, false), 1);
    assert_eq!(p.a().count_sent(ExchangeType::INFORMATIONAL, true), 1);
}

#[test]
fn half_open_responder_sa_times_out_after_30_seconds() {
    let mut p = Pair::default_pair();
    // The initiator's IKE_AUTH never arrives.
    p.policy = Box::new(|from, n, _| {
        if from == 0 && n >= 1 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(secs(29));
    assert_eq!(p.b().ep.len(), 1);
    p.run_for(secs(2));
    assert_eq!(p.b().ep.len(), 0);
    let (at, e) = p.b().events.last().cloned().unwrap();
    assert!(
        matches!(
            e,
            Event::IkeFailed {
                reason: IkeFailReason::HalfOpenTimeout,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!((at - p.start).as_secs_f64(), 30.0);
}

#[test]
fn garbage_and_tampered_datagrams_do_not_disturb_an_established_sa() {
    let mut p = Pair::default_pair();
    let id = p.connect(0, "site-b");
    let (la, ra) = (p.a().addr, p.b().addr);
    let auth = p
        .a()
        .sent
        .iter()
        .map(|(_, t)| t.payload.clone())
        .find(|b| b.get(18) == Some(&35))
        .unwrap();
    let now = p.now;
    let b = &mut p.b().ep;
    b.handle_datagram(now, ra, la, &[]);
    b.handle_datagram(now, ra, la, &[0xff; 3]);
    b.handle_datagram(now, ra, la, &[0u8; 200]);
    let mut junk = auth.clone();
    junk.truncate(40);
    b.handle_datagram(now, ra, la, &junk);
    for at in [30usize, 60, auth.len() - 1] {
        let mut t = auth.clone();
        t[at] ^= 0x40;
        b.handle_datagram(now, ra, la, &t);
    }
    // A tampered request with the next message ID.
    let mut next = auth.clone();
    next[20..24].copy_from_slice(&2u32.to_be_bytes());
    b.handle_datagram(now, ra, la, &next);
    assert!(b.poll_transmit().is_none(), "nothing answered");
    assert!(b.poll_event().is_none());
    // The SA still works: a liveness check goes through with the right IDs.
    let now = p.now;
    p.a().ep.send_liveness_check(now, id).unwrap();
    p.run_for(secs(1));
    assert!(matches!(
        p.a().events().last(),
        Some(Event::PeerAlive { .. })
    ));
    p.assert_kernels_match();
}

#[test]
fn slow_kernel_on_the_responder_retransmissions_are_not_reprocessed() {
    let mut p = Pair::default_pair();
    p.hold_kernel[1] = true;
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    // IKE_AUTH arrives; the responder waits for its SPI; the initiator
    // retransmits at 4 s and 11.2 s; those copies are dropped.
    p.run_for(secs(12));
    assert_eq!(p.b().count_received(ExchangeType::IKE_AUTH, false), 3);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 0);
    assert_eq!(
        p.b().ep.ike_sas().next().unwrap().children[0].state,
        ChildState::Creating
    );
    p.release_kernel(1); // SPI allocated -> InstallChild held
    assert_eq!(
        p.b().ep.ike_sas().next().unwrap().children[0].state,
        ChildState::Installing
    );
    p.release_kernel(1); // installed -> the response goes out
    p.run_for(secs(1));
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 1);
    assert_eq!(p.b().kernel.installs, 1);
    p.assert_kernels_match();
}

#[test]
fn responder_install_failure_refuses_the_child_but_keeps_the_ike_sa() {
    let mut p = Pair::default_pair();
    p.b().kernel.fail_installs = 1;
    let id = p.connect(0, "site-b");
    let a = child_failed(&p.a().events());
    assert!(
        matches!(&a[..], [ChildFailReason::NoProposalChosen { by_peer: true, detail }]
        if detail == "ESP:AES_GCM_16_128/NO_EXT_SEQ"),
        "{a:?}"
    );
    assert!(
        matches!(&child_failed(&p.b().events())[..], [ChildFailReason::Kernel(m)] if m.contains("refused by test"))
    );
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    p.assert_kernels_empty();
}

fn installed_names(p: &Peer) -> Vec<String> {
    let mut v: Vec<String> = p
        .kernel
        .installed
        .values()
        .map(|c| c.name.clone())
        .collect();
    v.sort();
    v
}

fn two_children(pfs: bool) -> Setup {
    let mut s = Setup::default();
    for (i, side) in s.peers.iter_mut().enumerate() {
        let (me, them) = if i == 0 {
            ("10.1.", "10.2.")
        } else {
            ("10.2.", "10.1.")
        };
        let mut c = child(
            "web",
            vec![subnet(&format!("{me}80.0"), &format!("{me}80.255"))],
            vec![subnet(&format!("{them}80.0"), &format!("{them}80.255"))],
        );
        if pfs {
            Arc::make_mut(&mut c).proposals = esp("aes256gcm16-x25519");
        }
        side[0].children.push(c);
    }
    s
}

#[test]
fn second_child_comes_up_with_create_child_sa() {
    let mut p = Pair::new(two_children(false));
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &["net", "web"]).unwrap();
    p.run_for(secs(10));
    p.assert_kernels_match();
    assert_eq!(installed_names(p.a()), ["net", "web"]);
    assert_eq!(installed_names(p.b()), ["net", "web"]);
    assert_eq!(p.a().count_sent(ExchangeType::CREATE_CHILD_SA, false), 1);
    assert_eq!(p.a().ep.ike_sa(id).unwrap().children.len(), 2);
}

#[test]
fn create_child_sa_with_pfs_from_either_side() {
    for side in [0, 1] {
        let mut p = Pair::new(two_children(true));
        p.connect(0, "site-b");
        let id = p.peers[side].ep.ike_sas().next().unwrap().id;
        let now = p.now;
        p.peers[side].ep.initiate_child(now, id, "web").unwrap();
        p.run_for(secs(10));
        p.assert_kernels_match();
        assert_eq!(installed_names(&p.peers[1 - side]), ["net", "web"]);
        let web = p.peers[side]
            .kernel
            .installed
            .values()
            .find(|c| c.name == "web")
            .unwrap()
            .clone();
        assert_eq!(web.suite.ke, Some(KeId::CURVE25519));
        assert!(web.initiator);
        assert_eq!(web.encr_in.len(), 32 + 4);
        // The CREATE_CHILD_SA request carried a KE payload.
        assert_eq!(
            p.peers[side].count_sent(ExchangeType::CREATE_CHILD_SA, false),
            1
        );
    }
}

#[test]
fn create_child_sa_invalid_ke_is_retried_with_the_wanted_group() {
    let mut s = two_children(true);
    Arc::make_mut(&mut s.peers[0][0].children[1]).proposals = esp("aes256gcm16-ecp256-x25519");
    Arc::make_mut(&mut s.peers[1][0].children[1]).proposals = esp("aes256gcm16-x25519-ecp256");
    let mut p = Pair::new(s);
    let id = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.initiate_child(now, id, "web").unwrap();
    p.run_for(secs(10));
    p.assert_kernels_match();
    assert_eq!(p.a().count_sent(ExchangeType::CREATE_CHILD_SA, false), 2);
    let web = p
        .a()
        .kernel
        .installed
        .values()
        .find(|c| c.name == "web")
        .unwrap()
        .clone();
    assert_eq!(web.suite.ke, Some(KeId::CURVE25519));
}

#[test]
fn create_child_sa_refusals_are_reported() {
    let mut s = two_children(false);
    Arc::make_mut(&mut s.peers[1][0].children[1]).proposals = esp("aes256-sha256");
    let mut p = Pair::new(s);
    let id = p.connect(0, "site-b");
    let now = p.now;
    p.a().ep.initiate_child(now, id, "web").unwrap();
    p.run_for(secs(10));
    assert!(matches!(
        &child_failed(&p.a().events())[..],
        [ChildFailReason::NoProposalChosen { by_peer: true, .. }]
    ));
    assert!(matches!(
        &child_failed(&p.b().events())[..],
        [ChildFailReason::NoProposalChosen { by_peer: false, .. }]
    ));
    assert_eq!(installed_names(p.a()), ["net"]);
    assert!(p.a().kernel.larval.is_empty());
    assert_eq!(
        p.a().ep.initiate_child(now, id, "nope"),
        Err(CommandError::UnknownChild {
            peer: "site-b".into(),
            child: "nope".into()
        })
    );
}

#[test]
fn commands_are_checked() {
    let mut p = Pair::default_pair();
    let now = p.now;
    assert_eq!(
        p.a().ep.initiate(now, "nobody", &[]),
        Err(CommandError::UnknownPeer("nobody".into()))
    );
    assert!(matches!(
        p.a().ep.initiate(now, "site-b", &["nope"]),
        Err(CommandError::UnknownChild { .. })
    ));
    assert_eq!(
        p.a().ep.terminate_ike(now, IkeSaId(99)),
        Err(CommandError::NoSuchSa)
    );
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    assert_eq!(
        p.a().ep.send_liveness_check(now, id),
        Err(CommandError::WrongState(IkeState::Connecting))
    );
    // Abandoning a connecting SA frees what it allocated.
    p.drive();
    p.a().ep.terminate_ike(now, id).unwrap();
    p.run_for(secs(60));
    p.assert_kernels_empty();
    assert!(p.a().ep.is_empty());
}

#[test]
fn cookies_are_required_under_load_and_the_initiator_retries_with_them() {
    let mut s = Setup::default();
    s.cfg[1].cookie_threshold = Some(0);
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    p.assert_kernels_match();
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 2);
    let first_answer = &p.b().sent[0].1.payload;
    let m = crate::wire::Message::parse(first_answer, &Default::default()).unwrap();
    assert!(
        matches!(&m.payloads[..], [crate::wire::Payload::Notify(n)] if n.cookie_data().is_some())
    );
    // The retried request starts with the cookie.
    let retry = &p.a().sent[1].1.payload;
    let m = crate::wire::Message::parse(retry, &Default::default()).unwrap();
    assert!(matches!(&m.payloads[0], crate::wire::Payload::Notify(n) if n.cookie_data().is_some()));
}

#[test]
fn responder_picks_the_peer_config_by_identity() {
    // Two road warriors, any address, told apart by IDi; each with its own
    // key and subnet.
    let mut s = Setup::default();
    let warrior = |name: &str, id: &str, net: &str| PeerCfg {
        name: name.into(),
        local_addrs: vec![AddrSpec::Any],
        remote_addrs: vec![AddrSpec::Any],
        remote_id: Some(crate::wire::Identification::rfc822(id)),
        children: vec![child(
            "rw",
            vec![subnet("10.2.0.0", "10.2.255.255")],
            vec![subnet(net, net)],
        )],
        ..right_cfg()
    };
    s.peers[1] = vec![
        warrior("alice", "alice@example.org", "10.1.0.1"),
        warrior("bob", "bob@example.org", "10.1.0.2"),
    ];
    let keys = crate::sa::PskTable {
        entries: vec![
            (
                vec![crate::wire::Identification::rfc822("alice@example.org")],
                crate::crypto::Secret::from_slice(b"alice's key"),
            ),
            (
                vec![crate::wire::Identification::rfc822("bob@example.org")],
                crate::crypto::Secret::from_slice(b"bob's key"),
            ),
        ],
    };
    s.psk[1] = std::sync::Arc::new(keys.clone());
    s.psk[0] = std::sync::Arc::new(keys);
    s.peers[0][0].local_id = crate::wire::Identification::rfc822("bob@example.org");
    Arc::make_mut(&mut s.peers[0][0].children[0]).local_ts = vec![subnet("10.1.0.2", "10.1.0.2")];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    let b = p.b().events();
    assert!(
        matches!(&b[0], Event::IkeEstablished { peer, .. } if peer == "bob"),
        "{b:?}"
    );
    p.assert_kernels_match();
    let info = p.b().ep.ike_sas().next().unwrap();
    assert_eq!(info.peer.as_deref(), Some("bob"));
    // Only the chosen configuration is kept by the established SA.
    assert_eq!(p.b().ep.candidates_held(), vec![1]);
    assert_eq!(
        info.remote_id,
        Some(crate::wire::Identification::rfc822("bob@example.org"))
    );
}

#[test]
fn unknown_identity_is_authentication_failed() {
    let mut s = Setup::default();
    s.peers[0][0].local_id = crate::wire::Identification::fqdn("mallory.example");
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.b().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    assert_eq!(
        failed(&p.a().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: true }]
    );
    p.assert_kernels_empty();
}

#[test]
fn ipv6_peers_with_address_and_dn_identities() {
    use crate::wire::Identification;
    let (l, r) = ("2001:db8::1", "2001:db8:1::1");
    let dn = Identification::der_dn(vec![
        0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x02, b'g', b'w',
    ]);
    let mk = |me: &str, peer: &str, net_me: (&str, &str), net_peer: (&str, &str)| PeerCfg {
        local_id: Identification::ipv6(me.parse().unwrap()),
        remote_id: None,
        ..site(
            "v6",
            me,
            peer,
            subnet(net_me.0, net_me.1),
            subnet(net_peer.0, net_peer.1),
        )
    };
    let mut s = Setup {
        addrs: [
            std::net::SocketAddr::new(v4(l), 500),
            std::net::SocketAddr::new(v4(r), 500),
        ],
        ..Setup::default()
    };
    let a_net = ("fd00:1::", "fd00:1::ffff");
    let b_net = ("fd00:2::", "fd00:2::ffff");
    s.peers[0] = vec![mk(l, r, a_net, b_net)];
    let mut right = mk(r, l, b_net, a_net);
    right.local_id = dn.clone();
    s.peers[1] = vec![right];
    let mut p = Pair::new(s);
    p.connect(0, "v6");
    p.assert_kernels_match();
    let info = p.a().ep.ike_sas().next().unwrap();
    assert_eq!(info.remote_id, Some(dn));
    assert_eq!(info.remote_addr, std::net::SocketAddr::new(v4(r), 500));
}

#[test]
fn reload_keeps_established_sas() {
    let mut p = Pair::default_pair();
    let id = p.connect(0, "site-b");
    let now = p.now;
    p.b().ep.set_config(now, Vec::<PeerCfg>::new());
    p.a().ep.set_config(now, Vec::<PeerCfg>::new());
    p.run_for(secs(5));
    p.assert_kernels_match();
    p.a().ep.send_liveness_check(now, id).unwrap();
    p.run_for(secs(1));
    assert!(matches!(
        p.a().events().last(),
        Some(Event::PeerAlive { .. })
    ));
    // New SAs use the new (empty) configuration.
    assert_eq!(
        p.a().ep.initiate(now, "site-b", &[]),
        Err(CommandError::UnknownPeer("site-b".into()))
    );
    // A new initiation to the reloaded responder finds no config.
    let now = p.now;
    p.b().ep.set_config(now, vec![right_cfg()]);
    p.a().ep.set_config(now, vec![left_cfg()]);
    p.connect(0, "site-b");
    assert_eq!(p.a().kernel.installed.len(), 2);
    p.assert_kernels_match();
}

#[test]
fn thousand_ike_sas_come_up() {
    // 1,000 IKE SAs of one connection at once (no initiator pacing), so
    // that the responder asks for cookies: none may send INITIAL_CONTACT
    // (the responder would remove the others of the identity pair), as
    // with 1,000 peers of their own identities; and from one address,
    // the responder's per-address limit (`block_threshold`) would drop
    // all but five.
    let mut s = Setup::default();
    s.peers[0][0].behaviour.unique = Unique::Never;
    s.cfg[0].init_window = 0;
    s.cfg[1].dos.block_threshold = None;
    let mut p = Pair::new(s);
    let now = p.now;
    let ids: Vec<IkeSaId> = (0..1000)
        .map(|_| p.a().ep.initiate(now, "site-b", &[]).unwrap())
        .collect();
    p.run_for(secs(30));
    assert_eq!(p.a().ep.len(), 1000);
    assert_eq!(p.b().ep.len(), 1000);
    assert!(
        p.a()
            .ep
            .ike_sas()
            .all(|s| s.state == IkeState::Established && s.children.len() == 1)
    );
    assert_eq!(p.a().kernel.installed.len(), 1000);
    p.assert_kernels_match();
    assert!(failed(&p.a().events()).is_empty() && failed(&p.b().events()).is_empty());
    // More than the cookie threshold were half-open at once: cookies were used.
    assert!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false) > 1000);
    let now = p.now;
    for id in ids {
        p.a().ep.terminate_ike(now, id).unwrap();
    }
    p.run_for(secs(10));
    p.assert_kernels_empty();
    assert!(p.b().ep.is_empty());
}

#[test]
fn wrong_psk_on_the_initiator_side_too() {
    let mut s = Setup::default();
    s.psk[0] = psk_store(b"typo");
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.a().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: true }]
    );
    assert_eq!(
        failed(&p.b().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    p.assert_kernels_empty();
}

/// The first datagram side 0 sent, parsed.
fn first_request(p: &mut Pair) -> crate::wire::Message {
    crate::wire::Message::parse(&p.a().sent[0].1.payload, &Default::default()).unwrap()
}

fn answer(req: &crate::wire::Message, n: crate::wire::Notify) -> Vec<u8> {
    crate::wire::Message {
        header: crate::wire::Header {
            flags: crate::wire::Flags::RESPONSE,
            ..req.header
        },
        payloads: vec![crate::wire::Payload::Notify(n)],
    }
    .emit()
    .unwrap()
}

#[test]
fn invalid_ke_for_a_group_we_never_offered_fails_clearly() {
    let mut p = Pair::default_pair();
    p.policy = Box::new(|_, _, _| Fate::Drop);
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    let req = first_request(&mut p);
    let bytes = answer(
        &req,
        crate::wire::Notify::invalid_ke_payload(KeId::MODP_2048),
    );
    let (la, ra) = (p.a().addr, p.b().addr);
    p.a().ep.handle_datagram(now, la, ra, &bytes);
    p.drive();
    let f = failed(&p.a().events());
    assert_eq!(
        f,
        [IkeFailReason::InvalidKe {
            requested: KeId::MODP_2048
        }]
    );
    assert!(f[0].to_string().contains("MODP_2048"), "{}", f[0]);
    p.assert_kernels_empty();
}

#[test]
fn invalid_ke_ping_pong_is_bounded() {
    // A responder that asks for the other offered group every time.
    let mut s = Setup::default();
    s.peers[0][0].ike_proposals = ike("aes128gcm16-prfsha256-x25519-ecp256");
    let mut p = Pair::new(s);
    p.policy = Box::new(|_, _, _| Fate::Drop);
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    let (la, ra) = (p.a().addr, p.b().addr);
    for i in 0.. {
        let req = first_request(&mut p);
        let g = if i % 2 == 0 {
            KeId::ECP_256
        } else {
            KeId::CURVE25519
        };
        let bytes = answer(&req, crate::wire::Notify::invalid_ke_payload(g));
        p.a().ep.handle_datagram(now, la, ra, &bytes);
        p.drive();
        if !failed(&p.a().events()).is_empty() {
            assert_eq!(i, 5, "gave up after max_invalid_ke_retries");
            break;
        }
        // The retry is the last datagram sent; put it first for the next round.
        let last = p.a().sent.pop().unwrap();
        p.a().sent.insert(0, last);
    }
}

#[test]
fn unsupported_critical_payload_is_answered_and_reported() {
    let mut p = Pair::default_pair();
    p.policy = Box::new(|_, _, _| Fate::Drop);
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    let mut req = first_request(&mut p);
    req.payloads.insert(
        1,
        crate::wire::Payload::Unknown {
            payload_type: crate::wire::codes::PayloadType(200),
            critical: true,
            body: vec![1, 2, 3],
        },
    );
    let bytes = req.emit().unwrap();
    let (la, ra) = (p.a().addr, p.b().addr);
    p.b().ep.handle_datagram(now, ra, la, &bytes);
    p.drive();
    let resp = p.b().sent.last().unwrap().1.payload.clone();
    let m = crate::wire::Message::parse(&resp, &Default::default()).unwrap();
    let [crate::wire::Payload::Notify(n)] = &m.payloads[..] else {
        panic!("{m:?}");
    };
    assert_eq!(
        n.unsupported_payload_type(),
        Some(crate::wire::codes::PayloadType(200))
    );
    assert!(p.b().ep.is_empty());
    p.a().ep.handle_datagram(now, la, ra, &resp);
    p.drive();
    assert_eq!(
        failed(&p.a().events()),
        [IkeFailReason::UnsupportedCriticalPayload { by_peer: true }]
    );
}

#[test]
fn childless_ike_sa_comes_up_without_kernel_state() {
    // RFC 6023: a connection without children makes an IKE SA without a
    // Child SA; both sides announce CHILDLESS_IKEV2_SUPPORTED.
    let mut s = Setup::default();
    let mut left = left_cfg();
    left.children.clear();
    s.peers[0] = vec![left];
    let mut p = Pair::new(s);
    let id = p.connect(0, "site-b");
    let a = p.a().events();
    assert!(
        matches!(&a[..], [Event::IkeEstablished { id: x, .. }] if *x == id),
        "{a:?}"
    );
    assert!(matches!(
        &p.b().events()[..],
        [Event::IkeEstablished { .. }]
    ));
    assert!(p.a().kernel.installed.is_empty() && p.b().kernel.installed.is_empty());
    assert!(p.a().kernel.larval.is_empty(), "no SPI allocated");
    assert_eq!(p.a().ep.ike_sa(id).unwrap().state, IkeState::Established);
    assert!(p.a().ep.ike_sa(id).unwrap().children.is_empty());
    let childless = |p: &Peer, response: bool| {
        p.sent.iter().any(|(_, t)| {
            crate::wire::Message::parse(&t.payload, &Default::default()).is_ok_and(|m| {
                m.header.exchange == ExchangeType::IKE_SA_INIT
                    && m.header.is_response() == response
                    && m.iter().any(|pl| {
                        matches!(pl, crate::wire::Payload::Notify(n)
                            if n.notify_type == crate::wire::codes::NotifyType::CHILDLESS_IKEV2_SUPPORTED)
                    })
            })
        })
    };
    assert!(childless(p.a(), false), "initiator announces it");
    assert!(childless(p.b(), true), "responder announces it");
}

#[test]
fn sas_by_peer_name_follow_the_responders_choice_and_removal() {
    let mut p = Pair::default_pair();
    let id = p.connect(0, "site-b");
    let ids = |p: &mut Pair, side: usize, name: &str| -> Vec<IkeSaId> {
        p.peers[side].ep.ike_sas_of(name).map(|s| s.id).collect()
    };
    assert_eq!(ids(&mut p, 0, "site-b"), [id]);
    assert_eq!(
        ids(&mut p, 1, "site-a").len(),
        1,
        "the responder's chosen config"
    );
    assert!(ids(&mut p, 0, "site-a").is_empty());
    let now = p.now;
    p.a().ep.terminate_ike(now, id).unwrap();
    p.run_for(secs(5));
    assert!(ids(&mut p, 0, "site-b").is_empty());
    assert!(ids(&mut p, 1, "site-a").is_empty());
}

/// Per-tunnel memory: the engine's per-SA structs must not grow (an
/// `IkeSa` is per tunnel; docs/performance.md). Run with `--nocapture` to
/// see the sizes.
#[test]
fn per_sa_structs_do_not_grow() {
    let ike = std::mem::size_of::<crate::sa::ike_sa::IkeSa>();
    let child = std::mem::size_of::<crate::sa::child_create::Child>();
    println!("size_of IkeSa {ike}, Child {child}");
    assert!(ike <= 848 && child <= 248, "IkeSa {ike}, Child {child}");
}

/// Wall-clock time is an input: the engine derives UTC for any `now` from
/// the driver's last anchor, and follows a step of the system clock.
#[test]
fn utc_comes_from_the_drivers_wall_clock() {
    let mut p = Pair::default_pair();
    let now = p.now;
    // The harness anchors the simulated clock at UTC0.
    assert_eq!(
        p.a().ep.utc(now),
        Some(std::time::SystemTime::UNIX_EPOCH + secs(UTC0))
    );
    let utc = std::time::SystemTime::UNIX_EPOCH + secs(1_800_000_000);
    p.a().ep.set_wall_clock(now, utc);
    p.run_for(secs(30));
    let later = p.now;
    assert_eq!(p.a().ep.utc(later), Some(utc + (later - now)));
    // The system clock is set back a day.
    let back = utc - secs(86_400);
    p.a().ep.set_wall_clock(later, back);
    assert_eq!(p.a().ep.utc(later + secs(1)), Some(back + secs(1)));
}
