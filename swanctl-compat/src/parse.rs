//! swanctl.conf text into settings sections, as strongSwan's settings
//! parser reads it (libstrongswan `settings/settings_lexer.l` and
//! `settings_parser.y`, and strongswan.conf(5)):
//!
//! - `name { ... }` sections, `key = value` settings; newlines, blanks and
//!   `#` comments between them are free, so `name` and `{` may be on
//!   different lines.
//! - Names: any character but `. , : { } = " #`, blanks and newlines.
//! - A value runs to the end of the line, a `#` or a `}`. It is made of
//!   words and `"quoted strings"` joined by one space each (quotes keep
//!   blanks, `#` and `}`; `\n`, `\r`, `\t`, `\<newline>` continuation and
//!   `\x` escapes); `key =` alone is an empty value, which clears an
//!   earlier or inherited one.
//! - `name : ref1, sec.ref2 { ... }` references other sections by absolute
//!   name (resolved in `resolve.rs`).
//! - `include pattern` (not followed by `=`) reads files matching a shell
//!   pattern, relative to the including file's directory, into the section
//!   the statement is in. Quotes and `\"`, `\#`, `\}`, `\ ` escapes work in
//!   the pattern.
//! - A section defined again extends the first one; a key defined again
//!   replaces the value, keeping its place.
//!
//! Deliberately stricter than strongSwan: an include without wildcards
//! whose file can't be read is an error (strongSwan skips it silently).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ike::config::tree::{FileId, Loc};

/// Sections deeper than this are refused (recursion bound).
const MAX_DEPTH: usize = 64;
/// Includes nested deeper than this are refused (an include loop).
const MAX_INCLUDE_DEPTH: usize = 16;

/// One settings section.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Section {
    pub name: String,
    pub loc: Loc,
    /// `name : a, b.c { }`, in order.
    pub refs: Vec<Ref>,
    /// Settings and subsections in order of first definition. Added to
    /// only through [`Section::add_kv`], [`Section::add_section`] and
    /// [`Section::push`], which keep `index` in step.
    entries: Vec<Entry>,
    /// Where each subsection is in `entries`, by name, once there are more
    /// than [`INDEX_FROM`]: finding the one to extend was a scan, quadratic
    /// in a file of thousands of connections. Small sections (most of
    /// them) are scanned, without the map's memory.
    // Boxed: 8 bytes in every section (and so in every entry, settings
    // included) instead of a map's 48, for the few sections that have one.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<String, usize>>>,
}

/// Subsections from which a section keeps an index of them.
const INDEX_FROM: usize = 8;

/// A section reference.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Ref {
    pub target: String,
    pub loc: Loc,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Entry {
    Kv(Kv),
    Section(Section),
}

/// `key = value`; `value` is `None` for an empty assignment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Kv {
    pub key: String,
    pub key_loc: Loc,
    pub value: Option<String>,
    pub value_loc: Loc,
}

impl Section {
    pub fn new(name: &str, loc: Loc) -> Section {
        Section {
            name: name.to_owned(),
            loc,
            refs: Vec::new(),
            entries: Vec::new(),
            index: None,
        }
    }

    /// Settings and subsections in order of first definition.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries, taken.
    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }

    /// Appends an entry as it is: no merge with one of the same name
    /// (the resolver's output, built from entries already merged).
    pub fn push(&mut self, entry: Entry) {
        if let Entry::Section(s) = &entry {
            if let Some(index) = &mut self.index {
                index.entry(s.name.clone()).or_insert(self.entries.len());
            } else if self
                .entries
                .iter()
                .filter(|e| matches!(e, Entry::Section(_)))
                .count()
                >= INDEX_FROM
            {
                let mut index = HashMap::new();
                for (i, e) in self.entries.iter().enumerate() {
                    if let Entry::Section(s) = e {
                        index.entry(s.name.clone()).or_insert(i);
                    }
                }
                index.entry(s.name.clone()).or_insert(self.entries.len());
                self.index = Some(Box::new(index));
            }
        }
        self.entries.push(entry);
    }

    /// Where the subsection `name` is in `entries`.
    fn position(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self
                .entries
                .iter()
                .position(|e| matches!(e, Entry::Section(s) if s.name == name)),
        }
    }

    /// The subsection `name`, to change.
    pub fn section_mut(&mut self, name: &str) -> Option<&mut Section> {
        let i = self.position(name)?;
        match self.entries.get_mut(i) {
            Some(Entry::Section(s)) => Some(s),
            _ => None,
        }
    }

    /// Adds a setting; one already there is replaced in place.
    pub fn add_kv(&mut self, kv: Kv) {
        for e in &mut self.entries {
            if let Entry::Kv(old) = e
                && old.key == kv.key
            {
                *old = kv;
                return;
            }
        }
        self.entries.push(Entry::Kv(kv));
    }

    /// Adds a subsection; one of the same name is extended.
    pub fn add_section(&mut self, section: Section) {
        if let Some(old) = self.section_mut(&section.name) {
            old.refs.extend(section.refs);
            for entry in section.entries {
                match entry {
                    Entry::Kv(kv) => old.add_kv(kv),
                    Entry::Section(s) => old.add_section(s),
                }
            }
            return;
        }
        self.push(Entry::Section(section));
    }

    /// The subsection `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        match self.entries.get(self.position(name)?) {
            Some(Entry::Section(s)) => Some(s),
            _ => None,
        }
    }
}

/// One problem, before file names are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub loc: Loc,
    pub path: String,
    pub message: String,
}

/// How included files are found and read.
pub(crate) trait Files {
    /// The file's text.
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// The files matching a shell pattern, sorted; `Err` for a bad pattern.
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String>;
}

/// No file access: for text parsed from a string.
#[derive(Debug)]
pub(crate) struct NoFiles;

impl Files for NoFiles {
    fn read(&self, _: &Path) -> std::io::Result<String> {
        Err(std::io::Error::other(
            "include needs file access: load the file with swanctl_compat::load",
        ))
    }
    fn glob(&self, _: &str) -> Result<Vec<PathBuf>, String> {
        Err("include needs file access: load the file with swanctl_compat::load".into())
    }
}

/// The file system.
#[derive(Debug)]
pub(crate) struct Disk;

impl Files for Disk {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        // As glob(3) and the shell: a leading dot must be matched literally.
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let paths = glob::glob_with(pattern, options).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for p in paths {
            match p {
                Ok(p) if p.is_file() => out.push(p),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Everything read: the root section, the file names (indexed by
/// [`FileId`]) and the problems.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub root: Section,
    pub files: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Parses `text` (the file `name`) and whatever it includes.
pub(crate) fn parse(text: &str, name: &str, files: &dyn Files) -> Parsed {
    let mut p = Parser {
        files,
        names: vec![name.to_owned()],
        problems: Vec::new(),
    };
    let mut root = Section::default();
    let mut lx = Lexer::new(text, FileId(0));
    let _ = p.body(&mut lx, &mut root, &[], None, 0, 0);
    Parsed {
        root,
        files: p.names,
        problems: p.problems,
    }
}

struct Parser<'f> {
    files: &'f dyn Files,
    names: Vec<String>,
    problems: Vec<Problem>,
}

/// A syntax error was recorded; the current file is abandoned.
struct Abandon;

fn is_name_char(c: char) -> bool {
    !matches!(
        c,
        '#' | '{' | '}' | ':' | '.' | ',' | '=' | '"' | '\r' | '\n' | '\t' | ' '
    )
}

fn dotted(path: &[String], name: &str) -> String {
    let mut v: Vec<&str> = path.iter().map(String::as_str).collect();
    if !name.is_empty() {
        v.push(name);
    }
    if v.is_empty() {
        "(top level)".to_owned()
    } else {
        v.join(".")
    }
}

impl Parser<'_> {
    fn problem(&mut self, loc: Loc, path: String, message: impl Into<String>) {
        self.problems.push(Problem {
            loc,
            path,
            message: message.into(),
        });
    }

    /// Reads settings into `section` until its `}` (`open` is where its
    /// `{` was) or, for a file's top level (`open` None), the end of the
    /// file.
    fn body(
        &mut self,
        lx: &mut Lexer,
        section: &mut Section,
        path: &[String],
        open: Option<Loc>,
        depth: usize,
        include_depth: usize,
    ) -> Result<(), Abandon> {
        loop {
            lx.skip_blank();
            let loc = lx.loc();
            let Some(c) = lx.peek() else {
                if let Some(open) = open {
                    self.problem(
                        open,
                        dotted(path, ""),
                        format!(
                            "missing '}}': the section opened at line {} is not closed",
                            open.line
                        ),
                    );
                    return Err(Abandon);
                }
                return Ok(());
            };
            if c == '}' {
                lx.bump();
                if open.is_some() {
                    return Ok(());
                }
                self.problem(loc, dotted(path, ""), "unexpected '}': no section is open");
                return Err(Abandon);
            }
            if c == '"' {
                self.problem(
                    loc,
                    dotted(path, ""),
                    "unexpected '\"': quotes are only allowed in values",
                );
                return Err(Abandon);
            }
            if !is_name_char(c) {
                self.problem(
                    loc,
                    dotted(path, ""),
                    format!("unexpected '{c}': expected a key or a section name"),
                );
                return Err(Abandon);
            }
            let name = lx.name();
            if name == "include" && lx.at_include() {
                let pattern = match lx.include_pattern() {
                    Ok(p) => p,
                    Err(e) => {
                        self.problem(e.0, dotted(path, "include"), e.1);
                        return Err(Abandon);
                    }
                };
                self.include(lx.file, loc, &pattern, section, path, depth, include_depth)?;
                continue;
            }
            lx.skip_blank();
            match lx.peek() {
                Some('=') => {
                    lx.bump();
                    let value_loc = lx.loc();
                    match lx.value() {
                        Ok((value, vloc)) => section.add_kv(Kv {
                            key: name,
                            key_loc: loc,
                            value,
                            value_loc: vloc.unwrap_or(value_loc),
                        }),
                        Err(e) => {
                            self.problem(e.0, dotted(path, &name), e.1);
                            return Err(Abandon);
                        }
                    }
                }
                Some(c @ ('{' | ':')) => {
                    lx.bump();
                    let mut sub = Section::new(&name, loc);
                    if c == ':' {
                        sub.refs = match lx.refs() {
                            Ok(r) => r,
                            Err(e) => {
                                self.problem(e.0, dotted(path, &name), e.1);
                                return Err(Abandon);
                            }
                        };
                        lx.skip_blank();
                        if lx.peek() != Some('{') {
                            let here = lx.loc();
                            self.problem(
                                here,
                                dotted(path, &name),
                                "expected '{' after the section references",
                            );
                            return Err(Abandon);
                        }
                        lx.bump();
                    }
                    if depth.saturating_add(1) > MAX_DEPTH {
                        self.problem(
                            loc,
                            dotted(path, &name),
                            format!("sections nested more than {MAX_DEPTH} deep"),
                        );
                        return Err(Abandon);
                    }
                    let mut subpath = path.to_vec();
                    subpath.push(name.clone());
                    let r = self.body(
                        lx,
                        &mut sub,
                        &subpath,
                        Some(loc),
                        depth.saturating_add(1),
                        include_depth,
                    );
                    section.add_section(sub);
                    r?;
                }
                other => {
                    let what = match other {
                        None => "the end of the file".to_owned(),
                        Some('\n') => "the end of the line".to_owned(),
                        Some(c) => format!("'{c}'"),
                    };
                    let here = lx.loc();
                    self.problem(
                        here,
                        dotted(path, &name),
                        format!("expected '=' or '{{' after \"{name}\", found {what}"),
                    );
                    return Err(Abandon);
                }
            }
        }
    }

    /// `include pattern` at `loc` in the file `from`, into `section`.
    #[allow(clippy::too_many_arguments)]
    fn include(
        &mut self,
        from: FileId,
        loc: Loc,
        pattern: &str,
        section: &mut Section,
        path: &[String],
        depth: usize,
        include_depth: usize,
    ) -> Result<(), Abandon> {
        let key = dotted(path, "include");
        if pattern.is_empty() {
            self.problem(loc, key, "include without a file name");
            return Err(Abandon);
        }
        if include_depth.saturating_add(1) > MAX_INCLUDE_DEPTH {
            self.problem(
                loc,
                key,
                format!(
                    "includes nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
                ),
            );
            return Ok(());
        }
        // Relative to the directory of the including file.
        let including = usize::try_from(from.0)
            .ok()
            .and_then(|i| self.names.get(i))
            .map(PathBuf::from)
            .unwrap_or_default();
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            including
                .parent()
                .map_or_else(|| PathBuf::from(pattern), |d| d.join(pattern))
        };
        let full_text = full.to_string_lossy().into_owned();
        let targets = if pattern.contains(['*', '?', '[']) {
            match self.files.glob(&full_text) {
                Ok(t) => t,
                Err(e) => {
                    self.problem(loc, key, format!("include \"{pattern}\": {e}"));
                    return Ok(());
                }
            }
        } else {
            vec![full]
        };
        for target in targets {
            let name = target.to_string_lossy().into_owned();
            let text = match self.files.read(&target) {
                Ok(t) => t,
                Err(e) => {
                    self.problem(
                        loc,
                        key.clone(),
                        format!("cannot read included file \"{name}\": {e}"),
                    );
                    continue;
                }
            };
            let Ok(id) = u32::try_from(self.names.len()) else {
                self.problem(loc, key, "too many included files");
                return Err(Abandon);
            };
            self.names.push(name);
            let mut sub = Lexer::new(&text, FileId(id));
            // A syntax error abandons the included file only; it is
            // reported, and the whole load fails.
            let _ = self.body(
                &mut sub,
                section,
                path,
                None,
                depth,
                include_depth.saturating_add(1),
            );
        }
        Ok(())
    }
}

/// A location and message for a syntax error.
struct LexError(Loc, String);

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: u64,
    file: FileId,
}

impl Lexer {
    fn new(text: &str, file: FileId) -> Lexer {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            file,
        }
    }

    fn loc(&self) -> Loc {
        Loc {
            file: self.file,
            line: self.line,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(n)).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos = self.pos.saturating_add(1);
        if c == '\n' {
            self.line = self.line.saturating_add(1);
        }
        Some(c)
    }

    /// Blanks, newlines and comments between statements.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    self.bump();
                }
                '#' => self.skip_comment(),
                _ => break,
            }
        }
    }

    /// A `#` comment up to (not including) the newline.
    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    fn name(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
            s.push(c);
            self.bump();
        }
        s
    }

    /// After the word `include`: blanks, then something else than `=`
    /// (strongSwan's `"include"[\t ]+/[^=]`). Consumes the blanks if so.
    fn at_include(&mut self) -> bool {
        let mut n = 0;
        while matches!(self.peek_at(n), Some(' ' | '\t')) {
            n = n.saturating_add(1);
        }
        if n == 0 || matches!(self.peek_at(n), None | Some('=')) {
            return false;
        }
        for _ in 0..n {
            self.bump();
        }
        true
    }

    fn include_pattern(&mut self) -> Result<String, LexError> {
        let mut s = String::new();
        loop {
            match self.peek() {
                None | Some('#' | '}' | '\n' | '\t' | ' ') => return Ok(s),
                Some('\r') => {
                    self.bump();
                }
                Some('"') => {
                    let open = self.loc();
                    self.bump();
                    s.push_str(&self.string(open)?);
                    return Ok(s);
                }
                Some('\\') => {
                    self.bump();
                    match self.peek() {
                        Some(c @ ('"' | '#' | '}' | ' ')) => {
                            self.bump();
                            s.push(c);
                        }
                        _ => s.push('\\'),
                    }
                }
                Some(c) => {
                    self.bump();
                    s.push(c);
                }
            }
        }
    }

    /// A value after `=`: words and quoted strings to the end of the line,
    /// a `#` or a `}` (which are left for the statement level). Returns
    /// the value (`None` if empty) and where its first part starts.
    fn value(&mut self) -> Result<(Option<String>, Option<Loc>), LexError> {
        let mut parts: Vec<String> = Vec::new();
        let mut first = None;
        loop {
            match self.peek() {
                None | Some('\n' | '#' | '}') => break,
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('"') => {
                    let open = self.loc();
                    first.get_or_insert(open);
                    self.bump();
                    parts.push(self.string(open)?);
                }
                Some(_) => {
                    first.get_or_insert(self.loc());
                    let mut w = String::new();
                    while let Some(c) = self
                        .peek()
                        .filter(|c| !matches!(c, '#' | '}' | '"' | '\r' | '\n' | '\t' | ' '))
                    {
                        w.push(c);
                        self.bump();
                    }
                    parts.push(w);
                }
            }
        }
        let value = (!parts.is_empty()).then(|| parts.join(" "));
        Ok((value, first))
    }

    /// A quoted string after its opening quote (at `open`).
    fn string(&mut self, open: Loc) -> Result<String, LexError> {
        let unterminated = || {
            LexError(
                open,
                format!(
                    "unterminated string: the quote opened at line {} is not closed",
                    open.line
                ),
            )
        };
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(unterminated()),
                Some('"') => return Ok(s),
                Some('\r') => {}
                Some('\\') => match self.bump() {
                    None => return Err(unterminated()),
                    Some('n') => s.push('\n'),
                    Some('r') => {
                        s.push('\r');
                    }
                    Some('t') => s.push('\t'),
                    Some('\n') => {}
                    Some('\r') if self.peek() == Some('\n') => {
                        self.bump();
                    }
                    Some(c) => s.push(c),
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// References after `:`: `name[.name]*` separated by commas, blanks,
    /// newlines and comments allowed between them.
    fn refs(&mut self) -> Result<Vec<Ref>, LexError> {
        let mut refs = Vec::new();
        loop {
            self.skip_blank();
            let loc = self.loc();
            match self.peek() {
                Some(c) if is_name_char(c) => {
                    let mut target = self.name();
                    while self.peek() == Some('.') && self.peek_at(1).is_some_and(is_name_char) {
                        self.bump();
                        target.push('.');
                        target.push_str(&self.name());
                    }
                    refs.push(Ref { target, loc });
                    self.skip_blank();
                    if self.peek() == Some(',') {
                        self.bump();
                        continue;
                    }
                    return Ok(refs);
                }
                _ => {
                    return Err(LexError(
                        loc,
                        "expected the name of a section to reference after ':' or ','".into(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv<'a>(s: &'a Section, key: &str) -> &'a Kv {
        s.entries()
            .iter()
            .find_map(|e| match e {
                Entry::Kv(k) if k.key == key => Some(k),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no key {key} in {s:?}"))
    }

    fn ok(text: &str) -> Section {
        let p = parse(text, "t.conf", &NoFiles);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        p.root
    }

    fn err(text: &str) -> Problem {
        let p = parse(text, "t.conf", &NoFiles);
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        p.problems[0].clone()
    }

    #[test]
    fn values_words_strings_and_comments() {
        let r = ok("a = b\n\
                    c =   x   y\t z  # comment\n\
                    d = \"  q # } \\\" \\n \\\\ \"  tail\n\
                    e =\n\
                    f = \"\"\n\
                    g = x\"y\"z\n\
                    h = 'My \"home\" is'\n\
                    i = \"multi\nline\" \"cont\\\n\
                    inued\"\n\
                    j = {=\n");
        let v = |k: &str| kv(&r, k).value.clone();
        assert_eq!(v("a").as_deref(), Some("b"));
        assert_eq!(v("c").as_deref(), Some("x y z"));
        assert_eq!(v("d").as_deref(), Some("  q # } \" \n \\  tail"));
        assert_eq!(v("e"), None);
        assert_eq!(v("f").as_deref(), Some(""));
        assert_eq!(v("g").as_deref(), Some("x y z"));
        assert_eq!(v("h").as_deref(), Some("'My home is'"));
        assert_eq!(v("i").as_deref(), Some("multi\nline continued"));
        assert_eq!(v("j").as_deref(), Some("{="));
        assert_eq!(kv(&r, "i").key_loc.line, 8);
        assert_eq!(kv(&r, "j").key_loc.line, 11);
    }

    #[test]
    fn sections_merge_among_many() {
        // Past INDEX_FROM subsections the section finds them by its index:
        // a repeated one still merges, wherever it was first.
        let mut text = String::new();
        for k in 0..40 {
            text.push_str(&format!("c{k} {{ a = {k} }}\n"));
        }
        text.push_str("c3 { b = x }\nc39 { a = y }\nc40 { }\n");
        let r = ok(&text);
        assert_eq!(r.entries().len(), 41);
        let c3 = r.section("c3").unwrap();
        assert_eq!(kv(c3, "a").value.as_deref(), Some("3"));
        assert_eq!(kv(c3, "b").value.as_deref(), Some("x"));
        assert_eq!(
            kv(r.section("c39").unwrap(), "a").value.as_deref(),
            Some("y")
        );
        assert!(r.section("c40").is_some());
        assert!(r.section("c41").is_none());
    }

    #[test]
    fn sections_merge_and_values_replace() {
        let r = ok("s {\n a = 1\n b = 2\n}\ns\n{\n a = 3 }\nt { }\n");
        let s = r.section("s").unwrap();
        assert_eq!(s.entries().len(), 2);
        assert_eq!(kv(s, "a").value.as_deref(), Some("3"));
        assert_eq!(kv(s, "a").key_loc.line, 7);
        assert_eq!(kv(s, "b").value.as_deref(), Some("2"));
        assert!(r.section("t").is_some());
        assert_eq!(r.entries().len(), 2);
    }

    #[test]
    fn references() {
        let r = ok("a : b, c.d ,\n  e { }\nf:g{}\n");
        let a = r.section("a").unwrap();
        let t: Vec<&str> = a.refs.iter().map(|x| x.target.as_str()).collect();
        assert_eq!(t, ["b", "c.d", "e"]);
        assert_eq!(a.refs[2].loc.line, 2);
        assert_eq!(r.section("f").unwrap().refs[0].target, "g");
    }

    #[test]
    fn include_word_rules() {
        // `include = x` and `includes = x` are settings.
        let r = ok("include = x\nincludes = y\n");
        assert_eq!(kv(&r, "include").value.as_deref(), Some("x"));
        // Without file access an include is an error naming it.
        let e = err("s {\n  include foo.conf\n}\n");
        assert_eq!(e.loc.line, 2);
        assert_eq!(e.path, "s.include");
        assert!(e.message.contains("swanctl_compat::load"), "{e:?}");
    }

    #[test]
    fn syntax_errors_are_located() {
        let cases: &[(&str, u64, &str, &str)] = &[
            ("a {\n b = 1\n", 1, "a", "missing '}'"),
            ("a = 1\n}\n", 2, "(top level)", "unexpected '}'"),
            (
                "a {\n \"b\" = 1\n}",
                2,
                "a",
                "quotes are only allowed in values",
            ),
            (
                "a {\n b c = 1\n}",
                2,
                "a.b",
                "expected '=' or '{' after \"b\", found 'c'",
            ),
            ("a {\n b\n}", 3, "a.b", "found '}'"),
            ("x = \"abc\n\n", 1, "x", "unterminated string"),
            ("x : { }", 1, "x", "expected the name of a section"),
            (
                "x : y = 1",
                1,
                "x",
                "expected '{' after the section references",
            ),
            (
                "a.b = 1",
                1,
                "a",
                "expected '=' or '{' after \"a\", found '.'",
            ),
            ("= 1", 1, "(top level)", "unexpected '='"),
            ("end", 1, "end", "found the end of the file"),
        ];
        for (text, line, path, msg) in cases {
            let e = err(text);
            assert_eq!(
                (e.loc.line, e.path.as_str()),
                (*line, *path),
                "{text:?}: {e:?}"
            );
            assert!(e.message.contains(msg), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "a {".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        let e = err(&deep);
        assert!(e.message.contains("nested more than"), "{e:?}");
        let fine = "a {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        ok(&fine);
    }
}
