//! `kadeploy3d`: the Kadeploy REST server, with the simulated cluster registered as the `simulated` backend
//! (the default of `backend/kind`), so it runs out of the box on a laptop, and the real drivers of a site
//! (PXE, SSH, IPMI or command templates, kaagent broadcast) as the `site` backend. It runs in the
//! foreground or as a daemon (`-d`), writes a PID file (`-p`), reloads its configuration and reopens its
//! log files on SIGHUP, drains running workflows on SIGTERM, and checks a configuration (`--check-config`).

mod args;
mod backends;
mod boot;
mod check;
mod configure;
mod detach;
mod import_mysql;
mod logging;
mod pidfile;
mod run;

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = args::Args::parse();
    if args.check_config {
        return ExitCode::from(check::run(&args) as u8);
    }
    if let Some(url) = &args.import_mysql {
        return match import_mysql::run(url, args.database.as_deref(), &args.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kadeploy3d: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kadeploy3d: {e:#}");
            ExitCode::FAILURE
        }
    }
}
