//! Reads strongSwan's swanctl.conf into iked's configuration.
//!
//! The reader lives in the `ike` library as [`ike::config::swanctl`], so
//! the daemon's binaries (`iked --config swanctl.conf`, `ikectl convert`)
//! can use it (this crate depends on the library, which cannot depend on
//! it; docs/decisions.md). This crate re-exports it under its old name.
//!
//! ```
//! let config = swanctl_compat::parse_str(
//!     "connections {\n c {\n  remote_addrs = 192.0.2.1\n  local { auth = psk }\n  \
//!      remote { auth = psk }\n }\n}\n",
//!     "swanctl.conf",
//! )
//! .unwrap();
//! assert_eq!(config.connections()[0].name, "c");
//! ```

pub use ike::config::swanctl::*;
