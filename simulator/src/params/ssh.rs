//! `ssh`: the optional SSH endpoints of the simulated nodes (served by the `simssh` crate when
//! `kadeploy3d` runs the simulated backend): where each node answers and which keys it accepts besides
//! those the deployments install.

use crate::range::Check;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Nodes a `loopback` layout can address (127.1.0.1 up to 127.254.255.255).
pub const MAX_LOOPBACK_NODES: usize = 0x00FD_FFFF;

/// How each node's endpoint address is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SshAddresses {
    /// Node `i` (0-based, the order of `clusters.conf`) answers on 127.1.0.1 + `i`.
    #[default]
    Loopback,
    /// Each node answers on its own address from `clusters.conf` (which this host must own).
    Node,
}

/// `ssh`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SshParams {
    /// Port of every node's sshd.
    pub port: u16,
    /// `loopback` or `node`.
    pub addresses: SshAddresses,
    /// A file of public keys (OpenSSH `authorized_keys` lines) every node accepts, like a site's deploy
    /// key; relative to the configuration directory.
    pub authorized_keys: Option<PathBuf>,
    /// Connections open at once, over every node.
    pub max_connections: usize,
    /// Seconds without traffic before a connection is closed.
    pub idle_timeout: f64,
    /// An OpenSSH client configuration written at start, naming every node (`ssh -F FILE root@NODE`);
    /// relative to the configuration directory.
    pub ssh_config: Option<PathBuf>,
}

impl Default for SshParams {
    fn default() -> Self {
        SshParams {
            port: 22,
            addresses: SshAddresses::Loopback,
            authorized_keys: None,
            max_connections: 256,
            idle_timeout: 300.0,
            ssh_config: None,
        }
    }
}

impl SshParams {
    /// Checks the values' ranges.
    pub(crate) fn validate(&self) -> Check {
        if self.port == 0 {
            return Err(("ssh.port".into(), "must be between 1 and 65535".into()));
        }
        if !(1..=4096).contains(&self.max_connections) {
            return Err((
                "ssh.max_connections".into(),
                "must be between 1 and 4096".into(),
            ));
        }
        crate::range::in_range("ssh.idle_timeout", self.idle_timeout, 0.0, true, 86400.0)
    }

    /// The address node `index` answers on, given its configured address; `None` when a loopback
    /// layout has no address left for it.
    pub fn address_of(&self, index: usize, configured: IpAddr) -> Option<IpAddr> {
        match self.addresses {
            SshAddresses::Node => Some(configured),
            SshAddresses::Loopback if index < MAX_LOOPBACK_NODES => {
                let base = u32::from(Ipv4Addr::new(127, 1, 0, 1));
                Some(IpAddr::V4(Ipv4Addr::from(base + index as u32)))
            }
            SshAddresses::Loopback => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_follow_the_node_order_and_stop_at_the_range_end() {
        let p = SshParams::default();
        let any = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.address_of(0, any), Some("127.1.0.1".parse().unwrap()));
        assert_eq!(p.address_of(255, any), Some("127.1.1.0".parse().unwrap()));
        assert_eq!(
            p.address_of(MAX_LOOPBACK_NODES - 1, any),
            Some("127.254.255.255".parse().unwrap())
        );
        assert_eq!(p.address_of(MAX_LOOPBACK_NODES, any), None);
        let node = SshParams {
            addresses: SshAddresses::Node,
            ..SshParams::default()
        };
        assert_eq!(node.address_of(7, any), Some(any));
        assert!(
            SshParams {
                port: 0,
                ..SshParams::default()
            }
            .validate()
            .is_err()
        );
    }
}
