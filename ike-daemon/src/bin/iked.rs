//! `iked`: the IKEv2 daemon. Runs in the foreground and logs to stderr
//! (journald-friendly); SIGTERM or SIGINT delete every IKE SA and remove
//! all kernel state it installed. See docs/control-protocol.md for `ikectl`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ike::config::ConfigFormat;
use ike::from_config::Ports;
use ike_daemon::daemon::{self, Options};

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
    /// charon.cookie_threshold); 0: always a COOKIE, `off`: never.
    #[arg(long, value_name = "N|off", default_value = "30", value_parser = threshold)]
    cookie_threshold: Threshold,
    /// Largest IP datagram of an IKE fragment (RFC 7383), IP and UDP
    /// headers included (strongSwan's charon.fragment_size); 0: 576 for
    /// IPv4, 1280 for IPv6. Default: the configuration's
    /// settings.fragment_size, else 1280.
    #[arg(long, value_name = "BYTES", value_parser = fragment_size)]
    fragment_size: Option<usize>,
}

/// A count, or `off` (None).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Threshold(Option<usize>);

fn threshold(s: &str) -> Result<Threshold, String> {
    if s == "off" {
        return Ok(Threshold(None));
    }
    s.parse::<usize>()
        .map(|n| Threshold(Some(n)))
        .map_err(|_| format!("'{s}': expected a count or off"))
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!(
            "'{s}': expected seconds, more than 0 and at most 3600"
        )),
    }
}

fn base(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (1.0..=10.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}': expected a factor from 1 to 10")),
    }
}

fn fragment_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v == 0 || (ike::sa::MIN_FRAGMENT_SIZE..=65_535).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}': expected 0 or octets from {} to 65535",
            ike::sa::MIN_FRAGMENT_SIZE
        )),
    }
}

fn yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("'{s}': expected yes or no")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
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

    if let Some(path) = args.check_config {
        // The configuration, then its credentials as the daemon reads them.
        let checked = daemon::load_config_as(&path, args.format)
            .and_then(|c| daemon::creds::check(&c, &path).map(|warnings| (c, warnings)));
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
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }

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
            cookie_threshold: args.cookie_threshold.0,
            ..ike::sa::EndpointConfig::default()
        },
        keep_alive: std::time::Duration::from_secs(args.keep_alive),
        delete_rekeyed_delay: std::time::Duration::from_secs(args.delete_rekeyed_delay),
        fragment_size: args.fragment_size,
        updown_timeout: std::time::Duration::from_secs_f64(args.updown_timeout),
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
            a.cookie_threshold,
            Threshold(Some(30)),
            "strongSwan's default"
        );
        let t = |v: &str| {
            Args::try_parse_from(["iked", "--cookie-threshold", v]).map(|a| a.cookie_threshold)
        };
        assert_eq!(t("0").unwrap(), Threshold(Some(0)));
        assert_eq!(t("off").unwrap(), Threshold(None));
        let e = t("many").unwrap_err();
        assert!(e.to_string().contains("expected a count or off"), "{e}");
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
}
