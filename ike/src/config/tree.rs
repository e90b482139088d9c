//! The located tree every configuration front end produces and the schema
//! walks: iked's YAML (`Config::from_yaml_str`) and swanctl.conf (the
//! `swanctl-compat` crate) both turn their text into [`Node`]s and hand
//! them to [`Config::from_tree`](super::Config::from_tree), so both formats
//! share every check and every message.
//!
//! The tree is shaped like iked's YAML (docs/configuration.md): mappings
//! with the swanctl key names, lists as sequences or comma-separated
//! scalars, every scalar as text. Each node knows the file and the line it
//! comes from, so that a problem in an included file is reported there.

/// Which file a node comes from: an index into the file names given to
/// [`Config::from_tree`](super::Config::from_tree). YAML files are always
/// `FileId(0)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// A place in the configuration: file and 1-based line (0 if unknown).
/// Orders by file, then line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    /// The file.
    pub file: FileId,
    /// The line in it.
    pub line: u64,
}

/// One node with where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The file it comes from.
    pub file: FileId,
    /// The line it starts on (1-based).
    pub line: u64,
    /// What it is.
    pub kind: Kind,
}

impl Node {
    /// A node in `file` at `line`.
    pub fn new(file: FileId, line: u64, kind: Kind) -> Node {
        Node { file, line, kind }
    }

    /// Where the node starts.
    pub fn loc(&self) -> Loc {
        Loc {
            file: self.file,
            line: self.line,
        }
    }
}

/// What a node is. All scalars are text; no typing (a `0x1234` secret
/// stays the text `0x1234`).
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Nothing: YAML's `~`/`null`/empty value.
    Null,
    /// A scalar as written (quotes and escapes resolved).
    Scalar(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, entries in file order, duplicates kept (the schema
    /// reports them).
    Map(Vec<(Node, Node)>),
}

impl Kind {
    /// "a string", "a list", ... for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Null => "nothing (null)",
            Kind::Scalar(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}
