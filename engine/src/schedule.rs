//! Schedules: when requests are sent. Closed (users looping) or open (a fixed arrival rate).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How load is offered to the target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// `users` tasks, each looping on its own keep-alive connection with no wait (wrk's model).
    /// Latency is measured from the actual send.
    Closed {
        /// Concurrent users across all workers.
        users: u64,
    },
    /// A fixed arrival rate on an absolute timetable (wrk2's model). Latency is measured from
    /// each request's intended start, so a stalled target cannot hide behind a slow sender.
    Open {
        /// Requests per second across all workers.
        rate: f64,
        /// Upper bound on concurrent connections across all workers.
        max_connections: u64,
    },
}

/// The share of a [`Schedule`] that one worker runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum WorkerLoad {
    Closed {
        users: u64,
    },
    Open {
        rate: f64,
        phase: f64,
        max_connections: u64,
    },
}

impl Schedule {
    /// How many workers can be given work: a closed schedule never gets more workers than users.
    pub(crate) fn useful_workers(&self, workers: usize) -> usize {
        match *self {
            Schedule::Closed { users } => workers.min(users as usize).max(1),
            Schedule::Open { .. } => workers,
        }
    }

    /// Splits the schedule evenly: worker `index` of `workers` gets this share, up front.
    pub(crate) fn share(&self, index: usize, workers: usize) -> WorkerLoad {
        let (i, n) = (index as u64, workers as u64);
        let even = |total: u64| total / n + u64::from(i < total % n);
        match *self {
            Schedule::Closed { users } => WorkerLoad::Closed { users: even(users) },
            Schedule::Open {
                rate,
                max_connections,
            } => WorkerLoad::Open {
                // A float, so a total rate below the worker count still works (0.5/s each).
                rate: rate / workers as f64,
                // Interleave the workers' timetables so the merged arrivals are evenly spaced.
                phase: index as f64 / workers as f64,
                max_connections: even(max_connections).max(1),
            },
        }
    }
}

/// One worker's open-model timetable: slot `k` is due at `start + (k + phase) / rate`.
/// Tasks take slots in order; no slot is ever sent twice or skipped.
pub(crate) struct Pacer {
    start: Instant,
    end: Instant,
    period_ns: f64,
    phase: f64,
    next: Cell<u64>,
    waiting: Cell<u64>,
}

impl Pacer {
    pub fn new(start: Instant, end: Instant, rate: f64, phase: f64) -> Pacer {
        Pacer {
            start,
            end,
            period_ns: 1e9 / rate,
            phase,
            next: Cell::new(0),
            waiting: Cell::new(0),
        }
    }

    /// Takes the next slot and returns its intended start, or `None` past the end of the run.
    pub fn take(&self) -> Option<Instant> {
        let k = self.next.get();
        let due =
            self.start + Duration::from_nanos(((k as f64 + self.phase) * self.period_ns) as u64);
        if due >= self.end {
            return None;
        }
        self.next.set(k + 1);
        Some(due)
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

    #[test]
    fn closed_users_split_evenly_and_completely() {
        let s = Schedule::Closed { users: 10 };
        let shares: Vec<_> = (0..3).map(|i| s.share(i, 3)).collect();
        assert_eq!(
            shares,
            [10 / 3 + 1, 10 / 3, 10 / 3].map(|users| WorkerLoad::Closed { users })
        );
        assert_eq!(s.useful_workers(16), 10);
    }

    #[test]
    fn open_rate_splits_as_float_with_interleaved_phases() {
        let s = Schedule::Open {
            rate: 1.0,
            max_connections: 1,
        };
        assert_eq!(
            s.share(1, 2),
            WorkerLoad::Open {
                rate: 0.5,
                phase: 0.5,
                max_connections: 1
            }
        );
    }

    #[test]
    fn pacer_hands_out_each_slot_once_until_the_end() {
        let start = Instant::now();
        let p = Pacer::new(start, start + Duration::from_secs(1), 4.0, 0.5);
        let slots: Vec<_> = std::iter::from_fn(|| p.take()).collect();
        let offsets: Vec<_> = slots.iter().map(|t| (*t - start).as_millis()).collect();
        assert_eq!(offsets, [125, 375, 625, 875]);
    }
}
