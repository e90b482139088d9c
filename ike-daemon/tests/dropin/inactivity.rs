//! A child's `inactivity` against charon: iked on gw-a with
//! `inactivity = 3s` keeps the Child SA while pings pass it for 5 s (the
//! policies' use time, read from the kernel, moves), then deletes it 3-4 s
//! after the last ping; charon sees the Delete and keeps the IKE SA.
//! Then, with `inactivity_close_ike = yes` from a strongswan.conf, the
//! idle Child SA's IKE SA goes with it.

use std::time::{Duration, Instant};

use crate::common::charon::Charon;
use crate::common::{Iked, assert_clean, esp_packets};
use crate::{INACTIVITY, Lab, site_conf};

const PSK: &str = "inactivity lab psk, not a secret 0123456789";

/// Seconds of `inactivity` on iked's child.
const SECS: u64 = 3;

/// gw-a's (iked's, `a`: it starts the tunnel, with `inactivity`) or gw-b's
/// (charon's) swanctl.conf.
fn conf(a: bool, addrs: &(String, String)) -> String {
    if a {
        let inactivity = format!("inactivity = {SECS}s");
        site_conf(
            "inact",
            PSK,
            a,
            addrs,
            &[],
            &["start_action = start", &inactivity],
        )
    } else {
        site_conf("inact", PSK, a, addrs, &[], &[])
    }
}

/// Whether iked has an established IKE SA with an installed Child SA
/// (charon, the responder, installs first).
fn iked_up(a: &Iked) -> bool {
    a.status()
        .iter()
        .any(|s| s.state == "ESTABLISHED" && s.children.iter().any(|c| c.state == "INSTALLED"))
}

/// Polls `f` every 0.1 s for up to `limit`: when it held.
/// The UTC time of the first line of iked's log containing `what`
/// (tracing's `2026-12-06T23:55:44.050703Z` prefix).
fn logged_at(log: &str, what: &str) -> Option<std::time::SystemTime> {
    let line = log.lines().find(|l| l.contains(what))?;
    let ts = line.split_whitespace().next()?;
    let (date, time) = ts.strip_suffix('Z')?.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (y, m, day) = (*d.first()?, *d.get(1)?, *d.get(2)?);
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut hms = time.split(':');
    let h: f64 = hms.next()?.parse().ok()?;
    let mi: f64 = hms.next()?.parse().ok()?;
    let sec: f64 = hms.next()?.parse().ok()?;
    let secs = days as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec;
    Some(std::time::UNIX_EPOCH + Duration::from_secs_f64(secs))
}

fn when(limit: Duration, what: &str, f: impl Fn() -> bool) -> Instant {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < limit, "no {what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Instant::now()
}

pub fn run(lab: &Lab) {
    let addrs = lab.wan(INACTIVITY);
    let b = Charon::start(
        "inact-b",
        "gw-b",
        &conf(false, &addrs),
        "default=1 chd=1",
        "",
        "",
    );
    iked_lab::wait_until(Duration::from_secs(20), "charon's configuration", || {
        b.swanctl_ok(&["--list-conns"]).contains("inact:")
    });
    let mut a = Iked::spawn(
        "gw-a",
        "inact-a.conf",
        "inact-a.log",
        &conf(true, &addrs),
        &["--strongswan-conf", "none"],
    );
    let up = when(Duration::from_secs(20), "net on both", || {
        b.installed("net") && iked_up(&a)
    });
    // Pings for longer than the inactivity, through ESP: the Child SA
    // stays.
    let before = esp_packets("gw-a");
    let pings = ((SECS + 2) * 4) as u32;
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", "host-a", "ping", "-c", &pings.to_string()])
        .args(["-i", "0.25", "-W", "2", "10.2.0.2"])
        .output()
        .unwrap();
    let last = Instant::now();
    let last_utc = std::time::SystemTime::now();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains(&format!("{pings} packets transmitted, {pings} received")),
        "pings lost:\n{text}"
    );
    let esp = esp_packets("gw-a");
    assert!(
        esp >= before + 2 * u64::from(pings),
        "ESP packets on gw-a: {before} -> {esp}"
    );
    assert!(
        last - up > Duration::from_secs(SECS + 1),
        "the pings ended too soon"
    );
    assert!(b.installed("net"), "deleted while pings passed it");
    assert_eq!(a.log_lines_with(&["of inactivity"]), 0, "{}", a.log_text());
    // Silence: gone SECS to SECS + 1 s after the last ping, plus the
    // Delete and the time to see it on charon (UML is slow).
    when(Duration::from_secs(SECS + 5), "delete of net", || {
        !b.installed("net")
    });
    // When iked decided, from its own log line: polling swanctl in a
    // loaded UML adds seconds that are not iked's.
    let after = logged_at(&a.log_text(), "of inactivity")
        .and_then(|t| t.duration_since(last_utc).ok())
        .unwrap_or_else(|| panic!("no inactivity line after the pings\n{}", a.log_text()));
    assert!(
        after >= Duration::from_millis(SECS * 1000 - 200)
            && after <= Duration::from_millis(SECS * 1000 + 2000),
        "deleted {:.1} s after the last ping",
        after.as_secs_f64()
    );
    assert_eq!(
        a.log_lines_with(&[
            "deleting CHILD_SA net",
            &format!("after {SECS} s of inactivity")
        ]),
        1,
        "{}",
        a.log_text()
    );
    assert!(b.has_ike_sa(), "charon's IKE SA went too");
    assert_eq!(a.status().len(), 1, "iked's IKE SA went too");
    eprintln!(
        "dropin/inactivity: kept for {:.1} s of pings, deleted {:.1} s after the last",
        (last - up).as_secs_f64(),
        after.as_secs_f64()
    );
    a.stop();
    iked_lab::wait_until(Duration::from_secs(10), "charon's IKE SA gone", || {
        !b.has_ike_sa()
    });

    // inactivity_close_ike from strongswan.conf: the IKE SA goes too.
    let sconf = iked_lab::guest_out().join("inact-strongswan.conf");
    std::fs::write(&sconf, "charon {\n  inactivity_close_ike = yes\n}\n").unwrap();
    let mut a = Iked::spawn(
        "gw-a",
        "inact-close-a.conf",
        "inact-close-a.log",
        &conf(true, &addrs),
        &["--strongswan-conf", &sconf.display().to_string()],
    );
    let up = when(Duration::from_secs(20), "net on both", || {
        b.installed("net") && iked_up(&a)
    });
    let gone = when(
        Duration::from_secs(SECS + 5),
        "charon's IKE SA gone",
        || !b.has_ike_sa(),
    );
    let after = gone - up;
    assert!(
        after >= Duration::from_secs(SECS - 1),
        "the IKE SA went {:.1} s after the install",
        after.as_secs_f64()
    );
    assert!(
        a.log_text().contains("charon.inactivity_close_ike"),
        "the setting was not read:\n{}",
        a.log_text()
    );
    assert_eq!(
        a.log_lines_with(&["deleting IKE SA", "of CHILD_SA net", "inactivity"]),
        1,
        "{}",
        a.log_text()
    );
    iked_lab::wait_until(Duration::from_secs(5), "iked's IKE SA gone", || {
        a.status().is_empty()
    });
    eprintln!(
        "dropin/inactivity: inactivity_close_ike: IKE SA gone {:.1} s after the install",
        after.as_secs_f64()
    );
    a.stop();
    b.stop();
    lab.clean();
    assert_clean(&["gw-a", "gw-b"]);
}
