//! The host's own speed through namespace hops without `tc` (an input of the simulator's CPU bound,
//! measured before each N of `measure::measure_testbed`).

use crate::netns::Testbed;
use crate::readings::{median_and_spread, meter_repeats};
use crate::testbed::make_image;
use crate::topology::Topology;

const MIB: u64 = 1 << 20;

/// The image size of the hop measurements, MiB.
const HOP_MIB: u64 = 64;

/// The host's aggregate speed through namespace hops without `tc`, bytes/s: as many concurrent
/// one-hop `socat` copies of a 64 MiB image as the host has cores, from the server to hosts on its
/// own switch, and (two-level) to hosts on leaf switches, each copy crossing one uplink. Each reads
/// [`meter_repeats`] times (`KABCAST_METER_REPEAT`, default 3) and the row takes the median, with
/// the readings' spread (until stop 16: the best of 5 readings, the least disturbed by the rest of
/// the machine; in a quiet window the median is what the runs after it meet). Every reading on
/// standard error. Measured again before each N, so that the figure follows the machine's load.
pub struct HopMeter {
    /// The host's cores: the concurrent copies.
    pub cores: usize,
    flat: (Testbed, std::path::PathBuf),
    uplink: Option<(Testbed, std::path::PathBuf)>,
    repeats: usize,
}

/// One hop meter reading of both beds: medians (bytes/s) and spreads (percent of the median).
#[derive(Clone, Copy, Debug)]
pub struct HopSpeeds {
    /// Plain hops: median bytes/s and spread.
    pub flat: (f64, f64),
    /// Hops across one uplink (the flat one's on the flat topology).
    pub uplink: (f64, f64),
}

impl HopMeter {
    /// Idle testbeds (no tc) for the measurements.
    pub fn new(topology: Topology) -> HopMeter {
        let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
        let bed = |topology: Topology| {
            let tb = Testbed::build(cores, 0, &[], topology);
            let (image, _) = make_image(&tb, HOP_MIB);
            (tb, image)
        };
        HopMeter {
            cores,
            flat: bed(Topology::Flat),
            uplink: match topology {
                Topology::Flat => None,
                Topology::TwoLevel { .. } => Some(bed(Topology::TwoLevel {
                    switches: cores as u32,
                    uplink_mbit: 0,
                })),
            },
            repeats: meter_repeats(),
        }
    }

    /// Plain hops and hops across one uplink.
    pub fn measure(&self) -> HopSpeeds {
        let speed = |(tb, image): &(Testbed, std::path::PathBuf)| {
            let readings: Vec<f64> = (0..self.repeats)
                .map(|_| {
                    let t = tb.parallel_hops(image, self.cores).as_secs_f64();
                    (self.cores as u64 * HOP_MIB * MIB) as f64 / t
                })
                .collect();
            let mbit: Vec<String> = readings
                .iter()
                .map(|r| format!("{:.0}", r * 8e-6))
                .collect();
            eprintln!("hop meter ({:?}): {} Mbit/s", tb.topology, mbit.join(" "));
            median_and_spread(&readings)
        };
        let flat = speed(&self.flat);
        HopSpeeds {
            flat,
            uplink: self.uplink.as_ref().map_or(flat, speed),
        }
    }
}
