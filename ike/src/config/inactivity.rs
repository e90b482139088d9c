//! A child's `inactivity` key, with charon's meaning (the engine's
//! `sa::inactivity` acts on it): delete the Child SA when its policies
//! carried nothing in either direction for that long.

use std::time::Duration;

use super::build::time_value;
use super::yaml::{Errors, Fields, Path};

/// The longest `inactivity`: charon keeps it in 32 bits of seconds.
pub const MAX_INACTIVITY: Duration = Duration::from_secs(u32::MAX as u64);

/// Takes `inactivity` (swanctl.conf's time format; default 0: never).
/// charon truncates a longer time to 32 bits; iked refuses it.
pub(super) fn inactivity(f: &mut Fields<'_>, path: &Path, errors: &mut Errors) -> Duration {
    let value = f.take("inactivity");
    let p = path.join("inactivity");
    let Some(t) = time_value(value, &p, errors) else {
        return Duration::ZERO;
    };
    if t > MAX_INACTIVITY {
        if let Some((node, _)) = value {
            errors.add(
                node.loc(),
                &p,
                format!(
                    "inactivity of {} s is too long (at most {} s)",
                    t.as_secs(),
                    MAX_INACTIVITY.as_secs()
                ),
            );
        }
        return Duration::ZERO;
    }
    t
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Duration;

    use crate::config::Config;

    const FILE: &str = "inactivity.yaml";

    /// A connection whose child `net` has `inactivity: VALUE` on line 7.
    fn conf(value: &str) -> String {
        format!(
            "connections:\n  c:\n    local: {{ auth: psk }}\n    remote: {{ auth: psk }}\n    children:\n      net:\n        inactivity: {value}\n"
        )
    }

    fn inactivity(value: &str) -> Duration {
        let c = Config::from_yaml_str(&conf(value), FILE).unwrap_or_else(|e| panic!("{e}"));
        c.connections()[0].children[0].inactivity
    }

    #[test]
    fn inactivity_takes_swanctl_times_and_defaults_to_never() {
        let none = "connections:\n  c:\n    local: { auth: psk }\n    remote: { auth: psk }\n    children:\n      net: {}\n";
        let c = Config::from_yaml_str(none, FILE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.connections()[0].children[0].inactivity, Duration::ZERO);
        assert_eq!(inactivity("0"), Duration::ZERO);
        assert_eq!(inactivity("90"), Duration::from_secs(90));
        assert_eq!(inactivity("30s"), Duration::from_secs(30));
        assert_eq!(inactivity("5m"), Duration::from_secs(300));
        assert_eq!(inactivity("1h"), Duration::from_secs(3600));
        assert_eq!(inactivity("2d"), Duration::from_secs(2 * 86_400));
        assert_eq!(inactivity("4294967295"), MAX);
    }

    const MAX: Duration = super::MAX_INACTIVITY;

    #[test]
    fn inactivity_refuses_bad_values_with_file_and_line() {
        for (v, what) in [
            ("soon", "bad time \"soon\""),
            ("\"-5\"", "bad time \"-5\""),
            ("5w", "bad time \"5w\""),
            ("4294967296", "too long"),
            ("50000d", "too long"),
        ] {
            let e = Config::from_yaml_str(&conf(v), FILE)
                .expect_err(v)
                .to_string();
            assert!(
                e.contains("inactivity.yaml:7") && e.contains("inactivity") && e.contains(what),
                "{v}: {e}"
            );
        }
    }
}
