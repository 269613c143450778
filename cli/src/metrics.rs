//! Live metrics for Prometheus: `/metrics` in the OpenMetrics text format, on the web UI's port
//! and on `--metrics-addr` in headless runs, updated once per interval (docs/outputs.md).
//!
//! Latency is exported as classic histograms. Prometheus' `histogram_quantile` interpolates
//! linearly within a bucket, so its error is at most a bucket's width: the run-wide histogram
//! has buckets 1 % apart (its p99 within 1 % of blast's), the per-request ones 5 % apart (to
//! keep a scrape small when there are many requests).

use blast_engine::{FailureClass, Name, Snapshot, Stats};
use blast_report::Sample;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// The media type of a scrape.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request names beyond this many are counted under `other` (warned once): every name is a
/// set of series in Prometheus, and a scenario that names requests by their IDs would make
/// thousands.
pub const MAX_NAMES: usize = 50;
/// Seconds: the lowest and highest bucket bounds (slower requests land in `+Inf`).
const LOWEST_S: f64 = 1e-4;
const HIGHEST_S: f64 = 120.0;

/// Geometric bucket bounds `ratio` apart, in seconds, rounded to 4 significant figures.
fn bounds(ratio: f64) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    let mut b = LOWEST_S;
    while b <= HIGHEST_S * ratio {
        let digits = 3 - b.log10().floor() as i32;
        let rounded = (b * 10f64.powi(digits)).round() / 10f64.powi(digits);
        if out.last() != Some(&rounded) {
            out.push(rounded);
        }
        b *= ratio;
    }
    out
}

/// One latency histogram: counts per bucket (the last one `+Inf`), sum and count.
#[derive(Clone, Debug)]
struct Buckets {
    counts: Vec<u64>,
    sum_s: f64,
    count: u64,
}

impl Buckets {
    fn new(bounds: &[f64]) -> Buckets {
        Buckets {
            counts: vec![0; bounds.len() + 1],
            sum_s: 0.0,
            count: 0,
        }
    }

    fn add(&mut self, bounds: &[f64], stats: &Stats) {
        for v in stats.latency_us.iter_recorded() {
            let (secs, n) = (v.value_iterated_to() as f64 / 1e6, v.count_at_value());
            self.counts[bounds.partition_point(|b| *b < secs)] += n;
            self.sum_s += secs * n as f64;
            self.count += n;
        }
    }

    fn encode(&self, bounds: &[f64], e: &mut prometheus_client::encoding::MetricEncoder) -> Fmt {
        let buckets: Vec<(f64, u64)> = bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
            .collect();
        e.encode_histogram::<NoLabelSet>(self.sum_s, self.count, &buckets, None)
    }
}

type Fmt = Result<(), std::fmt::Error>;

/// One request name's series.
#[derive(Clone, Debug)]
struct Series {
    requests: u64,
    failures: [u64; blast_engine::CLASSES],
    latency: Buckets,
}

#[derive(Debug)]
struct State {
    fine: Vec<f64>,
    coarse: Vec<f64>,
    run_latency: Buckets,
    /// By (method, name); `("other", "other")` holds the names beyond [`MAX_NAMES`].
    names: BTreeMap<(String, String), Series>,
    folded_warned: bool,
    users: u64,
    in_flight: u64,
    backlog: u64,
    worker_cpu_pct: Option<f64>,
    loop_lag_s: f64,
    stalled: bool,
}

/// The metrics of this process's runs: counters only grow, across runs of the web UI too.
#[derive(Debug)]
pub struct Metrics(Mutex<State>);

impl Metrics {
    /// No runs yet.
    pub fn new() -> Arc<Metrics> {
        let (fine, coarse) = (bounds(1.01), bounds(1.05));
        Arc::new(Metrics(Mutex::new(State {
            run_latency: Buckets::new(&fine),
            fine,
            coarse,
            names: BTreeMap::new(),
            folded_warned: false,
            users: 0,
            in_flight: 0,
            backlog: 0,
            worker_cpu_pct: None,
            loop_lag_s: 0.0,
            stalled: false,
        })))
    }

    /// Adds one interval of a run whose request names are `names`.
    pub fn observe(&self, names: &[Name], snapshot: &Snapshot<'_>, sample: &Sample) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *s;
        s.run_latency.add(&s.fine, snapshot.window_total);
        for (name, stats) in names.iter().zip(snapshot.window) {
            let mut key = (name.method.clone(), name.name.clone());
            if !s.names.contains_key(&key) && s.names.len() >= MAX_NAMES {
                if !s.folded_warned {
                    s.folded_warned = true;
                    crate::summary::warn(&format!("metrics: more than {MAX_NAMES} request names; the rest are counted under name=\"other\""));
                }
                key = ("other".into(), "other".into());
            }
            let coarse = &s.coarse;
            let series = s.names.entry(key).or_insert_with(|| Series {
                requests: 0,
                failures: [0; blast_engine::CLASSES],
                latency: Buckets::new(coarse),
            });
            series.requests += stats.counters.requests();
            for (total, n) in series.failures.iter_mut().zip(stats.counters.failures) {
                *total += n;
            }
            series.latency.add(&s.coarse, stats);
        }
        s.users = snapshot.users;
        s.in_flight = snapshot.in_flight;
        s.backlog = snapshot.backlog;
        s.worker_cpu_pct = sample.worker_cpu_pct;
        s.loop_lag_s = sample.loop_lag_ms / 1e3;
        s.stalled = sample.stalled();
    }

    /// The OpenMetrics text of a scrape.
    pub fn render(self: &Arc<Self>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a string cannot fail");
        out
    }
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Fmt {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let labels = |(method, name): &(String, String)| {
            vec![("method", method.clone()), ("name", name.clone())]
        };
        let mut e = encoder.encode_descriptor(
            "blast_requests",
            "Requests finished (failures included)",
            None,
            MetricType::Counter,
        )?;
        for (key, series) in &s.names {
            e.encode_family(&labels(key))?
                .encode_counter::<NoLabelSet, _, u64>(&series.requests, None)?;
        }
        let mut e = encoder.encode_descriptor(
            "blast_request_failures",
            "Failed requests by class (connect, tls, timeout, reset, status, protocol, capture, redirect, check)",
            None,
            MetricType::Counter,
        )?;
        for (key, series) in &s.names {
            for (class, n) in FailureClass::ALL.iter().zip(series.failures) {
                let mut l = labels(key);
                l.push(("class", class.as_str().to_string()));
                e.encode_family(&l)?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        let mut e = encoder.encode_descriptor(
            "blast_request_duration_seconds",
            "Latency per request name (failures included; open model: from the intended start), buckets 5% apart",
            None,
            MetricType::Histogram,
        )?;
        for (key, series) in &s.names {
            series
                .latency
                .encode(&s.coarse, &mut e.encode_family(&labels(key))?)?;
        }
        let mut e = encoder.encode_descriptor(
            "blast_run_request_duration_seconds",
            "Latency of every request, buckets 1% apart: histogram_quantile is within 1% of blast's own percentiles",
            None,
            MetricType::Histogram,
        )?;
        s.run_latency.encode(&s.fine, &mut e)?;
        let gauges: [(&str, &str, f64); 6] = [
            ("blast_users", "Users running (open model: connections open)", s.users as f64),
            ("blast_requests_in_flight", "Requests sent and not finished", s.in_flight as f64),
            ("blast_open_model_backlog", "Open model: slots due and not sent yet (missed if the run ends so)", s.backlog as f64),
            ("blast_generator_worker_cpu_percent", "CPU of blast's busiest worker thread, % of one core (NaN where it cannot be read)", s.worker_cpu_pct.unwrap_or(f64::NAN)),
            ("blast_generator_loop_lag_seconds", "How late blast's busiest event loop ran a timer in the last interval", s.loop_lag_s),
            ("blast_generator_stalled", "1 when blast itself stalled in the last interval (its latencies include its own pause)", f64::from(u8::from(s.stalled))),
        ];
        for (name, help, value) in gauges {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        Ok(())
    }
}

/// Serves `GET /metrics` on `addr` from a thread of its own until the process exits; returns
/// the address bound (port 0 picks one).
pub fn serve(addr: &str, metrics: Arc<Metrics>) -> anyhow::Result<SocketAddr> {
    use anyhow::Context;
    let listener =
        TcpListener::bind(addr).with_context(|| format!("--metrics-addr {addr}: cannot listen"))?;
    let bound = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("blast-metrics".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds on any supported OS");
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                while let Ok((stream, _)) = listener.accept().await {
                    let metrics = metrics.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let metrics = metrics.clone();
                            async move {
                                Ok::<_, std::convert::Infallible>(response(
                                    &metrics,
                                    req.uri().path(),
                                ))
                            }
                        });
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                    });
                }
            });
        })?;
    Ok(bound)
}

/// The reply to a request for `path`: the metrics, or 404.
pub fn response(
    metrics: &Arc<Metrics>,
    path: &str,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let (status, body) = match path {
        "/metrics" => (200, metrics.render()),
        _ => (404, "not found: blast serves /metrics here\n".to_string()),
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", CONTENT_TYPE)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One interval in which each of `names` finished one request of 5 ms.
    fn observe_one_each(metrics: &Metrics, names: &[Name]) {
        let mut stats = Stats::new(false);
        stats.record(Duration::from_millis(5), Duration::ZERO);
        stats.counters.ok = 1;
        let window = vec![stats.clone(); names.len()];
        let snapshot = Snapshot {
            start: Duration::ZERO,
            elapsed: Duration::from_secs(1),
            span: Duration::from_secs(1),
            window: &window,
            window_total: &stats,
            cumulative: &window,
            cumulative_total: &stats,
            users: 1,
            in_flight: 0,
            loop_lag_us: 0,
            backlog: 0,
            protocol: blast_engine::Protocol::Http1,
        };
        metrics.observe(names, &snapshot, &Sample::default());
    }

    fn name(path: String) -> Name {
        Name {
            method: "GET".into(),
            name: path,
        }
    }

    #[test]
    fn names_beyond_the_cap_are_counted_as_other() {
        let metrics = Metrics::new();
        let names: Vec<Name> = (0..MAX_NAMES + 10)
            .map(|i| name(format!("/item/{i}")))
            .collect();
        observe_one_each(&metrics, &names);
        observe_one_each(&metrics, &names);
        let scrape = metrics.render();
        let requests: Vec<&str> = scrape
            .lines()
            .filter(|l| l.starts_with("blast_requests_total{"))
            .collect();
        assert_eq!(requests.len(), MAX_NAMES + 1);
        assert!(scrape.contains("blast_requests_total{method=\"other\",name=\"other\"} 20\n"));
    }

    #[test]
    fn the_grafana_dashboard_reads_only_metrics_blast_exports() {
        let metrics = Metrics::new();
        observe_one_each(&metrics, &[name("/".into())]);
        let scrape = metrics.render();
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/grafana-dashboard.json")).unwrap();
        let mut checked = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for word in expr.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                    if word.starts_with("blast_") {
                        assert!(scrape.contains(&format!("\n{word}")), "{word} in {expr}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked >= 10);
    }

    #[test]
    fn buckets_are_at_most_their_ratio_apart_over_the_whole_range() {
        for ratio in [1.01, 1.05] {
            let b = bounds(ratio);
            assert!(b[0] <= LOWEST_S && *b.last().unwrap() >= HIGHEST_S);
            for w in b.windows(2) {
                assert!(w[1] > w[0] && w[1] / w[0] <= ratio + 1e-3, "{w:?}");
            }
        }
    }

    /// Prometheus' estimate from these buckets, computed as `histogram_quantile` does.
    fn histogram_quantile(q: f64, bounds: &[f64], b: &Buckets) -> f64 {
        let rank = q * b.count as f64;
        let mut seen = 0;
        for (i, n) in b.counts.iter().enumerate() {
            if (seen + n) as f64 >= rank {
                let lo = if i == 0 { 0.0 } else { bounds[i - 1] };
                return lo + (bounds[i] - lo) * (rank - seen as f64) / *n as f64;
            }
            seen += n;
        }
        f64::INFINITY
    }

    #[test]
    fn the_run_wide_p99_is_within_one_percent_of_blasts() {
        let metrics = Metrics::new();
        let mut stats = Stats::new(false);
        // A long tail: 1 ms to 2 s.
        for i in 0..20_000u64 {
            stats.record(Duration::from_micros(1_000 + i * i / 200), Duration::ZERO);
        }
        let s = metrics.0.lock().unwrap();
        let mut b = Buckets::new(&s.fine);
        b.add(&s.fine, &stats);
        for q in [0.5, 0.9, 0.99, 0.999] {
            let blast = stats.latency_us.value_at_quantile(q) as f64 / 1e6;
            let prometheus = histogram_quantile(q, &s.fine, &b);
            assert!(
                (prometheus / blast - 1.0).abs() <= 0.01,
                "q {q}: {prometheus} vs {blast}"
            );
        }
    }
}
