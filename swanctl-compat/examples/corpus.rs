//! `cargo run -p swanctl-compat --example corpus -- DIR`: loads every
//! `swanctl.conf` under DIR (an unpacked copy of strongSwan's test
//! scenarios, `scripts/corpus.sh`), skipping IKEv1 ones, and prints how
//! many load and what blocks the rest: for each problem message (the
//! algorithm lists of proposals merged into one), how many configurations
//! it blocks. Only the configuration is read: the corpus has no
//! credential files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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

/// The message, with the algorithm lists of proposals left out, so that
/// the same missing feature counts once.
fn reason(msg: &str) -> String {
    if msg.contains("uses algorithms iked does not implement") {
        return "a proposal uses algorithms iked does not implement".to_owned();
    }
    msg.to_owned()
}

/// Whether a reason is about certificates (keys this work reads, or
/// certificate features still missing).
fn certificate_reason(r: &str) -> bool {
    [
        "auth \"pubkey",
        "auth \"rsa",
        "auth \"ecdsa",
        "auth \"ed25519",
        "\"certs\"",
        "\"cacerts\"",
        "\"pubkeys\"",
        "\"revocation\"",
        "\"send_cert",
        "\"authorities\"",
        "\"ocsp_uris\"",
        "\"cert_uri_base\"",
        "\"cert_policy\"",
        "\"ca_id\"",
        "type \"private\"",
        "type \"rsa\"",
        "type \"ecdsa\"",
        "type \"pkcs8\"",
        "pubkey",
        "our certificate",
    ]
    .iter()
    .any(|k| r.contains(k))
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: corpus DIR");
        return ExitCode::from(2);
    };
    let verbose = std::env::args().nth(2).as_deref() == Some("-v");
    let mut files = Vec::new();
    find(Path::new(&dir), &mut files);
    let (mut total, mut ok) = (0usize, 0usize);
    let mut blocks: BTreeMap<String, usize> = BTreeMap::new();
    let (mut certs_only, mut with_certs, mut updown_only) = (0usize, 0usize, 0usize);
    for f in files.iter().filter(|f| !ikev1(f)) {
        total += 1;
        match swanctl_compat::load(f) {
            Ok(_) => ok += 1,
            Err(e) => {
                let mut reasons: Vec<String> =
                    e.issues().iter().map(|i| reason(&i.message)).collect();
                reasons.sort();
                reasons.dedup();
                if reasons.iter().all(|r| certificate_reason(r)) {
                    certs_only += 1;
                }
                if reasons.iter().any(|r| certificate_reason(r)) {
                    with_certs += 1;
                }
                if reasons.iter().all(|r| r.contains("\"updown\"")) {
                    updown_only += 1;
                }
                if verbose {
                    println!("{}: {}", f.display(), reasons.join(" | "));
                }
                for r in reasons {
                    *blocks.entry(r).or_default() += 1;
                }
            }
        }
    }
    println!("{ok} of {total} IKEv2 configurations load");
    println!(
        "{with_certs} are refused for a certificate key among others, {certs_only} for \
         certificate keys alone; {updown_only} for updown alone"
    );
    let mut sorted: Vec<(String, usize)> = blocks.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (r, n) in sorted.iter().take(40) {
        println!("{n:5}  {r}");
    }
    ExitCode::SUCCESS
}
