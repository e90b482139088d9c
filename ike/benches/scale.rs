//! Scale inside one iked (docs/performance.md, benchmark 4), in process: N IKE SAs
//! with one Child SA each between two `Endpoint`s (the real
//! `DefaultProvider`; the kernel answered at once by the bench, since
//! 10,000 Child SAs need ESP and this machine's kernel has none), for
//! N = 1,000, 5,000, 10,000. Reported per N:
//!
//! - heap per SA of each side: the bytes an endpoint frees when dropped
//!   (a counting global allocator), over N;
//! - the time of a status snapshot (`Endpoint::ike_sas()` collected: what
//!   the daemon turns into `ikectl status`);
//! - the time to find the SA of an incoming message: `handle_datagram` of
//!   a header-only INFORMATIONAL with a known SPIr and a wrong SPIi, so it
//!   is dropped right after the lookup (no decryption), to SAs in random
//!   order, to one SA over and over (the same work, always in the CPU
//!   cache), and with an unknown SPI.
//!
//! `cargo bench -p ike --bench scale`; without `--bench` (as
//! `cargo test --all-targets` runs it) it does N = 100 once, as a smoke
//! test, and prints both sides' heap per SA (`SCALE_N=1000` for another
//! N). For a heap profile of what the SAs hold, `SCALE_LEAK=1` ends the
//! run without dropping the endpoints, so that heaptrack's "leaked"
//! figures are the endpoints' state:
//! `SCALE_N=1000 SCALE_LEAK=1 heaptrack target/release/deps/scale-<hash>`,
//! then `heaptrack_print --flamegraph-cost-type leaked -F stacks.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A benchmark program: it times itself with the clock and reads its command
// line and environment, which ike/clippy.toml forbids the library.
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use ike::crypto::{CryptoProvider, DefaultProvider, Secret, proposal};
use ike::sa::{
    AddrSpec, ChildCfg, ChildLifetimes, Endpoint, EndpointConfig, Event, IkeLifetimes, KernelOk,
    KernelOp, KernelResult, Mode, PeerCfg, PskStore, TsCfg,
};
use ike::wire::codes::{ExchangeType, ProtocolId};
use ike::wire::{AddressRange, Flags, Header, Identification, Message, TrafficSelector};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// A counting allocator (the bench only): it forwards every call to
// `System` unchanged and keeps the number of live bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn net(a: &str, b: &str) -> TsCfg {
    TsCfg::Selector(TrafficSelector::Ipv4(AddressRange::any(
        a.parse().unwrap(),
        b.parse().unwrap(),
    )))
}

fn peer_cfg(me: IpAddr, peer: IpAddr, mine: TsCfg, theirs: TsCfg) -> PeerCfg {
    PeerCfg {
        name: "bench".into(),
        local_addrs: vec![AddrSpec::Addr(me)],
        remote_addrs: vec![AddrSpec::Addr(peer)],
        local_port: 500,
        remote_port: 500,
        ike_proposals: proposal::parse(ProtocolId::IKE, "aes256gcm16-prfsha256-x25519").unwrap(),
        local_id: Identification::fqdn(&format!("{me}.example")),
        remote_id: Some(Identification::fqdn(&format!("{peer}.example"))),
        children: vec![Arc::new(ChildCfg {
            name: "net".into(),
            local_ts: vec![mine],
            remote_ts: vec![theirs],
            proposals: proposal::parse(ProtocolId::ESP, "aes256gcm16").unwrap(),
            mode: Mode::Tunnel,
            sa_opts: Default::default(),
            lifetimes: ChildLifetimes::default(),
            policy: Default::default(),
            inactivity: Default::default(),
        })],
        encap: false,
        mobike: false,
        lifetimes: IkeLifetimes::default(),
        dpd_delay: std::time::Duration::ZERO,
        local_auth: Default::default(),
        remote_auth: Default::default(),
        send_cert: Default::default(),
        send_certreq: true,
        fragmentation: Default::default(),
        policy: Default::default(),
        // N IKE SAs of one connection, as N peers with their own
        // identities would be: none sends INITIAL_CONTACT, which would
        // make the responder remove the others of the identity pair.
        behaviour: {
            let mut b = ike::config::Behaviour::default();
            b.unique = ike::config::Unique::Never;
            b
        },
        cp: Default::default(),
        redirect: None,
        rounds: Default::default(),
    }
}

struct Run {
    n: usize,
    setup: Duration,
    heap_per_sa: [f64; 2],
    status: Duration,
    lookup_hit: Duration,
    lookup_same: Duration,
    lookup_miss: Duration,
}

fn run(n: usize, lookups: u32) -> Run {
    let l: IpAddr = IpAddr::V4([192, 0, 2, 1].into());
    let r: IpAddr = IpAddr::V4([198, 51, 100, 1].into());
    let addr = [SocketAddr::new(l, 500), SocketAddr::new(r, 500)];
    let psk: Arc<dyn PskStore> =
        Arc::new(|_: &Identification, _: &Identification| Some(Secret::from_slice(b"bench")));
    let provider: Arc<dyn CryptoProvider> = Arc::new(DefaultProvider::new());
    let mk = |c: PeerCfg| {
        let cfg = EndpointConfig {
            cookie_threshold: None,
            // Thousands of initiations from one address at once.
            dos: ike::sa::DosLimits {
                cookie_threshold_ip: None,
                block_threshold: None,
                ..Default::default()
            },
            ..EndpointConfig::default()
        };
        Endpoint::new(cfg, vec![c], psk.clone(), provider.clone())
    };
    let mut ep = [
        mk(peer_cfg(
            l,
            r,
            net("10.1.0.0", "10.1.255.255"),
            net("10.2.0.0", "10.2.255.255"),
        )),
        mk(peer_cfg(
            r,
            l,
            net("10.2.0.0", "10.2.255.255"),
            net("10.1.0.0", "10.1.255.255"),
        )),
    ];
    let now = Instant::now();
    let t = Instant::now();
    for _ in 0..n {
        ep[0].initiate(now, "bench", &[]).unwrap();
    }
    let mut spi = 0x1000u32;
    let mut up = [0usize; 2];
    while up != [n, n] {
        let mut progress = false;
        for side in 0..2 {
            while let Some(op) = ep[side].poll_kernel_op() {
                progress = true;
                let outcome = match op {
                    KernelOp::AllocSpi { .. } => {
                        spi += 1;
                        Ok(KernelOk::SpiAllocated(spi))
                    }
                    _ => Ok(KernelOk::Done),
                };
                if let Some(req) = op.req() {
                    ep[side].handle_kernel_result(now, KernelResult { req, outcome });
                }
            }
            while let Some(tx) = ep[side].poll_transmit() {
                progress = true;
                let to = 1 - side;
                ep[to].handle_datagram(now, addr[to], addr[side], &tx.payload);
            }
            while let Some(e) = ep[side].poll_event() {
                match e {
                    Event::ChildInstalled { .. } => up[side] += 1,
                    Event::IkeFailed { reason, .. } => panic!("IKE SA failed: {reason:?}"),
                    Event::ChildFailed { reason, .. } => panic!("child failed: {reason:?}"),
                    _ => {}
                }
            }
        }
        assert!(progress, "stalled at {up:?} of {n}");
    }
    let setup = t.elapsed();
    assert_eq!((ep[0].len(), ep[1].len()), (n, n));

    // Status snapshot of the responder's SAs.
    let mut status = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let snap: Vec<_> = ep[1].ike_sas().collect();
        status = status.min(t.elapsed());
        drop(snap);
    }
    let snap: Vec<_> = ep[1].ike_sas().collect();
    assert!(snap.iter().all(|s| s.children.len() == 1));

    // Messages to the responder for its SAs in a scrambled order.
    let msgs: Vec<Vec<u8>> = snap
        .iter()
        .map(|s| {
            Message {
                header: Header {
                    spi_i: s.spi_i ^ 1,
                    spi_r: s.spi_r,
                    minor_version: 0,
                    exchange: ExchangeType::INFORMATIONAL,
                    flags: Flags::INITIATOR,
                    message_id: 7,
                },
                payloads: Vec::new(),
            }
            .emit()
            .unwrap()
        })
        .collect();
    drop(snap);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut order: Vec<usize> = (0..lookups)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        })
        .collect();
    let t = Instant::now();
    for &i in &order {
        ep[1].handle_datagram(now, addr[1], addr[0], &msgs[i]);
    }
    let lookup_hit = t.elapsed() / lookups;
    // The same SA every time: the same work with the SA in the cache.
    let t = Instant::now();
    for _ in 0..lookups {
        ep[1].handle_datagram(now, addr[1], addr[0], &msgs[0]);
    }
    let lookup_same = t.elapsed() / lookups;
    assert!(ep[1].poll_transmit().is_none(), "the probes are dropped");
    let mut miss = msgs[0].clone();
    miss[8..16].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes());
    let t = Instant::now();
    for _ in 0..lookups {
        ep[1].handle_datagram(now, addr[1], addr[0], &miss);
    }
    let lookup_miss = t.elapsed() / lookups;
    order.clear();
    drop(msgs);

    // Heap of each side: what dropping it frees.
    let [a, b] = ep;
    if std::env::var_os("SCALE_LEAK").is_some() {
        std::mem::forget(a);
        std::mem::forget(b);
        std::process::exit(0);
    }
    let before = live();
    drop(b);
    let heap_b = before - live();
    let before = live();
    drop(a);
    let heap_a = before - live();
    Run {
        n,
        setup,
        heap_per_sa: [heap_a as f64 / n as f64, heap_b as f64 / n as f64],
        status,
        lookup_hit,
        lookup_same,
        lookup_miss,
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if !bench {
        let n = std::env::var("SCALE_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let r = run(n, 1000);
        println!(
            "scale bench: smoke run ok, {} SAs, {:.0} / {:.0} bytes per SA",
            r.n, r.heap_per_sa[0], r.heap_per_sa[1]
        );
        return;
    }
    println!(
        "{:>6} {:>10} {:>14} {:>14} {:>12} {:>14} {:>14} {:>14}",
        "N",
        "set-up",
        "heap/SA init",
        "heap/SA resp",
        "status",
        "lookup random",
        "lookup same",
        "lookup miss"
    );
    for n in [1000, 5000, 10000] {
        let r = run(n, 200_000);
        println!(
            "{:>6} {:>8.2} s {:>12.0} B {:>12.0} B {:>9.2} ms {:>11.0} ns {:>11.0} ns {:>11.0} ns",
            r.n,
            r.setup.as_secs_f64(),
            r.heap_per_sa[0],
            r.heap_per_sa[1],
            r.status.as_secs_f64() * 1e3,
            r.lookup_hit.as_nanos(),
            r.lookup_same.as_nanos(),
            r.lookup_miss.as_nanos(),
        );
    }
}
