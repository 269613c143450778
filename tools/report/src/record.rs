//! The run record: everything a finished run produced, as `--json` writes it and `blast report`
//! reads it back. Keys are documented in `docs/outputs.md`.

use blast_engine::{Counters, FailureClass, Report, Schedule};
use blast_scenarios::Verdict;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::failures::FailureRow;
use crate::time::utc_seconds;

/// What the caller knows about a run that the engine does not.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// The command line, program name first.
    pub command: Vec<String>,
    /// Base URL of the target.
    pub host: String,
    /// Built-in profile run, if any.
    pub profile: Option<String>,
    /// Scenario name (profile or file), if any.
    pub scenario: Option<String>,
}

/// Latency summary in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Lowest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// 50th percentile.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// 99.99th percentile.
    pub p9999: f64,
    /// Highest.
    pub max: f64,
}

impl Latency {
    /// The summary of a microsecond histogram; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let q = |q: f64| ms(h.value_at_quantile(q));
        Some(Latency {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: q(0.5),
            p90: q(0.9),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            p9999: q(0.9999),
            max: ms(h.max()),
        })
    }
}

/// Microseconds as milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// One request name's totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NameRecord {
    /// HTTP method.
    pub method: String,
    /// Stats name.
    pub name: String,
    /// Finished requests, failures included.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Failed requests by status code.
    pub failed_statuses: BTreeMap<String, u64>,
    /// Tasks skipped under this name.
    pub skipped: u64,
    /// Finished requests per second over the run.
    pub rps: f64,
    /// Mean response body size in bytes.
    pub avg_content_bytes: f64,
    /// Latency summary, `null` without responses.
    pub latency_ms: Option<Latency>,
    /// Latency of successful requests only, `null` without any.
    #[serde(default)]
    pub latency_ok_ms: Option<Latency>,
}

/// What blast measured about itself and about monitored processes in one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// CPU use of the busiest worker thread, in % of one core (`None` where it cannot be read).
    pub worker_cpu_pct: Option<f64>,
    /// How late the busiest worker's event loop ran a timer, in ms.
    pub loop_lag_ms: f64,
    /// Longest time a worker thread waited for a CPU while runnable in the interval (its
    /// run-queue delay, from `/proc/self/task/*/schedstat`), in ms.
    #[serde(default)]
    pub run_queue_ms: Option<f64>,
    /// CPU time the hypervisor gave to other guests (steal), in % of the host's CPUs.
    #[serde(default)]
    pub steal_pct: Option<f64>,
    /// Monitored values by name: `blast.rss_mb`, `pid.cpu_pct`, a `--monitor-cmd` name...
    pub monitor: BTreeMap<String, f64>,
}

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

    /// Whether the generator was the limit in this interval.
    pub fn saturated(&self) -> bool {
        let cpu = self.worker_cpu_pct.unwrap_or(0.0);
        cpu >= SATURATED_CPU_PCT || (self.loop_lag_ms >= SATURATED_LAG_MS && cpu >= BUSY_CPU_PCT)
    }
}

/// Whether the generator itself limited the run, with the evidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorCheck {
    /// The run is marked generator-bound.
    pub bound: bool,
    /// Intervals in which a worker was above 90% CPU or its loop ran timers 10 ms late.
    pub saturated_intervals: usize,
    /// Intervals sampled.
    pub intervals: usize,
    /// Highest worker CPU, % of one core.
    pub max_worker_cpu_pct: Option<f64>,
    /// Highest event-loop lag, ms.
    pub max_loop_lag_ms: f64,
    /// One sentence saying what the numbers mean.
    pub evidence: String,
    /// The generator stalled in at least one interval.
    #[serde(default)]
    pub stalled: bool,
    /// Intervals in which it stalled.
    #[serde(default)]
    pub stalled_intervals: usize,
    /// How long it was held up, in ms: the longest hold-up of each stalled stretch, summed.
    #[serde(default)]
    pub stall_ms: f64,
    /// The stalled stretches of the run, as `[start_s, end_s]` (adjacent intervals merged).
    #[serde(default)]
    pub stall_windows: Vec<(f64, f64)>,
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
            format!("generator-bound: in {saturated} of {intervals} intervals a worker was at {SATURATED_CPU_PCT:.0}%+ of its core, or busy with its event loop running timers {SATURATED_LAG_MS:.0}+ ms late (worker CPU {cpu}, loop lag up to {max_lag:.1} ms); the results may show blast's limit rather than the target's. Give blast more cores or fewer users per core.")
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
        if waited >= STALL_MS {
            self.evidence = format!(
                "{} Other processes kept a worker waiting for a CPU for up to {waited:.0} ms in an interval.",
                self.evidence
            );
        }
        if self.stalled {
            let windows: Vec<String> = self
                .stall_windows
                .iter()
                .map(|(a, b)| format!("{a:.0}-{b:.0} s"))
                .collect();
            self.evidence = format!(
                "generator stalled at {} (held up about {:.0} ms: its event loop ran that late); latencies in that window are not the server's. {}",
                windows.join(", "),
                self.stall_ms,
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

/// One interval of the time series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Seconds from the start of the run to the start of the interval, as the clock says.
    #[serde(default)]
    pub start_s: f64,
    /// Seconds from the start of the run to the end of the interval, as the clock says.
    pub t_s: f64,
    /// Open model: slots due by the end of the interval and not sent yet.
    #[serde(default)]
    pub backlog: u64,
    /// Users running (open model: connections).
    pub users: u64,
    /// Finished requests per second in the interval.
    pub rps: f64,
    /// Failed requests per second in the interval.
    pub fails_per_s: f64,
    /// Latency percentiles within the interval, in ms (`null` without responses).
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Highest.
    pub max_ms: Option<f64>,
    /// blast's own measurements and the monitored values in the interval.
    #[serde(default)]
    pub sample: Sample,
}

/// One criterion's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CriterionRecord {
    /// As written.
    pub criterion: String,
    /// The measured value with its unit.
    pub measured: String,
    /// Whether it held.
    pub pass: bool,
}

/// One phase of the run (ramp-up, steady, ramp-down) with its own figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// `ramp-up`, `steady` or `ramp-down`.
    pub phase: String,
    /// Start, seconds from the start of the run.
    pub start_s: f64,
    /// End, seconds from the start of the run.
    pub end_s: f64,
    /// Requests that finished in it.
    pub requests: u64,
    /// Of which failed.
    pub failures: u64,
    /// Requests per second over the phase.
    pub rps: f64,
    /// Its latency, `null` without requests.
    pub latency_ms: Option<Latency>,
}

/// How the run's connections behaved.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// Connections opened in place of one the server closed or made unusable (not failures).
    pub reconnects: u64,
    /// Requests sent again on a fresh connection after a reused one closed before answering.
    pub retries: u64,
    /// Redirect hops followed.
    pub redirects: u64,
    /// Mean TCP connect time, `null` without connections.
    pub connect_ms_mean: Option<f64>,
    /// TLS handshakes completed (0 for http://).
    pub tls_handshakes: u64,
    /// TLS handshakes that resumed an earlier session.
    pub tls_resumed: u64,
    /// Mean TLS handshake time, `null` without handshakes.
    pub tls_handshake_ms_mean: Option<f64>,
}

impl ConnectionRecord {
    /// The connection figures of `c`.
    pub fn of(c: &Counters) -> ConnectionRecord {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        ConnectionRecord {
            reconnects: c.reconnects,
            retries: c.retries,
            redirects: c.redirects,
            connect_ms_mean: ms(c.mean_connect()),
            tls_handshakes: c.tls_handshakes,
            tls_resumed: c.tls_resumed,
            tls_handshake_ms_mean: ms(c.mean_tls_handshake()),
        }
    }
}

/// A finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// blast's version.
    pub blast_version: String,
    /// The command line.
    pub command: Vec<String>,
    /// What ran against what: the URL, or the scenario and its base URL.
    pub target: String,
    /// Base URL of the target.
    pub host: String,
    /// Built-in profile, if any.
    pub profile: Option<String>,
    /// Scenario name, if any.
    pub scenario: Option<String>,
    /// Start, UTC.
    pub started_at: String,
    /// End, UTC.
    pub ended_at: String,
    /// From the start until the last worker finished.
    pub duration_s: f64,
    /// From the start until sending stopped; rates are over this window.
    #[serde(default)]
    pub sending_s: f64,
    /// Why the results are incomplete (a worker thread panicked); `null` when complete.
    #[serde(default)]
    pub incomplete: Option<String>,
    /// Worker threads.
    pub threads: usize,
    /// Whether workers were pinned to cores.
    pub pinned: bool,
    /// Whether a stop was requested before the run time was over.
    pub interrupted: bool,
    /// `closed` (users) or `open` (arrival rate).
    pub model: String,
    /// Closed model: the highest user count of the shape.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub users: Option<f64>,
    /// Open model: the planned mean rate over the run.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_rate: Option<f64>,
    /// Open model: the achieved rate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub achieved_rate: Option<f64>,
    /// Open model: sends more than 2 ms behind their schedule.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub late_sends: Option<u64>,
    /// Open model: slots of the timetable due while sending.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scheduled_slots: Option<u64>,
    /// Open model: slots due but never sent, every connection being busy until the end (k6's
    /// dropped iterations); sent + missed = scheduled.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub missed: Option<u64>,
    /// Open model: the connection limit.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_connections: Option<u64>,
    /// Open model: service time (from the actual send).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_time_ms: Option<Latency>,
    /// Finished requests, failures included.
    pub requests: u64,
    /// Failed requests.
    pub failures: u64,
    /// Failed requests by class.
    pub failures_by_class: BTreeMap<String, u64>,
    /// Sent but cut off at stop.
    pub cancelled: u64,
    /// Tasks skipped.
    pub skipped: u64,
    /// `requests / sending_s`.
    pub rps: f64,
    /// Latency of every request that ended, failures included as Locust counts them (a
    /// timeout or reset with the time until it happened); `null` without any.
    pub latency_ms: Option<Latency>,
    /// Latency of successful requests only, `null` without any.
    #[serde(default)]
    pub latency_ok_ms: Option<Latency>,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Connections opened.
    pub connections: u64,
    /// How connections behaved: reconnects, retries, redirects, connect and TLS times.
    #[serde(default)]
    pub connection: ConnectionRecord,
    /// The run's phases with their own figures.
    #[serde(default)]
    pub phases: Vec<PhaseRecord>,
    /// Per stats name.
    pub names: Vec<NameRecord>,
    /// Failures by (method, name, error).
    pub failure_rows: Vec<FailureRow>,
    /// Success criteria.
    pub criteria: Vec<CriterionRecord>,
    /// Whether every criterion held.
    pub passed: bool,
    /// One point per interval.
    pub history: Vec<Point>,
    /// The latency distribution as (percentile, ms) pairs, for HDR percentile plots.
    pub percentiles: Vec<(f64, f64)>,
    /// Whether the generator was the limit.
    #[serde(default)]
    pub generator: GeneratorCheck,
    /// Monitored values that grew steadily under constant load (possible leaks).
    #[serde(default)]
    pub growth: Vec<String>,
}

impl RunRecord {
    /// The record of a finished run.
    pub fn new(
        report: &Report,
        info: &RunInfo,
        target: &str,
        verdicts: &[Verdict],
        failure_rows: Vec<FailureRow>,
        samples: &[Sample],
    ) -> RunRecord {
        let c = &report.total.counters;
        let secs = report.sending.as_secs_f64().max(1e-9);
        let mut record = RunRecord {
            blast_version: env!("CARGO_PKG_VERSION").to_string(),
            command: info.command.clone(),
            target: target.to_string(),
            host: info.host.clone(),
            profile: info.profile.clone(),
            scenario: info.scenario.clone(),
            started_at: utc_seconds(report.started_at),
            ended_at: utc_seconds(report.started_at + report.duration),
            duration_s: report.duration.as_secs_f64(),
            sending_s: report.sending.as_secs_f64(),
            incomplete: report.incomplete.clone(),
            threads: report.workers,
            pinned: report.pinned,
            interrupted: report.interrupted,
            model: String::new(),
            users: None,
            target_rate: None,
            achieved_rate: None,
            late_sends: None,
            scheduled_slots: None,
            missed: None,
            max_connections: None,
            service_time_ms: None,
            requests: c.requests(),
            failures: c.failed(),
            failures_by_class: FailureClass::ALL
                .iter()
                .map(|f| (f.as_str().to_string(), c.failures_of(*f)))
                .collect(),
            cancelled: c.cancelled,
            skipped: c.skipped,
            rps: c.requests() as f64 / secs,
            latency_ms: Latency::of(&report.total.latency_us),
            latency_ok_ms: Latency::of(&report.total.ok_latency_us()),
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
            connections: c.connections,
            connection: ConnectionRecord::of(c),
            // Phases the run never reached (it was stopped early) are left out.
            phases: report
                .phases
                .iter()
                .filter(|p| p.start < report.sending)
                .map(|p| {
                    let end = p.end.min(report.sending.max(p.start));
                    let secs = end.saturating_sub(p.start).as_secs_f64().max(1e-9);
                    PhaseRecord {
                        phase: p.kind.as_str().to_string(),
                        start_s: p.start.as_secs_f64(),
                        end_s: end.as_secs_f64(),
                        requests: p.stats.counters.requests(),
                        failures: p.stats.counters.failed(),
                        rps: p.stats.counters.requests() as f64 / secs,
                        latency_ms: Latency::of(&p.stats.latency_us),
                    }
                })
                .collect(),
            names: report
                .names
                .iter()
                .map(|n| {
                    let c = &n.stats.counters;
                    NameRecord {
                        method: n.name.method.clone(),
                        name: n.name.name.clone(),
                        requests: c.requests(),
                        failures: c.failed(),
                        failed_statuses: c
                            .failed_statuses
                            .iter()
                            .map(|(k, v)| (k.to_string(), *v))
                            .collect(),
                        skipped: c.skipped,
                        rps: c.requests() as f64 / secs,
                        avg_content_bytes: c.body_bytes as f64 / c.requests().max(1) as f64,
                        latency_ms: Latency::of(&n.stats.latency_us),
                        latency_ok_ms: Latency::of(&n.stats.ok_latency_us()),
                    }
                })
                .collect(),
            failure_rows,
            criteria: verdicts
                .iter()
                .map(|v| CriterionRecord {
                    criterion: v.criterion.clone(),
                    measured: v.measured.clone(),
                    pass: v.pass,
                })
                .collect(),
            passed: verdicts.iter().all(|v| v.pass),
            history: history(report, samples),
            percentiles: percentiles(&report.total.latency_us),
            generator: GeneratorCheck::of(judged(samples, report.history.len())),
            growth: Vec::new(),
        };
        record.growth = crate::analysis::growth(&record.history);
        record.generator.note_stalls(&record.history);
        match &report.schedule {
            Schedule::Closed { users } => {
                record.model = "closed".into();
                record.users = Some(users.peak());
            }
            Schedule::Open {
                rate,
                max_connections,
            } => {
                record.model = "open".into();
                record.target_rate = Some(mean_rate(rate, report.sending));
                record.achieved_rate = Some(record.rps);
                record.late_sends = Some(c.late_sends);
                record.scheduled_slots = Some(report.slots.0);
                record.missed = Some(report.missed());
                record.max_connections = Some(*max_connections);
                record.service_time_ms = report.total.service_us.as_ref().and_then(Latency::of);
            }
        }
        record
    }

    /// The record as pretty JSON text, ending in a newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a record always serializes") + "\n"
    }

    /// Reads a record written by `--json`.
    pub fn from_json(text: &str) -> Result<RunRecord, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The samples that say something about the generator under load: not the first interval
/// (start-up: connects and spawns), not the last (the stop grace).
fn judged(samples: &[Sample], intervals: usize) -> &[Sample] {
    let end = samples.len().min(intervals).saturating_sub(1);
    &samples[1.min(end)..end]
}

/// The average of a rate shape over the first `span` of the run.
pub fn mean_rate(rate: &blast_engine::Shape, span: Duration) -> f64 {
    // Sampled every 10 ms: exact for constant rates, within 0.1% for any staged one.
    let steps = (span.as_millis() / 10).max(1) as u32;
    let step = span / steps;
    (0..steps)
        .map(|i| rate.at(step * i + step / 2))
        .sum::<f64>()
        / steps as f64
}

fn history(report: &Report, samples: &[Sample]) -> Vec<Point> {
    report
        .history
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let span = (h.elapsed.saturating_sub(h.start)).as_secs_f64().max(1e-9);
            let answered = h.counters.requests() > 0;
            let at = |i: usize| answered.then(|| ms(h.latency_us[i]));
            Point {
                start_s: h.start.as_secs_f64(),
                t_s: h.elapsed.as_secs_f64(),
                backlog: h.backlog,
                users: h.users,
                rps: h.counters.requests() as f64 / span,
                fails_per_s: h.counters.failed() as f64 / span,
                p50_ms: at(0),
                p95_ms: at(1),
                p99_ms: at(2),
                max_ms: at(3),
                sample: samples.get(i).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// HdrHistogram's percentile distribution: points that get denser towards the tail.
fn percentiles(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(f64, f64)> = h
        .iter_quantiles(2)
        .map(|v| (v.quantile_iterated_to() * 100.0, ms(v.value_iterated_to())))
        .take_while(|(p, _)| *p < 100.0)
        .collect();
    out.push((100.0, ms(h.max())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
