//! `pools.<name>`: virtual IP address pools and the configuration
//! attributes sent with their addresses, read as charon's vici plugin
//! reads swanctl.conf's pools (vici_attribute.c): `addrs` (a subnet, a
//! range or one address), the named attributes `dns`, `nbns`, `dhcp`,
//! `netmask`, `server`, `subnet`, `p_cscf`, `split_include`,
//! `split_exclude` (the family of each value picks the IPv4 or IPv6
//! attribute), and any attribute by its number (an address or subnet
//! value is encoded as one, anything else sent as its text).

use std::net::IpAddr;

use super::tree::Node;
use super::yaml::{Errors, Path, map_entries, scalar, string_list};
use crate::pool::Pool;

/// One pool: where its addresses come from and what goes with them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolCfg {
    /// The section name (what `connections.<name>.pools` names).
    pub name: String,
    /// `addrs` as written (checked: a subnet, a range or one address).
    pub addrs: String,
    /// The attributes, as (type, value) in file order.
    pub attributes: Vec<(u16, Vec<u8>)>,
}

impl PoolCfg {
    /// A pool of `addrs` with `attributes` (for tests and embedders).
    pub fn new(name: &str, addrs: &str, attributes: Vec<(u16, Vec<u8>)>) -> Self {
        PoolCfg {
            name: name.to_owned(),
            addrs: addrs.to_owned(),
            attributes,
        }
    }

    /// Its pool of addresses, without leases.
    pub fn pool(&self) -> Result<Pool, crate::pool::PoolError> {
        Pool::parse(&self.name, &self.addrs)
    }
}

/// The named attributes and their IPv4 and IPv6 types (vici's table;
/// `split_include` and `split_exclude` are Cisco Unity's
/// UNITY_SPLIT_INCLUDE and UNITY_LOCAL_LAN in both families).
const NAMED: &[(&str, u16, u16)] = &[
    ("address", 1, 8),
    ("dns", 3, 10),
    ("nbns", 4, 11),
    ("dhcp", 6, 12),
    ("netmask", 2, 9),
    ("server", 23456, 23457),
    ("subnet", 13, 15),
    ("p_cscf", 20, 21),
    ("split_include", 28676, 28676),
    ("split_exclude", 28678, 28678),
];

/// An address or a subnet as an attribute value: the address, then for
/// a subnet the IPv4 netmask or the IPv6 prefix length (as charon).
pub(crate) fn encode_value(text: &str) -> Option<(IpAddr, Vec<u8>)> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a.trim(), Some(p.trim().parse::<u8>().ok()?)),
        None => (text.trim(), None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let mut out = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    match (addr, prefix) {
        (_, None) => {}
        (IpAddr::V4(_), Some(p)) if p <= 32 => {
            let mask = u32::MAX
                .checked_shl(32u32.saturating_sub(p.into()))
                .unwrap_or(0);
            out.extend_from_slice(&mask.to_be_bytes());
        }
        (IpAddr::V6(_), Some(p)) if p <= 128 => out.push(p),
        _ => return None,
    }
    Some((addr, out))
}

/// The `pools` section.
pub(super) fn pools(node: &Node, path: &Path, errors: &mut Errors) -> Vec<PoolCfg> {
    let mut out = Vec::new();
    let Some(entries) = map_entries(node, path, "pool name", errors) else {
        return out;
    };
    for (name, _, value) in entries {
        if let Some(p) = pool(name, value, &path.join(name), errors) {
            out.push(p);
        }
    }
    out
}

fn pool(name: &str, node: &Node, path: &Path, errors: &mut Errors) -> Option<PoolCfg> {
    let before = errors.0.len();
    let entries = map_entries(node, path, "key", errors)?;
    let mut cfg = PoolCfg::new(name, "", Vec::new());
    let mut addrs = false;
    for (key, key_node, value) in entries {
        let p = path.join(key);
        if key == "addrs" {
            let Some(text) = scalar(value, &p, errors) else {
                continue;
            };
            addrs = true;
            match Pool::parse(name, text) {
                Ok(_) => cfg.addrs = text.trim().to_owned(),
                Err(e) => errors.add(value.loc(), &p, e.to_string()),
            }
            continue;
        }
        let named = NAMED.iter().find(|(n, ..)| *n == key);
        let number = match named {
            Some(_) => None,
            None => match key.parse::<u16>() {
                Ok(n) if (1..=0x7fff).contains(&n) => Some(n),
                _ => {
                    let names: Vec<&str> = NAMED.iter().map(|(n, ..)| *n).collect();
                    errors.add(
                        key_node.loc(),
                        &p,
                        format!(
                            "unknown key \"{key}\" (expected addrs, one of {} or an attribute \
                             number from 1 to 32767)",
                            names.join(", ")
                        ),
                    );
                    continue;
                }
            },
        };
        let Some(items) = string_list(value, &p, true, errors) else {
            continue;
        };
        for (item, line, ip) in items {
            match (named, number, encode_value(&item)) {
                (Some((_, v4, v6)), _, Some((addr, bytes))) => {
                    let t = if addr.is_ipv4() { *v4 } else { *v6 };
                    cfg.attributes.push((t, bytes));
                }
                (Some(_), _, None) => {
                    errors.add(line, &ip, format!("'{item}' is not an address or a subnet"))
                }
                (None, Some(n), Some((_, bytes))) => cfg.attributes.push((n, bytes)),
                (None, Some(n), None) => cfg.attributes.push((n, item.into_bytes())),
                (None, None, _) => {}
            }
        }
    }
    if !addrs {
        // As charon: a pool is its addresses (the attributes go with them).
        errors.add(node.loc(), path, "missing addrs");
    }
    (errors.0.len() == before).then_some(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_encode_as_charon() {
        let e = |t: &str| encode_value(t).map(|(_, b)| b);
        assert_eq!(e("10.0.0.1"), Some(vec![10, 0, 0, 1]));
        assert_eq!(e("10.1.0.0/16"), Some(vec![10, 1, 0, 0, 255, 255, 0, 0]));
        assert_eq!(e("0.0.0.0/0"), Some(vec![0; 8]));
        assert_eq!(e("10.1.0.0/33"), None);
        let mut v6 = "fd00::"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
            .to_vec();
        v6.push(64);
        assert_eq!(e("fd00::/64"), Some(v6));
        assert_eq!(e("example.com"), None);
    }
}
