//! Route-based VPNs and shunts (the `policy` lane of issue 16).
//!
//! 1. A VTI tunnel: iked on gw-a with `mark_in = mark_out = 42` (a VTI
//!    device with key 42 marks what it sends and receives), `set_mark_in`
//!    and `set_mark_out`, against a plain policy-based charon on gw-b.
//!    Traffic routed into the VTI device goes through the marked SAs: the
//!    ESP packets leave with the outbound SA's set mark and the decrypted
//!    replies arrive with the inbound SA's (iptables counters), and the
//!    pings come back.
//! 2. Shunts on gw-a (iked alone): a `drop` shunt to gw-b's main address
//!    stops a ping; a reload adding a `pass` shunt for ICMP lets it through
//!    past the drop one (charon's priorities); a SIGKILLed iked leaves its
//!    shunts, the next one's cleanup removes them; a stopped one leaves
//!    nothing.

use std::process::Command;
use std::time::Duration;

use iked_lab::{sh, wait_until};

use crate::common::charon::{Charon, tail};
use crate::common::{Iked, assert_clean};
use crate::{Lab, POLICY};

const PSK: &str = "policy lab psk, not a secret 0123456789";

fn conf(a: bool, addrs: &(String, String), child_extra: &str) -> String {
    let (me, peer, my_id, peer_id, lts, rts) = if a {
        (
            &addrs.0,
            &addrs.1,
            "a.policy.example",
            "b.policy.example",
            "10.1.0.0/24",
            "10.2.0.0/24",
        )
    } else {
        (
            &addrs.1,
            &addrs.0,
            "b.policy.example",
            "a.policy.example",
            "10.2.0.0/24",
            "10.1.0.0/24",
        )
    };
    format!(
        "connections {{
    vti {{
        local_addrs = {me}
        remote_addrs = {peer}
        proposals = aes128gcm16-prfsha256-x25519
        local {{
            auth = psk
            id = {my_id}
        }}
        remote {{
            auth = psk
            id = {peer_id}
        }}
        children {{
            net {{
                local_ts = {lts}
                remote_ts = {rts}
                esp_proposals = aes128gcm16
{child_extra}            }}
        }}
    }}
}}
secrets {{
    ike-policy {{
        id-a = a.policy.example
        id-b = b.policy.example
        secret = \"{PSK}\"
    }}
}}
"
    )
}

/// The packet count of an iptables rule (mangle table, chain `chain`)
/// whose line contains `needle`.
fn counter(chain: &str, needle: &str) -> u64 {
    let out = sh(&format!(
        "ip netns exec gw-a iptables-legacy -t mangle -L {chain} -v -x -n"
    ));
    out.lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rule with {needle} in {chain}:\n{out}"))
}

/// ping from gw-a; whether every one of `count` came back.
fn ping(args: &str, count: u32) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ip netns exec gw-a ping -c {count} -i 0.1 -W 1 {args} >/dev/null 2>&1"
        ))
        .status()
        .unwrap()
        .success()
}

fn vti(lab: &Lab) {
    let addrs = lab.wan(POLICY);
    let b = Charon::start(
        "policy-b",
        "gw-b",
        &conf(false, &addrs, ""),
        "default=1 chd=2 ike=1",
        "",
        "",
    );
    let extra = "                mark_in = 42\n                mark_out = 42\n                \
                 set_mark_in = 0x7/0xff\n                set_mark_out = 0x9/0xff\n";
    let mut iked = Iked::spawn(
        "gw-a",
        "policy-vti.conf",
        "policy-vti.log",
        &conf(true, &addrs, extra),
        // As charon's VTI set-ups: the VTI device routes, iked does not.
        &["--install-routes", "no"],
    );
    iked.up("vti");
    let pols = sh("ip -n gw-a xfrm policy");
    assert_eq!(
        pols.matches("mark 0x2a/0xffffffff").count(),
        3,
        "out, in, fwd with the mark:\n{pols}"
    );
    let states = sh("ip -n gw-a xfrm state");
    assert!(
        states.contains("mark 0x2a/0xffffffff") && states.contains("output-mark 0x9/0xff"),
        "{states}"
    );
    assert!(states.contains("output-mark 0x7/0xff"), "{states}");
    sh(&format!(
        "\"$(cat /proc/sys/kernel/modprobe)\" ip_vti || true
ip -n gw-a link add vti42 type vti local {a} remote {b} key 42
ip -n gw-a link set vti42 up
ip netns exec gw-a sh -c 'echo 1 > /proc/sys/net/ipv4/conf/vti42/disable_policy'
ip -n gw-a route add 10.2.0.0/24 dev vti42
ip netns exec gw-a iptables-legacy -t mangle -A INPUT -m mark --mark 0x7/0xff -j ACCEPT
ip netns exec gw-a iptables-legacy -t mangle -A POSTROUTING -p esp -m mark --mark 0x9/0xff -j ACCEPT",
        a = addrs.0,
        b = addrs.1
    ));
    let ok = ping("-I 10.1.0.1 10.2.0.2", 3);
    let (esp_out, marked_in) = (
        counter("POSTROUTING", "mark match 0x9/0xff"),
        counter("INPUT", "mark match 0x7/0xff"),
    );
    sh("ip -n gw-a link del vti42
ip netns exec gw-a iptables-legacy -t mangle -F");
    assert!(
        ok && esp_out >= 3 && marked_in >= 3,
        "ping through the VTI device: {ok}, ESP packets out with set_mark_out: {esp_out}, \
         decrypted packets in with set_mark_in: {marked_in}\n{}\n--- iked log ---\n{}\n--- charon ---\n{}",
        sh("ip -n gw-a -s xfrm state"),
        tail(&iked.log_text(), 30),
        tail(&b.log_text(), 20)
    );
    eprintln!("policy: VTI tunnel with marks carried {esp_out} ESP packets out, {marked_in} in");
    iked.ikectl_ok(&["down", "vti"]);
    iked.stop();
    b.stop();
    assert_clean(&["gw-a"]);
}

fn shunts_conf(pass: bool) -> String {
    let pass = if pass {
        "            pass-icmp {
                remote_ts = 192.0.2.2/32[icmp]
                mode = pass
                start_action = trap
            }
"
    } else {
        ""
    };
    format!(
        "connections {{
    shunts {{
        children {{
            drop-b {{
                remote_ts = 192.0.2.2/32
                mode = drop
                start_action = trap
            }}
{pass}        }}
    }}
}}
"
    )
}

fn shunt_policies() -> String {
    sh("ip -n gw-a xfrm policy")
}

/// ICMP from gw-a's main address to gw-b's (with -I, ping sends no UDP
/// probe first).
const ICMP_B: &str = "-I 192.0.2.1 192.0.2.2";

fn shunts() {
    assert!(ping(ICMP_B, 1), "gw-b's main address answers at first");
    let mut iked = Iked::spawn(
        "gw-a",
        "policy-shunts.conf",
        "policy-shunts.log",
        &shunts_conf(false),
        &[],
    );
    wait_until(Duration::from_secs(5), "the drop shunt", || {
        shunt_policies().matches("action block").count() == 3
    });
    assert!(!ping(ICMP_B, 2), "the drop shunt stops the ping");
    // A reload adds the pass shunt: ICMP passes, the drop one stays.
    iked.write_conf(&shunts_conf(true));
    iked.ikectl_ok(&["reload"]);
    let p = shunt_policies();
    assert_eq!(p.matches("action block").count(), 3, "{p}");
    assert_eq!(p.matches("proto icmp").count(), 3, "{p}");
    assert!(
        ping(ICMP_B, 2),
        "the pass shunt lets ICMP through:\n{p}\n{}",
        tail(&iked.log_text(), 20)
    );
    // Not the rest: ping's UDP probe (without -I) is still dropped.
    assert!(!ping("192.0.2.2", 1), "the drop shunt still drops UDP");
    // A crash leaves the shunts; the next iked removes them first.
    iked.signal("KILL");
    assert_eq!(shunt_policies().matches("action block").count(), 3);
    iked.write_conf(&shunts_conf(false));
    iked.start(&[]);
    wait_until(
        Duration::from_secs(5),
        "the restarted iked's shunts",
        || {
            let p = shunt_policies();
            p.matches("action block").count() == 3 && !p.contains("proto icmp")
        },
    );
    assert_eq!(
        iked.log_lines_with(&["left in the kernel by a previous iked"]),
        1,
        "{}",
        tail(&iked.log_text(), 20)
    );
    assert!(!ping(ICMP_B, 1));
    // A stop removes them.
    iked.stop();
    let p = shunt_policies();
    assert!(!p.contains("action block"), "{p}");
    assert!(ping(ICMP_B, 1), "gw-b's main address answers again");
    assert_clean(&["gw-a"]);
}

pub fn run(lab: &Lab) {
    let t = std::time::Instant::now();
    vti(lab);
    eprintln!("policy: VTI in {:.1} s", t.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    shunts();
    eprintln!("policy: shunts in {:.1} s", t.elapsed().as_secs_f64());
}
