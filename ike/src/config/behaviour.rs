//! How a connection behaves beyond its keys and selectors, with charon's
//! meanings: `keyingtries`, `childless`, `unique`.

use super::yaml::{Errors, Fields, Path, scalar};

/// `childless`: IKE SAs without a Child SA in IKE_AUTH (RFC 6023).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Childless {
    /// `allow` (default): as initiator only for a connection without
    /// children (`ikectl up` of the IKE SA alone); as responder accept
    /// an IKE_AUTH without a Child SA.
    #[default]
    Allow,
    /// `force`: as initiator always childless (the Child SAs follow with
    /// CREATE_CHILD_SA), failing if the responder does not announce
    /// CHILDLESS_IKEV2_SUPPORTED; as responder refuse an IKE_AUTH that
    /// carries a Child SA.
    Force,
    /// `never`: always a Child SA in IKE_AUTH; as responder refuse an
    /// IKE_AUTH without one, and do not announce support.
    Never,
}

/// `unique`: what an IKE SA that authenticates with the same pair of
/// identities as established ones does to them (charon's
/// `ike_sa_manager.c` `check_uniqueness`; the engine's `sa::unique`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Unique {
    /// `no` (default): the old ones stay, unless the peer sends
    /// INITIAL_CONTACT (it restarted): then they go.
    #[default]
    No,
    /// `never`: the old ones stay even with INITIAL_CONTACT, and we never
    /// send INITIAL_CONTACT.
    Never,
    /// `keep`: a new IKE SA from another address is refused while an
    /// established one of the same connection stays.
    Keep,
    /// `replace`: the old ones of the same connection are deleted once
    /// the new one is up (10 s later if from the same address: it may be
    /// a reauthentication).
    Replace,
}

/// The connection keys of this module, with charon's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Behaviour {
    /// `keyingtries`: how many times an IKE SA we initiate is tried
    /// when the peer does not answer (each try a full retransmission
    /// schedule with a new SPI); 0: until it comes up or is stopped.
    /// Default 1.
    pub keyingtries: u32,
    /// `childless`.
    pub childless: Childless,
    /// `unique`.
    pub unique: Unique,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            keyingtries: 1,
            childless: Childless::Allow,
            unique: Unique::No,
        }
    }
}

/// `keyingtries`, `childless`, `unique` of a connection.
pub(super) fn connection(f: &mut Fields<'_>, path: &Path, errors: &mut Errors) -> Behaviour {
    let mut b = Behaviour::default();
    if let Some((n, _)) = f.take("keyingtries") {
        let p = path.join("keyingtries");
        if let Some(s) = scalar(n, &p, errors) {
            let v = match s.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16).ok(),
                None if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => s.parse().ok(),
                None => None,
            };
            match v {
                Some(v) => b.keyingtries = v,
                None => errors.add(
                    n.loc(),
                    &p,
                    format!("bad keyingtries \"{s}\" (expected a number of tries, 0 for forever)"),
                ),
            }
        }
    }
    b.childless = pick(
        f,
        "childless",
        path,
        &[
            ("allow", Childless::Allow),
            ("force", Childless::Force),
            ("never", Childless::Never),
        ],
        Some(("prefer", "childless \"prefer\" is not supported yet")),
        errors,
    )
    .unwrap_or_default();
    b.unique = pick(
        f,
        "unique",
        path,
        &[
            ("no", Unique::No),
            ("never", Unique::Never),
            ("keep", Unique::Keep),
            ("replace", Unique::Replace),
        ],
        None,
        errors,
    )
    .unwrap_or_default();
    b
}

/// A key whose value is one of `options`; `later`: a value charon knows
/// that iked does not support yet, with its message.
fn pick<T: Copy>(
    f: &mut Fields<'_>,
    key: &'static str,
    path: &Path,
    options: &[(&str, T)],
    later: Option<(&str, &str)>,
    errors: &mut Errors,
) -> Option<T> {
    let (n, _) = f.take(key)?;
    let p = path.join(key);
    let s = scalar(n, &p, errors)?;
    if let Some((_, v)) = options.iter().find(|(name, _)| *name == s) {
        return Some(*v);
    }
    match later {
        Some((value, message)) if value == s => errors.add(n.loc(), &p, message),
        _ => {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            errors.add(
                n.loc(),
                &p,
                format!("unknown {key} \"{s}\" (expected {})", names.join(", ")),
            );
        }
    }
    None
}
