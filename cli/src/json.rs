//! The `--json` summary: stable keys for scripts and CI pipelines.

use blast_engine::{FailureClass, NameReport, Report, Schedule};
use blast_scenarios::Verdict;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::summary::mean_rate;

/// Builds the JSON summary of a run.
pub fn summary(report: &Report, label: &str, verdicts: &[Verdict]) -> Value {
    let c = &report.total.counters;
    let failures_by_class: Map<String, Value> = FailureClass::ALL
        .iter()
        .map(|f| (f.as_str().to_string(), json!(c.failures_of(*f))))
        .collect();
    let mut out = json!({
        "blast_version": env!("CARGO_PKG_VERSION"),
        "target": label,
        "requests": c.requests(),
        "failures": c.failed(),
        "failures_by_class": failures_by_class,
        "cancelled": c.cancelled,
        "duration_s": report.duration.as_secs_f64(),
        "rps": report.rps(),
        "latency_ms": latency(&report.total.latency_us),
        "bytes_sent": c.bytes_sent,
        "bytes_received": c.bytes_received,
        "connections": c.connections,
        "threads": report.workers,
        "pinned": report.pinned,
        "interrupted": report.interrupted,
        "names": report.names.iter().map(name).collect::<Vec<_>>(),
        "criteria": verdicts.iter().map(|v| json!({
            "criterion": v.criterion,
            "measured": v.measured,
            "pass": v.pass,
        })).collect::<Vec<_>>(),
        "passed": verdicts.iter().all(|v| v.pass),
    });
    let fields = out.as_object_mut().expect("json! of an object literal");
    match &report.schedule {
        Schedule::Closed { users } => {
            fields.insert("users".into(), json!(users.peak()));
        }
        Schedule::Open {
            rate,
            max_connections,
        } => {
            let target = mean_rate(rate, report.duration.min(report.run_time));
            fields.insert("target_rate".into(), json!(target));
            fields.insert("achieved_rate".into(), json!(report.rps()));
            fields.insert("late_sends".into(), json!(c.late_sends));
            fields.insert("max_connections".into(), json!(max_connections));
            if let Some(service) = &report.total.service_us {
                fields.insert("service_time_ms".into(), latency(service));
            }
        }
    }
    out
}

fn name(n: &NameReport) -> Value {
    let c = &n.stats.counters;
    json!({
        "method": n.name.method,
        "name": n.name.name,
        "requests": c.requests(),
        "failures": c.failed(),
        "failed_statuses": c.failed_statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
        "skipped": c.skipped,
        "latency_ms": latency(&n.stats.latency_us),
    })
}

fn latency(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    let q = |q: f64| ms(h.value_at_quantile(q));
    if h.is_empty() {
        return json!(null);
    }
    json!({
        "min": ms(h.min()),
        "mean": h.mean() / 1000.0,
        "p50": q(0.5),
        "p90": q(0.9),
        "p95": q(0.95),
        "p99": q(0.99),
        "p999": q(0.999),
        "p9999": q(0.9999),
        "max": ms(h.max()),
    })
}
