//! `blast compare`: whether the runs of a new build differ from those of the old one by more
//! than the runs' own noise.
//!
//! Every figure (requests/s, failure rate, p50 to p99.9, max) is compared for the whole run and
//! for each request name. The difference gets a 95 % confidence interval from a bootstrap over
//! the runs' intervals, in blocks of consecutive intervals so that their autocorrelation is
//! kept; with several runs on a side, each resample first draws runs, then blocks within them
//! (a two-stage bootstrap, so the run-to-run spread is in the interval). A Mann-Whitney U test
//! on the per-interval values is a second opinion. A row changed only when its interval
//! excludes zero *and* its estimate is at least the minimum effect.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

use crate::bootstrap::{autocorrelation, mann_whitney, percentile_interval, resample};
use crate::merge::Shards;
use crate::record::RunRecord;

/// Percentiles judged only with at least this many requests beyond them on each side: fewer
/// make the tail a handful of requests, whose bootstrap interval is too narrow to trust.
const TAIL_REQUESTS: f64 = 10.0;
/// The smallest failure-rate change called a change, in percentage points.
const MIN_FAILURE_PP: f64 = 0.1;
/// The seed of the resampling: the same records always give the same table.
const SEED: u64 = 0x5eed_b1a5;

/// A figure compared for every row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Stat {
    /// Requests per second.
    #[serde(rename = "rps")]
    Rps,
    /// Failed requests in % of requests.
    #[serde(rename = "failures")]
    Failures,
    /// Median latency.
    #[serde(rename = "p50")]
    P50,
    /// 90th percentile.
    #[serde(rename = "p90")]
    P90,
    /// 99th percentile.
    #[serde(rename = "p99")]
    P99,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    P999,
    /// Highest latency.
    #[serde(rename = "max")]
    Max,
}

impl Stat {
    /// Every figure, in the order of the tables.
    pub const ALL: [Stat; 7] = [
        Stat::Rps,
        Stat::Failures,
        Stat::P50,
        Stat::P90,
        Stat::P99,
        Stat::P999,
        Stat::Max,
    ];
    const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

    /// Its name in tables and gates.
    pub fn key(self) -> &'static str {
        match self {
            Stat::Rps => "rps",
            Stat::Failures => "failures",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::P999 => "p99.9",
            Stat::Max => "max",
        }
    }

    /// The figure a gate names (`errors` and `p999` also read).
    pub fn parse(text: &str) -> Option<Stat> {
        Some(match text {
            "rps" => Stat::Rps,
            "failures" | "errors" => Stat::Failures,
            "p50" => Stat::P50,
            "p90" => Stat::P90,
            "p99" => Stat::P99,
            "p99.9" | "p999" => Stat::P999,
            "max" => Stat::Max,
            _ => return None,
        })
    }

    fn quantile(self) -> Option<usize> {
        match self {
            Stat::P50 => Some(0),
            Stat::P90 => Some(1),
            Stat::P99 => Some(2),
            Stat::P999 => Some(3),
            _ => None,
        }
    }

    /// Failure rates change by percentage points; the others by a share of the base value.
    fn in_points(self) -> bool {
        self == Stat::Failures
    }
}

/// What a row's change means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Better beyond the noise and by at least the minimum effect.
    Better,
    /// Worse beyond the noise and by at least the minimum effect.
    Worse,
    /// Within the noise, or smaller than the minimum effect.
    NoChange,
    /// Too few requests beyond the percentile to judge it.
    TooFew,
    /// The max is one request: reported, never judged.
    NotJudged,
}

/// One figure of one row, base against new.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// Which figure.
    pub stat: Stat,
    /// The base runs' value (requests/s, % failed, or ms).
    pub base: f64,
    /// The new runs' value.
    pub new: f64,
    /// New against base: % of base, or percentage points for the failure rate.
    pub change: f64,
    /// The 95 % confidence interval of `change`; `null` when it cannot be computed.
    pub interval: Option<(f64, f64)>,
    /// The Mann-Whitney U test's two-sided p-value on the per-interval values.
    pub mann_whitney_p: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

impl Change {
    /// The verdict in words: faster/slower, fewer/more failures, or why there is none.
    pub fn verdict_text(&self) -> &'static str {
        match (self.verdict, self.stat) {
            (Verdict::Better, Stat::Failures) => "fewer failures",
            (Verdict::Worse, Stat::Failures) => "more failures",
            (Verdict::Better, _) => "faster",
            (Verdict::Worse, _) => "slower",
            (Verdict::NoChange, _) => "no change",
            (Verdict::TooFew, _) => "too few",
            (Verdict::NotJudged, _) => "not judged",
        }
    }

    /// The bootstrap and the U test disagree on whether there is a difference at all.
    pub fn disputed(&self) -> bool {
        let significant = self.interval.is_some_and(|(lo, hi)| lo > 0.0 || hi < 0.0);
        matches!(
            self.verdict,
            Verdict::Better | Verdict::Worse | Verdict::NoChange
        ) && self
            .mann_whitney_p
            .is_some_and(|p| (p < 0.05) != significant)
    }
}

/// The whole run, or one request name.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `all requests`, or `METHOD name`.
    pub name: String,
    /// One per [`Stat::ALL`].
    pub changes: Vec<Change>,
}

/// How the comparison was made.
#[derive(Clone, Debug)]
pub struct Options {
    /// The smallest change called one, in % of the base value.
    pub min_effect_pct: f64,
    /// Bootstrap resamples.
    pub resamples: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            min_effect_pct: 5.0,
            resamples: 2000,
        }
    }
}

/// A comparison of base runs with new runs.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The base runs' files (a sharded run's files joined by `+`).
    pub base: Vec<String>,
    /// The new runs' files.
    pub new: Vec<String>,
    /// The confidence level of the intervals.
    pub level: f64,
    /// The smallest change called one, in %.
    pub min_effect_pct: f64,
    /// Bootstrap resamples.
    pub resamples: usize,
    /// The block length, in intervals, of each base run and then each new run.
    pub blocks: Vec<usize>,
    /// How the intervals were computed, in a sentence.
    pub method: String,
    /// What makes the runs less comparable (different loads, an interrupted run...).
    pub warnings: Vec<String>,
    /// The whole run first, then each request name found on both sides.
    pub rows: Vec<Row>,
    /// Request names only the base or only the new runs have.
    pub unmatched: Vec<String>,
    #[serde(skip)]
    charts: ChartData,
}

/// One run as the comparison reads it: every interval's counts and latencies, per row.
pub struct Run {
    file: String,
    /// Requests per second are over this, as in the record.
    sending_s: f64,
    start_s: Vec<f64>,
    secs: Vec<f64>,
    /// Shorter than half an interval: the stop's partial interval, left out of the U test.
    partial: Vec<bool>,
    /// `all requests` first, then each name; per interval.
    rows: Vec<(String, Vec<Cell>)>,
    /// What ran: the scenario's digest, or a URL run's request names (the host may differ).
    identity: String,
    host: String,
    load: String,
    warnings: Vec<String>,
}

/// One row in one interval.
#[derive(Clone, Default)]
struct Cell {
    requests: u64,
    failed: u64,
    /// (latency in µs as HdrHistogram reports it, count), ascending.
    latency: Vec<(u64, u64)>,
}

impl Cell {
    fn of(stats: &blast_engine::Stats) -> Cell {
        Cell {
            requests: stats.counters.requests(),
            failed: stats.counters.failed(),
            latency: recorded(&stats.latency_us),
        }
    }
}

fn recorded(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

impl Run {
    /// The run the records of one run make: a single run's record, or its shards' (merged
    /// exactly, as `blast merge` does). `file` names it in the output.
    pub fn read(file: String, records: Vec<(String, RunRecord)>) -> Result<Run, String> {
        let mut warnings = Vec::new();
        for (f, r) in &records {
            if r.interrupted || r.incomplete.is_some() {
                warnings.push(format!("{f} stopped early"));
            }
            if r.generator.bound || r.generator.stalled {
                warnings.push(format!(
                    "{f}: the generator was the limit or stalled, so its figures measure blast"
                ));
            }
        }
        let host = records.first().ok_or("no record")?.1.host.clone();
        let shards = Shards::new(records)?;
        let names: Vec<String> = shards
            .names()
            .iter()
            .map(|n| format!("{} {}", n.method, n.name))
            .collect();
        let mut rows: Vec<(String, Vec<Cell>)> = std::iter::once("all requests".to_string())
            .chain(names)
            .map(|n| (n, Vec::new()))
            .collect();
        let (mut start_s, mut secs) = (Vec::new(), Vec::new());
        let (report, _) = shards.replay(&mut |s, _| {
            start_s.push(s.start.as_secs_f64());
            secs.push(s.span.as_secs_f64());
            rows[0].1.push(Cell::of(s.window_total));
            for (row, stats) in rows[1..].iter_mut().zip(s.window) {
                row.1.push(Cell::of(stats));
            }
        })?;
        let exact = shards.first();
        let interval = exact.interval_ns as f64 / 1e9;
        Ok(Run {
            file,
            sending_s: report.sending.as_secs_f64(),
            partial: secs.iter().map(|s| *s < interval / 2.0).collect(),
            start_s,
            secs,
            identity: match exact.scenario_source {
                Some(_) => exact.scenario_digest.clone(),
                None => rows[1..].iter().map(|(n, _)| n.as_str()).collect(),
            },
            host,
            load: format!(
                "{} for {:.0} s",
                serde_json::to_string(&exact.schedule).unwrap_or_default(),
                exact.run_time_ns as f64 / 1e9
            ),
            rows,
            warnings,
        })
    }

    fn intervals(&self) -> usize {
        self.secs.len()
    }

    fn row(&self, name: &str) -> Option<&[Cell]> {
        self.rows
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_slice())
    }

    /// The block length: n^(1/3) intervals (Hall, Horowitz and Jing's rate), raised to the
    /// first lag at which neither the requests nor the mean latency per interval is still
    /// correlated (|autocorrelation| under 2/√n), and at most a quarter of the run so that a
    /// resample has at least four blocks to draw.
    fn block(&self) -> usize {
        let n = self.intervals();
        if n < 4 {
            return 1;
        }
        let cells = &self.rows[0].1;
        let requests: Vec<f64> = cells.iter().map(|c| c.requests as f64).collect();
        let mean: Vec<f64> = cells.iter().map(mean_latency).collect();
        let bound = 2.0 / (n as f64).sqrt();
        let uncorrelated = |x: &[f64]| {
            (1..n)
                .find(|&lag| autocorrelation(x, lag).abs() < bound)
                .unwrap_or(n)
        };
        let lag = uncorrelated(&requests).max(uncorrelated(&mean));
        let rate = (n as f64).cbrt().ceil() as usize;
        lag.max(rate).min(n / 4).max(1)
    }
}

fn mean_latency(c: &Cell) -> f64 {
    let n: u64 = c.latency.iter().map(|(_, k)| k).sum();
    match n {
        0 => 0.0,
        _ => c.latency.iter().map(|(v, k)| (v * k) as f64).sum::<f64>() / n as f64,
    }
}

/// The runs of one side, laid end to end.
struct Side<'a> {
    runs: &'a [Run],
    /// Where each run's intervals begin in the side's weight vector, and its block length.
    layout: Vec<(usize, usize, usize)>,
    intervals: usize,
}

impl<'a> Side<'a> {
    fn new(runs: &'a [Run]) -> Side<'a> {
        let mut at = 0;
        let layout = runs
            .iter()
            .map(|r| {
                let entry = (at, r.intervals(), r.block());
                at += r.intervals();
                entry
            })
            .collect();
        Side {
            runs,
            layout,
            intervals: at,
        }
    }

    /// One resample's weights: how often each interval is drawn.
    fn draw(&self, rng: &mut fastrand::Rng, weights: &mut [u32]) {
        resample(&self.layout, rng, weights);
    }

    fn cells(&self, row: &str) -> Vec<&'a Cell> {
        const EMPTY: &Cell = &Cell {
            requests: 0,
            failed: 0,
            latency: Vec::new(),
        };
        self.runs
            .iter()
            .flat_map(|r| match r.row(row) {
                Some(cells) => cells.iter().collect::<Vec<_>>(),
                None => vec![EMPTY; r.intervals()],
            })
            .collect()
    }

    fn secs(&self) -> Vec<f64> {
        self.runs.iter().flat_map(|r| r.secs.clone()).collect()
    }

    fn partial(&self) -> Vec<bool> {
        self.runs.iter().flat_map(|r| r.partial.clone()).collect()
    }

    fn sending_s(&self) -> f64 {
        self.runs.iter().map(|r| r.sending_s).sum()
    }
}

/// One row's figures on one side under some weights.
struct Figures {
    requests: f64,
    failed: f64,
    secs: f64,
    quantiles: [Option<f64>; 4],
    max: Option<f64>,
}

/// A row's latencies on a side as indexes into one table of values, for fast resampling.
struct Table<'a> {
    cells: Vec<&'a Cell>,
    values: Vec<u64>,
    /// Per interval: (index in `values`, count).
    indexed: Vec<Vec<(u32, u64)>>,
    secs: Vec<f64>,
}

impl<'a> Table<'a> {
    fn new(side: &Side<'a>, row: &str) -> Table<'a> {
        let cells = side.cells(row);
        let mut values: Vec<u64> = cells
            .iter()
            .flat_map(|c| c.latency.iter().map(|(v, _)| *v))
            .collect();
        values.sort_unstable();
        values.dedup();
        let indexed = cells
            .iter()
            .map(|c| {
                c.latency
                    .iter()
                    .map(|(v, k)| (values.binary_search(v).expect("listed") as u32, *k))
                    .collect()
            })
            .collect();
        Table {
            cells,
            values,
            indexed,
            secs: side.secs(),
        }
    }

    /// The figures under `weights` (`None`: every interval once); `counts` is scratch space.
    fn figures(&self, weights: Option<&[u32]>, counts: &mut Vec<u64>) -> Figures {
        counts.clear();
        counts.resize(self.values.len(), 0);
        let (mut requests, mut failed, mut secs) = (0.0, 0.0, 0.0);
        for (i, cell) in self.cells.iter().enumerate() {
            let w = weights.map_or(1, |w| w[i]) as u64;
            if w == 0 {
                continue;
            }
            requests += (w * cell.requests) as f64;
            failed += (w * cell.failed) as f64;
            secs += w as f64 * self.secs[i];
            for &(at, k) in &self.indexed[i] {
                counts[at as usize] += w * k;
            }
        }
        let (quantiles, max) = latency_summary(
            counts
                .iter()
                .enumerate()
                .map(|(at, k)| (self.values[at], *k)),
        );
        Figures {
            requests,
            failed,
            secs,
            quantiles,
            max,
        }
    }
}

impl Table<'_> {
    /// The figures of interval `i` alone, from its own cell.
    fn interval(&self, i: usize) -> Figures {
        let cell = self.cells[i];
        let (quantiles, max) = latency_summary(cell.latency.iter().copied());
        Figures {
            requests: cell.requests as f64,
            failed: cell.failed as f64,
            secs: self.secs[i],
            quantiles,
            max,
        }
    }

    /// The figures of each whole interval with requests, for the U test.
    fn whole_intervals(&self, side: &Side) -> Vec<Figures> {
        let partial = side.partial();
        (0..self.cells.len())
            .filter(|&i| !partial[i] && self.cells[i].requests > 0)
            .map(|i| self.interval(i))
            .collect()
    }
}

/// The percentiles ([`Stat::QUANTILES`]) and the max, in ms, of latencies given as ascending
/// (µs, count) pairs: as HdrHistogram reads them, the first value whose cumulative count
/// reaches ceil(q × total).
fn latency_summary(
    latency: impl Iterator<Item = (u64, u64)> + Clone,
) -> ([Option<f64>; 4], Option<f64>) {
    let total: u64 = latency.clone().map(|(_, k)| k).sum();
    let mut quantiles = [None; 4];
    let mut max = None;
    if total == 0 {
        return (quantiles, max);
    }
    let targets = Stat::QUANTILES.map(|q| ((q * total as f64).ceil() as u64).max(1));
    let (mut seen, mut next) = (0, 0);
    for (value, k) in latency.filter(|(_, k)| *k > 0) {
        seen += k;
        while next < 4 && seen >= targets[next] {
            quantiles[next] = Some(value as f64 / 1000.0);
            next += 1;
        }
        max = Some(value as f64 / 1000.0);
    }
    (quantiles, max)
}

impl Figures {
    /// The figure; requests/s scaled from the intervals' time to the record's sending time.
    fn get(&self, stat: Stat, rate_scale: f64) -> Option<f64> {
        match stat {
            Stat::Rps => (self.secs > 0.0).then(|| self.requests / self.secs * rate_scale),
            Stat::Failures => (self.requests > 0.0).then(|| self.failed * 100.0 / self.requests),
            Stat::Max => self.max,
            q => self.quantiles[q.quantile().expect("a percentile")],
        }
    }
}

/// `new` against `base`: in % of base, or in points for failure rates.
fn difference(stat: Stat, base: f64, new: f64) -> Option<f64> {
    if stat.in_points() {
        Some(new - base)
    } else {
        (base > 0.0).then(|| (new / base - 1.0) * 100.0)
    }
}

/// Compares base runs with new runs; an error when they cannot be compared.
pub fn compare(
    base: &[Run],
    new: &[Run],
    options: &Options,
    force: bool,
) -> Result<Comparison, String> {
    let all: Vec<&Run> = base.iter().chain(new).collect();
    let first = all.first().ok_or("no runs to compare")?;
    let mut warnings: Vec<String> = all.iter().flat_map(|r| r.warnings.clone()).collect();
    for r in &all[1..] {
        if r.identity != first.identity {
            let why = format!(
                "{} and {} ran different scenarios (or requests)",
                first.file, r.file
            );
            if !force {
                return Err(format!("{why}: --force compares them anyway"));
            }
            warnings.push(why);
        }
        if r.load != first.load {
            warnings.push(format!(
                "{} and {} ran different loads: {} against {}",
                first.file, r.file, first.load, r.load
            ));
        }
    }
    let mut hosts: Vec<&str> = all.iter().map(|r| r.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    if hosts.len() > 1 {
        warnings.push(format!(
            "the runs ran against different hosts: {}",
            hosts.join(", ")
        ));
    }
    let (b, n) = (Side::new(base), Side::new(new));
    let names = |side: &[Run]| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for (name, _) in side.iter().flat_map(|r| &r.rows) {
            if !v.contains(name) {
                v.push(name.clone());
            }
        }
        v
    };
    let (base_names, new_names) = (names(base), names(new));
    let shared: Vec<String> = base_names
        .iter()
        .filter(|n| new_names.contains(n))
        .cloned()
        .collect();
    let unmatched: Vec<String> = base_names
        .iter()
        .chain(&new_names)
        .filter(|n| !shared.contains(n))
        .cloned()
        .collect();
    // The weights of every resample, drawn once in order, so rows computed in parallel see
    // the same resamples and the same records always give the same intervals.
    let mut rng = fastrand::Rng::with_seed(SEED);
    let draws = |side: &Side, rng: &mut fastrand::Rng| -> Vec<Vec<u32>> {
        (0..options.resamples)
            .map(|_| {
                let mut w = vec![0; side.intervals];
                side.draw(rng, &mut w);
                w
            })
            .collect()
    };
    let (base_draws, new_draws) = (draws(&b, &mut rng), draws(&n, &mut rng));
    // Rows in parallel, one share of them per core (not a thread per request name).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = shared.len().div_ceil(cores).max(1);
    let rows: Vec<Row> = std::thread::scope(|scope| {
        let handles: Vec<_> = shared
            .chunks(share)
            .map(|names| {
                let (b, n) = (&b, &n);
                let (bd, nd) = (&base_draws, &new_draws);
                scope.spawn(move || {
                    names
                        .iter()
                        .map(|name| compare_row(name, (b, bd), (n, nd), options))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a row's comparison panicked"))
            .collect()
    });
    let blocks = b.layout.iter().chain(&n.layout).map(|l| l.2).collect();
    let several = base.len() > 1 && new.len() > 1;
    Ok(Comparison {
        base: base.iter().map(|r| r.file.clone()).collect(),
        new: new.iter().map(|r| r.file.clone()).collect(),
        level: 0.95,
        min_effect_pct: options.min_effect_pct,
        resamples: options.resamples,
        blocks,
        method: format!(
            "{} bootstrap percentile intervals from {} resamples{}; blocks of n^(1/3) intervals or longer while the intervals stay correlated; Mann-Whitney U on the per-interval values as a second opinion",
            if several { "two-stage (runs, then blocks of intervals)" } else { "moving-block" },
            options.resamples,
            if several { "" } else { " of each run's intervals" },
        ),
        warnings,
        rows,
        unmatched,
        charts: ChartData::of(base, new),
    })
}

type Draws<'a, 'b> = (&'a Side<'b>, &'a Vec<Vec<u32>>);

fn compare_row(name: &str, base: Draws, new: Draws, options: &Options) -> Row {
    let (bt, nt) = (Table::new(base.0, name), Table::new(new.0, name));
    let mut scratch = Vec::new();
    let (bf, nf) = (
        bt.figures(None, &mut scratch),
        nt.figures(None, &mut scratch),
    );
    // Requests/s as the records state them: over the time sending, not the intervals'.
    let scale = |f: &Figures, side: &Side| match side.sending_s() {
        s if s > 0.0 && f.secs > 0.0 => f.secs / s,
        _ => 1.0,
    };
    let (bs, ns) = (scale(&bf, base.0), scale(&nf, new.0));
    let mut boot: Vec<Vec<f64>> = vec![Vec::with_capacity(options.resamples); Stat::ALL.len()];
    for (bw, nw) in base.1.iter().zip(new.1) {
        let (b, n) = (
            bt.figures(Some(bw), &mut scratch),
            nt.figures(Some(nw), &mut scratch),
        );
        for (i, stat) in Stat::ALL.into_iter().enumerate() {
            if let (Some(x), Some(y)) = (b.get(stat, bs), n.get(stat, ns)) {
                if let Some(d) = difference(stat, x, y) {
                    boot[i].push(d);
                }
            }
        }
    }
    let (b_intervals, n_intervals) = (bt.whole_intervals(base.0), nt.whole_intervals(new.0));
    let changes = Stat::ALL
        .into_iter()
        .zip(boot)
        .map(|(stat, boot)| {
            let base_value = bf.get(stat, bs).unwrap_or(0.0);
            let new_value = nf.get(stat, ns).unwrap_or(0.0);
            let change = difference(stat, base_value, new_value).unwrap_or(0.0);
            // A figure missing from many resamples (a rare request) has no interval.
            let interval = (boot.len() * 10 >= options.resamples * 9)
                .then(|| percentile_interval(boot, 0.95))
                .flatten();
            let verdict = judge(stat, (&bf, &nf), base_value, change, interval, options);
            Change {
                stat,
                base: base_value,
                new: new_value,
                change,
                interval,
                mann_whitney_p: mann_whitney(
                    &values(&b_intervals, stat),
                    &values(&n_intervals, stat),
                ),
                verdict,
            }
        })
        .collect();
    Row {
        name: name.to_string(),
        changes,
    }
}

fn judge(
    stat: Stat,
    (base, new): (&Figures, &Figures),
    base_value: f64,
    change: f64,
    interval: Option<(f64, f64)>,
    options: &Options,
) -> Verdict {
    if stat == Stat::Max {
        return Verdict::NotJudged;
    }
    if let Some(q) = stat.quantile() {
        let beyond = 1.0 - Stat::QUANTILES[q];
        if base.requests * beyond < TAIL_REQUESTS || new.requests * beyond < TAIL_REQUESTS {
            return Verdict::TooFew;
        }
    }
    let Some((lo, hi)) = interval else {
        return Verdict::TooFew;
    };
    let min = match stat.in_points() {
        true => MIN_FAILURE_PP.max(base_value * options.min_effect_pct / 100.0),
        false => options.min_effect_pct,
    };
    if !(lo > 0.0 || hi < 0.0) || change.abs() < min {
        return Verdict::NoChange;
    }
    let higher_is_better = stat == Stat::Rps;
    match (change > 0.0) == higher_is_better {
        true => Verdict::Better,
        false => Verdict::Worse,
    }
}

/// One figure of each of `intervals`.
fn values(intervals: &[Figures], stat: Stat) -> Vec<f64> {
    intervals.iter().filter_map(|f| f.get(stat, 1.0)).collect()
}

impl Comparison {
    /// The whole run's judged changes in a few words: `no change`, or each change with its
    /// figure, e.g. `slower: p99 +12.3%, p90 +8.0%; more failures: +2.00pp`.
    pub fn verdict_summary(&self) -> String {
        let Some(row) = self.rows.first() else {
            return "no requests to compare".into();
        };
        let mut by_verdict: Vec<(&str, Vec<String>)> = Vec::new();
        for c in &row.changes {
            if !matches!(c.verdict, Verdict::Better | Verdict::Worse) {
                continue;
            }
            let what = format!("{} {}", c.stat.key(), change_text(c)).replace("failures ", "");
            match by_verdict.iter_mut().find(|(v, _)| *v == c.verdict_text()) {
                Some((_, list)) => list.push(what),
                None => by_verdict.push((c.verdict_text(), vec![what])),
            }
        }
        if by_verdict.is_empty() {
            return "no change".into();
        }
        by_verdict
            .iter()
            .map(|(v, list)| format!("{v}: {}", list.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A folder of runs as a trend: one line per run, oldest first, with its requests/s and p99
/// and the verdict against the previous run of the same job (scenario, or URL requests).
pub fn history(records: Vec<(String, RunRecord)>, options: &Options) -> String {
    // Files of one folder: their names say enough.
    let mut records: Vec<(String, RunRecord)> = records
        .into_iter()
        .map(|(file, r)| {
            let name = std::path::Path::new(&file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            (name.unwrap_or(file), r)
        })
        .collect();
    records.sort_by(|a, b| (&a.1.started_at, &a.0).cmp(&(&b.1.started_at, &b.0)));
    let mut out =
        String::from("Runs by time, each against the previous run of the same scenario:\n");
    let mut previous: Vec<Run> = Vec::new();
    for (file, record) in records {
        let p99 = record
            .latency_ms
            .as_ref()
            .map_or("-".into(), |l| format!("{:.2} ms", l.p99));
        let head = format!(
            "{}  {}  {:.1}/s  p99 {p99}",
            record.started_at,
            truncate(&file, 30),
            record.rps
        );
        let verdict = match record.exact {
            None => "(no exact data: written before 2026-12-06)".to_string(),
            Some(_) => match Run::read(file.clone(), vec![(file.clone(), record)]) {
                Err(e) => format!("(cannot be read: {e})"),
                Ok(run) => {
                    let before = previous.iter().rposition(|p| p.identity == run.identity);
                    let verdict = match before {
                        None => "first of its scenario".to_string(),
                        Some(i) => match compare(
                            &previous[i..=i],
                            std::slice::from_ref(&run),
                            options,
                            false,
                        ) {
                            Ok(c) => format!(
                                "vs {}: {}",
                                truncate(&previous[i].file, 30),
                                c.verdict_summary()
                            ),
                            Err(e) => e,
                        },
                    };
                    previous.push(run);
                    verdict
                }
            },
        };
        let _ = writeln!(out, "{head}  {verdict}");
    }
    out
}

/// One interval of a run's timeline: its end (s), requests/s and p99 (ms).
type TimePoint = (f64, f64, Option<f64>);

/// What the HTML page draws: the whole run's distribution per side and each run's timeline.
#[derive(Clone, Debug, Default)]
struct ChartData {
    /// (percentile, ms) of each side's pooled latency.
    distributions: [Vec<(f64, f64)>; 2],
    /// Per run: (side, its timeline).
    timelines: Vec<(usize, Vec<TimePoint>)>,
}

impl ChartData {
    fn of(base: &[Run], new: &[Run]) -> ChartData {
        let distribution = |runs: &[Run]| {
            let mut all: BTreeMap<u64, u64> = BTreeMap::new();
            for cell in runs.iter().flat_map(|r| &r.rows[0].1) {
                for (v, k) in &cell.latency {
                    *all.entry(*v).or_default() += k;
                }
            }
            let total: u64 = all.values().sum();
            let mut seen = 0;
            all.into_iter()
                .map(|(v, k)| {
                    seen += k;
                    let p = seen as f64 * 100.0 / total as f64;
                    (p.min(99.9999), v as f64 / 1000.0)
                })
                .collect()
        };
        let timelines = [base, new]
            .into_iter()
            .enumerate()
            .flat_map(|(side, runs)| {
                runs.iter().map(move |r| {
                    let runs = std::slice::from_ref(r);
                    let table = Table::new(&Side::new(runs), "all requests");
                    let points = (0..r.intervals())
                        .map(|i| {
                            let f = table.interval(i);
                            let t = r.start_s[i] + r.secs[i];
                            (t, f.get(Stat::Rps, 1.0).unwrap_or(0.0), f.quantiles[2])
                        })
                        .collect();
                    (side, points)
                })
            })
            .collect();
        ChartData {
            distributions: [distribution(base), distribution(new)],
            timelines,
        }
    }
}

/// A CI gate: `STAT>+N%` or `STAT<-N%` (`pp` for the failure rate's points), crossed when a
/// row's change is judged (beyond the noise and the minimum effect) and its estimate passes N.
#[derive(Clone, Debug)]
pub struct Gate {
    text: String,
    stat: Stat,
    above: bool,
    limit: f64,
}

impl Gate {
    /// Reads a gate such as `p99>+10%`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Gate, String> {
        let bad = |why: &str| format!("--fail-on {text:?}: {why}");
        let at = text
            .find(['>', '<'])
            .ok_or_else(|| bad("expected STAT>+N% or STAT<-N%, e.g. p99>+10%"))?;
        let stat = Stat::parse(text[..at].trim())
            .ok_or_else(|| bad("the figure is one of rps, failures, p50, p90, p99, p99.9"))?;
        if stat == Stat::Max {
            return Err(bad(
                "the max is one request and is never judged: gate on p99.9",
            ));
        }
        let value = text[at + 1..].trim();
        let number = value
            .strip_suffix("pp")
            .or_else(|| value.strip_suffix('%'))
            .ok_or_else(|| bad("the limit ends in % (pp for failures)"))?;
        let limit: f64 = number
            .trim()
            .parse()
            .map_err(|_| bad("the limit is not a number"))?;
        Ok(Gate {
            text: text.to_string(),
            stat,
            above: &text[at..=at] == ">",
            limit,
        })
    }

    /// Every row whose change crosses the gate, as one line each.
    pub fn crossed(&self, comparison: &Comparison) -> Vec<String> {
        comparison
            .rows
            .iter()
            .flat_map(|row| row.changes.iter().map(move |c| (row, c)))
            .filter(|(_, c)| {
                c.stat == self.stat
                    && matches!(c.verdict, Verdict::Better | Verdict::Worse)
                    && match self.above {
                        true => c.change > self.limit,
                        false => c.change < self.limit,
                    }
            })
            .map(|(row, c)| {
                format!(
                    "{} of {}: {} {} crosses {}",
                    c.stat.key(),
                    row.name,
                    change_text(c),
                    interval_text(c),
                    self.text
                )
            })
            .collect()
    }
}

fn value_text(stat: Stat, v: f64) -> String {
    match stat {
        Stat::Rps => format!("{v:.1}/s"),
        Stat::Failures => format!("{v:.2}%"),
        _ if v >= 100.0 => format!("{v:.0} ms"),
        _ => format!("{v:.2} ms"),
    }
}

fn change_text(c: &Change) -> String {
    match c.stat.in_points() {
        true => format!("{:+.2}pp", c.change),
        false => format!("{:+.1}%", c.change),
    }
}

fn interval_text(c: &Change) -> String {
    match (c.interval, c.stat.in_points()) {
        (None, _) => "-".into(),
        (Some((lo, hi)), true) => format!("[{lo:+.2}, {hi:+.2}]"),
        (Some((lo, hi)), false) => format!("[{lo:+.1}, {hi:+.1}]"),
    }
}

fn header(c: &Comparison) -> String {
    let runs = |files: &[String]| match files.len() {
        1 => files[0].clone(),
        n => format!("{n} runs"),
    };
    format!(
        "base {} vs new {}: {:.0}% intervals, minimum effect {}%",
        runs(&c.base),
        runs(&c.new),
        c.level * 100.0,
        c.min_effect_pct
    )
}

impl Comparison {
    /// The terminal table, within 80 columns; `*` marks a verdict the U test disputes.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", header(self));
        for w in &self.warnings {
            let _ = writeln!(out, "note: {w}");
        }
        let _ = writeln!(
            out,
            "{:<9} {:>11} {:>11} {:>9} {:>17}  verdict",
            "", "base", "new", "change", "95% interval"
        );
        for row in &self.rows {
            let _ = writeln!(out, "{}", truncate(&row.name, 80));
            for c in &row.changes {
                let _ = writeln!(
                    out,
                    "  {:<7} {:>11} {:>11} {:>9} {:>17}  {}{}",
                    c.stat.key(),
                    value_text(c.stat, c.base),
                    value_text(c.stat, c.new),
                    change_text(c),
                    interval_text(c),
                    c.verdict_text(),
                    if c.disputed() { " *" } else { "" }
                );
            }
        }
        if self
            .rows
            .iter()
            .flat_map(|r| &r.changes)
            .any(Change::disputed)
        {
            let _ = writeln!(out, "* the Mann-Whitney U test on the intervals disagrees");
        }
        for name in &self.unmatched {
            let _ = writeln!(out, "only on one side: {name}");
        }
        out
    }

    /// The same as a Markdown table, with the U test's p-values.
    pub fn markdown(&self) -> String {
        let mut out = format!("**{}**\n\n", header(self));
        for w in &self.warnings {
            let _ = writeln!(out, "- note: {w}");
        }
        if !self.warnings.is_empty() {
            out.push('\n');
        }
        out.push_str("| request | figure | base | new | change | 95% interval | U test p | verdict |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
        for row in &self.rows {
            for c in &row.changes {
                let mut cells = cells(&row.name, c);
                cells[0] = cells[0].replace('|', "\\|");
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
        }
        let _ = writeln!(out, "\n{}.", self.method);
        out
    }

    /// The comparison as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a comparison serializes") + "\n"
    }

    /// A self-contained HTML page: the table, both latency distributions overlaid and every
    /// run's requests/s and p99 over time.
    pub fn html(&self) -> String {
        use crate::svg::{escape, render, Chart, Series, XAxis};
        const COLORS: [&str; 2] = ["#1f77b4", "#d62728"];
        let side_name = ["base", "new"];
        let distributions = Chart {
            title: "Latency distribution".into(),
            x_label: "percentile".into(),
            y_label: "ms".into(),
            x_axis: XAxis::Percentile,
            series: (0..2)
                .map(|s| Series {
                    label: side_name[s].into(),
                    color: COLORS[s],
                    points: self.charts.distributions[s].clone(),
                })
                .collect(),
        };
        let timeline = |title: &str, y: &str, pick: fn(&TimePoint) -> Option<f64>| Chart {
            title: title.into(),
            x_label: "seconds".into(),
            y_label: y.into(),
            x_axis: XAxis::Linear,
            series: self
                .charts
                .timelines
                .iter()
                .map(|(side, points)| Series {
                    label: side_name[*side].into(),
                    color: COLORS[*side],
                    points: points
                        .iter()
                        .filter_map(|p| pick(p).map(|v| (p.0, v)))
                        .collect(),
                })
                .collect(),
        };
        let mut rows = String::new();
        for row in &self.rows {
            for c in &row.changes {
                let class = match c.verdict {
                    Verdict::Better => "better",
                    Verdict::Worse => "worse",
                    _ => "same",
                };
                let cells: Vec<String> = cells(&row.name, c)
                    .iter()
                    .map(|cell| format!("<td>{}</td>", escape(cell)))
                    .collect();
                let _ = write!(rows, "<tr class=\"{class}\">{}</tr>", cells.concat());
            }
        }
        let notes: String = self
            .warnings
            .iter()
            .map(|w| format!("<p class=\"note\">note: {}</p>", escape(w)))
            .collect();
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>blast compare</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child,td:nth-child(2){{text-align:left}}tr.worse{{background:#fdd}}tr.better{{background:#dfd}}.note{{color:#a60}}</style></head><body><h1>blast compare</h1><p>{}</p>{notes}<table><tr><th>request</th><th>figure</th><th>base</th><th>new</th><th>change</th><th>95% interval</th><th>U test p</th><th>verdict</th></tr>{rows}</table><p>{}.</p>{}{}{}</body></html>\n",
            escape(&header(self)),
            escape(&self.method),
            render(&distributions),
            render(&timeline("Requests per second", "req/s", |p| Some(p.1))),
            render(&timeline("p99 per interval", "ms", |p| p.2)),
        )
    }
}

/// One change as the Markdown and HTML tables show it.
fn cells(name: &str, c: &Change) -> [String; 8] {
    [
        name.to_string(),
        c.stat.key().to_string(),
        value_text(c.stat, c.base),
        value_text(c.stat, c.new),
        change_text(c),
        interval_text(c),
        match c.mann_whitney_p {
            None => "-".into(),
            Some(p) if p < 0.001 => "<0.001".into(),
            Some(p) => format!("{p:.3}"),
        },
        c.verdict_text().to_string(),
    ]
}

fn truncate(text: &str, width: usize) -> String {
    match text.char_indices().nth(width - 1) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_grows_with_autocorrelation() {
        let run = |requests: Vec<u64>| Run {
            file: "r".into(),
            sending_s: requests.len() as f64,
            start_s: (0..requests.len()).map(|i| i as f64).collect(),
            secs: vec![1.0; requests.len()],
            partial: vec![false; requests.len()],
            rows: vec![(
                "all requests".into(),
                requests
                    .iter()
                    .map(|&r| Cell {
                        requests: r,
                        failed: 0,
                        latency: vec![(1000, r)],
                    })
                    .collect(),
            )],
            identity: String::new(),
            host: String::new(),
            load: String::new(),
            warnings: Vec::new(),
        };
        // Alternating: uncorrelated beyond lag 1, so n^(1/3) wins: 64 intervals, blocks of 4.
        let noisy: Vec<u64> = (0..64).map(|i| 100 + (i * 7919 % 13)).collect();
        assert_eq!(run(noisy).block(), 4);
        // A slow wave stays correlated for many lags: capped at a quarter of the run.
        let wave: Vec<u64> = (0..64).map(|i| 100 + i / 16 * 50).collect();
        assert_eq!(run(wave).block(), 16);
    }

    #[test]
    fn gates_read_their_figure_and_limit() {
        let g = Gate::parse("p99>+10%").unwrap();
        assert!(g.above && g.stat == Stat::P99 && g.limit == 10.0);
        let g = Gate::parse("rps<-5%").unwrap();
        assert!(!g.above && g.stat == Stat::Rps && g.limit == -5.0);
        assert_eq!(Gate::parse("errors>+1pp").unwrap().stat, Stat::Failures);
        for bad in ["p99", "p98>+1%", "max>+1%", "p99>ten%", "p99>+10"] {
            assert!(Gate::parse(bad).is_err(), "{bad}");
        }
    }
}
