//! Broadcasts on the namespace testbed (`tc`-limited links): verified data for every strategy in
//! either chain order, and a receiver killed halfway through a fault-tolerant chain (the
//! measurements are in `measure.rs`).

use crate::harness::{AgentProc, dd_image, file_hashes, random_bytes, target};
use crate::netns::Testbed;
use hal::broadcast::deployer::{Agent, BroadcastReport, KaagentBroadcast, Options};
use hal::{NodeId, Strategy};
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// The chain order a broadcast follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The deployer knows each host's switch and groups them (kaagent's topology order).
    TopologyAware,
    /// No switch known: the hosts' index order, which on the two-level testbed crosses an uplink at
    /// every hop.
    SwitchOblivious,
}

fn backend(
    tb: &Testbed,
    agents: &[AgentProc],
    n: usize,
    options: Options,
    order: Order,
) -> (KaagentBroadcast, Vec<NodeId>) {
    let list = agents.iter().take(n).enumerate().map(|(i, a)| {
        (
            NodeId(i as u32),
            Agent {
                name: tb.hosts[i].clone(),
                addr: a.addr,
                switch: (order == Order::TopologyAware).then(|| tb.switch_of(i)),
            },
        )
    });
    let mut b = KaagentBroadcast::new(list, options);
    if let Some(a) = agents.first() {
        b = b.with_token(a.token.clone());
    }
    (b, (0..n as u32).map(NodeId).collect())
}

/// The broadcast settings; `KABCAST_CHUNK_KIB` sets the chunk size (default: the backend's 1 MiB).
pub fn options() -> Options {
    let mut o = Options::default();
    o.tuning.upstream_timeout_ms = 15_000;
    if let Some(kib) = std::env::var("KABCAST_CHUNK_KIB")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        o.chunk_size = kib << 10;
        // Keep the window's memory (and so its reach in bytes) as with the default chunks.
        o.tuning.window = (o.tuning.window * (1024 / kib.clamp(1, 1024))).min(1024);
    }
    if let Some(rate) = std::env::var("KABCAST_MCAST_RATE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        o.multicast.max_rate = rate;
    }
    if let Some(bytes) = std::env::var("KABCAST_SOCKBUF")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        o.tuning.socket_buffer = bytes;
    }
    o
}

/// Runs one broadcast of `image` to the first `n` hosts; checks every ok node's data; returns the report.
pub fn run(
    tb: &Testbed,
    agents: &[AgentProc],
    n: usize,
    image: &Path,
    want: &str,
    strategy: Strategy,
) -> BroadcastReport {
    run_with(tb, agents, n, image, want, strategy, options())
}

/// [`run`] with other settings.
pub fn run_with(
    tb: &Testbed,
    agents: &[AgentProc],
    n: usize,
    image: &Path,
    want: &str,
    strategy: Strategy,
    options: Options,
) -> BroadcastReport {
    run_ordered(
        tb,
        agents,
        n,
        image,
        want,
        (strategy, Order::TopologyAware),
        options,
    )
}

/// [`run_with`] in the given chain order.
pub fn run_ordered(
    tb: &Testbed,
    agents: &[AgentProc],
    n: usize,
    image: &Path,
    want: &str,
    (strategy, order): (Strategy, Order),
    options: Options,
) -> BroadcastReport {
    for i in 0..n {
        let _ = std::fs::remove_file(tb.host_dir(i).join("disk.img"));
    }
    let (b, nodes) = backend(tb, agents, n, options, order);
    let size = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
    // Warm the manifest cache so the timing is the transfer's.
    b.manifest(&image.display().to_string()).expect("manifest");
    let r = b.run(
        &dd_image(image, "none", size),
        &target("/disk.img".as_ref(), "/mnt".as_ref()),
        strategy,
        &nodes,
    );
    let ok: Vec<NodeId> = r
        .outcomes
        .iter()
        .filter(|(_, o)| o.is_ok())
        .map(|(n, _)| *n)
        .collect();
    let paths: Vec<_> = ok
        .iter()
        .map(|n| tb.host_dir(n.index()).join("disk.img"))
        .collect();
    for (n, got) in ok.iter().zip(file_hashes(&paths)) {
        assert_eq!(got, want, "{strategy} node {n}");
    }
    r
}

pub fn last_written(r: &BroadcastReport) -> f64 {
    r.written_at
        .iter()
        .filter_map(|(_, t)| t.map(|t| t.as_secs_f64()))
        .fold(0.0, f64::max)
}

pub fn make_image(tb: &Testbed, mib: u64) -> (std::path::PathBuf, String) {
    let data = random_bytes((mib * MIB) as usize, 7);
    let path = tb.scratch.0.join("image.raw");
    std::fs::write(&path, &data).expect("write image");
    (path, blake3::hash(&data).to_hex().to_string())
}

/// Kills host `victim`'s agent once it wrote half the image; returns the report.
pub fn run_killing(
    tb: &Testbed,
    agents: &mut [AgentProc],
    n: usize,
    image: &Path,
    want: &str,
    victim: usize,
) -> BroadcastReport {
    let half = std::fs::metadata(image).map(|m| m.len() / 2).unwrap_or(0);
    let out = tb.host_dir(victim).join("disk.img");
    let _ = std::fs::remove_file(&out);
    let (r, ()) = std::thread::scope(|s| {
        let agents_ro: &[AgentProc] = agents;
        let h = s.spawn(move || run(tb, agents_ro, n, image, want, Strategy::FaultTolerantChain));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < half {
            assert!(Instant::now() < deadline, "victim never got halfway");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Kill by PID (the agent is `ip netns exec` exec'ing kaagent: same PID).
        let victim_pid = agents_ro[victim].child.id();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &victim_pid.to_string()])
            .status();
        (h.join().expect("broadcast thread"), ())
    });
    agents[victim].kill();
    r
}

#[test]
fn netns_chain_is_verified_and_ft_chain_survives_a_killed_receiver() {
    let tb = Testbed::new(4, 200);
    let (image, want) = make_image(&tb, 32);
    let mut agents = tb.start_agents();
    let sb = 32.0 * MIB as f64 / (200e6 / 8.0);
    let r = run(&tb, &agents, 4, &image, &want, Strategy::Chain);
    assert!(r.outcomes.failures().is_empty(), "{:?}", r.outcomes);
    let clean = last_written(&r);
    let r = run_killing(&tb, &mut agents, 4, &image, &want, 1);
    for (n, o) in r.outcomes.iter() {
        assert_eq!(o.is_ok(), n.0 != 1, "{n}: {o:?}");
    }
    let killed = last_written(&r);
    eprintln!(
        "netns 200 Mbit/s, 32 MiB, 4 receivers: S/B {sb:.2} s, chain {clean:.2} s, ft-chain with host 1 killed halfway {killed:.2} s (penalty {:.2} s)",
        killed - clean
    );
}

/// The median time of the nodes other than `slow`.
pub fn fast_median(r: &BroadcastReport, slow: usize) -> f64 {
    let mut t: Vec<f64> = r
        .written_at
        .iter()
        .filter(|(n, _)| n.index() != slow)
        .filter_map(|(_, t)| t.map(|t| t.as_secs_f64()))
        .collect();
    t.sort_by(f64::total_cmp);
    t.get(t.len() / 2).copied().unwrap_or(f64::NAN)
}
