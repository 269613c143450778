//! Why a request got slower, tested instead of guessed. Each explanation comes with the evidence
//! that would refute it, and is checked against the run's own series before anything is said:
//!
//! - *saturation*: a resource of the target (CPU against its cores or cgroup limit, database
//!   connections against their limit) at its ceiling while the latency rose, the latency
//!   following the requests in flight (Little's law: rate × mean latency) more closely than the
//!   time, and falling again once the queue drained;
//! - *growth with data*: the latency following the data created so far (successful POSTs and
//!   PUTs) or the size of the responses, at a load that held still and with no resource at its
//!   ceiling, and not falling back while the data stays;
//! - *one slow endpoint holding the workers*: its share of the requests in flight rising to
//!   most of them while the other endpoints slow down with it.
//!
//! The window is what happened, not the schedule: the intervals in which the request was
//! called, with the endpoints active in them. When no explanation survives, the finding says
//! so and names what to monitor.

use crate::finding::{fit, Evidence, Finding};
use crate::record::{Point, RunRecord};
use crate::resources::{self, CPU_BUSY};

/// A request rose when its latency reached this many times its early median...
const RISE_FACTOR: f64 = 2.0;
/// ...and at least this many ms above it.
const RISE_MIN_MS: f64 = 10.0;
/// A resource at its ceiling in this share of the rise's intervals explains it.
const MOST: f64 = 0.5;
/// A correlation this strong is a relation.
const STRONG: f64 = 0.8;
/// The load held still when users (or the rate) varied by less than this share.
const STILL: f64 = 0.1;
/// An endpoint holds the workers when its share of the requests in flight reaches this.
const HOLDING: f64 = 0.5;

/// The best-supported explanation among the requests that slowed down, or an undetermined
/// finding naming what to monitor. Every request that rose is tested: the one that holds
/// the server is explained, its victims are not (they only wait).
pub(crate) fn explain(run: &RunRecord, points: &[&Point]) -> Option<Finding> {
    // A partial interval (the moment of stopping) is not a level: a single slow request in
    // it would pass for a rise, and its few users for a load that moved.
    let mut spans: Vec<f64> = points.iter().map(|p| span(p)).collect();
    spans.sort_by(f64::total_cmp);
    let typical = *spans.get(spans.len() / 2)?;
    let full: Vec<&Point> = points
        .iter()
        .filter(|p| span(p) >= typical / 2.0)
        .copied()
        .collect();
    let names = full.iter().map(|p| p.names.len()).max()?;
    (0..names)
        .filter(|&c| rise_of(&full, c).is_some())
        .filter_map(|c| explain_one(run, &full, c))
        // The strongest explanation; among equals, the request holding most of the work.
        .max_by(|a, b| a.0.weight.total_cmp(&b.0.weight).then(a.1.total_cmp(&b.1)))
        .map(|(f, _)| f)
}

/// The finding for request `c`, with its largest share of the requests in flight.
fn explain_one(run: &RunRecord, points: &[&Point], c: usize) -> Option<(Finding, f64)> {
    let name = &run.names[c];
    let label = format!("{} {}", name.method, name.name);
    let window: Vec<&Point> = points
        .iter()
        .filter(|p| requests(p, c) > 0)
        .copied()
        .collect();
    let (from, to) = (window.first()?.start_s, window.last()?.t_s);
    let lat = smooth(
        &window
            .iter()
            .map(|p| latency(p, c).unwrap_or(0.0))
            .collect::<Vec<_>>(),
    );
    let base = early(&lat);
    let peak = lat.iter().copied().fold(0.0, f64::max);
    let rose = |v: f64| v >= RISE_FACTOR * base && v - base >= RISE_MIN_MS;
    let rise: Vec<&Point> = window
        .iter()
        .zip(&lat)
        .filter(|(_, &v)| rose(v))
        .map(|(p, _)| *p)
        .collect();
    let active: Vec<String> = (0..run.names.len())
        .filter(|&i| {
            i != c && 2 * window.iter().filter(|p| requests(p, i) > 0).count() >= window.len()
        })
        .map(|i| format!("{} {}", run.names[i].method, run.names[i].name))
        .collect();
    let active_text = match active.is_empty() {
        true => "called alone".to_string(),
        false => format!("beside {}", active.join(", ")),
    };
    let slow = match (rise.first(), rise.last()) {
        (Some(a), Some(b)) => format!(", slow from {:.0} s to {:.0} s", a.start_s, b.t_s),
        _ => String::new(),
    };
    let head = format!("called from {from:.0} s to {to:.0} s{slow}, {active_text}");

    // What each explanation reads.
    let ceiling = ceilings(run, &rise);
    let series = |f: &dyn Fn(&Point) -> f64| -> Vec<(f64, f64)> {
        window.iter().zip(&lat).map(|(p, &v)| (f(p), v)).collect()
    };
    let r_flight = correlation(&series(&in_flight));
    let r_time = correlation(&series(&|p: &Point| p.t_s));
    let created = created_by(run, points, c);
    let r_data = correlation(&series(&|p: &Point| created(p.t_s)))
        .max(correlation(&series(&|p: &Point| size(p, c))));
    let users: Vec<f64> = rise.iter().map(|p| p.users as f64).collect();
    let still = spread(&users) < STILL;
    let end = *lat.last()?;
    let fell = end < peak / RISE_FACTOR;
    let after = points
        .iter()
        .filter(|p| p.start_s >= to - 1e-9)
        .copied()
        .collect::<Vec<_>>();
    let others = run.names.len() > 1;
    let recovered = others.then(|| recovered(&window, &after, c)).flatten();
    let share_peak = rise
        .iter()
        .map(|p| in_flight_of(p, c) / in_flight(p).max(1e-9))
        .fold(0.0, f64::max);
    let dragged = dragged(points, &rise, c);

    // (weight, title, evidence, action) of each explanation that survived its test.
    let mut survived: Vec<(f64, String, String, String)> = Vec::new();
    let mut rejected: Vec<String> = Vec::new();
    // Saturation.
    let queueing = r_flight >= r_time || fell || recovered.is_some();
    match &ceiling {
        // Named with its request and window, it comes before the run-wide CPU finding.
        Ceiling::At { text, .. } if queueing => survived.push((
            101.0,
            format!("**{label} is {}: its calls queue while the server is saturated** ({head})", ceiling.kind()),
            format!(
                "{text}; its latency rose from {base:.1} ms to {peak:.1} ms{}{}{}",
                match r_flight >= r_time {
                    true => format!(", following the requests in flight (r = {r_flight:.2}) more than the time (r = {r_time:.2})"),
                    false => String::new(),
                },
                if fell { format!(", and fell to {end:.1} ms as the queue drained") } else { String::new() },
                recovered.as_ref().map_or(String::new(), |r| format!("; {r}")),
            ),
            match &ceiling {
                Ceiling::At { resource: "database connections", .. } => format!("Make {label} hold a database connection for less time, or pool the connections (PgBouncer) or raise max_connections."),
                _ => format!("Make {label} cheaper (profile it under this load) or give the server more CPU: more workers will not help."),
            },
        )),
        Ceiling::At { text, .. } => rejected.push(format!(
            "saturation ({text}, but the latency follows the time (r = {r_time:.2}) more than the requests in flight (r = {r_flight:.2}) and did not fall)"
        )),
        Ceiling::Below(text) => rejected.push(format!("saturation ({text})")),
        Ceiling::Unknown => {}
    }
    // Growth with data. A resource at its ceiling does not refute it when the latency follows
    // the data more than the queue: the growing work is then what fills the resource.
    let data_refuted = if !still {
        Some(format!(
            "the load moved: {:.0} to {:.0} users while it rose",
            users.iter().copied().fold(f64::INFINITY, f64::min),
            users.iter().copied().fold(0.0, f64::max)
        ))
    } else if fell {
        Some(format!("it fell back to {end:.1} ms while the data stayed"))
    } else if r_data < STRONG {
        Some(format!(
            "its latency does not follow the data created or the response size, r = {r_data:.2}"
        ))
    } else if matches!(ceiling, Ceiling::At { .. }) && r_flight >= r_data {
        Some(format!(
            "{} at its limit, the latency following the requests in flight (r = {r_flight:.2}) as much as the data (r = {r_data:.2})",
            ceiling.resource()
        ))
    } else {
        None
    };
    match data_refuted {
        None => survived.push((
            // It explains a resource at its limit too: it comes before the saturation.
            if matches!(ceiling, Ceiling::At { .. }) { 102.0 } else { 88.0 },
            format!("**{label} gets slower as its data grows** ({head})"),
            format!(
                "at a load that held still, its latency rose from {base:.1} ms to {peak:.1} ms following the data created so far or its response size (r = {r_data:.2}), {}; the work grows with what it reads: an unbounded list, a table scan, a missing index",
                match &ceiling {
                    Ceiling::At { text, .. } => format!("and the growing work filled a resource: {text}"),
                    Ceiling::Below(text) => format!("with {text}"),
                    Ceiling::Unknown => "with no resource of the target monitored".to_string(),
                }
            ),
            format!("Bound the work of {label} (paginate, index, cache) so it stops growing with the data."),
        )),
        Some(why) => rejected.push(format!("growth with data ({why})")),
    }
    // One endpoint holding the workers.
    if others {
        match dragged {
            Some(d) if share_peak >= HOLDING => survived.push((
                87.0,
                format!("**{label} holds the server's workers** ({head})"),
                format!(
                    "its calls were up to {:.0}% of the requests in flight and {d}",
                    share_peak * 100.0
                ),
                format!("Give {label} its own workers or a timeout, or make it faster, so it cannot hold the others'."),
            )),
            Some(_) => rejected.push(format!(
                "one endpoint holding the workers (its calls were at most {:.0}% of the requests in flight)",
                share_peak * 100.0
            )),
            None => rejected.push(format!(
                "one endpoint holding the workers (the other endpoints did not slow down with it; it held up to {:.0}% of the requests in flight)",
                share_peak * 100.0
            )),
        }
    }
    survived.sort_by(|a, b| b.0.total_cmp(&a.0));
    // What the tests read, drawn beside the finding.
    let over = |label: String, f: &dyn Fn(&Point) -> Option<f64>| Evidence {
        label,
        points: points.iter().filter_map(|p| Some((p.t_s, f(p)?))).collect(),
    };
    let mut evidence = vec![
        over(format!("{label}, mean latency (ms)"), &|p| latency(p, c)),
        over("requests in flight (rate × mean latency)".into(), &|p| {
            Some(in_flight(p))
        }),
    ];
    evidence.extend(resource_series(points));
    if r_data >= STRONG {
        evidence.push(over(
            "data created so far (successful POSTs and PUTs)".into(),
            &|p| Some(created(p.t_s)),
        ));
    }
    let rejected_text = match rejected.is_empty() {
        true => String::new(),
        false => format!(" Rejected: {}.", rejected.join("; ")),
    };
    let Some((weight, title, evidence_text, action)) = survived.first() else {
        return Some((Finding {
            evidence,
            text: format!(
                "**{label} got slower, cause undetermined** ({head}): its latency rose from {base:.1} ms to {peak:.1} ms, following the requests in flight (r = {r_flight:.2}), the time (r = {r_time:.2}), the data (r = {r_data:.2}).{rejected_text}"
            ),
            action: format!("Run again monitoring the target: its server's CPU (--monitor-pid or --monitor-cgroup) and its database (--monitor-postgres), so {label}'s rise can be explained."),
            weight: 60.0,
        }, share_peak));
    };
    let also: Vec<&str> = survived[1..].iter().map(|s| s.2.as_str()).collect();
    let also_text = match also.is_empty() {
        true => String::new(),
        false => format!(" Also: {}.", also.join("; ")),
    };
    Some((
        Finding {
            text: format!("{title}: {evidence_text}.{also_text}{rejected_text}"),
            evidence,
            action: action.clone(),
            weight: *weight,
        },
        share_peak,
    ))
}

/// What the target was short of during the rise, from the monitored series.
enum Ceiling {
    /// A resource at its ceiling in most of the rise.
    At {
        /// `the server's CPU` or `database connections`.
        resource: &'static str,
        /// The evidence, e.g. "pid42 at up to 199% CPU of 2 cores in 11 of 12 intervals".
        text: String,
    },
    /// Monitored, and below every ceiling.
    Below(String),
    /// Nothing of the target monitored.
    Unknown,
}

impl Ceiling {
    /// The resource at its ceiling, or "no resource".
    fn resource(&self) -> &'static str {
        match self {
            Ceiling::At { resource, .. } => resource,
            _ => "no resource",
        }
    }

    /// The bound it names: "CPU-bound", "bound by database connections".
    fn kind(&self) -> String {
        match self {
            Ceiling::At {
                resource: "the server's CPU",
                ..
            } => "CPU-bound".into(),
            Ceiling::At { resource, .. } => format!("bound by {resource}"),
            _ => "slow".into(),
        }
    }
}

/// The resources of the target against their ceilings in `rise`.
fn ceilings(run: &RunRecord, rise: &[&Point]) -> Ceiling {
    let host_cores = run.cores.unwrap_or(1).max(1) as f64;
    let mut below = Vec::new();
    for source in resources::cpu_sources(rise) {
        let cpu = |p: &Point| resources::cpu(p, &source);
        let cores = |p: &Point| resources::cores(p, &source, host_cores);
        let measured: Vec<&&Point> = rise.iter().filter(|p| cpu(p).is_some()).collect();
        let at = measured
            .iter()
            .filter(|p| cpu(p).is_some_and(|c| c >= CPU_BUSY * 100.0 * cores(p)))
            .count();
        let peak = measured.iter().filter_map(|p| cpu(p)).fold(0.0, f64::max);
        let limit = measured.iter().map(|p| cores(p)).fold(0.0, f64::max);
        if !measured.is_empty() && at as f64 >= MOST * measured.len() as f64 {
            return Ceiling::At {
                resource: "the server's CPU",
                text: format!(
                    "{source} used up to {peak:.0}% CPU of {limit:.0} core(s), at {:.0}%+ of them in {at} of {} intervals of the rise",
                    CPU_BUSY * 100.0,
                    measured.len()
                ),
            };
        }
        if !measured.is_empty() {
            below.push(format!(
                "{source}'s CPU at most {peak:.0}% of {limit:.0} core(s)"
            ));
        }
    }
    let db: Vec<(f64, f64)> = rise
        .iter()
        .filter_map(|p| resources::db_connections(p))
        .collect();
    if !db.is_empty() {
        let at = db.iter().filter(|&&c| resources::db_at_limit(c)).count();
        let (peak, max) = db
            .iter()
            .fold((0.0_f64, 0.0_f64), |a, b| (a.0.max(b.0), a.1.max(b.1)));
        if at as f64 >= MOST * db.len() as f64 {
            return Ceiling::At {
                resource: "database connections",
                text: format!(
                    "up to {peak:.0} of {max:.0} database connections in use, at the limit in {at} of {} intervals of the rise",
                    db.len()
                ),
            };
        }
        below.push(format!(
            "database connections at most {peak:.0} of {max:.0}"
        ));
    }
    match below.is_empty() {
        true => Ceiling::Unknown,
        false => Ceiling::Below(below.join(", ")),
    }
}

/// The monitored resources of the target over the run: each server's CPU, the database's
/// connections.
fn resource_series(points: &[&Point]) -> Vec<Evidence> {
    let cpus = resources::cpu_sources(points).into_iter().map(|source| {
        let key = format!("{source}.cpu_pct");
        Evidence::over(
            format!("{source} CPU (% of one core)"),
            points.iter().copied(),
            |p| p.sample.monitor.get(&key).copied(),
        )
    });
    let db = Evidence::over("database connections", points.iter().copied(), |p| {
        p.sample.monitor.get("pg.connections").copied()
    });
    cpus.chain((!db.points.is_empty()).then_some(db)).collect()
}

/// How much request `c`'s latency rose, in ms, when it rose: to twice its early level and
/// [`RISE_MIN_MS`] more, as a level held for three intervals (their median), not one slow
/// interval.
fn rise_of(points: &[&Point], c: usize) -> Option<f64> {
    let lat = smooth(
        &points
            .iter()
            .filter_map(|p| latency(p, c))
            .collect::<Vec<_>>(),
    );
    if lat.len() < 5 {
        return None;
    }
    let base = early(&lat);
    let peak = lat.iter().copied().fold(0.0, f64::max);
    (peak >= RISE_FACTOR * base && peak - base >= RISE_MIN_MS).then_some(peak - base)
}

/// Each value as the median of itself and its neighbours: the level, without lone spikes.
fn smooth(values: &[f64]) -> Vec<f64> {
    (0..values.len())
        .map(|i| {
            let mut around: Vec<f64> =
                values[i.saturating_sub(1)..(i + 2).min(values.len())].to_vec();
            around.sort_by(f64::total_cmp);
            around[around.len() / 2]
        })
        .collect()
}

/// The median of the first three values: a request's own baseline.
fn early(values: &[f64]) -> f64 {
    let mut first: Vec<f64> = values.iter().take(3).copied().collect();
    first.sort_by(f64::total_cmp);
    first
        .get(first.len() / 2)
        .copied()
        .unwrap_or(0.0)
        .max(0.001)
}

fn span(p: &Point) -> f64 {
    (p.t_s - p.start_s).max(1e-3)
}

fn requests(p: &Point, i: usize) -> u64 {
    p.names.get(i).map_or(0, |n| n.requests)
}

/// A request's latency in an interval: its mean where recorded (what Little's law needs),
/// else its median.
fn latency(p: &Point, i: usize) -> Option<f64> {
    let n = p.names.get(i).filter(|n| n.requests > 0)?;
    n.mean_ms.or(n.p50_ms)
}

/// A request's calls in flight on average over an interval: rate × mean latency.
fn in_flight_of(p: &Point, i: usize) -> f64 {
    requests(p, i) as f64 / span(p) * latency(p, i).unwrap_or(0.0) / 1000.0
}

/// All requests in flight on average over an interval.
fn in_flight(p: &Point) -> f64 {
    (0..p.names.len()).map(|i| in_flight_of(p, i)).sum()
}

/// A request's response bytes per call in an interval.
fn size(p: &Point, i: usize) -> f64 {
    p.names
        .get(i)
        .filter(|n| n.requests > 0)
        .map_or(0.0, |n| n.bytes_received as f64 / n.requests as f64)
}

/// The successful POSTs and PUTs of requests other than `c` finished by time `t`: the data
/// the run created for `c` to read. (`c`'s own calls are not counted: a login's POSTs create
/// nothing the next login reads.)
fn created_by<'a>(run: &'a RunRecord, points: &'a [&Point], c: usize) -> impl Fn(f64) -> f64 + 'a {
    let writes: Vec<usize> = (run.names.iter().enumerate())
        .filter(|&(i, n)| i != c && matches!(n.method.as_str(), "POST" | "PUT"))
        .map(|(i, _)| i)
        .collect();
    move |t| {
        points
            .iter()
            .filter(|p| p.t_s <= t + 1e-9)
            .flat_map(|p| writes.iter().filter_map(|&i| p.names.get(i)))
            .map(|n| n.requests.saturating_sub(n.failed) as f64)
            .sum()
    }
}

/// Pearson's r of `points`, 0 when either side does not vary.
fn correlation(points: &[(f64, f64)]) -> f64 {
    fit(points).map_or(0.0, |(slope, r2)| r2.sqrt().copysign(slope))
}

/// (max − min) / max of `values`: how much a load moved.
fn spread(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(0.0, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    if max <= 0.0 {
        return 0.0;
    }
    (max - min) / max
}

/// The p99 of the requests other than `c` over `points`, as their median.
fn others_p99(points: &[&Point], c: usize) -> Option<f64> {
    let mut v: Vec<f64> = points
        .iter()
        .flat_map(|p| p.names.iter().enumerate().filter(move |(i, _)| *i != c))
        .filter(|(_, n)| n.requests > 0)
        .filter_map(|(_, n)| n.p99_ms)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// How the other requests did once `c`'s calls were over, when they recovered.
fn recovered(window: &[&Point], after: &[&Point], c: usize) -> Option<String> {
    let during = others_p99(window, c)?;
    let later = others_p99(after, c)?;
    (later * RISE_FACTOR <= during).then(|| {
        format!("the other requests' p99 went from {during:.1} ms while it was called to {later:.1} ms once its calls were done")
    })
}

/// How the other requests slowed down during `rise`, against before it; `None` when they
/// did not.
fn dragged(points: &[&Point], rise: &[&Point], c: usize) -> Option<String> {
    let start = rise.first()?.start_s;
    let before: Vec<&Point> = points
        .iter()
        .filter(|p| p.t_s <= start + 1e-9)
        .copied()
        .collect();
    let base = others_p99(&before, c)?;
    let during = others_p99(rise, c)?;
    (during >= RISE_FACTOR * base && during - base >= RISE_MIN_MS).then(|| {
        format!("the other requests' p99 rose with it, from {base:.1} ms to {during:.1} ms")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{NamePoint, Sample};

    fn run(points: Vec<Point>, names: &[(&str, &str)]) -> RunRecord {
        crate::record::test_run(points, names)
    }

    /// Interval `t` (1-based) with `users`, `monitor` values and per name (requests, mean ms,
    /// bytes per request); p50 = mean, p99 = 2 × mean.
    fn point(t: f64, users: u64, monitor: &[(&str, f64)], names: &[(u64, f64, u64)]) -> Point {
        Point {
            start_s: t - 1.0,
            t_s: t,
            users,
            p99_ms: Some(
                (names.iter())
                    .filter(|n| n.0 > 0)
                    .map(|n| 2.0 * n.1)
                    .fold(0.0, f64::max),
            ),
            sample: Sample {
                monitor: monitor.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                ..Sample::default()
            },
            names: names
                .iter()
                .map(|&(requests, ms, bytes)| NamePoint {
                    requests,
                    failed: 0,
                    p50_ms: (requests > 0).then_some(ms),
                    p99_ms: (requests > 0).then_some(2.0 * ms),
                    mean_ms: (requests > 0).then_some(ms),
                    bytes_received: requests * bytes,
                })
                .collect(),
            ..Point::default()
        }
    }

    fn explained(run: &RunRecord) -> Finding {
        let points: Vec<&Point> = run.history.iter().collect();
        explain(run, &points).expect("a finding")
    }

    /// Every user logs in once at the start (a CPU-heavy endpoint); the calls queue while the
    /// server's 2 cores are full, then the other endpoint recovers. Latency rises with time
    /// during the login window only because of queueing: not data growth.
    fn login_storm(monitored: bool) -> RunRecord {
        let points = (1..=20)
            .map(|t| {
                let users = (t * 10).min(100);
                let login = t <= 10;
                // Queued logins wait longer as more arrive: 100 ms, 200 ms, ... 1 s.
                let login_ms = 100.0 * t as f64;
                let items_ms = if login { 5.0 * t as f64 + 2.0 } else { 2.0 };
                let cpu = if login { 199.0 } else { 40.0 };
                let monitor: &[(&str, f64)] = if monitored {
                    &[("pid7.cpu_pct", cpu), ("pid7.cpu_cores", 2.0)]
                } else {
                    &[]
                };
                let login_calls = if login { 10 } else { 0 };
                point(
                    t as f64,
                    users,
                    monitor,
                    &[(login_calls, login_ms, 200), (20, items_ms, 500)],
                )
            })
            .collect();
        run(points, &[("POST", "/login"), ("GET", "/items")])
    }

    #[test]
    fn a_cpu_heavy_endpoint_at_start_is_saturation_not_data_growth() {
        let f = explained(&login_storm(true));
        assert!(
            f.text.starts_with("**POST /login is CPU-bound: its calls queue while the server is saturated** (called from 0 s to 10 s, slow from 3 s to 10 s, beside GET /items)"),
            "{}",
            f.text
        );
        assert!(
            f.text.contains("pid7 used up to 199% CPU of 2 core(s)"),
            "{}",
            f.text
        );
        assert!(f.text.contains("once its calls were done"), "{}", f.text);
        assert!(
            f.text.contains(
                "Rejected: growth with data (the load moved: 40 to 100 users while it rose)"
            ),
            "{}",
            f.text
        );
        assert!(!f.text.contains("table scan"), "{}", f.text);
        let labels: Vec<&str> = f.evidence.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "POST /login, mean latency (ms)",
                "requests in flight (rate × mean latency)",
                "pid7 CPU (% of one core)"
            ]
        );
        assert_eq!(
            f.evidence[2].points.len(),
            20,
            "the whole run, to show before and after"
        );
    }

    #[test]
    fn without_monitoring_the_login_storm_is_the_login_holding_the_workers() {
        let f = explained(&login_storm(false));
        assert!(
            f.text
                .starts_with("**POST /login holds the server's workers**"),
            "{}",
            f.text
        );
        assert!(
            f.text
                .contains("Rejected: growth with data (the load moved"),
            "{}",
            f.text
        );
    }

    #[test]
    fn when_nothing_survives_the_cause_is_undetermined_and_what_to_monitor_is_named() {
        // One request, slower and slower at a steady load, nothing monitored, no data read.
        let points = (1..=20)
            .map(|t| point(t as f64, 20, &[], &[(50, 5.0 * t as f64, 100)]))
            .collect();
        let f = explained(&run(points, &[("GET", "/x")]));
        assert!(
            f.text.starts_with("**GET /x got slower, cause undetermined** (called from 0 s to 20 s, slow from 3 s to 20 s, called alone)"),
            "{}",
            f.text
        );
        assert!(f.action.contains("--monitor-pid"), "{}", f.action);
        assert_eq!(
            f.evidence.len(),
            2,
            "its latency and the requests in flight"
        );
    }

    #[test]
    fn latency_that_follows_the_data_created_at_a_steady_load_is_growth_with_data() {
        // 20 users throughout; each second 100 items are created; /search scans them all.
        let points = (1..=30)
            .map(|t| {
                let search_ms = 1.0 + 0.05 * (100 * t) as f64;
                point(
                    t as f64,
                    20,
                    &[("pid7.cpu_pct", 30.0), ("pid7.cpu_cores", 2.0)],
                    &[(100, 2.0, 100), (10, search_ms, 300)],
                )
            })
            .collect();
        let f = explained(&run(points, &[("POST", "/items"), ("GET", "/search")]));
        assert!(
            f.text.starts_with("**GET /search gets slower as its data grows** (called from 0 s to 30 s, slow from 4 s to 30 s, beside POST /items)"),
            "{}",
            f.text
        );
        assert!(
            f.text.contains("pid7's CPU at most 30% of 2 core(s)"),
            "{}",
            f.text
        );
        assert!(
            f.text
                .contains("Rejected: saturation (pid7's CPU at most 30%"),
            "{}",
            f.text
        );
    }

    #[test]
    fn growing_work_that_fills_the_cpu_is_growth_with_data_first() {
        // 8 users with no rest: always 8 in flight. /events serialises every row it has, so
        // from 10 s on the server's CPU is full, but the latency follows the rows.
        let points = (1..=30)
            .map(|t| {
                let ms = 2.0 + 4.0 * t as f64;
                let cpu = if t >= 10 {
                    195.0
                } else {
                    60.0 + 10.0 * t as f64
                };
                let calls = (8.0 * 1000.0 / ms) as u64;
                point(
                    t as f64,
                    8,
                    &[("pid7.cpu_pct", cpu), ("pid7.cpu_cores", 2.0)],
                    &[(calls, ms, 100 * t), (calls / 4, 3.0, 50)],
                )
            })
            .collect();
        let f = explained(&run(points, &[("GET", "/events"), ("POST", "/events")]));
        assert!(
            f.text
                .starts_with("**GET /events gets slower as its data grows**"),
            "{}",
            f.text
        );
        assert!(
            f.text
                .contains("the growing work filled a resource: pid7 used up to 195% CPU"),
            "{}",
            f.text
        );
        assert!(f.weight > 100.0, "it outranks the CPU finding it explains");
    }

    #[test]
    fn a_slow_endpoint_that_fills_the_workers_drags_the_others() {
        // /report takes longer and longer and is most of what is in flight; /health waits
        // behind it. Nothing monitored: the holding is what the requests themselves show.
        let points = (1..=20)
            .map(|t| {
                let report_ms = if t > 5 { 100.0 * (t - 4) as f64 } else { 50.0 };
                let health_ms = if t > 5 { 20.0 * (t - 4) as f64 } else { 1.0 };
                point(
                    t as f64,
                    20,
                    &[],
                    &[(10, report_ms, 100), (20, health_ms, 10)],
                )
            })
            .collect();
        let f = explained(&run(points, &[("GET", "/report"), ("GET", "/health")]));
        assert!(
            f.text
                .starts_with("**GET /report holds the server's workers**"),
            "{}",
            f.text
        );
        assert!(
            f.text.contains("the other requests' p99 rose with it"),
            "{}",
            f.text
        );
    }

    #[test]
    fn a_flat_run_explains_nothing() {
        let points = (1..=20)
            .map(|t| point(t as f64, 20, &[], &[(100, 3.0, 10), (50, 8.0, 10)]))
            .collect();
        let run = run(points, &[("GET", "/a"), ("GET", "/b")]);
        let points: Vec<&Point> = run.history.iter().collect();
        assert_eq!(explain(&run, &points), None);
    }
}
