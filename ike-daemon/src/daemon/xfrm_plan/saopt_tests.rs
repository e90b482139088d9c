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
    let p = plan_install(&child(Mode::Tunnel), None).unwrap();
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
    let p = plan_install(&c, None).unwrap();
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
    let p = plan_install(&c, None).unwrap();
    assert!(p.sa_in.options.decap_dscp && !p.sa_out.options.dont_encap_dscp);
    c.sa_opts.copy_dscp = CopyDscp::No;
    let p = plan_install(&c, None).unwrap();
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
    let p = plan_install(&c, None).unwrap();
    assert_eq!(p.sa_out.options.tfc_padding, 0);
}
