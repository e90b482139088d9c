//! Traffic selectors (RFC 7296 3.13), shared by TSi and TSr.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ParseLimits;
use super::codes::TsType;
use super::error::{EmitError, ErrorKind};
use super::reader::{Len16, Reader, fit};

/// One traffic selector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TrafficSelector {
    /// TS_IPV4_ADDR_RANGE.
    Ipv4(AddressRange<Ipv4Addr>),
    /// TS_IPV6_ADDR_RANGE.
    Ipv6(AddressRange<Ipv6Addr>),
    /// Any other TS type, kept raw.
    Unknown {
        /// The TS Type.
        ts_type: TsType,
        /// The octet after the type (IP Protocol ID for address ranges).
        ip_protocol: u8,
        /// Everything after the Selector Length.
        data: Vec<u8>,
    },
}

/// An address range with an IP protocol and a port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressRange<A> {
    /// IP protocol (6 TCP, 17 UDP...), 0 for any.
    pub ip_protocol: u8,
    /// First port of the range.
    pub start_port: u16,
    /// Last port of the range (65535 for any; 0 with start 65535 for
    /// OPAQUE ports).
    pub end_port: u16,
    /// First address of the range.
    pub start: A,
    /// Last address of the range.
    pub end: A,
}

impl<A> AddressRange<A> {
    /// Every protocol and port between `start` and `end`.
    pub fn any(start: A, end: A) -> Self {
        Self {
            ip_protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start,
            end,
        }
    }
}

/// Fixed length of an IPv4 selector: 8 octets of header and ports, 2 addresses.
const IPV4_LEN: usize = 16;
/// Fixed length of an IPv6 selector.
const IPV6_LEN: usize = 40;

fn parse_range<A, const N: usize>(
    r: &mut Reader<'_>,
    ip_protocol: u8,
) -> Result<AddressRange<A>, ErrorKind>
where
    A: From<[u8; N]>,
{
    Ok(AddressRange {
        ip_protocol,
        start_port: r.u16("Start Port")?,
        end_port: r.u16("End Port")?,
        start: r.array::<N>("Starting Address")?.into(),
        end: r.array::<N>("Ending Address")?.into(),
    })
}

/// Parses the body of a TSi or TSr payload.
pub(crate) fn parse_selectors(
    body: &[u8],
    limits: &ParseLimits,
) -> Result<Vec<TrafficSelector>, ErrorKind> {
    let mut r = Reader::new(body);
    let count = usize::from(r.u8("Number of TSs")?);
    r.take(3, "TS RESERVED")?;
    if count == 0 {
        return Err(ErrorKind::InvalidValue {
            what: "Number of TSs",
            value: 0,
        });
    }
    if count > limits.max_selectors {
        return Err(ErrorKind::Limit {
            what: "traffic selectors",
            max: limits.max_selectors,
        });
    }
    let mut selectors = Vec::with_capacity(count);
    for _ in 0..count {
        let ts_type = TsType(r.u8("TS Type")?);
        let ip_protocol = r.u8("IP Protocol ID")?;
        let fixed = match ts_type {
            TsType::IPV4_ADDR_RANGE => IPV4_LEN,
            TsType::IPV6_ADDR_RANGE => IPV6_LEN,
            _ => 4,
        };
        let data = r.body16(2, fixed, "traffic selector")?;
        let len = data.len().saturating_add(4);
        let exact = matches!(ts_type, TsType::IPV4_ADDR_RANGE | TsType::IPV6_ADDR_RANGE);
        if exact && len > fixed {
            return Err(ErrorKind::TooLong {
                what: "traffic selector",
                len,
                max: fixed,
            });
        }
        let mut d = Reader::new(data);
        selectors.push(match ts_type {
            TsType::IPV4_ADDR_RANGE => {
                TrafficSelector::Ipv4(parse_range::<Ipv4Addr, 4>(&mut d, ip_protocol)?)
            }
            TsType::IPV6_ADDR_RANGE => {
                TrafficSelector::Ipv6(parse_range::<Ipv6Addr, 16>(&mut d, ip_protocol)?)
            }
            _ => TrafficSelector::Unknown {
                ts_type,
                ip_protocol,
                data: data.to_vec(),
            },
        });
    }
    r.finish()?;
    Ok(selectors)
}

/// Emits the body of a TSi or TSr payload.
pub(crate) fn emit_selectors(
    selectors: &[TrafficSelector],
    out: &mut Vec<u8>,
) -> Result<(), EmitError> {
    if selectors.is_empty() {
        return Err(EmitError::Invalid {
            what: "number of traffic selectors",
            value: 0,
        });
    }
    out.extend_from_slice(&[fit(selectors.len(), "Number of TSs")?, 0, 0, 0]);
    for ts in selectors {
        let start = out.len();
        let (ts_type, ip_protocol) = match ts {
            TrafficSelector::Ipv4(a) => (TsType::IPV4_ADDR_RANGE, a.ip_protocol),
            TrafficSelector::Ipv6(a) => (TsType::IPV6_ADDR_RANGE, a.ip_protocol),
            TrafficSelector::Unknown {
                ts_type,
                ip_protocol,
                ..
            } => (*ts_type, *ip_protocol),
        };
        out.extend_from_slice(&[ts_type.0, ip_protocol]);
        let len = Len16::new(out, start);
        match ts {
            TrafficSelector::Ipv4(a) => emit_range(a, &a.start.octets(), &a.end.octets(), out),
            TrafficSelector::Ipv6(a) => emit_range(a, &a.start.octets(), &a.end.octets(), out),
            TrafficSelector::Unknown { data, .. } => out.extend_from_slice(data),
        }
        len.finish(out, "traffic selector length")?;
    }
    Ok(())
}

fn emit_range<A>(a: &AddressRange<A>, start: &[u8], end: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&a.start_port.to_be_bytes());
    out.extend_from_slice(&a.end_port.to_be_bytes());
    out.extend_from_slice(start);
    out.extend_from_slice(end);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_round_trip_with_exact_bytes() {
        let sel = vec![
            TrafficSelector::Ipv4(AddressRange {
                ip_protocol: 6,
                start_port: 80,
                end_port: 443,
                start: Ipv4Addr::new(10, 0, 0, 0),
                end: Ipv4Addr::new(10, 0, 0, 255),
            }),
            TrafficSelector::Ipv6(AddressRange::any(
                Ipv6Addr::UNSPECIFIED,
                Ipv6Addr::from([0xff; 16]),
            )),
            TrafficSelector::Unknown {
                ts_type: TsType::FC_ADDR_RANGE,
                ip_protocol: 0,
                data: vec![1, 2, 3, 4],
            },
        ];
        let mut out = Vec::new();
        emit_selectors(&sel, &mut out).unwrap();
        #[rustfmt::skip]
        let v4 = [
            7, 6, 0, 16,        // TS_IPV4_ADDR_RANGE, TCP, length 16
            0, 80, 1, 0xbb,     // ports 80..443
            10, 0, 0, 0,
            10, 0, 0, 255,
        ];
        assert_eq!(&out[..4], &[3, 0, 0, 0]);
        assert_eq!(&out[4..20], &v4);
        assert_eq!(&out[20..24], &[8, 0, 0, 40]);
        assert_eq!(&out[60..], &[9, 0, 0, 8, 1, 2, 3, 4]);
        assert_eq!(parse_selectors(&out, &ParseLimits::default()), Ok(sel));
    }

    #[test]
    fn bad_selectors_are_rejected() {
        let limits = ParseLimits::default();
        let one = |len: u8, extra: usize| {
            let mut b = vec![1, 0, 0, 0, 7, 0, 0, len];
            b.resize(4 + usize::from(len).max(4) + extra, 0);
            b
        };
        assert_eq!(
            parse_selectors(&one(12, 0), &limits),
            Err(ErrorKind::TooShort {
                what: "traffic selector",
                len: 12,
                min: 16
            })
        );
        assert_eq!(
            parse_selectors(&one(20, 0), &limits),
            Err(ErrorKind::TooLong {
                what: "traffic selector",
                len: 20,
                max: 16
            })
        );
        assert_eq!(
            parse_selectors(&one(16, 2), &limits),
            Err(ErrorKind::TrailingData(2))
        );
        assert!(parse_selectors(&one(16, 0), &limits).is_ok());
        let mut two = one(16, 0);
        two[0] = 2; // announces a second selector that is not there
        assert!(matches!(
            parse_selectors(&two, &limits),
            Err(ErrorKind::Truncated { .. })
        ));
        let mut none = one(16, 0);
        none[0] = 0;
        assert!(parse_selectors(&none, &limits).is_err());
        let tight = ParseLimits {
            max_selectors: 0,
            ..limits
        };
        assert!(matches!(
            parse_selectors(&one(16, 0), &tight),
            Err(ErrorKind::Limit { .. })
        ));
    }
}
