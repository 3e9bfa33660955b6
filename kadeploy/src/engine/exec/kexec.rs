//! Translation of the kexec micro-steps: sending the deploy kernel to the nodes' kexec repository, and kexec into
//! the deploy kernel or into the deployed environment.

use super::action::{Action, StepContext};
use super::install::deployed_kernel_params;
use hal::Operation;

/// The file name of `path`.
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Where the deploy kernel file `file` goes in the cluster's kexec repository.
fn in_repository(cx: StepContext<'_>, file: &str) -> String {
    format!("{}/{}", cx.cluster.kexec_repository, basename(file))
}

/// `send_deployment_kernel`: the deploy kernel, then its initrd, into the kexec repository.
pub fn send_deployment_kernel(cx: StepContext<'_>) -> Action {
    let boot = &cx.cluster.boot;
    let sends = [&boot.deploy_vmlinuz, &boot.deploy_initrd]
        .into_iter()
        .map(|file| Operation::SendFile {
            source: file.clone(),
            destination: in_repository(cx, file),
            size: 0,
        })
        .collect();
    Action::RunInSequence(sends)
}

/// `kexec` into the deploy kernel sent by [`send_deployment_kernel`].
pub fn kexec_deploy_kernel(cx: StepContext<'_>) -> Action {
    let boot = &cx.cluster.boot;
    Action::Run(Operation::Kexec {
        kernel: in_repository(cx, &boot.deploy_vmlinuz),
        initrd: in_repository(cx, &boot.deploy_initrd),
        params: boot.deploy_params.clone(),
    })
}

/// `kexec` into the deployed environment's kernel, read from the extraction directory (Linux only).
pub fn kexec_deployed_env(cx: StepContext<'_>) -> Action {
    let Some(env) = &cx.job.environment else {
        return Action::refuse("No environment");
    };
    if env.os != "linux" {
        return Action::refuse(format!("Cannot kexec an environment of kind {}", env.os));
    }
    let dir = &cx.server.extraction_dir;
    let initrd = if env.initrd.is_empty() {
        String::new()
    } else {
        format!("{dir}{}", env.initrd)
    };
    Action::Run(Operation::Kexec {
        kernel: format!("{dir}{}", env.kernel),
        initrd,
        params: deployed_kernel_params(cx),
    })
}
