//! Wall-clock times as text, in UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
    let t = OffsetDateTime::from(UNIX_EPOCH + Duration::from_secs(unix_seconds(t)));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A time as `--start-at` takes it: RFC 3339 (`2026-11-28T14:00:00Z`, `...T15:00:00.5+01:00`,
/// read by the `time` crate, which knows the calendar) or Unix seconds (`1796392800`,
/// `1796392800.25`).
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Some(secs) = decimal_seconds(text) {
        return Ok(UNIX_EPOCH + secs);
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .filter(|t| t.unix_timestamp() >= 0)
        .map(SystemTime::from)
        .ok_or_else(|| {
            format!(
                "invalid time {text:?}: expected RFC 3339 (2026-11-28T14:00:00Z) or Unix seconds"
            )
        })
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
            // Days the calendar does not have.
            "2026-02-31T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T12:00:00Z",
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
