//! The policy keys against this machine's kernel (XFRM netlink, no ESP, so
//! no SAs; needs root, fails without it): the trap policies of a child with
//! marks, XFRM interface ids (`%unique-dir`) and an `interface` go in with
//! XFRMA_MARK, XFRMA_IF_ID and the selector's ifindex; an SPI is allocated
//! beside them; a drop shunt goes in; a "crashed" daemon's policies, marked
//! and interface-bound ones and shunts included, are removed by the next
//! one's cleanup, and a stopping daemon removes its shunts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ike::config::Config;
use ike::sa::{AddrSpec, ChildCfg, KernelOk, KernelOp, KernelReq, Mode, PeerCfg, TsCfg};
use ike::wire::codes::ProtocolId;
use ike_daemon::daemon::kernel::{Kernel, ifindex};
use ike_daemon::daemon::xfrm_plan::{plan_shunt, plan_trap};
use iked_lab::net::Netns;

const YAML: &str = "
connections:
  c:
    local_addrs: [192.0.2.1]
    remote_addrs: [192.0.2.2]
    local: { auth: psk }
    remote: { auth: psk }
    if_id_in: '%unique-dir'
    if_id_out: '%unique-dir'
    children:
      k:
        local_ts: [10.1.0.0/24]
        remote_ts: [10.2.0.0/24]
        mark_in: 0x10/0xff
        mark_out: 0x20
        interface: wan
        start_action: trap
  s:
    children:
      d:
        mode: drop
        remote_ts: [198.51.100.0/24]
        interface: wan
        start_action: trap
";

fn peer(config: &Config) -> (PeerCfg, ChildCfg) {
    let c = &config.connections()[0];
    let ch = &c.children[0];
    let child = ChildCfg {
        name: ch.name.clone(),
        local_ts: ch.local_ts.iter().map(ike::from_config::ts_cfg).collect(),
        remote_ts: ch.remote_ts.iter().map(ike::from_config::ts_cfg).collect(),
        proposals: ch.esp_proposals.clone(),
        mode: Mode::Tunnel,
        sa_opts: Default::default(),
        lifetimes: Default::default(),
        policy: ch.policy.clone(),
        inactivity: ch.inactivity,
    };
    let peer = PeerCfg {
        name: c.name.clone(),
        local_addrs: vec![AddrSpec::Addr("192.0.2.1".parse().unwrap())],
        remote_addrs: vec![AddrSpec::Addr("192.0.2.2".parse().unwrap())],
        local_port: 500,
        remote_port: 500,
        ike_proposals: Vec::new(),
        local_id: ike::wire::Identification::fqdn("a"),
        remote_id: None,
        children: vec![child.clone().into()],
        lifetimes: Default::default(),
        dpd_delay: Default::default(),
        local_auth: Default::default(),
        remote_auth: Default::default(),
        send_cert: Default::default(),
        send_certreq: true,
        encap: false,
        mobike: false,
        fragmentation: Default::default(),
        policy: c.policy,
        behaviour: Default::default(),
        cp: Default::default(),
        redirect: None,
        rounds: Default::default(),
    };
    assert!(matches!(child.local_ts[0], TsCfg::Selector(_)));
    (peer, child)
}

fn run<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

async fn kernel() -> Kernel {
    let (conn, handle) = xfrm_netlink::new_connection().unwrap();
    tokio::spawn(conn);
    Kernel::new(handle)
}

#[test]
fn marks_interface_ids_interfaces_and_shunts_in_the_kernel_and_cleaned_up() {
    let ns = Netns::new("iked-policy-keys");
    ns.ip("link add wan type veth peer name lan");
    ns.ip("addr add 192.0.2.1/24 dev wan");
    ns.ip("link set wan up");
    ns.ip("link set lan up");
    ns.enter();
    let config = Config::from_yaml_str(YAML, "t.yaml").unwrap();
    let (peer, child) = peer(&config);
    let shunt = config.connections()[1].children[0].clone();
    run(async {
        let k = kernel().await;
        k.flush_leftovers().await.unwrap();
        let wan = ifindex(Some("wan")).unwrap();
        assert!(wan.is_some());
        assert!(
            ifindex(Some("nosuchif0"))
                .unwrap_err()
                .contains("nosuchif0")
        );

        // The trap: reqid 7, so if_id in 7, out 0x80000007.
        let pols = plan_trap(&peer, &child, 7, wan).unwrap();
        k.install_trap(7, pols, None).await.unwrap();
        let out = ns.ip("xfrm policy list dir out");
        assert!(out.contains("dev wan"), "{out}");
        assert!(out.contains("mark 0x20/0xffffffff"), "{out}");
        assert!(out.contains("if_id 0x80000007"), "{out}");
        let inb = ns.ip("xfrm policy list dir in");
        assert!(inb.contains("mark 0x10/0xff"), "{inb}");
        assert!(inb.contains("if_id 0x7"), "{inb}");
        assert!(!inb.contains("dev wan"), "{inb}");
        // charon's priority: 400000 - 48 * 512 (a trap: no -1), -2 bound.
        assert!(out.contains("priority 375422"), "{out}");

        // An SPI beside them.
        let r = k
            .execute(KernelOp::AllocSpi {
                req: KernelReq(1),
                protocol: ProtocolId::ESP,
                local: "192.0.2.1:500".parse().unwrap(),
                remote: "192.0.2.2:500".parse().unwrap(),
            })
            .await
            .unwrap();
        assert!(matches!(r.outcome, Ok(KernelOk::SpiAllocated(s)) if s >= 0xc000_0000));

        // The drop shunt: out, in, fwd (IPv4 only: the remote side is),
        // bound to wan, blocking.
        let sp = plan_shunt(&shunt, wan).unwrap();
        k.install_shunt(("s".into(), "d".into()), sp).await.unwrap();
        let all = ns.ip("xfrm policy list");
        assert_eq!(all.matches("action block").count(), 3, "{all}");
        assert!(all.contains("dst 198.51.100.0/24 dev wan"), "{all}");

        // A crash: the daemon goes without cleaning up; the next one's
        // cleanup removes everything of it (policies found by their
        // owner tag, deleted with their marks and interface ids).
        drop(k);
        let k2 = kernel().await;
        k2.flush_leftovers().await.unwrap();
        let left = ns.ip("xfrm policy list");
        assert!(left.trim().is_empty(), "{left}");

        // A stop removes the shunts.
        let sp = plan_shunt(&shunt, wan).unwrap();
        k2.install_shunt(("s".into(), "d".into()), sp)
            .await
            .unwrap();
        assert_eq!(k2.shunts().len(), 1);
        k2.remove_all().await;
        let left = ns.ip("xfrm policy list");
        assert!(left.trim().is_empty(), "{left}");
    });
}
