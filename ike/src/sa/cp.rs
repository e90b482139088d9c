//! The configuration payload in IKE_AUTH (RFC 7296 2.19, 3.15), as
//! charon's ike_config task does it.
//!
//! Gateway: a CFG_REQUEST's INTERNAL_IP4/IP6_ADDRESS attributes get an
//! address each from the connection's `pools` (all pools asked for the
//! identity's own lease first, then for a fresh address, then for another
//! identity's offline one: `pool::Acquire`), and the CFG_REPLY carries
//! them with the attributes of every pool an address came from. No
//! address for any request: INTERNAL_ADDRESS_FAILURE; a connection with
//! pools and a peer that asked for none: FAILED_CP_REQUIRED. Either way
//! the IKE SA is established without its Child SA (the notify says why),
//! as charon. The leases are the IKE SA's until it goes (an IKE SA rekey
//! hands them to the new one); the endpoint releases them then, and they
//! stay the identity's offline lease for its next connection.
//!
//! Client: `vips` go out as a CFG_REQUEST (`0.0.0.0`/`::` as empty
//! attributes, with a DNS request per family); the first Child SA
//! proposes `0.0.0.0/0` / `::/0` for a `dynamic` local selector, and once
//! the CFG_REPLY is in, `dynamic` is the assigned addresses.
//!
//! Selectors: `dynamic` stands for the side's virtual IPs when it has
//! any; for a peer of a connection with pools that has none, for nothing
//! (charon's `ike_sa_get_dynamic_hosts`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tracing::{debug, info};

use super::config::TsCfg;
use super::endpoint::Ctx;
use super::ike_sa::IkeSa;
use super::ts::host;
use crate::config::PoolCfg;
use crate::pool::{Acquire, Lease as PoolLease, Pool};
use crate::wire::TrafficSelector;
use crate::wire::codes::{CfgAttributeType, CfgType, NotifyType};
use crate::wire::{AddressRange, CfgAttribute, Configuration, Identification, Message, Payload};

/// A connection's part in the configuration payload (swanctl's
/// `connections.<name>.pools` and `vips`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpCfg {
    /// The pools a responder assigns the peer's virtual IPs from, in order.
    pub pools: Vec<String>,
    /// The virtual IPs an initiator asks for (unspecified: any of the
    /// family).
    pub vips: Vec<IpAddr>,
}

/// One pool of the endpoint with the attributes that go with its
/// addresses.
#[derive(Debug)]
struct Slot {
    pool: Pool,
    attributes: Vec<(u16, Vec<u8>)>,
}

/// The endpoint's pools by name, with their leases.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    slots: HashMap<String, Slot>,
}

/// An address an IKE SA holds from a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    pool: String,
    addr: IpAddr,
    id: Identification,
}

/// One pool for listings (`ikectl pools`, swanctl's `--list-pools
/// --leases`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolInfo {
    /// Its name.
    pub name: String,
    /// The first address it assigns.
    pub base: IpAddr,
    /// How many addresses it has.
    pub size: u32,
    /// Addresses in use.
    pub online: usize,
    /// Addresses kept for an identity that is not connected.
    pub offline: usize,
    /// Every lease, by address.
    pub leases: Vec<PoolLease>,
}

impl Pools {
    /// Takes on the configured pools (a start or a reload). As charon's
    /// vici pools: a pool of the same name and the same addresses keeps
    /// its leases (with the new attributes); one whose addresses changed
    /// starts empty, unless addresses of the old one are online, then
    /// the old one stays until a reload finds it unused. A pool no longer
    /// configured goes, unless it has online leases (their IKE SAs give
    /// them back to it).
    pub(crate) fn set(&mut self, cfgs: &[PoolCfg]) {
        let mut old = std::mem::take(&mut self.slots);
        for c in cfgs {
            let new = match c.pool() {
                Ok(p) => p,
                Err(e) => {
                    info!("pool {}: {e}", c.name);
                    continue;
                }
            };
            let slot = match old.remove(&c.name) {
                Some(o) if o.pool.base() == new.base() && o.pool.size() == new.size() => Slot {
                    pool: o.pool,
                    attributes: c.attributes.clone(),
                },
                Some(o) if o.pool.online() > 0 => {
                    // As charon: the old one stays whole, attributes too.
                    info!(
                        "pool {} has {} online leases, unable to replace it with {}",
                        c.name,
                        o.pool.online(),
                        c.addrs
                    );
                    o
                }
                _ => Slot {
                    pool: new,
                    attributes: c.attributes.clone(),
                },
            };
            self.slots.insert(c.name.clone(), slot);
        }
        for (name, slot) in old {
            if slot.pool.online() > 0 {
                info!(
                    "pool {name} has {} online leases, unable to remove it",
                    slot.pool.online()
                );
                self.slots.insert(name, slot);
            }
        }
    }

    /// An address of the family of `requested` for `id` from the pools
    /// `names`, in charon's rounds (`Acquire`).
    fn acquire(
        &mut self,
        names: &[String],
        id: &Identification,
        requested: IpAddr,
        peer: std::net::SocketAddr,
    ) -> Option<Held> {
        for op in [Acquire::Existing, Acquire::New, Acquire::Reassign] {
            for name in names {
                let Some(slot) = self.slots.get_mut(name) else {
                    continue;
                };
                if let Some(addr) = slot.pool.acquire_as(op, id, requested, Some(peer)) {
                    return Some(Held {
                        pool: name.clone(),
                        addr,
                        id: id.clone(),
                    });
                }
            }
        }
        None
    }

    /// Gives `held` back to its pool.
    pub(crate) fn release(&mut self, held: &Held) {
        let released = self
            .slots
            .get_mut(&held.pool)
            .is_some_and(|s| s.pool.release(held.addr, &held.id));
        if !released {
            debug!("lease of {} in pool {} already gone", held.addr, held.pool);
        }
    }

    /// The attributes of the pools `names` that one of `addrs` came from.
    fn attributes(&self, names: &[String], addrs: &[IpAddr]) -> Vec<CfgAttribute> {
        names
            .iter()
            .filter_map(|n| self.slots.get(n))
            .filter(|s| addrs.iter().any(|a| s.pool.contains(*a)))
            .flat_map(|s| s.attributes.iter())
            .map(|(t, v)| CfgAttribute {
                attribute_type: CfgAttributeType(*t),
                value: v.clone(),
            })
            .collect()
    }

    /// Every pool with its leases, by name.
    pub(crate) fn info(&self) -> Vec<PoolInfo> {
        let mut out: Vec<PoolInfo> = self
            .slots
            .iter()
            .map(|(name, s)| PoolInfo {
                name: name.clone(),
                base: s.pool.base(),
                size: s.pool.size(),
                online: s.pool.online(),
                offline: s.pool.offline(),
                leases: s.pool.leases(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// An IKE SA's virtual IPs: boxed, and only there when it has any (an
/// `IkeSa` is per tunnel, and most have none: 8 octets instead of 104).
#[derive(Debug, Default)]
pub(crate) struct Vips(Option<Box<VipState>>);

static NO_VIPS: VipState = VipState {
    ours: Vec::new(),
    peer: Vec::new(),
    dns: Vec::new(),
    held: Vec::new(),
    requested: false,
};

impl core::ops::Deref for Vips {
    type Target = VipState;
    fn deref(&self) -> &VipState {
        self.0.as_deref().unwrap_or(&NO_VIPS)
    }
}

impl Vips {
    fn make(&mut self) -> &mut VipState {
        self.0.get_or_insert_with(Default::default)
    }
}

/// What [`Vips`] holds.
#[derive(Debug, Default)]
pub(crate) struct VipState {
    /// Ours, as the peer assigned them (client).
    pub(crate) ours: Vec<IpAddr>,
    /// The peer's, as we assigned them (gateway).
    pub(crate) peer: Vec<IpAddr>,
    /// DNS servers the peer sent (client).
    pub(crate) dns: Vec<IpAddr>,
    /// The leases behind `peer`, released when the IKE SA goes.
    pub(crate) held: Vec<Held>,
    /// We sent a CFG_REQUEST (client).
    requested: bool,
}

/// What the gateway answers a request with.
pub(crate) struct CpAnswer {
    /// The CFG_REPLY, if there is anything in it.
    pub(crate) reply: Option<Payload>,
    /// INTERNAL_ADDRESS_FAILURE or FAILED_CP_REQUIRED: no Child SA.
    pub(crate) refusal: Option<NotifyType>,
}

/// An empty attribute (a request for a value).
fn ask(t: CfgAttributeType) -> CfgAttribute {
    CfgAttribute {
        attribute_type: t,
        value: Vec::new(),
    }
}

/// INTERNAL_IP4/IP6_ADDRESS for `addr` (empty for an unspecified one;
/// IPv6 with prefix length 64, as charon).
fn address_attribute(addr: IpAddr) -> CfgAttribute {
    match addr {
        IpAddr::V4(a) => CfgAttribute {
            attribute_type: CfgAttributeType::INTERNAL_IP4_ADDRESS,
            value: if a.is_unspecified() {
                Vec::new()
            } else {
                a.octets().to_vec()
            },
        },
        IpAddr::V6(a) => CfgAttribute {
            attribute_type: CfgAttributeType::INTERNAL_IP6_ADDRESS,
            value: if a.is_unspecified() {
                Vec::new()
            } else {
                let mut v = a.octets().to_vec();
                v.push(64);
                v
            },
        },
    }
}

/// The address in an INTERNAL_IP4/IP6_ADDRESS or _DNS value (IPv6 may
/// carry a prefix length after it); empty: unspecified; `None`: not an
/// address attribute, or malformed.
fn attribute_address(a: &CfgAttribute) -> Option<IpAddr> {
    let v4 = |v: &[u8]| -> Option<IpAddr> {
        match v.len() {
            0 => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            _ => <[u8; 4]>::try_from(v.get(..4)?)
                .ok()
                .map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        }
    };
    let v6 = |v: &[u8]| -> Option<IpAddr> {
        match v.len() {
            0 => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            _ => <[u8; 16]>::try_from(v.get(..16)?)
                .ok()
                .map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        }
    };
    match a.attribute_type {
        CfgAttributeType::INTERNAL_IP4_ADDRESS | CfgAttributeType::INTERNAL_IP4_DNS => v4(&a.value),
        CfgAttributeType::INTERNAL_IP6_ADDRESS | CfgAttributeType::INTERNAL_IP6_DNS => v6(&a.value),
        _ => None,
    }
}

fn is_address(t: CfgAttributeType) -> bool {
    matches!(
        t,
        CfgAttributeType::INTERNAL_IP4_ADDRESS | CfgAttributeType::INTERNAL_IP6_ADDRESS
    )
}

/// The attributes of the message's CP payloads of type `want` (charon
/// takes CFG_REQUEST and CFG_REPLY alike and ignores the others).
fn attributes(msg: &Message) -> Vec<&CfgAttribute> {
    msg.iter()
        .filter_map(|p| match p {
            Payload::Cp(c) if matches!(c.cfg_type, CfgType::CFG_REQUEST | CfgType::CFG_REPLY) => {
                Some(c.attributes.iter())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// The selector of every address of `addr`'s family (what a client
/// proposes for `dynamic` before it has its virtual IP).
fn any_of(addr: IpAddr) -> TrafficSelector {
    match addr {
        IpAddr::V4(_) => TrafficSelector::Ipv4(AddressRange::any(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
        )),
        IpAddr::V6(_) => TrafficSelector::Ipv6(AddressRange::any(
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::from(u128::MAX),
        )),
    }
}

/// Configured selectors with `dynamic` standing for each of `hosts`.
pub(crate) fn resolve_hosts(cfg: &[TsCfg], hosts: &[IpAddr]) -> Vec<TrafficSelector> {
    let mut out = Vec::new();
    for t in cfg {
        match t {
            TsCfg::Dynamic => out.extend(hosts.iter().map(|h| host(*h))),
            TsCfg::Selector(s) => out.push(s.clone()),
        }
    }
    out
}

impl IkeSa {
    /// What `dynamic` stands for on our side: our virtual IPs, or our
    /// IKE address.
    pub(crate) fn local_hosts(&self) -> Vec<IpAddr> {
        if self.vips.ours.is_empty() {
            vec![self.local.ip()]
        } else {
            self.vips.ours.clone()
        }
    }

    /// What `dynamic` stands for on the peer's side: the virtual IPs we
    /// assigned it; none if its connection has pools (a peer without a
    /// virtual IP gets no Child SA there); its IKE address otherwise.
    pub(crate) fn remote_hosts(&self) -> Vec<IpAddr> {
        if !self.vips.peer.is_empty() {
            self.vips.peer.clone()
        } else if !self.peer.cp.pools.is_empty() {
            Vec::new()
        } else {
            vec![self.remote.ip()]
        }
    }

    /// Our selectors of `cfg` resolved.
    pub(crate) fn local_ts(&self, cfg: &[TsCfg]) -> Vec<TrafficSelector> {
        resolve_hosts(cfg, &self.local_hosts())
    }

    /// The peer's selectors of `cfg` resolved.
    pub(crate) fn remote_ts(&self, cfg: &[TsCfg]) -> Vec<TrafficSelector> {
        resolve_hosts(cfg, &self.remote_hosts())
    }

    /// Initiator: the selectors the first Child SA proposes for our side:
    /// with virtual IPs asked for, `dynamic` is every address of their
    /// families (charon's `prepare_proposed_ts`).
    pub(crate) fn proposed_local_ts(&self, cfg: &[TsCfg]) -> Vec<TrafficSelector> {
        if self.peer.cp.vips.is_empty() {
            return self.local_ts(cfg);
        }
        let mut out = Vec::new();
        for t in cfg {
            match t {
                TsCfg::Dynamic => {
                    for v in &self.peer.cp.vips {
                        let any = any_of(*v);
                        if !out.contains(&any) {
                            out.push(any);
                        }
                    }
                }
                TsCfg::Selector(s) => out.push(s.clone()),
            }
        }
        out
    }

    /// Initiator: the CFG_REQUEST of the first IKE_AUTH, if the
    /// connection asks for virtual IPs: one address attribute per `vips`
    /// entry and a DNS request per family.
    pub(crate) fn cp_request(&mut self) -> Option<Payload> {
        let vips = &self.peer.cp.vips;
        if vips.is_empty() {
            return None;
        }
        let mut attributes: Vec<CfgAttribute> =
            vips.iter().map(|v| address_attribute(*v)).collect();
        if vips.iter().any(IpAddr::is_ipv4) {
            attributes.push(ask(CfgAttributeType::INTERNAL_IP4_DNS));
        }
        if vips.iter().any(IpAddr::is_ipv6) {
            attributes.push(ask(CfgAttributeType::INTERNAL_IP6_DNS));
        }
        self.vips.make().requested = true;
        Some(Payload::Cp(Configuration {
            cfg_type: CfgType::CFG_REQUEST,
            attributes,
        }))
    }

    /// Initiator: the CFG_REPLY of the IKE_AUTH response: our virtual
    /// IPs and DNS servers (before the Child SA's selectors are checked,
    /// which `dynamic` on our side now stands for).
    pub(crate) fn cp_reply(&mut self, msg: &Message) {
        if !self.vips.requested {
            return;
        }
        let mut ours = Vec::new();
        let mut dns = Vec::new();
        for a in attributes(msg) {
            match (attribute_address(a), is_address(a.attribute_type)) {
                (Some(ip), true) if !ip.is_unspecified() => ours.push(ip),
                (Some(ip), false) if !ip.is_unspecified() => dns.push(ip),
                (None, _) if is_address(a.attribute_type) => {
                    debug!(
                        "{}: malformed {} attribute ignored",
                        self.name(),
                        a.attribute_type
                    );
                }
                _ => debug!(
                    "{}: {} attribute not handled",
                    self.name(),
                    a.attribute_type
                ),
            }
        }
        if ours.is_empty() {
            info!("{}: the peer assigned no virtual IP", self.name());
        } else {
            info!(
                "{}: installing new virtual IP {}",
                self.name(),
                ours.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let v = self.vips.make();
        v.ours = ours;
        v.dns = dns;
    }

    /// Responder: the answer to the peer's configuration request in its
    /// IKE_AUTH `msg`, its identity `id` authenticated: its virtual IPs
    /// leased (held by this IKE SA from now on).
    pub(crate) fn cp_respond(
        &mut self,
        ctx: &mut Ctx,
        msg: &Message,
        id: &Identification,
    ) -> CpAnswer {
        let requested: Vec<IpAddr> = attributes(msg)
            .into_iter()
            .filter(|a| is_address(a.attribute_type))
            .filter_map(attribute_address)
            .collect();
        let pools = self.peer.cp.pools.clone();
        let mut held = Vec::new();
        for r in &requested {
            info!("{}: peer requested virtual IP {r}", self.name());
            match ctx.pools.acquire(&pools, id, *r, self.remote) {
                Some(h) => {
                    info!(
                        "{}: assigning virtual IP {} to peer '{}'",
                        self.name(),
                        h.addr,
                        super::ike_sa::IdDisplay(id)
                    );
                    held.push(h);
                }
                None => info!(
                    "{}: no virtual IP found for {r} requested by '{}'",
                    self.name(),
                    super::ike_sa::IdDisplay(id)
                ),
            }
        }
        let refusal = if !requested.is_empty() && held.is_empty() {
            info!(
                "{}: no virtual IP found, sending {}",
                self.name(),
                NotifyType::INTERNAL_ADDRESS_FAILURE
            );
            Some(NotifyType::INTERNAL_ADDRESS_FAILURE)
        } else if requested.is_empty() && !pools.is_empty() {
            info!(
                "{}: expected a virtual IP request, sending {}",
                self.name(),
                NotifyType::FAILED_CP_REQUIRED
            );
            Some(NotifyType::FAILED_CP_REQUIRED)
        } else {
            None
        };
        if refusal.is_some() {
            return CpAnswer {
                reply: None,
                refusal,
            };
        }
        let addrs: Vec<IpAddr> = held.iter().map(|h| h.addr).collect();
        let mut reply: Vec<CfgAttribute> = addrs.iter().map(|a| address_attribute(*a)).collect();
        reply.extend(ctx.pools.attributes(&pools, &addrs));
        if !addrs.is_empty() {
            let v = self.vips.make();
            v.peer = addrs;
            v.held = held;
        }
        CpAnswer {
            reply: if reply.is_empty() {
                None
            } else {
                Some(Payload::Cp(Configuration {
                    cfg_type: CfgType::CFG_REPLY,
                    attributes: reply,
                }))
            },
            refusal: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_attributes_as_charon_sends_and_reads_them() {
        let any4 = address_attribute(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(any4.attribute_type, CfgAttributeType::INTERNAL_IP4_ADDRESS);
        assert!(any4.value.is_empty());
        let a = address_attribute("10.3.0.1".parse().unwrap());
        assert_eq!(a.value, [10, 3, 0, 1]);
        let b = address_attribute("fd00::5".parse().unwrap());
        assert_eq!(b.attribute_type, CfgAttributeType::INTERNAL_IP6_ADDRESS);
        assert_eq!(b.value.len(), 17);
        assert_eq!(b.value.last(), Some(&64));
        for x in [&any4, &a, &b] {
            let back = attribute_address(x).unwrap();
            assert_eq!(address_attribute(back), *x);
        }
        // Short values are malformed; other attributes are not addresses.
        let short = CfgAttribute {
            attribute_type: CfgAttributeType::INTERNAL_IP6_ADDRESS,
            value: vec![0xfd, 0],
        };
        assert_eq!(attribute_address(&short), None);
        let other = CfgAttribute {
            attribute_type: CfgAttributeType::INTERNAL_IP4_NBNS,
            value: vec![10, 0, 0, 1],
        };
        assert_eq!(attribute_address(&other), None);
    }
}
