//! Public-key authentication for IKE_AUTH: the signature hash algorithms
//! of RFC 7427 (announced in IKE_SA_INIT), AUTH signed with our key and
//! checked with the peer's (method 14, or the classic RSA and ECDSA
//! methods with a peer that announced none), CERT payloads to send as
//! `send_cert` and the peer's CERTREQ say, our CERTREQ, and the peer's
//! certificates read from its CERT payloads.
//!
//! Which key signed the peer's AUTH is decided by `ike_auth` (a
//! certificate validated with `pki::chain::validate` against the trust
//! store, or a configured raw public key); this module only does the
//! arithmetic and the encodings, and never panics on what the peer sent.

use super::config::{LocalCred, SendCert};
use crate::config::{SigConstraint, SigHash, SigKey};
use crate::pki::cert::Certificate;
use crate::pki::sig::schemes_for_key;
use crate::pki::{
    HashAlg, KeyType, PublicKey, SigScheme, decode_signature_auth, encode_signature_auth,
    sign_classic, verify_classic,
};
use crate::wire::codes::{AuthMethod, CertEncoding, NotifyType};
use crate::wire::{Authentication, Message, Notify, Payload};

/// The hash algorithms we announce in SIGNATURE_HASH_ALGORITHMS and
/// accept in a peer's RFC 7427 signature, as strongSwan 5.9 announces
/// them: SHA2-256, SHA2-384, SHA2-512, and Identity (RFC 8420, for
/// Ed25519). Not SHA-1: strongSwan does not offer it either.
pub(crate) const OUR_HASHES: [HashAlg; 4] = [
    HashAlg::Sha256,
    HashAlg::Sha384,
    HashAlg::Sha512,
    HashAlg::Identity,
];

/// Tests: what an endpoint does differently in authentication, and the
/// peers' signatures it verified.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct TestKnobs {
    /// Announce no SIGNATURE_HASH_ALGORITHMS (a peer without RFC 7427).
    pub(crate) no_hash_algorithms: bool,
    /// Sign with this RFC 7427 scheme, whatever the peer announced.
    pub(crate) sign_scheme: Option<SigScheme>,
    /// Each peer signature verified: its method, its RFC 7427 scheme,
    /// and how many certificates came with it.
    pub(crate) seen: Vec<(AuthMethod, Option<SigScheme>, usize)>,
    /// The EAP server's method waits for an outside operation before
    /// each response it takes (`eap_auth`).
    pub(crate) eap_wait: bool,
    /// The EAP client's method claims to authenticate the server (for
    /// EAP-only authentication, `eap_auth`).
    pub(crate) eap_mutual: bool,
}

/// Whether we announce SIGNATURE_HASH_ALGORITHMS (always, but for tests
/// of peers without RFC 7427).
pub(crate) fn announce(ctx: &super::endpoint::Ctx) -> Option<Payload> {
    #[cfg(test)]
    if ctx.knobs.no_hash_algorithms {
        return None;
    }
    let _ = ctx;
    Some(Payload::Notify(hash_algorithms_notify()))
}

/// Our SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 4).
pub(crate) fn hash_algorithms_notify() -> Notify {
    let data = OUR_HASHES
        .iter()
        .flat_map(|h| h.iana().to_be_bytes())
        .collect();
    Notify::new(NotifyType::SIGNATURE_HASH_ALGORITHMS, data)
}

/// The hash algorithms the peer announced in `msg` (unknown values
/// skipped); `None` if it sent no SIGNATURE_HASH_ALGORITHMS (it does not
/// do RFC 7427: the classic methods then).
pub(crate) fn peer_hashes(msg: &Message) -> Option<Vec<HashAlg>> {
    let n = msg.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == NotifyType::SIGNATURE_HASH_ALGORITHMS => Some(n),
        _ => None,
    })?;
    Some(
        n.data
            .chunks_exact(2)
            .filter_map(|c| <[u8; 2]>::try_from(c).ok())
            .filter_map(|b| HashAlg::from_iana(u16::from_be_bytes(b)))
            .collect(),
    )
}

/// The CA key hashes (SHA-1 of the SubjectPublicKeyInfo) of the X.509
/// CERTREQ payloads in `msg`: `None` if it has none, `Some` (perhaps
/// empty: a CERTREQ for any CA) if it has one.
pub(crate) fn certreqs(msg: &Message) -> Option<Vec<[u8; 20]>> {
    let mut found = None;
    for p in msg.iter() {
        if let Payload::CertReq(c) = p
            && c.encoding == CertEncoding::X509_SIGNATURE
        {
            let v: &mut Vec<[u8; 20]> = found.get_or_insert_with(Vec::new);
            v.extend(
                c.data
                    .chunks_exact(20)
                    .filter_map(|h| <[u8; 20]>::try_from(h).ok()),
            );
        }
    }
    found
}

/// Our CERTREQ: one payload with these CA key hashes, none without any.
pub(crate) fn certreq_payload(hashes: &[[u8; 20]]) -> Option<Payload> {
    if hashes.is_empty() {
        return None;
    }
    Some(Payload::CertReq(crate::wire::Certificate {
        encoding: CertEncoding::X509_SIGNATURE,
        data: hashes.concat(),
    }))
}

/// The CERT payloads we send with our AUTH: none with `never`, or with
/// `ifasked` if the peer sent no CERTREQ; else our end-entity certificate
/// and the intermediates of its chain, up to (not including) the first
/// CA the peer's CERTREQ names (it has that one and what is above it;
/// a CERTREQ naming none of ours gets the whole chain). Trust anchors
/// (self-signed) are never sent.
pub(crate) fn cert_payloads(
    cred: &LocalCred,
    send: SendCert,
    asked: Option<&[[u8; 20]]>,
) -> Vec<Payload> {
    match (send, asked) {
        (SendCert::Never, _) | (SendCert::IfAsked, None) => return Vec::new(),
        _ => {}
    }
    let asked = asked.unwrap_or_default();
    let mut out = Vec::new();
    for (i, c) in cred.certs.iter().enumerate() {
        if i > 0 && (c.self_signed() || asked.contains(&c.public_key().spki_sha1())) {
            break;
        }
        out.push(Payload::Cert(crate::wire::Certificate {
            encoding: CertEncoding::X509_SIGNATURE,
            data: c.der().to_vec(),
        }));
    }
    out
}

/// The peer's certificates from its CERT payloads (X.509 signature
/// encoding; the first is its end-entity certificate). Other encodings
/// are skipped; one that does not parse is an error.
pub(crate) fn peer_certs(msg: &Message) -> Result<Vec<Certificate>, String> {
    let mut out = Vec::new();
    for p in msg.iter() {
        if let Payload::Cert(c) = p {
            if c.encoding != CertEncoding::X509_SIGNATURE {
                continue;
            }
            out.push(Certificate::from_der(&c.data).map_err(|e| e.to_string())?);
        }
    }
    Ok(out)
}

/// The RFC 7427 scheme we sign with, given the peer's hash algorithms:
/// the first of strongSwan's schemes for the key
/// (`pki::sig::schemes_for_key`: by key size, the curve's hash first)
/// whose hash the peer accepts, RSA with PKCS#1 v1.5, or with RSASSA-PSS
/// if `pss`. `None`: no hash in common.
pub(crate) fn choose_scheme(
    key: KeyType,
    bits: u32,
    peer: &[HashAlg],
    pss: bool,
) -> Option<SigScheme> {
    schemes_for_key(key, bits)
        .into_iter()
        .filter(|s| match s {
            SigScheme::RsaPss(_) => pss,
            SigScheme::RsaPkcs1(_) => !pss,
            _ => true,
        })
        .find(|s| peer.contains(&scheme_hash(*s)))
}

/// The hash a scheme signs with (Identity for Ed25519).
fn scheme_hash(s: SigScheme) -> HashAlg {
    match s {
        SigScheme::RsaPkcs1(h) | SigScheme::RsaPss(h) | SigScheme::Ecdsa(h) => h,
        SigScheme::Ed25519 => HashAlg::Identity,
    }
}

/// Our AUTH payload: `signed` (the octets of RFC 7296 2.15) signed with
/// our key, by RFC 7427 if the peer announced its hash algorithms and
/// we share one, else by the classic method of the key (RSA 1, ECDSA
/// 9/10/11; Ed25519 and RSA-PSS have none).
pub(crate) fn sign_auth(
    cred: &LocalCred,
    peer: Option<&[HashAlg]>,
    signed: &[u8],
) -> Result<Authentication, String> {
    let key = &cred.key;
    let bits = key.public_key().bits();
    let scheme = peer.and_then(|h| choose_scheme(key.key_type(), bits, h, cred.rsa_pss));
    match scheme {
        None if cred.rsa_pss && key.key_type() == KeyType::Rsa => Err(
            "RSA-PSS needs RFC 7427 signature authentication, which the peer did not offer with \
             a hash we have"
                .into(),
        ),
        Some(scheme) => sign_with(cred, scheme, signed),
        None => {
            let (method, data) = sign_classic(key, signed).map_err(|e| match peer {
                Some(_) => format!(
                    "no hash algorithm in common with the peer for a {} signature ({e})",
                    key.key_type()
                ),
                None => format!(
                    "the peer does not do RFC 7427 signatures, and a {} key has no classic \
                     method ({e})",
                    key.key_type()
                ),
            })?;
            Ok(Authentication { method, data })
        }
    }
}

/// An RFC 7427 AUTH payload: `signed` signed with `scheme`.
pub(crate) fn sign_with(
    cred: &LocalCred,
    scheme: SigScheme,
    signed: &[u8],
) -> Result<Authentication, String> {
    let key = &cred.key;
    let sig = key.sign(scheme, signed).map_err(|e| e.to_string())?;
    let data = encode_signature_auth(scheme, key.key_type(), &sig).map_err(|e| e.to_string())?;
    Ok(Authentication {
        method: AuthMethod::DIGITAL_SIGNATURE,
        data,
    })
}

/// Whether the peer's AUTH is a signature of `signed` by `key`: RFC 7427
/// with a hash we announced ([`OUR_HASHES`]), or a classic method.
pub(crate) fn verify_auth(
    key: &PublicKey,
    auth: &Authentication,
    signed: &[u8],
) -> Result<(), String> {
    if auth.method == AuthMethod::DIGITAL_SIGNATURE {
        let (scheme, sig) = decode_signature_auth(&auth.data).map_err(|e| e.to_string())?;
        let hash = scheme_hash(scheme);
        if !OUR_HASHES.contains(&hash) {
            return Err(format!(
                "signature scheme {scheme} uses {hash}, which we did not offer"
            ));
        }
        key.verify(scheme, signed, sig)
            .map_err(|e| format!("{scheme} signature: {e}"))
    } else {
        verify_classic(key, auth.method, signed, &auth.data)
            .map_err(|e| format!("{} signature: {e}", auth.method))
    }
}

/// The scheme of the peer's AUTH: RFC 7427's, or the one a classic
/// method implies (RSA 1: PKCS#1 v1.5 with SHA-1; ECDSA 9/10/11).
pub(crate) fn auth_scheme(auth: &Authentication) -> Option<SigScheme> {
    match auth.method {
        AuthMethod::DIGITAL_SIGNATURE => decode_signature_auth(&auth.data).ok().map(|(s, _)| s),
        AuthMethod::RSA_SIG => Some(SigScheme::RsaPkcs1(HashAlg::Sha1)),
        AuthMethod::ECDSA_SHA256_P256 => Some(SigScheme::Ecdsa(HashAlg::Sha256)),
        AuthMethod::ECDSA_SHA384_P384 => Some(SigScheme::Ecdsa(HashAlg::Sha384)),
        AuthMethod::ECDSA_SHA512_P521 => Some(SigScheme::Ecdsa(HashAlg::Sha512)),
        _ => None,
    }
}

/// Whether `key` signing with `scheme` satisfies `c` (strongSwan's
/// meaning: `rsa` is PKCS#1 v1.5, `rsa/pss` is PSS, `pubkey` any type; a
/// minimum size is in bits of the key).
fn satisfies(c: &SigConstraint, key: &PublicKey, scheme: SigScheme) -> bool {
    let kind = match c.key {
        SigKey::Any => true,
        SigKey::Rsa => matches!(scheme, SigScheme::RsaPkcs1(_)),
        SigKey::RsaPss => matches!(scheme, SigScheme::RsaPss(_)),
        SigKey::Ecdsa => matches!(scheme, SigScheme::Ecdsa(_)),
        SigKey::Ed25519 => scheme == SigScheme::Ed25519,
    };
    let hash = c.hash.is_none_or(|h| {
        scheme_hash(scheme)
            == match h {
                SigHash::Sha1 => HashAlg::Sha1,
                SigHash::Sha256 => HashAlg::Sha256,
                SigHash::Sha384 => HashAlg::Sha384,
                SigHash::Sha512 => HashAlg::Sha512,
                SigHash::Identity => HashAlg::Identity,
            }
    });
    kind && hash && c.min_bits.is_none_or(|b| key.bits() >= b)
}

/// A constraint as swanctl writes it (`rsa-3072-sha384`).
fn constraint_text(c: &SigConstraint) -> String {
    let mut s = String::from(match c.key {
        SigKey::Any => "pubkey",
        SigKey::Rsa => "rsa",
        SigKey::RsaPss => "rsa/pss",
        SigKey::Ecdsa => "ecdsa",
        SigKey::Ed25519 => "ed25519",
    });
    if let Some(b) = c.min_bits {
        s.push_str(&format!("-{b}"));
    }
    if let Some(h) = c.hash {
        s.push_str(match h {
            SigHash::Sha1 => "-sha1",
            SigHash::Sha256 => "-sha256",
            SigHash::Sha384 => "-sha384",
            SigHash::Sha512 => "-sha512",
            SigHash::Identity => "-identity",
        });
    }
    s
}

/// Whether the peer's AUTH, signed by `key`, satisfies one of
/// `remote.auth`'s `constraints` (none: anything does); else why not,
/// as "signed with ..., the connection requires ...".
pub(crate) fn check_constraints(
    constraints: &[SigConstraint],
    key: &PublicKey,
    auth: &Authentication,
) -> Result<(), String> {
    if constraints.is_empty() {
        return Ok(());
    }
    let Some(scheme) = auth_scheme(auth) else {
        return Err(format!(
            "signed with {}, which no constraint allows",
            auth.method
        ));
    };
    if constraints.iter().any(|c| satisfies(c, key, scheme)) {
        return Ok(());
    }
    Err(format!(
        "signed with {scheme} by a {}-bit {} key, the connection requires {}",
        key.bits(),
        key.key_type(),
        constraints
            .iter()
            .map(constraint_text)
            .collect::<Vec<_>>()
            .join(" or ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_follows_the_key_and_the_peers_hashes() {
        let all = OUR_HASHES;
        let ec = |k, bits, peer: &[HashAlg]| choose_scheme(k, bits, peer, false);
        assert_eq!(
            ec(KeyType::EcP384, 384, &all),
            Some(SigScheme::Ecdsa(HashAlg::Sha384))
        );
        assert_eq!(
            ec(KeyType::EcP256, 256, &[HashAlg::Sha512]),
            Some(SigScheme::Ecdsa(HashAlg::Sha512))
        );
        // As strongSwan: no hash weaker than the curve.
        assert_eq!(ec(KeyType::EcP384, 384, &[HashAlg::Sha256]), None);
        assert_eq!(
            choose_scheme(KeyType::Rsa, 3072, &all, true),
            Some(SigScheme::RsaPss(HashAlg::Sha256))
        );
        assert_eq!(
            choose_scheme(KeyType::Rsa, 4096, &all, false),
            Some(SigScheme::RsaPkcs1(HashAlg::Sha384))
        );
        assert_eq!(ec(KeyType::Ed25519, 256, &all), Some(SigScheme::Ed25519));
        assert_eq!(ec(KeyType::Ed25519, 256, &[HashAlg::Sha256]), None);
        assert_eq!(ec(KeyType::Rsa, 2048, &[HashAlg::Sha1]), None);
    }

    #[test]
    fn hash_algorithms_notify_round_trips_and_skips_unknown_values() {
        let n = hash_algorithms_notify();
        assert_eq!(n.data, [0, 2, 0, 3, 0, 4, 0, 5]);
        let mut data = n.data.clone();
        data.extend_from_slice(&[0x12, 0x34, 0]);
        let msg = Message {
            header: crate::wire::Header {
                spi_i: 1,
                spi_r: 0,
                minor_version: 0,
                exchange: crate::wire::codes::ExchangeType::IKE_SA_INIT,
                flags: crate::wire::Flags(0),
                message_id: 0,
            },
            payloads: vec![Payload::Notify(Notify::new(
                NotifyType::SIGNATURE_HASH_ALGORITHMS,
                data,
            ))],
        };
        assert_eq!(peer_hashes(&msg), Some(OUR_HASHES.to_vec()));
        assert_eq!(certreqs(&msg), None);
    }
}
