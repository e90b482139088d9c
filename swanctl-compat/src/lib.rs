//! Reads strongSwan's swanctl.conf into iked's configuration
//! ([`ike::config::Config`]), so a gateway's existing
//! `/etc/swanctl/swanctl.conf` can be used as it is, and prints it as iked
//! YAML (`ikectl convert`). The files are read here (the `ike` library
//! reads none); `iked` and `ikectl` use this crate.
//!
//! The file is parsed as strongSwan's settings parser reads it (sections,
//! `key = value`, quoting, comments, `include` with shell patterns,
//! section references; see `parse.rs` and `resolve.rs`), turned into the
//! same located tree as iked's YAML (`convert.rs`), and validated by the
//! same schema ([`Config::from_tree`]): both formats share every default,
//! check and message. Every problem is reported with the file (an included
//! one where it is there), the line and the key:
//!
//! ```text
//! /etc/swanctl/conf.d/b.conf:12: connections.site-b.children.lan.label: the swanctl key "label" is not supported yet
//! ```
//!
//! ```
//! let text = r#"
//! connections {
//!     site-b {
//!         remote_addrs = 198.51.100.1
//!         local { auth = psk
//!                 id = gw-a.example.net }
//!         remote { auth = psk
//!                  id = gw-b.example.net }
//!         children {
//!             lan { local_ts = 10.1.0.0/24, 10.3.0.0/24
//!                   remote_ts = 10.2.0.0/24 }
//!         }
//!     }
//! }
//! secrets {
//!     ike-b { id = gw-a.example.net
//!             id-b = gw-b.example.net
//!             secret = "a long random string" }
//! }
//! "#;
//! let config = swanctl_compat::parse_str(text, "swanctl.conf").unwrap();
//! assert_eq!(config.connections()[0].children[0].local_ts.len(), 2);
//! assert_eq!(config.ike_secrets()[0].ids.len(), 2);
//!
//! // The same configuration as iked YAML, which reads back the same.
//! let yaml = swanctl_compat::to_yaml(&swanctl_compat::parse_tree_str(text, "swanctl.conf").unwrap());
//! let again = ike::config::Config::from_yaml_str(&yaml, "iked.yaml").unwrap();
//! assert_eq!(again.connections()[0].children[0].local_ts, config.connections()[0].children[0].local_ts);
//!
//! let err = swanctl_compat::parse_str("connections {\n c {\n  ppk_id = p1\n }\n}\n", "s.conf")
//!     .unwrap_err();
//! assert!(err.to_string().contains(
//!     "s.conf:3: connections.c.ppk_id: the swanctl key \"ppk_id\" is not supported yet"
//! ));
//! ```

// No arithmetic that can overflow, divide by zero or panic (the files it
// reads are input): checked or saturating operations only. Tests may.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod convert;
pub mod creds;
pub mod eap_radius;
pub mod netdb;
mod parse;
mod resolve;
pub mod strongswan_conf;
mod yaml_out;

use std::path::Path;

use ike::config::tree::Node;
use ike::config::{Config, ConfigError, ConfigIssue, NetNames};

use parse::{Disk, Files, NoFiles, Problem};

/// Everything wrong with a swanctl.conf (and the files it includes): one
/// [`ConfigIssue`] per problem, in file order (the loaded file, then the
/// included ones as they were read), then line. Displays one per line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct Error(ConfigError);

impl Error {
    /// The problems.
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.0.issues
    }

    /// As the YAML loader's error type.
    pub fn into_config_error(self) -> ConfigError {
        self.0
    }
}

/// A swanctl.conf as iked's located configuration tree, valid: what
/// [`to_yaml`] prints. `files` names the tree's [`ike::config::tree::FileId`]s.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// The root mapping, shaped like iked's YAML.
    pub root: Node,
    /// File names: the loaded file first, then included ones as read.
    pub files: Vec<String>,
}

/// Reads the swanctl.conf at `path` and the files it includes; traffic
/// selectors may use the host's service and protocol names
/// ([`netdb::system`]).
pub fn load(path: impl AsRef<Path>) -> Result<Config, Error> {
    load_with(path, &netdb::system())
}

/// Like [`load`], with the service and protocol names of `names`.
pub fn load_with(path: impl AsRef<Path>, names: &NetNames) -> Result<Config, Error> {
    load_both(path.as_ref(), names).map(|(c, _)| c)
}

/// Parses swanctl.conf text; `file_name` is used in messages. No file is
/// read: an `include` is an error (use [`load`]).
pub fn parse_str(text: &str, file_name: &str) -> Result<Config, Error> {
    parse_str_with(text, file_name, &NetNames::default())
}

/// Like [`parse_str`], with the service and protocol names of `names`.
pub fn parse_str_with(text: &str, file_name: &str, names: &NetNames) -> Result<Config, Error> {
    run(text, file_name, &NoFiles, names).map(|(c, _)| c)
}

/// Like [`load`], but returns the validated tree (for [`to_yaml`]).
pub fn load_tree(path: impl AsRef<Path>) -> Result<Tree, Error> {
    load_both(path.as_ref(), &netdb::system()).map(|(_, t)| t)
}

/// Like [`parse_str`], but returns the validated tree (for [`to_yaml`]).
pub fn parse_tree_str(text: &str, file_name: &str) -> Result<Tree, Error> {
    run(text, file_name, &NoFiles, &NetNames::default()).map(|(_, t)| t)
}

/// The configuration as iked YAML: what `ikectl convert FILE` prints.
/// Reading it with [`Config::from_yaml_str`] gives the same configuration
/// (only the recorded line numbers differ). Templates and references are
/// resolved, includes inlined, comments dropped; lists stay as written
/// (comma-separated strings).
pub fn to_yaml(tree: &Tree) -> String {
    yaml_out::to_yaml(&tree.root)
}

/// [`load_tree`] then [`to_yaml`]: the YAML equivalent of a swanctl.conf,
/// or every problem in it.
pub fn convert_file(path: impl AsRef<Path>) -> Result<String, Error> {
    load_tree(path).map(|t| to_yaml(&t))
}

fn load_both(path: &Path, names: &NetNames) -> Result<(Config, Tree), Error> {
    let name = path.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error(ConfigError {
            issues: vec![ConfigIssue {
                file: name.clone(),
                line: 0,
                path: "(file)".to_owned(),
                message: format!("cannot read: {e}"),
            }],
        })
    })?;
    let parsed = parse::parse(&text, &name, &Disk);
    drop(text);
    finish(parsed, names)
}

fn run(
    text: &str,
    name: &str,
    files: &dyn Files,
    names: &NetNames,
) -> Result<(Config, Tree), Error> {
    finish(parse::parse(text, name, files), names)
}

fn finish(parsed: parse::Parsed, names: &NetNames) -> Result<(Config, Tree), Error> {
    if !parsed.problems.is_empty() {
        // The settings are incomplete: report only why.
        return Err(issues(parsed.problems, Vec::new(), &parsed.files, &[]));
    }
    // Each stage's tree is dropped as soon as the next one is made: with
    // thousands of connections, the text and three trees at once were
    // the daemon's peak memory (docs/performance.md, "Memory").
    let parse::Parsed { root, files, .. } = parsed;
    let mut problems = Vec::new();
    let (resolved, templates) = resolve::resolve(&root, &mut problems);
    drop(root);
    let converted = convert::convert(&resolved, &templates, &mut problems);
    drop(resolved);
    match Config::from_tree_with(&converted.root, &files, names) {
        Ok(mut config) if problems.is_empty() => Ok((
            {
                // Credential problems found later name swanctl's keys.
                config.map_places(&|p| p.path = convert::rewrite(&p.path, &converted.rewrites));
                config
            },
            Tree {
                root: converted.root,
                files,
            },
        )),
        Ok(_) => Err(issues(problems, Vec::new(), &files, &converted.rewrites)),
        Err(e) => Err(issues(problems, e.issues, &files, &converted.rewrites)),
    }
}

/// Our problems and the schema's issues, swanctl paths, sorted by file
/// then line.
fn issues(
    ours: Vec<Problem>,
    schema: Vec<ConfigIssue>,
    files: &[String],
    rewrites: &[(String, String)],
) -> Error {
    let file_name = |i: u32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| files.get(i))
            .cloned()
            .unwrap_or_else(|| "(unknown file)".to_owned())
    };
    let mut all: Vec<(usize, ConfigIssue)> = ours
        .into_iter()
        .map(|p| {
            (
                usize::try_from(p.loc.file.0).unwrap_or(usize::MAX),
                ConfigIssue {
                    file: file_name(p.loc.file.0),
                    line: p.loc.line,
                    path: p.path,
                    message: p.message,
                },
            )
        })
        .collect();
    for mut issue in schema {
        issue.path = convert::rewrite(&issue.path, rewrites);
        let index = files
            .iter()
            .position(|f| *f == issue.file)
            .unwrap_or(usize::MAX);
        all.push((index, issue));
    }
    all.sort_by_key(|(f, i)| (*f, i.line));
    Error(ConfigError {
        issues: all.into_iter().map(|(_, i)| i).collect(),
    })
}
