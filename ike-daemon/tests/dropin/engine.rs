//! The engine's drop-in keys against charon: `keyingtries = 0` with
//! `start_action = start` against a charon that comes up only after
//! several tries (short retransmissions, so the tries, not one long
//! retransmission, bring it up; until then gw-b drops IKE), the tunnel
//! then carrying pings through ESP; then `rekey_time = 5s` alone on
//! iked's child (charon's defaults make it life 5 s, rand 0) under a
//! steady ping every 0.1 s: several rekeys, not one ping lost, with the
//! SAs carrying those times as the kernel's soft and hard limits.

use std::time::{Duration, Instant};

use crate::common::charon::Charon;
use crate::common::{Iked, assert_clean, esp_packets, ping_through};
use crate::{ENGINE, Lab, site_conf};

const PSK: &str = "engine lab psk, not a secret 0123456789";

/// gw-a's (iked's, `a`: it starts the tunnel and keeps trying) or gw-b's
/// (charon's) swanctl.conf; `child`: more lines of iked's child.
fn conf(a: bool, addrs: &(String, String), child: &[&str]) -> String {
    if a {
        let child: Vec<&str> = ["start_action = start"]
            .iter()
            .chain(child)
            .copied()
            .collect();
        site_conf("engine", PSK, a, addrs, &["keyingtries = 0"], &child)
    } else {
        site_conf("engine", PSK, a, addrs, &[], &[])
    }
}

pub fn run(lab: &Lab) {
    let addrs = lab.wan(ENGINE);
    // gw-b is silent until charon has its configuration (a charon still
    // loading it answers NO_PROPOSAL_CHOSEN, a refusal that ends the
    // tries, as charon's own keyingtries).
    let block = format!("INPUT -d {} -p udp -j DROP", addrs.1);
    iked_lab::sh(&format!("ip netns exec gw-b iptables-legacy -I {block}"));
    let t0 = Instant::now();
    // One try: the request and one retransmission, 0.5 s + 0.9 s.
    let mut a = Iked::spawn(
        "gw-a",
        "engine-a.conf",
        "engine-a.log",
        &conf(true, &addrs, &[]),
        &["--retransmit-timeout", "0.5", "--retransmit-tries", "1"],
    );
    // Nobody answers on gw-b yet: at least two tries go unanswered.
    iked_lab::wait_until(Duration::from_secs(20), "two tries of iked", || {
        a.log_lines_with(&["peer not responding, trying again (3/forever)"]) >= 1
    });
    let b = Charon::start(
        "engine-b",
        "gw-b",
        &conf(false, &addrs, &[]),
        "default=1",
        "",
        "",
    );
    iked_lab::wait_until(Duration::from_secs(20), "charon's configuration", || {
        b.swanctl_ok(&["--list-conns"]).contains("engine:")
    });
    iked_lab::sh(&format!("ip netns exec gw-b iptables-legacy -D {block}"));
    iked_lab::wait_until(Duration::from_secs(20), "net on charon", || {
        b.installed("net")
    });
    let up = t0.elapsed();
    let sas = a.status();
    assert_eq!(sas.len(), 1, "{sas:?}");
    let log = a.log_text();
    let tries = log.matches("peer not responding, trying again").count();
    assert!(tries >= 2, "{tries} tries:\n{log}");
    assert!(!log.contains("failed: peer not responding"), "{log}");
    let before = esp_packets("gw-a");
    ping_through("host-a", "10.2.0.2", 10);
    let after = esp_packets("gw-a");
    assert!(
        after >= before + 20,
        "ESP packets on gw-a: {before} -> {after}"
    );
    eprintln!(
        "dropin/engine: keyingtries = 0: up after {tries} tries in {:.1} s",
        up.as_secs_f64()
    );
    a.stop();
    lab.clean();

    // rekey_time = 5s alone: iked rekeys 4.5 s after each install.
    let mut a = Iked::spawn(
        "gw-a",
        "engine-rekey-a.conf",
        "engine-rekey-a.log",
        &conf(true, &addrs, &["rekey_time = 5s"]),
        &[],
    );
    iked_lab::wait_until(Duration::from_secs(20), "net on charon", || {
        b.installed("net")
    });
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", "host-a", "ping", "-c", "130", "-i", "0.1"])
        .args(["-W", "2", "10.2.0.2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rekeys = a.log_lines_with(&["CHILD SA net", "rekeyed to net"]);
    assert!(rekeys >= 2, "{rekeys} rekeys:\n{}", a.log_text());
    assert!(
        text.contains("130 packets transmitted, 130 received"),
        "pings lost over {rekeys} rekeys:\n{text}"
    );
    let esp = esp_packets("gw-a");
    assert!(esp > 0, "no ESP packets on the current SAs");
    // The kernel's safety net: iked's SAs carry charon's time limits
    // (soft rekey_time, hard life_time), so they end without iked.
    let states = iked_lab::sh("ip -n gw-a -s xfrm state");
    assert!(
        states.contains("expire add: soft 5(sec), hard 5(sec)"),
        "no time limits on iked's SAs:\n{states}"
    );
    eprintln!("dropin/engine: rekey_time = 5s: 130 of 130 pings over {rekeys} rekeys");
    a.stop();
    b.stop();
    lab.clean();
    assert_clean(&["gw-a", "gw-b"]);
}
