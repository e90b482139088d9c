//! Keys and signatures against vectors made once with OpenSSL 3.0
//! (testdata/gen.sh), RFC 7427 Appendix A, and malformed input.

use super::key::{PemBlock, looks_like_pem, pem_blocks};
use super::sig::{classic_method, ecdsa_der_to_fixed, ecdsa_fixed_to_der, schemes_for_key};
use super::*;
use crate::wire::codes::AuthMethod;

const PASS: &[u8] = b"iked-test-pass";
const MSG: &[u8] = include_bytes!("testdata/msg.bin");
const VECTORS: &str = include_str!("testdata/vectors.txt");

fn file(name: &str) -> &'static [u8] {
    match name {
        "rsa1024.pem" => include_bytes!("testdata/rsa1024.pem"),
        "rsa1024.pub.pem" => include_bytes!("testdata/rsa1024.pub.pem"),
        "rsa2048.p8.pem" => include_bytes!("testdata/rsa2048.p8.pem"),
        "rsa2048.pkcs1.der" => include_bytes!("testdata/rsa2048.pkcs1.der"),
        "rsa2048.pub.pem" => include_bytes!("testdata/rsa2048.pub.pem"),
        "rsa2048.pkcs1pub.pem" => include_bytes!("testdata/rsa2048.pkcs1pub.pem"),
        "rsa2048.pkcs1pub.der" => include_bytes!("testdata/rsa2048.pkcs1pub.der"),
        "rsa2048.enc.pem" => include_bytes!("testdata/rsa2048.enc.pem"),
        "rsa2048.legacy-enc.pem" => include_bytes!("testdata/rsa2048.legacy-enc.pem"),
        "rsa2048e3.pem" => include_bytes!("testdata/rsa2048e3.pem"),
        "rsa3072.pem" => include_bytes!("testdata/rsa3072.pem"),
        "rsa3072.legacy-des3.pem" => include_bytes!("testdata/rsa3072.legacy-des3.pem"),
        "p256.legacy-aes128.pem" => include_bytes!("testdata/p256.legacy-aes128.pem"),
        "rsa4608.pem" => include_bytes!("testdata/rsa4608.pem"),
        "p256.pem" => include_bytes!("testdata/p256.pem"),
        "p256.sec1.der" => include_bytes!("testdata/p256.sec1.der"),
        "p256.pub.pem" => include_bytes!("testdata/p256.pub.pem"),
        "p256.pub.compressed.der" => include_bytes!("testdata/p256.pub.compressed.der"),
        "p384.p8.pem" => include_bytes!("testdata/p384.p8.pem"),
        "p384.enc-scrypt.pem" => include_bytes!("testdata/p384.enc-scrypt.pem"),
        "p521.enc.pem" => include_bytes!("testdata/p521.enc.pem"),
        "p521.enc.der" => include_bytes!("testdata/p521.enc.der"),
        "ed25519.p8.pem" => include_bytes!("testdata/ed25519.p8.pem"),
        "ed25519.p8.der" => include_bytes!("testdata/ed25519.p8.der"),
        "ed25519.pub.pem" => include_bytes!("testdata/ed25519.pub.pem"),
        "ed448.p8.pem" => include_bytes!("testdata/ed448.p8.pem"),
        other => panic!("no test file {other}"),
    }
}

fn private(name: &str) -> PrivateKey {
    PrivateKey::from_pem_or_der(file(name), Some(PASS)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn hash_of(name: &str) -> HashAlg {
    match name {
        "sha1" => HashAlg::Sha1,
        "sha256" => HashAlg::Sha256,
        "sha384" => HashAlg::Sha384,
        "sha512" => HashAlg::Sha512,
        "identity" => HashAlg::Identity,
        other => panic!("hash {other}"),
    }
}

struct Vector {
    key: &'static str,
    scheme: SigScheme,
    sig: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    VECTORS
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let h = hash_of(f[2]);
            let scheme = match f[1] {
                "pkcs1" => SigScheme::RsaPkcs1(h),
                "pss" => SigScheme::RsaPss(h),
                "ecdsa" => SigScheme::Ecdsa(h),
                "ed25519" => SigScheme::Ed25519,
                other => panic!("scheme {other}"),
            };
            Vector {
                key: f[0],
                scheme,
                sig: hex::decode(f[3]).unwrap(),
            }
        })
        .collect()
}

/// The same scheme with another hash (SHA-256 <-> SHA-384 ...).
fn other_hash(s: SigScheme) -> Option<SigScheme> {
    let swap = |h| match h {
        HashAlg::Sha256 => HashAlg::Sha384,
        _ => HashAlg::Sha256,
    };
    match s {
        SigScheme::RsaPkcs1(h) => Some(SigScheme::RsaPkcs1(swap(h))),
        SigScheme::RsaPss(h) => Some(SigScheme::RsaPss(swap(h))),
        SigScheme::Ecdsa(h) => Some(SigScheme::Ecdsa(swap(h))),
        SigScheme::Ed25519 => None,
    }
}

#[test]
fn openssl_signatures_verify_and_tampering_is_caught() {
    let vs = vectors();
    assert_eq!(vs.len(), 29, "every line of vectors.txt is read");
    for v in &vs {
        let what = format!("{} {}", v.key, v.scheme);
        let key = private(v.key);
        let public = key.public_key();
        public
            .verify(v.scheme, MSG, &v.sig)
            .unwrap_or_else(|e| panic!("{what}: {e}"));

        let mut msg = MSG.to_vec();
        msg[3] ^= 1;
        assert_eq!(
            public.verify(v.scheme, &msg, &v.sig),
            Err(PkiError::BadSignature),
            "{what}: tampered message"
        );
        for at in [0, v.sig.len() / 2, v.sig.len() - 1] {
            let mut sig = v.sig.clone();
            sig[at] ^= 0x40;
            assert!(
                public.verify(v.scheme, MSG, &sig).is_err(),
                "{what}: signature changed at {at}"
            );
        }
        assert!(
            public
                .verify(v.scheme, MSG, &v.sig[..v.sig.len() - 1])
                .is_err()
        );
        assert!(public.verify(v.scheme, MSG, &[]).is_err());
        if let Some(wrong) = other_hash(v.scheme)
            && wrong != v.scheme
        {
            assert!(
                public.verify(wrong, MSG, &v.sig).is_err(),
                "{what}: verified as {wrong}"
            );
        }
        // PKCS#1 v1.5 and PSS are not interchangeable.
        let swapped = match v.scheme {
            SigScheme::RsaPkcs1(h) => Some(SigScheme::RsaPss(h)),
            SigScheme::RsaPss(h) => Some(SigScheme::RsaPkcs1(h)),
            _ => None,
        };
        if let Some(s) = swapped {
            assert!(public.verify(s, MSG, &v.sig).is_err(), "{what} as {s}");
        }
    }
}

#[test]
fn our_signatures_verify_and_deterministic_ones_equal_openssl() {
    let mut exact = 0;
    for v in vectors() {
        let what = format!("{} {}", v.key, v.scheme);
        let key = private(v.key);
        if key.public_key().bits() < 2048 && key.key_type() == KeyType::Rsa {
            assert!(
                matches!(
                    key.sign(v.scheme, MSG),
                    Err(PkiError::KeySize {
                        bits: 1024,
                        purpose: "signing",
                        ..
                    })
                ),
                "{what}: signing with a 1024-bit key is refused"
            );
            continue;
        }
        let ours = key
            .sign(v.scheme, MSG)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        key.public_key()
            .verify(v.scheme, MSG, &ours)
            .unwrap_or_else(|e| panic!("{what}: our own signature: {e}"));
        if matches!(v.scheme, SigScheme::RsaPkcs1(_) | SigScheme::Ed25519) {
            assert_eq!(hex::encode(&ours), hex::encode(&v.sig), "{what}");
            exact += 1;
        }
        let mut msg = MSG.to_vec();
        msg.push(0);
        assert!(key.public_key().verify(v.scheme, &msg, &ours).is_err());
    }
    // 2048 (4 hashes), e=3, 3072, 4608, Ed25519.
    assert_eq!(exact, 8);
}

#[test]
fn ecdsa_signs_every_hash_on_every_curve() {
    for name in ["p256.pem", "p384.p8.pem", "p521.enc.pem"] {
        let key = private(name);
        for h in [
            HashAlg::Sha1,
            HashAlg::Sha256,
            HashAlg::Sha384,
            HashAlg::Sha512,
        ] {
            let s = SigScheme::Ecdsa(h);
            let sig = key.sign(s, MSG).unwrap();
            key.public_key().verify(s, MSG, &sig).unwrap();
            assert!(key.public_key().verify(s, b"other", &sig).is_err());
        }
        assert!(matches!(
            key.sign(SigScheme::Ecdsa(HashAlg::Identity), MSG),
            Err(PkiError::SchemeMismatch { .. })
        ));
        assert!(matches!(
            key.sign(SigScheme::RsaPkcs1(HashAlg::Sha256), MSG),
            Err(PkiError::SchemeMismatch { .. })
        ));
        assert!(matches!(
            key.sign(SigScheme::Ed25519, MSG),
            Err(PkiError::SchemeMismatch { .. })
        ));
    }
}

#[test]
fn rsa_pss_sha1_and_sizes() {
    let k = private("rsa2048.p8.pem");
    // PSS with SHA-1 (X.509 default parameters) through the rsa crate.
    let s = SigScheme::RsaPss(HashAlg::Sha1);
    let sig = k.sign(s, MSG).unwrap();
    k.public_key().verify(s, MSG, &sig).unwrap();
    // PSS is randomized: two signatures differ, both verify.
    let p = SigScheme::RsaPss(HashAlg::Sha256);
    let (a, b) = (k.sign(p, MSG).unwrap(), k.sign(p, MSG).unwrap());
    assert_ne!(a, b);
    k.public_key().verify(p, MSG, &b).unwrap();
    assert!(matches!(
        k.sign(SigScheme::Ecdsa(HashAlg::Sha256), MSG),
        Err(PkiError::SchemeMismatch { .. })
    ));
    assert!(matches!(
        k.sign(SigScheme::RsaPkcs1(HashAlg::Identity), MSG),
        Err(PkiError::SchemeMismatch { .. })
    ));

    for (name, bits) in [
        ("rsa1024.pem", 1024),
        ("rsa2048.p8.pem", 2048),
        ("rsa3072.pem", 3072),
        ("rsa4608.pem", 4608),
    ] {
        assert_eq!(private(name).public_key().bits(), bits, "{name}");
    }
}

#[test]
fn key_encodings_give_the_same_keys() {
    let rsa = private("rsa2048.p8.pem");
    let pk = rsa.public_key();
    assert_eq!((pk.key_type(), pk.bits()), (KeyType::Rsa, 2048));
    assert_eq!(private("rsa2048.pkcs1.der").public_key(), pk);
    let enc = private("rsa2048.enc.pem");
    assert_eq!(enc.public_key(), pk);
    for f in [
        "rsa2048.pub.pem",
        "rsa2048.pkcs1pub.pem",
        "rsa2048.pkcs1pub.der",
    ] {
        assert_eq!(&PublicKey::from_pem_or_der(file(f)).unwrap(), pk, "{f}");
    }
    // The SPKI as OpenSSL wrote it is kept; keyids from it.
    let spki = pem_blocks(file("rsa2048.pub.pem")).unwrap().remove(0);
    let from_spki = PublicKey::from_spki_der(&spki.der).unwrap();
    assert_eq!(from_spki.spki_der(), spki.der.as_slice());
    // The SPKI we build for a key from PKCS#1 is OpenSSL's encoding.
    assert_eq!(pk.spki_der(), spki.der.as_slice());
    let sha1 = |b: &[u8]| {
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
            .as_ref()
            .to_vec()
    };
    assert_eq!(pk.spki_sha1().to_vec(), sha1(&spki.der));
    // An RSA SPKI's key bits are the PKCS#1 RSAPublicKey.
    assert_eq!(pk.key_sha1().to_vec(), sha1(file("rsa2048.pkcs1pub.der")));

    let p256 = private("p256.pem");
    assert_eq!(
        (p256.key_type(), p256.public_key().bits()),
        (KeyType::EcP256, 256)
    );
    assert_eq!(private("p256.sec1.der").public_key(), p256.public_key());
    let pub_pem = PublicKey::from_pem_or_der(file("p256.pub.pem")).unwrap();
    assert_eq!(&pub_pem, p256.public_key());
    assert_eq!(pub_pem.spki_der(), p256.public_key().spki_der());
    let compressed = PublicKey::from_pem_or_der(file("p256.pub.compressed.der")).unwrap();
    assert_eq!(&compressed, p256.public_key());
    assert_eq!(compressed.spki_der(), file("p256.pub.compressed.der"));

    let p384 = private("p384.p8.pem");
    assert_eq!(
        private("p384.enc-scrypt.pem").public_key(),
        p384.public_key()
    );
    assert_eq!(
        (p384.key_type(), p384.public_key().bits()),
        (KeyType::EcP384, 384)
    );
    let p521 = private("p521.enc.pem");
    assert_eq!(private("p521.enc.der").public_key(), p521.public_key());
    assert_eq!(
        (p521.key_type(), p521.public_key().bits()),
        (KeyType::EcP521, 521)
    );

    let ed = private("ed25519.p8.pem");
    assert_eq!(private("ed25519.p8.der").public_key(), ed.public_key());
    let ed_pub = PublicKey::from_pem_or_der(file("ed25519.pub.pem")).unwrap();
    assert_eq!(&ed_pub, ed.public_key());
    assert_eq!(ed_pub.spki_der(), ed.public_key().spki_der());
    assert_eq!((ed.key_type(), ed_pub.bits()), (KeyType::Ed25519, 256));

    assert_ne!(p256.public_key(), pk);
    assert_ne!(private("rsa3072.pem").public_key(), pk);
}

#[test]
fn passphrases_and_refusals() {
    for f in ["rsa2048.enc.pem", "p384.enc-scrypt.pem", "p521.enc.der"] {
        assert_eq!(
            PrivateKey::from_pem_or_der(file(f), None).unwrap_err(),
            PkiError::PassphraseRequired,
            "{f}"
        );
        assert_eq!(
            PrivateKey::from_pem_or_der(file(f), Some(b"wrong")).unwrap_err(),
            PkiError::BadPassphrase,
            "{f}"
        );
        assert_eq!(
            PrivateKey::from_pem_or_der(file(f), Some(b"")).unwrap_err(),
            PkiError::BadPassphrase,
            "{f}"
        );
    }
    // A passphrase given for an unencrypted key is not needed, not an error.
    PrivateKey::from_pem_or_der(file("p256.pem"), Some(b"unused")).unwrap();

    // Legacy OpenSSL PEM encryption (Proc-Type/DEK-Info headers).
    for (enc, plain) in [
        ("rsa2048.legacy-enc.pem", "rsa2048.p8.pem"),
        ("rsa3072.legacy-des3.pem", "rsa3072.pem"),
        ("p256.legacy-aes128.pem", "p256.pem"),
    ] {
        assert_eq!(private(enc).public_key(), private(plain).public_key());
        assert_eq!(
            PrivateKey::from_pem_or_der(file(enc), None).unwrap_err(),
            PkiError::PassphraseRequired,
            "{enc}"
        );
        for wrong in [&b"wrong"[..], b"", b"iked-test-pas"] {
            assert_eq!(
                PrivateKey::from_pem_or_der(file(enc), Some(wrong)).unwrap_err(),
                PkiError::BadPassphrase,
                "{enc}"
            );
        }
    }
    let text = std::str::from_utf8(file("p256.legacy-aes128.pem")).unwrap();
    let blowfish = text.replace("AES-128-CBC", "BF-CBC");
    assert!(matches!(
        PrivateKey::from_pem_or_der(blowfish.as_bytes(), Some(PASS)),
        Err(PkiError::Unsupported(m)) if m.contains("BF-CBC")
    ));
    let short_iv = text.replace("DEK-Info: AES-128-CBC,DD", "DEK-Info: AES-128-CBC,");
    assert!(matches!(
        PrivateKey::from_pem_or_der(short_iv.as_bytes(), Some(PASS)),
        Err(PkiError::Malformed { .. })
    ));
    assert!(matches!(
        PrivateKey::from_pem_or_der(file("ed448.p8.pem"), None),
        Err(PkiError::Unsupported(_))
    ));
    // A public key is not a private key, and the reverse.
    assert!(PrivateKey::from_pem_or_der(file("rsa2048.pub.pem"), None).is_err());
    assert!(PublicKey::from_pem_or_der(file("rsa2048.p8.pem")).is_err());
}

#[test]
fn pem_blocks_skip_other_blocks_and_keep_headers() {
    // `openssl ecparam -genkey` writes EC PARAMETERS first.
    let blocks = pem_blocks(file("p256.pem")).unwrap();
    let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["EC PARAMETERS", "EC PRIVATE KEY"]);
    let legacy = pem_blocks(file("rsa2048.legacy-enc.pem")).unwrap();
    assert_eq!(legacy[0].headers[0].0, "Proc-Type");
    assert!(legacy[0].headers[1].1.starts_with("AES-256-CBC,"));
    // Debug never shows the contents.
    let dbg = format!("{:?}", blocks[1]);
    assert!(dbg.contains("der_len"), "{dbg}");
    assert!(!format!("{:?}", private("p256.pem")).contains("der"));

    assert!(looks_like_pem(file("p256.pem")));
    assert!(!looks_like_pem(file("p256.sec1.der")));
    assert!(pem_blocks(b"-----BEGIN X-----\nAAAA\n").is_err());
    assert!(pem_blocks(b"-----BEGIN X-----\nA*AA\n-----END X-----\n").is_err());
    assert_eq!(
        pem_blocks(b"junk\r\n-----BEGIN X-----\r\n AQID \r\n-----END X-----\r\ntail").unwrap(),
        vec![PemBlock {
            label: "X".into(),
            headers: vec![],
            der: vec![1, 2, 3]
        }]
    );
}

#[test]
fn classic_methods() {
    // Method 1: PKCS#1 v1.5 with SHA-1, deterministic, OpenSSL's bytes.
    let rsa = private("rsa2048.p8.pem");
    let (m, sig) = sign_classic(&rsa, MSG).unwrap();
    assert_eq!(m, AuthMethod::RSA_SIG);
    let openssl = vectors()
        .into_iter()
        .find(|v| v.key == "rsa2048.p8.pem" && v.scheme == SigScheme::RsaPkcs1(HashAlg::Sha1))
        .unwrap();
    assert_eq!(sig, openssl.sig);
    verify_classic(rsa.public_key(), AuthMethod::RSA_SIG, MSG, &sig).unwrap();
    assert_eq!(
        verify_classic(rsa.public_key(), AuthMethod::RSA_SIG, b"x", &sig),
        Err(PkiError::BadSignature)
    );
    assert!(verify_classic(rsa.public_key(), AuthMethod::ECDSA_SHA256_P256, MSG, &sig).is_err());

    // 9/10/11: the curve's hash, r|s of fixed size; OpenSSL's DER
    // signatures with that hash, as r|s, verify.
    for (name, method, len) in [
        ("p256.pem", AuthMethod::ECDSA_SHA256_P256, 64),
        ("p384.p8.pem", AuthMethod::ECDSA_SHA384_P384, 96),
        ("p521.enc.pem", AuthMethod::ECDSA_SHA512_P521, 132),
    ] {
        let k = private(name);
        let (m, sig) = sign_classic(&k, MSG).unwrap();
        assert_eq!((m, sig.len()), (method, len), "{name}");
        let pk = k.public_key();
        verify_classic(pk, method, MSG, &sig).unwrap();
        assert!(verify_classic(pk, method, b"x", &sig).is_err());
        assert!(verify_classic(pk, AuthMethod::RSA_SIG, MSG, &sig).is_err());
        assert!(verify_classic(pk, method, MSG, &sig[1..]).is_err());
        // The DER form is not accepted by a classic method.
        let der = ecdsa_fixed_to_der(&sig).unwrap();
        assert!(verify_classic(pk, method, MSG, &der).is_err());

        let (_, hash) = classic_method(k.key_type()).unwrap();
        let v = vectors()
            .into_iter()
            .find(|v| v.key == name && v.scheme == SigScheme::Ecdsa(hash))
            .unwrap();
        let fixed = ecdsa_der_to_fixed(&v.sig, len / 2).unwrap();
        verify_classic(pk, method, MSG, &fixed).unwrap();
        assert_eq!(ecdsa_fixed_to_der(&fixed).unwrap(), v.sig);
    }
    let ed = private("ed25519.p8.pem");
    assert!(matches!(
        sign_classic(&ed, MSG),
        Err(PkiError::Unsupported(_))
    ));
    assert!(verify_classic(ed.public_key(), AuthMethod::RSA_SIG, MSG, &[0; 64]).is_err());
}

#[test]
fn ecdsa_der_is_strict() {
    // r = 1, s = 0x80 (needs a leading zero).
    assert_eq!(
        ecdsa_der_to_fixed(
            &hex::decode("3007020101020200 80".replace(' ', "")).unwrap(),
            2
        )
        .unwrap(),
        vec![0, 1, 0, 0x80]
    );
    for bad in [
        "300702010102020080 00", // trailing octet
        "3008020101020300 0080", // non-minimal leading zero
        "3006020101020180",      // negative s
        "3006020100020101",      // r = 0
        "30060201010201",        // truncated
        "3080020101020101 0000", // indefinite length
        "30810602010102 0101",   // long form for a short length
        "3007020101020301 0203", // s longer than the field
        "3003020101",            // no s
        "",
    ] {
        let der = hex::decode(bad.replace(' ', "")).unwrap();
        assert_eq!(
            ecdsa_der_to_fixed(&der, 2),
            Err(PkiError::BadSignature),
            "{bad}"
        );
    }
}

// RFC 7427 Appendix A, and RSASSA-PSS as strongSwan and OpenSSL write it.
const SHA256_RSA: &str = "300d06092a864886f70d01010b0500";
const SHA1_RSA: &str = "300d06092a864886f70d0101050500";
const SHA384_RSA: &str = "300d06092a864886f70d01010c0500";
const SHA512_RSA: &str = "300d06092a864886f70d01010d0500";
const ECDSA_SHA1: &str = "300906072a8648ce3d0401";
const ECDSA_SHA256: &str = "300a06082a8648ce3d040302";
const ECDSA_SHA384: &str = "300a06082a8648ce3d040303";
const ECDSA_SHA512: &str = "300a06082a8648ce3d040304";
const ED25519: &str = "300506032b6570";
/// From a certificate OpenSSL signed with `rsa_pss_saltlen:digest`.
const PSS_SHA256: &str = "304106092a864886f70d01010a3034a00f300d06096086480165030402010500\
                          a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120";
/// RFC 7427 A.4.3: the same with the DEFAULT trailerField written out.
const PSS_SHA256_RFC7427: &str = "304606092a864886f70d01010a3039a00f300d06096086480165030402010500\
                                  a11c301a06092a864886f70d010108300d06096086480165030402010500\
                                  a203020120a303020101";

#[test]
fn algorithm_identifiers() {
    let known = [
        (SigScheme::RsaPkcs1(HashAlg::Sha1), SHA1_RSA),
        (SigScheme::RsaPkcs1(HashAlg::Sha256), SHA256_RSA),
        (SigScheme::RsaPkcs1(HashAlg::Sha384), SHA384_RSA),
        (SigScheme::RsaPkcs1(HashAlg::Sha512), SHA512_RSA),
        (SigScheme::Ecdsa(HashAlg::Sha1), ECDSA_SHA1),
        (SigScheme::Ecdsa(HashAlg::Sha256), ECDSA_SHA256),
        (SigScheme::Ecdsa(HashAlg::Sha384), ECDSA_SHA384),
        (SigScheme::Ecdsa(HashAlg::Sha512), ECDSA_SHA512),
        (SigScheme::Ed25519, ED25519),
        (SigScheme::RsaPss(HashAlg::Sha256), PSS_SHA256),
    ];
    for (scheme, der) in known {
        assert_eq!(hex::encode(scheme.algorithm_identifier().unwrap()), der);
        assert_eq!(
            scheme_from_algorithm_identifier(&hex::decode(der).unwrap()),
            Some(scheme),
            "{der}"
        );
    }
    for h in [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ] {
        let s = SigScheme::RsaPss(h);
        assert_eq!(
            scheme_from_algorithm_identifier(&s.algorithm_identifier().unwrap()),
            Some(s)
        );
    }
    // PSS with SHA-1 is all DEFAULTs: empty parameters.
    assert_eq!(
        hex::encode(
            SigScheme::RsaPss(HashAlg::Sha1)
                .algorithm_identifier()
                .unwrap()
        ),
        "300d06092a864886f70d01010a3000"
    );
    assert_eq!(
        scheme_from_algorithm_identifier(&hex::decode(PSS_SHA256_RFC7427).unwrap()),
        Some(SigScheme::RsaPss(HashAlg::Sha256))
    );
    // Without NULL parameters (also allowed by RFC 4055).
    assert_eq!(
        scheme_from_algorithm_identifier(&hex::decode("300b06092a864886f70d01010b").unwrap()),
        Some(SigScheme::RsaPkcs1(HashAlg::Sha256))
    );
    for bad in [
        // md5WithRSAEncryption
        "300d06092a864886f70d0101040500",
        // sha256WithRSA with an INTEGER as parameters
        "300e06092a864886f70d01010b020100",
        // Ed25519 with NULL parameters
        "300706032b65700500",
        // trailing octet
        "300d06092a864886f70d01010b050000",
        "",
        "30",
        "3000",
    ] {
        let der = hex::decode(bad).unwrap_or_default();
        assert_eq!(scheme_from_algorithm_identifier(&der), None, "{bad}");
    }
    let pss = |salt: &str, mgf_hash: &str, trailer: &str| {
        let hash_alg = format!("300d0609608648016503040{mgf_hash}0500");
        let params = format!(
            "a00f300d06096086480165030402010500a11c301a06092a864886f70d010108{hash_alg}a2030201{salt}{trailer}"
        );
        let params = format!("30{:02x}{params}", params.len() / 2);
        let body = format!("06092a864886f70d01010a{params}");
        hex::decode(format!("30{:02x}{body}", body.len() / 2)).unwrap()
    };
    assert_eq!(
        scheme_from_algorithm_identifier(&pss("20", "201", "")),
        Some(SigScheme::RsaPss(HashAlg::Sha256))
    );
    assert_eq!(
        scheme_from_algorithm_identifier(&pss("00", "201", "")),
        None
    );
    assert_eq!(
        scheme_from_algorithm_identifier(&pss("30", "201", "")),
        None
    );
    assert_eq!(
        scheme_from_algorithm_identifier(&pss("20", "203", "")),
        None
    );
    assert_eq!(
        scheme_from_algorithm_identifier(&pss("20", "201", "a303020102")),
        None
    );
    assert!(
        SigScheme::Ecdsa(HashAlg::Identity)
            .algorithm_identifier()
            .is_err()
    );
}

#[test]
fn signature_auth_data() {
    let k = private("p384.p8.pem");
    let s = SigScheme::Ecdsa(HashAlg::Sha256);
    let sig = k.sign(s, MSG).unwrap();
    let data = encode_signature_auth(s, KeyType::EcP384, &sig).unwrap();
    assert_eq!(usize::from(data[0]), ECDSA_SHA256.len() / 2);
    assert_eq!(hex::encode(&data[1..=usize::from(data[0])]), ECDSA_SHA256);
    let (got, got_sig) = decode_signature_auth(&data).unwrap();
    assert_eq!((got, got_sig), (s, sig.as_slice()));
    k.public_key().verify(got, MSG, got_sig).unwrap();

    assert!(matches!(
        encode_signature_auth(s, KeyType::Rsa, &sig),
        Err(PkiError::SchemeMismatch { .. })
    ));
    assert!(matches!(
        encode_signature_auth(SigScheme::Ed25519, KeyType::EcP256, &sig),
        Err(PkiError::SchemeMismatch { .. })
    ));
    for scheme in [
        SigScheme::RsaPss(HashAlg::Sha512),
        SigScheme::RsaPkcs1(HashAlg::Sha1),
        SigScheme::Ed25519,
    ] {
        let key = if scheme == SigScheme::Ed25519 {
            KeyType::Ed25519
        } else {
            KeyType::Rsa
        };
        let d = encode_signature_auth(scheme, key, &[7; 9]).unwrap();
        assert_eq!(decode_signature_auth(&d).unwrap(), (scheme, &[7u8; 9][..]));
    }

    assert!(matches!(
        decode_signature_auth(&[]),
        Err(PkiError::Malformed { .. })
    ));
    assert!(matches!(
        decode_signature_auth(&[12, 0x30]),
        Err(PkiError::Malformed { .. })
    ));
    // No signature after the AlgorithmIdentifier.
    assert!(matches!(
        decode_signature_auth(&data[..=usize::from(data[0])]),
        Err(PkiError::Malformed { .. })
    ));
    // An unknown algorithm is Unsupported (the peer used something else).
    let mut md5 = vec![15];
    md5.extend(hex::decode("300d06092a864886f70d0101040500").unwrap());
    md5.push(1);
    assert!(matches!(
        decode_signature_auth(&md5),
        Err(PkiError::Unsupported(_))
    ));
}

#[test]
fn hash_iana_numbers() {
    for (n, h) in [
        (1, HashAlg::Sha1),
        (2, HashAlg::Sha256),
        (3, HashAlg::Sha384),
        (4, HashAlg::Sha512),
        (5, HashAlg::Identity),
    ] {
        assert_eq!(HashAlg::from_iana(n), Some(h));
        assert_eq!(h.iana(), n);
    }
    assert_eq!(HashAlg::from_iana(0), None);
    assert_eq!(HashAlg::from_iana(6), None);
}

#[test]
fn truncated_and_corrupted_keys_are_refused() {
    for name in [
        "rsa2048.p8.pem",
        "rsa2048.pkcs1.der",
        "p256.sec1.der",
        "p521.enc.der",
        "ed25519.p8.der",
        "rsa2048.pkcs1pub.der",
        "p256.pub.compressed.der",
    ] {
        let bytes = file(name);
        let step = (bytes.len() / 97).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            assert!(
                PrivateKey::from_pem_or_der(&bytes[..cut], Some(PASS)).is_err(),
                "{name} cut at {cut}"
            );
            assert!(PublicKey::from_pem_or_der(&bytes[..cut]).is_err());
        }
        for at in (0..bytes.len()).step_by(step) {
            let mut b = bytes.to_vec();
            b[at] ^= 0x81;
            // Must not panic; most flips are refused (a flip inside a
            // modulus or a padding octet may still parse).
            let _ = PrivateKey::from_pem_or_der(&b, Some(PASS));
            let _ = PublicKey::from_pem_or_der(&b);
        }
    }
    // A P-256 point not on the curve.
    let mut compressed = file("p256.pub.compressed.der").to_vec();
    let last = compressed.len() - 1;
    compressed[last - 10] ^= 1;
    compressed[last] ^= 1;
    let r = PublicKey::from_spki_der(&compressed);
    assert!(r.is_err() || r.unwrap().key_type() == KeyType::EcP256);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Arbitrary bytes never panic any parser and never verify.
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = PublicKey::from_pem_or_der(&bytes);
            let _ = PrivateKey::from_pem_or_der(&bytes, Some(b"x"));
            let _ = scheme_from_algorithm_identifier(&bytes);
            let _ = decode_signature_auth(&bytes);
            let _ = ecdsa_der_to_fixed(&bytes, 32);
            let mut pem = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
            pem.extend_from_slice(&bytes);
            let _ = PrivateKey::from_pem_or_der(&pem, None);
        }

        /// Random signatures never verify, whatever the scheme.
        #[test]
        fn random_signatures_fail(sig in proptest::collection::vec(any::<u8>(), 0..600), pick in 0usize..4) {
            let (name, scheme) = [
                ("rsa2048.pub.pem", SigScheme::RsaPss(HashAlg::Sha256)),
                ("rsa1024.pub.pem", SigScheme::RsaPkcs1(HashAlg::Sha256)),
                ("p256.pub.pem", SigScheme::Ecdsa(HashAlg::Sha512)),
                ("ed25519.pub.pem", SigScheme::Ed25519),
            ][pick];
            let k = PublicKey::from_pem_or_der(file(name)).unwrap();
            prop_assert!(k.verify(scheme, MSG, &sig).is_err());
        }

        /// DER of any r|s converts back to the same r|s.
        #[test]
        fn ecdsa_der_round_trip(r in proptest::array::uniform32(any::<u8>()), s in proptest::array::uniform32(any::<u8>())) {
            prop_assume!(r.iter().any(|&b| b != 0) && s.iter().any(|&b| b != 0));
            let fixed = [r, s].concat();
            let der = ecdsa_fixed_to_der(&fixed).unwrap();
            prop_assert_eq!(ecdsa_der_to_fixed(&der, 32).unwrap(), fixed);
        }
    }
}

#[test]
fn rfc8032_ed25519_known_answer() {
    // RFC 8032 7.1 TEST 1 (empty message), as a PKCS#8 v1 key.
    let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555\
               fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    let pkcs8 = hex::decode(format!("302e020100300506032b657004220420{seed}")).unwrap();
    let k = PrivateKey::from_pem_or_der(&pkcs8, None).unwrap();
    assert_eq!(
        hex::encode(k.public_key().spki_der()),
        format!("302a300506032b6570032100{public}")
    );
    assert_eq!(hex::encode(k.sign(SigScheme::Ed25519, b"").unwrap()), sig);
    let sig = hex::decode(sig).unwrap();
    k.public_key()
        .verify(SigScheme::Ed25519, b"", &sig)
        .unwrap();
    assert!(
        k.public_key()
            .verify(SigScheme::Ed25519, b"x", &sig)
            .is_err()
    );
    // PKCS#8 v2 with the matching public key, and with a wrong one.
    let v2 = |pk: &str| {
        hex::decode(format!("3051020101300506032b657004220420{seed}8121 00{pk}").replace(' ', ""))
            .unwrap()
    };
    assert_eq!(
        PrivateKey::from_pem_or_der(&v2(public), None)
            .unwrap()
            .public_key(),
        k.public_key()
    );
    let mut wrong = public.to_string();
    wrong.replace_range(0..2, "d6");
    assert!(PrivateKey::from_pem_or_der(&v2(&wrong), None).is_err());
}

#[test]
fn schemes_as_strongswan_prefers_them() {
    use HashAlg::*;
    use SigScheme::*;
    assert_eq!(
        schemes_for_key(KeyType::Rsa, 3072),
        [
            RsaPss(Sha256),
            RsaPss(Sha384),
            RsaPss(Sha512),
            RsaPkcs1(Sha256),
            RsaPkcs1(Sha384),
            RsaPkcs1(Sha512)
        ]
    );
    assert_eq!(
        schemes_for_key(KeyType::Rsa, 4096),
        [
            RsaPss(Sha384),
            RsaPss(Sha512),
            RsaPkcs1(Sha384),
            RsaPkcs1(Sha512)
        ]
    );
    assert_eq!(
        schemes_for_key(KeyType::EcP256, 256),
        [Ecdsa(Sha256), Ecdsa(Sha384), Ecdsa(Sha512)]
    );
    assert_eq!(
        schemes_for_key(KeyType::EcP384, 384),
        [Ecdsa(Sha384), Ecdsa(Sha512)]
    );
    assert_eq!(schemes_for_key(KeyType::EcP521, 521), [Ecdsa(Sha512)]);
    assert_eq!(schemes_for_key(KeyType::Ed25519, 256), [Ed25519]);
    for s in schemes_for_key(KeyType::Rsa, 2048) {
        assert!(s.fits(KeyType::Rsa) && !s.fits(KeyType::EcP256));
    }
}

#[test]
fn keys_are_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PrivateKey>();
    send_sync::<PublicKey>();
    send_sync::<PkiError>();
}
