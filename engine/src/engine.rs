//! The run: a [`Plan`] in, pinned workers started, deltas merged, a [`Report`] out.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::aggregator::{total, Aggregator, IntervalSummary, PhaseReport, Snapshot};
use crate::connection::{negotiated, with_alpn, Connection, H2Connection, Protocol};
use crate::connection::{uring_available, Io, RawConnection, Transport};
use crate::control::{RunHandle, Shared};
use crate::plan::{available_cores, Plan};
use crate::schedule::Schedule;
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
    /// Wall-clock time the run's first interval starts: when it started, or with
    /// [`Plan::start_at`] the last point of that time's interval grid before it did.
    pub started_at: SystemTime,
    /// How long after `started_at` sending began (zero without [`Plan::start_at`]).
    pub late: Duration,
    /// From the start until the last worker finished (stop grace included).
    pub duration: Duration,
    /// From the start until sending stopped: the run time, or less when stopped early. Rates
    /// are over this window.
    pub sending: Duration,
    /// The planned run time.
    pub run_time: Duration,
    /// The interval length.
    pub interval: Duration,
    /// Whether the stats were reset at the end of the ramp-up.
    pub reset_stats: bool,
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
    /// The HTTP version spoken.
    pub protocol: Protocol,
    /// HTTP/2: the streams per connection asked for and what the server allows.
    pub streams: Option<StreamLimit>,
    /// How the sockets sent and received: [`Io::Epoll`] or [`Io::Uring`].
    pub io: Io,
    /// Why `--io auto` used epoll: what the kernel said when asked for io_uring.
    pub io_fallback: Option<String>,
}

/// HTTP/2: concurrent streams per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamLimit {
    /// Users per connection asked for ([`Plan::streams`]).
    pub asked: usize,
    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, when it set one.
    pub server: Option<usize>,
}

impl StreamLimit {
    /// Streams per connection in use: the server's limit where it is lower than asked.
    pub fn used(&self) -> usize {
        self.server.map_or(self.asked, |s| s.min(self.asked))
    }
}

/// What the probe settled before the run.
struct Negotiated {
    protocol: Protocol,
    /// The TLS configuration offering exactly that protocol.
    tls: Option<Arc<rustls::ClientConfig>>,
    streams: Option<StreamLimit>,
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
    /// dead target or an untrusted certificate is one clear error before the run. Over TLS,
    /// it also learns which protocol the server picks by ALPN; with HTTP/2, the server's
    /// stream limit.
    fn probe(&self) -> Result<Negotiated, EngineError> {
        let plan = &self.plan;
        let unreachable = |why: String| EngineError::Unreachable {
            origin: plan.target.origin(),
            why,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(EngineError::Thread)?;
        // HTTP/2 connections run their driver as a local task.
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            let protocol = match &self.tls {
                Some(config) => {
                    let offered = match plan.http {
                        Some(p) => vec![p],
                        None => vec![Protocol::Http2, Protocol::Http1],
                    };
                    let connector = plan.connector(Some(&with_alpn(config, &offered)));
                    let (stream, _) = TlsStream::<TcpStream>::open(&connector)
                        .await
                        .map_err(|f| unreachable(f.reason))?;
                    let chosen = negotiated(&stream);
                    if plan.http == Some(Protocol::Http2) && chosen != Protocol::Http2 {
                        return Err(unreachable(
                            "the server does not offer HTTP/2 (ALPN h2): leave out --http2".into(),
                        ));
                    }
                    chosen
                }
                None => plan.http.unwrap_or(Protocol::Http1),
            };
            let tls = self
                .tls
                .as_ref()
                .map(|config| with_alpn(config, &[protocol]));
            let connector = plan.connector(tls.as_ref());
            let streams = match protocol {
                // Over TLS the connection that learned the protocol was the probe.
                Protocol::Http1 if tls.is_some() => None,
                Protocol::Http1 => {
                    RawConnection::<TcpStream>::open(&connector)
                        .await
                        .map_err(|f| unreachable(f.reason))?;
                    None
                }
                Protocol::Http2 => {
                    let server = match tls {
                        Some(_) => server_streams::<TlsStream<TcpStream>>(&connector).await,
                        None => server_streams::<TcpStream>(&connector).await,
                    };
                    Some(StreamLimit {
                        asked: plan.streams,
                        server: server.map_err(|f| unreachable(f.reason))?,
                    })
                }
            };
            Ok(Negotiated {
                protocol,
                tls,
                streams,
            })
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
        let negotiated = self.probe()?;
        // A ring made and dropped here fails as the workers' would (refused by seccomp, no
        // io_uring in the kernel), so `auto` settles once and `uring` is a clear error now.
        let (io, io_fallback) = match plan.io {
            Io::Epoll => (Io::Epoll, None),
            asked => match uring_available() {
                Ok(()) => (Io::Uring, None),
                Err(e) if asked == Io::Auto => (Io::Epoll, Some(e.to_string())),
                Err(e) => return Err(EngineError::Uring(e.to_string())),
            },
        };

        let workers = plan.schedule.useful_workers(plan.workers, plan.shard);
        let cores = available_cores();
        let pin = plan.pin && !cores.is_empty();
        let (tx, rx) = crossbeam_channel::unbounded();
        let (started_at, start, late) = anchor(plan.start_at, plan.interval);
        let mut threads = Vec::with_capacity(workers);
        // Per worker: the way merged stats go back to it for reuse (two in flight at most).
        let mut spares = Vec::with_capacity(workers);
        for index in 0..workers {
            let (spare_tx, spare_rx) = crossbeam_channel::bounded(2);
            spares.push(spare_tx);
            let spec = WorkerSpec {
                index,
                workers,
                core: pin.then(|| cores[index % cores.len()]),
                start,
                plan: plan.clone(),
                tls: negotiated.tls.clone(),
                protocol: negotiated.protocol,
                io,
                shared: self.shared.clone(),
                stop: self.shared.subscribe(),
                deltas: tx.clone(),
                spares: spare_rx,
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
        let mut aggregator = Aggregator::new(
            workers,
            names.len(),
            &plan.schedule,
            plan.run_time,
            plan.interval,
            plan.reset_stats,
        );
        aggregator.protocol = negotiated.protocol;
        for delta in rx {
            let worker = delta.worker;
            let merged = aggregator.absorb(delta, &mut observer);
            // A full or closed channel only means the worker has enough spares, or is done.
            let _ = spares[worker].try_send(merged);
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
        Ok(Report {
            total: total(&cumulative),
            started_at,
            late,
            duration,
            run_time: plan.run_time,
            interval: plan.interval,
            reset_stats: plan.reset_stats,
            names: NameReport::zip(names, cumulative),
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
            protocol: negotiated.protocol,
            streams: negotiated.streams,
            io,
            io_fallback,
        })
    }
}

impl NameReport {
    /// Each name with its cumulative stats.
    pub(crate) fn zip(names: &[Name], cumulative: Vec<Stats>) -> Vec<NameReport> {
        names
            .iter()
            .zip(cumulative)
            .map(|(name, stats)| NameReport {
                name: name.clone(),
                stats,
            })
            .collect()
    }
}

/// HTTP/2: the server's stream limit, from one connection (`None`: it set none).
async fn server_streams<S: Transport>(
    connector: &crate::connection::Connector,
) -> Result<Option<usize>, crate::connection::ConnectFailure> {
    let (conn, _) = H2Connection::<S>::open(connector).await?;
    Ok(Some(conn.server_streams()).filter(|&n| n != usize::MAX))
}

/// The run's wall-clock start, its monotonic twin and how late it is. With a start time the
/// run is anchored on that time's interval grid, so the intervals of processes started
/// together line up to the clock even when one of them begins a little late.
fn anchor(start_at: Option<SystemTime>, interval: Duration) -> (SystemTime, Instant, Duration) {
    let (wall, now) = (SystemTime::now(), Instant::now());
    let Some(late) = start_at.and_then(|at| wall.duration_since(at).ok()) else {
        return (wall, now, Duration::ZERO);
    };
    let into_interval = Duration::from_nanos((late.as_nanos() % interval.as_nanos()) as u64);
    match now.checked_sub(into_interval) {
        Some(start) => (wall - into_interval, start, into_interval),
        None => (wall, now, Duration::ZERO),
    }
}
