//! Two endpoints, a fake kernel each, a simulated clock and a network that
//! can drop, duplicate, delay and reorder (quinn-proto's `Pair` is the model).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::crypto::proposal;
use crate::crypto::{DeterministicProvider, Secret};
use crate::sa::*;
use crate::wire::codes::{ExchangeType, ProtocolId};
use crate::wire::{AddressRange, Header, Identification, TrafficSelector};

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One change to a fake kernel, in order (for make-before-break checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KLog {
    /// Inbound SA added.
    AddIn { child: ChildId, spi: u32 },
    /// Outbound SA added.
    AddOut { child: ChildId, spi: u32 },
    /// Policies of a reqid added.
    AddPolicies { reqid: u32 },
    /// Inbound SA removed.
    DelIn { child: ChildId, spi: u32 },
    /// Outbound SA removed.
    DelOut { child: ChildId, spi: u32 },
    /// Policies of a reqid removed.
    DelPolicies { reqid: u32 },
}

/// What the kernel of one peer holds: a model built from the KernelOps,
/// which asserts what the real kernel needs (an SA goes in under existing
/// policies of its reqid, policies go only with the last SA of theirs).
#[derive(Debug, Default)]
pub struct FakeKernel {
    next_spi: u32,
    next_cpi: u16,
    /// Allocated IPComp CPIs not yet installed or released.
    pub cpis: BTreeSet<u16>,
    /// Fail every CPI allocation.
    pub fail_cpi: bool,
    /// Allocated SPIs not yet installed or released.
    pub larval: BTreeSet<u32>,
    /// Child SAs with at least one SA in the kernel.
    pub installed: BTreeMap<ChildId, ChildInstall>,
    /// Inbound SAs: SPI -> (child, reqid).
    pub sa_in: BTreeMap<u32, (ChildId, u32)>,
    /// Outbound SAs: SPI -> (child, reqid).
    pub sa_out: BTreeMap<u32, (ChildId, u32)>,
    /// Reqids with policies.
    pub policies: BTreeSet<u32>,
    /// SPIs of SAs the kernel removed by itself (hard expire).
    pub expired: BTreeSet<u32>,
    /// Every change, with a sequence number that orders the changes of
    /// both kernels.
    pub log: Vec<(u64, KLog)>,
    /// Every install ever asked for.
    pub installs: usize,
    /// Every RemoveChild.
    pub removed: Vec<ChildRemove>,
    /// Fail the next n installs.
    pub fail_installs: usize,
    /// Fail every SPI allocation.
    pub fail_alloc: bool,
    /// What `QueryTraffic` answers: the inbound bytes (tests raise it to
    /// simulate traffic from the peer).
    pub traffic_in: u64,
    /// `QueryTraffic`s answered.
    pub traffic_queries: usize,
    /// Every UpdateChild (NAT mapping changes).
    pub updates: Vec<ChildUpdate>,
    /// When the policies of a reqid last carried a packet (tests set it
    /// to simulate traffic; `QueryLastUse` answers from it).
    pub used_at: BTreeMap<u32, Instant>,
    /// The simulated clock as the pair last drove this side.
    pub clock: Option<Instant>,
    /// `QueryLastUse`s answered, by reqid.
    pub last_use_queries: Vec<u32>,
    /// Fail every `QueryLastUse`.
    pub fail_last_use: bool,
}

impl FakeKernel {
    /// Whether any policies were ever removed (a make-before-break
    /// replacement keeps them).
    pub fn policies_removed(&self) -> bool {
        self.log
            .iter()
            .any(|(_, l)| matches!(l, KLog::DelPolicies { .. }))
    }

    pub fn new(base: u32) -> Self {
        Self {
            next_spi: base,
            // 0xc00 / 0xd00: one range per side, within charon's CPI range.
            next_cpi: u16::try_from(base >> 20).unwrap_or(0x100),
            ..Self::default()
        }
    }

    fn push(&mut self, k: KLog) {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.log.push((n, k));
    }

    fn ok(req: KernelReq) -> Option<KernelResult> {
        Some(KernelResult {
            req,
            outcome: Ok(KernelOk::Done),
        })
    }

    fn add_in(&mut self, c: &ChildInstall) {
        assert!(self.larval.remove(&c.spi_in), "install of unallocated SPI");
        if let Some(cpis) = c.ipcomp {
            assert!(
                self.cpis.remove(&cpis.cpi_in),
                "install of unallocated CPI {:04x}",
                cpis.cpi_in
            );
        }
        assert!(
            self.sa_in.insert(c.spi_in, (c.id, c.reqid)).is_none(),
            "inbound SA installed twice"
        );
        self.push(KLog::AddIn {
            child: c.id,
            spi: c.spi_in,
        });
    }

    fn add_out(&mut self, c: &ChildInstall) {
        assert!(
            self.sa_out.insert(c.spi_out, (c.id, c.reqid)).is_none(),
            "outbound SA installed twice"
        );
        self.push(KLog::AddOut {
            child: c.id,
            spi: c.spi_out,
        });
    }

    pub(super) fn handle(&mut self, op: KernelOp) -> Option<KernelResult> {
        match op {
            KernelOp::AllocSpi { req, .. } => {
                if self.fail_alloc {
                    return Some(KernelResult {
                        req,
                        outcome: Err("ENOMEM".into()),
                    });
                }
                self.next_spi += 1;
                self.larval.insert(self.next_spi);
                Some(KernelResult {
                    req,
                    outcome: Ok(KernelOk::SpiAllocated(self.next_spi)),
                })
            }
            KernelOp::AllocCpi { req, .. } => {
                if self.fail_cpi {
                    return Some(KernelResult {
                        req,
                        outcome: Err("ENOENT: no IPComp in this kernel".into()),
                    });
                }
                self.next_cpi += 1;
                self.cpis.insert(self.next_cpi);
                Some(KernelResult {
                    req,
                    outcome: Ok(KernelOk::CpiAllocated(self.next_cpi)),
                })
            }
            KernelOp::ReleaseCpi { cpi, .. } => {
                assert!(
                    self.cpis.remove(&cpi),
                    "release of unallocated CPI {cpi:04x}"
                );
                None
            }
            KernelOp::InstallChild { req, child } => {
                self.installs += 1;
                if self.fail_installs > 0 {
                    self.fail_installs -= 1;
                    return Some(KernelResult {
                        req,
                        outcome: Err("EINVAL: refused by test".into()),
                    });
                }
                assert!(
                    !self.policies.contains(&child.reqid),
                    "a new Child SA with a reqid in use"
                );
                self.add_in(&child);
                self.add_out(&child);
                self.policies.insert(child.reqid);
                self.push(KLog::AddPolicies { reqid: child.reqid });
                assert!(
                    self.installed.insert(child.id, child).is_none(),
                    "child installed twice"
                );
                Self::ok(req)
            }
            KernelOp::InstallRekeyed {
                req,
                child,
                outbound,
            } => {
                self.installs += 1;
                if self.fail_installs > 0 {
                    self.fail_installs -= 1;
                    return Some(KernelResult {
                        req,
                        outcome: Err("EINVAL: refused by test".into()),
                    });
                }
                assert!(
                    self.policies.contains(&child.reqid),
                    "a rekeyed Child SA goes in under the policies of its reqid"
                );
                self.add_in(&child);
                if outbound {
                    self.add_out(&child);
                }
                assert!(
                    self.installed.insert(child.id, child).is_none(),
                    "child installed twice"
                );
                Self::ok(req)
            }
            KernelOp::InstallOutbound { req, child } => {
                assert_eq!(
                    self.sa_in.get(&child.spi_in),
                    Some(&(child.id, child.reqid)),
                    "outbound SA of a child without inbound SA"
                );
                assert!(self.policies.contains(&child.reqid));
                self.add_out(&child);
                // Now with its outbound SPI (a reauthentication's Child
                // SA whose inbound SA went in before IKE_AUTH had none).
                self.installed.insert(child.id, child);
                Self::ok(req)
            }
            KernelOp::RemoveChild { req, child } => {
                self.installed.remove(&child.id);
                if child.policies {
                    assert!(self.policies.remove(&child.reqid), "policies removed twice");
                    self.push(KLog::DelPolicies { reqid: child.reqid });
                }
                if self.sa_in.remove(&child.spi_in).is_some() {
                    self.push(KLog::DelIn {
                        child: child.id,
                        spi: child.spi_in,
                    });
                }
                let had_out = self.sa_out.remove(&child.spi_out).is_some();
                assert_eq!(
                    had_out || self.expired.contains(&child.spi_out),
                    child.outbound,
                    "RemoveChild's outbound flag is wrong: {child:?}"
                );
                if had_out {
                    self.push(KLog::DelOut {
                        child: child.id,
                        spi: child.spi_out,
                    });
                }
                if child.policies {
                    assert!(
                        !self
                            .sa_in
                            .values()
                            .chain(self.sa_out.values())
                            .any(|(_, r)| *r == child.reqid),
                        "policies removed while SAs of their reqid remain"
                    );
                } else {
                    assert!(
                        self.policies.contains(&child.reqid),
                        "kept policies are not there"
                    );
                }
                self.removed.push(child);
                Self::ok(req)
            }
            KernelOp::QueryTraffic { req, sas } => {
                for (_, spi, _) in &sas {
                    assert!(
                        self.sa_in.contains_key(spi),
                        "traffic of unknown SA {spi:08x}"
                    );
                }
                self.traffic_queries += 1;
                Some(KernelResult {
                    req,
                    outcome: Ok(KernelOk::Traffic(self.traffic_in)),
                })
            }
            KernelOp::QueryLastUse { req, reqid } => {
                assert!(
                    self.policies.contains(&reqid),
                    "last use of reqid {reqid} without policies"
                );
                self.last_use_queries.push(reqid);
                let outcome = if self.fail_last_use {
                    Err("EPERM: refused by test".into())
                } else {
                    // The kernel's use_time is in whole seconds.
                    let idle = self.used_at.get(&reqid).zip(self.clock).map(|(u, now)| {
                        Duration::from_secs(now.saturating_duration_since(*u).as_secs())
                    });
                    Ok(KernelOk::Idle(idle))
                };
                Some(KernelResult { req, outcome })
            }
            KernelOp::UpdateChild { req, child } => {
                let outcome = match self.installed.get_mut(&child.id) {
                    Some(c) => {
                        c.local = child.local;
                        c.remote = child.remote;
                        c.encap = child.encap;
                        Ok(KernelOk::Done)
                    }
                    None => Err("ENOENT: no such child".into()),
                };
                self.updates.push(child);
                Some(KernelResult { req, outcome })
            }
            KernelOp::ReleaseSpi { spi, .. } => {
                self.larval.remove(&spi);
                None
            }
        }
    }

    /// The kernel removes an outbound SA by itself (a hard expire).
    pub fn hard_expire_out(&mut self, spi: u32) {
        assert!(self.sa_out.remove(&spi).is_some());
        self.expired.insert(spi);
    }

    /// Sequence number of the first log entry matching `f`.
    pub fn pos(&self, f: impl Fn(&KLog) -> bool) -> u64 {
        self.log
            .iter()
            .find(|(_, k)| f(k))
            .map(|(n, _)| *n)
            .unwrap_or_else(|| panic!("not in the kernel log: {:?}", self.log))
    }
}

/// One side.
pub struct Peer {
    pub ep: Endpoint,
    pub addr: SocketAddr,
    pub kernel: FakeKernel,
    pub events: Vec<(Instant, Event)>,
    /// Datagrams this side sent, with their send time.
    pub sent: Vec<(Instant, Transmit)>,
    /// Datagrams delivered to this side.
    pub received: Vec<(Instant, Vec<u8>)>,
}

impl Peer {
    pub fn events(&self) -> Vec<Event> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Header of each datagram sent.
    pub fn sent_headers(&self) -> Vec<Header> {
        self.sent
            .iter()
            .filter_map(|(_, t)| Header::peek(&t.payload).ok().map(|(h, _)| h))
            .collect()
    }

    pub fn count_sent(&self, exchange: ExchangeType, response: bool) -> usize {
        self.sent_headers()
            .iter()
            .filter(|h| h.exchange == exchange && h.is_response() == response)
            .count()
    }

    pub fn count_received(&self, exchange: ExchangeType, response: bool) -> usize {
        self.received
            .iter()
            .filter_map(|(_, b)| Header::peek(b).ok().map(|(h, _)| h))
            .filter(|h| h.exchange == exchange && h.is_response() == response)
            .count()
    }
}

/// What the network does with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    Duplicate,
    Delay(Duration),
}

/// The policy: (sender index 0/1, datagram number from that sender
/// counting from 0, bytes) -> fate.
pub type Policy = Box<dyn FnMut(usize, usize, &[u8]) -> Fate>;

/// A NAT (masquerade) in front of side 0: its datagrams leave from
/// `public` with a port per private source address and port; datagrams to
/// a public port without a mapping are dropped.
#[derive(Debug)]
pub struct Nat {
    pub public: IpAddr,
    /// Private address and port -> public port.
    pub map: BTreeMap<SocketAddr, u16>,
    pub next_port: u16,
}

impl Nat {
    pub fn new(public: &str) -> Self {
        Self {
            public: v4(public),
            map: BTreeMap::new(),
            next_port: 30000,
        }
    }

    /// The public address of `private` (a new mapping if none).
    pub fn out(&mut self, private: SocketAddr) -> SocketAddr {
        let next = &mut self.next_port;
        let port = *self.map.entry(private).or_insert_with(|| {
            *next += 1;
            *next
        });
        SocketAddr::new(self.public, port)
    }

    /// The private address a datagram to `public` goes to.
    pub fn back(&self, public: SocketAddr) -> Option<SocketAddr> {
        if public.ip() != self.public {
            return None;
        }
        self.map
            .iter()
            .find(|(_, p)| **p == public.port())
            .map(|(k, _)| *k)
    }

    /// Forgets every mapping (conntrack flushed): new ports from now on.
    pub fn flush(&mut self) {
        self.map.clear();
    }
}

pub struct Pair {
    pub peers: [Peer; 2],
    pub now: Instant,
    pub start: Instant,
    /// In flight: (deliver at, sequence, to, datagram).
    flight: Vec<(Instant, u64, usize, Transmit)>,
    seq: u64,
    pub policy: Policy,
    /// Hold kernel operations instead of answering them (per side).
    pub hold_kernel: [bool; 2],
    pub held: [Vec<KernelOp>; 2],
    /// A NAT in front of side 0.
    pub nat: Option<Nat>,
    /// Addresses that no longer reach anyone: datagrams to them are lost
    /// (side 0 moved behind `nat` while side 1 still talks to its old
    /// address in an old IKE SA).
    pub gone: Vec<IpAddr>,
    /// How long each side's kernel takes per operation (operations
    /// complete in order); `None`: at once.
    pub kernel_latency: [Option<Box<dyn FnMut() -> Duration>>; 2],
    /// Operations in the slow kernels: (done at, side, operation).
    kernel_flight: std::collections::VecDeque<(Instant, usize, KernelOp)>,
    /// The CRLs each side's daemon can fetch, by URI.
    pub crl_server: [BTreeMap<String, Vec<u8>>; 2],
    /// Hold CRL fetches instead of answering them (per side).
    pub hold_crl: [bool; 2],
    pub held_crl: [Vec<CrlFetch>; 2],
    /// Every CRL fetch asked for, per side.
    pub crl_fetches: [Vec<CrlFetch>; 2],
    /// Hold CPU jobs ([`ComputeMode::Outside`]) instead of running them
    /// at once (per side).
    pub hold_compute: [bool; 2],
    pub held_compute: [Vec<crate::sa::Compute>; 2],
    /// CPU jobs each side handed out.
    pub computes: [usize; 2],
    /// What each side's EAP methods asked of the outside, for the test
    /// to answer.
    pub eap_asks: [Vec<crate::sa::EapAsk>; 2],
}

/// The UTC time of the simulated clock's start (2026-12-01 00:00:00):
/// test certificates are valid around it, whatever the real date.
pub const UTC0: u64 = 1_796_083_200;

pub fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn subnet(start: &str, end: &str) -> TsCfg {
    TsCfg::Selector(match (v4(start), v4(end)) {
        (IpAddr::V4(a), IpAddr::V4(b)) => TrafficSelector::Ipv4(AddressRange::any(a, b)),
        (IpAddr::V6(a), IpAddr::V6(b)) => TrafficSelector::Ipv6(AddressRange::any(a, b)),
        _ => panic!("mixed families"),
    })
}

pub fn ike(s: &str) -> Vec<crate::wire::sa::Proposal> {
    proposal::parse(ProtocolId::IKE, s).unwrap()
}

pub fn esp(s: &str) -> Vec<crate::wire::sa::Proposal> {
    proposal::parse(ProtocolId::ESP, s).unwrap()
}

pub fn child(name: &str, local: Vec<TsCfg>, remote: Vec<TsCfg>) -> Arc<ChildCfg> {
    Arc::new(ChildCfg {
        name: name.into(),
        local_ts: local,
        remote_ts: remote,
        proposals: esp("aes128gcm16"),
        mode: Mode::Tunnel,
        sa_opts: Default::default(),
        lifetimes: ChildLifetimes::default(),
        policy: Default::default(),
        inactivity: Default::default(),
    })
}

pub const LEFT: &str = "192.0.2.1";
pub const RIGHT: &str = "198.51.100.1";

/// Site-to-site: left 10.1.0.0/16 behind 192.0.2.1, right 10.2.0.0/16
/// behind 198.51.100.1; IDs are FQDNs.
pub fn site(name: &str, me: &str, peer: &str, my_net: TsCfg, peer_net: TsCfg) -> PeerCfg {
    PeerCfg {
        name: name.into(),
        local_addrs: vec![AddrSpec::Addr(v4(me))],
        remote_addrs: vec![AddrSpec::Addr(v4(peer))],
        local_port: 500,
        remote_port: 500,
        ike_proposals: ike("aes128gcm16-prfsha256-x25519"),
        local_id: Identification::fqdn(&format!("{me}.example")),
        remote_id: Some(Identification::fqdn(&format!("{peer}.example"))),
        children: vec![child("net", vec![my_net], vec![peer_net])],
        encap: false,
        // Off in the harness, so that IKE stays on port 500 where the
        // tests expect it; sa::tests::mobike turns it on.
        mobike: false,
        lifetimes: IkeLifetimes::default(),
        dpd_delay: Duration::ZERO,
        local_auth: Default::default(),
        remote_auth: Default::default(),
        send_cert: Default::default(),
        send_certreq: true,
        fragmentation: Fragmentation::Yes,
        policy: Default::default(),
        behaviour: Default::default(),
        cp: Default::default(),
        redirect: None,
        rounds: Default::default(),
    }
}

pub fn left_cfg() -> PeerCfg {
    site(
        "site-b",
        LEFT,
        RIGHT,
        subnet("10.1.0.0", "10.1.255.255"),
        subnet("10.2.0.0", "10.2.255.255"),
    )
}

pub fn right_cfg() -> PeerCfg {
    site(
        "site-a",
        RIGHT,
        LEFT,
        subnet("10.2.0.0", "10.2.255.255"),
        subnet("10.1.0.0", "10.1.255.255"),
    )
}

pub fn psk_store(key: &[u8]) -> Arc<dyn PskStore> {
    let key = key.to_vec();
    Arc::new(move |_: &Identification, _: &Identification| Some(Secret::from_slice(&key)))
}

pub struct Setup {
    pub cfg: [EndpointConfig; 2],
    pub peers: [Vec<PeerCfg>; 2],
    pub psk: [Arc<dyn PskStore>; 2],
    pub addrs: [SocketAddr; 2],
    /// Seeds of the deterministic crypto providers.
    pub seeds: [Vec<u8>; 2],
    /// Each side's trusted CAs and CRLs.
    pub trust: [Arc<crate::pki::store::TrustStore>; 2],
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            cfg: [EndpointConfig::default(), EndpointConfig::default()],
            peers: [vec![left_cfg()], vec![right_cfg()]],
            psk: [psk_store(b"secret"), psk_store(b"secret")],
            addrs: [
                SocketAddr::new(v4(LEFT), 500),
                SocketAddr::new(v4(RIGHT), 500),
            ],
            seeds: [b"left".to_vec(), b"right".to_vec()],
            trust: Default::default(),
        }
    }
}

impl Pair {
    // The simulated clock starts at a real instant: the engine only
    // compares instants it is given (ike/clippy.toml forbids reading one).
    #[allow(clippy::disallowed_methods)]
    pub fn new(s: Setup) -> Self {
        let [c0, c1] = s.cfg;
        let [p0, p1] = s.peers;
        let [k0, k1] = s.psk;
        let mk = |cfg, peers, psk, seed: &[u8], addr, base| Peer {
            ep: Endpoint::new(cfg, peers, psk, Arc::new(DeterministicProvider::new(seed))),
            addr,
            kernel: FakeKernel::new(base),
            events: Vec::new(),
            sent: Vec::new(),
            received: Vec::new(),
        };
        let now = Instant::now();
        let mut peers = [
            mk(c0, p0, k0, &s.seeds[0], s.addrs[0], 0xc000_0000),
            mk(c1, p1, k1, &s.seeds[1], s.addrs[1], 0xd000_0000),
        ];
        let utc = std::time::UNIX_EPOCH + Duration::from_secs(UTC0);
        for (p, t) in peers.iter_mut().zip(s.trust) {
            p.ep.set_wall_clock(now, utc);
            p.ep.set_trust_store(t);
        }
        Self {
            peers,
            now,
            start: now,
            flight: Vec::new(),
            seq: 0,
            policy: Box::new(|_, _, _| Fate::Deliver),
            hold_kernel: [false, false],
            held: [Vec::new(), Vec::new()],
            nat: None,
            gone: Vec::new(),
            kernel_latency: [None, None],
            kernel_flight: std::collections::VecDeque::new(),
            crl_server: Default::default(),
            hold_crl: [false, false],
            held_crl: Default::default(),
            crl_fetches: Default::default(),
            hold_compute: [false, false],
            held_compute: Default::default(),
            computes: [0, 0],
            eap_asks: Default::default(),
        }
    }

    /// Runs side `i`'s held CPU jobs, the last asked first, and answers
    /// them.
    pub fn release_compute(&mut self, i: usize) {
        let now = self.now;
        while let Some(job) = self.held_compute[i].pop() {
            let done = job.run();
            self.peers[i].ep.handle_computed(now, done);
        }
        self.drive();
    }

    /// What side `i`'s daemon answers to a CRL fetch: the CRLs its
    /// server has at the URIs, or an error if none.
    pub fn crl_answer(&self, i: usize, f: &CrlFetch) -> CrlFetched {
        let found: Vec<Vec<u8>> = f
            .uris
            .iter()
            .filter_map(|u| self.crl_server[i].get(u).cloned())
            .collect();
        CrlFetched {
            req: f.req,
            result: if found.is_empty() {
                Err(format!("no CRL at {}", f.uris.join(", ")))
            } else {
                Ok(found)
            },
        }
    }

    /// Answers side `i`'s held CRL fetches.
    pub fn release_crl(&mut self, i: usize) {
        for f in std::mem::take(&mut self.held_crl[i]) {
            let a = self.crl_answer(i, &f);
            let now = self.now;
            self.peers[i].ep.handle_crl_fetched(now, a);
        }
        self.drive();
    }

    pub fn default_pair() -> Self {
        Self::new(Setup::default())
    }

    pub fn a(&mut self) -> &mut Peer {
        &mut self.peers[0]
    }

    pub fn b(&mut self) -> &mut Peer {
        &mut self.peers[1]
    }

    /// Answers held kernel operations of side `i`.
    pub fn release_kernel(&mut self, i: usize) {
        let ops = std::mem::take(&mut self.held[i]);
        for op in ops {
            self.peers[i].kernel.clock = Some(self.now);
            if let Some(r) = self.peers[i].kernel.handle(op) {
                let now = self.now;
                self.peers[i].ep.handle_kernel_result(now, r);
            }
        }
        self.drive();
    }

    /// Processes every output and every datagram due now, until quiet.
    pub fn drive(&mut self) {
        loop {
            let mut busy = false;
            for i in 0..2 {
                let now = self.now;
                while let Some(t) = self.peers[i].ep.poll_transmit() {
                    busy = true;
                    let n = self.peers[i].sent.len();
                    self.peers[i].sent.push((now, t.clone()));
                    if self.gone.contains(&t.remote.ip()) {
                        continue;
                    }
                    // As the receiver sees it: `local` the sender, `remote` itself.
                    let seen = match (&mut self.nat, i) {
                        (None, _) => {
                            assert_eq!(
                                t.remote.ip(),
                                self.peers[1 - i].addr.ip(),
                                "sent to the wrong address"
                            );
                            Some(t.clone())
                        }
                        (Some(nat), 0) => {
                            assert_eq!(t.remote.ip(), self.peers[1].addr.ip(), "wrong address");
                            Some(Transmit {
                                local: nat.out(t.local),
                                ..t.clone()
                            })
                        }
                        (Some(nat), _) => {
                            assert_eq!(t.remote.ip(), nat.public, "sent past the NAT");
                            nat.back(t.remote).map(|to| Transmit {
                                remote: to,
                                ..t.clone()
                            })
                        }
                    };
                    let Some(t) = seen else {
                        continue;
                    };
                    let fate = (self.policy)(i, n, &t.payload);
                    let mut put = |at: Instant, t: Transmit| {
                        self.seq += 1;
                        self.flight.push((at, self.seq, 1 - i, t));
                    };
                    match fate {
                        Fate::Deliver => put(now, t),
                        Fate::Drop => {}
                        Fate::Duplicate => {
                            put(now, t.clone());
                            put(now, t);
                        }
                        Fate::Delay(d) => put(now + d, t),
                    }
                }
                while let Some(op) = self.peers[i].ep.poll_kernel_op() {
                    busy = true;
                    if self.hold_kernel[i] {
                        self.held[i].push(op);
                        continue;
                    }
                    if let Some(lat) = self.kernel_latency[i].as_mut() {
                        // In order per side: not before the one before.
                        let last = self
                            .kernel_flight
                            .iter()
                            .filter(|(_, s, _)| *s == i)
                            .map(|(t, ..)| *t)
                            .max()
                            .unwrap_or(now);
                        let at = (now + lat()).max(last);
                        self.kernel_flight.push_back((at, i, op));
                        continue;
                    }
                    self.peers[i].kernel.clock = Some(now);
                    if let Some(r) = self.peers[i].kernel.handle(op) {
                        self.peers[i].ep.handle_kernel_result(now, r);
                    }
                }
                while let Some(f) = self.peers[i].ep.poll_crl_fetch() {
                    busy = true;
                    self.crl_fetches[i].push(f.clone());
                    if self.hold_crl[i] {
                        self.held_crl[i].push(f);
                        continue;
                    }
                    let a = self.crl_answer(i, &f);
                    self.peers[i].ep.handle_crl_fetched(now, a);
                }
                while let Some(ask) = self.peers[i].ep.poll_eap_ask() {
                    busy = true;
                    self.eap_asks[i].push(ask);
                }
                while let Some(job) = self.peers[i].ep.poll_compute() {
                    busy = true;
                    self.computes[i] += 1;
                    if self.hold_compute[i] {
                        self.held_compute[i].push(job);
                        continue;
                    }
                    let done = job.run();
                    self.peers[i].ep.handle_computed(now, done);
                }
                while let Some(e) = self.peers[i].ep.poll_event() {
                    busy = true;
                    self.peers[i].events.push((now, e));
                }
            }
            // Complete the kernel operations due now, in order.
            while let Some(pos) = self
                .kernel_flight
                .iter()
                .position(|(at, ..)| *at <= self.now)
            {
                if let Some((_, i, op)) = self.kernel_flight.remove(pos) {
                    busy = true;
                    let now = self.now;
                    self.peers[i].kernel.clock = Some(now);
                    if let Some(r) = self.peers[i].kernel.handle(op) {
                        self.peers[i].ep.handle_kernel_result(now, r);
                    }
                }
            }
            // Deliver the earliest datagram due now.
            self.flight.sort_by_key(|(at, seq, _, _)| (*at, *seq));
            if let Some(pos) = self.flight.iter().position(|(at, ..)| *at <= self.now) {
                let (_, _, to, t) = self.flight.remove(pos);
                let now = self.now;
                let peer = &mut self.peers[to];
                peer.received.push((now, t.payload.clone()));
                // NAT keepalives end in the kernel's ESP-in-UDP socket.
                if t.payload != [0xff] {
                    peer.ep.handle_datagram(now, t.remote, t.local, &t.payload);
                }
                busy = true;
            }
            if !busy {
                return;
            }
        }
    }

    /// Runs until `d` has passed: datagrams, timers, kernel.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.drive();
            let next = [
                self.peers[0].ep.poll_timeout(),
                self.peers[1].ep.poll_timeout(),
                self.flight.iter().map(|(at, ..)| *at).min(),
                self.kernel_flight.iter().map(|(at, ..)| *at).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for p in &mut self.peers {
                        p.ep.handle_timeout(now);
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

    /// Initiates `peer` from side `i` and runs a minute.
    pub fn connect(&mut self, i: usize, peer: &str) -> IkeSaId {
        let now = self.now;
        let id = self.peers[i].ep.initiate(now, peer, &[]).unwrap();
        self.run_for(Duration::from_secs(60));
        id
    }

    /// Asserts both kernels hold matching Child SAs: each SPI in of one is
    /// the SPI out of the other, with the same keys crosswise.
    pub fn assert_kernels_match(&self) {
        let (a, b) = (&self.peers[0].kernel, &self.peers[1].kernel);
        assert_eq!(
            a.installed.len(),
            b.installed.len(),
            "kernels differ in size"
        );
        for x in a.installed.values() {
            let y = b
                .installed
                .values()
                .find(|y| y.spi_in == x.spi_out)
                .unwrap_or_else(|| panic!("no SA with SPI {:08x} on the other side", x.spi_out));
            assert_eq!(y.spi_out, x.spi_in);
            assert_eq!(x.protocol, y.protocol);
            assert_eq!(x.mode, y.mode);
            assert_eq!(x.suite, y.suite);
            assert_eq!(x.encr_out.as_bytes(), y.encr_in.as_bytes());
            assert_eq!(x.integ_out.as_bytes(), y.integ_in.as_bytes());
            assert_eq!(x.encr_in.as_bytes(), y.encr_out.as_bytes());
            assert_eq!(x.integ_in.as_bytes(), y.integ_out.as_bytes());
            assert_ne!(
                (x.encr_in.as_bytes(), x.integ_in.as_bytes()),
                (x.encr_out.as_bytes(), x.integ_out.as_bytes()),
                "directions have their own keys"
            );
            assert_eq!(x.local_ts, y.remote_ts);
            assert_eq!(x.remote_ts, y.local_ts);
            assert_eq!(x.local, y.remote);
            assert_eq!(x.remote, y.local);
            assert_ne!(x.initiator, y.initiator);
            assert_eq!(
                x.ipcomp.map(|c| (c.cpi_in, c.cpi_out)),
                y.ipcomp.map(|c| (c.cpi_out, c.cpi_in)),
                "IPComp CPIs"
            );
        }
    }

    /// Asserts each kernel holds, for each reqid with policies, exactly
    /// one inbound and one outbound SA, of the same Child SA, matching a
    /// pair on the other side; no SA without policies, no larval SPI.
    pub fn assert_one_pair_per_child(&self) {
        for (i, p) in self.peers.iter().enumerate() {
            let k = &p.kernel;
            assert!(
                k.larval.is_empty(),
                "side {i} has allocated SPIs: {:?}",
                k.larval
            );
            assert!(
                k.cpis.is_empty(),
                "side {i} has allocated CPIs: {:?}",
                k.cpis
            );
            for r in &k.policies {
                let ins: Vec<_> = k.sa_in.iter().filter(|(_, (_, x))| x == r).collect();
                let outs: Vec<_> = k.sa_out.iter().filter(|(_, (_, x))| x == r).collect();
                assert_eq!(ins.len(), 1, "side {i} reqid {r}: inbound SAs {ins:?}");
                assert_eq!(outs.len(), 1, "side {i} reqid {r}: outbound SAs {outs:?}");
                assert_eq!(
                    ins[0].1.0, outs[0].1.0,
                    "side {i} reqid {r}: SAs of two children"
                );
                let other = &self.peers[1 - i].kernel;
                assert!(
                    other.sa_out.contains_key(ins[0].0) && other.sa_in.contains_key(outs[0].0),
                    "side {i} reqid {r}: no matching pair on the other side"
                );
            }
            for (_, r) in k.sa_in.values().chain(k.sa_out.values()) {
                assert!(k.policies.contains(r), "side {i}: SA without policies");
            }
            assert_eq!(
                k.installed.len(),
                k.policies.len(),
                "side {i}: children {:?}",
                k.installed.keys()
            );
        }
        self.assert_kernels_match();
    }

    /// Asserts each side sent, datagram for datagram, what the same side
    /// of `other` sent (a run with the work computed elsewhere against one
    /// computing inline: the deterministic provider makes them equal).
    pub fn assert_sent_what(&self, other: &Pair) {
        for i in 0..2 {
            let ours: Vec<_> = self.peers[i].sent.iter().map(|(_, t)| &t.payload).collect();
            let theirs: Vec<_> = other.peers[i]
                .sent
                .iter()
                .map(|(_, t)| &t.payload)
                .collect();
            assert_eq!(ours, theirs, "side {i}");
        }
    }

    /// Asserts neither kernel holds anything (no SA, no larval SPI).
    pub fn assert_kernels_empty(&self) {
        for (i, p) in self.peers.iter().enumerate() {
            assert!(
                p.kernel.installed.is_empty(),
                "side {i} still has SAs installed"
            );
            assert!(
                p.kernel.larval.is_empty(),
                "side {i} still has allocated SPIs"
            );
            assert!(
                p.kernel.cpis.is_empty(),
                "side {i} still has allocated CPIs"
            );
            assert!(
                p.kernel.sa_in.is_empty()
                    && p.kernel.sa_out.is_empty()
                    && p.kernel.policies.is_empty(),
                "side {i} still has SAs or policies"
            );
        }
    }
}
