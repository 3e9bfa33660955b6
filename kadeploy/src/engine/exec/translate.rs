//! Which translation each micro-step gets: the dispatch of [`super::action`], [`super::disk`],
//! [`super::kexec`] and [`super::install`] over the steps, with the soft reboot of a retried macro-step
//! made hard.

use super::action::{Action, StepContext, send_key, set_vlan, switch_pxe, wait_reboot};
use super::{disk, install, kexec};
use crate::engine::step::Step;
use hal::{Operation, PowerAction, PowerLevel, Strategy};

/// What `step` does in `cx`; `macro_attempt` counts retries of the enclosing macro-step (a soft reboot becomes
/// hard when the macro-step is retried).
pub fn translate(step: &Step, cx: StepContext<'_>, macro_attempt: u32) -> Action {
    match step {
        Step::SwitchPxe(switch) => switch_pxe(*switch, cx),
        Step::Reboot(level) => {
            let level = if *level == PowerLevel::Soft && macro_attempt > 0 {
                PowerLevel::Hard
            } else {
                *level
            };
            Action::Power(PowerAction::Reboot, level)
        }
        Step::Power(action, level) => Action::Power(*action, *level),
        Step::PowerStatus => Action::PowerStatus,
        Step::WaitReboot { kexec, target } => wait_reboot(*kexec, *target, cx),
        Step::SendKeyInDeployEnv => send_key("/root/.ssh/authorized_keys".into(), cx),
        Step::SendKey => {
            let destination = format!("{}/root/.ssh/authorized_keys", cx.server.extraction_dir);
            send_key(destination, cx)
        }
        Step::CreatePartitionTable => disk::create_partition_table(cx),
        Step::FormatDeployPart => disk::format_deploy_part(cx),
        Step::FormatTmpPart => disk::format_tmp_part(cx),
        Step::FormatSwapPart => disk::format_swap_part(cx),
        Step::MountDeployPart => disk::mount_deploy_part(cx),
        Step::UmountDeployPart => disk::umount_deploy_part(cx),
        Step::CheckProdEnvBooted => disk::check_prod_env_booted(cx),
        Step::SendDeploymentKernel => kexec::send_deployment_kernel(cx),
        Step::Sync => Action::Run(Operation::Sync),
        Step::KexecDeployKernel => kexec::kexec_deploy_kernel(cx),
        Step::KexecDeployedEnv => kexec::kexec_deployed_env(cx),
        Step::SendEnvironment(strategy) => install::send_environment(cx, *strategy),
        Step::SendEnvironmentAuto => match install::send_environment(cx, Strategy::Chain) {
            Action::Broadcast { image, target, .. } => Action::AutoBroadcast { image, target },
            refused => refused,
        },
        Step::SendEnvironmentCustom => install::send_environment_custom(cx),
        Step::SetVlan { default } => set_vlan(*default, cx),
        Step::Unsupported(kind) => Action::refuse(format!(
            "{} is not supported by this deployer",
            kind.instance_name()
        )),
        Step::DecompressEnvironment => install::decompress_environment(cx),
        Step::ManageAdminPreInstall => install::manage_admin_pre_install(cx),
        Step::ManageAdminPostInstall => install::manage_admin_post_install(cx),
        Step::ManageUserPostInstall => install::manage_user_post_install(cx),
        Step::CheckKernelFiles => install::check_kernel_files(cx),
        Step::InstallBootloader => install::install_bootloader(cx),
        Step::RebootFromDeployEnv => Action::RunWindowed(Operation::RebootFromDeployEnv),
        Step::Dummy => Action::Run(Operation::Dummy),
        Step::Custom(op) => Action::Custom {
            action: op.action.clone(),
            env: install::script_env(cx),
        },
    }
}
