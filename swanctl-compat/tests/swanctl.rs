//! swanctl.conf files from strongSwan and hand-made ones: the configuration
//! they give (compared with the same configuration written as iked YAML),
//! the exact errors, includes, and the YAML conversion round trip.

// Test helpers outside #[test] functions panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use ike::config::{AuthMethod, Config, Connection, Identity};
use proptest::prelude::*;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn data_str(name: &str) -> String {
    data(name).to_string_lossy().into_owned()
}

fn yaml(name: &str) -> Config {
    let text = std::fs::read_to_string(data(name)).unwrap();
    Config::from_yaml_str(&text, name).unwrap_or_else(|e| panic!("{e}"))
}

fn load(name: &str) -> Config {
    swanctl_compat::load(data(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// The errors as `file:line: path: message` lines, file names relative to
/// tests/data.
fn load_err(name: &str) -> Vec<String> {
    match swanctl_compat::load(data(name)) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e
            .issues()
            .iter()
            .map(|i| i.to_string().replace(&data_str(""), ""))
            .collect(),
    }
}

fn parse_err(text: &str) -> Vec<String> {
    match swanctl_compat::parse_str(text, "s.conf") {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.issues().iter().map(ToString::to_string).collect(),
    }
}

/// A configuration without its line numbers, which differ between files.
#[derive(Debug, PartialEq)]
struct Settings {
    connections: Vec<Connection>,
    secrets: Vec<(Vec<Identity>, Vec<u8>)>,
}

fn settings(c: &Config) -> Settings {
    let mut connections = c.connections().to_vec();
    for conn in &mut connections {
        conn.line = 0;
        for f in conn
            .local
            .certs
            .iter_mut()
            .chain(&mut conn.remote.certs)
            .chain(&mut conn.remote.cacerts)
            .chain(&mut conn.remote.pubkeys)
        {
            f.at = ike::config::Place::default();
        }
        for child in &mut conn.children {
            child.line = 0;
        }
    }
    Settings {
        connections,
        secrets: c
            .ike_secrets()
            .iter()
            .map(|s| (s.ids.clone(), s.secret.to_vec()))
            .collect(),
    }
}

/// The file converted to YAML reads back as the same configuration.
fn assert_round_trip(path: PathBuf) {
    let config = swanctl_compat::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let text = swanctl_compat::convert_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let again = Config::from_yaml_str(&text, "converted.yaml")
        .unwrap_or_else(|e| panic!("{e}\n--- converted:\n{text}"));
    assert_eq!(settings(&again), settings(&config), "converted:\n{text}");
}

fn id(s: &str) -> Identity {
    Identity::parse(s).unwrap()
}

/// The `updown` command strongSwan's example configurations use.
const UPDOWN: &str = "/usr/local/libexec/ipsec/_updown iptables";

/// The child's `updown`, which the file sets, taken out (the hand-written
/// YAML of the same configuration has none).
fn without_updown(mut c: Settings) -> Settings {
    for conn in &mut c.connections {
        for child in &mut conn.children {
            assert_eq!(child.updown, Some(ike::config::Updown::new(UPDOWN)));
            child.updown = None;
        }
    }
    c
}

#[test]
fn strongswan_net2net_psk_loads_as_written() {
    let c = load("net2net-psk-moon.conf");
    // Line 24: the updown command, kept whole (line 32: mobike = no).
    assert_eq!(
        c.connections()[0].children[0].updown,
        Some(ike::config::Updown::new(UPDOWN))
    );
    assert_round_trip(data("net2net-psk-moon.conf"));
}

#[test]
fn mobike_and_bad_values() {
    let conf = |conn_extra: &str, child_extra: &str| {
        format!(
            "connections {{\n c {{\n  remote_addrs = 192.0.2.1\n  local {{ auth = psk }}\n  \
             remote {{ auth = psk }}\n{conn_extra}  children {{\n   x {{\n{child_extra}   }}\n  \
             }}\n }}\n}}\n"
        )
    };
    // mobike is read, default yes as swanctl.
    for (extra, want) in [
        ("", true),
        ("  mobike = yes\n", true),
        ("  mobike = no\n", false),
    ] {
        let text = conf(extra, "");
        let c =
            swanctl_compat::parse_str(&text, "s.conf").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(c.connections()[0].mobike, want, "{extra}");
    }
    // A bad value is an error naming file, line and key.
    let bad = conf("  mobike = maybe\n  fragmentation = sometimes\n", "");
    let got: Vec<String> = parse_err(&bad).iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "s.conf:6: connections.c.mobike: bad value \"maybe\" (expected yes or no)",
            "s.conf:7: connections.c.fragmentation: unknown fragmentation \"sometimes\" (expected yes, accept, force or no)",
        ]
    );
    // fragmentation is read (RFC 7383), with strongSwan's values.
    for (v, want) in [
        ("yes", ike::sa::Fragmentation::Yes),
        ("accept", ike::sa::Fragmentation::Accept),
        ("force", ike::sa::Fragmentation::Force),
        ("no", ike::sa::Fragmentation::No),
    ] {
        let c = swanctl_compat::parse_str(&conf(&format!("  fragmentation = {v}\n"), ""), "s.conf")
            .unwrap();
        assert_eq!(c.connections()[0].fragmentation, want, "{v}");
    }
}

/// strongSwan's swanctl/rw-psk-ipv4 scenario, host and gateway: as
/// written, the files give the configuration of the hand-written YAML
/// plus their `updown`, and convert to YAML that reads back the same.
#[test]
fn strongswan_rw_psk_ipv4_host_and_gateway() {
    for host in ["carol", "moon"] {
        let f = format!("rw-psk-ipv4-{host}.conf");
        let c = load(&f);
        assert_eq!(
            without_updown(settings(&c)),
            settings(&yaml(&format!("rw-psk-ipv4-{host}.yaml")))
        );
        assert_round_trip(data(&f));
    }
    // The gateway picks carol's secret for carol, dave's for dave.
    let moon = yaml("rw-psk-ipv4-moon.yaml");
    let psk = |peer: &str| {
        moon.find_psk(&id("192.168.0.1"), &id(peer))
            .map(<[u8]>::len)
    };
    assert_eq!(
        (psk("192.168.0.100"), psk("192.168.0.200")),
        (Some(18), Some(18))
    );
    assert_ne!(
        moon.find_psk(&id("192.168.0.1"), &id("192.168.0.100")),
        moon.find_psk(&id("192.168.0.1"), &id("192.168.0.200"))
    );
}

#[test]
fn strongswan_net2net_psk_as_iked_yaml() {
    let c = load("net2net-psk-moon-supported.conf");
    assert_eq!(settings(&c), settings(&yaml("net2net-psk-moon.yaml")));
    // And independently of the YAML side's reading:
    let conn = &c.connections()[0];
    assert_eq!((conn.name.as_str(), conn.line), ("gw-gw", 8));
    assert_eq!(conn.version, 2);
    assert_eq!(conn.local.id, Some(id("moon.strongswan.org")));
    assert_eq!(conn.children[0].line, 21);
    let s = c.ike_secrets();
    assert_eq!(s.len(), 5);
    assert_eq!(s[0].secret.as_slice(), [0xff]);
    assert_eq!(s[1].secret.as_slice(), b"This is a strong password");
    assert_eq!(
        s[2].ids,
        [id("moon.strongswan.org"), id("sun.strongswan.org")]
    );
    assert_eq!(s[2].secret.len(), 24);
    assert!(s[3].ids.is_empty());
    assert_eq!(s[3].secret.as_slice(), b"'My home is my castle !'");
    assert_eq!(s[4].secret.as_slice(), b"Andi's home");
    assert_eq!(s[4].line, 51);
    // The most specific secret for moon and sun is ike-3.
    assert_eq!(
        c.find_psk(&id("moon.strongswan.org"), &id("sun.strongswan.org")),
        Some(s[2].secret.as_slice())
    );
    assert_round_trip(data("net2net-psk-moon-supported.conf"));
}

#[test]
fn strongswan_rw_psk_fqdn_carol() {
    assert_eq!(
        without_updown(settings(&load("rw-psk-fqdn-carol.conf"))),
        settings(&load("rw-psk-fqdn-carol-supported.conf"))
    );
    let c = load("rw-psk-fqdn-carol-supported.conf");
    assert_eq!(settings(&c), settings(&yaml("rw-psk-fqdn-carol.yaml")));
    assert_eq!(c.connections()[0].remote.id, id("moon.strongswan.org"));
    assert_round_trip(data("rw-psk-fqdn-carol-supported.conf"));
}

#[test]
fn strongswan_quickstart_uses_certificates() {
    use ike::config::{AuthMethod, SendCert};
    let c = load("quickstart-net-net-moon.conf");
    let conn = &c.connections()[0];
    assert_eq!(conn.local.auth, AuthMethod::Pubkey(vec![]));
    // certs = moonCert.pem is swanctl's x509/moonCert.pem beside the file.
    assert_eq!(conn.local.certs[0].path, "x509/moonCert.pem");
    assert_eq!(
        (
            conn.local.certs[0].at.file.as_str(),
            conn.local.certs[0].at.line,
            conn.local.certs[0].at.path.as_str()
        ),
        (
            data_str("quickstart-net-net-moon.conf").as_str(),
            9,
            "connections.net-net.local.certs"
        )
    );
    assert_eq!(
        conn.local.id, None,
        "the certificate's subject, when loaded"
    );
    assert_eq!(conn.remote.auth, AuthMethod::Pubkey(vec![]));
    assert_eq!(
        conn.remote.id,
        id("C=CH, O=strongSwan, CN=sun.strongswan.org")
    );
    assert_eq!(
        (conn.send_cert, conn.send_certreq),
        (SendCert::IfAsked, true)
    );
    assert_round_trip(data("quickstart-net-net-moon.conf"));
}

#[test]
fn credential_names_are_in_swanctls_folders() {
    use ike::config::{KeyKind, Revocation};
    let text = "\
connections {
  c {
    local { auth = rsa/pss-sha256
            certs = gw.pem, /etc/ssl/chain.pem }
    remote { auth = ecdsa
             cacerts = ca.pem
             pubkeys = peer.pub
             certs = peer.pem
             revocation = ifuri }
    send_cert = always
    send_certreq = no
  }
}
authorities {
  strongswan { cacert = caCert.pem
               crl_uris = http://crl.example/ca.crl }
  other { file = /etc/ssl/other.pem }
}
secrets {
  private-gw { file = gwKey.pem
               secret = \"pass word\" }
  rsa-old { file = /abs/old.pem
            secret = 0x00 }
  ecdsa-e { file = e.pem
            secret = x }
  pkcs8-p { file = p.pem
            secret = y }
  private-2 { file = two.pem
              secret = z }
}
";
    let c = swanctl_compat::parse_str(text, "s.conf").unwrap_or_else(|e| panic!("{e}"));
    let conn = &c.connections()[0];
    let paths = |v: &[ike::config::CredFile]| v.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
    assert_eq!(
        paths(&conn.local.certs),
        ["x509/gw.pem", "/etc/ssl/chain.pem"]
    );
    assert_eq!(paths(&conn.remote.cacerts), ["x509ca/ca.pem"]);
    assert_eq!(paths(&conn.remote.pubkeys), ["pubkey/peer.pub"]);
    assert_eq!(paths(&conn.remote.certs), ["x509/peer.pem"]);
    assert_eq!(conn.remote.revocation, Revocation::IfUri);
    let a = c.authorities();
    assert_eq!(a[0].cacert.path, "x509ca/caCert.pem");
    assert_eq!(a[0].crl_uris, ["http://crl.example/ca.crl"]);
    assert_eq!(a[1].cacert.path, "/etc/ssl/other.pem");
    let k: Vec<(KeyKind, &str, &[u8])> = c
        .key_secrets()
        .iter()
        .map(|k| (k.kind, k.file.path.as_str(), k.secret.as_slice()))
        .collect();
    assert_eq!(
        k,
        [
            (KeyKind::Private, "private/gwKey.pem", &b"pass word"[..]),
            (KeyKind::Private, "private/two.pem", b"z"),
            (KeyKind::Rsa, "/abs/old.pem", &[0][..]),
            (KeyKind::Ecdsa, "ecdsa/e.pem", b"x"),
            (KeyKind::Pkcs8, "pkcs8/p.pem", b"y"),
        ]
    );
    // Problems in a private key secret are named by its swanctl section.
    assert_eq!(
        parse_err("secrets {\n private-a { file = a.pem }\n rsa-b { secret = x }\n}\n"),
        [
            "s.conf:2: secrets.private-a.secret: missing: the key file's passphrase",
            "s.conf:3: secrets.rsa-b.file: missing: the key file",
        ]
    );
    // The YAML it converts to means the same files (relative to the file).
    let tree = swanctl_compat::parse_tree_str(text, "s.conf").unwrap();
    let yaml = swanctl_compat::to_yaml(&tree);
    let again = Config::from_yaml_str(&yaml, "c.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(
        paths(&again.connections()[0].local.certs),
        paths(&conn.local.certs)
    );
    assert_eq!(again.key_secrets().len(), 5);
    assert_eq!(again.authorities()[0].cacert.path, "x509ca/caCert.pem");
}

#[test]
fn includes_globs_and_templates() {
    let c = load("include/main.conf");
    let names: Vec<&str> = c.connections().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let b = &c.connections()[1];
    assert_eq!(b.local.id, Some(id("b.example.net")));
    assert_eq!(b.line, 2);
    assert_eq!(c.ike_secrets()[0].secret.as_slice(), b"included secret");
    assert!(c.ike_secrets()[0].ids.is_empty());
    assert_round_trip(data("include/main.conf"));
}

#[test]
fn errors_in_included_files_name_them() {
    assert_eq!(
        load_err("include/bad-main.conf"),
        [
            "include/bad-main.conf:4: include: cannot read included file \
             \"include/does-not-exist.conf\": No such file or directory (os error 2)"
                .to_owned(),
        ]
    );
}

#[test]
fn schema_errors_in_included_files_name_them() {
    // bad.d/c.conf alone, through an include that works.
    let dir = data("include");
    let text = "connections {\n   include bad.d/*.conf\n}\n";
    let main = dir.join("ok-main.conf");
    // parse_str has no file access: the include is an error there.
    assert_eq!(
        parse_err(text),
        [
            "s.conf:2: connections.include: include \"bad.d/*.conf\": include needs file \
          access: load the file with swanctl_compat::load"
        ]
    );
    assert!(main.exists(), "tests/data/include/ok-main.conf");
    assert_eq!(
        load_err("include/ok-main.conf"),
        [
            "include/bad.d/c.conf:4: connections.c.ppk_id: the swanctl key \"ppk_id\" \
             is not supported yet",
            "include/bad.d/c.conf:6: connections.c.children.lan.mode: unknown mode \"tunel\" \
             (expected tunnel, transport, pass or drop)",
        ]
    );
}

#[test]
fn comments_quoting_and_redefinition() {
    let text = r#"
# comment { with } braces
connections { c { # after a brace
    local_addrs = 192.0.2.1#comment right after a value
    local { auth = psk
            id = "C=CH, O=strongSwan, CN=moon.strongswan.org" }
    remote { auth = psk }
    children { lan { local_ts = 10.1.0.0/24 , 10.3.0.0/24 } }
    local_addrs = 192.0.2.9
} }
secrets { ike { secret = "a # b } c \"quoted\" \\ \t"
                id = "C=CH, O=strongSwan, CN=moon.strongswan.org" } }
"#;
    let c = swanctl_compat::parse_str(text, "s.conf").unwrap_or_else(|e| panic!("{e}"));
    let conn = &c.connections()[0];
    // Redefined later: the later value, in the first one's place.
    assert_eq!(conn.local_addrs.len(), 1);
    assert_eq!(conn.local_addrs[0].to_string(), "192.0.2.9");
    assert_eq!(conn.children[0].local_ts.len(), 2);
    assert!(matches!(conn.local.id, Some(Identity::Dn(_))));
    let s = &c.ike_secrets()[0];
    assert_eq!(s.secret.as_slice(), b"a # b } c \"quoted\" \\ \t");
    assert_eq!(s.ids, [id("C=CH, O=strongSwan, CN=moon.strongswan.org")]);
    let yaml = swanctl_compat::to_yaml(&swanctl_compat::parse_tree_str(text, "s.conf").unwrap());
    let again = Config::from_yaml_str(&yaml, "y.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(settings(&again), settings(&c), "{yaml}");
}

#[test]
fn unsupported_swanctl_features_are_errors() {
    let text = "\
connections {
  c {
    local { auth = psk }
    local-2 { auth = xauth }
    remote-a { auth = psk }
    remote-b { auth = psk }
    remote-c { auth = psk }
    children { lan { } }
  }
}
secrets {
  xauth-carol { id = carol  secret = x }
  private-moon { file = moonKey.pem }
  mystery { secret = y }
  ike-1 { secret = z
          id-x = \"not=a DN\" }
  ike-2 { idx = a.example  id = b.example  secret = s }
}
pools { p { addrs = 10.3.0.0/24 } }
";
    assert_eq!(
        parse_err(text),
        [
            "s.conf:4: connections.c.local-2.auth: auth \"xauth\" is not supported yet (iked \
             supports psk, pubkey/rsa/ecdsa/ed25519 and eap-mschapv2, eap-md5, eap-tls, \
             eap-radius, eap-dynamic, eap)",
            "s.conf:7: connections.c.remote-c: a third remote authentication round (after \
             \"remote-a\", \"remote-b\") is not supported yet: iked does two rounds per side",
            "s.conf:12: secrets.xauth-carol: secrets of type \"xauth\" are not supported yet",
            "s.conf:13: secrets.private-moon.secret: missing: the key file's passphrase",
            "s.conf:14: secrets.mystery: unknown secret type: a secret's section name starts \
             with its type (eap, xauth, ntlm, ike, ppk, private, rsa, ecdsa, bliss, pkcs8, \
             pkcs12, token)",
            "s.conf:16: secrets.ike-1.id-x: invalid identity \"not=a DN\": unknown DN \
             attribute \"not\" (known: C, ST, L, O, OU, CN, SN, serialNumber, S, T, D, N, G, I, \
             dnQualifier, DC, UID, E, Email, emailAddress, UN, unstructuredName)",
            // A value runs to the end of the line: this is one id.
            "s.conf:17: secrets.ike-2.idx: invalid identity \"a.example id = b.example secret \
             = s\": unknown DN attribute \"a.example id\" (known: C, ST, L, O, OU, CN, SN, \
             serialNumber, S, T, D, N, G, I, dnQualifier, DC, UID, E, Email, emailAddress, UN, \
             unstructuredName)",
            "s.conf:17: secrets.ike-2.secret: missing: the entry has no secret",
        ]
    );
    // Both keys starting with "id" are owners, as in swanctl.
    let ok = swanctl_compat::parse_str(
        "secrets { ike-2 { idx = a.example\n id = b.example\n secret = s } }",
        "s.conf",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.ike_secrets()[0].ids, [id("a.example"), id("b.example")]);
}

#[test]
fn defaults_are_swanctls() {
    // No auth: swanctl's default pubkey, which needs a certificate or an
    // id to find one by; the round named local-psk is reported by its name.
    assert_eq!(
        parse_err("connections {\n c {\n  local-psk { }\n  remote { auth = psk }\n }\n}\n"),
        [
            "s.conf:3: connections.c.local-psk.certs: missing: without auth (swanctl's default \
             pubkey), our certificate: certs: [file], or an id to find it by (or auth: psk)"
        ]
    );
    let c = swanctl_compat::parse_str(
        "connections { c { local { auth = psk }\n remote { auth = psk }\n children { x { } } } }",
        "s.conf",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let y = Config::from_yaml_str(
        "connections:\n  c:\n    local: { auth: psk }\n    remote: { auth: psk }\n    children: { x: {} }\n",
        "y",
    )
    .unwrap();
    assert_eq!(settings(&c), settings(&y));
    assert_eq!(c.connections()[0].local_port, 500);
    // An empty assignment clears a value: the default applies.
    let cleared = swanctl_compat::parse_str(
        "t { local_port = 4500 }\nconnections { c : t { local_port =\n local { auth = psk }\n remote { auth = psk } } }",
        "s.conf",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cleared.connections()[0].local_port, 500);
}

#[test]
fn references_and_templates() {
    let text = "\
conn-defaults {
  remote_addrs = 192.0.2.1
  local { auth = psk }
  remote { auth = psk }
}
child-defaults { esp_proposals = aes256gcm16 }
connections {
  a : conn-defaults {
    children { lan : child-defaults { remote_ts = 10.2.0.0/16 } }
  }
  b : connections.a { remote_addrs = 192.0.2.2 }
}
unreferenced { x = 1 }
";
    assert_eq!(
        parse_err(text),
        [
            "s.conf:13: unreferenced: unknown key \"unreferenced\" (expected one of: authorities, connections, pools, radius, secrets, settings)"
        ]
    );
    let text = text.replace("unreferenced { x = 1 }\n", "");
    let c = swanctl_compat::parse_str(&text, "s.conf").unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (&c.connections()[0], &c.connections()[1]);
    assert_eq!(a.remote_addrs[0].to_string(), "192.0.2.1");
    assert_eq!(b.remote_addrs[0].to_string(), "192.0.2.2");
    assert_eq!(b.children, a.children);
    assert_eq!(a.children[0].esp_proposals.len(), 1);
    assert_eq!(
        parse_err("connections { a : nope { local { auth = psk }\nremote { auth = psk } } }"),
        ["s.conf:1: connections.a: referenced section \"nope\" does not exist"]
    );
}

#[test]
fn syntax_errors_are_reported_alone() {
    assert_eq!(
        parse_err("connections {\n  c {\n    rekey_time = 1h\n  \n"),
        ["s.conf:2: connections.c: missing '}': the section opened at line 2 is not closed"]
    );
    assert_eq!(
        swanctl_compat::load(data("no-such-file.conf"))
            .unwrap_err()
            .issues()[0]
            .message,
        "cannot read: No such file or directory (os error 2)"
    );
}

proptest! {
    #[test]
    fn random_text_never_panics(s in "\\PC{0,300}") {
        let _ = swanctl_compat::parse_str(&s, "r.conf");
    }

    #[test]
    fn random_swanctl_like_text_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("{"), Just("}"), Just("="), Just(":"), Just(","), Just("."), Just("\""),
                Just("\\"), Just("#"), Just("\n"), Just(" "), Just("include x"), Just("a"),
                Just("connections"), Just("secrets"), Just("ike"), Just("local"), Just("remote"),
                Just("children"), Just("auth = psk"), Just("id"), Just("secret"), Just("c : d"),
            ],
            0..60,
        )
    ) {
        let text: String = parts.concat();
        if let Err(e) = swanctl_compat::parse_str(&text, "r.conf") {
            for i in e.issues() {
                prop_assert_eq!(i.file.as_str(), "r.conf");
                prop_assert!(!i.path.is_empty());
            }
        }
    }
}

// The swanctl.conf halves of the configuration schema's tests in ike's
// config/tests.rs: the same keys read from swanctl.conf.

#[test]
fn encap_takes_strongswans_booleans_in_swanctl_conf() {
    let c = swanctl_compat::parse_str(
        "connections {\n c {\n  encap = yes\n  remote_port = 4501\n  local { auth = psk }\n  remote { auth = psk }\n }\n}\n",
        "s.conf",
    )
    .unwrap();
    assert!(c.connections()[0].encap);
    assert_eq!(c.connections()[0].remote_port, 4501);
}

#[test]
fn rand_bytes_and_packets_are_read_from_swanctl_conf() {
    let c = swanctl_compat::parse_str(
        "connections {\n c {\n  local { auth = psk }\n  remote { auth = psk }\n  \
         children {\n   c {\n    rekey_packets = 100\n    life_packets = 1000\n    \
         rand_packets = 10\n    rekey_bytes = 2k\n   }\n  }\n }\n}\n",
        "s.conf",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let d = c.connections()[0].children[0].lifetimes;
    assert_eq!(
        (d.rekey_packets, d.life_packets, d.rand_packets),
        (100, 1000, 10)
    );
    assert_eq!(
        (d.rekey_bytes, d.life_bytes, d.rand_bytes),
        (2048, 2252, 204)
    );
    // A range as large as the limit is charon's to take: at most the
    // limit is subtracted.
    let c = swanctl_compat::parse_str(
        "connections {\n c {\n  local { auth = psk }\n  remote { auth = psk }\n  \
         children {\n   c {\n    rekey_packets = 100\n    rand_packets = 100\n   }\n  }\n }\n}\n",
        "s.conf",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let d = c.connections()[0].children[0].lifetimes;
    assert_eq!(
        (d.rekey_packets, d.life_packets, d.rand_packets),
        (100, 110, 100)
    );
}

#[test]
fn liveness_and_action_keys_in_swanctl_conf() {
    use std::time::Duration;
    let c = swanctl_compat::parse_str(
        "connections {\n c {\n  remote_addrs = 192.0.2.2\n  dpd_delay = 10s\n  \
         dpd_timeout = 60\n  local { auth = psk }\n  remote { auth = psk }\n  children {\n   \
         lan {\n    start_action = trap\n    close_action = trap\n    dpd_action = restart\n   \
         }\n  }\n }\n}\n",
        "s.conf",
    )
    .unwrap();
    let (cn, ch) = (&c.connections()[0], &c.connections()[0].children[0]);
    assert_eq!(cn.dpd_delay, Duration::from_secs(10));
    assert_eq!(cn.dpd_timeout, Duration::from_secs(60));
    assert_eq!(
        (ch.start_action, ch.close_action, ch.dpd_action),
        (
            ike::config::StartAction::Trap,
            ike::config::CloseAction::Trap,
            ike::config::DpdAction::Restart
        )
    );
}

#[test]
fn selectors_read_service_and_protocol_names_from_the_hosts_files() {
    let dir = std::env::temp_dir().join(format!("iked-netdb-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(dir.join("services"), "ssh\t22/tcp\ndomain\t53/udp\n").unwrap();
    std::fs::write(dir.join("protocols"), "vrrp\t112\tVRRP\n").unwrap();
    let conf = "connections {\n c {\n  local { auth = psk }\n  remote { auth = psk }\n  children {\n   x {\n    local_ts = 10.1.0.0/24[tcp/ssh], 10.1.0.0/24[VRRP]\n    remote_ts = 10.2.0.0/24[udp/domain], 10.2.0.0/24[icmp/2048]\n   }\n  }\n }\n}\ninclude conf.d/*.conf\n";
    std::fs::write(dir.join("swanctl.conf"), conf).unwrap();
    std::fs::write(
        dir.join("conf.d/b.conf"),
        "connections {\n d {\n  local { auth = psk }\n  remote { auth = psk }\n  children {\n   y {\n    local_ts = 10.1.0.0/24[tcp/nosuch]\n   }\n  }\n }\n}\n",
    )
    .unwrap();
    let names = swanctl_compat::netdb::from_files(&dir.join("services"), &dir.join("protocols"));
    let e = swanctl_compat::load_with(dir.join("swanctl.conf"), &names).unwrap_err();
    let lines: Vec<String> = e.issues().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [format!(
            "{}:7: connections.d.children.y.local_ts: bad traffic selector \
             \"10.1.0.0/24[tcp/nosuch]\": bad port \"nosuch\" (a number 0-65535, a range a-b, \
             a service in {}, any or opaque)",
            dir.join("conf.d/b.conf").display(),
            dir.join("services").display()
        )]
    );
    std::fs::remove_file(dir.join("conf.d/b.conf")).unwrap();
    let c = swanctl_compat::load_with(dir.join("swanctl.conf"), &names)
        .unwrap_or_else(|e| panic!("{e}"));
    let x = &c.connections()[0].children[0];
    let got: Vec<(u8, u16, u16)> = x
        .local_ts
        .iter()
        .chain(&x.remote_ts)
        .map(|t| (t.protocol, t.ports.start, t.ports.end))
        .collect();
    assert_eq!(
        got,
        [
            (6, 22, 22),
            (112, 0, 65535),
            (17, 53, 53),
            (1, 0x0800, 0x0800)
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_eap_mschapv2_gateway_and_its_users() {
    // As strongSwan's ikev2/rw-eap-mschapv2-id-rsa scenario's moon: a
    // certificate for the gateway, EAP-MSCHAPv2 for the users, asked for
    // their EAP identity.
    let text = "\
connections {
  rw {
    local {
      auth = pubkey
      certs = moonCert.pem
      id = moon.strongswan.org
    }
    remote {
      auth = eap-mschapv2
      eap_id = %any
    }
    children {
      net {
        local_ts = 10.1.0.0/16
      }
    }
  }
}
secrets {
  eap-carol {
    id = carol
    secret = \"Ar3etTnp\"
  }
  eap-dave {
    id = dave
    secret = W7R0g3do
  }
}
";
    let c = swanctl_compat::parse_str(text, "s.conf").unwrap_or_else(|e| panic!("{e}"));
    let rw = &c.connections()[0];
    assert_eq!(
        rw.remote.auth,
        AuthMethod::Eap(ike::eap::MethodName::Mschapv2)
    );
    assert_eq!(rw.remote.eap_id, Some(Identity::Any));
    let eap: Vec<_> = c
        .eap_secrets()
        .iter()
        .map(|s| (s.ids.clone(), s.secret.to_vec()))
        .collect();
    assert_eq!(
        eap,
        [
            (vec![id("carol")], b"Ar3etTnp".to_vec()),
            (vec![id("dave")], b"W7R0g3do".to_vec()),
        ]
    );
    // They are not IKE PSKs.
    assert!(c.ike_secrets().is_empty());
}

#[test]
fn a_certificate_round_then_eap() {
    // As strongSwan's ikev2/mult-auth-rsa-eap-sim-id scenario: the
    // gateway asks for the user's certificate, then EAP (remote-eap, the
    // second remote section); carol's client does both (local-eap).
    let gw = "\
connections {
  rw {
    local {
      auth = pubkey
      certs = moonCert.pem
      id = moon.strongswan.org
    }
    remote {
      auth = pubkey
      id = *@strongswan.org
    }
    remote-eap {
      auth = eap-mschapv2
      eap_id = %any
    }
    children { net { local_ts = 10.1.0.0/16
    } }
  }
}
";
    let c = swanctl_compat::parse_str(gw, "s.conf").unwrap_or_else(|e| panic!("{e}"));
    let rw = &c.connections()[0];
    assert_eq!(rw.remote.auth, AuthMethod::Pubkey(Vec::new()));
    let r2 = rw.remote2.as_ref().unwrap();
    assert_eq!(r2.auth, AuthMethod::Eap(ike::eap::MethodName::Mschapv2));
    assert_eq!(r2.eap_id, Some(Identity::Any));
    assert!(rw.local2.is_none());
    let carol = "\
connections {
  home {
    remote_addrs = 192.168.0.1
    local {
      auth = pubkey
      certs = carolCert.pem
      id = carol@strongswan.org
    }
    local-eap {
      auth = eap-mschapv2
      id = carol
      aaa_id = aaa.strongswan.org
    }
    remote {
      auth = pubkey
      id = moon.strongswan.org
    }
    children { home { remote_ts = 10.1.0.0/16
    } }
  }
}
";
    let c = swanctl_compat::parse_str(carol, "s.conf").unwrap_or_else(|e| panic!("{e}"));
    let home = &c.connections()[0];
    let l2 = home.local2.as_ref().unwrap();
    assert_eq!(l2.auth, AuthMethod::Eap(ike::eap::MethodName::Mschapv2));
    assert_eq!(l2.id, Some(id("carol")));
    assert_eq!(l2.aaa_id, Some(id("aaa.strongswan.org")));
    // An error in the second round names its swanctl section.
    let bad = carol.replace("aaa_id = aaa.strongswan.org", "eap_id = \"not=a DN\"");
    let e = parse_err(&bad);
    assert!(
        e.iter().any(
            |m| m.starts_with("s.conf:12: connections.home.local-eap.eap_id: invalid identity")
        ),
        "{e:?}"
    );
}
