//! EAP-MSCHAPv2 between iked and strongSwan 5.9.8 (Debian's charon) in the
//! UML kernel lab, one boot, both roles:
//!
//! ```text
//! rw 192.0.2.11 --wan-- 192.0.2.1 gw --lan-- 10.1.0.1 | 10.1.0.2 srv
//! ```
//!
//! The gateway proves itself with a certificate (ECDSA P-256, made by
//! openssl in the guest), the user alice with EAP-MSCHAPv2 (`eap_id =
//! %any`: the gateway asks her EAP identity first), as in
//! docs/remote-access.md; no virtual IP (the configuration payload is
//! another lane's): the client's side of the tunnel is its own address.
//!
//! 1. iked gateway, charon road warrior: dave (a password the gateway does
//!    not have) is refused, iked's info line says why, and neither kernel
//!    gets an SA or a policy; alice comes up and a ping from rw to srv goes
//!    through ESP (the gateway's ESP SAs count it).
//! 2. charon gateway, iked road warrior: the same.
//! 3. Two authentication rounds (RFC 4739), iked gateway, charon road
//!    warrior: alice's laptop proves itself with its certificate
//!    (`remote`), then alice with EAP-MSCHAPv2 (`remote-eap`, the second
//!    round); dave's password fails the second round with nothing
//!    installed; alice's ping goes through ESP.
//! 4. Two rounds, charon gateway, iked road warrior (`local` then
//!    `local-eap`): the same ping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::charon::{Charon, tail};
use common::{Iked, esp_packets, ping_through, policies, states};
use iked_lab::{guest_out, in_uml, is_guest, lab_sh, repo_root, sh, wait_until};

const GW: &str = "192.0.2.1";
const SRV: &str = "10.1.0.2";
const IKE: &str = "aes128gcm16-prfsha256-x25519";
const ESP: &str = "aes128gcm16";
const ALICE: &str = "alice@ra.example";
const DAVE: &str = "dave@ra.example";
/// The identity of alice's laptop (its certificate), the first round's.
const LAPTOP: &str = "laptop.ra.example";
const PINGS: u32 = 5;

fn password(user: &str) -> String {
    format!("{user}'s password, not a secret")
}

fn topology() {
    lab_sh(
        "for ns in gw srv rw; do ip netns add $ns; ip -n $ns link set lo up; done
         lab_veth gw lan 10.1.0.1/24 srv eth0 10.1.0.2/24
         lab_veth gw wan 192.0.2.1/24 rw eth0 192.0.2.11/24
         ip -n srv route add default via 10.1.0.1
         ip -n rw route add default via 192.0.2.1
         lab_ns gw sysctl -qw net.ipv4.ip_forward=1
         lab_wait_for 10 'rw reaches the gateway' lab_ns rw ping -c1 -W1 192.0.2.1
         lab_warm_crypto",
    );
}

/// The CA and the gateway's certificate (CN and dNSName gw.ra.example).
fn pki(dir: &Path) {
    lab_sh(&format!(
        "mkdir -p '{d}' && cd '{d}'
         openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
         openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out gw.key
         openssl req -x509 -new -key ca.key -subj '/C=CH/O=iked lab/CN=eap root' -days 2 -out ca.pem \
             -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign
         openssl req -new -key gw.key -subj '/C=CH/O=iked lab/CN=gw.ra.example' -out gw.csr
         printf 'subjectAltName=DNS:gw.ra.example\\n' > gw.ext
         openssl x509 -req -in gw.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile gw.ext -out gw.pem 2>/dev/null
         openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out laptop.key
         openssl req -new -key laptop.key -subj '/C=CH/O=iked lab/CN={LAPTOP}' -out laptop.csr
         printf 'subjectAltName=DNS:{LAPTOP}\\n' > laptop.ext
         openssl x509 -req -in laptop.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile laptop.ext -out laptop.pem 2>/dev/null",
        d = dir.display()
    ));
}

/// The swanctl folders of `conf_dir` with the CA, and the gateway's
/// certificate and key (`gw`) or the laptop's.
fn credentials(pki: &Path, conf_dir: &Path, gw: bool) {
    for f in ["x509", "x509ca", "private"] {
        std::fs::create_dir_all(conf_dir.join(f)).unwrap();
    }
    std::fs::copy(pki.join("ca.pem"), conf_dir.join("x509ca/ca.pem")).unwrap();
    let me = if gw { "gw" } else { "laptop" };
    std::fs::copy(
        pki.join(format!("{me}.pem")),
        conf_dir.join(format!("x509/{me}.pem")),
    )
    .unwrap();
    std::fs::copy(
        pki.join(format!("{me}.key")),
        conf_dir.join(format!("private/{me}.key")),
    )
    .unwrap();
}

/// The gateway's swanctl.conf (charon's and iked's): alice's and a
/// password for dave that is not the one dave's client has.
fn gateway_conf() -> String {
    format!(
        "connections {{
    rw {{
        local_addrs = {GW}
        proposals = {IKE}
        local {{
            auth = pubkey
            certs = gw.pem
            id = gw.ra.example
        }}
        remote {{
            auth = eap-mschapv2
            eap_id = %any
        }}
        children {{
            net {{
                local_ts = 10.1.0.0/24
                esp_proposals = {ESP}
            }}
        }}
    }}
}}
secrets {{
    eap-alice {{
        id = {ALICE}
        secret = \"{}\"
    }}
    eap-dave {{
        id = {DAVE}
        secret = \"{}\"
    }}
}}
",
        password("alice"),
        password("dave")
    )
}

/// The road warrior's swanctl.conf (charon's and iked's): `home` as
/// alice, `wrong` as dave with a password the gateway does not have.
fn client_conf() -> String {
    let conn = |name: &str, id: &str| {
        format!(
            "    {name} {{
        remote_addrs = {GW}
        proposals = {IKE}
        local {{
            auth = eap-mschapv2
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
            }}
        }}
    }}
"
        )
    };
    format!(
        "connections {{
{}{}}}
secrets {{
    eap-alice {{
        id = {ALICE}
        secret = \"{}\"
    }}
    eap-dave {{
        id = {DAVE}
        secret = \"not dave's password\"
    }}
}}
",
        conn("home", ALICE),
        conn("wrong", DAVE),
        password("alice")
    )
}

/// The gateway's swanctl.conf for two rounds: the laptop's certificate,
/// then the user's EAP-MSCHAPv2 (charon's `remote-eap` section, iked's
/// `remote2`).
fn gateway_rounds_conf() -> String {
    format!(
        "connections {{
    two {{
        local_addrs = {GW}
        proposals = {IKE}
        local {{
            auth = pubkey
            certs = gw.pem
            id = gw.ra.example
        }}
        remote {{
            auth = pubkey
            id = {LAPTOP}
        }}
        remote-eap {{
            auth = eap-mschapv2
            eap_id = %any
        }}
        children {{
            net {{
                local_ts = 10.1.0.0/24
                esp_proposals = {ESP}
            }}
        }}
    }}
}}
secrets {{
    eap-alice {{
        id = {ALICE}
        secret = \"{}\"
    }}
    eap-dave {{
        id = {DAVE}
        secret = \"{}\"
    }}
}}
",
        password("alice"),
        password("dave")
    )
}

/// The laptop's swanctl.conf for two rounds: `home` as alice, `wrong` as
/// dave with a password the gateway does not have, each after the
/// laptop's certificate.
fn client_rounds_conf() -> String {
    let conn = |name: &str, eap_id: &str| {
        format!(
            "    {name} {{
        remote_addrs = {GW}
        proposals = {IKE}
        local {{
            auth = pubkey
            certs = laptop.pem
            id = {LAPTOP}
        }}
        local-eap {{
            auth = eap-mschapv2
            eap_id = {eap_id}
        }}
        remote {{
            auth = pubkey
            id = gw.ra.example
        }}
        children {{
            {name} {{
                remote_ts = 10.1.0.0/24
                esp_proposals = {ESP}
            }}
        }}
    }}
"
        )
    };
    format!(
        "connections {{
{}{}}}
secrets {{
    eap-alice {{
        id = {ALICE}
        secret = \"{}\"
    }}
    eap-dave {{
        id = {DAVE}
        secret = \"not dave's password\"
    }}
}}
",
        conn("home", ALICE),
        conn("wrong", DAVE),
        password("alice")
    )
}

/// charon `name` in namespace `name` with `conf` and the credentials of
/// `pki` (`gw`: the gateway's).
fn charon(name: &str, conf: &str, pki: &Path, gw: bool) -> Charon {
    credentials(pki, &guest_out().join(format!("charon-{name}")), gw);
    Charon::start(
        name,
        name,
        conf,
        "default=1 ike=2 cfg=2 knl=1 enc=0 lib=1",
        "eap-identity eap-mschapv2",
        "",
    )
}

/// iked in namespace `ns` reading `conf` as swanctl.conf, the credentials
/// beside it.
fn iked(ns: &'static str, conf: &str, pki: &Path, gw: bool) -> Iked {
    let dir = guest_out().join(format!("iked-{ns}"));
    credentials(pki, &dir, gw);
    Iked::spawn(
        ns,
        &format!("iked-{ns}/swanctl.conf"),
        &format!("iked-{ns}.log"),
        conf,
        &[],
    )
}

/// Neither namespace has an ESP SA or an IPsec policy.
fn kernels_empty(what: &str) {
    for ns in ["gw", "rw"] {
        assert!(
            !states(ns).contains("proto esp") && policies(ns) == 0,
            "{what}: {ns} has SAs or policies:\n{}",
            sh(&format!("ip -n {ns} xfrm state; ip -n {ns} xfrm policy"))
        );
    }
}

/// Pings srv from rw; the ESP SAs of `ns` count at least the pings and
/// their answers.
fn ping_through_esp(ns: &str) {
    let before = esp_packets(ns);
    ping_through("rw", SRV, PINGS);
    let counted = esp_packets(ns) - before;
    assert!(
        counted >= u64::from(2 * PINGS),
        "{ns}'s ESP SAs counted {counted} packets for {PINGS} pings"
    );
}

#[test]
fn eap_mschapv2() {
    if !is_guest() {
        sh(&format!(
            "bash -c \". '{}'; lab_ensure_packages strongswan-charon strongswan-swanctl \
             libstrongswan-standard-plugins libcharon-extra-plugins openssl iproute2 \
             iputils-ping\"",
            repo_root().join("tests/lab/packages.sh").display()
        ));
    }
    in_uml("eap_mschapv2", guest);
}

fn guest() {
    let t0 = Instant::now();
    topology();
    let pki_dir = guest_out().join("pki");
    pki(&pki_dir);

    // 1. iked gateway, charon road warrior.
    let t = Instant::now();
    let gw = iked("gw", &gateway_conf(), &pki_dir, true);
    let rw = charon("rw", &client_conf(), &pki_dir, false);
    let out = rw.swanctl(&["--initiate", "--child", "wrong", "--timeout", "20"]);
    assert!(
        !out.status.success(),
        "dave came up with a wrong password\n{}",
        gw.log_text()
    );
    wait_until(Duration::from_secs(10), "iked's refusal of dave", || {
        gw.log_text()
            .contains("EAP-MSCHAPv2 verification of 'dave@ra.example' failed (wrong password)")
    });
    kernels_empty("iked gateway, dave refused");
    rw.swanctl_ok(&["--initiate", "--child", "home", "--timeout", "20"]);
    wait_until(Duration::from_secs(10), "alice's child on charon", || {
        rw.installed("home")
    });
    assert!(
        gw.log_text()
            .contains("authentication of 'alice@ra.example' with EAP successful"),
        "{}",
        tail(&gw.log_text(), 40)
    );
    ping_through_esp("gw");
    eprintln!(
        "eap: iked gateway, charon client: alice up, {PINGS} pings through ESP, dave refused ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    drop(rw);
    drop(gw);
    sh("for n in gw rw; do ip -n $n xfrm state flush; ip -n $n xfrm policy flush; done");

    // 2. charon gateway, iked road warrior.
    let t = Instant::now();
    let gw = charon("gw", &gateway_conf(), &pki_dir, true);
    let rw = iked("rw", &client_conf(), &pki_dir, false);
    let out = rw.ikectl(&["up", "wrong", "--timeout", "30"]);
    assert!(
        !out.status.success(),
        "dave came up with a wrong password: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    wait_until(
        Duration::from_secs(10),
        "iked's EAP failure as dave",
        || rw.log_text().contains("EAP-MSCHAPv2 failed with error 691"),
    );
    kernels_empty("charon gateway, dave refused");
    rw.up("home");
    wait_until(Duration::from_secs(10), "alice's IKE SA on charon", || {
        gw.installed("net")
    });
    ping_through_esp("rw");
    eprintln!(
        "eap: charon gateway, iked client: alice up, {PINGS} pings through ESP, dave refused ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    drop(rw);
    drop(gw);
    sh("for n in gw rw; do ip -n $n xfrm state flush; ip -n $n xfrm policy flush; done");

    // 3. Two rounds: iked gateway, charon road warrior.
    let t = Instant::now();
    let gw = iked("gw", &gateway_rounds_conf(), &pki_dir, true);
    let rw = charon("rw", &client_rounds_conf(), &pki_dir, false);
    let out = rw.swanctl(&["--initiate", "--child", "wrong", "--timeout", "20"]);
    assert!(
        !out.status.success(),
        "dave came up with a wrong password in round 2\n{}",
        gw.log_text()
    );
    wait_until(Duration::from_secs(10), "iked's refusal of dave", || {
        let log = gw.log_text();
        // The laptop's certificate round passed, the password round not.
        log.lines().any(|l| {
            l.contains(&format!("authentication of '{LAPTOP}' with")) && l.ends_with("successful")
        }) && log.contains("EAP-MSCHAPv2 verification of 'dave@ra.example' failed (wrong password)")
    });
    kernels_empty("two rounds, iked gateway, dave refused");
    rw.swanctl_ok(&["--initiate", "--child", "home", "--timeout", "20"]);
    wait_until(Duration::from_secs(10), "alice's child on charon", || {
        rw.installed("home")
    });
    assert!(
        gw.log_text()
            .contains("authentication of 'alice@ra.example' with EAP successful"),
        "{}",
        tail(&gw.log_text(), 40)
    );
    ping_through_esp("gw");
    eprintln!(
        "eap: two rounds, iked gateway, charon client: laptop certificate and alice up, \
         {PINGS} pings through ESP, dave refused in round 2 ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    drop(rw);
    drop(gw);
    sh("for n in gw rw; do ip -n $n xfrm state flush; ip -n $n xfrm policy flush; done");

    // 4. Two rounds: charon gateway, iked road warrior.
    let t = Instant::now();
    let gw = charon("gw", &gateway_rounds_conf(), &pki_dir, true);
    let rw = iked("rw", &client_rounds_conf(), &pki_dir, false);
    rw.up("home");
    wait_until(Duration::from_secs(10), "alice's IKE SA on charon", || {
        gw.installed("net")
    });
    let sas = String::from_utf8_lossy(&gw.swanctl(&["--list-sas"]).stdout).into_owned();
    assert!(sas.contains(ALICE), "charon's SA is not alice's:\n{sas}");
    ping_through_esp("rw");
    eprintln!(
        "eap: two rounds, charon gateway, iked client: laptop certificate and alice up, \
         {PINGS} pings through ESP ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    drop(rw);
    drop(gw);
    eprintln!("eap: all in {:.1} s", t0.elapsed().as_secs_f64());
}
