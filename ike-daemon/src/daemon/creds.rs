//! The configuration's credentials in the daemon: read with the
//! configuration (at start, `ikectl reload`, `--check-config`) from the
//! folders beside the configuration file and the files it names
//! (`swanctl_compat::creds`), turned into peer configurations and the trust
//! store (`ike::from_config`), and checked for certificates that expire
//! soon (at load and once a day).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ike::config::Config;
use ike::from_config::{self, Credentials, Ports, Resolved};
use ike::pki::{Certificate, TrustStore};
use ike::sa::PeerCfg;

/// How far ahead an expiring certificate is warned about.
pub const EXPIRY_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// How often the expiry check runs after the one at load.
pub const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(86_400);

/// Everything the engine gets from a configuration.
#[derive(Debug)]
pub struct Loaded {
    /// The peer configurations.
    pub peers: Vec<Arc<PeerCfg>>,
    /// The trust store.
    pub store: Arc<TrustStore>,
}

/// The directory the configuration's relative credential paths and
/// swanctl's folders are in: the configuration file's.
pub fn config_dir(config_path: &Path) -> &Path {
    match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `--check-config`: the credentials of `config` (loaded from
/// `config_path`) read and checked as the daemon would use them; the
/// warnings (PSK identities, weak algorithms, expiring certificates) to
/// print.
pub fn check(config: &Config, config_path: &Path) -> Result<Vec<String>, String> {
    let creds = read(config, config_path)?;
    let own = from_config::check_credentials(config, &creds).map_err(|e| e.to_string())?;
    let store = from_config::trust_store(config, &creds);
    let mut warnings = config.warnings();
    warnings.extend(expiry_warnings(&own, &store, unix_now()));
    Ok(warnings)
}

/// Reads the credentials of `config` (loaded from `config_path`). The
/// error lists every problem, one per line.
pub fn read(config: &Config, config_path: &Path) -> Result<Credentials, String> {
    swanctl_compat::creds::load_credentials(config, config_dir(config_path))
        .map_err(|e| e.to_string())
}

/// The peer configurations and the trust store of `config` with its
/// credentials. The error lists every problem, one per line.
pub fn build(
    config: &Config,
    creds: &Credentials,
    resolved: &Resolved,
    ports: Ports,
) -> Result<Loaded, String> {
    let peers = from_config::peers(config, resolved, ports, creds)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(Arc::new)
        .collect();
    Ok(Loaded {
        peers,
        store: Arc::new(from_config::trust_store(config, creds)),
    })
}

/// Seconds since the Unix epoch on the daemon's clock.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A Unix time as `2026-01-01 12:00:00 UTC` (the certificate messages' format).
fn date(t: i64) -> String {
    ike::pki::time_text(t)
}

/// One warning for each of our certificates (`own`) and each CA
/// certificate that expires within [`EXPIRY_WINDOW`] of `now` or has
/// expired.
pub fn expiry_warnings(own: &[Arc<Certificate>], store: &TrustStore, now: i64) -> Vec<String> {
    let window = i64::try_from(EXPIRY_WINDOW.as_secs()).unwrap_or(i64::MAX);
    from_config::expiring(own, store, now, window)
        .into_iter()
        .map(|(what, subject, not_after)| {
            if not_after < now {
                format!("{what} '{subject}' expired on {}", date(not_after))
            } else {
                let days = not_after.saturating_sub(now) / 86_400;
                format!(
                    "{what} '{subject}' expires on {} (in {days} days): renew it and run \
                     ikectl reload",
                    date(not_after)
                )
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(date(1_767_225_600), "2026-01-01 00:00:00 UTC");
        assert_eq!(date(1_767_225_600 - 1), "2025-12-31 23:59:59 UTC");
        assert_eq!(date(-86_400), "1969-12-31 00:00:00 UTC");
    }

    #[test]
    fn check_config_reads_the_credentials_and_gives_the_warnings() {
        #![allow(clippy::unwrap_used)]
        let dir = std::env::temp_dir().join(format!("iked-check-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("x509ca")).unwrap();
        let path = dir.join("iked.yaml");
        let yaml = "connections:\n  b:\n    local: { auth: psk, id: gw-a }\n    remote: { auth: psk, id: peer-b }\nsecrets:\n  ike:\n    - { ids: [gw-a], secret: s }\n";
        std::fs::write(&path, yaml).unwrap();
        let config = Config::from_yaml_str(yaml, "iked.yaml").unwrap();
        let w = check(&config, &path).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("anyone holding that secret can claim peer-b"),
            "{w:?}"
        );
        // A malformed file in a folder fails the check, naming it.
        std::fs::write(dir.join("x509ca/bad.pem"), "junk").unwrap();
        let e = check(&config, &path).unwrap_err();
        assert!(
            e.contains("x509ca/bad.pem:0: (x509ca/): not a certificate"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_config_dir_is_the_files() {
        assert_eq!(
            config_dir(Path::new("/etc/swanctl/swanctl.conf")),
            Path::new("/etc/swanctl")
        );
        assert_eq!(config_dir(Path::new("iked.yaml")), Path::new("."));
    }
}
