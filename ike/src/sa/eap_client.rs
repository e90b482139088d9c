//! The client's choice of EAP method (RFC 3748 5.3.1), as charon's
//! `eap_authenticator` makes it in `client_process_eap`: with
//! `local.auth = eap-<method>` only that method, a Legacy Nak naming it
//! for any other; with the generic `local.auth = eap` whichever method
//! the server asks for among those we have credentials for, a Nak naming
//! those for any other (type 0, "no alternative", if there are none).
//! charon's Nak names every method it has loaded; ours names only those
//! it could finish, so a server choosing from it (`eap-dynamic`) does not
//! pick one we would fail at.

use super::config::EapLocal;
use super::endpoint::Ctx;
use crate::eap::{EapType, MethodName};
use crate::wire::Identification;

/// What the client does with the server's first request of a method.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Run this method.
    Run(MethodName),
    /// Refuse the request with a Legacy Nak offering these types.
    Nak(Vec<EapType>),
}

/// The methods a generic client (`auth = eap`) can finish, strongest
/// first: EAP-TLS with our certificate, EAP-MSCHAPv2 and EAP-MD5 with an
/// `eap` secret for `me` and `server`.
pub(crate) fn usable(
    ctx: &Ctx,
    cfg: &EapLocal,
    me: &Identification,
    server: &Identification,
) -> Vec<MethodName> {
    let mut out = Vec::new();
    if cfg.cred.is_some() {
        out.push(MethodName::Tls);
    }
    if ctx.eap_secrets.0.psk(me, server).is_some() {
        out.extend([MethodName::Mschapv2, MethodName::Md5]);
    }
    out
}

/// The choice of a client configured with `configured` for a request of
/// type `t`, `usable` being what [`usable`] found (used for `eap` only).
pub(crate) fn choose(configured: MethodName, t: EapType, usable: &[MethodName]) -> Choice {
    let candidates: &[MethodName] = if configured == MethodName::Any {
        usable
    } else {
        std::slice::from_ref(&configured)
    };
    match candidates.iter().find(|m| m.eap_type() == Some(t)) {
        Some(m) => Choice::Run(*m),
        None => Choice::Nak(candidates.iter().filter_map(|m| m.eap_type()).collect()),
    }
}

/// A Legacy Nak's Type-Data: the types offered, or 0 (RFC 3748 5.3.1:
/// no alternative).
pub(crate) fn nak_data(types: &[EapType]) -> Vec<u8> {
    if types.is_empty() {
        vec![0]
    } else {
        types.iter().map(|t| t.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_method_runs_alone_and_eap_runs_what_it_can() {
        use MethodName::*;
        // eap-md5 answers MD5 only, and Naks anything else with MD5.
        assert_eq!(choose(Md5, EapType::MD5, &[]), Choice::Run(Md5));
        assert_eq!(
            choose(Md5, EapType::MSCHAPV2, &[Mschapv2, Md5]),
            Choice::Nak(vec![EapType::MD5])
        );
        // eap: what it has credentials for.
        let pw = [Mschapv2, Md5];
        assert_eq!(choose(Any, EapType::MD5, &pw), Choice::Run(Md5));
        assert_eq!(choose(Any, EapType::MSCHAPV2, &pw), Choice::Run(Mschapv2));
        assert_eq!(
            choose(Any, EapType::TLS, &pw),
            Choice::Nak(vec![EapType::MSCHAPV2, EapType::MD5])
        );
        assert_eq!(choose(Any, EapType::TLS, &[Tls]), Choice::Run(Tls));
        assert_eq!(choose(Any, EapType(18), &[]), Choice::Nak(Vec::new()));
        assert_eq!(nak_data(&[]), [0]);
        assert_eq!(nak_data(&[EapType::TLS, EapType::MD5]), [13, 4]);
    }
}
