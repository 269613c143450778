//! The human summary printed at the end of a run.

use blast_engine::{FailureClass, Report, Schedule};
use blast_report::mean_rate;
use blast_report::RunRecord;
use blast_scenarios::PoolCounts;
use hdrhistogram::Histogram;
use std::fmt::Write;

/// Percentiles shown in the summary, as (label, quantile).
const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

/// Connections opened and how they behaved, one short line each: reconnects and retries
/// (never failures), connect time, TLS handshakes, redirects followed.
fn connection_lines(out: &mut String, c: &blast_engine::Counters) {
    let connect = c
        .mean_connect()
        .map(|d| format!("; connect {:.2} ms avg", d.as_secs_f64() * 1e3))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  connections   {} opened, {} reconnects, {} retries{connect}",
        c.connections, c.reconnects, c.retries
    );
    if let Some(handshake) = c.mean_tls_handshake() {
        let _ = writeln!(
            out,
            "  tls           {} handshakes ({} resumed), {:.2} ms avg",
            c.tls_handshakes,
            c.tls_resumed,
            handshake.as_secs_f64() * 1e3
        );
    }
    if c.redirects > 0 {
        let _ = writeln!(out, "  redirects     {} followed", c.redirects);
    }
}

/// Renders the end-of-run summary: totals, per-name rows, pools and criteria.
pub fn render(
    report: &Report,
    label: &str,
    pools: &[(String, PoolCounts)],
    record: &RunRecord,
) -> String {
    let c = &report.total.counters;
    let mut out = String::new();
    let secs = report.duration.as_secs_f64();
    let load = load(&report.schedule);
    let pin = if report.pinned {
        "pinned"
    } else {
        "not pinned"
    };
    let _ = writeln!(
        out,
        "blast {label}: {load}, {secs:.2} s, {} threads ({pin}){}",
        report.workers,
        if report.interrupted {
            ", stopped early"
        } else {
            ""
        }
    );
    if let Some(why) = &report.incomplete {
        let _ = writeln!(
            out,
            "  INCOMPLETE    {why}; the run was cut short and misses that worker's last interval"
        );
    }
    let _ = writeln!(
        out,
        "  requests      {} ({:.1}/s), {} failed ({:.2}%), {} cancelled at stop",
        c.requests(),
        report.rps(),
        c.failed(),
        percent(c.failed(), c.requests()),
        c.cancelled
    );
    if c.failed() > 0 {
        let classes: Vec<String> = FailureClass::ALL
            .iter()
            .filter(|f| c.failures_of(**f) > 0)
            .map(|f| format!("{} {}", f.as_str(), c.failures_of(*f)))
            .collect();
        let _ = writeln!(out, "  failures      {}", classes.join(", "));
    }
    let latency_label = match &report.schedule {
        Schedule::Closed { .. } => "latency     ",
        Schedule::Open { .. } => "latency (1) ",
    };
    let _ = writeln!(
        out,
        "  {latency_label}  {}",
        histogram_line(&report.total.latency_us)
    );
    if let Some(service) = &report.total.service_us {
        let _ = writeln!(out, "  service (2)   {}", histogram_line(service));
    }
    if let Schedule::Open { rate, .. } = &report.schedule {
        let rate = mean_rate(rate, report.sending);
        let _ = writeln!(
            out,
            "  rate          target {rate:.1}/s, achieved {:.1}/s ({:+.2}%), {} late sends (>{} ms behind schedule)",
            report.rps(),
            (report.rps() / rate - 1.0) * 100.0,
            c.late_sends,
            blast_engine::LATE_AFTER.as_millis()
        );
        let (scheduled, missed) = report.slots;
        let _ = writeln!(
            out,
            "  slots         {scheduled} due, {} sent, {missed} missed (every connection busy until the end)",
            scheduled - missed
        );
    }
    let _ = writeln!(
        out,
        "  transfer      {} sent, {} received",
        bytes(c.bytes_sent),
        bytes(c.bytes_received),
    );
    connection_lines(&mut out, c);
    if record.phases.len() > 1 {
        let parts: Vec<String> = record
            .phases
            .iter()
            .map(|p| {
                let p99 = p
                    .latency_ms
                    .as_ref()
                    .map_or("-".to_string(), |l| format!("{:.2} ms", l.p99));
                format!("{} {:.0}-{:.0} s p99 {p99}", p.phase, p.start_s, p.end_s)
            })
            .collect();
        let _ = writeln!(out, "  phases        {}", parts.join(", "));
    }
    if let Schedule::Open { .. } = &report.schedule {
        let _ = writeln!(
            out,
            "  (1) from each request's intended start; (2) from the actual send"
        );
    }
    if report.names.len() > 1 || c.skipped > 0 {
        names_table(&mut out, report);
    }
    for (name, p) in pools {
        let _ = writeln!(
            out,
            "  pool {name}: {} added, {} handed out (each once), {} repeats refused, {} left",
            p.added, p.taken, p.repeated, p.left
        );
    }
    let generator = &record.generator;
    // The evidence starts with the verdict: "generator-bound: ..." or "not generator-bound: ...".
    let _ = writeln!(out, "  generator     {}", generator.evidence);
    for g in &record.growth {
        let _ = writeln!(out, "  leak?         {g}");
    }
    let verdicts = &record.criteria;
    if !verdicts.is_empty() {
        let _ = writeln!(out, "criteria");
        for v in verdicts {
            let mark = if v.pass { "PASS" } else { "FAIL" };
            let _ = writeln!(out, "  {mark}  {:<44} measured {}", v.criterion, v.measured);
        }
        let failed = verdicts.iter().filter(|v| !v.pass).count();
        let _ = if failed == 0 {
            writeln!(out, "result: PASS (all {} criteria met)", verdicts.len())
        } else {
            writeln!(
                out,
                "result: FAIL ({failed} of {} criteria failed)",
                verdicts.len()
            )
        };
    }
    out
}

/// One row per request name, like Locust's final table.
fn names_table(out: &mut String, report: &Report) {
    let width = report
        .names
        .iter()
        .map(|n| n.name.method.len() + 1 + n.name.name.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    let _ = writeln!(
        out,
        "  {:<width$} {:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "name", "requests", "fails", "skipped", "req/s", "p50", "p95", "p99", "max"
    );
    let secs = report.sending.as_secs_f64().max(1e-9);
    for n in &report.names {
        let c = &n.stats.counters;
        let h = &n.stats.latency_us;
        let q = |q: f64| {
            if h.is_empty() {
                "-".to_string()
            } else {
                ms(h.value_at_quantile(q))
            }
        };
        let _ = writeln!(
            out,
            "  {:<width$} {:>9} {:>7} {:>8} {:>9.1} {:>9} {:>9} {:>9} {:>9}",
            format!("{} {}", n.name.method, n.name.name),
            c.requests(),
            c.failed(),
            c.skipped,
            c.requests() as f64 / secs,
            q(0.5),
            q(0.95),
            q(0.99),
            if h.is_empty() {
                "-".to_string()
            } else {
                ms(h.max())
            },
        );
    }
}

/// "64 users", "up to 1000 users", "2000 requests/s", "up to 5000 requests/s".
pub fn load(schedule: &Schedule) -> String {
    let (shape, unit) = match schedule {
        Schedule::Closed { users } => (users, "users"),
        Schedule::Open { rate, .. } => (rate, "requests/s"),
    };
    if shape.stages.is_empty() {
        format!("{} {unit}", shape.start)
    } else {
        format!("up to {} {unit}", shape.peak())
    }
}

fn histogram_line(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no responses".to_string();
    }
    let mut parts: Vec<String> = PERCENTILES
        .iter()
        .map(|(label, q)| format!("{label} {}", ms(h.value_at_quantile(*q))))
        .collect();
    parts.push(format!("max {}", ms(h.max())));
    parts.push(format!("mean {}", ms(h.mean() as u64)));
    parts.join("  ")
}

/// Microseconds shown in the unit a reader expects: 0.412ms, 12.3ms, 1.20s.
pub fn ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.3}ms")
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(ms(412), "0.412ms");
        assert_eq!(ms(12_345), "12.3ms");
        assert_eq!(ms(1_200_000), "1.20s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
