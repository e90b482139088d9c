//! IKEv2 messages and payloads: checked parsing of untrusted bytes and emitting.

pub mod codes;
pub mod sa;
