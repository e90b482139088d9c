//! A FreeRADIUS for the lab tests that need a RADIUS server (radius_lab on
//! the host's loopback, ra_lab in the lab's namespace srv): the smallest
//! configuration that does EAP-MSCHAPv2 (the eap module calls mschap
//! through Auth-Type MS-CHAP, which gives the MS-MPPE keys) and writes
//! accounting into a detail file, in a directory of its own (never
//! /etc/freeradius). Stopped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iked_lab::sh;

/// Where and for whom it runs.
pub struct Spec<'a> {
    /// Its directory (emptied first).
    pub dir: PathBuf,
    /// The network namespace it runs in (`None`: this one).
    pub netns: Option<&'a str>,
    /// The address it listens on: `port` for authentication, `port + 1`
    /// for accounting.
    pub listen: &'a str,
    pub port: u16,
    /// The one client (NAS) it answers, and their shared secret.
    pub client: &'a str,
    pub secret: &'a str,
    /// The EAP-MSCHAPv2 users and their passwords.
    pub users: &'a [(&'a str, &'a str)],
}

pub struct FreeRadius {
    pub dir: PathBuf,
    child: Child,
}

impl FreeRadius {
    /// Starts it and waits until it is ready to process requests.
    pub fn start(spec: Spec) -> FreeRadius {
        let Spec {
            dir,
            netns,
            listen,
            port,
            client,
            secret,
            users,
        } = spec;
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["", "log", "run", "acct"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let d = dir.display();
        let acct = port + 1;
        std::fs::write(
            dir.join("radiusd.conf"),
            format!(
                r#"prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {d}/log
raddbdir = {d}
radacctdir = {d}/acct
name = freeradius
confdir = {d}
modconfdir = {d}
run_dir = {d}/run
db_dir = {d}
libdir = /usr/lib/freeradius
dictdir = /usr/share/freeradius
pidfile = {d}/run/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {{
    destination = files
    file = {d}/log/radius.log
    auth = yes
}}
security {{
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = no
}}
thread pool {{
    start_servers = 1
    max_servers = 2
    min_spare_servers = 1
    max_spare_servers = 2
    max_requests_per_server = 0
}}
client nas {{
    ipaddr = {client}
    secret = "{secret}"
    require_message_authenticator = yes
}}
modules {{
    files {{
        filename = {d}/users
    }}
    mschap {{
        use_mppe = yes
    }}
    eap {{
        default_eap_type = mschapv2
        timer_expire = 60
        max_sessions = 64
        mschapv2 {{
        }}
    }}
    detail {{
        filename = {d}/acct/detail
        escape_filenames = no
        permissions = 0600
        header = "%t"
    }}
}}
server default {{
    listen {{
        type = auth
        ipaddr = {listen}
        port = {port}
    }}
    listen {{
        type = acct
        ipaddr = {listen}
        port = {acct}
    }}
    authorize {{
        files
        eap {{
            ok = return
        }}
    }}
    authenticate {{
        eap
        Auth-Type MS-CHAP {{
            mschap
        }}
    }}
    preacct {{
    }}
    accounting {{
        detail
    }}
    post-auth {{
    }}
}}
"#
            ),
        )
        .unwrap();
        std::fs::write(dir.join("dictionary"), "").unwrap();
        let users: String = users
            .iter()
            .map(|(u, p)| format!("\"{u}\" Cleartext-Password := \"{p}\"\n"))
            .collect();
        std::fs::write(dir.join("users"), users).unwrap();
        sh(&format!("chmod -R go-rwx '{d}'"));
        let out = std::fs::File::create(dir.join("log/stdout")).unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "freeradius"]);
                c
            }
            None => Command::new("freeradius"),
        };
        let child = cmd
            .args(["-f", "-xx", "-l", "stdout", "-d"])
            .arg(&dir)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("freeradius");
        let mut fr = FreeRadius { dir, child };
        let t0 = Instant::now();
        loop {
            let log = fr.log();
            if log.contains("Ready to process requests") {
                return fr;
            }
            if let Ok(Some(st)) = fr.child.try_wait() {
                panic!("FreeRADIUS exited ({st}):\n{log}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "FreeRADIUS did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its debug output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/stdout")).unwrap_or_default()
    }

    /// The accounting records (the detail file).
    pub fn detail(&self) -> String {
        std::fs::read_to_string(self.dir.join("acct/detail")).unwrap_or_default()
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
