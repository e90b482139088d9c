//! Section references (`conn-a : conn-defaults, eap-defaults { ... }`,
//! strongswan.conf(5) "REFERENCING OTHER SECTIONS", since 5.7.0): a section
//! inherits every setting and subsection of the sections it references by
//! absolute name, and what those inherit in turn. Its own settings win;
//! inherited ones follow its own, the referenced sections left to right; a
//! subsection present on both sides is merged the same way. References
//! are resolved after all files are read, so they may point forward or
//! into included files.
//!
//! Stricter than strongSwan: a reference to a section that does not exist,
//! or a loop, is an error.

use super::parse::{Entry, Problem, Section};

/// Bound on the sections visited while resolving (diamond-shaped
/// references could otherwise take exponential time).
const BUDGET: usize = 100_000;

/// `root` with every reference resolved, and the names of the top-level
/// sections that something references (templates).
pub(crate) fn resolve(root: &Section, problems: &mut Vec<Problem>) -> (Section, Vec<String>) {
    let mut r = Resolver {
        root,
        stack: Vec::new(),
        budget: BUDGET,
        referenced: Vec::new(),
        problems,
    };
    let out = r.effective(root, "");
    let mut referenced = r.referenced;
    referenced.sort();
    referenced.dedup();
    (out, referenced)
}

struct Resolver<'a, 'p> {
    root: &'a Section,
    /// Absolute names of the sections being resolved (loop detection).
    stack: Vec<String>,
    budget: usize,
    referenced: Vec<String>,
    problems: &'p mut Vec<Problem>,
}

fn lookup<'a>(root: &'a Section, name: &str) -> Option<&'a Section> {
    let mut s = root;
    for part in name.split('.') {
        s = s.section(part)?;
    }
    Some(s)
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

impl Resolver<'_, '_> {
    /// The section at absolute name `abs` with its own and inherited
    /// settings.
    fn effective(&mut self, sec: &Section, abs: &str) -> Section {
        let mut out = Section::new(&sec.name, sec.loc);
        if self.budget == 0 {
            return out;
        }
        self.budget = self.budget.saturating_sub(1);
        if self.budget == 0 {
            self.problems.push(Problem {
                loc: sec.loc,
                path: abs.to_owned(),
                message: "section references too complex to resolve".into(),
            });
            return out;
        }
        self.stack.push(abs.to_owned());
        for e in sec.entries() {
            match e {
                Entry::Kv(kv) => out.push(Entry::Kv(kv.clone())),
                Entry::Section(s) => {
                    let sub = self.effective(s, &join(abs, &s.name));
                    out.push(Entry::Section(sub));
                }
            }
        }
        for r in &sec.refs {
            if let Some(first) = r.target.split('.').next() {
                self.referenced.push(first.to_owned());
            }
            if self.stack.contains(&r.target) {
                self.problems.push(Problem {
                    loc: r.loc,
                    path: abs.to_owned(),
                    message: format!(
                        "reference loop: \"{}\" (directly or through other references) \
                         contains this section",
                        r.target
                    ),
                });
                continue;
            }
            let Some(target) = lookup(self.root, &r.target) else {
                self.problems.push(Problem {
                    loc: r.loc,
                    path: abs.to_owned(),
                    message: format!("referenced section \"{}\" does not exist", r.target),
                });
                continue;
            };
            let inherited = self.effective(target, &r.target);
            inherit(&mut out, inherited);
        }
        self.stack.pop();
        out
    }
}

/// Adds what `out` does not have yet from `from`, after its own entries.
fn inherit(out: &mut Section, from: Section) {
    for e in from.into_entries() {
        match e {
            Entry::Kv(kv) => {
                let have = out
                    .entries()
                    .iter()
                    .any(|x| matches!(x, Entry::Kv(k) if k.key == kv.key));
                if !have {
                    out.push(Entry::Kv(kv));
                }
            }
            Entry::Section(s) => match out.section_mut(&s.name) {
                Some(m) => inherit(m, s),
                None => out.push(Entry::Section(s)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{Kv, NoFiles, parse};
    use super::*;

    fn resolved(text: &str) -> (Section, Vec<String>, Vec<Problem>) {
        let p = parse(text, "t.conf", &NoFiles);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let mut problems = Vec::new();
        let (s, r) = resolve(&p.root, &mut problems);
        (s, r, problems)
    }

    fn kvs(s: &Section) -> Vec<(String, Option<String>)> {
        s.entries()
            .iter()
            .filter_map(|e| match e {
                Entry::Kv(Kv { key, value, .. }) => Some((key.clone(), value.clone())),
                Entry::Section(_) => None,
            })
            .collect()
    }

    fn get<'a>(s: &'a Section, path: &str) -> &'a Section {
        lookup(s, path).unwrap_or_else(|| panic!("no {path}"))
    }

    #[test]
    fn the_man_page_example() {
        let (s, referenced, problems) = resolved(
            "conn-defaults { a = 1\n b = 1\n sub { x = 1 } }\n\
             eap-defaults { b = 2\n c = 2\n }\n\
             child-defaults { t = 3 }\n\
             connections {\n\
               conn-a : conn-defaults, eap-defaults {\n\
                 a = own\n b =\n sub { y = 2 }\n\
                 children { child-a : child-defaults { u = 4 } }\n\
               }\n\
               conn-c : connections.conn-a { }\n\
             }\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            referenced,
            [
                "child-defaults",
                "conn-defaults",
                "connections",
                "eap-defaults"
            ]
        );
        let a = get(&s, "connections.conn-a");
        let want = |v: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            v.iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect()
        };
        // Own first (the empty b blocks both inherited ones), then c.
        assert_eq!(
            kvs(a),
            want(&[("a", Some("own")), ("b", None), ("c", Some("2"))])
        );
        assert_eq!(
            kvs(get(a, "sub")),
            want(&[("y", Some("2")), ("x", Some("1"))])
        );
        assert_eq!(
            kvs(get(a, "children.child-a")),
            want(&[("u", Some("4")), ("t", Some("3"))])
        );
        // conn-c gets everything conn-a has, including what it inherits.
        let c = get(&s, "connections.conn-c");
        assert_eq!(kvs(c), kvs(a));
        assert_eq!(
            kvs(get(c, "children.child-a")),
            kvs(get(a, "children.child-a"))
        );
    }

    #[test]
    fn missing_targets_and_loops_are_errors() {
        let (_, _, problems) = resolved("a : nope {\n}\nb : b { }\nc { d : c { } }\n");
        let got: Vec<(u64, &str, bool)> = problems
            .iter()
            .map(|p| (p.loc.line, p.path.as_str(), p.message.contains("loop")))
            .collect();
        assert_eq!(got, [(1, "a", false), (3, "b", true), (4, "c.d", true)]);
        assert!(problems[0].message.contains("\"nope\" does not exist"));
    }

    #[test]
    fn diamonds_are_bounded() {
        // Each level references the previous one twice: 2^40 visits
        // without the budget.
        let mut text = String::from("s0 { k = v }\n");
        for i in 1..40 {
            text.push_str(&format!("s{i} : s{p}, s{p} {{ }}\n", p = i - 1));
        }
        let (_, _, problems) = resolved(&text);
        assert!(
            problems.iter().any(|p| p.message.contains("too complex")),
            "{problems:?}"
        );
    }
}
