//! Redirects (RFC 5685) among three endpoints: a client, gateway A that
//! redirects it, gateway B where it lands. In IKE_SA_INIT, in IKE_AUTH,
//! of an established IKE SA on command, to a gateway named by FQDN, with
//! loss, and a loop between A and B that the client stops.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::harness::*;
use crate::crypto::DeterministicProvider;
use crate::sa::*;
use crate::wire::codes::{ExchangeType, NotifyType};
use crate::wire::{Header, Identification, Message, Payload};

const CLIENT: &str = "192.0.2.1";
const GW_A: &str = "198.51.100.1";
const GW_B: &str = "198.51.100.2";

/// One endpoint on the simulated network.
struct Node {
    ep: Endpoint,
    addr: IpAddr,
    kernel: FakeKernel,
    events: Vec<Event>,
    sent: Vec<Transmit>,
}

/// Three endpoints (or more) routed by address; `lose` decides which
/// datagrams are lost (by sender and its datagram count).
struct Net {
    nodes: Vec<Node>,
    now: Instant,
    flight: Vec<(Instant, u64, usize, Transmit)>,
    seq: u64,
    lose: Box<dyn FnMut(usize, usize) -> bool>,
    /// What the client's daemon resolves names to.
    dns: HashMap<String, Vec<IpAddr>>,
    resolved: Vec<String>,
}

fn client_cfg() -> PeerCfg {
    PeerCfg {
        remote_id: Some(Identification::fqdn("gw.example")),
        ..site(
            "gw",
            CLIENT,
            GW_A,
            subnet("10.1.0.0", "10.1.255.255"),
            subnet("10.2.0.0", "10.2.255.255"),
        )
    }
}

fn gateway_cfg(me: &str, redirect: Option<RedirectCfg>) -> PeerCfg {
    PeerCfg {
        local_id: Identification::fqdn("gw.example"),
        remote_id: None,
        remote_addrs: vec![AddrSpec::Any],
        redirect,
        ..site(
            "rw",
            me,
            CLIENT,
            subnet("10.2.0.0", "10.2.255.255"),
            subnet("10.1.0.0", "10.1.255.255"),
        )
    }
}

fn to(when: RedirectWhen, gw: &str) -> Option<RedirectCfg> {
    Some(RedirectCfg {
        to: Gateway::parse(gw).unwrap(),
        when,
    })
}

impl Net {
    /// Client, gateway A (with `a`'s redirect), gateway B (with `b`'s).
    // The simulated clock starts at a real instant (as the harness's).
    #[allow(clippy::disallowed_methods)]
    fn new(client: EndpointConfig, a: Option<RedirectCfg>, b: Option<RedirectCfg>) -> Self {
        let node = |cfg, peer: PeerCfg, addr: &str, seed: &[u8], base| Node {
            ep: Endpoint::new(
                cfg,
                [peer],
                psk_store(b"secret"),
                Arc::new(DeterministicProvider::new(seed)),
            ),
            addr: v4(addr),
            kernel: FakeKernel::new(base),
            events: Vec::new(),
            sent: Vec::new(),
        };
        Self {
            nodes: vec![
                node(client, client_cfg(), CLIENT, b"client", 0xc000_0000),
                node(
                    EndpointConfig::default(),
                    gateway_cfg(GW_A, a),
                    GW_A,
                    b"a",
                    0xa000_0000,
                ),
                node(
                    EndpointConfig::default(),
                    gateway_cfg(GW_B, b),
                    GW_B,
                    b"b",
                    0xb000_0000,
                ),
            ],
            now: Instant::now(),
            flight: Vec::new(),
            seq: 0,
            lose: Box::new(|_, _| false),
            dns: HashMap::new(),
            resolved: Vec::new(),
        }
    }

    fn drive(&mut self) {
        loop {
            let mut busy = false;
            let now = self.now;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].ep.poll_transmit() {
                    busy = true;
                    let n = self.nodes[i].sent.len();
                    self.nodes[i].sent.push(t.clone());
                    let to = self.nodes.iter().position(|x| x.addr == t.remote.ip());
                    if let Some(to) = to
                        && !(self.lose)(i, n)
                    {
                        self.seq += 1;
                        self.flight.push((now, self.seq, to, t));
                    }
                }
                while let Some(op) = self.nodes[i].ep.poll_kernel_op() {
                    busy = true;
                    self.nodes[i].kernel.clock = Some(now);
                    if let Some(r) = self.nodes[i].kernel.handle(op) {
                        self.nodes[i].ep.handle_kernel_result(now, r);
                    }
                }
                while let Some(r) = self.nodes[i].ep.poll_resolve() {
                    busy = true;
                    self.resolved.push(r.name.clone());
                    let answer = self
                        .dns
                        .get(&r.name)
                        .cloned()
                        .ok_or_else(|| format!("{}: no such name", r.name));
                    self.nodes[i].ep.handle_resolved(now, r.req, answer);
                }
                while let Some(e) = self.nodes[i].ep.poll_event() {
                    busy = true;
                    self.nodes[i].events.push(e);
                }
            }
            self.flight.sort_by_key(|(at, seq, ..)| (*at, *seq));
            if let Some(pos) = self.flight.iter().position(|(at, ..)| *at <= self.now) {
                let (_, _, to, t) = self.flight.remove(pos);
                self.nodes[to]
                    .ep
                    .handle_datagram(now, t.remote, t.local, &t.payload);
                busy = true;
            }
            if !busy {
                return;
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.drive();
            let next = self
                .nodes
                .iter_mut()
                .filter_map(|n| n.ep.poll_timeout())
                .chain(self.flight.iter().map(|(at, ..)| *at))
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for n in &mut self.nodes {
                        n.ep.handle_timeout(now);
                    }
                }
                _ => {
                    self.now = until;
                    self.drive();
                    return;
                }
            }
        }
    }

    fn connect(&mut self) -> IkeSaId {
        let now = self.now;
        let id = self.nodes[0].ep.initiate(now, "gw", &[]).unwrap();
        self.run_for(Duration::from_secs(60));
        id
    }

    fn sas(&self, i: usize) -> Vec<IkeSaInfo> {
        self.nodes[i].ep.ike_sas().collect()
    }

    /// The client's IKE_SA_INIT requests to `gw`, parsed.
    fn inits_to(&self, gw: &str) -> Vec<Message> {
        self.nodes[0]
            .sent
            .iter()
            .filter(|t| t.remote.ip() == v4(gw))
            .filter(|t| {
                Header::peek(&t.payload)
                    .is_ok_and(|(h, _)| h.exchange == ExchangeType::IKE_SA_INIT && !h.is_response())
            })
            .map(|t| Message::parse(&t.payload, &Default::default()).unwrap())
            .collect()
    }

    /// The client's one established IKE SA: at `gw`, with its Child SA in
    /// both kernels (client and that gateway), and nothing anywhere else.
    fn assert_landed(&self, gw: usize) -> IkeSaInfo {
        let sas = self.sas(0);
        assert_eq!(sas.len(), 1, "{sas:?}");
        let sa = sas[0].clone();
        assert_eq!(sa.state, IkeState::Established);
        assert_eq!(sa.remote_addr.ip(), self.nodes[gw].addr);
        assert_eq!(sa.children.len(), 1);
        assert_eq!(sa.children[0].state, ChildState::Installed);
        let theirs = self.sas(gw);
        assert_eq!(theirs.len(), 1, "{theirs:?}");
        assert_eq!(theirs[0].state, IkeState::Established);
        assert_eq!((theirs[0].spi_i, theirs[0].spi_r), (sa.spi_i, sa.spi_r));
        assert_eq!(self.nodes[0].kernel.installed.len(), 1);
        assert_eq!(self.nodes[gw].kernel.installed.len(), 1);
        let mine = self.nodes[0].kernel.installed.values().next().unwrap();
        let peer = self.nodes[gw].kernel.installed.values().next().unwrap();
        assert_eq!((mine.spi_in, mine.spi_out), (peer.spi_out, peer.spi_in));
        assert_eq!(mine.remote.ip(), self.nodes[gw].addr);
        // No SPI left allocated anywhere.
        assert!(self.nodes.iter().all(|n| n.kernel.larval.is_empty()));
        for other in (1..self.nodes.len()).filter(|i| *i != gw) {
            assert!(self.sas(other).is_empty(), "{:?}", self.sas(other));
            assert!(self.nodes[other].kernel.installed.is_empty());
        }
        sa
    }
}

fn has_notify(m: &Message, t: NotifyType) -> Option<Vec<u8>> {
    m.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == t => Some(n.data.clone()),
        _ => None,
    })
}

fn redirect_failures(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeFailed {
                reason: IkeFailReason::Redirect(why),
                ..
            } => Some(why.clone()),
            _ => None,
        })
        .collect()
}

/// performance.md gives the box's size.
#[test]
fn the_redirect_state_is_small() {
    assert!(std::mem::size_of::<crate::sa::redirect::Redirect>() <= 48);
}

#[test]
fn gateway_data_round_trips_and_malformed_data_is_refused() {
    for (gw, nonce) in [
        ("198.51.100.2", &b""[..]),
        ("2001:db8::2", &b"nonce"[..]),
        ("gw-b.example", &b"0123456789abcdef"[..]),
    ] {
        let g = Gateway::parse(gw).unwrap();
        let data = g.encode(nonce);
        assert_eq!(Gateway::decode(&data), Some((g.clone(), nonce)));
        assert_eq!(g.to_string(), gw);
    }
    assert_eq!(
        Gateway::encode(&Gateway::parse("192.0.2.9").unwrap(), &[]),
        [1, 4, 192, 0, 2, 9]
    );
    for bad in [
        &[][..],
        &[1],
        &[1, 4, 192, 0, 2],        // short
        &[1, 3, 192, 0, 2],        // IPv4 of 3 octets
        &[2, 4, 192, 0, 2, 9],     // IPv6 of 4 octets
        &[3, 3, b'a', b' ', b'b'], // not a DNS name
        &[3, 0],                   // empty name
        &[9, 1, 0],                // unknown type
    ] {
        assert_eq!(Gateway::decode(bad), None, "{bad:?}");
    }
    assert!(Gateway::parse("gw b").is_err());
    assert!(Gateway::parse("").is_err());
}

#[test]
fn redirect_in_ike_sa_init_lands_on_gateway_b() {
    let mut n = Net::new(
        EndpointConfig::default(),
        to(RedirectWhen::Init, GW_B),
        None,
    );
    let id = n.connect();
    let sa = n.assert_landed(2);
    // The same IKE SA as far as `ikectl up` is concerned.
    assert_eq!(sa.id, id);
    assert!(
        matches!(&n.nodes[0].events[..], [Event::IkeEstablished { id: x, .. }, Event::ChildInstalled { .. }] if *x == id)
    );
    // A kept nothing and answered without a key exchange.
    assert!(n.nodes[1].events.is_empty(), "{:?}", n.nodes[1].events);
    let to_a = n.inits_to(GW_A);
    assert_eq!(to_a.len(), 1);
    assert!(has_notify(&to_a[0], NotifyType::REDIRECT_SUPPORTED).is_some());
    let to_b = n.inits_to(GW_B);
    assert_eq!(to_b.len(), 1);
    assert!(has_notify(&to_b[0], NotifyType::REDIRECT_SUPPORTED).is_none());
    let from = has_notify(&to_b[0], NotifyType::REDIRECTED_FROM).unwrap();
    assert_eq!(
        Gateway::decode(&from),
        Some((Gateway::parse(GW_A).unwrap(), &[][..]))
    );
}

#[test]
fn redirect_in_ike_auth_after_authentication() {
    let mut n = Net::new(
        EndpointConfig::default(),
        to(RedirectWhen::Auth, GW_B),
        None,
    );
    let id = n.connect();
    let sa = n.assert_landed(2);
    assert_eq!(sa.id, id);
    // A authenticated the client, redirected it instead of the Child SA,
    // and the client deleted that IKE SA there.
    assert!(
        matches!(
            &n.nodes[1].events[..],
            [
                Event::IkeEstablished { .. },
                Event::IkeDeleted { by_peer: true, .. }
            ]
        ),
        "{:?}",
        n.nodes[1].events
    );
    // Nothing of a Child SA was ever in A's kernel.
    assert_eq!(n.nodes[1].kernel.installs, 0);
    assert!(n.nodes[1].kernel.policies.is_empty());
}

#[test]
fn an_established_sa_is_redirected_on_command_with_its_child() {
    let mut n = Net::new(EndpointConfig::default(), None, None);
    let old = n.connect();
    n.assert_landed(1);
    let at_a = n.sas(1)[0].id;
    let now = n.now;
    n.nodes[1]
        .ep
        .redirect(now, at_a, Gateway::parse(GW_B).unwrap())
        .unwrap();
    n.run_for(Duration::from_secs(30));
    let sa = n.assert_landed(2);
    assert_ne!(sa.id, old, "a new IKE SA");
    assert!(n.nodes[0].ep.ike_sa(old).is_none());
    assert!(n.nodes[1].kernel.policies_removed());
    assert!(n.nodes[0].kernel.policies_removed());
    // The client deleted the old one (A did not have to wait).
    assert!(
        n.nodes[1]
            .events
            .iter()
            .any(|e| matches!(e, Event::IkeDeleted { by_peer: true, .. })),
        "{:?}",
        n.nodes[1].events
    );
}

#[test]
fn a_gateway_named_by_fqdn_is_resolved_by_the_daemon() {
    let mut n = Net::new(
        EndpointConfig::default(),
        to(RedirectWhen::Init, "gw-b.example"),
        None,
    );
    n.dns.insert("gw-b.example".into(), vec![v4(GW_B)]);
    let id = n.connect();
    assert_eq!(n.assert_landed(2).id, id);
    assert_eq!(n.resolved, ["gw-b.example"]);
}

#[test]
fn an_unresolvable_gateway_fails_the_ike_sa() {
    let mut n = Net::new(
        EndpointConfig::default(),
        to(RedirectWhen::Init, "nowhere.example"),
        None,
    );
    let id = n.connect();
    assert!(n.sas(0).is_empty());
    let failed: Vec<&Event> = n.nodes[0]
        .events
        .iter()
        .filter(|e| matches!(e, Event::IkeFailed { id: x, .. } if *x == id))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", n.nodes[0].events);
    assert_eq!(redirect_failures(&n.nodes[0].events).len(), 1);
    assert!(n.nodes[0].kernel.installed.is_empty());
}

#[test]
fn with_loss_the_client_still_lands_on_gateway_b() {
    for when in [RedirectWhen::Init, RedirectWhen::Auth] {
        let mut n = Net::new(EndpointConfig::default(), to(when, GW_B), None);
        // Every sender loses its second and fourth datagram.
        n.lose = Box::new(|_, k| k == 1 || k == 3);
        let now = n.now;
        let id = n.nodes[0].ep.initiate(now, "gw", &[]).unwrap();
        // (A redirected IKE SA whose Delete was lost goes after 30 s and
        // its own Delete's retransmissions.)
        n.run_for(Duration::from_secs(300));
        assert_eq!(n.assert_landed(2).id, id, "{when:?}");
    }
}

#[test]
fn a_redirect_loop_ends_after_five_redirects() {
    // Each gateway sends the client to the other once it authenticated.
    let mut n = Net::new(
        EndpointConfig::default(),
        to(RedirectWhen::Auth, GW_B),
        to(RedirectWhen::Auth, GW_A),
    );
    let id = n.connect();
    assert!(n.sas(0).is_empty(), "{:?}", n.sas(0));
    let failures = redirect_failures(&n.nodes[0].events);
    assert_eq!(failures.len(), 1, "{:?}", n.nodes[0].events);
    assert!(failures[0].contains("only 5 redirects"), "{failures:?}");
    // Five redirects followed: six IKE_AUTH exchanges in all.
    let auths = n.nodes[0]
        .sent
        .iter()
        .filter(|t| {
            Header::peek(&t.payload)
                .is_ok_and(|(h, _)| h.exchange == ExchangeType::IKE_AUTH && !h.is_response())
        })
        .count();
    assert_eq!(auths, 6);
    assert!(n.nodes[0].kernel.installed.is_empty());
    assert!(matches!(n.nodes[0].events.last(), Some(Event::IkeFailed { id: x, .. }) if *x == id));
    // The client deleted each gateway's IKE SA, the last one too.
    assert!(n.sas(1).is_empty() && n.sas(2).is_empty());
}

#[test]
fn without_follow_redirects_nothing_is_announced_or_redirected() {
    let cfg = EndpointConfig {
        follow_redirects: false,
        ..EndpointConfig::default()
    };
    let mut n = Net::new(cfg, to(RedirectWhen::Init, GW_B), None);
    n.connect();
    n.assert_landed(1);
    let to_a = n.inits_to(GW_A);
    assert!(has_notify(&to_a[0], NotifyType::REDIRECT_SUPPORTED).is_none());
    let at_a = n.sas(1)[0].id;
    let now = n.now;
    assert_eq!(
        n.nodes[1]
            .ep
            .redirect(now, at_a, Gateway::parse(GW_B).unwrap()),
        Err(CommandError::NoRedirect)
    );
}

#[test]
fn a_redirect_with_another_nonce_is_dropped() {
    let mut n = Net::new(EndpointConfig::default(), None, None);
    let now = n.now;
    n.nodes[0].ep.initiate(now, "gw", &[]).unwrap();
    let req = {
        let t = n.nodes[0].ep.poll_transmit().unwrap();
        Message::parse(&t.payload, &Default::default()).unwrap()
    };
    let forged = Message {
        header: Header {
            flags: crate::wire::Flags::RESPONSE,
            ..req.header
        },
        payloads: vec![Payload::Notify(crate::wire::Notify::new(
            NotifyType::REDIRECT,
            Gateway::parse(GW_B).unwrap().encode(b"not the nonce"),
        ))],
    }
    .emit()
    .unwrap();
    let (a, c) = (
        SocketAddr::new(v4(GW_A), 500),
        SocketAddr::new(v4(CLIENT), 500),
    );
    n.nodes[0].ep.handle_datagram(now, c, a, &forged);
    assert!(n.nodes[0].ep.poll_transmit().is_none());
    assert_eq!(n.sas(0).len(), 1);
    assert_eq!(n.sas(0)[0].remote_addr.ip(), v4(GW_A));
    // The real answer still comes in: the retransmission reaches A.
    n.run_for(Duration::from_secs(60));
    n.assert_landed(1);
}
