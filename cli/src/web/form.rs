//! The `POST /swarm` form: Locust's fields (`user_count`, `spawn_rate`, `host`, `run_time`) and
//! blast's (`rate`, `stages`), decoded and checked. It depends on nothing else of the CLI, so
//! its fuzz target (`fuzz/fuzz_targets/swarm_form.rs`) includes it as it is.

use blast_engine::Shape;
use std::time::Duration;

/// A run asked for by `POST /swarm`, or the new load of a running one.
#[derive(Debug, Default, PartialEq)]
pub struct Swarm {
    /// Users (closed model); 1 with `rate`.
    pub users: u64,
    /// Users started per second.
    pub spawn_rate: Option<f64>,
    /// The target, over the command line's.
    pub host: Option<String>,
    /// How long the run lasts, over the command line's.
    pub run_time: Option<Duration>,
    /// Open model: tasks per second instead of users.
    pub rate: Option<f64>,
    /// Users over time instead of a fixed count.
    pub stages: Option<Shape>,
}

impl Swarm {
    /// Decodes an `application/x-www-form-urlencoded` body; the error says which field is
    /// wrong. Empty fields count as absent, as Locust's form leaves them.
    pub fn parse(form: &[u8]) -> Result<Swarm, String> {
        let fields: Vec<(String, String)> = form_urlencoded::parse(form)
            .into_owned()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let field = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
        let positive = |key: &str| match field(key).map(str::parse::<f64>) {
            Some(Ok(r)) if r.is_finite() && r > 0.0 => Ok(Some(r)),
            Some(_) => Err(format!("{key} must be above 0")),
            None => Ok(None),
        };
        let rate = positive("rate")?;
        let stages = match field("stages").map(blast_scenarios::parse_stages) {
            Some(Ok(stages)) => Some(Shape { start: 0.0, stages }),
            Some(Err(e)) => return Err(e),
            None => None,
        };
        // Stages and a rate say the load themselves; the user count is then not needed.
        let users = match field("user_count").map(str::parse::<u64>) {
            Some(Ok(u)) if u > 0 => u,
            None if rate.is_some() || stages.is_some() => 1,
            _ => return Err("user_count must be a whole number from 1".into()),
        };
        let run_time = match field("run_time").map(blast_scenarios::parse_duration) {
            Some(Ok(t)) if !t.is_zero() => Some(t),
            Some(_) => return Err("run_time must be a duration such as 30s or 5m".into()),
            None => None,
        };
        Ok(Swarm {
            users,
            spawn_rate: positive("spawn_rate")?,
            host: field("host").map(String::from),
            run_time,
            rate,
            stages,
        })
    }

    /// The most users this swarm holds at once.
    pub fn peak_users(&self) -> u64 {
        self.stages
            .as_ref()
            .map_or(self.users, |s| s.peak().ceil() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locusts_fields_and_blasts_decode() {
        let s =
            Swarm::parse(b"user_count=20&spawn_rate=2.5&host=http%3A%2F%2Fa%3A8000&run_time=1m")
                .unwrap();
        assert_eq!(s.users, 20);
        assert_eq!(s.spawn_rate, Some(2.5));
        assert_eq!(s.host.as_deref(), Some("http://a:8000"));
        assert_eq!(s.run_time, Some(Duration::from_secs(60)));
        let open = Swarm::parse(b"rate=100&user_count=").unwrap();
        assert_eq!((open.users, open.rate), (1, Some(100.0)));
        let staged = Swarm::parse(b"user_count=1&stages=10s%3A5%2C20s%3A50").unwrap();
        assert_eq!(staged.peak_users(), 50);
        // Stages need no user count (the start form leaves it empty for a staged profile).
        let staged = Swarm::parse(b"user_count=&stages=10s%3A5").unwrap();
        assert_eq!(staged.peak_users(), 5);
    }

    #[test]
    fn bad_fields_are_named() {
        for (form, field) in [
            (&b"user_count=0"[..], "user_count"),
            (b"user_count=x", "user_count"),
            (b"", "user_count"),
            (b"user_count=1&spawn_rate=-1", "spawn_rate"),
            (b"user_count=1&rate=NaN", "rate"),
            (b"user_count=1&run_time=0s", "run_time"),
        ] {
            let err = Swarm::parse(form).unwrap_err();
            assert!(err.contains(field), "{form:?}: {err}");
        }
    }
}
