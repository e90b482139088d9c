//! Chain building and validation, as strongSwan's credential manager and
//! its constraints and revocation validators do it.
//!
//! From the end entity up, each issuer is looked for among the trusted
//! certificates (the store's anchors and intermediates, the connection's
//! pinned CAs) first, then among the peer's CERT payloads: a candidate's
//! subject must equal the certificate's issuer (its subjectKeyIdentifier,
//! if both identifiers exist, the authorityKeyIdentifier), it must be a
//! CA (basicConstraints) unless it is a trust anchor, and its key must
//! verify the certificate's signature (every link, whatever its
//! algorithm). The path ends at a self-signed trusted certificate; a
//! certificate already on the path is never a candidate again (a loop
//! ends the search), the path holds at most `MAX_TRUST_PATH_LEN` CAs
//! above the end entity's issuer, and a validation tries at most
//! `MAX_SIGNATURE_CHECKS` signatures, so a peer's hundred certificates
//! cost bounded work.
//!
//! Along the path: every certificate's validity at `now`; each CA's
//! pathLenConstraint and keyUsage (keyCertSign where keyUsage is present);
//! the end entity's keyUsage (digitalSignature or nonRepudiation where
//! present, strongSwan's RFC 4945 check); nameConstraints of every CA over
//! the certificates below it (DNS, e-mail, IP, DN; other forms fail);
//! policyConstraints and inhibitAnyPolicy as strongSwan checks them; the
//! pinned CAs (one of them must be on the path); then revocation by CRL
//! for every link, per [`Revocation`]. A link's CRL distribution points
//! are the ones the store has for its issuer (an authority's `crl_uris`),
//! then the certificate's own. extendedKeyUsage is parsed but, as
//! in strongSwan, not required for IKE.

use std::sync::Arc;

use super::cert::{CertError, Certificate, NameConstraint, date_text};
use super::dn;
use super::store::TrustStore;
use crate::wire::codes::IdType;

/// strongSwan's MAX_TRUST_PATH_LEN: CA certificates looked up above the
/// end entity's issuer.
pub const MAX_TRUST_PATH_LEN: usize = 7;

/// Signature verifications one validation may spend on candidate issuers.
pub const MAX_SIGNATURE_CHECKS: usize = 32;

/// strongSwan's `revocation` setting of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Revocation {
    /// The status of every certificate must be known good (a current CRL
    /// of its issuer that does not list it).
    Strict,
    /// Fails if a certificate has CRL distribution points (its own or its
    /// issuer's in the store) and its status cannot be determined (no CRL
    /// could be had, or only a stale one).
    IfUri,
    /// Fails only for a revoked certificate.
    #[default]
    Relaxed,
}

/// The inputs of one validation besides the certificates.
#[derive(Clone, Copy, Debug)]
pub struct ValidateParams<'a> {
    /// Now, Unix seconds (the engine's UTC).
    pub now_unix: i64,
    /// The connection's `cacerts`: if not empty, one of them must be on
    /// the path (as the anchor or an intermediate, as strongSwan).
    pub pinned_cas: &'a [Arc<Certificate>],
    /// The connection's revocation policy.
    pub revocation: Revocation,
    /// The daemon has already tried to fetch the CRLs asked for by a
    /// [`Validation::NeedCrls`] of this certificate: what is still
    /// missing counts as unavailable instead of being asked for again.
    pub crls_fetched: bool,
}

impl<'a> ValidateParams<'a> {
    /// Parameters for a first validation (no fetch yet).
    pub fn new(now_unix: i64, pinned_cas: &'a [Arc<Certificate>], revocation: Revocation) -> Self {
        ValidateParams {
            now_unix,
            pinned_cas,
            revocation,
            crls_fetched: false,
        }
    }
}

/// The outcome of a validation that did not fail.
#[derive(Clone, Debug)]
pub enum Validation {
    /// A trusted path: the end entity first, the trust anchor last.
    Trusted {
        /// The path.
        chain: Vec<Arc<Certificate>>,
    },
    /// Everything checked out so far, but the revocation status needs
    /// CRLs from these URIs: fetch them, add them to the store, validate
    /// again with `crls_fetched`.
    NeedCrls {
        /// The CRL distribution points, without duplicates.
        uris: Vec<String>,
    },
}

/// A candidate issuer: where it comes from decides whether it is trusted.
struct Candidate<'c> {
    cert: &'c Certificate,
    shared: Option<&'c Arc<Certificate>>,
    trusted: bool,
}

/// Validates `end` (the peer's end-entity certificate) against `store`,
/// with `untrusted` the other certificates the peer sent.
pub fn validate(
    store: &TrustStore,
    end: &Certificate,
    untrusted: &[Certificate],
    p: &ValidateParams<'_>,
) -> Result<Validation, CertError> {
    let now = p.now_unix;
    let subject = end.subject_text();
    check_time(end, now)?;
    if !end.ike_compliant() {
        return Err(CertError::KeyUsage {
            subject,
            reason: "has keyUsage without digitalSignature or nonRepudiation".into(),
        });
    }
    let chain = build_path(store, end, untrusted, p)?;
    check_name_constraints(&chain)?;
    check_policy_constraints(&chain)?;
    if !p.pinned_cas.is_empty()
        && !chain
            .iter()
            .skip(1)
            .any(|c| p.pinned_cas.iter().any(|pin| pin.der() == c.der()))
    {
        return Err(CertError::NotPinned { subject });
    }
    let uris = check_revocation(store, &chain, p)?;
    if uris.is_empty() {
        Ok(Validation::Trusted { chain })
    } else {
        Ok(Validation::NeedCrls { uris })
    }
}

fn check_time(c: &Certificate, now: i64) -> Result<(), CertError> {
    if now < c.not_before() {
        return Err(CertError::NotYetValid {
            subject: c.subject_text(),
            date: date_text(c.not_before()),
        });
    }
    if now > c.not_after() {
        return Err(CertError::Expired {
            subject: c.subject_text(),
            date: date_text(c.not_after()),
        });
    }
    Ok(())
}

/// The path from `end` to a trust anchor, end entity first.
fn build_path(
    store: &TrustStore,
    end: &Certificate,
    untrusted: &[Certificate],
    p: &ValidateParams<'_>,
) -> Result<Vec<Arc<Certificate>>, CertError> {
    let subject = end.subject_text();
    let no_path = |reason: String| CertError::NoTrustedPath {
        subject: subject.clone(),
        reason,
    };
    let is_anchor = |c: &Certificate| {
        c.self_signed()
            && (store.anchors().iter().any(|a| a.der() == c.der())
                || p.pinned_cas.iter().any(|a| a.der() == c.der()))
    };
    let mut chain: Vec<Arc<Certificate>> = vec![Arc::new(end.clone())];
    let mut checks = 0usize;
    loop {
        let Some(current) = chain.last().cloned() else {
            return Err(no_path("empty path".into()));
        };
        if is_anchor(&current) {
            return Ok(chain);
        }
        if chain.len() > MAX_TRUST_PATH_LEN.saturating_add(1) {
            return Err(CertError::PathTooLong {
                subject,
                max: MAX_TRUST_PATH_LEN,
            });
        }
        if current.self_signed() {
            return Err(no_path(format!(
                "self-signed certificate '{}' is not trusted",
                current.subject_text()
            )));
        }
        let trusted = store
            .anchors()
            .iter()
            .chain(p.pinned_cas.iter())
            .chain(store.intermediates().iter())
            .map(|c| Candidate {
                cert: c,
                shared: Some(c),
                trusted: true,
            });
        let peer = untrusted.iter().map(|c| Candidate {
            cert: c,
            shared: None,
            trusted: false,
        });
        let mut found = None;
        let mut not_ca = None;
        for cand in trusted.chain(peer) {
            let c = cand.cert;
            if chain.iter().any(|x| x.der() == c.der())
                || !dn::dn_der_equals(&current.issuer().data, &c.subject().data)
                || !current.akid_fits(c)
            {
                continue;
            }
            if !(c.is_ca() || cand.trusted && c.self_signed()) {
                not_ca = Some(c.subject_text());
                continue;
            }
            if checks >= MAX_SIGNATURE_CHECKS {
                return Err(no_path(format!(
                    "more than {MAX_SIGNATURE_CHECKS} candidate issuer signatures to check"
                )));
            }
            checks = checks.saturating_add(1);
            if current.verify_signed_by(c.public_key()) {
                found = Some(cand);
                break;
            }
        }
        let Some(issuer) = found else {
            let reason = match (not_ca, current.signature_scheme()) {
                (Some(n), _) => format!(
                    "issuer '{n}' of '{}' is not a CA certificate",
                    current.subject_text()
                ),
                (None, None) => format!(
                    "signature algorithm of '{}' is not supported",
                    current.subject_text()
                ),
                (None, Some(_)) => format!(
                    "no issuer certificate found for '{}' (issuer '{}')",
                    current.subject_text(),
                    current.issuer_text()
                ),
            };
            return Err(no_path(reason));
        };
        let issuer = match issuer.shared {
            Some(a) => Arc::clone(a),
            None => Arc::new(issuer.cert.clone()),
        };
        check_time(&issuer, p.now_unix)?;
        if issuer.key_usage().is_some_and(|k| !k.key_cert_sign()) {
            return Err(CertError::KeyUsage {
                subject: issuer.subject_text(),
                reason: "may not sign certificates (keyUsage without keyCertSign)".into(),
            });
        }
        // CA certificates below this issuer (the end entity not counted).
        let below = chain.len().saturating_sub(1);
        if let Some(max) = issuer.path_len()
            && u32::try_from(below).map_or(true, |b| b > max)
        {
            return Err(CertError::PathLenExceeded {
                subject,
                ca: issuer.subject_text(),
                constraint: max,
                len: below,
            });
        }
        chain.push(issuer);
    }
}

fn constraint_violation(c: &Certificate, reason: String) -> CertError {
    CertError::Constraint {
        subject: c.subject_text(),
        reason,
    }
}

/// strongSwan's `fqdn_matches`: the constraint ends the name, at a label
/// boundary (or the constraint starts with `.`).
fn fqdn_matches(constraint: &str, name: &str) -> bool {
    let (c, n) = (constraint.as_bytes(), name.as_bytes());
    if c.is_empty() || n.len() < c.len() {
        return false;
    }
    let split = n.len().saturating_sub(c.len());
    let (head, tail) = n.split_at(split);
    if !tail.eq_ignore_ascii_case(c) {
        return false;
    }
    head.is_empty() || c.first() == Some(&b'.') || head.last() == Some(&b'.')
}

/// strongSwan's `email_matches`: a full address, a host (`@` before it),
/// or a `.domain` suffix.
fn email_matches(constraint: &str, addr: &str) -> bool {
    let (c, n) = (constraint.as_bytes(), addr.as_bytes());
    if c.is_empty() || n.len() < c.len() {
        return false;
    }
    if c.contains(&b'@') {
        return n.eq_ignore_ascii_case(c);
    }
    let split = n.len().saturating_sub(c.len());
    let (head, tail) = n.split_at(split);
    if !tail.eq_ignore_ascii_case(c) {
        return false;
    }
    head.is_empty() || c.first() == Some(&b'.') || head.last() == Some(&b'@')
}

fn ip_matches(constraint: &[u8], addr: &[u8]) -> bool {
    let half = constraint.len() / 2;
    let (net, mask) = constraint.split_at(half);
    net.len() == addr.len()
        && net
            .iter()
            .zip(mask.iter())
            .zip(addr.iter())
            .all(|((n, m), a)| n & m == a & m)
}

/// Which of one CA's constraints apply to a name of the certificate below,
/// and whether it matches. `None`: the constraint is of another kind.
fn constraint_matches(nc: &NameConstraint, name: &crate::wire::Identification) -> Option<bool> {
    let text = || core::str::from_utf8(&name.data).ok();
    match (nc, name.id_type) {
        (NameConstraint::Dns(c), IdType::FQDN) => Some(text().is_some_and(|n| fqdn_matches(c, n))),
        (NameConstraint::Email(c), IdType::RFC822_ADDR) => {
            Some(text().is_some_and(|n| email_matches(c, n)))
        }
        (NameConstraint::Dn(c), IdType::DER_ASN1_DN) => Some(dn::dn_prefix_matches(c, &name.data)),
        (NameConstraint::Ip(c), IdType::IPV4_ADDR | IdType::IPV6_ADDR) => {
            Some(ip_matches(c, &name.data))
        }
        _ => None,
    }
}

/// nameConstraints: each CA's permitted and excluded subtrees apply to
/// the subject DN and subjectAltNames of every certificate below it.
fn check_name_constraints(chain: &[Arc<Certificate>]) -> Result<(), CertError> {
    for (i, ca) in chain.iter().enumerate().skip(1) {
        let (permitted, excluded) = ca.name_constraints();
        if permitted.is_empty() && excluded.is_empty() {
            continue;
        }
        for nc in permitted.iter().chain(excluded.iter()) {
            if let NameConstraint::Unsupported(form) = nc {
                return Err(constraint_violation(
                    ca,
                    format!("name constraint {form} not supported"),
                ));
            }
        }
        if excluded
            .iter()
            .any(|nc| matches!(nc, NameConstraint::Dn(_)))
        {
            return Err(constraint_violation(
                ca,
                "excluded directoryName constraints not supported".into(),
            ));
        }
        for below in chain.iter().take(i) {
            let names = std::iter::once(below.subject()).chain(below.sans().iter());
            for name in names {
                let mut any_of_kind = false;
                let mut permitted_hit = false;
                for nc in permitted {
                    if let Some(m) = constraint_matches(nc, name) {
                        any_of_kind = true;
                        permitted_hit |= m;
                    }
                }
                let shown = crate::display::IdDisplay(name).to_string();
                if any_of_kind && !permitted_hit {
                    return Err(constraint_violation(
                        below,
                        format!(
                            "name '{shown}' is not permitted by the name constraints of '{}'",
                            ca.subject_text()
                        ),
                    ));
                }
                if excluded
                    .iter()
                    .any(|nc| constraint_matches(nc, name) == Some(true))
                {
                    return Err(constraint_violation(
                        below,
                        format!(
                            "name '{shown}' is excluded by the name constraints of '{}'",
                            ca.subject_text()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// anyPolicy, 2.5.29.32.0.
const ANY_POLICY: &[u8] = &[0x55, 0x1d, 0x20, 0x00];

/// strongSwan's `has_policy`: the issuer has the policy, anyPolicy, or
/// maps to it.
fn has_policy(issuer: &Certificate, oid: &[u8]) -> bool {
    let p = issuer.policies();
    p.oids.iter().any(|o| o == oid || o == ANY_POLICY) || p.mappings.iter().any(|(_, s)| s == oid)
}

/// strongSwan's policyConstraints / inhibitAnyPolicy checks.
/// `chain[0]` is the end entity, the last the anchor.
fn check_policy_constraints(chain: &[Arc<Certificate>]) -> Result<(), CertError> {
    let Some((end, cas)) = chain.split_first() else {
        return Ok(());
    };
    // requireExplicitPolicy of the CA at index `len` (0 = the end entity's
    // issuer): the first `len - n` links from the end entity up must carry
    // the subject's policies in their issuer.
    for (len, ca) in cas.iter().enumerate() {
        let Some(expl) = ca.policies().require_explicit else {
            continue;
        };
        let count = len.saturating_sub(usize::try_from(expl).unwrap_or(usize::MAX));
        let mut subject: &Certificate = end;
        for issuer in cas.iter().take(count) {
            let sp = subject.policies();
            if let Some((from, _)) = sp.mappings.iter().find(|(i, _)| !has_policy(issuer, i)) {
                return Err(constraint_violation(
                    subject,
                    format!(
                        "maps policy {} missing in its issuer '{}'",
                        oid_text(from),
                        issuer.subject_text()
                    ),
                ));
            }
            if let Some(o) = sp.oids.iter().find(|o| !has_policy(issuer, o)) {
                return Err(constraint_violation(
                    subject,
                    format!(
                        "policy {} missing in issuing certificate '{}'",
                        oid_text(o),
                        issuer.subject_text()
                    ),
                ));
            }
            subject = issuer;
        }
    }
    // inhibitPolicyMapping / inhibitAnyPolicy of the certificate at index
    // `len` (0 = the end entity): the first `len - n` certificates must
    // not map policies / use anyPolicy.
    for (len, c) in chain.iter().enumerate() {
        let p = c.policies();
        if let Some(inh) = p.inhibit_mapping {
            let count = len.saturating_sub(usize::try_from(inh).unwrap_or(usize::MAX));
            if let Some(bad) = chain
                .iter()
                .take(count)
                .find(|x| !x.policies().mappings.is_empty())
            {
                return Err(constraint_violation(
                    bad,
                    "has a policyMapping, but inhibitPolicyMapping is in effect".into(),
                ));
            }
        }
        if let Some(inh) = p.inhibit_any {
            let count = len.saturating_sub(usize::try_from(inh).unwrap_or(usize::MAX));
            if let Some(bad) = chain
                .iter()
                .take(count)
                .find(|x| x.policies().oids.iter().any(|o| o == ANY_POLICY))
            {
                return Err(constraint_violation(
                    bad,
                    "has anyPolicy, but inhibitAnyPolicy is in effect".into(),
                ));
            }
        }
    }
    Ok(())
}

/// An OID body as dotted text (for messages).
fn oid_text(oid: &[u8]) -> String {
    x509_parser::der_parser::oid::Oid::new(oid.into()).to_id_string()
}

/// What the CRLs in the store say about one link.
enum CrlStatus {
    Good,
    Revoked(i64),
    Stale,
    Missing,
}

fn crl_status(
    store: &TrustStore,
    subject: &Certificate,
    issuer: &Certificate,
    now: i64,
) -> CrlStatus {
    let mut status = CrlStatus::Missing;
    for crl in store.crls() {
        if !crl.names_issuer(issuer) || crl.this_update() > now || !crl.issued_by(issuer) {
            continue;
        }
        if let Some(date) = crl.revocation_date(subject.serial()) {
            return CrlStatus::Revoked(date);
        }
        if crl.is_current(now) {
            status = CrlStatus::Good;
        } else if matches!(status, CrlStatus::Missing) {
            status = CrlStatus::Stale;
        }
    }
    status
}

/// Revocation of every link of the path; the URIs to fetch, if any.
fn check_revocation(
    store: &TrustStore,
    chain: &[Arc<Certificate>],
    p: &ValidateParams<'_>,
) -> Result<Vec<String>, CertError> {
    let mut uris: Vec<String> = Vec::new();
    for pair in chain.windows(2) {
        let [subject, issuer] = pair else {
            continue;
        };
        let status = crl_status(store, subject, issuer, p.now_unix);
        let link_uris = store.ca_crl_uris(issuer).iter().chain(subject.crl_uris());
        let has_uris = link_uris.clone().next().is_some();
        let unknown = |reason: &str| CertError::RevocationUnknown {
            subject: subject.subject_text(),
            reason: reason.to_owned(),
        };
        match status {
            CrlStatus::Good => {}
            CrlStatus::Revoked(date) => {
                return Err(CertError::Revoked {
                    subject: subject.subject_text(),
                    date: date_text(date),
                });
            }
            CrlStatus::Stale | CrlStatus::Missing if has_uris && !p.crls_fetched => {
                for u in link_uris {
                    if !uris.contains(u) {
                        uris.push(u.clone());
                    }
                }
            }
            CrlStatus::Stale => {
                if p.revocation != Revocation::Relaxed {
                    return Err(unknown("the CRL is stale"));
                }
            }
            CrlStatus::Missing => match p.revocation {
                Revocation::Strict if has_uris => return Err(unknown("no CRL could be fetched")),
                Revocation::Strict => return Err(unknown("no CRL and no CRL URI")),
                Revocation::IfUri if has_uris => return Err(unknown("no CRL could be fetched")),
                Revocation::IfUri | Revocation::Relaxed => {}
            },
        }
    }
    Ok(uris)
}

#[cfg(test)]
mod tests;
