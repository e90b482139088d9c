//! `iked`: the IKEv2 daemon. Runs in the foreground and logs to stderr
//! (journald-friendly); SIGTERM or SIGINT delete every IKE SA and remove
//! all kernel state it installed. See docs/control-protocol.md for `ikectl`.

// No arithmetic that can overflow, divide by zero or panic (time included:
// `Instant + Duration` panics on overflow): checked or saturating
// operations only. Tests may.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use ike::config::{ConfigFormat, DosSettings, Limit};
use ike::from_config::Ports;
use ike_daemon::daemon::{self, Options};
use swanctl_compat::strongswan_conf::{self, Setting, StrongswanConf};

/// IKEv2 daemon for Linux.
#[derive(Debug, Parser)]
#[command(name = "iked", version)]
struct Args {
    /// Configuration file: iked YAML, or strongSwan's swanctl.conf if its
    /// name ends in `.conf` (docs/configuration.md).
    #[arg(long, value_name = "PATH", default_value = "/etc/iked/iked.yaml")]
    config: PathBuf,
    /// The configuration's format, instead of by the file name's extension.
    #[arg(long, value_name = "yaml|swanctl")]
    format: Option<ConfigFormat>,
    /// Control socket for ikectl.
    #[arg(long, value_name = "SOCKET", default_value = ike::control::DEFAULT_SOCKET)]
    control: PathBuf,
    /// Validate this configuration file (format as for --config), print its
    /// errors, and exit 0 (valid) or 1.
    #[arg(long, value_name = "PATH")]
    check_config: Option<PathBuf>,
    /// strongSwan's strongswan.conf: each setting below that is not given
    /// on the command line is read from its section `charon-systemd`, else
    /// `charon` (docs/configuration.md). Default: $STRONGSWAN_CONF, else
    /// /etc/strongswan.conf, if it exists and the configuration is a
    /// swanctl.conf; `none`: not read.
    #[arg(long, value_name = "PATH|none")]
    strongswan_conf: Option<PathBuf>,
    /// strongswan.conf's `charon.plugins.eap-radius` (RADIUS servers for
    /// EAP-RADIUS and accounting); not a flag.
    #[arg(skip)]
    radius: Option<ike::radius::Settings>,
    /// Log filter, RUST_LOG syntax. The default shows one line per event
    /// (IKE SA up, failed and why; Child SA installed, deleted) and
    /// warnings; `info` adds the protocol engine's own lines, `debug` all.
    #[arg(long, value_name = "FILTER", default_value = "info,ike::sa=warn")]
    log_level: String,
    /// UDP port for IKE.
    #[arg(long, default_value_t = 500)]
    port: u16,
    /// UDP port for IKE with NAT traversal (and ESP in UDP).
    #[arg(long, default_value_t = 4500)]
    natt_port: u16,
    /// Seconds between NAT keepalives sent from behind a NAT (strongSwan's
    /// charon.keep_alive); 0: none.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    keep_alive: u64,
    /// Install a route to each remote traffic selector of a tunnel-mode
    /// Child SA (strongSwan's charon.install_routes).
    #[arg(long, value_name = "yes|no", default_value = "yes", value_parser = yes_no, action = clap::ArgAction::Set)]
    install_routes: bool,
    /// Routing table of those routes; 0: the main table, without a rule.
    #[arg(long, value_name = "N", default_value_t = daemon::routes::DEFAULT_TABLE)]
    routing_table: u32,
    /// Priority of the rule `from all lookup TABLE`.
    #[arg(long, value_name = "N", default_value_t = daemon::routes::DEFAULT_PRIO)]
    routing_table_prio: u32,
    /// Seconds the inbound SAs of a rekeyed Child SA stay in the kernel
    /// after its Delete, for packets still on their way (strongSwan's
    /// charon.delete_rekeyed_delay); 0: removed at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    delete_rekeyed_delay: u64,
    /// A Child SA closed for its `inactivity` takes its IKE SA along if
    /// it was the only one (strongSwan's charon.inactivity_close_ike).
    #[arg(long, value_name = "yes|no", default_value = "no", value_parser = yes_no, action = clap::ArgAction::Set)]
    inactivity_close_ike: bool,
    /// Follow a gateway's REDIRECT (RFC 5685) and announce support for it
    /// (strongSwan's charon.follow_redirects).
    #[arg(long, value_name = "yes|no", default_value = "yes", value_parser = yes_no, action = clap::ArgAction::Set)]
    follow_redirects: bool,
    /// Seconds a child's updown command may run before it is killed
    /// (charon waits for it without limit).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = positive_secs)]
    updown_timeout: f64,
    /// Seconds before the first retransmission of a request (strongSwan's
    /// charon.retransmit_timeout).
    #[arg(long, value_name = "SECS", default_value_t = 4.0, value_parser = positive_secs)]
    retransmit_timeout: f64,
    /// Factor by which each further retransmission waits longer
    /// (charon.retransmit_base).
    #[arg(long, value_name = "F", default_value_t = 1.8, value_parser = base)]
    retransmit_base: f64,
    /// Retransmissions before the peer is given up as dead
    /// (charon.retransmit_tries).
    #[arg(long, value_name = "N", default_value_t = 5)]
    retransmit_tries: u32,
    /// Half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not yet) from
    /// which a new IKE_SA_INIT is answered with a COOKIE first (strongSwan's
    /// charon.cookie_threshold); 0: always a COOKIE, `off`: never. Default:
    /// the configuration's settings.cookie_threshold, else 30.
    #[arg(long, value_name = "N|off", value_parser = limit)]
    cookie_threshold: Option<Limit>,
    /// The same per source address (charon.cookie_threshold_ip). Default:
    /// settings.cookie_threshold_ip, else 3.
    #[arg(long, value_name = "N|off", value_parser = limit)]
    cookie_threshold_ip: Option<Limit>,
    /// Half-open IKE SAs of one source address from which its IKE_SA_INIT
    /// requests are ignored (charon.block_threshold). Default:
    /// settings.block_threshold, else 5.
    #[arg(long, value_name = "N|off", value_parser = limit)]
    block_threshold: Option<Limit>,
    /// Half-open IKE SAs in all from which no more are made: requests
    /// get a COOKIE, one that returned it replaces the oldest half-open
    /// SA without one (charon.init_limit_half_open). Default:
    /// settings.init_limit_half_open, else off.
    #[arg(long, value_name = "N|off", value_parser = limit)]
    init_limit_half_open: Option<Limit>,
    /// Largest IP datagram of an IKE fragment (RFC 7383), IP and UDP
    /// headers included (strongSwan's charon.fragment_size); 0: 576 for
    /// IPv4, 1280 for IPv6. Default: the configuration's
    /// settings.fragment_size, else 1280.
    #[arg(long, value_name = "BYTES", value_parser = fragment_size)]
    fragment_size: Option<usize>,
    /// Most Child SAs of one IKE SA when the peer asks for another one
    /// (NO_ADDITIONAL_SAS beyond; a rekey beyond twice this); iked's own,
    /// strongSwan has no such limit.
    #[arg(long, value_name = "N", default_value_t = ike::sa::PeerLimits::default().max_children, value_parser = count::<usize>)]
    max_children: usize,
    /// Most traffic selectors on either side of one Child SA, after
    /// narrowing (TS_UNACCEPTABLE beyond); iked's own.
    #[arg(long, value_name = "N", default_value_t = ike::sa::PeerLimits::default().max_selectors, value_parser = count::<usize>)]
    max_child_selectors: usize,
    /// Most kernel policies the selectors of one Child SA may give
    /// (TS_UNACCEPTABLE beyond); iked's own.
    #[arg(long, value_name = "N", default_value_t = ike::sa::PeerLimits::default().max_policies, value_parser = count::<u64>)]
    max_child_policies: u64,
    /// Worker threads for the key exchanges of IKE_SA_INIT; 0: the event
    /// loop computes them. Default: one per core.
    #[arg(long, value_name = "N", default_value_t = daemon::workers::default_count())]
    workers: usize,
    /// Most IKE SAs initiated toward one peer address that may be between
    /// IKE_SA_INIT and the end of IKE_AUTH at once; more wait their turn.
    /// 0: no limit. Default: charon's block_threshold.
    #[arg(long, value_name = "N", default_value_t = ike::sa::DEFAULT_INIT_WINDOW)]
    init_window: usize,
    /// Keep every capability iked was started with, without
    /// no_new_privs (for updown commands that need more than CAP_NET_ADMIN
    /// and CAP_NET_RAW; docs/security.md).
    #[arg(long)]
    keep_capabilities: bool,
    /// Where the DNS servers a road warrior gets with its virtual IPs go:
    /// `file` (--dns-file), `resolvconf` (--resolvconf), `resolved`
    /// (systemd-resolved, through resolvectl), `none`; `auto`: what is
    /// configured, else systemd-resolved if it runs, else
    /// /sbin/resolvconf if installed, else /etc/resolv.conf.
    #[arg(
        long,
        value_name = "auto|file|resolvconf|resolved|none",
        default_value = "auto"
    )]
    dns: daemon::dns::Choice,
    /// The resolv.conf for `--dns file` (strongSwan's
    /// charon.plugins.resolve.file). Default: /etc/resolv.conf.
    #[arg(long, value_name = "PATH")]
    dns_file: Option<PathBuf>,
    /// resolvconf(8) for `--dns resolvconf` (charon.plugins.resolve.
    /// resolvconf.path). Default: /sbin/resolvconf.
    #[arg(long, value_name = "PATH")]
    resolvconf: Option<PathBuf>,
    /// The record name given to resolvconf (charon.plugins.resolve.
    /// resolvconf.iface). Default: lo.iked.
    #[arg(long, value_name = "NAME")]
    resolvconf_iface: Option<String>,
}

fn limit(s: &str) -> Result<Limit, String> {
    Limit::parse(s).ok_or_else(|| format!("'{s}': expected a count or off"))
}

/// A count of at least 1.
fn count<T: std::str::FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    s.parse::<T>()
        .ok()
        .filter(|v| *v >= T::from(1))
        .ok_or_else(|| format!("'{s}': expected a count of at least 1"))
}

/// The limits for authenticated peers of the command line.
fn peer_limits(a: &Args) -> ike::sa::PeerLimits {
    ike::sa::PeerLimits {
        max_children: a.max_children,
        max_selectors: a.max_child_selectors,
        max_policies: a.max_child_policies,
    }
}

fn positive_secs(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|v| positive_secs_ok(v).ok())
        .ok_or_else(|| format!("'{s}': {SECS_RANGE}"))
}

const SECS_RANGE: &str = "expected seconds, more than 0 and at most 3600";

fn positive_secs_ok(v: f64) -> Result<f64, &'static str> {
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Ok(v)
    } else {
        Err(SECS_RANGE)
    }
}

fn base(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .and_then(|v| base_ok(v).ok())
        .ok_or_else(|| format!("'{s}': {BASE_RANGE}"))
}

const BASE_RANGE: &str = "expected a factor from 1 to 10";

fn base_ok(v: f64) -> Result<f64, &'static str> {
    if v.is_finite() && (1.0..=10.0).contains(&v) {
        Ok(v)
    } else {
        Err(BASE_RANGE)
    }
}

fn fragment_size(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .and_then(|v| fragment_size_ok(v).ok())
        .ok_or_else(|| format!("'{s}': {}", fragment_size_range()))
}

fn fragment_size_range() -> String {
    format!(
        "expected 0 or octets from {} to 65535",
        ike::sa::MIN_FRAGMENT_SIZE
    )
}

fn fragment_size_ok(v: usize) -> Result<usize, String> {
    if v == 0 || (ike::sa::MIN_FRAGMENT_SIZE..=65_535).contains(&v) {
        Ok(v)
    } else {
        Err(fragment_size_range())
    }
}

/// The strongswan.conf to read for a configuration at `config`: the one
/// given (`None` for `none`), else `$STRONGSWAN_CONF` (as charon) or
/// /etc/strongswan.conf when the configuration is a swanctl.conf and the
/// file exists. YAML users give their settings as flags.
fn strongswan_conf_path(
    given: Option<&Path>,
    config: &Path,
    format: Option<ConfigFormat>,
    env: Option<PathBuf>,
) -> Option<PathBuf> {
    match given {
        Some(p) if p == Path::new("none") => None,
        Some(p) => Some(p.to_owned()),
        None => {
            let format = format.unwrap_or_else(|| ConfigFormat::from_path(config));
            if format != ConfigFormat::Swanctl {
                return None;
            }
            let p = env.unwrap_or_else(|| PathBuf::from("/etc/strongswan.conf"));
            p.is_file().then_some(p)
        }
    }
}

/// Takes the settings of `conf` into `args` for each flag not given on
/// the command line (`given`). Returns the names of the settings taken,
/// or every bad value (`file:line: charon.key: ...`).
fn apply_strongswan_conf(
    args: &mut Args,
    conf: &StrongswanConf,
    given: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, Vec<String>> {
    let mut taken = Vec::new();
    let mut errors = Vec::new();
    // The value of a setting iked reads, checked by `check`.
    fn take<T, U>(
        read: Result<Option<(T, Setting)>, String>,
        check: impl Fn(T) -> Result<U, String>,
        taken: &mut Vec<String>,
        errors: &mut Vec<String>,
    ) -> Option<U> {
        match read {
            Ok(None) => None,
            Ok(Some((v, s))) => match check(v) {
                Ok(u) => {
                    taken.push(s.name);
                    Some(u)
                }
                Err(e) => {
                    errors.push(s.error(e));
                    None
                }
            },
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }
    fn int<U: TryFrom<u64>>(what: &'static str) -> impl Fn(u64) -> Result<U, String> {
        move |v| U::try_from(v).map_err(|_| format!("{v} is out of range ({what})"))
    }
    let (t, e) = (&mut taken, &mut errors);
    if !given("port")
        && let Some(v) = take(conf.int("port"), int("a UDP port"), t, e)
    {
        args.port = v;
    }
    if !given("natt_port")
        && let Some(v) = take(conf.int("port_nat_t"), int("a UDP port"), t, e)
    {
        args.natt_port = v;
    }
    if !given("keep_alive")
        && let Some(v) = take(conf.time("keep_alive"), Ok, t, e)
    {
        args.keep_alive = v;
    }
    if !given("install_routes")
        && let Some(v) = take(conf.bool("install_routes"), Ok, t, e)
    {
        args.install_routes = v;
    }
    if !given("routing_table")
        && let Some(v) = take(conf.int("routing_table"), int("a table number"), t, e)
    {
        args.routing_table = v;
    }
    if !given("routing_table_prio")
        && let Some(v) = take(conf.int("routing_table_prio"), int("a rule priority"), t, e)
    {
        args.routing_table_prio = v;
    }
    if !given("delete_rekeyed_delay")
        && let Some(v) = take(conf.int("delete_rekeyed_delay"), Ok, t, e)
    {
        args.delete_rekeyed_delay = v;
    }
    if !given("inactivity_close_ike")
        && let Some(v) = take(conf.bool("inactivity_close_ike"), Ok, t, e)
    {
        args.inactivity_close_ike = v;
    }
    if !given("follow_redirects")
        && let Some(v) = take(conf.bool("follow_redirects"), Ok, t, e)
    {
        args.follow_redirects = v;
    }
    let secs = |v| positive_secs_ok(v).map_err(str::to_owned);
    if !given("retransmit_timeout")
        && let Some(v) = take(conf.double("retransmit_timeout"), secs, t, e)
    {
        args.retransmit_timeout = v;
    }
    let factor = |v| base_ok(v).map_err(str::to_owned);
    if !given("retransmit_base")
        && let Some(v) = take(conf.double("retransmit_base"), factor, t, e)
    {
        args.retransmit_base = v;
    }
    if !given("retransmit_tries")
        && let Some(v) = take(conf.int("retransmit_tries"), int("a count"), t, e)
    {
        args.retransmit_tries = v;
    }
    // charon: 0 is no limit, and dos_protection = no turns off the
    // cookies and the per-address limit (not init_limit_half_open).
    let dos = take(conf.bool("dos_protection"), Ok, t, e);
    let count = |v: u64| usize::try_from(v).map_err(|_| format!("{v} is out of range (a count)"));
    for (key, value, protection) in [
        ("cookie_threshold", &mut args.cookie_threshold, true),
        ("cookie_threshold_ip", &mut args.cookie_threshold_ip, true),
        ("block_threshold", &mut args.block_threshold, true),
        (
            "init_limit_half_open",
            &mut args.init_limit_half_open,
            false,
        ),
    ] {
        if given(key) {
            continue;
        }
        let n = take(conf.int(key), count, t, e);
        if protection && dos == Some(false) {
            *value = Some(Limit::Off);
        } else if let Some(n) = n {
            *value = Some(if n == 0 { Limit::Off } else { Limit::Count(n) });
        }
    }
    let octets = |v: u64| {
        usize::try_from(v)
            .map_err(|_| fragment_size_range())
            .and_then(fragment_size_ok)
    };
    if !given("fragment_size")
        && let Some(v) = take(conf.int("fragment_size"), octets, t, e)
    {
        args.fragment_size = Some(v);
    }
    // charon's resolve plugin: a value there chooses the target as the
    // flag would (`--dns auto`).
    for (key, id) in [
        ("plugins.resolve.file", "dns_file"),
        ("plugins.resolve.resolvconf.path", "resolvconf"),
        ("plugins.resolve.resolvconf.iface", "resolvconf_iface"),
    ] {
        if given(id) {
            continue;
        }
        if let Some(setting) = conf.get(key)
            && let Some(v) = setting.value
        {
            match id {
                "dns_file" => args.dns_file = Some(PathBuf::from(v)),
                "resolvconf" => args.resolvconf = Some(PathBuf::from(v)),
                _ => args.resolvconf_iface = Some(v),
            }
            taken.push(setting.name);
        }
    }
    if errors.is_empty() {
        Ok(taken)
    } else {
        Err(errors)
    }
}

/// The strongswan.conf read and the names of the settings taken from it.
type SettingsRead = (PathBuf, Vec<String>);

/// The arguments with the strongswan.conf settings for the configuration
/// at `config` taken in; the errors, one per line, if it can't be read
/// or has bad values.
fn with_strongswan_conf(
    mut args: Args,
    matches: &ArgMatches,
    config: &Path,
) -> Result<(Args, Option<SettingsRead>), String> {
    let Some(path) = strongswan_conf_path(
        args.strongswan_conf.as_deref(),
        config,
        args.format,
        std::env::var_os("STRONGSWAN_CONF").map(PathBuf::from),
    ) else {
        return Ok((args, None));
    };
    let conf = strongswan_conf::load(&path).map_err(|e| e.to_string())?;
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let mut taken = apply_strongswan_conf(&mut args, &conf, &given).map_err(|e| e.join("\n"))?;
    args.radius = swanctl_compat::eap_radius::read(&conf)?;
    if let Some(r) = &args.radius {
        taken.push(format!("eap-radius ({} servers)", r.servers.len()));
    }
    Ok((args, Some((path, taken))))
}

fn yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("'{s}': expected yes or no")),
    }
}

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("iked: --log-level {:?}: {e}", args.log_level);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();

    if let Some(path) = args.check_config.clone() {
        // strongswan.conf, the configuration, then its credentials as the
        // daemon reads them; every problem of each.
        let format = args.format;
        let settings = with_strongswan_conf(args, &matches, &path);
        let checked = daemon::load_config_as(&path, format)
            .and_then(|c| daemon::creds::check(&c, &path).map(|warnings| (c, warnings)));
        let settings_ok = match &settings {
            Ok((_, Some((sconf, taken)))) => {
                println!("{}: OK ({} settings read)", sconf.display(), taken.len());
                true
            }
            Ok((_, None)) => true,
            Err(e) => {
                eprintln!("{e}");
                false
            }
        };
        return match checked {
            Ok((c, warnings)) => {
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: OK ({} connections, {} IKE secrets)",
                    path.display(),
                    c.connections().len(),
                    c.ike_secrets().len()
                );
                if settings_ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }

    let config = args.config.clone();
    let args = match with_strongswan_conf(args, &matches, &config) {
        Ok((args, read)) => {
            if let Some((path, taken)) = read {
                tracing::info!(
                    "settings from {}: {}",
                    path.display(),
                    if taken.is_empty() {
                        "none iked reads".to_owned()
                    } else {
                        taken.join(", ")
                    }
                );
            }
            args
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };

    // Least privilege (docs/security.md): before the runtime starts a
    // thread, so that every thread and process after it has only these.
    daemon::privs::apply(args.keep_capabilities);

    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("iked: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let peer_limits = peer_limits(&args);
    let opts = Options {
        config_path: args.config,
        config_format: args.format,
        control_path: args.control,
        ports: Ports {
            ike: args.port,
            natt: args.natt_port,
        },
        routes: daemon::routes::RouteOptions {
            install: args.install_routes,
            table: args.routing_table,
            prio: args.routing_table_prio,
        },
        endpoint: ike::sa::EndpointConfig {
            retransmit_timeout: std::time::Duration::from_secs_f64(args.retransmit_timeout),
            retransmit_base: args.retransmit_base,
            retransmit_tries: args.retransmit_tries,
            init_window: args.init_window,
            peer_limits,
            inactivity_close_ike: args.inactivity_close_ike,
            follow_redirects: args.follow_redirects,
            ..ike::sa::EndpointConfig::default()
        },
        dos: DosSettings {
            cookie_threshold: args.cookie_threshold,
            cookie_threshold_ip: args.cookie_threshold_ip,
            block_threshold: args.block_threshold,
            init_limit_half_open: args.init_limit_half_open,
        },
        keep_alive: std::time::Duration::from_secs(args.keep_alive),
        delete_rekeyed_delay: std::time::Duration::from_secs(args.delete_rekeyed_delay),
        fragment_size: args.fragment_size,
        updown_timeout: std::time::Duration::from_secs_f64(args.updown_timeout),
        workers: args.workers,
        radius: args.radius,
        dns: daemon::dns::DnsOptions {
            choice: args.dns,
            file: args.dns_file,
            resolvconf: args.resolvconf,
            resolvconf_iface: args.resolvconf_iface,
        },
    };
    match rt.block_on(daemon::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            daemon::log_fatal(&e);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn keep_capabilities_is_a_switch_off_by_default() {
        assert!(!Args::try_parse_from(["iked"]).unwrap().keep_capabilities);
        assert!(
            Args::try_parse_from(["iked", "--keep-capabilities"])
                .unwrap()
                .keep_capabilities
        );
        assert!(Args::try_parse_from(["iked", "--keep-capabilities", "yes"]).is_err());
    }

    #[test]
    fn route_options_parse_with_strongswans_defaults() {
        let a = Args::try_parse_from(["iked"]).unwrap();
        assert_eq!(
            (a.install_routes, a.routing_table, a.routing_table_prio),
            (true, 220, 220)
        );
        let a = Args::try_parse_from([
            "iked",
            "--install-routes",
            "no",
            "--routing-table",
            "0",
            "--routing-table-prio",
            "100",
        ])
        .unwrap();
        assert_eq!(
            (a.install_routes, a.routing_table, a.routing_table_prio),
            (false, 0, 100)
        );
        assert!(
            Args::try_parse_from(["iked", "--install-routes", "yes"])
                .unwrap()
                .install_routes
        );
        let e = Args::try_parse_from(["iked", "--install-routes", "maybe"]).unwrap_err();
        assert!(e.to_string().contains("expected yes or no"), "{e}");
        assert!(Args::try_parse_from(["iked", "--routing-table", "-1"]).is_err());
        let a = Args::try_parse_from(["iked"]).unwrap();
        assert_eq!(
            (a.retransmit_timeout, a.retransmit_base, a.retransmit_tries),
            (4.0, 1.8, 5),
            "strongSwan's defaults"
        );
        assert_eq!(
            a.cookie_threshold, None,
            "settings, else strongSwan's default"
        );
        assert_eq!(a.workers, daemon::workers::default_count(), "one per core");
        let w = |v: &str| Args::try_parse_from(["iked", "--workers", v]).map(|a| a.workers);
        assert_eq!(w("0").unwrap(), 0);
        assert_eq!(w("3").unwrap(), 3);
        assert!(w("-1").is_err() && w("all").is_err());
        assert_eq!(a.init_window, 5, "charon's block_threshold");
        let w = |v: &str| Args::try_parse_from(["iked", "--init-window", v]).map(|a| a.init_window);
        assert_eq!(w("0").unwrap(), 0);
        assert_eq!(w("64").unwrap(), 64);
        assert!(w("-1").is_err() && w("off").is_err());
        let a = Args::try_parse_from([
            "iked",
            "--retransmit-timeout",
            "0.5",
            "--retransmit-base",
            "1",
            "--retransmit-tries",
            "2",
        ])
        .unwrap();
        assert_eq!(
            (a.retransmit_timeout, a.retransmit_base, a.retransmit_tries),
            (0.5, 1.0, 2)
        );
        assert!(Args::try_parse_from(["iked", "--retransmit-timeout", "0"]).is_err());
        assert!(Args::try_parse_from(["iked", "--retransmit-base", "0.5"]).is_err());
    }

    #[test]
    fn peer_limits_are_counts_with_safe_defaults() {
        let a = Args::try_parse_from(["iked"]).unwrap();
        assert_eq!(peer_limits(&a), ike::sa::PeerLimits::default());
        assert_eq!(
            (
                peer_limits(&a).max_children,
                peer_limits(&a).max_selectors,
                peer_limits(&a).max_policies
            ),
            (128, 64, 16_384)
        );
        let a = Args::try_parse_from([
            "iked",
            "--max-children",
            "4",
            "--max-child-selectors",
            "2",
            "--max-child-policies",
            "12",
        ])
        .unwrap();
        assert_eq!(
            peer_limits(&a),
            ike::sa::PeerLimits {
                max_children: 4,
                max_selectors: 2,
                max_policies: 12
            }
        );
        for flag in [
            "--max-children",
            "--max-child-selectors",
            "--max-child-policies",
        ] {
            for bad in ["0", "many", "", "18446744073709551616"] {
                let e = Args::try_parse_from(["iked", flag, bad]).unwrap_err();
                assert!(
                    e.to_string().contains("expected a count of at least 1"),
                    "{flag} {bad}: {e}"
                );
            }
        }
    }

    #[test]
    fn fragment_size_is_strongswans_with_its_zero() {
        let f =
            |v: &str| Args::try_parse_from(["iked", "--fragment-size", v]).map(|a| a.fragment_size);
        assert_eq!(Args::try_parse_from(["iked"]).unwrap().fragment_size, None);
        assert_eq!(f("0").unwrap(), Some(0));
        assert_eq!(f("576").unwrap(), Some(576));
        let e = f("100").unwrap_err();
        assert!(
            e.to_string().contains("expected 0 or octets from 256"),
            "{e}"
        );
        assert!(f("65536").is_err());
    }

    /// `argv` with strongswan.conf `text` taken in as `main` does.
    fn with_conf(argv: &[&str], text: &str) -> Result<(Args, Vec<String>), Vec<String>> {
        let matches = Args::command().try_get_matches_from(argv).unwrap();
        let mut args = Args::from_arg_matches(&matches).unwrap();
        let conf = strongswan_conf::parse_str(text, "/etc/strongswan.conf").unwrap();
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        apply_strongswan_conf(&mut args, &conf, &given).map(|taken| (args, taken))
    }

    #[test]
    fn strongswan_conf_settings_apply_unless_a_flag_is_given() {
        let text = "charon {\n  port = 600\n  port_nat_t = 4501\n  keep_alive = 1m\n  \
                    install_routes = no\n  routing_table = 0\n  routing_table_prio = 100\n  \
                    delete_rekeyed_delay = 9\n  retransmit_timeout = 0.5\n  retransmit_base = 1.2\n  \
                    retransmit_tries = 2\n  cookie_threshold = 7\n  fragment_size = 1400\n  \
                    unknown_setting = whatever\n  plugins {\n    port = 1\n  }\n}\n\
                    charon-systemd {\n  retransmit_tries = 3\n}\n";
        let (a, taken) = with_conf(&["iked"], text).unwrap();
        assert_eq!((a.port, a.natt_port, a.keep_alive), (600, 4501, 60));
        assert_eq!(
            (a.install_routes, a.routing_table, a.routing_table_prio),
            (false, 0, 100)
        );
        assert_eq!(a.delete_rekeyed_delay, 9);
        assert_eq!(
            (a.retransmit_timeout, a.retransmit_base, a.retransmit_tries),
            (0.5, 1.2, 3),
            "charon-systemd's retransmit_tries wins over charon's"
        );
        assert_eq!(a.cookie_threshold, Some(Limit::Count(7)));
        assert_eq!(a.fragment_size, Some(1400));
        assert!(taken.contains(&"charon-systemd.retransmit_tries".to_owned()));
        assert_eq!(taken.len(), 12, "{taken:?}");
        // A flag on the command line wins, even one at its default value.
        let (a, _) = with_conf(
            &[
                "iked",
                "--port",
                "500",
                "--retransmit-tries",
                "5",
                "--install-routes",
                "yes",
            ],
            text,
        )
        .unwrap();
        assert_eq!(
            (a.port, a.retransmit_tries, a.install_routes, a.natt_port),
            (500, 5, true, 4501)
        );
        // Nothing set: the flags' defaults (strongSwan's).
        let (a, taken) = with_conf(&["iked"], "charon {\n}\n").unwrap();
        assert!(taken.is_empty());
        assert_eq!((a.port, a.retransmit_tries, a.keep_alive), (500, 5, 20));
    }

    #[test]
    fn the_resolve_plugins_settings_give_the_dns_target() {
        let text = "charon {\n plugins {\n  resolve {\n   file = /run/vpn/resolv.conf\n   \
                    resolvconf {\n    iface = wan.vpn\n   }\n  }\n }\n}\n";
        let (a, taken) = with_conf(&["iked"], text).unwrap();
        assert_eq!(a.dns_file, Some(PathBuf::from("/run/vpn/resolv.conf")));
        assert_eq!(a.resolvconf_iface.as_deref(), Some("wan.vpn"));
        assert_eq!(a.resolvconf, None);
        assert_eq!(
            taken,
            [
                "charon.plugins.resolve.file",
                "charon.plugins.resolve.resolvconf.iface"
            ]
        );
        let (a, _) = with_conf(&["iked", "--dns-file", "/etc/resolv.conf"], text).unwrap();
        assert_eq!(a.dns_file, Some(PathBuf::from("/etc/resolv.conf")));
        let o = daemon::dns::DnsOptions {
            choice: a.dns,
            file: a.dns_file,
            resolvconf: a.resolvconf,
            resolvconf_iface: a.resolvconf_iface,
        };
        assert_eq!(
            daemon::dns::choose(&o, &|_| true),
            daemon::dns::Target::File("/etc/resolv.conf".into()),
            "a configured file wins over what the system has"
        );
    }

    #[test]
    fn dos_protection_no_means_no_cookies_as_in_charon() {
        let (a, _) = with_conf(
            &["iked"],
            "charon {\n dos_protection = no\n cookie_threshold = 3\n block_threshold = 9\n \
             init_limit_half_open = 7\n}\n",
        )
        .unwrap();
        assert_eq!(a.cookie_threshold, Some(Limit::Off));
        assert_eq!(a.cookie_threshold_ip, Some(Limit::Off));
        assert_eq!(a.block_threshold, Some(Limit::Off));
        assert_eq!(
            a.init_limit_half_open,
            Some(Limit::Count(7)),
            "not a DoS protection knob"
        );
        let (a, _) = with_conf(
            &["iked", "--cookie-threshold", "4"],
            "charon {\n dos_protection = no\n}\n",
        )
        .unwrap();
        assert_eq!(a.cookie_threshold, Some(Limit::Count(4)));
    }

    #[test]
    fn half_open_limits_parse_as_flags_and_from_strongswan_conf() {
        let a = Args::try_parse_from(["iked"]).unwrap();
        assert_eq!(
            (
                a.cookie_threshold_ip,
                a.block_threshold,
                a.init_limit_half_open
            ),
            (None, None, None),
            "unset: the configuration's settings, else the defaults"
        );
        let a = Args::try_parse_from([
            "iked",
            "--cookie-threshold",
            "0",
            "--cookie-threshold-ip",
            "off",
            "--block-threshold",
            "12",
            "--init-limit-half-open",
            "1000",
        ])
        .unwrap();
        assert_eq!(a.cookie_threshold, Some(Limit::Count(0)));
        assert_eq!(a.cookie_threshold_ip, Some(Limit::Off));
        assert_eq!(a.block_threshold, Some(Limit::Count(12)));
        assert_eq!(a.init_limit_half_open, Some(Limit::Count(1000)));
        for flag in [
            "--cookie-threshold",
            "--cookie-threshold-ip",
            "--block-threshold",
            "--init-limit-half-open",
        ] {
            let e = Args::try_parse_from(["iked", flag, "many"]).unwrap_err();
            assert!(e.to_string().contains("expected a count or off"), "{e}");
            assert!(Args::try_parse_from(["iked", flag, "-1"]).is_err());
        }
        // strongswan.conf: charon's 0 is no limit; a flag wins.
        let text = "charon {\n cookie_threshold = 0\n cookie_threshold_ip = 2\n \
                    block_threshold = 0\n init_limit_half_open = 100\n}\n";
        let (a, taken) = with_conf(&["iked", "--block-threshold", "8"], text).unwrap();
        assert_eq!(a.cookie_threshold, Some(Limit::Off));
        assert_eq!(a.cookie_threshold_ip, Some(Limit::Count(2)));
        assert_eq!(a.block_threshold, Some(Limit::Count(8)));
        assert_eq!(a.init_limit_half_open, Some(Limit::Count(100)));
        assert_eq!(taken.len(), 3, "{taken:?}");
        assert!(!taken.contains(&"charon.block_threshold".to_owned()));
        let e = with_conf(&["iked"], "charon {\n\n block_threshold = lots\n}\n").unwrap_err();
        assert_eq!(
            e,
            ["/etc/strongswan.conf:3: charon.block_threshold: \"lots\" is not a number"]
        );
    }

    #[test]
    fn follow_redirects_from_the_flag_or_strongswan_conf() {
        let a = Args::try_parse_from(["iked"]).unwrap();
        assert!(a.follow_redirects, "charon's default: yes");
        let a = Args::try_parse_from(["iked", "--follow-redirects", "no"]).unwrap();
        assert!(!a.follow_redirects);
        let (a, taken) = with_conf(&["iked"], "charon {\n follow_redirects = no\n}\n").unwrap();
        assert!(!a.follow_redirects);
        assert_eq!(taken, ["charon.follow_redirects"]);
    }

    #[test]
    fn inactivity_close_ike_from_the_flag_or_strongswan_conf() {
        let a = Args::try_parse_from(["iked"]).unwrap();
        assert!(!a.inactivity_close_ike, "charon's default: no");
        let a = Args::try_parse_from(["iked", "--inactivity-close-ike", "yes"]).unwrap();
        assert!(a.inactivity_close_ike);
        assert!(Args::try_parse_from(["iked", "--inactivity-close-ike", "maybe"]).is_err());
        let (a, taken) =
            with_conf(&["iked"], "charon {\n inactivity_close_ike = yes\n}\n").unwrap();
        assert!(a.inactivity_close_ike);
        assert_eq!(taken, ["charon.inactivity_close_ike"]);
        let (a, _) = with_conf(
            &["iked", "--inactivity-close-ike", "no"],
            "charon {\n inactivity_close_ike = yes\n}\n",
        )
        .unwrap();
        assert!(!a.inactivity_close_ike, "the flag wins");
        let e = with_conf(&["iked"], "charon {\n\n inactivity_close_ike = 2\n}\n").unwrap_err();
        assert_eq!(
            e,
            ["/etc/strongswan.conf:3: charon.inactivity_close_ike: \"2\" is not yes or no"]
        );
    }

    #[test]
    fn bad_strongswan_conf_values_are_all_located() {
        let e = with_conf(
            &["iked"],
            "charon {\n port = 70000\n retransmit_timeout = 0\n retransmit_base = x\n \
             fragment_size = 100\n install_routes = maybe\n}\n",
        )
        .unwrap_err();
        assert_eq!(
            e,
            [
                "/etc/strongswan.conf:2: charon.port: 70000 is out of range (a UDP port)",
                "/etc/strongswan.conf:6: charon.install_routes: \"maybe\" is not yes or no",
                "/etc/strongswan.conf:3: charon.retransmit_timeout: expected seconds, more than 0 and at most 3600",
                "/etc/strongswan.conf:4: charon.retransmit_base: \"x\" is not a number",
                "/etc/strongswan.conf:5: charon.fragment_size: expected 0 or octets from 256 to 65535",
            ]
        );
        // A bad value of a flag given on the command line is not read.
        assert!(with_conf(&["iked", "--port", "500"], "charon {\n port = x\n}\n").is_ok());
    }

    #[test]
    fn strongswan_conf_is_read_by_default_only_for_a_swanctl_conf() {
        let dir = std::env::temp_dir().join(format!("iked-sconf-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sconf = dir.join("strongswan.conf");
        std::fs::write(&sconf, "charon {\n}\n").unwrap();
        let swanctl = Path::new("/etc/swanctl/swanctl.conf");
        let yaml = Path::new("/etc/iked/iked.yaml");
        let env = Some(sconf.clone());
        assert_eq!(
            strongswan_conf_path(None, swanctl, None, env.clone()),
            Some(sconf.clone())
        );
        assert_eq!(strongswan_conf_path(None, yaml, None, env.clone()), None);
        assert_eq!(
            strongswan_conf_path(None, yaml, Some(ConfigFormat::Swanctl), env.clone()),
            Some(sconf.clone())
        );
        assert_eq!(
            strongswan_conf_path(None, swanctl, None, Some(dir.join("missing.conf"))),
            None
        );
        assert_eq!(
            strongswan_conf_path(Some(Path::new("none")), swanctl, None, env.clone()),
            None
        );
        assert_eq!(
            strongswan_conf_path(Some(&dir.join("x.conf")), yaml, None, None),
            Some(dir.join("x.conf")),
            "given: read even for YAML (and an error if missing)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
