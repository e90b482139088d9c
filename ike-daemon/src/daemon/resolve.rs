//! DNS names of `local_addrs`/`remote_addrs`, resolved before the
//! configuration is converted for the engine ([`ike::from_config`], which
//! does no I/O); and the gateway a redirect names (the engine's
//! `poll_resolve`).

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

/// The addresses of `name`, the gateway of a redirect (RFC 5685) the
/// engine follows: its first is used.
pub async fn redirect_gateway(name: &str) -> Result<Vec<IpAddr>, String> {
    let addrs = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| e.to_string())?;
    let mut v: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !v.contains(&a.ip()) {
            v.push(a.ip());
        }
    }
    Ok(v)
}
