//! The Security Association payload: proposals, transforms and their
//! attributes (RFC 7296 3.3).

use super::codes::{ProtocolId, TransformType};

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
