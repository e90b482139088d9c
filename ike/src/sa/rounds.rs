//! A second authentication round (RFC 4739, as charon's `ike_auth`): the
//! usual remote access, a certificate (or PSK) round, then EAP; or two
//! signature rounds.
//!
//! ```text
//! initiator                                     responder
//! IDi, [CERT], AUTH, N(ANOTHER_AUTH_FOLLOWS),
//!   N(MULTIPLE_AUTH_SUPPORTED), SA, TS, [CP]  -->
//!                                          <--  IDr, [CERT], AUTH
//! IDi2, [CERT], AUTH      (or no AUTH: EAP)  -->
//!                                          <--  SA, TS, [CP]   (or EAP ... AUTH from the MSK, SA, TS)
//! ```
//!
//! Both sides must have announced it: the responder's IKE_SA_INIT
//! response carries N(MULTIPLE_AUTH_SUPPORTED) when one of its connections
//! asks for a second round (`remote2`), the initiator's first IKE_AUTH
//! request whenever the responder's did. An initiator with `local2` whose
//! responder did not announce support does its first round only, as
//! charon (the responder decides whether that is enough).
//!
//! The responder keeps the first request (its SA, TS, CP and notifies) in
//! [`RoundState::first`] and answers it after the last round; nothing is
//! installed before, so a failing second round leaves nothing behind.
//! The peer's second AUTH is over its second IDi; after EAP, both AUTHs
//! from the MSK are over that IDi and our (unchanged) IDr.
//!
//! iked does its own second round as initiator only and asks the peer's
//! as responder only (a responder with `local2`, or an initiator with
//! `remote2` or a responder that announces ANOTHER_AUTH_FOLLOWS, fails
//! with a log line); a second round follows a certificate or PSK round,
//! never an EAP one (the configuration refuses that).

use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use super::config::{LocalAuthCfg, PeerCfg, RemoteAuthCfg};
use super::endpoint::Ctx;
use super::ike_sa::{IdDisplay, IkeSa, Task, notify};
use super::types::IkeFailReason;
use crate::wire::codes::{ExchangeType, NotifyType};
use crate::wire::{Identification, Message, Notify, Payload};

/// The rounds of one handshake (in `Handshake::rounds`).
#[derive(Debug, Default)]
pub(crate) struct RoundState {
    /// Initiator: the responder announced MULTIPLE_AUTH_SUPPORTED in
    /// IKE_SA_INIT.
    pub(crate) peer_supports: bool,
    /// Initiator: our second round is underway (its request made or
    /// sent).
    pub(crate) ours_second: bool,
    /// Responder: the peer's first round passed and its second is due or
    /// underway.
    pub(crate) theirs_second: bool,
    /// Responder: the peer's first IKE_AUTH request, answered (its Child
    /// SA, CP, notifies) after the last round.
    pub(crate) first: Option<Box<Message>>,
    /// Responder: the IDi of the peer's first round, once it passed.
    pub(crate) first_idi: Option<Identification>,
}

/// Whether `p` asks the peer's EAP identity (`eap_id`) in one of its
/// rounds: then the connection may change when it comes.
pub(crate) fn asks_eap_identity(p: &PeerCfg) -> bool {
    let asks = |a: &RemoteAuthCfg| matches!(a, RemoteAuthCfg::Eap(e) if e.eap_id.is_some());
    asks(&p.remote_auth) || p.rounds.remote.as_ref().is_some_and(|r| asks(&r.auth))
}

/// How we authenticate in our first or `second` round.
pub(crate) fn local_auth_of(p: &PeerCfg, second: bool) -> &LocalAuthCfg {
    match (&p.rounds.local, second) {
        (Some(r), true) => &r.auth,
        _ => &p.local_auth,
    }
}

/// How the peer authenticates in its first or `second` round.
pub(crate) fn remote_auth_of(p: &PeerCfg, second: bool) -> &RemoteAuthCfg {
    match (&p.rounds.remote, second) {
        (Some(r), true) => &r.auth,
        _ => &p.remote_auth,
    }
}

fn idi(msg: &Message) -> Option<&Identification> {
    msg.iter().find_map(|p| match p {
        Payload::IdI(i) => Some(i),
        _ => None,
    })
}

impl IkeSa {
    fn rounds(&self) -> Option<&RoundState> {
        self.phase.handshake().map(|h| &h.rounds)
    }

    fn rounds_mut(&mut self) -> Option<&mut RoundState> {
        self.phase.handshake_mut().map(|h| &mut h.rounds)
    }

    /// Initiator: whether our second round is underway.
    pub(crate) fn our_second(&self) -> bool {
        self.rounds().is_some_and(|r| r.ours_second)
    }

    /// Responder: whether the peer's second round is due or underway.
    pub(crate) fn their_second(&self) -> bool {
        self.rounds().is_some_and(|r| r.theirs_second)
    }

    /// Initiator: the IKE_SA_INIT response announced (or not) multiple
    /// authentication.
    pub(crate) fn rounds_init_response(&mut self, msg: &Message) {
        let supports = notify(msg, NotifyType::MULTIPLE_AUTH_SUPPORTED).is_some();
        if let Some(r) = self.rounds_mut() {
            r.peer_supports = supports;
        }
    }

    /// Initiator: why our configuration cannot be initiated (a second
    /// round of the responder's, which iked does not verify as
    /// initiator).
    pub(crate) fn rounds_initiator_check(&self) -> Result<(), String> {
        if self.peer.rounds.remote.is_some() {
            return Err(
                "remote2: a second authentication round of the responder is not supported yet \
                 (iked asks one as responder only)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Initiator: the notifies of our first IKE_AUTH request:
    /// MULTIPLE_AUTH_SUPPORTED if the responder announced it, and
    /// ANOTHER_AUTH_FOLLOWS with it if we have a second round.
    pub(crate) fn rounds_first_request(&self) -> Vec<Payload> {
        if !self.rounds().is_some_and(|r| r.peer_supports) {
            if self.peer.rounds.local.is_some() {
                info!(
                    "{}: the peer does not support multiple authentication (RFC 4739), \
                     doing our first round only",
                    self.name()
                );
            }
            return Vec::new();
        }
        let mut out = vec![Payload::Notify(Notify::new(
            NotifyType::MULTIPLE_AUTH_SUPPORTED,
            Vec::new(),
        ))];
        if self.peer.rounds.local.is_some() {
            out.push(Payload::Notify(Notify::new(
                NotifyType::ANOTHER_AUTH_FOLLOWS,
                Vec::new(),
            )));
        }
        out
    }

    /// Initiator: the responder's first answer passed; whether it ends
    /// our rounds (`Ok(false)`: go on as without rounds), our second
    /// round started (`Ok(true)`), or why the answer is refused.
    pub(crate) fn rounds_after_first_answer(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        msg: &Message,
    ) -> Result<bool, String> {
        if notify(msg, NotifyType::ANOTHER_AUTH_FOLLOWS).is_some() {
            return Err(
                "the responder announced a second authentication round of its own, which \
                 iked does not verify as initiator"
                    .into(),
            );
        }
        let ours =
            self.peer.rounds.local.is_some() && self.rounds().is_some_and(|r| r.peer_supports);
        if !ours {
            return Ok(false);
        }
        if let Some(r) = self.rounds_mut() {
            r.ours_second = true;
        }
        self.send_second_request(ctx, now);
        Ok(true)
    }

    /// Initiator: the request of our second round: its IDi, and its
    /// AUTH (CERT before it), or none to start EAP.
    pub(crate) fn send_second_request(&mut self, ctx: &mut Ctx, now: Instant) {
        let peer = self.peer.clone();
        let Some(round) = peer.rounds.local.as_ref() else {
            return self.fail(ctx, IkeFailReason::Internal("no second round".into()));
        };
        let id = match (&round.id, &round.auth) {
            (Some(id), _) => id.clone(),
            // As charon: the certificate's subject, else our address.
            (None, LocalAuthCfg::Pubkey(cred)) if !cred.certs.is_empty() => cred
                .certs
                .first()
                .map(|c| c.subject().clone())
                .unwrap_or_else(|| super::ike_auth::addr_id(self.local.ip())),
            (None, _) => super::ike_auth::addr_id(self.local.ip()),
        };
        let Some(server) = self.remote_id.clone() else {
            return self.no_handshake(ctx);
        };
        let mut inner = vec![Payload::IdI(id.clone())];
        if matches!(round.auth, LocalAuthCfg::Eap(_)) {
            self.eap_client_start();
        } else {
            let asked = self.phase.handshake().and_then(|h| h.certreq.clone());
            match self.our_auth(ctx, &id, &server, asked.as_deref()) {
                Ok(Some((certs, auth))) => {
                    inner.extend(certs);
                    inner.push(Payload::Auth(auth));
                }
                // Signing: `auth_computed` comes back through
                // `send_auth_request`.
                Ok(None) => return,
                Err(e) => return self.fail(ctx, IkeFailReason::Internal(e)),
            }
        }
        self.local_id = Some(id);
        self.send_request(ctx, now, ExchangeType::IKE_AUTH, inner, Task::IkeAuth);
    }

    /// Initiator: an answer in our second round (EAP's first request,
    /// or the last answer with the Child SA).
    pub(crate) fn second_response(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        if notify(msg, NotifyType::AUTHENTICATION_FAILED).is_some() {
            info!(
                "{}: the second authentication round failed (AUTHENTICATION_FAILED)",
                self.name()
            );
            return self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: true });
        }
        let peer = self.peer.clone();
        if matches!(local_auth_of(&peer, true), LocalAuthCfg::Eap(_)) {
            return self.eap_client_begin(ctx, now, msg, false);
        }
        if notify(msg, NotifyType::INVALID_SYNTAX).is_some() {
            return self.fail(
                ctx,
                IkeFailReason::InvalidSyntax {
                    by_peer: true,
                    detail: String::new(),
                },
            );
        }
        self.auth_response_done(ctx, now, msg);
    }

    /// Responder: the peer's first round passed and it announced another
    /// (`prefix`: our IDr, CERT, AUTH): our answer goes out now, its first
    /// request waits for the end of the second round.
    pub(crate) fn await_second_round(
        &mut self,
        ctx: &mut Ctx,
        msg: &Message,
        idi: &Identification,
        local_id: Identification,
        prefix: Vec<Payload>,
    ) {
        let mid = msg.header.message_id;
        if self.peer.rounds.remote.is_none() {
            // choose_peer matched the rounds: not reached.
            return self.refuse_auth(ctx, mid);
        }
        // The first round's success has its info line already.
        tracing::debug!(
            "{}: authentication of '{}' round 1 of 2 done",
            self.name(),
            IdDisplay(idi)
        );
        self.local_id = Some(local_id);
        self.remote_id = Some(idi.clone());
        if let Some(h) = self.phase.handshake_mut() {
            h.rounds.first_idi = Some(idi.clone());
            h.rounds.theirs_second = true;
            h.rounds.first = Some(Box::new(msg.clone()));
            // The second round's AUTH is checked anew.
            h.peer_check = super::compute::PeerCheck::None;
        }
        self.send_response(ctx, ExchangeType::IKE_AUTH, mid, prefix);
    }

    /// Responder: the peer's first round is done; its first request, to
    /// answer at the end (`msg` if there was no second round).
    pub(crate) fn first_request(&mut self, msg: &Message) -> Box<Message> {
        self.rounds_mut()
            .and_then(|r| r.first.take())
            .unwrap_or_else(|| Box::new(msg.clone()))
    }

    /// Responder: the request of the peer's second round.
    pub(crate) fn second_request(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        let mid = msg.header.message_id;
        let peer = self.peer.clone();
        let (Some(round), Some(local_id)) = (peer.rounds.remote.as_ref(), self.local_id.clone())
        else {
            return self.refuse_auth(ctx, mid);
        };
        let Some(idi) = idi(msg) else {
            info!("{}: IKE_AUTH request of round 2 without IDi", self.name());
            return self.refuse_auth(ctx, mid);
        };
        if super::ike_auth::id_rank(round.id.as_ref(), idi).is_none() {
            info!(
                "{}: '{}' is not the identity round 2 accepts ('{}')",
                self.name(),
                IdDisplay(idi),
                round
                    .id
                    .as_ref()
                    .map(|i| IdDisplay(i).to_string())
                    .unwrap_or_default()
            );
            return self.refuse_auth(ctx, mid);
        }
        let auth = msg.iter().find_map(|p| match p {
            Payload::Auth(a) => Some(a),
            _ => None,
        });
        match (&round.auth, auth) {
            // EAP answers the first request at its end.
            (RemoteAuthCfg::Eap(_), None) => {
                return self.eap_start(ctx, msg, idi, local_id, Vec::new());
            }
            (RemoteAuthCfg::Psk, Some(auth)) => {
                let Some(psk) = self.psk(ctx, &local_id, idi) else {
                    return self.refuse_auth(ctx, mid);
                };
                let (Some(keys), Some(h)) = (self.keys.as_ref(), self.phase.handshake()) else {
                    return self.no_handshake(ctx);
                };
                if !self.peer_psk_auth_ok(keys, h, &psk, idi, auth) {
                    return self.refuse_auth(ctx, mid);
                }
            }
            (RemoteAuthCfg::Pubkey { .. }, Some(auth)) => {
                match self.peer_sig_ok(ctx, now, idi, auth, msg) {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        info!("{}: {e}", self.name());
                        return self.refuse_auth(ctx, mid);
                    }
                }
            }
            (_, auth) => {
                info!(
                    "{}: round 2 of '{}' {} AUTH, its configuration (remote2) asks otherwise",
                    self.name(),
                    IdDisplay(idi),
                    if auth.is_some() { "with" } else { "without" }
                );
                return self.refuse_auth(ctx, mid);
            }
        }
        let first = self.first_request(msg);
        self.auth_request_done(ctx, now, mid, &first, idi, local_id, Vec::new());
    }

    /// Responder: the EAP identity matched the connection: the other
    /// candidates go (see `auth_request`).
    pub(crate) fn settle_candidates(&mut self) {
        if self.candidates.len() > 1 {
            self.candidates = vec![self.peer.clone()].into();
        }
    }

    /// Responder: the peer's EAP identity `id` is not the one the chosen
    /// connection asks for: as charon (`find_alternative_eap_cfg`), the
    /// first other candidate that would have been chosen the same way
    /// (the same rounds and authentication before EAP, the same identity
    /// and authentication of ours, the peer's IKE identity and the IKE
    /// proposal accepted) and whose EAP round asks for `id` becomes the
    /// connection; its EAP configuration, or `None`: no such one.
    pub(crate) fn reselect_by_eap_identity(
        &mut self,
        id: &Identification,
    ) -> Option<super::config::EapRemote> {
        let second = self.their_second();
        let current = self.peer.clone();
        let idi = if second {
            self.rounds().and_then(|r| r.first_idi.clone())
        } else {
            self.remote_id.clone()
        }?;
        let negotiated = self.keys.as_ref().map(|k| k.proposal.clone())?;
        let ours = super::ike_auth::local_identity(&current);
        let found = self.candidates.iter().find(|p| {
            let eap = match remote_auth_of(p, second) {
                RemoteAuthCfg::Eap(e) => e,
                _ => return false,
            };
            !Arc::ptr_eq(p, &current)
                && p.local_auth == current.local_auth
                && super::ike_auth::local_identity(p) == ours
                && p.rounds.remote.is_some() == current.rounds.remote.is_some()
                && (!second || p.remote_auth == current.remote_auth)
                && super::ike_auth::id_rank(p.remote_id.as_ref(), &idi).is_some()
                && super::ike_auth::id_rank(eap.eap_id.as_ref(), id).is_some()
                && crate::crypto::proposal::select(
                    &p.ike_proposals,
                    std::slice::from_ref(&negotiated),
                    crate::crypto::proposal::SelectOptions::default(),
                )
                .is_ok()
        })?;
        let found = found.clone();
        info!(
            "{}: EAP identity '{}' is not the one of connection '{}', switching to '{}'",
            self.name(),
            IdDisplay(id),
            current.name,
            found.name
        );
        let RemoteAuthCfg::Eap(eap) = remote_auth_of(&found, second) else {
            return None;
        };
        let eap = eap.clone();
        self.peer = found;
        self.settle_candidates();
        Some(eap)
    }
}
