//! The configuration file as the endpoint's runtime configuration:
//! `config::Connection` → `sa::PeerCfg`, a [`PskStore`] over
//! `Config::find_psk`, the trust store, and what a reload changes. Names in
//! the addresses come resolved ([`Resolved`]): the daemon asks the
//! resolver; credential files come read and parsed ([`Credentials`]): the
//! daemon reads them (swanctl-compat's `creds`).

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use tracing::warn;

use zeroize::Zeroizing;

use crate::config::{
    self, Address, AuthMethod, Config, ConfigError, ConfigIssue, Connection, CredFile, Identity,
    SigKey, TsAddresses,
};
use crate::crypto::Secret;
use crate::pki::{Certificate, Crl, KeyType, PrivateKey, PublicKey, TrustStore};
use crate::sa::{
    AddrSpec, AuthRounds, ChildCfg, EapLocal, EapRemote, LocalAuthCfg, LocalCred, LocalRound,
    PeerCfg, PskStore, RemoteAuthCfg, RemoteRound, SendCert, TsCfg,
};
use crate::wire::AddressRange;
use crate::wire::codes::IdType;
use crate::wire::{Identification, TrafficSelector};

/// Addresses of the DNS names in `remote_addrs`/`local_addrs`, resolved by
/// the daemon before conversion (the conversion itself does no I/O).
pub type Resolved = HashMap<String, Vec<IpAddr>>;

/// Every name the configuration asks to resolve.
pub fn names_to_resolve(config: &Config) -> Vec<String> {
    let mut names = Vec::new();
    for c in config.connections() {
        for a in c.local_addrs.iter().chain(&c.remote_addrs) {
            if let Address::Name(n) = a
                && !names.contains(n)
            {
                names.push(n.clone());
            }
        }
    }
    names
}

/// Ports the daemon listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// The IKE port (500).
    pub ike: u16,
    /// The NAT-T port (4500).
    pub natt: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            ike: 500,
            natt: 4500,
        }
    }
}

/// A private key file as read: its public key (to match it with a
/// certificate) and what it takes to parse it again for each connection
/// that signs with it.
#[derive(Clone)]
pub struct KeyFile {
    /// The file, for messages.
    pub path: String,
    /// The key's public half.
    pub public: PublicKey,
    /// The file's bytes.
    pub bytes: Zeroizing<Vec<u8>>,
    /// Its passphrase, if it is encrypted.
    pub passphrase: Option<Zeroizing<Vec<u8>>>,
}

impl core::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The credential files the configuration uses, read and parsed by the
/// daemon (swanctl's folders beside the file and every file it names).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The certificates of each file named by `certs`, `cacerts` or an
    /// authority, by the path as the configuration writes it.
    pub cert_files: HashMap<String, Vec<Arc<Certificate>>>,
    /// The raw public key of each file named by `pubkeys`.
    pub pubkey_files: HashMap<String, PublicKey>,
    /// The certificates in `x509/` (ours to find by identity, and
    /// intermediates).
    pub x509: Vec<Arc<Certificate>>,
    /// The CA certificates in `x509ca/`.
    pub cas: Vec<Arc<Certificate>>,
    /// The CRLs in `x509crl/`.
    pub crls: Vec<Arc<Crl>>,
    /// The private keys (`private/`, `rsa/`, `ecdsa/`, `pkcs8/` and named
    /// ones).
    pub keys: Vec<KeyFile>,
}

/// The trust store: the CA certificates of `x509ca/`, of the authorities
/// and of every `cacerts` (self-signed ones anchors, others
/// intermediates), the certificates of `x509/` that are CAs as
/// intermediates, the CRLs, and each authority's `crl_uris` for the
/// certificates its CA issues. A certificate the store refuses is
/// logged and left out.
pub fn trust_store(config: &Config, creds: &Credentials) -> TrustStore {
    let mut store = TrustStore::default();
    let named = config
        .authorities()
        .iter()
        .map(|a| &a.cacert)
        .chain(config.connections().iter().flat_map(|c| &c.remote.cacerts))
        .filter_map(|f| creds.cert_files.get(&f.path))
        .flatten();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for ca in creds.cas.iter().chain(named) {
        if !seen.insert(ca.der()) {
            continue;
        }
        let added = if ca.self_signed() {
            store.add_ca(ca.clone())
        } else {
            store.add_intermediate(ca.clone())
        };
        if let Err(e) = added {
            warn!("CA certificate '{}' left out: {e}", ca.subject_text());
        }
    }
    for c in creds.x509.iter().filter(|c| c.is_ca() && !c.self_signed()) {
        if seen.insert(c.der()) {
            let _ = store.add_intermediate(c.clone());
        }
    }
    for crl in &creds.crls {
        store.add_crl(crl.clone());
    }
    for a in config.authorities() {
        for ca in creds.cert_files.get(&a.cacert.path).into_iter().flatten() {
            store.add_ca_crl_uris(ca, &a.crl_uris);
        }
    }
    store
}

/// The peer configurations of every connection. `local_port: 500` (the
/// default) means the daemon's IKE port. Certificate authentication takes
/// its certificates and keys from `creds`; what is missing there (a file
/// not read, a certificate without its private key) is an error at the
/// key that names it, all of them at once.
pub fn peers(
    config: &Config,
    resolved: &Resolved,
    ports: Ports,
    creds: &Credentials,
) -> Result<Vec<PeerCfg>, ConfigError> {
    let mut issues = Vec::new();
    let mut cache = CredCache::default();
    let peers = config
        .connections()
        .iter()
        // A connection of shunts only is never negotiated.
        .filter(|c| !c.policy.shunts_only)
        .map(|c| peer(c, resolved, ports, creds, &mut cache, &mut issues))
        .collect();
    if issues.is_empty() {
        Ok(peers)
    } else {
        Err(ConfigError { issues })
    }
}

/// The credentials made so far, so that connections with the same
/// certificates, key and padding share one [`LocalCred`] (a private key is
/// parsed, and an encrypted one decrypted, once per credential, not once
/// per connection).
#[derive(Default)]
struct CredCache(HashMap<CredId, Arc<LocalCred>>);

/// A credential's identity: the key's index in [`Credentials::keys`], the
/// certificates' DER, RSA-PSS.
type CredId = (usize, Vec<Vec<u8>>, bool);

fn certs_of<'c>(
    f: &CredFile,
    creds: &'c Credentials,
    issues: &mut Vec<ConfigIssue>,
) -> &'c [Arc<Certificate>] {
    match creds.cert_files.get(&f.path) {
        Some(v) if !v.is_empty() => v,
        Some(_) => {
            issues.push(f.at.issue(format!("{}: no certificate in the file", f.path)));
            &[]
        }
        None => {
            issues.push(f.at.issue(format!("{}: not loaded", f.path)));
            &[]
        }
    }
}

/// Whether a key of `key_type` may sign for `auth`'s constraints.
fn key_allowed(auth: &AuthMethod, key_type: KeyType) -> bool {
    let constraints = match auth {
        AuthMethod::Pubkey(c) => c,
        // EAP-TLS's client key signs in TLS, which picks a scheme for
        // every key type there is (`eap::tls`).
        AuthMethod::Eap(crate::eap::MethodName::Tls | crate::eap::MethodName::Any) => return true,
        AuthMethod::Eap(_) | AuthMethod::Psk => return false,
    };
    constraints.is_empty()
        || constraints.iter().any(|c| match c.key {
            SigKey::Any => true,
            SigKey::Rsa | SigKey::RsaPss => key_type == KeyType::Rsa,
            SigKey::Ecdsa => matches!(
                key_type,
                KeyType::EcP256 | KeyType::EcP384 | KeyType::EcP521
            ),
            SigKey::Ed25519 => key_type == KeyType::Ed25519,
        })
}

/// Our credential: the certificate (named, or found by `local.id` in
/// `x509/`), the rest of its files as the chain to send, and the private
/// key of its public key.
fn local_cred(
    c: &Connection,
    local: &config::LocalAuth,
    creds: &Credentials,
    cache: &mut CredCache,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Arc<LocalCred>> {
    let before = issues.len();
    let mut certs: Vec<Arc<Certificate>> = Vec::new();
    for f in &local.certs {
        certs.extend(certs_of(f, creds, issues).iter().cloned());
    }
    if issues.len() != before {
        return None;
    }
    let side = if std::ptr::eq(local, &c.local) {
        "local"
    } else {
        "local2"
    };
    let place = local
        .certs
        .first()
        .map(|f| f.at.clone())
        .unwrap_or_else(|| config::Place {
            file: String::new(),
            line: c.line,
            path: format!("connections.{}.{side}", c.name),
        });
    if certs.is_empty()
        && let Some(f) = local.pubkeys.first()
    {
        // A raw public key: its private key signs, no certificate is sent.
        let Some(public) = creds.pubkey_files.get(&f.path) else {
            issues.push(f.at.issue(format!("{}: not loaded", f.path)));
            return None;
        };
        let Some((index, kf)) = creds
            .keys
            .iter()
            .enumerate()
            .find(|(_, k)| k.public.spki_der() == public.spki_der())
        else {
            issues.push(f.at.issue(format!(
                "{}: no private key for this public key (looked in private/, rsa/, ecdsa/, \
                 pkcs8/ and the secrets' files)",
                f.path
            )));
            return None;
        };
        return key_cred(local, kf, index, Vec::new(), &f.at, cache, issues);
    }
    if certs.is_empty() {
        // No certs: the certificate in x509/ that names local.id and whose
        // key we have, as charon finds it.
        let id = local.id.as_ref().map(identification);
        let found = id.as_ref().and_then(|id| {
            creds.x509.iter().find(|cert| {
                cert.matches_id(id)
                    && creds
                        .keys
                        .iter()
                        .any(|k| k.public.spki_der() == cert.public_key().spki_der())
            })
        });
        match found {
            Some(cert) => certs.push(cert.clone()),
            None => {
                issues.push(place.issue(format!(
                    "no certificate in x509/ names {} and has its private key loaded",
                    c.local
                        .id
                        .as_ref()
                        .map_or_else(|| "%any".to_owned(), ToString::to_string)
                )));
                return None;
            }
        }
    }
    let end = certs.first()?.clone();
    let Some((key_index, kf)) = creds
        .keys
        .iter()
        .enumerate()
        .find(|(_, k)| k.public.spki_der() == end.public_key().spki_der())
    else {
        issues.push(place.issue(format!(
            "no private key for the certificate '{}' (looked in private/, rsa/, ecdsa/, pkcs8/ \
             and the secrets' files)",
            end.subject_text()
        )));
        return None;
    };
    key_cred(local, kf, key_index, certs, &place, cache, issues)
}

/// The credential of the key `kf` (`creds.keys[key_index]`) and `certs`,
/// shared with the connections that have the same.
fn key_cred(
    local: &config::LocalAuth,
    kf: &KeyFile,
    key_index: usize,
    certs: Vec<Arc<Certificate>>,
    place: &config::Place,
    cache: &mut CredCache,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Arc<LocalCred>> {
    if !key_allowed(&local.auth, kf.public.key_type()) {
        let what = match certs.first() {
            Some(end) => format!("the certificate '{}'", end.subject_text()),
            None => "the public key".to_owned(),
        };
        issues.push(place.issue(format!(
            "{what} has a {} key, which local.auth does not allow",
            kf.public.key_type()
        )));
        return None;
    }
    let rsa_pss = matches!(&local.auth, AuthMethod::Pubkey(v)
        if !v.is_empty() && v.iter().all(|k| k.key == SigKey::RsaPss));
    let id = (
        key_index,
        certs.iter().map(|c| c.der().to_vec()).collect::<Vec<_>>(),
        rsa_pss,
    );
    if let Some(cred) = cache.0.get(&id) {
        return Some(cred.clone());
    }
    let key = match PrivateKey::from_pem_or_der(&kf.bytes, kf.passphrase.as_ref().map(|p| &p[..])) {
        Ok(k) => k,
        Err(e) => {
            issues.push(place.issue(format!("{}: {e}", kf.path)));
            return None;
        }
    };
    let mut cred = LocalCred::new(key, certs);
    cred.rsa_pss = rsa_pss;
    let cred = Arc::new(cred);
    cache.0.insert(id, cred.clone());
    Some(cred)
}

fn remote_auth(
    remote: &config::RemoteAuth,
    creds: &Credentials,
    issues: &mut Vec<ConfigIssue>,
) -> RemoteAuthCfg {
    match remote.auth {
        AuthMethod::Psk => return RemoteAuthCfg::Psk,
        AuthMethod::Eap(method) => {
            // `%any` stays ID type 0: any EAP identity.
            let mut cacerts = Vec::new();
            for f in &remote.cacerts {
                cacerts.extend(certs_of(f, creds, issues).iter().cloned());
            }
            return RemoteAuthCfg::Eap(EapRemote {
                method,
                eap_id: remote.eap_id.as_ref().map(identification),
                aaa_id: remote.aaa_id.as_ref().map(identification),
                cacerts,
                revocation: remote.revocation,
            });
        }
        _ => {}
    }
    let mut cacerts = Vec::new();
    for f in &remote.cacerts {
        cacerts.extend(certs_of(f, creds, issues).iter().cloned());
    }
    let mut pubkeys = Vec::new();
    for f in &remote.pubkeys {
        match creds.pubkey_files.get(&f.path) {
            Some(k) => pubkeys.push(k.clone()),
            None => issues.push(f.at.issue(format!("{}: not loaded", f.path))),
        }
    }
    // A pinned peer certificate: the peer signs with its key.
    for f in &remote.certs {
        if let Some(cert) = certs_of(f, creds, issues).first() {
            pubkeys.push(cert.public_key().clone());
        }
    }
    RemoteAuthCfg::Pubkey {
        cacerts,
        pubkeys,
        revocation: remote.revocation,
        constraints: match &remote.auth {
            AuthMethod::Pubkey(constraints) => constraints.clone(),
            _ => Vec::new(),
        },
    }
}

/// Checks every connection's credentials as [`peers`] uses them,
/// without its addresses (for `--check-config`); gives our end-entity
/// certificates.
pub fn check_credentials(
    config: &Config,
    creds: &Credentials,
) -> Result<Vec<Arc<Certificate>>, ConfigError> {
    let mut issues = Vec::new();
    let mut own = Vec::new();
    let mut cache = CredCache::default();
    for c in config.connections() {
        for local in std::iter::once(&c.local).chain(&c.local2) {
            if local.auth.is_pubkey()
                && let Some(cred) = local_cred(c, local, creds, &mut cache, &mut issues)
            {
                own.extend(cred.certs.first().cloned());
            }
        }
        for remote in std::iter::once(&c.remote).chain(&c.remote2) {
            let _ = remote_auth(remote, creds, &mut issues);
        }
    }
    if issues.is_empty() {
        Ok(own)
    } else {
        Err(ConfigError { issues })
    }
}

/// Our end-entity certificates in `peers`.
pub fn own_certs(peers: &[impl Borrow<PeerCfg>]) -> Vec<Arc<Certificate>> {
    peers
        .iter()
        .filter_map(|p| match &p.borrow().local_auth {
            LocalAuthCfg::Pubkey(cred) => cred.certs.first().cloned(),
            _ => None,
        })
        .collect()
}

/// Of `own` certificates and the trust store's CAs, those that expire
/// within `window` seconds of `now` (or have): (what, subject, notAfter),
/// each once, for the daemon's warnings at load and once a day.
pub fn expiring(
    own: &[Arc<Certificate>],
    store: &TrustStore,
    now: i64,
    window: i64,
) -> Vec<(&'static str, String, i64)> {
    let limit = now.saturating_add(window);
    let mut out: Vec<(&'static str, String, i64)> = Vec::new();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let cas = store.anchors().iter().chain(store.intermediates());
    let all = own
        .iter()
        .map(|c| ("certificate", c))
        .chain(cas.map(|c| ("CA certificate", c)));
    for (what, c) in all {
        if c.not_after() <= limit && seen.insert(c.der()) {
            out.push((what, c.subject_text(), c.not_after()));
        }
    }
    out
}

fn addr_specs(list: &[Address], resolved: &Resolved, conn: &str, key: &str) -> Vec<AddrSpec> {
    let mut out = Vec::new();
    for a in list {
        match a {
            Address::Any(_) => out.push(AddrSpec::Any),
            Address::Ip(ip) => out.push(AddrSpec::Addr(*ip)),
            Address::Name(n) => match resolved.get(n) {
                Some(ips) => out.extend(ips.iter().map(|ip| AddrSpec::Addr(*ip))),
                None => warn!("connection {conn}: {key}: {n} did not resolve; left out"),
            },
            Address::Range { start, end } => {
                // The endpoint matches single addresses or %any only.
                warn!(
                    "connection {conn}: {key}: range {start}-{end} is accepted as %any by this version"
                );
                out.push(AddrSpec::Any);
            }
            #[allow(unreachable_patterns)]
            _ => out.push(AddrSpec::Any),
        }
    }
    if out.is_empty() {
        // Only unresolvable names: nothing to initiate to, accept nothing
        // special either. An empty list would match nothing; keep it so.
        warn!("connection {conn}: {key}: no usable address");
    }
    // Kept for the daemon's life: without the room of the pushes.
    out.shrink_to_fit();
    out
}

fn peer(
    c: &Connection,
    resolved: &Resolved,
    ports: Ports,
    creds: &Credentials,
    cache: &mut CredCache,
    issues: &mut Vec<ConfigIssue>,
) -> PeerCfg {
    let local_addrs = addr_specs(&c.local_addrs, resolved, &c.name, "local_addrs");
    let remote_addrs = addr_specs(&c.remote_addrs, resolved, &c.name, "remote_addrs");
    let local_auth = local_auth(c, &c.local, creds, cache, issues);
    let cert_subject = match &local_auth {
        LocalAuthCfg::Pubkey(cred) => cred.certs.first().map(|c| c.subject().clone()),
        _ => None,
    };
    // The local identity: `local.id`, or our certificate's subject DN, or
    // the first concrete local address (strongSwan's default with PSK).
    // With only %any we do not know the address yet; the engine uses the
    // wildcard ID type then.
    let local_id = match (&c.local.id, cert_subject) {
        (Some(id), _) => identification(id),
        (None, Some(subject)) => subject,
        (None, None) => match local_addrs.iter().find_map(|a| match a {
            AddrSpec::Addr(ip) => Some(*ip),
            AddrSpec::Any => None,
        }) {
            Some(ip) => identification(&Identity::from(ip)),
            None => identification(&Identity::Any),
        },
    };
    let remote_id = match &c.remote.id {
        Identity::Any => None,
        id => Some(identification(id)),
    };
    let local_port = if c.local_port == 500 {
        ports.ike
    } else {
        c.local_port
    };
    PeerCfg {
        name: c.name.clone(),
        local_addrs,
        remote_addrs,
        local_port,
        remote_port: c.remote_port,
        ike_proposals: c.proposals.clone(),
        local_id,
        remote_id,
        remote_auth: remote_auth(&c.remote, creds, issues),
        local_auth,
        send_cert: match c.send_cert {
            config::SendCert::Always => SendCert::Always,
            config::SendCert::IfAsked => SendCert::IfAsked,
            config::SendCert::Never => SendCert::Never,
        },
        send_certreq: c.send_certreq,
        // Shunts (`mode = pass | drop`) are kernel policies only: the
        // daemon installs them, the engine never negotiates them.
        children: c
            .children
            .iter()
            .filter(|ch| !ch.mode.is_shunt())
            .map(|ch| Arc::new(child(ch)))
            .collect(),
        dpd_delay: c.dpd_delay,
        encap: c.encap,
        mobike: c.mobike,
        lifetimes: c.lifetimes,
        fragmentation: c.fragmentation,
        policy: c.policy,
        behaviour: c.behaviour,
        cp: crate::sa::CpCfg {
            pools: c.pools.clone(),
            vips: c.vips.clone(),
        },
        redirect: c.redirect.clone(),
        rounds: AuthRounds {
            local: c.local2.as_ref().map(|l| LocalRound {
                id: l.id.as_ref().map(identification),
                auth: self::local_auth(c, l, creds, cache, issues),
            }),
            remote: c.remote2.as_ref().map(|r| RemoteRound {
                id: match &r.id {
                    Identity::Any => None,
                    id => Some(identification(id)),
                },
                auth: remote_auth(r, creds, issues),
            }),
        },
    }
}

/// How we authenticate in the round `local` (`c.local` or `c.local2`).
fn local_auth(
    c: &Connection,
    local: &config::LocalAuth,
    creds: &Credentials,
    cache: &mut CredCache,
    issues: &mut Vec<ConfigIssue>,
) -> LocalAuthCfg {
    match local.auth {
        AuthMethod::Psk => LocalAuthCfg::Psk,
        AuthMethod::Eap(method) => LocalAuthCfg::Eap(EapLocal {
            method,
            eap_id: local.eap_id.as_ref().map(identification),
            aaa_id: local.aaa_id.as_ref().map(identification),
            // EAP-TLS's client certificate.
            // The generic `eap` may do EAP-TLS if it has certificates.
            cred: if method == crate::eap::MethodName::Tls
                || (method == crate::eap::MethodName::Any && !local.certs.is_empty())
            {
                local_cred(c, local, creds, cache, issues)
            } else {
                None
            },
        }),
        _ => match local_cred(c, local, creds, cache, issues) {
            Some(cred) => LocalAuthCfg::Pubkey(cred),
            None => LocalAuthCfg::Psk,
        },
    }
}

fn child(ch: &config::Child) -> ChildCfg {
    ChildCfg {
        name: ch.name.clone(),
        local_ts: ch.local_ts.iter().map(ts_cfg).collect(),
        remote_ts: ch.remote_ts.iter().map(ts_cfg).collect(),
        proposals: ch.proposals().to_vec(),
        mode: ch.mode,
        sa_opts: ch.sa_opts,
        lifetimes: ch.lifetimes,
        policy: ch.policy.clone(),
        inactivity: ch.inactivity,
    }
}

/// A configured selector in the endpoint's terms.
pub fn ts_cfg(ts: &config::TrafficSelector) -> TsCfg {
    match ts.addresses {
        TsAddresses::Dynamic => TsCfg::Dynamic,
        TsAddresses::Range { start, end } => {
            let (p, s, e) = (ts.protocol, ts.ports.start, ts.ports.end);
            TsCfg::Selector(match (start, end) {
                (IpAddr::V4(a), IpAddr::V4(b)) => TrafficSelector::Ipv4(AddressRange {
                    ip_protocol: p,
                    start_port: s,
                    end_port: e,
                    start: a,
                    end: b,
                }),
                (IpAddr::V6(a), IpAddr::V6(b)) => TrafficSelector::Ipv6(AddressRange {
                    ip_protocol: p,
                    start_port: s,
                    end_port: e,
                    start: a,
                    end: b,
                }),
                // The config parser never mixes families in a range; if
                // it did, the widest range of the start's family.
                (IpAddr::V4(a), _) => TrafficSelector::Ipv4(AddressRange {
                    ip_protocol: p,
                    start_port: s,
                    end_port: e,
                    start: a,
                    end: Ipv4Addr::BROADCAST,
                }),
                (IpAddr::V6(a), _) => TrafficSelector::Ipv6(AddressRange {
                    ip_protocol: p,
                    start_port: s,
                    end_port: e,
                    start: a,
                    end: Ipv6Addr::from(u128::MAX),
                }),
            })
        }
    }
}

/// An identity's ID payload form.
pub fn identification(id: &Identity) -> Identification {
    let (id_type, data) = id.to_wire();
    Identification { id_type, data }
}

/// The configured identity a received ID payload stands for, for
/// [`Config::find_psk`]. DNs are looked up among the configured ones by
/// their DER; one configured nowhere matches only `%any` secrets.
/// The ID types [`identity`] takes from the payload alone.
fn read_from_payload(t: IdType) -> bool {
    matches!(
        t,
        IdType::IPV4_ADDR | IdType::IPV6_ADDR | IdType::FQDN | IdType::RFC822_ADDR | IdType::KEY_ID
    )
}

fn identity(id: &Identification, known: &[Identity]) -> Identity {
    let text = || String::from_utf8_lossy(&id.data).into_owned();
    match id.id_type {
        IdType::IPV4_ADDR => match <[u8; 4]>::try_from(id.data.as_slice()) {
            Ok(b) => Identity::Ipv4(Ipv4Addr::from(b)),
            Err(_) => unknown(id),
        },
        IdType::IPV6_ADDR => match <[u8; 16]>::try_from(id.data.as_slice()) {
            Ok(b) => Identity::Ipv6(Ipv6Addr::from(b)),
            Err(_) => unknown(id),
        },
        IdType::FQDN => Identity::Fqdn(text()),
        IdType::RFC822_ADDR => Identity::Rfc822(text()),
        IdType::KEY_ID => Identity::KeyId(id.data.clone()),
        _ => known
            .iter()
            .find(|k| identification(k) == *id)
            .cloned()
            .unwrap_or_else(|| unknown(id)),
    }
}

/// An identity that matches no configured one except `%any`: a key ID no
/// configuration can name (it starts with the ID type and a marker).
fn unknown(id: &Identification) -> Identity {
    let mut v = b"\0iked-unmatched\0".to_vec();
    v.push(id.id_type.0);
    v.extend_from_slice(&id.data);
    Identity::KeyId(v)
}

/// Pre-shared keys from the configuration's `secrets.ike`, chosen as
/// strongSwan does ([`Config::find_psk`]); or, made with
/// [`ConfigPsk::eap`], the EAP secrets of `secrets.eap`
/// ([`Config::find_eap`]).
#[derive(Debug)]
pub struct ConfigPsk {
    config: Arc<Config>,
    known: Vec<Identity>,
    eap: bool,
}

impl ConfigPsk {
    /// Keys of `config`.
    pub fn new(config: Arc<Config>) -> Self {
        // Only identities of the types `identity` looks up by their wire
        // form (DNs and the like); the others are read from the payload.
        // With one FQDN pair per connection this list was 120 B of every
        // connection, never read.
        let secrets = config.ike_secrets().iter().flat_map(|s| &s.ids);
        let conns = config
            .connections()
            .iter()
            .flat_map(|c| c.local.id.iter().chain([&c.remote.id]));
        let mut known: Vec<Identity> = secrets
            .chain(conns)
            .filter(|k| !read_from_payload(identification(k).id_type))
            .cloned()
            .collect();
        known.shrink_to_fit();
        ConfigPsk {
            config,
            known,
            eap: false,
        }
    }

    /// The EAP secrets of `config` (for `Endpoint::set_eap_secrets`).
    pub fn eap(config: Arc<Config>) -> Self {
        let mut known: Vec<Identity> = config
            .eap_secrets()
            .iter()
            .flat_map(|s| &s.ids)
            .filter(|k| !read_from_payload(identification(k).id_type))
            .cloned()
            .collect();
        known.shrink_to_fit();
        ConfigPsk {
            config,
            known,
            eap: true,
        }
    }
}

impl PskStore for ConfigPsk {
    fn psk(&self, local: &Identification, remote: &Identification) -> Option<Secret> {
        let l = identity(local, &self.known);
        let r = identity(remote, &self.known);
        if self.eap {
            return self.config.find_eap(&l, &r).map(Secret::from_slice);
        }
        self.config.find_psk(&l, &r).map(Secret::from_slice)
    }
}

/// What a reload changes: connections by name, and the children whose
/// `start_action` became `start` in a connection that was there before.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Changed connections' children that are `start_action: start` now
    /// and were not before.
    pub now_started: Vec<(String, Vec<String>)>,
    /// Changed connections whose traps are installed anew (more than
    /// their actions changed: selectors, addresses, proposals may differ).
    pub reinstall: Vec<String>,
}

/// The actions of a connection's children (they live in the
/// configuration, not in the peer configuration the engine uses), for
/// every connection, by connection name.
type Actions = Vec<(
    String,
    config::StartAction,
    config::CloseAction,
    config::DpdAction,
)>;

fn actions(config: &Config) -> HashMap<&str, Actions> {
    config
        .connections()
        .iter()
        .map(|c| {
            let a = c
                .children
                .iter()
                .map(|ch| {
                    (
                        ch.name.clone(),
                        ch.start_action,
                        ch.close_action,
                        ch.dpd_action,
                    )
                })
                .collect();
            (c.name.as_str(), a)
        })
        .collect()
}

/// Old and new connections compared through hash maps: linear in the
/// number of connections (nothing grows worse than linearly:
/// docs/performance.md).
pub fn reload_diff(
    old_config: &Config,
    old_peers: &[impl Borrow<PeerCfg>],
    config: &Config,
    peers: &[impl Borrow<PeerCfg>],
) -> ReloadDiff {
    let mut d = ReloadDiff::default();
    let old_peers = old_peers.iter().map(Borrow::borrow);
    let old: HashMap<&str, &PeerCfg> = old_peers.clone().map(|o| (o.name.as_str(), o)).collect();
    let peers = peers.iter().map(Borrow::borrow);
    let (old_actions, new_actions) = (actions(old_config), actions(config));
    let none = Actions::new();
    for p in peers.clone() {
        let before = old_actions.get(p.name.as_str()).unwrap_or(&none);
        let after = new_actions.get(p.name.as_str()).unwrap_or(&none);
        match old.get(p.name.as_str()) {
            None => d.added.push(p.name.clone()),
            Some(o) if *o == p && before == after => d.unchanged.push(p.name.clone()),
            Some(o) => {
                d.changed.push(p.name.clone());
                if *o != p {
                    d.reinstall.push(p.name.clone());
                }
                let kids: Vec<String> = after
                    .iter()
                    .filter(|(name, start, ..)| {
                        *start == config::StartAction::Start
                            && !before
                                .iter()
                                .any(|(n, s, ..)| n == name && *s == config::StartAction::Start)
                    })
                    .map(|(name, ..)| name.clone())
                    .collect();
                if !kids.is_empty() {
                    d.now_started.push((p.name.clone(), kids));
                }
            }
        }
    }
    let new: HashSet<&str> = peers.map(|p| p.name.as_str()).collect();
    d.removed = old_peers
        .filter(|o| !new.contains(o.name.as_str()))
        .map(|o| o.name.clone())
        .collect();
    d
}

/// Children to start when the configuration is loaded (`start_action:
/// start`), per connection.
pub fn start_children(config: &Config) -> Vec<(String, Vec<String>)> {
    config
        .connections()
        .iter()
        .filter_map(|c| {
            let kids: Vec<String> = c
                .children
                .iter()
                .filter(|ch| ch.start_action == config::StartAction::Start)
                .map(|ch| ch.name.clone())
                .collect();
            (!kids.is_empty()).then(|| (c.name.clone(), kids))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::sa::Mode;

    const YAML: &str = "
connections:
  site-b:
    local_addrs: [192.0.2.1]
    remote_addrs: [gw-b.example.net, 198.51.100.1, 10.0.0.0/8]
    proposals: [aes256gcm16-prfsha256-x25519]
    local:  { auth: psk, id: gw-a.example.net }
    remote: { auth: psk, id: gw-b.example.net }
    children:
      lan:
        local_ts: [10.1.0.0/24, '2001:db8:1::/48']
        remote_ts: ['10.2.0.10-10.2.0.20[tcp/80]']
        esp_proposals: [aes128-sha256]
        start_action: start
      host:
        mode: transport
        ah_proposals: [sha256]
  anon:
    local:  { auth: psk }
    remote: { auth: psk }
    local_port: 4501
secrets:
  ike:
    - { ids: [gw-a.example.net, gw-b.example.net], secret: 0x0102 }
    - { ids: ['C=CH, O=Ex, CN=peer'], secret: dnkey }
    - { secret: anykey }
";

    fn cfg() -> Config {
        Config::from_yaml_str(YAML, "t.yaml").unwrap()
    }

    fn fqdn(s: &str) -> Identification {
        Identification {
            id_type: IdType::FQDN,
            data: s.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_reload_that_changes_only_actions_changes_the_connection() {
        let old = cfg();
        let resolved = Resolved::new();
        let old_peers = peers(&old, &resolved, Ports::default(), &Credentials::default()).unwrap();
        let with = |from: &str, to: &str| {
            let y = YAML.replacen(from, to, 1);
            assert_ne!(y, YAML, "{to}");
            let c = Config::from_yaml_str(&y, "t.yaml").unwrap();
            let p = peers(&c, &resolved, Ports::default(), &Credentials::default()).unwrap();
            reload_diff(&old, &old_peers, &c, &p)
        };
        let same = reload_diff(&old, &old_peers, &old, &old_peers);
        assert_eq!(same.unchanged, ["site-b", "anon"]);
        assert!(same.changed.is_empty() && same.now_started.is_empty());
        for (from, to) in [
            ("start_action: start", "start_action: trap"),
            ("start_action: start", "start_action: none"),
            (
                "start_action: start",
                "start_action: start\n        close_action: trap",
            ),
            (
                "start_action: start",
                "start_action: start\n        dpd_action: restart",
            ),
            (
                "mode: transport",
                "mode: transport\n        start_action: trap",
            ),
        ] {
            let d = with(from, to);
            assert_eq!(d.changed, ["site-b"], "{to}");
            assert_eq!(d.unchanged, ["anon"], "{to}");
            // Only actions changed: the traps stay (sync_traps follows
            // start_action).
            assert!(d.reinstall.is_empty(), "{to}");
            // lan was started before: nothing to start now.
            assert!(d.now_started.is_empty(), "{to}: {:?}", d.now_started);
        }
        // host becomes start_action start: it is started.
        let d = with(
            "mode: transport",
            "mode: transport\n        start_action: start",
        );
        assert_eq!(d.changed, ["site-b"]);
        assert_eq!(
            d.now_started,
            [("site-b".to_string(), vec!["host".to_string()])]
        );
        // Back to none and start again: lan starts.
        let old2 = Config::from_yaml_str(
            &YAML.replacen("start_action: start", "start_action: none", 1),
            "t.yaml",
        )
        .unwrap();
        let p2 = peers(&old2, &resolved, Ports::default(), &Credentials::default()).unwrap();
        let d = reload_diff(&old2, &p2, &old, &old_peers);
        assert_eq!(d.changed, ["site-b"]);
        assert_eq!(
            d.now_started,
            [("site-b".to_string(), vec!["lan".to_string()])]
        );
        // A changed selector: its traps are installed anew.
        let d = with("10.1.0.0/24", "10.1.1.0/24");
        assert_eq!(
            (d.changed.as_slice(), d.reinstall.as_slice()),
            (&["site-b".to_string()][..], &["site-b".to_string()][..])
        );
    }

    #[test]
    fn connections_become_peer_configs() {
        let c = cfg();
        let mut resolved = Resolved::new();
        resolved.insert(
            "gw-b.example.net".into(),
            vec!["198.51.100.7".parse().unwrap()],
        );
        assert_eq!(names_to_resolve(&c), vec!["gw-b.example.net".to_string()]);
        let p = peers(&c, &resolved, Ports::default(), &Credentials::default()).unwrap();
        assert_eq!(p.len(), 2);
        let s = &p[0];
        assert_eq!(s.name, "site-b");
        assert_eq!(
            s.local_addrs,
            vec![AddrSpec::Addr("192.0.2.1".parse().unwrap())]
        );
        assert_eq!(
            s.remote_addrs,
            vec![
                AddrSpec::Addr("198.51.100.7".parse().unwrap()),
                AddrSpec::Addr("198.51.100.1".parse().unwrap()),
                AddrSpec::Any,
            ]
        );
        assert_eq!((s.local_port, s.remote_port), (500, 500));
        assert_eq!(s.local_id, fqdn("gw-a.example.net"));
        assert_eq!(s.remote_id, Some(fqdn("gw-b.example.net")));
        assert_eq!(s.ike_proposals, c.connections()[0].proposals);
        let lan = s.child("lan").unwrap();
        assert_eq!(lan.mode, Mode::Tunnel);
        assert_eq!(lan.sa_opts.replay_window, 32);
        assert_eq!(lan.proposals, c.connections()[0].children[0].esp_proposals);
        assert_eq!(
            lan.local_ts,
            vec![
                TsCfg::Selector(TrafficSelector::Ipv4(AddressRange::any(
                    "10.1.0.0".parse().unwrap(),
                    "10.1.0.255".parse().unwrap()
                ))),
                TsCfg::Selector(TrafficSelector::Ipv6(AddressRange::any(
                    "2001:db8:1::".parse().unwrap(),
                    "2001:db8:1:ffff:ffff:ffff:ffff:ffff".parse().unwrap()
                ))),
            ]
        );
        assert_eq!(
            lan.remote_ts,
            vec![TsCfg::Selector(TrafficSelector::Ipv4(AddressRange {
                ip_protocol: 6,
                start_port: 80,
                end_port: 80,
                start: "10.2.0.10".parse().unwrap(),
                end: "10.2.0.20".parse().unwrap(),
            }))]
        );
        let host = s.child("host").unwrap();
        assert_eq!(host.mode, Mode::Transport);
        assert_eq!(host.local_ts, vec![TsCfg::Dynamic]);
        assert_eq!(host.remote_ts, vec![TsCfg::Dynamic]);
        assert_eq!(
            host.proposals,
            c.connections()[0].children[1].ah_proposals,
            "AH proposals win when configured"
        );
    }

    #[test]
    fn defaults_local_id_to_the_local_address_and_remote_to_any() {
        let c = Config::from_yaml_str(
            "connections:\n  x:\n    local_addrs: ['2001:db8::1']\n    local: { auth: psk }\n    remote: { auth: psk }\n",
            "t",
        )
        .unwrap();
        let p = peers(
            &c,
            &Resolved::new(),
            Ports::default(),
            &Credentials::default(),
        )
        .unwrap();
        assert_eq!(
            p[0].local_id,
            Identification {
                id_type: IdType::IPV6_ADDR,
                data: "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets().to_vec()
            }
        );
        assert_eq!(p[0].remote_id, None);
        assert_eq!(p[0].local_addrs.len(), 1);
    }

    #[test]
    fn unresolved_names_are_left_out_and_ports_follow_the_daemon() {
        let c = cfg();
        let p = peers(
            &c,
            &Resolved::new(),
            Ports {
                ike: 5500,
                natt: 5501,
            },
            &Credentials::default(),
        )
        .unwrap();
        assert_eq!(p[0].remote_addrs.len(), 2);
        assert_eq!(p[0].local_port, 5500, "default 500 means the daemon's port");
        assert_eq!(p[1].local_port, 4501, "an explicit port stays");
        // %any only: the wildcard identity until the address is known.
        assert_eq!(p[1].local_addrs, vec![AddrSpec::Any]);
        assert_eq!(p[1].local_id.data, Vec::<u8>::new());
    }

    #[test]
    fn eap_connections_and_secrets_reach_the_engine() {
        use crate::eap::MethodName;
        use crate::sa::{EapLocal, EapRemote};
        let y = "\
connections:
  gw:
    local: { auth: psk }
    remote: { auth: eap-mschapv2, eap_id: '%any' }
  rw:
    local: { auth: eap-mschapv2, id: carol@example.org, eap_id: carol }
    remote: { auth: psk }
secrets:
  eap:
    - { ids: [carol], secret: pw }
";
        let c = Arc::new(Config::from_yaml_str(y, "t").unwrap());
        let p = peers(
            &c,
            &Resolved::new(),
            Ports::default(),
            &Credentials::default(),
        )
        .unwrap();
        let any = Identification {
            id_type: IdType(0),
            data: Vec::new(),
        };
        assert_eq!(
            p[0].remote_auth,
            RemoteAuthCfg::Eap(EapRemote {
                method: MethodName::Mschapv2,
                eap_id: Some(any),
                aaa_id: None,
                cacerts: Vec::new(),
                revocation: Default::default(),
            })
        );
        assert_eq!(
            p[1].local_auth,
            LocalAuthCfg::Eap(EapLocal {
                method: MethodName::Mschapv2,
                eap_id: Some(fqdn("carol")),
                aaa_id: None,
                cred: None,
            })
        );
        // The user's password is an EAP secret, never an IKE PSK.
        let eap = ConfigPsk::eap(c.clone());
        let pw = eap.psk(&fqdn("gw.example"), &fqdn("carol")).unwrap();
        assert_eq!(pw.as_bytes(), b"pw");
        assert!(eap.psk(&fqdn("gw.example"), &fqdn("dave")).is_none());
        assert!(
            ConfigPsk::new(c)
                .psk(&fqdn("gw.example"), &fqdn("carol"))
                .is_none()
        );
        // eap_id belongs to EAP.
        let e = Config::from_yaml_str(
            "connections:\n  x:\n    local: { auth: psk }\n    remote: { auth: psk, eap_id: x }\n",
            "t",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("eap_id needs auth eap-mschapv2"),
            "{e}"
        );
    }

    #[test]
    fn second_rounds_reach_the_engine() {
        use crate::eap::MethodName;
        use crate::sa::{EapLocal, EapRemote};
        let y = "\
connections:
  gw:
    local: { auth: psk }
    remote: { auth: psk }
    remote2: { auth: eap-mschapv2, id: '%any', eap_id: '%any' }
  rw:
    local: { auth: psk }
    local2: { auth: eap-tls, id: carol, aaa_id: aaa.example }
    remote: { auth: psk }
";
        let c = Arc::new(Config::from_yaml_str(y, "t").unwrap());
        let p = peers(
            &c,
            &Resolved::new(),
            Ports::default(),
            &Credentials::default(),
        );
        // eap-tls needs our certificate: local2 is read like local.
        let e = p.unwrap_err().to_string();
        assert!(e.contains("connections.rw.local2"), "{e}");
        let y = y.replace("eap-tls", "eap-mschapv2");
        let c = Arc::new(Config::from_yaml_str(&y, "t").unwrap());
        let p = peers(
            &c,
            &Resolved::new(),
            Ports::default(),
            &Credentials::default(),
        )
        .unwrap();
        let any = Identification {
            id_type: IdType(0),
            data: Vec::new(),
        };
        let r2 = p[0].rounds.remote.as_ref().unwrap();
        assert_eq!(r2.id, None);
        assert_eq!(
            r2.auth,
            RemoteAuthCfg::Eap(EapRemote {
                method: MethodName::Mschapv2,
                eap_id: Some(any),
                aaa_id: None,
                cacerts: Vec::new(),
                revocation: Default::default(),
            })
        );
        assert!(p[0].rounds.local.is_none());
        let l2 = p[1].rounds.local.as_ref().unwrap();
        assert_eq!(l2.id, Some(fqdn("carol")));
        assert_eq!(
            l2.auth,
            LocalAuthCfg::Eap(EapLocal {
                method: MethodName::Mschapv2,
                eap_id: None,
                aaa_id: Some(fqdn("aaa.example")),
                cred: None,
            })
        );
    }

    #[test]
    fn remote_auth_constraints_reach_the_engine() {
        use config::{SigConstraint, SigHash, SigKey};
        let with = |auth: &str| {
            let y = format!(
                "connections:\n  x:\n    local: {{ auth: psk }}\n    remote: {{ auth: '{auth}' }}\n"
            );
            let c = Config::from_yaml_str(&y, "t").unwrap();
            let p = peers(
                &c,
                &Resolved::new(),
                Ports::default(),
                &Credentials::default(),
            )
            .unwrap();
            match &p[0].remote_auth {
                RemoteAuthCfg::Pubkey { constraints, .. } => constraints.clone(),
                other => panic!("{auth}: {other:?}"),
            }
        };
        assert_eq!(
            with("rsa-3072-sha384-ecdsa-sha256"),
            [
                SigConstraint {
                    key: SigKey::Rsa,
                    hash: Some(SigHash::Sha384),
                    min_bits: Some(3072),
                },
                SigConstraint {
                    key: SigKey::Ecdsa,
                    hash: Some(SigHash::Sha256),
                    min_bits: None,
                },
            ]
        );
        assert_eq!(
            with("rsa/pss"),
            [SigConstraint {
                key: SigKey::RsaPss,
                hash: None,
                min_bits: None,
            }]
        );
        assert_eq!(with("pubkey"), []);
    }

    #[test]
    fn psk_lookup_uses_find_psk() {
        let c = Arc::new(cfg());
        let store = ConfigPsk::new(c.clone());
        let k = store
            .psk(&fqdn("gw-a.example.net"), &fqdn("GW-B.example.net"))
            .unwrap();
        assert_eq!(k.as_bytes(), &[1, 2]);
        // Someone else: the %any secret.
        let k = store.psk(&fqdn("me"), &fqdn("x")).unwrap();
        assert_eq!(k.as_bytes(), b"anykey");
        // A DN peer matches its secret by DER.
        let dn = Identity::parse("C=CH, O=Ex, CN=peer").unwrap();
        // The FQDNs are not kept for lookups by wire form; the DN is.
        assert!(store.known.contains(&dn));
        assert!(
            store.known.iter().all(|k| !matches!(k, Identity::Fqdn(_))),
            "{:?}",
            store.known
        );
        let k = store.psk(&fqdn("me"), &identification(&dn)).unwrap();
        assert_eq!(k.as_bytes(), b"dnkey");
        // Garbage never panics.
        let junk = Identification {
            id_type: IdType::IPV4_ADDR,
            data: vec![1, 2, 3],
        };
        assert_eq!(store.psk(&junk, &junk).unwrap().as_bytes(), b"anykey");
    }

    #[test]
    fn start_action_start_is_collected() {
        assert_eq!(
            start_children(&cfg()),
            vec![("site-b".to_string(), vec!["lan".to_string()])]
        );
    }

    #[test]
    fn icmp_and_service_selectors_reach_the_ts_payload_as_rfc_7296() {
        let names = config::NetNames::default().with_services("ssh 22/tcp\n", "services");
        // (protocol, start port, end port) of the selector sent; the TS
        // payload carries them verbatim (wire::ts tests the octets).
        let wire = |s: &str| match ts_cfg(&config::TrafficSelector::parse_with(s, &names).unwrap())
        {
            TsCfg::Selector(TrafficSelector::Ipv4(r)) => (r.ip_protocol, r.start_port, r.end_port),
            other => panic!("{s}: {other:?}"),
        };
        // Type in the high octet of the port fields, code in the low one.
        assert_eq!(wire("10.1.0.0/24[icmp/769]"), (1, 0x0301, 0x0301));
        assert_eq!(wire("10.1.0.0/24[icmp/8]"), (1, 0x0800, 0x0800));
        assert_eq!(wire("10.1.0.0/24[tcp/ssh]"), (6, 22, 22));
    }

    #[test]
    fn an_eap_tls_client_key_may_be_of_any_type() {
        let tls = AuthMethod::Eap(crate::eap::MethodName::Tls);
        for k in [
            KeyType::Rsa,
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::EcP521,
            KeyType::Ed25519,
        ] {
            assert!(key_allowed(&tls, k), "{k}");
        }
        let mschap = AuthMethod::Eap(crate::eap::MethodName::Mschapv2);
        assert!(!key_allowed(&mschap, KeyType::EcP256));
        assert!(!key_allowed(&AuthMethod::Psk, KeyType::EcP256));
    }
}
