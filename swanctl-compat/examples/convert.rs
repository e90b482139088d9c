//! `cargo run -p swanctl-compat --example convert -- FILE`: prints the iked
//! YAML equivalent of a swanctl.conf, or every problem in it (what
//! `ikectl convert FILE` is to do).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: convert SWANCTL.CONF");
        return ExitCode::from(2);
    };
    match swanctl_compat::convert_file(path) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
