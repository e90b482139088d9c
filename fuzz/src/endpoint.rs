//! Two `Endpoint`s (gateways A and B, PSK, two children, the deterministic
//! crypto provider, key exchanges handed out as the daemon's workers get
//! them) and a network, clock, kernel and operator run by the input: the
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

/// One gateway's configuration, read once.
struct Setup {
    peers: Vec<Arc<PeerCfg>>,
    psk: Arc<ConfigPsk>,
}

fn setup(side: usize) -> &'static Setup {
    static S: OnceLock<[Setup; 2]> = OnceLock::new();
    let all = S.get_or_init(|| {
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
            Setup {
                peers: peers.into_iter().map(Arc::new).collect(),
                psk: Arc::new(ConfigPsk::new(Arc::new(config))),
            }
        };
        [
            make(yaml(A, B, "gw-a.example.org", "gw-b.example.org", 1, 2)),
            make(yaml(B, A, "gw-b.example.org", "gw-a.example.org", 2, 1)),
        ]
    });
    let [a, b] = all;
    if side == 0 { a } else { b }
}

/// Bounds on what the harness keeps, so that an input can't make it (not
/// the engine) grow.
const MAX_QUEUE: usize = 64;
const MAX_ROUNDS: usize = 256;

struct Side {
    ep: Endpoint,
    addr: IpAddr,
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
    fn new(i: usize, now: Instant) -> Side {
        let s = setup(i);
        let seed: &[u8] = if i == 0 { b"fuzz-a" } else { b"fuzz-b" };
        let provider: Arc<dyn CryptoProvider> = Arc::new(DeterministicProvider::new(seed));
        // Key exchanges as the daemon runs them: handed out and answered
        // later (here at once, or when `hold` ends).
        let cfg = EndpointConfig {
            compute: ComputeMode::Outside,
            ..EndpointConfig::default()
        };
        let mut ep = Endpoint::new(cfg, s.peers.iter().cloned(), s.psk.clone(), provider);
        let utc = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_272_000);
        ep.set_wall_clock(now, utc);
        Side {
            ep,
            addr: IpAddr::V4(if i == 0 { A } else { B }),
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
        let _ = match what % 8 {
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
            _ => match sa {
                Some(s) => self.ep.send_liveness_check(now, s.id),
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
    let now = base();
    let mut net = Net {
        sides: [Side::new(0, now), Side::new(1, now)],
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
}
