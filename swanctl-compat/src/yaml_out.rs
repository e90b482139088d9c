//! A located tree printed as iked YAML (for `ikectl convert`).
//!
//! Block style, two-space indentation. A scalar is written plain when
//! that is unambiguous (letters, digits and `_ . / + - @ %` inside, not
//! starting with a YAML indicator, not a null word), otherwise double-quoted
//! with escapes; `ike::config` reads every scalar as its text, so the text
//! comes back exactly. The tree's locations are not printed.

use core::fmt::Write as _;

use ike::config::tree::{Kind, Node};

/// The tree as YAML text.
pub(crate) fn to_yaml(root: &Node) -> String {
    let mut out = String::new();
    match &root.kind {
        Kind::Map(entries) if !entries.is_empty() => map(&mut out, entries, 0, false),
        Kind::Seq(items) if !items.is_empty() => seq(&mut out, items, 0),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out
}

/// The longest key written in the implicit `key: value` form (YAML 1.2
/// 7.4.2: at most 1024 characters, quotes included).
const MAX_IMPLICIT_KEY: usize = 1000;

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// A value that fits on its key's line.
fn inline(kind: &Kind) -> String {
    match kind {
        Kind::Null => "~".to_owned(),
        Kind::Scalar(s) => quote(s),
        Kind::Seq(_) => "[]".to_owned(),
        Kind::Map(_) => "{}".to_owned(),
    }
}

fn is_block(kind: &Kind) -> bool {
    match kind {
        Kind::Seq(v) => !v.is_empty(),
        Kind::Map(v) => !v.is_empty(),
        _ => false,
    }
}

/// Mapping entries at `level`; if `first_inline`, the first entry follows
/// a `- ` already written.
fn map(out: &mut String, entries: &[(Node, Node)], level: usize, first_inline: bool) {
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 || !first_inline {
            indent(out, level);
        }
        let key = match &k.kind {
            Kind::Scalar(s) => quote(s),
            // Not produced from swanctl.conf; keep the output valid YAML.
            other => quote(other.describe()),
        };
        if key.chars().count() > MAX_IMPLICIT_KEY {
            // YAML allows an implicit key of at most 1024 characters; a
            // longer one (swanctl.conf has no limit) needs the explicit form.
            out.push_str("? ");
            out.push_str(&key);
            out.push('\n');
            indent(out, level);
        } else {
            out.push_str(&key);
        }
        out.push(':');
        if is_block(&v.kind) {
            out.push('\n');
            match &v.kind {
                Kind::Map(e) => map(out, e, level.saturating_add(2), false),
                Kind::Seq(items) => seq(out, items, level.saturating_add(2)),
                _ => {}
            }
        } else {
            out.push(' ');
            out.push_str(&inline(&v.kind));
            out.push('\n');
        }
    }
}

fn seq(out: &mut String, items: &[Node], level: usize) {
    for item in items {
        indent(out, level);
        out.push_str("- ");
        match &item.kind {
            Kind::Map(e) if !e.is_empty() => map(out, e, level.saturating_add(2), true),
            Kind::Seq(v) if !v.is_empty() => {
                out.push('\n');
                seq(out, v, level.saturating_add(2));
            }
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

/// A scalar as YAML: plain if safe, else double-quoted.
fn quote(s: &str) -> String {
    let plain_char = |c: char| c.is_ascii_alphanumeric() || "_./+-@%".contains(c);
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(plain_char)
        && !matches!(s, "null" | "Null" | "NULL");
    if plain {
        return s.to_owned();
    }
    let mut q = String::with_capacity(s.len().saturating_add(2));
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(q, "\\u{:04x}", u32::from(c));
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::config::tree::FileId;

    fn s(t: &str) -> Node {
        Node::new(FileId(0), 1, Kind::Scalar(t.into()))
    }

    #[test]
    fn quoting() {
        for (input, want) in [
            ("gw-a.example.net", "gw-a.example.net"),
            ("10.1.0.0/24", "10.1.0.0/24"),
            ("0x0102", "0x0102"),
            ("null", "\"null\""),
            ("%any", "\"%any\""),
            ("@gw", "\"@gw\""),
            ("a b", "\"a b\""),
            ("10.1.0.0/24, 10.2.0.0/24", "\"10.1.0.0/24, 10.2.0.0/24\""),
            ("C=CH, O=x", "\"C=CH, O=x\""),
            ("q\"\\\n\t\u{1}", "\"q\\\"\\\\\\n\\t\\u0001\""),
            ("", "\"\""),
            ("-x", "\"-x\""),
        ] {
            assert_eq!(quote(input), want, "{input:?}");
        }
    }

    #[test]
    fn layout() {
        let n = |k: Kind| Node::new(FileId(0), 1, k);
        let root = n(Kind::Map(vec![
            (
                s("a"),
                n(Kind::Map(vec![
                    (s("b"), s("1")),
                    (s("e"), n(Kind::Map(vec![]))),
                ])),
            ),
            (
                s("l"),
                n(Kind::Seq(vec![
                    n(Kind::Map(vec![
                        (s("x"), s("1")),
                        (s("y"), n(Kind::Seq(vec![s("p")]))),
                    ])),
                    s("q"),
                ])),
            ),
            (s("z"), n(Kind::Null)),
        ]));
        assert_eq!(
            to_yaml(&root),
            "a:\n  b: 1\n  e: {}\nl:\n  - x: 1\n    y:\n      - p\n  - q\nz: ~\n"
        );
    }

    /// A name past YAML's 1024-character limit for implicit keys (found by
    /// the `swanctl` fuzz target) is written as an explicit key, and the
    /// YAML reads back to the same configuration.
    #[test]
    fn a_key_too_long_for_yaml_s_implicit_form_reads_back() {
        let long = "c".repeat(1500);
        let text = format!(
            "connections {{ {long} {{ remote_addrs = 192.0.2.2\n\
             local {{ auth = psk }} remote {{ auth = psk }}\n\
             children {{ {long} {{ remote_ts = 10.2.0.0/24 }} }} }} }}\n\
             secrets {{ ike {{ secret = x }} }}\n"
        );
        let tree = crate::parse_tree_str(&text, "swanctl.conf").unwrap();
        let yaml = to_yaml(&tree.root);
        assert!(yaml.contains(&format!("? {long}\n")), "{yaml}");
        let config = ike::config::Config::from_yaml_str(&yaml, "converted.yaml")
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let [conn] = config.connections() else {
            panic!("one connection: {yaml}");
        };
        assert_eq!(conn.name, long);
        assert_eq!(
            conn.children.iter().map(|c| &c.name).collect::<Vec<_>>(),
            [&long]
        );
    }
}
