//! Test support: a fake SK cipher and proptest strategies for every payload.

#![allow(clippy::arithmetic_side_effects)]

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::codes::*;
use super::sa::{Proposal, Transform, TransformAttribute};
use super::*;
use crate::error::CryptoError;
use crate::sk::SkCipher;

/// A keyed XOR "cipher" with a 4-octet counter IV, 4-octet blocks with
/// RFC 7296 padding, and an 8-octet keyed FNV-1a checksum over
/// authenticated data, IV and ciphertext. Worthless as crypto; exact as a
/// layout: any change to the authenticated octets or the body fails `open`.
#[derive(Debug, Clone)]
pub(crate) struct FakeCipher {
    pub key: u8,
    pub counter: u32,
}

const IV: usize = 4;
const ICV: usize = 8;
const BLOCK: usize = 4;

impl FakeCipher {
    pub(crate) fn new(key: u8) -> Self {
        Self { key, counter: 1 }
    }

    fn keystream(&self, iv: &[u8], i: usize) -> u8 {
        self.key ^ iv[i % IV] ^ (i as u8).wrapping_mul(31)
    }

    fn checksum(&self, data: &[u8]) -> [u8; ICV] {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(self.key);
        for b in data {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        h.to_be_bytes()
    }
}

impl SkCipher for FakeCipher {
    fn iv_len(&self) -> usize {
        IV
    }
    fn icv_len(&self) -> usize {
        ICV
    }
    fn sealed_len(&self, plain_len: usize) -> usize {
        IV + (plain_len + 1).div_ceil(BLOCK) * BLOCK + ICV
    }
    fn seal(&mut self, out: &mut Vec<u8>, plaintext: &[u8]) -> Result<(), CryptoError> {
        let iv = self.counter.to_be_bytes();
        self.counter += 1;
        let padded = (plaintext.len() + 1).div_ceil(BLOCK) * BLOCK;
        let pad = padded - plaintext.len() - 1;
        let mut p = plaintext.to_vec();
        p.resize(plaintext.len() + pad, 0);
        p.push(pad as u8);
        out.extend_from_slice(&iv);
        out.extend(
            p.iter()
                .enumerate()
                .map(|(i, b)| b ^ self.keystream(&iv, i)),
        );
        let icv = self.checksum(out);
        out.extend_from_slice(&icv);
        Ok(())
    }
    fn open(&self, authenticated: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if body.len() < IV + BLOCK + ICV || !(body.len() - IV - ICV).is_multiple_of(BLOCK) {
            return Err(CryptoError::MalformedCiphertext("length"));
        }
        let (rest, icv) = body.split_at(body.len() - ICV);
        let mut all = authenticated.to_vec();
        all.extend_from_slice(rest);
        if self.checksum(&all)[..] != *icv {
            return Err(CryptoError::IntegrityCheckFailed);
        }
        let (iv, ct) = rest.split_at(IV);
        let mut p: Vec<u8> = ct
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ self.keystream(iv, i))
            .collect();
        let pad = usize::from(p[p.len() - 1]);
        if pad + 1 > p.len() {
            return Err(CryptoError::MalformedCiphertext("padding"));
        }
        p.truncate(p.len() - pad - 1);
        Ok(Zeroizing::new(p))
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

pub(crate) fn header() -> impl Strategy<Value = Header> {
    (
        any::<u64>(),
        any::<u64>(),
        0u8..16,
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(
            |(spi_i, spi_r, minor_version, exchange, flags, message_id)| Header {
                spi_i,
                spi_r,
                minor_version,
                exchange: ExchangeType(exchange),
                flags: Flags(flags),
                message_id,
            },
        )
}

fn attribute() -> impl Strategy<Value = TransformAttribute> {
    // Type 14 (Key Length) in short form would be read back as `key_length`.
    let ty = (0u16..0x8000).prop_filter("not KEY_LENGTH", |t| *t != 14);
    prop_oneof![
        (ty.clone(), any::<u16>()).prop_map(|(attribute_type, value)| TransformAttribute::Short {
            attribute_type,
            value
        }),
        (ty, bytes(8)).prop_map(|(attribute_type, value)| TransformAttribute::Long {
            attribute_type,
            value
        }),
    ]
}

fn transform() -> impl Strategy<Value = Transform> {
    (
        any::<u8>(),
        any::<u16>(),
        proptest::option::of(any::<u16>()),
        vec(attribute(), 0..3),
    )
        .prop_map(|(t, id, key_length, other_attributes)| Transform {
            transform_type: TransformType(t),
            id,
            key_length,
            other_attributes,
        })
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<u8>(),
        any::<u8>(),
        prop_oneof![Just(0usize), Just(4), Just(8)],
        vec(transform(), 0..5),
    )
        .prop_flat_map(|(number, protocol, spi_len, transforms)| {
            vec(any::<u8>(), spi_len).prop_map(move |spi| Proposal {
                number,
                protocol: ProtocolId(protocol),
                spi,
                transforms: transforms.clone(),
            })
        })
}

fn selector() -> impl Strategy<Value = TrafficSelector> {
    let ports = (any::<u8>(), any::<u16>(), any::<u16>());
    prop_oneof![
        (ports, any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|((p, s, e), a, b)| {
            TrafficSelector::Ipv4(AddressRange {
                ip_protocol: p,
                start_port: s,
                end_port: e,
                start: Ipv4Addr::from(a),
                end: Ipv4Addr::from(b),
            })
        }),
        (ports, any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|((p, s, e), a, b)| {
            TrafficSelector::Ipv6(AddressRange {
                ip_protocol: p,
                start_port: s,
                end_port: e,
                start: Ipv6Addr::from(a),
                end: Ipv6Addr::from(b),
            })
        }),
        (
            any::<u8>().prop_filter("unknown", |t| *t != 7 && *t != 8),
            any::<u8>(),
            bytes(12)
        )
            .prop_map(|(t, ip_protocol, data)| TrafficSelector::Unknown {
                ts_type: TsType(t),
                ip_protocol,
                data
            }),
    ]
}

fn identification() -> impl Strategy<Value = Identification> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| Identification::ipv4(a.into())),
        any::<[u8; 16]>().prop_map(|a| Identification::ipv6(a.into())),
        "[a-z.]{0,20}".prop_map(|s| Identification::fqdn(&s)),
        (
            any::<u8>().prop_filter("not an address", |t| *t != 1 && *t != 5),
            bytes(20)
        )
            .prop_map(|(t, data)| Identification {
                id_type: IdType(t),
                data
            }),
    ]
}

/// Payload types that [`Payload::Unknown`] can carry without being parsed
/// back as something else.
fn unknown_type() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("not implemented", |t| {
        !(33..=48).contains(t) && *t != 53 && *t != 0
    })
}

/// Any payload that may appear inside SK (everything but SK and SKF).
pub(crate) fn inner_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        vec(proposal(), 1..4).prop_map(Payload::Sa),
        (any::<u16>(), bytes(40)).prop_map(|(g, data)| Payload::Ke(KeyExchange {
            group: KeId(g),
            data
        })),
        identification().prop_map(Payload::IdI),
        identification().prop_map(Payload::IdR),
        (any::<u8>(), bytes(40)).prop_map(|(e, data)| Payload::Cert(Certificate {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(e, data)| Payload::CertReq(Certificate {
            encoding: CertEncoding(e),
            data
        })),
        (any::<u8>(), bytes(40)).prop_map(|(m, data)| Payload::Auth(Authentication {
            method: AuthMethod(m),
            data
        })),
        vec(any::<u8>(), NONCE_MIN..=NONCE_MAX).prop_map(Payload::Nonce),
        (any::<u8>(), bytes(8), any::<u16>(), bytes(24)).prop_map(|(p, spi, t, data)| {
            Payload::Notify(Notify {
                protocol: ProtocolId(p),
                spi,
                notify_type: NotifyType(t),
                data,
            })
        }),
        (any::<u8>(), 1u8..9, 0usize..4).prop_flat_map(|(p, size, n)| vec(
            vec(any::<u8>(), usize::from(size)),
            n
        )
        .prop_map(move |spis| Payload::Delete(Delete {
            protocol: ProtocolId(p),
            spi_size: size,
            spis
        }))),
        Just(Payload::Delete(Delete::ike())),
        bytes(20).prop_map(Payload::VendorId),
        vec(selector(), 1..4).prop_map(Payload::TsI),
        vec(selector(), 1..4).prop_map(Payload::TsR),
        (any::<u8>(), vec((0u16..0x8000, bytes(16)), 0..4)).prop_map(|(t, a)| Payload::Cp(
            Configuration {
                cfg_type: CfgType(t),
                attributes: a
                    .into_iter()
                    .map(|(t, value)| CfgAttribute {
                        attribute_type: CfgAttributeType(t),
                        value
                    })
                    .collect(),
            }
        )),
        (any::<u8>(), any::<u8>(), bytes(30)).prop_map(|(code, identifier, data)| Payload::Eap(
            Eap {
                code,
                identifier,
                data
            }
        )),
        (unknown_type(), bytes(30)).prop_map(|(t, body)| Payload::Unknown {
            payload_type: PayloadType(t),
            critical: false,
            body
        }),
    ]
}

/// A message with no SK payload, or with a sealed SK or SKF payload.
pub(crate) fn plain_message() -> impl Strategy<Value = Message> {
    let last = prop_oneof![
        3 => Just(None),
        1 => (any::<u8>(), bytes(40)).prop_map(|(f, body)| Some(Payload::Sk(Encrypted::Sealed {
            first_payload: PayloadType(f),
            body
        }))),
        1 => (1u16..10, 0u16..10, any::<u8>(), bytes(40)).prop_map(|(n, extra, f, body)| Some(Payload::Skf(
            EncryptedFragment { number: n, total: n + extra, first_payload: PayloadType(f), body }
        ))),
    ];
    (header(), vec(inner_payload(), 0..6), last).prop_map(|(header, mut payloads, last)| {
        payloads.extend(last);
        Message { header, payloads }
    })
}

/// A message with an open SK payload, to be sealed.
pub(crate) fn protected_message() -> impl Strategy<Value = Message> {
    (
        header(),
        vec(inner_payload(), 0..2),
        vec(inner_payload(), 0..8),
    )
        .prop_map(|(header, mut payloads, inner)| {
            payloads.push(Payload::Sk(Encrypted::Open(inner)));
            Message { header, payloads }
        })
}
