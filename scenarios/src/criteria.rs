//! Success criteria: `p99<500ms`, `/api/v1/cab/[id]/approve/:p95<200ms`, `rps>=10000 for 1m`,
//! `success>=99%`, `timeout==0`, evaluated against a finished run.
//!
//! Grammar: `[NAME:]METRIC OP VALUE [for DURATION]`. NAME is a stats name (or `METHOD NAME`);
//! without it the criterion covers every request. Metrics:
//! - latency: `avg`, `min`, `max`, `median`, `pNN` / `pNN.N` (VALUE in `us`, `ms`, `s` or `m`;
//!   bare numbers are milliseconds);
//! - `rps`: finished requests per second over the run, or with `for D` the best average over
//!   any window of length D (`rps>=10000 for 1m` means 10,000/s held for a minute);
//! - `success`, `failure_rate`: percentages of finished requests;
//! - counts: `requests`, `ok`, `failures`, `skipped`, a failure class (`connect`, `timeout`,
//!   `reset`, `status`, `protocol`, `capture`) or a status code (`status409`).
//!
//! OP is one of `<`, `<=`, `>`, `>=`, `==`, `!=`.

use blast_engine::{FailureClass, Name, PhaseKind, Report, Stats};
use std::fmt;
use std::time::Duration;

use crate::load::parse_duration;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Metric {
    Avg,
    Min,
    Max,
    Quantile(f64),
    Rps,
    Success,
    FailureRate,
    Requests,
    Ok,
    Failures,
    Skipped,
    Class(FailureClass),
    Status(u16),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    const ALL: [(&'static str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
            Op::Eq => measured == threshold,
            Op::Ne => measured != threshold,
        }
    }
}

/// One success criterion.
#[derive(Clone, Debug, PartialEq)]
pub struct Criterion {
    text: String,
    scope: Option<String>,
    metric: Metric,
    op: Op,
    /// Milliseconds for latency metrics, percent for rates, plain otherwise.
    threshold: f64,
    window: Option<Duration>,
    /// Judged on one phase of the run only (`in steady`).
    phase: Option<PhaseKind>,
}

/// The outcome of one criterion.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The criterion as written.
    pub criterion: String,
    /// The measured value with its unit, e.g. `412.3 ms`.
    pub measured: String,
    /// Whether the criterion holds.
    pub pass: bool,
    /// For a failed criterion that can be judged per interval (a percentile, the max, the
    /// success or failure rate): the stretches of the run, as (start s, end s), in which its
    /// intervals failed it. Empty otherwise.
    pub failing: Vec<(f64, f64)>,
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Criterion {
    /// Parses one criterion.
    pub fn parse(text: &str) -> Result<Criterion, String> {
        let bad = |why: &str| {
            format!("invalid criterion {text:?}: {why} (expected e.g. p99<500ms, success>=99%, /path:p95<200ms, rps>=1000 for 1m)")
        };
        let (text_body, phase) = match text.trim().rsplit_once(" in ") {
            Some((body, p)) => {
                let phase = [PhaseKind::RampUp, PhaseKind::Steady, PhaseKind::RampDown]
                    .into_iter()
                    .find(|k| k.as_str() == p.trim())
                    .ok_or_else(|| {
                        bad("the phase after 'in' must be ramp-up, steady or ramp-down")
                    })?;
                (body, Some(phase))
            }
            None => (text, None),
        };
        let (body, window) = match text_body.rsplit_once(" for ") {
            Some((body, d)) => (body, Some(parse_duration(d).map_err(|e| bad(&e))?)),
            None => (text_body, None),
        };
        let (at, op_text, op) = Op::ALL
            .iter()
            .filter_map(|(s, op)| body.find(s).map(|at| (at, *s, *op)))
            .min_by_key(|(at, s, _)| (*at, usize::MAX - s.len()))
            .ok_or_else(|| bad("no comparison"))?;
        let left = body[..at].trim();
        let value = body[at + op_text.len()..].trim();
        let (scope, metric_text) = match left.rsplit_once(':') {
            Some((scope, m)) if !scope.trim().is_empty() => (Some(scope.trim().to_string()), m),
            Some(_) => return Err(bad("empty name before ':'")),
            None => (None, left),
        };
        let metric = parse_metric(metric_text.trim()).ok_or_else(|| bad("unknown metric"))?;
        if window.is_some() && metric != Metric::Rps {
            return Err(bad("'for DURATION' only applies to rps"));
        }
        if phase.is_some() && (scope.is_some() || window.is_some()) {
            return Err(bad(
                "a phase is judged on all its requests: no name and no 'for'",
            ));
        }
        let threshold = parse_threshold(metric, value).ok_or_else(|| bad("bad value"))?;
        Ok(Criterion {
            text: text.trim().to_string(),
            scope,
            metric,
            op,
            threshold,
            window,
            phase,
        })
    }

    /// Checks that the criterion's name exists among `names`, before the run starts.
    pub fn check_names(&self, names: &[Name]) -> Result<(), String> {
        match &self.scope {
            Some(scope) if !names.iter().any(|n| matches(n, scope)) => {
                let known: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                Err(format!(
                    "criterion {:?} names {scope:?}, which no request has (names: {})",
                    self.text,
                    known.join(", ")
                ))
            }
            _ => Ok(()),
        }
    }

    /// Evaluates the criterion against a finished run.
    pub fn evaluate(&self, report: &Report) -> Verdict {
        let phase = self
            .phase
            .map(|kind| report.phases.iter().find(|p| p.kind == kind));
        let stats = match (&self.scope, phase) {
            (_, Some(Some(p))) => p.stats.clone(),
            (_, Some(None)) => Stats::new(false),
            (None, None) => report.total.clone(),
            (Some(scope), None) => {
                let mut merged = Stats::new(report.total.service_us.is_some());
                for n in report.names.iter().filter(|n| matches(&n.name, scope)) {
                    merged.add(&n.stats);
                }
                merged
            }
        };
        let c = &stats.counters;
        let h = &stats.latency_us;
        let finished = c.requests();
        let pct = |n: u64| {
            if finished == 0 {
                f64::NAN
            } else {
                n as f64 * 100.0 / finished as f64
            }
        };
        let ms = |us: u64| {
            if h.is_empty() {
                f64::NAN
            } else {
                us as f64 / 1000.0
            }
        };
        let measured = match self.metric {
            Metric::Avg => {
                if h.is_empty() {
                    f64::NAN
                } else {
                    h.mean() / 1000.0
                }
            }
            Metric::Min => ms(h.min()),
            Metric::Max => ms(h.max()),
            Metric::Quantile(q) => ms(h.value_at_quantile(q)),
            Metric::Rps => match (self.window, phase.flatten()) {
                (_, Some(p)) => {
                    let end = p.end.min(report.sending);
                    finished as f64 / end.saturating_sub(p.start).as_secs_f64().max(1e-9)
                }
                (None, None) => finished as f64 / report.sending.as_secs_f64().max(1e-9),
                (Some(w), None) => best_scoped_rate(report, self.scope.as_deref(), w),
            },
            Metric::Success => pct(c.ok),
            Metric::FailureRate => pct(c.failed()),
            Metric::Requests => finished as f64,
            Metric::Ok => c.ok as f64,
            Metric::Failures => c.failed() as f64,
            Metric::Skipped => c.skipped as f64,
            Metric::Class(class) => c.failures_of(class) as f64,
            Metric::Status(code) => *c.failed_statuses.get(&code).unwrap_or(&0) as f64,
        };
        // NaN (nothing measured) fails every comparison but `!=`; make that fail too.
        let pass = !measured.is_nan() && self.op.holds(measured, self.threshold);
        Verdict {
            criterion: self.text.clone(),
            measured: self.show(measured),
            pass,
            failing: if pass {
                Vec::new()
            } else {
                self.failing(report)
            },
        }
    }

    /// The stretches of the run whose intervals fail this criterion, neighbours joined; empty
    /// when it cannot be judged per interval (averages, counts, rates over a window, phases,
    /// or a scope that covers several names).
    fn failing(&self, report: &Report) -> Vec<(f64, f64)> {
        let name = match &self.scope {
            None => None,
            Some(scope) => {
                let mut hits = report
                    .names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| matches(&n.name, scope));
                match (hits.next(), hits.next()) {
                    (Some((i, _)), None) => Some(i),
                    _ => return Vec::new(),
                }
            }
        };
        if self.phase.is_some() {
            return Vec::new();
        }
        let mut out: Vec<(f64, f64)> = Vec::new();
        for h in &report.history {
            let (requests, failed, p50, p99) = match name {
                Some(i) => {
                    let Some(n) = h.names.get(i) else { continue };
                    (n.requests, n.failed, n.p50_us, n.p99_us)
                }
                None => (
                    h.counters.requests(),
                    h.counters.failed(),
                    h.latency_us[0],
                    h.latency_us[2],
                ),
            };
            if requests == 0 {
                continue;
            }
            let pct = |n: u64| n as f64 * 100.0 / requests as f64;
            let measured = match (self.metric, name) {
                (Metric::Quantile(0.5), _) => p50 as f64 / 1000.0,
                (Metric::Quantile(0.99), _) => p99 as f64 / 1000.0,
                (Metric::Quantile(0.95), None) => h.latency_us[1] as f64 / 1000.0,
                (Metric::Max, None) => h.latency_us[3] as f64 / 1000.0,
                (Metric::Success, _) => pct(requests - failed),
                (Metric::FailureRate, _) => pct(failed),
                _ => return Vec::new(),
            };
            if self.op.holds(measured, self.threshold) {
                continue;
            }
            let (start, end) = (h.start.as_secs_f64(), h.elapsed.as_secs_f64());
            match out.last_mut() {
                Some(last) if start <= last.1 + 0.01 => last.1 = end,
                _ => out.push((start, end)),
            }
        }
        out
    }

    fn show(&self, v: f64) -> String {
        if v.is_nan() {
            return match (self.window, self.phase) {
                (Some(w), _) => format!("nothing: the run was shorter than {w:?}"),
                (None, Some(p)) => format!("nothing: no requests in the {} phase", p.as_str()),
                (None, None) => "nothing: no requests".into(),
            };
        }
        match self.metric {
            Metric::Avg | Metric::Min | Metric::Max | Metric::Quantile(_) => format!("{v:.1} ms"),
            Metric::Rps if self.window.is_some() => format!("{v:.1}/s (best window)"),
            Metric::Rps => format!("{v:.1}/s"),
            Metric::Success | Metric::FailureRate => format!("{v:.2}%"),
            _ => format!("{v:.0}"),
        }
    }
}

fn matches(name: &Name, scope: &str) -> bool {
    name.name == scope
        || scope
            .split_once(' ')
            .is_some_and(|(m, n)| m.eq_ignore_ascii_case(&name.method) && n == name.name)
}

fn parse_metric(text: &str) -> Option<Metric> {
    let class = FailureClass::ALL.iter().find(|c| c.as_str() == text);
    Some(match text {
        "avg" | "mean" => Metric::Avg,
        "min" => Metric::Min,
        "max" => Metric::Max,
        "median" | "med" => Metric::Quantile(0.5),
        "rps" => Metric::Rps,
        "success" => Metric::Success,
        "failure_rate" => Metric::FailureRate,
        "requests" => Metric::Requests,
        "ok" => Metric::Ok,
        "failures" => Metric::Failures,
        "skipped" => Metric::Skipped,
        _ if class.is_some() => Metric::Class(*class?),
        _ if text.starts_with("status") => Metric::Status(text[6..].parse().ok()?),
        _ if text.starts_with('p') => {
            let p: f64 = text[1..].parse().ok()?;
            if !(0.0..=100.0).contains(&p) {
                return None;
            }
            Metric::Quantile(p / 100.0)
        }
        _ => return None,
    })
}

fn parse_threshold(metric: Metric, value: &str) -> Option<f64> {
    let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
    match metric {
        Metric::Avg | Metric::Min | Metric::Max | Metric::Quantile(_) => {
            // Longest suffix first: "ms" before "s".
            let units = [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)];
            for (unit, to_ms) in units {
                if let Some(n) = value.strip_suffix(unit) {
                    return number(n).map(|v| v * to_ms);
                }
            }
            number(value)
        }
        Metric::Success | Metric::FailureRate => number(value.strip_suffix('%').unwrap_or(value)),
        _ => number(value),
    }
}

/// The highest finished-request rate over any `window` of consecutive intervals.
fn best_scoped_rate(report: &Report, scope: Option<&str>, window: Duration) -> f64 {
    // Per-name history is not kept; a scoped rate uses the name's share of the whole run.
    let share = match scope {
        None => 1.0,
        Some(scope) => {
            let total = report.total.counters.requests().max(1) as f64;
            let mine: u64 = report
                .names
                .iter()
                .filter(|n| matches(&n.name, scope))
                .map(|n| n.stats.counters.requests())
                .sum();
            mine as f64 / total
        }
    };
    let intervals: Vec<(Duration, f64)> = report
        .history
        .iter()
        .map(|h| (h.elapsed, h.counters.requests() as f64))
        .collect();
    best_window_rate(&intervals, window).map_or(f64::NAN, |rate| rate * share)
}

/// The highest rate over any run of consecutive intervals lasting at least `window`, from
/// (end of interval since the start, requests in it) pairs in order; `None` if the intervals
/// together are shorter than `window`.
pub fn best_window_rate(intervals: &[(Duration, f64)], window: Duration) -> Option<f64> {
    let start = |i: usize| {
        if i == 0 {
            Duration::ZERO
        } else {
            intervals[i - 1].0
        }
    };
    let mut best: Option<f64> = None;
    let mut from = 0;
    let mut sum = 0.0;
    for to in 0..intervals.len() {
        sum += intervals[to].1;
        // The shortest run ending here that still lasts the window.
        while from < to && intervals[to].0 - start(from + 1) >= window {
            sum -= intervals[from].1;
            from += 1;
        }
        let span = intervals[to].0 - start(from);
        if span >= window {
            let rate = sum / span.as_secs_f64();
            best = Some(best.map_or(rate, |b| b.max(rate)));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_plan_criteria() {
        let c = Criterion::parse("/api/v1/cab/[id]/approve/:p95<200ms").unwrap();
        assert_eq!(c.scope.as_deref(), Some("/api/v1/cab/[id]/approve/"));
        assert_eq!(
            (c.metric, c.op, c.threshold),
            (Metric::Quantile(0.95), Op::Lt, 200.0)
        );
        let c = Criterion::parse("rps>=10000 for 1m").unwrap();
        assert_eq!(
            (c.metric, c.op, c.window),
            (Metric::Rps, Op::Ge, Some(Duration::from_secs(60)))
        );
        let c = Criterion::parse("success>=99%").unwrap();
        assert_eq!((c.metric, c.threshold), (Metric::Success, 99.0));
        assert_eq!(Criterion::parse("p99<1s").unwrap().threshold, 1000.0);
        assert_eq!(Criterion::parse("p99.9 <= 250us").unwrap().threshold, 0.25);
        assert_eq!(Criterion::parse("avg<200").unwrap().threshold, 200.0);
        assert_eq!(
            Criterion::parse("timeout==0").unwrap().metric,
            Metric::Class(FailureClass::Timeout)
        );
        assert_eq!(
            Criterion::parse("status409==0").unwrap().metric,
            Metric::Status(409)
        );
        assert_eq!(
            Criterion::parse("POST /x:ok>=1").unwrap().scope.as_deref(),
            Some("POST /x")
        );
    }

    #[test]
    fn refuses_malformed_criteria() {
        for bad in [
            "p99",
            "p99<",
            "p99<fast",
            "p101<5ms",
            "latency<5ms",
            ":p99<5ms",
            "p99<5ms for 1m",
            "rps>=5 for ever",
            "statusx==0",
        ] {
            assert!(Criterion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_best_window_is_the_highest_rate_held_that_long() {
        let intervals: Vec<(Duration, f64)> = [10.0, 20.0, 30.0, 40.0]
            .iter()
            .enumerate()
            .map(|(i, n)| (Duration::from_secs(i as u64 + 1), *n))
            .collect();
        assert_eq!(
            best_window_rate(&intervals, Duration::from_secs(2)),
            Some(35.0)
        );
        assert_eq!(
            best_window_rate(&intervals, Duration::from_secs(4)),
            Some(25.0)
        );
        assert_eq!(best_window_rate(&intervals, Duration::from_secs(5)), None);
    }

    #[test]
    fn scopes_must_name_a_request() {
        let names = [Name {
            method: "GET".into(),
            name: "/a".into(),
        }];
        assert!(Criterion::parse("/a:p99<5ms")
            .unwrap()
            .check_names(&names)
            .is_ok());
        assert!(Criterion::parse("GET /a:p99<5ms")
            .unwrap()
            .check_names(&names)
            .is_ok());
        assert!(Criterion::parse("/b:p99<5ms")
            .unwrap()
            .check_names(&names)
            .is_err());
    }
}
