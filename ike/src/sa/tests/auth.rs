//! Authentication: the responder's choice of the connection by identity
//! and authentication class; certificates and signatures.

use std::sync::Arc;

use super::failed;
use super::harness::*;
use crate::sa::*;
use crate::wire::Identification;

/// A connection of the responder's that accepts anyone (`remote_id`
/// `%any`), with the same addresses as `right_cfg`, listed first.
fn catch_all() -> PeerCfg {
    PeerCfg {
        name: "catch-all".into(),
        remote_id: None,
        children: vec![child(
            "any",
            vec![subnet("10.2.0.0", "10.2.255.255")],
            vec![subnet("10.9.0.0", "10.9.255.255")],
        )],
        ..right_cfg()
    }
}

#[test]
fn a_catch_all_connection_listed_first_does_not_capture_a_peer_with_its_own() {
    let mut s = Setup::default();
    s.peers[1] = vec![catch_all(), right_cfg()];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    let b = p.b().events();
    assert!(
        matches!(&b[0], Event::IkeEstablished { peer, .. } if peer == "site-a"),
        "{b:?}"
    );
    p.assert_kernels_match();
    // A peer no connection names still gets the catch-all one.
    let mut s = Setup::default();
    s.peers[1] = vec![catch_all(), right_cfg()];
    s.peers[0][0].local_id = Identification::fqdn("stranger.example");
    Arc::make_mut(&mut s.peers[0][0].children[0]).local_ts =
        vec![subnet("10.9.0.0", "10.9.255.255")];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    let b = p.b().events();
    assert!(
        matches!(&b[0], Event::IkeEstablished { peer, .. } if peer == "catch-all"),
        "{b:?}"
    );
    p.assert_kernels_match();
}

#[test]
fn an_exact_local_identity_beats_a_catch_all_one() {
    // Two connections for the same peer, told apart by the identity the
    // peer asks of us (IDr): the %any one listed first loses.
    let mut s = Setup::default();
    let any_local = PeerCfg {
        name: "any-local".into(),
        local_id: Identification {
            id_type: crate::wire::codes::IdType(0),
            data: Vec::new(),
        },
        ..right_cfg()
    };
    s.peers[1] = vec![any_local, right_cfg()];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    let b = p.b().events();
    assert!(
        matches!(&b[0], Event::IkeEstablished { peer, .. } if peer == "site-a"),
        "{b:?}"
    );
}

use super::certs::*;
use crate::pki::chain::Revocation;
use crate::pki::{HashAlg, SigScheme};
use crate::wire::codes::AuthMethod;

const A_ID: &str = "192.0.2.1.example";
const B_ID: &str = "198.51.100.1.example";

fn pubkey_remote() -> RemoteAuthCfg {
    RemoteAuthCfg::Pubkey {
        cacerts: Vec::new(),
        pubkeys: Vec::new(),
        revocation: Revocation::Relaxed,
        constraints: Vec::new(),
    }
}

/// A PKI and a setup in which both sides authenticate with certificates
/// of one root CA (`alg`s: the root's, left's and right's keys).
struct CertSetup {
    s: Setup,
    root: Ca,
}

fn cert_setup(root: Alg, a: Alg, b: Alg) -> CertSetup {
    let mut root = Ca::root("Test Root", root);
    let (ka, ca, _) = root.issue("gw-a", A_ID, a, |_| {});
    let (kb, cb, _) = root.issue("gw-b", B_ID, b, |_| {});
    let mut s = Setup::default();
    for (p, (k, c)) in [(0, (&ka, &ca)), (1, (&kb, &cb))] {
        let cfg = &mut s.peers[p][0];
        cfg.local_auth = LocalAuthCfg::Pubkey(cred(k, vec![c.clone()]));
        cfg.remote_auth = pubkey_remote();
    }
    s.trust = [store(&[&root.cert]), store(&[&root.cert])];
    CertSetup { s, root }
}

fn established(p: &mut Pair) -> bool {
    let a = p.a().events();
    let b = p.b().events();
    a.iter().any(|e| matches!(e, Event::IkeEstablished { .. }))
        && b.iter().any(|e| matches!(e, Event::IkeEstablished { .. }))
}

/// Both sides failed IKE_AUTH: right refused left (`right_refused`) or
/// left refused right; nothing in either kernel.
fn refused(p: &mut Pair, right_refused: bool) {
    let want = |by_peer| [IkeFailReason::AuthenticationFailed { by_peer }];
    let a = failed(&p.a().events());
    let b = failed(&p.b().events());
    assert_eq!(a, want(right_refused), "left: {:?}", p.a().events());
    assert_eq!(b, want(!right_refused), "right: {:?}", p.b().events());
    p.assert_kernels_empty();
}

#[test]
fn certificates_of_each_key_type_with_rfc7427_both_roles() {
    let cases = [
        (
            Alg::P256,
            Alg::P256,
            Alg::P256,
            false,
            SigScheme::Ecdsa(HashAlg::Sha256),
        ),
        (
            Alg::P384,
            Alg::P384,
            Alg::P256,
            false,
            SigScheme::Ecdsa(HashAlg::Sha384),
        ),
        (
            Alg::Rsa(0),
            Alg::Rsa(1),
            Alg::P256,
            false,
            SigScheme::RsaPkcs1(HashAlg::Sha256),
        ),
        (
            Alg::Rsa(0),
            Alg::Rsa(1),
            Alg::P384,
            true,
            SigScheme::RsaPss(HashAlg::Sha256),
        ),
        (
            Alg::P256,
            Alg::Ed25519,
            Alg::Rsa(0),
            false,
            SigScheme::Ed25519,
        ),
    ];
    for (root, a, b, pss, left_scheme) in cases {
        let mut c = cert_setup(root, a, b);
        if let LocalAuthCfg::Pubkey(cred) = &mut c.s.peers[0][0].local_auth {
            Arc::get_mut(cred).unwrap().rsa_pss = pss;
        }
        let mut p = Pair::new(c.s);
        p.connect(0, "site-b");
        assert!(
            established(&mut p),
            "{a:?}: {:?} {:?}",
            p.a().events(),
            p.b().events()
        );
        p.assert_kernels_match();
        // Right verified left's RFC 7427 signature, which came with one
        // certificate (right asked with a CERTREQ).
        let seen = std::mem::take(&mut p.b().ep.knobs().seen);
        assert_eq!(
            seen,
            [(AuthMethod::DIGITAL_SIGNATURE, Some(left_scheme), 1)],
            "{a:?}"
        );
        let seen = std::mem::take(&mut p.a().ep.knobs().seen);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, AuthMethod::DIGITAL_SIGNATURE);
        // Our identity is the configured one, the peer's as it proved it.
        let info = p.b().ep.ike_sas().next().unwrap();
        assert_eq!(info.remote_id, Some(fqdn(A_ID)));
    }
}

#[test]
fn classic_methods_with_a_peer_without_rfc7427() {
    for (alg, method) in [
        (Alg::P256, AuthMethod::ECDSA_SHA256_P256),
        (Alg::P384, AuthMethod::ECDSA_SHA384_P384),
        (Alg::Rsa(0), AuthMethod::RSA_SIG),
    ] {
        let c = cert_setup(Alg::P256, alg, alg);
        let mut p = Pair::new(c.s);
        // Right announces no hash algorithms: left signs with the classic
        // method of its key; right still gets left's and uses RFC 7427.
        p.b().ep.knobs().no_hash_algorithms = true;
        p.connect(0, "site-b");
        assert!(established(&mut p), "{alg:?}");
        assert_eq!(p.b().ep.knobs().seen, [(method, None, 1)], "{alg:?}");
        assert_eq!(p.a().ep.knobs().seen[0].0, AuthMethod::DIGITAL_SIGNATURE);
    }
    // Ed25519 has no classic method: left cannot authenticate.
    let c = cert_setup(Alg::P256, Alg::Ed25519, Alg::P256);
    let mut p = Pair::new(c.s);
    p.b().ep.knobs().no_hash_algorithms = true;
    p.connect(0, "site-b");
    assert!(
        matches!(&failed(&p.a().events())[..], [IkeFailReason::Internal(e)] if e.contains("RFC 7427")),
        "{:?}",
        p.a().events()
    );
    p.assert_kernels_empty();
}

#[test]
fn a_chain_through_an_intermediate_only_the_sender_holds() {
    let mut root = Ca::root("Test Root", Alg::P384);
    let mut sub = root.intermediate("Test Sub", Alg::P256);
    let (ka, ca, _) = sub.issue("gw-a", A_ID, Alg::P256, |_| {});
    let (kb, cb, _) = root.issue("gw-b", B_ID, Alg::P256, |_| {});
    let mut s = Setup::default();
    s.peers[0][0].local_auth = LocalAuthCfg::Pubkey(cred(
        &ka,
        vec![ca.clone(), sub.cert.clone(), root.cert.clone()],
    ));
    s.peers[1][0].local_auth = LocalAuthCfg::Pubkey(cred(&kb, vec![cb.clone()]));
    s.peers[0][0].remote_auth = pubkey_remote();
    s.peers[1][0].remote_auth = pubkey_remote();
    s.trust = [store(&[&root.cert]), store(&[&root.cert])];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert!(established(&mut p));
    // The end entity and the intermediate, never the root.
    assert_eq!(p.b().ep.knobs().seen[0].2, 2);
    p.assert_kernels_match();
}

#[test]
fn a_certreq_for_the_intermediate_spares_sending_it() {
    let mut root = Ca::root("Test Root", Alg::P256);
    let mut sub = root.intermediate("Test Sub", Alg::P256);
    let (ka, ca, _) = sub.issue("gw-a", A_ID, Alg::P256, |_| {});
    let (kb, cb, _) = root.issue("gw-b", B_ID, Alg::P256, |_| {});
    let mut s = Setup::default();
    s.peers[0][0].local_auth = LocalAuthCfg::Pubkey(cred(&ka, vec![ca.clone(), sub.cert.clone()]));
    s.peers[1][0].local_auth = LocalAuthCfg::Pubkey(cred(&kb, vec![cb.clone()]));
    s.peers[0][0].remote_auth = pubkey_remote();
    s.peers[1][0].remote_auth = pubkey_remote();
    // Right holds the intermediate: its CERTREQ names it.
    s.trust = [store(&[&root.cert]), store(&[&root.cert, &sub.cert])];
    let mut p = Pair::new(s);
    p.connect(0, "site-b");
    assert!(established(&mut p));
    assert_eq!(p.b().ep.knobs().seen[0].2, 1);
}

#[test]
fn send_cert_always_ifasked_never() {
    // (left's send_cert, right sends CERTREQ, established)
    for (send, certreq, up) in [
        (SendCert::Always, false, true),
        (SendCert::IfAsked, true, true),
        (SendCert::IfAsked, false, false),
        (SendCert::Never, true, false),
    ] {
        let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
        c.s.peers[0][0].send_cert = send;
        c.s.peers[1][0].send_certreq = certreq;
        let mut p = Pair::new(c.s);
        p.connect(0, "site-b");
        if up {
            assert!(established(&mut p), "{send:?} {certreq}");
        } else {
            refused(&mut p, true);
        }
    }
    // Without a certificate, a configured raw public key does.
    let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
    c.s.peers[0][0].send_cert = SendCert::Never;
    let LocalAuthCfg::Pubkey(left) = &c.s.peers[0][0].local_auth else {
        unreachable!()
    };
    let key = left.key.public_key().clone();
    c.s.peers[1][0].remote_auth = RemoteAuthCfg::Pubkey {
        cacerts: Vec::new(),
        pubkeys: vec![key],
        revocation: Revocation::Relaxed,
        constraints: Vec::new(),
    };
    let mut p = Pair::new(c.s);
    p.connect(0, "site-b");
    assert!(established(&mut p));
    assert_eq!(p.b().ep.knobs().seen[0].2, 0);
}

#[test]
fn refusals_expired_untrusted_wrong_id_unoffered_hash() {
    // Left's certificate expired before the simulated date.
    let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
    let (k, cert, _) = c.root.issue("gw-a", A_ID, Alg::P256, |p| {
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2026, 6, 1);
    });
    c.s.peers[0][0].local_auth = LocalAuthCfg::Pubkey(cred(&k, vec![cert]));
    let mut p = Pair::new(c.s);
    p.connect(0, "site-b");
    refused(&mut p, true);

    // Right does not trust left's CA.
    let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
    let other = Ca::root("Other Root", Alg::P256);
    c.s.trust[1] = store(&[&other.cert]);
    let mut p = Pair::new(c.s);
    p.connect(0, "site-b");
    refused(&mut p, true);

    // Left claims an identity its certificate does not name.
    let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
    c.s.peers[0][0].local_id = fqdn("gw-z.example");
    c.s.peers[1][0].remote_id = Some(fqdn("gw-z.example"));
    let mut p = Pair::new(c.s);
    p.connect(0, "site-b");
    refused(&mut p, true);

    // Left signs with SHA-1, which right did not offer.
    let c = cert_setup(Alg::P256, Alg::Rsa(0), Alg::P256);
    let mut p = Pair::new(c.s);
    p.a().ep.knobs().sign_scheme = Some(SigScheme::RsaPkcs1(HashAlg::Sha1));
    p.connect(0, "site-b");
    assert!(p.a().ep.knobs().seen.is_empty());
    refused(&mut p, true);

    // The initiator refuses the responder just as well (an untrusted CA).
    let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
    let other = Ca::root("Other Root", Alg::P256);
    c.s.trust[0] = store(&[&other.cert]);
    let mut p = Pair::new(c.s);
    p.connect(0, "site-b");
    refused(&mut p, false);
}

#[test]
fn a_psk_connection_never_accepts_a_signature_nor_the_reverse() {
    // Right has only a PSK connection for left: left's signature is refused.
    let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
    c.s.peers[1][0].remote_auth = RemoteAuthCfg::Psk;
    let mut p = Pair::new(c.s);
    p.connect(0, "site-b");
    refused(&mut p, true);
    // Right has only a certificate connection: left's PSK is refused.
    let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
    c.s.peers[0][0].local_auth = LocalAuthCfg::Psk;
    let mut p = Pair::new(c.s);
    p.connect(0, "site-b");
    refused(&mut p, true);
    // With both, each peer gets the connection of its class, whichever
    // is listed first.
    for cert_first in [false, true] {
        let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
        let certs = PeerCfg {
            name: "certs".into(),
            ..c.s.peers[1][0].clone()
        };
        let psk = PeerCfg {
            name: "psk".into(),
            local_auth: LocalAuthCfg::Psk,
            remote_auth: RemoteAuthCfg::Psk,
            ..c.s.peers[1][0].clone()
        };
        c.s.peers[1] = if cert_first {
            vec![certs, psk]
        } else {
            vec![psk, certs]
        };
        let mut p = Pair::new(c.s);
        p.connect(0, "site-b");
        let b = p.b().events();
        assert!(
            matches!(&b[0], Event::IkeEstablished { peer, .. } if peer == "certs"),
            "{b:?}"
        );
    }
}

#[test]
fn a_revoked_certificate_is_refused_after_the_crl_fetch() {
    let uri = "http://crl.example/root.crl";
    let mut root = Ca::root("Test Root", Alg::P256);
    let (ka, ca, serial) = root.issue("gw-a", A_ID, Alg::P256, crl_uri(uri));
    let (kb, cb, _) = root.issue("gw-b", B_ID, Alg::P256, |_| {});
    let mk = |revocation| {
        let mut s = Setup::default();
        s.peers[0][0].local_auth = LocalAuthCfg::Pubkey(cred(&ka, vec![ca.clone()]));
        s.peers[1][0].local_auth = LocalAuthCfg::Pubkey(cred(&kb, vec![cb.clone()]));
        s.peers[0][0].remote_auth = pubkey_remote();
        s.peers[1][0].remote_auth = RemoteAuthCfg::Pubkey {
            cacerts: Vec::new(),
            pubkeys: Vec::new(),
            revocation,
            constraints: Vec::new(),
        };
        s.trust = [store(&[&root.cert]), store(&[&root.cert])];
        s
    };
    // Revoked: refused once the CRL came.
    let mut p = Pair::new(mk(Revocation::Relaxed));
    p.crl_server[1].insert(uri.into(), root.crl(&[serial]));
    p.connect(0, "site-b");
    assert_eq!(p.crl_fetches[1].len(), 1);
    assert_eq!(p.crl_fetches[1][0].uris, [uri]);
    refused(&mut p, true);
    // Not revoked: up, strict or not.
    for r in [Revocation::Strict, Revocation::IfUri, Revocation::Relaxed] {
        let mut p = Pair::new(mk(r));
        p.crl_server[1].insert(uri.into(), root.crl(&[serial + 1000]));
        p.connect(0, "site-b");
        assert!(established(&mut p), "{r:?}");
        // The CRL stays in the store: the next IKE SA needs no fetch.
        assert!(!p.b().ep.trust_store().crls().is_empty());
    }
    // The fetch fails: the revocation policy decides.
    for (r, up) in [
        (Revocation::Strict, false),
        (Revocation::IfUri, false),
        (Revocation::Relaxed, true),
    ] {
        let mut p = Pair::new(mk(r));
        p.connect(0, "site-b");
        assert_eq!(p.crl_fetches[1].len(), 1, "{r:?}");
        if up {
            assert!(established(&mut p), "{r:?}");
        } else {
            refused(&mut p, true);
        }
    }
    // The IKE SA waits for the fetch (the peer's retransmissions are
    // dropped meanwhile), and goes on when it comes.
    let mut p = Pair::new(mk(Revocation::Strict));
    p.crl_server[1].insert(uri.into(), root.crl(&[]));
    p.hold_crl[1] = true;
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(std::time::Duration::from_secs(10));
    assert_eq!(
        p.held_crl[1].len(),
        1,
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    assert!(p.b().events().is_empty());
    assert!(
        p.a()
            .count_sent(crate::wire::codes::ExchangeType::IKE_AUTH, false)
            > 1
    );
    p.release_crl(1);
    p.run_for(std::time::Duration::from_secs(1));
    assert!(established(&mut p));
    p.assert_kernels_match();
    // A fetch that never answers: the half-open timeout ends the IKE SA,
    // nothing in the kernel; the late answer only fills the store.
    let mut p = Pair::new(mk(Revocation::Strict));
    p.crl_server[1].insert(uri.into(), root.crl(&[]));
    p.hold_crl[1] = true;
    p.connect(0, "site-b");
    assert_eq!(failed(&p.b().events()), [IkeFailReason::HalfOpenTimeout]);
    // Left gives up when its retransmissions run out.
    p.run_for(std::time::Duration::from_secs(200));
    assert_eq!(failed(&p.a().events()), [IkeFailReason::PeerNotResponding]);
    p.assert_kernels_empty();
    p.release_crl(1);
    assert_eq!(p.b().ep.len(), 0);
    assert!(!p.b().ep.trust_store().crls().is_empty());
}

#[test]
fn the_initiator_waits_for_crls_too_and_times_out_cleanly() {
    let uri = "http://crl.example/b.crl";
    let mut root = Ca::root("Test Root", Alg::P256);
    let (ka, ca, _) = root.issue("gw-a", A_ID, Alg::P256, |_| {});
    let (kb, cb, serial) = root.issue("gw-b", B_ID, Alg::P256, crl_uri(uri));
    let mk = || {
        let mut s = Setup::default();
        s.peers[0][0].local_auth = LocalAuthCfg::Pubkey(cred(&ka, vec![ca.clone()]));
        s.peers[1][0].local_auth = LocalAuthCfg::Pubkey(cred(&kb, vec![cb.clone()]));
        s.peers[0][0].remote_auth = RemoteAuthCfg::Pubkey {
            cacerts: vec![root.cert.clone()],
            pubkeys: Vec::new(),
            revocation: Revocation::Strict,
            constraints: Vec::new(),
        };
        s.peers[1][0].remote_auth = pubkey_remote();
        s.trust = [store(&[&root.cert]), store(&[&root.cert])];
        s
    };
    let mut p = Pair::new(mk());
    p.crl_server[0].insert(uri.into(), root.crl(&[serial]));
    p.connect(0, "site-b");
    refused(&mut p, false);
    let mut p = Pair::new(mk());
    p.crl_server[0].insert(uri.into(), root.crl(&[]));
    p.hold_crl[0] = true;
    p.connect(0, "site-b");
    assert_eq!(failed(&p.a().events()), [IkeFailReason::HalfOpenTimeout]);
    p.assert_kernels_empty();
}

/// A DN of UTF8String attributes (OID octets of 2.5.4.x, value), DER.
fn dn_der(attrs: &[(u8, &str)]) -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, u8::try_from(body.len()).unwrap()];
        v.extend_from_slice(body);
        v
    }
    let mut rdns = Vec::new();
    for (oid, value) in attrs {
        let atv = [tlv(0x06, &[0x55, 0x04, *oid]), tlv(0x0c, value.as_bytes())].concat();
        rdns.extend(tlv(0x31, &tlv(0x30, &atv)));
    }
    tlv(0x30, &rdns)
}

#[test]
fn our_id_defaults_to_the_subject_and_a_dn_wildcard_beats_any() {
    let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
    // No local id: left is its certificate's subject DN.
    c.s.peers[0][0].local_id = Identification {
        id_type: crate::wire::codes::IdType(0),
        data: Vec::new(),
    };
    let pattern = Identification::der_dn(dn_der(&[(10, "iked tests"), (3, "*")]));
    let subject = Identification::der_dn(dn_der(&[(10, "iked tests"), (3, "gw-a")]));
    let any = PeerCfg {
        name: "any".into(),
        remote_id: None,
        ..c.s.peers[1][0].clone()
    };
    let wild = PeerCfg {
        name: "wild".into(),
        remote_id: Some(pattern.clone()),
        ..c.s.peers[1][0].clone()
    };
    let other = PeerCfg {
        name: "other".into(),
        remote_id: Some(Identification::der_dn(dn_der(&[(3, "gw-z")]))),
        ..c.s.peers[1][0].clone()
    };
    c.s.peers[1] = vec![any, other, wild];
    let mut p = Pair::new(c.s);
    let id = p.connect(0, "site-b");
    let b = p.b().events();
    assert!(
        matches!(&b[0], Event::IkeEstablished { peer, .. } if peer == "wild"),
        "{b:?}"
    );
    assert_eq!(p.a().ep.ike_sa(id).unwrap().local_id, Some(subject.clone()));
    assert_eq!(p.b().ep.ike_sas().next().unwrap().remote_id, Some(subject));
    // A pattern left's certificate does not fit refuses it.
    let mut c = cert_setup(Alg::P256, Alg::P256, Alg::P256);
    c.s.peers[0][0].local_id = Identification {
        id_type: crate::wire::codes::IdType(0),
        data: Vec::new(),
    };
    c.s.peers[1][0].remote_id = Some(Identification::der_dn(dn_der(&[
        (10, "other org"),
        (3, "*"),
    ])));
    let mut p = Pair::new(c.s);
    p.connect(0, "site-b");
    refused(&mut p, true);
}

#[test]
fn certificates_through_a_lossy_network() {
    // The first IKE_AUTH request and the first IKE_AUTH response are
    // lost, and a CRL fetch is on the way: retransmissions bring it up,
    // with one fetch and one verification each way.
    let uri = "http://crl.example/root.crl";
    let mut root = Ca::root("Test Root", Alg::P256);
    let (ka, ca, _) = root.issue("gw-a", A_ID, Alg::P256, crl_uri(uri));
    let (kb, cb, _) = root.issue("gw-b", B_ID, Alg::P384, |_| {});
    let mut s = Setup::default();
    s.peers[0][0].local_auth = LocalAuthCfg::Pubkey(cred(&ka, vec![ca]));
    s.peers[1][0].local_auth = LocalAuthCfg::Pubkey(cred(&kb, vec![cb]));
    s.peers[0][0].remote_auth = pubkey_remote();
    s.peers[1][0].remote_auth = RemoteAuthCfg::Pubkey {
        cacerts: Vec::new(),
        pubkeys: Vec::new(),
        revocation: Revocation::Strict,
        constraints: Vec::new(),
    };
    s.trust = [store(&[&root.cert]), store(&[&root.cert])];
    let mut p = Pair::new(s);
    p.crl_server[1].insert(uri.into(), root.crl(&[]));
    let mut lost = [false, false];
    p.policy = Box::new(move |side, _, bytes| {
        let auth = crate::wire::Header::peek(bytes)
            .is_ok_and(|(h, _)| h.exchange == crate::wire::codes::ExchangeType::IKE_AUTH);
        if auth && !lost[side] {
            lost[side] = true;
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    p.connect(0, "site-b");
    assert!(
        established(&mut p),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    p.assert_kernels_match();
    assert_eq!(p.crl_fetches[1].len(), 1);
    assert_eq!(p.b().ep.knobs().seen.len(), 1);
    assert_eq!(p.a().ep.knobs().seen.len(), 1);
}

fn sc(
    key: crate::config::SigKey,
    hash: Option<crate::config::SigHash>,
    min_bits: Option<u32>,
) -> crate::config::SigConstraint {
    crate::config::SigConstraint {
        key,
        hash,
        min_bits,
    }
}

/// A pair with certificates of `a` (left, with RSA-PSS if `pss`) and
/// `b`, in which side `side` requires `constraints` of its peer.
fn constrained(
    a: Alg,
    b: Alg,
    pss: bool,
    side: usize,
    constraints: Vec<crate::config::SigConstraint>,
) -> Pair {
    let mut c = cert_setup(Alg::P256, a, b);
    if let LocalAuthCfg::Pubkey(cred) = &mut c.s.peers[0][0].local_auth {
        Arc::get_mut(cred).unwrap().rsa_pss = pss;
    }
    if let RemoteAuthCfg::Pubkey { constraints: c, .. } = &mut c.s.peers[side][0].remote_auth {
        *c = constraints;
    }
    let mut p = Pair::new(c.s);
    p.connect(0, "site-b");
    p
}

#[test]
fn remote_auth_constraints_allow_what_they_name() {
    use crate::config::SigHash::*;
    use crate::config::SigKey::*;
    // Left signs RSA 2048 PKCS#1 v1.5 with SHA-256 (RSA-PSS with
    // SHA-256 if `pss`), a P-256 key ECDSA with SHA-256, Ed25519 itself.
    let cases = [
        (Alg::Rsa(0), false, vec![sc(Rsa, Some(Sha256), None)]),
        (Alg::Rsa(0), false, vec![sc(Rsa, None, Some(2048))]),
        (Alg::Rsa(0), true, vec![sc(RsaPss, Some(Sha256), None)]),
        (Alg::Rsa(0), false, vec![sc(Any, Some(Sha256), None)]),
        (
            Alg::P256,
            false,
            vec![sc(Rsa, Some(Sha384), None), sc(Ecdsa, Some(Sha256), None)],
        ),
        (Alg::Ed25519, false, vec![sc(Ed25519, None, None)]),
        (Alg::Ed25519, false, vec![]),
    ];
    for (a, pss, cons) in cases {
        let mut p = constrained(a, Alg::P256, pss, 1, cons.clone());
        assert!(
            established(&mut p),
            "{a:?} {cons:?}: {:?} {:?}",
            p.a().events(),
            p.b().events()
        );
    }
    // The initiator checks the responder's AUTH the same way.
    let mut p = constrained(
        Alg::P256,
        Alg::P384,
        false,
        0,
        vec![sc(Ecdsa, Some(Sha384), None)],
    );
    assert!(established(&mut p));
}

#[test]
fn remote_auth_constraints_refuse_other_hash_key_type_padding_size() {
    use crate::config::SigHash::*;
    use crate::config::SigKey::*;
    let cases = [
        // Wrong hash: SHA-256 where SHA-384 is required.
        (Alg::Rsa(0), false, vec![sc(Rsa, Some(Sha384), None)]),
        (Alg::P256, false, vec![sc(Ecdsa, Some(Sha384), Some(256))]),
        (Alg::Rsa(0), false, vec![sc(Any, Some(Sha512), None)]),
        // Wrong key type.
        (Alg::P256, false, vec![sc(Rsa, Some(Sha256), None)]),
        (Alg::Ed25519, false, vec![sc(Any, Some(Sha256), None)]),
        (Alg::Rsa(0), false, vec![sc(Ed25519, None, None)]),
        // PKCS#1 v1.5 where PSS is required, and the other way round.
        (Alg::Rsa(0), false, vec![sc(RsaPss, None, None)]),
        (Alg::Rsa(0), true, vec![sc(Rsa, None, None)]),
        // A 2048-bit RSA key where 3072 bits are the minimum.
        (Alg::Rsa(0), false, vec![sc(Rsa, None, Some(3072))]),
        (Alg::Rsa(0), false, vec![sc(Rsa, Some(Sha256), Some(3072))]),
    ];
    for (a, pss, cons) in cases {
        let mut p = constrained(a, Alg::P256, pss, 1, cons.clone());
        assert!(!established(&mut p), "{a:?} {cons:?}");
        refused(&mut p, true);
    }
    // The initiator refuses a responder that signs with SHA-256.
    let mut p = constrained(
        Alg::P256,
        Alg::P256,
        false,
        0,
        vec![sc(Ecdsa, Some(Sha384), None)],
    );
    refused(&mut p, false);
}

#[test]
fn remote_auth_constraint_refusal_says_why() {
    use crate::config::SigHash::*;
    use crate::config::SigKey::*;
    let key = Key::new(Alg::P256);
    let cred = cred(&key, Vec::new());
    let scheme = SigScheme::Ecdsa(HashAlg::Sha256);
    let auth = crate::sa::pubkey::sign_with(&cred, scheme, b"signed").unwrap();
    let public = cred.key.public_key();
    let why = crate::sa::pubkey::check_constraints(
        &[
            sc(Rsa, Some(Sha384), None),
            sc(RsaPss, Some(Sha512), Some(3072)),
        ],
        public,
        &auth,
    )
    .unwrap_err();
    assert_eq!(
        why,
        format!(
            "signed with {scheme} by a 256-bit {} key, the connection requires rsa-sha384 or \
             rsa/pss-3072-sha512",
            public.key_type()
        )
    );
    assert!(crate::sa::pubkey::check_constraints(&[], public, &auth).is_ok());
    assert!(
        crate::sa::pubkey::check_constraints(&[sc(Ecdsa, Some(Sha256), None)], public, &auth)
            .is_ok()
    );
    // A classic ECDSA method implies its hash.
    let classic = crate::wire::Authentication {
        method: AuthMethod::ECDSA_SHA256_P256,
        data: vec![0; 64],
    };
    assert_eq!(
        crate::sa::pubkey::auth_scheme(&classic),
        Some(SigScheme::Ecdsa(HashAlg::Sha256))
    );
    let rsa = crate::wire::Authentication {
        method: AuthMethod::RSA_SIG,
        data: vec![0; 256],
    };
    assert_eq!(
        crate::sa::pubkey::auth_scheme(&rsa),
        Some(SigScheme::RsaPkcs1(HashAlg::Sha1))
    );
}
