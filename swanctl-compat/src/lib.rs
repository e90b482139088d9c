//! Reads strongSwan's swanctl.conf into iked's configuration.
//!
//! Built in issue 5 ("Interoperability with strongSwan, and swanctl.conf as
//! configuration"); this crate is an empty placeholder in the workspace until then.
