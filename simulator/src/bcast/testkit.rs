//! Builders and helpers shared by the broadcast unit tests (1 GbE cluster, ideal disks).

use super::{
    BroadcastJob, FaultTolerance, LatencyModel, LinkParams, Receiver, ReceiverOutcome, SwarmParams,
    Topology,
};
use hal::Strategy;

/// 1 GbE TCP goodput in bytes/s.
pub const B: f64 = 117.7e6;
/// Latency of one hop (two links of `L/2`).
pub const L: f64 = 100e-6;
/// One mebibyte.
pub const MIB: f64 = 1_048_576.0;

/// A homogeneous 1 GbE cluster on one non-blocking switch, hop latency `L`.
pub fn gige(latency_model: LatencyModel) -> Topology {
    let link = LinkParams {
        bandwidth: B,
        latency: L / 2.0,
    };
    Topology {
        node_link: link,
        server_link: link,
        uplink_bandwidth: None,
        latency_model,
        loss: 0.0,
    }
}

/// `n` receivers on switch 0 with ideal disks and CPUs, an uncompressed image of `size` bytes.
pub fn job(strategy: Strategy, n: usize, size: f64, chunk: f64) -> BroadcastJob {
    let receiver = Receiver {
        switch: 0,
        disk_write: f64::INFINITY,
        decompress: f64::INFINITY,
        dies_at: None,
        write_error: false,
        link: None,
    };
    BroadcastJob {
        strategy,
        size,
        ratio: 1.0,
        chunk,
        receivers: vec![receiver; n],
        fault_tolerance: FaultTolerance {
            detect_timeout: 3.0,
            reconnect: 1.0,
        },
        swarm: SwarmParams::default(),
        fec: None,
    }
}

/// Completion times; panics (test only) if a receiver failed.
pub fn done_at(out: &[ReceiverOutcome]) -> Vec<f64> {
    out.iter()
        .map(|o| match o {
            ReceiverOutcome::Done { at } => *at,
            other => panic!("expected Done, got {other:?}"),
        })
        .collect()
}

/// The latest completion time.
pub fn last(out: &[ReceiverOutcome]) -> f64 {
    done_at(out).into_iter().fold(0.0, f64::max)
}

/// Relative difference.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}
