//! iked against strongSwan 5.9.8 (Debian's charon), in the UML kernel lab:
//! iked in namespace gw-a, charon in gw-b (tests/lab/lib.sh's topology),
//! each driven by a swanctl.conf of the same form, generated here: charon
//! loads its side with `swanctl --load-all`, iked reads its side directly
//! (`iked --config a.conf`); iked's `--check-config` also accepts
//! charon's file and, at the end, a charon in gw-a loads iked's.
//!
//! ```text
//! host-a 10.1.{0,1,2}.2 -- gw-a (iked) 192.0.2.1x === 192.0.2.1xx gw-b (charon) -- 10.2.{0,1,2}.2 host-b
//! ```
//!
//! Every case is one connection with its own pair of wan addresses (so
//! charon, which picks an IKE config by address, never picks another
//! case's) and its own identities and secret; both daemons load all cases
//! once and the cases run one after the other, each in both directions
//! (iked initiates, charon initiates). A case that should come up must:
//! ping through each child, show ESP/AH packets counted by both kernels,
//! agree between `ikectl status --json` and `swanctl --list-sas` on the IKE
//! and Child SA algorithms, SPIs and selectors, and be taken down by the
//! side that did not initiate with nothing left in either kernel and no SA
//! in either daemon. A case that should fail must fail with the expected
//! reason in iked's answer or log and leave nothing in either kernel.
//!
//! The results are the matrix in docs/interop.md: this test writes it with
//! `IKED_WRITE_INTEROP_DOC=1` and otherwise fails if the committed file
//! differs from what the run found.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use ike::control::{self, IkeSaStatus, Response};
use iked_lab::{guest_out, in_uml, is_guest, lab_sh, repo_root, sh, wait_until};

const IKED: &str = env!("CARGO_BIN_EXE_iked");
const IKECTL: &str = env!("CARGO_BIN_EXE_ikectl");
const SOCK: &str = "/run/iked-interop/iked.sock";
const DOC: &str = "docs/interop.md";

// ---------------------------------------------------------------------------
// The cases.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tunnel,
    Transport,
}

#[derive(Clone)]
struct ChildCase {
    name: &'static str,
    mode: Mode,
    /// `esp_proposals` (or `ah_proposals` when `ah`).
    proposals: &'static str,
    /// charon's, where they differ.
    b_esp: Option<&'static str>,
    ah: bool,
    /// iked's (gw-a's) local_ts / remote_ts; empty: dynamic.
    a_ts: (&'static str, &'static str),
    /// charon's (gw-b's).
    b_ts: (&'static str, &'static str),
    /// The selectors both must end up with, from iked's side.
    want_ts: (String, String),
    /// Pings through this child: (namespace, source, destination).
    pings: Vec<(&'static str, String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Up,
    /// Fails; iked's error (its `ikectl up` answer when it initiates, its
    /// log when it responds) contains one of these.
    Fails(&'static [&'static str]),
}

#[derive(Clone)]
struct Case {
    name: String,
    what: &'static str,
    v6: bool,
    a_ike: &'static str,
    b_ike: &'static str,
    a_psk: &'static str,
    b_psk: &'static str,
    children: Vec<ChildCase>,
    expect: Expect,
    /// Index, for the addresses.
    n: u8,
}

impl Case {
    fn a_addr(&self) -> String {
        if self.v6 {
            format!("2001:db8::a:{}", self.n)
        } else {
            format!("192.0.2.{}", 10 + self.n)
        }
    }

    fn b_addr(&self) -> String {
        if self.v6 {
            format!("2001:db8::b:{}", self.n)
        } else {
            format!("192.0.2.{}", 100 + self.n)
        }
    }
}

const PSK: &str = "interop psk, not a secret: 0123456789abcdef";
const OTHER_PSK: &str = "a different psk, also not secret 0123456789";

fn tunnel(
    name: &'static str,
    proposals: &'static str,
    a_ts: (&'static str, &'static str),
    b_ts: (&'static str, &'static str),
    want_ts: (&'static str, &'static str),
    pings: &[(u8, u8)],
) -> ChildCase {
    ChildCase {
        name,
        mode: Mode::Tunnel,
        proposals,
        b_esp: None,
        ah: false,
        a_ts,
        b_ts,
        want_ts: (want_ts.0.to_owned(), want_ts.1.to_owned()),
        pings: pings
            .iter()
            .map(|(s, d)| ("host-a", format!("10.1.{s}.2"), format!("10.2.{d}.2")))
            .collect(),
    }
}

const NET0: (&str, &str) = ("10.1.0.0/24", "10.2.0.0/24");
const NET0_B: (&str, &str) = ("10.2.0.0/24", "10.1.0.0/24");

fn lan(proposals: &'static str) -> ChildCase {
    tunnel("net", proposals, NET0, NET0_B, NET0, &[(0, 0)])
}

fn cases() -> Vec<Case> {
    let up = |name: &str, what, ike, children: Vec<ChildCase>| Case {
        name: name.to_owned(),
        what,
        v6: false,
        a_ike: ike,
        b_ike: ike,
        a_psk: PSK,
        b_psk: PSK,
        children,
        expect: Expect::Up,
        n: 0,
    };
    let transport = |proposals, ah| ChildCase {
        name: "host",
        mode: Mode::Transport,
        proposals,
        b_esp: None,
        ah,
        a_ts: ("", ""),
        b_ts: ("", ""),
        want_ts: (String::new(), String::new()),
        pings: Vec::new(),
    };
    let mut v = vec![
        up(
            "gcm128-x25519",
            "IKE aes128gcm16-prfsha256-x25519, ESP aes128gcm16, tunnel",
            "aes128gcm16-prfsha256-x25519",
            vec![lan("aes128gcm16")],
        ),
        up(
            "gcm256-ecp384",
            "IKE aes256gcm16-prfsha384-ecp384, ESP aes256gcm16, tunnel",
            "aes256gcm16-prfsha384-ecp384",
            vec![lan("aes256gcm16")],
        ),
        up(
            "gcm128-prf384-ecp256",
            "IKE aes128gcm16-prfsha384-ecp256, ESP aes256gcm16, tunnel",
            "aes128gcm16-prfsha384-ecp256",
            vec![lan("aes256gcm16")],
        ),
        up(
            "chacha-ecp256",
            "IKE chacha20poly1305-prfsha256-ecp256, ESP chacha20poly1305, tunnel",
            "chacha20poly1305-prfsha256-ecp256",
            vec![lan("chacha20poly1305")],
        ),
        up(
            "cbc128-modp2048",
            "IKE aes128-sha256-modp2048, ESP aes128-sha256, tunnel",
            "aes128-sha256-modp2048",
            vec![lan("aes128-sha256")],
        ),
        up(
            "cbc256-modp3072",
            "IKE aes256-sha384-modp3072, ESP aes256-sha512, tunnel",
            "aes256-sha384-modp3072",
            vec![lan("aes256-sha512")],
        ),
        up(
            "gcm256-prf256-x25519",
            "IKE aes256gcm16-prfsha256-x25519, ESP aes128gcm16-x25519 (group ignored in IKE_AUTH), tunnel",
            "aes256gcm16-prfsha256-x25519",
            vec![lan("aes128gcm16-x25519")],
        ),
        up(
            "ah-tunnel",
            "AH sha256, tunnel",
            "aes128gcm16-prfsha256-x25519",
            vec![ChildCase {
                ah: true,
                ..lan("sha256")
            }],
        ),
        up(
            "esp-transport",
            "ESP aes256gcm16, transport",
            "aes128gcm16-prfsha256-x25519",
            vec![transport("aes256gcm16", false)],
        ),
        up(
            "ah-transport",
            "AH sha256, transport",
            "aes128gcm16-prfsha256-x25519",
            vec![transport("sha256", true)],
        ),
        Case {
            v6: true,
            ..up(
                "v6-tunnel",
                "IPv6 outer addresses, IPv4 inside, ESP aes128gcm16, tunnel",
                "aes128gcm16-prfsha256-x25519",
                vec![lan("aes128gcm16")],
            )
        },
        Case {
            v6: true,
            ..up(
                "v6-transport",
                "IPv6, ESP chacha20poly1305, transport",
                "aes256gcm16-prfsha384-ecp384",
                vec![transport("chacha20poly1305", false)],
            )
        },
        up(
            "two-subnets",
            "two subnets on each side of one child",
            "aes128gcm16-prfsha256-x25519",
            vec![tunnel(
                "net",
                "aes128gcm16",
                ("10.1.0.0/24,10.1.1.0/24", "10.2.0.0/24,10.2.1.0/24"),
                ("10.2.0.0/24,10.2.1.0/24", "10.1.0.0/24,10.1.1.0/24"),
                ("10.1.0.0/24 10.1.1.0/24", "10.2.0.0/24 10.2.1.0/24"),
                &[(0, 0), (1, 1)],
            )],
        ),
        up(
            "charon-narrows",
            "iked proposes 10.1.0.0/16 - 10.2.0.0/16, charon's config is the /24s",
            "aes128gcm16-prfsha256-x25519",
            vec![tunnel(
                "net",
                "aes128gcm16",
                ("10.1.0.0/16", "10.2.0.0/16"),
                NET0_B,
                NET0,
                &[(0, 0)],
            )],
        ),
        up(
            "iked-narrows",
            "charon proposes 10.2.0.0/16 - 10.1.0.0/16, iked's config is the /24s",
            "aes128gcm16-prfsha256-x25519",
            vec![tunnel(
                "net",
                "aes128gcm16",
                NET0,
                ("10.2.0.0/16", "10.1.0.0/16"),
                NET0,
                &[(0, 0)],
            )],
        ),
        up(
            "three-children",
            "three children on one IKE SA: one in IKE_AUTH, two by CREATE_CHILD_SA (ecp256 PFS, no PFS)",
            "aes128gcm16-prfsha256-x25519",
            vec![
                lan("aes128gcm16"),
                tunnel(
                    "pfs",
                    "aes256gcm16-ecp256",
                    ("10.1.1.0/24", "10.2.1.0/24"),
                    ("10.2.1.0/24", "10.1.1.0/24"),
                    ("10.1.1.0/24", "10.2.1.0/24"),
                    &[(1, 1)],
                ),
                tunnel(
                    "nopfs",
                    "aes128-sha256",
                    ("10.1.2.0/24", "10.2.2.0/24"),
                    ("10.2.2.0/24", "10.1.2.0/24"),
                    ("10.1.2.0/24", "10.2.2.0/24"),
                    &[(2, 2)],
                ),
            ],
        ),
        Case {
            b_psk: OTHER_PSK,
            expect: Expect::Fails(&["AUTHENTICATION_FAILED", "authentication of the peer failed"]),
            ..up(
                "wrong-psk",
                "the two sides have different PSKs",
                "aes128gcm16-prfsha256-x25519",
                vec![lan("aes128gcm16")],
            )
        },
        Case {
            b_ike: "aes256-sha384-modp3072",
            expect: Expect::Fails(&[
                "NO_PROPOSAL_CHOSEN",
                "no proposal chosen",
                "no acceptable proposal",
                "no common",
            ]),
            ..up(
                "no-common-ike",
                "IKE proposals with nothing in common",
                "aes128gcm16-prfsha256-x25519",
                vec![lan("aes128gcm16")],
            )
        },
        Case {
            expect: Expect::Fails(&["NO_PROPOSAL_CHOSEN", "no proposal chosen"]),
            ..up(
                "no-common-esp",
                "ESP proposals with nothing in common (aes128gcm16 / aes256-sha512)",
                "aes128gcm16-prfsha256-x25519",
                vec![ChildCase {
                    b_esp: Some("aes256-sha512"),
                    ..lan("aes128gcm16")
                }],
            )
        },
        Case {
            expect: Expect::Fails(&["TS_UNACCEPTABLE", "traffic selectors unacceptable"]),
            ..up(
                "ts-mismatch",
                "traffic selectors that do not overlap",
                "aes128gcm16-prfsha256-x25519",
                vec![tunnel(
                    "net",
                    "aes128gcm16",
                    NET0,
                    ("10.2.5.0/24", "10.1.5.0/24"),
                    NET0,
                    &[],
                )],
            )
        },
    ];
    for (i, c) in v.iter_mut().enumerate() {
        c.n = u8::try_from(i + 1).unwrap();
        let (a, b) = (c.a_addr(), c.b_addr());
        let bits = if c.v6 { 128 } else { 32 };
        for ch in &mut c.children {
            if ch.mode == Mode::Transport {
                ch.pings = vec![("gw-a", a.clone(), b.clone())];
                ch.want_ts = (format!("{a}/{bits}"), format!("{b}/{bits}"));
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------
// The swanctl.conf of each side.

/// One side's swanctl.conf with every case. `iked`: gw-a's (iked's) side.
fn swanctl_conf(cases: &[Case], iked: bool) -> String {
    let mut s = String::from("# generated by ike-daemon/tests/interop_lab.rs\nconnections {\n");
    for c in cases {
        let (la, ra, lid, rid, ike) = if iked {
            (c.a_addr(), c.b_addr(), "a", "b", c.a_ike)
        } else {
            (c.b_addr(), c.a_addr(), "b", "a", c.b_ike)
        };
        let name = &c.name;
        writeln!(
            s,
            "    {name} {{
        version = 2
        local_addrs = {la}
        remote_addrs = {ra}
        proposals = {ike}
        mobike = no
        fragmentation = no
        rekey_time = 0
        reauth_time = 0
        local {{
            auth = psk
            id = {lid}.{name}.example
        }}
        remote {{
            auth = psk
            id = {rid}.{name}.example
        }}
        children {{"
        )
        .unwrap();
        for ch in &c.children {
            let (lts, rts) = if iked { ch.a_ts } else { ch.b_ts };
            let mode = match ch.mode {
                Mode::Tunnel => "tunnel",
                Mode::Transport => "transport",
            };
            let key = if ch.ah {
                "ah_proposals"
            } else {
                "esp_proposals"
            };
            writeln!(s, "            {} {{", ch.name).unwrap();
            if !lts.is_empty() {
                writeln!(s, "                local_ts = {lts}").unwrap();
                writeln!(s, "                remote_ts = {rts}").unwrap();
            }
            let proposals = if iked {
                ch.proposals
            } else {
                ch.b_esp.unwrap_or(ch.proposals)
            };
            writeln!(
                s,
                "                {key} = {proposals}
                mode = {mode}
                rekey_time = 0
                start_action = none
            }}"
            )
            .unwrap();
        }
        s.push_str("        }\n    }\n");
    }
    s.push_str("}\nsecrets {\n");
    for c in cases {
        let psk = if iked { c.a_psk } else { c.b_psk };
        writeln!(
            s,
            "    ike-{n} {{
        id-a = a.{n}.example
        id-b = b.{n}.example
        secret = \"{psk}\"
    }}",
            n = c.name
        )
        .unwrap();
    }
    s.push_str("}\n");
    s
}

// ---------------------------------------------------------------------------
// The daemons.

struct Iked {
    log: PathBuf,
    child: Option<Child>,
}

impl Iked {
    fn start(conf: &std::path::Path) -> Iked {
        let log = guest_out().join("iked-gw-a.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", "gw-a", IKED, "--config"])
            .arg(conf)
            .args(["--control", SOCK, "--log-level", "debug"])
            .stderr(file)
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(20), "iked's control socket", || {
            std::os::unix::net::UnixStream::connect(SOCK).is_ok()
        });
        Iked {
            log,
            child: Some(child),
        }
    }

    fn ikectl(&self, args: &[&str]) -> Output {
        Command::new(IKECTL)
            .args(["--control", SOCK])
            .args(args)
            .output()
            .unwrap()
    }

    fn status(&self) -> Result<Vec<IkeSaStatus>, String> {
        let out = self.ikectl(&["status", "--json"]);
        if !out.status.success() {
            return Err(format!("ikectl status: {out:?}"));
        }
        match control::decode_response(&String::from_utf8_lossy(&out.stdout)) {
            Ok(Response::Status { ike_sas, .. }) => Ok(ike_sas),
            other => Err(format!("status answered {other:?}")),
        }
    }

    fn log_len(&self) -> usize {
        std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize)
    }

    fn log_since(&self, from: usize) -> String {
        let t = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(t.get(from..).unwrap_or_default()).into_owned()
    }

    fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        sh(&format!("kill -TERM {}", child.id()));
        child.wait().unwrap().code()
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

/// swanctl against gw-b's charon: what tests/lab/lib.sh's `lab_swanctl gw-b`
/// runs, without a bash that sources lib.sh first (0.15 s in UML, and a
/// case makes three to six of these calls). `args`: the command first,
/// words without quoting.
fn swanctl(args: &str) -> Output {
    let mut words = args.split_whitespace();
    let cmd = words.next().unwrap_or_default();
    let state = std::env::var("LAB_STATE").unwrap_or_else(|_| "/run/lab".to_owned());
    Command::new("swanctl")
        .env(
            "STRONGSWAN_CONF",
            guest_out().join("charon-gw-b/strongswan.conf"),
        )
        .arg(cmd)
        .args(["--uri", &format!("unix://{state}/gw-b/run/vici")])
        .args(words)
        .output()
        .unwrap()
}

fn swanctl_ok(args: &str) -> Result<String, String> {
    let out = swanctl(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("swanctl {args} failed: {}", tail(&text, 8)))
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// swanctl --list-sas, parsed.

#[derive(Debug, Default)]
struct SwanSa {
    name: String,
    spi_i: String,
    spi_r: String,
    algorithms: String,
    children: Vec<SwanChild>,
}

#[derive(Debug, Default)]
struct SwanChild {
    name: String,
    state: String,
    mode: String,
    algorithms: String,
    spi_in: String,
    spi_out: String,
    packets_in: u64,
    packets_out: u64,
    local_ts: String,
    remote_ts: String,
}

/// The text of `swanctl --list-sas` (strongSwan 5.9's format).
fn parse_list_sas(text: &str) -> Vec<SwanSa> {
    let mut sas: Vec<SwanSa> = Vec::new();
    let mut after_remote = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if indent == 0 {
            // name: #1, ESTABLISHED, IKEv2, 0123456789abcdef_i* fedcba9876543210_r
            let Some((name, rest)) = t.split_once(": #") else {
                continue;
            };
            let mut sa = SwanSa {
                name: name.to_owned(),
                ..SwanSa::default()
            };
            for w in rest.split_whitespace() {
                let w = w.trim_end_matches('*');
                if let Some(s) = w.strip_suffix("_i") {
                    sa.spi_i = s.to_owned();
                } else if let Some(s) = w.strip_suffix("_r") {
                    sa.spi_r = s.to_owned();
                }
            }
            sas.push(sa);
            after_remote = false;
            continue;
        }
        let Some(sa) = sas.last_mut() else { continue };
        if indent == 2 {
            if t.starts_with("remote ") {
                after_remote = true;
                continue;
            }
            if after_remote {
                sa.algorithms = t.to_owned();
                after_remote = false;
                continue;
            }
            // net: #1, reqid 1, INSTALLED, TUNNEL, ESP:AES_GCM_16-128
            if let Some((name, rest)) = t.split_once(": #")
                && rest.contains("reqid")
            {
                let parts: Vec<&str> = rest.split(", ").collect();
                sa.children.push(SwanChild {
                    name: name.to_owned(),
                    state: parts.get(2).copied().unwrap_or_default().to_owned(),
                    mode: parts.get(3).copied().unwrap_or_default().to_owned(),
                    algorithms: parts.get(4).copied().unwrap_or_default().to_owned(),
                    ..SwanChild::default()
                });
            }
            continue;
        }
        let Some(ch) = sa.children.last_mut() else {
            continue;
        };
        // in  c1234567,    252 bytes,     3 packets,     1s ago
        let packets = |t: &str| -> u64 {
            let w: Vec<&str> = t.split_whitespace().collect();
            w.iter()
                .position(|x| x.starts_with("packets"))
                .and_then(|i| w.get(i.wrapping_sub(1)))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let spi = |t: &str| -> String {
            t.split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches(',')
                .to_owned()
        };
        if t.starts_with("in ") {
            ch.spi_in = spi(t);
            ch.packets_in = packets(t);
        } else if t.starts_with("out ") {
            ch.spi_out = spi(t);
            ch.packets_out = packets(t);
        } else if let Some(r) = t.strip_prefix("local ") {
            ch.local_ts = r.trim().to_owned();
        } else if let Some(r) = t.strip_prefix("remote ") {
            ch.remote_ts = r.trim().to_owned();
        }
    }
    sas
}

// ---------------------------------------------------------------------------
// Running a case.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dir {
    IkedInitiates,
    CharonInitiates,
}

/// `ip -n NS ARGS...`'s standard output (ip started directly: no shell).
fn ip_n(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "ip -n {ns} {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn xfrm_clean(ns: &str) -> bool {
    ip_n(ns, &["xfrm", "state"]).trim().is_empty()
        && !ip_n(ns, &["xfrm", "policy"]).contains("tmpl")
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(msg()) }
}

fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        if Instant::now() >= end {
            return Err(format!("timed out after {secs}s waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Both kernels without IPsec state, neither daemon with an SA of `name`.
fn all_clean(iked: &Iked, name: &str) -> Result<(), String> {
    wait_for(10, "gw-a's kernel (iked) to be clean", || {
        xfrm_clean("gw-a")
    })?;
    wait_for(10, "gw-b's kernel (charon) to be clean", || {
        xfrm_clean("gw-b")
    })?;
    wait_for(10, "charon to list no SA", || {
        swanctl("--list-sas")
            .stdout
            .iter()
            .all(u8::is_ascii_whitespace)
    })?;
    wait_for(10, "iked to list no SA", || {
        iked.status().is_ok_and(|s| s.is_empty())
    })
    .map_err(|e| format!("{e}: {name} still has {:?}", iked.status()))
}

fn run_case(iked: &Iked, c: &Case, dir: Dir) -> Result<String, String> {
    let log_from = iked.log_len();
    let name = c.name.as_str();
    // Bring it up.
    let up = match dir {
        Dir::IkedInitiates => {
            let out = iked.ikectl(&["up", name, "--timeout", "20"]);
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
            }
        }
        Dir::CharonInitiates => {
            let mut r = Ok(());
            for ch in &c.children {
                if let Err(e) = swanctl_ok(&format!(
                    "--initiate --ike {name} --child {} --timeout 20",
                    ch.name
                )) {
                    r = Err(e);
                    break;
                }
            }
            r
        }
    };
    match c.expect {
        Expect::Up => {
            up.map_err(|e| format!("up failed: {e}"))?;
            let facts = established(iked, c)?;
            // Down from the side that did not initiate.
            match dir {
                Dir::IkedInitiates => {
                    swanctl_ok(&format!("--terminate --ike {name} --timeout 10"))?;
                }
                Dir::CharonInitiates => {
                    let out = iked.ikectl(&["down", name]);
                    check(out.status.success(), || format!("ikectl down: {out:?}"))?;
                }
            }
            all_clean(iked, name)?;
            let by = match dir {
                Dir::IkedInitiates => "charon",
                Dir::CharonInitiates => "iked",
            };
            Ok(format!("ok: {facts}; down by {by}"))
        }
        Expect::Fails(reasons) => {
            // Whatever was negotiated before the failure goes away with
            // the failure, or with a down by iked.
            let why = match (up, dir) {
                (Ok(()), Dir::IkedInitiates) => {
                    return Err("ikectl up succeeded".into());
                }
                (Err(e), Dir::IkedInitiates) => e,
                (_, Dir::CharonInitiates) => {
                    // iked's log says why.
                    let mut line = String::new();
                    let _ = wait_for(5, "iked's log of the failure", || {
                        let log = iked.log_since(log_from);
                        match log.lines().find(|l| {
                            l.contains(" failed: ") && reasons.iter().any(|r| l.contains(r))
                        }) {
                            Some(l) => {
                                line = l.to_owned();
                                true
                            }
                            None => false,
                        }
                    });
                    check(!line.is_empty(), || {
                        format!(
                            "no failure line with {reasons:?} in iked's log:\n{}",
                            tail(&iked.log_since(log_from), 30)
                        )
                    })?;
                    line
                }
            };
            let reason = reasons
                .iter()
                .find(|r| why.contains(*r))
                .ok_or_else(|| format!("iked's error does not say {reasons:?}: {why}"))?;
            check(xfrm_clean("gw-a"), || {
                format!("gw-a kernel: {}", sh("ip -n gw-a xfrm state"))
            })?;
            check(xfrm_clean("gw-b"), || {
                format!("gw-b kernel: {}", sh("ip -n gw-b xfrm state"))
            })?;
            // An IKE SA may stay after a failed child (as strongSwan does).
            let _ = iked.ikectl(&["down", name]);
            let _ = swanctl(&format!("--terminate --ike {name} --timeout 5"));
            all_clean(iked, name)?;
            let side = match dir {
                Dir::IkedInitiates => "ikectl up",
                Dir::CharonInitiates => "iked's log",
            };
            Ok(format!(
                "fails as expected ({side}: {reason}); nothing left"
            ))
        }
    }
}

/// Pings, counters, and iked's status against charon's list; returns the
/// negotiated algorithms for the matrix.
fn established(iked: &Iked, c: &Case) -> Result<String, String> {
    for ch in &c.children {
        for (ns, src, dst) in &ch.pings {
            let family = if dst.contains(':') { "-6" } else { "-4" };
            // Three echo requests 50 ms apart (the 0.2 s this had only
            // cost time: the counters below want all three through, and
            // each reply still has 2 s), ping started without a shell.
            let ok = Command::new("ip")
                .args(["netns", "exec", ns, "ping", family, "-c", "3", "-i", "0.05"])
                .args(["-W", "2", "-I", src, dst])
                .output()
                .is_ok_and(|o| o.status.success());
            check(ok, || {
                format!("ping {src} -> {dst} through {} failed", ch.name)
            })?;
        }
    }
    let sas = iked.status()?;
    let mine: Vec<&IkeSaStatus> = sas
        .iter()
        .filter(|s| s.connection.as_deref() == Some(c.name.as_str()))
        .collect();
    check(mine.len() == 1 && mine[0].state == "ESTABLISHED", || {
        format!("iked: want one ESTABLISHED IKE SA, have {sas:?}")
    })?;
    let ours = mine[0];
    let list = swanctl_ok(&format!("--list-sas --ike {}", c.name))?;
    let theirs = parse_list_sas(&list);
    check(theirs.len() == 1, || format!("charon lists:\n{list}"))?;
    let theirs = &theirs[0];
    let ike_alg = ours.algorithms.clone().unwrap_or_default();
    check(
        (ours.spi_i.as_str(), ours.spi_r.as_str(), ike_alg.as_str())
            == (
                theirs.spi_i.as_str(),
                theirs.spi_r.as_str(),
                theirs.algorithms.as_str(),
            ),
        || format!("IKE SA differs: iked {ours:?}\ncharon:\n{list}"),
    )?;
    let mut child_algs = Vec::new();
    for ch in &c.children {
        let o = ours
            .children
            .iter()
            .find(|x| x.name == ch.name && x.state == "INSTALLED")
            .ok_or_else(|| format!("iked has no INSTALLED child {}: {ours:?}", ch.name))?;
        let t = theirs
            .children
            .iter()
            .find(|x| x.name == ch.name && x.state == "INSTALLED")
            .ok_or_else(|| format!("charon has no INSTALLED child {}:\n{list}", ch.name))?;
        let alg = format!(
            "{}:{}",
            o.protocol,
            o.algorithms.clone().unwrap_or_default()
        );
        let (lts, rts) = (o.local_ts.join(" "), o.remote_ts.join(" "));
        check(
            (
                o.spi_in.as_str(),
                o.spi_out.as_str(),
                alg.as_str(),
                o.mode.as_str(),
                lts.as_str(),
                rts.as_str(),
            ) == (
                t.spi_out.as_str(),
                t.spi_in.as_str(),
                t.algorithms.as_str(),
                t.mode.as_str(),
                t.remote_ts.as_str(),
                t.local_ts.as_str(),
            ),
            || format!("child {} differs: iked {o:?}\ncharon:\n{list}", ch.name),
        )?;
        check((lts.clone(), rts.clone()) == ch.want_ts, || {
            format!(
                "child {}: selectors {lts} === {rts}, want {:?}",
                ch.name, ch.want_ts
            )
        })?;
        let n = 3 * ch.pings.len() as u64;
        let (pi, po) = (o.packets_in.unwrap_or(0), o.packets_out.unwrap_or(0));
        check(
            pi >= n && po >= n && t.packets_in >= n && t.packets_out >= n,
            || {
                format!(
                    "child {}: packets iked in/out {pi}/{po}, charon {}/{}, want >= {n}",
                    ch.name, t.packets_in, t.packets_out
                )
            },
        )?;
        child_algs.push(format!("{} {}", ch.name, alg));
    }
    Ok(format!("{ike_alg}; {}", child_algs.join(", ")))
}

// ---------------------------------------------------------------------------
// The matrix.

fn matrix(cases: &[Case], results: &[(String, String)]) -> String {
    let mut s = String::from(
        "# Interoperability with strongSwan\n\n\
         Written by `ike-daemon/tests/interop_lab.rs` from its last run \
         (`IKED_WRITE_INTEROP_DOC=1 cargo test -p ike-daemon --test interop_lab`); \
         the test fails when this file differs from what it finds, so it cannot go stale. \
         Do not edit by hand.\n\n\
         Peer: strongSwan 5.9.8 as packaged by Debian (charon with the openssl \
         plugin, loaded with `swanctl --load-all`), in the UML kernel lab \
         (tests/lab). iked runs in namespace gw-a, charon in gw-b; both read a \
         swanctl.conf of the same form (iked directly, `iked --config a.conf`), \
         one connection per case, PSK authentication, `mobike = no`, \
         `fragmentation = no`, `rekey_time = 0`.\n\n\
         Each case runs in both directions. A case that comes up is checked by \
         pinging through each child, the ESP/AH packet counters of both kernels, \
         and `ikectl status --json` against `swanctl --list-sas` (IKE SPIs and \
         algorithms, each child's SPIs, algorithms, mode and selectors); then the \
         side that did not initiate takes it down and neither kernel nor daemon \
         has anything left. A case that must fail has to fail with the listed \
         reason on iked's side and leave nothing in either kernel. Algorithms are \
         printed as both daemons print them.\n\n\
         MOBIKE against charon is tested by ike-daemon/tests/mobike_lab.rs. \
         EAP-MSCHAPv2 against charon, iked as the gateway and as the road \
         warrior, is tested by ike-daemon/tests/eap_lab.rs (alice up with pings \
         through ESP, a wrong password refused with nothing installed); remote \
         access with pools, EAP-TLS and EAP-RADIUS against strongSwan road \
         warriors by ike-daemon/tests/ra_lab.rs (docs/remote-access.md). Certificates \
         and IKE fragmentation against charon are tested by \
         ike-daemon/tests/cert_lab.rs (docs/interop-certificates.md). \
         Rekeying and reauthentication against charon are \
         tested by ike-daemon/tests/rekey_lab.rs; NAT traversal against charon \
         (both roles, through a NAT, its mapping changing) by \
         ike-daemon/tests/natt_lab.rs; a trap tunnel to charon and DPD clearing a \
         killed charon by ike-daemon/tests/actions_lab.rs; the other ESP \
         algorithms (AES-CTR/CCM/GMAC, AES-GCM-8/12, 3DES, NULL, MD5, XCBC, CMAC, \
         ...) and the IKE SA's AES-CTR, 3DES, AES-XCBC, AES-CMAC and HMAC-MD5 \
         through the kernel and against charon by ike-daemon/tests/alg_lab.rs \
         (docs/interop-algorithms.md).\n\n",
    );
    let good = results
        .iter()
        .filter(|(_, v)| !v.starts_with("FAILED"))
        .count();
    writeln!(
        s,
        "Result: {good} of {} runs as expected ({} cases, both directions).\n\n\
         | case | configuration | iked initiates | charon initiates |\n\
         |---|---|---|---|",
        results.len(),
        cases.len()
    )
    .unwrap();
    for c in cases {
        let cell = |d: &str| {
            results
                .iter()
                .find(|(k, _)| *k == format!("{}/{d}", c.name))
                .map_or("not run".to_owned(), |(_, v)| v.replace('|', "\\|"))
        };
        writeln!(
            s,
            "| {} | {} | {} | {} |",
            c.name,
            c.what,
            cell("iked"),
            cell("charon")
        )
        .unwrap();
    }
    s
}

fn results_file() -> PathBuf {
    repo_root().join("target/interop-lab-matrix.md")
}

#[test]
fn interop_with_strongswan() {
    let cases = cases();
    if !is_guest() {
        sh(&format!(
            "bash -c \". '{}'; lab_ensure_packages strongswan-charon strongswan-swanctl \
             libstrongswan-standard-plugins iproute2 iputils-ping\"",
            repo_root().join("tests/lab/packages.sh").display()
        ));
        let _ = std::fs::remove_file(results_file());
        let started = Instant::now();
        let run = std::panic::catch_unwind(|| {
            in_uml("interop_with_strongswan", || guest(&cases));
        });
        eprintln!("interop lab: {:.1} s", started.elapsed().as_secs_f64());
        let found = std::fs::read_to_string(results_file()).unwrap_or_default();
        let doc = repo_root().join(DOC);
        // The conformance section at the end is scripts/conformance.sh's.
        let before = std::fs::read_to_string(&doc).unwrap_or_default();
        let (_, conformance) = split_conformance(&before);
        if std::env::var_os("IKED_WRITE_INTEROP_DOC").is_some_and(|v| v == "1") && !found.is_empty()
        {
            std::fs::write(&doc, format!("{found}{conformance}")).unwrap();
        }
        if let Err(e) = run {
            std::panic::resume_unwind(e);
        }
        let committed = std::fs::read_to_string(&doc).unwrap_or_default();
        let (committed, _) = split_conformance(&committed);
        assert!(
            committed == found,
            "{DOC} differs from this run's results; regenerate it with \
             IKED_WRITE_INTEROP_DOC=1 (this run found:)\n{found}"
        );
        return;
    }
    in_uml("interop_with_strongswan", || guest(&cases));
}

/// The lab's part of the document and the conformance section that
/// follows it after a blank line (empty if there is none).
fn split_conformance(doc: &str) -> (&str, &str) {
    match doc.find("\n\n<!-- conformance:") {
        Some(i) => doc.split_at(i + 1),
        None => (doc, ""),
    }
}

fn guest(cases: &[Case]) {
    let mut setup = String::from(
        "lab_make_gateways
         for i in 1 2; do
             ip -n host-a addr add 10.1.$i.2/24 dev eth0
             ip -n host-b addr add 10.2.$i.2/24 dev eth0
             ip -n gw-a addr add 10.1.$i.1/24 dev lan
             ip -n gw-b addr add 10.2.$i.1/24 dev lan
         done
         ip -n gw-a route add 10.2.0.0/16 via $GW_B_WAN
         ip -n gw-b route add 10.1.0.0/16 via $GW_A_WAN
         ip -n gw-a addr add 2001:db8::1/64 dev wan nodad
         ip -n gw-b addr add 2001:db8::2/64 dev wan nodad
",
    );
    for c in cases {
        let (bits, nodad) = if c.v6 { (64, " nodad") } else { (24, "") };
        writeln!(
            setup,
            "ip -n gw-a addr add {}/{bits} dev wan{nodad}\nip -n gw-b addr add {}/{bits} dev wan{nodad}",
            c.a_addr(),
            c.b_addr()
        )
        .unwrap();
    }
    setup.push_str("lab_wait_for 10 'IPv6 on wan' lab_ns gw-a ping -6 -c1 -W1 2001:db8::2\n");
    lab_sh(&setup);

    let dir = guest_out();
    let a_conf = dir.join("gw-a-swanctl.conf");
    let b_conf = dir.join("gw-b-swanctl.conf");
    std::fs::write(&a_conf, swanctl_conf(cases, true)).unwrap();
    std::fs::write(&b_conf, swanctl_conf(cases, false)).unwrap();
    sh(&format!(
        "chmod 600 '{}' '{}'",
        a_conf.display(),
        b_conf.display()
    ));
    // The same form of file works for both: iked accepts charon's side too.
    let out = Command::new(IKED)
        .arg("--check-config")
        .arg(&b_conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "iked --check-config on charon's file: {out:?}"
    );

    let t0 = Instant::now();
    lab_sh(&format!(
        "lab_charon_start gw-b gw-b '{}' 'default=1 ike=2 cfg=2 knl=2 chd=2' 'install_routes = no'",
        b_conf.display()
    ));
    let mut iked = Iked::start(&a_conf);
    eprintln!("daemons up in {:.1} s", t0.elapsed().as_secs_f64());

    let mut results = Vec::new();
    let mut failed = Vec::new();
    for c in cases {
        for (dir, key) in [
            (Dir::IkedInitiates, "iked"),
            (Dir::CharonInitiates, "charon"),
        ] {
            let t = Instant::now();
            let r = run_case(&iked, c, dir);
            eprintln!(
                "case {} / {key} initiates: {:.1} s: {r:?}",
                c.name,
                t.elapsed().as_secs_f64()
            );
            let cell = match r {
                Ok(s) => s,
                Err(e) => {
                    failed.push(format!("{} ({key} initiates): {e}", c.name));
                    // Start the next case from a clean slate.
                    let _ = iked.ikectl(&["down", &c.name]);
                    let _ = swanctl(&format!("--terminate --ike {} --timeout 5", c.name));
                    sh(
                        "ip -n gw-a xfrm state flush; ip -n gw-a xfrm policy flush; \
                        ip -n gw-b xfrm state flush; ip -n gw-b xfrm policy flush",
                    );
                    format!("FAILED: {}", e.lines().next().unwrap_or_default())
                }
            };
            results.push((format!("{}/{key}", c.name), cell));
        }
    }
    // ikectl reload re-reads the swanctl.conf: every connection unchanged.
    let out = iked.ikectl(&["reload"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !(out.status.success() && text.contains(&format!("unchanged: {}", cases[0].name))) {
        failed.push(format!("ikectl reload of the swanctl.conf: {out:?}"));
    }
    std::fs::write(results_file(), matrix(cases, &results)).unwrap();
    eprintln!(
        "{} runs of {} cases in {:.1} s",
        results.len(),
        cases.len(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(iked.stop(), Some(0), "iked's exit status");
    lab_sh("lab_charon_stop gw-b");
    // And charon loads iked's file: each file works for both daemons.
    let conns = lab_sh(&format!(
        "lab_charon_start gw-a gw-a '{}' 'default=1'
         lab_swanctl gw-a --list-conns | grep -c '^[^ ].*: IKEv2' || true
         lab_charon_stop gw-a",
        a_conf.display()
    ));
    if conns.trim() != cases.len().to_string() {
        failed.push(format!(
            "charon loaded {} connections of iked's file, not {}",
            conns.trim(),
            cases.len()
        ));
    }
    assert!(
        failed.is_empty(),
        "{} of {} runs failed:\n{}\n--- iked log (tail) ---\n{}",
        failed.len(),
        results.len(),
        failed.join("\n"),
        tail(&std::fs::read_to_string(&iked.log).unwrap_or_default(), 60)
    );
}

#[test]
fn list_sas_is_parsed() {
    let text = "\
gcm128-x25519: #1, ESTABLISHED, IKEv2, 0123456789abcdef_i* fedcba9876543210_r
  local  'b.gcm128-x25519.example' @ 192.0.2.101[500]
  remote 'a.gcm128-x25519.example' @ 192.0.2.11[500]
  AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519
  established 1s ago
  net: #1, reqid 1, INSTALLED, TUNNEL, ESP:AES_GCM_16-128
    installed 1s ago
    in  c1234567,    252 bytes,     3 packets,     0s ago
    out c7654321,    252 bytes,     4 packets,     0s ago
    local  10.2.0.0/24 10.2.1.0/24
    remote 10.1.0.0/24
";
    let sas = parse_list_sas(text);
    assert_eq!(sas.len(), 1);
    let sa = &sas[0];
    assert_eq!(
        (
            sa.name.as_str(),
            sa.spi_i.as_str(),
            sa.spi_r.as_str(),
            sa.algorithms.as_str()
        ),
        (
            "gcm128-x25519",
            "0123456789abcdef",
            "fedcba9876543210",
            "AES_GCM_16-128/PRF_HMAC_SHA2_256/CURVE_25519"
        )
    );
    let c = &sa.children[0];
    assert_eq!(
        (
            c.name.as_str(),
            c.state.as_str(),
            c.mode.as_str(),
            c.algorithms.as_str()
        ),
        ("net", "INSTALLED", "TUNNEL", "ESP:AES_GCM_16-128")
    );
    assert_eq!(
        (
            c.spi_in.as_str(),
            c.spi_out.as_str(),
            c.packets_in,
            c.packets_out
        ),
        ("c1234567", "c7654321", 3, 4)
    );
    assert_eq!(
        (c.local_ts.as_str(), c.remote_ts.as_str()),
        ("10.2.0.0/24 10.2.1.0/24", "10.1.0.0/24")
    );
}

#[test]
fn each_case_is_valid_iked_configuration() {
    if is_guest() {
        return;
    }
    let cases = cases();
    for iked in [true, false] {
        let text = swanctl_conf(&cases, iked);
        let c = swanctl_compat::parse_str(&text, "interop.conf")
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.connections().len(), cases.len());
    }
    // ikectl convert prints YAML that iked reads as the same connections.
    let dir = std::env::temp_dir().join(format!("interop-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("swanctl.conf");
    std::fs::write(&conf, swanctl_conf(&cases, true)).unwrap();
    let out = Command::new(IKECTL)
        .arg("convert")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    let from_yaml = ike::config::Config::from_yaml_str(&yaml, "converted.yaml")
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let from_conf = swanctl_compat::load(&conf).unwrap();
    let strip = |c: &ike::config::Config| {
        c.connections()
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.line = 0;
                c.children.iter_mut().for_each(|ch| ch.line = 0);
                c
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&from_yaml), strip(&from_conf));
    // A bad file: every problem with file, line and key, exit status 1.
    std::fs::write(&conf, "connections {\n c {\n  dpd_delay = soon\n }\n}\n").unwrap();
    let out = Command::new(IKECTL)
        .arg("convert")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3: connections.c.dpd_delay:", conf.display())),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
