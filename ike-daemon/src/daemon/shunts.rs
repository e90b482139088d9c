//! `mode = pass | drop` children: shunts, kernel policies that let a
//! child's traffic pass in the clear or drop it, never negotiated. As
//! charon's shunt manager: installed when the configuration is loaded
//! (the child has `start_action = trap`), made what the configuration
//! says at each reload, removed at shutdown with everything else; a
//! restarted iked removes what a crashed one left (the policies carry
//! iked's owner tag, `Kernel::flush_leftovers`). Planned in
//! `super::xfrm_plan::plan_shunt`.

use std::collections::HashMap;

use tracing::{info, warn};
use xfrm_netlink::PolicyConfig;

use super::Driver;
use super::kernel::ifindex;
use super::xfrm_plan::plan_shunt;
use ike::config::Config;

/// The shunts `config` asks for, by (connection, child), with their
/// policies; a shunt that cannot be planned is logged and left out.
pub fn wanted(config: &Config) -> HashMap<(String, String), Vec<PolicyConfig>> {
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

impl Driver {
    /// Makes the installed shunts what the configuration asks for (at
    /// start and after a reload): those gone or changed are removed, new
    /// or changed ones installed.
    pub(super) async fn sync_shunts(&mut self) {
        let want = wanted(&self.config);
        let have = self.kernel.shunts();
        for (key, p) in &have {
            if want.get(key) != Some(p) {
                self.kernel.remove_shunt(key).await;
                info!("shunt {}/{} removed", key.0, key.1);
            }
        }
        for (key, p) in want {
            if have.get(&key) == Some(&p) {
                continue;
            }
            let (conn, child) = key.clone();
            let n = p.len();
            match self.kernel.install_shunt(key, p).await {
                Ok(()) => info!("shunt {conn}/{child} installed ({n} policies)"),
                Err(e) => warn!("cannot install the shunt {conn}/{child}: {e}"),
            }
        }
    }
}
