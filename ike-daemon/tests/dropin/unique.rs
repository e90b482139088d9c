//! `unique` and INITIAL_CONTACT against charon, with peers that crash and
//! come back (SIGKILL: they delete nothing, and their kernel state is
//! flushed as a reboot would):
//! - charon (gw-b) initiates to iked (gw-a, `unique = replace`), crashes
//!   and comes back: its INITIAL_CONTACT makes iked remove the stale IKE
//!   SA (without a delete exchange) and its Child SA, so iked has exactly
//!   one IKE SA and one pair of ESP SAs, and traffic flows through ESP.
//! - iked initiates to charon (`unique = no`, charon's default), crashes
//!   and comes back: iked's INITIAL_CONTACT makes charon destroy its stale
//!   IKE SA ("received INITIAL_CONTACT" in charon's log, one IKE SA left).

use std::time::Duration;

use crate::common::charon::Charon;
use crate::common::{Iked, assert_clean, esp_packets, ping_through};
use crate::{Lab, UNIQUE, site_conf};

const PSK: &str = "unique lab psk, not a secret 0123456789";

/// gw-a's (iked's, `a`) or gw-b's (charon's) swanctl.conf, with `conn` more
/// lines of the connection and `child` of the child.
fn conf(a: bool, addrs: &(String, String), conn: &[&str], child: &[&str]) -> String {
    site_conf("unique", PSK, a, addrs, conn, child)
}

/// The ESP SAs in namespace `ns`.
fn esp_sas(ns: &str) -> usize {
    iked_lab::sh(&format!("ip -n {ns} xfrm state"))
        .lines()
        .filter(|l| l.contains("proto esp"))
        .count()
}

/// Pings host-b from host-a; the ESP counters of gw-a prove the packets
/// went through ESP.
fn traffic_through_esp() {
    let before = esp_packets("gw-a");
    ping_through("host-a", "10.2.0.2", 5);
    let after = esp_packets("gw-a");
    assert!(
        after >= before + 10,
        "ESP packets on gw-a: {before} -> {after}"
    );
}

fn crash_reboot_charon(b: &Charon) {
    b.kill();
    iked_lab::sh("ip -n gw-b xfrm state flush; ip -n gw-b xfrm policy flush");
}

pub fn run(lab: &Lab) {
    let addrs = lab.wan(UNIQUE);

    // charon restarts; iked with unique = replace is the responder.
    let mut a = Iked::spawn(
        "gw-a",
        "unique-a.conf",
        "unique-a.log",
        &conf(true, &addrs, &["unique = replace"], &[]),
        &[],
    );
    let b_conf = conf(false, &addrs, &[], &["start_action = start"]);
    let b = Charon::start("unique-b", "gw-b", &b_conf, "default=1", "", "");
    iked_lab::wait_until(Duration::from_secs(20), "net on charon", || {
        b.installed("net")
    });
    let old = a.established().id;
    traffic_through_esp();
    crash_reboot_charon(&b);
    let b = Charon::start("unique-b", "gw-b", &b_conf, "default=1", "", "");
    iked_lab::wait_until(
        Duration::from_secs(20),
        "net on the restarted charon",
        || b.installed("net"),
    );
    iked_lab::wait_until(Duration::from_secs(10), "the stale IKE SA gone", || {
        let sas = a.status();
        sas.len() == 1 && sas[0].id != old
    });
    assert_eq!(
        a.log_lines_with(&["sent INITIAL_CONTACT", "removing this one"]),
        1,
        "{}",
        a.log_text()
    );
    // The stale Child SA's inbound SA lingers for --delete-rekeyed-delay
    // (its outbound one goes at once), as after a rekey.
    iked_lab::wait_until(
        Duration::from_secs(15),
        "one pair of ESP SAs on gw-a",
        || esp_sas("gw-a") == 2,
    );
    assert!(a.established().children.len() == 1);
    traffic_through_esp();
    eprintln!("dropin/unique: charon restarted, its INITIAL_CONTACT cleared iked's stale IKE SA");
    a.stop();
    b.stop();
    lab.clean();

    // iked restarts; charon (unique = no) is the responder.
    let b = Charon::start(
        "unique-b",
        "gw-b",
        &conf(false, &addrs, &[], &[]),
        "default=1",
        "",
        "",
    );
    iked_lab::wait_until(Duration::from_secs(20), "charon's configuration", || {
        b.swanctl_ok(&["--list-conns"]).contains("unique:")
    });
    let mut a = Iked::spawn(
        "gw-a",
        "unique-a2.conf",
        "unique-a2.log",
        &conf(true, &addrs, &[], &["start_action = start"]),
        &[],
    );
    iked_lab::wait_until(Duration::from_secs(20), "net on charon", || {
        b.installed("net")
    });
    traffic_through_esp();
    // A crash: iked's SAs stay in gw-a's kernel until the next start
    // removes them.
    a.signal("KILL");
    a.start(&[]);
    iked_lab::wait_until(
        Duration::from_secs(20),
        "charon's stale IKE SA gone",
        || {
            b.log_text().contains("received INITIAL_CONTACT")
                && b.swanctl_ok(&["--list-sas"]).matches("ESTABLISHED").count() == 1
        },
    );
    iked_lab::wait_until(Duration::from_secs(20), "net on charon", || {
        b.installed("net")
    });
    // The stale Child SA's inbound SA lingers for --delete-rekeyed-delay
    // (its outbound one goes at once), as after a rekey.
    iked_lab::wait_until(
        Duration::from_secs(15),
        "one pair of ESP SAs on gw-b",
        || esp_sas("gw-b") == 2,
    );
    traffic_through_esp();
    eprintln!("dropin/unique: iked restarted, its INITIAL_CONTACT cleared charon's stale IKE SA");
    a.stop();
    b.stop();
    lab.clean();
    assert_clean(&["gw-a", "gw-b"]);
}
