//! Repeated readings of one meter or one run (since stop 17): the median the row records and the
//! model reads, and the spread that says how far a single reading could have been from it (a
//! meter's single readings moved ±15% between consecutive N at stop 16, more than the effects the
//! model adds).

/// How many times each meter reads before each N: `KABCAST_METER_REPEAT` (1 to 50), default 3.
pub fn meter_repeats() -> usize {
    repeats_from(std::env::var("KABCAST_METER_REPEAT").ok().as_deref())
}

/// The repeat count a `KABCAST_METER_REPEAT` value asks for (3 when unset or unreadable).
fn repeats_from(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.trim().parse().ok())
        .filter(|r| (1..=50).contains(r))
        .unwrap_or(3)
}

/// A meter's readings spread wider than this (% of their median) are unsettled: something else
/// took the machine during one of them (stop 19: before one N, four meters' readings 47–112% apart,
/// where their spread is 2–36% otherwise), and the meter reads again (see [`read_again`]).
pub const UNSETTLED_SPREAD_PCT: f64 = 40.0;

/// Whether a meter that has made `passes` of its `repeats` readings reads once more: while any of
/// its `spreads` (each tool's, % of the median) is unsettled ([`UNSETTLED_SPREAD_PCT`]), up to twice
/// the repeats; the median of all the readings is then what the row records.
pub fn read_again(passes: usize, repeats: usize, spreads: &[f64]) -> bool {
    passes < repeats
        || (passes < 2 * repeats
            && repeats > 1
            && spreads
                .iter()
                .any(|s| s.is_finite() && *s > UNSETTLED_SPREAD_PCT))
}

/// The median of `values` (the mean of the two middle ones for an even count); NaN when there is
/// none or any is NaN (a run that did not finish).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// A meter's readings summarised: the median of the finite ones (a meter run that failed reads
/// NaN and is left out), and their spread, `100 · (max − min) / median` (0 for one reading; NaN
/// when none is finite).
pub fn median_and_spread(values: &[f64]) -> (f64, f64) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let m = median(&finite);
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let spread = if m.is_finite() && m > 0.0 {
        100.0 * (hi - lo) / m
    } else {
        f64::NAN
    };
    (m, spread)
}

/// A spread as a CSV field: one decimal, empty when unknown.
pub fn spread_field(spread: f64) -> String {
    if spread.is_finite() {
        format!("{spread:.1}")
    } else {
        String::new()
    }
}

#[test]
fn a_meter_records_the_median_of_its_readings_and_their_spread() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    // Stop 16's chain meter at 8 receivers, flat N = 8 and 16 and two-level 16, as three readings.
    let (m, s) = median_and_spread(&[8149.0, 7358.0, 10374.0]);
    assert!(close(m, 8149.0), "{m}");
    assert!(close(s, 100.0 * (10374.0 - 7358.0) / 8149.0), "{s}");
    // A failed reading is left out; an even count takes the middle pair's mean.
    let (m, s) = median_and_spread(&[2.0, f64::NAN, 4.0]);
    assert!(close(m, 3.0) && close(s, 100.0 * 2.0 / 3.0), "{m} {s}");
    assert_eq!(median_and_spread(&[5.0]), (5.0, 0.0));
    let (m, s) = median_and_spread(&[f64::NAN]);
    assert!(m.is_nan() && s.is_nan());
    assert!(
        median(&[1.0, f64::NAN, 3.0]).is_nan(),
        "a run that did not finish"
    );
    assert!(close(median(&[4.0, 1.0, 3.0, 2.0]), 2.5));
    assert_eq!(
        (spread_field(12.345), spread_field(f64::NAN)),
        ("12.3".to_string(), String::new())
    );
    assert_eq!(
        (
            repeats_from(None),
            repeats_from(Some("5")),
            repeats_from(Some("0"))
        ),
        (3, 5, 3)
    );
}

#[test]
fn an_unsettled_meter_reads_again_up_to_twice_its_repeats() {
    assert!(read_again(2, 3, &[]), "the repeats first");
    assert!(!read_again(3, 3, &[10.0, 36.0, f64::NAN]), "settled");
    assert!(read_again(3, 3, &[10.0, 112.0]), "one tool unsettled");
    assert!(read_again(5, 3, &[47.0]));
    assert!(!read_again(6, 3, &[47.0]), "twice the repeats at most");
    assert!(
        !read_again(1, 1, &[80.0]),
        "one reading asked: no spread to judge"
    );
}
