//! Schedules: when requests are sent. Closed (a population of users that follows a [`Shape`])
//! or open (an arrival rate that follows a [`Shape`]).

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

/// One linear stage of a [`Shape`]: move to `target` over `duration` (k6's `stages`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Value (users, or requests/s) reached at the end of the stage.
    pub target: f64,
}

/// A value over time: starts at `start`, then follows linear stages and holds the last value.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Value at time zero.
    pub start: f64,
    /// Stages in order.
    pub stages: Vec<Stage>,
}

impl Shape {
    /// The same value from start to end.
    pub fn constant(value: f64) -> Shape {
        Shape {
            start: value,
            stages: Vec::new(),
        }
    }

    /// Locust's `-u N -r R`: from 0 to `target` at `per_second`, then held.
    pub fn ramp(target: f64, per_second: f64) -> Shape {
        Shape {
            start: 0.0,
            stages: vec![Stage {
                duration: Duration::from_secs_f64(target / per_second),
                target,
            }],
        }
    }

    /// The value at `t` from the start.
    pub fn at(&self, t: Duration) -> f64 {
        let mut from = self.start;
        let mut t = t.as_secs_f64();
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            if t < d {
                return from + (stage.target - from) * t / d;
            }
            t -= d;
            from = stage.target;
        }
        from
    }

    /// Total length of the stages.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The largest value anywhere in the shape.
    pub fn peak(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.target)
            .fold(self.start, f64::max)
    }

    /// The same shape with every value multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Shape {
        Shape {
            start: self.start * factor,
            stages: self
                .stages
                .iter()
                .map(|s| Stage {
                    duration: s.duration,
                    target: s.target * factor,
                })
                .collect(),
        }
    }

    /// Whether every value is finite and not negative.
    pub(crate) fn is_valid(&self) -> bool {
        std::iter::once(self.start)
            .chain(self.stages.iter().map(|s| s.target))
            .all(|v| v.is_finite() && v >= 0.0)
    }

    /// The integral of the shape (the value read as a rate) from the start to `t`.
    fn area(&self, t: Duration) -> f64 {
        let mut t = t.as_secs_f64();
        let mut from = self.start;
        let mut sum = 0.0;
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            if t < d {
                let at = from + (stage.target - from) * t / d;
                return sum + (from + at) / 2.0 * t;
            }
            sum += (from + stage.target) / 2.0 * d;
            t -= d;
            from = stage.target;
        }
        sum + from * t
    }

    /// When the integral of the shape (the value read as a rate) reaches `area`; `None` if never.
    fn time_for(&self, area: f64) -> Option<Duration> {
        let mut left = area;
        let mut elapsed = 0.0;
        let mut from = self.start;
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            let (r0, r1) = (from, stage.target);
            let here = (r0 + r1) / 2.0 * d;
            if left <= here && here > 0.0 {
                // Solve r0·x + (r1 − r0)/(2d)·x² = left for x in [0, d].
                let k = (r1 - r0) / (2.0 * d);
                let x = if k.abs() < 1e-12 {
                    left / r0
                } else {
                    (-r0 + (r0 * r0 + 4.0 * k * left).max(0.0).sqrt()) / (2.0 * k)
                };
                return Some(Duration::from_secs_f64(elapsed + x.clamp(0.0, d)));
            }
            left -= here;
            elapsed += d;
            from = r1;
        }
        (from > 0.0).then(|| Duration::from_secs_f64(elapsed + left / from))
    }
}

/// A stretch of a run by what its load shape does: rising to its peak, holding it, leaving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseKind {
    /// Before the shape first reaches its peak.
    RampUp,
    /// At the peak.
    Steady,
    /// After the shape last leaves its peak.
    RampDown,
}

impl PhaseKind {
    /// `ramp-up`, `steady` or `ramp-down`.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseKind::RampUp => "ramp-up",
            PhaseKind::Steady => "steady",
            PhaseKind::RampDown => "ramp-down",
        }
    }
}

impl Shape {
    /// The phases of `run_time` under this shape: ramp-up until it first reaches its peak,
    /// steady while at it, ramp-down after it last leaves it. Empty phases are left out.
    pub fn phases(&self, run_time: Duration) -> Vec<(PhaseKind, Duration, Duration)> {
        let peak = self.peak();
        let mut first = (self.start >= peak).then_some(Duration::ZERO);
        // Until the end, unless a stage leaves the peak.
        let mut last = run_time;
        let mut at = Duration::ZERO;
        let mut from = self.start;
        for stage in &self.stages {
            let end = at + stage.duration;
            if stage.target >= peak {
                first.get_or_insert(end);
                last = run_time;
            } else if from >= peak {
                last = at;
            }
            at = end;
            from = stage.target;
        }
        let first = first.unwrap_or(Duration::ZERO).min(run_time);
        let last = last.clamp(first, run_time);
        [
            (PhaseKind::RampUp, Duration::ZERO, first),
            (PhaseKind::Steady, first, last),
            (PhaseKind::RampDown, last, run_time),
        ]
        .into_iter()
        .filter(|(_, a, b)| b > a)
        .collect()
    }
}

/// How load is offered to the target.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// A population of users, each looping over its script on its own keep-alive connection.
    /// Latency is measured from the actual send (Locust's and wrk's model).
    Closed {
        /// Concurrent users across all workers, over time.
        users: Shape,
    },
    /// Tasks start on an absolute timetable (wrk2's and k6's arrival-rate model). Latency is
    /// measured from each task's intended start, so a stalled target cannot hide behind a slow
    /// sender.
    Open {
        /// Task starts per second across all workers, over time.
        rate: Shape,
        /// Upper bound on concurrent connections across all workers.
        max_connections: u64,
    },
}

impl Schedule {
    /// A fixed number of users for the whole run.
    pub fn users(users: u64) -> Schedule {
        Schedule::Closed {
            users: Shape::constant(users as f64),
        }
    }

    /// A fixed arrival rate for the whole run.
    pub fn rate(rate: f64, max_connections: u64) -> Schedule {
        Schedule::Open {
            rate: Shape::constant(rate),
            max_connections,
        }
    }

    /// The phases of a run of `run_time` under this schedule (see [`Shape::phases`]).
    pub fn phases(&self, run_time: Duration) -> Vec<(PhaseKind, Duration, Duration)> {
        match self {
            Schedule::Closed { users } => users.phases(run_time),
            Schedule::Open { rate, .. } => rate.phases(run_time),
        }
    }

    /// How many workers can be given work: a closed schedule never gets more workers than
    /// users (this shard's share of them).
    pub(crate) fn useful_workers(&self, workers: usize, shard: crate::Shard) -> usize {
        match self {
            Schedule::Closed { users } => {
                let peak = even_share(users.peak().round() as u64, shard.index, shard.count);
                workers.min(peak as usize).max(1)
            }
            Schedule::Open { .. } => workers,
        }
    }
}

/// Splits `total` evenly over `workers`: worker `index`'s share.
pub(crate) fn even_share(total: u64, index: usize, workers: usize) -> u64 {
    let (i, n) = (index as u64, workers as u64);
    total / n + u64::from(i < total % n)
}

/// One worker's open-model timetable: its slot `k` is due when the worker's share of the rate
/// shape has accumulated `k + phase` arrivals. Tasks take slots in order; no slot is ever sent
/// twice or skipped. A rate set while running starts a new timetable from that moment.
pub(crate) struct Pacer {
    /// The end of the run, or the moment sending stopped.
    end: Cell<Instant>,
    epoch: RefCell<Epoch>,
    phase: f64,
    next: Cell<u64>,
    /// Slots a task actually started (a slot taken when the run stopped was not).
    used: Cell<u64>,
    waiting: Cell<u64>,
}

/// The timetable in force: from `start`, this worker's share of a rate shape.
struct Epoch {
    start: Instant,
    rate: Shape,
    /// The first slot of this timetable.
    first: u64,
    /// Slots that fell due before it.
    due_before: u64,
}

impl Epoch {
    /// Slots of this timetable due at `t` or before (strictly before, with `before`).
    fn due(&self, t: Instant, phase: f64, before: bool) -> u64 {
        let span = t.saturating_duration_since(self.start);
        let arrivals = self.rate.area(span) - phase;
        if arrivals < 0.0 {
            return 0;
        }
        let n = arrivals.floor() as u64 + 1;
        // The last may be due exactly at `t`, which "before" leaves out.
        match self.rate.time_for((n - 1) as f64 + phase) {
            Some(at) if before && at >= span => n - 1,
            _ => n,
        }
    }
}

impl Pacer {
    /// Worker `index` of `workers`' share of `rate`, from `start` until `end`.
    pub fn new(start: Instant, end: Instant, rate: &Shape, index: usize, workers: usize) -> Pacer {
        Pacer {
            end: Cell::new(end),
            epoch: RefCell::new(Epoch {
                start,
                // A float share, so a total rate below the worker count still works.
                rate: rate.scaled(1.0 / workers as f64),
                first: 0,
                due_before: 0,
            }),
            // Interleave the workers' timetables so the merged arrivals are evenly spaced.
            phase: index as f64 / workers as f64,
            next: Cell::new(0),
            used: Cell::new(0),
            waiting: Cell::new(0),
        }
    }

    /// When slot `k` is due, if ever.
    fn due_of(&self, k: u64) -> Option<Instant> {
        let e = self.epoch.borrow();
        Some(e.start + e.rate.time_for((k - e.first) as f64 + self.phase)?)
    }

    /// Takes the next slot and returns its intended start, or `None` past the end of the run.
    pub fn take(&self) -> Option<Instant> {
        let k = self.next.get();
        let due = self.due_of(k)?;
        if due >= self.end.get() {
            return None;
        }
        self.next.set(k + 1);
        Some(due)
    }

    /// From `now` on, this worker sends `rate` tasks/s (its share of a rate set while
    /// running). Slots due and not sent by then stay due, and count as missed unless sent.
    pub fn retarget(&self, now: Instant, rate: f64) {
        // The old timetable's slot due exactly now is the new one's first.
        let due = {
            let e = self.epoch.borrow();
            e.due_before + e.due(now.min(self.end.get()), self.phase, true)
        };
        let due = due.max(self.next.get());
        *self.epoch.borrow_mut() = Epoch {
            start: now,
            rate: Shape::constant(rate),
            first: self.next.get(),
            due_before: due,
        };
    }

    /// Sending stopped at `t` (before the end of the run): later slots are not the run's.
    pub fn stop_at(&self, t: Instant) {
        self.end.set(self.end.get().min(t));
    }

    /// A taken slot's task starts.
    pub fn start_slot(&self) {
        self.used.set(self.used.get() + 1);
    }

    /// Slots due by `t` (the end of the run at the latest), and how many of them no task has
    /// started: behind schedule while running, missed once sending has stopped.
    pub fn due_and_behind(&self, t: Instant) -> (u64, u64) {
        let end = self.end.get();
        let e = self.epoch.borrow();
        // Slot k belongs to the run when it is due before the end (`take` hands out only those).
        let due = e.due_before + e.due(t.min(end), self.phase, t >= end);
        // A slot is sent up to a millisecond before it is due (see the worker's early wake):
        // every slot started counts as due, even when sending stopped just before its time.
        let due = due.max(self.used.get());
        (due, due - self.used.get())
    }

    /// Whether a slot is left to take before the end of the run.
    pub fn has_next(&self) -> bool {
        self.due_of(self.next.get())
            .is_some_and(|due| due < self.end.get())
    }

    /// Marks a task as waiting for its slot (`true`) or done waiting (`false`).
    pub fn set_waiting(&self, waiting: bool) {
        let n = self.waiting.get();
        self.waiting.set(if waiting { n + 1 } else { n - 1 });
    }

    /// Whether no task is waiting for a future slot, i.e. the next one would start late.
    pub fn nobody_waiting(&self) -> bool {
        self.waiting.get() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn stages(start: f64, list: &[(f64, f64)]) -> Shape {
        Shape {
            start,
            stages: list
                .iter()
                .map(|&(d, target)| Stage {
                    duration: secs(d),
                    target,
                })
                .collect(),
        }
    }

    #[test]
    fn shares_split_evenly_and_completely() {
        let shares: Vec<_> = (0..3).map(|i| even_share(10, i, 3)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!(
            Schedule::users(10).useful_workers(16, crate::Shard::default()),
            10
        );
        // The second of three shards gets 3 of the 10 users.
        let second = crate::Shard { index: 1, count: 3 };
        assert_eq!(Schedule::users(10).useful_workers(16, second), 3);
        // Shards, then workers within each, whatever the counts: nobody lost or doubled.
        for total in 0..60 {
            for shards in 1..5 {
                for workers in 1..4 {
                    let sum: u64 = (0..shards)
                        .flat_map(|s| {
                            let mine = even_share(total, s, shards);
                            (0..workers).map(move |w| even_share(mine, w, workers))
                        })
                        .sum();
                    assert_eq!(sum, total, "{total} over {shards} x {workers}");
                }
            }
        }
    }

    #[test]
    fn shapes_interpolate_stages_and_hold_the_last_value() {
        let burst = stages(0.0, &[(60.0, 1000.0), (120.0, 1000.0), (60.0, 0.0)]);
        assert_eq!(burst.at(secs(0.0)), 0.0);
        assert_eq!(burst.at(secs(30.0)), 500.0);
        assert_eq!(burst.at(secs(100.0)), 1000.0);
        assert_eq!(burst.at(secs(210.0)), 500.0);
        assert_eq!(burst.at(secs(999.0)), 0.0);
        assert_eq!(burst.duration(), secs(240.0));
        assert_eq!(burst.peak(), 1000.0);
        assert_eq!(burst.scaled(0.5).peak(), 500.0);
        assert_eq!(Shape::ramp(100.0, 10.0).at(secs(5.0)), 50.0);
    }

    #[test]
    fn phases_follow_the_shape() {
        let kinds = |shape: &Shape, run: f64| -> Vec<(&str, u64, u64)> {
            shape
                .phases(secs(run))
                .iter()
                .map(|(k, a, b)| (k.as_str(), a.as_secs(), b.as_secs()))
                .collect()
        };
        let burst = stages(0.0, &[(60.0, 1000.0), (120.0, 1000.0), (60.0, 0.0)]);
        assert_eq!(
            kinds(&burst, 240.0),
            [
                ("ramp-up", 0, 60),
                ("steady", 60, 180),
                ("ramp-down", 180, 240)
            ]
        );
        // Locust's -u 100 -r 10 for 5 minutes.
        assert_eq!(
            kinds(&Shape::ramp(100.0, 10.0), 300.0),
            [("ramp-up", 0, 10), ("steady", 10, 300)]
        );
        assert_eq!(kinds(&Shape::constant(5.0), 30.0), [("steady", 0, 30)]);
        // A run cut before the peak is all ramp-up.
        assert_eq!(kinds(&burst, 30.0), [("ramp-up", 0, 30)]);
        // Two visits to the peak: steady from the first, ramp-down after the last.
        let twice = stages(
            0.0,
            &[(10.0, 50.0), (10.0, 20.0), (10.0, 50.0), (10.0, 0.0)],
        );
        assert_eq!(
            kinds(&twice, 40.0),
            [
                ("ramp-up", 0, 10),
                ("steady", 10, 30),
                ("ramp-down", 30, 40)
            ]
        );
    }

    #[test]
    fn arrival_times_invert_the_integral_of_the_rate() {
        // 0 → 10/s over 2 s (10 arrivals), then 10/s: the n-th arrival solves 2.5·t² = n.
        let s = stages(0.0, &[(2.0, 10.0)]);
        let t = |a: f64| s.time_for(a).unwrap().as_secs_f64();
        assert!((t(2.5) - 1.0).abs() < 1e-9);
        assert!((t(10.0) - 2.0).abs() < 1e-9);
        assert!((t(15.0) - 2.5).abs() < 1e-9);
        // A rate that drops to zero and stays there never reaches more arrivals.
        assert_eq!(stages(4.0, &[(1.0, 0.0)]).time_for(3.0), None);
        assert_eq!(Shape::constant(0.0).time_for(1.0), None);
    }

    #[test]
    fn pacer_hands_out_each_slot_once_until_the_end() {
        let start = Instant::now();
        let p = Pacer::new(start, start + secs(1.0), &Shape::constant(8.0), 1, 2);
        let slots: Vec<_> = std::iter::from_fn(|| p.take()).collect();
        let offsets: Vec<_> = slots.iter().map(|t| (*t - start).as_millis()).collect();
        assert_eq!(offsets, [125, 375, 625, 875]);
        assert!(!p.has_next());
    }

    #[test]
    fn slots_due_and_behind_follow_the_timetable() {
        let start = Instant::now();
        let p = Pacer::new(start, start + secs(1.0), &Shape::constant(8.0), 1, 2);
        // Worker 1's slots are due at 125, 375, 625 and 875 ms.
        assert_eq!(p.due_and_behind(start + secs(0.1)), (0, 0));
        assert_eq!(p.due_and_behind(start + secs(0.4)), (2, 2));
        p.take();
        p.start_slot();
        assert_eq!(p.due_and_behind(start + secs(0.4)), (2, 1));
        // After the end, all four are due; three were never started.
        assert_eq!(p.due_and_behind(start + secs(9.0)), (4, 3));
        let ramp = Pacer::new(start, start + secs(2.0), &stages(0.0, &[(2.0, 10.0)]), 0, 1);
        let all = std::iter::from_fn(|| ramp.take()).count() as u64;
        assert_eq!(ramp.due_and_behind(start + secs(2.0)).0, all);
    }

    #[test]
    fn a_rate_set_while_running_starts_a_new_timetable() {
        let start = Instant::now();
        let p = Pacer::new(start, start + secs(2.0), &Shape::constant(4.0), 0, 1);
        // Slots at 0, 250, 500 and 750 ms are taken and sent; then the rate becomes 10/s.
        for _ in 0..4 {
            p.take();
            p.start_slot();
        }
        p.retarget(start + secs(1.0), 10.0);
        let slots: Vec<_> = std::iter::from_fn(|| p.take()).collect();
        let offsets: Vec<_> = slots.iter().map(|t| (*t - start).as_millis()).collect();
        assert_eq!(
            offsets,
            [1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900]
        );
        // 4 due before, 10 after; none of the new ones started yet.
        assert_eq!(p.due_and_behind(start + secs(3.0)), (14, 10));
    }
}
