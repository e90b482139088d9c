//! The trust store: trust anchors (self-signed CA certificates), CA
//! certificates that are not self-signed (intermediates from the CA folder
//! or `authorities`), CRLs, and the CRL distribution points the operator
//! gives for a CA's certificates (`authorities.<name>.crl_uris`). Built by the daemon from files and
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
    ca_crl_uris: Vec<CaCrlUris>,
}

/// The operator's CRL distribution points for the certificates of one CA,
/// known by its subject and key.
#[derive(Clone, Debug)]
struct CaCrlUris {
    subject: Vec<u8>,
    spki: Vec<u8>,
    uris: Vec<String>,
}

impl CaCrlUris {
    fn is(&self, ca: &Certificate) -> bool {
        self.spki == ca.public_key().spki_der()
            && super::dn::dn_der_equals(&self.subject, &ca.subject().data)
    }
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

    /// Adds CRL distribution points for the certificates `ca` issues
    /// (`authorities.<name>.crl_uris`): validation asks for them for such a
    /// certificate, before its own distribution points (strongSwan's CDPs
    /// of a credential set). `ca` is known by its subject and key, so a
    /// copy the peer sends counts too. Given twice for one CA, the lists
    /// are merged without duplicates.
    pub fn add_ca_crl_uris(&mut self, ca: &Certificate, uris: &[String]) {
        if uris.is_empty() {
            return;
        }
        let pos = match self.ca_crl_uris.iter().position(|e| e.is(ca)) {
            Some(pos) => pos,
            None => {
                self.ca_crl_uris.push(CaCrlUris {
                    subject: ca.subject().data.clone(),
                    spki: ca.public_key().spki_der().to_vec(),
                    uris: Vec::new(),
                });
                self.ca_crl_uris.len().saturating_sub(1)
            }
        };
        if let Some(e) = self.ca_crl_uris.get_mut(pos) {
            for u in uris {
                if !e.uris.contains(u) {
                    e.uris.push(u.clone());
                }
            }
        }
    }

    /// The operator's CRL distribution points for the certificates
    /// `issuer` issues (empty if none were given).
    pub fn ca_crl_uris(&self, issuer: &Certificate) -> &[String] {
        self.ca_crl_uris
            .iter()
            .find(|e| e.is(issuer))
            .map_or(&[], |e| e.uris.as_slice())
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
