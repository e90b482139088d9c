//! The key exchanges of IKE_SA_INIT (the initiator's key pair too) as CPU
//! jobs handed to the driver
//! (`ComputeMode::Outside`): the engine goes on meanwhile and continues
//! on each result, in whatever order they come.

use super::*;

fn outside() -> Setup {
    let mut s = Setup::default();
    for c in &mut s.cfg {
        c.compute = ComputeMode::Outside;
    }
    s
}

#[test]
fn jobs_on_workers_send_what_inline_sends() {
    let mut inline = Pair::default_pair();
    inline.connect(0, "site-b");
    let mut p = Pair::new(outside());
    p.connect(0, "site-b");
    p.assert_kernels_match();
    assert_eq!(p.a().kernel.installed.len(), 1);
    // The initiator's key pair and shared secret, the responder's key
    // exchange.
    assert_eq!(p.computes, [2, 1]);
    assert_eq!(inline.computes, [0, 0]);
    // The deterministic provider: the same messages, byte for byte.
    p.assert_sent_what(&inline);
}

#[test]
fn results_in_any_order_bring_every_sa_up() {
    let mut s = outside();
    s.cfg[1].cookie_threshold = None;
    // 20 IKE SAs of one connection: none may send INITIAL_CONTACT (the
    // responder would remove the others of the identity pair).
    s.peers[0][0].behaviour.unique = crate::sa::config::Unique::Never;
    s.cfg[0].init_window = 0;
    // 20 at once from one address: past the per-address limits.
    s.cfg[1].dos.cookie_threshold_ip = None;
    s.cfg[1].dos.block_threshold = None;
    let mut p = Pair::new(s);
    p.hold_compute = [true, true];
    let now = p.now;
    for _ in 0..20 {
        p.a().ep.initiate(now, "site-b", &[]).unwrap();
    }
    p.drive();
    // The initiator's key pairs first: nothing goes out before them.
    assert_eq!(p.held_compute[0].len(), 20);
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 0);
    p.release_compute(0);
    assert_eq!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false), 20);
    // The responder asked for 20 key exchanges and answered none yet.
    assert_eq!(p.held_compute[1].len(), 20);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_SA_INIT, true), 0);
    assert_eq!(p.b().ep.len(), 20);
    p.release_compute(1);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_SA_INIT, true), 20);
    // The initiator's, last first.
    assert_eq!(p.held_compute[0].len(), 20);
    p.release_compute(0);
    p.run_for(secs(5));
    assert!(
        p.a()
            .ep
            .ike_sas()
            .all(|s| s.state == IkeState::Established && s.children.len() == 1)
    );
    assert_eq!(p.a().kernel.installed.len(), 20);
    p.assert_kernels_match();
    assert!(failed(&p.a().events()).is_empty() && failed(&p.b().events()).is_empty());
    assert_eq!(p.computes, [40, 20]);
}

#[test]
fn retransmissions_while_computing_are_computed_once() {
    let mut p = Pair::new(outside());
    p.hold_compute = [false, true];
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    // The initiator retransmits twice; the responder keeps one half-open
    // SA and one job, and answers nothing before it is done.
    p.run_for(secs(12));
    assert!(p.a().count_sent(ExchangeType::IKE_SA_INIT, false) >= 3);
    assert_eq!(p.held_compute[1].len(), 1);
    assert_eq!(p.b().ep.len(), 1);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_SA_INIT, true), 0);
    p.release_compute(1);
    p.run_for(secs(5));
    assert_eq!(
        p.a().ep.ike_sas().next().unwrap().state,
        IkeState::Established
    );
    p.assert_kernels_match();
    assert_eq!(p.computes, [2, 1]);
}

#[test]
fn a_result_for_an_sa_that_is_gone_is_dropped() {
    // The initiator's SA goes while its key pair is made: nothing goes
    // out.
    let mut p = Pair::new(outside());
    p.hold_compute = [true, true];
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    assert!(format!("{:?}", p.held_compute[0][0]).contains("Start"));
    p.a().ep.terminate_ike(now, id).unwrap();
    p.release_compute(0);
    assert!(p.a().ep.is_empty());
    assert!(p.a().sent.is_empty());
    // Its shared secret: the responder's half-open SA times out.
    let mut p = Pair::new(outside());
    p.hold_compute = [true, true];
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    p.release_compute(0);
    p.release_compute(1);
    assert!(format!("{:?}", p.held_compute[0][0]).contains("Complete"));
    let now = p.now;
    p.a().ep.terminate_ike(now, id).unwrap();
    assert!(p.a().ep.is_empty());
    p.release_compute(0);
    assert!(p.a().ep.is_empty());
    p.run_for(secs(40));
    assert!(p.b().ep.is_empty());
    p.assert_kernels_empty();
    // Nothing but IKE_SA_INIT went out.
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 0);
}

#[test]
fn a_bad_key_exchange_value_found_by_a_worker_is_refused() {
    use crate::wire::{Message, ParseLimits, Payload};
    let mut p = Pair::new(outside());
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    let job = p.a().ep.poll_compute().unwrap();
    p.a().ep.handle_computed(now, job.run());
    let t = std::iter::from_fn(|| p.a().ep.poll_transmit())
        .find(|t| t.payload.len() > 100)
        .unwrap();
    // X25519's all-zero value: only the key exchange itself finds out.
    let mut m = Message::parse(&t.payload, &ParseLimits::default()).unwrap();
    for pl in &mut m.payloads {
        if let Payload::Ke(k) = pl {
            k.data = vec![0; 32];
        }
    }
    let bytes = m.emit().unwrap();
    p.b().ep.handle_datagram(now, t.remote, t.local, &bytes);
    assert!(p.b().ep.poll_transmit().is_none());
    assert_eq!(p.b().ep.len(), 1);
    let job = p.b().ep.poll_compute().unwrap();
    assert!(p.b().ep.poll_compute().is_none());
    p.b().ep.handle_computed(now, job.run());
    let r = p.b().ep.poll_transmit().unwrap();
    let r = Message::parse(&r.payload, &ParseLimits::default()).unwrap();
    assert!(
        matches!(&r.payloads[..], [Payload::Notify(n)] if n.notify_type == crate::wire::codes::NotifyType::INVALID_SYNTAX),
        "{r:?}"
    );
    assert!(p.b().ep.is_empty());
}
