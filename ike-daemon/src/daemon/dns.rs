//! The DNS servers a road warrior gets in a CFG_REPLY (INTERNAL_IP4_DNS /
//! INTERNAL_IP6_DNS), into the system's resolver while its IKE SA stands,
//! as charon's `resolve` plugin does, and taken out again when the last
//! IKE SA that brought them goes.
//!
//! Where they go ([`Target`], `--dns`):
//! - a resolv.conf file (charon's `plugins.resolve.file`): `nameserver`
//!   lines put first and marked `# by iked`, the file's other lines kept;
//! - resolvconf(8) (charon's `plugins.resolve.resolvconf`): `resolvconf -a
//!   <iface>` with every server on its input, `-d` when none is left,
//!   under one record name (`lo.iked` unless configured, as charon's
//!   `lo.ipsec`);
//! - systemd-resolved, through `resolvectl`: the servers as the DNS of the
//!   interface that holds the IKE SA's local address (where the virtual IP
//!   goes), with the routing domain `~.` so that every query goes to them;
//!   what the interface had before is put back on down. resolvectl rather
//!   than resolved's D-Bus API: the same API behind a stable command, no
//!   D-Bus client in iked, and the same process model as resolvconf; a
//!   change costs one process, at tunnel up and down only. The record
//!   resolvconf would make (`lo.iked`) is no use there: resolved refuses
//!   DNS settings on the loopback interface.
//!
//! Servers are counted per IKE SA (two SAs bringing the same server
//! install it once; it goes with the last of them), and each change hands
//! the whole set to one worker task, which applies the newest set and
//! never blocks the event loop on a file or a process.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// What marks our lines in a resolv.conf (charon's is `# by strongSwan`).
pub const FILE_MARK: &str = "   # by iked";
/// resolvconf's record name unless configured (charon's is `lo.ipsec`).
pub const DEFAULT_RESOLVCONF_IFACE: &str = "lo.iked";
/// charon's default resolvconf.
pub const DEFAULT_RESOLVCONF: &str = "/sbin/resolvconf";
/// resolv.conf.
pub const DEFAULT_FILE: &str = "/etc/resolv.conf";
/// Where resolvectl is looked for.
const RESOLVECTL: &str = "/usr/bin/resolvectl";
/// Present while systemd-resolved runs (its varlink socket).
const RESOLVED_RUNNING: &str = "/run/systemd/resolve/io.systemd.Resolve";
/// How long one resolvconf or resolvectl may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the servers go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nowhere (shown by `ikectl status` only).
    None,
    /// A resolv.conf file.
    File(PathBuf),
    /// resolvconf(8) at `path`, the record `iface`.
    Resolvconf {
        /// The program.
        path: PathBuf,
        /// The record's name (`-a <iface>`).
        iface: String,
    },
    /// systemd-resolved, through resolvectl at `path`.
    Resolved {
        /// The program.
        path: PathBuf,
    },
}

/// `--dns`: which target, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// As the system is set up ([`choose`]).
    Auto,
    /// The file.
    File,
    /// resolvconf.
    Resolvconf,
    /// systemd-resolved.
    Resolved,
    /// Nowhere.
    None,
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Choice, String> {
        match s {
            "auto" => Ok(Choice::Auto),
            "file" => Ok(Choice::File),
            "resolvconf" => Ok(Choice::Resolvconf),
            "resolved" => Ok(Choice::Resolved),
            "none" => Ok(Choice::None),
            _ => Err(format!(
                "'{s}': expected auto, file, resolvconf, resolved or none"
            )),
        }
    }
}

/// The settings the target is chosen from (flags, strongswan.conf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsOptions {
    /// `--dns`.
    pub choice: Choice,
    /// `--dns-file` (`plugins.resolve.file`); `None`: not configured.
    pub file: Option<PathBuf>,
    /// `--resolvconf` (`plugins.resolve.resolvconf.path`).
    pub resolvconf: Option<PathBuf>,
    /// `--resolvconf-iface` (`plugins.resolve.resolvconf.iface`).
    pub resolvconf_iface: Option<String>,
}

impl Default for DnsOptions {
    fn default() -> Self {
        DnsOptions {
            choice: Choice::Auto,
            file: None,
            resolvconf: None,
            resolvconf_iface: None,
        }
    }
}

/// The target of `o`; `exists` tells whether a path is there (the
/// machine's, or a test's). `auto` takes what is configured (a resolvconf
/// before a file), else systemd-resolved if it runs, else resolvconf if
/// installed, else /etc/resolv.conf. Unlike charon, whose resolvconf wins
/// over a configured file whenever /sbin/resolvconf exists, a configured
/// file is used: it is what the operator asked for.
pub fn choose(o: &DnsOptions, exists: &dyn Fn(&Path) -> bool) -> Target {
    let file = || Target::File(o.file.clone().unwrap_or_else(|| DEFAULT_FILE.into()));
    let resolvconf = || Target::Resolvconf {
        path: o
            .resolvconf
            .clone()
            .unwrap_or_else(|| DEFAULT_RESOLVCONF.into()),
        iface: o
            .resolvconf_iface
            .clone()
            .unwrap_or_else(|| DEFAULT_RESOLVCONF_IFACE.into()),
    };
    let resolved = || Target::Resolved {
        path: RESOLVECTL.into(),
    };
    match o.choice {
        Choice::None => Target::None,
        Choice::File => file(),
        Choice::Resolvconf => resolvconf(),
        Choice::Resolved => resolved(),
        Choice::Auto if o.resolvconf.is_some() => resolvconf(),
        Choice::Auto if o.file.is_some() => file(),
        Choice::Auto if exists(Path::new(RESOLVED_RUNNING)) && exists(Path::new(RESOLVECTL)) => {
            resolved()
        }
        Choice::Auto if exists(Path::new(DEFAULT_RESOLVCONF)) => resolvconf(),
        Choice::Auto => file(),
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::None => write!(f, "nowhere"),
            Target::File(p) => write!(f, "{}", p.display()),
            Target::Resolvconf { path, iface } => {
                write!(f, "{} (record {iface})", path.display())
            }
            Target::Resolved { path } => write!(f, "systemd-resolved ({})", path.display()),
        }
    }
}

/// The servers wanted, by the local IKE address they came over (the
/// interface of that address gets them with systemd-resolved).
type Wanted = BTreeMap<IpAddr, Vec<IpAddr>>;

/// The daemon's side: the servers of each IKE SA.
#[derive(Debug)]
pub struct Dns {
    by_sa: BTreeMap<u64, (IpAddr, Vec<IpAddr>)>,
    tx: Option<mpsc::UnboundedSender<Wanted>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Dns {
    /// Starts the worker for `target` (on the current runtime). A file
    /// target first loses the lines a killed iked left in it.
    pub fn start(target: Target) -> Dns {
        if target == Target::None {
            return Dns {
                by_sa: BTreeMap::new(),
                tx: None,
                task: None,
            };
        }
        debug!("DNS servers of virtual IPs go to {target}");
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(worker(target, rx));
        Dns {
            by_sa: BTreeMap::new(),
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// IKE SA `sa` (local address `local`) brought `servers`.
    pub fn up(&mut self, sa: u64, local: IpAddr, servers: &[IpAddr]) {
        if servers.is_empty() || self.tx.is_none() {
            return;
        }
        self.by_sa.insert(sa, (local, servers.to_vec()));
        self.send();
    }

    /// IKE SA `sa` is gone.
    pub fn down(&mut self, sa: u64) {
        if self.by_sa.remove(&sa).is_some() {
            self.send();
        }
    }

    /// IKE SA `old` was rekeyed to `new` (its servers stay).
    pub fn moved(&mut self, old: u64, new: u64) {
        if let Some(v) = self.by_sa.remove(&old) {
            self.by_sa.insert(new, v);
        }
    }

    fn send(&self) {
        let mut wanted = Wanted::new();
        for (local, servers) in self.by_sa.values() {
            let e = wanted.entry(*local).or_default();
            for s in servers {
                if !e.contains(s) {
                    e.push(*s);
                }
            }
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(wanted);
        }
    }

    /// Takes every server out (shutdown) and waits for the worker.
    pub async fn finish(mut self) {
        if !self.by_sa.is_empty() {
            self.by_sa.clear();
            self.send();
        }
        self.tx = None;
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Applies each newest set of servers, until the daemon's side goes.
async fn worker(target: Target, mut rx: mpsc::UnboundedReceiver<Wanted>) {
    let mut w = Writer::new(target);
    w.clean_leftovers().await;
    while let Some(mut wanted) = rx.recv().await {
        // Only the newest set matters.
        while let Ok(n) = rx.try_recv() {
            wanted = n;
        }
        w.apply(&wanted).await;
    }
}

/// What was on an interface before systemd-resolved got our servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LinkBefore {
    dns: Vec<String>,
    domains: Vec<String>,
}

/// Puts the sets into the target, remembering what it put there.
#[derive(Debug)]
pub struct Writer {
    target: Target,
    /// The servers in the file or resolvconf's record now.
    applied: Vec<IpAddr>,
    /// systemd-resolved: per interface, our servers and what it had before.
    links: HashMap<String, (Vec<IpAddr>, LinkBefore)>,
}

fn union(wanted: &Wanted) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for s in wanted.values().flatten() {
        if !out.contains(s) {
            out.push(*s);
        }
    }
    out
}

fn list(servers: &[IpAddr]) -> String {
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `text` with `servers` as marked `nameserver` lines first and every
/// marked line of before left out.
pub fn rewrite(text: &str, servers: &[IpAddr]) -> String {
    let mut out = String::new();
    for s in servers {
        out.push_str(&format!("nameserver {s}{FILE_MARK}\n"));
    }
    for line in text.lines() {
        if !line.ends_with(FILE_MARK) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

impl Writer {
    /// A writer for `target` that has put nothing anywhere yet.
    pub fn new(target: Target) -> Writer {
        Writer {
            target,
            applied: Vec::new(),
            links: HashMap::new(),
        }
    }

    /// A file's lines left by a killed iked go (the other targets keep
    /// no record iked could tell from another's).
    pub async fn clean_leftovers(&mut self) {
        let Target::File(path) = &self.target else {
            return;
        };
        if let Ok(text) = tokio::fs::read_to_string(path).await
            && text.lines().any(|l| l.ends_with(FILE_MARK))
        {
            match write_in_place(path, &rewrite(&text, &[])).await {
                Ok(()) => warn!(
                    "removed DNS servers left by a previous iked from {}",
                    path.display()
                ),
                Err(e) => warn!(
                    "removing DNS servers left by a previous iked from {}: {e}",
                    path.display()
                ),
            }
        }
    }

    /// Makes the target hold `wanted`.
    pub async fn apply(&mut self, wanted: &Wanted) {
        match self.target.clone() {
            Target::None => {}
            Target::File(path) => {
                let servers = union(wanted);
                if servers == self.applied {
                    return;
                }
                let text = match tokio::fs::read_to_string(&path).await {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(e) => {
                        warn!("DNS servers: cannot read {}: {e}", path.display());
                        return;
                    }
                };
                match write_in_place(&path, &rewrite(&text, &servers)).await {
                    Ok(()) => {
                        self.log_change(&servers, &path.display().to_string());
                        self.applied = servers;
                    }
                    Err(e) => warn!("DNS servers: cannot write {}: {e}", path.display()),
                }
            }
            Target::Resolvconf { path, iface } => {
                let servers = union(wanted);
                if servers == self.applied {
                    return;
                }
                let (args, input) = if servers.is_empty() {
                    (vec!["-d".to_owned(), iface.clone()], String::new())
                } else {
                    let input: String = servers
                        .iter()
                        .map(|s| format!("nameserver {s}\n"))
                        .collect();
                    (vec!["-a".to_owned(), iface.clone()], input)
                };
                match run(&path, &args, &input).await {
                    Ok(_) => {
                        self.log_change(&servers, &format!("resolvconf ({iface})"));
                        self.applied = servers;
                    }
                    Err(e) => warn!("DNS servers: {e}"),
                }
            }
            Target::Resolved { path } => self.apply_resolved(&path, wanted).await,
        }
    }

    fn log_change(&self, servers: &[IpAddr], place: &str) {
        if servers.is_empty() {
            info!("removed DNS servers {} from {place}", list(&self.applied));
        } else {
            info!("installed DNS servers {} in {place}", list(servers));
        }
    }

    async fn apply_resolved(&mut self, path: &Path, wanted: &Wanted) {
        // The interface of each local address, as the system has it now.
        let names = interface_names();
        let mut by_link: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for (local, servers) in wanted {
            let Some(name) = names.get(local) else {
                warn!("DNS servers {}: no interface has {local}", list(servers));
                continue;
            };
            let e = by_link.entry(name.clone()).or_default();
            for s in servers {
                if !e.contains(s) {
                    e.push(*s);
                }
            }
        }
        for (link, servers) in &by_link {
            let before = match self.links.get(link) {
                Some((now, _)) if now == servers => continue,
                Some((_, before)) => before.clone(),
                None => match link_before(path, link).await {
                    Ok(b) => b,
                    Err(e) => {
                        warn!("DNS servers {}: {e}", list(servers));
                        continue;
                    }
                },
            };
            let mut dns = vec!["dns".to_owned(), link.clone()];
            dns.extend(servers.iter().map(ToString::to_string));
            let domain = vec!["domain".to_owned(), link.clone(), "~.".to_owned()];
            match async {
                run(path, &dns, "").await?;
                run(path, &domain, "").await
            }
            .await
            {
                Ok(_) => {
                    info!(
                        "installed DNS servers {} on {link} (systemd-resolved)",
                        list(servers)
                    );
                    self.links.insert(link.clone(), (servers.clone(), before));
                }
                Err(e) => warn!("DNS servers {}: {e}", list(servers)),
            }
        }
        let gone: Vec<String> = self
            .links
            .keys()
            .filter(|l| !by_link.contains_key(*l))
            .cloned()
            .collect();
        for link in gone {
            let Some((servers, before)) = self.links.remove(&link) else {
                continue;
            };
            let r = if before == LinkBefore::default() {
                run(path, &["revert".to_owned(), link.clone()], "").await
            } else {
                let mut dns = vec!["dns".to_owned(), link.clone()];
                dns.extend(before.dns.iter().cloned());
                let mut domain = vec!["domain".to_owned(), link.clone()];
                domain.extend(before.domains.iter().cloned());
                async {
                    run(path, &dns, "").await?;
                    run(path, &domain, "").await
                }
                .await
            };
            match r {
                Ok(_) => info!(
                    "removed DNS servers {} from {link} (systemd-resolved)",
                    list(&servers)
                ),
                Err(e) => warn!("removing DNS servers {} from {link}: {e}", list(&servers)),
            }
        }
    }
}

/// The per-interface DNS servers and domains set now (`resolvectl dns
/// eth0` prints `Link 2 (eth0): 10.0.0.1 10.0.0.2`).
async fn link_before(path: &Path, link: &str) -> Result<LinkBefore, String> {
    let words = |out: String| -> Vec<String> {
        out.split_once("):")
            .map(|(_, rest)| rest.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let dns = run(path, &["dns".to_owned(), link.to_owned()], "").await?;
    let domains = run(path, &["domain".to_owned(), link.to_owned()], "").await?;
    Ok(LinkBefore {
        dns: words(dns),
        domains: words(domains),
    })
}

/// Each local address's interface name.
fn interface_names() -> HashMap<IpAddr, String> {
    let mut out = HashMap::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    for a in addrs {
        let Some(sa) = a.address else { continue };
        let ip = if let Some(v4) = sa.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = sa.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        out.insert(ip, a.interface_name);
    }
    out
}

/// The file rewritten where it is, not replaced by a new one: a
/// resolv.conf may be a symbolic link, or a file mounted over another
/// (the lab's private mount namespace), which a rename would replace or
/// fail on. A reader may see it half written, as with charon's.
async fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    tokio::fs::write(path, text).await
}

/// Runs `path args`, `input` on its standard input; its output, or why it
/// failed (with what it said).
async fn run(path: &Path, args: &[String], input: &str) -> Result<String, String> {
    use tokio::io::AsyncWriteExt;
    let what = format!("{} {}", path.display(), args.join(" "));
    let mut child = tokio::process::Command::new(path)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|e| format!("{what}: {e}"))?;
    }
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("{what}: no end after {}s", COMMAND_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{what}: {e}"))?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        debug!("{what}: {}", said.trim());
        Ok(said)
    } else {
        Err(format!(
            "{what}: {} {}{}",
            out.status,
            said.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests;
