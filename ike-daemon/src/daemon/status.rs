//! Endpoint snapshots and events as text and control-protocol status.

use std::net::IpAddr;
use std::time::Instant;

use ike::config::Identity;
use ike::control::{ChildSaStatus, IkeSaStatus};
use ike::crypto::suite::{ChildSuite, IkeSuite};
use ike::sa::{ChildFailReason, ChildSaInfo, IkeFailReason, IkeSaInfo};
use ike::wire::codes::{IdType, KeId, ProtocolId};
use ike::wire::{Identification, TrafficSelector};

use super::xfrm_plan::range_to_prefixes;

/// An identity as strongSwan prints it.
pub fn id_text(id: &Identification) -> String {
    let s = String::from_utf8_lossy(&id.data);
    let ident = match id.id_type {
        IdType::IPV4_ADDR => <[u8; 4]>::try_from(id.data.as_slice())
            .map(|b| Identity::Ipv4(b.into()))
            .ok(),
        IdType::IPV6_ADDR => <[u8; 16]>::try_from(id.data.as_slice())
            .map(|b| Identity::Ipv6(b.into()))
            .ok(),
        IdType::FQDN => Some(Identity::Fqdn(s.to_string())),
        IdType::RFC822_ADDR => Some(Identity::Rfc822(s.to_string())),
        IdType::KEY_ID => Some(Identity::KeyId(id.data.clone())),
        _ => None,
    };
    match ident {
        Some(i) => i.to_string(),
        None if id.data.is_empty() => "%any".to_string(),
        None => format!("{}:{}", id.id_type, hex::encode(&id.data)),
    }
}

/// A selector as strongSwan prints it: `10.1.0.0/24`, `10.1.0.5..10.1.0.9`,
/// with `[proto/port]` when restricted.
pub fn ts_text(ts: &TrafficSelector) -> String {
    let (s, e, proto, sp, ep): (IpAddr, IpAddr, u8, u16, u16) = match ts {
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
        TrafficSelector::Unknown { ts_type, .. } => return format!("{ts_type}"),
    };
    let prefixes = range_to_prefixes(s, e);
    let mut out = match prefixes.as_slice() {
        [p] => format!("{}/{}", p.addr(), p.prefix_len()),
        _ => format!("{s}..{e}"),
    };
    if proto != 0 || (sp, ep) != (0, u16::MAX) {
        out.push_str(&format!("[{proto}"));
        if (sp, ep) == (u16::MAX, 0) {
            out.push_str("/OPAQUE");
        } else if sp == ep {
            out.push_str(&format!("/{sp}"));
        } else if (sp, ep) != (0, u16::MAX) {
            out.push_str(&format!("/{sp}-{ep}"));
        }
        out.push(']');
    }
    out
}

/// `AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519`.
pub fn ike_suite_text(s: &IkeSuite) -> String {
    let mut out = format!("{}", s.encr);
    if let Some(b) = s.encr_key_bits {
        out.push_str(&format!("-{b}"));
    }
    if let Some(i) = s.integ {
        out.push_str(&format!("/{i}"));
    }
    out.push_str(&format!("/PRF_{}/{}", s.prf, ke_text(s.ke)));
    out
}

/// A key exchange method as strongSwan names it (`CURVE_25519`,
/// `ECP_256_BP`; `MODP_2048` and `ECP_256` are the registry's names too),
/// so `ikectl status` reads like `swanctl --list-sas`.
pub fn ke_text(k: KeId) -> String {
    match k {
        KeId::CURVE25519 => "CURVE_25519".to_owned(),
        KeId::CURVE448 => "CURVE_448".to_owned(),
        KeId::BRAINPOOL_P224R1 => "ECP_224_BP".to_owned(),
        KeId::BRAINPOOL_P256R1 => "ECP_256_BP".to_owned(),
        KeId::BRAINPOOL_P384R1 => "ECP_384_BP".to_owned(),
        KeId::BRAINPOOL_P512R1 => "ECP_512_BP".to_owned(),
        other => format!("{other}"),
    }
}

/// `AES_GCM_16-256`, `AES_CBC-128/HMAC_SHA2_256_128/ESN`, `HMAC_SHA2_256_128`.
pub fn child_suite_text(s: &ChildSuite) -> String {
    let mut parts = Vec::new();
    if let Some((e, bits)) = s.encr {
        parts.push(match bits {
            Some(b) => format!("{e}-{b}"),
            None => format!("{e}"),
        });
    }
    if let Some(i) = s.integ {
        parts.push(format!("{i}"));
    }
    if let Some(k) = s.ke {
        parts.push(ke_text(k));
    }
    if s.esn {
        parts.push("ESN".to_string());
    }
    parts.join("/")
}

fn protocol_text(p: ProtocolId) -> String {
    format!("{p}")
}

fn secs(since: Option<Instant>, now: Instant) -> Option<u64> {
    since.map(|t| now.saturating_duration_since(t).as_secs())
}

fn until(at: Option<Instant>, now: Instant) -> Option<u64> {
    at.map(|t| t.saturating_duration_since(now).as_secs())
}

/// A Child SA's status without kernel counters.
pub fn child_status(c: &ChildSaInfo, now: Instant) -> ChildSaStatus {
    ChildSaStatus {
        id: c.id.0,
        name: c.name.clone(),
        state: c.state.to_string(),
        mode: c.mode.to_string(),
        protocol: protocol_text(c.protocol),
        spi_in: format!("{:08x}", c.spi_in),
        spi_out: format!("{:08x}", c.spi_out),
        local_ts: c.local_ts.iter().map(ts_text).collect(),
        remote_ts: c.remote_ts.iter().map(ts_text).collect(),
        algorithms: c.suite.as_ref().map(child_suite_text),
        installed_secs: secs(c.installed_at, now),
        rekey_secs: until(c.rekey_at, now),
        expire_secs: until(c.expires_at, now),
        reqid: c.reqid,
        bytes_in: None,
        packets_in: None,
        bytes_out: None,
        packets_out: None,
    }
}

/// An IKE SA's status without kernel counters.
pub fn ike_status(sa: &IkeSaInfo, now: Instant) -> IkeSaStatus {
    IkeSaStatus {
        id: sa.id.0,
        connection: sa.peer.clone(),
        state: sa.state.to_string(),
        initiator: sa.initiator,
        spi_i: format!("{:016x}", sa.spi_i),
        spi_r: format!("{:016x}", sa.spi_r),
        local_addr: sa.local_addr.to_string(),
        remote_addr: sa.remote_addr.to_string(),
        local_id: sa.local_id.as_ref().map(id_text),
        remote_id: sa.remote_id.as_ref().map(id_text),
        algorithms: sa.suite.as_ref().map(ike_suite_text),
        established_secs: secs(sa.established_at, now),
        rekey_secs: until(sa.rekey_at, now),
        expire_secs: until(sa.expires_at, now),
        nat_local: sa.nat_local,
        nat_remote: sa.nat_remote,
        encap: sa.encap,
        children: sa.children.iter().map(|c| child_status(c, now)).collect(),
    }
}

/// The control-protocol error kind of an IKE SA failure.
pub fn ike_fail_kind(r: &IkeFailReason) -> ike::control::ErrorKind {
    use ike::control::ErrorKind as K;
    match r {
        IkeFailReason::AuthenticationFailed { .. } => K::AuthenticationFailed,
        IkeFailReason::NoProposalChosen { .. } => K::NoProposalChosen,
        IkeFailReason::PeerNotResponding => K::PeerNotResponding,
        _ => K::IkeFailed,
    }
}

/// The control-protocol error kind of a Child SA failure.
pub fn child_fail_kind(r: &ChildFailReason) -> ike::control::ErrorKind {
    use ike::control::ErrorKind as K;
    match r {
        ChildFailReason::NoProposalChosen { .. } => K::NoProposalChosen,
        ChildFailReason::TsUnacceptable { .. } => K::TsUnacceptable,
        _ => K::ChildFailed,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use ike::wire::AddressRange;

    #[test]
    fn selectors_print_like_strongswan() {
        let v4 = |a: &str, b: &str| {
            TrafficSelector::Ipv4(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
        };
        assert_eq!(ts_text(&v4("10.1.0.0", "10.1.0.255")), "10.1.0.0/24");
        assert_eq!(ts_text(&v4("10.1.0.5", "10.1.0.9")), "10.1.0.5..10.1.0.9");
        assert_eq!(ts_text(&v4("192.0.2.1", "192.0.2.1")), "192.0.2.1/32");
        let mut t = AddressRange::any(
            "10.0.0.0".parse().unwrap(),
            "10.255.255.255".parse().unwrap(),
        );
        t.ip_protocol = 6;
        t.start_port = 80;
        t.end_port = 80;
        assert_eq!(ts_text(&TrafficSelector::Ipv4(t)), "10.0.0.0/8[6/80]");
        t.start_port = 1000;
        t.end_port = 2000;
        assert_eq!(
            ts_text(&TrafficSelector::Ipv4(t)),
            "10.0.0.0/8[6/1000-2000]"
        );
        let v6 = TrafficSelector::Ipv6(AddressRange::any(
            "2001:db8::".parse().unwrap(),
            "2001:db8::ffff".parse().unwrap(),
        ));
        assert_eq!(ts_text(&v6), "2001:db8::/112");
    }

    #[test]
    fn key_exchanges_print_like_strongswan() {
        let names: Vec<String> = [
            KeId::CURVE25519,
            KeId::CURVE448,
            KeId::ECP_256,
            KeId::ECP_384,
            KeId::MODP_2048,
            KeId::MODP_3072,
            KeId::BRAINPOOL_P256R1,
        ]
        .into_iter()
        .map(ke_text)
        .collect();
        assert_eq!(
            names,
            [
                "CURVE_25519",
                "CURVE_448",
                "ECP_256",
                "ECP_384",
                "MODP_2048",
                "MODP_3072",
                "ECP_256_BP"
            ]
        );
    }

    #[test]
    fn identities_print_like_strongswan() {
        let id = |t, d: &[u8]| Identification {
            id_type: t,
            data: d.to_vec(),
        };
        assert_eq!(
            id_text(&id(IdType::FQDN, b"gw.example.net")),
            "gw.example.net"
        );
        assert_eq!(
            id_text(&id(IdType::IPV4_ADDR, &[192, 0, 2, 1])),
            "192.0.2.1"
        );
        assert_eq!(id_text(&id(IdType::RFC822_ADDR, b"a@b")), "a@b");
        // Malformed data is shown, never a panic.
        assert!(id_text(&id(IdType::IPV4_ADDR, &[1, 2])).ends_with(":0102"));
        assert_eq!(id_text(&id(IdType(0), b"")), "%any");
    }
}
