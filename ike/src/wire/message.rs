//! Whole messages: parse, emit, and the SK payload's sealing and opening.

use zeroize::Zeroizing;

use super::ParseLimits;
use super::codes::PayloadType;
use super::error::{DecryptError, EmitError, ErrorKind, ParseError};
use super::header::{HEADER_LEN, Header, set_length};
use super::payload::{Encrypted, Payload, emit_chain, first_type, parse_chain};
use super::reader::fit;
use crate::sk::SkCipher;

/// An IKE message: the header and the payloads in order. A protected message
/// ends with [`Payload::Sk`], sealed as received or open once decrypted.
///
/// ```
/// use ike::wire::codes::{ExchangeType, NotifyType};
/// use ike::wire::{Flags, Header, Message, Notify, ParseLimits, Payload};
///
/// let m = Message {
///     header: Header {
///         spi_i: 1,
///         exchange: ExchangeType::IKE_SA_INIT,
///         flags: Flags::RESPONSE,
///         ..Header::default()
///     },
///     payloads: vec![Payload::Notify(Notify::cookie(vec![7; 16]))],
/// };
/// let bytes = m.emit()?;
/// assert_eq!(bytes.len(), 28 + 8 + 16);
/// let parsed = Message::parse(&bytes, &ParseLimits::default())?;
/// assert_eq!(parsed, m);
/// assert_eq!(ike::wire::rules::check(&parsed), Ok(()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The IKE header.
    pub header: Header,
    /// The payloads outside SK, then SK if any.
    pub payloads: Vec<Payload>,
}

/// Length of the SK generic header, and of the SKF one with its two fields.
const SK_HEADER_LEN: usize = 4;
const SKF_HEADER_LEN: usize = 8;

impl Message {
    /// Parses a datagram. The SK payload, if any, is kept sealed.
    pub fn parse(datagram: &[u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        if datagram.len() > limits.max_message_len {
            return Err(ParseError::at(
                0,
                ErrorKind::Limit {
                    what: "octets in a message",
                    max: limits.max_message_len,
                },
            ));
        }
        let (header, first) = Header::peek(datagram)?;
        let body = datagram.get(HEADER_LEN..).unwrap_or_default();
        let payloads = parse_chain(body, HEADER_LEN, first, limits, false)?;
        Ok(Self { header, payloads })
    }

    /// The SK payload, if the message has one.
    pub fn encrypted(&self) -> Option<&Encrypted> {
        match self.payloads.last() {
            Some(Payload::Sk(e)) => Some(e),
            _ => None,
        }
    }

    /// Every payload a consumer should look at: those outside SK, then the
    /// opened SK contents. Unknown payloads are skipped.
    pub fn iter(&self) -> impl Iterator<Item = &Payload> {
        let inner: &[Payload] = match self.encrypted() {
            Some(Encrypted::Open(inner)) => inner,
            _ => &[],
        };
        self.payloads
            .iter()
            .filter(|p| !matches!(p, Payload::Sk(_)))
            .chain(inner)
            .filter(|p| !matches!(p, Payload::Unknown { .. }))
    }

    /// Emits a message whose SK payload, if any, is sealed already (such as
    /// a parsed one: the result is the parsed datagram).
    pub fn emit(&self) -> Result<Vec<u8>, EmitError> {
        self.emit_with(None)
    }

    /// Emits the message, sealing an open SK payload with `cipher`.
    pub fn emit_sealed(&self, cipher: &mut dyn SkCipher) -> Result<Vec<u8>, EmitError> {
        self.emit_with(Some(cipher))
    }

    fn emit_with(&self, cipher: Option<&mut dyn SkCipher>) -> Result<Vec<u8>, EmitError> {
        if let Some((Payload::Sk(Encrypted::Open(inner)), outer)) = self.payloads.split_last() {
            let cipher = cipher.ok_or(EmitError::NoCipher)?;
            let plain = emit_inner(inner)?;
            return seal(&self.header, outer, None, first_type(inner), &plain, cipher);
        }
        let mut out = Vec::new();
        self.header.emit(first_type(&self.payloads), &mut out)?;
        emit_chain(&self.payloads, PayloadType::NO_NEXT_PAYLOAD, &mut out)?;
        let len = out.len();
        set_length(&mut out, len)?;
        Ok(out)
    }

    /// Opens a sealed SK payload in place with `cipher`, and parses its
    /// contents. `datagram` is the one this message was parsed from: the
    /// authenticated data is its octets before the IV, exactly as received
    /// (re-emitting would zero reserved bits and so miss changes to them).
    pub fn decrypt(
        &mut self,
        datagram: &[u8],
        cipher: &dyn SkCipher,
        limits: &ParseLimits,
    ) -> Result<(), DecryptError> {
        let Some(Encrypted::Sealed {
            first_payload,
            body,
        }) = self.encrypted()
        else {
            return Err(DecryptError::NotEncrypted);
        };
        let split = datagram
            .len()
            .checked_sub(body.len())
            .ok_or(DecryptError::OtherDatagram)?;
        let (authenticated, received) = datagram
            .split_at_checked(split)
            .ok_or(DecryptError::OtherDatagram)?;
        if received != body.as_slice()
            || Header::peek(datagram).ok().map(|(h, _)| h) != Some(self.header)
        {
            return Err(DecryptError::OtherDatagram);
        }
        let plain = cipher.open(authenticated, body)?;
        let inner = parse_chain(&plain, 0, *first_payload, limits, true)?;
        if let Some(last) = self.payloads.last_mut() {
            *last = Payload::Sk(Encrypted::Open(inner));
        }
        Ok(())
    }

    /// Emits the message as Encrypted Fragment messages of at most `max_len`
    /// octets each (RFC 7383 2.5): the SK contents are split into chunks, each
    /// sealed in its own SKF payload; payloads outside SK go in the first
    /// fragment only. `max_len` counts the IKE message, not the IP and UDP
    /// headers (or non-ESP marker) around it. Always fragments, even into one.
    pub fn emit_fragments(
        &self,
        cipher: &mut dyn SkCipher,
        max_len: usize,
    ) -> Result<Vec<Vec<u8>>, EmitError> {
        let Some((Payload::Sk(Encrypted::Open(inner)), outer)) = self.payloads.split_last() else {
            return Err(EmitError::NotEncrypted);
        };
        let plain = emit_inner(inner)?;
        let mut prefix = Vec::new();
        emit_chain(outer, PayloadType::SKF, &mut prefix)?;
        // The most plaintext a fragment carrying `fixed` other octets can hold.
        let room = |cipher: &dyn SkCipher, fixed: usize| -> Result<usize, EmitError> {
            let fixed = fixed
                .saturating_add(HEADER_LEN)
                .saturating_add(SKF_HEADER_LEN);
            let fits = |n: usize| fixed.saturating_add(cipher.sealed_len(n)) <= max_len;
            if !fits(1) {
                return Err(EmitError::FragmentTooSmall(max_len));
            }
            // Largest n with fits(n): fits(lo) holds, fits(hi + 1) does not
            // (sealed_len(n) >= n), and sealed_len grows with n.
            let (mut lo, mut hi) = (1usize, max_len);
            while lo < hi {
                let mid = lo.saturating_add(hi.saturating_sub(lo).div_ceil(2));
                if fits(mid) {
                    lo = mid;
                } else {
                    hi = mid.saturating_sub(1);
                }
            }
            Ok(lo)
        };
        let first_room = room(cipher, prefix.len())?;
        let other_room = room(cipher, 0)?;
        let (head, tail) = plain
            .split_at_checked(first_room.min(plain.len()))
            .unwrap_or((&plain, &[]));
        let chunks: Vec<&[u8]> = core::iter::once(head)
            .chain(tail.chunks(other_room.max(1)))
            .collect();
        let total: u16 = fit(chunks.len(), "fragment count")?;
        let mut out = Vec::with_capacity(chunks.len());
        for (number, chunk) in (1..=total).zip(chunks) {
            let (outer, first) = if number == 1 {
                (outer, first_type(inner))
            } else {
                (&[][..], PayloadType::NO_NEXT_PAYLOAD)
            };
            out.push(seal(
                &self.header,
                outer,
                Some((number, total)),
                first,
                chunk,
                cipher,
            )?);
        }
        Ok(out)
    }
}

/// Emits the contents of an SK payload, which cannot hold another one.
fn emit_inner(inner: &[Payload]) -> Result<Zeroizing<Vec<u8>>, EmitError> {
    if let Some(p) = inner.iter().find(|p| p.is_encrypted()) {
        return Err(EmitError::MisplacedEncrypted(p.payload_type()));
    }
    let mut plain = Zeroizing::new(Vec::new());
    emit_chain(inner, PayloadType::NO_NEXT_PAYLOAD, &mut plain)?;
    Ok(plain)
}

/// Emits header, `outer` payloads and an SK payload (or with `fragment`, an
/// SKF payload) whose contents are `plain`, sealed by `cipher` after every
/// length has been written.
fn seal(
    header: &Header,
    outer: &[Payload],
    fragment: Option<(u16, u16)>,
    first_inner: PayloadType,
    plain: &[u8],
    cipher: &mut dyn SkCipher,
) -> Result<Vec<u8>, EmitError> {
    let (sk_type, sk_header) = match fragment {
        Some(_) => (PayloadType::SKF, SKF_HEADER_LEN),
        None => (PayloadType::SK, SK_HEADER_LEN),
    };
    let mut out = Vec::new();
    header.emit(
        outer.first().map_or(sk_type, Payload::payload_type),
        &mut out,
    )?;
    emit_chain(outer, sk_type, &mut out)?;
    let sealed_len = cipher.sealed_len(plain.len());
    let sk_len: u16 = fit(sealed_len.saturating_add(sk_header), "SK payload length")?;
    out.extend_from_slice(&[first_inner.0, 0]);
    out.extend_from_slice(&sk_len.to_be_bytes());
    if let Some((number, total)) = fragment {
        out.extend_from_slice(&number.to_be_bytes());
        out.extend_from_slice(&total.to_be_bytes());
    }
    let before = out.len();
    set_length(&mut out, before.saturating_add(sealed_len))?;
    cipher.seal(&mut out, plain)?;
    let got = out.len().saturating_sub(before);
    if got != sealed_len {
        return Err(EmitError::SealedLength {
            got,
            want: sealed_len,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::super::codes::*;
    use super::super::sa::{Proposal, Transform};
    use super::super::testutil::{FakeCipher, inner_payload, plain_message, protected_message};
    use super::super::*;
    use super::*;
    use crate::error::CryptoError;

    /// An IKE_SA_INIT request, octet by octet (RFC 7296 1.2: HDR, SAi1, KEi,
    /// Ni, N(NAT_DETECTION_SOURCE_IP), N(NAT_DETECTION_DESTINATION_IP)).
    fn ike_sa_init_bytes() -> Vec<u8> {
        let mut b = vec![
            1, 2, 3, 4, 5, 6, 7, 8, // IKE SA Initiator's SPI
            0, 0, 0, 0, 0, 0, 0, 0,    // IKE SA Responder's SPI: 0 in IKE_SA_INIT
            33,   // Next Payload: SA
            0x20, // MjVer 2, MnVer 0
            34,   // Exchange Type: IKE_SA_INIT
            0x08, // Flags: Initiator
            0, 0, 0, 0, // Message ID 0
            0, 0, 0, 200, // Length: 28 + 40 + 40 + 36 + 28 + 28
            // SA payload, 4 + 36 octets.
            34, 0, 0, 40, // Next Payload KE, not critical, length 40
            0, 0, 0, 36, // last proposal, RESERVED, Proposal Length 36 = 8 + 12 + 8 + 8
            1, 1, 0, 3, // Proposal Num 1, Protocol IKE, SPI Size 0, 3 transforms
            3, 0, 0, 12, 1, 0, 0, 20, // more transforms, length 12, ENCR, ENCR_AES_GCM_16
            0x80, 14, 1, 0, // AF=1 Key Length 256
            3, 0, 0, 8, 2, 0, 0, 5, // more, length 8, PRF, PRF_HMAC_SHA2_256
            0, 0, 0, 8, 4, 0, 0, 31, // last, length 8, KE, Curve25519
            // KE payload, 4 + 4 + 32 octets.
            40, 0, 0, 40, // Next Payload Nonce, length 40
            0, 31, 0, 0, // group 31, RESERVED
        ];
        b.extend([0x11; 32]); // public value
        b.extend([41, 0, 0, 36]); // Nonce: Next Payload N, length 4 + 32
        b.extend([0x22; 32]);
        b.extend([41, 0, 0, 28]); // N: Next Payload N, length 4 + 4 + 20
        b.extend([0, 0, 0x40, 0x04]); // protocol 0, SPI size 0, NAT_DETECTION_SOURCE_IP
        b.extend([0x33; 20]);
        b.extend([0, 0, 0, 28]); // N: last payload, length 28
        b.extend([0, 0, 0x40, 0x05]); // NAT_DETECTION_DESTINATION_IP
        b.extend([0x44; 20]);
        assert_eq!(b.len(), 200);
        b
    }

    fn ike_sa_init() -> Message {
        let t = |transform_type, id, key_length| Transform {
            transform_type,
            id,
            key_length,
            other_attributes: vec![],
        };
        Message {
            header: Header {
                spi_i: 0x0102_0304_0506_0708,
                spi_r: 0,
                minor_version: 0,
                exchange: ExchangeType::IKE_SA_INIT,
                flags: Flags::INITIATOR,
                message_id: 0,
            },
            payloads: vec![
                Payload::Sa(vec![Proposal {
                    number: 1,
                    protocol: ProtocolId::IKE,
                    spi: vec![],
                    transforms: vec![
                        t(TransformType::ENCR, EncrId::AES_GCM_16.0, Some(256)),
                        t(TransformType::PRF, PrfId::HMAC_SHA2_256.0, None),
                        t(TransformType::KE, KeId::CURVE25519.0, None),
                    ],
                }]),
                Payload::Ke(KeyExchange {
                    group: KeId::CURVE25519,
                    data: vec![0x11; 32],
                }),
                Payload::Nonce(vec![0x22; 32]),
                Payload::Notify(Notify::nat_detection(false, [0x33; 20])),
                Payload::Notify(Notify::nat_detection(true, [0x44; 20])),
            ],
        }
    }

    fn limits() -> ParseLimits {
        ParseLimits::default()
    }

    /// Sets the header Length to the buffer's length.
    fn fix_len(b: &mut [u8]) {
        let n = b.len() as u32;
        b[24..28].copy_from_slice(&n.to_be_bytes());
    }

    #[test]
    fn hand_built_ike_sa_init_parses_and_reemits_exactly() {
        let bytes = ike_sa_init_bytes();
        let m = Message::parse(&bytes, &limits()).unwrap();
        assert_eq!(m, ike_sa_init());
        assert_eq!(m.emit().unwrap(), bytes);
        assert_eq!(ike_sa_init().emit().unwrap(), bytes);
        assert_eq!(rules::check(&m), Ok(()));
        assert_eq!(m.iter().count(), 5);
    }

    #[test]
    fn unknown_noncritical_payload_round_trips_and_is_skipped() {
        let mut m = ike_sa_init();
        m.payloads.insert(
            1,
            Payload::Unknown {
                payload_type: PayloadType(200),
                critical: false,
                body: vec![1, 2, 3],
            },
        );
        let bytes = m.emit().unwrap();
        // SA now announces type 200; the unknown payload announces KE.
        assert_eq!(bytes[28], 200);
        assert_eq!(&bytes[68..75], &[34, 0, 0, 7, 1, 2, 3]);
        let parsed = Message::parse(&bytes, &limits()).unwrap();
        assert_eq!(parsed, m);
        assert_eq!(parsed.emit().unwrap(), bytes);
        assert_eq!(parsed.iter().count(), 5, "consumers skip it");
        assert_eq!(rules::check(&parsed), Ok(()), "rules ignore it");
    }

    #[test]
    fn critical_unknown_payload_is_unsupported_critical_payload() {
        let mut m = ike_sa_init();
        m.payloads.insert(
            1,
            Payload::Unknown {
                payload_type: PayloadType(200),
                critical: true,
                body: vec![],
            },
        );
        let bytes = m.emit().unwrap();
        assert_eq!(bytes[68 + 1], 0x80, "critical bit");
        let e = Message::parse(&bytes, &limits()).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::UnsupportedCriticalPayload(PayloadType(200))
        );
        assert_eq!(e.offset, 68);
        let n = e.response().unwrap();
        assert_eq!(n.notify_type, NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD);
        assert_eq!(n.data, [200]);
        assert_eq!(n.unsupported_payload_type(), Some(PayloadType(200)));
    }

    #[test]
    fn critical_bit_on_a_known_payload_is_ignored() {
        let mut bytes = ike_sa_init_bytes();
        bytes[68 + 1] = 0x80; // KE payload flags
        assert_eq!(Message::parse(&bytes, &limits()).unwrap(), ike_sa_init());
    }

    #[test]
    fn every_truncation_fails() {
        let bytes = ike_sa_init_bytes();
        for n in 0..bytes.len() {
            let mut cut = bytes[..n].to_vec();
            assert!(Message::parse(&cut, &limits()).is_err(), "truncated to {n}");
            if n >= HEADER_LEN {
                fix_len(&mut cut); // a consistent header does not help
                let e = Message::parse(&cut, &limits()).unwrap_err();
                assert!(e.payload.is_some(), "truncated to {n}: {e}");
                assert_eq!(
                    e.response().map(|n| n.notify_type),
                    Some(NotifyType::INVALID_SYNTAX)
                );
            }
        }
    }

    #[test]
    fn header_errors() {
        let bytes = ike_sa_init_bytes();
        let e = Message::parse(&bytes[..27], &limits()).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }));
        assert_eq!(e.response(), None, "no header, nobody to answer");

        let mut v3 = bytes.clone();
        v3[17] = 0x30;
        let e = Message::parse(&v3, &limits()).unwrap_err();
        assert_eq!(e, ParseError::at(17, ErrorKind::InvalidMajorVersion(3)));
        assert_eq!(
            e.response().unwrap().notify_type,
            NotifyType::INVALID_MAJOR_VERSION
        );
        v3[17] = 0x10;
        assert_eq!(
            Message::parse(&v3, &limits()).unwrap_err().kind,
            ErrorKind::InvalidMajorVersion(1)
        );

        let mut minor = bytes.clone();
        minor[17] = 0x27;
        let m = Message::parse(&minor, &limits()).unwrap();
        assert_eq!(m.header.minor_version, 7);
        assert_eq!(m.emit().unwrap(), minor);

        let mut long = bytes.clone();
        long[27] = 201;
        let e = Message::parse(&long, &limits()).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::LengthMismatch {
                header: 201,
                datagram: 200
            }
        );
        assert_eq!(e.response(), None);
    }

    #[test]
    fn trailing_data_and_bad_lengths() {
        let mut trailing = ike_sa_init_bytes();
        trailing.extend([0, 0, 0]);
        fix_len(&mut trailing);
        let e = Message::parse(&trailing, &limits()).unwrap_err();
        assert_eq!(
            (e.offset, e.payload, e.kind.clone()),
            (200, None, ErrorKind::TrailingData(3))
        );
        assert_eq!(
            e.response().unwrap().notify_type,
            NotifyType::INVALID_SYNTAX
        );

        let mut short = ike_sa_init_bytes();
        short[28 + 3] = 3; // SA payload length 3 < its own header
        let e = Message::parse(&short, &limits()).unwrap_err();
        assert_eq!(e.payload, Some(PayloadType::SA));
        assert_eq!(
            e.kind,
            ErrorKind::TooShort {
                what: "payload",
                len: 3,
                min: 4
            }
        );

        let mut over = ike_sa_init_bytes();
        over[172 + 3] = 29; // last payload runs one octet past the end
        let e = Message::parse(&over, &limits()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "N payload at offset 172: payload length 29 runs past the 28 octets left"
        );

        let mut nonce = ike_sa_init_bytes();
        nonce[108 + 3] = 4 + 15; // Nonce of 15 octets, then 17 stray ones
        let e = Message::parse(&nonce, &limits()).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::TooShort {
                what: "nonce",
                len: 15,
                min: 16
            }
        );
    }

    #[test]
    fn errors_say_where() {
        let mut m = ike_sa_init();
        let ts = TrafficSelector::Ipv4(AddressRange::any(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
        ));
        m.payloads.insert(3, Payload::TsI(vec![ts]));
        let mut bytes = m.emit().unwrap();
        // TSi (announcing N) follows HDR, SA, KE, Nonce at 28 + 40 + 40 + 36 =
        // 144; its
        // selector's length field is at 144 + 4 + 4 + 2.
        assert_eq!(&bytes[144..148], &[41, 0, 0, 24]);
        bytes[155] = 12;
        let e = Message::parse(&bytes, &limits()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "TSi payload at offset 144: traffic selector length 12 is shorter than 16"
        );
    }

    #[test]
    fn limits_are_enforced() {
        let bytes = ike_sa_init_bytes();
        let l = ParseLimits {
            max_payloads: 4,
            ..limits()
        };
        let e = Message::parse(&bytes, &l).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Limit {
                what: "payloads",
                max: 4
            }
        );
        assert_eq!(e.response(), None, "resource limits drop silently");
        assert!(
            Message::parse(
                &bytes,
                &ParseLimits {
                    max_payloads: 5,
                    ..limits()
                }
            )
            .is_ok()
        );
        let l = ParseLimits {
            max_message_len: 199,
            ..limits()
        };
        assert!(matches!(
            Message::parse(&bytes, &l).unwrap_err().kind,
            ErrorKind::Limit { .. }
        ));
        let l = ParseLimits {
            max_transforms: 2,
            ..limits()
        };
        assert_eq!(
            Message::parse(&bytes, &l).unwrap_err().payload,
            Some(PayloadType::SA)
        );
    }

    #[test]
    fn emit_refuses_what_parse_would_refuse() {
        let mut m = ike_sa_init();
        m.payloads[2] = Payload::Nonce(vec![0; 15]);
        assert_eq!(
            m.emit(),
            Err(EmitError::Invalid {
                what: "nonce length",
                value: 15
            })
        );
        let mut m = ike_sa_init();
        m.payloads[1] = Payload::Ke(KeyExchange {
            group: KeId::MODP_2048,
            data: vec![0; 70_000],
        });
        assert!(matches!(m.emit(), Err(EmitError::TooLong { .. })));
        let mut m = ike_sa_init();
        m.header.minor_version = 16;
        assert!(m.emit().is_err());
        let mut m = ike_sa_init();
        m.payloads.insert(
            0,
            Payload::Sk(Encrypted::Sealed {
                first_payload: PayloadType::NONCE,
                body: vec![],
            }),
        );
        assert_eq!(
            m.emit(),
            Err(EmitError::MisplacedEncrypted(PayloadType::SK))
        );
        let m = Message {
            header: Header::default(),
            payloads: vec![Payload::Sk(Encrypted::Open(vec![]))],
        };
        assert_eq!(m.emit(), Err(EmitError::NoCipher));
        assert_eq!(
            m.emit_fragments(&mut FakeCipher::new(1), 1000)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            ike_sa_init().emit_fragments(&mut FakeCipher::new(1), 1000),
            Err(EmitError::NotEncrypted)
        );
    }

    fn ike_auth() -> Message {
        let header = Header {
            spi_i: 1,
            spi_r: 2,
            exchange: ExchangeType::IKE_AUTH,
            flags: Flags::INITIATOR,
            message_id: 1,
            ..Header::default()
        };
        let ts = vec![TrafficSelector::Ipv4(AddressRange::any(
            Ipv4Addr::new(10, 0, 0, 0),
            Ipv4Addr::new(10, 0, 0, 255),
        ))];
        let inner = vec![
            Payload::IdI(Identification::fqdn("alice.example.com")),
            Payload::Auth(Authentication {
                method: AuthMethod::SHARED_KEY_MIC,
                data: vec![0x5a; 32],
            }),
            Payload::Sa(vec![Proposal {
                number: 1,
                protocol: ProtocolId::ESP,
                spi: vec![1, 2, 3, 4],
                transforms: vec![],
            }]),
            Payload::TsI(ts.clone()),
            Payload::TsR(ts),
        ];
        Message {
            header,
            payloads: vec![Payload::Sk(Encrypted::Open(inner))],
        }
    }

    #[test]
    fn sealed_message_round_trips_and_decrypts() {
        let m = ike_auth();
        let bytes = m.emit_sealed(&mut FakeCipher::new(7)).unwrap();
        let inner_len = {
            let Some(Encrypted::Open(inner)) = m.encrypted() else {
                unreachable!()
            };
            let mut v = Vec::new();
            emit_chain(inner, PayloadType::NO_NEXT_PAYLOAD, &mut v).unwrap();
            v.len()
        };
        // HDR, then SK header announcing IDi, whose length covers sealed_len.
        let sealed_len = FakeCipher::new(7).sealed_len(inner_len);
        assert_eq!(bytes.len(), HEADER_LEN + 4 + sealed_len);
        assert_eq!(bytes[16], 46, "header announces SK");
        assert_eq!(&bytes[28..32], &[35, 0, 0, (4 + sealed_len) as u8]);

        let mut parsed = Message::parse(&bytes, &limits()).unwrap();
        assert!(matches!(
            parsed.encrypted(),
            Some(Encrypted::Sealed {
                first_payload: PayloadType::IDI,
                ..
            })
        ));
        assert_eq!(
            parsed.emit().unwrap(),
            bytes,
            "sealed SK re-emits byte for byte"
        );
        assert_eq!(rules::check(&parsed), Err(rules::RuleError::Sealed));
        parsed
            .decrypt(&bytes, &FakeCipher::new(7), &limits())
            .unwrap();
        assert_eq!(parsed, m);
        assert_eq!(rules::check(&parsed), Ok(()));
        assert_eq!(parsed.iter().count(), 5);
        assert_eq!(
            parsed.decrypt(&bytes, &FakeCipher::new(7), &limits()),
            Err(DecryptError::NotEncrypted)
        );
        // The datagram must be the one the message came from.
        let mut sealed = Message::parse(&bytes, &limits()).unwrap();
        let other = ike_auth()
            .emit_sealed(&mut FakeCipher {
                key: 7,
                counter: 99,
            })
            .unwrap();
        for wrong in [&other[..], &bytes[1..], &[]] {
            let e = sealed.decrypt(wrong, &FakeCipher::new(7), &limits());
            assert_eq!(e, Err(DecryptError::OtherDatagram));
        }
    }

    #[test]
    fn tampering_fails_the_integrity_check() {
        let bytes = ike_auth().emit_sealed(&mut FakeCipher::new(7)).unwrap();
        let mut wrong_key = Message::parse(&bytes, &limits()).unwrap();
        let e = wrong_key
            .decrypt(&bytes, &FakeCipher::new(8), &limits())
            .unwrap_err();
        assert_eq!(e, DecryptError::Crypto(CryptoError::IntegrityCheckFailed));
        assert_eq!(e.response(), None);
        // Every octet is authenticated: the header, the SK header, the body.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            if let Ok(mut m) = Message::parse(&b, &limits()) {
                assert!(
                    m.decrypt(&b, &FakeCipher::new(7), &limits()).is_err(),
                    "flipped octet {i}"
                );
            }
        }
    }

    #[test]
    fn bad_inner_payloads_are_reported_inside_sk() {
        let header = ike_auth().header;
        // An SK payload inside SK.
        let plain = [0, 0, 0, 4];
        let bytes = seal(
            &header,
            &[],
            None,
            PayloadType::SK,
            &plain,
            &mut FakeCipher::new(3),
        )
        .unwrap();
        let mut m = Message::parse(&bytes, &limits()).unwrap();
        let DecryptError::Parse(e) = m
            .decrypt(&bytes, &FakeCipher::new(3), &limits())
            .unwrap_err()
        else {
            panic!()
        };
        assert_eq!((e.offset, e.encrypted), (0, true));
        assert_eq!(e.kind, ErrorKind::MisplacedEncrypted(PayloadType::SK));
        assert_eq!(
            e.to_string(),
            "SK payload at offset 0 of the decrypted contents: misplaced SK payload"
        );
        // A critical unknown payload inside SK is answered, protected.
        let plain = [0, 0x80, 0, 4];
        let bytes = seal(
            &header,
            &[],
            None,
            PayloadType(99),
            &plain,
            &mut FakeCipher::new(3),
        )
        .unwrap();
        let mut m = Message::parse(&bytes, &limits()).unwrap();
        let e = m
            .decrypt(&bytes, &FakeCipher::new(3), &limits())
            .unwrap_err();
        assert_eq!(
            e.response(),
            Some(Notify::unsupported_critical_payload(PayloadType(99)))
        );
        // Inner payloads cannot hold an SK payload on emit either.
        let nested = Message {
            header,
            payloads: vec![Payload::Sk(Encrypted::Open(vec![Payload::Sk(
                Encrypted::Open(vec![]),
            )]))],
        };
        assert_eq!(
            nested.emit_sealed(&mut FakeCipher::new(3)),
            Err(EmitError::MisplacedEncrypted(PayloadType::SK))
        );
    }

    #[test]
    fn unprotected_payloads_before_sk_are_authenticated() {
        let mut m = ike_auth();
        m.payloads.insert(0, Payload::VendorId(b"iked".to_vec()));
        let bytes = m.emit_sealed(&mut FakeCipher::new(9)).unwrap();
        assert_eq!(&bytes[28..32], &[46, 0, 0, 8], "V announces SK");
        let mut parsed = Message::parse(&bytes, &limits()).unwrap();
        parsed
            .decrypt(&bytes, &FakeCipher::new(9), &limits())
            .unwrap();
        assert_eq!(parsed, m);
        assert_eq!(
            rules::check(&parsed),
            Err(rules::RuleError::NotEncrypted(PayloadType::VENDOR_ID))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut b = bytes;
            let _ = Message::parse(&b, &limits());
            if b.len() >= HEADER_LEN {
                b[17] = 0x20;
                fix_len(&mut b);
                if let Ok(mut m) = Message::parse(&b, &limits()) {
                    let _ = m.decrypt(&b, &FakeCipher::new(1), &limits());
                    let _ = rules::check(&m);
                }
            }
        }

        #[test]
        fn mutated_messages_never_panic(
            m in plain_message(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
            fix in any::<bool>(),
        ) {
            let mut b = m.emit().unwrap();
            for (i, v) in edits {
                let i = i.index(b.len());
                b[i] = v;
            }
            b.truncate(HEADER_LEN.max(cut.index(b.len() + 1)));
            if fix && b.len() >= HEADER_LEN {
                b[17] = 0x20;
                fix_len(&mut b);
            }
            if let Ok(mut m) = Message::parse(&b, &limits()) {
                // Whatever parses re-emits (reserved fields zeroed) to
                // something that parses back the same.
                let again = m.emit().unwrap();
                prop_assert_eq!(&Message::parse(&again, &limits()).unwrap(), &m);
                let _ = m.decrypt(&b, &FakeCipher::new(1), &limits());
            }
        }

        #[test]
        fn sealed_garbage_never_panics_decrypt(
            first in any::<u8>(),
            plain in proptest::collection::vec(any::<u8>(), 0..200),
            valid in inner_payload(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            // Garbage, and a valid payload with a few octets changed, both
            // sealed with a valid checksum, so that parsing sees them.
            let first_valid = valid.payload_type();
            let mut chain = Vec::new();
            emit_chain(core::slice::from_ref(&valid), PayloadType::NO_NEXT_PAYLOAD, &mut chain).unwrap();
            let intact = edits.is_empty();
            for (i, v) in edits {
                let i = i.index(chain.len());
                chain[i] = v;
            }
            for (first, plain) in [(PayloadType(first), &plain), (first_valid, &chain)] {
                let bytes = seal(&Header::default(), &[], None, first, plain, &mut FakeCipher::new(5)).unwrap();
                let mut m = Message::parse(&bytes, &limits()).unwrap();
                if m.decrypt(&bytes, &FakeCipher::new(5), &limits()).is_ok() {
                    let _ = rules::check(&m);
                }
            }
            if intact {
                let bytes = seal(&Header::default(), &[], None, first_valid, &chain, &mut FakeCipher::new(5)).unwrap();
                let mut m = Message::parse(&bytes, &limits()).unwrap();
                m.decrypt(&bytes, &FakeCipher::new(5), &limits()).unwrap();
                prop_assert_eq!(m.encrypted(), Some(&Encrypted::Open(vec![valid])));
            }
        }

        #[test]
        fn plain_messages_round_trip(m in plain_message()) {
            let bytes = m.emit().unwrap();
            let parsed = Message::parse(&bytes, &limits()).unwrap();
            prop_assert_eq!(&parsed, &m);
            prop_assert_eq!(parsed.emit().unwrap(), bytes);
        }

        #[test]
        fn protected_messages_round_trip(m in protected_message(), key in any::<u8>()) {
            let bytes = m.emit_sealed(&mut FakeCipher::new(key)).unwrap();
            let mut parsed = Message::parse(&bytes, &limits()).unwrap();
            prop_assert_eq!(&parsed.emit().unwrap(), &bytes);
            parsed.decrypt(&bytes, &FakeCipher::new(key), &limits()).unwrap();
            prop_assert_eq!(parsed, m);
        }
    }
}
