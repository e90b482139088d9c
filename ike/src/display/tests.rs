#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::config::{DistinguishedName, Identity};
use crate::wire::AddressRange;
use crate::wire::codes::IdType;

fn v4(a: &str, b: &str) -> TrafficSelector {
    TrafficSelector::Ipv4(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
}

fn ts(t: &TrafficSelector) -> String {
    TsDisplay(std::slice::from_ref(t)).to_string()
}

fn id(t: IdType, d: &[u8]) -> String {
    IdDisplay(&Identification {
        id_type: t,
        data: d.to_vec(),
    })
    .to_string()
}

#[test]
fn ts_display_uses_prefixes_when_it_can() {
    let list = [
        v4("192.0.2.1", "192.0.2.1"),
        v4("10.0.0.0", "10.0.0.255"),
        v4("10.0.0.1", "10.0.0.5"),
    ];
    assert_eq!(
        TsDisplay(&list).to_string(),
        "192.0.2.1/32 10.0.0.0/24 10.0.0.1..10.0.0.5"
    );
    let all6 = [TrafficSelector::Ipv6(AddressRange::any(
        "::".parse().unwrap(),
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
    ))];
    assert_eq!(TsDisplay(&all6).to_string(), "::/0");
    let all4 = v4("0.0.0.0", "255.255.255.255");
    assert_eq!(ts(&all4), "0.0.0.0/0");
}

#[test]
fn selectors_print_like_strongswan() {
    assert_eq!(ts(&v4("10.1.0.0", "10.1.0.255")), "10.1.0.0/24");
    assert_eq!(ts(&v4("10.1.0.5", "10.1.0.9")), "10.1.0.5..10.1.0.9");
    assert_eq!(ts(&v4("192.0.2.1", "192.0.2.1")), "192.0.2.1/32");
    // Aligned but not one block, and one block off its alignment.
    assert_eq!(ts(&v4("10.0.0.0", "10.0.1.255")), "10.0.0.0/23");
    assert_eq!(ts(&v4("10.0.1.0", "10.0.2.255")), "10.0.1.0..10.0.2.255");
    let mut t = AddressRange::any(
        "10.0.0.0".parse().unwrap(),
        "10.255.255.255".parse().unwrap(),
    );
    t.ip_protocol = 6;
    assert_eq!(ts(&TrafficSelector::Ipv4(t)), "10.0.0.0/8[6]");
    t.start_port = 80;
    t.end_port = 80;
    assert_eq!(ts(&TrafficSelector::Ipv4(t)), "10.0.0.0/8[6/80]");
    t.start_port = 1000;
    t.end_port = 2000;
    assert_eq!(ts(&TrafficSelector::Ipv4(t)), "10.0.0.0/8[6/1000-2000]");
    t.start_port = u16::MAX;
    t.end_port = 0;
    assert_eq!(ts(&TrafficSelector::Ipv4(t)), "10.0.0.0/8[6/OPAQUE]");
    // A port without a protocol.
    t.ip_protocol = 0;
    t.start_port = 53;
    t.end_port = 53;
    assert_eq!(ts(&TrafficSelector::Ipv4(t)), "10.0.0.0/8[0/53]");
    let v6 = TrafficSelector::Ipv6(AddressRange::any(
        "2001:db8::".parse().unwrap(),
        "2001:db8::ffff".parse().unwrap(),
    ));
    assert_eq!(ts(&v6), "2001:db8::/112");
    let v6r = TrafficSelector::Ipv6(AddressRange::any(
        "2001:db8::1".parse().unwrap(),
        "2001:db8::9".parse().unwrap(),
    ));
    assert_eq!(ts(&v6r), "2001:db8::1..2001:db8::9");
    // A configured selector prints the same way.
    let cfg = crate::config::TrafficSelector::parse("10.1.0.5-10.1.0.9[tcp/80]").unwrap();
    assert_eq!(cfg.to_string(), "10.1.0.5..10.1.0.9[6/80]");
}

#[test]
fn prefix_lengths() {
    let p = |a: &str, b: &str| prefix_len(a.parse().unwrap(), b.parse().unwrap());
    assert_eq!(p("10.0.0.0", "10.0.0.255"), Some(24));
    assert_eq!(p("10.0.0.1", "10.0.0.1"), Some(32));
    assert_eq!(p("::", "::"), Some(128));
    assert_eq!(p("10.0.0.1", "10.0.0.2"), None);
    assert_eq!(p("10.0.0.255", "10.0.0.0"), None);
    assert_eq!(p("10.0.0.0", "::1"), None);
}

#[test]
fn identities_print_like_strongswan() {
    assert_eq!(id(IdType::FQDN, b"gw.example.net"), "gw.example.net");
    assert_eq!(id(IdType::IPV4_ADDR, &[192, 0, 2, 1]), "192.0.2.1");
    assert_eq!(
        id(
            IdType::IPV6_ADDR,
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        ),
        "2001:db8::1"
    );
    assert_eq!(id(IdType::RFC822_ADDR, b"a@b"), "a@b");
    assert_eq!(id(IdType::KEY_ID, b"my-key"), "my-key");
    assert_eq!(id(IdType::KEY_ID, &[0xde, 0xad, 0x01]), "de:ad:01");
    // Malformed data is shown, never a panic.
    assert!(id(IdType::IPV4_ADDR, &[1, 2]).ends_with(":0102"));
    assert_eq!(id(IdType(0), b""), "%any");
    assert_eq!(id(IdType(200), &[0xab]), format!("{}:ab", IdType(200)));
}

#[test]
fn distinguished_names_print_as_text() {
    let text = "C=CH, O=strongSwan, CN=moon.strongswan.org";
    let der = DistinguishedName::parse(text).unwrap().der();
    assert_eq!(dn_text(&der).as_deref(), Some(text));
    assert_eq!(id(IdType::DER_ASN1_DN, &der), text);
    // What the configuration's text becomes on the wire prints as written.
    let (t, data) = Identity::parse("C=CH, O=example, CN=gw").unwrap().to_wire();
    assert_eq!(id(t, &data), "C=CH, O=example, CN=gw");
    // UTF8String and BMPString values; an attribute without a name by OID.
    let atv = |oid: &[u8], tag: u8, v: &[u8]| {
        let mut a = vec![0x06, oid.len() as u8];
        a.extend(oid);
        a.extend([tag, v.len() as u8]);
        a.extend(v);
        let mut seq = vec![0x30, a.len() as u8];
        seq.extend(a);
        let mut set = vec![0x31, seq.len() as u8];
        set.extend(seq);
        set
    };
    let mut body = atv(&[0x55, 0x04, 0x03], 0x0c, "Zürich".as_bytes());
    body.extend(atv(&[0x55, 0x04, 0x0a], 0x1e, &[0x00, b'S', 0x00, b'W']));
    body.extend(atv(&[0x55, 0x04, 0x2d], 0x13, b"x"));
    let mut dn = vec![0x30, body.len() as u8];
    dn.extend(&body);
    assert_eq!(dn_text(&dn).as_deref(), Some("CN=Zürich, O=SW, 2.5.4.45=x"));
    // Long-form lengths.
    let mut long = vec![0x30, 0x81, body.len() as u8];
    long.extend(&body);
    assert_eq!(dn_text(&long), dn_text(&dn));
}

#[test]
fn undecodable_names_fall_back_to_hex() {
    let text = "C=CH, CN=gw";
    let der = DistinguishedName::parse(text).unwrap().der();
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    let fallback = |d: &[u8]| {
        let h: String = d.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:{h}", IdType::DER_ASN1_DN)
    };
    assert_eq!(fallback(&der), format!("{}:{hex}", IdType::DER_ASN1_DN));
    // Cut short anywhere, trailing bytes, wrong outer tag, empty, a control
    // character in a value, an integer value, an indefinite length.
    for n in 0..der.len() {
        assert_eq!(dn_text(&der[..n]), None, "cut at {n}");
        assert_eq!(id(IdType::DER_ASN1_DN, &der[..n]), fallback(&der[..n]));
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert_eq!(dn_text(&trailing), None);
    let mut set = der.clone();
    set[0] = 0x31;
    assert_eq!(dn_text(&set), None);
    assert_eq!(dn_text(&[0x30, 0x00]), None);
    let ctl = DistinguishedName::parse("CN=a").unwrap().der();
    let mut ctl = ctl.clone();
    if let Some(last) = ctl.last_mut() {
        *last = b'\n';
    }
    assert_eq!(dn_text(&ctl), None);
    let mut int = DistinguishedName::parse("CN=a").unwrap().der();
    let n = int.len();
    int[n - 3] = 0x02;
    assert_eq!(dn_text(&int), None);
    assert_eq!(dn_text(&[0x30, 0x80, 0x00, 0x00]), None);
    assert_eq!(
        id(IdType::DER_ASN1_DN, &[0x30, 0x80]),
        fallback(&[0x30, 0x80])
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    use proptest::prelude::*;
    proptest!(|(t in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..64))| {
        let _ = id(IdType(t), &data);
        let _ = dn_text(&data);
    });
}
