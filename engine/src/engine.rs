//! The run: a [`Plan`] in, pinned workers started, deltas merged, a [`Report`] out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;

use crate::aggregator::{total, Aggregator, IntervalSummary, PhaseReport, Snapshot};
use crate::connection::{Client, Connection, Connector, RawConnection, TlsOptions};
use crate::request::Target;
use crate::schedule::{PhaseKind, Schedule};
use crate::script::{Name, Script};
use crate::stats::Stats;
use crate::worker::{self, WorkerSpec};
use crate::EngineError;

/// Everything a run needs, decided before it starts.
#[derive(Clone)]
pub struct Plan {
    /// Where requests go.
    pub target: Target,
    /// What each user sends.
    pub script: Arc<dyn Script>,
    /// Closed users or open arrival rate, each over time.
    pub schedule: Schedule,
    /// HTTP/1.1 client implementation. Default: [`Client::Raw`].
    pub client: Client,
    /// How `https://` targets are trusted. Default: the platform's root certificates.
    pub tls: TlsOptions,
    /// Send a request again, once, on a fresh connection when a reused connection closed
    /// before answering it and the request is idempotent or was not written (Go's rule).
    /// Default: true.
    pub retry: bool,
    /// How long to send for, counted from the start (ramps included). Default: 10 s.
    pub run_time: Duration,
    /// Worker threads. Default: one per core available to the process.
    pub workers: usize,
    /// Pin each worker to its own core. Default: true.
    pub pin: bool,
    /// Time allowed for one request, connect excluded. Default: 60 s, as Locust.
    pub timeout: Duration,
    /// Time allowed to open one TCP connection. Default: 5 s.
    pub connect_timeout: Duration,
    /// After the run time (or a stop), how long in-flight requests may finish. Default: 5 s.
    pub stop_timeout: Duration,
    /// How often workers ship stats and the observer sees a snapshot. Default: 1 s.
    pub interval: Duration,
    /// Forget the ramp-up: the cumulative stats (and every output made from them) start again
    /// when the shape first reaches its peak, as Locust's `--reset-stats`. Default: false.
    pub reset_stats: bool,
}

impl Plan {
    /// A plan with default settings for everything but what and how to send.
    pub fn new(target: Target, script: impl Script, schedule: Schedule) -> Plan {
        Plan {
            target,
            script: Arc::new(script),
            schedule,
            client: Client::default(),
            tls: TlsOptions::default(),
            retry: true,
            run_time: Duration::from_secs(10),
            workers: available_cores().len().max(1),
            pin: true,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            stop_timeout: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            reset_stats: false,
        }
    }

    fn validate(&self) -> Result<(), EngineError> {
        let bad = |why: &str| Err(EngineError::InvalidPlan(why.to_string()));
        match &self.schedule {
            Schedule::Closed { users } if !users.is_valid() || users.peak() < 1.0 => {
                return bad("users must be at least 1")
            }
            Schedule::Open { rate, .. } if !rate.is_valid() || rate.peak() <= 0.0 => {
                return bad("rate must be a positive number")
            }
            Schedule::Open {
                max_connections: 0, ..
            } => return bad("max connections must be at least 1"),
            _ => {}
        }
        if self.script.names().is_empty() {
            return bad("no requests to send");
        }
        if self.workers == 0 {
            return bad("threads must be at least 1");
        }
        if self.interval.is_zero() || self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return bad("interval and timeouts must be above zero");
        }
        Ok(())
    }
}

/// Cores this process may run on (respects `taskset` and cgroup masks).
pub fn available_cores() -> Vec<core_affinity::CoreId> {
    core_affinity::get_core_ids().unwrap_or_default()
}

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

/// Stats of one request name at the end of a run.
#[derive(Clone, Debug)]
pub struct NameReport {
    /// The method and stats name.
    pub name: Name,
    /// Cumulative stats.
    pub stats: Stats,
}

/// The outcome of a run: cumulative stats per name and in total, and the time series.
#[derive(Clone, Debug)]
pub struct Report {
    /// Wall-clock time the run started.
    pub started_at: SystemTime,
    /// From the start until the last worker finished (stop grace included).
    pub duration: Duration,
    /// From the start until sending stopped: the run time, or less when stopped early. Rates
    /// are over this window.
    pub sending: Duration,
    /// The planned run time.
    pub run_time: Duration,
    /// Per-name stats, in the script's order.
    pub names: Vec<NameReport>,
    /// All names together.
    pub total: Stats,
    /// One entry per interval.
    pub history: Vec<IntervalSummary>,
    /// The schedule that ran.
    pub schedule: Schedule,
    /// Worker threads used.
    pub workers: usize,
    /// Whether workers were pinned to cores.
    pub pinned: bool,
    /// Whether a stop was requested before the run time was over.
    pub interrupted: bool,
    /// Open model: slots of the timetable due while sending, and those never sent (all
    /// connections were busy until the end; k6's dropped iterations). Zero for the closed model.
    pub slots: (u64, u64),
    /// The run's phases (ramp-up, steady, ramp-down) with their own stats.
    pub phases: Vec<PhaseReport>,
    /// Why the results are incomplete: the message of a worker thread that panicked.
    pub incomplete: Option<String>,
}

impl Report {
    /// Finished requests per second over the sending window.
    pub fn rps(&self) -> f64 {
        self.total.counters.requests() as f64 / self.sending.as_secs_f64().max(1e-9)
    }

    /// Open model: slots due but never sent.
    pub fn missed(&self) -> u64 {
        self.slots.1
    }
}

/// Runs plans. Create one per run, take its [`RunHandle`] for signal handlers, then `run`.
pub struct Engine {
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    /// For `https://` targets: one client configuration, so sessions resume across connections.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Engine {
    /// Checks the plan; nothing starts until [`Engine::run`].
    pub fn new(plan: Plan) -> Result<Engine, EngineError> {
        plan.validate()?;
        let tls = match plan.target.tls {
            true => Some(plan.tls.client_config()?),
            false => None,
        };
        let shared = Shared {
            stop: watch::channel(RUNNING).0,
            stopped_at: Mutex::new(None),
            users: AtomicU64::new(FOLLOW_SHAPE),
            rate: AtomicU64::new(FOLLOW_SHAPE),
            panic: Mutex::new(None),
        };
        Ok(Engine {
            plan: Arc::new(plan),
            shared: Arc::new(shared),
            tls,
        })
    }

    /// A connector to the plan's target, for one thread.
    pub(crate) fn connector(plan: &Plan, tls: Option<&Arc<rustls::ClientConfig>>) -> Connector {
        let tls = tls.map(|config| {
            let name = rustls::pki_types::ServerName::try_from(plan.target.host.clone())
                .expect("a parsed URL's host is a valid server name");
            (tokio_rustls::TlsConnector::from(config.clone()), name)
        });
        Connector::new(plan.target.addrs.clone(), plan.connect_timeout, tls)
    }

    /// Opens and drops one connection the way workers will (every address, TLS included), so a
    /// dead target or an untrusted certificate is one clear error before the run.
    fn probe(&self) -> Result<(), EngineError> {
        let plan = &self.plan;
        let connector = Engine::connector(plan, self.tls.as_ref());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(EngineError::Thread)?;
        let opened = runtime.block_on(async {
            match self.tls {
                Some(_) => RawConnection::<TlsStream<TcpStream>>::open(&connector)
                    .await
                    .map(drop),
                None => RawConnection::<TcpStream>::open(&connector).await.map(drop),
            }
        });
        opened.map_err(|failure| EngineError::Unreachable {
            origin: plan.target.origin(),
            why: failure.reason,
        })
    }

    /// The plan this engine runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// A handle that stops or steers this engine's run.
    pub fn handle(&self) -> RunHandle {
        RunHandle(self.shared.clone())
    }

    /// Runs the plan to the end, calling `observer` once per interval on this thread.
    ///
    /// Fails before sending anything when the target refuses a first connection.
    pub fn run(&self, mut observer: impl FnMut(&Snapshot)) -> Result<Report, EngineError> {
        let plan = &self.plan;
        // One probe up front: a dead target is a clear error now, not a run full of failures.
        self.probe()?;

        let workers = plan.schedule.useful_workers(plan.workers);
        let cores = available_cores();
        let pin = plan.pin && !cores.is_empty();
        let with_service = matches!(plan.schedule, Schedule::Open { .. });
        let (tx, rx) = crossbeam_channel::unbounded();
        let started_at = SystemTime::now();
        let start = Instant::now();
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let spec = WorkerSpec {
                index,
                workers,
                core: pin.then(|| cores[index % cores.len()]),
                start,
                plan: plan.clone(),
                tls: self.tls.clone(),
                shared: self.shared.clone(),
                stop: self.shared.stop.subscribe(),
                deltas: tx.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("blast-worker-{index}"))
                .spawn(move || worker::run(spec));
            match thread {
                Ok(t) => threads.push(t),
                Err(e) => {
                    self.handle().stop();
                    return Err(EngineError::Thread(e));
                }
            }
        }
        drop(tx);

        let names = plan.script.names();
        let phases = plan.schedule.phases(plan.run_time);
        let reset_at = phases
            .iter()
            .find(|(kind, _, _)| *kind == PhaseKind::Steady)
            .map(|(_, start, _)| *start)
            .filter(|start| plan.reset_stats && !start.is_zero());
        let mut aggregator = Aggregator::new(
            workers,
            names.len(),
            with_service,
            plan.interval,
            &phases,
            reset_at,
        );
        for delta in rx {
            aggregator.absorb(delta, &mut observer);
        }
        for t in threads {
            // A worker catches its own panic (see `worker::run`); a join error is one that
            // escaped even that, and says the same.
            if t.join().is_err() {
                self.shared
                    .worker_panicked("a worker thread panicked".into());
            }
        }
        let duration = start.elapsed();
        let stopped = lock(&self.shared.stopped_at).map(|t| t.saturating_duration_since(start));
        let sending = stopped
            .map_or(plan.run_time, |s| s.min(plan.run_time))
            .min(duration);
        let slots = aggregator.slots;
        let (cumulative, history, phases) = aggregator.finish(&mut observer);
        let names = names
            .iter()
            .zip(cumulative.iter())
            .map(|(name, stats)| NameReport {
                name: name.clone(),
                stats: stats.clone(),
            })
            .collect();
        Ok(Report {
            started_at,
            duration,
            run_time: plan.run_time,
            names,
            total: total(&cumulative),
            history,
            schedule: plan.schedule.clone(),
            workers,
            pinned: pin,
            interrupted: stopped.is_some_and(|s| s < plan.run_time),
            sending,
            slots,
            phases,
            incomplete: lock(&self.shared.panic).clone(),
        })
    }
}
