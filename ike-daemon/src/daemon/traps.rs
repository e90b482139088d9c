//! On-demand tunnels and the actions that bring tunnels back: the trap
//! policies of a child (`start_action: trap`, or `close_action`/
//! `dpd_action` `trap`), and what to do when the peer deletes or is found
//! dead: the plans and decisions as pure functions (unit-tested below),
//! and the driver's methods that carry them out (traps in the kernel,
//! ACQUIREs, actions on the endpoint's events).
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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use tracing::{debug, info, warn};
use xfrm_netlink::PolicyConfig;

use super::Driver;
use super::kernel::AcquireEvent;

use super::kernel::{plan_policies, protocol};
use ike::config::{CloseAction, DpdAction};
use ike::control::TrapStatus;
use ike::sa::{AddrSpec, ChildCfg, IkeSaId, IkeState, PeerCfg, TsCfg};
use ike::wire::{AddressRange, TrafficSelector};

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

/// The tunnel endpoints and selectors of a trap: the first concrete local
/// and remote address (a wildcard local one lets the kernel pick the
/// source by route), `dynamic` as that address.
pub fn trap_selectors(
    peer: &PeerCfg,
    child: &ChildCfg,
) -> Result<(IpAddr, IpAddr, Vec<TrafficSelector>, Vec<TrafficSelector>), String> {
    let first = |v: &[AddrSpec]| {
        v.iter().find_map(|a| match a {
            AddrSpec::Addr(ip) => Some(*ip),
            AddrSpec::Any => None,
        })
    };
    let remote = first(&peer.remote_addrs)
        .ok_or("a trap needs a remote address in remote_addrs (not only %any)")?;
    let local = match first(&peer.local_addrs) {
        Some(l) if l.is_ipv4() == remote.is_ipv4() => l,
        _ if remote.is_ipv4() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let host = |ip: IpAddr| match ip {
        IpAddr::V4(a) => TrafficSelector::Ipv4(AddressRange::any(a, a)),
        IpAddr::V6(a) => TrafficSelector::Ipv6(AddressRange::any(a, a)),
    };
    let resolve = |list: &[TsCfg], addr: IpAddr, side: &str| -> Result<Vec<_>, String> {
        list.iter()
            .map(|t| match t {
                TsCfg::Selector(s) => Ok(s.clone()),
                TsCfg::Dynamic if !addr.is_unspecified() => Ok(host(addr)),
                TsCfg::Dynamic => Err(format!(
                    "a trap with dynamic {side}_ts needs a {side} address in {side}_addrs"
                )),
            })
            .collect()
    };
    let lts = resolve(&child.local_ts, local, "local")?;
    let rts = resolve(&child.remote_ts, remote, "remote")?;
    Ok((local, remote, lts, rts))
}

/// The trap policies of `child` of `peer` under `reqid`.
pub fn plan_trap(
    peer: &PeerCfg,
    child: &ChildCfg,
    reqid: u32,
) -> Result<Vec<PolicyConfig>, String> {
    let (local, remote, lts, rts) = trap_selectors(peer, child)?;
    let proto = protocol(ike::sa::child_protocol(child))?;
    plan_policies(child.mode, proto, local, remote, &lts, &rts, reqid)
}

/// The routes of a trap are those of a Child SA with its selectors and
/// tunnel endpoints (so that forwarded traffic reaches the trap's policy
/// before the tunnel is up, as strongSwan routes trap policies): a
/// stand-in Child SA without keys, with an id no Child SA has.
pub fn trap_route_child(
    peer: &PeerCfg,
    child: &ChildCfg,
    reqid: u32,
) -> Option<ike::sa::ChildInstall> {
    let (local, remote, lts, rts) = trap_selectors(peer, child).ok()?;
    let protocol = ike::sa::child_protocol(child);
    Some(ike::sa::ChildInstall {
        id: trap_route_id(reqid),
        ike_sa: ike::sa::IkeSaId(0),
        name: format!("trap of {}/{}", peer.name, child.name),
        mode: child.mode,
        protocol,
        local: std::net::SocketAddr::new(local, peer.local_port),
        remote: std::net::SocketAddr::new(remote, peer.remote_port),
        spi_in: 0,
        spi_out: 0,
        suite: ike::crypto::suite::ChildSuite {
            protocol,
            encr: None,
            integ: None,
            ke: None,
            esn: false,
        },
        encr_in: ike::crypto::Secret::new(Vec::new()),
        integ_in: ike::crypto::Secret::new(Vec::new()),
        encr_out: ike::crypto::Secret::new(Vec::new()),
        integ_out: ike::crypto::Secret::new(Vec::new()),
        local_ts: lts,
        remote_ts: rts,
        esn: false,
        replay_window: 0,
        initiator: true,
        reqid,
        limits: Default::default(),
        encap: false,
    })
}

/// The route book's id of a trap's routes: from the top of the id space,
/// which Child SA ids (counted from 1) never reach.
pub fn trap_route_id(reqid: u32) -> ike::sa::ChildId {
    ike::sa::ChildId(u64::MAX - u64::from(reqid))
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
        local_ts: lts.iter().map(super::status::ts_text).collect(),
        remote_ts: rts.iter().map(super::status::ts_text).collect(),
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

/// The driver's side: traps in the kernel, ACQUIREs, actions.
impl Driver {
    /// Installs the trap of `conn`'s child `child` unless it is there.
    pub(super) async fn install_trap(&mut self, conn: &str, child: &str, why: TrapReason) {
        let key = (conn.to_owned(), child.to_owned());
        if self.traps.contains_key(&key) {
            return;
        }
        let Some(peer) = self.peers.iter().find(|p| p.name == conn) else {
            return;
        };
        let Some(ccfg) = peer.child(child) else {
            return;
        };
        let reqid = self.ep.trap_reqid(conn, child);
        let plan = plan_trap(peer, ccfg, reqid);
        let route = trap_route_child(peer, ccfg, reqid);
        match plan {
            Ok(pols) => match self.kernel.install_trap(reqid, pols, route.as_ref()).await {
                Ok(()) => {
                    info!(
                        "trap policies of {conn}/{child} installed (reqid {reqid}, {})",
                        why.key()
                    );
                    self.traps.insert(key, (reqid, why));
                }
                Err(e) => {
                    warn!("cannot install the trap policies of {conn}/{child}: {e}");
                    self.ep.forget_trap(conn, child);
                }
            },
            Err(e) => {
                warn!("cannot trap {conn}/{child} ({}): {e}", why.key());
                self.ep.forget_trap(conn, child);
            }
        }
    }

    /// Removes the trap of `conn`'s child `child`, if any.
    pub(super) async fn remove_trap(&mut self, conn: &str, child: &str) {
        if let Some((reqid, _)) = self.traps.remove(&(conn.to_owned(), child.to_owned())) {
            self.kernel.remove_trap(reqid).await;
            self.ep.forget_trap(conn, child);
            self.acquiring.remove(&reqid);
            info!("trap policies of {conn}/{child} removed");
        }
    }

    /// Makes the installed traps what the configuration asks for
    /// (`start_action: trap`): at start and after a reload. Traps of
    /// removed or changed children go (a changed one is installed anew);
    /// those of actions stay while their child is configured unchanged.
    pub(super) async fn sync_traps(&mut self) {
        let want: Vec<(String, String)> = self
            .config
            .connections()
            .iter()
            .flat_map(|c| {
                c.children
                    .iter()
                    .filter(|ch| ch.start_action == ike::config::StartAction::Trap)
                    .map(|ch| (c.name.clone(), ch.name.clone()))
            })
            .collect();
        let have: Vec<((String, String), TrapReason)> = self
            .traps
            .iter()
            .map(|(k, (_, w))| (k.clone(), *w))
            .collect();
        // Hash lookups: linear in the number of connections.
        let peers: std::collections::HashMap<&str, &PeerCfg> =
            self.peers.iter().map(|p| (p.name.as_str(), &**p)).collect();
        let wanted_set: std::collections::HashSet<&(String, String)> = want.iter().collect();
        let mut gone = Vec::new();
        for ((conn, child), why) in have {
            let configured = peers
                .get(conn.as_str())
                .is_some_and(|p| p.child(&child).is_some());
            let wanted = wanted_set.contains(&(conn.clone(), child.clone()));
            if !configured || (why == TrapReason::StartAction && !wanted) {
                gone.push((conn, child));
            }
        }
        drop(wanted_set);
        drop(peers);
        for (conn, child) in gone {
            self.remove_trap(&conn, &child).await;
        }
        for (conn, child) in want {
            // An action's trap that the configuration now asks for is the
            // configuration's (it goes when the file drops it).
            if let Some((_, why)) = self.traps.get_mut(&(conn.clone(), child.clone())) {
                *why = TrapReason::StartAction;
            }
            self.install_trap(&conn, &child, TrapReason::StartAction)
                .await;
        }
    }

    /// An ACQUIRE: traffic hit the trap of a child; bring it up, once.
    pub(super) fn acquire(&mut self, a: AcquireEvent) {
        let Some((conn, child)) = self
            .traps
            .iter()
            .find(|(_, (r, _))| *r == a.reqid)
            .map(|(k, _)| k.clone())
        else {
            debug!(
                "acquire for reqid {} ({}): no trap of ours",
                a.reqid, a.flow
            );
            return;
        };
        if self.shutdown.is_some() {
            return;
        }
        if let Some(id) = self.acquiring.get(&a.reqid)
            && self.ep.ike_sa(*id).is_some()
        {
            debug!(
                "acquire for {conn}/{child} ({}): already being established by IKE SA {id}",
                a.flow
            );
            return;
        }
        use ike::sa::ChildState as C;
        let up = self.ep.ike_sas().any(|s| {
            s.peer.as_deref() == Some(conn.as_str())
                && s.children.iter().any(|c| {
                    c.name == child
                        && matches!(
                            c.state,
                            C::Creating | C::Installing | C::Installed | C::Rekeying
                        )
                })
        });
        if up {
            debug!("acquire for {conn}/{child} ({}): already up", a.flow);
            return;
        }
        let now = Instant::now();
        let est = self
            .ep
            .ike_sas()
            .find(|s| s.peer.as_deref() == Some(conn.as_str()) && s.state == IkeState::Established)
            .map(|s| s.id);
        let r = match est {
            Some(id) => self.ep.initiate_child(now, id, &child).map(|()| id),
            None => self.ep.initiate(now, &conn, &[child.as_str()]),
        };
        match r {
            Ok(id) => {
                info!(
                    "acquire for {conn}/{child} ({}): initiating{}",
                    a.flow,
                    if est.is_some() {
                        format!(" on IKE SA {id}")
                    } else {
                        format!(" IKE SA {id}")
                    }
                );
                self.acquiring.insert(a.reqid, id);
            }
            Err(e) => warn!("acquire for {conn}/{child}: {e}"),
        }
    }

    /// The ACQUIRE of `name`'s trap (if that is what `ike` was doing) is
    /// answered: installed, failed or gone.
    pub(super) fn acquired(&mut self, ike: IkeSaId, name: &str) {
        let conn = self.ep.ike_sa(ike).and_then(|s| s.peer);
        if let Some((r, _)) = conn.and_then(|c| self.traps.get(&(c, name.to_owned()))) {
            let r = *r;
            if self.acquiring.get(&r) == Some(&ike) {
                self.acquiring.remove(&r);
            }
        }
    }

    /// Runs the actions of the children of `conn` that ended so.
    pub(super) fn run_actions(
        &mut self,
        conn: &str,
        ike: Option<IkeSaId>,
        children: &[String],
        ending: Ending,
    ) {
        if self.shutdown.is_some() || ending == Ending::Ours {
            return;
        }
        let Some(c) = self.config.connection(conn) else {
            return;
        };
        let mut start = Vec::new();
        for name in children {
            let Some(ch) = c.children.iter().find(|ch| &ch.name == name) else {
                continue;
            };
            match action(ending, ch.close_action, ch.dpd_action) {
                Action::None => {}
                Action::Trap => {
                    let why = if ending == Ending::PeerDead {
                        TrapReason::DpdAction
                    } else {
                        TrapReason::CloseAction
                    };
                    info!("{}: trapping {conn}/{name}", why.key());
                    self.trap_todo.push((conn.to_owned(), name.clone(), why));
                }
                Action::Start => {
                    if !start.contains(name) {
                        start.push(name.clone());
                    }
                }
            }
        }
        if start.is_empty() {
            return;
        }
        let key = if ending == Ending::PeerDead {
            "dpd_action restart"
        } else {
            "close_action start"
        };
        let now = Instant::now();
        // A Child SA the peer deleted on a living IKE SA comes back on it.
        if let Some(id) = ike
            && self
                .ep
                .ike_sa(id)
                .is_some_and(|s| s.state == IkeState::Established)
        {
            for name in &start {
                match self.ep.initiate_child(now, id, name) {
                    Ok(()) => info!("{key}: initiating {conn}/{name} on IKE SA {id}"),
                    Err(e) => warn!("{key} of {conn}/{name}: {e}"),
                }
            }
            return;
        }
        let refs: Vec<&str> = start.iter().map(String::as_str).collect();
        match self.ep.initiate(now, conn, &refs) {
            Ok(id) => info!(
                "{key}: initiating {conn} ({}) as IKE SA {id}",
                start.join(", ")
            ),
            Err(e) => warn!("{key} of {conn}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use ike::sa::Mode;
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
            encap: false,
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
            replay_window: 32,
            lifetimes: Default::default(),
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
        let pols = plan_trap(&p, &c, 7).unwrap();
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
        assert_eq!(super::super::status::ts_text(&rts[0]), "192.0.2.2/32");
        // Dynamic local with no local address cannot be trapped.
        let c = child(TsCfg::Dynamic, TsCfg::Dynamic);
        let p = peer(vec![AddrSpec::Any], vec![ip("192.0.2.2")], c.clone());
        assert!(plan_trap(&p, &c, 1).unwrap_err().contains("local_addrs"));
        // No remote address: nothing to send the ACQUIRE's IKE_SA_INIT to.
        let p = peer(vec![ip("192.0.2.1")], vec![AddrSpec::Any], c.clone());
        assert!(plan_trap(&p, &c, 1).unwrap_err().contains("remote_addrs"));
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
