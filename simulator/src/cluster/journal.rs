//! What happened on each simulated node, as plain data for consumers that model a node's files (the
//! simulated SSH endpoints of the `simssh` crate): boots with the system they land in, and the node
//! operations and image writes that succeeded, in order. Off unless [`super::SimCluster::enable_journal`]
//! is called; bounded per node (the oldest events are dropped and counted).

use super::system::Env;
use hal::{ImageSpec, Operation, WriteTarget};
use std::collections::VecDeque;

/// Events kept per node until a consumer takes them.
pub const JOURNAL_CAPACITY: usize = 512;

/// One thing that happened on a node.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeEvent {
    /// A boot started: the node lands in `Some(env)`, or stays down (`None`: nothing to boot, never boots).
    Booted(Option<Env>),
    /// The power was cut.
    PoweredOff,
    /// A node operation succeeded on the node.
    Operation(Operation),
    /// A broadcast delivered `image` and wrote it to `target` (kind `fsa` images are not written yet).
    Image {
        /// The image as the server sent it (its `path` is a file on the server).
        image: ImageSpec,
        /// Where it was written.
        target: WriteTarget,
        /// Written to the disk (false: kept in a temporary file in RAM).
        to_disk: bool,
    },
}

/// A node's bounded event log: one pointer per node while off (a million nodes' states stay small).
#[derive(Clone, Debug, Default)]
pub struct Journal {
    /// The log, once enabled.
    log: Option<Box<Log>>,
}

/// The events of an enabled journal.
#[derive(Clone, Debug, Default)]
struct Log {
    events: VecDeque<NodeEvent>,
    dropped: u64,
}

/// Events taken from a node's journal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Taken {
    /// The events, oldest first.
    pub events: Vec<NodeEvent>,
    /// Events dropped since the last take because the journal was full.
    pub dropped: u64,
}

impl Journal {
    /// Starts recording.
    pub fn enable(&mut self) {
        self.log.get_or_insert_with(Box::default);
    }

    /// Records `event` when enabled, dropping the oldest one when full.
    pub fn push(&mut self, event: impl FnOnce() -> NodeEvent) {
        let Some(log) = &mut self.log else {
            return;
        };
        if log.events.len() >= JOURNAL_CAPACITY {
            log.events.pop_front();
            log.dropped += 1;
        }
        log.events.push_back(event());
    }

    /// Takes every recorded event.
    pub fn take(&mut self) -> Taken {
        match &mut self.log {
            Some(log) => Taken {
                events: log.events.drain(..).collect(),
                dropped: std::mem::take(&mut log.dropped),
            },
            None => Taken::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::SimCluster;
    use crate::params::SimParams;
    use hal::{BootProfile, NetBoot, NodeId, NodeInfo, NodeOps, Power, PowerAction, PowerLevel};

    #[tokio::test(start_paused = true)]
    async fn the_cluster_records_operations_and_boots_once_enabled() {
        let nodes = vec![NodeInfo {
            name: "n1".into(),
            address: "10.0.0.1".parse().unwrap(),
        }];
        let sim = SimCluster::new(nodes, SimParams::default(), 1).unwrap();
        let op = Operation::SendKey {
            keys: "ssh-ed25519 AAAA k".into(),
            destination: "/root/.ssh/authorized_keys".into(),
        };
        let n = [NodeId(0)];
        assert!(sim.run(&op, &n).await.failures().is_empty());
        assert_eq!(sim.take_events(NodeId(0)), Some(Taken::default()));
        sim.enable_journal();
        assert!(sim.run(&op, &n).await.failures().is_empty());
        let deploy = BootProfile::DeployKernel {
            kernel: "k".into(),
            initrd: "i".into(),
            params: String::new(),
        };
        assert!(sim.set_profile(&n, &deploy).await.failures().is_empty());
        let reboot = sim.power(PowerAction::Reboot, PowerLevel::Hard, &n).await;
        assert!(reboot.failures().is_empty());
        let taken = sim.take_events(NodeId(0)).unwrap();
        assert_eq!(
            taken.events,
            vec![
                NodeEvent::Operation(op),
                NodeEvent::Booted(Some(Env::Deploy))
            ]
        );
        assert_eq!(sim.take_events(NodeId(7)), None);
    }

    #[test]
    fn a_disabled_journal_records_nothing_and_a_full_one_drops_the_oldest() {
        let mut j = Journal::default();
        j.push(|| NodeEvent::PoweredOff);
        assert_eq!(j.take(), Taken::default());
        j.enable();
        for _ in 0..JOURNAL_CAPACITY {
            j.push(|| NodeEvent::PoweredOff);
        }
        j.push(|| NodeEvent::Booted(Some(Env::Deploy)));
        let taken = j.take();
        assert_eq!((taken.events.len(), taken.dropped), (JOURNAL_CAPACITY, 1));
        assert_eq!(
            taken.events.last(),
            Some(&NodeEvent::Booted(Some(Env::Deploy)))
        );
        assert_eq!(j.take(), Taken::default());
    }
}
