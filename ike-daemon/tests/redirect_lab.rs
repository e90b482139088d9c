//! Redirects (RFC 5685) in the UML kernel lab: a road warrior, gateway A
//! that sends it on, gateway B where it lands, each in its namespace
//! behind a router (`net`), which has no route to the protected
//! addresses: a ping from the road warrior's 10.1.0.1 to 10.2.0.1 (on
//! each gateway) gets through only in ESP.
//!
//! ```text
//! rw 192.0.2.1 ---- .254 net .254 ---- 198.51.100.2 gw-a (10.2.0.1)
//!                        .254 ---- 203.0.113.3 gw-b (10.2.0.1)
//! ```
//!
//! 1. a charon road warrior, iked as gateway A redirecting in
//!    IKE_SA_INIT (`redirect: { when: ike_sa_init }`): charon lands on
//!    gateway B (charon), a ping goes through ESP there, A keeps nothing;
//! 2. the same road warrior established with iked as gateway A (no
//!    `redirect`), then `ikectl redirect rw 203.0.113.3`: charon deletes
//!    the IKE SA at A and comes up at B with its Child SA, ping through ESP;
//! 3. iked as road warrior established with charon as gateway A, then
//!    `swanctl --redirect`: iked follows to B, ping through ESP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use iked_lab::{in_uml, is_guest, lab_sh, repo_root, sh, sh_ok, wait_until};

mod common;
use common::Iked;
use common::charon::Charon;

const RW: &str = "192.0.2.1";
const GW_A: &str = "198.51.100.2";
const GW_B: &str = "203.0.113.3";

/// The namespaces and the router between them.
fn topology() {
    lab_sh(
        "for ns in net rw gw-a gw-b; do ip netns del $ns 2>/dev/null || true; done
         for ns in net rw gw-a gw-b; do ip netns add $ns; ip -n $ns link set lo up; done
         lab_veth net p-rw 192.0.2.254/24 rw wan 192.0.2.1/24
         lab_veth net p-a 198.51.100.254/24 gw-a wan 198.51.100.2/24
         lab_veth net p-b 203.0.113.254/24 gw-b wan 203.0.113.3/24
         ip netns exec net sysctl -qw net.ipv4.ip_forward=1
         ip -n rw route add default via 192.0.2.254
         ip -n gw-a route add default via 198.51.100.254
         ip -n gw-b route add default via 203.0.113.254
         ip -n rw addr add 10.1.0.1/32 dev lo
         ip -n gw-a addr add 10.2.0.1/32 dev lo
         ip -n gw-b addr add 10.2.0.1/32 dev lo
         lab_warm_crypto
         lab_wait_for 10 'rw reaches gw-a' lab_ns rw ping -c1 -W1 198.51.100.2
         lab_wait_for 10 'rw reaches gw-b' lab_ns rw ping -c1 -W1 203.0.113.3",
    );
}

/// What a case's daemons left in the kernels (none should) goes.
fn reset() {
    lab_sh(
        "for ns in rw gw-a gw-b; do ip -n $ns xfrm state flush; ip -n $ns xfrm policy flush; done",
    );
}

const SECRET: &str = "redirect lab key";

/// swanctl.conf of the road warrior (toward gateway A).
fn rw_conf(local: &str) -> String {
    format!(
        "connections {{
    red {{
        version = 2
        {local}
        remote_addrs = {GW_A}
        proposals = aes256gcm16-prfsha256-x25519
        local {{
            auth = psk
            id = rw
        }}
        remote {{
            auth = psk
            id = gw
        }}
        children {{
            lan {{
                local_ts = 10.1.0.1/32
                remote_ts = 10.2.0.1/32
                esp_proposals = aes256gcm16
            }}
        }}
    }}
}}
secrets {{
    ike-red {{
        id-rw = rw
        id-gw = gw
        secret = \"{SECRET}\"
    }}
}}
"
    )
}

/// swanctl.conf of a charon gateway at `addr`.
fn gw_conf(addr: &str) -> String {
    format!(
        "connections {{
    red {{
        version = 2
        local_addrs = {addr}
        proposals = aes256gcm16-prfsha256-x25519
        local {{
            auth = psk
            id = gw
        }}
        remote {{
            auth = psk
            id = rw
        }}
        children {{
            lan {{
                local_ts = 10.2.0.1/32
                remote_ts = 10.1.0.1/32
                esp_proposals = aes256gcm16
            }}
        }}
    }}
}}
secrets {{
    ike-red {{
        id-rw = rw
        id-gw = gw
        secret = \"{SECRET}\"
    }}
}}
"
    )
}

/// iked's YAML as gateway A, with `redirect` lines (or none).
fn iked_gw_yaml(redirect: &str) -> String {
    format!(
        "secrets:
  ike:
    - {{ ids: [rw, gw], secret: \"{SECRET}\" }}
connections:
  red:
    local_addrs: [{GW_A}]
    proposals: [aes256gcm16-prfsha256-x25519]
    local: {{ auth: psk, id: gw }}
    remote: {{ auth: psk, id: rw }}
{redirect}    children:
      lan: {{ local_ts: [10.2.0.1/32], remote_ts: [10.1.0.1/32], esp_proposals: [aes256gcm16] }}
"
    )
}

fn charon(name: &str, ns: &str, conf: &str) -> Charon {
    Charon::start(name, ns, conf, "default=1 ike=2 knl=1 cfg=1 chd=1", "", "")
}

/// A ping from the road warrior's 10.1.0.1 to 10.2.0.1 gets through.
fn ping_once() -> bool {
    sh_ok("ip netns exec rw ping -c1 -W1 -I 10.1.0.1 10.2.0.1")
}

/// Three pings get through, and gateway `ns`'s ESP SAs count them: they
/// went there, in ESP (the router has no route to 10.2.0.1).
fn pings_through_esp_to(ns: &str, what: &str) {
    let before = common::esp_packets(ns);
    wait_until(Duration::from_secs(10), what, ping_once);
    assert!(
        sh_ok("ip netns exec rw ping -c3 -i0.2 -W1 -I 10.1.0.1 10.2.0.1"),
        "{what}: pings lost"
    );
    let after = common::esp_packets(ns);
    assert!(
        after >= before + 8,
        "{what}: {ns}'s ESP SAs counted {before} then {after} packets"
    );
}

/// charon's IKE SA of `c` is up at `gw` with its Child SA installed.
fn charon_at(c: &Charon, gw: &str) -> bool {
    let sas = c.swanctl_ok(&["--list-sas"]);
    sas.contains(&format!("remote 'gw' @ {gw}")) && sas.contains("INSTALLED")
}

fn charon_ike_sas(c: &Charon) -> usize {
    c.swanctl_ok(&["--list-sas"])
        .lines()
        .filter(|l| l.starts_with("red: #"))
        .count()
}

/// 1: iked as gateway A redirects a charon road warrior in IKE_SA_INIT.
fn init_redirect_of_charon() {
    let t = Instant::now();
    let a = Iked::spawn(
        "gw-a",
        "redirect-a-init.yaml",
        "iked-redirect-a-init.log",
        &iked_gw_yaml(&format!(
            "    redirect: {{ to: {GW_B}, when: ike_sa_init }}\n"
        )),
        &[],
    );
    let b = charon("redirect-b1", "gw-b", &gw_conf(GW_B));
    let rw = charon("redirect-rw1", "rw", &rw_conf(""));
    rw.initiate("lan");
    wait_until(Duration::from_secs(20), "charon at gateway B", || {
        charon_at(&rw, GW_B)
    });
    assert_eq!(charon_ike_sas(&rw), 1, "{}", rw.swanctl_ok(&["--list-sas"]));
    pings_through_esp_to("gw-b", "charon redirected in IKE_SA_INIT");
    assert!(a.status().is_empty(), "gateway A keeps nothing");
    assert!(common::kernel_is_clean("gw-a"));
    assert_eq!(
        a.log_lines_with(&["redirecting the client", "in IKE_SA_INIT"]),
        1,
        "{}",
        a.log_text()
    );
    assert!(rw.log_text().contains("redirected to 203.0.113.3"));
    eprintln!(
        "redirect lab: charon road warrior redirected by iked in IKE_SA_INIT, ESP to gateway B; {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(rw);
    drop(b);
    drop(a);
}

/// 2: `ikectl redirect` of a charon road warrior's established IKE SA.
fn established_redirect_of_charon() {
    let t = Instant::now();
    let a = Iked::spawn(
        "gw-a",
        "redirect-a.yaml",
        "iked-redirect-a.log",
        &iked_gw_yaml(""),
        &[],
    );
    let b = charon("redirect-b2", "gw-b", &gw_conf(GW_B));
    let rw = charon("redirect-rw2", "rw", &rw_conf(""));
    rw.initiate("lan");
    assert!(charon_at(&rw, GW_A), "{}", rw.swanctl_ok(&["--list-sas"]));
    pings_through_esp_to("gw-a", "charon at gateway A");
    let out = a.ikectl_ok(&["redirect", "rw", GW_B]);
    assert!(out.contains(&format!("to {GW_B}")), "{out}");
    wait_until(Duration::from_secs(20), "charon moved to gateway B", || {
        charon_at(&rw, GW_B) && charon_ike_sas(&rw) == 1
    });
    pings_through_esp_to("gw-b", "charon after ikectl redirect");
    wait_until(Duration::from_secs(10), "gateway A's IKE SA gone", || {
        a.status().is_empty()
    });
    common::assert_clean(&["gw-a"]);
    eprintln!(
        "redirect lab: charon road warrior's established IKE SA redirected by ikectl redirect, ESP to gateway B; {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(rw);
    drop(b);
    drop(a);
}

/// 3: iked as road warrior follows `swanctl --redirect` of charon.
fn iked_follows_swanctl_redirect() {
    let t = Instant::now();
    let a = charon("redirect-a3", "gw-a", &gw_conf(GW_A));
    let b = charon("redirect-b3", "gw-b", &gw_conf(GW_B));
    let rw = Iked::spawn(
        "rw",
        "redirect-rw.conf",
        "iked-redirect-rw.log",
        &rw_conf(&format!("local_addrs = {RW}")),
        &[],
    );
    rw.up("red");
    assert!(rw.established().remote_addr.starts_with(GW_A));
    pings_through_esp_to("gw-a", "iked at gateway A");
    a.swanctl_ok(&["--redirect", "--peer-id", "rw", "--gateway", GW_B]);
    wait_until(Duration::from_secs(20), "iked moved to gateway B", || {
        let s = rw.status();
        s.len() == 1
            && s[0].state == "ESTABLISHED"
            && s[0].remote_addr.starts_with(GW_B)
            && s[0].children.iter().any(|c| c.state == "INSTALLED")
    });
    pings_through_esp_to("gw-b", "iked after swanctl --redirect");
    wait_until(Duration::from_secs(10), "gateway A's IKE SA gone", || {
        charon_ike_sas(&a) == 0
    });
    assert_eq!(
        rw.log_lines_with(&["redirected by 198.51.100.2 to 203.0.113.3"]),
        1,
        "{}",
        rw.log_text()
    );
    eprintln!(
        "redirect lab: iked road warrior followed swanctl --redirect, ESP to gateway B; {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(rw);
    drop(b);
    drop(a);
}

#[test]
fn redirect() {
    if !is_guest() {
        sh(&format!(
            "bash -c \". '{}'; lab_ensure_packages strongswan-charon \
             strongswan-swanctl libstrongswan-standard-plugins iproute2 iputils-ping\"",
            repo_root().join("tests/lab/packages.sh").display()
        ));
    }
    in_uml("redirect", || {
        topology();
        init_redirect_of_charon();
        reset();
        established_redirect_of_charon();
        reset();
        iked_follows_swanctl_redirect();
    });
}
