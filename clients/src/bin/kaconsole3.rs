//! `kaconsole3`: Kadeploy's console client (spec §2.8).

use kadeploy_clients::{self as client, ClientEnv};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(client::console::kaconsole(&args, &ClientEnv::from_env()));
}
