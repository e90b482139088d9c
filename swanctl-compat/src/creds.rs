//! The credential files of a configuration, read and parsed: swanctl's
//! folders beside the configuration file (`x509/`, `x509ca/`, `x509crl/`,
//! `private/`, `rsa/`, `ecdsa/`, `pkcs8/`, `pubkey/`) and every file the
//! configuration names (`certs`, `cacerts`, `pubkeys`, an authority's
//! `cacert`, a private key secret's `file`), absolute or relative to the
//! configuration file's directory. The `ike` library reads no files: this
//! is where they are read, for iked (both formats) and `ikectl`.
//!
//! Every problem is collected: an unreadable, oversized or malformed file,
//! an encrypted key without its passphrase or with a wrong one. A named
//! file's problem is reported at the configuration's file, line and key;
//! a problem of a file found in a folder at that file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ike::config::{Config, ConfigError, ConfigIssue, CredFile, KeyKind};
use ike::from_config::{Credentials, KeyFile};
use ike::pki::{Certificate, Crl, PkiError, PrivateKey, PublicKey};
use zeroize::Zeroizing;

/// The largest credential file read (a CRL of a big CA is a few MB).
const MAX_FILE: u64 = 16 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum What {
    Cert,
    CaCert,
    Crl,
    Key,
    Pubkey,
}

/// swanctl's folders and what each holds.
const FOLDERS: &[(&str, What)] = &[
    ("x509", What::Cert),
    ("x509ca", What::CaCert),
    ("x509crl", What::Crl),
    ("private", What::Key),
    ("rsa", What::Key),
    ("ecdsa", What::Key),
    ("pkcs8", What::Key),
    ("pubkey", What::Pubkey),
];

/// Reads the credential folders in `dir` (the configuration file's
/// directory) and every file `config` names. Every problem is in the
/// error.
pub fn load_credentials(config: &Config, dir: &Path) -> Result<Credentials, ConfigError> {
    let mut l = Loader {
        dir,
        config,
        creds: Credentials::default(),
        issues: Vec::new(),
        keys_read: HashSet::new(),
    };
    for &(folder, what) in FOLDERS {
        l.folder(folder, what);
    }
    l.named();
    if l.issues.is_empty() {
        Ok(l.creds)
    } else {
        Err(ConfigError { issues: l.issues })
    }
}

/// Where a problem is: a named file at its key, a folder's file at itself.
enum At<'a> {
    Named(&'a CredFile),
    Folder(&'a str),
}

struct Loader<'a> {
    dir: &'a Path,
    config: &'a Config,
    creds: Credentials,
    issues: Vec<ConfigIssue>,
    /// Key files read (resolved paths), so a named one in a folder is
    /// read once.
    keys_read: HashSet<PathBuf>,
}

impl<'a> Loader<'a> {
    fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    fn problem(&mut self, at: &At<'_>, file: &Path, message: impl std::fmt::Display) {
        let issue = match at {
            At::Named(f) => f.at.issue(format!("{}: {message}", file.display())),
            At::Folder(folder) => ConfigIssue {
                file: file.display().to_string(),
                line: 0,
                path: format!("({folder}/)"),
                message: message.to_string(),
            },
        };
        self.issues.push(issue);
    }

    fn read(&mut self, at: &At<'_>, file: &Path) -> Option<Zeroizing<Vec<u8>>> {
        let meta = match std::fs::metadata(file) {
            Ok(m) => m,
            Err(e) => {
                self.problem(at, file, format!("cannot read: {e}"));
                return None;
            }
        };
        if meta.len() > MAX_FILE {
            self.problem(
                at,
                file,
                format!("{} bytes, more than the {MAX_FILE} read", meta.len()),
            );
            return None;
        }
        match std::fs::read(file) {
            Ok(b) => Some(Zeroizing::new(b)),
            Err(e) => {
                self.problem(at, file, format!("cannot read: {e}"));
                None
            }
        }
    }

    /// Every regular file in `dir/folder`, sorted; none if the folder does
    /// not exist.
    fn folder(&mut self, folder: &'static str, what: What) {
        let path = self.dir.join(folder);
        let entries = match std::fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.problem(&At::Folder(folder), &path, format!("cannot read: {e}"));
                return;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            let name = format!(
                "{folder}/{}",
                file.file_name().unwrap_or_default().to_string_lossy()
            );
            let at = At::Folder(folder);
            match what {
                What::Cert | What::CaCert => {
                    if let Some(certs) = self.certs(&at, &file) {
                        if what == What::Cert {
                            self.creds.x509.extend(certs.iter().cloned());
                        } else {
                            self.creds.cas.extend(certs.iter().cloned());
                        }
                        self.creds.cert_files.insert(name, certs);
                    }
                }
                What::Crl => {
                    if let Some(bytes) = self.read(&at, &file) {
                        match Crl::parse_pem_or_der(&bytes) {
                            Ok(v) if !v.is_empty() => {
                                self.creds.crls.extend(v.into_iter().map(Arc::new));
                            }
                            Ok(_) => self.problem(&at, &file, "no CRL in the file"),
                            Err(e) => self.problem(&at, &file, format!("not a CRL: {e}")),
                        }
                    }
                }
                What::Key => self.key(&at, &file, Some(folder)),
                What::Pubkey => {
                    if let Some(k) = self.pubkey(&at, &file) {
                        self.creds.pubkey_files.insert(name, k);
                    }
                }
            }
        }
    }

    fn certs(&mut self, at: &At<'_>, file: &Path) -> Option<Vec<Arc<Certificate>>> {
        let bytes = self.read(at, file)?;
        match Certificate::parse_pem_or_der(&bytes) {
            Ok(v) if !v.is_empty() => Some(v.into_iter().map(Arc::new).collect()),
            Ok(_) => {
                self.problem(at, file, "no certificate in the file");
                None
            }
            Err(e) => {
                self.problem(at, file, format!("not a certificate: {e}"));
                None
            }
        }
    }

    fn pubkey(&mut self, at: &At<'_>, file: &Path) -> Option<PublicKey> {
        let bytes = self.read(at, file)?;
        match PublicKey::from_pem_or_der(&bytes) {
            Ok(k) => Some(k),
            Err(e) => {
                self.problem(at, file, format!("not a public key: {e}"));
                None
            }
        }
    }

    /// The passphrase the secrets give for `file`, and which secret.
    fn passphrase(&self, file: &Path) -> Option<(&'a CredFile, KeyKind, Zeroizing<Vec<u8>>)> {
        let config: &'a Config = self.config;
        config
            .key_secrets()
            .iter()
            .find(|s| self.resolve(&s.file.path) == file)
            .map(|s| (&s.file, s.kind, s.secret.clone()))
    }

    fn key(&mut self, at: &At<'_>, file: &Path, folder: Option<&str>) {
        if !self.keys_read.insert(file.to_path_buf()) {
            return;
        }
        let Some(bytes) = self.read(at, file) else {
            return;
        };
        let secret = self.passphrase(file);
        let pass = secret.as_ref().map(|(_, _, p)| p.clone());
        match PrivateKey::from_pem_or_der(&bytes, pass.as_deref().map(|p| &p[..])) {
            Ok(k) => self.creds.keys.push(KeyFile {
                path: file.display().to_string(),
                public: k.public_key().clone(),
                bytes,
                passphrase: pass,
            }),
            Err(PkiError::PassphraseRequired) => {
                let kind = folder.unwrap_or("private");
                self.problem(
                    at,
                    file,
                    format!(
                        "the key is encrypted: give its passphrase in secrets.{kind} \
                         ({{ file, secret }}; swanctl.conf: secrets {{ {kind}-name {{ file = ... \
                         secret = ... }} }})"
                    ),
                );
            }
            Err(e) => {
                // A wrong passphrase is the secret's problem: say where it is.
                let at = match (&e, secret.as_ref()) {
                    (PkiError::BadPassphrase, Some((f, _, _))) => At::Named(f),
                    _ => match at {
                        At::Named(f) => At::Named(f),
                        At::Folder(x) => At::Folder(x),
                    },
                };
                self.problem(&at, file, format!("not a usable private key: {e}"));
            }
        }
    }

    /// The files the configuration names that the folders did not hold.
    fn named(&mut self) {
        let config = self.config;
        let mut certs: Vec<&CredFile> = Vec::new();
        let mut pubkeys: Vec<&CredFile> = Vec::new();
        for c in config.connections() {
            certs.extend(&c.local.certs);
            certs.extend(&c.remote.certs);
            certs.extend(&c.remote.cacerts);
            pubkeys.extend(&c.local.pubkeys);
            pubkeys.extend(&c.remote.pubkeys);
        }
        certs.extend(config.authorities().iter().map(|a| &a.cacert));
        for f in certs {
            if self.creds.cert_files.contains_key(&f.path) {
                continue;
            }
            let file = self.resolve(&f.path);
            if let Some(v) = self.certs(&At::Named(f), &file) {
                self.creds.cert_files.insert(f.path.clone(), v);
            }
        }
        for f in pubkeys {
            if self.creds.pubkey_files.contains_key(&f.path) {
                continue;
            }
            let file = self.resolve(&f.path);
            if let Some(k) = self.pubkey(&At::Named(f), &file) {
                self.creds.pubkey_files.insert(f.path.clone(), k);
            }
        }
        for s in config.key_secrets() {
            let file = self.resolve(&s.file.path);
            self.key(&At::Named(&s.file), &file, Some(s.kind.name()));
        }
    }
}
