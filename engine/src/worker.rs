//! A worker: one pinned OS thread, one current-thread runtime, its share of the load.
//!
//! All users of a worker run as local tasks on its runtime and share its [`Recorder`] through a
//! `RefCell`: nothing is locked, nothing atomic is touched per request, and stats leave the
//! thread once per interval.

use crossbeam_channel::Sender;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

use crate::connection::{Client, Connection, HyperConnection, RawConnection};
use crate::engine::Plan;
use crate::recorder::{Delta, Recorder};
use crate::schedule::{Pacer, WorkerLoad};
use crate::stats::FailureClass;

/// A send that starts later than this behind its intended time counts as late. Tokio's timer
/// ticks every millisecond, so up to 1 ms behind is the timer, not the generator.
pub const LATE_AFTER: Duration = Duration::from_millis(2);

/// Open model: wake this much before a slot is due. Tokio's timer rounds deadlines up to the
/// next millisecond; waking early and sending at once centres the send on its slot instead of
/// adding up to a millisecond to every latency. The rate is unchanged: slots stay absolute.
const EARLY_WAKE: Duration = Duration::from_millis(1);

/// First wait after a failed connect; it doubles up to [`MAX_BACKOFF`] so a dead target does
/// not turn users into a busy loop.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What a worker thread needs to run its share.
pub(crate) struct WorkerSpec {
    pub index: usize,
    pub core: Option<core_affinity::CoreId>,
    pub load: WorkerLoad,
    pub start: Instant,
    pub plan: Arc<Plan>,
    pub stop: watch::Receiver<bool>,
    pub deltas: Sender<Delta>,
}

/// State shared by the tasks of one worker (same thread only).
struct Local {
    plan: Arc<Plan>,
    recorder: RefCell<Recorder>,
    pacer: Option<Pacer>,
    max_tasks: u64,
    live: Cell<u64>,
    all_done: Notify,
    stopping: Cell<bool>,
    wake: Notify,
}

/// Runs one worker to completion on the current thread.
pub(crate) fn run(spec: WorkerSpec) {
    if let Some(core) = spec.core {
        // Pinning is best effort: a refused affinity call must not cost the run.
        core_affinity::set_for_current(core);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds on any supported OS");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(spec));
}

async fn drive(mut spec: WorkerSpec) {
    let plan = spec.plan.clone();
    let deadline = spec.start + plan.run_time;
    let (pacer, max_tasks, first_tasks) = match spec.load {
        WorkerLoad::Closed { users } => (None, users, users),
        WorkerLoad::Open {
            rate,
            phase,
            max_connections,
        } => {
            let pacer = Pacer::new(spec.start, deadline, rate, phase);
            (Some(pacer), max_connections, 1)
        }
    };
    let local = Rc::new(Local {
        recorder: RefCell::new(Recorder::new(plan.requests.len(), pacer.is_some())),
        plan: plan.clone(),
        pacer,
        max_tasks,
        live: Cell::new(0),
        all_done: Notify::new(),
        stopping: Cell::new(false),
        wake: Notify::new(),
    });
    for user in 0..first_tasks {
        local.spawn_user(user as usize);
    }

    let mut ticker = tokio::time::interval_at((spec.start + plan.interval).into(), plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = 0;
    let mut ship = |local: &Local, last: bool| {
        let delta = local.recorder.borrow_mut().take(spec.index, tick, last);
        tick += 1;
        // The aggregator outlives every worker; a closed channel only means it gave up early.
        let _ = spec.deltas.send(delta);
    };

    let run_over = tokio::time::sleep_until(deadline.into());
    tokio::pin!(run_over);
    loop {
        tokio::select! {
            _ = ticker.tick() => ship(&local, false),
            _ = &mut run_over => break,
            _ = stop_requested(&mut spec.stop) => break,
            _ = local.all_done.notified() => break,
        }
    }

    // Stop sending; let in-flight requests finish for up to the stop timeout.
    local.stopping.set(true);
    local.wake.notify_waiters();
    let grace = tokio::time::sleep(plan.stop_timeout);
    tokio::pin!(grace);
    while local.live.get() > 0 {
        tokio::select! {
            _ = ticker.tick() => ship(&local, false),
            _ = local.all_done.notified() => {}
            _ = &mut grace => break,
        }
    }
    local.recorder.borrow_mut().cancel_in_flight();
    ship(&local, true);
}

async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            // Nobody can ask for a stop any more: only the run time ends this run.
            std::future::pending::<()>().await;
        }
    }
}

impl Local {
    fn spawn_user(self: &Rc<Self>, user: usize) {
        self.live.set(self.live.get() + 1);
        let local = self.clone();
        tokio::task::spawn_local(async move {
            match local.plan.client {
                Client::Raw => local.user::<RawConnection>(user).await,
                Client::Hyper => local.user::<HyperConnection>(user).await,
            }
            local.live.set(local.live.get() - 1);
            if local.live.get() == 0 {
                local.all_done.notify_one();
            }
        });
    }

    /// Sleeps until `when`; `false` if the run started stopping meanwhile.
    async fn sleep_until(&self, when: Instant) -> bool {
        if self.stopping.get() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(when.into()) => !self.stopping.get(),
            _ = self.wake.notified() => false,
        }
    }

    /// Opens a connection, counting it; `None` when the target could not be reached.
    async fn connect<C: Connection>(&self, name: usize) -> Option<C> {
        let plan = &self.plan;
        let conn = C::open(plan.target.addr, plan.connect_timeout).await.ok()?;
        self.recorder.borrow_mut().connected(name);
        Some(conn)
    }

    /// One user (closed model) or one connection of the pool (open model): the worker loop.
    async fn user<C: Connection>(self: &Rc<Self>, user: usize) {
        let plan = self.plan.clone();
        let names = plan.requests.len();
        let mut turn = user % names;
        let mut conn: Option<C> = None;
        if self.pacer.is_some() {
            // Pool connections open before taking a slot, so connect time is not charged to it.
            conn = self.connect(turn).await;
        }
        let mut backoff = FIRST_BACKOFF;
        loop {
            let intended = match &self.pacer {
                None => None,
                Some(pacer) => {
                    let Some(due) = pacer.take() else { break };
                    pacer.set_waiting(true);
                    let on_time = self
                        .sleep_until(due.checked_sub(EARLY_WAKE).unwrap_or(due))
                        .await;
                    pacer.set_waiting(false);
                    if !on_time {
                        break;
                    }
                    // Keep one connection ready for the next slot while the pool may grow.
                    if pacer.nobody_waiting() && self.live.get() < self.max_tasks {
                        self.spawn_user(turn + 1);
                    }
                    Some(due)
                }
            };
            if self.stopping.get() {
                break;
            }
            let name = turn;
            turn = (turn + 1) % names;

            let reusable = match conn.as_mut() {
                Some(c) => c.is_usable().await,
                None => false,
            };
            if !reusable {
                conn = self.connect(name).await;
            }
            let Some(c) = conn.as_mut() else {
                self.recorder.borrow_mut().unconnected(name);
                if !self.sleep_until(Instant::now() + backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            };
            backoff = FIRST_BACKOFF;

            let sent_at = Instant::now();
            let late =
                intended.is_some_and(|due| sent_at.saturating_duration_since(due) > LATE_AFTER);
            // Latency runs from the intended start, or from the send when it went out early:
            // whichever is earlier, so neither a stall nor an early wake can shrink it.
            let from = intended.map_or(sent_at, |due| due.min(sent_at));
            self.recorder.borrow_mut().sent(name, late);
            let outcome = tokio::time::timeout(plan.timeout, c.send(&plan.requests[name])).await;
            let done = Instant::now();
            let mut recorder = self.recorder.borrow_mut();
            match outcome {
                Ok(Ok(exchange)) => recorder.answered(
                    name,
                    exchange.status < 400,
                    done - from,
                    done - sent_at,
                    (exchange.sent, exchange.received),
                ),
                Ok(Err(class)) => {
                    recorder.broke(name, class);
                    conn = None;
                }
                Err(_elapsed) => {
                    recorder.broke(name, FailureClass::Timeout);
                    // The late response would arrive on this connection: replace it.
                    conn = None;
                }
            }
        }
    }
}
