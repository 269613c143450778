//! The run record: everything a finished run produced, as `--json` writes it and `blast report`
//! reads it back. Keys are documented in `docs/outputs.md`.

use blast_engine::redact;
use blast_engine::{Counters, FailureClass, Io, Name, Protocol, Report, Schedule, StreamLimit};
use blast_scenarios::Verdict;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::exact::ExactRun;
use crate::failures::FailureRow;
use crate::info::RunInfo;
use crate::time::utc_seconds;

/// Which shards a merged record was made from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergedFrom {
    /// The shards merged, from 1.
    pub shards: Vec<usize>,
    /// Shards in the run.
    pub count: usize,
    /// The shards not given, from 1.
    pub missing: Vec<usize>,
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

/// `part` as a percentage of `whole` (0 when there is no whole).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
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

/// One interval of the time series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// Per request name, in the order of `names`.
    #[serde(default)]
    pub names: Vec<NamePoint>,
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
    /// Where it failed, for a criterion judged per interval: stretches as (start s, end s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<(f64, f64)>,
}

/// One request name within one interval of the time series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamePoint {
    /// Requests that finished.
    pub requests: u64,
    /// Of which failed.
    pub failed: u64,
    /// Median latency, `null` without requests.
    pub p50_ms: Option<f64>,
    /// p99 latency, `null` without requests.
    pub p99_ms: Option<f64>,
    /// Mean latency, `null` without requests (records before 2026-12-06 have none).
    #[serde(default)]
    pub mean_ms: Option<f64>,
    /// Response bytes received.
    #[serde(default)]
    pub bytes_received: u64,
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
    /// HTTP/2: request bodies that waited for the server's flow-control window.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flow_control_stalls: u64,
    /// HTTP/2: total time request bodies waited for window, in milliseconds.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub flow_control_stall_ms: f64,
}

/// The I/O of a record written before blast had io_uring.
fn epoll() -> Io {
    Io::Epoll
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
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
            flow_control_stalls: c.flow_control_stalls,
            flow_control_stall_ms: c.flow_control_stall_us as f64 / 1e3,
        }
    }
}

/// A finished run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// blast's version.
    pub blast_version: String,
    /// The run's id: shared by the shards of one run, which `blast merge` checks.
    #[serde(default)]
    pub run_id: String,
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
    /// The start asked for (`--start-at`), UTC; absent without it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_at: Option<String>,
    /// How late the run started after `--start-at`, in ms (its probe of the target included).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub start_late_ms: Option<f64>,
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
    /// CPUs of the machine blast ran on (what a server monitored there may use at most).
    #[serde(default)]
    pub cores: Option<usize>,
    /// Whether workers were pinned to cores.
    pub pinned: bool,
    /// Whether a stop was requested before the run time was over.
    pub interrupted: bool,
    /// `I/N` for shard I (from 1) of a run split over N processes; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shard: Option<String>,
    /// For a record made by `blast merge`: the shards it was made from.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub merged: Option<MergedFrom>,
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
    /// The HTTP version spoken: `h1` or `h2`.
    #[serde(default)]
    pub protocol: Protocol,
    /// HTTP/2: streams per connection asked for (`asked`) and the server's limit (`server`,
    /// its SETTINGS_MAX_CONCURRENT_STREAMS, when it set one).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub streams: Option<StreamLimit>,
    /// How the sockets sent and received: `epoll` or `uring` (io_uring). Records written
    /// before io_uring were all epoll.
    #[serde(default = "epoll")]
    pub io: Io,
    /// Why `--io auto` used epoll: what the kernel said when asked for io_uring.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub io_fallback: Option<String>,
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
    /// The run exactly, every interval's histograms and counters: what `blast merge` and
    /// `blast compare` read (called `shard_data` before 2026-12-06, when shards alone kept it).
    #[serde(skip_serializing_if = "Option::is_none", default, alias = "shard_data")]
    pub exact: Option<ExactRun>,
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
            run_id: info.run_id.clone(),
            command: redact::arguments(&info.command),
            target: redact::text(target),
            host: redact::text(&info.host),
            profile: info.profile.clone(),
            scenario: info.scenario.clone(),
            start_at: info.start_at.map(utc_seconds),
            start_late_ms: info.start_at.map(|at| {
                match (report.started_at + report.late).duration_since(at) {
                    Ok(late) => late.as_secs_f64() * 1e3,
                    Err(early) => -early.duration().as_secs_f64() * 1e3,
                }
            }),
            started_at: utc_seconds(report.started_at),
            ended_at: utc_seconds(report.started_at + report.duration),
            duration_s: report.duration.as_secs_f64(),
            sending_s: report.sending.as_secs_f64(),
            incomplete: report.incomplete.clone(),
            threads: report.workers,
            cores: info.cores,
            pinned: report.pinned,
            interrupted: report.interrupted,
            shard: (report.shard.count > 1)
                .then(|| format!("{}/{}", report.shard.index + 1, report.shard.count)),
            merged: None,
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
            protocol: report.protocol,
            streams: report.streams,
            io: report.io,
            io_fallback: report.io_fallback.clone(),
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
                    failing: v.failing.clone(),
                })
                .collect(),
            passed: verdicts.iter().all(|v| v.pass),
            history: history(report, samples),
            percentiles: percentiles(&report.total.latency_us),
            // Judged by the analysis layer (`analysis::annotate`), which reads the record.
            generator: GeneratorCheck::default(),
            growth: Vec::new(),
            exact: None,
        };
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

    /// The request names of the run, in the script's order.
    pub fn names_list(&self) -> Vec<Name> {
        self.names
            .iter()
            .map(|n| Name {
                method: n.method.clone(),
                name: n.name.clone(),
            })
            .collect()
    }

    /// The record as pretty JSON text, ending in a newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a record always serializes") + "\n"
    }

    /// Reads a record written by `--json`.
    pub fn from_json(text: &str) -> Result<RunRecord, serde_json::Error> {
        let mut record: RunRecord = serde_json::from_str(text)?;
        // Records written before blast redacted them are shown as if it had.
        record.command = redact::arguments(&record.command);
        record.target = redact::text(&record.target);
        record.host = redact::text(&record.host);
        Ok(record)
    }
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
                names: h
                    .names
                    .iter()
                    .map(|n| {
                        let answered = n.requests > 0;
                        NamePoint {
                            requests: n.requests,
                            failed: n.failed,
                            p50_ms: answered.then(|| ms(n.p50_us)),
                            p99_ms: answered.then(|| ms(n.p99_us)),
                            mean_ms: answered.then(|| n.mean_us / 1000.0),
                            bytes_received: n.bytes_received,
                        }
                    })
                    .collect(),
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

/// A run record of `points` with `names` as (method, name), for the analyses' tests.
#[cfg(test)]
pub(crate) fn test_run(points: Vec<Point>, names: &[(&str, &str)]) -> RunRecord {
    let mut run: RunRecord = serde_json::from_value(serde_json::json!({
        "blast_version": "0", "command": [], "target": "t", "host": "h",
        "started_at": "", "ended_at": "", "duration_s": 30.0, "threads": 1, "cores": 2,
        "pinned": false, "interrupted": false, "model": "closed", "requests": 3000,
        "failures": 0, "failures_by_class": {}, "cancelled": 0, "skipped": 0,
        "rps": 100.0, "bytes_sent": 0, "bytes_received": 0, "connections": 10,
        "names": [], "failure_rows": [], "criteria": [], "passed": true,
        "history": [], "percentiles": []
    }))
    .unwrap();
    run.names = names
        .iter()
        .map(|(method, n)| {
            serde_json::from_value(serde_json::json!({
                "method": method, "name": n, "requests": 100, "failures": 0,
                "failed_statuses": {}, "skipped": 0, "rps": 1.0, "avg_content_bytes": 0.0,
                "latency_ms": null
            }))
            .unwrap()
        })
        .collect();
    run.history = points;
    run
}
