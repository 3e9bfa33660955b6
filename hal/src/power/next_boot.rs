//! A power step that sets each node's next boot device through its BMC before the node is rebooted or
//! powered on, for machines whose firmware boot order is not network-first (UEFI machines that put the
//! disk first once a system is installed).
//!
//! A node whose BMC refuses or does not answer fails the step with the BMC's error at the soft and hard
//! levels; at the very_hard level (the last resort, often a PDU that does not need the BMC) the power
//! command runs anyway. Power off and the status are passed through.

use super::ipmi::IpmiPower;
use super::ipmi::bootdev::BootFlags;
use super::{Power, PowerAction, PowerLevel, PowerState};
use crate::node::NodeId;
use crate::outcome::{NodeError, Outcome, Outcomes};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Another power backend, with the boot flags set through the BMCs before each reboot and power-on.
pub struct NextBootPower {
    inner: Arc<dyn Power>,
    bmcs: IpmiPower,
    flags: BootFlags,
}

impl NextBootPower {
    /// Sets `flags` through `bmcs` before `inner` reboots or powers nodes on.
    pub fn new(inner: Arc<dyn Power>, bmcs: IpmiPower, flags: BootFlags) -> Self {
        NextBootPower { inner, bmcs, flags }
    }
}

#[async_trait]
impl Power for NextBootPower {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        if action == PowerAction::Off {
            return self.inner.power(action, level, nodes).await;
        }
        let set = self.bmcs.set_boot_flags(nodes, self.flags).await;
        let mut refused: BTreeMap<NodeId, NodeError> = BTreeMap::new();
        for (node, error) in set.failures() {
            tracing::warn!(%node, flags = %self.flags, "cannot set the next boot device: {error}");
            if level != PowerLevel::VeryHard {
                refused.insert(node, error);
            }
        }
        let go: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| !refused.contains_key(n))
            .collect();
        let done: BTreeMap<NodeId, Outcome> = if go.is_empty() {
            BTreeMap::new()
        } else {
            self.inner
                .power(action, level, &go)
                .await
                .into_iter()
                .collect()
        };
        Outcomes::from_fn(nodes, |node| match refused.get(&node) {
            Some(error) => Err(NodeError::new(
                error.kind,
                format!("setting the next boot device to {}: {error}", self.flags),
            )),
            None => done.get(&node).cloned().unwrap_or_else(|| {
                Err(NodeError::new(
                    crate::ErrorKind::CommandFailed,
                    "the power backend gave no outcome",
                ))
            }),
        })
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        self.inner.status(nodes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::power::ipmi::IpmiTarget;
    use crate::power::ipmi::bootdev::BootDevice;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records the power calls it is given and accepts them.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(PowerAction, PowerLevel, Vec<NodeId>)>>);

    #[async_trait]
    impl Power for Recorder {
        async fn power(
            &self,
            action: PowerAction,
            level: PowerLevel,
            nodes: &[NodeId],
        ) -> Outcomes {
            self.0.lock().unwrap().push((action, level, nodes.to_vec()));
            Outcomes::all(nodes, Ok(()))
        }

        async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
            Outcomes::all(nodes, Ok(PowerState::On))
        }
    }

    /// Node 0's BMC never answers; node 1 has none.
    async fn setup() -> (Arc<Recorder>, NextBootPower, tokio::net::UdpSocket) {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = IpmiTarget {
            host: "127.0.0.1".into(),
            port: silent.local_addr().unwrap().port(),
            user: "u".into(),
            password: "p".into(),
        };
        let bmcs = IpmiPower::new(
            BTreeMap::from([(NodeId(0), target)]),
            Duration::from_millis(50),
            0,
        );
        let inner = Arc::new(Recorder::default());
        let power = NextBootPower::new(inner.clone(), bmcs, BootFlags::next(BootDevice::Pxe));
        (inner, power, silent)
    }

    #[tokio::test]
    async fn a_bmc_that_cannot_set_the_device_fails_the_node_below_very_hard() {
        let (inner, power, _silent) = setup().await;
        let nodes = [NodeId(1), NodeId(0)];
        let out = power
            .power(PowerAction::Reboot, PowerLevel::Hard, &nodes)
            .await;
        let failures = out.failures();
        assert_eq!(failures.len(), 2, "{out:?}");
        assert_eq!(failures[0].0, NodeId(1));
        assert_eq!(failures[0].1.kind, ErrorKind::Config);
        assert_eq!(failures[1].1.kind, ErrorKind::Unreachable);
        assert!(
            failures[1]
                .1
                .message
                .starts_with("setting the next boot device to pxe: "),
            "{}",
            failures[1].1
        );
        assert!(
            inner.0.lock().unwrap().is_empty(),
            "the nodes were rebooted"
        );
    }

    #[tokio::test]
    async fn very_hard_power_and_power_off_go_through() {
        let (inner, power, _silent) = setup().await;
        let nodes = [NodeId(1), NodeId(0)];
        let out = power
            .power(PowerAction::On, PowerLevel::VeryHard, &nodes)
            .await;
        assert!(out.failures().is_empty(), "{out:?}");
        let out = power
            .power(PowerAction::Off, PowerLevel::Hard, &nodes)
            .await;
        assert!(out.failures().is_empty(), "{out:?}");
        assert_eq!(
            *inner.0.lock().unwrap(),
            vec![
                (PowerAction::On, PowerLevel::VeryHard, nodes.to_vec()),
                (PowerAction::Off, PowerLevel::Hard, nodes.to_vec())
            ]
        );
    }
}
