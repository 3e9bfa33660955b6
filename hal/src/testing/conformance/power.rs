//! Contracts of [`Power`]: one outcome per node in order for actions and status, unknown nodes fail
//! alone, a level with a working command switches what status reads, and a missing command answers
//! [`ErrorKind::NotSupported`] with Kadeploy's `<level>_<action> command is not provided`.

use super::{
    Checked, Contract, Expect, Nodes, Violation, call_name, check_empty, check_one, check_outcomes,
    check_shape, check_unknown,
};
use crate::{ErrorKind, NodeId, Outcomes, Power, PowerAction, PowerLevel, PowerState};

/// What a backend without power status answers.
const STATUS_NOT_PROVIDED: &str = "power_status command is not provided";

/// What a power backend under test can do.
#[derive(Clone, Debug)]
pub struct PowerSubject {
    /// The nodes to check on.
    pub nodes: Nodes,
    /// Actions whose command is accepted on every known node (checked for success only).
    pub accepted: Vec<(PowerAction, PowerLevel)>,
    /// A level whose power-off, power-on and reboot work and change what [`Power::status`] reads.
    pub switch: Option<PowerLevel>,
    /// Actions at levels the backend has no command for.
    pub unsupported: Vec<(PowerAction, PowerLevel)>,
    /// Whether the backend reads power states (without it, status answers `NotSupported`).
    pub status: bool,
}

/// Runs every power contract on `power`.
pub async fn check_power<P: Power + ?Sized>(power: &P, subject: &PowerSubject) -> Checked {
    subject.nodes.validate("power subject")?;
    if subject.switch.is_some() && !subject.status {
        return Err(Violation::new(
            Contract::Setup,
            "power subject",
            "a switch level needs status",
        ));
    }
    empty_lists(power, subject).await?;
    for &(action, level) in &subject.accepted {
        act(power, &subject.nodes, action, level).await?;
    }
    if let Some(level) = subject.switch {
        switch(power, &subject.nodes, level).await?;
    } else if subject.status {
        let request = subject.nodes.mixed();
        let call = call_name("status", "", &request);
        let got = power.status(&request).await;
        check_outcomes(
            &call,
            &request,
            Some(subject.nodes.unknown),
            &got,
            Expect::Ok,
            Contract::Success,
        )?;
    }
    for &(action, level) in &subject.unsupported {
        unsupported(power, &subject.nodes, action, level).await?;
    }
    if !subject.status {
        status_unsupported(power, &subject.nodes).await?;
    }
    Ok(())
}

/// Every action the subject names, and status, on no node.
async fn empty_lists<P: Power + ?Sized>(power: &P, subject: &PowerSubject) -> Checked {
    let switched = subject.switch.into_iter().flat_map(|level| {
        [PowerAction::Off, PowerAction::On, PowerAction::Reboot].map(|action| (action, level))
    });
    let actions = subject
        .accepted
        .iter()
        .chain(&subject.unsupported)
        .copied()
        .chain(switched);
    for (action, level) in actions {
        let call = call_name("power", &format!("{}, {level}", action.as_str()), &[]);
        check_empty(&call, &power.power(action, level, &[]).await)?;
    }
    check_empty("status([])", &power.status(&[]).await)
}

/// Runs `action` at `level` on the mixed request: known nodes succeed, the unknown one is a config error.
async fn act<P: Power + ?Sized>(
    power: &P,
    nodes: &Nodes,
    action: PowerAction,
    level: PowerLevel,
) -> Checked {
    let request = nodes.mixed();
    let call = call_name("power", &format!("{}, {level}", action.as_str()), &request);
    let got = power.power(action, level, &request).await;
    check_outcomes(
        &call,
        &request,
        Some(nodes.unknown),
        &got,
        Expect::Ok,
        Contract::Success,
    )
}

/// Off, on, reboot, off, on at `level`, reading the state after each: it must follow.
async fn switch<P: Power + ?Sized>(power: &P, nodes: &Nodes, level: PowerLevel) -> Checked {
    let steps = [
        (PowerAction::Off, PowerState::Off),
        (PowerAction::On, PowerState::On),
        (PowerAction::Reboot, PowerState::On),
        (PowerAction::Off, PowerState::Off),
        (PowerAction::On, PowerState::On),
    ];
    for (action, expected) in steps {
        act(power, nodes, action, level).await?;
        let request = nodes.mixed();
        let call = format!(
            "{} after power({}, {level})",
            call_name("status", "", &request),
            action.as_str()
        );
        let got = power.status(&request).await;
        check_states(&call, &request, nodes.unknown, &got, expected)?;
    }
    Ok(())
}

/// Checks that every known node reads `expected`.
fn check_states(
    call: &str,
    request: &[NodeId],
    unknown: NodeId,
    got: &Outcomes<PowerState>,
    expected: PowerState,
) -> Checked {
    check_shape(call, request, got)?;
    for (node, outcome) in got.iter() {
        if *node == unknown {
            check_unknown(call, *node, outcome)?;
            continue;
        }
        check_one(call, *node, outcome, Expect::Ok, Contract::Success)?;
        if outcome.as_ref().ok() != Some(&expected) {
            return Err(Violation::new(
                Contract::PowerState,
                call,
                format!("{node} reads {outcome:?}, expected {expected}"),
            ));
        }
    }
    Ok(())
}

/// A level without a command: every known node answers Kadeploy's "not provided".
async fn unsupported<P: Power + ?Sized>(
    power: &P,
    nodes: &Nodes,
    action: PowerAction,
    level: PowerLevel,
) -> Checked {
    let request = nodes.mixed();
    let call = call_name("power", &format!("{}, {level}", action.as_str()), &request);
    let got = power.power(action, level, &request).await;
    check_shape(&call, &request, &got)?;
    let message = format!(
        "{}_{} command is not provided",
        level.as_str(),
        action.as_str()
    );
    for (node, outcome) in got.iter() {
        let fine = match outcome {
            // The unknown node may be refused for either reason.
            Err(e) if *node == nodes.unknown => {
                matches!(e.kind, ErrorKind::Config | ErrorKind::NotSupported)
            }
            Err(e) => e.kind == ErrorKind::NotSupported && e.message == message,
            Ok(()) => false,
        };
        if !fine {
            return Err(Violation::new(
                Contract::NotSupported,
                &call,
                format!("{node} gave {outcome:?}, expected not supported: {message:?}"),
            ));
        }
    }
    Ok(())
}

/// A backend without status answers not supported for every known node.
async fn status_unsupported<P: Power + ?Sized>(power: &P, nodes: &Nodes) -> Checked {
    let request = nodes.mixed();
    let call = call_name("status", "", &request);
    let got = power.status(&request).await;
    check_shape(&call, &request, &got)?;
    for (node, outcome) in got.iter() {
        let fine = match outcome {
            Err(e) if *node == nodes.unknown => {
                matches!(e.kind, ErrorKind::Config | ErrorKind::NotSupported)
            }
            Err(e) => e.kind == ErrorKind::NotSupported && e.message == STATUS_NOT_PROVIDED,
            Ok(_) => false,
        };
        if !fine {
            return Err(Violation::new(
                Contract::NotSupported,
                &call,
                format!("{node} gave {outcome:?}, expected not supported: {STATUS_NOT_PROVIDED:?}"),
            ));
        }
    }
    Ok(())
}
