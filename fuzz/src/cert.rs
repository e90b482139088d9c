//! The certificate path: certificates, CRLs and keys as a peer or a
//! credential file gives them, and the validation of a chain.

use std::sync::Arc;

use ike::pki::{
    Certificate, Crl, PrivateKey, PublicKey, Revocation, TrustStore, ValidateParams,
    schemes_for_key, validate,
};
use ike::wire::Identification;

/// 2028-01-01, inside the validity of the seeds' certificates (made in
/// December 2026 for ten years).
const NOW: i64 = 1_830_297_600;

/// Parses the input as certificates (one DER, or PEM with any number of
/// blocks), CRLs, a public key and an unencrypted private key. With
/// certificates: the first as the trust anchor (or, not self-signed, as an
/// intermediate), the CRLs into the store, the last validated as an end
/// entity with the others as what the peer sent, under every revocation
/// policy.
pub fn cert(data: &[u8]) {
    let certs = Certificate::parse_pem_or_der(data).unwrap_or_default();
    let crls = Crl::parse_pem_or_der(data).unwrap_or_default();
    if let Ok(key) = PublicKey::from_pem_or_der(data) {
        for scheme in schemes_for_key(key.key_type(), key.bits()) {
            let _ = key.verify(scheme, data, data);
        }
        let _ = key.spki_sha1();
    }
    let _ = PrivateKey::from_pem_or_der(data, None);
    for c in &certs {
        let _ = (c.subject_text(), c.issuer_text(), c.sans(), c.policies());
        let _ = (
            c.ike_compliant(),
            c.name_constraints(),
            c.signature_scheme(),
        );
        let _ = c.matches_id(&Identification::fqdn("moon.strongswan.org"));
        let _ = c.matches_id(c.subject());
    }
    for crl in &crls {
        let _ = (crl.issuer_text(), crl.is_current(NOW), crl.revoked().len());
        for c in &certs {
            let _ = (
                crl.issued_by(c),
                crl.names_issuer(c),
                crl.revocation_date(c.serial()),
            );
        }
    }
    let Some((end, rest)) = certs.split_last() else {
        return;
    };
    let mut store = TrustStore::default();
    if let Some(first) = certs.first() {
        let first = Arc::new(first.clone());
        let _ = if first.self_signed() {
            store.add_ca(first)
        } else {
            store.add_intermediate(first)
        };
    }
    for crl in crls {
        store.add_crl(Arc::new(crl));
    }
    let untrusted = rest.get(1..).unwrap_or_default();
    for revocation in [Revocation::Relaxed, Revocation::IfUri, Revocation::Strict] {
        let mut p = ValidateParams::new(NOW, &[], revocation);
        let _ = validate(&store, end, untrusted, &p);
        p.crls_fetched = true;
        let _ = validate(&store, end, untrusted, &p);
    }
}
