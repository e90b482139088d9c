//! MOBIKE's client side in the daemon: noticing that our address changed.
//! Address and route changes (rtnetlink multicast) make the driver ask,
//! for each IKE SA that can move (`Endpoint::mobile_sas`), whether its
//! address is still ours and reaches the peer; if not, `Endpoint::roam`
//! moves it to the source address the routing table picks toward the
//! peer now (UPDATE_SA_ADDRESSES). charon's kernel-netlink plugin does the
//! same with its "roam" events (and keeps a path that still works).
//!
//! Changes come in bursts (an address goes, its routes go, another comes
//! with its routes): [`changes`] waits [`SETTLE`] after the first of a
//! burst and reports it once. iked's own routes (table 220, protocol
//! [`RTPROT_IKED`]) are not changes: installing a moved tunnel's routes
//! must not start another check.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use futures_util::StreamExt;
use ike::sa::IkeSaId;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{AsyncSocket, SocketAddr as NlAddr};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::routes::RTPROT_IKED;

/// How long a burst of changes may take before the check.
pub const SETTLE: Duration = Duration::from_millis(200);

/// The legacy multicast group bits (linux/rtnetlink.h): IPv4 and IPv6
/// addresses and routes.
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// Whether a notification may change the source address toward a peer:
/// any address change, and route changes other than iked's own.
pub fn is_change(m: &RouteNetlinkMessage) -> bool {
    match m {
        RouteNetlinkMessage::NewAddress(_) | RouteNetlinkMessage::DelAddress(_) => true,
        RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r) => {
            u8::from(r.header.protocol) != RTPROT_IKED
        }
        _ => false,
    }
}

/// One message per burst of address or route changes (none if the
/// notifications cannot be had: then nothing moves by itself).
pub fn changes() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    let opened = rtnetlink::new_connection().and_then(|(mut conn, _handle, messages)| {
        let groups =
            RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE;
        conn.socket_mut()
            .socket_mut()
            .bind(&NlAddr::new(0, groups))?;
        Ok((conn, messages))
    });
    let (conn, mut messages) = match opened {
        Ok(x) => x,
        Err(e) => {
            warn!("no address change notifications (MOBIKE cannot follow a move): {e}");
            return rx;
        }
    };
    tokio::spawn(conn);
    tokio::spawn(async move {
        while let Some((m, _)) = messages.next().await {
            let NetlinkPayload::InnerMessage(m) = m.payload else {
                continue;
            };
            if !is_change(&m) {
                continue;
            }
            // The rest of the burst.
            let _ =
                tokio::time::timeout(SETTLE, async { while messages.next().await.is_some() {} })
                    .await;
            // A check already pending covers this one.
            if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                break;
            }
        }
    });
    rx
}

/// The source address to use toward `remote` now: `current` while it is
/// still one of ours and the peer is reachable from it (charon keeps the
/// path then too: "keeping connection path"), else the one the routing
/// table picks. A connected UDP socket sends nothing. `None`: no route.
pub fn source_toward(current: IpAddr, remote: SocketAddr) -> Option<IpAddr> {
    let from = |ip: IpAddr| -> Option<IpAddr> {
        let s = UdpSocket::bind(SocketAddr::new(ip, 0)).ok()?;
        s.connect(remote).ok()?;
        let ip = s.local_addr().ok()?.ip();
        (!ip.is_unspecified()).then_some(ip)
    };
    if from(current).is_some() {
        return Some(current);
    }
    let any = if remote.is_ipv4() {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    };
    from(any)
}

/// The moves to make: each SA whose source address toward its peer
/// (`source(current, remote)`) is now another one, with that address. An
/// SA without a route to its peer stays (the next change may bring one).
pub fn moves(
    sas: &[(IkeSaId, SocketAddr, SocketAddr)],
    source: impl Fn(IpAddr, SocketAddr) -> Option<IpAddr>,
) -> Vec<(IkeSaId, IpAddr)> {
    sas.iter()
        .filter_map(|&(id, local, remote)| match source(local.ip(), remote) {
            Some(ip) if ip != local.ip() => Some((id, ip)),
            Some(_) => None,
            None => {
                debug!("IKE SA {id:?}: no route to {remote} now, not moving it");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(n: u64, local: &str, remote: &str) -> (IkeSaId, SocketAddr, SocketAddr) {
        (IkeSaId(n), local.parse().unwrap(), remote.parse().unwrap())
    }

    #[test]
    fn only_sas_whose_source_changed_move() {
        let sas = [
            sa(1, "192.0.2.1:4500", "198.51.100.1:4500"),
            sa(2, "192.0.2.1:4500", "203.0.113.1:4500"),
            sa(3, "192.0.2.1:4500", "198.51.100.9:4500"),
        ];
        let got = moves(&sas, |_, r| match r.ip().to_string().as_str() {
            "198.51.100.1" => Some("192.0.2.7".parse().unwrap()),
            "203.0.113.1" => Some("192.0.2.1".parse().unwrap()),
            _ => None,
        });
        assert_eq!(got, [(IkeSaId(1), "192.0.2.7".parse().unwrap())]);
    }

    #[test]
    fn an_address_of_ours_stays_one_that_is_gone_is_replaced() {
        let lo = "127.0.0.1".parse().unwrap();
        let peer = "127.0.0.1:4500".parse().unwrap();
        assert_eq!(source_toward(lo, peer), Some(lo));
        // Also ours (all of 127/8 is loopback), and kept though the
        // routing table would pick 127.0.0.1.
        let other = "127.0.0.2".parse().unwrap();
        assert_eq!(source_toward(other, peer), Some(other));
        // Not ours (TEST-NET-1): the routing table's choice.
        assert_eq!(source_toward("192.0.2.1".parse().unwrap(), peer), Some(lo));
    }
}
