//! The drop-in features of issue 16 (strongSwan configurations that iked
//! runs as charon would), in the UML kernel lab, ONE boot for all of them:
//! each lane's cases are a module under tests/dropin/ with a `run(&Lab)`
//! called from [`guest`], one after the other.
//!
//! ```text
//! host-a 10.1.0.2 -- gw-a 192.0.2.1, 192.0.2.1x === 192.0.2.2, 192.0.2.1xx gw-b -- 10.2.0.2 host-b
//! ```
//!
//! tests/lab/lib.sh's `lab_make_gateways` makes the topology once; each
//! lane gets its own wan address pair ([`Lab::wan`]: lane `n` has
//! 192.0.2.(10+n) on gw-a and 192.0.2.(100+n) on gw-b), so a charon that
//! picks its IKE config by address never picks another lane's. A lane
//! leaves nothing behind: its daemons stopped, both kernels' SAs and
//! policies gone ([`Lab::clean`]). A failing lane does not stop the
//! others; the test fails at the end with every lane's failure.
//!
//! Budget (issue 16): about 40 s updown, 50 s policy, 30 s saopt, 60 s
//! engine, 30 s unique, 30 s inactivity; each lane's time is printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "dropin/engine.rs"]
mod engine;
#[path = "dropin/inactivity.rs"]
mod inactivity;
#[path = "dropin/policy.rs"]
mod policy;
#[path = "dropin/saopt.rs"]
mod saopt;
#[path = "dropin/unique.rs"]
mod unique;
#[path = "dropin/updown.rs"]
mod updown;

use std::time::Instant;

use iked_lab::{in_uml, is_guest, lab_sh, repo_root, sh};

/// What the lanes share: the topology is up, one wan pair per lane.
#[derive(Debug)]
pub struct Lab;

/// The lanes' numbers (their wan pairs).
pub const UPDOWN: u8 = 1;
pub const POLICY: u8 = 2;
pub const SAOPT: u8 = 3;
pub const ENGINE: u8 = 4;
pub const INACTIVITY: u8 = 5;
pub const UNIQUE: u8 = 6;

impl Lab {
    /// Lane `n`'s wan addresses (gw-a's, gw-b's), added to both `wan`
    /// interfaces on first use.
    pub fn wan(&self, n: u8) -> (String, String) {
        let a = format!("192.0.2.{}", 10 + u32::from(n));
        let b = format!("192.0.2.{}", 100 + u32::from(n));
        lab_sh(&format!(
            "ip -n gw-a addr replace {a}/24 dev wan\nip -n gw-b addr replace {b}/24 dev wan"
        ));
        (a, b)
    }

    /// Flushes both gateways' SAs and policies (after a lane stopped its
    /// daemons; a failed lane may have left some).
    pub fn clean(&self) {
        sh("for n in gw-a gw-b; do ip -n $n xfrm state flush; ip -n $n xfrm policy flush; done");
    }
}

/// A lane's swanctl.conf for gw-a (`a`: iked's side, 10.1.0.0/24) or
/// gw-b (charon's, 10.2.0.0/24): one connection `name` between the lane's
/// addresses (also the identities), PSK `psk` (secret `ike-<name>`), one
/// child `net`; `conn` and `child` are more lines of the connection and of
/// the child.
pub fn site_conf(
    name: &str,
    psk: &str,
    a: bool,
    addrs: &(String, String),
    conn: &[&str],
    child: &[&str],
) -> String {
    let (me, peer, lts, rts) = if a {
        (&addrs.0, &addrs.1, "10.1.0.0/24", "10.2.0.0/24")
    } else {
        (&addrs.1, &addrs.0, "10.2.0.0/24", "10.1.0.0/24")
    };
    let lines = |indent: &str, ls: &[&str]| -> String {
        ls.iter().map(|l| format!("{indent}{l}\n")).collect()
    };
    let conn = lines("        ", conn);
    let child = lines("                ", child);
    format!(
        "connections {{
    {name} {{
        local_addrs = {me}
        remote_addrs = {peer}
        proposals = aes128gcm16-prfsha256-x25519
        mobike = no
{conn}        local {{
            auth = psk
            id = {me}
        }}
        remote {{
            auth = psk
            id = {peer}
        }}
        children {{
            net {{
                local_ts = {lts}
                remote_ts = {rts}
                esp_proposals = aes128gcm16
{child}            }}
        }}
    }}
}}
secrets {{
    ike-{name} {{
        secret = \"{psk}\"
    }}
}}
"
    )
}

/// A lane: its name and its cases.
type Lane = (&'static str, fn(&Lab));

#[test]
fn dropin() {
    if !is_guest() {
        sh(&format!(
            "bash -c \". '{}'; lab_ensure_packages strongswan-charon strongswan-swanctl \
             libstrongswan-standard-plugins iptables iproute2 iputils-ping\"",
            repo_root().join("tests/lab/packages.sh").display()
        ));
    }
    in_uml("dropin", guest);
}

fn guest() {
    let t0 = Instant::now();
    lab_sh("lab_make_gateways\nlab_warm_crypto");
    eprintln!("dropin: topology in {:.1} s", t0.elapsed().as_secs_f64());
    let lab = Lab;
    let lanes: &[Lane] = &[
        ("updown", updown::run),
        ("policy", policy::run),
        ("saopt", saopt::run),
        ("engine", engine::run),
        ("unique", unique::run),
        ("inactivity", inactivity::run),
    ];
    let mut failed = Vec::new();
    for (name, run) in lanes {
        let t = Instant::now();
        let r = std::panic::catch_unwind(|| run(&lab));
        lab.clean();
        eprintln!(
            "dropin: lane {name}: {} in {:.1} s",
            if r.is_ok() { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("lane {name}: {msg}"));
        }
    }
    eprintln!("dropin: all lanes in {:.1} s", t0.elapsed().as_secs_f64());
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
