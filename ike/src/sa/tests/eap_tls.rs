//! EAP-TLS in IKE_AUTH between two engines: a gateway that proves itself
//! with its certificate in IKE and again in TLS, and a client that
//! authenticates with its own certificate inside EAP-TLS; AUTH from the
//! TLS exporter's MSK both ways.

use std::collections::HashSet;
use std::sync::Arc;

use super::certs::*;
use super::eap::established;
use super::failed;
use super::harness::*;
use crate::eap::MethodName;
use crate::pki::Certificate;
use crate::pki::chain::Revocation;
use crate::sa::*;
use crate::wire::codes::ExchangeType;

const GW_ID: &str = "198.51.100.1.example";
const USER: &str = "192.0.2.1.example";

/// Left is the client (`local.auth = eap-tls` with `user`'s key and
/// certificate), right the gateway (`gw`'s, and `remote.auth = eap-tls`
/// with `cacerts = root`). Both trust `root`.
fn pair(root: &Ca, gw: (Key, Arc<Certificate>), user: (Key, Arc<Certificate>)) -> Pair {
    pair_with(root, gw, user, None, MethodName::Tls)
}

/// [`one_ca`]'s pair with the gateway's `remote.auth = method`.
fn gateway_method(method: MethodName) -> Pair {
    let mut root = Ca::root("Test Root", Alg::P256);
    let (kg, cg, _) = root.issue("gw", GW_ID, Alg::P256, |_| {});
    let (ku, cu, _) = root.issue("user", USER, Alg::P256, |_| {});
    pair_with(&root, (kg, cg), (ku, cu), None, method)
}

/// [`pair`] with the client's `aaa_id` and the gateway's `method`.
fn pair_with(
    root: &Ca,
    gw: (Key, Arc<Certificate>),
    user: (Key, Arc<Certificate>),
    aaa_id: Option<crate::wire::Identification>,
    method: MethodName,
) -> Pair {
    let mut s = Setup::default();
    s.peers[0][0].local_auth = LocalAuthCfg::Eap(EapLocal {
        method: MethodName::Tls,
        eap_id: None,
        aaa_id,
        cred: Some(cred(&user.0, vec![user.1])),
    });
    s.peers[0][0].remote_auth = RemoteAuthCfg::Pubkey {
        cacerts: Vec::new(),
        pubkeys: Vec::new(),
        revocation: Revocation::Relaxed,
        constraints: Vec::new(),
    };
    s.peers[1][0].local_auth = LocalAuthCfg::Pubkey(cred(&gw.0, vec![gw.1]));
    s.peers[1][0].remote_auth = RemoteAuthCfg::Eap(EapRemote {
        method,
        eap_id: None,
        aaa_id: None,
        cacerts: vec![root.cert.clone()],
        revocation: Revocation::Relaxed,
    });
    s.trust = [store(&[&root.cert]), store(&[&root.cert])];
    Pair::new(s)
}

/// The gateway's and the user's certificates from one CA, the user's
/// naming `user_san`.
fn one_ca(user_san: &str) -> Pair {
    let mut root = Ca::root("Test Root", Alg::P256);
    let (kg, cg, _) = root.issue("gw", GW_ID, Alg::P256, |_| {});
    let (ku, cu, _) = root.issue("user", user_san, Alg::P256, |_| {});
    pair(&root, (kg, cg), (ku, cu))
}

#[test]
fn eap_tls_gateway_and_client() {
    let mut p = one_ca(USER);
    p.connect(0, "site-b");
    assert!(
        established(&mut p),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    p.assert_kernels_match();
    // IDi without AUTH; the ClientHello; the client's certificate
    // flight; the empty answer to TLS 1.3's protected success
    // indication; AUTH from the MSK: at least five requests, each
    // answered once.
    let sent = p.a().count_sent(ExchangeType::IKE_AUTH, false);
    assert!(sent >= 5, "{sent} IKE_AUTH requests");
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), sent);
}

#[test]
fn eap_tls_survives_loss() {
    // In the middle of the TLS round trips the first copy of one of the
    // client's requests is lost, and the gateway's answer to the next
    // one: retransmissions bring the flights through, the gateway
    // resending its held answer rather than feeding TLS a record twice
    // (which would fail the handshake). More loss than this runs into
    // the gateway's half-open timeout (30 s, as charon's), as it would
    // with charon.
    let mut p = one_ca(USER);
    let mut lost: HashSet<(u32, bool)> = HashSet::new();
    p.policy = Box::new(move |_, _, bytes| {
        let Ok((h, _)) = crate::wire::Header::peek(bytes) else {
            return Fate::Deliver;
        };
        let key = (h.message_id, h.is_response());
        let lose = h.exchange == ExchangeType::IKE_AUTH
            && (key == (2, false) || key == (3, true))
            && lost.insert(key);
        if lose { Fate::Drop } else { Fate::Deliver }
    });
    p.connect(0, "site-b");
    assert!(
        established(&mut p),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    p.assert_kernels_match();
    // Two requests went twice; the gateway answered one of them twice.
    let sent = p.a().count_sent(ExchangeType::IKE_AUTH, false);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), sent - 1);
}

#[test]
fn untrusted_user_certificate_is_refused() {
    let mut root = Ca::root("Test Root", Alg::P256);
    let mut other = Ca::root("Other Root", Alg::P256);
    let (kg, cg, _) = root.issue("gw", GW_ID, Alg::P256, |_| {});
    let (ku, cu, _) = other.issue("user", USER, Alg::P256, |_| {});
    let mut p = pair(&root, (kg, cg), (ku, cu));
    p.connect(0, "site-b");
    // The gateway ends EAP with EAP-Failure: AUTHENTICATION_FAILED on
    // both sides, nothing installed.
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
fn user_certificate_must_name_the_identity() {
    // A valid certificate of another user behind USER's IDi.
    let mut p = one_ca("mallory.example");
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.b().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    p.assert_kernels_empty();
}

#[test]
fn aaa_id_names_the_tls_server_the_client_checks() {
    // The client's aaa_id is the identity the EAP server's TLS certificate
    // must name (an AAA backend's): the gateway's certificate names
    // GW_ID, so aaa.example fails and GW_ID passes.
    let mut root = Ca::root("Test Root", Alg::P256);
    let issue = |root: &mut Ca| {
        let gw = root.issue("gw", GW_ID, Alg::P256, |_| {});
        let user = root.issue("user", USER, Alg::P256, |_| {});
        ((gw.0, gw.1), (user.0, user.1))
    };
    let (gw, user) = issue(&mut root);
    let aaa = crate::wire::Identification::fqdn("aaa.example");
    let mut p = pair_with(&root, gw, user, Some(aaa), MethodName::Tls);
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.a().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    p.assert_kernels_empty();
    let (gw, user) = issue(&mut root);
    let named = crate::wire::Identification::fqdn(GW_ID);
    let mut p = pair_with(&root, gw, user, Some(named), MethodName::Tls);
    p.connect(0, "site-b");
    assert!(established(&mut p), "{:?}", p.a().events());
    p.assert_kernels_match();
}

#[test]
fn eap_dynamic_follows_the_clients_nak_to_eap_tls() {
    // eap-dynamic starts with EAP-MSCHAPv2; the EAP-TLS client answers
    // with a Nak asking for EAP-TLS, and the gateway switches to it.
    let mut p = gateway_method(MethodName::Dynamic);
    p.connect(0, "site-b");
    assert!(
        established(&mut p),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    p.assert_kernels_match();
    // A gateway that asks for EAP-MSCHAPv2 only takes no Nak.
    let mut p = gateway_method(MethodName::Mschapv2);
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.b().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    p.assert_kernels_empty();
}
