//! EAP-MD5 between two engines (a gateway with a certificate, a client
//! with an `eap` secret), and a client's generic `auth = eap` choosing the
//! server's method or Nak'ing it.

use super::eap::{established, methods_pair};
use super::failed;
use crate::eap::MethodName;
use crate::sa::*;
use crate::wire::codes::ExchangeType;

#[test]
fn eap_md5_gateway_and_client() {
    let mut p = methods_pair(MethodName::Md5, MethodName::Md5, "secret", None, None);
    p.connect(0, "site-b");
    assert!(
        established(&mut p),
        "{:?} {:?}",
        p.a().events(),
        p.b().events()
    );
    p.assert_kernels_match();
    // IDi without AUTH, the MD5 response, AUTH from SK_pi (no MSK).
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 3);
}

#[test]
fn eap_md5_wrong_password_is_refused_with_nothing_installed() {
    let mut p = methods_pair(MethodName::Md5, MethodName::Md5, "wrong", None, None);
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
fn a_generic_eap_client_runs_the_gateways_method() {
    for (gw, requests) in [(MethodName::Md5, 3), (MethodName::Mschapv2, 4)] {
        let mut p = methods_pair(MethodName::Any, gw, "secret", None, None);
        p.connect(0, "site-b");
        assert!(established(&mut p), "{gw}: {:?}", p.b().events());
        p.assert_kernels_match();
        assert_eq!(
            p.a().count_sent(ExchangeType::IKE_AUTH, false),
            requests,
            "{gw}"
        );
    }
}

#[test]
fn a_nak_of_a_method_the_client_lacks_fails_cleanly_at_the_gateway() {
    // `eap` with a password and no certificate Naks EAP-TLS; `eap-md5`
    // Naks EAP-MSCHAPv2. Either gateway refuses (it has one method):
    // EAP-Failure, nothing installed, after IDi and the Nak.
    for (client, gw) in [
        (MethodName::Any, MethodName::Tls),
        (MethodName::Md5, MethodName::Mschapv2),
    ] {
        let mut p = methods_pair(client, gw, "secret", None, None);
        p.connect(0, "site-b");
        assert_eq!(
            failed(&p.b().events()),
            [IkeFailReason::AuthenticationFailed { by_peer: false }],
            "{client} {gw}"
        );
        assert_eq!(
            failed(&p.a().events()),
            [IkeFailReason::AuthenticationFailed { by_peer: true }],
            "{client} {gw}"
        );
        p.assert_kernels_empty();
        assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 2);
    }
}

#[test]
fn an_eap_dynamic_gateway_goes_on_with_the_method_of_the_nak() {
    // eap-dynamic starts EAP-MSCHAPv2; the `eap-md5` client Naks it
    // with MD5, and the gateway switches to it.
    let mut p = methods_pair(MethodName::Md5, MethodName::Dynamic, "secret", None, None);
    p.connect(0, "site-b");
    assert!(established(&mut p), "{:?}", p.b().events());
    p.assert_kernels_match();
    // IDi, the Nak, the MD5 response, AUTH.
    assert_eq!(p.a().count_sent(ExchangeType::IKE_AUTH, false), 4);
}
