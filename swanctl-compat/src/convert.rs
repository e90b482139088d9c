//! Resolved swanctl.conf sections into the YAML-shaped located tree that
//! `ike::config` validates. Where swanctl's shape differs:
//!
//! - `local<suffix>` / `remote<suffix>` sections are authentication rounds
//!   (swanctl `load_conns.c`), in file order; iked supports two per side
//!   (RFC 4739), so the first of each becomes `local` / `remote`, the
//!   second `local2` / `remote2`, and a third is an error.
//! - `secrets { ike<suffix> { id<suffix> = ...  secret = ... } }` becomes
//!   `secrets.ike: [{ ids: [...], secret }]`: every key starting with `id`
//!   is an owner identity (swanctl `load_creds.c`); `eap<suffix>` the
//!   same as `secrets.eap`.
//!   `private<suffix> { file, secret }` (and `rsa`, `ecdsa`, `pkcs8`)
//!   becomes `secrets.private: [{ file, secret }]`. Other secret types
//!   (`xauth`, `ntlm`, `ppk`, `pkcs12`, `token`) are "not supported
//!   yet".
//! - Credential file names are relative to swanctl's folders beside the
//!   loaded file: `certs = gw.pem` becomes `x509/gw.pem` (`cacerts` and
//!   an authority's `cacert`: `x509ca/`, `pubkeys`: `pubkey/`, a private
//!   key secret's `file`: `private/`, `rsa/`, `ecdsa/`, `pkcs8/`), which is
//!   what the YAML means by a path relative to the configuration file.
//!   Absolute paths stay.
//! - Top-level sections that are only referenced (templates) are not
//!   configuration and are left out; every other unknown section or key
//!   reaches the schema, which reports it.
//! - An empty assignment (`key =`) means "not set" and is left out.
//!
//! Lists stay comma-separated strings, which the schema splits.
//!
//! Messages from the schema name YAML-shaped paths; [`Converted::rewrites`]
//! maps them back to the swanctl names (`secrets.ike[0].ids[1]` →
//! `secrets.ike-moon.id-2`, `connections.c.local` → `connections.c.local-psk`).

use ike::config::tree::{Kind, Loc, Node};

use super::parse::{Entry, Kv, Problem, Section};

/// swanctl's secret types, matched as name prefixes in this order
/// (swanctl `load_creds.c`).
const SECRET_TYPES: &[&str] = &[
    "eap", "xauth", "ntlm", "ike", "ppk", "private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12",
    "token",
];

/// Top-level sections swanctl reads.
const SWANCTL_SECTIONS: &[&str] = &["connections", "secrets", "pools", "authorities"];

#[derive(Debug)]
pub(crate) struct Converted {
    pub root: Node,
    /// (YAML-shaped path prefix, swanctl path prefix), most specific first.
    pub rewrites: Vec<(String, String)>,
}

pub(crate) fn convert(
    root: &Section,
    templates: &[String],
    problems: &mut Vec<Problem>,
) -> Converted {
    let mut c = Converter {
        rewrites: Vec::new(),
        problems,
    };
    let mut entries = Vec::new();
    for e in root.entries() {
        match e {
            Entry::Kv(kv) => c.push_kv(&mut entries, kv),
            Entry::Section(s) => {
                let key = scalar(s.loc, &s.name);
                match s.name.as_str() {
                    "connections" => entries.push((key, c.connections(s))),
                    "secrets" => entries.push((key, c.secrets(s))),
                    "authorities" => entries.push((key, authorities(s))),
                    name if templates.iter().any(|t| t == name)
                        && !SWANCTL_SECTIONS.contains(&name) => {}
                    _ => entries.push((key, generic(s))),
                }
            }
        }
    }
    let mut rewrites = c.rewrites;
    // Longest first, so `ike[0].ids[1]` is rewritten before `ike[0]`.
    rewrites.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    Converted {
        root: Node::new(root.loc.file, root.loc.line.max(1), Kind::Map(entries)),
        rewrites,
    }
}

fn scalar(loc: Loc, s: &str) -> Node {
    Node::new(loc.file, loc.line, Kind::Scalar(s.to_owned()))
}

fn map(loc: Loc, entries: Vec<(Node, Node)>) -> Node {
    Node::new(loc.file, loc.line, Kind::Map(entries))
}

/// A section as a mapping, as written.
fn generic(s: &Section) -> Node {
    let mut entries = Vec::new();
    for e in s.entries() {
        match e {
            Entry::Kv(kv) => {
                if let Some(v) = &kv.value {
                    entries.push((scalar(kv.key_loc, &kv.key), scalar(kv.value_loc, v)));
                }
            }
            Entry::Section(sub) => entries.push((scalar(sub.loc, &sub.name), generic(sub))),
        }
    }
    map(s.loc, entries)
}

struct Converter<'p> {
    rewrites: Vec<(String, String)>,
    problems: &'p mut Vec<Problem>,
}

impl Converter<'_> {
    fn push_kv(&mut self, entries: &mut Vec<(Node, Node)>, kv: &Kv) {
        if let Some(v) = &kv.value {
            entries.push((scalar(kv.key_loc, &kv.key), scalar(kv.value_loc, v)));
        }
    }

    fn connections(&mut self, s: &Section) -> Node {
        let mut entries = Vec::new();
        for e in s.entries() {
            match e {
                Entry::Kv(kv) => self.push_kv(&mut entries, kv),
                Entry::Section(conn) => {
                    entries.push((scalar(conn.loc, &conn.name), self.connection(conn)));
                }
            }
        }
        map(s.loc, entries)
    }

    fn connection(&mut self, s: &Section) -> Node {
        let path = format!("connections.{}", s.name);
        let mut entries = Vec::new();
        // The rounds of each side so far, in file order (swanctl's order
        // without `round` keys, which iked does not read).
        let mut rounds: [Vec<&Section>; 2] = [Vec::new(), Vec::new()];
        for e in s.entries() {
            match e {
                Entry::Kv(kv) => self.push_kv(&mut entries, kv),
                Entry::Section(sub) => {
                    let side = ["local", "remote"]
                        .into_iter()
                        .position(|p| sub.name.starts_with(p));
                    let Some(side) = side else {
                        entries.push((scalar(sub.loc, &sub.name), generic(sub)));
                        continue;
                    };
                    let word = if side == 0 { "local" } else { "remote" };
                    let Some(done) = rounds.get_mut(side) else {
                        continue;
                    };
                    let key = match done.len() {
                        0 => word.to_owned(),
                        1 => format!("{word}2"),
                        _ => {
                            self.problems.push(Problem {
                                loc: sub.loc,
                                path: format!("{path}.{}", sub.name),
                                message: format!(
                                    "a third {word} authentication round (after \"{}\") is not \
                                     supported yet: iked does two rounds per side",
                                    done.iter()
                                        .map(|r| r.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join("\", \"")
                                ),
                            });
                            continue;
                        }
                    };
                    done.push(sub);
                    if sub.name != key {
                        self.rewrites
                            .push((format!("{path}.{key}"), format!("{path}.{}", sub.name)));
                    }
                    entries.push((scalar(sub.loc, &key), auth_round(sub)));
                }
            }
        }
        map(s.loc, entries)
    }

    fn secrets(&mut self, s: &Section) -> Node {
        let mut entries = Vec::new();
        // Each list type's items and the index of its entry.
        let mut lists: Vec<(&'static str, usize, Vec<Node>)> = Vec::new();
        for e in s.entries() {
            let sec = match e {
                Entry::Kv(kv) => {
                    self.push_kv(&mut entries, kv);
                    continue;
                }
                Entry::Section(sec) => sec,
            };
            let path = format!("secrets.{}", sec.name);
            let Some(&t) = SECRET_TYPES.iter().find(|t| sec.name.starts_with(**t)) else {
                self.problems.push(Problem {
                    loc: sec.loc,
                    path,
                    message: format!(
                        "unknown secret type: a secret's section name starts with its type \
                         ({})",
                        SECRET_TYPES.join(", ")
                    ),
                });
                continue;
            };
            if !matches!(t, "ike" | "eap" | "private" | "rsa" | "ecdsa" | "pkcs8") {
                self.problems.push(Problem {
                    loc: sec.loc,
                    path,
                    message: format!("secrets of type \"{t}\" are not supported yet"),
                });
                continue;
            }
            let list = match lists.iter().position(|(n, ..)| *n == t) {
                Some(i) => i,
                None => {
                    // Placeholder, replaced by the list below.
                    entries.push((scalar(sec.loc, t), Node::new(sec.loc.file, 0, Kind::Null)));
                    lists.push((t, entries.len().saturating_sub(1), Vec::new()));
                    lists.len().saturating_sub(1)
                }
            };
            let Some((_, _, items)) = lists.get_mut(list) else {
                continue;
            };
            let index = items.len();
            let node = if matches!(t, "ike" | "eap") {
                self.ike_secret(t, sec, index, &path)
            } else {
                self.rewrites
                    .push((format!("secrets.{t}[{index}]"), path.clone()));
                key_secret(sec, t)
            };
            if let Some((_, _, items)) = lists.get_mut(list) {
                items.push(node);
            }
        }
        for (_, at, items) in lists {
            if let Some(slot) = entries.get_mut(at) {
                let loc = slot.0.loc();
                slot.1 = Node::new(loc.file, loc.line, Kind::Seq(items));
            }
        }
        map(s.loc, entries)
    }

    /// One `ike<suffix>` (or `eap<suffix>`, `t`) section as `{ ids:
    /// [...], secret, ... }`.
    fn ike_secret(&mut self, t: &str, s: &Section, index: usize, path: &str) -> Node {
        let yaml_path = format!("secrets.{t}[{index}]");
        self.rewrites.push((yaml_path.clone(), path.to_owned()));
        let mut ids = Vec::new();
        let mut ids_at: Option<(usize, Loc)> = None;
        let mut entries = Vec::new();
        for e in s.entries() {
            match e {
                Entry::Kv(kv) if kv.key.starts_with("id") => {
                    let Some(v) = &kv.value else { continue };
                    if ids_at.is_none() {
                        ids_at = Some((entries.len(), kv.key_loc));
                        entries.push((
                            scalar(kv.key_loc, "ids"),
                            Node::new(kv.key_loc.file, 0, Kind::Null),
                        ));
                    }
                    self.rewrites.push((
                        format!("{yaml_path}.ids[{}]", ids.len()),
                        format!("{path}.{}", kv.key),
                    ));
                    ids.push(scalar(kv.value_loc, v));
                }
                Entry::Kv(kv) => self.push_kv(&mut entries, kv),
                Entry::Section(sub) => entries.push((scalar(sub.loc, &sub.name), generic(sub))),
            }
        }
        if let Some((i, loc)) = ids_at
            && let Some(slot) = entries.get_mut(i)
        {
            slot.1 = Node::new(loc.file, loc.line, Kind::Seq(ids));
        }
        map(s.loc, entries)
    }
}

/// `value` (a comma-separated list of file names) with each relative name
/// under `folder`.
fn in_folder(value: &str, folder: &str) -> String {
    value
        .split(',')
        .map(str::trim)
        .map(|name| {
            if name.is_empty() || name.starts_with('/') {
                name.to_owned()
            } else {
                format!("{folder}/{name}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A section as a mapping, the values of `keys` as file names under their
/// folders.
fn with_folders(s: &Section, keys: &[(&str, &str)]) -> Node {
    let mut entries = Vec::new();
    for e in s.entries() {
        match e {
            Entry::Kv(kv) => {
                if let Some(v) = &kv.value {
                    let v = match keys.iter().find(|(k, _)| *k == kv.key) {
                        Some((_, folder)) => in_folder(v, folder),
                        None => v.clone(),
                    };
                    entries.push((scalar(kv.key_loc, &kv.key), scalar(kv.value_loc, &v)));
                }
            }
            Entry::Section(sub) => entries.push((scalar(sub.loc, &sub.name), generic(sub))),
        }
    }
    map(s.loc, entries)
}

/// A `local`/`remote` round: `certs` in `x509/`, `cacerts` in `x509ca/`,
/// `pubkeys` in `pubkey/`.
fn auth_round(s: &Section) -> Node {
    with_folders(
        s,
        &[
            ("certs", "x509"),
            ("cacerts", "x509ca"),
            ("pubkeys", "pubkey"),
        ],
    )
}

/// `authorities`: each one's `cacert` in `x509ca/` (`file` is a path).
fn authorities(s: &Section) -> Node {
    let mut entries = Vec::new();
    for e in s.entries() {
        match e {
            Entry::Kv(kv) => {
                if let Some(v) = &kv.value {
                    entries.push((scalar(kv.key_loc, &kv.key), scalar(kv.value_loc, v)));
                }
            }
            Entry::Section(sub) => entries.push((
                scalar(sub.loc, &sub.name),
                with_folders(sub, &[("cacert", "x509ca")]),
            )),
        }
    }
    map(s.loc, entries)
}

/// A `private<suffix>` (`rsa`, `ecdsa`, `pkcs8`) secret: its `file` in the
/// type's folder.
fn key_secret(s: &Section, folder: &str) -> Node {
    with_folders(s, &[("file", folder)])
}

/// `path` with the first matching rewrite applied.
pub(crate) fn rewrite(path: &str, rewrites: &[(String, String)]) -> String {
    for (from, to) in rewrites {
        if let Some(rest) = path.strip_prefix(from.as_str())
            && (rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
        {
            return format!("{to}{rest}");
        }
    }
    path.to_owned()
}
