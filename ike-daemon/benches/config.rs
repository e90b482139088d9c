//! Memory of loading a configuration with many connections (docs/performance.md,
//! section 5: the tunnel benchmark's N = 1,000 connections made loading the daemon's peak
//! memory). The configuration is the tunnel benchmark's: one connection
//! per tunnel with one child, PSK, one secret (docs/performance.md,
//! section 3). For swanctl.conf and for the same configuration as iked
//! YAML (`ikectl convert`), the daemon's own loader
//! (`ike_daemon::daemon::load_config_as`) reads the file; a counting allocator
//! gives, per connection:
//!
//! - peak: the most heap in use during the load, above what was in use
//!   before it (the text, the parse trees and the result at once);
//! - kept: the heap the loaded `Config` holds;
//! - peers: the heap of the peer configurations the daemon builds from it
//!   (`ike::from_config::peers`);
//! - load: the load's time per connection (one run; it should not grow
//!   with N).
//!
//! `cargo bench -p ike-daemon --bench config` (N = 1,000 and 10,000);
//! without `--bench` (as `cargo test --all-targets` runs it) N = 100 once
//! (`CONFIG_N` for another N), as a smoke test that also checks the loads
//! agree. `CONFIG_LEAK=1` ends the run after the first load without
//! freeing the configuration and the peer configurations, so that
//! heaptrack's "leaked" bytes are what they hold:
//! `CONFIG_N=1000 CONFIG_LEAK=1 heaptrack target/release/deps/config-<hash>`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicIsize, Ordering};

use ike::config::{Config, ConfigFormat};
use ike::from_config::{Credentials, Ports, Resolved, peers};
use ike_daemon::daemon::load_config_as;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// A counting allocator (the bench only): it forwards every call to
// `System` unchanged and keeps the live bytes and their peak.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        grew(new as isize - l.size() as isize);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tunnel benchmark's gw-a swanctl.conf with `n` connections
/// (tests/lab/scenarios/bench-tunnels.sh `conf a`).
fn swanctl_conf(n: usize) -> String {
    let mut s = String::from("connections {\n");
    for k in 0..n {
        let (x, y) = (k / 256, k % 256);
        write!(
            s,
            "    t{k} {{\n        local_addrs = 192.0.2.1\n        remote_addrs = 192.0.2.2\n\
             \x20       proposals = aes256gcm16-prfsha256-x25519\n\
             \x20       local {{\n            auth = psk\n            id = a{k}.example\n        }}\n\
             \x20       remote {{\n            auth = psk\n            id = b{k}.example\n        }}\n\
             \x20       children {{\n            c{k} {{\n\
             \x20               local_ts = 10.1.{x}.{y}/32\n                remote_ts = 10.2.{x}.{y}/32\n\
             \x20               esp_proposals = aes256gcm16\n                mode = tunnel\n\
             \x20               start_action = start\n            }}\n        }}\n    }}\n"
        )
        .unwrap();
    }
    s.push_str("}\nsecrets {\n    ike-all {\n        secret = bench-not-a-secret\n    }\n}\n");
    s
}

struct Load {
    config: Config,
    time: std::time::Duration,
    peak: isize,
    kept: isize,
    peers: isize,
}

fn load(path: &Path, format: ConfigFormat) -> Load {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let t = std::time::Instant::now();
    let config = load_config_as(path, Some(format)).unwrap();
    let time = t.elapsed();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let kept = LIVE.load(Ordering::Relaxed) - before;
    let p = peers(
        &config,
        &Resolved::new(),
        Ports::default(),
        &Credentials::default(),
    )
    .unwrap();
    let peers = LIVE.load(Ordering::Relaxed) - before - kept;
    if std::env::var_os("CONFIG_LEAK").is_some() {
        // For a heap profile of what a loaded configuration holds
        // (heaptrack's "leaked" bytes), as the scale bench's SCALE_LEAK.
        std::mem::forget((config, p));
        std::process::exit(0);
    }
    drop(p);
    Load {
        config,
        time,
        peak,
        kept,
        peers,
    }
}

fn run(n: usize) -> [Load; 2] {
    let dir = std::env::temp_dir().join(format!("iked-config-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("swanctl.conf");
    let yaml = dir.join("iked.yaml");
    let text = swanctl_conf(n);
    std::fs::write(&conf, &text).unwrap();
    let tree = swanctl_compat::parse_tree_str(&text, "swanctl.conf").unwrap();
    std::fs::write(&yaml, swanctl_compat::to_yaml(&tree)).unwrap();
    drop((text, tree));
    let s = load(&conf, ConfigFormat::Swanctl);
    let y = load(&yaml, ConfigFormat::Yaml);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(s.config.connections().len(), n);
    // The same connections (their recorded lines differ).
    let same = s
        .config
        .connections()
        .iter()
        .zip(y.config.connections())
        .all(|(a, b)| {
            a.name == b.name
                && a.proposals == b.proposals
                && a.local == b.local
                && a.remote == b.remote
                && a.children.len() == b.children.len()
                && a.children.iter().zip(&b.children).all(|(x, y)| {
                    x.local_ts == y.local_ts
                        && x.remote_ts == y.remote_ts
                        && x.esp_proposals == y.esp_proposals
                })
        });
    assert!(same, "swanctl.conf and its YAML loaded differently");
    [s, y]
}

fn per(bytes: isize, n: usize) -> f64 {
    bytes as f64 / n as f64
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let one = [std::env::var("CONFIG_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)];
    let ns: &[usize] = if bench { &[1000, 10000] } else { &one };
    println!(
        "{:>6} {:>8} {:>14} {:>14} {:>14} {:>12}",
        "N", "format", "peak/conn", "kept/conn", "peers/conn", "load/conn"
    );
    for &n in ns {
        for (name, l) in ["swanctl", "yaml"].iter().zip(run(n)) {
            println!(
                "{n:>6} {name:>8} {:>12.0} B {:>12.0} B {:>12.0} B {:>9.2} µs",
                per(l.peak, n),
                per(l.kept, n),
                per(l.peers, n),
                l.time.as_secs_f64() * 1e6 / n as f64
            );
        }
    }
}
