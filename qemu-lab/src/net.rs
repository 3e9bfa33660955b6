//! The lab network: a namespace with a bridge, one tap per VM and the BMC addresses; removed on drop.

mod cleanup;
mod process;
mod radvd;

pub use cleanup::{
    NS_PREFIX, cleanup_registered, cleanup_stale, creator_pid, install_signal_cleanup,
    list_namespaces, namespace_pids, register_path, register_pid, teardown_namespace,
    unregister_path, unregister_pid,
};
pub use process::{alive, signal, terminate, wait_gone};
pub use radvd::radvd_config;

use process::run;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The bridge inside every lab namespace.
pub const BRIDGE: &str = "br0";
/// First host number of the nodes (`.11`).
pub const FIRST_NODE: u8 = 11;
/// First host number of the BMCs (`.201`).
pub const FIRST_BMC: u8 = 201;
/// Most taps a lab can have: the BMC addresses `.201`..`.254`.
pub const MAX_TAPS: usize = 254 - FIRST_BMC as usize + 1;

/// Why the lab network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A command could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A command exited non-zero.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its standard error.
        stderr: String,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The subnet is not a /24 network address (last octet 0).
    #[error("{0} is not a /24 network address (x.y.z.0)")]
    Subnet(Ipv4Addr),
    /// Too many taps for the address plan.
    #[error("{0} taps requested, at most {MAX_TAPS}")]
    TooManyTaps(usize),
    /// The lab name is empty, too long or has characters other than `[a-z0-9]`.
    #[error("lab name {0:?}: use 1 to 16 characters of [a-z0-9]")]
    Name(String),
    /// The SIGINT/SIGTERM handler could not be installed.
    #[error("signal handler: {0}")]
    Signals(String),
}

/// A lab network namespace: bridge [`BRIDGE`] with `.1/24` (the server) and the BMC addresses
/// `.201+i/32`, loopback up, taps `tap0`.. on the bridge. Drop kills whatever still runs in the
/// namespace, deletes it and removes `/etc/netns/<ns>`.
#[derive(Debug)]
pub struct LabNet {
    ns: String,
    prefix: [u8; 3],
    taps: Vec<String>,
}

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

impl LabNet {
    /// Creates namespace `kalab-<pid>-<name>` (a sequence number is appended after the first lab
    /// of this process) for the /24 `subnet`, with `taps` tap devices on the bridge.
    pub fn create(name: &str, subnet: Ipv4Addr, taps: usize) -> Result<LabNet, NetError> {
        let valid = !name.is_empty()
            && name.len() <= 16
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(NetError::Name(name.to_string()));
        }
        let [a, b, c, d] = subnet.octets();
        if d != 0 {
            return Err(NetError::Subnet(subnet));
        }
        if taps > MAX_TAPS {
            return Err(NetError::TooManyTaps(taps));
        }
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let suffix = if seq == 0 {
            String::new()
        } else {
            seq.to_string()
        };
        let ns = format!("{NS_PREFIX}{}-{name}{suffix}", std::process::id());
        run(&["ip", "netns", "add", &ns])?;
        cleanup::register_namespace(&ns);
        // From here on, Drop removes the namespace if a step fails.
        let mut net = LabNet {
            ns,
            prefix: [a, b, c],
            taps: Vec::new(),
        };
        net.exec(&["ip", "link", "set", "lo", "up"])?;
        net.exec(&["ip", "link", "add", BRIDGE, "type", "bridge"])?;
        net.exec(&[
            "ip",
            "link",
            "set",
            BRIDGE,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ])?;
        net.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", net.server_ip()),
            "dev",
            BRIDGE,
        ])?;
        for i in 0..taps {
            let tap = format!("tap{i}");
            net.exec(&["ip", "tuntap", "add", "dev", &tap, "mode", "tap"])?;
            net.exec(&["ip", "link", "set", &tap, "master", BRIDGE])?;
            net.exec(&["ip", "link", "set", &tap, "up"])?;
            let bmc = format!("{}/32", net.bmc_ip(i));
            net.exec(&["ip", "addr", "add", &bmc, "dev", BRIDGE])?;
            net.taps.push(tap);
        }
        net.exec(&["ip", "link", "set", BRIDGE, "up"])?;
        tracing::info!(ns = %net.ns, taps, "lab network up");
        Ok(net)
    }

    fn exec(&self, args: &[&str]) -> Result<String, NetError> {
        let mut full = vec!["ip", "netns", "exec", &self.ns];
        full.extend_from_slice(args);
        run(&full)
    }

    /// The namespace name.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// The bridge holding the server and BMC addresses (where DHCP listens).
    pub fn bridge(&self) -> &str {
        BRIDGE
    }

    /// The number of taps.
    pub fn taps(&self) -> usize {
        self.taps.len()
    }

    fn host(&self, n: u8) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, n)
    }

    /// The server address `.1` (DHCP, TFTP, HTTP, kadeploy3d).
    pub fn server_ip(&self) -> Ipv4Addr {
        self.host(1)
    }

    /// Tap `i` (panics when `i >= taps()`).
    pub fn tap(&self, i: usize) -> &str {
        &self.taps[i]
    }

    /// Node `i`'s address `.11+i` (its DHCP reservation; not configured on the server side).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        self.host(FIRST_NODE + u8::try_from(i).expect("node index"))
    }

    /// BMC `i`'s address `.201+i`, configured on the bridge for `i < taps()` so a BMC can bind it.
    pub fn bmc_ip(&self, i: usize) -> Ipv4Addr {
        self.host(FIRST_BMC + u8::try_from(i).expect("BMC index"))
    }

    /// `ip netns exec <ns> <program>`: add arguments, then spawn or run it.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// `/etc/netns/<ns>`, bind-mounted over `/etc` entries by `ip netns exec`.
    pub fn etc_dir(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.ns)
    }

    /// Writes `/etc/netns/<ns>/hosts` with localhost and `entries` (name, address), so programs
    /// run by `ip netns exec` resolve node and BMC names; returns its path.
    pub fn write_hosts(&self, entries: &[(&str, Ipv4Addr)]) -> Result<PathBuf, NetError> {
        let dir = self.etc_dir();
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| NetError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut text =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (name, ip) in entries {
            text.push_str(&format!("{ip}\t{name}\n"));
        }
        let path = dir.join("hosts");
        std::fs::write(&path, text).map_err(io(&path))?;
        Ok(path)
    }
}

impl Drop for LabNet {
    fn drop(&mut self) {
        teardown_namespace(&self.ns);
        tracing::info!(ns = %self.ns, "lab network removed");
    }
}
