//! `kastat3 -x/-y` dates: `yyyy-mm-dd[ hh:mm[:ss]]` (taken as UTC) or an RFC 2616 date, sent as the RFC 2616
//! date Kadeploy's client sends (`Time#httpdate`).

use std::time::{Duration, SystemTime};

/// Parses a date given on the command line and formats it as an HTTP date.
pub fn http_date(text: &str) -> Result<String, String> {
    let bad = || format!("invalid argument: {text} (expected yyyy-mm-dd hh:mm:ss)");
    if let Ok(t) = httpdate::parse_http_date(text) {
        return Ok(httpdate::fmt_http_date(t));
    }
    let text = text.trim();
    let (day, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, t.trim()),
        None => (text, ""),
    };
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let d: Vec<&str> = day.split('-').collect();
    let [y, mo, da] = d.as_slice() else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    let t: Vec<&str> = if time.is_empty() {
        Vec::new()
    } else {
        time.split(':').collect()
    };
    let (h, mi, se) = match t.as_slice() {
        [] => (0, 0, 0),
        [h, m] => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        _ => return Err(bad()),
    };
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&da)
        || h > 23
        || mi > 59
        || se > 60
    {
        return Err(bad());
    }
    let days = days_from_civil(y, mo, da);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    Ok(httpdate::fmt_http_date(
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm), for years ≥ 1970.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_dates_become_http_dates() {
        assert_eq!(
            http_date("2013-10-08 12:34:56").unwrap(),
            "Tue, 08 Oct 2013 12:34:56 GMT"
        );
        assert_eq!(
            http_date("2000-02-29").unwrap(),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            http_date("1970-01-01 00:00").unwrap(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        for bad in [
            "yesterday",
            "2013-13-01",
            "2013-10-08 25:00:00",
            "2013-10",
            "",
        ] {
            assert!(http_date(bad).is_err(), "{bad}");
        }
    }
}
