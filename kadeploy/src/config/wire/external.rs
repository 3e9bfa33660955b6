//! Wire structs of `server.conf`'s `network`, `windows`, `environments`, `hooks` and `external` sections.

use serde::{Deserialize, Serialize};

/// Kadeploy's default `external/default_connector`.
pub const DEFAULT_CONNECTOR: &str = "ssh -A -l root -q -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                                     -o PreferredAuthentications=publickey -o BatchMode=yes";

/// `network/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Network {
    /// `server_hostname` (the host name).
    pub server_hostname: Option<String>,
    /// `ports/*`.
    pub ports: Ports,
    /// `tcp_buffer_size` (8192, unused).
    pub tcp_buffer_size: u64,
    /// `vlan/*`.
    pub vlan: Vlan,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            server_hostname: None,
            ports: Ports::default(),
            tcp_buffer_size: 8192,
            vlan: Vlan::default(),
        }
    }
}

/// `network/ports/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Ports {
    /// `kadeploy_server` (25300).
    pub kadeploy_server: u16,
    /// `ssh` (22).
    pub ssh: u16,
    /// `test_deploy_env` (25300).
    pub test_deploy_env: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            kadeploy_server: 25300,
            ssh: 22,
            test_deploy_env: 25300,
        }
    }
}

/// `network/vlan/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Vlan {
    /// `hostname_suffix` (`''`), e.g. `-kavlan-VLAN_ID`.
    pub hostname_suffix: String,
    /// `set_cmd` (`''`).
    pub set_cmd: String,
}

/// `windows/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Windows {
    /// `reboot/*`.
    pub reboot: RebootWindow,
    /// `check/*`.
    pub check: CheckWindow,
}

/// `windows/reboot/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RebootWindow {
    /// `size` (50).
    pub size: usize,
    /// `sleep_time` in seconds (10); fractions are accepted.
    pub sleep_time: f64,
}

impl Default for RebootWindow {
    fn default() -> Self {
        RebootWindow {
            size: 50,
            sleep_time: 10.0,
        }
    }
}

/// `windows/check/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct CheckWindow {
    /// `size` (50; the manual says 22).
    pub size: usize,
}

impl Default for CheckWindow {
    fn default() -> Self {
        CheckWindow { size: 50 }
    }
}

/// `environments/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Environments {
    /// `deployment/*`.
    pub deployment: Deployment,
    /// `max_preinstall_size` in MB (20).
    pub max_preinstall_size: u64,
    /// `max_postinstall_size` in MB (20).
    pub max_postinstall_size: u64,
}

impl Default for Environments {
    fn default() -> Self {
        Environments {
            deployment: Deployment::default(),
            max_preinstall_size: 20,
            max_postinstall_size: 20,
        }
    }
}

/// `environments/deployment/*`: directories on the nodes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Deployment {
    /// `extraction_dir` (`/mnt/dest`).
    pub extraction_dir: String,
    /// `rambin_dir` (`/rambin`).
    pub rambin_dir: String,
    /// `tarball_dir` (`/tmp`).
    pub tarball_dir: String,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            extraction_dir: "/mnt/dest".into(),
            rambin_dir: "/rambin".into(),
            tarball_dir: "/tmp".into(),
        }
    }
}

/// `hooks/*`: commands where `WORKFLOW_ID` is substituted (`''`: none).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Hooks {
    /// `end_of_deployment`.
    pub end_of_deployment: String,
    /// `end_of_reboot`.
    pub end_of_reboot: String,
    /// `end_of_power`.
    pub end_of_power: String,
}

/// `external/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct External {
    /// `default_connector`, substituted for `DEFAULT_CONNECTOR`.
    pub default_connector: String,
    /// `taktuk/*`.
    pub taktuk: Taktuk,
    /// `bittorrent/*`.
    pub bittorrent: Option<Bittorrent>,
    /// `kastafior/*`.
    pub kastafior: Binary,
    /// `kascade/*`.
    pub kascade: Kascade,
    /// `mkfs`: extra arguments per file system.
    pub mkfs: Vec<Mkfs>,
    /// `tar`: extra tar options (`''`).
    pub tar: String,
}

impl Default for External {
    fn default() -> Self {
        External {
            default_connector: DEFAULT_CONNECTOR.into(),
            taktuk: Taktuk::default(),
            bittorrent: None,
            kastafior: Binary {
                binary: "kastafior".into(),
            },
            kascade: Kascade::default(),
            mkfs: Vec::new(),
            tar: String::new(),
        }
    }
}

/// `external/taktuk/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Taktuk {
    /// `connector` (`DEFAULT_CONNECTOR`).
    pub connector: String,
    /// `tree_arity` (0: work-stealing).
    pub tree_arity: u32,
    /// `auto_propagate` (true).
    pub auto_propagate: bool,
    /// `outputs_size` (20000).
    pub outputs_size: u64,
}

impl Default for Taktuk {
    fn default() -> Self {
        Taktuk {
            connector: "DEFAULT_CONNECTOR".into(),
            tree_arity: 0,
            auto_propagate: true,
            outputs_size: 20000,
        }
    }
}

/// `external/bittorrent/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Bittorrent {
    /// `tracker_ip`.
    pub tracker_ip: Option<String>,
    /// `download_timeout` in seconds.
    pub download_timeout: Option<u64>,
}

/// `external/kastafior/*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Binary {
    /// `binary`.
    pub binary: String,
}

/// `external/kascade/*`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Kascade {
    /// `binary` (`kascade`).
    pub binary: String,
    /// `args` (`''`).
    pub args: String,
}

impl Default for Kascade {
    fn default() -> Self {
        Kascade {
            binary: "kascade".into(),
            args: String::new(),
        }
    }
}

/// An item of `external/mkfs`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Mkfs {
    /// `fstype`: mandatory.
    pub fstype: Option<String>,
    /// `args`: mandatory.
    pub args: Option<String>,
}
