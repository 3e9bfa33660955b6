//! Where kaagent's chain loses time against the plain `socat | tee` chain (ignored; a diagnosis run
//! on the testbed): each node's timeline of both, several runs interleaved, and the difference
//! broken down into start-up, per-hop delay and end.

use crate::measure::env_or;
use crate::netns::Testbed;
use crate::testbed::{make_image, options, run_ordered};
use crate::topology::Topology;
use hal::Strategy;
use hal::broadcast::deployer::BroadcastReport;
use std::time::Duration;

/// One chain run's parts, seconds: set-up before the stream (not counted in the row), the first
/// node's first verified chunk since the stream started, the last chunk's spread along the chain
/// per hop, the last node's end after its last chunk (verification, write, report), and the row.
struct ChainParts {
    set_up: f64,
    first_chunk: f64,
    last_chunk_per_hop: f64,
    end: f64,
    row: f64,
}

fn secs(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64())
}

fn chain_parts(r: &BroadcastReport) -> ChainParts {
    // The timeline counts from the broadcast's start, `written_at` from the stream's.
    let t0 = r
        .timeline
        .iter()
        .zip(&r.written_at)
        .find_map(|((_, line), (_, at))| line.written?.checked_sub((*at)?))
        .map_or(f64::NAN, |d| d.as_secs_f64());
    let lines: Vec<_> = r.timeline.iter().map(|(_, l)| *l).collect();
    let (first, last) = (lines.first(), lines.last());
    let hops = lines.len().saturating_sub(1).max(1) as f64;
    let last_byte =
        |l: Option<&hal::broadcast::deployer::NodeTimeline>| secs(l.and_then(|l| l.last_byte));
    ChainParts {
        set_up: t0,
        first_chunk: secs(first.and_then(|l| l.first_byte)) - t0,
        last_chunk_per_hop: (last_byte(last) - last_byte(first)) / hops,
        end: secs(last.and_then(|l| l.written)) - last_byte(last),
        row: crate::testbed::last_written(r),
    }
}

/// Prints, for each N of `KABCAST_NODES` (default 8,16) and `KABCAST_REPEAT` runs (default 3), the
/// plain chain's and kaagent's chain's per-node timelines and their parts (`KABCAST_MBIT`, default
/// 200; `KABCAST_MIB`, default 64; `KABCAST_TOPOLOGY`).
#[test]
#[ignore = "diagnosis: the chain against the plain chain on the testbed"]
fn chain_gap_timelines() {
    let mbit: u32 = env_or("KABCAST_MBIT", 200);
    let mib: u64 = env_or("KABCAST_MIB", 64);
    let repeat: usize = env_or("KABCAST_REPEAT", 3);
    let ns: Vec<usize> = std::env::var("KABCAST_NODES")
        .unwrap_or_else(|_| "8,16".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let topology = Topology::from_env(mbit);
    let max_n = ns.iter().copied().max().unwrap_or(1);
    let tb = Testbed::build(max_n, mbit, &[], topology);
    let (image, want) = make_image(&tb, mib);
    let agents = tb.start_agents();
    for &n in &ns {
        for k in 0..repeat {
            let ends = tb.plain_chain_ends(&image, n);
            for i in 0..n {
                let _ = std::fs::remove_file(tb.host_dir(i).join("plain.img"));
            }
            let plain_first = ends.first().map_or(f64::NAN, Duration::as_secs_f64);
            let plain_last = ends.last().map_or(f64::NAN, Duration::as_secs_f64);
            let hops = n.saturating_sub(1).max(1) as f64;
            let how = (Strategy::Chain, crate::testbed::Order::TopologyAware);
            let r = run_ordered(&tb, &agents, n, &image, &want, how, options());
            assert!(r.outcomes.failures().is_empty(), "{:?}", r.outcomes);
            let c = chain_parts(&r);
            println!(
                "N={n} run {k}: plain {:.3} s (first node {plain_first:.3}, +{:.2} ms/hop); chain {:.3} s = {:.3} ratio; chain set-up {:.1} ms (not counted), first chunk kept {:.1} ms, last chunk +{:.2} ms/hop, end {:.1} ms",
                plain_last.max(ends.iter().map(Duration::as_secs_f64).fold(0.0, f64::max)),
                (plain_last - plain_first) / hops * 1e3,
                c.row,
                c.row / plain_last,
                c.set_up * 1e3,
                c.first_chunk * 1e3,
                c.last_chunk_per_hop * 1e3,
                c.end * 1e3,
            );
            for (i, (node, l)) in r.timeline.iter().enumerate() {
                println!(
                    "  node {node} (hop {i}, since the stream): connected {:.1} first {:.1} last {:.1} verified {:.1} written {:.1} ms; plain end {:.1} ms",
                    (secs(l.connected) - c.set_up) * 1e3,
                    (secs(l.first_byte) - c.set_up) * 1e3,
                    (secs(l.last_byte) - c.set_up) * 1e3,
                    (secs(l.verified) - c.set_up) * 1e3,
                    (secs(l.written) - c.set_up) * 1e3,
                    ends.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
                );
            }
        }
    }
}
