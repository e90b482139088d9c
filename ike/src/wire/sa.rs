//! The Security Association payload: proposals, transforms and their
//! attributes (RFC 7296 3.3).

use super::ParseLimits;
use super::codes::{ProtocolId, TransformAttributeType, TransformType};
use super::error::{EmitError, ErrorKind};
use super::reader::{Len16, Reader, fit};

/// One proposal inside an SA payload (RFC 7296 3.3.1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Proposal {
    /// Proposal Num: 1 for the first proposal, then each one more.
    pub number: u8,
    /// IKE, ESP or AH.
    pub protocol: ProtocolId,
    /// The SPI: empty in an initial IKE_SA_INIT, 8 octets for an IKE SA
    /// being rekeyed, 4 octets for ESP and AH.
    pub spi: Vec<u8>,
    /// Transforms in the order they appear on the wire.
    pub transforms: Vec<Transform>,
}

/// One transform substructure (RFC 7296 3.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Transform {
    /// Which kind of algorithm this transform names.
    pub transform_type: TransformType,
    /// The algorithm ID; its meaning depends on `transform_type`
    /// (see [`super::codes::EncrId`], [`super::codes::PrfId`], ...).
    pub id: u16,
    /// The Key Length attribute, in bits, if present.
    pub key_length: Option<u16>,
    /// Any other attributes, kept so that they survive a parse/emit round trip.
    pub other_attributes: Vec<TransformAttribute>,
}

/// A transform attribute other than Key Length (RFC 7296 3.3.5), kept as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransformAttribute {
    /// AF=1: a 16-bit value in the attribute header.
    Short {
        /// Attribute type without the AF bit.
        attribute_type: u16,
        /// The value.
        value: u16,
    },
    /// AF=0: a length and a variable-length value.
    Long {
        /// Attribute type without the AF bit.
        attribute_type: u16,
        /// The value.
        value: Vec<u8>,
    },
}

/// Last Substruc value of a proposal that is followed by another.
const MORE_PROPOSALS: u8 = 2;
/// Last Substruc value of a transform that is followed by another.
const MORE_TRANSFORMS: u8 = 3;
/// The AF bit: the attribute is a 16-bit value in its header (TV format).
const AF: u16 = 0x8000;

/// Checks a Last Substruc octet against the position of its substructure.
fn check_last(value: u8, is_last: bool, more: u8, what: &'static str) -> Result<(), ErrorKind> {
    let expected = if is_last { 0 } else { more };
    if value == expected {
        Ok(())
    } else {
        Err(ErrorKind::Mismatch {
            what,
            value: value.into(),
            expected: expected.into(),
        })
    }
}

/// Parses the body of an SA payload: one or more proposals.
pub(crate) fn parse_proposals(
    body: &[u8],
    limits: &ParseLimits,
) -> Result<Vec<Proposal>, ErrorKind> {
    let mut r = Reader::new(body);
    let mut proposals = Vec::new();
    while !r.is_empty() {
        if proposals.len() >= limits.max_proposals {
            return Err(ErrorKind::Limit {
                what: "proposals",
                max: limits.max_proposals,
            });
        }
        let last = r.u8("proposal Last Substruc")?;
        r.u8("proposal RESERVED")?;
        let p = Proposal::parse(r.body16(2, 8, "proposal")?, limits)?;
        check_last(last, r.is_empty(), MORE_PROPOSALS, "proposal Last Substruc")?;
        proposals.push(p);
    }
    if proposals.is_empty() {
        return Err(ErrorKind::TooShort {
            what: "SA payload",
            len: 4,
            min: 4 + 8,
        });
    }
    Ok(proposals)
}

/// Emits the body of an SA payload.
pub(crate) fn emit_proposals(proposals: &[Proposal], out: &mut Vec<u8>) -> Result<(), EmitError> {
    if proposals.is_empty() {
        return Err(EmitError::Invalid {
            what: "number of proposals",
            value: 0,
        });
    }
    let mut rest = proposals.len();
    for p in proposals {
        rest = rest.saturating_sub(1);
        let start = out.len();
        out.push(if rest == 0 { 0 } else { MORE_PROPOSALS });
        out.push(0);
        let len = Len16::new(out, start);
        p.emit(out)?;
        len.finish(out, "proposal length")?;
    }
    Ok(())
}

impl Proposal {
    fn parse(body: &[u8], limits: &ParseLimits) -> Result<Self, ErrorKind> {
        let mut r = Reader::new(body);
        let number = r.u8("Proposal Num")?;
        let protocol = ProtocolId(r.u8("Protocol ID")?);
        let spi_size = r.u8("SPI Size")?;
        let count = usize::from(r.u8("Num Transforms")?);
        if count > limits.max_transforms {
            return Err(ErrorKind::Limit {
                what: "transforms in a proposal",
                max: limits.max_transforms,
            });
        }
        let spi = r.take(spi_size.into(), "SPI")?.to_vec();
        let mut transforms = Vec::with_capacity(count);
        while !r.is_empty() {
            let last = r.u8("transform Last Substruc")?;
            r.u8("transform RESERVED")?;
            let t = Transform::parse(r.body16(2, 8, "transform")?, limits)?;
            check_last(
                last,
                r.is_empty(),
                MORE_TRANSFORMS,
                "transform Last Substruc",
            )?;
            transforms.push(t);
            if transforms.len() > count {
                break;
            }
        }
        if transforms.len() != count {
            return Err(ErrorKind::Mismatch {
                what: "Num Transforms",
                value: count,
                expected: transforms.len(),
            });
        }
        Ok(Self {
            number,
            protocol,
            spi,
            transforms,
        })
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        out.push(self.number);
        out.push(self.protocol.0);
        out.push(fit(self.spi.len(), "proposal SPI size")?);
        out.push(fit(self.transforms.len(), "Num Transforms")?);
        out.extend_from_slice(&self.spi);
        let mut rest = self.transforms.len();
        for t in &self.transforms {
            rest = rest.saturating_sub(1);
            let start = out.len();
            out.push(if rest == 0 { 0 } else { MORE_TRANSFORMS });
            out.push(0);
            let len = Len16::new(out, start);
            t.emit(out)?;
            len.finish(out, "transform length")?;
        }
        Ok(())
    }
}

impl Transform {
    /// Parses a transform after its Last Substruc, RESERVED and length.
    /// The first short-form Key Length attribute goes to `key_length`; any
    /// other attribute, a second Key Length included, is kept in order in
    /// `other_attributes`.
    fn parse(body: &[u8], limits: &ParseLimits) -> Result<Self, ErrorKind> {
        let mut r = Reader::new(body);
        let transform_type = TransformType(r.u8("Transform Type")?);
        r.u8("transform RESERVED")?;
        let id = r.u16("Transform ID")?;
        let mut t = Self {
            transform_type,
            id,
            key_length: None,
            other_attributes: Vec::new(),
        };
        let mut count = 0usize;
        while !r.is_empty() {
            count = count.saturating_add(1);
            if count > limits.max_attributes {
                return Err(ErrorKind::Limit {
                    what: "attributes in a transform",
                    max: limits.max_attributes,
                });
            }
            let head = r.u16("attribute type")?;
            let attribute_type = head & !AF;
            if head & AF != 0 {
                let value = r.u16("attribute value")?;
                if attribute_type == TransformAttributeType::KEY_LENGTH.0
                    && t.key_length.is_none()
                    && t.other_attributes.is_empty()
                {
                    t.key_length = Some(value);
                } else {
                    t.other_attributes.push(TransformAttribute::Short {
                        attribute_type,
                        value,
                    });
                }
            } else {
                let len = r.u16("attribute length")?;
                let value = r.take(len.into(), "attribute value")?.to_vec();
                t.other_attributes.push(TransformAttribute::Long {
                    attribute_type,
                    value,
                });
            }
        }
        Ok(t)
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        out.push(self.transform_type.0);
        out.push(0);
        out.extend_from_slice(&self.id.to_be_bytes());
        if let Some(bits) = self.key_length {
            out.extend_from_slice(&(TransformAttributeType::KEY_LENGTH.0 | AF).to_be_bytes());
            out.extend_from_slice(&bits.to_be_bytes());
        }
        for a in &self.other_attributes {
            let (TransformAttribute::Short { attribute_type, .. }
            | TransformAttribute::Long { attribute_type, .. }) = a;
            if attribute_type & AF != 0 {
                return Err(EmitError::Invalid {
                    what: "attribute type",
                    value: (*attribute_type).into(),
                });
            }
            match a {
                TransformAttribute::Short {
                    attribute_type,
                    value,
                } => {
                    out.extend_from_slice(&(attribute_type | AF).to_be_bytes());
                    out.extend_from_slice(&value.to_be_bytes());
                }
                TransformAttribute::Long {
                    attribute_type,
                    value,
                } => {
                    out.extend_from_slice(&attribute_type.to_be_bytes());
                    out.extend_from_slice(
                        &fit::<u16>(value.len(), "attribute length")?.to_be_bytes(),
                    );
                    out.extend_from_slice(value);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::codes::{EncrId, IntegId};
    use super::*;

    fn esp_proposal() -> Proposal {
        Proposal {
            number: 1,
            protocol: ProtocolId::ESP,
            spi: vec![0xaa, 0xbb, 0xcc, 0xdd],
            transforms: vec![
                Transform {
                    transform_type: TransformType::ENCR,
                    id: EncrId::AES_CBC.0,
                    key_length: Some(256),
                    other_attributes: vec![],
                },
                Transform {
                    transform_type: TransformType::INTEG,
                    id: IntegId::HMAC_SHA2_256_128.0,
                    key_length: None,
                    other_attributes: vec![
                        TransformAttribute::Short {
                            attribute_type: 99,
                            value: 7,
                        },
                        TransformAttribute::Long {
                            attribute_type: 100,
                            value: vec![1, 2, 3],
                        },
                    ],
                },
            ],
        }
    }

    #[test]
    fn proposals_round_trip_exactly() {
        let props = vec![
            esp_proposal(),
            Proposal {
                number: 2,
                ..esp_proposal()
            },
        ];
        let mut out = Vec::new();
        emit_proposals(&props, &mut out).unwrap();
        // First proposal: more follow (2), length 8 + 4 + 12 + (8 + 4 + 7).
        assert_eq!(&out[..4], &[2, 0, 0, 43]);
        // First transform: more follow (3), length 12, ENCR, AES_CBC, KEY_LENGTH 256.
        assert_eq!(&out[12..24], &[3, 0, 0, 12, 1, 0, 0, 12, 0x80, 14, 1, 0]);
        assert_eq!(out[43], 0, "the last proposal says so");
        assert_eq!(parse_proposals(&out, &ParseLimits::default()), Ok(props));
    }

    #[test]
    fn bad_substructures_are_rejected() {
        let mut out = Vec::new();
        emit_proposals(&[esp_proposal()], &mut out).unwrap();
        let limits = ParseLimits::default();
        let mut more = out.clone();
        more[0] = 2; // says another proposal follows, but none does
        assert!(matches!(
            parse_proposals(&more, &limits),
            Err(ErrorKind::Mismatch { .. })
        ));
        let mut count = out.clone();
        count[7] = 3; // Num Transforms 3, but 2 are there
        assert_eq!(
            parse_proposals(&count, &limits),
            Err(ErrorKind::Mismatch {
                what: "Num Transforms",
                value: 3,
                expected: 2
            })
        );
        let mut short = out.clone();
        short[14..16].copy_from_slice(&[0, 7]); // transform length below its header
        assert_eq!(
            parse_proposals(&short, &limits),
            Err(ErrorKind::TooShort {
                what: "transform",
                len: 7,
                min: 8
            })
        );
        let mut long = out.clone();
        long[2..4].copy_from_slice(&[0, 200]); // proposal runs past the payload
        assert!(matches!(
            parse_proposals(&long, &limits),
            Err(ErrorKind::Overrun { len: 200, .. })
        ));
        assert!(parse_proposals(&[], &limits).is_err());
        let tight = ParseLimits {
            max_transforms: 1,
            ..limits
        };
        assert!(matches!(
            parse_proposals(&out, &tight),
            Err(ErrorKind::Limit { .. })
        ));
        let tight = ParseLimits {
            max_attributes: 1,
            ..limits
        };
        assert!(matches!(
            parse_proposals(&out, &tight),
            Err(ErrorKind::Limit { .. })
        ));
        let tight = ParseLimits {
            max_proposals: 0,
            ..limits
        };
        assert!(matches!(
            parse_proposals(&out, &tight),
            Err(ErrorKind::Limit { .. })
        ));
    }

    #[test]
    fn second_key_length_is_kept_in_order() {
        let t = Transform {
            transform_type: TransformType::ENCR,
            id: 12,
            key_length: Some(128),
            other_attributes: vec![TransformAttribute::Short {
                attribute_type: 14,
                value: 256,
            }],
        };
        let mut out = Vec::new();
        t.emit(&mut out).unwrap();
        assert_eq!(Transform::parse(&out, &ParseLimits::default()), Ok(t));
        let bad = Transform {
            other_attributes: vec![TransformAttribute::Short {
                attribute_type: 0x8001,
                value: 0,
            }],
            ..Transform::default()
        };
        assert!(bad.emit(&mut Vec::new()).is_err());
    }
}
