//! A second authentication round (RFC 4739) between two engines: the
//! client proves itself with its certificate, then with EAP-MSCHAPv2 (or
//! a second certificate); the gateway asks for both (`remote2`).

use std::sync::Arc;

use super::certs::*;
use super::eap::established;
use super::failed;
use super::harness::*;
use crate::crypto::Secret;
use crate::eap::MethodName;
use crate::pki::chain::Revocation;
use crate::sa::*;
use crate::wire::Identification;
use crate::wire::codes::{ExchangeType, IdType};

const GW_ID: &str = "198.51.100.1.example";
const USER: &str = "192.0.2.1.example";

fn any() -> Identification {
    Identification {
        id_type: IdType(0),
        data: Vec::new(),
    }
}

fn pubkey() -> RemoteAuthCfg {
    RemoteAuthCfg::Pubkey {
        cacerts: Vec::new(),
        pubkeys: Vec::new(),
        revocation: Revocation::Relaxed,
        constraints: Vec::new(),
    }
}

fn users(password: &str) -> Arc<dyn PskStore> {
    Arc::new(PskTable {
        entries: vec![(
            vec![Identification::fqdn("carol")],
            Secret::from_slice(password.as_bytes()),
        )],
    })
}

/// Left the client (its certificate, then `second`), right the gateway
/// (its certificate; the client's certificate, then `remote2`); both
/// trust one root. carol's EAP password is `secret` at the gateway and
/// `password` at the client.
fn pair(
    root: &mut Ca,
    second: Option<LocalRound>,
    remote2: Option<RemoteRound>,
    password: &str,
) -> Pair {
    pair_edited(root, second, remote2, password, |_| {})
}

/// [`pair`] with `edit` done to the setup before the pair is made.
fn pair_edited(
    root: &mut Ca,
    second: Option<LocalRound>,
    remote2: Option<RemoteRound>,
    password: &str,
    edit: impl FnOnce(&mut Setup),
) -> Pair {
    let (kg, cg, _) = root.issue("gw", GW_ID, Alg::P256, |_| {});
    let (ku, cu, _) = root.issue("user", USER, Alg::P256, |_| {});
    let mut s = Setup::default();
    s.peers[0][0].local_auth = LocalAuthCfg::Pubkey(cred(&ku, vec![cu]));
    s.peers[0][0].remote_auth = pubkey();
    s.peers[0][0].rounds.local = second;
    s.peers[1][0].local_auth = LocalAuthCfg::Pubkey(cred(&kg, vec![cg]));
    s.peers[1][0].remote_auth = pubkey();
    s.peers[1][0].rounds.remote = remote2;
    s.trust = [store(&[&root.cert]), store(&[&root.cert])];
    edit(&mut s);
    let mut p = Pair::new(s);
    p.a().ep.set_eap_secrets(users(password));
    p.b().ep.set_eap_secrets(users("secret"));
    p
}

fn root() -> Ca {
    Ca::root("Test Root", Alg::P256)
}

fn mschapv2_client(id: Option<Identification>) -> Option<LocalRound> {
    Some(LocalRound {
        id,
        auth: LocalAuthCfg::Eap(EapLocal {
            method: MethodName::Mschapv2,
            eap_id: Some(Identification::fqdn("carol")),
            aaa_id: None,
            cred: None,
        }),
    })
}

/// A second certificate round of `san`'s certificate from `ca`, as `san`.
fn second_cert(ca: &mut Ca, san: &str) -> Option<LocalRound> {
    let (k, c, _) = ca.issue("user2", san, Alg::P256, |_| {});
    Some(LocalRound {
        id: Some(Identification::fqdn(san)),
        auth: LocalAuthCfg::Pubkey(cred(&k, vec![c])),
    })
}

fn second_pubkey(id: Option<&str>) -> Option<RemoteRound> {
    Some(RemoteRound {
        id: id.map(Identification::fqdn),
        auth: pubkey(),
    })
}

fn mschapv2_gateway(eap_id: Option<Identification>) -> Option<RemoteRound> {
    Some(RemoteRound {
        id: None,
        auth: RemoteAuthCfg::Eap(EapRemote {
            method: MethodName::Mschapv2,
            eap_id,
            aaa_id: None,
            cacerts: Vec::new(),
            revocation: Revocation::Relaxed,
        }),
    })
}

fn refused(p: &mut Pair, by_client: bool) {
    let a = failed(&p.a().events());
    let b = failed(&p.b().events());
    let want = |by_peer| [IkeFailReason::AuthenticationFailed { by_peer }];
    if by_client {
        assert_eq!(a, want(false), "client");
    } else {
        assert_eq!(a, want(true), "client");
        assert_eq!(b, want(false), "gateway");
    }
    assert!(!established(p));
    p.assert_kernels_empty();
}

#[test]
fn a_certificate_round_then_eap_mschapv2() {
    let mut p = pair(
        &mut root(),
        mschapv2_client(None),
        mschapv2_gateway(Some(any())),
        "secret",
    );
    p.connect(0, "site-b");
    assert!(
        established(&mut p),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    p.assert_kernels_match();
    // Round 1 (certificate); round 2: IDi without AUTH, EAP-Identity,
    // the MS-CHAPv2 Response, the answer to its Success-Request, AUTH
    // from the MSK.
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 6);
    assert_eq!(p.b().count_sent(ExchangeType::IKE_AUTH, true), 6);
    // The gateway's IKE SA is carol's (uniqueness, leases).
    let remote: Vec<_> = p.b().ep.ike_sas().filter_map(|s| s.remote_id).collect();
    assert_eq!(remote, [Identification::fqdn("carol")]);
}

#[test]
fn without_eap_id_the_second_idi_is_the_eap_user() {
    // remote2 without eap_id: no EAP-Identity, the method runs for the
    // second round's IDi, here carol (local2.id).
    let carol = Some(Identification::fqdn("carol"));
    let mut p = pair(
        &mut root(),
        mschapv2_client(carol),
        mschapv2_gateway(None),
        "secret",
    );
    p.connect(0, "site-b");
    assert!(established(&mut p), "{:?}", p.b().events());
    p.assert_kernels_match();
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 5);
}

#[test]
fn a_wrong_password_in_the_second_round_installs_nothing() {
    let mut p = pair(
        &mut root(),
        mschapv2_client(None),
        mschapv2_gateway(Some(any())),
        "guess",
    );
    p.connect(0, "site-b");
    refused(&mut p, false);
    // The client's certificate round passed; the second ended at the
    // MS-CHAPv2 Response (after IDi and EAP-Identity).
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 4);
}

#[test]
fn a_client_without_the_second_round_is_refused() {
    // The gateway asks for remote2; the client announces no second round
    // (no ANOTHER_AUTH_FOLLOWS): no configuration matches.
    let mut p = pair(&mut root(), None, mschapv2_gateway(Some(any())), "secret");
    p.connect(0, "site-b");
    refused(&mut p, false);
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 1);
    // And a client with a second round the gateway does not ask for:
    // refused as well (the gateway's connection has one round).
    let mut p = pair(&mut root(), mschapv2_client(None), None, "secret");
    p.connect(0, "site-b");
    // The gateway announced no multiple authentication: the client does
    // its first round only, and that is all the gateway wants.
    assert!(established(&mut p), "{:?}", p.b().events());
    p.assert_kernels_match();
}

#[test]
fn two_certificate_rounds() {
    let mut ca = root();
    let second = second_cert(&mut ca, "second.example");
    let mut p = pair(
        &mut ca,
        second,
        second_pubkey(Some("second.example")),
        "secret",
    );
    p.connect(0, "site-b");
    assert!(
        established(&mut p),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    p.assert_kernels_match();
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 2);
    // The second round's identity must be remote2's: another one is
    // refused after the first round passed.
    let mut ca = root();
    let second = second_cert(&mut ca, "other.example");
    let mut p = pair(
        &mut ca,
        second,
        second_pubkey(Some("second.example")),
        "secret",
    );
    p.connect(0, "site-b");
    refused(&mut p, false);
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 2);
}

#[test]
fn an_untrusted_certificate_in_the_second_round_installs_nothing() {
    let mut other = Ca::root("Other Root", Alg::P256);
    let second = second_cert(&mut other, "second.example");
    let mut p = pair(&mut root(), second, second_pubkey(None), "secret");
    p.connect(0, "site-b");
    refused(&mut p, false);
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 2);
}

#[test]
fn the_eap_identity_of_the_second_round_chooses_the_connection_again() {
    // Two gateway connections, the same but for the EAP identity their
    // second round asks for: dave's (first) and carol's. carol's EAP
    // identity moves the IKE SA to hers after the certificate round.
    let two = |s: &mut Setup| {
        let mut dave = s.peers[1][0].clone();
        dave.name = "dave-only".into();
        dave.rounds.remote = mschapv2_gateway(Some(Identification::fqdn("dave")));
        let mut carol = s.peers[1][0].clone();
        carol.name = "carol-only".into();
        carol.rounds.remote = mschapv2_gateway(Some(Identification::fqdn("carol")));
        s.peers[1] = vec![dave, carol];
    };
    let mut p = pair_edited(&mut root(), mschapv2_client(None), None, "secret", two);
    p.connect(0, "site-b");
    assert!(established(&mut p), "{:?}", p.b().events());
    p.assert_kernels_match();
    let peers: Vec<_> = p.b().ep.ike_sas().filter_map(|s| s.peer).collect();
    assert_eq!(peers, ["carol-only"]);
}
