//! IKE_AUTH's public-key work as CPU jobs handed to the driver
//! (`ComputeMode::Outside`): our signature, the peer's certificate path
//! and signature. The handshake waits for each and goes on with its
//! result, in whatever order results come; a result whose IKE SA is gone
//! is dropped.

use std::sync::Arc;

use super::certs::*;
use super::*;
use crate::pki::cert::Certificate;
use crate::pki::chain::Revocation;

const A_ID: &str = "192.0.2.1.example";
const B_ID: &str = "198.51.100.1.example";

/// Both sides' certificates of one root (RSA: its signatures are
/// deterministic, so inline and outside runs send the same bytes).
struct Pki {
    root: Arc<Certificate>,
    creds: [Arc<crate::sa::LocalCred>; 2],
}

fn pki() -> Pki {
    let mut root = Ca::root("Test Root", Alg::P256);
    let (ka, ca, _) = root.issue("gw-a", A_ID, Alg::Rsa(0), |_| {});
    let (kb, cb, _) = root.issue("gw-b", B_ID, Alg::Rsa(1), |_| {});
    Pki {
        root: root.cert.clone(),
        creds: [cred(&ka, vec![ca]), cred(&kb, vec![cb])],
    }
}

fn setup(pki: &Pki, mode: ComputeMode) -> Setup {
    let mut s = Setup::default();
    for i in 0..2 {
        s.cfg[i].compute = mode;
        let cfg = &mut s.peers[i][0];
        cfg.local_auth = LocalAuthCfg::Pubkey(pki.creds[i].clone());
        cfg.remote_auth = RemoteAuthCfg::Pubkey {
            cacerts: Vec::new(),
            pubkeys: Vec::new(),
            revocation: Revocation::Relaxed,
            constraints: Vec::new(),
        };
    }
    s.trust = [store(&[&pki.root]), store(&[&pki.root])];
    s
}

fn up(p: &mut Pair) -> bool {
    [p.a().events(), p.b().events()]
        .iter()
        .all(|e| e.iter().any(|e| matches!(e, Event::IkeEstablished { .. })))
}

#[test]
fn signatures_on_workers_send_what_inline_sends() {
    let pki = pki();
    let mut inline = Pair::new(setup(&pki, ComputeMode::Inline));
    inline.connect(0, "site-b");
    assert!(up(&mut inline));
    let mut p = Pair::new(setup(&pki, ComputeMode::Outside));
    p.connect(0, "site-b");
    assert!(up(&mut p));
    p.assert_kernels_match();
    // Per side: the key exchange (the initiator's key pair, then its
    // shared secret), our signature, the peer's check.
    assert_eq!(p.computes, [4, 3]);
    assert_eq!(inline.computes, [0, 0]);
    p.assert_sent_what(&inline);
}

#[test]
fn signature_results_in_any_order_bring_every_sa_up() {
    let pki = pki();
    let mut s = setup(&pki, ComputeMode::Outside);
    s.cfg[1].cookie_threshold = None;
    s.peers[0][0].behaviour.unique = crate::sa::config::Unique::Never;
    s.cfg[0].init_window = 0;
    s.cfg[1].dos.cookie_threshold_ip = None;
    s.cfg[1].dos.block_threshold = None;
    let mut p = Pair::new(s);
    p.hold_compute = [true, true];
    let now = p.now;
    for _ in 0..5 {
        p.a().ep.initiate(now, "site-b", &[]).unwrap();
    }
    p.drive();
    // Key exchanges (right, then left), then the initiators' signatures,
    // the responders' checks and signatures, the initiators' checks: each
    // round is released latest first, the other side's still held.
    // Each round, one side holds a job of each IKE SA; they are released
    // latest first.
    let mut rounds = Vec::new();
    while !p.held_compute[0].is_empty() || !p.held_compute[1].is_empty() {
        assert!(rounds.len() < 10 && !up(&mut p));
        let i = usize::from(p.held_compute[0].is_empty());
        assert!(p.held_compute[1 - i].is_empty());
        let kinds: Vec<String> = p.held_compute[i]
            .iter()
            .map(|j| format!("{j:?}").split("op: \"").nth(1).unwrap()[..4].into())
            .collect();
        assert!(kinds.iter().all(|k| *k == kinds[0]), "{kinds:?}");
        rounds.push((i, kinds.len(), kinds[0].clone()));
        p.release_compute(i);
        p.drive();
    }
    // Left's key pairs, right's key exchanges, left's, left's signatures, right's checks,
    // then right's signatures (the check first), left's checks.
    let want: Vec<_> = [
        (0, "Star"),
        (1, "Resp"),
        (0, "Comp"),
        (0, "Sign"),
        (1, "Veri"),
        (1, "Sign"),
        (0, "Veri"),
    ]
    .iter()
    .map(|(i, k)| (*i, 5, k.to_string()))
    .collect();
    assert_eq!(rounds, want);
    p.run_for(secs(5));
    assert!(
        p.a()
            .ep
            .ike_sas()
            .all(|s| s.state == IkeState::Established && s.children.len() == 1),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    assert_eq!(p.a().ep.len(), 5);
    assert_eq!(p.a().kernel.installed.len(), 5);
    p.assert_kernels_match();
    assert!(failed(&p.a().events()).is_empty() && failed(&p.b().events()).is_empty());
    assert_eq!(p.computes, [20, 15]);
}

#[test]
fn the_responder_checks_once_while_the_initiator_retransmits() {
    let pki = pki();
    let mut p = Pair::new(setup(&pki, ComputeMode::Outside));
    p.hold_compute = [false, true];
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    p.release_compute(1);
    p.drive();
    // The responder checks the initiator's AUTH; the initiator
    // retransmits its IKE_AUTH request meanwhile.
    assert_eq!(p.held_compute[1].len(), 1);
    assert!(format!("{:?}", p.held_compute[1][0]).contains("Verify"));
    p.run_for(secs(12));
    assert!(p.a().count_sent(ExchangeType::IKE_AUTH, false) >= 3);
    assert_eq!(p.held_compute[1].len(), 1);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 0);
    // Checked, then our signature, then the answer.
    p.release_compute(1);
    p.drive();
    assert_eq!(p.held_compute[1].len(), 1);
    assert!(format!("{:?}", p.held_compute[1][0]).contains("Sign"));
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 0);
    p.release_compute(1);
    p.run_for(secs(5));
    assert!(up(&mut p));
    p.assert_kernels_match();
    assert_eq!(p.computes, [4, 3]);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 1);
}

#[test]
fn a_signature_for_an_sa_that_is_gone_is_dropped() {
    let pki = pki();
    // The initiator's SA goes while its signature is made.
    let mut p = Pair::new(setup(&pki, ComputeMode::Outside));
    p.hold_compute = [true, false];
    let now = p.now;
    let id = p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    // The key pair, the shared secret.
    for _ in 0..2 {
        p.release_compute(0);
        p.drive();
    }
    assert_eq!(p.held_compute[0].len(), 1);
    assert!(format!("{:?}", p.held_compute[0][0]).contains("Sign"));
    let now = p.now;
    p.a().ep.terminate_ike(now, id).unwrap();
    p.release_compute(0);
    p.drive();
    assert!(p.a().ep.is_empty());
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 0);
    // The responder's SA goes while it checks the peer's AUTH.
    let mut p = Pair::new(setup(&pki, ComputeMode::Outside));
    p.hold_compute = [false, true];
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.drive();
    p.release_compute(1);
    p.drive();
    assert_eq!(p.held_compute[1].len(), 1);
    let b = p.b().ep.ike_sas().next().unwrap().id;
    let now = p.now;
    p.b().ep.terminate_ike(now, b).unwrap();
    p.drive();
    p.release_compute(1);
    p.drive();
    assert!(p.b().ep.is_empty());
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 0);
    p.run_for(secs(200));
    p.assert_kernels_empty();
    assert!(p.a().ep.is_empty());
}

#[test]
fn a_bad_signature_found_by_a_worker_is_refused() {
    let pki = pki();
    let mut s = setup(&pki, ComputeMode::Outside);
    // The responder expects another key than the initiator signs with.
    let other = Key::new(Alg::P256).private().public_key().clone();
    s.peers[1][0].remote_auth = RemoteAuthCfg::Pubkey {
        cacerts: Vec::new(),
        pubkeys: vec![other],
        revocation: Revocation::Relaxed,
        constraints: Vec::new(),
    };
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
    // Left: key pair, shared secret and signature; right: key exchange
    // and check.
    assert_eq!(p.computes, [3, 2]);
    p.assert_kernels_empty();
}
