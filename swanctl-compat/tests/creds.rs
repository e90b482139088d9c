//! The credential folders and files of a configuration, laid out as
//! swanctl does in a temporary directory with a PKI generated at test time
//! (rcgen): what loads, what the peer configurations get, and every error
//! with its file (and the configuration's line and key for a named file).

// Test helpers outside #[test] functions panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ike::config::Config;
use ike::from_config::{self, Credentials, Ports, Resolved};
use ike::sa::{LocalAuthCfg, RemoteAuthCfg};
use ike::wire::codes::IdType;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use swanctl_compat::creds::load_credentials;

struct Pki {
    ca_pem: String,
    gw_pem: String,
    gw_key_pem: String,
    gw_key_der: Vec<u8>,
    gw_pub_pem: String,
    peer_key_pub_pem: String,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CountryName, "CH");
    d.push(DnType::OrganizationName, "Example");
    d.push(DnType::CommonName, cn);
    d
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = dn("Example Root CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let gw_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut gw = CertificateParams::new(vec!["gw.example.net".to_string()]).unwrap();
    gw.distinguished_name = dn("gw");
    let gw_cert = gw.signed_by(&gw_key, &issuer).unwrap();
    let peer_key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        gw_pem: gw_cert.pem(),
        gw_key_pem: gw_key.serialize_pem(),
        gw_key_der: gw_key.serialize_der(),
        gw_pub_pem: gw_key.public_key_pem(),
        peer_key_pub_pem: peer_key.public_key_pem(),
    }
}

/// A fresh directory under the system's temporary one.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "iked-creds-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

const SWANCTL: &str = "\
connections {
  gw {
    remote_addrs = 198.51.100.1
    local {
      auth = ecdsa-sha256
      certs = gw.pem
    }
    remote {
      auth = pubkey
      id = \"C=CH, O=Example, CN=*\"
      cacerts = ca.pem
      revocation = ifuri
    }
    send_cert = always
  }
  raw {
    local {
      auth = pubkey
      id = gw.example.net
    }
    remote {
      auth = ed25519
      pubkeys = peer.pub
    }
  }
  rawkey {
    local {
      auth = ecdsa
      pubkeys = gw.pub
    }
    remote {
      auth = pubkey
      pubkeys = peer.pub
    }
  }
}
";

fn layout(dir: &Path, p: &Pki) {
    write(dir, "swanctl.conf", SWANCTL);
    write(dir, "x509/gw.pem", &p.gw_pem);
    write(dir, "x509ca/ca.pem", &p.ca_pem);
    write(dir, "private/gw.der", &p.gw_key_der);
    write(dir, "pubkey/peer.pub", &p.peer_key_pub_pem);
    write(dir, "pubkey/gw.pub", &p.gw_pub_pem);
}

fn load(dir: &Path, file: &str) -> (Config, Result<Credentials, Vec<String>>) {
    let path = dir.join(file);
    let config = if file.ends_with(".conf") {
        swanctl_compat::load(&path).unwrap_or_else(|e| panic!("{e}"))
    } else {
        let text = std::fs::read_to_string(&path).unwrap();
        Config::from_yaml_str(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"))
    };
    let creds = load_credentials(&config, dir).map_err(|e| {
        e.issues
            .iter()
            .map(|i| i.to_string().replace(&dir.display().to_string(), "DIR"))
            .collect()
    });
    (config, creds)
}

fn check_peers(config: &Config, creds: &Credentials, p: &Pki) {
    let peers = from_config::peers(config, &Resolved::new(), Ports::default(), creds)
        .unwrap_or_else(|e| panic!("{e}"));
    let gw = &peers[0];
    let LocalAuthCfg::Pubkey(cred) = &gw.local_auth else {
        panic!("{:?}", gw.local_auth)
    };
    let gw_cert = ike::pki::Certificate::parse_pem_or_der(p.gw_pem.as_bytes()).unwrap();
    assert_eq!(cred.certs[0].der(), gw_cert[0].der());
    // local.id defaults to the certificate's subject DN.
    assert_eq!(gw.local_id.id_type, IdType::DER_ASN1_DN);
    assert_eq!(&gw.local_id, gw_cert[0].subject());
    let RemoteAuthCfg::Pubkey {
        cacerts,
        pubkeys,
        revocation,
        constraints,
    } = &gw.remote_auth
    else {
        panic!("{:?}", gw.remote_auth)
    };
    assert_eq!(cacerts.len(), 1);
    assert!(pubkeys.is_empty());
    assert_eq!(*revocation, ike::pki::Revocation::IfUri);
    // remote.auth = pubkey: any key, any scheme.
    assert!(constraints.is_empty());
    assert_eq!(gw.send_cert, ike::sa::SendCert::Always);
    // Without certs: the certificate in x509/ that names local.id.
    let raw = &peers[1];
    let LocalAuthCfg::Pubkey(cred) = &raw.local_auth else {
        panic!("{:?}", raw.local_auth)
    };
    assert_eq!(cred.certs[0].der(), gw_cert[0].der());
    assert_eq!(raw.local_id.id_type, IdType::FQDN);
    // The same certificate and key: one credential, its key parsed once.
    let LocalAuthCfg::Pubkey(first) = &gw.local_auth else {
        panic!()
    };
    assert!(std::sync::Arc::ptr_eq(first, cred));
    let RemoteAuthCfg::Pubkey { pubkeys, .. } = &raw.remote_auth else {
        panic!()
    };
    assert_eq!(pubkeys.len(), 1);
    // A raw public key of ours: its private key signs, no certificate.
    let LocalAuthCfg::Pubkey(rawkey) = &peers[2].local_auth else {
        panic!("{:?}", peers[2].local_auth)
    };
    assert!(rawkey.certs.is_empty());
    assert_eq!(
        rawkey.key.public_key().spki_der(),
        gw_cert[0].public_key().spki_der()
    );
    // The CA of x509ca/ is a trust anchor.
    let store = from_config::trust_store(config, creds);
    assert_eq!(store.anchors().len(), 1);
}

#[test]
fn a_swanctl_layout_loads() {
    let p = pki();
    let dir = temp_dir("swanctl");
    layout(&dir, &p);
    let (config, creds) = load(&dir, "swanctl.conf");
    let creds = creds.unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(creds.x509.len(), 1);
    assert_eq!(creds.cas.len(), 1);
    assert_eq!(creds.keys.len(), 1);
    check_peers(&config, &creds, &p);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_yaml_beside_the_same_folders_means_the_same_files() {
    let p = pki();
    let dir = temp_dir("yaml");
    layout(&dir, &p);
    // ikectl convert's output, read back beside the folders.
    let yaml = swanctl_compat::convert_file(dir.join("swanctl.conf")).unwrap();
    assert!(yaml.contains("x509/gw.pem"), "{yaml}");
    write(&dir, "iked.yaml", &yaml);
    let (config, creds) = load(&dir, "iked.yaml");
    check_peers(&config, &creds.unwrap_or_else(|e| panic!("{e:#?}")), &p);
    // Absolute paths work, anywhere.
    let elsewhere = temp_dir("elsewhere");
    write(&elsewhere, "my-cert.pem", &p.gw_pem);
    let abs = elsewhere.join("my-cert.pem").display().to_string();
    let yaml = yaml.replace("x509/gw.pem", &abs);
    write(&dir, "abs.yaml", &yaml);
    let (config, creds) = load(&dir, "abs.yaml");
    let creds = creds.unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(creds.cert_files.contains_key(&abs));
    check_peers(&config, &creds, &p);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&elsewhere).unwrap();
}

#[test]
fn an_authoritys_crl_uris_are_asked_for_what_its_ca_issues() {
    use ike::pki::{Certificate, Revocation, ValidateParams, Validation};
    let p = pki();
    let dir = temp_dir("authority");
    layout(&dir, &p);
    let conf = format!(
        "{SWANCTL}authorities {{\n  root {{\n    cacert = ca.pem\n    \
         crl_uris = http://crl.example/root.crl, ldap://ldap.example/cn=root\n  }}\n}}\n"
    );
    write(&dir, "swanctl.conf", &conf);
    let yaml = swanctl_compat::convert_file(dir.join("swanctl.conf")).unwrap();
    write(&dir, "iked.yaml", &yaml);
    let gw = Certificate::parse_pem_or_der(p.gw_pem.as_bytes()).unwrap();
    assert!(gw[0].crl_uris().is_empty());
    let now = gw[0].not_before().saturating_add(1);
    for file in ["swanctl.conf", "iked.yaml"] {
        let (config, creds) = load(&dir, file);
        let creds = creds.unwrap_or_else(|e| panic!("{file}: {e:#?}"));
        let store = from_config::trust_store(&config, &creds);
        let ca = &store.anchors()[0];
        assert_eq!(
            store.ca_crl_uris(ca),
            ["http://crl.example/root.crl", "ldap://ldap.example/cn=root"],
            "{file}"
        );
        let params = ValidateParams::new(now, &[], Revocation::IfUri);
        match ike::pki::validate(&store, &gw[0], &[], &params).unwrap() {
            Validation::NeedCrls { uris } => assert_eq!(
                uris,
                ["http://crl.example/root.crl", "ldap://ldap.example/cn=root"],
                "{file}"
            ),
            other => panic!("{file}: {other:?}"),
        }
    }
    // Without the authority, the same CA (from x509ca/) has no URIs.
    layout(&dir, &p);
    let (config, creds) = load(&dir, "swanctl.conf");
    let store = from_config::trust_store(&config, &creds.unwrap());
    assert!(store.ca_crl_uris(&store.anchors()[0]).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_credential_problem_is_reported_with_its_file() {
    let p = pki();
    let dir = temp_dir("errors");
    layout(&dir, &p);
    write(
        &dir,
        "x509ca/junk.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    write(&dir, "x509crl/bad.crl", "not a crl");
    write(&dir, "private/bad.key", "not a key");
    write(&dir, "x509ca/.hidden", "ignored");
    std::fs::remove_file(dir.join("pubkey/peer.pub")).unwrap();
    let (_, creds) = load(&dir, "swanctl.conf");
    let e = creds.unwrap_err();
    let has = |s: &str| assert!(e.iter().any(|l| l.contains(s)), "{s:?} in {e:#?}");
    has("DIR/x509ca/junk.pem:0: (x509ca/): not a certificate");
    has("DIR/x509crl/bad.crl:0: (x509crl/): ");
    has("DIR/private/bad.key:0: (private/): not a usable private key");
    // A named file that is missing: at the key that names it.
    has("DIR/swanctl.conf:23: connections.raw.remote.pubkeys: DIR/pubkey/peer.pub: cannot read");
    // ... at each key that names it.
    has("DIR/swanctl.conf:33: connections.rawkey.remote.pubkeys: DIR/pubkey/peer.pub: cannot read");
    assert_eq!(e.len(), 5, "{e:#?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_certificate_needs_its_private_key() {
    let p = pki();
    let dir = temp_dir("nokey");
    layout(&dir, &p);
    std::fs::remove_file(dir.join("private/gw.der")).unwrap();
    let (config, creds) = load(&dir, "swanctl.conf");
    let creds = creds.unwrap_or_else(|e| panic!("{e:#?}"));
    let e = from_config::peers(&config, &Resolved::new(), Ports::default(), &creds)
        .unwrap_err()
        .to_string()
        .replace(&dir.display().to_string(), "DIR");
    assert!(
        e.contains(
            "DIR/swanctl.conf:6: connections.gw.local.certs: no private key for the certificate \
             'C=CH, O=Example, CN=gw'"
        ),
        "{e}"
    );
    assert!(
        e.contains("connections.raw.local: no certificate in x509/ names gw.example.net"),
        "{e}"
    );
    // A key of another type than auth allows.
    write(&dir, "private/gw.pem", &p.gw_key_pem);
    let text = SWANCTL.replace("auth = ecdsa-sha256", "auth = rsa");
    write(&dir, "swanctl.conf", text);
    let (config, creds) = load(&dir, "swanctl.conf");
    let e = from_config::peers(&config, &Resolved::new(), Ports::default(), &creds.unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("has a ECDSA P-256 key, which local.auth does not allow"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_encrypted_key_needs_its_passphrase() {
    use pkcs8::der::Decode as _;
    let p = pki();
    let dir = temp_dir("encrypted");
    layout(&dir, &p);
    std::fs::remove_file(dir.join("private/gw.der")).unwrap();
    let info = pkcs8::PrivateKeyInfo::from_der(&p.gw_key_der).unwrap();
    // PBKDF2 with few iterations: the test's speed, not the key's safety.
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(1000, &[7; 16], &[9; 16]).unwrap();
    let enc = info.encrypt_with_params(params, b"open sesame").unwrap();
    write(&dir, "private/gw.der", enc.as_bytes());
    let (_, creds) = load(&dir, "swanctl.conf");
    let e = creds.unwrap_err();
    assert!(
        e[0].starts_with(
            "DIR/private/gw.der:0: (private/): the key is encrypted: give its \
             passphrase in secrets.private"
        ),
        "{e:#?}"
    );
    // With a wrong passphrase: reported at the secret.
    let with = |secret: &str| {
        format!(
            "{SWANCTL}secrets {{\n  private-gw {{\n    file = gw.der\n    secret = {secret}\n  }}\n}}\n"
        )
    };
    write(&dir, "swanctl.conf", with("wrong"));
    let (_, creds) = load(&dir, "swanctl.conf");
    let e = creds.unwrap_err();
    assert!(
        e[0].starts_with("DIR/swanctl.conf:39: secrets.private-gw.file: DIR/private/gw.der: not a usable private key"),
        "{e:#?}"
    );
    write(&dir, "swanctl.conf", with("\"open sesame\""));
    let (config, creds) = load(&dir, "swanctl.conf");
    let creds = creds.unwrap_or_else(|e| panic!("{e:#?}"));
    check_peers(&config, &creds, &p);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn certificates_that_expire_within_the_window_are_listed() {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name = dn("Short CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let pem = ca.self_signed(&key).unwrap().pem();
    let dir = temp_dir("expiry");
    write(&dir, "x509ca/ca.pem", pem);
    write(&dir, "iked.yaml", "connections: {}\n");
    let (config, creds) = load(&dir, "iked.yaml");
    let creds = creds.unwrap_or_else(|e| panic!("{e:#?}"));
    let store = from_config::trust_store(&config, &creds);
    let end = store.anchors()[0].not_after();
    let day = 86_400;
    let soon = from_config::expiring(&[], &store, end - 10 * day, 30 * day);
    assert_eq!(
        soon,
        [(
            "CA certificate",
            "C=CH, O=Example, CN=Short CA".to_string(),
            end
        )]
    );
    assert!(from_config::expiring(&[], &store, end - 31 * day, 30 * day).is_empty());
    // Expired ones too.
    assert_eq!(
        from_config::expiring(&[], &store, end + day, 30 * day).len(),
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
