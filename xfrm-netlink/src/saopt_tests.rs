//! Unit tests of the SA options (header flags, TFC padding) and of IPComp
//! SAs: the request bytes as the kernel reads them. No kernel needed.

use std::net::IpAddr;

use netlink_packet_xfrm::{self as nx, XfrmMessage};

use crate::codec::{self, Decoded};
use crate::*;

const TAG: u32 = DEFAULT_OWNER_TAG;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn esp() -> SaConfig {
    SaConfig::new(
        ip("192.0.2.1"),
        ip("198.51.100.1"),
        Protocol::Esp,
        0xc000_0001,
        Mode::Tunnel,
        Transforms::Aead {
            alg: AeadAlg::AesGcm(AesKey::Aes128, Icv::Icv16),
            key: Key::new(vec![7; 20]),
        },
    )
    .replay_window(32)
}

/// The netlink attributes after `xfrm_usersa_info` (224 octets): (type,
/// value) in the order sent.
fn attrs(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = &bytes[16 + 224..];
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let ty = u16::from_ne_bytes([rest[2], rest[3]]);
        out.push((ty, rest[4..len].to_vec()));
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    out
}

/// `xfrm_usersa_info.flags`: after the selector (56), id (24), saddr
/// (16), lifetime config (64), current lifetime (32), stats (12), seq,
/// reqid (4 each), family (2), mode and replay window (1 each).
const FLAGS_AT: usize = 16 + 216;

fn bytes(sa: &SaConfig) -> Vec<u8> {
    codec::encode(sa.to_message(TAG, false).unwrap(), 0, 1).to_vec()
}

#[test]
fn default_options_add_no_flag_and_no_attribute() {
    let b = bytes(&esp());
    assert_eq!(b[FLAGS_AT], nx::XFRM_STATE_AF_UNSPEC);
    let types: Vec<u16> = attrs(&b).iter().map(|(t, _)| *t).collect();
    assert_eq!(types, vec![nx::XFRMA_ALG_AEAD]);
}

#[test]
fn options_are_the_flags_and_attributes_strongswan_sends() {
    let sa = esp().options(SaOptions {
        no_ecn: true,
        decap_dscp: true,
        no_pmtu_discovery: true,
        dont_encap_dscp: true,
        tfc_padding: 1400,
    });
    let b = bytes(&sa);
    // NOECN 1, DECAP_DSCP 2, NOPMTUDISC 4, AF_UNSPEC 32.
    assert_eq!(b[FLAGS_AT], 1 | 2 | 4 | 32);
    let a = attrs(&b);
    assert!(
        a.contains(&(nx::XFRMA_SA_EXTRA_FLAGS, 1u32.to_ne_bytes().to_vec())),
        "{a:?}"
    );
    assert!(
        a.contains(&(nx::XFRMA_TFCPAD, 1400u32.to_ne_bytes().to_vec())),
        "{a:?}"
    );
    // Type numbers as in linux/xfrm.h.
    assert_eq!((nx::XFRMA_TFCPAD, nx::XFRMA_SA_EXTRA_FLAGS), (22, 24));

    // Read back as the kernel reports the SA.
    let mut decoded = codec::decode_datagram(&b);
    let Some(Decoded::Xfrm { msg, .. }) = decoded.pop() else {
        panic!("{decoded:?}")
    };
    let XfrmMessage::AddSa(mut m) = *msg else {
        panic!()
    };
    let info = SaInfo::from_kernel(&m.user_sa_info, &mut m.nlas, TAG).unwrap();
    assert_eq!(info.options, sa.options);
}

#[test]
fn tfc_padding_is_for_esp_only() {
    let ah = SaConfig::new(
        ip("192.0.2.1"),
        ip("198.51.100.1"),
        Protocol::Ah,
        0xc000_0002,
        Mode::Tunnel,
        Transforms::IntegrityOnly {
            integrity: IntegrityAlg::HmacSha256_128,
            integrity_key: Key::new(vec![1; 32]),
        },
    )
    .options(SaOptions {
        tfc_padding: u32::MAX,
        ..SaOptions::default()
    });
    let e = ah.to_message(TAG, false).unwrap_err().to_string();
    assert!(e.contains("TFC padding is for ESP only"), "{e}");
    // The MTU form is u32::MAX on the wire (strongSwan's -1).
    let sa = esp().options(SaOptions {
        tfc_padding: u32::MAX,
        ..SaOptions::default()
    });
    assert!(attrs(&bytes(&sa)).contains(&(nx::XFRMA_TFCPAD, vec![0xff; 4])));
}

fn comp(spi: u32, mode: Mode) -> SaConfig {
    SaConfig::new(
        ip("198.51.100.1"),
        ip("192.0.2.1"),
        Protocol::Comp,
        spi,
        mode,
        Transforms::Compression {
            alg: CompAlg::Deflate,
        },
    )
    .reqid(5)
}

#[test]
fn an_ipcomp_sa_is_deflate_with_the_cpi_as_spi() {
    let b = bytes(&comp(0x1234, Mode::Tunnel));
    let p = &b[16..];
    // id: daddr (16 octets at 56), spi (big endian), proto.
    assert_eq!(&p[72..76], &[0, 0, 0x12, 0x34]);
    assert_eq!(p[76], 108, "IPPROTO_COMP");
    assert_eq!(p[214], nx::XFRM_MODE_TUNNEL);
    assert_eq!(p[215], 0, "no replay window");
    assert_eq!(b[FLAGS_AT], nx::XFRM_STATE_AF_UNSPEC);
    let a = attrs(&b);
    assert_eq!(a.len(), 1, "{a:?}");
    let (ty, v) = &a[0];
    assert_eq!(*ty, nx::XFRMA_ALG_COMP);
    // struct xfrm_algo: name[64], key length in bits (0), no key.
    assert_eq!(&v[..8], b"deflate\0");
    assert!(v[8..64].iter().all(|&x| x == 0));
    assert_eq!(&v[64..68], &0u32.to_ne_bytes());
    assert_eq!(v.len(), 68);

    // Read back: an IPComp SA with its algorithm (so never taken for a
    // larval reservation).
    let mut decoded = codec::decode_datagram(&b);
    let Some(Decoded::Xfrm { msg, .. }) = decoded.pop() else {
        panic!("{decoded:?}")
    };
    let XfrmMessage::AddSa(mut m) = *msg else {
        panic!()
    };
    let info = SaInfo::from_kernel(&m.user_sa_info, &mut m.nlas, TAG).unwrap();
    assert_eq!(info.protocol, Some(Protocol::Comp));
    assert_eq!(info.spi, 0x1234);
    assert_eq!(
        info.algorithms.compression.as_ref().unwrap().name,
        "deflate"
    );
    assert_eq!(info.id().unwrap().protocol, Protocol::Comp);
}

#[test]
fn compression_and_ipcomp_go_together() {
    let wrong = SaConfig::new(
        ip("198.51.100.1"),
        ip("192.0.2.1"),
        Protocol::Esp,
        0xc000_0003,
        Mode::Tunnel,
        Transforms::Compression {
            alg: CompAlg::Deflate,
        },
    );
    assert!(wrong.to_message(TAG, false).is_err());
    let mut esp_keys = comp(0x100, Mode::Tunnel);
    esp_keys.transforms = esp().transforms;
    assert!(esp_keys.to_message(TAG, false).is_err());
    // TFC padding is ESP's only.
    let padded = comp(0x100, Mode::Tunnel).options(SaOptions {
        tfc_padding: 100,
        ..SaOptions::default()
    });
    assert!(padded.to_message(TAG, false).is_err());
    // The CPI reservation: ALLOCSPI for protocol 108.
    let XfrmMessage::AllocSpi(m) = crate::sa::alloc_spi_message(
        ip("198.51.100.1"),
        ip("192.0.2.1"),
        Protocol::Comp,
        0x100,
        0xefff,
        0,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(m.spi_info.info.id.proto, 108);
    assert_eq!((m.spi_info.min, m.spi_info.max), (0x100, 0xefff));
}

#[test]
fn ipcomp_then_esp_templates() {
    let sel = Selector::new(
        IpPrefix::new(ip("10.2.0.0"), 24).unwrap(),
        IpPrefix::new(ip("10.1.0.0"), 24).unwrap(),
    )
    .unwrap();
    let cfg = PolicyConfig::new(sel, Direction::In)
        .template(Template {
            optional: true,
            ..Template::tunnel(Protocol::Comp, 9, ip("198.51.100.1"), ip("192.0.2.1"))
        })
        .template(Template::transport(Protocol::Esp, 9));
    let XfrmMessage::AddPolicy(m) = cfg.to_message(TAG, false).unwrap() else {
        panic!()
    };
    let nx::XfrmAttrs::Template(ts) = &m.nlas[0] else {
        panic!()
    };
    assert_eq!(ts.len(), 2);
    assert_eq!(
        (ts[0].id.proto, ts[0].mode, ts[0].optional, ts[0].reqid),
        (108, nx::XFRM_MODE_TUNNEL, 1, 9)
    );
    assert_eq!(ts[0].saddr, nx::Address::from_ip(&ip("198.51.100.1")));
    assert_eq!(
        (ts[1].id.proto, ts[1].mode, ts[1].optional),
        (nx::IPPROTO_ESP, nx::XFRM_MODE_TRANSPORT, 0)
    );
    assert_eq!(ts[1].saddr, nx::Address::default());
}

#[test]
fn offload_is_the_device_attribute_with_the_inbound_flag() {
    for inbound in [false, true] {
        let sa = esp().offload(Offload {
            ifindex: 0,
            inbound,
        });
        let a = attrs(&bytes(&sa));
        // struct xfrm_user_offload: int ifindex, u8 flags (+3 padding).
        let flags = if inbound { 2u8 } else { 0 };
        assert!(
            a.contains(&(nx::XFRMA_OFFLOAD_DEV, vec![0, 0, 0, 0, flags, 0, 0, 0])),
            "{a:?}"
        );
        assert_eq!(nx::XFRMA_OFFLOAD_DEV, 28);
        let b = bytes(&sa);
        let mut decoded = codec::decode_datagram(&b);
        let Some(Decoded::Xfrm { msg, .. }) = decoded.pop() else {
            panic!("{decoded:?}")
        };
        let XfrmMessage::AddSa(mut m) = *msg else {
            panic!()
        };
        let info = SaInfo::from_kernel(&m.user_sa_info, &mut m.nlas, TAG).unwrap();
        assert_eq!(info.offload, sa.offload);
    }
    // No request, no attribute; an index beyond the kernel's int refused.
    assert!(
        !attrs(&bytes(&esp()))
            .iter()
            .any(|(t, _)| *t == nx::XFRMA_OFFLOAD_DEV)
    );
    let big = esp().offload(Offload {
        ifindex: u32::MAX,
        inbound: false,
    });
    assert!(big.to_message(TAG, false).is_err());
}
