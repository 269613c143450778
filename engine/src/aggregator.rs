//! The aggregator: merges the workers' interval deltas into cumulative and per-interval views.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::connection::Protocol;
use crate::recorder::Delta;
use crate::schedule::{PhaseKind, Schedule};
use crate::stats::{Counters, Stats};

/// The stats of one phase of the run, all names together.
#[derive(Clone, Debug)]
pub struct PhaseReport {
    /// Ramp-up, steady or ramp-down.
    pub kind: PhaseKind,
    /// When the phase starts, from the start of the run.
    pub start: Duration,
    /// When it ends (the run's end at the latest).
    pub end: Duration,
    /// The intervals whose middle falls in it, merged exactly.
    pub stats: Stats,
}

/// What the run looks like at the end of one interval, handed to the run's observer.
pub struct Snapshot<'a> {
    /// Time from the start of the run to the start of this interval, as the clock says.
    pub start: Duration,
    /// Time from the start of the run to the end of this interval, as the clock says: a stalled
    /// generator shows as a gap, never as a shorter run.
    pub elapsed: Duration,
    /// This interval's real length (`elapsed - start`); the last one is usually partial.
    pub span: Duration,
    /// This interval's stats, one entry per request name, all workers merged.
    pub window: &'a [Stats],
    /// This interval's stats of all names together (merged once, here, for every observer).
    pub window_total: &'a Stats,
    /// Stats since the start of the run, one entry per request name.
    pub cumulative: &'a [Stats],
    /// Stats since the start of the run, all names together.
    pub cumulative_total: &'a Stats,
    /// Users running at the end of the interval (open model: open connections).
    pub users: u64,
    /// Requests sent and not finished at the end of the interval.
    pub in_flight: u64,
    /// How late the busiest worker's event loop ran a timer in the interval, in microseconds.
    pub loop_lag_us: u64,
    /// Open model: slots due by the end of the interval and not sent yet (the backlog).
    pub backlog: u64,
    /// The HTTP version the run speaks.
    pub protocol: Protocol,
}

/// One interval of the run's time series: small and fixed-size, so history grows with time only.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IntervalSummary {
    /// Time from the start of the run to the start of this interval.
    pub start: Duration,
    /// Time from the start of the run to the end of this interval.
    pub elapsed: Duration,
    /// Counts within this interval.
    pub counters: Counters,
    /// Latency percentiles within this interval, in microseconds: p50, p95, p99, max.
    pub latency_us: [u64; 4],
    /// Users running at the end of the interval (open model: open connections).
    pub users: u64,
    /// How late the busiest worker's event loop ran a timer, in microseconds.
    pub loop_lag_us: u64,
    /// Open model: slots due and not sent yet at the end of the interval.
    pub backlog: u64,
    /// Per request name, in the script's order: what the interval saw of it.
    pub names: Vec<NameInterval>,
}

/// One request name within one interval: enough to tell which endpoint slowed down first.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NameInterval {
    /// Requests that finished.
    pub requests: u64,
    /// Of which failed.
    pub failed: u64,
    /// Median latency in microseconds (0 without requests).
    pub p50_us: u64,
    /// p99 latency in microseconds (0 without requests).
    pub p99_us: u64,
    /// Mean latency in microseconds (0 without requests): with the rate, the requests in
    /// flight (Little's law).
    pub mean_us: f64,
    /// Response bytes received (headers and bodies), whose size per request follows what
    /// the server returns (a list that grows, say).
    pub bytes_received: u64,
}

/// One interval being merged: what the workers that reported it so far said.
struct Pending {
    window: Vec<Stats>,
    start: Duration,
    end: Duration,
    users: u64,
    in_flight: u64,
    lag_us: u64,
    backlog: u64,
    /// Every worker that reported it was shipping its last delta.
    last: bool,
}

impl IntervalSummary {
    /// The interval a snapshot reports, as the run's history keeps it.
    pub fn of(snapshot: &Snapshot<'_>) -> IntervalSummary {
        let w = snapshot.window_total;
        IntervalSummary {
            start: snapshot.start,
            elapsed: snapshot.elapsed,
            counters: w.counters.clone(),
            latency_us: [0.5, 0.95, 0.99, 1.0].map(|q| w.latency_us.value_at_quantile(q)),
            users: snapshot.users,
            loop_lag_us: snapshot.loop_lag_us,
            backlog: snapshot.backlog,
            names: snapshot
                .window
                .iter()
                .map(|s| NameInterval {
                    requests: s.counters.requests(),
                    failed: s.counters.failed(),
                    p50_us: s.latency_us.value_at_quantile(0.5),
                    p99_us: s.latency_us.value_at_quantile(0.99),
                    mean_us: s.latency_us.mean(),
                    bytes_received: s.counters.bytes_received,
                })
                .collect(),
        }
    }
}

/// Merges deltas as they arrive; emits an interval once every live worker has reported it.
pub(crate) struct Aggregator {
    /// The HTTP version the run speaks, shown in every snapshot (HTTP/1.1 until set).
    pub protocol: Protocol,
    interval: Duration,
    cumulative: Vec<Stats>,
    /// Per tick: what the workers reported for it so far.
    pending: BTreeMap<u64, Pending>,
    /// Per worker: the next tick it has not reported yet, or `None` once it sent its last delta.
    next_tick: Vec<Option<u64>>,
    template: Vec<Stats>,
    pub history: Vec<IntervalSummary>,
    /// Open model: the slots due in the run and those never sent, from the last deltas.
    pub slots: (u64, u64),
    /// Per phase of the run, its stats so far.
    pub phases: Vec<PhaseReport>,
    /// Forget the cumulative stats when the first interval past this time comes (Locust's
    /// `--reset-stats` at the end of the ramp-up).
    reset_at: Option<Duration>,
}

impl Aggregator {
    /// For `workers` sources of a run of `schedule`; with `reset_stats` the cumulative stats
    /// restart when the steady phase begins.
    pub fn new(
        workers: usize,
        names: usize,
        schedule: &Schedule,
        run_time: Duration,
        interval: Duration,
        reset_stats: bool,
    ) -> Aggregator {
        let phases = schedule.phases(run_time);
        let reset_at = phases
            .iter()
            .find(|(kind, _, _)| *kind == PhaseKind::Steady)
            .map(|(_, start, _)| *start)
            .filter(|start| reset_stats && !start.is_zero());
        let with_service = matches!(schedule, Schedule::Open { .. });
        let template: Vec<Stats> = (0..names).map(|_| Stats::new(with_service)).collect();
        Aggregator {
            protocol: Protocol::Http1,
            interval,
            cumulative: template.clone(),
            pending: BTreeMap::new(),
            next_tick: vec![Some(0); workers],
            template,
            history: Vec::new(),
            slots: (0, 0),
            phases: phases
                .iter()
                .map(|&(kind, start, end)| PhaseReport {
                    kind,
                    start,
                    end,
                    stats: Stats::new(with_service),
                })
                .collect(),
            reset_at,
        }
    }

    /// Adds one delta and reports every interval that became complete; returns the delta's
    /// stats, merged and free for reuse.
    pub fn absorb(&mut self, delta: Delta, observer: &mut dyn FnMut(&Snapshot)) -> Vec<Stats> {
        let p = self.pending.entry(delta.tick).or_insert_with(|| Pending {
            window: self.template.clone(),
            start: delta.span.0,
            end: delta.span.1,
            users: 0,
            in_flight: 0,
            lag_us: 0,
            backlog: 0,
            last: true,
        });
        p.start = p.start.min(delta.span.0);
        p.end = p.end.max(delta.span.1);
        p.users += delta.users;
        p.in_flight += delta.in_flight;
        p.lag_us = p.lag_us.max(delta.lag_max_us);
        p.backlog += delta.slots.1;
        p.last &= delta.last;
        if delta.last {
            self.slots.0 += delta.slots.0;
            self.slots.1 += delta.slots.1;
        }
        for (win, d) in p.window.iter_mut().zip(&delta.names) {
            win.add(d);
        }
        self.next_tick[delta.worker] = (!delta.last).then_some(delta.tick + 1);
        let complete_below = self.next_tick.iter().flatten().min().copied();
        self.emit(complete_below, observer);
        delta.names
    }

    /// Reports every pending interval below `below` (all of them for `None`), in order.
    fn emit(&mut self, below: Option<u64>, observer: &mut dyn FnMut(&Snapshot)) {
        while let Some(entry) = self.pending.first_entry() {
            let tick = *entry.key();
            if below.is_some_and(|b| tick >= b) {
                break;
            }
            let p = entry.remove();
            let middle = (p.start + p.end) / 2;
            if self.reset_at.is_some_and(|at| middle >= at) {
                // The ramp-up is over: from here on the run counts from zero, as in Locust.
                self.reset_at = None;
                self.cumulative = self.template.clone();
            }
            // The cumulative view grows an interval at a time, in order, so every observer
            // sees exactly the intervals reported so far.
            for (cum, win) in self.cumulative.iter_mut().zip(&p.window) {
                cum.add(win);
            }
            let merged = total(&p.window);
            // Phases are in order and back to back; the stop grace belongs to the last one.
            let last = self.phases.len().saturating_sub(1);
            let at = self.phases.iter().position(|ph| middle < ph.end);
            if let Some(phase) = self.phases.get_mut(at.unwrap_or(last)) {
                phase.stats.add(&merged);
            }
            // A last interval in which nothing happened, shorter than half an interval, is
            // not a row: it would only be the moment of stopping.
            let empty = merged.counters == Counters::default();
            if p.last && empty && p.end - p.start < self.interval / 2 {
                continue;
            }
            let cumulative_total = total(&self.cumulative);
            let snapshot = Snapshot {
                start: p.start,
                elapsed: p.end,
                span: p.end - p.start,
                window: &p.window,
                window_total: &merged,
                cumulative: &self.cumulative,
                cumulative_total: &cumulative_total,
                users: p.users,
                in_flight: p.in_flight,
                loop_lag_us: p.lag_us,
                backlog: p.backlog,
                protocol: self.protocol,
            };
            self.history.push(IntervalSummary::of(&snapshot));
            observer(&snapshot);
        }
    }

    /// Flushes what is left and returns the cumulative stats per name, the history and the
    /// phases.
    pub fn finish(
        mut self,
        observer: &mut dyn FnMut(&Snapshot),
    ) -> (Vec<Stats>, Vec<IntervalSummary>, Vec<PhaseReport>) {
        self.emit(None, observer);
        (self.cumulative, self.history, self.phases)
    }
}

/// All names' stats merged into one.
pub(crate) fn total(names: &[Stats]) -> Stats {
    let with_service = names.first().is_some_and(|s| s.service_us.is_some());
    let mut all = Stats::new(with_service);
    for s in names {
        all.add(s);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(worker: usize, tick: u64, ok: u64, last: bool) -> Delta {
        let mut s = Stats::new(false);
        s.counters.ok = ok;
        s.record(Duration::from_millis(ok), Duration::ZERO);
        let secs = Duration::from_secs;
        Delta {
            worker,
            tick,
            span: (secs(tick), secs(tick + 1)),
            names: vec![s],
            users: 1,
            in_flight: 0,
            slots: (0, 0),
            lag_max_us: 0,
            last,
        }
    }

    #[test]
    fn intervals_wait_for_every_live_worker() {
        let mut agg = Aggregator::new(
            2,
            1,
            &Schedule::users(1),
            Duration::from_secs(3),
            Duration::from_secs(1),
            false,
        );
        let mut seen = Vec::new();
        let mut obs = |s: &Snapshot| seen.push((s.elapsed.as_secs(), s.window[0].counters.ok));
        agg.absorb(delta(0, 0, 1, false), &mut obs);
        agg.absorb(delta(0, 1, 2, false), &mut obs);
        agg.absorb(delta(1, 0, 10, false), &mut obs);
        agg.absorb(delta(1, 1, 20, true), &mut obs);
        agg.absorb(delta(0, 2, 3, true), &mut obs);
        let (cum, history, _) = agg.finish(&mut obs);
        assert_eq!(seen, [(1, 11), (2, 22), (3, 3)]);
        assert_eq!(cum[0].counters.ok, 36);
        assert_eq!(cum[0].latency_us.len(), 5);
        assert_eq!(history.len(), 3);
        assert_eq!(history[1].counters.ok, 22);
    }
}
