//! Least privilege (docs/security.md): iked drops every capability but
//! the ones it uses, before its runtime starts any thread (capabilities
//! are per thread; threads and processes made later inherit the reduced
//! sets).
//!
//! | set         | kept                                    | why |
//! |-------------|-----------------------------------------|-----|
//! | effective   | `CAP_NET_ADMIN`, `CAP_NET_BIND_SERVICE` | XFRM, routes and rules, socket policies and marks; UDP ports 500 and 4500 |
//! | permitted   | those and `CAP_NET_RAW`                 | `CAP_NET_RAW` only to hand it on |
//! | inheritable, ambient | `CAP_NET_ADMIN`, `CAP_NET_RAW` | `updown` commands: iptables needs both |
//! | bounding    | `CAP_NET_ADMIN`, `CAP_NET_RAW`          | no program iked runs gains more, even as root |
//!
//! and `no_new_privs`: nothing iked runs gains privileges through setuid
//! or file capabilities. Without `CAP_SETPCAP` (iked not started as root)
//! the bounding set stays as it is; a capability iked did not have is
//! missing from every set and reported.

use caps::{CapSet, Capability, CapsHashSet};

/// What the daemon itself uses (its effective set).
pub const DAEMON: [Capability; 2] = [Capability::CAP_NET_ADMIN, Capability::CAP_NET_BIND_SERVICE];

/// What `updown` commands get as ambient capabilities.
pub const UPDOWN: [Capability; 2] = [Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW];

/// The sets iked keeps, from the permitted set it starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The effective set: [`DAEMON`] as far as permitted.
    pub effective: CapsHashSet,
    /// The permitted set: [`DAEMON`] and [`UPDOWN`] as far as permitted.
    pub permitted: CapsHashSet,
    /// The inheritable and ambient sets: [`UPDOWN`] as far as permitted.
    pub ambient: CapsHashSet,
    /// Those of [`DAEMON`] and [`UPDOWN`] that iked was started without.
    pub missing: Vec<Capability>,
}

/// The sets to keep when iked starts with `permitted`.
pub fn plan(permitted: &CapsHashSet) -> Plan {
    let have = |set: &[Capability]| -> CapsHashSet {
        set.iter()
            .copied()
            .filter(|c| permitted.contains(c))
            .collect()
    };
    let mut missing: Vec<Capability> = DAEMON
        .iter()
        .chain(UPDOWN.iter())
        .copied()
        .filter(|c| !permitted.contains(c))
        .collect();
    missing.sort_by_key(|c| c.index());
    missing.dedup();
    let ambient = have(&UPDOWN);
    let effective = have(&DAEMON);
    Plan {
        permitted: effective.union(&ambient).copied().collect(),
        effective,
        ambient,
        missing,
    }
}

/// What [`restrict`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restricted {
    /// The sets now in force.
    pub plan: Plan,
    /// Whether the bounding set was reduced to [`UPDOWN`] (needs
    /// `CAP_SETPCAP`).
    pub bounding: bool,
}

/// Names, sorted, for the log.
pub fn names(set: &CapsHashSet) -> String {
    let mut v: Vec<String> = set.iter().map(ToString::to_string).collect();
    v.sort();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// Reduces the calling thread's capabilities to the [`Plan`] for its
/// permitted set and sets `no_new_privs`. Call it before any other thread
/// starts: the others keep their own sets.
pub fn restrict() -> Result<Restricted, String> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: caps::errors::CapsError| format!("{what}: {e}")
    };
    let permitted = caps::read(None, CapSet::Permitted).map_err(err("reading capabilities"))?;
    let plan = plan(&permitted);
    let bounding = caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP)
        .map_err(err("reading capabilities"))?;
    if bounding {
        for c in caps::read(None, CapSet::Bounding).map_err(err("reading the bounding set"))? {
            if !UPDOWN.contains(&c) {
                caps::drop(None, CapSet::Bounding, c).map_err(err("reducing the bounding set"))?;
            }
        }
    }
    // Inheritable and ambient while CAP_SETPCAP is still effective; then
    // effective before permitted (effective stays within permitted).
    caps::set(None, CapSet::Inheritable, &plan.ambient)
        .map_err(err("setting the inheritable set"))?;
    caps::clear(None, CapSet::Ambient).map_err(err("clearing the ambient set"))?;
    for c in &plan.ambient {
        caps::raise(None, CapSet::Ambient, *c).map_err(err("raising an ambient capability"))?;
    }
    caps::set(None, CapSet::Effective, &plan.effective)
        .map_err(err("setting the effective set"))?;
    caps::set(None, CapSet::Permitted, &plan.permitted)
        .map_err(err("setting the permitted set"))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("setting no_new_privs: {e}"))?;
    Ok(Restricted { plan, bounding })
}

/// [`restrict`] with its log lines, unless `keep_all` (`iked
/// --keep-capabilities`): then nothing changes. Problems are logged, not
/// fatal: iked runs on with what it has.
pub fn apply(keep_all: bool) -> Option<Restricted> {
    if keep_all {
        tracing::warn!(
            "--keep-capabilities: iked and its updown commands keep every capability it was started with"
        );
        return None;
    }
    match restrict() {
        Ok(r) => {
            tracing::info!(
                "capabilities: effective {}; updown commands get {}; no_new_privs",
                names(&r.plan.effective),
                names(&r.plan.ambient)
            );
            if !r.plan.missing.is_empty() {
                let missing: Vec<String> = r.plan.missing.iter().map(ToString::to_string).collect();
                tracing::warn!(
                    "started without {}: the kernel will refuse what needs them",
                    missing.join(", ")
                );
            }
            if !r.bounding {
                tracing::info!("no CAP_SETPCAP: the bounding set stays as it was");
            }
            Some(r)
        }
        Err(e) => {
            tracing::warn!("cannot reduce the capabilities: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use Capability::*;

    fn set(v: &[Capability]) -> CapsHashSet {
        v.iter().copied().collect()
    }

    #[test]
    fn root_keeps_the_network_capabilities_only() {
        let p = plan(&caps::all());
        assert_eq!(p.effective, set(&[CAP_NET_ADMIN, CAP_NET_BIND_SERVICE]));
        assert_eq!(
            p.permitted,
            set(&[CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, CAP_NET_RAW])
        );
        assert_eq!(p.ambient, set(&[CAP_NET_ADMIN, CAP_NET_RAW]));
        assert!(p.missing.is_empty());
    }

    #[test]
    fn what_iked_was_not_given_is_missing_not_added() {
        let p = plan(&set(&[CAP_NET_ADMIN, CAP_SYS_ADMIN]));
        assert_eq!(p.effective, set(&[CAP_NET_ADMIN]));
        assert_eq!(p.permitted, set(&[CAP_NET_ADMIN]));
        assert_eq!(p.ambient, set(&[CAP_NET_ADMIN]));
        assert_eq!(p.missing, vec![CAP_NET_BIND_SERVICE, CAP_NET_RAW]);
        let p = plan(&CapsHashSet::new());
        assert!(p.effective.is_empty() && p.permitted.is_empty() && p.ambient.is_empty());
        assert_eq!(p.missing.len(), 3);
        assert_eq!(names(&p.effective), "none");
    }

    /// A capability set of /proc/thread-self/status (hex mask).
    fn status_mask(status: &str, field: &str) -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    }

    fn mask(v: &[Capability]) -> u64 {
        v.iter().fold(0, |m, c| m | c.bitmask())
    }

    /// `--keep-capabilities`: the thread's sets and no_new_privs as they
    /// were; without it, `restrict`'s.
    #[test]
    fn keeping_all_changes_nothing() {
        std::thread::spawn(|| {
            let sets = || {
                let s = std::fs::read_to_string("/proc/thread-self/status").unwrap();
                s.lines()
                    .filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            let before = sets();
            assert_eq!(apply(true), None);
            assert_eq!(sets(), before);
            let permitted = caps::read(None, CapSet::Permitted).unwrap();
            let r = apply(false).unwrap();
            assert_eq!(r.plan, plan(&permitted));
            assert_ne!(sets(), before, "restricted");
        })
        .join()
        .unwrap();
    }

    /// On its own thread (capabilities are per thread): the thread's sets
    /// after `restrict`, and what a shell it starts has.
    #[test]
    fn restrict_leaves_the_plan_and_children_get_the_ambient_set() {
        std::thread::spawn(|| {
            let before = caps::read(None, CapSet::Permitted).unwrap();
            let r = restrict().unwrap();
            assert_eq!(r.plan, plan(&before));
            let me = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let all = [CAP_NET_ADMIN, CAP_NET_BIND_SERVICE, CAP_NET_RAW];
            let have = |c: &Capability| before.contains(c);
            let kept = |v: &[Capability]| mask(&v.iter().copied().filter(have).collect::<Vec<_>>());
            assert_eq!(status_mask(&me, "CapEff"), kept(&DAEMON), "{me}");
            assert_eq!(status_mask(&me, "CapPrm"), kept(&all), "{me}");
            assert_eq!(status_mask(&me, "CapInh"), kept(&UPDOWN), "{me}");
            assert_eq!(status_mask(&me, "CapAmb"), kept(&UPDOWN), "{me}");
            assert!(me.contains("NoNewPrivs:\t1"), "{me}");
            if r.bounding {
                assert_eq!(status_mask(&me, "CapBnd"), mask(&UPDOWN), "{me}");
            }
            // A child (as an updown command runs): the ambient set, even
            // as root, and no more.
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", "cat /proc/self/status"])
                .output()
                .unwrap();
            let child = String::from_utf8(out.stdout).unwrap();
            assert_eq!(status_mask(&child, "CapEff"), kept(&UPDOWN), "{child}");
            assert_eq!(status_mask(&child, "CapPrm"), kept(&UPDOWN), "{child}");
            assert!(child.contains("NoNewPrivs:\t1"), "{child}");
        })
        .join()
        .unwrap();
    }
}
