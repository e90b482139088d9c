//! Remote access (issue 18) in the UML kernel lab, ONE boot: a gateway
//! with a certificate and address pools, three strongSwan road warriors
//! (charon 5.9.8, EAP-MSCHAPv2, `vips = 0.0.0.0`), two of them behind one
//! NAT:
//!
//! ```text
//!                         rw1 192.0.2.11 --wan1-- 192.0.2.1
//!                                                      gw -- lan 10.1.0.1 -- 10.1.0.2 srv
//! rw2 172.16.0.2 --+-- nat 198.51.100.20 --wan2-- 198.51.100.1
//! rw3 172.16.1.2 --+   (MASQUERADE, raw ESP dropped)    srv: FreeRADIUS 10.1.0.2:1812/1813
//! rw4 203.0.113.4 --wan4-- 203.0.113.1 gw   (iked as road warrior)
//! ```
//!
//! Each road warrior is its own charon in its own namespace; all of them
//! reach the gateway at 192.0.2.1 (the NAT's clients through its
//! 198.51.100.1 side). The gateway proves itself with a certificate
//! (ECDSA P-256, made by openssl on the host before each boot), the users
//! with EAP-MSCHAPv2 (`eap_id = %any`: the gateway asks the identity).
//! Pool `rw` (10.3.0.0/24, DNS 10.1.0.53 and 10.1.0.54) serves connection
//! `rw`; pool `tiny` (one address, 10.4.0.1) serves `tiny`, at the
//! gateway's address 192.0.2.3 (`radius`: 192.0.2.4).
//!
//! The scenario, against each gateway ([`scenario`]):
//! 1. the three road warriors connect at once: each gets an address from
//!    the pool, all distinct (the client's and the gateway's view agree);
//!    the DNS servers reached each client (charon's resolve plugin writes
//!    them to a file of the lab's, never the machine's resolv.conf);
//! 2. from each virtual IP a ping to srv goes through ESP (clear traffic
//!    from the pools is dropped on the gateway; the gateway's ESP
//!    counters rise by at least the pings);
//! 3. a wrong password (user dave) is refused: the client's initiate
//!    fails, and neither kernel gets an SA or a policy;
//! 4. rw2 disconnects and connects again: the same address;
//! 5. pool `tiny` exhausted: x@tiny (rw1) gets its one address, y@tiny
//!    (rw3) is answered INTERNAL_ADDRESS_FAILURE, nothing installed;
//! 6. EAP-RADIUS: connection `radius` forwards EAP to FreeRADIUS on srv (its own configuration directory
//!    in the output folder, EAP-MSCHAPv2); erin (rw2) gets an address of
//!    pool rw and pings through ESP, and FreeRADIUS's detail file gets an
//!    accounting Start and Stop with her address;
//! 7. EAP-TLS: connection `tls` (192.0.2.5): tina (rw1) proves herself
//!    with her certificate (rfc822Name, clientAuth) inside EAP, gets an
//!    address of pool rw and pings through ESP.
//! 8. EAP-MD5: connection `md5` (192.0.2.6): mia (rw3, `auth = eap-md5`)
//!    gets an address of pool rw and pings through ESP.
//!
//! 9. (charon gateway only) iked as the road warrior, in rw4, in a mount
//!    namespace of its own whose /etc/resolv.conf is a file of the lab's
//!    ([`iked_road_warrior`]): fred with EAP-MSCHAPv2 and `vips = 0.0.0.0`
//!    gets an address of the pool, on rw4's interface, the pool's DNS
//!    servers in its resolv.conf, pings from it through ESP; after `ikectl
//!    down` the address and the DNS lines are gone. Then tina with EAP-TLS
//!    (her certificate) from the same iked, the same checks; iked killed
//!    (SIGKILL) with her tunnel up leaves its address and DNS lines, which
//!    the next start removes. Then fred with the generic `auth = eap`
//!    against the gateway's EAP-MD5 (`md5`): the same checks.
//!
//! Gateways: charon (the baseline: charon-to-charon in the same run),
//! then iked with the same swanctl.conf, credentials and RADIUS server
//! (strongswan.conf's eap-radius section, given with --strongswan-conf).
//! charon with `accounting = yes` sends accounting for every IKE SA, not
//! only the RADIUS users' (even a Start and Stop without an address for
//! y@tiny, refused by the exhausted pool).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::charon::{Charon, tail};
use common::freeradius::{FreeRadius, Spec};
use common::{Iked, esp_packets, policies, states};
use iked_lab::{guest_out, in_uml, is_guest, lab_sh, repo_root, sh};

/// The gateway's address as every road warrior knows it.
const GW: &str = "192.0.2.1";
/// The gateway's addresses of connections `tiny` and `radius`: a
/// connection is chosen by the address the client connects to (iked has
/// no `*` wildcards in e-mail identities, charon's way to pick them).
const GW_TINY: &str = "192.0.2.3";
const GW_RADIUS: &str = "192.0.2.4";
const GW_TLS: &str = "192.0.2.5";
/// The EAP-TLS user (her certificate's rfc822Name).
const TLS_USER: &str = "tina@tls.ra.example";
/// The EAP-MD5 connection's gateway address, and its user (rw3).
const GW_MD5: &str = "192.0.2.6";
const MD5_USER: &str = "mia@ra.example";
/// The protected LAN's host, the target of the pings.
const SRV: &str = "10.1.0.2";
const IKE: &str = "aes128gcm16-prfsha256-x25519";
const ESP: &str = "aes128gcm16";
/// The DNS servers of pool `rw`.
const DNS: [&str; 2] = ["10.1.0.53", "10.1.0.54"];
/// iked's road warrior's user (EAP-MSCHAPv2), in rw4.
const IKED_RW_USER: &str = "fred@ra.example";
/// What rw4's resolv.conf holds before iked: it must stay.
const RW4_RESOLV: &str = "# rw4's own\nnameserver 203.0.113.53\n";

/// One road warrior: its namespace (also its charon instance's name), its
/// user, and whether it has the extra connections (`wrong`, `tiny`).
#[derive(Clone, Copy, Debug)]
struct Rw {
    ns: &'static str,
    user: &'static str,
    /// `tiny`'s user (x or y), if it has that connection.
    tiny: Option<&'static str>,
    /// It has connections `wrong` (user dave with a wrong password) and
    /// `tls` (tina, EAP-TLS).
    wrong: bool,
    /// It has connection `radius` (user erin, FreeRADIUS's).
    radius: bool,
}

const RWS: [Rw; 3] = [
    Rw {
        ns: "rw1",
        user: "alice",
        tiny: Some("x"),
        wrong: true,
        radius: false,
    },
    Rw {
        ns: "rw2",
        user: "bob",
        tiny: None,
        wrong: false,
        radius: true,
    },
    Rw {
        ns: "rw3",
        user: "carol",
        tiny: Some("y"),
        wrong: false,
        radius: false,
    },
];

/// FreeRADIUS's user (on srv, 10.1.0.2:1812/1813).
const RADIUS_USER: &str = "erin@radius.ra.example";
/// The RADIUS secret between the gateway and FreeRADIUS.
const RADIUS_SECRET: &str = "radius lab secret";

/// The users' passwords as the gateway has them (dave's client has
/// another one).
fn password(user: &str) -> String {
    format!("{user}'s password, not a secret")
}

// ---------------------------------------------------------------------------
// The lab.

/// The namespaces and links of the picture, the NAT, and the gateway's
/// rule that drops clear traffic from the pools.
fn topology() {
    lab_sh(
        "modprobe -d \"$LAB_MODDIR\" -a iptable_nat iptable_filter xt_MASQUERADE xt_nat xt_tcpudp xt_policy nf_conntrack_netlink
         for ns in gw srv rw1 nat rw2 rw3 rw4; do ip netns add $ns; ip -n $ns link set lo up; done
         lab_veth gw lan 10.1.0.1/24 srv eth0 10.1.0.2/24
         lab_veth gw wan1 192.0.2.1/24 rw1 eth0 192.0.2.11/24
         ip -n gw addr add 192.0.2.3/24 dev wan1
         ip -n gw addr add 192.0.2.4/24 dev wan1
         ip -n gw addr add 192.0.2.5/24 dev wan1
         ip -n gw addr add 192.0.2.6/24 dev wan1
         lab_veth gw wan2 198.51.100.1/24 nat wan 198.51.100.20/24
         lab_veth nat priv2 172.16.0.1/24 rw2 eth0 172.16.0.2/24
         lab_veth nat priv3 172.16.1.1/24 rw3 eth0 172.16.1.2/24
         lab_veth gw wan4 203.0.113.1/24 rw4 eth0 203.0.113.4/24
         ip -n srv route add default via 10.1.0.1
         ip -n rw1 route add default via 192.0.2.1
         ip -n nat route add default via 198.51.100.1
         ip -n rw2 route add default via 172.16.0.1
         ip -n rw3 route add default via 172.16.1.1
         ip -n rw4 route add default via 203.0.113.1
         for ns in gw nat; do lab_ns $ns sysctl -qw net.ipv4.ip_forward=1; done
         # The virtual IPs' replies leave the gateway by a policy; the
         # route only has to exist (the tunnel decides where ESP goes).
         ip -n gw route add 10.3.0.0/16 via 192.0.2.11 dev wan1
         ip -n gw route add 10.4.0.0/16 via 192.0.2.11 dev wan1
         for p in 10.3.0.0/16 10.4.0.0/16; do
             lab_ns gw iptables-legacy -A FORWARD -s $p -m policy --dir in --pol none -j DROP
         done
         lab_ns nat iptables-legacy -A FORWARD -p esp -j DROP
         lab_ns nat iptables-legacy -t nat -A POSTROUTING -o wan -j MASQUERADE
         lab_wait_for 10 'rw1 reaches the gateway' lab_ns rw1 ping -c1 -W1 192.0.2.1
         lab_wait_for 10 'rw2 reaches the gateway through the NAT' lab_ns rw2 ping -c1 -W1 192.0.2.1
         lab_wait_for 10 'rw3 reaches the gateway through the NAT' lab_ns rw3 ping -c1 -W1 192.0.2.1
         lab_wait_for 10 'rw4 reaches the gateway' lab_ns rw4 ping -c1 -W1 192.0.2.1
         lab_warm_crypto",
    );
}

/// The PKI in `dir` (made afresh): an ECDSA root, the gateway's certificate (CN and
/// dNSName gw.ra.example, the EKUs Windows wants: serverAuth and
/// ipsecIKE-intermediate), the EAP-TLS user's (rfc822Name
/// tina@tls.ra.example, clientAuth), PKCS#8 keys. Valid for two days.
fn pki(dir: &Path) {
    lab_sh(&format!(
        "rm -rf '{d}' && mkdir -p '{d}' && cd '{d}'
         openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
         openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out gw.key
         openssl req -x509 -new -key ca.key -subj '/C=CH/O=iked lab/CN=ra root' -days 2 -out ca.pem \
             -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign
         openssl req -new -key gw.key -subj '/C=CH/O=iked lab/CN=gw.ra.example' -out gw.csr
         printf 'subjectAltName=DNS:gw.ra.example\\nextendedKeyUsage=serverAuth,1.3.6.1.5.5.8.2.2\\n' > gw.ext
         openssl x509 -req -in gw.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile gw.ext -out gw.pem 2>/dev/null
         openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out tina.key
         openssl req -new -key tina.key -subj '/C=CH/O=iked lab/CN=tina@tls.ra.example' -out tina.csr
         printf 'subjectAltName=email:tina@tls.ra.example\nextendedKeyUsage=clientAuth\n' > tina.ext
         openssl x509 -req -in tina.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile tina.ext -out tina.pem 2>/dev/null",
        d = dir.display()
    ));
}

/// Copies the gateway's (`gw`) or a client's credentials (tina's
/// certificate: any road warrior may have the EAP-TLS connection) into
/// the swanctl folders of `conf_dir`.
fn credentials(pki: &Path, conf_dir: &Path, gw: bool) {
    for f in ["x509", "x509ca", "private"] {
        std::fs::create_dir_all(conf_dir.join(f)).unwrap();
    }
    std::fs::copy(pki.join("ca.pem"), conf_dir.join("x509ca/ca.pem")).unwrap();
    let who = if gw { "gw" } else { "tina" };
    std::fs::copy(
        pki.join(format!("{who}.pem")),
        conf_dir.join(format!("x509/{who}.pem")),
    )
    .unwrap();
    std::fs::copy(
        pki.join(format!("{who}.key")),
        conf_dir.join(format!("private/{who}.key")),
    )
    .unwrap();
}

/// The gateway's swanctl.conf (charon's and iked's).
fn gateway_conf() -> String {
    let conn = |name: &str, addr: &str, pool: &str, auth: &str| {
        format!(
            "    {name} {{
        local_addrs = {addr}
        pools = {pool}
        proposals = {IKE}
        rekey_time = 0
        local {{
            auth = pubkey
            certs = gw.pem
            id = gw.ra.example
        }}
        remote {{
            auth = {auth}
            eap_id = %any
        }}
        children {{
            net {{
                local_ts = 10.1.0.0/24
                esp_proposals = {ESP}
                rekey_time = 0
            }}
        }}
    }}
"
        )
    };
    let mut s = String::from("connections {\n");
    s.push_str(&conn("rw", GW, "rw", "eap-mschapv2"));
    s.push_str(&conn("tiny", GW_TINY, "tiny", "eap-mschapv2"));
    // Its users are FreeRADIUS's: their EAP goes there (the gateway has
    // no password of theirs).
    s.push_str(&conn("radius", GW_RADIUS, "rw", "eap-radius"));
    s.push_str(&conn("tls", GW_TLS, "rw", "eap-tls"));
    s.push_str(&conn("md5", GW_MD5, "rw", "eap-md5"));
    s.push_str(&format!(
        "}}
pools {{
    rw {{
        addrs = 10.3.0.0/24
        dns = {}
    }}
    tiny {{
        addrs = 10.4.0.1-10.4.0.1
    }}
}}
secrets {{
",
        DNS.join(", ")
    ));
    let users = RWS
        .iter()
        .map(|r| format!("{}@ra.example", r.user))
        .chain([
            "dave@ra.example".to_owned(),
            IKED_RW_USER.to_owned(),
            MD5_USER.to_owned(),
        ])
        .chain([
            "x@tiny.ra.example".to_owned(),
            "y@tiny.ra.example".to_owned(),
        ]);
    for (i, id) in users.enumerate() {
        let user = id.split('@').next().unwrap_or_default();
        writeln!(
            s,
            "    eap-{i} {{\n        id = {id}\n        secret = \"{}\"\n    }}",
            password(user)
        )
        .unwrap();
    }
    s.push_str("}\n");
    s
}

/// A road warrior's swanctl.conf: connection `home` (its user), and
/// `wrong` (dave, with a password the gateway does not have) and `tiny`
/// where it has them; each with one child of the same name.
fn client_conf(rw: &Rw) -> String {
    let conn = |name: &str, id: &str| {
        let gw = match name {
            "tiny" => GW_TINY,
            "radius" => GW_RADIUS,
            "tls" => GW_TLS,
            "md5" => GW_MD5,
            _ => GW,
        };
        let auth = match name {
            "tls" => "eap-tls\n            certs = tina.pem",
            "md5" => "eap-md5",
            _ => "eap-mschapv2",
        };
        format!(
            "    {name} {{
        remote_addrs = {gw}
        vips = 0.0.0.0
        proposals = {IKE}
        rekey_time = 0
        local {{
            auth = {auth}
            id = {id}
        }}
        remote {{
            auth = pubkey
            id = gw.ra.example
        }}
        children {{
            {name} {{
                remote_ts = 10.1.0.0/24
                esp_proposals = {ESP}
                rekey_time = 0
            }}
        }}
    }}
"
        )
    };
    let mut s = String::from("connections {\n");
    let mut secrets = vec![(format!("{}@ra.example", rw.user), password(rw.user))];
    s.push_str(&conn("home", &secrets[0].0));
    if rw.wrong {
        s.push_str(&conn("wrong", "dave@ra.example"));
        secrets.push(("dave@ra.example".into(), "not dave's password".into()));
    }
    if let Some(t) = rw.tiny {
        let id = format!("{t}@tiny.ra.example");
        s.push_str(&conn("tiny", &id));
        secrets.push((id, password(t)));
    }
    if rw.radius {
        s.push_str(&conn("radius", RADIUS_USER));
        secrets.push((RADIUS_USER.into(), password("erin")));
    }
    if rw.wrong {
        s.push_str(&conn("tls", TLS_USER));
    }
    if rw.ns == "rw3" {
        s.push_str(&conn("md5", MD5_USER));
        secrets.push((MD5_USER.into(), password("mia")));
    }
    s.push_str("}\nsecrets {\n");
    for (i, (id, secret)) in secrets.iter().enumerate() {
        writeln!(
            s,
            "    eap-{i} {{\n        id = {id}\n        secret = \"{secret}\"\n    }}"
        )
        .unwrap();
    }
    s.push_str("}\n");
    s
}

/// The road warriors' plugins (lib.sh's list and these).
const RW_PLUGINS: &str = "eap-identity eap-mschapv2 eap-md5 eap-tls resolve";
/// The gateway's.
const GW_PLUGINS: &str = "eap-identity eap-mschapv2 eap-md5 eap-radius eap-tls";

/// Where charon's resolve plugin of road warrior `ns` writes the DNS
/// servers it got.
fn resolv_file(ns: &str) -> std::path::PathBuf {
    guest_out().join(format!("charon-{ns}/resolv.conf"))
}

/// strongswan.conf's `plugins` section with the lab's RADIUS server
/// (FreeRADIUS in `srv`), for both gateways.
fn radius_plugin_conf() -> String {
    format!(
        "plugins {{\n    eap-radius {{\n        accounting = yes\n        servers {{\n            fr {{\n                address = {SRV}\n                secret = {RADIUS_SECRET}\n                auth_port = 1812\n                acct_port = 1813\n            }}\n        }}\n    }}\n}}"
    )
}

/// Starts charon `name` in namespace `name` with `conf`, the credentials
/// of `pki` (`gw`: the gateway's), and its resolve plugin's output in
/// [`resolv_file`] for a road warrior.
///
/// charon 5.9.8's resolve plugin calls /sbin/resolvconf whenever that
/// exists, whatever its `file` says: charon runs through a wrapper that,
/// in charon's private mount namespace (lib.sh's), puts a script that
/// appends to the same file over it. So the machine's resolver is never
/// touched, with or without resolvconf installed.
fn charon_start(name: &str, conf: &str, pki: &Path, gw: bool) -> Charon {
    let out = guest_out();
    let dir = out.join(format!("charon-{name}"));
    credentials(pki, &dir, gw);
    let file = out.join(format!("{name}-swanctl.conf"));
    std::fs::write(&file, conf).unwrap();
    let (plugins, extra, bin) = if gw {
        (
            GW_PLUGINS,
            radius_plugin_conf(),
            "/usr/lib/ipsec/charon".to_owned(),
        )
    } else {
        let resolv = resolv_file(name);
        let capture = dir.join("resolvconf");
        let wrapper = dir.join("charon-wrapper");
        std::fs::write(
            &capture,
            format!("#!/bin/sh\ncat >> '{}'\n", resolv.display()),
        )
        .unwrap();
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nif [ -e /sbin/resolvconf ]; then mount --bind '{}' /sbin/resolvconf || exit 1; fi\nexec /usr/lib/ipsec/charon\n",
                capture.display()
            ),
        )
        .unwrap();
        sh(&format!(
            "chmod 755 '{}' '{}'",
            capture.display(),
            wrapper.display()
        ));
        (
            RW_PLUGINS,
            format!(
                "plugins {{\n    resolve {{\n        file = {}\n    }}\n}}",
                resolv.display()
            ),
            wrapper.display().to_string(),
        )
    };
    lab_sh(&format!(
        "CHARON_PLUGINS=\"$CHARON_PLUGINS {plugins}\" CHARON_BIN='{bin}' \
         lab_charon_start {name} {name} '{}' 'default=1 ike=2 cfg=2 knl=1 enc=0 lib=1' '{extra}'",
        file.display()
    ));
    Charon {
        name: name.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// FreeRADIUS.

/// FreeRADIUS in namespace srv on 10.1.0.2:1812 (auth) and 1813
/// (accounting) for the gateway 10.1.0.1: EAP-MSCHAPv2 for
/// [`RADIUS_USER`], accounting into a detail file.
fn freeradius() -> FreeRadius {
    let password = password("erin");
    FreeRadius::start(Spec {
        dir: guest_out().join("freeradius"),
        netns: Some("srv"),
        listen: SRV,
        port: 1812,
        client: "10.1.0.1",
        secret: RADIUS_SECRET,
        users: &[(RADIUS_USER, password.as_str())],
    })
}

// ---------------------------------------------------------------------------
// The gateway under test.

/// The gateway: charon (the baseline) or iked.
enum Gateway {
    Charon(Charon),
    Iked(Iked),
}

impl Gateway {
    fn label(&self) -> &'static str {
        match self {
            Gateway::Charon(_) => "charon",
            Gateway::Iked(_) => "iked",
        }
    }

    /// The gateway's log, for failure messages.
    fn log_tail(&self) -> String {
        match self {
            Gateway::Charon(c) => tail(&c.log_text(), 60),
            Gateway::Iked(i) => tail(&i.log_text(), 60),
        }
    }

    fn log_text(&self) -> String {
        match self {
            Gateway::Charon(c) => c.log_text(),
            Gateway::Iked(i) => i.log_text(),
        }
    }

    /// The address leased to `identity` and online, if any.
    fn lease(&self, identity: &str) -> Option<String> {
        match self {
            Gateway::Charon(c) => {
                // "  10.3.0.1                       online   'alice@ra.example'"
                let out = c.swanctl_ok(&["--list-pools", "--leases"]);
                out.lines()
                    .filter(|l| l.contains(&format!("'{identity}'")) && l.contains("online"))
                    .find_map(|l| l.split_whitespace().next().map(str::to_owned))
            }
            // The address is the remote_ts of the identity's installed
            // child (`remote_ts = dynamic`).
            Gateway::Iked(i) => i
                .status()
                .iter()
                .filter(|sa| sa.state == "ESTABLISHED" && sa.remote_id.as_deref() == Some(identity))
                .flat_map(|sa| sa.children.iter())
                .filter(|c| c.state == "INSTALLED")
                .flat_map(|c| c.remote_ts.iter())
                .find_map(|ts| ts.strip_suffix("/32").map(str::to_owned)),
        }
    }

    /// Whether the gateway has an ESTABLISHED IKE SA of `identity` (a
    /// refused one may wait half-open for a while: charon keeps it
    /// CONNECTING until its half-open timeout).
    fn established_of(&self, identity: &str) -> bool {
        match self {
            Gateway::Charon(c) => {
                let out = String::from_utf8_lossy(&c.swanctl(&["--list-sas"]).stdout).into_owned();
                // One block per IKE SA: "rw: #4, ESTABLISHED, IKEv2, ..."
                // and its indented lines.
                let mut blocks: Vec<String> = Vec::new();
                for l in out.lines() {
                    if !l.starts_with(' ') || blocks.is_empty() {
                        blocks.push(String::new());
                    }
                    if let Some(b) = blocks.last_mut() {
                        b.push_str(l);
                        b.push('\n');
                    }
                }
                blocks
                    .iter()
                    .any(|b| b.contains("ESTABLISHED") && b.contains(&format!("'{identity}'")))
            }
            Gateway::Iked(i) => i
                .status()
                .iter()
                .any(|sa| sa.state == "ESTABLISHED" && sa.remote_id.as_deref() == Some(identity)),
        }
    }
}

// ---------------------------------------------------------------------------
// The road warriors.

/// The virtual IP of `conn` in `swanctl --list-sas` of `rw`, as
/// "  local  'alice@ra.example' @ 192.0.2.11[4500] [10.3.0.1]".
fn client_vip(rw: &Charon, conn: &str) -> Option<String> {
    let out = rw.swanctl_ok(&["--list-sas", "--ike", conn]);
    out.lines()
        .find(|l| l.trim_start().starts_with("local "))
        .and_then(|l| {
            l.split_whitespace()
                .rev()
                .find(|w| w.starts_with('[') && w.ends_with(']') && w.contains('.'))
                .map(|w| w.trim_matches(['[', ']']).to_owned())
        })
}

/// `swanctl --initiate` of child `child` on `rw` in the background.
fn initiate_async(rw: &Charon, child: &str) -> std::process::Child {
    let state = std::env::var("LAB_STATE").unwrap_or_else(|_| "/run/lab".to_owned());
    std::process::Command::new("swanctl")
        .env("STRONGSWAN_CONF", rw.dir().join("strongswan.conf"))
        .args(["--initiate", "--uri"])
        .arg(format!("unix://{state}/{}/run/vici", rw.name))
        .args(["--child", child, "--timeout", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Number of SAs and IPsec policies in namespace `ns`'s kernel.
fn kernel_count(ns: &str) -> (usize, usize) {
    (states(ns).matches("proto esp").count(), policies(ns))
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(msg()) }
}

fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The scenario of the module's header against `gw`; one line per step
/// with what it measured.
fn scenario(gw: &Gateway, rws: &[Charon], radius: &FreeRadius) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    let label = gw.label();
    let ident = |rw: &Rw| format!("{}@ra.example", rw.user);

    // 1. All three at once.
    let t = Instant::now();
    let mut procs: Vec<_> = rws.iter().map(|c| initiate_async(c, "home")).collect();
    for (c, p) in rws.iter().zip(procs.iter_mut()) {
        let ok = p.wait().map(|s| s.success()).unwrap_or(false);
        check(ok && c.installed("home"), || {
            format!(
                "{label}: {} did not connect\n--- {} ---\n{}\n--- gateway ---\n{}",
                c.name,
                c.name,
                tail(&c.log_text(), 40),
                gw.log_tail()
            )
        })?;
    }
    let connect = t.elapsed();
    let mut vips = BTreeSet::new();
    for (rw, c) in RWS.iter().zip(rws) {
        let vip = client_vip(c, "home").ok_or_else(|| format!("{label}: no vip on {}", rw.ns))?;
        let lease = gw.lease(&ident(rw));
        check(lease.as_deref() == Some(vip.as_str()), || {
            format!(
                "{label}: {} has {vip}, the gateway leased {lease:?} to {}",
                rw.ns,
                ident(rw)
            )
        })?;
        check(vip.starts_with("10.3.0."), || {
            format!("{label}: {vip} is not from pool rw")
        })?;
        // The address is on the client's interface (charon installs it).
        let addrs = sh(&format!("ip -n {} -4 -o addr show", rw.ns));
        check(addrs.contains(&format!(" {vip}/")), || {
            format!("{label}: {vip} not on {}:\n{addrs}", rw.ns)
        })?;
        vips.insert(vip);
    }
    check(vips.len() == RWS.len(), || {
        format!("{label}: addresses not distinct: {vips:?}")
    })?;
    // The two behind the NAT: ESP in UDP from the NAT's one address, on
    // two ports (the NAT drops raw ESP).
    let st = states("gw");
    let natted = st.matches("encap type espinudp").count();
    check(
        natted >= 4 && st.matches("198.51.100.20").count() >= 4,
        || format!("{label}: not two NATed road warriors in the gateway's SAs:\n{st}"),
    )?;
    report.push(format!(
        "{label}: 3 road warriors connected at once in {:.2} s, addresses {vips:?}",
        connect.as_secs_f64()
    ));
    for rw in &RWS {
        let got = std::fs::read_to_string(resolv_file(rw.ns)).unwrap_or_default();
        for d in DNS {
            check(got.contains(&format!("nameserver {d}")), || {
                format!("{label}: DNS {d} did not reach {}:\n{got}", rw.ns)
            })?;
        }
    }
    report.push(format!("{label}: DNS {DNS:?} reached all three"));

    // 2. Traffic from each virtual IP through ESP.
    let before = esp_packets("gw");
    for (rw, c) in RWS.iter().zip(rws) {
        let vip = client_vip(c, "home").unwrap_or_default();
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", rw.ns, "ping", "-c", "5", "-i", "0.05"])
            .args(["-W", "2", "-I", &vip, SRV])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        check(text.contains("5 packets transmitted, 5 received"), || {
            format!(
                "{label}: ping from {vip} ({}) to {SRV}:\n{text}\n{}",
                rw.ns,
                sh("ip -n gw -s xfrm state")
            )
        })?;
    }
    let after = esp_packets("gw");
    check(after >= before + 30, || {
        format!("{label}: the gateway's ESP counted {before} -> {after} for 3 x 5 pings")
    })?;
    report.push(format!(
        "{label}: 5 pings from each virtual IP through ESP (gateway's ESP packets +{})",
        after - before
    ));

    // 3. A wrong password.
    let (rw1, c1) = (&RWS[0], &rws[0]);
    let gw_before = kernel_count("gw");
    let rw_before = kernel_count(rw1.ns);
    let out = c1.swanctl(&["--initiate", "--child", "wrong", "--timeout", "20"]);
    check(!out.status.success(), || {
        format!("{label}: dave connected with a wrong password")
    })?;
    check(
        wait_for(Duration::from_secs(5), || {
            !gw.established_of("dave@ra.example")
        }),
        || {
            format!(
                "{label}: the gateway kept an IKE SA of dave\n{}",
                gw.log_tail()
            )
        },
    )?;
    let (g, r) = (kernel_count("gw"), kernel_count(rw1.ns));
    check(
        g == gw_before && r == rw_before && !c1.installed("wrong"),
        || {
            format!(
                "{label}: a refused user changed the kernels: gw {gw_before:?} -> {g:?}, {} {rw_before:?} -> {r:?}",
                rw1.ns
            )
        },
    )?;
    let why = match gw {
        Gateway::Charon(_) => "EAP-MS-CHAPv2 verification failed",
        Gateway::Iked(_) => "failed (wrong password)",
    };
    check(gw.log_text().contains(why), || {
        format!(
            "{label}: no `{why}` in the gateway's log\n{}",
            gw.log_tail()
        )
    })?;
    report.push(format!(
        "{label}: dave's wrong password refused ({why}), nothing installed"
    ));

    // 4. The same address after a reconnect (rw2, behind the NAT).
    let (rw2, c2) = (&RWS[1], &rws[1]);
    let first = client_vip(c2, "home");
    c2.swanctl_ok(&["--terminate", "--ike", "home", "--timeout", "10"]);
    check(
        wait_for(Duration::from_secs(10), || gw.lease(&ident(rw2)).is_none()),
        || {
            format!(
                "{label}: {}'s lease still online after its IKE SA went",
                ident(rw2)
            )
        },
    )?;
    let t = Instant::now();
    c2.initiate("home");
    let again = client_vip(c2, "home");
    check(first.is_some() && first == again, || {
        format!(
            "{label}: {} had {first:?}, after a reconnect {again:?}",
            rw2.ns
        )
    })?;
    report.push(format!(
        "{label}: {} reconnected in {:.2} s with the same address {}",
        rw2.ns,
        t.elapsed().as_secs_f64(),
        again.unwrap_or_default()
    ));

    // 5. Pool tiny exhausted.
    rws[0].initiate("tiny");
    let x = client_vip(&rws[0], "tiny");
    check(x.as_deref() == Some("10.4.0.1"), || {
        format!("{label}: x@tiny got {x:?}, not 10.4.0.1")
    })?;
    let gw_before = kernel_count("gw");
    let rw3_before = kernel_count("rw3");
    let out = rws[2].swanctl(&["--initiate", "--child", "tiny", "--timeout", "20"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    check(!out.status.success() && !rws[2].installed("tiny"), || {
        format!("{label}: y@tiny got a child from an exhausted pool:\n{said}")
    })?;
    check(
        rws[2].log_text().contains("INTERNAL_ADDRESS_FAILURE"),
        || {
            format!(
                "{label}: rw3 did not get INTERNAL_ADDRESS_FAILURE\n{}",
                tail(&rws[2].log_text(), 30)
            )
        },
    )?;
    // Settle: the refused IKE SA goes on both sides.
    wait_for(Duration::from_secs(5), || {
        !gw.established_of("y@tiny.ra.example")
    });
    let (g, r) = (kernel_count("gw"), kernel_count("rw3"));
    check(g == gw_before && r == rw3_before, || {
        format!(
            "{label}: the exhausted pool's refusal changed the kernels: gw {gw_before:?} -> {g:?}, rw3 {rw3_before:?} -> {r:?}"
        )
    })?;
    report.push(format!(
        "{label}: pool tiny exhausted: y@tiny answered INTERNAL_ADDRESS_FAILURE, nothing installed"
    ));

    // 6. EAP-RADIUS: erin (rw2) is FreeRADIUS's user; her address from
    // pool rw, her traffic through ESP, and FreeRADIUS's accounting
    // records: Start with her address, Stop once she left.
    let records = radius.detail().len();
    let (rw2, c2) = (&RWS[1], &rws[1]);
    c2.initiate("radius");
    let vip = client_vip(c2, "radius").ok_or_else(|| format!("{label}: no vip for erin"))?;
    let lease = gw.lease(RADIUS_USER);
    check(lease.as_deref() == Some(vip.as_str()), || {
        format!("{label}: erin has {vip}, the gateway leased {lease:?}")
    })?;
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", rw2.ns, "ping", "-c", "3", "-i", "0.05"])
        .args(["-W", "2", "-I", &vip, SRV])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    check(text.contains("3 packets transmitted, 3 received"), || {
        format!("{label}: ping from erin's {vip}:\n{text}")
    })?;
    c2.swanctl_ok(&["--terminate", "--ike", "radius", "--timeout", "10"]);
    let framed = format!("Framed-IP-Address = {vip}");
    let done = wait_for(Duration::from_secs(10), || {
        let d = radius.detail();
        let new = d.get(records..).unwrap_or_default();
        new.contains("Acct-Status-Type = Start")
            && new.contains("Acct-Status-Type = Stop")
            && new.matches(&framed).count() >= 2
            && new.contains(RADIUS_USER)
    });
    check(done, || {
        format!(
            "{label}: FreeRADIUS's accounting has no Start and Stop of {RADIUS_USER} with {framed}:\n{}",
            radius.detail()
        )
    })?;
    report.push(format!(
        "{label}: EAP-RADIUS: {RADIUS_USER} through FreeRADIUS got {vip}, pinged through ESP, accounting Start and Stop with it"
    ));

    // 7. EAP-TLS: tina (rw1) proves herself with her certificate inside
    // EAP; an address of pool rw, traffic through ESP.
    let c1 = &rws[0];
    c1.initiate("tls");
    let vip = client_vip(c1, "tls").ok_or_else(|| format!("{label}: no vip for tina"))?;
    let lease = gw.lease(TLS_USER);
    check(lease.as_deref() == Some(vip.as_str()), || {
        format!("{label}: tina has {vip}, the gateway leased {lease:?}")
    })?;
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", "rw1", "ping", "-c", "3", "-i", "0.05"])
        .args(["-W", "2", "-I", &vip, SRV])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    check(text.contains("3 packets transmitted, 3 received"), || {
        format!("{label}: ping from tina's {vip}:\n{text}")
    })?;
    report.push(format!(
        "{label}: EAP-TLS: {TLS_USER} with her certificate got {vip}, pinged through ESP"
    ));

    // 8. EAP-MD5: mia (rw3); an address of pool rw, traffic through ESP.
    let c3 = &rws[2];
    c3.initiate("md5");
    let vip = client_vip(c3, "md5").ok_or_else(|| {
        format!(
            "{label}: no vip for mia (EAP-MD5)\n--- gateway ---\n{}",
            gw.log_tail()
        )
    })?;
    let lease = gw.lease(MD5_USER);
    check(lease.as_deref() == Some(vip.as_str()), || {
        format!("{label}: mia has {vip}, the gateway leased {lease:?}")
    })?;
    let before = esp_packets("rw3");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", "rw3", "ping", "-c", "3", "-i", "0.05"])
        .args(["-W", "2", "-I", &vip, SRV])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    check(text.contains("3 packets transmitted, 3 received"), || {
        format!("{label}: ping from mia's {vip}:\n{text}")
    })?;
    let after = esp_packets("rw3");
    check(after >= before + 6, || {
        format!("{label}: rw3's ESP counted {before} -> {after} for 3 pings")
    })?;
    report.push(format!(
        "{label}: EAP-MD5: {MD5_USER} got {vip}, pinged through ESP"
    ));

    // Down: everything the road warriors had goes.
    for c in rws {
        for conn in ["home", "tiny", "radius", "tls", "md5"] {
            let _ = c.swanctl(&["--terminate", "--ike", conn, "--timeout", "10"]);
        }
    }
    check(
        wait_for(Duration::from_secs(10), || {
            ["gw", "rw1", "rw2", "rw3"]
                .iter()
                .all(|ns| kernel_count(ns) == (0, 0))
        }),
        || {
            format!(
                "{label}: SAs or policies left after every road warrior left:\n{}",
                sh(
                    "for n in gw rw1 rw2 rw3; do echo \"-- $n\"; ip -n $n xfrm state; ip -n $n xfrm policy; done"
                )
            )
        },
    )?;
    Ok(report)
}

// ---------------------------------------------------------------------------
// iked as the road warrior.

/// iked's swanctl.conf in rw4: `home` (fred, EAP-MSCHAPv2) and `tls`
/// (tina, EAP-TLS), both with `vips = 0.0.0.0`.
fn iked_client_conf() -> String {
    let conn = |name: &str, gw: &str, auth: &str, id: &str| {
        format!(
            "    {name} {{
        remote_addrs = {gw}
        vips = 0.0.0.0
        proposals = {IKE}
        rekey_time = 0
        local {{
            auth = {auth}
            id = {id}
        }}
        remote {{
            auth = pubkey
            id = gw.ra.example
        }}
        children {{
            {name} {{
                remote_ts = 10.1.0.0/24
                esp_proposals = {ESP}
                rekey_time = 0
            }}
        }}
    }}
"
        )
    };
    format!(
        "connections {{\n{}{}{}}}\nsecrets {{\n    eap-fred {{\n        id = {IKED_RW_USER}\n        secret = \"{}\"\n    }}\n}}\n",
        conn("home", GW, "eap-mschapv2", IKED_RW_USER),
        conn(
            "tls",
            GW_TLS,
            "eap-tls\n            certs = tina.pem",
            TLS_USER
        ),
        // The generic `eap` against the gateway's EAP-MD5.
        conn("md5", GW_MD5, "eap", IKED_RW_USER),
        password("fred")
    )
}

/// rw4's resolv.conf as its iked sees it.
fn rw4_resolv() -> std::path::PathBuf {
    guest_out().join("iked-rw4/resolv.conf")
}

/// Starts (or starts again) iked in rw4, in a mount namespace of its own
/// where [`rw4_resolv`] is /etc/resolv.conf: iked writes the resolver it
/// would write on a real client, and the machine's stays untouched.
fn iked_rw4_start(iked: &mut Iked) {
    let wrap = format!(
        "mount --bind '{}' /etc/resolv.conf || exit 1; exec \"$0\" \"$@\"",
        rw4_resolv().display()
    );
    iked.start_wrapped(
        &["unshare", "-m", "sh", "-c", &wrap],
        &["--dns", "file", "--strongswan-conf", "none"],
    );
}

/// The IPv4 addresses on rw4's interfaces.
fn rw4_addrs() -> String {
    sh("ip -n rw4 -4 -o addr show")
}

/// The virtual IP iked got for `conn` (`ikectl status`).
fn iked_vip(iked: &Iked, conn: &str) -> Option<String> {
    iked.status()
        .into_iter()
        .find(|sa| sa.connection.as_deref() == Some(conn) && sa.state == "ESTABLISHED")
        .and_then(|sa| sa.local_vips.first().cloned())
}

/// An iked road warrior `conn` is up: its address of the pool (the
/// gateway's lease for `identity`) is on rw4's interface, the pool's DNS
/// servers are in its resolv.conf with the file's own line, and pings
/// from it go through ESP. The address.
fn iked_rw_up(gw: &Gateway, iked: &Iked, conn: &str, identity: &str) -> Result<String, String> {
    let fail = |what: String| {
        format!(
            "iked road warrior {conn}: {what}\n--- rw4 ---\n{}\n--- gateway ---\n{}",
            tail(&iked.log_text(), 40),
            gw.log_tail()
        )
    };
    let out = iked.ikectl(&["up", conn, "--timeout", "30"]);
    check(out.status.success(), || {
        fail(format!(
            "up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    })?;
    let vip = iked_vip(iked, conn).ok_or_else(|| fail("no virtual IP in ikectl status".into()))?;
    let lease = gw.lease(identity);
    check(
        lease.as_deref() == Some(vip.as_str()) && vip.starts_with("10.3.0."),
        || {
            fail(format!(
                "has {vip}, the gateway leased {lease:?} to {identity}"
            ))
        },
    )?;
    let on_eth0 = format!("eth0    inet {vip}/32");
    check(
        wait_for(Duration::from_secs(5), || rw4_addrs().contains(&on_eth0)),
        || fail(format!("{vip} not on rw4's eth0:\n{}", rw4_addrs())),
    )?;
    // iked writes the file off its event loop: a moment after `up`.
    let want = format!(
        "nameserver {}   # by iked\nnameserver {}   # by iked\n{RW4_RESOLV}",
        DNS[0], DNS[1]
    );
    let resolv = || std::fs::read_to_string(rw4_resolv()).unwrap_or_default();
    check(
        wait_for(Duration::from_secs(5), || resolv() == want),
        || fail(format!("resolv.conf is\n{}\nnot\n{want}", resolv())),
    )?;
    let before = esp_packets("rw4");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", "rw4", "ping", "-c", "5", "-i", "0.05"])
        .args(["-W", "2", "-I", &vip, SRV])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    check(text.contains("5 packets transmitted, 5 received"), || {
        fail(format!("ping from {vip}:\n{text}"))
    })?;
    let after = esp_packets("rw4");
    check(after >= before + 10, || {
        fail(format!("rw4's ESP counted {before} -> {after} for 5 pings"))
    })?;
    Ok(vip)
}

/// Step 8 against the charon gateway `gw`.
fn iked_road_warrior(gw: &Gateway, pki: &Path) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    credentials(pki, &guest_out().join("iked-rw4"), false);
    std::fs::write(rw4_resolv(), RW4_RESOLV).unwrap();
    let mut iked = Iked::new(
        "rw4",
        "iked-rw4/swanctl.conf",
        "iked-rw4.log",
        &iked_client_conf(),
    );
    iked_rw4_start(&mut iked);
    let gone = |vip: &str| {
        wait_for(Duration::from_secs(5), || {
            !rw4_addrs().contains(&format!(" {vip}/"))
                && std::fs::read_to_string(rw4_resolv()).unwrap_or_default() == RW4_RESOLV
        })
    };

    // EAP-MSCHAPv2, then down.
    let t = Instant::now();
    let vip = iked_rw_up(gw, &iked, "home", IKED_RW_USER)?;
    let took = t.elapsed();
    iked.ikectl_ok(&["down", "home"]);
    check(gone(&vip), || {
        format!(
            "iked road warrior: after down, rw4 has\n{}\nresolv.conf\n{}",
            rw4_addrs(),
            std::fs::read_to_string(rw4_resolv()).unwrap_or_default()
        )
    })?;
    check(kernel_count("rw4") == (0, 0), || {
        format!(
            "iked road warrior: SAs or policies left after down:\n{}",
            states("rw4")
        )
    })?;
    report.push(format!(
        "iked road warrior (EAP-MSCHAPv2): up in {:.2} s, {vip} on eth0, DNS {DNS:?} in its resolv.conf, pings through ESP; after down address and DNS gone",
        took.as_secs_f64()
    ));

    // The generic `auth = eap` against the gateway's EAP-MD5, then down.
    let vip = iked_rw_up(gw, &iked, "md5", IKED_RW_USER)?;
    iked.ikectl_ok(&["down", "md5"]);
    check(gone(&vip), || {
        format!(
            "iked road warrior (eap, EAP-MD5): after down, rw4 has\n{}",
            rw4_addrs()
        )
    })?;
    report.push(format!(
        "iked road warrior (auth = eap, the gateway's EAP-MD5): {vip} on eth0, DNS, pings through ESP; after down gone"
    ));

    // EAP-TLS; then iked killed with the tunnel up, and started again.
    let vip = iked_rw_up(gw, &iked, "tls", TLS_USER)?;
    iked.signal("KILL");
    let left = rw4_addrs();
    let resolv = std::fs::read_to_string(rw4_resolv()).unwrap_or_default();
    check(
        left.contains(&format!(" {vip}/")) && resolv.contains("# by iked"),
        || {
            format!(
                "iked road warrior: a killed iked left no address or DNS to clean:\n{left}\n{resolv}"
            )
        },
    )?;
    iked_rw4_start(&mut iked);
    check(gone(&vip), || {
        format!(
            "iked road warrior: a restarted iked left the killed one's address or DNS:\n{}\n{}\n{}",
            rw4_addrs(),
            std::fs::read_to_string(rw4_resolv()).unwrap_or_default(),
            tail(&iked.log_text(), 30)
        )
    })?;
    check(
        iked.log_text()
            .contains("removed 1 virtual IPs left by a previous iked")
            && iked
                .log_text()
                .contains("removed DNS servers left by a previous iked"),
        || {
            format!(
                "iked road warrior: no cleanup lines in the log\n{}",
                tail(&iked.log_text(), 30)
            )
        },
    )?;
    iked.stop();
    report.push(format!(
        "iked road warrior (EAP-TLS): {vip}, DNS, pings through ESP; killed, its address and DNS removed by the next start"
    ));
    Ok(report)
}

#[test]
fn road_warriors() {
    if !is_guest() {
        sh(&format!(
            "bash -c \". '{}'; lab_ensure_packages strongswan-charon strongswan-swanctl \
             libstrongswan-standard-plugins libcharon-extra-plugins libcharon-extauth-plugins \
             freeradius iptables conntrack openssl iproute2 iputils-ping\"",
            repo_root().join("tests/lab/packages.sh").display()
        ));
    }
    // The PKI on the host (openssl's process starts are slow in UML).
    pki(&pki_dir());
    in_uml("road_warriors", guest);
}

/// Where the host makes the PKI (the guest sees the host's files).
fn pki_dir() -> std::path::PathBuf {
    repo_root().join("target/ra-lab-pki")
}

fn guest() {
    let t0 = Instant::now();
    topology();
    let pki_dir = pki_dir();
    eprintln!("ra: topology in {:.1} s", t0.elapsed().as_secs_f64());
    // The three charons start side by side: each start (charon, then
    // swanctl --load-all) is mostly process starts, 4-7 s in UML.
    let rws: Vec<Charon> = std::thread::scope(|s| {
        let started: Vec<_> = RWS
            .iter()
            .map(|rw| {
                let pki_dir = &pki_dir;
                s.spawn(move || charon_start(rw.ns, &client_conf(rw), pki_dir, false))
            })
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "ra: road warriors started at {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let radius = freeradius();
    let mut failed = Vec::new();

    // The baseline: charon as the gateway.
    let t = Instant::now();
    let gw = Gateway::Charon(charon_start("gw", &gateway_conf(), &pki_dir, true));
    match scenario(&gw, &rws, &radius) {
        Ok(lines) => {
            for l in lines {
                eprintln!("ra: {l}");
            }
        }
        Err(e) => failed.push(e),
    }
    match iked_road_warrior(&gw, &pki_dir) {
        Ok(lines) => {
            for l in lines {
                eprintln!("ra: {l}");
            }
        }
        Err(e) => failed.push(e),
    }
    drop(gw);
    sh(
        "for n in gw rw1 rw2 rw3 rw4; do ip -n $n xfrm state flush; ip -n $n xfrm policy flush; done",
    );
    eprintln!("ra: charon gateway in {:.1} s", t.elapsed().as_secs_f64());

    // iked as the gateway: the same swanctl.conf and credentials.
    let t = Instant::now();
    credentials(&pki_dir, &guest_out().join("iked-gw"), true);
    let mut iked = Iked::new("gw", "iked-gw/swanctl.conf", "iked-gw.log", &gateway_conf());
    // The RADIUS server as charon's gateway has it: strongswan.conf's
    // eap-radius section, which iked reads as charon does.
    let ss_conf = guest_out().join("iked-gw/strongswan.conf");
    std::fs::write(
        &ss_conf,
        format!("charon {{\n{}\n}}\n", radius_plugin_conf()),
    )
    .unwrap();
    let ss_conf = ss_conf.display().to_string();
    iked.start(&["--strongswan-conf", &ss_conf]);
    let gw = Gateway::Iked(iked);
    match scenario(&gw, &rws, &radius) {
        Ok(lines) => {
            for l in lines {
                eprintln!("ra: {l}");
            }
        }
        Err(e) => failed.push(e),
    }
    if let Gateway::Iked(mut i) = gw {
        i.stop();
    }
    sh(
        "for n in gw rw1 rw2 rw3 rw4; do ip -n $n xfrm state flush; ip -n $n xfrm policy flush; done",
    );
    eprintln!("ra: iked gateway in {:.1} s", t.elapsed().as_secs_f64());

    eprintln!("ra: all in {:.1} s", t0.elapsed().as_secs_f64());
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
