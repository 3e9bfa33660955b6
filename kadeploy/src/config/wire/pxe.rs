//! Wire structs of `server.conf`'s `pxe/{dhcp,localboot,networkboot}` (`CommonConfig#pxemethod`).

use serde::{Deserialize, Serialize};

/// `pxe/*`: `dhcp` is mandatory; `localboot` and `networkboot` default to the `dhcp` method.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Pxe {
    /// `dhcp`: the NBP given by DHCP, chaining to the others.
    pub dhcp: Option<PxeMethod>,
    /// `localboot`: boots the deployed system from disk.
    pub localboot: Option<PxeMethod>,
    /// `networkboot`: boots a kernel over the network (deploy kernel, user kernels).
    pub networkboot: Option<PxeMethod>,
}

/// One PXE method section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct PxeMethod {
    /// `method`: `PXElinux`, `GPXElinux`, `IPXE` or `GrubPXE` (`PXElinux`).
    pub method: String,
    /// `repository`: mandatory TFTP/HTTP root, e.g. `/var/lib/tftpboot`.
    pub repository: Option<String>,
    /// `binary`: NBP inside the repository, mandatory for `localboot` and `networkboot`.
    pub binary: Option<String>,
    /// `export/*`.
    pub export: PxeExport,
    /// `profiles/*`.
    pub profiles: PxeProfiles,
    /// `userfiles/*`: mandatory for `dhcp`.
    pub userfiles: Option<PxeUserfiles>,
}

impl Default for PxeMethod {
    fn default() -> Self {
        PxeMethod {
            method: "PXElinux".into(),
            repository: None,
            binary: None,
            export: PxeExport::default(),
            profiles: PxeProfiles::default(),
            userfiles: None,
        }
    }
}

/// `export/*` of a PXE method.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct PxeExport {
    /// `kind`: `tftp`, `http` or `ftp` (`tftp`).
    pub kind: String,
    /// `server`: host in http/ftp URLs (`LOCAL_IP`).
    pub server: String,
}

impl Default for PxeExport {
    fn default() -> Self {
        PxeExport {
            kind: "tftp".into(),
            server: "LOCAL_IP".into(),
        }
    }
}

/// `profiles/*` of a PXE method.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct PxeProfiles {
    /// `directory`, relative to the repository unless absolute (`pxelinux.cfg`).
    pub directory: String,
    /// `filename`: `ip`, `ip_hex`, `hostname` or `hostname_short` (`ip_hex`).
    pub filename: String,
}

impl Default for PxeProfiles {
    fn default() -> Self {
        PxeProfiles {
            directory: "pxelinux.cfg".into(),
            filename: "ip_hex".into(),
        }
    }
}

/// `userfiles/*` of the `dhcp` method: the cache of user PXE files.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct PxeUserfiles {
    /// `directory`: mandatory.
    pub directory: Option<String>,
    /// `max_size` in MB: mandatory.
    pub max_size: Option<u64>,
    /// `concurrency_level` (10).
    pub concurrency_level: u32,
}

impl Default for PxeUserfiles {
    fn default() -> Self {
        PxeUserfiles {
            directory: None,
            max_size: None,
            concurrency_level: 10,
        }
    }
}
