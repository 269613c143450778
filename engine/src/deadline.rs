//! Request timeouts without a timer per request.
//!
//! `tokio::time::timeout` registers an entry with the runtime's timer driver when the request
//! first waits and removes it when the request ends, each under the driver's lock: two driver
//! operations per request for a timeout that almost never fires. Here each user keeps one
//! [`Deadline`] for its whole life; a request only stores its deadline in it, and the worker's
//! control tick ([`Deadlines::expire`], every 50 ms) wakes the requests whose deadline passed.
//! A timeout therefore fires up to one tick late, which is nothing next to timeouts of seconds.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// One worker's deadlines, checked on its control tick.
#[derive(Default)]
pub struct Deadlines {
    entries: RefCell<Vec<Weak<Entry>>>,
}

/// One user's deadline, reused by each of its requests.
pub struct Deadline(Rc<Entry>);

#[derive(Default)]
struct Entry {
    /// When the request in flight times out; none between requests.
    at: Cell<Option<Instant>>,
    /// Set by [`Deadlines::expire`] once `at` has passed.
    fired: Cell<bool>,
    /// The task waiting on the request.
    waker: RefCell<Option<Waker>>,
}

/// The request did not finish before its deadline.
#[derive(Debug, PartialEq, Eq)]
pub struct Elapsed;

impl Deadlines {
    /// A deadline for one user; it is forgotten when dropped.
    pub fn register(&self) -> Deadline {
        let entry = Rc::new(Entry::default());
        self.entries.borrow_mut().push(Rc::downgrade(&entry));
        Deadline(entry)
    }

    /// Wakes every request whose deadline is at or before `now`, and forgets dropped users.
    pub fn expire(&self, now: Instant) {
        self.entries.borrow_mut().retain(|weak| {
            let Some(entry) = weak.upgrade() else {
                return false;
            };
            if entry.at.get().is_some_and(|at| at <= now) && !entry.fired.replace(true) {
                if let Some(waker) = entry.waker.borrow_mut().take() {
                    waker.wake();
                }
            }
            true
        });
    }
}

impl Deadline {
    /// Runs `request` (pinned by the caller, e.g. with [`std::pin::pin!`]), or gives up with
    /// [`Elapsed`] once `at` has passed, as the next [`Deadlines::expire`] sees.
    pub fn within<F: Future + Unpin>(&self, at: Instant, request: F) -> Within<'_, F> {
        self.0.at.set(Some(at));
        self.0.fired.set(false);
        Within {
            entry: &self.0,
            request,
        }
    }
}

/// A request raced against its deadline ([`Deadline::within`]).
pub struct Within<'a, F> {
    entry: &'a Entry,
    request: F,
}

impl<F: Future + Unpin> Future for Within<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = Pin::new(&mut self.request).poll(cx) {
            // Between requests nothing can time out. (A request dropped unfinished, at a stop,
            // leaves its deadline set: it fires once, waking nobody who still waits.)
            self.entry.at.set(None);
            return Poll::Ready(Ok(out));
        }
        if self.entry.fired.get() {
            self.entry.at.set(None);
            return Poll::Ready(Err(Elapsed));
        }
        let mut waker = self.entry.waker.borrow_mut();
        match waker.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_request_that_ends_in_time_is_its_own_answer() {
        let deadlines = Deadlines::default();
        let d = deadlines.register();
        let at = Instant::now() + Duration::from_secs(60);
        assert_eq!(block_on(d.within(at, std::pin::pin!(async { 7 }))), Ok(7));
        // Expiring later finds no request in flight.
        deadlines.expire(at + Duration::from_secs(1));
        assert!(!d.0.fired.get());
    }

    #[test]
    fn a_request_past_its_deadline_ends_at_the_next_expiry() {
        let deadlines = Rc::new(Deadlines::default());
        let d = deadlines.register();
        let at = Instant::now() + Duration::from_millis(20);
        let ticker = deadlines.clone();
        let out = block_on(async move {
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async move {
                    tokio::task::spawn_local(async move {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        ticker.expire(Instant::now());
                    });
                    d.within(at, std::future::pending::<()>()).await
                })
                .await
        });
        assert_eq!(out, Err(Elapsed));
    }

    #[test]
    fn dropped_users_are_forgotten() {
        let deadlines = Deadlines::default();
        let kept = deadlines.register();
        drop(deadlines.register());
        deadlines.expire(Instant::now());
        assert_eq!(deadlines.entries.borrow().len(), 1);
        drop(kept);
    }
}
