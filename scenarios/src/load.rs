//! Load shapes as users write them: Locust's `-u/-r/-t`, k6-style stages, arrival rates, and
//! the timespan grammar they share.

use blast_engine::{Schedule, Shape, Stage};
use std::time::Duration;

/// Users when neither the scenario nor the command line says how many.
pub const DEFAULT_USERS: u64 = 10;
/// Run time when nothing says how long.
pub const DEFAULT_RUN_TIME: Duration = Duration::from_secs(10);

/// How much load a run offers and for how long; every field is optional so that command-line
/// flags can override a scenario's defaults one by one.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Load {
    /// Users to reach (Locust's `-u`).
    pub users: Option<u64>,
    /// Users started per second until `users` run (Locust's `-r`); all at once without it.
    pub spawn_rate: Option<f64>,
    /// Linear stages of users, from 0 (k6's `stages`); replaces `users`.
    pub stages: Option<Vec<Stage>>,
    /// Open model: task starts per second, constant or staged; replaces users.
    pub rate: Option<Shape>,
    /// Run time, counted from the start (ramps included). Default: the stages' length or 10 s.
    pub run_time: Option<Duration>,
}

impl Load {
    /// This load with every field `over` sets taking precedence. Users and stages replace each
    /// other, so `-u 50` on a staged scenario runs 50 users.
    pub fn overridden_by(&self, over: &Load) -> Load {
        let mut out = self.clone();
        if over.users.is_some() {
            out.users = over.users;
            out.stages = None;
        }
        if over.stages.is_some() {
            out.stages.clone_from(&over.stages);
            out.users = None;
            // New stages bring their own length: the file's run time was for its own shape.
            out.run_time = None;
        }
        out.spawn_rate = over.spawn_rate.or(out.spawn_rate);
        out.rate = over.rate.clone().or(out.rate);
        out.run_time = over.run_time.or(out.run_time);
        out
    }

    /// The engine schedule and run time. `peak` rescales the shape so its highest point is
    /// `peak` users (or requests/s in the open model).
    pub fn resolve(
        &self,
        peak: Option<f64>,
        max_connections: u64,
    ) -> Result<(Schedule, Duration), String> {
        let rescale = |shape: Shape| match peak {
            Some(p) if shape.peak() > 0.0 => shape.scaled(p / shape.peak()),
            _ => shape,
        };
        let schedule = if let Some(rate) = &self.rate {
            Schedule::Open {
                rate: rescale(rate.clone()),
                max_connections,
            }
        } else if let Some(stages) = &self.stages {
            let shape = Shape {
                start: 0.0,
                stages: stages.clone(),
            };
            Schedule::Closed {
                users: rescale(shape),
            }
        } else {
            let users = peak.map_or(self.users.unwrap_or(DEFAULT_USERS) as f64, f64::round);
            if users < 1.0 {
                return Err("at least one user is needed".into());
            }
            let shape = match self.spawn_rate {
                Some(r) if !(r.is_finite() && r > 0.0) => {
                    return Err(format!("invalid spawn rate {r}: expected users/s above 0"))
                }
                Some(r) => Shape::ramp(users, r),
                None => Shape::constant(users),
            };
            Schedule::Closed { users: shape }
        };
        let shape = match &schedule {
            Schedule::Closed { users } => users,
            Schedule::Open { rate, .. } => rate,
        };
        if shape.peak() <= 0.0 {
            return Err("the load shape never goes above 0".into());
        }
        // Stages say how long they last; a Locust ramp (-r) does not end the run.
        let staged = match (&self.rate, &self.stages) {
            (None, None) => Duration::ZERO,
            _ => shape.duration(),
        };
        let run_time = self.run_time.unwrap_or(if staged.is_zero() {
            DEFAULT_RUN_TIME
        } else {
            staged
        });
        if run_time.is_zero() {
            return Err("the run time must be above zero".into());
        }
        Ok((schedule, run_time))
    }
}

/// Parses stages: `1m:1000, 2m:1000, 1m:0` (ramp to 1000 over a minute, hold two, ramp down).
pub fn parse_stages(text: &str) -> Result<Vec<Stage>, String> {
    let bad = |why: String| {
        format!("invalid stages {text:?}: {why} (expected DURATION:TARGET,... e.g. 1m:1000,2m:1000,1m:0)")
    };
    let stages = text
        .split(',')
        .map(|part| {
            let (d, target) = part
                .trim()
                .split_once(':')
                .ok_or_else(|| bad(format!("{:?} has no ':'", part.trim())))?;
            let duration = parse_duration(d).map_err(bad)?;
            let target: f64 = target
                .trim()
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite() && *t >= 0.0)
                .ok_or_else(|| bad(format!("{:?} is not a number >= 0", target.trim())))?;
            Ok(Stage { duration, target })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(stages)
}

/// Parses an arrival rate: `2000` (requests/s throughout) or stages from 0 (`30s:2000,1m:2000`).
pub fn parse_rate(text: &str) -> Result<Shape, String> {
    if text.contains(':') {
        let stages = parse_stages(text)?;
        return Ok(Shape { start: 0.0, stages });
    }
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(Shape::constant(r)),
        _ => Err(format!(
            "invalid rate {text:?}: expected requests/s above 0, or stages such as 30s:2000,1m:2000"
        )),
    }
}

/// Parses `1h30m`, `90s`, `250ms` or `30` (seconds) into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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

    fn parse(s: &str) -> Result<Duration, String> {
        parse_duration(s)
    }

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

#[cfg(test)]
mod shape_tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn stages_parse_and_refuse_nonsense() {
        let s = parse_stages("1m:1000, 2m:1000,1m:0").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[1].duration, s[1].target), (secs(120), 1000.0));
        for bad in ["", "1m", "1m:x", "x:5", "1m:-1", "1m:5,"] {
            assert!(parse_stages(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rate("250").unwrap(), Shape::constant(250.0));
        assert_eq!(parse_rate("10s:100").unwrap().peak(), 100.0);
        for bad in ["0", "-5", "fast", "inf"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locust_flags_become_a_ramp_and_stages_set_the_run_time() {
        let load = Load {
            users: Some(100),
            spawn_rate: Some(10.0),
            run_time: Some(secs(300)),
            ..Load::default()
        };
        let (schedule, run_time) = load.resolve(None, 1000).unwrap();
        let Schedule::Closed { users } = schedule else {
            panic!("closed expected")
        };
        assert_eq!(
            (users.at(secs(5)), users.at(secs(60)), run_time),
            (50.0, 100.0, secs(300))
        );

        let burst = Load {
            stages: Some(parse_stages("1m:1000,2m:1000,1m:0").unwrap()),
            ..Load::default()
        };
        let (schedule, run_time) = burst.resolve(Some(300.0), 1000).unwrap();
        let Schedule::Closed { users } = schedule else {
            panic!("closed expected")
        };
        assert_eq!(
            (users.peak(), users.at(secs(30)), run_time),
            (300.0, 150.0, secs(240))
        );
    }

    #[test]
    fn command_line_fields_override_the_scenario() {
        let file = Load {
            stages: Some(parse_stages("1m:1000").unwrap()),
            spawn_rate: Some(5.0),
            ..Load::default()
        };
        let cli = Load {
            users: Some(20),
            ..Load::default()
        };
        let merged = file.overridden_by(&cli);
        assert_eq!(
            (merged.users, merged.stages.is_none(), merged.spawn_rate),
            (Some(20), true, Some(5.0))
        );
        let (_, run_time) = merged.resolve(None, 1).unwrap();
        assert_eq!(run_time, DEFAULT_RUN_TIME);
        let rate = Load {
            rate: Some(Shape::constant(50.0)),
            ..Load::default()
        };
        assert!(matches!(
            file.overridden_by(&rate).resolve(None, 8).unwrap().0,
            Schedule::Open { .. }
        ));
        assert!(Load {
            users: Some(0),
            ..Load::default()
        }
        .resolve(None, 1)
        .is_err());
        assert!(Load {
            spawn_rate: Some(0.0),
            ..Load::default()
        }
        .resolve(None, 1)
        .is_err());
    }
}
