//! The target's monitored resources and their ceilings, as the analyses read them: which
//! servers have a CPU series, the cores each may use, and database connections against the
//! limit applications meet.

use crate::record::Point;

/// A server using this share of its cores is at its CPU ceiling.
pub(crate) const CPU_BUSY: f64 = 0.8;
/// Database connections this close to their limit (a share of it, or one connection, whichever
/// is more: a sample each second misses the peaks of short-lived connections) are at it.
const DB_HEADROOM: f64 = 0.1;

/// The monitored servers with a CPU series (`SOURCE.cpu_pct`), blast and the host left out,
/// in order.
pub(crate) fn cpu_sources(points: &[&Point]) -> Vec<String> {
    let mut sources: Vec<String> = points
        .iter()
        .flat_map(|p| p.sample.monitor.keys())
        .filter_map(|k| k.strip_suffix(".cpu_pct"))
        .filter(|k| !k.starts_with("blast") && *k != "host")
        .map(str::to_string)
        .collect();
    sources.sort();
    sources.dedup();
    sources
}

/// `source`'s CPU in an interval, in % of one core.
pub(crate) fn cpu(p: &Point, source: &str) -> Option<f64> {
    p.sample.monitor.get(&format!("{source}.cpu_pct")).copied()
}

/// The cores `source` may use in an interval: its cgroup limit, else its CPUs, else
/// `host_cores`.
pub(crate) fn cores(p: &Point, source: &str, host_cores: f64) -> f64 {
    let m = &p.sample.monitor;
    m.get(&format!("{source}.cpu_limit_cores"))
        .or_else(|| m.get(&format!("{source}.cpu_cores")))
        .copied()
        .filter(|&c| c > 0.0)
        .unwrap_or(host_cores)
}

/// Database connections in use in an interval, and what ordinary roles may open
/// (max_connections less the reserved slots), where both are known.
pub(crate) fn db_connections(p: &Point) -> Option<(f64, f64)> {
    let get = |k: &str| p.sample.monitor.get(k).copied();
    let n = get("pg.connections")?;
    let max = get("pg.connection_limit").or_else(|| get("pg.max_connections"))?;
    (max > 0.0).then_some((n, max))
}

/// Whether `n` connections are at the limit `max`.
pub(crate) fn db_at_limit((n, max): (f64, f64)) -> bool {
    n >= max - (DB_HEADROOM * max).max(1.0)
}
