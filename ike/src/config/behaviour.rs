//! How a connection behaves beyond its keys and selectors, with charon's
//! meanings: `keyingtries`.

use super::yaml::{Errors, Fields, Path, scalar};

/// The connection keys of this module, with charon's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Behaviour {
    /// `keyingtries`: how many times an IKE SA we initiate is tried
    /// when the peer does not answer (each try a full retransmission
    /// schedule with a new SPI); 0: until it comes up or is stopped.
    /// Default 1.
    pub keyingtries: u32,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self { keyingtries: 1 }
    }
}

/// `keyingtries` of a connection.
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
    b
}
