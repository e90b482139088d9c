//! `mode = pass | drop` children: shunts, kernel policies that let a
//! child's traffic pass in the clear or drop it, never negotiated. As
//! charon's shunt manager: installed when the configuration is loaded
//! (the child has `start_action = trap`), made what the configuration
//! says at each reload, removed at shutdown with everything else; a
//! restarted iked removes what a crashed one left (the policies carry
//! iked's owner tag, `Kernel::flush_leftovers`). What a configuration
//! wants and what changes are decided here (pure); the driver carries
//! them out through the kernel bridge.

use std::collections::HashMap;

use tracing::warn;
use xfrm_netlink::PolicyConfig;

use super::kernel::ifindex;
use super::xfrm_plan::plan_shunt;
use ike::config::Config;

/// A shunt: (connection, child).
pub type ShuntKey = (String, String);

/// The shunts `config` asks for, with their policies; a shunt that cannot
/// be planned (an `interface` that does not exist) is logged and left out.
pub fn wanted(config: &Config) -> HashMap<ShuntKey, Vec<PolicyConfig>> {
    let mut out = HashMap::new();
    for c in config.connections() {
        for ch in c.children.iter().filter(|ch| ch.mode.is_shunt()) {
            let plan = ifindex(ch.policy.interface.as_deref()).and_then(|i| plan_shunt(ch, i));
            match plan {
                Ok(p) => {
                    out.insert((c.name.clone(), ch.name.clone()), p);
                }
                Err(e) => warn!(
                    "cannot install the {} shunt {}/{}: {e}",
                    ch.mode, c.name, ch.name
                ),
            }
        }
    }
    out
}

/// What to remove (gone or changed) and what to install (new or changed)
/// to go from the installed shunts `have` to `want`, each sorted.
pub fn changes(
    have: &HashMap<ShuntKey, Vec<PolicyConfig>>,
    want: HashMap<ShuntKey, Vec<PolicyConfig>>,
) -> (Vec<ShuntKey>, Vec<(ShuntKey, Vec<PolicyConfig>)>) {
    let mut remove: Vec<ShuntKey> = have
        .iter()
        .filter(|(k, p)| want.get(*k) != Some(*p))
        .map(|(k, _)| k.clone())
        .collect();
    let mut install: Vec<_> = want
        .into_iter()
        .filter(|(k, p)| have.get(k) != Some(p))
        .collect();
    remove.sort();
    install.sort_by(|a, b| a.0.cmp(&b.0));
    (remove, install)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shunts(yaml: &str) -> HashMap<ShuntKey, Vec<PolicyConfig>> {
        wanted(&Config::from_yaml_str(yaml, "t.yaml").unwrap())
    }

    const ONE: &str = "connections:\n  s:\n    children:\n      d: { mode: drop, start_action: trap, remote_ts: [192.0.2.2/32] }\n";

    #[test]
    fn a_reload_changes_only_what_changed() {
        let one = shunts(ONE);
        assert_eq!(one.len(), 1);
        assert_eq!(one[&("s".into(), "d".into())].len(), 3);
        // Nothing to do for the same configuration.
        assert_eq!(changes(&one, one.clone()), (vec![], vec![]));
        // A new one is installed; a changed one removed and installed; a
        // gone one removed.
        let two = shunts(&format!(
            "{ONE}      p: {{ mode: pass, start_action: trap, remote_ts: ['192.0.2.2/32[icmp]'] }}\n"
        ));
        let (rm, add) = changes(&one, two.clone());
        assert!(rm.is_empty());
        assert_eq!(
            add.iter().map(|a| a.0.1.as_str()).collect::<Vec<_>>(),
            ["p"]
        );
        let changed = shunts(&ONE.replace("192.0.2.2/32", "192.0.2.3/32"));
        let (rm, add) = changes(&two, changed);
        assert_eq!(
            rm.iter().map(|k| k.1.as_str()).collect::<Vec<_>>(),
            ["d", "p"]
        );
        assert_eq!(
            add.iter().map(|a| a.0.1.as_str()).collect::<Vec<_>>(),
            ["d"]
        );
        // IPsec children and traps are no shunts.
        assert!(shunts("connections:\n  c:\n    local: { auth: psk }\n    remote: { auth: psk }\n    children:\n      t: { start_action: trap }\n").is_empty());
    }
}
