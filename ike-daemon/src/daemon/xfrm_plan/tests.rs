#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use super::*;
use ike::crypto::Secret;
use ike::sa::{ChildId, IkeSaId};
use ike::wire::AddressRange;

pub(crate) fn v4(a: &str, b: &str) -> TrafficSelector {
    TrafficSelector::Ipv4(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
}

fn v6(a: &str, b: &str) -> TrafficSelector {
    TrafficSelector::Ipv6(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
}

fn pfx(s: &str) -> IpPrefix {
    let (a, l) = s.split_once('/').unwrap();
    IpPrefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn gcm256() -> ChildSuite {
    ChildSuite {
        protocol: ProtocolId::ESP,
        encr: Some((EncrId::AES_GCM_16, Some(256))),
        integ: None,
        ke: None,
        esn: false,
    }
}

pub(crate) fn install(
    mode: Mode,
    local: &str,
    remote: &str,
    lts: Vec<TrafficSelector>,
    rts: Vec<TrafficSelector>,
) -> ChildInstall {
    ChildInstall {
        id: ChildId(7),
        ike_sa: IkeSaId(3),
        name: "lan".into(),
        mode,
        protocol: ProtocolId::ESP,
        local: local.parse::<SocketAddr>().unwrap(),
        remote: remote.parse::<SocketAddr>().unwrap(),
        spi_in: 0xc000_0001,
        spi_out: 0xc000_0002,
        suite: gcm256(),
        encr_in: Secret::new(vec![1; 36]),
        integ_in: Secret::new(vec![]),
        encr_out: Secret::new(vec![2; 36]),
        integ_out: Secret::new(vec![]),
        local_ts: lts,
        vips: Vec::new(),
        remote_ts: rts,
        esn: false,
        sa_opts: Default::default(),
        ipcomp: None,
        initiator: true,
        reqid: 9,
        limits: Default::default(),
        encap: false,
        kernel: Default::default(),
    }
}

#[test]
fn ranges_split_into_the_fewest_prefixes() {
    let r = |a: &str, b: &str| range_to_prefixes(a.parse().unwrap(), b.parse().unwrap());
    assert_eq!(r("10.1.0.0", "10.1.0.255"), vec![pfx("10.1.0.0/24")]);
    assert_eq!(r("0.0.0.0", "255.255.255.255"), vec![pfx("0.0.0.0/0")]);
    assert_eq!(r("192.0.2.7", "192.0.2.7"), vec![pfx("192.0.2.7/32")]);
    assert_eq!(
        r("10.0.0.10", "10.0.0.20"),
        vec![
            pfx("10.0.0.10/31"),
            pfx("10.0.0.12/30"),
            pfx("10.0.0.16/30"),
            pfx("10.0.0.20/32")
        ]
    );
    assert_eq!(
        r("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        vec![pfx("::/0")]
    );
    assert_eq!(
        r("2001:db8::", "2001:db8::1:ffff"),
        vec![pfx("2001:db8::/111")]
    );
    assert_eq!(
        r("255.255.255.254", "255.255.255.255"),
        vec![pfx("255.255.255.254/31")]
    );
    // Reversed or mixed: nothing, no panic.
    assert!(r("10.0.0.2", "10.0.0.1").is_empty());
    assert!(r("10.0.0.1", "::1").is_empty());
}

#[test]
fn tunnel_mode_installs_two_sas_and_out_in_fwd_policies() {
    let c = install(
        Mode::Tunnel,
        "192.0.2.1:500",
        "192.0.2.2:500",
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    let p = plan_install(&c).unwrap();
    let (me, peer): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    // Inbound: from the peer to us, our SPI, the inbound key.
    assert_eq!(
        (p.sa_in.src, p.sa_in.dst, p.sa_in.spi),
        (peer, me, 0xc000_0001)
    );
    assert_eq!(
        (p.sa_out.src, p.sa_out.dst, p.sa_out.spi),
        (me, peer, 0xc000_0002)
    );
    for sa in [&p.sa_in, &p.sa_out] {
        assert_eq!(sa.protocol, Protocol::Esp);
        assert_eq!(sa.mode, xfrm_netlink::Mode::Tunnel);
        assert_eq!(sa.reqid, 9);
        assert_eq!(sa.replay_window, 32);
        assert!(!sa.esn);
    }
    match (&p.sa_in.transforms, &p.sa_out.transforms) {
        (Transforms::Aead { alg: a, key: k }, Transforms::Aead { alg: b, key: l }) => {
            assert_eq!(
                (*a, *b),
                (
                    AeadAlg::AesGcm(AesKey::Aes256, Icv::Icv16),
                    AeadAlg::AesGcm(AesKey::Aes256, Icv::Icv16)
                )
            );
            assert_eq!(k.as_bytes(), &[1; 36][..]);
            assert_eq!(l.as_bytes(), &[2; 36][..]);
        }
        other => panic!("{other:?}"),
    }
    let dirs: Vec<Direction> = p.policies.iter().map(|p| p.direction).collect();
    assert_eq!(dirs, vec![Direction::Out, Direction::In, Direction::Fwd]);
    let out = &p.policies[0];
    assert_eq!(
        (out.selector.src, out.selector.dst),
        (pfx("10.1.0.0/24"), pfx("10.2.0.0/24"))
    );
    assert_eq!(
        out.templates,
        vec![Template::tunnel(Protocol::Esp, 9, me, peer)]
    );
    for inb in &p.policies[1..] {
        assert_eq!(
            (inb.selector.src, inb.selector.dst),
            (pfx("10.2.0.0/24"), pfx("10.1.0.0/24"))
        );
        assert_eq!(
            inb.templates,
            vec![Template::tunnel(Protocol::Esp, 9, peer, me)]
        );
    }
}

#[test]
fn transport_mode_has_no_fwd_policy_and_transport_templates() {
    let c = install(
        Mode::Transport,
        "[2001:db8::1]:500",
        "[2001:db8::2]:500",
        vec![v6("2001:db8::1", "2001:db8::1")],
        vec![v6("2001:db8::2", "2001:db8::2")],
    );
    let mut c = c;
    c.reqid = 4;
    let p = plan_install(&c).unwrap();
    assert_eq!(p.sa_in.mode, xfrm_netlink::Mode::Transport);
    assert_eq!(p.policies.len(), 2);
    assert_eq!(p.policies[0].direction, Direction::Out);
    assert_eq!(p.policies[1].direction, Direction::In);
    for pol in &p.policies {
        assert_eq!(pol.templates, vec![Template::transport(Protocol::Esp, 4)]);
    }
    assert_eq!(p.policies[0].selector.src, pfx("2001:db8::1/128"));
    assert_eq!(p.policies[0].selector.dst, pfx("2001:db8::2/128"));
}

#[test]
fn every_selector_pair_of_one_family_gets_policies() {
    let c = install(
        Mode::Tunnel,
        "192.0.2.1:500",
        "192.0.2.2:500",
        vec![
            v4("10.1.0.0", "10.1.0.255"),
            v6("2001:db8:1::", "2001:db8:1::ffff"),
            v4("10.3.0.0", "10.3.0.255"),
        ],
        vec![
            v4("10.2.0.0", "10.2.0.255"),
            v6("2001:db8:2::", "2001:db8:2::ffff"),
        ],
    );
    let p = plan_install(&c).unwrap();
    // 2 IPv4 × 1 IPv4 + 1 IPv6 × 1 IPv6 pairs, 3 policies each.
    assert_eq!(p.policies.len(), 9);
    let outs: Vec<(IpPrefix, IpPrefix)> = p
        .policies
        .iter()
        .filter(|p| p.direction == Direction::Out)
        .map(|p| (p.selector.src, p.selector.dst))
        .collect();
    assert_eq!(
        outs,
        vec![
            (pfx("10.1.0.0/24"), pfx("10.2.0.0/24")),
            (pfx("2001:db8:1::/112"), pfx("2001:db8:2::/112")),
            (pfx("10.3.0.0/24"), pfx("10.2.0.0/24")),
        ]
    );
    // IPv6 inner traffic through an IPv4 tunnel: endpoints stay IPv4.
    let v6out = p
        .policies
        .iter()
        .find(|p| p.selector.src == pfx("2001:db8:1::/112"))
        .unwrap();
    assert_eq!(
        v6out.templates[0].tunnel,
        Some(("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()))
    );
}

#[test]
fn protocols_and_ports_reach_the_selectors() {
    let mut l = AddressRange::any("10.1.0.5".parse().unwrap(), "10.1.0.5".parse().unwrap());
    l.ip_protocol = 6;
    let mut r = AddressRange::any("10.2.0.0".parse().unwrap(), "10.2.0.255".parse().unwrap());
    r.ip_protocol = 6;
    r.start_port = 443;
    r.end_port = 443;
    let pols = plan_policies(&PolicyPlan {
        mode: Mode::Tunnel,
        proto: Protocol::Esp,
        local: "192.0.2.1".parse().unwrap(),
        remote: "192.0.2.2".parse().unwrap(),
        local_ts: &[TrafficSelector::Ipv4(l)],
        remote_ts: &[TrafficSelector::Ipv4(r)],
        reqid: 1,
        kernel: &KernelPolicy::default(),
        ifindex: None,
        routed: false,
    })
    .unwrap();
    let out = &pols[0];
    assert_eq!(out.selector.proto, Some(6));
    assert_eq!(out.selector.src_port, PortMatch::ANY);
    assert_eq!(out.selector.dst_port, PortMatch::exact(443));
    let inb = &pols[1];
    assert_eq!(inb.selector.src_port, PortMatch::exact(443));
    assert_eq!(inb.selector.dst_port, PortMatch::ANY);
    // More specific selectors win (lower priority value).
    let wide = plan_policies(&PolicyPlan {
        mode: Mode::Tunnel,
        proto: Protocol::Esp,
        local: "192.0.2.1".parse().unwrap(),
        remote: "192.0.2.2".parse().unwrap(),
        local_ts: &[v4("10.1.0.0", "10.1.255.255")],
        remote_ts: &[v4("10.2.0.0", "10.2.255.255")],
        reqid: 1,
        kernel: &KernelPolicy::default(),
        ifindex: None,
        routed: false,
    })
    .unwrap();
    assert!(out.priority < wide[0].priority);
    // Aligned port blocks are masks.
    assert_eq!(
        port_match(1024, 2047),
        (
            PortMatch {
                port: 1024,
                mask: 0xfc00
            },
            false
        )
    );
    assert_eq!(port_match(65535, 0), (PortMatch::ANY, false));
    assert_eq!(port_match(0, 65535), (PortMatch::ANY, false));
}

/// Port ranges that are not one block get charon's smallest covering
/// block (`ts2ports`), not any port.
#[test]
fn port_ranges_widen_to_the_smallest_covering_mask() {
    let m = |port, mask| PortMatch { port, mask };
    // 1000-2000 share the top five bits (zero): 0-2047.
    assert_eq!(port_match(1000, 2000), (m(0, 0xf800), true));
    // 8080-8090 share the top twelve bits: 8080-8095.
    assert_eq!(port_match(8080, 8090), (m(8080, 0xfff0), true));
    // 5000-5001: one aligned pair is exact.
    assert_eq!(port_match(5000, 5001), (m(5000, 0xfffe), false));
    // 5001-5002 straddle a boundary of two: 5000-5003.
    assert_eq!(port_match(5001, 5002), (m(5000, 0xfffc), true));
    // 1-65535 shares no bit: any port.
    assert_eq!(port_match(1, 65535), (PortMatch::ANY, true));
    assert_eq!(port_match(443, 443), (PortMatch::exact(443), false));
    // Every result covers its range, and is the smallest block that does.
    for (a, b) in [
        (1000u16, 2000u16),
        (1, 2),
        (3, 4),
        (32767, 32768),
        (60000, 65535),
    ] {
        let (p, _) = port_match(a, b);
        let last = p.port | !p.mask;
        assert!(p.port <= a && b <= last, "{a}-{b}: {p:?}");
        // One bit more of mask would leave out a or b.
        let tighter = p.mask >> 1 | 0x8000;
        assert_ne!(
            a & tighter,
            b & tighter,
            "{a}-{b}: {p:?} is not the smallest"
        );
    }
    // The planned policy carries the block, and its priority counts the
    // mask's bits as charon's get_priority does.
    let mut r = AddressRange::any("10.2.0.0".parse().unwrap(), "10.2.0.255".parse().unwrap());
    r.ip_protocol = 6;
    r.start_port = 8080;
    r.end_port = 8090;
    let pols = plan_policies(&PolicyPlan {
        mode: Mode::Tunnel,
        proto: Protocol::Esp,
        local: "192.0.2.1".parse().unwrap(),
        remote: "192.0.2.2".parse().unwrap(),
        local_ts: &[v4("10.1.0.0", "10.1.0.255")],
        remote_ts: &[TrafficSelector::Ipv4(r)],
        reqid: 1,
        kernel: &KernelPolicy::default(),
        ifindex: None,
        routed: false,
    })
    .unwrap();
    let out = pols.iter().find(|p| p.direction == Direction::Out).unwrap();
    assert_eq!(out.selector.dst_port, m(8080, 0xfff0));
    assert_eq!(out.selector.src_port, PortMatch::ANY);
    let inb = pols.iter().find(|p| p.direction == Direction::In).unwrap();
    assert_eq!(inb.selector.src_port, m(8080, 0xfff0));
    assert_eq!(
        out.priority,
        2 * 200_000 - 512 * 48 - 256 - 4 * 12 - 1,
        "12 mask bits count as charon counts them"
    );
}

#[test]
fn icmp_type_and_code_go_to_the_ports() {
    let mut r = AddressRange::any("10.2.0.0".parse().unwrap(), "10.2.0.255".parse().unwrap());
    r.ip_protocol = 1;
    r.start_port = 8 << 8;
    r.end_port = (8 << 8) | 0xff;
    let pols = plan_policies(&PolicyPlan {
        mode: Mode::Tunnel,
        proto: Protocol::Esp,
        local: "192.0.2.1".parse().unwrap(),
        remote: "192.0.2.2".parse().unwrap(),
        local_ts: &[v4("10.1.0.0", "10.1.0.255")],
        remote_ts: &[TrafficSelector::Ipv4(r)],
        reqid: 1,
        kernel: &KernelPolicy::default(),
        ifindex: None,
        routed: false,
    })
    .unwrap();
    assert_eq!(pols[0].selector.proto, Some(1));
    assert_eq!(pols[0].selector.src_port, PortMatch::exact(8));
    assert_eq!(pols[0].selector.dst_port, PortMatch::ANY);
}

#[test]
fn icmp_selectors_as_charon_installs_them() {
    let icmp = |proto: u8, start: u16, end: u16| {
        let mut r = AddressRange::any("10.2.0.0".parse().unwrap(), "10.2.0.255".parse().unwrap());
        r.ip_protocol = proto;
        r.start_port = start;
        r.end_port = end;
        TrafficSelector::Ipv4(r)
    };
    let ports = |src: &TrafficSelector, dst: &TrafficSelector| {
        let sel = selectors(src, dst).unwrap();
        (sel[0].proto, sel[0].src_port, sel[0].dst_port)
    };
    let local = v4("10.1.0.0", "10.1.0.255");
    let exact = PortMatch::exact;
    // [icmp/8] and [icmp/2048]: type 8, any code (code 0 is any code).
    assert_eq!(
        ports(&local, &icmp(1, 0x0800, 0x0800)),
        (Some(1), exact(8), PortMatch::ANY)
    );
    // [icmp/769]: type 3 code 1; from either side.
    assert_eq!(
        ports(&icmp(1, 0x0301, 0x0301), &local),
        (Some(1), exact(3), exact(1))
    );
    // [ipv6-icmp/128]: echo request, IPv6.
    let v6 = |start: u16, end: u16, proto: u8| {
        let mut r = AddressRange::any(
            "2001:db8::".parse().unwrap(),
            "2001:db8::ff".parse().unwrap(),
        );
        r.ip_protocol = proto;
        r.start_port = start;
        r.end_port = end;
        TrafficSelector::Ipv6(r)
    };
    assert_eq!(
        ports(&v6(0, 65535, 0), &v6(0x8000, 0x8000, 58)),
        (Some(58), exact(128), PortMatch::ANY)
    );
    // A range of types is every type.
    assert_eq!(
        ports(&local, &icmp(1, 0x0300, 0x0400)),
        (Some(1), PortMatch::ANY, PortMatch::ANY)
    );
    // Type 0 (echo reply) stays exact (charon's mask would make it any).
    assert_eq!(
        ports(&local, &icmp(1, 0, 0)),
        (Some(1), exact(0), PortMatch::ANY)
    );
}

#[test]
fn algorithms_map_to_kernel_transforms() {
    let suite = |encr, integ, p| ChildSuite {
        protocol: p,
        encr,
        integ,
        ke: None,
        esn: false,
    };
    let esp = ProtocolId::ESP;
    let t = transforms(
        &suite(Some((EncrId::AES_GCM_16, Some(128))), None, esp),
        &[0; 20],
        &[],
    )
    .unwrap();
    assert!(matches!(
        t,
        Transforms::Aead {
            alg: AeadAlg::AesGcm(AesKey::Aes128, Icv::Icv16),
            ..
        }
    ));
    let t = transforms(
        &suite(Some((EncrId::CHACHA20_POLY1305, None)), None, esp),
        &[0; 36],
        &[],
    )
    .unwrap();
    assert!(matches!(
        t,
        Transforms::Aead {
            alg: AeadAlg::ChaCha20Poly1305,
            ..
        }
    ));
    for (i, alg) in [
        (IntegId::HMAC_SHA1_96, IntegrityAlg::HmacSha1_96),
        (IntegId::HMAC_SHA2_256_128, IntegrityAlg::HmacSha256_128),
        (IntegId::HMAC_SHA2_384_192, IntegrityAlg::HmacSha384_192),
        (IntegId::HMAC_SHA2_512_256, IntegrityAlg::HmacSha512_256),
    ] {
        let t = transforms(
            &suite(Some((EncrId::AES_CBC, Some(256))), Some(i), esp),
            &[3; 32],
            &[4; 20],
        )
        .unwrap();
        match t {
            Transforms::CipherIntegrity {
                cipher,
                cipher_key,
                integrity,
                integrity_key,
            } => {
                assert_eq!(
                    (cipher, integrity),
                    (CipherAlg::AesCbc(AesKey::Aes256), alg)
                );
                assert_eq!(
                    (cipher_key.as_bytes()[0], integrity_key.as_bytes()[0]),
                    (3, 4)
                );
            }
            other => panic!("{other:?}"),
        }
        let t = transforms(&suite(None, Some(i), ProtocolId::AH), &[], &[5; 32]).unwrap();
        assert!(matches!(t, Transforms::IntegrityOnly { integrity, .. } if integrity == alg));
    }
    // Every ESP AEAD: AES-GCM and AES-CCM with 8/12/16-octet ICVs and
    // AES-GMAC, each key size.
    for (bits, key) in [
        (128, AesKey::Aes128),
        (192, AesKey::Aes192),
        (256, AesKey::Aes256),
    ] {
        for (encr, alg) in [
            (EncrId::AES_GCM_8, AeadAlg::AesGcm(key, Icv::Icv8)),
            (EncrId::AES_GCM_12, AeadAlg::AesGcm(key, Icv::Icv12)),
            (EncrId::AES_GCM_16, AeadAlg::AesGcm(key, Icv::Icv16)),
            (EncrId::AES_CCM_8, AeadAlg::AesCcm(key, Icv::Icv8)),
            (EncrId::AES_CCM_12, AeadAlg::AesCcm(key, Icv::Icv12)),
            (EncrId::AES_CCM_16, AeadAlg::AesCcm(key, Icv::Icv16)),
            (EncrId::NULL_AUTH_AES_GMAC, AeadAlg::AesGmac(key)),
        ] {
            let s = suite(Some((encr, Some(bits))), None, esp);
            let len = s.encr_key_len().unwrap();
            assert_eq!(len, alg.key_len(), "{encr} {bits}");
            let t = transforms(&s, &vec![7; len], &[]).unwrap();
            assert!(
                matches!(t, Transforms::Aead { alg: a, ref key } if a == alg && key.len() == len),
                "{encr} {bits}: {t:?}"
            );
            // An AEAD with an integrity algorithm is refused.
            let s = suite(Some((encr, Some(bits))), Some(IntegId::HMAC_SHA1_96), esp);
            assert!(transforms(&s, &[], &[]).is_err());
        }
        for (encr, cipher) in [
            (EncrId::AES_CBC, CipherAlg::AesCbc(key)),
            (EncrId::AES_CTR, CipherAlg::AesCtr(key)),
        ] {
            let s = suite(Some((encr, Some(bits))), Some(IntegId::AES_XCBC_96), esp);
            assert_eq!(s.encr_key_len().unwrap(), cipher.key_len());
            let t = transforms(&s, &[1; 36], &[2; 16]).unwrap();
            assert!(
                matches!(t, Transforms::CipherIntegrity { cipher: c, integrity, .. }
                    if c == cipher && integrity == IntegrityAlg::AesXcbc96),
                "{t:?}"
            );
        }
    }
    for (encr, cipher) in [
        (EncrId::TRIPLE_DES, CipherAlg::TripleDesCbc),
        (EncrId::NULL, CipherAlg::Null),
    ] {
        let s = suite(Some((encr, None)), Some(IntegId::HMAC_MD5_96), esp);
        assert_eq!(s.encr_key_len().unwrap(), cipher.key_len());
        let t = transforms(&s, &[], &[]).unwrap();
        assert!(matches!(t, Transforms::CipherIntegrity { cipher: c, .. } if c == cipher));
    }
    for (i, alg) in [
        (IntegId::HMAC_MD5_96, IntegrityAlg::HmacMd5_96),
        (IntegId::HMAC_MD5_128, IntegrityAlg::HmacMd5_128),
        (IntegId::HMAC_SHA1_160, IntegrityAlg::HmacSha1_160),
        (IntegId(AUTH_HMAC_SHA2_256_96), IntegrityAlg::HmacSha256_96),
        (IntegId::AES_XCBC_96, IntegrityAlg::AesXcbc96),
        (IntegId::AES_CMAC_96, IntegrityAlg::AesCmac96),
    ] {
        for p in [esp, ProtocolId::AH] {
            let encr = (p == esp).then_some((EncrId::AES_CBC, Some(128)));
            let s = suite(encr, Some(i), p);
            assert_eq!(s.integ_key_len().unwrap(), alg.key_len(), "{i}");
            let t = transforms(&s, &[0; 16], &[0; 16]).unwrap();
            let got = match t {
                Transforms::CipherIntegrity { integrity, .. }
                | Transforms::IntegrityOnly { integrity, .. } => integrity,
                other => panic!("{other:?}"),
            };
            assert_eq!(got, alg);
        }
    }
    // Unsupported: a clear error, no panic.
    for (encr, integ) in [
        (Some((EncrId::AES_GCM_16, Some(160))), None),
        (Some((EncrId::AES_CBC, Some(128))), None),
        (
            Some((EncrId::CAMELLIA_CBC, Some(128))),
            Some(IntegId::HMAC_SHA1_96),
        ),
        (
            Some((EncrId::AES_CBC, Some(128))),
            Some(IntegId::AES_128_GMAC),
        ),
        (None, None),
    ] {
        assert!(transforms(&suite(encr, integ, esp), &[], &[]).is_err());
    }
    assert!(
        transforms(
            &suite(
                Some((EncrId::NULL, None)),
                Some(IntegId::HMAC_SHA1_96),
                ProtocolId::AH
            ),
            &[],
            &[]
        )
        .is_err()
    );
}

#[test]
fn esn_gets_a_window_and_bad_installs_are_errors() {
    let mut c = install(
        Mode::Tunnel,
        "192.0.2.1:500",
        "192.0.2.2:500",
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    c.esn = true;
    c.sa_opts.replay_window = 0;
    let p = plan_install(&c).unwrap();
    assert!(p.sa_in.esn && p.sa_in.replay_window >= 32);
    // Mixed outer families.
    c.remote = "[2001:db8::2]:500".parse().unwrap();
    assert!(plan_install(&c).is_err());
    // Selectors with no pair of one family.
    let c = install(
        Mode::Tunnel,
        "192.0.2.1:500",
        "192.0.2.2:500",
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v6("2001:db8::", "2001:db8::ffff")],
    );
    assert!(plan_install(&c).is_err());
}

#[test]
fn byte_and_packet_limits_become_soft_and_hard_lifetimes_of_both_sas() {
    let mut c = install(
        Mode::Tunnel,
        "192.0.2.1:500",
        "192.0.2.2:500",
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    let p = plan_install(&c).unwrap();
    assert_eq!(p.sa_in.lifetimes, xfrm_netlink::Lifetimes::default());
    c.limits = ike::sa::KernelLimits {
        soft_bytes: Some(1000),
        hard_bytes: Some(1100),
        soft_packets: None,
        hard_packets: Some(50),
        ..Default::default()
    };
    let p = plan_install(&c).unwrap();
    for sa in [&p.sa_in, &p.sa_out] {
        assert_eq!(sa.lifetimes.soft.bytes, Some(1000));
        assert_eq!(sa.lifetimes.hard.bytes, Some(1100));
        assert_eq!(sa.lifetimes.soft.packets, None);
        assert_eq!(sa.lifetimes.hard.packets, Some(50));
        assert_eq!(sa.lifetimes.soft.add_seconds, None);
    }
}

/// The kernel's safety net: both SAs get charon's soft and hard limits of
/// time since they were added (`soft_add_expires_seconds` = rekey time,
/// `hard_add_expires_seconds` = life time), none of time since first use;
/// the policies get none.
#[test]
fn time_limits_become_add_expiries_of_both_sas() {
    let mut c = install(
        Mode::Tunnel,
        "192.0.2.1:500",
        "192.0.2.2:500",
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    c.limits = ike::sa::ChildLifetimes::strongswan().kernel_limits();
    let p = plan_install(&c).unwrap();
    for sa in [&p.sa_in, &p.sa_out] {
        assert_eq!(sa.lifetimes.soft.add_seconds, Some(3600));
        assert_eq!(sa.lifetimes.hard.add_seconds, Some(3960));
        assert_eq!(sa.lifetimes.soft.use_seconds, None);
        assert_eq!(sa.lifetimes.hard.use_seconds, None);
        assert_eq!(sa.lifetimes.soft.bytes, None);
    }
    assert!(
        p.policies
            .iter()
            .all(|pol| pol.lifetimes == xfrm_netlink::Lifetimes::default())
    );
}

/// The engine's count of a Child SA's kernel policies (its limit,
/// `ike::sa::policy_count`) is what the plan installs, in tunnel mode.
#[test]
fn the_engines_policy_count_is_what_the_plan_installs() {
    let tcp = {
        let mut r = AddressRange::any("10.2.0.0".parse().unwrap(), "10.2.0.9".parse().unwrap());
        r.ip_protocol = 6;
        r.start_port = 1000;
        r.end_port = 2000;
        TrafficSelector::Ipv4(r)
    };
    let v6 = TrafficSelector::Ipv6(AddressRange::any(
        "fd00::1".parse().unwrap(),
        "fd00::ff".parse().unwrap(),
    ));
    let cases: Vec<(Vec<TrafficSelector>, Vec<TrafficSelector>)> = vec![
        (
            vec![v4("10.1.0.0", "10.1.0.255")],
            vec![v4("10.2.0.0", "10.2.0.255")],
        ),
        (
            vec![v4("10.1.0.1", "10.1.0.254")],
            vec![v4("10.2.0.3", "10.2.7.200"), tcp],
        ),
        (
            vec![v4("10.1.0.0", "10.1.0.0"), v6.clone()],
            vec![v6.clone(), v4("0.0.0.1", "255.255.255.254")],
        ),
    ];
    for (local, remote) in cases {
        for fwd_out in [false, true] {
            let kernel = KernelPolicy {
                fwd_out,
                ..KernelPolicy::default()
            };
            let planned = plan_policies(&PolicyPlan {
                mode: Mode::Tunnel,
                proto: Protocol::Esp,
                local: "192.0.2.1".parse().unwrap(),
                remote: "192.0.2.2".parse().unwrap(),
                local_ts: &local,
                remote_ts: &remote,
                reqid: 1,
                kernel: &kernel,
                ifindex: None,
                routed: false,
            })
            .unwrap();
            let per_pair = 3 + u64::from(fwd_out);
            assert_eq!(
                planned.len() as u64,
                ike::sa::policy_count(&local, &remote, per_pair),
                "{local:?} {remote:?} fwd_out {fwd_out}"
            );
        }
    }
}

#[test]
fn encapsulated_children_get_esp_in_udp_with_the_ike_ports() {
    let mut c = install(
        Mode::Tunnel,
        "10.0.0.5:4500",
        "198.51.100.1:4500",
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    assert!(plan_install(&c).unwrap().sa_in.encap.is_none());
    c.encap = true;
    c.remote = "198.51.100.1:4501".parse().unwrap();
    let p = plan_install(&c).unwrap();
    // Inbound: from the peer's port to ours; outbound the other way.
    assert_eq!(p.sa_in.encap, Some(UdpEncap::new(4501, 4500)));
    assert_eq!(p.sa_out.encap, Some(UdpEncap::new(4500, 4501)));
}

/// A tunnel-mode install to a peer behind a NAT (UDP encapsulation).
fn behind_nat_install() -> ChildInstall {
    let mut c = install(
        Mode::Tunnel,
        "198.51.100.1:4500",
        "203.0.113.1:30001",
        vec![v4("10.2.0.0", "10.2.0.255")],
        vec![v4("10.1.0.0", "10.1.0.255")],
    );
    c.encap = true;
    c
}

#[test]
fn a_moved_peer_gets_new_encap_ports_and_tunnel_endpoints() {
    let c = behind_nat_install();
    let plan = plan_install(&c).unwrap();
    let me: IpAddr = "198.51.100.1".parse().unwrap();
    let old_peer: IpAddr = "203.0.113.1".parse().unwrap();
    // Only the port changed: same addresses, new ports, keys and SPIs kept.
    let u = ChildUpdate {
        id: c.id,
        ike_sa: c.ike_sa,
        reqid: c.reqid,
        local: c.local,
        remote: "203.0.113.1:30002".parse().unwrap(),
        encap: true,
    };
    let sin = moved_sa(&plan.sa_in, true, &u);
    let sout = moved_sa(&plan.sa_out, false, &u);
    assert_eq!(sin.encap, Some(UdpEncap::new(30002, 4500)));
    assert_eq!(sout.encap, Some(UdpEncap::new(4500, 30002)));
    assert_eq!((sin.src, sin.dst), (plan.sa_in.src, plan.sa_in.dst));
    assert_eq!((sout.spi, sin.spi), (plan.sa_out.spi, plan.sa_in.spi));
    assert_eq!(sout.reqid, plan.sa_out.reqid);
    assert_eq!(
        moved_policies(&plan.policies, (me, old_peer), (me, old_peer)),
        plan.policies
    );
    // Another public address: SAs and templates move.
    let peer: IpAddr = "203.0.113.9".parse().unwrap();
    let u = ChildUpdate {
        remote: SocketAddr::new(peer, 40000),
        ..u
    };
    let sout = moved_sa(&plan.sa_out, false, &u);
    let sin = moved_sa(&plan.sa_in, true, &u);
    assert_eq!((sout.src, sout.dst), (me, peer));
    assert_eq!((sin.src, sin.dst), (peer, me));
    assert_eq!(sin.encap, Some(UdpEncap::new(40000, 4500)));
    let p = moved_policies(&plan.policies, (me, old_peer), (me, peer));
    assert_eq!(
        p[0].templates,
        vec![Template::tunnel(Protocol::Esp, c.reqid, me, peer)]
    );
    assert_eq!(
        p[1].templates,
        vec![Template::tunnel(Protocol::Esp, c.reqid, peer, me)]
    );
    // Without encapsulation none is left.
    let u = ChildUpdate { encap: false, ..u };
    assert_eq!(moved_sa(&plan.sa_out, false, &u).encap, None);
}

#[test]
fn a_rekeyed_child_keeps_its_inbound_sas_for_a_while_and_only_those() {
    let local: IpAddr = "192.0.2.1".parse().unwrap();
    let sa = |dst: &str, spi| SaId {
        dst: dst.parse().unwrap(),
        spi,
        protocol: Protocol::Esp,
        mark: None,
    };
    let sas = [sa("192.0.2.1", 0xc000_0001), sa("192.0.2.2", 0xc000_0002)];
    // Replaced by a rekey: the outbound SA goes now, the inbound one later.
    let (now, later) = split_removal(&sas, local, true);
    assert_eq!(now, vec![sas[1]]);
    assert_eq!(later, vec![sas[0]]);
    // Deleted for good (or no delay): both now.
    let (now, later) = split_removal(&sas, local, false);
    assert_eq!(now, sas.to_vec());
    assert!(later.is_empty());
    // Only SAs toward us are inbound ones (transport mode to another host
    // of the same peer has the same shape).
    let (now, later) = split_removal(&sas, "192.0.2.9".parse().unwrap(), true);
    assert_eq!((now.len(), later.len()), (2, 0));
}

#[test]
fn a_moved_child_is_planned_again_from_what_it_was_installed_from() {
    // The bridge keeps the install and the SAs' addresses, not the
    // kernel configurations; made again, they must be what `moved_sa` and
    // `moved_policies` made of the configurations as installed.
    let c = behind_nat_install();
    let plan = plan_install(&c).unwrap();
    let src = SaSource {
        keys: SaKeys::of(&c),
        sa_in: Some(SaAddrs::of(&c)),
        sa_out: Some(SaAddrs::of(&c)),
    };
    let dbg = |v: &[(bool, SaConfig)]| format!("{v:?}");
    let as_installed = vec![(true, plan.sa_in.clone()), (false, plan.sa_out.clone())];
    assert_eq!(dbg(&src.sa_configs().unwrap()), dbg(&as_installed));
    let u = ChildUpdate {
        id: c.id,
        ike_sa: c.ike_sa,
        reqid: c.reqid,
        local: c.local,
        remote: "203.0.113.9:40000".parse().unwrap(),
        encap: true,
    };
    let to = SaAddrs {
        local: u.local,
        remote: u.remote,
        encap: u.encap,
    };
    let moved = SaSource {
        sa_in: Some(to),
        sa_out: Some(to),
        ..src.clone()
    };
    assert_eq!(
        dbg(&moved.sa_configs().unwrap()),
        dbg(&[
            (true, moved_sa(&plan.sa_in, true, &u)),
            (false, moved_sa(&plan.sa_out, false, &u))
        ])
    );
    // Only the outbound SA in (a rekey responder's before the delete).
    let out_only = SaSource { sa_in: None, ..src };
    assert_eq!(
        dbg(&out_only.sa_configs().unwrap()),
        dbg(&[(false, plan.sa_out.clone())])
    );
    // Policies: planned again from their source, and moved.
    let src = PolicySource::of(&c, None).unwrap();
    assert_eq!(src.policies().unwrap(), plan.policies);
    let (old, to) = ((c.local.ip(), c.remote.ip()), (u.local.ip(), u.remote.ip()));
    let m = moved_addr(old, to);
    let moved_src = PolicySource {
        local: m(src.local),
        remote: m(src.remote),
        ..src.clone()
    };
    assert_eq!(
        moved_src.policies().unwrap(),
        moved_policies(&plan.policies, old, to)
    );
    assert_ne!(moved_src.policies().unwrap(), plan.policies);
}
