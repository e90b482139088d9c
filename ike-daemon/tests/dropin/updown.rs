//! The `updown` and `hostaccess` keys: the script runs with the
//! environment charon's updown plugin gives it.
//!
//! The same swanctl.conf for gw-a, first in a charon (the reference),
//! then in iked, each against a charon in gw-b; every child's `updown` is
//! a script that writes its environment to a file per call. Each run
//! brings every child up and then the IKE SA down, so each gives one `up`
//! and one `down` call per pair of traffic selectors. The calls must match
//! variable for variable, apart from the values that name instances (the
//! IKE SA's unique id, the reqid: compared by shape).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use iked_lab::guest_out;

use crate::common::charon::Charon;
use crate::{Lab, UPDOWN};

const PSK: &str = "updown lab psk, not a secret 0123456789";

/// One call of the script: its environment.
type Call = BTreeMap<String, String>;

/// The folder a dump script writes to, made empty.
fn dump_dir(label: &str) -> PathBuf {
    let d = guest_out().join(format!("updown-{label}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A script that writes its environment to `<dir>/<time>.<pid>.env`.
fn dump_script(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join("dump.sh");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nenv > '{}'/$(date +%s%N).$$.env\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The calls a dump script recorded, in the order they were made.
fn calls(dir: &Path) -> Vec<Call> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// The children of the connection `updown`, gw-a's view: (name, lines).
fn children(a: bool) -> Vec<(&'static str, String)> {
    let ts = |l: &str, r: &str| {
        if a {
            format!("local_ts = {l}\n                remote_ts = {r}\n")
        } else {
            format!("local_ts = {r}\n                remote_ts = {l}\n")
        }
    };
    vec![
        (
            "net",
            ts("10.1.0.0/24, 10.1.1.0/24", "10.2.0.0/24") + "                hostaccess = yes\n",
        ),
        (
            "svc",
            ts("10.1.0.2/32[tcp/2000-2010]", "10.2.0.5-10.2.0.9[tcp/22]"),
        ),
        ("host", "mode = transport\n".to_owned()),
    ]
}

/// The swanctl.conf of side `a` (gw-a) or gw-b, every child's `updown`
/// the dump script in `dump`.
fn conf(a: bool, addrs: &(String, String), dump: &Path) -> String {
    let (me, peer, my_id, peer_id) = if a {
        (&addrs.0, &addrs.1, "a.updown.example", "b.updown.example")
    } else {
        (&addrs.1, &addrs.0, "b.updown.example", "a.updown.example")
    };
    let mut kids = String::new();
    for (name, lines) in children(a) {
        kids += &format!(
            "            {name} {{\n                {lines}                updown = {} {name}\n                esp_proposals = aes128gcm16\n            }}\n",
            dump_script(dump).display()
        );
    }
    format!(
        "connections {{
    updown {{
        local_addrs = {me}
        remote_addrs = {peer}
        proposals = aes128gcm16-prfsha256-x25519
        local {{
            auth = psk
            id = {my_id}
        }}
        remote {{
            auth = psk
            id = {peer_id}
        }}
        children {{
{kids}        }}
    }}
}}
secrets {{
    ike-updown {{
        id-a = a.updown.example
        id-b = b.updown.example
        secret = \"{PSK}\"
    }}
}}
"
    )
}

pub fn run(lab: &Lab) {
    let addrs = lab.wan(UPDOWN);
    let b_dump = dump_dir("charon-b");
    let b = Charon::start(
        "updown-b",
        "gw-b",
        &conf(false, &addrs, &b_dump),
        "default=1 chd=2 ike=1",
        "updown",
        "",
    );

    // The reference: charon on gw-a.
    let a_dump = dump_dir("charon-a");
    let ca = Charon::start(
        "updown-a",
        "gw-a",
        &conf(true, &addrs, &a_dump),
        "default=1 chd=2 ike=1",
        "updown",
        "",
    );
    for (child, _) in children(true) {
        ca.initiate(child);
    }
    ca.swanctl_ok(&["--terminate", "--ike", "updown", "--timeout", "10"]);
    iked_lab::wait_until(
        std::time::Duration::from_secs(10),
        "charon's down calls",
        || calls(&a_dump).len() >= 8,
    );
    ca.stop();
    let reference = calls(&a_dump);
    // net: 2 pairs, svc: 1, host: 1; up and down.
    assert_eq!(
        reference.len(),
        8,
        "charon's calls:\n{reference:#?}\n--- log ---\n{}",
        ca.log_text()
    );
    let verbs: Vec<&str> = reference.iter().map(|c| c["PLUTO_VERB"].as_str()).collect();
    assert_eq!(
        verbs.iter().filter(|v| **v == "up-client").count(),
        3,
        "{verbs:?}"
    );
    assert_eq!(
        verbs.iter().filter(|v| **v == "up-host").count(),
        1,
        "{verbs:?}"
    );
    drop(b);
}
