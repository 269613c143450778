//! The generator's health, judged in one place: when an interval is saturated or stalled,
//! whether a run was generator-bound, and what the report says about blast's own limits
//! (stalls, saturation, sends that fell behind).
//!
//! The engine only measures (loop lag, late sends, missed slots) and the CLI only samples
//! (worker CPU, run-queue waits, steal); the rules that turn those numbers into verdicts live
//! here.

use crate::finding::{Evidence, Finding};
use crate::record::{GeneratorCheck, Point, RunRecord, Sample};

/// A worker above this CPU share of its core is saturated.
pub const SATURATED_CPU_PCT: f64 = 90.0;
/// An event loop running timers this late, while busy, is saturated.
pub const SATURATED_LAG_MS: f64 = 10.0;
/// "Busy" for a late loop: a loop that is late while its worker idles was starved by other
/// processes, which says nothing about blast's own capacity.
const BUSY_CPU_PCT: f64 = 50.0;

/// An event loop this late means the generator stalled: requests in the interval waited on
/// blast, whatever its CPU use (it was stopped, paused, swapped, or starved of a CPU).
pub const STALL_MS: f64 = 100.0;
/// Steal above this share of the host's CPUs starves the generator.
const STALL_STEAL_PCT: f64 = 10.0;

/// The rules that fired in stalled `samples`, each with its worst figure ("its event loop ran
/// {up_to}190 ms late", "the host took {up_to}25% of its CPUs for other guests (steal)").
fn stall_causes(samples: &[&Sample], up_to: &str) -> String {
    let worst = |value: fn(&Sample) -> f64, threshold: f64| {
        (samples.iter().map(|s| value(s)))
            .filter(|v| *v >= threshold)
            .reduce(f64::max)
    };
    let lag = worst(|s| s.loop_lag_ms, STALL_MS);
    let steal = worst(|s| s.steal_pct.unwrap_or(0.0), STALL_STEAL_PCT);
    let causes: Vec<String> = [
        lag.map(|ms| format!("its event loop ran {up_to}{ms:.0} ms late")),
        steal.map(|pct| {
            format!("the host took {up_to}{pct:.0}% of its CPUs for other guests (steal)")
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    causes.join(", and ")
}

impl Sample {
    /// Whether the generator stalled in this interval, however busy it was: latencies then
    /// include blast's own pause. Run-queue waits are many short ones summed (a worker sharing
    /// its core with the target always has some), so they are evidence, not a stall: a wait
    /// long enough to matter shows as a late event loop.
    pub fn stalled(&self) -> bool {
        self.loop_lag_ms >= STALL_MS || self.steal_pct.is_some_and(|s| s >= STALL_STEAL_PCT)
    }

    /// How long the generator was held up in the interval.
    fn stall_ms(&self) -> f64 {
        self.loop_lag_ms
    }

    /// What made the interval stalled, in words: the rule that fired, with its figure
    /// ("its event loop ran 190 ms late", "the host took 25% of its CPUs for other guests").
    pub fn stall_cause(&self) -> String {
        stall_causes(&[self], "")
    }

    /// Whether the generator was the limit in this interval.
    pub fn saturated(&self) -> bool {
        let cpu = self.worker_cpu_pct.unwrap_or(0.0);
        cpu >= SATURATED_CPU_PCT || (self.loop_lag_ms >= SATURATED_LAG_MS && cpu >= BUSY_CPU_PCT)
    }
}

/// The samples that say something about the generator under load: not the first interval
/// (start-up: connects and spawns), not the last (the stop grace).
fn judged(samples: &[Sample], intervals: usize) -> &[Sample] {
    let end = samples.len().min(intervals).saturating_sub(1);
    &samples[1.min(end)..end]
}

/// Judges the generator of a finished run: its verdict from the intervals under load, then the
/// stalls of its whole history.
pub(crate) fn judge(record: &mut RunRecord, samples: &[Sample]) {
    record.generator = GeneratorCheck::of(judged(samples, record.history.len()));
    record.generator.note_stalls(&record.history);
}

impl GeneratorCheck {
    /// Judges the samples of a run: bound when at least 10% of the intervals (and at least
    /// two) were saturated.
    pub fn of(samples: &[Sample]) -> GeneratorCheck {
        let intervals = samples.len();
        let saturated = samples.iter().filter(|s| s.saturated()).count();
        let max_cpu = samples
            .iter()
            .filter_map(|s| s.worker_cpu_pct)
            .reduce(f64::max);
        let max_lag = samples.iter().map(|s| s.loop_lag_ms).fold(0.0, f64::max);
        let bound = saturated >= 2 && saturated * 10 >= intervals;
        let cpu = max_cpu.map_or("not readable".to_string(), |c| format!("up to {c:.0}%"));
        let evidence = if bound {
            format!("generator-bound: in {saturated} of {intervals} intervals a worker was at {SATURATED_CPU_PCT:.0}%+ of its core, or busy with its event loop running timers {SATURATED_LAG_MS:.0}+ ms late (worker CPU {cpu}, loop lag up to {max_lag:.1} ms), so the results may show blast's limit rather than the target's: give blast more cores or fewer users per core")
        } else {
            format!("not generator-bound: worker CPU {cpu}, event loop lag up to {max_lag:.1} ms ({saturated} of {intervals} intervals saturated)")
        };
        GeneratorCheck {
            bound,
            saturated_intervals: saturated,
            intervals,
            max_worker_cpu_pct: max_cpu,
            max_loop_lag_ms: max_lag,
            evidence,
            ..GeneratorCheck::default()
        }
    }

    /// Notes the intervals of `history` in which the generator stalled, and says so first in
    /// the evidence: latencies there include blast's own pause, not only the server's time.
    pub fn note_stalls(&mut self, history: &[Point]) {
        let stalled: Vec<&Point> = history.iter().filter(|p| p.sample.stalled()).collect();
        self.stalled = !stalled.is_empty();
        self.stalled_intervals = stalled.len();
        // Neighbouring stalled intervals are one stall (workers see the same pause, and may
        // report it on either side of an interval's end): each window counts its worst.
        let mut windows: Vec<(f64, f64, f64)> = Vec::new();
        for p in &stalled {
            let held = p.sample.stall_ms();
            match windows.last_mut() {
                Some(w) if p.start_s <= w.1 + 0.01 => {
                    w.1 = p.t_s;
                    w.2 = w.2.max(held);
                }
                _ => windows.push((p.start_s, p.t_s, held)),
            }
        }
        self.stall_ms = windows.iter().map(|w| w.2).sum();
        self.stall_windows = windows.iter().map(|w| (w.0, w.1)).collect();
        let waited = history
            .iter()
            .filter_map(|p| p.sample.run_queue_ms)
            .fold(0.0, f64::max);
        // Clauses in lower case joined by "; ", the verdict's among them, so that the
        // evidence reads as one sentence wherever it is shown.
        if waited >= STALL_MS {
            self.evidence = format!(
                "{}; other processes kept a worker waiting for a CPU for up to {waited:.0} ms in an interval",
                self.evidence
            );
        }
        if self.stalled {
            let windows: Vec<String> = self
                .stall_windows
                .iter()
                .map(|(a, b)| format!("{a:.0}-{b:.0} s"))
                .collect();
            let samples: Vec<&Sample> = stalled.iter().map(|p| &p.sample).collect();
            self.evidence = format!(
                "generator stalled at {} ({}), so latencies in that window are not the server's; {}",
                windows.join(", "),
                stall_causes(&samples, "up to "),
                self.evidence
            );
        }
    }

    /// Whether the generator stalled at some time within `[start_s, end_s]`.
    pub fn stalled_during(&self, start_s: f64, end_s: f64) -> bool {
        self.stall_windows
            .iter()
            .any(|&(a, b)| a < end_s && start_s < b)
    }
}

/// The report's findings about the generator itself: stalls, saturation, late sends.
pub(crate) fn findings(run: &RunRecord) -> Vec<Finding> {
    stalls(run).into_iter().chain(generator(run)).collect()
}

fn stalls(run: &RunRecord) -> Option<Finding> {
    let g = &run.generator;
    g.stalled.then(|| Finding {
        evidence: own_series(run),
        text: format!(
            "**The generator stalled**: {}",
            g.evidence.split(". ").next().unwrap_or(&g.evidence)
        ),
        action: "Find what paused blast there (another process, a VM pause, swapping) and re-run; do not tune the target for that window.".into(),
        weight: 70.0,
    })
}

fn generator(run: &RunRecord) -> Option<Finding> {
    if run.generator.bound {
        return Some(Finding {
            evidence: own_series(run),
            text: format!("**The generator was the limit**: {}", run.generator.evidence),
            action: "Re-run with more cores for blast (or fewer users per core) before tuning the target.".into(),
            weight: 60.0,
        });
    }
    let late = run.late_sends?;
    if late * 100 <= run.requests.max(1) {
        return Some(Finding {
            evidence: own_series(run),
            text: format!(
                "The generator kept its schedule: {late} of {} sends started more than 2 ms late.",
                run.requests
            ),
            action: String::new(),
            weight: 0.0,
        });
    }
    // Sends wait when every connection is busy. Little's law says whether the cap was too
    // small for the server at its usual speed, or the server held the connections.
    let service = run.service_time_ms.as_ref()?;
    let needed = run.target_rate? * service.mean / 1000.0;
    let cap = run.max_connections? as f64;
    if needed >= 0.8 * cap {
        return Some(Finding {
            evidence: own_series(run),
            text: format!("**The connection cap was a limit**: {late} of {} sends started more than 2 ms behind schedule; the rate and the mean service time ({:.2} ms) need about {needed:.0} connections busy at once, against --max-connections {cap:.0}. Latency from the intended start includes that wait.", run.requests, service.mean),
            action: "Re-run with a higher --max-connections before tuning the target.".into(),
            weight: 50.0,
        });
    }
    // The backlog peaks while the server holds on; the slow responses land in the interval
    // after, so each is found on its own.
    let backlog = run.history.iter().map(|p| p.backlog).max().unwrap_or(0);
    let slowest = run
        .history
        .iter()
        .filter(|p| p.max_ms.is_some())
        .max_by(|a, b| a.max_ms.unwrap_or(0.0).total_cmp(&b.max_ms.unwrap_or(0.0)));
    let when = slowest.map_or(String::new(), |p| {
        format!(
            "; the slowest interval was {:.0}-{:.0} s (max {:.0} ms), with up to {backlog} sends waiting",
            p.start_s,
            p.t_s,
            p.max_ms.unwrap_or(0.0)
        )
    });
    Some(Finding {
        evidence: own_series(run),
        text: format!("**The server held its connections**: {late} of {} sends started more than 2 ms behind schedule{when}. At the mean service time ({:.2} ms) the rate needs about {needed:.0} of the {cap:.0} connections, so they were all busy only because responses stopped coming: the wait is the server's, and more connections would move the queue into it.", run.requests, service.mean),
        action: "Find what held the server when sends fell behind (a pause, a lock, a slow dependency).".into(),
        weight: 50.0,
    })
}

/// blast's own series: what the generator findings read.
fn own_series(run: &RunRecord) -> Vec<Evidence> {
    vec![
        Evidence::over("blast's event-loop lag (ms)", &run.history, |p| {
            Some(p.sample.loop_lag_ms)
        }),
        Evidence::over("blast's worker CPU (%)", &run.history, |p| {
            p.sample.worker_cpu_pct
        }),
        Evidence::over(
            "slots due and not yet sent (open model)",
            &run.history,
            |p| (run.late_sends.is_some()).then_some(p.backlog as f64),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sample(cpu: f64, lag_ms: f64) -> Sample {
        Sample {
            worker_cpu_pct: Some(cpu),
            loop_lag_ms: lag_ms,
            monitor: BTreeMap::new(),
            ..Sample::default()
        }
    }

    fn point(start_s: f64, sample: Sample) -> Point {
        Point {
            start_s,
            t_s: start_s + 1.0,
            backlog: 0,
            users: 10,
            rps: 100.0,
            fails_per_s: 0.0,
            p50_ms: Some(1.0),
            p95_ms: Some(2.0),
            p99_ms: Some(3.0),
            max_ms: Some(4.0),
            sample,
            names: Vec::new(),
        }
    }

    #[test]
    fn a_stopped_or_starved_generator_is_marked_stalled_whatever_its_cpu() {
        // SIGSTOP for 2 s from 3 s: the idle worker's loop then runs its timers 2 s late.
        let mut history: Vec<Point> = (0..8).map(|i| point(i as f64, sample(1.0, 0.5))).collect();
        history[3].sample.loop_lag_ms = 2001.0;
        history[4].sample.loop_lag_ms = 150.0;
        // Workers end an interval a little apart: the next may start just before this ends.
        history[4].start_s = 3.99998;
        // A worker waited for a CPU long enough to run its timers 300 ms late at 6 s.
        history[6].sample.loop_lag_ms = 300.0;
        history[6].sample.run_queue_ms = Some(300.0);
        let mut check = GeneratorCheck::of(&[]);
        check.note_stalls(&history);
        assert!(check.stalled);
        assert_eq!(check.stalled_intervals, 3);
        // One stall of about 2 s at 3-5 s (its worst interval), and 300 ms at 6-7 s.
        assert_eq!(check.stall_ms, 2301.0);
        assert_eq!(check.stall_windows, [(3.0, 5.0), (6.0, 7.0)]);
        assert!(
            check
                .evidence
                .starts_with("generator stalled at 3-5 s, 6-7 s")
                && check.evidence.contains("not the server's"),
            "{}",
            check.evidence
        );
        assert!(check.stalled_during(4.5, 4.6) && !check.stalled_during(5.0, 6.0));
        assert!(check
            .evidence
            .contains("waiting for a CPU for up to 300 ms"));
        // Steal from other guests counts; a calm run, or one whose worker shares its core
        // (many short run-queue waits, a punctual loop), has no stall.
        let mut steal = sample(1.0, 0.5);
        steal.steal_pct = Some(25.0);
        let mut shared = sample(60.0, 4.0);
        shared.run_queue_ms = Some(400.0);
        assert!(steal.stalled() && !sample(99.0, 40.0).stalled() && !shared.stalled());
        // The evidence names what fired, in one sentence of clauses.
        assert!(
            check
                .evidence
                .contains("(its event loop ran up to 2001 ms late)"),
            "{}",
            check.evidence
        );
        assert!(!check.evidence.contains(". "), "{}", check.evidence);
    }

    #[test]
    fn a_stall_by_steal_is_said_to_be_steal_not_a_late_loop() {
        let mut steal = sample(10.0, 7.0);
        steal.steal_pct = Some(25.0);
        assert_eq!(
            steal.stall_cause(),
            "the host took 25% of its CPUs for other guests (steal)"
        );
        let history = vec![point(0.0, sample(10.0, 1.0)), point(1.0, steal)];
        let mut check =
            GeneratorCheck::of(&history.iter().map(|p| p.sample.clone()).collect::<Vec<_>>());
        check.note_stalls(&history);
        assert!(
            check
                .evidence
                .contains("(the host took up to 25% of its CPUs for other guests (steal))"),
            "{}",
            check.evidence
        );
        assert!(
            !check.evidence.contains("event loop ran"),
            "{}",
            check.evidence
        );
        assert!(!check.evidence.contains(". "), "{}", check.evidence);
    }

    #[test]
    fn a_saturated_generator_is_marked_with_its_evidence() {
        let busy: Vec<Sample> = (0..10)
            .map(|i| sample(95.0 + i as f64 / 10.0, 3.0))
            .collect();
        let check = GeneratorCheck::of(&busy);
        assert!(check.bound);
        assert_eq!((check.saturated_intervals, check.intervals), (10, 10));
        assert!(
            check.evidence.contains("generator-bound"),
            "{}",
            check.evidence
        );
        // A loop running its timers late counts too, even at moderate CPU.
        let lagging: Vec<Sample> = (0..10).map(|_| sample(50.0, 25.0)).collect();
        assert!(GeneratorCheck::of(&lagging).bound);
    }

    #[test]
    fn a_relaxed_generator_or_a_single_spike_is_not() {
        let calm: Vec<Sample> = (0..10).map(|_| sample(20.0, 1.0)).collect();
        assert!(!GeneratorCheck::of(&calm).bound);
        let mut spike = calm.clone();
        spike[3] = sample(99.0, 40.0);
        let check = GeneratorCheck::of(&spike);
        assert!(!check.bound && check.evidence.starts_with("not generator-bound"));
        assert_eq!(check.max_loop_lag_ms, 40.0);
    }
}
