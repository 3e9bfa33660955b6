//! Broadcasts on the namespace testbed (`tc`-limited links): verified data for every strategy, a
//! receiver killed halfway through a fault-tolerant chain, and (ignored, run by
//! `scripts/bcast-testbed.sh`) the measurements against S/B and a plain `socat | tee` chain.

use crate::harness::{AgentProc, dd_image, file_hash, random_bytes, target};
use crate::netns::Testbed;
use hal::broadcast::deployer::{Agent, BroadcastReport, KaagentBroadcast, Options};
use hal::{NodeId, Strategy};
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn backend(
    tb: &Testbed,
    agents: &[AgentProc],
    n: usize,
    options: Options,
) -> (KaagentBroadcast, Vec<NodeId>) {
    let list = agents.iter().take(n).enumerate().map(|(i, a)| {
        (
            NodeId(i as u32),
            Agent {
                name: tb.hosts[i].clone(),
                addr: a.addr,
                switch: Some(0),
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
    for i in 0..n {
        let _ = std::fs::remove_file(tb.host_dir(i).join("disk.img"));
    }
    let (b, nodes) = backend(tb, agents, n, options);
    let size = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
    // Warm the manifest cache so the timing is the transfer's.
    b.manifest(&image.display().to_string()).expect("manifest");
    let r = b.run(
        &dd_image(image, "none", size),
        &target("/disk.img".as_ref(), "/mnt".as_ref()),
        strategy,
        &nodes,
    );
    for (n, o) in r.outcomes.iter() {
        if o.is_ok() {
            assert_eq!(
                file_hash(&tb.host_dir(n.index()).join("disk.img")),
                want,
                "{strategy} node {n}"
            );
        }
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
fn run_killing(
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The measurements of the issue; run by `scripts/bcast-testbed.sh` (env: KABCAST_MBIT, KABCAST_MIB,
/// KABCAST_NODES, KABCAST_STRATEGIES). Prints one CSV line per run:
/// `mbit,mib,n,strategy,seconds,s_over_b,over_plain,cpu_s,sys_s,retransmits` (`over_plain`: the time
/// over the plain `socat` chain's at the same N), then the slow-link case (`slow-*` lines: one host's
/// link at a tenth of the rate; `seconds` is the last node's time, `fast_median` the median of the others).
#[test]
#[ignore = "measurement: run by scripts/bcast-testbed.sh"]
fn measure_testbed() {
    let mbit: u32 = env_or("KABCAST_MBIT", 1000);
    let mib: u64 = env_or("KABCAST_MIB", 256);
    let ns: Vec<usize> = std::env::var("KABCAST_NODES")
        .unwrap_or_else(|_| "1,2,4,8".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let max_n = ns.iter().copied().max().unwrap_or(1);
    let only: Option<Vec<String>> = std::env::var("KABCAST_STRATEGIES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|s| s == name));
    {
        let tb = Testbed::new(max_n, mbit);
        let (image, want) = make_image(&tb, mib);
        let mut agents = tb.start_agents();
        let sb = (mib * MIB) as f64 / (f64::from(mbit) * 1e6 / 8.0);
        println!("mbit,mib,n,strategy,seconds,s_over_b,over_plain,cpu_s,sys_s,retransmits");
        let mut cpu;
        let mut retransmits = tb.retransmits();
        let mut plain = f64::NAN;
        let mut line = |cpu: &mut CpuMeter, plain: f64, n: usize, what: &str, t: f64| {
            let (busy, sys) = cpu.lap();
            let now = tb.retransmits();
            println!(
                "{mbit},{mib},{n},{what},{t:.3},{:.3},{:.3},{busy:.2},{sys:.2},{}",
                t / sb,
                t / plain,
                now - retransmits
            );
            retransmits = now;
        };
        for &n in &ns {
            if wanted("plain") {
                cpu = CpuMeter::start();
                plain = tb.plain_chain(&image, n).as_secs_f64();
                check_and_remove(&tb, n, "plain.img", &want);
                line(&mut cpu, plain, n, "plain-socat-chain", plain);
            }
            // udpcast only when asked for: on this testbed its receivers have not always found the sender.
            if only
                .as_ref()
                .is_some_and(|o| o.iter().any(|s| s == "udpcast"))
            {
                cpu = CpuMeter::start();
                match tb.udpcast(&image, n) {
                    Some(t) => {
                        check_and_remove(&tb, n, "udpcast.img", &want);
                        line(&mut cpu, plain, n, "udpcast", t.as_secs_f64());
                    }
                    None => line(&mut cpu, plain, n, "udpcast-no-finish", f64::NAN),
                }
            }
            for (name, strategy) in [
                ("chain", Strategy::Chain),
                ("ft-chain", Strategy::FaultTolerantChain),
                ("tree", Strategy::Tree { arity: 2 }),
                ("unicast", Strategy::Unicast),
                ("multicast", Strategy::Multicast),
                ("swarm", Strategy::Swarm),
            ] {
                if !wanted(name) {
                    continue;
                }
                cpu = CpuMeter::start();
                let r = run(&tb, &agents, n, &image, &want, strategy);
                assert!(
                    r.outcomes.failures().is_empty(),
                    "{strategy}: {:?}",
                    r.outcomes
                );
                line(&mut cpu, plain, n, &strategy.to_string(), last_written(&r));
            }
        }
        if max_n >= 3 && wanted("kill") {
            let victim = max_n / 2;
            cpu = CpuMeter::start();
            let r = run_killing(&tb, &mut agents, max_n, &image, &want, victim);
            let ok = r.outcomes.ok_nodes().len();
            assert_eq!(ok, max_n - 1, "{:?}", r.outcomes);
            line(
                &mut cpu,
                plain,
                max_n,
                &format!("ft-chain-kill-host-{victim}"),
                last_written(&r),
            );
        }
    }
    if max_n >= 3 && wanted("slow") {
        measure_slow_link(mbit, mib, max_n);
    }
}

/// Checks the `file` every one of the first `n` hosts wrote, then removes it.
fn check_and_remove(tb: &Testbed, n: usize, file: &str, want: &str) {
    for i in 0..n {
        let path = tb.host_dir(i).join(file);
        assert_eq!(file_hash(&path), want, "{file} host {i}");
        let _ = std::fs::remove_file(path);
    }
}

/// One host's link at a tenth of the others' rate: chain against swarm (the last node's time, and
/// the median of the other nodes').
fn measure_slow_link(mbit: u32, mib: u64, n: usize) {
    let slow = 1;
    let tb = Testbed::with_slow_hosts(n, mbit, &[(slow, mbit / 10)]);
    let (image, want) = make_image(&tb, mib);
    let agents = tb.start_agents();
    println!("mbit,mib,n,strategy,slow_host_mbit,last_s,fast_median_s");
    for strategy in [Strategy::Chain, Strategy::Swarm] {
        let r = run(&tb, &agents, n, &image, &want, strategy);
        assert!(
            r.outcomes.failures().is_empty(),
            "{strategy}: {:?}",
            r.outcomes
        );
        println!(
            "{mbit},{mib},{n},slow-{strategy},{},{:.3},{:.3}",
            mbit / 10,
            last_written(&r),
            fast_median(&r, slow)
        );
    }
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

/// Machine-wide CPU time from `/proc/stat`: all busy time, and the kernel's share (system, irq,
/// softirq), in seconds since the last lap. The testbed's links, bridge and copies all cost CPU
/// here, so this shows when a run is CPU-bound rather than link-bound.
struct CpuMeter {
    last: (f64, f64),
}

impl CpuMeter {
    fn start() -> CpuMeter {
        CpuMeter { last: cpu_now() }
    }

    fn lap(&mut self) -> (f64, f64) {
        let now = cpu_now();
        let d = (now.0 - self.last.0, now.1 - self.last.1);
        self.last = now;
        d
    }
}

/// (busy, kernel) seconds of all CPUs since boot (USER_HZ = 100 on Linux).
fn cpu_now() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0.0) / 100.0;
    // user nice system idle iowait irq softirq steal
    let kernel = at(2) + at(5) + at(6);
    (at(0) + at(1) + kernel + at(7), kernel)
}
