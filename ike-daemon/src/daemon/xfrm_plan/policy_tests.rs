//! The policy keys in the kernel plan: marks, interface ids, set marks,
//! priorities (charon's), `policies`, `policies_fwd_out`, `interface`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::tests::{install, v4};
use super::*;
use ike::config::{ChildPolicy, ConnPolicy};
use xfrm_netlink::Mark;

fn mark(value: u32, mask: u32) -> MarkPair {
    MarkPair { value, mask }
}

fn tunnel(kernel: KernelPolicy) -> ChildInstall {
    let mut c = install(
        Mode::Tunnel,
        "192.0.2.1:500",
        "192.0.2.2:500",
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    );
    c.kernel = kernel;
    c
}

#[test]
fn marks_and_interface_ids_go_where_charon_puts_them() {
    let k = KernelPolicy {
        mark_in: Some(mark(10, 0xff)),
        mark_out: Some(mark(20, 0xffff_ffff)),
        set_mark_in: Some(mark(7, 0xf)),
        set_mark_out: Some(mark(20, 0xffff_ffff)),
        if_id_in: 42,
        if_id_out: 43,
        ..KernelPolicy::default()
    };
    let plan = plan_install(&tunnel(k.clone())).unwrap();
    // The inbound SA carries no mark without mark_in_sa, but its if_id
    // and set mark.
    assert_eq!(plan.sa_in.mark, None);
    assert_eq!(plan.sa_in.if_id, Some(42));
    assert_eq!(
        plan.sa_in.set_mark,
        Some(Mark {
            value: 7,
            mask: 0xf
        })
    );
    assert_eq!(
        plan.sa_out.mark,
        Some(Mark {
            value: 20,
            mask: 0xffff_ffff
        })
    );
    assert_eq!(plan.sa_out.if_id, Some(43));
    assert_eq!(plan.sa_out.set_mark, plan.sa_out.mark);
    let dirs: Vec<_> = plan
        .policies
        .iter()
        .map(|p| (p.direction, p.mark.map(|m| m.value), p.if_id))
        .collect();
    assert_eq!(
        dirs,
        [
            (Direction::Out, Some(20), Some(43)),
            (Direction::In, Some(10), Some(42)),
            (Direction::Fwd, Some(10), Some(42)),
        ]
    );
    // With mark_in_sa the inbound SA matches mark_in too (its id, for
    // deleting it, as well).
    let plan = plan_install_bound(
        &tunnel(KernelPolicy {
            mark_in_sa: true,
            ..k
        }),
        None,
    )
    .unwrap();
    assert_eq!(
        plan.sa_in.mark,
        Some(Mark {
            value: 10,
            mask: 0xff
        })
    );
    assert_eq!(plan.sa_in.id().mark, plan.sa_in.mark);
}

#[test]
fn no_marks_no_attributes() {
    let plan = plan_install(&tunnel(KernelPolicy::default())).unwrap();
    for p in &plan.policies {
        assert_eq!((p.mark, p.if_id, p.selector.ifindex), (None, None, None));
    }
    for sa in [&plan.sa_in, &plan.sa_out] {
        assert_eq!((sa.mark, sa.if_id, sa.set_mark), (None, None, None));
    }
}

#[test]
fn priorities_are_charons() {
    let c = tunnel(KernelPolicy::default());
    let plan = plan_install(&c).unwrap();
    // 400000 - (24 + 24) * 512 - 1 (not a trap).
    assert_eq!(plan.policies[0].priority, 375_423);
    // A trap's is one more (weaker), a pass shunt's 200000 less, a drop
    // shunt's 200000 more; protocol 256, each exact port 64 (16 bits * 4),
    // an interface 2.
    let sel = plan.policies[0].selector;
    assert_eq!(priority(&sel, PrioClass::Routed, 0), 375_424);
    assert_eq!(priority(&sel, PrioClass::Pass, 0), 175_423);
    assert_eq!(priority(&sel, PrioClass::Drop, 0), 575_423);
    let tcp22 = sel
        .with_proto(6)
        .with_dst_port(xfrm_netlink::PortMatch::exact(22));
    assert_eq!(priority(&tcp22, PrioClass::Ipsec, 0), 375_423 - 256 - 64);
    let mut on_eth0 = sel;
    on_eth0.ifindex = Some(2);
    assert_eq!(priority(&on_eth0, PrioClass::Ipsec, 0), 375_421);
    // A configured priority replaces it.
    assert_eq!(priority(&sel, PrioClass::Ipsec, 4), 4);
    let fixed = plan_install_bound(
        &tunnel(KernelPolicy {
            priority: 1,
            ..KernelPolicy::default()
        }),
        None,
    )
    .unwrap();
    assert!(fixed.policies.iter().all(|p| p.priority == 1));
}

#[test]
fn policies_no_installs_the_sas_only() {
    let plan = plan_install_bound(
        &tunnel(KernelPolicy {
            policies: false,
            ..KernelPolicy::default()
        }),
        None,
    )
    .unwrap();
    assert!(plan.policies.is_empty());
    assert_eq!(plan.sa_out.spi, 0xc000_0002);
}

#[test]
fn fwd_out_and_interface() {
    let plan = plan_install_bound(
        &tunnel(KernelPolicy {
            fwd_out: true,
            mark_out: Some(mark(5, 0xffff_ffff)),
            interface: Some("eth0".into()),
            ..KernelPolicy::default()
        }),
        Some(3),
    )
    .unwrap();
    let p: Vec<_> = plan
        .policies
        .iter()
        .map(|p| {
            (
                p.direction,
                p.selector.src,
                p.selector.ifindex,
                p.templates[0].reqid,
                p.priority,
                p.mark.map(|m| m.value),
            )
        })
        .collect();
    let (a, b) = (
        IpPrefix::new("10.1.0.0".parse().unwrap(), 24).unwrap(),
        IpPrefix::new("10.2.0.0".parse().unwrap(), 24).unwrap(),
    );
    assert_eq!(
        p,
        [
            // out: bound to the interface (2 less), reqid 9.
            (Direction::Out, a, Some(3), 9, 375_421, Some(5)),
            // the outbound fwd policy: the out one's selector, no reqid,
            // a trap's priority.
            (Direction::Fwd, a, Some(3), 0, 375_422, Some(5)),
            (Direction::In, b, None, 9, 375_423, None),
            (Direction::Fwd, b, None, 9, 375_423, None),
        ]
    );
    // Transport mode has no fwd policies, outbound ones neither.
    let mut c = tunnel(KernelPolicy {
        fwd_out: true,
        ..KernelPolicy::default()
    });
    c.mode = Mode::Transport;
    let plan = plan_install(&c).unwrap();
    assert!(plan.policies.iter().all(|p| p.direction != Direction::Fwd));
}

#[test]
fn unique_values_come_from_the_reqid_and_the_connection_gives_defaults() {
    let cfg = |p: ChildPolicy| ChildCfg {
        name: "k".into(),
        local_ts: vec![TsCfg::Dynamic],
        remote_ts: vec![TsCfg::Dynamic],
        proposals: Vec::new(),
        mode: Mode::Tunnel,
        sa_opts: Default::default(),
        lifetimes: Default::default(),
        policy: p,
        inactivity: Default::default(),
    };
    let parse = |yaml: &str| {
        let text = format!(
            "connections:\n  c:\n    local: {{ auth: psk }}\n    remote: {{ auth: psk }}\n{yaml}"
        );
        let c = ike::config::Config::from_yaml_str(&text, "t.yaml").unwrap();
        let conn = c.connections()[0].clone();
        (conn.policy, conn.children[0].policy.clone())
    };
    let (conn, child) = parse(
        "    if_id_in: 9\n    if_id_out: '%unique'\n    children:\n      k:\n        \
         mark_in: '%unique'\n        mark_out: '%unique-dir/0xffff'\n        \
         set_mark_in: '%same'\n        set_mark_out: 0x100/0xf00\n        if_id_in: 0\n",
    );
    let k = cfg(child).kernel_policy(&conn, 5);
    assert_eq!(k.mark_in, Some(mark(5, 0xffff_ffff)));
    assert_eq!(k.mark_out, Some(mark(0x8000_0005, 0xffff)));
    // %same: mark_in's value with set_mark_in's mask.
    assert_eq!(k.set_mark_in, Some(mark(5, 0xffff_ffff)));
    assert_eq!(k.set_mark_out, Some(mark(0x100, 0xf00)));
    // The child's 0 is "none": the connection's applies.
    assert_eq!((k.if_id_in, k.if_id_out), (9, 5));
    // Another reqid, other unique values; the same one, the same values.
    let other = cfg(parse("    children:\n      k:\n        mark_in: '%unique'\n").1);
    assert_eq!(
        other.kernel_policy(&ConnPolicy::default(), 6).mark_in,
        Some(mark(6, 0xffff_ffff))
    );
    assert_eq!(
        other.kernel_policy(&ConnPolicy::default(), 6),
        other.kernel_policy(&ConnPolicy::default(), 6)
    );
    // Nothing configured: nothing in the kernel.
    assert_eq!(
        cfg(ChildPolicy::default()).kernel_policy(&ConnPolicy::default(), 1),
        KernelPolicy::default()
    );
}

fn shunt_child(yaml: &str) -> ike::config::Child {
    let text =
        format!("connections:\n  s:\n    children:\n      k:\n        start_action: trap\n{yaml}");
    let c = ike::config::Config::from_yaml_str(&text, "t.yaml").unwrap();
    c.connections()[0].children[0].clone()
}

#[test]
fn pass_and_drop_shunts_are_template_less_policies_at_charons_priorities() {
    let pass = shunt_child(
        "        mode: pass\n        local_ts: [0.0.0.0/0]\n        remote_ts: ['192.0.2.2/32[icmp]']\n",
    );
    let p = plan_shunt(&pass, None).unwrap();
    let got: Vec<_> = p
        .iter()
        .map(|p| (p.direction, p.action, p.templates.len(), p.priority))
        .collect();
    // 200000 - (0 + 32) * 512 - 256 (a protocol) - 1.
    let prio = 200_000 - 32 * 512 - 256 - 1;
    assert_eq!(
        got,
        [
            (Direction::Out, PolicyAction::Allow, 0, prio),
            (Direction::In, PolicyAction::Allow, 0, prio),
            (Direction::Fwd, PolicyAction::Allow, 0, prio),
        ]
    );
    assert_eq!(p[0].selector.proto, Some(1));
    assert_eq!(p[0].selector.dst.prefix_len(), 32);
    assert_eq!(p[1].selector.src, p[0].selector.dst);

    // drop: block, 400000 weaker; dynamic is any address of both
    // families; marks, interface and fwd_out as configured.
    let drop = shunt_child(
        "        mode: drop\n        mark_in: 3\n        mark_out: 4/0xf\n        \
         policies_fwd_out: yes\n",
    );
    let p = plan_shunt(&drop, Some(5)).unwrap();
    assert_eq!(p.len(), 8, "v4 and v6: out, fwd out, in, fwd in: {p:#?}");
    assert!(p.iter().all(|p| p.action == PolicyAction::Block));
    assert!(p.iter().all(|p| p.selector.ifindex == Some(5)));
    assert!(p.iter().all(|p| p.priority == 600_000 - 2 - 1));
    let v: Vec<_> = p
        .iter()
        .map(|p| {
            (
                p.direction,
                p.selector.src.addr().is_ipv4(),
                p.mark.map(|m| (m.value, m.mask)),
            )
        })
        .collect();
    assert_eq!(
        v,
        [
            (Direction::Out, true, Some((4, 0xf))),
            (Direction::Fwd, true, Some((4, 0xf))),
            (Direction::In, true, Some((3, u32::MAX))),
            (Direction::Fwd, true, Some((3, u32::MAX))),
            (Direction::Out, false, Some((4, 0xf))),
            (Direction::Fwd, false, Some((4, 0xf))),
            (Direction::In, false, Some((3, u32::MAX))),
            (Direction::Fwd, false, Some((3, u32::MAX))),
        ]
    );
    // A configured priority.
    let fixed = shunt_child("        mode: pass\n        priority: 1\n");
    assert!(
        plan_shunt(&fixed, None)
            .unwrap()
            .iter()
            .all(|p| p.priority == 1)
    );
    // An IPsec child is no shunt.
    let mut t = fixed.clone();
    t.mode = Mode::Tunnel;
    assert!(plan_shunt(&t, None).is_err());
}

#[test]
fn ipcomp_sas_carry_their_esp_sas_marks_and_interface_ids_but_set_no_mark() {
    let mut c = tunnel(KernelPolicy {
        mark_in: Some(mark(10, 0xff)),
        mark_in_sa: true,
        mark_out: Some(mark(20, 0xffff_ffff)),
        set_mark_out: Some(mark(3, 0xf)),
        if_id_in: 42,
        if_id_out: 43,
        ..KernelPolicy::default()
    });
    c.ipcomp = Some(ike::sa::IpcompCpis {
        cpi_in: 0x0c01,
        cpi_out: 0x0d01,
    });
    let p = plan_install(&c).unwrap();
    let (ci, co) = p.comp.unwrap();
    assert_eq!(
        (ci.mark, ci.if_id, ci.set_mark),
        (p.sa_in.mark, Some(42), None)
    );
    assert_eq!(
        (co.mark, co.if_id, co.set_mark),
        (p.sa_out.mark, Some(43), None)
    );
    assert_eq!(
        ci.mark,
        Some(Mark {
            value: 10,
            mask: 0xff
        })
    );
    assert_eq!(
        p.sa_out.set_mark,
        Some(Mark {
            value: 3,
            mask: 0xf
        })
    );
    // The policies keep their marks beside the IPComp templates.
    assert!(
        p.policies
            .iter()
            .all(|p| p.mark.is_some() && p.templates.len() == 2)
    );
}
