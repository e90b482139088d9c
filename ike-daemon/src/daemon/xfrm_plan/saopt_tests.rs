//! The child's SA options in the planned SAs: replay window, header flags,
//! TFC padding.

use xfrm_netlink::{Protocol, SaOptions};

use super::tests::{install, v4};
use super::*;
use ike::config::{CopyDscp, TFC_PAD_MTU};

fn child(mode: Mode) -> ChildInstall {
    install(
        mode,
        "192.0.2.1:500",
        "192.0.2.2:500",
        vec![v4("10.1.0.0", "10.1.0.255")],
        vec![v4("10.2.0.0", "10.2.0.255")],
    )
}

#[test]
fn defaults_set_no_flag() {
    let p = plan_install(&child(Mode::Tunnel)).unwrap();
    assert_eq!(p.sa_in.options, SaOptions::default());
    assert_eq!(p.sa_out.options, SaOptions::default());
    assert_eq!(p.sa_in.replay_window, 32);
}

#[test]
fn options_go_to_the_direction_strongswan_gives_them() {
    let mut c = child(Mode::Tunnel);
    c.sa_opts.copy_df = false;
    c.sa_opts.copy_ecn = false;
    c.sa_opts.copy_dscp = CopyDscp::In;
    c.sa_opts.tfc_padding = 1200;
    c.sa_opts.replay_window = 1024;
    let p = plan_install(&c).unwrap();
    assert_eq!(
        p.sa_in.options,
        SaOptions {
            no_ecn: true,
            decap_dscp: true,
            ..SaOptions::default()
        }
    );
    assert_eq!(
        p.sa_out.options,
        SaOptions {
            no_ecn: true,
            no_pmtu_discovery: true,
            dont_encap_dscp: true,
            tfc_padding: 1200,
            ..SaOptions::default()
        }
    );
    assert_eq!(p.sa_in.replay_window, 1024);

    // yes: both ways; no: neither.
    c.sa_opts.copy_dscp = CopyDscp::Yes;
    let p = plan_install(&c).unwrap();
    assert!(p.sa_in.options.decap_dscp && !p.sa_out.options.dont_encap_dscp);
    c.sa_opts.copy_dscp = CopyDscp::No;
    let p = plan_install(&c).unwrap();
    assert!(!p.sa_in.options.decap_dscp && p.sa_out.options.dont_encap_dscp);
}

#[test]
fn tfc_padding_only_for_tunnel_mode_esp() {
    let mut o = ChildSaOpts::default();
    o.tfc_padding = TFC_PAD_MTU;
    let (i, out) = sa_options(&o, Protocol::Esp, Mode::Tunnel);
    assert_eq!((i.tfc_padding, out.tfc_padding), (0, u32::MAX));
    assert_eq!(
        sa_options(&o, Protocol::Esp, Mode::Transport).1.tfc_padding,
        0
    );
    assert_eq!(sa_options(&o, Protocol::Ah, Mode::Tunnel).1.tfc_padding, 0);
    // And the message for the kernel is made (AH with padding would not be).
    let mut c = child(Mode::Transport);
    c.sa_opts.tfc_padding = 1000;
    let p = plan_install(&c).unwrap();
    assert_eq!(p.sa_out.options.tfc_padding, 0);
}

#[test]
fn ipcomp_is_an_ipcomp_tunnel_around_transport_mode_esp_as_charon_installs_it() {
    let mut c = child(Mode::Tunnel);
    c.ipcomp = Some(IpcompCpis {
        cpi_in: 0x0c01,
        cpi_out: 0x0d01,
    });
    c.sa_opts.copy_df = false;
    c.sa_opts.tfc_padding = 1000;
    let (me, peer): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
    let p = plan_install(&c).unwrap();
    // ESP in transport mode, any traffic of the outer family, no TFC.
    for sa in [&p.sa_in, &p.sa_out] {
        assert_eq!(sa.protocol, Protocol::Esp);
        assert_eq!(sa.mode, xfrm_netlink::Mode::Transport);
        assert_eq!(sa.selector, Some(Selector::any(xfrm_netlink::Family::V4)));
        assert_eq!(sa.options.tfc_padding, 0);
    }
    let (ci, co) = p.comp.clone().unwrap();
    assert_eq!((ci.src, ci.dst, ci.spi), (peer, me, 0x0c01));
    assert_eq!((co.src, co.dst, co.spi), (me, peer, 0x0d01));
    for sa in [&ci, &co] {
        assert_eq!(sa.protocol, Protocol::Comp);
        assert_eq!(sa.mode, xfrm_netlink::Mode::Tunnel);
        assert_eq!(sa.reqid, 9);
        assert_eq!(sa.replay_window, 0);
        assert!(sa.selector.is_none() && sa.encap.is_none());
        assert!(matches!(
            sa.transforms,
            Transforms::Compression {
                alg: CompAlg::Deflate
            }
        ));
    }
    // The DF flag goes where the outer header is made.
    assert!(co.options.no_pmtu_discovery && co.options.tfc_padding == 0);
    for pol in &p.policies {
        let [comp, esp] = &pol.templates[..] else {
            panic!("{pol:?}")
        };
        assert_eq!(comp.protocol, Protocol::Comp);
        assert_eq!(comp.mode, xfrm_netlink::Mode::Tunnel);
        assert_eq!(comp.optional, pol.direction != Direction::Out);
        let ends = if pol.direction == Direction::Out {
            (me, peer)
        } else {
            (peer, me)
        };
        assert_eq!(comp.tunnel, Some(ends));
        assert_eq!(esp.protocol, Protocol::Esp);
        assert_eq!(esp.mode, xfrm_netlink::Mode::Transport);
        assert!(esp.tunnel.is_none() && !esp.optional);
        assert_eq!((comp.reqid, esp.reqid), (9, 9));
    }
    assert_eq!(p.policies.len(), 3);
    // What a move to new addresses plans again is the same.
    assert_eq!(
        PolicySource::of(&c, None).unwrap().policies().unwrap(),
        p.policies
    );
    let src = SaSource {
        keys: SaKeys::of(&c),
        sa_in: Some(SaAddrs::of(&c)),
        sa_out: Some(SaAddrs::of(&c)),
    };
    let protos: Vec<(bool, Protocol)> = src
        .sa_configs()
        .unwrap()
        .iter()
        .map(|(i, s)| (*i, s.protocol))
        .collect();
    assert_eq!(
        protos,
        [
            (true, Protocol::Comp),
            (true, Protocol::Esp),
            (false, Protocol::Comp),
            (false, Protocol::Esp)
        ]
    );
    // Behind a NAT only ESP is in UDP.
    let u = ChildUpdate {
        id: c.id,
        ike_sa: c.ike_sa,
        reqid: 9,
        local: "192.0.2.1:4500".parse().unwrap(),
        remote: "192.0.2.2:4500".parse().unwrap(),
        encap: true,
    };
    assert!(moved_sa(&co, false, &u).encap.is_none());
    assert!(moved_sa(&p.sa_out, false, &u).encap.is_some());

    // Without IPComp: none of it.
    let p = plan_install(&child(Mode::Tunnel)).unwrap();
    assert!(p.comp.is_none());
    assert!(p.policies.iter().all(|x| x.templates.len() == 1));
}

#[test]
fn ipcomp_in_transport_mode_keeps_the_host_selectors() {
    let mut c = child(Mode::Transport);
    c.local_ts = vec![v4("192.0.2.1", "192.0.2.1")];
    c.remote_ts = vec![v4("192.0.2.2", "192.0.2.2")];
    c.ipcomp = Some(IpcompCpis {
        cpi_in: 0x101,
        cpi_out: 0x102,
    });
    let p = plan_install(&c).unwrap();
    let (ci, _) = p.comp.unwrap();
    assert_eq!(ci.mode, xfrm_netlink::Mode::Transport);
    assert_eq!(p.sa_in.mode, xfrm_netlink::Mode::Transport);
    assert!(
        p.sa_in.selector.is_none(),
        "host to host, as without IPComp"
    );
    for pol in &p.policies {
        assert_eq!(pol.templates.len(), 2);
        assert!(pol.templates.iter().all(|t| t.tunnel.is_none()));
    }
}

#[test]
fn hw_offload_asks_for_the_routes_device_on_esp_only() {
    use ike::config::HwOffload;
    use xfrm_netlink::Offload;
    let mut c = child(Mode::Tunnel);
    let p = plan_install(&c).unwrap();
    assert!(p.sa_in.offload.is_none() && p.sa_out.offload.is_none());
    assert_eq!(p.hw_offload, HwOffload::No);
    for hw in [HwOffload::Auto, HwOffload::Yes] {
        c.sa_opts.hw_offload = hw;
        c.ipcomp = Some(IpcompCpis {
            cpi_in: 0x100,
            cpi_out: 0x101,
        });
        let p = plan_install(&c).unwrap();
        assert_eq!(p.hw_offload, hw);
        assert_eq!(
            p.sa_in.offload,
            Some(Offload {
                ifindex: 0,
                inbound: true
            })
        );
        assert_eq!(
            p.sa_out.offload,
            Some(Offload {
                ifindex: 0,
                inbound: false
            })
        );
        // Never the IPComp SAs (as charon).
        let (ci, co) = p.comp.unwrap();
        assert!(ci.offload.is_none() && co.offload.is_none());
    }
}
