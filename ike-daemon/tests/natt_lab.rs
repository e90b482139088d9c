//! NAT traversal in the UML kernel lab (tests/lab, needs root): a third
//! namespace `nat` masquerades gw-a's traffic (iptables-legacy: the lab's
//! UML kernel has the iptables NAT table but not nftables' NAT chain type,
//! no `nft_chain_nat`):
//!
//! ```text
//! host-a 10.1.0.2 -- 10.1.0.1 gw-a 172.16.0.2 -- 172.16.0.1 nat 192.0.2.1 == 192.0.2.2 gw-b 10.2.0.1 -- host-b 10.2.0.2
//! ```
//!
//! The NAT maps UDP sources to ports 20000-20999 (so a mapping is always
//! another port than 500/4500), drops raw ESP (so only ESP in UDP can get
//! through), and forgets idle UDP mappings after 3 s. Each case, against
//! iked and against charon and in both roles: the tunnel comes up through
//! the NAT, ESP flows as UDP on 4500 (the kernel SAs' encapsulation and
//! counters), keepalives keep an idle mapping (traffic from gw-b's side
//! gets through after 4 s of silence), and after the NAT's mapping is
//! flushed and moved to ports 30000-30999 the tunnel recovers by itself.
//! Between two iked also a move of the NAT to another public address after
//! more than a replay window of packets (see [`address_move`]).
//! Then the responder behind a port forward (DNAT of 500 and 4500), both
//! gateways behind NAT (gw-b behind a second NAT with that port forward),
//! and `encap = yes` without any NAT.
//!
//! One UML boot for all cases; the namespaces are made once and only the
//! links between gw-a and gw-b change ([`wire`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use iked_lab::{guest_out, in_uml, is_guest, lab_sh, repo_root, sh, sh_ok, wait_until};

mod common;
use common::Iked;

/// Seconds between keepalives (iked `--keep-alive`, charon `keep_alive`).
const KEEP_ALIVE: u64 = 1;
/// The NAT's UDP timeout (3 keepalive intervals: a keepalive may come
/// 2 s late before the mapping goes), and how long the tests stay idle:
/// 1 s past the timeout, so that a mapping without keepalives is gone
/// (conntrack expires an entry at its timeout, and `conntrack -L` does not
/// list an expired one; with iked's `--keep-alive 0` the first case fails
/// with "mapping expired"). Each of the three idle cases sleeps IDLE, so
/// the short timeout keeps the test short.
const UDP_TIMEOUT: u64 = 3;
const IDLE: u64 = 4;

/// How gw-a and gw-b are joined (see [`wire`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wiring {
    /// gw-a behind `nat`, gw-b on its public side (the picture above).
    Nat,
    /// gw-b behind a second NAT, `nat-b`, too.
    BothNat,
    /// gw-a's wan straight to gw-b's, no NAT.
    Straight,
}

/// The wiring the namespaces have now; `None`: they are not made yet.
static WIRED: std::sync::Mutex<Option<Wiring>> = std::sync::Mutex::new(None);

/// The namespaces of every case (made once: host-a, host-b, gw-a, gw-b
/// with their LANs, `nat` and `nat-b` with no links yet), gw-a and gw-b
/// joined as `how` says, and the NAT with fresh rules and an empty
/// connection tracking table; `forward`: also DNAT of UDP 500/4500 on
/// `nat`'s public address to gw-a (a responder behind a port forward).
///
/// Only the wan links change between cases, and only when the wiring
/// does; a case leaves nothing else behind (each ends with both gateways'
/// kernels clean and its daemons stopped). Deleting all namespaces and
/// making them again, as each case did, cost 1.3-5.4 s a case: the kernel
/// tears a namespace down in the background, and the next link or
/// address change waits for that.
fn wire(how: Wiring, forward: bool) {
    let mut wired = WIRED.lock().unwrap_or_else(|e| e.into_inner());
    let mut script = String::new();
    if wired.is_none() {
        // Everything from scratch.
        script.push_str(&format!(
            "for ns in host-a host-b gw-a gw-b nat nat-b; do ip netns del $ns 2>/dev/null || true; done
             modprobe -d \"$LAB_MODDIR\" -a iptable_nat iptable_filter xt_MASQUERADE xt_nat xt_tcpudp nf_conntrack_netlink
             for ns in gw-a gw-b host-a host-b nat nat-b; do
                 ip netns add $ns
                 ip -n $ns link set lo up
             done
             lab_veth gw-a lan 10.1.0.1/24 host-a eth0 10.1.0.2/24
             lab_veth gw-b lan 10.2.0.1/24 host-b eth0 10.2.0.2/24
             ip -n host-a route add default via 10.1.0.1
             ip -n host-b route add default via 10.2.0.1
             for ns in gw-a gw-b nat nat-b; do lab_ns $ns sysctl -qw net.ipv4.ip_forward=1; done
             for n in nat nat-b; do lab_ns $n iptables-legacy -A FORWARD -p esp -j DROP; done
             lab_ns nat sysctl -qw net.netfilter.nf_conntrack_udp_timeout={UDP_TIMEOUT}
             lab_ns nat sysctl -qw net.netfilter.nf_conntrack_udp_timeout_stream={UDP_TIMEOUT}
"
        ));
    }
    if *wired != Some(how) {
        // Deleting one end of a veth deletes the other.
        script.push_str(
            "for ns in gw-a gw-b nat; do ip -n $ns link del wan 2>/dev/null || true; done\n",
        );
        script.push_str(match how {
            Wiring::Nat => {
                "lab_veth gw-a wan 172.16.0.2/24 nat priv 172.16.0.1/24
                 lab_veth nat wan 192.0.2.1/24 gw-b wan 192.0.2.2/24
                 ip -n gw-a route add default via 172.16.0.1\n"
            }
            Wiring::BothNat => {
                "lab_veth gw-a wan 172.16.0.2/24 nat priv 172.16.0.1/24
                 lab_veth nat wan 192.0.2.1/24 nat-b wan 192.0.2.2/24
                 lab_veth nat-b priv 172.17.0.1/24 gw-b wan 172.17.0.2/24
                 ip -n gw-a route add default via 172.16.0.1
                 ip -n gw-b route add default via 172.17.0.1
                 lab_ns nat-b iptables-legacy -t nat -F
                 for p in 500 4500; do
                     lab_ns nat-b iptables-legacy -t nat -A PREROUTING -i wan -p udp --dport $p -j DNAT --to-destination 172.17.0.2:$p
                 done
                 lab_ns nat-b iptables-legacy -t nat -A POSTROUTING -o wan -j MASQUERADE\n"
            }
            Wiring::Straight => "lab_veth gw-a wan 192.0.2.1/24 gw-b wan 192.0.2.2/24\n",
        });
    }
    if how != Wiring::Straight {
        script.push_str(
            "lab_ns nat iptables-legacy -t nat -F
             lab_ns nat iptables-legacy -t nat -A POSTROUTING -o wan -p udp -j MASQUERADE --to-ports 20000-20999
             lab_ns nat iptables-legacy -t nat -A POSTROUTING -o wan -j MASQUERADE\n",
        );
        if forward {
            script.push_str(
                "for p in 500 4500; do
                     lab_ns nat iptables-legacy -t nat -A PREROUTING -i wan -p udp --dport $p -j DNAT --to-destination 172.16.0.2:$p
                 done\n",
            );
        }
    }
    script.push_str(&format!(
        "lab_wait_for 10 'gw-a reaches 192.0.2.2 ({how:?})' lab_ns gw-a ping -c1 -W1 192.0.2.2
         lab_ns nat conntrack -F 2>/dev/null
         lab_ns nat-b conntrack -F 2>/dev/null\n"
    ));
    // Unknown until the script went through (lab_sh: any failing command
    // fails the test).
    *wired = None;
    lab_sh(&script);
    *wired = Some(how);
}

/// The topology with the NAT ([`Wiring::Nat`]); `forward`: with the port
/// forward to gw-a.
fn topology(forward: bool) {
    wire(Wiring::Nat, forward);
}

/// Flushes the NAT's connection tracking and moves its UDP mappings to
/// ports 30000-30999: every mapping changes.
fn remap() {
    sh(
        "ip netns exec nat iptables-legacy -t nat -R POSTROUTING 1 -o wan -p udp -j MASQUERADE --to-ports 30000-30999",
    );
    sh("ip netns exec nat conntrack -F 2>/dev/null");
}

/// swanctl.conf for iked or charon: connection `site`, child `lan`.
fn conf(me: Side, local: &str, remote: &str, extra: &str) -> String {
    let (lid, rid, lts, rts) = match me {
        Side::A => ("gw-a", "gw-b", "10.1.0.0/24", "10.2.0.0/24"),
        Side::B => ("gw-b", "gw-a", "10.2.0.0/24", "10.1.0.0/24"),
    };
    format!(
        "connections {{
    site {{
        version = 2
        local_addrs = {local}
        remote_addrs = {remote}
        proposals = aes256gcm16-prfsha256-x25519
        rekey_time = 0
        mobike = no
        {extra}
        local {{
            auth = psk
            id = {lid}
        }}
        remote {{
            auth = psk
            id = {rid}
        }}
        children {{
            lan {{
                local_ts = {lts}
                remote_ts = {rts}
                esp_proposals = aes256gcm16
                rekey_time = 0
            }}
        }}
    }}
}}
secrets {{
    ike-site {{
        id-a = gw-a
        id-b = gw-b
        secret = \"nat traversal test key\"
    }}
}}
"
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Side {
    fn ns(self) -> &'static str {
        match self {
            Side::A => "gw-a",
            Side::B => "gw-b",
        }
    }
}

/// iked in `side`'s namespace, with short keepalives; its files are
/// named after the case (`tag`).
fn iked(side: Side, tag: &str, conf_text: &str) -> Iked {
    let ns = side.ns();
    let keep_alive = KEEP_ALIVE.to_string();
    Iked::spawn(
        ns,
        &format!("{tag}-{ns}.conf"),
        &format!("iked-{tag}-{ns}.log"),
        conf_text,
        &["--keep-alive", &keep_alive],
    )
}

/// charon in a namespace (tests/lab/lib.sh).
struct Charon {
    name: &'static str,
}

impl Charon {
    fn start(side: Side, tag: &str, conf_text: &str) -> Charon {
        let name = side.ns();
        let conf = guest_out().join(format!("{tag}-{name}-charon.conf"));
        std::fs::write(&conf, conf_text).unwrap();
        lab_sh(&format!(
            "lab_charon_start {name} {name} '{}' 'default=1 ike=2 cfg=1 knl=2 net=1 chd=2' 'keep_alive = {KEEP_ALIVE}s'",
            conf.display()
        ));
        Charon { name }
    }

    fn initiate(&self) {
        lab_sh(&format!("lab_initiate {} lan 30", self.name));
    }

    fn list_sas(&self) -> String {
        lab_sh(&format!("lab_swanctl {} --list-sas", self.name))
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg("-c")
            .arg(format!(
                ". '{}'; lab_charon_stop {}",
                repo_root().join("tests/lab/lib.sh").display(),
                self.name
            ))
            .output();
    }
}

/// One SA as `ip -s xfrm state` shows it.
#[derive(Debug)]
struct KernelSa {
    src: String,
    dst: String,
    encap: Option<(u16, u16)>,
    packets: u64,
    /// Anti-replay context: the highest sequence number received, the
    /// last one sent (low 32 bits), and the window's bitmap (legacy form).
    seq: u32,
    oseq: u32,
    bitmap: u32,
}

fn kernel_sas(ns: &str) -> Vec<KernelSa> {
    let text = sh(&format!("ip -n {ns} -s xfrm state"));
    let mut out: Vec<KernelSa> = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let t = l.trim();
        if let Some(rest) = t.strip_prefix("src ") {
            let mut w = rest.split_whitespace();
            let src = w.next().unwrap_or_default().to_string();
            let dst = w.nth(1).unwrap_or_default().to_string();
            out.push(KernelSa {
                src,
                dst,
                encap: None,
                packets: 0,
                seq: 0,
                oseq: 0,
                bitmap: 0,
            });
        } else if let Some(rest) = t.strip_prefix("encap type espinudp ") {
            let w: Vec<&str> = rest.split_whitespace().collect();
            let port = |k: &str| {
                w.iter()
                    .position(|x| *x == k)
                    .and_then(|i| w.get(i + 1))
                    .and_then(|p| p.parse::<u16>().ok())
            };
            if let (Some(sa), Some(s), Some(d)) = (out.last_mut(), port("sport"), port("dport")) {
                sa.encap = Some((s, d));
            }
        } else if t.contains("oseq 0x")
            && let Some(sa) = out.last_mut()
        {
            // "anti-replay context: seq 0x0, oseq 0x5, bitmap 0x00000000"
            // or, with ESN, "seq-hi 0x0, seq 0x0, oseq-hi 0x0, oseq 0x5".
            let w: Vec<&str> = t.split([' ', ',']).filter(|x| !x.is_empty()).collect();
            let hex = |k: &str| {
                w.iter()
                    .position(|x| *x == k)
                    .and_then(|i| w.get(i + 1))
                    .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok())
            };
            sa.seq = hex("seq").unwrap_or_default();
            sa.oseq = hex("oseq").unwrap_or_default();
            sa.bitmap = hex("bitmap").unwrap_or_default();
        } else if t == "lifetime current:"
            && let (Some(sa), Some(next)) = (out.last_mut(), lines.next())
        {
            // "  1234(bytes), 5(packets)"
            sa.packets = next
                .split(',')
                .find(|p| p.contains("(packets)"))
                .and_then(|p| p.trim().trim_end_matches("(packets)").parse().ok())
                .unwrap_or(0);
        }
    }
    out
}

/// gw-a's and gw-b's SAs are ESP in UDP: gw-a from 4500 to 4500, gw-b
/// from 4500 to the NAT's port for gw-a's 4500 (returned), with traffic
/// both ways.
fn assert_encapsulated(want_nat_port: Option<u16>) -> u16 {
    let a = kernel_sas("gw-a");
    let b = kernel_sas("gw-b");
    assert_eq!(a.len(), 2, "gw-a: {a:?}");
    assert_eq!(b.len(), 2, "gw-b: {b:?}");
    for sa in &a {
        assert_eq!(sa.encap, Some((4500, 4500)), "gw-a: {sa:?}");
    }
    let out = b
        .iter()
        .find(|s| s.src == "192.0.2.2")
        .expect("gw-b out SA");
    let inb = b.iter().find(|s| s.dst == "192.0.2.2").expect("gw-b in SA");
    let (sport, nat_port) = out.encap.unwrap_or_else(|| panic!("gw-b: {out:?}"));
    assert_eq!(sport, 4500);
    assert_eq!(inb.encap, Some((nat_port, 4500)), "gw-b: {inb:?}");
    assert_eq!(out.dst, "192.0.2.1");
    if let Some(w) = want_nat_port {
        assert!(
            (w..w + 1000).contains(&nat_port),
            "NAT port {nat_port}, want {w}-{}",
            w + 999
        );
    }
    for sa in a.iter().chain(&b) {
        assert!(sa.packets > 0, "no traffic: {sa:?}");
    }
    nat_port
}

fn ping(from: &str, to: &str) {
    common::ping_through(from, to, 3);
}

/// Waits up to 20 s until a ping gets through (the tunnel recovered),
/// then a normal check both ways. If it does not: both gateways' SAs and
/// the logs of `ikeds`.
fn recovers(what: &str, ikeds: &[&Iked]) -> Duration {
    let t = Instant::now();
    while !sh_ok("ip netns exec host-a ping -c1 -W1 10.2.0.2") {
        if t.elapsed() >= Duration::from_secs(20) {
            let logs: Vec<String> = ikeds.iter().map(|i| i.log_text()).collect();
            panic!(
                "no ping through the tunnel after 20 s: {what}\ngw-a:\n{}\ngw-b:\n{}\n{}",
                sh("ip -n gw-a -s xfrm state"),
                sh("ip -n gw-b -s xfrm state"),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = t.elapsed();
    ping("host-a", "10.2.0.2");
    ping("host-b", "10.1.0.2");
    took
}

/// How many packets gw-b sends before [`address_move`]: well past the
/// replay window (32), and past what [`recovers`] sends in its 20 s.
const BURST: u32 = 200;

/// The NAT's public address changes (SNAT to a second address,
/// 192.0.2.3, on its outside link) after gw-b sent [`BURST`] packets:
/// gw-b (`b`) follows the kernel's MAPPING event with a new SA in place of
/// each old one (an SA's addresses are its identity), and the tunnel
/// recovers only if the new outbound SA goes on from the old one's
/// sequence number: gw-a's inbound SA, which has not moved, drops
/// everything at or below its top as a replay.
fn address_move(b: &Iked) {
    sh(&format!(
        "ip netns exec host-b ping -q -c {BURST} -i 0.01 -W 2 10.1.0.2"
    ));
    let out_sa = |ns: &str, src: &str| {
        kernel_sas(ns)
            .into_iter()
            .find(|s| s.src == src)
            .unwrap_or_else(|| panic!("{ns}: no SA from {src}: {:?}", kernel_sas(ns)))
    };
    let before = out_sa("gw-b", "192.0.2.2");
    assert!(before.oseq >= BURST, "gw-b sent {BURST}: {before:?}");
    lab_sh(
        "ip -n nat addr add 192.0.2.3/24 dev wan
         lab_ns nat iptables-legacy -t nat -R POSTROUTING 1 -o wan -p udp -j SNAT --to-source 192.0.2.3:30000-30999
         lab_ns nat iptables-legacy -t nat -R POSTROUTING 2 -o wan -j SNAT --to-source 192.0.2.3
         lab_ns nat conntrack -F 2>/dev/null",
    );
    let took = recovers(
        &format!(
            "the tunnel after the NAT's public address changed \
             (gw-b's outbound SA before: {before:?})"
        ),
        &[b],
    );
    let after = out_sa("gw-b", "192.0.2.2");
    eprintln!(
        "natt lab: iked/iked followed the NAT to a new address in {:.1} s \
         (gw-b's outbound sequence number {} before, {} after)",
        took.as_secs_f64(),
        before.oseq,
        after.oseq
    );
    assert!(
        b.established().remote_addr.starts_with("192.0.2.3:3"),
        "{:?}",
        b.established()
    );
    assert_eq!(after.dst, "192.0.2.3", "{after:?}");
    assert!(
        after.oseq > before.oseq,
        "gw-b's outbound sequence numbers went on: {before:?} then {after:?}"
    );
    // The inbound SA has received every packet of the last 32: with its
    // window started again it would know only the few since the move.
    let inb = kernel_sas("gw-b")
        .into_iter()
        .find(|s| s.dst == "192.0.2.2")
        .expect("gw-b in SA");
    assert_eq!(inb.src, "192.0.2.3", "{inb:?}");
    assert_eq!(
        inb.bitmap, 0xffff_ffff,
        "gw-b's inbound replay window was kept: {inb:?}"
    );
}

/// The NAT keeps gw-a's UDP 4500 mapping while the tunnel is idle (the
/// keepalives), and traffic from gw-b's side reaches host-a then.
fn idle_mapping_survives() {
    let before = sh("ip netns exec nat conntrack -L -p udp --orig-port-src 4500 2>/dev/null");
    assert!(before.contains("dport=4500"), "{before}");
    std::thread::sleep(Duration::from_secs(IDLE));
    let after = sh("ip netns exec nat conntrack -L -p udp --orig-port-src 4500 2>/dev/null");
    assert!(after.contains("dport=4500"), "mapping expired: {after}");
    ping("host-b", "10.1.0.2");
}

fn report(what: &str, t: Instant) {
    eprintln!("natt lab: {what}: ok in {:.1} s", t.elapsed().as_secs_f64());
}

/// iked behind the NAT initiates to iked.
fn iked_to_iked() {
    let t = Instant::now();
    topology(false);
    let mut a = iked(Side::A, "ii", &conf(Side::A, "172.16.0.2", "192.0.2.2", ""));
    let mut b = iked(Side::B, "ii", &conf(Side::B, "192.0.2.2", "%any", ""));
    a.up("site");
    let sa = a.established();
    assert_eq!(
        (sa.local_addr.as_str(), sa.remote_addr.as_str()),
        ("172.16.0.2:4500", "192.0.2.2:4500"),
        "{sa:?}"
    );
    assert!(sa.nat_local && !sa.nat_remote && sa.encap, "{sa:?}");
    let text = String::from_utf8_lossy(&a.ikectl(&["status"]).stdout).to_string();
    assert!(
        text.contains("ESP in UDP (NAT traversal)") && text.contains("[NAT]"),
        "{text}"
    );
    ping("host-a", "10.2.0.2");
    let port = assert_encapsulated(Some(20000));
    let sb = b.established();
    assert_eq!(sb.remote_addr, format!("192.0.2.1:{port}"));
    assert!(!sb.nat_local && sb.nat_remote && sb.encap, "{sb:?}");
    idle_mapping_survives();
    remap();
    let took = recovers(
        "the tunnel after the NAT's mapping changed (iked/iked)",
        &[&a, &b],
    );
    eprintln!(
        "natt lab: iked/iked recovered in {:.1} s",
        took.as_secs_f64()
    );
    let new = assert_encapsulated(Some(30000));
    assert_eq!(b.established().remote_addr, format!("192.0.2.1:{new}"));
    assert!(
        b.log_text().contains("NAT mapping of the peer changed"),
        "{}",
        b.log_text()
    );
    address_move(&b);
    let out = a.ikectl(&["down", "site"]);
    assert!(out.status.success(), "{out:?}");
    wait_until(Duration::from_secs(10), "both kernels clean", || {
        kernel_sas("gw-a").is_empty() && kernel_sas("gw-b").is_empty()
    });
    sh("ip -n nat addr del 192.0.2.3/24 dev wan");
    a.stop();
    b.stop();
    report("iked behind NAT initiates to iked", t);
}

/// iked behind the NAT initiates to charon.
fn iked_to_charon() {
    let t = Instant::now();
    topology(false);
    let _c = Charon::start(Side::B, "ic", &conf(Side::B, "192.0.2.2", "%any", ""));
    let mut a = iked(Side::A, "ic", &conf(Side::A, "172.16.0.2", "192.0.2.2", ""));
    a.up("site");
    let sa = a.established();
    assert_eq!(sa.local_addr, "172.16.0.2:4500");
    assert_eq!(sa.remote_addr, "192.0.2.2:4500");
    assert!(sa.nat_local && !sa.nat_remote, "{sa:?}");
    ping("host-a", "10.2.0.2");
    let port = assert_encapsulated(Some(20000));
    let sas = _c.list_sas();
    assert!(
        sas.contains(&format!("192.0.2.1[{port}]")),
        "charon sees gw-a at the NAT's port {port}: {sas}"
    );
    idle_mapping_survives();
    remap();
    let took = recovers(
        "the tunnel after the NAT's mapping changed (iked/charon)",
        &[&a],
    );
    eprintln!(
        "natt lab: iked/charon recovered in {:.1} s",
        took.as_secs_f64()
    );
    assert_encapsulated(Some(30000));
    let out = a.ikectl(&["down", "site"]);
    assert!(out.status.success(), "{out:?}");
    wait_until(Duration::from_secs(10), "both kernels clean", || {
        kernel_sas("gw-a").is_empty() && kernel_sas("gw-b").is_empty()
    });
    a.stop();
    report("iked behind NAT initiates to charon", t);
}

/// charon behind the NAT initiates to iked.
fn charon_to_iked() {
    let t = Instant::now();
    topology(false);
    let mut b = iked(Side::B, "ci", &conf(Side::B, "192.0.2.2", "%any", ""));
    let c = Charon::start(Side::A, "ci", &conf(Side::A, "172.16.0.2", "192.0.2.2", ""));
    c.initiate();
    let sb = b.established();
    assert!(!sb.nat_local && sb.nat_remote, "{sb:?}");
    assert_eq!(sb.local_addr, "192.0.2.2:4500");
    ping("host-a", "10.2.0.2");
    let port = assert_encapsulated(Some(20000));
    assert_eq!(sb.remote_addr, format!("192.0.2.1:{port}"));
    idle_mapping_survives();
    remap();
    let took = recovers(
        "the tunnel after the NAT's mapping changed (charon/iked)",
        &[&b],
    );
    eprintln!(
        "natt lab: charon/iked recovered in {:.1} s",
        took.as_secs_f64()
    );
    let new = assert_encapsulated(Some(30000));
    assert_eq!(b.established().remote_addr, format!("192.0.2.1:{new}"));
    let out = b.ikectl(&["down", "site"]);
    assert!(out.status.success(), "{out:?}");
    wait_until(Duration::from_secs(10), "both kernels clean", || {
        kernel_sas("gw-a").is_empty() && kernel_sas("gw-b").is_empty()
    });
    b.stop();
    report("charon behind NAT initiates to iked", t);
}

/// iked on gw-b initiates to iked behind a port forward (the responder
/// is behind NAT and sends the keepalives).
fn iked_to_iked_behind_port_forward() {
    let t = Instant::now();
    topology(true);
    let mut a = iked(Side::A, "pf", &conf(Side::A, "172.16.0.2", "%any", ""));
    let mut b = iked(Side::B, "pf", &conf(Side::B, "192.0.2.2", "192.0.2.1", ""));
    b.up("site");
    let sb = b.established();
    assert_eq!(
        (sb.local_addr.as_str(), sb.remote_addr.as_str()),
        ("192.0.2.2:4500", "192.0.2.1:4500"),
        "{sb:?}"
    );
    assert!(!sb.nat_local && sb.nat_remote, "{sb:?}");
    let sa = a.established();
    assert!(sa.nat_local && !sa.nat_remote, "{sa:?}");
    ping("host-b", "10.1.0.2");
    // Port forward: the NAT keeps 4500.
    let a_sas = kernel_sas("gw-a");
    assert!(
        a_sas.iter().all(|s| s.encap == Some((4500, 4500))),
        "{a_sas:?}"
    );
    let b_sas = kernel_sas("gw-b");
    assert!(
        b_sas
            .iter()
            .all(|s| s.encap == Some((4500, 4500)) && s.packets > 0),
        "{b_sas:?}"
    );
    wait_until(
        Duration::from_secs(KEEP_ALIVE * 3),
        "keepalives from the responder behind NAT",
        || a.log_text().contains("NAT keepalive to 192.0.2.2:4500"),
    );
    assert!(
        !b.log_text().contains("NAT keepalive"),
        "gw-b is not behind NAT"
    );
    let out = b.ikectl(&["down", "site"]);
    assert!(out.status.success(), "{out:?}");
    wait_until(Duration::from_secs(10), "both kernels clean", || {
        kernel_sas("gw-a").is_empty() && kernel_sas("gw-b").is_empty()
    });
    a.stop();
    b.stop();
    report("iked initiates to iked behind a port forward", t);
}

/// Both gateways behind NAT: gw-a behind the masquerading `nat`, gw-b
/// behind `nat-b`, which forwards UDP 500 and 4500 to it.
///
/// ```text
/// gw-a 172.16.0.2 -- nat 192.0.2.1 == 192.0.2.2 nat-b 172.17.0.1 -- 172.17.0.2 gw-b
/// ```
fn iked_to_iked_both_behind_nat() {
    let t = Instant::now();
    wire(Wiring::BothNat, false);
    let mut a = iked(Side::A, "bn", &conf(Side::A, "172.16.0.2", "192.0.2.2", ""));
    let mut b = iked(Side::B, "bn", &conf(Side::B, "172.17.0.2", "%any", ""));
    a.up("site");
    let (sa, sb) = (a.established(), b.established());
    assert!(sa.nat_local && sa.nat_remote && sa.encap, "{sa:?}");
    assert!(sb.nat_local && sb.nat_remote && sb.encap, "{sb:?}");
    assert_eq!(
        (sa.local_addr.as_str(), sa.remote_addr.as_str()),
        ("172.16.0.2:4500", "192.0.2.2:4500")
    );
    ping("host-a", "10.2.0.2");
    let port: u16 = sb
        .remote_addr
        .strip_prefix("192.0.2.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{sb:?}"));
    assert!((20000..21000).contains(&port), "{sb:?}");
    let b_sas = kernel_sas("gw-b");
    assert!(
        b_sas
            .iter()
            .all(|s| s.packets > 0
                && (s.encap == Some((4500, port)) || s.encap == Some((port, 4500)))),
        "{b_sas:?}"
    );
    // Both send keepalives.
    for (x, to) in [(&a, "192.0.2.2:4500"), (&b, "192.0.2.1:")] {
        wait_until(
            Duration::from_secs(KEEP_ALIVE * 3),
            "keepalives from both sides",
            || x.log_text().contains(&format!("NAT keepalive to {to}")),
        );
    }
    remap();
    recovers(
        "the tunnel after gw-a's NAT mapping changed (both behind NAT)",
        &[&a, &b],
    );
    let nb = b.established();
    assert!(nb.remote_addr.starts_with("192.0.2.1:3"), "{nb:?}");
    let out = a.ikectl(&["down", "site"]);
    assert!(out.status.success(), "{out:?}");
    wait_until(Duration::from_secs(10), "both kernels clean", || {
        kernel_sas("gw-a").is_empty() && kernel_sas("gw-b").is_empty()
    });
    a.stop();
    b.stop();
    report("both behind NAT, iked to iked", t);
}

/// `encap = yes` without NAT (no NAT rules in the path: straight link).
fn forced_encap_without_nat() {
    let t = Instant::now();
    wire(Wiring::Straight, false);
    let mut a = iked(
        Side::A,
        "fe",
        &conf(Side::A, "192.0.2.1", "192.0.2.2", "encap = yes"),
    );
    let _c = Charon::start(Side::B, "fe", &conf(Side::B, "192.0.2.2", "192.0.2.1", ""));
    a.up("site");
    let sa = a.established();
    assert_eq!(sa.local_addr, "192.0.2.1:4500");
    assert_eq!(sa.remote_addr, "192.0.2.2:4500");
    ping("host-a", "10.2.0.2");
    for ns in ["gw-a", "gw-b"] {
        let sas = kernel_sas(ns);
        assert_eq!(sas.len(), 2, "{ns}: {sas:?}");
        assert!(
            sas.iter()
                .all(|s| s.encap == Some((4500, 4500)) && s.packets > 0),
            "{ns}: {sas:?}"
        );
    }
    let out = a.ikectl(&["down", "site"]);
    assert!(out.status.success(), "{out:?}");
    a.stop();
    report("encap = yes without NAT, iked to charon", t);
}

#[test]
fn nat_traversal() {
    if !is_guest() {
        sh(&format!(
            "bash -c \". '{}'; lab_ensure_packages iptables conntrack nftables strongswan-charon \
             strongswan-swanctl libstrongswan-standard-plugins iproute2 iputils-ping\"",
            repo_root().join("tests/lab/packages.sh").display()
        ));
    }
    in_uml("nat_traversal", || {
        iked_to_iked();
        iked_to_charon();
        charon_to_iked();
        iked_to_iked_behind_port_forward();
        iked_to_iked_both_behind_nat();
        forced_encap_without_nat();
    });
}
