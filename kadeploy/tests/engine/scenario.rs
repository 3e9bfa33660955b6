//! The scenario harness: a test cluster of `node-1.test`..`node-N.test` on the recording fake, a builder to script
//! it, and a `Run` to query what happened (report, HAL calls, output lines), all in virtual time.

use super::fake::{Behaviour, Call, Event, FakeHal, Log, Timings, key_matches};
use hal::{Drivers, ErrorKind, NodeId, NodeInfo, PowerLevel};
use kadeploy::config::{Automata, BootConfig, ClusterConfig, MacroInstance, MicroSettings, Partitioning, ServerConfig};
use kadeploy::engine::{
    self, Context, DeployRequest, Failure, NodeStatus, PowerOperation, PowerRequest, RebootKind, RebootRequest, Report,
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
pub fn inst(kind: &str) -> MacroInstance {
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
        let settings = MicroSettings { timeout, retries, raisable: true, breakpoint: false };
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
    }
}

/// A cluster `test` of `count` nodes: `/dev/sda` with swap 1, prod 2, deploy 3, tmp 5; reboot timeout 120 s,
/// kexec timeout 60 s, 20 s before the first ping; automata Untrusted / Kascade / Kexec.
pub fn cluster_config(count: usize) -> ClusterConfig {
    let nodes = (1..=count as u32)
        .map(|n| NodeInfo { name: name(n), address: [10, 0, (n / 256) as u8, (n % 256) as u8].into() })
        .collect();
    ClusterConfig {
        name: "test".into(),
        prefix: None,
        nodes,
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
        admin_preinstalls: Vec::new(),
        admin_postinstalls: Vec::new(),
        automata: Automata {
            set_deployment_env: vec![inst("Untrusted")],
            broadcast_env: vec![inst("Kascade")],
            boot_new_env: vec![inst("Kexec")],
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
        self.fail_with(n, pattern, Some(times), ErrorKind::CommandFailed, &format!("{pattern} failed"))
    }

    /// `node-<n>` fails every call matching `pattern` with the message `<pattern> failed`.
    pub fn fail_always(self, n: u32, pattern: &str) -> Self {
        self.fail_with(n, pattern, None, ErrorKind::CommandFailed, &format!("{pattern} failed"))
    }

    /// `node-<n>` fails `times` (`None`: all) calls matching `pattern` with `kind` and `message`.
    pub fn fail_with(mut self, n: u32, pattern: &str, times: Option<u32>, kind: ErrorKind, message: &str) -> Self {
        let behaviour = Behaviour::Fail { times, kind, message: message.into() };
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
        self.scripts.push((id(n), pattern.into(), Behaviour::Delay(secs)));
        self
    }

    /// Calls matching `pattern` succeed on `node-<n>` without any effect on it.
    pub fn no_effect(mut self, n: u32, pattern: &str) -> Self {
        self.scripts.push((id(n), pattern.into(), Behaviour::NoEffect));
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

    /// Runs the deployment.
    pub async fn run_deploy(self) -> Run {
        let request = self.request.clone();
        self.run(|ctx| async move { engine::deploy(&ctx, &request).await }).await
    }

    /// Runs a reboot of every node: `kind` from the soft level, then `f` may change the request.
    pub async fn run_reboot(self, kind: RebootKind, f: impl FnOnce(&mut RebootRequest)) -> Run {
        let mut request = RebootRequest {
            nodes: self.request.nodes.clone(),
            kind,
            level: PowerLevel::Soft,
            ssh_key: None,
            pxe_profile: None,
            timeout_reboot_classical: None,
            breakpoint: None,
        };
        f(&mut request);
        self.run(|ctx| async move { engine::reboot(&ctx, &request).await }).await
    }

    /// Runs a power operation on every node from `level`.
    pub async fn run_power(self, operation: PowerOperation, level: PowerLevel) -> Run {
        let request = PowerRequest { nodes: self.request.nodes.clone(), operation, level };
        self.run(|ctx| async move { Ok(engine::power(&ctx, &request).await) }).await
    }

    async fn run<F, Fut>(self, workflow: F) -> Run
    where
        F: FnOnce(Arc<Context>) -> Fut,
        Fut: Future<Output = Result<Report, RequestError>>,
    {
        let log = Log::default();
        let deploy_kernel = self.cluster.boot.deploy_vmlinuz.rsplit('/').next().unwrap_or_default().to_string();
        let fake = Arc::new(FakeHal::new(self.count, log.clone(), self.timings.clone(), &deploy_kernel));
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
        let output = Output::with_sink(Box::new(move |line: &LogLine| sink_log.push(Event::Line(line.clone()))), true);
        let windows = Arc::new(Windows::new(&self.server));
        let ctx = Arc::new(Context::new(drivers, Arc::new(self.server), Arc::new(self.cluster), windows, output));
        if let Some(at) = self.cancel_at {
            let (token, log) = (ctx.cancel.clone(), log.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(at)).await;
                log.push(Event::Cancel(at));
                token.cancel();
            });
        }
        // A month of virtual time: a workflow still running by then never ends.
        let bound = Duration::from_secs(30 * 86_400);
        let result = tokio::time::timeout(bound, workflow(ctx)).await.expect("the workflow never ended");
        Run { result, events: log.events(), fake }
    }
}

/// How a node left the workflow, as the output tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// `End of <op> for <nodes> after Ns`.
    Ok,
    /// `<Op> failed for <nodes> after Ns`.
    Ko,
    /// `Breakpoint reached for <nodes>`.
    Brk,
}

/// What happened in a scenario.
pub struct Run {
    /// The workflow's result.
    pub result: Result<Report, RequestError>,
    /// HAL calls, output lines and the cancellation, in order.
    pub events: Vec<Event>,
    /// The fake, in its final state.
    pub fake: Arc<FakeHal>,
}

impl Run {
    /// The report; panics when the request was refused.
    pub fn report(&self) -> &Report {
        match &self.result {
            Ok(report) => report,
            Err(e) => panic!("the request was refused: {e}"),
        }
    }

    /// The refusal; panics when the workflow ran.
    pub fn error(&self) -> &RequestError {
        match &self.result {
            Ok(_) => panic!("the request was accepted"),
            Err(e) => e,
        }
    }

    /// The final status of `node-<n>`.
    pub fn status(&self, n: u32) -> &NodeStatus {
        let report = self.report();
        &report.nodes.iter().find(|(node, _)| *node == id(n)).expect("node in the report").1
    }

    /// Why `node-<n>` failed; panics when it did not.
    pub fn failure(&self, n: u32) -> &Failure {
        match self.status(n) {
            NodeStatus::Ko(f) => f,
            other => panic!("node-{n} did not fail: {other:?}"),
        }
    }

    /// Numbers of the nodes that ended OK.
    pub fn ok(&self) -> Vec<u32> {
        self.with_status(|s| matches!(s, NodeStatus::Ok))
    }

    /// Numbers of the nodes that ended KO.
    pub fn ko(&self) -> Vec<u32> {
        self.with_status(|s| matches!(s, NodeStatus::Ko(_)))
    }

    /// Numbers of the nodes stopped at a breakpoint.
    pub fn brk(&self) -> Vec<u32> {
        self.with_status(|s| matches!(s, NodeStatus::Brk { .. }))
    }

    fn with_status(&self, f: impl Fn(&NodeStatus) -> bool) -> Vec<u32> {
        self.report().nodes.iter().filter(|(_, s)| f(s)).map(|(n, _)| num(*n)).collect()
    }

    /// Every HAL call, in order.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.events.iter().filter_map(|e| match e {
            Event::Call(c) => Some(c),
            _ => None,
        })
    }

    /// The calls matching `pattern` (see `fake::key_matches`).
    pub fn calls_to<'a>(&'a self, pattern: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
        self.calls().filter(move |c| key_matches(pattern, &c.op.key()))
    }

    /// The calls matching `pattern` that include `node-<n>`.
    pub fn calls_for<'a>(&'a self, n: u32, pattern: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
        self.calls_to(pattern).filter(move |c| c.nodes.contains(&id(n)))
    }

    /// How many calls matching `pattern` included `node-<n>`.
    pub fn count(&self, n: u32, pattern: &str) -> usize {
        self.calls_for(n, pattern).count()
    }

    /// The keys of the calls that included `node-<n>`, in order, without probes.
    pub fn trace(&self, n: u32) -> Vec<String> {
        self.calls().filter(|c| c.nodes.contains(&id(n))).map(|c| c.op.key()).filter(|k| k != "probe").collect()
    }

    /// The output lines of exactly `level`.
    pub fn lines_at(&self, level: u8) -> Vec<String> {
        self.lines().filter(|l| l.level == level).map(|l| l.text.clone()).collect()
    }

    /// The output lines up to `verbosity`.
    pub fn transcript(&self, verbosity: u8) -> Vec<String> {
        self.lines().filter(|l| l.level <= verbosity).map(|l| l.text.clone()).collect()
    }

    /// Whether some output line is exactly `text`.
    pub fn said(&self, text: &str) -> bool {
        self.lines().any(|l| l.text == text)
    }

    fn lines(&self) -> impl Iterator<Item = &LogLine> {
        self.events.iter().filter_map(|e| match e {
            Event::Line(l) => Some(l),
            _ => None,
        })
    }

    /// The names of the micro-steps run, in output order (level-3 lines `  <name>`).
    pub fn micro_steps(&self) -> Vec<String> {
        self.lines_at(3).into_iter().filter(|l| !l.starts_with("   ")).map(|l| l.trim().to_string()).collect()
    }

    /// The macro-step instances run, in output order (`Performing a <Op>[<Instance>] step`).
    pub fn macro_steps(&self) -> Vec<String> {
        self.lines_at(1).iter().filter_map(|l| performed(l)).map(String::from).collect()
    }

    /// When `node-<n>` left the workflow, as the output tells it.
    pub fn done_time(&self, n: u32) -> f64 {
        let (i, _, _) = self.done_events().into_iter().find(|(_, node, _)| *node == id(n)).expect("node done");
        match &self.events[i] {
            Event::Line(line) => line.time,
            _ => unreachable!("done events are lines"),
        }
    }

    /// For each node leaving the workflow: the index of the event that says so, the node and how.
    pub fn done_events(&self) -> Vec<(usize, NodeId, Done)> {
        let mut out = Vec::new();
        for (i, event) in self.events.iter().enumerate() {
            let Event::Line(line) = event else { continue };
            if line.level != 1 {
                continue;
            }
            let parsed = line
                .text
                .strip_prefix("Breakpoint reached for ")
                .map(|rest| (rest, Done::Brk))
                .or_else(|| between(&line.text, "End of ", " for ", Done::Ok))
                .or_else(|| between(&line.text, "", " failed for ", Done::Ko));
            if let Some((nodes, how)) = parsed {
                let names = kadeploy::nodelist::expand(nodes).expect("a node list");
                for node_name in names {
                    let n: u32 = node_name.trim_start_matches("node-").trim_end_matches(".test").parse().expect("a node");
                    out.push((i, id(n), how));
                }
            }
        }
        out
    }
}

/// The instance of a `Performing a <Op>[<Instance>] step` line.
pub fn performed(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("Performing a ")?.strip_suffix("] step")?;
    rest.split_once('[').map(|(_, instance)| instance)
}

/// The node list of `<prefix><word><sep><nodes> after Ns` lines (`End of deployment for`, `Deployment failed for`).
fn between<'a>(text: &'a str, prefix: &str, sep: &str, how: Done) -> Option<(&'a str, Done)> {
    let rest = text.strip_prefix(prefix)?;
    let (word, nodes) = rest.split_once(sep)?;
    if word.contains(' ') || word.contains('[') {
        return None;
    }
    let (nodes, _) = nodes.rsplit_once(" after ")?;
    Some((nodes, how))
}
