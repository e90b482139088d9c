//! A child's `updown` and `hostaccess` keys: the command charon's updown
//! plugin runs when the Child SA is installed and deleted
//! (docs/configuration.md; the daemon runs it, `iked::daemon::updown`).

use super::build::boolean;
use super::tree::Loc;
use super::yaml::{Errors, Fields, Path, scalar};

/// `updown` with `hostaccess`: what a Child SA runs as it comes and goes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Updown {
    /// `updown`: a command line, run as `/bin/sh -c "2>&1 COMMAND"`
    /// (e.g. `/usr/lib/ipsec/_updown iptables`). Not checked at load: a
    /// missing script fails when it runs, as with charon.
    pub command: String,
    /// `hostaccess` (default no): passed to the script as
    /// `PLUTO_HOST_ACCESS=1`.
    pub hostaccess: bool,
}

impl Updown {
    /// An `updown` command with `hostaccess = no`.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            hostaccess: false,
        }
    }
}

/// Takes `updown` and `hostaccess` from a child's keys. `None` without an
/// `updown` command (or an empty one): charon then runs nothing, and
/// `hostaccess` alone changes nothing.
pub(super) fn updown(f: &mut Fields<'_>, path: &Path, errors: &mut Errors) -> Option<Updown> {
    let hostaccess = boolean(f.take("hostaccess"), &path.join("hostaccess"), errors);
    let (node, _): (_, Loc) = f.take("updown")?;
    let p = path.join("updown");
    let command = scalar(node, &p, errors)?;
    // charon's vici parser takes printable characters only.
    if let Some(c) = command.chars().find(|c| c.is_control()) {
        errors.add(
            node.loc(),
            &p,
            format!(
                "the command contains the control character {c:?}; only printable characters are allowed"
            ),
        );
        return None;
    }
    let command = command.trim();
    if command.is_empty() {
        return None;
    }
    Some(Updown {
        command: command.to_owned(),
        hostaccess,
    })
}

#[cfg(test)]
mod tests {
    use super::Updown;
    use crate::config::Config;

    const FILE: &str = "updown.yaml";

    fn conf(child: &str) -> String {
        format!(
            "connections:\n  c:\n    local: {{ auth: psk }}\n    remote: {{ auth: psk }}\n    children:\n      c:\n{}",
            child
                .lines()
                .map(|l| format!("        {l}\n"))
                .collect::<String>()
        )
    }

    fn updown(child: &str) -> Option<Updown> {
        let c = Config::from_yaml_str(&conf(child), FILE).unwrap_or_else(|e| panic!("{e}"));
        c.connections()[0].children[0].updown.clone()
    }

    fn error(child: &str) -> String {
        match Config::from_yaml_str(&conf(child), FILE) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_command_line_is_kept_whole() {
        assert_eq!(
            updown("updown: /usr/lib/ipsec/_updown iptables"),
            Some(Updown::new("/usr/lib/ipsec/_updown iptables"))
        );
        // A missing script is the script's failure when it runs.
        assert_eq!(
            updown("updown: /nonexistent/script --flag 'a b'"),
            Some(Updown::new("/nonexistent/script --flag 'a b'"))
        );
    }

    #[test]
    fn hostaccess_is_a_boolean_with_the_command() {
        let on = |v: &str| {
            updown(&format!("updown: /bin/true\nhostaccess: {v}"))
                .unwrap()
                .hostaccess
        };
        for v in ["yes", "true", "1", "enabled"] {
            assert!(on(v), "{v}");
        }
        for v in ["no", "false", "0", "disabled"] {
            assert!(!on(v), "{v}");
        }
        assert!(!updown("updown: /bin/true").unwrap().hostaccess);
        // hostaccess without a command: accepted, nothing runs.
        assert_eq!(updown("hostaccess: yes"), None);
    }

    #[test]
    fn no_or_an_empty_command_runs_nothing() {
        assert_eq!(updown("mode: tunnel"), None);
        assert_eq!(updown("updown: ''"), None);
        assert_eq!(updown("updown: '  '"), None);
    }

    #[test]
    fn bad_values_are_located() {
        let e = error("mode: tunnel\nhostaccess: maybe");
        assert!(
            e.contains(&format!(
                "{FILE}:8: connections.c.children.c.hostaccess: bad value \"maybe\""
            )),
            "{e}"
        );
        let e = error("updown: [a, b]");
        assert!(
            e.contains(&format!(
                "{FILE}:7: connections.c.children.c.updown: expected a string"
            )),
            "{e}"
        );
        let e = error("updown: \"/bin/x\\ty\"");
        assert!(
            e.contains(&format!(
                "{FILE}:7: connections.c.children.c.updown: the command contains the control character '\\t'"
            )),
            "{e}"
        );
    }
}
