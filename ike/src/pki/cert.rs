//! X.509 certificates (RFC 5280): parsed with x509-parser into an owned
//! [`Certificate`] holding its DER and the fields IKE needs.
//!
//! Extensions handled as strongSwan's x509 plugin handles them:
//! basicConstraints (CA, pathLenConstraint), keyUsage, extendedKeyUsage
//! (serverAuth, clientAuth, ikeIntermediate, OCSPSigning),
//! subjectAltName (DNS, e-mail, IP address, directory name),
//! cRLDistributionPoints (URIs), subject/authority key identifiers,
//! authorityInfoAccess, certificatePolicies, policyMappings,
//! policyConstraints, inhibitAnyPolicy, nameConstraints, issuerAltName
//! and the Netscape comment/URL extensions. A certificate with any other
//! extension marked critical is refused, as strongSwan does
//! (`x509.enforce_critical`, on by default); so is one whose handled
//! extension does not parse, or that repeats an extension.
//!
//! Certificates come from peers and files: nothing here panics on them.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::dn::{self, TAG_SEQUENCE, der_next};
use super::{PublicKey, SigScheme, scheme_from_algorithm_identifier};
use crate::display::IdDisplay;
use crate::wire::Identification;
use crate::wire::codes::IdType;

/// What is wrong with a certificate, a CRL or a chain. The messages are
/// the log lines IKE_AUTH writes when it refuses a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Not a parseable X.509 certificate (or PEM file of them).
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// Not a parseable CRL.
    #[error("malformed CRL: {0}")]
    MalformedCrl(String),
    /// A critical extension this implementation does not handle.
    #[error("certificate '{subject}' has an unsupported critical extension {oid}")]
    UnsupportedCritical {
        /// The certificate's subject.
        subject: String,
        /// The extension's OID, dotted.
        oid: String,
    },
    /// Past its notAfter.
    #[error("certificate '{subject}' expired on {date}")]
    Expired {
        /// The certificate's subject.
        subject: String,
        /// Its notAfter (`YYYY-MM-DD`).
        date: String,
    },
    /// Before its notBefore.
    #[error("certificate '{subject}' is not valid before {date}")]
    NotYetValid {
        /// The certificate's subject.
        subject: String,
        /// Its notBefore (`YYYY-MM-DD`).
        date: String,
    },
    /// No path from the certificate to a trust anchor.
    #[error("no trusted path for '{subject}': {reason}")]
    NoTrustedPath {
        /// The end entity's subject.
        subject: String,
        /// Where the path ended.
        reason: String,
    },
    /// The path is longer than strongSwan's MAX_TRUST_PATH_LEN.
    #[error("no trusted path for '{subject}': maximum path length of {max} exceeded")]
    PathTooLong {
        /// The end entity's subject.
        subject: String,
        /// The limit.
        max: usize,
    },
    /// A CA's pathLenConstraint is exceeded.
    #[error(
        "certificate '{ca}' allows a path length of {constraint}, its path to '{subject}' has {len}"
    )]
    PathLenExceeded {
        /// The end entity's subject.
        subject: String,
        /// The constraining CA.
        ca: String,
        /// Its pathLenConstraint.
        constraint: u32,
        /// Intermediate certificates below it.
        len: usize,
    },
    /// A key usage the certificate's role needs is missing.
    #[error("certificate '{subject}' {reason}")]
    KeyUsage {
        /// The certificate's subject.
        subject: String,
        /// What is missing.
        reason: String,
    },
    /// A name constraint or a certificate policy constraint is violated.
    #[error("certificate '{subject}' violates a constraint: {reason}")]
    Constraint {
        /// The certificate's subject.
        subject: String,
        /// Which.
        reason: String,
    },
    /// The path does not pass through a CA the connection pins (`cacerts`).
    #[error("certificate '{subject}' is not issued by a CA of this connection (cacerts)")]
    NotPinned {
        /// The end entity's subject.
        subject: String,
    },
    /// Revoked by a CRL.
    #[error("certificate '{subject}' was revoked on {date}")]
    Revoked {
        /// The revoked certificate's subject.
        subject: String,
        /// The revocation date (`YYYY-MM-DD`).
        date: String,
    },
    /// The revocation policy needs a status that is not available.
    #[error("certificate status of '{subject}' is not available ({reason})")]
    RevocationUnknown {
        /// The certificate's subject.
        subject: String,
        /// What was missing.
        reason: String,
    },
}

/// extendedKeyUsage purposes strongSwan records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtKeyUsage {
    /// id-kp-serverAuth.
    pub server_auth: bool,
    /// id-kp-clientAuth.
    pub client_auth: bool,
    /// ikeIntermediate (1.3.6.1.5.5.8.2.2).
    pub ike_intermediate: bool,
    /// id-kp-OCSPSigning.
    pub ocsp_signing: bool,
    /// The extension is present at all.
    pub present: bool,
}

/// keyUsage bits (RFC 5280 4.2.1.3), as x509-parser numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUsage(pub u16);

impl KeyUsage {
    /// digitalSignature.
    pub fn digital_signature(self) -> bool {
        self.0 & 1 != 0
    }
    /// nonRepudiation (contentCommitment).
    pub fn non_repudiation(self) -> bool {
        self.0 & 2 != 0
    }
    /// keyCertSign.
    pub fn key_cert_sign(self) -> bool {
        self.0 & 0x20 != 0
    }
    /// cRLSign.
    pub fn crl_sign(self) -> bool {
        self.0 & 0x40 != 0
    }
}

/// One subtree of a nameConstraints extension, in the forms strongSwan
/// supports; anything else is `Unsupported` (and fails validation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameConstraint {
    /// dNSName: a name or a `.domain` suffix.
    Dns(String),
    /// rfc822Name: an address, a host or a `.domain`.
    Email(String),
    /// directoryName: a DER Name whose RDNs must be a prefix.
    Dn(Vec<u8>),
    /// iPAddress: address and mask (4+4 or 16+16 octets).
    Ip(Vec<u8>),
    /// Another GeneralName form (URI, otherName, ...).
    Unsupported(String),
}

/// The policy-related extensions (RFC 5280 4.2.1.4/5/11/14).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policies {
    /// certificatePolicies: policy OIDs (DER bodies).
    pub oids: Vec<Vec<u8>>,
    /// policyMappings: (issuerDomainPolicy, subjectDomainPolicy).
    pub mappings: Vec<(Vec<u8>, Vec<u8>)>,
    /// policyConstraints requireExplicitPolicy.
    pub require_explicit: Option<u32>,
    /// policyConstraints inhibitPolicyMapping.
    pub inhibit_mapping: Option<u32>,
    /// inhibitAnyPolicy.
    pub inhibit_any: Option<u32>,
}

/// An X.509 certificate: its DER and the parsed fields, owned.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Vec<u8>,
    sig_alg: Vec<u8>,
    signature: Vec<u8>,
    scheme: Option<SigScheme>,
    serial: Vec<u8>,
    subject: Identification,
    issuer: Identification,
    not_before: i64,
    not_after: i64,
    public_key: PublicKey,
    ca: bool,
    path_len: Option<u32>,
    key_usage: Option<KeyUsage>,
    eku: ExtKeyUsage,
    sans: Vec<Identification>,
    crl_uris: Vec<String>,
    skid: Option<Vec<u8>>,
    akid: Option<Vec<u8>>,
    policies: Policies,
    permitted: Vec<NameConstraint>,
    excluded: Vec<NameConstraint>,
    self_signed: bool,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Certificate('{}')", self.subject_text())
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Certificate {}

/// OIDs (DER bodies) of the extensions handled.
mod oid {
    pub const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    pub const ISSUER_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x12];
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    pub const NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
    pub const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
    pub const CERTIFICATE_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
    pub const POLICY_MAPPINGS: &[u8] = &[0x55, 0x1d, 0x21];
    pub const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    pub const POLICY_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x24];
    pub const EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    pub const INHIBIT_ANY_POLICY: &[u8] = &[0x55, 0x1d, 0x36];
    /// 1.3.6.1.5.5.7.1.1
    pub const AUTHORITY_INFO_ACCESS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
    /// 2.16.840.1.113730.1.{3,4,7,13}: Netscape revocation URL, CA
    /// revocation URL, CA policy URL, comment.
    pub const NS_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01];
    pub const NS_HANDLED: &[u8] = &[3, 4, 7, 13];
    /// 1.3.6.1.5.5.8.2.2 ikeIntermediate (RFC 4945 / strongSwan).
    pub const IKE_INTERMEDIATE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x08, 0x02, 0x02];
}

fn is_handled(oid: &[u8]) -> bool {
    const HANDLED: &[&[u8]] = &[
        oid::SUBJECT_KEY_ID,
        oid::KEY_USAGE,
        oid::SUBJECT_ALT_NAME,
        oid::ISSUER_ALT_NAME,
        oid::BASIC_CONSTRAINTS,
        oid::NAME_CONSTRAINTS,
        oid::CRL_DISTRIBUTION_POINTS,
        oid::CERTIFICATE_POLICIES,
        oid::POLICY_MAPPINGS,
        oid::AUTHORITY_KEY_ID,
        oid::POLICY_CONSTRAINTS,
        oid::EXTENDED_KEY_USAGE,
        oid::INHIBIT_ANY_POLICY,
        oid::AUTHORITY_INFO_ACCESS,
    ];
    if HANDLED.contains(&oid) {
        return true;
    }
    match oid.strip_prefix(oid::NS_PREFIX) {
        Some([last]) => oid::NS_HANDLED.contains(last),
        _ => false,
    }
}

/// The contents of a BIT STRING with no unused bits.
fn bit_string_octets(e: &dn::Element<'_>) -> Option<Vec<u8>> {
    if e.tag != 0x03 {
        return None;
    }
    match e.body.split_first() {
        Some((0, rest)) => Some(rest.to_vec()),
        _ => None,
    }
}

/// Certificate / CertificateList ::= SEQUENCE { tbs, signatureAlgorithm,
/// signatureValue }: the three raw parts (tbs and algorithm with their
/// tag and length), and the signature octets.
pub(crate) fn signed_parts(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let outer = dn::der_only(der, TAG_SEQUENCE)?;
    let (tbs, rest) = der_next(outer.body)?;
    let (alg, rest) = der_next(rest)?;
    let (sig, rest) = der_next(rest)?;
    if tbs.tag != TAG_SEQUENCE || alg.tag != TAG_SEQUENCE || !rest.is_empty() {
        return None;
    }
    Some((
        tbs.whole.to_vec(),
        alg.whole.to_vec(),
        bit_string_octets(&sig)?,
    ))
}

/// The raw AlgorithmIdentifier inside a TBSCertificate (after the
/// optional version and the serial), to check it equals the outer one.
fn tbs_signature_alg(tbs: &[u8]) -> Option<&[u8]> {
    let body = dn::der_only(tbs, TAG_SEQUENCE)?.body;
    let (first, rest) = der_next(body)?;
    // [0] EXPLICIT version.
    let rest = if first.tag == 0xa0 {
        let (_serial, rest) = der_next(rest)?;
        rest
    } else {
        rest
    };
    let (alg, _) = der_next(rest)?;
    (alg.tag == TAG_SEQUENCE).then_some(alg.whole)
}

/// An INTEGER's content octets without redundant leading zeros, so that
/// serials compare by value.
pub(crate) fn normalize_serial(raw: &[u8]) -> Vec<u8> {
    let mut s = raw;
    while let [0, rest @ ..] = s {
        if rest.is_empty() {
            break;
        }
        s = rest;
    }
    s.to_vec()
}

/// A SAN or name-constraint GeneralName as an identity; `None` for forms
/// IKE identities cannot express.
fn general_name_id(g: &GeneralName<'_>) -> Option<Identification> {
    match g {
        GeneralName::DNSName(s) => Some(Identification::fqdn(s)),
        GeneralName::RFC822Name(s) => Some(Identification::rfc822(s)),
        GeneralName::IPAddress(b) => match b.len() {
            4 => <[u8; 4]>::try_from(*b)
                .ok()
                .map(|a| Identification::ipv4(Ipv4Addr::from(a))),
            16 => <[u8; 16]>::try_from(*b)
                .ok()
                .map(|a| Identification::ipv6(Ipv6Addr::from(a))),
            _ => None,
        },
        GeneralName::DirectoryName(n) => Some(Identification::der_dn(n.as_raw().to_vec())),
        _ => None,
    }
}

fn name_constraint(g: &GeneralName<'_>) -> NameConstraint {
    match g {
        GeneralName::DNSName(s) => NameConstraint::Dns((*s).to_owned()),
        GeneralName::RFC822Name(s) => NameConstraint::Email((*s).to_owned()),
        GeneralName::DirectoryName(n) => NameConstraint::Dn(n.as_raw().to_vec()),
        GeneralName::IPAddress(b) if b.len() == 8 || b.len() == 32 => {
            NameConstraint::Ip(b.to_vec())
        }
        other => NameConstraint::Unsupported(format!("{other:?}")),
    }
}

impl Certificate {
    /// Parses one DER certificate. Refuses trailing data, unsupported
    /// critical extensions, an unparseable handled extension, a repeated
    /// extension, mismatching signature algorithms and a public key of a
    /// type iked does not support.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let bad = |s: &str| CertError::Malformed(s.to_owned());
        let (rest, x) =
            X509Certificate::from_der(der).map_err(|e| CertError::Malformed(format!("{e}")))?;
        if !rest.is_empty() {
            return Err(bad("trailing data after the certificate"));
        }
        let (tbs, sig_alg, signature) =
            signed_parts(der).ok_or_else(|| bad("not a DER Certificate"))?;
        if tbs_signature_alg(&tbs) != Some(sig_alg.as_slice()) {
            return Err(bad("signature algorithms do not agree"));
        }
        let t = &x.tbs_certificate;
        let subject = Identification::der_dn(t.subject.as_raw().to_vec());
        let subject_text = IdDisplay(&subject).to_string();
        let public_key = PublicKey::from_spki_der(t.subject_pki.raw)
            .map_err(|e| CertError::Malformed(format!("'{subject_text}': public key: {e}")))?;
        let mut c = Certificate {
            der: der.to_vec(),
            scheme: scheme_from_algorithm_identifier(&sig_alg),
            tbs,
            sig_alg,
            signature,
            serial: normalize_serial(t.raw_serial()),
            issuer: Identification::der_dn(t.issuer.as_raw().to_vec()),
            subject,
            not_before: t.validity.not_before.timestamp(),
            not_after: t.validity.not_after.timestamp(),
            public_key,
            ca: false,
            path_len: None,
            key_usage: None,
            eku: ExtKeyUsage::default(),
            sans: Vec::new(),
            crl_uris: Vec::new(),
            skid: None,
            akid: None,
            policies: Policies::default(),
            permitted: Vec::new(),
            excluded: Vec::new(),
            self_signed: false,
        };
        if !t.extensions().is_empty() && t.version.0 != 2 {
            return Err(bad("only X.509v3 certificates have extensions"));
        }
        let mut seen: Vec<&[u8]> = Vec::new();
        for ext in t.extensions() {
            let oid = ext.oid.as_bytes();
            if seen.contains(&oid) {
                return Err(CertError::Malformed(format!(
                    "'{subject_text}': extension {} repeated",
                    ext.oid.to_id_string()
                )));
            }
            seen.push(oid);
            if !is_handled(oid) {
                if ext.critical {
                    return Err(CertError::UnsupportedCritical {
                        subject: subject_text,
                        oid: ext.oid.to_id_string(),
                    });
                }
                continue;
            }
            let parse_err = || {
                CertError::Malformed(format!(
                    "'{subject_text}': extension {} does not parse",
                    ext.oid.to_id_string()
                ))
            };
            match ext.parsed_extension() {
                ParsedExtension::ParseError { .. } => return Err(parse_err()),
                ParsedExtension::BasicConstraints(b) => {
                    c.ca = b.ca;
                    // strongSwan reads the constraint only on CAs.
                    c.path_len = if b.ca { b.path_len_constraint } else { None };
                }
                ParsedExtension::KeyUsage(k) => c.key_usage = Some(KeyUsage(k.flags)),
                ParsedExtension::ExtendedKeyUsage(e) => {
                    c.eku = ExtKeyUsage {
                        server_auth: e.server_auth,
                        client_auth: e.client_auth,
                        ike_intermediate: e
                            .other
                            .iter()
                            .any(|o| o.as_bytes() == oid::IKE_INTERMEDIATE),
                        ocsp_signing: e.ocsp_signing,
                        present: true,
                    };
                }
                ParsedExtension::SubjectAlternativeName(s) => {
                    c.sans = s.general_names.iter().filter_map(general_name_id).collect();
                }
                ParsedExtension::CRLDistributionPoints(p) => {
                    for point in &p.points {
                        if let Some(DistributionPointName::FullName(names)) =
                            &point.distribution_point
                        {
                            for n in names {
                                if let GeneralName::URI(u) = n {
                                    c.crl_uris.push((*u).to_owned());
                                }
                            }
                        }
                    }
                }
                ParsedExtension::SubjectKeyIdentifier(k) => c.skid = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    c.akid = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                ParsedExtension::CertificatePolicies(p) => {
                    c.policies.oids = p.iter().map(|i| i.policy_id.as_bytes().to_vec()).collect();
                }
                ParsedExtension::PolicyMappings(m) => {
                    c.policies.mappings = m
                        .mappings
                        .iter()
                        .map(|m| {
                            (
                                m.issuer_domain_policy.as_bytes().to_vec(),
                                m.subject_domain_policy.as_bytes().to_vec(),
                            )
                        })
                        .collect();
                }
                ParsedExtension::PolicyConstraints(p) => {
                    c.policies.require_explicit = p.require_explicit_policy;
                    c.policies.inhibit_mapping = p.inhibit_policy_mapping;
                }
                ParsedExtension::InhibitAnyPolicy(i) => c.policies.inhibit_any = Some(i.skip_certs),
                ParsedExtension::NameConstraints(n) => {
                    for (list, out) in [
                        (&n.permitted_subtrees, &mut c.permitted),
                        (&n.excluded_subtrees, &mut c.excluded),
                    ] {
                        for s in list.iter().flatten() {
                            out.push(name_constraint(&s.base));
                        }
                    }
                }
                // Handled by being known: parsed, nothing IKE uses.
                ParsedExtension::AuthorityInfoAccess(_)
                | ParsedExtension::IssuerAlternativeName(_)
                | ParsedExtension::NsCertComment(_)
                | ParsedExtension::UnsupportedExtension { .. }
                | ParsedExtension::Unparsed => {}
                _ => {}
            }
        }
        c.self_signed = dn::dn_der_equals(&c.subject.data, &c.issuer.data)
            && c.akid_fits(&c)
            && c.verify_signed_by(&c.public_key);
        Ok(c)
    }

    /// Parses a file's certificates: PEM (one or more `CERTIFICATE`
    /// blocks; other blocks are skipped) or one DER certificate.
    pub fn parse_pem_or_der(bytes: &[u8]) -> Result<Vec<Self>, CertError> {
        let blocks = pem_blocks(bytes, &["CERTIFICATE", "X509 CERTIFICATE"])?;
        match blocks {
            Some(ders) => {
                if ders.is_empty() {
                    return Err(CertError::Malformed(
                        "no CERTIFICATE in the PEM data".into(),
                    ));
                }
                ders.iter().map(|d| Self::from_der(d)).collect()
            }
            None => Ok(vec![Self::from_der(bytes)?]),
        }
    }

    /// The certificate's DER encoding (what a CERT payload carries).
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The subject as an ID_DER_ASN1_DN identity.
    pub fn subject(&self) -> &Identification {
        &self.subject
    }
    /// The issuer as an ID_DER_ASN1_DN identity.
    pub fn issuer(&self) -> &Identification {
        &self.issuer
    }
    /// The subject in strongSwan's notation (`C=CH, O=Example, CN=gw`).
    pub fn subject_text(&self) -> String {
        IdDisplay(&self.subject).to_string()
    }
    /// The issuer in strongSwan's notation.
    pub fn issuer_text(&self) -> String {
        IdDisplay(&self.issuer).to_string()
    }
    /// notBefore, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }
    /// notAfter, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
    /// The subject's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    /// basicConstraints CA.
    pub fn is_ca(&self) -> bool {
        self.ca
    }
    /// basicConstraints pathLenConstraint (CAs only).
    pub fn path_len(&self) -> Option<u32> {
        self.path_len
    }
    /// Issued by itself: subject equals issuer, and the signature verifies
    /// with its own key.
    pub fn self_signed(&self) -> bool {
        self.self_signed
    }
    /// keyUsage, if present.
    pub fn key_usage(&self) -> Option<KeyUsage> {
        self.key_usage
    }
    /// extendedKeyUsage purposes.
    pub fn ext_key_usage(&self) -> ExtKeyUsage {
        self.eku
    }
    /// subjectAltNames as identities (DNS, e-mail, IP address, DN).
    pub fn sans(&self) -> &[Identification] {
        &self.sans
    }
    /// The URIs of its cRLDistributionPoints.
    pub fn crl_uris(&self) -> &[String] {
        &self.crl_uris
    }
    /// subjectKeyIdentifier.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.skid.as_deref()
    }
    /// authorityKeyIdentifier keyIdentifier.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.akid.as_deref()
    }
    /// The serial number's content octets (no redundant leading zeros).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }
    /// The signature scheme of its signatureAlgorithm, if supported.
    pub fn signature_scheme(&self) -> Option<SigScheme> {
        self.scheme
    }
    /// The policy extensions.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }
    /// nameConstraints: permitted and excluded subtrees.
    pub fn name_constraints(&self) -> (&[NameConstraint], &[NameConstraint]) {
        (&self.permitted, &self.excluded)
    }
    /// The end entity may sign IKE AUTH data: no keyUsage, or
    /// digitalSignature or nonRepudiation (strongSwan's
    /// X509_IKE_COMPLIANT, RFC 4945 5.1.3.2).
    pub fn ike_compliant(&self) -> bool {
        self.key_usage
            .is_none_or(|k| k.digital_signature() || k.non_repudiation())
    }

    /// `id` names this certificate: the subject DN (`id` may use `*`
    /// wildcards), or a subjectAltName: DNS and e-mail ignoring ASCII case
    /// (a leading `*` in `id` matches any prefix, as strongSwan), IP
    /// addresses exactly. A KEY_ID matches the subjectKeyIdentifier or the
    /// SHA-1 of the public key or of its SubjectPublicKeyInfo.
    pub fn matches_id(&self, id: &Identification) -> bool {
        match id.id_type {
            IdType::KEY_ID => {
                let k = id.data.as_slice();
                self.skid.as_deref() == Some(k)
                    || self.public_key.key_sha1().as_slice() == k
                    || self.public_key.spki_sha1().as_slice() == k
            }
            IdType::DER_ASN1_DN => {
                dn::dn_der_match(&id.data, &self.subject.data).is_some()
                    || self.sans.iter().any(|s| {
                        s.id_type == IdType::DER_ASN1_DN
                            && dn::dn_der_match(&id.data, &s.data).is_some()
                    })
            }
            IdType::FQDN | IdType::RFC822_ADDR => self
                .sans
                .iter()
                .any(|s| s.id_type == id.id_type && string_matches(&s.data, &id.data)),
            _ => self.sans.iter().any(|s| s == id),
        }
    }

    /// The TBS octets, signature octets and scheme, for checking who
    /// signed it.
    pub(crate) fn verify_signed_by(&self, key: &PublicKey) -> bool {
        self.scheme
            .is_some_and(|s| key.verify(s, &self.tbs, &self.signature).is_ok())
    }

    /// The authorityKeyIdentifier does not contradict `issuer`'s
    /// subjectKeyIdentifier (strongSwan compares them when both exist).
    pub(crate) fn akid_fits(&self, issuer: &Certificate) -> bool {
        match (&self.akid, &issuer.skid) {
            (Some(a), Some(s)) => a == s,
            _ => true,
        }
    }

    /// The raw signatureAlgorithm, for logs and tests.
    pub fn signature_algorithm_der(&self) -> &[u8] {
        &self.sig_alg
    }
}

/// strongSwan's `matches_string`: equal ignoring ASCII case, or a pattern
/// `*suffix` that ends the value (a lone `*` matches anything).
fn string_matches(value: &[u8], pattern: &[u8]) -> bool {
    if value.eq_ignore_ascii_case(pattern) {
        return true;
    }
    match pattern.split_first() {
        Some((b'*', suffix)) => {
            value.len() >= suffix.len()
                && value
                    .len()
                    .checked_sub(suffix.len())
                    .and_then(|start| value.get(start..))
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
        }
        _ => false,
    }
}

/// PEM blocks with one of `labels`, decoded; `None` if `bytes` is not PEM
/// text (then it is DER).
pub(crate) fn pem_blocks(bytes: &[u8], labels: &[&str]) -> Result<Option<Vec<Vec<u8>>>, CertError> {
    let Ok(text) = core::str::from_utf8(bytes) else {
        return Ok(None);
    };
    if !text.contains("-----BEGIN ") {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = rest.get(start..).unwrap_or_default();
        let after = after.get("-----BEGIN ".len()..).unwrap_or_default();
        let Some(label_end) = after.find("-----") else {
            return Err(CertError::Malformed("PEM header without end".into()));
        };
        let label = after.get(..label_end).unwrap_or_default();
        let body_start = after.get(label_end.saturating_add(5)..).unwrap_or_default();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_start.find(&end_marker) else {
            return Err(CertError::Malformed(format!(
                "PEM block {label} without END line"
            )));
        };
        let body = body_start.get(..end).unwrap_or_default();
        rest = body_start
            .get(end.saturating_add(end_marker.len())..)
            .unwrap_or_default();
        if !labels.contains(&label) {
            continue;
        }
        // Headers (`Proc-Type:` ...) mean encryption: not for certificates.
        if body.contains(':') {
            return Err(CertError::Malformed(format!(
                "PEM block {label} has headers"
            )));
        }
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| CertError::Malformed(format!("PEM block {label}: {e}")))?;
        out.push(der);
    }
    Ok(Some(out))
}

/// A Unix time as a UTC date `YYYY-MM-DD` (civil-from-days arithmetic,
/// no clock, no time zone).
pub fn date_text(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn time_text(unix: i64) -> String {
    let secs = unix.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        date_text(unix),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to
/// (year, month, day) in the proleptic Gregorian calendar. Certificate
/// times are years 0..=9999, far inside i64 range; the arithmetic is
/// still saturating so no input can overflow.
#[allow(clippy::arithmetic_side_effects)]
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Clamp to ±100 million years so nothing below can overflow.
    let z = days.clamp(-36_500_000_000, 36_500_000_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = if m <= 2 { y + 1 } else { y };
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_without_a_clock() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(86_399), "1970-01-01");
        assert_eq!(date_text(-1), "1969-12-31");
        assert_eq!(date_text(951_782_400), "2000-02-29");
        assert_eq!(date_text(1_767_225_600), "2026-01-01");
        assert_eq!(date_text(253_402_300_799), "9999-12-31");
        assert_eq!(time_text(1_767_225_661), "2026-01-01 00:01:01 UTC");
        // Extremes do not panic.
        let _ = date_text(i64::MIN);
        let _ = date_text(i64::MAX);
    }

    #[test]
    fn serials_compare_by_value() {
        assert_eq!(normalize_serial(&[0, 0x80, 1]), vec![0x80, 1]);
        assert_eq!(normalize_serial(&[0]), vec![0]);
        assert_eq!(normalize_serial(&[]), Vec::<u8>::new());
    }

    #[test]
    fn wildcard_strings() {
        assert!(string_matches(b"GW.example.com", b"gw.EXAMPLE.com"));
        assert!(string_matches(b"gw.example.com", b"*.example.com"));
        assert!(string_matches(b"gw.example.com", b"*"));
        assert!(!string_matches(b"example.com", b"*.example.com"));
        assert!(!string_matches(b"gw.example.org", b"*.example.com"));
        assert!(!string_matches(b"*.example.com", b"gw.example.com"));
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x00",
            b"-----BEGIN CERTIFICATE-----\n!!\n",
        ] {
            assert!(Certificate::parse_pem_or_der(bad).is_err());
        }
        assert!(
            Certificate::parse_pem_or_der(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
    }
}
