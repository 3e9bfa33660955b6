//! Boot phases measured on a run's [`Timeline`]: for each VM, the deploy kernel's boot (firmware, then
//! loader to ready) and the environment's boot after kexec, in wall-clock and processor seconds.

use crate::timeline::{Mark, Timeline};
use serde::Serialize;

/// One phase, averaged over the VMs that went through it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Phase {
    /// Wall-clock seconds.
    pub wall: f64,
    /// Processor seconds the VM's QEMU used meanwhile.
    pub cpu: f64,
    /// VMs averaged.
    pub vms: usize,
    /// The sample standard deviation of the VMs' wall-clock seconds (`None` below two VMs): how much
    /// one VM's phase differed from another's in the same run.
    pub wall_sd: Option<f64>,
}

impl Phase {
    fn mean(samples: &[(f64, f64)]) -> Option<Phase> {
        if samples.is_empty() {
            return None;
        }
        let n = samples.len() as f64;
        let wall = samples.iter().map(|s| s.0).sum::<f64>() / n;
        let wall_sd = (samples.len() >= 2).then(|| {
            let ss: f64 = samples.iter().map(|s| (s.0 - wall).powi(2)).sum();
            (ss / (n - 1.0)).sqrt()
        });
        Some(Phase {
            wall,
            cpu: samples.iter().map(|s| s.1).sum::<f64>() / n,
            vms: samples.len(),
            wall_sd,
        })
    }

    /// The VMs' relative spread: standard deviation over mean of the wall-clock seconds.
    pub fn relative_sd(&self) -> Option<f64> {
        self.wall_sd
            .filter(|_| self.wall > 0.0)
            .map(|sd| sd / self.wall)
    }
}

/// The boot phases of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Phases {
    /// Power-on or reset to the network loader (firmware, its network boot ROM, DHCP, the loader's
    /// fetch); `None` when the loader prints nothing the timeline knows.
    pub firmware: Option<Phase>,
    /// The loader to the deploy kernel ready (the kernel and initrd fetch, the kernel, its init).
    pub loader_to_ready: Option<Phase>,
    /// The loader's fetch of the deploy kernel and initrd (PXElinux only).
    pub fetch: Option<Phase>,
    /// The deploy kernel's init to ready (modules, DHCP, sshd, the agent).
    pub init_to_ready: Option<Phase>,
    /// Power-on or reset to the deploy kernel ready: the whole first boot.
    pub deploy_boot: Option<Phase>,
    /// `kexec -e` to the environment ready.
    pub kexec_boot: Option<Phase>,
    /// VMs on the host, and the host's processors.
    pub vms: usize,
    /// Processors of the host.
    pub host_cores: usize,
}

/// The phases of the first deployment of every VM in `timeline`.
pub fn measure(timeline: &Timeline) -> Phases {
    let (mut firmware, mut loader, mut deploy, mut kexec) = (vec![], vec![], vec![], vec![]);
    let (mut fetch, mut init) = (vec![], vec![]);
    let vms = timeline.vms();
    for vm in 0..vms {
        let Some(ready) = timeline.next(vm, Mark::DeployReady, 0.0) else {
            continue;
        };
        if let Some(start) = timeline.boot_start_before(vm, ready.t) {
            deploy.push((ready.t - start.t, ready.cpu - start.cpu));
            let load = timeline
                .of(vm)
                .filter(|e| e.mark == Mark::Loader && e.t >= start.t && e.t <= ready.t)
                .last();
            if let Some(l) = load {
                firmware.push((l.t - start.t, l.cpu - start.cpu));
                loader.push((ready.t - l.t, ready.cpu - l.cpu));
                if let Some(f) = timeline
                    .next(vm, Mark::Fetched, l.t)
                    .filter(|f| f.t <= ready.t)
                {
                    fetch.push((f.t - l.t, f.cpu - l.cpu));
                }
            }
            let first_init = timeline.next(vm, Mark::DeployInit, start.t);
            if let Some(i) = first_init.filter(|i| i.t <= ready.t) {
                init.push((ready.t - i.t, ready.cpu - i.cpu));
            }
        }
        if let Some(jump) = timeline.next(vm, Mark::Kexec, ready.t)
            && let Some(env) = timeline.next(vm, Mark::EnvReady, jump.t)
        {
            kexec.push((env.t - jump.t, env.cpu - jump.cpu));
        }
    }
    Phases {
        firmware: Phase::mean(&firmware),
        loader_to_ready: Phase::mean(&loader),
        fetch: Phase::mean(&fetch),
        init_to_ready: Phase::mean(&init),
        deploy_boot: Phase::mean(&deploy),
        kexec_boot: Phase::mean(&kexec),
        vms,
        host_cores: timeline.host_cores,
    }
}

/// A phase as the simulator wants it: its length on an uncontended host (one core per VM) and the
/// share of that which is processor work. Measured with `stretch` VMs per free core (>= 1), the work
/// took `stretch` times its time alone: `wall = u - work + work * stretch`, where the work is the
/// processor time beyond what the VM burns idle (`idle_load` cores all along).
pub fn uncontended(p: Phase, stretch: f64, idle_load: f64) -> (f64, f64) {
    let work = (p.cpu - idle_load * p.wall).clamp(0.0, p.wall.max(0.0));
    let u = (p.wall - work * (stretch - 1.0)).max(work).max(0.1);
    (u, (work / u).clamp(0.0, 1.0))
}

/// VMs per free core: `vms` over the cores left by their idle load (at least a tenth), at least 1 (the
/// simulator's `host_stretch`).
pub fn stretch(vms: usize, cores: f64, idle_load: f64) -> f64 {
    let n = vms as f64;
    (n / (cores - n * idle_load).max(cores / 10.0)).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Event;

    fn ev(t: f64, vm: usize, mark: Mark, cpu: f64) -> Event {
        Event { t, vm, mark, cpu }
    }

    #[test]
    fn phases_are_read_per_vm_from_the_milestones() {
        let timeline = Timeline {
            events: vec![
                ev(1.0, 0, Mark::PowerOn, 0.0),
                ev(1.5, 1, Mark::PowerOn, 0.0),
                ev(1.6, 0, Mark::Firmware, 0.1),
                ev(9.0, 0, Mark::Loader, 6.0),
                ev(9.5, 1, Mark::Loader, 6.5),
                ev(30.0, 0, Mark::DeployReady, 20.0),
                ev(31.5, 1, Mark::DeployReady, 21.0),
                ev(40.0, 0, Mark::Kexec, 22.0),
                ev(52.0, 0, Mark::EnvReady, 30.0),
                ev(41.0, 1, Mark::Kexec, 23.0),
                ev(55.0, 1, Mark::EnvReady, 33.0),
            ],
            host_cores: 2,
            load_average: 0.5,
        };
        let p = measure(&timeline);
        assert_eq!(p.vms, 2);
        // VM 0 counts from the SeaBIOS banner (the last start before ready), VM 1 from its power-on.
        let deploy = p.deploy_boot.unwrap();
        assert!((deploy.wall - (28.4 + 30.0) / 2.0).abs() < 1e-9);
        assert!((deploy.cpu - (19.9 + 21.0) / 2.0).abs() < 1e-9);
        let fw = p.firmware.unwrap();
        assert!((fw.wall - (7.4 + 8.0) / 2.0).abs() < 1e-9);
        let k = p.kexec_boot.unwrap();
        assert!((k.wall - 13.0).abs() < 1e-9 && (k.cpu - 9.0).abs() < 1e-9 && k.vms == 2);
        // 12 and 14 s: the sample standard deviation is sqrt(2).
        assert!((k.wall_sd.unwrap() - 2f64.sqrt()).abs() < 1e-9);
        assert!((k.relative_sd().unwrap() - 2f64.sqrt() / 13.0).abs() < 1e-9);
    }

    #[test]
    fn contention_is_taken_out_of_a_phase() {
        // 10 s of processor work at 2 VMs per core took 20 s, plus 5 s of waiting.
        let (u, share) = uncontended(
            Phase {
                wall: 25.0,
                cpu: 10.0,
                vms: 4,
                wall_sd: None,
            },
            2.0,
            0.0,
        );
        assert!((u - 15.0).abs() < 1e-9);
        assert!((share - 10.0 / 15.0).abs() < 1e-9);
        // Uncontended, the phase is what was measured.
        let (u, share) = uncontended(
            Phase {
                wall: 25.0,
                cpu: 10.0,
                vms: 2,
                wall_sd: None,
            },
            1.0,
            0.0,
        );
        assert!((u - 25.0).abs() < 1e-9 && (share - 0.4).abs() < 1e-9);
        // An idle VM burning 0.04 cores: 1 of the 10 processor seconds was not work.
        let (u, share) = uncontended(
            Phase {
                wall: 25.0,
                cpu: 10.0,
                vms: 4,
                wall_sd: None,
            },
            2.0,
            0.04,
        );
        assert!((u - 16.0).abs() < 1e-9 && (share - 9.0 / 16.0).abs() < 1e-9);
        assert!((stretch(16, 2.0, 0.05) - 16.0 / 1.2).abs() < 1e-9);
        assert_eq!(stretch(1, 2.0, 0.05), 1.0);
    }
}
