//! Distinguished names as strongSwan compares them (libstrongswan
//! `identification.c`, the default `compare_dn`), and a small checked DER
//! reader for the parts of certificates x509-parser does not expose raw.
//!
//! - Equality: the RDNs in order, each of the same attribute type (OID) and
//!   a value of the same length; the value is compared ignoring ASCII case
//!   when both are PrintableString (or both IA5String of an e-mail
//!   attribute), else octet for octet, whatever the string types (a
//!   PrintableString `gw` equals a UTF8String `gw`).
//! - Matching a pattern: as equality, except that a pattern value `*`
//!   matches any value of that attribute (`C=CH, O=Example, CN=*`). The
//!   number of RDNs and their order must agree.
//!
//! Every DN here comes from a peer or a file: read with checked arithmetic
//! and no indexing.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use crate::wire::Identification;
use crate::wire::codes::IdType;

/// DER tags used here.
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;
const TAG_PRINTABLE_STRING: u8 = 0x13;
const TAG_IA5_STRING: u8 = 0x16;

/// OID bodies of the e-mail attribute (1.2.840.113549.1.9.1, strongSwan's
/// OID_EMAIL_ADDRESS).
const OID_EMAIL_ADDRESS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

/// One DER element: its tag, the whole element (tag, length and
/// contents), its contents, and what follows it. Definite lengths of at
/// most four length octets; `None` when truncated or malformed.
pub(crate) struct Element<'a> {
    pub tag: u8,
    pub whole: &'a [u8],
    pub body: &'a [u8],
}

/// Reads the first DER element of `d`, returning it and the rest.
pub(crate) fn der_next(d: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = d.split_first()?;
    // Multi-octet tags (low bits 0x1f) do not occur where this is used.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&l0, rest) = rest.split_first()?;
    let (len, rest, len_octets) = if l0 < 0x80 {
        (usize::from(l0), rest, 0usize)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let octets = rest.get(..n)?;
        let len = octets.iter().try_fold(0usize, |a, &b| {
            a.checked_mul(256)?.checked_add(usize::from(b))
        })?;
        (len, rest.get(n..)?, n)
    };
    let body = rest.get(..len)?;
    let header = 2usize.checked_add(len_octets)?;
    let whole = d.get(..header.checked_add(len)?)?;
    Some((Element { tag, whole, body }, rest.get(len..)?))
}

/// Reads exactly one element of `tag` filling all of `d`.
pub(crate) fn der_only(d: &[u8], tag: u8) -> Option<Element<'_>> {
    let (e, rest) = der_next(d)?;
    (e.tag == tag && rest.is_empty()).then_some(e)
}

/// One attribute of a DN: its OID body, string tag and value octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    pub oid: &'a [u8],
    pub tag: u8,
    pub value: &'a [u8],
}

/// The attributes of a DER Name in order (the attributes of a
/// multi-valued RDN one after the other, as strongSwan enumerates them);
/// `None` if it is not a well-formed Name.
pub(crate) fn attrs(der: &[u8]) -> Option<Vec<Attr<'_>>> {
    let name = der_only(der, TAG_SEQUENCE)?;
    let mut out = Vec::new();
    let mut rdns = name.body;
    while !rdns.is_empty() {
        let (set, rest) = der_next(rdns)?;
        rdns = rest;
        if set.tag != TAG_SET {
            return None;
        }
        let mut atvs = set.body;
        while !atvs.is_empty() {
            let (atv, rest) = der_next(atvs)?;
            atvs = rest;
            if atv.tag != TAG_SEQUENCE {
                return None;
            }
            let (oid, rest) = der_next(atv.body)?;
            let (value, end) = der_next(rest)?;
            if oid.tag != TAG_OID || !end.is_empty() {
                return None;
            }
            out.push(Attr {
                oid: oid.body,
                tag: value.tag,
                value: value.body,
            });
        }
    }
    Some(out)
}

/// strongSwan's `rdn_equals` (values of the same length).
fn value_equals(oid: &[u8], a: &Attr<'_>, b: &Attr<'_>) -> bool {
    if a.value.len() != b.value.len() {
        return false;
    }
    let caseless = a.tag == b.tag
        && (a.tag == TAG_PRINTABLE_STRING || (a.tag == TAG_IA5_STRING && oid == OID_EMAIL_ADDRESS));
    if caseless {
        a.value.eq_ignore_ascii_case(b.value)
    } else {
        a.value == b.value
    }
}

fn is_wildcard(a: &Attr<'_>) -> bool {
    a.value == b"*"
}

/// Compares two DER names as strongSwan's `compare_dn`: `Some(n)` when
/// `dn` matches `pattern` using `n` wildcards (only if `wildcards`), else
/// `None`. Two identical encodings match with no wildcard.
fn compare(dn: &[u8], pattern: &[u8], wildcards: bool) -> Option<u32> {
    if dn == pattern {
        return Some(0);
    }
    let t = attrs(dn)?;
    let o = attrs(pattern)?;
    if t.len() != o.len() || t.is_empty() {
        return None;
    }
    let mut wc = 0u32;
    for (a, b) in t.iter().zip(o.iter()) {
        if a.oid != b.oid {
            return None;
        }
        if wildcards && is_wildcard(b) {
            wc = wc.saturating_add(1);
        } else if !value_equals(a.oid, a, b) {
            return None;
        }
    }
    Some(wc)
}

/// Two DER-encoded names are the same name (strongSwan's `equals` for
/// DNs: no wildcards).
pub fn dn_der_equals(a: &[u8], b: &[u8]) -> bool {
    compare(a, b, false).is_some()
}

/// How `dn` matches the DER `pattern` (which may hold `*` values): the
/// number of wildcards used, or `None` for no match.
pub fn dn_der_match(pattern: &[u8], dn: &[u8]) -> Option<u32> {
    compare(dn, pattern, true)
}

/// strongSwan's DN match for identities: both must be ID_DER_ASN1_DN;
/// `pattern` may use `*` for any value of an attribute
/// (`C=CH, O=Example, CN=*`).
pub fn dn_matches(pattern: &Identification, dn: &Identification) -> bool {
    pattern.id_type == IdType::DER_ASN1_DN
        && dn.id_type == IdType::DER_ASN1_DN
        && dn_der_match(&pattern.data, &dn.data).is_some()
}

/// A DN name constraint (RFC 5280 4.2.1.10) as strongSwan checks it: the
/// constraint's RDNs are a prefix of the name's, attribute types and
/// values octet for octet.
pub(crate) fn dn_prefix_matches(constraint: &[u8], dn: &[u8]) -> bool {
    let (Some(c), Some(d)) = (attrs(constraint), attrs(dn)) else {
        return false;
    };
    c.len() <= d.len()
        && c.iter()
            .zip(d.iter())
            .all(|(a, b)| a.oid == b.oid && a.value == b.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Identity;

    fn dn(s: &str) -> Vec<u8> {
        match Identity::parse(s).unwrap() {
            Identity::Dn(d) => d.der(),
            other => panic!("not a DN: {other}"),
        }
    }

    /// A Name with one attribute per RDN, each a (OID body, tag, value).
    fn raw_name(attrs: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            assert!(body.len() < 128);
            let mut v = vec![tag, body.len() as u8];
            v.extend_from_slice(body);
            v
        }
        let mut rdns = Vec::new();
        for (oid, tag, value) in attrs {
            let mut atv = tlv(TAG_OID, oid);
            atv.extend(tlv(*tag, value));
            rdns.extend(tlv(TAG_SET, &tlv(TAG_SEQUENCE, &atv)));
        }
        tlv(TAG_SEQUENCE, &rdns)
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];

    #[test]
    fn equality_ignores_case_of_printable_strings_only() {
        let a = raw_name(&[(O, 0x13, b"Example"), (CN, 0x13, b"gw")]);
        let b = raw_name(&[(O, 0x13, b"EXAMPLE"), (CN, 0x13, b"GW")]);
        assert!(dn_der_equals(&a, &b));
        // UTF8String values: case matters, as in strongSwan.
        let c = raw_name(&[(O, 0x0c, b"Example"), (CN, 0x0c, b"gw")]);
        let d = raw_name(&[(O, 0x0c, b"example"), (CN, 0x0c, b"gw")]);
        assert!(!dn_der_equals(&c, &d));
        // Same octets in another string type are the same name.
        assert!(dn_der_equals(&a, &c));
        // Mixed types compare octets: case matters.
        assert!(!dn_der_equals(&b, &c));
    }

    #[test]
    fn order_count_and_types_matter() {
        let a = dn("C=CH, O=Example, CN=gw");
        assert!(dn_der_equals(&a, &dn("C=CH, O=Example, CN=gw")));
        assert!(!dn_der_equals(&a, &dn("O=Example, C=CH, CN=gw")));
        assert!(!dn_der_equals(&a, &dn("C=CH, O=Example")));
        assert!(!dn_der_equals(&a, &dn("C=CH, O=Example, CN=gw, OU=x")));
        assert!(!dn_der_equals(&a, &dn("C=CH, OU=Example, CN=gw")));
        assert!(!dn_der_equals(&a, &dn("C=CH, O=Example, CN=gw2")));
    }

    #[test]
    fn wildcards_match_any_value_of_their_attribute() {
        let gw = dn("C=CH, O=Example, CN=gw-b");
        assert_eq!(dn_der_match(&dn("C=CH, O=Example, CN=*"), &gw), Some(1));
        assert_eq!(dn_der_match(&dn("C=*, O=Example, CN=*"), &gw), Some(2));
        assert_eq!(dn_der_match(&dn("C=CH, O=Example, CN=gw-b"), &gw), Some(0));
        assert_eq!(dn_der_match(&dn("C=CH, O=Other, CN=*"), &gw), None);
        // The wildcard stands for one RDN of that type, not for several.
        assert_eq!(dn_der_match(&dn("C=CH, CN=*"), &gw), None);
        assert_eq!(dn_der_match(&dn("C=CH, O=Example, OU=*"), &gw), None);
        // Equality never treats `*` as a wildcard.
        assert!(!dn_der_equals(&gw, &dn("C=CH, O=Example, CN=*")));
        let p = Identification::der_dn(dn("C=CH, O=Example, CN=*"));
        assert!(dn_matches(&p, &Identification::der_dn(gw.clone())));
        assert!(!dn_matches(&p, &Identification::fqdn("gw-b")));
    }

    #[test]
    fn malformed_names_never_match() {
        let good = dn("CN=gw");
        for bad in [
            &[][..],
            &[0x30][..],
            &[0x30, 0x05, 0x31][..],
            &[0x31, 0x00][..],
        ] {
            assert!(!dn_der_equals(bad, &good));
            assert_eq!(dn_der_match(bad, &good), None);
            assert_eq!(dn_der_match(&good, bad), None);
        }
        // Every truncation of a good name is refused without panic.
        for i in 0..good.len() {
            assert!(attrs(good.get(..i).unwrap()).is_none());
        }
        // A long-form length beyond the input.
        assert!(der_next(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(der_next(&[0x30, 0x88, 1, 1, 1, 1, 1, 1, 1, 1]).is_none());
    }

    #[test]
    fn random_octets_never_panic() {
        use proptest::prelude::*;
        let good = dn("C=CH, O=Example, CN=gw");
        proptest!(|(data in proptest::collection::vec(any::<u8>(), 0..96), flip in 0usize..64)| {
            let _ = attrs(&data);
            let _ = dn_der_match(&data, &good);
            let _ = dn_der_match(&good, &data);
            let _ = dn_prefix_matches(&data, &good);
            let mut damaged = good.clone();
            if let Some(b) = damaged.get_mut(flip) {
                *b ^= data.first().copied().unwrap_or(0x80) | 1;
            }
            let _ = dn_der_equals(&damaged, &good);
        });
    }

    #[test]
    fn name_constraint_prefix() {
        let base = dn("C=CH, O=Example");
        assert!(dn_prefix_matches(&base, &dn("C=CH, O=Example, CN=gw")));
        assert!(dn_prefix_matches(&base, &dn("C=CH, O=Example")));
        assert!(!dn_prefix_matches(&base, &dn("C=CH, O=Other, CN=gw")));
        assert!(!dn_prefix_matches(&base, &dn("C=CH")));
    }
}
