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
