//! EAP in IKE_AUTH (RFC 7296 2.16), both roles, as strongSwan's
//! `eap_authenticator`: the engine's side of the [`eap::Method`]s.
//!
//! ```text
//! initiator (client)                       responder (server)
//! IDi, [IDr], SA, TS      (no AUTH) -->
//!                                     <--  IDr, [CERT], AUTH, EAP(request)
//! EAP(response)                       -->
//!                                     <--  EAP(request)      ... round trips
//!                                     <--  EAP(success)
//! AUTH (from the MSK)                 -->
//!                                     <--  AUTH (from the MSK), SA, TS
//! ```
//!
//! The responder keeps the peer's first request (its Child SA's SA and
//! TS, its notifies) in the handshake's [`EapState`] and answers it in the
//! last exchange, as if it had come then; the initiator verifies the
//! responder's signature (or PSK) AUTH in the first response as without
//! EAP. With `eap_id` the server asks the peer's identity first
//! (EAP-Identity); without, the method runs for IDi. AUTH is keyed with
//! the method's MSK, or, for a method that makes none, with SK_pi / SK_pr.
//!
//! A method that waits for an outside operation (`Step::Wait`) holds the
//! responder's answer (`Waits::Eap`): the peer's retransmissions are
//! dropped until [`IkeSa::eap_resumed`] goes on with the answer.
//!
//! EAP runs in the peer's (or our) first round, or in the second after a
//! certificate or PSK round (`rounds`, RFC 4739): then its AUTHs are over
//! the second round's IDi. `aaa_id` names the EAP server's identity in
//! the method where an AAA backend runs it. An EAP identity that is not
//! the chosen connection's moves the IKE SA to a connection whose it is
//! (`IkeSa::reselect_by_eap_identity`, as charon).

use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info};

use super::config::{EapLocal, EapRemote, LocalAuthCfg, LocalCred, RemoteAuthCfg};
use super::endpoint::Ctx;
use super::ike_sa::{IdDisplay, IkeSa, Task};
use super::types::IkeFailReason;
use super::window::{Held, Waits};
use crate::crypto::Secret;
use crate::crypto::auth::{psk_auth, verify_psk_auth};
use crate::eap::{self, Answer, Ask, EapType, Method, MethodName, Step, code, mschapv2};
use crate::pki::cert::Certificate;
use crate::pki::chain::Revocation;
use crate::wire::codes::{AuthMethod, ExchangeType};
use crate::wire::{Authentication, Eap, Identification, Message, Payload};

/// Names an EAP method's outside operation ([`EapAsk`]) so that its
/// answer finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EapReq(pub u64);

/// An outside operation an EAP method asks for (`Endpoint::poll_eap_ask`;
/// answer with `Endpoint::handle_eap_answer`).
#[derive(Debug)]
pub struct EapAsk {
    /// Matches the answer.
    pub req: EapReq,
    /// What the method asks.
    pub ask: Ask,
}

/// Where EAP stands in a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Client: the responder's first answer (its AUTH, the first
    /// request) is due.
    Start,
    /// Server: our EAP-Identity request is out.
    Identity,
    /// The method runs.
    Method,
    /// Server: EAP-Success sent, the peer's AUTH due. Client: EAP-Success
    /// received and our AUTH sent, the server's due.
    Succeeded,
}

/// The EAP state of one handshake (in `Handshake::eap`).
pub(crate) struct EapState {
    stage: Stage,
    method: Option<Box<dyn Method>>,
    /// Server: the identifier of our last request.
    identifier: u8,
    /// The MSK once the method succeeded (`None`: AUTH from SK_p).
    msk: Option<Secret>,
    /// Server: the peer's first IKE_AUTH request, answered at the end.
    first: Option<Box<Message>>,
    /// Server: what goes before the EAP payload in the first answer
    /// (IDr, CERT, AUTH) while a method's first step waits.
    prefix: Vec<Payload>,
    /// The EAP identity: received (server) or sent (client).
    identity: Option<Identification>,
    /// Client: EAP-only authentication (RFC 5998): the responder sent no
    /// AUTH, the method must authenticate it.
    eap_only: bool,
    /// Server, `eap-dynamic`: the method is settled (the peer answered
    /// it, or its one Nak was taken): a Nak now fails, as charon's
    /// `eap_dynamic`.
    settled: bool,
}

/// No secrets, no messages in logs.
impl std::fmt::Debug for EapState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EapState")
            .field("stage", &self.stage)
            .field("method", &self.method)
            .field("msk", &self.msk.is_some())
            .finish()
    }
}

impl EapState {
    fn new(stage: Stage) -> Box<Self> {
        Box::new(Self {
            stage,
            method: None,
            identifier: 0,
            msk: None,
            first: None,
            prefix: Vec::new(),
            identity: None,
            eap_only: false,
            settled: false,
        })
    }
}

/// The identity of an EAP identity (or user name): parsed as strongSwan
/// parses an identity string (`carol` an FQDN, `carol@example.org` an
/// RFC822 address...), else the octets as a key ID.
pub(crate) fn identity_of(octets: &[u8]) -> Identification {
    let parsed = std::str::from_utf8(octets)
        .ok()
        .and_then(|s| crate::config::Identity::parse(s).ok())
        .filter(|i| *i != crate::config::Identity::Any);
    match parsed {
        Some(id) => crate::from_config::identification(&id),
        None => Identification {
            id_type: crate::wire::codes::IdType::KEY_ID,
            data: octets.to_vec(),
        },
    }
}

/// The octets of an identity as EAP sends it: the text of names and
/// addresses, strongSwan's notation for the rest.
fn identity_octets(id: &Identification) -> Vec<u8> {
    use crate::wire::codes::IdType;
    match id.id_type {
        IdType::FQDN | IdType::RFC822_ADDR | IdType::KEY_ID => id.data.clone(),
        _ => IdDisplay(id).to_string().into_bytes(),
    }
}

fn eap_payload(msg: &Message) -> Option<&Eap> {
    msg.iter().find_map(|p| match p {
        Payload::Eap(e) => Some(e),
        _ => None,
    })
}

fn auth_payload(msg: &Message) -> Option<&Authentication> {
    msg.iter().find_map(|p| match p {
        Payload::Auth(a) => Some(a),
        _ => None,
    })
}

/// EAP-TLS's setup: our credential, the endpoint's trust store, the
/// round's `cacerts` and `revocation`, the identity the peer's
/// certificate must match (any for `%any`), and the UTC of the driver's
/// last wall-clock anchor (at most a second old) for validity.
fn tls_setup(
    ctx: &Ctx,
    cred: &Arc<LocalCred>,
    cacerts: &[Arc<Certificate>],
    revocation: Revocation,
    peer: &Identification,
) -> Result<eap::tls::TlsSetup, String> {
    let utc = ctx
        .wall
        .latest()
        .ok_or("no wall-clock time to check certificates")?;
    let now_unix = utc
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or("wall-clock time before 1970")?;
    let mut setup = eap::tls::TlsSetup::new(cred.clone(), ctx.trust.clone(), now_unix);
    setup.pinned_cas = cacerts.to_vec();
    setup.revocation = revocation;
    setup.peer_id = (peer.id_type != crate::wire::codes::IdType(0)).then(|| peer.clone());
    Ok(setup)
}

fn bare(code: u8, identifier: u8) -> Eap {
    Eap {
        code,
        identifier,
        data: Vec::new(),
    }
}

impl IkeSa {
    fn eap_state(&mut self) -> Option<&mut EapState> {
        self.phase
            .handshake_mut()
            .and_then(|h| h.eap.as_deref_mut())
    }

    /// The EAP configuration of the peer's round underway (its first, or
    /// its second: `rounds`); `None`: that round is not EAP.
    fn eap_remote_cfg(&self) -> Option<EapRemote> {
        match super::rounds::remote_auth_of(&self.peer, self.their_second()) {
            RemoteAuthCfg::Eap(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// Responder: whether the handshake is in EAP (the peer's IKE_AUTH
    /// requests after the first go to [`IkeSa::eap_request`]).
    pub(crate) fn eap_underway(&self) -> bool {
        self.phase.handshake().is_some_and(|h| h.eap.is_some())
    }

    /// The key AUTH is made with after EAP: the MSK, or without one the
    /// signer's SK_p (RFC 7296 2.16).
    fn eap_auth_key(&self, msk: Option<&Secret>, initiator_signs: bool) -> Option<Secret> {
        if let Some(m) = msk {
            return Some(m.clone());
        }
        let k = self.keys.as_ref()?;
        Some(if initiator_signs {
            k.sk_pi.clone()
        } else {
            k.sk_pr.clone()
        })
    }

    /// Our AUTH after EAP, for our identity `id`.
    fn eap_our_auth(&self, msk: Option<&Secret>, id: &Identification) -> Option<Authentication> {
        let key = self.eap_auth_key(msk, self.initiator)?;
        let keys = self.keys.as_ref()?;
        let h = self.phase.handshake()?;
        let signed = self.our_octets(keys, h, id);
        Some(Authentication {
            method: AuthMethod::SHARED_KEY_MIC,
            data: psk_auth(keys.prf.as_ref(), key.as_bytes(), &signed),
        })
    }

    /// Whether the peer's AUTH after EAP proves the MSK (or its SK_p) for
    /// its identity `id`.
    fn eap_peer_auth_ok(
        &self,
        msk: Option<&Secret>,
        id: &Identification,
        auth: &Authentication,
    ) -> bool {
        let (Some(key), Some(keys), Some(h)) = (
            self.eap_auth_key(msk, !self.initiator),
            self.keys.as_ref(),
            self.phase.handshake(),
        ) else {
            return false;
        };
        let signed = self.peer_octets(keys, h, id);
        auth.method == AuthMethod::SHARED_KEY_MIC
            && verify_psk_auth(keys.prf.as_ref(), key.as_bytes(), &signed, &auth.data)
    }

    // ---- server (responder) ----

    /// The server's method for the peer `peer` (its EAP identity, or
    /// IDi), as the connection names it.
    fn server_method(
        &self,
        ctx: &Ctx,
        cfg: &EapRemote,
        server: &Identification,
        peer: &Identification,
    ) -> Result<Box<dyn Method>, String> {
        match cfg.method {
            MethodName::Tls => {
                // The gateway's TLS certificate is its IKE one.
                let LocalAuthCfg::Pubkey(cred) = &self.peer.local_auth else {
                    return Err(
                        "eap-tls needs the gateway's certificate (local auth pubkey)".into(),
                    );
                };
                let setup = tls_setup(ctx, cred, &cfg.cacerts, cfg.revocation, peer)?;
                let m = eap::tls::EapTls::server(&setup).map_err(|e| e.to_string())?;
                Ok(Box::new(m))
            }
            // eap-dynamic starts with MSCHAPv2; a Nak may change it
            // (`dynamic_method`).
            MethodName::Mschapv2 | MethodName::Dynamic => {
                let mut challenge = [0u8; mschapv2::CHALLENGE_LEN];
                ctx.provider
                    .fill_random(&mut challenge)
                    .map_err(|e| format!("no challenge: {e}"))?;
                let store = ctx.eap_secrets.clone();
                let server = server.clone();
                let lookup: mschapv2::SecretLookup =
                    Box::new(move |name: &[u8]| store.0.psk(&server, &identity_of(name)));
                let m: Box<dyn Method> = Box::new(mschapv2::Server::new(challenge, lookup));
                #[cfg(test)]
                if ctx.knobs.eap_wait {
                    return Ok(Box::new(tests::Delayed {
                        inner: m,
                        held: None,
                        asked: 0,
                    }));
                }
                Ok(m)
            }
            MethodName::Any => Err("auth = eap names no method for a gateway".into()),
            MethodName::Md5 => {
                let mut challenge = [0u8; eap::md5::CHALLENGE_LEN];
                ctx.provider
                    .fill_random(&mut challenge)
                    .map_err(|e| format!("no challenge: {e}"))?;
                let (store, server, peer) = (ctx.eap_secrets.clone(), server.clone(), peer.clone());
                let lookup: eap::md5::SecretLookup = Box::new(move || store.0.psk(&server, &peer));
                Ok(Box::new(eap::md5::Server::new(challenge, lookup)))
            }
            MethodName::Radius => {
                let Some((settings, prefix)) = ctx.radius.as_ref() else {
                    return Err(
                        "eap-radius: no RADIUS server configured (strongswan.conf's charon.plugins.eap-radius)"
                            .into(),
                    );
                };
                let session = crate::radius::Session {
                    name: self.peer.name.clone(),
                    // NAS-Port is 32 bits: the low bits of the IKE SA's number.
                    unique: u32::try_from(self.id.0 & 0xffff_ffff).unwrap_or(0),
                    prefix: *prefix,
                    local: self.local,
                    remote: self.remote,
                };
                // charon's eap-radius sends the identity's encoding as
                // User-Name and EAP-Identity.
                Ok(Box::new(eap::radius::Radius::new(
                    settings.clone(),
                    session,
                    peer.data.clone(),
                )))
            }
        }
    }

    /// Responder: the peer's first IKE_AUTH request asks for EAP (no
    /// AUTH) and the chosen connection authenticates it so: our IDr,
    /// CERT and AUTH (`prefix`) go out with the first EAP request.
    pub(crate) fn eap_start(
        &mut self,
        ctx: &mut Ctx,
        msg: &Message,
        idi: &Identification,
        local_id: Identification,
        prefix: Vec<Payload>,
    ) {
        let mid = msg.header.message_id;
        let Some(cfg) = self.eap_remote_cfg() else {
            return self.refuse_auth(ctx, mid);
        };
        let mut first_id = [0u8; 1];
        if ctx.provider.fill_random(&mut first_id).is_err() {
            return self.refuse_auth(ctx, mid);
        }
        let [identifier] = first_id;
        self.local_id = Some(local_id.clone());
        self.remote_id = Some(idi.clone());
        let mut st = EapState::new(Stage::Method);
        // With a second round, the first request of the first.
        st.first = Some(self.first_request(msg));
        st.prefix = prefix;
        let step = if cfg.eap_id.is_some() {
            st.stage = Stage::Identity;
            debug!("{}: initiating EAP_IDENTITY", self.name());
            Step::Send(eap::packet(
                code::REQUEST,
                identifier,
                EapType::IDENTITY,
                &[],
            ))
        } else {
            st.identity = Some(idi.clone());
            let server = cfg.aaa_id.as_ref().unwrap_or(&local_id);
            match self.server_method(ctx, &cfg, server, idi) {
                Ok(mut m) => {
                    debug!("{}: initiating {}", self.name(), m.eap_type());
                    let s = m.initiate(identifier);
                    st.method = Some(m);
                    s
                }
                Err(e) => Step::Failure(e),
            }
        };
        if let Some(h) = self.phase.handshake_mut() {
            h.eap = Some(st);
        }
        self.server_step(ctx, mid, step);
    }

    /// Responder: what the method said goes to the peer in the answer to
    /// request `mid`.
    fn server_step(&mut self, ctx: &mut Ctx, mid: u32, step: Step) {
        let name = self.name().to_string();
        let id = self.id;
        let step = match step {
            Step::Success => match self.server_succeeded() {
                Ok(()) => Step::Success,
                Err(why) => Step::Failure(why),
            },
            s => s,
        };
        let Some(st) = self.eap_state() else {
            return self.no_handshake(ctx);
        };
        let mut inner = std::mem::take(&mut st.prefix);
        match step {
            Step::Send(req) => {
                st.identifier = req.identifier;
                inner.push(Payload::Eap(req));
            }
            Step::Success => inner.push(Payload::Eap(bare(code::SUCCESS, st.identifier))),
            Step::Failure(why) => {
                info!("{name}: {why}, sending EAP_FAILURE");
                inner.push(Payload::Eap(bare(code::FAILURE, st.identifier)));
                // As charon: the EAP-Failure says it, no
                // AUTHENTICATION_FAILED next to it.
                self.send_response(ctx, ExchangeType::IKE_AUTH, mid, inner);
                self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: false });
                return;
            }
            Step::Wait(ask) => {
                st.prefix = inner;
                let req = EapReq(ctx.outside.ask(id, super::outside::Then::Eap));
                ctx.eap_asks.push_back(EapAsk { req, ask });
                self.window.hold(Held {
                    mid,
                    exchange: ExchangeType::IKE_AUTH,
                    waits: Waits::Eap,
                });
                return;
            }
        }
        self.send_response(ctx, ExchangeType::IKE_AUTH, mid, inner);
    }

    /// Responder: the method succeeded: its MSK, and the identity it
    /// authenticated, which must be one the connection accepts (the
    /// configured `eap_id`, what EAP-Identity was checked against, else
    /// IDi); or why not.
    fn server_succeeded(&mut self) -> Result<(), String> {
        let want = self
            .eap_remote_cfg()
            .and_then(|c| c.eap_id)
            .or_else(|| self.remote_id.clone());
        let name = self.name().to_string();
        let st = self.eap_state().ok_or("no EAP state")?;
        let m = st.method.as_ref().ok_or("no EAP method")?;
        let msk = m.msk().map(Secret::from_slice);
        if m.makes_msk() && msk.is_none() {
            return Err(format!("{} succeeded, but no MSK", m.eap_type()));
        }
        if let Some(user) = m.peer_identity() {
            let id = identity_of(&user);
            st.identity = match want {
                // The identity's own encoding (a DN's DER...).
                Some(w) if w.data == user => Some(w),
                Some(w) if super::ike_auth::id_rank(Some(&w), &id).is_some() => Some(id),
                w => {
                    return Err(format!(
                        "EAP user '{}' is not '{}'",
                        IdDisplay(&id),
                        w.as_ref()
                            .map(|w| IdDisplay(w).to_string())
                            .unwrap_or_default()
                    ));
                }
            };
        }
        debug!(
            "{name}: EAP method {} succeeded, {}MSK established",
            m.eap_type(),
            if msk.is_some() { "" } else { "no " }
        );
        st.msk = msk;
        st.stage = Stage::Succeeded;
        Ok(())
    }

    /// An EAP method's outside operation answered: the method goes on,
    /// and the held answer goes out.
    pub(crate) fn eap_resumed(&mut self, ctx: &mut Ctx, answer: Answer) {
        let Some(Waits::Eap) = self.window.held().map(|h| &h.waits) else {
            debug!("{}: EAP answer nothing waits for", self.name());
            return;
        };
        let Some(held) = self.window.take_held() else {
            return;
        };
        let step = match self.eap_state().and_then(|st| st.method.as_mut()) {
            Some(m) => m.resume(answer),
            None => Step::Failure("EAP answer without a method".into()),
        };
        self.server_step(ctx, held.mid, step);
    }

    /// Responder: an IKE_AUTH request after the first, in EAP.
    pub(crate) fn eap_request(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        let mid = msg.header.message_id;
        let Some(stage) = self.eap_state().map(|s| s.stage) else {
            return self.no_handshake(ctx);
        };
        if stage == Stage::Succeeded {
            return self.eap_final_request(ctx, now, msg);
        }
        let Some(resp) = eap_payload(msg) else {
            info!("{}: IKE_AUTH request without EAP payload", self.name());
            return self.refuse_auth(ctx, mid);
        };
        let step = self.server_process(ctx, resp);
        self.server_step(ctx, mid, step);
    }

    /// Responder: the peer's EAP response.
    fn server_process(&mut self, ctx: &Ctx, resp: &Eap) -> Step {
        let Some(local_id) = self.local_id.clone() else {
            return Step::Failure("no local identity".into());
        };
        let Some(cfg) = self.eap_remote_cfg() else {
            return Step::Failure("not an EAP connection".into());
        };
        let local_id = cfg.aaa_id.clone().unwrap_or(local_id);
        let name = self.name().to_string();
        let Some(st) = self.eap_state() else {
            return Step::Failure("no EAP state".into());
        };
        if resp.code != code::RESPONSE {
            return Step::Failure(format!("received EAP code {}", resp.code));
        }
        let got = eap::type_of(resp);
        if st.stage == Stage::Identity {
            if got != Some(EapType::IDENTITY) || resp.identifier != st.identifier {
                return Step::Failure("received an invalid EAP-Identity response".into());
            }
            let id = identity_of(eap::type_data(resp));
            let want = cfg.eap_id.clone();
            let cfg = if super::ike_auth::id_rank(want.as_ref(), &id).is_some() {
                self.settle_candidates();
                cfg
            } else {
                // As charon: another connection whose EAP identity it is.
                match self.reselect_by_eap_identity(&id) {
                    Some(c) => c,
                    None => {
                        return Step::Failure(format!(
                            "EAP identity '{}' is not the configured '{}'",
                            IdDisplay(&id),
                            want.map(|w| IdDisplay(&w).to_string()).unwrap_or_default()
                        ));
                    }
                }
            };
            let local_id = cfg.aaa_id.clone().unwrap_or(local_id);
            debug!("{name}: received EAP identity '{}'", IdDisplay(&id));
            let Some(st) = self.eap_state() else {
                return Step::Failure("no EAP state".into());
            };
            st.identity = Some(id.clone());
            st.stage = Stage::Method;
            let next = st.identifier.wrapping_add(1);
            return match self.server_method(ctx, &cfg, &local_id, &id) {
                Ok(mut m) => {
                    let s = m.initiate(next);
                    if let Some(st) = self.eap_state() {
                        st.method = Some(m);
                    }
                    s
                }
                Err(e) => Step::Failure(e),
            };
        }
        let Some(m) = st.method.as_mut() else {
            return Step::Failure("no EAP method".into());
        };
        if got == Some(EapType::NAK) {
            let tried = m.eap_type();
            if cfg.method != MethodName::Dynamic || st.settled {
                return Step::Failure(format!("the peer refused {tried} (EAP_NAK)"));
            }
            st.settled = true;
            let theirs: Vec<EapType> = eap::type_data(resp).iter().map(|t| EapType(*t)).collect();
            let next = st.identifier.wrapping_add(1);
            let peer = st.identity.clone().or_else(|| self.remote_id.clone());
            let Some(peer) = peer else {
                return Step::Failure("no peer identity".into());
            };
            return self.dynamic_method(ctx, &cfg, &local_id, &peer, tried, &theirs, next);
        }
        st.settled = true;
        if got != Some(m.eap_type()) {
            return Step::Failure(format!(
                "received an EAP response of {} in {}",
                got.map(|t| t.to_string()).unwrap_or_default(),
                m.eap_type()
            ));
        }
        m.process(resp)
    }

    /// Responder, `eap-dynamic`: the peer refused `tried` with a Nak
    /// listing `theirs`: the first other method of ours (MSCHAPv2, then
    /// TLS, then MD5, the weakest) it lists and we can run starts with request `identifier`, as
    /// charon's `eap_dynamic` (our order: its `prefer_peer` is off by
    /// default).
    #[allow(clippy::too_many_arguments)]
    fn dynamic_method(
        &mut self,
        ctx: &Ctx,
        cfg: &EapRemote,
        server: &Identification,
        peer: &Identification,
        tried: EapType,
        theirs: &[EapType],
        identifier: u8,
    ) -> Step {
        let name = self.name().to_string();
        let list = theirs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        for method in [MethodName::Mschapv2, MethodName::Tls, MethodName::Md5] {
            let Some(t) = method.eap_type() else {
                continue;
            };
            if t == tried || !theirs.contains(&t) {
                continue;
            }
            let mut c = cfg.clone();
            c.method = method;
            match self.server_method(ctx, &c, server, peer) {
                Ok(mut m) => {
                    info!(
                        "{name}: the peer refused {tried} (EAP_NAK, asks for {list}), {t} selected"
                    );
                    let step = m.initiate(identifier);
                    if let Some(st) = self.eap_state() {
                        st.method = Some(m);
                    }
                    return step;
                }
                Err(e) => debug!("{name}: {t} not available: {e}"),
            }
        }
        Step::Failure(format!(
            "the peer refused {tried} (EAP_NAK) and asks for none of our other methods ({list})"
        ))
    }

    /// Responder: EAP succeeded, the peer's AUTH from the MSK has come.
    fn eap_final_request(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        let mid = msg.header.message_id;
        let Some(h) = self.phase.handshake_mut() else {
            return self.no_handshake(ctx);
        };
        let Some(st) = h.eap.take() else {
            return self.no_handshake(ctx);
        };
        let (Some(idi), Some(local_id), Some(first)) =
            (self.remote_id.clone(), self.local_id.clone(), st.first)
        else {
            return self.refuse_auth(ctx, mid);
        };
        let ok = auth_payload(msg).is_some_and(|a| self.eap_peer_auth_ok(st.msk.as_ref(), &idi, a));
        let eap_id = st.identity.unwrap_or_else(|| idi.clone());
        if !ok {
            info!(
                "{}: verification of AUTH payload with{} EAP MSK failed",
                self.name(),
                if st.msk.is_some() { "" } else { "out" }
            );
            return self.refuse_auth(ctx, mid);
        }
        info!(
            "{}: authentication of '{}' with EAP successful",
            self.name(),
            IdDisplay(&eap_id)
        );
        let Some(our) = self.eap_our_auth(st.msk.as_ref(), &local_id) else {
            return self.refuse_auth(ctx, mid);
        };
        // From here on the peer is who EAP proved (as charon's EAP
        // identity: uniqueness, leases).
        let prefix = vec![Payload::Auth(our)];
        self.auth_request_done(ctx, now, mid, &first, &eap_id, local_id, prefix);
    }

    // ---- client (initiator) ----

    /// Initiator: our first IKE_AUTH request goes without AUTH; EAP
    /// follows.
    pub(crate) fn eap_client_start(&mut self) {
        if let Some(h) = self.phase.handshake_mut() {
            h.eap = Some(EapState::new(Stage::Start));
        }
    }

    /// Initiator: whether the IKE_AUTH response goes to
    /// [`IkeSa::eap_response`] (EAP started: the responder's AUTH was
    /// verified).
    pub(crate) fn eap_client_underway(&self) -> bool {
        self.phase
            .handshake()
            .and_then(|h| h.eap.as_ref())
            .is_some_and(|s| s.stage != Stage::Start)
    }

    /// Initiator: the responder proved its identity in its first answer
    /// (`auth_response`); the EAP request in it starts EAP.
    pub(crate) fn eap_client_begin(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
        eap_only: bool,
    ) {
        if let Some(st) = self.eap_state() {
            st.stage = Stage::Method;
            st.eap_only = eap_only;
        }
        self.eap_response(ctx, now, msg);
    }

    /// Initiator: an IKE_AUTH response in EAP.
    pub(crate) fn eap_response(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        let Some(stage) = self.eap_state().map(|s| s.stage) else {
            return self.no_handshake(ctx);
        };
        if stage == Stage::Succeeded {
            return self.eap_final_response(ctx, now, msg);
        }
        if super::ike_sa::notify(msg, crate::wire::codes::NotifyType::AUTHENTICATION_FAILED)
            .is_some()
        {
            return self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: true });
        }
        let Some(req) = eap_payload(msg) else {
            return self.fail(
                ctx,
                IkeFailReason::InvalidResponse("IKE_AUTH response without EAP payload".into()),
            );
        };
        match req.code {
            code::REQUEST => match self.client_process(ctx, req) {
                Ok(resp) => self.send_request(
                    ctx,
                    now,
                    ExchangeType::IKE_AUTH,
                    vec![Payload::Eap(resp)],
                    Task::IkeAuth,
                ),
                Err(why) => {
                    info!("{}: {why}", self.name());
                    self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: false });
                }
            },
            code::SUCCESS => self.client_succeeded(ctx, now),
            code::FAILURE => {
                info!(
                    "{}: received EAP_FAILURE, EAP authentication failed",
                    self.name()
                );
                self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: true });
            }
            c => {
                info!("{}: received EAP code {c}", self.name());
                self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: false });
            }
        }
    }

    /// Initiator: our response to the server's request `req`.
    fn client_process(&mut self, ctx: &Ctx, req: &Eap) -> Result<Eap, String> {
        let peer = self.peer.clone();
        let LocalAuthCfg::Eap(cfg) = super::rounds::local_auth_of(&peer, self.our_second()) else {
            return Err("not an EAP connection".into());
        };
        let cfg = cfg.clone();
        let me = cfg
            .eap_id
            .clone()
            .or_else(|| self.local_id.clone())
            .ok_or("no local identity")?;
        // aaa_id: the AAA backend behind the gateway runs the method.
        let server = cfg
            .aaa_id
            .clone()
            .or_else(|| self.remote_id.clone())
            .ok_or("no server identity")?;
        let name = self.name().to_string();
        let t = eap::type_of(req).ok_or("EAP request without a type")?;
        if t == EapType::IDENTITY {
            debug!(
                "{name}: server requested EAP_IDENTITY, sending '{}'",
                IdDisplay(&me)
            );
            if let Some(st) = self.eap_state() {
                st.identity = Some(me.clone());
            }
            let octets = identity_octets(&me);
            return Ok(eap::packet(code::RESPONSE, req.identifier, t, &octets));
        }
        if t == EapType::NOTIFICATION {
            // RFC 3748 5.2: acknowledged with an empty Notification.
            return Ok(eap::packet(code::RESPONSE, req.identifier, t, &[]));
        }
        let st_method = self.eap_state().map(|st| st.method.is_some());
        if st_method == Some(false) {
            let usable = super::eap_client::usable(ctx, &cfg, &me, &server);
            let run = match super::eap_client::choose(cfg.method, t, &usable) {
                super::eap_client::Choice::Run(m) => m,
                super::eap_client::Choice::Nak(ours) => {
                    let offered: Vec<String> = ours.iter().map(|t| t.to_string()).collect();
                    info!(
                        "{name}: server requested {t}, sending EAP_NAK (offering {})",
                        if offered.is_empty() {
                            "none".to_string()
                        } else {
                            offered.join(", ")
                        }
                    );
                    return Ok(eap::packet(
                        code::RESPONSE,
                        req.identifier,
                        EapType::NAK,
                        &super::eap_client::nak_data(&ours),
                    ));
                }
            };
            let cfg = EapLocal {
                method: run,
                ..cfg.clone()
            };
            let m = Self::client_method(ctx, &cfg, &me, &server, &self.peer.remote_auth)?;
            debug!("{name}: server requested {t} authentication");
            if let Some(st) = self.eap_state() {
                st.method = Some(m);
            }
        }
        let st = self.eap_state().ok_or("no EAP state")?;
        let m = st.method.as_mut().ok_or("no EAP method")?;
        if t != m.eap_type() {
            return Err(format!("server requested {t} in {}", m.eap_type()));
        }
        match m.process(req) {
            Step::Send(resp) => Ok(resp),
            Step::Failure(why) => Err(why),
            Step::Success | Step::Wait(_) => Err(format!("{} misbehaved", m.eap_type())),
        }
    }

    /// Our `eap` secret as client `me` toward `server` (the password of
    /// EAP-MSCHAPv2 and EAP-MD5).
    fn client_secret(
        ctx: &Ctx,
        me: &Identification,
        server: &Identification,
    ) -> Result<Secret, String> {
        ctx.eap_secrets.0.psk(me, server).ok_or_else(|| {
            format!(
                "no EAP key found for '{}' - '{}'",
                IdDisplay(me),
                IdDisplay(server)
            )
        })
    }

    /// The client's method of the connection, as `me` with `server`.
    fn client_method(
        ctx: &Ctx,
        cfg: &EapLocal,
        me: &Identification,
        server: &Identification,
        remote: &RemoteAuthCfg,
    ) -> Result<Box<dyn Method>, String> {
        match cfg.method {
            MethodName::Tls => {
                let cred = cfg
                    .cred
                    .as_ref()
                    .ok_or("eap-tls needs our certificate (local certs)")?;
                // The server's certificate is checked as its IKE one
                // would be (remote auth pubkey's cacerts, revocation).
                let (cacerts, revocation) = match remote {
                    RemoteAuthCfg::Pubkey {
                        cacerts,
                        revocation,
                        ..
                    } => (cacerts.as_slice(), *revocation),
                    _ => (&[][..], Revocation::default()),
                };
                let setup = tls_setup(ctx, cred, cacerts, revocation, server)?;
                let m = eap::tls::EapTls::client(&setup).map_err(|e| e.to_string())?;
                Ok(Box::new(m))
            }
            MethodName::Mschapv2 => {
                let secret = Self::client_secret(ctx, me, server)?;
                let password = std::str::from_utf8(secret.as_bytes())
                    .map_err(|_| "the EAP key is not UTF-8".to_string())?;
                let mut challenge = [0u8; mschapv2::CHALLENGE_LEN];
                ctx.provider
                    .fill_random(&mut challenge)
                    .map_err(|e| format!("no challenge: {e}"))?;
                let m: Box<dyn Method> = Box::new(mschapv2::Client::new(
                    &identity_octets(me),
                    password,
                    challenge,
                ));
                #[cfg(test)]
                if ctx.knobs.eap_mutual {
                    return Ok(Box::new(tests::Mutual(m)));
                }
                Ok(m)
            }
            MethodName::Md5 => {
                let secret = Self::client_secret(ctx, me, server)?;
                Ok(Box::new(eap::md5::Client::new(secret)))
            }
            m => Err(format!("{m} is not available as a client yet")),
        }
    }

    /// Initiator: the server's EAP-Success: our AUTH from the MSK.
    fn client_succeeded(&mut self, ctx: &mut Ctx, now: Instant) {
        let name = self.name().to_string();
        let Some(st) = self.eap_state() else {
            return self.no_handshake(ctx);
        };
        let (makes, msk) = match &st.method {
            Some(m) => (m.makes_msk(), m.msk().map(Secret::from_slice)),
            None => (false, None),
        };
        if makes && msk.is_none() {
            // RFC 3748 4.2: a success before the method finished.
            info!("{name}: EAP_SUCCESS before the EAP method succeeded, failing");
            return self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: false });
        }
        let mutual = st.method.as_ref().is_some_and(|m| m.mutual());
        if st.eap_only && !(mutual && msk.is_some()) {
            // RFC 5998: only a method that authenticates the server (and
            // keys the AUTH that proves it) may stand in for its AUTH.
            info!(
                "{name}: EAP-only authentication with a method that does not authenticate the gateway, failing"
            );
            return self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: false });
        }
        debug!(
            "{name}: EAP method succeeded, {}MSK established",
            if msk.is_some() { "" } else { "no " }
        );
        st.stage = Stage::Succeeded;
        st.msk = msk.clone();
        let Some(local_id) = self.local_id.clone() else {
            return self.no_handshake(ctx);
        };
        let Some(auth) = self.eap_our_auth(msk.as_ref(), &local_id) else {
            return self.no_handshake(ctx);
        };
        self.send_request(
            ctx,
            now,
            ExchangeType::IKE_AUTH,
            vec![Payload::Auth(auth)],
            Task::IkeAuth,
        );
    }

    /// Initiator: the responder's AUTH from the MSK, and the Child SA.
    fn eap_final_response(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        let Some(st) = self.phase.handshake_mut().and_then(|h| h.eap.take()) else {
            return self.no_handshake(ctx);
        };
        let Some(idr) = self.remote_id.clone() else {
            return self.no_handshake(ctx);
        };
        if super::ike_sa::notify(msg, crate::wire::codes::NotifyType::AUTHENTICATION_FAILED)
            .is_some()
        {
            return self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: true });
        }
        let ok = auth_payload(msg).is_some_and(|a| self.eap_peer_auth_ok(st.msk.as_ref(), &idr, a));
        if !ok {
            info!(
                "{}: verification of AUTH payload with{} EAP MSK failed",
                self.name(),
                if st.msk.is_some() { "" } else { "out" }
            );
            return self.reject_responder(ctx);
        }
        self.auth_response_done(ctx, now, msg);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A server method that asks the outside ([`Ask::Echo`]) before it
    /// takes each response, as EAP-RADIUS does (`TestKnobs::eap_wait`).
    #[derive(Debug)]
    pub(crate) struct Delayed {
        pub(crate) inner: Box<dyn Method>,
        pub(crate) held: Option<Eap>,
        pub(crate) asked: u32,
    }

    impl Method for Delayed {
        fn eap_type(&self) -> EapType {
            self.inner.eap_type()
        }

        fn initiate(&mut self, identifier: u8) -> Step {
            self.inner.initiate(identifier)
        }

        fn process(&mut self, msg: &Eap) -> Step {
            self.held = Some(msg.clone());
            self.asked = self.asked.wrapping_add(1);
            Step::Wait(Ask::Echo(self.asked))
        }

        fn resume(&mut self, answer: Answer) -> Step {
            match (answer, self.held.take()) {
                (Answer::Echo(n), Some(msg)) if n == self.asked => self.inner.process(&msg),
                (Answer::Failed(why), _) => Step::Failure(why),
                (a, _) => Step::Failure(format!("unexpected {a:?}")),
            }
        }

        fn makes_msk(&self) -> bool {
            self.inner.makes_msk()
        }

        fn msk(&self) -> Option<&[u8]> {
            self.inner.msk()
        }

        fn peer_identity(&self) -> Option<Vec<u8>> {
            self.inner.peer_identity()
        }
    }

    /// A client method that claims to authenticate the server
    /// (`TestKnobs::eap_mutual`), as EAP-TLS will, for EAP-only.
    #[derive(Debug)]
    pub(crate) struct Mutual(pub(crate) Box<dyn Method>);

    impl Method for Mutual {
        fn eap_type(&self) -> EapType {
            self.0.eap_type()
        }

        fn process(&mut self, msg: &Eap) -> Step {
            self.0.process(msg)
        }

        fn makes_msk(&self) -> bool {
            self.0.makes_msk()
        }

        fn msk(&self) -> Option<&[u8]> {
            self.0.msk()
        }

        fn mutual(&self) -> bool {
            true
        }
    }

    #[test]
    fn identities_parse_as_strongswan_parses_them() {
        use crate::wire::codes::IdType;
        assert_eq!(identity_of(b"carol").id_type, IdType::FQDN);
        assert_eq!(
            identity_of(b"carol@example.org").id_type,
            IdType::RFC822_ADDR
        );
        assert_eq!(identity_of(b"192.0.2.7").id_type, IdType::IPV4_ADDR);
        // Not text, or %any: the octets as a key ID.
        assert_eq!(identity_of(&[0xff, 0xfe]).id_type, IdType::KEY_ID);
        assert_eq!(identity_of(b"%any").id_type, IdType::KEY_ID);
        assert_eq!(identity_octets(&identity_of(b"carol")), b"carol");
    }
}
