//! Contracts across traits, for backends that model nodes (the simulator, the recording fake): a boot
//! profile takes effect at the next boot and becomes visible to probes only once that boot is over, and
//! a powered-off node refuses node operations alone.

use super::{
    Checked, Contract, Expect, Violation, call_name, check_one, check_outcomes, check_shape,
};
use crate::{
    BootProfile, Drivers, ErrorKind, NodeId, Operation, PortCheck, PowerAction, PowerLevel,
};
use std::time::Duration;

/// Nodes rebooted into a profile, and how they show it.
#[derive(Clone, Debug)]
pub struct BootSubject {
    /// The nodes (known, running another environment, at least one).
    pub nodes: Vec<NodeId>,
    /// The profile they boot next.
    pub profile: BootProfile,
    /// The level of the reboot.
    pub level: PowerLevel,
    /// The check a node running the profile's environment passes (and a node running another fails).
    pub check: PortCheck,
    /// The longest boot: every node passes `check` this long after the reboot returned.
    pub boot_time: Duration,
}

/// Probes `nodes` with `check` and expects every node to give `expect`.
async fn probe_all(drivers: &Drivers, s: &BootSubject, when: &str, expect: Expect) -> Checked {
    let got = drivers.reachability.probe(&s.nodes, &s.check).await;
    let call = format!("{} {when}", call_name("probe", "", &s.nodes));
    check_outcomes(
        &call,
        &s.nodes,
        None,
        &got,
        expect,
        Contract::BootVisibility,
    )
}

/// A profile changes nothing until a reboot; after the reboot the nodes do not answer as the profile's
/// environment at once, but do within `boot_time`.
pub async fn check_boot_visibility(drivers: &Drivers, subject: &BootSubject) -> Checked {
    if subject.nodes.is_empty() {
        return Err(Violation::new(Contract::Setup, "boot subject", "no node"));
    }
    let down = Expect::Fails(ErrorKind::Unreachable);
    probe_all(drivers, subject, "before the profile", down).await?;
    let got = drivers
        .netboot
        .set_profile(&subject.nodes, &subject.profile)
        .await;
    let call = call_name("set_profile", "", &subject.nodes);
    check_outcomes(
        &call,
        &subject.nodes,
        None,
        &got,
        Expect::Ok,
        Contract::Success,
    )?;
    probe_all(drivers, subject, "after the profile, before a reboot", down).await?;
    let got = drivers
        .power
        .power(PowerAction::Reboot, subject.level, &subject.nodes)
        .await;
    let call = call_name(
        "power",
        &format!("reboot, {}", subject.level),
        &subject.nodes,
    );
    check_outcomes(
        &call,
        &subject.nodes,
        None,
        &got,
        Expect::Ok,
        Contract::Success,
    )?;
    probe_all(drivers, subject, "as the reboot returns", down).await?;
    tokio::time::sleep(subject.boot_time).await;
    let when = format!("{:?} after the reboot", subject.boot_time);
    probe_all(drivers, subject, &when, Expect::Ok).await
}

/// Powers the second of `nodes` off at `level`, runs `op` (which succeeds on running nodes) on all of
/// them: the powered-off node fails alone as unreachable. Powers it on again at the end.
pub async fn check_powered_off_refusal(
    drivers: &Drivers,
    level: PowerLevel,
    nodes: &[NodeId],
    op: &Operation,
) -> Checked {
    let Some(&victim) = nodes.get(1) else {
        return Err(Violation::new(
            Contract::Setup,
            "powered-off subject",
            "needs two nodes",
        ));
    };
    let call = call_name("power", &format!("off, {level}"), &[victim]);
    let got = drivers
        .power
        .power(PowerAction::Off, level, &[victim])
        .await;
    check_outcomes(&call, &[victim], None, &got, Expect::Ok, Contract::Success)?;
    let call = call_name("run", op.name(), nodes);
    let got = drivers.ops.run(op, nodes).await;
    check_shape(&call, nodes, &got)?;
    for (node, outcome) in got.iter() {
        let expect = match *node == victim {
            true => Expect::Fails(ErrorKind::Unreachable),
            false => Expect::Ok,
        };
        check_one(&call, *node, outcome, expect, Contract::PoweredOff)?;
    }
    let call = call_name("power", &format!("on, {level}"), &[victim]);
    let got = drivers.power.power(PowerAction::On, level, &[victim]).await;
    check_outcomes(&call, &[victim], None, &got, Expect::Ok, Contract::Success)
}
