//! One load run from its plan: start the target if none is given, open the outputs, run with
//! signals watched, and hand what ended to the finishing pipeline.

use anyhow::Context;
use blast_engine::{Engine, EngineError};
use blast_report::{RunInfo, RunRecord};
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::finish::{finish, Ending, Failure, Verdict};
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::outputs::Outputs;
use crate::plan::{Console, Job, RunPlan};
use crate::{progress, summary, watch_signals};

/// Any error, as bad input.
fn usage<E: Into<anyhow::Error>>(e: E) -> Failure {
    Failure::Usage(e.into())
}

/// An engine error as an exit: a target that cannot be reached (by name or by connection) or
/// a thread that cannot start is a run that could not happen; the rest is bad input.
fn failure(e: EngineError) -> Failure {
    match e {
        EngineError::Unreachable { .. }
        | EngineError::Unresolvable { .. }
        | EngineError::Uring(_)
        | EngineError::Thread(_) => Failure::Run(e.into()),
        other => usage(other),
    }
}

/// What sees a run besides the console and the files: the web UI.
pub trait Watcher {
    /// The run is about to start; `handle` steers it, `criteria` judge it.
    fn started(
        &self,
        handle: blast_engine::RunHandle,
        plan: &blast_engine::Plan,
        criteria: &[blast_scenarios::Criterion],
    );
    /// One interval, with blast's own sample.
    fn interval(&self, snapshot: &blast_engine::Snapshot<'_>, sample: &blast_report::Sample);
    /// The run ended with `record`.
    fn finished(&self, record: &RunRecord);
}

/// Runs the plan end to end; a `watcher` sees the run, and signals are then its business.
pub fn run(plan: &RunPlan, watcher: Option<&dyn Watcher>) -> Result<Verdict, Failure> {
    // Without a target, run against the built-in reference target on a loopback port.
    let local = match plan.target {
        Some(_) => None,
        None => Some(start_reference_target().map_err(Failure::Run)?),
    };
    let url = match (&plan.target, &local) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => format!("{}/", server.url()),
        (None, None) => unreachable!("a local target is started when no URL is given"),
    };
    let (engine_plan, script) = plan.engine_plan(&url).map_err(|e| match e.downcast() {
        Ok(e) => failure(e),
        Err(e) => usage(e),
    })?;
    if engine_plan.target.tls && plan.engine.insecure {
        eprintln!("warning: --insecure: the server's certificate is not verified");
    }
    let label = plan.label(&url);
    let local_target = local.is_some();
    ensure_file_limit(peak_connections(&engine_plan.schedule), local_target)
        .map_err(Failure::Usage)?;
    let names = engine_plan.script.names().to_vec();
    let terminal = std::io::stderr().is_terminal();
    let mut progress = progress::Progress::new(
        engine_plan.run_time,
        &engine_plan.schedule,
        &names,
        terminal,
    );
    let mut monitor = Monitor::start(&plan.monitor, engine_plan.interval)
        .map_err(|e| usage(anyhow::anyhow!(e)))?;
    // The plan is checked before any output file is created, so bad input leaves none.
    let engine = Engine::new(engine_plan).map_err(usage)?;
    // A metrics address that cannot be bound is bad input: found before any file is created.
    let metrics = match &plan.metrics_addr {
        Some(addr) => {
            let metrics = Metrics::new();
            let bound = crate::metrics::serve(addr, metrics.clone()).map_err(Failure::Usage)?;
            eprintln!("metrics for Prometheus: http://{bound}/metrics");
            Some(metrics)
        }
        None => None,
    };
    // Fail before the run, not after it, when an output cannot be written.
    // With --start-at the run's intervals start on that time's grid (the HDR log's base time).
    let started = plan.start_at.unwrap_or_else(SystemTime::now);
    let mut outputs =
        Outputs::create(&plan.out, &names, &monitor.keys(), started).map_err(Failure::Usage)?;
    let mut samples = Vec::new();
    let console = plan.console;
    if local_target && console != Console::Quiet {
        let missing = match plan.job {
            Job::Url { .. } => "URL",
            Job::Scenario { .. } => "--host",
        };
        println!("no {missing} given: using the built-in reference target, {url}");
    }
    let signals = match watcher {
        Some(w) => {
            w.started(engine.handle(), engine.plan(), &plan.criteria);
            Default::default()
        }
        None => {
            let run = engine.handle();
            watch_signals(move || Some(run.clone()))
        }
    };
    let on_interval = |s: &blast_engine::Snapshot<'_>| {
        let sample = monitor.sample(s.loop_lag_us);
        outputs.observe(s, &sample, SystemTime::now());
        if let Some(m) = &metrics {
            m.observe(&names, s, &sample);
        }
        if let Some(w) = watcher {
            w.interval(s, &sample);
        }
        samples.push(sample);
        // A warning between two live frames would leave the older one behind: clear the
        // frame, warn, and let the next frame start below the warning.
        let warnings: Vec<String> = monitor
            .take_warnings()
            .into_iter()
            .chain(outputs.take_warnings())
            .collect();
        if !warnings.is_empty() {
            eprint!("{}", progress.clear());
            warnings.iter().for_each(|w| summary::warn(w));
        }
        if console == Console::Live {
            if let Some(text) = progress.observe(s) {
                eprint!("{text}");
            }
        }
    };
    if let Some(at) = plan.start_at {
        wait_until(at, console);
    }
    let report = engine.run(on_interval).map_err(failure)?;
    eprint!("{}", progress.clear());
    let streams = engine.plan().streams;
    if streams > 1 && report.protocol == blast_engine::Protocol::Http1 {
        summary::warn(&format!(
            "the server chose HTTP/1.1 by ALPN: --streams {streams} did not apply, each user had its own connection"
        ));
    }
    let digest = plan.digest(&url);
    let info = RunInfo {
        command: std::env::args().collect(),
        host: url.clone(),
        profile: plan.profile.clone(),
        scenario: plan.scenario().map(|s| s.name.clone()),
        start_at: plan.start_at,
        run_id: run_id(plan, &digest),
        scenario_digest: digest,
        scenario_source: match &plan.job {
            Job::Scenario { source, .. } => Some(source.clone()),
            Job::Url { .. } => None,
        },
        cores: Some(blast_engine::available_cores().len()),
    };
    let ending = Ending {
        report: &report,
        samples: &samples,
        info: &info,
        label: &label,
        criteria: &plan.criteria,
        script: script.as_ref(),
        ended: SystemTime::now(),
        console,
        program: "blast",
        exit_code_on_error: plan.exit_code_on_error,
    };
    let verdict = finish(
        ending,
        &mut outputs,
        |_, _| (),
        |record| {
            if let Some(w) = watcher {
                w.finished(record);
            }
        },
    )?;
    Ok(match signals.load(Ordering::Relaxed) >= 2 {
        true => Verdict::Aborted,
        false => verdict,
    })
}

/// Descriptors beyond sockets: stdio, epoll and timer fds, output files, threads' pipes.
const SPARE_FILES: u64 = 64;

/// The most users or connections this process can hold: the hard open-file limit, less what
/// else it needs, halved when the in-process target holds the other end of each socket.
pub fn connection_ceiling(local_target: bool) -> u64 {
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(_, hard)| hard);
    hard.saturating_sub(SPARE_FILES) / if local_target { 2 } else { 1 }
}

/// Raises the open-file limit to what `connections` users or connections need (twice with the
/// in-process target), or says up front that it cannot: running out of descriptors mid-run
/// would turn into a storm of connect failures.
pub fn ensure_file_limit(connections: u64, local_target: bool) -> anyhow::Result<()> {
    let needed = connections
        .saturating_mul(if local_target { 2 } else { 1 })
        .saturating_add(SPARE_FILES);
    let limit = rlimit::increase_nofile_limit(needed).unwrap_or(0);
    if limit < needed {
        anyhow::bail!(
            "{connections} users or connections need about {needed} open files, but the limit is {limit} (see ulimit -n; the hard limit caps it, so at most {} here): raise it or lower the load",
            connection_ceiling(local_target)
        );
    }
    Ok(())
}

/// The users or connections a schedule holds at its peak.
fn peak_connections(schedule: &blast_engine::Schedule) -> u64 {
    match schedule {
        blast_engine::Schedule::Closed { users } => users.peak().ceil() as u64,
        blast_engine::Schedule::Open {
            max_connections, ..
        } => *max_connections,
    }
}

/// The reference target, in process, with a thread per core like the generator, serving the
/// P4.3 pack's EUCORA API (its CAB backlog kept at the plan's 100).
fn start_reference_target() -> anyhow::Result<blast_target::Server> {
    let config = blast_target::Config {
        threads: blast_engine::available_cores().len().max(1),
        apps: vec![std::sync::Arc::new(blast_p43::Eucora::new(
            blast_p43::CAB_BACKLOG,
        ))],
        ..Default::default()
    };
    blast_target::Server::start(([127, 0, 0, 1], 0).into(), config)
        .context("cannot start the built-in reference target")
}

/// Sleeps until `at` (`--start-at`), saying so unless quiet; a time already past starts now,
/// and the record says how late.
fn wait_until(at: std::time::SystemTime, console: Console) {
    let Ok(wait) = at.duration_since(std::time::SystemTime::now()) else {
        return;
    };
    if console != Console::Quiet {
        eprintln!(
            "waiting {:.1} s for --start-at {}",
            wait.as_secs_f64(),
            blast_report::utc_seconds(at)
        );
    }
    std::thread::sleep(wait);
}

/// `--run-id`; else, with `--start-at`, the scenario's digest and that time, which every shard
/// given the same flags computes alike; else one of its own.
fn run_id(plan: &RunPlan, digest: &str) -> String {
    if let Some(id) = &plan.run_id {
        return id.clone();
    }
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default();
    match plan.start_at {
        Some(at) => format!("{}-{}", &digest[..8], secs(at).as_secs()),
        None => {
            let now = secs(SystemTime::now()).as_nanos();
            let seed = format!("{now}-{}", std::process::id());
            format!("{:016x}", blast_scenarios::fnv1a(seed.as_bytes()))
        }
    }
}
