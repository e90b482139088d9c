//! The host's service and protocol names (`/etc/services`,
//! `/etc/protocols`) that strongSwan's traffic selectors may use, read for
//! [`ike::config::NetNames`] (the library reads no files).

use std::path::Path;

use ike::config::NetNames;

/// `/etc/services` and `/etc/protocols`; a file that cannot be read adds
/// nothing (then only numbers and the built-in protocol names work, and
/// a name is refused where it is used, with its file and line).
pub fn system() -> NetNames {
    from_files(Path::new("/etc/services"), Path::new("/etc/protocols"))
}

/// The names in `services` and `protocols` (files in their syntax).
pub fn from_files(services: &Path, protocols: &Path) -> NetNames {
    let mut names = NetNames::default();
    if let Ok(text) = std::fs::read_to_string(services) {
        names = names.with_services(&text, &services.to_string_lossy());
    }
    if let Ok(text) = std::fs::read_to_string(protocols) {
        names = names.with_protocols(&text);
    }
    names
}
