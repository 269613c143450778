//! Attribution: what the server was short of, named from the monitored data, each suspect with
//! its numbers and ranked by how much of the slow time it covers.
//!
//! - the server's CPU near the cores it may use (`--monitor-pid`, `--monitor-cgroup`,
//!   `--monitor-container`), or the whole host busy;
//! - database connections near `max_connections`, or sessions waiting on locks
//!   (`--monitor-postgres`);
//! - why the request that slowed down most did: saturation, growth with data or one endpoint
//!   holding the workers, each tested against the run's series ([`crate::hypotheses`]);
//! - which request slowed down first when latency rose, and which was slow throughout.
//!
//! Memory growth, errors and the generator's own health have their findings elsewhere.

use crate::finding::{Evidence, Finding};
use crate::record::{Point, RunRecord};
use crate::resources::{self, CPU_BUSY};

/// The host this busy (all processes together) has no CPU left for the server.
const HOST_BUSY_PCT: f64 = 90.0;
/// A condition must hold in this share of the intervals to count as the run's.
const MOST: f64 = 0.5;
/// A rise in a request's p99 of at least this many ms (and a doubling) is a turn.
const TREND_MIN_MS: f64 = 10.0;

/// The findings of this module for one run, most telling first.
pub(crate) fn findings(run: &RunRecord) -> Vec<Finding> {
    let judged: Vec<&Point> = run
        .history
        .iter()
        .filter(|p| p.p99_ms.is_some() && !run.generator.stalled_during(p.start_s, p.t_s))
        .collect();
    if judged.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    out.extend(server_cpu(run, &judged));
    out.extend(database(&judged));
    out.extend(crate::hypotheses::explain(run, &judged));
    out.extend(first_to_slow_down(run, &judged));
    out
}

/// The p99 of the intervals where `holds`, against the others', as evidence text.
fn contrast(points: &[&Point], holds: impl Fn(&Point) -> bool) -> String {
    let p99 = |want: bool| {
        let values: Vec<f64> = points
            .iter()
            .filter(|p| holds(p) == want)
            .filter_map(|p| p.p99_ms)
            .collect();
        (!values.is_empty()).then(|| median(values))
    };
    match (p99(true), p99(false)) {
        (Some(a), Some(b)) => format!("; median interval p99 {a:.1} ms there, {b:.1} ms elsewhere"),
        (Some(a), None) => format!("; median interval p99 {a:.1} ms"),
        _ => String::new(),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The monitored server's CPU against the cores it may use, or the host at its limit.
fn server_cpu(run: &RunRecord, points: &[&Point]) -> Option<Finding> {
    let host_cores = run.cores.filter(|&c| c > 0)? as f64;
    let mut best: Option<(f64, Finding)> = None;
    for source in resources::cpu_sources(points) {
        let cpu = |p: &Point| resources::cpu(p, &source);
        let cores = |p: &Point| resources::cores(p, &source, host_cores);
        let host = |p: &Point| p.sample.monitor.get("host.cpu_pct").copied();
        let short = |p: &Point| {
            cpu(p).is_some_and(|c| {
                c >= CPU_BUSY * 100.0 * cores(p)
                    // Sharing the host (with blast, a database): short when the host is full
                    // and the server is its main user.
                    || (host(p).is_some_and(|h| h >= HOST_BUSY_PCT) && c >= 100.0 * host_cores * 0.4)
            })
        };
        let measured: Vec<&&Point> = points.iter().filter(|p| cpu(p).is_some()).collect();
        let held = measured.iter().filter(|p| short(p)).count();
        if measured.is_empty() || (held as f64) < MOST * measured.len() as f64 {
            continue;
        }
        let peak = measured.iter().filter_map(|p| cpu(p)).fold(0.0, f64::max);
        let limit = measured.iter().map(|p| cores(p)).fold(0.0, f64::max);
        let host_text = measured
            .iter()
            .filter_map(|p| host(p))
            .reduce(f64::max)
            .map_or(String::new(), |h| format!(", the host up to {h:.0}% busy"));
        let share = held as f64 / measured.len() as f64;
        let finding = Finding {
            evidence: vec![
                Evidence::monitored(&run.history, &format!("{source}.cpu_pct")),
                Evidence::p99(&run.history),
            ],
            text: format!(
                "**The server is short of CPU**: {source} used up to {peak:.0}% CPU of its {limit:.0} core(s) ({:.0}% each), at {:.0}%+ of them in {held} of {} intervals{host_text}{}. Requests queue for a CPU: more workers will not help.",
                peak / limit,
                CPU_BUSY * 100.0,
                measured.len(),
                contrast(points, short),
            ),
            action: format!("Give {source} more CPU (cores, replicas), or make its busiest endpoint cheaper: profile it under this load."),
            weight: 90.0 + 10.0 * share,
        };
        if best.as_ref().is_none_or(|(s, _)| share > *s) {
            best = Some((share, finding));
        }
    }
    best.map(|(_, f)| f)
}

/// Database connections against `max_connections`, and sessions waiting on locks.
fn database(points: &[&Point]) -> Option<Finding> {
    let get = |p: &Point, k: &str| p.sample.monitor.get(k).copied();
    let limit = |p: &Point| resources::db_connections(p).map(|(_, max)| max);
    let near = |p: &Point| resources::db_connections(p).is_some_and(resources::db_at_limit);
    let waiting = |p: &Point| get(p, "pg.lock_waits").is_some_and(|w| w > 0.0);
    let measured = points
        .iter()
        .filter(|p| get(p, "pg.connections").is_some())
        .count();
    if measured == 0 {
        return None;
    }
    let at_limit = points.iter().filter(|p| near(p)).count();
    let locked = points.iter().filter(|p| waiting(p)).count();
    let peak = |k: &str| points.iter().filter_map(|p| get(p, k)).fold(0.0, f64::max);
    if at_limit > 0 {
        let share = at_limit as f64 / measured as f64;
        return Some(Finding {
            evidence: vec![
            Evidence::over("database connections", points.iter().copied(), |p| {
                p.sample.monitor.get("pg.connections").copied()
            }),
            Evidence::over("sessions waiting on locks", points.iter().copied(), |p| {
                p.sample.monitor.get("pg.lock_waits").copied()
            }),
        ],
            text: format!(
                "**Database connections at their limit**: up to {:.0} of the {:.0} that max_connections {:.0} leaves to applications ({:.0} active) in {at_limit} of {measured} intervals{}. New connections are refused or wait for a free one.",
                peak("pg.connections"),
                points.iter().filter_map(|p| limit(p)).fold(0.0, f64::max),
                peak("pg.max_connections"),
                peak("pg.active"),
                contrast(points, near),
            ),
            action: "Pool the database connections (PgBouncer, a smaller per-worker pool that all workers share) or raise max_connections.".into(),
            weight: 88.0 + 10.0 * share,
        });
    }
    (locked > 0).then(|| Finding {
        evidence: vec![
            Evidence::over("database connections", points.iter().copied(), |p| {
                p.sample.monitor.get("pg.connections").copied()
            }),
            Evidence::over("sessions waiting on locks", points.iter().copied(), |p| {
                p.sample.monitor.get("pg.lock_waits").copied()
            }),
        ],
        text: format!(
            "**Database sessions wait on locks**: up to {:.0} waiting in {locked} of {measured} intervals{}.",
            peak("pg.lock_waits"),
            contrast(points, waiting),
        ),
        action: "Find the contended rows or tables (pg_locks joined with pg_stat_activity) and shorten those transactions.".into(),
        weight: 86.0 + 10.0 * locked as f64 / measured as f64,
    })
}

/// When latency rose, the request that slowed down first; and requests slow throughout.
fn first_to_slow_down(run: &RunRecord, points: &[&Point]) -> Option<Finding> {
    // Each request's own baseline: the median p99 of its first three answered intervals.
    let mut first: Option<(f64, usize, f64, f64)> = None;
    let mut slow_throughout = Vec::new();
    for (i, name) in run.names.iter().enumerate() {
        let series: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| Some((p.t_s, p.names.get(i)?.p99_ms?)))
            .collect();
        if series.len() < 4 {
            continue;
        }
        let base = median(series.iter().take(3).map(|s| s.1).collect());
        let all = median(series.iter().map(|s| s.1).collect());
        if base >= 100.0 && all >= 100.0 {
            slow_throughout.push(format!(
                "{} {} (median interval p99 {all:.0} ms)",
                name.method, name.name
            ));
            continue;
        }
        // A rise that lasts three intervals: one slow interval is noise, not a turn.
        let high = |p99: f64| p99 >= 2.0 * base && p99 - base >= TREND_MIN_MS;
        let rose = (3..series.len().saturating_sub(2))
            .find(|&k| series[k..k + 3].iter().all(|s| high(s.1)))
            .map(|k| series[k]);
        if let Some((t, p99)) = rose {
            if first.is_none_or(|(ft, ..)| t < ft) {
                first = Some((t, i, base, p99));
            }
        }
    }
    if first.is_none() && slow_throughout.is_empty() {
        return None;
    }
    let mut text = String::new();
    if let Some((t, i, base, p99)) = first {
        let n = &run.names[i];
        text = format!(
            "**{} {} slowed down first**: its p99 rose from {base:.1} ms to {p99:.1} ms at {t:.0} s, before any other request's.",
            n.method, n.name
        );
    }
    if !slow_throughout.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!(
            "Slow from the start: {}.",
            slow_throughout.join(", ")
        ));
    }
    // A pointer for the reader, not a cause: the causes above carry the weight.
    Some(Finding {
        evidence: first
            .map(|(_, i, _, _)| {
                let n = &run.names[i];
                Evidence::over(
                    format!("{} {}, p99 (ms)", n.method, n.name),
                    points.iter().copied(),
                    |p| p.names.get(i)?.p99_ms,
                )
            })
            .into_iter()
            .collect(),
        text,
        action: String::new(),
        weight: 40.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{NamePoint, Sample};
    use std::collections::BTreeMap;

    fn run(points: Vec<Point>, names: &[&str]) -> RunRecord {
        let names: Vec<(&str, &str)> = names.iter().map(|n| ("GET", *n)).collect();
        crate::record::test_run(points, &names)
    }

    /// Interval `t` (1-based) with `monitor` values and per-name p50 = p99 = `ms`.
    fn point(t: f64, p99: f64, monitor: &[(&str, f64)], names: &[f64]) -> Point {
        Point {
            start_s: t - 1.0,
            t_s: t,
            backlog: 0,
            users: 50,
            rps: 100.0,
            fails_per_s: 0.0,
            p50_ms: Some(p99 / 2.0),
            p95_ms: Some(p99),
            p99_ms: Some(p99),
            max_ms: Some(p99),
            sample: Sample {
                monitor: monitor
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect::<BTreeMap<_, _>>(),
                ..Sample::default()
            },
            names: names
                .iter()
                .map(|&ms| NamePoint {
                    requests: 50,
                    failed: 0,
                    p50_ms: Some(ms),
                    p99_ms: Some(ms),
                    ..NamePoint::default()
                })
                .collect(),
        }
    }

    #[test]
    fn a_server_at_its_cores_is_short_of_cpu() {
        let points = (1..=20)
            .map(|t| {
                point(
                    t as f64,
                    900.0,
                    &[("pid42.cpu_pct", 195.0), ("pid42.cpu_cores", 2.0)],
                    &[900.0],
                )
            })
            .collect();
        let found = findings(&run(points, &["/login"]));
        assert!(
            found[0].text.starts_with(
                "**The server is short of CPU**: pid42 used up to 195% CPU of its 2 core(s)"
            ),
            "{found:?}"
        );
        assert!(
            found[0].text.contains("in 20 of 20 intervals"),
            "{}",
            found[0].text
        );
        // Half a core busy: not short.
        let points = (1..=20)
            .map(|t| {
                point(
                    t as f64,
                    5.0,
                    &[("pid42.cpu_pct", 50.0), ("pid42.cpu_cores", 2.0)],
                    &[5.0],
                )
            })
            .collect();
        assert!(findings(&run(points, &["/login"]))
            .iter()
            .all(|f| !f.text.contains("CPU")));
    }

    #[test]
    fn database_connections_at_max_are_named() {
        let points = (1..=10)
            .map(|t| {
                let conns = if t > 3 { 20.0 } else { 5.0 };
                point(
                    t as f64,
                    if t > 3 { 300.0 } else { 5.0 },
                    &[
                        ("pg.connections", conns),
                        ("pg.max_connections", 20.0),
                        ("pg.active", conns),
                    ],
                    &[5.0],
                )
            })
            .collect();
        let found = findings(&run(points, &["/items"]));
        let db = found
            .iter()
            .find(|f| f.text.contains("Database connections"))
            .unwrap();
        assert!(
            db.text
                .contains("up to 20 of the 20 that max_connections 20 leaves"),
            "{}",
            db.text
        );
        assert!(
            db.text.contains(
                "in 7 of 10 intervals; median interval p99 300.0 ms there, 5.0 ms elsewhere"
            ),
            "{}",
            db.text
        );
    }

    #[test]
    fn the_request_that_slowed_first_is_named() {
        // /a is fine until 8 s; /b slows from 5 s.
        let points = (1..=12)
            .map(|t| {
                let a: f64 = if t >= 8 { 80.0 } else { 2.0 };
                let b = if t >= 5 { 60.0 } else { 3.0 };
                point(t as f64, a.max(b), &[], &[a, b])
            })
            .collect();
        let found = findings(&run(points, &["/a", "/b"]));
        let first = found
            .iter()
            .find(|f| f.text.contains("slowed down first"))
            .unwrap();
        assert!(
            first.text.starts_with(
                "**GET /b slowed down first**: its p99 rose from 3.0 ms to 60.0 ms at 5 s"
            ),
            "{}",
            first.text
        );
    }
}
