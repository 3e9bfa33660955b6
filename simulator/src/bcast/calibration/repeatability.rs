//! The `unrepeatable:` claims of a misses file: a row whose time in this run and in another stored run
//! differ by more than 1.1 / 0.9 (no prediction is then within 10% of both), while the meter readings
//! of its tool, which drive its prediction, differ by at most [`METERS_AGREE`] between the two runs.
//! Such a row is not a function of the testbed's measured parameters on this machine.

use super::{calibration_file, claims, row_values};

/// The most two runs' meter readings of a tool may differ (as a ratio, larger over smaller) for the
/// claim: the meters saw the same host.
pub const METERS_AGREE: f64 = 1.15;
/// The least two times of one row must differ (larger over smaller) so that no single prediction is
/// within 10% of both: `p ≤ 1.1·a` and `p ≥ 0.9·b` together need `b / a ≤ 1.1 / 0.9`.
pub const NO_PREDICTION_FITS_BOTH: f64 = 1.1 / 0.9;

/// A row's time and its tool's two meter readings (small and large receiver counts), Mbit/s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowMeters {
    /// Seconds to the last receiver (the median of the row's repeats).
    pub seconds: f64,
    /// The tool meter's readings at its small and large receiver counts.
    pub meter: (f64, f64),
}

/// The columns of a strategy's own tool meter (kaagent's planned strategies share its chain's; the
/// swarm has its own; `None`: a tool without a meter).
fn meter_columns(strategy: &str) -> Option<(&'static str, &'static str)> {
    Some(match strategy {
        "plain-socat-chain" => ("plain_small_mbit", "plain_large_mbit"),
        "udpcast" => ("udpcast_small_mbit", "udpcast_large_mbit"),
        "multicast" => ("mcast_small_mbit", "mcast_large_mbit"),
        "swarm" => ("swarm_small_mbit", "swarm_large_mbit"),
        "chain" | "chain-oblivious" | "ft-chain" | "tree" | "unicast" => {
            ("chain_small_mbit", "chain_large_mbit")
        }
        _ => return None,
    })
}

/// The row `(topology, mbit, n, strategy)` of `table` with its tool's meter readings.
pub fn row_meters(table: &str, row: &(String, f64, usize, String)) -> Option<RowMeters> {
    let (small, large) = meter_columns(&row.3)?;
    let [seconds, small, large] = row_values(table, row, ["seconds", small, large])?;
    Some(RowMeters {
        seconds,
        meter: (small, large),
    })
}

/// Larger over smaller (infinite when either is not a positive number).
fn ratio(a: f64, b: f64) -> f64 {
    if a > 0.0 && b > 0.0 {
        a.max(b) / a.min(b)
    } else {
        f64::INFINITY
    }
}

/// Whether two runs of one row show it unrepeatable: times apart by more than
/// [`NO_PREDICTION_FITS_BOTH`], meters within [`METERS_AGREE`].
pub fn unrepeatable(this: RowMeters, other: RowMeters) -> bool {
    ratio(this.seconds, other.seconds) > NO_PREDICTION_FITS_BOTH
        && ratio(this.meter.0, other.meter.0) <= METERS_AGREE
        && ratio(this.meter.1, other.meter.1) <= METERS_AGREE
}

/// Checks every `unrepeatable: <file>` claim of the misses file `text` against this run's `tables`
/// and the named stored run; returns how many were checked.
pub fn check_claims(text: &str, tables: &[String]) -> usize {
    let claims: Vec<_> = claims(text, "unrepeatable:")
        .into_iter()
        .filter_map(|(row, rest)| Some((row, rest.split_whitespace().next()?.to_string())))
        .collect();
    for (row, file) in &claims {
        let here = tables
            .iter()
            .find_map(|t| row_meters(t, row))
            .unwrap_or_else(|| panic!("no row {row:?} in this run"));
        let there = row_meters(&calibration_file(file), row)
            .unwrap_or_else(|| panic!("no row {row:?} in {file}"));
        assert!(
            unrepeatable(here, there),
            "{row:?}: this run {here:?}, {file} {there:?}: not a row that moved with its meters still"
        );
    }
    claims.len()
}

#[test]
fn a_row_is_unrepeatable_only_when_it_moved_and_its_meters_did_not() {
    let run = |seconds, small, large| RowMeters {
        seconds,
        meter: (small, large),
    };
    assert!(unrepeatable(
        run(18.68, 2900.0, 3063.0),
        run(12.82, 3083.0, 2704.0)
    ));
    // Within 1.1 / 0.9 of each other: a prediction between them fits both.
    assert!(!unrepeatable(
        run(12.0, 3000.0, 3000.0),
        run(14.5, 3000.0, 3000.0)
    ));
    // The meters moved too: a meter-driven model may follow.
    assert!(!unrepeatable(
        run(18.0, 2000.0, 2000.0),
        run(12.0, 3000.0, 3000.0)
    ));
    let table = "topology,mbit,n,strategy,seconds,plain_small_mbit,plain_large_mbit\n\
                 flat,1000,16,plain-socat-chain,18.68,2900,3063\n";
    let row = (
        "flat".to_string(),
        1000.0,
        16,
        "plain-socat-chain".to_string(),
    );
    assert_eq!(row_meters(table, &row), Some(run(18.68, 2900.0, 3063.0)));
    let tree = ("flat".to_string(), 1000.0, 16, "tree".to_string());
    assert_eq!(row_meters(table, &tree), None, "no chain meter columns");
}
