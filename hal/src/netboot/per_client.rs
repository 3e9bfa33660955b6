//! A cap on what one client address holds at once (TFTP transfers, HTTP connections), so a single
//! host cannot take every slot of a boot service. Entries exist only while a slot is held.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Slots held per client address, at most `max` each.
#[derive(Debug)]
pub struct PerClient {
    held: Mutex<BTreeMap<IpAddr, usize>>,
    max: usize,
}

/// One slot of one client, given back on drop.
#[derive(Debug)]
pub struct ClientSlot {
    table: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    /// A table allowing `max` slots per address (at least one).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerClient {
            held: Mutex::new(BTreeMap::new()),
            max: max.max(1),
        })
    }

    /// A slot for `ip`, or `None` when it already holds `max`.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: self.clone(),
            ip,
        })
    }

    /// Slots `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self
            .table
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_address_and_forgets_it_when_done() {
        let t = PerClient::new(2);
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let s1 = t.acquire(a).unwrap();
        let s2 = t.acquire(a).unwrap();
        assert!(t.acquire(a).is_none());
        let other = t.acquire(b).unwrap();
        drop(s1);
        assert_eq!(t.held(a), 1);
        let s3 = t.acquire(a).unwrap();
        drop((s2, s3, other));
        assert!(t.held.lock().unwrap().is_empty());
    }
}
