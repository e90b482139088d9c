//! The configuration readers: swanctl.conf (swanctl-compat) and iked's
//! YAML (ike::config), both on text from the input, and what the daemon
//! does with a configuration that reads.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ike::config::Config;
use ike::from_config::{self, ConfigPsk, Credentials, Ports, Resolved};

/// The daemon's steps after reading a configuration, with every name
/// resolved to one documentation address and no credential files.
fn use_config(config: &Config) {
    let resolved: Resolved = from_config::names_to_resolve(config)
        .into_iter()
        .map(|n| (n, vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))]))
        .collect::<HashMap<_, _>>();
    let creds = Credentials::default();
    if let Ok(peers) = from_config::peers(config, &resolved, Ports::default(), &creds) {
        let _ = from_config::reload_diff(config, &peers, config, &peers);
    }
    let _ = from_config::check_credentials(config, &creds);
    let _ = from_config::trust_store(config, &creds);
    let _ = from_config::start_children(config);
    let _ = ConfigPsk::new(Arc::new(config.clone()));
}

/// Reads the input as swanctl.conf text (lossy UTF-8); includes are
/// errors without files. What reads also converts to iked YAML
/// (`ikectl convert`), and that YAML reads (swanctl-compat promises the
/// same configuration). The same text as strongswan.conf.
pub fn swanctl(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = swanctl_compat::strongswan_conf::parse_str(&text, "strongswan.conf");
    let Ok(tree) = swanctl_compat::parse_tree_str(&text, "swanctl.conf") else {
        return;
    };
    let yaml = swanctl_compat::to_yaml(&tree);
    match Config::from_yaml_str(&yaml, "converted.yaml") {
        Ok(config) => use_config(&config),
        Err(e) => {
            panic!("swanctl.conf that reads converts to YAML that does not:\n{e}\n---\n{yaml}")
        }
    }
    if let Ok(config) = swanctl_compat::parse_str(&text, "swanctl.conf") {
        use_config(&config);
    }
}

/// Reads the input as iked YAML (lossy UTF-8); what reads becomes peer
/// configurations, a PSK store, a trust store.
pub fn yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = Config::from_yaml_str(&text, "iked.yaml") {
        use_config(&config);
    }
}
