//! `kadeploy3d`'s command line: Kadeploy's daemon options (`-p/--pidfile`, `-d/--detach`) and this
//! server's (`--bind`, `--database`, `--time-scale`, `--check-config`, `--log-dir`, `--shutdown-grace`).

use clap::Parser;
use std::path::PathBuf;

/// Kadeploy server.
#[derive(Parser, Clone, Debug)]
#[command(name = "kadeploy3d", version)]
pub struct Args {
    /// Configuration directory (server.conf, clusters.conf, cluster files, simulation.conf).
    #[arg(
        short = 'c',
        long,
        env = "KADEPLOY3_CONFIG_DIR",
        default_value = "/etc/kadeploy3"
    )]
    pub config: PathBuf,
    /// Listen on this address instead of server.conf's port (e.g. 127.0.0.1:0).
    #[arg(long)]
    pub bind: Option<std::net::SocketAddr>,
    /// SQLite database file instead of server.conf's `database/file`.
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// Pace simulated workflows at N x real time instead of server.conf's `backend/time_scale`
    /// (0 = virtual time as fast as possible).
    #[arg(long, value_name = "N")]
    pub time_scale: Option<f64>,
    /// Import a Kadeploy 3.3 MySQL/MariaDB database (mysql://user[:pass]@host[:port]/db[?socket=PATH];
    /// MYSQL_PWD gives the password) into the database, print what was imported, and exit.
    #[arg(long, value_name = "URL")]
    pub import_mysql: Option<String>,
    /// Write the daemon's PID to FILE (removed at exit); none by default, as Kadeploy.
    #[arg(short = 'p', long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Run in the background: fork, new session, stdin from /dev/null, stdout and stderr appended to
    /// output.log and error.log in the log directory; returns once the daemon serves.
    #[arg(short = 'd', long, visible_alias = "detach")]
    pub daemon: bool,
    /// Where `--daemon` writes output.log and error.log.
    #[arg(
        long,
        env = "KADEPLOY3_LOG_DIR",
        default_value = "/var/log/kadeploy3",
        value_name = "DIR"
    )]
    pub log_dir: PathBuf,
    /// Read and check the whole configuration, print every warning and error, and exit (1 on errors).
    #[arg(long)]
    pub check_config: bool,
    /// On SIGTERM, wait this long for running workflows before cancelling them.
    #[arg(long, value_name = "SECONDS", default_value_t = 25.0)]
    pub shutdown_grace: f64,
}
