//! Contracts of [`NetBoot`]: one outcome per node in order and unknown nodes failing alone, for every
//! kind of boot profile.

use super::{Checked, Contract, Expect, Nodes, call_name, check_empty, check_outcomes};
use crate::{BootProfile, NetBoot};

/// The profiles a network-boot backend under test writes for its known nodes.
#[derive(Clone, Debug)]
pub struct NetBootSubject {
    /// The nodes to check on.
    pub nodes: Nodes,
    /// Profiles every known node accepts.
    pub profiles: Vec<BootProfile>,
}

/// A short name of `profile` for violations.
fn profile_name(profile: &BootProfile) -> &'static str {
    match profile {
        BootProfile::DeployKernel { .. } => "deploy_kernel",
        BootProfile::LocalDisk { .. } => "local_disk",
        BootProfile::Custom { .. } => "custom",
    }
}

/// Runs every network-boot contract on `netboot`.
pub async fn check_netboot<N: NetBoot + ?Sized>(netboot: &N, subject: &NetBootSubject) -> Checked {
    subject.nodes.validate("network boot subject")?;
    let request = subject.nodes.mixed();
    for profile in &subject.profiles {
        let name = profile_name(profile);
        let got = netboot.set_profile(&[], profile).await;
        check_empty(&call_name("set_profile", name, &[]), &got)?;
        let call = call_name("set_profile", name, &request);
        let got = netboot.set_profile(&request, profile).await;
        let unknown = Some(subject.nodes.unknown);
        check_outcomes(
            &call,
            &request,
            unknown,
            &got,
            Expect::Ok,
            Contract::Success,
        )?;
    }
    Ok(())
}
