//! Per-socket bypass policies for IKE sockets.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::Emitable;
use netlink_packet_xfrm as nx;

use crate::error::Error;
use crate::types::Family;

/// Exempts a socket from IPsec in both directions: sets an "allow"
/// per-socket policy (`IP_XFRM_POLICY` or `IPV6_XFRM_POLICY`) for in and
/// out, as IKE daemons do for their UDP 500/4500 sockets so that IKE
/// traffic never needs (or is blocked by) the SAs it negotiates.
///
/// `family` is the socket's address family (`V6` for a dual-stack IPv6
/// socket). Per-socket policies are not in the SPD: they do not show in
/// dumps and vanish with the socket, so [`crate::Handle::flush_owned`] has
/// nothing to clean up for them.
pub fn bypass_socket<S: AsFd>(socket: &S, family: Family) -> Result<(), Error> {
    let fd = socket.as_fd();
    let (level, name) = match family {
        Family::V4 => (libc::SOL_IP, libc::IP_XFRM_POLICY),
        Family::V6 => (libc::SOL_IPV6, libc::IPV6_XFRM_POLICY),
    };
    for dir in [nx::XFRM_POLICY_IN, nx::XFRM_POLICY_OUT] {
        let buf = bypass_policy_bytes(family, dir);
        let len = libc::socklen_t::try_from(buf.len())
            .map_err(|_| Error::InvalidArgument("policy too large".to_owned()))?;
        // SAFETY: `fd` is a valid open descriptor for the duration of the
        // call (borrowed from `socket`); `buf` is an initialized
        // `struct xfrm_userpolicy_info` of `len` bytes that outlives the
        // call, and the kernel only reads from it.
        #[allow(unsafe_code)] // The one raw syscall here: std has no setsockopt for this option.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                buf.as_ptr().cast::<libc::c_void>(),
                len,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(Error::Io(io::Error::new(
                e.kind(),
                format!(
                    "setting the IKE bypass policy ({}) on the socket failed: {e}",
                    if dir == nx::XFRM_POLICY_IN {
                        "in"
                    } else {
                        "out"
                    }
                ),
            )));
        }
    }
    Ok(())
}

/// The `struct xfrm_userpolicy_info` of an allow policy without templates.
pub(crate) fn bypass_policy_bytes(family: Family, dir: u8) -> [u8; nx::XFRM_USER_POLICY_INFO_LEN] {
    let p = nx::UserPolicyInfo {
        selector: nx::Selector {
            family: family.af(),
            ..Default::default()
        },
        lifetime_cfg: nx::LifetimeConfig::default(), // all limits infinite
        direction: dir,
        action: nx::XFRM_POLICY_ALLOW,
        ..Default::default()
    };
    let mut buf = [0u8; nx::XFRM_USER_POLICY_INFO_LEN];
    if p.buffer_len() == buf.len() {
        p.emit(&mut buf);
    }
    buf
}

/// `UDP_ENCAP_ESPINUDP` of linux/udp.h (libc does not export it).
const UDP_ENCAP_ESPINUDP: libc::c_int = 2;

/// Makes a UDP socket (the IKE daemon's port-4500 socket) an ESP-in-UDP
/// endpoint (RFC 3948): sets `UDP_ENCAP` to `UDP_ENCAP_ESPINUDP`, so the
/// kernel takes every datagram that does not start with the four-zero
/// non-ESP marker as ESP for its SAs with [`crate::UdpEncap`], and hands
/// the rest (IKE, behind the marker) to the socket. Works for IPv4 and
/// (since Linux 5.8) IPv6 sockets.
pub fn espinudp_socket<S: AsFd>(socket: &S) -> Result<(), Error> {
    let fd = socket.as_fd();
    let val: libc::c_int = UDP_ENCAP_ESPINUDP;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
        .map_err(|_| Error::InvalidArgument("option too large".to_owned()))?;
    // SAFETY: `fd` is a valid open descriptor for the duration of the call
    // (borrowed from `socket`); `val` is an initialized c_int of `len`
    // bytes that outlives the call, and the kernel only reads from it.
    #[allow(unsafe_code)] // std has no setsockopt for UDP_ENCAP either.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_ENCAP,
            (&raw const val).cast::<libc::c_void>(),
            len,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(Error::Io(io::Error::new(
            e.kind(),
            format!("setting UDP_ENCAP (ESP in UDP) on the socket failed: {e}"),
        )));
    }
    Ok(())
}
