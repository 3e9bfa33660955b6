//! Power by level: each escalation level (and the status query) served by its own backend, e.g. soft
//! reboots over SSH, hard ones through the BMC, very hard ones through a PDU command.

use super::{Power, PowerAction, PowerLevel, PowerState};
use crate::node::NodeId;
use crate::outcome::{ErrorKind, NodeError, Outcomes};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Dispatches each level to the backend registered for it; a level without one is not supported.
#[derive(Clone, Default)]
pub struct PowerByLevel {
    levels: BTreeMap<PowerLevel, Arc<dyn Power>>,
    status: Option<Arc<dyn Power>>,
}

impl PowerByLevel {
    /// No level served yet.
    pub fn new() -> Self {
        PowerByLevel::default()
    }

    /// Serves `level` (every action) with `backend`.
    pub fn level(mut self, level: PowerLevel, backend: Arc<dyn Power>) -> Self {
        self.levels.insert(level, backend);
        self
    }

    /// Serves status queries with `backend`.
    pub fn status_from(mut self, backend: Arc<dyn Power>) -> Self {
        self.status = Some(backend);
        self
    }
}

#[async_trait]
impl Power for PowerByLevel {
    async fn power(&self, action: PowerAction, level: PowerLevel, nodes: &[NodeId]) -> Outcomes {
        match self.levels.get(&level) {
            Some(backend) => backend.power(action, level, nodes).await,
            None => Outcomes::all(nodes, Err(super::not_provided(level, action))),
        }
    }

    async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
        match &self.status {
            Some(backend) => backend.status(nodes).await,
            None => Outcomes::all(
                nodes,
                Err(NodeError::new(
                    ErrorKind::NotSupported,
                    "power_status command is not provided",
                )),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use std::sync::Mutex;

    /// Records the calls it gets and answers OK / On.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    #[async_trait]
    impl Power for Recorder {
        async fn power(
            &self,
            action: PowerAction,
            level: PowerLevel,
            nodes: &[NodeId],
        ) -> Outcomes {
            self.0
                .lock()
                .unwrap()
                .push(format!("{level}_{}", action.as_str()));
            Outcomes::all(nodes, Ok(()))
        }

        async fn status(&self, nodes: &[NodeId]) -> Outcomes<PowerState> {
            self.0.lock().unwrap().push("status".into());
            Outcomes::all(nodes, Ok(PowerState::On))
        }
    }

    #[tokio::test]
    async fn each_level_goes_to_its_backend_and_missing_levels_are_not_supported() {
        let soft = Arc::new(Recorder::default());
        let hard = Arc::new(Recorder::default());
        let power = PowerByLevel::new()
            .level(PowerLevel::Soft, soft.clone())
            .level(PowerLevel::Hard, hard.clone())
            .status_from(hard.clone());
        let nodes = [NodeId(0), NodeId(1)];
        let out = power
            .power(PowerAction::Reboot, PowerLevel::Soft, &nodes)
            .await;
        assert!(out.failures().is_empty());
        let out = power
            .power(PowerAction::Off, PowerLevel::Hard, &nodes)
            .await;
        assert!(out.failures().is_empty());
        let status = power.status(&nodes).await;
        assert!(
            status
                .iter()
                .all(|(_, s)| matches!(s, Outcome::Ok(PowerState::On)))
        );
        let out = power
            .power(PowerAction::On, PowerLevel::VeryHard, &nodes)
            .await;
        let failures = out.failures();
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[0].1.kind, ErrorKind::NotSupported);
        assert_eq!(
            failures[0].1.message,
            "very_hard_power_on command is not provided"
        );
        assert_eq!(*soft.0.lock().unwrap(), ["soft_reboot"]);
        assert_eq!(*hard.0.lock().unwrap(), ["hard_power_off", "status"]);
        let none = PowerByLevel::new().status(&nodes).await;
        assert_eq!(none.failures()[0].1.kind, ErrorKind::NotSupported);
    }
}
