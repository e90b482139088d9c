//! iked and ikectl end to end, in the UML kernel lab (tests/lab, needs
//! root): two iked in the namespaces gw-a and gw-b of lib.sh's topology
//!
//! ```text
//! host-a 10.1.0.2 --- 10.1.0.1 gw-a 192.0.2.1 === 192.0.2.2 gw-b 10.2.0.1 --- 10.2.0.2 host-b
//! ```
//!
//! The gateways have no route to the other subnet: the traffic flows
//! through the routes iked installs in table 220 (as charon does).
//!
//! Each test boots UML once (`iked_lab::in_uml`) and runs its body inside.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ike::control::{self, IkeSaStatus};
use iked_lab::{guest_out, in_uml, is_guest, lab_sh, repo_root, sh, sh_ok, wait_until};

mod common;
use common::{Iked, kernel_is_clean, policies, routes_are_clean, rule_220, states, table_220};

fn config(
    local: &str,
    remote: &str,
    lid: &str,
    rid: &str,
    lts: &str,
    rts: &str,
    psk: &str,
) -> String {
    format!(
        "connections:
  site:
    local_addrs: [{local}]
    remote_addrs: [{remote}]
    proposals: [aes256gcm16-prfsha256-x25519]
    local:  {{ auth: psk, id: {lid} }}
    remote: {{ auth: psk, id: {rid} }}
    children:
      lan:
        local_ts: [{lts}]
        remote_ts: [{rts}]
        esp_proposals: [aes256gcm16]
secrets:
  ike:
    - {{ ids: [{lid}, {rid}], secret: \"{psk}\" }}
"
    )
}

fn gateways(psk_a: &str, psk_b: &str) -> (Iked, Iked) {
    lab_sh("lab_make_gateways");
    let a = Iked::new(
        "gw-a",
        "gw-a.yaml",
        "iked-gw-a.log",
        &config(
            "192.0.2.1",
            "192.0.2.2",
            "gw-a",
            "gw-b",
            "10.1.0.0/24",
            "10.2.0.0/24",
            psk_a,
        ),
    );
    let b = Iked::new(
        "gw-b",
        "gw-b.yaml",
        "iked-gw-b.log",
        &config(
            "192.0.2.2",
            "192.0.2.1",
            "gw-b",
            "gw-a",
            "10.2.0.0/24",
            "10.1.0.0/24",
            psk_b,
        ),
    );
    (a, b)
}

/// iked's route on a gateway of the lab while the tunnel is up: to the
/// other subnet via the peer on wan, sourced from the gateway's lan
/// address (inside local_ts), and the rule that looks table 220 up.
fn assert_routes(ns: &str, dst: &str, via: &str, src: &str) {
    let t = table_220(ns);
    let want = format!("{dst} via {via} dev wan proto 157 src {src}");
    assert!(t.contains(&want), "{ns}: table 220 lacks '{want}':\n{t}");
    assert_eq!(t.trim().lines().count(), 1, "{ns}: {t}");
    let rule = rule_220(ns).unwrap_or_else(|| {
        panic!(
            "{ns}: no rule 220:\n{}",
            sh(&format!("ip -n {ns} rule show"))
        )
    });
    assert!(rule.contains("proto 157"), "{ns}: {rule}");
}

fn assert_clean(ns: &str) {
    common::assert_clean(&[ns]);
}

fn up(a: &Iked) {
    let out = a.ikectl(&["up", "site", "--timeout", "30"]);
    assert!(
        out.status.success(),
        "ikectl up failed: {}{}\n--- gw-a log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        a.log_text()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("established"));
}

fn installed_child(sas: &[IkeSaStatus]) -> &control::ChildSaStatus {
    let sa = sas
        .iter()
        .find(|s| s.state == "ESTABLISHED")
        .unwrap_or_else(|| panic!("no ESTABLISHED IKE SA in {sas:?}"));
    assert_eq!(sa.connection.as_deref(), Some("site"));
    let c = sa
        .children
        .iter()
        .find(|c| c.state == "INSTALLED")
        .unwrap_or_else(|| panic!("no INSTALLED child in {sa:?}"));
    assert_eq!(
        (c.name.as_str(), c.mode.as_str(), c.protocol.as_str()),
        ("lan", "TUNNEL", "ESP")
    );
    c
}

/// A capability set of a `/proc/PID/status` text (hex mask).
fn cap_mask(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

/// Capability bits (linux/capability.h).
const NET_BIND_SERVICE: u64 = 1 << 10;
const NET_ADMIN: u64 = 1 << 12;
const NET_RAW: u64 = 1 << 13;

/// gw-a's child runs an `updown` script that adds an iptables rule and
/// records its own capabilities (docs/security.md); returns the file it
/// writes.
fn caps_updown(a: &Iked) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let out = guest_out().join("updown-caps.txt");
    let _ = std::fs::remove_file(&out);
    let script = guest_out().join("updown-caps.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase $PLUTO_VERB in up*)\n  {{ grep -E '^(CapEff|CapPrm|NoNewPrivs):' /proc/self/status\n    \
             iptables-legacy -w -A INPUT -s 10.2.0.99 -j DROP && echo iptables ok; }} > '{}.tmp' 2>&1\n  \
             mv '{0}.tmp' '{0}';;\nesac\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = std::fs::read_to_string(&a.conf).unwrap();
    a.write_conf(&conf.replace(
        "esp_proposals: [aes256gcm16]",
        &format!(
            "esp_proposals: [aes256gcm16]\n        updown: {}",
            script.display()
        ),
    ));
    out
}

#[test]
fn up_ping_status_down_and_shutdown() {
    if !is_guest() {
        sh(&format!(
            "bash -c \". '{}'; lab_ensure_packages iptables\"",
            repo_root().join("tests/lab/packages.sh").display()
        ));
    }
    in_uml("up_ping_status_down_and_shutdown", || {
        let (mut a, mut b) = gateways("shared secret 1", "shared secret 1");
        let caps_out = caps_updown(&a);
        // The host's firewall has loaded iptables' modules (an updown
        // command cannot: no CAP_SYS_MODULE).
        sh("ip netns exec gw-a iptables-legacy -w -L INPUT -n");
        a.start(&[]);
        b.start(&[]);
        // Least privilege: the running iked has only what it needs.
        let st = std::fs::read_to_string(format!("/proc/{}/status", a.pid())).unwrap();
        assert_eq!(
            cap_mask(&st, "CapEff"),
            NET_ADMIN | NET_BIND_SERVICE,
            "{st}"
        );
        assert_eq!(
            cap_mask(&st, "CapPrm"),
            NET_ADMIN | NET_BIND_SERVICE | NET_RAW,
            "{st}"
        );
        assert_eq!(cap_mask(&st, "CapAmb"), NET_ADMIN | NET_RAW, "{st}");
        assert_eq!(cap_mask(&st, "CapBnd"), NET_ADMIN | NET_RAW, "{st}");
        assert!(st.contains("NoNewPrivs:\t1"), "{st}");
        // No tunnel, no route: host-a cannot reach host-b.
        assert!(!sh_ok("ip netns exec host-a ping -c1 -W1 10.2.0.2"));
        assert!(routes_are_clean("gw-a") && routes_are_clean("gw-b"));
        // iked's routes carry the pings; that they went through the tunnel
        // shows in the ESP counters below.
        up(&a);
        // The updown script ran iptables with the ambient capabilities
        // only (no_new_privs, and even as root no more).
        wait_until(Duration::from_secs(10), "the updown script", || {
            caps_out.exists()
        });
        let got = std::fs::read_to_string(&caps_out).unwrap();
        assert!(got.contains("iptables ok"), "{got}\n{}", a.log_text());
        assert_eq!(cap_mask(&got, "CapEff"), NET_ADMIN | NET_RAW, "{got}");
        assert_eq!(cap_mask(&got, "CapPrm"), NET_ADMIN | NET_RAW, "{got}");
        assert!(got.contains("NoNewPrivs:\t1"), "{got}");
        assert!(
            sh("ip netns exec gw-a iptables-legacy -S INPUT").contains("-s 10.2.0.99/32 -j DROP")
        );
        assert_routes("gw-a", "10.2.0.0/24", "192.0.2.2", "10.1.0.1");
        wait_until(Duration::from_secs(5), "gw-b's route", || {
            table_220("gw-b").contains("10.1.0.0/24")
        });
        assert_routes("gw-b", "10.1.0.0/24", "192.0.2.1", "10.2.0.1");
        common::ping_through("host-a", "10.2.0.2", 5);
        // The gateway's own traffic: the route's src puts it inside the
        // policy, so it goes through the tunnel too.
        sh("ip netns exec gw-a ping -c 2 -i 0.05 -W 2 10.2.0.2");

        for (gw, peer_spi_side) in [(&a, "gw-a"), (&b, "gw-b")] {
            let sas = gw.status();
            let c = installed_child(&sas);
            assert_eq!(c.local_ts.len(), 1, "{peer_spi_side}: {c:?}");
            assert!(c.packets_in.unwrap() >= 7, "{peer_spi_side}: {c:?}");
            assert!(c.packets_out.unwrap() >= 7, "{peer_spi_side}: {c:?}");
            assert!(c.bytes_in.unwrap() > 0 && c.bytes_out.unwrap() > 0);
            // The kernel agrees: its counters for the inbound SA.
            let st = sh(&format!("ip -n {peer_spi_side} -s xfrm state"));
            assert!(st.contains(&format!("0x{}", c.spi_in)), "{st}");
        }
        let sas_a = a.status();
        let sas_b = b.status();
        let (ca, cb) = (installed_child(&sas_a), installed_child(&sas_b));
        assert_eq!(
            (ca.spi_in.as_str(), ca.spi_out.as_str()),
            (cb.spi_out.as_str(), cb.spi_in.as_str())
        );
        let text = a.ikectl(&["status"]);
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("site: #") && text.contains("lan: #") && text.contains("INSTALLED"),
            "{text}"
        );

        // reload: a broken file changes nothing and says why; a good one
        // keeps the established tunnel.
        let good = std::fs::read_to_string(&a.conf).unwrap();
        std::fs::write(
            &a.conf,
            good.replace(
                "esp_proposals: [aes256gcm16]",
                "esp_proposals: [aes256gcm16]\n        mode: tunel",
            ),
        )
        .unwrap();
        let out = a.ikectl(&["reload"]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            err.contains("gw-a.yaml:")
                && err.contains("unknown mode")
                && err.contains("config_error"),
            "{err}"
        );
        let extra = "  other:\n    remote_addrs: [192.0.2.9]\n    local: { auth: psk }\n    remote: { auth: psk }\n";
        std::fs::write(
            &a.conf,
            good.replace("secrets:", &format!("{extra}secrets:")),
        )
        .unwrap();
        let out = a.ikectl(&["reload"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{out:?}");
        assert!(
            text.contains("added:     other") && text.contains("unchanged: site"),
            "{text}"
        );
        let again = a.status();
        assert_eq!(
            installed_child(&again).spi_in,
            ca.spi_in,
            "the tunnel survived the reload"
        );
        common::ping_through("host-a", "10.2.0.2", 2);

        // down: nothing left in either kernel, routes and rule included.
        let out = a.ikectl(&["down", "site"]);
        assert!(out.status.success(), "{out:?}");
        assert!(
            kernel_is_clean("gw-a"),
            "{:?} {}",
            (states("gw-a"), policies("gw-a")),
            table_220("gw-a")
        );
        assert_clean("gw-b");
        assert!(a.status().is_empty());
        wait_until(Duration::from_secs(5), "gw-b's IKE SA gone", || {
            b.status().is_empty()
        });
        // One info line for each event an operator cares about, on both
        // sides (the debug log has the protocol detail besides).
        for (ns, log) in [("gw-a", a.log_text()), ("gw-b", b.log_text())] {
            let info = |parts: &[&str]| {
                log.lines()
                    .filter(|l| l.contains(" INFO ") && parts.iter().all(|p| l.contains(p)))
                    .count()
            };
            assert_eq!(info(&["IKE SA site[1] established"]), 1, "{ns}:\n{log}");
            assert_eq!(
                info(&["lan{1} of IKE SA site[1] installed"]),
                1,
                "{ns}:\n{log}"
            );
            assert_eq!(info(&["lan{1}", "deleted"]), 1, "{ns}:\n{log}");
            assert_eq!(
                info(&["IKE SA site[1] ", "=>", "deleted"]),
                1,
                "{ns}:\n{log}"
            );
        }

        // Up again, then SIGTERM: iked deletes the SA (the peer removes
        // its side too) and removes its kernel state.
        up(&a);
        assert!(!kernel_is_clean("gw-a"));
        assert_routes("gw-a", "10.2.0.0/24", "192.0.2.2", "10.1.0.1");
        assert_eq!(a.signal("TERM"), Some(0), "{}", a.log_text());
        assert!(
            kernel_is_clean("gw-a"),
            "{:?} {}",
            (states("gw-a"), policies("gw-a")),
            table_220("gw-a")
        );
        assert_clean("gw-b");
        assert_eq!(b.signal("INT"), Some(0));
        let log = a.log_text();
        assert!(
            log.contains("established") && log.contains("installed"),
            "{log}"
        );
        assert!(
            log.contains(
                "route 10.2.0.0/24 via 192.0.2.2 dev wan src 10.1.0.1 installed in table 220"
            ) && log.contains("added IPv4 rule 'from all lookup 220' at priority 220")
                && log.contains("removed IPv4 rule"),
            "{log}"
        );
    });
}

#[test]
fn wrong_psk_fails_with_the_reason_and_leaves_nothing() {
    in_uml("wrong_psk_fails_with_the_reason_and_leaves_nothing", || {
        let (mut a, mut b) = gateways("the right key", "a wrong key");
        a.start(&[]);
        b.start(&[]);
        let out = a.ikectl(&["up", "site", "--timeout", "30"]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            err.contains("AUTHENTICATION_FAILED") || err.contains("authentication"),
            "{err}"
        );
        assert!(err.contains("authentication_failed"), "{err}");
        assert_clean("gw-a");
        assert_clean("gw-b");
        assert!(routes_are_clean("gw-a") && routes_are_clean("gw-b"));
        // Unknown names are errors too, not hangs.
        let out = a.ikectl(&["up", "nosuch"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no connection named"));
        // A peer that does not answer: ikectl gives up at its timeout.
        assert_eq!(b.signal("TERM"), Some(0));
        let out = a.ikectl(&["up", "site", "--timeout", "2"]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            err.contains("timed out") && err.contains("(timeout)"),
            "{err}"
        );
    });
}

#[test]
fn a_restart_after_kill_9_removes_the_leftovers() {
    in_uml("a_restart_after_kill_9_removes_the_leftovers", || {
        let (mut a, mut b) = gateways("k", "k");
        a.start(&[]);
        b.start(&[]);
        up(&a);
        a.signal("KILL");
        // The kernel still has what the killed iked installed.
        let (states, policies) = (states("gw-a"), policies("gw-a"));
        assert!(
            !states.trim().is_empty() && policies == 3,
            "{states} {policies}"
        );
        assert_routes("gw-a", "10.2.0.0/24", "192.0.2.2", "10.1.0.1");
        // Foreign state must survive the cleanup: a policy, a route in
        // table 220, one in the main table, a rule.
        sh(
            "ip -n gw-a xfrm policy add src 10.9.0.0/24 dst 10.8.0.0/24 dir out priority 9 action block",
        );
        sh("ip -n gw-a route add 10.9.0.0/24 via 10.1.0.2 table 220");
        sh("ip -n gw-a route add 10.8.0.0/24 via 10.1.0.2 proto static");
        sh("ip -n gw-a rule add from 10.9.0.0/24 lookup 220 pref 300");
        a.start(&[]);
        let t = table_220("gw-a");
        assert_eq!(t.trim(), "10.9.0.0/24 via 10.1.0.2 dev lan", "{t}");
        assert!(sh("ip -n gw-a route").contains("10.8.0.0/24 via 10.1.0.2"));
        assert!(sh("ip -n gw-a rule").contains("300:\tfrom 10.9.0.0/24 lookup 220"));
        assert!(rule_220("gw-a").is_none());
        assert!(
            sh("ip -n gw-a route show table all proto 157")
                .trim()
                .is_empty()
        );
        assert!(sh("ip -n gw-a xfrm state").trim().is_empty());
        let policies = sh("ip -n gw-a xfrm policy");
        assert_eq!(policies.matches("tmpl").count(), 0, "{policies}");
        assert!(
            policies.contains("10.9.0.0/24"),
            "foreign policy removed: {policies}"
        );
        let log = a.log_text();
        assert!(
            log.contains("removed 2 SAs and 3 policies left in the kernel by a previous iked")
                && log.contains("removed 1 routes and 1 rules left by a previous iked"),
            "{log}"
        );
        drop(b);
    });
}

#[test]
fn ipv6_transport_mode_on_other_ports() {
    in_uml("ipv6_transport_mode_on_other_ports", || {
        lab_sh(
            "lab_make_gateways
             ip -n gw-a addr add 2001:db8::1/64 dev wan nodad
             ip -n gw-b addr add 2001:db8::2/64 dev wan nodad
             lab_wait_for 10 'IPv6 on wan' lab_ns gw-a ping -6 -c1 -W1 2001:db8::2",
        );
        // `timers`: the rekey timers of the second part, IKE and Child SA.
        let conf_with = |l: &str, r: &str, lid: &str, rid: &str, timers: [&str; 2]| {
            format!(
                "connections:
  host:
    local_addrs: ['{l}']
    remote_addrs: ['{r}']
    remote_port: 1500
    proposals: [aes128gcm16-prfsha256-ecp256]
    local:  {{ auth: psk, id: {lid} }}
    remote: {{ auth: psk, id: {rid} }}{}
    children:
      h2h:
        mode: transport
        esp_proposals: [chacha20poly1305]{}
secrets:
  ike:
    - {{ ids: [{lid}, {rid}], secret: 0s{psk} }}
",
                timers[0],
                timers[1],
                psk = "c2VjcmV0IGtleSBvZiBhdCBsZWFzdCBzaXh0ZWVuIG9jdGV0cw=="
            )
        };
        let conf = |l: &str, r: &str, lid: &str, rid: &str| conf_with(l, r, lid, rid, ["", ""]);
        let mut a = Iked::new(
            "gw-a",
            "gw-a.yaml",
            "iked-gw-a.log",
            &conf(
                "2001:db8::1",
                "2001:db8::2",
                "a@example.net",
                "b@example.net",
            ),
        );
        let mut b = Iked::new(
            "gw-b",
            "gw-b.yaml",
            "iked-gw-b.log",
            &conf(
                "2001:db8::2",
                "2001:db8::1",
                "b@example.net",
                "a@example.net",
            ),
        );
        let ports = ["--port", "1500", "--natt-port", "1501"];
        a.start(&ports);
        b.start(&ports);
        let out = a.ikectl(&["up", "host", "--child", "h2h", "--timeout", "30"]);
        assert!(out.status.success(), "{out:?}\n{}", a.log_text());
        sh("ip netns exec gw-a ping -6 -c 3 -i 0.05 -W 2 2001:db8::2");
        let sas = a.status();
        assert_eq!(sas.len(), 1);
        assert_eq!(sas[0].local_addr, "[2001:db8::1]:1500");
        assert_eq!(sas[0].remote_id.as_deref(), Some("b@example.net"));
        let c = &sas[0].children[0];
        assert_eq!(
            (c.mode.as_str(), c.state.as_str()),
            ("TRANSPORT", "INSTALLED"),
            "{c:?}"
        );
        assert_eq!(c.local_ts, vec!["2001:db8::1/128".to_string()]);
        assert_eq!(c.algorithms.as_deref(), Some("CHACHA20_POLY1305"));
        assert!(
            c.packets_out.unwrap() >= 3 && c.packets_in.unwrap() >= 3,
            "{c:?}"
        );
        // Transport mode: no routes.
        assert!(routes_are_clean("gw-a"), "{}", table_220("gw-a"));
        // Transport mode: out and in policies, no fwd.
        let pol = sh("ip -n gw-a xfrm policy");
        assert_eq!(pol.matches("tmpl").count(), 2, "{pol}");
        assert!(
            pol.contains("mode transport") && !pol.contains("dir fwd"),
            "{pol}"
        );
        let out = a.ikectl(&["down", "host"]);
        assert!(out.status.success(), "{out:?}");
        assert_clean("gw-a");
        assert_clean("gw-b");

        // Rekeys over IPv6 in transport mode, both IKE and Child SA, on
        // short timers (both sides, with jitter) under a steady ping: none
        // lost, and one IKE SA at the end.
        let timers = [
            "\n    rekey_time: 3s\n    rand_time: 1s\n    over_time: 4s",
            "\n        rekey_time: 2s\n        life_time: 5s\n        rand_time: 1s",
        ];
        for (gw, l, r, lid, rid) in [
            (
                &a,
                "2001:db8::1",
                "2001:db8::2",
                "a@example.net",
                "b@example.net",
            ),
            (
                &b,
                "2001:db8::2",
                "2001:db8::1",
                "b@example.net",
                "a@example.net",
            ),
        ] {
            std::fs::write(&gw.conf, conf_with(l, r, lid, rid, timers)).unwrap();
            gw.ikectl_ok(&["reload"]);
        }
        a.ikectl_ok(&["up", "host", "--child", "h2h", "--timeout", "30"]);
        let ping = sh("ip netns exec gw-a ping -6 -c 350 -i 0.02 -W 1 2001:db8::2");
        let (children, ikes) = (
            a.log_lines_with(&["CHILD SA h2h", "rekeyed to"]),
            a.log_lines_with(&["IKE SA ", "rekeyed to", "SPIs"]),
        );
        eprintln!("IPv6 transport: {children} Child SA and {ikes} IKE SA rekeys under the ping");
        assert!(ping.contains(" 0% packet loss"), "{ping}");
        assert!(
            children >= 2 && ikes >= 1,
            "{children} Child SA and {ikes} IKE SA rekeys"
        );
        let sas = a.status();
        assert_eq!(
            sas.iter().filter(|s| s.state == "ESTABLISHED").count(),
            1,
            "{sas:?}"
        );
        let out = a.ikectl(&["down", "host"]);
        assert!(out.status.success(), "{out:?}");
        assert_clean("gw-a");
        assert_clean("gw-b");
        assert_eq!(a.signal("TERM"), Some(0));
        assert_eq!(b.signal("TERM"), Some(0));
    });
}
