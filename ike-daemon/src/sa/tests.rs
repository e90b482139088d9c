//! Two-peer tests (work in progress).
