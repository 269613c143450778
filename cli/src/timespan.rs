//! Locust's timespan grammar: `30s`, `5m`, `1h30m`, bare seconds; `ms` is accepted too.

use std::time::Duration;

/// Parses `1h30m`, `90s`, `250ms` or `30` (seconds) into a duration.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (expected e.g. 30s, 5m, 1h30m, 250ms or 30)");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    let mut last_rank = u8::MAX;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, rank, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 0, 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1, 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 2, 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 3, 1)
        } else {
            return Err(bad());
        };
        // Units must go from largest to smallest, each at most once: `1h30m`, not `30m1h`.
        if rank >= last_rank {
            return Err(bad());
        }
        last_rank = rank;
        total += unit * u32::try_from(value).map_err(|_| bad())?;
        rest = &rest[len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_locust_forms() {
        let secs = |s| parse(s).unwrap().as_secs();
        assert_eq!(secs("30s"), 30);
        assert_eq!(secs("5m"), 300);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("1h2m3s"), 3723);
        assert_eq!(secs("45"), 45);
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("1s500ms").unwrap(), Duration::from_millis(1500));
    }

    #[test]
    fn rejects_the_rest() {
        for s in ["", "s", "10x", "1.5s", "-3s", "30m1h", "5s5s", "ten"] {
            assert!(parse(s).is_err(), "{s}");
        }
    }
}
