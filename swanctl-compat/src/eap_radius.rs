//! strongswan.conf's `charon.plugins.eap-radius` section as charon's
//! `eap_radius_plugin.c` reads it (`load_configs`), into
//! [`ike::radius::Settings`].
//!
//! - The legacy form, `server` (with `secret`, `port`, `nas_identifier`,
//!   `retransmit_*`): one server named by its address, accounting on
//!   1813; when `server` is set, `servers { }` is not read (as charon).
//! - `servers { <name> { address, secret, auth_port (or port), acct_port,
//!   nas_identifier, preference, retransmit_* } }`, each falling back to
//!   the plugin-wide `port`, `nas_identifier` and `retransmit_*`.
//! - `accounting`, `station_id_with_port`, `eap_start`, `id_prefix`.
//!
//! Unlike charon, which logs and skips a server without an address or
//! secret, iked refuses the file with the setting's place: a RADIUS
//! server that silently is not there fails every login later. Addresses
//! are IP addresses (charon also resolves names; iked does not yet).
//! `source` and `sockets` are read by charon but not here: one socket per
//! server and port, from the address the kernel picks.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ike::radius::{Server, Settings};
use zeroize::Zeroizing;

use crate::strongswan_conf::StrongswanConf;

const SECTION: &str = "plugins.eap-radius";
const AUTH_PORT: u64 = 1812;
const ACCT_PORT: u64 = 1813;

/// The plugin's settings, `None` when it names no server.
pub fn read(conf: &StrongswanConf) -> Result<Option<Settings>, String> {
    let key = |k: &str| format!("{SECTION}.{k}");
    let mut s = Settings::default();
    if let Some((v, _)) = conf.bool(&key("accounting"))? {
        s.accounting = v;
    }
    if let Some((v, _)) = conf.bool(&key("station_id_with_port"))? {
        s.station_id_with_port = v;
    }
    if let Some((v, _)) = conf.bool(&key("eap_start"))? {
        s.eap_start = v;
    }
    if let Some(v) = conf.get(&key("id_prefix")).and_then(|v| v.value) {
        s.id_prefix = v;
    }
    // The plugin-wide values each server falls back to.
    let port = int_or(conf, &key("port"), AUTH_PORT)?;
    let nas = conf
        .get(&key("nas_identifier"))
        .and_then(|v| v.value)
        .unwrap_or_else(|| "strongSwan".to_owned());
    let tries = int_or(conf, &key("retransmit_tries"), 4)?;
    let timeout = double_or(conf, &key("retransmit_timeout"), 2.0)?;
    let base = double_or(conf, &key("retransmit_base"), 1.4)?;

    if let Some(address) = conf.get(&key("server")).filter(|a| a.value.is_some()) {
        let Some(secret) = conf.get(&key("secret")).and_then(|v| v.value) else {
            return Err(address.error("no RADIUS secret defined (eap-radius.secret)"));
        };
        let text = address.value.clone().unwrap_or_default();
        let ip = ip(&text).map_err(|e| address.error(e))?;
        s.servers.push(server(
            text, ip, port, ACCT_PORT, secret, nas, tries, timeout, base, 0,
        )?);
        return Ok(Some(s));
    }
    for name in conf.subsections(&key("servers")) {
        let k = |x: &str| key(&format!("servers.{name}.{x}"));
        let Some(address) = conf.get(&k("address")).filter(|a| a.value.is_some()) else {
            return Err(format!(
                "strongswan.conf: RADIUS server '{name}' has no address ({})",
                k("address")
            ));
        };
        let ip = ip(address.value.as_deref().unwrap_or_default()).map_err(|e| address.error(e))?;
        let Some(secret) = conf.get(&k("secret")).and_then(|v| v.value) else {
            return Err(address.error(format!("RADIUS server '{name}' has no secret")));
        };
        let auth = match conf.int(&k("auth_port"))? {
            Some((v, _)) => v,
            None => int_or(conf, &k("port"), port)?,
        };
        let acct = int_or(conf, &k("acct_port"), ACCT_PORT)?;
        let nas = conf
            .get(&k("nas_identifier"))
            .and_then(|v| v.value)
            .unwrap_or_else(|| nas.clone());
        let tries = int_or(conf, &k("retransmit_tries"), tries)?;
        let timeout = double_or(conf, &k("retransmit_timeout"), timeout)?;
        let base = double_or(conf, &k("retransmit_base"), base)?;
        let preference = int_or(conf, &k("preference"), 0)?;
        s.servers.push(server(
            name.clone(),
            ip,
            auth,
            acct,
            secret,
            nas,
            tries,
            timeout,
            base,
            i32::try_from(preference).map_err(|_| format!("{}: too large", k("preference")))?,
        )?);
    }
    Ok((!s.servers.is_empty()).then_some(s))
}

#[allow(clippy::too_many_arguments)]
fn server(
    name: String,
    ip: IpAddr,
    auth: u64,
    acct: u64,
    secret: String,
    nas_identifier: String,
    tries: u64,
    timeout: f64,
    base: f64,
    preference: i32,
) -> Result<Server, String> {
    let port = |p: u64| {
        u16::try_from(p).map_err(|_| format!("RADIUS server '{name}': port {p} out of range"))
    };
    if !(0.0..=3600.0).contains(&timeout) || !(1.0..=10.0).contains(&base) {
        return Err(format!(
            "RADIUS server '{name}': retransmit_timeout {timeout} (0 to 3600) or retransmit_base {base} (1 to 10) out of range"
        ));
    }
    Ok(Server {
        auth: SocketAddr::new(ip, port(auth)?),
        acct: SocketAddr::new(ip, port(acct)?),
        secret: Zeroizing::new(secret.into_bytes()),
        nas_identifier,
        retransmit_tries: u32::try_from(tries.clamp(1, 100)).unwrap_or(4),
        retransmit_timeout: Duration::from_secs_f64(timeout),
        retransmit_base: base,
        preference,
        name,
    })
}

fn ip(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("\"{text}\" is not an IP address (host names are not resolved yet)"))
}

fn int_or(conf: &StrongswanConf, key: &str, default: u64) -> Result<u64, String> {
    Ok(conf.int(key)?.map_or(default, |(v, _)| v))
}

fn double_or(conf: &StrongswanConf, key: &str, default: f64) -> Result<f64, String> {
    Ok(conf.double(key)?.map_or(default, |(v, _)| v))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::strongswan_conf::parse_str;

    fn read_text(text: &str) -> Result<Option<Settings>, String> {
        read(&parse_str(text, "strongswan.conf").unwrap())
    }

    #[test]
    fn servers_with_fallbacks() {
        let s = read_text(
            "charon {\n plugins {\n  eap-radius {\n   accounting = yes\n   nas_identifier = gw\n   \
             retransmit_tries = 2\n   port = 11812\n   servers {\n    primary {\n     address = 10.0.0.1\n     \
             secret = s1\n     preference = 10\n    }\n    backup {\n     address = 2001:db8::1\n     \
             secret = s2\n     auth_port = 1645\n     acct_port = 1646\n     nas_identifier = gw2\n     \
             retransmit_timeout = 0.5\n    }\n   }\n  }\n }\n}\n",
        )
        .unwrap()
        .unwrap();
        assert!(s.accounting);
        assert!(s.station_id_with_port);
        let [p, b] = &s.servers[..] else { panic!() };
        assert_eq!(p.name, "primary");
        assert_eq!(p.auth, "10.0.0.1:11812".parse().unwrap());
        assert_eq!(p.acct, "10.0.0.1:1813".parse().unwrap());
        assert_eq!((p.preference, p.retransmit_tries), (10, 2));
        assert_eq!(p.nas_identifier, "gw");
        assert_eq!(&**p.secret, b"s1");
        assert_eq!(b.auth, "[2001:db8::1]:1645".parse().unwrap());
        assert_eq!(b.acct, "[2001:db8::1]:1646".parse().unwrap());
        assert_eq!(b.nas_identifier, "gw2");
        assert_eq!(b.retransmit_timeout, Duration::from_millis(500));
        assert_eq!(b.retransmit_base, 1.4);
    }

    #[test]
    fn the_legacy_server_wins_over_servers() {
        let s = read_text(
            "charon-systemd {\n plugins {\n  eap-radius {\n   server = 127.0.0.1\n   secret = x\n   \
             eap_start = yes\n   id_prefix = ike-\n   servers {\n    a {\n     address = 10.0.0.9\n     \
             secret = y\n    }\n   }\n  }\n }\n}\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.servers.len(), 1);
        let srv = &s.servers[0];
        assert_eq!(srv.name, "127.0.0.1");
        assert_eq!(srv.auth, "127.0.0.1:1812".parse().unwrap());
        assert_eq!(srv.nas_identifier, "strongSwan");
        assert_eq!((srv.retransmit_tries, srv.retransmit_base), (4, 1.4));
        assert!(s.eap_start);
        assert_eq!(s.id_prefix, "ike-");
    }

    #[test]
    fn missing_secret_or_address_is_refused_with_its_place() {
        let e =
            read_text("charon {\n plugins {\n  eap-radius {\n   server = 10.0.0.1\n  }\n }\n}\n")
                .unwrap_err();
        assert!(
            e.contains("strongswan.conf:4:") && e.contains("secret"),
            "{e}"
        );
        let e = read_text(
            "charon {\n plugins {\n  eap-radius {\n   servers {\n    a {\n     address = radius.example\n     \
             secret = s\n    }\n   }\n  }\n }\n}\n",
        )
        .unwrap_err();
        assert!(e.contains("not an IP address"), "{e}");
        assert_eq!(
            read_text("charon {\n port = 500\n}\n")
                .unwrap()
                .map(|s| s.servers.len()),
            None
        );
    }
}
