//! The micro-steps of each deployment macro-step implementation, before deletions (spec §5.3), and the micro-step
//! names they use.

use crate::engine::slot::{
    BootNewEnvKind, BroadcastEnvKind, MacroKind, SetDeploymentEnvKind, Slot,
};
use crate::engine::step::{BootTarget, PxeSwitch, Step};
use hal::{PowerLevel, Strategy};
use std::collections::BTreeSet;

/// The micro-steps of `kind` in `slot`; `None` when this deployer does not implement it (or `kind` is not of
/// `slot`). `strategy` replaces the broadcast strategy of the `BroadcastEnv` implementations.
pub fn steps(slot: Slot, kind: MacroKind, strategy: Option<Strategy>) -> Option<Vec<Step>> {
    if kind.slot() != slot {
        return None;
    }
    match kind {
        MacroKind::SetDeploymentEnv(kind) => set_deployment_env(kind),
        MacroKind::BroadcastEnv(kind) => broadcast_env(kind, strategy),
        MacroKind::BootNewEnv(kind) => boot_new_env(kind),
    }
}

/// The micro-step names deployments use (what custom operations and micro-step settings may name).
pub fn micro_step_names() -> BTreeSet<&'static str> {
    let set_env = SetDeploymentEnvKind::ALL.map(MacroKind::from);
    let broadcast = BroadcastEnvKind::ALL.map(MacroKind::from);
    let boot = BootNewEnvKind::ALL.map(MacroKind::from);
    [&set_env[..], &broadcast[..], &boot[..]]
        .concat()
        .into_iter()
        .filter_map(|kind| steps(kind.slot(), kind, None))
        .flatten()
        .map(|s| s.name())
        .collect()
}

/// The disk preparation once in the deployment environment.
const PREPARE: [Step; 6] = [
    Step::SendKeyInDeployEnv,
    Step::CreatePartitionTable,
    Step::FormatDeployPart,
    Step::MountDeployPart,
    Step::FormatTmpPart,
    Step::FormatSwapPart,
];

/// Waiting for a user environment after a classical reboot.
const WAIT_USER: Step = Step::WaitReboot {
    kexec: false,
    target: BootTarget::User,
};

/// `set_vlan("DEFAULT")`: back to the default VLAN before the deploy environment boots.
const TO_DEFAULT_VLAN: Step = Step::SetVlan { default: true };

/// `set_vlan`: into the requested VLAN before the deployed environment is waited for.
const TO_VLAN: Step = Step::SetVlan { default: false };

fn set_deployment_env(kind: SetDeploymentEnvKind) -> Option<Vec<Step>> {
    use Step::*;
    let reboot_to_deploy = [
        SwitchPxe(PxeSwitch::ProdToDeployEnv),
        TO_DEFAULT_VLAN,
        Reboot(PowerLevel::Soft),
        WaitReboot {
            kexec: false,
            target: BootTarget::Deploy,
        },
    ];
    let steps = match kind {
        SetDeploymentEnvKind::Untrusted => [&reboot_to_deploy[..], &PREPARE[..]].concat(),
        SetDeploymentEnvKind::Kexec => {
            let kexec = [
                TO_DEFAULT_VLAN,
                SendDeploymentKernel,
                Sync,
                KexecDeployKernel,
                WaitReboot {
                    kexec: true,
                    target: BootTarget::Deploy,
                },
            ];
            [&kexec[..], &PREPARE[..]].concat()
        }
        SetDeploymentEnvKind::UntrustedCustomPreInstall => [
            &reboot_to_deploy[..],
            &[SendKeyInDeployEnv, ManageAdminPreInstall][..],
        ]
        .concat(),
        SetDeploymentEnvKind::Prod => vec![
            CheckProdEnvBooted,
            FormatDeployPart,
            MountDeployPart,
            FormatTmpPart,
        ],
        SetDeploymentEnvKind::Dummy => vec![Dummy, Dummy],
        SetDeploymentEnvKind::Nfsroot => return None,
    };
    Some(steps)
}

/// The broadcast strategy each `BroadcastEnv` kind uses: the one place where Kadeploy's broadcast methods
/// map to `hal::Strategy`. `None`: the kind has no strategy of its own (`Custom` runs the cluster's command,
/// `Dummy` sends nothing, `Auto` asks the cluster's broadcast planner).
pub fn broadcast_strategy(kind: BroadcastEnvKind) -> Option<Strategy> {
    match kind {
        BroadcastEnvKind::Chain | BroadcastEnvKind::Kastafior => Some(Strategy::Chain),
        BroadcastEnvKind::Tree => Some(Strategy::Tree { arity: 2 }),
        BroadcastEnvKind::Kascade => Some(Strategy::FaultTolerantChain),
        BroadcastEnvKind::Multicast => Some(Strategy::Multicast),
        // Kadeploy 3.3's BitTorrent broadcast: kaagent's swarm of verified chunks does its job.
        BroadcastEnvKind::Bittorrent | BroadcastEnvKind::Swarm => Some(Strategy::Swarm),
        BroadcastEnvKind::Custom | BroadcastEnvKind::Dummy | BroadcastEnvKind::Auto => None,
    }
}

fn broadcast_env(kind: BroadcastEnvKind, strategy: Option<Strategy>) -> Option<Vec<Step>> {
    use Step::*;
    let send = match (kind, broadcast_strategy(kind)) {
        (BroadcastEnvKind::Dummy, _) => return Some(vec![Dummy, Dummy]),
        (BroadcastEnvKind::Custom, _) => SendEnvironmentCustom,
        // A strategy forced on the request (kasim, benchmarks) replaces the planner's choice.
        (BroadcastEnvKind::Auto, _) => strategy.map_or(SendEnvironmentAuto, SendEnvironment),
        (_, Some(default)) => SendEnvironment(strategy.unwrap_or(default)),
        (_, None) => return None,
    };
    Some(vec![
        send,
        DecompressEnvironment,
        MountDeployPart,
        ManageAdminPostInstall,
        ManageUserPostInstall,
        CheckKernelFiles,
        SendKey,
        InstallBootloader,
        Sync,
    ])
}

fn boot_new_env(kind: BootNewEnvKind) -> Option<Vec<Step>> {
    use Step::*;
    let steps = match kind {
        BootNewEnvKind::Kexec => vec![
            SwitchPxe(PxeSwitch::DeployToDeployedEnv),
            UmountDeployPart,
            MountDeployPart,
            KexecDeployedEnv,
            TO_VLAN,
            WaitReboot {
                kexec: true,
                target: BootTarget::User,
            },
        ],
        BootNewEnvKind::Classical => vec![
            SwitchPxe(PxeSwitch::DeployToDeployedEnv),
            UmountDeployPart,
            RebootFromDeployEnv,
            TO_VLAN,
            WAIT_USER,
        ],
        BootNewEnvKind::HardReboot => vec![
            SwitchPxe(PxeSwitch::DeployToDeployedEnv),
            Reboot(PowerLevel::Hard),
            TO_VLAN,
            WAIT_USER,
        ],
        BootNewEnvKind::Dummy => vec![Dummy, Dummy],
        BootNewEnvKind::PivotRoot => return None,
    };
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(steps: Option<Vec<Step>>) -> Option<Vec<&'static str>> {
        steps.map(|s| s.iter().map(Step::name).collect())
    }

    #[test]
    fn kinds_outside_their_slot_or_unimplemented_have_no_steps() {
        let kexec: MacroKind = BootNewEnvKind::Kexec.into();
        assert!(steps(Slot::BootNewEnv, kexec, None).is_some());
        assert_eq!(steps(Slot::SetDeploymentEnv, kexec, None), None);
        for kind in [
            MacroKind::from(SetDeploymentEnvKind::Nfsroot),
            BootNewEnvKind::PivotRoot.into(),
        ] {
            assert_eq!(steps(kind.slot(), kind, None), None, "{kind}");
        }
    }

    #[test]
    fn the_same_word_runs_different_steps_in_each_slot() {
        let set_env = steps(
            Slot::SetDeploymentEnv,
            SetDeploymentEnvKind::Kexec.into(),
            None,
        );
        assert_eq!(
            names(set_env).unwrap()[..5],
            [
                "set_vlan",
                "send_deployment_kernel",
                "sync",
                "kexec",
                "wait_reboot"
            ]
        );
        let boot = steps(Slot::BootNewEnv, BootNewEnvKind::Kexec.into(), None);
        assert_eq!(
            names(boot).unwrap(),
            [
                "switch_pxe",
                "umount_deploy_part",
                "mount_deploy_part",
                "kexec",
                "set_vlan",
                "wait_reboot"
            ]
        );
    }

    #[test]
    fn broadcasts_use_their_strategy_unless_one_is_forced() {
        let first = |kind: BroadcastEnvKind, forced| {
            steps(Slot::BroadcastEnv, kind.into(), forced).map(|s| s[0].clone())
        };
        assert_eq!(
            first(BroadcastEnvKind::Kascade, None),
            Some(Step::SendEnvironment(Strategy::FaultTolerantChain))
        );
        assert_eq!(
            first(BroadcastEnvKind::Tree, None),
            Some(Step::SendEnvironment(Strategy::Tree { arity: 2 }))
        );
        assert_eq!(
            first(BroadcastEnvKind::Kastafior, Some(Strategy::Chain)),
            Some(Step::SendEnvironment(Strategy::Chain))
        );
        assert_eq!(first(BroadcastEnvKind::Dummy, None), Some(Step::Dummy));
        assert_eq!(
            first(BroadcastEnvKind::Custom, Some(Strategy::Chain)),
            Some(Step::SendEnvironmentCustom),
            "the custom broadcast runs the cluster's command"
        );
        assert_eq!(
            first(BroadcastEnvKind::Multicast, None),
            Some(Step::SendEnvironment(Strategy::Multicast))
        );
        assert_eq!(
            first(BroadcastEnvKind::Swarm, None),
            Some(Step::SendEnvironment(Strategy::Swarm))
        );
        assert_eq!(
            first(BroadcastEnvKind::Bittorrent, None),
            Some(Step::SendEnvironment(Strategy::Swarm)),
            "Kadeploy's BitTorrent broadcast runs the swarm"
        );
        assert_eq!(
            first(BroadcastEnvKind::Auto, None),
            Some(Step::SendEnvironmentAuto),
            "the planner chooses when the broadcast starts"
        );
        assert_eq!(
            first(BroadcastEnvKind::Auto, Some(Strategy::Swarm)),
            Some(Step::SendEnvironment(Strategy::Swarm)),
            "a forced strategy wins over the planner"
        );
    }

    #[test]
    fn micro_step_names_cover_every_implemented_kind() {
        let names = micro_step_names();
        for name in [
            "switch_pxe",
            "check_nodes",
            "send_environment",
            "reboot_from_deploy_env",
        ] {
            assert!(names.contains(name), "{name}");
        }
        assert!(!names.contains("power") && !names.contains("custom"));
    }
}
