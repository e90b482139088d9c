//! `ikectl`: controls a running iked over its control socket
//! (docs/control-protocol.md). Exit status 0 on success, 1 on failure
//! (with the reason on stderr), 2 on a usage error.

// No arithmetic that can overflow, divide by zero or panic (time included:
// `Instant + Duration` panics on overflow): checked or saturating
// operations only. Tests may.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ike::control::{self, Request, Response};

/// Control iked.
#[derive(Debug, Parser)]
#[command(name = "ikectl", version)]
struct Args {
    /// iked's control socket.
    #[arg(long, value_name = "SOCKET", default_value = control::DEFAULT_SOCKET)]
    control: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Bring a connection up; returns when its IKE SA and children are up.
    Up {
        /// Connection name.
        name: String,
        /// Only this child (default: all of the connection's children).
        #[arg(long)]
        child: Option<String>,
        /// Give up waiting after SECS seconds (default: until iked gives up).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
    },
    /// Delete the connection's IKE SAs; returns when they are gone.
    Down {
        /// Connection name.
        name: String,
        /// Give up waiting after SECS seconds (default 30).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
    },
    /// Re-read the configuration file; errors change nothing.
    Reload,
    /// Show IKE and Child SAs.
    Status {
        /// Print the JSON response (stable, documented).
        #[arg(long)]
        json: bool,
    },
    /// Show the virtual IP pools and their leases.
    Pools {
        /// Print the JSON response (stable, documented).
        #[arg(long)]
        json: bool,
    },
    /// Send the clients of established IKE SAs to another gateway
    /// (RFC 5685, as swanctl --redirect).
    Redirect {
        /// An IKE SA's number, or the peer's identity or address.
        target: String,
        /// The gateway: an address or a DNS name.
        gateway: String,
    },
    /// Print a swanctl.conf (and the files it includes) as the equivalent
    /// iked YAML, or every problem in it. Needs no running iked.
    Convert {
        /// The swanctl.conf.
        file: PathBuf,
    },
}

fn request(socket: &PathBuf, req: &Request, wait: Option<Duration>) -> anyhow::Result<Response> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to iked at {}", socket.display()))?;
    s.set_read_timeout(wait)?;
    s.write_all(control::encode_line(req).as_bytes())?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .context("reading iked's answer")?;
    if line.is_empty() {
        bail!("iked closed the connection without answering");
    }
    Ok(control::decode_response(&line)?)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (req, json) = match &args.cmd {
        Cmd::Convert { file } => {
            return match swanctl_compat::convert_file(file) {
                Ok(yaml) => {
                    print!("{yaml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            };
        }
        Cmd::Up {
            name,
            child,
            timeout,
        } => (
            Request::Up {
                connection: name.clone(),
                child: child.clone(),
                timeout_secs: *timeout,
            },
            false,
        ),
        Cmd::Down { name, timeout } => (
            Request::Down {
                connection: name.clone(),
                timeout_secs: *timeout,
            },
            false,
        ),
        Cmd::Reload => (Request::Reload {}, false),
        Cmd::Status { json } => (Request::Status {}, *json),
        Cmd::Pools { json } => (Request::Pools {}, *json),
        Cmd::Redirect { target, gateway } => (
            Request::Redirect {
                target: target.clone(),
                gateway: gateway.clone(),
            },
            false,
        ),
    };
    // The daemon answers within the request's own timeout; allow a margin.
    let wait = match &req {
        Request::Up { timeout_secs, .. } => {
            timeout_secs.map(|t| Duration::from_secs(t.saturating_add(5)))
        }
        Request::Down { timeout_secs, .. } => Some(Duration::from_secs(
            timeout_secs.unwrap_or(30).saturating_add(5),
        )),
        _ => Some(Duration::from_secs(30)),
    };
    let resp = match request(&args.control, &req, wait) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ikectl: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        print!("{}", control::encode_line(&resp));
    }
    match resp {
        Response::Error { kind, message } => {
            if !json {
                eprintln!(
                    "ikectl: {message} ({})",
                    control::encode_line(&kind).trim().trim_matches('"')
                );
            }
            ExitCode::FAILURE
        }
        _ if json => ExitCode::SUCCESS,
        Response::Up {
            connection,
            ike_sa,
            children,
        } => {
            println!(
                "{connection}: IKE SA #{ike_sa} established, children up: {}",
                if children.is_empty() {
                    "-".to_string()
                } else {
                    children.join(", ")
                }
            );
            ExitCode::SUCCESS
        }
        Response::Down {
            connection,
            ike_sas,
        } => {
            if ike_sas.is_empty() {
                println!("{connection}: no IKE SA to delete");
            } else {
                let ids: Vec<String> = ike_sas.iter().map(|i| format!("#{i}")).collect();
                println!("{connection}: deleted IKE SA {}", ids.join(", "));
            }
            ExitCode::SUCCESS
        }
        Response::Reloaded {
            added,
            removed,
            changed,
            unchanged,
        } => {
            let l = |v: &[String]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.join(", ")
                }
            };
            println!("configuration reloaded");
            println!("  added:     {}", l(&added));
            println!("  removed:   {}", l(&removed));
            println!("  changed:   {}", l(&changed));
            println!("  unchanged: {}", l(&unchanged));
            ExitCode::SUCCESS
        }
        Response::Status { ike_sas, traps } => {
            print!("{}", control::format_status(&ike_sas));
            print!("{}", control::format_traps(&traps));
            ExitCode::SUCCESS
        }
        Response::Pools { pools } => {
            print!("{}", control::format_pools(&pools));
            ExitCode::SUCCESS
        }
        Response::Redirected { ike_sas, gateway } => {
            let ids: Vec<String> = ike_sas.iter().map(|i| format!("#{i}")).collect();
            println!("redirecting IKE SA {} to {gateway}", ids.join(", "));
            ExitCode::SUCCESS
        }
    }
}
