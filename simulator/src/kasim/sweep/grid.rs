//! The grid of a sweep: the parameter lists of [`GridArgs`], checked and bounded, and its points in a
//! fixed order (strategy, N, size, link, topology, failure rate, seed; seeds innermost), each with its
//! index, so that shards and merges agree on what point `i` is.

use crate::kasim::args::{BroadcastArg, GridArgs};
use anyhow::{anyhow, bail};
use hal::Strategy;

/// Most grid points a sweep runs.
pub const MAX_POINTS: usize = 1_000_000;
/// Most nodes of one point.
pub const MAX_NODES: usize = 10_000_000;

/// A network topology of a point.
#[derive(Clone, Debug, PartialEq)]
pub enum TopologySpec {
    /// One non-blocking switch.
    Flat,
    /// `per_switch` nodes per switch, switches joined to the core by uplinks of `uplink` bytes/s.
    Switches {
        /// Nodes per switch.
        per_switch: usize,
        /// Uplink goodput per direction.
        uplink: f64,
    },
}

impl TopologySpec {
    /// Parses `flat` or `switches:K:U`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if s == "flat" {
            return Ok(TopologySpec::Flat);
        }
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["switches", k, u] => {
                let per_switch: usize =
                    k.parse().map_err(|_| anyhow!("`{s}`: K is not a count"))?;
                let uplink: f64 = u.parse().map_err(|_| anyhow!("`{s}`: U is not a rate"))?;
                if per_switch == 0 || !(uplink.is_finite() && uplink > 0.0) {
                    bail!("`{s}`: need K >= 1 and U > 0");
                }
                Ok(TopologySpec::Switches { per_switch, uplink })
            }
            _ => bail!("`{s}`: a topology is `flat` or `switches:K:U`"),
        }
    }

    /// The CSV form (the form parsed).
    pub fn label(&self) -> String {
        match self {
            TopologySpec::Flat => "flat".into(),
            TopologySpec::Switches { per_switch, uplink } => {
                format!("switches:{per_switch}:{uplink}")
            }
        }
    }
}

/// One grid point.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Index in the grid's order.
    pub index: usize,
    /// Strategy.
    pub strategy: Strategy,
    /// Receivers.
    pub nodes: usize,
    /// Compressed image bytes.
    pub size: f64,
    /// Link goodput, bytes/s.
    pub link: f64,
    /// Topology.
    pub topology: TopologySpec,
    /// Per-node probability of dying during the broadcast.
    pub failure: f64,
    /// Seed.
    pub seed: u64,
}

/// A checked grid.
#[derive(Clone, Debug)]
pub struct Grid {
    strategies: Vec<Strategy>,
    nodes: Vec<usize>,
    sizes: Vec<f64>,
    links: Vec<f64>,
    topologies: Vec<TopologySpec>,
    failures: Vec<f64>,
    seeds: Vec<u64>,
}

impl Grid {
    /// Checks `args`: non-empty lists, values in range, at most [`MAX_POINTS`] points.
    pub fn new(args: &GridArgs) -> anyhow::Result<Self> {
        let strategies = args
            .strategies
            .iter()
            .map(|b| {
                b.strategy(args.tree_arity)
                    .ok_or_else(|| anyhow!("`auto` is not a strategy to sweep"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for &n in &args.nodes {
            if n == 0 || n > MAX_NODES {
                bail!("--nodes: {n} is not between 1 and {MAX_NODES}");
            }
        }
        for (name, list) in [("--sizes", &args.sizes), ("--links", &args.links)] {
            if let Some(v) = list.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                bail!("{name}: {v} is not a positive number");
            }
        }
        if let Some(f) = args.failures.iter().find(|f| !(0.0..=1.0).contains(*f)) {
            bail!("--failures: {f} is not a probability");
        }
        let topologies = args
            .topologies
            .iter()
            .map(|t| TopologySpec::parse(t))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let grid = Grid {
            strategies,
            nodes: args.nodes.clone(),
            sizes: args.sizes.clone(),
            links: args.links.clone(),
            topologies,
            failures: args.failures.clone(),
            seeds: args.seeds.clone(),
        };
        let dims = grid.dims();
        if dims.contains(&0) {
            bail!("every list of the grid needs at least one value");
        }
        let total = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        match total {
            Some(t) if t <= MAX_POINTS => Ok(grid),
            _ => bail!("the grid has more than {MAX_POINTS} points"),
        }
    }

    fn dims(&self) -> [usize; 7] {
        [
            self.strategies.len(),
            self.nodes.len(),
            self.sizes.len(),
            self.links.len(),
            self.topologies.len(),
            self.failures.len(),
            self.seeds.len(),
        ]
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.dims().iter().product()
    }

    /// Whether the grid is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `index` (< [`Grid::len`]).
    pub fn point(&self, index: usize) -> Point {
        let dims = self.dims();
        let mut digits = [0usize; 7];
        let mut rest = index;
        for k in (0..7).rev() {
            digits[k] = rest % dims[k];
            rest /= dims[k];
        }
        Point {
            index,
            strategy: self.strategies[digits[0]],
            nodes: self.nodes[digits[1]],
            size: self.sizes[digits[2]],
            link: self.links[digits[3]],
            topology: self.topologies[digits[4]].clone(),
            failure: self.failures[digits[5]],
            seed: self.seeds[digits[6]],
        }
    }

    /// The indices of shard `i` of `n` (those ≡ i mod n), or every index.
    pub fn indices(&self, shard: Option<(usize, usize)>) -> impl Iterator<Item = usize> {
        let (i, n) = shard.unwrap_or((0, 1));
        (i..self.len()).step_by(n.max(1))
    }
}

/// The command-line form of `args`' grid (for the Slurm script), every value written out.
pub fn grid_cli(args: &GridArgs) -> Vec<String> {
    let join = |v: Vec<String>| v.join(",");
    let strategies = args
        .strategies
        .iter()
        .map(|b| match b {
            BroadcastArg::Chain => "chain",
            BroadcastArg::Tree => "tree",
            BroadcastArg::FtChain => "ft-chain",
            BroadcastArg::Unicast => "unicast",
            BroadcastArg::Multicast => "multicast",
            BroadcastArg::Swarm => "swarm",
            BroadcastArg::Auto => "auto",
        })
        .map(String::from)
        .collect();
    let mut out = vec![
        "--strategies".into(),
        join(strategies),
        "--tree-arity".into(),
        args.tree_arity.to_string(),
        "--nodes".into(),
        join(args.nodes.iter().map(|n| n.to_string()).collect()),
        "--sizes".into(),
        join(args.sizes.iter().map(|n| n.to_string()).collect()),
        "--links".into(),
        join(args.links.iter().map(|n| n.to_string()).collect()),
        "--topologies".into(),
        join(args.topologies.clone()),
        "--failures".into(),
        join(args.failures.iter().map(|n| n.to_string()).collect()),
        "--seeds".into(),
        join(args.seeds.iter().map(|n| n.to_string()).collect()),
    ];
    if let Some(c) = args.chunk {
        out.push("--chunk".into());
        out.push(c.to_string());
    }
    if let Some(c) = &args.config {
        out.push("--config".into());
        let abs = std::path::absolute(c).unwrap_or_else(|_| c.clone());
        out.push(abs.display().to_string());
    }
    out
}
