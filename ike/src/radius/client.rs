//! The RADIUS client as a sans-IO state machine: requests in, datagrams
//! and deadlines out, datagrams and time in, verified answers out.
//!
//! It does what strongSwan's `radius_socket`/`radius_client`/
//! `radius_config` do between them: per server an identifier counter per
//! port (authentication and accounting), signing, retransmission with
//! `retransmit_timeout * retransmit_base^n` for `retransmit_tries` sends,
//! and the choice of server by `preference` among those that answered
//! last time. Unlike charon, which fails the one EAP conversation whose
//! server timed out and lets the next pick another, a request that no
//! answer came for moves on to the next server at once, unless it is
//! bound to its server (a later round of an EAP conversation, whose
//! State only that server knows).
//!
//! The driver (the daemon) owns the sockets: one per server and port,
//! connected, so an answer is matched by the socket it came in on and
//! its identifier, then checked against the request's authenticator.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::packet::{AUTH_LEN, Code, Packet, attr};

/// One RADIUS server, as strongswan.conf's `eap-radius` section gives it.
#[derive(Clone)]
pub struct Server {
    /// The section name (`servers.<name>`), or the address for the
    /// top-level `server`.
    pub name: String,
    /// Where Access-Requests go.
    pub auth: SocketAddr,
    /// Where Accounting-Requests go.
    pub acct: SocketAddr,
    pub secret: Zeroizing<Vec<u8>>,
    /// NAS-Identifier sent with each request.
    pub nas_identifier: String,
    /// Sends of one request before it is given up (charon's default 4).
    pub retransmit_tries: u32,
    /// The first wait (default 2 s), multiplied by `retransmit_base`
    /// (default 1.4) for each retransmission.
    pub retransmit_timeout: Duration,
    pub retransmit_base: f64,
    /// Higher is tried first.
    pub preference: i32,
}

impl std::fmt::Debug for Server {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("auth", &self.auth)
            .field("acct", &self.acct)
            .field("preference", &self.preference)
            .finish_non_exhaustive()
    }
}

/// Which of a server's ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    Auth,
    Acct,
}

/// A datagram to send.
#[derive(Clone, Debug)]
pub struct Transmit {
    /// Index of the server in the client's list, and which of its ports:
    /// the driver's socket for the pair.
    pub server: usize,
    pub port: Port,
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// A verified answer.
pub struct Answer {
    /// The server that answered (a later round of the same EAP
    /// conversation goes there again, with [`Request::server`]).
    pub server: usize,
    pub packet: Packet,
    /// From an Access-Accept's MS-MPPE keys.
    pub msk: Option<Zeroizing<Vec<u8>>>,
    /// The Request Authenticator of the request it answers (what the
    /// MS-MPPE keys were encrypted with).
    pub request_auth: [u8; AUTH_LEN],
}

impl std::fmt::Debug for Answer {
    // The MSK stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("server", &self.server)
            .field("code", &self.packet.code)
            .field("msk", &self.msk.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// Why a request got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("no RADIUS server configured")]
    NoServer,
    #[error("RADIUS {code} to {servers} timed out")]
    TimedOut { code: &'static str, servers: String },
    #[error("RADIUS request could not be built: {0}")]
    Build(String),
}

/// A request to make.
#[derive(Clone, Debug)]
pub struct Request {
    /// Access-Request or Accounting-Request, with its attributes but for
    /// NAS-Identifier and Message-Authenticator, which are added per
    /// server.
    pub packet: Packet,
    /// Only to this server (a later round of an EAP conversation).
    pub server: Option<usize>,
}

#[derive(Debug)]
struct Pending {
    token: u64,
    packet: Packet,
    port: Port,
    /// Servers in the order they are tried; `at` is the current one.
    order: Vec<usize>,
    at: usize,
    identifier: u8,
    request_auth: [u8; AUTH_LEN],
    data: Vec<u8>,
    sent: u32,
    deadline: Instant,
}

#[derive(Debug)]
struct ServerState {
    cfg: Server,
    /// It answered the last request sent to it (or none was sent yet).
    reachable: bool,
    next_auth: u8,
    next_acct: u8,
}

/// The client: servers, requests under way, outputs not yet taken.
#[derive(Debug)]
pub struct Client {
    servers: Vec<ServerState>,
    pending: Vec<Pending>,
    transmits: VecDeque<Transmit>,
    answers: VecDeque<(u64, Result<Answer, Failure>)>,
    /// Debug lines for the driver to log.
    log: VecDeque<String>,
}

impl Client {
    pub fn new(servers: Vec<Server>) -> Self {
        Self {
            servers: servers
                .into_iter()
                .map(|cfg| ServerState {
                    cfg,
                    reachable: true,
                    next_auth: 0,
                    next_acct: 0,
                })
                .collect(),
            pending: Vec::new(),
            transmits: VecDeque::new(),
            answers: VecDeque::new(),
            log: VecDeque::new(),
        }
    }

    /// The servers, in configuration order.
    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.iter().map(|s| &s.cfg)
    }

    /// Starts request `token` (the caller's id, given back with the
    /// answer). `authenticator` is 16 random octets (an Access-Request's
    /// Request Authenticator; accounting computes its own).
    pub fn request(
        &mut self,
        now: Instant,
        token: u64,
        req: Request,
        authenticator: [u8; AUTH_LEN],
    ) {
        let order: Vec<usize> = match req.server {
            Some(s) if s < self.servers.len() => vec![s],
            Some(_) => Vec::new(),
            None => {
                let mut o: Vec<usize> = (0..self.servers.len()).collect();
                // Reachable first, then by preference (stable: the
                // configuration's order among equals).
                o.sort_by_key(|&i| {
                    self.servers
                        .get(i)
                        .map(|s| (!s.reachable, std::cmp::Reverse(s.cfg.preference)))
                });
                o
            }
        };
        if order.is_empty() {
            self.answers.push_back((token, Err(Failure::NoServer)));
            return;
        }
        let port = if req.packet.code == Code::ACCOUNTING_REQUEST {
            Port::Acct
        } else {
            Port::Auth
        };
        let mut p = Pending {
            token,
            packet: req.packet,
            port,
            order,
            at: 0,
            identifier: 0,
            request_auth: authenticator,
            data: Vec::new(),
            sent: 0,
            deadline: now,
        };
        match self.start(&mut p, now) {
            Ok(()) => self.pending.push(p),
            Err(f) => self.answers.push_back((token, Err(f))),
        }
    }

    /// Signs `p` for its current server and sends it the first time.
    fn start(&mut self, p: &mut Pending, now: Instant) -> Result<(), Failure> {
        let server = *p.order.get(p.at).ok_or(Failure::NoServer)?;
        let s = self.servers.get_mut(server).ok_or(Failure::NoServer)?;
        let id = match p.port {
            Port::Auth => &mut s.next_auth,
            Port::Acct => &mut s.next_acct,
        };
        p.identifier = *id;
        *id = id.wrapping_add(1);
        let mut packet = p.packet.clone();
        packet.attrs.retain(|a| a.kind != attr::NAS_IDENTIFIER);
        packet.add(attr::NAS_IDENTIFIER, s.cfg.nas_identifier.as_bytes());
        p.data = packet
            .sign_request(p.identifier, p.request_auth, &s.cfg.secret)
            .map_err(|e| Failure::Build(e.to_string()))?;
        p.request_auth = packet.authenticator;
        p.sent = 0;
        self.send(p, server, now);
        Ok(())
    }

    fn send(&mut self, p: &mut Pending, server: usize, now: Instant) {
        let Some(s) = self.servers.get(server) else {
            return;
        };
        let exp = i32::try_from(p.sent).unwrap_or(i32::MAX);
        let wait = s.cfg.retransmit_timeout.as_secs_f64() * s.cfg.retransmit_base.powi(exp);
        let wait = Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(3600));
        p.deadline = now.checked_add(wait).unwrap_or(now);
        p.sent = p.sent.saturating_add(1);
        if p.sent > 1 {
            self.log.push_back(format!(
                "retransmit {} of RADIUS {} to server '{}' (timeout: {:.1}s)",
                p.sent.saturating_sub(1),
                p.packet.code.name(),
                s.cfg.name,
                wait.as_secs_f64()
            ));
        }
        self.transmits.push_back(Transmit {
            server,
            port: p.port,
            to: match p.port {
                Port::Auth => s.cfg.auth,
                Port::Acct => s.cfg.acct,
            },
            data: p.data.clone(),
        });
    }

    /// A datagram came on the socket of `server`'s `port`. Anything that
    /// is not the verified answer to a request under way is dropped
    /// (logged through [`Client::poll_log`]).
    pub fn handle_datagram(&mut self, server: usize, port: Port, data: &[u8]) {
        let packet = match Packet::parse(data) {
            Ok(p) => p,
            Err(e) => {
                self.log
                    .push_back(format!("received invalid RADIUS message, ignored: {e}"));
                return;
            }
        };
        let Some(i) = self.pending.iter().position(|p| {
            p.port == port
                && p.order.get(p.at) == Some(&server)
                && p.identifier == packet.identifier
        }) else {
            self.log.push_back(format!(
                "received RADIUS {} with unexpected ID {}, ignored",
                packet.code.name(),
                packet.identifier
            ));
            return;
        };
        let Some(p) = self.pending.get(i) else {
            return;
        };
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        if !p.packet.code.answers(packet.code) {
            self.log.push_back(format!(
                "received RADIUS {} in answer to {}, ignored",
                packet.code.name(),
                p.packet.code.name()
            ));
            return;
        }
        if let Err(e) = packet.verify_response(data, &p.request_auth, &s.cfg.secret) {
            // A forged or corrupted answer: keep waiting for the real one
            // (charon gives the request up; waiting costs nothing).
            self.log
                .push_back(format!("{e} from server '{}', ignored", s.cfg.name));
            return;
        }
        s.reachable = true;
        let msk = if packet.code == Code::ACCESS_ACCEPT {
            packet.mppe_msk(&p.request_auth, &s.cfg.secret)
        } else {
            None
        };
        let p = self.pending.swap_remove(i);
        self.answers.push_back((
            p.token,
            Ok(Answer {
                server,
                packet,
                msk,
                request_auth: p.request_auth,
            }),
        ));
    }

    /// Retransmits, moves to the next server or gives up what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while let Some(p) = self.pending.get(i) {
            if p.deadline > now {
                i = i.saturating_add(1);
                continue;
            }
            let mut p = self.pending.swap_remove(i);
            let server = p.order.get(p.at).copied().unwrap_or(usize::MAX);
            let tries = self
                .servers
                .get(server)
                .map_or(0, |s| s.cfg.retransmit_tries);
            if p.sent < tries {
                self.send(&mut p, server, now);
                self.pending.push(p);
                continue;
            }
            if let Some(s) = self.servers.get_mut(server) {
                s.reachable = false;
                self.log.push_back(format!(
                    "RADIUS {} to server '{}' timed out after {} attempts",
                    p.packet.code.name(),
                    s.cfg.name,
                    p.sent
                ));
            }
            p.at = p.at.saturating_add(1);
            if p.at < p.order.len() {
                match self.start(&mut p, now) {
                    Ok(()) => self.pending.push(p),
                    Err(f) => self.answers.push_back((p.token, Err(f))),
                }
                continue;
            }
            let servers = p
                .order
                .iter()
                .filter_map(|&s| self.servers.get(s).map(|s| format!("'{}'", s.cfg.name)))
                .collect::<Vec<_>>()
                .join(", ");
            self.answers.push_back((
                p.token,
                Err(Failure::TimedOut {
                    code: p.packet.code.name(),
                    servers,
                }),
            ));
        }
    }

    /// Forgets request `token` (its IKE SA went away); a late answer is
    /// dropped.
    pub fn cancel(&mut self, token: u64) {
        self.pending.retain(|p| p.token != token);
    }

    /// When [`Client::handle_timeout`] is due next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.deadline).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_answer(&mut self) -> Option<(u64, Result<Answer, Failure>)> {
        self.answers.pop_front()
    }

    /// Debug log lines (retransmissions, dropped datagrams).
    pub fn poll_log(&mut self) -> Option<String> {
        self.log.pop_front()
    }

    /// Requests under way.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
// A test's base instant: the client only compares instants it is given,
// so any one will do (ike/clippy.toml forbids reading the clock).
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::super::packet::Attr;
    use super::*;

    fn server(name: &str, port: u16, preference: i32) -> Server {
        Server {
            name: name.into(),
            auth: SocketAddr::from(([127, 0, 0, 1], port)),
            acct: SocketAddr::from(([127, 0, 0, 1], port + 1)),
            secret: Zeroizing::new(b"secret".to_vec()),
            nas_identifier: "iked".into(),
            retransmit_tries: 3,
            retransmit_timeout: Duration::from_secs(2),
            retransmit_base: 1.5,
            preference,
        }
    }

    fn access(user: &[u8]) -> Request {
        let mut p = Packet::new(Code::ACCESS_REQUEST);
        p.add(attr::USER_NAME, user);
        p.add(attr::EAP_MESSAGE, &[2, 1, 0, 5, 1]);
        Request {
            packet: p,
            server: None,
        }
    }

    /// How a server answers `req` (the authenticators of RFC 2865 3 and
    /// RFC 3579 3.2).
    fn answer(req: &[u8], code: Code, attrs: Vec<Attr>, secret: &[u8]) -> Vec<u8> {
        let q = Packet::parse(req).unwrap();
        let mut p = Packet {
            code,
            identifier: q.identifier,
            authenticator: q.authenticator,
            attrs,
        };
        p.attrs.push(Attr {
            kind: attr::MESSAGE_AUTHENTICATOR,
            value: vec![0; 16],
        });
        let bytes = p.emit().unwrap();
        use hmac::Mac;
        let mut m = hmac::Hmac::<md5::Md5>::new_from_slice(secret).unwrap();
        m.update(&bytes);
        p.attrs.last_mut().unwrap().value = m.finalize().into_bytes().to_vec();
        let bytes = p.emit().unwrap();
        use md5::Digest;
        let mut h = md5::Md5::new();
        h.update(&bytes);
        h.update(secret);
        p.authenticator = h.finalize().into();
        p.emit().unwrap()
    }

    #[test]
    fn retransmits_with_growing_waits_then_fails_over() {
        let t0 = Instant::now();
        let mut c = Client::new(vec![server("a", 1812, 0), server("b", 2812, 5)]);
        c.request(t0, 1, access(b"carol"), [1; 16]);
        // b has the higher preference.
        let first = c.poll_transmit().unwrap();
        assert_eq!((first.server, first.port), (1, Port::Auth));
        let q = Packet::parse(&first.data).unwrap();
        assert_eq!(q.get(attr::NAS_IDENTIFIER), Some(&b"iked"[..]));
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(2)));
        c.handle_timeout(t0 + Duration::from_secs(1));
        assert!(c.poll_transmit().is_none());
        let t1 = t0 + Duration::from_secs(2);
        c.handle_timeout(t1);
        let again = c.poll_transmit().unwrap();
        assert_eq!(
            again.data, first.data,
            "a retransmission is the same datagram"
        );
        assert_eq!(c.next_deadline(), Some(t1 + Duration::from_secs(3)));
        let t2 = t1 + Duration::from_secs(3);
        c.handle_timeout(t2);
        c.poll_transmit().unwrap();
        // Third send was the last: the next deadline moves to server a.
        c.handle_timeout(t2 + Duration::from_millis(4500));
        let to_a = c.poll_transmit().unwrap();
        assert_eq!(to_a.server, 0);
        let reply = answer(&to_a.data, Code::ACCESS_CHALLENGE, vec![], b"secret");
        // An answer on the wrong server's socket is not taken.
        c.handle_datagram(1, Port::Auth, &reply);
        assert!(c.poll_answer().is_none());
        c.handle_datagram(0, Port::Auth, &reply);
        let (token, a) = c.poll_answer().unwrap();
        assert_eq!(token, 1);
        let a = a.unwrap();
        assert_eq!((a.server, a.packet.code), (0, Code::ACCESS_CHALLENGE));
        assert_eq!(c.pending(), 0);
        // b did not answer: the next request goes to a first.
        c.request(t2, 2, access(b"dave"), [2; 16]);
        assert_eq!(c.poll_transmit().unwrap().server, 0);
    }

    #[test]
    fn a_bound_request_does_not_fail_over() {
        let t0 = Instant::now();
        let mut c = Client::new(vec![server("a", 1812, 0), server("b", 2812, 0)]);
        let mut r = access(b"carol");
        r.server = Some(1);
        c.request(t0, 7, r, [1; 16]);
        let mut sends = 0;
        while let Some(t) = c.poll_transmit() {
            assert_eq!(t.server, 1);
            sends += 1;
            c.handle_timeout(c.next_deadline().unwrap());
        }
        assert_eq!(sends, 3);
        let (token, r) = c.poll_answer().unwrap();
        assert_eq!(token, 7);
        assert_eq!(
            r.unwrap_err(),
            Failure::TimedOut {
                code: "Access-Request",
                servers: "'b'".into()
            }
        );
        assert!(c.next_deadline().is_none());
    }

    #[test]
    fn forged_and_stray_answers_are_dropped() {
        let t0 = Instant::now();
        let mut c = Client::new(vec![server("a", 1812, 0)]);
        c.request(t0, 1, access(b"carol"), [1; 16]);
        let t = c.poll_transmit().unwrap();
        let forged = answer(&t.data, Code::ACCESS_ACCEPT, vec![], b"guess");
        c.handle_datagram(0, Port::Auth, &forged);
        c.handle_datagram(0, Port::Auth, b"junk");
        // An Accounting-Response is no answer to an Access-Request.
        let wrong = answer(&t.data, Code::ACCOUNTING_RESPONSE, vec![], b"secret");
        c.handle_datagram(0, Port::Auth, &wrong);
        assert!(c.poll_answer().is_none());
        assert_eq!(c.pending(), 1);
        let good = answer(&t.data, Code::ACCESS_REJECT, vec![], b"secret");
        c.handle_datagram(0, Port::Auth, &good);
        assert_eq!(
            c.poll_answer().unwrap().1.unwrap().packet.code,
            Code::ACCESS_REJECT
        );
        // A duplicate of the answer after it was taken is dropped.
        c.handle_datagram(0, Port::Auth, &good);
        assert!(c.poll_answer().is_none());
    }

    #[test]
    fn identifiers_count_per_server_and_port() {
        let t0 = Instant::now();
        let mut c = Client::new(vec![server("a", 1812, 0)]);
        let acct = || {
            let mut p = Packet::new(Code::ACCOUNTING_REQUEST);
            p.add_u32(attr::ACCT_STATUS_TYPE, 1);
            Request {
                packet: p,
                server: None,
            }
        };
        c.request(t0, 1, access(b"x"), [1; 16]);
        c.request(t0, 2, access(b"y"), [1; 16]);
        c.request(t0, 3, acct(), [0; 16]);
        let ids: Vec<(Port, u8)> = std::iter::from_fn(|| c.poll_transmit())
            .map(|t| (t.port, Packet::parse(&t.data).unwrap().identifier))
            .collect();
        assert_eq!(ids, vec![(Port::Auth, 0), (Port::Auth, 1), (Port::Acct, 0)]);
        c.cancel(2);
        assert_eq!(c.pending(), 2);
    }

    #[test]
    fn no_server_is_an_answer_at_once() {
        let mut c = Client::new(vec![]);
        c.request(Instant::now(), 4, access(b"x"), [0; 16]);
        assert_eq!(c.poll_answer().unwrap().1.unwrap_err(), Failure::NoServer);
    }
}
