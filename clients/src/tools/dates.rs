//! `kastat3 -x/-y` dates: `yyyy-mm-dd[ hh:mm[:ss]]` in the local time zone (as Kadeploy's client reads them
//! with Ruby's `Time.parse`) or an RFC 2616 date, sent as the RFC 2616 date Kadeploy's client sends
//! (`Time#httpdate`).

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
    let secs = local_epoch([y, mo, da, h, mi, se]).ok_or_else(bad)?;
    Ok(httpdate::fmt_http_date(
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
    ))
}

/// Seconds since the epoch of `[year, month, day, hour, minute, second]` in the local time zone (`TZ`, as
/// Ruby's `Time.parse`); `None` before 1970. The values were range-checked by the caller.
fn local_epoch(d: [u64; 6]) -> Option<u64> {
    let int = |v: u64| i32::try_from(v).ok();
    // SAFETY: an all-zero `tm` is a valid value (integers and a null zone pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = int(d[0])? - 1900;
    tm.tm_mon = int(d[1])? - 1;
    tm.tm_mday = int(d[2])?;
    tm.tm_hour = int(d[3])?;
    tm.tm_min = int(d[4])?;
    tm.tm_sec = int(d[5])?;
    tm.tm_isdst = -1;
    // SAFETY: mktime reads and normalises the `tm` this function owns.
    let t = unsafe { libc::mktime(&mut tm) };
    u64::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local time zone's reading of `date` (`date -d DATE +%s`, as Ruby's `Time.parse`).
    fn local(date: &str) -> String {
        let out = std::process::Command::new("date")
            .args(["-d", date, "+%s"])
            .output()
            .expect("date");
        let secs: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("epoch");
        httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Command-line dates are local times (before, they were read as UTC: off by the zone's offset).
    #[test]
    fn command_line_dates_become_http_dates() {
        for date in ["2013-10-08 12:34:56", "2000-02-29", "2021-07-01 02:30"] {
            assert_eq!(http_date(date).unwrap(), local(date), "{date}");
        }
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
