//! The run: a [`Plan`] in, pinned workers started, deltas merged, a [`Report`] out.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::aggregator::{total, Aggregator, IntervalSummary, PhaseReport, Snapshot};
use crate::connection::{Connection, RawConnection};
use crate::control::{RunHandle, Shared};
use crate::plan::{available_cores, Plan};
use crate::schedule::{PhaseKind, Schedule};
use crate::script::Name;
use crate::stats::Stats;
use crate::worker::{self, WorkerSpec};
use crate::EngineError;

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
    /// Which part of a run split over several processes this was.
    pub shard: crate::Shard,
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
        Ok(Engine {
            plan: Arc::new(plan),
            shared: Arc::new(Shared::new()),
            tls,
        })
    }

    /// Opens and drops one connection the way workers will (every address, TLS included), so a
    /// dead target or an untrusted certificate is one clear error before the run.
    fn probe(&self) -> Result<(), EngineError> {
        let plan = &self.plan;
        let connector = plan.connector(self.tls.as_ref());
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
        self.shared.handle()
    }

    /// Runs the plan to the end, calling `observer` once per interval on this thread.
    ///
    /// Fails before sending anything when the target refuses a first connection.
    pub fn run(&self, mut observer: impl FnMut(&Snapshot)) -> Result<Report, EngineError> {
        let plan = &self.plan;
        // One probe up front: a dead target is a clear error now, not a run full of failures.
        self.probe()?;

        let workers = plan.schedule.useful_workers(plan.workers, plan.shard);
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
                stop: self.shared.subscribe(),
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
        let stopped = self
            .shared
            .stopped_at()
            .map(|t| t.saturating_duration_since(start));
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
            shard: plan.shard,
            interrupted: stopped.is_some_and(|s| s < plan.run_time),
            sending,
            slots,
            phases,
            incomplete: self.shared.panic_message(),
        })
    }
}
