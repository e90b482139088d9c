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
            alg: AeadAlg::AesGcm16_128,
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
