//! What the lab tests of iked share (`mod common;` in each): one iked in a
//! network namespace of the lab, driven with ikectl, and what the tests
//! look at in a namespace's kernel. Each test file uses part of it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod charon;
pub mod freeradius;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use ike::control::{self, ChildSaStatus, IkeSaStatus, Response, TrapStatus};
use iked_lab::{guest_out, sh, wait_until};

pub const IKED: &str = env!("CARGO_BIN_EXE_iked");
pub const IKECTL: &str = env!("CARGO_BIN_EXE_ikectl");

/// One iked in a namespace: its configuration file (mode 600), its control
/// socket `/run/iked-<ns>/iked.sock` and its debug log, all under the
/// lab's output directory.
pub struct Iked {
    pub ns: &'static str,
    pub conf: PathBuf,
    pub sock: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Iked {
    /// Writes the configuration `<file>` and starts a fresh log
    /// `<log>` (both under the lab's output directory); does not start iked.
    pub fn new(ns: &'static str, file: &str, log: &str, conf_text: &str) -> Iked {
        let dir = guest_out();
        let i = Iked {
            ns,
            conf: dir.join(file),
            sock: PathBuf::from(format!("/run/iked-{ns}/iked.sock")),
            log: dir.join(log),
            child: None,
        };
        std::fs::write(&i.log, "").unwrap();
        i.write_conf(conf_text);
        i
    }

    /// `new` and `start` with `extra` arguments.
    pub fn spawn(ns: &'static str, file: &str, log: &str, conf_text: &str, extra: &[&str]) -> Iked {
        let mut i = Iked::new(ns, file, log, conf_text);
        i.start(extra);
        i
    }

    pub fn write_conf(&self, text: &str) {
        write_secret(&self.conf, text);
    }

    /// Starts iked (debug log appended to the log) and waits for its
    /// control socket.
    pub fn start(&mut self, extra: &[&str]) {
        self.start_wrapped(&[], extra);
    }

    /// `start`, iked run by `wrapper` (`unshare -m sh -c '...; exec "$0"
    /// "$@"'`, say), which must exec it: the child's pid stays iked's.
    pub fn start_wrapped(&mut self, wrapper: &[&str], extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let _ = std::fs::remove_file(&self.sock);
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns])
            .args(wrapper)
            .args([IKED, "--config"])
            .arg(&self.conf)
            .arg("--control")
            .arg(&self.sock)
            .args(["--log-level", "debug"])
            .args(extra)
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let sock = self.sock.clone();
        wait_until(Duration::from_secs(20), "iked's control socket", || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
    }

    pub fn ikectl(&self, args: &[&str]) -> Output {
        Command::new(IKECTL)
            .arg("--control")
            .arg(&self.sock)
            .args(args)
            .output()
            .unwrap()
    }

    /// ikectl's standard output; fails the test (with iked's log) when
    /// ikectl fails.
    pub fn ikectl_ok(&self, args: &[&str]) -> String {
        let out = self.ikectl(args);
        assert!(
            out.status.success(),
            "ikectl {args:?} in {}: {}{}\n--- {} log ---\n{}",
            self.ns,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.ns,
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn status_and_traps(&self) -> (Vec<IkeSaStatus>, Vec<TrapStatus>) {
        let out = self.ikectl_ok(&["status", "--json"]);
        match control::decode_response(&out) {
            Ok(Response::Status { ike_sas, traps }) => (ike_sas, traps),
            other => panic!("status answered {other:?}"),
        }
    }

    pub fn status(&self) -> Vec<IkeSaStatus> {
        self.status_and_traps().0
    }

    /// `ikectl up <conn>`, which must succeed.
    pub fn up(&self, conn: &str) -> String {
        self.ikectl_ok(&["up", conn, "--timeout", "30"])
    }

    /// The first ESTABLISHED IKE SA with an INSTALLED child.
    pub fn established(&self) -> IkeSaStatus {
        self.status()
            .into_iter()
            .find(|s| s.state == "ESTABLISHED" && s.children.iter().any(|c| c.state == "INSTALLED"))
            .unwrap_or_else(|| panic!("{}: no established SA\n{}", self.ns, self.log_text()))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGSTOP / SIGCONT: a peer that does not answer for a while.
    pub fn pause(&self, stop: bool) {
        let sig = if stop { "STOP" } else { "CONT" };
        sh(&format!("kill -{sig} {}", self.pid()));
    }

    /// Sends `sig` and waits for iked to exit; its exit code.
    pub fn signal(&mut self, sig: &str) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        // `ip netns exec` execs iked: the child's pid is iked's.
        sh(&format!("kill -{sig} {}", child.id()));
        child.wait().unwrap().code()
    }

    /// SIGTERM; iked removes what it installed and exits 0.
    pub fn stop(&mut self) {
        let code = self.signal("TERM");
        assert_eq!(
            code,
            Some(0),
            "iked in {} exited with {code:?}\n{}",
            self.ns,
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many lines of its log contain every one of `parts`.
    pub fn log_lines_with(&self, parts: &[&str]) -> usize {
        self.log_text()
            .lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    }
}

impl Drop for Iked {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What tests/lab/lib.sh's `lab_ping_through FROM DST COUNT` checks (ping
/// from namespace `from` succeeds, each reply within 2 s), but with ping
/// started directly (a bash sourcing lib.sh first costs 0.15 s in UML)
/// and its requests 50 ms apart rather than 0.2 s.
pub fn ping_through(from: &str, dst: &str, count: u32) {
    let out = Command::new("ip")
        .args(["netns", "exec", from, "ping", "-c", &count.to_string()])
        .args(["-i", "0.05", "-W", "2", dst])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ping {from} -> {dst} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a file only root may read (iked refuses a configuration with
/// secrets that others can read).
pub fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The first INSTALLED child of the first ESTABLISHED IKE SA.
pub fn installed_child(sas: &[IkeSaStatus]) -> &ChildSaStatus {
    let sa = sas
        .iter()
        .find(|s| s.state == "ESTABLISHED")
        .unwrap_or_else(|| panic!("no ESTABLISHED IKE SA in {sas:?}"));
    sa.children
        .iter()
        .find(|c| c.state == "INSTALLED")
        .unwrap_or_else(|| panic!("no INSTALLED child in {sa:?}"))
}

/// `ip -n NS ARGS...`: its standard output, or its failure. ip runs
/// directly, not in a shell: these are polled, and a shell is another
/// process start (tens of ms in UML).
fn ip_n(ns: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .output()
        .map_err(|e| format!("ip -n {ns} {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip -n {ns} {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `ip -n NS ARGS...`'s standard output; panics if ip fails.
fn ip_ok(ns: &str, args: &[&str]) -> String {
    ip_n(ns, args).unwrap_or_else(|e| panic!("{e}"))
}

/// `ip xfrm state` of a namespace.
pub fn states(ns: &str) -> String {
    ip_ok(ns, &["xfrm", "state"])
}

/// IPsec policies (those with a template; the per-socket bypass policies of
/// the IKE sockets are not counted).
pub fn policies(ns: &str) -> usize {
    ip_ok(ns, &["xfrm", "policy"]).matches("tmpl").count()
}

/// `ip route show table 220` (empty when the table does not exist).
pub fn table_220(ns: &str) -> String {
    ip_n(ns, &["route", "show", "table", "220"]).unwrap_or_default()
}

/// The rule `220: from all lookup 220`.
pub fn rule_220(ns: &str) -> Option<String> {
    ip_ok(ns, &["rule", "show"])
        .lines()
        .find(|l| l.starts_with("220:") && l.contains("from all lookup 220"))
        .map(str::to_string)
}

/// No route of iked's (protocol 157) in any table, no rule 220.
pub fn routes_are_clean(ns: &str) -> bool {
    table_220(ns).trim().is_empty()
        && rule_220(ns).is_none()
        && ip_ok(ns, &["route", "show", "table", "all", "proto", "157"])
            .trim()
            .is_empty()
}

/// No SA, no IPsec policy, no route or rule of iked's.
pub fn kernel_is_clean(ns: &str) -> bool {
    states(ns).trim().is_empty() && policies(ns) == 0 && routes_are_clean(ns)
}

/// Waits (10 s at most) for `kernel_is_clean` in every namespace of `nss`.
pub fn assert_clean(nss: &[&str]) {
    wait_until(
        Duration::from_secs(10),
        &format!("{nss:?}: kernel clean"),
        || nss.iter().all(|ns| kernel_is_clean(ns)),
    );
}

/// The packets the ESP SAs of namespace `ns` counted.
pub fn esp_packets(ns: &str) -> u64 {
    let text = sh(&format!("ip -n {ns} -s xfrm state"));
    let mut esp = false;
    let mut sum = 0;
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() == Some(&"proto") {
            esp = w.get(1) == Some(&"esp");
        }
        if esp
            && l.trim() == "lifetime current:"
            && let Some(n) = lines.next()
        {
            // "  1234(bytes), 5(packets)"
            sum += n
                .split(',')
                .nth(1)
                .and_then(|x| x.trim().split('(').next()?.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    sum
}
