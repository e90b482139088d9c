//! EAP-TLS (RFC 5216; TLS 1.3 as RFC 9190 profiles it) in both roles,
//! on rustls driven in memory: TLS records go in and out of the EAP
//! packets' data, never through a socket.
//!
//! The framing follows strongSwan's `libtls/tls_eap.c`, the reference
//! for interoperation:
//! - the server opens with an EAP-TLS Start (flag S, no data);
//! - a TLS flight longer than one EAP packet (`fragment_size`, 1024 as
//!   charon's `eap-tls.fragment_size`) is cut into fragments: the first
//!   carries L (the flight's total length) and M, the others M, the last
//!   neither; each fragment is acknowledged by an empty packet of the
//!   other side (RFC 5216 2.1.5). A flight that fits in one packet carries
//!   L too (charon's `include_length = yes`);
//! - a flight is handed to TLS only once all its fragments are in;
//! - the client answers a server flight that needs no TLS answer (TLS 1.2's
//!   ChangeCipherSpec/Finished, TLS 1.3's protected success indication)
//!   with an empty response, upon which the server ends the method;
//! - a conversation is bounded by `max_message_count` packets (32, charon's
//!   default) and a flight by [`MAX_MESSAGE_LEN`], so a peer cannot make
//!   either side buffer or loop without end.
//!
//! TLS 1.3 (RFC 9190 2.5): once the handshake is complete, the server
//! sends one octet 0x00 as application data, the "protected success
//! indication", and the client sends an empty response to it; no
//! session tickets are sent (no resumption). The MSK is the first 64
//! octets of 128 exported ones: TLS 1.2, label "client EAP encryption"
//! without context (RFC 5216 2.3: the PRF over both randoms); TLS 1.3,
//! label "EXPORTER_EAP_TLS_Key_Material" with the context 0x0D (RFC 9190
//! 2.3). Without the indication (TLS 1.3) there is no MSK, as in charon.
//!
//! Certificates are the project's own ([`crate::pki`]): our key signs the
//! handshake through [`PrivateKey::sign`](crate::pki::PrivateKey::sign),
//! and the peer's chain is validated by [`chain::validate`] against the
//! trust store, the connection's pinned CAs (`cacerts`) and its
//! revocation policy, at the engine's UTC (rustls is handed that time,
//! never the system clock). CRLs are those already in the store: a
//! handshake cannot wait for a fetch, so a CRL not there counts as
//! unavailable.
//!
//! Invariants: no input panics (no indexing or unchecked arithmetic on
//! packets), every error ends the method (an EAP-TLS conversation is not
//! resumed after a failure), and the MSK is only given out after a
//! complete handshake.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::time_provider::TimeProvider;
use rustls::{
    ClientConfig, ClientConnection, Connection, DigitallySignedStruct, DistinguishedName,
    ProtocolVersion, ServerConfig, ServerConnection, SignatureAlgorithm, SignatureScheme,
};
use zeroize::Zeroizing;

use super::{EapType, Method, Step};
use crate::pki::cert::Certificate;
use crate::pki::chain::{self, Revocation, ValidateParams, Validation};
use crate::pki::sig::{HashAlg, SigScheme};
use crate::pki::store::TrustStore;
use crate::pki::{KeyType, PublicKey};
use crate::sa::LocalCred;
use crate::wire::codes::IdType;
use crate::wire::{Eap, Identification};

/// EAP's method type for EAP-TLS (RFC 5216).
pub const EAP_TYPE_TLS: u8 = 13;

/// EAP codes (RFC 3748 4).
const CODE_REQUEST: u8 = 1;
const CODE_RESPONSE: u8 = 2;

/// Flags of the EAP-TLS header (RFC 5216 3.1).
const FLAG_LENGTH: u8 = 0x80;
const FLAG_MORE: u8 = 0x40;
const FLAG_START: u8 = 0x20;

/// Code, identifier, length, type, flags.
const HEADER_LEN: usize = 6;
/// The TLS Message Length field after the flags when L is set.
const LENGTH_FIELD: usize = 4;

/// The largest TLS flight accepted, as charon's `TLS_MAX_MESSAGE_LEN`
/// (four records of 16 KiB plus expansion).
pub const MAX_MESSAGE_LEN: usize = 4 * (16384 + 2048);

/// charon's `eap-tls.fragment_size`: the largest EAP packet we send.
pub const DEFAULT_FRAGMENT_SIZE: usize = 1024;
/// The smallest fragment size accepted: below it a fragment would carry
/// almost nothing (the headers take 10 octets).
pub const MIN_FRAGMENT_SIZE: usize = 64;
/// The largest: EAP's length field has 16 bits.
pub const MAX_FRAGMENT_SIZE: usize = 65535;
/// charon's `eap-tls.max_message_count`.
pub const DEFAULT_MAX_MESSAGE_COUNT: u32 = 32;

/// RFC 9190 2.3's label and context (the EAP type code) for TLS 1.3.
const LABEL_TLS13: &[u8] = b"EXPORTER_EAP_TLS_Key_Material";
/// RFC 5216 2.3's label for TLS 1.2 (and earlier).
const LABEL_TLS12: &[u8] = b"client EAP encryption";

/// Why the method failed; each ends it.
#[derive(Debug, thiserror::Error)]
pub enum EapTlsError {
    /// A packet that is not EAP-TLS as RFC 5216 frames it.
    #[error("malformed EAP-TLS packet: {0}")]
    Malformed(&'static str),
    /// A well-formed packet that does not fit the conversation's state.
    #[error("unexpected EAP-TLS packet: {0}")]
    Unexpected(&'static str),
    /// More packets than `max_message_count`.
    #[error("EAP-TLS packet count exceeded ({0})")]
    TooManyMessages(u32),
    /// The TLS handshake failed (the peer's certificate, a bad signature,
    /// no common version or cipher suite, an alert...).
    #[error("TLS: {0}")]
    Tls(String),
    /// Our side cannot be set up (key type, versions).
    #[error("EAP-TLS setup: {0}")]
    Setup(String),
    /// The MSK was asked for before the method succeeded.
    #[error("no EAP-TLS MSK: {0}")]
    NoMsk(&'static str),
}

impl From<rustls::Error> for EapTlsError {
    fn from(e: rustls::Error) -> Self {
        Self::Tls(e.to_string())
    }
}

/// The TLS versions a side accepts (strongSwan's `charon.tls.version_min`
/// and `version_max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
    /// TLS 1.2 or 1.3, the newer preferred.
    Both,
}

impl TlsVersions {
    fn rustls(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
        static TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
        static BOTH: &[&rustls::SupportedProtocolVersion] =
            &[&rustls::version::TLS13, &rustls::version::TLS12];
        match self {
            Self::Tls12 => TLS12,
            Self::Tls13 => TLS13,
            Self::Both => BOTH,
        }
    }
}

/// What one side of EAP-TLS needs: its credential, what it trusts, and
/// the framing's limits.
#[derive(Clone)]
pub struct TlsSetup {
    /// Our key and certificate chain (end entity first).
    pub cred: Arc<LocalCred>,
    /// The trust anchors, intermediates and CRLs.
    pub trust: Arc<TrustStore>,
    /// The connection's `cacerts`: if any, one must be on the peer's path.
    pub pinned_cas: Vec<Arc<Certificate>>,
    /// The connection's revocation policy.
    pub revocation: Revocation,
    /// The identity the peer's certificate must match (`None`: any
    /// certificate that validates, as `%any`).
    pub peer_id: Option<Identification>,
    /// The TLS versions accepted.
    pub versions: TlsVersions,
    /// The largest EAP packet we send (clamped to
    /// [`MIN_FRAGMENT_SIZE`]..=[`MAX_FRAGMENT_SIZE`]).
    pub fragment_size: usize,
    /// The most EAP-TLS packets one conversation may take.
    pub max_message_count: u32,
    /// Now, Unix seconds (the engine's UTC): certificate validity.
    pub now_unix: i64,
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSetup")
            .field("certs", &self.cred.certs.len())
            .field("pinned_cas", &self.pinned_cas.len())
            .field("revocation", &self.revocation)
            .field("peer_id", &self.peer_id)
            .field("versions", &self.versions)
            .field("fragment_size", &self.fragment_size)
            .field("max_message_count", &self.max_message_count)
            .field("now_unix", &self.now_unix)
            .finish()
    }
}

impl TlsSetup {
    /// A setup with charon's defaults for the framing and TLS 1.2 or 1.3.
    pub fn new(cred: Arc<LocalCred>, trust: Arc<TrustStore>, now_unix: i64) -> Self {
        Self {
            cred,
            trust,
            pinned_cas: Vec::new(),
            revocation: Revocation::default(),
            peer_id: None,
            versions: TlsVersions::Both,
            fragment_size: DEFAULT_FRAGMENT_SIZE,
            max_message_count: DEFAULT_MAX_MESSAGE_COUNT,
            now_unix,
        }
    }
}

/// What to do after a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Send this EAP packet (the server's next request, the client's
    /// response).
    Send(Eap),
    /// Server only: the peer is authenticated; send EAP-Success and take
    /// [`EapTls::msk`].
    Success,
}

/// Which side we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Server,
    Client,
}

/// One EAP-TLS conversation.
pub struct EapTls {
    role: Role,
    conn: Connection,
    /// The server: the identifier of its last request; the client: of the
    /// request it answers.
    identifier: u8,
    fragment_size: usize,
    max_message_count: u32,
    /// Packets processed so far.
    processed: u32,
    /// Our current flight and how much of it went out already.
    out: Vec<u8>,
    out_sent: usize,
    /// The peer's flight being reassembled, and its announced length.
    inbuf: Vec<u8>,
    in_expected: Option<usize>,
    /// TLS 1.3's protected success indication: sent (server) or
    /// received (client).
    indication: bool,
    /// The server has sent its Start.
    started: bool,
    /// An error ended the conversation.
    failed: bool,
    /// The MSK, once the conversation is complete.
    msk: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for EapTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EapTls")
            .field("role", &self.role)
            .field("identifier", &self.identifier)
            .field("processed", &self.processed)
            .field("version", &self.conn.protocol_version())
            .field("handshaking", &self.conn.is_handshaking())
            .field("indication", &self.indication)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl EapTls {
    /// The server's side.
    pub fn server(setup: &TlsSetup) -> Result<Self, EapTlsError> {
        let verifier = Arc::new(PkiVerifier::new(setup));
        let config = ServerConfig::builder_with_details(provider(), fixed_time(setup.now_unix))
            .with_protocol_versions(setup.versions.rustls())?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified_key(
                &setup.cred,
            )?)));
        let mut config = config;
        // RFC 9190 2.1.1: no resumption here, so no tickets to send.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        let conn = ServerConnection::new(Arc::new(config))?;
        Ok(Self::with(Role::Server, conn.into(), setup))
    }

    /// The client's side.
    pub fn client(setup: &TlsSetup) -> Result<Self, EapTlsError> {
        let verifier = Arc::new(PkiVerifier::new(setup));
        let mut config = ClientConfig::builder_with_details(provider(), fixed_time(setup.now_unix))
            .with_protocol_versions(setup.versions.rustls())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified_key(
                &setup.cred,
            )?)));
        // The server is known by its certificate, not a host name: no SNI.
        config.enable_sni = false;
        config.resumption = rustls::client::Resumption::disabled();
        let name = ServerName::try_from("eap-tls.invalid")
            .map_err(|e| EapTlsError::Setup(e.to_string()))?;
        let conn = ClientConnection::new(Arc::new(config), name)?;
        Ok(Self::with(Role::Client, conn.into(), setup))
    }

    fn with(role: Role, conn: Connection, setup: &TlsSetup) -> Self {
        Self {
            role,
            conn,
            identifier: 0,
            fragment_size: setup
                .fragment_size
                .clamp(MIN_FRAGMENT_SIZE, MAX_FRAGMENT_SIZE),
            max_message_count: setup.max_message_count,
            processed: 0,
            out: Vec::new(),
            out_sent: 0,
            inbuf: Vec::new(),
            in_expected: None,
            indication: false,
            started: false,
            failed: false,
            msk: None,
        }
    }

    /// The identifier of the last packet sent (server) or answered
    /// (client).
    pub fn identifier(&self) -> u8 {
        self.identifier
    }

    /// The server's first request: EAP-TLS Start, numbered `identifier`
    /// (the next requests count on from it).
    pub fn start(&mut self, identifier: u8) -> Result<Eap, EapTlsError> {
        if self.role != Role::Server || self.started || self.failed {
            return Err(EapTlsError::Unexpected("start"));
        }
        self.started = true;
        self.identifier = identifier;
        Ok(packet(CODE_REQUEST, self.identifier, FLAG_START, &[]))
    }

    /// Processes the peer's EAP-TLS packet: the server gets responses,
    /// the client requests.
    pub fn process(&mut self, eap: &Eap) -> Result<Next, EapTlsError> {
        if self.failed {
            return Err(EapTlsError::Unexpected("the conversation has failed"));
        }
        let r = self.process_inner(eap);
        match &r {
            Err(_) => self.failed = true,
            Ok(_) if self.msk.is_none() && self.done() => match self.derive_msk() {
                Ok(msk) => self.msk = Some(msk),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            },
            Ok(_) => {}
        }
        r
    }

    fn process_inner(&mut self, eap: &Eap) -> Result<Next, EapTlsError> {
        self.processed = self.processed.saturating_add(1);
        if self.processed > self.max_message_count {
            return Err(EapTlsError::TooManyMessages(self.max_message_count));
        }
        let p = Parsed::parse(eap)?;
        match self.role {
            Role::Server => {
                if p.code != CODE_RESPONSE {
                    return Err(EapTlsError::Unexpected("not a response"));
                }
                if !self.started {
                    return Err(EapTlsError::Unexpected("response before Start"));
                }
                if p.identifier != self.identifier {
                    return Err(EapTlsError::Unexpected("identifier of another request"));
                }
            }
            Role::Client => {
                if p.code != CODE_REQUEST {
                    return Err(EapTlsError::Unexpected("not a request"));
                }
                self.identifier = p.identifier;
                if p.flags & FLAG_START != 0 {
                    if self.processed != 1 {
                        return Err(EapTlsError::Unexpected("Start in the middle"));
                    }
                    // The ClientHello, queued when the connection was made.
                    self.take_tls_output()?;
                    return self.next_fragment();
                }
            }
        }
        if p.flags & FLAG_START != 0 {
            return Err(EapTlsError::Unexpected("Start from the client"));
        }
        if p.is_ack() {
            return self.on_ack();
        }
        if self.out_sent < self.out.len() {
            return Err(EapTlsError::Unexpected(
                "data while our fragments are pending",
            ));
        }
        self.reassemble(&p)?;
        if p.flags & FLAG_MORE != 0 {
            return Ok(Next::Send(self.ack()));
        }
        let flight = std::mem::take(&mut self.inbuf);
        self.in_expected = None;
        self.feed(&flight)?;
        self.take_tls_output()?;
        if self.role == Role::Server && !self.conn.is_handshaking() && !self.indication {
            if self.conn.protocol_version() == Some(ProtocolVersion::TLSv1_3) {
                // RFC 9190 2.5: the protected success indication.
                std::io::Write::write_all(&mut self.conn.writer(), &[0])
                    .map_err(|e| EapTlsError::Tls(e.to_string()))?;
                self.take_tls_output()?;
            }
            self.indication = true;
        }
        if self.out.is_empty() {
            return match self.role {
                Role::Server => {
                    if self.done() {
                        Ok(Next::Success)
                    } else {
                        Err(EapTlsError::Unexpected("a flight that asks for nothing"))
                    }
                }
                Role::Client => Ok(Next::Send(self.ack())),
            };
        }
        self.next_fragment()
    }

    /// An empty packet: the peer acknowledges our fragment, or (server)
    /// the client acknowledges the last flight.
    fn on_ack(&mut self) -> Result<Next, EapTlsError> {
        if self.out_sent < self.out.len() {
            return self.next_fragment();
        }
        if self.role == Role::Server && self.done() {
            return Ok(Next::Success);
        }
        Err(EapTlsError::Unexpected(
            "acknowledgement with nothing to send",
        ))
    }

    /// The handshake is complete and, for TLS 1.3, the indication went
    /// out (server) or came in (client).
    fn done(&self) -> bool {
        !self.conn.is_handshaking()
            && match self.conn.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => self.indication,
                Some(_) => true,
                None => false,
            }
    }

    fn reassemble(&mut self, p: &Parsed<'_>) -> Result<(), EapTlsError> {
        if let Some(total) = p.total {
            match self.in_expected {
                None if self.inbuf.is_empty() => {
                    if total < p.data.len() || total > MAX_MESSAGE_LEN {
                        return Err(EapTlsError::Malformed("TLS message length"));
                    }
                    self.in_expected = Some(total);
                }
                // charon repeats nothing, but RFC 5216 allows the length
                // on later fragments too: it must not change.
                Some(t) if t == total => {}
                _ => return Err(EapTlsError::Malformed("TLS message length changed")),
            }
        }
        let len = self
            .inbuf
            .len()
            .checked_add(p.data.len())
            .ok_or(EapTlsError::Malformed("TLS message too long"))?;
        if len > self.in_expected.unwrap_or(MAX_MESSAGE_LEN) {
            return Err(EapTlsError::Malformed("more data than announced"));
        }
        self.inbuf.extend_from_slice(p.data);
        if p.flags & FLAG_MORE == 0 {
            if let Some(t) = self.in_expected
                && t != len
            {
                return Err(EapTlsError::Malformed("less data than announced"));
            }
        } else if p.data.is_empty() {
            return Err(EapTlsError::Malformed("empty fragment with more to come"));
        }
        Ok(())
    }

    /// Hands a complete flight to TLS, and the client takes the
    /// indication from it.
    fn feed(&mut self, mut flight: &[u8]) -> Result<(), EapTlsError> {
        while !flight.is_empty() {
            let n = self
                .conn
                .read_tls(&mut flight)
                .map_err(|e| EapTlsError::Tls(e.to_string()))?;
            if n == 0 {
                return Err(EapTlsError::Tls("TLS would not take the data".into()));
            }
            let state = match self.conn.process_new_packets() {
                Ok(s) => s,
                Err(e) => {
                    // The client tells the server with an alert; the
                    // server ends with EAP-Failure either way.
                    return Err(e.into());
                }
            };
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let mut data = vec![0u8; n];
                std::io::Read::read_exact(&mut self.conn.reader(), &mut data)
                    .map_err(|e| EapTlsError::Tls(e.to_string()))?;
                if self.role == Role::Server
                    || self.indication
                    || self.conn.protocol_version() != Some(ProtocolVersion::TLSv1_3)
                    || data != [0]
                {
                    return Err(EapTlsError::Unexpected("application data over EAP-TLS"));
                }
                self.indication = true;
            }
        }
        Ok(())
    }

    /// Moves what TLS wants to send into our flight.
    fn take_tls_output(&mut self) -> Result<(), EapTlsError> {
        self.out.clear();
        self.out_sent = 0;
        while self.conn.wants_write() {
            let n = self
                .conn
                .write_tls(&mut self.out)
                .map_err(|e| EapTlsError::Tls(e.to_string()))?;
            if n == 0 {
                break;
            }
        }
        if self.out.len() > MAX_MESSAGE_LEN {
            return Err(EapTlsError::Tls("our flight is too long".into()));
        }
        Ok(())
    }

    /// The next fragment of our flight.
    fn next_fragment(&mut self) -> Result<Next, EapTlsError> {
        let first = self.out_sent == 0;
        let rest = self
            .out
            .get(self.out_sent..)
            .ok_or(EapTlsError::Unexpected("no flight"))?;
        let room = if first {
            self.fragment_size.saturating_sub(HEADER_LEN + LENGTH_FIELD)
        } else {
            self.fragment_size.saturating_sub(HEADER_LEN)
        };
        let take = rest.len().min(room);
        let chunk = rest
            .get(..take)
            .ok_or(EapTlsError::Unexpected("no flight"))?;
        let more = take < rest.len();
        let mut flags = if more { FLAG_MORE } else { 0 };
        let mut data = Vec::with_capacity(take.saturating_add(LENGTH_FIELD));
        if first {
            // charon's include_length: L on a whole flight too.
            flags |= FLAG_LENGTH;
            let total = u32::try_from(self.out.len())
                .map_err(|_| EapTlsError::Tls("our flight is too long".into()))?;
            data.extend_from_slice(&total.to_be_bytes());
        }
        data.extend_from_slice(chunk);
        self.out_sent = self.out_sent.saturating_add(take);
        if !more {
            self.out.clear();
            self.out_sent = 0;
        }
        let code = self.our_code();
        let id = self.next_identifier();
        Ok(Next::Send(packet(code, id, flags, &data)))
    }

    /// An empty packet: acknowledges the peer's fragment, or (client)
    /// answers a flight that needs no TLS answer.
    fn ack(&mut self) -> Eap {
        let code = self.our_code();
        let id = self.next_identifier();
        packet(code, id, 0, &[])
    }

    fn our_code(&self) -> u8 {
        match self.role {
            Role::Server => CODE_REQUEST,
            Role::Client => CODE_RESPONSE,
        }
    }

    /// The server's requests each take the next identifier; the client
    /// answers with the request's.
    fn next_identifier(&mut self) -> u8 {
        if self.role == Role::Server {
            self.identifier = self.identifier.wrapping_add(1);
        }
        self.identifier
    }

    /// The negotiated TLS version, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// Whether the conversation has ended well on our side (server: the
    /// last acknowledgement is in; client: the handshake and, for TLS
    /// 1.3, the indication are done), so [`Self::msk`] is there.
    pub fn is_complete(&self) -> bool {
        !self.failed && self.done()
    }

    /// The peer's end-entity certificate, once the handshake validated it.
    pub fn peer_certificate(&self) -> Option<Certificate> {
        if self.conn.is_handshaking() {
            return None;
        }
        let der = self.conn.peer_certificates()?.first()?;
        Certificate::from_der(der.as_ref()).ok()
    }

    /// The MSK (RFC 5216 2.3, RFC 9190 2.3), 64 octets, once the
    /// conversation is complete on our side.
    pub fn msk(&self) -> Option<&[u8]> {
        self.msk.as_ref().map(|m| m.as_slice())
    }

    fn derive_msk(&self) -> Result<Zeroizing<Vec<u8>>, EapTlsError> {
        if self.failed {
            return Err(EapTlsError::NoMsk("the conversation failed"));
        }
        if self.conn.is_handshaking() {
            return Err(EapTlsError::NoMsk("the handshake is not complete"));
        }
        let (label, context): (&[u8], Option<&[u8]>) = match self.conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => {
                if !self.indication {
                    return Err(EapTlsError::NoMsk("no protected success indication"));
                }
                (LABEL_TLS13, Some(&[EAP_TYPE_TLS]))
            }
            Some(_) => (LABEL_TLS12, None),
            None => return Err(EapTlsError::NoMsk("no TLS version")),
        };
        // 128 octets (MSK and EMSK) as both RFCs export them: with TLS 1.3
        // the length is part of the derivation.
        let km = self
            .conn
            .export_keying_material(Zeroizing::new([0u8; 128]), label, context)?;
        let msk = km.get(..64).ok_or(EapTlsError::NoMsk("short export"))?;
        Ok(Zeroizing::new(msk.to_vec()))
    }
}

/// The engine drives EAP-TLS as any method (`eap::Method`); a failure
/// ends it with its reason as the one info line.
impl Method for EapTls {
    fn eap_type(&self) -> EapType {
        EapType::TLS
    }

    fn initiate(&mut self, identifier: u8) -> Step {
        match self.start(identifier) {
            Ok(m) => Step::Send(m),
            Err(e) => Step::Failure(format!("EAP-TLS: {e}")),
        }
    }

    fn process(&mut self, msg: &Eap) -> Step {
        match EapTls::process(self, msg) {
            Ok(Next::Send(m)) => Step::Send(m),
            Ok(Next::Success) => Step::Success,
            Err(e) => Step::Failure(format!("EAP-TLS: {e}")),
        }
    }

    fn makes_msk(&self) -> bool {
        true
    }

    fn msk(&self) -> Option<&[u8]> {
        EapTls::msk(self)
    }

    /// The server proves itself with its certificate in the handshake.
    fn mutual(&self) -> bool {
        true
    }
}

/// An EAP-TLS packet's fields.
struct Parsed<'a> {
    code: u8,
    identifier: u8,
    flags: u8,
    total: Option<usize>,
    data: &'a [u8],
}

impl<'a> Parsed<'a> {
    fn parse(eap: &'a Eap) -> Result<Self, EapTlsError> {
        let (&typ, rest) = eap
            .data
            .split_first()
            .ok_or(EapTlsError::Malformed("no type"))?;
        if typ != EAP_TYPE_TLS {
            return Err(EapTlsError::Unexpected("not EAP-TLS"));
        }
        let (&flags, mut data) = rest
            .split_first()
            .ok_or(EapTlsError::Malformed("no flags"))?;
        let mut total = None;
        if flags & FLAG_LENGTH != 0 {
            let (len, rest) = data
                .split_first_chunk::<LENGTH_FIELD>()
                .ok_or(EapTlsError::Malformed("no TLS message length"))?;
            total = Some(
                usize::try_from(u32::from_be_bytes(*len))
                    .map_err(|_| EapTlsError::Malformed("TLS message length"))?,
            );
            data = rest;
        }
        Ok(Self {
            code: eap.code,
            identifier: eap.identifier,
            flags,
            total,
            data,
        })
    }

    /// Nothing but the header: an acknowledgement.
    fn is_ack(&self) -> bool {
        self.data.is_empty() && self.total.is_none() && self.flags & FLAG_MORE == 0
    }
}

/// An EAP-TLS packet.
fn packet(code: u8, identifier: u8, flags: u8, tls: &[u8]) -> Eap {
    let mut data = Vec::with_capacity(tls.len().saturating_add(2));
    data.extend_from_slice(&[EAP_TYPE_TLS, flags]);
    data.extend_from_slice(tls);
    Eap {
        code,
        identifier,
        data,
    }
}

/// rustls' ring provider, made once.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            // Deprecated since rustls 0.23.48 for lacking post-quantum key
            // exchange, which EAP-TLS peers (charon 5.9) do not offer; the
            // aws-lc-rs provider that has it needs cmake and builds slowly
            // here (docs/decisions.md).
            #[allow(deprecated)]
            let p = rustls::crypto::ring::default_provider();
            Arc::new(p)
        })
        .clone()
}

/// The engine's UTC as rustls' clock: the library reads no clock.
#[derive(Debug)]
struct FixedTime(UnixTime);

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

fn fixed_time(now_unix: i64) -> Arc<dyn TimeProvider> {
    let secs = u64::try_from(now_unix).unwrap_or(0);
    Arc::new(FixedTime(UnixTime::since_unix_epoch(
        std::time::Duration::from_secs(secs),
    )))
}

/// Our certificate chain with our key as rustls' signer.
fn certified_key(cred: &Arc<LocalCred>) -> Result<CertifiedKey, EapTlsError> {
    if cred.certs.is_empty() {
        return Err(EapTlsError::Setup("EAP-TLS needs a certificate".into()));
    }
    let chain = cred
        .certs
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    Ok(CertifiedKey::new(
        chain,
        Arc::new(PkiSigningKey(cred.clone())),
    ))
}

/// TLS signature schemes and the project's, both ways.
fn to_pki(s: SignatureScheme) -> Option<SigScheme> {
    Some(match s {
        SignatureScheme::RSA_PKCS1_SHA256 => SigScheme::RsaPkcs1(HashAlg::Sha256),
        SignatureScheme::RSA_PKCS1_SHA384 => SigScheme::RsaPkcs1(HashAlg::Sha384),
        SignatureScheme::RSA_PKCS1_SHA512 => SigScheme::RsaPkcs1(HashAlg::Sha512),
        SignatureScheme::RSA_PSS_SHA256 => SigScheme::RsaPss(HashAlg::Sha256),
        SignatureScheme::RSA_PSS_SHA384 => SigScheme::RsaPss(HashAlg::Sha384),
        SignatureScheme::RSA_PSS_SHA512 => SigScheme::RsaPss(HashAlg::Sha512),
        SignatureScheme::ECDSA_NISTP256_SHA256 => SigScheme::Ecdsa(HashAlg::Sha256),
        SignatureScheme::ECDSA_NISTP384_SHA384 => SigScheme::Ecdsa(HashAlg::Sha384),
        SignatureScheme::ECDSA_NISTP521_SHA512 => SigScheme::Ecdsa(HashAlg::Sha512),
        SignatureScheme::ED25519 => SigScheme::Ed25519,
        _ => return None,
    })
}

/// The schemes we verify and sign with, preferred first (SHA-1 not).
const SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

/// TLS 1.3 binds ECDSA schemes to a curve (RFC 8446 4.2.3); TLS 1.2
/// does not.
fn curve_fits(s: SignatureScheme, key: KeyType) -> bool {
    match s {
        SignatureScheme::ECDSA_NISTP256_SHA256 => key == KeyType::EcP256,
        SignatureScheme::ECDSA_NISTP384_SHA384 => key == KeyType::EcP384,
        SignatureScheme::ECDSA_NISTP521_SHA512 => key == KeyType::EcP521,
        _ => true,
    }
}

/// Our private key as rustls' signing key.
struct PkiSigningKey(Arc<LocalCred>);

impl fmt::Debug for PkiSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PkiSigningKey({:?})", self.0.key.key_type())
    }
}

impl SigningKey for PkiSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        let key = self.0.key.key_type();
        // Each key signs with one curve-bound scheme, so the same choice
        // is right for TLS 1.2 and 1.3.
        let scheme = SCHEMES.iter().copied().find(|s| {
            offered.contains(s) && curve_fits(*s, key) && to_pki(*s).is_some_and(|p| p.fits(key))
        })?;
        let pki = to_pki(scheme)?;
        Some(Box::new(PkiSigner {
            cred: self.0.clone(),
            scheme,
            pki,
        }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(
            self.0.key.public_key().spki_der(),
        ))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.0.key.key_type() {
            KeyType::Rsa => SignatureAlgorithm::RSA,
            KeyType::Ed25519 => SignatureAlgorithm::ED25519,
            KeyType::EcP256 | KeyType::EcP384 | KeyType::EcP521 => SignatureAlgorithm::ECDSA,
        }
    }
}

struct PkiSigner {
    cred: Arc<LocalCred>,
    scheme: SignatureScheme,
    pki: SigScheme,
}

impl fmt::Debug for PkiSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PkiSigner({:?})", self.scheme)
    }
}

impl rustls::sign::Signer for PkiSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.cred
            .key
            .sign(self.pki, message)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// The peer's certificate checked by [`chain::validate`], and its
/// handshake signature by [`PublicKey::verify`]; used for both roles.
struct PkiVerifier {
    trust: Arc<TrustStore>,
    pinned_cas: Vec<Arc<Certificate>>,
    revocation: Revocation,
    peer_id: Option<Identification>,
    /// The CAs' subjects, for the server's CertificateRequest.
    hints: Vec<DistinguishedName>,
}

impl fmt::Debug for PkiVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkiVerifier")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl PkiVerifier {
    fn new(setup: &TlsSetup) -> Self {
        let cas = if setup.pinned_cas.is_empty() {
            setup.trust.anchors()
        } else {
            setup.pinned_cas.as_slice()
        };
        let hints = cas
            .iter()
            .filter(|c| c.subject().id_type == IdType::DER_ASN1_DN)
            .map(|c| DistinguishedName::from(c.subject().data.clone()))
            .collect();
        Self {
            trust: setup.trust.clone(),
            pinned_cas: setup.pinned_cas.clone(),
            revocation: setup.revocation,
            peer_id: setup.peer_id.clone(),
            hints,
        }
    }

    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let bad = |e: String| rustls::Error::General(e);
        let end = Certificate::from_der(end_entity.as_ref()).map_err(|e| bad(e.to_string()))?;
        let untrusted = intermediates
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let now_unix = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let mut params = ValidateParams::new(now_unix, &self.pinned_cas, self.revocation);
        // A handshake in flight cannot wait for a CRL fetch: what the
        // store does not have counts as unavailable.
        params.crls_fetched = true;
        match chain::validate(&self.trust, &end, &untrusted, &params) {
            Ok(Validation::Trusted { .. }) => {}
            Ok(Validation::NeedCrls { .. }) => {
                return Err(bad("revocation status unavailable".into()));
            }
            Err(e) => return Err(bad(e.to_string())),
        }
        if let Some(id) = &self.peer_id
            && !end.matches_id(id)
        {
            return Err(bad(format!(
                "certificate '{}' does not match the peer's identity",
                end.subject_text()
            )));
        }
        Ok(())
    }

    fn verify_sig(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        let end = Certificate::from_der(cert.as_ref())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let key: &PublicKey = end.public_key();
        let scheme = dss.scheme;
        let pki = to_pki(scheme).ok_or(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ))?;
        if tls13 && (matches!(pki, SigScheme::RsaPkcs1(_)) || !curve_fits(scheme, key.key_type())) {
            return Err(bad);
        }
        key.verify(pki, message, dss.signature())
            .map_err(|_| bad)
            .map(|()| HandshakeSignatureValid::assertion())
    }
}

impl ServerCertVerifier for PkiVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, now)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_sig(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_sig(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

impl ClientCertVerifier for PkiVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, now)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_sig(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_sig(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

#[cfg(test)]
mod tests;
