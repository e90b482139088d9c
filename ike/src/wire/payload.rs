//! Payload bodies and the payload chain (RFC 7296 3.2 to 3.16, RFC 7383 2.5).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ParseLimits;
use super::codes::{
    AuthMethod, CertEncoding, CfgAttributeType, CfgType, IdType, KeId, PayloadType,
};
use super::error::{EmitError, ErrorKind, ParseError};
use super::notify::{Delete, Notify};
use super::reader::{Len16, Reader, fit};
use super::sa::{self, Proposal};
use super::ts::{self, TrafficSelector};

/// The critical bit in the generic payload header.
const CRITICAL: u8 = 0x80;
/// Shortest nonce RFC 7296 3.9 allows.
pub const NONCE_MIN: usize = 16;
/// Longest nonce RFC 7296 3.9 allows.
pub const NONCE_MAX: usize = 256;

/// One payload of a message, as a typed representation of its body.
///
/// The generic header is implied: Next Payload comes from the following
/// payload (or, for SK and SKF, from the first inner payload) and the
/// critical bit is sent as zero for every type we know, as RFC 7296 3.2
/// requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Security Association: proposals (3.3).
    Sa(Vec<Proposal>),
    /// Key Exchange (3.4).
    Ke(KeyExchange),
    /// Identification of the initiator (3.5).
    IdI(Identification),
    /// Identification of the responder (3.5).
    IdR(Identification),
    /// Certificate (3.6).
    Cert(Certificate),
    /// Certificate Request (3.7): same layout as CERT, with hashes of CA keys.
    CertReq(Certificate),
    /// Authentication (3.8).
    Auth(Authentication),
    /// Nonce, 16 to 256 octets (3.9).
    Nonce(Vec<u8>),
    /// Notify (3.10).
    Notify(Notify),
    /// Delete (3.11).
    Delete(Delete),
    /// Vendor ID (3.12).
    VendorId(Vec<u8>),
    /// Traffic selectors of the initiator (3.13).
    TsI(Vec<TrafficSelector>),
    /// Traffic selectors of the responder (3.13).
    TsR(Vec<TrafficSelector>),
    /// Encrypted and Authenticated (3.14). Must be the last payload.
    Sk(Encrypted),
    /// Configuration (3.15).
    Cp(Configuration),
    /// Extensible Authentication (3.16).
    Eap(Eap),
    /// Encrypted Fragment (RFC 7383 2.5). Must be the last payload.
    Skf(EncryptedFragment),
    /// A payload type we do not implement, sent without the critical bit:
    /// kept for the round trip, skipped by consumers.
    Unknown {
        /// Its payload type.
        payload_type: PayloadType,
        /// The critical bit as received (false when parsed: a critical
        /// unknown payload fails the parse).
        critical: bool,
        /// The body after the generic header.
        body: Vec<u8>,
    },
}

/// Key Exchange payload: a group and the sender's public value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyExchange {
    /// The key exchange method ("Diffie-Hellman group").
    pub group: KeId,
    /// The public value.
    pub data: Vec<u8>,
}

/// IDi or IDr payload: an identity type and its data, kept raw so that AUTH
/// can be computed over exactly the received octets. See the constructors
/// and [`Identification::value`] for typed access.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identification {
    /// The ID Type.
    pub id_type: IdType,
    /// The identity, encoded as `id_type` says.
    pub data: Vec<u8>,
}

/// An identity decoded from [`Identification`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdValue<'a> {
    /// ID_IPV4_ADDR.
    Ipv4(Ipv4Addr),
    /// ID_IPV6_ADDR.
    Ipv6(Ipv6Addr),
    /// ID_FQDN, e.g. "vpn.example.com".
    Fqdn(&'a str),
    /// ID_RFC822_ADDR, e.g. "alice@example.com".
    Rfc822(&'a str),
    /// ID_DER_ASN1_DN: a DER-encoded X.501 Distinguished Name.
    DerDn(&'a [u8]),
    /// ID_KEY_ID: opaque octets.
    KeyId(&'a [u8]),
}

impl Identification {
    /// An ID_IPV4_ADDR identity.
    pub fn ipv4(addr: Ipv4Addr) -> Self {
        Self {
            id_type: IdType::IPV4_ADDR,
            data: addr.octets().to_vec(),
        }
    }
    /// An ID_IPV6_ADDR identity.
    pub fn ipv6(addr: Ipv6Addr) -> Self {
        Self {
            id_type: IdType::IPV6_ADDR,
            data: addr.octets().to_vec(),
        }
    }
    /// An ID_FQDN identity.
    pub fn fqdn(name: &str) -> Self {
        Self {
            id_type: IdType::FQDN,
            data: name.as_bytes().to_vec(),
        }
    }
    /// An ID_RFC822_ADDR identity.
    pub fn rfc822(addr: &str) -> Self {
        Self {
            id_type: IdType::RFC822_ADDR,
            data: addr.as_bytes().to_vec(),
        }
    }
    /// An ID_DER_ASN1_DN identity from the DER encoding of a Name.
    pub fn der_dn(der: Vec<u8>) -> Self {
        Self {
            id_type: IdType::DER_ASN1_DN,
            data: der,
        }
    }
    /// An ID_KEY_ID identity.
    pub fn key_id(id: Vec<u8>) -> Self {
        Self {
            id_type: IdType::KEY_ID,
            data: id,
        }
    }

    /// The identity decoded, or `None` for other ID types and for FQDN or
    /// RFC822 data that is not UTF-8.
    pub fn value(&self) -> Option<IdValue<'_>> {
        let d = self.data.as_slice();
        match self.id_type {
            IdType::IPV4_ADDR => <[u8; 4]>::try_from(d).ok().map(|a| IdValue::Ipv4(a.into())),
            IdType::IPV6_ADDR => <[u8; 16]>::try_from(d)
                .ok()
                .map(|a| IdValue::Ipv6(a.into())),
            IdType::FQDN => core::str::from_utf8(d).ok().map(IdValue::Fqdn),
            IdType::RFC822_ADDR => core::str::from_utf8(d).ok().map(IdValue::Rfc822),
            IdType::DER_ASN1_DN => Some(IdValue::DerDn(d)),
            IdType::KEY_ID => Some(IdValue::KeyId(d)),
            _ => None,
        }
    }

    /// The payload body: ID Type, RESERVED and data. RFC 7296 2.15 signs it
    /// as "RestOfInitIDPayload" / "RestOfRespIDPayload".
    pub fn to_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len().saturating_add(4));
        self.emit(&mut out);
        out
    }

    fn parse(body: &[u8]) -> Result<Self, ErrorKind> {
        let mut r = Reader::new(body);
        let id_type = IdType(r.u8("ID Type")?);
        r.take(3, "ID RESERVED")?;
        let data = r.rest().to_vec();
        let want = match id_type {
            IdType::IPV4_ADDR => 4,
            IdType::IPV6_ADDR => 16,
            _ => data.len(),
        };
        if data.len() != want {
            return Err(ErrorKind::Mismatch {
                what: "address identity length",
                value: data.len(),
                expected: want,
            });
        }
        Ok(Self { id_type, data })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.id_type.0, 0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
}

/// CERT or CERTREQ payload: an encoding and data (a certificate, or for
/// CERTREQ concatenated SHA-1 hashes of CA public keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The Cert Encoding.
    pub encoding: CertEncoding,
    /// The data.
    pub data: Vec<u8>,
}

/// AUTH payload: the method and the signature or MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authentication {
    /// The Auth Method.
    pub method: AuthMethod,
    /// Authentication data.
    pub data: Vec<u8>,
}

/// CP payload: a CFG type and its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configuration {
    /// Request, reply, set or ack.
    pub cfg_type: CfgType,
    /// The attributes, in order.
    pub attributes: Vec<CfgAttribute>,
}

/// One configuration attribute (RFC 7296 3.15.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfgAttribute {
    /// The attribute type (15 bits; the R bit is reserved).
    pub attribute_type: CfgAttributeType,
    /// The value; empty in a request for "anything".
    pub value: Vec<u8>,
}

/// EAP payload: the EAP message (RFC 3748) whose header is checked against
/// the payload and whose Type and Type-Data are kept raw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eap {
    /// Request (1), Response (2), Success (3) or Failure (4).
    pub code: u8,
    /// Matches responses to requests.
    pub identifier: u8,
    /// Everything after the EAP Length field (Type and Type-Data).
    pub data: Vec<u8>,
}

/// The SK payload's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encrypted {
    /// As received, or as some peer sealed it: the type of the first inner
    /// payload (the SK header's Next Payload) and IV, ciphertext and ICV.
    Sealed {
        /// Next Payload of the SK header.
        first_payload: PayloadType,
        /// IV, ciphertext and ICV.
        body: Vec<u8>,
    },
    /// The inner payloads in plaintext: opened by [`Message::decrypt`], or
    /// to be sealed by [`Message::emit_sealed`].
    ///
    /// [`Message::decrypt`]: super::Message::decrypt
    /// [`Message::emit_sealed`]: super::Message::emit_sealed
    Open(Vec<Payload>),
}

/// An SKF payload (RFC 7383 2.5), always sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedFragment {
    /// 1 for the first fragment.
    pub number: u16,
    /// How many fragments the message was split into.
    pub total: u16,
    /// In fragment 1, the type of the first inner payload; 0 in the others.
    pub first_payload: PayloadType,
    /// IV, ciphertext and ICV.
    pub body: Vec<u8>,
}

impl EncryptedFragment {
    fn parse(first_payload: PayloadType, body: &[u8]) -> Result<Self, ErrorKind> {
        let mut r = Reader::new(body);
        let number = r.u16("Fragment Number")?;
        let total = r.u16("Total Fragments")?;
        if number == 0 || number > total {
            return Err(ErrorKind::InvalidValue {
                what: "Fragment Number",
                value: number.into(),
            });
        }
        Ok(Self {
            number,
            total,
            first_payload,
            body: r.rest().to_vec(),
        })
    }
}

fn parse_nonce(body: &[u8]) -> Result<Vec<u8>, ErrorKind> {
    match body.len() {
        len @ ..NONCE_MIN => Err(ErrorKind::TooShort {
            what: "nonce",
            len,
            min: NONCE_MIN,
        }),
        len if len > NONCE_MAX => Err(ErrorKind::TooLong {
            what: "nonce",
            len,
            max: NONCE_MAX,
        }),
        _ => Ok(body.to_vec()),
    }
}

fn parse_cp(body: &[u8], limits: &ParseLimits) -> Result<Configuration, ErrorKind> {
    let mut r = Reader::new(body);
    let cfg_type = CfgType(r.u8("CFG Type")?);
    r.take(3, "CP RESERVED")?;
    let mut attributes = Vec::new();
    while !r.is_empty() {
        if attributes.len() >= limits.max_attributes {
            return Err(ErrorKind::Limit {
                what: "configuration attributes",
                max: limits.max_attributes,
            });
        }
        let attribute_type = CfgAttributeType(r.u16("attribute type")? & 0x7fff);
        let len = r.u16("attribute length")?;
        let value = r.take(len.into(), "attribute value")?.to_vec();
        attributes.push(CfgAttribute {
            attribute_type,
            value,
        });
    }
    Ok(Configuration {
        cfg_type,
        attributes,
    })
}

fn parse_eap(body: &[u8]) -> Result<Eap, ErrorKind> {
    let mut r = Reader::new(body);
    let code = r.u8("EAP Code")?;
    let identifier = r.u8("EAP Identifier")?;
    let len = usize::from(r.u16("EAP Length")?);
    if len != body.len() {
        return Err(ErrorKind::Mismatch {
            what: "EAP Length",
            value: len,
            expected: body.len(),
        });
    }
    Ok(Eap {
        code,
        identifier,
        data: r.rest().to_vec(),
    })
}

impl Payload {
    /// The payload type that announces this payload.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Self::Sa(_) => PayloadType::SA,
            Self::Ke(_) => PayloadType::KE,
            Self::IdI(_) => PayloadType::IDI,
            Self::IdR(_) => PayloadType::IDR,
            Self::Cert(_) => PayloadType::CERT,
            Self::CertReq(_) => PayloadType::CERTREQ,
            Self::Auth(_) => PayloadType::AUTH,
            Self::Nonce(_) => PayloadType::NONCE,
            Self::Notify(_) => PayloadType::NOTIFY,
            Self::Delete(_) => PayloadType::DELETE,
            Self::VendorId(_) => PayloadType::VENDOR_ID,
            Self::TsI(_) => PayloadType::TSI,
            Self::TsR(_) => PayloadType::TSR,
            Self::Sk(_) => PayloadType::SK,
            Self::Cp(_) => PayloadType::CP,
            Self::Eap(_) => PayloadType::EAP,
            Self::Skf(_) => PayloadType::SKF,
            Self::Unknown { payload_type, .. } => *payload_type,
        }
    }

    /// Whether this is an SK or SKF payload, which ends a chain.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Self::Sk(_) | Self::Skf(_))
    }

    /// Parses the body of a payload of type `t`, other than SK and SKF.
    fn parse_body(
        t: PayloadType,
        critical: bool,
        body: &[u8],
        limits: &ParseLimits,
    ) -> Result<Self, ErrorKind> {
        Ok(match t {
            PayloadType::SA => Self::Sa(sa::parse_proposals(body, limits)?),
            PayloadType::KE => {
                let mut r = Reader::new(body);
                let group = KeId(r.u16("DH Group Num")?);
                r.take(2, "KE RESERVED")?;
                Self::Ke(KeyExchange {
                    group,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::IDI => Self::IdI(Identification::parse(body)?),
            PayloadType::IDR => Self::IdR(Identification::parse(body)?),
            PayloadType::CERT | PayloadType::CERTREQ => {
                let mut r = Reader::new(body);
                let encoding = CertEncoding(r.u8("Cert Encoding")?);
                let c = Certificate {
                    encoding,
                    data: r.rest().to_vec(),
                };
                if t == PayloadType::CERT {
                    Self::Cert(c)
                } else {
                    Self::CertReq(c)
                }
            }
            PayloadType::AUTH => {
                let mut r = Reader::new(body);
                let method = AuthMethod(r.u8("Auth Method")?);
                r.take(3, "AUTH RESERVED")?;
                Self::Auth(Authentication {
                    method,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::NONCE => Self::Nonce(parse_nonce(body)?),
            PayloadType::NOTIFY => Self::Notify(Notify::parse(body)?),
            PayloadType::DELETE => Self::Delete(Delete::parse(body)?),
            PayloadType::VENDOR_ID => Self::VendorId(body.to_vec()),
            PayloadType::TSI => Self::TsI(ts::parse_selectors(body, limits)?),
            PayloadType::TSR => Self::TsR(ts::parse_selectors(body, limits)?),
            PayloadType::CP => Self::Cp(parse_cp(body, limits)?),
            PayloadType::EAP => Self::Eap(parse_eap(body)?),
            _ if critical => return Err(ErrorKind::UnsupportedCriticalPayload(t)),
            _ => Self::Unknown {
                payload_type: t,
                critical,
                body: body.to_vec(),
            },
        })
    }

    /// Emits the generic header (with `next` as Next Payload) and the body.
    /// An open SK payload cannot be emitted here: its body needs sealing.
    fn emit(&self, next: PayloadType, out: &mut Vec<u8>) -> Result<(), EmitError> {
        let start = out.len();
        let critical = matches!(self, Self::Unknown { critical: true, .. });
        out.push(next.0);
        out.push(if critical { CRITICAL } else { 0 });
        let len = Len16::new(out, start);
        match self {
            Self::Sa(p) => sa::emit_proposals(p, out)?,
            Self::Ke(k) => {
                out.extend_from_slice(&k.group.0.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&k.data);
            }
            Self::IdI(id) | Self::IdR(id) => id.emit(out),
            Self::Cert(c) | Self::CertReq(c) => {
                out.push(c.encoding.0);
                out.extend_from_slice(&c.data);
            }
            Self::Auth(a) => {
                out.extend_from_slice(&[a.method.0, 0, 0, 0]);
                out.extend_from_slice(&a.data);
            }
            Self::Nonce(n) => {
                if !(NONCE_MIN..=NONCE_MAX).contains(&n.len()) {
                    return Err(EmitError::Invalid {
                        what: "nonce length",
                        value: n.len(),
                    });
                }
                out.extend_from_slice(n);
            }
            Self::Notify(n) => n.emit(out)?,
            Self::Delete(d) => d.emit(out)?,
            Self::VendorId(v) => out.extend_from_slice(v),
            Self::TsI(t) | Self::TsR(t) => ts::emit_selectors(t, out)?,
            Self::Cp(c) => {
                out.extend_from_slice(&[c.cfg_type.0, 0, 0, 0]);
                for a in &c.attributes {
                    if a.attribute_type.0 > 0x7fff {
                        return Err(EmitError::Invalid {
                            what: "CP attribute type",
                            value: a.attribute_type.0.into(),
                        });
                    }
                    out.extend_from_slice(&a.attribute_type.0.to_be_bytes());
                    out.extend_from_slice(
                        &fit::<u16>(a.value.len(), "CP attribute length")?.to_be_bytes(),
                    );
                    out.extend_from_slice(&a.value);
                }
            }
            Self::Eap(e) => {
                out.extend_from_slice(&[e.code, e.identifier]);
                let eap_len = fit::<u16>(e.data.len().saturating_add(4), "EAP length")?;
                out.extend_from_slice(&eap_len.to_be_bytes());
                out.extend_from_slice(&e.data);
            }
            Self::Sk(Encrypted::Sealed { body, .. }) => out.extend_from_slice(body),
            Self::Sk(Encrypted::Open(_)) => return Err(EmitError::NoCipher),
            Self::Skf(f) => {
                if f.number == 0 || f.number > f.total {
                    return Err(EmitError::Invalid {
                        what: "fragment number",
                        value: f.number.into(),
                    });
                }
                out.extend_from_slice(&f.number.to_be_bytes());
                out.extend_from_slice(&f.total.to_be_bytes());
                out.extend_from_slice(&f.body);
            }
            Self::Unknown { body, .. } => out.extend_from_slice(body),
        }
        len.finish(out, "payload length")
    }
}

/// The Next Payload value that announces the first payload of `payloads`.
pub(crate) fn first_type(payloads: &[Payload]) -> PayloadType {
    payloads
        .first()
        .map_or(PayloadType::NO_NEXT_PAYLOAD, Payload::payload_type)
}

/// Parses a payload chain that starts with a payload of type `first` and
/// must end exactly at the end of `buf`. `base` is the offset of `buf` in
/// the datagram (or in the decrypted contents if `encrypted`), for errors.
/// Outside SK, an SK or SKF payload ends the chain (its Next Payload belongs
/// to the inner chain); inside, it is an error.
pub(crate) fn parse_chain(
    buf: &[u8],
    base: usize,
    first: PayloadType,
    limits: &ParseLimits,
    encrypted: bool,
) -> Result<Vec<Payload>, ParseError> {
    let mut r = Reader::new(buf);
    let mut next = first;
    let mut payloads = Vec::new();
    let offset_of = |r: &Reader<'_>| base.saturating_add(buf.len().saturating_sub(r.remaining()));
    while next != PayloadType::NO_NEXT_PAYLOAD {
        let this = next;
        let offset = offset_of(&r);
        let err = |kind| ParseError {
            offset,
            payload: Some(this),
            encrypted,
            kind,
        };
        if payloads.len() >= limits.max_payloads {
            return Err(err(ErrorKind::Limit {
                what: "payloads",
                max: limits.max_payloads,
            }));
        }
        next = PayloadType(r.u8("generic payload header").map_err(err)?);
        let flags = r.u8("generic payload header").map_err(err)?;
        let body = r.body16(2, 4, "payload").map_err(err)?;
        let payload = match this {
            PayloadType::SK | PayloadType::SKF if encrypted => {
                return Err(err(ErrorKind::MisplacedEncrypted(this)));
            }
            PayloadType::SK | PayloadType::SKF if !r.is_empty() => {
                return Err(err(ErrorKind::TrailingData(r.remaining())));
            }
            PayloadType::SK => Payload::Sk(Encrypted::Sealed {
                first_payload: next,
                body: body.to_vec(),
            }),
            PayloadType::SKF => Payload::Skf(EncryptedFragment::parse(next, body).map_err(err)?),
            _ => Payload::parse_body(this, flags & CRITICAL != 0, body, limits).map_err(err)?,
        };
        if payload.is_encrypted() {
            next = PayloadType::NO_NEXT_PAYLOAD;
        }
        payloads.push(payload);
    }
    r.finish().map_err(|kind| ParseError {
        offset: offset_of(&r),
        payload: None,
        encrypted,
        kind,
    })?;
    Ok(payloads)
}

/// Emits a payload chain; the last payload's Next Payload is `last_next`
/// (an SK or SKF payload that follows), unless it is an SK or SKF payload
/// itself. SK and SKF payloads must be last, and sealed.
pub(crate) fn emit_chain(
    payloads: &[Payload],
    last_next: PayloadType,
    out: &mut Vec<u8>,
) -> Result<(), EmitError> {
    let mut iter = payloads.iter().peekable();
    while let Some(p) = iter.next() {
        let next = match (p, iter.peek()) {
            (Payload::Sk(_) | Payload::Skf(_), Some(_)) => {
                return Err(EmitError::MisplacedEncrypted(p.payload_type()));
            }
            (Payload::Sk(Encrypted::Sealed { first_payload, .. }), None) => *first_payload,
            (Payload::Skf(f), None) => f.first_payload,
            (_, next) => next.map_or(last_next, |n| n.payload_type()),
        };
        p.emit(next, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::codes::NotifyType;
    use super::*;

    /// Emits one payload as a chain and checks its exact octets (generic
    /// header included) and that they parse back to it.
    fn round_trip(p: Payload, expected: &[u8]) {
        let mut out = Vec::new();
        emit_chain(
            core::slice::from_ref(&p),
            PayloadType::NO_NEXT_PAYLOAD,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, expected, "{p:?}");
        let parsed =
            parse_chain(&out, 0, p.payload_type(), &ParseLimits::default(), false).unwrap();
        assert_eq!(parsed, [p]);
    }

    fn parse_one(t: PayloadType, body: &[u8]) -> Result<Payload, ErrorKind> {
        Payload::parse_body(t, false, body, &ParseLimits::default())
    }

    #[test]
    fn payload_bodies_have_the_rfc_layout() {
        round_trip(
            Payload::Ke(KeyExchange {
                group: KeId::ECP_256,
                data: vec![9, 9],
            }),
            &[0, 0, 0, 10, 0, 19, 0, 0, 9, 9],
        );
        round_trip(
            Payload::IdI(Identification::ipv4(Ipv4Addr::new(192, 0, 2, 1))),
            &[0, 0, 0, 12, 1, 0, 0, 0, 192, 0, 2, 1],
        );
        round_trip(
            Payload::IdR(Identification::fqdn("ab")),
            &[0, 0, 0, 10, 2, 0, 0, 0, b'a', b'b'],
        );
        round_trip(
            Payload::IdR(Identification {
                id_type: IdType(201),
                data: vec![7],
            }),
            &[0, 0, 0, 9, 201, 0, 0, 0, 7],
        );
        round_trip(
            Payload::Cert(Certificate {
                encoding: CertEncoding::X509_SIGNATURE,
                data: vec![0x30],
            }),
            &[0, 0, 0, 6, 4, 0x30],
        );
        round_trip(
            Payload::CertReq(Certificate {
                encoding: CertEncoding::X509_SIGNATURE,
                data: vec![],
            }),
            &[0, 0, 0, 5, 4],
        );
        round_trip(
            Payload::Auth(Authentication {
                method: AuthMethod::SHARED_KEY_MIC,
                data: vec![5],
            }),
            &[0, 0, 0, 9, 2, 0, 0, 0, 5],
        );
        round_trip(
            Payload::VendorId(b"iked".to_vec()),
            &[0, 0, 0, 8, b'i', b'k', b'e', b'd'],
        );
        round_trip(
            Payload::Cp(Configuration {
                cfg_type: CfgType::CFG_REQUEST,
                attributes: vec![
                    CfgAttribute {
                        attribute_type: CfgAttributeType::INTERNAL_IP4_ADDRESS,
                        value: vec![],
                    },
                    CfgAttribute {
                        attribute_type: CfgAttributeType::INTERNAL_IP4_DNS,
                        value: vec![8, 8, 8, 8],
                    },
                ],
            }),
            &[0, 0, 0, 20, 1, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 4, 8, 8, 8, 8],
        );
        round_trip(
            Payload::Eap(Eap {
                code: 1,
                identifier: 5,
                data: vec![1, b'x'],
            }),
            &[0, 0, 0, 10, 1, 5, 0, 6, 1, b'x'],
        );
        round_trip(
            Payload::Skf(EncryptedFragment {
                number: 2,
                total: 3,
                first_payload: PayloadType::NO_NEXT_PAYLOAD,
                body: vec![1, 2],
            }),
            &[0, 0, 0, 10, 0, 2, 0, 3, 1, 2],
        );
        round_trip(
            Payload::Sk(Encrypted::Sealed {
                first_payload: PayloadType::IDI,
                body: vec![1, 2],
            }),
            &[35, 0, 0, 6, 1, 2],
        );
        round_trip(
            Payload::Unknown {
                payload_type: PayloadType(49),
                critical: false,
                body: vec![3],
            },
            &[0, 0, 0, 5, 3],
        );
    }

    #[test]
    fn typed_identities() {
        let v6 = Ipv6Addr::LOCALHOST;
        assert_eq!(Identification::ipv6(v6).value(), Some(IdValue::Ipv6(v6)));
        assert_eq!(
            Identification::ipv4(Ipv4Addr::LOCALHOST).value(),
            Some(IdValue::Ipv4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            Identification::rfc822("a@b").value(),
            Some(IdValue::Rfc822("a@b"))
        );
        assert_eq!(
            Identification::fqdn("x.y").value(),
            Some(IdValue::Fqdn("x.y"))
        );
        assert_eq!(
            Identification::der_dn(vec![0x30, 0]).value(),
            Some(IdValue::DerDn(&[0x30, 0]))
        );
        assert_eq!(
            Identification::key_id(vec![1]).value(),
            Some(IdValue::KeyId(&[1]))
        );
        assert_eq!(
            Identification {
                id_type: IdType::FQDN,
                data: vec![0xff]
            }
            .value(),
            None
        );
        assert_eq!(
            Identification {
                id_type: IdType::NULL,
                data: vec![]
            }
            .value(),
            None
        );
        assert_eq!(
            Identification::fqdn("ab").to_body(),
            [2, 0, 0, 0, b'a', b'b']
        );
    }

    #[test]
    fn bad_bodies_are_rejected() {
        let e = parse_one(PayloadType::IDI, &[1, 0, 0, 0, 1, 2, 3]).unwrap_err();
        assert_eq!(
            e,
            ErrorKind::Mismatch {
                what: "address identity length",
                value: 3,
                expected: 4
            }
        );
        assert!(parse_one(PayloadType::IDR, &[5, 0, 0, 0, 1]).is_err());
        assert!(matches!(
            parse_one(PayloadType::IDR, &[2, 0, 0]),
            Err(ErrorKind::Truncated { .. })
        ));
        assert!(matches!(
            parse_one(PayloadType::KE, &[0, 19, 0]),
            Err(ErrorKind::Truncated { .. })
        ));
        assert!(matches!(
            parse_one(PayloadType::AUTH, &[2, 0]),
            Err(ErrorKind::Truncated { .. })
        ));
        assert!(matches!(
            parse_one(PayloadType::CERT, &[]),
            Err(ErrorKind::Truncated { .. })
        ));
        let e = parse_one(PayloadType::EAP, &[1, 5, 0, 7, 1, 2]).unwrap_err();
        assert_eq!(
            e,
            ErrorKind::Mismatch {
                what: "EAP Length",
                value: 7,
                expected: 6
            }
        );
        assert!(parse_one(PayloadType::EAP, &[1, 5, 0]).is_err());
        assert_eq!(
            parse_one(PayloadType::NONCE, &[0; 16]),
            Ok(Payload::Nonce(vec![0; 16]))
        );
        assert_eq!(
            parse_one(PayloadType::NONCE, &[0; 256]),
            Ok(Payload::Nonce(vec![0; 256]))
        );
        assert_eq!(
            parse_one(PayloadType::NONCE, &[0; 15]),
            Err(ErrorKind::TooShort {
                what: "nonce",
                len: 15,
                min: 16
            })
        );
        assert_eq!(
            parse_one(PayloadType::NONCE, &[0; 257]),
            Err(ErrorKind::TooLong {
                what: "nonce",
                len: 257,
                max: 256
            })
        );
        // CP: the R bit is ignored; an attribute may not run past the payload.
        let cp = parse_one(PayloadType::CP, &[1, 0, 0, 0, 0x80, 1, 0, 0]).unwrap();
        assert!(
            matches!(cp, Payload::Cp(c) if c.attributes[0].attribute_type == CfgAttributeType::INTERNAL_IP4_ADDRESS)
        );
        assert!(parse_one(PayloadType::CP, &[1, 0, 0, 0, 0, 1, 0, 5, 1]).is_err());
        let many = [&[1u8, 0, 0, 0][..], &[0, 1, 0, 0].repeat(65)].concat();
        assert!(matches!(
            parse_one(PayloadType::CP, &many),
            Err(ErrorKind::Limit { .. })
        ));
        // SKF numbers are 1..=total.
        for (n, t) in [(0u8, 1u8), (3, 2), (1, 0)] {
            let body = [0, n, 0, t];
            let e = parse_chain(
                &[0, 0, 0, 8, 0, n, 0, t],
                0,
                PayloadType::SKF,
                &ParseLimits::default(),
                false,
            );
            assert!(
                matches!(
                    e,
                    Err(ParseError {
                        kind: ErrorKind::InvalidValue { .. },
                        ..
                    })
                ),
                "{body:?}"
            );
        }
        // An SK payload must end the message.
        let e = parse_chain(
            &[0, 0, 0, 4, 0],
            0,
            PayloadType::SK,
            &ParseLimits::default(),
            false,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::TrailingData(1));
    }

    #[test]
    fn emit_refuses_unencodable_values() {
        let emit = |p: Payload| emit_chain(&[p], PayloadType::NO_NEXT_PAYLOAD, &mut Vec::new());
        let attr = CfgAttribute {
            attribute_type: CfgAttributeType(0x8001),
            value: vec![],
        };
        assert!(
            emit(Payload::Cp(Configuration {
                cfg_type: CfgType::CFG_SET,
                attributes: vec![attr]
            }))
            .is_err()
        );
        assert!(
            emit(Payload::Eap(Eap {
                code: 1,
                identifier: 0,
                data: vec![0; 65_532]
            }))
            .is_err()
        );
        assert!(emit(Payload::TsI(vec![])).is_err());
        assert!(emit(Payload::Sa(vec![])).is_err());
        let skf = EncryptedFragment {
            number: 2,
            total: 1,
            first_payload: PayloadType::NO_NEXT_PAYLOAD,
            body: vec![],
        };
        assert!(emit(Payload::Skf(skf)).is_err());
        let n = Notify {
            spi: vec![0; 256],
            ..Notify::new(NotifyType::REKEY_SA, vec![])
        };
        assert!(emit(Payload::Notify(n)).is_err());
    }
}
