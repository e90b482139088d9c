//! The SA options against charon: an IPComp tunnel (`ipcomp = yes` on both
//! sides) that carries traffic the kernel provably compressed, its SAs
//! and policy templates shaped as charon's, and the other options
//! (`replay_window`, `copy_ecn`, `copy_dscp`) as XFRM state flags.
//!
//! iked on gw-a, charon on gw-b, both read a swanctl.conf of the same
//! form. The proof of compression is the kernel's own count: the
//! outbound IPComp SA counts the packets before compression, the ESP SA
//! inside it what DEFLATE left of them; pings of zeros shrink to a
//! fraction.

use std::collections::BTreeSet;

use crate::common::charon::Charon;
use crate::common::{Iked, assert_clean};
use crate::{Lab, SAOPT};

const PSK: &str = "saopt lab psk, not a secret 0123456789";

fn conf(a: bool, addrs: &(String, String)) -> String {
    let (me, peer, lts, rts, extra) = if a {
        (
            &addrs.0,
            &addrs.1,
            "10.1.0.0/24",
            "10.2.0.0/24",
            "                replay_window = 128\n                copy_ecn = no\n                \
             copy_dscp = yes\n                hw_offload = auto\n",
        )
    } else {
        (&addrs.1, &addrs.0, "10.2.0.0/24", "10.1.0.0/24", "")
    };
    // A child only iked wants offloaded (`yes`): the lab's veth devices
    // cannot, so it must fail with the kernel's answer.
    let (hw_l, hw_r, hw_extra) = if a {
        (
            "10.1.0.2/32[udp/9]",
            "10.2.0.2/32[udp/9]",
            "                hw_offload = yes\n",
        )
    } else {
        ("10.2.0.2/32[udp/9]", "10.1.0.2/32[udp/9]", "")
    };
    format!(
        "connections {{
    saopt {{
        local_addrs = {me}
        remote_addrs = {peer}
        proposals = aes128gcm16-prfsha256-x25519
        mobike = no
        local {{
            auth = psk
            id = {me}
        }}
        remote {{
            auth = psk
            id = {peer}
        }}
        children {{
            comp {{
                local_ts = {lts}
                remote_ts = {rts}
                esp_proposals = aes128gcm16
                ipcomp = yes
{extra}            }}
            hw {{
                local_ts = {hw_l}
                remote_ts = {hw_r}
                esp_proposals = aes128gcm16
{hw_extra}            }}
        }}
    }}
}}
secrets {{
    ike-saopt {{
        secret = \"{PSK}\"
    }}
}}
"
    )
}

/// One SA of `ip -s xfrm state`: protocol, mode, flags line, and the
/// bytes and packets of its current lifetime.
#[derive(Debug, Clone)]
struct State {
    src: String,
    proto: String,
    mode: String,
    text: String,
    bytes: u64,
    packets: u64,
}

fn parse_states(text: &str) -> Vec<State> {
    let mut out: Vec<State> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if let Some(rest) = l.strip_prefix("src ") {
            let src = rest.split_whitespace().next().unwrap_or("").to_owned();
            out.push(State {
                src,
                proto: String::new(),
                mode: String::new(),
                text: String::new(),
                bytes: 0,
                packets: 0,
            });
        }
        let Some(s) = out.last_mut() else { continue };
        s.text.push_str(l);
        s.text.push('\n');
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() == Some(&"proto") {
            s.proto = w.get(1).copied().unwrap_or("").to_owned();
            if let Some(i) = w.iter().position(|x| *x == "mode") {
                s.mode = w.get(i + 1).copied().unwrap_or("").to_owned();
            }
        }
        if l.trim() == "lifetime current:"
            && let Some(n) = lines.next()
        {
            // "  1234(bytes), 5(packets)"
            let nums: Vec<u64> = n
                .split(',')
                .filter_map(|x| x.trim().split('(').next()?.parse().ok())
                .collect();
            s.text.push_str(n);
            s.text.push('\n');
            if let [b, p, ..] = nums[..] {
                s.bytes = b;
                s.packets = p;
            }
        }
    }
    out
}

/// The SAs as (protocol, mode), sorted: the shape, without SPIs.
fn shape(states: &[State]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = states
        .iter()
        .map(|s| (s.proto.clone(), s.mode.clone()))
        .collect();
    v.sort();
    v
}

/// A template: (protocol, mode, level).
type Tmpl = (String, String, String);

/// One policy's templates: (direction, templates).
type Pol = (String, Vec<Tmpl>);

/// The policies' templates per direction.
fn templates(ns: &str) -> BTreeSet<Pol> {
    let text = iked_lab::sh(&format!("ip -n {ns} xfrm policy"));
    let mut out = BTreeSet::new();
    let mut cur: Option<Pol> = None;
    let mut last: Option<(String, String)> = None;
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if l.starts_with("src ") {
            if let Some(c) = cur.take().filter(|c| !c.1.is_empty()) {
                out.insert(c);
            }
            cur = Some((String::new(), Vec::new()));
        } else if w.first() == Some(&"dir") {
            if let Some(c) = cur.as_mut() {
                c.0 = w.get(1).copied().unwrap_or("").to_owned();
            }
        } else if w.first() == Some(&"proto") {
            let mode = w
                .iter()
                .position(|x| *x == "mode")
                .and_then(|i| w.get(i + 1))
                .copied()
                .unwrap_or("");
            last = Some((w.get(1).copied().unwrap_or("").to_owned(), mode.to_owned()));
        } else if w.first() == Some(&"level")
            && let (Some(c), Some((p, m))) = (cur.as_mut(), last.take())
        {
            c.1.push((p, m, w.get(1).copied().unwrap_or("").to_owned()));
        }
    }
    if let Some(c) = cur.filter(|c| !c.1.is_empty()) {
        out.insert(c);
    }
    out
}

fn ping_zeros(count: u32) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", "host-a", "ping", "-c", &count.to_string()])
        .args([
            "-i", "0.05", "-W", "2", "-s", "1200", "-p", "00", "10.2.0.2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ping of zeros through the IPComp tunnel: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn run(lab: &Lab) {
    let addrs = lab.wan(SAOPT);
    let b = Charon::start(
        "saopt-b",
        "gw-b",
        &conf(false, &addrs),
        "default=1 chd=2 knl=2",
        "",
        "",
    );
    let mut a = Iked::spawn(
        "gw-a",
        "saopt-a.conf",
        "saopt-a.log",
        &conf(true, &addrs),
        &[],
    );
    a.ikectl_ok(&["up", "saopt", "--child", "comp", "--timeout", "30"]);
    iked_lab::wait_until(std::time::Duration::from_secs(10), "comp on charon", || {
        b.installed("comp")
    });
    ping_zeros(20);

    let sa_a = parse_states(&iked_lab::sh("ip -n gw-a -s xfrm state"));
    let sa_b = parse_states(&iked_lab::sh("ip -n gw-b -s xfrm state"));
    let dump = format!("gw-a:\n{sa_a:#?}\ngw-b:\n{sa_b:#?}");
    // Each side: an IPComp SA in tunnel mode and an ESP SA in transport
    // mode per direction, and the kernel's IPIP SA for uncompressed
    // packets (proto 4), as charon installs them.
    assert_eq!(shape(&sa_a), shape(&sa_b), "{dump}");
    for s in [&sa_a, &sa_b] {
        let sh = shape(s);
        assert_eq!(
            sh.iter()
                .filter(|x| x.0 == "comp" && x.1 == "tunnel")
                .count(),
            2,
            "{dump}"
        );
        assert_eq!(
            sh.iter()
                .filter(|x| x.0 == "esp" && x.1 == "transport")
                .count(),
            2,
            "{dump}"
        );
    }
    assert!(
        sa_a.iter()
            .filter(|s| s.proto == "comp")
            .all(|s| s.text.contains("comp deflate")),
        "{dump}"
    );
    assert_eq!(
        templates("gw-a"),
        templates("gw-b"),
        "policy templates differ\n{}\n{}",
        iked_lab::sh("ip -n gw-a xfrm policy"),
        iked_lab::sh("ip -n gw-b xfrm policy")
    );
    // Compressed: iked's outbound IPComp SA saw the pings whole, its ESP
    // SA carried much less; the same on charon's side for the replies.
    for (side, states, me) in [("iked", &sa_a, &addrs.0), ("charon", &sa_b, &addrs.1)] {
        let out = |p: &str| {
            states
                .iter()
                .find(|s| s.proto == p && &s.src == me)
                .unwrap_or_else(|| panic!("{side}: no outbound {p} SA\n{dump}"))
        };
        let (comp, esp) = (out("comp"), out("esp"));
        assert!(comp.packets >= 20 && esp.packets >= 20, "{side}: {dump}");
        assert!(
            esp.bytes * 4 < comp.bytes,
            "{side}: ESP carried {} bytes for {} before compression\n{dump}",
            esp.bytes,
            comp.bytes
        );
        eprintln!(
            "saopt: {side} sent {} packets, {} bytes before compression, {} in ESP",
            comp.packets, comp.bytes, esp.bytes
        );
    }
    // iked's other options in its inbound ESP SA: the 128-packet window
    // (bitmap form) and the flags.
    let esp_in = sa_a
        .iter()
        .find(|s| s.proto == "esp" && s.src == addrs.1)
        .unwrap();
    assert!(esp_in.text.contains("replay_window 128"), "{}", esp_in.text);
    assert!(
        esp_in.text.contains("noecn") && esp_in.text.contains("decap-dscp"),
        "{}",
        esp_in.text
    );

    // hw_offload = yes on a device without ESP offload: the child fails,
    // saying why, and leaves nothing (the comp child is untouched).
    let hw = a.ikectl(&["up", "saopt", "--child", "hw", "--timeout", "20"]);
    assert!(!hw.status.success(), "hw_offload = yes came up on veth");
    iked_lab::wait_until(std::time::Duration::from_secs(5), "iked's reason", || {
        a.log_lines_with(&[
            "hw_offload = yes: the kernel installed ESP SA",
            "without hardware offload",
        ]) > 0
    });
    iked_lab::wait_until(
        std::time::Duration::from_secs(5),
        "the hw child gone",
        || !iked_lab::sh("ip -n gw-a xfrm policy").contains("10.2.0.2/32"),
    );

    // charon rekeys the Child SA (iked answers CREATE_CHILD_SA): the new
    // one has IPComp too, with new CPIs, and compresses.
    let out_comp = |ns: &str, me: &str| {
        parse_states(&iked_lab::sh(&format!("ip -n {ns} -s xfrm state")))
            .into_iter()
            .filter(|s| s.proto == "comp" && s.src == me)
            .collect::<Vec<_>>()
    };
    let spi = |s: &State| {
        s.text
            .split_whitespace()
            .skip_while(|w| *w != "spi")
            .nth(1)
            .unwrap_or("")
            .to_owned()
    };
    let before: Vec<String> = out_comp("gw-a", &addrs.0).iter().map(spi).collect();
    b.swanctl_ok(&["--rekey", "--child", "comp"]);
    iked_lab::wait_until(
        std::time::Duration::from_secs(10),
        "iked's new outbound IPComp SA",
        || {
            let now = out_comp("gw-a", &addrs.0);
            now.len() == 1 && !before.contains(&spi(&now[0]))
        },
    );
    ping_zeros(10);
    let after = out_comp("gw-a", &addrs.0);
    assert!(
        after[0].packets >= 10,
        "after the rekey: {after:#?}\n{}",
        a.log_text()
    );
    let esp_out = parse_states(&iked_lab::sh("ip -n gw-a -s xfrm state"))
        .into_iter()
        .filter(|s| s.proto == "esp" && s.src == addrs.0)
        .collect::<Vec<_>>();
    assert_eq!(esp_out.len(), 1, "{esp_out:#?}");
    assert!(
        esp_out[0].bytes * 4 < after[0].bytes,
        "{after:#?}\n{esp_out:#?}"
    );
    std::fs::write(
        iked_lab::guest_out().join("saopt-xfrm.txt"),
        iked_lab::sh(
            "for n in gw-a gw-b; do echo \"== $n\"; ip -n $n -s xfrm state; ip -n $n xfrm policy; done",
        ),
    )
    .unwrap();

    a.ikectl_ok(&["down", "saopt"]);
    a.stop();
    b.stop();
    assert_clean(&["gw-a", "gw-b"]);
}
