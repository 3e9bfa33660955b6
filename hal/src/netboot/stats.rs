//! Request and error counters of the boot services of this process (DHCP, TFTP, HTTP), read by whoever
//! exposes metrics (`kadeploy3d`'s `/metrics` when the services run embedded).

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of one service.
#[derive(Debug)]
pub struct ServiceStats {
    requests: AtomicU64,
    errors: AtomicU64,
}

impl ServiceStats {
    /// Zeroed counters.
    pub const fn new() -> Self {
        ServiceStats {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Counts one request received.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request that failed or was refused (malformed, not found, busy, transfer error...).
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Errors so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

impl Default for ServiceStats {
    fn default() -> Self {
        ServiceStats::new()
    }
}

/// DHCP: datagrams received; errors are malformed datagrams and replies that could not be sent.
pub static DHCP: ServiceStats = ServiceStats::new();
/// TFTP: read requests; errors are malformed or refused requests and failed transfers.
pub static TFTP: ServiceStats = ServiceStats::new();
/// HTTP boot: requests; errors are answers with a 4xx or 5xx status.
pub static HTTP: ServiceStats = ServiceStats::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let s = ServiceStats::new();
        s.request();
        s.request();
        s.error();
        assert_eq!((s.requests(), s.errors()), (2, 1));
    }
}
