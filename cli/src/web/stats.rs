//! What the web UI shows of a run, built once per interval from the aggregator's snapshot:
//! Locust's `/stats/requests` JSON, and blast's own chart points and generator health.

use blast_engine::{Name, Snapshot, Stats};
use blast_report::{ms, FailureRow, Sample};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// Cumulative stats with what was there at the last `/stats/reset` taken out.
fn since(cumulative: &Stats, baseline: Option<&Stats>) -> (Histogram<u64>, u64, u64, u64) {
    let c = &cumulative.counters;
    let Some(base) = baseline else {
        return (
            cumulative.latency_us.clone(),
            c.requests(),
            c.failed(),
            c.body_bytes,
        );
    };
    let mut h = cumulative.latency_us.clone();
    // The baseline is an earlier state of the same cumulative histogram: every value in it
    // is in `h` too.
    let _ = h.subtract(&base.latency_us);
    let b = &base.counters;
    (
        h,
        c.requests().saturating_sub(b.requests()),
        c.failed().saturating_sub(b.failed()),
        c.body_bytes.saturating_sub(b.body_bytes),
    )
}

/// One row of Locust's `stats[]`: `span` is the interval's length, `elapsed` the run's so far.
fn row(
    (method, name): (&str, &str),
    all: &Stats,
    base: Option<&Stats>,
    window: &Stats,
    (span, elapsed): (f64, f64),
) -> Value {
    let (h, requests, failures, body) = since(all, base);
    let at = |q: f64| {
        if h.is_empty() {
            0.0
        } else {
            ms(h.value_at_quantile(q))
        }
    };
    json!({
        "method": method,
        "name": name,
        "num_requests": requests,
        "num_failures": failures,
        "min_response_time": if h.is_empty() { 0.0 } else { ms(h.min()) },
        "max_response_time": if h.is_empty() { 0.0 } else { ms(h.max()) },
        "avg_response_time": if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
        "median_response_time": at(0.5),
        "response_time_percentile_0.95": at(0.95),
        "response_time_percentile_0.99": at(0.99),
        "current_rps": window.counters.requests() as f64 / span,
        "current_fail_per_sec": window.counters.failed() as f64 / span,
        "total_rps": requests as f64 / elapsed,
        "total_fail_per_sec": failures as f64 / elapsed,
        "avg_content_length": body as f64 / requests.max(1) as f64,
    })
}

/// Locust's `/stats/requests` body for one interval; `baseline` is the cumulative state at the
/// last reset, per name then all together; `errors` are the failure rows so far.
pub fn requests_json(
    snapshot: &Snapshot<'_>,
    names: &[Name],
    baseline: Option<&(Vec<Stats>, Stats)>,
    target_users: u64,
    errors: &[FailureRow],
) -> Value {
    let times = (
        snapshot.span.as_secs_f64().max(1e-9),
        snapshot.elapsed.as_secs_f64().max(1e-9),
    );
    let mut stats: Vec<Value> = names
        .iter()
        .zip(snapshot.cumulative)
        .zip(snapshot.window)
        .enumerate()
        .map(|(i, ((n, all), window))| {
            let base = baseline.map(|b| &b.0[i]);
            row((&n.method, &n.name), all, base, window, times)
        })
        .collect();
    let aggregated = row(
        ("", "Aggregated"),
        snapshot.cumulative_total,
        baseline.map(|b| &b.1),
        snapshot.window_total,
        times,
    );
    let errors: Vec<Value> = errors
        .iter()
        .map(|r| {
            json!({
                "method": r.method,
                "name": r.name,
                "error": r.error,
                "occurrences": r.occurrences,
                "first_seen": r.first_seen,
                "last_seen": r.last_seen,
            })
        })
        .collect();
    let window = &snapshot.window_total;
    let w_at = |q: f64| {
        if window.latency_us.is_empty() {
            0.0
        } else {
            ms(window.latency_us.value_at_quantile(q))
        }
    };
    let requests = aggregated["num_requests"].as_u64().unwrap_or(0);
    let failures = aggregated["num_failures"].as_u64().unwrap_or(0);
    let state = if snapshot.users < target_users {
        "spawning"
    } else {
        "running"
    };
    let mut body = Map::new();
    // Locust's "total" figures are the current ones of all names together.
    for (total, current) in [
        ("total_rps", "current_rps"),
        ("total_fail_per_sec", "current_fail_per_sec"),
    ] {
        body.insert(total.into(), aggregated[current].clone());
        body.insert(current.into(), aggregated[current].clone());
    }
    body.insert(
        "fail_ratio".into(),
        json!(failures as f64 / requests.max(1) as f64),
    );
    body.insert(
        "current_response_time_percentiles".into(),
        json!({
            "response_time_percentile_0.5": w_at(0.5),
            "response_time_percentile_0.95": w_at(0.95),
        }),
    );
    body.insert(
        "total_avg_response_time".into(),
        aggregated["avg_response_time"].clone(),
    );
    body.insert("user_count".into(), json!(snapshot.users));
    body.insert("state".into(), json!(state));
    stats.push(aggregated);
    body.insert("stats".into(), Value::Array(stats));
    body.insert("errors".into(), Value::Array(errors));
    Value::Object(body)
}

/// One point of blast's charts: the interval's own figures, at full precision.
pub fn point(snapshot: &Snapshot<'_>, sample: &Sample) -> Value {
    let w = snapshot.window_total;
    let span = snapshot.span.as_secs_f64().max(1e-9);
    let at = |q: f64| (!w.latency_us.is_empty()).then(|| ms(w.latency_us.value_at_quantile(q)));
    json!({
        "t": snapshot.elapsed.as_secs_f64(),
        "users": snapshot.users,
        "rps": w.counters.requests() as f64 / span,
        "fails_per_s": w.counters.failed() as f64 / span,
        "p50": at(0.5),
        "p95": at(0.95),
        "p99": at(0.99),
        "worker_cpu_pct": sample.worker_cpu_pct,
        "loop_lag_ms": sample.loop_lag_ms,
        "saturated": sample.saturated(),
        "stalled": sample.stalled(),
        "monitor": sample.monitor,
    })
}
