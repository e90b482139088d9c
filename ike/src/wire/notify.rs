//! The Notify (RFC 7296 3.10) and Delete (3.11) payloads.

use super::codes::{KeId, NotifyType, PayloadType, ProtocolId};
use super::error::{EmitError, ErrorKind};
use super::reader::{Reader, fit};

/// A Notify payload. `data` is kept raw; typed helpers below build and read
/// the common kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    /// The protocol of the SA this is about, or NONE.
    pub protocol: ProtocolId,
    /// The SPI of that SA; empty for notifications about the IKE SA.
    pub spi: Vec<u8>,
    /// What is being notified.
    pub notify_type: NotifyType,
    /// Type-specific data.
    pub data: Vec<u8>,
}

/// Length of a NAT_DETECTION_*_IP hash (SHA-1).
pub const NAT_DETECTION_HASH_LEN: usize = 20;

impl Notify {
    /// A notification about the IKE SA itself (protocol NONE, no SPI).
    pub fn new(notify_type: NotifyType, data: Vec<u8>) -> Self {
        Self {
            protocol: ProtocolId::NONE,
            spi: Vec::new(),
            notify_type,
            data,
        }
    }

    /// N(UNSUPPORTED_CRITICAL_PAYLOAD): the data is the one-octet payload type.
    pub fn unsupported_critical_payload(payload: PayloadType) -> Self {
        Self::new(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![payload.0])
    }

    /// N(INVALID_KE_PAYLOAD) naming the group the responder wants.
    pub fn invalid_ke_payload(group: KeId) -> Self {
        Self::new(
            NotifyType::INVALID_KE_PAYLOAD,
            group.0.to_be_bytes().to_vec(),
        )
    }

    /// N(NAT_DETECTION_SOURCE_IP) or N(NAT_DETECTION_DESTINATION_IP).
    pub fn nat_detection(destination: bool, hash: [u8; NAT_DETECTION_HASH_LEN]) -> Self {
        let t = if destination {
            NotifyType::NAT_DETECTION_DESTINATION_IP
        } else {
            NotifyType::NAT_DETECTION_SOURCE_IP
        };
        Self::new(t, hash.to_vec())
    }

    /// N(COOKIE) with the responder's cookie.
    pub fn cookie(cookie: Vec<u8>) -> Self {
        Self::new(NotifyType::COOKIE, cookie)
    }

    /// N(REKEY_SA) for the Child SA `spi` of `protocol`.
    pub fn rekey_sa(protocol: ProtocolId, spi: Vec<u8>) -> Self {
        Self {
            protocol,
            spi,
            notify_type: NotifyType::REKEY_SA,
            data: Vec::new(),
        }
    }

    /// The payload type of an N(UNSUPPORTED_CRITICAL_PAYLOAD).
    pub fn unsupported_payload_type(&self) -> Option<PayloadType> {
        match (self.notify_type, self.data.as_slice()) {
            (NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, [t]) => Some(PayloadType(*t)),
            _ => None,
        }
    }

    /// The group of an N(INVALID_KE_PAYLOAD), if its data is two octets.
    pub fn invalid_ke_group(&self) -> Option<KeId> {
        match (self.notify_type, self.data.as_slice()) {
            (NotifyType::INVALID_KE_PAYLOAD, &[a, b]) => Some(KeId(u16::from_be_bytes([a, b]))),
            _ => None,
        }
    }

    /// The hash of an N(NAT_DETECTION_*_IP), if it is 20 octets.
    pub fn nat_detection_hash(&self) -> Option<[u8; NAT_DETECTION_HASH_LEN]> {
        match self.notify_type {
            NotifyType::NAT_DETECTION_SOURCE_IP | NotifyType::NAT_DETECTION_DESTINATION_IP => {
                self.data.as_slice().try_into().ok()
            }
            _ => None,
        }
    }

    /// The cookie of an N(COOKIE) (RFC 7296 allows 1 to 64 octets).
    pub fn cookie_data(&self) -> Option<&[u8]> {
        (self.notify_type == NotifyType::COOKIE && (1..=64).contains(&self.data.len()))
            .then_some(self.data.as_slice())
    }

    /// The protocol and SPI of an N(REKEY_SA), if it names one.
    pub fn rekey_spi(&self) -> Option<(ProtocolId, &[u8])> {
        (self.notify_type == NotifyType::REKEY_SA && !self.spi.is_empty())
            .then_some((self.protocol, self.spi.as_slice()))
    }

    pub(crate) fn parse(body: &[u8]) -> Result<Self, ErrorKind> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId(r.u8("Protocol ID")?);
        let spi_size = r.u8("SPI Size")?;
        let notify_type = NotifyType(r.u16("Notify Message Type")?);
        let spi = r.take(spi_size.into(), "SPI")?.to_vec();
        Ok(Self {
            protocol,
            spi,
            notify_type,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        out.push(self.protocol.0);
        out.push(fit(self.spi.len(), "notify SPI size")?);
        out.extend_from_slice(&self.notify_type.0.to_be_bytes());
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// A Delete payload: SAs of one protocol that the sender has deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    /// IKE, ESP or AH.
    pub protocol: ProtocolId,
    /// Size of each SPI: 0 for IKE (the SA is the one the message is on),
    /// 4 for ESP and AH.
    pub spi_size: u8,
    /// The SPIs, each `spi_size` octets.
    pub spis: Vec<Vec<u8>>,
}

impl Delete {
    /// Deletes the IKE SA the message is sent on.
    pub fn ike() -> Self {
        Self {
            protocol: ProtocolId::IKE,
            spi_size: 0,
            spis: Vec::new(),
        }
    }

    /// Deletes Child SAs of `protocol` by their 4-octet SPIs.
    pub fn child(protocol: ProtocolId, spis: impl IntoIterator<Item = u32>) -> Self {
        let spis = spis.into_iter().map(|s| s.to_be_bytes().to_vec()).collect();
        Self {
            protocol,
            spi_size: 4,
            spis,
        }
    }

    pub(crate) fn parse(body: &[u8]) -> Result<Self, ErrorKind> {
        let mut r = Reader::new(body);
        let protocol = ProtocolId(r.u8("Protocol ID")?);
        let spi_size = r.u8("SPI Size")?;
        let count = usize::from(r.u16("Num of SPIs")?);
        if spi_size == 0 && count != 0 {
            return Err(ErrorKind::Mismatch {
                what: "Num of SPIs with SPI Size 0",
                value: count,
                expected: 0,
            });
        }
        let want = count.saturating_mul(spi_size.into());
        if r.remaining() != want {
            return Err(ErrorKind::Mismatch {
                what: "length of the SPIs",
                value: r.remaining(),
                expected: want,
            });
        }
        let spis = r
            .rest()
            .chunks(spi_size.max(1).into())
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Self {
            protocol,
            spi_size,
            spis,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) -> Result<(), EmitError> {
        if let Some(bad) = self
            .spis
            .iter()
            .find(|s| s.len() != usize::from(self.spi_size))
        {
            return Err(EmitError::Invalid {
                what: "delete SPI length",
                value: bad.len(),
            });
        }
        out.push(self.protocol.0);
        out.push(self.spi_size);
        out.extend_from_slice(&fit::<u16>(self.spis.len(), "delete SPI count")?.to_be_bytes());
        self.spis.iter().for_each(|s| out.extend_from_slice(s));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_helpers_round_trip() {
        let n = Notify::invalid_ke_payload(KeId::CURVE25519);
        assert_eq!(n.data, [0, 31]);
        assert_eq!(n.invalid_ke_group(), Some(KeId::CURVE25519));
        let n = Notify::nat_detection(true, [7; 20]);
        assert_eq!(n.notify_type, NotifyType::NAT_DETECTION_DESTINATION_IP);
        assert_eq!(n.nat_detection_hash(), Some([7; 20]));
        assert_eq!(
            Notify::nat_detection(false, [1; 20]).notify_type,
            NotifyType::NAT_DETECTION_SOURCE_IP
        );
        assert_eq!(
            Notify::cookie(vec![1, 2]).cookie_data(),
            Some(&[1u8, 2][..])
        );
        assert_eq!(Notify::cookie(vec![0; 65]).cookie_data(), None);
        let r = Notify::rekey_sa(ProtocolId::ESP, vec![1, 2, 3, 4]);
        assert_eq!(r.rekey_spi(), Some((ProtocolId::ESP, &[1u8, 2, 3, 4][..])));
        let u = Notify::unsupported_critical_payload(PayloadType(99));
        assert_eq!(u.data, [99]);
        assert_eq!(u.unsupported_payload_type(), Some(PayloadType(99)));
        // Helpers refuse data of the wrong shape or type.
        let mut bad = Notify::invalid_ke_payload(KeId::ECP_256);
        bad.data.push(0);
        assert_eq!(bad.invalid_ke_group(), None);
        assert_eq!(Notify::cookie(vec![1]).invalid_ke_group(), None);
        assert_eq!(
            Notify::new(NotifyType::COOKIE, vec![0; 20]).nat_detection_hash(),
            None
        );
    }

    #[test]
    fn notify_and_delete_round_trip() {
        let n = Notify::rekey_sa(ProtocolId::ESP, vec![9, 9, 9, 9]);
        let mut out = Vec::new();
        n.emit(&mut out).unwrap();
        assert_eq!(out, [3, 4, 0x40, 0x09, 9, 9, 9, 9]);
        assert_eq!(Notify::parse(&out), Ok(n));

        let d = Delete::child(ProtocolId::ESP, [1, 0x0102_0304]);
        let mut out = Vec::new();
        d.emit(&mut out).unwrap();
        assert_eq!(out, [3, 4, 0, 2, 0, 0, 0, 1, 1, 2, 3, 4]);
        assert_eq!(Delete::parse(&out), Ok(d));
        let mut out = Vec::new();
        Delete::ike().emit(&mut out).unwrap();
        assert_eq!(Delete::parse(&out), Ok(Delete::ike()));
    }

    #[test]
    fn bad_notify_and_delete_are_rejected() {
        assert!(matches!(
            Notify::parse(&[0, 4, 0, 1, 1, 2]),
            Err(ErrorKind::Truncated { what: "SPI", .. })
        ));
        assert!(matches!(
            Delete::parse(&[3, 4, 0, 2, 0, 0, 0, 1]),
            Err(ErrorKind::Mismatch { .. })
        ));
        assert!(matches!(
            Delete::parse(&[1, 0, 0, 9]),
            Err(ErrorKind::Mismatch { .. })
        ));
        let bad = Delete {
            protocol: ProtocolId::ESP,
            spi_size: 4,
            spis: vec![vec![1]],
        };
        assert!(bad.emit(&mut Vec::new()).is_err());
    }
}
