//! child_create (work in progress).
