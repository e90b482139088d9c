//! RADIUS for EAP-RADIUS (issue 18): the gateway hands the EAP
//! conversation to a RADIUS server (RFC 3579) and reports sessions to it
//! (RFC 2866 accounting), as strongSwan's `eap-radius` plugin does.
//!
//! - [`packet`]: the codec, the authenticators and Message-Authenticator,
//!   MS-MPPE key decryption (RFC 2548) into the MSK.
//! - [`client`]: the sans-IO client (retransmission, identifiers, choice
//!   of server and failover); the daemon owns its sockets.
//! - Here: the settings (strongswan.conf's `charon.plugins.eap-radius`)
//!   and the attributes of an Access-Request and an Accounting-Request
//!   for an IKE SA, as charon sends them.
//!
//! A small codec of our own: the crates on crates.io for RADIUS bring
//! their own tokio sockets and retransmission, which the engine's
//! outside operations and the daemon's event loop already are.

pub mod client;
pub mod packet;

use std::net::{IpAddr, SocketAddr};

pub use client::{Answer, Client, Failure, Port, Request, Server, Transmit};
use packet::{Code, Packet, attr};

/// The `eap-radius` settings the engine and daemon use.
#[derive(Clone, Debug)]
pub struct Settings {
    pub servers: Vec<Server>,
    /// Send Accounting-Requests (Start when the IKE SA is up, Stop when
    /// it goes). strongSwan's `accounting`, off by default.
    pub accounting: bool,
    /// Called-/Calling-Station-Id as `address[port]` (default) or the
    /// address alone.
    pub station_id_with_port: bool,
    /// Start with an empty EAP-Message (EAP-Start) instead of the peer's
    /// IKE identity as EAP-Identity response (`eap_start`, off).
    pub eap_start: bool,
    /// Put before the identity in User-Name and EAP-Identity (`id_prefix`).
    pub id_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            accounting: false,
            station_id_with_port: true,
            eap_start: false,
            id_prefix: String::new(),
        }
    }
}

/// What the RADIUS attributes say about an IKE SA.
#[derive(Clone, Debug)]
pub struct Session {
    /// The connection's name (NAS-Port-Id).
    pub name: String,
    /// The IKE SA's unique number (NAS-Port, and with `prefix` the
    /// Acct-Session-Id).
    pub unique: u32,
    /// The daemon's start time in seconds since the epoch, charon's
    /// session id prefix (`%u-%u`).
    pub prefix: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Session {
    /// charon's Acct-Session-Id.
    pub fn session_id(&self) -> String {
        format!("{}-{}", self.prefix, self.unique)
    }

    fn station(addr: SocketAddr, with_port: bool) -> String {
        // charon's `%#H`: address[port].
        if with_port {
            format!("{}[{}]", addr.ip(), addr.port())
        } else {
            addr.ip().to_string()
        }
    }

    /// The NAS attributes every request of the session carries
    /// (`eap_radius_build_attributes`).
    fn add_nas(&self, p: &mut Packet, settings: &Settings) {
        // NAS-Port-Type Virtual (5), Service-Type Framed (2).
        p.add_u32(attr::NAS_PORT_TYPE, 5);
        p.add_u32(attr::SERVICE_TYPE, 2);
        p.add_u32(attr::NAS_PORT, self.unique);
        p.add(attr::NAS_PORT_ID, self.name.as_bytes());
        match self.local.ip() {
            IpAddr::V4(a) => p.add(attr::NAS_IP_ADDRESS, &a.octets()),
            IpAddr::V6(a) => p.add(attr::NAS_IPV6_ADDRESS, &a.octets()),
        }
        let w = settings.station_id_with_port;
        p.add(
            attr::CALLED_STATION_ID,
            Self::station(self.local, w).as_bytes(),
        );
        p.add(
            attr::CALLING_STATION_ID,
            Self::station(self.remote, w).as_bytes(),
        );
    }
}

/// An Access-Request carrying `eap` (one EAP packet from the peer) for
/// `user`, with the server's `state` from its last Access-Challenge.
pub fn access_request(
    settings: &Settings,
    session: &Session,
    user: &[u8],
    eap: &[u8],
    state: Option<&[u8]>,
) -> Packet {
    let mut p = Packet::new(Code::ACCESS_REQUEST);
    let mut name = settings.id_prefix.as_bytes().to_vec();
    name.extend_from_slice(user);
    p.add(attr::USER_NAME, &name);
    session.add_nas(&mut p, settings);
    p.add(attr::ACCT_SESSION_ID, session.session_id().as_bytes());
    p.add(attr::EAP_MESSAGE, eap);
    if let Some(s) = state {
        p.add(attr::STATE, s);
    }
    p
}

/// The EAP-Identity response charon makes from the peer's IKE identity
/// when it starts the conversation (`add_eap_identity`), with EAP
/// identifier `id`.
pub fn eap_identity(settings: &Settings, id: u8, user: &[u8]) -> Vec<u8> {
    let mut data = settings.id_prefix.as_bytes().to_vec();
    data.extend_from_slice(user);
    let len = u16::try_from(data.len().saturating_add(5)).unwrap_or(u16::MAX);
    let mut out = vec![2, id];
    out.extend_from_slice(&len.to_be_bytes());
    out.push(1);
    out.extend_from_slice(&data);
    out
}

/// Acct-Status-Type (RFC 2866 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcctStatus {
    Start = 1,
    Stop = 2,
}

/// What an Accounting-Stop reports about the session.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub seconds: u32,
    pub in_octets: u64,
    pub out_octets: u64,
    pub in_packets: u32,
    pub out_packets: u32,
    /// Acct-Terminate-Cause (RFC 2866 5.10): 1 User Request (the peer
    /// deleted it), 3 Lost Service (DPD), 5 Session Timeout, 6 Admin Reset.
    pub cause: u32,
}

/// An Accounting-Request for the session of `user` with its virtual IP
/// (Framed-IP-Address / Framed-IPv6-Address), as
/// `eap_radius_accounting`'s Start and Stop.
pub fn accounting_request(
    settings: &Settings,
    session: &Session,
    status: AcctStatus,
    user: &[u8],
    vips: &[IpAddr],
    usage: Option<&Usage>,
) -> Packet {
    let mut p = Packet::new(Code::ACCOUNTING_REQUEST);
    p.add_u32(attr::ACCT_STATUS_TYPE, status as u32);
    p.add(attr::ACCT_SESSION_ID, session.session_id().as_bytes());
    session.add_nas(&mut p, settings);
    p.add(attr::USER_NAME, user);
    for vip in vips {
        match vip {
            IpAddr::V4(a) => p.add(attr::FRAMED_IP_ADDRESS, &a.octets()),
            // Framed-IPv6-Address (RFC 6911).
            IpAddr::V6(a) => p.add(168, &a.octets()),
        }
    }
    if let Some(u) = usage {
        // The low 32 bits and Acct-*-Gigawords (52, 53) for the rest
        // (RFC 2869 5.1/5.2).
        let split = |v: u64| {
            (
                u32::try_from(v & 0xffff_ffff).unwrap_or(0),
                u32::try_from(v >> 32).unwrap_or(u32::MAX),
            )
        };
        let (out_lo, out_hi) = split(u.out_octets);
        let (in_lo, in_hi) = split(u.in_octets);
        p.add_u32(attr::ACCT_OUTPUT_OCTETS, out_lo);
        if out_hi != 0 {
            p.add_u32(53, out_hi);
        }
        p.add_u32(attr::ACCT_OUTPUT_PACKETS, u.out_packets);
        p.add_u32(attr::ACCT_INPUT_OCTETS, in_lo);
        if in_hi != 0 {
            p.add_u32(52, in_hi);
        }
        p.add_u32(attr::ACCT_INPUT_PACKETS, u.in_packets);
        p.add_u32(attr::ACCT_SESSION_TIME, u.seconds);
        p.add_u32(attr::ACCT_TERMINATE_CAUSE, u.cause);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            name: "rw".into(),
            unique: 7,
            prefix: 1_700_000_000,
            local: "192.0.2.1:4500".parse().unwrap(),
            remote: "198.51.100.9:4500".parse().unwrap(),
        }
    }

    #[test]
    fn an_access_request_carries_what_charon_sends() {
        let s = Settings::default();
        let p = access_request(&s, &session(), b"carol", &[2, 0, 0, 5, 1], Some(b"st"));
        assert_eq!(p.get(attr::USER_NAME), Some(&b"carol"[..]));
        assert_eq!(p.get_u32(attr::NAS_PORT), Some(7));
        assert_eq!(p.get(attr::NAS_IP_ADDRESS), Some(&[192, 0, 2, 1][..]));
        assert_eq!(
            p.get(attr::CALLING_STATION_ID),
            Some(&b"198.51.100.9[4500]"[..])
        );
        assert_eq!(p.get(attr::ACCT_SESSION_ID), Some(&b"1700000000-7"[..]));
        assert_eq!(p.get(attr::STATE), Some(&b"st"[..]));
        let s = Settings {
            station_id_with_port: false,
            ..Settings::default()
        };
        let p = access_request(&s, &session(), b"carol", &[], None);
        assert_eq!(p.get(attr::CALLED_STATION_ID), Some(&b"192.0.2.1"[..]));
        assert!(p.get(attr::STATE).is_none());
    }

    #[test]
    fn eap_identity_is_a_response_of_type_1() {
        let s = Settings {
            id_prefix: "ike-".into(),
            ..Settings::default()
        };
        assert_eq!(
            eap_identity(&s, 3, b"bob"),
            [&[2, 3, 0, 12, 1][..], b"ike-bob"].concat()
        );
    }

    #[test]
    fn accounting_stop_reports_usage_and_the_vip() {
        let u = Usage {
            seconds: 61,
            in_octets: (1 << 32) + 5,
            out_octets: 9,
            in_packets: 2,
            out_packets: 3,
            cause: 1,
        };
        let p = accounting_request(
            &Settings::default(),
            &session(),
            AcctStatus::Stop,
            b"carol",
            &["10.3.0.1".parse().unwrap()],
            Some(&u),
        );
        assert_eq!(p.get_u32(attr::ACCT_STATUS_TYPE), Some(2));
        assert_eq!(p.get(attr::FRAMED_IP_ADDRESS), Some(&[10, 3, 0, 1][..]));
        assert_eq!(p.get_u32(attr::ACCT_INPUT_OCTETS), Some(5));
        assert_eq!(p.get_u32(52), Some(1));
        assert!(p.get(53).is_none());
        assert_eq!(p.get_u32(attr::ACCT_SESSION_TIME), Some(61));
    }
}
