//! Shared pools: values captured by one user and handed to exactly one other, across workers.
//!
//! A pending approval listed by several users at once enters its pool once and leaves it once,
//! so two of blast's users never decide the same approval. A pool marked `reuse` keeps its
//! values instead and hands them out in turn, any number of times (ids to look up). Pools are touched only by tasks that
//! capture into them or take from them, never by the request hot path in general.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use crate::template::Value;

/// Most values a pool holds; offers beyond it are dropped (and counted).
const CAPACITY: usize = 100_000;
/// Values remembered to refuse a second offer of the same value. Two generations of this size
/// are kept, so memory stays bounded on runs that capture millions of distinct values.
const REMEMBERED: usize = 500_000;

/// Counts of one pool at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Distinct values that entered the pool.
    pub added: u64,
    /// Values handed to a user (each at most once).
    pub taken: u64,
    /// Offers refused because the value had been offered before.
    pub repeated: u64,
    /// Offers dropped because the pool was full.
    pub overflowed: u64,
    /// Values still waiting at the end (all of them, for a reuse pool).
    pub left: u64,
    /// Values are handed out any number of times, not once.
    pub reuse: bool,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Value>,
    /// A reuse pool's next value to hand out, as an index into `queue`.
    next: usize,
    recent: HashSet<Value>,
    older: HashSet<Value>,
    counts: PoolCounts,
}

/// One named pool.
#[derive(Default)]
pub(crate) struct Pool {
    state: Mutex<State>,
}

impl Pool {
    /// Offers captured values; each distinct value enters at most once.
    pub fn offer(&self, values: impl IntoIterator<Item = Value>) {
        let mut s = self.lock();
        for value in values {
            if s.recent.contains(&value) || s.older.contains(&value) {
                s.counts.repeated += 1;
                continue;
            }
            if s.queue.len() >= CAPACITY {
                s.counts.overflowed += 1;
                continue;
            }
            if s.recent.len() >= REMEMBERED {
                s.older = std::mem::take(&mut s.recent);
            }
            s.recent.insert(value.clone());
            s.queue.push_back(value);
            s.counts.added += 1;
        }
    }

    /// A pool whose values are handed out once each, or in turn forever with `reuse`.
    pub fn new(reuse: bool) -> Pool {
        let pool = Pool::default();
        pool.lock().counts.reuse = reuse;
        pool
    }

    /// Takes the oldest value, if any; nobody else will ever get it. A reuse pool hands out
    /// its values in turn and keeps them.
    pub fn take(&self) -> Option<Value> {
        let mut s = self.lock();
        let value = if s.counts.reuse {
            let value = s.queue.get(s.next % s.queue.len().max(1))?.clone();
            s.next = s.next.wrapping_add(1);
            value
        } else {
            s.queue.pop_front()?
        };
        s.counts.taken += 1;
        Some(value)
    }

    /// Puts back a value taken by a task that could not run after all (it goes first).
    pub fn give_back(&self, value: Value) {
        let mut s = self.lock();
        s.counts.taken -= 1;
        if !s.counts.reuse {
            s.queue.push_front(value);
        }
    }

    /// Current counts.
    pub fn counts(&self) -> PoolCounts {
        let s = self.lock();
        PoolCounts {
            left: s.queue.len() as u64,
            ..s.counts.clone()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Pool operations cannot panic half-way; a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn v(n: u64) -> Value {
        Value::Json(n.to_string())
    }

    #[test]
    fn each_value_enters_once_and_leaves_once() {
        let pool = Pool::default();
        pool.offer([v(1), v(2), v(1)]);
        pool.offer([v(2), v(3)]);
        assert_eq!(pool.take(), Some(v(1)));
        let taken = pool.take().unwrap();
        pool.give_back(taken.clone());
        assert_eq!(pool.take(), Some(taken));
        assert_eq!(pool.take(), Some(v(3)));
        assert_eq!(pool.take(), None);
        // A value handed out before is refused when listed again.
        pool.offer([v(1)]);
        assert_eq!(pool.take(), None);
        let c = pool.counts();
        assert_eq!((c.added, c.taken, c.repeated, c.left), (3, 3, 3, 0));
    }

    #[test]
    fn a_reuse_pool_hands_its_values_out_in_turn_and_keeps_them() {
        let pool = Pool::new(true);
        assert_eq!(pool.take(), None, "empty until filled");
        pool.offer([v(1), v(2), v(1)]);
        let got: Vec<Value> = (0..5).filter_map(|_| pool.take()).collect();
        assert_eq!(got, [v(1), v(2), v(1), v(2), v(1)]);
        pool.give_back(v(1));
        let c = pool.counts();
        assert_eq!((c.added, c.taken, c.repeated, c.left), (2, 4, 1, 2));
        assert!(c.reuse);
    }

    #[test]
    fn concurrent_offers_and_takes_hand_out_each_value_exactly_once() {
        let pool = Arc::new(Pool::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    for round in 0..500u64 {
                        // Every thread lists the same overlapping page of ids.
                        pool.offer((round..round + 20).map(v));
                        if (round + t) % 2 == 0 {
                            got.extend(pool.take());
                        }
                    }
                    got
                })
            })
            .collect();
        let mut all: Vec<Value> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let taken = all.len();
        all.sort_by_key(|v| format!("{v:?}"));
        all.dedup();
        assert_eq!(all.len(), taken, "a value was handed out twice");
        let c = pool.counts();
        assert_eq!(c.added, 519);
        assert_eq!(c.taken + c.left, c.added);
    }
}
