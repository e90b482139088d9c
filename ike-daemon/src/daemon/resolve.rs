//! DNS names of `local_addrs`/`remote_addrs`, resolved before the
//! configuration is converted for the engine ([`ike::from_config`], which
//! does no I/O).

use std::net::IpAddr;

use tracing::warn;

use ike::from_config::Resolved;

/// Resolves names with tokio's resolver; a name that does not resolve is
/// logged and left out (the connection then has fewer addresses).
pub async fn resolve(names: &[String]) -> Resolved {
    let mut out = Resolved::new();
    for n in names {
        match tokio::net::lookup_host((n.as_str(), 0)).await {
            Ok(addrs) => {
                let mut v: Vec<IpAddr> = Vec::new();
                for a in addrs {
                    if !v.contains(&a.ip()) {
                        v.push(a.ip());
                    }
                }
                out.insert(n.clone(), v);
            }
            Err(e) => warn!("cannot resolve {n}: {e}"),
        }
    }
    out
}
