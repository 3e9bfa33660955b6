//! snmpsim (PyPI `snmpsim`), the independent SNMP agent the SNMP clients are tested against: started on a
//! free loopback UDP port over a scratch directory of recordings, with the tests' v3 user (SHA, AES).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The v3 user snmpsim accepts.
pub const V3_USER: &str = "pduadmin";
/// Its authentication key (HMAC-SHA-96).
pub const V3_AUTH_KEY: &str = "authpass1";
/// Its privacy key (AES-128).
pub const V3_PRIV_KEY: &str = "privpass1";

/// A running snmpsim; killed, and its directory removed, when dropped.
pub struct Snmpsim {
    child: Child,
    /// The scratch directory (`data/` holds the recordings, `sim.log` the agent's output).
    pub dir: PathBuf,
    /// The loopback UDP port it answers on.
    pub port: u16,
}

impl Snmpsim {
    /// Starts snmpsim serving `recordings` (a file name in `data/`, whose stem is the community and the
    /// v3 context, and its `.snmprec` text) from a scratch directory named after `name`.
    pub fn start(name: &str, recordings: &[(&str, String)]) -> std::io::Result<Snmpsim> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{name}-snmpsim-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data"))?;
        std::fs::create_dir_all(dir.join("cache"))?;
        for (file, text) in recordings {
            std::fs::write(dir.join("data").join(file), text)?;
        }
        // snmpsim drops its privileges to `nobody`.
        Command::new("chmod")
            .arg("-R")
            .arg("a+rwX")
            .arg(&dir)
            .status()?;
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(dir.join("sim.log"))?;
        let child = Command::new("snmpsim-command-responder")
            .args(["--process-user=nobody", "--process-group=nogroup"])
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--cache-dir={}", dir.join("cache").display()))
            .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
            .arg(format!("--v3-user={V3_USER}"))
            .arg(format!("--v3-auth-key={V3_AUTH_KEY}"))
            .arg("--v3-auth-proto=SHA")
            .arg(format!("--v3-priv-key={V3_PRIV_KEY}"))
            .arg("--v3-priv-proto=AES")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Snmpsim { child, dir, port })
    }

    /// What the agent printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sim.log")).unwrap_or_default()
    }
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
