//! Validated configuration of the PXE profile writer: Kadeploy's `pxe/{dhcp,localboot,networkboot}`
//! methods (spec §4.1.1) and the cluster's `pxe/headers`.

use super::PxeError;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Profile syntax of a PXE method (`method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// `PXElinux`: syslinux menus, TFTP only.
    PxeLinux,
    /// `GPXElinux`: syslinux menus loaded by gpxelinux (TFTP, HTTP, FTP).
    GPxeLinux,
    /// `IPXE`: iPXE scripts.
    Ipxe,
    /// `GrubPXE`: GRUB 2 configuration files.
    GrubPxe,
}

impl Syntax {
    /// Parses Kadeploy's method name.
    pub fn parse(name: &str) -> Result<Self, PxeError> {
        match name {
            "PXElinux" => Ok(Syntax::PxeLinux),
            "GPXElinux" => Ok(Syntax::GPxeLinux),
            "IPXE" => Ok(Syntax::Ipxe),
            "GrubPXE" => Ok(Syntax::GrubPxe),
            other => Err(PxeError::Config(format!(
                "method: unknown PXE method '{other}' (PXElinux, GPXElinux, IPXE, GrubPXE)"
            ))),
        }
    }
}

/// How files of the repository are reached by the node (`export/kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// `tftp`.
    Tftp,
    /// `http`.
    Http,
    /// `ftp`.
    Ftp,
}

impl ExportKind {
    /// Parses Kadeploy's export kind.
    pub fn parse(name: &str) -> Result<Self, PxeError> {
        match name {
            "tftp" => Ok(ExportKind::Tftp),
            "http" => Ok(ExportKind::Http),
            "ftp" => Ok(ExportKind::Ftp),
            other => Err(PxeError::Config(format!(
                "export/kind: unknown kind '{other}' (tftp, http, ftp)"
            ))),
        }
    }
}

/// How a node's profile file is named (`profiles/filename`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileNaming {
    /// `ip`: `10.0.66.1`.
    Ip,
    /// `ip_hex`: `0A004201` (uppercase, the PXElinux convention).
    IpHex,
    /// `hostname`: the fully qualified name.
    Hostname,
    /// `hostname_short`: the name without its domain.
    HostnameShort,
}

impl FileNaming {
    /// Parses Kadeploy's file naming kind.
    pub fn parse(name: &str) -> Result<Self, PxeError> {
        match name {
            "ip" => Ok(FileNaming::Ip),
            "ip_hex" => Ok(FileNaming::IpHex),
            "hostname" => Ok(FileNaming::Hostname),
            "hostname_short" => Ok(FileNaming::HostnameShort),
            other => Err(PxeError::Config(format!(
                "profiles/filename: unknown kind '{other}' (ip, ip_hex, hostname, hostname_short)"
            ))),
        }
    }
}

/// One PXE method section, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PxeMethod {
    /// Profile syntax.
    pub syntax: Syntax,
    /// The TFTP/HTTP root (`repository`).
    pub repository: PathBuf,
    /// The NBP inside the repository (`binary`); `None` for the `dhcp` method.
    pub binary: Option<String>,
    /// How nodes reach the repository.
    pub export: ExportKind,
    /// Host put in http/ftp URLs (`export/server`); the literal `LOCAL_IP` is replaced by
    /// [`PxeConfig::with_local_ip`].
    pub server: String,
    /// Directory of the profiles, absolute (`profiles/directory` resolved against the repository).
    pub profiles_dir: PathBuf,
    /// How profile files are named.
    pub naming: FileNaming,
}

impl PxeMethod {
    /// Builds a method from Kadeploy's string keys, checking the method/export combination.
    pub fn new(
        method: &str,
        repository: impl Into<PathBuf>,
        binary: Option<String>,
        export_kind: &str,
        server: &str,
        profiles_directory: &str,
        filename: &str,
    ) -> Result<Self, PxeError> {
        let syntax = Syntax::parse(method)?;
        let export = ExportKind::parse(export_kind)?;
        let supported = match syntax {
            Syntax::PxeLinux => export == ExportKind::Tftp,
            Syntax::GPxeLinux | Syntax::Ipxe => true,
            Syntax::GrubPxe => export != ExportKind::Ftp,
        };
        if !supported {
            return Err(PxeError::Config(format!(
                "export/kind: {method} does not support {export_kind}"
            )));
        }
        let repository = repository.into();
        let profiles_dir = repository.join(profiles_directory);
        Ok(PxeMethod {
            syntax,
            repository,
            binary,
            export,
            server: server.to_string(),
            profiles_dir,
            naming: FileNaming::parse(filename)?,
        })
    }

    /// The path a node uses to fetch `path` (relative to the repository) with this method (spec §7).
    pub fn export_path(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match (self.syntax, self.export) {
            (Syntax::GrubPxe, ExportKind::Tftp) => format!("(pxe)/{path}"),
            (Syntax::GrubPxe, _) => format!("(http,{})/{path}", self.server),
            (_, ExportKind::Tftp) => format!("/{path}"),
            (_, ExportKind::Http) => format!("http://{}/{path}", self.server),
            (_, ExportKind::Ftp) => format!("ftp://{}/{path}", self.server),
        }
    }

    /// Checks the directories exist, without writing anything.
    pub fn validate(&self) -> Result<(), PxeError> {
        for (key, dir) in [
            ("repository", &self.repository),
            ("profiles/directory", &self.profiles_dir),
        ] {
            if !dir.is_dir() {
                return Err(PxeError::Config(format!(
                    "{key}: {} is not a directory",
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    /// True when both methods load the same NBP with the same syntax (no chaining needed).
    pub(crate) fn same_loader(&self, other: &PxeMethod) -> bool {
        self.syntax == other.syntax && self.binary == other.binary
    }
}

/// Headers put before generated (non-custom) profiles: the cluster's `pxe/headers/*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    /// Before chain profiles written with the `dhcp` method.
    pub dhcp: String,
    /// Before local-boot profiles.
    pub localboot: String,
    /// Before network-boot profiles.
    pub networkboot: String,
}

/// Everything the profile writer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PxeConfig {
    /// `pxe/dhcp`: the NBP given by DHCP.
    pub dhcp: PxeMethod,
    /// `pxe/localboot` (the `dhcp` method when absent).
    pub localboot: PxeMethod,
    /// `pxe/networkboot` (the `dhcp` method when absent).
    pub networkboot: PxeMethod,
    /// The cluster's profile headers.
    pub headers: Headers,
    /// `userfiles/directory` of the `dhcp` method, relative to its repository.
    pub userfiles: String,
}

impl PxeConfig {
    /// A configuration where the three methods are `dhcp`.
    pub fn single(dhcp: PxeMethod, userfiles: impl Into<String>) -> Self {
        PxeConfig {
            localboot: dhcp.clone(),
            networkboot: dhcp.clone(),
            dhcp,
            headers: Headers::default(),
            userfiles: userfiles.into(),
        }
    }

    /// Replaces the literal `LOCAL_IP` in every method's export server by `ip`.
    pub fn with_local_ip(mut self, ip: IpAddr) -> Self {
        for m in [&mut self.dhcp, &mut self.localboot, &mut self.networkboot] {
            m.server = m.server.replace("LOCAL_IP", &ip.to_string());
        }
        self
    }

    /// Checks every method's directories.
    pub fn validate(&self) -> Result<(), PxeError> {
        self.dhcp.validate()?;
        self.localboot.validate()?;
        self.networkboot.validate()
    }

    /// The userfiles directory as an absolute path.
    pub fn userfiles_dir(&self) -> PathBuf {
        self.dhcp.repository.join(Path::new(&self.userfiles))
    }
}
