//! Two `Endpoint`s (gateways A and B, PSK, two children, the deterministic
//! crypto provider, key exchanges handed out as the daemon's workers get
//! them; or, in [`endpoint_ra`], a road warrior A with EAP-MSCHAPv2, a
//! virtual IP and MOBIKE against a gateway B with an address pool) and a
//! network, clock, kernel and operator run by the input: the
//! datagrams between them delivered, dropped, repeated, reordered or
//! altered, others injected, time advanced, kernel answers and key
//! exchanges held back, kernel operations failed, commands given. Everything the engine does with a
//! datagram it receives is reachable, including after decryption, since
//! the honest side's messages carry valid ICVs.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use ike::config::Config;
use ike::crypto::{CryptoProvider, DeterministicProvider};
use ike::from_config::{self, ConfigPsk, Credentials, Ports, Resolved};
use ike::sa::{
    ChildState, Compute, ComputeMode, Endpoint, EndpointConfig, IkeState, KernelOk, KernelOp,
    KernelResult, PeerCfg, Transmit,
};

use crate::Input;

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The road warrior's addresses (MOBIKE), its first one included.
const ROAM: [Ipv4Addr; 3] = [
    A,
    Ipv4Addr::new(198, 51, 100, 9),
    Ipv4Addr::new(192, 0, 2, 77),
];
/// An address neither gateway is configured for.
const STRANGER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

fn yaml(me: Ipv4Addr, peer: Ipv4Addr, me_id: &str, peer_id: &str, mine: u8, theirs: u8) -> String {
    format!(
        "connections:
  peer:
    local_addrs: [{me}]
    remote_addrs: [{peer}]
    proposals: [aes256gcm16-prfsha256-x25519, aes128-sha256-ecp256]
    local: {{ auth: psk, id: {me_id} }}
    remote: {{ auth: psk, id: {peer_id} }}
    children:
      net:
        local_ts: [10.{mine}.0.0/24]
        remote_ts: [10.{theirs}.0.0/24]
        esp_proposals: [aes256gcm16, aes128gcm16-x25519]
      net2:
        local_ts: [10.{mine}.1.0/24]
        remote_ts: [10.{theirs}.1.0/24]
        esp_proposals: [aes128gcm16-x25519]
        mode: transport
        inactivity: 20m
  roadwarrior:
    local_addrs: [{me}]
    remote_addrs: ['%any']
    local: {{ auth: psk, id: {me_id} }}
    remote: {{ auth: psk, id: '%any' }}
    children:
      rw: {{ local_ts: [10.{mine}.2.0/24] }}
secrets:
  ike:
    - {{ ids: [gw-a.example.org, gw-b.example.org], secret: fuzz-psk-not-a-secret }}
    - {{ secret: any-peer-psk }}
"
    )
}

/// The road warrior A: EAP-MSCHAPv2 with an EAP identity, a virtual IP
/// asked for, MOBIKE (the default); the same connection and child names
/// as the site-to-site one, so that the operator's commands apply.
fn ra_client_yaml() -> String {
    format!(
        "connections:
  peer:
    local_addrs: [{A}]
    remote_addrs: [{B}]
    proposals: [aes256gcm16-prfsha256-x25519, aes128-sha256-ecp256]
    vips: [0.0.0.0]
    local: {{ auth: eap-mschapv2, id: rw.example.org, eap_id: carol }}
    remote: {{ auth: psk, id: gw-b.example.org }}
    children:
      net:
        remote_ts: [10.2.0.0/24]
        esp_proposals: [aes256gcm16, aes128gcm16-x25519]
      net2:
        remote_ts: [10.2.1.0/24]
        esp_proposals: [aes128gcm16-x25519]
        inactivity: 20m
secrets:
  ike:
    - {{ ids: [gw-b.example.org], secret: fuzz-psk-not-a-secret }}
  eap:
    - {{ ids: [carol], secret: carols-password }}
"
    )
}

/// The gateway B: its PSK, EAP-MSCHAPv2 with EAP-Identity for any user,
/// a pool of two addresses (a reconnect with another identity or a second
/// IKE SA can exhaust it: INTERNAL_ADDRESS_FAILURE is reachable).
fn ra_gateway_yaml() -> String {
    format!(
        "connections:
  peer:
    local_addrs: [{B}]
    remote_addrs: ['%any']
    pools: [rw]
    local: {{ auth: psk, id: gw-b.example.org }}
    remote: {{ auth: eap-mschapv2, id: '%any', eap_id: '%any' }}
    children:
      net:
        local_ts: [10.2.0.0/24]
        remote_ts: [dynamic]
        esp_proposals: [aes256gcm16, aes128gcm16-x25519]
      net2:
        local_ts: [10.2.1.0/24]
        remote_ts: [dynamic]
        esp_proposals: [aes128gcm16-x25519]
pools:
  rw:
    addrs: 10.3.0.1-10.3.0.2
    dns: [10.2.0.53]
    split_include: [10.2.0.0/16]
secrets:
  ike:
    - {{ secret: fuzz-psk-not-a-secret }}
  eap:
    - {{ ids: [carol], secret: carols-password }}
    - {{ ids: [dave], secret: daves-password }}
"
    )
}

/// Which pair of endpoints a program runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    SiteToSite,
    RemoteAccess,
}

/// One side's configuration, read once.
struct Setup {
    config: Arc<Config>,
    peers: Vec<Arc<PeerCfg>>,
    psk: Arc<ConfigPsk>,
}

fn setup(scenario: Scenario, side: usize) -> &'static Setup {
    static S2S: OnceLock<[Setup; 2]> = OnceLock::new();
    static RA: OnceLock<[Setup; 2]> = OnceLock::new();
    let make = |text: String| {
        let config = Config::from_yaml_str(&text, "fuzz.yaml")
            .unwrap_or_else(|e| panic!("the fixed configuration does not read: {e}"));
        let peers = from_config::peers(
            &config,
            &Resolved::default(),
            Ports::default(),
            &Credentials::default(),
        )
        .unwrap_or_else(|e| panic!("the fixed configuration has no peers: {e}"));
        let config = Arc::new(config);
        Setup {
            peers: peers.into_iter().map(Arc::new).collect(),
            psk: Arc::new(ConfigPsk::new(config.clone())),
            config,
        }
    };
    let [a, b] = match scenario {
        Scenario::SiteToSite => S2S.get_or_init(|| {
            [
                make(yaml(A, B, "gw-a.example.org", "gw-b.example.org", 1, 2)),
                make(yaml(B, A, "gw-b.example.org", "gw-a.example.org", 2, 1)),
            ]
        }),
        Scenario::RemoteAccess => {
            RA.get_or_init(|| [make(ra_client_yaml()), make(ra_gateway_yaml())])
        }
    };
    if side == 0 { a } else { b }
}

/// Bounds on what the harness keeps, so that an input can't make it (not
/// the engine) grow.
const MAX_QUEUE: usize = 64;
const MAX_ROUNDS: usize = 256;

struct Side {
    ep: Endpoint,
    /// Where the others send to; A's changes when it roams.
    addr: IpAddr,
    scenario: Scenario,
    /// Datagrams it sent that the network has not delivered yet.
    out: VecDeque<Transmit>,
    /// Kernel results held back (`hold`).
    held: VecDeque<KernelResult>,
    /// Key exchanges asked for and not run yet (`hold`).
    jobs: VecDeque<Compute>,
    hold: bool,
    /// The next kernel operation fails.
    fail: bool,
    next_spi: u32,
    next_cpi: u16,
    traffic: u64,
}

impl Side {
    fn new(scenario: Scenario, i: usize, now: Instant) -> Side {
        let s = setup(scenario, i);
        let seed: &[u8] = if i == 0 { b"fuzz-a" } else { b"fuzz-b" };
        let provider: Arc<dyn CryptoProvider> = Arc::new(DeterministicProvider::new(seed));
        // Key exchanges as the daemon runs them: handed out and answered
        // later (here at once, or when `hold` ends).
        let cfg = EndpointConfig {
            compute: ComputeMode::Outside,
            ..EndpointConfig::default()
        };
        let mut ep = Endpoint::new(cfg, s.peers.iter().cloned(), s.psk.clone(), provider);
        ep.set_eap_secrets(Arc::new(ConfigPsk::eap(s.config.clone())));
        ep.set_pools(s.config.pools());
        let utc = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_272_000);
        ep.set_wall_clock(now, utc);
        Side {
            ep,
            addr: IpAddr::V4(if i == 0 { A } else { B }),
            scenario,
            out: VecDeque::new(),
            held: VecDeque::new(),
            jobs: VecDeque::new(),
            hold: false,
            fail: false,
            next_spi: if i == 0 { 0xc000_0000 } else { 0xd000_0000 },
            next_cpi: if i == 0 { 0x1000 } else { 0x2000 },
            traffic: 0,
        }
    }

    fn answer(&mut self, op: &KernelOp) -> Option<KernelResult> {
        let req = op.req()?;
        if std::mem::take(&mut self.fail) {
            return Some(KernelResult {
                req,
                outcome: Err("EFUZZ: refused by the fuzzer".into()),
            });
        }
        let ok = match op {
            KernelOp::AllocSpi { .. } => {
                self.next_spi = self.next_spi.wrapping_add(1);
                KernelOk::SpiAllocated(self.next_spi)
            }
            KernelOp::AllocCpi { .. } => {
                self.next_cpi = self.next_cpi.wrapping_add(1);
                KernelOk::CpiAllocated(self.next_cpi)
            }
            KernelOp::QueryTraffic { .. } => KernelOk::Traffic(self.traffic),
            // Policies unused until the first traffic, then last used some
            // time ago that the traffic counter picks.
            KernelOp::QueryLastUse { .. } => {
                KernelOk::Idle((self.traffic > 0).then(|| Duration::from_secs(self.traffic % 3000)))
            }
            _ => KernelOk::Done,
        };
        Some(KernelResult {
            req,
            outcome: Ok(ok),
        })
    }

    /// Drains the endpoint's outputs: key exchanges run and kernel
    /// operations answered (or both held), transmits queued, events and
    /// CRL fetches dropped. Returns whether there was anything.
    fn pump(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(job) = self.ep.poll_compute() {
            any = true;
            if self.hold {
                if self.jobs.len() < MAX_QUEUE {
                    self.jobs.push_back(job);
                }
            } else {
                self.ep.handle_computed(now, job.run());
            }
        }
        while let Some(op) = self.ep.poll_kernel_op() {
            any = true;
            if let Some(r) = self.answer(&op) {
                if self.hold {
                    if self.held.len() < MAX_QUEUE {
                        self.held.push_back(r);
                    }
                } else {
                    self.ep.handle_kernel_result(now, r);
                }
            }
        }
        while let Some(t) = self.ep.poll_transmit() {
            any = true;
            if self.out.len() >= MAX_QUEUE {
                self.out.pop_front();
            }
            self.out.push_back(t);
        }
        while self.ep.poll_event().is_some() {
            any = true;
        }
        while self.ep.poll_crl_fetch().is_some() {
            any = true;
        }
        // EAP-MSCHAPv2 asks nothing outside; a method that did would wait
        // forever here, which the final check would report.
        while self.ep.poll_eap_ask().is_some() {
            any = true;
        }
        any
    }

    /// Runs the held key exchanges (the latest first: workers finish in
    /// any order) and hands over the held kernel results.
    fn release_held(&mut self, now: Instant) {
        while let Some(job) = self.jobs.pop_back() {
            self.ep.handle_computed(now, job.run());
        }
        while let Some(r) = self.held.pop_front() {
            self.ep.handle_kernel_result(now, r);
        }
    }

    fn timeout(&mut self, now: Instant) {
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
    }

    /// An operator's command, picked by `what`, on the SA picked by `which`.
    fn command(&mut self, now: Instant, what: u8, which: u8) {
        let sas: Vec<_> = self.ep.ike_sas().collect();
        let sa = sas.get(usize::from(which) % sas.len().max(1));
        let child = sa.and_then(|s| {
            s.children
                .get(usize::from(which / 16) % s.children.len().max(1))
                .map(|c| c.id)
        });
        // The road warrior also moves (MOBIKE): to one of two other
        // addresses or back.
        let kinds = if self.scenario == Scenario::RemoteAccess {
            9
        } else {
            8
        };
        let _ = match what % kinds {
            0 => self.ep.initiate(now, "peer", &[]).map(|_| ()),
            1 => self.ep.initiate(now, "peer", &["net2", "net"]).map(|_| ()),
            2 => match sa {
                Some(s) => self.ep.initiate_child(now, s.id, "net2"),
                None => Ok(()),
            },
            3 => match sa {
                Some(s) => self.ep.rekey_ike(now, s.id),
                None => Ok(()),
            },
            4 => match (sa, child) {
                (Some(s), Some(c)) => self.ep.rekey_child(now, s.id, c),
                _ => Ok(()),
            },
            5 => match (sa, child) {
                (Some(s), Some(c)) => self.ep.terminate_child(now, s.id, c),
                _ => Ok(()),
            },
            6 => match sa {
                Some(s) => self.ep.terminate_ike(now, s.id),
                None => Ok(()),
            },
            7 => match sa {
                Some(s) => self.ep.send_liveness_check(now, s.id),
                None => Ok(()),
            },
            _ => match sa {
                Some(s) => {
                    let to = ROAM
                        .get(usize::from(which) % ROAM.len())
                        .copied()
                        .unwrap_or(A);
                    self.addr = IpAddr::V4(to);
                    self.ep.roam(now, s.id, self.addr)
                }
                None => Ok(()),
            },
        };
    }
}

struct Net {
    sides: [Side; 2],
    now: Instant,
}

impl Net {
    fn pump(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let a = self.sides[0].pump(self.now);
            let b = self.sides[1].pump(self.now);
            if !a && !b {
                return;
            }
        }
    }

    /// Hands `bytes` to side `to` as if it came from `from` (addresses
    /// with the transmit's ports).
    fn deliver(&mut self, to: usize, t: &Transmit, bytes: &[u8]) {
        let now = self.now;
        if let Some(s) = self.sides.get_mut(to) {
            s.ep.handle_datagram(now, t.remote, t.local, bytes);
        }
    }

    /// Whether every IKE SA on both sides is established with all its
    /// Child SAs installed; else what is not.
    fn settled(&self) -> Result<(), String> {
        for (name, s) in ["A", "B"].iter().zip(&self.sides) {
            for sa in s.ep.ike_sas() {
                if sa.state != IkeState::Established
                    || sa.children.iter().any(|c| c.state != ChildState::Installed)
                {
                    return Err(format!(
                        "{name} keeps a half-done IKE SA: {} {:?}",
                        sa.state,
                        sa.children
                            .iter()
                            .map(|c| (c.name.as_str(), c.state))
                            .collect::<Vec<_>>()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Delivers everything in flight, both ways, until nothing moves.
    fn flush(&mut self) {
        for _ in 0..MAX_ROUNDS {
            self.pump();
            let mut moved = false;
            for from in 0..2 {
                if let Some(t) = self.sides[from].out.pop_front() {
                    self.deliver(1 - from, &t, &t.payload);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.checked_add(d).unwrap_or(self.now);
        let now = self.now;
        for s in &mut self.sides {
            s.ep.set_wall_clock(
                now,
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_272_000),
            );
            s.timeout(now);
        }
    }
}

fn base() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

/// Runs the input as a program of one-octet operations (`op % 10`), each
/// followed by its arguments, then lets the network deliver everything
/// and the clock run for an hour, so that every timer fires; after that
/// (and at most ten more minutes) every IKE SA left is established with
/// its Child SAs installed. A starts an IKE SA toward B first.
///
/// 0/1 deliver A's/B's oldest datagram; 2 drop one; 3 deliver one and
/// keep it (a duplicate); 4 deliver one with an octet changed; 5 inject a
/// datagram (length, bytes) into A or B from the other gateway or a
/// stranger, on port 500 or 4500; 6 advance the clock (100 ms steps, or
/// minutes); 7 an operator's command on A or B; 8 hold back or release
/// the kernel's answers and the key exchanges, or fail the next kernel
/// operation; 9 swap the two oldest
/// datagrams of a side.
pub fn endpoint(data: &[u8]) {
    run(Scenario::SiteToSite, data);
}

/// [`endpoint`]'s program between a road warrior A (EAP-MSCHAPv2 as
/// `carol`, a virtual IP from the gateway's pool, MOBIKE) and the gateway
/// B (PSK, EAP-Identity, a pool of two addresses with DNS and split
/// attributes). Operator command 8 moves A to another address (`roam`).
/// The same end state is required: every IKE SA established, its Child
/// SAs installed.
pub fn endpoint_ra(data: &[u8]) {
    run(Scenario::RemoteAccess, data);
}

fn run(scenario: Scenario, data: &[u8]) -> Net {
    let now = base();
    let mut net = Net {
        sides: [Side::new(scenario, 0, now), Side::new(scenario, 1, now)],
        now,
    };
    let _ = net.sides[0].ep.initiate(now, "peer", &[]);
    net.pump();
    let mut input = Input::new(data);
    while !input.is_empty() {
        let op = input.u8();
        let side = usize::from(op / 10 % 2);
        match op % 10 {
            0 | 1 => {
                let from = usize::from(op % 10);
                if let Some(t) = net.sides[from].out.pop_front() {
                    net.deliver(1 - from, &t, &t.payload);
                }
            }
            2 => {
                net.sides[side].out.pop_front();
            }
            3 => {
                if let Some(t) = net.sides[side].out.front().cloned() {
                    net.deliver(1 - side, &t, &t.payload);
                }
            }
            4 => {
                let (at, x) = (usize::from(input.u16()), input.u8());
                if let Some(t) = net.sides[side].out.pop_front() {
                    let mut bytes = t.payload.clone();
                    if let Some(b) = bytes.get_mut(at % t.payload.len().max(1)) {
                        *b ^= x.max(1);
                    }
                    net.deliver(1 - side, &t, &bytes);
                }
            }
            5 => {
                let how = input.u8();
                let len = usize::from(input.u8()) * 4;
                let bytes = input.bytes(len);
                let from = if how & 1 == 0 {
                    net.sides[1 - side].addr
                } else {
                    IpAddr::V4(STRANGER)
                };
                let port = if how & 2 == 0 { 500 } else { 4500 };
                let t = Transmit {
                    local: SocketAddr::new(from, port),
                    remote: SocketAddr::new(net.sides[side].addr, port),
                    payload: Vec::new(),
                };
                net.deliver(side, &t, bytes);
            }
            6 => {
                let n = input.u8();
                let d = if n < 128 {
                    Duration::from_millis(u64::from(n) * 100)
                } else {
                    Duration::from_secs(u64::from(n - 128) * 60)
                };
                net.advance(d);
            }
            7 => {
                let (what, which) = (input.u8(), input.u8());
                let now = net.now;
                net.sides[side].command(now, what, which);
            }
            8 => {
                let now = net.now;
                let s = &mut net.sides[side];
                match input.u8() % 4 {
                    0 => s.hold = true,
                    1 => {
                        s.hold = false;
                        s.release_held(now);
                    }
                    2 => s.fail = true,
                    _ => s.traffic = s.traffic.wrapping_add(1500),
                }
            }
            _ => {
                let q = &mut net.sides[side].out;
                if q.len() >= 2 {
                    q.swap(0, 1);
                }
            }
        }
        net.pump();
    }
    // The rest of the story: kernel answers and key exchanges released,
    // everything sent delivered, an hour of timers (the children's rekeys
    // come due), then up to ten more minutes until nothing is half-done.
    // With every message delivered, nothing may stay half-done (waiting
    // for an answer, a kernel result or a key exchange that will never
    // come: state an attacker could pile up) longer than the
    // retransmissions last (about three minutes).
    for step in 0..140 {
        let now = net.now;
        for s in &mut net.sides {
            s.hold = false;
            s.release_held(now);
        }
        net.flush();
        if step >= 120 && net.settled().is_ok() {
            break;
        }
        net.advance(Duration::from_secs(30));
    }
    net.flush();
    if let Err(e) = net.settled() {
        panic!("{e}");
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness's configurations work: without interference each pair
    /// ends with the IKE SA and its first child up (a configuration that
    /// failed authentication would leave nothing, which the end check
    /// alone accepts).
    fn up(scenario: Scenario) -> Net {
        let net = run(scenario, &[0, 1].repeat(6));
        for (name, s) in ["A", "B"].iter().zip(&net.sides) {
            let sas: Vec<_> = s.ep.ike_sas().collect();
            assert_eq!(sas.len(), 1, "{name}: {}", sas.len());
            // net2 went with its inactivity timeout in the hour of timers.
            let children: Vec<_> = sas[0].children.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(children, ["net"], "{name}");
        }
        net
    }

    #[test]
    fn the_site_to_site_pair_comes_up() {
        up(Scenario::SiteToSite);
    }

    #[test]
    fn the_road_warrior_gets_an_address_of_the_pool_and_can_roam() {
        let mut net = up(Scenario::RemoteAccess);
        let sa = net.sides[0]
            .ep
            .ike_sas()
            .next()
            .map(|s| (s.id, s.local_vips.clone()));
        let Some((id, vips)) = sa else {
            panic!("no IKE SA")
        };
        assert_eq!(vips, [IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1))]);
        // A moves; B follows (UPDATE_SA_ADDRESSES).
        let now = net.now;
        net.sides[0].addr = IpAddr::V4(ROAM[1]);
        net.sides[0].ep.roam(now, id, IpAddr::V4(ROAM[1])).unwrap();
        net.flush();
        let b = net.sides[1].ep.ike_sas().next().map(|s| s.remote_addr);
        assert_eq!(b.map(|r| r.ip()), Some(IpAddr::V4(ROAM[1])));
    }
}
