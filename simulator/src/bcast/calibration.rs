//! Calibration of the broadcast models against the namespace testbed of `hal`
//! (`scripts/bcast-testbed.sh`: kaagent agents, udpcast and socat in network namespaces, tc-limited
//! veth links, flat or two-level, receivers writing to tmpfs, 2 cores shared with other builds): every
//! measured row, predicted by [`predict`](super::testbed::predict) from the testbed's parameters
//! and the host speed the script measured before the runs (nothing fitted), must be within 10%,
//! except the misses listed in [`MISSES`] with the bound they are held to and why.
//!
//! The rows are the script's output (columns `topology,switches,uplink_mbit,mbit,mib,n,strategy,
//! seconds,hop_mbit,uplink_hop_mbit`): development runs on 2026-12-05 17:15–17:46 at load 5–17
//! ([`RATE_200_64MIB`], [`GIGABIT_128MIB`]), and the quiet-window run of 18:15–18:29 (stop 13's
//! table in docs/PERFORMANCE.md: [`QUIET_200_64MIB`], [`QUIET_GIGABIT_256MIB`]). None of them has
//! the tool columns (the host's speed through multicast, udpcast and the plain chain measured before
//! each N): those tools are predicted from the TCP hop speed here, as `kasim testbed` does for an
//! old CSV.

use super::testbed::predict;
use crate::kasim::testbed::parse_row;

/// The columns of the tables below.
const HEADER: &str =
    "topology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,hop_mbit,uplink_hop_mbit";

/// 200 Mbit/s, 64 MiB, N = 2, 4, 8, 16 (flat N = 16 left out: the host's speed was measured during a
/// burst of other builds, 1,350 Mbit/s against 3,946 for the two-level run).
const RATE_200_64MIB: &str = "\
flat,1,0,200,64,2,plain-socat-chain,2.832,1350,1350\n\
flat,1,0,200,64,2,udpcast,2.795,1350,1350\n\
flat,1,0,200,64,2,chain,2.830,1350,1350\n\
flat,1,0,200,64,2,ft-chain,2.816,1350,1350\n\
flat,1,0,200,64,2,tree,5.612,1350,1350\n\
flat,1,0,200,64,2,multicast,2.916,1350,1350\n\
flat,1,0,200,64,2,swarm,3.556,1350,1350\n\
flat,1,0,200,64,4,plain-socat-chain,2.856,1350,1350\n\
flat,1,0,200,64,4,udpcast,2.799,1350,1350\n\
flat,1,0,200,64,4,chain,2.836,1350,1350\n\
flat,1,0,200,64,4,ft-chain,2.837,1350,1350\n\
flat,1,0,200,64,4,tree,6.012,1350,1350\n\
flat,1,0,200,64,4,multicast,2.981,1350,1350\n\
flat,1,0,200,64,4,swarm,4.404,1350,1350\n\
flat,1,0,200,64,8,plain-socat-chain,2.873,1350,1350\n\
flat,1,0,200,64,8,udpcast,2.826,1350,1350\n\
flat,1,0,200,64,8,chain,2.830,1350,1350\n\
flat,1,0,200,64,8,ft-chain,2.876,1350,1350\n\
flat,1,0,200,64,8,tree,5.675,1350,1350\n\
flat,1,0,200,64,8,multicast,2.992,1350,1350\n\
flat,1,0,200,64,8,swarm,6.364,1350,1350\n\
two-level,2,200,200,64,2,plain-socat-chain,2.820,3946,4279\n\
two-level,2,200,200,64,2,udpcast,2.806,3946,4279\n\
two-level,2,200,200,64,2,chain,2.830,3946,4279\n\
two-level,2,200,200,64,2,chain-oblivious,2.817,3946,4279\n\
two-level,2,200,200,64,2,ft-chain,2.827,3946,4279\n\
two-level,2,200,200,64,2,tree,5.611,3946,4279\n\
two-level,2,200,200,64,2,multicast,2.888,3946,4279\n\
two-level,2,200,200,64,2,swarm,3.517,3946,4279\n\
two-level,2,200,200,64,4,plain-socat-chain,2.848,3946,4279\n\
two-level,2,200,200,64,4,udpcast,2.850,3946,4279\n\
two-level,2,200,200,64,4,chain,2.862,3946,4279\n\
two-level,2,200,200,64,4,chain-oblivious,5.674,3946,4279\n\
two-level,2,200,200,64,4,ft-chain,2.928,3946,4279\n\
two-level,2,200,200,64,4,tree,6.090,3946,4279\n\
two-level,2,200,200,64,4,multicast,2.816,3946,4279\n\
two-level,2,200,200,64,4,swarm,4.918,3946,4279\n\
two-level,2,200,200,64,8,plain-socat-chain,3.119,3946,4279\n\
two-level,2,200,200,64,8,udpcast,2.920,3946,4279\n\
two-level,2,200,200,64,8,chain,2.878,3946,4279\n\
two-level,2,200,200,64,8,chain-oblivious,11.786,3946,4279\n\
two-level,2,200,200,64,8,ft-chain,2.943,3946,4279\n\
two-level,2,200,200,64,8,tree,11.238,3946,4279\n\
two-level,2,200,200,64,8,multicast,2.902,3946,4279\n\
two-level,2,200,200,64,8,swarm,6.906,3946,4279\n\
two-level,2,200,200,64,16,plain-socat-chain,3.197,3946,4279\n\
two-level,2,200,200,64,16,udpcast,3.389,3946,4279\n\
two-level,2,200,200,64,16,chain,2.895,3946,4279\n\
two-level,2,200,200,64,16,chain-oblivious,23.027,3946,4279\n\
two-level,2,200,200,64,16,ft-chain,2.997,3946,4279\n\
two-level,2,200,200,64,16,tree,22.474,3946,4279\n\
two-level,2,200,200,64,16,multicast,4.345,3946,4279\n\
two-level,2,200,200,64,16,swarm,10.147,3946,4279\n\
";

/// 1 Gbit/s, 128 MiB, N = 2, 4, 8, 16.
const GIGABIT_128MIB: &str = "\
flat,1,0,1000,128,2,plain-socat-chain,1.146,6239,6239\n\
flat,1,0,1000,128,2,udpcast,2.136,6239,6239\n\
flat,1,0,1000,128,2,chain,1.142,6239,6239\n\
flat,1,0,1000,128,2,ft-chain,1.141,6239,6239\n\
flat,1,0,1000,128,2,tree,2.266,6239,6239\n\
flat,1,0,1000,128,2,multicast,1.916,6239,6239\n\
flat,1,0,1000,128,2,swarm,1.387,6239,6239\n\
flat,1,0,1000,128,4,plain-socat-chain,1.335,6239,6239\n\
flat,1,0,1000,128,4,udpcast,2.860,6239,6239\n\
flat,1,0,1000,128,4,chain,1.140,6239,6239\n\
flat,1,0,1000,128,4,ft-chain,1.148,6239,6239\n\
flat,1,0,1000,128,4,tree,2.287,6239,6239\n\
flat,1,0,1000,128,4,multicast,2.614,6239,6239\n\
flat,1,0,1000,128,4,swarm,1.760,6239,6239\n\
flat,1,0,1000,128,8,plain-socat-chain,2.819,6239,6239\n\
flat,1,0,1000,128,8,udpcast,4.173,6239,6239\n\
flat,1,0,1000,128,8,chain,1.723,6239,6239\n\
flat,1,0,1000,128,8,ft-chain,1.650,6239,6239\n\
flat,1,0,1000,128,8,tree,2.278,6239,6239\n\
flat,1,0,1000,128,8,multicast,5.424,6239,6239\n\
flat,1,0,1000,128,8,swarm,2.347,6239,6239\n\
flat,1,0,1000,128,16,plain-socat-chain,9.071,6239,6239\n\
flat,1,0,1000,128,16,udpcast,6.060,6239,6239\n\
flat,1,0,1000,128,16,chain,3.191,6239,6239\n\
flat,1,0,1000,128,16,ft-chain,2.721,6239,6239\n\
flat,1,0,1000,128,16,tree,2.980,6239,6239\n\
flat,1,0,1000,128,16,multicast,8.289,6239,6239\n\
flat,1,0,1000,128,16,swarm,3.920,6239,6239\n\
two-level,2,1000,1000,128,2,plain-socat-chain,1.151,4466,3086\n\
two-level,2,1000,1000,128,2,udpcast,2.615,4466,3086\n\
two-level,2,1000,1000,128,2,chain,1.144,4466,3086\n\
two-level,2,1000,1000,128,2,chain-oblivious,1.141,4466,3086\n\
two-level,2,1000,1000,128,2,ft-chain,1.134,4466,3086\n\
two-level,2,1000,1000,128,2,tree,2.248,4466,3086\n\
two-level,2,1000,1000,128,2,multicast,2.332,4466,3086\n\
two-level,2,1000,1000,128,2,swarm,1.408,4466,3086\n\
two-level,2,1000,1000,128,4,plain-socat-chain,1.412,4466,3086\n\
two-level,2,1000,1000,128,4,udpcast,3.366,4466,3086\n\
two-level,2,1000,1000,128,4,chain,1.145,4466,3086\n\
two-level,2,1000,1000,128,4,chain-oblivious,2.263,4466,3086\n\
two-level,2,1000,1000,128,4,ft-chain,1.155,4466,3086\n\
two-level,2,1000,1000,128,4,tree,2.287,4466,3086\n\
two-level,2,1000,1000,128,4,multicast,4.372,4466,3086\n\
two-level,2,1000,1000,128,4,swarm,1.869,4466,3086\n\
two-level,2,1000,1000,128,8,plain-socat-chain,2.720,4466,3086\n\
two-level,2,1000,1000,128,8,udpcast,3.199,4466,3086\n\
two-level,2,1000,1000,128,8,chain,1.539,4466,3086\n\
two-level,2,1000,1000,128,8,chain-oblivious,4.523,4466,3086\n\
two-level,2,1000,1000,128,8,ft-chain,1.556,4466,3086\n\
two-level,2,1000,1000,128,8,tree,4.504,4466,3086\n\
two-level,2,1000,1000,128,8,multicast,3.485,4466,3086\n\
two-level,2,1000,1000,128,8,swarm,2.492,4466,3086\n\
two-level,2,1000,1000,128,16,plain-socat-chain,6.246,4466,3086\n\
two-level,2,1000,1000,128,16,udpcast,7.062,4466,3086\n\
two-level,2,1000,1000,128,16,chain,2.590,4466,3086\n\
two-level,2,1000,1000,128,16,chain-oblivious,9.116,4466,3086\n\
two-level,2,1000,1000,128,16,ft-chain,3.299,4466,3086\n\
two-level,2,1000,1000,128,16,tree,9.000,4466,3086\n\
two-level,2,1000,1000,128,16,multicast,7.946,4466,3086\n\
two-level,2,1000,1000,128,16,swarm,3.556,4466,3086\n\
";

/// A row the models miss by more than 10%: `(topology, mbit, n, strategy, bound)`, the bound a
/// little above the recorded run's error.
type Miss = (&'static str, u32, usize, &'static str, f64);

/// The development runs' misses, and why:
/// * multicast and udpcast at 1 Gbit/s, and at 200 Mbit/s with 16 receivers: the tools' own cost
///   (per datagram: the bridge copies each to every receiver, each receiver's stack takes it alone)
///   is not the TCP hop speed these rows are predicted from (no tool columns then);
/// * the plain chain past N = 2 at 1 Gbit/s: each node's `tee` copies every byte through two pipes
///   more than the measured one-hop copy (no tool columns then);
/// * kaagent's chains at 1 Gbit/s from N = 4 on, the 200 Mbit/s flat N = 8 rows, the two-level
///   N = 16 plain chain and udpcast at 200 Mbit/s: the CPU
///   bound comes from a hop speed measured once per N on a machine whose other load (5–17) came and
///   went (1,350 Mbit/s at 200 Mbit/s flat, a burst of other builds);
/// * the two-level swarm at 1 Gbit/s, N = 16 (+33%): its CPU bound, from the hop speed measured
///   under that load (3,086 Mbit/s across an uplink).
const DEV_MISSES: &[Miss] = &[
    ("flat", 200, 8, "plain-socat-chain", 0.15),
    ("flat", 200, 8, "udpcast", 0.15),
    ("flat", 200, 8, "chain", 0.15),
    ("flat", 200, 8, "ft-chain", 0.15),
    ("two-level", 200, 16, "plain-socat-chain", 0.15),
    ("two-level", 200, 16, "udpcast", 0.2),
    ("two-level", 200, 16, "multicast", 0.4),
    ("flat", 1000, 2, "udpcast", 0.5),
    ("flat", 1000, 2, "multicast", 0.45),
    ("flat", 1000, 4, "plain-socat-chain", 0.2),
    ("flat", 1000, 4, "udpcast", 0.65),
    ("flat", 1000, 4, "multicast", 0.6),
    ("flat", 1000, 8, "plain-socat-chain", 0.55),
    ("flat", 1000, 8, "udpcast", 0.7),
    ("flat", 1000, 8, "chain", 0.25),
    ("flat", 1000, 8, "ft-chain", 0.2),
    ("flat", 1000, 8, "multicast", 0.75),
    ("flat", 1000, 16, "plain-socat-chain", 0.7),
    ("flat", 1000, 16, "udpcast", 0.55),
    ("flat", 1000, 16, "chain", 0.15),
    ("flat", 1000, 16, "multicast", 0.7),
    ("two-level", 1000, 2, "udpcast", 0.6),
    ("two-level", 1000, 2, "multicast", 0.55),
    ("two-level", 1000, 4, "udpcast", 0.7),
    ("two-level", 1000, 4, "chain", 0.15),
    ("two-level", 1000, 4, "ft-chain", 0.15),
    ("two-level", 1000, 4, "multicast", 0.75),
    ("two-level", 1000, 8, "plain-socat-chain", 0.2),
    ("two-level", 1000, 8, "udpcast", 0.35),
    ("two-level", 1000, 8, "chain", 0.5),
    ("two-level", 1000, 8, "ft-chain", 0.45),
    ("two-level", 1000, 8, "multicast", 0.4),
    ("two-level", 1000, 16, "plain-socat-chain", 0.35),
    ("two-level", 1000, 16, "udpcast", 0.45),
    ("two-level", 1000, 16, "chain", 0.65),
    ("two-level", 1000, 16, "ft-chain", 0.3),
    ("two-level", 1000, 16, "multicast", 0.5),
    ("two-level", 1000, 16, "swarm", 0.35),
];

/// Stop 13's quiet-window run (200 Mbit/s, 64 MiB; N = 2, 4, 8, 16; both topologies; load
/// 0.2–2), as in docs/PERFORMANCE.md.
const QUIET_200_64MIB: &str = "\
flat,1,0,200,64,2,plain-socat-chain,2.81,6647,6647\n\
flat,1,0,200,64,2,udpcast,2.80,6647,6647\n\
flat,1,0,200,64,2,chain,2.81,6647,6647\n\
flat,1,0,200,64,2,ft-chain,2.82,6647,6647\n\
flat,1,0,200,64,2,tree,5.61,6647,6647\n\
flat,1,0,200,64,2,multicast,2.82,6647,6647\n\
flat,1,0,200,64,2,swarm,3.47,6647,6647\n\
flat,1,0,200,64,4,plain-socat-chain,2.83,6860,6860\n\
flat,1,0,200,64,4,udpcast,2.80,6860,6860\n\
flat,1,0,200,64,4,chain,2.82,6860,6860\n\
flat,1,0,200,64,4,ft-chain,2.83,6860,6860\n\
flat,1,0,200,64,4,tree,5.79,6860,6860\n\
flat,1,0,200,64,4,multicast,2.81,6860,6860\n\
flat,1,0,200,64,4,swarm,4.57,6860,6860\n\
flat,1,0,200,64,8,plain-socat-chain,2.85,6730,6730\n\
flat,1,0,200,64,8,udpcast,2.89,6730,6730\n\
flat,1,0,200,64,8,chain,2.85,6730,6730\n\
flat,1,0,200,64,8,ft-chain,2.85,6730,6730\n\
flat,1,0,200,64,8,tree,5.66,6730,6730\n\
flat,1,0,200,64,8,multicast,2.82,6730,6730\n\
flat,1,0,200,64,8,swarm,6.55,6730,6730\n\
flat,1,0,200,64,16,plain-socat-chain,2.90,6966,6966\n\
flat,1,0,200,64,16,udpcast,3.00,6966,6966\n\
flat,1,0,200,64,16,chain,2.94,6966,6966\n\
flat,1,0,200,64,16,ft-chain,2.95,6966,6966\n\
flat,1,0,200,64,16,tree,5.66,6966,6966\n\
flat,1,0,200,64,16,multicast,3.47,6966,6966\n\
flat,1,0,200,64,16,swarm,9.07,6966,6966\n\
two-level,2,200,200,64,2,plain-socat-chain,2.82,6754,6993\n\
two-level,2,200,200,64,2,udpcast,2.80,6754,6993\n\
two-level,2,200,200,64,2,chain,2.82,6754,6993\n\
two-level,2,200,200,64,2,chain-oblivious,2.81,6754,6993\n\
two-level,2,200,200,64,2,ft-chain,2.82,6754,6993\n\
two-level,2,200,200,64,2,tree,5.61,6754,6993\n\
two-level,2,200,200,64,2,multicast,2.81,6754,6993\n\
two-level,2,200,200,64,2,swarm,3.56,6754,6993\n\
two-level,2,200,200,64,4,plain-socat-chain,2.84,6435,6660\n\
two-level,2,200,200,64,4,udpcast,2.85,6435,6660\n\
two-level,2,200,200,64,4,chain,2.87,6435,6660\n\
two-level,2,200,200,64,4,chain-oblivious,5.69,6435,6660\n\
two-level,2,200,200,64,4,ft-chain,2.83,6435,6660\n\
two-level,2,200,200,64,4,tree,5.92,6435,6660\n\
two-level,2,200,200,64,4,multicast,2.81,6435,6660\n\
two-level,2,200,200,64,4,swarm,5.06,6435,6660\n\
two-level,2,200,200,64,8,plain-socat-chain,2.84,6865,6812\n\
two-level,2,200,200,64,8,udpcast,2.96,6865,6812\n\
two-level,2,200,200,64,8,chain,2.86,6865,6812\n\
two-level,2,200,200,64,8,chain-oblivious,12.00,6865,6812\n\
two-level,2,200,200,64,8,ft-chain,2.85,6865,6812\n\
two-level,2,200,200,64,8,tree,11.24,6865,6812\n\
two-level,2,200,200,64,8,multicast,2.82,6865,6812\n\
two-level,2,200,200,64,8,swarm,6.75,6865,6812\n\
two-level,2,200,200,64,16,plain-socat-chain,2.91,6845,7069\n\
two-level,2,200,200,64,16,udpcast,3.08,6845,7069\n\
two-level,2,200,200,64,16,chain,3.00,6845,7069\n\
two-level,2,200,200,64,16,chain-oblivious,23.04,6845,7069\n\
two-level,2,200,200,64,16,ft-chain,2.94,6845,7069\n\
two-level,2,200,200,64,16,tree,22.49,6845,7069\n\
two-level,2,200,200,64,16,multicast,3.51,6845,7069\n\
two-level,2,200,200,64,16,swarm,10.15,6845,7069\n";

/// Stop 13's quiet-window run (1 Gbit/s, 256 MiB; load 1–14, another helper's lab starting).
const QUIET_GIGABIT_256MIB: &str = "\
flat,1,0,1000,256,2,plain-socat-chain,2.27,7195,7195\n\
flat,1,0,1000,256,2,udpcast,2.80,7195,7195\n\
flat,1,0,1000,256,2,chain,2.28,7195,7195\n\
flat,1,0,1000,256,2,ft-chain,2.27,7195,7195\n\
flat,1,0,1000,256,2,tree,4.54,7195,7195\n\
flat,1,0,1000,256,2,multicast,2.86,7195,7195\n\
flat,1,0,1000,256,2,swarm,2.85,7195,7195\n\
flat,1,0,1000,256,4,plain-socat-chain,2.32,7046,7046\n\
flat,1,0,1000,256,4,udpcast,4.18,7046,7046\n\
flat,1,0,1000,256,4,chain,2.30,7046,7046\n\
flat,1,0,1000,256,4,ft-chain,2.30,7046,7046\n\
flat,1,0,1000,256,4,tree,4.57,7046,7046\n\
flat,1,0,1000,256,4,multicast,4.46,7046,7046\n\
flat,1,0,1000,256,4,swarm,3.46,7046,7046\n\
flat,1,0,1000,256,8,plain-socat-chain,4.40,7072,7072\n\
flat,1,0,1000,256,8,udpcast,7.10,7072,7072\n\
flat,1,0,1000,256,8,chain,2.56,7072,7072\n\
flat,1,0,1000,256,8,ft-chain,2.59,7072,7072\n\
flat,1,0,1000,256,8,tree,4.55,7072,7072\n\
flat,1,0,1000,256,8,multicast,7.24,7072,7072\n\
flat,1,0,1000,256,8,swarm,4.86,7072,7072\n\
flat,1,0,1000,256,16,plain-socat-chain,10.65,7155,7155\n\
flat,1,0,1000,256,16,udpcast,12.39,7155,7155\n\
flat,1,0,1000,256,16,chain,4.61,7155,7155\n\
flat,1,0,1000,256,16,ft-chain,4.39,7155,7155\n\
flat,1,0,1000,256,16,tree,4.83,7155,7155\n\
flat,1,0,1000,256,16,multicast,13.35,7155,7155\n\
flat,1,0,1000,256,16,swarm,7.14,7155,7155\n\
two-level,2,1000,1000,256,2,plain-socat-chain,2.28,6982,7046\n\
two-level,2,1000,1000,256,2,udpcast,3.35,6982,7046\n\
two-level,2,1000,1000,256,2,chain,2.28,6982,7046\n\
two-level,2,1000,1000,256,2,chain-oblivious,2.30,6982,7046\n\
two-level,2,1000,1000,256,2,ft-chain,2.30,6982,7046\n\
two-level,2,1000,1000,256,2,tree,4.53,6982,7046\n\
two-level,2,1000,1000,256,2,multicast,3.38,6982,7046\n\
two-level,2,1000,1000,256,2,swarm,2.74,6982,7046\n\
two-level,2,1000,1000,256,4,plain-socat-chain,2.38,6751,6607\n\
two-level,2,1000,1000,256,4,udpcast,4.69,6751,6607\n\
two-level,2,1000,1000,256,4,chain,2.28,6751,6607\n\
two-level,2,1000,1000,256,4,chain-oblivious,4.60,6751,6607\n\
two-level,2,1000,1000,256,4,ft-chain,2.30,6751,6607\n\
two-level,2,1000,1000,256,4,tree,4.54,6751,6607\n\
two-level,2,1000,1000,256,4,multicast,4.85,6751,6607\n\
two-level,2,1000,1000,256,4,swarm,3.69,6751,6607\n\
two-level,2,1000,1000,256,8,plain-socat-chain,4.13,7207,7340\n\
two-level,2,1000,1000,256,8,udpcast,7.15,7207,7340\n\
two-level,2,1000,1000,256,8,chain,2.48,7207,7340\n\
two-level,2,1000,1000,256,8,chain-oblivious,9.05,7207,7340\n\
two-level,2,1000,1000,256,8,ft-chain,2.40,7207,7340\n\
two-level,2,1000,1000,256,8,tree,9.05,7207,7340\n\
two-level,2,1000,1000,256,8,multicast,7.63,7207,7340\n\
two-level,2,1000,1000,256,8,swarm,5.05,7207,7340\n\
two-level,2,1000,1000,256,16,plain-socat-chain,11.45,6888,7182\n\
two-level,2,1000,1000,256,16,udpcast,12.52,6888,7182\n\
two-level,2,1000,1000,256,16,chain,4.46,6888,7182\n\
two-level,2,1000,1000,256,16,chain-oblivious,18.29,6888,7182\n\
two-level,2,1000,1000,256,16,ft-chain,4.37,6888,7182\n\
two-level,2,1000,1000,256,16,tree,18.16,6888,7182\n\
two-level,2,1000,1000,256,16,multicast,13.91,6888,7182\n\
two-level,2,1000,1000,256,16,swarm,7.16,6888,7182\n";

/// The quiet run's misses, and why:
/// * multicast and udpcast at 1 Gbit/s, and multicast at 200 Mbit/s with 16 receivers: the tools'
///   own cost (no tool columns in this run: predicted from the TCP hop speed);
/// * the plain chain at 1 Gbit/s past N = 4: `tee`'s two extra pipe copies per node (the same);
/// * kaagent's chain and fault-tolerant chain at 1 Gbit/s, two-level N = 16 (+12%, +14%): the CPU
///   bound (16 hops at the measured hop speed, three uplink traversals at the uplink surcharge) is
///   above the runs; the hop meter's `socat` copies cost the host more per byte than kaagent's
///   hops did (cause not isolated);
/// * the flat swarm at 200 Mbit/s, N = 16 (+10.2%): the ring swarm model, slower than kaagent's
///   there (its flows share the links max-min at once, announcements take no time; which of these
///   idealisations costs the 10% is not isolated).
const QUIET_MISSES: &[Miss] = &[
    ("flat", 200, 16, "multicast", 0.2),
    ("flat", 200, 16, "swarm", 0.15),
    ("two-level", 200, 16, "multicast", 0.2),
    ("flat", 1000, 2, "udpcast", 0.25),
    ("flat", 1000, 2, "multicast", 0.25),
    ("flat", 1000, 4, "udpcast", 0.5),
    ("flat", 1000, 4, "multicast", 0.5),
    ("flat", 1000, 8, "plain-socat-chain", 0.45),
    ("flat", 1000, 8, "udpcast", 0.7),
    ("flat", 1000, 8, "multicast", 0.7),
    ("flat", 1000, 16, "plain-socat-chain", 0.55),
    ("flat", 1000, 16, "udpcast", 0.65),
    ("flat", 1000, 16, "multicast", 0.65),
    ("two-level", 1000, 2, "udpcast", 0.35),
    ("two-level", 1000, 2, "multicast", 0.35),
    ("two-level", 1000, 4, "udpcast", 0.55),
    ("two-level", 1000, 4, "multicast", 0.55),
    ("two-level", 1000, 8, "plain-socat-chain", 0.45),
    ("two-level", 1000, 8, "udpcast", 0.7),
    ("two-level", 1000, 8, "multicast", 0.7),
    ("two-level", 1000, 16, "plain-socat-chain", 0.6),
    ("two-level", 1000, 16, "udpcast", 0.65),
    ("two-level", 1000, 16, "chain", 0.15),
    ("two-level", 1000, 16, "ft-chain", 0.15),
    ("two-level", 1000, 16, "multicast", 0.65),
];

/// This stop's quiet-window run, 200 Mbit/s, 64 MiB (with the tool columns).
const FINAL_200_MBIT: &str = "\
topology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,hop_mbit,uplink_hop_mbit,meter_mbit,meter_small,meter_large,plain_small_mbit,plain_large_mbit,udpcast_small_mbit,udpcast_large_mbit,mcast_small_mbit,mcast_large_mbit\n\
flat,1,0,200,64,2,plain-socat-chain,2.818,6915,6915,10000,2,8,3790,3429,1887,2878,6022,7929\n\
flat,1,0,200,64,2,udpcast,2.819,6915,6915,10000,2,8,3790,3429,1887,2878,6022,7929\n\
flat,1,0,200,64,2,chain,2.813,6915,6915,10000,2,8,3790,3429,1887,2878,6022,7929\n\
flat,1,0,200,64,2,ft-chain,2.828,6915,6915,10000,2,8,3790,3429,1887,2878,6022,7929\n\
flat,1,0,200,64,2,tree,5.611,6915,6915,10000,2,8,3790,3429,1887,2878,6022,7929\n\
flat,1,0,200,64,2,multicast,2.814,6915,6915,10000,2,8,3790,3429,1887,2878,6022,7929\n\
flat,1,0,200,64,2,swarm,3.609,6915,6915,10000,2,8,3790,3429,1887,2878,6022,7929\n\
flat,1,0,200,64,4,plain-socat-chain,2.835,7480,7480,10000,2,8,3475,2854,1747,2671,5846,8335\n\
flat,1,0,200,64,4,udpcast,2.803,7480,7480,10000,2,8,3475,2854,1747,2671,5846,8335\n\
flat,1,0,200,64,4,chain,2.876,7480,7480,10000,2,8,3475,2854,1747,2671,5846,8335\n\
flat,1,0,200,64,4,ft-chain,2.840,7480,7480,10000,2,8,3475,2854,1747,2671,5846,8335\n\
flat,1,0,200,64,4,tree,5.793,7480,7480,10000,2,8,3475,2854,1747,2671,5846,8335\n\
flat,1,0,200,64,4,multicast,2.814,7480,7480,10000,2,8,3475,2854,1747,2671,5846,8335\n\
flat,1,0,200,64,4,swarm,4.459,7480,7480,10000,2,8,3475,2854,1747,2671,5846,8335\n\
flat,1,0,200,64,8,plain-socat-chain,2.856,7147,7147,10000,2,8,3345,3384,1844,3009,5636,8347\n\
flat,1,0,200,64,8,udpcast,2.903,7147,7147,10000,2,8,3345,3384,1844,3009,5636,8347\n\
flat,1,0,200,64,8,chain,2.967,7147,7147,10000,2,8,3345,3384,1844,3009,5636,8347\n\
flat,1,0,200,64,8,ft-chain,2.914,7147,7147,10000,2,8,3345,3384,1844,3009,5636,8347\n\
flat,1,0,200,64,8,tree,5.756,7147,7147,10000,2,8,3345,3384,1844,3009,5636,8347\n\
flat,1,0,200,64,8,multicast,2.815,7147,7147,10000,2,8,3345,3384,1844,3009,5636,8347\n\
flat,1,0,200,64,8,swarm,6.029,7147,7147,10000,2,8,3345,3384,1844,3009,5636,8347\n\
flat,1,0,200,64,16,plain-socat-chain,2.942,6276,6276,10000,2,8,3385,2960,1863,2527,5217,7398\n\
flat,1,0,200,64,16,udpcast,3.128,6276,6276,10000,2,8,3385,2960,1863,2527,5217,7398\n\
flat,1,0,200,64,16,chain,2.958,6276,6276,10000,2,8,3385,2960,1863,2527,5217,7398\n\
flat,1,0,200,64,16,ft-chain,3.025,6276,6276,10000,2,8,3385,2960,1863,2527,5217,7398\n\
flat,1,0,200,64,16,tree,5.689,6276,6276,10000,2,8,3385,2960,1863,2527,5217,7398\n\
flat,1,0,200,64,16,multicast,2.822,6276,6276,10000,2,8,3385,2960,1863,2527,5217,7398\n\
two-level,2,200,200,64,2,plain-socat-chain,2.818,6523,6705,10000,2,8,3445,3203,2230,3298,5697,8595\n\
two-level,2,200,200,64,2,udpcast,2.809,6523,6705,10000,2,8,3445,3203,2230,3298,5697,8595\n\
two-level,2,200,200,64,2,chain,2.813,6523,6705,10000,2,8,3445,3203,2230,3298,5697,8595\n\
two-level,2,200,200,64,2,chain-oblivious,2.819,6523,6705,10000,2,8,3445,3203,2230,3298,5697,8595\n\
two-level,2,200,200,64,2,ft-chain,2.820,6523,6705,10000,2,8,3445,3203,2230,3298,5697,8595\n\
two-level,2,200,200,64,2,tree,5.613,6523,6705,10000,2,8,3445,3203,2230,3298,5697,8595\n\
two-level,2,200,200,64,2,multicast,2.813,6523,6705,10000,2,8,3445,3203,2230,3298,5697,8595\n\
two-level,2,200,200,64,2,swarm,3.299,6523,6705,10000,2,8,3445,3203,2230,3298,5697,8595\n\
two-level,2,200,200,64,4,plain-socat-chain,2.825,6728,7035,10000,2,8,3005,3296,1806,2775,6087,8154\n\
two-level,2,200,200,64,4,udpcast,2.826,6728,7035,10000,2,8,3005,3296,1806,2775,6087,8154\n\
two-level,2,200,200,64,4,chain,2.826,6728,7035,10000,2,8,3005,3296,1806,2775,6087,8154\n\
two-level,2,200,200,64,4,chain-oblivious,5.658,6728,7035,10000,2,8,3005,3296,1806,2775,6087,8154\n\
two-level,2,200,200,64,4,ft-chain,2.849,6728,7035,10000,2,8,3005,3296,1806,2775,6087,8154\n\
two-level,2,200,200,64,4,tree,5.852,6728,7035,10000,2,8,3005,3296,1806,2775,6087,8154\n\
two-level,2,200,200,64,4,multicast,2.816,6728,7035,10000,2,8,3005,3296,1806,2775,6087,8154\n\
two-level,2,200,200,64,4,swarm,5.096,6728,7035,10000,2,8,3005,3296,1806,2775,6087,8154\n\
two-level,2,200,200,64,8,plain-socat-chain,2.847,6638,6808,10000,2,8,3338,3252,2061,2990,5549,8134\n\
two-level,2,200,200,64,8,udpcast,2.919,6638,6808,10000,2,8,3338,3252,2061,2990,5549,8134\n\
two-level,2,200,200,64,8,chain,2.925,6638,6808,10000,2,8,3338,3252,2061,2990,5549,8134\n\
two-level,2,200,200,64,8,chain-oblivious,11.779,6638,6808,10000,2,8,3338,3252,2061,2990,5549,8134\n\
two-level,2,200,200,64,8,ft-chain,2.886,6638,6808,10000,2,8,3338,3252,2061,2990,5549,8134\n\
two-level,2,200,200,64,8,tree,11.247,6638,6808,10000,2,8,3338,3252,2061,2990,5549,8134\n\
two-level,2,200,200,64,8,multicast,2.818,6638,6808,10000,2,8,3338,3252,2061,2990,5549,8134\n\
two-level,2,200,200,64,8,swarm,6.533,6638,6808,10000,2,8,3338,3252,2061,2990,5549,8134\n\
two-level,2,200,200,64,16,plain-socat-chain,2.934,6992,7007,10000,2,8,2890,3081,1937,2851,5493,8140\n\
two-level,2,200,200,64,16,udpcast,3.157,6992,7007,10000,2,8,2890,3081,1937,2851,5493,8140\n\
two-level,2,200,200,64,16,chain,3.027,6992,7007,10000,2,8,2890,3081,1937,2851,5493,8140\n\
two-level,2,200,200,64,16,chain-oblivious,22.870,6992,7007,10000,2,8,2890,3081,1937,2851,5493,8140\n\
two-level,2,200,200,64,16,ft-chain,2.900,6992,7007,10000,2,8,2890,3081,1937,2851,5493,8140\n\
two-level,2,200,200,64,16,tree,22.483,6992,7007,10000,2,8,2890,3081,1937,2851,5493,8140\n\
two-level,2,200,200,64,16,multicast,2.829,6992,7007,10000,2,8,2890,3081,1937,2851,5493,8140\n\
two-level,2,200,200,64,16,swarm,9.704,6992,7007,10000,2,8,2890,3081,1937,2851,5493,8140\n\
";

/// This stop's quiet-window run, 1 Gbit/s, 256 MiB (with the tool columns).
const FINAL_GIGABIT: &str = "\
topology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,hop_mbit,uplink_hop_mbit,meter_mbit,meter_small,meter_large,plain_small_mbit,plain_large_mbit,udpcast_small_mbit,udpcast_large_mbit,mcast_small_mbit,mcast_large_mbit\n\
flat,1,0,1000,256,2,plain-socat-chain,2.311,6013,6013,10000,2,8,3269,3470,2073,3379,6622,9171\n\
flat,1,0,1000,256,2,udpcast,2.892,6013,6013,10000,2,8,3269,3470,2073,3379,6622,9171\n\
flat,1,0,1000,256,2,chain,2.266,6013,6013,10000,2,8,3269,3470,2073,3379,6622,9171\n\
flat,1,0,1000,256,2,ft-chain,2.294,6013,6013,10000,2,8,3269,3470,2073,3379,6622,9171\n\
flat,1,0,1000,256,2,tree,4.526,6013,6013,10000,2,8,3269,3470,2073,3379,6622,9171\n\
flat,1,0,1000,256,2,multicast,2.275,6013,6013,10000,2,8,3269,3470,2073,3379,6622,9171\n\
flat,1,0,1000,256,2,swarm,2.760,6013,6013,10000,2,8,3269,3470,2073,3379,6622,9171\n\
flat,1,0,1000,256,4,plain-socat-chain,2.869,7115,7115,10000,2,8,4265,3315,1857,3108,6853,9006\n\
flat,1,0,1000,256,4,udpcast,5.162,7115,7115,10000,2,8,4265,3315,1857,3108,6853,9006\n\
flat,1,0,1000,256,4,chain,2.277,7115,7115,10000,2,8,4265,3315,1857,3108,6853,9006\n\
flat,1,0,1000,256,4,ft-chain,2.284,7115,7115,10000,2,8,4265,3315,1857,3108,6853,9006\n\
flat,1,0,1000,256,4,tree,4.549,7115,7115,10000,2,8,4265,3315,1857,3108,6853,9006\n\
flat,1,0,1000,256,4,multicast,2.272,7115,7115,10000,2,8,4265,3315,1857,3108,6853,9006\n\
flat,1,0,1000,256,4,swarm,3.426,7115,7115,10000,2,8,4265,3315,1857,3108,6853,9006\n\
flat,1,0,1000,256,8,plain-socat-chain,8.080,7301,7301,10000,2,8,3851,3206,2095,3317,6235,8908\n\
flat,1,0,1000,256,8,udpcast,7.017,7301,7301,10000,2,8,3851,3206,2095,3317,6235,8908\n\
flat,1,0,1000,256,8,chain,2.426,7301,7301,10000,2,8,3851,3206,2095,3317,6235,8908\n\
flat,1,0,1000,256,8,ft-chain,2.326,7301,7301,10000,2,8,3851,3206,2095,3317,6235,8908\n\
flat,1,0,1000,256,8,tree,4.538,7301,7301,10000,2,8,3851,3206,2095,3317,6235,8908\n\
flat,1,0,1000,256,8,multicast,2.364,7301,7301,10000,2,8,3851,3206,2095,3317,6235,8908\n\
flat,1,0,1000,256,8,swarm,4.611,7301,7301,10000,2,8,3851,3206,2095,3317,6235,8908\n\
flat,1,0,1000,256,16,plain-socat-chain,17.707,6600,6600,10000,2,8,3948,3489,1994,3584,6610,8912\n\
flat,1,0,1000,256,16,udpcast,12.102,6600,6600,10000,2,8,3948,3489,1994,3584,6610,8912\n\
flat,1,0,1000,256,16,chain,4.530,6600,6600,10000,2,8,3948,3489,1994,3584,6610,8912\n\
flat,1,0,1000,256,16,ft-chain,4.483,6600,6600,10000,2,8,3948,3489,1994,3584,6610,8912\n\
flat,1,0,1000,256,16,tree,4.722,6600,6600,10000,2,8,3948,3489,1994,3584,6610,8912\n\
flat,1,0,1000,256,16,multicast,3.847,6600,6600,10000,2,8,3948,3489,1994,3584,6610,8912\n\
flat,1,0,1000,256,16,swarm,6.814,6600,6600,10000,2,8,3948,3489,1994,3584,6610,8912\n\
two-level,2,1000,1000,256,2,plain-socat-chain,2.271,7232,7166,10000,2,8,3864,2983,2354,2776,5677,8393\n\
two-level,2,1000,1000,256,2,udpcast,3.381,7232,7166,10000,2,8,3864,2983,2354,2776,5677,8393\n\
two-level,2,1000,1000,256,2,chain,2.277,7232,7166,10000,2,8,3864,2983,2354,2776,5677,8393\n\
two-level,2,1000,1000,256,2,chain-oblivious,2.288,7232,7166,10000,2,8,3864,2983,2354,2776,5677,8393\n\
two-level,2,1000,1000,256,2,ft-chain,2.285,7232,7166,10000,2,8,3864,2983,2354,2776,5677,8393\n\
two-level,2,1000,1000,256,2,tree,4.526,7232,7166,10000,2,8,3864,2983,2354,2776,5677,8393\n\
two-level,2,1000,1000,256,2,multicast,2.273,7232,7166,10000,2,8,3864,2983,2354,2776,5677,8393\n\
two-level,2,1000,1000,256,2,swarm,2.749,7232,7166,10000,2,8,3864,2983,2354,2776,5677,8393\n\
two-level,2,1000,1000,256,4,plain-socat-chain,2.317,6433,7106,10000,2,8,3321,3111,1906,3491,6151,8876\n\
two-level,2,1000,1000,256,4,udpcast,4.716,6433,7106,10000,2,8,3321,3111,1906,3491,6151,8876\n\
two-level,2,1000,1000,256,4,chain,2.320,6433,7106,10000,2,8,3321,3111,1906,3491,6151,8876\n\
two-level,2,1000,1000,256,4,chain-oblivious,4.553,6433,7106,10000,2,8,3321,3111,1906,3491,6151,8876\n\
two-level,2,1000,1000,256,4,ft-chain,2.291,6433,7106,10000,2,8,3321,3111,1906,3491,6151,8876\n\
two-level,2,1000,1000,256,4,tree,4.546,6433,7106,10000,2,8,3321,3111,1906,3491,6151,8876\n\
two-level,2,1000,1000,256,4,multicast,2.292,6433,7106,10000,2,8,3321,3111,1906,3491,6151,8876\n\
two-level,2,1000,1000,256,4,swarm,3.694,6433,7106,10000,2,8,3321,3111,1906,3491,6151,8876\n\
two-level,2,1000,1000,256,8,plain-socat-chain,4.307,6853,6724,10000,2,8,3567,3267,2132,3118,5751,9038\n\
two-level,2,1000,1000,256,8,udpcast,7.277,6853,6724,10000,2,8,3567,3267,2132,3118,5751,9038\n\
two-level,2,1000,1000,256,8,chain,2.484,6853,6724,10000,2,8,3567,3267,2132,3118,5751,9038\n\
two-level,2,1000,1000,256,8,chain-oblivious,9.073,6853,6724,10000,2,8,3567,3267,2132,3118,5751,9038\n\
two-level,2,1000,1000,256,8,ft-chain,2.527,6853,6724,10000,2,8,3567,3267,2132,3118,5751,9038\n\
two-level,2,1000,1000,256,8,tree,9.080,6853,6724,10000,2,8,3567,3267,2132,3118,5751,9038\n\
two-level,2,1000,1000,256,8,multicast,2.574,6853,6724,10000,2,8,3567,3267,2132,3118,5751,9038\n\
two-level,2,1000,1000,256,8,swarm,4.938,6853,6724,10000,2,8,3567,3267,2132,3118,5751,9038\n\
two-level,2,1000,1000,256,16,plain-socat-chain,14.613,7053,7000,10000,2,8,3249,2948,2204,3024,6248,8477\n\
two-level,2,1000,1000,256,16,udpcast,12.246,7053,7000,10000,2,8,3249,2948,2204,3024,6248,8477\n\
two-level,2,1000,1000,256,16,chain,4.647,7053,7000,10000,2,8,3249,2948,2204,3024,6248,8477\n\
two-level,2,1000,1000,256,16,chain-oblivious,18.354,7053,7000,10000,2,8,3249,2948,2204,3024,6248,8477\n\
two-level,2,1000,1000,256,16,ft-chain,4.617,7053,7000,10000,2,8,3249,2948,2204,3024,6248,8477\n\
two-level,2,1000,1000,256,16,tree,18.166,7053,7000,10000,2,8,3249,2948,2204,3024,6248,8477\n\
two-level,2,1000,1000,256,16,multicast,3.862,7053,7000,10000,2,8,3249,2948,2204,3024,6248,8477\n\
two-level,2,1000,1000,256,16,swarm,6.796,7053,7000,10000,2,8,3249,2948,2204,3024,6248,8477\n\
";

/// This stop's quiet run's misses (with the tool columns), and why:
/// * udpcast at 1 Gbit/s, and at 200 Mbit/s two-level N = 16: udpcast runs below both its link and its
///   measured speed. Measured after this run (udp-sender's statistics, `tc -s qdisc`, the receivers'
///   `UdpRcvbufErrors`): no tbf dropped anything; the receivers' sockets did. udp-sender runs in
///   full-duplex mode on veth (slices of 112 blocks, two unacknowledged: 226 datagrams may wait in a
///   receiver's socket) and the kernel's default buffer holds 92: a receiver off the processor for
///   more than 92 datagrams' time (1.1 ms at 1 Gbit/s) lost the rest, which was sent again to every
///   receiver (9–35% of the blocks at N = 2). How much depends on the receivers' waits for a core,
///   which no testbed parameter gives: [`udpcast_overruns`](super::testbed::udpcast_overruns) says
///   these rows had such buffers (every row without the `udpcast_rcvbuf` column);
/// * the plain chain at 1 Gbit/s, flat N = 8 and 16 and two-level N = 4 to 16 (both signs): the chain varies
///   run to run at these N (flat N = 8: 8.08 s here, 4.40 s at stop 13) while its meter does not;
/// * kaagent's chain, fault-tolerant chain and tree at 1 Gbit/s flat N = 16 (+10% to +16%): the hop speed
///   measured before that N (6,600 Mbit/s, 7,100–7,300 before the others) was slower than the runs;
/// * multicast at 1 Gbit/s two-level N = 8 (−12.6%): predicted at the link (2.25 s), ran 2.57 s; not
///   explained.
const FINAL_MISSES: &[Miss] = &[
    ("two-level", 200, 16, "udpcast", 0.15),           // -11.6%
    ("flat", 1000, 2, "udpcast", 0.25),                // -22.8%
    ("flat", 1000, 4, "udpcast", 0.35),                // -34.4%
    ("flat", 1000, 8, "plain-socat-chain", 0.35),      // -30.0%
    ("flat", 1000, 8, "udpcast", 0.3),                 // -26.2%
    ("flat", 1000, 16, "plain-socat-chain", 0.45),     // -42.2%
    ("flat", 1000, 16, "udpcast", 0.35),               // -31.3%
    ("flat", 1000, 16, "chain", 0.15),                 // +14.9%
    ("flat", 1000, 16, "ft-chain", 0.2),               // +16.1%
    ("flat", 1000, 16, "tree", 0.15),                  // +10.3%
    ("two-level", 1000, 2, "udpcast", 0.35),           // -34.0%
    ("two-level", 1000, 4, "plain-socat-chain", 0.25), // +21.7%
    ("two-level", 1000, 4, "udpcast", 0.35),           // -33.4%
    ("two-level", 1000, 8, "plain-socat-chain", 0.3),  // +25.9%
    ("two-level", 1000, 8, "udpcast", 0.25),           // -24.1%
    ("two-level", 1000, 8, "multicast", 0.15),         // -12.6%
    ("two-level", 1000, 16, "plain-socat-chain", 0.2), // -17.7%
    ("two-level", 1000, 16, "udpcast", 0.15),          // -12.9%
];

/// Checks every row of `table` (its columns [`HEADER`], or those of its first line when that is a
/// header) against its `misses`; returns how many were within 10%.
fn check(table: &str, misses: &[Miss]) -> usize {
    let own = table.lines().next().filter(|l| l.starts_with("topology,"));
    let header: Vec<String> = own.unwrap_or(HEADER).split(',').map(String::from).collect();
    let mut within = 0;
    for line in table.lines().skip(usize::from(own.is_some())) {
        let fields: Vec<&str> = line.split(',').collect();
        let (run, measured) = parse_row(&header, &fields, false).expect("a testbed row");
        let predicted = predict(&run);
        let error = predicted / measured - 1.0;
        let key = |m: &&Miss| {
            m.0 == fields[0] && f64::from(m.1) == run.mbit && m.2 == run.n && m.3 == fields[6]
        };
        let bound = misses.iter().find(key).map_or(0.10, |m| m.4);
        eprintln!(
            "{line}: predicted {predicted:.3} s ({:+.1}%, bound {:.0}%)",
            error * 100.0,
            bound * 100.0
        );
        assert!(
            error.abs() <= bound,
            "{line}: predicted {predicted:.3} s, {:+.1}%",
            error * 100.0
        );
        within += usize::from(error.abs() <= 0.10);
    }
    within
}

/// Checks `table` and prints how many of its rows were within 10%.
fn check_all(table: &str, misses: &[Miss]) -> usize {
    let within = check(table, misses);
    let rows = table
        .lines()
        .filter(|l| !l.starts_with("topology,"))
        .count();
    eprintln!("{within} of {rows} rows within 10%");
    within
}

#[test]
fn the_models_predict_the_200_mbit_testbed() {
    check_all(RATE_200_64MIB, DEV_MISSES);
}

#[test]
fn the_models_predict_the_gigabit_testbed() {
    check_all(GIGABIT_128MIB, DEV_MISSES);
}

#[test]
fn the_models_predict_the_quiet_runs() {
    let within =
        check_all(QUIET_200_64MIB, QUIET_MISSES) + check_all(QUIET_GIGABIT_256MIB, QUIET_MISSES);
    // Stop 13 counted 81 of 120 with the random-peer swarm; kaagent's ring swarm is within 10% in
    // 15 of its 16 rows.
    assert!(within >= 95, "{within} of 120 rows within 10%");
}

#[test]
fn the_models_predict_this_stops_quiet_run() {
    let within = check_all(FINAL_200_MBIT, FINAL_MISSES) + check_all(FINAL_GIGABIT, FINAL_MISSES);
    // 119 rows: the flat 200 Mbit/s N = 16 swarm failed (a node starved) and has none.
    assert!(within >= 101, "{within} of 119 rows within 10%");
}

/// Stop 15's quiet-window run (window B, 2026-12-06 01:15–01:31 UTC, main with b-chain's chain and b-swarm's
/// swarm; udpcast's receivers with 8 MiB buffers; load 0.04 at the start, up to 9 from the testbed itself),
/// 200 Mbit/s, 64 MiB.
const WINDOW_B_200_MBIT: &str = "\
topology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,hop_mbit,uplink_hop_mbit,meter_mbit,meter_small,meter_large,plain_small_mbit,plain_large_mbit,udpcast_small_mbit,udpcast_large_mbit,mcast_small_mbit,mcast_large_mbit,udpcast_rcvbuf\n\
flat,1,0,200,64,2,plain-socat-chain,2.819,7045,7045,10000,2,8,3567,2963,2141,3016,5404,8574,8388608\n\
flat,1,0,200,64,2,udpcast,2.799,7045,7045,10000,2,8,3567,2963,2141,3016,5404,8574,8388608\n\
flat,1,0,200,64,2,chain,2.810,7045,7045,10000,2,8,3567,2963,2141,3016,5404,8574,8388608\n\
flat,1,0,200,64,2,ft-chain,2.810,7045,7045,10000,2,8,3567,2963,2141,3016,5404,8574,8388608\n\
flat,1,0,200,64,2,tree,5.613,7045,7045,10000,2,8,3567,2963,2141,3016,5404,8574,8388608\n\
flat,1,0,200,64,2,multicast,2.812,7045,7045,10000,2,8,3567,2963,2141,3016,5404,8574,8388608\n\
flat,1,0,200,64,2,swarm,3.611,7045,7045,10000,2,8,3567,2963,2141,3016,5404,8574,8388608\n\
flat,1,0,200,64,4,plain-socat-chain,2.829,6834,6834,10000,2,8,3909,3184,1886,2767,5928,8181,8388608\n\
flat,1,0,200,64,4,udpcast,2.798,6834,6834,10000,2,8,3909,3184,1886,2767,5928,8181,8388608\n\
flat,1,0,200,64,4,chain,2.812,6834,6834,10000,2,8,3909,3184,1886,2767,5928,8181,8388608\n\
flat,1,0,200,64,4,ft-chain,2.811,6834,6834,10000,2,8,3909,3184,1886,2767,5928,8181,8388608\n\
flat,1,0,200,64,4,tree,5.769,6834,6834,10000,2,8,3909,3184,1886,2767,5928,8181,8388608\n\
flat,1,0,200,64,4,multicast,2.812,6834,6834,10000,2,8,3909,3184,1886,2767,5928,8181,8388608\n\
flat,1,0,200,64,4,swarm,4.624,6834,6834,10000,2,8,3909,3184,1886,2767,5928,8181,8388608\n\
flat,1,0,200,64,8,plain-socat-chain,2.841,7058,7058,10000,2,8,3280,3310,1951,3712,5519,8468,8388608\n\
flat,1,0,200,64,8,udpcast,2.797,7058,7058,10000,2,8,3280,3310,1951,3712,5519,8468,8388608\n\
flat,1,0,200,64,8,chain,2.820,7058,7058,10000,2,8,3280,3310,1951,3712,5519,8468,8388608\n\
flat,1,0,200,64,8,ft-chain,2.823,7058,7058,10000,2,8,3280,3310,1951,3712,5519,8468,8388608\n\
flat,1,0,200,64,8,tree,5.657,7058,7058,10000,2,8,3280,3310,1951,3712,5519,8468,8388608\n\
flat,1,0,200,64,8,multicast,2.815,7058,7058,10000,2,8,3280,3310,1951,3712,5519,8468,8388608\n\
flat,1,0,200,64,8,swarm,5.970,7058,7058,10000,2,8,3280,3310,1951,3712,5519,8468,8388608\n\
flat,1,0,200,64,16,plain-socat-chain,2.885,6557,6557,10000,2,8,3296,3238,2150,3224,6235,8932,8388608\n\
flat,1,0,200,64,16,udpcast,3.061,6557,6557,10000,2,8,3296,3238,2150,3224,6235,8932,8388608\n\
flat,1,0,200,64,16,chain,2.842,6557,6557,10000,2,8,3296,3238,2150,3224,6235,8932,8388608\n\
flat,1,0,200,64,16,ft-chain,2.847,6557,6557,10000,2,8,3296,3238,2150,3224,6235,8932,8388608\n\
flat,1,0,200,64,16,tree,5.653,6557,6557,10000,2,8,3296,3238,2150,3224,6235,8932,8388608\n\
flat,1,0,200,64,16,multicast,2.819,6557,6557,10000,2,8,3296,3238,2150,3224,6235,8932,8388608\n\
flat,1,0,200,64,16,swarm,7.291,6557,6557,10000,2,8,3296,3238,2150,3224,6235,8932,8388608\n\
two-level,2,200,200,64,2,plain-socat-chain,2.821,6957,6987,10000,2,8,3535,3151,1780,3156,5707,8601,8388608\n\
two-level,2,200,200,64,2,udpcast,2.797,6957,6987,10000,2,8,3535,3151,1780,3156,5707,8601,8388608\n\
two-level,2,200,200,64,2,chain,2.813,6957,6987,10000,2,8,3535,3151,1780,3156,5707,8601,8388608\n\
two-level,2,200,200,64,2,chain-oblivious,2.811,6957,6987,10000,2,8,3535,3151,1780,3156,5707,8601,8388608\n\
two-level,2,200,200,64,2,ft-chain,2.811,6957,6987,10000,2,8,3535,3151,1780,3156,5707,8601,8388608\n\
two-level,2,200,200,64,2,tree,5.615,6957,6987,10000,2,8,3535,3151,1780,3156,5707,8601,8388608\n\
two-level,2,200,200,64,2,multicast,2.812,6957,6987,10000,2,8,3535,3151,1780,3156,5707,8601,8388608\n\
two-level,2,200,200,64,2,swarm,3.340,6957,6987,10000,2,8,3535,3151,1780,3156,5707,8601,8388608\n\
two-level,2,200,200,64,4,plain-socat-chain,2.833,6727,7229,10000,2,8,3376,3117,2141,2547,5263,7814,8388608\n\
two-level,2,200,200,64,4,udpcast,2.801,6727,7229,10000,2,8,3376,3117,2141,2547,5263,7814,8388608\n\
two-level,2,200,200,64,4,chain,2.813,6727,7229,10000,2,8,3376,3117,2141,2547,5263,7814,8388608\n\
two-level,2,200,200,64,4,chain-oblivious,5.626,6727,7229,10000,2,8,3376,3117,2141,2547,5263,7814,8388608\n\
two-level,2,200,200,64,4,ft-chain,2.813,6727,7229,10000,2,8,3376,3117,2141,2547,5263,7814,8388608\n\
two-level,2,200,200,64,4,tree,5.804,6727,7229,10000,2,8,3376,3117,2141,2547,5263,7814,8388608\n\
two-level,2,200,200,64,4,multicast,2.813,6727,7229,10000,2,8,3376,3117,2141,2547,5263,7814,8388608\n\
two-level,2,200,200,64,4,swarm,5.004,6727,7229,10000,2,8,3376,3117,2141,2547,5263,7814,8388608\n\
two-level,2,200,200,64,8,plain-socat-chain,2.854,6894,6830,10000,2,8,3163,3135,1783,2532,5344,7746,8388608\n\
two-level,2,200,200,64,8,udpcast,2.798,6894,6830,10000,2,8,3163,3135,1783,2532,5344,7746,8388608\n\
two-level,2,200,200,64,8,chain,2.817,6894,6830,10000,2,8,3163,3135,1783,2532,5344,7746,8388608\n\
two-level,2,200,200,64,8,chain-oblivious,11.614,6894,6830,10000,2,8,3163,3135,1783,2532,5344,7746,8388608\n\
two-level,2,200,200,64,8,ft-chain,2.819,6894,6830,10000,2,8,3163,3135,1783,2532,5344,7746,8388608\n\
two-level,2,200,200,64,8,tree,11.239,6894,6830,10000,2,8,3163,3135,1783,2532,5344,7746,8388608\n\
two-level,2,200,200,64,8,multicast,2.816,6894,6830,10000,2,8,3163,3135,1783,2532,5344,7746,8388608\n\
two-level,2,200,200,64,8,swarm,6.735,6894,6830,10000,2,8,3163,3135,1783,2532,5344,7746,8388608\n\
two-level,2,200,200,64,16,plain-socat-chain,2.915,7877,6965,10000,2,8,3025,3053,1679,2728,5169,7352,8388608\n\
two-level,2,200,200,64,16,udpcast,3.025,7877,6965,10000,2,8,3025,3053,1679,2728,5169,7352,8388608\n\
two-level,2,200,200,64,16,chain,2.836,7877,6965,10000,2,8,3025,3053,1679,2728,5169,7352,8388608\n\
two-level,2,200,200,64,16,chain-oblivious,23.523,7877,6965,10000,2,8,3025,3053,1679,2728,5169,7352,8388608\n\
two-level,2,200,200,64,16,ft-chain,2.837,7877,6965,10000,2,8,3025,3053,1679,2728,5169,7352,8388608\n\
two-level,2,200,200,64,16,tree,22.485,7877,6965,10000,2,8,3025,3053,1679,2728,5169,7352,8388608\n\
two-level,2,200,200,64,16,multicast,2.818,7877,6965,10000,2,8,3025,3053,1679,2728,5169,7352,8388608\n\
two-level,2,200,200,64,16,swarm,9.890,7877,6965,10000,2,8,3025,3053,1679,2728,5169,7352,8388608\n\
";

/// Stop 15's quiet-window run (window B), 1 Gbit/s, 256 MiB.
const WINDOW_B_GIGABIT: &str = "\
topology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,hop_mbit,uplink_hop_mbit,meter_mbit,meter_small,meter_large,plain_small_mbit,plain_large_mbit,udpcast_small_mbit,udpcast_large_mbit,mcast_small_mbit,mcast_large_mbit,udpcast_rcvbuf\n\
flat,1,0,1000,256,2,plain-socat-chain,2.270,7221,7221,10000,2,8,3456,3260,2056,3181,6541,8978,8388608\n\
flat,1,0,1000,256,2,udpcast,2.822,7221,7221,10000,2,8,3456,3260,2056,3181,6541,8978,8388608\n\
flat,1,0,1000,256,2,chain,2.265,7221,7221,10000,2,8,3456,3260,2056,3181,6541,8978,8388608\n\
flat,1,0,1000,256,2,ft-chain,2.260,7221,7221,10000,2,8,3456,3260,2056,3181,6541,8978,8388608\n\
flat,1,0,1000,256,2,tree,4.522,7221,7221,10000,2,8,3456,3260,2056,3181,6541,8978,8388608\n\
flat,1,0,1000,256,2,multicast,2.267,7221,7221,10000,2,8,3456,3260,2056,3181,6541,8978,8388608\n\
flat,1,0,1000,256,2,swarm,2.749,7221,7221,10000,2,8,3456,3260,2056,3181,6541,8978,8388608\n\
flat,1,0,1000,256,4,plain-socat-chain,2.291,7400,7400,10000,2,8,3173,3227,2123,3043,6089,8826,8388608\n\
flat,1,0,1000,256,4,udpcast,4.038,7400,7400,10000,2,8,3173,3227,2123,3043,6089,8826,8388608\n\
flat,1,0,1000,256,4,chain,2.272,7400,7400,10000,2,8,3173,3227,2123,3043,6089,8826,8388608\n\
flat,1,0,1000,256,4,ft-chain,2.266,7400,7400,10000,2,8,3173,3227,2123,3043,6089,8826,8388608\n\
flat,1,0,1000,256,4,tree,4.538,7400,7400,10000,2,8,3173,3227,2123,3043,6089,8826,8388608\n\
flat,1,0,1000,256,4,multicast,2.266,7400,7400,10000,2,8,3173,3227,2123,3043,6089,8826,8388608\n\
flat,1,0,1000,256,4,swarm,3.506,7400,7400,10000,2,8,3173,3227,2123,3043,6089,8826,8388608\n\
flat,1,0,1000,256,8,plain-socat-chain,4.083,7529,7529,10000,2,8,4066,3188,2297,3780,5847,8803,8388608\n\
flat,1,0,1000,256,8,udpcast,6.663,7529,7529,10000,2,8,4066,3188,2297,3780,5847,8803,8388608\n\
flat,1,0,1000,256,8,chain,2.472,7529,7529,10000,2,8,4066,3188,2297,3780,5847,8803,8388608\n\
flat,1,0,1000,256,8,ft-chain,2.445,7529,7529,10000,2,8,4066,3188,2297,3780,5847,8803,8388608\n\
flat,1,0,1000,256,8,tree,4.541,7529,7529,10000,2,8,4066,3188,2297,3780,5847,8803,8388608\n\
flat,1,0,1000,256,8,multicast,2.471,7529,7529,10000,2,8,4066,3188,2297,3780,5847,8803,8388608\n\
flat,1,0,1000,256,8,swarm,4.661,7529,7529,10000,2,8,4066,3188,2297,3780,5847,8803,8388608\n\
flat,1,0,1000,256,16,plain-socat-chain,11.367,7010,7010,10000,2,8,3565,3298,2094,3034,6354,8601,8388608\n\
flat,1,0,1000,256,16,udpcast,11.327,7010,7010,10000,2,8,3565,3298,2094,3034,6354,8601,8388608\n\
flat,1,0,1000,256,16,chain,4.392,7010,7010,10000,2,8,3565,3298,2094,3034,6354,8601,8388608\n\
flat,1,0,1000,256,16,ft-chain,4.466,7010,7010,10000,2,8,3565,3298,2094,3034,6354,8601,8388608\n\
flat,1,0,1000,256,16,tree,4.725,7010,7010,10000,2,8,3565,3298,2094,3034,6354,8601,8388608\n\
flat,1,0,1000,256,16,multicast,3.730,7010,7010,10000,2,8,3565,3298,2094,3034,6354,8601,8388608\n\
flat,1,0,1000,256,16,swarm,6.773,7010,7010,10000,2,8,3565,3298,2094,3034,6354,8601,8388608\n\
two-level,2,1000,1000,256,2,plain-socat-chain,2.316,6868,7195,10000,2,8,3226,3077,1872,2910,5744,8192,8388608\n\
two-level,2,1000,1000,256,2,udpcast,3.194,6868,7195,10000,2,8,3226,3077,1872,2910,5744,8192,8388608\n\
two-level,2,1000,1000,256,2,chain,2.291,6868,7195,10000,2,8,3226,3077,1872,2910,5744,8192,8388608\n\
two-level,2,1000,1000,256,2,chain-oblivious,2.298,6868,7195,10000,2,8,3226,3077,1872,2910,5744,8192,8388608\n\
two-level,2,1000,1000,256,2,ft-chain,2.298,6868,7195,10000,2,8,3226,3077,1872,2910,5744,8192,8388608\n\
two-level,2,1000,1000,256,2,tree,4.538,6868,7195,10000,2,8,3226,3077,1872,2910,5744,8192,8388608\n\
two-level,2,1000,1000,256,2,multicast,2.285,6868,7195,10000,2,8,3226,3077,1872,2910,5744,8192,8388608\n\
two-level,2,1000,1000,256,2,swarm,2.749,6868,7195,10000,2,8,3226,3077,1872,2910,5744,8192,8388608\n\
two-level,2,1000,1000,256,4,plain-socat-chain,2.308,7324,7402,10000,2,8,3648,3264,1905,3268,6211,8992,8388608\n\
two-level,2,1000,1000,256,4,udpcast,4.442,7324,7402,10000,2,8,3648,3264,1905,3268,6211,8992,8388608\n\
two-level,2,1000,1000,256,4,chain,2.291,7324,7402,10000,2,8,3648,3264,1905,3268,6211,8992,8388608\n\
two-level,2,1000,1000,256,4,chain-oblivious,4.528,7324,7402,10000,2,8,3648,3264,1905,3268,6211,8992,8388608\n\
two-level,2,1000,1000,256,4,ft-chain,2.281,7324,7402,10000,2,8,3648,3264,1905,3268,6211,8992,8388608\n\
two-level,2,1000,1000,256,4,tree,4.549,7324,7402,10000,2,8,3648,3264,1905,3268,6211,8992,8388608\n\
two-level,2,1000,1000,256,4,multicast,2.271,7324,7402,10000,2,8,3648,3264,1905,3268,6211,8992,8388608\n\
two-level,2,1000,1000,256,4,swarm,3.696,7324,7402,10000,2,8,3648,3264,1905,3268,6211,8992,8388608\n\
two-level,2,1000,1000,256,8,plain-socat-chain,4.603,7083,7384,10000,2,8,3167,3367,2252,2834,6264,8773,8388608\n\
two-level,2,1000,1000,256,8,udpcast,6.925,7083,7384,10000,2,8,3167,3367,2252,2834,6264,8773,8388608\n\
two-level,2,1000,1000,256,8,chain,2.548,7083,7384,10000,2,8,3167,3367,2252,2834,6264,8773,8388608\n\
two-level,2,1000,1000,256,8,chain-oblivious,9.108,7083,7384,10000,2,8,3167,3367,2252,2834,6264,8773,8388608\n\
two-level,2,1000,1000,256,8,ft-chain,2.509,7083,7384,10000,2,8,3167,3367,2252,2834,6264,8773,8388608\n\
two-level,2,1000,1000,256,8,tree,9.089,7083,7384,10000,2,8,3167,3367,2252,2834,6264,8773,8388608\n\
two-level,2,1000,1000,256,8,multicast,2.556,7083,7384,10000,2,8,3167,3367,2252,2834,6264,8773,8388608\n\
two-level,2,1000,1000,256,8,swarm,4.972,7083,7384,10000,2,8,3167,3367,2252,2834,6264,8773,8388608\n\
two-level,2,1000,1000,256,16,plain-socat-chain,11.395,6684,7207,10000,2,8,3264,3216,2038,3225,6566,8588,8388608\n\
two-level,2,1000,1000,256,16,udpcast,11.722,6684,7207,10000,2,8,3264,3216,2038,3225,6566,8588,8388608\n\
two-level,2,1000,1000,256,16,chain,4.561,6684,7207,10000,2,8,3264,3216,2038,3225,6566,8588,8388608\n\
two-level,2,1000,1000,256,16,chain-oblivious,18.367,6684,7207,10000,2,8,3264,3216,2038,3225,6566,8588,8388608\n\
two-level,2,1000,1000,256,16,ft-chain,4.388,6684,7207,10000,2,8,3264,3216,2038,3225,6566,8588,8388608\n\
two-level,2,1000,1000,256,16,tree,18.171,6684,7207,10000,2,8,3264,3216,2038,3225,6566,8588,8388608\n\
two-level,2,1000,1000,256,16,multicast,3.934,6684,7207,10000,2,8,3264,3216,2038,3225,6566,8588,8388608\n\
two-level,2,1000,1000,256,16,swarm,6.373,6684,7207,10000,2,8,3264,3216,2038,3225,6566,8588,8388608\n\
";

/// Stop 15's quiet run's misses, and why:
/// * udpcast at 1 Gbit/s (−12% to −32%; flat N = 16 within, −8%): nothing was dropped and no block sent again
///   at any N (8 MiB receive buffers), yet udpcast runs below both bounds: its window of two 112-block slices
///   is 2.7 ms of the link, and the sender starts a slice only once every receiver acknowledged the slice two
///   before; waiting for the receivers' and the sender's threads to get a core (captures: the link idle
///   0.5–1.2 ms per 1.36-ms slice at load 9–11) is not a testbed parameter;
/// * the plain chain at 1 Gbit/s, N = 4 and 8 (+11% to +42%, faster than predicted): its meter (3,188 Mbit/s
///   delivered to 8 receivers with tc at 10 Gbit/s) reads as at stop 14 (3,206), but the chain paced at
///   1 Gbit/s ran flat N = 8 in 4.08 s here (3 repeats in the window: 3.84–4.38 s) against 8.08 s at stop 14:
///   the tool varies between sessions at the same meter reading, not within one;
/// * kaagent's chain, fault-tolerant chain and swarm at 1 Gbit/s N = 16 (+11.5% to +17%): the CPU bound from the
///   hop meter (best of 5 readings: 7,010 flat, 6,684 / 7,207 two-level; readings 4,990–7,529 in the run) while
///   kaagent moved its 16 copies at about 7,700 Mbit/s (3 repeats of the flat chain: 4.38–4.59 s, meter 6,771):
///   kaagent's hops now cost the host less per byte than the meter's `socat` copies;
/// * multicast at 1 Gbit/s two-level N = 8 (−11.9%; stop 14 −12.6%, flat −9%): it runs 2.47–2.56 s against a
///   link bound of 2.25 s and a CPU bound of 1.9 s (84% of the host): the larger of two close bounds
///   underestimates; not modelled;
/// * the swarm at 200 Mbit/s flat N = 16 (+38.9%): the first run of that row since b-swarm's fix of the
///   starvation (it failed at stop 14); the ring model predicts 10.1 s, kaagent's swarm took 7.3 s (b-swarm's
///   report covers the swarm model).
const WINDOW_B_MISSES: &[Miss] = &[
    ("flat", 200, 16, "swarm", 0.45),                  // +38.9%
    ("flat", 1000, 2, "udpcast", 0.25),                // -20.9%
    ("flat", 1000, 4, "plain-socat-chain", 0.2),       // +16.8%
    ("flat", 1000, 4, "udpcast", 0.25),                // -20.0%
    ("flat", 1000, 8, "plain-socat-chain", 0.45),      // +41.5%
    ("flat", 1000, 8, "udpcast", 0.35),                // -31.8%
    ("flat", 1000, 16, "chain", 0.15),                 // +11.6%
    ("two-level", 1000, 2, "udpcast", 0.35),           // -28.2%
    ("two-level", 1000, 4, "plain-socat-chain", 0.2),  // +18.0%
    ("two-level", 1000, 4, "udpcast", 0.3),            // -26.7%
    ("two-level", 1000, 8, "plain-socat-chain", 0.15), // +10.9%
    ("two-level", 1000, 8, "udpcast", 0.15),           // -12.5%
    ("two-level", 1000, 8, "multicast", 0.15),         // -11.9%
    ("two-level", 1000, 16, "udpcast", 0.2),           // -17.9%
    ("two-level", 1000, 16, "chain", 0.15),            // +12.7%
    ("two-level", 1000, 16, "ft-chain", 0.2),          // +17.2%
    ("two-level", 1000, 16, "swarm", 0.15),            // +11.5%
];

#[test]
fn the_models_predict_the_window_b_run() {
    let within = check_all(WINDOW_B_200_MBIT, WINDOW_B_MISSES)
        + check_all(WINDOW_B_GIGABIT, WINDOW_B_MISSES);
    assert!(within >= 103, "{within} of 120 rows within 10%");
}
