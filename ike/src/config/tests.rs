//! Whole-file tests: the documented example, defaults, located errors,
//! PSK lookup, and no panics on arbitrary input.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::crypto::proposal::{default_proposals, parse_list};

const FILE: &str = "/etc/iked/iked.yaml";

const EXAMPLE: &str = "\
connections:
  site-b:
    local_addrs: [192.0.2.1]
    remote_addrs: [198.51.100.1]
    proposals: [aes256gcm16-prfsha256-x25519]
    local:  { auth: psk, id: gw-a.example.net }
    remote: { auth: psk, id: gw-b.example.net }
    children:
      lan:
        local_ts: [10.1.0.0/24]
        remote_ts: [10.2.0.0/24]
        esp_proposals: [aes256gcm16]
        mode: tunnel            # tunnel | transport
        start_action: none      # none | start
secrets:
  ike:
    - ids: [gw-a.example.net, gw-b.example.net]   # empty or absent: any peer
      secret: \"a long random string\"
";

fn ok(text: &str) -> Config {
    Config::from_yaml_str(text, FILE).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> ConfigError {
    match Config::from_yaml_str(text, FILE) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn id(s: &str) -> Identity {
    Identity::parse(s).unwrap()
}

fn range(a: &str, b: &str) -> TsAddresses {
    TsAddresses::Range {
        start: ip(a),
        end: ip(b),
    }
}

/// A minimal valid connection, with `extra` lines added to it (indented
/// by 4) and `child` lines added to its child `c` (indented by 8).
fn conn(extra: &str, child: &str) -> String {
    let mut s =
        String::from("connections:\n  c:\n    local: { auth: psk }\n    remote: { auth: psk }\n");
    for l in extra.lines() {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("    children:\n      c:\n");
    for l in child.lines() {
        s.push_str("        ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

#[test]
fn example_parses_to_the_expected_values() {
    let config = ok(EXAMPLE);
    assert_eq!(config.connections().len(), 1);
    let c = &config.connections()[0];
    assert_eq!(c.name, "site-b");
    assert_eq!(c.line, 2);
    assert_eq!(c.version, 0);
    assert_eq!(c.local_addrs, vec![Address::Ip(ip("192.0.2.1"))]);
    assert_eq!(c.remote_addrs, vec![Address::Ip(ip("198.51.100.1"))]);
    assert_eq!((c.local_port, c.remote_port), (500, 500));
    assert_eq!(
        c.proposals,
        parse_list(ProtocolId::IKE, &["aes256gcm16-prfsha256-x25519"]).unwrap()
    );
    assert_eq!(c.local.auth, AuthMethod::Psk);
    assert_eq!(c.local.id, Some(Identity::Fqdn("gw-a.example.net".into())));
    assert_eq!(c.remote.id, Identity::Fqdn("gw-b.example.net".into()));
    assert_eq!(c.children.len(), 1);
    let lan = &c.children[0];
    assert_eq!(lan.name, "lan");
    assert_eq!(lan.local_ts.len(), 1);
    assert_eq!(lan.local_ts[0].addresses, range("10.1.0.0", "10.1.0.255"));
    assert_eq!(lan.local_ts[0].protocol, 0);
    assert_eq!(lan.local_ts[0].ports, PortRange::ANY);
    assert_eq!(lan.remote_ts[0].addresses, range("10.2.0.0", "10.2.0.255"));
    assert_eq!(
        lan.esp_proposals,
        parse_list(ProtocolId::ESP, &["aes256gcm16"]).unwrap()
    );
    assert!(lan.ah_proposals.is_empty());
    assert_eq!(lan.protocol(), ProtocolId::ESP);
    assert_eq!(lan.mode, Mode::Tunnel);
    assert_eq!(lan.start_action, StartAction::None);
    assert_eq!(config.ike_secrets().len(), 1);
    let s = &config.ike_secrets()[0];
    assert_eq!(s.ids, vec![id("gw-a.example.net"), id("gw-b.example.net")]);
    assert_eq!(s.secret.as_slice(), b"a long random string");
    assert_eq!(s.line, 17);
    assert_eq!(
        config.find_psk(&id("gw-a.example.net"), &id("gw-b.example.net")),
        Some(&b"a long random string"[..])
    );
}

#[test]
fn defaults_are_swanctls() {
    let config = ok(
        "connections:\n  c:\n    local: { auth: psk }\n    remote: { auth: psk }\n    children:\n      c: {}\n",
    );
    let c = &config.connections()[0];
    assert_eq!(c.version, 0);
    assert_eq!(c.local_addrs, vec![Address::Any(None)]);
    assert_eq!(c.remote_addrs, vec![Address::Any(None)]);
    assert_eq!((c.local_port, c.remote_port), (500, 500));
    assert_eq!(c.proposals, default_proposals(ProtocolId::IKE));
    assert!(!c.proposals.is_empty());
    assert_eq!(c.local.id, None);
    assert_eq!(
        c.local_id(ip("192.0.2.7")),
        Identity::Ipv4("192.0.2.7".parse().unwrap())
    );
    assert_eq!(c.remote.id, Identity::Any);
    let ch = &c.children[0];
    assert_eq!(ch.local_ts, vec![TrafficSelector::DYNAMIC]);
    assert_eq!(ch.remote_ts, vec![TrafficSelector::DYNAMIC]);
    assert_eq!(ch.esp_proposals, default_proposals(ProtocolId::ESP));
    assert!(ch.ah_proposals.is_empty());
    assert_eq!(ch.mode, Mode::Tunnel);
    assert_eq!(ch.start_action, StartAction::None);
    assert!(config.ike_secrets().is_empty());
}

#[test]
fn empty_file_is_an_empty_config() {
    let c = ok("");
    assert!(c.connections().is_empty());
    let c = ok("# nothing\nconnections:\nsecrets:\n");
    assert!(c.connections().is_empty());
}

#[test]
fn every_value_is_read() {
    let text = "\
connections:
  a:
    version: 2
    local_addrs: 192.0.2.1, 2001:db8::1
    remote_addrs: [vpn.example.net, 198.51.100.0/24, 198.51.100.7-198.51.100.9, '%any6']
    local_port: 4500
    remote_port: 0x1194
    encap: yes
    proposals: [aes128-sha256-modp2048, default]
    local: { auth: psk, id: 'C=CH, O=Example, CN=gw' }
    remote: { auth: psk, id: '@#0102' }
    children:
      x:
        local_ts: 10.0.0.0/8[tcp/80], 10.9.0.1-10.9.0.5
        remote_ts: ['2001:db8::/32[udp/1000-2000]', 'dynamic[icmp]']
        ah_proposals: [sha256]
        mode: transport
        start_action: start
      y: { start_action: none }
  b:
    local: { auth: psk, id: '%any' }
    remote: { auth: psk }
";
    let config = ok(text);
    let names: Vec<&str> = config
        .connections()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let a = config.connection("a").unwrap();
    assert_eq!(a.version, 2);
    assert_eq!(
        a.local_addrs,
        vec![Address::Ip(ip("192.0.2.1")), Address::Ip(ip("2001:db8::1"))]
    );
    assert_eq!(
        a.remote_addrs,
        vec![
            Address::Name("vpn.example.net".into()),
            Address::Range {
                start: ip("198.51.100.0"),
                end: ip("198.51.100.255")
            },
            Address::Range {
                start: ip("198.51.100.7"),
                end: ip("198.51.100.9")
            },
            Address::Any(Some(Family::V6)),
        ]
    );
    assert_eq!((a.local_port, a.remote_port), (4500, 4500));
    assert!(a.encap);
    assert!(!config.connection("b").unwrap().encap);
    let mut want = parse_list(ProtocolId::IKE, &["aes128-sha256-modp2048", "default"]).unwrap();
    assert_eq!(a.proposals, want);
    want.truncate(1);
    assert_eq!(a.proposals[0].number, 1);
    assert_eq!(
        a.local.id.as_ref().unwrap().to_string(),
        "C=CH, O=Example, CN=gw"
    );
    assert_eq!(a.remote.id, Identity::KeyId(vec![1, 2]));
    let x = a.child("x").unwrap();
    assert_eq!(x.local_ts.len(), 2);
    assert_eq!(
        (x.local_ts[0].protocol, x.local_ts[0].ports),
        (6, PortRange { start: 80, end: 80 })
    );
    assert_eq!(x.local_ts[1].addresses, range("10.9.0.1", "10.9.0.5"));
    assert_eq!(
        x.remote_ts[0].ports,
        PortRange {
            start: 1000,
            end: 2000
        }
    );
    assert_eq!(x.remote_ts[1].addresses, TsAddresses::Dynamic);
    assert_eq!(x.remote_ts[1].protocol, 1);
    assert_eq!(x.protocol(), ProtocolId::AH);
    assert_eq!(
        x.proposals(),
        parse_list(ProtocolId::AH, &["sha256"]).unwrap().as_slice()
    );
    assert_eq!(x.mode, Mode::Transport);
    assert_eq!(x.start_action, StartAction::Start);
    let names: Vec<&str> = a.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["x", "y"]);
    // local id %any means "my address".
    assert_eq!(config.connection("b").unwrap().local.id, None);
}

/// Asserts `text` fails with exactly these `line: path: message-part`
/// issues (message compared by containment), in order.
fn assert_issues(text: &str, want: &[(u64, &str, &str)]) {
    let e = err(text);
    let shown = e.to_string();
    assert_eq!(e.issues.len(), want.len(), "{shown}");
    for (issue, (line, path, msg)) in e.issues.iter().zip(want) {
        let prefix = format!("{FILE}:{line}: {path}: ");
        let text = issue.to_string();
        assert!(
            text.starts_with(&prefix),
            "want prefix {prefix:?}\n got {text}\nall:\n{shown}"
        );
        assert!(text.contains(msg), "want {msg:?} in {text}");
        assert!(shown.contains(&text));
    }
}

#[test]
fn the_briefs_example_error() {
    let text = EXAMPLE.replace("mode: tunnel", "mode: tunel");
    let e = err(&text);
    assert_eq!(
        e.to_string(),
        "/etc/iked/iked.yaml:13: connections.site-b.children.lan.mode: unknown mode \"tunel\" \
         (expected tunnel, transport, pass or drop)"
    );
}

#[test]
fn connection_key_errors_are_located() {
    let text = conn(
        "version: 1\nlocal_addrs: [192.0.2.300]\nremote_addrs: [bad host]\nlocal_port: 0\nremote_port: 70000\nproposals: [aes128-sha257-modp2048]\nfoo: 1\ndpd_delay: soon",
        "",
    );
    assert_issues(
        &text,
        &[
            (
                5,
                "connections.c.version",
                "IKEv1 is not supported: iked speaks IKEv2 only",
            ),
            (6, "connections.c.local_addrs[0]", "\"192.0.2.300\""),
            (
                7,
                "connections.c.remote_addrs[0]",
                "\"bad host\" is neither",
            ),
            (8, "connections.c.local_port", "bad port \"0\""),
            (9, "connections.c.remote_port", "bad port \"70000\""),
            (
                10,
                "connections.c.proposals[0]",
                "unknown algorithm 'sha257' in IKE proposal 'aes128-sha257-modp2048'",
            ),
            (
                11,
                "connections.c.foo",
                "unknown key \"foo\" (expected one of: childless, children, dpd_delay, dpd_timeout, encap, fragmentation, if_id_in, if_id_out, keyingtries, local,",
            ),
            (12, "connections.c.dpd_delay", "bad time \"soon\""),
        ],
    );
}

#[test]
fn version_values() {
    assert_eq!(ok(&conn("version: 2", "")).connections()[0].version, 2);
    assert_eq!(ok(&conn("version: 0", "")).connections()[0].version, 0);
    assert_issues(
        &conn("version: 3", ""),
        &[(5, "connections.c.version", "unknown IKE version \"3\"")],
    );
}

#[test]
fn unsupported_algorithms_are_named() {
    assert_issues(
        &conn(
            "proposals: [camellia128-sha256-modp2048, aes128-sha256-curve448]",
            "",
        ),
        &[
            (
                5,
                "connections.c.proposals[0]",
                "uses algorithms iked does not implement: ",
            ),
            (
                5,
                "connections.c.proposals[1]",
                "uses algorithms iked does not implement: ",
            ),
        ],
    );
    let e = err(&conn("proposals: [aes192-sha256-ecp256bp]", ""));
    assert!(e.to_string().contains("ECP_256_BP"), "{e}");
    assert_issues(
        &conn(
            "",
            "esp_proposals: [aes128-sha256, aes256gcm16-sha999]\nah_proposals: [aes128gmac]",
        ),
        &[
            (
                7,
                "connections.c.children.c.esp_proposals[1]",
                "unknown algorithm 'sha999'",
            ),
            (
                8,
                "connections.c.children.c.ah_proposals[0]",
                "iked does not implement",
            ),
        ],
    );
    assert_issues(
        &conn("proposals: []", ""),
        &[(5, "connections.c.proposals", "empty list")],
    );
}

#[test]
fn second_authentication_rounds() {
    let text = "\
connections:
  gw:
    local: { auth: psk }
    remote: { auth: pubkey }
    remote2: { auth: eap-mschapv2, eap_id: '%any', aaa_id: radius.example }
  rw:
    local: { auth: psk }
    local2: { auth: eap-mschapv2, eap_id: carol }
    remote: { auth: psk }
";
    let c = Config::from_yaml_str(text, "t.yaml").unwrap();
    let gw = &c.connections()[0];
    assert!(gw.local2.is_none());
    let r2 = gw.remote2.as_ref().unwrap();
    assert_eq!(r2.auth, AuthMethod::Eap(crate::eap::MethodName::Mschapv2));
    assert_eq!(r2.eap_id, Some(Identity::Any));
    assert_eq!(r2.aaa_id, Some(Identity::parse("radius.example").unwrap()));
    let rw = &c.connections()[1];
    assert!(rw.remote2.is_none());
    assert_eq!(
        rw.local2.as_ref().unwrap().eap_id,
        Some(Identity::parse("carol").unwrap())
    );
    let text = "\
connections:
  a:
    local: { auth: psk }
    remote: { auth: eap-mschapv2 }
    remote2: { auth: pubkey }
  b:
    local: { auth: psk }
    remote: { auth: psk, aaa_id: x }
    local3: { auth: psk }
  c:
    local: { auth: psk }
    remote: { auth: psk }
    remote2: { auth: pks }
";
    assert_issues(
        text,
        &[
            (
                5,
                "connections.a.remote2",
                "a second round after remote.auth = eap-mschapv2 is not supported yet",
            ),
            (8, "connections.b.remote.aaa_id", "aaa_id needs auth eap-*"),
            (
                9,
                "connections.b.local3",
                "unknown key \"local3\" (iked does two authentication rounds per side",
            ),
            (
                13,
                "connections.c.remote2.auth",
                "unknown auth method \"pks\"",
            ),
        ],
    );
}

#[test]
fn auth_round_errors() {
    let text = "\
connections:
  a:
    local: { auth: pubkey, id: 'C=CH, XX=1' }
    remote: { auth: eap-sim, certs: [a.pem] }
  b:
    local: { id: '%any' }
    remote: { auth: pks }
  c:
    remote: { auth: psk }
  d:
    local: { auth: psk, certs: [x.pem], cacerts: [ca.pem] }
    remote: { auth: psk, pubkeys: [k.pem], revocation: maybe, ca_id: x }
";
    assert_issues(
        text,
        &[
            (3, "connections.a.local.id", "unknown DN attribute \"XX\""),
            (
                3,
                "connections.a.local.certs",
                "missing: auth pubkey needs our certificate: certs: [file]",
            ),
            (
                4,
                "connections.a.remote.auth",
                "auth \"eap-sim\" is not supported yet",
            ),
            (
                6,
                "connections.b.local.certs",
                "missing: without auth (swanctl's default pubkey), our certificate",
            ),
            (
                7,
                "connections.b.remote.auth",
                "unknown auth method \"pks\" (expected psk, or pubkey, rsa",
            ),
            (
                8,
                "connections.c.local",
                "missing: iked needs the local authentication round",
            ),
            (
                11,
                "connections.d.local.cacerts",
                "\"cacerts\" belongs in remote",
            ),
            (
                11,
                "connections.d.local.certs",
                "certs needs auth pubkey (or rsa, ecdsa, ...), not psk",
            ),
            (
                12,
                "connections.d.remote.revocation",
                "unknown revocation \"maybe\" (expected strict, ifuri, relaxed)",
            ),
            (
                12,
                "connections.d.remote.ca_id",
                "the swanctl key \"ca_id\" is not supported yet",
            ),
            (
                12,
                "connections.d.remote.pubkeys",
                "pubkeys needs auth pubkey (or rsa, ecdsa, ...), not psk",
            ),
        ],
    );
}

fn auth(s: &str) -> AuthMethod {
    let c = ok(&format!(
        "connections:\n  c:\n    local: {{ auth: psk }}\n    remote: {{ auth: '{s}' }}\n"
    ));
    c.connections()[0].remote.auth.clone()
}

fn sc(key: SigKey, hash: Option<SigHash>, min_bits: Option<u32>) -> SigConstraint {
    SigConstraint {
        key,
        hash,
        min_bits,
    }
}

#[test]
fn auth_values_as_swanctl_writes_them() {
    use SigHash::*;
    use SigKey::*;
    assert_eq!(auth("psk"), AuthMethod::Psk);
    assert_eq!(auth("pubkey"), AuthMethod::Pubkey(vec![]));
    assert_eq!(
        auth("pubkey-sha256"),
        AuthMethod::Pubkey(vec![sc(Any, Some(Sha256), None)])
    );
    assert_eq!(auth("rsa"), AuthMethod::Pubkey(vec![sc(Rsa, None, None)]));
    assert_eq!(
        auth("rsa-sha384"),
        AuthMethod::Pubkey(vec![sc(Rsa, Some(Sha384), None)])
    );
    assert_eq!(
        auth("rsa/pss-sha256"),
        AuthMethod::Pubkey(vec![sc(RsaPss, Some(Sha256), None)])
    );
    assert_eq!(
        auth("ecdsa-sha256-sha384"),
        AuthMethod::Pubkey(vec![
            sc(Ecdsa, Some(Sha256), None),
            sc(Ecdsa, Some(Sha384), None)
        ])
    );
    assert_eq!(
        auth("rsa-2048-sha256-ecdsa"),
        AuthMethod::Pubkey(vec![
            sc(Rsa, Some(Sha256), Some(2048)),
            sc(Ecdsa, None, None)
        ])
    );
    assert_eq!(
        auth("ed25519"),
        AuthMethod::Pubkey(vec![sc(Ed25519, None, None)])
    );
    assert_eq!(
        auth("ike:rsa/pss-sha512"),
        AuthMethod::Pubkey(vec![sc(RsaPss, Some(Sha512), None)])
    );
    for (bad, want) in [
        ("rsa-md5", "the hash md5 is not supported"),
        ("rsa-sha3", "unknown token \"sha3\""),
        ("sha256", "unknown auth method \"sha256\""),
        ("ed448", "auth \"ed448\" is not supported yet"),
        ("eap-sim", "auth \"eap-sim\" is not supported yet"),
        ("xauth", "auth \"xauth\" is not supported yet"),
    ] {
        let e = err(&format!(
            "connections:\n  c:\n    local: {{ auth: psk }}\n    remote: {{ auth: '{bad}' }}\n"
        ));
        assert_eq!(e.issues.len(), 1, "{bad}: {e}");
        assert!(e.issues[0].message.contains(want), "{bad}: {e}");
        assert_eq!(e.issues[0].path, "connections.c.remote.auth");
    }
}

const CERTS: &str = "\
connections:
  gw:
    send_cert: always
    send_certreq: no
    local:
      auth: ecdsa-sha384
      certs: [x509/gw.pem, /etc/other/chain.pem]
    remote:
      id: 'C=CH, O=Example, CN=*'
      cacerts: x509ca/ca.pem
      pubkeys: [pubkey/peer.pem]
      certs: [x509/peer.pem]
      revocation: strict
  rw:
    local: { auth: pubkey, certs: x509/gw.pem, id: gw.example.net }
    remote: { auth: rsa/pss }
authorities:
  ca:
    cacert: x509ca/ca.pem
    crl_uris: [http://crl.example.net/ca.crl, file:///var/crl/ca.crl]
  other:
    file: /etc/ssl/other-ca.pem
secrets:
  private:
    - { file: private/gw.pem, secret: 0x7061737321 }
  rsa:
    - { file: rsa/old.pem, secret: pass }
  ecdsa:
    - { file: ecdsa/e.pem, secret: pass }
  pkcs8:
    - { file: pkcs8/p.pem, secret: pass }
";

#[test]
fn certificate_keys_are_read() {
    let c = ok(CERTS);
    let gw = &c.connections()[0];
    assert_eq!(gw.send_cert, SendCert::Always);
    assert!(!gw.send_certreq);
    assert_eq!(
        gw.local.auth,
        AuthMethod::Pubkey(vec![sc(SigKey::Ecdsa, Some(SigHash::Sha384), None)])
    );
    assert_eq!(gw.local.id, None, "the certificate's subject later");
    let paths = |v: &[CredFile]| v.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
    assert_eq!(
        paths(&gw.local.certs),
        ["x509/gw.pem", "/etc/other/chain.pem"]
    );
    assert_eq!(
        gw.local.certs[1].at,
        Place {
            file: FILE.into(),
            line: 7,
            path: "connections.gw.local.certs[1]".into()
        }
    );
    assert_eq!(gw.remote.id, id("C=CH, O=Example, CN=*"));
    assert_eq!(paths(&gw.remote.cacerts), ["x509ca/ca.pem"]);
    // A comma-separated string has no item paths.
    assert_eq!(
        gw.remote.cacerts[0].at.path,
        "connections.gw.remote.cacerts"
    );
    assert_eq!(paths(&gw.remote.pubkeys), ["pubkey/peer.pem"]);
    assert_eq!(paths(&gw.remote.certs), ["x509/peer.pem"]);
    assert_eq!(gw.remote.revocation, Revocation::Strict);
    let rw = &c.connections()[1];
    assert_eq!(rw.send_cert, SendCert::IfAsked, "swanctl's default");
    assert!(rw.send_certreq, "swanctl's default");
    assert_eq!(rw.local.id, Some(id("gw.example.net")));
    assert_eq!(rw.remote.revocation, Revocation::Relaxed);
    assert_eq!(
        rw.remote.auth,
        AuthMethod::Pubkey(vec![sc(SigKey::RsaPss, None, None)])
    );
    let a = c.authorities();
    assert_eq!(a.len(), 2);
    assert_eq!(
        (a[0].name.as_str(), a[0].cacert.path.as_str()),
        ("ca", "x509ca/ca.pem")
    );
    assert_eq!(
        a[0].crl_uris,
        ["http://crl.example.net/ca.crl", "file:///var/crl/ca.crl"]
    );
    assert_eq!(a[1].cacert.path, "/etc/ssl/other-ca.pem");
    assert_eq!(a[1].cacert.at.path, "authorities.other.file");
    let k = c.key_secrets();
    assert_eq!(
        k.iter()
            .map(|k| (k.kind, k.file.path.as_str()))
            .collect::<Vec<_>>(),
        [
            (KeyKind::Private, "private/gw.pem"),
            (KeyKind::Rsa, "rsa/old.pem"),
            (KeyKind::Ecdsa, "ecdsa/e.pem"),
            (KeyKind::Pkcs8, "pkcs8/p.pem"),
        ]
    );
    assert_eq!(*k[0].secret, b"pass!".to_vec());
    assert!(
        !format!("{:?}", k[0]).contains("pass"),
        "no passphrase in Debug"
    );
    assert_eq!(c.cred_files().count(), 12);
    // Our raw public key instead of a certificate.
    let c = ok(
        "connections:\n  c:\n    local: { auth: ed25519, pubkeys: pubkey/me.pub }\n    remote: { pubkeys: pubkey/peer.pub }\n",
    );
    let conn = &c.connections()[0];
    assert_eq!(paths(&conn.local.pubkeys), ["pubkey/me.pub"]);
    assert!(conn.local.certs.is_empty());
    assert_eq!(paths(&conn.remote.pubkeys), ["pubkey/peer.pub"]);
    // Without auth, swanctl's pubkey.
    let c = ok("connections:\n  c:\n    local: { certs: [a.pem] }\n    remote: {}\n");
    assert_eq!(c.connections()[0].local.auth, AuthMethod::Pubkey(vec![]));
    assert_eq!(c.connections()[0].remote.auth, AuthMethod::Pubkey(vec![]));
}

#[test]
fn certificate_key_errors_all_at_once() {
    let text = "\
connections:
  c:
    send_cert: sometimes
    send_certreq: maybe
    local: { auth: pubkey, certs: [] }
    remote: { auth: pubkey, cacerts: [''] }
authorities:
  a:
    crl_uris: [ldap://x]   # any scheme is read
    ocsp_uris: [http://ocsp]
  b:
    cacert: a.pem
    file: /b.pem
secrets:
  private:
    - { file: k.pem }
    - { secret: x, extra: 1 }
  rsa: { file: k.pem }
";
    assert_issues(
        text,
        &[
            (
                3,
                "connections.c.send_cert",
                "unknown send_cert \"sometimes\" (expected always, ifasked, never)",
            ),
            (
                4,
                "connections.c.send_certreq",
                "bad value \"maybe\" (expected yes or no)",
            ),
            (
                5,
                "connections.c.local.certs",
                "empty: name at least one file",
            ),
            (
                5,
                "connections.c.local.certs",
                "missing: auth pubkey needs our certificate",
            ),
            (6, "connections.c.remote.cacerts[0]", "empty"),
            (
                8,
                "authorities.a.cacert",
                "missing: the authority's CA certificate",
            ),
            (
                10,
                "authorities.a.ocsp_uris",
                "the swanctl key \"ocsp_uris\" is not supported yet",
            ),
            (13, "authorities.b", "both cacert and file"),
            (
                16,
                "secrets.private[0].secret",
                "missing: the key file's passphrase",
            ),
            (17, "secrets.private[1].file", "missing: the key file"),
            (17, "secrets.private[1].extra", "unknown key \"extra\""),
            (18, "secrets.rsa", "expected a list of { file, secret }"),
        ],
    );
}

#[test]
fn psk_warnings_name_connections_whose_peer_id_no_secret_names() {
    let text = "\
connections:
  named:
    local: { auth: psk, id: gw-a }
    remote: { auth: psk, id: peer-1 }
  only-ours:
    local: { auth: psk, id: gw-a }
    remote: { auth: psk, id: peer-2 }
  by-address:
    local_addrs: [192.0.2.1]
    local: { auth: psk }
    remote: { auth: psk, id: peer-3 }
  any-peer:
    local: { auth: psk, id: gw-a }
    remote: { auth: psk }
  certs:
    local: { auth: psk, id: gw-a }
    remote: { auth: pubkey, id: peer-4 }
secrets:
  ike:
    - { ids: [gw-a, peer-1], secret: one }
    - { ids: [gw-a], secret: ours }
    - { ids: [192.0.2.1], secret: addr }
";
    let w = ok(text).psk_warnings();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].starts_with(
            "connection only-ours: remote.id peer-2 is authenticated with the secret at line 20 \
             (for gw-a, peer-1), which does not name it: anyone holding that secret can claim peer-2"
        ),
        "{}",
        w[0]
    );
    assert!(
        w[1].starts_with("connection by-address: remote.id peer-3"),
        "{}",
        w[1]
    );
    assert!(w[1].contains("(for 192.0.2.1)"), "{}", w[1]);
    // A %any secret is reported as such; no secret at all: nothing to warn about.
    let w = ok("connections:\n  c:\n    local: { auth: psk }\n    remote: { auth: psk, id: p }\nsecrets:\n  ike:\n    - { secret: x }\n").psk_warnings();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("(for any identity)"), "{}", w[0]);
    assert!(
        ok("connections:\n  c:\n    local: { auth: psk }\n    remote: { auth: psk, id: p }\n")
            .psk_warnings()
            .is_empty()
    );
}

#[test]
fn child_errors_all_at_once() {
    let text = conn(
        "remote_addrs: [198.51.100.0/24]",
        "local_ts: [10.1.0.0/33, 'dynamic[tcp/http]']\nremote_ts: []\nmode: beet\nstart_action: trap|start\nlabel: x\nbogus: 1",
    );
    assert_issues(
        &text,
        &[
            (
                8,
                "connections.c.children.c.local_ts[0]",
                "bad traffic selector \"10.1.0.0/33\": bad prefix length",
            ),
            (
                8,
                "connections.c.children.c.local_ts[1]",
                "bad port \"http\"",
            ),
            (
                9,
                "connections.c.children.c.remote_ts",
                "no traffic selectors",
            ),
            (
                10,
                "connections.c.children.c.mode",
                "mode \"beet\" is not supported yet",
            ),
            (
                11,
                "connections.c.children.c.start_action",
                "start_action \"trap|start\" is not supported yet",
            ),
            (12, "connections.c.children.c.label", "not planned yet"),
            (
                13,
                "connections.c.children.c.bogus",
                "unknown key \"bogus\"",
            ),
        ],
    );
    assert_issues(
        &conn("", "start_action: go"),
        &[(
            7,
            "connections.c.children.c.start_action",
            "unknown start_action \"go\" (expected none, start or trap)",
        )],
    );
}

#[test]
fn start_needs_an_address_to_initiate_to() {
    assert_issues(
        &conn("", "start_action: start"),
        &[(
            7,
            "connections.c.children.c.start_action",
            "start_action start, but remote_addrs (%any) has no address",
        )],
    );
    assert_issues(
        &conn("remote_addrs: [10.0.0.0/8]", "start_action: start"),
        &[(
            8,
            "connections.c.children.c.start_action",
            "remote_addrs (10.0.0.0/8)",
        )],
    );
    ok(&conn(
        "remote_addrs: [10.0.0.0/8, gw.example]",
        "start_action: start",
    ));
    ok(&conn(
        "remote_addrs: ['%any', 192.0.2.1]",
        "start_action: start",
    ));
    // YAML reserves a leading %: unquoted %any is a syntax error, located.
    let e = err(&conn("remote_addrs: [%any]", ""));
    assert!(
        e.to_string()
            .starts_with(&format!("{FILE}:5: (YAML syntax): ")),
        "{e}"
    );
}

#[test]
fn duplicate_names_and_keys() {
    let text = "\
connections:
  a:
    local: { auth: psk }
    remote: { auth: psk }
    children:
      x: {}
      x: {}
  a:
    local: { auth: psk }
    local: { auth: psk }
";
    assert_issues(
        text,
        &[
            (
                7,
                "connections.a.children.x",
                "duplicate child name \"x\" (first at line 6)",
            ),
            (
                8,
                "connections.a",
                "duplicate connection name \"a\" (first at line 2)",
            ),
        ],
    );
    assert_issues(
        "connections:\n  a:\n    local: { auth: psk }\n    remote: { auth: psk }\n    remote: { auth: psk }\n",
        &[(
            5,
            "connections.a.remote",
            "duplicate key \"remote\" (first at line 4)",
        )],
    );
}

#[test]
fn shape_errors() {
    assert_issues(
        "- a\n- b\n",
        &[(1, "(top level)", "expected a mapping, found a list")],
    );
    assert_issues(
        "connections: [a]\n",
        &[(1, "connections", "expected a mapping, found a list")],
    );
    assert_issues(
        "connections:\n  c:\n    local: psk\n    remote: { auth: [psk] }\n",
        &[
            (
                3,
                "connections.c.local",
                "expected a mapping, found a string",
            ),
            (
                4,
                "connections.c.remote.auth",
                "expected a string, found a list",
            ),
        ],
    );
    assert_issues(
        "pools: {}\nextra: 1\n",
        &[(
            2,
            "extra",
            "unknown key \"extra\" (expected one of: authorities, connections, pools, radius, secrets, settings)",
        )],
    );
}

#[test]
fn yaml_syntax_error_is_located() {
    let e = err("connections:\n  a: [1, 2\n");
    assert_eq!(e.issues.len(), 1);
    assert!(e.issues[0].line >= 2, "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{FILE}:{}: (YAML syntax): ", e.issues[0].line))
    );
    let e = err("connections:\n\ta: 1\n");
    assert!(e.to_string().starts_with(&format!("{FILE}:2: ")), "{e}");
}

#[test]
fn secrets() {
    let text = "\
secrets:
  ike:
    - secret: 0x0102
    - ids: ['C=CH, CN=a', a@b]
      secret: 0sAQID
    - ids: gw.example
      secret: '0x0a'
    - ids: ['%any']
      secret: yes
";
    let c = ok(text);
    let s = c.ike_secrets();
    assert_eq!(s.len(), 4);
    assert_eq!(s[0].secret.as_slice(), [1, 2]);
    assert!(s[0].ids.is_empty());
    assert_eq!(s[1].secret.as_slice(), [1, 2, 3]);
    assert_eq!(s[1].ids, vec![id("C=CH, CN=a"), id("a@b")]);
    assert_eq!(s[2].ids, vec![id("gw.example")]);
    assert_eq!(s[2].secret.as_slice(), [0x0a]);
    assert_eq!(s[3].ids, vec![Identity::Any]);
    assert_eq!(s[3].secret.as_slice(), b"yes");
    assert_eq!(s.iter().map(|s| s.line).collect::<Vec<_>>(), [3, 4, 6, 8]);
    assert!(
        !format!("{:?}", s[3]).contains("yes"),
        "Debug leaks the secret"
    );

    assert_issues(
        "\
secrets:
  ike:
    - ids: [a]
    - secret: 0x123
    - secret: 0s!!
      id: x
    - secret: ''
      ids: ['@#zz']
  xauth: []
",
        &[
            (
                3,
                "secrets.ike[0].secret",
                "missing: the entry has no secret",
            ),
            (4, "secrets.ike[1].secret", "bad hex secret"),
            (5, "secrets.ike[2].secret", "bad base64 secret"),
            (6, "secrets.ike[2].id", "iked lists identities as ids"),
            (7, "secrets.ike[3].secret", "empty secret"),
            (8, "secrets.ike[3].ids[0]", "invalid identity \"@#zz\""),
            (
                9,
                "secrets.xauth",
                "secrets of type \"xauth\" is not supported yet",
            ),
        ],
    );
    assert_issues(
        "secrets:\n  ike: {secret: x}\n",
        &[(2, "secrets.ike", "expected a list")],
    );
}

#[test]
fn find_psk_prefers_the_most_specific_secret() {
    let text = "\
secrets:
  ike:
    - secret: any-peer
    - ids: [gw-b.example]
      secret: remote-only
    - ids: [gw-a.example]
      secret: local-only
    - ids: [gw-a.example, gw-b.example]
      secret: both
    - ids: [gw-a.example, gw-b.example]
      secret: both-later
";
    let c = ok(text);
    let a = id("gw-a.example");
    let b = id("gw-b.example");
    let x = id("gw-x.example");
    let psk = |l: &Identity, r: &Identity| {
        c.find_psk(l, r)
            .map(|s| String::from_utf8_lossy(s).into_owned())
    };
    // Both ids listed wins; on a tie the first in the file.
    assert_eq!(psk(&a, &b).as_deref(), Some("both"));
    assert_eq!(psk(&b, &a).as_deref(), Some("both"));
    // One listed beats none; the match may be on either side; equal
    // scores go to the first in the file ("both" scores 20 here too).
    assert_eq!(psk(&x, &b).as_deref(), Some("remote-only"));
    assert_eq!(psk(&a, &x).as_deref(), Some("local-only"));
    // Case-insensitive FQDNs.
    assert_eq!(psk(&id("GW-A.example"), &x).as_deref(), Some("local-only"));
    // Nobody listed: the any-peer secret.
    assert_eq!(psk(&x, &id("10.0.0.1")).as_deref(), Some("any-peer"));

    // Without an any-peer secret, unknown peers get nothing.
    let c = ok("secrets:\n  ike:\n    - { ids: [a.example], secret: s }\n");
    assert_eq!(c.find_psk(&id("x.example"), &id("y.example")), None);
    assert_eq!(
        c.find_psk(&id("x.example"), &id("a.example")),
        Some(&b"s"[..])
    );
    assert_eq!(ok("").find_psk(&a, &b), None);

    // An explicit %any owner is as weak as no ids, but a listed id with
    // %any beside it still counts.
    let c = ok(
        "secrets:\n  ike:\n    - { ids: ['%any'], secret: any }\n    - { ids: ['%any', b.example], secret: b }\n",
    );
    assert_eq!(
        c.find_psk(&id("x.example"), &id("b.example")),
        Some(&b"b"[..])
    );
    assert_eq!(
        c.find_psk(&id("x.example"), &id("y.example")),
        Some(&b"any"[..])
    );
}

#[test]
fn anchors_and_comma_strings() {
    let text = "\
defaults: &d { auth: psk }
connections:
  c:
    local: *d
    remote: *d
";
    // Unknown top-level key reported, aliases resolved.
    assert_issues(text, &[(1, "defaults", "unknown key \"defaults\"")]);
    let c = ok(
        "connections:\n  c:\n    local: &d { auth: psk }\n    remote: *d\n    proposals: 'aes128-sha256-modp2048, aes256gcm16-prfsha384-ecp384'\n",
    );
    assert_eq!(c.connections()[0].proposals.len(), 2);
}

fn mutate(base: &str, edits: &[(usize, u8)]) -> String {
    let mut bytes = base.as_bytes().to_vec();
    for &(pos, b) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = pos % bytes.len();
        match b % 4 {
            0 => {
                let pool = b" :-[]{}#&*!|>'\"\n\t,%@=/0aZ";
                bytes[i] = pool[usize::from(b / 4) % pool.len()];
            }
            1 => {
                bytes.remove(i);
            }
            2 => bytes.insert(i, b"\n  - :[{"[usize::from(b / 4) % 8]),
            _ => {
                let j = usize::from(b) % bytes.len();
                bytes.swap(i, j);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = Config::from_yaml_str(&s, FILE);
        let _ = Identity::parse(&s);
        let _ = TrafficSelector::parse(&s);
        let _ = Address::parse(&s);
    }

    #[test]
    fn mutated_config_never_panics_and_errors_are_located(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
    ) {
        let text = mutate(EXAMPLE, &edits);
        if let Err(e) = Config::from_yaml_str(&text, FILE) {
            prop_assert!(!e.issues.is_empty());
            let lines = text.lines().count() as u64 + 1;
            for i in &e.issues {
                prop_assert!(i.line <= lines, "{} beyond the file", i);
                prop_assert!(i.to_string().starts_with(FILE));
            }
        }
    }

    #[test]
    fn identity_display_round_trips(s in "[a-z]{1,8}(\\.[a-z]{1,8}){0,3}|[a-z]{1,5}@[a-z]{1,5}\\.[a-z]{2}") {
        let id = Identity::parse(&s).unwrap();
        prop_assert_eq!(Identity::parse(&id.to_string()).unwrap(), id);
    }
}

#[test]
fn from_tree_names_each_nodes_file() {
    use tree::{FileId, Kind as K, Node as N};
    let s = |f: u32, line: u64, t: &str| N::new(FileId(f), line, K::Scalar(t.into()));
    let map = |f: u32, line: u64, e: Vec<(N, N)>| N::new(FileId(f), line, K::Map(e));
    // connections.c in the main file, its child's mode in the second one.
    let child = map(1, 3, vec![(s(1, 4, "mode"), s(1, 4, "tunel"))]);
    let conn = map(
        0,
        2,
        vec![
            (
                s(0, 3, "local"),
                map(0, 3, vec![(s(0, 3, "auth"), s(0, 3, "psk"))]),
            ),
            (
                s(0, 4, "remote"),
                map(0, 4, vec![(s(0, 4, "auth"), s(0, 4, "psk"))]),
            ),
            (
                s(0, 9, "children"),
                map(0, 9, vec![(s(1, 2, "lan"), child)]),
            ),
            (s(0, 10, "mobike"), s(0, 10, "maybe")),
        ],
    );
    let root = map(
        0,
        1,
        vec![(
            s(0, 1, "connections"),
            map(0, 1, vec![(s(0, 2, "c"), conn)]),
        )],
    );
    let e = Config::from_tree(&root, &["main.conf", "conf.d/lan.conf"]).unwrap_err();
    let got: Vec<String> = e.issues.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "main.conf:10: connections.c.mobike: bad value \"maybe\" (expected yes or no)",
            "conf.d/lan.conf:4: connections.c.children.lan.mode: unknown mode \"tunel\" (expected tunnel, transport, pass or drop)",
        ]
    );
    // An index with no name is still reported.
    let bad = map(5, 7, vec![(s(5, 7, "nonsense"), s(5, 7, "x"))]);
    let e = Config::from_tree(&bad, &["only.conf"]).unwrap_err();
    assert_eq!(e.issues[0].file, "(unknown file)");
    assert_eq!(e.issues[0].line, 7);
}

#[test]
fn encap_takes_strongswans_booleans() {
    for (v, want) in [("yes", true), ("true", true), ("no", false), ("0", false)] {
        let c = ok(&format!(
            "connections:\n  c:\n    encap: {v}\n    local: {{ auth: psk }}\n    remote: {{ auth: psk }}\n"
        ));
        assert_eq!(c.connections()[0].encap, want, "{v}");
    }
    let e = crate::config::Config::from_yaml_str(
        "connections:\n  c:\n    encap: sometimes\n    local: { auth: psk }\n    remote: { auth: psk }\n",
        "t.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("t.yaml:3: connections.c.encap: bad value \"sometimes\" (expected yes or no)"),
        "{e}"
    );
}

#[test]
fn fragmentation_takes_strongswans_values() {
    use crate::sa::Fragmentation;
    let c = |v: &str| {
        format!("connections:\n  c:\n{v}    local: {{ auth: psk }}\n    remote: {{ auth: psk }}\n")
    };
    assert_eq!(
        ok(&c("")).connections()[0].fragmentation,
        Fragmentation::Yes
    );
    for (v, want) in [
        ("yes", Fragmentation::Yes),
        ("accept", Fragmentation::Accept),
        ("force", Fragmentation::Force),
        ("no", Fragmentation::No),
    ] {
        let got = ok(&c(&format!("    fragmentation: {v}\n")));
        assert_eq!(got.connections()[0].fragmentation, want, "{v}");
    }
    assert_issues(
        &c("    fragmentation: maybe\n"),
        &[(
            3,
            "connections.c.fragmentation",
            "unknown fragmentation \"maybe\" (expected yes, accept, force or no)",
        )],
    );
}

#[test]
fn settings_hold_the_fragment_size() {
    let c = |s: &str| {
        format!("{s}connections:\n  c:\n    local: {{ auth: psk }}\n    remote: {{ auth: psk }}\n")
    };
    assert_eq!(ok(&c("")).settings().fragment_size, None);
    for v in [0, 256, 576, 1280, 65_535] {
        let got = ok(&c(&format!("settings:\n  fragment_size: {v}\n")));
        assert_eq!(got.settings().fragment_size, Some(v));
    }
    for v in ["100", "65536", "-1", "big"] {
        assert_issues(
            &c(&format!("settings:\n  fragment_size: {v}\n")),
            &[(
                2,
                "settings.fragment_size",
                &format!("bad value \"{v}\" (expected 0 or octets from 256 to 65535)"),
            )],
        );
    }
    assert_issues(
        &c("settings:\n  fragment_sise: 1\n"),
        &[(
            2,
            "settings.fragment_sise",
            "unknown key \"fragment_sise\" (expected one of: block_threshold, cookie_threshold, \
             cookie_threshold_ip, fragment_size, init_limit_half_open)",
        )],
    );
}

#[test]
fn lifetimes_default_as_strongswan() {
    use std::time::Duration;
    let c = ok(&conn("", ""));
    let cn = &c.connections()[0];
    let h = |n: u64| Duration::from_secs(n * 3600);
    assert_eq!(cn.lifetimes.rekey_time, h(4));
    assert_eq!(cn.lifetimes.over_time, Duration::from_secs(1440));
    assert_eq!(cn.lifetimes.rand_time, Duration::from_secs(1440));
    assert_eq!(cn.lifetimes.reauth_time, Duration::ZERO);
    let l = cn.children[0].lifetimes;
    assert_eq!(l.rekey_time, h(1));
    assert_eq!(l.life_time, Duration::from_secs(3960));
    assert_eq!(l.rand_time, Duration::from_secs(360));
    assert_eq!((l.rekey_bytes, l.life_bytes), (0, 0));
    assert_eq!((l.rekey_packets, l.life_packets), (0, 0));
}

#[test]
fn lifetimes_are_read_with_units_and_derived_defaults() {
    use std::time::Duration;
    let c = ok(&conn(
        "rekey_time: 2h\nover_time: 5m",
        "rekey_time: 1800\nrand_time: 60s\nrekey_bytes: 500000000\nrekey_packets: 1M\nlife_packets: 0x200000",
    ));
    let cn = &c.connections()[0];
    assert_eq!(cn.lifetimes.rekey_time, Duration::from_secs(7200));
    assert_eq!(cn.lifetimes.over_time, Duration::from_secs(300));
    assert_eq!(cn.lifetimes.rand_time, Duration::from_secs(300));
    let l = cn.children[0].lifetimes;
    assert_eq!(l.rekey_time, Duration::from_secs(1800));
    assert_eq!(l.life_time, Duration::from_secs(1980));
    assert_eq!(l.rand_time, Duration::from_secs(60));
    assert_eq!((l.rekey_bytes, l.life_bytes), (500_000_000, 550_000_000));
    assert_eq!((l.rekey_packets, l.life_packets), (1 << 20, 0x20_0000));
    // 0 turns rekeying off, and with it the derived lifetimes.
    let c = ok(&conn("rekey_time: 0", "rekey_time: 0\nlife_time: 1d"));
    let cn = &c.connections()[0];
    assert_eq!(cn.lifetimes.rekey_time, Duration::ZERO);
    assert_eq!(cn.lifetimes.over_time, Duration::ZERO);
    let l = cn.children[0].lifetimes;
    assert_eq!(
        (l.rekey_time, l.life_time),
        (Duration::ZERO, Duration::from_secs(86_400))
    );
}

#[test]
fn rand_bytes_and_packets_default_to_the_difference_of_the_limits_as_strongswan() {
    let l = |child: &str| ok(&conn("", child)).connections()[0].children[0].lifetimes;
    let d = l("");
    assert_eq!((d.rand_bytes, d.rand_packets), (0, 0));
    // life_* defaults to 110%: the range is 10% of the soft limit.
    let d = l("rekey_bytes: 1000\nrekey_packets: 200\nlife_packets: 500");
    assert_eq!((d.rand_bytes, d.rand_packets), (100, 300));
    let d = l("rekey_bytes: 1m\nrand_bytes: 1k\nrekey_packets: 100\nrand_packets: 0");
    assert_eq!((d.rand_bytes, d.rand_packets), (1024, 0));
}

#[test]
fn reauth_time_is_read_and_over_time_follows_the_larger_time() {
    use std::time::Duration;
    // strongSwan: over_time defaults to 10% of the larger of rekey_time
    // and reauth_time, rand_time to over_time (at most half the smaller).
    let c = ok(&conn("rekey_time: 0\nreauth_time: 3h", ""));
    let l = c.connections()[0].lifetimes;
    assert_eq!(l.rekey_time, Duration::ZERO);
    assert_eq!(l.reauth_time, Duration::from_secs(10_800));
    assert_eq!(l.over_time, Duration::from_secs(1080));
    assert_eq!(l.rand_time, Duration::from_secs(1080));
    // reauth_time alone turns rekeying off (charon's default applies
    // only when neither is given).
    let c = ok(&conn("reauth_time: 8h", ""));
    let l = c.connections()[0].lifetimes;
    assert_eq!(l.rekey_time, Duration::ZERO);
    assert_eq!(l.over_time, Duration::from_secs(2880));
    assert_issues(
        &conn("rekey_time: 0\nreauth_time: 1m\nrand_time: 2m", ""),
        &[(
            7,
            "connections.c.rand_time",
            "rand_time must be smaller than reauth_time",
        )],
    );
}

/// Each case's values as charon derives them: taken from charon 5.9.8's
/// `cfg = 2` log of the same connections loaded over VICI, except where
/// only a `life_*` is given (`*`), where 5.9.9 and later (vici_config.c
/// `check_lifetimes`, followed here) take `rekey_*` = `life_*` / 1.1 and
/// 5.9.8 kept the default rekey value.
#[test]
fn lifetimes_are_derived_exactly_as_charon() {
    type Ike = (u64, u64, u64, u64);
    type Limits = [(u64, u64, u64); 3];
    let cases: &[(&str, &str, Ike, Limits)] = &[
        (
            "",
            "rekey_time: 5s",
            (14_400, 0, 1440, 1440),
            [(5, 5, 0), (0, 0, 0), (0, 0, 0)],
        ),
        (
            "rekey_time: 60",
            "life_time: 11s",
            (60, 0, 6, 6),
            // * 11 / 1.1 rounds to 10 in double precision.
            [(10, 11, 1), (0, 0, 0), (0, 0, 0)],
        ),
        (
            "rekey_time: 1h\nreauth_time: 10h",
            "rekey_bytes: 1000\nlife_packets: 11",
            (3600, 36_000, 3600, 1800),
            // * packets.
            [(3600, 3960, 360), (1000, 1100, 100), (10, 11, 1)],
        ),
        (
            "reauth_time: 3h\nover_time: 1h",
            "rekey_time: 9\nrekey_packets: 19\nlife_bytes: 100",
            (0, 10_800, 3600, 3600),
            // * bytes.
            [(9, 9, 0), (90, 100, 10), (19, 20, 1)],
        ),
        (
            "rekey_time: 10m\nover_time: 1h",
            "rekey_time: 0\nrand_time: 7\nlife_bytes: 1",
            (600, 0, 3600, 300),
            // * bytes.
            [(0, 0, 7), (0, 1, 1), (0, 0, 0)],
        ),
        (
            "rekey_time: 5s\nreauth_time: 7s",
            "life_time: 10\nrekey_bytes: 3",
            (5, 7, 0, 0),
            // * time.
            [(9, 10, 1), (3, 3, 0), (0, 0, 0)],
        ),
    ];
    for (ike, child, want_ike, want_child) in cases {
        let c = ok(&conn(ike, child));
        let cn = &c.connections()[0];
        let l = cn.lifetimes;
        let got = (
            l.rekey_time.as_secs(),
            l.reauth_time.as_secs(),
            l.over_time.as_secs(),
            l.rand_time.as_secs(),
        );
        assert_eq!(got, *want_ike, "IKE lifetimes of {ike:?}");
        let l = cn.children[0].lifetimes;
        let got = [
            (
                l.rekey_time.as_secs(),
                l.life_time.as_secs(),
                l.rand_time.as_secs(),
            ),
            (l.rekey_bytes, l.life_bytes, l.rand_bytes),
            (l.rekey_packets, l.life_packets, l.rand_packets),
        ];
        assert_eq!(got, *want_child, "child lifetimes of {child:?}");
    }
}

#[test]
fn bad_lifetimes_are_located() {
    assert_issues(
        &conn(
            "rekey_time: 4 hours\nrand_time: 5h",
            "rekey_time: 1h\nlife_time: 30m\nrekey_bytes: lots\nrekey_packets: 100\nlife_packets: 50\nrand_packets: 200",
        ),
        &[
            (
                5,
                "connections.c.rekey_time",
                "bad time \"4 hours\" (expected seconds, or a number with s, m, h or d)",
            ),
            (
                6,
                "connections.c.rand_time",
                "rand_time must be smaller than rekey_time",
            ),
            (
                10,
                "connections.c.children.c.life_time",
                "life_time (1800s) must not be smaller than rekey_time (3600s)",
            ),
            (
                11,
                "connections.c.children.c.rekey_bytes",
                "bad count \"lots\"",
            ),
            (
                13,
                "connections.c.children.c.life_packets",
                "life_packets (50) must not be smaller than rekey_packets (100)",
            ),
        ],
    );
}

#[test]
fn liveness_and_action_keys() {
    use std::time::Duration;
    // strongSwan's defaults.
    let c = ok(&conn("", ""));
    let (cn, ch) = (&c.connections()[0], &c.connections()[0].children[0]);
    assert_eq!(
        (cn.dpd_delay, cn.dpd_timeout),
        (Duration::ZERO, Duration::ZERO)
    );
    assert_eq!(
        (ch.start_action, ch.close_action, ch.dpd_action),
        (StartAction::None, CloseAction::None, DpdAction::Clear)
    );
    let c = ok(&conn(
        "dpd_delay: 30s\ndpd_timeout: 2m\nremote_addrs: [192.0.2.2]",
        "start_action: trap\nclose_action: start\ndpd_action: restart",
    ));
    let (cn, ch) = (&c.connections()[0], &c.connections()[0].children[0]);
    assert_eq!(cn.dpd_delay, Duration::from_secs(30));
    assert_eq!(cn.dpd_timeout, Duration::from_secs(120));
    assert_eq!(
        (ch.start_action, ch.close_action, ch.dpd_action),
        (StartAction::Trap, CloseAction::Start, DpdAction::Restart)
    );
    // strongSwan's older names.
    let c = ok(&conn("", "close_action: hold\ndpd_action: hold"));
    let ch = &c.connections()[0].children[0];
    assert_eq!(
        (ch.close_action, ch.dpd_action),
        (CloseAction::Trap, DpdAction::Trap)
    );
    let c = ok(&conn("", "close_action: restart\ndpd_action: clear"));
    let ch = &c.connections()[0].children[0];
    assert_eq!(
        (ch.close_action, ch.dpd_action),
        (CloseAction::Start, DpdAction::Clear)
    );
    // Bad values name file, line and key.
    assert_issues(
        &conn("dpd_delay: 10 x", "close_action: later\ndpd_action: panic"),
        &[
            (5, "connections.c.dpd_delay", "bad time \"10 x\""),
            (
                8,
                "connections.c.children.c.close_action",
                "unknown close_action \"later\" (expected none, trap, start)",
            ),
            (
                9,
                "connections.c.children.c.dpd_action",
                "unknown dpd_action \"panic\" (expected clear, trap, restart)",
            ),
        ],
    );
}

#[test]
fn selectors_use_the_hosts_service_names_and_name_the_unknown_one() {
    let names = NetNames::default().with_services("ssh 22/tcp\ndomain 53/udp\n", "/etc/services");
    let text = "\
connections:
  a:
    local: { auth: psk }
    remote: { auth: psk }
    children:
      x:
        local_ts: ['10.1.0.0/24[tcp/ssh]', '10.1.0.0/24[icmp/8]']
        remote_ts: ['10.2.0.0/24[udp/domain]']
";
    let c = Config::from_yaml_str_with(text, FILE, &names).unwrap_or_else(|e| panic!("{e}"));
    let x = &c.connections()[0].children[0];
    assert_eq!(
        (x.local_ts[0].protocol, x.local_ts[0].ports),
        (6, PortRange { start: 22, end: 22 })
    );
    assert_eq!(
        (x.local_ts[1].protocol, x.local_ts[1].ports),
        (
            1,
            PortRange {
                start: 0x0800,
                end: 0x0800
            }
        )
    );
    assert_eq!(x.remote_ts[0].ports, PortRange { start: 53, end: 53 });
    // An unknown name: file, line and the selector.
    let bad = text.replace("udp/domain", "udp/nosuch");
    let e = Config::from_yaml_str_with(&bad, FILE, &names).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{FILE}:8: connections.a.children.x.remote_ts[0]: bad traffic selector \
             \"10.2.0.0/24[udp/nosuch]\": bad port \"nosuch\" (a number 0-65535, a range a-b, \
             a service in /etc/services, any or opaque)"
        )
    );
    // Without the table (Config::from_yaml_str) a name is refused.
    assert!(Config::from_yaml_str(text, FILE).is_err());
}

#[test]
fn not_planned_keys_say_so_with_their_place() {
    let text = "\
connections:
  a:
    mediation: yes
    local: { auth: psk }
    remote: { auth: psk, groups: admins }
    children:
      x:
        label: 'system_u:object_r:ipsec_spd_t:s0'
        icmp: yes
";
    let lines: Vec<String> = err(text).issues.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            "{FILE}:3: connections.a.mediation: the swanctl key \"mediation\" is not planned yet: IKEv2 mediation"
        )),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{FILE}:5: connections.a.remote.groups: the swanctl key \"groups\" is not planned yet: "
        )),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "{FILE}:8: connections.a.children.x.label: the swanctl key \"label\" is not planned yet: SELinux"
        )),
        "{lines:?}"
    );
    assert_eq!(
        lines[3],
        format!(
            "{FILE}:9: connections.a.children.x.icmp: the swanctl key \"icmp\" is not supported yet"
        )
    );
}

#[test]
fn keyingtries_as_charon_reads_it() {
    let tries = |extra: &str| ok(&conn(extra, "")).connections()[0].behaviour.keyingtries;
    assert_eq!(tries(""), 1, "charon's default");
    assert_eq!(tries("keyingtries: 0"), 0);
    assert_eq!(tries("keyingtries: 5"), 5);
    assert_eq!(tries("keyingtries: 0x10"), 16);
    for bad in ["-1", "%forever", "4294967296", "two"] {
        assert_issues(
            &conn(&format!("keyingtries: \"{bad}\""), ""),
            &[(
                5,
                "connections.c.keyingtries",
                &format!("bad keyingtries \"{bad}\" (expected a number of tries, 0 for forever)"),
            )],
        );
    }
}

#[test]
fn childless_as_charon_reads_it() {
    use super::Childless;
    let c = |extra: &str| ok(&conn(extra, "")).connections()[0].behaviour.childless;
    assert_eq!(c(""), Childless::Allow, "charon's default");
    assert_eq!(c("childless: allow"), Childless::Allow);
    assert_eq!(c("childless: force"), Childless::Force);
    assert_eq!(c("childless: never"), Childless::Never);
    assert_issues(
        &conn("childless: prefer", ""),
        &[(
            5,
            "connections.c.childless",
            "childless \"prefer\" is not supported yet",
        )],
    );
    assert_issues(
        &conn("childless: yes", ""),
        &[(
            5,
            "connections.c.childless",
            "unknown childless \"yes\" (expected allow, force, never)",
        )],
    );
}

#[test]
fn unique_as_charon_reads_it() {
    use super::Unique;
    let u = |extra: &str| ok(&conn(extra, "")).connections()[0].behaviour.unique;
    assert_eq!(u(""), Unique::No, "charon's default");
    assert_eq!(u("unique: no"), Unique::No);
    assert_eq!(u("unique: never"), Unique::Never);
    assert_eq!(u("unique: keep"), Unique::Keep);
    assert_eq!(u("unique: replace"), Unique::Replace);
    assert_issues(
        &conn("unique: yes", ""),
        &[(
            5,
            "connections.c.unique",
            "unknown unique \"yes\" (expected no, never, keep, replace)",
        )],
    );
}

#[test]
fn pools_and_their_attributes_as_charons_vici_reads_them() {
    let c = ok("
connections:
  rw:
    pools: [v4, v6]
    local: { auth: psk, id: gw.example }
    remote: { auth: psk }
    children:
      rw: { local_ts: [10.2.0.0/16] }
  client:
    vips: '0.0.0.0, ::'
    local: { auth: psk }
    remote: { auth: psk }
    children:
      net: { remote_ts: [10.2.0.0/16] }
pools:
  v4:
    addrs: 10.3.0.0/24
    dns: [10.2.0.53, 10.2.0.54]
    nbns: 10.2.0.55
    split_include: 10.2.0.0/16
    subnet: 10.4.0.0/16
    '25': example.org
    '28674': 10.9.0.1
  v6:
    addrs: fd00::1-fd00::ff
    dns: fd00:2::53
");
    assert_eq!(c.connection("rw").unwrap().pools, ["v4", "v6"]);
    assert_eq!(
        c.connection("client").unwrap().vips,
        [ip("0.0.0.0"), ip("::")]
    );
    let [v4, v6] = c.pools() else {
        panic!("{:?}", c.pools())
    };
    assert_eq!(v4.addrs, "10.3.0.0/24");
    assert_eq!(
        v4.attributes,
        [
            (3, vec![10, 2, 0, 53]),
            (3, vec![10, 2, 0, 54]),
            (4, vec![10, 2, 0, 55]),
            (28676, vec![10, 2, 0, 0, 255, 255, 0, 0]),
            (13, vec![10, 4, 0, 0, 255, 255, 0, 0]),
            (25, b"example.org".to_vec()),
            (28674, vec![10, 9, 0, 1]),
        ]
    );
    assert_eq!(v6.attributes[0].0, 10);
    assert_eq!(v6.attributes[0].1.len(), 16);
}

#[test]
fn a_pool_no_section_defines_is_a_warning_as_charon_loads_it() {
    let c = ok("connections:
  rw:
    pools: [dhcp, rw, radius]
    local: { auth: psk }
    remote: { auth: psk }
pools:
  rw:
    addrs: 10.3.0.0/24
");
    let w = c.pool_warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("connection rw: pools names \"dhcp\""),
        "{}",
        w[0]
    );
    assert!(
        w[1].contains("\"radius\"") && w[1].contains("eap-radius"),
        "{}",
        w[1]
    );
    assert_eq!(c.warnings().len(), 2);
    assert_eq!(c.connections[0].pools, ["dhcp", "rw", "radius"]);
}

#[test]
fn bad_pools_are_located() {
    assert_issues(
        "
connections:
  rw:
    pools: [missing]
    local: { auth: psk }
    remote: { auth: psk }
pools:
  a:
    addrs: 10.3.0.9-10.3.0.1
  b:
    dns: 10.0.0.1
  c:
    addrs: 10.3.0.0/24
    dns: dns.example
    frobnicate: 1
    '40000': x
vips_are_not_here: 1
",
        &[
            (
                9,
                "pools.a.addrs",
                "the address range 10.3.0.9 - 10.3.0.1 is invalid",
            ),
            (11, "pools.b", "missing addrs"),
            (
                14,
                "pools.c.dns",
                "'dns.example' is not an address or a subnet",
            ),
            (15, "pools.c.frobnicate", "unknown key \"frobnicate\""),
            (16, "pools.c.40000", "unknown key \"40000\""),
            (17, "vips_are_not_here", "unknown key"),
        ],
    );
    assert_issues(
        "
connections:
  c:
    vips: [0.0.0.0, nowhere]
    local: { auth: psk }
    remote: { auth: psk }
",
        &[(4, "connections.c.vips[1]", "'nowhere' is not an IP address")],
    );
}

#[test]
fn generic_eap_is_a_clients_only() {
    let c = ok("connections:\n  c:\n    local: { auth: eap }\n    remote: { auth: pubkey }\n");
    assert_eq!(
        c.connections()[0].local.auth,
        AuthMethod::Eap(crate::eap::MethodName::Any)
    );
    let e = err("connections:\n  c:\n    local: { auth: psk }\n    remote: { auth: eap }\n");
    assert_eq!(e.issues.len(), 1, "{e}");
    assert_eq!(e.issues[0].path, "connections.c.remote.auth");
    assert_eq!(e.issues[0].line, 4);
    assert!(
        e.issues[0].message.contains("a gateway names its method"),
        "{e}"
    );
}

#[test]
fn redirect_names_the_gateway_and_the_exchange() {
    use crate::sa::{Gateway, RedirectCfg, RedirectWhen};
    let r = |extra: &str| ok(&conn(extra, "")).connections()[0].redirect.clone();
    assert_eq!(r(""), None);
    assert_eq!(
        r("redirect: { to: 192.0.2.2 }"),
        Some(RedirectCfg {
            to: Gateway::Addr(ip("192.0.2.2")),
            when: RedirectWhen::Auth,
        }),
        "in IKE_AUTH by default"
    );
    assert_eq!(
        r("redirect: { to: 'gw-b.example', when: ike_sa_init }"),
        Some(RedirectCfg {
            to: Gateway::Fqdn("gw-b.example".into()),
            when: RedirectWhen::Init,
        })
    );
    assert_eq!(
        r("redirect: { to: '2001:db8::2', when: ike_auth }").map(|c| c.to),
        Some(Gateway::Addr(ip("2001:db8::2")))
    );
    assert_issues(
        &conn("redirect: { to: 'gw b', when: later, via: x }", ""),
        &[
            (
                5,
                "connections.c.redirect.to",
                "bad gateway \"gw b\" (expected an IPv4 or IPv6 address or a DNS name)",
            ),
            (
                5,
                "connections.c.redirect.when",
                "unknown when \"later\" (expected ike_sa_init, ike_auth)",
            ),
            (
                5,
                "connections.c.redirect.via",
                "unknown key \"via\" (expected one of: to, when)",
            ),
        ],
    );
    assert_issues(
        &conn("redirect: { when: ike_auth }", ""),
        &[(
            5,
            "connections.c.redirect",
            "redirect needs \"to\": the gateway (an address or a DNS name)",
        )],
    );
}

#[test]
fn radius_servers_with_their_defaults() {
    let c = ok("radius:
  accounting: yes
  nas_identifier: gw
  retransmit_tries: 2
  port: 11812
  servers:
    primary:
      address: 10.0.0.1
      secret: s1
      preference: 10
    backup:
      address: 2001:db8::1
      secret: '0x73'
      auth_port: 1645
      acct_port: 1646
      nas_identifier: gw2
      retransmit_timeout: 0.5
");
    let r = c.radius().unwrap();
    assert!(r.accounting && r.station_id_with_port && !r.eap_start);
    let [p, b] = &r.servers[..] else {
        panic!("{:?}", r.servers)
    };
    assert_eq!(p.name, "primary");
    assert_eq!(p.auth, "10.0.0.1:11812".parse().unwrap());
    assert_eq!(p.acct, "10.0.0.1:1813".parse().unwrap());
    assert_eq!((p.preference, p.retransmit_tries), (10, 2));
    assert_eq!(p.nas_identifier, "gw");
    assert_eq!(&**p.secret, b"s1");
    assert_eq!(b.auth, "[2001:db8::1]:1645".parse().unwrap());
    assert_eq!(b.acct, "[2001:db8::1]:1646".parse().unwrap());
    assert_eq!(b.nas_identifier, "gw2");
    assert_eq!(b.retransmit_timeout, Duration::from_millis(500));
    assert_eq!(b.retransmit_base, 1.4);
    // As written, as strongswan.conf's: no 0x decoding.
    assert_eq!(&**b.secret, b"0x73");
    assert!(ok("connections: {}\n").radius().is_none());
}

#[test]
fn bad_radius_settings_are_located() {
    assert_issues(
        "radius:
  accounting: maybe
  servers:
    a:
      secret: s
    b:
      address: radius.example
      secret: s
      auth_port: 70000
    c:
      address: 10.0.0.3
      retransmit_base: 20
      frobnicate: 1
",
        &[
            (2, "radius.accounting", "bad value \"maybe\""),
            (5, "radius.servers.a.address", "missing"),
            (7, "radius.servers.b.address", "not an IP address"),
            (9, "radius.servers.b.auth_port", "bad port \"70000\""),
            (11, "radius.servers.c.secret", "missing"),
            (12, "radius.servers.c.retransmit_base", "bad value \"20\""),
            (13, "radius.servers.c.frobnicate", "unknown key"),
        ],
    );
    assert_issues(
        "radius:\n  accounting: yes\n",
        &[(1, "radius", "no servers")],
    );
}
