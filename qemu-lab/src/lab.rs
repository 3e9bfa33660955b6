//! A running lab: the network, one VM and one BMC per node, and `kadeploy3d` with the site backend,
//! all inside one namespace; dropping it stops everything and removes the namespace.

use crate::boot::LabBoot;
use crate::images::{self, DeployKernel, Inputs};
use crate::net::{self as cleanup, LabNet};
use crate::site_config::{self, PowerDriver, SiteNode, SiteSpec};
use crate::vm::{self, Accel, Vm, VmSpec};
use anyhow::{Context as _, bail};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The lab's /24.
pub const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 0);
/// The BMCs' password.
const BMC_PASSWORD: &str = "kalab-bmc";
/// The user who deploys (root grants them the rights on every node).
pub const USER: &str = "kalab";

/// What to bring up.
#[derive(Clone, Debug)]
pub struct LabSpec {
    /// Number of VMs.
    pub nodes: usize,
    /// Working directory (VM disks, consoles, the configuration); emptied first.
    pub dir: PathBuf,
    /// Cache of built images (kept across runs).
    pub cache: PathBuf,
    /// The static `kaagent` for the deploy kernel.
    pub kaagent: PathBuf,
    /// Directory of the workspace binaries (`kadeploy3d`, the clients, `kalab-bmc`).
    pub bin_dir: PathBuf,
    /// Memory per VM.
    pub memory_mib: u32,
    /// Disk size per VM.
    pub disk_mib: u64,
    /// TCG or KVM.
    pub accel: Accel,
    /// How kadeploy3d drives power.
    pub power: PowerDriver,
    /// Let kadeploy3d send `kaagent` over SSH where it does not answer (`backend/agent_binary`).
    pub agent_over_ssh: bool,
    /// Firmware and network boot method of the VMs.
    pub boot: LabBoot,
    /// A user's environment description (`--env FILE`), registered beside the lab's own ones.
    pub env_file: Option<PathBuf>,
}

/// A lab that is up.
pub struct Lab {
    /// The namespace and bridge.
    pub net: LabNet,
    /// The VMs, in node order.
    pub vms: Vec<Vm>,
    /// The nodes as the site knows them.
    pub nodes: Vec<SiteNode>,
    /// The server configuration directory.
    pub config_dir: PathBuf,
    /// The clients' configuration directory (`KADEPLOY3_CONFIG_DIR` of the clients).
    pub client_dir: PathBuf,
    /// The deployer's private key.
    pub key: PathBuf,
    /// The environments built for the lab.
    pub environments: Vec<images::Environment>,
    /// Seconds spent building images (cache hits are fast).
    pub build_seconds: f64,
    /// The lab's kernel (`bzImage`), which throwaway VMs boot (the busy-load probe's crowd).
    pub kernel: PathBuf,
    spec: LabSpec,
    /// The BMCs, in node order.
    bmcs: Vec<Child>,
    /// The Redfish services or the PDU of `--power redfish|pdu`.
    oob: Vec<Child>,
    radvd: Option<Child>,
    server: Option<Child>,
}

/// Fails with the `apt-get` line to run when a tool or firmware file the lab needs is missing.
fn check_tools(boot: LabBoot) -> anyhow::Result<()> {
    for (file, package) in boot.firmware().host_files() {
        if !Path::new(file).is_file() {
            bail!("{file} is missing: apt-get install -y {package}");
        }
    }
    for (tool, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("ipmitool", "ipmitool"),
        ("socat", "socat"),
        ("ssh-keygen", "openssh-client"),
    ] {
        if which(tool).is_none() {
            bail!("{tool} is missing: apt-get install -y {package}");
        }
    }
    Ok(())
}

/// The deployer's SSH key, made once in `cache`: the deploy kernel and environments embed its public
/// half, so a new key per run would rebuild them.
fn deployer_key(cache: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let key = cache.join("id_deploy");
    if !key.is_file() || !key.with_extension("pub").is_file() {
        let _ = std::fs::remove_file(&key);
        run(Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "kalab-deployer",
                "-f",
            ])
            .arg(&key))?;
    }
    Ok(key)
}

/// Reads a user's environment description and adds it to the lab's `environments` (names must differ).
fn add_user_env(
    environments: &mut Vec<images::Environment>,
    file: &Path,
) -> anyhow::Result<crate::user_env::UserEnv> {
    let u = crate::user_env::read(file)?;
    if environments.iter().any(|e| e.name == u.environment.name) {
        bail!(
            "{}: the lab's own environment is named {} too",
            u.environment.description.display(),
            u.environment.name
        );
    }
    environments.push(u.environment.clone());
    Ok(u)
}

/// The directories kadeploy3d may read `server://` files from: those of the environments that mark nodes
/// and of a user's description, each once.
fn server_dirs(
    environments: &[images::Environment],
    user_env: Option<&crate::user_env::UserEnv>,
) -> Vec<PathBuf> {
    environments
        .iter()
        .filter(|e| e.marks_nodes)
        .flat_map(|e| [&e.image, &e.postinstall])
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .chain(user_env.iter().flat_map(|u| u.server_dirs.clone()))
        .fold(Vec::new(), |mut dirs, d| {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
            dirs
        })
}

impl Lab {
    /// Builds the images, creates the network, writes the site configuration, starts the BMCs (VMs
    /// stay off) and `kadeploy3d`.
    pub fn up(spec: LabSpec) -> anyhow::Result<Lab> {
        check_tools(spec.boot)?;
        let _ = std::fs::remove_dir_all(&spec.dir);
        std::fs::create_dir_all(&spec.dir)?;
        let dir = std::fs::canonicalize(&spec.dir)?;
        std::fs::create_dir_all(&spec.cache)?;
        let key = deployer_key(&spec.cache)?;
        let public = std::fs::read_to_string(key.with_extension("pub"))?;

        let started = Instant::now();
        let inputs = Inputs {
            cache: spec.cache.clone(),
            authorized_key: public.trim().to_string(),
            kaagent: spec.kaagent.clone(),
        };
        let kernel: DeployKernel = images::deploy_kernel(&inputs).context("deploy kernel")?;
        let mut environments = vec![
            images::tarball_env(&inputs).context("tarball environment")?,
            images::dd_env(&inputs).context("dd environment")?,
        ];
        let user_env = match &spec.env_file {
            Some(file) => Some(add_user_env(&mut environments, file)?),
            None => None,
        };
        let build_seconds = started.elapsed().as_secs_f64();

        let _ = cleanup::cleanup_stale();
        cleanup::install_signal_cleanup()?;
        let net = LabNet::create("lab", SUBNET, spec.nodes)?;
        // iPXE waits ~16 s for an IPv6 router at every boot; an advertisement without prefix ends it.
        let radvd = net.spawn_router_advertiser(&dir)?;
        cleanup::register_pid(radvd.id());
        let vm_dir = dir.join("vms");
        let mut vms = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..spec.nodes {
            let name = format!("node-{}", i + 1);
            let vm_spec = VmSpec {
                name: name.clone(),
                mac: vm::lab_mac(i),
                tap: net.tap(i).to_string(),
                disk: vm_dir.join(format!("{name}.qcow2")),
                disk_size_mib: spec.disk_mib,
                memory_mib: spec.memory_mib,
                cpus: 1,
                accel: spec.accel,
                dir: vm_dir.clone(),
                firmware: spec.boot.firmware(),
                nic_boot: spec.boot.nic_boot(),
            };
            std::fs::create_dir_all(&vm_dir)?;
            vm::create_disk(&vm_spec.disk, vm_spec.disk_size_mib)?;
            vm::write_start_script(&vm_spec, &net)?;
            nodes.push(SiteNode {
                name: format!("{name}.{}", site_config::DOMAIN),
                ip: net.node_ip(i),
                mac: vm_spec.mac.clone(),
                bmc_ip: net.bmc_ip(i),
            });
            vms.push(Vm::new(vm_spec));
        }
        let config_dir = dir.join("kadeploy");
        let site_spec = SiteSpec {
            dir: config_dir.clone(),
            server_ip: net.server_ip(),
            bridge: net.bridge().to_string(),
            nodes: nodes.clone(),
            deploy_vmlinuz: kernel.vmlinuz.clone(),
            deploy_initrd: kernel.initrd.clone(),
            deploy_params: kernel.params.clone(),
            ssh_key: key.clone(),
            bmc_password: BMC_PASSWORD.into(),
            vm_dir: vm_dir.clone(),
            power: spec.power,
            install_bootloader: images::install_bootloader_script().to_string(),
            block_device: "/dev/vda".into(),
            agent_binary: spec.agent_over_ssh.then(|| spec.kaagent.clone()),
            server_files: server_dirs(&environments, user_env.as_ref()),
            boot: spec.boot,
        };
        let client_dir = site_config::write(&site_spec)?;
        spec.boot
            .write_files(&config_dir.join("tftpboot"), net.server_ip())
            .with_context(|| format!("{} boot files", spec.boot.label()))?;
        let hosts = site_config::hosts(&site_spec);
        let hosts: Vec<(&str, Ipv4Addr)> = hosts.iter().map(|(n, ip)| (n.as_str(), *ip)).collect();
        net.write_hosts(&hosts)?;

        let mut lab = Lab {
            net,
            vms,
            nodes,
            config_dir,
            client_dir,
            key,
            environments,
            build_seconds,
            kernel: kernel.vmlinuz.clone(),
            spec,
            bmcs: Vec::new(),
            oob: Vec::new(),
            radvd: Some(radvd),
            server: None,
        };
        lab.start_bmcs()?;
        lab.start_oob()?;
        lab.start_server()?;
        Ok(lab)
    }

    /// How kadeploy3d drives power (and the console: serial-over-LAN with native power).
    pub fn power(&self) -> PowerDriver {
        self.spec.power
    }

    /// The workspace binary `name`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.spec.bin_dir.join(name)
    }

    fn start_bmcs(&mut self) -> anyhow::Result<()> {
        let pass = self.spec.dir.join("bmc.pass");
        std::fs::write(&pass, BMC_PASSWORD)?;
        for (i, vm) in self.vms.iter().enumerate() {
            let log = std::fs::File::create(vm.spec().vm_dir().join("bmc.log"))?;
            let child = self
                .net
                .command(self.spec.bin_dir.join("kalab-bmc"))
                .arg("--listen")
                .arg(format!("{}:623", self.nodes[i].bmc_ip))
                .args(["--user", site_config::BMC_USER, "--password-file"])
                .arg(&pass)
                .arg("--start-script")
                .arg(vm.start_script())
                .arg("--pidfile")
                .arg(vm.pidfile())
                .arg("--qmp")
                .arg(vm.qmp_socket())
                .arg("--serial")
                .arg(vm.console_socket())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting kalab-bmc")?;
            cleanup::register_pid(child.id());
            self.bmcs.push(child);
        }
        Ok(())
    }

    /// `--power redfish`: a `kalab-redfish` per VM on its BMC address (port 443); `--power pdu`: one
    /// `kalab-pdu` on the server's address (port 161) whose outlet i powers node i.
    fn start_oob(&mut self) -> anyhow::Result<()> {
        let pass = self.spec.dir.join("bmc.pass");
        let mut commands: Vec<(Command, PathBuf)> = Vec::new();
        match self.spec.power {
            PowerDriver::Redfish => {
                for (i, vm) in self.vms.iter().enumerate() {
                    let mut cmd = self.net.command(self.spec.bin_dir.join("kalab-redfish"));
                    cmd.arg("--listen")
                        .arg(format!("{}:443", self.nodes[i].bmc_ip))
                        .args([
                            "--id",
                            self.nodes[i].short(),
                            "--user",
                            site_config::BMC_USER,
                        ])
                        .arg("--password-file")
                        .arg(&pass)
                        .arg("--vm-dir")
                        .arg(vm.spec().vm_dir());
                    commands.push((cmd, vm.spec().vm_dir().join("redfish.log")));
                }
            }
            PowerDriver::Pdu => {
                let c = &self.config_dir;
                let mut cmd = self.net.command(self.spec.bin_dir.join("kalab-pdu"));
                cmd.arg("--listen")
                    .arg(format!("{}:161", self.net.server_ip()))
                    .args(["--model", site_config::PDU_MODEL, "--write-community-file"])
                    .arg(c.join("pdu-community.pass"))
                    .args(["--v3-user", site_config::PDU_USER, "--v3-auth", "sha"])
                    .arg("--v3-auth-password-file")
                    .arg(c.join("pdu-auth.pass"))
                    .arg("--v3-priv-password-file")
                    .arg(c.join("pdu-priv.pass"));
                for vm in &self.vms {
                    cmd.arg("--outlet").arg(vm.spec().vm_dir());
                }
                commands.push((cmd, self.spec.dir.join("pdu.log")));
            }
            PowerDriver::Ipmitool | PowerDriver::Native => {}
        }
        for (mut cmd, log) in commands {
            let log = std::fs::File::create(log)?;
            let child = cmd
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting an out-of-band power service")?;
            cleanup::register_pid(child.id());
            self.oob.push(child);
        }
        Ok(())
    }

    fn start_server(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.spec.dir.join("kadeploy3d.log"))?;
        let child = self
            .net
            .command(self.bin("kadeploy3d"))
            .arg("-c")
            .arg(&self.config_dir)
            // The engine's micro-step ends, to the microsecond: the calibration's broadcast time
            // (kadeploy's own output gives whole seconds).
            .env("RUST_LOG", "info,kadeploy::engine::trace=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting kadeploy3d")?;
        cleanup::register_pid(child.id());
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let probe = self
                .net
                .command("bash")
                .args([
                    "-c",
                    &format!("exec 3<>/dev/tcp/127.0.0.1/{}", site_config::API_PORT),
                ])
                .stderr(Stdio::null())
                .status();
            if matches!(probe, Ok(s) if s.success()) {
                return Ok(());
            }
            if let Some(child) = self.server.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "kadeploy3d exited ({status}); see {}",
                    self.spec.dir.join("kadeploy3d.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("kadeploy3d did not listen within 30 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A client command (`kadeploy3`, `kaenv3`...) run as the lab's user inside the namespace.
    pub fn client(&self, tool: &str) -> Command {
        self.client_as(tool, USER)
    }

    /// A client command run as `user` inside the namespace (`root` is the almighty administrator).
    pub fn client_as(&self, tool: &str, user: &str) -> Command {
        let mut cmd = self.net.command(self.bin(tool));
        cmd.env("KADEPLOY3_CONFIG_DIR", &self.client_dir)
            .env("USER", user);
        cmd
    }

    /// Writes the node file (one name per line) and returns its path.
    pub fn node_file(&self, nodes: &[&SiteNode]) -> anyhow::Result<PathBuf> {
        let path = self.spec.dir.join("nodes");
        let text: String = nodes.iter().map(|n| format!("{}\n", n.name)).collect();
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// The VMs' firmware and network boot method.
    pub fn boot(&self) -> LabBoot {
        self.spec.boot
    }

    /// The user's environment of `--env FILE`, when there is one.
    pub fn user_environment(&self) -> Option<&images::Environment> {
        self.environments.iter().find(|e| !e.marks_nodes)
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }

    /// The BMC process of node `i` (to stop it and make the BMC unresponsive).
    pub fn bmc_pid(&self, i: usize) -> Option<u32> {
        self.bmcs.get(i).map(Child::id)
    }

    /// The `ssh` command (in the lab's namespace, as root, with the lab's key) that runs `command` on
    /// node `i`.
    pub fn ssh_command(&self, i: usize, command: &str) -> std::process::Command {
        let mut cmd = self.net.command("ssh");
        cmd.args([
            "-q",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-i",
        ])
        .arg(&self.key)
        .arg(format!("root@{}", self.nodes[i].ip))
        .arg(command);
        cmd
    }

    /// Runs `command` on node `i` over SSH with the deployer's key (inside the namespace).
    pub fn ssh(&self, i: usize, command: &str) -> anyhow::Result<String> {
        let out = self.ssh_command(i, command).output()?;
        if !out.status.success() {
            bail!(
                "ssh {}: exit {}: {}",
                self.nodes[i].name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut pids: Vec<u32> = self.bmcs.iter().chain(&self.oob).map(Child::id).collect();
        pids.extend(self.server.as_ref().map(Child::id));
        pids.extend(self.radvd.as_ref().map(Child::id));
        pids.extend(self.vms.iter().filter_map(Vm::pid));
        for pid in &pids {
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
        // Every process, the VMs' QEMUs included, is waited for by PID until its last thread is gone
        // (`net::terminate`): the next lab must not start while these still run.
        let left = crate::net::terminate(&pids, Duration::from_secs(3));
        if !left.is_empty() {
            tracing::warn!(?left, "lab processes survived SIGKILL");
        }
        for child in self
            .bmcs
            .iter_mut()
            .chain(self.oob.iter_mut())
            .chain(self.server.as_mut())
            .chain(self.radvd.as_mut())
        {
            let _ = child.wait();
        }
        for pid in pids {
            cleanup::unregister_pid(pid);
        }
        // Dropping `net` then kills whatever is left in the namespace and removes it.
    }
}

/// The path of `tool` on `PATH`.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
