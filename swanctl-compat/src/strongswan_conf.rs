//! strongswan.conf: the daemon settings charon reads (`charon.port`,
//! `charon.retransmit_tries`, ...), for the ones iked has command-line
//! flags for.
//!
//! The file has the syntax of swanctl.conf (both are read by strongSwan's
//! settings parser, so `parse.rs` reads this one too: sections, `key =
//! value`, quoting, comments, `include` with shell patterns relative to the
//! including file, `name : ref` references; no variable expansion, as in
//! strongSwan). charon-systemd, the daemon Debian's swanctl users run,
//! reads its settings from the section `charon-systemd` and falls back to
//! `charon` for each one it does not find there (libstrongswan's
//! `add_fallback`); so does [`StrongswanConf::get`].
//!
//! Values are typed as charon reads them (libstrongswan `settings.c`):
//! integers are decimal or `0x` hex, booleans `yes|no|true|false|
//! enabled|disabled|1|0` in any case, times a number with an optional
//! `s|m|h|d` unit, fractions C floats. Where charon falls back to its
//! default on a value it cannot read, iked refuses it with the file and
//! line ([`StrongswanConf::int`] and the others): a setting that silently
//! does not apply is worse than a daemon that does not start. Settings iked
//! does not read are ignored, as charon ignores unknown ones.

use std::path::Path;

use ike::config::tree::Loc;

use crate::parse::{self, Disk, Entry, Files, NoFiles, Section};
use crate::{Error, issues};

/// The namespaces a setting is looked up in, in order.
const NAMESPACES: [&str; 2] = ["charon-systemd", "charon"];
/// Section references followed from one section, at most.
const MAX_REF_DEPTH: usize = 8;

/// A parsed strongswan.conf with the files it includes.
#[derive(Debug)]
pub struct StrongswanConf {
    root: Section,
    files: Vec<String>,
}

/// One setting as found: its value and where it was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The dotted name it was found under (`charon-systemd.port`).
    pub name: String,
    /// The value; `None` for `key =` (which clears it: charon's default).
    pub value: Option<String>,
    /// The file it was set in (an included one where it is there).
    pub file: String,
    /// Its line.
    pub line: u64,
}

impl Setting {
    /// `file:line: name: message`, as configuration errors are written.
    pub fn error(&self, message: impl std::fmt::Display) -> String {
        format!("{}:{}: {}: {message}", self.file, self.line, self.name)
    }

    fn bad(&self, what: &str) -> String {
        self.error(format_args!(
            "\"{}\" is not {what}",
            self.value.as_deref().unwrap_or("")
        ))
    }
}

/// Reads the strongswan.conf at `path` and the files it includes. Syntax
/// errors are located; nothing is checked about the settings yet.
pub fn load(path: impl AsRef<Path>) -> Result<StrongswanConf, Error> {
    let path = path.as_ref();
    let name = path.to_string_lossy().into_owned();
    let text = Disk.read(path).map_err(|e| {
        issues(
            vec![parse::Problem {
                loc: Loc::default(),
                path: "(file)".to_owned(),
                message: format!("cannot read: {e}"),
            }],
            Vec::new(),
            std::slice::from_ref(&name),
            &[],
        )
    })?;
    from_parsed(parse::parse(&text, &name, &Disk))
}

/// Parses strongswan.conf text (`file_name` in messages); an `include` is
/// an error (use [`load`]).
pub fn parse_str(text: &str, file_name: &str) -> Result<StrongswanConf, Error> {
    from_parsed(parse::parse(text, file_name, &NoFiles))
}

fn from_parsed(parsed: parse::Parsed) -> Result<StrongswanConf, Error> {
    if !parsed.problems.is_empty() {
        return Err(issues(parsed.problems, Vec::new(), &parsed.files, &[]));
    }
    Ok(StrongswanConf {
        root: parsed.root,
        files: parsed.files,
    })
}

impl StrongswanConf {
    /// The files read: the loaded one first, then the included ones.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The daemon setting `key` (`port`, `retransmit_tries`): from
    /// `charon-systemd`, else from `charon`, following section references.
    /// A dotted `key` (`plugins.eap-radius.server`) is looked up in the
    /// sections it names.
    pub fn get(&self, key: &str) -> Option<Setting> {
        NAMESPACES.iter().find_map(|ns| match key.rsplit_once('.') {
            Some((sections, key)) => self.find(&format!("{ns}.{sections}"), key, 0),
            None => self.find(ns, key, 0),
        })
    }

    /// The names of the subsections of the dotted `path` (`plugins.
    /// eap-radius.servers`), of both namespaces, in order, once each.
    pub fn subsections(&self, path: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for ns in NAMESPACES {
            let Some(s) = format!("{ns}.{path}")
                .split('.')
                .try_fold(&self.root, |s, name| s.section(name))
            else {
                continue;
            };
            for e in s.entries() {
                if let Entry::Section(sub) = e
                    && !names.contains(&sub.name)
                {
                    names.push(sub.name.clone());
                }
            }
        }
        names
    }

    /// `key` in the section at dotted path `section` or the sections it
    /// references.
    fn find(&self, section: &str, key: &str, depth: usize) -> Option<Setting> {
        let s = section
            .split('.')
            .try_fold(&self.root, |s, name| s.section(name))?;
        for e in s.entries() {
            if let Entry::Kv(kv) = e
                && kv.key == key
            {
                let file = usize::try_from(kv.key_loc.file.0)
                    .ok()
                    .and_then(|i| self.files.get(i))
                    .cloned()
                    .unwrap_or_else(|| "(unknown file)".to_owned());
                return Some(Setting {
                    name: format!("{section}.{key}"),
                    value: kv.value.clone(),
                    file,
                    line: kv.key_loc.line,
                });
            }
        }
        if depth >= MAX_REF_DEPTH {
            return None;
        }
        s.refs
            .iter()
            .find_map(|r| self.find(&r.target, key, depth.saturating_add(1)))
    }

    /// An integer setting, as charon's `get_int`: decimal, or hex after
    /// `0x`. `Ok(None)`: not set (or cleared).
    pub fn int(&self, key: &str) -> Result<Option<(u64, Setting)>, String> {
        self.typed(key, "a number", |v| match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None if v.bytes().all(|b| b.is_ascii_digit()) => v.parse().ok(),
            None => None,
        })
    }

    /// A yes/no setting, as charon's `get_bool`.
    pub fn bool(&self, key: &str) -> Result<Option<(bool, Setting)>, String> {
        self.typed(key, "yes or no", |v| {
            let v = v.to_ascii_lowercase();
            match v.as_str() {
                "1" | "yes" | "true" | "enabled" => Some(true),
                "0" | "no" | "false" | "disabled" => Some(false),
                _ => None,
            }
        })
    }

    /// A fractional setting, as charon's `get_double`.
    pub fn double(&self, key: &str) -> Result<Option<(f64, Setting)>, String> {
        self.typed(key, "a number", |v| {
            v.parse::<f64>().ok().filter(|f| f.is_finite())
        })
    }

    /// A time in seconds, as charon's `get_time`: a number, then blanks
    /// and a unit of which the first letter counts (s, m, h, d; none:
    /// seconds).
    pub fn time(&self, key: &str) -> Result<Option<(u64, Setting)>, String> {
        self.typed(key, "a time (a number with s, m, h or d)", |v| {
            let digits = v.bytes().take_while(u8::is_ascii_digit).count();
            let (n, unit) = v.split_at(digits);
            let n: u64 = n.parse().ok()?;
            let factor = match unit.trim_start().chars().next() {
                None | Some('s') => 1,
                Some('m') => 60,
                Some('h') => 3600,
                Some('d') => 86_400,
                Some(_) => return None,
            };
            n.checked_mul(factor)
        })
    }

    fn typed<T>(
        &self,
        key: &str,
        what: &str,
        read: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<(T, Setting)>, String> {
        let Some(setting) = self.get(key) else {
            return Ok(None);
        };
        let Some(value) = setting.value.as_deref() else {
            return Ok(None);
        };
        match read(value.trim()) {
            Some(v) => Ok(Some((v, setting))),
            None => Err(setting.bad(what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> StrongswanConf {
        parse_str(text, "strongswan.conf").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn charon_systemd_falls_back_to_charon_per_setting() {
        let c = conf(
            "charon {\n  port = 600\n  retransmit_tries = 3\n  plugins {\n    port = 1\n  }\n}\n\
             charon-systemd {\n  retransmit_tries = 0x7 # comment\n}\n",
        );
        let (tries, s) = c.int("retransmit_tries").unwrap().unwrap();
        assert_eq!(tries, 7);
        assert_eq!(
            (s.name.as_str(), s.line),
            ("charon-systemd.retransmit_tries", 9)
        );
        let (port, s) = c.int("port").unwrap().unwrap();
        assert_eq!((port, s.name.as_str(), s.line), (600, "charon.port", 2));
        assert_eq!(c.int("port_nat_t").unwrap(), None);
        // Another daemon's section is not read.
        let c = conf("charon-nm {\n port = 1\n}\nlibstrongswan {\n port = 2\n}\n");
        assert_eq!(c.int("port").unwrap(), None);
    }

    #[test]
    fn an_empty_value_clears_and_later_settings_replace() {
        let c = conf("charon {\n port = 600\n port = 700\n keep_alive =\n}\n");
        assert_eq!(c.int("port").unwrap().map(|(v, _)| v), Some(700));
        assert_eq!(c.time("keep_alive").unwrap(), None);
    }

    #[test]
    fn references_are_followed() {
        let c =
            conf("common {\n retransmit_base = 1.5\n}\ncharon-systemd : common {\n port = 1\n}\n");
        let (base, s) = c.double("retransmit_base").unwrap().unwrap();
        assert_eq!((base, s.name.as_str()), (1.5, "common.retransmit_base"));
        // A reference loop ends.
        let c = conf("a : b {\n}\nb : a {\n}\ncharon : a {\n}\n");
        assert_eq!(c.int("port").unwrap(), None);
    }

    #[test]
    fn values_are_typed_as_charon_reads_them() {
        let c = conf(
            "charon {\n a = yes\n b = Disabled\n c = 1\n d = 20\n e = 2m\n f = 1 h\n g = 3days\n \
             h = 0.5\n i = 4\n j = \"30\"\n}\n",
        );
        assert!(c.bool("a").unwrap().unwrap().0);
        assert!(!c.bool("b").unwrap().unwrap().0);
        assert!(c.bool("c").unwrap().unwrap().0);
        assert_eq!(c.time("d").unwrap().unwrap().0, 20);
        assert_eq!(c.time("e").unwrap().unwrap().0, 120);
        assert_eq!(c.time("f").unwrap().unwrap().0, 3600);
        assert_eq!(c.time("g").unwrap().unwrap().0, 3 * 86_400);
        assert_eq!(c.double("h").unwrap().unwrap().0, 0.5);
        assert_eq!(c.double("i").unwrap().unwrap().0, 4.0);
        assert_eq!(c.int("j").unwrap().unwrap().0, 30);
    }

    #[test]
    fn bad_values_are_located() {
        let c = conf(
            "charon {\n install_routes = maybe\n port = 5OO\n keep_alive = 20x\n \
             retransmit_base = fast\n routing_table = -1\n}\n",
        );
        assert_eq!(
            c.bool("install_routes").unwrap_err(),
            "strongswan.conf:2: charon.install_routes: \"maybe\" is not yes or no"
        );
        assert_eq!(
            c.int("port").unwrap_err(),
            "strongswan.conf:3: charon.port: \"5OO\" is not a number"
        );
        assert_eq!(
            c.time("keep_alive").unwrap_err(),
            "strongswan.conf:4: charon.keep_alive: \"20x\" is not a time (a number with s, m, h or d)"
        );
        assert!(c.double("retransmit_base").is_err());
        assert!(c.int("routing_table").is_err());
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = parse_str("charon {\n port = 1\n", "s.conf").unwrap_err();
        assert!(e.to_string().starts_with("s.conf:1: charon:"), "{e}");
    }

    #[test]
    fn includes_are_read_relative_to_the_including_file() {
        let dir = std::env::temp_dir().join(format!("iked-sconf-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("strongswan.d/charon")).unwrap();
        std::fs::write(
            dir.join("strongswan.conf"),
            "charon {\n  load_modular = yes\n  plugins {\n    include strongswan.d/charon/*.conf\n  }\n}\n\
             include strongswan.d/*.conf\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("strongswan.d/charon.conf"),
            "charon {\n  # port = 500\n  port_nat_t = 4501\n  plugins {\n  }\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("strongswan.d/charon-systemd.conf"),
            "charon-systemd {\n  journal {\n    default = 1\n  }\n  cookie_threshold = 10\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("strongswan.d/charon/aes.conf"),
            "aes {\n  load = yes\n}\n",
        )
        .unwrap();
        let c = load(dir.join("strongswan.conf")).unwrap_or_else(|e| panic!("{e}"));
        let (natt, s) = c.int("port_nat_t").unwrap().unwrap();
        assert_eq!(natt, 4501);
        assert_eq!(
            (s.file, s.line),
            (
                dir.join("strongswan.d/charon.conf").display().to_string(),
                3
            )
        );
        assert_eq!(c.int("cookie_threshold").unwrap().unwrap().0, 10);
        assert_eq!(c.int("port").unwrap(), None);
        assert_eq!(c.files().len(), 4);
        let e = load(dir.join("nothere.conf")).unwrap_err();
        assert!(
            e.to_string()
                .contains("nothere.conf:0: (file): cannot read"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
