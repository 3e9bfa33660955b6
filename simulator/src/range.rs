//! Range checks of numeric parameters, shared by every parameter section and the failure rules.

/// A range check's failure: the dotted key and what is wrong.
pub(crate) type Check = Result<(), (String, String)>;

/// Checks that `v` is finite and >= `lo` (> `lo` when `strict`), and <= `hi`.
pub(crate) fn in_range(key: &str, v: f64, lo: f64, strict: bool, hi: f64) -> Check {
    let ok = v.is_finite() && v <= hi && if strict { v > lo } else { v >= lo };
    let what = match (strict, hi.is_finite()) {
        (true, _) => format!("must be a number > {lo}"),
        (false, true) => format!("must be between {lo} and {hi}"),
        (false, false) => format!("must be a number >= {lo}"),
    };
    if ok {
        Ok(())
    } else {
        Err((key.to_string(), format!("{what}, not {v}")))
    }
}
