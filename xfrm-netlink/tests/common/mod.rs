//! Shared helpers for the kernel tests: throwaway network namespaces.

// setns(2) has no safe wrapper in std; it is the only unsafe call here and
// only moves the test's own thread into a namespace the test created.
#![allow(unsafe_code)]
// Test helpers outside #[test] fns: failing loudly is their job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::fs::File;
use std::future::Future;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use xfrm_netlink::*;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A named network namespace; the test thread is moved into it. Removed on
/// drop (the thread keeps it alive until the test ends).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates a namespace and moves the calling thread into it.
    pub fn enter() -> Self {
        let ns = Self::create();
        ns.switch_to();
        ns
    }

    /// Creates a namespace (with `lo` up) without entering it.
    pub fn create() -> Self {
        let name = format!(
            "xfrmtest-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap_or_else(|e| panic!("cannot run `ip netns add` (iproute2 missing?): {e}"));
        assert!(
            out.status.success(),
            "`ip netns add {name}` failed: {} -- these tests need root and network namespaces",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Moves the calling thread into this namespace: sockets opened from
    /// now on belong to it (sockets opened before stay where they were).
    pub fn switch_to(&self) {
        let ns = self;
        let f = File::open(format!("/run/netns/{}", ns.name))
            .unwrap_or_else(|e| panic!("cannot open /run/netns/{}: {e}", ns.name));
        // SAFETY: a valid namespace fd; setns only changes this thread's
        // network namespace.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns into {} failed: {} -- these tests need root (CAP_SYS_ADMIN)",
            ns.name,
            std::io::Error::last_os_error()
        );
    }

    /// Runs `ip -n <ns> args...` and asserts success.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        let out = Command::new("ip").args(&full).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {}: {}",
            full.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A veth pair with 192.0.2.2/24 on one end (traffic over `lo` skips
    /// XFRM: `lo` has `disable_xfrm=1`).
    pub fn veth(&self) {
        self.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        self.ip(&["addr", "add", "192.0.2.2/24", "dev", "v0"]);
        self.ip(&["link", "set", "v0", "up"]);
        self.ip(&["link", "set", "v1", "up"]);
    }

    pub fn ip_output(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        let out = Command::new("ip").args(&full).output().expect("run ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs an async test body on a current-thread runtime inside a fresh
/// namespace.
pub fn in_netns<F, Fut>(body: F)
where
    F: FnOnce(Netns, Handle) -> Fut,
    Fut: Future<Output = ()>,
{
    let ns = Netns::enter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let (conn, handle) = new_connection().expect("XFRM netlink socket");
        tokio::spawn(conn);
        body(ns, handle).await;
    });
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

pub fn prefix(a: &str, len: u8) -> IpPrefix {
    IpPrefix::new(ip(a), len).expect("prefix")
}

pub async fn with_timeout<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A UDP socket on `port` that the kernel decapsulates ESP-in-UDP on
/// (`UDP_ENCAP_ESPINUDP`), as an IKE daemon's port-4500 socket.
pub fn udp_encap_socket(addr: IpAddr, port: u16) -> std::net::UdpSocket {
    let sock = std::net::UdpSocket::bind((addr, port)).expect("bind UDP encap socket");
    let encap: libc::c_int = 2; // UDP_ENCAP_ESPINUDP
    // SAFETY: valid fd owned by `sock`; `encap` is a live c_int of the
    // given size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_ENCAP,
            (&encap as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "UDP_ENCAP: {}", std::io::Error::last_os_error());
    sock
}

/// Two namespaces joined by a veth pair: `a` has 10.9.0.1/24, `b` 10.9.0.2/24.
pub fn veth_pair() -> (Netns, Netns) {
    let a = Netns::create();
    let b = Netns::create();
    a.ip(&[
        "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &b.name,
    ]);
    a.ip(&["addr", "add", "10.9.0.1/24", "dev", "va"]);
    a.ip(&["link", "set", "va", "up"]);
    b.ip(&["addr", "add", "10.9.0.2/24", "dev", "vb"]);
    b.ip(&["link", "set", "vb", "up"]);
    (a, b)
}
