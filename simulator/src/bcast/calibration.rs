//! Calibration of the broadcast models against the namespace testbed of `hal`
//! (`scripts/bcast-testbed.sh`: kaagent agents, udpcast and socat in network namespaces, tc-limited
//! veth links, flat or two-level, receivers writing to tmpfs, 2 cores shared with other builds): every
//! measured row, predicted by [`predict`](super::testbed::predict) from the testbed's parameters
//! and the host speed the script measured before the runs (nothing fitted), must be within 10%,
//! except the misses listed in [`MISSES`] with the bound they are held to and why.
//!
//! The rows are the script's output, kept in `calibration/*.csv` (columns `topology,switches,uplink_mbit,mbit,mib,n,strategy,
//! seconds,hop_mbit,uplink_hop_mbit`): development runs on 2026-12-05 17:15–17:46 at load 5–17
//! ([`RATE_200_64MIB`], [`GIGABIT_128MIB`]), and the quiet-window run of 18:15–18:29 (stop 13's
//! table in docs/PERFORMANCE.md: [`QUIET_200_64MIB`], [`QUIET_GIGABIT_256MIB`]). None of them has
//! the tool columns (the host's speed through multicast, udpcast and the plain chain measured before
//! each N): those tools are predicted from the TCP hop speed here, as `kasim testbed` does for an
//! old CSV.

use super::testbed::predict;
use crate::kasim::testbed::parse_row;

mod repeatability;

/// The columns of the tables below.
const HEADER: &str =
    "topology,switches,uplink_mbit,mbit,mib,n,strategy,seconds,hop_mbit,uplink_hop_mbit";

/// 200 Mbit/s, 64 MiB, N = 2, 4, 8, 16 (flat N = 16 left out: the host's speed was measured during a
/// burst of other builds, 1,350 Mbit/s against 3,946 for the two-level run).
const RATE_200_64MIB: &str = include_str!("calibration/rate_200_64mib.csv");

/// 1 Gbit/s, 128 MiB, N = 2, 4, 8, 16.
const GIGABIT_128MIB: &str = include_str!("calibration/gigabit_128mib.csv");

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
const QUIET_200_64MIB: &str = include_str!("calibration/quiet_200_64mib.csv");

/// Stop 13's quiet-window run (1 Gbit/s, 256 MiB; load 1–14, another helper's lab starting).
const QUIET_GIGABIT_256MIB: &str = include_str!("calibration/quiet_gigabit_256mib.csv");

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
const FINAL_200_MBIT: &str = include_str!("calibration/final_200_mbit.csv");

/// This stop's quiet-window run, 1 Gbit/s, 256 MiB (with the tool columns).
const FINAL_GIGABIT: &str = include_str!("calibration/final_gigabit.csv");

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
    check_with(table, &|topology, mbit, n, strategy| {
        misses
            .iter()
            .find(|m| m.0 == topology && f64::from(m.1) == mbit && m.2 == n && m.3 == strategy)
            .map(|m| m.4)
    })
}

/// [`check`] with the misses' bounds given by `miss(topology, mbit, n, strategy)` (`None`: 10%).
fn check_with(table: &str, miss: &dyn Fn(&str, f64, usize, &str) -> Option<f64>) -> usize {
    let own = table.lines().next().filter(|l| l.starts_with("topology,"));
    let header: Vec<String> = own.unwrap_or(HEADER).split(',').map(String::from).collect();
    let mut within = 0;
    for line in table.lines().skip(usize::from(own.is_some())) {
        let fields: Vec<&str> = line.split(',').collect();
        let (run, measured) = parse_row(&header, &fields, false).expect("a testbed row");
        let predicted = predict(&run);
        let error = predicted / measured - 1.0;
        let bound = miss(fields[0], run.mbit, run.n, fields[6]).unwrap_or(0.10);
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
const WINDOW_B_200_MBIT: &str = include_str!("calibration/window_b_200_mbit.csv");

/// Stop 15's quiet-window run (window B), 1 Gbit/s, 256 MiB.
const WINDOW_B_GIGABIT: &str = include_str!("calibration/window_b_gigabit.csv");

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

/// A calibration run's file (`calibration/<name>`), read when the test runs.
fn calibration_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/bcast/calibration")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The misses of a `misses` file: `topology,mbit,n,strategy,bound,reason` lines (a `#` line is a
/// comment), each the bound its row is held to and why it misses.
fn misses_of(text: &str) -> Vec<(String, f64, usize, String, f64)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.starts_with("topology,"))
        .map(|l| {
            let f: Vec<&str> = l.splitn(6, ',').collect();
            assert!(
                f.len() == 6 && !f[5].trim().is_empty(),
                "a miss needs its reason: {l}"
            );
            let num = |s: &str| s.trim().parse::<f64>().expect("a number");
            (
                f[0].to_string(),
                num(f[1]),
                num(f[2]) as usize,
                f[3].to_string(),
                num(f[4]),
            )
        })
        .collect()
}

/// A window run's `tables` (calibration files) against its misses file: every row within 10% but
/// the listed misses, each within its own bound, and every listed miss a miss (the list is exact, so
/// the rows within 10% are the rows less the list). A miss whose reason starts with `noise:` says its
/// row's own repeats spread wider than ±10% of their median (`seconds_min`, `seconds_max`): no
/// prediction can be within 10% of every draw of such a row, and the claim is checked; one starting
/// with `unrepeatable: FILE` says the row moved against the stored run FILE while its tool's meter
/// did not (checked by [`repeatability::check_claims`]). Returns the rows within 10% and the rows.
fn check_window_run(tables: &[String], misses_file: &str) -> (usize, usize) {
    let text = calibration_file(misses_file);
    let misses = misses_of(&text);
    let miss = |topology: &str, mbit: f64, n: usize, strategy: &str| {
        misses
            .iter()
            .find(|m| m.0 == topology && m.1 == mbit && m.2 == n && m.3 == strategy)
            .map(|m| m.4)
    };
    let rows: usize = tables
        .iter()
        .map(|t| t.lines().filter(|l| !l.starts_with("topology,")).count())
        .sum();
    let within: usize = tables.iter().map(|t| check_with(t, &miss)).sum();
    assert_eq!(
        within + misses.len(),
        rows,
        "every miss listed, and only misses"
    );
    for claim in noise_claims(&text) {
        let spread = tables
            .iter()
            .find_map(|t| repeat_spread(t, &claim))
            .unwrap_or_else(|| panic!("no row for the noise claim {claim:?}"));
        assert!(
            spread > 0.2,
            "{claim:?}: its repeats spread {:.1}% of their median, not more than ±10%",
            spread * 100.0
        );
    }
    repeatability::check_claims(&text, tables);
    (within, rows)
}

/// The misses of a misses file whose reason starts with `noise:` (see [`check_window_run`]):
/// `(topology, mbit, n, strategy)`.
fn noise_claims(text: &str) -> Vec<(String, f64, usize, String)> {
    claims(text, "noise:")
        .into_iter()
        .map(|(row, _)| row)
        .collect()
}

/// A row of a testbed table: `(topology, mbit, n, strategy)`.
type Row = (String, f64, usize, String);

/// The misses of a misses file whose reason starts with `prefix`: their rows and the rest of the
/// reason.
fn claims<'a>(text: &'a str, prefix: &str) -> Vec<(Row, &'a str)> {
    misses_of(text)
        .into_iter()
        .zip(
            text.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .filter(|l| !l.starts_with("topology,")),
        )
        .filter_map(|((topology, mbit, n, strategy, _), line)| {
            let reason = line.splitn(6, ',').nth(5)?.trim_start();
            Some(((topology, mbit, n, strategy), reason.strip_prefix(prefix)?))
        })
        .collect()
}

/// `(seconds_max − seconds_min) / seconds` of the row of `table` that `claim` names; `None` when the
/// table has no such row or no repeat columns.
fn repeat_spread(table: &str, claim: &(String, f64, usize, String)) -> Option<f64> {
    let [t, lo, hi] = row_values(table, claim, ["seconds", "seconds_min", "seconds_max"])?;
    Some((hi - lo) / t)
}

/// The values of the columns `names` in the row of `table` that `claim` (topology, mbit, n, strategy)
/// names; `None` when the table has no such row, or a column is missing or not a number.
fn row_values<const K: usize>(
    table: &str,
    claim: &(String, f64, usize, String),
    names: [&str; K],
) -> Option<[f64; K]> {
    let header: Vec<&str> = table.lines().next()?.split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (mbit, n, strategy) = (col("mbit")?, col("n")?, col("strategy")?);
    let wanted: Vec<usize> = names.iter().map(|c| col(c)).collect::<Option<_>>()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        let same = f.first() == Some(&claim.0.as_str())
            && num(mbit) == Some(claim.1)
            && num(n) == Some(claim.2 as f64)
            && f.get(strategy) == Some(&claim.3.as_str());
        if !same {
            return None;
        }
        let mut out = [0.0; K];
        for (o, &i) in out.iter_mut().zip(&wanted) {
            *o = num(i)?;
        }
        Some(out)
    })
}

/// Stop 16's quiet-window run (window B, 2026-12-06 05:02–05:24 UTC, both rates and topologies, N = 2 to 16,
/// every strategy, with kaagent's chain metered: `chain_*` columns), and its misses with their reasons
/// (`stop16_misses.csv`; docs/PERFORMANCE.md "Stop 16's run"). Every listed miss must still miss: the list
/// is exact, so the count of rows within 10% is the rows less the list.
#[test]
fn the_models_predict_stop_16s_window_b_run() {
    let tables = ["stop16_200_mbit.csv", "stop16_gigabit.csv"].map(calibration_file);
    let (within, rows) = check_window_run(&tables, "stop16_misses.csv");
    eprintln!("stop 16: {within} of {rows} rows within 10%");
    assert_eq!((within, rows), (96, 120));
}

/// Stop 17's quiet-window run (window B, 2026-12-06 08:17–08:52 UTC; docs/PERFORMANCE.md "Stop 17's
/// run"): every row the median of its repeats (`repeats`, `seconds_min`, `seconds_max`), every meter the
/// median of its repeated readings (the `*_spread_pct` columns), in `stop17_gigabit.csv` (1 Gbit/s,
/// both topologies, N = 2 to 16) and `stop17_200_mbit.csv` (N = 16: plain, udpcast, chain, swarm in the
/// window; N = 2 to 8, every strategy, right after it); misses with their
/// bounds and reasons in `stop17_misses.csv` (a `noise:` reason checked against the row's repeats).
#[test]
fn the_models_predict_stop_17s_window_b_run() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bcast/calibration");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the calibration directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("stop17_") && n.ends_with(".csv") && n != "stop17_misses.csv")
        .collect();
    names.sort();
    assert!(
        names.iter().any(|n| n == "stop17_gigabit.csv"),
        "the 1 Gbit/s half: {names:?}"
    );
    let tables: Vec<String> = names.iter().map(|n| calibration_file(n)).collect();
    let (within, rows) = check_window_run(&tables, "stop17_misses.csv");
    eprintln!("stop 17 ({names:?}): {within} of {rows} rows within 10%");
    // 1 Gbit/s 52 of 60; 200 Mbit/s N = 16 (plain, udpcast, chain, swarm) 5 of 8; 200 Mbit/s N = 2 to 8
    // (every strategy, measured after the window, 09:05-09:17 UTC) 45 of 45.
    assert_eq!((within, rows), (102, 113));
}

/// Stop 18's striped swarm (each node asks the seed for its own stripe; `swarm_seed` column), on
/// its own meter (`swarm_*` columns), both rates and topologies, N = 2 to 16, 3 runs each, in
/// `stop18_swarm.csv`; misses in `stop18_misses.csv`.
#[test]
fn the_models_predict_stop_18s_striped_swarm() {
    let table = calibration_file("stop18_swarm.csv");
    assert!(table.lines().skip(1).all(|l| l.ends_with(",stripes")));
    let (within, rows) = check_window_run(&[table], "stop18_misses.csv");
    assert_eq!((within, rows), (13, 16));
}

/// Stop 19's N = 16 rows (2026-12-06 13:14–13:33 UTC): every strategy of the 120-row set, both rates
/// and topologies, 3 runs each, the tool meter at 2 and 16 receivers (since stop 19 a row past four
/// times the cores is metered at its own N, not extrapolated to), in `stop19_gigabit_n16.csv` and
/// `stop19_200_mbit_n16.csv`; misses in `stop19_misses.csv` (kaagent's hops CPU-bound on 1 Gbit/s links
/// take longer than its meter on 10 Gbit/s links says, throttling costing CPU: `stop19_link_rate.csv`,
/// the chain at N = 16 on 1, 2, 5 and 10 Gbit/s links).
#[test]
fn the_models_predict_stop_19s_rows_at_16_nodes() {
    let tables = ["stop19_gigabit_n16.csv", "stop19_200_mbit_n16.csv"].map(calibration_file);
    let metered_at_16 = |t: &String| {
        let mut lines = t.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let large = header.iter().position(|h| *h == "meter_large");
        lines.all(|l| large.is_some_and(|c| l.split(',').nth(c) == Some("16")))
    };
    assert!(
        tables.iter().all(metered_at_16),
        "every row metered at 16 receivers (meter_large)"
    );
    let (within, rows) = check_window_run(&tables, "stop19_misses.csv");
    assert_eq!((within, rows), (24, 30));
}

/// Stop 19's 120-row set in one run (2026-12-06 13:42–14:30 UTC, both rates and topologies, N = 16, 8, 4
/// and 2, every strategy, 3 runs per row and 3 readings per meter, the meter at the row's N past 8), in
/// `stop19_full_gigabit.csv` and `stop19_full_200_mbit.csv`; misses in `stop19_full_misses.csv` (four of
/// them from meters disturbed before flat N = 16 at 1 Gbit/s, their readings 47–112% apart).
#[test]
fn the_models_predict_stop_19s_full_run() {
    let tables = ["stop19_full_gigabit.csv", "stop19_full_200_mbit.csv"].map(calibration_file);
    let (within, rows) = check_window_run(&tables, "stop19_full_misses.csv");
    assert_eq!((within, rows), (102, 120));
}

/// Stop 20's 120-row set in one run (2026-12-06 16:00–16:47 UTC, the same command and broadcast tools as
/// stop 19's), in `stop20_full_gigabit.csv` and `stop20_full_200_mbit.csv`; misses in
/// `stop20_full_misses.csv`, the plain chain's N = 16 rows checked unrepeatable against stop 19's.
#[test]
fn the_models_predict_stop_20s_full_run() {
    let tables = ["stop20_full_gigabit.csv", "stop20_full_200_mbit.csv"].map(calibration_file);
    let (within, rows) = check_window_run(&tables, "stop20_full_misses.csv");
    assert_eq!((within, rows), (106, 120));
}

/// Flat 1 Gbit/s N = 16 again after stop 19's full run, the tool meter's readings settled
/// (`stop19_flat16_again.csv`): the rows whose meters were disturbed in the full run within 10%; misses
/// in `stop19_flat16_again_misses.csv`.
#[test]
fn the_models_predict_stop_19s_flat_16_again() {
    let table = calibration_file("stop19_flat16_again.csv");
    let (within, rows) = check_window_run(&[table], "stop19_flat16_again_misses.csv");
    assert_eq!((within, rows), (4, 7));
}

#[test]
fn a_misses_file_gives_each_miss_its_bound_and_reason() {
    let text = "# comment\ntopology,mbit,n,strategy,bound,reason\nflat,1000,8,udpcast,0.3,the window, and its turn\n";
    let m = misses_of(text);
    assert_eq!(
        m,
        vec![("flat".to_string(), 1000.0, 8, "udpcast".to_string(), 0.3)]
    );
    assert!(std::panic::catch_unwind(|| misses_of("flat,1000,8,udpcast,0.3,")).is_err());
    let noisy = format!("{text}two-level,1000,16,chain,0.3, noise: 3.9-4.6 s\n");
    assert_eq!(
        noise_claims(&noisy),
        vec![("two-level".to_string(), 1000.0, 16, "chain".to_string())]
    );
}

#[test]
fn a_noise_claim_needs_the_rows_repeats_to_spread_wider_than_ten_percent() {
    let table = "topology,mbit,n,strategy,seconds,seconds_min,seconds_max\n\
                 flat,1000,16,chain,4.0,3.5,4.5\n\
                 flat,1000,8,chain,2.5,2.4,2.6\n";
    let claim = |n: usize| ("flat".to_string(), 1000.0, n, "chain".to_string());
    let spread = |n| repeat_spread(table, &claim(n));
    assert!(spread(16).is_some_and(|s| (s - 0.25).abs() < 1e-9));
    assert!(spread(8).is_some_and(|s| s < 0.2), "±4%: not noise");
    assert_eq!(spread(4), None);
}
