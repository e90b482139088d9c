//! One charon (strongSwan 5.9.8) of the lab, started with tests/lab/lib.sh's
//! `lab_charon_start` (its own strongswan.conf, VICI socket and /run in
//! `$LAB_STATE/<name>`) and driven with swanctl.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use iked_lab::{guest_out, lab_sh, wait_until};

/// A running charon instance; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Charon {
    pub name: String,
}

impl Charon {
    /// Starts charon `name` in namespace `ns` with `conf` as its
    /// swanctl.conf (loaded with `swanctl --load-all`), `levels` as its
    /// log levels (`"default=1 chd=2"`), `plugins` loaded besides lib.sh's
    /// list (`"updown"`) and `extra` lines in `charon { }` of its
    /// strongswan.conf.
    pub fn start(
        name: &str,
        ns: &str,
        conf: &str,
        levels: &str,
        plugins: &str,
        extra: &str,
    ) -> Charon {
        let file = guest_out().join(format!("{name}-swanctl.conf"));
        std::fs::write(&file, conf).unwrap();
        lab_sh(&format!(
            "CHARON_PLUGINS=\"$CHARON_PLUGINS {plugins}\"\n\
             lab_charon_start {name} {ns} '{}' '{levels}' '{extra}'",
            file.display()
        ));
        Charon {
            name: name.to_owned(),
        }
    }

    /// The folder with its strongswan.conf, swanctl.conf and charon.log.
    pub fn dir(&self) -> PathBuf {
        guest_out().join(format!("charon-{}", self.name))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir().join("charon.log")).unwrap_or_default()
    }

    /// `swanctl COMMAND --uri ... ARGS` (`args[0]` is the command).
    pub fn swanctl(&self, args: &[&str]) -> Output {
        let state = std::env::var("LAB_STATE").unwrap_or_else(|_| "/run/lab".to_owned());
        Command::new("swanctl")
            .env("STRONGSWAN_CONF", self.dir().join("strongswan.conf"))
            .arg(args[0])
            .args(["--uri", &format!("unix://{state}/{}/run/vici", self.name)])
            .args(&args[1..])
            .output()
            .unwrap()
    }

    /// swanctl's standard output; fails the test (with charon's log tail)
    /// when swanctl fails.
    pub fn swanctl_ok(&self, args: &[&str]) -> String {
        let out = self.swanctl(args);
        assert!(
            out.status.success(),
            "swanctl {args:?} on {}: {}{}\n--- charon log (tail) ---\n{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log_text(), 40)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether `swanctl --list-sas` shows child `child` INSTALLED.
    pub fn installed(&self, child: &str) -> bool {
        let o = self.swanctl(&["--list-sas"]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{child}: #")) && l.contains("INSTALLED"))
    }

    /// Whether it has any IKE SA.
    pub fn has_ike_sa(&self) -> bool {
        let o = self.swanctl(&["--list-sas"]);
        let t = String::from_utf8_lossy(&o.stdout);
        t.contains("ESTABLISHED") || t.contains("CONNECTING") || t.contains("DELETING")
    }

    /// `swanctl --initiate --child CHILD` and waits until it is installed.
    pub fn initiate(&self, child: &str) {
        self.swanctl_ok(&["--initiate", "--child", child, "--timeout", "30"]);
        wait_until(
            Duration::from_secs(30),
            &format!("{child} installed on {}", self.name),
            || self.installed(child),
        );
    }

    /// SIGKILL, as a crash: charon deletes nothing and its SAs and
    /// policies stay in the kernel.
    pub fn kill(&self) {
        lab_sh(&format!(
            "state=$LAB_STATE/{n}\n\
             pid=$(cat $state/run/charon.pid)\n\
             kill -9 $pid\n\
             for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done\n\
             rm -f $state/run/vici $state/run/charon.pid",
            n = self.name
        ));
    }

    pub fn stop(&self) {
        lab_sh(&format!("lab_charon_stop {}", self.name));
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.stop());
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
