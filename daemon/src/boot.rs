//! The embedded network boot services (DHCP, TFTP, HTTP) of `<config>/netboot.conf`.

use anyhow::Context as _;
use hal::netboot::services::ServicesConfig;
use kadeploy_server::metrics_http::BootServices;
use std::path::Path;

/// The embedded boot services' file in the configuration directory (new file, `kabootd`'s format).
pub const NETBOOT_FILE: &str = "netboot.conf";

/// The services of `<dir>/netboot.conf`, when that file exists; it has `kabootd`'s format, with relative
/// paths resolved against the configuration directory. Nodes of `clusters` with a `mac` get a DHCP
/// reservation (their address and host name) unless `netboot.conf` already reserves that MAC.
pub fn services(
    dir: &Path,
    clusters: &[kadeploy::config::ClusterConfig],
) -> anyhow::Result<Option<ServicesConfig>> {
    let file = dir.join(NETBOOT_FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut config =
        ServicesConfig::from_yaml(&text).with_context(|| format!("in {}", file.display()))?;
    if let Some(t) = config.tftp.as_mut() {
        t.root = dir.join(&t.root);
    }
    if let Some(h) = config.http.as_mut() {
        h.root = dir.join(&h.root);
    }
    if let Some(d) = config.dhcp.as_mut() {
        d.lease_file = d.lease_file.as_ref().map(|f| dir.join(f));
        add_reservations(d, clusters)?;
    }
    Ok(Some(config))
}

/// The text of `<dir>/netboot.conf`, when readable.
pub fn text(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(NETBOOT_FILE)).ok()
}

/// Which services a configuration runs (for `/metrics`).
pub fn running(config: Option<&ServicesConfig>) -> BootServices {
    config.map_or_else(BootServices::default, |c| BootServices {
        dhcp: c.dhcp.is_some(),
        tftp: c.tftp.is_some(),
        http: c.http.is_some(),
    })
}

/// Adds a DHCP reservation for every cluster node with a `mac` that `dhcp.hosts` does not list yet.
fn add_reservations(
    dhcp: &mut hal::netboot::dhcp::DhcpConfig,
    clusters: &[kadeploy::config::ClusterConfig],
) -> anyhow::Result<()> {
    for cluster in clusters {
        for node in &cluster.nodes {
            let Some(mac) = cluster.macs.get(&node.name) else {
                continue;
            };
            if dhcp.hosts.iter().any(|h| h.mac == *mac) {
                continue;
            }
            let std::net::IpAddr::V4(ip) = node.address else {
                anyhow::bail!("{}: a DHCPv4 reservation needs an IPv4 address", node.name);
            };
            dhcp.hosts.push(hal::netboot::dhcp::Host {
                mac: *mac,
                ip,
                hostname: Some(node.name.clone()),
                boot: None,
                ipxe: None,
            });
        }
    }
    Ok(())
}
