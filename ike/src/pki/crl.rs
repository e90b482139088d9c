//! Certificate revocation lists (RFC 5280 section 5), parsed with
//! x509-parser into an owned [`Crl`].
//!
//! A CRL is matched to the CA that issued it by name (the CRL's issuer
//! equals the CA's subject) or by key identifier (its
//! authorityKeyIdentifier equals the CA's subjectKeyIdentifier), and used
//! only if that CA's key verifies its signature and the CA may sign CRLs
//! (no keyUsage, or cRLSign). Full CRLs only: a delta CRL, an indirect CRL
//! or one partitioned by an issuingDistributionPoint is refused, as is
//! any other critical extension.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::fmt;

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{CertificateRevocationList, FromDer};

use super::cert::{CertError, Certificate, normalize_serial, pem_blocks, signed_parts};
use super::dn;
use super::{SigScheme, scheme_from_algorithm_identifier};
use crate::display::IdDisplay;
use crate::wire::Identification;

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCert {
    /// The serial number's content octets (no redundant leading zeros).
    pub serial: Vec<u8>,
    /// revocationDate, Unix seconds.
    pub date: i64,
}

/// A parsed CRL, owning its DER.
#[derive(Clone)]
pub struct Crl {
    der: Vec<u8>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    scheme: Option<SigScheme>,
    issuer: Identification,
    this_update: i64,
    next_update: Option<i64>,
    revoked: Vec<RevokedCert>,
    akid: Option<Vec<u8>>,
    number: Option<Vec<u8>>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Crl('{}', {} revoked)",
            self.issuer_text(),
            self.revoked.len()
        )
    }
}

/// CRL extensions (DER OID bodies).
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
const OID_DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
const OID_ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1d, 0x1c];
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
const OID_ISSUER_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x12];
const OID_FRESHEST_CRL: &[u8] = &[0x55, 0x1d, 0x2e];
/// CRL entry extensions.
const OID_REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
const OID_INVALIDITY_DATE: &[u8] = &[0x55, 0x1d, 0x18];

impl Crl {
    /// Parses one DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let bad = |s: String| CertError::MalformedCrl(s);
        let (rest, x) =
            CertificateRevocationList::from_der(der).map_err(|e| bad(format!("{e}")))?;
        if !rest.is_empty() {
            return Err(bad("trailing data after the CRL".into()));
        }
        let (tbs, sig_alg, signature) =
            signed_parts(der).ok_or_else(|| bad("not a DER CertificateList".into()))?;
        let t = &x.tbs_cert_list;
        let issuer = Identification::der_dn(t.issuer.as_raw().to_vec());
        let who = IdDisplay(&issuer).to_string();
        let mut akid = None;
        let mut number = None;
        for ext in t.extensions() {
            let oid = ext.oid.as_bytes();
            if matches!(ext.parsed_extension(), ParsedExtension::ParseError { .. }) {
                return Err(bad(format!(
                    "CRL of '{who}': extension {} does not parse",
                    ext.oid.to_id_string()
                )));
            }
            match (oid, ext.parsed_extension()) {
                (OID_CRL_NUMBER, ParsedExtension::CRLNumber(n)) => {
                    number = Some(n.to_bytes_be());
                }
                (OID_AUTHORITY_KEY_ID, ParsedExtension::AuthorityKeyIdentifier(a)) => {
                    akid = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                (OID_DELTA_CRL_INDICATOR, _) => {
                    return Err(bad(format!(
                        "CRL of '{who}' is a delta CRL (not supported)"
                    )));
                }
                (OID_ISSUING_DISTRIBUTION_POINT, ParsedExtension::IssuingDistributionPoint(p))
                    if p.only_contains_user_certs
                        || p.only_contains_ca_certs
                        || p.only_contains_attribute_certs
                        || p.only_some_reasons.is_some()
                        || p.indirect_crl =>
                {
                    return Err(bad(format!(
                        "CRL of '{who}' covers only part of the CA's certificates \
                         (issuingDistributionPoint not supported)"
                    )));
                }
                (OID_ISSUING_DISTRIBUTION_POINT, _) => {}
                (OID_ISSUER_ALT_NAME | OID_FRESHEST_CRL, _) => {}
                _ if ext.critical => {
                    return Err(bad(format!(
                        "CRL of '{who}' has an unsupported critical extension {}",
                        ext.oid.to_id_string()
                    )));
                }
                _ => {}
            }
        }
        let mut revoked = Vec::with_capacity(t.revoked_certificates.len());
        for r in &t.revoked_certificates {
            for ext in r.extensions() {
                let oid = ext.oid.as_bytes();
                if ext.critical && oid != OID_REASON_CODE && oid != OID_INVALIDITY_DATE {
                    return Err(bad(format!(
                        "CRL of '{who}': unsupported critical entry extension {}",
                        ext.oid.to_id_string()
                    )));
                }
            }
            revoked.push(RevokedCert {
                serial: normalize_serial(r.raw_serial()),
                date: r.revocation_date.timestamp(),
            });
        }
        Ok(Crl {
            der: der.to_vec(),
            tbs,
            scheme: scheme_from_algorithm_identifier(&sig_alg),
            signature,
            this_update: t.this_update.timestamp(),
            next_update: t.next_update.map(|n| n.timestamp()),
            issuer,
            revoked,
            akid,
            number,
        })
    }

    /// Parses a file's CRLs: PEM (`X509 CRL` blocks) or one DER CRL.
    pub fn parse_pem_or_der(bytes: &[u8]) -> Result<Vec<Self>, CertError> {
        match pem_blocks(bytes, &["X509 CRL", "CRL"])? {
            Some(ders) => {
                if ders.is_empty() {
                    return Err(CertError::MalformedCrl(
                        "no X509 CRL in the PEM data".into(),
                    ));
                }
                ders.iter().map(|d| Self::from_der(d)).collect()
            }
            None => Ok(vec![Self::from_der(bytes)?]),
        }
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The issuer as an ID_DER_ASN1_DN identity.
    pub fn issuer(&self) -> &Identification {
        &self.issuer
    }
    /// The issuer in strongSwan's notation.
    pub fn issuer_text(&self) -> String {
        IdDisplay(&self.issuer).to_string()
    }
    /// thisUpdate, Unix seconds.
    pub fn this_update(&self) -> i64 {
        self.this_update
    }
    /// nextUpdate, Unix seconds, if given.
    pub fn next_update(&self) -> Option<i64> {
        self.next_update
    }
    /// The revoked certificates.
    pub fn revoked(&self) -> &[RevokedCert] {
        &self.revoked
    }
    /// The authorityKeyIdentifier keyIdentifier.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.akid.as_deref()
    }
    /// The cRLNumber, big-endian, if present.
    pub fn crl_number(&self) -> Option<&[u8]> {
        self.number.as_deref()
    }

    /// The revocation date of `serial` (content octets), if listed.
    pub fn revocation_date(&self, serial: &[u8]) -> Option<i64> {
        let serial = normalize_serial(serial);
        self.revoked
            .iter()
            .find(|r| r.serial == serial)
            .map(|r| r.date)
    }

    /// Current at `now`: thisUpdate has passed and nextUpdate (if any) has
    /// not.
    pub fn is_current(&self, now: i64) -> bool {
        self.this_update <= now && self.next_update.is_none_or(|n| now <= n)
    }

    /// Names `ca` as its issuer, by DN or by key identifier.
    pub fn names_issuer(&self, ca: &Certificate) -> bool {
        match (&self.akid, ca.subject_key_id()) {
            (Some(a), Some(s)) => a.as_slice() == s,
            _ => dn::dn_der_equals(&self.issuer.data, &ca.subject().data),
        }
    }

    /// Issued by `ca`: named as its issuer, signed by its key, and the CA
    /// may sign CRLs (no keyUsage, or cRLSign).
    pub fn issued_by(&self, ca: &Certificate) -> bool {
        self.names_issuer(ca)
            && ca.key_usage().is_none_or(|k| k.crl_sign())
            && self.scheme.is_some_and(|s| {
                ca.public_key()
                    .verify(s, &self.tbs, &self.signature)
                    .is_ok()
            })
    }

    /// Is a later CRL of the same issuer than `other` (by cRLNumber when
    /// both have one, else by thisUpdate).
    pub fn newer_than(&self, other: &Crl) -> bool {
        match (&self.number, &other.number) {
            (Some(a), Some(b)) => {
                let (a, b) = (normalize_serial(a), normalize_serial(b));
                (a.len(), &a) > (b.len(), &b)
            }
            _ => self.this_update > other.this_update,
        }
    }
}
