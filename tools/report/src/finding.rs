//! A finding of the analysis, the series it read, and the line fit the analyses share.

use crate::record::Point;

/// One finding, with a weight used to rank optimisation opportunities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Finding {
    /// What the data shows, one paragraph of Markdown.
    pub text: String,
    /// What to do about it, one sentence; empty for findings that need no action.
    pub action: String,
    /// Impact for ranking: larger is more urgent.
    pub weight: f64,
    /// The series the finding read, for the reader to check (drawn beside it).
    pub evidence: Vec<Evidence>,
}

/// One series a finding read.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// What the values are, with their unit, e.g. "POST /login, mean latency (ms)".
    pub label: String,
    /// (seconds from the start of the run, value).
    pub points: Vec<(f64, f64)>,
}

impl Evidence {
    /// The series `value` gives over a run's intervals, at each interval's end.
    pub fn over<'a>(
        label: impl Into<String>,
        history: impl IntoIterator<Item = &'a Point>,
        value: impl Fn(&Point) -> Option<f64>,
    ) -> Evidence {
        Evidence {
            label: label.into(),
            points: history
                .into_iter()
                .filter_map(|p| Some((p.t_s, value(p)?)))
                .collect(),
        }
    }

    /// The run's p99 per interval.
    pub fn p99(history: &[Point]) -> Evidence {
        Evidence::over("p99 latency per interval (ms)", history, |p| p.p99_ms)
    }

    /// The users (or connections) per interval.
    pub fn users(history: &[Point]) -> Evidence {
        Evidence::over("users", history, |p| Some(p.users as f64))
    }

    /// A monitored value per interval.
    pub fn monitored(history: &[Point], key: &str) -> Evidence {
        Evidence::over(key, history, |p| p.sample.monitor.get(key).copied())
    }
}

/// Least-squares slope and R² of `points`; `None` when they do not vary.
pub(crate) fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let syy: f64 = points.iter().map(|(_, y)| (y - my).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / sxx, sxy * sxy / (sxx * syy)))
}
