//! The `dhcp` section of the boot services YAML (a new key set, not in Kadeploy): the boot network,
//! PXE boot files per client kind, static reservations per node and an optional dynamic pool.
//!
//! ```yaml
//! dhcp:
//!   interface: br-boot             # optional: answer on this interface only
//!   server_ip: 10.0.0.1            # server identifier; next-server unless `next_server` is set
//!   subnet_mask: 255.255.255.0
//!   routers: [10.0.0.1]
//!   dns: [10.0.0.1]
//!   domain: lab.local
//!   lease_time: 3600               # seconds
//!   lease_file: /var/lib/kadeploy/dhcp.leases
//!   boot:
//!     bios: pxelinux.0             # option 93 = 0 (or absent)
//!     uefi: ipxe.efi               # option 93 = 6, 7, 9 (EFI)
//!     uefi_http: http://10.0.0.1/ipxe.efi   # option 93 = 15, 16 (UEFI HTTP boot)
//!     ipxe: http://10.0.0.1/boot.ipxe       # iPXE itself (option 77 "iPXE" or option 175)
//!     arch:                        # per architecture (option 93), before the above (not for iPXE)
//!       11: grubaa64.efi                    # ARM64 UEFI PXE
//!       19: http://10.0.0.1/grubaa64.efi    # ARM64 UEFI HTTP boot
//!   pool: {start: 10.0.0.100, end: 10.0.0.199}
//!   decline_hold: 600              # seconds a declined pool address stays out of offers
//!   max_declined: 1024             # declined addresses remembered at most
//!   hosts:
//!     - {mac: "52:54:00:00:00:01", ip: 10.0.0.11, hostname: node-1, boot: grubpxe.0}
//! ```

pub use crate::netboot::Mac;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// `boot`: the boot file handed to each kind of client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootFiles {
    /// Legacy BIOS PXE ROMs.
    pub bios: Option<String>,
    /// UEFI PXE (x86, x64, EFI BC).
    pub uefi: Option<String>,
    /// UEFI HTTP boot (a URL).
    pub uefi_http: Option<String>,
    /// iPXE itself: a script (file or URL) instead of the ROM loader, which would loop.
    pub ipxe: Option<String>,
    /// `arch`: the boot file of clients of one architecture (option 93's code: 7 x64 UEFI, 11 ARM64
    /// UEFI, 16 x64 UEFI HTTP, 19 ARM64 UEFI HTTP...), before the kind's file above; iPXE clients
    /// get `ipxe` whatever their architecture.
    pub arch: BTreeMap<u16, String>,
}

/// `hosts[]`: a static reservation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// `mac`: the node's boot interface.
    pub mac: Mac,
    /// `ip`: its address.
    pub ip: Ipv4Addr,
    /// `hostname`: option 12.
    #[serde(default)]
    pub hostname: Option<String>,
    /// `boot`: per-node boot file for PXE ROMs (overrides `boot/bios` and `boot/uefi`).
    #[serde(default)]
    pub boot: Option<String>,
    /// `ipxe`: per-node iPXE script (overrides `boot/ipxe`).
    #[serde(default)]
    pub ipxe: Option<String>,
}

/// `pool`: dynamic addresses, inclusive range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address.
    pub end: Ipv4Addr,
}

impl Pool {
    /// True when `ip` is in the pool.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.start..=self.end).contains(&ip)
    }
}

/// The `dhcp` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DhcpConfig {
    /// `interface`: bind to this interface only.
    pub interface: Option<String>,
    /// `listen` (`0.0.0.0:67`).
    pub listen: SocketAddr,
    /// `server_ip`: server identifier (option 54).
    pub server_ip: Ipv4Addr,
    /// `next_server`: TFTP server (siaddr, option 66); `server_ip` when absent.
    pub next_server: Option<Ipv4Addr>,
    /// `subnet_mask`: option 1.
    pub subnet_mask: Ipv4Addr,
    /// `routers`: option 3.
    pub routers: Vec<Ipv4Addr>,
    /// `dns`: option 6.
    pub dns: Vec<Ipv4Addr>,
    /// `domain`: option 15.
    pub domain: Option<String>,
    /// `lease_time` in seconds.
    pub lease_time: u32,
    /// `lease_file`: journal of leases, replayed at start.
    pub lease_file: Option<PathBuf>,
    /// `boot`: boot files per client kind.
    pub boot: BootFiles,
    /// `pool`: dynamic range; without it only reserved hosts get an answer.
    pub pool: Option<Pool>,
    /// `hosts`: static reservations.
    pub hosts: Vec<Host>,
    /// `decline_hold`: seconds a pool address declined by its lease holder stays out of offers (600).
    pub decline_hold: u32,
    /// `max_declined`: declined addresses remembered at most; the soonest to expire make room (1024).
    pub max_declined: usize,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        DhcpConfig {
            interface: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 67)),
            server_ip: Ipv4Addr::UNSPECIFIED,
            next_server: None,
            subnet_mask: Ipv4Addr::new(255, 255, 255, 0),
            routers: Vec::new(),
            dns: Vec::new(),
            domain: None,
            lease_time: 3600,
            lease_file: None,
            boot: BootFiles::default(),
            pool: None,
            hosts: Vec::new(),
            decline_hold: 600,
            max_declined: 1024,
        }
    }
}

impl DhcpConfig {
    /// Checks the section without touching the network; messages name the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.server_ip.is_unspecified() {
            return Err("dhcp/server_ip: mandatory".into());
        }
        if let Some(p) = self.pool
            && p.start > p.end
        {
            return Err("dhcp/pool: start is after end".into());
        }
        let mut macs = std::collections::BTreeSet::new();
        let mut ips = std::collections::BTreeSet::new();
        for h in &self.hosts {
            if !macs.insert(h.mac) {
                return Err(format!("dhcp/hosts: duplicate mac {}", h.mac));
            }
            if !ips.insert(h.ip) {
                return Err(format!("dhcp/hosts: duplicate ip {}", h.ip));
            }
            if self.pool.is_some_and(|p| p.contains(h.ip)) {
                return Err(format!("dhcp/hosts: {} is inside the dynamic pool", h.ip));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yaml_and_validates() {
        let yaml = "server_ip: 10.0.0.1\npool: {start: 10.0.0.100, end: 10.0.0.110}\nboot: {bios: pxelinux.0}\n\
                    hosts:\n  - {mac: '52:54:00:00:00:01', ip: 10.0.0.11, hostname: node-1}\n";
        let c: DhcpConfig = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(c.hosts[0].mac, Mac([0x52, 0x54, 0, 0, 0, 1]));
        assert_eq!(c.hosts[0].mac.to_string(), "52:54:00:00:00:01");
        assert_eq!(c.boot.bios.as_deref(), Some("pxelinux.0"));
        assert!(c.boot.arch.is_empty());
        c.validate().unwrap();
        let arch: BootFiles = serde_saphyr::from_str(
            "uefi: ipxe.efi\narch: {11: grubaa64.efi, 19: 'http://s/a.efi'}\n",
        )
        .unwrap();
        assert_eq!(arch.arch.get(&11).map(String::as_str), Some("grubaa64.efi"));
        assert_eq!(
            arch.arch.get(&19).map(String::as_str),
            Some("http://s/a.efi")
        );
        let mut bad = c.clone();
        bad.hosts.push(bad.hosts[0].clone());
        assert!(bad.validate().unwrap_err().contains("duplicate mac"));
    }
}
