//! A test PKI made at test time with rcgen: CAs, intermediates,
//! end-entity certificates and CRLs, valid around the simulated clock's
//! UTC ([`UTC0`](super::harness::UTC0), 2026-12-01), whatever the real
//! date. RSA keys come from committed test vectors (RSA key generation is
//! slow in a debug build; keys do not expire).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber, date_time_ymd,
};

use crate::pki::PrivateKey;
use crate::pki::cert::Certificate;
use crate::pki::store::TrustStore;
use crate::sa::LocalCred;
use crate::wire::Identification;

/// A key algorithm of the test PKI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    P256,
    P384,
    /// RSA 2048 (`n`: which of the committed keys).
    Rsa(u8),
    Ed25519,
}

const RSA: [&str; 2] = [
    include_str!("../../../tests/vectors/keys/rsa2048.pem"),
    include_str!("../../../tests/vectors/keys/rsa2048b.pem"),
];

/// A key pair, for rcgen and for the engine.
pub struct Key {
    pub rc: KeyPair,
    pub der: Vec<u8>,
}

impl Key {
    pub fn new(alg: Alg) -> Self {
        let rc = match alg {
            Alg::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            Alg::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            Alg::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            Alg::Rsa(n) => KeyPair::from_pem(RSA[usize::from(n) % RSA.len()]),
        }
        .unwrap();
        let der = rc.serialize_der();
        Self { rc, der }
    }

    pub fn private(&self) -> PrivateKey {
        PrivateKey::from_pem_or_der(&self.der, None).unwrap()
    }
}

/// A CA: its parameters (as issuer), key and certificate.
pub struct Ca {
    pub params: CertificateParams,
    pub key: Key,
    pub cert: Arc<Certificate>,
    next_serial: u64,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, "iked tests");
    d.push(DnType::CommonName, cn);
    d
}

fn valid(p: &mut CertificateParams) {
    p.not_before = date_time_ymd(2026, 11, 1);
    p.not_after = date_time_ymd(2027, 12, 1);
}

impl Ca {
    /// A self-signed root CA.
    pub fn root(cn: &str, alg: Alg) -> Self {
        let key = Key::new(alg);
        let params = ca_params(cn, 1);
        let cert = params.self_signed(&key.rc).unwrap();
        Self {
            cert: Arc::new(Certificate::from_der(cert.der()).unwrap()),
            params,
            key,
            next_serial: 100,
        }
    }

    /// An intermediate CA under this one.
    pub fn intermediate(&mut self, cn: &str, alg: Alg) -> Self {
        let key = Key::new(alg);
        let params = ca_params(cn, self.serial());
        let issuer = Issuer::from_params(&self.params, &self.key.rc);
        let cert = params.signed_by(&key.rc, &issuer).unwrap();
        Self {
            cert: Arc::new(Certificate::from_der(cert.der()).unwrap()),
            params,
            key,
            next_serial: 1000,
        }
    }

    fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// An end-entity certificate for `cn` with a DNS subjectAltName
    /// `san`, made by `edit` as it likes: the key, the certificate, and
    /// its serial number.
    pub fn issue(
        &mut self,
        cn: &str,
        san: &str,
        alg: Alg,
        edit: impl FnOnce(&mut CertificateParams),
    ) -> (Key, Arc<Certificate>, u64) {
        let key = Key::new(alg);
        let serial = self.serial();
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(cn);
        p.subject_alt_names = vec![SanType::DnsName(san.try_into().unwrap())];
        p.serial_number = Some(SerialNumber::from(serial));
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        valid(&mut p);
        edit(&mut p);
        let issuer = Issuer::from_params(&self.params, &self.key.rc);
        let cert = p.signed_by(&key.rc, &issuer).unwrap();
        (
            key,
            Arc::new(Certificate::from_der(cert.der()).unwrap()),
            serial,
        )
    }

    /// A CRL of this CA revoking `serials`, current at UTC0.
    pub fn crl(&self, serials: &[u64]) -> Vec<u8> {
        let p = CertificateRevocationListParams {
            this_update: date_time_ymd(2026, 11, 20),
            next_update: date_time_ymd(2026, 12, 20),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: date_time_ymd(2026, 11, 15),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = Issuer::from_params(&self.params, &self.key.rc);
        p.signed_by(&issuer).unwrap().der().to_vec()
    }
}

fn ca_params(cn: &str, serial: u64) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.serial_number = Some(SerialNumber::from(serial));
    p.use_authority_key_identifier_extension = true;
    valid(&mut p);
    p
}

/// A CRL distribution point for `edit`.
pub fn crl_uri(uri: &str) -> impl FnOnce(&mut CertificateParams) {
    let uri = uri.to_string();
    move |p| {
        p.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![uri] }];
    }
}

/// A trust store with these CAs.
pub fn store(cas: &[&Arc<Certificate>]) -> Arc<TrustStore> {
    let mut s = TrustStore::default();
    for c in cas {
        s.add_ca((*c).clone()).unwrap();
    }
    Arc::new(s)
}

/// Our credential: `key` with `certs` (end entity first).
pub fn cred(key: &Key, certs: Vec<Arc<Certificate>>) -> Arc<LocalCred> {
    Arc::new(LocalCred::new(key.private(), certs))
}

/// An FQDN identity.
pub fn fqdn(s: &str) -> Identification {
    Identification::fqdn(s)
}
