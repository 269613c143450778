//! Wall-clock times as text, in UTC, without a date library.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A span in seconds, whole, or with a tenth when that matters: "0.1", "12".
pub fn seconds(s: f64) -> String {
    if (s - s.round()).abs() < 0.05 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

/// Whole seconds since the Unix epoch.
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as Locust's failures file writes times.
pub fn utc_seconds(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Year, month and day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
/// A time as `--start-at` takes it: RFC 3339 (`2026-11-28T14:00:00Z`, `...T15:00:00.5+01:00`)
/// or Unix seconds (`1796392800`, `1796392800.25`).
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    let bad = || {
        format!("invalid time {text:?}: expected RFC 3339 (2026-11-28T14:00:00Z) or Unix seconds")
    };
    let text = text.trim();
    if let Some(secs) = decimal_seconds(text) {
        return Ok(UNIX_EPOCH + secs);
    }
    let (date, rest) = text.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(d))) = (ymd.next(), ymd.next(), ymd.next()) else {
        return Err(bad());
    };
    // The offset: Z, or ±HH:MM after the clock.
    let (clock, offset) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = rest.rfind(['+', '-']).ok_or_else(bad)?;
        let (hh, mm) = rest[at + 1..].split_once(':').ok_or_else(bad)?;
        let minutes =
            hh.parse::<i64>().map_err(|_| bad())? * 60 + mm.parse::<i64>().map_err(|_| bad())?;
        let sign = if rest.as_bytes()[at] == b'-' { -1 } else { 1 };
        (&rest[..at], sign * minutes * 60)
    };
    let mut hms = clock.splitn(3, ':');
    let (Some(h), Some(mi), Some(sec)) = (hms.next(), hms.next(), hms.next()) else {
        return Err(bad());
    };
    let (h, mi, sec): (i64, i64, Duration) = (
        h.parse().map_err(|_| bad())?,
        mi.parse().map_err(|_| bad())?,
        decimal_seconds(sec).ok_or_else(bad)?,
    );
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || sec >= Duration::from_secs(61)
    {
        return Err(bad());
    }
    let days = days_from_civil(y, m as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 - offset;
    if secs < 0 {
        return Err(bad());
    }
    Ok(UNIX_EPOCH + Duration::from_secs(secs as u64) + sec)
}

/// `12` or `12.345`: seconds, read exactly to the nanosecond (no float rounding), so shards
/// given the same time agree on it to the nanosecond.
fn decimal_seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
        return None;
    }
    let nanos = format!("{fraction:0<9}")[..9].parse::<u32>().ok()?;
    Some(Duration::new(whole.parse().ok()?, nanos))
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn start_times_parse_as_rfc_3339_or_unix_seconds() {
        let at = |t: &str| unix_seconds(parse_time(t).unwrap());
        assert_eq!(at("2026-11-28T14:00:00Z"), 1_795_874_400);
        assert_eq!(at("2026-11-28T15:00:00+01:00"), 1_795_874_400);
        assert_eq!(at("2026-11-28T09:30:00-04:30"), 1_795_874_400);
        assert_eq!(at("1795874400"), 1_795_874_400);
        assert_eq!(
            utc_seconds(parse_time("2000-02-29T23:59:59Z").unwrap()),
            "2000-02-29T23:59:59Z"
        );
        let fraction = parse_time("2026-11-28T14:00:00.25Z").unwrap();
        assert_eq!(
            fraction.duration_since(UNIX_EPOCH).unwrap().subsec_millis(),
            250
        );
        for bad in [
            "soon",
            "2026-13-01T00:00:00Z",
            "2026-11-28T14:00:00",
            "-5",
            "2026-11-28",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(seconds(0.1), "0.1");
        assert_eq!(seconds(12.01), "12");
    }

    #[test]
    fn formats_utc_like_locust() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_816_783);
        assert_eq!(utc_seconds(t), "2026-11-27T21:59:43Z");
        assert_eq!(utc_seconds(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            utc_seconds(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
