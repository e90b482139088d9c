//! Endpoint snapshots and events as text and control-protocol status.

use std::time::Instant;

use ike::control::{ChildSaStatus, IkeSaStatus};
use ike::crypto::proposal::keywords::strongswan_name;
use ike::crypto::suite::{ChildSuite, IkeSuite};
use ike::display::{IdDisplay, ts_text};
use ike::sa::{ChildFailReason, ChildSaInfo, IkeFailReason, IkeSaInfo};
use ike::wire::codes::{IntegId, KeId, ProtocolId, TransformType};

/// `AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519`.
pub fn ike_suite_text(s: &IkeSuite) -> String {
    let mut out = format!("{}", s.encr);
    if let Some(b) = s.encr_key_bits {
        out.push_str(&format!("-{b}"));
    }
    if let Some(i) = s.integ {
        out.push_str(&format!("/{}", integ_text(i)));
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

/// An integrity algorithm: the registry's name, or for strongSwan's
/// private-use IDs strongSwan's (`HMAC_SHA2_256_96` for 1026).
fn integ_text(i: IntegId) -> String {
    match strongswan_name(TransformType::INTEG, i.0) {
        Some(n) if i.0 >= 1024 => n.to_owned(),
        _ => format!("{i}"),
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
        parts.push(integ_text(i));
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
        local_id: sa.local_id.as_ref().map(|i| IdDisplay(i).to_string()),
        remote_id: sa.remote_id.as_ref().map(|i| IdDisplay(i).to_string()),
        algorithms: sa.suite.as_ref().map(ike_suite_text),
        established_secs: secs(sa.established_at, now),
        rekey_secs: until(sa.rekey_at, now),
        expire_secs: until(sa.expires_at, now),
        nat_local: sa.nat_local,
        nat_remote: sa.nat_remote,
        encap: sa.encap,
        local_vips: sa.local_vips.iter().map(ToString::to_string).collect(),
        remote_vips: sa.remote_vips.iter().map(ToString::to_string).collect(),
        dns: sa.dns.iter().map(ToString::to_string).collect(),
        mobike: sa.mobike,
        children: sa.children.iter().map(|c| child_status(c, now)).collect(),
    }
}

/// A pool with its leases for `ikectl pools`.
pub fn pool_status(p: &ike::sa::PoolInfo) -> ike::control::PoolStatus {
    ike::control::PoolStatus {
        name: p.name.clone(),
        base: p.base.to_string(),
        size: p.size,
        online: p.online,
        offline: p.offline,
        leases: p
            .leases
            .iter()
            .map(|l| ike::control::LeaseStatus {
                address: l.addr.to_string(),
                identity: IdDisplay(&l.id).to_string(),
                online: l.online,
            })
            .collect(),
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
    use ike::wire::codes::EncrId;

    #[test]
    fn private_use_integrity_prints_like_strongswan() {
        let s = ChildSuite {
            protocol: ProtocolId::ESP,
            encr: Some((EncrId::AES_CBC, Some(128))),
            integ: Some(IntegId(1026)),
            ke: Some(KeId::MODP_1024),
            esn: false,
        };
        assert_eq!(
            child_suite_text(&s),
            "AES_CBC-128/HMAC_SHA2_256_96/MODP_1024"
        );
        let s = ChildSuite {
            integ: Some(IntegId::AES_XCBC_96),
            ke: None,
            ..s
        };
        assert_eq!(child_suite_text(&s), "AES_CBC-128/AES_XCBC_96");
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
}
