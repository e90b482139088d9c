//! The `updown` and `hostaccess` keys: the script runs with the
//! environment charon's updown plugin gives it.
//!
//! 1. The same swanctl.conf for gw-a, first in a charon (the reference),
//!    then in iked, each against a charon in gw-b; every child's `updown`
//!    is a script that writes its environment to a file per call. Each run
//!    brings every child up and then the IKE SA down, so each gives one
//!    `up` and one `down` call per pair of traffic selectors. The calls
//!    must match variable for variable (the whole environment), apart from
//!    the values that number instances (`PLUTO_UNIQUEID`, `PLUTO_REQID`:
//!    compared by shape, and the same for a child's `up` and `down`).
//! 2. iked alone, a second connection whose children's scripts fail
//!    (exit 3 with output), hang (killed after `--updown-timeout 5`) or
//!    dump: the connection comes up while the hanging script runs, iked
//!    answers, the dumping child's script runs meanwhile, both failures
//!    are logged with their status and output; the dumping child and its
//!    IKE SA are rekeyed (3 s, 4 s) without a call, and a SIGTERM runs
//!    the remaining `down` (the successor's, with the new IKE SA's
//!    number) before iked exits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use iked_lab::{guest_out, wait_until};

use crate::common::Iked;
use crate::common::charon::{Charon, tail};
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

/// A script that writes its environment to `<dir>/<pid>.env`, with shell
/// builtins only (a process start costs tens of ms in UML, and the script
/// runs under `--updown-timeout`), ending in a line `END`.
fn dump_script(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join("dump.sh");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\n{{ export -p; echo END; }} > '{}'/$$.env\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The calls a dump script recorded completely, in the order they were
/// made (pids rise in the short-lived guest).
fn calls(dir: &Path) -> Vec<Call> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|(_, f)| {
            let text = std::fs::read_to_string(f).unwrap();
            if !text.ends_with("END\n") {
                return None;
            }
            // `export NAME='value'` (dash).
            Some(
                text.lines()
                    .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
                    .map(|(k, v)| {
                        let v = v
                            .strip_prefix('\'')
                            .and_then(|v| v.strip_suffix('\''))
                            .unwrap_or(v);
                        (k.to_owned(), v.to_owned())
                    })
                    .collect(),
            )
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
        (
            "comp",
            ts("10.1.2.0/24", "10.2.2.0/24") + "                ipcomp = yes\n",
        ),
    ]
}

/// The swanctl.conf of side `a` (gw-a) or gw-b, every child's `updown`
/// the dump script in `dump`; `bad`: also the connection `updown-bad`.
fn conf(a: bool, addrs: &(String, String), dump: &Path, bad: Option<&Path>) -> String {
    let script = dump_script(dump);
    let mut kids = String::new();
    for (name, lines) in children(a) {
        kids += &child(name, &lines, &format!("{} {name}", script.display()));
    }
    let mut text = connection("updown", "", a, addrs, &kids);
    if let Some(dir) = bad {
        let mut kids = String::new();
        for (i, (name, cmd)) in bad_scripts(dir).into_iter().enumerate() {
            let (l, r) = (
                format!("10.1.{}.0/24", 9 + i),
                format!("10.2.{}.0/24", 9 + i),
            );
            let (l, r) = if a { (l, r) } else { (r, l) };
            let mut ts = format!("local_ts = {l}\n                remote_ts = {r}\n");
            // gw-a rekeys `after` (and the IKE SA, below) while the
            // hanging script runs: no call.
            if a && name == "after" {
                ts += "                rekey_time = 3s\n                life_time = 5s\n";
            }
            // charon would wait for the hanging script (gw-b runs none).
            let cmd = if a { cmd } else { "/bin/true".to_owned() };
            kids += &child(name, &ts, &cmd);
        }
        let mut bad = connection("updown-bad", "bad-", a, addrs, &kids);
        if a {
            bad = bad.replacen(
                "proposals = aes128gcm16-prfsha256-x25519\n",
                "proposals = aes128gcm16-prfsha256-x25519\n        rekey_time = 4s\n",
                1,
            );
        }
        text += &bad;
    }
    text + &format!(
        "secrets {{
    ike-updown {{
        id-a = a.updown.example
        id-b = b.updown.example
        secret = \"{PSK}\"
    }}
    ike-updown-bad {{
        id-a = bad-a.updown.example
        id-b = bad-b.updown.example
        secret = \"{PSK}\"
    }}
}}
"
    )
}

fn child(name: &str, lines: &str, updown: &str) -> String {
    format!(
        "            {name} {{\n                {lines}                updown = {updown}\n                esp_proposals = aes128gcm16\n            }}\n"
    )
}

/// Connection `name` between the lane's addresses, identities
/// `{prefix}a.updown.example` and `{prefix}b...`, with `kids`.
fn connection(name: &str, prefix: &str, a: bool, addrs: &(String, String), kids: &str) -> String {
    let (me, peer, my_id, peer_id) = if a {
        (&addrs.0, &addrs.1, "a", "b")
    } else {
        (&addrs.1, &addrs.0, "b", "a")
    };
    format!(
        "connections {{
    {name} {{
        local_addrs = {me}
        remote_addrs = {peer}
        proposals = aes128gcm16-prfsha256-x25519
        local {{
            auth = psk
            id = {prefix}{my_id}.updown.example
        }}
        remote {{
            auth = psk
            id = {prefix}{peer_id}.updown.example
        }}
        children {{
{kids}        }}
    }}
}}
"
    )
}

/// The children of `updown-bad` and their commands: one fails, one
/// hangs (after writing `hang.started`), one dumps.
fn bad_scripts(dir: &Path) -> Vec<(&'static str, String)> {
    use std::os::unix::fs::PermissionsExt as _;
    let write = |name: &str, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    };
    vec![
        (
            "fail",
            write(
                "fail.sh",
                "echo \"boom on $PLUTO_VERB\"\necho to stderr >&2\nexit 3".to_owned(),
            ),
        ),
        (
            "hang",
            write(
                "hang.sh",
                format!(
                    "case $PLUTO_VERB in up*) touch '{}/hang.started'; sleep 600;; esac",
                    dir.display()
                ),
            ),
        ),
        ("after", format!("{} after", dump_script(dir).display())),
    ]
}

/// Variables whose values number instances: the same shape, not the same value.
const NUMBERS: &[&str] = &["PLUTO_UNIQUEID", "PLUTO_REQID"];

/// A call's identity: verb, child and the selectors.
fn key(c: &Call) -> String {
    let v = |k: &str| c.get(k).map_or("-", String::as_str);
    format!(
        "{} {} {} === {}",
        v("PLUTO_VERB"),
        v("PLUTO_CONNECTION"),
        v("PLUTO_MY_CLIENT"),
        v("PLUTO_PEER_CLIENT")
    )
}

/// What differs between charon's calls and iked's, one line each.
fn differences(reference: &[Call], got: &[Call]) -> Vec<String> {
    let mut out = Vec::new();
    let by_key = |calls: &[Call]| -> BTreeMap<String, Call> {
        calls.iter().map(|c| (key(c), c.clone())).collect()
    };
    let (want, have) = (by_key(reference), by_key(got));
    if want.len() != reference.len() || have.len() != got.len() {
        out.push(format!(
            "calls with the same verb, child and selectors: {} of charon's, {} of iked's",
            reference.len() - want.len(),
            got.len() - have.len()
        ));
    }
    for (k, w) in &want {
        let Some(h) = have.get(k) else {
            out.push(format!("iked made no call {k}"));
            continue;
        };
        for (name, wv) in w {
            match h.get(name) {
                None => out.push(format!("{k}: iked passes no {name} (charon: {wv})")),
                Some(hv) if NUMBERS.contains(&name.as_str()) => {
                    let number = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                    if !number(hv) {
                        out.push(format!("{k}: {name}={hv} is no number (charon: {wv})"));
                    }
                }
                Some(hv) if hv != wv => out.push(format!("{k}: {name}={hv}, charon: {wv}")),
                Some(_) => {}
            }
        }
        for (name, hv) in h {
            if !w.contains_key(name) {
                out.push(format!("{k}: iked passes {name}={hv}, charon does not"));
            }
        }
    }
    for k in have.keys() {
        if !want.contains_key(k) {
            out.push(format!("iked made the call {k}, charon did not"));
        }
    }
    // Each child's down names the same instances as its up, and comes after it.
    for calls in [reference, got] {
        for (i, c) in calls.iter().enumerate() {
            let Some(up) = c.get("PLUTO_VERB").and_then(|v| v.strip_prefix("down")) else {
                continue;
            };
            let want_up = key(c).replacen(&format!("down{up}"), &format!("up{up}"), 1);
            match calls[..i].iter().find(|u| key(u) == want_up) {
                None => out.push(format!("{}: no up before it", key(c))),
                Some(u) => {
                    for n in NUMBERS {
                        if u.get(*n) != c.get(*n) {
                            out.push(format!("{}: {n} differs from its up's", key(c)));
                        }
                    }
                }
            }
        }
    }
    out
}

pub fn run(lab: &Lab) {
    let addrs = lab.wan(UPDOWN);
    let b_dump = dump_dir("charon-b");
    let bad_dir = dump_dir("bad");
    let b = Charon::start(
        "updown-b",
        "gw-b",
        &conf(false, &addrs, &b_dump, Some(&bad_dir)),
        "default=1 chd=2 ike=1",
        "updown",
        "",
    );

    // 1. The reference: charon on gw-a.
    let t = Instant::now();
    let a_dump = dump_dir("charon-a");
    let ca = Charon::start(
        "updown-a",
        "gw-a",
        &conf(true, &addrs, &a_dump, None),
        "default=1 chd=2 ike=1",
        "updown",
        "",
    );
    // The first child makes the IKE SA, the others join it one after the
    // other: charon 5.9.8 once let `swanctl --initiate` of a child sent
    // while another joined return without ever creating it.
    let kids = children(true);
    ca.initiate(kids[0].0);
    for (child, _) in &kids[1..] {
        ca.swanctl_ok(&["--initiate", "--child", child, "--timeout", "30"]);
    }
    // net: 2 pairs, svc, host and comp: 1; up and down.
    let all = 10;
    // Every up is in before the terminate (charon runs the scripts on
    // its own threads, they may lag the swanctl answers).
    wait_until(Duration::from_secs(30), "charon's up calls", || {
        calls(&a_dump).len() >= all / 2
    });
    ca.swanctl_ok(&["--terminate", "--ike", "updown", "--timeout", "10"]);
    // charon runs its scripts one after the other on its own threads; on
    // a loaded machine its ten calls took over 10 s once. It is the
    // reference, not the subject: wait longer (returns as soon as done).
    wait_until(Duration::from_secs(30), "charon's down calls", || {
        calls(&a_dump).len() >= all
    });
    ca.stop();
    let reference = calls(&a_dump);
    assert_eq!(
        reference.len(),
        all,
        "charon's calls:\n{reference:#?}\n--- log ---\n{}",
        tail(&ca.log_text(), 40)
    );
    eprintln!(
        "updown: charon's calls in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The same with iked on gw-a.
    let t = Instant::now();
    let i_dump = dump_dir("iked-a");
    let text = conf(true, &addrs, &i_dump, Some(&bad_dir));
    let mut iked = Iked::spawn(
        "gw-a",
        "updown-iked.conf",
        "updown-iked.log",
        // iked's dump script writes to its own folder; the rest is the same.
        &text,
        &["--updown-timeout", "5"],
    );
    iked.up("updown");
    iked.ikectl_ok(&["down", "updown"]);
    wait_until(Duration::from_secs(10), "iked's down calls", || {
        calls(&i_dump).len() >= all
    });
    let got = calls(&i_dump);
    let diff = differences(&reference, &got);
    assert!(
        diff.is_empty() && got.len() == all,
        "iked's calls differ from charon's:\n{}\n--- iked's calls ---\n{got:#?}\n--- iked log (tail) ---\n{}",
        diff.join("\n"),
        tail(&iked.log_text(), 40)
    );
    eprintln!(
        "updown: iked's {} calls match charon's ({:.1} s)",
        got.len(),
        t.elapsed().as_secs_f64()
    );

    // 2. Failing and hanging scripts do not block iked.
    let t = Instant::now();
    iked.up("updown-bad");
    let up_took = t.elapsed();
    let started = bad_dir.join("hang.started");
    wait_until(Duration::from_secs(5), "the hanging script started", || {
        started.exists()
    });
    // While it hangs: iked answers, and the other children's scripts run.
    let asked = Instant::now();
    iked.ikectl_ok(&["status"]);
    let answered = asked.elapsed();
    wait_until(Duration::from_secs(5), "the `after` child's up", || {
        calls(&bad_dir)
            .iter()
            .any(|c| c["PLUTO_VERB"] == "up-client")
    });
    assert!(
        up_took < Duration::from_secs(4) && answered < Duration::from_secs(1),
        "ikectl up took {up_took:?}, status {answered:?} with a hanging updown"
    );
    wait_until(
        Duration::from_secs(10),
        "the hanging script killed after 5 s",
        || iked.log_lines_with(&["hang", "up-client", "did not finish within 5s", "killed"]) == 1,
    );
    let failed = iked.log_lines_with(&[
        "fail",
        "up-client",
        "failed (exit status: 3)",
        "boom on up-client",
        "to stderr",
    ]);
    assert_eq!(
        failed,
        1,
        "the failing script's status and output\n{}",
        tail(&iked.log_text(), 40)
    );
    // The rekeys of `after` and of its IKE SA called nothing.
    wait_until(
        Duration::from_secs(10),
        "`after` and its IKE SA rekeyed",
        || {
            iked.log_lines_with(&["CHILD SA after{", "rekeyed to after{"]) >= 1
                && iked.log_lines_with(&["IKE SA updown-bad[", "rekeyed to updown-bad["]) >= 1
        },
    );
    // SIGTERM: the downs run before iked exits (the hanging script's
    // down returns at once).
    iked.stop();
    let after = calls(&bad_dir);
    let verbs: Vec<&str> = after.iter().map(|c| c["PLUTO_VERB"].as_str()).collect();
    assert_eq!(
        verbs,
        ["up-client", "down-client"],
        "the `after` child's calls"
    );
    // The down is the successor's: same reqid, the new IKE SA's number.
    let v = |i: usize, k: &str| after[i][k].clone();
    assert_eq!(v(0, "PLUTO_REQID"), v(1, "PLUTO_REQID"));
    assert_ne!(
        v(0, "PLUTO_UNIQUEID"),
        v(1, "PLUTO_UNIQUEID"),
        "the IKE SA was rekeyed between up and down"
    );
    assert_eq!(
        iked.log_lines_with(&["fail", "down-client", "failed (exit status: 3)"]),
        1,
        "{}",
        tail(&iked.log_text(), 40)
    );
    eprintln!(
        "updown: failing and hanging scripts in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(b);
}
