//! `blast`: parse flags, build a plan, run it, report, map errors to exit codes.

mod args;
mod monitor;
mod outputs;
mod progress;
mod report;
mod selftest;
mod summary;

use anyhow::Context;
use args::Job;
use blast_engine::{Engine, EngineError, Plan, RunHandle, Target};
use blast_report::{RunInfo, RunRecord};
use blast_scenarios::Load;
use clap::Parser;
use monitor::Monitor;
use outputs::Outputs;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for bad flags or input (as clap uses for its own errors).
const EXIT_USAGE: u8 = 2;
/// Exit code when the run could not happen or its results could not be written.
const EXIT_RUN: u8 = 1;
/// Exit code when the run happened but a success criterion failed.
const EXIT_CRITERIA: u8 = 3;
/// Exit code after a second Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_ABORTED: u8 = 130;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        // Unreadable records are bad input; a selftest that cannot run is a run failure.
        Some("report") => return subcommand::<report::ReportArgs>(report::run, EXIT_USAGE),
        Some("selftest") => return subcommand::<selftest::SelftestArgs>(selftest::run, EXIT_RUN),
        _ => {}
    }
    let args = match args::Args::try_parse() {
        Ok(args) => args,
        // --help and --version are not errors.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!(
                "blast: error: {} (see blast --help)",
                one_line(&e.render().to_string())
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(&args) {
        Ok(Verdict::Pass) => ExitCode::SUCCESS,
        Ok(Verdict::CriteriaFailed) => ExitCode::from(EXIT_CRITERIA),
        Ok(Verdict::Aborted) => ExitCode::from(EXIT_ABORTED),
        Err(Failure::Usage(e)) => {
            eprintln!("blast: error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Run(e)) => {
            eprintln!("blast: error: {e:#}");
            ExitCode::from(EXIT_RUN)
        }
    }
}

/// `blast report ...` and `blast selftest ...`: their own flags, the same error conventions.
fn subcommand<A: Parser>(run: fn(&A) -> anyhow::Result<()>, failure: u8) -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    let args = match A::try_parse_from(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("blast {name}: error: {}", one_line(&e.render().to_string()));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blast {name}: error: {e:#}");
            ExitCode::from(failure)
        }
    }
}

/// Folds clap's multi-line message into one line, dropping its usage and help hints.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            !["Usage:", "For more information", "tip:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| l.trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ")
}

enum Failure {
    Usage(anyhow::Error),
    Run(anyhow::Error),
}

/// How a finished run ends.
enum Verdict {
    Pass,
    CriteriaFailed,
    /// Cut short by a second Ctrl-C; the results were still written.
    Aborted,
}

fn usage<E: Into<anyhow::Error>>(e: E) -> Failure {
    Failure::Usage(e.into())
}

fn run(args: &args::Args) -> Result<Verdict, Failure> {
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
        Job::Scenario(s) => args.host.clone().or_else(|| s.host.clone()),
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
        Job::Scenario(_) => "--host",
    };
    let (target, uri) = Target::parse(&url).map_err(usage)?;
    let mut scenario_name = None;
    let (plan, script, criteria, label) = match job {
        Job::Url(_) => {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            let requests = args.request(&target, path).map_err(usage)?;
            let load = Load::default().overridden_by(&args.load());
            let plan = plan(target, requests, &load, args)?;
            (plan, None, args.thresholds.clone(), url.clone())
        }
        Job::Scenario(scenario) => {
            if uri.path() != "/" {
                return Err(usage(anyhow::anyhow!(
                    "--host {url}: give only scheme, host and port; the scenario has the paths"
                )));
            }
            let script = scenario.script(&target);
            let load = scenario.load.overridden_by(&args.load());
            let plan = plan(target, script.clone(), &load, args)?;
            let mut criteria = scenario.criteria.clone();
            criteria.extend(args.thresholds.iter().cloned());
            let label = format!("{} ({url})", scenario.name);
            scenario_name = Some(scenario.name.clone());
            (plan, Some(script), criteria, label)
        }
    };
    for c in &criteria {
        c.check_names(plan.script.names())
            .map_err(|e| usage(anyhow::anyhow!(e)))?;
    }
    ensure_file_limit(&plan.schedule, local.is_some()).map_err(Failure::Usage)?;
    if let Some(pid) = args.monitor_pid {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(usage(anyhow::anyhow!(
                "--monitor-pid {pid}: no such process"
            )));
        }
    }
    let mut monitor = Monitor::start(args.monitor_pid, &args.monitor_cmds, plan.interval);
    // Fail before the run, not after it, when an output cannot be written.
    let mut outputs =
        Outputs::create(args, plan.script.names(), &monitor.keys()).map_err(Failure::Usage)?;
    let mut samples = Vec::new();
    let console = Console::of(args);
    if local.is_some() && console != Console::Quiet {
        println!("no {missing} given: running against the built-in reference target at {url}");
    }
    let terminal = std::io::stderr().is_terminal();
    let mut progress =
        progress::Progress::new(plan.run_time, &plan.schedule, plan.script.names(), terminal);
    let engine = Engine::new(plan).map_err(usage)?;
    let signals = watch_signals(engine.handle());
    let on_interval = |s: &blast_engine::Snapshot<'_>| {
        let sample = monitor.sample(s.loop_lag_us);
        outputs.observe(s, &sample);
        samples.push(sample);
        if console == Console::Live {
            if let Some(text) = progress.observe(s) {
                eprint!("{text}");
            }
        }
    };
    let report = engine.run(on_interval).map_err(|e| match e {
        EngineError::Unreachable { .. } | EngineError::Thread(_) => Failure::Run(e.into()),
        other => usage(other),
    })?;
    let verdicts: Vec<_> = criteria.iter().map(|c| c.evaluate(&report)).collect();
    let pools = script.as_ref().map(|s| s.pool_counts()).unwrap_or_default();
    let info = RunInfo {
        command: std::env::args().collect(),
        host: url.clone(),
        profile: args.profile.clone(),
        scenario: scenario_name,
    };
    let failure_rows = outputs.failure_rows(&report);
    let record = RunRecord::new(&report, &info, &label, &verdicts, failure_rows, &samples);
    if console != Console::Quiet {
        print!("{}", summary::render(&report, &label, &pools, &record));
        let _ = std::io::stdout().flush();
    }
    outputs.finish(&report, &record).map_err(Failure::Run)?;
    Ok(if signals.load(Ordering::Relaxed) >= 2 {
        Verdict::Aborted
    } else if verdicts.iter().all(|v| v.pass) {
        Verdict::Pass
    } else {
        Verdict::CriteriaFailed
    })
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

/// Raises the open-file limit to what the run needs (one socket per user or connection, twice
/// with the in-process target), or says up front that it cannot: running out of descriptors
/// mid-run would turn into a storm of connect failures.
fn ensure_file_limit(schedule: &blast_engine::Schedule, local_target: bool) -> anyhow::Result<()> {
    let connections = match schedule {
        blast_engine::Schedule::Closed { users } => users.peak().ceil() as u64,
        blast_engine::Schedule::Open {
            max_connections, ..
        } => *max_connections,
    };
    // Descriptors beyond sockets: stdio, epoll and timer fds, output files, threads' pipes.
    const SPARE: u64 = 64;
    let needed = connections * if local_target { 2 } else { 1 } + SPARE;
    let limit = rlimit::increase_nofile_limit(needed).unwrap_or(0);
    if limit < needed {
        anyhow::bail!(
            "{connections} users or connections need about {needed} open files, but the limit is {limit} (see ulimit -n; the hard limit caps it): raise it or lower the load"
        );
    }
    Ok(())
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

/// First Ctrl-C or SIGTERM: stop sending, let in-flight requests finish, write everything.
/// A second one: cancel what is in flight at once, still write everything, exit 130.
fn watch_signals(run: RunHandle) -> Arc<AtomicU32> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let seen = Arc::new(AtomicU32::new(0));
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return seen;
    };
    let counter = seen.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            match counter.fetch_add(1, Ordering::Relaxed) + 1 {
                1 => {
                    eprintln!("blast: stopping: in-flight requests get the stop timeout, then results are written; Ctrl-C again to cancel them now");
                    run.stop();
                }
                2 => {
                    eprintln!("blast: cancelling in-flight requests; writing results (Ctrl-C again to quit without them)");
                    run.abort();
                }
                _ => std::process::exit(i32::from(EXIT_ABORTED)),
            }
        }
    });
    seen
}
