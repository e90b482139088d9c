//! On-demand tunnels and the actions that bring tunnels back: the trap
//! policies of a child (`start_action: trap`, or `close_action`/
//! `dpd_action` `trap`), and what to do when the peer deletes or is found
//! dead: the decisions as pure functions (unit-tested below). The trap's
//! kernel state is planned in `super::xfrm_plan`; the driver carries both
//! out (traps in the kernel, ACQUIREs, actions on the endpoint's events).
//!
//! A trap is the child's in/out/fwd policies with their template and no
//! SA, under a reqid the endpoint reserves for the child
//! ([`Endpoint::trap_reqid`](ike::sa::Endpoint::trap_reqid)): outbound
//! traffic that matches makes the kernel send an ACQUIRE, which initiates
//! the child (once: further ACQUIREs while it comes up are ignored). Its
//! Child SAs use the same reqid, so their SAs go in under the trap's
//! policies (the kernel bridge replaces those in place with the Child SA's
//! own, and gives them back to the trap when the Child SA goes), as
//! strongSwan does. The trap stays after `ikectl down` and goes when a
//! reload removes or changes the child (a changed one is installed anew).

use super::xfrm_plan::trap_selectors;
use ike::config::{CloseAction, DpdAction};
use ike::control::TrapStatus;
use ike::sa::{ChildCfg, PeerCfg};

/// Why a child is trapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrapReason {
    /// `start_action: trap`.
    StartAction,
    /// `close_action: trap` after the peer deleted it.
    CloseAction,
    /// `dpd_action: trap` after the peer was found dead.
    DpdAction,
}

impl TrapReason {
    /// The configuration key.
    pub fn key(self) -> &'static str {
        match self {
            TrapReason::StartAction => "start_action",
            TrapReason::CloseAction => "close_action",
            TrapReason::DpdAction => "dpd_action",
        }
    }
}

/// The status entry of a trap.
pub fn trap_status(peer: &PeerCfg, child: &ChildCfg, reqid: u32, why: TrapReason) -> TrapStatus {
    let (lts, rts) = match trap_selectors(peer, child) {
        Ok((_, _, l, r)) => (l, r),
        Err(_) => (Vec::new(), Vec::new()),
    };
    TrapStatus {
        connection: peer.name.clone(),
        child: child.name.clone(),
        reqid,
        mode: child.mode.to_string(),
        protocol: ike::sa::child_protocol(child).to_string(),
        local_ts: lts.iter().map(ike::display::ts_text).collect(),
        remote_ts: rts.iter().map(ike::display::ts_text).collect(),
        reason: why.key().to_owned(),
    }
}

/// What to do with a child after its Child SA or IKE SA went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Install its trap.
    Trap,
    /// Initiate it again.
    Start,
}

/// How a Child SA ended, for [`action`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// We deleted it (`ikectl down`, reload, shutdown): no action.
    Ours,
    /// The peer deleted it or its IKE SA: `close_action`.
    DeletedByPeer,
    /// The peer stopped answering (a liveness check or any other request
    /// ran out of retransmissions): `dpd_action`.
    PeerDead,
}

/// The action for a child configured with these actions, as strongSwan
/// runs them.
pub fn action(ending: Ending, close: CloseAction, dpd: DpdAction) -> Action {
    match ending {
        Ending::Ours => Action::None,
        Ending::DeletedByPeer => match close {
            CloseAction::Trap => Action::Trap,
            CloseAction::Start => Action::Start,
            _ => Action::None,
        },
        Ending::PeerDead => match dpd {
            DpdAction::Trap => Action::Trap,
            DpdAction::Restart => Action::Start,
            _ => Action::None,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::daemon::xfrm_plan::plan_trap;
    use ike::sa::{AddrSpec, Mode, TsCfg};
    use ike::wire::{AddressRange, TrafficSelector};
    use xfrm_netlink::Direction;

    fn peer(local: Vec<AddrSpec>, remote: Vec<AddrSpec>, child: ChildCfg) -> PeerCfg {
        PeerCfg {
            name: "site-b".into(),
            local_addrs: local,
            remote_addrs: remote,
            local_port: 500,
            remote_port: 500,
            ike_proposals: Vec::new(),
            local_id: ike::wire::Identification::fqdn("a"),
            remote_id: None,
            children: vec![child.into()],
            lifetimes: Default::default(),
            dpd_delay: Default::default(),
            local_auth: Default::default(),
            remote_auth: Default::default(),
            send_cert: Default::default(),
            send_certreq: true,
            encap: false,
            mobike: false,
            fragmentation: Default::default(),
            policy: Default::default(),
            behaviour: Default::default(),
            cp: Default::default(),
            redirect: None,
            rounds: Default::default(),
        }
    }

    fn child(local: TsCfg, remote: TsCfg) -> ChildCfg {
        ChildCfg {
            name: "lan".into(),
            local_ts: vec![local],
            remote_ts: vec![remote],
            proposals: ike::crypto::proposal::parse_list(
                ike::wire::codes::ProtocolId::ESP,
                &["aes128gcm16"],
            )
            .unwrap(),
            mode: Mode::Tunnel,
            sa_opts: Default::default(),
            lifetimes: Default::default(),
            policy: Default::default(),
            inactivity: Default::default(),
        }
    }

    fn net(a: &str, b: &str) -> TsCfg {
        TsCfg::Selector(TrafficSelector::Ipv4(AddressRange::any(
            a.parse().unwrap(),
            b.parse().unwrap(),
        )))
    }

    fn ip(s: &str) -> AddrSpec {
        AddrSpec::Addr(s.parse().unwrap())
    }

    #[test]
    fn a_trap_is_the_childs_policies_with_its_reqid() {
        let c = child(net("10.1.0.0", "10.1.0.255"), net("10.2.0.0", "10.2.0.255"));
        let p = peer(
            vec![ip("192.0.2.1")],
            vec![AddrSpec::Any, ip("192.0.2.2")],
            c.clone(),
        );
        let pols = plan_trap(&p, &c, 7, None).unwrap();
        let dirs: Vec<Direction> = pols.iter().map(|p| p.direction).collect();
        assert_eq!(dirs, [Direction::Out, Direction::In, Direction::Fwd]);
        for pol in &pols {
            let t = pol.templates[0];
            assert_eq!(t.reqid, 7);
            assert_eq!(t.spi, None, "no SA: a trap");
        }
        assert_eq!(
            pols[0].templates[0].tunnel,
            Some(("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()))
        );
        assert_eq!(pols[0].selector.src.to_string(), "10.1.0.0/24");
        assert_eq!(pols[0].selector.dst.to_string(), "10.2.0.0/24");
        let s = trap_status(&p, &c, 7, TrapReason::StartAction);
        assert_eq!(
            (
                s.local_ts,
                s.remote_ts,
                s.reason.as_str(),
                s.mode.as_str(),
                s.protocol.as_str()
            ),
            (
                vec!["10.1.0.0/24".to_string()],
                vec!["10.2.0.0/24".to_string()],
                "start_action",
                "TUNNEL",
                "ESP"
            )
        );
    }

    #[test]
    fn dynamic_selectors_and_wildcard_local_addresses() {
        // %any local: the kernel picks the source; subnets still work.
        let c = child(net("10.1.0.0", "10.1.0.255"), TsCfg::Dynamic);
        let p = peer(vec![AddrSpec::Any], vec![ip("192.0.2.2")], c.clone());
        let (l, r, _, rts) = trap_selectors(&p, &c).unwrap();
        assert!(l.is_unspecified());
        assert_eq!(r.to_string(), "192.0.2.2");
        assert_eq!(ike::display::ts_text(&rts[0]), "192.0.2.2/32");
        // Dynamic local with no local address cannot be trapped.
        let c = child(TsCfg::Dynamic, TsCfg::Dynamic);
        let p = peer(vec![AddrSpec::Any], vec![ip("192.0.2.2")], c.clone());
        assert!(
            plan_trap(&p, &c, 1, None)
                .unwrap_err()
                .contains("local_addrs")
        );
        // No remote address: nothing to send the ACQUIRE's IKE_SA_INIT to.
        let p = peer(vec![ip("192.0.2.1")], vec![AddrSpec::Any], c.clone());
        assert!(
            plan_trap(&p, &c, 1, None)
                .unwrap_err()
                .contains("remote_addrs")
        );
    }

    #[test]
    fn actions_as_strongswan_runs_them() {
        use Action as A;
        use CloseAction as C;
        use DpdAction as D;
        use Ending as E;
        let table = [
            (E::Ours, C::Start, D::Restart, A::None),
            (E::Ours, C::Trap, D::Trap, A::None),
            (E::DeletedByPeer, C::None, D::Restart, A::None),
            (E::DeletedByPeer, C::Trap, D::Clear, A::Trap),
            (E::DeletedByPeer, C::Start, D::Clear, A::Start),
            (E::PeerDead, C::Start, D::Clear, A::None),
            (E::PeerDead, C::None, D::Trap, A::Trap),
            (E::PeerDead, C::None, D::Restart, A::Start),
        ];
        for (e, c, d, want) in table {
            assert_eq!(action(e, c, d), want, "{e:?} {c:?} {d:?}");
        }
    }
}
