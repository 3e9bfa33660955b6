//! How fast the host was around a lab run: the processor time the host's hypervisor took from it
//! (steal, `/proc/stat`) over the run's clock and over the deployment, and a fixed piece of work timed
//! on one core just before the clock started. This machine is itself a VM: the same guest work has
//! cost one run 15% more host processor time than the next (docs/PERFORMANCE.md, window P's first UEFI
//! run), which nothing else in the report shows.

use serde::Serialize;
use std::time::Instant;

/// `/proc/stat`'s unit (`USER_HZ`, 100 on every Linux architecture the lab runs on).
const TICKS_PER_SECOND: f64 = 100.0;
/// The reference work: this many steps of a pseudo-random walk over [`REFERENCE_WORDS`] (about 0.5 s on
/// the lab's host in the debug build, the one CI runs; only runs of one build compare).
pub const REFERENCE_STEPS: u64 = 6_000_000;
/// The reference walk's table (16 MiB: more than a core's caches, as TCG's code and guest memory).
const REFERENCE_WORDS: usize = 4 << 20;

/// The host's speed around one run (in every `kalab e2e` report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct HostSpeed {
    /// The fixed reference work timed on one processor just before the clock started.
    pub reference: Option<Reference>,
    /// The same work on every processor at once, right after (means over the threads): the run keeps
    /// every processor busy, and processors that share a core or a cache slow each other down.
    pub reference_all: Option<Reference>,
    /// Processor seconds stolen from the host (all its processors) over the run's clock.
    pub steal_seconds: Option<f64>,
    /// The same over the `kadeploy3` run alone.
    pub deploy_steal_seconds: Option<f64>,
    /// `steal_seconds` over the run's clock times the host's processors (0 to 1).
    pub steal_share: Option<f64>,
}

/// One timing of the reference work ([`reference`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Reference {
    /// Wall-clock seconds it took.
    pub seconds: f64,
    /// Processor seconds the thread ran (`/proc/thread-self/schedstat`): the work's cost on this
    /// host at this moment, whatever else ran.
    pub cpu_seconds: Option<f64>,
    /// Seconds the thread was ready but waited for a processor (the same file).
    pub wait_seconds: Option<f64>,
}

/// A point on the run's clock: the instant and the host's stolen ticks then.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// When the clock started.
    pub started: Instant,
    steal: Option<u64>,
}

impl Clock {
    /// Starts a clock now.
    pub fn start() -> Clock {
        Clock {
            steal: steal_ticks(),
            started: Instant::now(),
        }
    }

    /// Wall seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Stolen processor seconds since the start (`None` without `/proc/stat`'s steal column).
    pub fn steal_seconds(&self) -> Option<f64> {
        let now = steal_ticks()?;
        Some(now.checked_sub(self.steal?)? as f64 / TICKS_PER_SECOND)
    }
}

/// The host's stolen ticks so far (`/proc/stat`'s first line, 8th value).
pub fn steal_ticks() -> Option<u64> {
    steal_of(&crate::quiet::cpu_line()?)
}

/// The steal column of a `/proc/stat` `cpu` line: user nice system idle iowait irq softirq steal.
fn steal_of(line: &str) -> Option<u64> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    fields.nth(7)?.parse().ok()
}

/// The host's processors, as the scheduler sees them.
pub fn processors() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The share of `processors` processors stolen over `seconds` of wall clock.
pub fn steal_share(steal_seconds: f64, seconds: f64, processors: usize) -> Option<f64> {
    (seconds > 0.0 && processors > 0).then(|| steal_seconds / (seconds * processors as f64))
}

/// Times the fixed reference work ([`REFERENCE_STEPS`] steps of a walk over a table: integer work,
/// branches and memory reads and writes, as an emulator's) on the calling thread.
pub fn reference() -> Reference {
    reference_of(REFERENCE_STEPS)
}

/// [`reference`] on every processor at once: the threads' mean wall, processor and wait seconds.
pub fn reference_all() -> Option<Reference> {
    reference_on(processors(), REFERENCE_STEPS)
}

/// `steps` of the reference walk on `threads` threads at once; their means.
fn reference_on(threads: usize, steps: u64) -> Option<Reference> {
    let handles: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(move || reference_of(steps)))
        .collect();
    let all: Vec<Reference> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    if all.is_empty() || all.len() != threads {
        return None;
    }
    let n = all.len() as f64;
    let mean = |f: fn(&Reference) -> Option<f64>| -> Option<f64> {
        Some(all.iter().map(f).sum::<Option<f64>>()? / n)
    };
    Some(Reference {
        seconds: all.iter().map(|r| r.seconds).sum::<f64>() / n,
        cpu_seconds: mean(|r| r.cpu_seconds),
        wait_seconds: mean(|r| r.wait_seconds),
    })
}

/// Times `steps` of the reference walk.
fn reference_of(steps: u64) -> Reference {
    let mut table: Vec<u32> = (0..REFERENCE_WORDS as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let before = thread_schedstat();
    let t0 = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..steps {
        // xorshift64: the next place, then a read-modify-write there.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x as usize) % REFERENCE_WORDS;
        let v = table[i];
        table[i] = if v & 1 == 0 {
            v >> 1
        } else {
            v.wrapping_mul(3).wrapping_add(1)
        };
    }
    std::hint::black_box(&table);
    let seconds = t0.elapsed().as_secs_f64();
    let after = thread_schedstat();
    let delta = before.zip(after).map(|((r0, w0), (r1, w1))| {
        (
            r1.saturating_sub(r0) as f64 / 1e9,
            w1.saturating_sub(w0) as f64 / 1e9,
        )
    });
    Reference {
        seconds,
        cpu_seconds: delta.map(|d| d.0),
        wait_seconds: delta.map(|d| d.1),
    }
}

/// The calling thread's (run, wait) nanoseconds.
fn thread_schedstat() -> Option<(u64, u64)> {
    schedstat_of(&std::fs::read_to_string("/proc/thread-self/schedstat").ok()?)
}

/// A `schedstat` line's first two fields: nanoseconds run, nanoseconds waited for a processor.
fn schedstat_of(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_whitespace();
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steal_column_is_the_eighth_value_of_the_cpu_line() {
        assert_eq!(
            steal_of("cpu  1291846 0 296029 904422 5074 0 33954 3617 0 0"),
            Some(3617)
        );
        // Old kernels without the column, a processor's own line, another line: nothing.
        assert_eq!(steal_of("cpu  1 2 3 4 5 6 7"), None);
        assert_eq!(steal_of("cpu0 1 2 3 4 5 6 7 8 0 0"), None);
        assert_eq!(steal_of("intr 1 2 3 4 5 6 7 8 9"), None);
        assert_eq!(steal_of("cpu  1 2 3 4 5 6 7 x"), None);
    }

    #[test]
    fn schedstat_gives_run_and_wait_nanoseconds() {
        assert_eq!(
            schedstat_of("1500000000 250000 42\n"),
            Some((1_500_000_000, 250_000))
        );
        assert_eq!(schedstat_of("15"), None);
        assert_eq!(schedstat_of(""), None);
    }

    #[test]
    fn the_steal_share_is_over_every_processor() {
        // 2 stolen processor seconds over a 50 s run on 2 processors: 2%.
        let share = steal_share(2.0, 50.0, 2).unwrap();
        assert!((share - 0.02).abs() < 1e-12, "{share}");
        assert_eq!(steal_share(1.0, 0.0, 2), None);
    }

    /// The report's field names, as `scripts/lab-window-replay.py` reads them.
    #[test]
    fn the_report_names_the_reference_and_the_steal() {
        let host = HostSpeed {
            reference: Some(Reference {
                seconds: 0.52,
                cpu_seconds: Some(0.5),
                wait_seconds: Some(0.02),
            }),
            reference_all: None,
            steal_seconds: Some(1.5),
            deploy_steal_seconds: Some(1.25),
            steal_share: Some(0.01),
        };
        let json = serde_json::to_value(host).unwrap();
        assert_eq!(json["reference"]["cpu_seconds"], 0.5);
        assert_eq!(json["reference"]["seconds"], 0.52);
        assert_eq!(json["reference"]["wait_seconds"], 0.02);
        assert_eq!(json["steal_seconds"], 1.5);
        assert_eq!(json["deploy_steal_seconds"], 1.25);
        assert_eq!(json["steal_share"], 0.01);
        // Not measured: null, not a zero that reads as a fast host.
        let none = serde_json::to_value(HostSpeed::default()).unwrap();
        assert!(none["reference"].is_null() && none["steal_seconds"].is_null());
    }

    #[test]
    fn the_clock_reads_this_hosts_steal() {
        let clock = Clock::start();
        // This host's /proc/stat has the column (Linux 2.6.11 and later): the clock reads it.
        let steal = clock.steal_seconds().unwrap();
        assert!(steal >= 0.0, "{steal}");
        assert!(clock.seconds() >= 0.0);
    }

    #[test]
    fn twice_the_reference_work_costs_about_twice_the_processor_time() {
        // The reference's processor time measures the work: it grows with the passes, and the thread
        // ran no longer than the wall clock (allowing for the reading's granularity).
        let one = reference_of(REFERENCE_STEPS / 8);
        let two = reference_of(REFERENCE_STEPS / 4);
        let (c1, c2) = (one.cpu_seconds.unwrap(), two.cpu_seconds.unwrap());
        assert!(c1 > 0.0 && c2 > 1.3 * c1, "{one:?} {two:?}");
        assert!(c2 <= two.seconds + 0.01, "{two:?}");
        assert!(two.wait_seconds.unwrap() >= 0.0);
    }

    #[test]
    fn the_reference_on_every_processor_is_the_threads_mean() {
        let both = reference_on(2, REFERENCE_STEPS / 8).unwrap();
        let one = reference_of(REFERENCE_STEPS / 8);
        // Each thread did one thread's work: about the same processor time (two threads may share a
        // core, or wait for one: within a factor of 3), never none.
        let (cb, c1) = (both.cpu_seconds.unwrap(), one.cpu_seconds.unwrap());
        assert!(cb > c1 / 3.0 && cb < 3.0 * c1, "{both:?} {one:?}");
        assert!(both.seconds >= cb - 0.01, "{both:?}");
    }
}
