//! EAP in IKE_AUTH (RFC 7296 2.16) between two engines: a gateway that
//! proves itself with a certificate and authenticates its client with
//! EAP-MSCHAPv2, and the client.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::certs::*;
use super::failed;
use super::harness::*;
use crate::crypto::Secret;
use crate::eap::{Answer, MethodName};
use crate::pki::chain::Revocation;
use crate::sa::*;
use crate::wire::Identification;
use crate::wire::codes::{ExchangeType, IdType};

const GW_ID: &str = "198.51.100.1.example";
const USER: &str = "192.0.2.1.example";

/// The users' EAP passwords, as `secrets.eap-*` gives them.
fn users(entries: &[(&str, &str)]) -> Arc<dyn PskStore> {
    Arc::new(PskTable {
        entries: entries
            .iter()
            .map(|(id, pw)| {
                (
                    vec![Identification::fqdn(id)],
                    Secret::from_slice(pw.as_bytes()),
                )
            })
            .collect(),
    })
}

/// Left is the client (EAP-MSCHAPv2 with `password`, EAP identity
/// `client_eap_id`), right the gateway (a certificate; EAP-MSCHAPv2 with
/// `gw_eap_id`, whose user is `USER` or `carol` with password `secret`).
fn eap_pair(
    password: &str,
    client_eap_id: Option<Identification>,
    gw_eap_id: Option<Identification>,
) -> Pair {
    gateway_pair(MethodName::Mschapv2, password, client_eap_id, gw_eap_id)
}

/// [`eap_pair`] with the gateway's `method` (`remote.auth`).
fn gateway_pair(
    method: MethodName,
    password: &str,
    client_eap_id: Option<Identification>,
    gw_eap_id: Option<Identification>,
) -> Pair {
    methods_pair(
        MethodName::Mschapv2,
        method,
        password,
        client_eap_id,
        gw_eap_id,
    )
}

/// [`gateway_pair`] with the client's `client` method (`local.auth`) too.
pub(super) fn methods_pair(
    client: MethodName,
    method: MethodName,
    password: &str,
    client_eap_id: Option<Identification>,
    gw_eap_id: Option<Identification>,
) -> Pair {
    let mut root = Ca::root("Test Root", Alg::P256);
    let (kb, cb, _) = root.issue("gw", GW_ID, Alg::P256, |_| {});
    let mut s = Setup::default();
    s.peers[0][0].local_auth = LocalAuthCfg::Eap(EapLocal {
        method: client,
        eap_id: client_eap_id,
        aaa_id: None,
        cred: None,
    });
    s.peers[0][0].remote_auth = RemoteAuthCfg::Pubkey {
        cacerts: Vec::new(),
        pubkeys: Vec::new(),
        revocation: Revocation::Relaxed,
        constraints: Vec::new(),
    };
    s.peers[1][0].local_auth = LocalAuthCfg::Pubkey(cred(&kb, vec![cb]));
    s.peers[1][0].remote_auth = RemoteAuthCfg::Eap(EapRemote {
        method,
        eap_id: gw_eap_id,
        aaa_id: None,
        cacerts: Vec::new(),
        revocation: Revocation::Relaxed,
    });
    s.trust = [store(&[&root.cert]), store(&[])];
    let mut p = Pair::new(s);
    p.a()
        .ep
        .set_eap_secrets(users(&[(USER, password), ("carol", password)]));
    p.b()
        .ep
        .set_eap_secrets(users(&[(USER, "secret"), ("carol", "secret")]));
    p
}

pub(super) fn established(p: &mut Pair) -> bool {
    let up = |events: Vec<Event>| {
        events
            .iter()
            .any(|e| matches!(e, Event::IkeEstablished { .. }))
    };
    up(p.a().events()) && up(p.b().events())
}

#[test]
fn eap_mschapv2_gateway_and_client() {
    let mut p = eap_pair("secret", None, None);
    p.connect(0, "site-b");
    assert!(
        established(&mut p),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    p.assert_kernels_match();
    // IDi without AUTH, the MS-CHAPv2 Response, its Success-Response,
    // AUTH from the MSK.
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 4);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 4);
}

#[test]
fn eap_identity_is_asked_and_checked() {
    // eap_id = %any: the gateway asks, the client gives carol.
    let any = Identification {
        id_type: IdType(0),
        data: Vec::new(),
    };
    let carol = Identification::fqdn("carol");
    let mut p = eap_pair("secret", Some(carol.clone()), Some(any));
    p.connect(0, "site-b");
    assert!(established(&mut p), "{:?}", p.b().events());
    p.assert_kernels_match();
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 5);
    // The gateway's IKE SA is carol's from now on (uniqueness, leases),
    // not IDi's.
    let remote: Vec<_> = p.b().ep.ike_sas().filter_map(|s| s.remote_id).collect();
    assert_eq!(remote, std::slice::from_ref(&carol));
    // Without eap_id, the user must be the one IDi names: carol behind
    // USER's IDi is refused.
    let mut p = eap_pair("secret", Some(carol.clone()), None);
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.b().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    p.assert_kernels_empty();
    // A gateway that wants dave refuses carol: EAP-Failure, nothing
    // installed.
    let mut p = eap_pair("secret", Some(carol), Some(Identification::fqdn("dave")));
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

#[test]
fn a_wrong_password_is_refused_with_nothing_installed() {
    let mut p = eap_pair("guess", None, None);
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.a().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: true }]
    );
    assert_eq!(
        failed(&p.b().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    assert!(!established(&mut p));
    p.assert_kernels_empty();
    // The client did not get to send an AUTH.
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 2);
}

#[test]
fn eap_round_trips_survive_loss() {
    // The first copy of each of the client's IKE_AUTH requests is lost,
    // and the gateway's answer to the MS-CHAPv2 Response once:
    // retransmissions bring every round trip through (the gateway
    // resends its cached answer), each processed once.
    let mut p = eap_pair("secret", None, None);
    let mut lost: HashSet<(u32, bool)> = HashSet::new();
    p.policy = Box::new(move |_, _, bytes| {
        let Ok((h, _)) = crate::wire::Header::peek(bytes) else {
            return Fate::Deliver;
        };
        let response = h.is_response();
        let lose = h.exchange == ExchangeType::IKE_AUTH
            && (!response || h.message_id == 2)
            && lost.insert((h.message_id, response));
        if lose { Fate::Drop } else { Fate::Deliver }
    });
    p.connect(0, "site-b");
    assert!(established(&mut p), "{:?}", p.b().events());
    p.assert_kernels_match();
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 9);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 5);
}

/// Starts left's connection and runs the pair for `secs` seconds.
fn start(p: &mut Pair, secs: u64) {
    let now = p.now;
    p.a().ep.initiate(now, "site-b", &[]).unwrap();
    p.run_for(Duration::from_secs(secs));
}

#[test]
fn a_method_waiting_for_the_outside_holds_the_answer() {
    // The gateway's method asks the outside before each response it
    // takes (as EAP-RADIUS will): the answer waits, the client's
    // retransmission meanwhile is dropped, and the exchange goes on
    // when the answer comes.
    let mut p = eap_pair("secret", None, None);
    p.b().ep.knobs().eap_wait = true;
    start(&mut p, 5);
    let mut answered = 0;
    while let Some(ask) = p.eap_asks[1].pop() {
        assert!(!established(&mut p));
        let crate::eap::Ask::Echo(n) = ask.ask else {
            panic!("{:?}", ask.ask)
        };
        let now = p.now;
        p.b().ep.handle_eap_answer(now, ask.req, Answer::Echo(n));
        p.run_for(Duration::from_secs(1));
        answered += 1;
    }
    assert_eq!(answered, 2);
    assert!(established(&mut p), "{:?}", p.b().events());
    p.assert_kernels_match();
    // The retransmission during the first wait was not answered twice.
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 4);
    // An operation that fails ends EAP with EAP-Failure.
    let mut p = eap_pair("secret", None, None);
    p.b().ep.knobs().eap_wait = true;
    start(&mut p, 1);
    let ask = p.eap_asks[1].pop().unwrap();
    let now = p.now;
    let no_answer = Answer::Failed("no RADIUS server answered".into());
    p.b().ep.handle_eap_answer(now, ask.req, no_answer);
    p.run_for(Duration::from_secs(10));
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
fn a_psk_peer_does_not_get_an_eap_connection_nor_the_reverse() {
    // The gateway wants EAP; a client that sends AUTH (PSK) is refused.
    let mut s = Setup::default();
    s.peers[1][0].remote_auth = RemoteAuthCfg::Eap(EapRemote {
        method: MethodName::Mschapv2,
        eap_id: None,
        aaa_id: None,
        cacerts: Vec::new(),
        revocation: Revocation::Relaxed,
    });
    let mut q = Pair::new(s);
    q.connect(0, "site-b");
    assert_eq!(
        failed(&q.a().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: true }]
    );
    q.assert_kernels_empty();
    // And an EAP client does not get a PSK connection.
    let mut s = Setup::default();
    s.peers[0][0].local_auth = LocalAuthCfg::Eap(EapLocal {
        method: MethodName::Mschapv2,
        eap_id: None,
        aaa_id: None,
        cred: None,
    });
    let mut q = Pair::new(s);
    q.connect(0, "site-b");
    assert_eq!(
        failed(&q.a().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: true }]
    );
    q.assert_kernels_empty();
}

/// EAP-RADIUS (lane `radius`): the gateway relays the EAP conversation to
/// a RADIUS server. The server here is the test's: the EAP-MSCHAPv2
/// server method behind Access-Challenge / Access-Accept / Access-Reject,
/// with the MSK in the Accept as MS-MPPE keys give it (the codec and the
/// keys against a real FreeRADIUS: ike-daemon/tests/radius_lab.rs).
mod radius {
    use super::*;
    use crate::eap::{self, Method, Step, mschapv2};
    use crate::radius::packet::{Code, Packet, attr};
    use crate::radius::{self as rad, Settings};

    /// The gateway relays to a RADIUS server ([`serve`]); the client's
    /// password is `password`.
    fn pair(password: &str) -> Pair {
        gateway_pair(MethodName::Radius, password, None, None)
    }

    /// Answers the gateway's Access-Requests as a RADIUS server whose
    /// users' method is EAP-MSCHAPv2 with `USER`'s password "secret";
    /// the number of requests answered.
    fn serve(p: &mut Pair) -> usize {
        let lookup: mschapv2::SecretLookup = Box::new(|name: &[u8]| {
            (name == USER.as_bytes()).then(|| Secret::from_slice(b"secret"))
        });
        let mut server = mschapv2::Server::new([0x42; 16], lookup);
        let mut answered = 0;
        while let Some(ask) = p.eap_asks[1].pop() {
            let eap::Ask::Radius(req) = ask.ask else {
                panic!("{:?}", ask.ask);
            };
            assert_eq!(req.packet.get(attr::USER_NAME), Some(USER.as_bytes()));
            // Later rounds carry the State and go to the same server.
            assert_eq!(req.packet.get(attr::STATE).is_some(), answered > 0);
            assert_eq!(req.server.is_some(), answered > 0);
            let msg = eap::radius::eap_from_bytes(&req.packet.joined(attr::EAP_MESSAGE)).unwrap();
            let step = if eap::type_of(&msg) == Some(eap::EapType::IDENTITY) {
                assert_eq!(eap::type_data(&msg), USER.as_bytes());
                server.initiate(msg.identifier.wrapping_add(1))
            } else {
                server.process(&msg)
            };
            let (code, eap_out, msk) = match step {
                Step::Send(m) => (Code::ACCESS_CHALLENGE, m, None),
                Step::Success => (
                    Code::ACCESS_ACCEPT,
                    crate::wire::Eap {
                        code: eap::code::SUCCESS,
                        identifier: msg.identifier,
                        data: Vec::new(),
                    },
                    server.msk().map(|m| zeroize::Zeroizing::new(m.to_vec())),
                ),
                _ => (
                    Code::ACCESS_REJECT,
                    crate::wire::Eap {
                        code: eap::code::FAILURE,
                        identifier: msg.identifier,
                        data: Vec::new(),
                    },
                    None,
                ),
            };
            let mut packet = Packet::new(code);
            packet.add(attr::EAP_MESSAGE, &eap::radius::eap_to_bytes(&eap_out));
            packet.add(attr::STATE, b"conversation-1");
            let answer = rad::Answer {
                server: 0,
                packet,
                msk,
                request_auth: [0; 16],
            };
            let now = p.now;
            p.b()
                .ep
                .handle_eap_answer(now, ask.req, Answer::Radius(answer));
            p.run_for(Duration::from_secs(1));
            answered += 1;
        }
        answered
    }

    #[test]
    fn eap_radius_gateway_relays_to_the_server_and_keys_auth_with_its_msk() {
        let mut p = pair("secret");
        p.b()
            .ep
            .set_radius(Some(Settings::default()), 1_765_000_000);
        start(&mut p, 5);
        // The peer's identity, the MS-CHAPv2 Response, its Success-Response.
        assert_eq!(serve(&mut p), 3);
        assert!(
            established(&mut p),
            "{:?} {:?}",
            p.a().events(),
            p.b().events()
        );
        p.assert_kernels_match();
    }

    #[test]
    fn eap_radius_reject_or_no_server_is_authentication_failed() {
        let mut p = pair("guess");
        p.b().ep.set_radius(Some(Settings::default()), 1);
        start(&mut p, 5);
        assert_eq!(serve(&mut p), 2);
        p.run_for(Duration::from_secs(10));
        assert_eq!(
            failed(&p.b().events()),
            [IkeFailReason::AuthenticationFailed { by_peer: false }]
        );
        assert_eq!(
            failed(&p.a().events()),
            [IkeFailReason::AuthenticationFailed { by_peer: true }]
        );
        p.assert_kernels_empty();
        // No RADIUS server configured: refused at once, nothing asked.
        let mut p = pair("secret");
        start(&mut p, 10);
        assert!(p.eap_asks[1].is_empty());
        assert_eq!(
            failed(&p.b().events()),
            [IkeFailReason::AuthenticationFailed { by_peer: false }]
        );
        p.assert_kernels_empty();
    }
}

#[test]
fn eap_only_authentication_needs_a_mutual_method() {
    // RFC 5998: a gateway with local.auth = eap-* sends no AUTH before
    // EAP to a client that offers EAP-only (remote.auth = eap-*); the
    // client accepts that only from a method that authenticates the
    // gateway, whose MSK then keys the gateway's AUTH.
    let eap_only = |mutual: bool| {
        let mschapv2 = || EapLocal {
            method: MethodName::Mschapv2,
            eap_id: None,
            aaa_id: None,
            cred: None,
        };
        let mut s = Setup::default();
        s.peers[0][0].local_auth = LocalAuthCfg::Eap(mschapv2());
        s.peers[0][0].remote_auth = RemoteAuthCfg::Eap(EapRemote {
            method: MethodName::Mschapv2,
            eap_id: None,
            aaa_id: None,
            cacerts: Vec::new(),
            revocation: Revocation::Relaxed,
        });
        s.peers[1][0].local_auth = LocalAuthCfg::Eap(mschapv2());
        s.peers[1][0].remote_auth = RemoteAuthCfg::Eap(EapRemote {
            method: MethodName::Mschapv2,
            eap_id: None,
            aaa_id: None,
            cacerts: Vec::new(),
            revocation: Revocation::Relaxed,
        });
        let mut p = Pair::new(s);
        p.a().ep.set_eap_secrets(users(&[(USER, "secret")]));
        p.b().ep.set_eap_secrets(users(&[(USER, "secret")]));
        p.a().ep.knobs().eap_mutual = mutual;
        start(&mut p, 10);
        p
    };
    let mut p = eap_only(true);
    assert!(
        established(&mut p),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    p.assert_kernels_match();
    // EAP-MSCHAPv2 does not authenticate the gateway: refused at
    // EAP-Success, before the client's AUTH.
    let mut p = eap_only(false);
    assert_eq!(
        failed(&p.a().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    assert!(!established(&mut p));
    p.assert_kernels_empty();
    // A client that wants the gateway's AUTH (here remote.auth = psk)
    // refuses a gateway's answer without it.
    let mut s = Setup::default();
    s.peers[0][0].local_auth = LocalAuthCfg::Eap(EapLocal {
        method: MethodName::Mschapv2,
        eap_id: None,
        aaa_id: None,
        cred: None,
    });
    s.peers[1][0].local_auth = LocalAuthCfg::Eap(EapLocal {
        method: MethodName::Mschapv2,
        eap_id: None,
        aaa_id: None,
        cred: None,
    });
    s.peers[1][0].remote_auth = RemoteAuthCfg::Eap(EapRemote {
        method: MethodName::Mschapv2,
        eap_id: None,
        aaa_id: None,
        cacerts: Vec::new(),
        revocation: Revocation::Relaxed,
    });
    let mut p = Pair::new(s);
    p.a().ep.set_eap_secrets(users(&[(USER, "secret")]));
    p.b().ep.set_eap_secrets(users(&[(USER, "secret")]));
    start(&mut p, 10);
    assert!(!established(&mut p));
    p.assert_kernels_empty();
}

/// [`eap_pair`] whose gateway has two connections told apart by the EAP
/// identity they ask for: `dave-only` (listed first) and `carol-only`,
/// the same otherwise; the client gives `client_eap_id`.
fn two_gateway_connections(client_eap_id: &str) -> Pair {
    let mut root = Ca::root("Test Root", Alg::P256);
    let (kb, cb, _) = root.issue("gw", GW_ID, Alg::P256, |_| {});
    let mut s = Setup::default();
    s.peers[0][0].local_auth = LocalAuthCfg::Eap(EapLocal {
        method: MethodName::Mschapv2,
        eap_id: Some(Identification::fqdn(client_eap_id)),
        aaa_id: None,
        cred: None,
    });
    s.peers[0][0].remote_auth = RemoteAuthCfg::Pubkey {
        cacerts: Vec::new(),
        pubkeys: Vec::new(),
        revocation: Revocation::Relaxed,
        constraints: Vec::new(),
    };
    let gw = |name: &str, user: &str| PeerCfg {
        name: name.into(),
        local_auth: LocalAuthCfg::Pubkey(cred(&kb, vec![cb.clone()])),
        remote_auth: RemoteAuthCfg::Eap(EapRemote {
            method: MethodName::Mschapv2,
            eap_id: Some(Identification::fqdn(user)),
            aaa_id: None,
            cacerts: Vec::new(),
            revocation: Revocation::Relaxed,
        }),
        ..right_cfg()
    };
    s.peers[1] = vec![gw("dave-only", "dave"), gw("carol-only", "carol")];
    s.trust = [store(&[&root.cert]), store(&[])];
    let mut p = Pair::new(s);
    p.a()
        .ep
        .set_eap_secrets(users(&[(client_eap_id, "secret")]));
    p.b()
        .ep
        .set_eap_secrets(users(&[("carol", "secret"), ("dave", "secret")]));
    p
}

#[test]
fn the_eap_identity_chooses_the_connection_again() {
    // dave-only is chosen first (the same rank, listed first); carol's
    // EAP identity moves the IKE SA to carol-only, as charon.
    let mut p = two_gateway_connections("carol");
    p.connect(0, "site-b");
    assert!(established(&mut p), "{:?}", p.b().events());
    p.assert_kernels_match();
    let peers: Vec<_> = p.b().ep.ike_sas().filter_map(|s| s.peer).collect();
    assert_eq!(peers, ["carol-only"]);
    // dave stays on dave-only.
    let mut p = two_gateway_connections("dave");
    p.connect(0, "site-b");
    assert!(established(&mut p), "{:?}", p.b().events());
    let peers: Vec<_> = p.b().ep.ike_sas().filter_map(|s| s.peer).collect();
    assert_eq!(peers, ["dave-only"]);
    // eric has no connection: EAP-Failure, nothing installed.
    let mut p = two_gateway_connections("eric");
    p.connect(0, "site-b");
    assert_eq!(
        failed(&p.b().events()),
        [IkeFailReason::AuthenticationFailed { by_peer: false }]
    );
    p.assert_kernels_empty();
}
