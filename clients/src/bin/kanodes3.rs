//! `kanodes3`: Kadeploy's client, with the original options, outputs and exit codes (spec §2).

use kadeploy_clients::{self as client, ClientEnv};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(client::tools::kanodes(&args, &ClientEnv::from_env()));
}
