//! Guest-side network helpers: named network namespaces, the lab's
//! two-gateway topology, ping. For test bodies that run inside UML (or as
//! root on the host): every helper panics with the failing command's output.

use std::fmt::Write as _;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::process::Command;

/// A named network namespace (`ip netns add`), with `lo` up. Deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
}

impl Netns {
    /// Creates the namespace; fails if it exists.
    pub fn new(name: &str) -> Self {
        crate::sh(&format!("ip netns add {name}"));
        let ns = Netns {
            name: name.to_owned(),
        };
        ns.ip("link set lo up");
        ns
    }

    /// `ip -n NAME ARGS` (ARGS split by the shell); panics on failure.
    pub fn ip(&self, args: &str) -> String {
        crate::sh(&format!("ip -n {} {args}", self.name))
    }

    /// Runs a shell command inside the namespace; panics on failure.
    pub fn sh(&self, cmd: &str) -> String {
        crate::sh(&format!(
            "ip netns exec {} sh -c {}",
            self.name,
            shell_quote(cmd)
        ))
    }

    /// Sets a sysctl inside the namespace (`net.ipv4.ip_forward` ...),
    /// through /proc/sys (procps may be missing).
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = key.replace('.', "/");
        self.sh(&format!("echo {value} > /proc/sys/{path}"));
    }

    /// Moves the calling thread into this namespace: sockets it opens from
    /// now on (netlink ones included) belong to it.
    pub fn enter(&self) {
        enter_netns(&self.name);
    }

    /// Pings `dst` from this namespace: `count` echo requests 50 ms apart,
    /// waiting up to `wait` seconds for each reply, optionally from the
    /// source address `from`. `Ok` if every request was answered, `Err`
    /// with ping's output otherwise.
    pub fn ping(
        &self,
        from: Option<IpAddr>,
        dst: IpAddr,
        count: u32,
        wait: f32,
    ) -> Result<(), String> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, "ping", "-n", "-q"]);
        cmd.args([
            "-c",
            &count.to_string(),
            "-i",
            "0.05",
            "-W",
            &wait.to_string(),
        ]);
        if let Some(src) = from {
            cmd.args(["-I", &src.to_string()]);
        }
        cmd.arg(dst.to_string());
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run ping: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let all_back = text.contains(&format!("{count} packets transmitted, {count} received"));
        if out.status.success() && all_back {
            Ok(())
        } else {
            Err(format!("ping {dst} from {}: {}", self.name, text.trim()))
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Moves the calling thread into the named namespace (one made with `ip
/// netns add`, by this crate or by lib.sh): sockets it opens from now on
/// belong to it. Other threads stay where they are.
pub fn enter_netns(name: &str) {
    let f = File::open(format!("/run/netns/{name}"))
        .unwrap_or_else(|e| panic!("cannot open /run/netns/{name}: {e}"));
    // setns(2) has no safe wrapper in std.
    #[allow(unsafe_code)]
    // SAFETY: a valid namespace fd; setns only changes this thread's
    // network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "setns into {name}: {} (needs root)",
        std::io::Error::last_os_error()
    );
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// One address family's addresses in [`Gateways`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// host-a.
    pub host_a: IpAddr,
    /// gw-a on the LAN of host-a.
    pub gw_a_lan: IpAddr,
    /// gw-a on the WAN.
    pub gw_a_wan: IpAddr,
    /// gw-b on the WAN.
    pub gw_b_wan: IpAddr,
    /// gw-b on the LAN of host-b.
    pub gw_b_lan: IpAddr,
    /// host-b.
    pub host_b: IpAddr,
    /// The protected subnet behind gw-a (address).
    pub net_a: IpAddr,
    /// The protected subnet behind gw-b (address).
    pub net_b: IpAddr,
    /// Prefix length of both protected subnets.
    pub net_len: u8,
}

fn a(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// The IPv4 addresses (the same as tests/lab/lib.sh's).
pub fn v4() -> Addrs {
    Addrs {
        host_a: a("10.1.0.2"),
        gw_a_lan: a("10.1.0.1"),
        gw_a_wan: a("192.0.2.1"),
        gw_b_wan: a("192.0.2.2"),
        gw_b_lan: a("10.2.0.1"),
        host_b: a("10.2.0.2"),
        net_a: a("10.1.0.0"),
        net_b: a("10.2.0.0"),
        net_len: 16,
    }
}

/// The IPv6 addresses.
pub fn v6() -> Addrs {
    Addrs {
        host_a: a("fd00:a::2"),
        gw_a_lan: a("fd00:a::1"),
        gw_a_wan: a("2001:db8::1"),
        gw_b_wan: a("2001:db8::2"),
        gw_b_lan: a("fd00:b::1"),
        host_b: a("fd00:b::2"),
        net_a: a("fd00:a::"),
        net_b: a("fd00:b::"),
        net_len: 64,
    }
}

/// The lab's site-to-site topology, dual stack:
///
/// ```text
/// host-a --lan-- gw-a ==wan== gw-b --lan-- host-b
/// 10.1.0.2  10.1.0.1  192.0.2.1  192.0.2.2  10.2.0.1  10.2.0.2
/// fd00:a::2 fd00:a::1 2001:db8::1 2001:db8::2 fd00:b::1 fd00:b::2
/// ```
///
/// The gateways forward (IPv4 and IPv6). Hosts route everything through
/// their gateway. The gateways get no route to the other protected subnet
/// unless [`Gateways::route_protected_subnets`] adds one (an IKE daemon may
/// install its own). The WAN neighbours are static (no ARP/ND on the WAN):
/// IPsec policies covering the WAN addresses would otherwise also catch
/// IPv6 neighbour discovery and break it.
#[derive(Debug)]
pub struct Gateways {
    /// host-a.
    pub host_a: Netns,
    /// gw-a.
    pub gw_a: Netns,
    /// gw-b.
    pub gw_b: Netns,
    /// host-b.
    pub host_b: Netns,
}

impl Gateways {
    /// Builds the four namespaces, named `{prefix}host-a`, `{prefix}gw-a`, ...
    pub fn new(prefix: &str) -> Self {
        let ns = |n: &str| Netns::new(&format!("{prefix}{n}"));
        let g = Gateways {
            host_a: ns("host-a"),
            gw_a: ns("gw-a"),
            gw_b: ns("gw-b"),
            host_b: ns("host-b"),
        };
        let (v4, v6) = (v4(), v6());
        g.link(&g.host_a, "lan", &g.gw_a, "lan");
        g.link(&g.gw_a, "wan", &g.gw_b, "wan");
        g.link(&g.host_b, "lan", &g.gw_b, "lan");
        for (ns, dev, ad4, ad6, l4, l6) in [
            (&g.host_a, "lan", v4.host_a, v6.host_a, 16, 64),
            (&g.gw_a, "lan", v4.gw_a_lan, v6.gw_a_lan, 16, 64),
            (&g.gw_a, "wan", v4.gw_a_wan, v6.gw_a_wan, 24, 64),
            (&g.gw_b, "wan", v4.gw_b_wan, v6.gw_b_wan, 24, 64),
            (&g.gw_b, "lan", v4.gw_b_lan, v6.gw_b_lan, 16, 64),
            (&g.host_b, "lan", v4.host_b, v6.host_b, 16, 64),
        ] {
            ns.ip(&format!("addr add {ad4}/{l4} dev {dev}"));
            ns.ip(&format!("addr add {ad6}/{l6} dev {dev} nodad"));
            ns.ip(&format!("link set {dev} up"));
        }
        for (host, gw) in [
            (&g.host_a, v4.gw_a_lan),
            (&g.host_a, v6.gw_a_lan),
            (&g.host_b, v4.gw_b_lan),
            (&g.host_b, v6.gw_b_lan),
        ] {
            host.ip(&format!("route add default via {gw}"));
        }
        for gw in [&g.gw_a, &g.gw_b] {
            gw.sysctl("net.ipv4.ip_forward", "1");
            gw.sysctl("net.ipv6.conf.all.forwarding", "1");
        }
        let mac_a = g.mac(&g.gw_a, "wan");
        let mac_b = g.mac(&g.gw_b, "wan");
        for (ns, peer4, peer6, mac) in [
            (&g.gw_a, v4.gw_b_wan, v6.gw_b_wan, &mac_b),
            (&g.gw_b, v4.gw_a_wan, v6.gw_a_wan, &mac_a),
        ] {
            for peer in [peer4, peer6] {
                ns.ip(&format!(
                    "neigh replace {peer} lladdr {mac} dev wan nud permanent"
                ));
            }
        }
        g
    }

    fn link(&self, n1: &Netns, if1: &str, n2: &Netns, if2: &str) {
        n1.ip(&format!(
            "link add {if1} type veth peer name {if2} netns {}",
            n2.name
        ));
    }

    fn mac(&self, ns: &Netns, dev: &str) -> String {
        let out = ns.ip(&format!("-br link show dev {dev}"));
        out.split_whitespace()
            .nth(2)
            .unwrap_or_else(|| panic!("no MAC address in `{out}`"))
            .to_owned()
    }

    /// Routes each gateway's traffic for the other protected subnet to the
    /// other gateway (both families).
    pub fn route_protected_subnets(&self) {
        for f in [v4(), v6()] {
            self.gw_a.ip(&format!(
                "route add {}/{} via {}",
                f.net_b, f.net_len, f.gw_b_wan
            ));
            self.gw_b.ip(&format!(
                "route add {}/{} via {}",
                f.net_a, f.net_len, f.gw_a_wan
            ));
        }
    }

    /// `ip -s xfrm state` and `ip xfrm policy` of both gateways, for
    /// failure messages.
    pub fn xfrm_state_text(&self) -> String {
        let mut s = String::new();
        for gw in [&self.gw_a, &self.gw_b] {
            let _ = write!(
                s,
                "--- {}: ip -s xfrm state\n{}--- {}: ip xfrm policy\n{}",
                gw.name,
                gw.ip("-s xfrm state"),
                gw.name,
                gw.ip("xfrm policy")
            );
        }
        s
    }
}
