//! Steering a run while it goes: stop, abort, new user counts or rates, a worker's panic.
//! Workers read this state once per control tick, never per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// What a run shares with its controllers: read by workers once per control tick, never per
/// request.
pub(crate) struct Shared {
    /// [`RUNNING`], [`STOP`] or [`ABORT`]; only ever rises.
    stop: watch::Sender<u8>,
    /// When a stop was first asked for.
    stopped_at: Mutex<Option<Instant>>,
    /// Closed model: a user count set while running, or [`FOLLOW_SHAPE`].
    users: AtomicU64,
    /// Open model: the bits of a total rate set while running, or [`FOLLOW_SHAPE`].
    rate: AtomicU64,
    /// The message of the first worker that panicked.
    panic: Mutex<Option<String>>,
}

/// The run goes on.
pub(crate) const RUNNING: u8 = 0;
/// Stop sending; in-flight requests get the stop timeout.
pub(crate) const STOP: u8 = 1;
/// Stop at once: in-flight requests are cancelled without waiting.
pub(crate) const ABORT: u8 = 2;

/// No user count was set while running: follow the plan's shape.
const FOLLOW_SHAPE: u64 = u64::MAX;

impl Shared {
    /// A run not started yet, following its plan's shape.
    pub(crate) fn new() -> Shared {
        Shared {
            stop: watch::channel(RUNNING).0,
            stopped_at: Mutex::new(None),
            users: AtomicU64::new(FOLLOW_SHAPE),
            rate: AtomicU64::new(FOLLOW_SHAPE),
            panic: Mutex::new(None),
        }
    }

    /// A receiver of the stop level, for one worker.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u8> {
        self.stop.subscribe()
    }

    /// When a stop was first asked for, if one was.
    pub(crate) fn stopped_at(&self) -> Option<Instant> {
        *lock(&self.stopped_at)
    }

    /// The message of the first worker that panicked, if one did.
    pub(crate) fn panic_message(&self) -> Option<String> {
        lock(&self.panic).clone()
    }

    /// A handle that steers this run.
    pub(crate) fn handle(self: &Arc<Shared>) -> RunHandle {
        RunHandle(self.clone())
    }

    /// The user count set while running, if any.
    pub(crate) fn users_override(&self) -> Option<u64> {
        Some(self.users.load(Ordering::Relaxed)).filter(|&n| n != FOLLOW_SHAPE)
    }

    /// The total rate set while running, if any.
    pub(crate) fn rate_override(&self) -> Option<f64> {
        Some(self.rate.load(Ordering::Relaxed))
            .filter(|&bits| bits != FOLLOW_SHAPE)
            .map(f64::from_bits)
    }

    /// A worker panicked: keep its message and stop the others at once, so the run ends with
    /// what was collected instead of running on without that worker's share.
    pub(crate) fn worker_panicked(&self, message: String) {
        lock(&self.panic).get_or_insert(message);
        RunHandle::raise_on(self, ABORT);
    }
}

/// Locks a mutex that a panicking thread may have poisoned; the data is plain values.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Steers a running engine; cheap to clone and safe to use from any thread.
#[derive(Clone)]
pub struct RunHandle(Arc<Shared>);

impl RunHandle {
    /// Stops sending new requests; in-flight ones get the plan's stop timeout to finish.
    pub fn stop(&self) {
        self.raise(STOP);
    }

    /// Stops at once: in-flight requests are counted as cancelled without waiting for them.
    /// The run still returns its report.
    pub fn abort(&self) {
        self.raise(ABORT);
    }

    fn raise(&self, level: u8) {
        RunHandle::raise_on(&self.0, level);
    }

    fn raise_on(shared: &Shared, level: u8) {
        lock(&shared.stopped_at).get_or_insert_with(Instant::now);
        shared.stop.send_if_modified(|current| {
            let higher = level > *current;
            *current = (*current).max(level);
            higher
        });
    }

    /// Closed model: from now on run `users` users instead of following the shape. New users
    /// start at once; users above the count finish their current task and stop.
    pub fn set_users(&self, users: u64) {
        self.0
            .users
            .store(users.min(FOLLOW_SHAPE - 1), Ordering::Relaxed);
    }

    /// Open model: from now on start `rate` tasks per second in total instead of following the
    /// shape (each worker starts a new timetable at its next control tick, within 50 ms).
    /// Slots already due and not sent stay due. A rate that is not a positive number is ignored.
    pub fn set_rate(&self, rate: f64) {
        if rate.is_finite() && rate > 0.0 {
            self.0.rate.store(rate.to_bits(), Ordering::Relaxed);
        }
    }
}
