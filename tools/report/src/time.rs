//! Wall-clock times as text, in UTC, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

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
