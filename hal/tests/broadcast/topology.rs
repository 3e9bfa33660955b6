//! The testbed's topologies: every host and the server on one bridge (flat), or the server alone on a
//! core bridge and the hosts on leaf bridges joined to it by rate-limited uplinks (two-level, the
//! simulator's switch model: switch 0 is the core, every other switch has an up and a down uplink).
//! `KABCAST_TOPOLOGY=flat|two-level`, `KABCAST_SWITCHES` (leaf switches, default 2) and
//! `KABCAST_UPLINK_MBIT` (each uplink direction, default the node links' rate) choose it.

/// How the testbed's hosts are wired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One bridge for the server and every host.
    Flat,
    /// The server on the core bridge; host `i` on leaf `1 + i % switches` (interleaved, so that hosts
    /// in index order cross an uplink at every hop); each leaf joined to the core by a veth pair
    /// limited to `uplink_mbit` in each direction.
    TwoLevel {
        /// Leaf switches (at least 1).
        switches: u32,
        /// Rate of each uplink direction, Mbit/s.
        uplink_mbit: u32,
    },
}

impl Topology {
    /// The topology of the environment (`KABCAST_TOPOLOGY`, `KABCAST_SWITCHES`,
    /// `KABCAST_UPLINK_MBIT`), node links at `mbit`; panics on an unknown topology name.
    pub fn from_env(mbit: u32) -> Topology {
        let var = |name: &str| std::env::var(name).ok();
        match var("KABCAST_TOPOLOGY").as_deref().unwrap_or("flat") {
            "flat" => Topology::Flat,
            "two-level" => Topology::TwoLevel {
                switches: var("KABCAST_SWITCHES")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(2u32)
                    .max(1),
                uplink_mbit: var("KABCAST_UPLINK_MBIT")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(mbit),
            },
            other => panic!("KABCAST_TOPOLOGY={other}: expected flat or two-level"),
        }
    }

    /// The switch host `i` hangs off (0 is the server's).
    pub fn switch_of(&self, host: usize) -> u32 {
        match *self {
            Topology::Flat => 0,
            Topology::TwoLevel { switches, .. } => 1 + (host as u32 % switches.max(1)),
        }
    }

    /// Bridges besides the core's `br0`, with the rate of their uplink.
    pub fn leaves(&self) -> Vec<(u32, u32)> {
        match *self {
            Topology::Flat => Vec::new(),
            Topology::TwoLevel {
                switches,
                uplink_mbit,
            } => (1..=switches.max(1)).map(|s| (s, uplink_mbit)).collect(),
        }
    }

    /// The CSV columns `topology,switches,uplink_mbit`.
    pub fn csv(&self) -> String {
        match *self {
            Topology::Flat => "flat,1,0".into(),
            Topology::TwoLevel {
                switches,
                uplink_mbit,
            } => format!("two-level,{switches},{uplink_mbit}"),
        }
    }
}

/// The first `n` hosts in topology order (grouped by switch in order of first appearance, index
/// order inside a group), as kaagent's deployer orders nodes whose switch it knows.
pub fn topology_order(topology: &Topology, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let first_seen = |s: u32| (0..n).position(|h| topology.switch_of(h) == s);
    order.sort_by_key(|&h| first_seen(topology.switch_of(h)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_level_interleaves_hosts_and_topology_order_groups_them() {
        let t = Topology::TwoLevel {
            switches: 2,
            uplink_mbit: 100,
        };
        assert_eq!(
            (0..4).map(|h| t.switch_of(h)).collect::<Vec<_>>(),
            [1, 2, 1, 2]
        );
        assert_eq!(topology_order(&t, 5), [0, 2, 4, 1, 3]);
        assert_eq!(topology_order(&Topology::Flat, 3), [0, 1, 2]);
        assert_eq!(t.leaves(), [(1, 100), (2, 100)]);
    }
}
