//! A compact status line on stderr every few seconds, so long runs are not silent.

use blast_engine::Snapshot;
use std::time::Duration;

use crate::summary::ms;

/// How often a status line is printed.
const EVERY: Duration = Duration::from_secs(5);

/// Makes one status line per [`EVERY`] from the engine's interval snapshots.
pub struct Progress {
    run_time: Duration,
    next: Duration,
}

impl Progress {
    /// A printer for a run of `run_time`.
    pub fn new(run_time: Duration) -> Progress {
        Progress {
            run_time,
            next: EVERY,
        }
    }

    /// Called once per interval; returns a status line when one is due.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Option<String> {
        if snapshot.elapsed < self.next || snapshot.elapsed > self.run_time {
            return None;
        }
        self.next = snapshot.elapsed + EVERY;
        let window = snapshot.window_total();
        let c = &window.counters;
        let rps = c.requests() as f64 / snapshot.interval.as_secs_f64();
        let p99 = match window.latency_us.is_empty() {
            true => "-".to_string(),
            false => ms(window.latency_us.value_at_quantile(0.99)),
        };
        Some(format!(
            "[{:>5.0}s/{:.0}s] {} users, {rps:.0} req/s, p99 {p99}, {} failed in the last {:.0} s",
            snapshot.elapsed.as_secs_f64(),
            self.run_time.as_secs_f64(),
            snapshot.users,
            c.failed(),
            snapshot.interval.as_secs_f64(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blast_engine::Stats;

    #[test]
    fn a_line_every_five_seconds_within_the_run() {
        let mut window = Stats::new(false);
        window.counters.ok = 900;
        window.counters.fail(blast_engine::FailureClass::Timeout);
        window.record(Duration::from_millis(2), Duration::ZERO);
        let names = [window];
        let mut progress = Progress::new(Duration::from_secs(12));
        let lines: Vec<_> = (1..=13)
            .filter_map(|s| {
                progress.observe(&Snapshot {
                    elapsed: Duration::from_secs(s),
                    interval: Duration::from_secs(1),
                    window: &names,
                    cumulative: &names,
                    users: 64,
                })
            })
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            "[    5s/12s] 64 users, 901 req/s, p99 2.000ms, 1 failed in the last 1 s"
        );
    }
}
