//! `blast --web`: a single page and Locust's HTTP API, served from a thread of their own.
//!
//! The server only reads what the run's observer copies into [`State`] once per interval, and
//! steers the run through its `RunHandle`: it never touches a worker. Runs happen one after
//! another on the main thread, each started by `POST /swarm`, each from fresh stats.

mod form;
mod http;
mod stats;

use anyhow::Context;
use base64::Engine as _;
use blast_engine::{Name, RunHandle, Snapshot, Stats};
use blast_report::{RunRecord, Sample};
use bytes::Bytes;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::args::Args;
use crate::finish::{Failure, Verdict};
use crate::plan::{Console, RunPlan};
use crate::run::{self, Watcher};
use form::Swarm;

/// What the page and the API read, written once per interval by the run's observer.
#[derive(Default)]
struct State {
    /// `ready`, `spawning`, `running` or `stopped`.
    phase: &'static str,
    handle: Option<RunHandle>,
    names: Vec<Name>,
    target_users: u64,
    /// The latest `/stats/requests` body.
    stats: Value,
    /// blast's chart points of the current run.
    points: Vec<Value>,
    /// The latest cumulative stats, per name and in total, kept for `/stats/reset`.
    latest: Option<(Vec<Stats>, Stats)>,
    /// The cumulative stats at the last reset.
    baseline: Option<(Vec<Stats>, Stats)>,
    /// The outputs of the current or last run.
    files: Option<RunFiles>,
    /// The last run's criteria and generator verdict, once it ended.
    outcome: Value,
    /// The current run's criteria, and the run so far as a report to judge them on live,
    /// kept up to date an interval at a time (never rebuilt).
    criteria: Vec<blast_scenarios::Criterion>,
    so_far: Option<blast_engine::Report>,
    /// The criteria as they stand at the latest interval.
    live_criteria: Value,
    /// When each failure was first and last seen in the current run.
    failures: blast_report::FailureLog,
    /// Pages following blast's stream of chart points.
    streams: Vec<tokio::sync::mpsc::UnboundedSender<Bytes>>,
    /// Why the last run could not start or finish.
    error: Option<String>,
    /// How many runs were started.
    runs: u32,
    /// The answer awaited by the `POST /swarm` that asked for the run starting now.
    starting: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    /// Whether the current run loads the in-process reference target (two descriptors a user).
    local_target: bool,
    /// Ctrl-C was pressed: no new run starts.
    quitting: bool,
}

/// Where one run's outputs are written (and served from for download).
#[derive(Clone)]
struct RunFiles {
    csv: PathBuf,
    json: PathBuf,
    html: PathBuf,
    hdr_log: PathBuf,
}

/// The web UI's shared side.
pub struct Web {
    state: Mutex<State>,
    swarms: Mutex<Sender<Swarm>>,
    /// `Basic ...` that every request must carry, when credentials are set.
    auth: Option<String>,
    /// Requests that carried wrong credentials.
    failed_logins: AtomicU64,
    /// The address the UI listens on.
    bound: IpAddr,
    /// Host names given with `--web-allowed-host` (compared without regard to case).
    allowed_hosts: Vec<String>,
    /// Whether the flags or the scenario name a target (else runs load the built-in one).
    has_target: bool,
    /// Every run's live metrics, for Prometheus at `/metrics`.
    metrics: Arc<crate::metrics::Metrics>,
}

impl Web {
    /// Whether a run of `swarm` loads the in-process reference target (two descriptors a user).
    fn local_target(&self, swarm: &Swarm) -> bool {
        swarm.host.is_none() && !self.has_target
    }

    /// Whether a request's `Host` names this UI: `localhost`, the bound address (any address
    /// when bound to all of them), or a name the user allowed. A DNS-rebinding page reaches
    /// the UI under its own name, which none of these is.
    fn host_allowed(&self, host: &str) -> bool {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if name.eq_ignore_ascii_case("localhost")
            || self
                .allowed_hosts
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name))
        {
            return true;
        }
        name.parse::<IpAddr>().is_ok_and(|ip| {
            ip == self.bound
                || self.bound.is_unspecified()
                || (ip.is_loopback() && self.bound.is_loopback())
        })
    }
}

/// The memory one user may take at most, for the UI's ceiling: a keep-alive connection with its
/// buffers, its task and its stats take about 20 KiB (26 MB at 1,000 connections, 40 MB with
/// TLS, in docs/benchmarks.md); this leaves room for that and for the target's answers.
const MEMORY_PER_USER: u64 = 64 * 1024;

/// Makes room for `users` users asked for through the UI, or says why there is none: the
/// memory this machine has available, then the open-file limit (raised when it can be).
fn admit(users: u64, local_target: bool) -> anyhow::Result<()> {
    if let Some(available) = available_memory() {
        let most = available / MEMORY_PER_USER;
        if users > most {
            anyhow::bail!(
                "{users} users need about {} MiB, but this machine has {} MiB available (at most {most} users at {} KiB each)",
                users.saturating_mul(MEMORY_PER_USER) >> 20,
                available >> 20,
                MEMORY_PER_USER >> 10
            );
        }
    }
    run::ensure_file_limit(users, local_target)
}

/// `MemAvailable` of /proc/meminfo, in bytes (Linux); `None` where it cannot be read.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves the UI and runs what it asks for until Ctrl-C (or `--autoquit` after a run).
pub fn serve(args: &Args) -> Result<Verdict, Failure> {
    let usage = |e: anyhow::Error| Failure::Usage(e);
    if !args.web_host.is_loopback() && args.web_auth.is_none() {
        return Err(usage(anyhow::anyhow!(
            "--web-host {} is reachable from other machines: set --web-auth USER:PASSWORD (or bind 127.0.0.1)",
            args.web_host
        )));
    }
    let auth = match &args.web_auth {
        Some(creds) if creds.contains(':') => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(creds)
        )),
        Some(_) => {
            return Err(usage(anyhow::anyhow!(
                "invalid --web-auth: expected USER:PASSWORD"
            )))
        }
        None => None,
    };
    // Bad flags show now, not at the first swarm; every run is this plan with its form's load.
    let plan = RunPlan::resolve(args).map_err(Failure::Usage)?;
    let addr = SocketAddr::new(args.web_host, args.web_port);
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} for the web UI"))
        .map_err(Failure::Run)?;
    let addr = listener.local_addr().map_err(|e| Failure::Run(e.into()))?;
    let (tx, rx) = channel();
    let defaults = defaults(&plan);
    let web = Arc::new(Web {
        state: Mutex::new(State {
            phase: "ready",
            stats: json!({}),
            ..State::default()
        }),
        swarms: Mutex::new(tx),
        auth,
        failed_logins: AtomicU64::new(0),
        bound: addr.ip(),
        allowed_hosts: args.web_allowed_hosts.clone(),
        has_target: defaults["host"].is_string(),
        metrics: crate::metrics::Metrics::new(),
    });
    let server = web.clone();
    std::thread::Builder::new()
        .name("blast-web".into())
        .spawn(move || http::serve(listener, server, defaults))
        .map_err(|e| Failure::Run(e.into()))?;
    println!("blast web UI on http://{addr}/ (Ctrl-C quits)");
    watch_signals(web.clone());
    if args.autostart {
        let start = Swarm {
            users: args.users.unwrap_or(10),
            spawn_rate: args.spawn_rate,
            host: args.host.clone(),
            run_time: args.run_time,
            rate: None,
            stages: args.stages.clone(),
        };
        let _ = web.swarms.lock().map(|tx| tx.send(start));
    }
    run_loop(&plan, args.autoquit, &web, rx)
}

/// Runs each swarm in turn on this thread.
fn run_loop(
    plan: &RunPlan,
    autoquit: Option<u64>,
    web: &Arc<Web>,
    swarms: Receiver<Swarm>,
) -> Result<Verdict, Failure> {
    // Outputs not named on the command line go to a private folder (0700), removed at exit.
    let scratch = tempfile::Builder::new()
        .prefix("blast-web-")
        .tempdir()
        .context("cannot create a folder for the web UI's runs")
        .map_err(Failure::Run)?;
    let mut verdict = Verdict::Pass;
    while let Ok(swarm) = swarms.recv() {
        let (run_plan, n) = {
            let mut s = lock(&web.state);
            if s.quitting {
                break;
            }
            s.runs += 1;
            let (run_plan, files) = run_plan(plan, &swarm, s.runs, scratch.path());
            s.local_target = web.local_target(&swarm);
            s.files = Some(files);
            s.points.clear();
            s.baseline = None;
            s.latest = None;
            s.error = None;
            s.outcome = Value::Null;
            s.phase = "spawning";
            (run_plan, s.runs)
        };
        let result = run::run(&run_plan, Some(web.as_ref()));
        let mut s = lock(&web.state);
        s.phase = "stopped";
        s.handle = None;
        let error = match result {
            Ok(v) => {
                verdict = v;
                None
            }
            Err(Failure::Usage(e) | Failure::Run(e)) => {
                let why = blast_engine::redact::text(&format!("{e:#}"));
                eprintln!("blast: error: run {n}: {why}");
                Some(why)
            }
        };
        // A run that failed before it started answers the request that asked for it.
        if let Some(asked) = s.starting.take() {
            let _ = asked.send(Err(error
                .clone()
                .unwrap_or_else(|| "the run did not start".into())));
        }
        s.error = error;
        drop(s);
        if let Some(after) = autoquit {
            std::thread::sleep(Duration::from_secs(after));
            break;
        }
    }
    Ok(verdict)
}

/// Run `n`: the command line's plan with the swarm's load and target, and its own output files
/// (in `scratch` unless named on the command line).
fn run_plan(
    plan: &RunPlan,
    swarm: &Swarm,
    n: u32,
    scratch: &std::path::Path,
) -> (RunPlan, RunFiles) {
    let mut p = plan.clone();
    let load = &mut p.flags_load;
    load.users = Some(swarm.users);
    load.spawn_rate = swarm.spawn_rate;
    load.stages = swarm.stages.as_ref().map(|shape| shape.stages.clone());
    if swarm.stages.is_some() {
        (load.users, load.spawn_rate) = (None, None);
    }
    if let Some(rate) = swarm.rate {
        load.rate = Some(blast_engine::Shape::constant(rate));
        (load.users, load.spawn_rate, load.stages) = (None, None, None);
    }
    if let Some(t) = swarm.run_time {
        load.run_time = Some(t);
    }
    if swarm.host.is_some() {
        p.target.clone_from(&swarm.host);
    }
    // Outputs named on the command line get `-N` from the second run on; the rest go to the
    // scratch folder, so every run can be downloaded.
    let scratch = scratch.join(format!("run-{n}"));
    let name = |given: &Option<PathBuf>, fallback: &str| match given {
        Some(p) => numbered(p, n),
        None => scratch.join(fallback),
    };
    let files = RunFiles {
        csv: name(&plan.out.csv, "blast"),
        json: name(&plan.out.json, "blast.json"),
        html: name(&plan.out.html, "blast.html"),
        hdr_log: name(&plan.out.hdr_log, "blast.hlog"),
    };
    p.out.csv = Some(files.csv.clone());
    p.out.json = Some(files.json.clone());
    p.out.html = Some(files.html.clone());
    p.out.hdr_log = Some(files.hdr_log.clone());
    if p.console == Console::Live {
        p.console = Console::Summary;
    }
    (p, files)
}

/// `path` for run `n`: as given for the first, `stem-N.ext` after.
fn numbered(path: &std::path::Path, n: u32) -> PathBuf {
    if n == 1 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

/// The start form's defaults: the load the plan runs, its target and its criteria.
fn defaults(plan: &RunPlan) -> Value {
    let load = plan.load();
    let stages = load.stages.as_ref().map(|stages| {
        stages
            .iter()
            .map(|st| format!("{}s:{}", st.duration.as_secs_f64(), st.target))
            .collect::<Vec<_>>()
            .join(",")
    });
    // The criteria the run will be judged by, listed before it starts.
    let criteria: Vec<String> = plan.criteria.iter().map(|c| c.to_string()).collect();
    json!({
        // A staged shape says the users itself: one of the two, so Start runs what is shown.
        "users": load.users.or(stages.is_none().then_some(10)),
        "spawn_rate": load.spawn_rate,
        "host": plan.target,
        "run_time": load.run_time.map(|t| t.as_secs_f64()),
        "stages": stages,
        "criteria": criteria,
    })
}

impl Watcher for Web {
    fn started(
        &self,
        handle: RunHandle,
        plan: &blast_engine::Plan,
        criteria: &[blast_scenarios::Criterion],
    ) {
        let mut s = lock(&self.state);
        s.handle = Some(handle.clone());
        if let Some(asked) = s.starting.take() {
            let _ = asked.send(Ok(()));
        }
        // Ctrl-C came while the run was being set up: it ends as soon as it starts.
        if s.quitting {
            handle.stop();
        }
        s.names = plan.script.names().to_vec();
        s.criteria = criteria.to_vec();
        s.so_far = Some(blast_engine::Report {
            started_at: std::time::SystemTime::now(),
            late: std::time::Duration::ZERO,
            duration: std::time::Duration::ZERO,
            sending: std::time::Duration::ZERO,
            run_time: std::time::Duration::ZERO,
            interval: plan.interval,
            reset_stats: false,
            names: (plan.script.names().iter())
                .map(|name| blast_engine::NameReport {
                    name: name.clone(),
                    stats: Stats::new(false),
                })
                .collect(),
            total: Stats::new(false),
            history: Vec::new(),
            schedule: plan.schedule.clone(),
            workers: 0,
            pinned: false,
            shard: Default::default(),
            interrupted: false,
            slots: (0, 0),
            phases: Vec::new(),
            incomplete: None,
            protocol: plan.http.unwrap_or_default(),
            streams: None,
            io: plan.io,
            io_fallback: None,
        });
        s.failures = blast_report::FailureLog::default();
        s.live_criteria = json!([]);
        s.target_users = match &plan.schedule {
            blast_engine::Schedule::Closed { users } => users.peak().round() as u64,
            blast_engine::Schedule::Open { .. } => 0,
        };
        let run = s.runs;
        publish(&mut s, &json!({"run": run}));
    }

    fn interval(&self, snapshot: &Snapshot<'_>, sample: &Sample) {
        let mut s = lock(&self.state);
        self.metrics.observe(&s.names, snapshot, sample);
        let now = std::time::SystemTime::now();
        s.failures.observe(snapshot, now);
        let rows = {
            let named = s
                .names
                .iter()
                .zip(snapshot.cumulative)
                .map(|(n, st)| (n.method.as_str(), n.name.as_str(), &st.counters));
            s.failures.rows(named, now)
        };
        let body = stats::requests_json(
            snapshot,
            &s.names,
            s.baseline.as_ref(),
            s.target_users,
            &rows,
        );
        s.phase = if body["state"] == "spawning" {
            "spawning"
        } else {
            "running"
        };
        s.stats = body;
        let point = stats::point(snapshot, sample);
        publish(&mut s, &point);
        s.points.push(point);
        if let Some(so_far) = &mut s.so_far {
            so_far
                .history
                .push(blast_engine::IntervalSummary::of(snapshot));
            for (name, stats) in so_far.names.iter_mut().zip(snapshot.cumulative) {
                name.stats.clone_from(stats);
            }
            so_far.total.clone_from(snapshot.cumulative_total);
            (so_far.duration, so_far.sending, so_far.run_time) =
                (snapshot.elapsed, snapshot.elapsed, snapshot.elapsed);
        }
        s.live_criteria = judge(&s);
        s.latest = Some((
            snapshot.cumulative.to_vec(),
            snapshot.cumulative_total.clone(),
        ));
    }

    fn finished(&self, record: &RunRecord) {
        let mut s = lock(&self.state);
        s.outcome = json!({
            "criteria": record.criteria,
            "passed": record.passed,
            "generator": record.generator.evidence,
            "requests": record.requests,
            "failures": record.failures,
        });
        if let Some(stats) = s.stats.as_object_mut() {
            stats.insert("state".into(), json!("stopped"));
            stats.insert("user_count".into(), json!(0));
            // Nothing is being sent any more: the current rates are zero, as Locust shows
            // them after a stop; the totals of the run stay in the rows.
            for key in [
                "total_rps",
                "total_fail_per_sec",
                "current_rps",
                "current_fail_per_sec",
            ] {
                stats.insert(key.into(), json!(0.0));
            }
            if let Some(rows) = stats.get_mut("stats").and_then(Value::as_array_mut) {
                for row in rows.iter_mut().filter_map(Value::as_object_mut) {
                    row.insert("current_rps".into(), json!(0.0));
                    row.insert("current_fail_per_sec".into(), json!(0.0));
                }
            }
        }
    }
}

/// Sends one event to every page that follows the stream, forgetting the pages that left.
fn publish(s: &mut State, event: &Value) {
    let data = Bytes::from(format!("data: {event}\n\n"));
    s.streams.retain(|tx| tx.send(data.clone()).is_ok());
}

/// The criteria judged on the run so far, as they would be if it ended now.
fn judge(s: &State) -> Value {
    let Some(so_far) = &s.so_far else {
        return json!([]);
    };
    let verdicts: Vec<Value> = s
        .criteria
        .iter()
        .map(|c| {
            let v = c.evaluate(so_far);
            json!({"criterion": v.criterion, "measured": v.measured, "pass": v.pass})
        })
        .collect();
    Value::Array(verdicts)
}

/// Ctrl-C in web mode: blast quits once the run in progress (if any) has written its results;
/// the run goes through the same three steps as a command-line run.
fn watch_signals(web: Arc<Web>) {
    crate::watch_signals(move || {
        // Closing the channel ends the run loop after the run in progress, if any.
        *web.swarms.lock().unwrap_or_else(|p| p.into_inner()) = channel().0;
        let mut s = lock(&web.state);
        s.quitting = true;
        s.handle.clone()
    });
}
