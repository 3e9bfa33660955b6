//! [`PxeWriter`]: turns a [`BootProfile`] into per-node profile files, chaining from the `dhcp` method's
//! loader to the `localboot`/`networkboot` loader when they differ.

use super::PxeError;
use super::config::{FileNaming, PxeConfig, PxeMethod};
use super::render::{Boot, disk_number, render};
use crate::netboot::{BootProfile, NetBoot, atomic};
use crate::node::{NodeId, NodeInfo};
use crate::outcome::{NodeError, Outcomes};
use async_trait::async_trait;
use std::net::IpAddr;
use std::sync::Arc;
use tracing::debug;

/// The file name of `node`'s profile under `naming` (spec §7).
pub fn profile_file_name(naming: FileNaming, node: &NodeInfo) -> Result<String, PxeError> {
    Ok(match naming {
        FileNaming::Ip => node.address.to_string(),
        FileNaming::IpHex => match node.address {
            IpAddr::V4(v4) => v4.octets().iter().map(|o| format!("{o:02X}")).collect(),
            IpAddr::V6(_) => {
                return Err(PxeError::Config(format!(
                    "{}: ip_hex file names need an IPv4 address",
                    node.name
                )));
            }
        },
        FileNaming::Hostname => node.name.clone(),
        FileNaming::HostnameShort => node.short_name().to_string(),
    })
}

/// Writes boot profiles for the nodes of one cluster.
#[derive(Clone)]
pub struct PxeWriter {
    config: Arc<PxeConfig>,
    nodes: Arc<Vec<NodeInfo>>,
}

impl PxeWriter {
    /// A writer for the node table `nodes` (indexed by [`NodeId`]).
    pub fn new(config: PxeConfig, nodes: Vec<NodeInfo>) -> Self {
        PxeWriter {
            config: Arc::new(config),
            nodes: Arc::new(nodes),
        }
    }

    /// Checks the configuration without writing anything.
    pub fn validate(&self) -> Result<(), PxeError> {
        self.config.validate()
    }

    /// Writes `profile` for one node, synchronously.
    pub fn write_node(&self, node: NodeId, profile: &BootProfile) -> Result<(), PxeError> {
        let info = self
            .nodes
            .get(node.index())
            .ok_or_else(|| PxeError::Config(format!("node {node} is not in the node table")))?;
        let c = &self.config;
        match profile {
            BootProfile::Custom {
                name,
                content,
                singularities,
            } => {
                let prefix = format!("{}/pxe-{name}", c.dhcp.export_path(&c.userfiles));
                let mut text = content.clone();
                if let Some(values) = singularities {
                    let value = values
                        .get(&info.name)
                        .or_else(|| values.get(info.short_name()))
                        .map_or("", String::as_str);
                    text = text.replace("NODE_SINGULARITY", value);
                }
                write_profile(&c.dhcp, info, &text.replace("FILES_PREFIX", &prefix))
            }
            BootProfile::DeployKernel {
                kernel,
                initrd,
                params,
            } => {
                let boot = Boot::Network {
                    kernel,
                    initrd,
                    params,
                };
                self.write_chained(&c.networkboot, &c.headers.networkboot, info, &boot)
            }
            BootProfile::LocalDisk {
                device,
                partition,
                system,
            } => {
                let boot = Boot::Local {
                    disk: disk_number(device),
                    part: *partition,
                    device,
                    system: system.as_ref(),
                };
                self.write_chained(&c.localboot, &c.headers.localboot, info, &boot)
            }
        }
    }

    fn write_chained(
        &self,
        method: &PxeMethod,
        header: &str,
        node: &NodeInfo,
        boot: &Boot<'_>,
    ) -> Result<(), PxeError> {
        let c = &self.config;
        if !c.dhcp.same_loader(method) {
            let binary = method.binary.as_deref().ok_or_else(|| {
                PxeError::Config(
                    "binary: mandatory for localboot and networkboot methods that differ from dhcp"
                        .into(),
                )
            })?;
            let chain = render(&c.dhcp, &c.headers.dhcp, &Boot::Chain { binary });
            write_profile(&c.dhcp, node, &chain)?;
        }
        write_profile(method, node, &render(method, header, boot))
    }
}

fn write_profile(method: &PxeMethod, node: &NodeInfo, text: &str) -> Result<(), PxeError> {
    let path = method
        .profiles_dir
        .join(profile_file_name(method.naming, node)?);
    atomic::write(&path, text.as_bytes(), false).map_err(|source| PxeError::Io {
        path: path.display().to_string(),
        source,
    })?;
    debug!(node = %node.name, path = %path.display(), "wrote boot profile");
    Ok(())
}

#[async_trait]
impl NetBoot for PxeWriter {
    async fn set_profile(&self, nodes: &[NodeId], profile: &BootProfile) -> Outcomes {
        let this = self.clone();
        let list = nodes.to_vec();
        let profile = profile.clone();
        let job = tokio::task::spawn_blocking(move || {
            Outcomes::from_fn(&list, |n| {
                this.write_node(n, &profile)
                    .map_err(|e| NodeError::new(e.kind(), e.to_string()))
            })
        });
        match job.await {
            Ok(outcomes) => outcomes,
            Err(e) => Outcomes::all(
                nodes,
                Err(NodeError::new(
                    crate::ErrorKind::CommandFailed,
                    format!("profile writer failed: {e}"),
                )),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    fn node(name: &str, ip: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            address: ip.parse().unwrap(),
        }
    }

    fn tree(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("hal-pxe-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("pxelinux.cfg")).unwrap();
        fs::create_dir_all(root.join("grub.cfg")).unwrap();
        root
    }

    #[test]
    fn file_names() {
        let n = node("graphene-1.nancy.grid5000.fr", "10.0.66.1");
        assert_eq!(
            profile_file_name(FileNaming::IpHex, &n).unwrap(),
            "0A004201"
        );
        assert_eq!(profile_file_name(FileNaming::Ip, &n).unwrap(), "10.0.66.1");
        assert_eq!(
            profile_file_name(FileNaming::Hostname, &n).unwrap(),
            "graphene-1.nancy.grid5000.fr"
        );
        assert_eq!(
            profile_file_name(FileNaming::HostnameShort, &n).unwrap(),
            "graphene-1"
        );
        let v6 = node("a", "fe80::1");
        assert!(profile_file_name(FileNaming::IpHex, &v6).is_err());
    }

    #[tokio::test]
    async fn chains_from_pxelinux_to_grub_and_substitutes_custom() {
        let root = tree("chain");
        let dhcp = PxeMethod::new(
            "PXElinux",
            &root,
            None,
            "tftp",
            "srv",
            "pxelinux.cfg",
            "ip_hex",
        )
        .unwrap();
        let grub = PxeMethod::new(
            "GrubPXE",
            &root,
            Some("grubpxe.0".into()),
            "tftp",
            "srv",
            "grub.cfg",
            "ip",
        )
        .unwrap();
        let mut config = PxeConfig::single(dhcp, "userfiles");
        config.localboot = grub;
        config.headers.dhcp = "PROMPT 0".into();
        config.validate().unwrap();
        let writer = PxeWriter::new(config, vec![node("n-1.site", "10.0.0.11")]);
        let nodes = [NodeId(0)];

        let out = writer
            .set_profile(
                &nodes,
                &BootProfile::LocalDisk {
                    device: "/dev/sdb".into(),
                    partition: 3,
                    system: None,
                },
            )
            .await;
        assert!(out.failures().is_empty(), "{out:?}");
        let chain = fs::read_to_string(root.join("pxelinux.cfg/0A00000B")).unwrap();
        assert_eq!(
            chain,
            "PROMPT 0\nDEFAULT chain\nLABEL chain\n\tKERNEL /grubpxe.0\n\tAPPEND keeppxe\n"
        );
        let grub = fs::read_to_string(root.join("grub.cfg/10.0.0.11")).unwrap();
        assert!(grub.contains("set root=(hd1,3)"), "{grub}");

        let custom = BootProfile::Custom {
            name: "alice".into(),
            content: "KERNEL FILES_PREFIX--k\nAPPEND id=NODE_SINGULARITY".into(),
            singularities: Some([("n-1.site".to_string(), "42".to_string())].into()),
        };
        assert!(
            writer
                .set_profile(&nodes, &custom)
                .await
                .failures()
                .is_empty()
        );
        let text = fs::read_to_string(root.join("pxelinux.cfg/0A00000B")).unwrap();
        assert_eq!(text, "KERNEL /userfiles/pxe-alice--k\nAPPEND id=42");

        let bare = BootProfile::Custom {
            name: "bob".into(),
            content: "KERNEL FILES_PREFIX--k\nAPPEND id=NODE_SINGULARITY".into(),
            singularities: None,
        };
        assert!(
            writer
                .set_profile(&nodes, &bare)
                .await
                .failures()
                .is_empty()
        );
        let text = fs::read_to_string(root.join("pxelinux.cfg/0A00000B")).unwrap();
        assert_eq!(
            text, "KERNEL /userfiles/pxe-bob--k\nAPPEND id=NODE_SINGULARITY",
            "without singularities the word stays, as in Kadeploy"
        );
        let out = writer.set_profile(&[NodeId(0), NodeId(7)], &custom).await;
        assert_eq!(out.ok_nodes(), vec![NodeId(0)]);
        assert_eq!(out.failures()[0].1.kind, crate::ErrorKind::Config);
        fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn missing_directory_is_reported_per_node() {
        let root = tree("missing");
        let dhcp =
            PxeMethod::new("IPXE", &root, None, "http", "srv", "nowhere", "hostname").unwrap();
        let config = PxeConfig::single(dhcp, "u");
        assert!(config.validate().is_err());
        let writer = PxeWriter::new(config, vec![node("a", "10.0.0.1")]);
        let profile = BootProfile::DeployKernel {
            kernel: "k".into(),
            initrd: "i".into(),
            params: String::new(),
        };
        let out = writer.set_profile(&[NodeId(0)], &profile).await;
        assert_eq!(out.failures()[0].1.kind, crate::ErrorKind::CommandFailed);
        fs::remove_dir_all(&root).unwrap();
    }
}
