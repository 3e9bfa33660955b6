//! The testbed measurements of the broadcast bench (ignored; run by `scripts/bcast-testbed.sh`):
//! every strategy against S/B and a plain `socat | tee` chain, on the flat or two-level topology,
//! after the host's own speed through namespace hops with no rate limit (an input of the
//! simulator's prediction where the testbed is CPU-bound).

use crate::harness::file_hashes;
use crate::hop_meter::HopMeter;
use crate::netns::Testbed;
use crate::readings::{median, spread_field};
use crate::testbed::{
    Order, fast_median, last_written, make_image, options, run, run_killing, run_ordered,
};
use crate::tool_meter::{self, ToolMeter};
use crate::topology::Topology;
use hal::Strategy;

const MIB: u64 = 1 << 20;

/// The setting `name` from the environment, or `default` when unset or unreadable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one run of [`measure_testbed`] measures.
struct Settings {
    mbit: u32,
    mib: u64,
    ns: Vec<usize>,
    only: Option<Vec<String>>,
    topology: Topology,
    /// Runs of each tool at each N (`KABCAST_REPEAT`, default 1).
    repeat: usize,
}

impl Settings {
    fn from_env() -> Settings {
        let mbit = env_or("KABCAST_MBIT", 1000);
        Settings {
            mbit,
            mib: env_or("KABCAST_MIB", 256),
            ns: std::env::var("KABCAST_NODES")
                .unwrap_or_else(|_| "1,2,4,8".into())
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect(),
            only: std::env::var("KABCAST_STRATEGIES")
                .ok()
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect()),
            topology: Topology::from_env(mbit),
            repeat: env_or("KABCAST_REPEAT", 1).max(1),
        }
    }

    fn wanted(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == name))
    }
}

/// kaagent's planned strategies, whose nodes receive, check, write and forward as its chain's do
/// (the chain meter's speed is their CPU bound in `kasim testbed`).
const KAAGENT_PLANNED: [&str; 5] = ["chain", "chain-oblivious", "ft-chain", "tree", "unicast"];

/// The measurements of the issue; run by `scripts/bcast-testbed.sh` (env: KABCAST_MBIT, KABCAST_MIB,
/// KABCAST_NODES, KABCAST_STRATEGIES, KABCAST_TOPOLOGY, KABCAST_SWITCHES, KABCAST_UPLINK_MBIT,
/// KABCAST_REPEAT, KABCAST_METER_REPEAT).
/// Prints one CSV line per run: `topology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,s_over_b,
/// over_plain,cpu_s,sys_s,retransmits,hop_mbit,uplink_hop_mbit,` and the [`tool_meter::CSV_HEADER`]
/// columns, then [`REPEAT_COLUMNS`], [`HOP_SPREAD_COLUMNS`] and [`tool_meter::SPREAD_HEADER`]'s (each meter's
/// readings' spread, since stop 17), then [`SWARM_SEED`] (`over_plain`: the time over the plain `socat`
/// chain's at the same N; `hop_*`: one hop without tc, and the tools' own speeds, measured before
/// each N; with `KABCAST_REPEAT=R` each tool runs R times at each N, interleaved tool by tool, and
/// `seconds` is the median, `cpu_s`, `sys_s` and `retransmits` the mean per run), then the slow-link
/// case on the flat topology (`slow-*` lines: one host's link at a tenth of the rate; `seconds` is
/// the last node's time, `fast_median` the median of the others).
#[test]
#[ignore = "measurement: run by scripts/bcast-testbed.sh"]
fn measure_testbed() {
    let set = Settings::from_env();
    let (mbit, mib) = (set.mbit, set.mib);
    let max_n = set.ns.iter().copied().max().unwrap_or(1);
    let hops = HopMeter::new(set.topology);
    // kaagent's chain is metered when any of its planned strategies runs (they share its hops).
    let meter_wants = |t: &str| match t {
        "chain" => KAAGENT_PLANNED.iter().any(|s| set.wanted(s)),
        _ => set.wanted(t),
    };
    let metering = ["plain", "udpcast", "multicast", "chain", "swarm"]
        .iter()
        .any(|t| meter_wants(t));
    // The tool meter of the current N's receiver counts (rebuilt when they change: N past four
    // times the cores is metered at N itself).
    let mut tools: Option<((usize, usize), ToolMeter)> = None;
    {
        let tb = Testbed::build(max_n, mbit, &[], set.topology);
        let (image, want) = make_image(&tb, mib);
        let mut agents = tb.start_agents();
        let sb = (mib * MIB) as f64 / (f64::from(mbit) * 1e6 / 8.0);
        // On a line of its own, after libtest's "test … ...".
        println!(
            "\ntopology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,s_over_b,over_plain,cpu_s,sys_s,retransmits,hop_mbit,uplink_hop_mbit,{},{REPEAT_COLUMNS},{HOP_SPREAD_COLUMNS},{},swarm_seed",
            tool_meter::CSV_HEADER,
            tool_meter::SPREAD_HEADER
        );
        let topo = set.topology.csv();
        let mut cpu = CpuMeter::start();
        let mut retransmits = tb.retransmits();
        // One run's CPU seconds and retransmissions since the last call.
        let mut lap = |cpu: &mut CpuMeter, t: f64| {
            let d = cpu.lap();
            let now = tb.retransmits();
            let r = Run {
                seconds: t,
                busy: d.busy,
                sys: d.kernel,
                steal: d.steal,
                switches: d.switches,
                waiting: d.waiting,
                own_wait: d.own_wait,
                softirqd: d.softirqd,
                retransmits: now - retransmits,
            };
            retransmits = now;
            r
        };
        let line = |plain: f64,
                    n: usize,
                    what: &str,
                    runs: &[Run],
                    (hop, spreads): &(String, String)| {
            let row = Row::of(runs);
            println!(
                "{topo},{mbit},{mib},{n},{what},{:.3},{:.3},{:.3},{:.2},{:.2},{:.0},{hop},{},{:.3},{:.3},{:.2},{:.0},{:.2},{:.3},{:.2},{max_n},{spreads},{SWARM_SEED}",
                row.median,
                row.median / sb,
                row.median / plain,
                row.busy,
                row.sys,
                row.retransmits,
                runs.len(),
                row.min,
                row.max,
                row.steal,
                row.switches,
                row.waiting,
                row.own_wait,
                row.softirqd,
            );
        };
        let mut plain = f64::NAN;
        let mut hop = (String::new(), String::new());
        for &n in &set.ns {
            let h = hops.measure();
            let metered = std::time::Instant::now();
            let counts = tool_meter::meter_counts(hops.cores, n);
            if metering && tools.as_ref().is_none_or(|(c, _)| *c != counts) {
                drop(tools.take()); // the previous bed first: its namespaces and agents go
                tools = Some((counts, ToolMeter::new(hops.cores, n, meter_wants)));
            }
            let (speeds, tool_spreads) = tools.as_ref().map(|(_, t)| t).map_or_else(
                || {
                    (
                        ",".repeat(tool_meter::CSV_HEADER.matches(',').count()),
                        ",".repeat(tool_meter::SPREAD_HEADER.matches(',').count()),
                    )
                },
                |t| {
                    let s = t.measure();
                    (s.csv(), s.spread_csv())
                },
            );
            eprintln!(
                "N = {n}: tools metered in {:.1} s",
                metered.elapsed().as_secs_f64()
            );
            hop = (
                format!("{:.0},{:.0},{speeds}", h.flat.0 * 8e-6, h.uplink.0 * 8e-6),
                format!(
                    "{},{},{tool_spreads}",
                    spread_field(h.flat.1),
                    spread_field(h.uplink.1)
                ),
            );
            // Every tool `set.repeat` times, interleaved tool by tool (a slow spell of the machine
            // falls on every tool alike); one row per tool, in the order first run.
            let mut rows: Vec<(String, Vec<Run>)> = Vec::new();
            let mut record = |name: &str, run: Run| match rows.iter_mut().find(|(w, _)| w == name) {
                Some((_, runs)) => runs.push(run),
                None => rows.push((name.to_string(), vec![run])),
            };
            for _ in 0..set.repeat {
                if set.wanted("plain") {
                    cpu.lap();
                    let t = tb.plain_chain(&image, n).as_secs_f64();
                    check_and_remove(&tb, n, "plain.img", &want);
                    record("plain-socat-chain", lap(&mut cpu, t));
                }
                if set.wanted("udpcast") {
                    cpu.lap();
                    match tb.udpcast(&image, n) {
                        Some(t) => {
                            check_and_remove(&tb, n, "udpcast.img", &want);
                            record("udpcast", lap(&mut cpu, t.as_secs_f64()));
                        }
                        None => record("udpcast-no-finish", lap(&mut cpu, f64::NAN)),
                    }
                }
                for (name, strategy, order) in [
                    ("chain", Strategy::Chain, Order::TopologyAware),
                    ("chain-oblivious", Strategy::Chain, Order::SwitchOblivious),
                    (
                        "ft-chain",
                        Strategy::FaultTolerantChain,
                        Order::TopologyAware,
                    ),
                    ("tree", Strategy::Tree { arity: 2 }, Order::TopologyAware),
                    ("unicast", Strategy::Unicast, Order::TopologyAware),
                    ("multicast", Strategy::Multicast, Order::TopologyAware),
                    ("swarm", Strategy::Swarm, Order::TopologyAware),
                ] {
                    // Both orders are the same on one switch.
                    let same = order == Order::SwitchOblivious && set.topology == Topology::Flat;
                    if !set.wanted(name) || same {
                        continue;
                    }
                    cpu.lap();
                    let how = (strategy, order);
                    let r = run_ordered(&tb, &agents, n, &image, &want, how, options());
                    assert!(r.outcomes.failures().is_empty(), "{name}: {:?}", r.outcomes);
                    record(name, lap(&mut cpu, last_written(&r)));
                }
            }
            plain = rows
                .iter()
                .find(|(w, _)| w == "plain-socat-chain")
                .map_or(f64::NAN, |(_, runs)| Row::of(runs).median);
            for (name, runs) in &rows {
                line(plain, n, name, runs, &hop);
            }
        }
        if max_n >= 3 && set.wanted("kill") {
            let victim = max_n / 2;
            cpu.lap();
            let r = run_killing(&tb, &mut agents, max_n, &image, &want, victim);
            let ok = r.outcomes.ok_nodes().len();
            assert_eq!(ok, max_n - 1, "{:?}", r.outcomes);
            let run = lap(&mut cpu, last_written(&r));
            let what = format!("ft-chain-kill-host-{victim}");
            line(plain, max_n, &what, &[run], &hop);
        }
    }
    if max_n >= 3 && set.wanted("slow") && set.topology == Topology::Flat {
        measure_slow_link(mbit, mib, max_n);
    }
}

/// The columns after the tool meter's: the runs a row summarises, the fastest and slowest, and
/// (since stop 16) the mean per run of: the CPU seconds the hypervisor took from this machine's
/// virtual processors (`steal` in `/proc/stat`: another guest's work on the same physical cores),
/// the machine's context switches, the seconds during which some task waited for a processor
/// (`/proc/pressure/cpu`, "some"), the seconds this process's threads (the deployer: kaagent's
/// server side, its multicast sender and swarm seed) waited for one (`/proc/self/task/*/schedstat`),
/// and the CPU seconds of the `ksoftirqd` threads (network work the interrupts' own time could not
/// finish, deferred to a thread that waits for a processor like any other); then the hosts of the
/// testbed (every N runs on one bed of the largest N's hosts: udpcast's datagrams reach them all).
const REPEAT_COLUMNS: &str = "repeats,seconds_min,seconds_max,steal_s,context_switches,cpu_waiting_s,server_wait_s,ksoftirqd_s,bed_hosts";

/// The last columns (since stop 17): the spread of the hop meter's readings (plain hops, hops across
/// an uplink), then [`tool_meter::SPREAD_HEADER`]'s: every meter reads `KABCAST_METER_REPEAT` times
/// (default 3) before each N, its columns above are the readings' median, and these say how far the
/// readings spread, `100 · (max − min) / median`.
const HOP_SPREAD_COLUMNS: &str = "hop_spread_pct,uplink_hop_spread_pct";

/// The last column (since stop 18): what kaagent's swarm nodes ask the seed for, `stripes` (each
/// node its own stripe of chunks; `kasim testbed` reads a row without the column as the earlier
/// rule, any chunk its peers lack).
const SWARM_SEED: &str = "stripes";

/// One run of a tool: its time (NaN: it did not finish), the machine's busy, kernel and stolen CPU
/// seconds and context switches over it, and the hosts' TCP retransmissions.
#[derive(Clone, Copy)]
struct Run {
    seconds: f64,
    busy: f64,
    sys: f64,
    steal: f64,
    switches: f64,
    waiting: f64,
    own_wait: f64,
    softirqd: f64,
    retransmits: u64,
}

/// A tool's runs at one N summarised: the median time (of the two middle runs for an even count;
/// NaN if a run did not finish), the fastest and slowest, and the mean CPU seconds and
/// retransmissions per run.
struct Row {
    median: f64,
    min: f64,
    max: f64,
    busy: f64,
    sys: f64,
    steal: f64,
    switches: f64,
    waiting: f64,
    own_wait: f64,
    softirqd: f64,
    retransmits: f64,
}

impl Row {
    fn of(runs: &[Run]) -> Row {
        let mut t: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
        t.sort_by(f64::total_cmp);
        let count = runs.len().max(1) as f64;
        let mean = |f: fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / count;
        let at = |i: usize| t.get(i).copied().unwrap_or(f64::NAN);
        Row {
            median: median(&t),
            min: at(0),
            max: at(t.len().saturating_sub(1)),
            busy: mean(|r| r.busy),
            sys: mean(|r| r.sys),
            steal: mean(|r| r.steal),
            switches: mean(|r| r.switches),
            waiting: mean(|r| r.waiting),
            own_wait: mean(|r| r.own_wait),
            softirqd: mean(|r| r.softirqd),
            retransmits: mean(|r| r.retransmits as f64),
        }
    }
}

/// Checks the `file` every one of the first `n` hosts wrote, then removes it.
fn check_and_remove(tb: &Testbed, n: usize, file: &str, want: &str) {
    let paths: Vec<_> = (0..n).map(|i| tb.host_dir(i).join(file)).collect();
    for (i, (path, got)) in paths.iter().zip(file_hashes(&paths)).enumerate() {
        assert_eq!(got, want, "{file} host {i}");
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

/// Machine-wide CPU time from `/proc/stat`: all busy time, the kernel's share (system, irq,
/// softirq) and the time stolen by the hypervisor, in seconds, and context switches, since the last
/// lap. The testbed's links, bridge and copies all cost CPU here, so this shows when a run is
/// CPU-bound rather than link-bound, and when the machine itself had less processor than usual.
struct CpuMeter {
    last: CpuStat,
}

/// Counters of `/proc/stat` (see [`CpuMeter`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct CpuStat {
    busy: f64,
    kernel: f64,
    steal: f64,
    switches: f64,
    waiting: f64,
    own_wait: f64,
    softirqd: f64,
}

impl CpuMeter {
    fn start() -> CpuMeter {
        CpuMeter { last: cpu_now() }
    }

    fn lap(&mut self) -> CpuStat {
        let now = cpu_now();
        let d = CpuStat {
            busy: now.busy - self.last.busy,
            kernel: now.kernel - self.last.kernel,
            steal: now.steal - self.last.steal,
            switches: now.switches - self.last.switches,
            waiting: now.waiting - self.last.waiting,
            own_wait: now.own_wait - self.last.own_wait,
            softirqd: now.softirqd - self.last.softirqd,
        };
        self.last = now;
        d
    }
}

/// The counters since boot.
fn cpu_now() -> CpuStat {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let own_wait = std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .map(|t| run_delay(&read(&t.path().join("schedstat").to_string_lossy())))
                .sum()
        })
        .unwrap_or(0.0);
    // The kernel's threads: `ksoftirqd/<cpu>`, utime and stime in clock ticks (USER_HZ).
    let softirqd = std::fs::read_dir("/proc")
        .map(|procs| {
            procs
                .filter_map(Result::ok)
                .filter(|p| {
                    p.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .map(|p| {
                    thread_ticks(
                        &read(&p.path().join("stat").to_string_lossy()),
                        "ksoftirqd/",
                    )
                })
                .sum::<f64>()
        })
        .unwrap_or(0.0);
    CpuStat {
        waiting: pressure_some(&read("/proc/pressure/cpu")),
        own_wait,
        softirqd,
        ..parse_stat(&read("/proc/stat"))
    }
}

/// A process's CPU seconds (utime + stime) from its `/proc/<pid>/stat` when its name starts with
/// `prefix`, else 0.
fn thread_ticks(stat: &str, prefix: &str) -> f64 {
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return 0.0;
    };
    if !stat[open + 1..close].starts_with(prefix) {
        return 0.0;
    }
    // After the name: state is field 3, utime and stime are fields 14 and 15.
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let at = |i: usize| {
        rest.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (at(11) + at(12)) / 100.0
}

/// Seconds some task waited for a processor, from `/proc/pressure/cpu` (`some … total=µs`).
fn pressure_some(text: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with("some "))
        .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |us| us * 1e-6)
}

/// Seconds a thread waited on a run queue, from its `schedstat` (`run_ns wait_ns slices`).
fn run_delay(text: &str) -> f64 {
    text.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |ns| ns * 1e-9)
}

/// The counters of a `/proc/stat` text (USER_HZ = 100 on Linux): busy, kernel and stolen seconds of
/// all CPUs (busy includes what was stolen, as before), and the `ctxt` line.
fn parse_stat(stat: &str) -> CpuStat {
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
    let switches = stat
        .lines()
        .find_map(|l| l.strip_prefix("ctxt "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    CpuStat {
        busy: at(0) + at(1) + kernel + at(7),
        kernel,
        steal: at(7),
        switches,
        ..CpuStat::default()
    }
}

#[test]
fn the_cpu_meter_reads_busy_kernel_stolen_time_and_context_switches() {
    let stat = "cpu  1000 50 200 9000 10 5 15 30 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2\nctxt 123456\nbtime 1\n";
    let s = parse_stat(stat);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(close(s.busy, 13.0), "{s:?}");
    assert!(close(s.kernel, 2.2), "{s:?}");
    assert!(close(s.steal, 0.3), "{s:?}");
    assert_eq!(s.switches, 123_456.0);
    let psi = "some avg10=8.57 avg60=8.47 avg300=6.26 total=43449012\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
    assert!(close(pressure_some(psi), 43.449012));
    assert!(close(run_delay("5000 3280038 1\n"), 0.003280038));
    assert_eq!((pressure_some(""), run_delay("")), (0.0, 0.0));
    let ksoftirqd = "14 (ksoftirqd/0) S 2 0 0 0 -1 69238848 0 0 0 0 300 500 0 0 20 0 1 0 3 0 0";
    assert!(close(thread_ticks(ksoftirqd, "ksoftirqd/"), 8.0));
    assert_eq!(
        thread_ticks(&ksoftirqd.replace("ksoftirqd/0", "bash"), "ksoftirqd/"),
        0.0
    );
    assert_eq!(parse_stat(""), CpuStat::default());
}
