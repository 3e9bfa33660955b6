//! Wall time of the broadcast model alone: 10,000 receivers per strategy, without and with 100 deaths,
//! on 1 GbE nodes behind 48-port switches with 10 GbE uplinks and heterogeneous disks.

use criterion::{Criterion, criterion_group, criterion_main};
use hal::Strategy;
use simulator::bcast::{
    BroadcastJob, FaultTolerance, LatencyModel, LinkParams, Receiver, SwarmParams, Topology,
    simulate,
};
use std::hint::black_box;

const B: f64 = 117.7e6;

fn topology() -> Topology {
    Topology {
        node_link: LinkParams {
            bandwidth: B,
            latency: 50e-6,
        },
        server_link: LinkParams {
            bandwidth: 10.0 * B,
            latency: 50e-6,
        },
        uplink_bandwidth: Some(10.0 * B),
        latency_model: LatencyModel::PerConnection,
        loss: 0.0,
    }
}

fn job(strategy: Strategy, deaths: usize) -> BroadcastJob {
    let mut receivers: Vec<Receiver> = (0..10_000)
        .map(|i| Receiver {
            switch: i / 48,
            disk_write: 40e6 + (i % 17) as f64 * 5e6,
            decompress: f64::INFINITY,
            dies_at: None,
            write_error: false,
            link: None,
        })
        .collect();
    for k in 1..=deaths {
        receivers[(k * 97) % 10_000].dies_at = Some(k as f64 * 0.3);
    }
    BroadcastJob {
        strategy,
        size: 1e9,
        ratio: 2.5,
        chunk: 1_048_576.0,
        receivers,
        fault_tolerance: FaultTolerance {
            detect_timeout: 3.0,
            reconnect: 1.0,
        },
        swarm: SwarmParams::default(),
        fec: None,
    }
}

fn bcast_model(c: &mut Criterion) {
    let mut group = c.benchmark_group("bcast_model_10k");
    group.sample_size(20);
    let topo = topology();
    let strategies = [
        ("chain", Strategy::Chain),
        ("tree2", Strategy::Tree { arity: 2 }),
        ("ft_chain", Strategy::FaultTolerantChain),
        ("unicast", Strategy::Unicast),
    ];
    for (name, strategy) in strategies {
        for deaths in [0, 100] {
            let j = job(strategy, deaths);
            group.bench_function(format!("{name}_{deaths}_deaths"), |b| {
                b.iter(|| simulate(black_box(&j), black_box(&topo)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bcast_model);
criterion_main!(benches);
