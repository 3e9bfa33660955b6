//! A recording fake of every `hal` trait: records each call with its virtual time in an event log the test
//! shares (with its own events, e.g. the workflow's output lines), and plays per-node scripted behaviour
//! (failures, hangs, delays, nodes that never come back). It passes the [`super::conformance`] suite.
//!
//! A node the fake does not have fails with [`ErrorKind::Config`]; a powered-off node refuses node
//! operations (except [`Operation::Dummy`], which touches no node) with [`ErrorKind::Unreachable`].

use crate::{
    BootProfile, Broadcast, Console, ConsoleStream, ErrorKind, ImageSpec, NetBoot, NodeError,
    NodeId, NodeOps, Operation, Outcome, Outcomes, PortCheck, Power, PowerAction, PowerLevel,
    PowerState, Reachability, Strategy, WriteTarget,
};
use async_trait::async_trait;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Port of ssh, open in every environment.
pub const SSH_PORT: u16 = 22;
/// Port Kadeploy's deployment environment listens on.
pub const DEPLOY_ENV_PORT: u16 = 25300;

/// A HAL call, typed so that tests can look inside.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `Power::power`.
    Power(PowerAction, PowerLevel),
    /// `Power::status`.
    Status,
    /// `NetBoot::set_profile`.
    Profile(BootProfile),
    /// `NodeOps::run`.
    Node(Operation),
    /// `Reachability::probe`.
    Probe(PortCheck),
    /// `Broadcast::broadcast`.
    Broadcast(Strategy, WriteTarget),
    /// `Console::attach`.
    Console,
}

impl Op {
    /// The name scripted behaviours match: `reboot:soft`, `power_status`, `set_profile:local_disk`, an operation's
    /// name (`format`, `kexec`, `run_script:bootloader`), `probe`, `broadcast`, `console`.
    pub fn key(&self) -> String {
        match self {
            Op::Power(action, level) => format!("{}:{level}", action.as_str()),
            Op::Status => "power_status".into(),
            Op::Profile(BootProfile::DeployKernel { .. }) => "set_profile:deploy_kernel".into(),
            Op::Profile(BootProfile::LocalDisk { .. }) => "set_profile:local_disk".into(),
            Op::Profile(BootProfile::Custom { .. }) => "set_profile:custom".into(),
            Op::Node(Operation::RunScript { purpose, .. }) => format!("run_script:{purpose}"),
            Op::Node(op) => op.name().into(),
            Op::Probe(_) => "probe".into(),
            Op::Broadcast(..) => "broadcast".into(),
            Op::Console => "console".into(),
        }
    }
}

/// Whether a behaviour written for `pattern` applies to a call named `key` (`reboot` matches `reboot:hard`).
pub fn key_matches(pattern: &str, key: &str) -> bool {
    key == pattern
        || key
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with(':'))
}

/// One recorded HAL call.
#[derive(Clone, Debug)]
pub struct Call {
    /// Virtual seconds since the scenario started.
    pub time: f64,
    /// What was called.
    pub op: Op,
    /// On which nodes.
    pub nodes: Vec<NodeId>,
}

/// The event log shared by the fake and the test, in the order things happened. The fake appends each call
/// as `E::from(call)`; a test with events of its own (output lines, cancellations) uses an enum of them.
pub struct Log<E = Call>(Arc<Mutex<Vec<E>>>);

impl<E> Default for Log<E> {
    fn default() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<E> Clone for Log<E> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<E: Clone> Log<E> {
    /// Appends `event`.
    pub fn push(&self, event: E) {
        self.lock().push(event);
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<E> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<E>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a scripted node does when a matching call reaches it.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Fail the first `times` matching calls (`None`: every one) with `kind` and `message`.
    Fail {
        /// How many matching calls fail (`None`: every one).
        times: Option<u32>,
        /// The kind of the failure.
        kind: ErrorKind,
        /// The message of the failure.
        message: String,
    },
    /// Never return from the call (the whole call hangs, as a parallel command waiting for its slowest node).
    Hang,
    /// The call takes at least this many seconds.
    Delay(f64),
    /// The call succeeds but changes nothing on the node (a reboot command accepted by a node that stays up).
    NoEffect,
}

#[derive(Clone, Debug)]
struct Rule {
    node: NodeId,
    pattern: String,
    behaviour: Behaviour,
    used: u32,
}

/// Which environment a node runs, as its ports show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Env {
    /// ssh and 25300 open.
    Deploy,
    /// ssh open, 25300 closed.
    User,
}

#[derive(Clone, Debug)]
struct Node {
    /// The profile the next network boot follows.
    profile: Option<BootProfile>,
    /// When the node answers again; `None` while it is off or lost.
    up_at: Option<f64>,
    env: Env,
    powered: bool,
    never_boots: bool,
    boot_secs: f64,
}

/// Timings of the fake, in virtual seconds.
#[derive(Clone, Debug)]
pub struct Timings {
    /// Duration of every call that is not a probe (probes are instantaneous).
    pub op_secs: f64,
    /// From an accepted reboot or power-on to the node answering.
    pub boot_secs: f64,
    /// From a kexec to the node answering.
    pub kexec_secs: f64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            op_secs: 1.0,
            boot_secs: 30.0,
            kexec_secs: 10.0,
        }
    }
}

struct State {
    nodes: Vec<Node>,
    rules: Vec<Rule>,
}

/// The recording fake. Nodes start powered, up, in their production (user) environment.
pub struct FakeHal<E = Call> {
    start: Instant,
    log: Log<E>,
    timings: Timings,
    /// Basename of the deployment kernel: a kexec of it boots the deployment environment.
    deploy_kernel: String,
    state: Mutex<State>,
}

impl<E: From<Call> + Clone + Send + 'static> FakeHal<E> {
    /// A fake of `count` nodes writing to `log`; a kexec of a kernel named `deploy_kernel` boots the deploy env.
    pub fn new(count: usize, log: Log<E>, timings: Timings, deploy_kernel: &str) -> Self {
        let node = Node {
            profile: None,
            up_at: Some(0.0),
            env: Env::User,
            powered: true,
            never_boots: false,
            boot_secs: timings.boot_secs,
        };
        FakeHal {
            start: Instant::now(),
            log,
            timings,
            deploy_kernel: deploy_kernel.to_string(),
            state: Mutex::new(State {
                nodes: vec![node; count],
                rules: Vec::new(),
            }),
        }
    }

    /// Scripts `behaviour` for `node` on calls matching `pattern`.
    pub fn script(&self, node: NodeId, pattern: &str, behaviour: Behaviour) {
        self.lock().rules.push(Rule {
            node,
            pattern: pattern.into(),
            behaviour,
            used: 0,
        });
    }

    /// `node` never answers again after its next reboot (nothing for a node the fake does not have).
    pub fn never_boots(&self, node: NodeId) {
        if let Some(n) = self.lock().nodes.get_mut(node.index()) {
            n.never_boots = true;
        }
    }

    /// `node` starts powered off (nothing for a node the fake does not have).
    pub fn powered_off(&self, node: NodeId) {
        if let Some(n) = self.lock().nodes.get_mut(node.index()) {
            n.powered = false;
            n.up_at = None;
        }
    }

    /// `node` takes `secs` to boot (nothing for a node the fake does not have).
    pub fn boot_secs(&self, node: NodeId, secs: f64) {
        if let Some(n) = self.lock().nodes.get_mut(node.index()) {
            n.boot_secs = secs;
        }
    }

    /// The environment `node` runs at the current virtual time, if it answers (call it inside the test's runtime).
    pub fn env(&self, node: NodeId) -> Option<Env> {
        let now = self.now();
        let st = self.lock();
        let n = st.nodes.get(node.index())?;
        n.up_at.filter(|&t| t <= now).map(|_| n.env)
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the call, plays the scripts, waits, applies the effects of the nodes that succeeded.
    async fn perform(&self, op: Op, nodes: &[NodeId]) -> Outcomes {
        let now = self.now();
        self.log.push(E::from(Call {
            time: now,
            op: op.clone(),
            nodes: nodes.to_vec(),
        }));
        let key = op.key();
        let mut hang = false;
        let mut inert = Vec::new();
        let mut secs = if matches!(op, Op::Probe(_)) {
            0.0
        } else {
            self.timings.op_secs
        };
        let outcomes = {
            let mut st = self.lock();
            let State {
                nodes: table,
                rules,
            } = &mut *st;
            Outcomes::from_fn(nodes, |node| {
                let Some(n) = table.get(node.index()) else {
                    return Err(NodeError::new(
                        ErrorKind::Config,
                        format!("unknown node {node}"),
                    ));
                };
                if refused_when_off(&op) && !n.powered {
                    return Err(NodeError::new(
                        ErrorKind::Unreachable,
                        format!("ssh: connect to host {node} port {SSH_PORT}: Connection refused"),
                    ));
                }
                let mut outcome = Ok(());
                for rule in rules
                    .iter_mut()
                    .filter(|r| r.node == node && key_matches(&r.pattern, &key))
                {
                    match &rule.behaviour {
                        Behaviour::Fail {
                            times,
                            kind,
                            message,
                        } => {
                            if outcome.is_ok() && times.is_none_or(|t| rule.used < t) {
                                rule.used += 1;
                                outcome = Err(NodeError::new(*kind, message.clone()));
                            }
                        }
                        Behaviour::Hang => hang = true,
                        Behaviour::Delay(d) => secs = f64::max(secs, *d),
                        Behaviour::NoEffect => inert.push(node),
                    }
                }
                outcome
            })
        };
        if hang {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let done = self.now();
        let mut st = self.lock();
        for node in outcomes
            .ok_nodes()
            .into_iter()
            .filter(|n| !inert.contains(n))
        {
            let Some(n) = st.nodes.get_mut(node.index()) else {
                continue;
            };
            match &op {
                Op::Power(PowerAction::Reboot | PowerAction::On, _)
                | Op::Node(Operation::RebootFromDeployEnv) => {
                    n.powered = true;
                    let env = match n.profile {
                        Some(BootProfile::DeployKernel { .. }) => Env::Deploy,
                        _ => Env::User,
                    };
                    boot(n, env, done + n.boot_secs);
                }
                Op::Power(PowerAction::Off, _) => {
                    n.powered = false;
                    n.up_at = None;
                }
                Op::Node(Operation::Kexec { kernel, .. }) => {
                    let env = if kernel.ends_with(&self.deploy_kernel) {
                        Env::Deploy
                    } else {
                        Env::User
                    };
                    boot(n, env, done + self.timings.kexec_secs);
                }
                Op::Profile(profile) => n.profile = Some(profile.clone()),
                _ => {}
            }
        }
        outcomes
    }
}

/// Whether a call needs the node running: node operations, except the dummy one that touches no node.
fn refused_when_off(op: &Op) -> bool {
    matches!(op, Op::Node(operation) if *operation != Operation::Dummy)
}

fn boot(node: &mut Node, env: Env, at: f64) {
    node.env = env;
    node.up_at = if node.never_boots { None } else { Some(at) };
}

#[async_trait]
impl<E: From<Call> + Clone + Send + 'static> Power for FakeHal<E> {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        self.perform(Op::Power(action, level), nodes).await
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        let outcomes = self.perform(Op::Status, nodes).await;
        let st = self.lock();
        let state = |n: NodeId| match st.nodes.get(n.index()) {
            Some(node) if node.powered => Ok(PowerState::On),
            Some(_) => Ok(PowerState::Off),
            None => Err(NodeError::new(
                ErrorKind::Config,
                format!("unknown node {n}"),
            )),
        };
        Outcomes(
            outcomes
                .into_iter()
                .map(|(n, o)| (n, o.and_then(|()| state(n))))
                .collect(),
        )
    }
}

#[async_trait]
impl<E: From<Call> + Clone + Send + 'static> NetBoot for FakeHal<E> {
    async fn set_profile(&self, nodes: &[NodeId], profile: &BootProfile) -> Outcomes {
        self.perform(Op::Profile(profile.clone()), nodes).await
    }
}

#[async_trait]
impl<E: From<Call> + Clone + Send + 'static> NodeOps for FakeHal<E> {
    async fn run(&self, op: &Operation, nodes: &[NodeId]) -> Outcomes {
        self.perform(Op::Node(op.clone()), nodes).await
    }
}

#[async_trait]
impl<E: From<Call> + Clone + Send + 'static> Reachability for FakeHal<E> {
    async fn probe(&self, nodes: &[NodeId], check: &PortCheck) -> Outcomes {
        let scripted = self.perform(Op::Probe(check.clone()), nodes).await;
        let now = self.now();
        let st = self.lock();
        let answers = |n: &Node| {
            let up = n.up_at.is_some_and(|t| t <= now);
            let open = |port: u16| {
                up && (port == SSH_PORT || (port == DEPLOY_ENV_PORT && n.env == Env::Deploy))
            };
            up && check.up.iter().all(|&p| open(p)) && !check.down.iter().any(|&p| open(p))
        };
        let outcomes = scripted.into_iter().map(|(node, outcome)| {
            let outcome = outcome.and_then(|()| match st.nodes.get(node.index()).map(answers) {
                Some(true) => Ok(()),
                Some(false) => Err(NodeError::new(ErrorKind::Unreachable, "no answer")),
                None => Err(NodeError::new(
                    ErrorKind::Config,
                    format!("unknown node {node}"),
                )),
            });
            (node, outcome)
        });
        Outcomes(outcomes.collect())
    }
}

#[async_trait]
impl<E: From<Call> + Clone + Send + 'static> Broadcast for FakeHal<E> {
    async fn broadcast(
        &self,
        _image: &ImageSpec,
        target: &WriteTarget,
        strategy: Strategy,
        nodes: &[NodeId],
    ) -> Outcomes {
        self.perform(Op::Broadcast(strategy, target.clone()), nodes)
            .await
    }
}

#[async_trait]
impl<E: From<Call> + Clone + Send + 'static> Console for FakeHal<E> {
    async fn attach(&self, node: NodeId) -> Outcome<Box<dyn ConsoleStream>> {
        let outcome = self.perform(Op::Console, &[node]).await;
        let (ours, _theirs) = tokio::io::duplex(64);
        let stream: Box<dyn ConsoleStream> = Box::new(ours);
        match outcome.into_iter().next() {
            Some((_, Err(e))) => Err(e),
            _ => Ok(stream),
        }
    }
}
