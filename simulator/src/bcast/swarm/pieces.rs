//! Piece sets and the random peer graph of the swarm model.

use crate::rng::Rng;
use std::collections::BTreeSet;

/// A set of pieces as 64-bit words.
#[derive(Clone, Debug)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    /// An empty set of `m` pieces.
    pub fn new(m: usize) -> Self {
        Bits(vec![0; m.div_ceil(64)])
    }

    /// The full set of `m` pieces.
    pub fn full(m: usize) -> Self {
        let mut b = Bits::new(m);
        for p in 0..m {
            b.set(p, true);
        }
        b
    }

    /// Whether `p` is in the set.
    pub fn get(&self, p: usize) -> bool {
        (self.0[p / 64] >> (p % 64)) & 1 == 1
    }

    /// Adds or removes `p`.
    pub fn set(&mut self, p: usize, v: bool) {
        if v {
            self.0[p / 64] |= 1 << (p % 64);
        } else {
            self.0[p / 64] &= !(1 << (p % 64));
        }
    }
}

/// A random symmetric peer graph: each node links to about `degree / 2` others, both ways.
pub(crate) fn peer_graph(n: usize, degree: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut peers: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    if n < 2 {
        return vec![Vec::new(); n];
    }
    let want = degree.div_ceil(2).clamp(1, n - 1);
    for i in 0..n {
        let mut rng = Rng::for_entity(seed, "swarm-peers", i as u64);
        for _ in 0..want {
            let j = (i + 1 + rng.below(n as u64 - 1) as usize) % n;
            peers[i].insert(j);
            peers[j].insert(i);
        }
    }
    peers.into_iter().map(|p| p.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_graph_is_symmetric_and_seeded() {
        let g = peer_graph(50, 8, 3);
        for (i, p) in g.iter().enumerate() {
            assert!(!p.contains(&i) && !p.is_empty());
            assert!(p.iter().all(|&j| g[j].contains(&i)));
        }
        assert_eq!(g, peer_graph(50, 8, 3));
        assert_ne!(g, peer_graph(50, 8, 4));
        let mut b = Bits::new(70);
        b.set(65, true);
        assert!(b.get(65) && !b.get(64));
        assert!((0..70).all(|p| Bits::full(70).get(p)));
    }
}
