//! IPv6 router advertisements on the lab bridge (`radvd`): iPXE's autoconfiguration otherwise
//! waits about 16 s for a router at every boot before it fetches its profile.

use super::{LabNet, NetError};
use std::path::Path;
use std::process::{Child, Stdio};

/// A `radvd.conf` advertising no prefix and no default route on `bridge`: enough to end iPXE's
/// IPv6 wait, without giving the guests IPv6 routes.
pub fn radvd_config(bridge: &str) -> String {
    format!(
        "interface {bridge} {{\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  \
         AdvDefaultLifetime 0;\n}};\n"
    )
}

impl LabNet {
    /// Starts `radvd` in the namespace on the bridge, with its files (`radvd.conf`, `radvd.pid`,
    /// `radvd.log`) in `dir`. The caller owns the child; dropping the lab kills it anyway.
    pub fn spawn_router_advertiser(&self, dir: &Path) -> Result<Child, NetError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| NetError::Io { path, source }
        };
        let conf = dir.join("radvd.conf");
        std::fs::write(&conf, radvd_config(self.bridge())).map_err(io(&conf))?;
        let log_path = dir.join("radvd.log");
        let log = std::fs::File::create(&log_path).map_err(io(&log_path))?;
        // radvd warns, and older versions refuse, when the interface does not forward.
        self.exec(&["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])?;
        self.command("radvd")
            .args(["--nodaemon", "--logmethod", "stderr", "--config"])
            .arg(&conf)
            .arg("--pidfile")
            .arg(dir.join("radvd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| NetError::Spawn {
                command: "ip netns exec .. radvd (apt-get install -y radvd)".into(),
                source,
            })
    }
}
