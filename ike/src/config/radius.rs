//! `radius`: the RADIUS servers of EAP-RADIUS and accounting, the YAML
//! form of strongswan.conf's `charon.plugins.eap-radius` section (which
//! `swanctl_compat::eap_radius` reads, with the same keys and defaults):
//!
//! ```yaml
//! radius:
//!   accounting: yes
//!   nas_identifier: gw        # default for each server
//!   servers:
//!     primary:
//!       address: 10.1.0.10
//!       secret: "shared with the server"
//!       preference: 10
//!     backup:
//!       address: 10.1.0.11
//!       secret: "another"
//!       auth_port: 1645
//!       acct_port: 1646
//! ```
//!
//! `port`, `nas_identifier` and `retransmit_*` at the top are the defaults
//! of each server, as the plugin-wide values are in strongswan.conf. A
//! secret is taken as written (strongswan.conf's are; `secrets`' 0x/0s
//! encodings do not apply). Addresses are IP addresses.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use zeroize::Zeroizing;

use super::build::boolean;
use super::tree::{Loc, Node};
use super::yaml::{Errors, Fields, Path, map_entries, scalar};
use crate::radius::{Server, Settings};

const AUTH_PORT: u16 = 1812;
const ACCT_PORT: u16 = 1813;

/// What a server falls back to.
#[derive(Clone)]
struct Defaults {
    port: u16,
    nas_identifier: String,
    tries: u32,
    timeout: Duration,
    base: f64,
}

/// The `radius` section (its key at `key`); `None` when it names no server (a section with
/// settings but no server is an error: EAP-RADIUS would fail every login).
pub(super) fn radius(node: &Node, key: Loc, errors: &mut Errors) -> Option<Settings> {
    let path = Path::default().join("radius");
    let before = errors.0.len();
    let mut f = Fields::new(node, path.clone(), errors)?;
    let mut out = Settings::default();
    if let Some(v) = f.take("accounting") {
        out.accounting = boolean(Some(v), &path.join("accounting"), errors);
    }
    if let Some(v) = f.take("station_id_with_port") {
        out.station_id_with_port = boolean(Some(v), &path.join("station_id_with_port"), errors);
    }
    if let Some(v) = f.take("eap_start") {
        out.eap_start = boolean(Some(v), &path.join("eap_start"), errors);
    }
    if let Some((n, _)) = f.take("id_prefix")
        && let Some(s) = scalar(n, &path.join("id_prefix"), errors)
    {
        out.id_prefix = s.to_owned();
    }
    let base = Defaults {
        port: AUTH_PORT,
        nas_identifier: "strongSwan".to_owned(),
        tries: 4,
        timeout: Duration::from_secs(2),
        base: 1.4,
    };
    let defaults = server_defaults(&mut f, &path, &base, errors);
    let servers = f.take("servers");
    f.finish(errors, |_| None);
    match servers {
        Some((n, _)) => {
            let sp = path.join("servers");
            for (name, _, value) in map_entries(n, &sp, "server name", errors).unwrap_or_default() {
                if let Some(s) = server(name, value, &sp.join(name), &defaults, errors) {
                    out.servers.push(s);
                }
            }
        }
        None => errors.add(key, &path, "no servers (radius.servers.<name>)"),
    }
    (errors.0.len() == before && !out.servers.is_empty()).then_some(out)
}

/// `port`, `nas_identifier`, `retransmit_tries`, `retransmit_timeout`,
/// `retransmit_base` of `f`, each else from `base`.
fn server_defaults(
    f: &mut Fields<'_>,
    path: &Path,
    base: &Defaults,
    errors: &mut Errors,
) -> Defaults {
    let mut d = base.clone();
    if let Some((n, _)) = f.take("port") {
        d.port = port(n, &path.join("port"), errors).unwrap_or(d.port);
    }
    if let Some((n, _)) = f.take("nas_identifier")
        && let Some(s) = scalar(n, &path.join("nas_identifier"), errors)
    {
        d.nas_identifier = s.to_owned();
    }
    if let Some((n, _)) = f.take("retransmit_tries") {
        let p = path.join("retransmit_tries");
        match scalar(n, &p, errors).map(|s| (s, s.parse::<u32>())) {
            Some((_, Ok(t))) if (1..=100).contains(&t) => d.tries = t,
            Some((s, _)) => errors.add(
                n.loc(),
                &p,
                format!("bad value \"{s}\" (expected 1 to 100)"),
            ),
            None => {}
        }
    }
    if let Some((n, _)) = f.take("retransmit_timeout") {
        let p = path.join("retransmit_timeout");
        let s = scalar(n, &p, errors);
        let secs = s.map(|s| s.strip_suffix('s').unwrap_or(s).parse::<f64>());
        match (s, secs) {
            (_, Some(Ok(v))) if (0.0..=3600.0).contains(&v) => {
                d.timeout = Duration::from_secs_f64(v)
            }
            (Some(s), _) => errors.add(
                n.loc(),
                &p,
                format!("bad value \"{s}\" (expected seconds from 0 to 3600, such as 2 or 0.5)"),
            ),
            _ => {}
        }
    }
    if let Some((n, _)) = f.take("retransmit_base") {
        let p = path.join("retransmit_base");
        match scalar(n, &p, errors).map(|s| (s, s.parse::<f64>())) {
            Some((_, Ok(v))) if (1.0..=10.0).contains(&v) => d.base = v,
            Some((s, _)) => {
                errors.add(n.loc(), &p, format!("bad value \"{s}\" (expected 1 to 10)"))
            }
            None => {}
        }
    }
    d
}

fn server(
    name: &str,
    node: &Node,
    path: &Path,
    defaults: &Defaults,
    errors: &mut Errors,
) -> Option<Server> {
    let mut f = Fields::new(node, path.clone(), errors)?;
    let address = f.take("address");
    let secret = f.take("secret");
    let auth_port = f.take("auth_port");
    let acct_port = f.take("acct_port");
    let preference = f.take("preference");
    let d = server_defaults(&mut f, path, defaults, errors);
    f.finish(errors, |_| None);
    let ip = need(address, node.loc(), &path.join("address"), errors).and_then(|(n, s)| {
        match s.trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                errors.add(
                    n.loc(),
                    &path.join("address"),
                    format!("\"{s}\" is not an IP address (host names are not resolved yet)"),
                );
                None
            }
        }
    });
    let secret = need(secret, node.loc(), &path.join("secret"), errors).map(|(_, s)| s.to_owned());
    // swanctl's `port` of a server is its authentication port too.
    let auth = match auth_port {
        Some((n, _)) => port(n, &path.join("auth_port"), errors)?,
        None => d.port,
    };
    let acct = match acct_port {
        Some((n, _)) => port(n, &path.join("acct_port"), errors)?,
        None => ACCT_PORT,
    };
    let preference = match preference {
        Some((n, _)) => {
            let p = path.join("preference");
            let s = scalar(n, &p, errors)?;
            match s.parse::<i32>() {
                Ok(v) => v,
                Err(_) => {
                    errors.add(
                        n.loc(),
                        &p,
                        format!("bad value \"{s}\" (expected a number)"),
                    );
                    return None;
                }
            }
        }
        None => 0,
    };
    let (ip, secret) = (ip?, secret?);
    Some(Server {
        name: name.to_owned(),
        auth: SocketAddr::new(ip, auth),
        acct: SocketAddr::new(ip, acct),
        secret: Zeroizing::new(secret.into_bytes()),
        nas_identifier: d.nas_identifier,
        retransmit_tries: d.tries,
        retransmit_timeout: d.timeout,
        retransmit_base: d.base,
        preference,
    })
}

/// A required scalar, or an error at the section (`loc`) naming it.
fn need<'n>(
    value: Option<(&'n Node, Loc)>,
    loc: Loc,
    path: &Path,
    errors: &mut Errors,
) -> Option<(&'n Node, &'n str)> {
    match value {
        Some((n, _)) => scalar(n, path, errors).map(|s| (n, s)),
        None => {
            errors.add(loc, path, "missing (required)");
            None
        }
    }
}

fn port(node: &Node, path: &Path, errors: &mut Errors) -> Option<u16> {
    let s = scalar(node, path, errors)?;
    match s.parse::<u16>() {
        Ok(p) if p != 0 => Some(p),
        _ => {
            errors.add(
                node.loc(),
                path,
                format!("bad port \"{s}\" (expected 1-65535)"),
            );
            None
        }
    }
}
