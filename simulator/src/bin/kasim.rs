//! `kasim`: simulate Kadeploy deployments of a virtual cluster in virtual time.

use clap::Parser;
use simulator::kasim::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    kasim::keep_freed_memory();
    let cli = Cli::parse();
    match kasim::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kasim: {e:#}");
            ExitCode::from(2)
        }
    }
}
