//! Deployable environments as the engine sees them (Kadeploy's environment description, spec §8).

use crate::config::Archive;
use hal::{FsaPart, ImageKind, ImageSpec};

/// An environment to deploy.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    /// Name (`debian12-min`).
    pub name: String,
    /// Version number.
    pub version: u32,
    /// Owner.
    pub user: String,
    /// `linux`, `xen`, `bsd`, `windows`, `other`.
    pub os: String,
    /// The image and its layout.
    pub image: ImageSpec,
    /// Kernel path inside the environment (`/vmlinuz`).
    pub kernel: String,
    /// Initrd path inside the environment (may be empty).
    pub initrd: String,
    /// Extra kernel parameters.
    pub kernel_params: String,
    /// Hypervisor path inside the environment (xen).
    pub hypervisor: String,
    /// Hypervisor parameters (xen).
    pub hypervisor_params: String,
    /// File system of the deploy partition (`ext4`).
    pub filesystem: String,
    /// Partition type (`0x83` = 131).
    pub partition_type: u32,
    /// The image holds several partitions (fsa).
    pub multipart: bool,
    /// `options/partitions`: the fsarchiver id of each file system and the device it is restored to.
    pub fsa_partitions: Vec<FsaPart>,
    /// Environment pre-install archive, if any.
    pub preinstall: Option<Archive>,
    /// User post-install archives (Kadeploy keeps the step when the list is empty).
    pub postinstalls: Vec<Archive>,
}

impl Environment {
    /// A small Linux tarball environment, handy for simulations and tests.
    pub fn sample_tarball(size: u64, ratio: f64) -> Self {
        Environment {
            name: "debian12-min".into(),
            version: 1,
            user: "root".into(),
            os: "linux".into(),
            image: ImageSpec {
                path: "/var/lib/kadeploy/envs/debian12-min.tgz".into(),
                kind: ImageKind::Tar,
                compression: "gzip".into(),
                size,
                uncompressed_size: Some((size as f64 * ratio) as u64),
            },
            kernel: "/vmlinuz".into(),
            initrd: "/initrd.img".into(),
            kernel_params: String::new(),
            hypervisor: String::new(),
            hypervisor_params: String::new(),
            filesystem: "ext4".into(),
            partition_type: 0x83,
            multipart: false,
            fsa_partitions: Vec::new(),
            preinstall: None,
            postinstalls: Vec::new(),
        }
    }

    /// `name:version`, as logged.
    pub fn label(&self) -> String {
        format!("{}:{}", self.name, self.version)
    }

    /// Kadeploy's short image kind: `tgz`, `tbz2`, `txz`, `tzst`, `ddgz`, ..., `fsa`.
    pub fn short_kind(&self) -> String {
        let suffix = match self.image.compression.as_str() {
            "gzip" => "gz",
            "bzip2" => "bz2",
            "xz" => "xz",
            "zstd" => "zst",
            _ => "",
        };
        match self.image.kind {
            ImageKind::Tar => format!("t{suffix}"),
            ImageKind::Dd => format!("dd{suffix}"),
            ImageKind::Fsa => "fsa".into(),
        }
    }
}
