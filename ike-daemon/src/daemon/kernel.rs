//! The kernel bridge: the endpoint's [`KernelOp`]s carried out with
//! xfrm-netlink, and a record of everything installed so that a child's
//! removal, a failed install and the daemon's shutdown remove exactly it.
//!
//! What goes into the kernel is planned in `super::xfrm_plan` (pure);
//! here it is carried out: in order per reqid, with a bounded number of
//! operations in flight, and recorded. In tunnel mode, routes toward the
//! remote selectors (`super::routes`) go in after the SAs and policies; a
//! route failure is only logged.
//!
//! The reqid comes from the endpoint: a rekeyed Child SA keeps the reqid of
//! the one it replaces, so its SAs ([`KernelOp::InstallRekeyed`],
//! [`KernelOp::InstallOutbound`]) go in under the policies already there,
//! which are recorded per reqid and removed only with the last Child SA
//! that uses them ([`ChildRemove::policies`]). The kernel sends outbound
//! traffic on the newest valid SA of a reqid, so adding the new outbound
//! SA switches traffic to it, and removing the old outbound SA afterwards
//! loses nothing. The old inbound SA stays for `--delete-rekeyed-delay`
//! ([`split_removal`]): packets the peer sent on it before it switched can
//! arrive after the rekey's Delete (the rekey lab delays ESP behind IKE and
//! lost packets at every rekey without it). Operations on one reqid run
//! strictly in the order the endpoint issued them. Routes are shared the
//! same way: the rekeyed Child SA registers its routes before the old one
//! gives them up.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info, warn};
use xfrm_netlink::{
    EventGroups, Handle, KernelErrorKind, PolicyConfig, PolicyId, Protocol, SaId, Usage, XfrmEvent,
};

use super::routes::Routes;
use ike::config::HwOffload;
use xfrm_netlink::SaConfig;

use super::xfrm_plan::{
    InstallPlan, PolicyPlan, PolicySource, SaAddrs, SaKeys, SaSource, moved_addr, moved_policies,
    moved_sa, plan_install, plan_install_bound, plan_policies, protocol, split_removal,
    trap_route_id,
};
use ike::sa::{
    ChildId, ChildInstall, ChildRemove, ChildUpdate, IkeSaId, KernelEvent, KernelOk, KernelOp,
    KernelResult,
};
use ike::wire::codes::ProtocolId;

/// SPI range for ALLOCSPI (strongSwan's default `0xc0000000-0xcfffffff`).
const SPI_MIN: u32 = 0xc000_0000;
const SPI_MAX: u32 = 0xcfff_ffff;
/// CPI range for IPComp (charon's: below 0x100 are the well-known ones,
/// RFC 3173 3.3; above 0xefff private use).
const CPI_MIN: u32 = 0x100;
const CPI_MAX: u32 = 0xefff;

/// An ACQUIRE of one of our trap policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireEvent {
    /// The reqid of the policy's template.
    pub reqid: u32,
    /// The packet that triggered it, for the log.
    pub flow: String,
}

/// What is in the kernel for one Child SA (its SAs) or one reqid (its
/// policies).
///
/// For a move to new addresses (a NAT mapping changed) the SAs and
/// policies as installed are needed again. Rather than their kernel
/// configurations (two `SaConfig`s and three `PolicyConfig`s, about 2.5 KB
/// per Child SA with a `Vec`'s spare room), what they were made
/// from is kept, and `plan_install` / `plan_policies` make them again.
#[derive(Debug, Clone, Default)]
struct Installed {
    ike: Option<IkeSaId>,
    sas: Vec<SaId>,
    policies: Vec<PolicyId>,
    /// A Child SA's: what its SAs were made from.
    source: Option<Arc<SaSource>>,
    /// A reqid's: what its policies were planned from.
    policy_source: Option<Arc<PolicySource>>,
}

impl State {
    /// Whether an expire event is about an inbound SA kept after its
    /// Child SA was rekeyed (`lingering`): the engine no longer knows it
    /// and nothing is to be done. A hard expire means the kernel removed
    /// it already, so it is no longer kept.
    fn kept_expire(&mut self, protocol: Protocol, spi: u32, dst: IpAddr, hard: bool) -> bool {
        let Some(id) = self
            .lingering
            .keys()
            .find(|k| k.spi == spi && k.dst == dst && k.protocol == protocol)
            .copied()
        else {
            return false;
        };
        if hard {
            self.lingering.remove(&id);
        }
        true
    }
}

#[derive(Debug, Default)]
struct State {
    /// The SAs of each Child SA.
    children: HashMap<ChildId, Installed>,
    /// The policies of each reqid (shared by a Child SA and the ones that
    /// rekey it).
    policies: HashMap<u32, Installed>,
    /// SPIs reserved with ALLOCSPI and not (yet) filled in.
    larval: HashSet<SaId>,
    /// Per reqid, the order of operations (an install still running when
    /// the removal of it, or of the Child SA it replaces, comes).
    order: Turns,
    /// Inbound SAs of Child SAs replaced by a rekey, kept for
    /// `rekeyed_delay`, with their reqid.
    lingering: HashMap<SaId, u32>,
    /// Trap policies by reqid (`start_action: trap`): in the kernel while
    /// no Child SA of theirs holds the same policies; a Child SA's install
    /// updates them in place (same reqid), its removal restores them.
    traps: HashMap<u32, Vec<PolicyConfig>>,
    /// The policies of each `pass`/`drop` shunt, by (connection, child).
    shunts: HashMap<(String, String), Vec<PolicyConfig>>,
    /// The marks of the installed SAs that have one (the kernel's key of
    /// an SA includes it), by destination, SPI and protocol.
    sa_marks: HashMap<(IpAddr, u32, Protocol), xfrm_netlink::Mark>,
}

impl State {
    /// Records (or with `gone` forgets) the marks of `sas`.
    fn note_marks(&mut self, sas: &[SaId], gone: bool) {
        for id in sas {
            if let Some(m) = id.mark {
                let key = (id.dst, id.spi, id.protocol);
                if gone {
                    self.sa_marks.remove(&key);
                } else {
                    self.sa_marks.insert(key, m);
                }
            }
        }
    }
}

/// Keeps operations on one key in the order they were scheduled, however
/// the tasks running them are polled: each waits for the one before.
#[derive(Debug, Default)]
pub struct Turns(HashMap<u32, tokio::sync::oneshot::Receiver<()>>);

/// One operation's place in the order of its key.
#[derive(Debug)]
pub struct Turn {
    prev: Option<tokio::sync::oneshot::Receiver<()>>,
    done: tokio::sync::oneshot::Sender<()>,
}

impl Turns {
    /// The next place in the order of `key` (call in scheduling order).
    pub fn take(&mut self, key: u32) -> Turn {
        let (done, rx) = tokio::sync::oneshot::channel();
        Turn {
            prev: self.0.insert(key, rx),
            done,
        }
    }

    /// Forgets `key` (no operation on it will come any more).
    pub fn forget(&mut self, key: u32) {
        self.0.remove(&key);
    }

    /// Forgets `key` if its last operation is done: an idle reqid keeps
    /// no channel (about 130 bytes per Child SA). The next
    /// operation then waits for nothing, as it would for a done one.
    pub fn settle(&mut self, key: u32) {
        if let Some(rx) = self.0.get_mut(&key)
            && !matches!(
                rx.try_recv(),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty)
            )
        {
            self.0.remove(&key);
        }
    }

    /// The number of keys with an operation (tests).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.0.len()
    }
}

impl Turn {
    /// Waits until the operation before is done; drop the returned guard
    /// when this one is.
    pub async fn wait(self) -> tokio::sync::oneshot::Sender<()> {
        if let Some(prev) = self.prev {
            // An error only means the one before is done (or gone).
            let _ = prev.await;
        }
        self.done
    }
}

/// The kernel side of the daemon: carries out [`KernelOp`]s and remembers
/// what it installed.
#[derive(Debug, Clone)]
pub struct Kernel {
    handle: Handle,
    state: Arc<Mutex<State>>,
    routes: Option<Routes>,
    /// How long the inbound SAs of a rekeyed Child SA stay after it is
    /// removed ([`split_removal`]); zero: removed with it.
    rekeyed_delay: Duration,
    /// Operations talking to the kernel at once. Unbounded, 1,000 Child
    /// SAs set up together sent 1,000 ALLOCSPIs at once: their replies
    /// overran the XFRM socket and the lost ones were waited for forever
    /// (a lab run of 1,000 stopped after about 170 tunnels).
    in_flight: Arc<tokio::sync::Semaphore>,
    /// SPI allocations and releases have a lane of their own: behind
    /// hundreds of Child SA installs, the ALLOCSPI a new IKE_AUTH needs
    /// waited for them, so new tunnels started late.
    spi_in_flight: Arc<tokio::sync::Semaphore>,
}

/// How long a resync after an event overrun waits between its dump and
/// its second look at the record ([`Kernel::lost_expires`]).
const RESYNC_SETTLE: Duration = Duration::from_secs(1);

/// The acquires an overrun of the event socket may have lost: the larval
/// SAs the kernel holds while it waits for an SA of a reqid
/// ([`resync::pending_acquires`]).
async fn resync_acquires(handle: &Handle) -> Vec<AcquireEvent> {
    match handle.sa().dump().await {
        Ok(dump) => {
            let seen: Vec<resync::Seen> = dump.iter().filter_map(resync::Seen::of).collect();
            resync::pending_acquires(&seen)
                .into_iter()
                .map(|reqid| AcquireEvent {
                    reqid,
                    flow: "pending in the kernel after an event overrun".to_owned(),
                })
                .collect()
        }
        Err(e) => {
            warn!("reading the SAs back after an overrun: {e}");
            Vec::new()
        }
    }
}

/// strongSwan's `charon.delete_rekeyed_delay` default.
pub const DEFAULT_REKEYED_DELAY: Duration = Duration::from_secs(5);

/// Most kernel operations in flight at once (each is a few netlink
/// requests; 32 keeps the replies well inside the socket's buffer).
const MAX_IN_FLIGHT: usize = 32;
/// Most SPI allocations and releases in flight at once (one request and a
/// short reply each), beside [`MAX_IN_FLIGHT`].
const MAX_SPI_IN_FLIGHT: usize = 16;

/// The index of the network interface a child's policies are bound to
/// (`interface`); an interface that does not exist is an error (charon
/// would install the policies unbound).
pub fn ifindex(name: Option<&str>) -> Result<Option<i32>, String> {
    let Some(n) = name else {
        return Ok(None);
    };
    let i = nix::net::if_::if_nametoindex(n).map_err(|e| format!("interface {n}: {e}"))?;
    i32::try_from(i)
        .map(Some)
        .map_err(|_| format!("interface {n}: index {i} out of range"))
}

fn not_found(e: &xfrm_netlink::Error) -> bool {
    e.kernel_kind() == Some(KernelErrorKind::NotFound)
}

impl Kernel {
    /// A bridge over `handle`.
    pub fn new(handle: Handle) -> Self {
        Kernel {
            handle,
            state: Arc::new(Mutex::new(State::default())),
            routes: None,
            rekeyed_delay: DEFAULT_REKEYED_DELAY,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            spi_in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_SPI_IN_FLIGHT)),
        }
    }

    /// Keeps the inbound SAs of a Child SA replaced by a rekey for `delay`
    /// after its removal (zero: removes them with it).
    pub fn with_rekeyed_delay(mut self, delay: Duration) -> Self {
        self.rekeyed_delay = delay;
        self
    }

    /// Also installs routes for tunnel-mode children.
    pub fn with_routes(mut self, routes: Routes) -> Self {
        self.routes = Some(routes);
        self
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Removes what a previous iked left (crashed, killed): every SA and
    /// policy with our owner tag.
    pub async fn flush_leftovers(&self) -> Result<(), xfrm_netlink::Error> {
        let r = self.handle.flush_owned().await?;
        if r.sas > 0 || r.policies > 0 {
            warn!(
                "removed {} SAs and {} policies left in the kernel by a previous iked",
                r.sas, r.policies
            );
        } else {
            info!("no kernel state left by a previous iked");
        }
        Ok(())
    }

    /// Schedules one operation: call it in the order the endpoint issued
    /// the operations and run the futures (as tasks); operations on the
    /// same reqid then run one after the other in that order.
    pub fn schedule(&self, op: KernelOp) -> impl Future<Output = Option<KernelResult>> + use<> {
        let reqid = match &op {
            KernelOp::InstallChild { child, .. }
            | KernelOp::InstallRekeyed { child, .. }
            | KernelOp::InstallOutbound { child, .. } => Some(child.reqid),
            KernelOp::RemoveChild { child, .. } => Some(child.reqid),
            KernelOp::UpdateChild { child, .. } => Some(child.reqid),
            KernelOp::AllocSpi { .. }
            | KernelOp::ReleaseSpi { .. }
            | KernelOp::AllocCpi { .. }
            | KernelOp::ReleaseCpi { .. }
            | KernelOp::QueryTraffic { .. }
            | KernelOp::QueryLastUse { .. } => None,
        };
        // The IKE SA owning a child changes with an IKE rekey: keep the
        // records current, so that `has_children_of` waits for this.
        let owner = match &op {
            KernelOp::InstallRekeyed { child, .. } | KernelOp::InstallOutbound { child, .. } => {
                Some((child.id, child.reqid, child.ike_sa))
            }
            KernelOp::RemoveChild { child, .. } => Some((child.id, child.reqid, child.ike_sa)),
            _ => None,
        };
        if let Some((id, reqid, ike)) = owner {
            self.with(|s| {
                if let Some(r) = s.children.get_mut(&id) {
                    r.ike = Some(ike);
                }
                if let Some(r) = s.policies.get_mut(&reqid) {
                    r.ike = Some(ike);
                }
            });
        }
        let turn = reqid.map(|r| self.with(|s| s.order.take(r)));
        let lane = match &op {
            KernelOp::AllocSpi { .. }
            | KernelOp::ReleaseSpi { .. }
            | KernelOp::AllocCpi { .. }
            | KernelOp::ReleaseCpi { .. } => self.spi_in_flight.clone(),
            _ => self.in_flight.clone(),
        };
        let this = self.clone();
        async move {
            let done = match turn {
                Some(t) => Some(t.wait().await),
                None => None,
            };
            // After the turn: a permit holder never waits for a turn, so
            // the two cannot wait for each other.
            let permit = lane.acquire_owned().await.ok();
            // Boxed: the operation's state (about 3.7 KB, netlink requests
            // and route work) is made when it runs, not while it waits for
            // its turn and a slot; 1,000 tunnels set up at once had that
            // much per waiting operation (memory per tunnel).
            let r = Box::pin(this.execute(op)).await;
            drop(permit);
            drop(done);
            if let Some(k) = reqid {
                this.with(|s| s.order.settle(k));
            }
            r
        }
    }

    /// Carries out one operation now; the result to hand to the endpoint,
    /// if the operation has one. Use [`Kernel::schedule`] to keep the
    /// order of operations on one reqid.
    pub async fn execute(&self, op: KernelOp) -> Option<KernelResult> {
        match op {
            KernelOp::AllocSpi {
                req,
                protocol: p,
                local,
                remote,
            } => Some(KernelResult {
                req,
                outcome: self.alloc_spi(p, local.ip(), remote.ip()).await,
            }),
            KernelOp::AllocCpi { req, local, remote } => Some(KernelResult {
                req,
                outcome: self.alloc_cpi(local.ip(), remote.ip()).await,
            }),
            KernelOp::ReleaseCpi { local, cpi } => {
                self.release(SaId {
                    dst: local.ip(),
                    spi: u32::from(cpi),
                    protocol: Protocol::Comp,
                    mark: None,
                })
                .await;
                None
            }
            KernelOp::InstallChild { req, child } => Some(KernelResult {
                req,
                outcome: self
                    .install(&child, true, true)
                    .await
                    .map(|()| KernelOk::Done),
            }),
            KernelOp::InstallRekeyed {
                req,
                child,
                outbound,
            } => Some(KernelResult {
                req,
                outcome: self
                    .install(&child, outbound, false)
                    .await
                    .map(|()| KernelOk::Done),
            }),
            KernelOp::InstallOutbound { req, child } => Some(KernelResult {
                req,
                outcome: self.install_outbound(&child).await.map(|()| KernelOk::Done),
            }),
            KernelOp::RemoveChild { req, child } => {
                let outcome = self.remove(&child).await.map(|()| KernelOk::Done);
                Some(KernelResult { req, outcome })
            }
            KernelOp::QueryTraffic { req, sas } => {
                let mut sum: u64 = 0;
                for (p, spi, dst) in sas {
                    if let Some(u) = self.usage(dst, spi, p).await {
                        sum = sum.saturating_add(u.bytes);
                    }
                }
                Some(KernelResult {
                    req,
                    outcome: Ok(KernelOk::Traffic(sum)),
                })
            }
            KernelOp::QueryLastUse { req, reqid } => Some(KernelResult {
                req,
                outcome: self.last_use(reqid).await,
            }),
            KernelOp::UpdateChild { req, child } => Some(KernelResult {
                req,
                outcome: self.update(&child).await.map(|()| KernelOk::Done),
            }),
            KernelOp::ReleaseSpi {
                protocol: p,
                local,
                spi,
            } => {
                if let Ok(p) = protocol(p) {
                    self.release(SaId {
                        dst: local.ip(),
                        spi,
                        protocol: p,
                        mark: None,
                    })
                    .await;
                }
                None
            }
        }
    }

    async fn alloc_spi(
        &self,
        p: ProtocolId,
        local: IpAddr,
        remote: IpAddr,
    ) -> Result<KernelOk, String> {
        let p = protocol(p)?;
        let spi = self
            .handle
            .sa()
            .alloc_spi(remote, local, p, SPI_MIN, SPI_MAX, 0)
            .await
            .map_err(|e| e.to_string())?;
        self.with(|s| {
            s.larval.insert(SaId {
                dst: local,
                spi,
                protocol: p,
                mark: None,
            })
        });
        Ok(KernelOk::SpiAllocated(spi))
    }

    /// Our CPI for IPComp: ALLOCSPI for IPComp in charon's range.
    async fn alloc_cpi(&self, local: IpAddr, remote: IpAddr) -> Result<KernelOk, String> {
        let spi = self
            .handle
            .sa()
            .alloc_spi(remote, local, Protocol::Comp, CPI_MIN, CPI_MAX, 0)
            .await
            .map_err(|e| e.to_string())?;
        let id = SaId {
            dst: local,
            spi,
            protocol: Protocol::Comp,
            mark: None,
        };
        self.with(|s| s.larval.insert(id));
        match u16::try_from(spi) {
            Ok(cpi) => Ok(KernelOk::CpiAllocated(cpi)),
            Err(_) => {
                self.release(id).await;
                Err(format!(
                    "the kernel allocated CPI {spi:08x}, beyond 16 bits"
                ))
            }
        }
    }

    async fn release(&self, id: SaId) {
        self.with(|s| s.larval.remove(&id));
        match self.handle.sa().release_spi(id).await {
            Ok(()) => debug!("released SPI {:08x}", id.spi),
            Err(e) if not_found(&e) => {}
            Err(e) => warn!("releasing SPI {:08x}: {e}", id.spi),
        }
    }

    /// Installs the inbound SA of `c`, with `outbound` its outbound SA,
    /// with `policies` its policies (a new reqid; otherwise they are in).
    async fn install(
        &self,
        c: &ChildInstall,
        outbound: bool,
        policies: bool,
    ) -> Result<(), String> {
        let index = ifindex(c.kernel.interface.as_deref())?;
        let mut plan = plan_install_bound(c, index)?;
        if !policies {
            plan.policies.clear();
        }
        let mut done = Installed {
            ike: Some(c.ike_sa),
            ..Installed::default()
        };
        let r = self.install_plan(&plan, outbound, &mut done).await;
        match r {
            Ok(()) => {
                let larval = plan.sa_in.id();
                let larval_cpi = plan.comp.as_ref().map(|(c, _)| c.id());
                let pols = std::mem::take(&mut done.policies);
                done.source = Some(Arc::new(SaSource {
                    keys: SaKeys::of(c),
                    sa_in: Some(SaAddrs::of(c)),
                    sa_out: outbound.then(|| SaAddrs::of(c)),
                }));
                self.with(|s| {
                    s.larval.remove(&larval);
                    s.note_marks(&done.sas, false);
                    if let Some(id) = larval_cpi {
                        s.larval.remove(&id);
                    }
                    s.children.insert(c.id, done);
                    if policies {
                        s.policies.insert(
                            c.reqid,
                            Installed {
                                ike: Some(c.ike_sa),
                                policies: pols,
                                policy_source: PolicySource::of(c, index).ok().map(Arc::new),
                                ..Installed::default()
                            },
                        );
                    }
                });
                if let Some(r) = &self.routes {
                    r.child_installed(c).await;
                }
                Ok(())
            }
            Err(e) => {
                // A failed install leaves nothing behind (and a trap
                // whose policy it had taken over gets it back).
                self.undo(&done).await;
                if self.with(|s| !s.traps.is_empty())
                    && let Err(t) = self.restore_traps().await
                {
                    warn!("restoring trap policies: {t}");
                }
                Err(e)
            }
        }
    }

    /// Adds the outbound SA of a Child SA whose inbound SA is in.
    async fn install_outbound(&self, c: &ChildInstall) -> Result<(), String> {
        let plan = plan_install(c)?;
        if let Some((_, comp)) = &plan.comp {
            self.handle
                .sa()
                .add(comp.clone())
                .execute()
                .await
                .map_err(|e| format!("outbound IPComp SA {:04x}: {e}", comp.spi))?;
            let id = comp.id();
            self.with(|s| {
                s.children
                    .entry(c.id)
                    .or_insert_with(|| Installed {
                        ike: Some(c.ike_sa),
                        ..Installed::default()
                    })
                    .sas
                    .push(id)
            });
        }
        self.send_sa(&plan.sa_out, false, plan.hw_offload)
            .await
            .map_err(|e| format!("outbound SA {:08x}: {e}", plan.sa_out.spi))?;
        if let Err(e) = self.offloaded(&plan.sa_out, plan.hw_offload).await {
            let _ = self.handle.sa().delete(plan.sa_out.id()).await;
            return Err(e);
        }
        let id = plan.sa_out.id();
        self.with(|s| {
            s.note_marks(&[id], false);
            let r = s.children.entry(c.id).or_insert_with(|| Installed {
                ike: Some(c.ike_sa),
                ..Installed::default()
            });
            r.sas.push(id);
            let src = r.source.get_or_insert_with(|| {
                Arc::new(SaSource {
                    keys: SaKeys::of(c),
                    sa_in: None,
                    sa_out: None,
                })
            });
            Arc::make_mut(src).sa_out = Some(SaAddrs::of(c));
        });
        Ok(())
    }

    /// Moves an installed child to new addresses: `UPDSA` where an SA keeps
    /// its addresses (only the encapsulation ports change), a new SA in
    /// place of the old one where they change (with the old one's
    /// sequence numbers and replay bitmap), and then the tunnel endpoints
    /// of its reqid's policies.
    async fn update(&self, u: &ChildUpdate) -> Result<(), String> {
        let (child, pols) = self.with(|s| {
            (
                s.children.get(&u.id).cloned(),
                s.policies.get(&u.reqid).cloned(),
            )
        });
        let Some(mut child) = child else {
            return Err(format!("Child SA {} is not installed", u.id));
        };
        let sa_configs = match &child.source {
            Some(src) => src.sa_configs()?,
            None => Vec::new(),
        };
        let hw = child
            .source
            .as_ref()
            .map(|s| s.keys.hw_offload())
            .unwrap_or_default();
        if sa_configs.is_empty() {
            return Err(format!("Child SA {} is not installed", u.id));
        }
        if sa_configs.iter().any(|(_, c)| {
            c.src.is_ipv4() != u.remote.is_ipv4() || u.local.is_ipv4() != u.remote.is_ipv4()
        }) {
            return Err(format!(
                "cannot move Child SA {} to another address family ({} <=> {})",
                u.id, u.local, u.remote
            ));
        }
        let old = sa_configs.first().map(|(inbound, c)| {
            if *inbound {
                (c.dst, c.src)
            } else {
                (c.src, c.dst)
            }
        });
        let sa = self.handle.sa();
        let mut moved = Vec::new();
        for (inbound, old_sa) in &sa_configs {
            let new = moved_sa(old_sa, *inbound, u);
            if old_sa.src == new.src && old_sa.dst == new.dst {
                self.send_sa(&new, true, hw)
                    .await
                    .map_err(|e| format!("updating SA {:08x}: {e}", new.spi))?;
            } else {
                // The new SA goes on from the old one's sequence numbers:
                // started again at 0, the outbound one would be dropped
                // by the peer as replays until it passed the old count,
                // and the inbound one would take replays again.
                let state = match sa.get(old_sa.id()).await {
                    Ok(info) => info.replay_state,
                    Err(e) if not_found(&e) => {
                        debug!(
                            "SA {:08x} is gone: its replacement starts at sequence number 0",
                            old_sa.spi
                        );
                        None
                    }
                    Err(e) => {
                        return Err(format!("reading SA {:08x} to replace it: {e}", old_sa.spi));
                    }
                };
                match sa.delete(old_sa.id()).await {
                    Ok(()) => {}
                    Err(e) if not_found(&e) => {}
                    Err(e) => return Err(format!("replacing SA {:08x}: {e}", old_sa.spi)),
                }
                let replacement = match state {
                    Some(st) => new.clone().replay_state(st),
                    None => new.clone(),
                };
                self.send_sa(&replacement, false, hw)
                    .await
                    .map_err(|e| format!("replacing SA {:08x}: {e}", new.spi))?;
            }
            moved.push((*inbound, new));
        }
        child.sas = moved.iter().map(|(_, c)| c.id()).collect();
        let addrs = SaAddrs {
            local: u.local,
            remote: u.remote,
            encap: u.encap,
        };
        if let Some(src) = child.source.as_mut() {
            let src = Arc::make_mut(src);
            for (inbound, _) in &moved {
                if *inbound {
                    src.sa_in = Some(addrs);
                } else {
                    src.sa_out = Some(addrs);
                }
            }
        }
        self.with(|s| s.children.insert(u.id, child));
        if let (Some(mut pols), Some(old)) = (pols, old)
            && let Some(source) = pols.policy_source.clone()
        {
            let installed = source.policies()?;
            let to = (u.local.ip(), u.remote.ip());
            let new = moved_policies(&installed, old, to);
            if new != installed {
                for p in &new {
                    self.handle
                        .policy()
                        .update(p.clone())
                        .execute()
                        .await
                        .map_err(|e| {
                            format!(
                                "updating policy {} {} -> {}: {e}",
                                p.direction, p.selector.src, p.selector.dst
                            )
                        })?;
                }
                let moved = moved_addr(old, to);
                pols.policy_source = Some(Arc::new(PolicySource {
                    local: moved(source.local),
                    remote: moved(source.remote),
                    ..PolicySource::clone(&source)
                }));
                self.with(|s| s.policies.insert(u.reqid, pols));
            }
        }
        if let (Some(r), Some(old)) = (&self.routes, old)
            && old != (u.local.ip(), u.remote.ip())
        {
            r.child_moved(u.id, u.local.ip(), u.remote.ip()).await;
        }
        debug!(
            "Child SA {} moved to {} <=> {}{}",
            u.id,
            u.local,
            u.remote,
            if u.encap { " (ESP in UDP)" } else { "" }
        );
        Ok(())
    }

    async fn install_plan(
        &self,
        plan: &InstallPlan,
        outbound: bool,
        done: &mut Installed,
    ) -> Result<(), String> {
        let sa = self.handle.sa();
        // The inbound SPI (and CPI) is a larval SA from ALLOCSPI: fill it
        // in. The IPComp SA first, as charon.
        let inbound = plan.comp.iter().map(|(c, _)| c).chain([&plan.sa_in]);
        let hw = plan.hw_offload;
        for s in inbound {
            match self.send_sa(s, true, hw).await {
                Ok(()) => {}
                Err(e) if not_found(&e) => self
                    .send_sa(s, false, hw)
                    .await
                    .map_err(|e| format!("inbound {} SA {:08x}: {e}", s.protocol, s.spi))?,
                Err(e) => return Err(format!("inbound {} SA {:08x}: {e}", s.protocol, s.spi)),
            }
            done.sas.push(s.id());
            self.offloaded(s, hw).await?;
        }
        if outbound {
            if let Some((_, comp)) = &plan.comp {
                sa.add(comp.clone())
                    .execute()
                    .await
                    .map_err(|e| format!("outbound IPComp SA {:04x}: {e}", comp.spi))?;
                done.sas.push(comp.id());
            }
            self.send_sa(&plan.sa_out, false, hw)
                .await
                .map_err(|e| format!("outbound SA {:08x}: {e}", plan.sa_out.spi))?;
            done.sas.push(plan.sa_out.id());
            self.offloaded(&plan.sa_out, hw).await?;
        }
        let trapped: HashSet<PolicyId> =
            self.with(|s| s.traps.values().flatten().map(PolicyConfig::id).collect());
        for p in &plan.policies {
            let id = p.id();
            let policy = self.handle.policy();
            // A trap's policy is replaced in place (no moment without
            // one); it is the trap's again when the Child SA goes.
            let req = if trapped.contains(&id) {
                policy.update(p.clone())
            } else {
                policy.add(p.clone())
            };
            req.execute().await.map_err(|e| {
                format!(
                    "policy {} {} -> {}: {e}",
                    p.direction, p.selector.src, p.selector.dst
                )
            })?;
            done.policies.push(id);
        }
        Ok(())
    }

    /// Adds an SA (fills one in with `update`). A request for hardware
    /// offload that the kernel refuses is dropped with `hw_offload = auto`
    /// (the SA goes in without it, as charon's `auto`).
    async fn send_sa(
        &self,
        cfg: &SaConfig,
        update: bool,
        hw: HwOffload,
    ) -> Result<(), xfrm_netlink::Error> {
        let h = self.handle.sa();
        let req = |c: SaConfig| if update { h.update(c) } else { h.add(c) };
        match req(cfg.clone()).execute().await {
            Err(e) if hw == HwOffload::Auto && cfg.offload.is_some() && !not_found(&e) => {
                debug!(
                    "{} SA {:08x}: the kernel refused hardware offload ({e}); without it",
                    cfg.protocol, cfg.spi
                );
                let mut plain = cfg.clone();
                plain.offload = None;
                req(plain).execute().await
            }
            r => r,
        }
    }

    /// With `hw_offload = yes`, that the kernel offloads the SA `cfg`
    /// asked to: it leaves out a device that cannot offload without an
    /// error, so the SA is read back.
    async fn offloaded(&self, cfg: &SaConfig, hw: HwOffload) -> Result<(), String> {
        if hw != HwOffload::Yes || cfg.offload.is_none() {
            return Ok(());
        }
        let info =
            self.handle.sa().get(cfg.id()).await.map_err(|e| {
                format!("{} SA {:08x}: reading it back: {e}", cfg.protocol, cfg.spi)
            })?;
        match info.offload {
            Some(_) => Ok(()),
            None => Err(format!(
                "hw_offload = yes: the kernel installed {} SA {:08x} ({} -> {}) without \
                 hardware offload: the device the route between them leaves by cannot offload \
                 it (no ESP offload, or none for this algorithm or mode)",
                cfg.protocol, cfg.spi, cfg.src, cfg.dst
            )),
        }
    }

    /// Installs (or replaces) the trap policies of `reqid`: policies with
    /// a template and no SA, so that matching traffic makes the kernel
    /// send an ACQUIRE. Policies a Child SA holds stay as they are until
    /// it goes.
    pub async fn install_trap(
        &self,
        reqid: u32,
        policies: Vec<PolicyConfig>,
        routes_of: Option<&ChildInstall>,
    ) -> Result<(), String> {
        let old = self.with(|s| s.traps.insert(reqid, policies.clone()));
        if let Some(old) = old {
            let keep: HashSet<PolicyId> = policies.iter().map(PolicyConfig::id).collect();
            let gone: Vec<PolicyId> = old
                .iter()
                .map(PolicyConfig::id)
                .filter(|id| !keep.contains(id) && !self.held(id))
                .collect();
            self.undo(&Installed {
                policies: gone,
                ..Installed::default()
            })
            .await;
        }
        let r = self.restore_traps().await;
        if r.is_err() {
            // Nothing half-installed stays.
            self.remove_trap(reqid).await;
        } else if let (Some(routes), Some(c)) = (&self.routes, routes_of) {
            routes.child_installed(c).await;
        }
        r
    }

    /// Installs the policies of a `pass`/`drop` shunt named `key`
    /// (connection, child), replacing its previous ones if it has any. On
    /// an error nothing of it stays in the kernel.
    pub async fn install_shunt(
        &self,
        key: (String, String),
        policies: Vec<PolicyConfig>,
    ) -> Result<(), String> {
        self.remove_shunt(&key).await;
        let mut done = Vec::new();
        let mut error = None;
        for p in &policies {
            match self.handle.policy().add(p.clone()).execute().await {
                Ok(()) => done.push(p.id()),
                Err(e) => {
                    error = Some(format!("shunt policy {}: {e}", p.id()));
                    break;
                }
            }
        }
        if let Some(e) = error {
            self.undo(&Installed {
                policies: done,
                ..Installed::default()
            })
            .await;
            return Err(e);
        }
        self.with(|s| s.shunts.insert(key, policies));
        Ok(())
    }

    /// Removes the policies of the shunt `key`, if installed.
    pub async fn remove_shunt(&self, key: &(String, String)) {
        let Some(old) = self.with(|s| s.shunts.remove(key)) else {
            return;
        };
        self.undo(&Installed {
            policies: old.iter().map(PolicyConfig::id).collect(),
            ..Installed::default()
        })
        .await;
    }

    /// The installed shunts and their policies.
    pub fn shunts(&self) -> HashMap<(String, String), Vec<PolicyConfig>> {
        self.with(|s| s.shunts.clone())
    }

    /// Removes the trap policies of `reqid` (those no Child SA holds).
    pub async fn remove_trap(&self, reqid: u32) {
        let Some(old) = self.with(|s| s.traps.remove(&reqid)) else {
            return;
        };
        if let Some(r) = &self.routes {
            r.child_removed(trap_route_id(reqid)).await;
        }
        let gone: Vec<PolicyId> = old
            .iter()
            .map(PolicyConfig::id)
            .filter(|id| !self.held(id))
            .collect();
        self.undo(&Installed {
            policies: gone,
            ..Installed::default()
        })
        .await;
    }

    /// Whether a Child SA's policies include `id`.
    fn held(&self, id: &PolicyId) -> bool {
        self.with(|s| s.policies.values().any(|i| i.policies.contains(id)))
    }

    /// Puts every trap policy no Child SA holds into the kernel as the
    /// trap's (XFRM_MSG_UPDPOLICY: added, or replaced in place).
    async fn restore_traps(&self) -> Result<(), String> {
        let want: Vec<PolicyConfig> = self.with(|s| {
            let held: HashSet<PolicyId> = s
                .policies
                .values()
                .flat_map(|i| i.policies.iter().copied())
                .collect();
            s.traps
                .values()
                .flatten()
                .filter(|p| !held.contains(&p.id()))
                .cloned()
                .collect()
        });
        let mut errors = Vec::new();
        for p in want {
            if let Err(e) = self.handle.policy().update(p.clone()).execute().await {
                errors.push(format!(
                    "trap policy {} {} -> {}: {e}",
                    p.direction, p.selector.src, p.selector.dst
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Deletes what `inst` lists, policies first; errors are logged.
    async fn undo(&self, inst: &Installed) -> Vec<String> {
        let mut errors = Vec::new();
        for p in inst.policies.iter().rev() {
            match self.handle.policy().delete(*p).await {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => errors.push(format!(
                    "policy {} {} -> {}: {e}",
                    p.direction, p.selector.src, p.selector.dst
                )),
            }
        }
        for s in &inst.sas {
            match self.handle.sa().delete(*s).await {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => errors.push(format!("SA {:08x}: {e}", s.spi)),
            }
        }
        for e in &errors {
            warn!("removing kernel state: {e}");
        }
        errors
    }

    async fn remove(&self, c: &ChildRemove) -> Result<(), String> {
        // The record stays until the removal is done, so that `down`
        // waits for it (`has_children_of`).
        let (sas, pols) = self.with(|s| {
            (
                s.children.get(&c.id).cloned(),
                if c.policies {
                    s.policies.get(&c.reqid).cloned()
                } else {
                    None
                },
            )
        });
        let proto = protocol(c.protocol)?;
        let (local, remote) = (c.local.ip(), c.remote.ip());
        // Not installed by this bridge (or already removed): remove what
        // the request names, in case.
        let sas = sas.unwrap_or_else(|| {
            let k = &c.kernel;
            let id = |dst, spi, mark: Option<ike::sa::MarkPair>| SaId {
                dst,
                spi,
                protocol: proto,
                mark: mark.map(|m| xfrm_netlink::Mark {
                    value: m.value,
                    mask: m.mask,
                }),
            };
            let mut sas = vec![id(local, c.spi_in, k.mark_in.filter(|_| k.mark_in_sa))];
            if c.outbound {
                sas.push(id(remote, c.spi_out, k.mark_out));
            }
            Installed {
                ike: Some(c.ike_sa),
                sas,
                ..Installed::default()
            }
        });
        let pols = match pols {
            Some(p) => p,
            None if c.policies => Installed {
                ike: Some(c.ike_sa),
                policies: plan_policies(&PolicyPlan {
                    mode: c.mode,
                    proto,
                    local,
                    remote,
                    local_ts: &c.local_ts,
                    remote_ts: &c.remote_ts,
                    reqid: c.reqid,
                    kernel: &c.kernel,
                    ifindex: ifindex(c.kernel.interface.as_deref()).unwrap_or(None),
                    routed: false,
                })
                .unwrap_or_default()
                .iter()
                .map(PolicyConfig::id)
                .collect(),
                ..Installed::default()
            },
            None => Installed::default(),
        };
        if let Some(r) = &self.routes {
            r.child_removed(c.id).await;
        }
        let keep = !c.policies && !self.rekeyed_delay.is_zero();
        let (now, later) = split_removal(&sas.sas, local, keep);
        // With the policies go the inbound SAs still kept of the reqid's
        // earlier Child SAs.
        let kept = if c.policies {
            self.with(|s| {
                let ids: Vec<SaId> = s
                    .lingering
                    .iter()
                    .filter(|(_, r)| **r == c.reqid)
                    .map(|(id, _)| *id)
                    .collect();
                for id in &ids {
                    s.lingering.remove(id);
                }
                ids
            })
        } else {
            Vec::new()
        };
        // Policies first: no packet may meet a policy without its SA.
        // Those of a trap are not deleted but given back to it (replaced
        // in place, so traffic keeps meeting a policy and triggers the
        // next ACQUIRE).
        let trapped: HashSet<PolicyId> =
            self.with(|s| s.traps.values().flatten().map(PolicyConfig::id).collect());
        let pols = Installed {
            policies: pols
                .policies
                .into_iter()
                .filter(|p| !trapped.contains(p))
                .collect(),
            ..pols
        };
        let mut errors = self.undo(&pols).await;
        self.with(|s| {
            if c.policies {
                s.policies.remove(&c.reqid);
            }
        });
        // Read again: a trap may have been added meanwhile (an action
        // after this Child SA's end).
        if c.policies
            && self.with(|s| !s.traps.is_empty())
            && let Err(e) = self.restore_traps().await
        {
            errors.push(e);
        }
        errors.extend(
            self.undo(&Installed {
                sas: now.into_iter().chain(kept).collect(),
                ..Installed::default()
            })
            .await,
        );
        self.with(|s| {
            if let Some(i) = s.children.remove(&c.id) {
                s.note_marks(&i.sas, true);
            }
            if c.policies {
                s.order.forget(c.reqid);
            }
            for id in &later {
                s.lingering.insert(*id, c.reqid);
            }
        });
        for id in later {
            debug!(
                "keeping inbound SA {:08x} of rekeyed CHILD SA {} for {:?}",
                id.spi, c.id, self.rekeyed_delay
            );
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(this.rekeyed_delay).await;
                // Gone already if the policies went (or at shutdown).
                if this.with(|s| s.lingering.remove(&id).is_some()) {
                    this.undo(&Installed {
                        sas: vec![id],
                        ..Installed::default()
                    })
                    .await;
                    debug!("removed inbound SA {:08x} of a rekeyed CHILD SA", id.spi);
                }
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Whether kernel state of any child of `ike` is still installed.
    pub fn has_children_of(&self, ike: IkeSaId) -> bool {
        self.with(|s| {
            s.children.values().any(|i| i.ike == Some(ike))
                || s.policies.values().any(|i| i.ike == Some(ike))
        })
    }

    /// Removes everything this bridge installed and frees reserved SPIs
    /// (shutdown).
    pub async fn remove_all(&self) {
        let (mut children, larval) = self.with(|s| {
            let mut all: Vec<Installed> = s.policies.drain().map(|(_, i)| i).collect();
            all.extend(s.traps.drain().map(|(_, t)| Installed {
                policies: t.iter().map(PolicyConfig::id).collect(),
                ..Installed::default()
            }));
            all.extend(s.shunts.drain().map(|(_, t)| Installed {
                policies: t.iter().map(PolicyConfig::id).collect(),
                ..Installed::default()
            }));
            all.extend(s.children.drain().map(|(_, i)| i));
            all.push(Installed {
                sas: s.lingering.drain().map(|(id, _)| id).collect(),
                ..Installed::default()
            });
            (all, s.larval.drain().collect::<Vec<_>>())
        });
        if let Some(r) = &self.routes {
            r.remove_all().await;
        }
        let (mut sas, mut policies) = (0, 0);
        for inst in &mut children {
            sas = inst.sas.len().saturating_add(sas);
            policies = inst.policies.len().saturating_add(policies);
            self.undo(inst).await;
        }
        for id in larval {
            self.release(id).await;
        }
        if sas > 0 || policies > 0 {
            info!("removed {sas} SAs and {policies} policies from the kernel");
        }
    }

    /// Forwards the kernel's expire events of SAs iked installed, as the
    /// endpoint's [`KernelEvent`]s, until `tx` closes.
    /// Forwards the kernel's ACQUIREs of policies iked installed (trap
    /// policies): the reqid of the template that needs an SA, and the
    /// packet's flow for the log.
    pub fn forward_acquires(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<AcquireEvent>,
    ) -> Result<(), xfrm_netlink::Error> {
        let mut events = self.handle.events(EventGroups {
            acquire: true,
            ..EventGroups::default()
        })?;
        let handle = self.handle.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.next_event().await {
                let a = match ev {
                    Ok(XfrmEvent::Acquire(a)) => a,
                    Ok(XfrmEvent::Overrun) => {
                        warn!(
                            "kernel event buffer overrun: reading the SAs back for lost acquires"
                        );
                        for a in resync_acquires(&handle).await {
                            if tx.send(a).is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        debug!("kernel acquire event: {e}");
                        continue;
                    }
                };
                let Some(reqid) = a.template.map(|t| t.reqid).filter(|r| *r != 0) else {
                    debug!("acquire without a reqid: {a:?}");
                    continue;
                };
                let flow = a
                    .flow
                    .map(|f| format!("{} -> {}", f.src, f.dst))
                    .unwrap_or_else(|| format!("{} -> {}", a.src, a.dst));
                if tx.send(AcquireEvent { reqid, flow }).is_err() {
                    break;
                }
            }
        });
        Ok(())
    }

    pub fn forward_expires(
        &self,
        tx: tokio::sync::mpsc::UnboundedSender<KernelEvent>,
    ) -> Result<(), xfrm_netlink::Error> {
        let mut events = self.handle.events(EventGroups {
            expire: true,
            ..EventGroups::default()
        })?;
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.next_event().await {
                let ev = match ev {
                    Ok(XfrmEvent::Expire(e)) => e,
                    Ok(XfrmEvent::Overrun) => {
                        warn!("kernel event buffer overrun: reading the SAs back for lost expires");
                        for k in this.lost_expires().await {
                            if tx.send(k).is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        debug!("kernel event: {e}");
                        continue;
                    }
                };
                if !ev.sa.owned {
                    continue;
                }
                let (protocol, p) = match ev.sa.protocol {
                    Some(Protocol::Esp) => (ProtocolId::ESP, Protocol::Esp),
                    Some(Protocol::Ah) => (ProtocolId::AH, Protocol::Ah),
                    _ => continue,
                };
                // The inbound SAs of rekeyed Child SAs that stay for
                // --delete-rekeyed-delay reach their limits too: ours,
                // but no Child SA's any more.
                if this.with(|s| s.kept_expire(p, ev.sa.spi, ev.sa.dst, ev.hard)) {
                    tracing::trace!(
                        "{} expire of kept inbound SA {:08x} of a rekeyed CHILD SA, ignored",
                        if ev.hard { "hard" } else { "soft" },
                        ev.sa.spi
                    );
                    continue;
                }
                let k = KernelEvent::Expire {
                    protocol,
                    spi: ev.sa.spi,
                    dst: ev.sa.dst,
                    hard: ev.hard,
                };
                if tx.send(k).is_err() {
                    break;
                }
            }
        });
        Ok(())
    }

    /// The expires an overrun of the event socket may have lost, made up
    /// from a dump of the SAs ([`resync::lost_expires`]).
    async fn lost_expires(&self) -> Vec<KernelEvent> {
        let recorded = |s: &mut State| -> Vec<SaId> {
            s.children
                .values()
                .flat_map(|i| i.sas.iter().copied())
                .collect()
        };
        let before = self.with(recorded);
        let dump = match self.handle.sa().dump().await {
            Ok(d) => d,
            Err(e) => {
                warn!("reading the SAs back after an overrun: {e}");
                return Vec::new();
            }
        };
        // A removal running during the dump takes its SAs off the record
        // only after they left the kernel: let it finish.
        tokio::time::sleep(RESYNC_SETTLE).await;
        let after = self.with(recorded);
        let seen: Vec<resync::Seen> = dump
            .iter()
            .filter(|s| s.owned)
            .filter_map(resync::Seen::of)
            .collect();
        let lost = resync::lost_expires(&before, &after, &seen);
        if !lost.is_empty() {
            info!("{} SA expires lost in the overrun, made up", lost.len());
        }
        lost.into_iter()
            .filter_map(|l| {
                let protocol = match l.protocol {
                    Protocol::Esp => ProtocolId::ESP,
                    Protocol::Ah => ProtocolId::AH,
                    Protocol::Comp => return None,
                };
                Some(KernelEvent::Expire {
                    protocol,
                    spi: l.spi,
                    dst: l.dst,
                    hard: l.hard,
                })
            })
            .collect()
    }

    /// Bytes and packets of an SA, if it can be read.
    pub async fn usage(&self, dst: IpAddr, spi: u32, p: ProtocolId) -> Option<Usage> {
        let protocol = protocol(p).ok()?;
        // The SA's mark is part of its key: as installed.
        let mark = self.with(|s| s.sa_marks.get(&(dst, spi, protocol)).copied());
        match self
            .handle
            .sa()
            .get(SaId {
                dst,
                spi,
                protocol,
                mark,
            })
            .await
        {
            Ok(info) => Some(info.usage),
            Err(e) => {
                debug!("reading SA {spi:08x}: {e}");
                None
            }
        }
    }

    /// How long ago the policies of `reqid` were last used (the latest
    /// `use_time` of its in, out and forward policies, as charon's
    /// child_sa.c `update_usetime` reads them). A policy that cannot be
    /// read is left out, as charon does; an error if none could be.
    async fn last_use(&self, reqid: u32) -> Result<KernelOk, String> {
        let ids = self
            .with(|s| s.policies.get(&reqid).map(|i| i.policies.clone()))
            .ok_or_else(|| format!("no policies of reqid {reqid}"))?;
        let mut latest: Option<u64> = None;
        let mut error = None;
        for id in ids {
            match self.handle.policy().get(id).await {
                Ok(info) => latest = Some(latest.unwrap_or(0).max(info.usage.use_time)),
                Err(e) => error = Some(e.to_string()),
            }
        }
        match (latest, error) {
            (Some(t), _) => Ok(KernelOk::Idle(idle_since(t, std::time::SystemTime::now()))),
            (None, Some(e)) => Err(e),
            (None, None) => Err(format!("reqid {reqid} has no policies")),
        }
    }
}

/// The time since `use_time` (the kernel's whole seconds since the epoch;
/// 0: never used) at `now`, counted from the end of that second so that
/// it is never more than the true time since (an `inactivity` never ends
/// early); zero if the clock is behind it.
pub fn idle_since(use_time: u64, now: std::time::SystemTime) -> Option<Duration> {
    if use_time == 0 {
        return None;
    }
    let used = std::time::UNIX_EPOCH.checked_add(Duration::from_secs(use_time.checked_add(1)?))?;
    Some(now.duration_since(used).unwrap_or(Duration::ZERO))
}

pub mod resync;

#[cfg(test)]
mod tests;
