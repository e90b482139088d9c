//! informational (work in progress).
