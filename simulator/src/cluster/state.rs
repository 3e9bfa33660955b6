//! The per-node state machine, evaluated lazily against virtual time: power, boot phases, the system a
//! node runs and what the deployment did on it. Nothing runs per node: a reboot stores the instant the
//! node will be up, and every query compares it with the current time.

use super::journal::{Journal, NodeEvent};
pub use super::system::{DEPLOY_ENV_PORT, Env, SSH_PORT};
use crate::params::BootParams;
use crate::rng::{Dist, Rng};
use hal::BootProfile;

/// What a node's next network boot loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextBoot {
    /// No profile was ever written: the node boots its production system.
    Production,
    /// The deploy kernel: the deploy environment.
    DeployKernel,
    /// The local disk: the deployed environment if an image was written, the production system if the
    /// disk was never touched, else nothing bootable.
    LocalDisk,
    /// A user profile: up with sshd.
    Custom,
}

impl NextBoot {
    /// The next boot a profile selects.
    pub fn from_profile(profile: &BootProfile) -> Self {
        match profile {
            BootProfile::DeployKernel { .. } => NextBoot::DeployKernel,
            BootProfile::LocalDisk { .. } => NextBoot::LocalDisk,
            BootProfile::Custom { .. } => NextBoot::Custom,
        }
    }
}

/// What node operations and broadcasts did on a node, so that its final state is consistent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeRecord {
    /// Partitioned, formatted or written since the start (the production system is gone).
    pub disk_touched: bool,
    /// The partitioning script ran.
    pub partitioned: bool,
    /// Number of successful formats.
    pub formats: u32,
    /// A swap partition was initialised.
    pub swap: bool,
    /// The deploy partition is mounted.
    pub mounted: bool,
    /// An image was written (and not formatted away since).
    pub image_written: bool,
    /// Where the last image was written.
    pub image_device: Option<String>,
    /// Decompressed size of the last image received, in bytes.
    pub image_bytes: Option<f64>,
    /// Keys were appended to an `authorized_keys` file.
    pub keys_installed: bool,
    /// The bootloader script ran.
    pub bootloader: bool,
    /// Other scripts and archives run.
    pub scripts: u32,
    /// Files sent.
    pub files: u32,
}

/// How a boot starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootKind {
    /// Power-on or reset: firmware, PXE, kernel.
    Cold,
    /// Clean reboot: a shutdown if the node is running, then like [`BootKind::Cold`].
    Soft,
    /// kexec into `Env`: the command's delay, then the kernel.
    Kexec(Env),
}

/// What a boot needs besides the node's own state.
pub(crate) struct BootCtx<'a> {
    pub params: &'a BootParams,
    pub seed: u64,
    pub index: usize,
    pub never_boot: bool,
    /// How much longer the processor share of a phase takes (nodes per core of a shared host, >= 1).
    pub stretch: f64,
}

/// A phase of `d` seconds, `share` of it processor work stretched by `stretch`.
fn stretched(d: f64, share: f64, stretch: f64) -> f64 {
    d * (1.0 - share) + d * share * stretch
}

/// One node's state. Laid out in declaration order (`repr(C)`), the fields every probe, operation and
/// power command reads first: they share one cache line, and a million nodes' probes stream half the
/// memory they would with the record in between.
#[derive(Clone, Debug)]
#[repr(C)]
pub(crate) struct NodeState {
    /// Powered on.
    pub powered: bool,
    /// The system the node runs once up.
    pub env: Env,
    /// What the next network boot loads.
    pub next_boot: NextBoot,
    /// When the running system is (or will be) up; `None` = down until the next boot.
    pub up_at: Option<f64>,
    /// The node died at this time and stays down.
    pub dead_at: Option<f64>,
    /// Boots started so far (seeds each boot's durations).
    pub boots: u64,
    /// Power commands received so far (seeds each command's latency).
    pub power_cmds: u64,
    /// What was done on it.
    pub record: NodeRecord,
    /// What happened on it, for consumers that model its files (off by default).
    pub journal: Journal,
}

impl NodeState {
    /// A powered node running its production system since time 0.
    pub fn new() -> Self {
        NodeState {
            powered: true,
            up_at: Some(0.0),
            env: Env::Production,
            next_boot: NextBoot::Production,
            boots: 0,
            power_cmds: 0,
            dead_at: None,
            record: NodeRecord::default(),
            journal: Journal::default(),
        }
    }

    /// True when the node has died by `t`.
    pub fn dead(&self, t: f64) -> bool {
        self.dead_at.is_some_and(|d| d <= t)
    }

    /// The system the node runs at `t`, or `None` when it is down (off, booting, hung, dead).
    pub fn env_at(&self, t: f64) -> Option<Env> {
        match self.up_at {
            Some(up) if self.powered && !self.dead(t) && t >= up => Some(self.env),
            _ => None,
        }
    }

    /// The system a network boot lands in now, if any.
    fn network_env(&self) -> Option<Env> {
        match self.next_boot {
            NextBoot::Production => Some(Env::Production),
            NextBoot::DeployKernel => Some(Env::Deploy),
            NextBoot::Custom => Some(Env::Custom),
            NextBoot::LocalDisk if self.record.image_written => Some(Env::Deployed),
            NextBoot::LocalDisk if !self.record.disk_touched => Some(Env::Production),
            NextBoot::LocalDisk => None,
        }
    }

    /// Starts a boot at `t`: the node is down from `t` and up after the boot's phases (per-node seeded
    /// draws, redrawn for every boot), or stays down when it never boots or has nothing to boot.
    pub fn boot(&mut self, t: f64, kind: BootKind, ctx: &BootCtx<'_>) {
        let running = self.env_at(t).is_some();
        self.boots += 1;
        let mut rng = Rng::for_event(ctx.seed, "boot", ctx.index as u64, self.boots);
        let p = ctx.params;
        // Every boot consumes the draws of its four phases in this order; a phase the boot does not go
        // through is skipped without computing its value (a million kexecs compute one draw each).
        let mut phase = |d: &Dist, used: bool| {
            if used {
                d.sample(&mut rng)
            } else {
                Dist::skip(&mut rng);
                0.0
            }
        };
        let cold = !matches!(kind, BootKind::Kexec(_));
        let down = phase(&p.shutdown, kind == BootKind::Soft && running);
        let firmware = stretched(phase(&p.firmware, cold), p.cpu.firmware, ctx.stretch);
        let pxe = stretched(phase(&p.pxe, cold), p.cpu.pxe, ctx.stretch);
        let kernel = stretched(phase(&p.kernel, true), p.cpu.kernel, ctx.stretch);
        let (delay, env) = match kind {
            BootKind::Cold => (firmware + pxe + kernel, self.network_env()),
            BootKind::Soft => (down + firmware + pxe + kernel, self.network_env()),
            BootKind::Kexec(env) => (p.kexec_delay + kernel, Some(env)),
        };
        self.powered = true;
        self.up_at = None;
        let lands = env.filter(|_| !ctx.never_boot);
        if let Some(env) = lands {
            self.env = env;
            self.up_at = Some(t + delay);
        }
        self.journal.push(|| NodeEvent::Booted(lands));
    }

    /// Cuts the power.
    pub fn power_off(&mut self) {
        self.powered = false;
        self.up_at = None;
        self.journal.push(|| NodeEvent::PoweredOff);
    }
}

/// A read-only view of a node at one instant, for tests, reports and the console.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeView {
    /// Powered on.
    pub powered: bool,
    /// The system it runs now, `None` when down.
    pub env: Option<Env>,
    /// When its current system came (or comes) up, in seconds since the start.
    pub up_at: Option<f64>,
    /// It died and stays down.
    pub dead: bool,
    /// Boots started so far.
    pub boots: u64,
    /// What its next network boot loads.
    pub next_boot: NextBoot,
    /// What was done on it.
    pub record: NodeRecord,
}

impl NodeState {
    /// The view of this node at `t`.
    pub fn view(&self, t: f64) -> NodeView {
        NodeView {
            powered: self.powered,
            env: self.env_at(t),
            up_at: self.up_at,
            dead: self.dead(t),
            boots: self.boots,
            next_boot: self.next_boot,
            record: self.record.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Dist;

    fn ctx(params: &BootParams, never_boot: bool) -> BootCtx<'_> {
        BootCtx {
            params,
            seed: 1,
            index: 3,
            never_boot,
            stretch: 1.0,
        }
    }

    #[test]
    fn only_the_processor_share_of_a_boot_stretches_on_a_shared_host() {
        let mut p = BootParams {
            firmware: Dist::new(10.0, 0.0, 0.0),
            pxe: Dist::new(4.0, 0.0, 0.0),
            kernel: Dist::new(6.0, 0.0, 0.0),
            ..BootParams::default()
        };
        p.cpu.firmware = 1.0;
        p.cpu.kernel = 0.5;
        let boot = |stretch: f64, kind| {
            let mut s = NodeState::new();
            s.next_boot = NextBoot::DeployKernel;
            let c = BootCtx {
                stretch,
                ..ctx(&p, false)
            };
            s.boot(0.0, kind, &c);
            s.up_at.unwrap()
        };
        assert!((boot(1.0, BootKind::Cold) - 20.0).abs() < 1e-9);
        // 4 nodes per core: the firmware (all processor) takes 4x, the kernel's half 4x, the PXE as is.
        assert!((boot(4.0, BootKind::Cold) - (40.0 + 4.0 + 3.0 + 12.0)).abs() < 1e-9);
        let kexec = boot(4.0, BootKind::Kexec(Env::Deployed));
        assert!((kexec - (p.kexec_delay + 15.0)).abs() < 1e-9);
    }

    #[test]
    fn a_soft_reboot_goes_down_then_up_in_the_profile() {
        let p = BootParams::default();
        let mut s = NodeState::new();
        assert_eq!(s.env_at(0.0), Some(Env::Production));
        s.next_boot = NextBoot::DeployKernel;
        s.boot(10.0, BootKind::Soft, &ctx(&p, false));
        let up = s.up_at.unwrap();
        assert!(up > 10.0 + p.shutdown.min + p.firmware.min + p.pxe.min + p.kernel.min - 1e-9);
        assert_eq!(s.env_at(up - 0.001), None);
        assert_eq!(s.env_at(up), Some(Env::Deploy));
        assert!(
            Env::Deploy.port_open(DEPLOY_ENV_PORT) && !Env::Deployed.port_open(DEPLOY_ENV_PORT)
        );
    }

    #[test]
    fn local_disk_needs_an_image_once_the_disk_was_touched() {
        let p = BootParams::default();
        let mut s = NodeState::new();
        s.next_boot = NextBoot::LocalDisk;
        s.boot(0.0, BootKind::Cold, &ctx(&p, false));
        assert_eq!(s.env, Env::Production);
        s.record.disk_touched = true;
        s.boot(100.0, BootKind::Cold, &ctx(&p, false));
        assert_eq!(s.up_at, None);
        s.record.image_written = true;
        s.boot(200.0, BootKind::Cold, &ctx(&p, false));
        assert_eq!(s.env_at(1000.0), Some(Env::Deployed));
        s.boot(2000.0, BootKind::Cold, &ctx(&p, true));
        assert_eq!(s.env_at(1e9), None);
        s.power_off();
        assert!(!s.view(0.0).powered);
    }

    #[test]
    fn each_boot_draws_new_durations() {
        let p = BootParams::default();
        let mut s = NodeState::new();
        s.boot(0.0, BootKind::Cold, &ctx(&p, false));
        let first = s.up_at.unwrap();
        s.boot(0.0, BootKind::Cold, &ctx(&p, false));
        assert_ne!(first, s.up_at.unwrap());
        s.boot(0.0, BootKind::Kexec(Env::Deployed), &ctx(&p, false));
        assert!(s.up_at.unwrap() >= p.kexec_delay + p.kernel.min);
    }
}
