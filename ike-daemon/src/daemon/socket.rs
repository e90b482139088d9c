//! The IKE sockets: UDP 500 and 4500 for each address family, bound to
//! the wildcard address. The local address of each received datagram
//! comes from `IP_PKTINFO` / `IPV6_RECVPKTINFO`, and each datagram is sent
//! with the source address the endpoint chose, in the same control message
//! on `sendmsg`. One socket per family and port (not one per address)
//! because addresses come and go at run time (DHCP, failover addresses)
//! and a wildcard socket sees them all without rebinding; the kernel
//! still routes, and uses our source address when it is one of ours.
//!
//! Every IKE socket has a per-socket bypass policy, so IKE never goes
//! through (or is dropped by) the tunnels it negotiates. The 4500 socket
//! has `UDP_ENCAP_ESPINUDP`: the kernel takes ESP-in-UDP itself and hands
//! us only datagrams behind the non-ESP marker (four zero octets), which
//! is stripped on receive and added on send.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::libc;
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, SockaddrStorage, sockopt,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The non-ESP marker in front of IKE messages on port 4500 (RFC 3948).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// Largest datagram we read (IKE messages are far smaller; fragments too).
const MAX_DATAGRAM: usize = 65535;

/// Receive buffer of each IKE socket (the kernel doubles it for its
/// bookkeeping). The default (`net.core.rmem_default`, 208 KiB) holds a
/// hundred or two datagrams: 1,000 IKE_SA_INIT requests arriving at once
/// (the tunnel benchmark, docs/performance.md) lost 1,900 of them at the responder, each
/// loss costing the initiator a retransmission 4 s or more later. Memory
/// is only used while datagrams wait.
pub const RECV_BUFFER: usize = 4 << 20;

/// An IKE message from a datagram received on the NAT-T port: the bytes
/// after the non-ESP marker, or `None` if there is no marker (ESP that
/// reached us, or a keepalive / runt), which must be dropped.
pub fn strip_marker(datagram: &[u8]) -> Option<&[u8]> {
    match datagram.split_first_chunk::<4>() {
        Some((m, rest)) if *m == NON_ESP_MARKER && !rest.is_empty() => Some(rest),
        _ => None,
    }
}

/// The datagram to send on the NAT-T port for an IKE message.
pub fn add_marker(message: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(message.len().saturating_add(4));
    v.extend_from_slice(&NON_ESP_MARKER);
    v.extend_from_slice(message);
    v
}

/// The datagram to send from a socket for `payload` (a [`Transmit`]'s):
/// on the NAT-T port an IKE message gets the marker, a NAT keepalive (the
/// single octet 0xFF, RFC 3948 2.3) does not.
///
/// [`Transmit`]: ike::sa::Transmit
pub fn datagram(natt: bool, payload: Vec<u8>) -> Vec<u8> {
    if natt && payload != [0xff] {
        add_marker(&payload)
    } else {
        payload
    }
}

/// One IKE socket.
#[derive(Debug)]
pub struct IkeSocket {
    sock: UdpSocket,
    /// The port it is bound to.
    pub port: u16,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// The NAT-T socket (marker on every IKE message).
    pub natt: bool,
}

/// A received datagram.
#[derive(Debug)]
pub struct Received {
    /// Our address (from the packet info) and the socket's port.
    pub local: SocketAddr,
    /// The sender.
    pub remote: SocketAddr,
    /// The bytes (marker still in place).
    pub bytes: Vec<u8>,
}

fn errno(e: nix::errno::Errno, what: &str) -> io::Error {
    let e = io::Error::from(e);
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Sets [`RECV_BUFFER`]: with CAP_NET_ADMIN beyond `net.core.rmem_max`
/// (`SO_RCVBUFFORCE`), otherwise up to it.
fn set_recv_buffer(fd: &OwnedFd, port: u16) {
    if socket::setsockopt(fd, sockopt::RcvBufForce, &RECV_BUFFER).is_ok() {
        return;
    }
    if let Err(e) = socket::setsockopt(fd, sockopt::RcvBuf, &RECV_BUFFER) {
        tracing::debug!("UDP port {port}: receive buffer left at its default: {e}");
    }
}

impl IkeSocket {
    /// Binds `[::]:port` (IPv6 only) or `0.0.0.0:port` with packet info,
    /// the bypass policy and, for `natt`, ESP-in-UDP.
    pub fn bind(v6: bool, port: u16, natt: bool) -> io::Result<IkeSocket> {
        let family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let fd: OwnedFd = socket::socket(
            family,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(|e| errno(e, "socket"))?;
        if v6 {
            socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)
                .map_err(|e| errno(e, "IPV6_V6ONLY"))?;
            socket::setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)
                .map_err(|e| errno(e, "IPV6_RECVPKTINFO"))?;
            let addr = SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
            socket::bind(fd.as_raw_fd(), &addr)
                .map_err(|e| errno(e, &format!("bind [::]:{port}")))?;
        } else {
            socket::setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)
                .map_err(|e| errno(e, "IP_PKTINFO"))?;
            let addr = SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
            socket::bind(fd.as_raw_fd(), &addr)
                .map_err(|e| errno(e, &format!("bind 0.0.0.0:{port}")))?;
        }
        set_recv_buffer(&fd, port);
        let fam = if v6 {
            xfrm_netlink::Family::V6
        } else {
            xfrm_netlink::Family::V4
        };
        xfrm_netlink::bypass_socket(&fd, fam).map_err(|e| io::Error::other(e.to_string()))?;
        if natt {
            xfrm_netlink::espinudp_socket(&fd).map_err(|e| io::Error::other(e.to_string()))?;
        }
        let std_sock = std::net::UdpSocket::from(fd);
        let sock = UdpSocket::from_std(std_sock)?;
        let port = sock.local_addr().map(|a| a.port()).unwrap_or(port);
        Ok(IkeSocket {
            sock,
            port,
            v6,
            natt,
        })
    }

    /// A buffer for [`IkeSocket::recv`], reused across calls.
    pub fn recv_buffer() -> Vec<u8> {
        vec![0u8; MAX_DATAGRAM]
    }

    /// Receives one datagram with its local address (`buf`: scratch space
    /// from [`IkeSocket::recv_buffer`]; the datagram is copied out).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let port = self.port;
        let fd = self.sock.as_fd().as_raw_fd();
        let (len, remote, local_ip) = self
            .sock
            .async_io(Interest::READABLE, || {
                let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo);
                let mut iov = [IoSliceMut::new(&mut *buf)];
                let msg = socket::recvmsg::<SockaddrStorage>(
                    fd,
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::empty(),
                )
                .map_err(io::Error::from)?;
                let mut local_ip = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        match c {
                            ControlMessageOwned::Ipv4PacketInfo(i) => {
                                local_ip = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                                    i.ipi_addr.s_addr,
                                ))));
                            }
                            ControlMessageOwned::Ipv6PacketInfo(i) => {
                                local_ip = Some(IpAddr::V6(Ipv6Addr::from(i.ipi6_addr.s6_addr)));
                            }
                            _ => {}
                        }
                    }
                }
                let remote = msg.address.and_then(|a: SockaddrStorage| {
                    if let Some(a) = a.as_sockaddr_in() {
                        Some(SocketAddr::V4(SocketAddrV4::from(*a)))
                    } else {
                        a.as_sockaddr_in6()
                            .map(|a| SocketAddr::V6(SocketAddrV6::from(*a)))
                    }
                });
                Ok((msg.bytes, remote, local_ip))
            })
            .await?;
        let bytes = buf.get(..len).unwrap_or_default().to_vec();
        let remote = remote.ok_or_else(|| io::Error::other("datagram without a sender address"))?;
        let unspecified = if self.v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        Ok(Received {
            local: SocketAddr::new(local_ip.unwrap_or(unspecified), port),
            remote,
            bytes,
        })
    }

    /// Sends `payload` (marker already added) to `remote` from `source`
    /// (unspecified: the kernel chooses).
    pub async fn send(&self, source: IpAddr, remote: SocketAddr, payload: &[u8]) -> io::Result<()> {
        let fd = self.sock.as_fd().as_raw_fd();
        self.sock
            .async_io(Interest::WRITABLE, || {
                let iov = [IoSlice::new(payload)];
                let r = match (remote, source) {
                    (SocketAddr::V4(r), IpAddr::V4(src)) => {
                        let info = libc::in_pktinfo {
                            ipi_ifindex: 0,
                            ipi_spec_dst: libc::in_addr {
                                s_addr: u32::from(src).to_be(),
                            },
                            ipi_addr: libc::in_addr { s_addr: 0 },
                        };
                        let cm = [ControlMessage::Ipv4PacketInfo(&info)];
                        let cms: &[ControlMessage] = if src.is_unspecified() { &[] } else { &cm };
                        socket::sendmsg(
                            fd,
                            &iov,
                            cms,
                            MsgFlags::empty(),
                            Some(&SockaddrIn::from(r)),
                        )
                    }
                    (SocketAddr::V6(r), IpAddr::V6(src)) => {
                        let info = libc::in6_pktinfo {
                            ipi6_addr: libc::in6_addr {
                                s6_addr: src.octets(),
                            },
                            ipi6_ifindex: 0,
                        };
                        let cm = [ControlMessage::Ipv6PacketInfo(&info)];
                        let cms: &[ControlMessage] = if src.is_unspecified() { &[] } else { &cm };
                        socket::sendmsg(
                            fd,
                            &iov,
                            cms,
                            MsgFlags::empty(),
                            Some(&SockaddrIn6::from(r)),
                        )
                    }
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("source {source} and destination {remote} differ in family"),
                        ));
                    }
                };
                r.map(|_| ()).map_err(io::Error::from)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_marker_is_stripped_and_added() {
        assert_eq!(
            strip_marker(&[0, 0, 0, 0, 0x11, 0x22]),
            Some(&[0x11, 0x22][..])
        );
        assert_eq!(add_marker(&[0x11, 0x22]), vec![0, 0, 0, 0, 0x11, 0x22]);
        let msg = [7u8; 40];
        assert_eq!(strip_marker(&add_marker(&msg)), Some(&msg[..]));
    }

    #[test]
    fn keepalives_go_without_the_marker() {
        assert_eq!(datagram(true, vec![0xff]), vec![0xff]);
        assert_eq!(datagram(false, vec![0xff]), vec![0xff]);
        assert_eq!(datagram(true, vec![1, 2]), vec![0, 0, 0, 0, 1, 2]);
        assert_eq!(datagram(false, vec![1, 2]), vec![1, 2]);
    }

    #[test]
    fn datagrams_without_the_marker_are_dropped() {
        // ESP: a non-zero SPI where the marker would be.
        assert_eq!(strip_marker(&[0xc0, 0, 0, 1, 0, 0, 0, 1]), None);
        assert_eq!(strip_marker(&[0, 0, 0, 1, 9]), None);
        // NAT-T keepalive (one 0xff octet) and runts.
        assert_eq!(strip_marker(&[0xff]), None);
        assert_eq!(strip_marker(&[]), None);
        assert_eq!(strip_marker(&[0, 0, 0]), None);
        // A marker with nothing behind it is no IKE message.
        assert_eq!(strip_marker(&[0, 0, 0, 0]), None);
    }

    #[test]
    fn ike_sockets_get_a_large_receive_buffer() {
        let fd = socket::socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let before = socket::getsockopt(&fd, sockopt::RcvBuf).unwrap();
        set_recv_buffer(&fd, 0);
        let after = socket::getsockopt(&fd, sockopt::RcvBuf).unwrap();
        // The kernel reports twice what was set; without CAP_NET_ADMIN it
        // is capped by net.core.rmem_max (tests run as root).
        if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0 {
            assert!(after >= RECV_BUFFER, "{before} -> {after}");
        } else {
            assert!(after >= before, "{before} -> {after}");
        }
    }
}
