//! The daemon `iked`: a tokio driver around the sans-IO [`Endpoint`]
//! (docs/architecture.md). Datagrams from the IKE sockets, kernel results,
//! control requests and signals come in; after each input the endpoint's
//! transmits, kernel operations and events are drained; one sleep waits
//! for its next timeout. Kernel operations and CRL fetches run as spawned
//! tasks that send their results back to the loop.

pub mod control;
pub mod creds;
pub mod crl;
pub mod dns;
pub mod kernel;
pub mod privs;
pub mod radius;
pub mod resolve;
pub mod roam;
pub mod routes;
pub mod shunts;
pub mod socket;
pub mod status;
pub mod traps;
pub mod updown;
pub mod workers;
pub mod xfrm_plan;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use ike::config::{Config, ConfigFormat};
use ike::control::{ErrorKind, Request, Response};
use ike::crypto::DefaultProvider;
use ike::from_config::{self, ConfigPsk, Ports};
use ike::sa::{
    CommandError, CrlFetch, CrlFetched, Endpoint, EndpointConfig, Event, IkeSaId, IkeState,
    KernelOp, KernelResult, PeerCfg,
};

pub use control::ControlCmd;
use kernel::{AcquireEvent, Kernel};
use socket::{IkeSocket, Received};
use traps::{Action, Ending, TrapReason, action};
use xfrm_plan::{plan_trap, trap_route_child};

/// How long shutdown waits for the peers to answer our deletes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How old the engine's UTC anchor may get before an input renews it.
const WALL_CLOCK_ANCHOR: Duration = Duration::from_secs(1);
/// `down`'s default wait.
const DOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The daemon's settings (command line).
#[derive(Debug, Clone)]
pub struct Options {
    /// RADIUS servers and settings (strongswan.conf's
    /// `charon.plugins.eap-radius`), for EAP-RADIUS and accounting.
    pub radius: Option<ike::radius::Settings>,
    /// The configuration file.
    pub config_path: PathBuf,
    /// Its format; `None`: by its extension ([`ConfigFormat::from_path`]).
    pub config_format: Option<ConfigFormat>,
    /// The control socket.
    pub control_path: PathBuf,
    /// UDP ports for IKE and NAT-T.
    pub ports: Ports,
    /// Routes toward the remote selectors (`--install-routes`, ...).
    pub routes: routes::RouteOptions,
    /// Protocol settings: the retransmission schedule
    /// (`--retransmit-timeout`, `--retransmit-base`, `--retransmit-tries`).
    pub endpoint: EndpointConfig,
    /// Interval of NAT keepalives (`--keep-alive`); zero: none.
    pub keep_alive: Duration,
    /// How long the inbound SAs of a Child SA replaced by a rekey stay in
    /// the kernel (`--delete-rekeyed-delay`, strongSwan's
    /// `charon.delete_rekeyed_delay`).
    pub delete_rekeyed_delay: Duration,
    /// The largest IP datagram of an IKE fragment (`--fragment-size`);
    /// `None`: the configuration's `settings.fragment_size`, else 1280.
    pub fragment_size: Option<usize>,
    /// How long a child's `updown` command may run (`--updown-timeout`).
    pub updown_timeout: Duration,
    /// Limits on half-open IKE SAs from the command line and
    /// strongswan.conf; those not set there come from the configuration's
    /// `settings`, else the defaults (read at start).
    pub dos: ike::config::DosSettings,
    /// Worker threads for key exchanges (`--workers`); 0: none, the event
    /// loop computes them.
    pub workers: usize,
    /// Where a road warrior's DNS servers go (`--dns`, ...).
    pub dns: dns::DnsOptions,
}

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration file is unreadable or invalid.
    #[error("{0}")]
    Config(String),
    /// A socket or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The kernel's XFRM interface failed.
    #[error("kernel XFRM interface: {0}")]
    Kernel(#[from] xfrm_netlink::Error),
}

/// The fragment size: the command line's, else the configuration's, else
/// strongSwan's default.
fn fragment_size(flag: Option<usize>, config: &Config) -> usize {
    flag.or(config.settings().fragment_size)
        .unwrap_or(EndpointConfig::default().fragment_size)
}

/// A warning if the file can be read by others than root (it holds the
/// pre-shared keys).
pub fn permission_warning(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        Some(format!(
            "{}: mode {mode:03o} lets others than its owner read it; it holds secrets (chmod 600)",
            path.display()
        ))
    } else if meta.uid() != 0 {
        Some(format!(
            "{}: owned by uid {}, not root; it holds secrets",
            path.display(),
            meta.uid()
        ))
    } else {
        None
    }
}

/// Reads and validates the configuration file, its format chosen by its
/// extension; warns about its permissions. The error lists every problem,
/// one per line.
pub fn load_config(path: &Path) -> Result<Config, String> {
    load_config_as(path, None)
}

/// [`load_config`] in the given format (`None`: by the extension).
pub fn load_config_as(path: &Path, format: Option<ConfigFormat>) -> Result<Config, String> {
    let format = format.unwrap_or_else(|| ConfigFormat::from_path(path));
    if let Ok(meta) = std::fs::metadata(path)
        && let Some(w) = permission_warning(path, &meta)
    {
        warn!("{w}");
    }
    match format {
        ConfigFormat::Yaml => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
            Config::from_yaml_str_with(
                &text,
                &path.display().to_string(),
                &swanctl_compat::netdb::system(),
            )
            .map_err(|e| e.to_string())
        }
        // Reads the file with the ones it includes.
        ConfigFormat::Swanctl => swanctl_compat::load(path).map_err(|e| e.to_string()),
    }
}

struct UpWaiter {
    ike: IkeSaId,
    connection: String,
    want: Vec<String>,
    done: Vec<String>,
    deadline: Option<Instant>,
    reply: oneshot::Sender<Response>,
}

/// Items held until the kernel operations scheduled before them are done.
#[derive(Debug)]
struct AfterOps<T> {
    /// Each item with the number of the first operation it does not
    /// wait for.
    held: Vec<(u64, T)>,
}

impl<T> Default for AfterOps<T> {
    fn default() -> Self {
        Self { held: Vec::new() }
    }
}

impl<T> AfterOps<T> {
    /// Holds `item` until every operation numbered below `before` is done.
    fn hold(&mut self, before: u64, item: T) {
        self.held.push((before, item));
    }

    /// The items free to go when `oldest` is the lowest number still in
    /// flight (`None`: nothing is), in the order they were held.
    fn release(&mut self, oldest: Option<u64>) -> Vec<T> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let (ready, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(before, _)| oldest.is_none_or(|o| o >= *before));
        self.held = held;
        ready.into_iter().map(|(_, item)| item).collect()
    }
}

struct DownWaiter {
    connection: String,
    ids: Vec<IkeSaId>,
    deadline: Option<Instant>,
    reply: oneshot::Sender<Response>,
}

struct Driver {
    ep: Endpoint,
    kernel: Kernel,
    sockets: Vec<Arc<IkeSocket>>,
    ports: Ports,
    config_path: PathBuf,
    config_format: Option<ConfigFormat>,
    /// `--fragment-size`, which overrides the configuration's.
    fragment_size: Option<usize>,
    /// The peer configurations, shared with the endpoint (one copy).
    peers: Vec<Arc<PeerCfg>>,
    kernel_tx: mpsc::UnboundedSender<(u64, Option<KernelResult>)>,
    /// The engine's CRL fetches (daemon::crl), answered through `crl_tx`.
    crl: crl::CrlFetcher,
    crl_tx: mpsc::UnboundedSender<CrlFetched>,
    /// The gateways' names of redirects (`resolve::redirect_gateway`),
    /// answered through `resolve_tx`.
    resolve_tx: mpsc::UnboundedSender<(u64, Result<Vec<std::net::IpAddr>, String>)>,
    /// RADIUS accounting of IKE SAs (strongswan.conf's
    /// `eap-radius.accounting`), on `daemon::radius`'s client.
    accounting: Option<radius::Accounting>,
    /// The DNS servers our virtual IPs came with, in the system's
    /// resolver (`None` only once shut down).
    dns: Option<dns::Dns>,
    /// The RADIUS client (EAP-RADIUS's round trips), if servers are set.
    radius: Option<radius::Radius>,
    /// EAP methods' outside operations answered back to the loop.
    eap_tx: mpsc::UnboundedSender<(ike::sa::EapReq, ike::eap::Answer)>,
    /// The worker threads of the engine's key exchanges (`None`: inline).
    workers: Option<workers::Workers>,
    /// Kernel operations running, by the number they were scheduled with
    /// (`next_op` is the next one's).
    in_flight: BTreeSet<u64>,
    next_op: u64,
    /// When the engine's UTC anchor was last set (`now`).
    wall_at: Option<Instant>,
    ups: Vec<UpWaiter>,
    /// Failed `up`s and their answers, each held until every kernel
    /// operation scheduled before the failure (number below the first
    /// field) is done: a failure queues the release of what the attempt
    /// put in the kernel, and `ikectl up` returns only once it is gone
    /// (a failed `up` leaves no kernel state behind it).
    failed_ups: AfterOps<(oneshot::Sender<Response>, Response)>,
    downs: Vec<DownWaiter>,
    shutdown: Option<Instant>,
    /// The configuration (the children's actions).
    config: Arc<Config>,
    /// The trust store the endpoint has (for the daily expiry check).
    store: Arc<ike::pki::TrustStore>,
    /// Installed traps by (connection, child): reqid and why.
    traps: HashMap<(String, String), (u32, TrapReason)>,
    /// Traps the ACQUIRE of which is being answered: reqid -> IKE SA.
    acquiring: HashMap<u32, IkeSaId>,
    /// Children deleted per IKE SA, for the action when the IKE SA ends.
    gone: HashMap<IkeSaId, Vec<String>>,
    /// Traps to install after the current events (actions).
    trap_todo: Vec<(String, String, TrapReason)>,
    /// The children's `updown` commands.
    updown: updown::Updowns,
}

/// Runs the daemon until SIGTERM or SIGINT; then deletes every IKE SA and
/// removes all kernel state it installed.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let config =
        load_config_as(&opts.config_path, opts.config_format).map_err(DaemonError::Config)?;
    let credentials = creds::read(&config, &opts.config_path).map_err(DaemonError::Config)?;
    for w in config.warnings() {
        warn!("{w}");
    }
    let (conn, handle) = xfrm_netlink::new_connection()?;
    tokio::spawn(conn);
    let mut kernel = Kernel::new(handle).with_rekeyed_delay(opts.delete_rekeyed_delay);
    kernel.flush_leftovers().await?;
    let routes = routes::Routes::new(opts.routes).map_err(|source| DaemonError::Io {
        what: "netlink route socket".into(),
        source,
    })?;
    if let Err(e) = routes.flush_leftovers().await {
        warn!("cannot remove routes left by a previous iked: {e}");
    }
    // Also without route installation: the routes part puts a client's
    // virtual IPs on an interface (and installs no route then).
    kernel = kernel.with_routes(routes);

    let sockets = bind_sockets(opts.ports)?;
    let (dgram_tx, mut dgram_rx) = mpsc::channel::<(Received, bool)>(256);
    for s in &sockets {
        let s = s.clone();
        let tx = dgram_tx.clone();
        tokio::spawn(async move {
            let mut buf = IkeSocket::recv_buffer();
            loop {
                match s.recv(&mut buf).await {
                    Ok(r) => {
                        if tx.send((r, s.natt)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        warn!("receiving on UDP port {}: {e}", s.port);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    drop(dgram_tx);

    let mut mapping_rx = mapping_events();

    let (control_tx, mut control_rx) = mpsc::channel::<ControlCmd>(64);
    let listener = control::listen(&opts.control_path).map_err(|source| DaemonError::Io {
        what: format!("control socket {}", opts.control_path.display()),
        source,
    })?;
    let control_task = tokio::spawn(control::serve(listener, control_tx));

    let resolved = resolve::resolve(&from_config::names_to_resolve(&config)).await;
    let creds::Loaded { peers, store } =
        creds::build(&config, &credentials, &resolved, opts.ports).map_err(DaemonError::Config)?;
    drop(credentials);
    for w in creds::expiry_warnings(&from_config::own_certs(&peers), &store, creds::unix_now()) {
        warn!("{w}");
    }
    let config = Arc::new(config);
    let mut ep = Endpoint::new(
        EndpointConfig {
            natt_port: opts.ports.natt,
            keep_alive: opts.keep_alive,
            fragment_size: fragment_size(opts.fragment_size, &config),
            compute: if opts.workers > 0 {
                ike::sa::ComputeMode::Outside
            } else {
                ike::sa::ComputeMode::Inline
            },
            ..opts.dos.or(config.settings().dos).apply(opts.endpoint)
        },
        peers.clone(),
        Arc::new(ConfigPsk::new(config.clone())),
        Arc::new(DefaultProvider::new()),
    );
    ep.set_trust_store(store.clone());
    ep.set_eap_secrets(Arc::new(ConfigPsk::eap(config.clone())));
    ep.set_pools(config.pools());
    // One Acct-Session-Id prefix for EAP-RADIUS and accounting.
    let radius_prefix = radius::session_prefix();
    let radius_settings = radius::settings(opts.radius.as_ref(), &config);
    ep.set_radius(radius_settings.clone(), radius_prefix);
    let (kernel_tx, mut kernel_rx) = mpsc::unbounded_channel();
    let (crl_tx, mut crl_rx) = mpsc::unbounded_channel::<CrlFetched>();
    let (resolve_tx, mut resolve_rx) = mpsc::unbounded_channel();
    let (computed_tx, mut computed_rx) = mpsc::unbounded_channel::<ike::sa::Computed>();
    let pool = match opts.workers {
        0 => None,
        n => Some(
            workers::Workers::start(n, computed_tx).map_err(|source| DaemonError::Io {
                what: "worker threads".into(),
                source,
            })?,
        ),
    };
    // ACQUIREs of trap policies start on-demand tunnels.
    let (acquire_tx, mut acquire_rx) = mpsc::unbounded_channel::<AcquireEvent>();
    // Our address changing under an IKE SA with MOBIKE (the client role).
    let mut roam_rx = roam::changes();
    if let Err(e) = kernel.forward_acquires(acquire_tx) {
        warn!(
            "cannot listen to the kernel's acquire events (start_action trap will not work): {e}"
        );
    }
    // Soft expires (byte/packet limits) start rekeys, hard ones delete.
    let (expire_tx, mut expire_rx) = mpsc::unbounded_channel();
    if let Err(e) = kernel.forward_expires(expire_tx) {
        warn!(
            "cannot listen to the kernel's expire events (rekey_bytes/rekey_packets will not rekey): {e}"
        );
    }
    // EAP-RADIUS's round trips and accounting share one client.
    let (radius_client, accounting) = radius::start(radius_settings.as_ref(), radius_prefix);
    let (eap_tx, mut eap_rx) = mpsc::unbounded_channel::<(ike::sa::EapReq, ike::eap::Answer)>();
    let mut d = Driver {
        ep,
        kernel,
        sockets,
        ports: opts.ports,
        config_path: opts.config_path.clone(),
        config_format: opts.config_format,
        fragment_size: opts.fragment_size,
        peers,
        kernel_tx,
        crl: crl::CrlFetcher::new(crl::CrlFetchLimits::default()),
        crl_tx,
        resolve_tx,
        accounting,
        dns: Some(dns::Dns::start(dns::choose(&opts.dns, &|p| p.exists()))),
        radius: radius_client,
        eap_tx,
        workers: pool,
        in_flight: BTreeSet::new(),
        next_op: 0,
        wall_at: None,
        failed_ups: AfterOps::default(),
        ups: Vec::new(),
        downs: Vec::new(),
        shutdown: None,
        config: config.clone(),
        store,
        traps: HashMap::new(),
        acquiring: HashMap::new(),
        gone: HashMap::new(),
        trap_todo: Vec::new(),
        updown: updown::Updowns::new(opts.updown_timeout),
    };
    info!(
        "iked started: {} connections from {}, control socket {}, {}",
        d.peers.len(),
        opts.config_path.display(),
        opts.control_path.display(),
        match &d.workers {
            Some(w) => format!("{} worker threads", w.threads()),
            None => "key exchanges on the event loop".into(),
        }
    );
    d.sync_shunts().await;
    d.sync_traps().await;
    d.start_actions(&config, None);

    let io_err = |what: &str| {
        let what = what.to_string();
        move |source| DaemonError::Io { what, source }
    };
    let mut sigterm = signal(SignalKind::terminate()).map_err(io_err("SIGTERM handler"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(io_err("SIGINT handler"))?;

    // Certificates that expire soon are warned about at load and daily.
    let start = tokio::time::Instant::now();
    let mut expiry_check = tokio::time::interval_at(
        start
            .checked_add(creds::EXPIRY_CHECK_EVERY)
            .unwrap_or(start),
        creds::EXPIRY_CHECK_EVERY,
    );
    // The engine reads no clock: UTC comes from here (`Daemon::now`).
    d.now();
    loop {
        d.drain().await;
        if let Some(deadline) = d.shutdown
            && ((d.ep.is_empty() && d.in_flight.is_empty()) || Instant::now() >= deadline)
        {
            break;
        }
        let wake = d.next_wake();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some((r, natt)) = dgram_rx.recv() => d.datagram(r, natt),
            Some((n, k)) = kernel_rx.recv() => {
                d.in_flight.remove(&n);
                if let Some(r) = k {
                    let now = d.now();
                    d.ep.handle_kernel_result(now, r);
                }
            }
            Some(m) = mapping_rx.recv() => {
                debug!(
                    "kernel: ESP of SA {:08x} arrives from {} instead of {}",
                    m.spi, m.new, m.old
                );
                let now = d.now();
                d.ep.handle_mapping(now, m.dst, m.spi, m.new);
            }
            Some(f) = crl_rx.recv() => {
                let now = d.now();
                d.ep.handle_crl_fetched(now, f);
            }
            Some((req, addrs)) = resolve_rx.recv() => {
                let now = d.now();
                d.ep.handle_resolved(now, req, addrs);
            }
            Some((req, answer)) = eap_rx.recv() => {
                let now = d.now();
                d.ep.handle_eap_answer(now, req, answer);
            }
            Some(c) = computed_rx.recv() => {
                let now = d.now();
                d.ep.handle_computed(now, c);
            }
            Some(e) = expire_rx.recv() => {
                let now = d.now();
                d.ep.handle_kernel_event(now, e);
            }
            Some(a) = acquire_rx.recv() => d.acquire(a),
            Some(()) = roam_rx.recv() => d.roam(),
            Some(c) = control_rx.recv() => d.control(c).await,
            _ = sigterm.recv() => d.begin_shutdown("SIGTERM"),
            _ = sigint.recv() => d.begin_shutdown("SIGINT"),
            () = sleep => d.timeout(),
            _ = expiry_check.tick() => d.warn_expiring(),
        }
    }
    control_task.abort();
    let _ = std::fs::remove_file(&opts.control_path);
    // Let kernel operations still running finish, so that nothing they
    // install escapes the final cleanup.
    let stop = tokio::time::Instant::now();
    let settle = stop.checked_add(SHUTDOWN_GRACE).unwrap_or(stop);
    while !d.in_flight.is_empty() {
        match tokio::time::timeout_at(settle, kernel_rx.recv()).await {
            Ok(Some((n, _))) => {
                d.in_flight.remove(&n);
            }
            Ok(None) | Err(_) => break,
        }
    }
    for (reply, r) in d.failed_ups.release(None) {
        let _ = reply.send(r);
    }
    if !d.ep.is_empty() {
        warn!(
            "{} IKE SAs not deleted within {}s; removing their kernel state anyway",
            d.ep.len(),
            SHUTDOWN_GRACE.as_secs()
        );
    }
    d.kernel.remove_all().await;
    if let Some(dns) = d.dns.take() {
        dns.finish().await;
    }
    d.updown.finish().await;
    info!("iked stopped");
    Ok(())
}

/// The kernel's NAT mapping events (ESP in UDP of an inbound SA arriving
/// from another address or port than its encapsulation says). Without
/// them (no permission, no group) a changed mapping is still noticed from
/// the peer's next IKE message.
fn mapping_events() -> mpsc::Receiver<xfrm_netlink::Mapping> {
    let (tx, rx) = mpsc::channel(64);
    let groups = xfrm_netlink::EventGroups {
        mapping: true,
        ..xfrm_netlink::EventGroups::default()
    };
    match xfrm_netlink::subscribe(groups) {
        Ok(mut events) => {
            tokio::spawn(async move {
                while let Some(ev) = events.next_event().await {
                    match ev {
                        Ok(xfrm_netlink::XfrmEvent::Mapping(m)) => {
                            if tx.send(m).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => debug!("kernel event: {e}"),
                    }
                }
            });
        }
        Err(e) => warn!("no kernel NAT mapping events: {e}"),
    }
    rx
}

fn bind_sockets(ports: Ports) -> Result<Vec<Arc<IkeSocket>>, DaemonError> {
    let mut out = Vec::new();
    for (port, natt) in [(ports.ike, false), (ports.natt, true)] {
        let s = IkeSocket::bind(false, port, natt).map_err(|source| DaemonError::Io {
            what: format!("IPv4 UDP port {port}"),
            source,
        })?;
        out.push(Arc::new(s));
        match IkeSocket::bind(true, port, natt) {
            Ok(s) => out.push(Arc::new(s)),
            Err(e) => warn!("IPv6 UDP port {port} unavailable, IPv4 only: {e}"),
        }
    }
    Ok(out)
}

/// When a control request's wait of `wait` from `now` ends; `None` (no
/// deadline) when that lies beyond what the clock can represent: the
/// timeout comes from the control socket and may be any `u64`.
fn deadline_after(now: Instant, wait: Duration) -> Option<Instant> {
    now.checked_add(wait)
}

fn command_error(e: &CommandError) -> Response {
    let kind = match e {
        CommandError::UnknownPeer(_) => ErrorKind::UnknownConnection,
        CommandError::UnknownChild { .. } => ErrorKind::UnknownChild,
        CommandError::NoRemoteAddress(_) => ErrorKind::NoRemoteAddress,
        _ => ErrorKind::Internal,
    };
    Response::error(kind, e.to_string())
}

impl Driver {
    fn next_wake(&mut self) -> Option<Instant> {
        let mut t = self.ep.poll_timeout();
        let mut fold = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for u in &self.ups {
            fold(u.deadline);
        }
        for w in &self.downs {
            fold(w.deadline);
        }
        fold(self.shutdown);
        t
    }

    fn timeout(&mut self) {
        let now = self.now();
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ups)
            .into_iter()
            .partition(|u| u.deadline.is_some_and(|d| d <= now));
        self.ups = kept;
        for u in expired {
            let _ = u.reply.send(Response::error(
                ErrorKind::Timeout,
                format!(
                    "timed out waiting for {} (IKE SA {}) to come up; it goes on in the background",
                    u.connection, u.ike
                ),
            ));
        }
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.downs)
            .into_iter()
            .partition(|w| w.deadline.is_some_and(|d| d <= now));
        self.downs = kept;
        for w in expired {
            let _ = w.reply.send(Response::error(
                ErrorKind::Timeout,
                format!("timed out waiting for {} to go down", w.connection),
            ));
        }
    }

    fn datagram(&mut self, r: Received, natt: bool) {
        let bytes = if natt {
            match socket::strip_marker(&r.bytes) {
                Some(b) => b,
                None => {
                    debug!(
                        "dropping datagram from {} on port {} without non-ESP marker",
                        r.remote, r.local
                    );
                    return;
                }
            }
        } else {
            &r.bytes[..]
        };
        let now = self.now();
        self.ep.handle_datagram(now, r.local, r.remote, bytes);
    }

    /// Drains the endpoint's outputs: datagrams, kernel operations, events.
    async fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some(t) = self.ep.poll_transmit() {
                any = true;
                self.transmit(t).await;
            }
            while let Some(op) = self.ep.poll_kernel_op() {
                any = true;
                self.kernel_op(op);
            }
            while let Some(f) = self.ep.poll_crl_fetch() {
                any = true;
                self.crl_fetch(f);
            }
            while let Some(a) = self.ep.poll_eap_ask() {
                any = true;
                self.eap_ask(a);
            }
            while let Some(r) = self.ep.poll_resolve() {
                any = true;
                let tx = self.resolve_tx.clone();
                tokio::spawn(async move {
                    let addrs = resolve::redirect_gateway(&r.name).await;
                    let _ = tx.send((r.req, addrs));
                });
            }
            while let Some(job) = self.ep.poll_compute() {
                any = true;
                let done = match &self.workers {
                    Some(w) => w.submit(job),
                    None => Some(job.run()),
                };
                if let Some(c) = done {
                    let now = self.now();
                    self.ep.handle_computed(now, c);
                }
            }
            while let Some(ev) = self.ep.poll_event() {
                any = true;
                self.event(ev);
            }
            if !any {
                break;
            }
        }
        for (conn, child, why) in std::mem::take(&mut self.trap_todo) {
            self.install_trap(&conn, &child, why).await;
        }
        self.check_downs();
        self.answer_failed_ups();
        self.updown.release(self.in_flight.first().copied());
    }

    async fn transmit(&mut self, t: ike::sa::Transmit) {
        let v6 = t.remote.is_ipv6();
        let port = t.local.port();
        let sock = self
            .sockets
            .iter()
            .find(|s| s.v6 == v6 && s.port == port)
            .or_else(|| {
                self.sockets
                    .iter()
                    .find(|s| s.v6 == v6 && s.port == self.ports.ike)
            });
        let Some(sock) = sock else {
            warn!(
                "no {} socket to send to {}; dropped",
                if v6 { "IPv6" } else { "IPv4" },
                t.remote
            );
            return;
        };
        let payload = socket::datagram(sock.natt, t.payload);
        let src = if t.local.is_ipv6() == v6 {
            t.local.ip()
        } else if v6 {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        };
        if let Err(e) = sock.send(src, t.remote, &payload).await {
            warn!("sending to {} from {}: {e}", t.remote, t.local);
        }
    }

    /// The monotonic time for an input, with the engine's UTC anchor
    /// renewed first if it is `WALL_CLOCK_ANCHOR` old: the engine derives
    /// UTC for any `now` from the anchor, so a step of the system clock
    /// shows within that time. Not on every input: a clock read is a
    /// system call (in the UML lab a trap), and an anchor per loop turn
    /// nearly doubled the responder's clock reads when setting up 1,000
    /// tunnels (docs/performance.md, section 6).
    fn now(&mut self) -> Instant {
        let now = Instant::now();
        if self
            .wall_at
            .is_none_or(|t| now.saturating_duration_since(t) >= WALL_CLOCK_ANCHOR)
        {
            self.ep.set_wall_clock(now, std::time::SystemTime::now());
            self.wall_at = Some(now);
        }
        now
    }

    fn kernel_op(&mut self, op: KernelOp) {
        let n = self.next_op;
        self.next_op = n.wrapping_add(1);
        self.in_flight.insert(n);
        // Scheduled here, in the endpoint's order; run as a task.
        let fut = self.kernel.schedule(op);
        let tx = self.kernel_tx.clone();
        tokio::spawn(async move {
            let r = fut.await;
            let _ = tx.send((n, r));
        });
    }

    /// A CRL fetch the engine waits for, run as a task; its answer comes
    /// back to the loop (`crl_rx`).
    fn crl_fetch(&self, f: CrlFetch) {
        debug!("fetching CRLs from {}", f.uris.join(", "));
        let fetcher = self.crl.clone();
        let tx = self.crl_tx.clone();
        tokio::spawn(async move {
            let result = fetcher.fetch(&f.uris).await;
            let _ = tx.send(CrlFetched { req: f.req, result });
        });
    }

    /// Does what an EAP method asks (EAP-RADIUS: a RADIUS round trip on
    /// the client's task) and sends the answer back to the loop.
    fn eap_ask(&self, a: ike::sa::EapAsk) {
        let tx = self.eap_tx.clone();
        let client = self.radius.clone();
        tokio::spawn(async move {
            let answer = match (a.ask, client) {
                (ike::eap::Ask::Radius(req), Some(r)) => match r.request(req).await {
                    Ok(x) => ike::eap::Answer::Radius(x),
                    Err(e) => ike::eap::Answer::Failed(e.to_string()),
                },
                (ike::eap::Ask::Radius(_), None) => ike::eap::Answer::Failed(
                    "no RADIUS server configured (the configuration's radius, or strongswan.conf's charon.plugins.eap-radius)"
                        .into(),
                ),
                #[allow(unreachable_patterns)]
                (other, _) => ike::eap::Answer::Failed(format!("cannot do {other:?}")),
            };
            let _ = tx.send((a.req, answer));
        });
    }

    /// `ikectl redirect`: sends the clients of the established IKE SAs
    /// that `target` names (a number, the peer's identity or address) to
    /// `gateway`.
    fn redirect(&mut self, now: Instant, target: &str, gateway: &str) -> Response {
        let gw = match ike::sa::Gateway::parse(gateway) {
            Ok(g) => g,
            Err(e) => return Response::error(ErrorKind::BadRequest, e),
        };
        let number = target.parse::<u64>().ok();
        let ids: Vec<IkeSaId> = self
            .ep
            .ike_sas()
            .filter(|s| {
                number == Some(s.id.0)
                    || s.remote_id
                        .as_ref()
                        .is_some_and(|i| ike::display::IdDisplay(i).to_string() == target)
                    || s.remote_addr.ip().to_string() == target
            })
            .map(|s| s.id)
            .collect();
        let mut done = Vec::new();
        let mut why = Vec::new();
        for id in ids {
            match self.ep.redirect(now, id, gw.clone()) {
                Ok(()) => done.push(id.0),
                Err(e) => why.push(format!("IKE SA {id}: {e}")),
            }
        }
        if done.is_empty() {
            let message = if why.is_empty() {
                format!("no IKE SA matches '{target}'")
            } else {
                why.join("; ")
            };
            return Response::error(ErrorKind::NoSuchSa, message);
        }
        Response::Redirected {
            ike_sas: done,
            gateway: gw.to_string(),
        }
    }

    /// `site-b[3]`: an IKE SA by its connection and id.
    fn ike_name(&self, id: IkeSaId) -> String {
        let peer = self.ep.ike_sa(id).and_then(|s| s.peer).unwrap_or_default();
        format!("{peer}{id}")
    }

    fn event(&mut self, ev: Event) {
        let now = Instant::now();
        match &ev {
            Event::IkeEstablished { id, peer } => {
                match self.ep.ike_sa(*id) {
                    // The engine logs the operator's line; this one adds
                    // the suite as `ikectl status` shows it.
                    Some(sa) => debug!(
                        "IKE SA {peer}{id} established between {}[{}]...{}[{}] ({})",
                        sa.local_addr,
                        sa.local_id
                            .as_ref()
                            .map(|i| ike::display::IdDisplay(i).to_string())
                            .unwrap_or_default(),
                        sa.remote_addr,
                        sa.remote_id
                            .as_ref()
                            .map(|i| ike::display::IdDisplay(i).to_string())
                            .unwrap_or_default(),
                        sa.suite
                            .as_ref()
                            .map(status::ike_suite_text)
                            .unwrap_or_default()
                    ),
                    None => debug!("IKE SA {peer}{id} established"),
                }
                if let (Some(a), Some(sa)) = (self.accounting.as_mut(), self.ep.ike_sa(*id)) {
                    let user = sa
                        .remote_id
                        .as_ref()
                        .map(|i| ike::display::IdDisplay(i).to_string())
                        .unwrap_or_default();
                    a.start(
                        now,
                        id.0,
                        peer,
                        sa.local_addr,
                        sa.remote_addr,
                        user.into_bytes(),
                        // The virtual IPs it got from a pool: the event
                        // comes after the whole IKE_AUTH answer, CP included.
                        sa.remote_vips.clone(),
                    );
                }
                if let (Some(dns), Some(sa)) = (self.dns.as_mut(), self.ep.ike_sa(*id)) {
                    // As client: the CFG_REPLY is in by now.
                    dns.up(id.0, sa.local_addr.ip(), &sa.dns);
                }
                self.ups_retain(|u| {
                    if u.ike == *id && u.want.iter().all(|w| u.done.contains(w)) {
                        Some(Response::Up {
                            connection: u.connection.clone(),
                            ike_sa: id.0,
                            children: u.done.clone(),
                        })
                    } else {
                        None
                    }
                });
            }
            Event::IkeFailed { id, peer, reason } => {
                info!(
                    "IKE SA {}{id} failed: {reason}",
                    peer.as_deref().unwrap_or("")
                );
                self.acquiring.retain(|_, i| i != id);
                if let Some(a) = self.accounting.as_mut() {
                    // RFC 2866 5.10: Lost Service (no answer), else NAS Error.
                    let cause = if matches!(reason, ike::sa::IkeFailReason::PeerNotResponding) {
                        3
                    } else {
                        9
                    };
                    a.stop(now, id.0, cause);
                }
                if let Some(dns) = self.dns.as_mut() {
                    dns.down(id.0);
                }
                let gone = self.gone.remove(id).unwrap_or_default();
                if let Some(conn) = peer
                    && matches!(reason, ike::sa::IkeFailReason::PeerNotResponding)
                    && !gone.is_empty()
                {
                    info!("IKE SA {conn}{id}: peer is dead (no answer to our requests)");
                    self.run_actions(conn, None, &gone, Ending::PeerDead);
                }
                let kind = status::ike_fail_kind(reason);
                self.ups_retain(|u| {
                    (u.ike == *id).then(|| Response::error(kind, reason.to_string()))
                });
            }
            Event::IkeDeleted { id, peer, by_peer } => {
                // The engine's line (with the addresses) is the operator's.
                debug!(
                    "IKE SA {peer}{id} deleted{}",
                    if *by_peer { " by the peer" } else { "" }
                );
                self.acquiring.retain(|_, i| i != id);
                if let Some(a) = self.accounting.as_mut() {
                    // RFC 2866 5.10: User Request (the peer), Admin Reset (us).
                    a.stop(now, id.0, if *by_peer { 1 } else { 6 });
                }
                if let Some(dns) = self.dns.as_mut() {
                    dns.down(id.0);
                }
                let gone = self.gone.remove(id).unwrap_or_default();
                if *by_peer {
                    self.run_actions(peer, None, &gone, Ending::DeletedByPeer);
                }
                self.ups_retain(|u| {
                    (u.ike == *id).then(|| {
                        Response::error(
                            ErrorKind::Deleted,
                            format!("IKE SA {peer}{id} was deleted while coming up"),
                        )
                    })
                });
            }
            Event::ChildInstalled { ike, child, name } => {
                // An acquired tunnel is up: from now on the child's state
                // tells whether an ACQUIRE needs a new one.
                self.acquired(*ike, name);
                let sa = self.ep.ike_sa(*ike);
                if let Some(sa) = &sa
                    && let Some(c) = sa.children.iter().find(|c| c.id == *child)
                {
                    self.updown.installed(&self.config, sa, c, self.next_op);
                }
                let info = sa.and_then(|sa| sa.children.into_iter().find(|c| c.id == *child));
                match info {
                    Some(c) => {
                        let s = status::child_status(&c, now);
                        info!(
                            "CHILD SA {name}{child} of IKE SA {} installed: {} {} SPIs {} in / {} out, {} === {}{}",
                            self.ike_name(*ike),
                            s.mode,
                            s.protocol,
                            s.spi_in,
                            s.spi_out,
                            s.local_ts.join(" "),
                            s.remote_ts.join(" "),
                            s.algorithms.map(|a| format!(" ({a})")).unwrap_or_default()
                        );
                    }
                    None => info!(
                        "CHILD SA {name}{child} of IKE SA {} installed",
                        self.ike_name(*ike)
                    ),
                }
                self.ups_retain(|u| {
                    if u.ike != *ike {
                        return None;
                    }
                    if !u.done.contains(name) {
                        u.done.push(name.clone());
                    }
                    u.want
                        .iter()
                        .all(|w| u.done.contains(w))
                        .then(|| Response::Up {
                            connection: u.connection.clone(),
                            ike_sa: ike.0,
                            children: u.done.clone(),
                        })
                });
            }
            Event::ChildFailed {
                ike,
                child,
                name,
                reason,
            } => {
                info!(
                    "CHILD SA {name}{} of IKE SA {} failed: {reason}",
                    child.map(|c| c.to_string()).unwrap_or_default(),
                    self.ike_name(*ike)
                );
                self.acquired(*ike, name);
                let kind = status::child_fail_kind(reason);
                // A child that fails because its IKE SA failed: the IKE
                // SA's own event follows and says why.
                let ike_gone = matches!(reason, ike::sa::ChildFailReason::IkeSaGone);
                self.ups_retain(|u| {
                    (!ike_gone && u.ike == *ike && u.want.contains(name))
                        .then(|| Response::error(kind, format!("CHILD SA {name} failed: {reason}")))
                });
            }
            Event::ChildDeleted {
                ike,
                child,
                name,
                by_peer,
            } => {
                // The engine's line (with the SPIs) is the operator's.
                debug!(
                    "CHILD SA {name}{child} of IKE SA {} deleted{}",
                    self.ike_name(*ike),
                    if *by_peer { " by the peer" } else { "" }
                );
                self.updown.deleted(*child, self.next_op);
                self.acquired(*ike, name);
                match self.ep.ike_sa(*ike) {
                    // The IKE SA lives on: the peer deleted just this one.
                    Some(sa) if !matches!(sa.state, IkeState::Deleting) => {
                        if *by_peer && let Some(conn) = sa.peer {
                            self.run_actions(
                                &conn,
                                Some(*ike),
                                std::slice::from_ref(name),
                                Ending::DeletedByPeer,
                            );
                        }
                    }
                    // The IKE SA goes: its end decides.
                    _ => self.gone.entry(*ike).or_default().push(name.clone()),
                }
            }
            Event::ChildRekeyed {
                ike,
                old,
                new,
                name,
            } => {
                info!(
                    "CHILD SA {name}{old} of IKE SA {} rekeyed to {name}{new}",
                    self.ike_name(*ike)
                );
                if self.updown.has(*old) {
                    let c = self
                        .ep
                        .ike_sa(*ike)
                        .and_then(|sa| sa.children.into_iter().find(|c| c.id == *new));
                    self.updown.rekeyed(*old, c.as_ref(), *new);
                }
            }
            Event::IkeRekeyed { old, new, peer } => {
                info!("IKE SA {peer}{old} rekeyed to {peer}{new}");
                if let Some(a) = self.accounting.as_mut() {
                    a.moved(old.0, new.0);
                }
                if let Some(dns) = self.dns.as_mut() {
                    dns.moved(old.0, new.0);
                }
                if !self.updown.is_empty() {
                    let sa = self.ep.ike_sa(*new);
                    self.updown.ike_rekeyed(*old, sa.as_ref(), *new);
                }
            }
            Event::PeerAlive { id } => debug!("IKE SA {id}: peer alive"),
        }
    }

    /// Answers (and drops) the `up` waiters for which `f` gives a response;
    /// an error waits for the kernel operations already scheduled
    /// (`failed_ups`).
    fn ups_retain(&mut self, mut f: impl FnMut(&mut UpWaiter) -> Option<Response>) {
        let mut kept = Vec::new();
        for mut u in std::mem::take(&mut self.ups) {
            match f(&mut u) {
                Some(r @ Response::Error { .. }) => {
                    self.failed_ups.hold(self.next_op, (u.reply, r));
                }
                Some(r) => {
                    let _ = u.reply.send(r);
                }
                None => kept.push(u),
            }
        }
        self.ups = kept;
    }

    /// Sends the answers of failed `up`s whose kernel clean-up is done:
    /// every operation numbered below theirs has finished.
    fn answer_failed_ups(&mut self) {
        for (reply, r) in self.failed_ups.release(self.in_flight.first().copied()) {
            let _ = reply.send(r);
        }
    }

    fn check_downs(&mut self) {
        if self.downs.is_empty() {
            return;
        }
        let mut kept = Vec::new();
        for w in std::mem::take(&mut self.downs) {
            let gone = w
                .ids
                .iter()
                .all(|id| self.ep.ike_sa(*id).is_none() && !self.kernel.has_children_of(*id))
                && self.in_flight.is_empty();
            if gone {
                info!("connection {} is down", w.connection);
                let _ = w.reply.send(Response::Down {
                    connection: w.connection.clone(),
                    ike_sas: w.ids.iter().map(|i| i.0).collect(),
                });
            } else {
                kept.push(w);
            }
        }
        self.downs = kept;
    }

    fn begin_shutdown(&mut self, why: &str) {
        if self.shutdown.is_some() {
            return;
        }
        let now = Instant::now();
        info!("{why}: deleting all IKE SAs and shutting down");
        self.shutdown = Some(now.checked_add(SHUTDOWN_GRACE).unwrap_or(now));
        for u in std::mem::take(&mut self.ups) {
            let _ = u.reply.send(Response::error(
                ErrorKind::ShuttingDown,
                "iked is shutting down",
            ));
        }
        for w in std::mem::take(&mut self.downs) {
            let _ = w.reply.send(Response::error(
                ErrorKind::ShuttingDown,
                "iked is shutting down",
            ));
        }
        let ids: Vec<IkeSaId> = self.ep.ike_sas().map(|s| s.id).collect();
        for id in ids {
            if let Err(e) = self.ep.terminate_ike(now, id) {
                debug!("terminating IKE SA {id}: {e}");
            }
        }
    }

    fn start_actions(&mut self, config: &Config, only: Option<&[String]>) {
        let now = Instant::now();
        let only: Option<HashSet<&String>> = only.map(|o| o.iter().collect());
        for (conn, kids) in from_config::start_children(config) {
            if only.as_ref().is_some_and(|o| !o.contains(&conn)) {
                continue;
            }
            let refs: Vec<&str> = kids.iter().map(String::as_str).collect();
            match self.ep.initiate(now, &conn, &refs) {
                Ok(id) => info!("start_action: initiating {conn} as IKE SA {id}"),
                Err(e) => warn!("start_action of {conn}: {e}"),
            }
        }
    }

    /// Children of changed connections that became `start_action: start`:
    /// on the connection's established IKE SA if there is one, else in a
    /// new one (as for a new connection).
    fn start_changed(&mut self, now: Instant, started: Vec<(String, Vec<String>)>) {
        for (conn, kids) in started {
            let sa = self.ep.ike_sas_of(&conn).find(|s| {
                s.peer.as_deref() == Some(conn.as_str())
                    && matches!(s.state, IkeState::Established | IkeState::Rekeying)
            });
            match sa {
                Some(s) => {
                    for k in kids {
                        if s.children.iter().any(|c| c.name == k) {
                            continue;
                        }
                        match self.ep.initiate_child(now, s.id, &k) {
                            Ok(()) => {
                                info!("start_action: initiating {conn}/{k} on IKE SA {}", s.id)
                            }
                            Err(e) => warn!("start_action of {conn}/{k}: {e}"),
                        }
                    }
                }
                None if self.ep.ike_sas_of(&conn).next().is_some() => {
                    debug!("start_action of {conn}: an IKE SA of it is being set up");
                }
                None => {
                    let refs: Vec<&str> = kids.iter().map(String::as_str).collect();
                    match self.ep.initiate(now, &conn, &refs) {
                        Ok(id) => info!("start_action: initiating {conn} as IKE SA {id}"),
                        Err(e) => warn!("start_action of {conn}: {e}"),
                    }
                }
            }
        }
    }

    async fn control(&mut self, c: ControlCmd) {
        if self.shutdown.is_some() {
            let _ = c.reply.send(Response::error(
                ErrorKind::ShuttingDown,
                "iked is shutting down",
            ));
            return;
        }
        let now = Instant::now();
        match c.request {
            Request::Up {
                connection,
                child,
                timeout_secs,
            } => self.up(now, connection, child, timeout_secs, c.reply),
            Request::Down {
                connection,
                timeout_secs,
            } => {
                let ids: Vec<IkeSaId> = self
                    .ep
                    .ike_sas()
                    .filter(|s| s.peer.as_deref() == Some(connection.as_str()))
                    .map(|s| s.id)
                    .collect();
                if ids.is_empty() && self.ep.peer(&connection).is_none() {
                    let _ = c.reply.send(Response::error(
                        ErrorKind::UnknownConnection,
                        format!("no connection named '{connection}'"),
                    ));
                    return;
                }
                for id in &ids {
                    if let Err(e) = self.ep.terminate_ike(now, *id) {
                        debug!("terminating IKE SA {id}: {e}");
                    }
                }
                let wait = timeout_secs.map_or(DOWN_TIMEOUT, Duration::from_secs);
                self.downs.push(DownWaiter {
                    connection,
                    ids,
                    deadline: deadline_after(now, wait),
                    reply: c.reply,
                });
            }
            Request::Reload {} => {
                let r = self.reload(now).await;
                let _ = c.reply.send(r);
            }
            Request::Pools {} => {
                let pools = self.ep.pools().iter().map(status::pool_status).collect();
                let _ = c.reply.send(Response::Pools { pools });
            }
            Request::Redirect { target, gateway } => {
                let r = self.redirect(now, &target, &gateway);
                let _ = c.reply.send(r);
            }
            Request::Status {} => {
                let snap: Vec<_> = self.ep.ike_sas().collect();
                let mut trap_list: Vec<ike::control::TrapStatus> = self
                    .traps
                    .iter()
                    .filter_map(|((conn, child), (reqid, why))| {
                        let p = self.peers.iter().find(|p| &p.name == conn)?;
                        let c = p.child(child)?;
                        Some(traps::trap_status(p, c, *reqid, *why))
                    })
                    .collect();
                trap_list.sort_by(|a, b| (&a.connection, &a.child).cmp(&(&b.connection, &b.child)));
                let kernel = self.kernel.clone();
                tokio::spawn(async move {
                    let now = Instant::now();
                    let mut out = Vec::new();
                    for sa in &snap {
                        let mut st = status::ike_status(sa, now);
                        for (cs, ci) in st.children.iter_mut().zip(&sa.children) {
                            use ike::sa::ChildState as C;
                            if !matches!(ci.state, C::Installed | C::Rekeying | C::Rekeyed) {
                                continue;
                            }
                            let inb = kernel
                                .usage(sa.local_addr.ip(), ci.spi_in, ci.protocol)
                                .await;
                            // No outbound SA yet (or ever) to read.
                            let outb = if ci.outbound {
                                kernel
                                    .usage(sa.remote_addr.ip(), ci.spi_out, ci.protocol)
                                    .await
                            } else {
                                None
                            };
                            cs.bytes_in = inb.map(|u| u.bytes);
                            cs.packets_in = inb.map(|u| u.packets);
                            cs.bytes_out = outb.map(|u| u.bytes);
                            cs.packets_out = outb.map(|u| u.packets);
                        }
                        out.push(st);
                    }
                    let _ = c.reply.send(Response::Status {
                        ike_sas: out,
                        traps: trap_list,
                    });
                });
            }
        }
    }

    fn up(
        &mut self,
        now: Instant,
        connection: String,
        child: Option<String>,
        timeout_secs: Option<u64>,
        reply: oneshot::Sender<Response>,
    ) {
        let Some(peer) = self.ep.peer(&connection) else {
            let _ = reply.send(Response::error(
                ErrorKind::UnknownConnection,
                format!("no connection named '{connection}'"),
            ));
            return;
        };
        let want: Vec<String> = match child {
            Some(c) => {
                if peer.child(&c).is_none() {
                    let _ = reply.send(Response::error(
                        ErrorKind::UnknownChild,
                        format!("connection '{connection}' has no child named '{c}'"),
                    ));
                    return;
                }
                vec![c]
            }
            None => peer.children.iter().map(|c| c.name.clone()).collect(),
        };
        // Already up with everything asked for: nothing to do.
        let existing = self.ep.ike_sas_of(&connection).find(|s| {
            s.peer.as_deref() == Some(connection.as_str())
                && matches!(s.state, IkeState::Established | IkeState::Rekeying)
                && want.iter().all(|w| {
                    use ike::sa::ChildState as C;
                    s.children.iter().any(|c| {
                        &c.name == w && matches!(c.state, C::Installed | C::Rekeying | C::Rekeyed)
                    })
                })
        });
        if let Some(s) = existing {
            let _ = reply.send(Response::Up {
                connection,
                ike_sa: s.id.0,
                children: want,
            });
            return;
        }
        let refs: Vec<&str> = want.iter().map(String::as_str).collect();
        match self.ep.initiate(now, &connection, &refs) {
            Ok(ike) => {
                debug!("initiating {connection} as IKE SA {ike}");
                self.ups.push(UpWaiter {
                    ike,
                    connection,
                    want,
                    done: Vec::new(),
                    deadline: timeout_secs
                        .and_then(|s| deadline_after(now, Duration::from_secs(s))),
                    reply,
                });
            }
            Err(e) => {
                let _ = reply.send(command_error(&e));
            }
        }
    }

    /// Warns about our certificates and CAs that expire within 30 days
    /// (daily, and after a reload).
    fn warn_expiring(&mut self) {
        let peers = self.peers.clone();
        self.warn_expiring_of(&peers);
    }

    fn warn_expiring_of(&self, peers: &[Arc<PeerCfg>]) {
        let own = from_config::own_certs(peers);
        for w in creds::expiry_warnings(&own, &self.store, creds::unix_now()) {
            warn!("{w}");
        }
    }

    async fn reload(&mut self, now: Instant) -> Response {
        let config = match load_config_as(&self.config_path, self.config_format) {
            Ok(c) => c,
            Err(e) => {
                warn!("reload failed, configuration unchanged:\n{e}");
                return Response::error(ErrorKind::ConfigError, e);
            }
        };
        // The credential folders are read again: renewed certificates,
        // keys, CAs and CRLs apply to new IKE SAs; established ones stay.
        let credentials = match creds::read(&config, &self.config_path) {
            Ok(c) => c,
            Err(e) => {
                warn!("reload failed, configuration unchanged:\n{e}");
                return Response::error(ErrorKind::ConfigError, e);
            }
        };
        let resolved = resolve::resolve(&from_config::names_to_resolve(&config)).await;
        let (peers, store) = match creds::build(&config, &credentials, &resolved, self.ports) {
            Ok(creds::Loaded { peers, store }) => (peers, store),
            Err(e) => {
                warn!("reload failed, configuration unchanged:\n{e}");
                return Response::error(ErrorKind::ConfigError, e);
            }
        };
        drop(credentials);
        for w in config.warnings() {
            warn!("{w}");
        }
        let from_config::ReloadDiff {
            added,
            removed,
            changed,
            unchanged,
            now_started,
            reinstall,
        } = from_config::reload_diff(&self.config, &self.peers, &config, &peers);
        let config = Arc::new(config);
        self.ep.set_config(now, peers.clone());
        // Pools of the same name and addresses keep their leases.
        self.ep.set_pools(config.pools());
        self.ep
            .set_fragment_size(fragment_size(self.fragment_size, &config));
        self.ep
            .set_psk_store(Arc::new(ConfigPsk::new(config.clone())));
        self.ep
            .set_eap_secrets(Arc::new(ConfigPsk::eap(config.clone())));
        self.ep.set_trust_store(store.clone());
        self.store = store;
        self.warn_expiring_of(&peers);
        self.peers = peers;
        self.config = config.clone();
        // A changed connection's traps are installed anew (selectors,
        // addresses or proposals may differ); if only its actions changed,
        // sync_traps adds or removes start_action traps, action traps stay.
        let reinstall: HashSet<&String> = reinstall.iter().collect();
        let stale: Vec<(String, String)> = self
            .traps
            .keys()
            .filter(|(conn, _)| reinstall.contains(conn))
            .cloned()
            .collect();
        for (conn, child) in stale {
            self.remove_trap(&conn, &child).await;
        }
        self.sync_shunts().await;
        self.sync_traps().await;
        info!(
            "configuration reloaded: {} added, {} removed, {} changed, {} unchanged",
            added.len(),
            removed.len(),
            changed.len(),
            unchanged.len()
        );
        self.start_actions(&config, Some(&added));
        self.start_changed(now, now_started);
        Response::Reloaded {
            added,
            removed,
            changed,
            unchanged,
        }
    }
}

/// Logs an error of the daemon (for the binary).
pub fn log_fatal(e: &DaemonError) {
    error!("{e}");
}

/// The driver's side: traps in the kernel, ACQUIREs, actions.
impl Driver {
    /// Installs the trap of `conn`'s child `child` unless it is there.
    async fn install_trap(&mut self, conn: &str, child: &str, why: TrapReason) {
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
        let plan = kernel::ifindex(ccfg.policy.interface.as_deref())
            .and_then(|index| plan_trap(peer, ccfg, reqid, index));
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
    async fn remove_trap(&mut self, conn: &str, child: &str) {
        if let Some((reqid, _)) = self.traps.remove(&(conn.to_owned(), child.to_owned())) {
            self.kernel.remove_trap(reqid).await;
            self.ep.forget_trap(conn, child);
            self.acquiring.remove(&reqid);
            info!("trap policies of {conn}/{child} removed");
        }
    }

    /// Makes the installed shunts (`mode: pass | drop`) what the
    /// configuration asks for: at start and after a reload.
    async fn sync_shunts(&mut self) {
        let want = shunts::wanted(&self.config);
        let (remove, install) = shunts::changes(&self.kernel.shunts(), want);
        for key in remove {
            self.kernel.remove_shunt(&key).await;
            info!("shunt {}/{} removed", key.0, key.1);
        }
        for ((conn, child), p) in install {
            let n = p.len();
            match self
                .kernel
                .install_shunt((conn.clone(), child.clone()), p)
                .await
            {
                Ok(()) => info!("shunt {conn}/{child} installed ({n} policies)"),
                Err(e) => warn!("cannot install the shunt {conn}/{child}: {e}"),
            }
        }
    }

    /// Makes the installed traps what the configuration asks for
    /// (`start_action: trap`): at start and after a reload. Traps of
    /// removed or changed children go (a changed one is installed anew);
    /// those of actions stay while their child is configured unchanged.
    async fn sync_traps(&mut self) {
        let want: Vec<(String, String)> = self
            .config
            .connections()
            .iter()
            .flat_map(|c| {
                c.children
                    .iter()
                    .filter(|ch| {
                        ch.start_action == ike::config::StartAction::Trap && !ch.mode.is_shunt()
                    })
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

    /// Addresses or routes changed: every IKE SA that can move whose
    /// source address toward its peer is now another one moves there
    /// (MOBIKE, `daemon::roam`).
    fn roam(&mut self) {
        let sas = self.ep.mobile_sas();
        if sas.is_empty() {
            return;
        }
        let now = self.now();
        for (id, ip) in roam::moves(&sas, roam::source_toward) {
            if let Err(e) = self.ep.roam(now, id, ip) {
                debug!("IKE SA {id:?}: not moved to {ip}: {e}");
            }
        }
    }

    /// An ACQUIRE: traffic hit the trap of a child; bring it up, once.
    fn acquire(&mut self, a: AcquireEvent) {
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
    fn acquired(&mut self, ike: IkeSaId, name: &str) {
        let conn = self.ep.ike_sa(ike).and_then(|s| s.peer);
        if let Some((r, _)) = conn.and_then(|c| self.traps.get(&(c, name.to_owned()))) {
            let r = *r;
            if self.acquiring.get(&r) == Some(&ike) {
                self.acquiring.remove(&r);
            }
        }
    }

    /// Runs the actions of the children of `conn` that ended so.
    fn run_actions(
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
mod control_tests;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_held_answer_waits_for_the_operations_scheduled_before_it() {
        let mut h = AfterOps::default();
        // Operations 3 and 4 run; a failure at 5 waits for both.
        h.hold(5, "failed up");
        assert!(h.release(Some(3)).is_empty());
        assert!(h.release(Some(4)).is_empty());
        // One scheduled after it does not hold it up.
        h.hold(7, "later");
        assert_eq!(h.release(Some(5)), vec!["failed up"]);
        assert_eq!(h.release(Some(6)), Vec::<&str>::new());
        assert_eq!(h.release(None), vec!["later"]);
        assert!(h.release(None).is_empty());
    }

    #[test]
    fn a_secrets_file_readable_by_others_is_warned_about() {
        let p = std::env::temp_dir().join(format!("iked-perm-{}.yaml", std::process::id()));
        std::fs::write(&p, "connections: {}\n").unwrap();
        let uid = std::fs::metadata(&p).unwrap().uid();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = permission_warning(&p, &std::fs::metadata(&p).unwrap()).unwrap();
        assert!(w.contains("mode 644"), "{w}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let w = permission_warning(&p, &std::fs::metadata(&p).unwrap());
        assert_eq!(w.is_some(), uid != 0, "{w:?}");
        // load_config reports errors with the file name, never panics.
        std::fs::write(
            &p,
            "connections:\n  x:\n    local: { auth: psk }\n    remote: { auth: pk }\n",
        )
        .unwrap();
        let e = load_config(&p).unwrap_err();
        assert!(e.contains(&format!("{}:4:", p.display())), "{e}");
        let _ = std::fs::remove_file(&p);
        assert!(load_config(&p).unwrap_err().contains("cannot read"));
    }

    #[test]
    fn swanctl_conf_is_read_by_extension_or_format() {
        let dir = std::env::temp_dir().join(format!("iked-fmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = "connections {\n c {\n  remote_addrs = 192.0.2.1\n  \
                    local { auth = psk }\n  remote { auth = psk }\n }\n}\n";
        let yaml = "connections:\n  c:\n    remote_addrs: 192.0.2.1\n    \
                    local: { auth: psk }\n    remote: { auth: psk }\n";
        let as_conf = dir.join("swanctl.conf");
        let as_other = dir.join("swanctl.txt");
        let as_yaml = dir.join("iked.yaml");
        std::fs::write(&as_conf, conf).unwrap();
        std::fs::write(&as_other, conf).unwrap();
        std::fs::write(&as_yaml, yaml).unwrap();
        let name = |c: Config| c.connections()[0].name.clone();
        assert_eq!(name(load_config(&as_conf).unwrap()), "c");
        assert_eq!(name(load_config(&as_yaml).unwrap()), "c");
        // Not .conf: YAML, which this is not; --format swanctl reads it.
        assert!(load_config(&as_other).is_err());
        let c = load_config_as(&as_other, Some(ConfigFormat::Swanctl)).unwrap();
        assert_eq!(name(c), "c");
        // A swanctl error names the file, line and key.
        std::fs::write(
            &as_conf,
            "connections {\n c {\n  updown = /bin/true\n }\n}\n",
        )
        .unwrap();
        let e = load_config(&as_conf).unwrap_err();
        assert!(
            e.contains(&format!("{}:3: connections.c.updown:", as_conf.display())),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
