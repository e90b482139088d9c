//! Identities and traffic selectors as text, in strongSwan's notation: the
//! one formatter for the engine's logs, `ikectl status` and the daemon's
//! route logs.
//!
//! - A selector is a prefix when its range is exactly one CIDR block
//!   (`10.0.0.0/24`, `192.0.2.1/32`, `::/0`), else a range
//!   (`10.0.0.1..10.0.0.9`); a protocol or ports that restrict it follow in
//!   brackets: `[6]`, `[6/80]`, `[17/1024-2047]`, `[6/OPAQUE]`.
//! - An identity is its address, name or e-mail address; `%any` when empty;
//!   a distinguished name as text (`C=CH, O=strongSwan, CN=moon`); a key ID
//!   as text if printable, else hex octets separated by `:`. What cannot be
//!   decoded (a DN that is not valid DER, an address of the wrong length, an
//!   unknown type) is `TYPE:hex`.
//!
//! A peer's identity is untrusted bytes: read with checked arithmetic and
//! no indexing, as in `wire`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use crate::wire::{IdValue, Identification, TrafficSelector};

/// Shows an identity (see the module's notation).
#[derive(Clone, Copy, Debug)]
pub struct IdDisplay<'a>(pub &'a Identification);

impl fmt::Display for IdDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.0;
        match id.value() {
            Some(IdValue::Ipv4(a)) => return write!(f, "{a}"),
            Some(IdValue::Ipv6(a)) => return write!(f, "{a}"),
            Some(IdValue::Fqdn(s)) | Some(IdValue::Rfc822(s)) => return f.write_str(s),
            Some(IdValue::KeyId(k)) => return write_key_id(f, k),
            Some(IdValue::DerDn(d)) => {
                if let Some(text) = dn_text(d) {
                    return f.write_str(&text);
                }
            }
            None if id.data.is_empty() => return f.write_str("%any"),
            None => {}
        }
        write!(f, "{}:", id.id_type)?;
        write_hex(f, &id.data, "")
    }
}

/// Shows traffic selectors separated by spaces (see the module's
/// notation); one selector is `TsDisplay(std::slice::from_ref(ts))`.
#[derive(Clone, Copy, Debug)]
pub struct TsDisplay<'a>(pub &'a [TrafficSelector]);

impl fmt::Display for TsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ts) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let (start, end, proto, p0, p1): (IpAddr, IpAddr, u8, u16, u16) = match ts {
                TrafficSelector::Ipv4(r) => (
                    r.start.into(),
                    r.end.into(),
                    r.ip_protocol,
                    r.start_port,
                    r.end_port,
                ),
                TrafficSelector::Ipv6(r) => (
                    r.start.into(),
                    r.end.into(),
                    r.ip_protocol,
                    r.start_port,
                    r.end_port,
                ),
                TrafficSelector::Unknown { ts_type, .. } => {
                    write!(f, "{ts_type}")?;
                    continue;
                }
            };
            write!(f, "{}", RangeDisplay(start, end))?;
            write_proto_ports(f, proto, p0, p1)?;
        }
        Ok(())
    }
}

/// One selector as text (a status entry per selector).
pub fn ts_text(ts: &TrafficSelector) -> String {
    TsDisplay(core::slice::from_ref(ts)).to_string()
}

/// Shows an address range `start..=end`: a prefix if it is one CIDR
/// block, else `start..end`.
#[derive(Clone, Copy, Debug)]
pub struct RangeDisplay(pub IpAddr, pub IpAddr);

impl fmt::Display for RangeDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RangeDisplay(start, end) = *self;
        match prefix_len(start, end) {
            Some(l) => write!(f, "{start}/{l}"),
            None => write!(f, "{start}..{end}"),
        }
    }
}

/// The prefix length if `start..=end` is exactly one CIDR block (both of
/// one family).
pub fn prefix_len(start: IpAddr, end: IpAddr) -> Option<u32> {
    let (s, e, bits) = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => {
            (u128::from(u32::from(s)), u128::from(u32::from(e)), 32u32)
        }
        (IpAddr::V6(s), IpAddr::V6(e)) => (u128::from(s), u128::from(e), 128),
        _ => return None,
    };
    if s > e {
        return None;
    }
    let host = s ^ e;
    // `host` must be 0..01..1, and `s` zero in those bits.
    if host & host.wrapping_add(1) != 0 || s & host != 0 {
        return None;
    }
    // Host bits: 128 - leading zeros, at most `bits` for ranges of one family.
    bits.checked_sub(128u32.checked_sub(host.leading_zeros())?)
}

/// `[proto]`, `[proto/port]`, `[proto/start-end]` or `[proto/OPAQUE]`;
/// nothing for any protocol and any port. ICMP and ICMPv6 "ports" are
/// written as strongSwan writes them: `type` or `type(code)`.
pub fn write_proto_ports(f: &mut dyn fmt::Write, proto: u8, start: u16, end: u16) -> fmt::Result {
    let any_port = (start, end) == (0, u16::MAX);
    if proto == 0 && any_port {
        return Ok(());
    }
    let port = |f: &mut dyn fmt::Write, p: u16| match (proto, p >> 8, p & 0xff) {
        (1 | 58, t, 0) => write!(f, "{t}"),
        (1 | 58, t, c) => write!(f, "{t}({c})"),
        _ => write!(f, "{p}"),
    };
    write!(f, "[{proto}")?;
    if (start, end) == (u16::MAX, 0) {
        f.write_str("/OPAQUE")?;
    } else if start == end {
        f.write_str("/")?;
        port(f, start)?;
    } else if !any_port {
        f.write_str("/")?;
        port(f, start)?;
        f.write_str("-")?;
        port(f, end)?;
    }
    f.write_str("]")
}

/// A key ID: as text if printable (and not 20 octets, the length of a
/// SHA-1 key hash), else hex octets separated by `:`.
pub fn write_key_id(f: &mut dyn fmt::Write, k: &[u8]) -> fmt::Result {
    let printable = k.iter().all(|&b| (0x20..0x7f).contains(&b));
    if printable && k.len() != 20 {
        // Printable ASCII is UTF-8.
        f.write_str(core::str::from_utf8(k).map_err(|_| fmt::Error)?)
    } else {
        write_hex(f, k, ":")
    }
}

fn write_hex(f: &mut dyn fmt::Write, bytes: &[u8], sep: &str) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// One DER element: its tag and contents, and what follows it.
fn der_next(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = d.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        // Long form with one to three length octets; no indefinite length.
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 3 {
            return None;
        }
        let octets = rest.get(..n)?;
        let len = octets.iter().try_fold(0usize, |a, &b| {
            a.checked_mul(256)?.checked_add(usize::from(b))
        })?;
        (len, rest.get(n..)?)
    };
    let body = rest.get(..len)?;
    Some((tag, body, rest.get(len..)?))
}

/// An OID's dotted text (`2.5.4.45`).
fn oid_text(oid: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for &b in oid {
        v = v.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
        if b & 0x80 == 0 {
            arcs.push(v);
            v = 0;
        }
    }
    if v != 0 || oid.last().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let (&first, rest) = arcs.split_first()?;
    let (a, b) = match first {
        0..40 => (0, first),
        40..80 => (1, first.saturating_sub(40)),
        _ => (2, first.saturating_sub(80)),
    };
    let mut out = format!("{a}.{b}");
    for arc in rest {
        let _ = write!(out, ".{arc}");
    }
    Some(out)
}

/// A DER-encoded X.501 name as `C=CH, O=strongSwan, CN=moon` (attribute
/// names as in the configuration, other attributes by OID); `None` if it
/// is not a well-formed name of string values without control characters.
pub fn dn_text(der: &[u8]) -> Option<String> {
    let (tag, mut rdns, rest) = der_next(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut out = String::new();
    while !rdns.is_empty() {
        let (tag, mut set, rest) = der_next(rdns)?;
        rdns = rest;
        if tag != 0x31 {
            return None;
        }
        while !set.is_empty() {
            let (tag, atv, rest) = der_next(set)?;
            set = rest;
            if tag != 0x30 {
                return None;
            }
            let (tag, oid, atv) = der_next(atv)?;
            let (string_type, value, end) = der_next(atv)?;
            if tag != 0x06 || !end.is_empty() {
                return None;
            }
            let value = match string_type {
                // UTF8String, PrintableString, T61String, IA5String.
                0x0c | 0x13 | 0x14 | 0x16 => core::str::from_utf8(value).ok()?.to_owned(),
                // BMPString: UTF-16BE.
                0x1e => {
                    let units: Vec<u16> = value
                        .chunks(2)
                        .map(|c| match c {
                            [a, b] => Some(u16::from_be_bytes([*a, *b])),
                            _ => None,
                        })
                        .collect::<Option<_>>()?;
                    String::from_utf16(&units).ok()?
                }
                _ => return None,
            };
            if value.chars().any(char::is_control) {
                return None;
            }
            if !out.is_empty() {
                out.push_str(", ");
            }
            match crate::config::dn_attr_name(oid) {
                Some(name) => out.push_str(name),
                None => out.push_str(&oid_text(oid)?),
            }
            out.push('=');
            out.push_str(&value);
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
