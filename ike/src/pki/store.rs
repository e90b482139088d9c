//! The trust store: trust anchors (self-signed CA certificates), CA
//! certificates that are not self-signed (intermediates from the CA folder
//! or `authorities`), and CRLs. Built by the daemon from files and
//! fetched CRLs, shared read-only with the engine (`Arc<TrustStore>`).

use std::sync::Arc;

use super::cert::{CertError, Certificate};
use super::crl::Crl;

/// CA certificates and CRLs to validate peers' chains against.
#[derive(Default, Clone, Debug)]
pub struct TrustStore {
    anchors: Vec<Arc<Certificate>>,
    intermediates: Vec<Arc<Certificate>>,
    crls: Vec<Arc<Crl>>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a CA certificate as the operator's trust (`x509ca`,
    /// `authorities`): a self-signed one becomes a trust anchor, another
    /// CA certificate a trusted intermediate. A certificate that is
    /// neither self-signed nor a CA (basicConstraints) is refused. Adding
    /// the same certificate twice keeps one.
    pub fn add_ca(&mut self, cert: Arc<Certificate>) -> Result<(), CertError> {
        if cert.self_signed() {
            if !self.anchors.iter().any(|c| c.der() == cert.der()) {
                self.anchors.push(cert);
            }
            Ok(())
        } else {
            self.add_intermediate(cert)
        }
    }

    /// Adds a CA certificate that is not itself an anchor; refused unless
    /// basicConstraints says CA.
    pub fn add_intermediate(&mut self, cert: Arc<Certificate>) -> Result<(), CertError> {
        if !cert.is_ca() {
            return Err(CertError::KeyUsage {
                subject: cert.subject_text(),
                reason: "is not a CA certificate (basicConstraints)".into(),
            });
        }
        if !self.intermediates.iter().any(|c| c.der() == cert.der()) {
            self.intermediates.push(cert);
        }
        Ok(())
    }

    /// Adds a CRL. It replaces an older CRL of the same issuer (by
    /// cRLNumber or thisUpdate); an older one than held is dropped.
    pub fn add_crl(&mut self, crl: Arc<Crl>) {
        let same_issuer = |c: &Arc<Crl>| {
            super::dn::dn_der_equals(&c.issuer().data, &crl.issuer().data)
                && c.authority_key_id() == crl.authority_key_id()
        };
        if let Some(pos) = self.crls.iter().position(same_issuer) {
            if let Some(old) = self.crls.get_mut(pos)
                && crl.newer_than(old)
            {
                *old = crl;
            }
        } else {
            self.crls.push(crl);
        }
    }

    /// The trust anchors (self-signed CA certificates).
    pub fn anchors(&self) -> &[Arc<Certificate>] {
        &self.anchors
    }
    /// The trusted CA certificates that are not self-signed.
    pub fn intermediates(&self) -> &[Arc<Certificate>] {
        &self.intermediates
    }
    /// The CRLs.
    pub fn crls(&self) -> &[Arc<Crl>] {
        &self.crls
    }

    /// SHA-1 hashes of the trusted CA keys' SubjectPublicKeyInfo, anchors
    /// first: the CERTREQ payload's content (RFC 7296 3.7).
    pub fn ca_key_hashes(&self) -> Vec<[u8; 20]> {
        self.anchors
            .iter()
            .chain(self.intermediates.iter())
            .map(|c| c.public_key().spki_sha1())
            .collect()
    }

    /// The trusted CA certificate whose key has this SHA-1 SPKI hash (a
    /// CERTREQ entry).
    pub fn ca_by_key_hash(&self, hash: &[u8]) -> Option<&Arc<Certificate>> {
        self.anchors
            .iter()
            .chain(self.intermediates.iter())
            .find(|c| c.public_key().spki_sha1().as_slice() == hash)
    }

    /// The certificates that expire within `window` seconds of `now` (or
    /// have expired), for warnings.
    pub fn expiring(&self, now: i64, window: i64) -> Vec<Arc<Certificate>> {
        self.anchors
            .iter()
            .chain(self.intermediates.iter())
            .filter(|c| c.not_after() <= now.saturating_add(window))
            .cloned()
            .collect()
    }
}
