//! A private MariaDB server for the import tests: `mariadb-install-db` into a fresh data directory, then
//! `mariadbd` on its own unix socket and a free loopback port; stopped by PID and its directory removed on
//! drop (also when a test fails).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to install when MariaDB is missing.
const INSTALL_HINT: &str = "MariaDB is needed by this test: apt-get install -y --no-install-recommends mariadb-server mariadb-client";

/// A running `mariadbd`.
pub struct MariaDb {
    child: Child,
    dir: PathBuf,
    /// Its unix socket.
    pub socket: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

/// `name` in PATH or in the sbin directories (where Debian puts `mariadbd`).
fn find(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found. {INSTALL_HINT}"))
}

/// True when the test runs as root (`mariadbd` then needs `--user=root`).
fn is_root() -> bool {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc/self")) == 0
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl MariaDb {
    /// Installs a data directory under `dir` and starts the server; panics with an install hint when MariaDB
    /// is missing.
    pub fn start(dir: &Path) -> MariaDb {
        let install = find("mariadb-install-db");
        let server = find("mariadbd");
        find("mariadb");
        let data = dir.join("data");
        let user: &[&str] = if is_root() { &["--user=root"] } else { &[] };
        let out = Command::new(install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(user)
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket = dir.join("mysqld.sock");
        // The port is free when chosen but may be taken before mariadbd binds it: then try another.
        for _ in 0..3 {
            let port = free_port();
            let log = dir.join("mariadbd.err");
            let child = Command::new(&server)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
                .arg(format!("--log-error={}", log.display()))
                .arg(format!("--port={port}"))
                .args(user)
                .args([
                    "--bind-address=127.0.0.1",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                    "--innodb-buffer-pool-size=16M",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mariadbd starts");
            let mut db = MariaDb {
                child,
                dir: dir.to_path_buf(),
                socket: socket.clone(),
                port,
            };
            if db.wait_ready(Duration::from_secs(120)) {
                return db;
            }
            db.stop();
            let _ = std::fs::remove_file(&socket);
            eprintln!(
                "mariadbd did not start on port {port}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("mariadbd did not start (see {})", dir.display());
    }

    /// Polls until the server answers on its socket, or it exits, or `limit` passes.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.socket.exists() && self.try_sql(None, "SELECT 1").is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    fn try_sql(&self, db: Option<&str>, sql: &str) -> Result<String, String> {
        use std::io::Write as _;
        let mut child = Command::new(find("mariadb"))
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["--user=root", "--batch", "--skip-column-names"])
            .args(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(sql.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs `sql` as root (in database `db` when given) with the `mariadb` client; returns its output.
    pub fn sql(&self, db: Option<&str>, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|e| panic!("mariadb failed: {e}"))
    }

    /// SIGTERM by PID, then SIGKILL if it has not exited after 30 s; reaps it.
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(self.dir.join("data"));
    }
}
