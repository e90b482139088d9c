//! `settings`: the limits on half-open IKE SAs (strongSwan's
//! `charon.cookie_threshold`, `cookie_threshold_ip`, `block_threshold`,
//! `init_limit_half_open`; `sa::dos` applies them).

use super::yaml::{Errors, Fields, scalar};
use crate::sa::EndpointConfig;

/// A count, or `off`: no such limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// This many.
    Count(usize),
    /// None.
    Off,
}

impl Limit {
    fn get(self) -> Option<usize> {
        match self {
            Self::Count(n) => Some(n),
            Self::Off => None,
        }
    }

    /// `N` or `off`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "off" {
            return Some(Self::Off);
        }
        s.parse().ok().map(Self::Count)
    }
}

/// The limits set (`None`: not set here, the next source or the default
/// applies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DosSettings {
    /// `cookie_threshold` (30): half-open SAs in all from which a COOKIE
    /// is required; 0: always.
    pub cookie_threshold: Option<Limit>,
    /// `cookie_threshold_ip` (3): the same per source address.
    pub cookie_threshold_ip: Option<Limit>,
    /// `block_threshold` (5): half-open SAs of one source address from
    /// which its requests are ignored.
    pub block_threshold: Option<Limit>,
    /// `init_limit_half_open` (off): half-open SAs in all from which
    /// requests are ignored.
    pub init_limit_half_open: Option<Limit>,
}

impl DosSettings {
    /// Each limit from `self` where set, else from `under`.
    pub fn or(self, under: Self) -> Self {
        Self {
            cookie_threshold: self.cookie_threshold.or(under.cookie_threshold),
            cookie_threshold_ip: self.cookie_threshold_ip.or(under.cookie_threshold_ip),
            block_threshold: self.block_threshold.or(under.block_threshold),
            init_limit_half_open: self.init_limit_half_open.or(under.init_limit_half_open),
        }
    }

    /// `cfg` with the limits set here (the others as they are).
    pub fn apply(self, mut cfg: EndpointConfig) -> EndpointConfig {
        if let Some(l) = self.cookie_threshold {
            cfg.cookie_threshold = l.get();
        }
        if let Some(l) = self.cookie_threshold_ip {
            cfg.dos.cookie_threshold_ip = l.get();
        }
        if let Some(l) = self.block_threshold {
            cfg.dos.block_threshold = l.get();
        }
        if let Some(l) = self.init_limit_half_open {
            cfg.dos.init_limit_half_open = l.get();
        }
        cfg
    }
}

/// Takes the limits' keys of the `settings` mapping `f`.
pub(super) fn settings(f: &mut Fields<'_>, errors: &mut Errors) -> DosSettings {
    let mut one = |key: &'static str| -> Option<Limit> {
        let (n, _) = f.take(key)?;
        let p = f.path.join(key);
        let s = scalar(n, &p, errors)?;
        let l = Limit::parse(s);
        if l.is_none() {
            errors.add(
                n.loc(),
                &p,
                format!("bad value \"{s}\" (expected a count or off)"),
            );
        }
        l
    };
    DosSettings {
        cookie_threshold: one("cookie_threshold"),
        cookie_threshold_ip: one("cookie_threshold_ip"),
        block_threshold: one("block_threshold"),
        init_limit_half_open: one("init_limit_half_open"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::config::Config;

    fn conf(settings: &str) -> Result<Config, String> {
        let text = format!(
            "settings:\n{settings}connections:\n  c:\n    local: {{ auth: psk }}\n    remote: {{ auth: psk }}\n"
        );
        Config::from_yaml_str(&text, "iked.yaml").map_err(|e| e.to_string())
    }

    #[test]
    fn limits_are_read_as_counts_or_off() {
        let c = conf(
            "  cookie_threshold: 0\n  cookie_threshold_ip: off\n  block_threshold: 12\n  \
             init_limit_half_open: 1000\n",
        )
        .unwrap();
        assert_eq!(
            c.settings().dos,
            DosSettings {
                cookie_threshold: Some(Limit::Count(0)),
                cookie_threshold_ip: Some(Limit::Off),
                block_threshold: Some(Limit::Count(12)),
                init_limit_half_open: Some(Limit::Count(1000)),
            }
        );
        assert_eq!(
            conf("  fragment_size: 1280\n").unwrap().settings().dos,
            DosSettings::default()
        );
    }

    #[test]
    fn bad_limits_are_located() {
        let e =
            conf("  block_threshold: -1\n  init_limit_half_open: many\n  cookie_threshold: [1]\n")
                .unwrap_err();
        for want in [
            "iked.yaml:2: settings.block_threshold: bad value \"-1\" (expected a count or off)",
            "iked.yaml:3: settings.init_limit_half_open: bad value \"many\" (expected a count or off)",
            "iked.yaml:4: settings.cookie_threshold:",
        ] {
            assert!(e.contains(want), "{want} not in {e}");
        }
    }

    #[test]
    fn sources_stack_and_apply_to_the_endpoint() {
        let flags = DosSettings {
            block_threshold: Some(Limit::Off),
            ..DosSettings::default()
        };
        let file = DosSettings {
            block_threshold: Some(Limit::Count(9)),
            cookie_threshold_ip: Some(Limit::Count(7)),
            init_limit_half_open: Some(Limit::Count(50)),
            ..DosSettings::default()
        };
        let cfg = flags.or(file).apply(EndpointConfig::default());
        assert_eq!(cfg.dos.block_threshold, None, "the flag wins");
        assert_eq!(cfg.dos.cookie_threshold_ip, Some(7));
        assert_eq!(cfg.dos.init_limit_half_open, Some(50));
        assert_eq!(cfg.cookie_threshold, Some(30), "unset: the default");
        let cfg = DosSettings {
            cookie_threshold: Some(Limit::Off),
            ..DosSettings::default()
        }
        .apply(EndpointConfig::default());
        assert_eq!(cfg.cookie_threshold, None);
        assert_eq!(cfg.dos, crate::sa::DosLimits::default());
    }
}
