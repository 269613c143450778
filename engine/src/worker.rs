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

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::connection::{submit_queued, H2Connection, HyperConnection, Io, Protocol};
use crate::connection::{Broken, Client, ConnectFailure, Connection, Connector, Exchange};
use crate::connection::{RawConnection, Received, Ring, Tcp, UringStream};
use crate::control::{Shared, ABORT, STOP};
use crate::deadline::Deadlines;
use crate::plan::Plan;
use crate::recorder::{Delta, DeltaShape, Recorder};
use crate::redirect::{is_redirect, Redirect, MAX_REDIRECTS};
use crate::schedule::{even_share, Pacer, Schedule};
use crate::script::{Action, Reply, UserId};
use crate::stats::{FailureClass, Stats};

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

/// How often a worker checks its own event loop's lag and, in the closed model, compares its
/// users with the shape's target and spawns or retires users. Fine enough for any spawn rate a
/// target can tell apart.
const CONTROL_TICK: Duration = Duration::from_millis(50);

/// Closed model: the most users a worker starts in one control tick (20,000 a second). A jump
/// to a large target then takes several ticks, and the loop sees a stop, the run time and its
/// intervals between them instead of starting every user first.
const MAX_SPAWN_PER_TICK: u64 = 1000;

/// What a worker thread needs to run its share.
pub(crate) struct WorkerSpec {
    pub index: usize,
    pub workers: usize,
    pub core: Option<core_affinity::CoreId>,
    pub start: Instant,
    pub plan: Arc<Plan>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The HTTP version the probe settled on.
    pub protocol: Protocol,
    /// How sockets send and receive ([`Io::Epoll`] or [`Io::Uring`], settled).
    pub io: Io,
    pub shared: Arc<Shared>,
    pub stop: watch::Receiver<u8>,
    pub deltas: Sender<Delta>,
    /// Stats the aggregator has merged, handed back to be emptied and reused.
    pub spares: crossbeam_channel::Receiver<Vec<Stats>>,
}

/// State shared by the tasks of one worker (same thread only).
struct Local {
    plan: Arc<Plan>,
    protocol: Protocol,
    shared: Arc<Shared>,
    connector: Connector,
    index: usize,
    workers: usize,
    recorder: RefCell<Recorder>,
    /// Open model: this worker's timetable.
    pacer: Option<Pacer>,
    /// Closed model: users this worker should run now. Open model: its connection limit.
    target: Cell<u64>,
    /// Which user slots are taken; a user's slot gives its global index.
    slots: RefCell<Vec<bool>>,
    live: Cell<u64>,
    all_done: Notify,
    stopping: Cell<bool>,
    /// Wakes resting users when the run stops or the target drops.
    wake: Notify,
    /// The users' request deadlines, checked on the control tick.
    deadlines: Deadlines,
}

/// Runs one worker to completion on the current thread.
pub(crate) fn run(spec: WorkerSpec) {
    if let Some(core) = spec.core {
        // Pinning is best effort: a refused affinity call must not cost the run.
        core_affinity::set_for_current(core);
    }
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if spec.io == Io::Uring {
        // The users of a loop iteration queue their sends and receives; they go to the kernel
        // together, in one system call, when the loop runs out of work.
        builder.on_thread_park(submit_queued);
    }
    let runtime = builder
        .enable_all()
        .build()
        .expect("a current-thread runtime builds on any supported OS");
    let shared = spec.shared.clone();
    let local = tokio::task::LocalSet::new();
    // A panic is a bug in blast; it must not pass for a complete run. The worker's last delta
    // is lost with it, so the report is marked incomplete and the others stop.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        local.block_on(&runtime, drive(spec))
    }));
    if let Err(panic) = run {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a worker thread panicked".into());
        shared.worker_panicked(message);
    }
}

async fn drive(mut spec: WorkerSpec) {
    let plan = spec.plan.clone();
    let deadline = spec.start + plan.run_time;
    let (pacer, target) = match &plan.schedule {
        Schedule::Closed { .. } => (None, 0),
        Schedule::Open {
            rate,
            max_connections,
        } => {
            // Across shards, each worker is one of shards × workers interleaved timetables.
            let shard = plan.shard;
            let (stream, streams) = (
                shard.index * spec.workers + spec.index,
                shard.count * spec.workers,
            );
            let pacer = Pacer::new(spec.start, deadline, rate, stream, streams);
            let shard_cap = even_share(*max_connections, shard.index, shard.count);
            let limit = even_share(shard_cap, spec.index, spec.workers).max(1);
            // HTTP/2: streams are the unit of concurrency, `streams` to a connection.
            let streams = match spec.protocol {
                Protocol::Http2 => plan.streams as u64,
                Protocol::Http1 => 1,
            };
            (Some(pacer), limit * streams)
        }
    };
    let mut connector = plan.connector(spec.tls.as_ref());
    if spec.io == Io::Uring {
        let ring = Ring::start().expect("the engine's probe made an io_uring ring just before");
        connector.ring = Some(ring);
    }
    let local = Rc::new(Local {
        recorder: RefCell::new(Recorder::new(plan.script.names().len(), pacer.is_some())),
        connector,
        shared: spec.shared.clone(),
        plan: plan.clone(),
        protocol: spec.protocol,
        index: spec.index,
        workers: spec.workers,
        pacer,
        target: Cell::new(target),
        slots: RefCell::new(Vec::new()),
        live: Cell::new(0),
        all_done: Notify::new(),
        stopping: Cell::new(false),
        wake: Notify::new(),
        deadlines: Deadlines::default(),
    });
    let closed = local.pacer.is_none();
    if !closed {
        local.spawn_user();
    }

    let mut ticker = tokio::time::interval_at((spec.start + plan.interval).into(), plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut control = tokio::time::interval_at(spec.start.into(), CONTROL_TICK);
    control.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = 0;
    let mut shipped_at = Duration::ZERO;
    let mut ship = |local: &Local, last: bool, users_at_stop: Option<u64>| {
        let now = Instant::now();
        let end = now.saturating_duration_since(spec.start);
        let slots = local
            .pacer
            .as_ref()
            .map_or((0, 0), |p| p.due_and_behind(now));
        let spare = spec.spares.try_recv().ok();
        let delta = local.recorder.borrow_mut().take(
            DeltaShape {
                worker: spec.index,
                tick,
                span: (shipped_at, end),
                users: users_at_stop.unwrap_or_else(|| local.live.get()),
                slots,
                last,
            },
            spare,
        );
        tick += 1;
        shipped_at = end;
        // The aggregator outlives every worker; a closed channel only means it gave up early.
        let _ = spec.deltas.send(delta);
    };

    // Open model: the total rate this worker last followed when one was set while running.
    let mut rate_set = None;
    let run_over = tokio::time::sleep_until(deadline.into());
    tokio::pin!(run_over);
    loop {
        tokio::select! {
            due = ticker.tick() => {
                // A late tick is loop lag too, and it belongs to the interval it closes: after a
                // pause, the interval that spans the pause is the one marked.
                local.recorder.borrow_mut().loop_lag(Instant::now().saturating_duration_since(due.into()));
                // A tick within half an interval of the end is left to the last delta, so the
                // last interval never covers only the stop grace.
                if deadline.saturating_duration_since(Instant::now()) > plan.interval / 2 {
                    ship(&local, false, None);
                }
            }
            due = control.tick() => {
                // How late the loop ran a timer: a busy generator shows here first.
                let now = Instant::now();
                local.recorder.borrow_mut().loop_lag(now.saturating_duration_since(due.into()));
                local.deadlines.expire(now);
                if closed {
                    local.follow_shape(spec.start.elapsed());
                } else {
                    local.follow_rate(&mut rate_set);
                }
            }
            _ = &mut run_over => break,
            _ = stop_requested(&mut spec.stop, STOP) => break,
            // Open model: every slot of the timetable has been taken.
            _ = local.all_done.notified(), if !closed => break,
        }
    }

    // Stop sending; let in-flight requests finish for up to the stop timeout. Open model:
    // slots due from now on are not the run's any more; those due and not started are missed.
    // Users running when sending stopped: the last intervals' count, not the zero after them.
    let users_at_stop = Some(local.live.get());
    if let Some(pacer) = &local.pacer {
        pacer.stop_at(Instant::now());
    }
    local.stopping.set(true);
    local.wake.notify_waiters();
    let grace = tokio::time::sleep(plan.stop_timeout);
    tokio::pin!(grace);
    while local.live.get() > 0 {
        tokio::select! {
            _ = ticker.tick() => ship(&local, false, users_at_stop),
            _ = control.tick() => local.deadlines.expire(Instant::now()),
            _ = local.all_done.notified() => {}
            _ = &mut grace => break,
            _ = stop_requested(&mut spec.stop, ABORT) => break,
        }
    }
    local.recorder.borrow_mut().cancel_in_flight();
    ship(&local, true, users_at_stop);
}

/// Waits until the run's stop level reaches `level`.
async fn stop_requested(stop: &mut watch::Receiver<u8>, level: u8) {
    while *stop.borrow_and_update() < level {
        if stop.changed().await.is_err() {
            // Nobody can ask for a stop any more: only the run time ends this run.
            std::future::pending::<()>().await;
        }
    }
}

impl Local {
    /// Closed model: moves this worker's population towards its share of the target.
    fn follow_shape(self: &Rc<Self>, elapsed: Duration) {
        let Schedule::Closed { users } = &self.plan.schedule else {
            return;
        };
        // This shard's share of the shape, then this worker's share of that.
        let shard = self.plan.shard;
        let total = self.shared.users_override().unwrap_or_else(|| {
            even_share(users.at(elapsed).round() as u64, shard.index, shard.count)
        });
        let target = even_share(total, self.index, self.workers);
        if target < self.target.get() {
            // Users above the target stop after their current task; resting ones now.
            self.wake.notify_waiters();
        }
        self.target.set(target);
        let live = self.live.get();
        for _ in live..target.min(live + MAX_SPAWN_PER_TICK) {
            self.spawn_user();
        }
    }

    /// Open model: starts a new timetable when a rate was set while running, with a connection
    /// ready for its first slot.
    fn follow_rate(self: &Rc<Self>, followed: &mut Option<f64>) {
        let (Some(pacer), Some(rate)) = (&self.pacer, self.shared.rate_override()) else {
            return;
        };
        if *followed == Some(rate) {
            return;
        }
        *followed = Some(rate);
        pacer.retarget(Instant::now(), rate / self.workers as f64);
        // Tasks waiting for the old timetable's slots keep them; the pool refills itself.
        if pacer.nobody_waiting() && self.live.get() < self.target.get() {
            self.spawn_user();
        }
    }

    /// Whether the user in `slot` is above the current target and should stop.
    fn retired(&self, slot: usize) -> bool {
        self.pacer.is_none() && slot as u64 >= self.target.get()
    }

    /// Starts a user in the lowest free slot.
    fn spawn_user(self: &Rc<Self>) {
        let slot = {
            let mut slots = self.slots.borrow_mut();
            let free = slots.iter().position(|taken| !taken);
            let slot = free.unwrap_or(slots.len());
            if slot == slots.len() {
                slots.push(true);
            } else {
                slots[slot] = true;
            }
            slot
        };
        self.live.set(self.live.get() + 1);
        let local = self.clone();
        tokio::task::spawn_local(async move {
            // Tokio keeps a task's panic to itself; this makes it end the run instead.
            let _guard = PanicGuard(&local.shared);
            // Each variant boxes its user, so this future stays small either way.
            match local.connector.ring {
                Some(_) => local.clone().user_over::<UringStream>(slot).await,
                None => local.clone().user_over::<TcpStream>(slot).await,
            }
            local.slots.borrow_mut()[slot] = false;
            local.live.set(local.live.get() - 1);
            if local.live.get() == 0 {
                local.all_done.notify_one();
            }
        });
    }

    /// Runs the user in `slot` over TCP streams of type `S` (plain, or under TLS).
    async fn user_over<S: Tcp>(self: Rc<Self>, slot: usize) {
        type Tls<S> = TlsStream<S>;
        // Boxed, each user's future has its own size, not the largest of the six: a
        // plain connection's user does not carry room for a TLS handshake.
        match (self.protocol, self.plan.client, self.plan.target.tls) {
            (Protocol::Http2, _, false) => Box::pin(self.user::<H2Connection<S>>(slot)).await,
            (Protocol::Http2, _, true) => Box::pin(self.user::<H2Connection<Tls<S>>>(slot)).await,
            (Protocol::Http1, Client::Raw, false) => {
                Box::pin(self.user::<RawConnection<S>>(slot)).await
            }
            (Protocol::Http1, Client::Raw, true) => {
                Box::pin(self.user::<RawConnection<Tls<S>>>(slot)).await
            }
            (Protocol::Http1, Client::Hyper, false) => {
                Box::pin(self.user::<HyperConnection<S>>(slot)).await
            }
            (Protocol::Http1, Client::Hyper, true) => {
                Box::pin(self.user::<HyperConnection<Tls<S>>>(slot)).await
            }
        }
    }

    /// Sleeps until `when`; `false` if the run started stopping or `slot` was retired meanwhile.
    async fn sleep_until(&self, when: Instant, slot: usize) -> bool {
        loop {
            if self.stopping.get() || self.retired(slot) {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(when.into()) => {
                    return !self.stopping.get() && !self.retired(slot)
                }
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Open model: waits for the next slot of the timetable; `None` when the run is over.
    async fn next_slot(self: &Rc<Self>, pacer: &Pacer, slot: usize) -> Option<Instant> {
        let due = pacer.take()?;
        pacer.set_waiting(true);
        let on_time = self
            .sleep_until(due.checked_sub(EARLY_WAKE).unwrap_or(due), slot)
            .await;
        pacer.set_waiting(false);
        if !on_time {
            return None;
        }
        pacer.start_slot();
        // Keep one connection ready for the next slot while the pool may grow, unless there is
        // no next slot: a connection opened only to find the timetable over would be waste.
        if pacer.nobody_waiting() && self.live.get() < self.target.get() && pacer.has_next() {
            self.spawn_user();
        }
        Some(due)
    }

    /// Opens a connection for a request of `name`, counting it.
    async fn connect<C: Connection>(&self, name: usize) -> Result<C, ConnectFailure> {
        // Boxed: a connect (a TLS handshake's state included) happens once per connection, and
        // inline it would make every user's future as large as the handshake for its whole life.
        let (conn, opened) = Box::pin(C::open(&self.connector)).await?;
        if let Some(opened) = opened {
            self.recorder.borrow_mut().connected(name, &opened);
        }
        Ok(conn)
    }

    /// Sends `request` on `conn`, and once more on a fresh connection where Go's `net/http`
    /// would (a reused connection closed before answering) or the server says it did not
    /// process it (see [`Broken::retryable`]).
    async fn exchange<C: Connection>(
        &self,
        name: usize,
        conn: &mut Option<C>,
        reused: bool,
        request: &[u8],
        received: &mut Received,
    ) -> Result<Exchange, Broken> {
        let c = conn.as_mut().expect("a connection is open before sending");
        let first = match c.send(request, received).await {
            Err(broken) if self.plan.retry && broken.retryable(request, reused) => broken,
            done => return done,
        };
        self.recorder.borrow_mut().retried(name);
        *conn = None;
        let fresh = self
            .connect::<C>(name)
            .await
            .map_err(|f| Broken::new(f.class, first.written))?;
        // The first attempt's bytes went out too.
        match conn.insert(fresh).send(request, received).await {
            Ok(mut exchange) => {
                exchange.sent += first.written;
                Ok(exchange)
            }
            Err(mut broken) => {
                broken.written += first.written;
                Err(broken)
            }
        }
    }

    /// One user (closed model) or one connection of the pool (open model): the worker loop.
    async fn user<C: Connection>(self: &Rc<Self>, slot: usize) {
        let plan = self.plan.clone();
        let shard = plan.shard;
        let mut user = plan.script.user(UserId {
            index: ((slot * self.workers + self.index) * shard.count + shard.index) as u64,
            worker: self.index,
            workers: self.workers,
            shard: shard.index,
            shards: shard.count,
        });
        // Grown to the user's largest request, no more: at 10,000 users a fixed reserve adds up.
        let mut request = Vec::new();
        let mut next_hop = Vec::new();
        let mut received = Received::default();
        let mut conn: Option<C> = None;
        let deadline = self.deadlines.register();
        // Past this instant the server's announced keep-alive timeout may close the idle
        // connection under a request: open a new one instead.
        let mut reuse_until: Option<Instant> = None;
        if self.pacer.is_some() {
            // Pool connections open before taking a slot, so connect time is not charged to it.
            conn = self.connect(0).await.ok();
        }
        // Open model: the intended start of the current task, charged to its first request.
        let mut intended = None;
        let mut need_slot = self.pacer.is_some();
        let mut backoff = FIRST_BACKOFF;
        // The request being sent: its name, whether its body is kept and redirects followed,
        // and the time it is allowed.
        let (mut name, mut keep_body, mut follow) = (0, false, false);
        let mut timeout = plan.timeout;
        // A redirect being followed: `request` already holds the next hop.
        let mut chain: Option<Chain> = None;
        while !self.stopping.get() {
            if chain.is_none() {
                if need_slot {
                    let pacer = self.pacer.as_ref().expect("open model has a pacer");
                    intended = self.next_slot(pacer, slot).await;
                    if intended.is_none() {
                        break;
                    }
                    need_slot = false;
                }
                request.clear();
                match user.next(&mut request) {
                    Action::Send {
                        name: n,
                        keep_body: k,
                        follow_redirects: f,
                        timeout: t,
                    } => {
                        (name, keep_body, follow) = (n, k, f);
                        timeout = t.unwrap_or(plan.timeout);
                    }
                    Action::Pause { until } => {
                        if !self.sleep_until(until, slot).await {
                            break;
                        }
                        continue;
                    }
                    Action::Rest { until, skipped } => {
                        if let Some(name) = skipped {
                            self.recorder.borrow_mut().skipped(name);
                        }
                        if self.pacer.is_some() {
                            need_slot = true;
                        } else if self.retired(slot) {
                            break;
                        } else if let Some(until) = until {
                            if !self.sleep_until(until, slot).await {
                                break;
                            }
                        }
                        continue;
                    }
                }
            }

            let reused = match conn.as_mut() {
                Some(c) => {
                    let fresh = reuse_until.is_none_or(|t| Instant::now() < t);
                    let usable = fresh && c.is_usable().await;
                    if !usable {
                        self.recorder.borrow_mut().reconnected(name);
                        conn = None;
                    }
                    usable
                }
                None => false,
            };
            if conn.is_none() {
                match self.connect(name).await {
                    Ok(c) => conn = Some(c),
                    Err(failure) => {
                        self.recorder.borrow_mut().unconnected(name, &failure);
                        user.failed(failure.class);
                        chain = None;
                        if !self.sleep_until(Instant::now() + backoff, slot).await {
                            break;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            backoff = FIRST_BACKOFF;

            let sent_at = Instant::now();
            let due = intended.take();
            let late = due.is_some_and(|due| sent_at.saturating_duration_since(due) > LATE_AFTER);
            // Latency runs from the intended start, or from the send when it went out early:
            // whichever is earlier, so neither a stall nor an early wake can shrink it. A
            // redirect's hops run from the first hop's start.
            let chain_so_far = chain.take().unwrap_or(Chain {
                from: due.map_or(sent_at, |due| due.min(sent_at)),
                sent_at,
                sent: 0,
                received: 0,
                hops: 0,
            });
            self.recorder.borrow_mut().sent(name, late);
            received.keep = keep_body;
            let write_mark = conn.as_ref().map_or(0, C::write_mark);
            let exchange = self.exchange(name, &mut conn, reused, &request, &mut received);
            let outcome = deadline
                .within(sent_at + timeout, std::pin::pin!(exchange))
                .await;
            let done = Instant::now();
            let broken = match outcome {
                Ok(Ok(exchange)) => {
                    if let Some(wait) = exchange.flow_stall {
                        self.recorder.borrow_mut().flow_stalled(name, wait);
                    }
                    reuse_until = received.keep_alive.map(|t| done + reusable_idle(t));
                    let mut hops = chain_so_far;
                    hops.sent += exchange.sent;
                    hops.received += exchange.received;
                    let redirect = match &received.location {
                        Some(location) if follow && is_redirect(exchange.status) => Some(
                            Redirect::resolve(&plan.target, &request, exchange.status, location),
                        ),
                        _ => None,
                    };
                    received.decode();
                    let reply = Reply {
                        status: exchange.status,
                        body: &received.body,
                        truncated: received.truncated,
                        set_cookies: &received.set_cookies,
                    };
                    let verdict = match redirect {
                        Some(Ok(to)) if hops.hops < MAX_REDIRECTS => {
                            next_hop.clear();
                            user.redirect(&reply, &to, &request, &mut next_hop);
                            std::mem::swap(&mut request, &mut next_hop);
                            self.recorder.borrow_mut().followed(name);
                            hops.hops += 1;
                            chain = Some(hops);
                            continue;
                        }
                        Some(Ok(_)) => Err(format!(
                            "TooManyRedirects('Exceeded {MAX_REDIRECTS} redirects.')"
                        )),
                        Some(Err(reason)) => Err(reason),
                        None => Ok(()),
                    };
                    let verdict = match verdict {
                        Ok(()) => {
                            let judged = user.response(&reply);
                            judged.map_err(|class| (class, user.failure_reason()))
                        }
                        Err(reason) => {
                            user.failed(FailureClass::Redirect);
                            Err((FailureClass::Redirect, Some(reason)))
                        }
                    };
                    self.recorder.borrow_mut().answered(
                        name,
                        exchange.status,
                        verdict
                            .as_ref()
                            .map_err(|(class, reason)| (*class, reason.as_deref()))
                            .copied(),
                        (done - hops.from, done - hops.sent_at),
                        (hops.sent, hops.received),
                        received.body_len,
                    );
                    continue;
                }
                Ok(Err(broken)) => broken,
                // The late response would arrive on this connection: it is replaced below.
                Err(_elapsed) => Broken::new(
                    FailureClass::Timeout,
                    conn.as_ref().map_or(0, |c| c.written_since(write_mark)),
                ),
            };
            self.recorder.borrow_mut().broke(
                name,
                (broken.class, broken.reason),
                (done - chain_so_far.from, done - chain_so_far.sent_at),
                chain_so_far.sent + broken.written,
            );
            user.failed(broken.class);
            conn = None;
        }
        if chain.is_some() {
            // The run stopped between two hops of a redirect: the request never finished.
            self.recorder.borrow_mut().abandoned(name);
        }
    }
}

/// Reports a panic of the task that holds it (tokio would otherwise swallow it). The panic's
/// own message is printed by Rust's panic hook.
struct PanicGuard<'a>(&'a Shared);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .worker_panicked("a user task panicked (its message is printed above)".into());
        }
    }
}

/// A redirect chain in progress: the first hop's start, and what the hops so far moved.
#[derive(Clone, Copy)]
struct Chain {
    /// Where the request's latency runs from.
    from: Instant,
    /// When the first hop went out (service time runs from here).
    sent_at: Instant,
    sent: u64,
    received: u64,
    hops: u32,
}

/// How long a connection may sit idle when the server announced `timeout` in its `Keep-Alive`
/// header: a second less (half, for short timeouts), so the request is not in flight when the
/// server's timer fires. Node's undici keeps the same kind of margin.
fn reusable_idle(timeout: Duration) -> Duration {
    if timeout > Duration::from_secs(2) {
        timeout - Duration::from_secs(1)
    } else {
        timeout / 2
    }
}
