//! Addresses a client declined (RFC 2131 §4.3.3: another host answers ARP for them), kept out of
//! the pool for a while; bounded in size and time, since every entry comes from the network.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The declined pool addresses, each with the time it becomes usable again.
#[derive(Debug)]
pub struct Declined {
    until: BTreeMap<Ipv4Addr, u64>,
    capacity: usize,
}

impl Declined {
    /// An empty table holding at most `capacity` addresses (at least one).
    pub fn new(capacity: usize) -> Self {
        Declined {
            until: BTreeMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Keeps `ip` out of the pool until `until` (seconds since the epoch). When the table is full,
    /// expired entries go first, then the one that would expire soonest.
    pub fn insert(&mut self, ip: Ipv4Addr, until: u64, now: u64) {
        if !self.until.contains_key(&ip) && self.until.len() >= self.capacity {
            self.until.retain(|_, t| *t > now);
            if self.until.len() >= self.capacity
                && let Some(soonest) = self
                    .until
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(ip, _)| *ip)
            {
                self.until.remove(&soonest);
            }
        }
        self.until.insert(ip, until);
    }

    /// True while `ip` is held out of the pool.
    pub fn contains(&self, ip: Ipv4Addr, now: u64) -> bool {
        self.until.get(&ip).is_some_and(|t| *t > now)
    }

    /// Number of entries, expired ones included until they are purged.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x0a00_0000 + i)
    }

    #[test]
    fn entries_expire_and_the_table_stays_within_its_capacity() {
        let mut d = Declined::new(3);
        d.insert(ip(1), 100, 0);
        d.insert(ip(2), 50, 0);
        d.insert(ip(3), 200, 0);
        assert!(d.contains(ip(2), 49) && !d.contains(ip(2), 50));
        // Full: the soonest to expire (ip 2) makes room.
        d.insert(ip(4), 300, 10);
        assert_eq!(d.len(), 3);
        assert!(!d.contains(ip(2), 10) && d.contains(ip(1), 10) && d.contains(ip(4), 10));
        // Full again at t=150: the expired ip 1 goes, the live ones stay.
        d.insert(ip(5), 400, 150);
        assert_eq!(d.len(), 3);
        assert!(d.contains(ip(3), 150) && d.contains(ip(4), 150) && d.contains(ip(5), 150));
        // Renewing an entry does not evict another.
        d.insert(ip(5), 500, 150);
        assert_eq!(d.len(), 3);
        for i in 0..10_000 {
            d.insert(ip(100 + i), 1000, 150);
        }
        assert_eq!(d.len(), 3);
    }
}
