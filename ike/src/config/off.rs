//! swanctl keys for features iked does not have, accepted when their value
//! turns the feature off (what iked does anyway), so real swanctl.conf
//! files that spell the "off" out load. Any other value is "not supported
//! yet", with the file, line and key, like every unsupported key.

use super::yaml::{Errors, Fields, scalar};

/// What value means "off".
#[derive(Clone, Copy, Debug)]
pub(super) enum Off {
    /// A boolean false as strongSwan's settings read it: `no`, `false`,
    /// `disabled`, `0`.
    False,
}

impl Off {
    fn is_off(self, v: &str) -> bool {
        match self {
            Off::False => matches!(v, "no" | "false" | "disabled" | "0"),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Off::False => "no",
        }
    }
}

/// Connection keys: MOBIKE (iked has none).
pub(super) const CONNECTION: &[(&str, Off, &str)] = &[("mobike", Off::False, "MOBIKE")];

/// Takes each of `keys` from `f`: its "off" value is accepted, any other is
/// an error.
pub(super) fn take(f: &mut Fields<'_>, keys: &[(&'static str, Off, &str)], errors: &mut Errors) {
    for &(key, off, feature) in keys {
        let Some((node, _)) = f.take(key) else {
            continue;
        };
        let path = f.path.join(key);
        let Some(v) = scalar(node, &path, errors) else {
            continue;
        };
        if !off.is_off(v) {
            errors.add(
                node.loc(),
                &path,
                format!(
                    "{key} = {v}: {feature} is not supported yet (only {key} = {} is accepted, \
                     which is what iked does)",
                    off.expected()
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_values() {
        for v in ["no", "false", "disabled", "0"] {
            assert!(Off::False.is_off(v), "{v}");
        }
        for v in ["yes", "true", "1", ""] {
            assert!(!Off::False.is_off(v), "{v}");
        }
    }
}
