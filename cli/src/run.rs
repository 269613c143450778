//! One load run: resolve the job into a plan, open the outputs, run with signals watched,
//! print the summary, write every result, and say how the run ended.

use anyhow::Context;
use blast_engine::{Engine, EngineError, Plan, Target};
use blast_report::exact::ShardData;
use blast_report::{RunInfo, RunRecord};
use blast_scenarios::Load;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::args::{self, Job};
use crate::monitor::{Monitor, Sources};
use crate::outputs::Outputs;
use crate::{progress, summary, watch_signals};

/// Why a run could not end normally; each maps to an exit code.
pub enum Failure {
    /// Bad flags or input: nothing was sent.
    Usage(anyhow::Error),
    /// The run could not happen, or its results could not be written.
    Run(anyhow::Error),
}

/// How a finished run ends.
pub enum Verdict {
    /// Every criterion held; without criteria, no request failed.
    Pass,
    /// At least one criterion failed.
    CriteriaFailed,
    /// No criteria, and requests failed: exit with this code (`--exit-code-on-error`).
    RequestsFailed(u8),
    /// Cut short by a second Ctrl-C; the results were still written.
    Aborted,
}

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

/// Runs what the flags ask for: list or print profiles, or one load run end to end.
pub fn run(args: &args::Args) -> Result<Verdict, Failure> {
    run_watched(args, None)
}

/// [`run`], with a watcher that sees the run; signals are then the watcher's business.
pub fn run_watched(args: &args::Args, watcher: Option<&dyn Watcher>) -> Result<Verdict, Failure> {
    args.validate().map_err(usage)?;
    if args.list_profiles {
        for (name, _) in blast_scenarios::PROFILES {
            let s = blast_scenarios::profile(name).map_err(usage)?;
            println!("{name:<12} {}", s.description);
        }
        return Ok(Verdict::Pass);
    }
    if let Some(name) = &args.print_profile {
        print!("{}", blast_scenarios::profile_source(name).map_err(usage)?);
        return Ok(Verdict::Pass);
    }
    let job = args.job().map_err(usage)?;
    let base = match &job {
        Job::Url(url) => url.clone(),
        Job::Scenario { scenario, .. } => args.host.clone().or_else(|| scenario.host.clone()),
    };
    // Without a target, run against the built-in reference target on a loopback port.
    let local = match base {
        Some(_) => None,
        None => Some(start_reference_target().map_err(Failure::Run)?),
    };
    let url = match (base, &local) {
        (Some(url), _) => url,
        (None, Some(server)) => format!("{}/", server.url()),
        (None, None) => unreachable!("a local target is started when no URL is given"),
    };
    let missing = match job {
        Job::Url(_) => "URL",
        Job::Scenario { .. } => "--host",
    };
    let (target, uri) = Target::parse(&url).map_err(failure)?;
    if target.tls && args.insecure {
        eprintln!("warning: --insecure: the server's certificate is not verified");
    }
    let mut scenario_name = None;
    let source = match &job {
        Job::Scenario { source, .. } => Some(source.clone()),
        Job::Url(_) => None,
    };
    let (plan, script, criteria, label) = match job {
        Job::Url(_) => {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let requests = args.request(&target, path).map_err(usage)?;
            let load = Load::default().overridden_by(&args.load());
            let plan = plan(target, requests, &load, args)?;
            (plan, None, args.thresholds.clone(), url.clone())
        }
        Job::Scenario { scenario, .. } => {
            if uri.path() != "/" {
                return Err(usage(anyhow::anyhow!(
                    "--host {url}: give only scheme, host and port; the scenario has the paths"
                )));
            }
            let headers = args.header_pairs().map_err(usage)?;
            let script = scenario.script_with_headers(&target, &headers);
            let load = scenario.load.overridden_by(&args.load());
            let plan = plan(target, script.clone(), &load, args)?;
            let mut criteria = scenario.criteria.clone();
            criteria.extend(args.thresholds.iter().cloned());
            let label = format!("{} ({url})", scenario.name);
            scenario_name = Some(scenario.name.clone());
            (plan, Some(script), criteria, label)
        }
    };
    // The summary and the record name the target without its credentials.
    let label = blast_engine::redact::text(&label);
    for c in &criteria {
        c.check_names(plan.script.names())
            .map_err(|e| usage(anyhow::anyhow!(e)))?;
    }
    ensure_file_limit(peak_connections(&plan.schedule), local.is_some()).map_err(Failure::Usage)?;
    let names = plan.script.names().to_vec();
    let terminal = std::io::stderr().is_terminal();
    let mut progress = progress::Progress::new(plan.run_time, &plan.schedule, &names, terminal);
    let sources = Sources {
        pid: args.monitor_pid,
        cgroup: args.monitor_cgroup.clone(),
        container: args.monitor_container.clone(),
        postgres: args.monitor_postgres.clone(),
        commands: args.monitor_cmds.clone(),
    };
    let mut monitor =
        Monitor::start(&sources, plan.interval).map_err(|e| usage(anyhow::anyhow!(e)))?;
    // The plan is checked before any output file is created, so bad input leaves none.
    let engine = Engine::new(plan).map_err(usage)?;
    // Fail before the run, not after it, when an output cannot be written.
    // With --start-at the run's intervals start on that time's grid (the HDR log's base time).
    let started = args.start_at.unwrap_or_else(SystemTime::now);
    let shard = args.shard.is_some();
    let mut outputs = Outputs::create(&args.out, &names, &monitor.keys(), started, shard)
        .map_err(Failure::Usage)?;
    let mut samples = Vec::new();
    let console = Console::of(args);
    if local.is_some() && console != Console::Quiet {
        println!("no {missing} given: using the built-in reference target, {url}");
    }
    let signals = match watcher {
        Some(w) => {
            w.started(engine.handle(), engine.plan(), &criteria);
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
    if let Some(at) = args.start_at {
        wait_until(at, console);
    }
    let report = engine.run(on_interval).map_err(failure)?;
    eprint!("{}", progress.clear());
    let verdicts: Vec<_> = criteria.iter().map(|c| c.evaluate(&report)).collect();
    let (scenario_digest, scenario_source) = scenario_identity(args, &url, source);
    let info = RunInfo {
        command: std::env::args().collect(),
        host: url.clone(),
        profile: args.profile.clone(),
        scenario: scenario_name,
        start_at: args.start_at,
        run_id: run_id(args, &scenario_digest),
        scenario_digest,
        scenario_source,
        cores: Some(blast_engine::available_cores().len()),
    };
    let failure_rows = outputs.failure_rows(&report, SystemTime::now());
    let mut record = RunRecord::new(&report, &info, &label, &verdicts, failure_rows, &samples);
    blast_report::annotate(&mut record, &samples);
    if let Some(log) = outputs.take_exact() {
        let criteria = verdicts.iter().map(|v| v.criterion.clone()).collect();
        record.shard_data = Some(ShardData::new(&report, &info, criteria, log));
    }
    if console != Console::Quiet {
        let width = summary::width_of(&std::io::stdout());
        let text = summary::render(&report, &label, script.as_ref(), &record, width);
        print!("{text}");
        let _ = std::io::stdout().flush();
    } else {
        // Quiet prints no summary, but a failed criterion is the answer a CI job waits for.
        for v in verdicts.iter().filter(|v| !v.pass) {
            eprintln!("blast: FAIL {} (measured {})", v.criterion, v.measured);
        }
    }
    let written = outputs.finish(&report, &record);
    if let Some(w) = watcher {
        w.finished(&record);
    }
    written.map_err(Failure::Run)?;
    if let Some(why) = &report.incomplete {
        return Err(Failure::Run(anyhow::anyhow!(
            "{why}: the run stopped early and the results written are incomplete"
        )));
    }
    Ok(if signals.load(Ordering::Relaxed) >= 2 {
        Verdict::Aborted
    } else {
        Verdict::of(&verdicts, &report, args.exit_code_on_error)
    })
}

impl Verdict {
    /// How a run that ended ends: by its criteria, else by whether a request failed.
    pub fn of(
        verdicts: &[blast_scenarios::Verdict],
        report: &blast_engine::Report,
        exit_code_on_error: u8,
    ) -> Verdict {
        if !verdicts.is_empty() {
            match verdicts.iter().all(|v| v.pass) {
                true => Verdict::Pass,
                false => Verdict::CriteriaFailed,
            }
        } else if report.total.counters.failed() > 0 && exit_code_on_error != 0 {
            Verdict::RequestsFailed(exit_code_on_error)
        } else {
            Verdict::Pass
        }
    }
}

/// What the console shows while running.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Console {
    /// Status lines (or the live view on a terminal), then the summary.
    Live,
    /// The summary only (`--only-summary`).
    Summary,
    /// Nothing but errors (`-q`).
    Quiet,
}

impl Console {
    fn of(args: &args::Args) -> Console {
        if args.quiet {
            Console::Quiet
        } else if args.only_summary {
            Console::Summary
        } else {
            Console::Live
        }
    }
}

/// A plan for `script` with the load resolved and the shared engine flags applied.
fn plan(
    target: Target,
    script: impl blast_engine::Script,
    load: &Load,
    args: &args::Args,
) -> Result<Plan, Failure> {
    let (schedule, run_time) = load
        .resolve(args.peak, args.max_connections)
        .map_err(|e| usage(anyhow::anyhow!(e)))?;
    let mut plan = Plan::new(target, script, schedule);
    plan.run_time = run_time;
    args.configure(&mut plan).map_err(usage)?;
    Ok(plan)
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

/// The reference target, in process, with a thread per core like the generator.
fn start_reference_target() -> anyhow::Result<blast_target::Server> {
    let config = blast_target::Config {
        threads: blast_engine::available_cores().len().max(1),
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

/// FNV-1a of what was run (the scenario's `source` and the tags chosen, or the URL's request),
/// in hex, with the source itself.
fn scenario_identity(
    args: &args::Args,
    url: &str,
    source: Option<String>,
) -> (String, Option<String>) {
    let what = match &source {
        Some(text) => format!("{text}\0{:?}\0{:?}", args.tags, args.exclude_tags),
        None => format!(
            "{:?} {url}\0{:?}\0{:?}\0{:?}",
            args.method, args.headers, args.body, args.body_file
        ),
    };
    (
        format!("{:016x}", blast_scenarios::fnv1a(what.as_bytes())),
        source,
    )
}

/// `--run-id`; else, with `--start-at`, the scenario's digest and that time, which every shard
/// given the same flags computes alike; else one of its own.
fn run_id(args: &args::Args, digest: &str) -> String {
    if let Some(id) = &args.run_id {
        return id.clone();
    }
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default();
    match args.start_at {
        Some(at) => format!("{}-{}", &digest[..8], secs(at).as_secs()),
        None => {
            let now = secs(SystemTime::now()).as_nanos();
            let seed = format!("{now}-{}", std::process::id());
            format!("{:016x}", blast_scenarios::fnv1a(seed.as_bytes()))
        }
    }
}
