//! On-demand tunnels, dead peer detection and the actions, end to end in
//! the UML kernel lab (tests/lab, needs root), iked against iked in the
//! namespaces gw-a and gw-b:
//!
//! ```text
//! host-a 10.1.0.2 --- 10.1.0.1 gw-a 192.0.2.1 === 192.0.2.2 gw-b 10.2.0.1 --- 10.2.0.2 host-b
//! ```
//!
//! UML boots once; the cases run one after the other on the same pair of
//! daemons (gw-b trapped too, so its Child SAs as responder take over its
//! trap), gw-a's configuration changed by `ikectl reload`:
//! 1. `start_action: trap`: trap policies and nothing else; many parallel
//!    flows bring up exactly one IKE SA; after `down` the trap is still
//!    there and the next packet brings the tunnel up again; a reload that
//!    drops the trap removes it.
//! 2. `dpd_action: clear`: gw-b's iked killed with SIGKILL; gw-a finds the
//!    peer dead within dpd_delay + the retransmission schedule and leaves
//!    nothing in the kernel.
//! 3. `dpd_action: restart`: the same with gw-b's iked started again at
//!    once (a rebooted peer that knows nothing of the old SA): gw-a finds
//!    the old SA dead and brings up a new one.
//! 4. `close_action: start`: gw-b deletes the IKE SA; gw-a brings it back.
//!    `dpd_action: trap`: the dead peer's tunnel becomes a trap, which the
//!    next packet (once the peer is back) brings up.
//! 5. Against strongSwan's charon in gw-b: a trapped tunnel comes up on the
//!    first packets, once on both sides; charon killed with SIGKILL, iked
//!    clears the dead peer's SAs and only the trap stays.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ike::control::IkeSaStatus;
use iked_lab::{guest_out, in_uml, is_guest, lab_sh, repo_root, sh, sh_ok, wait_until};

mod common;
use common::{Iked, policies, states};

/// Short retransmissions, so that a dead peer is found in seconds:
/// 1 s, then 1 s, then given up after 1 s more (3 s in all).
const FAST: &[&str] = &[
    "--retransmit-timeout",
    "1",
    "--retransmit-base",
    "1",
    "--retransmit-tries",
    "2",
];

fn config(
    me: &str,
    peer: &str,
    lts: &str,
    rts: &str,
    extra_conn: &str,
    extra_child: &str,
) -> String {
    format!(
        "connections:
  site:
    local_addrs: [{me}]
    remote_addrs: [{peer}]
    proposals: [aes256gcm16-prfsha256-x25519]
    local:  {{ auth: psk, id: {me} }}
    remote: {{ auth: psk, id: {peer} }}
{extra_conn}    children:
      lan:
        local_ts: [{lts}]
        remote_ts: [{rts}]
        esp_proposals: [aes256gcm16]
{extra_child}secrets:
  ike:
    - {{ ids: [{me}, {peer}], secret: \"actions lab key\" }}
"
    )
}

fn gw_a(extra_conn: &str, extra_child: &str) -> String {
    config(
        "192.0.2.1",
        "192.0.2.2",
        "10.1.0.0/24",
        "10.2.0.0/24",
        extra_conn,
        extra_child,
    )
}

/// The index of gw-a's out policy: the kernel keeps it when a policy is
/// replaced in place (XFRM_MSG_UPDPOLICY) and gives a new one when a policy
/// is deleted and added, so an unchanged index means no flap.
fn out_policy_index(ns: &str) -> String {
    let p = sh(&format!("ip -n {ns} -s xfrm policy list dir out"));
    p.split_whitespace()
        .skip_while(|w| *w != "index")
        .nth(1)
        .unwrap_or_else(|| panic!("no out policy: {p}"))
        .to_string()
}

/// Established IKE SAs with an installed `lan`.
fn tunnels(sas: &[IkeSaStatus]) -> usize {
    sas.iter()
        .filter(|s| {
            s.state == "ESTABLISHED"
                && s.children
                    .iter()
                    .any(|c| c.name == "lan" && c.state == "INSTALLED")
        })
        .count()
}

fn wait_tunnel(a: &Iked, what: &str) {
    wait_until(Duration::from_secs(20), what, || tunnels(&a.status()) == 1);
}

/// charon's side of the connection (swanctl.conf: one setting per line).
const CHARON_CONF: &str = "connections {
    site {
        version = 2
        local_addrs = 192.0.2.2
        remote_addrs = 192.0.2.1
        proposals = aes256gcm16-prfsha256-x25519
        mobike = no
        local {
            auth = psk
            id = 192.0.2.2
        }
        remote {
            auth = psk
            id = 192.0.2.1
        }
        children {
            lan {
                local_ts = 10.2.0.0/24
                remote_ts = 10.1.0.0/24
                esp_proposals = aes256gcm16
            }
        }
    }
}
secrets {
    ike-site {
        id-a = 192.0.2.1
        id-b = 192.0.2.2
        secret = \"actions lab key\"
    }
}
";

/// IKE SAs charon lists as ESTABLISHED.
fn charon_sas() -> usize {
    lab_sh("lab_swanctl gw-b --list-sas 2>/dev/null || true")
        .lines()
        .filter(|l| l.contains("ESTABLISHED"))
        .count()
}

#[test]
fn traps_dpd_and_actions() {
    if !is_guest() {
        sh(&format!(
            "bash -c \". '{}'; lab_ensure_packages strongswan-charon strongswan-swanctl \
             libstrongswan-standard-plugins iproute2 iputils-ping\"",
            repo_root().join("tests/lab/packages.sh").display()
        ));
    }
    in_uml("traps_dpd_and_actions", || {
        lab_sh("lab_make_gateways; lab_warm_crypto");
        let trap = "        start_action: trap\n";
        let mut a = Iked::new("gw-a", "gw-a.yaml", "iked-gw-a.log", &gw_a("", trap));
        let mut b = Iked::new(
            "gw-b",
            "gw-b.yaml",
            "iked-gw-b.log",
            // Trapped too: as responder its Child SA takes over its trap.
            &config(
                "192.0.2.2",
                "192.0.2.1",
                "10.2.0.0/24",
                "10.1.0.0/24",
                "",
                trap,
            ),
        );
        a.start(FAST);
        b.start(FAST);
        let b_index = out_policy_index("gw-b");

        // --- 1. start_action: trap -----------------------------------------
        // The trap: out/in/fwd policies with a template, no SA, no IKE SA.
        let (sas, traps) = a.status_and_traps();
        assert!(sas.is_empty(), "{sas:?}");
        assert_eq!(traps.len(), 1, "{traps:?}");
        let t = &traps[0];
        assert_eq!(
            (t.connection.as_str(), t.child.as_str(), t.reason.as_str()),
            ("site", "lan", "start_action")
        );
        assert_eq!(
            (t.local_ts.clone(), t.remote_ts.clone()),
            (
                vec!["10.1.0.0/24".to_string()],
                vec!["10.2.0.0/24".to_string()]
            )
        );
        assert_eq!(policies("gw-a"), 3, "{}", sh("ip -n gw-a xfrm policy"));
        let pol = sh("ip -n gw-a xfrm policy");
        assert!(pol.contains(&format!("reqid {}", t.reqid)), "{pol}");
        assert!(states("gw-a").trim().is_empty());
        let text = a.ikectl_ok(&["status"]);
        assert!(
            text.contains("site/lan, reqid") && text.contains("trapped (start_action)"),
            "{text}"
        );

        let index = out_policy_index("gw-a");
        // Ten parallel flows (pings from host-a and gw-a, UDP): one tunnel.
        let t0 = Instant::now();
        sh("for i in 1 2 3 4 5 6 7 8; do \
              ip netns exec host-a ping -c 3 -i 0.2 -W 1 10.2.0.2 >/dev/null 2>&1 & \
            done; \
            ip netns exec host-a bash -c 'echo x > /dev/udp/10.2.0.2/5000' 2>/dev/null & \
            ip netns exec gw-a ping -c 3 -i 0.2 -W 1 10.2.0.2 >/dev/null 2>&1 & \
            wait; true");
        wait_tunnel(&a, "the trapped tunnel");
        let came_up = t0.elapsed();
        common::ping_through("host-a", "10.2.0.2", 3);
        let sas = a.status();
        assert_eq!(sas.len(), 1, "one IKE SA for all flows: {sas:?}");
        assert_eq!(sas[0].children.len(), 1, "{sas:?}");
        let first = sas[0].id;
        let reqid = sas[0].children[0].reqid;
        assert_eq!(reqid, t.reqid, "the Child SA uses the trap's reqid");
        assert_eq!(b.status().len(), 1, "gw-b: {:?}", b.status());
        // The responder's Child SA uses its trap's reqid and policies.
        let (b_sas, b_traps) = b.status_and_traps();
        assert_eq!(b_sas[0].children[0].reqid, b_traps[0].reqid, "{b_sas:?}");
        assert_eq!(policies("gw-b"), 3, "{}", sh("ip -n gw-b xfrm policy"));
        assert_eq!(out_policy_index("gw-b"), b_index);
        // The trap's policies became the Child SA's: still three, the same
        // policy (replaced in place, never deleted).
        assert_eq!(policies("gw-a"), 3, "{}", sh("ip -n gw-a xfrm policy"));
        assert_eq!(
            out_policy_index("gw-a"),
            index,
            "the out policy was replaced in place, not deleted and added"
        );
        let log = a.log_text();
        let initiated = log
            .lines()
            .filter(|l| l.contains("acquire for site/lan") && l.contains("initiating"))
            .count();
        assert_eq!(initiated, 1, "one acquire initiated:\n{log}");
        eprintln!("trap: tunnel up {came_up:?} after the first packet");

        // down: the IKE SA goes, the trap stays (and shows).
        a.ikectl_ok(&["down", "site"]);
        let (sas, traps) = a.status_and_traps();
        assert!(sas.is_empty(), "{sas:?}");
        assert_eq!(traps.len(), 1);
        assert_eq!(policies("gw-a"), 3, "{}", sh("ip -n gw-a xfrm policy"));
        assert_eq!(out_policy_index("gw-a"), index, "given back, not re-added");
        wait_until(Duration::from_secs(5), "gw-b's SAs gone", || {
            states("gw-b").trim().is_empty()
        });
        assert_eq!(policies("gw-b"), 3, "gw-b's trap stays");
        assert_eq!(out_policy_index("gw-b"), b_index);
        wait_until(Duration::from_secs(5), "gw-a's SAs gone", || {
            states("gw-a").trim().is_empty()
        });
        // The next packet brings it up again. The pings that trigger an
        // acquire (here and below) must be over before the test goes on:
        // run in the background, one sent after the `down` of 4b, started
        // a tunnel that gw-b's stop killed in IKE_AUTH, and the trap to
        // charon saw no ACQUIRE within 20 s (the failed acquire's larval
        // state in the kernel, xfrm_acq_expires 30 s, is the likely cause).
        sh("ip netns exec host-a ping -c 2 -i 0.3 -W 1 10.2.0.2 >/dev/null 2>&1; true");
        wait_tunnel(&a, "the trapped tunnel, again");
        common::ping_through("host-a", "10.2.0.2", 3);
        let sas = a.status();
        assert_eq!(sas.len(), 1);
        assert_ne!(sas[0].id, first, "a new IKE SA");
        a.ikectl_ok(&["down", "site"]);

        // A trapped child rekeyed every 2-3 s: the rekeyed Child SAs keep
        // the trap's reqid and policies (same index), and after down the
        // trap is still the same policy.
        a.write_conf(&gw_a(
            "",
            "        start_action: trap\n        rekey_time: 3s\n        life_time: 6s\n        rand_time: 1s\n",
        ));
        a.ikectl_ok(&["reload"]);
        let index = out_policy_index("gw-a");
        let reqid = a.status_and_traps().1[0].reqid;
        sh("ip netns exec host-a ping -c 2 -i 0.3 -W 1 10.2.0.2 >/dev/null 2>&1; true");
        wait_tunnel(&a, "the trapped tunnel with rekeys");
        let count = |log: String| {
            log.lines()
                .filter(|l| l.contains(" of IKE SA ") && l.contains(" rekeyed to "))
                .count()
        };
        let before = count(a.log_text());
        // 6 s of pings at 0.2 s through the rekeys: none lost.
        let ping = sh("ip netns exec host-a ping -c 30 -i 0.2 -W 2 10.2.0.2");
        assert!(ping.contains(" 0% packet loss"), "{ping}");
        let rekeys = count(a.log_text()) - before;
        assert!(rekeys >= 1, "no rekey in 5 s:\n{}", a.log_text());
        let sas = a.status();
        assert_eq!(tunnels(&sas), 1, "{sas:?}");
        assert!(sas[0].children.iter().all(|c| c.reqid == reqid), "{sas:?}");
        assert_eq!(
            out_policy_index("gw-a"),
            index,
            "rekeys kept the trap's policy"
        );
        a.ikectl_ok(&["down", "site"]);
        assert_eq!(
            out_policy_index("gw-a"),
            index,
            "the trap's policy after down"
        );
        assert_eq!(policies("gw-a"), 3, "{}", sh("ip -n gw-a xfrm policy"));
        eprintln!("trap: {rekeys} Child SA rekeys under the trap's policies");

        // ACQUIREs repeated while the tunnel comes up (the kernel sends
        // one per larval state; with xfrm_acq_expires at 1 s and gw-b's
        // iked stopped for 2.5 s, several): still one IKE SA.
        sh("ip netns exec gw-a sysctl -qw net.core.xfrm_acq_expires=1");
        let ignored = |log: String| log.matches("already being established").count();
        let before = ignored(a.log_text());
        b.pause(true);
        sh("ip netns exec host-a ping -c 20 -i 0.2 -W 1 10.2.0.2 >/dev/null 2>&1 & true");
        std::thread::sleep(Duration::from_millis(2500));
        b.pause(false);
        wait_tunnel(&a, "the trapped tunnel after repeated acquires");
        sh("sleep 2");
        assert_eq!(a.status().len(), 1, "{:?}", a.status());
        assert_eq!(b.status().len(), 1, "{:?}", b.status());
        let n = ignored(a.log_text()) - before;
        assert!(n >= 1, "no second ACQUIRE came:\n{}", a.log_text());
        eprintln!("trap: {n} further ACQUIREs ignored while the tunnel came up");
        sh("ip netns exec gw-a sysctl -qw net.core.xfrm_acq_expires=30");
        a.ikectl_ok(&["down", "site"]);

        // A reload without the trap removes it.
        a.write_conf(&gw_a("    dpd_delay: 2s\n", ""));
        a.ikectl_ok(&["reload"]);
        let (sas, traps) = a.status_and_traps();
        assert!(sas.is_empty() && traps.is_empty(), "{sas:?} {traps:?}");
        wait_until(Duration::from_secs(5), "gw-a's kernel clean", || {
            policies("gw-a") == 0 && states("gw-a").trim().is_empty()
        });
        assert!(!sh_ok("ip netns exec host-a ping -c1 -W1 10.2.0.2"));
        assert!(a.log_text().contains("trap policies of site/lan removed"));

        // --- 2. dpd_action: clear ------------------------------------------
        a.ikectl_ok(&["up", "site", "--timeout", "20"]);
        common::ping_through("host-a", "10.2.0.2", 2);
        wait_until(Duration::from_secs(5), "gw-b up", || {
            tunnels(&b.status()) == 1
        });
        b.signal("KILL");
        let t0 = Instant::now();
        // dpd_delay 2 s (twice at most: the first look may see the last
        // traffic) + 3 s of retransmissions, + 3 s of slack.
        wait_until(
            Duration::from_secs(2 + 2 + 3 + 3),
            "gw-a to clear the dead peer",
            || a.status().is_empty() && policies("gw-a") == 0 && states("gw-a").trim().is_empty(),
        );
        let cleared = t0.elapsed();
        let log = a.log_text();
        assert!(
            log.contains("peer is dead") && log.contains("peer not responding"),
            "{log}"
        );
        assert!(
            sh("ip -n gw-a route show table 220 2>/dev/null || true")
                .trim()
                .is_empty(),
            "routes removed"
        );
        eprintln!("dpd clear: cleared {cleared:?} after the kill");

        // --- 3. dpd_action: restart ----------------------------------------
        a.write_conf(&gw_a(
            "    dpd_delay: 2s\n",
            "        dpd_action: restart\n",
        ));
        a.ikectl_ok(&["reload"]);
        b.start(FAST); // removes what the killed one left
        a.ikectl_ok(&["up", "site", "--timeout", "20"]);
        let old = a.status()[0].id;
        wait_until(Duration::from_secs(5), "gw-b up", || {
            tunnels(&b.status()) == 1
        });
        // The peer reboots: its new iked knows nothing of the SA.
        b.signal("KILL");
        b.start(FAST);
        let t0 = Instant::now();
        wait_until(
            Duration::from_secs(2 + 2 + 3 + 10),
            "gw-a to restart",
            || {
                let sas = a.status();
                tunnels(&sas) == 1 && sas.iter().all(|s| s.id != old)
            },
        );
        let restarted = t0.elapsed();
        common::ping_through("host-a", "10.2.0.2", 3);
        assert!(a.log_text().contains("dpd_action restart: initiating site"));
        assert_eq!(a.status().len(), 1);
        eprintln!("dpd restart: new tunnel {restarted:?} after the peer's restart");

        // --- 4. close_action: start ----------------------------------------
        a.write_conf(&gw_a("", "        close_action: start\n"));
        a.ikectl_ok(&["reload"]);
        // The reload changed the connection; the running SA stays.
        wait_until(Duration::from_secs(5), "gw-b up", || {
            tunnels(&b.status()) == 1
        });
        let old = a.status()[0].id;
        b.ikectl_ok(&["down", "site"]);
        wait_until(Duration::from_secs(15), "gw-a to start again", || {
            let sas = a.status();
            tunnels(&sas) == 1 && sas.iter().all(|s| s.id != old)
        });
        common::ping_through("host-a", "10.2.0.2", 2);
        assert!(a.log_text().contains("close_action start: initiating site"));

        // --- 4b. dpd_action: trap ------------------------------------------
        a.write_conf(&gw_a("    dpd_delay: 2s\n", "        dpd_action: trap\n"));
        a.ikectl_ok(&["reload"]);
        // An IKE SA keeps the settings it was made with: a new one.
        a.ikectl_ok(&["down", "site"]);
        a.ikectl_ok(&["up", "site", "--timeout", "20"]);
        wait_until(Duration::from_secs(5), "gw-b up", || {
            tunnels(&b.status()) == 1
        });
        b.signal("KILL");
        wait_until(
            Duration::from_secs(2 + 2 + 3 + 3),
            "gw-a to trap the dead peer",
            || {
                let (sas, traps) = a.status_and_traps();
                sas.is_empty() && traps.len() == 1 && states("gw-a").trim().is_empty()
            },
        );
        let (_, traps) = a.status_and_traps();
        assert_eq!(traps[0].reason, "dpd_action", "{traps:?}");
        assert_eq!(policies("gw-a"), 3, "{}", sh("ip -n gw-a xfrm policy"));
        // The peer is back; the next packet brings the tunnel up.
        b.start(FAST);
        sh("ip netns exec host-a ping -c 2 -i 0.3 -W 1 10.2.0.2 >/dev/null 2>&1; true");
        wait_tunnel(&a, "the tunnel through the dpd_action trap");
        common::ping_through("host-a", "10.2.0.2", 2);

        // --- 5. against charon ---------------------------------------------
        a.ikectl_ok(&["down", "site"]);
        b.signal("TERM");
        let conf = guest_out().join("charon-gw-b.conf");
        std::fs::write(&conf, CHARON_CONF).unwrap();
        lab_sh(&format!(
            "lab_charon_start gw-b gw-b '{}' 'default=1 ike=2 cfg=1 knl=1 chd=2'",
            conf.display()
        ));
        a.write_conf(&gw_a("    dpd_delay: 2s\n", trap));
        a.ikectl_ok(&["reload"]);
        let (_, traps) = a.status_and_traps();
        assert_eq!(traps.len(), 1, "trapped again");
        assert_eq!(traps[0].reason, "start_action", "now the configuration's");
        let t0 = Instant::now();
        sh("for i in 1 2 3 4 5 6; do \
              ip netns exec host-a ping -c 3 -i 0.2 -W 1 10.2.0.2 >/dev/null 2>&1 & \
            done; wait; true");
        wait_tunnel(&a, "the trapped tunnel to charon");
        let came_up = t0.elapsed();
        lab_sh("lab_wait_for 10 'charon child' lab_child_installed gw-b lan");
        common::ping_through("host-a", "10.2.0.2", 3);
        assert_eq!(a.status().len(), 1, "{:?}", a.status());
        assert_eq!(charon_sas(), 1, "{}", lab_sh("lab_swanctl gw-b --list-sas"));
        eprintln!("charon: trapped tunnel up {came_up:?} after the first packet");
        // charon dies: iked clears; the trap (start_action) stays.
        lab_sh("kill -9 $(cat $LAB_STATE/gw-b/run/charon.pid)");
        let t0 = Instant::now();
        wait_until(
            Duration::from_secs(2 + 2 + 3 + 3),
            "gw-a to clear dead charon",
            || a.status().is_empty() && states("gw-a").trim().is_empty(),
        );
        eprintln!(
            "charon: dead peer cleared {:?} after the kill",
            t0.elapsed()
        );
        assert_eq!(
            policies("gw-a"),
            3,
            "the trap's: {}",
            sh("ip -n gw-a xfrm policy")
        );
        assert_eq!(a.status_and_traps().1.len(), 1);

        // Shutdown leaves nothing.
        a.signal("TERM");
        // SIGTERM removed the trap too.
        wait_until(Duration::from_secs(10), "gw-a clean", || {
            policies("gw-a") == 0 && states("gw-a").trim().is_empty()
        });
        lab_sh("lab_charon_stop gw-b");
    });
}
