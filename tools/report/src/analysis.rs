//! Bottleneck findings computed from a run's record: where latency bends as users grow, where
//! throughput stops growing, what the error classes say, whether the generator was the limit.

pub use crate::finding::Finding;
use crate::finding::{fit, Evidence};
use crate::record::{Point, RunRecord, Sample};

/// A latency knee: p99 more than this many times its value at low load...
const KNEE_FACTOR: f64 = 2.0;
/// ...and at least this much higher in absolute terms: a rise from 0.4 to 1 ms is noise, not
/// queueing anyone waits for.
const KNEE_MIN_MS: f64 = 10.0;
/// Users must grow by this share while throughput grows by less than [`FLAT_GROWTH`] for a
/// plateau.
const USERS_GROWTH: f64 = 0.3;
const FLAT_GROWTH: f64 = 0.05;
/// A p99 users wait for: below it, the slowest request of a healthy run (a 12 ms database
/// query beside a 3 ms health check) is not worth a recommendation.
const SLOW_MS: f64 = 50.0;

/// Judges a finished run's record from what it recorded: whether the generator was the limit
/// or stalled (from its interval `samples`), and what grew while the load held.
pub fn annotate(record: &mut RunRecord, samples: &[Sample]) {
    crate::health::judge(record, samples);
    record.growth = growth(&record.history);
}

/// Every finding for one run, most urgent first.
pub fn findings(run: &RunRecord) -> Vec<Finding> {
    let mut out = Vec::new();
    // Intervals in which blast itself stalled say nothing about the target.
    let ramp: Vec<&Point> = ramp_up(&run.history)
        .into_iter()
        .filter(|p| !run.generator.stalled_during(p.start_s, p.t_s))
        .collect();
    out.extend(latency_knee(&ramp));
    out.extend(throughput_plateau(&ramp));
    out.extend(errors(run));
    out.extend(slowest_names(run));
    out.extend(phase_split(run));
    out.extend(crate::health::findings(run));
    out.extend(crate::attribution::findings(run));
    for g in &run.growth {
        // "pid42.rss_mb grew steadily ...": the series is the first word's.
        let key = g.split_whitespace().next().unwrap_or_default();
        out.push(Finding {
            evidence: vec![Evidence::monitored(&run.history, key)],
            text: format!("**Memory growth**: {g}."),
            action: format!("Look for a leak: {g}."),
            weight: 80.0,
        });
    }
    for c in run.criteria.iter().filter(|c| !c.pass) {
        out.push(Finding {
            evidence: Vec::new(),
            text: format!(
                "Criterion `{}` failed (measured {}){}.",
                c.criterion,
                c.measured,
                failing_text(&c.failing, run.duration_s)
            ),
            action: format!("Bring `{}` within its target.", c.criterion),
            // A failed criterion restates the symptom; the findings with evidence come first.
            weight: 20.0,
        });
    }
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    out
}

/// The points of the run while users were rising (or all of a constant run), with traffic.
fn ramp_up(history: &[Point]) -> Vec<&Point> {
    if history.is_empty() {
        return Vec::new();
    }
    let peak_at = history
        .iter()
        .enumerate()
        .max_by_key(|(i, p)| (p.users, usize::MAX - i))
        .map_or(0, |(i, _)| i);
    history[..=peak_at.min(history.len().saturating_sub(1))]
        .iter()
        .filter(|p| p.users > 0 && p.rps > 0.0)
        .collect()
}

fn latency_knee(ramp: &[&Point]) -> Option<Finding> {
    let p99: Vec<(u64, f64)> = ramp
        .iter()
        .filter_map(|p| p.p99_ms.map(|v| (p.users, v)))
        .collect();
    if p99.len() < 4 || p99.first()?.0 == p99.last()?.0 {
        return None;
    }
    // Baseline: the median p99 of the first quarter of the ramp.
    let mut early: Vec<f64> = p99[..p99.len() / 4 + 1].iter().map(|x| x.1).collect();
    early.sort_by(f64::total_cmp);
    let base = early[early.len() / 2].max(0.001);
    // The knee: the first point from which p99 stays above KNEE_FACTOR × baseline.
    let queued = |v: f64| v > KNEE_FACTOR * base && v > base + KNEE_MIN_MS;
    let knee = (0..p99.len()).find(|&i| p99[i..].iter().all(|x| queued(x.1)))?;
    let (users, value) = p99[knee];
    let peak = p99.iter().map(|x| x.1).fold(0.0, f64::max);
    Some(Finding {
        evidence: vec![
            Evidence::over("p99 latency per interval (ms)", ramp.iter().copied(), |p| p.p99_ms),
            Evidence::over("users", ramp.iter().copied(), |p| Some(p.users as f64)),
        ],
        text: format!(
            "**Latency bends at about {users} users**: p99 was {base:.2} ms at low load and stays above {:.0} × that from {users} users on ({value:.2} ms there, up to {peak:.2} ms). Requests start queueing: some resource (workers, connections, a lock, the database) is saturated at that concurrency.",
            KNEE_FACTOR
        ),
        action: format!("Find what saturates at {users} concurrent users (worker pool, DB connections, locks) and raise or remove that limit."),
        weight: 30.0 + (peak / base).min(50.0),
    })
}

fn throughput_plateau(ramp: &[&Point]) -> Option<Finding> {
    if ramp.len() < 4 {
        return None;
    }
    // Compare each point with the first one at least USERS_GROWTH fewer users back.
    for (i, p) in ramp.iter().enumerate() {
        let Some(earlier) = ramp[..i]
            .iter()
            .rev()
            .find(|q| (p.users as f64) >= (q.users as f64) * (1.0 + USERS_GROWTH))
        else {
            continue;
        };
        let growth = p.rps / earlier.rps.max(1e-9) - 1.0;
        // In a closed system more users at the same throughput must wait longer (Little's
        // law); without that, flat throughput means users were thinking, not queueing.
        let waited = match (earlier.p99_ms, p.p99_ms) {
            (Some(a), Some(b)) => b > KNEE_FACTOR * a && b > a + KNEE_MIN_MS,
            _ => false,
        };
        if growth < FLAT_GROWTH && earlier.users >= 2 && waited {
            let rest = &ramp[i..];
            let more_users = rest.last().map_or(p.users, |q| q.users);
            return Some(Finding {
                evidence: vec![
                    Evidence::over("requests per second", ramp.iter().copied(), |p| Some(p.rps)),
                    Evidence::over("users", ramp.iter().copied(), |p| Some(p.users as f64)),
                ],
                text: format!(
                    "**Throughput stops growing at about {:.0} requests/s**: from {} to {} users it went from {:.0} to {:.0} requests/s (+{:.0}%) while users grew {:.0}% and p99 rose from {:.1} to {:.1} ms, and the ramp went on to {more_users} users. Beyond that point extra users only queue.",
                    earlier.rps,
                    earlier.users,
                    p.users,
                    earlier.rps,
                    p.rps,
                    growth * 100.0,
                    (p.users as f64 / earlier.users as f64 - 1.0) * 100.0,
                    earlier.p99_ms.unwrap_or_default(),
                    p.p99_ms.unwrap_or_default()
                ),
                action: format!("The system's capacity is about {:.0} requests/s: scale out, or profile the slowest endpoint at that load.", earlier.rps),
                weight: 40.0,
            });
        }
    }
    None
}

/// What each error usually means, for the analysis.
fn meaning(error: &str) -> &'static str {
    if error.contains("ConnectionRefused") {
        "nothing accepted the connection: the server was down, restarting, or its listen backlog overflowed"
    } else if error.contains("ConnectTimeout") {
        "connections could not be opened in time: accept queue full, SYN backlog, or a firewall/proxy limit"
    } else if error.contains("Timeout") {
        "responses slower than the request timeout: saturated workers, slow queries, or lock waits"
    } else if error.contains("ConnectionReset") {
        "the server closed connections while requests were pending: worker recycling, proxy idle limits, or crashes"
    } else if error.contains("code=502") || error.contains("code=504") {
        "a proxy in front got no (timely) answer from the application: upstream overloaded or down"
    } else if error.contains("code=503") {
        "the service refused work: often an exhausted pool (DB connections, workers) or a circuit breaker"
    } else if error.contains("code=500") {
        "application errors: look for exceptions in the server log, often pool exhaustion or deadlocks under load"
    } else if error.contains("code=429") {
        "rate limiting: the target throttled the load"
    } else if error.contains("code=409") {
        "conflicts: two requests changed the same object (e.g. a second decision on an approval)"
    } else if error.contains("code=4") {
        "client errors: the scenario sends requests the API rejects (auth, validation, missing objects)"
    } else if error.contains("BadStatusLine") {
        "malformed responses: a proxy or server wrote invalid HTTP under load"
    } else if error.contains("Capture") {
        "responses lacked the data the scenario expects: error pages served with a success status?"
    } else {
        "see the failures table"
    }
}

fn errors(run: &RunRecord) -> Vec<Finding> {
    let total = run.requests.max(1) as f64;
    let mut out: Vec<Finding> = run
        .failure_rows
        .iter()
        .map(|f| {
            let share = f.occurrences as f64 / total * 100.0;
            let at = (run.names.iter()).position(|n| n.method == f.method && n.name == f.name);
            let label = format!("{} {}, failed per second", f.method, f.name);
            let failed = |p: &Point| {
                let n = p.names.get(at?)?;
                Some(n.failed as f64 / (p.t_s - p.start_s).max(1e-3))
            };
            Finding {
                evidence: vec![Evidence::over(label, &run.history, failed)],
                text: format!(
                    "**{} × `{}`** on {} {} ({share:.2}% of all requests, {} to {}): {}.",
                    f.occurrences,
                    f.error,
                    f.method,
                    f.name,
                    f.first_seen,
                    f.last_seen,
                    meaning(&f.error)
                ),
                action: format!("Eliminate `{}` on {} {}.", f.error, f.method, f.name),
                // An error is a symptom: up to 70 when every request fails, below the causes
                // the monitored data name (a server short of CPU, database connections).
                weight: 20.0 + share * 0.5,
            }
        })
        .collect();
    // A burst: failures concentrated in a few intervals rather than spread over the run.
    let fails: Vec<f64> = run.history.iter().map(|p| p.fails_per_s).collect();
    let sum: f64 = fails.iter().sum();
    if sum > 0.0 {
        let peak = fails.iter().cloned().fold(0.0, f64::max);
        let mean = sum / fails.len() as f64;
        if peak > 5.0 * mean && fails.iter().filter(|f| **f > 0.0).count() * 4 < fails.len() {
            let at = run
                .history
                .iter()
                .find(|p| p.fails_per_s == peak)
                .map_or(0.0, |p| p.t_s);
            out.push(Finding {
                evidence: vec![Evidence::over("failures per second", &run.history, |p| {
                    Some(p.fails_per_s)
                })],
                text: format!("**Failures come in bursts**: up to {peak:.0}/s around {at:.0} s into the run against {mean:.1}/s on average, which points to an event (restart, pool exhaustion, GC pause) rather than a steady fault."),
                action: format!("Correlate the failure burst at {at:.0} s with server logs and metrics."),
                weight: 25.0,
            });
        }
    }
    out
}

/// The request that weighs most on what users wait for, when it is worth a look: one of
/// several, with a p99 someone waits for ([`SLOW_MS`] or more) and at least twice any other's.
fn slowest_names(run: &RunRecord) -> Option<Finding> {
    let total = run.requests.max(1) as f64;
    let named: Vec<(String, f64, f64)> = run
        .names
        .iter()
        .filter_map(|n| {
            let l = n.latency_ms.as_ref()?;
            Some((
                format!("{} {}", n.method, n.name),
                l.p99,
                n.requests as f64 / total,
            ))
        })
        .collect();
    let (name, p99, share) = named
        .iter()
        .max_by(|a, b| (a.1 * a.2).total_cmp(&(b.1 * b.2)))?
        .clone();
    let others = named
        .iter()
        .filter(|(n, _, _)| *n != name)
        .map(|(_, p99, _)| *p99)
        .fold(0.0, f64::max);
    // One request name has nothing to stand out from: the run's own findings say it all.
    if named.len() < 2 || p99 < SLOW_MS || p99 < 2.0 * others {
        return None;
    }
    Some(Finding {
        evidence: Vec::new(),
        text: format!("**Slowest traffic**: {name} carries {:.0}% of requests with p99 {p99:.2} ms (the next slowest request's p99: {others:.2} ms); it weighs most on what users wait for.", share * 100.0),
        action: format!("Optimise {name} (p99 {p99:.2} ms, {:.0}% of traffic).", share * 100.0),
        weight: 10.0 + (p99 * share).min(20.0),
    })
}

/// Memory that grows steadily while the load holds still: each entry says which value, by how
/// much, over how long. Judged on the intervals at the peak user count, after a warm-up fifth.
pub fn growth(history: &[Point]) -> Vec<String> {
    let peak = history.iter().map(|p| p.users).max().unwrap_or(0);
    let steady: Vec<&Point> = history
        .iter()
        .filter(|p| p.users == peak && peak > 0)
        .collect();
    let steady = &steady[steady.len() / 5..];
    if steady.len() < 10 {
        return Vec::new();
    }
    let keys: std::collections::BTreeSet<&String> = steady
        .iter()
        .flat_map(|p| p.sample.monitor.keys())
        .collect();
    let mut out = Vec::new();
    for key in keys.into_iter().filter(|k| k.contains("rss")) {
        let points: Vec<(f64, f64)> = steady
            .iter()
            .filter_map(|p| p.sample.monitor.get(key).map(|v| (p.t_s, *v)))
            .collect();
        let Some((slope, r2)) = fit(&points) else {
            continue;
        };
        let (first, last) = (points[0], points[points.len() - 1]);
        let grown = slope * (last.0 - first.0);
        // Steady (a line explains it), and material (more than 10% of where it started).
        if slope > 0.0 && r2 > 0.8 && grown > 0.1 * first.1.max(1e-9) {
            out.push(format!(
                "{key} grew steadily by {grown:.1} ({:.1} per minute, R² {r2:.2}) over {:.0} s of constant load, from {:.1} to {:.1}: a possible leak",
                slope * 60.0,
                last.0 - first.0,
                first.1,
                last.1
            ));
        }
    }
    out
}

/// ", failing only at 0-8 s of 60 s" when a criterion failed in part of the run.
pub fn failing_text(windows: &[(f64, f64)], duration_s: f64) -> String {
    if windows.is_empty() {
        return String::new();
    }
    let covered: f64 = windows.iter().map(|(a, b)| b - a).sum();
    let spans: Vec<String> = windows
        .iter()
        .map(|(a, b)| format!("{}-{} s", crate::seconds(*a), crate::seconds(*b)))
        .collect();
    let only = if covered < 0.9 * duration_s {
        "only "
    } else {
        ""
    };
    format!(
        ", failing {only}at {} of {} s",
        spans.join(", "),
        crate::seconds(duration_s)
    )
}

/// A tail that belongs to one phase of the run, not to the steady state.
fn phase_split(run: &RunRecord) -> Option<Finding> {
    let p99 = |l: &Option<crate::Latency>| l.as_ref().map(|l| l.p99);
    let steady = p99(&run.phases.iter().find(|p| p.phase == "steady")?.latency_ms)?;
    let overall = p99(&run.latency_ms)?;
    // Only a tail well above the steady state's (the same queueing test as the knee's).
    if overall < 2.0 * steady || overall - steady < 10.0 {
        return None;
    }
    let (worst, worst_p99) = run
        .phases
        .iter()
        .filter(|p| p.phase != "steady")
        .filter_map(|p| Some((p, p99(&p.latency_ms)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    Some(Finding {
        evidence: vec![Evidence::p99(&run.history), Evidence::users(&run.history)],
        text: format!(
            "**The slow part is the {phase}**: p99 {overall:.1} ms over the run, {worst_p99:.1} ms in the {:.0}-{:.0} s {phase} ({} requests, {} failed); steady-state p99 {steady:.1} ms.",
            worst.start_s,
            worst.end_s,
            worst.requests,
            worst.failures,
            phase = worst.phase,
        ),
        action: format!("Judge the steady state on its own (`p99<500ms in steady`, or --reset-stats), and find what the {} costs the server (logins, cold caches, connection set-up).", worst.phase),
        weight: 105.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_memory_growth_under_constant_load_is_flagged() {
        let with_rss = |i: u64, rss: f64| {
            let mut p = point(i as f64, 100, 1000.0, 5.0);
            p.sample.monitor.insert("pid.rss_mb".into(), rss);
            p
        };
        let leaking: Vec<Point> = (0..100).map(|i| with_rss(i, 100.0 + i as f64)).collect();
        let found = growth(&leaking);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("pid.rss_mb grew steadily"), "{found:?}");
        let flat: Vec<Point> = (0..100)
            .map(|i| with_rss(i, 100.0 + (i % 3) as f64))
            .collect();
        assert!(growth(&flat).is_empty());
    }

    fn point(t: f64, users: u64, rps: f64, p99: f64) -> Point {
        Point {
            start_s: t - 1.0,
            t_s: t,
            backlog: 0,
            users,
            rps,
            fails_per_s: 0.0,
            p50_ms: Some(p99 / 3.0),
            p95_ms: Some(p99 / 2.0),
            p99_ms: Some(p99),
            max_ms: Some(p99),
            sample: Default::default(),
            names: Vec::new(),
        }
    }

    #[test]
    fn a_ramp_into_saturation_shows_a_knee_and_a_plateau() {
        // Capacity 1000 req/s at 10 req/s per user: 100 users saturate it.
        let history: Vec<Point> = (1..=20)
            .map(|i| {
                let users = i * 10;
                let rps = (users as f64 * 10.0).min(1000.0);
                let p99 = if users <= 100 {
                    5.0
                } else {
                    5.0 * users as f64 / 100.0 * 3.0
                };
                point(i as f64, users, rps, p99)
            })
            .collect();
        let ramp = ramp_up(&history);
        let knee = latency_knee(&ramp).unwrap();
        assert!(knee.text.contains("about 110 users"), "{}", knee.text);
        let plateau = throughput_plateau(&ramp).unwrap();
        assert!(
            plateau.text.contains("about 1000 requests/s"),
            "{}",
            plateau.text
        );
    }

    #[test]
    fn a_healthy_ramp_has_neither() {
        let history: Vec<Point> = (1..=20)
            .map(|i| point(i as f64, i * 10, i as f64 * 100.0, 5.0))
            .collect();
        let ramp = ramp_up(&history);
        assert_eq!(latency_knee(&ramp), None);
        assert_eq!(throughput_plateau(&ramp), None);
    }

    /// A record with nothing in it, for findings tests to fill in.
    fn minimal_run() -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "blast_version": "0", "command": [], "target": "t", "host": "h",
            "started_at": "", "ended_at": "", "duration_s": 8.0, "threads": 1,
            "pinned": false, "interrupted": false, "model": "closed", "requests": 8000,
            "failures": 0, "failures_by_class": {}, "cancelled": 0, "skipped": 0,
            "rps": 1000.0, "bytes_sent": 0, "bytes_received": 0, "connections": 10,
            "names": [], "failure_rows": [], "criteria": [], "passed": true,
            "history": [], "percentiles": []
        }))
        .unwrap()
    }

    #[test]
    fn a_generator_stall_is_not_blamed_on_the_target() {
        // A ramp of 5 to 40 users, with blast stopped for 2 s at 6 s: p99 jumps there.
        let mut history: Vec<Point> = (1..=8)
            .map(|t| point(t as f64, 5 * t, 100.0 * t as f64, 2.0))
            .collect();
        for p in &mut history[6..8] {
            p.p99_ms = Some(1950.0);
            p.sample.loop_lag_ms = 2001.0;
        }
        let mut run = minimal_run();
        run.history = history;
        run.generator.note_stalls(&run.history);
        let all = findings(&run);
        assert!(
            all[0]
                .text
                .starts_with("**The generator stalled**: generator stalled at 6-8 s"),
            "{}",
            all[0].text
        );
        assert!(
            all.iter().all(|f| !f.text.contains("Latency bends")),
            "{:?}",
            all.iter().map(|f| &f.text).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_tail_that_belongs_to_the_ramp_up_says_so() {
        let phase = |name: &str, start: f64, end: f64, p99: f64| {
            serde_json::json!({"phase": name, "start_s": start, "end_s": end, "requests": 500,
                "failures": 0, "rps": 100.0, "latency_ms": {"min": 1.0, "mean": 2.0, "p50": 2.0,
                "p90": 3.0, "p95": 4.0, "p99": p99, "p999": p99, "p9999": p99, "max": p99}})
        };
        let mut value = serde_json::to_value(minimal_run()).unwrap();
        value["phases"] = serde_json::json!([
            phase("ramp-up", 0.0, 8.0, 1150.0),
            phase("steady", 8.0, 60.0, 38.0)
        ]);
        value["latency_ms"] = phase("x", 0.0, 0.0, 1100.0)["latency_ms"].clone();
        let run: RunRecord = serde_json::from_value(value).unwrap();
        let all = findings(&run);
        assert!(
            all[0].text.starts_with("**The slow part is the ramp-up**: p99 1100.0 ms over the run, 1150.0 ms in the 0-8 s ramp-up")
                && all[0].text.contains("steady-state p99 38.0 ms"),
            "{}",
            all[0].text
        );
        // A run that is as slow when steady has no such finding.
        let mut value = serde_json::to_value(&run).unwrap();
        value["phases"][1] = phase("steady", 8.0, 60.0, 900.0);
        let run: RunRecord = serde_json::from_value(value).unwrap();
        assert!(findings(&run).iter().all(|f| !f.text.contains("slow part")));
    }

    #[test]
    fn errors_are_explained() {
        assert!(
            meaning("ConnectionRefusedError(111, 'Connection refused')").contains("listen backlog")
        );
        assert!(meaning("HTTPError(code=503)").contains("pool"));
        assert!(meaning("TimeoutError('x')").contains("saturated"));
    }

    /// A latency record with every figure at `ms`.
    fn latency(ms: f64) -> crate::Latency {
        crate::Latency {
            min: ms,
            mean: ms,
            p50: ms,
            p90: ms,
            p95: ms,
            p99: ms,
            p999: ms,
            p9999: ms,
            max: ms,
        }
    }

    fn named(name: &str, requests: u64, p99: f64) -> crate::NameRecord {
        let mut n: crate::NameRecord = serde_json::from_value(serde_json::json!({
            "method": "GET", "name": name, "requests": requests, "failures": 0,
            "failed_statuses": {}, "skipped": 0, "rps": 1.0, "avg_content_bytes": 0.0,
            "latency_ms": null
        }))
        .unwrap();
        n.latency_ms = Some(latency(p99));
        n
    }

    #[test]
    fn a_fast_run_gets_no_recommendation() {
        // A login at 1.5 ms beside lookups at 0.3 ms: slowest, but nothing anyone waits for.
        let mut run = minimal_run();
        run.latency_ms = Some(latency(1.0));
        // A single request name, however slow, has nothing to stand out from.
        run.names = vec![named("/items", 8000, 900.0)];
        assert!(findings(&run).iter().all(|f| f.action.is_empty()));
        run.names = vec![named("/login", 100, 1.54), named("/items", 7900, 0.3)];
        let all = findings(&run);
        assert!(all.iter().all(|f| f.action.is_empty()), "{all:?}");
        // A slow endpoint among fast ones is worth it.
        run.names[0].latency_ms = Some(latency(250.0));
        let all = findings(&run);
        assert!(all[0].action.starts_with("Optimise GET /login"), "{all:?}");
        // Two equally slow ones: no single request to blame.
        run.names[1].latency_ms = Some(latency(200.0));
        assert!(findings(&run).iter().all(|f| f.action.is_empty()));
    }

    /// An open-model run at 1000/s with 100 connections and 2 ms mean service time, whose
    /// sends fell behind with a backlog at 4-5 s.
    fn late_run(max_connections: u64, service_ms: f64) -> RunRecord {
        let mut run = minimal_run();
        run.model = "open".into();
        run.target_rate = Some(1000.0);
        run.max_connections = Some(max_connections);
        run.late_sends = Some(1500);
        run.service_time_ms = Some(latency(service_ms));
        run.history = (1..=8).map(|t| point(t as f64, 100, 1000.0, 2.0)).collect();
        run.history[3].backlog = 1400;
        run.history[4].max_ms = Some(1500.0);
        run
    }

    #[test]
    fn late_sends_are_blamed_on_the_server_or_the_cap_by_littles_law() {
        // A server that stopped answering for 1.5 s: 2 connections' worth of work at the
        // mean service time, against 100. The server's, not the generator's.
        let all = findings(&late_run(100, 2.0));
        let late = all.iter().find(|f| f.text.contains("2 ms behind")).unwrap();
        assert!(
            late.text.starts_with("**The server held its connections**"),
            "{}",
            late.text
        );
        assert!(
            late.text.contains(
                "the slowest interval was 4-5 s (max 1500 ms), with up to 1400 sends waiting"
            ),
            "{}",
            late.text
        );
        // A cap too small for the rate at the server's usual speed: the generator's setting.
        let all = findings(&late_run(2, 2.0));
        let late = all.iter().find(|f| f.text.contains("2 ms behind")).unwrap();
        assert!(
            late.text.starts_with("**The connection cap was a limit**"),
            "{}",
            late.text
        );
        assert!(late.action.contains("--max-connections"));
    }
}
