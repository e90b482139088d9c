//! YAML text into a located tree, and the helpers that walk it.
//!
//! serde-saphyr stops at the first error when it deserializes into a typed
//! struct (also for `deny_unknown_fields`, although that error does carry
//! the line). To report every problem of a file at once, the text is first
//! deserialized into [`Node`]s: each node is read through
//! [`serde_saphyr::Spanned`], so it knows its line, and every scalar keeps its
//! source text (a plain `0x1234` stays the string `0x1234`, not 4660; `yes`
//! stays `yes`). The schema in `build.rs` then walks the tree and collects
//! all errors with file, line and key path.

use core::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashMap;

use serde_saphyr::Spanned;

use super::tree::FileId;
pub(crate) use super::tree::{Kind, Loc, Node};

/// A YAML error: line (0 if unknown) and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: u64,
    pub message: String,
}

/// Parses `text` into a tree. The empty document is [`Kind::Null`].
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    // Duplicate keys reach us, so that they are reported with both lines
    // alongside every other error rather than aborting the parse.
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    options.strict_booleans = true;
    options.with_snippet = false;
    // serde-saphyr's default budget (250,000 nodes, 1,000,000 events) is
    // reached near 10,000 connections: scale the node and event caps
    // with the text (a node or event takes at least a byte or so of it;
    // aliases keep their own caps, so expansions stay bounded).
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len().saturating_mul(2));
    options.budget = Some(budget);
    let raw: Result<Spanned<Raw>, serde_saphyr::Error> =
        serde_saphyr::from_str_with_options(text, options);
    match raw {
        Ok(raw) => Ok(convert(text, raw)),
        Err(e) => {
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            Err(SyntaxError {
                line,
                message: e.to_string(),
            })
        }
    }
}

/// What serde hands us, before scalars get their source text back.
#[derive(Debug)]
enum Raw {
    Null,
    Str(String),
    /// A plain scalar YAML resolved to a bool or number; the string is a
    /// fallback rendering in case the source text can't be found.
    Typed(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Typed(v.to_string()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Typed(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Typed(v.to_string()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Typed(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
        Ok(Raw::Typed(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Typed(v.to_string()))
    }
    fn visit_char<E>(self, v: char) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element()? {
            v.push(x);
        }
        Ok(Raw::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_entry()? {
            v.push(x);
        }
        Ok(Raw::Map(v))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _a: A) -> Result<Raw, A::Error> {
        Err(de::Error::custom("unexpected tagged value"))
    }
}

fn convert(text: &str, raw: Spanned<Raw>) -> Node {
    let line = raw.referenced.line();
    let kind = match raw.value {
        Raw::Null => Kind::Null,
        Raw::Str(s) => Kind::Scalar(s),
        Raw::Typed(fallback) => {
            // The scalar's own text: where it is defined (an alias points
            // at its anchor), as long as the span is a single plain token.
            let span = raw.defined.span();
            let src = span.byte_offset().zip(span.byte_len()).and_then(|(o, n)| {
                let start = usize::try_from(o).ok()?;
                let end = start.checked_add(usize::try_from(n).ok()?)?;
                text.get(start..end)
            });
            match src {
                Some(s) if !s.is_empty() && !s.contains(['\n', '\r', '*', '&', '!']) => {
                    Kind::Scalar(s.trim().to_owned())
                }
                _ => Kind::Scalar(fallback),
            }
        }
        // Fresh vectors: collecting in place would keep the room of the
        // larger `Spanned<Raw>` items (twice a 1,000-connection tree).
        Raw::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            out.extend(items.into_iter().map(|x| convert(text, x)));
            Kind::Seq(out)
        }
        Raw::Map(entries) => {
            let mut out = Vec::with_capacity(entries.len());
            out.extend(
                entries
                    .into_iter()
                    .map(|(k, v)| (convert(text, k), convert(text, v))),
            );
            Kind::Map(out)
        }
    };
    Node {
        file: FileId::default(),
        line,
        kind,
    }
}

/// A dotted key path: `connections.site-b.children.lan.mode`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Path(Vec<String>);

impl Path {
    /// This path with `key` appended.
    pub fn join(&self, key: &str) -> Path {
        let mut v = self.0.clone();
        v.push(key.to_owned());
        Path(v)
    }
    /// This path with a list index appended: `ids[2]`.
    pub fn index(&self, i: usize) -> Path {
        let mut v = self.0.clone();
        match v.last_mut() {
            Some(last) => last.push_str(&format!("[{i}]")),
            None => v.push(format!("[{i}]")),
        }
        Path(v)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        f.write_str(&self.0.join("."))
    }
}

/// One problem, before the file name is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub loc: Loc,
    pub path: String,
    pub message: String,
}

/// Collects problems while the tree is walked.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub Vec<Problem>);

impl Errors {
    /// Records `message` at `loc` for `path`.
    pub fn add(&mut self, loc: Loc, path: &Path, message: impl Into<String>) {
        self.0.push(Problem {
            loc,
            path: path.to_string(),
            message: message.into(),
        });
    }
}

/// The keys of one mapping, taken one by one; whatever is not taken is
/// an unknown key. Adding a key to the schema is one [`Fields::take`].
#[derive(Debug)]
pub(crate) struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
    taken: Vec<bool>,
    known: Vec<&'static str>,
    /// This mapping's path.
    pub path: Path,
}

impl<'n> Fields<'n> {
    /// The mapping `node` at `path`. Null is an empty mapping; anything
    /// else but a mapping is an error (`None`). Non-string and duplicate
    /// keys are reported here.
    pub fn new(node: &'n Node, path: Path, errors: &mut Errors) -> Option<Self> {
        let entries = map_entries(node, &path, "key", errors)?;
        let taken = vec![false; entries.len()];
        Some(Fields {
            entries,
            taken,
            known: Vec::new(),
            path,
        })
    }

    /// The value of `key` and where the key is, if present.
    pub fn take(&mut self, key: &'static str) -> Option<(&'n Node, Loc)> {
        self.known.push(key);
        let mut found = None;
        for ((k, kn, v), taken) in self.entries.iter().zip(self.taken.iter_mut()) {
            if *k == key {
                *taken = true;
                if found.is_none() {
                    found = Some((*v, kn.loc()));
                }
            }
        }
        found
    }

    /// Reports every key not taken as unknown; `hint` may explain a key
    /// that is known to swanctl but not (yet) to iked.
    pub fn finish(self, errors: &mut Errors, hint: impl Fn(&str) -> Option<String>) {
        let mut known = self.known.clone();
        known.sort_unstable();
        for ((k, kn, _), taken) in self.entries.iter().zip(self.taken.iter()) {
            if *taken {
                continue;
            }
            let message = match hint(k) {
                Some(h) => h,
                None => format!(
                    "unknown key \"{}\" (expected one of: {})",
                    k,
                    known.join(", ")
                ),
            };
            errors.add(kn.loc(), &self.path.join(k), message);
        }
    }
}

/// The entries of a mapping with string keys; duplicate keys are reported
/// (as "duplicate `noun`") and only the first one is kept... by callers
/// that look up by name; all entries are returned in file order.
pub(crate) fn map_entries<'n>(
    node: &'n Node,
    path: &Path,
    noun: &str,
    errors: &mut Errors,
) -> Option<Vec<(&'n str, &'n Node, &'n Node)>> {
    let entries = match &node.kind {
        Kind::Null => return Some(Vec::new()),
        Kind::Map(entries) => entries,
        other => {
            errors.add(
                node.loc(),
                path,
                format!("expected a mapping, found {}", other.describe()),
            );
            return None;
        }
    };
    let mut out: Vec<(&'n str, &'n Node, &'n Node)> = Vec::with_capacity(entries.len());
    // The first line of each name, for duplicates: a map, not a scan of
    // `out` (quadratic with thousands of connections).
    let mut first: HashMap<&'n str, u64> = HashMap::with_capacity(entries.len());
    for (k, v) in entries {
        let Kind::Scalar(name) = &k.kind else {
            errors.add(
                k.loc(),
                path,
                format!("a {noun} must be a string, found {}", k.kind.describe()),
            );
            continue;
        };
        if let Some(line) = first.get(name.as_str()) {
            errors.add(
                k.loc(),
                &path.join(name),
                format!("duplicate {noun} \"{name}\" (first at line {line})"),
            );
            continue;
        }
        first.insert(name.as_str(), k.line);
        out.push((name.as_str(), k, v));
    }
    Some(out)
}

/// A scalar's text, or an error naming what was found instead.
pub(crate) fn scalar<'n>(node: &'n Node, path: &Path, errors: &mut Errors) -> Option<&'n str> {
    match &node.kind {
        Kind::Scalar(s) => Some(s.as_str()),
        other => {
            errors.add(
                node.loc(),
                path,
                format!("expected a string, found {}", other.describe()),
            );
            None
        }
    }
}

/// A list of strings: a YAML sequence of scalars, or (as in swanctl.conf)
/// one scalar with comma-separated items if `split_commas`. Each item comes
/// with its line and path.
pub(crate) fn string_list(
    node: &Node,
    path: &Path,
    split_commas: bool,
    errors: &mut Errors,
) -> Option<Vec<(String, Loc, Path)>> {
    match &node.kind {
        Kind::Null => Some(Vec::new()),
        Kind::Scalar(s) => {
            if split_commas {
                Some(
                    s.split(',')
                        .map(|x| (x.trim().to_owned(), node.loc(), path.clone()))
                        .collect(),
                )
            } else {
                Some(vec![(s.trim().to_owned(), node.loc(), path.clone())])
            }
        }
        Kind::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let p = path.index(i);
                match scalar(item, &p, errors) {
                    Some(s) => out.push((s.trim().to_owned(), item.loc(), p)),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        Kind::Map(_) => {
            errors.add(
                node.loc(),
                path,
                "expected a list of strings, found a mapping",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(n: &'a Node, key: &str) -> &'a Node {
        match &n.kind {
            Kind::Map(e) => match e.iter().find(|(k, _)| k.kind == Kind::Scalar(key.into())) {
                Some((_, v)) => v,
                None => panic!("no key {key}"),
            },
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn scalars_keep_their_text_and_lines() {
        let t = "a: 0x1234\nb: yes\nc: 1.50\nd: \"q\"\ne: ~\nn: 007\nf: &x 0x10\ng: *x\n";
        let n = parse(t).unwrap();
        let s = |k: &str| get(&n, k).kind.clone();
        assert_eq!(s("a"), Kind::Scalar("0x1234".into()));
        assert_eq!(s("b"), Kind::Scalar("yes".into()));
        assert_eq!(s("c"), Kind::Scalar("1.50".into()));
        assert_eq!(s("d"), Kind::Scalar("q".into()));
        assert_eq!(s("e"), Kind::Null);
        assert_eq!(s("n"), Kind::Scalar("007".into()));
        assert_eq!(s("f"), Kind::Scalar("0x10".into()));
        assert_eq!(s("g"), Kind::Scalar("0x10".into()));
        assert_eq!(get(&n, "c").line, 3);
        assert_eq!(get(&n, "g").line, 8);
    }

    #[test]
    fn duplicates_reach_the_tree() {
        let n = parse("a: 1\na: 2\n").unwrap();
        let mut errors = Errors::default();
        let e = map_entries(&n, &Path::default(), "key", &mut errors).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].loc.line, 2);
        assert!(
            errors.0[0].message.contains("first at line 1"),
            "{:?}",
            errors
        );
    }

    #[test]
    fn a_large_file_is_not_refused_for_its_size() {
        // 300,000 scalars: past serde-saphyr's default 250,000 nodes, as
        // a file with over 10,000 connections is.
        let mut t = String::from("a:\n");
        for _ in 0..300_000 {
            t.push_str("- 0\n");
        }
        let n = parse(&t).unwrap();
        match &get(&n, "a").kind {
            Kind::Seq(v) => assert_eq!(v.len(), 300_000),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn aliases_stay_bounded_in_a_large_file() {
        // The caps on aliases stay what they were however large the file.
        let mut t = String::from("x: &x [1, 2]\na:\n");
        for _ in 0..60_000 {
            t.push_str("- *x\n");
        }
        assert!(parse(&t).is_err());
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = parse("a:\n  b: [1, 2\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
        let e = parse("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
    }
}
