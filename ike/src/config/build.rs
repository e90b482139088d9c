//! The schema: walks the located YAML tree into a [`Config`], collecting
//! every problem. Adding a key is a field in the typed struct plus one
//! `take` below with its parser.

use std::time::Duration;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::tree::{Kind, Loc, Node};
use super::yaml::{self, Errors, Fields, Path, map_entries, scalar, string_list};
use super::{
    Address, AuthMethod, Authority, Child, ChildLifetimes, CloseAction, Config, ConfigError,
    ConfigIssue, ConnPolicy, Connection, CredFile, DpdAction, Identity, IkeLifetimes, IkeSecret,
    KeyKind, KeySecret, LimitKeys, LocalAuth, Mode, NetNames, Place, RemoteAuth, Revocation,
    SendCert, Settings, SigConstraint, SigHash, SigKey, StartAction, TrafficSelector,
};
use crate::crypto::proposal;
use crate::sa::{Fragmentation, MIN_FRAGMENT_SIZE};
use crate::wire::codes::{ProtocolId, TransformType};
use crate::wire::sa::Proposal;

pub(super) fn build(text: &str, file: &str, names: &NetNames) -> Result<Config, ConfigError> {
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            return Err(ConfigError {
                issues: vec![ConfigIssue {
                    file: file.to_owned(),
                    line: e.line,
                    path: "(YAML syntax)".to_owned(),
                    message: e.message,
                }],
            });
        }
    };
    build_tree(&root, &[file], names)
}

/// Walks a located tree (from YAML or another front end); `files[i]` names
/// [`FileId`](super::tree::FileId)`(i)` in messages.
pub(super) fn build_tree<S: AsRef<str>>(
    root: &Node,
    files: &[S],
    names: &NetNames,
) -> Result<Config, ConfigError> {
    let mut errors = Errors::default();
    let mut config = config(root, names, &mut errors);
    if errors.0.is_empty() {
        config.compact();
        // Places were recorded with the file's index (`place`).
        config.name_places(&|index| {
            index
                .parse::<usize>()
                .ok()
                .and_then(|i| files.get(i))
                .map_or_else(|| "(unknown file)".to_owned(), |f| f.as_ref().to_owned())
        });
        return Ok(config);
    }
    let mut problems = errors.0;
    // File order, then line; stable, so one line's problems keep their order.
    problems.sort_by_key(|p| p.loc);
    let issues = problems
        .into_iter()
        .map(|p| ConfigIssue {
            file: usize::try_from(p.loc.file.0)
                .ok()
                .and_then(|i| files.get(i))
                .map_or_else(|| "(unknown file)".to_owned(), |f| f.as_ref().to_owned()),
            line: p.loc.line,
            path: p.path,
            message: p.message,
        })
        .collect();
    Err(ConfigError { issues })
}

fn not_yet(what: &str) -> Option<String> {
    Some(format!("{what} is not supported yet"))
}

fn config(root: &Node, names: &NetNames, errors: &mut Errors) -> Config {
    let mut config = Config::default();
    let Some(mut f) = Fields::new(root, Path::default(), errors) else {
        return config;
    };
    if let Some((node, _)) = f.take("connections") {
        let path = Path::default().join("connections");
        if let Some(entries) = map_entries(node, &path, "connection name", errors) {
            for (name, key, value) in entries {
                let p = path.join(name);
                if let Some(c) = connection(name, key.loc(), value, &p, names, errors) {
                    config.connections.push(c);
                }
            }
        }
    }
    if let Some((node, _)) = f.take("settings") {
        config.settings = settings(node, errors);
    }
    if let Some((node, _)) = f.take("secrets") {
        let path = Path::default().join("secrets");
        if let Some(mut s) = Fields::new(node, path, errors) {
            if let Some((list, _)) = s.take("ike") {
                config.ike_secrets = ike_secrets(list, &s.path.join("ike"), errors);
            }
            // EAP passwords: the same shape (ids, secret).
            if let Some((list, _)) = s.take("eap") {
                config.eap_secrets = ike_secrets(list, &s.path.join("eap"), errors);
            }
            for kind in [
                KeyKind::Private,
                KeyKind::Rsa,
                KeyKind::Ecdsa,
                KeyKind::Pkcs8,
            ] {
                if let Some((list, _)) = s.take(kind.name()) {
                    let p = s.path.join(kind.name());
                    config
                        .key_secrets
                        .extend(key_secrets(kind, list, &p, errors));
                }
            }
            s.finish(errors, |k| match k {
                "xauth" | "ntlm" | "pkcs12" | "token" | "ppk" => {
                    not_yet(&format!("secrets of type \"{k}\""))
                }
                _ => None,
            });
        }
    }
    if let Some((node, _)) = f.take("authorities") {
        let path = Path::default().join("authorities");
        if let Some(entries) = map_entries(node, &path, "authority name", errors) {
            for (name, key, value) in entries {
                if let Some(a) = authority(name, key.loc(), value, &path.join(name), errors) {
                    config.authorities.push(a);
                }
            }
        }
    }
    if let Some((node, _)) = f.take("pools") {
        config.pools = super::pools::pools(node, &Path::default().join("pools"), errors);
    }
    if let Some((node, loc)) = f.take("radius") {
        config.radius = super::radius::radius(node, loc, errors);
    }
    f.finish(errors, |_| None);
    // A connection's pool that `pools` does not define is no error (charon
    // takes such names from its other attribute providers: dhcp, attr-sql,
    // eap-radius): `Config::pool_warnings` says so at start.
    config
}

/// Where a value is, with the file as its index (named in `build_tree`).
fn place(loc: Loc, path: &Path) -> Place {
    Place {
        file: loc.file.0.to_string(),
        line: loc.line,
        path: path.to_string(),
    }
}

/// A list of credential file names (`certs`, `cacerts`, `pubkeys`).
fn cred_files(value: Option<(&Node, Loc)>, path: &Path, errors: &mut Errors) -> Vec<CredFile> {
    let Some((node, key_line)) = value else {
        return Vec::new();
    };
    let Some(items) = string_list(node, path, true, errors) else {
        return Vec::new();
    };
    if items.is_empty() {
        errors.add(
            key_line,
            path,
            "empty: name at least one file, or omit the key",
        );
    }
    let mut out = Vec::new();
    for (item, line, p) in items {
        if item.is_empty() {
            errors.add(line, &p, "empty file name");
        } else {
            out.push(CredFile {
                path: item,
                at: place(line, &p),
            });
        }
    }
    out
}

/// One credential file name (`cacert`, `file`).
fn cred_file(node: &Node, path: &Path, errors: &mut Errors) -> Option<CredFile> {
    let s = scalar(node, path, errors)?;
    if s.is_empty() {
        errors.add(node.loc(), path, "empty file name");
        return None;
    }
    Some(CredFile {
        path: s.to_owned(),
        at: place(node.loc(), path),
    })
}

/// `authorities.<name>`.
fn authority(
    name: &str,
    line: Loc,
    node: &Node,
    path: &Path,
    errors: &mut Errors,
) -> Option<Authority> {
    let before = errors.0.len();
    let mut f = Fields::new(node, path.clone(), errors)?;
    let cacert = f
        .take("cacert")
        .and_then(|(n, _)| cred_file(n, &path.join("cacert"), errors));
    let file = f
        .take("file")
        .and_then(|(n, _)| cred_file(n, &path.join("file"), errors));
    let mut crl_uris = Vec::new();
    if let Some((n, _)) = f.take("crl_uris") {
        let p = path.join("crl_uris");
        // Read, not used yet (docs/configuration.md): any scheme, as
        // strongSwan takes them (ldap:// too).
        for (uri, line, ip) in string_list(n, &p, true, errors).unwrap_or_default() {
            if uri.is_empty() {
                errors.add(line, &ip, "empty CRL URI");
            } else {
                crl_uris.push(uri);
            }
        }
    }
    f.finish(errors, |k| match k {
        "ocsp_uris" | "cert_uri_base" | "handle" | "slot" | "module" => {
            not_yet(&format!("the swanctl key \"{k}\""))
        }
        _ => None,
    });
    let cacert = match (cacert, file) {
        (Some(c), None) | (None, Some(c)) => Some(c),
        (Some(_), Some(f)) => {
            errors.add(
                line_of(&f.at, line),
                path,
                "both cacert and file: give the CA certificate once",
            );
            None
        }
        (None, None) => {
            errors.add(
                line,
                &path.join("cacert"),
                "missing: the authority's CA certificate",
            );
            None
        }
    };
    if errors.0.len() != before {
        return None;
    }
    Some(Authority {
        name: name.to_owned(),
        cacert: cacert?,
        crl_uris,
    })
}

/// The location of a place recorded by [`place`], falling back to `or`.
fn line_of(p: &Place, or: Loc) -> Loc {
    match p.file.parse::<u32>() {
        Ok(file) => Loc {
            file: super::tree::FileId(file),
            line: p.line,
        },
        Err(_) => or,
    }
}

/// The entries of a secrets list (`[{ fields }]`); `None` (an error
/// recorded) when it is not a list, no entries when it is empty.
fn secret_items<'a>(
    node: &'a Node,
    path: &Path,
    errors: &mut Errors,
    fields: &str,
) -> Option<&'a [Node]> {
    match &node.kind {
        Kind::Seq(items) => Some(items),
        Kind::Null => Some(&[]),
        other => {
            errors.add(
                node.loc(),
                path,
                format!(
                    "expected a list of {{ {fields} }}, found {}",
                    other.describe()
                ),
            );
            None
        }
    }
}

/// `secrets.private` (`rsa`, `ecdsa`, `pkcs8`): `[{ file, secret }]`.
fn key_secrets(kind: KeyKind, node: &Node, path: &Path, errors: &mut Errors) -> Vec<KeySecret> {
    let Some(items) = secret_items(node, path, errors, "file, secret") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let before = errors.0.len();
        let Some(mut f) = Fields::new(item, p.clone(), errors) else {
            continue;
        };
        let file = match f.take("file") {
            Some((n, _)) => cred_file(n, &p.join("file"), errors),
            None => {
                errors.add(item.loc(), &p.join("file"), "missing: the key file");
                None
            }
        };
        let secret = match f.take("secret") {
            None => {
                errors.add(
                    item.loc(),
                    &p.join("secret"),
                    "missing: the key file's passphrase",
                );
                None
            }
            Some((n, _)) => {
                let sp = p.join("secret");
                scalar(n, &sp, errors).and_then(|s| match decode_secret(s) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        errors.add(n.loc(), &sp, e);
                        None
                    }
                })
            }
        };
        f.finish(errors, |_| None);
        if errors.0.len() != before {
            continue;
        }
        if let (Some(file), Some(secret)) = (file, secret) {
            out.push(KeySecret { kind, file, secret });
        }
    }
    out
}

/// `settings`: the endpoint-wide settings.
fn settings(node: &Node, errors: &mut Errors) -> Settings {
    let mut out = Settings::default();
    let Some(mut f) = Fields::new(node, Path::default().join("settings"), errors) else {
        return out;
    };
    if let Some((n, _)) = f.take("fragment_size") {
        let p = f.path.join("fragment_size");
        if let Some(s) = scalar(n, &p, errors) {
            match s.parse::<usize>() {
                Ok(v) if v == 0 || (MIN_FRAGMENT_SIZE..=65_535).contains(&v) => {
                    out.fragment_size = Some(v);
                }
                _ => errors.add(
                    n.loc(),
                    &p,
                    format!(
                        "bad value \"{s}\" (expected 0 or octets from {MIN_FRAGMENT_SIZE} to 65535)"
                    ),
                ),
            }
        }
    }
    out.dos = super::dos::settings(&mut f, errors);
    f.finish(errors, |_| None);
    out
}

/// `fragmentation`: strongSwan's `yes` (absent), `accept`, `force`, `no`.
fn fragmentation(value: Option<(&Node, Loc)>, path: &Path, errors: &mut Errors) -> Fragmentation {
    let Some((node, _)) = value else {
        return Fragmentation::Yes;
    };
    let Some(s) = scalar(node, path, errors) else {
        return Fragmentation::Yes;
    };
    match s {
        "yes" => Fragmentation::Yes,
        "accept" => Fragmentation::Accept,
        "force" => Fragmentation::Force,
        "no" => Fragmentation::No,
        _ => {
            errors.add(
                node.loc(),
                path,
                format!("unknown fragmentation \"{s}\" (expected yes, accept, force or no)"),
            );
            Fragmentation::Yes
        }
    }
}

/// swanctl keys of a connection that iked does not read yet.
const CONNECTION_LATER: &[&str] = &[
    "pull",
    "dscp",
    "ppk_id",
    "ppk_required",
    "aggressive",
    "ocsp",
    "close_action",
];

fn connection(
    name: &str,
    line: Loc,
    node: &Node,
    path: &Path,
    names: &NetNames,
    errors: &mut Errors,
) -> Option<Connection> {
    let before = errors.0.len();
    let mut f = Fields::new(node, path.clone(), errors)?;

    let version = match f.take("version") {
        None => 0,
        Some((v, _)) => version(v, &path.join("version"), errors).unwrap_or(0),
    };
    let local_addrs = addrs(f.take("local_addrs"), &path.join("local_addrs"), errors);
    let remote_addrs = addrs(f.take("remote_addrs"), &path.join("remote_addrs"), errors);
    let local_port = port(f.take("local_port"), &path.join("local_port"), errors);
    let remote_port = port(f.take("remote_port"), &path.join("remote_port"), errors);
    let encap = boolean(f.take("encap"), &path.join("encap"), errors);
    // swanctl's default is yes.
    let mobike = match f.take("mobike") {
        None => true,
        some => boolean(some, &path.join("mobike"), errors),
    };
    let proposals = proposals(
        f.take("proposals"),
        ProtocolId::IKE,
        true,
        &path.join("proposals"),
        errors,
    );
    let (local_node, remote_node) = (f.take("local"), f.take("remote"));
    let (local2_node, remote2_node) = (f.take("local2"), f.take("remote2"));
    let lifetimes = ike_lifetimes(&mut f, path, errors);
    let behaviour = super::behaviour::connection(&mut f, path, errors);
    let redirect = super::redirect::connection(&mut f, path, errors);
    let dpd_delay =
        time_value(f.take("dpd_delay"), &path.join("dpd_delay"), errors).unwrap_or_default();
    let dpd_timeout =
        time_value(f.take("dpd_timeout"), &path.join("dpd_timeout"), errors).unwrap_or_default();
    let send_cert = choice(
        &mut f,
        "send_cert",
        path,
        &[
            ("always", SendCert::Always),
            ("ifasked", SendCert::IfAsked),
            ("never", SendCert::Never),
        ],
        errors,
    );
    // swanctl's default is yes.
    let send_certreq = match f.take("send_certreq") {
        None => true,
        some => boolean(some, &path.join("send_certreq"), errors),
    };
    let fragmentation = fragmentation(f.take("fragmentation"), &path.join("fragmentation"), errors);
    let policy = super::policy::conn_policy(&mut f, path, errors);
    let pools = match f.take("pools") {
        Some((node, _)) => string_list(node, &path.join("pools"), true, errors)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, ..)| name)
            .filter(|name| !name.is_empty())
            .collect(),
        None => Vec::new(),
    };
    let vips = vips(f.take("vips"), &path.join("vips"), errors);
    let mut children = Vec::new();
    if let Some((node, _)) = f.take("children") {
        let cpath = path.join("children");
        if let Some(entries) = map_entries(node, &cpath, "child name", errors) {
            for (cname, key, value) in entries {
                if let Some(c) = child(cname, key.loc(), value, &cpath.join(cname), names, errors) {
                    children.push(c);
                }
            }
        }
    }
    // A connection of shunts only (`mode = pass | drop`) never negotiates:
    // charon needs no authentication rounds for it.
    let shunts_only = local_node.is_none()
        && remote_node.is_none()
        && !children.is_empty()
        && children.iter().all(|c| c.child.mode.is_shunt());
    let (local, remote) = if shunts_only {
        (Some(Round::unused()), Some(Round::unused()))
    } else {
        (
            round(local_node, "local", line, path, errors),
            round(remote_node, "remote", line, path, errors),
        )
    };
    let local2 = local2_node
        .and_then(|(node, l)| second_round(node, l, "local", local.as_ref(), path, errors));
    let remote2 = remote2_node
        .and_then(|(node, l)| second_round(node, l, "remote", remote.as_ref(), path, errors));
    let policy = ConnPolicy {
        shunts_only,
        ..policy
    };
    f.finish(errors, |k| {
        if CONNECTION_LATER.contains(&k) {
            not_yet(&format!("the swanctl key \"{k}\""))
        } else if let Some(m) = super::not_planned::not_planned(k) {
            Some(m)
        } else if k.starts_with("local") || k.starts_with("remote") {
            Some(format!(
                "unknown key \"{k}\" (iked does two authentication rounds per side: local and \
                 local2, remote and remote2)"
            ))
        } else {
            None
        }
    });

    // Cross-key checks, on the child's own lines.
    if !remote_addrs.iter().any(Address::is_initiable) {
        for c in children
            .iter()
            .filter(|c| c.child.start_action == StartAction::Start)
        {
            errors.add(
                c.start_action_line,
                &path
                    .join("children")
                    .join(&c.child.name)
                    .join("start_action"),
                format!(
                    "start_action start, but remote_addrs ({}) has no address or name to \
                     initiate to",
                    remote_addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }

    if errors.0.len() != before {
        return None;
    }
    let (Some(local), Some(remote)) = (local, remote) else {
        return None;
    };
    Some(Connection {
        name: name.to_owned(),
        version,
        local_addrs,
        remote_addrs,
        local_port,
        remote_port,
        proposals,
        local: local.into_local(),
        remote: remote.into_remote(),
        local2: local2.map(Round::into_local),
        remote2: remote2.map(Round::into_remote),
        send_cert,
        send_certreq,
        fragmentation,
        policy,
        children: children.into_iter().map(|c| c.child).collect(),
        encap,
        mobike,
        lifetimes,
        behaviour,
        dpd_delay,
        dpd_timeout,
        pools,
        vips,
        redirect,
        line: line.line,
    })
}

/// `vips`: addresses an initiator asks for (`0.0.0.0` or `::` for any).
fn vips(value: Option<(&Node, Loc)>, path: &Path, errors: &mut Errors) -> Vec<std::net::IpAddr> {
    let Some((node, _)) = value else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (item, line, p) in string_list(node, path, true, errors).unwrap_or_default() {
        match item.parse() {
            Ok(a) => out.push(a),
            Err(_) => errors.add(line, &p, format!("'{item}' is not an IP address")),
        }
    }
    out
}

/// A time: seconds, or with an `s`, `m`, `h` or `d` suffix (swanctl.conf's
/// time format).
pub(super) fn time_value(
    value: Option<(&Node, Loc)>,
    path: &Path,
    errors: &mut Errors,
) -> Option<Duration> {
    let (node, _) = value?;
    let s = scalar(node, path, errors)?;
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c @ ('s' | 'm' | 'h' | 'd'))) => (s.get(..i).unwrap_or(""), c),
        _ => (s, 's'),
    };
    let factor: u64 = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => 1,
    };
    let secs = digits
        .parse::<u64>()
        .ok()
        .filter(|_| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.checked_mul(factor));
    match secs {
        Some(n) => Some(Duration::from_secs(n)),
        None => {
            errors.add(
                node.loc(),
                path,
                format!("bad time \"{s}\" (expected seconds, or a number with s, m, h or d)"),
            );
            None
        }
    }
}

/// A byte or packet count: decimal or 0x hex, optionally with a `k`, `m`
/// or `g` suffix (times 1024, 1024², 1024³).
fn count_value(value: Option<(&Node, Loc)>, path: &Path, errors: &mut Errors) -> Option<u64> {
    let (node, _) = value?;
    let s = scalar(node, path, errors)?;
    let (num, factor): (&str, u64) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (s.get(..i).unwrap_or(""), 1 << 10),
        Some((i, 'm' | 'M')) => (s.get(..i).unwrap_or(""), 1 << 20),
        Some((i, 'g' | 'G')) => (s.get(..i).unwrap_or(""), 1 << 30),
        _ => (s, 1),
    };
    let parsed = match num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => num.parse().ok(),
        None => None,
    };
    match parsed.and_then(|n: u64| n.checked_mul(factor)) {
        Some(n) => Some(n),
        None => {
            errors.add(
                node.loc(),
                path,
                format!("bad count \"{s}\" (expected a number, optionally with k, m or g)"),
            );
            None
        }
    }
}

/// `rekey_time`, `reauth_time`, `over_time`, `rand_time` of a connection,
/// with charon's derived defaults ([`IkeLifetimes::with`]). A `rand_time`
/// given not below a non-zero rekey or reauthentication time is refused
/// (charon would subtract more than the time and wrap around).
fn ike_lifetimes(f: &mut Fields<'_>, path: &Path, errors: &mut Errors) -> IkeLifetimes {
    let rekey = time_value(f.take("rekey_time"), &path.join("rekey_time"), errors);
    let reauth = time_value(f.take("reauth_time"), &path.join("reauth_time"), errors);
    let over = time_value(f.take("over_time"), &path.join("over_time"), errors);
    let rand_at = f.take("rand_time");
    let rand_loc = rand_at.map(|(n, _)| n.loc());
    let rand = time_value(rand_at, &path.join("rand_time"), errors);
    let l = IkeLifetimes::with(rekey, reauth, over, rand);
    for (key, t) in [("rekey_time", l.rekey_time), ("reauth_time", l.reauth_time)] {
        if !t.is_zero()
            && l.rand_time >= t
            && let Some(loc) = rand_loc
        {
            errors.add(
                loc,
                &path.join("rand_time"),
                format!("rand_time must be smaller than {key}"),
            );
            break;
        }
    }
    l
}

/// The lifetime keys of a child, with charon's derived defaults
/// ([`ChildLifetimes::with`]). A `life_*` given below a `rekey_*` given is
/// refused (the SA would go before it is rekeyed); a `rand_*` at or above
/// its `rekey_*` is taken, the engine subtracts at most the rekey value,
/// as charon.
fn child_lifetimes(f: &mut Fields<'_>, path: &Path, errors: &mut Errors) -> ChildLifetimes {
    let mut keys =
        |f: &mut Fields<'_>, [rekey_k, life_k, rand_k]: [&'static str; 3], time: bool| {
            let mut value = |k: &'static str| {
                let v = f.take(k);
                let loc = v.map(|(n, _)| n.loc());
                let value = if time {
                    time_value(v, &path.join(k), errors).map(|d| d.as_secs())
                } else {
                    count_value(v, &path.join(k), errors)
                };
                (value, loc)
            };
            let (rekey, _) = value(rekey_k);
            let (life, life_loc) = value(life_k);
            let (rand, _) = value(rand_k);
            if let (Some(r), Some(l), Some(loc)) = (rekey, life, life_loc)
                && r != 0
                && l != 0
                && l < r
            {
                let unit = if time { "s" } else { "" };
                errors.add(
                    loc,
                    &path.join(life_k),
                    format!("{life_k} ({l}{unit}) must not be smaller than {rekey_k} ({r}{unit})"),
                );
            }
            LimitKeys { rekey, life, rand }
        };
    let time = keys(f, ["rekey_time", "life_time", "rand_time"], true);
    let bytes = keys(f, ["rekey_bytes", "life_bytes", "rand_bytes"], false);
    let packets = keys(f, ["rekey_packets", "life_packets", "rand_packets"], false);
    ChildLifetimes::with(time, bytes, packets)
}

fn version(node: &Node, path: &Path, errors: &mut Errors) -> Option<u8> {
    let s = scalar(node, path, errors)?;
    match s {
        "0" => Some(0),
        "2" => Some(2),
        "1" => {
            errors.add(
                node.loc(),
                path,
                "IKEv1 is not supported: iked speaks IKEv2 only (use 2, or 0 for any)",
            );
            None
        }
        other => {
            errors.add(
                node.loc(),
                path,
                format!("unknown IKE version \"{other}\" (expected 2, or 0 for any)"),
            );
            None
        }
    }
}

fn addrs(value: Option<(&Node, Loc)>, path: &Path, errors: &mut Errors) -> Vec<Address> {
    let any = vec![Address::Any(None)];
    let Some((node, _)) = value else {
        return any;
    };
    let Some(items) = string_list(node, path, true, errors) else {
        return any;
    };
    let mut out = Vec::new();
    for (item, line, p) in items {
        match Address::parse(&item) {
            Ok(a) => out.push(a),
            Err(e) => errors.add(line, &p, e),
        }
    }
    if out.is_empty() { any } else { out }
}

/// A yes/no value as strongSwan's settings read it (`yes`, `true`,
/// `enabled`, `1` / `no`, `false`, `disabled`, `0`); absent: no.
pub(super) fn boolean(value: Option<(&Node, Loc)>, path: &Path, errors: &mut Errors) -> bool {
    let Some((node, _)) = value else {
        return false;
    };
    let Some(s) = scalar(node, path, errors) else {
        return false;
    };
    match s {
        "yes" | "true" | "enabled" | "1" => true,
        "no" | "false" | "disabled" | "0" => false,
        _ => {
            errors.add(
                node.loc(),
                path,
                format!("bad value \"{s}\" (expected yes or no)"),
            );
            false
        }
    }
}

fn port(value: Option<(&Node, Loc)>, path: &Path, errors: &mut Errors) -> u16 {
    const DEFAULT: u16 = 500;
    let Some((node, _)) = value else {
        return DEFAULT;
    };
    let Some(s) = scalar(node, path, errors) else {
        return DEFAULT;
    };
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16).ok(),
        None => s.parse::<u16>().ok(),
    };
    match parsed.filter(|&p| p != 0) {
        Some(p) => p,
        None => {
            errors.add(
                node.loc(),
                path,
                format!("bad port \"{s}\" (expected 1-65535)"),
            );
            DEFAULT
        }
    }
}

/// A proposal list for `protocol`; `default_list` is whether an absent key
/// means `[default]` (else no proposals). Each string is checked on its
/// own line: strongSwan's syntax, then that iked implements it.
fn proposals(
    value: Option<(&Node, Loc)>,
    protocol: ProtocolId,
    default_list: bool,
    path: &Path,
    errors: &mut Errors,
) -> Vec<Proposal> {
    let default = || {
        if default_list {
            proposal::default_proposals(protocol)
        } else {
            Vec::new()
        }
    };
    let Some((node, key_line)) = value else {
        return default();
    };
    let Some(items) = string_list(node, path, true, errors) else {
        return Vec::new();
    };
    if items.is_empty() {
        errors.add(key_line, path, "empty list: omit the key for the default");
        return Vec::new();
    }
    let mut ok = true;
    for (item, line, p) in &items {
        match proposal::parse(protocol, item) {
            Err(e) => {
                errors.add(*line, p, e.to_string());
                ok = false;
            }
            Ok(parsed) => {
                for prop in &parsed {
                    let missing = proposal::unsupported(prop);
                    if !missing.is_empty() {
                        let names: Vec<String> = missing.iter().map(transform_name).collect();
                        errors.add(
                            *line,
                            p,
                            format!(
                                "{protocol} proposal '{item}' uses algorithms iked does not \
                                 implement: {}",
                                names.join(", ")
                            ),
                        );
                        ok = false;
                    }
                }
            }
        }
    }
    if !ok {
        return Vec::new();
    }
    let strings: Vec<&str> = items.iter().map(|(s, _, _)| s.as_str()).collect();
    match proposal::parse_list(protocol, &strings) {
        Ok(list) => list,
        Err(e) => {
            errors.add(key_line, path, e.to_string());
            Vec::new()
        }
    }
}

fn transform_name(t: &crate::wire::sa::Transform) -> String {
    let base = proposal::keywords::strongswan_name(t.transform_type, t.id)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}({})", t.transform_type, t.id));
    match t.key_length {
        Some(k) if t.transform_type == TransformType::ENCR && k != 0 => format!("{base}_{k}"),
        _ => base,
    }
}

/// `local` / `remote`, reporting it missing at the connection's line.
fn round(
    value: Option<(&Node, Loc)>,
    side: &str,
    conn_line: Loc,
    path: &Path,
    errors: &mut Errors,
) -> Option<Round> {
    let path = path.join(side);
    match value {
        Some((node, line)) => auth_round(node, line, side == "local", &path, errors),
        None => {
            errors.add(
                conn_line,
                &path,
                format!(
                    "missing: iked needs the {side} authentication round ({side}: {{ auth: psk }} \
                     or {side}: {{ auth: pubkey, ... }})"
                ),
            );
            None
        }
    }
}

struct Round {
    auth: AuthMethod,
    id: Option<Identity>,
    certs: Vec<CredFile>,
    cacerts: Vec<CredFile>,
    pubkeys: Vec<CredFile>,
    revocation: Revocation,
    eap_id: Option<Identity>,
    aaa_id: Option<Identity>,
}

impl Round {
    fn into_local(self) -> LocalAuth {
        LocalAuth {
            auth: self.auth,
            id: self.id.filter(|id| *id != Identity::Any),
            certs: self.certs,
            pubkeys: self.pubkeys,
            eap_id: self.eap_id,
            aaa_id: self.aaa_id,
        }
    }

    fn into_remote(self) -> RemoteAuth {
        RemoteAuth {
            auth: self.auth,
            id: self.id.unwrap_or(Identity::Any),
            certs: self.certs,
            cacerts: self.cacerts,
            pubkeys: self.pubkeys,
            revocation: self.revocation,
            eap_id: self.eap_id,
            aaa_id: self.aaa_id,
        }
    }

    /// The round of a connection that never authenticates (shunts only).
    fn unused() -> Self {
        Round {
            auth: AuthMethod::Pubkey(Vec::new()),
            id: None,
            certs: Vec::new(),
            cacerts: Vec::new(),
            pubkeys: Vec::new(),
            revocation: Revocation::default(),
            eap_id: None,
            aaa_id: None,
        }
    }
}

/// swanctl keys of local/remote that iked does not read yet.
const ROUND_LATER: &[&str] = &["round", "xauth_id", "cert_policy", "ca_id", "ppk_id"];

fn auth_round(
    node: &Node,
    line: Loc,
    local: bool,
    path: &Path,
    errors: &mut Errors,
) -> Option<Round> {
    let before = errors.0.len();
    let mut f = Fields::new(node, path.clone(), errors)?;
    // swanctl's default is pubkey.
    let auth_at = f.take("auth");
    let auth = match auth_at {
        None => Some(AuthMethod::Pubkey(Vec::new())),
        Some((n, _)) => auth_method(n, &path.join("auth"), errors),
    };
    if let (false, Some(AuthMethod::Eap(crate::eap::MethodName::Any)), Some((n, _))) =
        (local, &auth, auth_at)
    {
        errors.add(
            n.loc(),
            &path.join("auth"),
            "auth eap (any method) is a client's, for local: a gateway names its method \
             (eap-mschapv2, eap-md5, eap-tls, eap-radius, eap-dynamic)",
        );
    }
    let id = f.take("id").and_then(|(n, _)| {
        let p = path.join("id");
        let s = scalar(n, &p, errors)?;
        match Identity::parse(s) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.add(n.loc(), &p, e.to_string());
                None
            }
        }
    });
    let eap_id = f.take("eap_id").and_then(|(n, _)| {
        let p = path.join("eap_id");
        let s = scalar(n, &p, errors)?;
        if !matches!(auth, Some(AuthMethod::Eap(_))) {
            errors.add(
                n.loc(),
                &p,
                "eap_id needs auth eap-mschapv2 (or another eap-*)",
            );
            return None;
        }
        match Identity::parse(s) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.add(n.loc(), &p, e.to_string());
                None
            }
        }
    });
    let aaa_id = f.take("aaa_id").and_then(|(n, _)| {
        let p = path.join("aaa_id");
        let s = scalar(n, &p, errors)?;
        // An auth that did not parse has its own error.
        if matches!(&auth, Some(a) if !matches!(a, AuthMethod::Eap(_))) {
            errors.add(
                n.loc(),
                &p,
                "aaa_id needs auth eap-* (the EAP server's identity)",
            );
            return None;
        }
        match Identity::parse(s) {
            Ok(Identity::Any) => None,
            Ok(id) => Some(id),
            Err(e) => {
                errors.add(n.loc(), &p, e.to_string());
                None
            }
        }
    });
    let certs_at = f.take("certs");
    let certs = cred_files(certs_at, &path.join("certs"), errors);
    let pubkeys_at = f.take("pubkeys");
    let pubkeys = cred_files(pubkeys_at, &path.join("pubkeys"), errors);
    let (mut cacerts, mut revocation) = (Vec::new(), Revocation::Relaxed);
    let mut remote_keys = Vec::new();
    remote_keys.extend(pubkeys_at.map(|(_, l)| ("pubkeys", l)));
    if !local {
        let cacerts_at = f.take("cacerts");
        cacerts = cred_files(cacerts_at, &path.join("cacerts"), errors);
        revocation = choice(
            &mut f,
            "revocation",
            path,
            &[
                ("strict", Revocation::Strict),
                ("ifuri", Revocation::IfUri),
                ("relaxed", Revocation::Relaxed),
            ],
            errors,
        );
        remote_keys.extend(cacerts_at.map(|(_, l)| ("cacerts", l)));
    }
    remote_keys.extend(certs_at.map(|(_, l)| ("certs", l)));
    f.finish(errors, |k| {
        if ROUND_LATER.contains(&k) || k.starts_with("cert") {
            not_yet(&format!("the swanctl key \"{k}\""))
        } else if let Some(m) = super::not_planned::not_planned(k) {
            Some(m)
        } else if local && matches!(k, "cacerts" | "revocation") {
            Some(format!(
                "\"{k}\" belongs in remote: it says how the peer's certificate is checked"
            ))
        } else {
            None
        }
    });
    // Certificate keys with auth psk would be silently unused.
    if let Some(AuthMethod::Psk) = &auth {
        for (key, at) in remote_keys {
            errors.add(
                at,
                &path.join(key),
                format!("{key} needs auth pubkey (or rsa, ecdsa, ...), not psk"),
            );
        }
    }
    // Without certs (or a raw public key), the certificate is found by
    // local.id among the loaded ones (as charon does), so one is needed.
    if let Some(AuthMethod::Pubkey(_)) = &auth
        && local
        && certs.is_empty()
        && pubkeys.is_empty()
        && id.as_ref().is_none_or(|i| *i == Identity::Any)
    {
        errors.add(
            auth_at.map_or(line, |(n, _)| n.loc()),
            &path.join("certs"),
            if auth_at.is_none() {
                "missing: without auth (swanctl's default pubkey), our certificate: \
                 certs: [file], or an id to find it by (or auth: psk)"
            } else {
                "missing: auth pubkey needs our certificate: certs: [file], or an id to find \
                 it by"
            },
        );
    }
    if errors.0.len() != before {
        return None;
    }
    Some(Round {
        auth: auth?,
        id,
        certs,
        cacerts,
        pubkeys,
        revocation,
        eap_id,
        aaa_id,
    })
}

/// `local2` / `remote2` (`side` is `local` or `remote`): a second round,
/// after `first` (`None`: the first did not build, its error is out).
/// A second round after an EAP one is refused: iked runs EAP in the last
/// round only.
fn second_round(
    node: &Node,
    line: Loc,
    side: &str,
    first: Option<&Round>,
    path: &Path,
    errors: &mut Errors,
) -> Option<Round> {
    let key = format!("{side}2");
    let round = auth_round(node, line, side == "local", &path.join(&key), errors)?;
    if let Some(Round {
        auth: AuthMethod::Eap(m),
        ..
    }) = first
    {
        errors.add(
            line,
            &path.join(&key),
            format!(
                "a second round after {side}.auth = {m} is not supported yet (iked runs EAP in \
                 the last round: a certificate or psk round first, then EAP)"
            ),
        );
        return None;
    }
    Some(round)
}

/// `auth`: `psk`, or swanctl's public key constraints: dash-separated
/// tokens, each a key type (`pubkey`, `rsa`, `rsa/pss`, `ecdsa`,
/// `ed25519`), a key size after a key type (`rsa-2048`), or a hash for the
/// key type before it (`sha1`, `sha256`, `sha384`, `sha512`, `identity`);
/// strongSwan's `ike:` prefix on a token is accepted (iked checks only the
/// IKE signature against these).
fn auth_method(node: &Node, path: &Path, errors: &mut Errors) -> Option<AuthMethod> {
    let s = scalar(node, path, errors)?;
    let unsupported = |errors: &mut Errors| {
        errors.add(
            node.loc(),
            path,
            format!(
                "auth \"{s}\" is not supported yet (iked supports psk, pubkey/rsa/ecdsa/ed25519 \
                 and {})",
                crate::eap::MethodName::available_names()
            ),
        );
        None
    };
    if s == "psk" {
        return Some(AuthMethod::Psk);
    }
    if let Some(m) = crate::eap::MethodName::parse(s).filter(|m| m.available()) {
        return Some(AuthMethod::Eap(m));
    }
    if s.starts_with("eap") || s.starts_with("xauth") || s == "never" {
        return unsupported(errors);
    }
    let mut out: Vec<SigConstraint> = Vec::new();
    let mut current: Option<SigKey> = None;
    // Whether the current key type got a hash (else it allows any).
    let mut hashed = false;
    let mut bits: Option<u32> = None;
    let flush = |out: &mut Vec<SigConstraint>, key: Option<SigKey>, hashed: bool, bits| {
        if let (Some(key), false) = (key, hashed) {
            out.push(SigConstraint {
                key,
                hash: None,
                min_bits: bits,
            });
        }
    };
    for token in s.split('-') {
        let t = token.strip_prefix("ike:").unwrap_or(token);
        let key = match t {
            "pubkey" => Some(SigKey::Any),
            "rsa" => Some(SigKey::Rsa),
            "rsa/pss" => Some(SigKey::RsaPss),
            "ecdsa" => Some(SigKey::Ecdsa),
            "ed25519" => Some(SigKey::Ed25519),
            "ed448" | "bliss" => return unsupported(errors),
            _ => None,
        };
        if let Some(k) = key {
            flush(&mut out, current, hashed, bits);
            current = Some(k);
            hashed = false;
            bits = None;
            continue;
        }
        let Some(key) = current else {
            errors.add(
                node.loc(),
                path,
                format!(
                    "unknown auth method \"{s}\" (expected psk, or pubkey, rsa, rsa/pss, ecdsa, \
                     ed25519 with optional -sha256 style suffixes)"
                ),
            );
            return None;
        };
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            bits = t.parse().ok();
            continue;
        }
        let hash = match t {
            "sha1" => SigHash::Sha1,
            "sha256" => SigHash::Sha256,
            "sha384" => SigHash::Sha384,
            "sha512" => SigHash::Sha512,
            "identity" => SigHash::Identity,
            "md5" | "sha224" => {
                errors.add(
                    node.loc(),
                    path,
                    format!("auth \"{s}\": the hash {t} is not supported (sha1, sha256, sha384, sha512, identity)"),
                );
                return None;
            }
            _ => {
                errors.add(
                    node.loc(),
                    path,
                    format!(
                        "auth \"{s}\": unknown token \"{t}\" (a key type, a key size, or sha1, \
                         sha256, sha384, sha512, identity)"
                    ),
                );
                return None;
            }
        };
        hashed = true;
        out.push(SigConstraint {
            key,
            hash: Some(hash),
            min_bits: bits,
        });
    }
    flush(&mut out, current, hashed, bits);
    // Plain `pubkey`: no constraint at all.
    if out
        == [SigConstraint {
            key: SigKey::Any,
            hash: None,
            min_bits: None,
        }]
    {
        out.clear();
    }
    Some(AuthMethod::Pubkey(out))
}

/// A child and where its start_action was set (for cross-key messages).
struct ChildAt {
    child: Child,
    start_action_line: Loc,
}

/// swanctl keys of a child that iked does not read yet.
const CHILD_LATER: &[&str] = &["sha256_96", "icmp"];

fn child(
    name: &str,
    line: Loc,
    node: &Node,
    path: &Path,
    names: &NetNames,
    errors: &mut Errors,
) -> Option<ChildAt> {
    let before = errors.0.len();
    let mut f = Fields::new(node, path.clone(), errors)?;
    let local_ts = selectors(f.take("local_ts"), &path.join("local_ts"), names, errors);
    let remote_ts = selectors(f.take("remote_ts"), &path.join("remote_ts"), names, errors);
    let esp_proposals = proposals(
        f.take("esp_proposals"),
        ProtocolId::ESP,
        true,
        &path.join("esp_proposals"),
        errors,
    );
    let ah_proposals = proposals(
        f.take("ah_proposals"),
        ProtocolId::AH,
        false,
        &path.join("ah_proposals"),
        errors,
    );
    let lifetimes = child_lifetimes(&mut f, path, errors);
    let mode = match f.take("mode") {
        None => Mode::Tunnel,
        Some((n, _)) => {
            let p = path.join("mode");
            match scalar(n, &p, errors) {
                Some("tunnel") => Mode::Tunnel,
                Some("transport") => Mode::Transport,
                Some("pass") => Mode::Pass,
                Some("drop") => Mode::Drop,
                Some(s @ ("beet" | "transport_proxy" | "iptfs")) => {
                    errors.add(n.loc(), &p, format!("mode \"{s}\" is not supported yet"));
                    Mode::Tunnel
                }
                Some(s) => {
                    errors.add(
                        n.loc(),
                        &p,
                        format!("unknown mode \"{s}\" (expected tunnel, transport, pass or drop)"),
                    );
                    Mode::Tunnel
                }
                None => Mode::Tunnel,
            }
        }
    };
    let (start_action, start_action_line) = match f.take("start_action") {
        None => (StartAction::None, line),
        Some((n, _)) => {
            let p = path.join("start_action");
            let a = match scalar(n, &p, errors) {
                Some("none") => StartAction::None,
                Some("start") => StartAction::Start,
                Some("trap") => StartAction::Trap,
                Some(s) if s.split('|').all(|x| matches!(x, "trap" | "start" | "none")) => {
                    errors.add(
                        n.loc(),
                        &p,
                        format!(
                            "start_action \"{s}\" is not supported yet (one of none, start, trap)"
                        ),
                    );
                    StartAction::None
                }
                Some(s) => {
                    errors.add(
                        n.loc(),
                        &p,
                        format!("unknown start_action \"{s}\" (expected none, start or trap)"),
                    );
                    StartAction::None
                }
                None => StartAction::None,
            };
            (a, n.loc())
        }
    };
    let close_action = choice(
        &mut f,
        "close_action",
        path,
        &[
            ("none", CloseAction::None),
            ("trap", CloseAction::Trap),
            ("start", CloseAction::Start),
            // strongSwan's older names.
            ("clear", CloseAction::None),
            ("hold", CloseAction::Trap),
            ("restart", CloseAction::Start),
        ],
        errors,
    );
    let dpd_action = choice(
        &mut f,
        "dpd_action",
        path,
        &[
            ("clear", DpdAction::Clear),
            ("trap", DpdAction::Trap),
            ("restart", DpdAction::Restart),
            // strongSwan's older names.
            ("none", DpdAction::Clear),
            ("hold", DpdAction::Trap),
            ("start", DpdAction::Restart),
        ],
        errors,
    );
    let updown = super::updown::updown(&mut f, path, errors);
    let sa_opts = super::saopt::child_sa_opts(&mut f, path, errors);
    let policy = super::policy::child_policy(&mut f, path, errors);
    let inactivity = super::inactivity::inactivity(&mut f, path, errors);
    let unique =
        |m: Option<super::MarkCfg>| m.is_some_and(|m| !matches!(m.value, super::IdValue::Fixed(_)));
    if mode.is_shunt() && (unique(policy.mark_in) || unique(policy.mark_out)) {
        errors.add(
            line,
            path,
            "a shunt's marks are fixed values: %unique has no tunnel to be unique to",
        );
    }
    // A cross-key check: only between keys that are themselves valid.
    if mode.is_shunt() && start_action != StartAction::Trap && errors.0.len() == before {
        errors.add(
            start_action_line,
            &path.join("mode"),
            format!(
                "a {} shunt is installed with start_action = trap (as charon does); set it",
                mode.to_string().to_lowercase()
            ),
        );
    }
    f.finish(errors, |k| {
        if CHILD_LATER.contains(&k) {
            not_yet(&format!("the swanctl key \"{k}\""))
        } else {
            super::not_planned::not_planned(k)
        }
    });
    if errors.0.len() != before {
        return None;
    }
    Some(ChildAt {
        child: Child {
            name: name.to_owned(),
            local_ts,
            remote_ts,
            esp_proposals,
            ah_proposals,
            mode,
            start_action,
            lifetimes,
            close_action,
            dpd_action,
            updown,
            sa_opts,
            policy,
            inactivity,
            line: line.line,
        },
        start_action_line,
    })
}

/// A key whose value is one of `options` (the first ones are the names
/// listed in messages); the type's default when absent or invalid.
fn choice<T: Copy + Default>(
    f: &mut Fields<'_>,
    key: &'static str,
    path: &Path,
    options: &[(&str, T)],
    errors: &mut Errors,
) -> T {
    let Some((n, _)) = f.take(key) else {
        return T::default();
    };
    let p = path.join(key);
    let Some(s) = scalar(n, &p, errors) else {
        return T::default();
    };
    match options.iter().find(|(name, _)| *name == s) {
        Some((_, v)) => *v,
        None => {
            let names: Vec<&str> = options.iter().take(3).map(|(n, _)| *n).collect();
            errors.add(
                n.loc(),
                &p,
                format!("unknown {key} \"{s}\" (expected {})", names.join(", ")),
            );
            T::default()
        }
    }
}

fn selectors(
    value: Option<(&Node, Loc)>,
    path: &Path,
    names: &NetNames,
    errors: &mut Errors,
) -> Vec<TrafficSelector> {
    let Some((node, key_line)) = value else {
        return vec![TrafficSelector::DYNAMIC];
    };
    let Some(items) = string_list(node, path, true, errors) else {
        return Vec::new();
    };
    if items.is_empty() || node.kind == Kind::Null {
        errors.add(
            key_line,
            path,
            "no traffic selectors: list at least one, or omit the key for dynamic",
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (item, line, p) in items {
        match TrafficSelector::parse_with(&item, names) {
            Ok(t) => out.push(t),
            Err(e) => errors.add(line, &p, format!("bad traffic selector {e}")),
        }
    }
    out
}

fn ike_secrets(node: &Node, path: &Path, errors: &mut Errors) -> Vec<IkeSecret> {
    let Some(items) = secret_items(node, path, errors, "ids, secret") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let before = errors.0.len();
        let Some(mut f) = Fields::new(item, p.clone(), errors) else {
            continue;
        };
        let mut ids = Vec::new();
        if let Some((n, _)) = f.take("ids") {
            let ip = p.join("ids");
            for (s, line, ipath) in string_list(n, &ip, false, errors).unwrap_or_default() {
                match Identity::parse(&s) {
                    Ok(id) => ids.push(id),
                    Err(e) => errors.add(line, &ipath, e.to_string()),
                }
            }
        }
        let secret = match f.take("secret") {
            None => {
                errors.add(
                    item.loc(),
                    &p.join("secret"),
                    "missing: the entry has no secret",
                );
                None
            }
            Some((n, _)) => {
                let sp = p.join("secret");
                scalar(n, &sp, errors).and_then(|s| match decode_secret(s) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        errors.add(n.loc(), &sp, e);
                        None
                    }
                })
            }
        };
        f.finish(errors, |k| {
            (k == "id" || k.starts_with("id"))
                .then(|| format!("unknown key \"{k}\": iked lists identities as ids: [a, b]"))
        });
        if errors.0.len() != before {
            continue;
        }
        if let Some(secret) = secret {
            // An %any in the list makes the others moot only for matching
            // strength; keep them as written.
            out.push(IkeSecret {
                ids,
                secret,
                line: item.line,
            });
        }
    }
    out
}

/// swanctl's secret encodings: `0x` hex, `0s` base64, else the text.
fn decode_secret(s: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let bytes = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        hex::decode(h).map_err(|e| format!("bad hex secret: {e}"))?
    } else if let Some(b) = s.strip_prefix("0s").or_else(|| s.strip_prefix("0S")) {
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| format!("bad base64 secret: {e}"))?
    } else {
        s.as_bytes().to_vec()
    };
    if bytes.is_empty() {
        return Err("empty secret".into());
    }
    Ok(Zeroizing::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_encodings() {
        assert_eq!(*decode_secret("0x0102ff").unwrap(), vec![1, 2, 0xff]);
        assert_eq!(*decode_secret("0XABcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(*decode_secret("0sAQL/").unwrap(), vec![1, 2, 0xff]);
        assert_eq!(
            *decode_secret("plain text").unwrap(),
            b"plain text".to_vec()
        );
        assert_eq!(*decode_secret("0y12").unwrap(), b"0y12".to_vec());
        for bad in ["0x123", "0xzz", "0s!!", "0sAQL", "", "0x", "0s"] {
            assert!(decode_secret(bad).is_err(), "{bad:?}");
        }
    }
}
