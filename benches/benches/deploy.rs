//! Wall time of whole simulated deployments through the real engine: 300 and 10,000 nodes
//! (performance promises P1 and P2 in docs/PERFORMANCE.md).

use criterion::{Criterion, criterion_group, criterion_main};
use simulator::kasim::{Cli, Command, DeployArgs, setup, simulate};
use std::time::Duration;

fn args(nodes: usize) -> DeployArgs {
    let cli = Cli::from_args(&[
        "kasim",
        "deploy",
        "--nodes",
        &nodes.to_string(),
        "--seed",
        "42",
    ]);
    match cli.command {
        Command::Deploy(a) => a,
        _ => unreachable!("the arguments above name `deploy`"),
    }
}

fn deploy(c: &mut Criterion) {
    let mut group = c.benchmark_group("deploy");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for nodes in [300usize, 10_000] {
        let a = args(nodes);
        let s = setup::load(&a).expect("the sample configuration loads");
        group.bench_function(format!("{nodes}_nodes"), |b| {
            b.iter(|| {
                let report = simulate(&s, &a, Box::new(|_| {})).expect("the simulation runs");
                assert_eq!(report.nodes.len(), nodes);
                report
            })
        });
    }
    group.finish();
}

criterion_group!(benches, deploy);
criterion_main!(benches);
