//! What the console shows while a run goes: on a terminal, a live view redrawn in place once
//! per interval; elsewhere (CI logs), a compact status line every few seconds.

use blast_engine::{Name, Schedule, Snapshot};
use std::fmt::Write;
use std::time::Duration;

use crate::summary::{ms, percent};

/// How often a status line is printed when not on a terminal.
const EVERY: Duration = Duration::from_secs(5);
/// Request names listed in the live view.
const TOP_NAMES: usize = 5;
/// Width of the live view's progress bar.
const BAR: usize = 30;

/// Turns the engine's interval snapshots into console output.
pub struct Progress {
    run_time: Duration,
    schedule: Schedule,
    names: Vec<Name>,
    live: bool,
    next: Duration,
    /// Lines of the last live frame, to move back over.
    drawn: usize,
}

impl Progress {
    /// Output for a run of `run_time`; `live` redraws a frame in place (a terminal).
    pub fn new(run_time: Duration, schedule: &Schedule, names: &[Name], live: bool) -> Progress {
        Progress {
            run_time,
            schedule: schedule.clone(),
            names: names.to_vec(),
            live,
            next: EVERY,
            drawn: 0,
        }
    }

    /// Called once per interval; returns text to write to stderr, if any is due.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Option<String> {
        // The interval after the run time is the stop grace: nothing new to show.
        if snapshot.elapsed > self.run_time {
            return None;
        }
        if self.live {
            return Some(self.frame(snapshot));
        }
        if snapshot.elapsed < self.next {
            return None;
        }
        self.next = snapshot.elapsed + EVERY;
        let window = snapshot.window_total;
        let c = &window.counters;
        let rps = c.requests() as f64 / snapshot.span.as_secs_f64();
        let p99 = match window.latency_us.is_empty() {
            true => "-".to_string(),
            false => ms(window.latency_us.value_at_quantile(0.99)),
        };
        Some(format!(
            "[{:>5.0}s/{:.0}s] {} users, {rps:.0} req/s, p99 {p99}, {} failed in the last {:.0} s\n",
            snapshot.elapsed.as_secs_f64(),
            self.run_time.as_secs_f64(),
            snapshot.users,
            c.failed(),
            snapshot.span.as_secs_f64(),
        ))
    }

    /// The live view: progress bar and stage, users, rate, recent percentiles, failures and
    /// the busiest names; it replaces the previous frame.
    fn frame(&mut self, s: &Snapshot) -> String {
        let mut out = String::new();
        if self.drawn > 0 {
            // Back to the first line of the previous frame.
            let _ = write!(out, "\x1b[{}A", self.drawn);
        }
        let elapsed = s.elapsed.min(self.run_time);
        let done = elapsed.as_secs_f64() / self.run_time.as_secs_f64().max(1e-9);
        let filled = ((done * BAR as f64).round() as usize).min(BAR);
        let window = s.window_total;
        let c = &window.counters;
        let secs = s.span.as_secs_f64();
        let q = |q: f64| {
            if window.latency_us.is_empty() {
                "-".to_string()
            } else {
                ms(window.latency_us.value_at_quantile(q))
            }
        };
        let (shape, load) = match &self.schedule {
            Schedule::Closed { users } => {
                (users, format!("users {}/{:.0}", s.users, users.at(elapsed)))
            }
            // The open model plans a rate; its connections are another matter.
            Schedule::Open { rate, .. } => (
                rate,
                format!(
                    "rate {:.0}/s planned, {} connections",
                    rate.at(elapsed),
                    s.users
                ),
            ),
        };
        let stage = stage_of(shape, elapsed, self.run_time);
        let mut lines = vec![
            format!(
                "[{}{}] {} / {} remaining {}{stage}",
                "#".repeat(filled),
                "-".repeat(BAR - filled),
                clock(elapsed),
                clock(self.run_time),
                clock(self.run_time.saturating_sub(elapsed)),
            ),
            format!(
                "{load}   {:.0} req/s   p50 {}  p95 {}  p99 {}   (last {secs:.0} s)",
                c.requests() as f64 / secs,
                q(0.5),
                q(0.95),
                q(0.99),
            ),
            format!(
                "failures {} ({:.2}%) in the last {secs:.0} s, {} since the start",
                c.failed(),
                percent(c.failed(), c.requests()),
                s.cumulative_total.counters.failed(),
            ),
        ];
        let mut busiest: Vec<usize> = (0..self.names.len()).collect();
        busiest.sort_by_key(|&i| std::cmp::Reverse(s.window[i].counters.requests()));
        for &i in busiest.iter().take(TOP_NAMES) {
            let w = &s.window[i];
            let p99 = if w.latency_us.is_empty() {
                "-".to_string()
            } else {
                ms(w.latency_us.value_at_quantile(0.99))
            };
            let name = format!("{} {}", self.names[i].method, self.names[i].name);
            lines.push(format!(
                "  {:<48} {:>9.0} req/s  p99 {:>9}  {} failed",
                truncate(&name, 48),
                w.counters.requests() as f64 / secs,
                p99,
                w.counters.failed()
            ));
        }
        for line in &lines {
            // Clear each line before writing: the new one may be shorter.
            let _ = writeln!(out, "\x1b[2K{line}");
        }
        self.drawn = lines.len();
        out
    }
}

/// " · stage 2/3 (hold)" for a staged shape, nothing for a constant one.
/// Where the run is in its load shape: the phase (as the reports name it), and the stage
/// while one is under way.
fn stage_of(shape: &blast_engine::Shape, t: Duration, run_time: Duration) -> String {
    if shape.stages.is_empty() {
        return String::new();
    }
    let phase = shape
        .phases(run_time)
        .into_iter()
        .find(|(_, start, end)| *start <= t && t < *end)
        .map_or("", |(kind, _, _)| kind.as_str());
    let mut end = Duration::ZERO;
    for (i, stage) in shape.stages.iter().enumerate() {
        end += stage.duration;
        if t < end {
            return format!(" · {phase}, stage {}/{}", i + 1, shape.stages.len());
        }
    }
    format!(" · {phase}, after the stages")
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        s.chars().take(width - 1).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blast_engine::{Shape, Stage, Stats};

    /// A snapshot of one name: its window is also the total.
    fn snapshot(names: &[Stats], s: u64) -> Snapshot<'_> {
        Snapshot {
            start: Duration::from_secs(s - 1),
            elapsed: Duration::from_secs(s),
            span: Duration::from_secs(1),
            window: names,
            window_total: &names[0],
            cumulative: names,
            cumulative_total: &names[0],
            users: 64,
            loop_lag_us: 0,
            backlog: 0,
        }
    }

    fn stats() -> [Stats; 1] {
        let mut window = Stats::new(false);
        window.counters.ok = 900;
        window.counters.fail(blast_engine::FailureClass::Timeout);
        window.record(Duration::from_millis(2), Duration::ZERO);
        [window]
    }

    fn name() -> Vec<Name> {
        vec![Name {
            method: "GET".into(),
            name: "/".into(),
        }]
    }

    #[test]
    fn a_line_every_five_seconds_within_the_run() {
        let names = stats();
        let mut progress = Progress::new(
            Duration::from_secs(12),
            &Schedule::users(64),
            &name(),
            false,
        );
        let lines: Vec<_> = (1..=13)
            .filter_map(|s| progress.observe(&snapshot(&names, s)))
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            "[    5s/12s] 64 users, 901 req/s, p99 2.000ms, 1 failed in the last 1 s\n"
        );
    }

    #[test]
    fn the_live_view_redraws_in_place_with_stage_users_and_names() {
        let names = stats();
        let burst = Schedule::Closed {
            users: Shape {
                start: 0.0,
                stages: vec![
                    Stage {
                        duration: Duration::from_secs(60),
                        target: 1000.0,
                    },
                    Stage {
                        duration: Duration::from_secs(120),
                        target: 1000.0,
                    },
                ],
            },
        };
        // Past the stages, the label says so instead of naming the last stage.
        assert_eq!(
            stage_of(
                &Shape::ramp(10.0, 1.0),
                Duration::from_secs(30),
                Duration::from_secs(60)
            ),
            " · steady, after the stages"
        );
        let mut progress = Progress::new(Duration::from_secs(180), &burst, &name(), true);
        let first = progress.observe(&snapshot(&names, 90)).unwrap();
        assert!(first.contains("steady, stage 2/2"), "{first}");
        assert!(first.contains("users 64/1000 "), "{first}");
        assert!(first.contains("901 req/s"), "{first}");
        assert!(first.contains("GET /"), "{first}");
        assert!(first.starts_with("\x1b[2K"), "nothing to move over yet");
        let second = progress.observe(&snapshot(&names, 91)).unwrap();
        assert!(
            second.starts_with("\x1b[4A"),
            "moves up over the 4 lines drawn"
        );
    }
}
