//! `cargo run -p swanctl-compat --example conformance -- DIR [--doc FILE] [-v]`:
//! loads every `swanctl.conf` under DIR (an unpacked copy of strongSwan's
//! test scenarios, `scripts/conformance.sh`) as `iked --check-config`
//! would, skipping IKEv1 ones, and says how many load and, for the rest,
//! which missing feature blocks each. With `--doc FILE` the result is
//! written into FILE (docs/interop.md) between its conformance markers;
//! `-v` prints one line per configuration that does not load.
//!
//! Each configuration gets one of three outcomes:
//! - it loads, with its credentials checked as the daemon checks them;
//! - its configuration loads, but it names or needs credential files
//!   (certificates, keys) the corpus does not have: counted apart, as
//!   "loads, credentials not checked", since whether the files would load
//!   is not measured;
//! - a missing feature blocks it: each problem message is mapped to a
//!   feature (`FEATURES`), with what is planned for it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What is planned for a feature iked does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Plan {
    /// Issue 16 (this one), not done yet: what is missing.
    ThisIssue(&'static str),
    /// The remote-access issue (EAP, virtual IPs).
    RemoteAccess,
    /// A later issue, named.
    Later(&'static str),
    /// Not planned yet, with the reason.
    NotPlanned(&'static str),
    /// Nothing decided: a feature this table does not know yet.
    Open,
}

impl Plan {
    fn text(self) -> String {
        match self {
            Plan::ThisIssue(what) => format!("issue 16, not done yet ({what})"),
            Plan::RemoteAccess => "the remote-access issue (18)".to_owned(),
            Plan::Later(what) => format!("planned: {what}"),
            Plan::NotPlanned(_) => "not planned yet (below)".to_owned(),
            Plan::Open => "open".to_owned(),
        }
    }
}

/// A missing feature: its name, the message fragments that show it (any
/// of them), and its plan.
struct Feature {
    name: &'static str,
    shown_by: &'static [&'static str],
    plan: Plan,
}

const MEDIATION: &str = "strongSwan's own IKEv2 mediation extension \
    (draft-brunner-ikev2-mediation, expired, never an RFC): no other \
    implementation speaks it, and NAT traversal through a mediation server \
    is a protocol of its own";
const IPTFS: &str = "IP-TFS (RFC 9347) needs the kernel's XFRM IP-TFS mode \
    (Linux 6.14); the lab kernel (6.1) has none, so it could not be tested";
const ALGORITHMS: &str = "brainpool groups: RustCrypto's bp256/bp384 do their \
    arithmetic only behind a feature named wip-arithmetic-do-not-use and no \
    other well-kept crate has them, Curve448 has no stable crate \
    (docs/decisions.md); Camellia, Blowfish, Twofish, Serpent, CAST, single \
    DES, ECP-192/224 and the RFC 5114 MODP groups are legacy or deprecated \
    (RFC 8247) and no issue asks for them";
const PER_CPU: &str = "per-CPU SAs need XFRMA_SA_PCPU (Linux 6.13); neither the \
    development machine's kernel nor the lab's has it";
const LABELS: &str = "SELinux labels (XFRM security contexts) need a kernel \
    and a policy with SELinux (or another LSM) enforcing; neither machine here \
    runs one, so nothing could show that a labeled SA does what it should";
const GROUPS: &str = "group membership is proven by X.509 attribute \
    certificates (RFC 5755), which iked does not read, or by a RADIUS server \
    (the remote-access issue)";
const OCSP: &str = "revocation is checked with CRLs (issue 15); OCSP \
    responders (`ocsp_uris`) and OCSP status in IKE (the connection key `ocsp`) \
    were left for later by issue 15 and no issue has them yet";
const HASH_URL: &str = "peers would fetch our certificate over HTTP (RFC 7296 \
    3.6); iked sends certificates in CERT payloads, fragmented when needed \
    (RFC 7383), which every peer here supports; no issue has it";
const CERT_CONSTRAINTS: &str = "constraints on the peer's certificate beyond \
    its chain and revocation (policy OIDs, a required CA by identity); no \
    issue has them yet";
const PKCS12: &str = "keys and certificates are read as PEM or DER files; \
    PKCS#12 containers (with their legacy ciphers) need a parser no issue has \
    scheduled";
const ANY_CERT: &str = "with `local { }` empty, charon signs with any \
    certificate whose private key it holds; iked needs `certs` or an `id` to \
    know which (one configuration in the corpus)";
const ICMP: &str = "strongSwan 6's `icmp = yes` (forward ICMP errors from \
    addresses outside the selectors: XFRM_POLICY_ICMP and XFRM_STATE_ICMP) \
    came up after this issue's lanes were set; small, but no issue has it yet";
const BEET: &str = "BEET mode is for HIP-style host identities; Linux \
    supports it but no site-to-site or remote-access setup here needs it";

/// Ordered: the first feature whose fragment a message contains wins.
const FEATURES: &[Feature] = &[
    Feature {
        name: "EAP (and XAuth) authentication",
        shown_by: &[
            "auth \"eap",
            "\"eap_id\"",
            "eap_id needs auth",
            "auth eap (any method)",
            "\"aaa_id\"",
            "type \"eap\"",
            "type \"xauth\"",
            "auth \"xauth",
            "\"xauth_id\"",
        ],
        plan: Plan::RemoteAccess,
    },
    Feature {
        name: "virtual IPs and address pools",
        shown_by: &["\"vips\"", "\"pools\"", "section \"pools\""],
        plan: Plan::RemoteAccess,
    },
    Feature {
        name: "several authentication rounds (RFC 4739)",
        shown_by: &["authentication round (after"],
        plan: Plan::RemoteAccess,
    },
    Feature {
        name: "ML-KEM (post-quantum key exchange)",
        shown_by: &["mlkem", "ke1_", "ke2_", "ke3_"],
        plan: Plan::Later("with PPK, a later issue"),
    },
    Feature {
        name: "PPK (RFC 8784 post-quantum preshared keys)",
        shown_by: &["\"ppk_id\"", "\"ppk_required\"", "type \"ppk\""],
        plan: Plan::Later("with ML-KEM, a later issue"),
    },
    Feature {
        name: "updown and hostaccess",
        shown_by: &["\"updown\"", "\"hostaccess\""],
        plan: Plan::ThisIssue("updown, hostaccess"),
    },
    Feature {
        name: "algorithms (brainpool, Curve448, legacy ciphers and groups)",
        shown_by: &[
            "uses algorithms iked does not implement",
            "unknown algorithm",
        ],
        plan: Plan::NotPlanned(ALGORITHMS),
    },
    Feature {
        name: "marks, interfaces, priorities, reqids, policies (installing them)",
        shown_by: &[
            "read but not installed yet",
            "\"mark_",
            "\"set_mark_",
            "\"if_id_",
            "\"priority\"",
            "\"reqid\"",
            "\"policies",
            "\"interface\"",
        ],
        plan: Plan::ThisIssue("installing policy keys"),
    },
    Feature {
        name: "pass and drop shunts",
        shown_by: &[
            "mode \"pass\"",
            "mode \"drop\"",
            "needs the local authentication round",
            "needs the remote authentication round",
        ],
        plan: Plan::ThisIssue("shunts"),
    },
    Feature {
        name: "IPComp",
        shown_by: &["ipcomp"],
        plan: Plan::ThisIssue("IPComp"),
    },
    Feature {
        name: "keyingtries, unique, inactivity, childless, lifetimes",
        shown_by: &[
            "\"keyingtries\"",
            "\"unique\"",
            "\"inactivity\"",
            "\"childless\"",
            "rand_time must be smaller",
        ],
        plan: Plan::ThisIssue("rand_time not below rekey_time is refused"),
    },
    Feature {
        name: "OCSP (RFC 6960) and OCSP in IKE (RFC 4806)",
        shown_by: &["\"ocsp_uris\"", "\"ocsp\""],
        plan: Plan::NotPlanned(OCSP),
    },
    Feature {
        name: "hash-and-URL certificates (cert_uri_base)",
        shown_by: &["\"cert_uri_base\""],
        plan: Plan::NotPlanned(HASH_URL),
    },
    Feature {
        name: "certificate policies and CA identities (cert_policy, ca_id)",
        shown_by: &["\"cert_policy\"", "\"ca_id\""],
        plan: Plan::NotPlanned(CERT_CONSTRAINTS),
    },
    Feature {
        name: "PKCS#12 containers",
        shown_by: &["\"pkcs12\""],
        plan: Plan::NotPlanned(PKCS12),
    },
    Feature {
        name: "a local round with neither certs nor id",
        shown_by: &["without auth (swanctl's default pubkey), our certificate"],
        plan: Plan::NotPlanned(ANY_CERT),
    },
    Feature {
        name: "mediation",
        shown_by: &["\"mediation\"", "\"mediated_by\"", "\"mediation_peer\""],
        plan: Plan::NotPlanned(MEDIATION),
    },
    Feature {
        name: "IP-TFS",
        shown_by: &["iptfs"],
        plan: Plan::NotPlanned(IPTFS),
    },
    Feature {
        name: "per-CPU SAs",
        shown_by: &["per_cpu_sas", "per-CPU SAs"],
        plan: Plan::NotPlanned(PER_CPU),
    },
    Feature {
        name: "SELinux labels",
        shown_by: &["\"label\"", "\"label_mode\""],
        plan: Plan::NotPlanned(LABELS),
    },
    Feature {
        name: "forwarding ICMP errors outside the selectors (child icmp = yes)",
        shown_by: &["\"icmp\""],
        plan: Plan::NotPlanned(ICMP),
    },
    Feature {
        name: "authorization groups",
        shown_by: &["\"groups\""],
        plan: Plan::NotPlanned(GROUPS),
    },
    Feature {
        name: "BEET mode",
        shown_by: &["mode \"beet\""],
        plan: Plan::NotPlanned(BEET),
    },
];

fn find(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            find(&p, out);
        } else if p.file_name().is_some_and(|n| n == "swanctl.conf") {
            out.push(p);
        }
    }
}

/// IKEv1 scenarios: under an `ikev1` test suite or with `version = 1`.
fn ikev1(path: &Path) -> bool {
    let suite_v1 = path
        .components()
        .any(|c| c.as_os_str().to_string_lossy().contains("ikev1"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    suite_v1
        || text
            .lines()
            .any(|l| l.split('#').next().unwrap_or("").replace(' ', "") == "version=1")
}

/// The feature a problem message shows: a listed one, else the message
/// itself (algorithm lists merged, so one missing algorithm set counts
/// once).
fn feature(msg: &str) -> (String, Plan) {
    // An unknown key's message lists the known ones: only its name counts.
    let msg = msg.split(" (expected one of:").next().unwrap_or(msg);
    if let Some(f) = FEATURES
        .iter()
        .find(|f| f.shown_by.iter().any(|s| msg.contains(s)))
    {
        return (f.name.to_owned(), f.plan);
    }
    if msg.contains("uses algorithms iked does not implement") {
        return (
            "a proposal uses algorithms iked does not implement".to_owned(),
            Plan::Open,
        );
    }
    (msg.to_owned(), Plan::Open)
}

/// How one configuration fares.
enum Outcome {
    Loads,
    /// The configuration loads; the credential check fails (the corpus
    /// has no credential files).
    NeedsCredentials,
    /// Blocked by these features (names).
    Blocked(BTreeSet<String>),
}

fn check(path: &Path, plans: &mut BTreeMap<String, Plan>) -> (Outcome, Vec<String>) {
    let config = match swanctl_compat::load(path) {
        Ok(c) => c,
        Err(e) => {
            let mut features = BTreeSet::new();
            let mut messages: Vec<String> = e.issues().iter().map(|i| i.message.clone()).collect();
            messages.sort();
            messages.dedup();
            for m in &messages {
                let (name, plan) = feature(m);
                plans.insert(name.clone(), plan);
                features.insert(name);
            }
            // A mediated connection initiates through the mediation server
            // to a peer whose address it learns there: remote_addrs %any
            // with start_action start is part of mediation, not a problem
            // of its own.
            if features.contains("mediation") {
                features.retain(|f| !f.starts_with("start_action start, but remote_addrs (%any)"));
            }
            return (Outcome::Blocked(features), messages);
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let creds = swanctl_compat::creds::load_credentials(&config, dir)
        .map_err(|e| e.to_string())
        .and_then(|creds| {
            ike::from_config::check_credentials(&config, &creds)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    match creds {
        Ok(()) => (Outcome::Loads, Vec::new()),
        // Files the corpus lacks: named ones, or a certificate for a key.
        Err(e) if e.lines().all(missing_credential) => (Outcome::NeedsCredentials, vec![e]),
        Err(e) => {
            let mut features = BTreeSet::new();
            let messages: Vec<String> = e
                .lines()
                .filter(|l| !missing_credential(l))
                .map(str::to_owned)
                .collect();
            for m in &messages {
                let (name, plan) = feature(m);
                plans.insert(name.clone(), plan);
                features.insert(name);
            }
            (Outcome::Blocked(features), messages)
        }
    }
}

/// A credential problem that is only a file the corpus does not have.
fn missing_credential(line: &str) -> bool {
    line.contains("cannot read: No such file or directory")
        || (line.contains("no certificate in") && line.contains("has its private key loaded"))
}

struct Results {
    total: usize,
    ikev1: usize,
    loads: usize,
    needs_credentials: usize,
    blocked: usize,
    /// Feature → (configurations it blocks, of them blocked by it alone).
    by_feature: BTreeMap<String, (usize, usize)>,
    plans: BTreeMap<String, Plan>,
}

fn run(dir: &Path, verbose: bool) -> Results {
    let mut files = Vec::new();
    find(dir, &mut files);
    let mut r = Results {
        total: 0,
        ikev1: 0,
        loads: 0,
        needs_credentials: 0,
        blocked: 0,
        by_feature: BTreeMap::new(),
        plans: BTreeMap::new(),
    };
    for f in &files {
        if ikev1(f) {
            r.ikev1 += 1;
            continue;
        }
        r.total += 1;
        let (outcome, messages) = check(f, &mut r.plans);
        let shown = f.strip_prefix(dir).unwrap_or(f).display().to_string();
        match outcome {
            Outcome::Loads => r.loads += 1,
            Outcome::NeedsCredentials => {
                r.needs_credentials += 1;
                if verbose {
                    let first = messages
                        .first()
                        .and_then(|m| m.lines().next())
                        .unwrap_or("");
                    println!("{shown}: credentials: {first}");
                }
            }
            Outcome::Blocked(features) => {
                r.blocked += 1;
                let alone = features.len() == 1;
                for name in &features {
                    let e = r.by_feature.entry(name.clone()).or_default();
                    e.0 += 1;
                    if alone {
                        e.1 += 1;
                    }
                }
                if verbose {
                    println!("{shown}: {}", messages.join(" | "));
                }
            }
        }
    }
    r
}

const BEGIN: &str = "<!-- conformance: written by scripts/conformance.sh, do not edit by hand -->";
const END: &str = "<!-- end of conformance -->";

fn percent(n: usize, of: usize) -> String {
    if of == 0 {
        return "0%".to_owned();
    }
    format!("{:.0}%", n as f64 * 100.0 / of as f64)
}

fn table(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(
        s,
        "## Conformance: strongSwan's test-scenario configurations\n\n\
         `scripts/conformance.sh` loads every `swanctl.conf` of strongSwan's own test \
         scenarios (the corpus in `../shared/corpus/`: strongSwan's `testing/tests`, \
         read as measurement data, not part of this repository) as \
         `iked --check-config` would: the configuration, then its credentials. \
         IKEv1 scenarios ({} files) are left out: iked is IKEv2 only (out of scope). \
         The corpus has no certificates or keys, so a configuration that reads but \
         needs credential files is counted apart: iked reads its configuration, but \
         whether it would load its files is not measured here.\n",
        r.ikev1
    );
    let _ = writeln!(
        s,
        "| IKEv2 configurations | count | share |\n|---|---:|---:|"
    );
    let _ = writeln!(
        s,
        "| load, credentials included (PSK or no files needed) | {} | {} |",
        r.loads,
        percent(r.loads, r.total)
    );
    let _ = writeln!(
        s,
        "| configuration loads; needs credential files the corpus lacks (not checked) | {} | {} |",
        r.needs_credentials,
        percent(r.needs_credentials, r.total)
    );
    let _ = writeln!(
        s,
        "| blocked by a missing feature | {} | {} |",
        r.blocked,
        percent(r.blocked, r.total)
    );
    let _ = writeln!(s, "| **total** | **{}** | |\n", r.total);
    let _ = writeln!(
        s,
        "What blocks the {} blocked ones (a configuration can miss several features: \
         \"blocks\" counts each one it misses, \"alone\" those it misses nothing else for):\n",
        r.blocked
    );
    let _ = writeln!(
        s,
        "| missing feature | blocks | alone | plan |\n|---|---:|---:|---|"
    );
    let mut rows: Vec<(&String, &(usize, usize))> = r.by_feature.iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(b.0)));
    for (name, (n, alone)) in rows {
        let plan = r.plans.get(name).copied().unwrap_or(Plan::Open);
        let _ = writeln!(
            s,
            "| {} | {n} | {alone} | {} |",
            name.replace('|', "\\|"),
            plan.text()
        );
    }
    let _ = writeln!(
        s,
        "\n### Not planned yet\n\nA configuration that uses one of these fails to load, \
         with the file, line and key (\"not planned yet\" with the reason, or \"not \
         supported yet\"):\n"
    );
    for f in FEATURES {
        if let Plan::NotPlanned(why) = f.plan {
            let _ = writeln!(s, "- **{}**: {why}.", f.name);
        }
    }
    let _ = writeln!(
        s,
        "\nPlanned elsewhere: EAP and virtual IPs belong to the remote-access issue; \
         ML-KEM and PPK to a later issue; IKEv1 is out of scope."
    );
    let _ = writeln!(s, "{END}");
    s
}

/// `doc` with its conformance section replaced by `section` (appended
/// after a blank line if it has none).
fn splice(doc: &str, section: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let after = e + END.len();
            let rest = doc.get(after..).unwrap_or("").trim_start_matches('\n');
            let mut out = doc.get(..b).unwrap_or("").to_owned();
            out.push_str(section);
            out.push_str(rest);
            out
        }
        _ => {
            let mut out = doc.trim_end_matches('\n').to_owned();
            out.push_str("\n\n");
            out.push_str(section);
            out
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut doc = None;
    let mut verbose = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-v" => verbose = true,
            "--doc" => doc = args.next(),
            _ if dir.is_none() => dir = Some(a),
            _ => {
                eprintln!("usage: conformance DIR [--doc FILE] [-v]");
                return ExitCode::from(2);
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: conformance DIR [--doc FILE] [-v]");
        return ExitCode::from(2);
    };
    let r = run(Path::new(&dir), verbose);
    let section = table(&r);
    print!("{section}");
    if let Some(doc) = doc {
        let old = std::fs::read_to_string(&doc).unwrap_or_default();
        if let Err(e) = std::fs::write(&doc, splice(&old, &section)) {
            eprintln!("{doc}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
