//! What the console shows while a run goes: on a terminal, a live view redrawn in place once
//! per interval; elsewhere (CI logs), a compact status line every few seconds.

use blast_engine::{Name, Schedule, Snapshot};
use std::fmt::Write;
use std::time::Duration;

use crate::summary::{ms, shorten};
use blast_report::percent;
use blast_report::ErrorKind;

/// How often a status line is printed when not on a terminal.
const EVERY: Duration = Duration::from_secs(5);
/// Most request names listed in the live view (fewer when the terminal is short).
const TOP_NAMES: usize = 12;
/// Errors listed in the live view's failures panel.
const TOP_ERRORS: usize = 3;
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
        // The open model's running count is of connections, not users.
        let running = match self.schedule {
            Schedule::Closed { .. } => "users",
            Schedule::Open { .. } => "connections",
        };
        Some(format!(
            "[{:>5.0}s/{:.0}s] {} {running}, {rps:.0} req/s, p99 {p99}, {} failed in the last {:.0} s\n",
            snapshot.elapsed.as_secs_f64(),
            self.run_time.as_secs_f64(),
            snapshot.users,
            c.failed(),
            snapshot.span.as_secs_f64(),
        ))
    }

    /// The live view sized to the terminal behind stderr (80×24 when it cannot be read).
    fn frame(&mut self, s: &Snapshot) -> String {
        let (width, height) = terminal_size::terminal_size_of(std::io::stderr())
            .map_or((80, 24), |(w, h)| (usize::from(w.0), usize::from(h.0)));
        self.frame_sized(s, width, height)
    }

    /// Erases the last live frame, so the summary that follows stands alone.
    pub fn clear(&mut self) -> String {
        let drawn = std::mem::take(&mut self.drawn);
        match drawn {
            0 => String::new(),
            n => format!("\x1b[{n}A\x1b[0J"),
        }
    }

    /// The live view in `width` × `height`: progress and stage, load, recent rate and
    /// percentiles, failures, the busiest names in a stable order and the top errors. It
    /// replaces the previous frame; no line reaches the last column (a full line would wrap
    /// and break the redraw) and the frame is shorter than the screen.
    fn frame_sized(&mut self, s: &Snapshot, width: usize, height: usize) -> String {
        let room = width.saturating_sub(1).max(20);
        let elapsed = s.elapsed.min(self.run_time);
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
                    "rate {:.0}/s planned · {} connections",
                    rate.at(elapsed),
                    s.users
                ),
            ),
        };
        let clock_text = format!(
            "{} / {}, {} left{}",
            clock(elapsed),
            clock(self.run_time),
            clock(self.run_time.saturating_sub(elapsed)),
            stage_of(shape, elapsed, self.run_time)
        );
        // The bar takes what the text leaves, up to its full width.
        let bar = room.saturating_sub(clock_text.chars().count() + 3).min(BAR);
        let done = elapsed.as_secs_f64() / self.run_time.as_secs_f64().max(1e-9);
        let filled = ((done * bar as f64).round() as usize).min(bar);
        let mut lines = vec![
            if bar >= 5 {
                format!(
                    "[{}{}] {clock_text}",
                    "#".repeat(filled),
                    "-".repeat(bar - filled)
                )
            } else {
                clock_text
            },
            format!(
                "{load} · {:.0} req/s · p50 {} p95 {} p99 {} (last {secs:.0} s)",
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
        let errors = top_errors(s, &self.names, TOP_ERRORS);
        let error_lines = if errors.is_empty() {
            0
        } else {
            errors.len() + 1
        };
        // The frame stays below the screen's height, or the redraw cannot reach its top.
        let rows = height
            .saturating_sub(1 + lines.len() + 1 + error_lines)
            .min(TOP_NAMES);
        if rows > 0 {
            let name_width = room.saturating_sub(2 + 29).max(8);
            lines.push(format!(
                "  {:<name_width$} {:>9} {:>9} {:>8}",
                "name", "req/s", "p99", "failures"
            ));
            // The names with the most requests so far, in the scenario's order: rows do not
            // move from one second to the next.
            let mut shown: Vec<usize> = (0..self.names.len())
                .filter(|&i| s.cumulative[i].counters.requests() > 0)
                .collect();
            shown.sort_by_key(|&i| std::cmp::Reverse(s.cumulative[i].counters.requests()));
            shown.truncate(rows);
            shown.sort_unstable();
            for i in shown {
                let w = &s.window[i];
                let p99 = if w.latency_us.is_empty() {
                    "-".to_string()
                } else {
                    ms(w.latency_us.value_at_quantile(0.99))
                };
                let name = format!("{} {}", self.names[i].method, self.names[i].name);
                lines.push(format!(
                    "  {:<name_width$} {:>9.0} {:>9} {:>8}",
                    shorten(&name, name_width),
                    w.counters.requests() as f64 / secs,
                    p99,
                    w.counters.failed()
                ));
            }
        }
        if !errors.is_empty() && height > lines.len() + error_lines {
            lines.push("top errors since the start".to_string());
            lines.extend(errors);
        }
        let mut out = String::new();
        if self.drawn > 0 {
            // Back to the first line of the previous frame, and clear down from there: the
            // new frame may have fewer lines.
            let _ = write!(out, "\x1b[{}A\x1b[0J", self.drawn);
        }
        for line in &lines {
            let _ = writeln!(out, "{}", cut(line, room));
        }
        self.drawn = lines.len();
        out
    }
}

/// The `n` errors seen most since the start, one line each: count, request, message.
fn top_errors(s: &Snapshot, names: &[Name], n: usize) -> Vec<String> {
    let mut errors: Vec<(u64, usize, ErrorKind)> = s
        .cumulative
        .iter()
        .enumerate()
        .flat_map(|(i, stats)| {
            ErrorKind::counts(&stats.counters)
                .into_iter()
                .map(move |(kind, count)| (count, i, kind))
        })
        .collect();
    // Most first; ties in a fixed order, so lines do not swap places.
    errors.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (a.1, &a.2).cmp(&(b.1, &b.2))));
    errors
        .into_iter()
        .take(n)
        .map(|(count, i, kind)| {
            format!(
                "  {count:>7}  {} {}: {}",
                names[i].method,
                names[i].name,
                kind.text()
            )
        })
        .collect()
}

/// Where the run is in its load shape: " · ramp-up", " · steady, stage 2/3". The phase is
/// named as the reports name it; the stage only for shapes of several (a spawn ramp is one).
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
        if t < end && shape.stages.len() > 1 {
            return format!(" · {phase}, stage {}/{}", i + 1, shape.stages.len());
        }
    }
    format!(" · {phase}")
}

/// `s` cut to `width` characters, an ellipsis marking the cut.
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
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
            in_flight: 0,
            loop_lag_us: 0,
            backlog: 0,
            protocol: blast_engine::Protocol::Http1,
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
        // A spawn ramp is one stage: only the phase is named, during and after it.
        let ramp = Shape::ramp(10.0, 1.0);
        let at = |s| stage_of(&ramp, Duration::from_secs(s), Duration::from_secs(60));
        assert_eq!(at(5), " · ramp-up");
        assert_eq!(at(30), " · steady");
        let mut progress = Progress::new(Duration::from_secs(180), &burst, &name(), true);
        let first = progress.frame_sized(&snapshot(&names, 90), 80, 24);
        assert!(first.contains("steady, stage 2/2"), "{first}");
        assert!(first.contains("users 64/1000 "), "{first}");
        assert!(first.contains("901 req/s"), "{first}");
        assert!(first.contains("GET /"), "{first}");
        assert!(first.contains("top errors"), "{first}");
        assert!(first.contains("1  GET /: TimeoutError"), "{first}");
        assert!(!first.starts_with('\x1b'), "nothing to move over yet");
        let second = progress.frame_sized(&snapshot(&names, 91), 80, 24);
        let lines = first.lines().count();
        assert!(
            second.starts_with(&format!("\x1b[{lines}A\x1b[0J")),
            "moves up over the {lines} lines drawn and clears them"
        );
        assert_eq!(progress.clear(), format!("\x1b[{lines}A\x1b[0J"));
        assert_eq!(progress.clear(), "", "nothing left to clear");
    }

    /// Stats for `n` names, name `i` having had `requests[i]` requests.
    fn many(requests: &[u64]) -> (Vec<Stats>, Vec<Name>) {
        let stats = requests
            .iter()
            .map(|&n| {
                let mut s = Stats::new(false);
                s.counters.ok = n;
                s
            })
            .collect();
        let names = (0..requests.len())
            .map(|i| Name {
                method: "POST".into(),
                name: format!("/api/v1/connectors/a-rather-long-connector-name-{i}/publish/"),
            })
            .collect();
        (stats, names)
    }

    #[test]
    fn frames_fit_the_terminal_and_keep_their_rows_in_order() {
        let (stats, names) = many(&[5, 50, 0, 20, 40]);
        let live = || Progress::new(Duration::from_secs(60), &Schedule::users(64), &names, true);
        for (width, height) in [(80, 24), (120, 40), (40, 10), (80, 7)] {
            // A first frame: no cursor movement before its lines.
            let frame = live().frame_sized(&snapshot(&stats, 10), width, height);
            let lines: Vec<&str> = frame.lines().collect();
            assert!(lines.len() < height, "{width}x{height}: {lines:#?}");
            for line in &lines {
                assert!(line.chars().count() < width, "{width}x{height}: {line:?}");
            }
        }
        let mut progress = live();
        // Rows follow the scenario's order, not the counts; a name with no requests is left
        // out, and a short terminal keeps the busiest.
        let frame = progress.frame_sized(&snapshot(&stats, 11), 200, 24);
        let rows: Vec<&str> = frame.lines().filter(|l| l.contains("POST")).collect();
        let order: Vec<char> = rows
            .iter()
            .map(|l| l.split("/publish/").next().unwrap().chars().last().unwrap())
            .collect();
        assert_eq!(order, ['0', '1', '3', '4'], "{rows:#?}");
        let frame = progress.frame_sized(&snapshot(&stats, 12), 200, 7);
        let rows: Vec<&str> = frame.lines().filter(|l| l.contains("POST")).collect();
        assert_eq!(rows.len(), 2, "{frame}");
        assert!(
            rows[0].contains("name-1/") && rows[1].contains("name-4/"),
            "{rows:#?}"
        );
    }
}
