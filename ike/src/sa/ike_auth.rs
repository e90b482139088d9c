//! IKE_AUTH (RFC 7296 1.2, 2.15), both roles: the identities, AUTH with a
//! pre-shared key (verified in constant time) or a signature (`pubkey`:
//! RFC 7427 or the classic methods, CERT and CERTREQ, the peer's
//! certificate validated against the trust store, waiting for CRLs the
//! daemon fetches; the signatures and the certificate path are CPU work,
//! `compute`, which the handshake waits for and then runs again), the
//! responder's choice of the peer configuration by
//! identity and authentication class, and the first Child SA.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info};

use super::child_create::{ChildAnswer, ChildRequest, Exchanged, sa_payload, ts_payloads};
use super::compute::{
    ChainJob, Checked, Done, OurSig, PeerCheck, PeerKeySource, SignJob, Step, VerifyJob,
};
use super::config::{Childless, LocalAuthCfg, PeerCfg, RemoteAuthCfg};
use super::effect::Effect;
use super::endpoint::Ctx;
use super::ike_sa::{
    Handshake, IdDisplay, IkeSa, InitState, Keys, Phase, Task, error_notify, later, notify,
};
use super::pubkey;
use super::timers::IkeTimer;
use super::types::CrlFetch;
use super::types::{Event, IkeFailReason};
use super::unique;
use super::window::{Held, Waits};
use crate::crypto::Secret;
use crate::crypto::auth::{psk_auth, signed_octets, verify_psk_auth};
use crate::crypto::proposal::{self, SelectOptions};
use crate::pki::crl::Crl;
use crate::pki::dn::dn_matches;
use crate::wire::codes::{AuthMethod, ExchangeType, IdType, NotifyType};
use crate::wire::sa::Proposal;
use crate::wire::{Authentication, Identification, Message, Notify, Payload};

/// Whether `got` is the configured identity `want` (FQDN and RFC822
/// compared without regard to case, as strongSwan does).
pub(crate) fn id_matches(want: &Identification, got: &Identification) -> bool {
    if want.id_type != got.id_type {
        return false;
    }
    match want.id_type {
        IdType::FQDN | IdType::RFC822_ADDR => want.data.eq_ignore_ascii_case(&got.data),
        _ => want.data == got.data,
    }
}

/// The identity of an address, used as the peer's ID for the key lookup
/// when no remote identity is configured (ipsec.conf's default).
pub(crate) fn addr_id(ip: IpAddr) -> Identification {
    match ip {
        IpAddr::V4(a) => Identification::ipv4(a),
        IpAddr::V6(a) => Identification::ipv6(a),
    }
}

/// How well a configured identity (`None`: `%any`) matches one received,
/// strongSwan's ranks: exact before a wildcard (a DN with `*` RDNs)
/// before `%any`; `None`: no match.
pub(crate) fn id_rank(want: Option<&Identification>, got: &Identification) -> Option<u8> {
    match want {
        None => Some(1),
        Some(w) if w.id_type == IdType(0) => Some(1),
        Some(w) if id_matches(w, got) => Some(3),
        Some(w)
            if w.id_type == IdType::DER_ASN1_DN
                && got.id_type == IdType::DER_ASN1_DN
                && dn_matches(w, got) =>
        {
            Some(2)
        }
        Some(_) => None,
    }
}

/// Whether `id` is a pattern rather than an identity (a DN with a `*`
/// RDN value): such a `remote_id` is not sent as IDr.
fn wildcard(id: &Identification) -> bool {
    id.id_type == IdType::DER_ASN1_DN
        && id
            .data
            .windows(3)
            .any(|w| matches!(w, [0x0c | 0x13 | 0x14 | 0x16, 1, b'*']))
}

/// Our identity with `p`: `local_id`, or with a certificate and no
/// configured identity (ID type 0, `%any`) the certificate's subject DN.
pub(crate) fn local_identity(p: &PeerCfg) -> Identification {
    if p.local_id.id_type == IdType(0)
        && let LocalAuthCfg::Pubkey(cred) = &p.local_auth
        && let Some(c) = cred.certs.first()
    {
        return c.subject().clone();
    }
    p.local_id.clone()
}

/// The class of authentication an AUTH method belongs to: a connection
/// accepts only its own (a PSK connection never a signature, a
/// certificate connection never a PSK MAC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthClass {
    Psk,
    Pubkey,
    /// No AUTH in the first IKE_AUTH request: the peer asks for EAP.
    Eap,
}

impl AuthClass {
    /// The class of a received AUTH method; `None`: one we do not do.
    pub(crate) fn of(method: AuthMethod) -> Option<Self> {
        match method {
            AuthMethod::SHARED_KEY_MIC => Some(Self::Psk),
            AuthMethod::RSA_SIG
            | AuthMethod::ECDSA_SHA256_P256
            | AuthMethod::ECDSA_SHA384_P384
            | AuthMethod::ECDSA_SHA512_P521
            | AuthMethod::DIGITAL_SIGNATURE => Some(Self::Pubkey),
            _ => None,
        }
    }

    /// The class of a first IKE_AUTH request with `auth` (`None`: none,
    /// EAP); `None`: a method we do not do.
    pub(crate) fn of_request(auth: Option<&Authentication>) -> Option<Self> {
        match auth {
            Some(a) => Self::of(a.method),
            None => Some(Self::Eap),
        }
    }

    /// The class a connection wants of its peer.
    pub(crate) fn wanted(p: &PeerCfg) -> Self {
        match p.remote_auth {
            RemoteAuthCfg::Psk => Self::Psk,
            RemoteAuthCfg::Pubkey { .. } => Self::Pubkey,
            RemoteAuthCfg::Eap(_) => Self::Eap,
        }
    }
}

/// Responder: the connection for a peer that sent `idi` (and `idr`, the
/// identity it wants of us) and authenticates with `class`, among the
/// `candidates` that match the addresses (best address match first), as
/// strongSwan chooses: the best identity match over both identities
/// (exact before wildcard before `%any`), of those the ones whose
/// authentication class is the peer's and that ask for a second round
/// exactly if the peer announced one (`another`), then the best address
/// match; the connection must allow the IKE proposal already chosen.
pub(crate) fn choose_peer(
    candidates: &[Arc<PeerCfg>],
    idi: &Identification,
    idr: Option<&Identification>,
    class: AuthClass,
    another: bool,
    negotiated: &Proposal,
) -> Option<Arc<PeerCfg>> {
    let mut best: Option<(u8, &Arc<PeerCfg>)> = None;
    for p in candidates {
        let Some(remote) = id_rank(p.remote_id.as_ref(), idi) else {
            continue;
        };
        let local = match idr {
            None => 1,
            Some(r) => match id_rank(Some(&local_identity(p)), r) {
                Some(n) => n,
                None => continue,
            },
        };
        // The peer does as many rounds as the connection asks (its
        // ANOTHER_AUTH_FOLLOWS announces the second).
        if AuthClass::wanted(p) != class
            || p.rounds.remote.is_some() != another
            || proposal::select(
                &p.ike_proposals,
                std::slice::from_ref(negotiated),
                SelectOptions::default(),
            )
            .is_err()
        {
            continue;
        }
        let rank = remote.saturating_add(local);
        // The candidates come best address match first: on a tie the
        // earlier one stays.
        if best.is_none_or(|(b, _)| rank > b) {
            best = Some((rank, p));
        }
    }
    best.map(|(_, p)| p.clone())
}

fn ids(
    msg: &Message,
) -> (
    Option<&Identification>,
    Option<&Identification>,
    Option<&Authentication>,
) {
    let idi = msg.iter().find_map(|p| match p {
        Payload::IdI(i) => Some(i),
        _ => None,
    });
    let idr = msg.iter().find_map(|p| match p {
        Payload::IdR(i) => Some(i),
        _ => None,
    });
    let auth = msg.iter().find_map(|p| match p {
        Payload::Auth(a) => Some(a),
        _ => None,
    });
    (idi, idr, auth)
}

/// Adds fetched CRLs (DER or PEM) to the endpoint's trust store, so that
/// later validations find them; what does not parse is logged.
pub(crate) fn add_crls(ctx: &mut Ctx, result: Result<Vec<Vec<u8>>, String>) {
    let blobs = match result {
        Ok(b) => b,
        Err(e) => {
            info!("fetching CRLs failed: {e}");
            return;
        }
    };
    for b in blobs {
        match Crl::parse_pem_or_der(&b) {
            Ok(crls) => {
                let store = Arc::make_mut(&mut ctx.trust);
                for c in crls {
                    store.add_crl(Arc::new(c));
                }
            }
            Err(e) => info!("fetched CRL refused: {e}"),
        }
    }
}

impl IkeSa {
    /// The octets an AUTH signs (RFC 7296 2.15): the signer's own
    /// IKE_SA_INIT message, the other side's nonce, and the signer's SK_p
    /// over the signer's ID `id`.
    fn auth_octets(
        keys: &Keys,
        h: &Handshake,
        id: &Identification,
        signer_is_initiator: bool,
    ) -> Vec<u8> {
        let (message, nonce, sk_p) = if signer_is_initiator {
            (&h.init.request, &h.init.nonce_r, &keys.sk_pi)
        } else {
            (&h.init.response, &h.init.nonce_i, &keys.sk_pr)
        };
        signed_octets(
            keys.prf.as_ref(),
            message,
            nonce,
            sk_p.as_bytes(),
            &id.to_body(),
        )
    }

    /// The octets the peer's AUTH signs, with its ID `id`.
    pub(crate) fn peer_octets(&self, keys: &Keys, h: &Handshake, id: &Identification) -> Vec<u8> {
        Self::auth_octets(keys, h, id, !self.initiator)
    }

    /// The octets our AUTH signs, with our ID `id`.
    pub(crate) fn our_octets(&self, keys: &Keys, h: &Handshake, id: &Identification) -> Vec<u8> {
        Self::auth_octets(keys, h, id, self.initiator)
    }

    /// Whether the peer's AUTH proves `psk` for its identity `id` (RFC
    /// 7296 2.15). A failure is logged.
    pub(crate) fn peer_psk_auth_ok(
        &self,
        keys: &Keys,
        h: &Handshake,
        psk: &Secret,
        id: &Identification,
        auth: &Authentication,
    ) -> bool {
        let signed = self.peer_octets(keys, h, id);
        let ok = auth.method == AuthMethod::SHARED_KEY_MIC
            && verify_psk_auth(keys.prf.as_ref(), psk.as_bytes(), &signed, &auth.data);
        if !ok {
            info!(
                "{}: authentication of '{}' with {} failed",
                self.name(),
                IdDisplay(id),
                auth.method
            );
        }
        ok
    }

    pub(crate) fn psk(
        &self,
        ctx: &Ctx,
        local: &Identification,
        remote: &Identification,
    ) -> Option<Secret> {
        let k = ctx.psk.0.psk(local, remote);
        if k.is_none() {
            info!(
                "{}: no shared key found for '{}' - '{}'",
                self.name(),
                IdDisplay(local),
                IdDisplay(remote)
            );
        }
        k
    }

    /// Our AUTH payload as `local` (with the peer's identity `remote` for
    /// the shared key), and the CERT payloads that go before it
    /// (`asked`: the CA key hashes of the peer's CERTREQ, if it sent one);
    /// `None` while a signature is being made (`compute`: the caller runs
    /// again when it is done).
    pub(crate) fn our_auth(
        &mut self,
        ctx: &mut Ctx,
        local: &Identification,
        remote: &Identification,
        asked: Option<&[[u8; 20]]>,
    ) -> Result<Option<(Vec<Payload>, Authentication)>, String> {
        let keys = self.keys.as_ref().ok_or("no keys")?;
        let h = self.phase.handshake().ok_or("no IKE_SA_INIT state")?;
        let signed = self.our_octets(keys, h, local);
        let peer = self.peer.clone();
        match super::rounds::local_auth_of(&peer, self.our_second()) {
            LocalAuthCfg::Psk => {
                let psk = self.psk(ctx, local, remote).ok_or_else(|| {
                    format!(
                        "no shared key found for '{}' - '{}'",
                        IdDisplay(local),
                        IdDisplay(remote)
                    )
                })?;
                let data = psk_auth(keys.prf.as_ref(), psk.as_bytes(), &signed);
                let auth = Authentication {
                    method: AuthMethod::SHARED_KEY_MIC,
                    data,
                };
                Ok(Some((Vec::new(), auth)))
            }
            LocalAuthCfg::Pubkey(cred) => {
                let certs = pubkey::cert_payloads(cred, self.peer.send_cert, asked);
                let job = SignJob {
                    cred: cred.clone(),
                    hashes: h.peer_hashes.clone(),
                    #[cfg(test)]
                    scheme: ctx.knobs.sign_scheme,
                    #[cfg(not(test))]
                    scheme: None,
                    signed,
                };
                let id = self.id;
                let h = self.phase.handshake_mut().ok_or("no IKE_SA_INIT state")?;
                match std::mem::replace(&mut h.our_sig, OurSig::Asked) {
                    OurSig::Done(auth) => {
                        h.our_sig = OurSig::None;
                        Ok(Some((certs, auth?)))
                    }
                    OurSig::Asked => Ok(None),
                    OurSig::None => {
                        ctx.compute_sign(id, job);
                        Ok(None)
                    }
                }
            }
            LocalAuthCfg::Eap(_) if self.initiator => {
                Err("an EAP client has no AUTH before EAP".into())
            }
            LocalAuthCfg::Eap(_) => Err(
                "EAP authenticates the initiator only: a responder needs psk or pubkey (local.auth)"
                    .into(),
            ),
        }
    }

    /// Our CERTREQ for a peer that authenticates with a certificate (and
    /// `send_certreq`): the connection's `cacerts`, or every CA we trust.
    fn our_certreq(&self, ctx: &Ctx) -> Option<Payload> {
        let RemoteAuthCfg::Pubkey { cacerts, .. } = &self.peer.remote_auth else {
            return None;
        };
        if !self.peer.send_certreq {
            return None;
        }
        let hashes: Vec<[u8; 20]> = if cacerts.is_empty() {
            ctx.ca_hashes.to_vec()
        } else {
            cacerts.iter().map(|c| c.public_key().spki_sha1()).collect()
        };
        pubkey::certreq_payload(&hashes)
    }

    /// Where the key that signed the peer's AUTH (`id`'s, in `msg`) is
    /// to come from: the connection's raw `pubkeys`, or the peer's
    /// certificate if it names `id` (its path is validated against the
    /// trust store by the job, with the connection's `cacerts` and
    /// `revocation`).
    fn peer_key_source(
        &self,
        ctx: &Ctx,
        now: Instant,
        id: &Identification,
        msg: &Message,
    ) -> Result<PeerKeySource, String> {
        let RemoteAuthCfg::Pubkey {
            cacerts,
            pubkeys,
            revocation,
            ..
        } = super::rounds::remote_auth_of(&self.peer, self.their_second())
        else {
            return Err("the connection does not authenticate its peer by signature".into());
        };
        if !pubkeys.is_empty() {
            return Ok(PeerKeySource::Raw(pubkeys.clone()));
        }
        let mut certs = pubkey::peer_certs(msg)?.into_iter();
        let Some(end) = certs.next() else {
            return Err(format!("'{}' sent no certificate", IdDisplay(id)));
        };
        if !end.matches_id(id) {
            return Err(format!(
                "certificate '{}' does not confirm identity '{}'",
                end.subject_text(),
                IdDisplay(id)
            ));
        }
        let now_unix = ctx
            .wall
            .utc(now)
            .and_then(|t| t.duration_since(std::time::SystemTime::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .ok_or("no UTC time to check certificates against")?;
        Ok(PeerKeySource::Chain(Box::new(ChainJob {
            trust: ctx.trust.clone(),
            end,
            rest: certs.collect(),
            cacerts: cacerts.clone(),
            revocation: *revocation,
            now_unix,
            crls_fetched: self.phase.handshake().is_some_and(|h| h.crls_fetched),
        })))
    }

    /// Checks the peer's signature AUTH for its identity `id`: `Ok(true)`
    /// if it verifies, `Ok(false)` while it is being checked (`compute`)
    /// or the certificate waits for CRLs (`msg` kept in both cases, and
    /// taken on again by `auth_computed` or `crl_fetched`), or why not.
    pub(crate) fn peer_sig_ok(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        id: &Identification,
        auth: &Authentication,
        msg: &Message,
    ) -> Result<bool, String> {
        if AuthClass::of(auth.method) != Some(AuthClass::Pubkey) {
            return Err(format!(
                "'{}' authenticated with {}, a signature is required",
                IdDisplay(id),
                auth.method
            ));
        }
        let h = self.phase.handshake_mut().ok_or("no IKE_SA_INIT state")?;
        let checked = match std::mem::take(&mut h.peer_check) {
            PeerCheck::Passed => {
                h.peer_check = PeerCheck::Passed;
                return Ok(true);
            }
            PeerCheck::Asked => {
                h.peer_check = PeerCheck::Asked;
                return Ok(false);
            }
            PeerCheck::None => {
                let keys = self.peer_key_source(ctx, now, id, msg)?;
                let k = self.keys.as_ref().ok_or("no keys")?;
                let h = self.phase.handshake().ok_or("no IKE_SA_INIT state")?;
                let signed = self.peer_octets(k, h, id);
                ctx.compute_verify(
                    self.id,
                    VerifyJob {
                        keys,
                        auth: auth.clone(),
                        signed,
                    },
                );
                if let Some(h) = self.phase.handshake_mut() {
                    h.peer_check = PeerCheck::Asked;
                }
                self.await_compute(ctx, now, msg);
                return Ok(false);
            }
            PeerCheck::Done(c) => c?,
        };
        let key = match checked {
            Checked::Key { key, trusted } => {
                if let Some(t) = trusted {
                    tracing::debug!("{}: {t}", self.name());
                }
                key
            }
            Checked::NeedCrls(uris) => {
                self.await_crls(ctx, now, uris, msg);
                return Ok(false);
            }
            Checked::BadSig(why) => {
                return Err(format!(
                    "authentication of '{}' with {} failed: {why}",
                    IdDisplay(id),
                    auth.method
                ));
            }
        };
        if let RemoteAuthCfg::Pubkey { constraints, .. } =
            super::rounds::remote_auth_of(&self.peer, self.their_second())
        {
            pubkey::check_constraints(constraints, &key, auth)
                .map_err(|e| format!("'{}' {e}", IdDisplay(id)))?;
        }
        #[cfg(test)]
        ctx.knobs.seen.push((
            auth.method,
            crate::pki::decode_signature_auth(&auth.data)
                .ok()
                .map(|(s, _)| s),
            pubkey::peer_certs(msg).map_or(0, |c| c.len()),
        ));
        info!(
            "{}: authentication of '{}' with {} successful",
            self.name(),
            IdDisplay(id),
            auth.method
        );
        if let Some(h) = self.phase.handshake_mut() {
            h.peer_check = PeerCheck::Passed;
        }
        Ok(true)
    }

    /// Keeps `msg` (the peer's IKE_AUTH message) to go on with when the
    /// job asked for answers (`auth_computed`): the responder holds its
    /// answer (the peer's retransmissions are dropped meanwhile), an
    /// initiator gets a half-open timer, as for CRLs.
    fn await_compute(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        if let Some(h) = self.phase.handshake_mut() {
            h.auth_wait = Some(Box::new(msg.clone()));
        }
        if self.initiator {
            self.timers
                .arm(IkeTimer::HalfOpen, later(now, ctx.cfg.half_open_timeout));
        } else if self.window.held().is_none() {
            self.window.hold(Held {
                mid: msg.header.message_id,
                exchange: ExchangeType::IKE_AUTH,
                waits: Waits::Compute,
            });
        }
    }

    /// A job of IKE_AUTH (`step`) answered: the handshake takes it on
    /// where it waited (the initiator's request goes out with our
    /// signature; the peer's message is taken on again).
    pub(crate) fn auth_computed(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        step: Step,
        result: Result<Done, String>,
    ) {
        let Some(h) = self.phase.handshake_mut() else {
            return;
        };
        match (step, result) {
            (Step::Signed, Ok(Done::Signed(a))) => h.our_sig = OurSig::Done(Ok(a)),
            (Step::Checked, Ok(Done::Checked(c))) => h.peer_check = PeerCheck::Done(Ok(c)),
            (Step::Signed, Err(e)) => h.our_sig = OurSig::Done(Err(e)),
            (Step::Checked, Err(e)) => h.peer_check = PeerCheck::Done(Err(e)),
            (step, result) => {
                debug!("{}: {result:?} does not answer {step:?}", self.name());
                return;
            }
        }
        let Some(msg) = h.auth_wait.take() else {
            // The initiator's signature: its request goes out now.
            if self.initiator && step == Step::Signed {
                self.send_auth_request(ctx, now);
            }
            return;
        };
        if self.initiator {
            self.timers.stop(IkeTimer::HalfOpen);
            self.auth_response(ctx, now, &msg);
        } else {
            if matches!(self.window.held().map(|h| &h.waits), Some(Waits::Compute)) {
                self.window.take_held();
            }
            self.auth_request(ctx, now, &msg);
        }
    }

    /// Asks the daemon for the CRLs at `uris` and keeps `msg` to go on
    /// with when they come; an initiator (no half-open timer yet) gets
    /// one, so a fetch that never answers still ends.
    fn await_crls(&mut self, ctx: &mut Ctx, now: Instant, uris: Vec<String>, msg: &Message) {
        info!("{}: fetching CRLs from {}", self.name(), uris.join(", "));
        let req = ctx.outside.crl(self.id);
        ctx.crl_fetches.push_back(CrlFetch { req, uris });
        if let Some(h) = self.phase.handshake_mut() {
            h.crl_wait = Some(Box::new(msg.clone()));
        }
        if self.initiator {
            self.timers
                .arm(IkeTimer::HalfOpen, later(now, ctx.cfg.half_open_timeout));
        } else {
            // The peer's retransmissions are dropped meanwhile.
            self.window.hold(Held {
                mid: msg.header.message_id,
                exchange: ExchangeType::IKE_AUTH,
                waits: Waits::Crl,
            });
        }
    }

    /// The CRLs asked for by `await_crls` came (or did not): into the
    /// trust store, and IKE_AUTH goes on where it waited, validating
    /// again (what is still missing now counts as unavailable).
    pub(crate) fn crl_fetched(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        result: Result<Vec<Vec<u8>>, String>,
    ) {
        add_crls(ctx, result);
        let Some(h) = self.phase.handshake_mut() else {
            return;
        };
        let Some(msg) = h.crl_wait.take() else {
            return;
        };
        h.crls_fetched = true;
        if self.initiator {
            self.timers.stop(IkeTimer::HalfOpen);
            self.auth_response(ctx, now, &msg);
        } else {
            if matches!(self.window.held().map(|h| &h.waits), Some(Waits::Crl)) {
                self.window.take_held();
            }
            self.auth_request(ctx, now, &msg);
        }
    }

    /// Initiator: IKE_SA_INIT is done and the first child has its SPI.
    pub(crate) fn send_auth_request(&mut self, ctx: &mut Ctx, now: Instant) {
        if self.keys.is_none() {
            return;
        }
        if self.children.is_empty() && !self.childless() {
            return;
        }
        // Reauthentication: the first Child SA's inbound SA goes in first.
        if self.reauth_preinstall(ctx) {
            return;
        }
        if self.our_second() {
            return self.send_second_request(ctx, now);
        }
        if let Err(e) = self.rounds_initiator_check() {
            info!("{}: {e}", self.name());
            return self.fail(ctx, IkeFailReason::Internal(e));
        }
        let local_id = local_identity(&self.peer);
        let remote_hint = self
            .peer
            .remote_id
            .clone()
            .unwrap_or_else(|| addr_id(self.remote.ip()));
        let asked = self.phase.handshake().and_then(|h| h.certreq.clone());
        let (certs, auth) = if matches!(self.peer.local_auth, LocalAuthCfg::Eap(_)) {
            // No AUTH: EAP follows (RFC 7296 2.16).
            self.eap_client_start();
            (Vec::new(), None)
        } else {
            match self.our_auth(ctx, &local_id, &remote_hint, asked.as_deref()) {
                Ok(Some((c, a))) => (c, Some(a)),
                Ok(None) => return,
                Err(e) => {
                    self.fail(ctx, IkeFailReason::Internal(e));
                    return;
                }
            }
        };
        let mut inner = vec![Payload::IdI(local_id.clone())];
        inner.extend(certs);
        inner.extend(self.our_certreq(ctx));
        if let Some(r) = &self.peer.remote_id
            && !wildcard(r)
        {
            inner.push(Payload::IdR(r.clone()));
            // RFC 7296 2.4: no other IKE SA with the peer's identity, so
            // its SAs with us (if it kept any) are stale.
            let pair = unique::Pair::new(local_id.clone(), r.clone(), self.remote.ip());
            if unique::send_initial_contact(&ctx.contacts, &self.peer, &pair) {
                inner.push(Payload::Notify(Notify::new(
                    NotifyType::INITIAL_CONTACT,
                    Vec::new(),
                )));
            }
        }
        if auth.is_none() {
            // As charon: we take EAP-only authentication (RFC 5998) where
            // remote.auth asks for it.
            inner.push(Payload::Notify(Notify::new(
                NotifyType::EAP_ONLY_AUTHENTICATION,
                Vec::new(),
            )));
        }
        inner.extend(auth.map(Payload::Auth));
        inner.extend(self.rounds_first_request());
        inner.extend(self.mobike_auth_request());
        inner.extend(self.cp_request());
        self.local_id = Some(local_id);
        let child = self.children.first();
        // Childless (RFC 6023): no SA, no TS.
        if let Some(child) = child {
            let cfg = child.cfg.clone();
            let local_ts = self.proposed_local_ts(&cfg.local_ts);
            let remote_ts = self.remote_ts(&cfg.remote_ts);
            if cfg.mode == super::Mode::Transport {
                inner.push(Payload::Notify(Notify::new(
                    NotifyType::USE_TRANSPORT_MODE,
                    Vec::new(),
                )));
            }
            if let Some(cpi) = child.ipcomp.ours() {
                inner.push(super::child_create::ipcomp_notify(cpi));
            }
            inner.push(Payload::Sa(self.auth_offer(child)));
            inner.push(Payload::TsI(local_ts.clone()));
            inner.push(Payload::TsR(remote_ts.clone()));
            if let Some(c) = self.children.first_mut() {
                c.local_ts = local_ts;
                c.remote_ts = remote_ts;
            }
        }
        self.phase.advance(Phase::AuthSent);
        self.send_request(ctx, now, ExchangeType::IKE_AUTH, inner, Task::IkeAuth);
    }

    /// Initiator: we reject the responder's authentication; tell it
    /// (RFC 7296 2.21.2) and fail.
    pub(crate) fn reject_responder(&mut self, ctx: &mut Ctx) {
        self.send_oneshot(
            ctx,
            vec![Payload::Notify(Notify::new(
                NotifyType::AUTHENTICATION_FAILED,
                Vec::new(),
            ))],
        );
        self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: false });
    }

    /// Initiator: the IKE_AUTH response.
    pub(crate) fn auth_response(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        if self.eap_client_underway() {
            return self.eap_response(ctx, now, msg);
        }
        if self.our_second() {
            return self.second_response(ctx, now, msg);
        }
        if notify(msg, NotifyType::AUTHENTICATION_FAILED).is_some() {
            self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: true });
            return;
        }
        // INVALID_SYNTAX ends the IKE SA (RFC 7296 3.10.1), even next to
        // IDr and AUTH (charon's refusal of a Child SA its `childless`
        // policy does not allow).
        if notify(msg, NotifyType::INVALID_SYNTAX).is_some() {
            let detail = String::new();
            self.fail(
                ctx,
                IkeFailReason::InvalidSyntax {
                    by_peer: true,
                    detail,
                },
            );
            return;
        }
        let (_, idr, auth) = ids(msg);
        // EAP-only (RFC 5998): no AUTH before EAP, the method
        // authenticates the responder.
        let eap_only = auth.is_none() && matches!(self.peer.remote_auth, RemoteAuthCfg::Eap(_));
        let (Some(idr), true) = (idr, auth.is_some() || eap_only) else {
            let reason = match error_notify(msg) {
                Some(NotifyType::INVALID_SYNTAX) => IkeFailReason::InvalidSyntax {
                    by_peer: true,
                    detail: String::new(),
                },
                Some(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD) => {
                    IkeFailReason::UnsupportedCriticalPayload { by_peer: true }
                }
                Some(t) => IkeFailReason::PeerError(t),
                None => {
                    IkeFailReason::InvalidResponse("IKE_AUTH response without IDr or AUTH".into())
                }
            };
            self.fail(ctx, reason);
            return;
        };
        if let Some(want) = &self.peer.remote_id
            && id_rank(Some(want), idr).is_none()
        {
            info!(
                "{}: responder identified as '{}', we expect '{}'",
                self.name(),
                IdDisplay(idr),
                IdDisplay(want)
            );
            self.reject_responder(ctx);
            return;
        }
        match (&self.peer.remote_auth, auth) {
            (RemoteAuthCfg::Psk, Some(auth)) => {
                let local_id = local_identity(&self.peer);
                let Some(psk) = self.psk(ctx, &local_id, idr) else {
                    self.reject_responder(ctx);
                    return;
                };
                let Some(keys) = self.keys.as_ref() else {
                    return;
                };
                let Some(h) = self.phase.handshake() else {
                    return self.no_handshake(ctx);
                };
                if !self.peer_psk_auth_ok(keys, h, &psk, idr, auth) {
                    self.reject_responder(ctx);
                    return;
                }
            }
            (RemoteAuthCfg::Pubkey { .. }, Some(auth)) => {
                match self.peer_sig_ok(ctx, now, idr, auth, msg) {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        info!("{}: {e}", self.name());
                        self.reject_responder(ctx);
                        return;
                    }
                }
            }
            // EAP-only: checked when EAP succeeds (a mutual method).
            (RemoteAuthCfg::Eap(_), None)
                if matches!(self.peer.local_auth, LocalAuthCfg::Eap(_)) => {}
            (RemoteAuthCfg::Eap(_), _) => {
                info!(
                    "{}: the responder did not do EAP-only authentication (remote.auth = eap-*)",
                    self.name()
                );
                self.reject_responder(ctx);
                return;
            }
            (RemoteAuthCfg::Psk | RemoteAuthCfg::Pubkey { .. }, None) => {
                // Not reached: eap_only needs remote.auth eap-*.
                self.reject_responder(ctx);
                return;
            }
        }
        self.remote_id = Some(idr.clone());
        match self.rounds_after_first_answer(ctx, now, msg) {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                info!("{}: {e}", self.name());
                return self.reject_responder(ctx);
            }
        }
        if matches!(self.peer.local_auth, LocalAuthCfg::Eap(_)) {
            // The responder proved itself (or, EAP-only, will by the
            // method); its EAP request comes with it.
            return self.eap_client_begin(ctx, now, msg, eap_only);
        }
        self.auth_response_done(ctx, now, msg);
    }

    /// Initiator: the responder is authenticated; the IKE SA is
    /// established and the first Child SA taken from `msg`.
    pub(crate) fn auth_response_done(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        if self.auth_redirect(ctx, now, msg) {
            return;
        }
        self.mobike_auth_response(msg);
        self.cp_reply(msg);
        // The nonces go to the first Child SA's keys below; the rest of
        // the IKE_SA_INIT material is not needed any more.
        let Some(init) = self.established(ctx, now) else {
            return;
        };
        let Some(child) = self.children.first() else {
            return;
        };
        let (id, offered) = (child.id, self.auth_offer(child));
        let (ni, nr) = (init.nonce_i, init.nonce_r);
        let exchanged = Exchanged {
            offered: &offered,
            nonce_i: &ni,
            nonce_r: &nr,
            ke: None,
            skip_ke: true,
        };
        self.initiator_child_answer(ctx, now, msg, id, exchanged);
    }

    /// Leaves the handshake, handing back its state (none outside it:
    /// then the SA fails instead).
    fn established(&mut self, ctx: &mut Ctx, now: Instant) -> Option<InitState> {
        let Some(h) = self.phase.replace(Phase::Established) else {
            self.no_handshake(ctx);
            return None;
        };
        // SK_pi and SK_pr only make and check the AUTH payloads, which are
        // done (a rekeyed IKE SA's keys come from SK_d).
        if let Some(k) = self.keys.as_mut() {
            k.sk_pi = Secret::new(Vec::new());
            k.sk_pr = Secret::new(Vec::new());
        }
        self.timers.stop(IkeTimer::HalfOpen);
        self.established_at = Some(now);
        self.start_ike_lifetimes(ctx, now);
        self.dpd_start(now);
        let (lid, rid) = (self.local_id.clone(), self.remote_id.clone());
        info!(
            "IKE SA {} established between {}[{}]...{}[{}] with {}",
            self.name(),
            self.local,
            lid.as_ref()
                .map(|i| IdDisplay(i).to_string())
                .unwrap_or_default(),
            self.remote,
            rid.as_ref()
                .map(|i| IdDisplay(i).to_string())
                .unwrap_or_default(),
            self.keys
                .as_ref()
                .map(|k| proposal::display(&k.proposal).to_string())
                .unwrap_or_default()
        );
        ctx.events.push_back(Event::IkeEstablished {
            id: self.id,
            peer: self.peer.name.clone(),
        });
        Some(h.init)
    }

    /// Responder: answers AUTHENTICATION_FAILED and fails.
    pub(crate) fn refuse_auth(&mut self, ctx: &mut Ctx, mid: u32) {
        self.send_response(
            ctx,
            ExchangeType::IKE_AUTH,
            mid,
            vec![Payload::Notify(Notify::new(
                NotifyType::AUTHENTICATION_FAILED,
                Vec::new(),
            ))],
        );
        self.fail(ctx, IkeFailReason::AuthenticationFailed { by_peer: false });
    }

    /// Responder: the IKE_AUTH request.
    pub(crate) fn auth_request(&mut self, ctx: &mut Ctx, now: Instant, msg: &Message) {
        if self.eap_underway() {
            return self.eap_request(ctx, now, msg);
        }
        if self.their_second() {
            return self.second_request(ctx, now, msg);
        }
        let mid = msg.header.message_id;
        let (Some(idi), idr, auth) = ids(msg) else {
            info!("{}: IKE_AUTH request without IDi", self.name());
            self.refuse_auth(ctx, mid);
            return;
        };
        let Some(negotiated) = self.keys.as_ref().map(|k| k.proposal.clone()) else {
            return;
        };
        let another = notify(msg, NotifyType::ANOTHER_AUTH_FOLLOWS).is_some();
        let chosen = AuthClass::of_request(auth)
            .and_then(|class| choose_peer(&self.candidates, idi, idr, class, another, &negotiated));
        let Some(cfg) = chosen else {
            info!(
                "{}: no peer config found for '{}'...'{}' with {} authentication{}",
                self.name(),
                IdDisplay(idi),
                idr.map(|i| IdDisplay(i).to_string())
                    .unwrap_or_else(|| "%any".into()),
                auth.map_or_else(|| "EAP".to_string(), |a| a.method.to_string()),
                if another { " and another round" } else { "" }
            );
            self.refuse_auth(ctx, mid);
            return;
        };
        self.peer = cfg;
        // The other candidates are not needed any more: with N connections
        // matching the addresses, each responder IKE SA held N references
        // (8 KB per IKE SA at 1,000 connections). The chosen one
        // stays, so that "a peer configuration was found" still holds.
        // A connection that asks an EAP identity keeps them until it
        // comes (`rounds::reselect_by_eap_identity`).
        if !super::rounds::asks_eap_identity(&self.peer) {
            self.candidates = vec![self.peer.clone()].into();
        }
        let local_id = local_identity(&self.peer);
        if self.peer.rounds.local.is_some() {
            info!(
                "{}: local2: a second authentication round of our own as responder is not \
                 supported yet",
                self.name()
            );
            return self.refuse_auth(ctx, mid);
        }
        match (&self.peer.remote_auth, auth) {
            (RemoteAuthCfg::Eap(_), None) => {}
            (RemoteAuthCfg::Psk | RemoteAuthCfg::Pubkey { .. }, None)
            | (RemoteAuthCfg::Eap(_), Some(_)) => {
                // choose_peer matched the class: not reached.
                self.refuse_auth(ctx, mid);
                return;
            }
            (RemoteAuthCfg::Psk, Some(auth)) => {
                let Some(psk) = self.psk(ctx, &local_id, idi) else {
                    self.refuse_auth(ctx, mid);
                    return;
                };
                let Some(keys) = self.keys.as_ref() else {
                    return;
                };
                let Some(h) = self.phase.handshake() else {
                    return self.no_handshake(ctx);
                };
                if !self.peer_psk_auth_ok(keys, h, &psk, idi, auth) {
                    self.refuse_auth(ctx, mid);
                    return;
                }
            }
            (RemoteAuthCfg::Pubkey { .. }, Some(auth)) => {
                match self.peer_sig_ok(ctx, now, idi, auth, msg) {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        info!("{}: {e}", self.name());
                        self.refuse_auth(ctx, mid);
                        return;
                    }
                }
            }
        }
        if matches!(self.peer.local_auth, LocalAuthCfg::Eap(_)) {
            // EAP-only (RFC 5998): no AUTH of ours before EAP; the peer
            // must have offered it.
            if another
                || notify(msg, NotifyType::EAP_ONLY_AUTHENTICATION).is_none()
                || !matches!(self.peer.remote_auth, RemoteAuthCfg::Eap(_))
            {
                info!(
                    "{}: EAP-only authentication configured (local.auth), but the peer does not support it",
                    self.name()
                );
                return self.refuse_auth(ctx, mid);
            }
            let prefix = vec![Payload::IdR(local_id.clone())];
            return self.eap_start(ctx, msg, idi, local_id, prefix);
        }
        let asked = pubkey::certreqs(msg);
        let (certs, our_auth) = match self.our_auth(ctx, &local_id, idi, asked.as_deref()) {
            Ok(Some(x)) => x,
            Ok(None) => {
                self.await_compute(ctx, now, msg);
                return;
            }
            Err(e) => {
                info!("{}: {e}", self.name());
                self.refuse_auth(ctx, mid);
                return;
            }
        };
        let mut prefix = vec![Payload::IdR(local_id.clone())];
        prefix.extend(certs);
        prefix.push(Payload::Auth(our_auth));
        if another {
            return self.await_second_round(ctx, msg, idi, local_id, prefix);
        }
        if matches!(self.peer.remote_auth, RemoteAuthCfg::Eap(_)) {
            return self.eap_start(ctx, msg, idi, local_id, prefix);
        }
        self.auth_request_done(ctx, now, mid, msg, idi, local_id, prefix);
    }

    /// Responder: the peer is authenticated (`prefix`: our IDr, CERT and
    /// AUTH, or after EAP our AUTH): the IKE SA is established and the
    /// Child SA `msg` asks for (the first IKE_AUTH request) answered in
    /// the answer to request `mid`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn auth_request_done(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        mid: u32,
        msg: &Message,
        idi: &Identification,
        local_id: Identification,
        mut prefix: Vec<Payload>,
    ) {
        let pair = unique::Pair::new(local_id.clone(), idi.clone(), self.remote.ip());
        let ic = notify(msg, NotifyType::INITIAL_CONTACT).is_some();
        let dups = match unique::decide(&ctx.contacts, &self.peer, &pair, self.remote.ip(), ic, now)
        {
            unique::Decision::Go(d) => d,
            unique::Decision::Refuse => {
                info!(
                    "{}: '{}' has an IKE SA from another address, refusing this one (unique = keep)",
                    self.name(),
                    IdDisplay(idi)
                );
                self.refuse_auth(ctx, mid);
                return;
            }
        };
        self.local_id = Some(local_id);
        self.remote_id = Some(idi.clone());
        // Only the nonces (for the Child SA's keys below) are needed after
        // this: a retransmitted IKE_SA_INIT request no longer reaches an
        // established SA (`Endpoint::after` unindexes it), so neither the
        // messages nor anything else of IKE_SA_INIT is kept.
        let Some(init) = self.established(ctx, now) else {
            return;
        };
        // MOBIKE_SUPPORTED of ours in the answer that establishes the SA
        // (after EAP, the last one; the peer's notify is in `msg`).
        prefix.extend(self.mobike_auth_answer(msg));
        let mut prefix = match self.auth_redirect_answer(ctx, now, mid, prefix) {
            Ok(()) => return,
            Err(prefix) => prefix,
        };
        let asked = sa_payload(msg).is_some() || ts_payloads(msg) != (None, None);
        let refused = match (self.peer.behaviour.childless, asked) {
            (Childless::Never, false) => Some("the peer tried to initiate a childless IKE SA"),
            (Childless::Force, true) => Some("the peer did not initiate a childless IKE SA"),
            _ => None,
        };
        if let Some(why) = refused {
            // As charon: INVALID_SYNTAX in the answer, and the SA goes.
            info!("{}: {why} (childless policy), refusing it", self.name());
            let refusal = Notify::new(NotifyType::INVALID_SYNTAX, Vec::new());
            self.send_response(
                ctx,
                ExchangeType::IKE_AUTH,
                mid,
                vec![Payload::Notify(refusal)],
            );
            self.fail(
                ctx,
                IkeFailReason::InvalidSyntax {
                    by_peer: false,
                    detail: why.into(),
                },
            );
            return;
        }
        let cp = self.cp_respond(ctx, msg, idi);
        prefix.extend(cp.reply);
        if let Some(n) = cp.refusal {
            // As charon: the IKE SA stands, without a Child SA.
            prefix.push(Payload::Notify(Notify::new(n, Vec::new())));
            if asked {
                self.child_refused(
                    ctx,
                    super::child_create::ChildRefusal {
                        notify: n,
                        name: self
                            .peer
                            .children
                            .first()
                            .map(|c| c.name.clone())
                            .unwrap_or_default(),
                        reason: super::types::ChildFailReason::VirtualIp(n),
                    },
                );
            }
            self.send_response(ctx, ExchangeType::IKE_AUTH, mid, prefix);
            self.duplicates_go(ctx, dups);
            return;
        }
        let (Some(sa), (Some(tsi), Some(tsr))) = (sa_payload(msg), ts_payloads(msg)) else {
            // No Child SA asked for (childless, RFC 6023).
            self.send_response(ctx, ExchangeType::IKE_AUTH, mid, prefix);
            self.duplicates_go(ctx, dups);
            return;
        };
        let req = ChildRequest {
            sa,
            tsi,
            tsr,
            transport: notify(msg, NotifyType::USE_TRANSPORT_MODE).is_some(),
            skip_ke: true,
        };
        match self.select_child(ctx, &req) {
            Ok(choice) => {
                let answer = ChildAnswer {
                    prefix,
                    transport: req.transport,
                    nonce_i: init.nonce_i,
                    nonce_r: init.nonce_r,
                    pfs: None,
                    ke_out: None,
                    ipcomp: super::child_create::ipcomp_of(msg),
                };
                self.start_responder_child(ctx, now, mid, ExchangeType::IKE_AUTH, choice, answer);
                // The others go once the answer is sent (with the Child
                // SA, which takes over their reqids first: `unique`).
                match self.window.held_mut().map(|h| &mut h.waits) {
                    Some(Waits::Child(p)) => p.dups = dups,
                    _ => self.duplicates_go(ctx, dups),
                }
            }
            Err(r) => {
                prefix.push(Payload::Notify(Notify::new(r.notify, Vec::new())));
                self.child_refused(ctx, r);
                self.send_response(ctx, ExchangeType::IKE_AUTH, mid, prefix);
                self.duplicates_go(ctx, dups);
            }
        }
    }

    /// Responder: our IKE_AUTH answer is sent; the other IKE SAs of the
    /// identity pair go as `dups` says (the endpoint does it).
    pub(crate) fn duplicates_go(&self, ctx: &mut Ctx, dups: Option<(unique::Dups, Instant)>) {
        if let Some((dups, now)) = dups
            && !self.is_dead()
        {
            ctx.effects.push(Effect::Duplicates {
                ike: self.id,
                dups,
                now,
            });
        }
    }
}
