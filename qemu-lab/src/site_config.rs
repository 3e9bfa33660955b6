//! The lab as a Kadeploy site: the `kadeploy3d` configuration directory (server, cluster, commands,
//! boot services, PXE tree) and the clients' configuration, written for the lab's nodes and BMCs.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Name of the lab's cluster in `clusters.conf`.
pub const CLUSTER: &str = "lab";
/// The lab's DNS domain: nodes are `node-<i>.lab`, their BMCs `node-<i>-bmc`.
pub const DOMAIN: &str = "lab";
/// IPMI user of the lab's BMCs.
pub const BMC_USER: &str = "ADMIN";
/// kadeploy3d's REST port inside the lab namespace.
pub const API_PORT: u16 = 25300;
/// Seconds between `wait_reboot`'s probe rounds in the lab (Kadeploy's 5 s put every boot on a 7 s
/// grid with the probe's timeout: a boot 0.1 s late waited a whole round, and the runs' times and the
/// model's predictions jumped by it).
pub const PROBE_PERIOD: f64 = 1.0;
/// Seconds a probe waits for a lab VM's port (the lab's bridge answers in well under a millisecond).
pub const PROBE_TIMEOUT: f64 = 1.0;

/// One node of the lab as the site sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteNode {
    /// Fully qualified name (`node-1.lab`).
    pub name: String,
    /// Address reserved for its NIC.
    pub ip: Ipv4Addr,
    /// MAC of its NIC.
    pub mac: String,
    /// Address of its BMC.
    pub bmc_ip: Ipv4Addr,
}

impl SiteNode {
    /// Short host name (`node-1`).
    pub fn short(&self) -> &str {
        self.name.split('.').next().unwrap_or(&self.name)
    }
}

/// How power is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerDriver {
    /// Kadeploy's way: `ipmitool -I lanplus` command templates; the console on the VM's serial socket.
    Ipmitool,
    /// The native IPMI-over-LAN client of `hal` for the hard level and the status; the console through
    /// serial-over-LAN (`ipmitool ... sol activate`).
    Native,
    /// `hal`'s Redfish client (sessions, HTTPS) against each VM's `kalab-redfish`, for the hard level
    /// and the status.
    Redfish,
    /// `hal`'s SNMP client (v3 authPriv) against `kalab-pdu`, for the very_hard level and the status; the
    /// cluster has no hard commands, so reboots escalate from soft straight to the PDU.
    Pdu,
}

/// The lab PDU's host name (it listens on the server's address).
pub const PDU_HOST: &str = "pdu.lab";
/// The lab PDU's SNMPv3 user.
pub const PDU_USER: &str = "kalab";
/// The lab PDU's model.
pub const PDU_MODEL: &str = "apc";

/// Everything the configuration refers to.
#[derive(Clone, Debug)]
pub struct SiteSpec {
    /// The configuration directory to write (`KADEPLOY3_CONFIG_DIR` of the server).
    pub dir: PathBuf,
    /// The server's address on the lab bridge.
    pub server_ip: Ipv4Addr,
    /// The lab bridge (the DHCP server answers there only).
    pub bridge: String,
    /// Nodes, in order.
    pub nodes: Vec<SiteNode>,
    /// The deploy kernel and initrd to copy into the boot tree, and the kernel command line.
    pub deploy_vmlinuz: PathBuf,
    /// See `deploy_vmlinuz`.
    pub deploy_initrd: PathBuf,
    /// Deploy kernel command line.
    pub deploy_params: String,
    /// The deployer's private SSH key.
    pub ssh_key: PathBuf,
    /// The BMCs' password.
    pub bmc_password: String,
    /// Directory of the VMs: node `node-1`'s console socket is `<vm_dir>/node-1/console.sock`.
    pub vm_dir: PathBuf,
    /// Power driver.
    pub power: PowerDriver,
    /// The cluster's `install_bootloader` script.
    pub install_bootloader: String,
    /// Disk device of the nodes.
    pub block_device: String,
    /// A static `kaagent` the server sends over SSH to nodes whose agent does not answer.
    pub agent_binary: Option<PathBuf>,
    /// The directories of the environments' files, named by `server://` references
    /// (`security/server_file_directories`).
    pub server_files: Vec<PathBuf>,
    /// Firmware and network boot method (DHCP boot files, PXE methods, profile headers).
    pub boot: crate::boot::LabBoot,
}

/// Partitions of a lab node's disk: swap 1 (64 MiB), prod 2 (256 MiB), deploy 3 (the rest).
const PARTITION_SCRIPT: &str = r#"#!/bin/sh
# The lab's partitioning: swap 1, prod 2, deploy 3 (Kadeploy's KADEPLOY_* variables).
set -e
DISK="${KADEPLOY_BLOCK_DEVICE:-/dev/vda}"
sfdisk --wipe always --quiet "$DISK" <<EOF
label: dos
,64M,S
,256M,L
,,L,*
EOF
# Let udev-less deploy kernels see the new partitions.
blockdev --rereadpt "$DISK" 2>/dev/null || true
i=0
while [ ! -b "${DISK}${KADEPLOY_DEPLOY_PART_NUM:-3}" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); mdev -s 2>/dev/null || true; done
"#;

/// Writes the server configuration directory and returns the client configuration directory.
pub fn write(spec: &SiteSpec) -> std::io::Result<PathBuf> {
    let dir = &spec.dir;
    let tftp = dir.join("tftpboot");
    for d in [
        "keys",
        "tftpboot/kernels",
        "tftpboot/pxelinux.cfg",
        "tftpboot/userfiles",
        "client",
    ] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy(&spec.deploy_vmlinuz, tftp.join("kernels/deploy-vmlinuz"))?;
    std::fs::copy(&spec.deploy_initrd, tftp.join("kernels/deploy-initrd"))?;
    std::fs::copy(&spec.ssh_key, dir.join("keys/id_deploy"))?;
    set_mode(&dir.join("keys/id_deploy"), 0o600)?;
    std::fs::write(dir.join("ipmi.pass"), format!("{}\n", spec.bmc_password))?;
    set_mode(&dir.join("ipmi.pass"), 0o600)?;
    for name in ["pdu-auth.pass", "pdu-priv.pass", "pdu-community.pass"] {
        std::fs::write(dir.join(name), format!("{}-{name}\n", spec.bmc_password))?;
        set_mode(&dir.join(name), 0o600)?;
    }
    std::fs::write(dir.join("partition.sh"), PARTITION_SCRIPT)?;
    std::fs::write(dir.join("install_bootloader"), &spec.install_bootloader)?;
    if let Some(agent) = &spec.agent_binary {
        // Stripped, the static agent is ~4 MB instead of ~50 MB to send over SSH.
        let dest = dir.join("kaagent");
        let stripped = std::process::Command::new("strip")
            .arg("-o")
            .arg(&dest)
            .arg(agent)
            .status()
            .is_ok_and(|s| s.success());
        if !stripped {
            std::fs::copy(agent, &dest)?;
        }
        set_mode(&dest, 0o755)?;
    }
    std::fs::write(dir.join("server.conf"), server_conf(spec))?;
    std::fs::write(dir.join("clusters.conf"), clusters_conf(spec))?;
    std::fs::write(dir.join("lab-cluster.conf"), cluster_conf(spec))?;
    std::fs::write(dir.join("netboot.conf"), netboot_conf(spec))?;
    let client = dir.join("client");
    std::fs::write(
        client.join("client.conf"),
        format!(
            "---\ndefault: {CLUSTER}\nservers:\n  - name: {CLUSTER}\n    hostname: 127.0.0.1\n    port: {API_PORT}\n    secure: true\n"
        ),
    )?;
    Ok(client)
}

/// `/etc/hosts` lines of the lab (nodes and BMCs), for the namespace's hosts file.
pub fn hosts(spec: &SiteSpec) -> Vec<(String, Ipv4Addr)> {
    let mut out = vec![(format!("kadeploy.{DOMAIN}"), spec.server_ip)];
    for n in &spec.nodes {
        out.push((n.name.clone(), n.ip));
        out.push((n.short().to_string(), n.ip));
        out.push((format!("{}-bmc", n.short()), n.bmc_ip));
    }
    out.push((PDU_HOST.to_string(), spec.server_ip));
    out
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn server_conf(spec: &SiteSpec) -> String {
    let ip = spec.server_ip;
    let ipmi = match spec.power {
        PowerDriver::Native => {
            format!(
                "  ipmi: {{host: HOSTNAME_SHORT-bmc, port: 623, user: {BMC_USER}, password_file: ipmi.pass}}\n"
            )
        }
        PowerDriver::Redfish => format!(
            "  redfish: {{url: 'https://HOSTNAME_SHORT-bmc', user: {BMC_USER}, password_file: ipmi.pass, auth: session}}\n"
        ),
        PowerDriver::Pdu => {
            let outlets: String = spec
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    format!(
                        "      {}: {{host: {PDU_HOST}, outlet: {}}}\n",
                        n.name,
                        i + 1
                    )
                })
                .collect();
            format!(
                "  pdu:\n    model: {PDU_MODEL}\n    v3: {{user: {PDU_USER}, auth: sha, auth_password_file: pdu-auth.pass, \
                 priv_password_file: pdu-priv.pass}}\n    outlets:{}\n{outlets}",
                if outlets.is_empty() { " {}" } else { "" }
            )
        }
        PowerDriver::Ipmitool => String::new(),
    };
    let agent = if spec.agent_binary.is_some() {
        "  agent_binary: kaagent\n"
    } else {
        ""
    };
    let mut server_files: String = spec
        .server_files
        .iter()
        .map(|d| format!("    - '{}'\n", d.display().to_string().replace('\'', "''")))
        .collect();
    if server_files.is_empty() {
        server_files = "    []\n".into();
    }
    let pxe = spec.boot.pxe_conf(ip);
    format!(
        r#"---
# kadeploy3d for the QEMU lab (written by kalab).
database:
  file: kadeploy3.sqlite
backend:
  kind: site
  agent_port: 25301
  command_timeout: 600
  power_timeout: 30
{ipmi}{agent}ssh_private_key: keys/id_deploy
rights:
  kind: db
  almighty_users: root
# The ACL trusts the user header from the lab's own network namespace (only root can enter it).
authentication:
  acl:
    whitelist:
      - 127.0.0.1
      - {ip}
security:
  secure_server: true
  server_file_directories:
{server_files}network:
  server_hostname: kadeploy.{DOMAIN}
  ports:
    kadeploy_server: {API_PORT}
    ssh: 22
    test_deploy_env: 25300
windows:
  reboot:
    size: 50
    sleep_time: 1
  check:
    size: 50
environments:
  deployment:
    extraction_dir: /mnt/dest
    rambin_dir: /rambin
    tarball_dir: /tmp
pxe:
{pxe}external:
  mkfs:
    - fstype: ext4
      args: -F -q -O ^64bit,^metadata_csum
    - fstype: ext3
      args: -F -q
    - fstype: ext2
      args: -F -q
"#
    )
}

fn clusters_conf(spec: &SiteSpec) -> String {
    let mut s = format!(
        "---\n# The lab's VMs (written by kalab): each node has a DHCP reservation by its mac.\nclusters:\n  - name: {CLUSTER}\n    conf_file: lab-cluster.conf\n    nodes:\n"
    );
    for n in &spec.nodes {
        let _ = writeln!(
            s,
            "      - {{name: {}, address: {}, mac: '{}'}}",
            n.name, n.ip, n.mac
        );
    }
    s
}

fn cluster_conf(spec: &SiteSpec) -> String {
    let ipmi = |what: &str| {
        format!(
            "ipmitool -I lanplus -H HOSTNAME_SHORT-bmc -U {BMC_USER} -f {} chassis power {what}",
            spec.dir.join("ipmi.pass").display()
        )
    };
    let console = console_command(spec);
    format!(
        r#"---
# The lab cluster (written by kalab): QEMU VMs with a virtio disk, PXElinux boot, BMCs over IPMI.
partitioning:
  block_device: {dev}
  partitions:
    swap: 1
    prod: 2
    deploy: 3
  script: partition.sh
boot:
  sleep_time_before_ping: 5
  probe_period: {probe_period}
  probe_timeout: {probe_timeout}
  install_bootloader: install_bootloader
{next_boot}  kernels:
    user:
      params: console=ttyS0,115200
    deploy:
      vmlinuz: kernels/deploy-vmlinuz
      initrd: kernels/deploy-initrd
      params: {params}
      supported_fs: ext2, ext3, ext4
timeouts:
  reboot: 400
  kexec: 200
automata:
  macrosteps:
    SetDeploymentEnv:
      - {{type: Untrusted, retries: 0, timeout: 900}}
    BroadcastEnv:
      - {{type: Kascade, retries: 0, timeout: 900}}
    BootNewEnv:
      - {{type: Kexec, retries: 0, timeout: 900}}
      - {{type: Classical, retries: 0, timeout: 900}}
remoteops:
{power}  console:
    - name: soft
      cmd: {console}
kexec:
  repository: /dev/shm/kexec_repository
pxe:
  headers:
{headers}"#,
        dev = spec.block_device,
        probe_period = PROBE_PERIOD,
        probe_timeout = PROBE_TIMEOUT,
        headers = spec.boot.headers(),
        params = spec.deploy_params,
        power = if spec.power == PowerDriver::Pdu {
            // No hard level: reboots escalate from soft (SSH) to very_hard (the PDU's outlets).
            String::new()
        } else {
            format!(
                "  reboot:\n    - name: hard\n      cmd: {}\n  power_on:\n    - name: hard\n      cmd: {}\n  \
                 power_off:\n    - name: hard\n      cmd: {}\n  power_status:\n    - name: hard\n      cmd: {}\n",
                ipmi("cycle"),
                ipmi("on"),
                ipmi("off"),
                ipmi("status")
            )
        },
        next_boot = next_boot_device(spec),
    )
}

/// `boot/next_boot_device` of the cluster: with native power, PXE is set through the BMC before each
/// reboot, as a site with UEFI machines whose boot order is not network-first does (the lab's VMs boot
/// the network first anyway: this exercises the step); with Redfish, the device follows the boot profile
/// (`auto`: a one-time `Pxe` override before the deploy kernel, `Hdd` before the deployed system).
fn next_boot_device(spec: &SiteSpec) -> &'static str {
    match spec.power {
        PowerDriver::Native => "  next_boot_device: {device: pxe}\n",
        PowerDriver::Redfish => "  next_boot_device: {device: auto}\n",
        PowerDriver::Ipmitool | PowerDriver::Pdu => "",
    }
}

/// The cluster's console command: with native power, serial-over-LAN through the BMC as a site's
/// command does it (free the payload a killed console may hold, then attach); else the VM's serial
/// socket directly.
fn console_command(spec: &SiteSpec) -> String {
    if spec.power != PowerDriver::Native {
        return format!(
            "socat - UNIX-CONNECT:{}/HOSTNAME_SHORT/console.sock",
            spec.vm_dir.display()
        );
    }
    let ipmitool = format!(
        "ipmitool -I lanplus -H HOSTNAME_SHORT-bmc -U {BMC_USER} -f {}",
        spec.dir.join("ipmi.pass").display()
    );
    format!("{ipmitool} sol deactivate >/dev/null 2>&1; exec {ipmitool} sol activate")
}

fn netboot_conf(spec: &SiteSpec) -> String {
    let ip = spec.server_ip;
    format!(
        r#"---
# The lab's boot services, embedded in kadeploy3d (written by kalab). Reservations come from
# clusters.conf's mac keys; the boot files follow kalab's --firmware and --boot.
dhcp:
  interface: {bridge}
  server_ip: {ip}
  subnet_mask: 255.255.255.0
  routers: [{ip}]
  domain: {DOMAIN}
  lease_time: 86400
  lease_file: dhcp.leases
  boot:
{boot}tftp:
  listen: '{ip}:69'
  root: tftpboot
{http}"#,
        bridge = spec.bridge,
        boot = spec.boot.dhcp_boot(ip),
        http = if spec.boot.needs_http() {
            // GRUB's HTTP client waits for the server to close each connection.
            format!("http:\n  listen: '{ip}:80'\n  root: tftpboot\n  keep_alive: false\n")
        } else {
            String::new()
        },
    )
}

#[cfg(test)]
mod tests;
