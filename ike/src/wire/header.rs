//! The IKE header (RFC 7296 3.1).

use core::ops::BitOr;

use super::codes::{ExchangeType, PayloadType};
use super::error::{EmitError, ErrorKind, ParseError};
use super::reader::{Reader, fit, patch};

/// Length of the IKE header.
pub const HEADER_LEN: usize = 28;
/// Major version 2 in the high nibble of the version octet.
const MAJOR_2: u8 = 0x20;

/// The Flags octet, kept whole so that reserved bits survive a round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// I: set by the original initiator of the IKE SA.
    pub const INITIATOR: Self = Self(0x08);
    /// V: the sender can speak a higher major version.
    pub const VERSION: Self = Self(0x10);
    /// R: this message is a response.
    pub const RESPONSE: Self = Self(0x20);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Flags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// The IKE header, less the fields that depend on the payloads (Next
/// Payload and Length), which are read and written with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// IKE SA Initiator's SPI.
    pub spi_i: u64,
    /// IKE SA Responder's SPI; 0 in an IKE_SA_INIT request.
    pub spi_r: u64,
    /// Minor version (0 to 15; ignored on receipt, kept for the round trip).
    pub minor_version: u8,
    /// Exchange Type.
    pub exchange: ExchangeType,
    /// Flags.
    pub flags: Flags,
    /// Message ID.
    pub message_id: u32,
}

impl Header {
    /// Whether the R flag is set.
    pub const fn is_response(&self) -> bool {
        self.flags.contains(Flags::RESPONSE)
    }

    /// Whether the I flag is set.
    pub const fn is_initiator(&self) -> bool {
        self.flags.contains(Flags::INITIATOR)
    }

    /// Reads the header of a datagram, checking its version and that its
    /// Length is the datagram's length; the payloads are not looked at.
    /// Returns the header and the type of the first payload. Enough to find
    /// the IKE SA a datagram belongs to before parsing the rest.
    pub fn peek(datagram: &[u8]) -> Result<(Self, PayloadType), ParseError> {
        let mut r = Reader::new(datagram);
        let at = |offset| move |kind| ParseError::at(offset, kind);
        let spi_i = r.u64("IKE header").map_err(at(0))?;
        let spi_r = r.u64("IKE header").map_err(at(8))?;
        let next = PayloadType(r.u8("IKE header").map_err(at(16))?);
        let version = r.u8("IKE header").map_err(at(17))?;
        let exchange = ExchangeType(r.u8("IKE header").map_err(at(18))?);
        let flags = Flags(r.u8("IKE header").map_err(at(19))?);
        let message_id = r.u32("IKE header").map_err(at(20))?;
        let length = r.u32("IKE header").map_err(at(24))?;
        if version & 0xf0 != MAJOR_2 {
            return Err(ParseError::at(
                17,
                ErrorKind::InvalidMajorVersion(version >> 4),
            ));
        }
        if usize::try_from(length).ok() != Some(datagram.len()) {
            return Err(ParseError::at(
                24,
                ErrorKind::LengthMismatch {
                    header: length,
                    datagram: datagram.len(),
                },
            ));
        }
        let header = Self {
            spi_i,
            spi_r,
            minor_version: version & 0x0f,
            exchange,
            flags,
            message_id,
        };
        Ok((header, next))
    }

    /// Writes the header with `next` as Next Payload and a zero Length, to be
    /// patched with [`set_length`].
    pub(crate) fn emit(&self, next: PayloadType, out: &mut Vec<u8>) -> Result<(), EmitError> {
        if self.minor_version > 0x0f {
            return Err(EmitError::Invalid {
                what: "minor version",
                value: self.minor_version.into(),
            });
        }
        out.extend_from_slice(&self.spi_i.to_be_bytes());
        out.extend_from_slice(&self.spi_r.to_be_bytes());
        out.extend_from_slice(&[
            next.0,
            MAJOR_2 | self.minor_version,
            self.exchange.0,
            self.flags.0,
        ]);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        Ok(())
    }
}

/// Writes the Length field of the header at the start of `out`.
pub(crate) fn set_length(out: &mut [u8], len: usize) -> Result<(), EmitError> {
    patch(out, 24, &fit::<u32>(len, "message length")?.to_be_bytes())
}
