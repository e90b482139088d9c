//! The RADIUS client's sockets: one task drives the sans-IO
//! [`ike::radius::Client`] (signing, retransmission, failover) with one
//! connected UDP socket per server and port, opened on first use.
//!
//! Requests come in over a channel with their own answer channel, so the
//! engine's outside operation (EAP-RADIUS) and accounting share the one
//! client, its identifiers and its idea of which server is reachable.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use ike::crypto::CryptoProvider;
use ike::crypto::DefaultProvider;
use ike::radius::{
    AcctStatus, Answer, Client, Failure, Port, Request, Server, Session, Settings, Usage,
    accounting_request,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// An answer channel.
type Reply = oneshot::Sender<Result<Answer, Failure>>;

/// The handle the daemon keeps; dropping every handle ends the task.
#[derive(Clone, Debug)]
pub struct Radius {
    tx: mpsc::UnboundedSender<(Request, Reply)>,
}

impl Radius {
    /// Starts the task for `servers` (the caller is inside a tokio
    /// runtime).
    pub fn spawn(servers: Vec<Server>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(servers, rx));
        Self { tx }
    }

    /// Sends `req` and waits for its verified answer (or why none came).
    pub async fn request(&self, req: Request) -> Result<Answer, Failure> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send((req, tx)).is_err() {
            return Err(Failure::Build("RADIUS client stopped".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(Failure::Build("RADIUS client stopped".into())))
    }
}

async fn run(servers: Vec<Server>, mut rx: mpsc::UnboundedReceiver<(Request, Reply)>) {
    let mut client = Client::new(servers);
    let rng = DefaultProvider::new();
    let mut sockets: HashMap<(usize, Port), Arc<UdpSocket>> = HashMap::new();
    let (in_tx, mut in_rx) = mpsc::unbounded_channel::<(usize, Port, Vec<u8>)>();
    let mut waiting: HashMap<u64, Reply> = HashMap::new();
    let mut next_token: u64 = 0;
    loop {
        let deadline = client.next_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = rx.recv() => {
                let Some((req, reply)) = r else { return };
                next_token = next_token.wrapping_add(1);
                let mut auth = [0u8; 16];
                if rng.fill_random(&mut auth).is_err() {
                    let _ = reply.send(Err(Failure::Build("no randomness".into())));
                    continue;
                }
                waiting.insert(next_token, reply);
                client.request(Instant::now(), next_token, req, auth);
            }
            Some((server, port, data)) = in_rx.recv() => {
                client.handle_datagram(server, port, &data);
            }
            () = sleep => client.handle_timeout(Instant::now()),
        }
        while let Some(t) = client.poll_transmit() {
            let sock = match sockets.get(&(t.server, t.port)) {
                Some(s) => s.clone(),
                None => match open(t.to).await {
                    Ok(s) => {
                        let s = Arc::new(s);
                        sockets.insert((t.server, t.port), s.clone());
                        tokio::spawn(read(s.clone(), t.server, t.port, in_tx.clone()));
                        s
                    }
                    Err(e) => {
                        warn!("RADIUS socket to {} failed: {e}", t.to);
                        continue;
                    }
                },
            };
            if let Err(e) = sock.send(&t.data).await {
                // Like a lost datagram: the retransmission timer goes on.
                debug!("sending RADIUS message to {} failed: {e}", t.to);
            }
        }
        while let Some(line) = client.poll_log() {
            debug!("{line}");
        }
        while let Some((token, answer)) = client.poll_answer() {
            if let Err(f) = &answer {
                info!("{f}");
            }
            if let Some(reply) = waiting.remove(&token) {
                // The asker may be gone (its IKE SA was deleted).
                let _ = reply.send(answer);
            }
        }
        // Requests whose asker went away stop retransmitting.
        let gone: Vec<u64> = waiting
            .iter()
            .filter(|(_, r)| r.is_closed())
            .map(|(&t, _)| t)
            .collect();
        for t in gone {
            waiting.remove(&t);
            client.cancel(t);
        }
    }
}

async fn open(to: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = if to.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let s = UdpSocket::bind(any).await?;
    s.connect(to).await?;
    Ok(s)
}

async fn read(
    sock: Arc<UdpSocket>,
    server: usize,
    port: Port,
    tx: mpsc::UnboundedSender<(usize, Port, Vec<u8>)>,
) {
    let mut buf = vec![0u8; ike::radius::packet::MAX_LEN];
    loop {
        match sock.recv(&mut buf).await {
            Ok(n) => {
                let data = buf.get(..n).unwrap_or_default().to_vec();
                if tx.send((server, port, data)).is_err() {
                    return;
                }
            }
            // ICMP port unreachable on a connected socket: the server is
            // not there; the retransmission timer decides.
            Err(e) => {
                debug!("RADIUS socket: {e}");
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// RADIUS accounting (RFC 2866) of IKE SAs, as charon's
/// `eap_radius_accounting` with `accounting = yes`: Start when an IKE SA
/// is established, Stop when it goes, with the peer's identity, the
/// session time and the same Acct-Session-Id; an IKE rekey continues the
/// session under the new IKE SA. Requests go out on their own tasks (a
/// server that does not answer delays nothing); a failure is one info
/// line.
#[derive(Debug)]
pub struct Accounting {
    radius: Radius,
    settings: Settings,
    /// The daemon's start in seconds since the epoch (charon's session id
    /// prefix, so ids differ across restarts).
    prefix: u32,
    sessions: HashMap<u64, Open>,
}

#[derive(Debug)]
struct Open {
    session: Session,
    user: Vec<u8>,
    vips: Vec<IpAddr>,
    since: Instant,
}

impl Accounting {
    pub fn new(radius: Radius, settings: Settings, prefix: u32) -> Self {
        Self {
            radius,
            settings,
            prefix,
            sessions: HashMap::new(),
        }
    }

    /// IKE SA `id` (connection `name`, between `local` and `remote`) was
    /// established for `user` with virtual IPs `vips`: Accounting-Start.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        now: Instant,
        id: u64,
        name: &str,
        local: SocketAddr,
        remote: SocketAddr,
        user: Vec<u8>,
        vips: Vec<IpAddr>,
    ) {
        let session = Session {
            name: name.to_owned(),
            // NAS-Port is 32 bits: the low bits of the IKE SA's number.
            unique: u32::try_from(id & 0xffff_ffff).unwrap_or(0),
            prefix: self.prefix,
            local,
            remote,
        };
        let p = accounting_request(
            &self.settings,
            &session,
            AcctStatus::Start,
            &user,
            &vips,
            None,
        );
        self.send(p, session.session_id());
        self.sessions.insert(
            id,
            Open {
                session,
                user,
                vips,
                since: now,
            },
        );
    }

    /// The session of IKE SA `old` goes on as `new` (an IKE rekey).
    pub fn moved(&mut self, old: u64, new: u64) {
        if let Some(o) = self.sessions.remove(&old) {
            self.sessions.insert(new, o);
        }
    }

    /// IKE SA `id` is gone: Accounting-Stop with `cause` (RFC 2866
    /// 5.10), if a Start was sent for it.
    pub fn stop(&mut self, now: Instant, id: u64, cause: u32) {
        let Some(o) = self.sessions.remove(&id) else {
            return;
        };
        let usage = Usage {
            seconds: u32::try_from(now.saturating_duration_since(o.since).as_secs())
                .unwrap_or(u32::MAX),
            cause,
            ..Usage::default()
        };
        let p = accounting_request(
            &self.settings,
            &o.session,
            AcctStatus::Stop,
            &o.user,
            &o.vips,
            Some(&usage),
        );
        self.send(p, o.session.session_id());
    }

    fn send(&self, packet: ike::radius::packet::Packet, sid: String) {
        let r = self.radius.clone();
        tokio::spawn(async move {
            let code = if packet.get_u32(ike::radius::packet::attr::ACCT_STATUS_TYPE) == Some(1) {
                "Start"
            } else {
                "Stop"
            };
            match r
                .request(Request {
                    packet,
                    server: None,
                })
                .await
            {
                Ok(_) => debug!("RADIUS accounting {code} of session {sid} acknowledged"),
                Err(e) => info!("RADIUS accounting {code} of session {sid} failed: {e}"),
            }
        });
    }
}

/// The RADIUS settings in force: strongswan.conf's `eap-radius` section
/// (`from_conf`, read when it names a server) over the configuration
/// file's `radius`, as strongswan.conf wins over `settings`.
pub fn settings(from_conf: Option<&Settings>, config: &ike::config::Config) -> Option<Settings> {
    from_conf.or(config.radius()).cloned()
}

/// The client of `settings`' servers (`None`: no server), and its
/// accounting when `accounting = yes`. Called inside the runtime.
pub fn start(settings: Option<&Settings>, prefix: u32) -> (Option<Radius>, Option<Accounting>) {
    let Some(s) = settings.filter(|s| !s.servers.is_empty()) else {
        return (None, None);
    };
    let r = Radius::spawn(s.servers.clone());
    (Some(r.clone()), accounting(s, r, prefix))
}

/// charon's Acct-Session-Id prefix: the daemon's start in seconds since
/// the epoch (ids differ across restarts).
pub fn session_prefix() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs() & 0xffff_ffff).unwrap_or(0))
}

fn accounting(s: &Settings, radius: Radius, prefix: u32) -> Option<Accounting> {
    if !s.accounting {
        return None;
    }
    info!(
        "RADIUS accounting to {}",
        s.servers
            .iter()
            .map(|v| format!("'{}' ({})", v.name, v.acct))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Some(Accounting::new(radius, s.clone(), prefix))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn strongswan_conf_wins_over_the_files_radius() {
        let config = ike::config::Config::from_yaml_str(
            "radius:\n  servers:\n    a:\n      address: 10.0.0.1\n      secret: s\n",
            "t.yaml",
        )
        .unwrap();
        let from_file = settings(None, &config).unwrap();
        assert_eq!(from_file.servers[0].name, "a");
        let mut conf = Settings {
            servers: config.radius().unwrap().servers.clone(),
            ..Settings::default()
        };
        conf.servers[0].name = "from strongswan.conf".into();
        let both = settings(Some(&conf), &config).unwrap();
        assert_eq!(both.servers[0].name, "from strongswan.conf");
        let none = ike::config::Config::from_yaml_str("connections: {}\n", "t.yaml").unwrap();
        assert!(settings(None, &none).is_none());
    }
}
