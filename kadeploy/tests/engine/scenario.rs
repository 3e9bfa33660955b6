//! The scenario harness: a test cluster of `node-1.test`..`node-N.test` on the recording fake, a builder to script
//! it, and a `Run` to query what happened (report, HAL calls, output lines), all in virtual time.

use super::fake::{Behaviour, Event, FakeHal, Log, Timings};
use super::run::Run;
use hal::{Drivers, ErrorKind, NodeId, NodeInfo, PowerLevel};
use kadeploy::config::{
    Automata, BootConfig, ClusterConfig, MacroInstance, MacroKind, MicroSettings, Partitioning,
    ServerConfig,
};
/// Short names of the kinds of each slot, for automata written in tests.
pub use kadeploy::config::{
    BootNewEnvKind as Boot, BroadcastEnvKind as Broadcast, SetDeploymentEnvKind as SetEnv,
};
use kadeploy::engine::{
    self, Context, DeployRequest, PowerOperation, PowerRequest, RebootKind, RebootRequest, Report,
    Windows,
};
use kadeploy::environment::Environment;
use kadeploy::error::RequestError;
use kadeploy::expr::Expr;
use kadeploy::output::{LogLine, Output};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The `NodeId` of `node-<n>` (nodes are numbered from 1, like Kadeploy clusters).
pub fn id(n: u32) -> NodeId {
    NodeId(n - 1)
}

/// The number of `node` in its name.
pub fn num(node: NodeId) -> u32 {
    node.0 + 1
}

/// The FQDN of `node-<n>`.
pub fn name(n: u32) -> String {
    format!("node-{n}.test")
}

/// A macro-step instance of `kind` with Kadeploy's defaults (no retry, no timeout, raisable).
pub fn inst(kind: impl Into<MacroKind>) -> MacroInstance {
    MacroInstance {
        kind: kind.into(),
        retries: 0,
        timeout: 0.0,
        raisable: true,
        breakpoint: false,
        microsteps: BTreeMap::new(),
    }
}

/// Builder-style settings of an instance.
pub trait InstanceExt {
    /// Extra tries.
    fn retries(self, retries: u32) -> Self;
    /// Timeout in seconds.
    fn timeout(self, secs: f64) -> Self;
    /// Raisable or not.
    fn raisable(self, raisable: bool) -> Self;
    /// Settings of micro-step `name`.
    fn micro(self, name: &str, retries: u32, timeout: f64) -> Self;
}

impl InstanceExt for MacroInstance {
    fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
    fn timeout(mut self, secs: f64) -> Self {
        self.timeout = secs;
        self
    }
    fn raisable(mut self, raisable: bool) -> Self {
        self.raisable = raisable;
        self
    }
    fn micro(mut self, name: &str, retries: u32, timeout: f64) -> Self {
        let settings = MicroSettings {
            timeout,
            retries,
            raisable: true,
            breakpoint: false,
            ..Default::default()
        };
        self.microsteps.insert(name.into(), settings);
        self
    }
}

/// The server settings of the tests.
pub fn server_config() -> ServerConfig {
    ServerConfig {
        ssh_port: super::fake::SSH_PORT,
        test_deploy_env_port: super::fake::DEPLOY_ENV_PORT,
        reboot_window: 100,
        reboot_window_sleep: 10.0,
        check_window: 100,
        extraction_dir: "/mnt/dest".into(),
        rambin_dir: "/rambin".into(),
        mkfs_args: BTreeMap::new(),
        tar_options: String::new(),
        verbosity: 3,
        localboot_method: "PXElinux".into(),
        taktuk_connector: "ssh".into(),
        vlan: None,
    }
}

/// A cluster `test` of `count` nodes: `/dev/sda` with swap 1, prod 2, deploy 3, tmp 5; reboot timeout 120 s,
/// kexec timeout 60 s, 20 s before the first ping; automata Untrusted / Kascade / Kexec.
pub fn cluster_config(count: usize) -> ClusterConfig {
    let nodes = (1..=count as u32)
        .map(|n| NodeInfo {
            name: name(n),
            address: [10, 0, (n / 256) as u8, (n % 256) as u8].into(),
        })
        .collect();
    ClusterConfig {
        name: "test".into(),
        prefix: None,
        nodes,
        macs: Default::default(),
        switches: Default::default(),
        partitioning: Partitioning {
            block_device: "/dev/sda".into(),
            deploy: 3,
            swap: Some(1),
            prod: Some(2),
            tmp: Some(5),
            script: "parted -s /dev/sda mklabel gpt".into(),
        },
        boot: BootConfig {
            sleep_time_before_ping: 20.0,
            probe_period: 5.0,
            probe_timeout: 2.0,
            install_bootloader: "install_grub".into(),
            user_params: "console=ttyS0".into(),
            deploy_vmlinuz: "kernels/deploy-vmlinuz".into(),
            deploy_initrd: "kernels/deploy-initrd".into(),
            deploy_params: "console=tty0 rw".into(),
            deploy_drivers: Vec::new(),
            supported_fs: ["ext2", "ext3", "ext4", "vfat"].map(String::from).to_vec(),
        },
        timeout_reboot: Expr::constant(120.0),
        timeout_kexec: Expr::constant(60.0),
        kexec_repository: "/dev/shm/kexec_repository".into(),
        broadcast_decompress: true,
        broadcast_cmd: None,
        admin_preinstalls: Vec::new(),
        admin_postinstalls: Vec::new(),
        automata: Automata {
            set_deployment_env: vec![inst(SetEnv::Untrusted)],
            broadcast_env: vec![inst(Broadcast::Kascade)],
            boot_new_env: vec![inst(Boot::Kexec)],
        },
        reboot_levels: PowerLevel::ALL.to_vec(),
        use_ip_to_deploy: false,
    }
}

/// A scripted deployment, reboot or power operation on a fresh test cluster.
pub struct Scenario {
    count: usize,
    server: ServerConfig,
    cluster: ClusterConfig,
    request: DeployRequest,
    timings: Timings,
    scripts: Vec<(NodeId, String, Behaviour)>,
    never_boots: Vec<NodeId>,
    powered_off: Vec<NodeId>,
    boot_secs: Vec<(NodeId, f64)>,
    cancel_at: Option<f64>,
    time_limit: f64,
}

impl Scenario {
    /// `count` healthy nodes, deploying a Linux tarball on every node without key.
    pub fn new(count: usize) -> Self {
        let nodes = (1..=count as u32).map(id).collect();
        Scenario {
            count,
            server: server_config(),
            cluster: cluster_config(count),
            request: DeployRequest::new(nodes, Environment::sample_tarball(1 << 30, 2.0)),
            timings: Timings::default(),
            scripts: Vec::new(),
            never_boots: Vec::new(),
            powered_off: Vec::new(),
            boot_secs: Vec::new(),
            cancel_at: None,
            time_limit: 30.0 * 86_400.0,
        }
    }

    /// The cluster's automata, slot by slot.
    pub fn automata(
        mut self,
        set_env: impl Into<Vec<MacroInstance>>,
        broadcast: impl Into<Vec<MacroInstance>>,
        boot: impl Into<Vec<MacroInstance>>,
    ) -> Self {
        self.cluster.automata = Automata {
            set_deployment_env: set_env.into(),
            broadcast_env: broadcast.into(),
            boot_new_env: boot.into(),
        };
        self
    }

    /// Changes the deployment request.
    pub fn request(mut self, f: impl FnOnce(&mut DeployRequest)) -> Self {
        f(&mut self.request);
        self
    }

    /// Changes the cluster configuration.
    pub fn cluster(mut self, f: impl FnOnce(&mut ClusterConfig)) -> Self {
        f(&mut self.cluster);
        self
    }

    /// Changes the server configuration.
    pub fn server(mut self, f: impl FnOnce(&mut ServerConfig)) -> Self {
        f(&mut self.server);
        self
    }

    /// Changes the fake's timings.
    pub fn timings(mut self, f: impl FnOnce(&mut Timings)) -> Self {
        f(&mut self.timings);
        self
    }

    /// `node-<n>` fails its first `times` calls matching `pattern` with the message `<pattern> failed`.
    pub fn fail(self, n: u32, pattern: &str, times: u32) -> Self {
        self.fail_with(
            n,
            pattern,
            Some(times),
            ErrorKind::CommandFailed,
            &format!("{pattern} failed"),
        )
    }

    /// `node-<n>` fails every call matching `pattern` with the message `<pattern> failed`.
    pub fn fail_always(self, n: u32, pattern: &str) -> Self {
        self.fail_with(
            n,
            pattern,
            None,
            ErrorKind::CommandFailed,
            &format!("{pattern} failed"),
        )
    }

    /// `node-<n>` fails `times` (`None`: all) calls matching `pattern` with `kind` and `message`.
    pub fn fail_with(
        mut self,
        n: u32,
        pattern: &str,
        times: Option<u32>,
        kind: ErrorKind,
        message: &str,
    ) -> Self {
        let behaviour = Behaviour::Fail {
            times,
            kind,
            message: message.into(),
        };
        self.scripts.push((id(n), pattern.into(), behaviour));
        self
    }

    /// Calls matching `pattern` that include `node-<n>` never return.
    pub fn hang(mut self, n: u32, pattern: &str) -> Self {
        self.scripts.push((id(n), pattern.into(), Behaviour::Hang));
        self
    }

    /// Calls matching `pattern` that include `node-<n>` take `secs`.
    pub fn delay(mut self, n: u32, pattern: &str, secs: f64) -> Self {
        self.scripts
            .push((id(n), pattern.into(), Behaviour::Delay(secs)));
        self
    }

    /// Calls matching `pattern` succeed on `node-<n>` without any effect on it.
    pub fn no_effect(mut self, n: u32, pattern: &str) -> Self {
        self.scripts
            .push((id(n), pattern.into(), Behaviour::NoEffect));
        self
    }

    /// `node-<n>` never answers after a reboot.
    pub fn never_boots(mut self, n: u32) -> Self {
        self.never_boots.push(id(n));
        self
    }

    /// `node-<n>` starts powered off.
    pub fn powered_off(mut self, n: u32) -> Self {
        self.powered_off.push(id(n));
        self
    }

    /// `node-<n>` takes `secs` to boot.
    pub fn boot_secs(mut self, n: u32, secs: f64) -> Self {
        self.boot_secs.push((id(n), secs));
        self
    }

    /// Cancels the workflow's token at `secs` of virtual time.
    pub fn cancel_at(mut self, secs: f64) -> Self {
        self.cancel_at = Some(secs);
        self
    }

    /// Fails the test if the workflow is still running after `secs` of virtual time (default: a month).
    pub fn time_limit(mut self, secs: f64) -> Self {
        self.time_limit = secs;
        self
    }

    /// Runs the deployment.
    pub async fn run_deploy(self) -> Run {
        let request = self.request.clone();
        self.run(|ctx| async move { engine::deploy(&ctx, &request).await })
            .await
    }

    /// Runs a reboot of every node: `kind` from the soft level, then `f` may change the request.
    pub async fn run_reboot(self, kind: RebootKind, f: impl FnOnce(&mut RebootRequest)) -> Run {
        let mut request = RebootRequest {
            nodes: self.request.nodes.clone(),
            kind,
            level: PowerLevel::Soft,
            ssh_key: None,
            pxe_profile: None,
            vlan: None,
            timeout_reboot_classical: None,
            breakpoint: None,
            custom_operations: Default::default(),
            environment: None,
            block_device: None,
            deploy_partition: None,
        };
        f(&mut request);
        self.run(|ctx| async move { engine::reboot(&ctx, &request).await })
            .await
    }

    /// Runs a power operation on every node from `level`.
    pub async fn run_power(self, operation: PowerOperation, level: PowerLevel) -> Run {
        let request = PowerRequest {
            nodes: self.request.nodes.clone(),
            operation,
            level,
            custom_operations: Default::default(),
        };
        self.run(|ctx| async move { Ok(engine::power(&ctx, &request).await) })
            .await
    }

    async fn run<F, Fut>(self, workflow: F) -> Run
    where
        F: FnOnce(Arc<Context>) -> Fut,
        Fut: Future<Output = Result<Report, RequestError>>,
    {
        super::logs::install();
        let log = Log::default();
        let deploy_kernel = self
            .cluster
            .boot
            .deploy_vmlinuz
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let fake = Arc::new(FakeHal::new(
            self.count,
            log.clone(),
            self.timings.clone(),
            &deploy_kernel,
        ));
        for (node, pattern, behaviour) in self.scripts {
            fake.script(node, &pattern, behaviour);
        }
        for node in self.never_boots {
            fake.never_boots(node);
        }
        for node in self.powered_off {
            fake.powered_off(node);
        }
        for (node, secs) in self.boot_secs {
            fake.boot_secs(node, secs);
        }
        let drivers = Drivers {
            power: fake.clone(),
            netboot: fake.clone(),
            ops: fake.clone(),
            reachability: fake.clone(),
            broadcast: fake.clone(),
            console: fake.clone(),
        };
        let sink_log = log.clone();
        let output = Output::with_sink(
            Box::new(move |line: &LogLine| sink_log.push(Event::Line(line.clone()))),
            true,
        );
        let windows = Arc::new(Windows::new(&self.server));
        let ctx = Arc::new(Context::new(
            drivers,
            Arc::new(self.server),
            Arc::new(self.cluster),
            windows,
            output,
        ));
        if let Some(at) = self.cancel_at {
            let (token, log) = (ctx.cancel.clone(), log.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(at)).await;
                log.push(Event::Cancel);
                token.cancel();
            });
        }
        let limit = Duration::from_secs_f64(self.time_limit);
        let result = tokio::time::timeout(limit, workflow(ctx))
            .await
            .expect("the workflow did not end in time");
        Run {
            result,
            events: log.events(),
            fake,
        }
    }
}
