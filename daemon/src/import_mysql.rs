//! `kadeploy3d --import-mysql URL`: imports a running Kadeploy 3.3 site's MySQL/MariaDB database
//! (environments, rights, node states, statistics) into this server's SQLite store, prints what it did per
//! table and every row it could not import as it was, then exits: 0 when every row was imported as it was,
//! 2 when some rows were reported, 1 on an error (then nothing was written).

mod source;

use anyhow::Context as _;
use kadeploy_server::migrate;
use kadeploy_server::store::Store;
use mysql::{Opts, OptsBuilder};
use source::MysqlSource;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one read may wait (sorting a large `log` table comes before its first row).
const READ_TIMEOUT: Duration = Duration::from_secs(1800);
/// How long one write may wait.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest packet accepted from the server (a Kadeploy 3.3 row is a few kilobytes; TEXT is 64 KiB at
/// most), instead of the server's own `max_allowed_packet`.
const MAX_PACKET: usize = 16 << 20;
/// Exit status when rows were skipped or altered.
const EXIT_REPORTED: i32 = 2;

/// The connection options of `url`: `mysql://user[:password]@host[:port]/database[?socket=/path]`.
/// Without a password in the URL, `MYSQL_PWD` gives it (as for MySQL's own clients). TCP is used unless
/// `socket` names a unix socket.
fn options(url: &str) -> anyhow::Result<Opts> {
    let opts = Opts::from_url(url).map_err(|e| anyhow::anyhow!("--import-mysql: {e}"))?;
    let mut b = OptsBuilder::from_opts(opts.clone()).prefer_socket(false);
    if opts.get_pass().is_none()
        && let Ok(pass) = std::env::var("MYSQL_PWD")
    {
        b = b.pass(Some(pass));
    }
    if opts.get_tcp_connect_timeout().is_none() {
        b = b.tcp_connect_timeout(Some(CONNECT_TIMEOUT));
    }
    if opts.get_read_timeout().is_none() {
        b = b.read_timeout(Some(READ_TIMEOUT));
    }
    if opts.get_max_allowed_packet().is_none() {
        b = b.max_allowed_packet(Some(MAX_PACKET));
    }
    if opts.get_write_timeout().is_none() {
        b = b.write_timeout(Some(WRITE_TIMEOUT));
    }
    Ok(b.into())
}

/// The source for messages, without the password.
fn describe(opts: &Opts) -> String {
    let user = opts.get_user().unwrap_or("");
    let db = opts.get_db_name().unwrap_or("");
    match opts.get_socket() {
        Some(socket) => format!("mysql://{user}@localhost/{db} (socket {socket})"),
        None => format!(
            "mysql://{user}@{}:{}/{db}",
            opts.get_ip_or_hostname(),
            opts.get_tcp_port()
        ),
    }
}

/// Runs the import of `url` into `database` (or `server.conf`'s `database/file` in `config`), then exits
/// the process with the status described in the module documentation when rows were reported.
pub fn run(url: &str, database: Option<&Path>, config: &Path) -> anyhow::Result<()> {
    let store_path: PathBuf = match database {
        Some(p) => p.to_path_buf(),
        None => {
            let conf = kadeploy::config::load_server_conf(config)?;
            kadeploy_server::Settings::from_conf(&conf.value)?.database
        }
    };
    let opts = options(url)?;
    let from = describe(&opts);
    let mut source =
        MysqlSource::connect(opts).with_context(|| format!("Kadeploy 3.3 database {from}"))?;
    let store = Store::open(&store_path)
        .with_context(|| format!("opening the store {}", store_path.display()))?;
    println!(
        "Importing the Kadeploy 3.3 database {from} into {}",
        store_path.display()
    );
    let report = migrate::import(&store, &mut source, &mut |issue| println!("{issue}"))
        .context("import failed, nothing was written")?;
    print!("{report}");
    let (skipped, altered) = (report.skipped(), report.altered());
    println!("{skipped} rows skipped, {altered} rows altered");
    if skipped + altered > 0 {
        drop(store);
        std::process::exit(EXIT_REPORTED);
    }
    Ok(())
}
