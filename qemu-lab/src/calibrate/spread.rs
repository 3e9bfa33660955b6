//! The boots' spread: how much one VM's boot phase differs from another's in the calibration run,
//! written as the simulator's per-node boot draws (each phase's `sd`). The engine finds rebooted nodes
//! on a grid of probe rounds (5 s, then every 7 s while one does not answer), so a predicted boot a
//! little before or after a round is a whole round shorter or longer: with the spread the runs show,
//! and the prediction the mean over seeds ([`super::kasim`]), a round is a probability, not a cliff.

use super::phases::{Phase, Phases};

/// The relative spread written for a phase the run cannot measure it on (fewer than two VMs through
/// it, or boots from the step times): what every calibration wrote before it was measured.
pub const UNMEASURED: f64 = 0.02;

/// Relative standard deviations (sd over mean) of the model's firmware, pxe and kernel phases whose
/// draws give the spread the run's consoles timed across its VMs. The model stretches every node's
/// drawn phase by the same factor (its processor share and the VMs per core: `d (1 - share + share
/// stretch)`), so a phase's relative spread is the same uncontended as measured: the VMs' wall-clock
/// sd over their mean. The kernel's is the kexec boot's (the cold boots of a classical run: the loader
/// to ready's); the loader to ready holds the pxe and the kernel, independent draws whose variances
/// add, so the pxe gets what the kernel leaves of it; without the loader's line, the firmware takes
/// the whole first boot's. `pxe`, `kernel`: the means written.
pub fn relative_sds(p: &Phases, pxe: f64, kernel: f64) -> [f64; 3] {
    let cv = |phase: Option<Phase>| phase.and_then(|x| x.relative_sd());
    // What a sum's spread (`whole_cv` of `whole`) leaves beyond its part of sd `known`, relative to
    // the other part's mean.
    let rest = |whole_cv: Option<f64>, whole: f64, known: f64, mean: f64| {
        whole_cv
            .filter(|_| mean > 0.0)
            .map(|c| ((c * whole).powi(2) - known.powi(2)).max(0.0).sqrt() / mean)
    };
    let [f, x, k] = match p.kexec_boot {
        Some(kexec) => {
            let rk = kexec.relative_sd();
            let known = rk.unwrap_or(UNMEASURED) * kernel;
            match (p.firmware, p.loader_to_ready) {
                (Some(fw), Some(l)) => [
                    fw.relative_sd(),
                    rest(cv(Some(l)), pxe + kernel, known, pxe),
                    rk,
                ],
                // No loader line on the consoles (SeaBIOS shows iPXE only with a serial console):
                // the firmware phase is the first boot less the kernel, and takes the first boot's
                // relative spread (what the kernel leaves of it is a difference of two noisy
                // 4-VM estimates, often nothing).
                _ => [cv(p.deploy_boot), None, rk],
            }
        }
        None => match (p.firmware, p.loader_to_ready) {
            (Some(fw), Some(l)) => [fw.relative_sd(), None, l.relative_sd()],
            _ => [None, None, cv(p.deploy_boot)],
        },
    };
    [f, x, k].map(|r| r.unwrap_or(UNMEASURED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(wall: f64, wall_sd: f64) -> Option<Phase> {
        Some(Phase {
            wall,
            cpu: wall / 2.0,
            vms: 4,
            wall_sd: Some(wall_sd),
        })
    }

    #[test]
    fn each_phase_gets_the_spread_its_vms_showed() {
        let p = Phases {
            firmware: phase(3.0, 0.3),
            loader_to_ready: phase(6.0, 0.5),
            kexec_boot: phase(4.0, 0.2),
            vms: 4,
            host_cores: 2,
            ..Phases::default()
        };
        // Uncontended means: firmware 2.5, pxe 1.5, kernel 3.0.
        let [f, x, k] = relative_sds(&p, 1.5, 3.0);
        assert!((f - 0.1).abs() < 1e-12);
        assert!((k - 0.05).abs() < 1e-12);
        // The loader to ready: 0.5/6 of 4.5 s, less the kernel's 0.15 s.
        let sd_l: f64 = 0.5 / 6.0 * 4.5;
        assert!((x - (sd_l.powi(2) - 0.15f64.powi(2)).sqrt() / 1.5).abs() < 1e-12);
        // One VM: nothing measured, the former 2%.
        let one = Phases {
            firmware: Some(Phase {
                wall: 3.0,
                cpu: 1.0,
                vms: 1,
                wall_sd: None,
            }),
            ..p
        };
        assert_eq!(relative_sds(&one, 1.5, 3.0)[0], UNMEASURED);
        // No loader line: the firmware spreads as the whole first boot did.
        let no_loader = Phases {
            firmware: None,
            loader_to_ready: None,
            deploy_boot: phase(10.0, 0.4),
            ..p
        };
        assert_eq!(relative_sds(&no_loader, 0.0, 3.0), [0.04, UNMEASURED, 0.05]);
        // A classical run: the cold boots' kernel spreads as the loader to ready did.
        let cold = Phases {
            kexec_boot: None,
            ..p
        };
        let [f, x, k] = relative_sds(&cold, 0.1, 4.4);
        assert!((f - 0.1).abs() < 1e-12 && x == UNMEASURED);
        assert!((k - 0.5 / 6.0).abs() < 1e-12);
    }
}
