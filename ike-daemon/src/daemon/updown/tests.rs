#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::*;
use ike::wire::AddressRange;

fn v4(a: &str, b: &str) -> TrafficSelector {
    TrafficSelector::Ipv4(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
}

fn v6(a: &str, b: &str) -> TrafficSelector {
    TrafficSelector::Ipv6(AddressRange::any(a.parse().unwrap(), b.parse().unwrap()))
}

fn with(ts: TrafficSelector, proto: u8, ports: (u16, u16)) -> TrafficSelector {
    match ts {
        TrafficSelector::Ipv4(mut r) => {
            r.ip_protocol = proto;
            (r.start_port, r.end_port) = ports;
            TrafficSelector::Ipv4(r)
        }
        TrafficSelector::Ipv6(mut r) => {
            r.ip_protocol = proto;
            (r.start_port, r.end_port) = ports;
            TrafficSelector::Ipv6(r)
        }
        other => other,
    }
}

/// gw-a of tests/dropin/updown.rs: 192.0.2.11 to 192.0.2.111.
fn tunnel(local: Vec<TrafficSelector>, remote: Vec<TrafficSelector>) -> Tunnel {
    Tunnel {
        name: "net".into(),
        command: "/bin/true".into(),
        hostaccess: false,
        reqid: 1,
        protocol: ProtocolId::ESP,
        ike: IkeSaId(1),
        me: "192.0.2.11".parse().unwrap(),
        peer: "192.0.2.111:4500".parse().unwrap(),
        my_id: "a.updown.example".into(),
        peer_id: "b.updown.example".into(),
        local_ts: local,
        remote_ts: remote,
        encap: false,
        marks: [None, None],
        if_ids: [None, None],
        ipcomp: false,
        my_vips: Vec::new(),
        peer_vips: Vec::new(),
    }
}

fn env(c: &Call) -> Vec<String> {
    c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn var<'c>(c: &'c Call, k: &str) -> &'c str {
    c.env
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {k} in {c:?}"))
}

/// The environment charon 5.9.8 gave gw-a's script for the child `net`
/// (two local selectors, `hostaccess = yes`) in the lab, in charon's order.
#[test]
fn a_net_to_net_child_gets_charons_environment_per_pair() {
    let mut t = tunnel(
        vec![v4("10.1.1.0", "10.1.1.255"), v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    t.hostaccess = true;
    let up = calls(&t, true);
    assert_eq!(up.len(), 2);
    assert_eq!(
        env(&up[0]),
        [
            "PLUTO_VERSION=1.1",
            "PLUTO_VERB=up-client",
            "PLUTO_CONNECTION=net",
            "PLUTO_INTERFACE=unknown",
            "PLUTO_REQID=1",
            "PLUTO_PROTO=esp",
            "PLUTO_UNIQUEID=1",
            "PLUTO_ME=192.0.2.11",
            "PLUTO_MY_ID=a.updown.example",
            "PLUTO_MY_CLIENT=10.1.0.0/24",
            "PLUTO_MY_PORT=0",
            "PLUTO_MY_PROTOCOL=0",
            "PLUTO_PEER=192.0.2.111",
            "PLUTO_PEER_ID=b.updown.example",
            "PLUTO_PEER_CLIENT=10.2.0.0/24",
            "PLUTO_PEER_PORT=0",
            "PLUTO_PEER_PROTOCOL=0",
            "PLUTO_HOST_ACCESS=1",
        ]
    );
    // The selectors in strongSwan's order: lower start first.
    assert_eq!(var(&up[1], "PLUTO_MY_CLIENT"), "10.1.1.0/24");
    assert_eq!(up[0].what, "up-client 10.1.0.0/24 === 10.2.0.0/24");
    let down = calls(&t, false);
    assert_eq!(var(&down[0], "PLUTO_VERB"), "down-client");
    // The rest is the same.
    for (u, d) in up.iter().zip(&down) {
        let rest = |c: &Call| {
            c.env
                .iter()
                .filter(|(k, _)| k != "PLUTO_VERB")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(rest(u), rest(d));
    }
}

#[test]
fn ports_protocols_and_ranges_as_charon_writes_them() {
    // charon in the lab: 10.1.0.2/32[tcp/2000-2010] === 10.2.0.5-10.2.0.9[tcp/22].
    let t = tunnel(
        vec![with(v4("10.1.0.2", "10.1.0.2"), 6, (2000, 2010))],
        vec![with(v4("10.2.0.5", "10.2.0.9"), 6, (22, 22))],
    );
    let c = &calls(&t, true)[0];
    assert_eq!(var(c, "PLUTO_MY_CLIENT"), "10.1.0.2/32");
    assert_eq!(var(c, "PLUTO_MY_PORT"), "2000:2010");
    assert_eq!(var(c, "PLUTO_MY_PROTOCOL"), "6");
    assert_eq!(var(c, "PLUTO_PEER_CLIENT"), "10.2.0.0/28");
    assert_eq!(var(c, "PLUTO_PEER_PORT"), "22");
    assert_eq!(var(c, "PLUTO_PEER_PROTOCOL"), "6");
    // ICMP: the type on our side, the code on the peer's, from the larger
    // first port (type << 8 | code).
    let t = tunnel(
        vec![with(v4("10.1.0.0", "10.1.0.255"), 1, (0x0803, 0x0803))],
        vec![with(v4("10.2.0.0", "10.2.0.255"), 1, (0, 65535))],
    );
    let c = &calls(&t, true)[0];
    assert_eq!(
        (var(c, "PLUTO_MY_PORT"), var(c, "PLUTO_PEER_PORT")),
        ("8", "3")
    );
    // Any port is 0; a range from 0 is from:to.
    let t = tunnel(
        vec![with(v4("10.1.0.0", "10.1.0.255"), 17, (0, 1023))],
        vec![with(v4("10.2.0.0", "10.2.0.255"), 0, (0, 65535))],
    );
    let c = &calls(&t, true)[0];
    assert_eq!(
        (var(c, "PLUTO_MY_PORT"), var(c, "PLUTO_PEER_PORT")),
        ("0:1023", "0")
    );
}

#[test]
fn subnets_of_ranges_as_strongswan_computes_them() {
    let sub = |a: &str, b: &str| {
        let t = if a.contains(':') { v6(a, b) } else { v4(a, b) };
        let (n, l, exact) = Ts::of(&t).unwrap().subnet();
        (format!("{n}/{l}"), exact)
    };
    assert_eq!(sub("10.1.0.0", "10.1.0.255"), ("10.1.0.0/24".into(), true));
    assert_eq!(sub("10.1.0.2", "10.1.0.2"), ("10.1.0.2/32".into(), true));
    assert_eq!(
        sub("0.0.0.0", "255.255.255.255"),
        ("0.0.0.0/0".into(), true)
    );
    assert_eq!(sub("10.2.0.5", "10.2.0.9"), ("10.2.0.0/28".into(), false));
    // Aligned end but not start, and the other way round.
    assert_eq!(sub("10.0.0.1", "10.0.0.255"), ("10.0.0.0/24".into(), false));
    assert_eq!(sub("10.0.0.0", "10.0.0.254"), ("10.0.0.0/24".into(), false));
    assert_eq!(
        sub("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("::/0".into(), true)
    );
    assert_eq!(
        sub("2001:db8::", "2001:db8::ffff"),
        ("2001:db8::/112".into(), true)
    );
    assert_eq!(
        sub("2001:db8::1", "2001:db8::1"),
        ("2001:db8::1/128".into(), true)
    );
}

#[test]
fn host_verbs_and_families() {
    // Transport mode between the gateways: our selector is our address.
    let t = tunnel(
        vec![v4("192.0.2.11", "192.0.2.11")],
        vec![v4("192.0.2.111", "192.0.2.111")],
    );
    let c = &calls(&t, true)[0];
    assert_eq!(var(c, "PLUTO_VERB"), "up-host");
    assert_eq!(var(c, "PLUTO_MY_CLIENT"), "192.0.2.11/32");
    assert_eq!(var(&calls(&t, false)[0], "PLUTO_VERB"), "down-host");
    // IPv6 selectors over IPv4 gateways: -client-v6; pairs of different
    // families are left out.
    let t = tunnel(
        vec![
            v6("2001:db8:1::", "2001:db8:1::ffff"),
            v4("10.1.0.0", "10.1.0.255"),
        ],
        vec![
            v6("2001:db8:2::", "2001:db8:2::ffff"),
            v4("10.2.0.0", "10.2.0.255"),
        ],
    );
    let verbs: Vec<String> = calls(&t, true)
        .iter()
        .map(|c| format!("{} {}", var(c, "PLUTO_VERB"), var(c, "PLUTO_MY_CLIENT")))
        .collect();
    assert_eq!(
        verbs,
        ["up-client 10.1.0.0/24", "up-client-v6 2001:db8:1::/112"]
    );
    // IPv6 gateways, host: -host-v6.
    let mut t = tunnel(
        vec![v6("2001:db8::a", "2001:db8::a")],
        vec![v6("2001:db8::b", "2001:db8::b")],
    );
    t.me = "2001:db8::a".parse().unwrap();
    t.peer = "[2001:db8::b]:500".parse().unwrap();
    let c = &calls(&t, false)[0];
    assert_eq!(var(c, "PLUTO_VERB"), "down-host-v6");
    assert_eq!(var(c, "PLUTO_PEER"), "2001:db8::b");
}

#[test]
fn pairs_of_two_different_protocols_are_left_out() {
    let t = tunnel(
        vec![
            with(v4("10.1.0.0", "10.1.0.255"), 6, (0, 65535)),
            with(v4("10.1.0.0", "10.1.0.255"), 17, (0, 65535)),
        ],
        vec![
            with(v4("10.2.0.0", "10.2.0.255"), 17, (53, 53)),
            v4("10.3.0.0", "10.3.0.255"),
        ],
    );
    let pairs: Vec<String> = calls(&t, true)
        .iter()
        .map(|c| {
            format!(
                "{}>{}",
                var(c, "PLUTO_MY_PROTOCOL"),
                var(c, "PLUTO_PEER_CLIENT")
            )
        })
        .collect();
    // tcp-udp is left out; any protocol pairs with each.
    assert_eq!(pairs, ["6>10.3.0.0/24", "17>10.2.0.0/24", "17>10.3.0.0/24"]);
}

#[test]
fn esp_in_udp_and_ah() {
    let mut t = tunnel(
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    assert!(
        calls(&t, true)[0]
            .env
            .iter()
            .all(|(k, _)| k != "PLUTO_UDP_ENC")
    );
    t.encap = true;
    t.protocol = ProtocolId::AH;
    let c = &calls(&t, true)[0];
    assert_eq!(var(c, "PLUTO_UDP_ENC"), "4500");
    assert_eq!(var(c, "PLUTO_PROTO"), "ah");
    assert!(c.env.iter().all(|(k, _)| k != "PLUTO_IPCOMP"));
}

#[test]
fn marks_and_interface_ids_as_charon_prints_them_when_set() {
    let mut t = tunnel(
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    let names = |t: &Tunnel| -> Vec<String> {
        calls(t, true)[0]
            .env
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k.contains("MARK") || k.contains("IF_ID"))
            .collect()
    };
    assert!(names(&t).is_empty());
    t.marks = [Some((42, 0xffff_ffff)), Some((0x100, 0xff00))];
    t.if_ids = [None, Some(7)];
    let c = &calls(&t, true)[0];
    assert_eq!(var(c, "PLUTO_MARK_IN"), "42/0xffffffff");
    assert_eq!(var(c, "PLUTO_MARK_OUT"), "256/0x0000ff00");
    assert_eq!(var(c, "PLUTO_IF_ID_OUT"), "7");
    assert_eq!(
        names(&t),
        ["PLUTO_MARK_IN", "PLUTO_MARK_OUT", "PLUTO_IF_ID_OUT"]
    );
}

/// The configuration's fixed marks and interface ids (a child's if_id
/// over its connection's) reach the snapshot; `%unique` and 0 do not.
#[test]
fn the_configured_fixed_values_are_passed() {
    use ike::config::{ChildPolicy, ConnPolicy, IdValue, MarkCfg};
    let mut child = ChildPolicy::default();
    let mut conn = ConnPolicy::default();
    assert_eq!(configured_ids(&child, &conn), ([None, None], [None, None]));
    child.mark_in = Some(MarkCfg {
        value: IdValue::Fixed(0x10),
        mask: 0xf0,
    });
    child.mark_out = Some(MarkCfg {
        value: IdValue::Unique,
        mask: 0xffff_ffff,
    });
    conn.if_id_in = Some(IdValue::Fixed(5));
    conn.if_id_out = Some(IdValue::Fixed(6));
    child.if_id_out = Some(IdValue::Fixed(9));
    assert_eq!(
        configured_ids(&child, &conn),
        ([Some((0x10, 0xf0)), None], [Some(5), Some(9)])
    );
    child.if_id_in = Some(IdValue::Fixed(0));
    child.mark_in = Some(MarkCfg {
        value: IdValue::Fixed(0),
        mask: 0xffff_ffff,
    });
    assert_eq!(
        configured_ids(&child, &conn),
        ([None, None], [None, Some(9)])
    );
}

/// A snapshot of an installed Child SA: its configuration's command and
/// hostaccess, the IKE SA's addresses, identities and NAT state.
#[test]
fn the_snapshot_of_a_child_sa() {
    let text = "connections:
  c:
    local: { auth: psk, id: a.example }
    remote: { auth: psk, id: b.example }
    children:
      net:
        updown: /usr/lib/ipsec/_updown iptables
        hostaccess: yes
      other: {}
";
    let config = Config::from_yaml_str(text, "t.yaml").unwrap();
    let sa = IkeSaInfo {
        id: IkeSaId(3),
        peer: Some("c".into()),
        state: ike::sa::IkeState::Established,
        initiator: true,
        spi_i: 1,
        spi_r: 2,
        local_addr: "192.0.2.11:4500".parse().unwrap(),
        remote_addr: "192.0.2.111:4501".parse().unwrap(),
        local_id: Some({
            let (id_type, data) = "a.example"
                .parse::<ike::config::Identity>()
                .unwrap()
                .to_wire();
            ike::wire::Identification { id_type, data }
        }),
        remote_id: None,
        suite: None,
        established_at: None,
        rekey_at: None,
        expires_at: None,
        nat_local: false,
        nat_remote: true,
        encap: true,
        mobike: false,
        children: Vec::new(),
        local_vips: Vec::new(),
        remote_vips: Vec::new(),
        dns: Vec::new(),
    };
    let mut child = ChildSaInfo {
        name: "net".into(),
        id: ChildId(4),
        state: ike::sa::ChildState::Installed,
        mode: ike::config::Mode::Tunnel,
        protocol: ProtocolId::ESP,
        spi_in: 1,
        spi_out: 2,
        local_ts: vec![v4("10.1.0.0", "10.1.0.255")],
        remote_ts: vec![v4("10.2.0.0", "10.2.0.255")],
        suite: None,
        installed_at: None,
        rekey_at: None,
        expires_at: None,
        reqid: 8,
        outbound: true,
        ipcomp: true,
    };
    let t = Tunnel::of(&config, &sa, &child).unwrap();
    assert_eq!(
        (t.command.as_str(), t.hostaccess, t.reqid, t.ike, t.encap),
        ("/usr/lib/ipsec/_updown iptables", true, 8, IkeSaId(3), true)
    );
    assert_eq!(
        (t.my_id.as_str(), t.peer_id.as_str()),
        ("a.example", "%any")
    );
    let c = &calls(&t, true)[0];
    assert_eq!(var(c, "PLUTO_UDP_ENC"), "4501");
    assert_eq!(var(c, "PLUTO_IPCOMP"), "1");
    assert_eq!(var(c, "PLUTO_ME"), "192.0.2.11");
    // A child without updown, or of another connection: none.
    child.name = "other".into();
    assert!(Tunnel::of(&config, &sa, &child).is_none());
    let mut other = sa.clone();
    other.peer = Some("nope".into());
    child.name = "net".into();
    assert!(Tunnel::of(&config, &other, &child).is_none());
}

#[test]
fn identities_are_printable() {
    assert_eq!(printable("a\nb\u{0}c.example"), "a?b?c.example");
}

// ---------------------------------------------------------------------------
// Running the calls.

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iked-updown-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_script_gets_path_and_the_calls_variables_only() {
    let dir = scratch("env");
    let cmd = script(
        &dir,
        "dump.sh",
        &format!("env > '{}'/$PLUTO_VERB", dir.display()),
    );
    let mut t = tunnel(
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    // A command line: the script with an argument and a redirection.
    t.command = format!("{cmd} an-argument >/dev/null");
    rt().block_on(async {
        let mut u = Updowns::new(Duration::from_secs(10));
        u.add(ChildId(7), t.clone(), 0);
        assert!(u.has(ChildId(7)));
        u.deleted(ChildId(7), 0);
        assert!(u.is_empty());
        u.finish().await;
    });
    let read = |verb: &str| {
        let mut v: Vec<String> = std::fs::read_to_string(dir.join(verb))
            .unwrap()
            .lines()
            // What sh itself sets.
            .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    };
    for (verb, up) in [("up-client", true), ("down-client", false)] {
        let mut want: Vec<String> = calls(&t, up).iter().flat_map(env).collect();
        want.push(format!(
            "PATH={}",
            std::env::var("PATH").unwrap_or_default()
        ));
        // The interface of the route to 192.0.2.111, if this machine has
        // one (a default route), else unknown.
        let got = read(verb);
        let iface = got
            .iter()
            .find_map(|l| l.strip_prefix("PLUTO_INTERFACE="))
            .unwrap()
            .to_owned();
        for w in &mut want {
            if w.starts_with("PLUTO_INTERFACE=") {
                *w = format!("PLUTO_INTERFACE={iface}");
            }
        }
        want.sort();
        assert_eq!(got, want, "{verb}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_down_never_overtakes_its_up_and_failures_do_not_stop_the_rest() {
    let dir = scratch("order");
    let log = dir.join("log");
    let slow = script(
        &dir,
        "slow.sh",
        &format!(
            "case $PLUTO_VERB in up*) sleep 0.5;; esac\necho \"$PLUTO_VERB $PLUTO_MY_CLIENT\" >> '{}'\necho some output\nexit 3",
            log.display()
        ),
    );
    let mut t = tunnel(
        vec![v4("10.1.0.0", "10.1.0.255"), v4("10.1.1.0", "10.1.1.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    t.command = slow;
    rt().block_on(async {
        let mut u = Updowns::new(Duration::from_secs(10));
        u.add(ChildId(1), t.clone(), 0);
        u.release(None);
        // Deleted while the up still runs.
        u.deleted(ChildId(1), 0);
        u.release(None);
        u.finish().await;
    });
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "up-client 10.1.0.0/24\nup-client 10.1.1.0/24\ndown-client 10.1.0.0/24\ndown-client 10.1.1.0/24\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calls_wait_for_the_kernel_operations_before_them() {
    let dir = scratch("held");
    let log = dir.join("log");
    let mut t = tunnel(
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    t.command = format!("echo $PLUTO_VERB >> '{}'", log.display());
    rt().block_on(async {
        let mut u = Updowns::new(Duration::from_secs(10));
        // Scheduled when operations 0..5 were: waits for them.
        u.add(ChildId(1), t.clone(), 5);
        u.release(Some(4));
        u.finish_started().await;
        assert!(!log.exists(), "ran before operation 4 was done");
        u.release(Some(5));
        u.finish().await;
    });
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "up-client\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_hanging_script_is_killed_with_its_children_and_the_next_call_runs() {
    let dir = scratch("hang");
    let pids = dir.join("pids");
    let log = dir.join("log");
    let mut t = tunnel(
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    // The up hangs in a child process of the shell; the down is quick.
    // (A command line that starts with a reserved word such as `case` is
    // no compound command after charon's `2>&1 `: scripts are files.)
    t.command = script(
        &dir,
        "hang.sh",
        &format!(
            "case $PLUTO_VERB in up*) sleep 60 & echo $! > '{p}'; wait;; *) echo $PLUTO_VERB >> '{l}';; esac",
            p = pids.display(),
            l = log.display()
        ),
    );
    let started = Instant::now();
    rt().block_on(async {
        let mut u = Updowns::new(Duration::from_millis(500));
        u.add(ChildId(1), t.clone(), 0);
        u.deleted(ChildId(1), 0);
        u.finish().await;
    });
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "down-client\n");
    let pid = std::fs::read_to_string(&pids).unwrap().trim().to_owned();
    // The sleep in the script's process group is gone (or a zombie of
    // no one's, reaped by init).
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "sleep {pid} survived the timeout");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_rekey_calls_nothing_and_the_successor_goes_down() {
    let dir = scratch("rekey");
    let log = dir.join("log");
    let mut t = tunnel(
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    t.command = format!("echo $PLUTO_VERB $PLUTO_UNIQUEID >> '{}'", log.display());
    rt().block_on(async {
        let mut u = Updowns::new(Duration::from_secs(10));
        u.add(ChildId(1), t.clone(), 0);
        u.rekeyed(ChildId(1), None, ChildId(2));
        assert!(!u.has(ChildId(1)) && u.has(ChildId(2)));
        // The IKE SA is rekeyed too: its successor's number.
        u.ike_rekeyed(IkeSaId(1), None, IkeSaId(9));
        // The old one's deletion is no down.
        u.deleted(ChildId(1), 0);
        u.deleted(ChildId(2), 0);
        u.finish().await;
    });
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "up-client 1\ndown-client 9\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn virtual_ips_are_passed_as_charons_sourceip_variables() {
    let mut t = tunnel(
        vec![v4("10.3.0.1", "10.3.0.1")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    t.my_vips = vec!["10.3.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
    let c = &calls(&t, true)[0];
    assert_eq!(var(c, "PLUTO_MY_SOURCEIP"), "10.3.0.1");
    assert_eq!(var(c, "PLUTO_MY_SOURCEIP4_1"), "10.3.0.1");
    assert_eq!(var(c, "PLUTO_MY_SOURCEIP6_1"), "fd00::1");
    assert!(!env(c).iter().any(|e| e.starts_with("PLUTO_PEER_SOURCEIP")));
    t.my_vips.clear();
    t.peer_vips = vec!["10.3.0.7".parse().unwrap()];
    let c = &calls(&t, true)[0];
    assert_eq!(var(c, "PLUTO_PEER_SOURCEIP"), "10.3.0.7");
    assert_eq!(var(c, "PLUTO_PEER_SOURCEIP4_1"), "10.3.0.7");
    assert!(!env(c).iter().any(|e| e.starts_with("PLUTO_MY_SOURCEIP")));
}
