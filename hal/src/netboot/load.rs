//! Load generators for the boot services (`kanetload`), to compare them with dnsmasq and tftpd-hpa
//! under the same client load: DHCP exchanges per second and TFTP throughput, time-bounded; and
//! seeded mutations of real DHCP requests for robustness tests.

pub mod dhcp;
pub mod fuzz;
pub mod tftp;

use std::time::Duration;

/// A small deterministic PRNG (xorshift64*) for MACs and transaction ids: no dependency, seedable.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Converts a rate: `count` events in `elapsed`.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded_and_rates_handle_zero() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(Rng::new(0).next_u64(), 0);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
        assert_eq!(per_second(10, Duration::from_secs(2)), 5.0);
    }
}
