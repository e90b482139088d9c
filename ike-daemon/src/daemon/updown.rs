//! A child's `updown` command, run as strongSwan's updown plugin runs it
//! (`src/libcharon/plugins/updown/updown_listener.c`):
//!
//! - once per pair of traffic selectors (ours × the peer's, each list in
//!   strongSwan's order, leaving out pairs of different families or of two
//!   different protocols) when the Child SA is installed (`up-*`) and when
//!   it is deleted (`down-*`); not when it is rekeyed (its successor takes
//!   over, the script is not called), nor for the old SA a rekey replaced;
//! - as `/bin/sh -c "2>&1 COMMAND"` with only this environment: `PATH`
//!   (iked's), `PLUTO_VERSION=1.1`, `PLUTO_VERB` (`up-client`,
//!   `down-client`, `up-host`, `down-host`, each with `-v6` for IPv6;
//!   `host` when our selector is our own address), `PLUTO_CONNECTION` (the
//!   child's name), `PLUTO_INTERFACE` (the interface of the route toward
//!   the peer, found at `up` and kept for `down`; `unknown` if none),
//!   `PLUTO_REQID`, `PLUTO_PROTO` (`esp`, `ah`), `PLUTO_UNIQUEID` (the IKE
//!   SA's number), `PLUTO_ME`, `PLUTO_MY_ID`, `PLUTO_MY_CLIENT`
//!   (address/prefix; a range that is no prefix is widened to the smallest
//!   prefix that holds its first address's bits in common),
//!   `PLUTO_MY_PORT` (`port`, `from:to`, the ICMP type), `PLUTO_MY_PROTOCOL`,
//!   the same five for `PEER` (its port: the ICMP code), `PLUTO_UDP_ENC`
//!   (the peer's port, with ESP in UDP) and `PLUTO_HOST_ACCESS=1`
//!   (`hostaccess`), and, when set (not 0), `PLUTO_MARK_IN`/`OUT`
//!   (`value/0xmask`) and `PLUTO_IF_ID_IN`/`OUT`: the configuration's fixed
//!   values (`%unique` ones are allocated with the Child SA; whoever
//!   allocates them sets [`Tunnel::marks`] / [`Tunnel::if_ids`]), and
//!   `PLUTO_IPCOMP=1` with IPComp. Virtual IPs are not passed: iked has
//!   none yet.
//!
//! Unlike charon, which runs the script in the thread that handles the IKE
//! SA and waits for it, iked runs it as a task off the event loop: the
//! calls of one reqid run one after the other (a `down` never overtakes
//! its `up`), each bounded by a timeout after which its process group is
//! killed. Its output is logged line by line, a failure with its exit
//! status. An `up` runs once the kernel operations scheduled before it
//! (the Child SA's) are done, a `down` likewise after the removal.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use ike::config::{ChildPolicy, Config, ConnPolicy, IdValue, MarkCfg};
use ike::display::IdDisplay;
use ike::sa::{ChildId, ChildSaInfo, IkeSaId, IkeSaInfo};
use ike::wire::TrafficSelector;
use ike::wire::codes::ProtocolId;

use super::AfterOps;
use super::routes::choose_next_hop;

/// How long a call may run before its process group is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What one installed Child SA with an `updown` command passes to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    /// The child's name (charon's `PLUTO_CONNECTION`).
    pub name: String,
    /// The command line.
    pub command: String,
    /// `hostaccess`.
    pub hostaccess: bool,
    pub reqid: u32,
    pub protocol: ProtocolId,
    /// The IKE SA's number.
    pub ike: IkeSaId,
    pub me: IpAddr,
    pub peer: SocketAddr,
    pub my_id: String,
    pub peer_id: String,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    /// ESP in UDP (NAT detected or forced).
    pub encap: bool,
    /// The Child SA's marks (value, mask) and XFRM interface ids per
    /// direction, in and out; `None` where charon's would be 0 (unset),
    /// which charon does not pass.
    pub marks: Marks,
    pub if_ids: IfIds,
    /// IPComp was negotiated.
    pub ipcomp: bool,
    /// Our virtual IPs and the peer's (`PLUTO_MY_SOURCEIP`,
    /// `PLUTO_PEER_SOURCEIP`).
    pub my_vips: Vec<IpAddr>,
    pub peer_vips: Vec<IpAddr>,
}

impl Tunnel {
    /// The Child SA `child` of `sa` if its configuration has an `updown`
    /// command.
    pub fn of(config: &Config, sa: &IkeSaInfo, child: &ChildSaInfo) -> Option<Tunnel> {
        let conn = sa.peer.as_deref()?;
        let conn = config.connections().iter().find(|c| c.name == conn)?;
        let cfg = conn.children.iter().find(|c| c.name == child.name)?;
        let u = cfg.updown.as_ref()?;
        let id = |i: &Option<ike::wire::Identification>| {
            i.as_ref()
                .map(|i| printable(&IdDisplay(i).to_string()))
                .unwrap_or_else(|| "%any".to_owned())
        };
        let (marks, if_ids) = configured_ids(&cfg.policy, &conn.policy);
        Some(Tunnel {
            marks,
            if_ids,
            ipcomp: child.ipcomp,
            name: child.name.clone(),
            command: u.command.clone(),
            hostaccess: u.hostaccess,
            reqid: child.reqid,
            protocol: child.protocol,
            ike: sa.id,
            me: sa.local_addr.ip(),
            peer: sa.remote_addr,
            my_id: id(&sa.local_id),
            peer_id: id(&sa.remote_id),
            local_ts: child.local_ts.clone(),
            remote_ts: child.remote_ts.clone(),
            encap: sa.encap,
            my_vips: sa.local_vips.clone(),
            peer_vips: sa.remote_vips.clone(),
        })
    }
}

/// Marks (value, mask), in and out; `None`: unset (0).
type Marks = [Option<(u32, u32)>; 2];
/// XFRM interface ids, in and out; `None`: unset (0).
type IfIds = [Option<u32>; 2];

/// The marks and interface ids (in, out) of a child's configuration that
/// are fixed and not 0 (a child's if_id over its connection's); `%unique`
/// ones are allocated with the Child SA and are not known here.
fn configured_ids(child: &ChildPolicy, conn: &ConnPolicy) -> (Marks, IfIds) {
    let mark = |m: Option<MarkCfg>| match m {
        Some(MarkCfg {
            value: IdValue::Fixed(v),
            mask,
        }) if v != 0 => Some((v, mask)),
        _ => None,
    };
    let if_id = |child: Option<IdValue>, conn: Option<IdValue>| match child.or(conn) {
        Some(IdValue::Fixed(v)) if v != 0 => Some(v),
        _ => None,
    };
    (
        [mark(child.mark_in), mark(child.mark_out)],
        [
            if_id(child.if_id_in, conn.if_id_in),
            if_id(child.if_id_out, conn.if_id_out),
        ],
    )
}

/// A peer's identity is its text: non-printable characters become `?`
/// (as charon prints identities).
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// An IPv4 or IPv6 selector as addresses, protocol and ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ts {
    start: IpAddr,
    end: IpAddr,
    protocol: u8,
    from_port: u16,
    to_port: u16,
}

impl Ts {
    fn of(ts: &TrafficSelector) -> Option<Ts> {
        match ts {
            TrafficSelector::Ipv4(r) => Some(Ts {
                start: r.start.into(),
                end: r.end.into(),
                protocol: r.ip_protocol,
                from_port: r.start_port,
                to_port: r.end_port,
            }),
            TrafficSelector::Ipv6(r) => Some(Ts {
                start: r.start.into(),
                end: r.end.into(),
                protocol: r.ip_protocol,
                from_port: r.start_port,
                to_port: r.end_port,
            }),
            TrafficSelector::Unknown { .. } => None,
        }
    }

    fn v6(&self) -> bool {
        self.start.is_ipv6()
    }

    /// strongSwan's `traffic_selector_cmp`: IPv4 first, lower start first,
    /// larger range first, lower protocol, lower first port, larger port
    /// range first.
    fn cmp(&self, o: &Ts) -> Ordering {
        self.v6()
            .cmp(&o.v6())
            .then_with(|| self.start.cmp(&o.start))
            .then_with(|| o.end.cmp(&self.end))
            .then_with(|| self.protocol.cmp(&o.protocol))
            .then_with(|| self.from_port.cmp(&o.from_port))
            .then_with(|| o.to_port.cmp(&self.to_port))
    }

    /// strongSwan's `is_host`: exactly `addr`.
    fn is_host(&self, addr: IpAddr) -> bool {
        self.start == addr && self.end == addr
    }

    /// strongSwan's `to_subnet`: the first address with the bits the
    /// start and end share, and their number; `false` when the range is
    /// not exactly that prefix.
    fn subnet(self) -> (IpAddr, u8, bool) {
        let (s, e, bits) = match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => (
                u128::from(u32::from(s)) << 96,
                u128::from(u32::from(e)) << 96,
                32u8,
            ),
            (IpAddr::V6(s), IpAddr::V6(e)) => (u128::from(s), u128::from(e), 128u8),
            // A wire selector has one family.
            _ => return (self.start, 0, false),
        };
        let common = u8::try_from((s ^ e).leading_zeros())
            .unwrap_or(128)
            .min(bits);
        let mask = u128::MAX
            .checked_shl(128u32.saturating_sub(u32::from(common)))
            .unwrap_or(0);
        let net = s & mask;
        let family_bits = u128::MAX
            .checked_shl(128u32.saturating_sub(u32::from(bits)))
            .unwrap_or(0);
        let exact = s == net && e == (net | (!mask & family_bits));
        let addr = if bits == 32 {
            IpAddr::V4(std::net::Ipv4Addr::from(
                u32::try_from(net >> 96).unwrap_or(0),
            ))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(net))
        };
        (addr, common, exact)
    }
}

/// strongSwan's `get_port`: for ICMP (either selector's protocol), our
/// side's value is the type and the peer's the code (from the larger
/// first port of the two); else `port` or `from:to`.
fn port_text(me: &Ts, other: &Ts, local: bool) -> String {
    let proto = me.protocol.max(other.protocol);
    if proto == 1 || proto == 58 {
        let port = me.from_port.max(other.from_port);
        let [ty, code] = port.to_be_bytes();
        return if local { ty } else { code }.to_string();
    }
    let t = if local { me } else { other };
    if t.from_port == t.to_port || (t.from_port == 0 && t.to_port == 65535) {
        t.from_port.to_string()
    } else {
        format!("{}:{}", t.from_port, t.to_port)
    }
}

/// One call of the command: its environment and a description for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// `PLUTO_VERB` and the selectors, for the log.
    pub what: String,
    /// The variables after `PATH`, in charon's order; `PLUTO_INTERFACE`'s
    /// value is filled in when the call runs.
    pub env: Vec<(String, String)>,
}

/// The calls for `t` going up or down, one per pair of selectors, with
/// strongSwan's environment (without `PATH`).
pub fn calls(t: &Tunnel, up: bool) -> Vec<Call> {
    let sorted = |v: &[TrafficSelector]| {
        let mut v: Vec<Ts> = v.iter().filter_map(Ts::of).collect();
        v.sort_by(Ts::cmp);
        v
    };
    let (mine, theirs) = (sorted(&t.local_ts), sorted(&t.remote_ts));
    let mut out = Vec::new();
    for my in &mine {
        for other in &theirs {
            if my.v6() != other.v6()
                || (my.protocol != 0 && other.protocol != 0 && my.protocol != other.protocol)
            {
                continue;
            }
            out.push(call(t, up, my, other));
        }
    }
    out
}

fn call(t: &Tunnel, up: bool, my: &Ts, other: &Ts) -> Call {
    let is_host = my.is_host(t.me);
    let v6 = if is_host { t.me.is_ipv6() } else { my.v6() };
    let verb = format!(
        "{}{}{}",
        if up { "up" } else { "down" },
        if is_host { "-host" } else { "-client" },
        if v6 { "-v6" } else { "" }
    );
    let client = |ts: &Ts, side: &str| {
        let (net, len, exact) = ts.subnet();
        if !exact {
            debug!(
                "updown approximates {side} TS {}-{} by next larger subnet",
                ts.start, ts.end
            );
        }
        format!("{net}/{len}")
    };
    let my_client = client(my, "local");
    let peer_client = client(other, "remote");
    let mut env: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: String| env.push((k.to_owned(), v));
    push("PLUTO_VERSION", "1.1".into());
    push("PLUTO_VERB", verb.clone());
    push("PLUTO_CONNECTION", t.name.clone());
    push("PLUTO_INTERFACE", "unknown".into());
    push("PLUTO_REQID", t.reqid.to_string());
    push(
        "PLUTO_PROTO",
        if t.protocol == ProtocolId::ESP {
            "esp"
        } else {
            "ah"
        }
        .into(),
    );
    push("PLUTO_UNIQUEID", t.ike.0.to_string());
    push("PLUTO_ME", t.me.to_string());
    push("PLUTO_MY_ID", t.my_id.clone());
    push("PLUTO_MY_CLIENT", my_client.clone());
    push("PLUTO_MY_PORT", port_text(my, other, true));
    push("PLUTO_MY_PROTOCOL", my.protocol.to_string());
    push("PLUTO_PEER", t.peer.ip().to_string());
    push("PLUTO_PEER_ID", t.peer_id.clone());
    push("PLUTO_PEER_CLIENT", peer_client.clone());
    push("PLUTO_PEER_PORT", port_text(my, other, false));
    push("PLUTO_PEER_PROTOCOL", other.protocol.to_string());
    for (dir, m) in ["IN", "OUT"].iter().zip(t.marks) {
        if let Some((value, mask)) = m {
            push(
                &format!("PLUTO_MARK_{dir}"),
                format!("{value}/0x{mask:08x}"),
            );
        }
    }
    for (dir, i) in ["IN", "OUT"].iter().zip(t.if_ids) {
        if let Some(i) = i {
            push(&format!("PLUTO_IF_ID_{dir}"), i.to_string());
        }
    }
    if t.encap {
        push("PLUTO_UDP_ENC", t.peer.port().to_string());
    }
    if t.ipcomp {
        push("PLUTO_IPCOMP", "1".into());
    }
    if t.hostaccess {
        push("PLUTO_HOST_ACCESS", "1".into());
    }
    // As charon's updown plugin: the first virtual IP under the legacy
    // name, then each per family, numbered from 1.
    for (side, vips) in [("MY", &t.my_vips), ("PEER", &t.peer_vips)] {
        if let Some(first) = vips.first() {
            push(&format!("PLUTO_{side}_SOURCEIP"), first.to_string());
        }
        let (mut v4, mut v6) = (0u32, 0u32);
        for v in vips.iter() {
            let (fam, n) = if v.is_ipv4() {
                v4 = v4.saturating_add(1);
                (4, v4)
            } else {
                v6 = v6.saturating_add(1);
                (6, v6)
            };
            push(&format!("PLUTO_{side}_SOURCEIP{fam}_{n}"), v.to_string());
        }
    }
    Call {
        what: format!("{verb} {my_client} === {peer_client}"),
        env,
    }
}

/// The interface of the route toward `peer` (charon's
/// `get_nexthop(other, me)`), by its name.
async fn interface_toward(handle: &rtnetlink::Handle, peer: IpAddr) -> Option<String> {
    use rtnetlink::RouteMessageBuilder;
    let dump = if peer.is_ipv6() {
        RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
    } else {
        RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
    };
    let msgs: Vec<_> = handle
        .route()
        .get(dump)
        .execute()
        .try_collect()
        .await
        .ok()?;
    let routes: Vec<_> = msgs.iter().map(super::routes::kernel_route).collect();
    let (_, oif) = choose_next_hop(peer, None, &routes);
    let links: Vec<_> = handle
        .link()
        .get()
        .match_index(oif?)
        .execute()
        .try_collect()
        .await
        .ok()?;
    links.iter().find_map(|m| {
        m.attributes.iter().find_map(|a| match a {
            rtnetlink::packet_route::link::LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
    })
}

/// The interface a Child SA's `up` found, for its `down`.
type Iface = Arc<Mutex<Option<String>>>;

/// A batch of calls of one Child SA, in order.
#[derive(Debug)]
struct Job {
    /// `net{3}`: the child, for the log.
    child: String,
    command: String,
    calls: Vec<Call>,
    /// Where to look up the interface (`up`), or `None` (`down`: the
    /// value found at `up`).
    lookup: Option<IpAddr>,
    /// The interface, shared by the `up` and `down` of the Child SA.
    iface: Iface,
}

/// The installed Child SAs with an `updown`, their calls and the tasks
/// that run them.
#[derive(Debug)]
pub struct Updowns {
    timeout: Duration,
    /// Installed Child SAs and the interface their `up` found.
    tunnels: HashMap<ChildId, (Tunnel, Iface)>,
    /// Jobs waiting for the kernel operations scheduled before them.
    held: AfterOps<(u32, Job)>,
    /// The last task of each reqid (the next one awaits it first).
    chains: HashMap<u32, JoinHandle<()>>,
    /// For `PLUTO_INTERFACE`; one lookup at a time (concurrent dumps on
    /// one netlink socket fail with EBUSY).
    handle: Option<Arc<tokio::sync::Mutex<rtnetlink::Handle>>>,
}

impl Updowns {
    /// Runs each call for at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            tunnels: HashMap::new(),
            held: AfterOps::default(),
            chains: HashMap::new(),
            handle: None,
        }
    }

    fn hold(&mut self, before: u64, child: ChildId, t: &Tunnel, up: bool, iface: Iface) {
        let calls = calls(t, up);
        if calls.is_empty() {
            return;
        }
        let job = Job {
            child: format!("{}{child}", t.name),
            command: t.command.clone(),
            calls,
            lookup: up.then_some(t.peer.ip()),
            iface,
        };
        self.held.hold(before, (t.reqid, job));
    }

    /// Child SA `child` of `sa` is installed: its `up` calls, once the
    /// kernel operations numbered below `before` are done.
    pub fn installed(&mut self, config: &Config, sa: &IkeSaInfo, child: &ChildSaInfo, before: u64) {
        if let Some(t) = Tunnel::of(config, sa, child) {
            self.add(child.id, t, before);
        }
    }

    /// Child SA `child` with `t` is installed.
    fn add(&mut self, child: ChildId, t: Tunnel, before: u64) {
        let iface = Arc::new(Mutex::new(None));
        self.hold(before, child, &t, true, iface.clone());
        self.tunnels.insert(child, (t, iface));
    }

    /// Child SA `child` is deleted: its `down` calls.
    pub fn deleted(&mut self, child: ChildId, before: u64) {
        if let Some((t, iface)) = self.tunnels.remove(&child) {
            self.hold(before, child, &t, false, iface);
        }
    }

    /// Whether Child SA `child` has an `updown` (is tracked here).
    pub fn has(&self, child: ChildId) -> bool {
        self.tunnels.contains_key(&child)
    }

    /// Whether no installed Child SA has an `updown`.
    pub fn is_empty(&self) -> bool {
        self.tunnels.is_empty()
    }

    /// `new` replaces `old` (a rekey): no call; `new`'s `down` is `old`'s
    /// with `new`'s selectors.
    pub fn rekeyed(&mut self, old: ChildId, new: Option<&ChildSaInfo>, new_id: ChildId) {
        if let Some((mut t, iface)) = self.tunnels.remove(&old) {
            if let Some(c) = new {
                t.local_ts = c.local_ts.clone();
                t.remote_ts = c.remote_ts.clone();
                t.reqid = c.reqid;
            }
            self.tunnels.insert(new_id, (t, iface));
        }
    }

    /// IKE SA `new` replaces `old` and has its Child SAs: their `down`
    /// names `new` (as charon's, whose Child SAs move).
    pub fn ike_rekeyed(&mut self, old: IkeSaId, new: Option<&IkeSaInfo>, new_id: IkeSaId) {
        for (t, _) in self.tunnels.values_mut() {
            if t.ike == old {
                t.ike = new_id;
                if let Some(sa) = new {
                    t.me = sa.local_addr.ip();
                    t.peer = sa.remote_addr;
                    t.encap = sa.encap;
                }
            }
        }
    }

    /// Starts the held jobs whose kernel operations are done (`oldest`:
    /// the lowest operation number still running).
    pub fn release(&mut self, oldest: Option<u64>) {
        for (reqid, job) in self.held.release(oldest) {
            if self.handle.is_none() && job.lookup.is_some() {
                match rtnetlink::new_connection() {
                    Ok((conn, handle, _)) => {
                        tokio::spawn(conn);
                        self.handle = Some(Arc::new(tokio::sync::Mutex::new(handle)));
                    }
                    Err(e) => debug!("updown: no netlink route socket for PLUTO_INTERFACE: {e}"),
                }
            }
            let prev = self.chains.remove(&reqid);
            let handle = self.handle.clone();
            let timeout = self.timeout;
            let task = tokio::spawn(async move {
                if let Some(p) = prev {
                    let _ = p.await;
                }
                run_job(job, handle, timeout).await;
            });
            self.chains.insert(reqid, task);
        }
        self.chains.retain(|_, t| !t.is_finished());
    }

    /// Waits for every call started (at shutdown: the `down`s).
    pub async fn finish(&mut self) {
        self.release(None);
        self.finish_started().await;
    }

    /// Waits for the calls started, not for those held.
    async fn finish_started(&mut self) {
        for (_, t) in self.chains.drain() {
            let _ = t.await;
        }
    }
}

async fn run_job(
    job: Job,
    handle: Option<Arc<tokio::sync::Mutex<rtnetlink::Handle>>>,
    timeout: Duration,
) {
    if let Some(peer) = job.lookup {
        let found = match &handle {
            Some(h) => interface_toward(&*h.lock().await, peer).await,
            None => None,
        };
        if let Ok(mut i) = job.iface.lock() {
            *i = found;
        }
    }
    let iface = job
        .iface
        .lock()
        .ok()
        .and_then(|i| i.clone())
        .unwrap_or_else(|| "unknown".to_owned());
    for mut c in job.calls {
        for (k, v) in &mut c.env {
            if k == "PLUTO_INTERFACE" {
                v.clone_from(&iface);
            }
        }
        run_call(&job.child, &job.command, &c, timeout).await;
    }
}

/// Runs one call: `/bin/sh -c "2>&1 COMMAND"` with `PATH` and the call's
/// variables only, in its own process group.
async fn run_call(child: &str, command: &str, c: &Call, timeout: Duration) {
    debug!("CHILD SA {child}: updown {}: running {command}", c.what);
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("2>&1 {command}"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut proc = match cmd.spawn() {
        Ok(p) => p,
        Err(e) => {
            warn!(
                "CHILD SA {child}: updown {}: cannot run /bin/sh: {e}",
                c.what
            );
            return;
        }
    };
    let pid = proc.id();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let out = proc.stdout.take();
    let err = proc.stderr.take();
    let finished = tokio::time::timeout(timeout, async {
        tokio::join!(
            read_lines(child, out, lines.clone()),
            read_lines(child, err, lines.clone())
        );
        proc.wait().await
    })
    .await;
    let output = || {
        let l = lines.lock().map(|l| l.clone()).unwrap_or_default();
        if l.is_empty() {
            "no output".to_owned()
        } else {
            format!("output: {}", l.join(" | "))
        }
    };
    match finished {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => warn!(
            "CHILD SA {child}: updown {} failed ({status}): `{command}`, {}",
            c.what,
            output()
        ),
        Ok(Err(e)) => warn!(
            "CHILD SA {child}: updown {}: waiting for `{command}`: {e}",
            c.what
        ),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = proc.wait().await;
            warn!(
                "CHILD SA {child}: updown {} did not finish within {}s: `{command}` killed, {}",
                c.what,
                timeout.as_secs_f64(),
                output()
            );
        }
    }
}

/// Logs each line of `r` (charon's `updown: LINE`) and keeps the last ones.
async fn read_lines(child: &str, r: Option<impl AsyncRead + Unpin>, keep: Arc<Mutex<Vec<String>>>) {
    const KEEP: usize = 10;
    let Some(r) = r else {
        return;
    };
    // Bytes, not UTF-8 lines: a script's output is whatever it writes.
    let mut lines = BufReader::new(r).split(b'\n');
    while let Ok(Some(l)) = lines.next_segment().await {
        let l = String::from_utf8_lossy(&l);
        let l = l.trim_end_matches('\r').to_owned();
        info!("CHILD SA {child}: updown: {l}");
        if let Ok(mut k) = keep.lock() {
            if k.len() == KEEP {
                k.remove(0);
            }
            k.push(l);
        }
    }
}

#[cfg(test)]
mod tests;
