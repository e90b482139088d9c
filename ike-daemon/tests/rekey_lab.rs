//! Rekeying against a real kernel, in the UML kernel lab (tests/lab, needs
//! root), with lifetimes of a few seconds and a steady stream of datagrams
//! through the tunnel that must not lose one:
//!
//! ```text
//! host-a 10.1.0.2 --- 10.1.0.1 gw-a 192.0.2.1 === 192.0.2.2 gw-b 10.2.0.1 --- 10.2.0.2 host-b
//!   stream sender/receiver        iked                 iked or charon             echo
//! ```
//!
//! One boot for all cases (`rekeys_without_loss`), in this order:
//!
//! 1. iked <-> iked with ESP held 30 ms behind IKE on the wan links: the
//!    rekey's Delete overtakes the last packets on the old SAs; without
//!    `--delete-rekeyed-delay` packets are lost (the control), with it none.
//! 2. iked <-> iked, timers: 20 Child SA rekeys and 5 IKE SA rekeys.
//! 3. iked <-> iked, both with the same timers and no jitter, PFS:
//!    simultaneous rekeys (collisions) of Child and IKE SAs.
//! 4. iked <-> iked, byte limits: the kernel's soft EXPIRE starts the
//!    rekeys; then a hard limit without a soft one, in bytes and then in
//!    packets, removes the child cleanly.
//! 5. iked (gw-a) <-> charon (gw-b), both rekeying on their own timers, PFS.
//! 6. iked <-> charon, a packet limit without jitter on both sides (both
//!    kernels expire at once) and equal IKE timers: simultaneous rekeys.
//! 7. iked <-> iked, reauthentication (`reauth_time` 2 s on gw-a):
//!    make-before-break, the same reqid and policies throughout.
//! 8. iked <-> charon, reauthentication by iked (charon as responder
//!    sends on its new Child SA as soon as it answers IKE_AUTH: iked's
//!    inbound SA went in before IKE_AUTH) and by charon
//!    (`make_before_break = yes`; iked as responder holds its outbound SA
//!    back until the old Child SA goes). Neither may lose a datagram.
//!
//! Every case counts the stream's datagrams (sent from host-a, echoed by
//! host-b, so both directions cross every SA) and fails on one lost; it
//! watches the policies (`ip xfrm monitor`: none deleted while the tunnel
//! lives), the route and the number of SAs, and at the end wants exactly
//! one pair of SAs per child in each kernel, with the SPIs `ikectl status`
//! shows (plus, for a second, the inbound SAs of rekeyed Child SAs, which
//! both daemons keep for late packets).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ike::control::{self, IkeSaStatus};
use iked_lab::net::enter_netns;
use iked_lab::{guest_out, in_uml, is_guest, lab_sh, repo_root, sh, wait_until};

mod common;
use common::Iked;
const PSK: &str = "rekey lab psk, not a secret 0123456789";

// ---------------------------------------------------------------------------
// The daemons.

/// ESP without and with PFS (a key exchange in each Child SA rekey).
const ESP: &str = "aes256gcm16";
const ESP_PFS: &str = "aes256gcm16-x25519";

/// iked's YAML for gw-a or gw-b; `ike` and `child` are extra lines for the
/// connection and the child (lifetimes).
fn iked_yaml(a_side: bool, esp: &str, ike: &[&str], child: &[&str]) -> String {
    let (local, remote, lid, rid, lts, rts) = if a_side {
        (
            "192.0.2.1",
            "192.0.2.2",
            "a",
            "b",
            "10.1.0.0/24",
            "10.2.0.0/24",
        )
    } else {
        (
            "192.0.2.2",
            "192.0.2.1",
            "b",
            "a",
            "10.2.0.0/24",
            "10.1.0.0/24",
        )
    };
    let mut s = format!(
        "connections:
  site:
    local_addrs: [{local}]
    remote_addrs: [{remote}]
    proposals: [aes256gcm16-prfsha256-x25519]
    local:  {{ auth: psk, id: {lid}.rekey.example }}
    remote: {{ auth: psk, id: {rid}.rekey.example }}
"
    );
    for l in ike {
        writeln!(s, "    {l}").unwrap();
    }
    write!(
        s,
        "    children:
      lan:
        local_ts: [{lts}]
        remote_ts: [{rts}]
        esp_proposals: [{esp}]
"
    )
    .unwrap();
    for l in child {
        writeln!(s, "        {l}").unwrap();
    }
    write!(
        s,
        "secrets:
  ike:
    - {{ ids: [a.rekey.example, b.rekey.example], secret: \"{PSK}\" }}
"
    )
    .unwrap();
    s
}

/// charon's swanctl.conf for gw-b; `ike` and `child` are extra settings.
fn charon_conf(esp: &str, ike: &[&str], child: &[&str]) -> String {
    let mut s = String::from(
        "connections {
    site {
        version = 2
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes256gcm16-prfsha256-x25519
        mobike = no
",
    );
    if !ike.iter().any(|l| l.starts_with("reauth_time")) {
        s.push_str("        reauth_time = 0\n");
    }
    for l in ike {
        writeln!(s, "        {l}").unwrap();
    }
    s.push_str(
        "        local {
            auth = psk
            id = b.rekey.example
        }
        remote {
            auth = psk
            id = a.rekey.example
        }
        children {
            lan {
                local_ts = 10.2.0.0/24
                remote_ts = 10.1.0.0/24
",
    );
    writeln!(s, "                esp_proposals = {esp}").unwrap();
    for l in child {
        writeln!(s, "                {l}").unwrap();
    }
    write!(
        s,
        "            }}
        }}
    }}
}}
secrets {{
    ike-site {{
        id-a = a.rekey.example
        id-b = b.rekey.example
        secret = \"{PSK}\"
    }}
}}
"
    )
    .unwrap();
    s
}

/// iked in `ns` keeping the inbound SAs of rekeyed Child SAs for 1 s.
fn start_iked(ns: &'static str, tag: &str, conf_text: &str) -> Iked {
    iked_with(ns, tag, conf_text, "1")
}

fn iked_with(ns: &'static str, tag: &str, conf_text: &str, rekeyed_delay: &str) -> Iked {
    Iked::spawn(
        ns,
        &format!("{tag}-{ns}.yaml"),
        &format!("{tag}-iked-{ns}.log"),
        conf_text,
        &["--delete-rekeyed-delay", rekeyed_delay],
    )
}

/// Lines of `i`'s log containing every one of `parts`.
fn child_rekeys(i: &Iked) -> usize {
    // The daemon's line (`CHILD SA lan{n} of IKE SA ... rekeyed to lan{m}`).
    i.log_lines_with(&["CHILD SA lan", "rekeyed to"])
}

fn ike_rekeys(i: &Iked) -> usize {
    // The protocol engine's line, once per rekey in either role.
    i.log_lines_with(&["IKE SA ", "rekeyed to", "SPIs"])
}

fn charon_log() -> String {
    std::fs::read_to_string(guest_out().join("charon-gw-b/charon.log")).unwrap_or_default()
}

fn swanctl(args: &str) -> String {
    lab_sh(&format!("lab_swanctl gw-b {args}"))
}

// ---------------------------------------------------------------------------
// The kernels.

/// The SAs in a namespace's kernel: (spi, src, dst).
fn kernel_sas(ns: &str) -> Vec<(String, String, String)> {
    let text = sh(&format!("ip -n {ns} xfrm state"));
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if l.starts_with("src ") && w.len() >= 4 {
            cur = Some((w[1].to_owned(), w[3].to_owned()));
        } else if let (Some((src, dst)), Some(i)) =
            (cur.as_ref(), w.iter().position(|x| *x == "spi"))
        {
            out.push((w[i + 1].to_owned(), src.clone(), dst.clone()));
            cur = None;
        }
    }
    out
}

/// IPsec policies (with a template) in a namespace's kernel.
fn policies(ns: &str) -> usize {
    sh(&format!("ip -n {ns} xfrm policy"))
        .matches("tmpl")
        .count()
}

fn route_220(ns: &str, dst: &str) -> bool {
    sh(&format!(
        "ip -n {ns} route show table 220 2>/dev/null || true"
    ))
    .contains(dst)
}

fn kernel_is_clean(ns: &str) -> bool {
    kernel_sas(ns).is_empty()
        && policies(ns) == 0
        && sh(&format!(
            "ip -n {ns} route show table 220 2>/dev/null || true"
        ))
        .trim()
        .is_empty()
}

/// `ip xfrm monitor` of both gateways into files, for the whole case.
struct Monitor {
    procs: Vec<(String, Child, PathBuf)>,
}

impl Monitor {
    fn start(tag: &str) -> Monitor {
        let mut procs = Vec::new();
        for ns in ["gw-a", "gw-b"] {
            let path = guest_out().join(format!("{tag}-xfrm-monitor-{ns}.txt"));
            let f = std::fs::File::create(&path).unwrap();
            let c = Command::new("ip")
                .args(["-n", ns, "xfrm", "monitor"])
                .stdout(f)
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            procs.push((ns.to_owned(), c, path));
        }
        // ip needs a moment to subscribe.
        std::thread::sleep(Duration::from_millis(200));
        Monitor { procs }
    }

    /// Stops the monitors; returns, per namespace, the events that deleted
    /// a policy (none may while the tunnel lives).
    fn stop(mut self) -> Vec<String> {
        let mut bad = Vec::new();
        for (ns, c, path) in &mut self.procs {
            let _ = c.kill();
            let _ = c.wait();
            let text = std::fs::read_to_string(&*path).unwrap_or_default();
            // Events are blocks: a header line, then indented lines. A
            // policy's block has its direction.
            let mut block = String::new();
            let mut flush = |block: &mut String| {
                let policy = ["dir in", "dir out", "dir fwd"]
                    .iter()
                    .any(|d| block.contains(d));
                if block.contains("Deleted") && policy {
                    bad.push(format!("{ns}: {}", block.trim()));
                }
                block.clear();
            };
            for l in text.lines() {
                if !l.starts_with(' ') && !l.starts_with('\t') {
                    flush(&mut block);
                }
                block.push_str(l);
                block.push('\n');
            }
            flush(&mut block);
        }
        bad
    }
}

// ---------------------------------------------------------------------------
// The stream: host-a sends numbered datagrams at a fixed rate to host-b,
// which echoes them; a datagram counts as received when its echo is back.

struct Stream {
    stop: Arc<AtomicBool>,
    /// The echo stops after the sender's last echoes are back.
    stop_echo: Arc<AtomicBool>,
    client: JoinHandle<StreamResult>,
    echo: JoinHandle<()>,
    /// The drop counters when it started ([`drop_counters`]).
    before: std::collections::BTreeMap<String, u64>,
}

struct StreamResult {
    sent: u32,
    received: u32,
    /// Lost datagrams: (sequence number, wall-clock time it was sent).
    lost: Vec<(u32, SystemTime)>,
    duplicates: u32,
    /// Datagrams host-a's socket refused to send (counted as lost too).
    send_errors: u32,
    /// The drop counters that moved while the stream ran: where a lost
    /// datagram went (an XFRM error in a gateway, a full socket buffer).
    counters: Vec<String>,
}

/// The kernels' drop counters that say where a datagram went: the XFRM
/// errors of both gateways (/proc/net/xfrm_stat: no SA for an SPI, a
/// policy without SA, ...) and the UDP errors of both hosts.
fn drop_counters() -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for ns in ["gw-a", "gw-b"] {
        let text = sh(&format!("ip netns exec {ns} cat /proc/net/xfrm_stat"));
        for l in text.lines() {
            let mut it = l.split_whitespace();
            if let (Some(k), Some(v)) = (it.next(), it.next().and_then(|v| v.parse().ok())) {
                m.insert(format!("{ns} {k}"), v);
            }
        }
    }
    for ns in ["host-a", "host-b"] {
        let text = sh(&format!("ip netns exec {ns} cat /proc/net/snmp"));
        let udp: Vec<&str> = text.lines().filter(|l| l.starts_with("Udp:")).collect();
        if let [names, values] = udp[..] {
            for (k, v) in names
                .split_whitespace()
                .zip(values.split_whitespace())
                .skip(1)
            {
                if k.contains("Errors") || k == "NoPorts" {
                    m.insert(format!("{ns} Udp{k}"), v.parse().unwrap_or(0));
                }
            }
        }
    }
    m
}

impl std::fmt::Display for StreamResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {}, received {}, lost {}",
            self.sent,
            self.received,
            self.lost.len()
        )?;
        if self.duplicates > 0 {
            write!(f, ", {} duplicates", self.duplicates)?;
        }
        if self.send_errors > 0 {
            write!(f, ", {} not sent (socket error)", self.send_errors)?;
        }
        if !self.lost.is_empty() {
            write!(f, "; counters that moved: [{}]", self.counters.join(", "))?;
            let shown: Vec<String> = self
                .lost
                .iter()
                .take(40)
                .map(|(seq, t)| format!("#{seq} at {}", clock(*t)))
                .collect();
            write!(f, " ({})", shown.join(", "))?;
        }
        Ok(())
    }
}

/// `HH:MM:SS.mmm` UTC, as in iked's log.
fn clock(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

const PORT: u16 = 7777;

impl Stream {
    /// Starts the echo in host-b and the sender in host-a: one datagram of
    /// `size` bytes every `interval`.
    fn start(interval: Duration, size: usize) -> Stream {
        let before = drop_counters();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_echo = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let s = stop_echo.clone();
        let echo = std::thread::spawn(move || {
            enter_netns("host-b");
            let sock = UdpSocket::bind(("10.2.0.2", PORT)).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        ready_rx.recv().unwrap();
        let s = stop.clone();
        let client = std::thread::spawn(move || {
            enter_netns("host-a");
            let sock = UdpSocket::bind(("10.1.0.2", 0)).unwrap();
            sock.connect(("10.2.0.2", PORT)).unwrap();
            let mut sent_at: Vec<SystemTime> = Vec::new();
            let mut got: BTreeSet<u32> = BTreeSet::new();
            let mut duplicates = 0;
            let mut send_errors = 0;
            let mut buf = vec![0u8; 65536];
            let mut payload = vec![0x5au8; size.max(4)];
            let start = Instant::now();
            let mut next = start;
            let mut drain_until: Option<Instant> = None;
            loop {
                let now = Instant::now();
                match drain_until {
                    None if s.load(Ordering::Relaxed) => {
                        // Stop sending; wait for the last echoes.
                        drain_until = Some(now + Duration::from_secs(1));
                    }
                    Some(t) if now >= t => break,
                    // Every echo is in: no need to wait out the drain.
                    Some(_) if got.len() >= sent_at.len() => break,
                    _ => {}
                }
                if drain_until.is_none() && now >= next {
                    let seq = u32::try_from(sent_at.len()).unwrap();
                    payload[..4].copy_from_slice(&seq.to_be_bytes());
                    sent_at.push(SystemTime::now());
                    // A send error (no route yet, ENOBUFS) is a lost datagram.
                    if sock.send(&payload).is_err() {
                        send_errors += 1;
                    }
                    next += interval;
                    continue;
                }
                let wait = match drain_until {
                    Some(t) => t.saturating_duration_since(now),
                    None => next.saturating_duration_since(now),
                }
                .max(Duration::from_millis(1));
                sock.set_read_timeout(Some(wait)).unwrap();
                if let Ok(n) = sock.recv(&mut buf)
                    && n >= 4
                {
                    let seq = u32::from_be_bytes(buf[..4].try_into().unwrap());
                    if !got.insert(seq) {
                        duplicates += 1;
                    }
                }
            }
            let lost = sent_at
                .iter()
                .enumerate()
                .filter(|(i, _)| !got.contains(&u32::try_from(*i).unwrap()))
                .map(|(i, t)| (u32::try_from(i).unwrap(), *t))
                .collect();
            StreamResult {
                sent: u32::try_from(sent_at.len()).unwrap(),
                received: u32::try_from(got.len()).unwrap(),
                lost,
                duplicates,
                send_errors,
                counters: Vec::new(),
            }
        });
        Stream {
            stop,
            stop_echo,
            client,
            echo,
            before,
        }
    }

    fn stop(self) -> StreamResult {
        self.stop.store(true, Ordering::Relaxed);
        let mut r = self.client.join().unwrap();
        self.stop_echo.store(true, Ordering::Relaxed);
        self.echo.join().unwrap();
        r.counters = drop_counters()
            .into_iter()
            .filter_map(|(k, v)| {
                let d = v.saturating_sub(self.before.get(&k).copied().unwrap_or(0));
                (d > 0).then(|| format!("{k} +{d}"))
            })
            .collect();
        r
    }
}

// ---------------------------------------------------------------------------
// The checks.

/// Waits until `done` holds, checking every 300 ms that both gateways keep
/// their three policies and their route; returns the violations seen.
fn run_until(what: &str, timeout: Duration, done: impl FnMut() -> bool) -> Vec<String> {
    run_until_max(what, timeout, [8, 8], done)
}

/// [`run_until`] with the most SAs allowed at a time in gw-a and gw-b.
fn run_until_max(
    what: &str,
    timeout: Duration,
    max: [usize; 2],
    mut done: impl FnMut() -> bool,
) -> Vec<String> {
    let end = Instant::now() + timeout;
    let mut bad = Vec::new();
    let mut most = [0usize; 2];
    while !done() {
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        for (i, (ns, dst)) in [("gw-a", "10.2.0.0/24"), ("gw-b", "10.1.0.0/24")]
            .into_iter()
            .enumerate()
        {
            // The old pair, the new one, in a collision the redundant one,
            // and the inbound SAs kept for a second: never more.
            let n = kernel_sas(ns).len();
            most[i] = most[i].max(n);
            if n > max[i] {
                bad.push(format!("{}: {ns} had {n} SAs", clock(SystemTime::now())));
            }
            let p = policies(ns);
            if p != 3 {
                bad.push(format!(
                    "{}: {ns} had {p} policies",
                    clock(SystemTime::now())
                ));
            }
            if !route_220(ns, dst) {
                bad.push(format!(
                    "{}: {ns} had no route to {dst}",
                    clock(SystemTime::now())
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "{what}: at most {} SAs in gw-a, {} in gw-b at a time",
        most[0], most[1]
    );
    bad
}

/// Exactly one pair of SAs for the one child in each kernel: one outbound
/// SA each, gw-a's outbound is gw-b's current inbound and the other way
/// round, and they are the SPIs iked reports (`b`: gw-b's iked, if it is
/// one). Both iked (`--delete-rekeyed-delay`) and charon
/// (`delete_rekeyed_delay`) keep the inbound SAs of a rekeyed Child SA
/// for 1 s here, for packets still on their way: those must be gone
/// 2.5 s later (no duplicate survives; charon may take 4 s more, below). The timers keep rekeying (every
/// 1-2 s), so this waits for a moment between two rekeys: up to 8 s for a
/// snapshot in which everything agrees.
fn pair_check(a: &Iked, b: Option<&Iked>) -> (String, String) {
    let end = Instant::now() + Duration::from_secs(8);
    let (spis, old) = loop {
        match snapshot(a, b) {
            Ok(x) => break x,
            Err(e) if Instant::now() >= end => panic!(
                "never exactly one pair of SAs each: {e}\n--- gw-a ---\n{}--- gw-b ---\n{}",
                sh("ip -n gw-a xfrm state"),
                sh("ip -n gw-b xfrm state")
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(150)),
        }
    };
    // Polled: they go about 1 s after their rekey. charon (gw-b without
    // `b`) can take 4 s more: 5.9.8 drops our answer to its Delete when it
    // carries the message ID of a Delete of ours it is processing
    // ("ignoring request with ID n, already processing") and removes its
    // old inbound SA only once its retransmission (4 s) is answered.
    let start = Instant::now();
    for (ns, old) in [("gw-a", &old.0), ("gw-b", &old.1)] {
        let grace = if ns == "gw-b" && b.is_none() {
            6500
        } else {
            2500
        };
        let end = start + Duration::from_millis(grace);
        loop {
            let now: Vec<String> = kernel_sas(ns).into_iter().map(|(s, _, _)| s).collect();
            let left: Vec<&String> = old.iter().filter(|s| now.contains(s)).collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < end,
                "{ns}: inbound SAs of rekeyed Child SAs {left:?} still there {grace} ms later: {now:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    spis
}

type Snapshot = ((String, String), (Vec<String>, Vec<String>));

/// (gw-a's inbound and outbound SPI), (the other inbound SPIs of gw-a and
/// of gw-b).
fn snapshot(a: &Iked, b: Option<&Iked>) -> Result<Snapshot, String> {
    let (sa, sb) = (kernel_sas("gw-a"), kernel_sas("gw-b"));
    let to = |v: &[(String, String, String)], dst: &str| -> Vec<String> {
        v.iter()
            .filter(|(_, _, d)| d == dst)
            .map(|(s, _, _)| s.clone())
            .collect()
    };
    let (a_in, a_out) = (to(&sa, "192.0.2.1"), to(&sa, "192.0.2.2"));
    let (b_out, b_in) = (to(&sb, "192.0.2.1"), to(&sb, "192.0.2.2"));
    if a_out.len() != 1 || b_out.len() != 1 {
        return Err(format!(
            "not one outbound SA each: gw-a {sa:?}, gw-b {sb:?}"
        ));
    }
    let (a_out, b_out) = (a_out[0].clone(), b_out[0].clone());
    if !a_in.contains(&b_out) || !b_in.contains(&a_out) {
        return Err(format!("not a pair: gw-a {sa:?}, gw-b {sb:?}"));
    }
    for (gw, ns) in std::iter::once((a, "gw-a")).chain(b.map(|b| (b, "gw-b"))) {
        let sas = gw.status();
        let est: Vec<_> = sas.iter().filter(|s| s.state == "ESTABLISHED").collect();
        if est.len() != 1 || est[0].children.len() != 1 {
            return Err(format!("{ns}: not one IKE SA with one child: {sas:?}"));
        }
        let c = &est[0].children[0];
        let want = if ns == "gw-a" {
            (&b_out, &a_out)
        } else {
            (&a_out, &b_out)
        };
        let got = (format!("0x{}", c.spi_in), format!("0x{}", c.spi_out));
        if c.state != "INSTALLED" || (&got.0, &got.1) != want {
            return Err(format!("{ns}: status {c:?}, kernel {want:?}"));
        }
    }
    let a_old = a_in.into_iter().filter(|s| *s != b_out).collect();
    let b_old = b_in.into_iter().filter(|s| *s != a_out).collect();
    Ok(((b_out, a_out), (a_old, b_old)))
}

fn assert_no_loss(case: &str, r: &StreamResult, violations: &[String], deleted: &[String]) {
    eprintln!("{case}: stream {r}");
    assert!(
        r.lost.is_empty() && r.sent > 0 && r.received == r.sent,
        "{case}: {r}"
    );
    assert!(
        violations.is_empty(),
        "{case}: policies or routes went missing:\n{}",
        violations.join("\n")
    );
    assert!(
        deleted.is_empty(),
        "{case}: policies deleted while the tunnel lived:\n{}",
        deleted.join("\n")
    );
}

fn first_child(a: &Iked) -> (Vec<IkeSaStatus>, String, control::ChildSaStatus) {
    // The timers keep rekeying: while a rekey runs, the IKE SA is
    // REKEYING or the child being replaced is REKEYING/REKEYED beside its
    // successor. Poll (up to 5 s) for an ESTABLISHED IKE SA with an
    // INSTALLED child, the live one.
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let sas = a.status();
        let found = sas
            .iter()
            .find(|s| s.state == "ESTABLISHED")
            .and_then(|sa| {
                let c = sa.children.iter().find(|c| c.state == "INSTALLED")?;
                Some((sa.spi_i.clone(), c.clone()))
            });
        match found {
            Some((spi, c)) => return (sas, spi, c),
            None if Instant::now() >= end => {
                panic!("no ESTABLISHED IKE SA with an INSTALLED child in {sas:?}")
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

// ---------------------------------------------------------------------------
// The cases.

/// The stream's rate: 100 datagrams a second each way.
const RATE: Duration = Duration::from_millis(10);

/// 2: iked <-> iked on timers.
fn iked_timers() {
    let ike = ["rekey_time: 6s", "rand_time: 1s", "over_time: 4s"];
    let child = ["rekey_time: 2s", "life_time: 5s", "rand_time: 1s"];
    let mut a = start_iked("gw-a", "timers", &iked_yaml(true, ESP, &ike, &child));
    let mut b = start_iked("gw-b", "timers", &iked_yaml(false, ESP, &ike, &child));
    a.up("site");
    let (_, ike0, c0) = first_child(&a);
    let mon = Monitor::start("timers");
    let stream = Stream::start(RATE, 64);
    let t0 = Instant::now();
    // The stream goes through the SAs: their counters (from the kernel)
    // move while it runs.
    let mut counted = 0;
    let violations = run_until(
        "20 Child SA rekeys and 5 IKE SA rekeys",
        Duration::from_secs(70),
        || {
            for c in a.status().iter().flat_map(|s| s.children.iter()) {
                counted = counted.max(c.packets_in.unwrap_or(0).min(c.packets_out.unwrap_or(0)));
            }
            child_rekeys(&a) >= 20 && ike_rekeys(&a) >= 5
        },
    );
    let r = stream.stop();
    let deleted = mon.stop();
    eprintln!(
        "iked <-> iked, timers: {} Child SA and {} IKE SA rekeys in {:.1} s (gw-b: {} and {})",
        child_rekeys(&a),
        ike_rekeys(&a),
        t0.elapsed().as_secs_f64(),
        child_rekeys(&b),
        ike_rekeys(&b)
    );
    assert_no_loss("iked <-> iked, timers", &r, &violations, &deleted);
    assert!(counted > 0, "no packet counted by a Child SA's kernel SAs");
    let (a_in, _) = pair_check(&a, Some(&b));
    assert_ne!(a_in, format!("0x{}", c0.spi_in), "a new inbound SPI");
    let (sas, ike1, c1) = first_child(&a);
    assert_ne!(ike1, ike0, "a new IKE SA");
    assert_ne!(c1.id, c0.id);
    assert_eq!(c1.reqid, c0.reqid, "the reqid stays across rekeys");
    let sa = sas.iter().find(|s| s.state == "ESTABLISHED").unwrap();
    assert!(
        sa.rekey_secs.is_some() && sa.expire_secs.is_some(),
        "IKE SA timers: {sa:?}"
    );
    assert!(
        c1.rekey_secs.is_some() && c1.expire_secs.is_some(),
        "child timers: {c1:?}"
    );
    // The text form too (polled: a rekey in flight shows no rekey time).
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&a.ikectl(&["status"]).stdout).to_string();
        if text.matches("rekeying in").count() >= 2 && text.matches("expires in").count() >= 2 {
            break;
        }
        assert!(Instant::now() < end, "{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(route_220("gw-a", "10.2.0.0/24") && route_220("gw-b", "10.1.0.0/24"));
    a.stop();
    b.stop();
    assert!(kernel_is_clean("gw-a") && kernel_is_clean("gw-b"));
}

/// 3: iked <-> iked, same timers without jitter on both sides.
fn iked_simultaneous() {
    let ike = ["rekey_time: 5s", "rand_time: 0s", "over_time: 4s"];
    let child = ["rekey_time: 2s", "life_time: 5s", "rand_time: 0s"];
    let mut a = start_iked("gw-a", "simul", &iked_yaml(true, ESP_PFS, &ike, &child));
    let mut b = start_iked("gw-b", "simul", &iked_yaml(false, ESP_PFS, &ike, &child));
    a.up("site");
    let mon = Monitor::start("simul");
    let stream = Stream::start(RATE, 64);
    let t0 = Instant::now();
    let violations = run_until(
        "4 Child SA rekeys and 1 IKE SA rekey",
        Duration::from_secs(40),
        || child_rekeys(&a) >= 4 && ike_rekeys(&a) >= 1,
    );
    let r = stream.stop();
    let deleted = mon.stop();
    let collisions =
        a.log_lines_with(&["rekey collision"]) + b.log_lines_with(&["rekey collision"]);
    eprintln!(
        "iked <-> iked, simultaneous: {} Child SA and {} IKE SA rekeys, {collisions} collisions seen, in {:.1} s",
        child_rekeys(&a),
        ike_rekeys(&a),
        t0.elapsed().as_secs_f64()
    );
    assert_no_loss("iked <-> iked, simultaneous", &r, &violations, &deleted);
    pair_check(&a, Some(&b));
    assert!(
        collisions > 0,
        "no collision happened: the case tests nothing"
    );
    a.stop();
    b.stop();
    assert!(kernel_is_clean("gw-a") && kernel_is_clean("gw-b"));
}

/// 4: byte limits.
fn iked_bytes() {
    // 1000-byte datagrams every 10 ms: about 100 kB/s through each SA.
    // No jitter (rand_bytes defaults to life_bytes - rekey_bytes, as in
    // strongSwan): the soft limit is exactly 100k.
    let child = [
        "rekey_time: 0",
        "rekey_bytes: 100k",
        "life_bytes: 200k",
        "rand_bytes: 0",
    ];
    let mut a = start_iked("gw-a", "bytes", &iked_yaml(true, ESP, &[], &child));
    let mut b = start_iked("gw-b", "bytes", &iked_yaml(false, ESP, &[], &child));
    a.up("site");
    let mon = Monitor::start("bytes");
    let stream = Stream::start(Duration::from_millis(10), 1000);
    let violations = run_until(
        "3 Child SA rekeys on soft expires",
        Duration::from_secs(30),
        || child_rekeys(&a) >= 3,
    );
    let r = stream.stop();
    let deleted = mon.stop();
    let soft = a.log_lines_with(&["soft"]) + b.log_lines_with(&["soft"]);
    eprintln!(
        "iked <-> iked, rekey_bytes: {} Child SA rekeys",
        child_rekeys(&a)
    );
    assert_no_loss("iked <-> iked, rekey_bytes", &r, &violations, &deleted);
    assert!(soft > 0, "no soft expire in the logs");
    pair_check(&a, Some(&b));
    a.stop();
    b.stop();
    assert!(kernel_is_clean("gw-a") && kernel_is_clean("gw-b"));

    // The kernel's own larval SA (see `hard_expire`) goes after 2 s.
    for ns in ["gw-a", "gw-b"] {
        sh(&format!(
            "ip netns exec {ns} sysctl -qw net.core.xfrm_acq_expires=2"
        ));
    }
    hard_expire("hard", "life_bytes: 100k", 100);
    hard_expire("hard-packets", "life_packets: 50", 50);
}

/// A hard limit alone (`limit`, reached after `datagrams` of the
/// stream's): the kernel removes the SA, iked deletes the child (policies
/// and route go with it), the IKE SA stays, and the stream gets just the
/// datagrams before the limit through.
///
/// Between the kernel's removal of the expired outbound SA and iked's
/// removal of the policies, the stream's packets meet a policy without
/// an SA: the kernel answers with an ACQUIRE and a larval SA of its own
/// (iked listens for ACQUIREs, as charon does), which it keeps for
/// net.core.xfrm_acq_expires (30 s; the caller shortens it to 2 s), so
/// "clean" below means iked left nothing, not that the kernel's own
/// larval SA had time to go.
fn hard_expire(tag: &str, limit: &str, datagrams: u32) {
    // A life limit alone would get a rekey limit of life / 1.1 (charon's
    // derivation): the rekey limits are off explicitly.
    let child = ["rekey_time: 0", "rekey_bytes: 0", "rekey_packets: 0", limit];
    let mut a = start_iked("gw-a", tag, &iked_yaml(true, ESP, &[], &child));
    let mut b = start_iked("gw-b", tag, &iked_yaml(false, ESP, &[], &child));
    a.up("site");
    let stream = Stream::start(Duration::from_millis(10), 1000);
    wait_until(Duration::from_secs(20), "the child's hard expire", || {
        a.log_lines_with(&["CHILD SA lan", "deleted"]) > 0
            || b.log_lines_with(&["CHILD SA lan", "deleted"]) > 0
    });
    let r = stream.stop();
    eprintln!("iked <-> iked, {limit}: stream {r}");
    assert!(
        a.log_lines_with(&["kernel hard expire"]) + b.log_lines_with(&["kernel hard expire"]) > 0,
        "{limit}: no hard expire in the logs"
    );
    wait_until(Duration::from_secs(10), "both kernels clean", || {
        kernel_is_clean("gw-a") && kernel_is_clean("gw-b")
    });
    for (gw, ns) in [(&a, "gw-a"), (&b, "gw-b")] {
        let sas = gw.status();
        assert!(
            sas.len() == 1 && sas[0].state == "ESTABLISHED" && sas[0].children.is_empty(),
            "{ns}: the IKE SA without the child: {sas:?}"
        );
    }
    // Every datagram up to the limit, none after it.
    assert!(
        r.received + 2 >= datagrams && r.received <= datagrams && r.received < r.sent,
        "{limit}: {r}"
    );
    a.stop();
    b.stop();
}

/// ESP takes longer than IKE: gw-a's and gw-b's wan queues hold ESP (IP
/// protocol 50) for `ms` milliseconds and let IKE through at once, as a
/// network that prioritises IKE does (or one with several paths).
fn delay_esp(ms: u32) {
    for ns in ["gw-a", "gw-b"] {
        sh(&format!(
            "ip netns exec {ns} sh -c 'tc qdisc add dev wan root handle 1: prio bands 3 \
               priomap 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 &&
             tc qdisc add dev wan parent 1:1 handle 10: netem delay {ms}ms &&
             tc filter add dev wan parent 1: protocol ip prio 1 u32 \
               match ip protocol 50 0xff flowid 1:1'"
        ));
    }
}

fn undelay_esp() {
    for ns in ["gw-a", "gw-b"] {
        sh(&format!("ip netns exec {ns} tc qdisc del dev wan root"));
    }
}

/// iked <-> iked on timers with ESP 30 ms behind IKE: the Delete of a
/// rekeyed Child SA overtakes the last ESP packets sent on its SAs, which
/// only an inbound SA kept for a while (`--delete-rekeyed-delay`) still
/// decrypts. With 0 the stream loses packets at every rekey: the control
/// that shows this case can fail.
fn iked_esp_delayed(rekeyed_delay: &str, rekeys: usize) -> StreamResult {
    let tag = format!("delayed-{rekeyed_delay}");
    let child = ["rekey_time: 2s", "life_time: 5s", "rand_time: 1s"];
    let yaml = |a| iked_yaml(a, ESP, &[], &child);
    let mut a = iked_with("gw-a", &tag, &yaml(true), rekeyed_delay);
    let mut b = iked_with("gw-b", &tag, &yaml(false), rekeyed_delay);
    a.up("site");
    delay_esp(30);
    let stream = Stream::start(RATE, 64);
    // The control (no delay) goes on, up to three times as many rekeys,
    // until an ESP packet met no SA: on a loaded machine the stream can
    // be too thin around a few rekeys to lose one.
    let base = drop_counters();
    let lost_one = || {
        let now = drop_counters();
        ["gw-a XfrmInNoStates", "gw-b XfrmInNoStates"]
            .iter()
            .any(|k| now.get(*k) > base.get(*k))
    };
    let violations = run_until(
        &format!("{rekeys} Child SA rekeys"),
        Duration::from_secs(40),
        || {
            let n = child_rekeys(&a);
            n >= rekeys && (rekeyed_delay != "0" || n >= 3 * rekeys || lost_one())
        },
    );
    let r = stream.stop();
    undelay_esp();
    eprintln!(
        "iked <-> iked, ESP 30 ms behind IKE, --delete-rekeyed-delay {rekeyed_delay}: {} Child SA rekeys, stream {r}",
        child_rekeys(&a)
    );
    assert!(violations.is_empty(), "{violations:?}");
    a.stop();
    b.stop();
    assert!(kernel_is_clean("gw-a") && kernel_is_clean("gw-b"));
    r
}

fn iked_esp_delayed_cases() {
    let without = iked_esp_delayed("0", 3);
    assert!(
        !without.lost.is_empty(),
        "inbound SAs removed at once, yet no packet lost: the case cannot show loss ({without})"
    );
    let with = iked_esp_delayed("1", 4);
    assert_no_loss("iked <-> iked, ESP 30 ms behind IKE", &with, &[], &[]);
}

/// One iked <-> charon case: charon in gw-b with `charon` (IKE lines,
/// child lines), iked in gw-a with `iked`; runs the stream until `done`.
///
/// charon keeps the inbound SAs of a rekeyed Child SA for
/// `delete_rekeyed_delay` (5 s) for late packets, by setting their hard
/// lifetime in the kernel (0 means: until their own life_time); 1 s here,
/// as iked's (see [`pair_check`]).
fn charon_case(
    tag: &str,
    esp: &str,
    iked: (&[&str], &[&str]),
    charon: (&[&str], &[&str]),
    stream: (Duration, usize),
    what: &str,
    done: impl Fn(&Iked) -> bool,
) -> (Iked, String) {
    let conf = guest_out().join(format!("{tag}-swanctl.conf"));
    std::fs::write(&conf, charon_conf(esp, charon.0, charon.1)).unwrap();
    lab_sh(&format!(
        "lab_charon_start gw-b gw-b '{}' 'default=1 ike=1 cfg=1 knl=1 chd=1' 'delete_rekeyed_delay = 1'",
        conf.display()
    ));
    let a = start_iked("gw-a", tag, &iked_yaml(true, esp, iked.0, iked.1));
    a.up("site");
    let (_, ike0, c0) = first_child(&a);
    let mon = Monitor::start(tag);
    let st = Stream::start(stream.0, stream.1);
    let t0 = Instant::now();
    // gw-b: charon's old pair can stay 4 s past its rekey when 5.9.8 drops
    // our answer to its Delete (see ORPHAN_GRACE in ike/src/sa/child_rekey.rs);
    // with a rekey a second in the simultaneous case that is up to 4 more.
    let violations = run_until_max(what, Duration::from_secs(60), [8, 14], || done(&a));
    let r = st.stop();
    if !r.lost.is_empty() {
        // What the next investigation needs: which SAs each kernel had
        // (with their counters and lifetimes) and iked's Child SA story.
        let log = a.log_text();
        let story: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("CHILD_SA") || l.contains("collision") || l.contains("IKE SA"))
            .collect();
        eprintln!(
            "{tag}: lost packets; gw-a:\n{}\ngw-b:\n{}\niked, last Child SA lines:\n{}",
            sh("ip -s -n gw-a xfrm state"),
            sh("ip -s -n gw-b xfrm state"),
            story[story.len().saturating_sub(60)..].join("\n")
        );
    }
    let deleted = mon.stop();
    let log = charon_log();
    let by_charon = log
        .lines()
        .filter(|l| l.contains("generating CREATE_CHILD_SA request") && l.contains("REKEY_SA"))
        .count();
    let by_iked = log
        .lines()
        .filter(|l| l.contains("parsed CREATE_CHILD_SA request") && l.contains("REKEY_SA"))
        .count();
    let ike_by_charon = log
        .lines()
        .filter(|l| l.contains("generating CREATE_CHILD_SA request") && l.ends_with("[ SA No KE ]"))
        .count();
    let ike_by_iked = log
        .lines()
        .filter(|l| l.contains("parsed CREATE_CHILD_SA request") && l.ends_with("[ SA No KE ]"))
        .count();
    let collisions = a.log_lines_with(&["rekey collision"]);
    if esp.contains('-') {
        // PFS: every Child SA rekey carries a KE payload, both ways.
        let with_ke = |dir: &str| {
            log.lines()
                .filter(|l| l.contains(dir) && l.contains("[ N(REKEY_SA) SA No KE TSi TSr ]"))
                .count()
        };
        let (out, inb) = (
            with_ke("generating CREATE_CHILD_SA request"),
            with_ke("parsed CREATE_CHILD_SA request"),
        );
        assert!(
            out == by_charon && inb == by_iked && out + inb > 0,
            "PFS rekeys: charon sent {out} of {by_charon}, got {inb} of {by_iked} with KE"
        );
    }
    eprintln!(
        "iked <-> charon, {tag}: {} Child SA and {} IKE SA rekeys in {:.1} s; Child SA rekeys \
         started by iked {by_iked}, by charon {by_charon}; IKE SA rekeys started by iked \
         {ike_by_iked}, by charon {ike_by_charon}; {collisions} collisions seen by iked",
        child_rekeys(&a),
        ike_rekeys(&a),
        t0.elapsed().as_secs_f64()
    );
    assert_no_loss(
        &format!("iked <-> charon, {tag}"),
        &r,
        &violations,
        &deleted,
    );
    let (a_in, _) = pair_check(&a, None);
    assert_ne!(a_in, format!("0x{}", c0.spi_in));
    let (_, ike1, c1) = first_child(&a);
    assert!(ike1 != ike0 || ike_rekeys(&a) == 0);
    // The stream went through iked's SAs.
    assert!(
        c1.packets_in.is_some() && c1.packets_out.is_some(),
        "{c1:?}"
    );
    // One IKE SA and one Child SA in charon too, once its exchanges are
    // done: charon 5.9.8 can take our answer to its rekey for a request of
    // ours with the same message ID ("ignoring request with ID n, already
    // processing") and then stays REKEYING until it retransmits (4 s).
    let end = Instant::now() + Duration::from_secs(10);
    let list = loop {
        let list = swanctl("--list-sas");
        let one =
            list.matches("INSTALLED").count() == 1 && list.matches("ESTABLISHED").count() == 1;
        if one || Instant::now() >= end {
            break list;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(list.matches("INSTALLED").count(), 1, "{list}");
    assert_eq!(list.matches("ESTABLISHED").count(), 1, "{list}");
    let summary = format!("{by_iked} {by_charon} {ike_by_iked} {ike_by_charon} {collisions}");
    (a, summary)
}

fn stop_charon_case(tag: &str, mut a: Iked) {
    a.stop();
    lab_sh("lab_charon_stop gw-b");
    // The next charon start truncates its log: keep this case's.
    let _ = std::fs::copy(
        guest_out().join("charon-gw-b/charon.log"),
        guest_out().join(format!("{tag}-charon.log")),
    );
    wait_until(Duration::from_secs(10), "both kernels clean", || {
        kernel_is_clean("gw-a") && kernel_is_clean("gw-b")
    });
}

/// charon's `over_time` in these cases is 16 s, not 4 s as iked's: charon
/// tries a refused IKE rekey again 5-15 s later whatever time is left, so
/// with 4 s one refusal ends the IKE SA (iked refuses, as charon does,
/// while a Child SA rekey of its own is unanswered, and charon 5.9.8 can
/// leave one unanswered for a retransmission, 4 s, when both sent a
/// request with the same message ID). With hours-long lifetimes
/// `over_time` is minutes.
///
/// 5: iked <-> charon on timers, both rekeying: iked's Child SA timer and
/// charon's (the kernel's soft expire, second-granular, so it fires up to
/// a second early) are about equal, so either starts the rekey; charon's
/// IKE SA timer is a second shorter than iked's, so charon starts most IKE
/// SA rekeys and iked some.
fn charon_timers() {
    let (a, summary) = charon_case(
        "charon-timers",
        ESP_PFS,
        (
            &["rekey_time: 7s", "rand_time: 2s", "over_time: 4s"],
            &["rekey_time: 2s", "life_time: 6s", "rand_time: 1s"],
        ),
        (
            &["rekey_time = 6s", "rand_time = 2s", "over_time = 16s"],
            &["rekey_time = 3s", "life_time = 6s", "rand_time = 1s"],
        ),
        (RATE, 64),
        "20 Child SA rekeys and 5 IKE SA rekeys",
        |a| child_rekeys(a) >= 20 && ike_rekeys(a) >= 5,
    );
    let n: Vec<usize> = summary.split(' ').map(|x| x.parse().unwrap()).collect();
    assert!(
        n[0] > 0 && n[1] > 0,
        "both must start Child SA rekeys: {summary}"
    );
    stop_charon_case("charon-timers", a);
}

/// 6: iked <-> charon, simultaneous: a packet limit without jitter on both
/// sides. The stream's datagrams cross gw-a's outbound and gw-b's inbound
/// SA (and back), so both kernels reach the limit within a round trip and
/// both peers start the rekey at once. IKE SAs on equal timers.
///
/// Known to fail rarely (once in CI, never in 16 local runs): 14 packets
/// lost at the end after an outbound SA of gw-a reached its hard packet
/// limit. The likely story, unproven: charon won a collision, dropped
/// our answer to its rekey (5.9.8's same-message-ID bug) and its IKE SA
/// rekey ended the retransmission, so nobody deletes the old SA and iked,
/// the loser, waits for that as RFC 7296 2.8.1 and strongSwan's own
/// child_rekey.c do. The failure now prints both kernels' SAs and iked's
/// Child SA log lines to confirm or refute it.
fn charon_simultaneous() {
    let (a, summary) = charon_case(
        "charon-simul",
        ESP,
        (
            &["rekey_time: 5s", "rand_time: 0s", "over_time: 4s"],
            &[
                "rekey_time: 0",
                "rekey_packets: 100",
                "life_packets: 1000",
                "rand_packets: 0",
            ],
        ),
        (
            &["rekey_time = 5s", "rand_time = 0s", "over_time = 16s"],
            &[
                "rekey_time = 0",
                "rekey_packets = 100",
                "life_packets = 1000",
                "rand_packets = 0",
            ],
        ),
        (RATE, 64),
        "6 Child SA rekeys and 1 IKE SA rekey",
        |a| child_rekeys(a) >= 6 && ike_rekeys(a) >= 1,
    );
    let n: Vec<usize> = summary.split(' ').map(|x| x.parse().unwrap()).collect();
    assert!(
        n[4] > 0,
        "no collision happened: the case tests nothing ({summary})"
    );
    stop_charon_case("charon-simul", a);
}

/// 7: iked <-> iked, gw-a reauthenticates every 3 s (make-before-break:
/// a new IKE SA and Child SA under the same policies, then the old IKE SA
/// goes); no rekeys.
fn iked_reauth() {
    let ike = [
        "rekey_time: 0",
        "reauth_time: 2s",
        "rand_time: 0s",
        "over_time: 10s",
    ];
    let child = ["rekey_time: 0"];
    let mut a = start_iked("gw-a", "reauth", &iked_yaml(true, ESP, &ike, &child));
    let mut b = start_iked("gw-b", "reauth", &iked_yaml(false, ESP, &[], &child));
    a.up("site");
    let (_, ike0, c0) = first_child(&a);
    let mon = Monitor::start("reauth");
    let stream = Stream::start(RATE, 64);
    let t0 = Instant::now();
    let violations = run_until("2 reauthentications", Duration::from_secs(30), || {
        a.log_lines_with(&["reauthenticated as"]) >= 2
    });
    let r = stream.stop();
    let deleted = mon.stop();
    eprintln!(
        "iked <-> iked, reauthentication: {} in {:.1} s (gw-b saw {} old IKE SAs deleted)",
        a.log_lines_with(&["reauthenticated as"]),
        t0.elapsed().as_secs_f64(),
        b.log_lines_with(&["deleted by the peer"])
    );
    assert_no_loss("iked <-> iked, reauth", &r, &violations, &deleted);
    pair_check(&a, Some(&b));
    let (_, ike1, c1) = first_child(&a);
    assert_ne!(ike1, ike0, "a new IKE SA");
    assert_ne!(c1.id, c0.id, "a new Child SA");
    assert_eq!(c1.reqid, c0.reqid, "under the same policies");
    assert!(b.log_lines_with(&["deleted by the peer"]) >= 2);
    a.stop();
    b.stop();
    assert!(kernel_is_clean("gw-a") && kernel_is_clean("gw-b"));
}

/// 8: iked <-> charon, reauthentication both ways: iked reauthenticates
/// charon, then charon (`make_before_break = yes`) reauthenticates iked.
fn charon_reauth(by_iked: bool) {
    let tag = if by_iked {
        "charon-reauth-by-iked"
    } else {
        "charon-reauth-by-charon"
    };
    let iked_ike: &[&str] = if by_iked {
        &[
            "rekey_time: 0",
            "reauth_time: 2s",
            "rand_time: 0s",
            "over_time: 10s",
        ]
    } else {
        &["rekey_time: 0"]
    };
    let charon_ike: &[&str] = if by_iked {
        &["rekey_time = 0"]
    } else {
        &[
            "rekey_time = 0",
            "reauth_time = 3s",
            "rand_time = 0s",
            "over_time = 10s",
        ]
    };
    let conf = guest_out().join(format!("{tag}-swanctl.conf"));
    std::fs::write(&conf, charon_conf(ESP, charon_ike, &["rekey_time = 0"])).unwrap();
    lab_sh(&format!(
        "lab_charon_start gw-b gw-b '{}' 'default=1 ike=1 cfg=1 knl=1 chd=1' \
         'delete_rekeyed_delay = 1\n    make_before_break = yes'",
        conf.display()
    ));
    let a = start_iked(
        "gw-a",
        tag,
        &iked_yaml(true, ESP, iked_ike, &["rekey_time: 0"]),
    );
    a.up("site");
    let (_, _, c0) = first_child(&a);
    let mon = Monitor::start(tag);
    let st = Stream::start(RATE, 64);
    let t0 = Instant::now();
    let reauths = |a: &Iked| {
        if by_iked {
            a.log_lines_with(&["reauthenticated as"])
        } else {
            a.log_lines_with(&["deleted by the peer"])
        }
    };
    let violations = run_until_max(
        "2 reauthentications",
        Duration::from_secs(30),
        [8, 10],
        || reauths(&a) >= 2,
    );
    let r = st.stop();
    let deleted = mon.stop();
    eprintln!(
        "iked <-> charon, reauthentication by {}: {} in {:.1} s",
        if by_iked { "iked" } else { "charon" },
        reauths(&a),
        t0.elapsed().as_secs_f64()
    );
    // charon, the responder of the new IKE SA when iked reauthenticates,
    // sends on its new Child SA as soon as it answers IKE_AUTH: iked's
    // inbound SA went in before IKE_AUTH (the transform in use, keys from
    // IKE_SA_INIT). iked as that responder holds its outbound SA back
    // until the old Child SA goes.
    assert_no_loss(
        &format!("iked <-> charon, {tag}"),
        &r,
        &violations,
        &deleted,
    );
    if by_iked {
        assert!(
            a.log_lines_with(&["installs its inbound SA", "before IKE_AUTH"]) >= 2,
            "no inbound SA installed before IKE_AUTH"
        );
    }
    pair_check(&a, None);
    let (_, _, c1) = first_child(&a);
    assert_ne!(c1.id, c0.id, "a new Child SA");
    assert_eq!(c1.reqid, c0.reqid, "under the same policies");
    stop_charon_case(tag, a);
}

#[test]
fn rekeys_without_loss() {
    if !is_guest() {
        sh(&format!(
            "bash -c \". '{}'; lab_ensure_packages strongswan-charon strongswan-swanctl \
             libstrongswan-standard-plugins iproute2 iputils-ping\"",
            repo_root().join("tests/lab/packages.sh").display()
        ));
    }
    in_uml("rekeys_without_loss", || {
        lab_sh("lab_make_gateways");
        let t = Instant::now();
        let lap = |what: &str| {
            eprintln!("== {what}: done at {:.1} s", t.elapsed().as_secs_f64());
        };
        iked_esp_delayed_cases();
        lap("iked <-> iked, ESP behind IKE");
        iked_timers();
        lap("iked <-> iked, timers");
        iked_simultaneous();
        lap("iked <-> iked, simultaneous");
        iked_bytes();
        lap("iked <-> iked, byte limits");
        charon_timers();
        lap("iked <-> charon, timers");
        charon_simultaneous();
        lap("iked <-> charon, simultaneous");
        iked_reauth();
        lap("iked <-> iked, reauthentication");
        charon_reauth(true);
        lap("iked <-> charon, reauthentication by iked");
        charon_reauth(false);
        lap("iked <-> charon, reauthentication by charon");
    });
}
